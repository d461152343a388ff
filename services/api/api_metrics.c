/*  api_metrics: the api's registry and the text of GET /metrics. */
#include "api_metrics.h"
#include "dx_metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double s_buckets [] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5
};

static struct {
    dx_metrics_t *registry;
    dx_metric_t *requests, *durations, *connections, *timeouts, *scrape_ok;
} s;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_init (void)
{
    dx_metrics_t *r = s.registry = dx_metrics_new ();
    s.requests = dx_metrics_counter (r, "dexter_api_requests_total",
        "HTTP requests answered, by route template, method and status code.",
        DX_LABELS ("route", "method", "code"));
    s.durations = dx_metrics_histogram (r, "dexter_api_request_duration_seconds",
        "Time from a request's first line to its answer, by route template and method.",
        DX_LABELS ("route", "method"), s_buckets, sizeof s_buckets / sizeof (double));
    s.connections = dx_metrics_gauge (r, "dexter_api_open_connections",
        "HTTP connections open now.", DX_NO_LABELS);
    s.timeouts = dx_metrics_counter (r, "dexter_api_scheduler_timeouts_total",
        "Requests the scheduler did not answer within DEXTER_API_TIMEOUT_MS (answered 503).",
        DX_NO_LABELS);
    s.scrape_ok = dx_metrics_gauge (r, "dexter_api_scheduler_scrape_ok",
        "1 when this scrape holds the scheduler's and the workers' metrics, 0 when the "
        "scheduler did not answer.", DX_NO_LABELS);
    dx_metric_only (s.connections);
    dx_metric_only (s.timeouts);
}

bool
api_metrics_enabled (void)
{
    return dx_metrics_enabled ();
}

double
api_metrics_clock (void)
{
    return dx_metrics_enabled ()? dx_metrics_clock (): 0;
}

/*  The method as a label: one of a fixed set. */
static const char *
s_method (const char *method)
{
    static const char *const known [] = {
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", NULL
    };
    for (size_t i = 0; method && known [i]; i++)
        if (strcmp (method, known [i]) == 0)
            return known [i];
    return "other";
}

/*  A thread's handles of the series it counted into lately, by pattern,
    method and status: a request then costs no lookup, only its updates. */
typedef struct {
    const char *pattern, *method;
    int status;
    dx_series_t *count, *duration;
} s_slot_t;

#define S_SLOTS 64
static __thread s_slot_t s_slots [S_SLOTS];

void
api_metrics_request (const char *prefix, const char *pattern, const char *method, int status,
                     double seconds)
{
    if (!dx_metrics_enabled ())
        return;
    pthread_once (&s_once, s_init);
    const char *label = s_method (method);
    uintptr_t hash = ((uintptr_t) pattern >> 3) * 31u + ((uintptr_t) label >> 3) * 7u
                   + (uintptr_t) status;
    s_slot_t *slot = &s_slots [hash % S_SLOTS];
    if (slot->pattern != pattern || slot->method != label || slot->status != status
    ||  !slot->count || !slot->duration) {
        char route [128], code [16];
        snprintf (route, sizeof route, "%s%s", prefix, pattern);
        if (status >= 100 && status <= 599)
            snprintf (code, sizeof code, "%d", status);
        else
            strcpy (code, "aborted");
        *slot = (s_slot_t) {
            .pattern = pattern, .method = label, .status = status,
            .count = dx_metric_series (s.requests, route, label, code),
            .duration = dx_metric_series (s.durations, route, label)
        };
    }
    dx_series_add (slot->count, 1);
    dx_series_observe (slot->duration, seconds);
}

void
api_metrics_connection (int delta)
{
    if (!dx_metrics_enabled ())
        return;
    pthread_once (&s_once, s_init);
    dx_series_add (dx_metric_only (s.connections), delta);
}

void
api_metrics_scheduler_timeout (void)
{
    if (!dx_metrics_enabled ())
        return;
    pthread_once (&s_once, s_init);
    dx_series_add (dx_metric_only (s.timeouts), 1);
}

char *
api_metrics_text (const char *scheduler_text)
{
    pthread_once (&s_once, s_init);
    dx_series_set (dx_metric_only (s.scrape_ok), scheduler_text? 1: 0);
    char *own = dx_metrics_render (s.registry);
    if (!own || !scheduler_text)
        return own;
    char *text = NULL;
    if (asprintf (&text, "%s%s", own, scheduler_text) < 0)
        text = NULL;
    free (own);
    return text;
}
