/*  dx_provision_base: what every host gets, whatever its role: the head
    of the shell part (logging, the apt helper), the host name, the extra
    disks at /hdd/<device>, and /etc/dexter (the cluster facts, the
    group's role, attributes and vars, and the vars as environment). See
    dx_provision_host.h. */
#include "dx_provision_host.h"
#include "dx_spec.h"

#include <stdlib.h>
#include <string.h>

static const char *const s_head [] = {
    "set -euo pipefail",
    "exec >>/var/log/dexter-provision.log 2>&1",
    "trap 'echo \"dexter: provisioning failed at line $LINENO\"' ERR",
    "echo \"dexter: provisioning starts $(date -u +%FT%TZ)\"",
    "export DEBIAN_FRONTEND=noninteractive",
    "umask 022",
    "",
    "# apt-get, waiting for the lock another first-boot job may hold and",
    "# trying again when a mirror fails for a moment; packages keep the",
    "# configuration files written before them.",
    "dx_apt () {",
    "    local i",
    "    for i in 1 2 3 4 5; do",
    "        apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold \"$@\" && return 0",
    "        echo \"dexter: apt-get $* failed (attempt $i)\"",
    "        sleep 15",
    "    done",
    "    return 1",
    "}",
    "",
    NULL
};

static const char *const s_disk_functions [] = {
    "# Extra disks. A disk asked for as /dev/xvdX shows up as /dev/xvdX or",
    "# /dev/sdX (Xen), or on Nitro as an NVMe namespace whose EBS controller",
    "# names the device (bytes 3072-3103 of nvme id-ctrl, as ebsnvme-id reads).",
    "# On Azure the disks are at LUNs in device order (the second argument),",
    "# named by the udev rules of the Azure agent or of azure-vm-utils.",
    "dx_find_disk () {",
    "    local name=\"$1\" lun=\"$2\" letter=\"${1#xvd}\" link dev want",
    "    if [ -d /dev/disk/azure ]; then",
    "        for link in \"/dev/disk/azure/scsi1/lun$lun\" \"/dev/disk/azure/data/by-lun/$lun\"; do",
    "            dev=$(readlink -f \"$link\") && [ -b \"$dev\" ] && { echo \"$dev\"; return 0; }",
    "        done",
    "        return 1",
    "    fi",
    "    for dev in \"/dev/$name\" \"/dev/sd$letter\"; do",
    "        [ -b \"$dev\" ] && { echo \"$dev\"; return 0; }",
    "    done",
    "    for link in /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_*; do",
    "        [ -e \"$link\" ] || continue",
    "        case \"$link\" in *-part*) continue ;; esac",
    "        dev=$(readlink -f \"$link\")",
    "        command -v nvme >/dev/null || continue",
    "        want=$(nvme id-ctrl --raw-binary \"$dev\" 2>/dev/null | dd bs=1 skip=3072 count=32 2>/dev/null | tr -d ' \\000')",
    "        case \"${want#/dev/}\" in \"$name\"|\"sd$letter\") echo \"$dev\"; return 0 ;; esac",
    "    done",
    "    return 1",
    "}",
    "dx_disk () {",
    "    local name=\"$1\" lun=\"$2\" dev=\"\" uuid",
    "    for _ in $(seq 1 300); do",
    "        dev=$(dx_find_disk \"$name\" \"$lun\") && break",
    "        sleep 1",
    "    done",
    "    if [ -z \"$dev\" ]; then echo \"dexter: disk $name did not appear\"; return 1; fi",
    "    blkid \"$dev\" >/dev/null 2>&1 || mkfs.ext4 -q -F \"$dev\"",
    "    uuid=$(blkid -s UUID -o value \"$dev\")",
    "    mkdir -p \"/hdd/$name\"",
    "    grep -q \" /hdd/$name \" /etc/fstab ||",
    "        echo \"UUID=$uuid /hdd/$name ext4 defaults,nofail 0 2\" >>/etc/fstab",
    "    mountpoint -q \"/hdd/$name\" || mount \"/hdd/$name\"",
    "    echo \"dexter: disk $name is $dev, mounted at /hdd/$name\"",
    "}",
    NULL
};

static const char *const s_imds [] = {
    "# One document for a whole batch: this instance's slot is the batch's",
    "# first plus its place in the launch, ami-launch-index, read from the",
    "# instance metadata (IMDSv2: a session token first).",
    "dx_imds () {",
    "    local token",
    "    token=$(curl -fsS --retry 10 --retry-connrefused -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' http://169.254.169.254/latest/api/token) || return 1",
    "    curl -fsS --retry 10 --retry-connrefused -H \"X-aws-ec2-metadata-token: $token\" \"http://169.254.169.254/latest/meta-data/$1\"",
    "}",
    "index=$(dx_imds ami-launch-index)",
    "case \"$index\" in",
    "    ''|*[!0-9]*) echo \"dexter: ami-launch-index '$index' is not a number\"; exit 1 ;;",
    "esac",
    NULL
};

/*  The host name of an agent of a batch, worked out before anything uses
    it; /etc/dexter/cluster gets it as the others get theirs. */
static void
s_batch_hostname (dx_prov_t *self)
{
    dx_prov_sh_lines (self, s_imds);
    dx_prov_sh (self, "dx_host=\"%s$((%lld + 10#$index))\"", self->hostname_prefix, self->batch);
    dx_prov_sh (self, "hostnamectl set-hostname \"$dx_host\" || hostname \"$dx_host\"");
    dx_prov_sh (self, "echo \"$dx_host\" >/etc/hostname");
    dx_prov_sh (self, "grep -q \" $dx_host\\$\" /etc/hosts || echo \"127.0.1.1 $dx_host\" >>/etc/hosts");
    dx_prov_sh (self, "grep -q '^DEXTER_HOSTNAME=' /etc/dexter/cluster ||");
    dx_prov_sh (self, "    echo \"DEXTER_HOSTNAME=$dx_host\" >>/etc/dexter/cluster");
}

/*  object as one line of compact ASCII JSON, sorted; caller frees. */
static char *
s_json (dx_prov_t *self, const json_t *object, const char *what)
{
    char *text = json_dumps (object, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (!text)
        dx_prov_fail (self, "host step: %s cannot be written as JSON", what);
    return text;
}

/*  The group's vars as KEY=VALUE lines for /etc/environment and systemd's
    EnvironmentFile: the vars whose name is an environment name and whose
    value is a string, number or boolean of plain characters (none that
    either reader would take for quoting, escaping or expansion). The
    others are only in vars.json. Caller frees. */
static char *
s_vars_env (dx_prov_t *self, size_t *left_out)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out) {
        dx_prov_fail (self, "out of memory");
        return NULL;
    }
    *left_out = 0;
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) self->vars, key, value) {
        char scalar [64];
        const char *text_value = dx_prov_scalar (value, scalar, sizeof scalar);
        bool name_ok = dx_prov_chars (key, 128, "_") && !(key [0] >= '0' && key [0] <= '9');
        bool value_ok = text_value
            && (!*text_value || dx_prov_chars (text_value, 4096, " _.,:/@%+=-"))
            && text_value [0] != ' ' && (!*text_value || text_value [strlen (text_value) - 1] != ' ');
        if (name_ok && value_ok)
            fprintf (out, "%s=%s\n", key, text_value);
        else
            (*left_out)++;
    }
    if (fclose (out) != 0) {
        free (text);
        dx_prov_fail (self, "out of memory");
        return NULL;
    }
    return text;
}

static void
s_dexter_files (dx_prov_t *self)
{
    char *attributes = s_json (self, self->attributes, "attributes");
    char *vars = s_json (self, self->vars, "vars");
    size_t left_out = 0;
    char *env = s_vars_env (self, &left_out);
    if (attributes && vars && env) {
        dx_prov_file_fmt (self, "/etc/dexter/role", "0644", "%s\n", self->group_role);
        dx_prov_file_fmt (self, "/etc/dexter/attributes.json", "0644", "%s\n", attributes);
        dx_prov_file_fmt (self, "/etc/dexter/vars.json", "0644", "%s\n", vars);
        dx_prov_file (self, "/etc/dexter/vars.env", "0644", env);
        char masters [DX_PROV_MASTERS_MAX * 17 + 1] = "";
        char lines [DX_PROV_MASTERS_MAX * 17 + 1] = "";
        for (size_t i = 0; i < self->master_count; i++) {
            strcat (masters, i? ",": "");
            strcat (masters, self->masters [i]);
            strcat (lines, self->masters [i]);
            strcat (lines, "\n");
        }
        dx_prov_file (self, "/etc/dexter/masters", "0644", lines);
        //  A batch's agent adds its host name when it knows it
        char host_line [96] = "";
        if (!self->batched)
            snprintf (host_line, sizeof host_line, "DEXTER_HOSTNAME=%s\n", self->hostname);
        dx_prov_file_fmt (self, "/etc/dexter/cluster", "0644",
            "DEXTER_CLUSTER=%s\nDEXTER_CLUSTER_TYPE=%s\nDEXTER_PROVIDER=%s\n"
            "DEXTER_ROLE=%s\nDEXTER_GROUP=%s\nDEXTER_GROUP_ROLE=%s\n%s"
            "DEXTER_MASTERS=%s\n", self->cluster, self->type, self->provider, self->role,
            self->group, self->group_role, host_line, masters);
    }
    if (left_out)
        dx_prov_sh (self, "echo 'dexter: %zu of the group vars are not plain KEY=VALUE and are "
                    "only in /etc/dexter/vars.json'", left_out);
    free (attributes);
    free (vars);
    free (env);
}

void
dx_prov_base (dx_prov_t *self)
{
    dx_prov_sh (self, "#!/bin/bash");
    dx_prov_sh (self, "# Dexter first boot: cluster %s (%s on %s), host %s, role %s.",
                self->cluster, self->type, self->provider, self->hostname, self->role);
    dx_prov_sh (self, "# Written by common/dx_provision; the #cloud-config part wrote its files.");
    dx_prov_sh (self, "# Its log is /var/log/dexter-provision.log.");
    dx_prov_sh_lines (self, s_head);

    dx_prov_sh (self, "# Host name");
    if (self->batched)
        s_batch_hostname (self);
    else {
        dx_prov_sh (self, "hostnamectl set-hostname '%s' || hostname '%s'",
                    self->hostname, self->hostname);
        dx_prov_sh (self, "echo '%s' >/etc/hostname", self->hostname);
        dx_prov_sh (self, "grep -q ' %s$' /etc/hosts || echo '127.0.1.1 %s' >>/etc/hosts",
                    self->hostname, self->hostname);
    }
    dx_prov_sh (self, "%s", "");

    if (json_array_size (self->disks) > 0)
        dx_prov_sh_lines (self, s_disk_functions);
    size_t i;
    json_t *disk;
    json_array_foreach (self->disks, i, disk) {
        char letter = dx_spec_disk_letter (json_string_value (json_object_get (disk, "device")));
        if (!letter) {
            dx_prov_fail (self, "host step: disk %zu: device must be one of xvdf to xvdz", i + 1);
            return;
        }
        //  Its LUN on Azure: the disks before it in device order
        size_t lun = 0, j;
        json_t *other;
        json_array_foreach (self->disks, j, other)
            if (dx_spec_disk_letter (json_string_value (json_object_get (other, "device")))
                < letter)
                lun++;
        dx_prov_sh (self, "dx_disk xvd%c %zu", letter, lun);
    }
    if (json_array_size (self->disks) > 0)
        dx_prov_sh (self, "%s", "");

    dx_prov_sh (self, "# The group's vars in every login's environment (/etc/dexter/vars.env)");
    dx_prov_sh (self, "grep -q '^# dexter vars$' /etc/environment 2>/dev/null ||");
    dx_prov_sh (self, "    { echo '# dexter vars'; cat /etc/dexter/vars.env; } >>/etc/environment");
    s_dexter_files (self);
    dx_prov_sh (self, "%s", "");
}
