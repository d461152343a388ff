/*  dx_cloud_metrics: what a worker counts of its cloud calls, for the
    scheduler's scrape (docs/metrics.md).

    One registry per process (made on first use, thread-safe): the job
    threads of the aws and azure clients count into it, and the job loop
    (dx_worker) sends its snapshot in every heartbeat. The scheduler
    declares the same families in a registry of its own to render the sums
    of its workers' snapshots (dx_cloud_metrics_declare). Actions are the
    provider's operation names (EC2 actions; ARM "METHOD resource type"),
    a bounded set: never a resource's name. */
#ifndef DX_CLOUD_METRICS_H
#define DX_CLOUD_METRICS_H

#include "dx_metrics.h"
#include "dx_retry.h"

/*  Declares the worker families in reg: dexter_cloud_calls_total,
    dexter_cloud_call_duration_seconds, dexter_cloud_retries_total,
    dexter_cloud_ratelimit_wait_seconds. 0, or -1 (a family could not be
    declared: memory, or already there). */
int dx_cloud_metrics_declare (dx_metrics_t *reg);

/*  The process's registry. NULL only when memory is short. */
dx_metrics_t *dx_cloud_metrics (void);

/*  One try of a call to provider's action that took seconds: ok, or
    failed with cls (outcome `throttled`, `transient` or `error`). */
void dx_cloud_metrics_call (const char *provider, const char *action, int ok,
                            dx_retry_class_t cls, double seconds);

/*  A failed try of action is tried again (after a backoff). */
void dx_cloud_metrics_retry (const char *provider, const char *action);

/*  A call waited seconds (> 0) for a token of a client-side rate limit. */
void dx_cloud_metrics_wait (const char *provider, double seconds);

#endif
