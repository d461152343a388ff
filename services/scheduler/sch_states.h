/*  sch_states: every cluster's deployment state, by name, and how many
    clusters are in each state: the gauge dexter_scheduler_deployments
    (sch_metrics.c), kept as the store writes, so a scrape reads counts,
    never the clusters (there may be 10,000 or more).

    The store (sch_store.c) sets a cluster's state once Redis has the
    change that writes it (or keeps it for Redis: memory may be ahead of
    Redis, never behind), and drops a deleted cluster. The whole table is
    loaded from the list of clusters the engine reads when the scheduler
    starts, and again whenever it reads it to recheck (a write whose answer
    was lost may have been made): until the first load the counts are
    unknown. */
#ifndef SCH_STATES_H
#define SCH_STATES_H

#include <stddef.h>
#include <jansson.h>

/*  The deployment states (docs/redis.md), the gauge's label values. */
#define SCH_STATES_COUNT 7
extern const char *const sch_states_names [SCH_STATES_COUNT];

typedef struct sch_states sch_states_t;

/*  An empty table, not loaded. NULL when out of memory. */
sch_states_t *sch_states_new (void);

/*  Frees the table; safe on NULL; sets *self_p to NULL. */
void sch_states_destroy (sch_states_t **self_p);

/*  Cluster name is now in state (one of sch_states_names; another is
    counted nowhere). */
void sch_states_set (sch_states_t *self, const char *name, const char *state);

/*  Cluster name is gone. */
void sch_states_drop (sch_states_t *self, const char *name);

/*  Replaces the table with the clusters of a list (sch_read_list: objects
    with `name` and `state`, or the state of their `deployment`). 0, or -1
    when out of memory (the table is then as it was). */
int sch_states_load (sch_states_t *self, const json_t *clusters);

/*  1 once a list was loaded. */
int sch_states_loaded (sch_states_t *self);

/*  The clusters in state sch_states_names [index]. */
size_t sch_states_count (sch_states_t *self, size_t index);

#endif
