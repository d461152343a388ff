/*  sch_metrics: the scheduler's metrics and the answer to metrics.get
    (proto/PROTOCOL.md; the families are listed in docs/metrics.md).

    One registry per process (made on first use): the Redis connection,
    the read cache and the engine count into it as things happen; what is
    a state is read when metrics.get is answered: the clusters by the state
    of their deployment from the store's counts (sch_states.h, kept as it
    writes: no cluster is read), the clusters in Redis, the jobs queued and
    running, the workers connected. The answer is
    the scheduler's text followed by the sums of its workers' metrics
    (sch_wmetrics.h), rendered with the families of dx_cloud_metrics. */
#ifndef SCH_METRICS_H
#define SCH_METRICS_H

#include <jansson.h>
#include "sch_handlers.h"

/*  Seconds of a monotonic clock, for durations (finer than dx_mono_ms);
    0, without reading the clock, when metrics are off (dx_metrics_enabled). */
double sch_metrics_clock (void);

/*  The engine wrote the event event_type ("step.started", "step.done",
    "step.failed", "step.retry", "step.requeued") of a step of kind for
    provider: counts dexter_scheduler_steps_total; other types are not
    counted. */
void sch_metrics_step (const char *provider, const char *kind, const char *event_type);

/*  A running job's lease ran out. */
void sch_metrics_lease_expired (const char *provider);

/*  A deployment ended in state (deployed, deploy_failed, destroyed, ...),
    as recorded. */
void sch_metrics_deployment_finished (const char *provider, const char *state);

/*  One round trip to Redis took seconds. */
void sch_metrics_redis_roundtrip (double seconds);

/*  A Redis error: kind `connection` (lost, or could not connect) or
    `reply` (an error reply). */
void sch_metrics_redis_error (const char *kind);

/*  A read cache lookup found what it wanted (hit) or not. */
void sch_metrics_cache (int hit);

/*  The reply to metrics.get: OK with `text`, the exposition text of the
    scheduler and its workers (caller owns; NULL when out of memory). */
json_t *sch_metrics_get (sch_ctx_t *ctx, const json_t *request);

#endif
