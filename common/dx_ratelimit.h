/*  dx_ratelimit: client-side token buckets, so that a deployment stays
    inside a provider's published request rates instead of being throttled.

    A bucket holds at most `burst` tokens and gains `rate` tokens per second;
    each request takes one. Buckets live in a registry keyed by whatever the
    caller chooses (the aws worker uses "AKID|region|class") and last as
    long as the registry, across jobs. dx_ratelimit_wait is what threads
    sharing a registry call (the job threads of a worker): it holds the
    registry's lock for each look and sleeps outside it. The other calls
    are not thread-safe and are not mixed with it. */
#ifndef DX_RATELIMIT_H
#define DX_RATELIMIT_H

#include <stdint.h>

typedef struct {
    double burst;           /* capacity, tokens */
    double rate;            /* tokens gained per second */
    double tokens;          /* tokens now (as of last_ms) */
    int64_t last_ms;        /* time of the last refill */
} dx_bucket_t;

/*  A full bucket at now_ms. burst is at least 1; a rate <= 0 means no
    limit (every take succeeds). */
void dx_bucket_init (dx_bucket_t *self, double burst, double rate, int64_t now_ms);

/*  Takes one token at now_ms (a monotonic clock, e.g. dx_mono_ms) and
    returns 0, or takes nothing and returns the milliseconds until a token
    will be there (the caller waits that long and asks again). */
int64_t dx_bucket_take (dx_bucket_t *self, int64_t now_ms);

/*  The same for n tokens at once (EC2's instance bucket: a RunInstances
    of n instances takes n): all of them, or none and the milliseconds
    until n will be there. n above burst is taken as burst, so a take
    always ends. */
int64_t dx_bucket_take_n (dx_bucket_t *self, double n, int64_t now_ms);

typedef struct dx_ratelimit dx_ratelimit_t;

dx_ratelimit_t *dx_ratelimit_new (void);
void dx_ratelimit_destroy (dx_ratelimit_t **self_p);

/*  The bucket for key, created full with burst and rate on first use
    (later calls keep the first burst and rate). Borrowed: it lives as long
    as the registry. NULL only when out of memory. */
dx_bucket_t *dx_ratelimit_bucket (dx_ratelimit_t *self, const char *key,
                                  double burst, double rate, int64_t now_ms);

/*  Takes one token of key's bucket (made as dx_ratelimit_bucket makes it),
    sleeping until there is one; thread-safe. Returns the milliseconds it
    slept (0 when a token was there). Out of memory, it takes nothing and
    does not wait. */
int64_t dx_ratelimit_wait (dx_ratelimit_t *self, const char *key, double burst, double rate);

/*  The same for n tokens at once (dx_bucket_take_n). */
int64_t dx_ratelimit_wait_n (dx_ratelimit_t *self, const char *key, double burst, double rate,
                             double n);

/*  One look, thread-safe: takes n tokens of key's bucket and returns 0,
    or takes nothing and returns the milliseconds until they will be there
    (for a caller that sleeps its own way, looking at a cancel flag). */
int64_t dx_ratelimit_take_n (dx_ratelimit_t *self, const char *key, double burst, double rate,
                             double n);

#endif
