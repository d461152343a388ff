/*  Tests of sch_broker, the scheduler's side of the worker protocol, against
    real workers: common/dx_worker run as an actor (its own thread and
    DEALER) and raw DEALERs for what a real worker never does (fall silent
    without a word, talk without announcing itself, send garbage). The
    broker is driven by a small loop in the test, as sch_server drives it.
    Heartbeats are short (50 ms) so expiry takes 150 ms; every wait is
    bounded. The registry is seen as the engine sees it: counts, and the
    worker sch_broker_pick gives. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../services/scheduler/sch_broker.h"

#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"
#include "dx_worker.h"

#define HEARTBEAT_MS 50

/*  A handler for workers that never get a job. */
static void
s_noop (const json_t *assign, dx_worker_job_t *job, void *arg)
{
    (void) assign; (void) job; (void) arg;
}

/*  Runs the broker as the scheduler's loop would, for ms milliseconds. */
static void
s_pump (sch_broker_t *broker, int64_t ms)
{
    int64_t deadline = dx_mono_ms () + ms;
    zpoller_t *poller = zpoller_new (sch_broker_socket (broker), NULL);
    int64_t next = sch_broker_tick (broker);
    while (dx_mono_ms () < deadline) {
        int64_t wakeup = next < deadline? next: deadline;
        int64_t wait = wakeup - dx_mono_ms ();
        if (zpoller_wait (poller, wait < 0? 0: (int) wait))
            sch_broker_receive (broker);
        if (dx_mono_ms () >= next)
            next = sch_broker_tick (broker);
    }
    zpoller_destroy (&poller);
}

/*  Pumps until service has want live workers, at most timeout_ms; the
    count reached. */
static size_t
s_wait_count (sch_broker_t *broker, const char *service, size_t want, int64_t timeout_ms)
{
    int64_t deadline = dx_mono_ms () + timeout_ms;
    size_t count = sch_broker_workers (broker, service, NULL);
    while (count != want && dx_mono_ms () < deadline) {
        s_pump (broker, 10);
        count = sch_broker_workers (broker, service, NULL);
    }
    return count;
}

/*  A real worker of service with capacity, connected to the broker. */
static zactor_t *
s_worker (sch_broker_t *broker, const char *service, int capacity)
{
    dx_worker_args_t args = { service, capacity, sch_broker_endpoint (broker),
                              s_noop, NULL, 0 };
    zactor_t *worker = zactor_new (dx_worker_actor, &args);
    assert_non_null (worker);
    return worker;
}

/*  A raw DEALER connected to the broker. */
static zsock_t *
s_dealer (sch_broker_t *broker)
{
    zsock_t *dealer = zsock_new_dealer (sch_broker_endpoint (broker));
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, 0);
    return dealer;
}

/*  Sends a message of type from a raw DEALER (worker.ready gets the fields
    of an aws worker of capacity 2). */
static void
s_say (zsock_t *dealer, const char *type)
{
    json_t *msg = dx_msg_new (type, NULL);
    if (strcmp (type, "worker.ready") == 0) {
        json_object_set_new (msg, "service", json_string ("aws"));
        json_object_set_new (msg, "capacity", json_integer (2));
        json_object_set_new (msg, "worker", json_string ("raw:1"));
    }
    assert_int_equal (dx_msg_send (dealer, NULL, msg), 0);
    json_decref (msg);
}

/*  Pumps the broker until the raw DEALER receives a message, at most
    timeout_ms; returns it (caller owns) or NULL. */
static json_t *
s_hear (sch_broker_t *broker, zsock_t *dealer, int64_t timeout_ms)
{
    int64_t deadline = dx_mono_ms () + timeout_ms;
    while (dx_mono_ms () < deadline) {
        s_pump (broker, 10);
        if (zsock_events (dealer) & ZMQ_POLLIN) {
            char err [DX_ERR_LEN];
            json_t *msg = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
            return msg;
        }
    }
    return NULL;
}

/*  Live workers of every service. */
static size_t
s_total (sch_broker_t *broker)
{
    return sch_broker_workers (broker, "aws", NULL) + sch_broker_workers (broker, "azure", NULL)
         + sch_broker_workers (broker, "vpn", NULL);
}

/*  The registry key (routing identity) of the one worker of service there
    is; caller frees. */
static char *
s_only_key (sch_broker_t *broker, const char *service)
{
    assert_int_equal (s_total (broker), 1);
    const char *key = sch_broker_pick (broker, service);
    assert_non_null (key);
    return strdup (key);
}

/*  A broker on an ephemeral loopback port. */
static sch_broker_t *
s_broker (int64_t heartbeat_ms)
{
    sch_broker_t *broker = sch_broker_new ("tcp://127.0.0.1:*", heartbeat_ms, 1000, NULL);
    assert_non_null (broker);
    return broker;
}

/*  A real worker registers with its service and capacity, is welcomed
    with the broker's intervals, and stays one live worker on one
    connection over many intervals: the broker heartbeats it (or it would
    reconnect, showing up under a new identity) and it heartbeats the
    broker (or it would expire). */
static void
test_register_and_stay_alive (void **state)
{
    (void) state;
    sch_broker_t *broker = s_broker (HEARTBEAT_MS);
    zactor_t *worker = s_worker (broker, "aws", 3);
    assert_int_equal (s_wait_count (broker, "aws", 1, 5000), 1);
    size_t capacity = 0;
    assert_int_equal (sch_broker_workers (broker, "aws", &capacity), 1);
    assert_int_equal (capacity, 3);
    assert_int_equal (sch_broker_workers (broker, "azure", NULL), 0);

    char *key = s_only_key (broker, "aws");
    for (int i = 0; i < 20; i++) {              /* 20 intervals of 3 quiet ones */
        s_pump (broker, HEARTBEAT_MS / 2);
        assert_int_equal (s_total (broker), 1);
        assert_string_equal (sch_broker_pick (broker, "aws"), key);
    }
    assert_int_equal (sch_broker_workers (broker, "aws", NULL), 1);
    free (key);
    zactor_destroy (&worker);
    sch_broker_destroy (&broker);
}

/*  A worker that falls silent (killed: no bye) is forgotten after 3
    intervals, not before. */
static void
test_silent_worker_expires (void **state)
{
    (void) state;
    sch_broker_t *broker = s_broker (HEARTBEAT_MS);
    zsock_t *dealer = s_dealer (broker);
    s_say (dealer, "worker.ready");
    json_t *welcome = s_hear (broker, dealer, 2000);
    int64_t heard = dx_mono_ms ();
    assert_non_null (welcome);
    assert_string_equal (dx_msg_type (welcome), "worker.welcome");
    assert_int_equal (dx_msg_int (welcome, "heartbeat_ms", 0), HEARTBEAT_MS);
    assert_int_equal (dx_msg_int (welcome, "lease_ms", 0), 1000);
    json_decref (welcome);
    assert_int_equal (sch_broker_workers (broker, "aws", NULL), 1);

    //  The broker heartbeats it meanwhile, though it says nothing back
    json_t *beat = s_hear (broker, dealer, 2000);
    assert_non_null (beat);
    assert_string_equal (dx_msg_type (beat), "heartbeat");
    json_decref (beat);

    assert_int_equal (s_wait_count (broker, "aws", 0, 2000), 0);
    assert_true (dx_mono_ms () - heard >= (3 - 1) * HEARTBEAT_MS);
    s_pump (broker, HEARTBEAT_MS);
    assert_int_equal (s_total (broker), 0);
    zsock_destroy (&dealer);
    sch_broker_destroy (&broker);
}

/*  worker.bye removes the worker at once: the interval is long (expiry
    would take 3 s), the count drops well before. Both from a real worker
    stopping and from a raw DEALER. */
static void
test_bye_removes_at_once (void **state)
{
    (void) state;
    sch_broker_t *broker = s_broker (1000);
    zactor_t *worker = s_worker (broker, "vpn", 1);
    assert_int_equal (s_wait_count (broker, "vpn", 1, 5000), 1);
    zactor_destroy (&worker);                   /* drains, says worker.bye */
    int64_t start = dx_mono_ms ();
    assert_int_equal (s_wait_count (broker, "vpn", 0, 1000), 0);
    assert_true (dx_mono_ms () - start < 1000);
    assert_int_equal (s_total (broker), 0);

    zsock_t *dealer = s_dealer (broker);
    s_say (dealer, "worker.ready");
    json_t *welcome = s_hear (broker, dealer, 2000);
    assert_non_null (welcome);
    json_decref (welcome);
    assert_int_equal (sch_broker_workers (broker, "aws", NULL), 1);
    s_say (dealer, "worker.bye");
    assert_int_equal (s_wait_count (broker, "aws", 0, 500), 0);
    assert_int_equal (s_total (broker), 0);
    zsock_destroy (&dealer);
    sch_broker_destroy (&broker);
}

/*  Any message but worker.ready from an identity the broker does not know
    is answered worker.reconnect; a real worker then announces itself
    again, here after the broker restarted on the same endpoint. */
static void
test_unknown_identity_reconnects (void **state)
{
    (void) state;
    sch_broker_t *broker = s_broker (HEARTBEAT_MS);
    zsock_t *dealer = s_dealer (broker);
    s_say (dealer, "heartbeat");
    json_t *answer = s_hear (broker, dealer, 2000);
    assert_non_null (answer);
    assert_string_equal (dx_msg_type (answer), "worker.reconnect");
    json_decref (answer);
    assert_int_equal (s_total (broker), 0);
    zsock_destroy (&dealer);

    zactor_t *worker = s_worker (broker, "azure", 4);
    assert_int_equal (s_wait_count (broker, "azure", 1, 5000), 1);
    char *endpoint = strdup (sch_broker_endpoint (broker));
    sch_broker_destroy (&broker);
    //  The same port again: the old socket's close may take a moment
    int64_t deadline = dx_mono_ms () + 5000;
    while (!broker && dx_mono_ms () < deadline)
        if (!(broker = sch_broker_new (endpoint, HEARTBEAT_MS, 1000, NULL)))
            zclock_sleep (20);
    free (endpoint);
    assert_non_null (broker);
    size_t capacity = 0;
    assert_int_equal (s_wait_count (broker, "azure", 1, 5000), 1);
    assert_int_equal (sch_broker_workers (broker, "azure", &capacity), 1);
    assert_int_equal (capacity, 4);
    zactor_destroy (&worker);
    sch_broker_destroy (&broker);
}

/*  Workers of different services are counted apart, each with its own
    capacity. */
static void
test_services_counted_apart (void **state)
{
    (void) state;
    sch_broker_t *broker = s_broker (HEARTBEAT_MS);
    zactor_t *aws = s_worker (broker, "aws", 2);
    zactor_t *azure = s_worker (broker, "azure", 5);
    assert_int_equal (s_wait_count (broker, "aws", 1, 5000), 1);
    assert_int_equal (s_wait_count (broker, "azure", 1, 5000), 1);
    s_pump (broker, 2 * HEARTBEAT_MS);
    size_t capacity = 0;
    assert_int_equal (sch_broker_workers (broker, "aws", &capacity), 1);
    assert_int_equal (capacity, 2);
    assert_int_equal (sch_broker_workers (broker, "azure", &capacity), 1);
    assert_int_equal (capacity, 5);
    assert_int_equal (sch_broker_workers (broker, "vpn", &capacity), 0);
    assert_int_equal (capacity, 0);
    assert_int_equal (sch_broker_workers (broker, NULL, NULL), 0);
    zactor_destroy (&aws);
    zactor_destroy (&azure);
    sch_broker_destroy (&broker);
}

/*  Garbage (not msgpack, an empty frame, several frames, a map of an
    unknown type, a worker.ready with a bad capacity) is dropped; the broker
    goes on serving real workers. */
static void
test_survives_garbage (void **state)
{
    (void) state;
    sch_broker_t *broker = s_broker (HEARTBEAT_MS);
    zsock_t *dealer = s_dealer (broker);
    zstr_send (dealer, "not msgpack at all");
    zstr_send (dealer, "");
    zstr_sendx (dealer, "two", "frames", NULL);
    static const unsigned char junk [] = { 0xc1, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x00 };
    zframe_t *frame = zframe_new (junk, sizeof junk);
    assert_int_equal (zframe_send (&frame, dealer, 0), 0);
    json_t *bad = dx_msg_new ("worker.ready", NULL);
    json_object_set_new (bad, "service", json_string ("aws"));
    json_object_set_new (bad, "capacity", json_integer (0));
    assert_int_equal (dx_msg_send (dealer, NULL, bad), 0);
    json_decref (bad);
    json_t *odd = dx_msg_new ("no.such.type", NULL);
    assert_int_equal (dx_msg_send (dealer, NULL, odd), 0);
    json_decref (odd);
    s_pump (broker, 200);
    assert_int_equal (s_total (broker), 0);

    zactor_t *worker = s_worker (broker, "aws", 1);
    assert_int_equal (s_wait_count (broker, "aws", 1, 5000), 1);
    zactor_destroy (&worker);
    zsock_destroy (&dealer);
    sch_broker_destroy (&broker);
}

int
main (void)
{
    dx_log_init ("test");
    zsys_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_register_and_stay_alive),
        cmocka_unit_test (test_silent_worker_expires),
        cmocka_unit_test (test_bye_removes_at_once),
        cmocka_unit_test (test_unknown_identity_reconnects),
        cmocka_unit_test (test_services_counted_apart),
        cmocka_unit_test (test_survives_garbage),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return failed;
}
