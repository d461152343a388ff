/*  sch_list: the answer to cluster.list, built a slice at a time so that a
    list of every cluster (10,000 or more) never holds the scheduler's loop
    for long: the request loop (sch_server.c) gives the list being built a
    little time each turn, between other requests.

    A list is one page: the clusters after `after` (exclusive; absent: from
    the first), at most `limit` (absent: all), in name order, read a slice
    at a time (sch_read_list_next) into the answer's text, as the api asks
    for it. It answers every request for the same page that waited when it
    began: each came before any of it was read, so the answer holds every
    change made before each of them. A paged answer (limit given) says in
    `next` where the following page starts (null: this one is the last). */
#ifndef SCH_LIST_H
#define SCH_LIST_H

#include <stdint.h>
#include <jansson.h>
#include "sch_store.h"

typedef struct sch_list sch_list_t;

/*  INVALID when the request's `after` is not a cluster name or its
    `limit` not from 1 to DX_MSG_PAGE_MAX, else NULL. */
json_t *sch_list_check (const json_t *request);

/*  A list of the page request asks for, read from store (borrowed, must
    outlive it). NULL when out of memory. */
sch_list_t *sch_list_new (sch_store_t *store, const json_t *request);

/*  Frees the list; safe on NULL; sets *self_p to NULL. */
void sch_list_destroy (sch_list_t **self_p);

/*  1 if request asks for the page self lists. */
int sch_list_serves (const sch_list_t *self, const json_t *request);

/*  Reads slices until the list is complete or the monotonic clock
    (dx_mono_ms) reaches until; at least one slice, unless it is over
    already. 1 complete, 0 more to read, -1 failed. */
int sch_list_build (sch_list_t *self, int64_t until);

/*  The reply to request, one self serves, once the list is over: the
    page, or the failure that stopped it. Caller owns. */
json_t *sch_list_reply (sch_list_t *self, const json_t *request);

#endif
