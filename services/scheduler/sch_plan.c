/*  sch_plan: spec snapshot + recorded resources -> the steps of a
    deployment. See sch_plan.h and proto/PROTOCOL.md, "Steps". */
#include "sch_plan.h"
#include "dx_netplan.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define S_MAX_SLOTS 4096                /* more hosts than any group may have */

/*  The cluster-wide fields every step map carries. */
typedef struct {
    const char *name;
    const char *provider;
    const char *type;
    char uid [13];
    json_t *config;                     /* the config without bookkeeping */
} s_plan_t;

char *
sch_plan_uid (const char *name, const char *created_at, char *buf)
{
    unsigned char hash [6];
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, sizeof hash);
    crypto_generichash_update (&state, (const unsigned char *) name, strlen (name));
    crypto_generichash_update (&state, (const unsigned char *) "\n", 1);
    if (created_at)
        crypto_generichash_update (&state, (const unsigned char *) created_at,
                                   strlen (created_at));
    crypto_generichash_final (&state, hash, sizeof hash);
    sodium_bin2hex (buf, 13, hash, sizeof hash);
    return buf;
}

/*  A new step map of kind with the cluster-wide fields. */
static json_t *
s_plan_step (const s_plan_t *plan, const char *kind, const char *id)
{
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:O}",
                      "kind", kind, "id", id, "provider", plan->provider,
                      "cluster_type", plan->type, "uid", plan->uid,
                      "config", plan->config);
}

/*  Appends job {id, kind, needs, step} (step taken). */
static void
s_plan_add (json_t *jobs, json_t *step, json_t *needs)
{
    json_t *job = json_pack ("{s:O, s:O, s:o, s:o}",
                             "id", json_object_get (step, "id"),
                             "kind", json_object_get (step, "kind"),
                             "needs", needs? needs: json_array (),
                             "step", step);
    json_array_append_new (jobs, job);
}

/*  The jobs a host needs: the network, security, image and key pair. */
static json_t *
s_plan_host_needs (void)
{
    return json_pack ("[s, s, s, s]", "network", "security", "image", "keypair");
}

/*  Recorded slots of group (hosts not terminated), as a bitmap of
    S_MAX_SLOTS; returns how many. */
static int
s_plan_recorded (const json_t *resources, const char *group, unsigned char *slots)
{
    memset (slots, 0, S_MAX_SLOTS);
    char prefix [64];
    snprintf (prefix, sizeof prefix, "host.%s.", group);
    size_t prefix_len = strlen (prefix);
    int count = 0;
    const char *key;
    json_t *resource;
    json_object_foreach ((json_t *) resources, key, resource) {
        if (strncmp (key, prefix, prefix_len) != 0)
            continue;
        const char *state = json_string_value (json_object_get (resource, "state"));
        if (state && (strcmp (state, "terminated") == 0 || strcmp (state, "deleted") == 0))
            continue;
        char *end;
        long slot = strtol (key + prefix_len, &end, 10);
        if (*end || end == key + prefix_len || slot < 0 || slot >= S_MAX_SLOTS)
            continue;
        if (!slots [slot]) {
            slots [slot] = 1;
            count++;
        }
    }
    return count;
}

/*  The recorded launch time of a group's host ("" when not known). */
static const char *
s_plan_launched (const json_t *resources, const char *group, int slot)
{
    char key [64];
    snprintf (key, sizeof key, "host.%s.%d", group, slot);
    const char *at = json_string_value (json_object_get (json_object_get (resources, key),
                                                         "launched_at"));
    return at? at: "";
}

/*  1 if host a of group is newer than host b: launched later, or at the
    same time (or neither known) with the higher slot. */
static int
s_plan_newer (const json_t *resources, const char *group, int a, int b)
{
    int cmp = strcmp (s_plan_launched (resources, group, a),
                      s_plan_launched (resources, group, b));
    return cmp? cmp > 0: a > b;
}

/*  Decides the slots of a group that wants n hosts: drops the newest of
    the recorded ones beyond n (drop), keeps the others, and fills up with
    the lowest free numbers (want). Newest is by recorded launch time, then
    by slot; the masters go by slot alone, as their fixed addresses
    (dx_netplan.h: base + slot) must stay the first n. */
static void
s_plan_slots (const json_t *resources, const char *group, int n,
              unsigned char *want, unsigned char *drop)
{
    unsigned char recorded [S_MAX_SLOTS];
    int count = s_plan_recorded (resources, group, recorded);
    memset (want, 0, S_MAX_SLOTS);
    memset (drop, 0, S_MAX_SLOTS);
    bool by_slot = strcmp (group, "masters") == 0;
    for (; count > n; count--) {
        int newest = -1;
        for (int slot = 0; slot < S_MAX_SLOTS; slot++)
            if (recorded [slot] && !drop [slot]
            &&  (newest < 0 || (by_slot? slot > newest
                                       : s_plan_newer (resources, group, slot, newest))))
                newest = slot;
        drop [newest] = 1;
    }
    int kept = 0;
    for (int slot = 0; slot < S_MAX_SLOTS; slot++)
        if (recorded [slot] && !drop [slot]) {
            want [slot] = 1;
            kept++;
        }
    for (int slot = 0; slot < S_MAX_SLOTS && kept < n; slot++)
        if (!want [slot] && !drop [slot]) {
            want [slot] = 1;
            kept++;
        }
}

/*  One host step. group NULL: the access node. */
static json_t *
s_plan_host (const s_plan_t *plan, const char *role, const char *group, int slot,
             int64_t generation)
{
    char id [64], hostname [64], token [65], ip [16] = "";
    const char *group_name = group? group: "access";
    if (strcmp (role, "access") == 0) {
        snprintf (id, sizeof id, "host.access");
        snprintf (hostname, sizeof hostname, "%s-access", plan->name);
        snprintf (ip, sizeof ip, "%s", DX_NET_ACCESS_IP);
    }
    else {
        snprintf (id, sizeof id, "host.%s.%d", group_name, slot);
        if (strcmp (role, "master") == 0) {
            snprintf (hostname, sizeof hostname, "%s-master-%d", plan->name, slot);
            snprintf (ip, sizeof ip, DX_NET_MASTER_PREFIX "%d", DX_NET_MASTER_IP_BASE + slot);
        }
        else
            snprintf (hostname, sizeof hostname, "%s-%s-%d", plan->name, group_name, slot);
    }
    snprintf (token, sizeof token, "%s-%lld-%s-%d", plan->uid, (long long) generation,
              group_name, slot);
    json_t *step = s_plan_step (plan, "host", id);
    json_object_set_new (step, "role", json_string (role));
    json_object_set_new (step, "group", json_string (group_name));
    json_object_set_new (step, "slot", json_integer (slot));
    json_object_set_new (step, "hostname", json_string (hostname));
    json_object_set_new (step, "client_token", json_string (token));
    if (*ip)
        json_object_set_new (step, "private_ip", json_string (ip));
    return step;
}

/*  The fields of a host that the spec does not describe (access, masters):
    no disks, no group role, no attributes, not public. */
static void
s_plan_host_plain (json_t *step, const char *instance_type, int disk_size)
{
    json_object_set_new (step, "instance_type", json_string (instance_type));
    json_object_set_new (step, "disk_size", json_integer (disk_size));
    json_object_set_new (step, "disks", json_array ());
    json_object_set_new (step, "public", json_false ());
    json_object_set_new (step, "group_role", json_string (""));
    json_object_set_new (step, "attributes", json_object ());
    json_object_set_new (step, "vars", json_object ());
}

/*  remove steps for every slot of group marked in drop. */
static void
s_plan_removals (const s_plan_t *plan, json_t *jobs, const char *group,
                 const unsigned char *drop)
{
    for (int slot = 0; slot < S_MAX_SLOTS; slot++) {
        if (!drop [slot])
            continue;
        char id [64], hostname [64];
        snprintf (id, sizeof id, "remove.%s.%d", group, slot);
        if (strcmp (group, "masters") == 0)
            snprintf (hostname, sizeof hostname, "%s-master-%d", plan->name, slot);
        else
            snprintf (hostname, sizeof hostname, "%s-%s-%d", plan->name, group, slot);
        json_t *step = s_plan_step (plan, "remove", id);
        json_object_set_new (step, "group", json_string (group));
        json_object_set_new (step, "slot", json_integer (slot));
        json_object_set_new (step, "hostname", json_string (hostname));
        s_plan_add (jobs, step, NULL);
    }
}

/*  1 if a group of that name is in the snapshot's groups. */
static int
s_plan_group_wanted (const json_t *groups, const char *name)
{
    size_t i;
    json_t *group;
    json_array_foreach (groups, i, group)
        if (strcmp (json_string_value (json_object_get (group, "name")), name) == 0)
            return 1;
    return 0;
}

/*  Recorded groups (of host.GROUP.SLOT keys) no longer in the spec lose
    every host. The access node and masters are not groups. */
static void
s_plan_deleted_groups (const s_plan_t *plan, json_t *jobs, const json_t *groups,
                       const json_t *resources)
{
    json_t *seen = json_object ();
    const char *key;
    json_t *resource;
    json_object_foreach ((json_t *) resources, key, resource) {
        if (strncmp (key, "host.", 5) != 0)
            continue;
        const char *dot = strchr (key + 5, '.');
        if (!dot || (size_t) (dot - key - 5) >= 32)
            continue;
        char group [32];
        snprintf (group, sizeof group, "%.*s", (int) (dot - key - 5), key + 5);
        if (strcmp (group, "masters") == 0 || json_object_get (seen, group)
        ||  s_plan_group_wanted (groups, group))
            continue;
        json_object_set_new (seen, group, json_true ());
    }
    //  In name order, so the plan does not depend on the hash's order
    json_t *names = json_array ();
    json_object_foreach (seen, key, resource) {
        size_t at = 0;
        while (at < json_array_size (names)
           &&  strcmp (json_string_value (json_array_get (names, at)), key) < 0)
            at++;
        json_array_insert_new (names, at, json_string (key));
    }
    size_t i;
    json_t *name;
    unsigned char want [S_MAX_SLOTS], drop [S_MAX_SLOTS];
    json_array_foreach (names, i, name) {
        s_plan_slots (resources, json_string_value (name), 0, want, drop);
        s_plan_removals (plan, jobs, json_string_value (name), drop);
    }
    json_decref (names);
    json_decref (seen);
}

static json_t *
s_plan_deploy (const s_plan_t *plan, const json_t *snapshot, const json_t *resources,
               int64_t generation)
{
    json_t *jobs = json_array ();
    s_plan_add (jobs, s_plan_step (plan, "network", "network"), NULL);
    s_plan_add (jobs, s_plan_step (plan, "security", "security"), json_pack ("[s]", "network"));
    s_plan_add (jobs, s_plan_step (plan, "image", "image"), NULL);
    s_plan_add (jobs, s_plan_step (plan, "keypair", "keypair"), NULL);

    int aws = strcmp (plan->provider, "aws") == 0;
    json_t *access = s_plan_host (plan, "access", NULL, 0, generation);
    s_plan_host_plain (access, aws? SCH_PLAN_ACCESS_TYPE_AWS: SCH_PLAN_ACCESS_TYPE_AZURE,
                       SCH_PLAN_ACCESS_DISK);
    s_plan_add (jobs, access, s_plan_host_needs ());

    unsigned char want [S_MAX_SLOTS], drop [S_MAX_SLOTS];
    const char *master_type = json_string_value (json_object_get (plan->config, "master_type"));
    int masters = (int) json_integer_value (json_object_get (plan->config, "masters"));
    s_plan_slots (resources, "masters", masters, want, drop);
    for (int slot = 0; slot < S_MAX_SLOTS; slot++)
        if (want [slot]) {
            json_t *step = s_plan_host (plan, "master", "masters", slot, generation);
            s_plan_host_plain (step, master_type? master_type: "", SCH_PLAN_MASTER_DISK);
            s_plan_add (jobs, step, s_plan_host_needs ());
        }
    s_plan_removals (plan, jobs, "masters", drop);

    const json_t *groups = json_object_get (snapshot, "groups");
    size_t i;
    json_t *group;
    json_array_foreach (groups, i, group) {
        const char *name = json_string_value (json_object_get (group, "name"));
        const char *role = json_string_value (json_object_get (group, "role"));
        int hosts = (int) json_integer_value (json_object_get (group, "hosts"));
        if (!name)
            continue;
        s_plan_slots (resources, name, hosts, want, drop);
        for (int slot = 0; slot < S_MAX_SLOTS; slot++)
            if (want [slot]) {
                json_t *step = s_plan_host (plan, "agent", name, slot, generation);
                json_t *disks = json_object_get (json_object_get (group, "customhwconf"), "disks");
                json_object_set (step, "instance_type", json_object_get (group, "instance_type"));
                json_object_set (step, "disk_size", json_object_get (group, "disk_size"));
                json_object_set_new (step, "disks", disks? json_deep_copy (disks): json_array ());
                json_object_set_new (step, "public",
                                     json_boolean (role && strcmp (role, "slave_public") == 0));
                json_object_set_new (step, "group_role", json_string (role? role: "*"));
                json_object_set (step, "attributes", json_object_get (group, "attributes"));
                json_object_set (step, "vars", json_object_get (group, "vars"));
                s_plan_add (jobs, step, s_plan_host_needs ());
            }
        s_plan_removals (plan, jobs, name, drop);
    }
    s_plan_deleted_groups (plan, jobs, groups, resources);
    return jobs;
}

static json_t *
s_plan_destroy (const s_plan_t *plan)
{
    static const char *kinds [] = {
        "destroy.instances", "destroy.addresses", "destroy.security", "destroy.network", NULL
    };
    json_t *jobs = json_array ();
    for (int i = 0; kinds [i]; i++)
        s_plan_add (jobs, s_plan_step (plan, kinds [i], kinds [i]),
                    i? json_pack ("[s]", kinds [i - 1]): NULL);
    return jobs;
}

json_t *
sch_plan_build (const json_t *snapshot, const json_t *resources, char *err, size_t errlen)
{
    const json_t *cluster = json_object_get (snapshot, "cluster");
    const json_t *config = json_object_get (snapshot, "config");
    const char *command = json_string_value (json_object_get (snapshot, "command"));
    s_plan_t plan = {
        .name = json_string_value (json_object_get (cluster, "name")),
        .provider = json_string_value (json_object_get (cluster, "provider")),
        .type = json_string_value (json_object_get (cluster, "type")),
    };
    if (!plan.name || !plan.provider || !plan.type || !command) {
        snprintf (err, errlen, "the spec snapshot lacks its cluster or command");
        return NULL;
    }
    if (!json_is_object (config)) {
        snprintf (err, errlen, "cluster %s has no config in this generation", plan.name);
        return NULL;
    }
    sch_plan_uid (plan.name, json_string_value (json_object_get (cluster, "created_at")),
                  plan.uid);
    plan.config = json_deep_copy (config);
    //  Bookkeeping and fingerprints are not for workers
    json_object_del (plan.config, "updated_at");
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe (plan.config, tmp, key, value) {
        size_t len = strlen (key);
        if (len > 12 && strcmp (key + len - 12, "_fingerprint") == 0)
            json_object_del (plan.config, key);
    }
    json_t *empty = json_object ();
    json_int_t generation = json_integer_value (json_object_get (snapshot, "generation"));
    json_t *jobs = strcmp (command, "destroy") == 0
                 ? s_plan_destroy (&plan)
                 : s_plan_deploy (&plan, snapshot, resources? resources: empty, generation);
    json_decref (empty);
    json_decref (plan.config);
    return jobs;
}
