/*  dx_retry: when to try a failed cloud call again, and how long to wait.

    Exponential backoff with "full jitter" (AWS Architecture Blog, 2015):
    the wait before retry number n (n = 0 for the first retry) is uniform in
    [0, min(cap, base * 2^n)] milliseconds. The caller classifies each failed
    answer (its provider knows which codes are throttling); this module only
    decides and computes. Shared by the aws and azure workers. */
#ifndef DX_RETRY_H
#define DX_RETRY_H

#include <stdint.h>

/*  What a failed answer means for a retry. */
typedef enum {
    DX_RETRY_NO,            /* permanent: return the error at once */
    DX_RETRY_THROTTLED,     /* the provider asks us to slow down */
    DX_RETRY_TRANSIENT      /* 5xx, timeout, connection lost */
} dx_retry_class_t;

typedef struct {
    int64_t base_ms;        /* ceiling of the first wait */
    int64_t cap_ms;         /* no wait is longer than this */
    int max_attempts;       /* tries in all, the first one included (>= 1) */
    uint64_t seed;          /* 0: random; otherwise the waits are reproducible */
} dx_retry_policy_t;

#define DX_RETRY_DEFAULT_BASE_MS      200
#define DX_RETRY_DEFAULT_CAP_MS       20000
#define DX_RETRY_DEFAULT_MAX_ATTEMPTS 8
#define DX_RETRY_POLICY_DEFAULT \
    { DX_RETRY_DEFAULT_BASE_MS, DX_RETRY_DEFAULT_CAP_MS, DX_RETRY_DEFAULT_MAX_ATTEMPTS, 0 }

/*  The state of one call's retries. Plain value: no destroy needed. */
typedef struct {
    dx_retry_policy_t policy;
    int attempts;           /* tries made so far */
    uint64_t rng;           /* splitmix64 state */
} dx_retry_t;

/*  Starts a call's retries; policy NULL means the defaults above. */
void dx_retry_init (dx_retry_t *self, const dx_retry_policy_t *policy);

/*  After a try that failed with cls: the milliseconds to wait before the
    next try, or -1 to give up (cls is DX_RETRY_NO, or max_attempts tries
    were made). Counts the try. */
int64_t dx_retry_next (dx_retry_t *self, dx_retry_class_t cls);

/*  The longest Retry-After honoured: a server asking for more is waited
    for that long, and asked again. */
#define DX_RETRY_MAX_AFTER_MS (10 * 60 * 1000)

/*  dx_retry_next for an answer that said how long to wait (Retry-After,
    after_ms; < 0 when it did not): the wait is the larger of the jitter and
    after_ms, at most DX_RETRY_MAX_AFTER_MS; -1 as dx_retry_next. */
int64_t dx_retry_next_after (dx_retry_t *self, dx_retry_class_t cls, int64_t after_ms);

/*  "no", "throttled" or "transient", for logs. */
const char *dx_retry_class_name (dx_retry_class_t cls);

/*  Sleeps ms milliseconds (restarting after signals); nothing when ms <= 0. */
void dx_sleep_ms (int64_t ms);

/*  Returns non-zero once the caller's job is cancelled. */
typedef int (dx_cancel_fn) (void *arg);

/*  dx_sleep_ms that looks at cancelled (NULL: never) every 100 ms and
    before returning. 0, or -1 as soon as it reports a cancel. */
int dx_sleep_cancellable (int64_t ms, dx_cancel_fn *cancelled, void *arg);

#endif
