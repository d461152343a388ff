/*  Tests of sch_health (health.get) and of what it reads: sch_redis_health
    against a real redis-server, the broker's counts with a real worker.

    Covered: an idle connection that Redis closed is seen at once, without
    a command and without a tick; the answer sends Redis nothing (its
    command count stays); the sentence names no address; the tick
    connects again once Redis is back; workers counted by service, none
    being no fault; the reply as JSON text when asked so; the scheduler's
    dispatch answers health.get, which names no cluster, while Redis is
    down. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/scheduler/sch_health.h"
#include "../../services/scheduler/sch_redis.h"
#include "../../services/scheduler/sch_server.h"
#include "harness.h"

#include "dx_log.h"
#include "dx_msg.h"
#include "dx_seal.h"
#include "dx_util.h"
#include "dx_worker.h"

#define HEARTBEAT_MS 50

static struct {
    th_redis_t redis;
    sch_store_t *store;
    sch_broker_t *broker;
    sch_ctx_t ctx;
} T;

static int
s_setup (void **state)
{
    (void) state;
    dx_log_init ("test");
    if (th_redis_up (&T.redis, "health"))
        return -1;
    T.store = sch_store_new (T.redis.url);
    T.broker = sch_broker_new ("tcp://127.0.0.1:*", HEARTBEAT_MS, 1000, NULL);
    if (!T.store || !T.broker)
        return -1;
    T.ctx = (sch_ctx_t) { .store = T.store, .read = sch_store_read (T.store),
                          .broker = T.broker };
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    sch_broker_destroy (&T.broker);
    sch_store_destroy (&T.store);
    th_redis_down (&T.redis);
    return 0;
}

/*  Commands Redis has processed, as INFO says (the INFO counts itself). */
static long long
s_commands (void)
{
    redisReply *reply = redisCommand (T.redis.raw, "INFO stats");
    assert_non_null (reply);
    assert_int_equal (reply->type, REDIS_REPLY_STRING);
    const char *at = strstr (reply->str, "total_commands_processed:");
    assert_non_null (at);
    long long n = atoll (at + strlen ("total_commands_processed:"));
    freeReplyObject (reply);
    return n;
}

/*  The body of the reply to a health.get (caller owns). */
static json_t *
s_health (int text)
{
    json_t *request = dx_msg_new ("health.get", NULL);
    json_object_set_new (request, "deadline", json_integer (dx_now_ms () + 5000));
    if (text)
        json_object_set_new (request, "text", json_true ());
    json_t *reply = sch_health_get (&T.ctx, request);
    assert_non_null (reply);
    assert_string_equal (dx_msg_str (reply, "status"), DX_OK);
    assert_string_equal (dx_msg_id (reply), dx_msg_id (request));
    json_t *body;
    if (text) {
        assert_null (json_object_get (reply, "body"));
        body = json_loads (dx_msg_str (reply, "text"), 0, NULL);
    }
    else
        body = json_incref (json_object_get (reply, "body"));
    assert_non_null (body);
    json_decref (reply);
    json_decref (request);
    return body;
}

/*  The count of workers of service in a health body. */
static json_int_t
s_workers (const json_t *body, const char *service)
{
    const json_t *count = json_object_get (json_object_get (body, "workers"), service);
    assert_true (json_is_integer (count));
    return json_integer_value (count);
}

/*  Runs the broker as the scheduler's loop would until service has want
    workers, at most 5 s. */
static void
s_wait_workers (const char *service, size_t want)
{
    zpoller_t *poller = zpoller_new (sch_broker_socket (T.broker), NULL);
    int64_t deadline = dx_mono_ms () + 5000;
    while (sch_broker_workers (T.broker, service, NULL) != want && dx_mono_ms () < deadline) {
        if (zpoller_wait (poller, 10))
            sch_broker_receive (T.broker);
        sch_broker_tick (T.broker);
    }
    zpoller_destroy (&poller);
    assert_int_equal (sch_broker_workers (T.broker, service, NULL), want);
}

static void
s_noop (const json_t *assign, dx_worker_job_t *job, void *arg)
{
    (void) assign; (void) job; (void) arg;
}

/*  Up: "ok", the services counted (none: 0, no fault); asked as text, the
    same body; and Redis heard nothing of it. */
static void
test_up_and_counted (void **state)
{
    (void) state;
    long long before = s_commands ();
    json_t *body = s_health (0);
    assert_string_equal (json_string_value (json_object_get (body, "redis")), "ok");
    assert_int_equal (s_workers (body, "aws"), 0);
    assert_int_equal (s_workers (body, "azure"), 0);
    assert_int_equal (s_workers (body, "vpn"), 0);
    json_decref (body);
    assert_int_equal (s_commands (), before + 1);       /* the INFO alone */

    dx_worker_args_t args = { "azure", 3, sch_broker_endpoint (T.broker), s_noop, NULL, 0 };
    zactor_t *worker = zactor_new (dx_worker_actor, &args);
    assert_non_null (worker);
    s_wait_workers ("azure", 1);
    body = s_health (1);
    assert_string_equal (json_string_value (json_object_get (body, "redis")), "ok");
    assert_int_equal (s_workers (body, "azure"), 1);
    assert_int_equal (s_workers (body, "aws"), 0);
    json_decref (body);
    zactor_destroy (&worker);
    s_wait_workers ("azure", 0);
}

/*  Redis stops: the next answer says so at once (no command, no tick),
    without the address; once it is back, a tick connects again. */
static void
test_redis_down_and_back (void **state)
{
    (void) state;
    sch_redis_t *redis = sch_store_redis (T.store);
    assert_true (sch_redis_connected (redis));
    redisFree (T.redis.raw);
    T.redis.raw = NULL;
    th_stop (&T.redis.pid);

    json_t *body = s_health (0);
    const char *said = json_string_value (json_object_get (body, "redis"));
    assert_non_null (said);
    assert_non_null (strstr (said, "unreachable"));
    char port [16];
    snprintf (port, sizeof port, "%d", T.redis.port);
    assert_null (strstr (said, port));
    assert_null (strstr (said, "127.0.0.1"));
    assert_false (sch_redis_connected (redis));
    json_decref (body);

    /* Still down: the tick fails to connect, the answer says why. */
    sch_redis_tick (redis);
    char why [256];
    assert_non_null (sch_redis_health (redis, why, sizeof why));
    assert_non_null (strstr (why, "unreachable: "));

    T.redis.pid = th_redis_start (T.redis.dir, T.redis.port, NULL);
    assert_true (T.redis.pid > 0);
    int64_t deadline = dx_mono_ms () + 5000;
    while (sch_redis_health (redis, why, sizeof why) && dx_mono_ms () < deadline) {
        sch_redis_tick (redis);
        zclock_sleep (20);
    }
    body = s_health (0);
    assert_string_equal (json_string_value (json_object_get (body, "redis")), "ok");
    json_decref (body);
    struct timeval timeout = { 5, 0 };
    T.redis.raw = redisConnectWithTimeout ("127.0.0.1", T.redis.port, timeout);
    assert_non_null (T.redis.raw);
}

/*  Through the scheduler's dispatch: health.get needs no cluster name,
    and is answered while Redis is down, with the other requests failing
    UNAVAILABLE. */
static void
test_dispatched (void **state)
{
    (void) state;
    unsigned char key [32];
    memset (key, 0x5a, sizeof key);
    dx_seal_t *seal = dx_seal_new_key (key);
    assert_non_null (seal);
    sch_server_t *server = sch_server_new ("tcp://127.0.0.1:*", T.store, seal, NULL);
    assert_non_null (server);
    sch_server_set_broker (server, T.broker);

    json_t *request = dx_msg_new ("health.get", NULL);
    json_object_set_new (request, "deadline", json_integer (dx_now_ms () + 5000));
    json_t *reply = sch_server_handle (server, request);
    assert_string_equal (dx_msg_str (reply, "status"), DX_OK);
    assert_string_equal (json_string_value (json_object_get (json_object_get (reply, "body"),
                                                             "redis")), "ok");
    json_decref (reply);

    redisFree (T.redis.raw);
    T.redis.raw = NULL;
    th_stop (&T.redis.pid);
    reply = sch_server_handle (server, request);
    assert_string_equal (dx_msg_str (reply, "status"), DX_OK);
    assert_non_null (strstr (json_string_value (json_object_get (json_object_get (reply, "body"),
                                                                 "redis")), "unreachable"));
    json_decref (reply);
    json_decref (request);

    request = dx_msg_new ("cluster.get", NULL);
    json_object_set_new (request, "deadline", json_integer (dx_now_ms () + 5000));
    json_object_set_new (request, "name", json_string ("c1"));
    reply = sch_server_handle (server, request);
    assert_string_equal (dx_msg_str (reply, "status"), DX_UNAVAILABLE);
    json_decref (reply);
    json_decref (request);

    sch_server_destroy (&server);
    dx_seal_destroy (&seal);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_up_and_counted),
        cmocka_unit_test (test_redis_down_and_back),
        cmocka_unit_test (test_dispatched),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
