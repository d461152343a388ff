/*  sch_cache: the read cache. What a read found of a cluster (its parts,
    as sch_read decodes them), kept to answer the next reads without
    Redis, and the memos made from it: text a caller built from a kept read
    (an answer's JSON), kept beside it so the next request served from the
    same read need not build it again.

    The scheduler is the only writer of Redis, so what a read found stays
    true until the scheduler itself changes that cluster: every change
    forgets the cluster first (sch_cache_forget), a lost connection forgets
    everything (sch_cache_purge), a read that a change may have overtaken
    is not kept (the epoch), and nothing is served more than ttl_ms after
    it was read, which bounds how long a hand edit in Redis (not supported:
    docs/redis.md) goes unseen. No Redis here: the caller reads and
    decides what may be kept (never secrets, jobs or resources).

    Parts are shared, not copied: what the cache hands out must never be
    changed, and what it is given must not be changed after. */
#ifndef SCH_CACHE_H
#define SCH_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define SCH_CACHE_MAX     512       /* clusters kept by the store's cache */
#define SCH_CACHE_TTL_MS  1000      /* longest the store's cache serves a read */

typedef struct sch_cache sch_cache_t;

/*  A cache of at most max clusters (full, it starts again empty), each
    served at most ttl_ms after it was read. NULL when out of memory. */
sch_cache_t *sch_cache_new (size_t max, int64_t ttl_ms);

/*  Frees the cache and all it keeps; safe on NULL; sets *self_p to NULL. */
void sch_cache_destroy (sch_cache_t **self_p);

/*  What is kept of cluster name when it holds every part of what (a bit
    mask of the caller's) and is fresh: the parts, an object of part name
    -> value (a new reference, caller decrefs, never changes it), with the
    serial that names this kept read in *serial. NULL when not. */
json_t *sch_cache_get (sch_cache_t *self, const char *name, unsigned what, uint64_t *serial);

/*  Counts what was forgotten, ever: a read made at one epoch may be kept
    only while it is still the epoch. */
uint64_t sch_cache_epoch (sch_cache_t *self);

/*  Keeps the members of parts (part name -> value, shared) as the parts
    what of cluster name, with what is kept of it already, unless the epoch
    is no longer epoch (a change was sent since the read). The serial of
    the kept read they are part of now, 0 when not kept. */
uint64_t sch_cache_put (sch_cache_t *self, const char *name, unsigned what,
                        const json_t *parts, uint64_t epoch);

/*  Forgets cluster name, with its memos (its change is about to be sent,
    whatever becomes of it). */
void sch_cache_forget (sch_cache_t *self, const char *name);

/*  Forgets everything (Redis may come back without its data, or was
    changed behind the scheduler's back). */
void sch_cache_purge (sch_cache_t *self);

/*  The memo under key of the kept read serial of cluster name: borrowed,
    valid until the next call on the cache; NULL when there is none, or
    that read is no longer the one kept. A memo must depend on nothing but
    the parts and the key. */
json_t *sch_cache_memo (sch_cache_t *self, const char *name, uint64_t serial, const char *key);

/*  Keeps text (a reference is taken) as the memo under key of the kept
    read serial of cluster name, if that is still the read kept. */
void sch_cache_memo_put (sch_cache_t *self, const char *name, uint64_t serial,
                         const char *key, json_t *text);

#endif
