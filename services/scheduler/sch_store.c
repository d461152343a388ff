/*  sch_store: the key schema and the changes. See sch_store.h for the
    contract and docs/redis.md for the schema as operators see it.

    A change is built as one batch of commands on the keys of one cluster,
    ending with the XADD of its event, and sent as one transaction. Values
    are stored as text (s_store_text): numbers in decimal, JSON objects as
    compact JSON; sch_read.c decodes them back. */
#include "sch_store.h"
#include "dx_log.h"
#include "dx_msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EVENTS_MAXLEN "10000"         /* events kept per cluster, about */

struct sch_store {
    sch_redis_t *redis;
    sch_cache_t *cache;
    sch_read_t *read;
    sch_states_t *states;
};

/*  The per-cluster key parts. Every key a cluster owns is listed here, so
    that cluster delete (and create, which starts from nothing) removes all
    of them in one DEL. */
static const char *s_parts [] = {
    "cluster", "config", "secrets", "groups", "deployment", "specs",
    "credentials", "events", "jobs", "resources", NULL
};

/*  What a new deployment record holds (state init): NULL stands for the
    time of the change, and the generation is the caller's. */
static const char *s_record_init [] = {
    "state", "init", "command", "", "generation", NULL, "observed_generation", "0",
    "parallelism", "", "steps_done", "0", "steps_total", "0", "current", "",
    "waiting", "", "last_error", "", "created_at", NULL, "updated_at", NULL,
    "started_at", "", "finished_at", "", "accessip", "", NULL
};

sch_store_t *
sch_store_new (const char *url)
{
    sch_store_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->redis = sch_redis_new (url);
    self->cache = sch_cache_new (SCH_CACHE_MAX, SCH_CACHE_TTL_MS);
    self->read = self->redis && self->cache? sch_read_new (self->redis, self->cache): NULL;
    self->states = sch_states_new ();
    if (!self->read || !self->states)
        sch_store_destroy (&self);
    return self;
}

void
sch_store_destroy (sch_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_store_t *self = *self_p;
    sch_read_destroy (&self->read);
    sch_states_destroy (&self->states);
    sch_cache_destroy (&self->cache);
    sch_redis_destroy (&self->redis);
    free (self);
    *self_p = NULL;
}

sch_redis_t *
sch_store_redis (sch_store_t *self)
{
    return self->redis;
}

sch_cache_t *
sch_store_cache (sch_store_t *self)
{
    return self->cache;
}

sch_states_t *
sch_store_states (sch_store_t *self)
{
    return self->states;
}

sch_read_t *
sch_store_read (sch_store_t *self)
{
    return self->read;
}

const char *
sch_store_error (sch_store_t *self)
{
    return sch_redis_error (self->redis);
}

/*  What every handler answers when Redis fails it. The store's own words
    (addresses, Redis's error text) stay in the log. */
json_t *
sch_store_error_reply (sch_store_t *self, const json_t *request)
{
    const char *status = sch_redis_status (self->redis);
    size_t kept = sch_redis_kept (self->redis);
    if (strcmp (status, DX_UNAVAILABLE) == 0) {
        dx_debug ("answering UNAVAILABLE: %s", sch_redis_error (self->redis));
        if (kept)
            return dx_reply_error (request, status, NULL,
                                   "the store is unavailable; %zu accepted writes wait "
                                   "for it, try again shortly", kept);
        return dx_reply_error (request, status, NULL,
                               "the store is unavailable; try again shortly");
    }
    dx_error ("answering INTERNAL: %s", sch_redis_error (self->redis));
    return dx_reply_error (request, status, NULL,
                           "the store failed; the scheduler's log says why");
}

/*  dexter:{NAME}:part: the hash tag keeps a cluster in one slot. */
char *
sch_store_key (char *buf, size_t size, const char *name, const char *part)
{
    snprintf (buf, size, "dexter:{%s}:%s", name, part);
    return buf;
}


//  ---------------------------------------------------------------------
//  Building changes

/*  Appends a DEL of the keys of name's NULL-terminated parts. */
static void
s_batch_del (sch_batch_t *batch, const char *name, const char **parts)
{
    char key [128];
    sch_batch_cmd (batch, "DEL", NULL);
    for (int i = 0; parts [i]; i++)
        sch_batch_arg (batch, sch_store_key (key, sizeof key, name, parts [i]));
}

/*  The text Redis stores for a JSON value: strings as they are, numbers in
    decimal, booleans true/false, containers as compact JSON; "" for null.
    Caller frees; NULL when out of memory. */
static char *
s_store_text (const json_t *value)
{
    char *text = NULL;
    switch (json_typeof (value)) {
        case JSON_STRING:
            return strdup (json_string_value (value));
        case JSON_INTEGER:
            return asprintf (&text, "%" JSON_INTEGER_FORMAT, json_integer_value (value)) < 0
                   ? NULL: text;
        case JSON_REAL:
            return asprintf (&text, "%.17g", json_real_value (value)) < 0? NULL: text;
        case JSON_TRUE:
            return strdup ("true");
        case JSON_FALSE:
            return strdup ("false");
        case JSON_NULL:
            return strdup ("");
        default:
            return json_dumps (value, JSON_COMPACT);
    }
}

/*  Appends field/value pairs of obj to the last command; with skip_null,
    null members are left out, else written as "". */
static void
s_batch_fields (sch_batch_t *batch, const json_t *obj, int skip_null)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) obj, key, value) {
        if (skip_null && json_is_null (value))
            continue;
        sch_batch_arg (batch, key);
        sch_batch_arg_take (batch, s_store_text (value));
    }
}

/*  Appends HSET of every member of obj to the hash part of name, each
    value as compact JSON; nothing when obj is empty. */
static void
s_batch_json_hash (sch_batch_t *batch, const char *name, const char *part, const json_t *obj)
{
    if (!json_object_size (obj))
        return;
    char hash [128];
    sch_batch_cmd (batch, "HSET", sch_store_key (hash, sizeof hash, name, part), NULL);
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) obj, key, value) {
        sch_batch_arg (batch, key);
        sch_batch_arg_take (batch, json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY));
    }
}

/*  Sets the cluster's updated_at (every change to its spec). */
static void
s_batch_touch (sch_batch_t *batch, const char *name, const char *now)
{
    char key [128];
    sch_batch_cmd (batch, "HSET", sch_store_key (key, sizeof key, name, "cluster"),
                   "updated_at", now, NULL);
}

/*  Mirrors the deployment state into the cluster hash, so the list reads
    one hash per cluster. Every change of the state goes through here, in
    the transaction that changes the record. */
static void
s_batch_state (sch_batch_t *batch, const char *name, const char *state)
{
    char key [128];
    sch_batch_cmd (batch, "HSET", sch_store_key (key, sizeof key, name, "cluster"),
                   "state", state, NULL);
}

/*  Sets fields of the deployment record (null as "") and its updated_at,
    mirroring its state when it changes. */
static void
s_batch_record (sch_batch_t *batch, const char *name, const json_t *fields, const char *now)
{
    char key [128];
    sch_batch_cmd (batch, "HSET", sch_store_key (key, sizeof key, name, "deployment"), NULL);
    s_batch_fields (batch, fields, 0);
    sch_batch_arg (batch, "updated_at");
    sch_batch_arg (batch, now);
    const char *state = json_string_value (json_object_get (fields, "state"));
    if (state)
        s_batch_state (batch, name, state);
}

/*  A fresh deployment record (state init), mirrored, at generation (0 for
    a new cluster; a forgotten deployment keeps its number, so that no
    later generation repeats it: the client tokens and job ids of a
    generation are made from it). */
static void
s_batch_record_init (sch_batch_t *batch, const char *name, const char *now,
                     long long generation)
{
    char key [128];
    s_batch_state (batch, name, "init");
    sch_batch_cmd (batch, "HSET", sch_store_key (key, sizeof key, name, "deployment"), NULL);
    for (int i = 0; s_record_init [i]; i += 2) {
        sch_batch_arg (batch, s_record_init [i]);
        if (strcmp (s_record_init [i], "generation") == 0)
            sch_batch_argf (batch, "%lld", generation);
        else
            sch_batch_arg (batch, s_record_init [i + 1]? s_record_init [i + 1]: now);
    }
}

/*  Appends XADD of one event to the cluster's stream: type, time and the
    string and integer members of fields (may be NULL). It is the batch's
    witness: the outbox looks for it to tell whether a write whose answer
    was lost was carried out. */
static void
s_batch_event (sch_batch_t *batch, const char *name, const char *type, const char *now,
               const json_t *fields)
{
    char stream [128];
    sch_batch_cmd (batch, "XADD", sch_store_key (stream, sizeof stream, name, "events"),
                   "MAXLEN", "~", S_EVENTS_MAXLEN, "*", "type", type, "time", now, NULL);
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) fields, key, value)
        if (json_is_string (value) || json_is_integer (value)) {
            sch_batch_arg (batch, key);
            sch_batch_arg_take (batch, s_store_text (value));
        }
    sch_batch_witness (batch);
}

/*  The state a change of cluster name wrote (fields' `state`, if any) is
    its state now, when Redis has the change or keeps it (rc >= 0). Returns
    rc. */
static int
s_store_state (sch_store_t *self, int rc, const char *name, const json_t *fields)
{
    const char *state = json_string_value (json_object_get (fields, "state"));
    if (rc >= 0 && state)
        sch_states_set (self->states, name, state);
    return rc;
}

/*  Sends the change of cluster name as one transaction and frees it. The
    cache forgets the cluster first, whether or not the change is carried
    out: it may be, with only its answer lost. */
static int
s_store_transact (sch_store_t *self, const char *name, sch_batch_t *batch, const char *what)
{
    sch_cache_forget (self->cache, name);
    int rc = sch_redis_transact (self->redis, batch, what);
    sch_batch_free (batch);
    return rc;
}

/*  Appends the names of obj's members to list (comma-separated). */
static void
s_store_names (char *list, size_t size, const json_t *obj)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) obj, key, value) {
        size_t used = strlen (list);
        snprintf (list + used, size - used, "%s%s", used? ",": "", key);
    }
}


//  ---------------------------------------------------------------------
//  Changes

/*  Writes a new cluster, deleting any stray key of the name first so a
    cluster always starts from nothing. */
int
sch_store_cluster_create (sch_store_t *self, const json_t *cluster, const char *now)
{
    const char *name = json_string_value (json_object_get (cluster, "name"));
    const char *provider = json_string_value (json_object_get (cluster, "provider"));
    const char *type = json_string_value (json_object_get (cluster, "type"));
    if (!name || !provider || !type) {
        sch_redis_fail (self->redis, DX_INTERNAL, "cluster needs name, provider and type");
        return -1;
    }
    char key [128];
    sch_batch_t batch = { 0 };
    s_batch_del (&batch, name, s_parts);
    sch_batch_cmd (&batch, "HSET", sch_store_key (key, sizeof key, name, "cluster"),
                   "name", name, "provider", provider, "type", type,
                   "created_at", now, "updated_at", now, NULL);
    s_batch_record_init (&batch, name, now, 0);
    sch_batch_cmd (&batch, "ZADD", SCH_STORE_INDEX, "0", name, NULL);
    json_t *event = json_pack ("{s:s, s:s}", "provider", provider, "cluster_type", type);
    s_batch_event (&batch, name, "cluster.created", now, event);
    json_decref (event);
    int rc = s_store_transact (self, name, &batch, "cluster create");
    if (rc == 0)
        sch_states_set (self->states, name, "init");
    return rc;
}

/*  Every key of the cluster and its index member: nothing is left behind. */
int
sch_store_cluster_delete (sch_store_t *self, const char *name)
{
    sch_batch_t batch = { 0 };
    s_batch_del (&batch, name, s_parts);
    sch_batch_cmd (&batch, "ZREM", SCH_STORE_INDEX, name, NULL);
    int rc = s_store_transact (self, name, &batch, "cluster delete");
    if (rc == 0)
        sch_states_drop (self->states, name);
    return rc;
}

/*  Replaces config and secrets (DEL, then HSET): no field of an older
    config survives. */
int
sch_store_config_put (sch_store_t *self, const char *name, const json_t *config,
                      const json_t *fingerprints, const json_t *sealed, const char *now)
{
    char key [128];
    sch_batch_t batch = { 0 };
    s_batch_del (&batch, name, (const char *[]) { "config", "secrets", NULL });
    sch_batch_cmd (&batch, "HSET", sch_store_key (key, sizeof key, name, "config"), NULL);
    s_batch_fields (&batch, config, 1);
    const char *secret;
    json_t *fingerprint;
    json_object_foreach ((json_t *) fingerprints, secret, fingerprint) {
        sch_batch_argf (&batch, "%s_fingerprint", secret);
        sch_batch_arg (&batch, json_string_value (fingerprint)? json_string_value (fingerprint)
                                                              : "");
    }
    sch_batch_arg (&batch, "updated_at");
    sch_batch_arg (&batch, now);
    if (json_object_size (sealed)) {
        sch_batch_cmd (&batch, "HSET", sch_store_key (key, sizeof key, name, "secrets"), NULL);
        s_batch_fields (&batch, sealed, 1);
    }
    s_batch_touch (&batch, name, now);
    //  The event names what was set, never a value of a secret
    char list [512] = "";
    s_store_names (list, sizeof list, config);
    s_store_names (list, sizeof list, sealed);
    json_t *event = json_pack ("{s:s}", "fields", list);
    s_batch_event (&batch, name, "config.updated", now, event);
    json_decref (event);
    return s_store_transact (self, name, &batch, "config put");
}

int
sch_store_config_delete (sch_store_t *self, const char *name, const char *now)
{
    sch_batch_t batch = { 0 };
    s_batch_del (&batch, name, (const char *[]) { "config", "secrets", NULL });
    s_batch_touch (&batch, name, now);
    s_batch_event (&batch, name, "config.deleted", now, NULL);
    return s_store_transact (self, name, &batch, "config delete");
}

/*  One group, and its old name removed on a rename. */
int
sch_store_group_put (sch_store_t *self, const char *name, const char *old_name,
                     const json_t *group, const char *event, const char *now)
{
    const char *group_name = json_string_value (json_object_get (group, "name"));
    if (!group_name) {
        sch_redis_fail (self->redis, DX_INTERNAL, "a group to store needs its name");
        return -1;
    }
    char key [128];
    sch_store_key (key, sizeof key, name, "groups");
    sch_batch_t batch = { 0 };
    int renamed = old_name && strcmp (old_name, group_name) != 0;
    if (renamed)
        sch_batch_cmd (&batch, "HDEL", key, old_name, NULL);
    sch_batch_cmd (&batch, "HSET", key, group_name, NULL);
    sch_batch_arg_take (&batch, json_dumps (group, JSON_COMPACT));
    s_batch_touch (&batch, name, now);
    json_t *fields = renamed? json_pack ("{s:s, s:s}", "group", group_name, "from", old_name)
                            : json_pack ("{s:s}", "group", group_name);
    s_batch_event (&batch, name, event, now, fields);
    json_decref (fields);
    return s_store_transact (self, name, &batch, "group write");
}

int
sch_store_group_delete (sch_store_t *self, const char *name, const char *group,
                        const char *now)
{
    char key [128];
    sch_batch_t batch = { 0 };
    sch_batch_cmd (&batch, "HDEL", sch_store_key (key, sizeof key, name, "groups"), group,
                   NULL);
    s_batch_touch (&batch, name, now);
    json_t *fields = json_pack ("{s:s}", "group", group);
    s_batch_event (&batch, name, "group.deleted", now, fields);
    json_decref (fields);
    return s_store_transact (self, name, &batch, "group delete");
}

/*  Snapshot, sealed credentials, record and plan in one transaction. */
int
sch_store_deployment_start (sch_store_t *self, const char *name, int64_t generation,
                            const json_t *snapshot, const char *sealed_credentials,
                            const json_t *deployment, const json_t *jobs,
                            const char *now)
{
    char key [128];
    sch_batch_t batch = { 0 };
    sch_batch_cmd (&batch, "HSET", sch_store_key (key, sizeof key, name, "specs"), NULL);
    sch_batch_argf (&batch, "%lld", (long long) generation);
    sch_batch_arg_take (&batch, json_dumps (snapshot, JSON_COMPACT));
    if (sealed_credentials)
        sch_batch_cmd (&batch, "SET", sch_store_key (key, sizeof key, name, "credentials"),
                       sealed_credentials, NULL);
    s_batch_record (&batch, name, deployment, now);
    s_batch_del (&batch, name, (const char *[]) { "jobs", NULL });
    json_t *plan = json_object ();
    size_t i;
    json_t *job;
    json_array_foreach (jobs, i, job)
        json_object_set (plan, json_string_value (json_object_get (job, "id")), job);
    s_batch_json_hash (&batch, name, "jobs", plan);
    json_decref (plan);
    json_t *fields = json_pack ("{s:O?, s:I, s:O?}",
                                "command", json_object_get (deployment, "command"),
                                "generation", (json_int_t) generation,
                                "parallelism", json_object_get (deployment, "parallelism"));
    s_batch_event (&batch, name, "deployment.requested", now, fields);
    json_decref (fields);
    return s_store_state (self, s_store_transact (self, name, &batch, "deployment start"),
                          name, deployment);
}

/*  One transition of a running deployment in one transaction, kept for
    Redis when it cannot take it now. */
int
sch_store_deployment_change (sch_store_t *self, const char *name,
                             const sch_store_change_t *change, const char *now,
                             uint64_t *serial)
{
    char key [128];
    sch_store_key (key, sizeof key, name, "resources");
    sch_batch_t batch = { 0 };
    if (json_object_size (change->deployment))
        s_batch_record (&batch, name, change->deployment, now);
    s_batch_json_hash (&batch, name, "jobs", change->jobs);
    if (change->drop_resources)
        sch_batch_cmd (&batch, "DEL", key, NULL);
    else {
        if (json_array_size (change->resources_del)) {
            sch_batch_cmd (&batch, "HDEL", key, NULL);
            size_t i;
            json_t *resource;
            json_array_foreach (change->resources_del, i, resource)
                sch_batch_arg (&batch, json_string_value (resource));
        }
        s_batch_json_hash (&batch, name, "resources", change->resources_set);
    }
    if (change->drop_credentials)
        s_batch_del (&batch, name, (const char *[]) { "credentials", NULL });
    size_t i;
    json_t *event;
    json_array_foreach (change->events_type? change->events: NULL, i, event)
        s_batch_event (&batch, name, change->events_type, now, event);
    //  Last: the witness of the batch is its last XADD
    if (change->event_type)
        s_batch_event (&batch, name, change->event_type, now, change->event);
    if (!sch_batch_size (&batch))
        return 0;
    sch_cache_forget (self->cache, name);
    int rc = sch_redis_write (self->redis, &batch, change->event_type? change->event_type
                                                                     : "deployment change",
                              serial);
    return s_store_state (self, rc, name, change->deployment);
}

/*  Back to a fresh init record; snapshots, credentials, plan and
    resources deleted. */
int
sch_store_deployment_reset (sch_store_t *self, const char *name, const char *now,
                            long long generation)
{
    sch_batch_t batch = { 0 };
    s_batch_del (&batch, name, (const char *[]) {
        "deployment", "specs", "credentials", "jobs", "resources", NULL });
    s_batch_record_init (&batch, name, now, generation);
    s_batch_event (&batch, name, "deployment.deleted", now, NULL);
    int rc = s_store_transact (self, name, &batch, "deployment delete");
    if (rc == 0)
        sch_states_set (self->states, name, "init");
    return rc;
}
