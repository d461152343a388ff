/*  dx_provision: the user data (a cloud-init shell script) that turns a
    fresh Ubuntu instance into one host of a cluster.

    The one place that knows what a host does at first boot, for every
    provider: the aws-worker passes the script as RunInstances' UserData,
    the azure-worker will pass it as customData. Input is the `host` step
    map of proto/PROTOCOL.md ("Steps") and the cluster's name; the step's
    `context.masters_ips` gives the masters.

    The script, in order:
      - sets the host name (and /etc/hosts);
      - for each extra disk (`disks`: xvdf..xvdz) waits for the device
        (/dev/xvdX, /dev/sdX, or on Nitro instances the NVMe namespace
        whose EBS controller names that device; on Azure the disk at its
        LUN, the disks being at LUNs in device order), makes an ext4 file
        system when there is none, mounts it at /hdd/<device> and adds it
        to /etc/fstab (by UUID, nofail);
      - writes /etc/dexter/role (the group role), attributes.json and
        vars.json (the JSON exactly, in quoted here-documents: nothing in
        it is expanded by the shell), cluster (KEY=VALUE: name, type,
        role, group, host, masters) and masters (one IP per line);
      - then the role's own part: one function per role (access, master,
        agent) in dx_provision.c. The Mesos/DC-OS and VPN installs are not
        written yet; each role's part says so in the script and in its
        log instead of pretending.

    Every value that goes into the script is checked against a strict
    character set (host names, groups, roles, devices, IPs), and JSON goes
    only into quoted here-documents as one line, so no value can run a
    command. The script must fit EC2's 16 KiB user data limit. */
#ifndef DX_PROVISION_H
#define DX_PROVISION_H

#include <stddef.h>
#include <jansson.h>

#define DX_PROVISION_MAX_BYTES 16384    /* EC2's limit on decoded user data */

/*  The script for the host step (role, hostname, cluster_type, group,
    group_role, attributes, vars, disks, context.masters_ips) of cluster
    `cluster`. Returns a new NUL-terminated string (caller frees), or NULL
    with a sentence in err (errlen bytes) when a value is missing or unsafe
    or the script would be over DX_PROVISION_MAX_BYTES. */
char *dx_provision_script (const char *cluster, const json_t *step,
                           char *err, size_t errlen);

#endif
