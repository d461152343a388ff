/*  dx_metrics: counters, gauges and histograms in Prometheus's text format.

    A value is a double kept in an atomic 64-bit word (its bits), added to
    with a compare-and-swap loop, so updates from any thread take no lock.
    A family's series are a list that only grows, so a series pointer stays
    valid: appended under the family's mutex, searched under it by each
    dx_metric_series (the hash of the label values compared first: a few
    hundred series at most, where a list of integers to compare is quick),
    and read without it by the renderers, through atomic links. */
#include "dx_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dx_series {
    dx_series_t *_Atomic next;          /* set once, under the family's lock */
    const dx_metric_t *family;
    uint64_t hash;                      /* of the label values, looked at first */
    char *values [DX_METRICS_MAX_LABELS];
    char *labels;                       /* `a="x",b="y"`, escaped; "" without labels */
    _Atomic uint64_t value;             /* counter, gauge: a double's bits */
    _Atomic uint64_t sum;               /* histogram: a double's bits */
    _Atomic uint64_t count;             /* histogram: observations */
    _Atomic uint64_t buckets [DX_METRICS_MAX_BUCKETS];  /* histogram, not cumulative */
};

struct dx_metric {
    dx_metric_t *next;
    const char *name;
    const char *help;
    dx_metric_type_t type;
    const char *labels [DX_METRICS_MAX_LABELS];
    size_t nlabels;
    double bounds [DX_METRICS_MAX_BUCKETS];
    size_t nbounds;
    pthread_mutex_t lock;               /* the series list */
    dx_series_t *series, *last;
};

struct dx_metrics {
    dx_metric_t *families, *last;
};

static uint64_t
s_bits (double v)
{
    uint64_t bits;
    memcpy (&bits, &v, sizeof bits);
    return bits;
}

static double
s_double (uint64_t bits)
{
    double v;
    memcpy (&v, &bits, sizeof v);
    return v;
}

static void
s_atomic_add (_Atomic uint64_t *word, double v)
{
    uint64_t old = atomic_load_explicit (word, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit (word, &old, s_bits (s_double (old) + v),
                                                   memory_order_relaxed, memory_order_relaxed))
        ;
}

static int s_enabled = 1;
static pthread_once_t s_enabled_once = PTHREAD_ONCE_INIT;

static void
s_enabled_read (void)
{
    const char *value = getenv ("DEXTER_METRICS");
    s_enabled = !(value && strcmp (value, "0") == 0);
}

int
dx_metrics_enabled (void)
{
    pthread_once (&s_enabled_once, s_enabled_read);
    return s_enabled;
}

double
dx_metrics_clock (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

dx_metrics_t *
dx_metrics_new (void)
{
    return calloc (1, sizeof (dx_metrics_t));
}

void
dx_metrics_destroy (dx_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dx_metric_t *family = (*self_p)->families;
    while (family) {
        dx_metric_t *next_family = family->next;
        dx_series_t *series = family->series;
        while (series) {
            dx_series_t *next = atomic_load (&series->next);
            for (size_t i = 0; i < family->nlabels; i++)
                free (series->values [i]);
            free (series->labels);
            free (series);
            series = next;
        }
        pthread_mutex_destroy (&family->lock);
        free (family);
        family = next_family;
    }
    free (*self_p);
    *self_p = NULL;
}

static int
s_valid_name (const char *name, int colons)
{
    if (!name || !*name)
        return 0;
    for (const char *p = name; *p; p++) {
        int letter = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'
                  || (colons && *p == ':');
        if (!letter && !(p > name && *p >= '0' && *p <= '9'))
            return 0;
    }
    return 1;
}

static dx_metric_t *
s_declare (dx_metrics_t *self, const char *name, const char *help, dx_metric_type_t type,
           const char *const *labels)
{
    if (!self || !s_valid_name (name, 1) || !help || !labels)
        return NULL;
    for (dx_metric_t *family = self->families; family; family = family->next)
        if (strcmp (family->name, name) == 0)
            return NULL;
    dx_metric_t *family = calloc (1, sizeof *family);
    if (!family)
        return NULL;
    family->name = name;
    family->help = help;
    family->type = type;
    for (; labels [family->nlabels]; family->nlabels++) {
        const char *label = labels [family->nlabels];
        if (family->nlabels == DX_METRICS_MAX_LABELS || !s_valid_name (label, 0)
        ||  (type == DX_METRIC_HISTOGRAM && strcmp (label, "le") == 0)) {
            free (family);
            return NULL;
        }
        family->labels [family->nlabels] = label;
    }
    pthread_mutex_init (&family->lock, NULL);
    if (self->last)
        self->last->next = family;
    else
        self->families = family;
    self->last = family;
    return family;
}

dx_metric_t *
dx_metrics_counter (dx_metrics_t *self, const char *name, const char *help,
                    const char *const *labels)
{
    return s_declare (self, name, help, DX_METRIC_COUNTER, labels);
}

dx_metric_t *
dx_metrics_gauge (dx_metrics_t *self, const char *name, const char *help,
                  const char *const *labels)
{
    return s_declare (self, name, help, DX_METRIC_GAUGE, labels);
}

dx_metric_t *
dx_metrics_histogram (dx_metrics_t *self, const char *name, const char *help,
                      const char *const *labels, const double *buckets, size_t nbuckets)
{
    if (!buckets || nbuckets < 1 || nbuckets > DX_METRICS_MAX_BUCKETS)
        return NULL;
    for (size_t i = 0; i < nbuckets; i++)
        if (!isfinite (buckets [i]) || (i > 0 && buckets [i] <= buckets [i - 1]))
            return NULL;
    dx_metric_t *family = s_declare (self, name, help, DX_METRIC_HISTOGRAM, labels);
    if (family) {
        memcpy (family->bounds, buckets, nbuckets * sizeof *buckets);
        family->nbounds = nbuckets;
    }
    return family;
}

//  ---------------------------------------------------------------------
//  Text

/*  A growing text; on a failed allocation it is freed and stays NULL. */
typedef struct {
    char *data;
    size_t len, size;
} s_text_t;

static void
s_append (s_text_t *text, const char *bytes, size_t len)
{
    if (!text->data && text->size)
        return;                         /* failed before */
    if (text->len + len + 1 > text->size) {
        size_t size = text->size? text->size: 1024;
        while (size < text->len + len + 1)
            size *= 2;
        char *data = realloc (text->data, size);
        if (!data) {
            free (text->data);
            text->data = NULL;
            text->size = 1;
            return;
        }
        text->data = data;
        text->size = size;
    }
    memcpy (text->data + text->len, bytes, len);
    text->len += len;
    text->data [text->len] = '\0';
}

static void
s_puts (s_text_t *text, const char *s)
{
    s_append (text, s, strlen (s));
}

/*  s escaped for a label value (\\, \", \n) or, with quotes 0, for a
    HELP line (\\, \n). */
static void
s_escaped (s_text_t *text, const char *s, int quotes)
{
    for (; *s; s++) {
        if (*s == '\\')
            s_puts (text, "\\\\");
        else
        if (*s == '\n')
            s_puts (text, "\\n");
        else
        if (quotes && *s == '"')
            s_puts (text, "\\\"");
        else
            s_append (text, s, 1);
    }
}

/*  The shortest text of v that reads back as the same double. */
static void
s_shortest (char *buf, size_t size, double v)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf (buf, size, "%.*g", digits, v);
        if (strtod (buf, NULL) == v)
            return;
    }
}

/*  A sample value or bucket bound as Prometheus reads it: integers
    without a fraction, others as their shortest exact text, +Inf, -Inf,
    NaN. */
static void
s_number (char *buf, size_t size, double v)
{
    if (isnan (v))
        snprintf (buf, size, "NaN");
    else
    if (isinf (v))
        snprintf (buf, size, v > 0? "+Inf": "-Inf");
    else
    if (v == floor (v) && fabs (v) < 9007199254740992.0)
        snprintf (buf, size, "%.0f", v);
    else
        s_shortest (buf, size, v);
}

/*  One sample line: name suffix {labels[,extra]} value. */
static void
s_sample (s_text_t *text, const char *name, const char *suffix, const char *labels,
          const char *extra, double v)
{
    char number [64];
    s_puts (text, name);
    s_puts (text, suffix);
    if (*labels || extra) {
        s_puts (text, "{");
        s_puts (text, labels);
        if (extra) {
            if (*labels)
                s_puts (text, ",");
            s_puts (text, extra);
        }
        s_puts (text, "}");
    }
    s_puts (text, " ");
    s_number (number, sizeof number, v);
    s_puts (text, number);
    s_puts (text, "\n");
}

static void
s_header (s_text_t *text, const dx_metric_t *family)
{
    static const char *const types [] = { "counter", "gauge", "histogram" };
    s_puts (text, "# HELP ");
    s_puts (text, family->name);
    s_puts (text, " ");
    s_escaped (text, family->help, 0);
    s_puts (text, "\n# TYPE ");
    s_puts (text, family->name);
    s_puts (text, " ");
    s_puts (text, types [family->type]);
    s_puts (text, "\n");
}

/*  Calls fn for each sample of series, cumulative buckets first. */
typedef void (s_sample_fn) (void *arg, const dx_metric_t *family, const char *suffix,
                            const char *labels, const char *extra, double v);

static void
s_samples (const dx_metric_t *family, dx_series_t *series, s_sample_fn *fn, void *arg)
{
    if (family->type != DX_METRIC_HISTOGRAM) {
        fn (arg, family, "", series->labels, NULL, s_double (atomic_load (&series->value)));
        return;
    }
    //  Observations made while this reads may show in a bucket and not in
    //  the count read before it: no bucket is shown above the count.
    uint64_t count = atomic_load (&series->count);
    uint64_t cumulative = 0;
    char extra [64], bound [40];
    for (size_t i = 0; i < family->nbounds; i++) {
        cumulative += atomic_load (&series->buckets [i]);
        if (cumulative > count)
            cumulative = count;
        s_number (bound, sizeof bound, family->bounds [i]);
        snprintf (extra, sizeof extra, "le=\"%s\"", bound);
        fn (arg, family, "_bucket", series->labels, extra, (double) cumulative);
    }
    fn (arg, family, "_bucket", series->labels, "le=\"+Inf\"", (double) count);
    fn (arg, family, "_sum", series->labels, NULL, s_double (atomic_load (&series->sum)));
    fn (arg, family, "_count", series->labels, NULL, (double) count);
}

static void
s_render_sample (void *arg, const dx_metric_t *family, const char *suffix,
                 const char *labels, const char *extra, double v)
{
    s_sample (arg, family->name, suffix, labels, extra, v);
}

/*  The family's first series; the list only grows and its links are
    atomics, so what follows it may be read without the lock. */
static dx_series_t *
s_first (dx_metric_t *family)
{
    pthread_mutex_lock (&family->lock);
    dx_series_t *series = family->series;
    pthread_mutex_unlock (&family->lock);
    return series;
}

char *
dx_metrics_render (dx_metrics_t *self)
{
    s_text_t text = { NULL, 0, 0 };
    s_puts (&text, "");
    for (dx_metric_t *family = self? self->families: NULL; family; family = family->next) {
        s_header (&text, family);
        for (dx_series_t *series = s_first (family); series; series = atomic_load (&series->next))
            s_samples (family, series, s_render_sample, &text);
    }
    return text.data;
}

//  ---------------------------------------------------------------------
//  Series

/*  FNV-1a of the label values, each with its terminating NUL. */
static uint64_t
s_hash (const char *const *values, size_t count)
{
    uint64_t hash = 14695981039346656037ull;
    for (size_t i = 0; i < count; i++)
        for (const char *p = values [i];; p++) {
            hash = (hash ^ (unsigned char) *p) * 1099511628211ull;
            if (!*p)
                break;
        }
    return hash;
}

static dx_series_t *
s_series_new (const dx_metric_t *family, const char *const *values, uint64_t hash)
{
    dx_series_t *series = calloc (1, sizeof *series);
    if (!series)
        return NULL;
    series->family = family;
    series->hash = hash;
    s_text_t labels = { NULL, 0, 0 };
    s_puts (&labels, "");
    for (size_t i = 0; i < family->nlabels; i++) {
        series->values [i] = strdup (values [i]);
        if (i)
            s_puts (&labels, ",");
        s_puts (&labels, family->labels [i]);
        s_puts (&labels, "=\"");
        s_escaped (&labels, values [i], 1);
        s_puts (&labels, "\"");
    }
    series->labels = labels.data;
    int ok = series->labels != NULL;
    for (size_t i = 0; i < family->nlabels; i++)
        ok = ok && series->values [i];
    if (!ok) {
        for (size_t i = 0; i < family->nlabels; i++)
            free (series->values [i]);
        free (series->labels);
        free (series);
        return NULL;
    }
    return series;
}

dx_series_t *
dx_metric_series (dx_metric_t *family, ...)
{
    if (!family || !dx_metrics_enabled ())
        return NULL;
    const char *values [DX_METRICS_MAX_LABELS];
    va_list args;
    va_start (args, family);
    for (size_t i = 0; i < family->nlabels; i++) {
        values [i] = va_arg (args, const char *);
        if (!values [i])
            values [i] = "";
    }
    va_end (args);
    uint64_t hash = s_hash (values, family->nlabels);

    pthread_mutex_lock (&family->lock);
    dx_series_t *series = family->series;
    for (; series; series = atomic_load (&series->next)) {
        if (series->hash != hash)
            continue;
        size_t i = 0;
        while (i < family->nlabels && strcmp (series->values [i], values [i]) == 0)
            i++;
        if (i == family->nlabels)
            break;
    }
    if (!series) {
        series = s_series_new (family, values, hash);
        if (series) {
            if (family->last)
                atomic_store (&family->last->next, series);
            else
                family->series = series;
            family->last = series;
        }
    }
    pthread_mutex_unlock (&family->lock);
    return series;
}

dx_series_t *
dx_metric_only (dx_metric_t *family)
{
    return dx_metric_series (family);
}

void
dx_series_add (dx_series_t *series, double v)
{
    if (series)
        s_atomic_add (&series->value, v);
}

void
dx_series_set (dx_series_t *series, double v)
{
    if (series)
        atomic_store_explicit (&series->value, s_bits (v), memory_order_relaxed);
}

double
dx_series_value (const dx_series_t *series)
{
    return series? s_double (atomic_load ((_Atomic uint64_t *) &series->value)): 0;
}

void
dx_series_observe (dx_series_t *series, double v)
{
    if (!series || series->family->type != DX_METRIC_HISTOGRAM)
        return;
    const dx_metric_t *family = series->family;
    size_t i = 0;
    while (i < family->nbounds && v > family->bounds [i])
        i++;
    if (i < family->nbounds)
        atomic_fetch_add_explicit (&series->buckets [i], 1, memory_order_relaxed);
    s_atomic_add (&series->sum, v);
    atomic_fetch_add_explicit (&series->count, 1, memory_order_relaxed);
}

//  ---------------------------------------------------------------------
//  Snapshots and their sums

static void
s_snapshot_sample (void *arg, const dx_metric_t *family, const char *suffix,
                   const char *labels, const char *extra, double v)
{
    s_text_t key = { NULL, 0, 0 };
    s_puts (&key, family->name);
    s_puts (&key, suffix);
    if (*labels || extra) {
        s_puts (&key, "{");
        s_puts (&key, labels);
        if (extra && *labels)
            s_puts (&key, ",");
        if (extra)
            s_puts (&key, extra);
        s_puts (&key, "}");
    }
    json_t **snapshot = arg;
    json_t *value = v == floor (v) && fabs (v) < 9007199254740992.0
                  ? json_integer ((json_int_t) v): json_real (v);
    if (!*snapshot || !key.data || !value
    ||  json_object_set_new (*snapshot, key.data, value)) {
        json_decref (*snapshot);
        *snapshot = NULL;
    }
    free (key.data);
}

json_t *
dx_metrics_snapshot (dx_metrics_t *self)
{
    json_t *snapshot = json_object ();
    for (dx_metric_t *family = self? self->families: NULL; family; family = family->next) {
        if (family->type == DX_METRIC_GAUGE)
            continue;
        for (dx_series_t *series = s_first (family); series && snapshot;
             series = atomic_load (&series->next))
            s_samples (family, series, s_snapshot_sample, &snapshot);
    }
    return snapshot;
}

int
dx_metrics_sum_into (json_t *into, const json_t *from)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) from, key, value) {
        if (!json_is_number (value))
            continue;
        json_t *have = json_object_get (into, key);
        double sum = json_number_value (value) + (json_is_number (have)? json_number_value (have): 0);
        json_t *number = sum == floor (sum) && fabs (sum) < 9007199254740992.0
                       ? json_integer ((json_int_t) sum): json_real (sum);
        if (!number || json_object_set_new (into, key, number))
            return -1;
    }
    return 0;
}

/*  1 if the sample text key is one of family's: its name, or for a
    histogram its name with _bucket, _sum or _count, then `{` or the end. */
static int
s_belongs (const dx_metric_t *family, const char *key)
{
    size_t len = strlen (family->name);
    if (strncmp (key, family->name, len) != 0)
        return 0;
    const char *rest = key + len;
    if (family->type == DX_METRIC_HISTOGRAM) {
        static const char *const suffixes [] = { "_bucket", "_sum", "_count" };
        for (size_t i = 0; i < 3; i++)
            if (strncmp (rest, suffixes [i], strlen (suffixes [i])) == 0) {
                rest += strlen (suffixes [i]);
                return *rest == '{' || *rest == '\0';
            }
        return 0;
    }
    return *rest == '{' || *rest == '\0';
}

char *
dx_metrics_render_sums (dx_metrics_t *self, const json_t *sums, char *out)
{
    s_text_t text = { out, out? strlen (out): 0, out? strlen (out) + 1: 0 };
    s_puts (&text, "");
    char number [64];
    for (dx_metric_t *family = self? self->families: NULL; family; family = family->next) {
        if (family->type == DX_METRIC_GAUGE)
            continue;
        s_header (&text, family);
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *) sums, key, value) {
            if (!json_is_number (value) || !s_belongs (family, key))
                continue;
            s_puts (&text, key);
            s_puts (&text, " ");
            s_number (number, sizeof number, json_number_value (value));
            s_puts (&text, number);
            s_puts (&text, "\n");
        }
    }
    return text.data;
}
