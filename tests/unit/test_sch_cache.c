/*  Tests of sch_cache, the scheduler's read cache: plain calls, no Redis.

    Covered: a kept read serves the parts it holds and no others, merges
    the parts of later reads of the same epoch, and is not kept when a
    change came after the read; forget and purge; the time to live; a full
    cache starts again; memos live and die with their kept read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../services/scheduler/sch_cache.h"

#define A 0x01                          /* parts, as the caller's bits */
#define B 0x02

/*  The parts of a read: a, b or both. */
static json_t *
s_parts (unsigned what)
{
    json_t *parts = json_object ();
    if (what & A)
        json_object_set_new (parts, "a", json_pack ("{s:i}", "n", 1));
    if (what & B)
        json_object_set_new (parts, "b", json_null ());
    return parts;
}

/*  Keeps the parts what of name, read at the cache's epoch now; the
    serial. */
static uint64_t
s_put (sch_cache_t *cache, const char *name, unsigned what)
{
    json_t *parts = s_parts (what);
    uint64_t serial = sch_cache_put (cache, name, what, parts, sch_cache_epoch (cache));
    json_decref (parts);
    return serial;
}

/*  1 if the cache serves what of name. */
static int
s_serves (sch_cache_t *cache, const char *name, unsigned what)
{
    uint64_t serial = 0;
    json_t *kept = sch_cache_get (cache, name, what, &serial);
    json_decref (kept);
    return kept != NULL && serial != 0;
}

static void
test_get_and_put (void **state)
{
    (void) state;
    sch_cache_t *cache = sch_cache_new (8, 60000);
    assert_non_null (cache);
    assert_false (s_serves (cache, "c1", A));
    uint64_t serial = s_put (cache, "c1", A);
    assert_true (serial > 0);
    assert_true (s_serves (cache, "c1", A));
    assert_false (s_serves (cache, "c1", A | B));       /* b was not read */
    assert_false (s_serves (cache, "c2", A));

    //  A later read of the same epoch adds to the same kept read
    assert_int_equal (s_put (cache, "c1", B), serial);
    uint64_t got;
    json_t *kept = sch_cache_get (cache, "c1", A | B, &got);
    assert_non_null (kept);
    assert_int_equal (got, serial);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (kept, "a"), "n")), 1);
    assert_true (json_is_null (json_object_get (kept, "b")));
    json_decref (kept);

    //  A read made before a change (of any cluster) is not kept
    uint64_t epoch = sch_cache_epoch (cache);
    sch_cache_forget (cache, "other");
    json_t *parts = s_parts (A);
    assert_int_equal (sch_cache_put (cache, "c2", A, parts, epoch), 0);
    json_decref (parts);
    assert_false (s_serves (cache, "c2", A));

    //  Forget one, purge all
    s_put (cache, "c2", A);
    sch_cache_forget (cache, "c1");
    assert_false (s_serves (cache, "c1", A));
    assert_true (s_serves (cache, "c2", A));
    sch_cache_purge (cache);
    assert_false (s_serves (cache, "c2", A));
    sch_cache_destroy (&cache);
    sch_cache_destroy (&cache);
}

/*  Nothing is served after the time to live, and a full cache starts
    again rather than growing. */
static void
test_expiry_and_size (void **state)
{
    (void) state;
    sch_cache_t *cache = sch_cache_new (3, 50);
    uint64_t first = s_put (cache, "c1", A);
    assert_true (s_serves (cache, "c1", A));
    usleep (80000);
    assert_false (s_serves (cache, "c1", A));
    uint64_t again = s_put (cache, "c1", A);
    assert_true (again > first);                        /* another read, another serial */

    s_put (cache, "c2", A);
    s_put (cache, "c3", A);
    assert_true (s_serves (cache, "c1", A) && s_serves (cache, "c3", A));
    s_put (cache, "c4", A);                             /* the fourth: start again */
    assert_false (s_serves (cache, "c1", A));
    assert_true (s_serves (cache, "c4", A));
    sch_cache_destroy (&cache);
}

/*  A memo belongs to one kept read: found under its key while that read
    is kept, gone with it. */
static void
test_memos (void **state)
{
    (void) state;
    sch_cache_t *cache = sch_cache_new (8, 60000);
    uint64_t serial = s_put (cache, "c1", A);
    json_t *text = json_string ("{\"n\":1}");
    sch_cache_memo_put (cache, "c1", serial, "cluster.get/", text);
    assert_ptr_equal (sch_cache_memo (cache, "c1", serial, "cluster.get/"), text);
    assert_null (sch_cache_memo (cache, "c1", serial, "group.get/g1"));
    assert_null (sch_cache_memo (cache, "c1", serial + 1, "cluster.get/"));
    assert_null (sch_cache_memo (cache, "c2", serial, "cluster.get/"));

    //  Many keys: the oldest go, the memo put last stays
    for (int i = 0; i < 20; i++) {
        char key [32];
        snprintf (key, sizeof key, "group.get/g%d", i);
        sch_cache_memo_put (cache, "c1", serial, key, text);
    }
    assert_non_null (sch_cache_memo (cache, "c1", serial, "group.get/g19"));

    //  Forgotten with the read; a new read of the cluster has none
    sch_cache_forget (cache, "c1");
    assert_null (sch_cache_memo (cache, "c1", serial, "group.get/g19"));
    uint64_t next = s_put (cache, "c1", A);
    assert_true (next != serial);
    assert_null (sch_cache_memo (cache, "c1", next, "group.get/g19"));
    sch_cache_memo_put (cache, "c1", serial, "cluster.get/", text);    /* a stale serial */
    assert_null (sch_cache_memo (cache, "c1", next, "cluster.get/"));
    json_decref (text);
    sch_cache_destroy (&cache);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_get_and_put),
        cmocka_unit_test (test_expiry_and_size),
        cmocka_unit_test (test_memos),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
