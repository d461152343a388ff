/*  sch_engine: runs deployments. It holds every deployment in progress
    (state deploying or destroying) in memory, with its plan (sch_plan) as
    jobs, and moves them along:

      - planning: the plan of a new deployment is made and recorded a
        slice at a time, a few milliseconds per tick, and the next tick is
        asked for at once, so the loop serves other requests in between
        (`current` says how far it is); no step starts before the plan is
        whole, so the resources it is made from stay as they were, and a
        scheduler restarted meanwhile makes the rest of the same plan;
      - dispatch: a pending job whose needs are all done is sent to the
        least loaded live worker of its service (job.assign): the
        cluster's provider, or `vpn` for the vpn.* steps, which get no
        cloud credentials (a service without a worker holds back only its
        own steps); at most `parallelism` jobs of one deployment at once, and steps that
        launch a machine no faster than the provider's launch rate per
        account and region (so adding workers never breaks it). Its start
        (attempt, worker, step.started) is written before it is sent, and
        it is sent only once Redis has it, so no attempt number is ever
        sent twice, even by a scheduler restarted since; nothing starts
        while writes wait for Redis;
      - results: job.result of the job's current attempt records the
        resources it reports, then marks the job done; failed for good
        (a permanent error, or too many tries) stops the deployment from
        starting more jobs and ends it failed once the running ones are
        back; failed for now, or `retry`, runs it again later with
        attempt + 1 after a backoff;
      - leases: a running job whose lease runs out (no job.renew), or whose
        worker is gone (expired or worker.bye), goes back to the queue with
        attempt + 1; results and renewals of any other attempt are stale
        (a stale renewal is answered with job.cancel; a stale result
        changes no job, but the resources it reports that no record knows
        of are recorded, even after the deployment ended);
      - credentials that cannot be opened (the master key changed) fail
        the job for good (CredentialsUnreadable);
      - the end: every job done gives deployed (or destroyed), a failure
        deploy_failed (destroy_failed), and the credentials are deleted.
        Every job and resource is written once more, and what derives from
        them is derived again (the access IP from eip.access, progress
        from the jobs). An end that Redis refuses is tried again every
        tick; so is the end of a recovered deployment whose jobs are all
        over.

    Every transition is one sch_store transaction: the job's record, the
    deployment's progress and the event (docs/redis.md). One that Redis
    cannot take now is kept and written later, in order (the outbox of
    sch_redis.h): memory may be ahead of Redis, never the other way.

    The in-memory state is rebuilt from Redis when the scheduler starts
    (sch_engine_recover); until Redis could be read, what workers say is
    held, not judged (renewals aside, which come again). A job that was
    running keeps running; the worker that runs it is learnt from its
    renewals or its worker.ready, and if none comes within the lease it is
    run again. Every step is idempotent, so a job run twice converges to
    the same resources. */
#ifndef SCH_ENGINE_H
#define SCH_ENGINE_H

#include <stdint.h>
#include <jansson.h>
#include "dx_seal.h"
#include "sch_store.h"
#include "sch_broker.h"

#define SCH_ENGINE_MAX_FAILURES 5       /* non-permanent failures before giving up */
#define SCH_ENGINE_MAX_RETRIES  30      /* `retry` outcomes before giving up */
#define SCH_ENGINE_MAX_REQUEUES 50      /* lost workers and expired leases */

typedef struct sch_engine sch_engine_t;

/*  An engine on store, seal and broker (all borrowed; broker may be NULL,
    then nothing is dispatched). Sets the broker's event callbacks. */
sch_engine_t *sch_engine_new (sch_store_t *store, dx_seal_t *seal, sch_broker_t *broker,
                              int64_t lease_ms);
void sch_engine_destroy (sch_engine_t **self_p);

/*  Loads every deployment in progress from Redis that is not in memory
    already (at start), then judges what workers said before. 0, or -1
    when Redis could not be read (call again later; the first tick does
    when no one did). */
int sch_engine_recover (sch_engine_t *self);

/*  A deployment of cluster name was just requested (its plan is stored):
    loads it and starts running it. 0, or -1 on failure (logged; the ticks
    then recover until it loads). */
int sch_engine_start (sch_engine_t *self, const char *name);

/*  Redis may hold a deployment in progress that memory does not know of (a
    write whose answer was lost may have run): the next ticks load what
    Redis says runs and memory lacks. */
void sch_engine_recheck (sch_engine_t *self);

/*  The cluster was deleted: forgets its deployment, cancelling its jobs. */
void sch_engine_forget (sch_engine_t *self, const char *name);

/*  Dispatches what can run and expires leases. Returns the monotonic time
    (dx_mono_ms) by which it wants to be called again. */
int64_t sch_engine_tick (sch_engine_t *self);

/*  Jobs of the broker that are not a deployment's (sch_vpn's user jobs):
    job gets every job message first and returns 1 for those it owns;
    gone hears of every worker gone; holds returns 1 while a step of kind
    of cluster must not start (a user job of the cluster runs). Every
    member may be NULL. */
typedef struct {
    int (*job) (void *arg, const char *worker, const char *name, const json_t *msg);
    void (*gone) (void *arg, const char *worker, const char *name);
    int (*holds) (void *arg, const char *cluster, const char *kind);
} sch_engine_side_t;

void sch_engine_set_side (sch_engine_t *self, const sch_engine_side_t *side, void *arg);

/*  1 while a step of kind of cluster's deployment runs. */
int sch_engine_running (sch_engine_t *self, const char *cluster, const char *kind);

/*  A resource of cluster recorded outside a step (resource borrowed): a
    deployment in progress sees it as its steps' own, so its later steps
    and its end write it as it is now. */
void sch_engine_resource_set (sch_engine_t *self, const char *cluster, const char *key,
                              const json_t *resource);

/*  The lease of the jobs the engine sends, in milliseconds. */
int64_t sch_engine_lease_ms (sch_engine_t *self);

/*  The number of deployments in progress that the engine holds. */
size_t sch_engine_size (sch_engine_t *self);

/*  What the engine holds now, for metrics: deployments in progress by
    state, and their jobs not started yet (queued) and handed to workers
    (running). */
typedef struct {
    size_t deploying, destroying;
    size_t queued, running;
} sch_engine_stats_t;

void sch_engine_stats (sch_engine_t *self, sch_engine_stats_t *stats);

#endif
