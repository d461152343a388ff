/*  sch_read: the store's reads, and the decoding of what Redis holds into
    the objects handlers and the engine use (the keys: sch_store.h and
    docs/redis.md).

    One-shot reads send their commands in one pipelined round trip and
    always read Redis: changes and the engine use them. The read batch
    serves the GET handlers: the reads of many requests share one round
    trip, and loads of a cluster's spec and deployment record are served
    from the read cache (sch_cache) while it holds them.

    A read never changes anything, and nothing read is plaintext secret:
    secrets are read sealed, as stored. Failures are the connection's:
    a function returning a pointer gives NULL, one returning int -1, and
    sch_redis_status / sch_redis_error say why (sch_store_error_reply
    makes the reply). */
#ifndef SCH_READ_H
#define SCH_READ_H

#include <stdint.h>
#include <jansson.h>
#include "sch_redis.h"
#include "sch_cache.h"

typedef struct sch_read sch_read_t;

/*  Reads on redis, kept in cache; both borrowed, and must outlive it.
    NULL when out of memory. */
sch_read_t *sch_read_new (sch_redis_t *redis, sch_cache_t *cache);

/*  Forgets the read batch and frees; safe on NULL; sets *self_p to NULL. */
void sch_read_destroy (sch_read_t **self_p);


//  ---------------------------------------------------------------------
//  One-shot reads

/*  What sch_read_load reads, or-ed together. */
#define SCH_LOAD_CLUSTER     0x01
#define SCH_LOAD_CONFIG      0x02
#define SCH_LOAD_SECRETS     0x04
#define SCH_LOAD_GROUPS      0x08
#define SCH_LOAD_DEPLOYMENT  0x10
#define SCH_LOAD_JOBS        0x20
#define SCH_LOAD_RESOURCES   0x40

/*  Reads the parts of cluster name that `what` asks for, in one round trip,
    into a new object (caller owns) with these members:
      cluster:    {name, provider, type, created_at, updated_at} or null
      config:     the typed config object (masters a number, the
                  <secret>_fingerprint fields, updated_at) or null
      secrets:    {secret name: sealed value}
      groups:     {group name: group object}
      deployment: {state, command, generation, observed_generation,
                  parallelism, steps_done, steps_total, current, waiting,
                  last_error, created_at, updated_at, accessip}, numbers as
                  numbers, "" as null; null if there is no record
      jobs:       {step id: job record} of the current plan
      resources:  {resource key: resource} as the workers reported them
    Members not asked for are absent. NULL on failure. */
json_t *sch_read_load (sch_read_t *self, const char *name, unsigned what);

/*  Every cluster, sorted by name, as [{name, provider, type, state,
    created_at}] (caller owns): the list below, read whole. NULL on
    failure. */
json_t *sch_read_list (sch_read_t *self);

/*  One generation's snapshot of the spec, as stored, into *snapshot_p
    (caller owns; NULL when there is none). */
int sch_read_snapshot (sch_read_t *self, const char *name, int64_t generation,
                       json_t **snapshot_p);

/*  The sealed deployment credentials into *sealed_p (caller frees; NULL
    when there are none). */
int sch_read_credentials (sch_read_t *self, const char *name, char **sealed_p);


//  ---------------------------------------------------------------------
//  The list of clusters, a slice at a time
//
//  A list may name every cluster (10,000 or more): it is read in slices,
//  each one round trip that reads the rows (the cluster hash, which
//  mirrors the deployment state) of the names the slice before found in
//  the index, and the next names, in name order (ZRANGE BYLEX). So no
//  read holds the connection for long, and what a slice finds is what
//  Redis holds at that moment: a cluster deleted meanwhile is left out.

typedef struct sch_read_list sch_read_list_t;

/*  A list of the clusters named after `after` (NULL or "": from the
    first), at most limit of them (0: all). NULL when out of memory. */
sch_read_list_t *sch_read_list_new (const char *after, size_t limit);

/*  Frees the list; safe on NULL; sets *self_p to NULL. */
void sch_read_list_destroy (sch_read_list_t **self_p);

/*  Reads the next slice of list, at most count names, and appends their
    clusters to entries as {name, provider, type, state, created_at}. 1
    when the list is complete, 0 when more is to read, -1 on failure. */
int sch_read_list_next (sch_read_t *self, sch_read_list_t *list, size_t count,
                        json_t *entries);

/*  Once the list is complete: the name after which the clusters beyond
    its limit start (its last), or NULL when there are none. Borrowed. */
const char *sch_read_list_beyond (const sch_read_list_t *list);


//  ---------------------------------------------------------------------
//  The read batch: the reads of many requests in one round trip
//
//  sch_read_queue_* appends a read to the batch and returns its ticket
//  (>= 0, consecutive in queue order; -1 when out of memory); nothing is
//  sent. sch_read_flush sends every queued read in one pipelined write and
//  reads all the replies (-1, UNAVAILABLE when Redis is down: every read
//  of the batch failed). sch_read_*_result then decodes one ticket's
//  replies exactly as the one-shot read would (caller owns; NULL on
//  failure), and sch_read_reset forgets the batch. Reads have no effect,
//  so the order within a batch is free; the caller flushes before any
//  change so that a read sees every change requested before it.
//
//  Queued loads of the parts CLUSTER, CONFIG, GROUPS and DEPLOYMENT only
//  are served from the read cache while it holds them, and kept there
//  when Redis was read. The object sch_read_load_result returns is the
//  caller's, but the parts in it may be shared with the cache: a caller
//  may add or replace members of the object, never change a part.

int sch_read_queue_load (sch_read_t *self, const char *name, unsigned what);

/*  The events of the cluster's stream after id `after` (exclusive; NULL
    from the start), at most count, oldest first, as [{id, time, type,
    ...}]. */
int sch_read_queue_events (sch_read_t *self, const char *name, const char *after,
                           int64_t count);

int sch_read_flush (sch_read_t *self);

json_t *sch_read_load_result (sch_read_t *self, int ticket);
json_t *sch_read_events_result (sch_read_t *self, int ticket);

void sch_read_reset (sch_read_t *self);

/*  The memo under key (sch_cache.h) of the kept read the ticket's load is,
    NULL when there is none or the load is not the read the cache keeps;
    sch_read_memo_put keeps text as that memo, after sch_read_load_result. */
json_t *sch_read_memo (sch_read_t *self, int ticket, const char *key);
void sch_read_memo_put (sch_read_t *self, int ticket, const char *key, json_t *text);

#endif
