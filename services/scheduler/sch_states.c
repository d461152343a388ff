/*  sch_states: each cluster's deployment state and the count per state. */
#include "sch_states.h"

#include <czmq.h>
#include <stdint.h>
#include <string.h>

const char *const sch_states_names [SCH_STATES_COUNT] = {
    "init", "deploying", "deployed", "deploy_failed", "destroying", "destroyed",
    "destroy_failed"
};

struct sch_states {
    zhashx_t *names;                    /* name -> index of its state + 1 */
    size_t counts [SCH_STATES_COUNT];
    int loaded;
};

sch_states_t *
sch_states_new (void)
{
    sch_states_t *self = (sch_states_t *) calloc (1, sizeof *self);
    if (self && !(self->names = zhashx_new ()))
        sch_states_destroy (&self);
    return self;
}

void
sch_states_destroy (sch_states_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy (&(*self_p)->names);
    free (*self_p);
    *self_p = NULL;
}

/*  The index of state + 1, 0 when it is none of the states. */
static uintptr_t
s_index (const char *state)
{
    for (size_t i = 0; state && i < SCH_STATES_COUNT; i++)
        if (strcmp (state, sch_states_names [i]) == 0)
            return i + 1;
    return 0;
}

/*  Sets name's state in table and counts (index + 1, 0: counted nowhere). */
static void
s_set (zhashx_t *table, size_t *counts, const char *name, uintptr_t index)
{
    uintptr_t old = (uintptr_t) zhashx_lookup (table, name);
    if (old == index)
        return;
    if (old)
        counts [old - 1]--;
    if (index) {
        zhashx_update (table, name, (void *) index);
        counts [index - 1]++;
    }
    else
        zhashx_delete (table, name);
}

void
sch_states_set (sch_states_t *self, const char *name, const char *state)
{
    if (self && name)
        s_set (self->names, self->counts, name, s_index (state));
}

void
sch_states_drop (sch_states_t *self, const char *name)
{
    if (self && name)
        s_set (self->names, self->counts, name, 0);
}

int
sch_states_load (sch_states_t *self, const json_t *clusters)
{
    zhashx_t *names = zhashx_new ();
    size_t counts [SCH_STATES_COUNT] = { 0 };
    if (!names)
        return -1;
    size_t i;
    json_t *cluster;
    json_array_foreach (clusters, i, cluster) {
        const char *name = json_string_value (json_object_get (cluster, "name"));
        const char *state = json_string_value (json_object_get (cluster, "state"));
        if (!state)
            state = json_string_value (json_object_get (json_object_get (cluster, "deployment"),
                                                        "state"));
        if (name)
            s_set (names, counts, name, s_index (state));
    }
    zhashx_destroy (&self->names);
    self->names = names;
    memcpy (self->counts, counts, sizeof counts);
    self->loaded = 1;
    return 0;
}

int
sch_states_loaded (sch_states_t *self)
{
    return self && self->loaded;
}

size_t
sch_states_count (sch_states_t *self, size_t index)
{
    return self && index < SCH_STATES_COUNT? self->counts [index]: 0;
}
