/*  dx_metrics: counters, gauges and histograms, rendered in Prometheus's
    text exposition format 0.0.4.

    A registry holds families; a family has a name, a help text, a type and
    a fixed list of label names (at most DX_METRICS_MAX_LABELS). A series is
    one family's values for one tuple of label values, made on first use.
    Label values must come from a bounded set (route templates, step kinds,
    provider actions): never a cluster name, a path or an id.

        dx_metrics_t *reg = dx_metrics_new ();
        dx_metric_t *calls = dx_metrics_counter (reg, "dexter_cloud_calls_total",
            "Cloud API calls.", DX_LABELS ("provider", "action", "outcome"));
        dx_metric_add (calls, 1, "aws", "RunInstances", "ok");
        char *text = dx_metrics_render (reg);

    Families are declared before the registry is shared (start-up, one
    thread); after that every call is thread-safe: a family's lock guards
    its list of series, and values are atomics, so an update takes no lock
    once its series exists (dx_metric_series hands out the series itself,
    for hot paths).

    The cumulative series of a registry (counters and histograms) can also
    be taken as a flat JSON map, series text -> value ("snapshot"), and a
    sum of such maps rendered with the registry's families' names, types
    and help: that is how workers' metrics reach the scheduler's scrape
    (proto/PROTOCOL.md, `heartbeat`). */
#ifndef DX_METRICS_H
#define DX_METRICS_H

#include <stddef.h>
#include <jansson.h>

#define DX_METRICS_MAX_LABELS  4
#define DX_METRICS_MAX_BUCKETS 16

/*  The content type of dx_metrics_render's text. */
#define DX_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct dx_metrics dx_metrics_t;
typedef struct dx_metric dx_metric_t;
typedef struct dx_series dx_series_t;

typedef enum {
    DX_METRIC_COUNTER,
    DX_METRIC_GAUGE,
    DX_METRIC_HISTOGRAM
} dx_metric_type_t;

/*  A NULL-terminated list of label names, for the declarations below. */
#define DX_LABELS(...) ((const char *const []) { __VA_ARGS__, NULL })
#define DX_NO_LABELS   ((const char *const []) { NULL })

/*  0 when DEXTER_METRICS is "0" (read once): then no series is ever made
    (dx_metric_series answers NULL), so every update is a no-op and the
    registries render their headers only. The services' switch, for
    measuring what metrics cost (docs/metrics.md). */
int dx_metrics_enabled (void);

/*  Seconds of a monotonic clock, for durations. */
double dx_metrics_clock (void);

dx_metrics_t *dx_metrics_new (void);

/*  Frees the registry, its families and series; safe on NULL; sets
    *self_p to NULL. Pointers to its families and series die with it. */
void dx_metrics_destroy (dx_metrics_t **self_p);

/*  Declare a family; the registry owns it. name must match
    [a-zA-Z_:][a-zA-Z0-9_:]* and labels [a-zA-Z_][a-zA-Z0-9_]* (not `le`
    on a histogram, which renders it); both are borrowed and must outlive
    the registry (string literals). NULL when a name is invalid, taken,
    or more than DX_METRICS_MAX_LABELS labels are given. */
dx_metric_t *dx_metrics_counter (dx_metrics_t *self, const char *name, const char *help,
                                 const char *const *labels);
dx_metric_t *dx_metrics_gauge (dx_metrics_t *self, const char *name, const char *help,
                               const char *const *labels);
/*  buckets: nbuckets (1..DX_METRICS_MAX_BUCKETS) strictly increasing finite
    upper bounds; +Inf is added. Copied. */
dx_metric_t *dx_metrics_histogram (dx_metrics_t *self, const char *name, const char *help,
                                   const char *const *labels,
                                   const double *buckets, size_t nbuckets);

/*  The series of metric for the label values that follow (exactly as many
    strings as the family has labels, none NULL), made on first use with
    every value 0. Borrowed: it lives as long as the registry. NULL when
    metric is NULL or memory is short (the update functions take NULL and
    do nothing). */
dx_series_t *dx_metric_series (dx_metric_t *metric, ...);

/*  Counter or gauge: add v (a counter takes only v >= 0). */
void dx_series_add (dx_series_t *series, double v);
/*  Gauge: set to v. */
void dx_series_set (dx_series_t *series, double v);
/*  Histogram: count one observation of v. */
void dx_series_observe (dx_series_t *series, double v);
/*  Counter or gauge: the value now. */
double dx_series_value (const dx_series_t *series);

/*  The same, by label values (dx_metric_series, then the update). */
#define dx_metric_add(m, v, ...)     dx_series_add (dx_metric_series ((m), __VA_ARGS__), (v))
#define dx_metric_set(m, v, ...)     dx_series_set (dx_metric_series ((m), __VA_ARGS__), (v))
#define dx_metric_observe(m, v, ...) dx_series_observe (dx_metric_series ((m), __VA_ARGS__), (v))
/*  For a family without labels. */
dx_series_t *dx_metric_only (dx_metric_t *metric);

/*  Every family of the registry in the text format, in the order they were
    declared (# HELP, # TYPE, then each series in the order it was made;
    a family with no series yet shows its HELP and TYPE only). Caller
    frees. NULL when memory is short. */
char *dx_metrics_render (dx_metrics_t *self);

/*  The counters and histograms as a flat object: each sample's text
    (name and labels, exactly as rendered: `x_total{a="b"}`,
    `h_bucket{le="0.5"}`, `h_sum`, `h_count`) -> its value. Only series
    made so far. Caller owns; NULL when memory is short. */
json_t *dx_metrics_snapshot (dx_metrics_t *self);

/*  Renders sums (an object as dx_metrics_snapshot makes, e.g. the sum of
    several processes' snapshots) with the names, types and help of the
    families declared in self: for each family its header, then the
    samples of sums that belong to it, in sums' order. Samples of no
    family of self are left out. Appends to out (a text made by
    dx_metrics_render or NULL) and returns the new text (caller frees),
    or NULL when memory is short (out is freed then). */
char *dx_metrics_render_sums (dx_metrics_t *self, const json_t *sums, char *out);

/*  Adds every number of from to the same key of into (keys it lacks are
    appended, in from's order). 0, or -1 when memory is short. */
int dx_metrics_sum_into (json_t *into, const json_t *from);

#endif
