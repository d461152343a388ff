/*  az_network: the steps that make and remove a cluster's network and its
    firewall: network (the resource group, the virtual network and its two
    subnets), security (three network security groups), and on destroy
    destroy.group, which deletes the resource group and with it everything
    the cluster has. The network plan is common/dx_netplan.h; docs/azure.md
    says what each step calls.

    Every write is a PUT of the whole resource by name, made only when a
    GET does not show it already as wanted: a step run again on an
    unchanged cluster writes nothing. */
#include "az_run.h"
#include "dx_log.h"
#include "dx_netplan.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define S_NSG_TYPE      "Microsoft.Network/networkSecurityGroups"
#define S_VNET_TYPE     "Microsoft.Network/virtualNetworks"

/*  The two subnets of the network plan, by the key they are reported and
    looked up under, and their name in the virtual network. */
static const struct {
    const char *key;
    const char *cidr;
    const char *name;
} s_subnets [] = {
    { "subnet", DX_NET_SUBNET_CIDR, "hosts" },
    { "subnet.agents", DX_NET_AGENTS_CIDR, "agents" },
};
#define S_SUBNETS (sizeof s_subnets / sizeof s_subnets [0])

//  ---------------------------------------------------------------------
//  What the steps share

/*  A location as ARM compares it: its name or display name, any case
    ("West Europe" is "westeurope"). */
static bool
s_same_location (const char *a, const char *b)
{
    while (*a || *b) {
        if (*a == ' ')
            a++;
        else
        if (*b == ' ')
            b++;
        else
        if (!*a || !*b || (*a | 0x20) != (*b | 0x20))
            return false;
        else {
            a++;
            b++;
        }
    }
    return true;
}

/*  The element of array have called name (ARM lists a parent's subnets
    and rules by name), or NULL. */
static const json_t *
s_named (const json_t *have, const char *name)
{
    size_t i;
    json_t *item;
    json_array_foreach (have, i, item) {
        const char *its = json_string_value (json_object_get (item, "name"));
        if (its && strcasecmp (its, name) == 0)
            return item;
    }
    return NULL;
}

/*  1 when have (a GET's answer) holds everything of want (a body to PUT):
    every member with the same value, what ARM adds (ids, etags, states,
    read-only members) aside; arrays of the same length, their elements
    matched by name. Strings compare as ARM does, case aside (enum values,
    names), except tags (exact) and locations (display names too). */
static bool
s_covers (const json_t *have, const json_t *want, bool exact)
{
    if (json_is_object (want)) {
        if (!json_is_object (have))
            return false;
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *) want, key, value) {
            const json_t *its = json_object_get (have, key);
            if (strcmp (key, "location") == 0 && json_is_string (value)) {
                if (!json_is_string (its)
                ||  !s_same_location (json_string_value (its), json_string_value (value)))
                    return false;
            }
            else
            if (!s_covers (its, value, exact || strcmp (key, "tags") == 0))
                return false;
        }
        return true;
    }
    if (json_is_array (want)) {
        if (!json_is_array (have) || json_array_size (have) != json_array_size (want))
            return false;
        size_t i;
        json_t *value;
        json_array_foreach (want, i, value) {
            const char *name = json_string_value (json_object_get (value, "name"));
            if (!s_covers (name? s_named (have, name): json_array_get (have, i), value, exact))
                return false;
        }
        return true;
    }
    if (json_is_string (want)) {
        const char *its = json_string_value (have);
        return its && (exact? strcmp (its, json_string_value (want))
                            : strcasecmp (its, json_string_value (want))) == 0;
    }
    return json_equal (have, want);
}

/*  The provisioning state of a resource (or group) in an answer. */
static const char *
s_state (const json_t *resource)
{
    return json_string_value (json_object_get (json_object_get (resource, "properties"),
                                               "provisioningState"));
}

/*  GETs path into *found: the resource, or NULL when it does not exist.
    0, or -1 with the outcome set. A GET that meets a resource still
    being changed (a twin attempt's PUT, a group being deleted) waits
    until its operation ends and answers it as it is then (az_arm). */
static int
s_look (az_run_t *run, const char *path, const char *api_version, json_t **found)
{
    *found = az_run_call (run, "GET", path, api_version, NULL);
    if (*found || az_run_gone (run))
        return 0;
    return az_run_failed (run, "GET", path);
}

/*  The resource at path as body (taken) says, and ARM's answer (caller
    decrefs), or NULL with the outcome set. PUT only when found (the GET's
    answer, taken; NULL: none) is not that already, provisioned: a PUT
    after an operation that failed makes it again. */
static json_t *
s_put_unless_same (az_run_t *run, const char *path, const char *api_version, json_t *body,
                   json_t *found)
{
    const char *state = s_state (found);
    if (found && state && strcasecmp (state, "Succeeded") == 0 && s_covers (found, body, false)) {
        json_decref (body);
        return found;
    }
    json_decref (found);
    if (!body) {
        dx_step_outcome (run->out, DX_STEP_RETRY, 0, "OutOfMemory", "out of memory");
        return NULL;
    }
    json_t *answer = az_run_ask (run, "PUT", path, api_version, body);
    json_decref (body);
    return answer;
}

/*  s_put_unless_same after a GET of path. */
static json_t *
s_ensure (az_run_t *run, const char *path, const char *api_version, json_t *body)
{
    json_t *found;
    if (s_look (run, path, api_version, &found)) {
        json_decref (body);
        return NULL;
    }
    return s_put_unless_same (run, path, api_version, body, found);
}

/*  The step's location: config.location. 0, or -1 with the outcome set. */
static int
s_location (az_run_t *run)
{
    if (run->location && *run->location)
        return 0;
    return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep",
                            "the step has no config.location");
}

/*  0 when group (a GET's answer) is this cluster's: its dexter:cluster
    tag names it. Else the step fails for good, since a group of that
    name that is not ours is someone else's to keep: -1. */
static int
s_owned (az_run_t *run, const json_t *group)
{
    const char *owner = json_string_value (json_object_get (json_object_get (group, "tags"),
                                                            "dexter:cluster"));
    if (owner && strcmp (owner, run->job.cluster) == 0)
        return 0;
    return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "ResourceGroupNotOwned",
                            "resource group %s exists and is not cluster %s's (its dexter:cluster "
                            "tag is %s%s%s); Dexter leaves it alone", run->group, run->job.cluster,
                            owner? "'": "", owner? owner: "missing", owner? "'": "");
}

/*  The id of an answer, reported under key as kind: the resource, or
    NULL with the outcome set. */
static json_t *
s_report (az_run_t *run, const json_t *answer, const char *key, const char *kind)
{
    const char *id = json_string_value (json_object_get (answer, "id"));
    if (!id || !*id) {
        dx_step_outcome (run->out, DX_STEP_FAILED, 0, "InvalidResponse", "ARM answered %s "
                         "without its id", key);
        return NULL;
    }
    return dx_step_resource (run->out, key, kind, id);
}

//  ---------------------------------------------------------------------
//  network

/*  The cluster's resource group, in the step's location, tagged. A group
    of that name that is not ours is refused. One still being deleted (a
    destroy before) is waited for: its GET follows it until it is gone,
    and a PUT into it answers ResourceGroupBeingDeleted, which is retry. */
static int
s_group (az_run_t *run)
{
    char path [128];
    snprintf (path, sizeof path, "resourceGroups/%s", run->group);
    json_t *found;
    if (s_look (run, path, AZ_API_RESOURCES, &found))
        return -1;
    if (found && s_owned (run, found)) {
        json_decref (found);
        return -1;
    }
    json_t *body = json_pack ("{s:s, s:o}", "location", run->location,
                              "tags", az_run_tags (run, "network", NULL, NULL));
    json_t *group = s_put_unless_same (run, path, AZ_API_RESOURCES, body, found);
    if (!group)
        return -1;
    json_t *res = s_report (run, group, "rg", "resource_group");
    if (res)
        dx_step_attr (res, "location", json_string_value (json_object_get (group, "location")));
    json_decref (group);
    return res? 0: -1;
}

/*  The virtual network NAME-vnet with both subnets inline: a VNet's PUT is
    the whole VNet, and a subnet it leaves out is deleted. */
static int
s_vnet (az_run_t *run)
{
    char name [128], path [256];
    snprintf (name, sizeof name, "%s-vnet", run->job.cluster);
    az_run_path (run, path, sizeof path, S_VNET_TYPE, name);
    json_t *subnets = json_array ();
    for (size_t n = 0; n < S_SUBNETS; n++)
        json_array_append_new (subnets, json_pack ("{s:s, s:{s:s}}", "name", s_subnets [n].name,
                                                   "properties", "addressPrefix",
                                                   s_subnets [n].cidr));
    json_t *body = json_pack ("{s:s, s:o, s:{s:{s:[s]}, s:o}}", "location", run->location,
                              "tags", az_run_tags (run, "network", NULL, NULL),
                              "properties", "addressSpace", "addressPrefixes", DX_NET_CIDR,
                              "subnets", subnets);
    json_t *vnet = s_ensure (run, path, AZ_API_NETWORK, body);
    if (!vnet)
        return -1;
    int rc = -1;
    json_t *res = s_report (run, vnet, "vnet", "virtual_network");
    if (res) {
        dx_step_attr (res, "name", name);
        dx_step_attr (res, "cidr", DX_NET_CIDR);
        rc = 0;
    }
    const json_t *have = json_object_get (json_object_get (vnet, "properties"), "subnets");
    for (size_t n = 0; rc == 0 && n < S_SUBNETS; n++) {
        const json_t *subnet = s_named (have, s_subnets [n].name);
        if (!(res = s_report (run, subnet, s_subnets [n].key, "subnet")))
            rc = -1;
        else {
            dx_step_attr (res, "name", s_subnets [n].name);
            dx_step_attr (res, "cidr", s_subnets [n].cidr);
        }
    }
    json_decref (vnet);
    return rc;
}

int
az_step_network (az_run_t *run)
{
    if (s_location (run) || s_group (run))
        return -1;
    return s_vnet (run);
}

//  ---------------------------------------------------------------------
//  security
//
//  A NIC has one network security group, so each group is the complete
//  set of rules for a role: the host step puts nsg.access on the access
//  node, nsg.public on public agents and nsg.cluster on the others.
//  Azure's default rules, below every group's own, already allow traffic
//  from the virtual network and deny the rest of the internet.

typedef struct {
    const char *name;                   /* of the rule */
    const char *protocol;               /* "Tcp", "Udp" */
    const char *ports;                  /* "22", "10000-10100" */
} s_rule_t;

typedef struct {
    const char *suffix;                 /* of the name NAME-nsg-suffix and key nsg.suffix */
    s_rule_t rules [4];
} s_nsg_t;

static const s_nsg_t s_nsgs [] = {
    { "cluster", { { NULL, NULL, NULL } } },
    { "access", { { "ssh", "Tcp", "22" }, { "openvpn", "Udp", "1194" }, { NULL, NULL, NULL } } },
    { "public", { { "http", "Tcp", "80" }, { "https", "Tcp", "443" },
                  { "services", "Tcp", "10000-10100" }, { NULL, NULL, NULL } } },
};

/*  The rules of nsg, from anywhere, inbound, priorities 100, 110, ... */
static json_t *
s_rules (const s_nsg_t *nsg)
{
    json_t *rules = json_array ();
    int priority = 100;
    for (const s_rule_t *rule = nsg->rules; rule->name; rule++, priority += 10)
        json_array_append_new (rules, json_pack (
            "{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s}}", "name", rule->name,
            "properties", "protocol", rule->protocol, "sourcePortRange", "*",
            "destinationPortRange", rule->ports, "sourceAddressPrefix", "*",
            "destinationAddressPrefix", "*", "access", "Allow", "priority", priority,
            "direction", "Inbound"));
    return rules;
}

/*  Each network security group with exactly its rules. Their PUTs go out
    together, so that ARM runs their operations at once; then each is
    followed to its end. */
int
az_step_security (az_run_t *run)
{
    if (s_location (run))
        return -1;
    enum { COUNT = sizeof s_nsgs / sizeof s_nsgs [0] };
    char names [COUNT][128], paths [COUNT][256];
    json_t *answers [COUNT] = { NULL };
    az_call_t *calls [COUNT] = { NULL };
    int rc = 0;
    for (size_t i = 0; i < COUNT && rc == 0; i++) {
        snprintf (names [i], sizeof names [i], "%s-nsg-%s", run->job.cluster, s_nsgs [i].suffix);
        az_run_path (run, paths [i], sizeof paths [i], S_NSG_TYPE, names [i]);
        json_t *body = json_pack ("{s:s, s:o, s:{s:o}}", "location", run->location,
                                  "tags", az_run_tags (run, "security", NULL, NULL),
                                  "properties", "securityRules", s_rules (&s_nsgs [i]));
        json_t *found = NULL;
        if (!body)
            rc = dx_step_outcome (run->out, DX_STEP_RETRY, 0, "OutOfMemory", "out of memory");
        else
        if (s_look (run, paths [i], AZ_API_NETWORK, &found))
            rc = -1;
        else {
            const char *state = s_state (found);
            if (found && state && strcasecmp (state, "Succeeded") == 0
            &&  s_covers (found, body, false))
                answers [i] = found;
            else {
                json_decref (found);
                dx_debug ("cluster %s: PUT %s", run->job.cluster, paths [i]);
                calls [i] = az_run_begin (run, "PUT", paths [i], AZ_API_NETWORK, body);
                if (!calls [i])
                    rc = dx_step_outcome (run->out, DX_STEP_RETRY, 0, "OutOfMemory",
                                          "out of memory");
            }
        }
        json_decref (body);
    }
    //  Every begun call is finished, even after a failure: its operation
    //  runs in ARM whatever we do, and what it made is reported
    for (size_t i = 0; i < COUNT; i++)
        if (calls [i] && !(answers [i] = az_run_finish (run, &calls [i], "PUT", paths [i])))
            rc = -1;
    for (size_t i = 0; i < COUNT; i++) {
        char key [32];
        snprintf (key, sizeof key, "nsg.%s", s_nsgs [i].suffix);
        json_t *res = answers [i]? s_report (run, answers [i], key, "network_security_group"): NULL;
        if (res)
            dx_step_attr (res, "name", names [i]);
        else
        if (answers [i])
            rc = -1;
        json_decref (answers [i]);
    }
    return rc;
}

//  ---------------------------------------------------------------------
//  destroy.group
//
//  Everything a cluster has lives in its resource group, so deleting the
//  group (ARM deletes what it holds, in the order their dependencies
//  need) leaves nothing tagged with the cluster. Only a group tagged as
//  this cluster's is deleted.

int
az_step_destroy_group (az_run_t *run)
{
    char path [128], id [256] = "";
    snprintf (path, sizeof path, "resourceGroups/%s", run->group);
    json_t *found;
    if (s_look (run, path, AZ_API_RESOURCES, &found))
        return -1;
    if (found) {
        int rc = s_owned (run, found);
        const char *its = json_string_value (json_object_get (found, "id"));
        snprintf (id, sizeof id, "%s", its? its: "");
        json_decref (found);
        if (rc || az_run_delete (run, path, AZ_API_RESOURCES))
            return -1;
    }
    json_t *res = dx_step_resource (run->out, "rg", "resource_group", id);
    dx_step_attr (res, "state", "deleted");
    return 0;
}
