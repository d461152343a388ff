/*  dx_provision_host: what the parts of dx_provision share: the host being
    provisioned (its step's fields, checked) and the two outputs being
    written, the files of the #cloud-config part and the lines of the
    shell part. Internal to common/dx_provision*.c.

    dx_provision.c reads and checks the step into a dx_prov_t, then calls
    dx_prov_base (dx_provision_base.c: host name, disks, /etc/dexter) and
    dx_prov_role (dx_provision_roles.c: the role on its cluster type), and
    writes the document with dx_prov_cloud_config (dx_provision_cloud.c). */
#ifndef DX_PROVISION_HOST_H
#define DX_PROVISION_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#define DX_PROV_MASTERS_MAX 16          /* more than any config allows */

typedef struct {
    const char *mesos_apt_repo;         /* never NULL: the default when unset */
    const char *mesos_apt_dist;         /* "": the host's codename */
    const char *mesos_apt_key_url;      /* "" (set to none): no key of ours */
    const char *mesos_version;          /* "": the newest */
    const char *marathon_version;       /* "": the newest */
    const char *dcos_installer_url;     /* "": none */
} dx_prov_settings_t;

typedef struct {
    //  The host, checked
    const char *cluster;
    const char *provider;               /* aws, azure */
    const char *type;                   /* mesos, dcos */
    const char *role;                   /* access, master, agent */
    const char *hostname;               /* in a batch: a label, for comments */
    bool batched;                       /* one document for a batch of agents: */
    const char *hostname_prefix;        /*   the names but the slot, */
    long long batch;                    /*   the first slot of the batch */
    char batch_label [96];              /*   hostname's text */
    const char *group;
    const char *group_role;             /* Mesos role: "*" when none */
    const char *private_ip;             /* "" when the cloud picks it */
    char masters [DX_PROV_MASTERS_MAX][16];
    size_t master_count;
    size_t zk_id;                       /* a master's ZooKeeper id: 1.. */
    const json_t *attributes;           /* object */
    const json_t *vars;                 /* object */
    const json_t *disks;                /* array, may be empty */
    const json_t *vpn;                  /* the server bundle, or NULL */
    dx_prov_settings_t settings;

    //  The outputs
    json_t *files;                      /* [[path, mode, content], ...] */
    FILE *sh;                           /* the shell part */
    char *err;
    size_t errlen;
    bool failed;
} dx_prov_t;

/*  1 if text is 1..max characters, each a letter, digit or one of extra. */
int dx_prov_chars (const char *text, size_t max, const char *extra);

/*  A JSON scalar as text: a string as it is, a number or a boolean
    written into buf (size bytes); NULL for anything else. */
const char *dx_prov_scalar (const json_t *value, char *buf, size_t size);

/*  Records the first fault (later ones are dropped). */
void dx_prov_fail (dx_prov_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  One line of the shell part. */
void dx_prov_sh (dx_prov_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  Lines of the shell part as they are, up to a NULL. */
void dx_prov_sh_lines (dx_prov_t *self, const char *const *lines);

/*  A file for write_files: path, octal mode ("0644"), content. The
    content must be printable ASCII, newlines and tabs; anything else
    fails the document. */
void dx_prov_file (dx_prov_t *self, const char *path, const char *mode,
                   const char *content);

/*  The same with printf-formatted content. */
void dx_prov_file_fmt (dx_prov_t *self, const char *path, const char *mode,
                       const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));

/*  The masters' ZooKeeper ensemble as Mesos and Marathon name it:
    "zk://10.0.0.11:2181,10.0.0.12:2181" + path. Caller frees. */
char *dx_prov_zk_url (const dx_prov_t *self, const char *path);

/*  The parts of the document. */
void dx_prov_base (dx_prov_t *self);
void dx_prov_role (dx_prov_t *self);
char *dx_prov_cloud_config (dx_prov_t *self);

#endif
