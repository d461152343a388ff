/*  sch_plan: spec snapshot + recorded resources -> the steps of a
    deployment. See sch_plan.h and proto/PROTOCOL.md, "Steps".

    sch_plan_new decides at once all that depends on the resources (which
    slots each group keeps, adds and drops) and lays the plan out as parts:
    one step, the hosts of one group, the removals of one group.
    sch_plan_next then makes the jobs of the parts in order, so a slice
    costs what its own jobs cost, however big the plan. With aws batches
    (the snapshot's aws_batch_max), an agent group's missing slots are a
    part of batch jobs and its removals a part of one job. */
#include "sch_plan.h"
#include "dx_spec.h"
#include "dx_netplan.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define S_MAX_SLOTS 4096                /* more hosts than any group may have */

typedef enum { S_STEP, S_HOSTS, S_BATCHES, S_REMOVALS } s_kind_t;

/*  A run of consecutive jobs of the plan. */
typedef struct {
    s_kind_t kind;
    const char *step;                   /* S_STEP: its kind, which is its id */
    const char *need;                   /* S_STEP: the step it needs, or NULL */
    const char *role;                   /* S_HOSTS: access, master or agent */
    char group [32];                    /* S_HOSTS, S_BATCHES, S_REMOVALS */
    const json_t *spec;                 /* S_HOSTS of agents, S_BATCHES: the group, the snapshot's */
    int *slots;                         /* S_HOSTS, S_BATCHES, S_REMOVALS: ascending */
    size_t nslots;                      /* S_BATCHES, S_REMOVALS of one job */
    size_t batch;                       /* S_BATCHES: the most slots of a job */
    size_t count;                       /* its jobs */
} s_part_t;

/*  A step of a provider's plan and the one it needs (NULL: none). */
typedef struct {
    const char *kind;
    const char *need;
} s_step_t;

/*  What each provider's plans are made of (proto/PROTOCOL.md, "Steps"):
    the steps a deploy starts with, every one of which each host needs;
    the destroy steps, each after the one before; and the sizes of the
    hosts the spec does not describe. */
typedef struct {
    const char *provider;
    s_step_t lead [5];                  /* up to the first kind NULL */
    const char *destroy [5];            /* up to the first NULL */
    const char *access_type;
    const char *master_type;            /* when the config has none */
} s_cloud_t;

static const s_cloud_t s_clouds [] = {
    { "aws",
      { { "network", NULL }, { "security", "network" }, { "image", NULL },
        { "keypair", NULL } },
      { "destroy.instances", "destroy.addresses", "destroy.security", "destroy.network" },
      SCH_PLAN_ACCESS_TYPE_AWS, DX_SPEC_MASTER_TYPE_AWS },
    //  No key pair: the hosts' admin user logs in with the config's password
    { "azure",
      { { "network", NULL }, { "security", "network" }, { "image", NULL } },
      { "destroy.group" },
      SCH_PLAN_ACCESS_TYPE_AZURE, DX_SPEC_MASTER_TYPE_AZURE },
};
#define S_CLOUDS (sizeof s_clouds / sizeof s_clouds [0])

struct sch_plan {
    json_t *snapshot;                   /* a reference: names and groups are its */
    const char *name;
    const char *provider;
    const s_cloud_t *cloud;             /* the provider's */
    const char *type;
    char uid [13];
    json_t *config;                     /* the config without bookkeeping */
    int64_t generation;
    size_t batch_max;                   /* aws agents per batch step; 0: one host step each */
    s_part_t *parts;
    size_t nparts, cap;
    size_t size;                        /* jobs of all parts */
    size_t part, at;                    /* where the next job comes from */
};

/*  A recorded host of a group, as the slot decision sees it. */
typedef struct {
    int slot;
    const char *launched;               /* "" when not known */
} s_host_t;

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


//  ---------------------------------------------------------------------
//  Laying the plan out

/*  A new empty part at the end of the plan, or NULL when out of memory. */
static s_part_t *
s_plan_part (sch_plan_t *self, s_kind_t kind)
{
    if (self->nparts == self->cap) {
        size_t cap = self->cap? self->cap * 2: 16;
        s_part_t *grown = (s_part_t *) realloc (self->parts, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->parts = grown;
        self->cap = cap;
    }
    s_part_t *part = &self->parts [self->nparts++];
    memset (part, 0, sizeof *part);
    part->kind = kind;
    return part;
}

/*  A one-job part: step, needing need (or nothing). */
static int
s_plan_add_step (sch_plan_t *self, const char *step, const char *need)
{
    s_part_t *part = s_plan_part (self, S_STEP);
    if (!part)
        return -1;
    part->step = step;
    part->need = need;
    part->count = 1;
    return 0;
}

/*  The recorded hosts of every group, from the host.GROUP.SLOT keys of
    hosts not terminated: {group: [slot, ...]} (caller owns). */
static json_t *
s_plan_recorded (const json_t *resources)
{
    json_t *groups = json_object ();
    const char *key;
    json_t *resource;
    json_object_foreach ((json_t *) resources, key, resource) {
        const char *dot = strncmp (key, "host.", 5) == 0? strchr (key + 5, '.'): NULL;
        if (!dot || dot == key + 5 || dot - key - 5 >= 32)
            continue;
        const char *state = json_string_value (json_object_get (resource, "state"));
        if (state && (strcmp (state, "terminated") == 0 || strcmp (state, "deleted") == 0))
            continue;
        char *end;
        long slot = strtol (dot + 1, &end, 10);
        if (*end || end == dot + 1 || slot < 0 || slot >= S_MAX_SLOTS)
            continue;
        char group [32];
        snprintf (group, sizeof group, "%.*s", (int) (dot - key - 5), key + 5);
        json_t *slots = json_object_get (groups, group);
        if (!slots) {
            slots = json_array ();
            json_object_set_new (groups, group, slots);
        }
        json_array_append_new (slots, json_integer (slot));
    }
    return groups;
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

/*  Oldest first: launched earlier, or at the same time (or neither known)
    with the lower slot. */
static int
s_host_older (const void *a, const void *b)
{
    const s_host_t *x = (const s_host_t *) a, *y = (const s_host_t *) b;
    int cmp = strcmp (x->launched, y->launched);
    return cmp? cmp: x->slot - y->slot;
}

static int
s_slot_order (const void *a, const void *b)
{
    return *(const int *) a - *(const int *) b;
}

/*  Decides the slots of a group that wants n hosts, from its recorded
    slots: drops the newest of them beyond n (into drop), keeps the others
    and fills up with the lowest free numbers (into want), both ascending.
    Newest is by recorded launch time, then by slot; the masters go by
    slot alone, as their fixed addresses (dx_netplan.h: base + slot) must
    stay the first n. Marks the recorded slots kept in kept (S_MAX_SLOTS
    bytes, zeroed). 0, or -1 when out of memory. */
static int
s_plan_slots (const json_t *resources, const char *group, const json_t *recorded, size_t n,
              s_part_t *want, s_part_t *drop, unsigned char *kept)
{
    size_t count = json_array_size (recorded);
    s_host_t *hosts = (s_host_t *) calloc (count + 1, sizeof *hosts);
    want->slots = (int *) calloc (n + 1, sizeof (int));
    drop->slots = (int *) calloc (count + 1, sizeof (int));
    if (!hosts || !want->slots || !drop->slots) {
        free (hosts);
        return -1;
    }
    bool by_slot = strcmp (group, "masters") == 0;
    unsigned char taken [S_MAX_SLOTS] = { 0 };
    size_t unique = 0;
    for (size_t i = 0; i < count; i++) {
        int slot = (int) json_integer_value (json_array_get (recorded, i));
        if (taken [slot])
            continue;
        taken [slot] = 1;
        hosts [unique].slot = slot;
        hosts [unique].launched = by_slot? "": s_plan_launched (resources, group, slot);
        unique++;
    }
    qsort (hosts, unique, sizeof *hosts, s_host_older);
    size_t keep = unique < n? unique: n;
    for (size_t i = keep; i < unique; i++)
        drop->slots [drop->count++] = hosts [i].slot;
    qsort (drop->slots, drop->count, sizeof (int), s_slot_order);
    for (size_t i = 0; i < keep; i++)
        kept [hosts [i].slot] = 1;
    size_t fill = n - keep;
    for (int slot = 0; slot < S_MAX_SLOTS && want->count < n; slot++) {
        if (kept [slot])
            want->slots [want->count++] = slot;
        else
        if (!taken [slot] && fill > 0) {
            want->slots [want->count++] = slot;
            fill--;
        }
    }
    free (hosts);
    return 0;
}

/*  With batches: moves the slots of want into two parts of batch jobs,
    each job a run of at most batch_max of them: the recorded ones (kept
    set), whose batches find their hosts and launch none, then the
    missing ones. 0, or -1 when out of memory. */
static int
s_plan_batches (const sch_plan_t *self, s_part_t *want, const unsigned char *kept,
                s_part_t *found, s_part_t *added)
{
    found->slots = (int *) calloc (want->count + 1, sizeof (int));
    added->slots = (int *) calloc (want->count + 1, sizeof (int));
    if (!found->slots || !added->slots)
        return -1;
    for (size_t i = 0; i < want->count; i++) {
        s_part_t *part = kept [want->slots [i]]? found: added;
        part->slots [part->nslots++] = want->slots [i];
    }
    want->count = 0;
    s_part_t *parts [2] = { found, added };
    for (int i = 0; i < 2; i++) {
        parts [i]->batch = self->batch_max;
        parts [i]->count = (parts [i]->nslots + self->batch_max - 1) / self->batch_max;
    }
    return 0;
}

/*  The parts of one group that wants n hosts in role (NULL: a deleted
    group, which only loses hosts): its hosts, or with batches (aws
    agents) the batches of its recorded hosts and of its missing ones;
    then its removals. spec is an agent group's spec. */
static int
s_plan_add_group (sch_plan_t *self, const json_t *resources, const json_t *recorded,
                  const char *group, const char *role, const json_t *spec, size_t n)
{
    s_part_t want = { .kind = S_HOSTS, .role = role, .spec = spec };
    s_part_t found = { .kind = S_BATCHES, .role = role, .spec = spec };
    s_part_t added = found;
    s_part_t drop = { .kind = S_REMOVALS };
    snprintf (want.group, sizeof want.group, "%s", group);
    snprintf (found.group, sizeof found.group, "%s", group);
    snprintf (added.group, sizeof added.group, "%s", group);
    snprintf (drop.group, sizeof drop.group, "%s", group);
    unsigned char kept [S_MAX_SLOTS] = { 0 };
    int rc = s_plan_slots (resources, group, json_object_get (recorded, group),
                           n < S_MAX_SLOTS? n: S_MAX_SLOTS, &want, &drop, kept);
    if (rc == 0 && self->batch_max && role && strcmp (role, "agent") == 0)
        rc = s_plan_batches (self, &want, kept, &found, &added);
    if (rc == 0 && self->batch_max && drop.count) {
        drop.nslots = drop.count;       /* one remove.GROUP */
        drop.count = 1;
    }
    s_part_t *parts [4] = { &want, &found, &added, &drop };
    for (int i = 0; i < 4 && rc == 0; i++) {
        if (parts [i]->count == 0)
            continue;
        s_part_t *part = s_plan_part (self, parts [i]->kind);
        if (!part)
            rc = -1;
        else {
            *part = *parts [i];
            parts [i]->slots = NULL;    /* the plan's now */
        }
    }
    for (int i = 0; i < 4; i++)
        free (parts [i]->slots);
    return rc;
}

static int
s_name_order (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/*  Recorded groups (of host.GROUP.SLOT keys) no longer in the spec lose
    every host, in name order so the plan does not depend on the hash's.
    The access node and the masters are not groups. */
static int
s_plan_add_deleted (sch_plan_t *self, const json_t *resources, const json_t *recorded,
                    const json_t *groups)
{
    const char **names = (const char **) calloc (json_object_size (recorded) + 1,
                                                 sizeof *names);
    json_t *wanted = json_object ();
    if (!names || !wanted) {
        free (names);
        json_decref (wanted);
        return -1;
    }
    int rc = 0;
    size_t i, count = 0;
    json_t *spec;
    json_array_foreach (groups, i, spec) {
        const char *name = json_string_value (json_object_get (spec, "name"));
        if (name)
            json_object_set_new (wanted, name, json_true ());
    }
    const char *group;
    json_t *slots;
    json_object_foreach ((json_t *) recorded, group, slots)
        if (strcmp (group, "masters") && !json_object_get (wanted, group))
            names [count++] = group;
    qsort (names, count, sizeof *names, s_name_order);
    for (i = 0; i < count && rc == 0; i++)
        rc = s_plan_add_group (self, resources, recorded, names [i], NULL, NULL, 0);
    json_decref (wanted);
    free (names);
    return rc;
}

static int
s_plan_lay_deploy (sch_plan_t *self, const json_t *resources)
{
    for (const s_step_t *step = self->cloud->lead; step->kind; step++)
        if (s_plan_add_step (self, step->kind, step->need))
            return -1;
    //  The VPN, the same on every provider: the access node's server
    //  bundle before it, the client profile once it has its address
    if (s_plan_add_step (self, SCH_PLAN_VPN_SERVER, NULL))
        return -1;
    s_part_t *access = s_plan_part (self, S_HOSTS);
    int *slot = (int *) calloc (1, sizeof (int));
    if (!access || !slot) {
        free (slot);
        return -1;
    }
    access->role = "access";
    snprintf (access->group, sizeof access->group, "access");
    access->slots = slot;
    access->count = 1;
    if (s_plan_add_step (self, SCH_PLAN_VPN_PROFILE, "host.access"))
        return -1;
    //  A CRL the running access node lacks goes into its tags
    const char *crl = json_string_value (json_object_get (self->snapshot, "vpn_crl"));
    if (crl && *crl && s_plan_add_step (self, SCH_PLAN_ACCESS_CRL, "host.access"))
        return -1;

    json_t *recorded = s_plan_recorded (resources);
    json_int_t masters = json_integer_value (json_object_get (self->config, "masters"));
    int rc = recorded? s_plan_add_group (self, resources, recorded, "masters", "master",
                                         NULL, masters > 0? (size_t) masters: 0): -1;
    const json_t *groups = json_object_get (self->snapshot, "groups");
    size_t i;
    json_t *group;
    json_array_foreach (groups, i, group) {
        const char *name = json_string_value (json_object_get (group, "name"));
        json_int_t hosts = json_integer_value (json_object_get (group, "hosts"));
        if (name && rc == 0)
            rc = s_plan_add_group (self, resources, recorded, name, "agent", group,
                                   hosts > 0? (size_t) hosts: 0);
    }
    if (rc == 0)
        rc = s_plan_add_deleted (self, resources, recorded, groups);
    json_decref (recorded);
    return rc;
}

static int
s_plan_lay_destroy (sch_plan_t *self)
{
    const char *const *kinds = self->cloud->destroy;
    for (int i = 0; kinds [i]; i++)
        if (s_plan_add_step (self, kinds [i], i? kinds [i - 1]: NULL))
            return -1;
    return 0;
}


//  ---------------------------------------------------------------------
//  Making the jobs

/*  A new step map of kind with the cluster-wide fields. */
static json_t *
s_plan_step (const sch_plan_t *self, const char *kind, const char *id)
{
    json_t *step = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:O}",
                              "kind", kind, "id", id, "provider", self->provider,
                              "cluster_type", self->type, "uid", self->uid,
                              "config", self->config);
    //  A dcos cluster's hosts: the snapshot's DC/OS installer
    if (step && !strncmp (kind, "host", 4) && !strcmp (self->type, "dcos"))
        json_object_set (step, "dcos_installer_url",
                         json_object_get (self->snapshot, "dcos_installer_url"));
    return step;
}

/*  The job {id, kind, needs, step} of step (taken) and needs (taken; NULL
    for none). */
static json_t *
s_plan_job_of (json_t *step, json_t *needs)
{
    return json_pack ("{s:O, s:O, s:o, s:o}",
                      "id", json_object_get (step, "id"),
                      "kind", json_object_get (step, "kind"),
                      "needs", needs? needs: json_array (),
                      "step", step);
}

/*  The host name of a group's host. */
static void
s_plan_hostname (const sch_plan_t *self, const char *group, int slot, char *buf, size_t size)
{
    if (strcmp (group, "masters") == 0)
        snprintf (buf, size, "%s-master-%d", self->name, slot);
    else
        snprintf (buf, size, "%s-%s-%d", self->name, group, slot);
}

/*  One host step. group NULL: the access node. */
static json_t *
s_plan_host (const sch_plan_t *self, const char *role, const char *group, int slot)
{
    char id [64], hostname [64], token [65], ip [32] = "";
    const char *group_name = group? group: "access";
    if (strcmp (role, "access") == 0) {
        snprintf (id, sizeof id, "host.access");
        snprintf (hostname, sizeof hostname, "%s-access", self->name);
        snprintf (ip, sizeof ip, "%s", DX_NET_ACCESS_IP);
    }
    else {
        snprintf (id, sizeof id, "host.%s.%d", group_name, slot);
        if (strcmp (role, "master") == 0) {
            snprintf (hostname, sizeof hostname, "%s-master-%d", self->name, slot);
            snprintf (ip, sizeof ip, DX_NET_MASTER_PREFIX "%d", DX_NET_MASTER_IP_BASE + slot);
        }
        else
            snprintf (hostname, sizeof hostname, "%s-%s-%d", self->name, group_name, slot);
    }
    snprintf (token, sizeof token, "%s-%lld-%s-%d", self->uid, (long long) self->generation,
              group_name, slot);
    json_t *step = s_plan_step (self, "host", id);
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

/*  The fields of an agent: its group's spec. */
static void
s_plan_host_agent (json_t *step, const json_t *group)
{
    const char *role = json_string_value (json_object_get (group, "role"));
    json_t *disks = json_object_get (json_object_get (group, "customhwconf"), "disks");
    json_object_set (step, "instance_type", json_object_get (group, "instance_type"));
    json_object_set (step, "disk_size", json_object_get (group, "disk_size"));
    json_object_set_new (step, "disks", disks? json_deep_copy (disks): json_array ());
    json_object_set_new (step, "public", json_boolean (role && strcmp (role, "slave_public") == 0));
    json_object_set_new (step, "group_role", json_string (role? role: "*"));
    json_object_set (step, "attributes", json_object_get (group, "attributes"));
    json_object_set (step, "vars", json_object_get (group, "vars"));
}

/*  The remove step of a group's host. */
static json_t *
s_plan_removal (const sch_plan_t *self, const char *group, int slot)
{
    char id [64], hostname [64];
    snprintf (id, sizeof id, "remove.%s.%d", group, slot);
    s_plan_hostname (self, group, slot, hostname, sizeof hostname);
    json_t *step = s_plan_step (self, "remove", id);
    json_object_set_new (step, "group", json_string (group));
    json_object_set_new (step, "slot", json_integer (slot));
    json_object_set_new (step, "hostname", json_string (hostname));
    return step;
}

/*  The one remove step of a group's count hosts of slots (batches on). */
static json_t *
s_plan_removals (const sch_plan_t *self, const char *group, const int *slots, size_t count)
{
    char id [64], hostname [64];
    snprintf (id, sizeof id, "remove.%s", group);
    json_t *step = s_plan_step (self, "remove", id);
    json_t *numbers = json_array (), *names = json_array ();
    for (size_t i = 0; i < count; i++) {
        s_plan_hostname (self, group, slots [i], hostname, sizeof hostname);
        json_array_append_new (numbers, json_integer (slots [i]));
        json_array_append_new (names, json_string (hostname));
    }
    json_object_set_new (step, "group", json_string (group));
    json_object_set_new (step, "slots", numbers);
    json_object_set_new (step, "hostnames", names);
    return step;
}

/*  The batch step of an agent group's count hosts of slots: hosts.GROUP.FIRST. */
static json_t *
s_plan_batch (const sch_plan_t *self, const char *group, const int *slots, size_t count)
{
    char id [64], hostname [64], token [65];
    snprintf (id, sizeof id, "hosts.%s.%d", group, slots [0]);
    snprintf (token, sizeof token, "%s-%lld-%s-b%d", self->uid, (long long) self->generation,
              group, slots [0]);
    json_t *step = s_plan_step (self, "hosts", id);
    json_t *numbers = json_array (), *names = json_array ();
    for (size_t i = 0; i < count; i++) {
        s_plan_hostname (self, group, slots [i], hostname, sizeof hostname);
        json_array_append_new (numbers, json_integer (slots [i]));
        json_array_append_new (names, json_string (hostname));
    }
    json_object_set_new (step, "role", json_string ("agent"));
    json_object_set_new (step, "group", json_string (group));
    json_object_set_new (step, "slots", numbers);
    json_object_set_new (step, "hostnames", names);
    json_object_set_new (step, "client_token", json_string (token));
    return step;
}

/*  The host jobs' needs: every leading step of the provider's deploy. */
static json_t *
s_plan_host_needs (const sch_plan_t *self)
{
    json_t *needs = json_array ();
    for (const s_step_t *step = self->cloud->lead; step->kind; step++)
        json_array_append_new (needs, json_string (step->kind));
    return needs;
}

/*  Job i of part. */
static json_t *
s_plan_job (const sch_plan_t *self, const s_part_t *part, size_t i)
{
    if (part->kind == S_STEP)
        return s_plan_job_of (s_plan_step (self, part->step, part->step),
                              part->need? json_pack ("[s]", part->need): NULL);
    if (part->kind == S_REMOVALS && part->nslots)
        return s_plan_job_of (s_plan_removals (self, part->group, part->slots, part->nslots),
                              NULL);
    if (part->kind == S_REMOVALS)
        return s_plan_job_of (s_plan_removal (self, part->group, part->slots [i]), NULL);
    json_t *step;
    if (part->kind == S_BATCHES) {
        size_t first = i * part->batch;
        size_t count = part->nslots - first < part->batch? part->nslots - first: part->batch;
        step = s_plan_batch (self, part->group, part->slots + first, count);
        s_plan_host_agent (step, part->spec);
        return s_plan_job_of (step, s_plan_host_needs (self));
    }
    if (strcmp (part->role, "access") == 0) {
        step = s_plan_host (self, "access", NULL, 0);
        s_plan_host_plain (step, self->cloud->access_type, SCH_PLAN_ACCESS_DISK);
        json_t *needs = s_plan_host_needs (self);
        json_array_append_new (needs, json_string (SCH_PLAN_VPN_SERVER));
        return s_plan_job_of (step, needs);
    }
    else
    if (strcmp (part->role, "master") == 0) {
        const char *type = json_string_value (json_object_get (self->config, "master_type"));
        step = s_plan_host (self, "master", "masters", part->slots [i]);
        s_plan_host_plain (step, type? type: self->cloud->master_type, SCH_PLAN_MASTER_DISK);
    }
    else {
        step = s_plan_host (self, "agent", part->group, part->slots [i]);
        s_plan_host_agent (step, part->spec);
    }
    return s_plan_job_of (step, s_plan_host_needs (self));
}


//  ---------------------------------------------------------------------
//  The plan

sch_plan_t *
sch_plan_new (const json_t *snapshot, const json_t *resources, char *err, size_t errlen)
{
    const json_t *cluster = json_object_get (snapshot, "cluster");
    const json_t *config = json_object_get (snapshot, "config");
    const char *command = json_string_value (json_object_get (snapshot, "command"));
    const char *name = json_string_value (json_object_get (cluster, "name"));
    if (!name || !json_string_value (json_object_get (cluster, "provider"))
    ||  !json_string_value (json_object_get (cluster, "type")) || !command) {
        snprintf (err, errlen, "the spec snapshot lacks its cluster or command");
        return NULL;
    }
    if (!json_is_object (config)) {
        snprintf (err, errlen, "cluster %s has no config in this generation", name);
        return NULL;
    }
    const char *provider = json_string_value (json_object_get (cluster, "provider"));
    const s_cloud_t *cloud = NULL;
    for (size_t i = 0; i < S_CLOUDS && !cloud; i++)
        if (strcmp (s_clouds [i].provider, provider) == 0)
            cloud = &s_clouds [i];
    if (!cloud) {
        snprintf (err, errlen, "cluster %s: no plan for provider %.32s", name, provider);
        return NULL;
    }
    sch_plan_t *self = (sch_plan_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->snapshot = json_incref ((json_t *) snapshot);
    self->name = name;
    self->provider = provider;
    self->cloud = cloud;
    self->type = json_string_value (json_object_get (cluster, "type"));
    self->generation = json_integer_value (json_object_get (snapshot, "generation"));
    sch_plan_uid (name, json_string_value (json_object_get (cluster, "created_at")), self->uid);
    json_int_t batch_max = json_integer_value (json_object_get (snapshot, "aws_batch_max"));
    if (strcmp (provider, "aws") == 0 && batch_max > 0)
        self->batch_max = batch_max < SCH_PLAN_AWS_BATCH_MAX? (size_t) batch_max
                                                             : SCH_PLAN_AWS_BATCH_MAX;
    self->config = json_deep_copy (config);
    //  Bookkeeping and fingerprints are not for workers
    json_object_del (self->config, "updated_at");
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe (self->config, tmp, key, value) {
        size_t len = strlen (key);
        if (len > 12 && strcmp (key + len - 12, "_fingerprint") == 0)
            json_object_del (self->config, key);
    }
    json_t *empty = json_object ();
    int rc = !self->config || !empty? -1
           : strcmp (command, "destroy") == 0? s_plan_lay_destroy (self)
           : s_plan_lay_deploy (self, resources? resources: empty);
    json_decref (empty);
    if (rc) {
        snprintf (err, errlen, "out of memory");
        sch_plan_destroy (&self);
        return NULL;
    }
    for (size_t i = 0; i < self->nparts; i++)
        self->size += self->parts [i].count;
    return self;
}

void
sch_plan_destroy (sch_plan_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_plan_t *self = *self_p;
    for (size_t i = 0; i < self->nparts; i++)
        free (self->parts [i].slots);
    free (self->parts);
    json_decref (self->config);
    json_decref (self->snapshot);
    free (self);
    *self_p = NULL;
}

size_t
sch_plan_size (const sch_plan_t *self)
{
    return self->size;
}

size_t
sch_plan_next (sch_plan_t *self, size_t count, json_t *jobs)
{
    size_t made = 0;
    while (made < count && self->part < self->nparts) {
        const s_part_t *part = &self->parts [self->part];
        if (self->at == part->count) {
            self->part++;
            self->at = 0;
            continue;
        }
        if (jobs)
            json_array_append_new (jobs, s_plan_job (self, part, self->at));
        self->at++;
        made++;
    }
    return made;
}
