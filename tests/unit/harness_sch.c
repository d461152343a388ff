/*  harness_sch: the scheduler tests' fixture around a redis-server of
    their own, and the raw commands on the test's connection. See
    harness_sch.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "harness_sch.h"
#include "../../services/scheduler/sch_cache.h"

#include "dx_msg.h"
#include "dx_util.h"

int
ths_up (ths_t *self, const char *prefix, const unsigned char *master)
{
    memset (self, 0, sizeof *self);
    signal (SIGPIPE, SIG_IGN);
    if (th_redis_up (&self->redis, prefix))
        return -1;
    if (!master)
        return 0;
    self->seal = dx_seal_new_key (master);
    self->store = sch_store_new (self->redis.url);
    return self->seal && self->store? 0: -1;
}

void
ths_down (ths_t *self)
{
    ths_engine_down (self);
    sch_store_destroy (&self->store);
    dx_seal_destroy (&self->seal);
    th_redis_down (&self->redis);
}

int
ths_engine_up (ths_t *self, int heartbeat_ms, int lease_ms)
{
    if (heartbeat_ms > 0)
        self->broker = sch_broker_new ("tcp://127.0.0.1:*", heartbeat_ms, lease_ms, NULL);
    self->engine = sch_engine_new (self->store, self->seal, self->broker, lease_ms);
    self->ctx = (sch_ctx_t) { .store = self->store, .read = sch_store_read (self->store),
                              .seal = self->seal, .broker = self->broker,
                              .engine = self->engine };
    return (heartbeat_ms <= 0 || self->broker) && self->engine? 0: -1;
}

void
ths_engine_down (ths_t *self)
{
    sch_engine_destroy (&self->engine);
    sch_broker_destroy (&self->broker);
}

json_t *
ths_req (const char *type, const char *fmt, ...)
{
    json_t *msg = dx_msg_new (type, NULL);
    json_object_set_new (msg, "deadline", json_integer (dx_now_ms () + 60000));
    if (fmt) {
        va_list args;
        va_start (args, fmt);
        json_error_t error;
        json_t *extra = json_vpack_ex (&error, 0, fmt, args);
        va_end (args);
        if (!extra)
            fail_msg ("bad test request format: %s", error.text);
        json_object_update (msg, extra);
        json_decref (extra);
    }
    return msg;
}

zsock_t *
ths_worker (ths_t *self, const char *service, int capacity, const char *worker,
            const char *active)
{
    zsock_t *dealer = zsock_new_dealer (sch_broker_endpoint (self->broker));
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    json_t *ready = dx_msg_new ("worker.ready", NULL);
    json_object_set_new (ready, "service", json_string (service));
    json_object_set_new (ready, "capacity", json_integer (capacity));
    json_object_set_new (ready, "worker", json_string (worker));
    if (active)
        json_object_set_new (ready, "active", json_pack ("[s]", active));
    assert_int_equal (dx_msg_send (dealer, NULL, ready), 0);
    json_decref (ready);
    return dealer;
}

/*  The reply of a command on the test's connection, which must come;
    when purge is set, purges the store's read cache. */
static redisReply *
s_vcommand (ths_t *self, int purge, const char *fmt, va_list args)
{
    redisReply *reply = redisvCommand (self->redis.raw, fmt, args);
    assert_non_null (reply);
    //  A write behind the scheduler's back, which only a test makes: the
    //  read cache must not answer with what it held before
    if (purge && self->store)
        sch_cache_purge (sch_store_cache (self->store));
    return reply;
}

redisReply *
ths_raw (ths_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    redisReply *reply = s_vcommand (self, 1, fmt, args);
    va_end (args);
    return reply;
}

char *
ths_raw_str (ths_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    redisReply *reply = s_vcommand (self, 0, fmt, args);
    va_end (args);
    char *text = reply->type == REDIS_REPLY_STRING? strdup (reply->str): NULL;
    freeReplyObject (reply);
    return text;
}

long long
ths_raw_int (ths_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    redisReply *reply = s_vcommand (self, 0, fmt, args);
    va_end (args);
    assert_int_equal (reply->type, REDIS_REPLY_INTEGER);
    long long n = reply->integer;
    freeReplyObject (reply);
    return n;
}
