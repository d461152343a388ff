/*  Unit tests for common/dx_worker.c: the shared job loop of the workers.

    Each test runs a worker as a czmq actor against a fake scheduler: a
    ROUTER on a random loopback port that the test thread drives message by
    message with dx_msg, as proto/PROTOCOL.md describes. The handler is
    steered by the step's kind; counters shared with it are atomics. Every
    wait is bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dx_cloud_metrics.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"
#include "dx_worker.h"

#define WAIT_MS       3000      /* bound of every expected message */
#define HEARTBEAT_MS  50
#define LEASE_MS      300


//  ---------------------------------------------------------------------
//  The handler and what it shares with the tests

typedef struct {
    atomic_int running;         /* handlers running now */
    atomic_int max_running;     /* the most at once */
    atomic_int started;
    atomic_int finished;
    atomic_int cancel_seen;     /* handlers that saw their cancel flag */
    atomic_int release;         /* "hold" handlers return once set */
    atomic_int credentials_ok;  /* handlers that got the credentials */
} ctl_t;

static ctl_t s_ctl;

static void
s_ctl_reset (void)
{
    memset (&s_ctl, 0, sizeof s_ctl);
}

/*  Waits (bounded) until *counter reaches value. */
static int
s_wait_for (atomic_int *counter, int value)
{
    int64_t deadline = dx_mono_ms () + WAIT_MS;
    while (atomic_load (counter) < value && dx_mono_ms () < deadline)
        zclock_sleep (5);
    return atomic_load (counter) >= value;
}

/*  Kinds: "quick" reports a resource; "fail" fails permanently; "hold"
    runs until released or cancelled (at most 2 s); "stubborn" ignores its
    cancel flag for 1 s. */
static void
s_handler (const json_t *assign, dx_worker_job_t *job, void *arg)
{
    ctl_t *ctl = (ctl_t *) arg;
    int now = atomic_fetch_add (&ctl->running, 1) + 1;
    int max = atomic_load (&ctl->max_running);
    while (now > max && !atomic_compare_exchange_weak (&ctl->max_running, &max, now))
        ;
    atomic_fetch_add (&ctl->started, 1);
    const char *secret = dx_msg_str (json_object_get (assign, "credentials"),
                                     "aws_secret_access_key");
    if (secret && streq (secret, "s3cret"))
        atomic_fetch_add (&ctl->credentials_ok, 1);

    const char *kind = dx_msg_str (json_object_get (assign, "step"), "kind");
    if (streq (kind, "quick"))
        dx_worker_job_add_resource (job, json_pack ("{s:s, s:s, s:s}", "kind", "vpc",
                                    "provider_id", "vpc-0123", "cidr", "10.0.0.0/16"));
    else
    if (streq (kind, "fail"))
        dx_worker_job_fail (job, 1, "AuthFailure", "AWS was not able to validate "
                            "the provided access credentials");
    else
    if (streq (kind, "hold")) {
        int64_t deadline = dx_mono_ms () + 2000;
        while (!atomic_load (&ctl->release) && dx_mono_ms () < deadline) {
            if (dx_worker_job_cancelled (job)) {
                atomic_fetch_add (&ctl->cancel_seen, 1);
                dx_worker_job_fail (job, 0, "CANCELLED", "cancelled by the scheduler");
                break;
            }
            zclock_sleep (5);
        }
    }
    else
    if (streq (kind, "progress")) {
        char longer [400];
        memset (longer, 'x', sizeof longer - 1);
        longer [sizeof longer - 1] = 0;
        dx_worker_job_progress (job, "first");
        zclock_sleep (20);
        dx_worker_job_progress (job, "%s", longer);
        zclock_sleep (20);
        dx_worker_job_progress (job, "last %d", 3);
    }
    else
    if (streq (kind, "latin1"))
        dx_worker_job_fail (job, 0, "Caf\xe9", "r\xe9seau indisponible");
    else
    if (streq (kind, "stubborn"))
        zclock_sleep (1000);
    else
        dx_worker_job_retry (job, "UNKNOWN_STEP", "no such step");
    atomic_fetch_sub (&ctl->running, 1);
    atomic_fetch_add (&ctl->finished, 1);
}


//  ---------------------------------------------------------------------
//  The fake scheduler

typedef struct {
    zsock_t *router;
    zframe_t *identity;         /* of the last message received */
    char endpoint [64];
    int64_t next_beat;          /* when the fake heartbeats the worker next */
    char worker [300];          /* the worker's name, when not ours */
    int welcomed;               /* a welcome was sent: a new connection gets one too */
} fake_t;

static void s_send (fake_t *fake, json_t *msg);
static void s_welcome (fake_t *fake);

/*  A worker's name as it announces itself: host:pid. */
static void
s_name_of (int pid, char *name, size_t size)
{
    char host [256];
    if (gethostname (host, sizeof host) != 0)
        snprintf (host, sizeof host, "unknown");
    host [sizeof host - 1] = 0;
    snprintf (name, size, "%s:%d", host, pid);
}

static const char *
s_our_name (void)
{
    static char name [300];
    if (!*name)
        s_name_of ((int) getpid (), name, sizeof name);
    return name;
}

/*  A name of one of this process's workers: host:pid, or host:pid.N for
    the ones after the first. */
static int
s_is_ours (const char *name)
{
    size_t len = strlen (s_our_name ());
    return name && strncmp (name, s_our_name (), len) == 0
        && (name [len] == 0 || name [len] == '.');
}

static void
s_fake_bind (fake_t *fake, const char *endpoint)
{
    //  A port just released may need a moment before it binds again
    int64_t deadline = dx_mono_ms () + WAIT_MS;
    do {
        fake->router = zsock_new (ZMQ_ROUTER);
        assert_non_null (fake->router);
        //  libzmq's own bind: port * is the kernel's choice (port 0), where
        //  czmq would scan from 49152 (or draw from a time-seeded random),
        //  which collides with other test processes started alongside
        if (zmq_bind (zsock_resolve (fake->router), endpoint) == 0)
            break;
        zsock_destroy (&fake->router);
        zclock_sleep (20);
    } while (dx_mono_ms () < deadline);
    assert_non_null (fake->router);
    char *bound = zsock_last_endpoint (fake->router);
    snprintf (fake->endpoint, sizeof fake->endpoint, "%s", bound);
    zstr_free (&bound);
}

static void
s_fake_unbind (fake_t *fake)
{
    zframe_destroy (&fake->identity);
    zsock_destroy (&fake->router);
}

/*  The next message of type (others skipped), or NULL after timeout_ms.
    Meanwhile the fake heartbeats the worker, as a scheduler does. */
static json_t *
s_expect (fake_t *fake, const char *type, int timeout_ms)
{
    int64_t deadline = dx_mono_ms () + timeout_ms;
    while (true) {
        int64_t now = dx_mono_ms ();
        if (now >= deadline)
            return NULL;
        if (fake->identity && now >= fake->next_beat) {
            s_send (fake, dx_msg_new ("heartbeat", NULL));
            fake->next_beat = now + HEARTBEAT_MS;
        }
        int64_t wait = deadline - now;
        if (fake->next_beat - now < wait)
            wait = fake->next_beat - now;
        zsock_set_rcvtimeo (fake->router, wait < 1? 1: (int) wait);
        zframe_t *identity = NULL;
        char err [DX_ERR_LEN];
        json_t *msg = dx_msg_recv (fake->router, &identity, NULL, err, sizeof err);
        //  Only our worker counts: another test process running at the
        //  same time may have a worker connected to a port we reuse. A new
        //  connection of ours starts with worker.ready naming our pid.
        if (msg && streq (dx_msg_type (msg), "worker.ready")
        &&  (*fake->worker? streq (dx_msg_str (msg, "worker"), fake->worker)
                           : s_is_ours (dx_msg_str (msg, "worker")))) {
            zframe_destroy (&fake->identity);
            fake->identity = identity;
            identity = NULL;
            //  A newer connection than the one welcomed (the worker kept
            //  reconnecting while we were away): welcomed too, as the
            //  scheduler would
            if (fake->welcomed && !streq (type, "worker.ready"))
                s_welcome (fake);
        }
        int ours = fake->identity && (!identity || zframe_eq (identity, fake->identity));
        zframe_destroy (&identity);
        if (!msg) {
            if (!strstr (err, "no message received") && ours)
                fail_msg ("the worker sent a malformed message: %s", err);
            continue;
        }
        if (ours && streq (dx_msg_type (msg), type))
            return msg;
        json_decref (msg);
    }
}

/*  Like s_expect, failing the test when nothing comes. */
static json_t *
s_must (fake_t *fake, const char *type)
{
    json_t *msg = s_expect (fake, type, WAIT_MS);
    if (!msg)
        fail_msg ("no %s from the worker within %d ms", type, WAIT_MS);
    return msg;
}

static void
s_send (fake_t *fake, json_t *msg)
{
    assert_non_null (fake->identity);
    assert_int_equal (dx_msg_send (fake->router, fake->identity, msg), 0);
    json_decref (msg);
}

static void
s_welcome (fake_t *fake)
{
    fake->welcomed = 1;
    s_send (fake, json_pack ("{s:i, s:s, s:s, s:i, s:i}", "v", 1, "type", "worker.welcome",
                             "id", "w1", "heartbeat_ms", HEARTBEAT_MS, "lease_ms", LEASE_MS));
}

static void
s_assign (fake_t *fake, const char *job, int attempt, const char *kind)
{
    json_t *msg = dx_msg_new ("job.assign", NULL);
    json_object_update_new (msg, json_pack ("{s:s, s:i, s:s, s:i, s:{s:s, s:s}, "
                            "s:{s:s, s:s}, s:i}", "job", job, "attempt", attempt,
                            "cluster", "c1", "generation", 2, "step", "kind", kind,
                            "name", "network", "credentials",
                            "aws_access_key_id", "AKIAABCDEFGHIJKLMNOP",
                            "aws_secret_access_key", "s3cret", "lease_ms", LEASE_MS));
    s_send (fake, msg);
}

static void
s_job_message (fake_t *fake, const char *type, const char *job, int attempt)
{
    json_t *msg = dx_msg_new (type, NULL);
    json_object_set_new (msg, "job", json_string (job));
    json_object_set_new (msg, "attempt", json_integer (attempt));
    s_send (fake, msg);
}

/*  Binds a fake, starts a worker on it and completes ready -> welcome. */
static zactor_t *
s_start (fake_t *fake, int capacity, int64_t drain_ms)
{
    s_ctl_reset ();
    s_fake_bind (fake, "tcp://127.0.0.1:*");
    dx_worker_args_t args = { "aws", capacity, fake->endpoint, s_handler, &s_ctl, drain_ms };
    zactor_t *worker = zactor_new (dx_worker_actor, &args);
    assert_non_null (worker);
    json_t *ready = s_must (fake, "worker.ready");
    assert_string_equal (dx_msg_str (ready, "service"), "aws");
    assert_int_equal (dx_msg_int (ready, "capacity", 0), capacity);
    assert_non_null (strchr (dx_msg_str (ready, "worker"), ':'));
    json_decref (ready);
    s_welcome (fake);
    return worker;
}

/*  Stops the worker (as SIGTERM would) and checks it says goodbye. */
static void
s_stop (fake_t *fake, zactor_t **worker_p)
{
    zactor_destroy (worker_p);
    json_t *bye = s_must (fake, "worker.bye");
    json_decref (bye);
    s_fake_unbind (fake);
}

/*  The job.result for job, checked for attempt and outcome. */
static json_t *
s_result (fake_t *fake, const char *job, int attempt, const char *outcome)
{
    json_t *result = s_must (fake, "job.result");
    assert_string_equal (dx_msg_str (result, "job"), job);
    assert_int_equal (dx_msg_int (result, "attempt", -1), attempt);
    assert_string_equal (dx_msg_str (result, "outcome"), outcome);
    assert_true (json_is_array (json_object_get (result, "resources")));
    return result;
}

static int
s_has (const json_t *array, const char *id)
{
    size_t i;
    const json_t *value;
    json_array_foreach (array, i, value)
        if (json_is_string (value) && streq (json_string_value (value), id))
            return 1;
    return 0;
}


//  ---------------------------------------------------------------------
//  Tests

/*  ready -> welcome, then heartbeats at the adopted interval, carrying the
    running jobs. */
static void
test_welcome_and_heartbeats (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 2, 1000);

    int64_t start = dx_mono_ms ();
    for (int i = 0; i < 4; i++) {
        json_t *beat = s_must (&fake, "heartbeat");
        assert_int_equal (json_array_size (json_object_get (beat, "active")), 0);
        json_decref (beat);
    }
    //  Four beats at 50 ms: well under the 1000 ms default interval
    assert_true (dx_mono_ms () - start < 900);

    s_assign (&fake, "job-a", 1, "hold");
    assert_true (s_wait_for (&s_ctl.started, 1));
    int seen = 0;
    for (int i = 0; i < 10 && !seen; i++) {
        json_t *beat = s_must (&fake, "heartbeat");
        seen = s_has (json_object_get (beat, "active"), "job-a");
        json_decref (beat);
    }
    assert_true (seen);
    atomic_store (&s_ctl.release, 1);
    json_decref (s_result (&fake, "job-a", 1, "done"));
    json_t *beat = s_must (&fake, "heartbeat");
    assert_false (s_has (json_object_get (beat, "active"), "job-a"));
    json_decref (beat);
    s_stop (&fake, &worker);
}

/*  Heartbeats carry the process's cloud metrics, cumulative, once it
    counted something. */
static void
test_heartbeat_metrics (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 2, 1000);
    const char *key = "dexter_cloud_calls_total{provider=\"aws\",action=\"RunInstances\","
                      "outcome=\"ok\"}";
    json_t *beat = s_must (&fake, "heartbeat");
    json_t *metrics = json_object_get (beat, "metrics");
    json_int_t before = json_integer_value (json_object_get (metrics, key));
    json_decref (beat);

    dx_cloud_metrics_call ("aws", "RunInstances", 1, DX_RETRY_NO, 0.2);
    dx_cloud_metrics_call ("aws", "RunInstances", 1, DX_RETRY_NO, 0.3);
    json_int_t seen = before;
    for (int i = 0; i < 10 && seen < before + 2; i++) {
        beat = s_must (&fake, "heartbeat");
        seen = json_integer_value (json_object_get (json_object_get (beat, "metrics"), key));
        if (seen == before + 2)
            assert_non_null (json_object_get (json_object_get (beat, "metrics"),
                             "dexter_cloud_call_duration_seconds_count{provider=\"aws\"}"));
        json_decref (beat);
    }
    assert_int_equal (seen, before + 2);
    s_stop (&fake, &worker);
}

/*  A job's result comes back with its job and attempt, resources and
    errors; the handler got the credentials. */
static void
test_results (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 2, 1000);

    s_assign (&fake, "job-q", 3, "quick");
    json_t *result = s_result (&fake, "job-q", 3, "done");
    const json_t *resources = json_object_get (result, "resources");
    assert_int_equal (json_array_size (resources), 1);
    assert_string_equal (dx_msg_str (json_array_get (resources, 0), "provider_id"),
                         "vpc-0123");
    assert_null (json_object_get (result, "error"));
    json_decref (result);

    s_assign (&fake, "job-f", 1, "fail");
    result = s_result (&fake, "job-f", 1, "failed");
    const json_t *error = json_object_get (result, "error");
    assert_string_equal (dx_msg_str (error, "code"), "AuthFailure");
    assert_non_null (strstr (dx_msg_str (error, "message"), "credentials"));
    assert_int_equal (dx_msg_bool (error, "permanent", 0), 1);
    json_decref (result);

    s_assign (&fake, "job-u", 1, "explode");
    result = s_result (&fake, "job-u", 1, "retry");
    error = json_object_get (result, "error");
    assert_string_equal (dx_msg_str (error, "code"), "UNKNOWN_STEP");
    assert_int_equal (dx_msg_bool (error, "permanent", 1), 0);
    json_decref (result);

    //  A provider's text that is not UTF-8 still makes a result
    s_assign (&fake, "job-l", 1, "latin1");
    result = s_result (&fake, "job-l", 1, "failed");
    error = json_object_get (result, "error");
    assert_string_equal (dx_msg_str (error, "code"), "Caf?");
    assert_string_equal (dx_msg_str (error, "message"), "r?seau indisponible");
    assert_int_equal (dx_msg_bool (error, "permanent", 1), 0);
    json_decref (result);

    assert_int_equal (atomic_load (&s_ctl.credentials_ok), 4);
    s_stop (&fake, &worker);
}

/*  A handler's progress reaches the scheduler as job.progress of its job
    and attempt, the newest text last, cut at DX_WORKER_PROGRESS_MAX bytes,
    before the job's result. */
static void
test_progress (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 1, 1000);
    s_assign (&fake, "job-p", 2, "progress");
    json_t *progress;
    char last [DX_WORKER_PROGRESS_MAX + 1] = "";
    while (strcmp (last, "last 3") && (progress = s_expect (&fake, "job.progress", WAIT_MS))) {
        assert_string_equal (dx_msg_str (progress, "job"), "job-p");
        assert_int_equal (dx_msg_int (progress, "attempt", 0), 2);
        const char *text = dx_msg_str (progress, "message");
        assert_true (strlen (text) <= DX_WORKER_PROGRESS_MAX);
        snprintf (last, sizeof last, "%s", text);
        json_decref (progress);
    }
    assert_string_equal (last, "last 3");
    json_decref (s_result (&fake, "job-p", 2, "done"));
    s_stop (&fake, &worker);
}

/*  A slow handler's lease is renewed every lease_ms / 3. */
static void
test_renewals (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 1, 1000);

    s_assign (&fake, "job-slow", 2, "hold");
    int64_t last = dx_mono_ms ();
    for (int i = 0; i < 4; i++) {
        json_t *renew = s_must (&fake, "job.renew");
        assert_string_equal (dx_msg_str (renew, "job"), "job-slow");
        assert_int_equal (dx_msg_int (renew, "attempt", -1), 2);
        json_decref (renew);
        //  Every lease_ms / 3 (100 ms): well inside the lease, not a flood
        int64_t now = dx_mono_ms ();
        assert_true (now - last >= 50 && now - last < LEASE_MS);
        last = now;
    }
    assert_int_equal (atomic_load (&s_ctl.finished), 0);
    atomic_store (&s_ctl.release, 1);
    json_decref (s_result (&fake, "job-slow", 2, "done"));
    s_stop (&fake, &worker);
}

/*  capacity + 1 jobs: the extra one is refused with retry, never more
    than capacity handlers run at once, and a freed slot is used again. */
static void
test_capacity (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 2, 1000);

    s_assign (&fake, "job-1", 1, "hold");
    s_assign (&fake, "job-2", 1, "hold");
    s_assign (&fake, "job-3", 1, "hold");
    json_t *result = s_result (&fake, "job-3", 1, "retry");
    assert_string_equal (dx_msg_str (json_object_get (result, "error"), "code"),
                         "WORKER_BUSY");
    json_decref (result);
    assert_true (s_wait_for (&s_ctl.started, 2));
    zclock_sleep (100);
    assert_int_equal (atomic_load (&s_ctl.started), 2);
    assert_int_equal (atomic_load (&s_ctl.max_running), 2);

    //  A duplicate of a running job is not started twice
    s_assign (&fake, "job-1", 1, "hold");
    zclock_sleep (50);
    assert_int_equal (atomic_load (&s_ctl.started), 2);

    atomic_store (&s_ctl.release, 1);
    json_t *first = s_must (&fake, "job.result");
    json_t *second = s_must (&fake, "job.result");
    assert_string_not_equal (dx_msg_str (first, "job"), dx_msg_str (second, "job"));
    json_decref (first);
    json_decref (second);

    s_assign (&fake, "job-3", 2, "quick");
    json_decref (s_result (&fake, "job-3", 2, "done"));
    assert_int_equal (atomic_load (&s_ctl.max_running), 2);
    s_stop (&fake, &worker);
}

/*  The scheduler falls silent (it died): after 3 intervals the worker
    reconnects and announces itself to whatever binds the port next, with
    the job it still runs. */
static void
test_reconnect_after_silence (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 2, 1000);
    json_decref (s_must (&fake, "heartbeat"));
    s_assign (&fake, "job-r", 1, "hold");
    assert_true (s_wait_for (&s_ctl.started, 1));

    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "%s", fake.endpoint);
    s_fake_unbind (&fake);
    zclock_sleep (3 * HEARTBEAT_MS);
    s_fake_bind (&fake, endpoint);
    json_t *ready = s_must (&fake, "worker.ready");
    assert_string_equal (dx_msg_str (ready, "service"), "aws");
    assert_true (s_has (json_object_get (ready, "active"), "job-r"));
    json_decref (ready);
    s_welcome (&fake);
    json_decref (s_must (&fake, "heartbeat"));

    //  The job's result reaches the new scheduler
    atomic_store (&s_ctl.release, 1);
    json_decref (s_result (&fake, "job-r", 1, "done"));
    s_stop (&fake, &worker);
}

/*  worker.reconnect: the worker announces itself again at once. */
static void
test_worker_reconnect (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 3, 1000);
    json_decref (s_must (&fake, "heartbeat"));
    json_t *msg = dx_msg_new ("worker.reconnect", NULL);
    s_send (&fake, msg);
    json_t *ready = s_must (&fake, "worker.ready");
    assert_int_equal (dx_msg_int (ready, "capacity", 0), 3);
    json_decref (ready);
    s_welcome (&fake);
    json_decref (s_must (&fake, "heartbeat"));
    s_stop (&fake, &worker);
}

/*  Two held jobs (job, attempt) a and b on a worker of capacity: a
    job.cancel of a ends a CANCELLED (the handler saw the flag) while b
    runs on, and b's result still comes once released. */
static void
s_cancel_one_of_two (int capacity, const char *job_a, int attempt_a,
                     const char *job_b, int attempt_b)
{
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, capacity, 1000);
    s_assign (&fake, job_a, attempt_a, "hold");
    s_assign (&fake, job_b, attempt_b, "hold");
    assert_true (s_wait_for (&s_ctl.started, 2));
    s_job_message (&fake, "job.cancel", job_a, attempt_a);
    json_t *result = s_result (&fake, job_a, attempt_a, "failed");
    assert_string_equal (dx_msg_str (json_object_get (result, "error"), "code"),
                         "CANCELLED");
    json_decref (result);
    assert_int_equal (atomic_load (&s_ctl.cancel_seen), 1);
    assert_int_equal (atomic_load (&s_ctl.running), 1);
    atomic_store (&s_ctl.release, 1);
    json_decref (s_result (&fake, job_b, attempt_b, "done"));
    s_stop (&fake, &worker);
}

/*  job.cancel raises the flag the handler polls; its result still comes. */
static void
test_cancel (void **state)
{
    (void) state;
    s_cancel_one_of_two (2, "job-c", 4, "job-d", 1);
}

/*  job.cancel of an attempt stops that attempt, not a newer one of the same
    job running on the same worker (after a reconnect the scheduler may
    have sent it here). */
static void
test_cancel_attempt (void **state)
{
    (void) state;
    s_cancel_one_of_two (3, "job-e", 1, "job-e", 2);
}

/*  Stopping waits for a running job, sends its result, then worker.bye. */
static void
test_stop_drains (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 2, 3000);
    s_assign (&fake, "job-s", 1, "stubborn");
    assert_true (s_wait_for (&s_ctl.started, 1));
    int64_t start = dx_mono_ms ();
    zactor_destroy (&worker);
    assert_true (dx_mono_ms () - start < 2500);
    assert_int_equal (atomic_load (&s_ctl.finished), 1);
    json_decref (s_result (&fake, "job-s", 1, "done"));
    json_decref (s_must (&fake, "worker.bye"));
    s_fake_unbind (&fake);
}

/*  Past the drain bound a job is cancelled and abandoned: the worker says
    goodbye at once, the handler's thread cleans up after itself. */
static void
test_stop_abandons (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 2, 50);
    s_assign (&fake, "job-x", 1, "stubborn");
    assert_true (s_wait_for (&s_ctl.started, 1));
    int64_t start = dx_mono_ms ();
    zactor_destroy (&worker);
    assert_true (dx_mono_ms () - start < 800);
    assert_int_equal (atomic_load (&s_ctl.finished), 0);
    json_decref (s_must (&fake, "worker.bye"));
    //  No result for the abandoned job: its lease will run out
    assert_null (s_expect (&fake, "job.result", 100));
    assert_true (s_wait_for (&s_ctl.finished, 1));
    zclock_sleep (50);                  /* its thread frees the job */
    s_fake_unbind (&fake);
}

/*  While stopping, new jobs are refused with retry. A job.assign that
    does not decode is answered as failed. */
static void
test_refusals (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    zactor_t *worker = s_start (&fake, 1, 1000);

    json_t *msg = dx_msg_new ("job.assign", NULL);
    json_object_update_new (msg, json_pack ("{s:s, s:i, s:s}", "job", "job-bad",
                                            "attempt", 1, "cluster", "c1"));
    s_send (&fake, msg);
    json_t *result = s_result (&fake, "job-bad", 1, "failed");
    const json_t *error = json_object_get (result, "error");
    assert_string_equal (dx_msg_str (error, "code"), "INVALID_JOB");
    assert_int_equal (dx_msg_bool (error, "permanent", 0), 1);
    json_decref (result);
    assert_int_equal (atomic_load (&s_ctl.started), 0);

    //  Garbage and messages for others do not disturb the loop
    assert_int_equal (zframe_send (&fake.identity, fake.router, ZFRAME_MORE | ZFRAME_REUSE), 0);
    assert_int_equal (zstr_send (fake.router, "garbage"), 0);
    s_send (&fake, json_pack ("{s:i, s:s, s:s, s:s}", "v", 1, "type", "reply", "id", "r",
                              "status", "OK"));
    s_assign (&fake, "job-ok", 1, "quick");
    json_decref (s_result (&fake, "job-ok", 1, "done"));
    s_stop (&fake, &worker);
}

/*  Credentials are zeroed in place. */
static void
test_wipe_credentials (void **state)
{
    (void) state;
    json_t *assign = json_pack ("{s:s, s:{s:s, s:s, s:i}}", "type", "job.assign",
                                "credentials", "aws_access_key_id", "AKIA",
                                "aws_secret_access_key", "s3cret", "n", 5);
    const char *secret = dx_msg_str (json_object_get (assign, "credentials"),
                                     "aws_secret_access_key");
    dx_worker_wipe_credentials (assign);
    assert_int_equal (json_string_length (json_object_get (json_object_get (assign,
                      "credentials"), "aws_secret_access_key")), 6);
    assert_memory_equal (secret, "\0\0\0\0\0\0", 6);
    assert_memory_equal (dx_msg_str (json_object_get (assign, "credentials"),
                         "aws_access_key_id"), "\0\0\0\0", 4);
    json_decref (assign);
    dx_worker_wipe_credentials (NULL);
}

/*  Bad arguments make no worker. */
static void
test_new_rejects (void **state)
{
    (void) state;
    assert_null (dx_worker_new ("aws", 0, NULL, s_handler, NULL));
    assert_null (dx_worker_new ("aws", DX_WORKER_MAX_CAPACITY + 1, NULL, s_handler, NULL));
    assert_null (dx_worker_new ("", 1, NULL, s_handler, NULL));
    assert_null (dx_worker_new ("aws", 1, NULL, NULL, NULL));
    dx_worker_t *worker = dx_worker_new ("aws", 1, NULL, s_handler, NULL);
    assert_non_null (worker);
    dx_worker_destroy (&worker);
    assert_null (worker);
    dx_worker_destroy (&worker);
    dx_worker_destroy (NULL);
}

/*  The child of test_sigterm: a worker process as a service's main.c
    would run it, stopped by a real SIGTERM (czmq's handler sets
    zsys_interrupted). Its exit code is dx_worker_run's, or LeakSanitizer's
    when something leaked. */
static int
s_child_main (const char *endpoint)
{
    dx_log_init ("test-worker");
    zsys_init ();
    dx_worker_t *worker = dx_worker_new ("azure", 2, endpoint, s_handler, &s_ctl);
    if (!worker)
        return 3;
    int rc = dx_worker_run (worker);
    dx_worker_destroy (&worker);
    zsys_shutdown ();
    return rc == 0? 0: 4;
}

/*  SIGTERM to a worker process: it refuses new jobs, finishes its running
    one, sends the result and worker.bye, and exits 0 with nothing leaked.
    Its log, at debug level, never shows the credentials. */
static void
test_sigterm (void **state)
{
    (void) state;
    fake_t fake = { 0 };
    s_ctl_reset ();
    s_fake_bind (&fake, "tcp://127.0.0.1:*");
    char *argv [] = { (char *) "test_dx_worker", NULL };
    char env_var [128];
    snprintf (env_var, sizeof env_var, "DX_TEST_WORKER_CHILD=%s", fake.endpoint);
    //  Our environment (ASAN_OPTIONS and the like) plus the child's settings
    extern char **environ;
    size_t count = 0;
    while (environ [count])
        count++;
    char **envp = calloc (count + 4, sizeof *envp);
    assert_non_null (envp);
    memcpy (envp, environ, count * sizeof *envp);
    envp [count] = env_var;
    envp [count + 1] = (char *) "DEXTER_LOG_LEVEL=debug";
    envp [count + 2] = (char *) "DEXTER_WORKER_DRAIN_MS=5000";
    char log_path [] = "/tmp/test_dx_worker.XXXXXX";
    int log_fd = mkstemp (log_path);
    assert_true (log_fd >= 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, log_fd, STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawn (&pid, "/proc/self/exe", &actions, NULL, argv, envp);
    posix_spawn_file_actions_destroy (&actions);
    free (envp);
    assert_int_equal (rc, 0);

    //  Its worker.ready names the child, not us
    s_name_of ((int) pid, fake.worker, sizeof fake.worker);
    json_t *ready = s_must (&fake, "worker.ready");
    assert_string_equal (dx_msg_str (ready, "service"), "azure");
    json_decref (ready);
    s_welcome (&fake);
    s_assign (&fake, "job-t", 5, "stubborn");
    json_decref (s_must (&fake, "job.renew"));
    assert_int_equal (kill (pid, SIGTERM), 0);
    assert_null (s_expect (&fake, "job.result", 100));   /* heartbeating meanwhile */
    s_assign (&fake, "job-late", 1, "quick");
    json_t *result = s_result (&fake, "job-late", 1, "retry");
    assert_string_equal (dx_msg_str (json_object_get (result, "error"), "code"),
                         "WORKER_STOPPING");
    json_decref (result);
    json_decref (s_result (&fake, "job-t", 5, "done"));
    json_decref (s_must (&fake, "worker.bye"));

    int status = -1;
    pid_t ended = 0;
    int64_t deadline = dx_mono_ms () + WAIT_MS;
    while ((ended = waitpid (pid, &status, WNOHANG)) == 0 && dx_mono_ms () < deadline)
        zclock_sleep (10);
    if (ended != pid) {
        kill (pid, SIGKILL);
        waitpid (pid, &status, 0);
        fail_msg ("the worker did not exit after SIGTERM");
    }
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    s_fake_unbind (&fake);

    //  The log tells the story, without the secret
    char log [65536];
    ssize_t size = pread (log_fd, log, sizeof log - 1, 0);
    close (log_fd);
    unlink (log_path);
    assert_true (size > 0);
    log [size] = 0;
    assert_non_null (strstr (log, "job job-t attempt 5 started"));
    assert_non_null (strstr (log, "stopping"));
    assert_null (strstr (log, "s3cret"));
    assert_null (strstr (log, "AKIAABCDEFGHIJKLMNOP"));
}

int
main (void)
{
    const char *child = getenv ("DX_TEST_WORKER_CHILD");
    if (child)
        return s_child_main (child);

    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_welcome_and_heartbeats),
        cmocka_unit_test (test_heartbeat_metrics),
        cmocka_unit_test (test_results),
        cmocka_unit_test (test_progress),
        cmocka_unit_test (test_renewals),
        cmocka_unit_test (test_capacity),
        cmocka_unit_test (test_reconnect_after_silence),
        cmocka_unit_test (test_worker_reconnect),
        cmocka_unit_test (test_cancel),
        cmocka_unit_test (test_cancel_attempt),
        cmocka_unit_test (test_stop_drains),
        cmocka_unit_test (test_stop_abandons),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_wipe_credentials),
        cmocka_unit_test (test_new_rejects),
        cmocka_unit_test (test_sigterm),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
