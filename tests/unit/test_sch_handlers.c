/*  Tests of the scheduler's handlers (sch_cluster, sch_deployment,
    sch_handlers), driven through sch_server as the api drives them, and of
    the server's loop, against a real redis-server that this test starts on
    a free loopback port in a temporary directory and stops at the end.
    Nothing is skipped: without redis-server the test fails.

    Covered: every handler's success and error paths with the body shapes of
    docs/api.md; the fields of the provider-dependent writes validated for
    the cluster's provider, after NOT_FOUND and before CONFLICT; atomic
    cluster delete (no key left); no secret plaintext in any key, reply or
    log line; Redis down mid-way and back again; the ROUTER loop through a
    real DEALER (malformed input, deadlines, concurrent writers, bursts);
    the read cache and its memos as GETs see them; the list of 10,000
    clusters (its time is printed, not asserted). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../services/scheduler/sch_server.h"
#include "harness_sch.h"

#include "dx_seal.h"
#include "dx_msg.h"
#include "dx_log.h"
#include "dx_spec.h"
#include "dx_util.h"

/*  Distinctive plaintexts: no key, reply or log line may ever hold them
    (the ssh key's is in TH_SSH_KEY_PEM). */
#define SECRET_KEYID "AKIAPLAINKEYIDMARKER"
#define SECRET_KEY   "PlainSecretAccessKeyMarker42/xyz"
#define SECRET_PASS  "Azure-Pl41n-PassMarker"
#define AZURE_CREDS  "{\"clientId\": \"11111111-2222-3333-4444-555555555555\", " \
                     "\"clientSecret\": \"MarkerCredSecret\", " \
                     "\"subscriptionId\": \"66666666-7777-8888-9999-000000000000\", " \
                     "\"tenantId\": \"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\"}"

static const unsigned char s_master [32] = { 0x5a, 0x5a, 0x5a, 0x01 };

static struct {
    ths_t sch;                  /* Redis and the test's own connection, store, seal */
    sch_read_t *read;           /* the store's */
    sch_server_t *server;
    char *azure_b64;            /* base64 of AZURE_CREDS, as a request carries it */
} T;


//  ---------------------------------------------------------------------
//  redis-server and a connection of the test's own

/*  Starts redis-server again, on the port and in the directory it had. */
static int
s_redis_start (void)
{
    T.sch.redis.pid = th_redis_start (T.sch.redis.dir, T.sch.redis.port, NULL);
    return T.sch.redis.pid > 0? 0: -1;
}

/*  Connects the test's own connection again. */
static void
s_raw_connect (void)
{
    if (T.sch.redis.raw)
        redisFree (T.sch.redis.raw);
    struct timeval tv = { 2, 0 };
    T.sch.redis.raw = redisConnectWithTimeout ("127.0.0.1", T.sch.redis.port, tv);
    assert_non_null (T.sch.redis.raw);
    assert_int_equal (T.sch.redis.raw->err, 0);
}

/*  Keys matching pattern, by SCAN (as an operator would look). */
static size_t
s_scan_count (const char *pattern)
{
    size_t count = 0;
    char cursor [32] = "0";
    do {
        redisReply *reply = ths_raw (&T.sch, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        assert_int_equal (reply->type, REDIS_REPLY_ARRAY);
        snprintf (cursor, sizeof cursor, "%s", reply->element [0]->str);
        count += reply->element [1]->elements;
        freeReplyObject (reply);
    } while (strcmp (cursor, "0"));
    return count;
}


//  ---------------------------------------------------------------------
//  Requests through the real codec

/*  Sends req through encode/decode (so it must be a valid message of
    PROTOCOL.md), handles it, checks the reply is a valid message too, and
    asserts its status. Returns the reply (caller frees); takes req. */
static json_t *
s_call (const char *status, json_t *req)
{
    char *buf, err [DX_ERR_LEN];
    size_t len;
    assert_int_equal (dx_msg_encode (req, &buf, &len), 0);
    json_t *decoded = dx_msg_decode (buf, len, err, sizeof err);
    free (buf);
    if (!decoded)
        fail_msg ("test request is not a valid %s: %s", dx_msg_type (req), err);
    json_t *reply = sch_server_handle (T.server, decoded);
    json_decref (decoded);
    assert_non_null (reply);
    assert_int_equal (dx_msg_encode (reply, &buf, &len), 0);
    json_t *check = dx_msg_decode (buf, len, err, sizeof err);
    free (buf);
    if (!check)
        fail_msg ("reply is not a valid message: %s", err);
    json_decref (check);
    assert_string_equal (dx_msg_id (reply), dx_msg_id (req));
    const char *got = dx_msg_str (reply, "status");
    if (!got || strcmp (got, status)) {
        char *text = json_dumps (reply, JSON_COMPACT);
        fail_msg ("%s: expected %s, got %s", dx_msg_type (req), status, text);
    }
    if (strcmp (status, DX_OK) && strcmp (status, DX_CREATED) && strcmp (status, DX_ACCEPTED)) {
        const char *message = dx_msg_str (reply, "message");
        assert_non_null (message);
        assert_true (strlen (message) > 10);
        assert_null (json_object_get (reply, "body"));
    }
    json_decref (req);
    return reply;
}

/*  s_call that only checks the status. */
static void
s_check (const char *status, json_t *req)
{
    json_decref (s_call (status, req));
}

/*  Asserts the reply's message contains text. */
static void
s_assert_message (const json_t *reply, const char *text)
{
    const char *message = dx_msg_str (reply, "message");
    if (!message || !strstr (message, text))
        fail_msg ("message '%s' does not contain '%s'", message? message: "(none)", text);
}

/*  Asserts the reply's errors name field with a message containing text. */
static void
s_assert_fault (const json_t *reply, const char *field, const char *text)
{
    size_t i;
    json_t *fault;
    json_array_foreach (json_object_get (reply, "errors"), i, fault) {
        const char *message = json_string_value (json_object_get (fault, "message"));
        if (streq (json_string_value (json_object_get (fault, "field")), field)
        &&  message && strstr (message, text))
            return;
    }
    char *errors = json_dumps (json_object_get (reply, "errors"), JSON_COMPACT);
    fail_msg ("no fault of %s saying '%s' in %s", field, text, errors? errors: "(none)");
}

static const json_t *
s_body (const json_t *reply)
{
    const json_t *body = json_object_get (reply, "body");
    assert_non_null (body);
    return body;
}

static void
s_create (const char *name, const char *provider)
{
    s_check (DX_CREATED, ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster",
                                  "name", name, "provider", provider, "type", "mesos"));
}

/*  The fields of an aws config, as the api passes a request body: 3
    masters in us-west-2, the test's ssh key. */
static json_t *
s_aws_config (void)
{
    return json_pack ("{s:s, s:i, s:s, s:s, s:s, s:s}", "master_type", "m3.large",
                      "masters", 3, "region", "us-west-2", "sshkey", "reference",
                      "image", "ami-12345678", "sshkeydata", TH_SSH_KEY_B64);
}

/*  The fields of an azure config in location. */
static json_t *
s_azure_config (const char *location)
{
    return json_pack ("{s:s, s:i, s:s, s:s, s:s}", "master_type", "Basic_A2", "masters", 1,
                      "location", location, "ssh_user", "dexter",
                      "ssh_password", SECRET_PASS);
}

/*  config.put of fields (taken) to cluster name. */
static json_t *
s_config_req (const char *name, json_t *fields)
{
    return ths_req ("config.put", "{s:s, s:o}", "name", name, "fields", fields);
}

static void
s_configure (const char *name)
{
    s_check (DX_OK, s_config_req (name, s_aws_config ()));
}

/*  The fields of a group of `hosts` r3.xlarge hosts: 4 vCPUs each. */
static json_t *
s_group_spec (const char *name, int hosts)
{
    return json_pack ("{s:s, s:s, s:{s:s}, s:{s:s}, s:s, s:i, s:i, s:i, s:{s:[]}}",
                      "name", name, "role", "role1", "attributes", "foo", "bar",
                      "vars", "x", "42", "instance_type", "r3.xlarge", "cpus", 4 * hosts,
                      "ram", 8, "disk_size", 50, "customhwconf", "disks");
}

/*  group.upsert of a group of `hosts` hosts to cluster name. */
static json_t *
s_group_req (const char *name, const char *group, int hosts)
{
    return ths_req ("group.upsert", "{s:s, s:o}", "name", name,
                    "fields", s_group_spec (group, hosts));
}

/*  group.update of group in cluster name to fields (taken). */
static json_t *
s_update_req (const char *name, const char *group, json_t *fields)
{
    return ths_req ("group.update", "{s:s, s:s, s:o}", "name", name, "group", group,
                    "fields", fields);
}

/*  deployment.put of command to cluster name with the test's aws keys. */
static json_t *
s_deploy_req (const char *name, const char *command)
{
    return ths_req ("deployment.put", "{s:s, s:{s:s, s:i, s:s, s:s}}", "name", name,
                    "fields", "command", command, "parallelism", 7,
                    "aws_access_key_id", SECRET_KEYID, "aws_secret_access_key", SECRET_KEY);
}

static void
s_set_state (const char *name, const char *state)
{
    redisReply *r = ths_raw (&T.sch, "HSET dexter:{%s}:deployment state %s", name, state);
    freeReplyObject (r);
}


//  ---------------------------------------------------------------------
//  Fixtures

static int
s_group_setup (void **state)
{
    (void) state;
    if (ths_up (&T.sch, "sch-test", s_master))
        return -1;
    T.server = sch_server_new ("tcp://127.0.0.1:*", T.sch.store, T.sch.seal, NULL);
    T.azure_b64 = dx_base64_encode ((const unsigned char *) AZURE_CREDS, strlen (AZURE_CREDS));
    if (!T.server || !T.azure_b64
    ||  !sch_redis_connected (sch_store_redis (T.sch.store)))
        return -1;
    T.read = sch_store_read (T.sch.store);
    return 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    sch_server_destroy (&T.server);
    free (T.azure_b64);
    ths_down (&T.sch);
    return 0;
}

/*  Each test starts from an empty Redis. */
static int
s_setup (void **state)
{
    (void) state;
    if (!T.sch.redis.raw || T.sch.redis.raw->err)
        s_raw_connect ();
    redisReply *r = redisCommand (T.sch.redis.raw, "FLUSHALL");
    if (!r)
        return -1;
    freeReplyObject (r);
    return 0;
}


//  ---------------------------------------------------------------------
//  Clusters

static void
test_cluster_create_get_list (void **state)
{
    (void) state;
    json_t *reply = s_call (DX_OK, ths_req ("cluster.list", NULL));
    assert_int_equal (json_integer_value (json_object_get (s_body (reply), "count")), 0);
    assert_int_equal (json_array_size (json_object_get (s_body (reply), "clusters")), 0);
    json_decref (reply);

    reply = s_call (DX_CREATED, ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster",
                                         "name", "c1", "provider", "aws", "type", "dcos"));
    const json_t *body = s_body (reply);
    assert_string_equal (json_string_value (json_object_get (body, "name")), "c1");
    assert_string_equal (json_string_value (json_object_get (body, "provider")), "aws");
    assert_string_equal (json_string_value (json_object_get (body, "type")), "dcos");
    assert_true (json_is_false (json_object_get (body, "configured")));
    assert_int_equal (json_array_size (json_object_get (body, "groups")), 0);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (body, "hosts"),
                                                           "masters")), 0);
    const char *created = json_string_value (json_object_get (body, "created_at"));
    assert_non_null (created);
    assert_int_equal (strlen (created), 24);        /* 2026-11-25T02:40:00.123Z */
    assert_int_equal (created [23], 'Z');
    json_t *created_body = json_deep_copy (body);
    json_decref (reply);

    //  GET gives the same object
    reply = s_call (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    assert_true (json_equal ((json_t *) s_body (reply), created_body));
    body = s_body (reply);
    const json_t *deployment = json_object_get (body, "deployment");
    assert_string_equal (json_string_value (json_object_get (deployment, "state")), "init");
    assert_int_equal (json_integer_value (json_object_get (deployment, "generation")), 0);
    json_decref (reply);
    json_decref (created_body);

    //  Exists already
    reply = s_call (DX_CONFLICT, ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster",
                                          "name", "c1", "provider", "azure", "type", "mesos"));
    s_assert_message (reply, "c1");
    s_assert_message (reply, "already exists");
    json_decref (reply);

    s_create ("b2", "azure");
    s_create ("a3", "aws");
    reply = s_call (DX_OK, ths_req ("cluster.list", NULL));
    body = s_body (reply);
    assert_int_equal (json_integer_value (json_object_get (body, "count")), 3);
    const json_t *list = json_object_get (body, "clusters");
    const char *order [] = { "a3", "b2", "c1" };
    for (size_t i = 0; i < 3; i++) {
        const json_t *entry = json_array_get (list, i);
        assert_string_equal (json_string_value (json_object_get (entry, "name")), order [i]);
        assert_string_equal (json_string_value (json_object_get (entry, "state")), "init");
        assert_non_null (json_string_value (json_object_get (entry, "provider")));
        assert_non_null (json_string_value (json_object_get (entry, "type")));
        assert_non_null (json_string_value (json_object_get (entry, "created_at")));
        assert_int_equal (json_object_size (entry), 5);
    }
    json_decref (reply);

    //  The schema as docs/redis.md describes it
    assert_int_equal (ths_raw_int (&T.sch, "ZCARD dexter:clusters"), 3);
    assert_int_equal (ths_raw_int (&T.sch, "EXISTS dexter:{c1}:cluster"), 1);
    assert_int_equal (ths_raw_int (&T.sch, "XLEN dexter:{c1}:events"), 1);
    redisReply *r = ths_raw (&T.sch, "HGET dexter:{c1}:deployment state");
    assert_string_equal (r->str, "init");
    freeReplyObject (r);
    r = ths_raw (&T.sch, "HGET dexter:{c1}:cluster provider");
    assert_string_equal (r->str, "aws");
    freeReplyObject (r);
}

static void
test_cluster_errors (void **state)
{
    (void) state;
    json_t *reply = s_call (DX_NOT_FOUND, ths_req ("cluster.get", "{s:s}", "name", "nosuch"));
    s_assert_message (reply, "cluster nosuch does not exist");
    json_decref (reply);
    const char *types [] = { "cluster.delete", "config.get", "config.delete", "group.list",
                             "deployment.get", "deployment.vpn", "deployment.events", NULL };
    for (int i = 0; types [i]; i++) {
        json_t *req = strcmp (types [i], "cluster.delete") == 0
            ? ths_req (types [i], "{s:s, s:b}", "name", "nosuch", "force", 0)
            : strcmp (types [i], "deployment.delete") == 0
            ? ths_req (types [i], "{s:s, s:b}", "name", "nosuch", "force", 0)
            : ths_req (types [i], "{s:s}", "name", "nosuch");
        reply = s_call (DX_NOT_FOUND, req);
        s_assert_message (reply, "nosuch");
        json_decref (reply);
    }
    s_check (DX_NOT_FOUND, ths_req ("deployment.delete", "{s:s, s:b}", "name", "nosuch",
                                    "force", 1));
    s_check (DX_NOT_FOUND, ths_req ("group.get", "{s:s, s:s}", "name", "nosuch", "group", "g"));
    s_check (DX_NOT_FOUND, ths_req ("group.delete", "{s:s, s:s}", "name", "nosuch", "group", "g"));
    s_check (DX_NOT_FOUND, s_group_req ("nosuch", "g", 1));
    s_check (DX_NOT_FOUND, s_config_req ("nosuch", s_aws_config ()));
    s_check (DX_NOT_FOUND, s_deploy_req ("nosuch", "deploy"));

    //  Names that would break the key schema are refused before Redis
    const char *bad [] = { "Upper", "a}b", "a:b", "1abc", "", "abcdefghijklmnopq", "a b", NULL };
    for (int i = 0; bad [i]; i++) {
        reply = s_call (DX_INVALID, ths_req ("cluster.get", "{s:s}", "name", bad [i]));
        assert_string_equal (dx_msg_str (reply, "field"), "name");
        json_decref (reply);
        s_check (DX_INVALID, ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster",
                                      "name", bad [i], "provider", "aws", "type", "mesos"));
    }
    s_check (DX_INVALID, ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster",
                                  "name", "ok", "provider", "gcp", "type", "mesos"));
    s_check (DX_INVALID, ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster",
                                  "name", "ok", "provider", "aws", "type", "k8s"));
    s_check (DX_INVALID, ths_req ("cluster.create", "{s:{s:s, s:s}}", "cluster",
                                  "name", "ok", "provider", "aws"));
    s_check (DX_INVALID, ths_req ("cluster.create", "{s:{s:s, s:s}}", "cluster",
                                  "provider", "aws", "type", "mesos"));
    s_check (DX_INVALID, ths_req ("cluster.create", "{s:{s:i, s:s, s:s}}", "cluster",
                                  "name", 7, "provider", "aws", "type", "mesos"));
    //  The cluster is looked for before its fields: NOT_FOUND, not INVALID
    s_check (DX_NOT_FOUND, ths_req ("group.upsert", "{s:s, s:{s:i}}", "name", "ok",
                                    "fields", "cpus", 4));
    s_check (DX_INVALID, ths_req ("group.get", "{s:s, s:s}", "name", "nosuch", "group", "G!"));
    //  Nothing was written by any of the above
    assert_int_equal (s_scan_count ("dexter:*"), 0);
    //  The longest valid name works
    s_create ("abcdefghijklmnop", "aws");
    s_check (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "abcdefghijklmnop"));

    //  A type the scheduler does not serve
    json_t *req = ths_req ("reply", "{s:s}", "status", "OK");
    reply = sch_server_handle (T.server, req);
    assert_string_equal (dx_msg_str (reply, "status"), DX_INVALID);
    json_decref (reply);
    json_decref (req);
}

static void
test_cluster_delete (void **state)
{
    (void) state;
    s_create ("keep", "aws");
    s_configure ("keep");
    s_create ("gone", "aws");
    s_configure ("gone");
    s_check (DX_CREATED, s_group_req ("gone", "g1", 3));
    s_check (DX_ACCEPTED, s_deploy_req ("gone", "deploy"));
    assert_true (s_scan_count ("dexter:{gone}*") >= 7);

    //  Resources may exist: refused, with a message that says what to do
    const char *states [] = { "deploying", "deployed", "deploy_failed", "destroying",
                              "destroy_failed", NULL };
    for (int i = 0; states [i]; i++) {
        s_set_state ("gone", states [i]);
        json_t *reply = s_call (DX_CONFLICT, ths_req ("cluster.delete", "{s:s, s:b}",
                                                      "name", "gone", "force", 0));
        s_assert_message (reply, "destroy");
        s_assert_message (reply, states [i]);
        json_decref (reply);
    }
    //  With force: every key goes, and the index member, in one transaction
    json_t *reply = s_call (DX_OK, ths_req ("cluster.delete", "{s:s, s:b}", "name", "gone",
                                            "force", 1));
    assert_string_equal (json_string_value (json_object_get (s_body (reply), "deleted")), "gone");
    json_decref (reply);
    assert_int_equal (s_scan_count ("dexter:{gone}*"), 0);
    redisReply *r = ths_raw (&T.sch, "ZSCORE dexter:clusters gone");
    assert_int_equal (r->type, REDIS_REPLY_NIL);
    freeReplyObject (r);
    s_check (DX_NOT_FOUND, ths_req ("cluster.get", "{s:s}", "name", "gone"));
    //  The neighbour is untouched
    assert_int_equal (ths_raw_int (&T.sch, "EXISTS dexter:{keep}:cluster dexter:{keep}:config "
                                           "dexter:{keep}:secrets dexter:{keep}:deployment "
                                           "dexter:{keep}:events"), 5);

    //  States without resources delete without force; the name is free again
    s_set_state ("keep", "destroyed");
    s_check (DX_OK, ths_req ("cluster.delete", "{s:s, s:b}", "name", "keep", "force", 0));
    assert_int_equal (s_scan_count ("dexter:*"), 0);
    s_create ("keep", "azure");
    reply = s_call (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "keep"));
    assert_true (json_is_false (json_object_get (s_body (reply), "configured")));
    json_decref (reply);
    assert_int_equal (ths_raw_int (&T.sch, "XLEN dexter:{keep}:events"), 1);
}


//  ---------------------------------------------------------------------
//  Config

/*  While resources may exist, the config may change but not move the
    cluster to another region (location on Azure), nor go: the destroy
    looks for the resources where the config says. */
static void
test_config_stays_while_resources_exist (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    s_configure ("c1");
    json_t *moved = s_aws_config ();
    json_object_set_new (moved, "region", json_string ("us-east-1"));
    const char *busy [] = { "deploying", "deployed", "deploy_failed", "destroying",
                            "destroy_failed", NULL };
    for (int i = 0; busy [i]; i++) {
        s_set_state ("c1", busy [i]);
        json_t *reply = s_call (DX_CONFLICT, s_config_req ("c1", json_incref (moved)));
        assert_string_equal (dx_msg_str (reply, "field"), "region");
        s_assert_message (reply, "us-west-2");
        s_assert_message (reply, "destroy");
        json_decref (reply);
        //  The same region: a change like any other
        s_check (DX_OK, s_config_req ("c1", s_aws_config ()));
    }
    json_t *reply = s_call (DX_OK, ths_req ("config.get", "{s:s}", "name", "c1"));
    assert_string_equal (json_string_value (json_object_get (s_body (reply), "region")),
                         "us-west-2");
    json_decref (reply);
    //  Deleted, then put back elsewhere: the region of the last generation
    //  (where a destroy without a config looks) still holds
    s_check (DX_CREATED, s_group_req ("c1", "g1", 1));
    s_set_state ("c1", "init");
    s_check (DX_ACCEPTED, s_deploy_req ("c1", "deploy"));
    s_set_state ("c1", "deployed");
    s_check (DX_OK, ths_req ("config.delete", "{s:s}", "name", "c1"));
    reply = s_call (DX_CONFLICT, s_config_req ("c1", json_incref (moved)));
    s_assert_message (reply, "us-west-2");
    json_decref (reply);
    s_configure ("c1");
    //  Nothing can exist: it may move
    s_set_state ("c1", "destroyed");
    s_check (DX_OK, s_config_req ("c1", moved));

    //  Azure: the location
    s_create ("c2", "azure");
    s_check (DX_OK, s_config_req ("c2", s_azure_config ("centralus")));
    s_set_state ("c2", "deployed");
    reply = s_call (DX_CONFLICT, s_config_req ("c2", s_azure_config ("westeurope")));
    assert_string_equal (dx_msg_str (reply, "field"), "location");
    json_decref (reply);
}

static void
test_config (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    json_t *reply = s_call (DX_NOT_FOUND, ths_req ("config.get", "{s:s}", "name", "c1"));
    s_assert_message (reply, "no config");
    json_decref (reply);
    s_check (DX_NOT_FOUND, ths_req ("config.delete", "{s:s}", "name", "c1"));
    //  An azure config for an aws cluster: every fault, the first one named
    reply = s_call (DX_INVALID, s_config_req ("c1", s_azure_config ("centralus")));
    assert_string_equal (dx_msg_str (reply, "field"), "master_type");
    s_assert_message (reply, "not a known aws instance type");
    s_assert_fault (reply, "region", "missing required field");
    s_assert_fault (reply, "ssh_password", "is an azure parameter, not aws");
    json_decref (reply);

    reply = s_call (DX_OK, s_config_req ("c1", s_aws_config ()));
    const json_t *body = s_body (reply);
    assert_int_equal (json_integer_value (json_object_get (body, "masters")), 3);
    assert_string_equal (json_string_value (json_object_get (body, "region")), "us-west-2");
    assert_string_equal (json_string_value (json_object_get (body, "image")), "ami-12345678");
    assert_non_null (json_string_value (json_object_get (body, "updated_at")));
    const json_t *secret = json_object_get (body, "sshkeydata");
    assert_true (json_is_true (json_object_get (secret, "set")));
    const char *fp = json_string_value (json_object_get (secret, "fingerprint"));
    assert_non_null (fp);
    assert_int_equal (strlen (fp), 16);
    char fp1 [17];
    snprintf (fp1, sizeof fp1, "%s", fp);
    char expected [17];
    dx_seal_fingerprint (T.sch.seal, TH_SSH_KEY_PEM, strlen (TH_SSH_KEY_PEM), expected);
    assert_string_equal (fp1, expected);
    assert_int_equal (json_object_size (body), 7);
    json_t *put_body = json_deep_copy (body);
    json_decref (reply);

    //  GET shows exactly what PUT answered
    reply = s_call (DX_OK, ths_req ("config.get", "{s:s}", "name", "c1"));
    assert_true (json_equal ((json_t *) s_body (reply), put_body));
    json_decref (reply);
    json_decref (put_body);

    //  In Redis: numbers as decimal strings, the fingerprint, the sealed secret
    redisReply *r = ths_raw (&T.sch, "HGET dexter:{c1}:config masters");
    assert_string_equal (r->str, "3");
    freeReplyObject (r);
    r = ths_raw (&T.sch, "HGET dexter:{c1}:config sshkeydata_fingerprint");
    assert_string_equal (r->str, fp1);
    freeReplyObject (r);
    assert_int_equal (ths_raw_int (&T.sch, "HEXISTS dexter:{c1}:config sshkeydata"), 0);
    r = ths_raw (&T.sch, "HGET dexter:{c1}:secrets sshkeydata");
    assert_int_equal (r->type, REDIS_REPLY_STRING);
    assert_memory_equal (r->str, "dx1:", 4);
    size_t len;
    char *plain = dx_seal_open (T.sch.seal, r->str, &len);
    assert_non_null (plain);
    assert_string_equal (plain, TH_SSH_KEY_PEM);
    dx_seal_free (plain, len);
    freeReplyObject (r);

    //  The cluster now counts as configured, with its masters
    reply = s_call (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    assert_true (json_is_true (json_object_get (s_body (reply), "configured")));
    assert_int_equal (json_integer_value (json_object_get (json_object_get (s_body (reply),
                                          "hosts"), "masters")), 3);
    json_decref (reply);

    //  PUT replaces everything: image gone, new secret, new fingerprint
    char *another = dx_base64_encode ((const unsigned char *) TH_SSH_KEY_PEM "\n",
                                      strlen (TH_SSH_KEY_PEM) + 1);
    reply = s_call (DX_OK, s_config_req ("c1", json_pack ("{s:s, s:i, s:s, s:s, s:s}",
                                         "master_type", "m3.large", "masters", 5,
                                         "region", "eu-west-1", "sshkey", "other",
                                         "sshkeydata", another)));
    free (another);
    body = s_body (reply);
    assert_null (json_object_get (body, "image"));
    assert_int_equal (json_integer_value (json_object_get (body, "masters")), 5);
    assert_string_not_equal (json_string_value (json_object_get (json_object_get (body,
                             "sshkeydata"), "fingerprint")), fp1);
    json_decref (reply);
    assert_int_equal (ths_raw_int (&T.sch, "HEXISTS dexter:{c1}:config image"), 0);
    assert_int_equal (ths_raw_int (&T.sch, "HLEN dexter:{c1}:secrets"), 1);

    //  Names the store uses for its own fields cannot sneak into the config
    //  hash, nor can a secret that is not one
    json_t *fields = s_aws_config ();
    json_object_set_new (fields, "x_fingerprint", json_string ("1"));
    s_check (DX_INVALID, s_config_req ("c1", fields));
    fields = s_aws_config ();
    json_object_set_new (fields, "sshkeydata", json_string ("1"));
    s_check (DX_INVALID, s_config_req ("c1", fields));

    reply = s_call (DX_OK, ths_req ("config.delete", "{s:s}", "name", "c1"));
    assert_string_equal (json_string_value (json_object_get (s_body (reply), "deleted")), "config");
    json_decref (reply);
    assert_int_equal (ths_raw_int (&T.sch, "EXISTS dexter:{c1}:config dexter:{c1}:secrets"), 0);
    s_check (DX_NOT_FOUND, ths_req ("config.get", "{s:s}", "name", "c1"));
    s_check (DX_NOT_FOUND, ths_req ("config.delete", "{s:s}", "name", "c1"));

    //  Azure: the location's display name beside it, ssh_password sealed
    s_create ("az", "azure");
    reply = s_call (DX_OK, s_config_req ("az", s_azure_config ("centralus")));
    body = s_body (reply);
    assert_string_equal (json_string_value (json_object_get (body, "location_name")), "Central US");
    assert_true (json_is_true (json_object_get (json_object_get (body, "ssh_password"), "set")));
    json_decref (reply);
}


//  ---------------------------------------------------------------------
//  Groups

static void
test_groups (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    json_t *reply = s_call (DX_OK, ths_req ("group.list", "{s:s}", "name", "c1"));
    assert_int_equal (json_array_size (json_object_get (s_body (reply), "groups")), 0);
    json_decref (reply);

    reply = s_call (DX_CREATED, s_group_req ("c1", "zeta", 3));
    const json_t *body = s_body (reply);
    assert_string_equal (json_string_value (json_object_get (body, "name")), "zeta");
    assert_int_equal (json_integer_value (json_object_get (body, "hosts")), 3);
    assert_string_equal (json_string_value (json_object_get (json_object_get (body, "attributes"),
                                                             "foo")), "bar");
    assert_true (json_real_value (json_object_get (json_object_get (body, "instance"),
                                                   "memory_gib")) == 30.5);
    char created [32];
    snprintf (created, sizeof created, "%s",
              json_string_value (json_object_get (body, "created_at")));
    assert_non_null (json_string_value (json_object_get (body, "updated_at")));
    json_decref (reply);

    //  POST of an existing name replaces it (200), keeping created_at
    usleep (2000);
    reply = s_call (DX_OK, s_group_req ("c1", "zeta", 5));
    body = s_body (reply);
    assert_int_equal (json_integer_value (json_object_get (body, "hosts")), 5);
    assert_string_equal (json_string_value (json_object_get (body, "created_at")), created);
    assert_string_not_equal (json_string_value (json_object_get (body, "updated_at")), created);
    json_decref (reply);

    s_check (DX_CREATED, s_group_req ("c1", "alpha", 2));
    //  An azure instance type on an aws cluster; a name that is none
    json_t *azure = s_group_spec ("beta", 2);
    json_object_set_new (azure, "instance_type", json_string ("Standard_A1"));
    reply = s_call (DX_INVALID, ths_req ("group.upsert", "{s:s, s:o}", "name", "c1",
                                         "fields", azure));
    assert_string_equal (dx_msg_str (reply, "field"), "instance_type");
    json_decref (reply);
    s_check (DX_INVALID, s_group_req ("c1", "Bad", 2));

    reply = s_call (DX_OK, ths_req ("group.list", "{s:s}", "name", "c1"));
    const json_t *groups = json_object_get (s_body (reply), "groups");
    assert_int_equal (json_array_size (groups), 2);
    assert_string_equal (json_string_value (json_object_get (json_array_get (groups, 0), "name")),
                         "alpha");
    assert_string_equal (json_string_value (json_object_get (json_array_get (groups, 1), "name")),
                         "zeta");
    json_decref (reply);

    reply = s_call (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    body = s_body (reply);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (body, "hosts"),
                                                           "agents")), 7);
    assert_string_equal (json_string_value (json_array_get (json_object_get (body, "groups"), 0)),
                         "alpha");
    json_decref (reply);

    reply = s_call (DX_OK, ths_req ("group.get", "{s:s, s:s}", "name", "c1", "group", "alpha"));
    assert_int_equal (json_integer_value (json_object_get (s_body (reply), "hosts")), 2);
    json_decref (reply);
    reply = s_call (DX_NOT_FOUND, ths_req ("group.get", "{s:s, s:s}", "name", "c1",
                                           "group", "nope"));
    s_assert_message (reply, "group nope");
    json_decref (reply);

    //  Update: same name, rename onto a taken name, missing group, rename
    s_check (DX_OK, s_update_req ("c1", "alpha", s_group_spec ("alpha", 4)));
    reply = s_call (DX_CONFLICT, s_update_req ("c1", "alpha", s_group_spec ("zeta", 4)));
    s_assert_message (reply, "zeta");
    json_decref (reply);
    s_check (DX_NOT_FOUND, s_update_req ("c1", "nope", s_group_spec ("other", 4)));
    azure = s_group_spec ("alpha", 4);
    json_object_set_new (azure, "instance_type", json_string ("Standard_A1"));
    s_check (DX_INVALID, s_update_req ("c1", "alpha", azure));
    reply = s_call (DX_OK, s_update_req ("c1", "alpha", s_group_spec ("beta", 6)));
    assert_string_equal (json_string_value (json_object_get (s_body (reply), "name")), "beta");
    json_decref (reply);
    assert_int_equal (ths_raw_int (&T.sch, "HEXISTS dexter:{c1}:groups alpha"), 0);
    assert_int_equal (ths_raw_int (&T.sch, "HEXISTS dexter:{c1}:groups beta"), 1);
    s_check (DX_NOT_FOUND, ths_req ("group.get", "{s:s, s:s}", "name", "c1", "group", "alpha"));

    reply = s_call (DX_OK, ths_req ("group.delete", "{s:s, s:s}", "name", "c1", "group", "beta"));
    assert_string_equal (json_string_value (json_object_get (s_body (reply), "deleted")), "beta");
    json_decref (reply);
    s_check (DX_NOT_FOUND, ths_req ("group.delete", "{s:s, s:s}", "name", "c1", "group", "beta"));
    assert_int_equal (ths_raw_int (&T.sch, "HLEN dexter:{c1}:groups"), 1);
}


/*  A cluster's groups hold at most DX_CLUSTER_HOSTS_MAX hosts together:
    a group write that would pass it is INVALID (field hosts), counted
    with the group in place of the one it replaces; so is a deploy of a
    cluster that holds more (groups written before the cap), never a
    destroy. */
static void
test_cluster_hosts_cap (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    s_configure ("c1");
    int groups = DX_CLUSTER_HOSTS_MAX / DX_GROUP_HOSTS_MAX;
    for (int i = 0; i < groups; i++) {
        char group [16];
        snprintf (group, sizeof group, "g%d", i);
        s_check (DX_CREATED, s_group_req ("c1", group, DX_GROUP_HOSTS_MAX));
    }
    json_t *reply = s_call (DX_INVALID, s_group_req ("c1", "extra", 1));
    assert_string_equal (dx_msg_str (reply, "field"), "hosts");
    s_assert_message (reply, "at most 5000");
    json_decref (reply);
    //  A group replaced, by upsert, update or rename, counts once
    s_check (DX_OK, s_group_req ("c1", "g0", DX_GROUP_HOSTS_MAX));
    s_check (DX_OK, s_update_req ("c1", "g0", s_group_spec ("g0", DX_GROUP_HOSTS_MAX)));
    s_check (DX_OK, s_update_req ("c1", "g0", s_group_spec ("renamed", DX_GROUP_HOSTS_MAX)));
    //  Room made by shrinking one group is taken by another
    s_check (DX_OK, s_group_req ("c1", "g1", DX_GROUP_HOSTS_MAX / 2));
    s_check (DX_CREATED, s_group_req ("c1", "extra", DX_GROUP_HOSTS_MAX / 2));
    reply = s_call (DX_INVALID, s_update_req ("c1", "g1", s_group_spec ("g1",
                                                                       DX_GROUP_HOSTS_MAX)));
    assert_string_equal (dx_msg_str (reply, "field"), "hosts");
    json_decref (reply);
    assert_int_equal (ths_raw_int (&T.sch, "HLEN dexter:{c1}:groups"), groups + 1);

    //  Written before the cap: the deploy is refused, the destroy is not
    redisReply *r = ths_raw (&T.sch, "HSET dexter:{c1}:groups old {\"name\":\"old\",\"hosts\":10}");
    freeReplyObject (r);
    reply = s_call (DX_INVALID, s_deploy_req ("c1", "deploy"));
    assert_string_equal (dx_msg_str (reply, "field"), "hosts");
    s_assert_message (reply, "5010 hosts");
    json_decref (reply);
    s_set_state ("c1", "deployed");
    s_check (DX_ACCEPTED, s_deploy_req ("c1", "destroy"));
}

/*  A cluster holds at most DX_CLUSTER_GROUPS_MAX groups: one more is
    INVALID (field name); replacing or renaming one of them is not. */
static void
test_cluster_groups_cap (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    s_configure ("c1");
    for (int i = 0; i < DX_CLUSTER_GROUPS_MAX; i++) {
        char group [16];
        snprintf (group, sizeof group, "g%d", i);
        s_check (DX_CREATED, s_group_req ("c1", group, 1));
    }
    json_t *reply = s_call (DX_INVALID, s_group_req ("c1", "extra", 1));
    assert_string_equal (dx_msg_str (reply, "field"), "name");
    s_assert_message (reply, "at most 100 groups");
    json_decref (reply);
    s_check (DX_OK, s_group_req ("c1", "g0", 2));
    s_check (DX_OK, s_update_req ("c1", "g0", s_group_spec ("renamed", 1)));
    assert_int_equal (ths_raw_int (&T.sch, "HLEN dexter:{c1}:groups"), DX_CLUSTER_GROUPS_MAX);
    s_check (DX_OK, ths_req ("group.delete", "{s:s, s:s}", "name", "c1", "group", "g1"));
    s_check (DX_CREATED, s_group_req ("c1", "extra", 1));
}


//  ---------------------------------------------------------------------
//  Fields validated for the cluster's provider

/*  The provider-dependent writes carry the body's fields: the scheduler
    finds the cluster (NOT_FOUND), validates the fields for its stored
    provider (INVALID, naming every fault), then applies the state rules
    (CONFLICT), in that order, and writes only what passed. */
static void
test_fields_for_the_provider (void **state)
{
    (void) state;
    json_t *bad = json_pack ("{s:s}", "nonsense", "x");
    s_check (DX_NOT_FOUND, s_config_req ("nosuch", json_incref (bad)));
    s_check (DX_NOT_FOUND, ths_req ("group.upsert", "{s:s, s:O}", "name", "nosuch", "fields", bad));
    s_check (DX_NOT_FOUND, s_update_req ("nosuch", "g1", json_incref (bad)));
    s_check (DX_NOT_FOUND, ths_req ("deployment.put", "{s:s, s:O}", "name", "nosuch",
                                    "fields", bad));

    //  Every fault at once, the first one as the reply's; nothing written
    s_create ("c1", "aws");
    json_t *reply = s_call (DX_INVALID, s_config_req ("c1", json_incref (bad)));
    assert_string_equal (dx_msg_str (reply, "field"), "masters");
    s_assert_fault (reply, "masters", "missing required field");
    s_assert_fault (reply, "sshkeydata", "missing required field");
    s_assert_fault (reply, "nonsense", "unknown field");
    json_decref (reply);
    assert_int_equal (ths_raw_int (&T.sch, "EXISTS dexter:{c1}:config dexter:{c1}:secrets"), 0);
    assert_int_equal (ths_raw_int (&T.sch, "XLEN dexter:{c1}:events"), 1);

    //  The stored provider decides: an azure cluster refuses an aws config
    s_create ("az", "azure");
    reply = s_call (DX_INVALID, s_config_req ("az", s_aws_config ()));
    s_assert_fault (reply, "region", "is an aws parameter, not azure");
    s_assert_fault (reply, "sshkeydata", "is an aws parameter, not azure");
    s_assert_fault (reply, "location", "missing required field");
    json_decref (reply);

    //  Valid form values are stored as dx_spec normalizes them: numbers,
    //  defaults, the secret sealed and only fingerprinted in the config
    reply = s_call (DX_OK, s_config_req ("c1", json_pack ("{s:s, s:s, s:s, s:s}",
                                         "masters", "3", "region", "us-west-2",
                                         "sshkey", "reference", "sshkeydata", TH_SSH_KEY_B64)));
    const json_t *body = s_body (reply);
    assert_int_equal (json_integer_value (json_object_get (body, "masters")), 3);
    assert_string_equal (json_string_value (json_object_get (body, "master_type")), "m3.large");
    assert_true (json_is_true (json_object_get (json_object_get (body, "sshkeydata"), "set")));
    json_decref (reply);
    assert_int_equal (ths_raw_int (&T.sch, "HEXISTS dexter:{c1}:config sshkeydata"), 0);
    redisReply *r = ths_raw (&T.sch, "HGET dexter:{c1}:secrets sshkeydata");
    size_t len;
    char *plain = dx_seal_open (T.sch.seal, r->str, &len);
    assert_string_equal (plain, TH_SSH_KEY_PEM);
    dx_seal_free (plain, len);
    freeReplyObject (r);

    //  400 before 409: a running deployment, a missing group, a move of
    //  region hide no fault of the fields
    s_check (DX_CREATED, s_group_req ("c1", "g1", 1));
    s_set_state ("c1", "deploying");
    json_t *moved = json_pack ("{s:s, s:s}", "masters", "3", "region", "eu-west-1");
    s_check (DX_INVALID, s_config_req ("c1", moved));
    s_check (DX_INVALID, ths_req ("deployment.put", "{s:s, s:{s:s}}", "name", "c1",
                                  "fields", "command", "explode"));
    s_check (DX_CONFLICT, s_deploy_req ("c1", "deploy"));
    s_check (DX_INVALID, s_update_req ("c1", "nope", json_incref (bad)));
    s_check (DX_NOT_FOUND, s_update_req ("c1", "nope", s_group_spec ("nope", 1)));
    json_decref (bad);
}


//  ---------------------------------------------------------------------
//  Deployment


static void
test_deployment (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    json_t *reply = s_call (DX_OK, ths_req ("deployment.get", "{s:s}", "name", "c1"));
    const json_t *body = s_body (reply);
    const char *members [] = { "cluster", "state", "command", "generation",
                               "observed_generation", "parallelism", "progress", "waiting",
                               "last_error", "created_at", "updated_at", "started_at",
                               "finished_at", "_accessip", "vpn_crl", NULL };
    for (int i = 0; members [i]; i++)
        if (!json_object_get (body, members [i]))
            fail_msg ("deployment object lacks %s", members [i]);
    assert_int_equal (json_object_size (body), 15);
    assert_true (json_is_null (json_object_get (body, "vpn_crl")));
    assert_true (json_is_null (json_object_get (body, "started_at")));
    assert_true (json_is_null (json_object_get (body, "finished_at")));
    assert_string_equal (json_string_value (json_object_get (body, "cluster")), "c1");
    assert_string_equal (json_string_value (json_object_get (body, "state")), "init");
    assert_int_equal (json_integer_value (json_object_get (body, "generation")), 0);
    assert_true (json_is_null (json_object_get (body, "waiting")));
    assert_true (json_is_null (json_object_get (body, "_accessip")));
    const json_t *progress = json_object_get (body, "progress");
    assert_int_equal (json_integer_value (json_object_get (progress, "steps_done")), 0);
    assert_int_equal (json_integer_value (json_object_get (progress, "steps_total")), 0);
    assert_true (json_is_null (json_object_get (progress, "current")));
    json_decref (reply);

    //  Deploy without config, destroy of nothing, the other provider's fields
    reply = s_call (DX_CONFLICT, s_deploy_req ("c1", "deploy"));
    s_assert_message (reply, "no config");
    json_decref (reply);
    reply = s_call (DX_CONFLICT, s_deploy_req ("c1", "destroy"));
    s_assert_message (reply, "nothing");
    json_decref (reply);
    s_configure ("c1");
    s_check (DX_CREATED, s_group_req ("c1", "g1", 3));
    reply = s_call (DX_INVALID, ths_req ("deployment.put", "{s:s, s:{s:s, s:s}}", "name", "c1",
                                         "fields", "command", "deploy",
                                         "credentials", T.azure_b64));
    s_assert_fault (reply, "credentials", "is an azure parameter, not aws");
    json_decref (reply);

    reply = s_call (DX_ACCEPTED, s_deploy_req ("c1", "deploy"));
    body = s_body (reply);
    assert_string_equal (json_string_value (json_object_get (body, "state")), "deploying");
    assert_string_equal (json_string_value (json_object_get (body, "command")), "deploy");
    assert_int_equal (json_integer_value (json_object_get (body, "generation")), 1);
    assert_int_equal (json_integer_value (json_object_get (body, "observed_generation")), 0);
    assert_int_equal (json_integer_value (json_object_get (body, "parallelism")), 7);
    assert_string_equal (json_string_value (json_object_get (body, "waiting")),
                         "no aws worker is connected; the deployment goes on when one registers");
    assert_int_equal (json_object_size (body), 15);
    assert_non_null (json_string_value (json_object_get (body, "started_at")));
    assert_true (json_is_null (json_object_get (body, "finished_at")));
    json_t *accepted = json_deep_copy (body);
    json_decref (reply);
    reply = s_call (DX_OK, ths_req ("deployment.get", "{s:s}", "name", "c1"));
    assert_true (json_equal ((json_t *) s_body (reply), accepted));
    json_decref (reply);
    json_decref (accepted);

    //  The snapshot: generation 1 = cluster, config, groups; secrets sealed
    json_t *snapshot;
    assert_int_equal (sch_read_snapshot (T.read, "c1", 1, &snapshot), 0);
    assert_non_null (snapshot);
    assert_string_equal (json_string_value (json_object_get (json_object_get (snapshot,
                         "cluster"), "provider")), "aws");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (snapshot, "config"),
                                                           "masters")), 3);
    assert_string_equal (json_string_value (json_object_get (json_array_get (
                         json_object_get (snapshot, "groups"), 0), "name")), "g1");
    const char *sealed_pem = json_string_value (json_object_get (json_object_get (snapshot,
                                                "secrets"), "sshkeydata"));
    assert_non_null (sealed_pem);
    size_t len;
    char *plain = dx_seal_open (T.sch.seal, sealed_pem, &len);
    assert_string_equal (plain, TH_SSH_KEY_PEM);
    dx_seal_free (plain, len);
    json_decref (snapshot);
    assert_int_equal (sch_read_snapshot (T.read, "c1", 2, &snapshot), 0);
    assert_null (snapshot);
    //  The credentials: one sealed JSON document
    char *sealed;
    assert_int_equal (sch_read_credentials (T.read, "c1", &sealed), 0);
    assert_non_null (sealed);
    plain = dx_seal_open (T.sch.seal, sealed, &len);
    assert_non_null (plain);
    json_t *creds = json_loads (plain, 0, NULL);
    assert_string_equal (json_string_value (json_object_get (creds, "aws_secret_access_key")),
                         SECRET_KEY);
    json_decref (creds);
    dx_seal_free (plain, len);
    free (sealed);

    //  In progress: no second deploy, no destroy, no forgetting (even forced)
    reply = s_call (DX_CONFLICT, s_deploy_req ("c1", "deploy"));
    s_assert_message (reply, "in progress");
    json_decref (reply);
    s_check (DX_CONFLICT, s_deploy_req ("c1", "destroy"));
    s_check (DX_CONFLICT, ths_req ("deployment.delete", "{s:s, s:b}", "name", "c1", "force", 1));
    s_set_state ("c1", "destroying");
    s_check (DX_CONFLICT, s_deploy_req ("c1", "deploy"));

    //  Deployed (as a worker would record it): redeploy is generation 2
    s_set_state ("c1", "deployed");
    reply = s_call (DX_CONFLICT, ths_req ("deployment.delete", "{s:s, s:b}", "name", "c1",
                                          "force", 0));
    s_assert_message (reply, "force");
    json_decref (reply);
    reply = s_call (DX_ACCEPTED, s_deploy_req ("c1", "deploy"));
    assert_int_equal (json_integer_value (json_object_get (s_body (reply), "generation")), 2);
    json_decref (reply);
    s_set_state ("c1", "deploy_failed");
    reply = s_call (DX_ACCEPTED, s_deploy_req ("c1", "destroy"));
    body = s_body (reply);
    assert_string_equal (json_string_value (json_object_get (body, "state")), "destroying");
    assert_string_equal (json_string_value (json_object_get (body, "command")), "destroy");
    assert_int_equal (json_integer_value (json_object_get (body, "generation")), 3);
    json_decref (reply);
    assert_int_equal (ths_raw_int (&T.sch, "HLEN dexter:{c1}:specs"), 3);

    //  Destroyed: nothing to destroy; forgetting needs no force
    s_set_state ("c1", "destroyed");
    s_check (DX_CONFLICT, s_deploy_req ("c1", "destroy"));
    reply = s_call (DX_OK, ths_req ("deployment.delete", "{s:s, s:b}", "name", "c1", "force", 0));
    assert_string_equal (json_string_value (json_object_get (s_body (reply), "deleted")),
                         "deployment");
    json_decref (reply);
    assert_int_equal (ths_raw_int (&T.sch, "EXISTS dexter:{c1}:specs dexter:{c1}:credentials"), 0);
    //  The number is kept: a generation is never used twice (EC2 remembers
    //  the client tokens made from it)
    reply = s_call (DX_OK, ths_req ("deployment.get", "{s:s}", "name", "c1"));
    assert_string_equal (json_string_value (json_object_get (s_body (reply), "state")), "init");
    assert_int_equal (json_integer_value (json_object_get (s_body (reply), "generation")), 3);
    json_decref (reply);

    //  Forced forget of a deployed cluster
    reply = s_call (DX_ACCEPTED, s_deploy_req ("c1", "deploy"));
    assert_int_equal (json_integer_value (json_object_get (s_body (reply), "generation")), 4);
    json_decref (reply);
    s_set_state ("c1", "destroy_failed");
    s_check (DX_CONFLICT, ths_req ("deployment.delete", "{s:s, s:b}", "name", "c1", "force", 0));
    s_check (DX_OK, ths_req ("deployment.delete", "{s:s, s:b}", "name", "c1", "force", 1));
    reply = s_call (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    assert_string_equal (json_string_value (json_object_get (json_object_get (s_body (reply),
                         "deployment"), "state")), "init");
    json_decref (reply);

    //  Destroy works without a config (it may have been deleted since)
    s_check (DX_ACCEPTED, s_deploy_req ("c1", "deploy"));
    s_set_state ("c1", "deployed");
    s_check (DX_OK, ths_req ("config.delete", "{s:s}", "name", "c1"));
    s_check (DX_ACCEPTED, s_deploy_req ("c1", "destroy"));
}

static void
test_vpn_and_events (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    json_t *reply = s_call (DX_NOT_FOUND, ths_req ("deployment.vpn", "{s:s}", "name", "c1"));
    s_assert_message (reply, "no access node has been deployed for cluster c1 yet; deploy first");
    json_decref (reply);
    redisReply *r = ths_raw (&T.sch, "HSET dexter:{c1}:deployment accessip 203.0.113.7");
    freeReplyObject (r);
    reply = s_call (DX_OK, ths_req ("deployment.get", "{s:s}", "name", "c1"));
    assert_string_equal (json_string_value (json_object_get (s_body (reply), "_accessip")),
                         "203.0.113.7");
    json_decref (reply);
    reply = s_call (DX_NOT_FOUND, ths_req ("deployment.vpn", "{s:s}", "name", "c1"));
    s_assert_message (reply, "the VPN profile of cluster c1 is not made yet: the "
                      "deployment's vpn.profile step has not run");
    json_decref (reply);

    //  The vpn.profile step's resource: its profile, sealed, is the answer,
    //  a JSON string
    const char *profile = "client\nremote 203.0.113.7 1194\n<ca>\nCA\n</ca>\n";
    char *sealed = dx_seal_seal (T.sch.seal, profile, strlen (profile));
    char *resource = NULL;
    assert_true (asprintf (&resource, "{\"key\":\"vpn.profile\",\"kind\":\"vpn.profile\","
                           "\"provider_id\":\"ab\",\"remote\":\"203.0.113.7\","
                           "\"profile\":\"%s\"}", sealed) > 0);
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{c1}:resources vpn.profile %s", resource));
    reply = s_call (DX_OK, ths_req ("deployment.vpn", "{s:s}", "name", "c1"));
    assert_string_equal (json_string_value (s_body (reply)), profile);
    json_decref (reply);
    free (resource);
    free (sealed);
    //  Sealed with another master key: said so, nothing else
    static const unsigned char other_key [32] = { 0x07 };
    dx_seal_t *other = dx_seal_new_key (other_key);
    sealed = dx_seal_seal (other, profile, strlen (profile));
    assert_true (asprintf (&resource, "{\"key\":\"vpn.profile\",\"profile\":\"%s\"}",
                           sealed) > 0);
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{c1}:resources vpn.profile %s", resource));
    reply = s_call (DX_INTERNAL, ths_req ("deployment.vpn", "{s:s}", "name", "c1"));
    s_assert_message (reply, "sealed with another master key");
    char *text = json_dumps (reply, 0);
    assert_null (strstr (text, "remote 203"));
    free (text);
    json_decref (reply);
    free (resource);
    free (sealed);
    dx_seal_destroy (&other);
    freeReplyObject (ths_raw (&T.sch, "DEL dexter:{c1}:resources"));

    s_configure ("c1");
    s_check (DX_CREATED, s_group_req ("c1", "g1", 1));
    s_check (DX_OK, s_update_req ("c1", "g1", s_group_spec ("g2", 1)));
    s_check (DX_OK, ths_req ("group.delete", "{s:s, s:s}", "name", "c1", "group", "g2"));
    s_check (DX_ACCEPTED, s_deploy_req ("c1", "deploy"));

    reply = s_call (DX_OK, ths_req ("deployment.events", "{s:s}", "name", "c1"));
    const json_t *events = json_object_get (s_body (reply), "events");
    const char *types [] = { "cluster.created", "config.updated", "group.created",
                             "group.renamed", "group.deleted", "deployment.requested" };
    assert_int_equal (json_array_size (events), 6);
    for (size_t i = 0; i < 6; i++) {
        const json_t *event = json_array_get (events, i);
        assert_string_equal (json_string_value (json_object_get (event, "type")), types [i]);
        assert_non_null (json_string_value (json_object_get (event, "id")));
        assert_non_null (json_string_value (json_object_get (event, "time")));
    }
    const json_t *renamed = json_array_get (events, 3);
    assert_string_equal (json_string_value (json_object_get (renamed, "from")), "g1");
    assert_string_equal (json_string_value (json_object_get (renamed, "group")), "g2");
    const json_t *requested = json_array_get (events, 5);
    //  numbers come back as numbers, though the stream keeps text
    assert_true (json_is_integer (json_object_get (requested, "generation")));
    assert_int_equal (json_integer_value (json_object_get (requested, "generation")), 1);
    assert_true (json_is_integer (json_object_get (requested, "parallelism")));
    assert_string_equal (json_string_value (json_object_get (requested, "command")), "deploy");
    char first [64], third [64];
    snprintf (first, sizeof first, "%s", json_string_value (json_object_get (
              json_array_get (events, 0), "id")));
    snprintf (third, sizeof third, "%s", json_string_value (json_object_get (
              json_array_get (events, 2), "id")));
    json_decref (reply);

    //  after is exclusive; count limits
    reply = s_call (DX_OK, ths_req ("deployment.events", "{s:s, s:s, s:i}", "name", "c1",
                                    "after", first, "count", 2));
    events = json_object_get (s_body (reply), "events");
    assert_int_equal (json_array_size (events), 2);
    assert_string_equal (json_string_value (json_object_get (json_array_get (events, 0), "type")),
                         "config.updated");
    assert_string_equal (json_string_value (json_object_get (json_array_get (events, 1), "id")),
                         third);
    json_decref (reply);
    reply = s_call (DX_OK, ths_req ("deployment.events", "{s:s, s:s}", "name", "c1",
                                    "after", "99999999999999-0"));
    assert_int_equal (json_array_size (json_object_get (s_body (reply), "events")), 0);
    json_decref (reply);
    const char *bad [] = { "abc", "1-", "-1", "1-2-3", "1 2", "123456789012345678901", NULL };
    for (int i = 0; bad [i]; i++) {
        reply = s_call (DX_INVALID, ths_req ("deployment.events", "{s:s, s:s}", "name", "c1",
                                             "after", bad [i]));
        assert_string_equal (dx_msg_str (reply, "field"), "after");
        json_decref (reply);
    }
}


//  ---------------------------------------------------------------------
//  Secrets never in plain text

/*  1 if the len bytes at data hold a secret: a plaintext marker, or a
    piece of the base64 the requests carry secrets in. */
static int
s_has_plaintext (const char *data, size_t len)
{
    const char *markers [] = { "PLAINPEMMARKER", SECRET_KEYID, SECRET_KEY, SECRET_PASS,
                               "MarkerCred", NULL };
    const char *encoded [] = { TH_SSH_KEY_B64, T.azure_b64 };
    for (int i = 0; markers [i]; i++)
        if (data && memmem (data, len, markers [i], strlen (markers [i])))
            return 1;
    for (size_t i = 0; i < 2; i++)
        if (data && memmem (data, len, encoded [i] + 40, 24))
            return 1;
    return 0;
}

/*  Walks a reply tree looking for plaintext. */
static int
s_reply_has_plaintext (const redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        return s_has_plaintext (r->str, r->len);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (s_reply_has_plaintext (r->element [i]))
            return 1;
    return 0;
}

static void
test_no_plaintext_anywhere (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    s_configure ("c1");
    s_check (DX_CREATED, s_group_req ("c1", "g1", 2));
    s_check (DX_ACCEPTED, s_deploy_req ("c1", "deploy"));
    s_create ("az", "azure");
    s_check (DX_OK, s_config_req ("az", s_azure_config ("centralus")));
    s_check (DX_ACCEPTED, ths_req ("deployment.put", "{s:s, s:{s:s, s:s}}", "name", "az",
                                   "fields", "command", "deploy", "credentials", T.azure_b64));

    //  Every key, read as an operator would and as DUMP sees it
    size_t keys = 0;
    char cursor [32] = "0";
    do {
        redisReply *scan = ths_raw (&T.sch, "SCAN %s COUNT 1000", cursor);
        snprintf (cursor, sizeof cursor, "%s", scan->element [0]->str);
        for (size_t i = 0; i < scan->element [1]->elements; i++) {
            const char *key = scan->element [1]->element [i]->str;
            keys++;
            redisReply *type = ths_raw (&T.sch, "TYPE %s", key);
            redisReply *content;
            if (strcmp (type->str, "hash") == 0)
                content = ths_raw (&T.sch, "HGETALL %s", key);
            else
            if (strcmp (type->str, "string") == 0)
                content = ths_raw (&T.sch, "GET %s", key);
            else
            if (strcmp (type->str, "stream") == 0)
                content = ths_raw (&T.sch, "XRANGE %s - +", key);
            else
                content = ths_raw (&T.sch, "ZRANGE %s 0 -1", key);
            if (s_reply_has_plaintext (content))
                fail_msg ("key %s holds a secret in plain text", key);
            redisReply *dump = ths_raw (&T.sch, "DUMP %s", key);
            if (s_reply_has_plaintext (dump))
                fail_msg ("DUMP of key %s holds a secret in plain text", key);
            freeReplyObject (dump);
            freeReplyObject (content);
            freeReplyObject (type);
        }
        freeReplyObject (scan);
    } while (strcmp (cursor, "0"));
    assert_true (keys >= 13);

    //  Nor in any reply
    const char *names [] = { "c1", "az" };
    const char *types [] = { "cluster.get", "config.get", "deployment.get", "deployment.events",
                             "group.list" };
    for (int n = 0; n < 2; n++)
        for (size_t t = 0; t < sizeof types / sizeof types [0]; t++) {
            json_t *reply = s_call (DX_OK, ths_req (types [t], "{s:s}", "name", names [n]));
            char *text = json_dumps (reply, 0);
            if (s_has_plaintext (text, strlen (text)))
                fail_msg ("%s reply shows a secret: %s", types [t], text);
            free (text);
            json_decref (reply);
        }
}


//  ---------------------------------------------------------------------
//  Redis down, back, URLs

static void
test_redis_down_and_back (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    th_stop (&T.sch.redis.pid);
    char address [64];
    snprintf (address, sizeof address, "127.0.0.1:%d", T.sch.redis.port);
    for (int i = 0; i < 3; i++) {
        json_t *reply = s_call (DX_UNAVAILABLE, ths_req ("cluster.get", "{s:s}", "name", "c1"));
        //  Redis's address and words stay in the log
        s_assert_message (reply, "the store is unavailable; try again shortly");
        assert_null (strstr (json_string_value (json_object_get (reply, "message")), address));
        json_decref (reply);
        json_decref (s_call (DX_UNAVAILABLE, ths_req ("cluster.list", NULL)));
        usleep (120000);            /* past the reconnect spacing */
    }
    assert_false (sch_redis_connected (sch_store_redis (T.sch.store)));
    sch_redis_tick (sch_store_redis (T.sch.store));     /* cron while down: no crash */
    assert_false (sch_redis_connected (sch_store_redis (T.sch.store)));

    assert_int_equal (s_redis_start (), 0);
    s_raw_connect ();
    usleep (120000);
    //  The very next request reconnects (the data went with that redis)
    s_check (DX_NOT_FOUND, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    assert_true (sch_redis_connected (sch_store_redis (T.sch.store)));
    s_create ("c1", "aws");

    //  Killed under an open connection: the first command notices, then back
    th_stop (&T.sch.redis.pid);
    s_check (DX_UNAVAILABLE, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    assert_int_equal (s_redis_start (), 0);
    s_raw_connect ();
    usleep (120000);
    sch_redis_tick (sch_store_redis (T.sch.store));
    assert_true (sch_redis_connected (sch_store_redis (T.sch.store)));
    s_check (DX_CREATED, ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster",
                                  "name", "c2", "provider", "aws", "type", "mesos"));
}

//  ---------------------------------------------------------------------
//  The ROUTER loop through a real DEALER

typedef struct {
    zactor_t *actor;
    sch_store_t *store;
    char endpoint [64];
} s_live_t;

static void
s_live_start (s_live_t *live)
{
    live->store = sch_store_new (T.sch.redis.url);
    assert_non_null (live->store);
    snprintf (live->endpoint, sizeof live->endpoint, "tcp://127.0.0.1:%d", th_free_port ());
    sch_server_args_t args = { live->endpoint, live->store, T.sch.seal };
    live->actor = zactor_new (sch_server_actor, &args);
    assert_non_null (live->actor);
}

static void
s_live_stop (s_live_t *live)
{
    zactor_destroy (&live->actor);
    sch_store_destroy (&live->store);
}

static zsock_t *
s_dealer (const char *endpoint, int timeout_ms)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, timeout_ms);
    assert_int_equal (zsock_connect (dealer, "%s", endpoint), 0);
    return dealer;
}

/*  Sends raw bytes as one frame. */
static void
s_send_raw (zsock_t *dealer, const void *data, size_t len)
{
    zframe_t *frame = zframe_new (data, len);
    assert_int_equal (zframe_send (&frame, dealer, 0), 0);
}

/*  Sends a JSON object as msgpack without the schema check (to send
    requests the decoder must refuse). */
static void
s_send_json (zsock_t *dealer, json_t *msg)
{
    char *buf;
    size_t len;
    assert_int_equal (dx_msg_encode (msg, &buf, &len), 0);
    s_send_raw (dealer, buf, len);
    free (buf);
    json_decref (msg);
}

static void
test_router_loop (void **state)
{
    (void) state;
    s_live_t live;
    s_live_start (&live);
    zsock_t *dealer = s_dealer (live.endpoint, 5000);
    char err [DX_ERR_LEN];

    //  A request and its reply
    json_t *req = ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster",
                           "name", "live", "provider", "aws", "type", "mesos");
    assert_int_equal (dx_msg_send (dealer, NULL, req), 0);
    json_t *reply = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
    if (!reply)
        fail_msg ("no reply: %s", err);
    assert_string_equal (dx_msg_type (reply), "reply");
    assert_string_equal (dx_msg_id (reply), dx_msg_id (req));
    assert_string_equal (dx_msg_str (reply, "status"), DX_CREATED);
    json_decref (reply);
    json_decref (req);

    //  Garbage, an extra frame: dropped; the loop goes on
    zsock_set_rcvtimeo (dealer, 300);
    s_send_raw (dealer, "garbage", 7);
    assert_null (dx_msg_recv (dealer, NULL, NULL, err, sizeof err));
    zstr_sendm (dealer, "two");
    zstr_send (dealer, "frames");
    assert_null (dx_msg_recv (dealer, NULL, NULL, err, sizeof err));

    //  A readable envelope with a missing field: INVALID with the decoder's words
    zsock_set_rcvtimeo (dealer, 5000);
    s_send_json (dealer, json_pack ("{s:i, s:s, s:s, s:I}", "v", 1, "type", "cluster.get",
                                    "id", "bad-1", "deadline", (json_int_t) dx_now_ms () + 60000));
    reply = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
    assert_non_null (reply);
    assert_string_equal (dx_msg_id (reply), "bad-1");
    assert_string_equal (dx_msg_str (reply, "status"), DX_INVALID);
    s_assert_message (reply, "field 'name' of cluster.get is missing");
    json_decref (reply);
    s_send_json (dealer, json_pack ("{s:i, s:s, s:s, s:I}", "v", 1, "type", "cluster.nope",
                                    "id", "bad-2", "deadline", (json_int_t) dx_now_ms () + 60000));
    reply = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
    assert_non_null (reply);
    assert_string_equal (dx_msg_id (reply), "bad-2");
    assert_string_equal (dx_msg_str (reply, "status"), DX_INVALID);
    s_assert_message (reply, "unknown message type");
    json_decref (reply);

    //  Another protocol version: INVALID if the codec yields the id, else dropped
    zsock_set_rcvtimeo (dealer, 300);
    s_send_json (dealer, json_pack ("{s:i, s:s, s:s, s:I, s:s}", "v", 2, "type", "cluster.get",
                                    "id", "v2", "deadline", (json_int_t) dx_now_ms () + 60000,
                                    "name", "live"));
    reply = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
    if (reply) {
        assert_string_equal (dx_msg_str (reply, "status"), DX_INVALID);
        s_assert_message (reply, "unsupported protocol version 2");
    }
    json_decref (reply);

    //  Past its deadline: not answered and not carried out
    req = ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster",
                   "name", "late", "provider", "aws", "type", "mesos");
    json_object_set_new (req, "deadline", json_integer (dx_now_ms () - 1));
    assert_int_equal (dx_msg_send (dealer, NULL, req), 0);
    json_decref (req);
    assert_null (dx_msg_recv (dealer, NULL, NULL, err, sizeof err));
    zsock_set_rcvtimeo (dealer, 5000);
    req = ths_req ("cluster.get", "{s:s}", "name", "late");
    assert_int_equal (dx_msg_send (dealer, NULL, req), 0);
    reply = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
    assert_non_null (reply);
    assert_string_equal (dx_msg_id (reply), dx_msg_id (req));
    assert_string_equal (dx_msg_str (reply, "status"), DX_NOT_FOUND);
    json_decref (reply);
    json_decref (req);
    zsock_destroy (&dealer);

    //  Concurrent writers to one cluster lose nothing: 4 DEALERs x 25
    //  group upserts, all sent before any reply is read
    enum { CLIENTS = 4, EACH = 25 };
    zsock_t *dealers [CLIENTS];
    for (int c = 0; c < CLIENTS; c++) {
        dealers [c] = s_dealer (live.endpoint, 10000);
        for (int i = 0; i < EACH; i++) {
            char group [32];
            snprintf (group, sizeof group, "g%dx%d", c, i);
            req = s_group_req ("live", group, 1);
            assert_int_equal (dx_msg_send (dealers [c], NULL, req), 0);
            json_decref (req);
        }
    }
    for (int c = 0; c < CLIENTS; c++) {
        for (int i = 0; i < EACH; i++) {
            reply = dx_msg_recv (dealers [c], NULL, NULL, err, sizeof err);
            if (!reply)
                fail_msg ("client %d reply %d: %s", c, i, err);
            assert_string_equal (dx_msg_str (reply, "status"), DX_CREATED);
            json_decref (reply);
        }
        zsock_destroy (&dealers [c]);
    }
    assert_int_equal (ths_raw_int (&T.sch, "HLEN dexter:{live}:groups"), CLIENTS * EACH);
    assert_int_equal (ths_raw_int (&T.sch, "XLEN dexter:{live}:events"), 1 + CLIENTS * EACH);
    s_live_stop (&live);
}

/*  The loop's log lines at debug, with secrets flowing through: none of
    them may hold a secret. stderr goes to a file meanwhile. */
static void
test_logs_hold_no_secret (void **state)
{
    (void) state;
    char path [128];
    snprintf (path, sizeof path, "%s/log.txt", T.sch.redis.dir);
    fflush (stderr);
    int saved = dup (2);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true (fd >= 0 && saved >= 0);
    dup2 (fd, 2);
    close (fd);

    s_live_t live;
    s_live_start (&live);
    zsock_t *dealer = s_dealer (live.endpoint, 5000);
    char err [DX_ERR_LEN];
    json_t *requests [] = {
        ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster", "name", "lg",
                 "provider", "aws", "type", "mesos"),
        s_config_req ("lg", s_aws_config ()),
        s_deploy_req ("lg", "deploy"),
        s_deploy_req ("lg", "deploy"),          /* a CONFLICT with credentials */
        s_deploy_req ("lg", "destroy"),         /* another CONFLICT */
        s_config_req ("lg", s_azure_config ("centralus")),     /* INVALID */
    };
    const char *statuses [] = { DX_CREATED, DX_OK, DX_ACCEPTED, DX_CONFLICT, DX_CONFLICT,
                                DX_INVALID };
    for (size_t i = 0; i < sizeof requests / sizeof requests [0]; i++) {
        assert_int_equal (dx_msg_send (dealer, NULL, requests [i]), 0);
        json_t *reply = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
        assert_non_null (reply);
        assert_string_equal (dx_msg_str (reply, "status"), statuses [i]);
        json_decref (reply);
        json_decref (requests [i]);
    }
    //  An undecodable request carrying a secret: its INVALID reply and log
    s_send_json (dealer, json_pack ("{s:i, s:s, s:s, s:I, s:i, s:{s:s}}", "v", 1,
                                    "type", "config.put", "id", "x", "deadline",
                                    (json_int_t) dx_now_ms () + 60000, "name", 7,
                                    "fields", "sshkeydata", TH_SSH_KEY_B64));
    json_t *reply = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
    assert_non_null (reply);
    char *text = json_dumps (reply, 0);
    assert_false (s_has_plaintext (text, strlen (text)));
    free (text);
    json_decref (reply);
    zsock_destroy (&dealer);
    s_live_stop (&live);

    dup2 (saved, 2);
    close (saved);
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    char line [4096];
    int lines = 0, debug = 0;
    while (fgets (line, sizeof line, f)) {
        lines++;
        if (strstr (line, " DEBUG request type="))
            debug++;
        if (s_has_plaintext (line, strlen (line)))
            fail_msg ("a log line holds a secret: %s", line);
    }
    fclose (f);
    assert_true (lines >= 5);
    assert_true (debug >= 5);          /* the per-request lines were written */
}


//  ---------------------------------------------------------------------
//  10,000 clusters

static void
test_list_10000 (void **state)
{
    (void) state;
    enum { N = 10000 };
    int64_t start = dx_mono_ms ();
    for (int i = 0; i < N; i++) {
        char name [16];
        snprintf (name, sizeof name, "c%05d", N - 1 - i);   /* created out of order */
        json_t *cluster = json_pack ("{s:s, s:s, s:s}", "name", name, "provider",
                                     i % 2? "aws": "azure", "type", "mesos");
        assert_int_equal (sch_store_cluster_create (T.sch.store, cluster,
                                                    "2026-01-01T00:00:00.000Z"), 0);
        json_decref (cluster);
    }
    int64_t created = dx_mono_ms ();
    json_t *reply = s_call (DX_OK, ths_req ("cluster.list", NULL));
    int64_t listed = dx_mono_ms ();
    const json_t *body = s_body (reply);
    assert_int_equal (json_integer_value (json_object_get (body, "count")), N);
    const json_t *list = json_object_get (body, "clusters");
    assert_int_equal (json_array_size (list), N);
    for (size_t i = 0; i < N; i++) {
        char name [16];
        snprintf (name, sizeof name, "c%05zu", i);
        assert_string_equal (json_string_value (json_object_get (json_array_get (list, i),
                                                                 "name")), name);
    }
    json_decref (reply);
    //  The handler alone, without the codec round trips of s_call, best of
    //  3 (wall clock, and this process's CPU time: a loaded machine inflates
    //  the first)
    double best_wall = 1e9, best_cpu = 1e9;
    for (int round = 0; round < 3; round++) {
        struct timespec w0, w1, c0, c1;
        json_t *req = ths_req ("cluster.list", NULL);
        clock_gettime (CLOCK_MONOTONIC, &w0);
        clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &c0);
        json_t *plain = sch_server_handle (T.server, req);
        clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &c1);
        clock_gettime (CLOCK_MONOTONIC, &w1);
        assert_int_equal (json_integer_value (json_object_get (s_body (plain), "count")), N);
        json_decref (plain);
        json_decref (req);
        double wall = (w1.tv_sec - w0.tv_sec) * 1e3 + (w1.tv_nsec - w0.tv_nsec) / 1e6;
        double cpu = (c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6;
        best_wall = wall < best_wall? wall: best_wall;
        best_cpu = cpu < best_cpu? cpu: best_cpu;
    }
    print_message ("10,000 clusters: created in %lld ms; cluster.list through the codec "
                   "%lld ms; handler alone best of 3: %.1f ms wall, %.1f ms CPU "
                   "(not asserted; ASan builds are several times slower)\n",
                   (long long) (created - start), (long long) (listed - created),
                   best_wall, best_cpu);
}

/*  Waits (at most 5 s) until the server's ROUTER has a message waiting,
    then a little more for the rest of a burst to arrive. */
static void
s_wait_burst (sch_server_t *server)
{
    int64_t deadline = dx_mono_ms () + 5000;
    while (!(zsock_events (sch_server_socket (server)) & ZMQ_POLLIN) && dx_mono_ms () < deadline)
        usleep (5000);
    usleep (200000);
}

/*  The next reply on dealer, serving what waits on the server's ROUTER
    while none is there: on a busy host a burst may arrive in parts, after
    s_wait_burst's first sch_server_receive. NULL (err set) after 10 s. */
static json_t *
s_reply (sch_server_t *server, zsock_t *dealer, char *err, size_t size)
{
    int64_t deadline = dx_mono_ms () + 10000;
    while (!(zsock_events (dealer) & ZMQ_POLLIN) && dx_mono_ms () < deadline) {
        sch_server_receive (server);
        usleep (2000);
    }
    return dx_msg_recv (dealer, NULL, NULL, err, size);
}

/*  One burst of mixed reads and changes from several DEALERs, served by
    sch_server_receive (in one call unless it arrives in parts): every
    reply is right, and a read that follows a change of the same client
    sees it. Then the same burst with Redis down: every request gets
    UNAVAILABLE. */
static void
test_burst (void **state)
{
    (void) state;
    enum { CLIENTS = 4, STEPS = 10 };
    s_create ("burst", "aws");
    sch_server_t *server = sch_server_new ("tcp://127.0.0.1:*", T.sch.store, T.sch.seal, NULL);
    assert_non_null (server);
    //  Per client: its step's request and the status (and hosts) expected
    zsock_t *dealers [CLIENTS];
    const char *expect [CLIENTS][STEPS];
    int hosts [CLIENTS][STEPS];
    for (int c = 0; c < CLIENTS; c++) {
        dealers [c] = s_dealer (sch_server_endpoint (server), 5000);
        char group [16];
        snprintf (group, sizeof group, "g%d", c);
        struct { const char *status; int hosts; json_t *req; } steps [STEPS] = {
            { DX_CREATED, 1, s_group_req ("burst", group, 1) },
            { DX_OK, 1, ths_req ("group.get", "{s:s, s:s}", "name", "burst", "group", group) },
            { DX_OK, 0, ths_req ("cluster.get", "{s:s}", "name", "burst") },
            { DX_OK, 2, s_group_req ("burst", group, 2) },
            { DX_OK, 2, ths_req ("group.get", "{s:s, s:s}", "name", "burst", "group", group) },
            { DX_OK, 0, ths_req ("deployment.events", "{s:s}", "name", "burst") },
            { DX_OK, 0, ths_req ("cluster.list", NULL) },
            { DX_OK, 0, ths_req ("group.delete", "{s:s, s:s}", "name", "burst",
                                 "group", group) },
            { DX_NOT_FOUND, 0, ths_req ("group.get", "{s:s, s:s}", "name", "burst",
                                        "group", group) },
            { DX_NOT_FOUND, 0, ths_req ("config.get", "{s:s}", "name", "burst") },
        };
        for (int i = 0; i < STEPS; i++) {
            expect [c][i] = steps [i].status;
            hosts [c][i] = steps [i].hosts;
            char id [32];
            snprintf (id, sizeof id, "b%d-%d", c, i);
            json_object_set_new (steps [i].req, "id", json_string (id));
            assert_int_equal (dx_msg_send (dealers [c], NULL, steps [i].req), 0);
            json_decref (steps [i].req);
        }
    }
    s_wait_burst (server);
    sch_server_receive (server);
    char err [DX_ERR_LEN];
    for (int c = 0; c < CLIENTS; c++)
        for (int i = 0; i < STEPS; i++) {
            json_t *reply = s_reply (server, dealers [c], err, sizeof err);
            if (!reply)
                fail_msg ("client %d: reply %d missing: %s", c, i, err);
            int rc, step;
            assert_int_equal (sscanf (dx_msg_id (reply), "b%d-%d", &rc, &step), 2);
            assert_int_equal (rc, c);
            const char *status = dx_msg_str (reply, "status");
            if (strcmp (status, expect [c][step]))
                fail_msg ("client %d step %d: expected %s, got %s (%s)", c, step,
                          expect [c][step], status, dx_msg_str (reply, "message"));
            const json_t *body = json_object_get (reply, "body");
            if (hosts [c][step])
                assert_int_equal (json_integer_value (json_object_get (body, "hosts")),
                                  hosts [c][step]);
            if (step == 6)
                assert_int_equal (json_integer_value (json_object_get (body, "count")), 1);
            json_decref (reply);
        }
    //  Effects in request order: every change and its event happened once
    assert_int_equal (ths_raw_int (&T.sch, "HLEN dexter:{burst}:groups"), 0);
    assert_int_equal (ths_raw_int (&T.sch, "XLEN dexter:{burst}:events"), 1 + 3 * CLIENTS);
    sch_server_destroy (&server);

    //  Redis down: every request of the burst, read or change, UNAVAILABLE
    char url [64];
    snprintf (url, sizeof url, "redis://127.0.0.1:%d", th_free_port ());
    sch_store_t *down = sch_store_new (url);
    assert_non_null (down);
    server = sch_server_new ("tcp://127.0.0.1:*", down, T.sch.seal, NULL);
    assert_non_null (server);
    zsock_t *dealer = s_dealer (sch_server_endpoint (server), 5000);
    json_t *reqs [] = {
        ths_req ("cluster.get", "{s:s}", "name", "burst"),
        ths_req ("cluster.list", NULL),
        ths_req ("deployment.events", "{s:s}", "name", "burst"),
        s_group_req ("burst", "gx", 1),
        ths_req ("group.list", "{s:s}", "name", "burst"),
    };
    const size_t nreqs = sizeof reqs / sizeof reqs [0];
    for (size_t i = 0; i < nreqs; i++) {
        assert_int_equal (dx_msg_send (dealer, NULL, reqs [i]), 0);
        json_decref (reqs [i]);
    }
    s_wait_burst (server);
    sch_server_receive (server);
    for (size_t i = 0; i < nreqs; i++) {
        json_t *reply = s_reply (server, dealer, err, sizeof err);
        if (!reply)
            fail_msg ("reply %zu missing with redis down: %s", i, err);
        assert_string_equal (dx_msg_str (reply, "status"), DX_UNAVAILABLE);
        json_decref (reply);
    }
    zsock_destroy (&dealer);
    sch_server_destroy (&server);
    sch_store_destroy (&down);
    for (int c = 0; c < CLIENTS; c++)
        zsock_destroy (&dealers [c]);
}

/*  The list reads the state mirrored in the cluster hash, and still reads
    the deployment record of a cluster written before the mirror. */
static void
test_list_state_mirror (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    s_create ("c2", "azure");
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{c1}:deployment state deployed"));
    freeReplyObject (ths_raw (&T.sch, "HSET dexter:{c2}:deployment state destroyed"));
    freeReplyObject (ths_raw (&T.sch, "HDEL dexter:{c2}:cluster state"));
    json_t *reply = s_call (DX_OK, ths_req ("cluster.list", NULL));
    const json_t *list = json_object_get (s_body (reply), "clusters");
    assert_int_equal (json_array_size (list), 2);
    //  c1 is listed from its mirror (init; the record was edited behind the
    //  store's back), c2 has none: its record says destroyed
    assert_string_equal (json_string_value (json_object_get (json_array_get (list, 0), "state")),
                         "init");
    assert_string_equal (json_string_value (json_object_get (json_array_get (list, 1), "state")),
                         "destroyed");
    json_decref (reply);
    //  The mirror is not part of the cluster as loaded
    json_t *loaded = sch_read_load (T.read, "c1", SCH_LOAD_CLUSTER);
    assert_null (json_object_get (json_object_get (loaded, "cluster"), "state"));
    json_decref (loaded);
}

/*  How many HGETALLs Redis has run (INFO commandstats). */
static long long
s_hgetalls (void)
{
    redisReply *r = redisCommand (T.sch.redis.raw, "INFO commandstats");
    assert_non_null (r);
    assert_int_equal (r->type, REDIS_REPLY_STRING);
    const char *at = strstr (r->str, "cmdstat_hgetall:calls=");
    long long calls = at? atoll (at + strlen ("cmdstat_hgetall:calls=")): 0;
    freeReplyObject (r);
    return calls;
}

/*  The deployment state a cluster.get answers. */
static char *
s_get_state (const char *name)
{
    json_t *reply = s_call (DX_OK, ths_req ("cluster.get", "{s:s}", "name", name));
    const json_t *deployment = json_object_get (s_body (reply), "deployment");
    char *state = strdup (json_string_value (json_object_get (deployment, "state")));
    json_decref (reply);
    return state;
}

/*  GETs are served from the read cache until a change names the cluster;
    a write behind the scheduler's back shows within SCH_CACHE_TTL_MS; a
    read that a change may have overtaken is not kept; a lost connection
    forgets everything; secrets are never kept. */
static void
test_read_cache (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    s_create ("c2", "aws");
    s_check (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    long long before = s_hgetalls ();
    json_t *reply = s_call (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    assert_true (json_is_false (json_object_get (s_body (reply), "configured")));
    json_decref (reply);
    assert_int_equal (s_hgetalls (), before);           /* Redis was not asked */

    //  A change of c1 is seen by the next read, which asks Redis
    s_configure ("c1");
    before = s_hgetalls ();
    reply = s_call (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    assert_true (json_is_true (json_object_get (s_body (reply), "configured")));
    json_decref (reply);
    assert_true (s_hgetalls () > before);

    //  A change of c2 leaves what is kept of c1
    s_configure ("c2");
    before = s_hgetalls ();
    s_check (DX_OK, ths_req ("config.get", "{s:s}", "name", "c1"));
    assert_int_equal (s_hgetalls (), before);

    //  A hand edit (not supported) shows once the kept read expires
    freeReplyObject (redisCommand (T.sch.redis.raw, "HSET dexter:{c1}:deployment state deployed"));
    char *got = s_get_state ("c1");
    assert_string_equal (got, "init");
    free (got);
    usleep ((SCH_CACHE_TTL_MS + 100) * 1000);
    got = s_get_state ("c1");
    assert_string_equal (got, "deployed");
    free (got);

    //  Secrets (and jobs, resources) are never kept: a load with them
    //  asks Redis every time
    sch_cache_t *cache = sch_store_cache (T.sch.store);
    before = s_hgetalls ();
    for (int i = 0; i < 2; i++) {
        int ticket = sch_read_queue_load (T.read, "c1", SCH_LOAD_CLUSTER | SCH_LOAD_SECRETS);
        assert_int_equal (sch_read_flush (T.read), 0);
        json_t *loaded = sch_read_load_result (T.read, ticket);
        assert_non_null (json_object_get (loaded, "secrets"));
        json_decref (loaded);
        sch_read_reset (T.read);
    }
    assert_int_equal (s_hgetalls (), before + 4);

    //  A read sent before a change (of any cluster) is not kept
    uint64_t serial;
    sch_cache_purge (cache);
    int ticket = sch_read_queue_load (T.read, "c2", SCH_LOAD_CLUSTER);
    assert_int_equal (sch_read_flush (T.read), 0);
    assert_int_equal (sch_store_cluster_delete (T.sch.store, "c3"), 0);
    json_t *loaded = sch_read_load_result (T.read, ticket);
    assert_non_null (json_object_get (loaded, "cluster"));
    json_decref (loaded);
    sch_read_reset (T.read);
    assert_null (sch_cache_get (cache, "c2", SCH_LOAD_CLUSTER, &serial));

    //  Losing Redis forgets everything; reads ask Redis again after
    s_check (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c2"));
    json_t *kept = sch_cache_get (cache, "c2", SCH_LOAD_CLUSTER, &serial);
    assert_non_null (kept);
    json_decref (kept);
    freeReplyObject (ths_raw (&T.sch, "CLIENT KILL TYPE normal SKIPME yes"));
    s_check (DX_UNAVAILABLE, ths_req ("cluster.list", NULL));    /* the loss is seen */
    usleep (120000);                                            /* past the reconnect gap */
    before = s_hgetalls ();
    s_check (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c2"));
    assert_true (s_hgetalls () > before);
}

/*  Sends each request of reqs (taken) on dealer, has server serve them as
    a burst, and gives their replies in order. */
static void
s_burst (sch_server_t *server, zsock_t *dealer, json_t **reqs, json_t **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal (dx_msg_send (dealer, NULL, reqs [i]), 0);
        json_decref (reqs [i]);
    }
    s_wait_burst (server);
    sch_server_receive (server);
    char err [DX_ERR_LEN];
    for (size_t i = 0; i < n; i++)
        if (!(replies [i] = s_reply (server, dealer, err, sizeof err)))
            fail_msg ("reply %zu missing: %s", i, err);
}

/*  A reply's text, checked to be the compact dump of expected. */
static void
s_check_text (const json_t *reply, const json_t *expected)
{
    assert_string_equal (dx_msg_str (reply, "status"), DX_OK);
    assert_null (json_object_get (reply, "body"));
    const char *text = dx_msg_str (reply, "text");
    assert_non_null (text);
    char *want = json_dumps (expected, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal (text, want);
    free (want);
}

/*  A memo, checked to be the compact dump of expected. */
static void
s_check_memo (const json_t *memo, const json_t *expected)
{
    assert_non_null (memo);
    char *want = json_dumps (expected, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal (json_string_value (memo), want);
    free (want);
}

/*  A request with text true is answered with the body's compact JSON text;
    the text of a pure load is kept beside the kept read (a memo), served
    again while it lasts, and forgotten with it when a change names the
    cluster. Memos of a read that is not kept are not kept. */
static void
test_text_memo (void **state)
{
    (void) state;
    s_create ("c1", "aws");
    s_check (DX_CREATED, s_group_req ("c1", "g1", 1));
    s_check (DX_CREATED, s_group_req ("c1", "g2", 2));
    json_t *plain = s_call (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    json_t *g1 = s_call (DX_OK, ths_req ("group.get", "{s:s, s:s}", "name", "c1", "group", "g1"));
    json_t *g2 = s_call (DX_OK, ths_req ("group.get", "{s:s, s:s}", "name", "c1", "group", "g2"));

    sch_server_t *server = sch_server_new ("tcp://127.0.0.1:*", T.sch.store, T.sch.seal, NULL);
    assert_non_null (server);
    zsock_t *dealer = s_dealer (sch_server_endpoint (server), 5000);
    json_t *reqs [4], *replies [4];
    for (size_t i = 0; i < 4; i++) {
        reqs [i] = i < 2? ths_req ("cluster.get", "{s:s, s:b}", "name", "c1", "text", 1)
                        : ths_req ("group.get", "{s:s, s:s, s:b}", "name", "c1",
                                   "group", i == 2? "g1": "g2", "text", 1);
    }
    s_burst (server, dealer, reqs, replies, 4);
    s_check_text (replies [0], s_body (plain));
    s_check_text (replies [1], s_body (plain));
    s_check_text (replies [2], s_body (g1));        /* the group is part of the key */
    s_check_text (replies [3], s_body (g2));
    for (size_t i = 0; i < 4; i++)
        json_decref (replies [i]);
    //  Kept beside the kept read, under the type and the group
    int ticket = sch_read_queue_load (T.read, "c1", SCH_LOAD_CLUSTER);
    s_check_memo (sch_read_memo (T.read, ticket, "cluster.get/"), s_body (plain));
    s_check_memo (sch_read_memo (T.read, ticket, "group.get/g1"), s_body (g1));
    assert_null (sch_read_memo (T.read, ticket, "config.get/"));

    //  Served from the memo: a hit finds it, and answers with it
    json_t *marked = json_string ("{\"marked\":1}");
    sch_read_memo_put (T.read, ticket, "cluster.get/", marked);
    json_decref (marked);
    sch_read_reset (T.read);
    reqs [0] = ths_req ("cluster.get", "{s:s, s:b}", "name", "c1", "text", 1);
    s_burst (server, dealer, reqs, replies, 1);
    assert_string_equal (dx_msg_str (replies [0], "text"), "{\"marked\":1}");
    json_decref (replies [0]);

    //  A change of the cluster forgets the memo with the kept read
    s_configure ("c1");
    uint64_t serial;
    assert_null (sch_cache_get (sch_store_cache (T.sch.store), "c1", SCH_LOAD_CLUSTER, &serial));
    json_decref (plain);
    plain = s_call (DX_OK, ths_req ("cluster.get", "{s:s}", "name", "c1"));
    assert_true (json_is_true (json_object_get (s_body (plain), "configured")));
    reqs [0] = ths_req ("cluster.get", "{s:s, s:b}", "name", "c1", "text", 1);
    s_burst (server, dealer, reqs, replies, 1);
    s_check_text (replies [0], s_body (plain));
    json_decref (replies [0]);

    //  Without text: a body, as before
    reqs [0] = ths_req ("cluster.get", "{s:s}", "name", "c1");
    s_burst (server, dealer, reqs, replies, 1);
    assert_true (json_equal ((json_t *) s_body (replies [0]), (json_t *) s_body (plain)));
    assert_null (json_object_get (replies [0], "text"));
    json_decref (replies [0]);

    //  A read a change may have overtaken is not kept, nor its memos
    sch_cache_purge (sch_store_cache (T.sch.store));
    ticket = sch_read_queue_load (T.read, "c1", SCH_LOAD_CLUSTER);
    assert_int_equal (sch_read_flush (T.read), 0);
    assert_int_equal (sch_store_cluster_delete (T.sch.store, "c3"), 0);
    json_t *loaded = sch_read_load_result (T.read, ticket);
    assert_non_null (loaded);
    json_t *text = json_string ("{}");
    sch_read_memo_put (T.read, ticket, "cluster.get/", text);
    assert_null (sch_read_memo (T.read, ticket, "cluster.get/"));
    json_decref (text);
    json_decref (loaded);
    sch_read_reset (T.read);

    zsock_destroy (&dealer);
    sch_server_destroy (&server);
    json_decref (plain);
    json_decref (g1);
    json_decref (g2);
}

int
main (void)
{
    setenv ("DEXTER_LOG_LEVEL", "debug", 1);
    dx_log_init ("test_sch_handlers");
    zsys_init ();
    zsys_handler_set (NULL);            /* let cmocka/ASan see signals as they are */
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup (test_cluster_create_get_list, s_setup),
        cmocka_unit_test_setup (test_cluster_errors, s_setup),
        cmocka_unit_test_setup (test_cluster_delete, s_setup),
        cmocka_unit_test_setup (test_config_stays_while_resources_exist, s_setup),
        cmocka_unit_test_setup (test_config, s_setup),
        cmocka_unit_test_setup (test_groups, s_setup),
        cmocka_unit_test_setup (test_cluster_hosts_cap, s_setup),
        cmocka_unit_test_setup (test_cluster_groups_cap, s_setup),
        cmocka_unit_test_setup (test_fields_for_the_provider, s_setup),
        cmocka_unit_test_setup (test_deployment, s_setup),
        cmocka_unit_test_setup (test_vpn_and_events, s_setup),
        cmocka_unit_test_setup (test_no_plaintext_anywhere, s_setup),
        cmocka_unit_test_setup (test_router_loop, s_setup),
        cmocka_unit_test_setup (test_logs_hold_no_secret, s_setup),
        cmocka_unit_test_setup (test_redis_down_and_back, s_setup),
        cmocka_unit_test_setup (test_list_10000, s_setup),
        cmocka_unit_test_setup (test_burst, s_setup),
        cmocka_unit_test_setup (test_list_state_mirror, s_setup),
        cmocka_unit_test_setup (test_read_cache, s_setup),
        cmocka_unit_test_setup (test_text_memo, s_setup),
    };
    int rc = cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
    zsys_shutdown ();
    return rc;
}
