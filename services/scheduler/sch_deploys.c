/*  sch_deploys: the deployments in progress as the engine holds them in
    memory: loading one from Redis (its jobs in plan order, its plan made
    again where it stopped), making its plan a slice at a time, the job
    records and the writes of a transition, the pacing bucket of its
    account and region, and the tombs and remains of those forgotten
    while they ran. Not the deployment handlers (sch_deployment.c). See
    sch_engine_private.h and docs/redis.md (jobs, resources, events). */
#include "sch_engine_private.h"
#include "sch_metrics.h"
#include "dx_log.h"
#include "dx_netplan.h"
#include "dx_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PLAN_SLICE    64              /* jobs made and recorded per write */

/*  Steps that each start one machine are paced per account and region, so
    that however many workers run them, the provider's published rate of
    instance launches holds (dx_netplan.h; each worker holds the same
    bucket for its own calls). A `hosts` step, which launches a batch, is
    not paced here: its worker takes a request and an instance per host
    from the buckets it shares with the other workers of the account. */
static const struct {
    const char *provider;
    const char *kind;
    const char *identity;               /* the credential naming the account */
    const char *region;                 /* the config field naming the region */
    double burst, rate;
} s_pacing [] = {
    { "aws", "host", "aws_access_key_id", "region", DX_AWS_LAUNCH_BURST, DX_AWS_LAUNCH_RATE },
};
#define S_PACING (sizeof s_pacing / sizeof s_pacing [0])

/*  The names of the statuses in job records, by sch_job_status_t. */
static const char *s_status_names [] = { "pending", "running", "done", "failed" };


/*  Frees what a job holds; the job itself is a slot of its deployment's array. */
static void
s_job_free (sch_job_t *job)
{
    json_decref (job->record);
    free (job->worker);
    free (job->worker_name);
}

/*  Destroys a deployment and its jobs (zhashx destructor); safe on NULL. */
void
sch_deploy_destroy (void **item_p)
{
    sch_deploy_t *d = (sch_deploy_t *) *item_p;
    if (!d)
        return;
    for (size_t i = 0; i < d->njobs; i++)
        s_job_free (&d->jobs [i]);
    free (d->jobs);
    sch_plan_destroy (&d->plan);
    json_decref (d->resources);
    json_decref (d->last_error);
    free (d->credentials);
    json_decref (d->secrets);
    free (d->masters_ips);
    free (d->pace_key);
    free (d);
    *item_p = NULL;
}

/*  The job of step id, or NULL. */
sch_job_t *
sch_deploy_job (sch_deploy_t *d, const char *id)
{
    for (size_t i = 0; i < d->njobs; i++)
        if (strcmp (d->jobs [i].id, id) == 0)
            return &d->jobs [i];
    return NULL;
}

/*  Sets the job's worker: broker key and name, copied; NULL clears. */
void
sch_job_set_worker (sch_job_t *job, const char *worker, const char *name)
{
    free (job->worker);
    free (job->worker_name);
    job->worker = worker? strdup (worker): NULL;
    job->worker_name = name? strdup (name): NULL;
}

/*  The job's record brought up to date with its in-memory state. */
json_t *
sch_job_record (sch_job_t *job)
{
    json_object_set_new (job->record, "status", json_string (s_status_names [job->status]));
    json_object_set_new (job->record, "attempt", json_integer (job->attempt));
    json_object_set_new (job->record, "failures", json_integer (job->failures));
    json_object_set_new (job->record, "retries", json_integer (job->retries));
    json_object_set_new (job->record, "requeues", json_integer (job->requeues));
    json_object_set_new (job->record, "worker",
                         job->worker_name? json_string (job->worker_name): json_null ());
    return job->record;
}

/*  `current`: the steps running now, the first few in plan order. */
static json_t *
s_deploy_current (sch_deploy_t *d)
{
    char text [256] = "";
    size_t shown = 0, more = 0;
    for (size_t i = 0; i < d->njobs; i++) {
        if (d->jobs [i].status != SCH_JOB_RUNNING)
            continue;
        size_t len = strlen (text);
        if (shown < 4 && len + strlen (d->jobs [i].id) + 3 < sizeof text) {
            snprintf (text + len, sizeof text - len, "%s%s", shown? ", ": "", d->jobs [i].id);
            shown++;
        }
        else
            more++;
    }
    if (more) {
        size_t len = strlen (text);
        snprintf (text + len, sizeof text - len, " and %zu more", more);
    }
    return json_string (text);
}

/*  Records change of cluster name in one transaction, at the time it is
    made, or keeps it for Redis (sch_store_deployment_change: 0, 1 kept,
    numbered *serial, -1 refused). A refusal is logged, saying what was
    not recorded. */
int
sch_engine_record (sch_engine_t *self, const char *name, const sch_store_change_t *change,
                   const char *what, uint64_t *serial)
{
    char now [32];
    int rc = sch_store_deployment_change (self->store, name, change,
                                          dx_time_iso (dx_now_ms (), now, sizeof now), serial);
    if (rc < 0)
        dx_error ("deployment %s: cannot record %s: %s", name, what,
                  sch_store_error (self->store));
    else
    if (rc > 0)
        dx_debug ("deployment %s: %s kept until redis takes it", name, what);
    return rc;
}

/*  Writes one transition: the job's record (job may be NULL), progress,
    extra deployment fields (fields, taken, may be NULL), resources, the
    host.done events of a batch step (hosts, may be NULL) and the event
    (taken, may be NULL), in one transaction; what Redis cannot take now
    is kept for it (sch_engine_record's answer and *serial, serial may be
    NULL). */
int
sch_engine_write_hosts (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job, json_t *fields,
                        json_t *resources_set, json_t *resources_del, const json_t *hosts,
                        const char *event_type, json_t *event, uint64_t *serial)
{
    json_t *jobs = json_object ();
    if (job)
        json_object_set (jobs, job->id, sch_job_record (job));
    if (!fields)
        fields = json_object ();
    json_object_set_new (fields, "steps_done", json_integer ((json_int_t) d->done));
    json_object_set_new (fields, "steps_total", json_integer ((json_int_t) d->njobs));
    json_object_set_new (fields, "current", s_deploy_current (d));
    sch_store_change_t change = {
        .deployment = fields, .jobs = jobs,
        .resources_set = resources_set, .resources_del = resources_del,
        .event_type = event_type, .event = event,
        .events_type = hosts? "host.done": NULL, .events = hosts
    };
    int rc = sch_engine_record (self, d->name, &change, event_type? event_type: "progress",
                                serial);
    if (job)
        sch_metrics_step (d->provider, json_string_value (json_object_get (job->record, "kind")),
                          event_type);
    json_decref (jobs);
    json_decref (fields);
    json_decref (event);
    return rc;
}

/*  A sch_engine_write_hosts with no host.done events. */
int
sch_engine_write (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job, json_t *fields,
                  json_t *resources_set, json_t *resources_del, const char *event_type,
                  json_t *event, uint64_t *serial)
{
    return sch_engine_write_hosts (self, d, job, fields, resources_set, resources_del, NULL,
                                   event_type, event, serial);
}

/*  The pacing bucket of the deployment's account and region, if its
    provider has one. The key holds the account's id (not a secret) and
    lives in memory only. */
static void
s_deploy_pacing (sch_engine_t *self, sch_deploy_t *d, const json_t *config)
{
    size_t len = 0;
    for (size_t i = 0; i < S_PACING; i++) {
        if (strcmp (s_pacing [i].provider, d->provider) || !d->credentials)
            continue;
        char *plain = dx_seal_open (self->seal, d->credentials, &len);
        json_t *credentials = plain? json_loadb (plain, len, 0, NULL): NULL;
        if (plain)
            dx_seal_free (plain, len);
        const char *account = json_string_value (json_object_get (credentials,
                                                                  s_pacing [i].identity));
        const char *region = json_string_value (json_object_get (config, s_pacing [i].region));
        if (account && region) {
            d->pace_key = (char *) malloc (strlen (account) + strlen (region) + 64);
            if (d->pace_key)
                sprintf (d->pace_key, "%s|%s|%s|%s", s_pacing [i].provider, account, region,
                         s_pacing [i].kind);
            d->pace_kind = s_pacing [i].kind;
            d->pace_burst = s_pacing [i].burst;
            d->pace_rate = s_pacing [i].rate;
        }
        json_decref (credentials);
    }
}

/*  Job from its stored record (taken), in the state the record says;
    counted into d. A running job keeps running: its worker tells us it
    still runs it (renewal, worker.ready), or the lease runs out and it
    runs again. */
static void
s_job_init (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job, const char *id, json_t *record)
{
    snprintf (job->id, sizeof job->id, "%s", id);
    job->record = record;
    const char *status = json_string_value (json_object_get (record, "status"));
    job->status = SCH_JOB_PENDING;
    for (int s = 0; status && s < 4; s++)
        if (strcmp (status, s_status_names [s]) == 0)
            job->status = (sch_job_status_t) s;
    job->attempt = json_integer_value (json_object_get (record, "attempt"));
    if (job->attempt < 1)
        job->attempt = 1;
    job->failures = (int) json_integer_value (json_object_get (record, "failures"));
    job->retries = (int) json_integer_value (json_object_get (record, "retries"));
    job->requeues = (int) json_integer_value (json_object_get (record, "requeues"));
    if (job->status == SCH_JOB_RUNNING) {
        job->lease_expiry = dx_mono_ms () + self->lease_ms;
        const char *worker = json_string_value (json_object_get (record, "worker"));
        job->worker_name = worker? strdup (worker): NULL;
        d->running++;
    }
    if (job->status == SCH_JOB_DONE)
        d->done++;
    if (job->status == SCH_JOB_FAILED)
        d->failing = 1;
}

/*  The masters' addresses, as the plan gave them, for every host's
    context: known once the whole plan is. */
static void
s_deploy_masters (sch_deploy_t *d)
{
    d->masters_ips = (char *) calloc (1, d->njobs * 16 + 1);
    for (size_t i = 0; d->masters_ips && i < d->njobs; i++) {
        const json_t *step = json_object_get (d->jobs [i].record, "step");
        const char *ip = json_string_value (json_object_get (step, "private_ip"));
        const char *role = json_string_value (json_object_get (step, "role"));
        if (ip && role && strcmp (role, "master") == 0 && strlen (ip) < 16) {
            size_t len = strlen (d->masters_ips);
            sprintf (d->masters_ips + len, "%s%s", len? ",": "", ip);
        }
    }
}

/*  Builds the in-memory deployment from what sch_read_load read and the
    snapshot of its generation (may be NULL). A plan not all recorded yet
    (made a slice at a time, and the scheduler stopped meanwhile) goes on
    where it stopped: the same snapshot and resources make the same plan,
    and no step ran before it was whole. */
static sch_deploy_t *
s_deploy_new (sch_engine_t *self, const char *name, json_t *loaded, const json_t *snapshot)
{
    const json_t *record = json_object_get (loaded, "deployment");
    const json_t *jobs = json_object_get (loaded, "jobs");
    const char *state = json_string_value (json_object_get (record, "state"));
    const char *command = json_string_value (json_object_get (record, "command"));
    const char *provider = json_string_value (json_object_get (json_object_get (loaded, "cluster"),
                                                               "provider"));
    if (!state || !command || !provider || !json_is_object (jobs)
    ||  (strcmp (state, "deploying") && strcmp (state, "destroying")))
        return NULL;
    sch_deploy_t *d = (sch_deploy_t *) calloc (1, sizeof *d);
    if (!d)
        return NULL;
    snprintf (d->name, sizeof d->name, "%s", name);
    snprintf (d->provider, sizeof d->provider, "%s", provider);
    d->generation = json_integer_value (json_object_get (record, "generation"));
    d->destroy = strcmp (command, "destroy") == 0;
    d->parallelism = (int) json_integer_value (json_object_get (record, "parallelism"));
    if (d->parallelism < 1)
        d->parallelism = 5;
    d->resources = json_incref (json_object_get (loaded, "resources"));
    if (!d->resources)
        d->resources = json_object ();
    //  A read that fails leaves them unknown: they are read again when a
    //  job cannot be sent without them
    sch_read_credentials (self->read, name, &d->credentials);
    s_deploy_pacing (self, d, json_object_get (snapshot, "config"));
    d->secrets = json_deep_copy (json_object_get (snapshot, "secrets"));

    //  The jobs in plan order: each record says where it was in the plan
    d->njobs = json_object_size (jobs);
    json_int_t total = json_integer_value (json_object_get (record, "steps_total"));
    size_t room = total > 0 && (size_t) total > d->njobs? (size_t) total: d->njobs;
    d->jobs = (sch_job_t *) calloc (room? room: 1, sizeof *d->jobs);
    if (!d->jobs) {
        void *item = d;
        sch_deploy_destroy (&item);
        return NULL;
    }
    const char *id;
    json_t *job_record;
    json_object_foreach ((json_t *) jobs, id, job_record) {
        json_int_t at = json_integer_value (json_object_get (job_record, "order"));
        if (at < 0 || (size_t) at >= d->njobs || d->jobs [at].record) {
            dx_error ("deployment %s: job %s has no place in the plan; ignoring the plan",
                      name, id);
            void *item = d;
            sch_deploy_destroy (&item);
            return NULL;
        }
        s_job_init (self, d, &d->jobs [at], id, json_deep_copy (job_record));
    }
    if (room > d->njobs) {
        char err [256] = "no snapshot";
        d->plan = snapshot? sch_plan_new (snapshot, d->resources, err, sizeof err): NULL;
        if (!d->plan || sch_plan_size (d->plan) != room
        ||  sch_plan_next (d->plan, d->njobs, NULL) != d->njobs) {
            dx_error ("deployment %s: its plan cannot be made again (%s); ignoring it", name,
                      d->plan? "it is not the one begun": err);
            void *item = d;
            sch_deploy_destroy (&item);
            return NULL;
        }
    }
    else
        s_deploy_masters (d);
    const char *last_error = json_string_value (json_object_get (record, "last_error"));
    if (d->failing && last_error)
        d->last_error = json_loads (last_error, 0, NULL);
    return d;
}

/*  Loads cluster name's deployment if it is in progress, with the
    snapshot of its generation. */
int
sch_engine_load (sch_engine_t *self, const char *name)
{
    json_t *loaded = sch_read_load (self->read, name, SCH_LOAD_CLUSTER | SCH_LOAD_DEPLOYMENT
                                    | SCH_LOAD_JOBS | SCH_LOAD_RESOURCES);
    json_int_t generation = json_integer_value (json_object_get (json_object_get (loaded,
                                                "deployment"), "generation"));
    json_t *snapshot = NULL;
    if (!loaded || sch_read_snapshot (self->read, name, generation, &snapshot)) {
        json_decref (loaded);
        return -1;
    }
    sch_deploy_t *d = s_deploy_new (self, name, loaded, snapshot);
    json_decref (snapshot);
    json_decref (loaded);
    if (!d) {
        dx_debug ("deployment %s is not in progress, or its plan is unreadable", name);
        return 0;
    }
    zhashx_update (self->deploys, name, d);
    dx_info ("deployment %s generation %" PRId64 " %s: %zu of %zu steps done, %zu running%s",
             name, d->generation, d->destroy? "destroying": "deploying", d->done,
             d->plan? sch_plan_size (d->plan): d->njobs, d->running,
             d->plan? ", planning": "");
    return 0;
}

/*  Makes the next jobs of the deployment's plan and records them, a
    write of S_PLAN_SLICE at a time, until the plan is whole or `until`
    (dx_mono_ms) passed, so that a plan of thousands of steps never holds
    the loop. Meanwhile the record says how far it is (`current`), and no
    step runs: the steps' resources, from which the plan is made again
    after a restart, stay as they were. Returns 1 once the plan is whole. */
int
sch_engine_plan (sch_engine_t *self, sch_deploy_t *d, int64_t until)
{
    while (d->plan) {
        size_t total = sch_plan_size (d->plan);
        json_t *made = json_array ();
        json_t *jobs = json_object ();
        sch_plan_next (d->plan, S_PLAN_SLICE, made);
        size_t i;
        json_t *job;
        json_array_foreach (made, i, job) {
            const char *id = json_string_value (json_object_get (job, "id"));
            json_object_set_new (job, "order", json_integer ((json_int_t) d->njobs));
            json_object_set_new (job, "status", json_string ("pending"));
            json_object_set_new (job, "attempt", json_integer (1));
            json_object_set (jobs, id, job);
            s_job_init (self, d, &d->jobs [d->njobs++], id, json_incref (job));
        }
        if (d->njobs >= total || json_array_size (made) == 0) {
            sch_plan_destroy (&d->plan);
            s_deploy_masters (d);
        }
        char current [64] = "";
        if (d->plan)
            snprintf (current, sizeof current, "planning: %zu of %zu steps", d->njobs, total);
        json_t *fields = json_pack ("{s:I, s:s}", "steps_total", (json_int_t) total,
                                    "current", current);
        sch_store_change_t change = { .deployment = fields, .jobs = jobs };
        sch_engine_record (self, d->name, &change, "its plan", NULL);
        json_decref (fields);
        json_decref (jobs);
        json_decref (made);
        if (dx_mono_ms () >= until)
            break;
    }
    return d->plan == NULL;
}

/*  The attribute of a recorded resource, or NULL. */
const char *
sch_deploy_attr (const sch_deploy_t *d, const char *key, const char *attribute)
{
    return json_string_value (json_object_get (json_object_get (d->resources, key), attribute));
}

/*  Frees a tomb (zhashx destructor). */
void
sch_tomb_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

/*  The last attempt of the jobs of a forgotten deployment that job_id
    (NAME:GENERATION:STEP) was one of, while it is remembered, or 0. */
int64_t
sch_tomb_attempt (sch_engine_t *self, const char *job_id)
{
    const char *colon = job_id? strchr (job_id, ':'): NULL;
    const char *step = colon? strchr (colon + 1, ':'): NULL;
    char key [64];
    if (!step || step - job_id >= (ptrdiff_t) sizeof key)
        return 0;
    snprintf (key, sizeof key, "%.*s", (int) (step - job_id), job_id);
    sch_tomb_t *tomb = (sch_tomb_t *) zhashx_lookup (self->tombs, key);
    return tomb && tomb->expires > dx_mono_ms ()? tomb->attempt: 0;
}

/*  Frees what is left of a forgotten deployment (zlistx destructor). */
void
sch_remains_destroy (void **item_p)
{
    sch_remains_t *remains = (sch_remains_t *) *item_p;
    if (remains) {
        while (remains->freed < remains->njobs)
            s_job_free (&remains->jobs [remains->freed++]);
        free (remains->jobs);
        json_decref (remains->resources);
        free (remains);
        *item_p = NULL;
    }
}

/*  Frees what forgotten deployments held until `until` (dx_mono_ms).
    Returns 1 while some is left. */
int
sch_engine_bury (sch_engine_t *self, int64_t until)
{
    sch_remains_t *remains;
    while ((remains = (sch_remains_t *) zlistx_first (self->remains))) {
        while (remains->freed < remains->njobs) {
            s_job_free (&remains->jobs [remains->freed++]);
            if (remains->freed % S_PLAN_SLICE == 0 && dx_mono_ms () >= until)
                return 1;
        }
        zlistx_delete (self->remains, NULL);
    }
    return 0;
}
