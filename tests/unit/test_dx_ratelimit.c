/*  Unit tests for common/dx_ratelimit.c: burst then rate, refill, waits,
    clocks going back, the registry of buckets, and threads sharing it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "dx_ratelimit.h"
#include "dx_util.h"

/*  A full bucket gives `burst` tokens at once, then one per 1/rate s. */
static void
test_burst_then_rate (void **state)
{
    (void) state;
    dx_bucket_t b;
    dx_bucket_init (&b, 5, 2, 1000);
    for (int i = 0; i < 5; i++)
        assert_int_equal (dx_bucket_take (&b, 1000), 0);
    assert_int_equal (dx_bucket_take (&b, 1000), 500);     /* 2/s: 500 ms */
    assert_int_equal (dx_bucket_take (&b, 1200), 300);     /* nothing taken while waiting */
    assert_int_equal (dx_bucket_take (&b, 1500), 0);
    assert_int_equal (dx_bucket_take (&b, 1500), 500);
    assert_int_equal (dx_bucket_take (&b, 2000), 0);

    /* the published classes: Describe 100 at 20/s, other 200 at 5/s */
    dx_bucket_init (&b, 100, 20, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal (dx_bucket_take (&b, 0), 0);
    assert_int_equal (dx_bucket_take (&b, 0), 50);
    int taken = 0;
    for (int64_t t = 0; t <= 1000; t++)                    /* one second, ms by ms */
        taken += dx_bucket_take (&b, t) == 0;
    assert_int_equal (taken, 20);
    dx_bucket_init (&b, 200, 5, 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal (dx_bucket_take (&b, 0), 0);
    assert_int_equal (dx_bucket_take (&b, 0), 200);
}

/*  n tokens at once (EC2's instance bucket, 1,000 at 2/s): all or none,
    the wait is until all n are there, and more than burst is burst. */
static void
test_take_n (void **state)
{
    (void) state;
    dx_bucket_t b;
    dx_bucket_init (&b, 1000, 2, 0);
    assert_int_equal (dx_bucket_take_n (&b, 600, 0), 0);
    assert_int_equal (dx_bucket_take_n (&b, 500, 0), 50000);   /* 100 short at 2/s */
    assert_int_equal (dx_bucket_take_n (&b, 400, 0), 0);       /* the refused take took none */
    assert_int_equal (dx_bucket_take_n (&b, 1, 0), 500);
    assert_int_equal (dx_bucket_take_n (&b, 20, 10000), 0);
    assert_int_equal (dx_bucket_take_n (&b, 5000, 10000), 500000);  /* burst: 1000 */
    assert_int_equal (dx_bucket_take_n (&b, 5000, 510000), 0);
    assert_int_equal (dx_bucket_take (&b, 510000), 500);
}

/*  Idle time refills up to burst, never beyond. */
static void
test_refill_capped (void **state)
{
    (void) state;
    dx_bucket_t b;
    dx_bucket_init (&b, 3, 10, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal (dx_bucket_take (&b, 0), 0);
    /* an hour later: only 3 tokens */
    for (int i = 0; i < 3; i++)
        assert_int_equal (dx_bucket_take (&b, 3600000), 0);
    assert_int_equal (dx_bucket_take (&b, 3600000), 100);
    /* partial refill: 250 ms at 10/s is 2.5 tokens */
    assert_int_equal (dx_bucket_take (&b, 3600250), 0);
    assert_int_equal (dx_bucket_take (&b, 3600250), 0);
    assert_int_equal (dx_bucket_take (&b, 3600250), 50);
    /* a clock that goes back refills nothing and breaks nothing */
    assert_int_equal (dx_bucket_take (&b, 100), 50);
    assert_int_equal (dx_bucket_take (&b, 3600300), 0);
}

/*  Waiting exactly the returned time always gives a token, for odd rates. */
static void
test_wait_is_enough (void **state)
{
    (void) state;
    const double rates [] = { 3, 7, 0.3, 13.7, 1000 };
    for (size_t r = 0; r < sizeof rates / sizeof rates [0]; r++) {
        dx_bucket_t b;
        dx_bucket_init (&b, 1, rates [r], 0);
        int64_t now = 0;
        for (int i = 0; i < 200; i++) {
            int64_t wait = dx_bucket_take (&b, now);
            if (wait > 0) {
                now += wait;
                assert_int_equal (dx_bucket_take (&b, now), 0);
            }
        }
    }
    /* burst below 1 still lets one through; rate 0 means no limit */
    dx_bucket_t b;
    dx_bucket_init (&b, 0, 1, 0);
    assert_int_equal (dx_bucket_take (&b, 0), 0);
    dx_bucket_init (&b, 1, 0, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal (dx_bucket_take (&b, 0), 0);
}

/*  One bucket per key, created on first use with the first burst and rate. */
static void
test_registry (void **state)
{
    (void) state;
    dx_ratelimit_t *limits = dx_ratelimit_new ();
    assert_non_null (limits);
    dx_bucket_t *a = dx_ratelimit_bucket (limits, "AKID1|us-west-2|RunInstances", 5, 2, 0);
    dx_bucket_t *b = dx_ratelimit_bucket (limits, "AKID1|us-east-1|RunInstances", 5, 2, 0);
    dx_bucket_t *c = dx_ratelimit_bucket (limits, "AKID2|us-west-2|RunInstances", 5, 2, 0);
    assert_non_null (a);
    assert_true (a != b && a != c && b != c);
    assert_ptr_equal (dx_ratelimit_bucket (limits, "AKID1|us-west-2|RunInstances", 99, 99, 0), a);
    assert_true (a->burst == 5 && a->rate == 2);
    for (int i = 0; i < 5; i++)
        assert_int_equal (dx_bucket_take (a, 0), 0);
    assert_true (dx_bucket_take (a, 0) > 0);
    assert_int_equal (dx_bucket_take (b, 0), 0);   /* other region: untouched */
    assert_int_equal (dx_bucket_take (c, 0), 0);   /* other account: untouched */

    dx_ratelimit_destroy (&limits);
    assert_null (limits);
    dx_ratelimit_destroy (&limits);
    dx_ratelimit_destroy (NULL);
}

typedef struct {
    dx_ratelimit_t *limits;
    int takes;
} s_taker_t;

static void *
s_take (void *arg)
{
    s_taker_t *taker = arg;
    for (int i = 0; i < taker->takes; i++)
        dx_ratelimit_wait (taker->limits, "SUB|writes", 10, 100);
    return NULL;
}

/*  Threads sharing one registry get burst at once and then rate, together:
    4 threads x 15 tokens of a bucket of 10 at 100/s take some 500 ms. */
static void
test_wait_shared (void **state)
{
    (void) state;
    dx_ratelimit_t *limits = dx_ratelimit_new ();
    s_taker_t taker = { limits, 15 };
    pthread_t threads [4];
    int64_t t0 = dx_mono_ms ();
    for (int i = 0; i < 4; i++)
        assert_int_equal (pthread_create (&threads [i], NULL, s_take, &taker), 0);
    for (int i = 0; i < 4; i++)
        pthread_join (threads [i], NULL);
    int64_t took = dx_mono_ms () - t0;
    assert_true (took >= 490 && took < 2000);
    /* a wait says how long it took */
    assert_int_equal (dx_ratelimit_wait (limits, "SUB|reads", 1, 10), 0);
    int64_t waited = dx_ratelimit_wait (limits, "SUB|reads", 1, 10);
    assert_true (waited >= 95 && waited < 1000);
    dx_ratelimit_destroy (&limits);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_burst_then_rate),
        cmocka_unit_test (test_take_n),
        cmocka_unit_test (test_refill_capped),
        cmocka_unit_test (test_wait_is_enough),
        cmocka_unit_test (test_registry),
        cmocka_unit_test (test_wait_shared),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
