/*  sch_cluster: the handlers of a cluster's spec: the cluster itself, its
    config (with sealed secrets) and its groups of agents. See
    sch_handlers.h; the rules and shapes come from docs/api.md. */
#include "sch_handlers.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <stdlib.h>
#include <string.h>

/*  Deployment states in which cloud resources may exist, so the cluster
    may only be deleted with force. */
static const char *s_cluster_busy_states [] = {
    "deploying", "deployed", "deploy_failed", "destroying", "destroy_failed", NULL
};


//  ---------------------------------------------------------------------
//  Shared helpers

/*  Now as ISO 8601 UTC with milliseconds: the one timestamp format stored. */
char *
sch_now (char *buf, size_t size)
{
    return dx_time_iso (dx_now_ms (), buf, size);
}

/*  A loaded cluster, or NULL with the reply that says why not (NOT_FOUND
    naming it, or the store's error). Takes loaded. */
static json_t *
s_cluster_found (sch_ctx_t *ctx, const json_t *request, json_t *loaded, json_t **reply_p)
{
    const char *name = dx_msg_str (request, "name");
    if (!loaded) {
        *reply_p = sch_store_error_reply (ctx->store, request);
        return NULL;
    }
    if (!json_is_object (json_object_get (loaded, "cluster"))) {
        json_decref (loaded);
        *reply_p = dx_reply_error (request, DX_NOT_FOUND, "name",
                                   "cluster %s does not exist", name);
        return NULL;
    }
    *reply_p = NULL;
    return loaded;
}

/*  Loads a cluster or builds the reply that says why not, so handlers
    start with one call. */
json_t *
sch_load_cluster (sch_ctx_t *ctx, const json_t *request, unsigned what, json_t **reply_p)
{
    json_t *loaded = sch_store_load (ctx->store, dx_msg_str (request, "name"),
                                     what | SCH_LOAD_CLUSTER);
    return s_cluster_found (ctx, request, loaded, reply_p);
}

/*  The first half of a read handler: queues the load of the request's
    cluster with `what` (SCH_LOAD_CLUSTER added). */
json_t *
sch_queue_cluster (sch_ctx_t *ctx, const json_t *request, unsigned what, int *ticket)
{
    *ticket = sch_store_queue_load (ctx->store, dx_msg_str (request, "name"),
                                    what | SCH_LOAD_CLUSTER);
    return *ticket < 0? sch_store_error_reply (ctx->store, request): NULL;
}

/*  The second half: the loaded cluster of ticket, or NULL with the reply
    that says why not, as sch_load_cluster. */
json_t *
sch_loaded_cluster (sch_ctx_t *ctx, const json_t *request, int ticket, json_t **reply_p)
{
    return s_cluster_found (ctx, request, sch_store_load_result (ctx->store, ticket), reply_p);
}

/*  A write validated for one provider must not land on a cluster of the
    other: CONFLICT naming both. */
json_t *
sch_check_provider (const json_t *request, const json_t *loaded)
{
    const char *want = dx_msg_str (request, "provider");
    const char *have = json_string_value (json_object_get (json_object_get (loaded, "cluster"),
                                                           "provider"));
    if (want && have && strcmp (want, have) == 0)
        return NULL;
    return dx_reply_error (request, DX_CONFLICT, "provider",
                           "cluster %s is %s %s cluster; this request is for %s",
                           dx_msg_str (request, "name"),
                           have && strcmp (have, "aws") == 0? "an": "a",
                           have? have: "unknown", want? want: "no provider");
}

/*  1 if state is one of the NULL-terminated list. */
static int
s_cluster_state_in (const char *state, const char **list)
{
    for (int i = 0; list [i]; i++)
        if (state && strcmp (state, list [i]) == 0)
            return 1;
    return 0;
}

/*  The loaded deployment state, "init" when there is no record. */
static const char *
s_cluster_state (const json_t *loaded)
{
    const char *state = json_string_value (json_object_get (
                            json_object_get (loaded, "deployment"), "state"));
    return state? state: "init";
}

/*  Group names of a loaded groups object, sorted. */
static json_t *
s_cluster_group_names (const json_t *groups)
{
    json_t *names = json_array ();
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) groups, key, value)
        json_array_append_new (names, json_string (key));
    //  Insertion sort: a cluster has a handful of groups
    for (size_t i = 1; i < json_array_size (names); i++)
        for (size_t j = i; j > 0; j--) {
            const char *a = json_string_value (json_array_get (names, j - 1));
            const char *b = json_string_value (json_array_get (names, j));
            if (strcmp (a, b) <= 0)
                break;
            json_t *tmp = json_incref (json_array_get (names, j - 1));
            json_array_set (names, j - 1, json_array_get (names, j));
            json_array_set_new (names, j, tmp);
        }
    return names;
}

/*  The cluster object of docs/api.md from a load with CLUSTER, CONFIG,
    GROUPS and DEPLOYMENT. */
static json_t *
s_cluster_object (const json_t *loaded)
{
    const json_t *cluster = json_object_get (loaded, "cluster");
    const json_t *config = json_object_get (loaded, "config");
    const json_t *groups = json_object_get (loaded, "groups");
    const json_t *record = json_object_get (loaded, "deployment");

    json_int_t agents = 0;
    const char *key;
    json_t *group;
    json_object_foreach ((json_t *) groups, key, group)
        agents += json_integer_value (json_object_get (group, "hosts"));
    json_int_t masters = json_integer_value (json_object_get (config, "masters"));
    json_int_t generation = json_integer_value (json_object_get (record, "generation"));

    return json_pack ("{s:O?, s:O?, s:O?, s:O?, s:O?, s:b, s:o, s:{s:I, s:I}, s:{s:s, s:I}}",
                      "name", json_object_get (cluster, "name"),
                      "provider", json_object_get (cluster, "provider"),
                      "type", json_object_get (cluster, "type"),
                      "created_at", json_object_get (cluster, "created_at"),
                      "updated_at", json_object_get (cluster, "updated_at"),
                      "configured", json_is_object (config),
                      "groups", s_cluster_group_names (groups),
                      "hosts", "masters", masters, "agents", agents,
                      "deployment", "state", s_cluster_state (loaded),
                      "generation", generation);
}

/*  The config object of docs/api.md from the stored one: normalized fields
    and updated_at as they are, each <secret>_fingerprint shown as
    <secret>: {set: true, fingerprint}. */
static json_t *
s_config_object (const json_t *stored)
{
    json_t *object = json_object ();
    const char *key;
    json_t *value;
    const size_t suffix = strlen ("_fingerprint");
    json_object_foreach ((json_t *) stored, key, value) {
        size_t len = strlen (key);
        if (len > suffix && strcmp (key + len - suffix, "_fingerprint") == 0) {
            char secret [128];
            snprintf (secret, sizeof secret, "%.*s", (int) (len - suffix), key);
            json_object_set_new (object, secret,
                                 json_pack ("{s:b, s:O}", "set", 1, "fingerprint", value));
        }
        else
            json_object_set (object, key, value);
    }
    return object;
}


//  ---------------------------------------------------------------------
//  Clusters

/*  cluster.list: every cluster, sorted by name: the index in the shared
    round trip, then one HMGET per cluster in a second one. */
json_t *
sch_cluster_list_queue (sch_ctx_t *ctx, const json_t *request, int *ticket)
{
    *ticket = sch_store_queue_list (ctx->store);
    return *ticket < 0? sch_store_error_reply (ctx->store, request): NULL;
}

json_t *
sch_cluster_list_reply (sch_ctx_t *ctx, const json_t *request, int ticket)
{
    json_t *list = sch_store_list_result (ctx->store, ticket);
    if (!list)
        return sch_store_error_reply (ctx->store, request);
    size_t count = json_array_size (list);
    return dx_reply_new (request, DX_OK,
                         json_pack ("{s:o, s:I}", "clusters", list, "count", (json_int_t) count));
}

/*  cluster.create: CONFLICT if the name is taken, else the cluster, its
    deployment record (init) and its index entry in one transaction. */
json_t *
sch_cluster_create (sch_ctx_t *ctx, const json_t *request)
{
    const json_t *cluster = json_object_get (request, "cluster");
    const char *name = json_string_value (json_object_get (cluster, "name"));
    const char *provider = json_string_value (json_object_get (cluster, "provider"));
    const char *type = json_string_value (json_object_get (cluster, "type"));
    if (!name)
        return dx_reply_error (request, DX_INVALID, "name", "the cluster name is missing");
    if (!provider || (strcmp (provider, "aws") && strcmp (provider, "azure")))
        return dx_reply_error (request, DX_INVALID, "provider",
                               "provider must be aws or azure");
    if (!type || (strcmp (type, "mesos") && strcmp (type, "dcos")))
        return dx_reply_error (request, DX_INVALID, "type", "type must be mesos or dcos");

    json_t *loaded = sch_store_load (ctx->store, name, SCH_LOAD_CLUSTER);
    if (!loaded)
        return sch_store_error_reply (ctx->store, request);
    int exists = json_is_object (json_object_get (loaded, "cluster"));
    json_decref (loaded);
    if (exists)
        return dx_reply_error (request, DX_CONFLICT, "name",
                               "cluster %s already exists", name);

    char now [32];
    sch_now (now, sizeof now);
    json_t *record = json_pack ("{s:s, s:s, s:s}", "name", name, "provider", provider,
                                "type", type);
    int rc = sch_store_cluster_create (ctx->store, record, now);
    json_decref (record);
    if (rc)
        return sch_store_error_reply (ctx->store, request);
    dx_info ("cluster created name=%s provider=%s type=%s", name, provider, type);
    return dx_reply_new (request, DX_CREATED,
        json_pack ("{s:s, s:s, s:s, s:s, s:s, s:b, s:[], s:{s:i, s:i}, s:{s:s, s:i}}",
                   "name", name, "provider", provider, "type", type,
                   "created_at", now, "updated_at", now, "configured", 0, "groups",
                   "hosts", "masters", 0, "agents", 0,
                   "deployment", "state", "init", "generation", 0));
}

/*  cluster.get: the cluster object, from one pipelined read. */
json_t *
sch_cluster_get_reply (sch_ctx_t *ctx, const json_t *request, int ticket)
{
    json_t *reply;
    json_t *loaded = sch_loaded_cluster (ctx, request, ticket, &reply);
    if (!loaded)
        return reply;
    reply = dx_reply_new (request, DX_OK, s_cluster_object (loaded));
    json_decref (loaded);
    return reply;
}

/*  cluster.delete: refused while cloud resources may exist (unless forced),
    else every key of the cluster goes in one transaction. */
json_t *
sch_cluster_delete (sch_ctx_t *ctx, const json_t *request)
{
    const char *name = dx_msg_str (request, "name");
    int force = dx_msg_bool (request, "force", 0);
    json_t *reply;
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_DEPLOYMENT, &reply);
    if (!loaded)
        return reply;
    char state [32];
    snprintf (state, sizeof state, "%s", s_cluster_state (loaded));
    json_decref (loaded);
    int busy = s_cluster_state_in (state, s_cluster_busy_states);
    if (busy && !force)
        return dx_reply_error (request, DX_CONFLICT, NULL,
                               "cluster %s has deployment state %s, so cloud resources may "
                               "exist: destroy it first (PUT /clusters/%s/deployment "
                               "command=destroy) or delete with force=true",
                               name, state, name);
    if (sch_store_cluster_delete (ctx->store, name)) {
        //  It may have run with only its answer lost: a deployment left
        //  running would write the keys of a cluster that is gone. Stopped
        //  here; if the cluster is still there, the engine loads it again.
        if (busy && ctx->engine) {
            sch_engine_forget (ctx->engine, name);
            sch_engine_recheck (ctx->engine);
        }
        return sch_store_error_reply (ctx->store, request);
    }
    if (ctx->engine)
        sch_engine_forget (ctx->engine, name);
    if (busy)
        dx_warn ("cluster deleted with force name=%s state=%s: its cloud resources, if any, "
                 "are no longer tracked", name, state);
    else
        dx_info ("cluster deleted name=%s", name);
    return dx_reply_new (request, DX_OK, json_pack ("{s:s}", "deleted", name));
}


//  ---------------------------------------------------------------------
//  Config

/*  config.get: the config with secrets shown only as set + fingerprint. */
json_t *
sch_config_get_reply (sch_ctx_t *ctx, const json_t *request, int ticket)
{
    const char *name = dx_msg_str (request, "name");
    json_t *reply;
    json_t *loaded = sch_loaded_cluster (ctx, request, ticket, &reply);
    if (!loaded)
        return reply;
    const json_t *config = json_object_get (loaded, "config");
    if (!json_is_object (config))
        reply = dx_reply_error (request, DX_NOT_FOUND, NULL,
                                "cluster %s has no config yet; set one with "
                                "PUT /clusters/%s/config", name, name);
    else
        reply = dx_reply_new (request, DX_OK, s_config_object (config));
    json_decref (loaded);
    return reply;
}

/*  The config field that says where a provider's resources are. */
static const char *
s_config_placement (const char *provider)
{
    return provider && strcmp (provider, "azure") == 0? "location": "region";
}

/*  CONFLICT when config would move a cluster whose resources may exist to
    another region (location): every later step, the destroy's too, would
    look for them there, and a destroy would end "destroyed" with all of
    them still running, untracked. Where they are is the current config's
    region or, the config deleted since, the last generation's (where a
    destroy without a config looks). NULL when it may. */
static json_t *
s_config_moves (sch_ctx_t *ctx, const json_t *request, const json_t *loaded,
                const json_t *config)
{
    const char *name = dx_msg_str (request, "name");
    const char *state = s_cluster_state (loaded);
    if (!s_cluster_state_in (state, s_cluster_busy_states))
        return NULL;
    const char *field = s_config_placement (dx_msg_str (request, "provider"));
    json_t *last = NULL;
    const json_t *current = json_object_get (loaded, "config");
    if (!json_is_object (current)) {
        json_int_t generation = json_integer_value (json_object_get (
                                    json_object_get (loaded, "deployment"), "generation"));
        last = sch_store_snapshot (ctx->store, name, generation);
        if (!last && *sch_store_error (ctx->store))
            return sch_store_error_reply (ctx->store, request);
        current = json_object_get (last, "config");
    }
    const char *was = json_string_value (json_object_get (current, field));
    const char *now = json_string_value (json_object_get (config, field));
    json_t *reply = NULL;
    if (was && (!now || strcmp (was, now)))
        reply = dx_reply_error (request, DX_CONFLICT, field,
                                "cluster %s has deployment state %s, so cloud resources may "
                                "exist in %s %s: destroy it first (PUT /clusters/%s/deployment "
                                "command=destroy), then change the %s", name, state, field,
                                was, name, field);
    json_decref (last);
    return reply;
}

/*  config.put: seals the secrets and replaces the whole config in one
    transaction, so no field of an older config survives. */
json_t *
sch_config_put (sch_ctx_t *ctx, const json_t *request)
{
    const char *name = dx_msg_str (request, "name");
    const json_t *config = json_object_get (request, "config");
    const json_t *secrets = json_object_get (request, "secrets");
    //  Names the store uses for its own fields cannot be config fields
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) config, key, value) {
        size_t len = strlen (key);
        if (strcmp (key, "updated_at") == 0 || json_object_get (secrets, key)
        ||  (len > 12 && strcmp (key + len - 12, "_fingerprint") == 0) || len > 100)
            return dx_reply_error (request, DX_INVALID, "config",
                                   "config field '%.100s' is reserved", key);
    }
    json_object_foreach ((json_t *) secrets, key, value)
        if (!json_is_string (value) || strlen (key) > 100)
            return dx_reply_error (request, DX_INVALID, "secrets",
                                   "secrets must map names to strings");

    json_t *reply;
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_CONFIG | SCH_LOAD_DEPLOYMENT,
                                       &reply);
    if (!loaded)
        return reply;
    reply = sch_check_provider (request, loaded);
    if (!reply)
        reply = s_config_moves (ctx, request, loaded, config);
    json_decref (loaded);
    if (reply)
        return reply;

    json_t *sealed = json_object ();
    json_t *fingerprints = json_object ();
    json_object_foreach ((json_t *) secrets, key, value) {
        char fingerprint [17];
        const char *plain = json_string_value (value);
        size_t len = json_string_length (value);
        char *box = dx_seal_seal (ctx->seal, plain, len);
        dx_seal_fingerprint (ctx->seal, plain, len, fingerprint);
        if (!box) {
            json_decref (sealed);
            json_decref (fingerprints);
            dx_error ("cannot seal secret %s of cluster %s", key, name);
            return dx_reply_error (request, DX_INTERNAL, NULL, "cannot seal a secret");
        }
        json_object_set_new (sealed, key, json_string (box));
        json_object_set_new (fingerprints, key, json_string (fingerprint));
        free (box);
    }
    char now [32];
    sch_now (now, sizeof now);
    int rc = sch_store_config_put (ctx->store, name, config, fingerprints, sealed, now);
    json_decref (sealed);
    if (rc) {
        json_decref (fingerprints);
        return sch_store_error_reply (ctx->store, request);
    }
    dx_info ("config updated name=%s", name);

    //  The reply shows what GET will: the stored form, rebuilt here
    json_t *stored = json_object ();
    json_object_foreach ((json_t *) config, key, value)
        if (!json_is_null (value))
            json_object_set (stored, key, value);
    json_object_foreach (fingerprints, key, value) {
        char field [128];
        snprintf (field, sizeof field, "%s_fingerprint", key);
        json_object_set (stored, field, value);
    }
    json_object_set_new (stored, "updated_at", json_string (now));
    json_decref (fingerprints);
    reply = dx_reply_new (request, DX_OK, s_config_object (stored));
    json_decref (stored);
    return reply;
}

/*  config.delete: config and sealed secrets go together. */
json_t *
sch_config_delete (sch_ctx_t *ctx, const json_t *request)
{
    const char *name = dx_msg_str (request, "name");
    json_t *reply;
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_CONFIG, &reply);
    if (!loaded)
        return reply;
    int exists = json_is_object (json_object_get (loaded, "config"));
    json_decref (loaded);
    if (!exists)
        return dx_reply_error (request, DX_NOT_FOUND, NULL,
                               "cluster %s has no config to delete", name);
    char now [32];
    if (sch_store_config_delete (ctx->store, name, sch_now (now, sizeof now)))
        return sch_store_error_reply (ctx->store, request);
    dx_info ("config deleted name=%s", name);
    return dx_reply_new (request, DX_OK, json_pack ("{s:s}", "deleted", "config"));
}


//  ---------------------------------------------------------------------
//  Groups

/*  group.list: every group object, sorted by name. */
json_t *
sch_group_list_reply (sch_ctx_t *ctx, const json_t *request, int ticket)
{
    json_t *reply;
    json_t *loaded = sch_loaded_cluster (ctx, request, ticket, &reply);
    if (!loaded)
        return reply;
    const json_t *groups = json_object_get (loaded, "groups");
    json_t *names = s_cluster_group_names (groups);
    json_t *list = json_array ();
    size_t i;
    json_t *name;
    json_array_foreach (names, i, name)
        json_array_append (list, json_object_get (groups, json_string_value (name)));
    json_decref (names);
    json_decref (loaded);
    return dx_reply_new (request, DX_OK, json_pack ("{s:o}", "groups", list));
}

/*  The group to store: the normalized spec with created_at (kept from the
    group it replaces, if any) and updated_at. */
static json_t *
s_group_record (const json_t *spec, const json_t *old, const char *now)
{
    json_t *group = json_deep_copy (spec);
    const json_t *created = json_object_get (old, "created_at");
    json_object_set_new (group, "created_at",
                         json_is_string (created)? json_copy ((json_t *) created)
                                                 : json_string (now));
    json_object_set_new (group, "updated_at", json_string (now));
    return group;
}

/*  Common start of upsert and update: loads the cluster with its groups,
    checks the provider and the spec's name. */
static json_t *
s_group_prepare (sch_ctx_t *ctx, const json_t *request, json_t **reply_p)
{
    const json_t *spec = json_object_get (request, "spec");
    const char *group = json_string_value (json_object_get (spec, "name"));
    if (!group) {
        *reply_p = dx_reply_error (request, DX_INVALID, "name",
                                   "the group spec has no name");
        return NULL;
    }
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_GROUPS, reply_p);
    if (!loaded)
        return NULL;
    *reply_p = sch_check_provider (request, loaded);
    if (*reply_p) {
        json_decref (loaded);
        return NULL;
    }
    return loaded;
}

/*  group.upsert: creates the group (CREATED) or replaces it (OK), keeping
    its created_at. */
json_t *
sch_group_upsert (sch_ctx_t *ctx, const json_t *request)
{
    const char *name = dx_msg_str (request, "name");
    const json_t *spec = json_object_get (request, "spec");
    const char *group = json_string_value (json_object_get (spec, "name"));
    json_t *reply;
    json_t *loaded = s_group_prepare (ctx, request, &reply);
    if (!loaded)
        return reply;
    const json_t *old = json_object_get (json_object_get (loaded, "groups"), group);
    char now [32];
    sch_now (now, sizeof now);
    json_t *record = s_group_record (spec, old, now);
    const char *event = old? "group.updated": "group.created";
    if (sch_store_group_put (ctx->store, name, NULL, record, event, now))
        reply = sch_store_error_reply (ctx->store, request);
    else {
        dx_info ("group %s name=%s group=%s", old? "updated": "created", name, group);
        reply = dx_reply_new (request, old? DX_OK: DX_CREATED, json_incref (record));
    }
    json_decref (record);
    json_decref (loaded);
    return reply;
}

/*  group.get: one group object, NOT_FOUND naming it if absent. */
json_t *
sch_group_get_reply (sch_ctx_t *ctx, const json_t *request, int ticket)
{
    const char *name = dx_msg_str (request, "name");
    const char *group = dx_msg_str (request, "group");
    json_t *reply;
    json_t *loaded = sch_loaded_cluster (ctx, request, ticket, &reply);
    if (!loaded)
        return reply;
    json_t *record = json_object_get (json_object_get (loaded, "groups"), group);
    if (record)
        reply = dx_reply_new (request, DX_OK, json_incref (record));
    else
        reply = dx_reply_error (request, DX_NOT_FOUND, "group",
                                "group %s does not exist in cluster %s", group, name);
    json_decref (loaded);
    return reply;
}

/*  group.update: replaces a group, renaming it when the spec's name differs
    (CONFLICT if that name is taken), in one transaction. */
json_t *
sch_group_update (sch_ctx_t *ctx, const json_t *request)
{
    const char *name = dx_msg_str (request, "name");
    const char *group = dx_msg_str (request, "group");
    const json_t *spec = json_object_get (request, "spec");
    const char *new_name = json_string_value (json_object_get (spec, "name"));
    json_t *reply;
    json_t *loaded = s_group_prepare (ctx, request, &reply);
    if (!loaded)
        return reply;
    const json_t *groups = json_object_get (loaded, "groups");
    const json_t *old = json_object_get (groups, group);
    int rename = strcmp (group, new_name) != 0;
    if (!old)
        reply = dx_reply_error (request, DX_NOT_FOUND, "group",
                                "group %s does not exist in cluster %s", group, name);
    else
    if (rename && json_object_get (groups, new_name))
        reply = dx_reply_error (request, DX_CONFLICT, "name",
                                "cannot rename group %s to %s: cluster %s already has "
                                "a group %s", group, new_name, name, new_name);
    if (reply) {
        json_decref (loaded);
        return reply;
    }
    char now [32];
    sch_now (now, sizeof now);
    json_t *record = s_group_record (spec, old, now);
    if (sch_store_group_put (ctx->store, name, group, record,
                             rename? "group.renamed": "group.updated", now))
        reply = sch_store_error_reply (ctx->store, request);
    else {
        if (rename)
            dx_info ("group renamed name=%s group=%s to=%s", name, group, new_name);
        else
            dx_info ("group updated name=%s group=%s", name, group);
        reply = dx_reply_new (request, DX_OK, json_incref (record));
    }
    json_decref (record);
    json_decref (loaded);
    return reply;
}

/*  group.delete: removes one group. */
json_t *
sch_group_delete (sch_ctx_t *ctx, const json_t *request)
{
    const char *name = dx_msg_str (request, "name");
    const char *group = dx_msg_str (request, "group");
    json_t *reply;
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_GROUPS, &reply);
    if (!loaded)
        return reply;
    int exists = json_object_get (json_object_get (loaded, "groups"), group) != NULL;
    json_decref (loaded);
    if (!exists)
        return dx_reply_error (request, DX_NOT_FOUND, "group",
                               "group %s does not exist in cluster %s", group, name);
    char now [32];
    if (sch_store_group_delete (ctx->store, name, group, sch_now (now, sizeof now)))
        return sch_store_error_reply (ctx->store, request);
    dx_info ("group deleted name=%s group=%s", name, group);
    return dx_reply_new (request, DX_OK, json_pack ("{s:s}", "deleted", group));
}
