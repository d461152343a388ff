/*  Unit tests for common/dx_retry.c: full-jitter bounds, caps, overflow,
    determinism with a seed, when to give up, Retry-After, and sleeps a
    cancel cuts short. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "dx_retry.h"
#include "dx_util.h"

/*  The wait before retry n (0-based) of a call under policy: what
    dx_retry_next says after n + 1 failed tries. Each call draws from its
    own seed, so repeated calls sample the distribution. */
static int64_t
s_wait_before (const dx_retry_policy_t *policy, int n)
{
    static uint64_t seed;
    dx_retry_policy_t own = *policy;
    own.seed = ++seed;
    own.max_attempts = n + 2;
    dx_retry_t retry;
    dx_retry_init (&retry, &own);
    int64_t wait = -1;
    for (int i = 0; i <= n; i++)
        wait = dx_retry_next (&retry, DX_RETRY_TRANSIENT);
    return wait;
}

/*  Every wait of retry n lies in [0, min(cap, base * 2^n)], and the waits
    spread over that range (full jitter: both ends are reached). */
static void
test_delay_bounds_and_spread (void **state)
{
    (void) state;
    dx_retry_policy_t policy = { 100, 5000, 10, 42 };
    for (int n = 0; n < 10; n++) {
        int64_t ceiling = 100LL << n;
        if (ceiling > 5000)
            ceiling = 5000;
        int64_t lo = INT64_MAX, hi = -1;
        for (int i = 0; i < 4000; i++) {
            int64_t d = s_wait_before (&policy, n);
            assert_true (d >= 0 && d <= ceiling);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        assert_true (lo <= ceiling / 20);           /* near 0 */
        assert_true (hi >= ceiling - ceiling / 20); /* near the ceiling */
    }
}

/*  The mean of full jitter is half the ceiling. */
static void
test_delay_mean (void **state)
{
    (void) state;
    dx_retry_policy_t policy = { 1000, 1000, 5, 7 };
    double sum = 0;
    for (int i = 0; i < 20000; i++)
        sum += (double) s_wait_before (&policy, 0);
    double mean = sum / 20000;
    assert_true (mean > 480 && mean < 520);
}

/*  Huge attempt numbers hit the cap and never overflow. */
static void
test_cap_and_overflow (void **state)
{
    (void) state;
    dx_retry_policy_t policy = { 250, 20000, 100, 3 };
    for (int n = 30; n < 3000; n += 97)
        for (int i = 0; i < 100; i++) {
            int64_t d = s_wait_before (&policy, n);
            assert_true (d >= 0 && d <= 20000);
        }
    /* base above the cap: the cap wins from the start */
    dx_retry_policy_t big = { 60000, 1000, 3, 3 };
    for (int i = 0; i < 100; i++)
        assert_true (s_wait_before (&big, 0) <= 1000);
    /* zero base: no wait at all */
    dx_retry_policy_t zero = { 0, 1000, 3, 3 };
    assert_int_equal (s_wait_before (&zero, 5), 0);
}

/*  The same seed gives the same waits; another seed other waits. */
static void
test_deterministic_with_seed (void **state)
{
    (void) state;
    dx_retry_policy_t policy = { 100, 20000, 12, 1234 };
    dx_retry_t a, b, c;
    dx_retry_init (&a, &policy);
    dx_retry_init (&b, &policy);
    policy.seed = 4321;
    dx_retry_init (&c, &policy);
    int differ = 0;
    for (int i = 0; i < 11; i++) {
        int64_t x = dx_retry_next (&a, DX_RETRY_THROTTLED);
        int64_t y = dx_retry_next (&b, DX_RETRY_THROTTLED);
        int64_t z = dx_retry_next (&c, DX_RETRY_THROTTLED);
        assert_int_equal (x, y);
        differ += x != z;
    }
    assert_true (differ > 5);
    /* unseeded: random, still within bounds */
    dx_retry_t r;
    dx_retry_init (&r, NULL);
    assert_int_equal (r.policy.max_attempts, DX_RETRY_DEFAULT_MAX_ATTEMPTS);
    int64_t d = dx_retry_next (&r, DX_RETRY_TRANSIENT);
    assert_true (d >= 0 && d <= DX_RETRY_DEFAULT_BASE_MS);
}

/*  Permanent errors stop at once; retryable ones after max_attempts tries. */
static void
test_give_up (void **state)
{
    (void) state;
    dx_retry_policy_t policy = { 10, 100, 4, 9 };
    dx_retry_t r;
    dx_retry_init (&r, &policy);
    assert_int_equal (dx_retry_next (&r, DX_RETRY_NO), -1);
    assert_int_equal (r.attempts, 1);

    dx_retry_init (&r, &policy);
    assert_true (dx_retry_next (&r, DX_RETRY_THROTTLED) >= 0);     /* after try 1 */
    assert_true (dx_retry_next (&r, DX_RETRY_TRANSIENT) >= 0);     /* after try 2 */
    assert_true (dx_retry_next (&r, DX_RETRY_THROTTLED) >= 0);     /* after try 3 */
    assert_int_equal (dx_retry_next (&r, DX_RETRY_THROTTLED), -1); /* 4 tries made */
    assert_int_equal (r.attempts, 4);

    /* the n-th retry's wait uses the n-th ceiling: 10, 20, 40, ... capped */
    dx_retry_policy_t one = { 1000, 1500, 3, 0 };
    dx_retry_init (&r, &one);
    assert_true (dx_retry_next (&r, DX_RETRY_TRANSIENT) <= 1000);
    assert_true (dx_retry_next (&r, DX_RETRY_TRANSIENT) <= 1500);
    assert_int_equal (dx_retry_next (&r, DX_RETRY_TRANSIENT), -1);

    dx_retry_policy_t none = { 10, 100, 0, 1 };      /* at least one try */
    dx_retry_init (&r, &none);
    assert_int_equal (r.policy.max_attempts, 1);
    assert_int_equal (dx_retry_next (&r, DX_RETRY_TRANSIENT), -1);
    assert_string_equal (dx_retry_class_name (DX_RETRY_THROTTLED), "throttled");
    assert_string_equal (dx_retry_class_name (DX_RETRY_TRANSIENT), "transient");
    assert_string_equal (dx_retry_class_name (DX_RETRY_NO), "no");
}

static void
test_sleep (void **state)
{
    (void) state;
    int64_t t0 = dx_mono_ms ();
    dx_sleep_ms (30);
    dx_sleep_ms (0);
    dx_sleep_ms (-5);
    int64_t took = dx_mono_ms () - t0;
    assert_true (took >= 29 && took < 1000);
}

/*  A server's Retry-After is a floor under the jitter, within a ceiling;
    it does not make a hopeless try worth repeating. */
static void
test_retry_after (void **state)
{
    (void) state;
    dx_retry_policy_t policy = { 100, 400, 4, 3 };
    dx_retry_t r;
    dx_retry_init (&r, &policy);
    assert_int_equal (dx_retry_next_after (&r, DX_RETRY_THROTTLED, 5000), 5000);
    int64_t wait = dx_retry_next_after (&r, DX_RETRY_THROTTLED, -1);
    assert_true (wait >= 0 && wait <= 200);
    wait = dx_retry_next_after (&r, DX_RETRY_TRANSIENT, 0);
    assert_true (wait >= 0 && wait <= 400);
    assert_int_equal (dx_retry_next_after (&r, DX_RETRY_THROTTLED, 5000), -1);  /* 4 tries */
    dx_retry_init (&r, &policy);
    assert_int_equal (dx_retry_next_after (&r, DX_RETRY_NO, 5000), -1);
    dx_retry_init (&r, &policy);
    assert_int_equal (dx_retry_next_after (&r, DX_RETRY_THROTTLED, 86400000),
                      DX_RETRY_MAX_AFTER_MS);
}

static int
s_cancel_after (void *arg)
{
    int *calls = arg;
    return ++*calls > 3;
}

static void
test_sleep_cancellable (void **state)
{
    (void) state;
    int64_t t0 = dx_mono_ms ();
    assert_int_equal (dx_sleep_cancellable (30, NULL, NULL), 0);
    assert_true (dx_mono_ms () - t0 >= 29);
    /* the fourth look sees the cancel: after some 300 ms, not 10 s */
    int calls = 0;
    t0 = dx_mono_ms ();
    assert_int_equal (dx_sleep_cancellable (10000, s_cancel_after, &calls), -1);
    assert_true (dx_mono_ms () - t0 < 2000);
    assert_int_equal (calls, 4);
    /* a cancel already up: no sleep at all */
    calls = 10;
    t0 = dx_mono_ms ();
    assert_int_equal (dx_sleep_cancellable (10000, s_cancel_after, &calls), -1);
    assert_true (dx_mono_ms () - t0 < 50);
    calls = 10;
    assert_int_equal (dx_sleep_cancellable (0, s_cancel_after, &calls), -1);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_delay_bounds_and_spread),
        cmocka_unit_test (test_delay_mean),
        cmocka_unit_test (test_cap_and_overflow),
        cmocka_unit_test (test_deterministic_with_seed),
        cmocka_unit_test (test_give_up),
        cmocka_unit_test (test_sleep),
        cmocka_unit_test (test_retry_after),
        cmocka_unit_test (test_sleep_cancellable),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
