/*  Tests of services/scheduler/sch_engine.c: deployments run through the
    real broker to real dx_worker peers (actors on loopback TCP) whose
    handlers follow a script, with a real redis-server started here on a
    free port. Raw DEALERs play workers that misbehave (go silent, never
    renew, send stale results). Nothing is skipped: without redis-server
    the test fails.

    Covered: a deployment runs every step once, in dependency order, never
    more than `parallelism` at once, records resources, the access IP,
    progress and events, and deletes its credentials at the end; a
    permanent failure ends it deploy_failed with the provider's code and
    starts nothing more; `retry` runs a step again with attempt + 1; a
    worker that leaves (worker.bye) or falls silent loses its jobs to
    another worker; a lease that runs out sends the job elsewhere and
    cancels it where it was; a stale result changes no step but records
    what it made that no record knows of, even after the end; a restarted
    engine (a new one on the same Redis) picks up a running job from the
    worker's renewals; destroy drops the recorded resources; a recovered
    deployment whose steps are all done ends; credentials that cannot be
    opened fail it; an azure deployment runs on azure workers without a
    key pair, its admin password sent to host steps alone, and destroys
    in one step. The vpn steps run on a vpn worker, without cloud
    credentials; only the access node gets their server bundle, opened,
    and a bundle sealed with another master key fails the deployment
    saying so. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../services/scheduler/sch_handlers.h"
#include "harness_sch.h"

#include "dx_seal.h"
#include "dx_msg.h"
#include "dx_log.h"
#include "dx_util.h"
#include "dx_worker.h"

#define KEY_ID       "AKIDENGINE000000"
#define HEARTBEAT_MS 50
#define LEASE_MS     600

static const unsigned char s_master [32] = { 0x5a, 0x5a, 0x5a, 0x02 };

static struct {
    ths_t sch;                          /* Redis, store, seal; a broker and an engine per test */
    zactor_t *vpn;                      /* every test's vpn worker: it runs the vpn steps */
} T;

//  What the scripted workers did, shared with their job threads
static struct {
    pthread_mutex_t lock;
    char log [8192];                    /* "step@attempt:worker " per start */
    int running, peak;                  /* jobs running at once, most seen */
    char fail [64];                     /* this step fails for good */
    char retry_once [64];               /* this step answers retry on attempt 1 */
    char hang [64];                     /* this step waits until cancelled */
    int hang_release;                   /* set: a hanging step finishes */
    int saw_sshkey;                     /* the keypair step got sshkeydata */
    int saw_password;                   /* host steps that got ssh_password */
    int password_elsewhere;             /* other steps that got it */
    int order_ok;                       /* no host started before network was done */
    int network_done;
    int64_t host_starts [64];           /* dx_mono_ms of each host step's start */
    int hosts;
    int saw_bundle;                     /* host.access got vpn.server's bundle, opened */
    int bundle_elsewhere;               /* other steps that got a bundle */
    int pki_elsewhere;                  /* steps other than vpn's given the PKI, or
                                           vpn steps given cloud credentials */
    int profile_context_ok;             /* vpn.profile got the PKI and the access IP */
    int vpn_other_key;                  /* the vpn worker seals with another master key */
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .order_ok = 1 };

/*  What the scripted vpn worker records as the PKI, and the bundle it
    seals for the access node. */
#define VPN_PKI_TEXT  "{\"cluster\":\"test\",\"ca_key\":\"dx1:sealed\"}"
#define VPN_BUNDLE    "{\"ca\":\"CA-1\",\"key\":\"server key\"}"


//  ---------------------------------------------------------------------
//  redis-server

/*  Redis refuses writes for now (as with too few replicas, or a disk it
    cannot write: MISCONF); reads go on. */
static void
s_refuse_writes (int refuse)
{
    freeReplyObject (ths_raw (&T.sch, "CONFIG SET min-replicas-to-write %d", refuse));
}


//  ---------------------------------------------------------------------
//  The scripted worker

static void
s_script_reset (void)
{
    pthread_mutex_lock (&S.lock);
    S.log [0] = 0;
    S.running = S.peak = 0;
    S.fail [0] = S.retry_once [0] = S.hang [0] = 0;
    S.hang_release = 0;
    S.saw_sshkey = 0;
    S.saw_password = S.password_elsewhere = 0;
    S.order_ok = 1;
    S.network_done = 0;
    S.hosts = 0;
    S.saw_bundle = S.bundle_elsewhere = S.pki_elsewhere = S.profile_context_ok = 0;
    S.vpn_other_key = 0;
    pthread_mutex_unlock (&S.lock);
}

static int
s_log_count (const char *needle)
{
    pthread_mutex_lock (&S.lock);
    int count = 0;
    for (const char *at = strstr (S.log, needle); at; at = strstr (at + 1, needle))
        count++;
    pthread_mutex_unlock (&S.lock);
    return count;
}

/*  The resources a step reports, as PROTOCOL.md's Steps table says. */
static void
s_report (dx_worker_job_t *job, const char *kind, const char *id)
{
    if (strcmp (kind, "host") == 0) {
        dx_worker_job_add_resource (job, json_pack ("{s:s, s:s, s:s, s:s}", "key", id,
                                                    "kind", "instance", "provider_id", "i-1",
                                                    "state", "running"));
        if (strcmp (id, "host.access") == 0)
            dx_worker_job_add_resource (job, json_pack ("{s:s, s:s, s:s, s:s}",
                                                        "key", "eip.access", "kind", "address",
                                                        "provider_id", "eipalloc-1",
                                                        "public_ip", "203.0.113.7"));
    }
    else
    if (strcmp (kind, "remove") == 0) {
        char key [64];
        snprintf (key, sizeof key, "host.%s", id + strlen ("remove."));
        dx_worker_job_add_resource (job, json_pack ("{s:s, s:s, s:s, s:s}", "key", key,
                                                    "kind", "instance", "provider_id", "i-1",
                                                    "state", "terminated"));
    }
    else
    if (strcmp (kind, "vpn.server") == 0) {
        static const unsigned char other_key [32] = { 0x33 };
        dx_seal_t *other = dx_seal_new_key (other_key);
        pthread_mutex_lock (&S.lock);
        dx_seal_t *seal = S.vpn_other_key? other: T.sch.seal;
        pthread_mutex_unlock (&S.lock);
        char *bundle = dx_seal_seal (seal, VPN_BUNDLE, strlen (VPN_BUNDLE));
        dx_seal_destroy (&other);
        dx_worker_job_add_resource (job, json_pack ("{s:s, s:s, s:s, s:s, s:s}",
                                                    "key", "vpn.pki", "kind", "vpn.pki",
                                                    "provider_id", "ca-1", "pki", VPN_PKI_TEXT,
                                                    "server", bundle));
        free (bundle);
    }
    else
    if (strcmp (kind, "vpn.profile") == 0) {
        const char *profile = "client\nremote 203.0.113.7 1194\n";
        char *sealed = dx_seal_seal (T.sch.seal, profile, strlen (profile));
        dx_worker_job_add_resource (job, json_pack ("{s:s, s:s, s:s, s:s, s:s}",
                                                    "key", "vpn.profile", "kind", "vpn.profile",
                                                    "provider_id", "ca-1",
                                                    "remote", "203.0.113.7", "profile", sealed));
        free (sealed);
    }
    else
    if (strncmp (kind, "destroy.", 8) != 0)
        dx_worker_job_add_resource (job, json_pack ("{s:s, s:s, s:s}", "key", id, "kind", kind,
                                                    "provider_id", "x-1"));
}

/*  What a batch step reports (kind hosts, or remove with slots): a
    host.GROUP.SLOT per slot, running with an instance id and private IP
    of its slot, or terminated. */
static void
s_report_slots (dx_worker_job_t *job, const json_t *step)
{
    const char *kind = json_string_value (json_object_get (step, "kind"));
    const char *group = json_string_value (json_object_get (step, "group"));
    int hosts = strcmp (kind, "hosts") == 0;
    size_t i;
    json_t *slot;
    json_array_foreach (json_object_get (step, "slots"), i, slot) {
        char key [64], id [32], ip [32];
        json_int_t n = json_integer_value (slot);
        snprintf (key, sizeof key, "host.%s.%lld", group, (long long) n);
        snprintf (id, sizeof id, "i-%05lld", (long long) n);
        snprintf (ip, sizeof ip, "10.0.%lld.%lld", (long long) n / 250, (long long) n % 250 + 4);
        dx_worker_job_add_resource (job, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}",
                                                    "key", key, "kind", "instance",
                                                    "provider_id", id, "private_ip", ip,
                                                    "hostname", json_string_value (
                                                        json_array_get (json_object_get (
                                                            step, "hostnames"), i)),
                                                    "state", hosts? "running": "terminated"));
    }
}

/*  What a step got of the VPN: host.access alone the opened bundle, the
    vpn steps alone the PKI, vpn.profile the access IP. Under S.lock. */
static void
s_check_vpn (const json_t *assign, const char *kind, const char *id)
{
    const json_t *context = json_object_get (json_object_get (assign, "step"), "context");
    const char *text = json_string_value (json_object_get (json_object_get (assign,
                                                                          "credentials"), "vpn"));
    json_t *bundle = text? json_loads (text, 0, NULL): NULL;
    const char *pki = json_string_value (json_object_get (context, "vpn_pki"));
    if (text && strcmp (id, "host.access") == 0
    &&  strcmp (json_string_value (json_object_get (bundle, "ca")), "CA-1") == 0
    &&  strcmp (json_string_value (json_object_get (bundle, "key")), "server key") == 0)
        S.saw_bundle++;
    else
    if (text)
        S.bundle_elsewhere++;
    if (pki && strncmp (kind, "vpn.", 4))
        S.pki_elsewhere++;
    //  The vpn service gets no cloud credentials
    if (strncmp (kind, "vpn.", 4) == 0
    &&  json_object_size (json_object_get (assign, "credentials")) != 0)
        S.pki_elsewhere++;
    const char *ip = json_string_value (json_object_get (context, "access_ip"));
    if (strcmp (kind, "vpn.profile") == 0 && pki && strcmp (pki, VPN_PKI_TEXT) == 0
    &&  ip && strcmp (ip, "203.0.113.7") == 0)
        S.profile_context_ok++;
    json_decref (bundle);
}

static void
s_handler (const json_t *assign, dx_worker_job_t *job, void *arg)
{
    const char *name = (const char *) arg;
    const json_t *step = json_object_get (assign, "step");
    const char *kind = json_string_value (json_object_get (step, "kind"));
    const char *id = json_string_value (json_object_get (step, "id"));
    json_int_t attempt = json_integer_value (json_object_get (assign, "attempt"));
    pthread_mutex_lock (&S.lock);
    size_t len = strlen (S.log);
    snprintf (S.log + len, sizeof S.log - len, "%s@%lld:%s ", id, (long long) attempt, name);
    if (++S.running > S.peak)
        S.peak = S.running;
    if (strcmp (kind, "host") == 0 && !S.network_done)
        S.order_ok = 0;
    if (strcmp (kind, "host") == 0 && S.hosts < 64)
        S.host_starts [S.hosts++] = dx_mono_ms ();
    if (strcmp (kind, "keypair") == 0
    &&  json_object_get (json_object_get (assign, "credentials"), "sshkeydata"))
        S.saw_sshkey = 1;
    s_check_vpn (assign, kind, id);
    if (json_object_get (json_object_get (assign, "credentials"), "ssh_password")) {
        if (strcmp (kind, "host") == 0)
            S.saw_password++;
        else
            S.password_elsewhere++;
    }
    int fail = strcmp (S.fail, id) == 0;
    int retry = strcmp (S.retry_once, id) == 0 && attempt == 1;
    int hang = strcmp (S.hang, id) == 0;
    pthread_mutex_unlock (&S.lock);

    usleep (20000);                     /* long enough for overlaps to show */
    while (hang && !dx_worker_job_cancelled (job)) {
        pthread_mutex_lock (&S.lock);
        int release = S.hang_release;
        pthread_mutex_unlock (&S.lock);
        if (release)
            break;
        usleep (5000);
    }
    if (fail)
        dx_worker_job_fail (job, 1, "AuthFailure", "AWS was not able to validate the "
                            "provided access credentials");
    else
    if (retry)
        dx_worker_job_retry (job, "RequestLimitExceeded", "Request limit exceeded.");
    else
    if (json_object_get (step, "slots"))
        s_report_slots (job, step);
    else
        s_report (job, kind, id);
    pthread_mutex_lock (&S.lock);
    S.running--;
    if (strcmp (kind, "network") == 0 && !fail && !retry)
        S.network_done = 1;
    pthread_mutex_unlock (&S.lock);
}

static zactor_t *
s_service_worker (const char *service, const char *name, int capacity, int64_t drain_ms)
{
    dx_worker_args_t args = { service, capacity, sch_broker_endpoint (T.sch.broker), s_handler,
                              (void *) name, drain_ms };
    zactor_t *worker = zactor_new (dx_worker_actor, &args);
    assert_non_null (worker);
    return worker;
}

static zactor_t *
s_worker (const char *name, int capacity, int64_t drain_ms)
{
    return s_service_worker ("aws", name, capacity, drain_ms);
}


//  ---------------------------------------------------------------------
//  The scheduler's loop, in this thread

static void
s_pump (int64_t ms)
{
    int64_t deadline = dx_mono_ms () + ms;
    zpoller_t *poller = zpoller_new (sch_broker_socket (T.sch.broker), NULL);
    int64_t next_broker = sch_broker_tick (T.sch.broker);
    int64_t next_engine = T.sch.engine? sch_engine_tick (T.sch.engine): deadline;
    while (dx_mono_ms () < deadline) {
        int64_t wakeup = next_broker < next_engine? next_broker: next_engine;
        if (wakeup > deadline)
            wakeup = deadline;
        int64_t wait = wakeup - dx_mono_ms ();
        if (zpoller_wait (poller, wait < 0? 0: (int) wait)) {
            sch_broker_receive (T.sch.broker);
            next_engine = 0;
        }
        if (dx_mono_ms () >= next_broker)
            next_broker = sch_broker_tick (T.sch.broker);
        if (T.sch.engine && dx_mono_ms () >= next_engine)
            next_engine = sch_engine_tick (T.sch.engine);
    }
    zpoller_destroy (&poller);
}

/*  The deployment's state, pumping until it is one of the final ones or
    timeout_ms passed. Caller frees. */
static char *
s_wait_final (const char *name, int64_t timeout_ms)
{
    int64_t deadline = dx_mono_ms () + timeout_ms;
    char *state = NULL;
    while (dx_mono_ms () < deadline) {
        s_pump (20);
        free (state);
        state = ths_raw_str (&T.sch, "HGET dexter:{%s}:deployment state", name);
        if (state && strcmp (state, "deploying") && strcmp (state, "destroying"))
            break;
    }
    return state;
}

/*  Starts the vpn worker v (on) or stops it (off), and waits until the
    broker knows: a test whose deploys must end starts one for their vpn
    steps; the teardown stops it. */
static void
s_vpn (int on)
{
    if (on && !T.vpn)
        T.vpn = s_service_worker ("vpn", "v", 4, 1000);
    if (!on)
        zactor_destroy (&T.vpn);
    int64_t deadline = dx_mono_ms () + 5000;
    while (sch_broker_workers (T.sch.broker, "vpn", NULL) != (size_t) on
           && dx_mono_ms () < deadline)
        s_pump (10);
    assert_int_equal (sch_broker_workers (T.sch.broker, "vpn", NULL), on);
}

static void
s_wait_workers (size_t want)
{
    int64_t deadline = dx_mono_ms () + 5000;
    while (sch_broker_workers (T.sch.broker, "aws", NULL) != want && dx_mono_ms () < deadline)
        s_pump (10);
    assert_int_equal (sch_broker_workers (T.sch.broker, "aws", NULL), want);
}


//  ---------------------------------------------------------------------
//  Requests, handled as the server would

static void
s_expect (sch_change_fn *handler, const char *status, json_t *req)
{
    json_t *reply = handler (&T.sch.ctx, req);
    if (strcmp (dx_msg_str (reply, "status"), status)) {
        char *text = json_dumps (reply, 0);
        fail_msg ("%s: expected %s, got %s", dx_msg_type (req), status, text);
    }
    json_decref (reply);
    json_decref (req);
}

/*  Cluster name with 1 master and one group of `hosts` hosts. */
static void
s_cluster (const char *name, int hosts)
{
    s_expect (sch_cluster_create, DX_CREATED,
              ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster", "name", name,
                       "provider", "aws", "type", "mesos"));
    s_expect (sch_config_put, DX_OK,
              ths_req ("config.put", "{s:s, s:{s:s, s:i, s:s, s:s, s:s}}", "name", name,
                       "fields", "master_type", "m3.large", "masters", 1, "region", "us-west-2",
                       "sshkey", "reference", "sshkeydata", TH_SSH_KEY_B64));
    //  r3.xlarge has 4 vCPUs: 4 per host
    s_expect (sch_group_upsert, DX_CREATED,
              ths_req ("group.upsert", "{s:s, s:{s:s, s:s, s:{}, s:{}, s:s, s:i, s:i, "
                       "s:i, s:{s:[]}}}", "name", name,
                       "fields", "name", "g1", "role", "role1", "attributes", "vars",
                       "instance_type", "r3.xlarge", "cpus", 4 * hosts, "ram", 8,
                       "disk_size", 50, "customhwconf", "disks"));
}

static void
s_deploy (const char *name, const char *command, int parallelism)
{
    s_expect (sch_deployment_put, DX_ACCEPTED,
              ths_req ("deployment.put", "{s:s, s:{s:s, s:i, s:s, s:s}}", "name", name,
                       "fields", "command", command, "parallelism", parallelism,
                       "aws_access_key_id", KEY_ID,
                       "aws_secret_access_key", "engine/secret/0123456789"));
}

/*  Worker a (returned, caller's) and cluster name of `hosts` hosts
    deploying, its step `step` started on a, where it hangs until
    s_hang_release. */
static zactor_t *
s_deploy_hanging (const char *name, int hosts, const char *step)
{
    zactor_t *a = s_worker ("a", 8, 1000);
    s_wait_workers (1);
    s_vpn (1);
    s_cluster (name, hosts);
    snprintf (S.hang, sizeof S.hang, "%s", step);
    s_deploy (name, "deploy", 5);
    char started [80];
    snprintf (started, sizeof started, "%s@1:a", step);
    int64_t deadline = dx_mono_ms () + 5000;
    while (s_log_count (started) == 0 && dx_mono_ms () < deadline)
        s_pump (10);
    assert_int_equal (s_log_count (started), 1);
    return a;
}

static void
s_hang_release (void)
{
    pthread_mutex_lock (&S.lock);
    S.hang_release = 1;
    pthread_mutex_unlock (&S.lock);
}

/*  The value of field in one XRANGE entry, or NULL. */
static const char *
s_entry_field (const redisReply *entry, const char *field)
{
    const redisReply *fields = entry->element [1];
    for (size_t f = 0; f + 1 < fields->elements; f += 2)
        if (strcmp (fields->element [f]->str, field) == 0)
            return fields->element [f + 1]->str;
    return NULL;
}

/*  Number of events of type in the cluster's stream. */
static int
s_events (const char *name, const char *type)
{
    redisReply *reply = ths_raw (&T.sch, "XRANGE dexter:{%s}:events - +", name);
    int count = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        const char *this_type = s_entry_field (reply->element [i], "type");
        if (this_type && strcmp (this_type, type) == 0)
            count++;
    }
    freeReplyObject (reply);
    return count;
}

/*  Pumps until the cluster's stream holds want events of type, at most
    5 s: what a worker sent reaches the engine when the host lets it. */
static void
s_pump_events (const char *name, const char *type, int want)
{
    int64_t deadline = dx_mono_ms () + 5000;
    while (s_events (name, type) < want && dx_mono_ms () < deadline)
        s_pump (10);
}

/*  Field of the first event of type in the cluster's stream (caller
    frees), or NULL. */
static char *
s_event_field (const char *name, const char *type, const char *field)
{
    redisReply *reply = ths_raw (&T.sch, "XRANGE dexter:{%s}:events - +", name);
    char *value = NULL;
    for (size_t i = 0; i < reply->elements && !value; i++) {
        const char *this_type = s_entry_field (reply->element [i], "type");
        const char *this_value = s_entry_field (reply->element [i], field);
        if (this_type && this_value && strcmp (this_type, type) == 0)
            value = strdup (this_value);
    }
    freeReplyObject (reply);
    return value;
}

//  ---------------------------------------------------------------------
//  Fixtures

static int
s_setup (void **state)
{
    (void) state;
    return ths_up (&T.sch, "engine-test", s_master);
}

static int
s_teardown (void **state)
{
    (void) state;
    ths_down (&T.sch);
    return 0;
}

/*  Each test: an empty Redis that takes writes, a broker and an engine, a
    clean script. */
static int
s_test_setup (void **state)
{
    (void) state;
    freeReplyObject (ths_raw (&T.sch, "FLUSHALL"));
    s_refuse_writes (0);
    s_script_reset ();
    return ths_engine_up (&T.sch, HEARTBEAT_MS, LEASE_MS);
}

static int
s_test_teardown (void **state)
{
    (void) state;
    zactor_destroy (&T.vpn);
    ths_engine_down (&T.sch);
    return 0;
}


//  ---------------------------------------------------------------------
//  Tests

static void
test_deploy_runs_every_step (void **state)
{
    (void) state;
    s_vpn (1);
    zactor_t *a = s_worker ("a", 2, 1000);
    zactor_t *b = s_worker ("b", 2, 1000);
    s_wait_workers (2);
    s_cluster ("c1", 4);
    s_deploy ("c1", "deploy", 3);
    char *final = s_wait_final ("c1", 15000);
    assert_string_equal (final, "deployed");
    free (final);

    //  network, security, image, keypair, the vpn's 2, access, 1 master,
    //  4 hosts: once each, the vpn's on the vpn worker
    const char *steps [] = { "network@", "security@", "image@", "keypair@", "vpn.server@1:v",
                             "host.access@", "vpn.profile@1:v", "host.masters.0@",
                             "host.g1.0@", "host.g1.3@", NULL };
    for (int i = 0; steps [i]; i++)
        assert_int_equal (s_log_count (steps [i]), 1);
    assert_int_equal (s_log_count (":v "), 2);
    assert_true (S.peak <= 3);          /* parallelism */
    assert_true (S.peak >= 2);          /* and things did run side by side */
    assert_true (S.order_ok);           /* no host before the network was done */
    assert_true (S.saw_sshkey);         /* the keypair step got the key */
    assert_true (s_log_count (":a ") > 0 && s_log_count (":b ") > 0);
    //  The access node alone got the server bundle, opened; the vpn steps
    //  alone the PKI; the profile the access IP
    assert_int_equal (S.saw_bundle, 1);
    assert_int_equal (S.bundle_elsewhere, 0);
    assert_int_equal (S.pki_elsewhere, 0);
    assert_int_equal (S.profile_context_ok, 1);
    assert_true (strstr (S.log, "vpn.server@") < strstr (S.log, "host.access@"));
    assert_true (strstr (S.log, "host.access@") < strstr (S.log, "vpn.profile@"));

    char *done = ths_raw_str (&T.sch, "HGET dexter:{c1}:deployment steps_done");
    char *total = ths_raw_str (&T.sch, "HGET dexter:{c1}:deployment steps_total");
    char *ip = ths_raw_str (&T.sch, "HGET dexter:{c1}:deployment accessip");
    char *observed = ths_raw_str (&T.sch, "HGET dexter:{c1}:deployment observed_generation");
    char *mirror = ths_raw_str (&T.sch, "HGET dexter:{c1}:cluster state");
    assert_string_equal (done, "12");
    assert_string_equal (total, "12");
    assert_string_equal (ip, "203.0.113.7");
    assert_string_equal (observed, "1");
    assert_string_equal (mirror, "deployed");
    free (done), free (total), free (ip), free (observed), free (mirror);
    redisReply *r = ths_raw (&T.sch, "EXISTS dexter:{c1}:credentials");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    r = ths_raw (&T.sch, "HLEN dexter:{c1}:resources");
    assert_int_equal (r->integer, 4 + 2 + 2 + 1 + 4);  /* access: host and eip; vpn.* */
    freeReplyObject (r);
    //  What the resources hold of the VPN is sealed
    char *bundle = ths_raw_str (&T.sch, "HGET dexter:{c1}:resources vpn.pki");
    assert_non_null (strstr (bundle, "\"server\":\"dx1:"));
    assert_null (strstr (bundle, "server key"));
    free (bundle);
    assert_int_equal (s_events ("c1", "step.started"), 12);
    assert_int_equal (s_events ("c1", "step.done"), 12);
    assert_int_equal (s_events ("c1", "deployment.finished"), 1);
    assert_int_equal (sch_engine_size (T.sch.engine), 0);

    //  Scale down to 2: the two newest hosts go, nothing else is created
    s_script_reset ();
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{c1}:groups g1 %s",
                                      "{\"name\":\"g1\",\"role\":\"role1\",\"attributes\":{},"
                                      "\"vars\":{},\"instance_type\":\"r3.xlarge\",\"cpus\":4,"
                                      "\"ram\":8,\"disk_size\":50,\"customhwconf\":{\"disks\":[]},"
                                      "\"hosts\":2}"));
    s_deploy ("c1", "deploy", 5);
    final = s_wait_final ("c1", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    assert_int_equal (s_log_count ("remove.g1.3@"), 1);
    assert_int_equal (s_log_count ("remove.g1.2@"), 1);
    assert_int_equal (s_log_count ("remove.g1.1@"), 0);
    r = ths_raw (&T.sch, "HEXISTS dexter:{c1}:resources host.g1.3");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);

    //  Destroy: four steps in order, every resource record gone
    s_script_reset ();
    s_deploy ("c1", "destroy", 5);
    final = s_wait_final ("c1", 15000);
    assert_string_equal (final, "destroyed");
    free (final);
    assert_non_null (strstr (S.log, "destroy.instances@1"));
    assert_true (strstr (S.log, "destroy.instances") < strstr (S.log, "destroy.network"));
    r = ths_raw (&T.sch, "EXISTS dexter:{c1}:resources");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    char *accessip = ths_raw_str (&T.sch, "HGET dexter:{c1}:deployment accessip");
    assert_string_equal (accessip, "");
    free (accessip);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

/*  An azure cluster runs on azure workers: no key pair; the admin
    password goes to the host steps alone; the access IP comes from
    eip.access as on aws; destroy is the one step destroy.group. */
static void
test_azure_deployment (void **state)
{
    (void) state;
    s_vpn (1);
    zactor_t *z = s_service_worker ("azure", "z", 4, 1000);
    int64_t deadline = dx_mono_ms () + 5000;
    while (sch_broker_workers (T.sch.broker, "azure", NULL) != 1 && dx_mono_ms () < deadline)
        s_pump (10);
    s_expect (sch_cluster_create, DX_CREATED,
              ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster", "name", "az",
                       "provider", "azure", "type", "mesos"));
    s_expect (sch_config_put, DX_OK,
              ths_req ("config.put", "{s:s, s:{s:i, s:s, s:s, s:s}}", "name", "az",
                       "fields", "masters", 1, "location", "Central US", "ssh_user", "dexter",
                       "ssh_password", "Azure-Engine-Pass1"));
    //  Standard_D11 has 2 vCPUs: 2 hosts
    s_expect (sch_group_upsert, DX_CREATED,
              ths_req ("group.upsert", "{s:s, s:{s:s, s:s, s:{}, s:{}, s:s, s:i, s:i, "
                       "s:i, s:{s:[]}}}", "name", "az",
                       "fields", "name", "g1", "role", "role1", "attributes", "vars",
                       "instance_type", "Standard_D11", "cpus", 4, "ram", 8,
                       "disk_size", 50, "customhwconf", "disks"));
    const char *auth = "{\"clientId\": \"11111111-2222-3333-4444-555555555555\", "
                       "\"clientSecret\": \"EngineCredSecret\", "
                       "\"subscriptionId\": \"66666666-7777-8888-9999-000000000000\", "
                       "\"tenantId\": \"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\"}";
    char *credentials = dx_base64_encode ((const unsigned char *) auth, strlen (auth));
    assert_non_null (credentials);
    s_expect (sch_deployment_put, DX_ACCEPTED,
              ths_req ("deployment.put", "{s:s, s:{s:s, s:i, s:s}}", "name", "az",
                       "fields", "command", "deploy", "parallelism", 5,
                       "credentials", credentials));
    char *final = s_wait_final ("az", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    //  network, security, image, the vpn's 2, access, 1 master, 2 hosts:
    //  once each
    const char *steps [] = { "network@", "security@", "image@", "vpn.server@1:v",
                             "host.access@", "vpn.profile@1:v", "host.masters.0@",
                             "host.g1.0@", "host.g1.1@", NULL };
    for (int i = 0; steps [i]; i++)
        assert_int_equal (s_log_count (steps [i]), 1);
    assert_int_equal (s_log_count ("keypair"), 0);
    assert_true (S.order_ok);
    assert_int_equal (S.saw_password, 4);
    assert_int_equal (S.password_elsewhere, 0);
    char *total = ths_raw_str (&T.sch, "HGET dexter:{az}:deployment steps_total");
    char *ip = ths_raw_str (&T.sch, "HGET dexter:{az}:deployment accessip");
    assert_string_equal (total, "9");
    assert_int_equal (S.saw_bundle, 1);
    assert_int_equal (S.bundle_elsewhere, 0);
    assert_int_equal (S.profile_context_ok, 1);
    assert_string_equal (ip, "203.0.113.7");
    free (total), free (ip);

    s_script_reset ();
    s_expect (sch_deployment_put, DX_ACCEPTED,
              ths_req ("deployment.put", "{s:s, s:{s:s, s:i, s:s}}", "name", "az",
                       "fields", "command", "destroy", "parallelism", 5,
                       "credentials", credentials));
    final = s_wait_final ("az", 15000);
    assert_string_equal (final, "destroyed");
    free (final);
    assert_string_equal (S.log, "destroy.group@1:z ");
    redisReply *r = ths_raw (&T.sch, "EXISTS dexter:{az}:resources");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    free (credentials);
    zactor_destroy (&z);
}

static void
test_permanent_failure (void **state)
{
    (void) state;
    zactor_t *a = s_worker ("a", 4, 1000);
    s_wait_workers (1);
    s_cluster ("c2", 2);
    snprintf (S.fail, sizeof S.fail, "keypair");
    s_deploy ("c2", "deploy", 5);
    char *final = s_wait_final ("c2", 15000);
    assert_string_equal (final, "deploy_failed");
    free (final);
    char *error = ths_raw_str (&T.sch, "HGET dexter:{c2}:deployment last_error");
    json_t *last = json_loads (error, 0, NULL);
    assert_string_equal (json_string_value (json_object_get (last, "code")), "AuthFailure");
    assert_string_equal (json_string_value (json_object_get (last, "step")), "keypair");
    json_decref (last);
    free (error);
    assert_int_equal (s_log_count ("host."), 0);    /* nothing needing the key ran */
    assert_int_equal (s_log_count ("keypair@"), 1);  /* not retried */
    assert_int_equal (s_events ("c2", "step.failed"), 1);
    redisReply *r = ths_raw (&T.sch, "EXISTS dexter:{c2}:credentials");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    zactor_destroy (&a);
}

static void
test_retry_runs_again (void **state)
{
    (void) state;
    s_vpn (1);
    zactor_t *a = s_worker ("a", 4, 1000);
    s_wait_workers (1);
    s_cluster ("c3", 1);
    snprintf (S.retry_once, sizeof S.retry_once, "image");
    s_deploy ("c3", "deploy", 5);
    char *final = s_wait_final ("c3", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    assert_int_equal (s_log_count ("image@1:"), 1);
    assert_int_equal (s_log_count ("image@2:"), 1);
    assert_int_equal (s_events ("c3", "step.retry"), 1);
    zactor_destroy (&a);
}

/*  A worker that leaves with a job: the job goes to the other worker as
    attempt 2; the attempt it abandoned never counts. */
static void
test_worker_leaves (void **state)
{
    (void) state;
    s_vpn (1);
    zactor_t *a = s_worker ("a", 8, 0);     /* abandons at once when stopped */
    s_wait_workers (1);
    s_cluster ("c4", 1);
    snprintf (S.hang, sizeof S.hang, "host.g1.0");
    s_deploy ("c4", "deploy", 5);
    int64_t deadline = dx_mono_ms () + 5000;
    while (s_log_count ("host.g1.0@1:a") == 0 && dx_mono_ms () < deadline)
        s_pump (10);
    assert_int_equal (s_log_count ("host.g1.0@1:a"), 1);
    zactor_t *b = s_worker ("b", 8, 1000);
    s_wait_workers (2);
    pthread_mutex_lock (&S.lock);
    S.hang [0] = 0;                      /* attempt 2 runs normally */
    pthread_mutex_unlock (&S.lock);
    zactor_destroy (&a);                 /* worker.bye with the job running */
    char *final = s_wait_final ("c4", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    assert_int_equal (s_log_count ("host.g1.0@2:b"), 1);
    assert_true (s_events ("c4", "step.requeued") >= 1);
    zactor_destroy (&b);
}

/*  A raw DEALER that registers as worker raw:1, saying it runs job
    `active` (NULL: none), for misbehaving. */
static zsock_t *
s_raw_worker_running (const char *active)
{
    return ths_worker (&T.sch, "aws", 100, "raw:1", active);
}

static zsock_t *
s_raw_worker (void)
{
    return s_raw_worker_running (NULL);
}

/*  The next message of type the raw DEALER receives (pumping meanwhile),
    or NULL after timeout_ms. */
static json_t *
s_raw_hear (zsock_t *dealer, const char *type, int64_t timeout_ms)
{
    int64_t deadline = dx_mono_ms () + timeout_ms;
    while (dx_mono_ms () < deadline) {
        s_pump (5);
        while (zsock_events (dealer) & ZMQ_POLLIN) {
            char err [DX_ERR_LEN];
            json_t *msg = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
            if (msg && strcmp (dx_msg_type (msg), type) == 0)
                return msg;
            json_decref (msg);
        }
    }
    return NULL;
}

/*  A raw worker (its socket in *raw_p, caller's) that has been given the
    first job of a new deployment of cluster (one group): the job.assign
    it heard, caller owns. */
static json_t *
s_raw_first_job (const char *cluster, zsock_t **raw_p)
{
    *raw_p = s_raw_worker ();
    s_wait_workers (1);
    s_cluster (cluster, 1);
    s_deploy (cluster, "deploy", 5);
    json_t *assign = s_raw_hear (*raw_p, "job.assign", 3000);
    assert_non_null (assign);
    return assign;
}

/*  Sends what a worker says of one job: job.result (outcome, resources
    taken; NULL for none) or, outcome NULL, job.renew. */
static void
s_raw_job (zsock_t *dealer, const char *job, int attempt, const char *outcome,
           json_t *resources)
{
    json_t *msg = dx_msg_new (outcome? "job.result": "job.renew", NULL);
    json_object_set_new (msg, "job", json_string (job));
    json_object_set_new (msg, "attempt", json_integer (attempt));
    if (outcome) {
        json_object_set_new (msg, "outcome", json_string (outcome));
        json_object_set_new (msg, "resources", resources? resources: json_array ());
    }
    assert_int_equal (dx_msg_send (dealer, NULL, msg), 0);
    json_decref (msg);
}

/*  A heartbeat listing one running job. */
static void
s_raw_beat (zsock_t *dealer, const char *job)
{
    json_t *beat = dx_msg_new ("heartbeat", NULL);
    json_object_set_new (beat, "active", json_pack ("[s]", job));
    dx_msg_send (dealer, NULL, beat);
    json_decref (beat);
}

/*  A worker that takes jobs and never renews: each lease runs out, the
    job is cancelled there and given to a real worker; a late result of
    the old attempt changes no step, and records only what no record knows. */
static void
test_lease_expires (void **state)
{
    (void) state;
    zsock_t *raw;
    json_t *assign = s_raw_first_job ("c5", &raw);
    assert_string_equal (dx_msg_str (assign, "job"), "c5:1:network");
    assert_int_equal (dx_msg_int (assign, "attempt", 0), 1);
    assert_int_equal (dx_msg_int (assign, "lease_ms", 0), LEASE_MS);
    //  The credentials travel with the job; the key only to the keypair step
    const json_t *credentials = json_object_get (assign, "credentials");
    assert_string_equal (json_string_value (json_object_get (credentials, "aws_access_key_id")),
                         KEY_ID);
    assert_null (json_object_get (credentials, "sshkeydata"));
    const json_t *context = json_object_get (json_object_get (assign, "step"), "context");
    assert_string_equal (json_string_value (json_object_get (context, "masters_ips")),
                         "10.0.0.11");

    //  Keep heartbeating (so only the lease can expire) until it is cancelled
    json_t *cancel = NULL;
    int64_t deadline = dx_mono_ms () + 5000;
    while (!cancel && dx_mono_ms () < deadline) {
        s_raw_beat (raw, "c5:1:network");
        cancel = s_raw_hear (raw, "job.cancel", HEARTBEAT_MS);
    }
    assert_non_null (cancel);
    assert_string_equal (dx_msg_str (cancel, "job"), "c5:1:network");
    assert_int_equal (dx_msg_int (cancel, "attempt", 0), 1);
    json_decref (cancel);

    //  The stale attempt reports: its outcome counts for nothing, but what
    //  it made and no record knows of is recorded (a destroy must find it)
    s_raw_job (raw, "c5:1:network", 1, "done", json_pack ("[{s:s, s:s, s:s}]", "key", "vpc",
                                                          "kind", "vpc", "provider_id",
                                                          "vpc-stale"));
    s_pump_events ("c5", "step.late", 1);
    char *late = ths_raw_str (&T.sch, "HGET dexter:{c5}:resources vpc");
    assert_non_null (late);
    assert_non_null (strstr (late, "vpc-stale"));
    free (late);
    assert_int_equal (s_events ("c5", "step.late"), 1);
    char *dstate = ths_raw_str (&T.sch, "HGET dexter:{c5}:deployment state");
    assert_string_equal (dstate, "deploying");
    free (dstate);

    //  Go silent; a real worker finishes the deployment with attempt 2
    zactor_t *b = s_worker ("b", 8, 1000);
    s_vpn (1);
    char *final = s_wait_final ("c5", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    assert_true (s_log_count ("network@") >= 1);
    assert_int_equal (s_log_count ("network@1:"), 0);
    char *vpc = ths_raw_str (&T.sch, "HGET dexter:{c5}:resources network");
    assert_non_null (vpc);
    assert_null (strstr (vpc, "stale"));
    free (vpc);
    assert_true (s_events ("c5", "step.requeued") >= 1);

    //  Once the deployment is over, a late result (from a worker that is
    //  still there: this one registers again) still records what no record
    //  knows of, and leaves alone what one does
    zsock_destroy (&raw);
    raw = s_raw_worker ();
    s_wait_workers (2);
    s_raw_job (raw, "c5:1:host.g1.0", 1, "failed",
               json_pack ("[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]",
                          "key", "network", "kind", "network",
                          "provider_id", "x-stale", "state", "available",
                          "key", "host.g1.9", "kind", "instance",
                          "provider_id", "i-late", "state", "running"));
    s_pump_events ("c5", "step.late", 2);
    vpc = ths_raw_str (&T.sch, "HGET dexter:{c5}:resources network");
    assert_null (strstr (vpc, "stale"));
    free (vpc);
    late = ths_raw_str (&T.sch, "HGET dexter:{c5}:resources host.g1.9");
    assert_non_null (late);
    assert_non_null (strstr (late, "i-late"));
    free (late);
    assert_int_equal (s_events ("c5", "step.late"), 2);
    dstate = ths_raw_str (&T.sch, "HGET dexter:{c5}:deployment state");
    assert_string_equal (dstate, "deployed");
    free (dstate);
    //  Another generation's leftovers are not this one's
    s_raw_job (raw, "c5:7:host.g1.0", 1, "done", json_pack ("[{s:s, s:s, s:s}]",
               "key", "host.g1.8", "kind", "instance", "provider_id", "i-x"));
    s_pump (100);
    redisReply *r = ths_raw (&T.sch, "HEXISTS dexter:{c5}:resources host.g1.8");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    json_decref (assign);
    zsock_destroy (&raw);
    zactor_destroy (&b);
}

/*  job.progress of the running attempt becomes the event step.progress
    with its text; one of an attempt that is not the job's current one is
    dropped. */
static void
test_progress_events (void **state)
{
    (void) state;
    zsock_t *raw;
    json_t *assign = s_raw_first_job ("c18", &raw);
    assert_string_equal (dx_msg_str (assign, "job"), "c18:1:network");
    json_decref (assign);
    const char *text = "PUT virtualNetworks/c18-vnet: InProgress after 5 s";
    for (int current = 0; current <= 1; current++) {
        json_t *msg = dx_msg_new ("job.progress", NULL);
        json_object_set_new (msg, "job", json_string ("c18:1:network"));
        json_object_set_new (msg, "attempt", json_integer (current? 1: 7));
        json_object_set_new (msg, "message", json_string (current? text: "stale"));
        assert_int_equal (dx_msg_send (raw, NULL, msg), 0);
        json_decref (msg);
    }
    s_pump_events ("c18", "step.progress", 1);
    assert_int_equal (s_events ("c18", "step.progress"), 1);
    char *message = s_event_field ("c18", "step.progress", "message");
    assert_string_equal (message, text);
    free (message);
    char *step = s_event_field ("c18", "step.progress", "step");
    assert_string_equal (step, "network");
    free (step);
    s_raw_job (raw, "c18:1:network", 1, "done", NULL);
    s_pump_events ("c18", "step.done", 1);
    assert_int_equal (s_events ("c18", "step.done"), 1);
    zsock_destroy (&raw);
}

/*  A worker that reconnects under a new identity (it heard nothing from
    a stalled scheduler) while the old identity still looks alive: the jobs
    it lists stay its own, and are not run a second time when the old
    identity expires. */
static void
test_reconnected_worker_keeps_its_jobs (void **state)
{
    (void) state;
    zsock_t *old;
    json_t *assign = s_raw_first_job ("c12", &old);
    assert_string_equal (dx_msg_str (assign, "job"), "c12:1:network");
    json_decref (assign);

    //  The same worker (name raw:1) on a new connection, listing the job
    zsock_t *fresh = s_raw_worker_running ("c12:1:network");
    //  Well past the old identity's expiry, the new one beating and renewing
    int64_t deadline = dx_mono_ms () + 6 * HEARTBEAT_MS;
    while (dx_mono_ms () < deadline) {
        s_raw_beat (fresh, "c12:1:network");
        s_raw_job (fresh, "c12:1:network", 1, NULL, NULL);
        s_pump (HEARTBEAT_MS / 2);
    }
    assert_int_equal (sch_broker_workers (T.sch.broker, "aws", NULL), 1);
    assert_int_equal (s_events ("c12", "step.requeued"), 0);
    //  Its result counts
    s_raw_job (fresh, "c12:1:network", 1, "done", NULL);
    s_pump_events ("c12", "step.done", 1);
    assert_int_equal (s_events ("c12", "step.done"), 1);
    zsock_destroy (&fresh);
    zsock_destroy (&old);
}

/*  A result that reaches a restarted scheduler from a connection it does
    not know yet (queued while it was down) still counts, and its event
    names the worker the job's record names. */
static void
test_result_from_unknown_identity (void **state)
{
    (void) state;
    zsock_t *raw;
    json_t *assign = s_raw_first_job ("c13", &raw);
    json_decref (assign);
    //  The crash: memory and sockets gone, Redis stays
    sch_engine_destroy (&T.sch.engine);
    sch_broker_destroy (&T.sch.broker);
    T.sch.broker = sch_broker_new ("tcp://127.0.0.1:*", HEARTBEAT_MS, LEASE_MS, NULL);
    T.sch.engine = sch_engine_new (T.sch.store, T.sch.seal, T.sch.broker, LEASE_MS);
    T.sch.ctx.broker = T.sch.broker;
    T.sch.ctx.engine = T.sch.engine;
    assert_int_equal (sch_engine_recover (T.sch.engine), 0);
    zsock_t *stranger = zsock_new_dealer (sch_broker_endpoint (T.sch.broker));
    assert_non_null (stranger);
    zsock_set_linger (stranger, 0);
    s_raw_job (stranger, "c13:1:network", 1, "done", json_pack ("[{s:s, s:s, s:s}]",
               "key", "vpc", "kind", "vpc", "provider_id", "vpc-1"));
    json_t *reconnect = s_raw_hear (stranger, "worker.reconnect", 2000);
    assert_non_null (reconnect);
    json_decref (reconnect);
    assert_int_equal (s_events ("c13", "step.done"), 1);
    char *worker = s_event_field ("c13", "step.done", "worker");
    assert_non_null (worker);
    assert_string_equal (worker, "raw:1");
    free (worker);
    char *vpc = ths_raw_str (&T.sch, "HGET dexter:{c13}:resources vpc");
    assert_non_null (vpc);
    free (vpc);
    zsock_destroy (&stranger);
    zsock_destroy (&raw);
}

/*  A cluster deleted with force while a step ran, created again with the
    same name and deployed: its jobs have the old ones' ids, so their
    attempts start above the old ones', and a late result of the old
    attempt counts for nothing. */
static void
test_recreated_cluster_ignores_old_attempts (void **state)
{
    (void) state;
    zsock_t *raw;
    json_t *assign = s_raw_first_job ("c14", &raw);
    assert_int_equal (dx_msg_int (assign, "attempt", 0), 1);
    json_decref (assign);
    s_expect (sch_cluster_delete, DX_OK, ths_req ("cluster.delete", "{s:s, s:b}", "name", "c14",
                                                  "force", 1));
    json_t *cancel = s_raw_hear (raw, "job.cancel", 2000);
    assert_non_null (cancel);
    json_decref (cancel);

    s_cluster ("c14", 1);
    s_deploy ("c14", "deploy", 5);
    assign = s_raw_hear (raw, "job.assign", 3000);
    assert_non_null (assign);
    assert_string_equal (dx_msg_str (assign, "job"), "c14:1:network");
    assert_int_equal (dx_msg_int (assign, "attempt", 0), 2);
    json_decref (assign);
    //  The old attempt reports: nothing of it is taken
    s_raw_job (raw, "c14:1:network", 1, "done", json_pack ("[{s:s, s:s, s:s}]", "key", "vpc",
               "kind", "vpc", "provider_id", "vpc-old"));
    s_pump (100);
    assert_int_equal (s_events ("c14", "step.done"), 0);
    assert_int_equal (s_events ("c14", "step.late"), 0);
    //  The new one's counts
    s_raw_job (raw, "c14:1:network", 2, "done", json_pack ("[{s:s, s:s, s:s}]", "key", "vpc",
               "kind", "vpc", "provider_id", "vpc-new"));
    s_pump_events ("c14", "step.done", 1);
    assert_int_equal (s_events ("c14", "step.done"), 1);
    char *vpc = ths_raw_str (&T.sch, "HGET dexter:{c14}:resources vpc");
    assert_non_null (strstr (vpc, "vpc-new"));
    free (vpc);
    zsock_destroy (&raw);
}

/*  A new engine on the same Redis (a scheduler restart) knows the
    deployment, learns from the renewals who runs the hanging step, and
    finishes without running it twice. */
static void
test_engine_restart (void **state)
{
    (void) state;
    zactor_t *a = s_deploy_hanging ("c6", 1, "host.g1.0");
    s_pump (50);

    sch_engine_destroy (&T.sch.engine);     /* the crash: memory gone, Redis stays */
    T.sch.engine = sch_engine_new (T.sch.store, T.sch.seal, T.sch.broker, LEASE_MS);
    T.sch.ctx.engine = T.sch.engine;
    assert_int_equal (sch_engine_recover (T.sch.engine), 0);
    assert_int_equal (sch_engine_size (T.sch.engine), 1);
    s_pump (LEASE_MS / 2);              /* a renewal comes meanwhile */
    s_hang_release ();
    char *final = s_wait_final ("c6", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    assert_int_equal (s_log_count ("host.g1.0@"), 1);   /* never run twice */
    zactor_destroy (&a);
}

/*  A deployment whose every step is done but whose end was never recorded
    (the scheduler died between the two writes, or Redis refused the last
    one) ends at the first tick after recovery instead of staying
    "deploying" for good. */
static void
test_recovered_deployment_ends (void **state)
{
    (void) state;
    s_vpn (1);
    zactor_t *a = s_worker ("a", 8, 1000);
    s_wait_workers (1);
    s_cluster ("c9", 1);
    s_deploy ("c9", "deploy", 5);
    char *final = s_wait_final ("c9", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    //  As if the end had been lost (the cluster hash mirrors the state)
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{c9}:deployment state deploying"));
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{c9}:cluster state deploying"));
    sch_engine_destroy (&T.sch.engine);
    T.sch.engine = sch_engine_new (T.sch.store, T.sch.seal, T.sch.broker, LEASE_MS);
    T.sch.ctx.engine = T.sch.engine;
    assert_int_equal (sch_engine_recover (T.sch.engine), 0);
    assert_int_equal (sch_engine_size (T.sch.engine), 1);
    final = s_wait_final ("c9", 5000);
    assert_string_equal (final, "deployed");
    free (final);
    assert_int_equal (sch_engine_size (T.sch.engine), 0);
    assert_int_equal (s_events ("c9", "deployment.finished"), 2);
    zactor_destroy (&a);
}

/*  A deployment Redis says runs but memory does not know (its request's
    transaction ran, its answer was lost): after sch_engine_recheck the
    ticks load and run it. */
static void
test_recheck_loads_unknown (void **state)
{
    (void) state;
    s_vpn (1);
    zactor_t *a = s_worker ("a", 8, 1000);
    s_wait_workers (1);
    s_cluster ("c11", 1);
    T.sch.ctx.engine = NULL;                /* the request is recorded, the engine not told */
    s_deploy ("c11", "deploy", 5);
    T.sch.ctx.engine = T.sch.engine;
    s_pump (300);
    assert_int_equal (sch_engine_size (T.sch.engine), 0);
    sch_engine_recheck (T.sch.engine);
    char *final = s_wait_final ("c11", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    zactor_destroy (&a);
}

/*  Credentials that cannot be opened (sealed with another master key)
    end the deployment deploy_failed with a message saying what to do,
    rather than trying again every second for ever. */
static void
test_unreadable_credentials (void **state)
{
    (void) state;
    s_cluster ("c10", 1);
    s_deploy ("c10", "deploy", 5);
    //  Sealed by another key, as after a change of DEXTER_MASTER_KEY
    static const unsigned char other [32] = { 0x01, 0x02 };
    dx_seal_t *seal = dx_seal_new_key (other);
    char *sealed = dx_seal_seal (seal, "{}", 2);
    assert_non_null (sealed);
    freeReplyObject (ths_raw (&T.sch, "SET dexter:{c10}:credentials %s", sealed));
    free (sealed);
    dx_seal_destroy (&seal);
    sch_engine_destroy (&T.sch.engine);
    T.sch.engine = sch_engine_new (T.sch.store, T.sch.seal, T.sch.broker, LEASE_MS);
    T.sch.ctx.engine = T.sch.engine;
    assert_int_equal (sch_engine_recover (T.sch.engine), 0);
    zactor_t *a = s_worker ("a", 8, 1000);
    char *final = s_wait_final ("c10", 5000);
    assert_string_equal (final, "deploy_failed");
    free (final);
    char *error = ths_raw_str (&T.sch, "HGET dexter:{c10}:deployment last_error");
    assert_non_null (strstr (error, "CredentialsUnreadable"));
    assert_non_null (strstr (error, "PUT the deployment again"));
    free (error);
    assert_int_equal (s_log_count ("@"), 0);          /* no step ran */
    zactor_destroy (&a);
}

/*  Instance launches are paced per account and region however many
    workers there are: burst 5, then 2 per second. */
static void
test_host_pacing (void **state)
{
    (void) state;
    s_vpn (1);
    zactor_t *a = s_worker ("a", 16, 1000);
    zactor_t *b = s_worker ("b", 16, 1000);
    s_wait_workers (2);
    s_cluster ("c7", 7);                /* access + 1 master + 7 agents = 9 hosts */
    s_deploy ("c7", "deploy", 20);
    char *final = s_wait_final ("c7", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    assert_int_equal (S.hosts, 9);
    int64_t first = S.host_starts [0], last = S.host_starts [0];
    for (int i = 0; i < S.hosts; i++) {
        if (S.host_starts [i] < first)
            first = S.host_starts [i];
        if (S.host_starts [i] > last)
            last = S.host_starts [i];
    }
    //  5 at once, then 4 more at 2 per second: the last at least ~2 s later
    assert_true (last - first >= 1800);
    assert_true (s_log_count (":a ") > 0 && s_log_count (":b ") > 0);
    zactor_destroy (&a);
    zactor_destroy (&b);
}

/*  A vpn worker whose master key is not the scheduler's: the access node's
    step is never sent, and the deployment fails saying why. */
static void
test_vpn_key_mismatch (void **state)
{
    (void) state;
    s_vpn (1);
    zactor_t *a = s_worker ("a", 8, 1000);
    s_wait_workers (1);
    S.vpn_other_key = 1;
    s_cluster ("c19", 1);
    s_deploy ("c19", "deploy", 5);
    char *final = s_wait_final ("c19", 15000);
    assert_string_equal (final, "deploy_failed");
    free (final);
    char *error = ths_raw_str (&T.sch, "HGET dexter:{c19}:deployment last_error");
    assert_non_null (strstr (error, "\"step\":\"host.access\""));
    assert_non_null (strstr (error, "VpnBundleUnreadable"));
    assert_non_null (strstr (error, "same master key"));
    free (error);
    assert_int_equal (s_log_count ("vpn.server@1:v"), 1);
    assert_int_equal (s_log_count ("host.access@"), 0);
    assert_int_equal (S.saw_bundle + S.bundle_elsewhere, 0);
    zactor_destroy (&a);
}

/*  Redis refuses writes while the access node's step ends: its result is
    kept, nothing else starts, and once Redis takes writes the result is
    written, the access IP with it, and the deployment ends with every
    step started and done once, at attempt 1. */
static void
test_result_kept_for_redis (void **state)
{
    (void) state;
    zactor_t *a = s_deploy_hanging ("c15", 2, "host.access");
    s_refuse_writes (1);
    s_pump (100);                       /* what was sent before has arrived */
    int started = s_log_count ("@");
    s_hang_release ();
    s_pump (1000);
    assert_int_equal (s_log_count ("@"), started);     /* nothing starts meanwhile */
    assert_true (sch_redis_kept (sch_store_redis (T.sch.store)) > 0);
    char *ip = ths_raw_str (&T.sch, "HGET dexter:{c15}:deployment accessip");
    assert_string_equal (ip, "");
    free (ip);

    s_refuse_writes (0);
    char *final = s_wait_final ("c15", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    ip = ths_raw_str (&T.sch, "HGET dexter:{c15}:deployment accessip");
    assert_string_equal (ip, "203.0.113.7");
    free (ip);
    //  network, security, image, keypair, the vpn's 2, access, 1 master,
    //  2 hosts
    assert_int_equal (s_events ("c15", "step.started"), 10);
    assert_int_equal (s_events ("c15", "step.done"), 10);
    assert_int_equal (s_log_count ("@1:"), 10);
    assert_int_equal (s_log_count ("@"), 10);
    zactor_destroy (&a);
}

/*  A job whose start Redis cannot record is not sent: once Redis takes
    writes, it is sent as the attempt recorded, and no attempt number is
    ever used twice. */
static void
test_start_recorded_before_sent (void **state)
{
    (void) state;
    s_cluster ("c16", 1);
    s_deploy ("c16", "deploy", 5);      /* no worker yet: nothing can start */
    s_refuse_writes (1);
    zactor_t *a = s_worker ("a", 8, 1000);
    s_wait_workers (1);
    s_vpn (1);
    s_pump (1000);
    assert_int_equal (s_log_count ("@"), 0);
    char *job = ths_raw_str (&T.sch, "HGET dexter:{c16}:jobs network");
    assert_non_null (strstr (job, "\"status\":\"pending\""));
    free (job);

    s_refuse_writes (0);
    char *final = s_wait_final ("c16", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    assert_int_equal (s_log_count ("network@1:a"), 1);
    assert_int_equal (s_log_count ("@1:"), 9);
    assert_int_equal (s_log_count ("@"), 9);
    assert_int_equal (s_events ("c16", "step.started"), 9);
    zactor_destroy (&a);
}

/*  A restarted engine that has not read Redis yet (it was down when the
    scheduler started) does not judge what workers say by an empty view: a
    renewal is not answered with job.cancel, and a result is held until
    Redis was read, then counts. */
static void
test_workers_heard_before_redis_read (void **state)
{
    (void) state;
    zsock_t *raw;
    json_t *assign = s_raw_first_job ("c17", &raw);
    const char *job = dx_msg_str (assign, "job");
    sch_engine_destroy (&T.sch.engine);
    T.sch.ctx.engine = T.sch.engine = NULL;     /* pumped without a tick: Redis not read */
    sch_engine_t *engine = sch_engine_new (T.sch.store, T.sch.seal, T.sch.broker, LEASE_MS);
    s_raw_job (raw, job, 1, NULL, NULL);
    json_t *cancel = s_raw_hear (raw, "job.cancel", 300);
    assert_null (cancel);
    s_raw_job (raw, job, 1, "done", json_pack ("[{s:s, s:s, s:s}]", "key", "vpc",
                                               "kind", "vpc", "provider_id", "vpc-1"));
    s_pump (200);
    char *record = ths_raw_str (&T.sch, "HGET dexter:{c17}:jobs network");
    assert_non_null (strstr (record, "\"status\":\"running\""));
    free (record);

    T.sch.ctx.engine = T.sch.engine = engine;
    assert_int_equal (sch_engine_recover (T.sch.engine), 0);
    record = ths_raw_str (&T.sch, "HGET dexter:{c17}:jobs network");
    assert_non_null (strstr (record, "\"status\":\"done\""));
    free (record);
    assert_int_equal (s_events ("c17", "step.done"), 1);
    assert_int_equal (s_events ("c17", "step.late"), 0);
    char *vpc = ths_raw_str (&T.sch, "HGET dexter:{c17}:resources vpc");
    assert_non_null (vpc);
    free (vpc);
    json_decref (assign);
    zsock_destroy (&raw);
}

/*  Batches on (aws): an agent group's hosts are one `hosts` step; its
    result's many host.GROUP.SLOT resources are recorded in the one
    transaction of its step.done, with a host.done event per host naming
    the host's step, the batch, the instance and its address; while Redis
    refuses writes the whole result is kept, and none of it shows until
    Redis has all of it. Progress counts the batch as one step. Scale down
    is one remove.GROUP; destroy drops every record. */
static void
test_batch_hosts (void **state)
{
    (void) state;
    T.sch.ctx.aws_batch_max = 1000;
    zactor_t *a = s_deploy_hanging ("c20", 300, "hosts.g1.0");
    char *total = ths_raw_str (&T.sch, "HGET dexter:{c20}:deployment steps_total");
    //  network, security, image, keypair, the vpn's 2, access, 1 master, 1 batch
    assert_string_equal (total, "9");
    free (total);
    char *job = ths_raw_str (&T.sch, "HGET dexter:{c20}:jobs hosts.g1.0");
    assert_non_null (strstr (job, "\"kind\":\"hosts\""));
    free (job);
    s_refuse_writes (1);
    s_pump (100);
    s_hang_release ();
    s_pump (1000);
    assert_true (sch_redis_kept (sch_store_redis (T.sch.store)) > 0);
    redisReply *r = ths_raw (&T.sch, "HLEN dexter:{c20}:resources");
    assert_true (r->integer < 300);
    freeReplyObject (r);
    assert_int_equal (s_events ("c20", "host.done"), 0);

    s_refuse_writes (0);
    char *final = s_wait_final ("c20", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    assert_true (s_log_count ("hosts.g1.0@") >= 1);
    assert_int_equal (s_log_count ("host.g1."), 0);
    r = ths_raw (&T.sch, "HLEN dexter:{c20}:resources");
    assert_int_equal (r->integer, 4 + 2 + 2 + 1 + 300);
    freeReplyObject (r);
    char *host = ths_raw_str (&T.sch, "HGET dexter:{c20}:resources host.g1.299");
    assert_non_null (strstr (host, "\"provider_id\":\"i-00299\""));
    free (host);
    char *done = ths_raw_str (&T.sch, "HGET dexter:{c20}:deployment steps_done");
    assert_string_equal (done, "9");
    free (done);
    assert_int_equal (s_events ("c20", "step.started"), 9);
    assert_int_equal (s_events ("c20", "step.done"), 9);
    assert_int_equal (s_events ("c20", "host.done"), 300);
    char *step = s_event_field ("c20", "host.done", "step");
    char *batch = s_event_field ("c20", "host.done", "batch");
    char *instance = s_event_field ("c20", "host.done", "instance");
    char *ip = s_event_field ("c20", "host.done", "private_ip");
    assert_string_equal (step, "host.g1.0");
    assert_string_equal (batch, "hosts.g1.0");
    assert_string_equal (instance, "i-00000");
    assert_string_equal (ip, "10.0.0.4");
    free (step), free (batch), free (instance), free (ip);
    //  Each host once, and the batch's step.done after its hosts'
    r = ths_raw (&T.sch, "XRANGE dexter:{c20}:events - +");
    unsigned char seen [300] = { 0 };
    size_t hosts_seen = 0, batch_done = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const char *type = s_entry_field (r->element [i], "type");
        const char *of = s_entry_field (r->element [i], "step");
        if (strcmp (type, "host.done") == 0) {
            int slot = atoi (of + strlen ("host.g1."));
            assert_true (slot >= 0 && slot < 300 && !seen [slot] && !batch_done);
            seen [slot] = 1;
            hosts_seen++;
        }
        if (strcmp (type, "step.done") == 0 && strcmp (of, "hosts.g1.0") == 0)
            batch_done = i;
    }
    assert_int_equal (hosts_seen, 300);
    assert_true (batch_done > 0);
    freeReplyObject (r);

    //  Scale down to 100: the 200 newest go, in one step
    s_script_reset ();
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{c20}:groups g1 %s",
                                      "{\"name\":\"g1\",\"role\":\"role1\",\"attributes\":{},"
                                      "\"vars\":{},\"instance_type\":\"r3.xlarge\",\"cpus\":400,"
                                      "\"ram\":8,\"disk_size\":50,\"customhwconf\":{\"disks\":[]},"
                                      "\"hosts\":100}"));
    s_deploy ("c20", "deploy", 5);
    final = s_wait_final ("c20", 15000);
    assert_string_equal (final, "deployed");
    free (final);
    //  (a step may run twice: under ASan the worker can lose a lease)
    assert_true (s_log_count ("remove.g1@") >= 1);
    assert_int_equal (s_log_count ("remove.g1."), 0);
    assert_true (s_log_count ("hosts.g1.0@") >= 1);
    assert_int_equal (s_events ("c20", "step.done"), 9 + 10);
    r = ths_raw (&T.sch, "HLEN dexter:{c20}:resources");
    assert_int_equal (r->integer, 4 + 2 + 2 + 1 + 100);
    freeReplyObject (r);
    r = ths_raw (&T.sch, "HEXISTS dexter:{c20}:resources host.g1.100");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    r = ths_raw (&T.sch, "HEXISTS dexter:{c20}:resources host.g1.99");
    assert_int_equal (r->integer, 1);
    freeReplyObject (r);

    s_script_reset ();
    s_deploy ("c20", "destroy", 5);
    final = s_wait_final ("c20", 15000);
    assert_string_equal (final, "destroyed");
    free (final);
    r = ths_raw (&T.sch, "EXISTS dexter:{c20}:resources");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    zactor_destroy (&a);
}

int
main (void)
{
    dx_log_init ("test_sch_engine");
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_deploy_runs_every_step, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_azure_deployment, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_vpn_key_mismatch, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_permanent_failure, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_retry_runs_again, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_worker_leaves, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_lease_expires, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_engine_restart, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_host_pacing, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_recovered_deployment_ends, s_test_setup,
                                         s_test_teardown),
        cmocka_unit_test_setup_teardown (test_unreadable_credentials, s_test_setup,
                                         s_test_teardown),
        cmocka_unit_test_setup_teardown (test_recheck_loads_unknown, s_test_setup,
                                         s_test_teardown),
        cmocka_unit_test_setup_teardown (test_progress_events, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_reconnected_worker_keeps_its_jobs, s_test_setup,
                                         s_test_teardown),
        cmocka_unit_test_setup_teardown (test_result_from_unknown_identity, s_test_setup,
                                         s_test_teardown),
        cmocka_unit_test_setup_teardown (test_recreated_cluster_ignores_old_attempts,
                                         s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_result_kept_for_redis, s_test_setup,
                                         s_test_teardown),
        cmocka_unit_test_setup_teardown (test_start_recorded_before_sent, s_test_setup,
                                         s_test_teardown),
        cmocka_unit_test_setup_teardown (test_workers_heard_before_redis_read, s_test_setup,
                                         s_test_teardown),
        cmocka_unit_test_setup_teardown (test_batch_hosts, s_test_setup, s_test_teardown),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
