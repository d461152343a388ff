/*  dx_provision: the first-boot script of a host. See dx_provision.h.

    The script is built in three parts: the common part (host name, disks,
    /etc/dexter), then the part of the host's role (s_role_access,
    s_role_master, s_role_agent: the places the provisioning issue fills
    in), then the end marker. Values are checked before they are written
    (names and disk devices by dx_spec's rules, the others by s_safe), JSON
    is written as one line inside a quoted here-document. */
#include "dx_provision.h"
#include "dx_spec.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  The here-document terminator. A compact JSON document is one line that
    starts with '{', so it can never be this line; s_heredoc checks anyway. */
#define S_EOF "DEXTER_EOF"

typedef struct {
    FILE *out;
    const char *cluster;
    const char *type;                   /* mesos or dcos */
    const char *role;                   /* access, master, agent */
    const char *hostname;
    const char *group;
    const char *group_role;
    const char *masters;                /* comma-separated IPs, may be "" */
    char *err;
    size_t errlen;
    bool failed;
} s_script_t;

static void
s_fail (s_script_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_fail (s_script_t *self, const char *fmt, ...)
{
    if (self->failed)
        return;                         /* the first fault is the one to say */
    self->failed = true;
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->err, self->errlen, fmt, args);
    va_end (args);
}

/*  1 if text is 1..max characters, each a letter, digit or one of extra. */
static int
s_safe (const char *text, size_t max, const char *extra)
{
    size_t len = text? strlen (text): 0;
    if (len == 0 || len > max)
        return 0;
    for (const char *c = text; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
           || (*c >= '0' && *c <= '9') || strchr (extra, *c)))
            return 0;
    return 1;
}

/*  The string field of step, checked; "" allowed when may_be_empty. */
static const char *
s_field (s_script_t *self, const json_t *step, const char *name, size_t max,
         const char *extra, bool may_be_empty)
{
    const char *text = json_string_value (json_object_get (step, name));
    if (may_be_empty && (!text || !*text))
        return "";
    if (!s_safe (text, max, extra)) {
        s_fail (self, "host step: %s is missing or has characters other than "
                "letters, digits and '%s'", name, extra);
        return "";
    }
    return text;
}

static void
s_line (s_script_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_line (s_script_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vfprintf (self->out, fmt, args);
    va_end (args);
    fputc ('\n', self->out);
}

/*  Writes object (attributes or vars) to path, exactly, through a quoted
    here-document: the shell expands nothing in it. */
static void
s_heredoc_json (s_script_t *self, const char *path, const json_t *object, const char *what)
{
    if (object && !json_is_object (object)) {
        s_fail (self, "host step: %s must be an object", what);
        return;
    }
    json_t *empty = json_object ();
    //  Compact and ASCII: one line, no raw control character or newline
    char *text = json_dumps (object? object: empty,
                             JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref (empty);
    if (!text) {
        s_fail (self, "host step: %s cannot be written as JSON", what);
        return;
    }
    if (strchr (text, '\n') || strcmp (text, S_EOF) == 0)
        s_fail (self, "host step: %s would break out of its here-document", what);
    else {
        s_line (self, "cat >%s <<'" S_EOF "'", path);
        s_line (self, "%s", text);
        s_line (self, S_EOF);
    }
    free (text);
}

/*  The common part: host name, disks, /etc/dexter. */
static void
s_common (s_script_t *self, const json_t *step)
{
    s_line (self, "#!/bin/bash");
    s_line (self, "# Dexter first boot: cluster %s (%s), host %s, role %s.",
            self->cluster, self->type, self->hostname, self->role);
    s_line (self, "# Written by common/dx_provision.c; its log is /var/log/dexter-provision.log.");
    s_line (self, "set -u");
    s_line (self, "exec >>/var/log/dexter-provision.log 2>&1");
    s_line (self, "echo \"dexter: provisioning starts $(date -u +%%FT%%TZ)\"");
    s_line (self, "umask 022");
    s_line (self, "%s", "");
    s_line (self, "# Host name");
    s_line (self, "hostnamectl set-hostname '%s' 2>/dev/null || hostname '%s'",
            self->hostname, self->hostname);
    s_line (self, "echo '%s' >/etc/hostname", self->hostname);
    s_line (self, "grep -q ' %s$' /etc/hosts || echo '127.0.1.1 %s' >>/etc/hosts",
            self->hostname, self->hostname);
    s_line (self, "%s", "");

    const json_t *disks = json_object_get (step, "disks");
    if (disks && !json_is_array (disks))
        s_fail (self, "host step: disks must be an array");
    if (json_array_size (disks) > 0) {
        s_line (self, "# Extra disks. A disk asked for as /dev/xvdX shows up as /dev/xvdX or");
        s_line (self, "# /dev/sdX (Xen), or on Nitro as an NVMe namespace whose EBS controller");
        s_line (self, "# names the device (bytes 3072-3103 of nvme id-ctrl, as ebsnvme-id reads).");
        s_line (self, "# On Azure the disks are at LUNs in device order (the second argument),");
        s_line (self, "# named by the udev rules of the Azure agent or of azure-vm-utils.");
        s_line (self, "dx_find_disk () {");
        s_line (self, "    local name=\"$1\" lun=\"$2\" letter=\"${1#xvd}\" link dev want");
        s_line (self, "    if [ -d /dev/disk/azure ]; then");
        s_line (self, "        for link in \"/dev/disk/azure/scsi1/lun$lun\" \"/dev/disk/azure/data/by-lun/$lun\"; do");
        s_line (self, "            dev=$(readlink -f \"$link\") && [ -b \"$dev\" ] && { echo \"$dev\"; return 0; }");
        s_line (self, "        done");
        s_line (self, "        return 1");
        s_line (self, "    fi");
        s_line (self, "    for dev in \"/dev/$name\" \"/dev/sd$letter\"; do");
        s_line (self, "        [ -b \"$dev\" ] && { echo \"$dev\"; return 0; }");
        s_line (self, "    done");
        s_line (self, "    for link in /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_*; do");
        s_line (self, "        [ -e \"$link\" ] || continue");
        s_line (self, "        case \"$link\" in *-part*) continue ;; esac");
        s_line (self, "        dev=$(readlink -f \"$link\")");
        s_line (self, "        command -v nvme >/dev/null || continue");
        s_line (self, "        want=$(nvme id-ctrl --raw-binary \"$dev\" 2>/dev/null | dd bs=1 skip=3072 count=32 2>/dev/null | tr -d ' \\000')");
        s_line (self, "        case \"${want#/dev/}\" in \"$name\"|\"sd$letter\") echo \"$dev\"; return 0 ;; esac");
        s_line (self, "    done");
        s_line (self, "    return 1");
        s_line (self, "}");
        s_line (self, "dx_disk () {");
        s_line (self, "    local name=\"$1\" lun=\"$2\" dev=\"\" i uuid");
        s_line (self, "    for i in $(seq 1 300); do");
        s_line (self, "        dev=$(dx_find_disk \"$name\" \"$lun\") && break");
        s_line (self, "        sleep 1");
        s_line (self, "    done");
        s_line (self, "    if [ -z \"$dev\" ]; then echo \"dexter: disk $name did not appear\"; return 1; fi");
        s_line (self, "    blkid \"$dev\" >/dev/null 2>&1 || mkfs.ext4 -q -F \"$dev\" || return 1");
        s_line (self, "    uuid=$(blkid -s UUID -o value \"$dev\")");
        s_line (self, "    mkdir -p \"/hdd/$name\"");
        s_line (self, "    grep -q \" /hdd/$name \" /etc/fstab ||");
        s_line (self, "        echo \"UUID=$uuid /hdd/$name ext4 defaults,nofail 0 2\" >>/etc/fstab");
        s_line (self, "    mountpoint -q \"/hdd/$name\" || mount \"/hdd/$name\"");
        s_line (self, "    echo \"dexter: disk $name is $dev, mounted at /hdd/$name\"");
        s_line (self, "}");
    }
    size_t i;
    json_t *disk;
    json_array_foreach (disks, i, disk) {
        char letter = dx_spec_disk_letter (json_string_value (json_object_get (disk, "device")));
        if (!letter) {
            s_fail (self, "host step: disk %zu: device must be one of xvdf to xvdz", i + 1);
            return;
        }
        //  Its LUN on Azure: the disks before it in device order
        size_t lun = 0, j;
        json_t *other;
        json_array_foreach (disks, j, other)
            if (dx_spec_disk_letter (json_string_value (json_object_get (other, "device")))
                < letter)
                lun++;
        s_line (self, "dx_disk xvd%c %zu", letter, lun);
    }
    s_line (self, "%s", "");
    s_line (self, "# What this host is, for the installs and for people");
    s_line (self, "mkdir -p /etc/dexter");
    s_line (self, "echo '%s' >/etc/dexter/role", self->group_role);
    s_heredoc_json (self, "/etc/dexter/attributes.json",
                    json_object_get (step, "attributes"), "attributes");
    s_heredoc_json (self, "/etc/dexter/vars.json", json_object_get (step, "vars"), "vars");
    s_line (self, "cat >/etc/dexter/cluster <<'" S_EOF "'");
    s_line (self, "DEXTER_CLUSTER=%s", self->cluster);
    s_line (self, "DEXTER_CLUSTER_TYPE=%s", self->type);
    s_line (self, "DEXTER_ROLE=%s", self->role);
    s_line (self, "DEXTER_GROUP=%s", self->group);
    s_line (self, "DEXTER_GROUP_ROLE=%s", self->group_role);
    s_line (self, "DEXTER_HOSTNAME=%s", self->hostname);
    s_line (self, "DEXTER_MASTERS=%s", self->masters);
    s_line (self, S_EOF);
    s_line (self, "echo '%s' | tr ',' '\\n' | sed '/^$/d' >/etc/dexter/masters", self->masters);
    s_line (self, "%s", "");
}

/*  The masters as Mesos' ZooKeeper URL, where a Mesos install reads it
    (/etc/mesos/zk of the Mesosphere packages). DC/OS takes its master list
    from the installer's config instead; /etc/dexter/masters serves it. */
static void
s_masters_for_install (s_script_t *self)
{
    if (strcmp (self->type, "mesos") != 0 || !*self->masters)
        return;
    s_line (self, "mkdir -p /etc/mesos");
    s_line (self, "echo \"zk://$(sed 's/$/:2181/' /etc/dexter/masters | paste -sd, -)/mesos\" >/etc/mesos/zk");
}

/*  The access node: the cluster's way in (ssh, and OpenVPN from the vpn
    service). */
static void
s_role_access (s_script_t *self)
{
    s_line (self, "# ---- Role: access node ----------------------------------------------");
    s_line (self, "# PROVISIONING ISSUE: install and start OpenVPN with the server");
    s_line (self, "# configuration of services/vpn here. Nothing is installed yet.");
    s_line (self, "echo 'dexter: access node: the VPN install is not written yet (provisioning issue)'");
}

/*  A master: Mesos master + ZooKeeper, or a DC/OS master. */
static void
s_role_master (s_script_t *self)
{
    s_line (self, "# ---- Role: master -----------------------------------------------------");
    s_masters_for_install (self);
    s_line (self, "# PROVISIONING ISSUE: install the %s master here (%s), reading",
            self->type, strcmp (self->type, "dcos") == 0
            ? "DC/OS installer, master_list from /etc/dexter/masters"
            : "ZooKeeper and mesos-master; quorum from /etc/dexter/masters");
    s_line (self, "# /etc/dexter/cluster. Nothing is installed yet.");
    s_line (self, "echo 'dexter: master: the %s install is not written yet (provisioning issue)'",
            self->type);
}

/*  An agent of a group: Mesos agent (or DC/OS agent), public or private
    by the group's role, with the group's attributes. */
static void
s_role_agent (s_script_t *self)
{
    s_line (self, "# ---- Role: agent ------------------------------------------------------");
    s_masters_for_install (self);
    s_line (self, "# PROVISIONING ISSUE: install the %s agent here, with role", self->type);
    s_line (self, "# /etc/dexter/role, attributes /etc/dexter/attributes.json and the");
    s_line (self, "# group's vars /etc/dexter/vars.json. Nothing is installed yet.");
    s_line (self, "echo 'dexter: agent: the %s install is not written yet (provisioning issue)'",
            self->type);
}

char *
dx_provision_script (const char *cluster, const json_t *step, char *err, size_t errlen)
{
    char scratch [8];
    s_script_t self = { .cluster = cluster, .err = err? err: scratch,
                        .errlen = err? errlen: sizeof scratch };
    if (errlen && err)
        *err = 0;
    if (!dx_spec_name_valid (cluster)) {
        s_fail (&self, "host step: the cluster name is missing or not a name");
        return NULL;
    }
    if (!json_is_object (step)) {
        s_fail (&self, "host step: not an object");
        return NULL;
    }
    self.role = s_field (&self, step, "role", 16, "", false);
    self.type = s_field (&self, step, "cluster_type", 16, "", false);
    self.hostname = s_field (&self, step, "hostname", 63, "-", false);
    self.group = json_string_value (json_object_get (step, "group"));
    if (!dx_spec_name_valid (self.group))
        s_fail (&self, "host step: group is missing or not a name");
    self.group_role = s_field (&self, step, "group_role", 64, "-_*.", true);
    const json_t *context = json_object_get (step, "context");
    const char *masters = json_string_value (json_object_get (context, "masters_ips"));
    self.masters = masters && *masters? masters: "";
    if (*self.masters && !s_safe (self.masters, 1024, ".,"))
        s_fail (&self, "host step: context.masters_ips must be IPs separated by commas");
    if (self.failed)
        return NULL;
    if (strcmp (self.type, "mesos") != 0 && strcmp (self.type, "dcos") != 0) {
        s_fail (&self, "host step: cluster_type must be mesos or dcos");
        return NULL;
    }
    if (!*self.group_role)
        self.group_role = strcmp (self.role, "agent") == 0? "*": self.role;

    char *text = NULL;
    size_t size = 0;
    self.out = open_memstream (&text, &size);
    if (!self.out) {
        s_fail (&self, "out of memory");
        return NULL;
    }
    s_common (&self, step);
    if (strcmp (self.role, "access") == 0)
        s_role_access (&self);
    else
    if (strcmp (self.role, "master") == 0)
        s_role_master (&self);
    else
    if (strcmp (self.role, "agent") == 0)
        s_role_agent (&self);
    else
        s_fail (&self, "host step: role must be access, master or agent");
    s_line (&self, "%s", "");
    s_line (&self, "echo \"dexter: provisioning ends $(date -u +%%FT%%TZ)\"");
    if (fclose (self.out) != 0)
        s_fail (&self, "out of memory");
    if (!self.failed && size > DX_PROVISION_MAX_BYTES)
        s_fail (&self, "the user data of host %s would be %zu bytes; EC2 takes at most %d "
                "(attributes and vars are too large)", self.hostname, size,
                DX_PROVISION_MAX_BYTES);
    if (self.failed) {
        free (text);
        return NULL;
    }
    return text;
}
