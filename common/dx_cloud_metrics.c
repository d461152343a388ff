/*  dx_cloud_metrics: the worker families and the process's registry. */
#include "dx_cloud_metrics.h"

#include <pthread.h>

static const double s_call_buckets [] = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};
static const double s_wait_buckets [] = {
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};

static dx_metrics_t *s_registry;
static dx_metric_t *s_calls, *s_durations, *s_retries, *s_waits;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

/*  Declares the families in reg; the pointers go to the caller's slots. */
static int
s_declare (dx_metrics_t *reg, dx_metric_t **calls, dx_metric_t **durations,
           dx_metric_t **retries, dx_metric_t **waits)
{
    *calls = dx_metrics_counter (reg, "dexter_cloud_calls_total",
        "Tries of cloud API calls by the workers, by provider, action and outcome "
        "(ok, throttled, transient, error).",
        DX_LABELS ("provider", "action", "outcome"));
    *durations = dx_metrics_histogram (reg, "dexter_cloud_call_duration_seconds",
        "Duration of one try of a cloud API call, by provider.",
        DX_LABELS ("provider"), s_call_buckets, sizeof s_call_buckets / sizeof (double));
    *retries = dx_metrics_counter (reg, "dexter_cloud_retries_total",
        "Failed tries of cloud API calls tried again after a backoff, by provider and action.",
        DX_LABELS ("provider", "action"));
    *waits = dx_metrics_histogram (reg, "dexter_cloud_ratelimit_wait_seconds",
        "Waits of cloud API calls for a token of the worker's client-side rate limit, "
        "by provider.",
        DX_LABELS ("provider"), s_wait_buckets, sizeof s_wait_buckets / sizeof (double));
    return *calls && *durations && *retries && *waits? 0: -1;
}

int
dx_cloud_metrics_declare (dx_metrics_t *reg)
{
    dx_metric_t *calls, *durations, *retries, *waits;
    return s_declare (reg, &calls, &durations, &retries, &waits);
}

static void
s_init (void)
{
    s_registry = dx_metrics_new ();
    if (s_registry)
        s_declare (s_registry, &s_calls, &s_durations, &s_retries, &s_waits);
}

dx_metrics_t *
dx_cloud_metrics (void)
{
    pthread_once (&s_once, s_init);
    return s_registry;
}

void
dx_cloud_metrics_call (const char *provider, const char *action, int ok,
                       dx_retry_class_t cls, double seconds)
{
    pthread_once (&s_once, s_init);
    const char *outcome = ok? "ok"
                        : cls == DX_RETRY_THROTTLED? "throttled"
                        : cls == DX_RETRY_TRANSIENT? "transient": "error";
    dx_metric_add (s_calls, 1, provider, action, outcome);
    dx_metric_observe (s_durations, seconds, provider);
}

void
dx_cloud_metrics_retry (const char *provider, const char *action)
{
    pthread_once (&s_once, s_init);
    dx_metric_add (s_retries, 1, provider, action);
}

void
dx_cloud_metrics_wait (const char *provider, double seconds)
{
    pthread_once (&s_once, s_init);
    dx_metric_observe (s_waits, seconds, provider);
}
