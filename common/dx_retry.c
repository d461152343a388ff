/*  dx_retry: exponential backoff with full jitter. */
#include "dx_retry.h"
#include "dx_util.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <sodium.h>

/*  splitmix64: small, fast, and reproducible from a seed. */
static uint64_t
s_next (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void
dx_retry_init (dx_retry_t *self, const dx_retry_policy_t *policy)
{
    static const dx_retry_policy_t defaults = DX_RETRY_POLICY_DEFAULT;
    self->policy = policy ? *policy : defaults;
    if (self->policy.max_attempts < 1)
        self->policy.max_attempts = 1;
    self->attempts = 0;
    self->rng = self->policy.seed;
    if (!self->rng) {
        if (sodium_init () < 0)
            abort ();
        randombytes_buf (&self->rng, sizeof self->rng);
    }
}

/*  The full-jitter wait before retry number n (0-based): uniform in
    [0, min(cap, base * 2^n)]. Advances *rng. */
static int64_t
s_delay (const dx_retry_policy_t *policy, int n, uint64_t *rng)
{
    int64_t cap = policy->cap_ms > 0 ? policy->cap_ms : 0;
    int64_t ceiling = policy->base_ms > 0 ? policy->base_ms : 0;
    for (int i = 0; i < n && ceiling < cap; i++)
        ceiling *= 2;               /* stops at cap: never overflows */
    if (ceiling > cap)
        ceiling = cap;
    return (int64_t) (s_next (rng) % ((uint64_t) ceiling + 1));
}

int64_t
dx_retry_next (dx_retry_t *self, dx_retry_class_t cls)
{
    self->attempts++;
    if (cls == DX_RETRY_NO || self->attempts >= self->policy.max_attempts)
        return -1;
    return s_delay (&self->policy, self->attempts - 1, &self->rng);
}

int64_t
dx_retry_next_after (dx_retry_t *self, dx_retry_class_t cls, int64_t after_ms)
{
    int64_t wait = dx_retry_next (self, cls);
    if (wait >= 0 && after_ms > wait)
        wait = after_ms < DX_RETRY_MAX_AFTER_MS? after_ms: DX_RETRY_MAX_AFTER_MS;
    return wait;
}

const char *
dx_retry_class_name (dx_retry_class_t cls)
{
    switch (cls) {
        case DX_RETRY_THROTTLED: return "throttled";
        case DX_RETRY_TRANSIENT: return "transient";
        default:                 return "no";
    }
}

void
dx_sleep_ms (int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000 };
    while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
        ;
}

int
dx_sleep_cancellable (int64_t ms, dx_cancel_fn *cancelled, void *arg)
{
    int64_t until = dx_mono_ms () + ms;
    for (int64_t left = ms; left > 0; left = until - dx_mono_ms ()) {
        if (cancelled && cancelled (arg))
            return -1;
        dx_sleep_ms (left < 100? left: 100);
    }
    return cancelled && cancelled (arg)? -1: 0;
}
