/*  az_sizes: a worker's VM size lists, by location. See az_sizes.h. */
#include "az_sizes.h"
#include "dx_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_entry {
    char *key;
    json_t *list;
    int64_t until;                      /* monotonic ms */
    struct s_entry *next;
} s_entry_t;

struct az_sizes {
    pthread_mutex_t lock;
    int64_t ttl_ms;
    s_entry_t *entries;                 /* one per location asked: a handful */
};

az_sizes_t *
az_sizes_new (int64_t ttl_ms)
{
    az_sizes_t *self = (az_sizes_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init (&self->lock, NULL);
    self->ttl_ms = ttl_ms > 0? ttl_ms: 1;
    return self;
}

void
az_sizes_destroy (az_sizes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    az_sizes_t *self = *self_p;
    while (self->entries) {
        s_entry_t *entry = self->entries;
        self->entries = entry->next;
        free (entry->key);
        json_decref (entry->list);
        free (entry);
    }
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

/*  The entry of key, or NULL. Under the lock. */
static s_entry_t *
s_find (az_sizes_t *self, const char *key)
{
    for (s_entry_t *entry = self->entries; entry; entry = entry->next)
        if (strcmp (entry->key, key) == 0)
            return entry;
    return NULL;
}

json_t *
az_sizes_get (az_sizes_t *self, const char *key)
{
    if (!self)
        return NULL;
    json_t *list = NULL;
    pthread_mutex_lock (&self->lock);
    s_entry_t *entry = s_find (self, key);
    if (entry && dx_mono_ms () < entry->until)
        list = json_incref (entry->list);
    pthread_mutex_unlock (&self->lock);
    return list;
}

void
az_sizes_put (az_sizes_t *self, const char *key, json_t *list)
{
    if (!self || !list)
        return;
    pthread_mutex_lock (&self->lock);
    s_entry_t *entry = s_find (self, key);
    if (!entry && (entry = (s_entry_t *) calloc (1, sizeof *entry))) {
        entry->key = strdup (key);
        if (!entry->key) {
            free (entry);
            entry = NULL;
        }
        else {
            entry->next = self->entries;
            self->entries = entry;
        }
    }
    if (entry) {
        json_decref (entry->list);
        entry->list = json_incref (list);
        entry->until = dx_mono_ms () + self->ttl_ms;
    }
    pthread_mutex_unlock (&self->lock);
}
