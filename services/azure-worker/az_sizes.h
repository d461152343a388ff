/*  az_sizes: the VM sizes of each location, as ARM lists them
    (…/locations/{loc}/vmSizes), kept for a while so that a deployment's
    hosts do not each list them again: every list is a read through ARM's
    read bucket (25/s), which 100 hosts at once would share. One cache per
    worker process, shared by its job threads (thread-safe).

    The cache only saves reads, it never refuses: a host whose size is not
    in a kept list lists the location again before it fails (az_hosts.c),
    so a size Azure added meanwhile is found. */
#ifndef AZ_SIZES_H
#define AZ_SIZES_H

#include <stdint.h>
#include <jansson.h>

typedef struct az_sizes az_sizes_t;

/*  A cache whose lists are kept ttl_ms (> 0). NULL when out of memory. */
az_sizes_t *az_sizes_new (int64_t ttl_ms);

/*  Frees it; safe on NULL; sets *self_p to NULL. */
void az_sizes_destroy (az_sizes_t **self_p);

/*  The list kept under key (the ARM endpoint, subscription and location),
    a new reference, or NULL when there is none younger than the TTL.
    self NULL: always NULL. */
json_t *az_sizes_get (az_sizes_t *self, const char *key);

/*  Keeps list (borrowed: a reference is taken) under key, from now on. */
void az_sizes_put (az_sizes_t *self, const char *key, json_t *list);

#endif
