/*  sch_results: what ends a job and what workers say. A deployment ends
    once nothing runs and all is done or a job failed for good; a job
    that lost its worker or its lease runs again. The broker's callbacks
    take results (late ones too), renewals, progress, announcements and
    departures; those that come before Redis was read are held and judged
    once it is. See sch_engine_private.h and proto/PROTOCOL.md
    ("Transport: scheduler ⇄ workers"). */
#include "sch_engine_private.h"
#include "sch_metrics.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  What a worker said before the engine had read Redis: results,
    announcements and departures are judged once it has, in order. */
typedef struct {
    char *worker, *name;                /* name may be NULL */
    json_t *msg;                        /* job.result or worker.ready; NULL: gone */
} s_held_t;

#define S_HELD_MAX 10000                /* beyond, a result is left to its lease */


//  ---------------------------------------------------------------------
//  Ends and requeues

/*  Ends the deployment when nothing runs and either everything is done or
    a job failed for good. Returns 1 if it ended (d is freed). */
int
sch_engine_maybe_finish (sch_engine_t *self, sch_deploy_t *d)
{
    if (d->running > 0 || d->plan || (!d->failing && d->done < d->njobs))
        return 0;
    const char *state = d->failing? (d->destroy? "destroy_failed": "deploy_failed")
                                  : (d->destroy? "destroyed": "deployed");
    char now [32];
    dx_time_iso (dx_now_ms (), now, sizeof now);
    json_t *fields = json_pack ("{s:s, s:s, s:s}", "state", state, "waiting", "",
                                "finished_at", now);
    json_t *event = json_pack ("{s:s, s:I}", "state", state,
                               "generation", (json_int_t) d->generation);
    if (d->failing) {
        char *text = d->last_error? json_dumps (d->last_error, JSON_COMPACT): NULL;
        json_object_set_new (fields, "last_error", text? json_string (text): json_null ());
        free (text);
        json_object_set (event, "code", json_object_get (d->last_error, "code"));
        json_object_set (event, "message", json_object_get (d->last_error, "message"));
    }
    else {
        json_object_set_new (fields, "observed_generation", json_integer (d->generation));
        json_object_set_new (fields, "last_error", json_null ());
    }
    //  Everything once more, and what derives from it derived again (the
    //  access IP from eip.access, progress from the jobs), so that no
    //  write lost on the way can leave the record short of what is known
    int dropped = !d->failing && d->destroy;
    const json_t *eip = dropped? NULL: json_object_get (d->resources, "eip.access");
    const char *accessip = json_string_value (json_object_get (eip, "public_ip"));
    json_object_set_new (fields, "accessip", json_string (accessip? accessip: ""));
    if (dropped) {                      /* no PKI, so no CRL to deliver */
        json_object_set_new (fields, "vpn_crl", json_string (""));
        json_object_set_new (fields, "vpn_crl_delivered", json_string (""));
    }
    json_t *jobs = json_object ();
    size_t done = 0;
    for (size_t i = 0; i < d->njobs; i++) {
        json_object_set (jobs, d->jobs [i].id, sch_job_record (&d->jobs [i]));
        done += d->jobs [i].status == SCH_JOB_DONE;
    }
    json_object_set_new (fields, "steps_done", json_integer ((json_int_t) done));
    json_object_set_new (fields, "steps_total", json_integer ((json_int_t) d->njobs));
    json_object_set_new (fields, "current", json_string (""));
    sch_store_change_t change = {
        .deployment = fields, .jobs = jobs,
        .resources_set = d->resources,
        .drop_credentials = 1,
        .drop_resources = dropped,
        .event_type = "deployment.finished", .event = event
    };
    //  Kept in memory when Redis refuses it: the next tick tries again;
    //  forgotten, Redis would say deploying for good and refuse every PUT
    char what [64];
    snprintf (what, sizeof what, "its end (%s), trying again in a second", state);
    int refused = sch_engine_record (self, d->name, &change, what, NULL) < 0;
    json_decref (jobs);
    json_decref (fields);
    json_decref (event);
    if (refused)
        return 0;
    sch_metrics_deployment_finished (d->provider, state);
    dx_info ("deployment %s generation %" PRId64 " %s: %zu of %zu steps done", d->name,
             d->generation, state, d->done, d->njobs);
    zhashx_delete (self->deploys, d->name);
    return 1;
}

/*  The job failed for good: the deployment starts nothing more. */
void
sch_engine_fail (sch_deploy_t *d, sch_job_t *job, const char *code, const char *message)
{
    job->status = SCH_JOB_FAILED;
    if (!d->failing) {
        d->failing = 1;
        json_decref (d->last_error);
        d->last_error = json_pack ("{s:s, s:s, s:s}", "step", job->id,
                                   "code", code? code: "Unknown",
                                   "message", message? message: "");
    }
}

/*  Takes a running job back to the queue with attempt + 1, telling its
    worker (if alive) to stop. Returns 1 if the deployment ended. */
int
sch_engine_requeue (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job, const char *reason,
                    int tell_worker)
{
    if (job->worker && tell_worker)
        sch_engine_cancel (self, d, job);
    d->running--;
    job->attempt++;
    job->requeues++;
    job->reserved = 0;
    sch_job_set_worker (job, NULL, NULL);
    dx_warn ("deployment %s: step %s runs again as attempt %" PRId64 ": %s", d->name, job->id,
             job->attempt, reason);
    if (job->requeues > SCH_ENGINE_MAX_REQUEUES)
        sch_engine_fail (d, job, "Requeued", "the step lost its worker or its lease too often");
    else
        job->status = SCH_JOB_PENDING;
    json_t *event = json_pack ("{s:s, s:I, s:s}", "step", job->id,
                               "attempt", (json_int_t) job->attempt, "reason", reason);
    sch_engine_write (self, d, job, NULL, NULL, NULL, "step.requeued", event, NULL);
    return sch_engine_maybe_finish (self, d);
}

/*  A running job's lease ran out: counted, and requeued. */
int
sch_engine_lease_expired (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job)
{
    sch_metrics_lease_expired (d->provider);
    return sch_engine_requeue (self, d, job, "its lease expired", 1);
}


//  ---------------------------------------------------------------------
//  What workers say

/*  Splits a job id NAME:GENERATION:STEP. 0, or -1 if malformed. */
static int
s_job_id_parse (const char *job_id, char *name, size_t name_size, int64_t *generation,
                const char **step)
{
    const char *colon = job_id? strchr (job_id, ':'): NULL;
    if (!colon || (size_t) (colon - job_id) >= name_size)
        return -1;
    snprintf (name, name_size, "%.*s", (int) (colon - job_id), job_id);
    char *end;
    long long gen = strtoll (colon + 1, &end, 10);
    if (end == colon + 1 || *end != ':')
        return -1;
    *generation = gen;
    *step = end + 1;
    return 0;
}

/*  The deployment and running job a message is about, or NULL (stale). */
static sch_job_t *
s_engine_find (sch_engine_t *self, const json_t *msg, sch_deploy_t **d_p)
{
    char name [32];
    int64_t generation;
    const char *step;
    if (s_job_id_parse (dx_msg_str (msg, "job"), name, sizeof name, &generation, &step))
        return NULL;
    sch_deploy_t *d = (sch_deploy_t *) zhashx_lookup (self->deploys, name);
    if (!d || d->generation != generation)
        return NULL;
    sch_job_t *job = sch_deploy_job (d, step);
    if (!job || job->status != SCH_JOB_RUNNING || job->attempt != dx_msg_int (msg, "attempt", -1))
        return NULL;
    *d_p = d;
    return job;
}

/*  Records the resources of a result: kept, or forgotten when gone. */
static void
s_engine_resources (sch_deploy_t *d, const json_t *resources, json_t *set, json_t *del,
                    json_t *fields)
{
    size_t i;
    json_t *resource;
    json_array_foreach (resources, i, resource) {
        const char *key = json_string_value (json_object_get (resource, "key"));
        if (!key || !*key)
            continue;
        const char *state = json_string_value (json_object_get (resource, "state"));
        if (state && (strcmp (state, "terminated") == 0 || strcmp (state, "deleted") == 0)) {
            json_object_del (d->resources, key);
            json_array_append_new (del, json_string (key));
            continue;
        }
        json_object_set (d->resources, key, resource);
        json_object_set (set, key, resource);
        const char *ip = json_string_value (json_object_get (resource, "public_ip"));
        if (strcmp (key, "eip.access") == 0 && ip && *ip)
            json_object_set_new (fields, "accessip", json_string (ip));
    }
}

/*  The delay before a job's next try after n tries. */
static int64_t
s_backoff_ms (int n)
{
    int64_t delay = SCH_BACKOFF_MS;
    for (int i = 1; i < n && delay < SCH_BACKOFF_MAX; i++)
        delay *= 2;
    return delay < SCH_BACKOFF_MAX? delay: SCH_BACKOFF_MAX;
}

/*  A host step done on a host that existed already with another instance
    type than the spec's: existing hosts are not rebuilt, so say so. The
    warning (caller frees), or NULL. A batch step (kind hosts) names the
    first such host of its own. */
static char *
s_host_drift (const sch_job_t *job, const json_t *resources)
{
    const json_t *step = json_object_get (job->record, "step");
    const char *wanted = json_string_value (json_object_get (step, "instance_type"));
    const char *kind = json_string_value (json_object_get (step, "kind"));
    int batch = kind && strcmp (kind, "hosts") == 0;
    if (!wanted || !kind || (strcmp (kind, "host") && !batch))
        return NULL;
    const char *group = json_string_value (json_object_get (step, "group"));
    char prefix [64];
    snprintf (prefix, sizeof prefix, "host.%s.", group? group: "");
    size_t i;
    json_t *resource;
    json_array_foreach (resources, i, resource) {
        const char *key = json_string_value (json_object_get (resource, "key"));
        const char *actual = json_string_value (json_object_get (resource, "instance_type"));
        int own = key && (batch? strncmp (key, prefix, strlen (prefix)) == 0
                               : strcmp (key, job->id) == 0);
        if (own && actual && *actual && strcmp (actual, wanted)) {
            const char *hostname = json_string_value (json_object_get (
                                   batch? resource: step, "hostname"));
            char *text = NULL;
            if (asprintf (&text, "host %s runs %s, the spec now says %s: a deploy does not "
                          "rebuild existing hosts; the change applies to hosts added from now "
                          "on (scale the group down and up again to replace them)",
                          hostname? hostname: key, actual, wanted) < 0)
                return NULL;
            return text;
        }
    }
    return NULL;
}

/*  The host.done events of a batch step done (kind hosts): one per host
    its result recorded, naming the host's own step id (caller owns), or
    NULL for any other step. */
static json_t *
s_batch_hosts (const sch_job_t *job, const json_t *resources)
{
    const char *kind = json_string_value (json_object_get (job->record, "kind"));
    if (!kind || strcmp (kind, "hosts"))
        return NULL;
    json_t *hosts = json_array ();
    size_t i;
    json_t *resource;
    json_array_foreach (resources, i, resource) {
        const char *key = json_string_value (json_object_get (resource, "key"));
        const char *state = json_string_value (json_object_get (resource, "state"));
        if (!key || strncmp (key, "host.", 5)
        ||  (state && (strcmp (state, "terminated") == 0 || strcmp (state, "deleted") == 0)))
            continue;
        const char *instance = json_string_value (json_object_get (resource, "provider_id"));
        const char *ip = json_string_value (json_object_get (resource, "private_ip"));
        const char *hostname = json_string_value (json_object_get (resource, "hostname"));
        json_array_append_new (hosts, json_pack ("{s:s, s:s, s:I, s:s, s:s, s:s}",
                               "step", key, "batch", job->id,
                               "attempt", (json_int_t) job->attempt,
                               "instance", instance? instance: "",
                               "private_ip", ip? ip: "",
                               "hostname", hostname? hostname: ""));
    }
    return hosts;
}

/*  The result of a job's current attempt: done, failed for good, or
    tried again after a backoff; written in one transition with its
    resources and events, and the deployment ends if it is over. */
static void
s_engine_result (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job, const char *worker,
                 const char *worker_name, const json_t *msg)
{
    const char *outcome = dx_msg_str (msg, "outcome");
    const json_t *error = json_object_get (msg, "error");
    const char *code = json_string_value (json_object_get (error, "code"));
    const char *message = json_string_value (json_object_get (error, "message"));
    int permanent = json_is_true (json_object_get (error, "permanent"));
    sch_broker_release (self->broker, job->worker? job->worker: worker);
    //  A result from a connection the broker does not know yet (queued
    //  before our restart) has no name: the attempt is the recorded worker's
    if (worker_name)
        sch_job_set_worker (job, worker, worker_name);
    d->running--;

    json_t *fields = json_object ();
    json_t *set = json_object (), *del = json_array ();
    const char *held = strcmp (job->id, "host.access")? NULL
                     : sch_deploy_attr (d, "host.access", "provider_id");
    char *was = strcmp (job->id, "host.access")? NULL: strdup (held? held: "");
    s_engine_resources (d, json_object_get (msg, "resources"), set, del, fields);
    const char *type;
    json_t *hosts = NULL;
    json_t *event = json_pack ("{s:s, s:I, s:s}", "step", job->id,
                               "attempt", (json_int_t) job->attempt,
                               "worker", job->worker_name? job->worker_name: "");
    if (strcmp (outcome, "done") == 0) {
        job->status = SCH_JOB_DONE;
        d->done++;
        type = "step.done";
        //  An access node launched anew has its bundle's CRL (docs/vpn.md, "Users")
        const char *now = was? sch_deploy_attr (d, "host.access", "provider_id"): NULL;
        if (now && *now && strcmp (now, was)) {
            const char *crl = sch_deploy_attr (d, "vpn.pki", "crl_number");
            json_object_set_new (fields, "vpn_crl_delivered", json_string (crl && *crl? crl: "1"));
        }
        //  The CRL the access node's tags now hold (docs/vpn.md, "Users")
        const char *tagged = strcmp (job->id, SCH_PLAN_ACCESS_CRL)? NULL
                           : sch_deploy_attr (d, "access.crl", "crl_number");
        if (tagged && *tagged)
            json_object_set_new (fields, "vpn_crl_delivered", json_string (tagged));
        hosts = s_batch_hosts (job, json_object_get (msg, "resources"));
        char *warning = s_host_drift (job, json_object_get (msg, "resources"));
        if (warning) {
            dx_warn ("deployment %s: %s", d->name, warning);
            json_object_set_new (event, "warning", json_string (warning));
            free (warning);
        }
    }
    else
    if (strcmp (outcome, "failed") == 0 && permanent) {
        sch_engine_fail (d, job, code, message);
        type = "step.failed";
    }
    else {
        int failed = strcmp (outcome, "failed") == 0;
        int tries = failed? ++job->failures: ++job->retries;
        if (tries >= (failed? SCH_ENGINE_MAX_FAILURES: SCH_ENGINE_MAX_RETRIES)) {
            sch_engine_fail (d, job, code, message);
            type = "step.failed";
        }
        else {
            job->status = SCH_JOB_PENDING;
            job->attempt++;
            job->not_before = dx_mono_ms () + s_backoff_ms (tries);
            type = "step.retry";
            json_object_set_new (event, "next_attempt", json_integer (job->attempt));
        }
    }
    if (code)
        json_object_set_new (event, "code", json_string (code));
    if (message)
        json_object_set_new (event, "message", json_string (message));
    if (strcmp (type, "step.failed") == 0)
        json_object_set_new (event, "permanent", json_string (permanent? "true": "false"));
    json_object_set_new (job->record, "error", error? json_deep_copy (error): json_null ());
    dx_info ("deployment %s: step %s attempt %lld %s%s%s%s%s", d->name, job->id,
             (long long) dx_msg_int (msg, "attempt", 0), outcome, code? " code=": "", code? code: "",
             message? ": ": "", message? message: "");
    sch_engine_write_hosts (self, d, job, fields, set, del, hosts, type, event, NULL);
    json_decref (hosts);
    json_decref (set);
    json_decref (del);
    free (was);
    sch_engine_maybe_finish (self, d);
}

/*  A result of an attempt that no longer counts (its lease ran out, its
    worker left, or the deployment ended since) still says what it made:
    a resource that no record knows of is recorded, so that a destroy or a
    shrink finds it (PROTOCOL.md: a half-done step is still recorded).
    Records that exist are left as they are (a later attempt knows
    better), and only a deploy of the same generation adopts: a destroy's
    leftovers are gone by definition, another generation's plan differs. */
static void
s_engine_late_result (sch_engine_t *self, const json_t *msg)
{
    char name [32];
    int64_t generation;
    const char *step;
    const json_t *resources = json_object_get (msg, "resources");
    if (!json_array_size (resources)
    ||  s_job_id_parse (dx_msg_str (msg, "job"), name, sizeof name, &generation, &step))
        return;
    //  An attempt of a deleted cluster's job: not the new cluster's
    if (sch_tomb_attempt (self, dx_msg_str (msg, "job")) >= dx_msg_int (msg, "attempt", 0))
        return;
    sch_deploy_t *d = (sch_deploy_t *) zhashx_lookup (self->deploys, name);
    json_t *loaded = NULL;
    const json_t *known;
    if (d) {
        if (d->generation != generation || d->destroy)
            return;
        known = d->resources;
    }
    else {
        loaded = sch_read_load (self->read, name, SCH_LOAD_CLUSTER | SCH_LOAD_DEPLOYMENT
                                | SCH_LOAD_RESOURCES);
        const json_t *record = json_object_get (loaded, "deployment");
        const char *command = json_string_value (json_object_get (record, "command"));
        if (!json_is_object (json_object_get (loaded, "cluster"))
        ||  json_integer_value (json_object_get (record, "generation")) != generation
        ||  !command || strcmp (command, "deploy")) {
            json_decref (loaded);
            return;
        }
        known = json_object_get (loaded, "resources");
    }
    json_t *set = json_object ();
    char keys [512] = "";               /* comma-separated, for the event */
    size_t i;
    json_t *resource;
    json_array_foreach (resources, i, resource) {
        const char *key = json_string_value (json_object_get (resource, "key"));
        const char *state = json_string_value (json_object_get (resource, "state"));
        if (!key || !*key || json_object_get (known, key)
        ||  (state && (!strcmp (state, "terminated") || !strcmp (state, "deleted"))))
            continue;
        json_object_set (set, key, resource);
        size_t len = strlen (keys);
        snprintf (keys + len, sizeof keys - len, "%s%s", len? ",": "", key);
        if (d)
            json_object_set (d->resources, key, resource);
    }
    if (json_object_size (set)) {
        dx_warn ("deployment %s: a late result of step %s attempt %lld recorded %s",
                 name, step, (long long) dx_msg_int (msg, "attempt", 0), keys);
        json_t *fields = json_object ();
        json_t *event = json_pack ("{s:s, s:I, s:s}", "step", step,
                                   "attempt", (json_int_t) dx_msg_int (msg, "attempt", 0),
                                   "resources", keys);
        sch_store_change_t change = {
            .deployment = fields, .resources_set = set,
            .event_type = "step.late", .event = event
        };
        sch_engine_record (self, name, &change, "a late result", NULL);
        json_decref (fields);
        json_decref (event);
    }
    json_decref (set);
    json_decref (loaded);
}

/*  Frees a held message (zlistx destructor). */
void
sch_held_destroy (void **item_p)
{
    s_held_t *held = (s_held_t *) *item_p;
    if (held) {
        free (held->worker);
        free (held->name);
        json_decref (held->msg);
        free (held);
        *item_p = NULL;
    }
}

/*  Before the engine has read Redis it knows no job, and judging what
    workers say by that would be guessing: results, announcements and
    departures (msg NULL) are held, in order, for sch_engine_replay. */
static void
s_engine_hold (sch_engine_t *self, const char *worker, const char *name, const json_t *msg)
{
    if (zlistx_size (self->held) == 0)
        dx_info ("engine: redis not read yet: what workers say waits until it is");
    s_held_t *held = zlistx_size (self->held) < S_HELD_MAX? calloc (1, sizeof *held): NULL;
    if (held) {
        held->worker = strdup (worker);
        held->name = name? strdup (name): NULL;
        held->msg = msg? json_deep_copy (msg): NULL;
        zlistx_add_end (self->held, held);
    }
    else
        dx_warn ("engine: redis not read yet and too much held: a %s from worker %s is "
                 "left to its lease", msg? dx_msg_type (msg): "departure", name? name: worker);
}

/*  Redis was read: what workers said meanwhile is judged now, in order. */
void
sch_engine_replay (sch_engine_t *self)
{
    if (zlistx_size (self->held))
        dx_info ("engine: judging the %zu messages workers sent before redis was read",
                 zlistx_size (self->held));
    s_held_t *held;
    while ((held = (s_held_t *) zlistx_first (self->held))) {
        if (!held->msg)
            sch_engine_on_gone (self, held->worker, held->name);
        else
        if (strcmp (dx_msg_type (held->msg), "worker.ready") == 0)
            sch_engine_on_ready (self, held->worker, held->name, held->msg);
        else
            sch_engine_on_job (self, held->worker, held->name, held->msg);
        zlistx_delete (self->held, zlistx_cursor (self->held));
    }
}

/*  job.progress of the current attempt of a job: event step.progress.
    Progress of another attempt, or before Redis was read, says nothing
    worth keeping. */
static void
s_engine_progress (sch_engine_t *self, const char *name, const json_t *msg)
{
    sch_deploy_t *d = NULL;
    sch_job_t *job = self->recovered? s_engine_find (self, msg, &d): NULL;
    if (!job || job->status != SCH_JOB_RUNNING)
        return;
    json_t *event = json_pack ("{s:s, s:I, s:s, s:s}", "step", job->id,
                               "attempt", (json_int_t) dx_msg_int (msg, "attempt", 0),
                               "worker", name? name: "",
                               "message", dx_msg_str (msg, "message"));
    sch_store_change_t change = { .event_type = "step.progress", .event = event };
    sch_engine_record (self, d->name, &change, "a step's progress", NULL);
    json_decref (event);
}

/*  The broker's job callback: job.result, job.renew or job.progress. A
    renewal that comes before Redis was read is not judged: its job is not
    known yet, and the next one comes soon. */
void
sch_engine_on_job (void *arg, const char *worker, const char *name, const json_t *msg)
{
    sch_engine_t *self = (sch_engine_t *) arg;
    if (self->side.job && self->side.job (self->side_arg, worker, name, msg))
        return;
    if (strcmp (dx_msg_type (msg), "job.progress") == 0) {
        s_engine_progress (self, name, msg);
        return;
    }
    int renew = strcmp (dx_msg_type (msg), "job.renew") == 0;
    if (!self->recovered) {
        if (!renew)
            s_engine_hold (self, worker, name, msg);
        return;
    }
    sch_deploy_t *d = NULL;
    sch_job_t *job = s_engine_find (self, msg, &d);
    if (!job) {
        dx_debug ("engine: stale %s of job %s attempt %lld from worker %s", dx_msg_type (msg),
                  dx_msg_str (msg, "job"), (long long) dx_msg_int (msg, "attempt", 0), name);
        if (renew) {
            //  That attempt runs for nothing: stop it
            sch_engine_send_cancel (self, worker, dx_msg_str (msg, "job"),
                                    dx_msg_int (msg, "attempt", 0));
        }
        else
            s_engine_late_result (self, msg);
        return;
    }
    if (renew) {
        job->lease_expiry = dx_mono_ms () + self->lease_ms;
        if (!job->worker || strcmp (job->worker, worker)) {
            //  A restarted scheduler learns who runs it
            if (job->worker)
                sch_broker_release (self->broker, job->worker);
            sch_job_set_worker (job, worker, name);
            sch_broker_adopt (self->broker, worker);
        }
        return;
    }
    s_engine_result (self, d, job, worker, name, msg);
}

/*  worker.ready: jobs it says it runs whose worker we do not know (after a
    restart, or it came back under a new identity) are its. */
void
sch_engine_on_ready (void *arg, const char *worker, const char *name, const json_t *msg)
{
    sch_engine_t *self = (sch_engine_t *) arg;
    if (!self->recovered) {
        s_engine_hold (self, worker, name, msg);
        return;
    }
    size_t i;
    json_t *active;
    json_array_foreach (json_object_get (msg, "active"), i, active) {
        char dname [32];
        int64_t generation;
        const char *step;
        if (s_job_id_parse (json_string_value (active), dname, sizeof dname, &generation, &step))
            continue;
        sch_deploy_t *d = (sch_deploy_t *) zhashx_lookup (self->deploys, dname);
        sch_job_t *job = d && d->generation == generation? sch_deploy_job (d, step): NULL;
        if (!job || job->status != SCH_JOB_RUNNING)
            continue;
        if (job->worker && sch_broker_name (self->broker, job->worker))
            continue;                   /* held by a live worker: not this one's */
        sch_job_set_worker (job, worker, name);
        sch_broker_adopt (self->broker, worker);
        job->lease_expiry = dx_mono_ms () + self->lease_ms;
        dx_info ("deployment %s: step %s is run by worker %s", dname, job->id, name);
    }
}

/*  The worker is gone: its jobs go back to the queue. */
void
sch_engine_on_gone (void *arg, const char *worker, const char *name)
{
    sch_engine_t *self = (sch_engine_t *) arg;
    if (self->side.gone)
        self->side.gone (self->side_arg, worker, name);
    if (!self->recovered) {
        s_engine_hold (self, worker, name, NULL);
        return;
    }
    zlistx_t *names = zhashx_keys (self->deploys);
    for (char *dname = names? (char *) zlistx_first (names): NULL; dname;
         dname = (char *) zlistx_next (names)) {
        sch_deploy_t *d = (sch_deploy_t *) zhashx_lookup (self->deploys, dname);
        for (size_t i = 0; d && i < d->njobs; i++) {
            sch_job_t *job = &d->jobs [i];
            if (job->status == SCH_JOB_RUNNING && job->worker && strcmp (job->worker, worker) == 0) {
                char reason [160];
                snprintf (reason, sizeof reason, "worker %s is gone", name? name: worker);
                if (sch_engine_requeue (self, d, job, reason, 0))
                    d = NULL;           /* it ended */
            }
        }
    }
    zlistx_destroy (&names);
}
