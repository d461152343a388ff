/*  sch_wmetrics: the workers' cumulative samples, by worker name. */
#include "sch_wmetrics.h"
#include "dx_log.h"
#include "dx_metrics.h"

#include <czmq.h>
#include <math.h>
#include <string.h>

typedef struct {
    json_t *base;                       /* counted before the worker's last restart */
    json_t *last;                       /* its last heartbeat's samples */
    int64_t heard;                      /* dx_mono_ms */
} s_worker_t;

struct sch_wmetrics {
    zhashx_t *workers;                  /* name -> s_worker_t */
    json_t *departed;                   /* the folded workers' sums */
};

static void
s_worker_destroy (void **item_p)
{
    s_worker_t *worker = (s_worker_t *) *item_p;
    if (worker) {
        json_decref (worker->base);
        json_decref (worker->last);
        free (worker);
        *item_p = NULL;
    }
}

sch_wmetrics_t *
sch_wmetrics_new (void)
{
    sch_wmetrics_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->workers = zhashx_new ();
    self->departed = json_object ();
    if (!self->workers || !self->departed) {
        sch_wmetrics_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->workers, s_worker_destroy);
    return self;
}

void
sch_wmetrics_destroy (sch_wmetrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy (&(*self_p)->workers);
    json_decref ((*self_p)->departed);
    free (*self_p);
    *self_p = NULL;
}

static int
s_valid (const json_t *metrics)
{
    if (!json_is_object (metrics) || json_object_size (metrics) > SCH_WMETRICS_MAX_KEYS)
        return 0;
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) metrics, key, value) {
        if (strncmp (key, "dexter_", 7) != 0 || strlen (key) > SCH_WMETRICS_MAX_KEY
        ||  !json_is_number (value) || !isfinite (json_number_value (value))
        ||  json_number_value (value) < 0)
            return 0;
    }
    return 1;
}

/*  1 when now holds less than last: a sample went down or is missing. */
static int
s_reset (const json_t *last, const json_t *now)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) last, key, value) {
        const json_t *fresh = json_object_get (now, key);
        if (!fresh || json_number_value (fresh) < json_number_value (value))
            return 1;
    }
    return 0;
}

int
sch_wmetrics_update (sch_wmetrics_t *self, const char *name, const json_t *metrics,
                     int64_t now_ms)
{
    if (!s_valid (metrics)) {
        dx_debug ("worker %s sent metrics not as the protocol says; ignored", name);
        return -1;
    }
    s_worker_t *worker = (s_worker_t *) zhashx_lookup (self->workers, name);
    if (!worker) {
        worker = calloc (1, sizeof *worker);
        if (!worker || !(worker->base = json_object ())) {
            free (worker);
            return -1;
        }
        zhashx_insert (self->workers, name, worker);
    }
    if (worker->last && s_reset (worker->last, metrics)) {
        dx_info ("worker %s counts from zero again (it restarted); its totals are kept", name);
        if (dx_metrics_sum_into (worker->base, worker->last))
            return -1;
    }
    json_t *copy = json_deep_copy (metrics);
    if (!copy)
        return -1;
    json_decref (worker->last);
    worker->last = copy;
    worker->heard = now_ms;
    return 0;
}

json_t *
sch_wmetrics_sums (sch_wmetrics_t *self, int64_t now_ms)
{
    zlistx_t *names = zhashx_keys (self->workers);
    if (!names)
        return NULL;
    for (char *name = (char *) zlistx_first (names); name; name = (char *) zlistx_next (names)) {
        s_worker_t *worker = (s_worker_t *) zhashx_lookup (self->workers, name);
        if (now_ms - worker->heard < SCH_WMETRICS_KEEP_MS)
            continue;
        if (dx_metrics_sum_into (self->departed, worker->base)
        ||  (worker->last && dx_metrics_sum_into (self->departed, worker->last))) {
            zlistx_destroy (&names);
            return NULL;
        }
        zhashx_delete (self->workers, name);
    }
    zlistx_destroy (&names);

    json_t *sums = json_deep_copy (self->departed);
    for (s_worker_t *worker = (s_worker_t *) zhashx_first (self->workers); worker && sums;
         worker = (s_worker_t *) zhashx_next (self->workers))
        if (dx_metrics_sum_into (sums, worker->base)
        ||  (worker->last && dx_metrics_sum_into (sums, worker->last))) {
            json_decref (sums);
            sums = NULL;
        }
    return sums;
}
