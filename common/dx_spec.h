/*  dx_spec: validation and normalization of what users send (docs/api.md,
    "Validation"). Pure functions: no I/O, no state.

    `in` is a JSON object of the request's fields: from a form every value is a
    string; from a JSON body values may be numbers, objects, etc. Each function
    appends one {"field": ..., "message": ...} object to `errors` (a JSON array)
    per fault, checking every field so that all faults are reported at once,
    and returns the normalized object (caller owns) or NULL when errors were
    added. Secret values go to `secrets` (a JSON object) instead of the result. */
#ifndef DX_SPEC_H
#define DX_SPEC_H

#include <jansson.h>

#define DX_NAME_MAX 16

/*  Hosts: a group's (from its cpus, ram and instance type) at most
    DX_GROUP_HOSTS_MAX, checked here; a cluster's groups together at most
    DX_CLUSTER_HOSTS_MAX (the access node and masters not counted), checked
    by the scheduler, which knows the other groups, at a group's write and
    at a deploy. Both bound what one deployment plans and runs. */
#define DX_GROUP_HOSTS_MAX   1000
#define DX_CLUSTER_HOSTS_MAX 5000

/*  Groups of one cluster, checked by the scheduler at a group's write: at
    most this many of the largest groups (DX_MSG_BODY_MAX-bound vars,
    attributes and customhwconf) still fit in one message, the group list
    or the deployment's snapshot. */
#define DX_CLUSTER_GROUPS_MAX 100

/*  A config's master_type when it names none, per provider. */
#define DX_SPEC_MASTER_TYPE_AWS   "m3.large"
#define DX_SPEC_MASTER_TYPE_AZURE "Basic_A2"

/*  The rule for cluster and group names, which every service checks with
    this function: 1 to DX_NAME_MAX lowercase letters and digits, starting
    with a letter (^[a-z][a-z0-9]{0,15}$). 1 if s is such a name, else 0
    (NULL included). */
int dx_spec_name_valid (const char *s);

/*  The letter of an extra disk's device name, xvdf to xvdz ("/dev/" may
    come first): 'f' to 'z', or 0 for anything else (NULL included). */
char dx_spec_disk_letter (const char *device);

/*  POST /clusters: {name, provider, type}. */
json_t *dx_spec_cluster (const json_t *in, json_t *errors);

/*  PUT config. aws -> {master_type, masters, region, sshkey[, image]},
    secrets {sshkeydata: PEM text}; azure -> {master_type, masters, location,
    location_name, ssh_user[, image]}, secrets {ssh_password}. */
json_t *dx_spec_config (const char *provider, const json_t *in,
                        json_t *secrets, json_t *errors);

/*  POST/PUT group -> {name, role, attributes, vars, instance_type, cpus, ram,
    disk_size, customhwconf: {disks: [{size, type, device}]}, hosts,
    instance: {vcpus, memory_gib}}. */
json_t *dx_spec_group (const char *provider, const json_t *in, json_t *errors);

/*  PUT deployment -> {command, parallelism}; secrets gets aws
    {aws_access_key_id, aws_secret_access_key[, aws_session_token]} or azure
    {clientId, clientSecret, tenantId, subscriptionId[, endpoint urls]}. */
json_t *dx_spec_deployment (const char *provider, const json_t *in,
                            json_t *secrets, json_t *errors);

#endif
