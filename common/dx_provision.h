/*  dx_provision: the user data that turns a fresh Ubuntu instance into
    one host of a Mesos or DC/OS cluster, for every provider.

    The user data is a cloud-init MIME multipart document of two parts:
      - `#cloud-config` whose write_files carries every file the host
        needs: /etc/dexter (cluster facts, the group's vars and
        attributes), the ZooKeeper, Mesos and Marathon configuration and
        units, the DC/OS bootstrap configuration, and on the access node
        the OpenVPN server files when the step brings a server bundle;
      - a bash script that does the rest: host name, extra disks at
        /hdd/<device>, packages, and starting the services.
    docs/provision.md says what each role does on each cluster type, the
    settings (package sources, versions, the DC/OS installer) and the
    limits.

    Input is the `host` step map of proto/PROTOCOL.md ("Steps") and the
    cluster's name; the step's `context.masters_ips` gives the masters,
    its `dcos_installer_url` the DC/OS installer (the scheduler's
    DEXTER_DCOS_INSTALLER_URL; a dcos access node is refused without it),
    and an optional `vpn` object (in the step, or in the job's credentials
    as its JSON text, since credentials are strings) the access node's
    OpenVPN server bundle: strings `ca`, `cert`, `key`,
    `tls_crypt`, `crl`, `server_conf` and optionally `auth`. The settings
    are read from the environment at each call (below).

    Every value is checked before it is written: names, roles, devices and
    IPs against strict character sets, file contents as printable ASCII
    inside YAML double-quoted strings, and nothing the user gives reaches
    the script, so no value can run a command. */
#ifndef DX_PROVISION_H
#define DX_PROVISION_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/*  The providers' limits on the user data before its base64: EC2 takes
    16 KiB; Azure 65,535 bytes (customData of at most 87,380 base64
    characters). A document over its provider's limit goes gzipped, which
    cloud-init reads as well. */
#define DX_PROVISION_AWS_MAX_BYTES      16384
#define DX_PROVISION_AZURE_MAX_BYTES    65535

/*  The settings: environment variables of the worker that renders the
    user data, read at each call (docs/provision.md, "Settings"):
    DEXTER_MESOS_APT_REPO, DEXTER_MESOS_APT_DIST, DEXTER_MESOS_APT_KEY_URL,
    DEXTER_MESOS_VERSION and DEXTER_MARATHON_VERSION (the DC/OS installer
    comes in the step). Unset or empty, each is its default: */
#define DX_PROVISION_MESOS_APT_REPO     "http://repos.mesosphere.com/ubuntu"
#define DX_PROVISION_MESOS_APT_KEY_URL  "https://keyserver.ubuntu.com/pks/lookup?op=get&search=0x81026D0004C44CF7EF55ADF8DF7D54CBE56151BF"
/*  and for the others none: the distribution is the host's own codename,
    and the versions the newest the repository has. */

/*  1 if url is a URL a setting may hold: http or https, of letters,
    digits and :/._~%+=?&@,- only (none of them a shell's or YAML's
    quote), at most 1024 characters. The scheduler checks its
    DEXTER_DCOS_INSTALLER_URL with it. */
bool dx_provision_url_valid (const char *url);

/*  The document as text (MIME multipart, never compressed) for the host
    step of cluster `cluster`; credentials (may be NULL) may hold `vpn`.
    Returns a new NUL-terminated string (caller frees), or NULL with a
    sentence in err (errlen bytes) when a value is missing or unsafe. */
char *dx_provision_document (const char *cluster, const json_t *step,
                             const json_t *credentials, char *err, size_t errlen);

/*  The user data as the step's `provider` (aws or azure) takes it: the
    base64 of the document, gzipped first when it is over the provider's
    limit. Returns a new string (caller frees; with a vpn bundle it holds
    the server's key), or NULL with a sentence in err when the document
    cannot be made or is over the limit even gzipped. Every copy made on
    the way is wiped before it is freed. */
char *dx_provision_user_data (const char *cluster, const json_t *step,
                              const json_t *credentials, char *err, size_t errlen);

/*  A batch of aws agents (the `hosts` step of proto/PROTOCOL.md) shares
    one document: its step has `hostname_prefix` (the host names but the
    slot) and `batch` (the first slot of the RunInstances call) in place
    of `hostname`, and each instance names itself prefix + (batch + its
    ami-launch-index), read from the instance metadata (IMDSv2) before
    anything uses the name; /etc/dexter/cluster gets DEXTER_HOSTNAME then. */

#endif
