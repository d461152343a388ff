/*  sch_engine_private: what the parts of the engine share, and only
    they: sch_engine.c (the public API, sch_engine.h), sch_deploys.c
    (deployments in memory), sch_dispatch.c (starting jobs) and
    sch_results.c (ends, requeues and what workers say). Only the
    engine's own .c files include it; everyone else uses sch_engine.h. */
#ifndef SCH_ENGINE_PRIVATE_H
#define SCH_ENGINE_PRIVATE_H

#include "sch_engine.h"
#include "sch_plan.h"
#include "dx_ratelimit.h"

#define SCH_BACKOFF_MS  1000            /* first retry delay; doubles, capped */
#define SCH_BACKOFF_MAX 30000

typedef enum { SCH_JOB_PENDING, SCH_JOB_RUNNING, SCH_JOB_DONE, SCH_JOB_FAILED } sch_job_status_t;

/*  One job of a plan. */
typedef struct {
    char id [64];                       /* the step id */
    json_t *record;                     /* the stored job record (owned) */
    sch_job_status_t status;
    int64_t attempt;
    int failures, retries, requeues;
    char *worker;                       /* broker key while running; NULL: unknown */
    char *worker_name;                  /* host:pid, for events */
    int64_t lease_expiry;               /* dx_mono_ms */
    int64_t not_before;                 /* dx_mono_ms */
    uint64_t reserved;                  /* its start, kept for Redis: sent once written */
} sch_job_t;

/*  One deployment in progress. */
typedef struct {
    char name [32];
    char provider [16];
    int64_t generation;
    int destroy;
    int parallelism;
    char *masters_ips;                  /* the masters' private IPs, comma-separated */
    sch_plan_t *plan;                   /* while its plan is being made: the rest */
    sch_job_t *jobs;                    /* room for the whole plan */
    size_t njobs, running, done;
    json_t *resources;                  /* key -> resource */
    char *credentials;                  /* sealed */
    json_t *secrets;                    /* the snapshot's, sealed; may be NULL */
    int failing;                        /* a job failed for good */
    json_t *last_error;                 /* {step, code, message} or NULL */
    char *pace_key;                     /* its pacing bucket, or NULL */
    const char *pace_kind;              /* the kind paced */
    double pace_burst, pace_rate;
    int64_t paced_until;                /* dx_mono_ms: no paced step before */
} sch_deploy_t;

struct sch_engine {
    sch_store_t *store;
    sch_read_t *read;                   /* the store's */
    sch_redis_t *redis;                 /* the store's */
    dx_seal_t *seal;
    sch_broker_t *broker;
    int64_t lease_ms;
    zhashx_t *deploys;                  /* name -> sch_deploy_t */
    dx_ratelimit_t *pacing;             /* the pacing buckets (sch_deploys.c) */
    int unloaded;                       /* a deployment could not be loaded: recover */
    int recovered;                      /* Redis was read once: workers may be judged */
    zlistx_t *held;                     /* what workers said before that (sch_results.c) */
    zhashx_t *tombs;                    /* NAME:GENERATION -> sch_tomb_t */
    zlistx_t *remains;                  /* sch_remains_t: of forgotten deployments */
    sch_engine_side_t side;             /* the broker's other jobs (sch_vpn) */
    void *side_arg;
};

/*  A deployment forgotten while it ran (its cluster deleted with force):
    its job ids come back if the cluster is created again with the same
    name, so for a while the new jobs' attempts start above the last of
    the old ones, and a late result of an old attempt can never pass for
    a new one's. One for all its jobs, however many. */
typedef struct {
    int64_t attempt;                    /* the last attempt of any of its jobs */
    int64_t expires;                    /* dx_mono_ms */
} sch_tomb_t;

/*  The jobs and resources of a forgotten deployment, freed a slice at a
    time (sch_engine_tick): thousands of job records would hold the loop. */
typedef struct {
    sch_job_t *jobs;
    size_t njobs, freed;
    json_t *resources;
} sch_remains_t;


//  ---------------------------------------------------------------------
//  Deployments in memory (sch_deploys.c)

/*  Frees a deployment (zhashx destructor); safe on NULL. */
void sch_deploy_destroy (void **item_p);

/*  The job of step id, or NULL. */
sch_job_t *sch_deploy_job (sch_deploy_t *d, const char *id);

/*  Sets (or with NULLs clears) the broker key and name of the job's worker. */
void sch_job_set_worker (sch_job_t *job, const char *worker, const char *name);

/*  The job's record brought up to date with its in-memory state. */
json_t *sch_job_record (sch_job_t *job);

/*  The attribute of a recorded resource, or NULL. */
const char *sch_deploy_attr (const sch_deploy_t *d, const char *key, const char *attribute);

/*  Records change of cluster name in one transaction, or keeps it for
    Redis: 0, 1 kept (numbered *serial), -1 refused (logged). */
int sch_engine_record (sch_engine_t *self, const char *name, const sch_store_change_t *change,
                       const char *what, uint64_t *serial);

/*  Writes one transition: the job's record, progress, fields, resources,
    the host.done events of a batch step (hosts) and the event (fields and
    event taken; each may be NULL), in one transaction. As
    sch_engine_record. */
int sch_engine_write_hosts (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job, json_t *fields,
                            json_t *resources_set, json_t *resources_del, const json_t *hosts,
                            const char *event_type, json_t *event, uint64_t *serial);

/*  sch_engine_write_hosts without host.done events. */
int sch_engine_write (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job, json_t *fields,
                      json_t *resources_set, json_t *resources_del, const char *event_type,
                      json_t *event, uint64_t *serial);

/*  Loads cluster name's deployment if it is in progress. 0, or -1 if
    Redis could not be read. */
int sch_engine_load (sch_engine_t *self, const char *name);

/*  Makes and records the next slices of d's plan until `until`
    (dx_mono_ms). Returns 1 once the plan is whole. */
int sch_engine_plan (sch_engine_t *self, sch_deploy_t *d, int64_t until);

/*  Frees a tomb (zhashx destructor). */
void sch_tomb_destroy (void **item_p);

/*  The last attempt of the forgotten deployment job_id was a job of,
    while it is remembered, or 0. */
int64_t sch_tomb_attempt (sch_engine_t *self, const char *job_id);

/*  Frees what a forgotten deployment left (zlistx destructor). */
void sch_remains_destroy (void **item_p);

/*  Frees what forgotten deployments held until `until` (dx_mono_ms).
    Returns 1 while some is left. */
int sch_engine_bury (sch_engine_t *self, int64_t until);


//  ---------------------------------------------------------------------
//  Dispatch (sch_dispatch.c)

/*  Sends worker job.cancel of attempt `attempt` of job_id. */
void sch_engine_send_cancel (sch_engine_t *self, const char *worker, const char *job_id,
                             int64_t attempt);

/*  Tells the worker running job to stop it and frees its place there. */
void sch_engine_cancel (sch_engine_t *self, const sch_deploy_t *d, const sch_job_t *job);

/*  Sends a job whose start Redis now has, or runs it again. Returns 1 if
    the deployment ended (d is freed). */
int sch_engine_send_reserved (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job);

/*  Starts what may start of one deployment; it may end it (d is freed). */
void sch_engine_dispatch (sch_engine_t *self, sch_deploy_t *d, int64_t now);


//  ---------------------------------------------------------------------
//  Ends, requeues and what workers say (sch_results.c)

/*  Ends the deployment when nothing runs and everything is done or a job
    failed for good. Returns 1 if it ended (d is freed). */
int sch_engine_maybe_finish (sch_engine_t *self, sch_deploy_t *d);

/*  The job failed for good: the deployment starts nothing more. */
void sch_engine_fail (sch_deploy_t *d, sch_job_t *job, const char *code, const char *message);

/*  Takes a running job back to the queue with attempt + 1, telling its
    worker to stop if tell_worker. Returns 1 if the deployment ended. */
int sch_engine_requeue (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job,
                        const char *reason, int tell_worker);

/*  A running job's lease ran out: counted, and requeued. As
    sch_engine_requeue. */
int sch_engine_lease_expired (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job);

/*  Frees a held message (zlistx destructor). */
void sch_held_destroy (void **item_p);

/*  Judges, in order, what workers said before Redis was read. */
void sch_engine_replay (sch_engine_t *self);

/*  The broker's events (sch_broker_events_t), arg the engine. */
void sch_engine_on_job (void *arg, const char *worker, const char *name, const json_t *msg);
void sch_engine_on_ready (void *arg, const char *worker, const char *name, const json_t *msg);
void sch_engine_on_gone (void *arg, const char *worker, const char *name);

#endif
