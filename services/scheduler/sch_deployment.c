/*  sch_deployment: the handlers of a cluster's deployment: its record
    (state, generation, progress), the deploy/destroy request that snapshots
    the spec and hands it to the engine, which plans its steps, forgetting
    it, its VPN profile and its event stream. See sch_handlers.h. */
#include "sch_handlers.h"
#include "sch_plan.h"
#include "sch_vpn.h"
#include "dx_log.h"
#include "dx_msg.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

/*  A member of the record, as a new reference, null when absent. */
static json_t *
s_deploy_field (const json_t *record, const char *field)
{
    json_t *value = json_object_get (record, field);
    return value? json_incref (value): json_null ();
}

/*  The deployment object of docs/api.md from a stored record: progress
    grouped, accessip shown as _accessip, absent values as null. */
static json_t *
s_deploy_object (const char *name, const json_t *record)
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
    int pending = sch_vpn_crl_pending (record);
    return json_pack ("{s:s, s:s, s:o, s:I, s:I, s:o, s:{s:I, s:I, s:o}, s:o, s:o, s:o, s:o, "
                      "s:o, s:o, s:o, s:o}",
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
                      "_accessip", s_deploy_field (record, "accessip"),
                      "vpn_crl", pending? json_string ("pending"): json_null ());
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
    from the live workers: none connected (or no broker), or null when
    some are. */
static json_t *
s_deploy_waiting (sch_broker_t *broker, const char *provider, int deploy)
{
    if (!broker || sch_broker_workers (broker, provider, NULL) == 0)
        return json_sprintf ("no %s worker is connected; the deployment goes on when "
                             "one registers", provider);
    //  A deploy's vpn steps run on the vpn service's workers
    if (deploy && sch_broker_workers (broker, "vpn", NULL) == 0)
        return json_string ("no vpn worker is connected; the deployment's vpn steps, and "
                            "the access node after them, wait until one registers");
    return json_null ();
}

/*  deployment.get: the record, state init before any deploy; a running
    deployment says what it waits for now. */
json_t *
sch_deployment_get (sch_ctx_t *ctx, const json_t *request, json_t *loaded)
{
    json_t *object = s_deploy_object (dx_msg_str (request, "name"), s_deploy_record (loaded));
    const char *provider = sch_provider (loaded);
    const char *state = json_string_value (json_object_get (object, "state"));
    if (object && ctx->broker && provider && state && sch_state_running (state)) {
        const char *command = json_string_value (json_object_get (object, "command"));
        json_object_set_new (object, "waiting",
                             s_deploy_waiting (ctx->broker, provider,
                                               !command || strcmp (command, "destroy")));
    }
    return dx_reply_new (request, DX_OK, object);
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

/*  1 if the loaded cluster is of type dcos. */
static int
s_deploy_dcos (const json_t *loaded)
{
    const char *type = json_string_value (json_object_get (json_object_get (loaded, "cluster"),
                                                           "type"));
    return type && strcmp (type, "dcos") == 0;
}

/*  The state rules of a deploy or destroy: CONFLICT while one runs, for a
    deploy without config or, of a dcos cluster, without the DC/OS
    installer (DEXTER_DCOS_INSTALLER_URL), a destroy of nothing. A destroy
    without config (deleted since) destroys where the last generation was:
    its config is set into loaded. NULL when the deployment may start. */
static json_t *
s_deploy_refused (sch_ctx_t *ctx, const json_t *request, json_t *loaded, int deploy)
{
    const char *name = dx_msg_str (request, "name");
    const char *state = sch_state (loaded);
    json_int_t generation = json_integer_value (json_object_get (s_deploy_record (loaded),
                                                                 "generation"));
    int configured = json_is_object (json_object_get (loaded, "config"));
    if (sch_state_running (state))
        return dx_reply_error (request, DX_CONFLICT, "command",
                               "a deployment of cluster %s is in progress (state %s, "
                               "generation %" JSON_INTEGER_FORMAT "); wait until it "
                               "finishes", name, state, generation);
    if (deploy && !configured)
        return dx_reply_error (request, DX_CONFLICT, "command",
                               "cluster %s has no config; set one with "
                               "PUT /clusters/%s/config before deploying", name, name);
    if (deploy && s_deploy_dcos (loaded)
    &&  !(ctx->dcos_installer_url && *ctx->dcos_installer_url))
        return dx_reply_error (request, DX_CONFLICT, "command",
                               "cluster %s is a dcos cluster and the scheduler has no DC/OS "
                               "installer: set DEXTER_DCOS_INSTALLER_URL (docs/provision.md) "
                               "and restart it before deploying", name);
    if (!deploy && !sch_state_holds (state))
        return dx_reply_error (request, DX_CONFLICT, "command",
                               "cluster %s has nothing deployed (state %s); there is "
                               "nothing to destroy", name, state);
    if (configured)
        return NULL;
    json_t *last;
    if (sch_read_snapshot (ctx->read, name, generation, &last))
        return sch_store_error_reply (ctx->store, request);
    json_t *config = json_object_get (last, "config");
    json_t *reply = NULL;
    if (json_is_object (config))
        json_object_set (loaded, "config", config);
    else
        reply = dx_reply_error (request, DX_CONFLICT, "command",
                                "cluster %s has no config, which names the region to "
                                "destroy in; put it back with PUT /clusters/%s/config",
                                name, name);
    json_decref (last);
    return reply;
}

/*  The number of steps of snapshot's plan, or 0 with err when it cannot
    be planned. The engine makes the plan itself, a slice at a time. */
static size_t
s_deploy_steps (const json_t *snapshot, const json_t *resources, char *err, size_t size)
{
    sch_plan_t *plan = snapshot? sch_plan_new (snapshot, resources, err, size): NULL;
    size_t steps = plan? sch_plan_size (plan): 0;
    sch_plan_destroy (&plan);
    return steps;
}

/*  Snapshots the spec as the next generation, seals the credentials,
    counts the steps and moves to deploying or destroying, all in one
    transaction, then hands the deployment to the engine, which plans it.
    `waiting` says what it waits for when no worker of its provider is
    connected. */
static json_t *
s_deploy_start (sch_ctx_t *ctx, const json_t *request, json_t *loaded, const json_t *valid,
                const json_t *credentials)
{
    const char *name = dx_msg_str (request, "name");
    const char *command = json_string_value (json_object_get (valid, "command"));
    int deploy = strcmp (command, "deploy") == 0;
    const json_t *record = s_deploy_record (loaded);
    json_int_t next = json_integer_value (json_object_get (record, "generation")) + 1;
    char now [32];
    sch_now (now, sizeof now);
    //  The snapshot holds secrets only sealed, exactly as the config had them
    json_t *snapshot = json_pack ("{s:I, s:s, s:s, s:O, s:O, s:O, s:o}",
                                  "generation", next, "command", command, "created_at", now,
                                  "cluster", json_object_get (loaded, "cluster"),
                                  "config", json_object_get (loaded, "config"),
                                  "secrets", json_object_get (loaded, "secrets"),
                                  "groups", sch_groups (json_object_get (loaded, "groups")));
    //  The plan's batch size is the snapshot's, so a plan made again is the same
    const char *provider = sch_provider (loaded);
    if (snapshot && provider && strcmp (provider, "aws") == 0)
        json_object_set_new (snapshot, "aws_batch_max", json_integer (ctx->aws_batch_max));
    char *sealed = s_deploy_seal_credentials (ctx, credentials);
    //  A dcos cluster's hosts get the installer of the snapshot (sch_plan.h)
    if (snapshot && s_deploy_dcos (loaded) && ctx->dcos_installer_url)
        json_object_set_new (snapshot, "dcos_installer_url",
                             json_string (ctx->dcos_installer_url));
    //  A CRL the running access node lacks: the plan delivers it
    if (snapshot && deploy && sch_vpn_crl_pending (record))
        json_object_set (snapshot, "vpn_crl", json_object_get (record, "vpn_crl"));
    char err [256] = "";
    size_t steps = s_deploy_steps (snapshot, json_object_get (loaded, "resources"),
                                   err, sizeof err);
    json_t *no_jobs = json_array ();    /* the engine records the plan */
    json_t *changes = json_pack ("{s:s, s:s, s:I, s:O, s:i, s:I, s:n, s:o, s:n, s:s, s:n}",
                                 "state", deploy? "deploying": "destroying",
                                 "command", command, "generation", next,
                                 "parallelism", json_object_get (valid, "parallelism"),
                                 "steps_done", 0,
                                 "steps_total", (json_int_t) steps,
                                 "current",
                                 "waiting", s_deploy_waiting (ctx->broker,
                                                              sch_provider (loaded), deploy),
                                 "last_error", "started_at", now, "finished_at");
    json_t *reply = NULL;
    if (!snapshot || !sealed || !changes || !no_jobs) {
        dx_error ("cannot snapshot or seal the deployment of cluster %s", name);
        reply = dx_reply_error (request, DX_INTERNAL, NULL,
                                "cannot snapshot the spec or seal the credentials");
    }
    else
    if (!steps)
        reply = dx_reply_error (request, DX_CONFLICT, "command", "%s", err);
    else
    if (sch_store_deployment_start (ctx->store, name, next, snapshot, sealed, changes,
                                    no_jobs, now)) {
        reply = sch_store_error_reply (ctx->store, request);
        //  The transaction may have run with only its answer lost: then
        //  Redis says deploying and the engine must find out
        if (ctx->engine)
            sch_engine_recheck (ctx->engine);
    }
    else {
        dx_info ("deployment requested name=%s command=%s generation=%" JSON_INTEGER_FORMAT
                 " state %s -> %s", name, command, next, sch_state (loaded),
                 deploy? "deploying": "destroying");
        if (ctx->engine)
            sch_engine_start (ctx->engine, name);
        json_t *updated = json_deep_copy (record);
        json_object_update (updated, changes);
        json_object_set_new (updated, "updated_at", json_string (now));
        reply = dx_reply_new (request, DX_ACCEPTED, s_deploy_object (name, updated));
        json_decref (updated);
    }
    json_decref (changes);
    json_decref (no_jobs);
    json_decref (snapshot);
    free (sealed);
    return reply;
}

/*  deployment.put: the fields (command, parallelism, credentials)
    validated for the cluster's provider, a deploy's hosts counted, then
    the state rules, then the deployment starts. */
json_t *
sch_deployment_put (sch_ctx_t *ctx, const json_t *request)
{
    json_t *reply;
    json_t *loaded = sch_load_cluster (ctx, request, SCH_LOAD_CONFIG | SCH_LOAD_SECRETS
                                       | SCH_LOAD_GROUPS | SCH_LOAD_DEPLOYMENT
                                       | SCH_LOAD_RESOURCES, &reply);
    if (!loaded)
        return reply;
    json_t *credentials = json_object ();
    json_t *valid = sch_fields (SCH_FIELDS_DEPLOYMENT, request, loaded, credentials, &reply);
    if (valid) {
        const char *command = json_string_value (json_object_get (valid, "command"));
        int deploy = strcmp (command, "deploy") == 0;
        //  A destroy takes down whatever there is, however many
        if (deploy)
            reply = sch_groups_check (request, json_object_get (loaded, "groups"), NULL, NULL);
        if (!reply)
            reply = s_deploy_refused (ctx, request, loaded, deploy);
    }
    if (valid && !reply)
        reply = s_deploy_start (ctx, request, loaded, valid, credentials);
    sch_wipe (credentials);
    json_decref (credentials);
    json_decref (valid);
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
    char state [SCH_STATE_SIZE];
    json_int_t generation;
    json_t *reply = sch_delete_check (ctx, request, 1, state, &generation);
    if (reply)
        return reply;
    const char *name = dx_msg_str (request, "name");
    int resources = sch_state_holds (state);
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

/*  deployment.vpn: the client profile of the vpn service's vpn.profile
    step (the recorded resource vpn.profile, sealed), as a JSON string;
    NOT_FOUND, saying why, until it exists. */
json_t *
sch_deployment_vpn (sch_ctx_t *ctx, const json_t *request, json_t *loaded)
{
    const char *name = dx_msg_str (request, "name");
    const char *accessip = json_string_value (json_object_get (s_deploy_record (loaded),
                                                               "accessip"));
    const json_t *resource = json_object_get (json_object_get (loaded, "resources"),
                                              "vpn.profile");
    const char *sealed = json_string_value (json_object_get (resource, "profile"));
    if (!sealed && (!accessip || !*accessip))
        return dx_reply_error (request, DX_NOT_FOUND, NULL,
                               "no access node has been deployed for cluster %s yet; "
                               "deploy first", name);
    if (!sealed)
        return dx_reply_error (request, DX_NOT_FOUND, NULL,
                               "the VPN profile of cluster %s is not made yet: the "
                               "deployment's vpn.profile step has not run", name);
    size_t len = 0;
    char *profile = dx_seal_open (ctx->seal, sealed, &len);
    if (!profile) {
        dx_error ("cluster %s: its VPN profile cannot be opened with the master key", name);
        return dx_reply_error (request, DX_INTERNAL, NULL,
                               "the VPN profile of cluster %s cannot be opened: it was sealed "
                               "with another master key; deploy again to make it anew", name);
    }
    json_t *text = json_stringn (profile, len);
    dx_seal_free (profile, len);
    return dx_reply_new (request, DX_OK, text);
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
    if (count < 1 || count > DX_MSG_PAGE_MAX)
        return dx_reply_error (request, DX_INVALID, "count",
                               "count must be an integer from 1 to %d", DX_MSG_PAGE_MAX);
    json_t *reply = sch_queue_cluster (ctx, request, 0, ticket);
    if (!reply && sch_read_queue_events (ctx->read, name, after, count) != *ticket + 1)
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
    json_t *events = sch_read_events_result (ctx->read, ticket + 1);
    if (!events)
        return sch_store_error_reply (ctx->store, request);
    return dx_reply_new (request, DX_OK, json_pack ("{s:o}", "events", events));
}
