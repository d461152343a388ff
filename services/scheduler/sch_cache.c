/*  sch_cache: kept reads of clusters and their memos. See sch_cache.h. */
#include "sch_cache.h"
#include "sch_metrics.h"
#include "dx_util.h"

#include <stdlib.h>
#include <czmq.h>

#define S_MEMOS 8                       /* memos kept beside one read */

/*  A kept read of one cluster. */
typedef struct {
    json_t *parts;                      /* part name -> value */
    unsigned what;                      /* the parts held, the caller's bits */
    int64_t expires;                    /* dx_mono_ms */
    uint64_t serial;                    /* names this kept read, never reused */
    json_t *memos;                      /* key -> text made from the parts */
} s_kept_t;

struct sch_cache {
    zhashx_t *kept;                     /* cluster name -> s_kept_t */
    size_t max;
    int64_t ttl_ms;
    uint64_t epoch;                     /* forgets, ever */
    uint64_t serials;                   /* the last serial given */
};

static void
s_kept_destroy (void **item_p)
{
    s_kept_t *kept = (s_kept_t *) *item_p;
    if (kept) {
        json_decref (kept->parts);
        json_decref (kept->memos);
        free (kept);
        *item_p = NULL;
    }
}

sch_cache_t *
sch_cache_new (size_t max, int64_t ttl_ms)
{
    sch_cache_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->kept = zhashx_new ();
    if (!self->kept) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->kept, s_kept_destroy);
    self->max = max;
    self->ttl_ms = ttl_ms;
    return self;
}

void
sch_cache_destroy (sch_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy (&(*self_p)->kept);
    free (*self_p);
    *self_p = NULL;
}

/*  The read kept of name while it is fresh; an expired one goes. */
static s_kept_t *
s_cache_fresh (sch_cache_t *self, const char *name)
{
    s_kept_t *kept = (s_kept_t *) zhashx_lookup (self->kept, name);
    if (kept && kept->expires <= dx_mono_ms ()) {
        zhashx_delete (self->kept, name);
        kept = NULL;
    }
    return kept;
}

/*  The read kept of name if it is still the read serial. */
static s_kept_t *
s_cache_serial (sch_cache_t *self, const char *name, uint64_t serial)
{
    s_kept_t *kept = serial? (s_kept_t *) zhashx_lookup (self->kept, name): NULL;
    return kept && kept->serial == serial? kept: NULL;
}

json_t *
sch_cache_get (sch_cache_t *self, const char *name, unsigned what, uint64_t *serial)
{
    s_kept_t *kept = s_cache_fresh (self, name);
    int hit = kept && (kept->what & what) == what;
    sch_metrics_cache (hit);
    if (!hit)
        return NULL;
    *serial = kept->serial;
    return json_incref (kept->parts);
}

uint64_t
sch_cache_epoch (sch_cache_t *self)
{
    return self->epoch;
}

uint64_t
sch_cache_put (sch_cache_t *self, const char *name, unsigned what, const json_t *parts,
               uint64_t epoch)
{
    if (epoch != self->epoch)
        return 0;
    s_kept_t *kept = s_cache_fresh (self, name);
    if (!kept) {
        if (zhashx_size (self->kept) >= self->max)
            zhashx_purge (self->kept);      /* full: start again */
        kept = (s_kept_t *) calloc (1, sizeof *kept);
        if (!kept)
            return 0;
        kept->parts = json_object ();
        kept->expires = dx_mono_ms () + self->ttl_ms;
        kept->serial = ++self->serials;
        if (!kept->parts || zhashx_insert (self->kept, name, kept)) {
            s_kept_destroy ((void **) &kept);
            return 0;
        }
    }
    if (json_object_update (kept->parts, (json_t *) parts) == 0)
        kept->what |= what;
    return kept->serial;
}

void
sch_cache_forget (sch_cache_t *self, const char *name)
{
    self->epoch++;
    zhashx_delete (self->kept, name);
}

void
sch_cache_purge (sch_cache_t *self)
{
    self->epoch++;
    zhashx_purge (self->kept);
}

json_t *
sch_cache_memo (sch_cache_t *self, const char *name, uint64_t serial, const char *key)
{
    s_kept_t *kept = s_cache_serial (self, name, serial);
    return kept? json_object_get (kept->memos, key): NULL;
}

void
sch_cache_memo_put (sch_cache_t *self, const char *name, uint64_t serial, const char *key,
                    json_t *text)
{
    s_kept_t *kept = s_cache_serial (self, name, serial);
    if (!kept || (!kept->memos && !(kept->memos = json_object ())))
        return;
    if (json_object_size (kept->memos) >= S_MEMOS)
        json_object_clear (kept->memos);
    json_object_set (kept->memos, key, text);
}
