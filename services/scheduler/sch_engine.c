/*  sch_engine: the deployments in progress, their jobs, leases and
    results: the public API of sch_engine.h, and the tick that moves them
    along. The parts are sch_deploys.c (deployments in memory),
    sch_dispatch.c (starting jobs) and sch_results.c (ends, requeues and
    what workers say), which share sch_engine_private.h. See
    proto/PROTOCOL.md ("Transport: scheduler ⇄ workers", "Steps") and
    docs/redis.md (jobs, resources, events). */
#include "sch_engine_private.h"
#include "dx_log.h"
#include "dx_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_IDLE_MS       1000            /* a tick at least this often */
#define S_SLICE_MS      5               /* work in slices (plans, frees) per tick, about */

#define S_TOMB_MS (10 * 60 * 1000)      /* longer than any attempt outlives its cancel */


/*  An engine on store, seal and broker (borrowed), set as the broker's
    events. */
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
    zhashx_set_destructor (self->deploys, sch_deploy_destroy);
    zhashx_set_destructor (self->tombs, sch_tomb_destroy);
    zlistx_set_destructor (self->remains, sch_remains_destroy);
    zlistx_set_destructor (self->held, sch_held_destroy);
    if (broker) {
        sch_broker_events_t events = {
            .job = sch_engine_on_job, .ready = sch_engine_on_ready, .gone = sch_engine_on_gone
        };
        sch_broker_set_events (broker, &events, self);
    }
    return self;
}

/*  Destroys the engine and what it holds, unsetting the broker's events. */
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

/*  Loads the deployments in progress that memory lacks, and once Redis
    was read judges what workers said before. */
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
        &&  !zhashx_lookup (self->deploys, name) && sch_engine_load (self, name))
            rc = -1;
    }
    json_decref (clusters);
    if (rc == 0)
        self->unloaded = 0;
    if (rc == 0 && !self->recovered) {
        self->recovered = 1;
        sch_engine_replay (self);
    }
    return rc;
}

/*  Loads cluster name's new deployment, plans a first slice and starts it. */
int
sch_engine_start (sch_engine_t *self, const char *name)
{
    zhashx_delete (self->deploys, name);
    if (sch_engine_load (self, name)) {
        dx_error ("deployment %s: cannot load it to run it, trying again every second: %s",
                  name, sch_store_error (self->store));
        self->unloaded = 1;
        return -1;
    }
    sch_deploy_t *d = (sch_deploy_t *) zhashx_lookup (self->deploys, name);
    //  A small plan is made at once and starts; a big one goes on in ticks
    if (d && d->plan && !sch_redis_kept (self->redis))
        sch_engine_plan (self, d, dx_mono_ms () + S_SLICE_MS);
    if (d && !sch_engine_maybe_finish (self, d))  /* an empty plan ends at once */
        sch_engine_dispatch (self, d, dx_mono_ms ());
    return 0;
}

/*  The next tick reads Redis for deployments memory lacks. */
void
sch_engine_recheck (sch_engine_t *self)
{
    self->unloaded = 1;
}

/*  Forgets a deployment: cancels its running jobs, leaves a tomb of its
    attempts, and hands its jobs to the ticks to free. */
void
sch_engine_forget (sch_engine_t *self, const char *name)
{
    sch_deploy_t *d = (sch_deploy_t *) zhashx_lookup (self->deploys, name);
    if (!d)
        return;
    sch_tomb_t *tomb = (sch_tomb_t *) calloc (1, sizeof *tomb);
    for (size_t i = 0; i < d->njobs; i++) {
        sch_job_t *job = &d->jobs [i];
        if (tomb && job->attempt > tomb->attempt)
            tomb->attempt = job->attempt;
        if (job->status == SCH_JOB_RUNNING && job->worker)
            sch_engine_cancel (self, d, job);
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
    sch_remains_t *remains = (sch_remains_t *) calloc (1, sizeof *remains);
    if (remains && zlistx_add_end (self->remains, remains)) {
        *remains = (sch_remains_t) { d->jobs, d->njobs, 0, d->resources };
        d->jobs = NULL;
        d->njobs = 0;
        d->resources = NULL;
    }
    else
        free (remains);
    zhashx_delete (self->deploys, name);
}

/*  Flushes what Redis waits for, expires tombs, frees remains, plans,
    sends starts Redis took, expires leases and dispatches. Returns when
    (dx_mono_ms) it wants to run again. */
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
            sch_tomb_t *tomb = (sch_tomb_t *) zhashx_lookup (self->tombs, id);
            if (tomb && tomb->expires <= now)
                zhashx_delete (self->tombs, id);
        }
        zlistx_destroy (&ids);
    }
    int64_t next = now + S_IDLE_MS, until = now + S_SLICE_MS;
    if (zlistx_size (self->remains) && sch_engine_bury (self, until))
        next = now;
    zlistx_t *names = zhashx_keys (self->deploys);
    for (char *name = names? (char *) zlistx_first (names): NULL; name;
         name = (char *) zlistx_next (names)) {
        sch_deploy_t *d = (sch_deploy_t *) zhashx_lookup (self->deploys, name);
        //  Plans in the making take their slices, and the next tick is at
        //  once: the loop serves what waits in between
        if (d && d->plan) {
            if (!sch_redis_kept (self->redis) && !sch_engine_plan (self, d, until))
                next = now;
            if (d->plan)
                continue;
        }
        //  Over already: its end was not recorded, or it was recovered so
        if (d && sch_engine_maybe_finish (self, d))
            continue;
        //  Starts Redis took since, then leases: what they free may be
        //  dispatched at once
        for (size_t i = 0; d && i < d->njobs; i++) {
            sch_job_t *job = &d->jobs [i];
            if (job->status == SCH_JOB_RUNNING && job->reserved
            &&  sch_redis_written (self->redis, job->reserved)
            &&  sch_engine_send_reserved (self, d, job))
                d = NULL;
            else
            if (job->status == SCH_JOB_RUNNING && job->lease_expiry <= now
            &&  sch_engine_lease_expired (self, d, job))
                d = NULL;
        }
        if (!d)
            continue;
        sch_engine_dispatch (self, d, now);
        if (!(d = (sch_deploy_t *) zhashx_lookup (self->deploys, name)))
            continue;                   /* it ended */
        for (size_t i = 0; i < d->njobs; i++) {
            sch_job_t *job = &d->jobs [i];
            if (job->status == SCH_JOB_RUNNING && job->lease_expiry < next)
                next = job->lease_expiry;
            if (job->status == SCH_JOB_PENDING && job->not_before > now && job->not_before < next)
                next = job->not_before;
        }
        if (d->paced_until > now && d->paced_until < next)
            next = d->paced_until;
    }
    zlistx_destroy (&names);
    return next;
}

/*  Sets the broker's other jobs (side copied; may be NULL). */
void
sch_engine_set_side (sch_engine_t *self, const sch_engine_side_t *side, void *arg)
{
    memset (&self->side, 0, sizeof self->side);
    if (side)
        self->side = *side;
    self->side_arg = arg;
}

/*  1 while a step of kind of cluster's deployment runs. */
int
sch_engine_running (sch_engine_t *self, const char *cluster, const char *kind)
{
    sch_deploy_t *d = (sch_deploy_t *) zhashx_lookup (self->deploys, cluster);
    for (size_t i = 0; d && i < d->njobs; i++) {
        const char *k = json_string_value (json_object_get (d->jobs [i].record, "kind"));
        if (d->jobs [i].status == SCH_JOB_RUNNING && k && strcmp (k, kind) == 0)
            return 1;
    }
    return 0;
}

/*  Records a resource set outside a step in its deployment's memory. */
void
sch_engine_resource_set (sch_engine_t *self, const char *cluster, const char *key,
                         const json_t *resource)
{
    sch_deploy_t *d = (sch_deploy_t *) zhashx_lookup (self->deploys, cluster);
    if (d && d->resources)
        json_object_set_new (d->resources, key, json_deep_copy (resource));
}

/*  The lease of the jobs the engine sends, in milliseconds. */
int64_t
sch_engine_lease_ms (sch_engine_t *self)
{
    return self->lease_ms;
}

/*  The number of deployments in progress held. */
size_t
sch_engine_size (sch_engine_t *self)
{
    return zhashx_size (self->deploys);
}

/*  Counts deployments by state and their queued and running jobs. */
void
sch_engine_stats (sch_engine_t *self, sch_engine_stats_t *stats)
{
    memset (stats, 0, sizeof *stats);
    for (sch_deploy_t *d = (sch_deploy_t *) zhashx_first (self->deploys); d;
         d = (sch_deploy_t *) zhashx_next (self->deploys)) {
        if (d->destroy)
            stats->destroying++;
        else
            stats->deploying++;
        for (size_t i = 0; i < d->njobs; i++) {
            stats->queued += d->jobs [i].status == SCH_JOB_PENDING;
            stats->running += d->jobs [i].status == SCH_JOB_RUNNING;
        }
    }
}
