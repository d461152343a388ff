/*  sch_handlers: what the handlers share: finding the request's cluster
    (or saying why not), validating fields for its provider, the state
    classes of docs/api.md. See sch_handlers.h. */
#include "sch_handlers.h"
#include "dx_msg.h"
#include "dx_spec.h"
#include "dx_util.h"

#include <stdio.h>
#include <string.h>
#include <sodium.h>

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
    *reply_p = NULL;
    if (!loaded)
        *reply_p = sch_store_error_reply (ctx->store, request);
    else
    if (!json_is_object (json_object_get (loaded, "cluster"))) {
        json_decref (loaded);
        loaded = NULL;
        *reply_p = dx_reply_error (request, DX_NOT_FOUND, "name", "cluster %s does not exist",
                                   dx_msg_str (request, "name"));
    }
    return loaded;
}

json_t *
sch_load_cluster (sch_ctx_t *ctx, const json_t *request, unsigned what, json_t **reply_p)
{
    json_t *loaded = sch_read_load (ctx->read, dx_msg_str (request, "name"),
                                    what | SCH_LOAD_CLUSTER);
    return s_cluster_found (ctx, request, loaded, reply_p);
}

json_t *
sch_queue_cluster (sch_ctx_t *ctx, const json_t *request, unsigned what, int *ticket)
{
    *ticket = sch_read_queue_load (ctx->read, dx_msg_str (request, "name"),
                                   what | SCH_LOAD_CLUSTER);
    return *ticket < 0? sch_store_error_reply (ctx->store, request): NULL;
}

json_t *
sch_loaded_cluster (sch_ctx_t *ctx, const json_t *request, int ticket, json_t **reply_p)
{
    return s_cluster_found (ctx, request, sch_read_load_result (ctx->read, ticket), reply_p);
}

const char *
sch_provider (const json_t *loaded)
{
    return json_string_value (json_object_get (json_object_get (loaded, "cluster"),
                                               "provider"));
}

json_t *
sch_groups (const json_t *groups)
{
    json_t *list = json_array ();
    const char *key;
    json_t *group;
    json_object_foreach ((json_t *) groups, key, group) {
        size_t at = json_array_size (list);
        //  Insertion sort: a cluster has a handful of groups
        while (at > 0 && strcmp (json_string_value (json_object_get (
                                     json_array_get (list, at - 1), "name")), key) > 0)
            at--;
        json_array_insert (list, at, group);
    }
    return list;
}

/*  Provider-dependent validation is here, where the stored cluster is:
    the api checks only what needs no state. */
json_t *
sch_fields (sch_fields_t kind, const json_t *request, const json_t *loaded,
            json_t *secrets, json_t **reply_p)
{
    const char *provider = sch_provider (loaded);
    const json_t *fields = json_object_get (request, "fields");
    json_t *errors = json_array ();
    json_t *valid = kind == SCH_FIELDS_CONFIG? dx_spec_config (provider, fields, secrets, errors)
                  : kind == SCH_FIELDS_GROUP? dx_spec_group (provider, fields, errors)
                  : dx_spec_deployment (provider, fields, secrets, errors);
    if (valid)
        json_decref (errors);
    //  Out of memory, errors may be empty: no reply, which the loop answers
    *reply_p = valid? NULL: dx_reply_errors (request, DX_INVALID, errors);
    return valid;
}

json_t *
sch_groups_check (const json_t *request, const json_t *groups, const json_t *spec,
                  const char *replaced)
{
    json_int_t total = json_integer_value (json_object_get (spec, "hosts"));
    size_t count = spec? 1: 0;
    const char *key;
    json_t *group;
    json_object_foreach ((json_t *) groups, key, group)
        if (!replaced || strcmp (key, replaced)) {
            total += json_integer_value (json_object_get (group, "hosts"));
            count++;
        }
    if (spec && count > DX_CLUSTER_GROUPS_MAX)
        return dx_reply_error (request, DX_INVALID, "name", "cluster %s would have %zu "
                               "groups; a cluster may have at most %d groups",
                               dx_msg_str (request, "name"), count, DX_CLUSTER_GROUPS_MAX);
    if (total <= DX_CLUSTER_HOSTS_MAX)
        return NULL;
    return dx_reply_error (request, DX_INVALID, "hosts", "cluster %s would have %"
                           JSON_INTEGER_FORMAT " hosts in its groups; a cluster may have at "
                           "most %d: make groups smaller or use a larger instance_type",
                           dx_msg_str (request, "name"), total, DX_CLUSTER_HOSTS_MAX);
}

void
sch_wipe (json_t *object)
{
    const char *key;
    json_t *value;
    json_object_foreach (object, key, value)
        if (json_is_string (value))
            sodium_memzero ((char *) json_string_value (value), json_string_length (value));
}

const char *
sch_state (const json_t *loaded)
{
    const char *state = json_string_value (json_object_get (
                            json_object_get (loaded, "deployment"), "state"));
    return state? state: "init";
}

/*  1 if state is one of the NULL-terminated list. */
static int
s_state_in (const char *state, const char **list)
{
    for (int i = 0; list [i]; i++)
        if (strcmp (state, list [i]) == 0)
            return 1;
    return 0;
}

int
sch_state_running (const char *state)
{
    return s_state_in (state, (const char *[]) { "deploying", "destroying", NULL });
}

int
sch_state_holds (const char *state)
{
    return sch_state_running (state)
        || s_state_in (state, (const char *[]) {
               "deployed", "deploy_failed", "destroy_failed", NULL });
}

json_t *
sch_delete_check (sch_ctx_t *ctx, const json_t *request, int running_refuses, char *state,
                  json_int_t *generation)
{
    const char *name = dx_msg_str (request, "name");
    json_t *reply;
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_DEPLOYMENT, &reply);
    if (!loaded)
        return reply;
    snprintf (state, SCH_STATE_SIZE, "%s", sch_state (loaded));
    if (generation)
        *generation = json_integer_value (json_object_get (json_object_get (loaded,
                                                           "deployment"), "generation"));
    json_decref (loaded);
    if (running_refuses && sch_state_running (state))
        return dx_reply_error (request, DX_CONFLICT, NULL,
                               "a deployment of cluster %s is in progress (state %s); "
                               "wait until it finishes", name, state);
    if (sch_state_holds (state) && !dx_msg_bool (request, "force", 0))
        return dx_reply_error (request, DX_CONFLICT, NULL,
                               "cluster %s has deployment state %s, so cloud resources may "
                               "exist: destroy them first (PUT /clusters/%s/deployment "
                               "command=destroy) or delete with force=true",
                               name, state, name);
    return NULL;
}
