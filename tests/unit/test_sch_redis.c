/*  Tests of sch_redis, the scheduler's connection to Redis, against a real
    redis-server that this test starts (TCP and a unix socket) in a
    temporary directory and stops at the end.

    Covered: the URL forms and what is refused; a database number, the
    unix socket and a password; pipelines in order; a transaction that
    Redis refuses leaves nothing; error replies judged transient or not; a
    lost connection noticed, its session ended, and connected again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../services/scheduler/sch_redis.h"
#include "harness_sch.h"

#include "dx_log.h"
#include "dx_msg.h"

static struct {
    ths_t sch;                  /* Redis and the test's own connection, for inspection */
    char sock [128];            /* Redis's unix socket besides its port */
} T;

/*  Runs one command (NULL-terminated arguments) through redis: its reply
    (caller frees), or NULL when it could not be sent. */
static redisReply *
s_command (sch_redis_t *redis, const char *first, ...)
{
    sch_batch_t batch = { 0 };
    sch_batch_cmd (&batch, first, NULL);
    va_list args;
    va_start (args, first);
    for (const char *arg = va_arg (args, const char *); arg; arg = va_arg (args, const char *))
        sch_batch_arg (&batch, arg);
    va_end (args);
    redisReply **replies;
    int rc = sch_redis_pipeline (redis, &batch, &replies);
    sch_batch_free (&batch);
    if (rc)
        return NULL;
    redisReply *reply = replies [0];
    free (replies);
    return reply;
}

/*  A new connection to url, which must connect. */
static sch_redis_t *
s_connected (const char *url)
{
    sch_redis_t *redis = sch_redis_new (url);
    assert_non_null (redis);
    assert_true (sch_redis_connected (redis));
    return redis;
}

/*  Redis on a port and on a unix socket (th_redis_up listens on a port
    alone), and the test's own connection. */
static int
s_setup (void **state)
{
    (void) state;
    signal (SIGPIPE, SIG_IGN);          /* as main.c does: redis may vanish */
    th_redis_t *redis = &T.sch.redis;
    if (th_tmpdir (redis->dir, sizeof redis->dir, "redis-test"))
        return -1;
    snprintf (T.sock, sizeof T.sock, "%s/redis.sock", redis->dir);
    redis->port = th_free_port ();
    if (redis->port <= 0 || (redis->pid = th_redis_start (redis->dir, redis->port, T.sock)) <= 0)
        return -1;
    snprintf (redis->url, sizeof redis->url, "redis://127.0.0.1:%d/0", redis->port);
    struct timeval tv = { 2, 0 };
    redis->raw = redisConnectWithTimeout ("127.0.0.1", redis->port, tv);
    return redis->raw && !redis->raw->err? 0: -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    ths_down (&T.sch);
    return 0;
}

static void
test_urls (void **state)
{
    (void) state;
    const char *bad [] = { "http://127.0.0.1:6379", "redis://127.0.0.1:0", "redis://h:99999",
                           "redis://h:port", "redis://127.0.0.1:6379/x", "unix://relative.sock",
                           "unix:///tmp/x.sock?db=x", "rediss://h:1", "redis://user@h:1",
                           "redis://:%zz@h:1", "redis://[::1", "", NULL };
    for (int i = 0; bad [i]; i++) {
        sch_redis_t *redis = sch_redis_new (bad [i]);
        if (redis)
            fail_msg ("malformed URL '%s' was accepted", bad [i]);
    }
    assert_null (sch_redis_new (NULL));

    //  Defaults and forms, without a reachable server where none is needed
    sch_redis_t *redis = sch_redis_new ("redis://");
    assert_non_null (redis);
    assert_string_equal (sch_redis_address (redis), "127.0.0.1:6379");
    sch_redis_destroy (&redis);
    redis = sch_redis_new ("redis://[::1]:1/2");
    assert_non_null (redis);
    assert_string_equal (sch_redis_address (redis), "[::1]:1");
    assert_false (sch_redis_connected (redis));
    usleep (120000);                    /* past the reconnect gap */
    assert_null (s_command (redis, "PING", NULL));
    assert_string_equal (sch_redis_status (redis), DX_UNAVAILABLE);
    assert_non_null (strstr (sch_redis_error (redis), "redis at [::1]:1 is unavailable"));
    sch_redis_destroy (&redis);
    sch_redis_destroy (&redis);

    //  A database number: writes land there
    char url [256];
    snprintf (url, sizeof url, "redis://127.0.0.1:%d/3", T.sch.redis.port);
    redis = s_connected (url);
    freeReplyObject (s_command (redis, "SET", "d3", "here", NULL));
    sch_redis_destroy (&redis);
    redisReply *r = ths_raw (&T.sch, "EXISTS d3");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    freeReplyObject (ths_raw (&T.sch, "SELECT 3"));
    r = ths_raw (&T.sch, "EXISTS d3");
    assert_int_equal (r->integer, 1);
    freeReplyObject (r);
    freeReplyObject (ths_raw (&T.sch, "FLUSHDB"));
    freeReplyObject (ths_raw (&T.sch, "SELECT 0"));

    //  The unix socket
    snprintf (url, sizeof url, "unix://%s", T.sock);
    redis = s_connected (url);
    assert_string_equal (sch_redis_address (redis), T.sock);
    r = s_command (redis, "PING", NULL);
    assert_non_null (r);
    assert_string_equal (r->str, "PONG");
    freeReplyObject (r);
    sch_redis_destroy (&redis);

    //  A password: wrong is UNAVAILABLE with a clear message, right works
    freeReplyObject (ths_raw (&T.sch, "CONFIG SET requirepass %s", "p@ss:w/rd"));
    freeReplyObject (ths_raw (&T.sch, "AUTH %s", "p@ss:w/rd"));
    snprintf (url, sizeof url, "redis://:wrong@127.0.0.1:%d", T.sch.redis.port);
    redis = sch_redis_new (url);
    assert_false (sch_redis_connected (redis));
    assert_string_equal (sch_redis_status (redis), DX_UNAVAILABLE);
    assert_non_null (strstr (sch_redis_error (redis), "AUTH failed"));
    assert_null (strstr (sch_redis_error (redis), "wrong"));
    sch_redis_destroy (&redis);
    snprintf (url, sizeof url, "redis://:p%%40ss%%3Aw%%2Frd@127.0.0.1:%d/0", T.sch.redis.port);
    redis = s_connected (url);
    r = s_command (redis, "PING", NULL);
    assert_non_null (r);
    freeReplyObject (r);
    sch_redis_destroy (&redis);
    freeReplyObject (ths_raw (&T.sch, "CONFIG SET requirepass %s", ""));
}

/*  A pipeline's replies come in the order of its commands; a transaction
    Redis refuses changes nothing and says why; a batch that ran out of
    memory is not sent. */
static void
test_pipeline_and_transaction (void **state)
{
    (void) state;
    sch_redis_t *redis = s_connected (T.sch.redis.url);
    sch_batch_t batch = { 0 };
    sch_batch_cmd (&batch, "SET", "k1", "one", NULL);
    sch_batch_cmd (&batch, "GET", "k1", NULL);
    sch_batch_cmd (&batch, "HSET", "h", NULL);
    sch_batch_argf (&batch, "f%d", 7);
    sch_batch_arg_take (&batch, strdup ("binary\r\nsafe"));
    sch_batch_cmd (&batch, "HGET", "h", "f7", NULL);
    assert_int_equal (sch_batch_size (&batch), 4);
    redisReply **replies;
    assert_int_equal (sch_redis_pipeline (redis, &batch, &replies), 0);
    assert_string_equal (replies [1]->str, "one");
    assert_string_equal (replies [3]->str, "binary\r\nsafe");
    sch_redis_replies_free (replies, 4);
    sch_batch_free (&batch);

    //  All or nothing: SET with a missing argument is refused when queued
    sch_batch_cmd (&batch, "SET", "k2", "two", NULL);
    sch_batch_cmd (&batch, "SET", "k3", NULL);
    assert_int_equal (sch_redis_transact (redis, &batch, "a test change"), -1);
    sch_batch_free (&batch);
    assert_string_equal (sch_redis_status (redis), DX_INTERNAL);
    assert_non_null (strstr (sch_redis_error (redis), "during a test change"));
    redisReply *r = ths_raw (&T.sch, "EXISTS k2");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    sch_batch_cmd (&batch, "SET", "k2", "two", NULL);
    assert_int_equal (sch_redis_transact (redis, &batch, "a test change"), 0);
    sch_batch_free (&batch);

    //  An allocation that failed voids the batch
    sch_batch_cmd (&batch, "SET", "k4", NULL);
    sch_batch_arg_take (&batch, NULL);
    assert_int_equal (sch_redis_transact (redis, &batch, "a test change"), -1);
    sch_batch_free (&batch);
    assert_string_equal (sch_redis_status (redis), DX_INTERNAL);
    assert_non_null (strstr (sch_redis_error (redis), "out of memory"));
    sch_redis_destroy (&redis);
}

/*  An error reply is UNAVAILABLE when Redis cannot serve now, INTERNAL
    when what was sent is wrong. */
static void
test_check (void **state)
{
    (void) state;
    sch_redis_t *redis = s_connected (T.sch.redis.url);
    redisReply ok = { .type = REDIS_REPLY_STATUS, .str = "OK", .len = 2 };
    redisReply loading = { .type = REDIS_REPLY_ERROR, .str = "LOADING Redis is loading",
                           .len = 24 };
    redisReply wrong = { .type = REDIS_REPLY_ERROR, .str = "ERR syntax error", .len = 16 };
    assert_int_equal (sch_redis_check (redis, &ok, "a read"), 0);
    assert_int_equal (sch_redis_check (redis, &loading, "a read"), -1);
    assert_string_equal (sch_redis_status (redis), DX_UNAVAILABLE);
    assert_int_equal (sch_redis_check (redis, &wrong, "a read"), -1);
    assert_string_equal (sch_redis_status (redis), DX_INTERNAL);
    assert_non_null (strstr (sch_redis_error (redis), "redis error during a read: ERR"));
    sch_redis_destroy (&redis);
}

/*  A connection Redis closes is noticed by the next command, which fails
    UNAVAILABLE and ends the session; the next one after the reconnect gap
    (or the cron) connects again. */
static void
test_lost_and_back (void **state)
{
    (void) state;
    sch_redis_t *redis = s_connected (T.sch.redis.url);
    uint64_t session = sch_redis_session (redis);
    freeReplyObject (ths_raw (&T.sch, "CLIENT KILL TYPE normal SKIPME yes"));
    assert_null (s_command (redis, "PING", NULL));
    assert_string_equal (sch_redis_status (redis), DX_UNAVAILABLE);
    assert_false (sch_redis_connected (redis));
    assert_true (sch_redis_session (redis) != session);
    assert_null (s_command (redis, "PING", NULL));     /* within the gap: no attempt */
    usleep (120000);
    sch_redis_tick (redis);
    assert_true (sch_redis_connected (redis));
    redisReply *r = s_command (redis, "PING", NULL);
    assert_non_null (r);
    freeReplyObject (r);
    sch_redis_destroy (&redis);
}

int
main (void)
{
    dx_log_init ("test_sch_redis");
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_urls),
        cmocka_unit_test (test_pipeline_and_transaction),
        cmocka_unit_test (test_check),
        cmocka_unit_test (test_lost_and_back),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
