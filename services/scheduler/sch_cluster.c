/*  sch_cluster: the handlers of a cluster's spec: the cluster itself, its
    config (with sealed secrets) and its groups of agents. See
    sch_handlers.h; the rules and shapes come from docs/api.md. */
#include "sch_handlers.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------
//  The objects of docs/api.md, and what a delete of a part finds

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
    json_t *names = json_array ();
    json_t *sorted = sch_groups (groups);
    size_t i;
    json_t *group;
    json_array_foreach (sorted, i, group) {
        agents += json_integer_value (json_object_get (group, "hosts"));
        json_array_append (names, json_object_get (group, "name"));
    }
    json_decref (sorted);
    json_int_t masters = json_integer_value (json_object_get (config, "masters"));
    json_int_t generation = json_integer_value (json_object_get (record, "generation"));

    return json_pack ("{s:O?, s:O?, s:O?, s:O?, s:O?, s:b, s:o, s:{s:I, s:I}, s:{s:s, s:I}}",
                      "name", json_object_get (cluster, "name"),
                      "provider", json_object_get (cluster, "provider"),
                      "type", json_object_get (cluster, "type"),
                      "created_at", json_object_get (cluster, "created_at"),
                      "updated_at", json_object_get (cluster, "updated_at"),
                      "configured", json_is_object (config),
                      "groups", names,
                      "hosts", "masters", masters, "agents", agents,
                      "deployment", "state", sch_state (loaded),
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

/*  1 when the request's cluster, read with what, holds member key of its
    part (NULL key: the part itself), 0 when not; -1 with *reply_p set when
    the cluster is not found or cannot be read. */
static int
s_cluster_has (sch_ctx_t *ctx, const json_t *request, unsigned what, const char *part,
               const char *key, json_t **reply_p)
{
    json_t *loaded = sch_load_cluster (ctx, request, what, reply_p);
    if (!loaded)
        return -1;
    const json_t *value = json_object_get (loaded, part);
    int has = key? json_object_get (value, key) != NULL: json_is_object (value);
    json_decref (loaded);
    return has;
}


//  ---------------------------------------------------------------------
//  Clusters

/*  cluster.create: the cluster as dx_spec normalizes it (its name becomes
    keys: checked here too), CONFLICT if the name is taken, else the
    cluster, its deployment record (init) and its index entry in one
    transaction. */
json_t *
sch_cluster_create (sch_ctx_t *ctx, const json_t *request)
{
    json_t *errors = json_array ();
    json_t *cluster = dx_spec_cluster (json_object_get (request, "cluster"), errors);
    if (!cluster)
        return dx_reply_errors (request, DX_INVALID, errors);
    json_decref (errors);
    const char *name = json_string_value (json_object_get (cluster, "name"));
    json_t *loaded = sch_read_load (ctx->read, name, SCH_LOAD_CLUSTER);
    int exists = json_is_object (json_object_get (loaded, "cluster"));
    char now [32];
    json_t *reply = NULL;
    if (exists)
        reply = dx_reply_error (request, DX_CONFLICT, "name", "cluster %s already exists",
                                name);
    else
    if (!loaded || sch_store_cluster_create (ctx->store, cluster, sch_now (now, sizeof now)))
        reply = sch_store_error_reply (ctx->store, request);
    else {
        dx_info ("cluster created name=%s provider=%s type=%s", name,
                 json_string_value (json_object_get (cluster, "provider")),
                 json_string_value (json_object_get (cluster, "type")));
        json_object_set_new (cluster, "created_at", json_string (now));
        json_object_set_new (cluster, "updated_at", json_string (now));
        json_t *created = json_pack ("{s:O, s:n, s:{}, s:{s:s, s:i}}", "cluster", cluster,
                                     "config", "groups", "deployment",
                                     "state", "init", "generation", 0);
        reply = dx_reply_new (request, DX_CREATED, s_cluster_object (created));
        json_decref (created);
    }
    json_decref (loaded);
    json_decref (cluster);
    return reply;
}

/*  cluster.get: the cluster object, from one pipelined read. */
json_t *
sch_cluster_get (sch_ctx_t *ctx, const json_t *request, json_t *loaded)
{
    (void) ctx;
    return dx_reply_new (request, DX_OK, s_cluster_object (loaded));
}

/*  cluster.delete: refused while cloud resources may exist (unless forced),
    else every key of the cluster goes in one transaction. */
json_t *
sch_cluster_delete (sch_ctx_t *ctx, const json_t *request)
{
    char state [SCH_STATE_SIZE];
    json_t *reply = sch_delete_check (ctx, request, 0, state, NULL);
    if (reply)
        return reply;
    const char *name = dx_msg_str (request, "name");
    int busy = sch_state_holds (state);
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
sch_config_get (sch_ctx_t *ctx, const json_t *request, json_t *loaded)
{
    (void) ctx;
    const char *name = dx_msg_str (request, "name");
    const json_t *config = json_object_get (loaded, "config");
    if (!json_is_object (config))
        return dx_reply_error (request, DX_NOT_FOUND, NULL, "cluster %s has no config yet; "
                               "set one with PUT /clusters/%s/config", name, name);
    return dx_reply_new (request, DX_OK, s_config_object (config));
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
    const char *state = sch_state (loaded);
    if (!sch_state_holds (state))
        return NULL;
    const char *provider = sch_provider (loaded);
    const char *field = provider && strcmp (provider, "azure") == 0? "location": "region";
    json_t *last = NULL;
    const json_t *current = json_object_get (loaded, "config");
    if (!json_is_object (current)) {
        json_int_t generation = json_integer_value (json_object_get (
                                    json_object_get (loaded, "deployment"), "generation"));
        if (sch_read_snapshot (ctx->read, name, generation, &last))
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

/*  Seals each secret into sealed, its fingerprint into fingerprints. */
static int
s_config_seal (sch_ctx_t *ctx, const json_t *secrets, json_t *sealed, json_t *fingerprints)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) secrets, key, value) {
        char fingerprint [17];
        const char *plain = json_string_value (value);
        size_t len = json_string_length (value);
        char *box = dx_seal_seal (ctx->seal, plain, len);
        if (!box)
            return -1;
        dx_seal_fingerprint (ctx->seal, plain, len, fingerprint);
        json_object_set_new (sealed, key, json_string (box));
        json_object_set_new (fingerprints, key, json_string (fingerprint));
        free (box);
    }
    return 0;
}

/*  Stores config with its secrets sealed; the reply shows what GET will:
    the stored form, rebuilt here. */
static json_t *
s_config_write (sch_ctx_t *ctx, const json_t *request, const json_t *config,
                const json_t *secrets)
{
    const char *name = dx_msg_str (request, "name");
    json_t *sealed = json_object ();
    json_t *stored = json_object ();
    json_t *fingerprints = json_object ();
    json_t *reply = NULL;
    char now [32];
    if (s_config_seal (ctx, secrets, sealed, fingerprints)) {
        dx_error ("cannot seal a secret of cluster %s", name);
        reply = dx_reply_error (request, DX_INTERNAL, NULL, "cannot seal a secret");
    }
    else
    if (sch_store_config_put (ctx->store, name, config, fingerprints, sealed,
                              sch_now (now, sizeof now)))
        reply = sch_store_error_reply (ctx->store, request);
    else {
        dx_info ("config updated name=%s", name);
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *) config, key, value)
            if (!json_is_null (value))
                json_object_set (stored, key, value);
        json_object_foreach (fingerprints, key, value) {
            char field [128];
            snprintf (field, sizeof field, "%s_fingerprint", key);
            json_object_set (stored, field, value);
        }
        json_object_set_new (stored, "updated_at", json_string (now));
        reply = dx_reply_new (request, DX_OK, s_config_object (stored));
    }
    json_decref (sealed);
    json_decref (stored);
    json_decref (fingerprints);
    return reply;
}

/*  config.put: the fields validated for the cluster's provider, the
    secrets sealed, and the whole config replaced in one transaction, so
    no field of an older config survives. */
json_t *
sch_config_put (sch_ctx_t *ctx, const json_t *request)
{
    json_t *reply;
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_CONFIG | SCH_LOAD_DEPLOYMENT,
                                       &reply);
    if (!loaded)
        return reply;
    json_t *secrets = json_object ();
    json_t *config = sch_fields (SCH_FIELDS_CONFIG, request, loaded, secrets, &reply);
    if (config)
        reply = s_config_moves (ctx, request, loaded, config);
    if (config && !reply)
        reply = s_config_write (ctx, request, config, secrets);
    sch_wipe (secrets);
    json_decref (secrets);
    json_decref (config);
    json_decref (loaded);
    return reply;
}

/*  config.delete: config and sealed secrets go together. */
json_t *
sch_config_delete (sch_ctx_t *ctx, const json_t *request)
{
    json_t *reply;
    int has = s_cluster_has (ctx, request, SCH_LOAD_CONFIG, "config", NULL, &reply);
    const char *name = dx_msg_str (request, "name");
    if (has <= 0)
        return has? reply: dx_reply_error (request, DX_NOT_FOUND, NULL,
                                           "cluster %s has no config to delete", name);
    char now [32];
    if (sch_store_config_delete (ctx->store, name, sch_now (now, sizeof now)))
        return sch_store_error_reply (ctx->store, request);
    dx_info ("config deleted name=%s", name);
    return dx_reply_new (request, DX_OK, json_pack ("{s:s}", "deleted", "config"));
}


//  ---------------------------------------------------------------------
//  Groups

/*  The NOT_FOUND reply for a group the cluster does not have. */
static json_t *
s_group_missing (const json_t *request, const char *group)
{
    return dx_reply_error (request, DX_NOT_FOUND, "group", "group %s does not exist in "
                           "cluster %s", group, dx_msg_str (request, "name"));
}

/*  group.list: every group object, sorted by name. */
json_t *
sch_group_list (sch_ctx_t *ctx, const json_t *request, json_t *loaded)
{
    (void) ctx;
    json_t *list = sch_groups (json_object_get (loaded, "groups"));
    return dx_reply_new (request, DX_OK, json_pack ("{s:o}", "groups", list));
}

/*  group.get: one group object, NOT_FOUND naming it if absent. */
json_t *
sch_group_get (sch_ctx_t *ctx, const json_t *request, json_t *loaded)
{
    (void) ctx;
    const char *group = dx_msg_str (request, "group");
    json_t *record = json_object_get (json_object_get (loaded, "groups"), group);
    return record? dx_reply_new (request, DX_OK, json_incref (record))
                 : s_group_missing (request, group);
}

/*  Writes the group spec under its name (replacing old_name, the group
    it replaces, NULL for none): created_at kept from the group it
    replaces, if any. The reply: status with the group stored, or the
    store's error. */
static json_t *
s_group_write (sch_ctx_t *ctx, const json_t *request, const json_t *spec,
               const char *old_name, const json_t *old, const char *event,
               const char *status)
{
    const char *name = dx_msg_str (request, "name");
    char now [32];
    sch_now (now, sizeof now);
    json_t *record = json_deep_copy (spec);
    const json_t *created = json_object_get (old, "created_at");
    json_object_set_new (record, "created_at", json_is_string (created)
                         ? json_copy ((json_t *) created): json_string (now));
    json_object_set_new (record, "updated_at", json_string (now));
    if (sch_store_group_put (ctx->store, name, old_name, record, event, now)) {
        json_decref (record);
        return sch_store_error_reply (ctx->store, request);
    }
    const char *group = json_string_value (json_object_get (spec, "name"));
    int renamed = old_name && strcmp (old_name, group);
    dx_info ("%s name=%s group=%s%s%s", event, name, group, renamed? " from=": "",
             renamed? old_name: "");
    return dx_reply_new (request, status, record);
}

/*  Common start of upsert and update: loads the cluster with its groups,
    validates the group's fields for its provider and checks the cluster's
    hosts with the group in place of the one named replaced (NULL: the
    group of its own name). The loaded cluster and the group spec in
    *spec_p (both caller's), or NULL with the reply. */
static json_t *
s_group_prepare (sch_ctx_t *ctx, const json_t *request, const char *replaced,
                 json_t **spec_p, json_t **reply_p)
{
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_GROUPS, reply_p);
    *spec_p = loaded? sch_fields (SCH_FIELDS_GROUP, request, loaded, NULL, reply_p): NULL;
    if (*spec_p) {
        if (!replaced)
            replaced = json_string_value (json_object_get (*spec_p, "name"));
        *reply_p = sch_groups_check (request, json_object_get (loaded, "groups"), *spec_p,
                                     replaced);
        if (*reply_p) {
            json_decref (*spec_p);
            *spec_p = NULL;
        }
    }
    if (!*spec_p) {
        json_decref (loaded);
        loaded = NULL;
    }
    return loaded;
}

/*  group.upsert: creates the group (CREATED) or replaces it (OK). */
json_t *
sch_group_upsert (sch_ctx_t *ctx, const json_t *request)
{
    json_t *spec, *reply;
    json_t *loaded = s_group_prepare (ctx, request, NULL, &spec, &reply);
    if (!loaded)
        return reply;
    const char *group = json_string_value (json_object_get (spec, "name"));
    const json_t *old = json_object_get (json_object_get (loaded, "groups"), group);
    reply = s_group_write (ctx, request, spec, NULL, old,
                           old? "group.updated": "group.created", old? DX_OK: DX_CREATED);
    json_decref (spec);
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
    json_t *spec, *reply;
    json_t *loaded = s_group_prepare (ctx, request, group, &spec, &reply);
    if (!loaded)
        return reply;
    const char *new_name = json_string_value (json_object_get (spec, "name"));
    const json_t *groups = json_object_get (loaded, "groups");
    const json_t *old = json_object_get (groups, group);
    int rename = strcmp (group, new_name) != 0;
    if (!old)
        reply = s_group_missing (request, group);
    else
    if (rename && json_object_get (groups, new_name))
        reply = dx_reply_error (request, DX_CONFLICT, "name",
                                "cannot rename group %s to %s: cluster %s already has "
                                "a group %s", group, new_name, name, new_name);
    else
        reply = s_group_write (ctx, request, spec, group, old,
                               rename? "group.renamed": "group.updated", DX_OK);
    json_decref (spec);
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
    int has = s_cluster_has (ctx, request, SCH_LOAD_GROUPS, "groups", group, &reply);
    if (has <= 0)
        return has? reply: s_group_missing (request, group);
    char now [32];
    if (sch_store_group_delete (ctx->store, name, group, sch_now (now, sizeof now)))
        return sch_store_error_reply (ctx->store, request);
    dx_info ("group deleted name=%s group=%s", name, group);
    return dx_reply_new (request, DX_OK, json_pack ("{s:s}", "deleted", group));
}
