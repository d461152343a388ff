/*  sch_deployment: the handlers of a cluster's deployment: its record
    (state, generation, progress), the deploy/destroy request that snapshots
    the spec, forgetting it, its VPN profile and its event stream.

    No step runs yet: a requested deployment waits in deploying or
    destroying with `waiting` saying why nothing runs, computed when it is
    read from the workers the broker knows. */
#include "sch_handlers.h"
#include "sch_plan.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

/*  A deployment is running: nothing else may start or be forgotten. */
static const char *s_deploy_running [] = { "deploying", "destroying", NULL };

/*  Cloud resources may exist: forgetting needs force. */
static const char *s_deploy_resources [] = {
    "deployed", "deploy_failed", "destroy_failed", NULL
};

/*  Nothing was ever deployed, or it is all gone: destroy has nothing to do. */
static const char *s_deploy_nothing [] = { "init", "destroyed", NULL };

/*  1 if state is one of the NULL-terminated list. */
static int
s_deploy_state_in (const char *state, const char **list)
{
    for (int i = 0; list [i]; i++)
        if (strcmp (state, list [i]) == 0)
            return 1;
    return 0;
}

/*  A member of the record, as a new reference, null when absent. */
static json_t *
s_deploy_field (const json_t *record, const char *field)
{
    json_t *value = json_object_get (record, field);
    return value? json_incref (value): json_null ();
}

/*  The deployment object of docs/api.md from a stored record: progress
    grouped, accessip shown as _accessip, absent values as null. */
json_t *
sch_deployment_object (const char *name, const json_t *record)
{
    const char *state = json_string_value (json_object_get (record, "state"));
    json_int_t generation = json_integer_value (json_object_get (record, "generation"));
    json_int_t observed = json_integer_value (json_object_get (record, "observed_generation"));
    json_int_t done = json_integer_value (json_object_get (record, "steps_done"));
    json_int_t total = json_integer_value (json_object_get (record, "steps_total"));
    //  last_error is stored as JSON ({step, code, message})
    const char *error_text = json_string_value (json_object_get (record, "last_error"));
    json_t *last_error = error_text? json_loads (error_text, 0, NULL): NULL;
    if (error_text && !last_error)
        last_error = json_pack ("{s:n, s:n, s:s}", "step", "code", "message", error_text);
    return json_pack ("{s:s, s:s, s:o, s:I, s:I, s:o, s:{s:I, s:I, s:o}, s:o, s:o, s:o, s:o, "
                      "s:o, s:o, s:o}",
                      "cluster", name,
                      "state", state? state: "init",
                      "command", s_deploy_field (record, "command"),
                      "generation", generation,
                      "observed_generation", observed,
                      "parallelism", s_deploy_field (record, "parallelism"),
                      "progress", "steps_done", done, "steps_total", total,
                                  "current", s_deploy_field (record, "current"),
                      "waiting", s_deploy_field (record, "waiting"),
                      "last_error", last_error? last_error: json_null (),
                      "created_at", s_deploy_field (record, "created_at"),
                      "updated_at", s_deploy_field (record, "updated_at"),
                      "started_at", s_deploy_field (record, "started_at"),
                      "finished_at", s_deploy_field (record, "finished_at"),
                      "_accessip", s_deploy_field (record, "accessip"));
}

/*  The loaded record, or a fresh init record for a cluster without one
    (which only a hand-edited Redis would have). Borrowed from loaded. */
static const json_t *
s_deploy_record (json_t *loaded)
{
    json_t *record = json_object_get (loaded, "deployment");
    if (!json_is_object (record)) {
        const json_t *created = json_object_get (json_object_get (loaded, "cluster"),
                                                 "created_at");
        record = json_pack ("{s:s, s:i, s:i, s:i, s:i, s:O?, s:O?}",
                            "state", "init", "generation", 0, "observed_generation", 0,
                            "steps_done", 0, "steps_total", 0,
                            "created_at", created, "updated_at", created);
        json_object_set_new (loaded, "deployment", record);
    }
    return record;
}

/*  The `waiting` sentence of a running deployment of a provider's cluster,
    from the live workers (the stored one was true when it was written):
    none connected, or null when some are. */
static json_t *
s_deploy_waiting (sch_broker_t *broker, const char *provider)
{
    size_t workers = sch_broker_workers (broker, provider, NULL);
    if (workers == 0)
        return json_sprintf ("no %s worker is connected; the deployment goes on when "
                             "one registers", provider);
    return json_null ();
}

/*  deployment.get: the record, state init before any deploy; a running
    deployment says what it waits for now. */
json_t *
sch_deployment_get_reply (sch_ctx_t *ctx, const json_t *request, int ticket)
{
    json_t *reply;
    json_t *loaded = sch_loaded_cluster (ctx, request, ticket, &reply);
    if (!loaded)
        return reply;
    json_t *object = sch_deployment_object (dx_msg_str (request, "name"),
                                            s_deploy_record (loaded));
    const char *provider = json_string_value (json_object_get (json_object_get (loaded, "cluster"),
                                                               "provider"));
    const char *state = json_string_value (json_object_get (object, "state"));
    if (object && ctx->broker && provider && state && s_deploy_state_in (state, s_deploy_running))
        json_object_set_new (object, "waiting", s_deploy_waiting (ctx->broker, provider));
    reply = dx_reply_new (request, DX_OK, object);
    json_decref (loaded);
    return reply;
}

/*  Groups of a loaded object as an array sorted by name. */
static json_t *
s_deploy_groups (const json_t *groups)
{
    json_t *list = json_array ();
    const char *key;
    json_t *group;
    json_object_foreach ((json_t *) groups, key, group) {
        size_t at = 0;
        while (at < json_array_size (list)
           &&  strcmp (json_string_value (json_object_get (json_array_get (list, at), "name")),
                       key) < 0)
            at++;
        json_array_insert (list, at, group);
    }
    return list;
}

/*  Seals the credentials as one JSON document; the plaintext copy is
    wiped before it is freed. Caller frees the result. */
static char *
s_deploy_seal_credentials (sch_ctx_t *ctx, const json_t *credentials)
{
    char *text = json_dumps (credentials, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return NULL;
    size_t len = strlen (text);
    char *sealed = dx_seal_seal (ctx->seal, text, len);
    sodium_memzero (text, len);
    free (text);
    return sealed;
}

/*  deployment.put: applies the state rules, then snapshots the spec as the
    next generation, seals the credentials and moves to deploying or
    destroying, all in one transaction. No worker exists yet, so `waiting`
    says what the deployment waits for. */
json_t *
sch_deployment_put (sch_ctx_t *ctx, const json_t *request)
{
    const char *name = dx_msg_str (request, "name");
    const char *command = dx_msg_str (request, "command");
    json_int_t parallelism = dx_msg_int (request, "parallelism", 5);
    const json_t *credentials = json_object_get (request, "credentials");
    int deploy = strcmp (command, "deploy") == 0;
    if (!deploy && strcmp (command, "destroy") != 0)
        return dx_reply_error (request, DX_INVALID, "command", "command must be deploy or destroy");

    json_t *reply;
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_CONFIG | SCH_LOAD_SECRETS
                                       | SCH_LOAD_GROUPS | SCH_LOAD_DEPLOYMENT
                                       | SCH_LOAD_RESOURCES, &reply);
    if (!loaded)
        return reply;
    reply = sch_check_provider (request, loaded);
    if (reply) {
        json_decref (loaded);
        return reply;
    }
    const json_t *cluster = json_object_get (loaded, "cluster");
    const json_t *config = json_object_get (loaded, "config");
    const json_t *record = s_deploy_record (loaded);
    const char *provider = json_string_value (json_object_get (cluster, "provider"));
    const char *state = json_string_value (json_object_get (record, "state"));
    if (!state)
        state = "init";
    json_int_t generation = json_integer_value (json_object_get (record, "generation"));

    if (s_deploy_state_in (state, s_deploy_running))
        reply = dx_reply_error (request, DX_CONFLICT, "command",
                                "a deployment of cluster %s is in progress (state %s, "
                                "generation %" JSON_INTEGER_FORMAT "); wait until it "
                                "finishes", name, state, generation);
    else
    if (deploy && !json_is_object (config))
        reply = dx_reply_error (request, DX_CONFLICT, "command",
                                "cluster %s has no config; set one with "
                                "PUT /clusters/%s/config before deploying", name, name);
    else
    if (!deploy && s_deploy_state_in (state, s_deploy_nothing))
        reply = dx_reply_error (request, DX_CONFLICT, "command",
                                "cluster %s has nothing deployed (state %s); there is "
                                "nothing to destroy", name, state);
    if (!reply && !deploy && !json_is_object (config)) {
        //  The config was deleted since: destroy where the last generation was
        json_t *last = sch_store_snapshot (ctx->store, name, generation);
        config = json_object_get (last, "config");
        if (!last && *sch_store_error (ctx->store))
            reply = sch_store_error_reply (ctx->store, request);
        else
        if (json_is_object (config))
            json_object_set (loaded, "config", (json_t *) config);
        else
            reply = dx_reply_error (request, DX_CONFLICT, "command",
                                    "cluster %s has no config, which names the region to "
                                    "destroy in; put it back with PUT /clusters/%s/config",
                                    name, name);
        json_decref (last);
        config = json_object_get (loaded, "config");
    }
    if (reply) {
        json_decref (loaded);
        return reply;
    }

    char now [32];
    sch_now (now, sizeof now);
    json_int_t next = generation + 1;
    //  The snapshot holds secrets only sealed, exactly as the config had them
    json_t *snapshot = json_pack ("{s:I, s:s, s:s, s:O, s:O, s:O, s:o}",
                                  "generation", next, "command", command, "created_at", now,
                                  "cluster", cluster, "config", config,
                                  "secrets", json_object_get (loaded, "secrets"),
                                  "groups", s_deploy_groups (json_object_get (loaded, "groups")));
    char *sealed = s_deploy_seal_credentials (ctx, credentials);
    if (!snapshot || !sealed) {
        json_decref (snapshot);
        free (sealed);
        json_decref (loaded);
        dx_error ("cannot snapshot or seal the deployment of cluster %s", name);
        return dx_reply_error (request, DX_INTERNAL, NULL,
                               "cannot snapshot the spec or seal the credentials");
    }
    char err [256];
    json_t *plan = sch_plan_build (snapshot, json_object_get (loaded, "resources"),
                                   err, sizeof err);
    if (!plan) {
        json_decref (snapshot);
        free (sealed);
        json_decref (loaded);
        return dx_reply_error (request, DX_CONFLICT, "command", "%s", err);
    }
    //  The job records: the plan's jobs, pending, with their place in it
    size_t i;
    json_t *job;
    json_array_foreach (plan, i, job) {
        json_object_set_new (job, "order", json_integer ((json_int_t) i));
        json_object_set_new (job, "status", json_string ("pending"));
        json_object_set_new (job, "attempt", json_integer (1));
    }
    char waiting [160] = "";
    if (!ctx->broker || sch_broker_workers (ctx->broker, provider, NULL) == 0)
        snprintf (waiting, sizeof waiting, "no %s worker is connected; the deployment "
                  "goes on when one registers", provider);
    json_t *changes = json_pack ("{s:s, s:s, s:I, s:I, s:i, s:I, s:n, s:o, s:n, s:s, s:n}",
                                 "state", deploy? "deploying": "destroying",
                                 "command", command, "generation", next,
                                 "parallelism", parallelism, "steps_done", 0,
                                 "steps_total", (json_int_t) json_array_size (plan),
                                 "current",
                                 "waiting", *waiting? json_string (waiting): json_null (),
                                 "last_error", "started_at", now, "finished_at");
    int rc = sch_store_deployment_start (ctx->store, name, next, snapshot, sealed,
                                         changes, plan, now);
    json_decref (plan);
    json_decref (snapshot);
    free (sealed);
    if (rc) {
        reply = sch_store_error_reply (ctx->store, request);
        //  The transaction may have run with only its answer lost: then
        //  Redis says deploying and the engine must find out
        if (ctx->engine)
            sch_engine_recheck (ctx->engine);
    }
    else {
        dx_info ("deployment requested name=%s command=%s generation=%" JSON_INTEGER_FORMAT
                 " state %s -> %s", name, command, next, state,
                 deploy? "deploying": "destroying");
        if (ctx->engine)
            sch_engine_start (ctx->engine, name);
        json_t *updated = json_deep_copy (record);
        json_object_update (updated, changes);
        json_object_set_new (updated, "updated_at", json_string (now));
        reply = dx_reply_new (request, DX_ACCEPTED, sch_deployment_object (name, updated));
        json_decref (updated);
    }
    json_decref (changes);
    json_decref (loaded);
    return reply;
}

/*  deployment.delete: forgets the record, snapshots and credentials (back
    to init, keeping the generation number: the next deploy's client
    tokens must not be those of an earlier one, which EC2 remembers);
    refused while running, and without force while cloud resources may
    exist. */
json_t *
sch_deployment_delete (sch_ctx_t *ctx, const json_t *request)
{
    const char *name = dx_msg_str (request, "name");
    int force = dx_msg_bool (request, "force", 0);
    json_t *reply;
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_DEPLOYMENT, &reply);
    if (!loaded)
        return reply;
    const char *current = json_string_value (json_object_get (s_deploy_record (loaded),
                                                              "state"));
    char state [32];
    snprintf (state, sizeof state, "%s", current? current: "init");
    json_int_t generation = json_integer_value (json_object_get (s_deploy_record (loaded),
                                                                 "generation"));
    json_decref (loaded);
    if (s_deploy_state_in (state, s_deploy_running))
        return dx_reply_error (request, DX_CONFLICT, NULL,
                               "a deployment of cluster %s is in progress (state %s); "
                               "wait until it finishes", name, state);
    int resources = s_deploy_state_in (state, s_deploy_resources);
    if (resources && !force)
        return dx_reply_error (request, DX_CONFLICT, NULL,
                               "cloud resources of cluster %s may exist (state %s): "
                               "destroy them first (PUT /clusters/%s/deployment "
                               "command=destroy) or delete with force=true",
                               name, state, name);
    char now [32];
    if (sch_store_deployment_reset (ctx->store, name, sch_now (now, sizeof now),
                                    (long long) generation))
        return sch_store_error_reply (ctx->store, request);
    if (resources)
        dx_warn ("deployment forgotten with force name=%s state %s -> init: its cloud "
                 "resources, if any, are no longer tracked", name, state);
    else
        dx_info ("deployment forgotten name=%s state %s -> init", name, state);
    return dx_reply_new (request, DX_OK, json_pack ("{s:s}", "deleted", "deployment"));
}

/*  deployment.vpn: NOT_FOUND until an access node exists; the profile
    itself comes with the vpn service. */
json_t *
sch_deployment_vpn_reply (sch_ctx_t *ctx, const json_t *request, int ticket)
{
    const char *name = dx_msg_str (request, "name");
    json_t *reply;
    json_t *loaded = sch_loaded_cluster (ctx, request, ticket, &reply);
    if (!loaded)
        return reply;
    const char *accessip = json_string_value (json_object_get (
                               s_deploy_record (loaded), "accessip"));
    if (!accessip || !*accessip)
        reply = dx_reply_error (request, DX_NOT_FOUND, NULL,
                                "no access node has been deployed for cluster %s yet; "
                                "deploy first", name);
    else
        reply = dx_reply_error (request, DX_NOT_FOUND, NULL,
                                "the VPN profile of cluster %s is not available yet: "
                                "no vpn service has issued it", name);
    json_decref (loaded);
    return reply;
}

/*  1 if text is a stream id: digits, optionally "-" and digits. */
static int
s_deploy_stream_id (const char *text)
{
    size_t i = 0, digits = 0;
    while (isdigit ((unsigned char) text [i])) {
        i++;
        digits++;
    }
    if (digits == 0 || digits > 20)
        return 0;
    if (text [i] == 0)
        return 1;
    if (text [i++] != '-')
        return 0;
    digits = 0;
    while (isdigit ((unsigned char) text [i])) {
        i++;
        digits++;
    }
    return digits > 0 && digits <= 20 && text [i] == 0;
}

/*  deployment.events: the stream after `after` (exclusive), at most count.
    Queues two reads, the cluster (does it exist?) then its stream: the
    stream's ticket is the next one. */
json_t *
sch_deployment_events_queue (sch_ctx_t *ctx, const json_t *request, int *ticket)
{
    const char *name = dx_msg_str (request, "name");
    const char *after = dx_msg_str (request, "after");
    json_int_t count = dx_msg_int (request, "count", 100);
    if (after && !*after)
        after = NULL;
    if (after && !s_deploy_stream_id (after))
        return dx_reply_error (request, DX_INVALID, "after",
                               "after must be an event id such as 1732500000000-0");
    if (count < 1 || count > 1000)
        return dx_reply_error (request, DX_INVALID, "count",
                               "count must be an integer from 1 to 1000");
    json_t *reply = sch_queue_cluster (ctx, request, 0, ticket);
    if (!reply && sch_store_queue_events (ctx->store, name, after, count) != *ticket + 1)
        reply = sch_store_error_reply (ctx->store, request);
    return reply;
}

json_t *
sch_deployment_events_reply (sch_ctx_t *ctx, const json_t *request, int ticket)
{
    json_t *reply;
    json_t *loaded = sch_loaded_cluster (ctx, request, ticket, &reply);
    if (!loaded)
        return reply;
    json_decref (loaded);
    json_t *events = sch_store_events_result (ctx->store, ticket + 1);
    if (!events)
        return sch_store_error_reply (ctx->store, request);
    return dx_reply_new (request, DX_OK, json_pack ("{s:o}", "events", events));
}
