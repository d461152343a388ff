/*  dx_ratelimit: token buckets in a registry keyed by strings. */
#include "dx_ratelimit.h"
#include "dx_retry.h"
#include "dx_util.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void
dx_bucket_init (dx_bucket_t *self, double burst, double rate, int64_t now_ms)
{
    self->burst = burst < 1 ? 1 : burst;
    self->rate = rate > 0 ? rate : 0;
    self->tokens = self->burst;
    self->last_ms = now_ms;
}

int64_t
dx_bucket_take (dx_bucket_t *self, int64_t now_ms)
{
    return dx_bucket_take_n (self, 1, now_ms);
}

int64_t
dx_bucket_take_n (dx_bucket_t *self, double n, int64_t now_ms)
{
    if (n > self->burst)
        n = self->burst;                /* more would never be there */
    if (self->rate <= 0)
        return 0;                       /* no limit */
    if (now_ms > self->last_ms) {       /* a clock that goes back refills nothing */
        self->tokens += (double) (now_ms - self->last_ms) * self->rate / 1000.0;
        if (self->tokens > self->burst)
            self->tokens = self->burst;
        self->last_ms = now_ms;
    }
    /* The tolerance absorbs rounding: a wait computed below always ends
       with a whole token. */
    if (self->tokens >= n - 1e-9) {
        self->tokens -= n;
        return 0;
    }
    int64_t wait = (int64_t) ceil ((n - self->tokens) * 1000.0 / self->rate);
    return wait > 0 ? wait : 1;
}

//  The registry: a short list; a worker has a few accounts and regions.

typedef struct s_entry {
    struct s_entry *next;
    dx_bucket_t bucket;
    char key [];
} s_entry_t;

struct dx_ratelimit {
    s_entry_t *head;
    pthread_mutex_t lock;           /* dx_ratelimit_wait's */
};

dx_ratelimit_t *
dx_ratelimit_new (void)
{
    dx_ratelimit_t *self = calloc (1, sizeof (dx_ratelimit_t));
    if (self)
        pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
dx_ratelimit_destroy (dx_ratelimit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_entry_t *e = (*self_p)->head;
    while (e) {
        s_entry_t *next = e->next;
        /* Keys may name an access key id: leave no copy behind. */
        memset (e->key, 0, strlen (e->key));
        free (e);
        e = next;
    }
    pthread_mutex_destroy (&(*self_p)->lock);
    free (*self_p);
    *self_p = NULL;
}

dx_bucket_t *
dx_ratelimit_bucket (dx_ratelimit_t *self, const char *key,
                     double burst, double rate, int64_t now_ms)
{
    for (s_entry_t *e = self->head; e; e = e->next)
        if (strcmp (e->key, key) == 0)
            return &e->bucket;
    size_t len = strlen (key);
    s_entry_t *e = malloc (sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy (e->key, key, len + 1);
    dx_bucket_init (&e->bucket, burst, rate, now_ms);
    e->next = self->head;
    self->head = e;
    return &e->bucket;
}

int64_t
dx_ratelimit_wait (dx_ratelimit_t *self, const char *key, double burst, double rate)
{
    return dx_ratelimit_wait_n (self, key, burst, rate, 1);
}

int64_t
dx_ratelimit_take_n (dx_ratelimit_t *self, const char *key, double burst, double rate,
                     double n)
{
    pthread_mutex_lock (&self->lock);
    int64_t now = dx_mono_ms ();
    dx_bucket_t *bucket = dx_ratelimit_bucket (self, key, burst, rate, now);
    int64_t wait = bucket? dx_bucket_take_n (bucket, n, now): 0;
    pthread_mutex_unlock (&self->lock);
    return wait;
}

int64_t
dx_ratelimit_wait_n (dx_ratelimit_t *self, const char *key, double burst, double rate,
                     double n)
{
    int64_t waited = 0;
    while (1) {
        int64_t wait = dx_ratelimit_take_n (self, key, burst, rate, n);
        if (wait <= 0)
            break;
        dx_sleep_ms (wait);
        waited += wait;
    }
    return waited;
}
