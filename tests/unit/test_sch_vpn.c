/*  Tests of services/scheduler/sch_vpn.c: VPN user requests become jobs of
    a vpn worker (a raw DEALER here, which says what a worker would),
    through the real broker and engine, with a real redis-server started
    here on a free port.

    Covered: a request is checked first and refused at once (no cluster,
    no PKI, a bad name, a duplicate, an unknown user, no vpn worker); one
    that passes is sent as job.assign (the kind, the user, the recorded
    PKI and access IP, no credentials) and answered when the result
    comes: the profile opened into the reply, the new PKI recorded with
    the bundle kept, an event, the CRL pending after a revocation; one job
    of a cluster at a time while another cluster's runs beside it; none
    while the cluster's vpn.server step runs; a refusal of the worker is
    mapped and changes nothing; a worker gone answers 503 and changes
    nothing; a request still waiting past its deadline is dropped; the
    list answers the recorded users and whether the CRL is pending. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/scheduler/sch_handlers.h"
#include "../../services/scheduler/sch_vpn.h"
#include "harness_sch.h"

#include "dx_seal.h"
#include "dx_msg.h"
#include "dx_util.h"

#define HEARTBEAT_MS 100
#define LEASE_MS     2000
#define PKI_V1       "{\"cluster\":\"%s\",\"users\":[{\"name\":\"alice\",\"serial\":3," \
                     "\"expiry\":\"2028-12-06T12:00:00.000Z\",\"revoked\":false}]}"

static const unsigned char s_master [32] = { 0x5a, 0x5a, 0x5a, 0x07 };

static struct {
    ths_t sch;                          /* Redis, store, seal; a broker and an engine per test */
    sch_vpn_t *vpn;
    zsock_t *worker;                    /* the raw vpn worker */
    json_t *answers;                    /* {waiter tag: reply} */
    int dropped;                        /* waiters freed unanswered */
} T;


//  ---------------------------------------------------------------------
//  Helpers

/*  sch_vpn's answers, kept by the waiter's tag (a string). */
static void
s_answer (void *arg, void *waiter, json_t *reply)
{
    (void) arg;
    if (reply)
        json_object_set_new (T.answers, (const char *) waiter, reply);
    else
        T.dropped++;
}

/*  The scheduler's loop, in this thread, for ms; the raw worker beats
    as a live worker does. */
static void
s_pump (int64_t ms)
{
    int64_t deadline = dx_mono_ms () + ms;
    zpoller_t *poller = zpoller_new (sch_broker_socket (T.sch.broker), NULL);
    static int64_t beat;
    while (dx_mono_ms () < deadline) {
        if (T.worker && dx_mono_ms () >= beat) {
            json_t *msg = dx_msg_new ("heartbeat", NULL);
            json_object_set_new (msg, "active", json_array ());
            dx_msg_send (T.worker, NULL, msg);
            json_decref (msg);
            beat = dx_mono_ms () + HEARTBEAT_MS;
        }
        if (zpoller_wait (poller, 5))
            sch_broker_receive (T.sch.broker);
        sch_broker_tick (T.sch.broker);
        sch_engine_tick (T.sch.engine);
        sch_vpn_tick (T.vpn);
    }
    zpoller_destroy (&poller);
}

/*  The next job.assign the raw worker gets within ms (caller owns), or
    NULL. */
static json_t *
s_hear (int64_t ms)
{
    int64_t deadline = dx_mono_ms () + ms;
    while (dx_mono_ms () < deadline) {
        s_pump (5);
        while (zsock_events (T.worker) & ZMQ_POLLIN) {
            char err [DX_ERR_LEN];
            json_t *msg = dx_msg_recv (T.worker, NULL, NULL, err, sizeof err);
            if (msg && strcmp (dx_msg_type (msg), "job.assign") == 0)
                return msg;
            json_decref (msg);
        }
    }
    return NULL;
}

/*  The reply to waiter tag, pumping until it comes (borrowed), or NULL. */
static json_t *
s_wait_answer (const char *tag, int64_t ms)
{
    int64_t deadline = dx_mono_ms () + ms;
    while (!json_object_get (T.answers, tag) && dx_mono_ms () < deadline)
        s_pump (5);
    return json_object_get (T.answers, tag);
}

/*  The raw worker registers as service vpn. */
static void
s_worker_up (void)
{
    T.worker = ths_worker (&T.sch, "vpn", 8, "rawvpn:1", NULL);
    int64_t deadline = dx_mono_ms () + 5000;
    while (sch_broker_workers (T.sch.broker, "vpn", NULL) != 1 && dx_mono_ms () < deadline)
        s_pump (10);
    assert_int_equal (sch_broker_workers (T.sch.broker, "vpn", NULL), 1);
}

/*  The raw worker's job.result for assign (outcome done with resources,
    taken, or failed with code). */
static void
s_result (const json_t *assign, const char *outcome, json_t *resources, const char *code)
{
    json_t *msg = dx_msg_new ("job.result", NULL);
    json_object_set_new (msg, "job", json_string (dx_msg_str (assign, "job")));
    json_object_set_new (msg, "attempt", json_integer (dx_msg_int (assign, "attempt", 0)));
    json_object_set_new (msg, "outcome", json_string (outcome));
    json_object_set_new (msg, "resources", resources? resources: json_array ());
    if (code)
        json_object_set_new (msg, "error", json_pack ("{s:s, s:s, s:b}", "code", code,
                                                      "message", "refused", "permanent", 1));
    assert_int_equal (dx_msg_send (T.worker, NULL, msg), 0);
    json_decref (msg);
}

/*  What the vpn worker reports for a user: vpn.pki with pki, vpn.user
    with its attributes (taken). */
static json_t *
s_reported (const char *pki, json_t *user)
{
    json_object_set_new (user, "key", json_string ("vpn.user"));
    json_object_set_new (user, "kind", json_string ("vpn.user"));
    json_object_set_new (user, "provider_id", json_string ("ca1"));
    return json_pack ("[{s:s, s:s, s:s, s:s}, o]", "key", "vpn.pki", "kind", "vpn.pki",
                      "provider_id", "ca1", "pki", pki, user);
}

/*  Adds user to cluster under waiter tag: the immediate reply (caller
    owns), or NULL when it was taken. */
static json_t *
s_add (const char *cluster, const char *user, const char *tag)
{
    json_t *req = ths_req ("vpnuser.add", "{s:s, s:{s:s}}", "name", cluster, "fields",
                           "name", user);
    json_t *reply = sch_vpn_user_add (&T.sch.ctx, req, (void *) tag);
    json_decref (req);
    return reply;
}

static json_t *
s_revoke (const char *cluster, const char *user, const char *tag)
{
    json_t *req = ths_req ("vpnuser.revoke", "{s:s, s:s}", "name", cluster, "user", user);
    json_t *reply = sch_vpn_user_revoke (&T.sch.ctx, req, (void *) tag);
    json_decref (req);
    return reply;
}

/*  Asserts reply (taken) has status and, when field is not NULL, field. */
static void
s_refused (json_t *reply, const char *status, const char *field)
{
    assert_non_null (reply);
    assert_string_equal (dx_msg_str (reply, "status"), status);
    if (field)
        assert_string_equal (dx_msg_str (reply, "field"), field);
    json_decref (reply);
}

/*  Cluster name, deployed as far as the users need: its PKI recorded
    (with alice), its access IP. */
static void
s_cluster (const char *name, int with_pki)
{
    json_t *req = ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster", "name", name,
                           "provider", "aws", "type", "mesos");
    json_t *reply = sch_cluster_create (&T.sch.ctx, req);
    assert_string_equal (dx_msg_str (reply, "status"), DX_CREATED);
    json_decref (reply);
    json_decref (req);
    if (!with_pki)
        return;
    char pki [512];
    snprintf (pki, sizeof pki, PKI_V1, name);
    json_t *resource = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", "key", "vpn.pki",
                                  "kind", "vpn.pki", "provider_id", "ca1", "pki", pki,
                                  "server", "dx1:bundle", "crl_number", "1");
    char *text = json_dumps (resource, JSON_COMPACT);
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{%s}:resources vpn.pki %s", name, text));
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{%s}:deployment state deployed "
                                      "accessip 203.0.113.9 generation 1 vpn_crl_delivered 1",
                              name));
    free (text);
    json_decref (resource);
}

/*  The recorded vpn.pki resource of cluster (caller owns). */
static json_t *
s_recorded (const char *cluster)
{
    char *text = ths_raw_str (&T.sch, "HGET dexter:{%s}:resources vpn.pki", cluster);
    json_t *resource = text? json_loads (text, 0, NULL): NULL;
    free (text);
    assert_non_null (resource);
    return resource;
}


//  ---------------------------------------------------------------------
//  Fixtures

static int
s_setup (void **state)
{
    (void) state;
    return ths_up (&T.sch, "schvpn-test", s_master);
}

static int
s_teardown (void **state)
{
    (void) state;
    ths_down (&T.sch);
    return 0;
}

static int
s_test_setup (void **state)
{
    (void) state;
    freeReplyObject (ths_raw (&T.sch, "FLUSHALL"));
    if (ths_engine_up (&T.sch, HEARTBEAT_MS, LEASE_MS))
        return -1;
    T.vpn = sch_vpn_new (T.sch.store, T.sch.seal, T.sch.broker, T.sch.engine);
    sch_vpn_set_answer (T.vpn, s_answer, NULL);
    T.sch.ctx.vpn = T.vpn;
    T.answers = json_object ();
    T.dropped = 0;
    sch_engine_recover (T.sch.engine);
    return T.vpn? 0: -1;
}

static int
s_test_teardown (void **state)
{
    (void) state;
    zsock_destroy (&T.worker);
    sch_vpn_destroy (&T.vpn);
    ths_engine_down (&T.sch);
    json_decref (T.answers);
    return 0;
}


//  ---------------------------------------------------------------------
//  Tests

static void
test_refused_at_once (void **state)
{
    (void) state;
    s_cluster ("bare", 0);
    s_cluster ("c1", 1);
    //  No vpn worker yet
    s_refused (s_add ("c1", "bob", "w"), DX_UNAVAILABLE, NULL);
    s_worker_up ();
    s_refused (s_add ("nosuch", "bob", "w"), DX_NOT_FOUND, NULL);
    s_refused (s_add ("bare", "bob", "w"), DX_CONFLICT, NULL);
    s_refused (s_revoke ("bare", "bob", "w"), DX_CONFLICT, NULL);
    s_refused (s_add ("c1", "Bob", "w"), DX_INVALID, "name");
    s_refused (s_add ("c1", "alice", "w"), DX_CONFLICT, "name");
    s_refused (s_revoke ("c1", "bob", "w"), DX_NOT_FOUND, "name");
    s_refused (s_revoke ("c1", "B-b", "w"), DX_NOT_FOUND, "name");
    json_t *req = ths_req ("vpnuser.add", "{s:s, s:{s:s, s:s}}", "name", "c1", "fields",
                           "name", "bob", "role", "x");
    s_refused (sch_vpn_user_add (&T.sch.ctx, req, "w"), DX_INVALID, "role");
    json_decref (req);
    //  No job was sent, nothing answered later
    assert_null (s_hear (200));
    assert_int_equal (json_object_size (T.answers), 0);
}

/*  vpnuser.list's reply for cluster (caller owns). */
static json_t *
s_list (const char *cluster)
{
    json_t *req = ths_req ("vpnuser.list", "{s:s}", "name", cluster);
    json_t *loaded = sch_read_load (T.sch.ctx.read, cluster, SCH_LOAD_CLUSTER
                                    | SCH_LOAD_DEPLOYMENT | SCH_LOAD_RESOURCES);
    assert_non_null (loaded);
    json_t *reply = sch_vpn_user_list (&T.sch.ctx, req, loaded);
    json_decref (loaded);
    json_decref (req);
    return reply;
}

static void
test_list (void **state)
{
    (void) state;
    s_cluster ("bare", 0);
    s_cluster ("c1", 1);
    s_refused (s_list ("bare"), DX_CONFLICT, NULL);
    json_t *reply = s_list ("c1");
    assert_string_equal (dx_msg_str (reply, "status"), DX_OK);
    json_t *want = json_pack ("{s:[{s:s, s:i, s:s, s:b, s:n}], s:s}", "users", "name", "alice",
                              "serial", 3, "expires", "2028-12-06T12:00:00.000Z",
                              "revoked", 0, "revoked_at", "crl", "current");
    assert_true (json_equal (json_object_get (reply, "body"), want));
    json_decref (want);
    json_decref (reply);
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{c1}:deployment vpn_crl 2"));
    reply = s_list ("c1");
    assert_string_equal (dx_msg_str (json_object_get (reply, "body"), "crl"), "pending");
    json_decref (reply);
}

static void
test_add_answers_when_the_job_is_done (void **state)
{
    (void) state;
    s_cluster ("c1", 1);
    s_worker_up ();
    assert_null (s_add ("c1", "bob", "w1"));
    json_t *assign = s_hear (3000);
    assert_non_null (assign);
    const json_t *step = json_object_get (assign, "step");
    assert_string_equal (dx_msg_str (step, "kind"), "vpn.user.add");
    assert_string_equal (dx_msg_str (step, "user"), "bob");
    const json_t *context = json_object_get (step, "context");
    assert_string_equal (dx_msg_str (context, "access_ip"), "203.0.113.9");
    assert_non_null (strstr (dx_msg_str (context, "vpn_pki"), "alice"));
    assert_int_equal (json_object_size (json_object_get (assign, "credentials")), 0);
    assert_non_null (strstr (dx_msg_str (assign, "job"), "c1:users:"));
    assert_null (json_object_get (T.answers, "w1"));

    char *profile = dx_seal_seal (T.sch.seal, "client\n<key>\nKEY\n</key>\n", 24);
    s_result (assign, "done",
              s_reported ("{\"cluster\":\"c1\",\"users\":[{\"name\":\"bob\"}]}",
                          json_pack ("{s:s, s:s, s:s, s:s}", "name", "bob", "serial", "4",
                                     "expires", "2028-12-06T12:00:00.000Z",
                                     "profile", profile)), NULL);
    json_t *reply = s_wait_answer ("w1", 3000);
    assert_non_null (reply);
    assert_string_equal (dx_msg_str (reply, "status"), DX_CREATED);
    const json_t *body = json_object_get (reply, "body");
    assert_string_equal (dx_msg_str (body, "name"), "bob");
    assert_int_equal (dx_msg_int (body, "serial", 0), 4);
    assert_string_equal (dx_msg_str (body, "profile"), "client\n<key>\nKEY\n</key>\n");

    //  Recorded: the new PKI, the bundle kept; the profile nowhere
    json_t *recorded = s_recorded ("c1");
    assert_non_null (strstr (dx_msg_str (recorded, "pki"), "bob"));
    assert_string_equal (dx_msg_str (recorded, "server"), "dx1:bundle");
    char *everything = ths_raw_str (&T.sch, "HGET dexter:{c1}:resources vpn.pki");
    assert_null (strstr (everything, profile));
    free (everything);
    redisReply *events = ths_raw (&T.sch, "XRANGE dexter:{c1}:events - +");
    int added = 0;
    for (size_t i = 0; i < events->elements; i++)
        for (size_t f = 0; f + 1 < events->element [i]->element [1]->elements; f += 2)
            added += strcmp (events->element [i]->element [1]->element [f + 1]->str,
                             "vpn.user.added") == 0;
    assert_int_equal (added, 1);
    freeReplyObject (events);
    free (profile);
    json_decref (recorded);
    json_decref (assign);
}

static void
test_revoke_makes_the_crl_pending (void **state)
{
    (void) state;
    s_cluster ("c1", 1);
    s_worker_up ();
    assert_null (s_revoke ("c1", "alice", "w1"));
    json_t *assign = s_hear (3000);
    assert_non_null (assign);
    assert_string_equal (dx_msg_str (json_object_get (assign, "step"), "kind"),
                         "vpn.user.revoke");
    s_result (assign, "done",
              s_reported ("{\"cluster\":\"c1\",\"crl_number\":2}",
                          json_pack ("{s:s, s:s, s:s, s:s}", "name", "alice", "serial", "3",
                                     "revoked_at", "2026-12-07T12:00:00.000Z",
                                     "crl_number", "2")), NULL);
    json_t *reply = s_wait_answer ("w1", 3000);
    assert_non_null (reply);
    assert_string_equal (dx_msg_str (reply, "status"), DX_OK);
    const json_t *body = json_object_get (reply, "body");
    assert_string_equal (dx_msg_str (body, "crl"), "pending");
    assert_true (json_is_true (json_object_get (body, "revoked")));
    char *crl = ths_raw_str (&T.sch, "HGET dexter:{c1}:deployment vpn_crl");
    assert_string_equal (crl, "2");
    free (crl);
    json_t *record = json_pack ("{s:s, s:s}", "vpn_crl", "2", "vpn_crl_delivered", "1");
    assert_true (sch_vpn_crl_pending (record));
    json_object_set_new (record, "vpn_crl_delivered", json_string ("2"));
    assert_false (sch_vpn_crl_pending (record));
    json_object_del (record, "vpn_crl_delivered");
    assert_true (sch_vpn_crl_pending (record));    /* launched before: the empty CRL */
    json_decref (record);
    json_decref (assign);
}

static void
test_one_job_of_a_cluster_at_a_time (void **state)
{
    (void) state;
    s_cluster ("c1", 1);
    s_cluster ("c2", 1);
    s_worker_up ();
    assert_null (s_add ("c1", "bob", "c1-bob"));
    assert_null (s_add ("c1", "carol", "c1-carol"));
    assert_null (s_add ("c2", "bob", "c2-bob"));
    json_t *first = s_hear (3000), *second = s_hear (3000);
    assert_non_null (first);
    assert_non_null (second);
    assert_string_equal (dx_msg_str (json_object_get (first, "step"), "user"), "bob");
    assert_string_equal (dx_msg_str (first, "cluster"), "c1");
    assert_string_equal (dx_msg_str (second, "cluster"), "c2");
    //  carol waits for bob's job of her cluster
    assert_null (s_hear (300));
    //  bob's fails (a refusal): mapped, nothing recorded; carol's goes
    json_t *before = s_recorded ("c1");
    s_result (first, "failed", NULL, "VpnUserExists");
    json_t *third = s_hear (3000);
    assert_non_null (third);
    assert_string_equal (dx_msg_str (json_object_get (third, "step"), "user"), "carol");
    json_t *reply = s_wait_answer ("c1-bob", 3000);
    assert_string_equal (dx_msg_str (reply, "status"), DX_CONFLICT);
    assert_string_equal (dx_msg_str (reply, "field"), "name");
    json_t *after = s_recorded ("c1");
    assert_true (json_equal (before, after));
    json_decref (before);
    json_decref (after);
    json_decref (first);
    json_decref (second);
    json_decref (third);
}

static void
test_a_lost_worker_changes_nothing (void **state)
{
    (void) state;
    s_cluster ("c1", 1);
    s_worker_up ();
    json_t *before = s_recorded ("c1");
    assert_null (s_add ("c1", "bob", "w1"));
    json_t *assign = s_hear (3000);
    assert_non_null (assign);
    json_t *bye = dx_msg_new ("worker.bye", NULL);
    assert_int_equal (dx_msg_send (T.worker, NULL, bye), 0);
    json_decref (bye);
    json_t *reply = s_wait_answer ("w1", 3000);
    assert_non_null (reply);
    assert_string_equal (dx_msg_str (reply, "status"), DX_UNAVAILABLE);
    json_t *after = s_recorded ("c1");
    assert_true (json_equal (before, after));
    json_decref (before);
    json_decref (after);
    json_decref (assign);
}

static void
test_a_late_request_is_dropped (void **state)
{
    (void) state;
    s_cluster ("c1", 1);
    s_worker_up ();
    assert_null (s_add ("c1", "bob", "w1"));
    json_t *first = s_hear (3000);
    assert_non_null (first);
    //  dave waits behind bob's job until past his deadline
    json_t *req = ths_req ("vpnuser.add", "{s:s, s:{s:s}}", "name", "c1", "fields",
                           "name", "dave");
    json_object_set_new (req, "deadline", json_integer (dx_now_ms () + 100));
    assert_null (sch_vpn_user_add (&T.sch.ctx, req, "late"));
    json_decref (req);
    s_pump (300);
    s_result (first, "failed", NULL, "VpnUserExists");
    assert_non_null (s_wait_answer ("w1", 3000));
    assert_null (s_hear (300));
    assert_null (json_object_get (T.answers, "late"));
    assert_int_equal (T.dropped, 1);
    json_decref (first);
}

/*  A cluster with config and a group, deployable. */
static void
s_deployable (const char *name)
{
    json_t *req = ths_req ("config.put", "{s:s, s:{s:s, s:i, s:s, s:s, s:s}}", "name", name,
                           "fields", "master_type", "m3.large", "masters", 1,
                           "region", "us-west-2", "sshkey", "reference",
                           "sshkeydata", TH_SSH_KEY_B64);
    json_t *reply = sch_config_put (&T.sch.ctx, req);
    assert_string_equal (dx_msg_str (reply, "status"), DX_OK);
    json_decref (reply);
    json_decref (req);
    req = ths_req ("group.upsert", "{s:s, s:{s:s, s:s, s:{}, s:{}, s:s, s:i, s:i, s:i}}",
                   "name", name, "fields", "name", "g1", "role", "role1", "attributes", "vars",
                   "instance_type", "r3.xlarge", "cpus", 4, "ram", 8, "disk_size", 50);
    reply = sch_group_upsert (&T.sch.ctx, req);
    assert_string_equal (dx_msg_str (reply, "status"), DX_CREATED);
    json_decref (reply);
    json_decref (req);
}

static void
test_no_job_beside_vpn_server (void **state)
{
    (void) state;
    s_cluster ("c1", 1);
    s_deployable ("c1");
    s_worker_up ();
    json_t *req = ths_req ("deployment.put", "{s:s, s:{s:s, s:i, s:s, s:s}}", "name", "c1",
                           "fields", "command", "deploy", "parallelism", 5,
                           "aws_access_key_id", "AKIDVPNUSERS0000",
                           "aws_secret_access_key", "vpn/secret/0123456789");
    json_t *reply = sch_deployment_put (&T.sch.ctx, req);
    assert_string_equal (dx_msg_str (reply, "status"), DX_ACCEPTED);
    json_decref (reply);
    json_decref (req);
    //  The deploy's vpn.server runs (no aws worker: nothing else does)
    json_t *server = s_hear (3000);
    assert_non_null (server);
    assert_string_equal (dx_msg_str (json_object_get (server, "step"), "kind"), "vpn.server");
    assert_true (sch_engine_running (T.sch.engine, "c1", "vpn.server"));
    //  bob waits for it
    assert_null (s_add ("c1", "bob", "w1"));
    assert_null (s_hear (300));
    json_t *resources = json_pack ("[{s:s, s:s, s:s, s:s, s:s, s:s}]", "key", "vpn.pki",
                                   "kind", "vpn.pki", "provider_id", "ca1",
                                   "pki", "{\"cluster\":\"c1\",\"users\":[],\"v\":2}",
                                   "server", "dx1:bundle2", "crl_number", "1");
    s_result (server, "done", resources, NULL);
    json_t *user = s_hear (3000);
    assert_non_null (user);
    assert_string_equal (dx_msg_str (json_object_get (user, "step"), "kind"), "vpn.user.add");
    //  with what vpn.server recorded
    assert_non_null (strstr (dx_msg_str (json_object_get (json_object_get (user, "step"),
                                                          "context"), "vpn_pki"), "\"v\":2"));
    json_decref (server);
    json_decref (user);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_refused_at_once, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_list, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_add_answers_when_the_job_is_done,
                                         s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_revoke_makes_the_crl_pending,
                                         s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_one_job_of_a_cluster_at_a_time,
                                         s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_a_lost_worker_changes_nothing,
                                         s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_a_late_request_is_dropped,
                                         s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_no_job_beside_vpn_server,
                                         s_test_setup, s_test_teardown),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
