/*  sch_engine: the deployments in progress, their jobs, leases and
    results. See sch_engine.h, proto/PROTOCOL.md ("Transport: scheduler ⇄
    workers", "Steps") and docs/redis.md (jobs, resources, events). */
#include "sch_engine.h"
#include "sch_plan.h"
#include "sch_metrics.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_netplan.h"
#include "dx_ratelimit.h"
#include "dx_util.h"
#include "dx_worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define S_IDLE_MS       1000            /* a tick at least this often */
#define S_SLICE_MS      5               /* work in slices (plans, frees) per tick, about */
#define S_PLAN_SLICE    64              /* jobs made and recorded per write */
#define S_BACKOFF_MS    1000            /* first retry delay; doubles, capped */
#define S_BACKOFF_MAX   30000

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

/*  The secrets of the config that a step's credentials carry, by the
    step's kind (proto/PROTOCOL.md, "Steps"): aws's key pair takes the
    private key, azure's hosts their admin password. */
static const struct {
    const char *kind;
    const char *secret;
} s_step_secrets [] = {
    { "keypair", "sshkeydata" },
    { "host", "ssh_password" },
};
#define S_STEP_SECRETS (sizeof s_step_secrets / sizeof s_step_secrets [0])

/*  The service whose workers run a step, by the prefix of its kind; every
    other step goes to the workers of the deployment's provider. */
static const struct {
    const char *prefix;
    const char *service;
} s_step_services [] = {
    { "vpn.", "vpn" },
};
#define S_STEP_SERVICES (sizeof s_step_services / sizeof s_step_services [0])

/*  Secrets that an earlier step reported sealed in a resource, opened into
    the credentials of the steps that need them (proto/PROTOCOL.md,
    "Steps"): the access node's host step takes the vpn service's server
    bundle, as `vpn` (its JSON text), for its user data. */
static const struct {
    const char *step;                   /* the step id */
    const char *resource, *attribute;   /* the sealed text */
    const char *credential;
} s_resource_secrets [] = {
    { "host.access", "vpn.pki", "server", "vpn" },
};
#define S_RESOURCE_SECRETS (sizeof s_resource_secrets / sizeof s_resource_secrets [0])

typedef enum { S_PENDING, S_RUNNING, S_DONE, S_FAILED } s_status_t;

static const char *s_status_names [] = { "pending", "running", "done", "failed" };

/*  One job of a plan. */
typedef struct {
    char id [64];                       /* the step id */
    json_t *record;                     /* the stored job record (owned) */
    s_status_t status;
    int64_t attempt;
    int failures, retries, requeues;
    char *worker;                       /* broker key while running; NULL: unknown */
    char *worker_name;                  /* host:pid, for events */
    int64_t lease_expiry;               /* dx_mono_ms */
    int64_t not_before;                 /* dx_mono_ms */
    uint64_t reserved;                  /* its start, kept for Redis: sent once written */
} s_job_t;

/*  One deployment in progress. */
typedef struct {
    char name [32];
    char provider [16];
    int64_t generation;
    int destroy;
    int parallelism;
    char *masters_ips;                  /* the masters' private IPs, comma-separated */
    sch_plan_t *plan;                   /* while its plan is being made: the rest */
    s_job_t *jobs;                      /* room for the whole plan */
    size_t njobs, running, done;
    json_t *resources;                  /* key -> resource */
    char *credentials;                  /* sealed */
    json_t *secrets;                    /* the snapshot's, sealed; may be NULL */
    int failing;                        /* a job failed for good */
    json_t *last_error;                 /* {step, code, message} or NULL */
    char *pace_key;                     /* its s_pacing bucket, or NULL */
    const char *pace_kind;              /* the kind paced */
    double pace_burst, pace_rate;
    int64_t paced_until;                /* dx_mono_ms: no paced step before */
} s_deploy_t;

struct sch_engine {
    sch_store_t *store;
    sch_read_t *read;                   /* the store's */
    sch_redis_t *redis;                 /* the store's */
    dx_seal_t *seal;
    sch_broker_t *broker;
    int64_t lease_ms;
    zhashx_t *deploys;                  /* name -> s_deploy_t */
    dx_ratelimit_t *pacing;             /* s_pacing's buckets */
    int unloaded;                       /* a deployment could not be loaded: recover */
    int recovered;                      /* Redis was read once: workers may be judged */
    zlistx_t *held;                     /* s_held_t: what workers said before that */
    zhashx_t *tombs;                    /* NAME:GENERATION -> s_tomb_t */
    zlistx_t *remains;                  /* s_remains_t: of forgotten deployments */
    sch_engine_side_t side;             /* the broker's other jobs (sch_vpn) */
    void *side_arg;
};

/*  What a worker said before the engine had read Redis: results,
    announcements and departures are judged once it has, in order. */
typedef struct {
    char *worker, *name;                /* name may be NULL */
    json_t *msg;                        /* job.result or worker.ready; NULL: gone */
} s_held_t;

#define S_HELD_MAX 10000                /* beyond, a result is left to its lease */

/*  A deployment forgotten while it ran (its cluster deleted with force):
    its job ids come back if the cluster is created again with the same
    name, so for a while the new jobs' attempts start above the last of
    the old ones, and a late result of an old attempt can never pass for
    a new one's. One for all its jobs, however many. */
typedef struct {
    int64_t attempt;                    /* the last attempt of any of its jobs */
    int64_t expires;                    /* dx_mono_ms */
} s_tomb_t;

/*  The jobs and resources of a forgotten deployment, freed a slice at a
    time (sch_engine_tick): thousands of job records would hold the loop. */
typedef struct {
    s_job_t *jobs;
    size_t njobs, freed;
    json_t *resources;
} s_remains_t;

#define S_TOMB_MS (10 * 60 * 1000)      /* longer than any attempt outlives its cancel */


//  ---------------------------------------------------------------------
//  Deployments in memory

static void
s_job_free (s_job_t *job)
{
    json_decref (job->record);
    free (job->worker);
    free (job->worker_name);
}

static void
s_deploy_destroy (void **item_p)
{
    s_deploy_t *d = (s_deploy_t *) *item_p;
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

static s_job_t *
s_deploy_job (s_deploy_t *d, const char *id)
{
    for (size_t i = 0; i < d->njobs; i++)
        if (strcmp (d->jobs [i].id, id) == 0)
            return &d->jobs [i];
    return NULL;
}

static void
s_job_set_worker (s_job_t *job, const char *worker, const char *name)
{
    free (job->worker);
    free (job->worker_name);
    job->worker = worker? strdup (worker): NULL;
    job->worker_name = name? strdup (name): NULL;
}

/*  The job's record brought up to date with its in-memory state. */
static json_t *
s_job_record (s_job_t *job)
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
s_deploy_current (s_deploy_t *d)
{
    char text [256] = "";
    size_t shown = 0, more = 0;
    for (size_t i = 0; i < d->njobs; i++) {
        if (d->jobs [i].status != S_RUNNING)
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
static int
s_engine_record (sch_engine_t *self, const char *name, const sch_store_change_t *change,
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
    is kept for it (s_engine_record's answer and *serial, serial may be
    NULL). */
static int
s_engine_write_hosts (sch_engine_t *self, s_deploy_t *d, s_job_t *job, json_t *fields,
                      json_t *resources_set, json_t *resources_del, const json_t *hosts,
                      const char *event_type, json_t *event, uint64_t *serial)
{
    json_t *jobs = json_object ();
    if (job)
        json_object_set (jobs, job->id, s_job_record (job));
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
    int rc = s_engine_record (self, d->name, &change, event_type? event_type: "progress",
                              serial);
    if (job)
        sch_metrics_step (d->provider, json_string_value (json_object_get (job->record, "kind")),
                          event_type);
    json_decref (jobs);
    json_decref (fields);
    json_decref (event);
    return rc;
}

static int
s_engine_write (sch_engine_t *self, s_deploy_t *d, s_job_t *job, json_t *fields,
                json_t *resources_set, json_t *resources_del, const char *event_type,
                json_t *event, uint64_t *serial)
{
    return s_engine_write_hosts (self, d, job, fields, resources_set, resources_del, NULL,
                                 event_type, event, serial);
}

/*  The pacing bucket of the deployment's account and region, if its
    provider has one. The key holds the account's id (not a secret) and
    lives in memory only. */
static void
s_deploy_pacing (sch_engine_t *self, s_deploy_t *d, const json_t *config)
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
s_job_init (sch_engine_t *self, s_deploy_t *d, s_job_t *job, const char *id, json_t *record)
{
    snprintf (job->id, sizeof job->id, "%s", id);
    job->record = record;
    const char *status = json_string_value (json_object_get (record, "status"));
    job->status = S_PENDING;
    for (int s = 0; status && s < 4; s++)
        if (strcmp (status, s_status_names [s]) == 0)
            job->status = (s_status_t) s;
    job->attempt = json_integer_value (json_object_get (record, "attempt"));
    if (job->attempt < 1)
        job->attempt = 1;
    job->failures = (int) json_integer_value (json_object_get (record, "failures"));
    job->retries = (int) json_integer_value (json_object_get (record, "retries"));
    job->requeues = (int) json_integer_value (json_object_get (record, "requeues"));
    if (job->status == S_RUNNING) {
        job->lease_expiry = dx_mono_ms () + self->lease_ms;
        const char *worker = json_string_value (json_object_get (record, "worker"));
        job->worker_name = worker? strdup (worker): NULL;
        d->running++;
    }
    if (job->status == S_DONE)
        d->done++;
    if (job->status == S_FAILED)
        d->failing = 1;
}

/*  The masters' addresses, as the plan gave them, for every host's
    context: known once the whole plan is. */
static void
s_deploy_masters (s_deploy_t *d)
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
static s_deploy_t *
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
    s_deploy_t *d = (s_deploy_t *) calloc (1, sizeof *d);
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
    d->jobs = (s_job_t *) calloc (room? room: 1, sizeof *d->jobs);
    if (!d->jobs) {
        void *item = d;
        s_deploy_destroy (&item);
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
            s_deploy_destroy (&item);
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
            s_deploy_destroy (&item);
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
static int
s_engine_load (sch_engine_t *self, const char *name)
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
    s_deploy_t *d = s_deploy_new (self, name, loaded, snapshot);
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
static int
s_engine_plan (sch_engine_t *self, s_deploy_t *d, int64_t until)
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
        s_engine_record (self, d->name, &change, "its plan", NULL);
        json_decref (fields);
        json_decref (jobs);
        json_decref (made);
        if (dx_mono_ms () >= until)
            break;
    }
    return d->plan == NULL;
}


//  ---------------------------------------------------------------------
//  Dispatch

static void
s_tomb_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

/*  The last attempt of the jobs of a forgotten deployment that job_id
    (NAME:GENERATION:STEP) was one of, while it is remembered, or 0. */
static int64_t
s_tomb_attempt (sch_engine_t *self, const char *job_id)
{
    const char *colon = job_id? strchr (job_id, ':'): NULL;
    const char *step = colon? strchr (colon + 1, ':'): NULL;
    char key [64];
    if (!step || step - job_id >= (ptrdiff_t) sizeof key)
        return 0;
    snprintf (key, sizeof key, "%.*s", (int) (step - job_id), job_id);
    s_tomb_t *tomb = (s_tomb_t *) zhashx_lookup (self->tombs, key);
    return tomb && tomb->expires > dx_mono_ms ()? tomb->attempt: 0;
}

static void
s_remains_destroy (void **item_p)
{
    s_remains_t *remains = (s_remains_t *) *item_p;
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
static int
s_engine_bury (sch_engine_t *self, int64_t until)
{
    s_remains_t *remains;
    while ((remains = (s_remains_t *) zlistx_first (self->remains))) {
        while (remains->freed < remains->njobs) {
            s_job_free (&remains->jobs [remains->freed++]);
            if (remains->freed % S_PLAN_SLICE == 0 && dx_mono_ms () >= until)
                return 1;
        }
        zlistx_delete (self->remains, NULL);
    }
    return 0;
}

/*  The service of a step of kind (s_step_services). */
static const char *
s_step_service (const s_deploy_t *d, const char *kind)
{
    for (size_t i = 0; kind && i < S_STEP_SERVICES; i++)
        if (strncmp (kind, s_step_services [i].prefix, strlen (s_step_services [i].prefix)) == 0)
            return s_step_services [i].service;
    return d->provider;
}

/*  The attribute of a recorded resource, or NULL. */
static const char *
s_deploy_attr (const s_deploy_t *d, const char *key, const char *attribute)
{
    return json_string_value (json_object_get (json_object_get (d->resources, key), attribute));
}

/*  The access.crl step's context: the access node (`access`, its
    provider id) and the recorded PKI's CRL (`vpn_crl`, PEM, and
    `vpn_crl_number`). The CRL is public; the PKI's JSON has it in clear. */
static void
s_deploy_crl_context (s_deploy_t *d, json_t *context)
{
    const char *access = s_deploy_attr (d, "host.access", "provider_id");
    const char *text = s_deploy_attr (d, "vpn.pki", "pki");
    json_t *pki = text? json_loads (text, 0, NULL): NULL;
    const char *crl = json_string_value (json_object_get (pki, "crl"));
    json_int_t number = json_integer_value (json_object_get (pki, "crl_number"));
    if (access && *access)
        json_object_set_new (context, "access", json_string (access));
    if (crl && number > 0) {
        char buf [32];
        snprintf (buf, sizeof buf, "%" JSON_INTEGER_FORMAT, number);
        json_object_set_new (context, "vpn_crl", json_string (crl));
        json_object_set_new (context, "vpn_crl_number", json_string (buf));
    }
    json_decref (pki);
}

/*  What earlier steps recorded, as the step's context: resource key ->
    provider id, hosts and addresses left out, and the masters' IPs; a
    vpn step also gets the recorded PKI (its secrets sealed) and the
    access node's public address. */
static json_t *
s_deploy_context (s_deploy_t *d, const char *kind)
{
    json_t *context = json_object ();
    const char *key;
    json_t *resource;
    json_object_foreach (d->resources, key, resource) {
        if (strncmp (key, "host.", 5) == 0 || strncmp (key, "eip.", 4) == 0)
            continue;
        const char *id = json_string_value (json_object_get (resource, "provider_id"));
        if (id)
            json_object_set_new (context, key, json_string (id));
    }
    json_object_set_new (context, "masters_ips",
                         json_string (d->masters_ips? d->masters_ips: ""));
    if (strcmp (s_step_service (d, kind), "vpn") == 0) {
        const char *pki = s_deploy_attr (d, "vpn.pki", "pki");
        const char *ip = s_deploy_attr (d, "eip.access", "public_ip");
        if (pki)
            json_object_set_new (context, "vpn_pki", json_string (pki));
        if (ip && *ip)
            json_object_set_new (context, "access_ip", json_string (ip));
    }
    if (strcmp (kind, SCH_PLAN_ACCESS_CRL) == 0)
        s_deploy_crl_context (d, context);
    return context;
}

/*  Wipes every string in value, however deep, in place. */
static void
s_wipe (json_t *value)
{
    size_t i;
    const char *key;
    json_t *item;
    if (json_is_string (value))
        sodium_memzero ((char *) json_string_value (value), json_string_length (value));
    else
    if (json_is_array (value))
        json_array_foreach (value, i, item)
            s_wipe (item);
    else
    if (json_is_object (value))
        json_object_foreach (value, key, item)
            s_wipe (item);
}

/*  The job's credentials, opened: the deployment's, plus the secret its
    kind takes (s_step_secrets) and those its step id takes from the
    resources (s_resource_secrets); none for a vpn step. NULL when they
    cannot be opened. */
static json_t *
s_deploy_credentials (sch_engine_t *self, s_deploy_t *d, const char *kind, const char *id)
{
    //  The vpn service is no cloud's client: its steps get no credentials
    if (strcmp (s_step_service (d, kind), "vpn") == 0)
        return json_object ();
    if (!d->credentials)
        return NULL;
    size_t len = 0;
    char *plain = dx_seal_open (self->seal, d->credentials, &len);
    if (!plain)
        return NULL;
    json_t *credentials = json_loadb (plain, len, 0, NULL);
    dx_seal_free (plain, len);
    if (!json_is_object (credentials)) {
        json_decref (credentials);
        return NULL;
    }
    for (size_t i = 0; i < S_STEP_SECRETS; i++) {
        const char *name = s_step_secrets [i].secret;
        const char *sealed = json_string_value (json_object_get (d->secrets, name));
        char *secret = sealed && strcmp (kind, s_step_secrets [i].kind) == 0
                     ? dx_seal_open (self->seal, sealed, &len): NULL;
        if (secret) {
            json_object_set_new (credentials, name, json_stringn (secret, len));
            dx_seal_free (secret, len);
        }
    }
    for (size_t i = 0; i < S_RESOURCE_SECRETS; i++) {
        if (strcmp (id, s_resource_secrets [i].step))
            continue;
        const char *sealed = s_deploy_attr (d, s_resource_secrets [i].resource,
                                            s_resource_secrets [i].attribute);
        char *secret = sealed? dx_seal_open (self->seal, sealed, &len): NULL;
        if (sealed && !secret) {
            //  Sealed with another key: no step can use it
            s_wipe (credentials);
            json_decref (credentials);
            return NULL;
        }
        if (secret) {
            json_object_set_new (credentials, s_resource_secrets [i].credential,
                                 json_stringn (secret, len));
            dx_seal_free (secret, len);
        }
    }
    return credentials;
}

/*  1 unless a secret that step id takes from the resources
    (s_resource_secrets) is there and does not open. */
static int
s_resource_secrets_open (sch_engine_t *self, s_deploy_t *d, const char *id)
{
    for (size_t i = 0; i < S_RESOURCE_SECRETS; i++) {
        const char *sealed = strcmp (id, s_resource_secrets [i].step)? NULL
                           : s_deploy_attr (d, s_resource_secrets [i].resource,
                                            s_resource_secrets [i].attribute);
        size_t len;
        char *secret = sealed? dx_seal_open (self->seal, sealed, &len): NULL;
        if (sealed && !secret)
            return 0;
        if (secret)
            dx_seal_free (secret, len);
    }
    return 1;
}

/*  1 when every job that job needs is done. */
static int
s_job_ready (s_deploy_t *d, s_job_t *job, int64_t now)
{
    if (job->status != S_PENDING || job->not_before > now)
        return 0;
    size_t i;
    json_t *need;
    json_array_foreach (json_object_get (job->record, "needs"), i, need) {
        s_job_t *other = s_deploy_job (d, json_string_value (need));
        if (other && other->status != S_DONE)
            return 0;
    }
    return 1;
}

/*  The job id of PROTOCOL.md: NAME:GENERATION:STEP. */
static char *
s_job_id (const s_deploy_t *d, const s_job_t *job, char *buf, size_t size)
{
    snprintf (buf, size, "%s:%" PRId64 ":%s", d->name, d->generation, job->id);
    return buf;
}

/*  Sends worker job.cancel of attempt `attempt` of job_id. */
static void
s_engine_send_cancel (sch_engine_t *self, const char *worker, const char *job_id,
                      int64_t attempt)
{
    json_t *cancel = dx_msg_new ("job.cancel", NULL);
    json_object_set_new (cancel, "job", json_string (job_id));
    json_object_set_new (cancel, "attempt", json_integer (attempt));
    sch_broker_send_to (self->broker, worker, cancel, 0);
}

/*  Tells the worker running job to stop it and frees its place there. */
static void
s_engine_cancel (sch_engine_t *self, const s_deploy_t *d, const s_job_t *job)
{
    char job_id [128];
    s_engine_send_cancel (self, job->worker, s_job_id (d, job, job_id, sizeof job_id),
                          job->attempt);
    sch_broker_release (self->broker, job->worker);
}

/*  The job.assign of the job's current attempt (caller owns; it holds the
    opened credentials: free it with s_assign_free), or NULL when the
    deployment's credentials cannot be opened. */
static json_t *
s_engine_assign (sch_engine_t *self, s_deploy_t *d, s_job_t *job)
{
    const char *kind = json_string_value (json_object_get (job->record, "kind"));
    json_t *credentials = s_deploy_credentials (self, d, kind? kind: "", job->id);
    if (!credentials)
        return NULL;
    char job_id [128];
    json_t *step = json_deep_copy (json_object_get (job->record, "step"));
    json_object_set_new (step, "context", s_deploy_context (d, kind? kind: ""));
    json_t *msg = dx_msg_new ("job.assign", NULL);
    json_object_set_new (msg, "job", json_string (s_job_id (d, job, job_id, sizeof job_id)));
    json_object_set_new (msg, "attempt", json_integer (job->attempt));
    json_object_set_new (msg, "cluster", json_string (d->name));
    json_object_set_new (msg, "generation", json_integer (d->generation));
    json_object_set_new (msg, "step", step);
    json_object_set_new (msg, "credentials", credentials);
    json_object_set_new (msg, "lease_ms", json_integer (self->lease_ms));
    return msg;
}

/*  Wipes the credentials of a job.assign and frees it; safe on NULL. */
static void
s_assign_free (json_t **msg_p)
{
    if (*msg_p) {
        s_wipe (json_object_get (*msg_p, "credentials"));
        json_decref (*msg_p);
        *msg_p = NULL;
    }
}

/*  Sends the job.assign msg (taken) of a job whose start Redis has to the
    job's worker; the lease runs from now. 0, or -1 if it was not sent. */
static int
s_engine_send (sch_engine_t *self, s_deploy_t *d, s_job_t *job, json_t *msg)
{
    json_incref (msg);                  /* to wipe it after the send */
    int rc = sch_broker_send_to (self->broker, job->worker, msg, 0);
    s_assign_free (&msg);
    job->reserved = 0;
    job->lease_expiry = dx_mono_ms () + self->lease_ms;
    if (rc == 0)
        dx_info ("deployment %s: step %s attempt %" PRId64 " -> worker %s", d->name, job->id,
                 job->attempt, job->worker_name? job->worker_name: "?");
    return rc;
}

static void s_engine_fail (s_deploy_t *d, s_job_t *job, const char *code, const char *message);
static int s_engine_maybe_finish (sch_engine_t *self, s_deploy_t *d);
static int s_engine_requeue (sch_engine_t *self, s_deploy_t *d, s_job_t *job,
                             const char *reason, int tell_worker);

/*  The credentials cannot be opened. They are read again (a read that
    failed when the deployment was loaded left none); while Redis cannot be
    read the next tick tries again, as with any Redis failure. Missing, or
    sealed with another master key, no retry can help: job fails for good,
    with a message saying what to do, and the deployment ends once nothing
    runs. Returns 1 if the deployment ended (d is freed). */
static int
s_engine_no_credentials (sch_engine_t *self, s_deploy_t *d, s_job_t *job)
{
    char *sealed;
    if (sch_read_credentials (self->read, d->name, &sealed)) {
        dx_error ("deployment %s: cannot read its credentials, trying again: %s", d->name,
                  sch_store_error (self->store));
        return 0;
    }
    if (sealed && (!d->credentials || strcmp (sealed, d->credentials))) {
        free (d->credentials);
        d->credentials = sealed;        /* the next dispatch tries them */
        return 0;
    }
    free (sealed);
    const char *code = "CredentialsUnreadable";
    const char *message = "the deployment's credentials cannot be opened: they are missing, "
                          "or were sealed with another master key (DEXTER_MASTER_KEY or the "
                          "data directory changed); PUT the deployment again with its "
                          "credentials";
    if (!s_resource_secrets_open (self, d, job->id)) {
        code = "VpnBundleUnreadable";
        message = "the access node's OpenVPN server bundle, which the vpn service sealed, "
                  "cannot be opened with the scheduler's master key: the vpn service and the "
                  "scheduler must have the same master key (DEXTER_MASTER_KEY or "
                  "DEXTER_MASTER_KEY_FILE); fix it, then destroy and deploy again";
    }
    dx_error ("deployment %s: step %s: %s", d->name, job->id, message);
    s_engine_fail (d, job, code, message);
    json_t *event = json_pack ("{s:s, s:I, s:s, s:s, s:s}", "step", job->id,
                               "attempt", (json_int_t) job->attempt,
                               "code", code, "message", message,
                               "permanent", "true");
    s_engine_write (self, d, job, NULL, NULL, NULL, "step.failed", event, NULL);
    return s_engine_maybe_finish (self, d);
}

/*  Starts job on worker. Its attempt, worker and step.started event are
    written first, and job.assign is sent only once Redis has them: so no
    attempt number is ever sent twice, even by a scheduler restarted
    since. A start kept for Redis is sent once it is written
    (sch_engine_tick). 0 to go on dispatching; -1 to stop: the job was not
    sent now, or the deployment ended (d is freed). */
static int
s_engine_start_job (sch_engine_t *self, s_deploy_t *d, s_job_t *job, const char *worker,
                    int64_t now)
{
    char job_id [128];
    int64_t old = s_tomb_attempt (self, s_job_id (d, job, job_id, sizeof job_id));
    if (old >= job->attempt) {
        dx_debug ("deployment %s: step %s starts at attempt %" PRId64 ", above those of a "
                  "deleted cluster of the same name", d->name, job->id, old + 1);
        job->attempt = old + 1;
    }
    json_t *msg = s_engine_assign (self, d, job);
    if (!msg) {
        s_engine_no_credentials (self, d, job);
        return -1;
    }
    s_job_set_worker (job, worker, sch_broker_name (self->broker, worker));
    sch_broker_adopt (self->broker, job->worker);
    job->status = S_RUNNING;
    d->running++;
    char started [32];
    json_object_set_new (job->record, "started_at",
                         json_string (dx_time_iso (dx_now_ms (), started, sizeof started)));
    json_t *event = json_pack ("{s:s, s:O, s:I, s:s}", "step", job->id,
                               "kind", json_object_get (job->record, "kind"),
                               "attempt", (json_int_t) job->attempt,
                               "worker", job->worker_name? job->worker_name: "");
    int rc = s_engine_write (self, d, job, json_pack ("{s:s}", "waiting", ""), NULL, NULL,
                             "step.started", event, &job->reserved);
    if (rc == 0 && s_engine_send (self, d, job, msg) == 0)
        return 0;
    if (rc == 0)
        s_engine_requeue (self, d, job, "it could not be sent to its worker", 1);
    else
    if (rc > 0) {
        s_assign_free (&msg);
        job->lease_expiry = INT64_MAX;  /* its lease starts when it is sent */
    }
    else {
        //  Not recorded, so not sent; its number is spent all the same
        s_assign_free (&msg);
        sch_broker_release (self->broker, job->worker);
        s_job_set_worker (job, NULL, NULL);
        d->running--;
        job->status = S_PENDING;
        job->attempt++;
        job->not_before = now + S_BACKOFF_MAX;
    }
    return -1;
}

/*  Sends a job whose start was kept for Redis, now that Redis has it; one
    that cannot be sent (its worker left, its credentials no longer open)
    runs again as the next attempt. Returns 1 if the deployment ended. */
static int
s_engine_send_reserved (sch_engine_t *self, s_deploy_t *d, s_job_t *job)
{
    json_t *msg = s_engine_assign (self, d, job);
    if (msg && s_engine_send (self, d, job, msg) == 0)
        return 0;
    return s_engine_requeue (self, d, job, "its start was recorded late and it could not be "
                             "sent then", 1);
}

/*  Starts what may start of one deployment: nothing while writes wait
    for Redis, as a start must be written before it is sent. It may end
    the deployment (its credentials cannot be opened): d is then freed. */
static void
s_engine_dispatch (sch_engine_t *self, s_deploy_t *d, int64_t now)
{
    if (!self->broker || d->failing || d->plan || sch_redis_kept (self->redis))
        return;
    int paced = 0;                      /* no more paced steps this time */
    const char *full [S_STEP_SERVICES + 1]; /* services with no room this time */
    size_t nfull = 0;
    for (size_t i = 0; i < d->njobs && d->running < (size_t) d->parallelism; i++) {
        s_job_t *job = &d->jobs [i];
        if (!s_job_ready (d, job, now))
            continue;
        const char *kind = json_string_value (json_object_get (job->record, "kind"));
        int pace = d->pace_key && kind && strcmp (kind, d->pace_kind) == 0;
        if (pace && (paced || d->paced_until > now))
            continue;
        if (self->side.holds && kind && self->side.holds (self->side_arg, d->name, kind))
            continue;
        const char *service = s_step_service (d, kind);
        size_t f = 0;
        while (f < nfull && strcmp (full [f], service))
            f++;
        if (f < nfull)
            continue;
        const char *worker = sch_broker_pick (self->broker, service);
        if (!worker) {
            full [nfull++] = service;
            if (nfull == S_STEP_SERVICES + 1)
                return;
            continue;
        }
        if (pace) {
            dx_bucket_t *bucket = dx_ratelimit_bucket (self->pacing, d->pace_key,
                                                       d->pace_burst, d->pace_rate, now);
            int64_t wait = bucket? dx_bucket_take (bucket, now): 0;
            if (wait > 0) {
                d->paced_until = now + wait;
                paced = 1;
                continue;
            }
        }
        if (s_engine_start_job (self, d, job, worker, now))
            return;
    }
}


//  ---------------------------------------------------------------------
//  Ends and requeues

/*  Ends the deployment when nothing runs and either everything is done or
    a job failed for good. Returns 1 if it ended (d is freed). */
static int
s_engine_maybe_finish (sch_engine_t *self, s_deploy_t *d)
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
        json_object_set (jobs, d->jobs [i].id, s_job_record (&d->jobs [i]));
        done += d->jobs [i].status == S_DONE;
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
    int refused = s_engine_record (self, d->name, &change, what, NULL) < 0;
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
static void
s_engine_fail (s_deploy_t *d, s_job_t *job, const char *code, const char *message)
{
    job->status = S_FAILED;
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
static int
s_engine_requeue (sch_engine_t *self, s_deploy_t *d, s_job_t *job, const char *reason,
                  int tell_worker)
{
    if (job->worker && tell_worker)
        s_engine_cancel (self, d, job);
    d->running--;
    job->attempt++;
    job->requeues++;
    job->reserved = 0;
    s_job_set_worker (job, NULL, NULL);
    dx_warn ("deployment %s: step %s runs again as attempt %" PRId64 ": %s", d->name, job->id,
             job->attempt, reason);
    if (job->requeues > SCH_ENGINE_MAX_REQUEUES)
        s_engine_fail (d, job, "Requeued", "the step lost its worker or its lease too often");
    else
        job->status = S_PENDING;
    json_t *event = json_pack ("{s:s, s:I, s:s}", "step", job->id,
                               "attempt", (json_int_t) job->attempt, "reason", reason);
    s_engine_write (self, d, job, NULL, NULL, NULL, "step.requeued", event, NULL);
    return s_engine_maybe_finish (self, d);
}

/*  A running job's lease ran out: counted, and requeued. */
static int
s_engine_lease_expired (sch_engine_t *self, s_deploy_t *d, s_job_t *job)
{
    sch_metrics_lease_expired (d->provider);
    return s_engine_requeue (self, d, job, "its lease expired", 1);
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
static s_job_t *
s_engine_find (sch_engine_t *self, const json_t *msg, s_deploy_t **d_p)
{
    char name [32];
    int64_t generation;
    const char *step;
    if (s_job_id_parse (dx_msg_str (msg, "job"), name, sizeof name, &generation, &step))
        return NULL;
    s_deploy_t *d = (s_deploy_t *) zhashx_lookup (self->deploys, name);
    if (!d || d->generation != generation)
        return NULL;
    s_job_t *job = s_deploy_job (d, step);
    if (!job || job->status != S_RUNNING || job->attempt != dx_msg_int (msg, "attempt", -1))
        return NULL;
    *d_p = d;
    return job;
}

/*  Records the resources of a result: kept, or forgotten when gone. */
static void
s_engine_resources (s_deploy_t *d, const json_t *resources, json_t *set, json_t *del,
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
    int64_t delay = S_BACKOFF_MS;
    for (int i = 1; i < n && delay < S_BACKOFF_MAX; i++)
        delay *= 2;
    return delay < S_BACKOFF_MAX? delay: S_BACKOFF_MAX;
}

/*  A host step done on a host that existed already with another instance
    type than the spec's: existing hosts are not rebuilt, so say so. The
    warning (caller frees), or NULL. A batch step (kind hosts) names the
    first such host of its own. */
static char *
s_host_drift (const s_job_t *job, const json_t *resources)
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
s_batch_hosts (const s_job_t *job, const json_t *resources)
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

static void
s_engine_result (sch_engine_t *self, s_deploy_t *d, s_job_t *job, const char *worker,
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
        s_job_set_worker (job, worker, worker_name);
    d->running--;

    json_t *fields = json_object ();
    json_t *set = json_object (), *del = json_array ();
    const char *held = strcmp (job->id, "host.access")? NULL
                     : s_deploy_attr (d, "host.access", "provider_id");
    char *was = strcmp (job->id, "host.access")? NULL: strdup (held? held: "");
    s_engine_resources (d, json_object_get (msg, "resources"), set, del, fields);
    const char *type;
    json_t *hosts = NULL;
    json_t *event = json_pack ("{s:s, s:I, s:s}", "step", job->id,
                               "attempt", (json_int_t) job->attempt,
                               "worker", job->worker_name? job->worker_name: "");
    if (strcmp (outcome, "done") == 0) {
        job->status = S_DONE;
        d->done++;
        type = "step.done";
        //  An access node launched anew has its bundle's CRL (docs/vpn.md, "Users")
        const char *now = was? s_deploy_attr (d, "host.access", "provider_id"): NULL;
        if (now && *now && strcmp (now, was)) {
            const char *crl = s_deploy_attr (d, "vpn.pki", "crl_number");
            json_object_set_new (fields, "vpn_crl_delivered", json_string (crl && *crl? crl: "1"));
        }
        //  The CRL the access node's tags now hold (docs/vpn.md, "Users")
        const char *tagged = strcmp (job->id, SCH_PLAN_ACCESS_CRL)? NULL
                           : s_deploy_attr (d, "access.crl", "crl_number");
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
        s_engine_fail (d, job, code, message);
        type = "step.failed";
    }
    else {
        int failed = strcmp (outcome, "failed") == 0;
        int tries = failed? ++job->failures: ++job->retries;
        if (tries >= (failed? SCH_ENGINE_MAX_FAILURES: SCH_ENGINE_MAX_RETRIES)) {
            s_engine_fail (d, job, code, message);
            type = "step.failed";
        }
        else {
            job->status = S_PENDING;
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
    s_engine_write_hosts (self, d, job, fields, set, del, hosts, type, event, NULL);
    json_decref (hosts);
    json_decref (set);
    json_decref (del);
    free (was);
    s_engine_maybe_finish (self, d);
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
    if (s_tomb_attempt (self, dx_msg_str (msg, "job")) >= dx_msg_int (msg, "attempt", 0))
        return;
    s_deploy_t *d = (s_deploy_t *) zhashx_lookup (self->deploys, name);
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
        s_engine_record (self, name, &change, "a late result", NULL);
        json_decref (fields);
        json_decref (event);
    }
    json_decref (set);
    json_decref (loaded);
}

static void
s_held_destroy (void **item_p)
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
    departures (msg NULL) are held, in order, for s_engine_replay. */
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

static void s_engine_on_job (void *arg, const char *worker, const char *name,
                             const json_t *msg);
static void s_engine_on_ready (void *arg, const char *worker, const char *name,
                               const json_t *msg);
static void s_engine_on_gone (void *arg, const char *worker, const char *name);

/*  Redis was read: what workers said meanwhile is judged now, in order. */
static void
s_engine_replay (sch_engine_t *self)
{
    if (zlistx_size (self->held))
        dx_info ("engine: judging the %zu messages workers sent before redis was read",
                 zlistx_size (self->held));
    s_held_t *held;
    while ((held = (s_held_t *) zlistx_first (self->held))) {
        if (!held->msg)
            s_engine_on_gone (self, held->worker, held->name);
        else
        if (strcmp (dx_msg_type (held->msg), "worker.ready") == 0)
            s_engine_on_ready (self, held->worker, held->name, held->msg);
        else
            s_engine_on_job (self, held->worker, held->name, held->msg);
        zlistx_delete (self->held, zlistx_cursor (self->held));
    }
}

/*  job.progress of the current attempt of a job: event step.progress.
    Progress of another attempt, or before Redis was read, says nothing
    worth keeping. */
static void
s_engine_progress (sch_engine_t *self, const char *name, const json_t *msg)
{
    s_deploy_t *d = NULL;
    s_job_t *job = self->recovered? s_engine_find (self, msg, &d): NULL;
    if (!job || job->status != S_RUNNING)
        return;
    json_t *event = json_pack ("{s:s, s:I, s:s, s:s}", "step", job->id,
                               "attempt", (json_int_t) dx_msg_int (msg, "attempt", 0),
                               "worker", name? name: "",
                               "message", dx_msg_str (msg, "message"));
    sch_store_change_t change = { .event_type = "step.progress", .event = event };
    s_engine_record (self, d->name, &change, "a step's progress", NULL);
    json_decref (event);
}

/*  The broker's job callback: job.result, job.renew or job.progress. A
    renewal that comes before Redis was read is not judged: its job is not
    known yet, and the next one comes soon. */
static void
s_engine_on_job (void *arg, const char *worker, const char *name, const json_t *msg)
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
    s_deploy_t *d = NULL;
    s_job_t *job = s_engine_find (self, msg, &d);
    if (!job) {
        dx_debug ("engine: stale %s of job %s attempt %lld from worker %s", dx_msg_type (msg),
                  dx_msg_str (msg, "job"), (long long) dx_msg_int (msg, "attempt", 0), name);
        if (renew) {
            //  That attempt runs for nothing: stop it
            s_engine_send_cancel (self, worker, dx_msg_str (msg, "job"),
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
            s_job_set_worker (job, worker, name);
            sch_broker_adopt (self->broker, worker);
        }
        return;
    }
    s_engine_result (self, d, job, worker, name, msg);
}

/*  worker.ready: jobs it says it runs whose worker we do not know (after a
    restart, or it came back under a new identity) are its. */
static void
s_engine_on_ready (void *arg, const char *worker, const char *name, const json_t *msg)
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
        s_deploy_t *d = (s_deploy_t *) zhashx_lookup (self->deploys, dname);
        s_job_t *job = d && d->generation == generation? s_deploy_job (d, step): NULL;
        if (!job || job->status != S_RUNNING)
            continue;
        if (job->worker && sch_broker_name (self->broker, job->worker))
            continue;                   /* held by a live worker: not this one's */
        s_job_set_worker (job, worker, name);
        sch_broker_adopt (self->broker, worker);
        job->lease_expiry = dx_mono_ms () + self->lease_ms;
        dx_info ("deployment %s: step %s is run by worker %s", dname, job->id, name);
    }
}

/*  The worker is gone: its jobs go back to the queue. */
static void
s_engine_on_gone (void *arg, const char *worker, const char *name)
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
        s_deploy_t *d = (s_deploy_t *) zhashx_lookup (self->deploys, dname);
        for (size_t i = 0; d && i < d->njobs; i++) {
            s_job_t *job = &d->jobs [i];
            if (job->status == S_RUNNING && job->worker && strcmp (job->worker, worker) == 0) {
                char reason [160];
                snprintf (reason, sizeof reason, "worker %s is gone", name? name: worker);
                if (s_engine_requeue (self, d, job, reason, 0))
                    d = NULL;           /* it ended */
            }
        }
    }
    zlistx_destroy (&names);
}


//  ---------------------------------------------------------------------
//  The engine

sch_engine_t *
sch_engine_new (sch_store_t *store, dx_seal_t *seal, sch_broker_t *broker, int64_t lease_ms)
{
    sch_engine_t *self = (sch_engine_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->read = sch_store_read (store);
    self->redis = sch_store_redis (store);
    self->seal = seal;
    self->broker = broker;
    self->lease_ms = lease_ms > 0? lease_ms: SCH_BROKER_LEASE_MS;
    self->deploys = zhashx_new ();
    self->pacing = dx_ratelimit_new ();
    self->tombs = zhashx_new ();
    self->remains = zlistx_new ();
    self->held = zlistx_new ();
    self->unloaded = 1;                 /* the first tick reads Redis, if no one did */
    if (!self->deploys || !self->pacing || !self->tombs || !self->remains || !self->held) {
        self->broker = NULL;            /* its events were never set */
        sch_engine_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->deploys, s_deploy_destroy);
    zhashx_set_destructor (self->tombs, s_tomb_destroy);
    zlistx_set_destructor (self->remains, s_remains_destroy);
    zlistx_set_destructor (self->held, s_held_destroy);
    if (broker) {
        sch_broker_events_t events = {
            .job = s_engine_on_job, .ready = s_engine_on_ready, .gone = s_engine_on_gone
        };
        sch_broker_set_events (broker, &events, self);
    }
    return self;
}

void
sch_engine_destroy (sch_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_engine_t *self = *self_p;
    if (self->broker)
        sch_broker_set_events (self->broker, NULL, NULL);
    zhashx_destroy (&self->deploys);
    zhashx_destroy (&self->tombs);
    zlistx_destroy (&self->remains);
    zlistx_destroy (&self->held);
    dx_ratelimit_destroy (&self->pacing);
    free (self);
    *self_p = NULL;
}

int
sch_engine_recover (sch_engine_t *self)
{
    json_t *clusters = sch_read_list (self->read);
    if (!clusters)
        return -1;
    //  The count of clusters by state, from what Redis has (once none waits)
    if (!sch_redis_kept (self->redis))
        sch_states_load (sch_store_states (self->store), clusters);
    int rc = 0;
    size_t i;
    json_t *cluster;
    json_array_foreach (clusters, i, cluster) {
        const char *state = json_string_value (json_object_get (cluster, "state"));
        const char *name = json_string_value (json_object_get (cluster, "name"));
        if (!state) {
            json_t *deployment = json_object_get (cluster, "deployment");
            state = json_string_value (json_object_get (deployment, "state"));
        }
        //  One in memory is ahead of Redis (and holds its workers): kept
        if (name && state && (!strcmp (state, "deploying") || !strcmp (state, "destroying"))
        &&  !zhashx_lookup (self->deploys, name) && s_engine_load (self, name))
            rc = -1;
    }
    json_decref (clusters);
    if (rc == 0)
        self->unloaded = 0;
    if (rc == 0 && !self->recovered) {
        self->recovered = 1;
        s_engine_replay (self);
    }
    return rc;
}

int
sch_engine_start (sch_engine_t *self, const char *name)
{
    zhashx_delete (self->deploys, name);
    if (s_engine_load (self, name)) {
        dx_error ("deployment %s: cannot load it to run it, trying again every second: %s",
                  name, sch_store_error (self->store));
        self->unloaded = 1;
        return -1;
    }
    s_deploy_t *d = (s_deploy_t *) zhashx_lookup (self->deploys, name);
    //  A small plan is made at once and starts; a big one goes on in ticks
    if (d && d->plan && !sch_redis_kept (self->redis))
        s_engine_plan (self, d, dx_mono_ms () + S_SLICE_MS);
    if (d && !s_engine_maybe_finish (self, d))  /* an empty plan ends at once */
        s_engine_dispatch (self, d, dx_mono_ms ());
    return 0;
}

void
sch_engine_recheck (sch_engine_t *self)
{
    self->unloaded = 1;
}

void
sch_engine_forget (sch_engine_t *self, const char *name)
{
    s_deploy_t *d = (s_deploy_t *) zhashx_lookup (self->deploys, name);
    if (!d)
        return;
    s_tomb_t *tomb = (s_tomb_t *) calloc (1, sizeof *tomb);
    for (size_t i = 0; i < d->njobs; i++) {
        s_job_t *job = &d->jobs [i];
        if (tomb && job->attempt > tomb->attempt)
            tomb->attempt = job->attempt;
        if (job->status == S_RUNNING && job->worker)
            s_engine_cancel (self, d, job);
    }
    if (tomb) {
        char key [64];
        snprintf (key, sizeof key, "%s:%" PRId64, d->name, d->generation);
        tomb->expires = dx_mono_ms () + S_TOMB_MS;
        zhashx_update (self->tombs, key, tomb);
    }
    dx_warn ("deployment %s forgotten while %s: its running steps were cancelled", name,
             d->destroy? "destroying": "deploying");
    //  What it holds is freed by the next ticks
    s_remains_t *remains = (s_remains_t *) calloc (1, sizeof *remains);
    if (remains && zlistx_add_end (self->remains, remains)) {
        *remains = (s_remains_t) { d->jobs, d->njobs, 0, d->resources };
        d->jobs = NULL;
        d->njobs = 0;
        d->resources = NULL;
    }
    else
        free (remains);
    zhashx_delete (self->deploys, name);
}

int64_t
sch_engine_tick (sch_engine_t *self)
{
    if (self->unloaded)
        sch_engine_recover (self);
    //  What Redis did not take yet goes first: until it has, nothing starts
    if (sch_redis_kept (self->redis))
        sch_redis_flush (self->redis);
    int64_t now = dx_mono_ms ();
    if (zhashx_size (self->tombs)) {
        zlistx_t *ids = zhashx_keys (self->tombs);
        for (char *id = ids? (char *) zlistx_first (ids): NULL; id;
             id = (char *) zlistx_next (ids)) {
            s_tomb_t *tomb = (s_tomb_t *) zhashx_lookup (self->tombs, id);
            if (tomb && tomb->expires <= now)
                zhashx_delete (self->tombs, id);
        }
        zlistx_destroy (&ids);
    }
    int64_t next = now + S_IDLE_MS, until = now + S_SLICE_MS;
    if (zlistx_size (self->remains) && s_engine_bury (self, until))
        next = now;
    zlistx_t *names = zhashx_keys (self->deploys);
    for (char *name = names? (char *) zlistx_first (names): NULL; name;
         name = (char *) zlistx_next (names)) {
        s_deploy_t *d = (s_deploy_t *) zhashx_lookup (self->deploys, name);
        //  Plans in the making take their slices, and the next tick is at
        //  once: the loop serves what waits in between
        if (d && d->plan) {
            if (!sch_redis_kept (self->redis) && !s_engine_plan (self, d, until))
                next = now;
            if (d->plan)
                continue;
        }
        //  Over already: its end was not recorded, or it was recovered so
        if (d && s_engine_maybe_finish (self, d))
            continue;
        //  Starts Redis took since, then leases: what they free may be
        //  dispatched at once
        for (size_t i = 0; d && i < d->njobs; i++) {
            s_job_t *job = &d->jobs [i];
            if (job->status == S_RUNNING && job->reserved
            &&  sch_redis_written (self->redis, job->reserved)
            &&  s_engine_send_reserved (self, d, job))
                d = NULL;
            else
            if (job->status == S_RUNNING && job->lease_expiry <= now
            &&  s_engine_lease_expired (self, d, job))
                d = NULL;
        }
        if (!d)
            continue;
        s_engine_dispatch (self, d, now);
        if (!(d = (s_deploy_t *) zhashx_lookup (self->deploys, name)))
            continue;                   /* it ended */
        for (size_t i = 0; i < d->njobs; i++) {
            s_job_t *job = &d->jobs [i];
            if (job->status == S_RUNNING && job->lease_expiry < next)
                next = job->lease_expiry;
            if (job->status == S_PENDING && job->not_before > now && job->not_before < next)
                next = job->not_before;
        }
        if (d->paced_until > now && d->paced_until < next)
            next = d->paced_until;
    }
    zlistx_destroy (&names);
    return next;
}

void
sch_engine_set_side (sch_engine_t *self, const sch_engine_side_t *side, void *arg)
{
    memset (&self->side, 0, sizeof self->side);
    if (side)
        self->side = *side;
    self->side_arg = arg;
}

int
sch_engine_running (sch_engine_t *self, const char *cluster, const char *kind)
{
    s_deploy_t *d = (s_deploy_t *) zhashx_lookup (self->deploys, cluster);
    for (size_t i = 0; d && i < d->njobs; i++) {
        const char *k = json_string_value (json_object_get (d->jobs [i].record, "kind"));
        if (d->jobs [i].status == S_RUNNING && k && strcmp (k, kind) == 0)
            return 1;
    }
    return 0;
}

void
sch_engine_resource_set (sch_engine_t *self, const char *cluster, const char *key,
                         const json_t *resource)
{
    s_deploy_t *d = (s_deploy_t *) zhashx_lookup (self->deploys, cluster);
    if (d && d->resources)
        json_object_set_new (d->resources, key, json_deep_copy (resource));
}

int64_t
sch_engine_lease_ms (sch_engine_t *self)
{
    return self->lease_ms;
}

size_t
sch_engine_size (sch_engine_t *self)
{
    return zhashx_size (self->deploys);
}

void
sch_engine_stats (sch_engine_t *self, sch_engine_stats_t *stats)
{
    memset (stats, 0, sizeof *stats);
    for (s_deploy_t *d = (s_deploy_t *) zhashx_first (self->deploys); d;
         d = (s_deploy_t *) zhashx_next (self->deploys)) {
        if (d->destroy)
            stats->destroying++;
        else
            stats->deploying++;
        for (size_t i = 0; i < d->njobs; i++) {
            stats->queued += d->jobs [i].status == S_PENDING;
            stats->running += d->jobs [i].status == S_RUNNING;
        }
    }
}
