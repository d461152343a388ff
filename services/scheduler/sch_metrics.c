/*  sch_metrics: the scheduler's registry, its counters, and metrics.get. */
#include "sch_metrics.h"
#include "dx_cloud_metrics.h"
#include "dx_log.h"
#include "dx_metrics.h"
#include "dx_msg.h"
#include "dx_util.h"
#include "sch_redis.h"
#include "sch_store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const double s_redis_buckets [] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1
};

static struct {
    dx_metrics_t *registry;             /* the scheduler's own */
    dx_metrics_t *workers;              /* the workers' families, for their sums */
    dx_metric_t *clusters, *deployments, *finished, *steps, *queued, *running, *workers_up,
                *leases, *redis_rt, *redis_errors, *outbox, *cache;
} s;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_init (void)
{
    dx_metrics_t *r = s.registry = dx_metrics_new ();
    s.workers = dx_metrics_new ();
    if (s.workers)
        dx_cloud_metrics_declare (s.workers);
    s.clusters = dx_metrics_gauge (r, "dexter_scheduler_clusters",
        "Clusters in Redis (absent when Redis did not answer).", DX_NO_LABELS);
    s.deployments = dx_metrics_gauge (r, "dexter_scheduler_deployments",
        "Clusters by the state of their deployment (init, deploying, deployed, "
        "deploy_failed, destroying, destroyed, destroy_failed).", DX_LABELS ("state"));
    s.finished = dx_metrics_counter (r, "dexter_scheduler_deployments_finished_total",
        "Deployments that ended, by provider and the state they ended in.",
        DX_LABELS ("provider", "state"));
    s.steps = dx_metrics_counter (r, "dexter_scheduler_steps_total",
        "Step transitions, by provider, step kind and event "
        "(started, done, failed, retry, requeued).", DX_LABELS ("provider", "kind", "event"));
    s.queued = dx_metrics_gauge (r, "dexter_scheduler_jobs_queued",
        "Jobs of deployments in progress not started yet (waiting for their needs, "
        "a worker or their turn).", DX_NO_LABELS);
    s.running = dx_metrics_gauge (r, "dexter_scheduler_jobs_running",
        "Jobs handed to workers and not back yet.", DX_NO_LABELS);
    s.workers_up = dx_metrics_gauge (r, "dexter_scheduler_workers",
        "Live workers connected, by service.", DX_LABELS ("service"));
    s.leases = dx_metrics_counter (r, "dexter_scheduler_lease_expiries_total",
        "Running jobs whose lease ran out, by provider.", DX_LABELS ("provider"));
    s.redis_rt = dx_metrics_histogram (r, "dexter_scheduler_redis_roundtrip_seconds",
        "Round trips to Redis (a pipeline or a transaction).", DX_NO_LABELS,
        s_redis_buckets, sizeof s_redis_buckets / sizeof (double));
    s.redis_errors = dx_metrics_counter (r, "dexter_scheduler_redis_errors_total",
        "Redis errors, by kind (connection, reply).", DX_LABELS ("kind"));
    s.outbox = dx_metrics_gauge (r, "dexter_scheduler_redis_outbox",
        "Writes kept for Redis, which could not take them yet.", DX_NO_LABELS);
    s.cache = dx_metrics_counter (r, "dexter_scheduler_cache_lookups_total",
        "Read cache lookups, by result (hit, miss).", DX_LABELS ("result"));
    //  Every series that is always there, so a scrape shows it from the start
    dx_metric_series (s.redis_errors, "connection");
    dx_metric_series (s.redis_errors, "reply");
    dx_metric_series (s.cache, "hit");
    dx_metric_series (s.cache, "miss");
    dx_metric_only (s.redis_rt);
}

static void
s_ready (void)
{
    pthread_once (&s_once, s_init);
}

double
sch_metrics_clock (void)
{
    return dx_metrics_enabled ()? dx_metrics_clock (): 0;
}

void
sch_metrics_step (const char *provider, const char *kind, const char *event_type)
{
    static const char *const events [] = { "started", "done", "failed", "retry", "requeued" };
    if (!event_type || strncmp (event_type, "step.", 5) != 0)
        return;
    for (size_t i = 0; i < sizeof events / sizeof events [0]; i++)
        if (strcmp (event_type + 5, events [i]) == 0) {
            s_ready ();
            dx_metric_add (s.steps, 1, provider? provider: "", kind? kind: "", events [i]);
            return;
        }
}

void
sch_metrics_lease_expired (const char *provider)
{
    s_ready ();
    dx_metric_add (s.leases, 1, provider? provider: "");
}

void
sch_metrics_deployment_finished (const char *provider, const char *state)
{
    s_ready ();
    dx_metric_add (s.finished, 1, provider? provider: "", state? state: "");
}

void
sch_metrics_redis_roundtrip (double seconds)
{
    s_ready ();
    dx_series_observe (dx_metric_only (s.redis_rt), seconds);
}

void
sch_metrics_redis_error (const char *kind)
{
    s_ready ();
    dx_metric_add (s.redis_errors, 1, kind);
}

void
sch_metrics_cache (int hit)
{
    s_ready ();
    dx_metric_add (s.cache, 1, hit? "hit": "miss");
}

/*  ZCARD of the index, or -1 when Redis does not answer. */
static long long
s_clusters (sch_ctx_t *ctx)
{
    sch_redis_t *redis = sch_store_redis (ctx->store);
    if (!redis || !sch_redis_connected (redis))
        return -1;
    sch_batch_t batch = { 0 };
    sch_batch_cmd (&batch, "ZCARD", "dexter:clusters", NULL);
    redisReply **replies = NULL;
    long long count = -1;
    if (sch_redis_pipeline (redis, &batch, &replies) == 0) {
        if (replies [0]->type == REDIS_REPLY_INTEGER)
            count = replies [0]->integer;
        sch_redis_replies_free (replies, 1);
    }
    sch_batch_free (&batch);
    return count;
}

/*  The states: read now. */
static void
s_gauges (sch_ctx_t *ctx)
{
    long long clusters = ctx->store? s_clusters (ctx): -1;
    if (clusters >= 0)
        dx_series_set (dx_metric_only (s.clusters), (double) clusters);
    if (ctx->store)
        dx_series_set (dx_metric_only (s.outbox),
                       (double) sch_redis_kept (sch_store_redis (ctx->store)));
    sch_states_t *states = ctx->store? sch_store_states (ctx->store): NULL;
    if (sch_states_loaded (states))
        for (size_t i = 0; i < SCH_STATES_COUNT; i++)
            dx_metric_set (s.deployments, (double) sch_states_count (states, i),
                           sch_states_names [i]);
    sch_engine_stats_t stats = { 0 };
    if (ctx->engine)
        sch_engine_stats (ctx->engine, &stats);
    dx_series_set (dx_metric_only (s.queued), (double) stats.queued);
    dx_series_set (dx_metric_only (s.running), (double) stats.running);
    static const char *const services [] = { "aws", "azure", "vpn" };
    for (size_t i = 0; i < 3; i++)
        dx_metric_set (s.workers_up, ctx->broker
                       ? (double) sch_broker_workers (ctx->broker, services [i], NULL): 0,
                       services [i]);
}

json_t *
sch_metrics_get (sch_ctx_t *ctx, const json_t *request)
{
    s_ready ();
    s_gauges (ctx);
    char *text = dx_metrics_render (s.registry);
    json_t *sums = ctx->broker? sch_wmetrics_sums (sch_broker_metrics (ctx->broker),
                                                   dx_mono_ms ())
                              : json_object ();
    if (text && sums)
        text = dx_metrics_render_sums (s.workers, sums, text);
    json_decref (sums);
    if (!text)
        return dx_reply_error (request, DX_INTERNAL, NULL, "out of memory");
    json_t *reply = dx_reply_new (request, DX_OK, NULL);
    if (reply)
        json_object_set_new (reply, "text", json_string (text));
    free (text);
    return reply;
}
