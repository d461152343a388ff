/*  Tests of the outbox of sch_redis (sch_redis_write and what it keeps),
    against a real redis-server this test starts, reached directly or
    through a proxy here that can cut a connection at the worst moment:
    after Redis carried out a transaction, before its answer comes back.

    Covered: writes Redis refuses for now (NOREPLICAS) are kept, every
    other command fails UNAVAILABLE saying how many wait, and they are
    written in order once Redis takes writes; the same across a Redis that
    is gone and started again; a write cut off after Redis carried it out
    is not carried out again, one cut off before is carried out once; a
    write Redis refuses for good is not kept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../services/scheduler/sch_redis.h"
#include "harness_sch.h"

#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

/*  What the proxy does with the next chunk that holds an EXEC. */
typedef enum { S_PASS, S_CUT_AFTER, S_CUT_BEFORE } s_mode_t;

static struct {
    ths_t sch;                  /* Redis and the test's own connection, for inspection */
    int proxy_fd, proxy_port;   /* the proxy's listening socket */
    volatile s_mode_t mode;
    volatile int stop;
    pthread_t proxy;
} T;


//  ---------------------------------------------------------------------
//  A proxy that cuts connections

static int
s_connect_redis (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET,
                                .sin_port = htons ((uint16_t) T.sch.redis.port),
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    if (fd >= 0 && connect (fd, (struct sockaddr *) &addr, sizeof addr)) {
        close (fd);
        fd = -1;
    }
    return fd;
}

static void
s_close_pair (int *client, int *server)
{
    if (*client >= 0)
        close (*client);
    if (*server >= 0)
        close (*server);
    *client = *server = -1;
}

/*  One connection at a time, relayed both ways; a chunk from the client
    that holds an EXEC is, once, dropped with the connection (S_CUT_BEFORE)
    or relayed and its answer waited for and dropped with the connection
    (S_CUT_AFTER). */
static void *
s_proxy_run (void *arg)
{
    (void) arg;
    int client = -1, server = -1;
    char buf [65536];
    while (!T.stop) {
        struct pollfd fds [3] = { { T.proxy_fd, POLLIN, 0 }, { client, POLLIN, 0 },
                                  { server, POLLIN, 0 } };
        if (poll (fds, 3, 20) <= 0)
            continue;
        if (fds [0].revents & POLLIN) {
            s_close_pair (&client, &server);
            client = accept (T.proxy_fd, NULL, NULL);
            server = s_connect_redis ();
            continue;
        }
        if (fds [1].revents) {
            ssize_t n = read (client, buf, sizeof buf);
            int exec = n > 0 && memmem (buf, (size_t) n, "EXEC\r\n", 6) != NULL;
            s_mode_t mode = exec? T.mode: S_PASS;
            if (n > 0 && mode != S_CUT_BEFORE && write (server, buf, (size_t) n) != n)
                n = -1;
            if (mode == S_CUT_AFTER) {
                struct pollfd answer = { server, POLLIN, 0 };
                if (poll (&answer, 1, 2000) == 1 && read (server, buf, sizeof buf) <= 0)
                    n = -1;
            }
            if (mode != S_PASS)
                T.mode = S_PASS;
            if (n <= 0 || mode != S_PASS)
                s_close_pair (&client, &server);
            continue;
        }
        if (fds [2].revents) {
            ssize_t n = read (server, buf, sizeof buf);
            if (n <= 0 || write (client, buf, (size_t) n) != n)
                s_close_pair (&client, &server);
        }
    }
    s_close_pair (&client, &server);
    return NULL;
}

static int
s_proxy_start (void)
{
    T.proxy_fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    if (T.proxy_fd < 0 || bind (T.proxy_fd, (struct sockaddr *) &addr, sizeof addr)
    ||  listen (T.proxy_fd, 4) || getsockname (T.proxy_fd, (struct sockaddr *) &addr, &len))
        return -1;
    T.proxy_port = ntohs (addr.sin_port);
    return pthread_create (&T.proxy, NULL, s_proxy_run, NULL);
}


//  ---------------------------------------------------------------------
//  Helpers

/*  A connection through the proxy (via_proxy) or straight to Redis. */
static sch_redis_t *
s_redis (int via_proxy)
{
    char url [64];
    snprintf (url, sizeof url, "redis://127.0.0.1:%d/0", via_proxy? T.proxy_port: T.sch.redis.port);
    sch_redis_t *redis = sch_redis_new (url);
    assert_non_null (redis);
    assert_true (sch_redis_connected (redis));
    return redis;
}

/*  Writes change n as the store does: a value and its event, the witness. */
static int
s_write (sch_redis_t *redis, int n, uint64_t *serial)
{
    sch_batch_t batch = { 0 };
    sch_batch_cmd (&batch, "HSET", "dexter:{t}:h", "last", NULL);
    sch_batch_argf (&batch, "%d", n);
    sch_batch_cmd (&batch, "XADD", "dexter:{t}:events", "MAXLEN", "~", "100", "*",
                   "type", "test", NULL);
    sch_batch_arg (&batch, "n");
    sch_batch_argf (&batch, "%d", n);
    sch_batch_witness (&batch);
    return sch_redis_write (redis, &batch, "a test write", serial);
}

/*  The events' n, in stream order, as "1,2,3" ("" for none). */
static void
s_events (char *text, size_t size)
{
    redisReply *reply = ths_raw (&T.sch, "XRANGE dexter:{t}:events - +");
    text [0] = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *fields = reply->element [i]->element [1];
        size_t len = strlen (text);
        snprintf (text + len, size - len, "%s%s", len? ",": "", fields->element [3]->str);
    }
    freeReplyObject (reply);
}

/*  Redis refuses writes for now, as with too few replicas (or a disk it
    cannot write: MISCONF); reads go on. */
static void
s_refuse_writes (int refuse)
{
    freeReplyObject (ths_raw (&T.sch, "CONFIG SET min-replicas-to-write %d", refuse));
}


//  ---------------------------------------------------------------------
//  Fixtures

static int
s_setup (void **state)
{
    (void) state;
    return ths_up (&T.sch, "outbox-test", NULL) == 0 && s_proxy_start () == 0? 0: -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    T.stop = 1;
    pthread_join (T.proxy, NULL);
    close (T.proxy_fd);
    ths_down (&T.sch);
    return 0;
}

static int
s_test_setup (void **state)
{
    (void) state;
    freeReplyObject (ths_raw (&T.sch, "FLUSHALL"));
    s_refuse_writes (0);
    T.mode = S_PASS;
    return 0;
}


//  ---------------------------------------------------------------------
//  Tests

/*  Writes Redis refuses for now are kept, in order; meanwhile nothing
    else is sent and the failure says how many wait; once Redis takes
    writes they are written, in order, and nothing is left. */
static void
test_kept_in_order (void **state)
{
    (void) state;
    sch_redis_t *redis = s_redis (0);
    assert_int_equal (s_write (redis, 1, NULL), 0);
    s_refuse_writes (1);
    uint64_t serials [3];
    for (int n = 2; n <= 4; n++)
        assert_int_equal (s_write (redis, n, &serials [n - 2]), 1);
    assert_int_equal (sch_redis_kept (redis), 3);
    assert_true (serials [0] < serials [1] && serials [1] < serials [2]);
    assert_false (sch_redis_written (redis, serials [0]));

    //  A read would see state older than the writes made: refused
    sch_batch_t batch = { 0 };
    sch_batch_cmd (&batch, "HGET", "dexter:{t}:h", "last", NULL);
    redisReply **replies;
    assert_int_equal (sch_redis_pipeline (redis, &batch, &replies), -1);
    assert_string_equal (sch_redis_status (redis), DX_UNAVAILABLE);
    assert_non_null (strstr (sch_redis_error (redis), "3 accepted writes wait for it"));
    assert_int_equal (sch_redis_flush (redis), -1);

    s_refuse_writes (0);
    sch_redis_tick (redis);             /* the cron sends what is kept */
    assert_int_equal (sch_redis_kept (redis), 0);
    assert_true (sch_redis_written (redis, serials [2]));
    char events [64];
    s_events (events, sizeof events);
    assert_string_equal (events, "1,2,3,4");
    assert_int_equal (sch_redis_pipeline (redis, &batch, &replies), 0);
    assert_string_equal (replies [0]->str, "4");
    sch_redis_replies_free (replies, 1);
    sch_batch_free (&batch);
    sch_redis_destroy (&redis);
}

/*  Redis gone altogether (its process stopped): writes are kept, and made
    by the first command once a Redis listens there again. */
static void
test_kept_while_gone (void **state)
{
    (void) state;
    sch_redis_t *redis = s_redis (0);
    redisFree (T.sch.redis.raw);
    th_stop (&T.sch.redis.pid);
    assert_int_equal (s_write (redis, 1, NULL), 1);
    usleep (120000);                    /* past the reconnect gap */
    assert_int_equal (s_write (redis, 2, NULL), 1);
    assert_int_equal (sch_redis_kept (redis), 2);
    T.sch.redis.pid = th_redis_start (T.sch.redis.dir, T.sch.redis.port, NULL);
    assert_true (T.sch.redis.pid > 0);
    struct timeval tv = { 2, 0 };
    T.sch.redis.raw = redisConnectWithTimeout ("127.0.0.1", T.sch.redis.port, tv);
    assert_false (T.sch.redis.raw->err);
    usleep (120000);
    assert_int_equal (s_write (redis, 3, NULL), 0);
    char events [64];
    s_events (events, sizeof events);
    assert_string_equal (events, "1,2,3");
    sch_redis_destroy (&redis);
}

/*  The connection breaks after Redis carried a write out, before its
    answer came: kept as uncertain, it is found in Redis and not carried
    out again. */
static void
test_cut_after (void **state)
{
    (void) state;
    sch_redis_t *redis = s_redis (1);
    assert_int_equal (s_write (redis, 1, NULL), 0);
    T.mode = S_CUT_AFTER;
    assert_int_equal (s_write (redis, 2, NULL), 1);
    char events [64];
    s_events (events, sizeof events);
    assert_string_equal (events, "1,2");                /* Redis has it */
    usleep (120000);
    assert_int_equal (sch_redis_flush (redis), 0);
    s_events (events, sizeof events);
    assert_string_equal (events, "1,2");
    sch_redis_destroy (&redis);
}

/*  The connection breaks before Redis saw the write: it is not found, and
    carried out once; so is one cut off on an empty stream. */
static void
test_cut_before (void **state)
{
    (void) state;
    sch_redis_t *redis = s_redis (1);
    T.mode = S_CUT_BEFORE;
    assert_int_equal (s_write (redis, 1, NULL), 1);
    char events [64];
    s_events (events, sizeof events);
    assert_string_equal (events, "");
    usleep (120000);
    assert_int_equal (s_write (redis, 2, NULL), 0);
    T.mode = S_CUT_BEFORE;
    assert_int_equal (s_write (redis, 3, NULL), 1);
    usleep (120000);
    assert_int_equal (sch_redis_flush (redis), 0);
    s_events (events, sizeof events);
    assert_string_equal (events, "1,2,3");
    sch_redis_destroy (&redis);
}

/*  A write Redis refuses for good (a bug in it) is not kept: it would
    hold up every write after it. */
static void
test_refused_for_good (void **state)
{
    (void) state;
    sch_redis_t *redis = s_redis (0);
    freeReplyObject (ths_raw (&T.sch, "SET dexter:{t}:h not-a-hash"));
    assert_int_equal (s_write (redis, 1, NULL), -1);
    assert_string_equal (sch_redis_status (redis), DX_INTERNAL);
    assert_int_equal (sch_redis_kept (redis), 0);
    freeReplyObject (ths_raw (&T.sch, "DEL dexter:{t}:h"));
    assert_int_equal (s_write (redis, 2, NULL), 0);
    sch_redis_destroy (&redis);
}

int
main (void)
{
    dx_log_init ("test_sch_outbox");
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup (test_kept_in_order, s_test_setup),
        cmocka_unit_test_setup (test_kept_while_gone, s_test_setup),
        cmocka_unit_test_setup (test_cut_after, s_test_setup),
        cmocka_unit_test_setup (test_cut_before, s_test_setup),
        cmocka_unit_test_setup (test_refused_for_good, s_test_setup),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
