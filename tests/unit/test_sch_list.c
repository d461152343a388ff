/*  Tests of services/scheduler/sch_list.c and the list reads it makes in
    slices (sch_read.c), through the scheduler's request loop as the api
    drives it, against a real redis-server started here on a free port.

    Covered: pages (limit, after, next) in name order and the whole list,
    whatever the slices; the text answer is exactly the body's compact
    JSON; bad pages are INVALID; requests for the same page that wait
    together share one list; and, through a real ROUTER loop, requests
    sent while long lists are built are answered before the lists end
    (order only: no timing is asserted). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/scheduler/sch_server.h"
#include "harness_sch.h"

#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

static const unsigned char s_master [32] = { 0x5a, 0x5a, 0x5a, 0x03 };

static struct {
    ths_t sch;                  /* Redis, store, seal */
    sch_server_t *server;
} T;


//  ---------------------------------------------------------------------
//  Helpers

/*  Clusters c00000 .. c<count - 1>, written as the store writes them, in
    one pipeline (the store's one transaction per cluster would take
    seconds for thousands). */
static void
s_clusters (int count)
{
    for (int i = 0; i < count; i++) {
        redisAppendCommand (T.sch.redis.raw, "HSET dexter:{c%05d}:cluster name c%05d "
                                              "provider aws type mesos created_at "
                                              "2026-12-07T00:00:00.000Z updated_at "
                                              "2026-12-07T00:00:00.000Z state init", i, i);
        redisAppendCommand (T.sch.redis.raw, "ZADD dexter:clusters 0 c%05d", i);
    }
    for (int i = 0; i < 2 * count; i++) {
        redisReply *reply;
        assert_int_equal (redisGetReply (T.sch.redis.raw, (void **) &reply), REDIS_OK);
        freeReplyObject (reply);
    }
}

/*  cluster.list with the members packed from fmt (may be NULL), through
    the codec and the server as the api sends it; the reply (caller
    frees), whose status must be status. */
static json_t *
s_list (const char *status, const char *fmt, ...)
{
    json_t *request = dx_msg_new ("cluster.list", NULL);
    json_object_set_new (request, "deadline", json_integer (dx_now_ms () + 60000));
    if (fmt) {
        va_list args;
        va_start (args, fmt);
        json_t *extra = json_vpack_ex (NULL, 0, fmt, args);
        va_end (args);
        assert_non_null (extra);
        json_object_update (request, extra);
        json_decref (extra);
    }
    char *buf, err [DX_ERR_LEN];
    size_t len;
    assert_int_equal (dx_msg_encode (request, &buf, &len), 0);
    json_t *decoded = dx_msg_decode (buf, len, err, sizeof err);
    free (buf);
    if (!decoded)
        fail_msg ("not a valid cluster.list: %s", err);
    json_t *reply = sch_server_handle (T.server, decoded);
    json_decref (decoded);
    json_decref (request);
    assert_string_equal (dx_msg_str (reply, "status"), status);
    return reply;
}

/*  The names of a list's body, space-separated, into buf. */
static const char *
s_names (const json_t *reply, char *buf, size_t size)
{
    buf [0] = 0;
    size_t i;
    json_t *entry;
    json_array_foreach (json_object_get (json_object_get (reply, "body"), "clusters"), i, entry) {
        size_t len = strlen (buf);
        snprintf (buf + len, size - len, "%s%s", i? " ": "",
                  json_string_value (json_object_get (entry, "name")));
    }
    return buf;
}

static const json_t *
s_member (const json_t *reply, const char *member)
{
    return json_object_get (json_object_get (reply, "body"), member);
}


//  ---------------------------------------------------------------------
//  Fixtures

static int
s_group_setup (void **state)
{
    (void) state;
    if (ths_up (&T.sch, "list-test", s_master))
        return -1;
    T.server = sch_server_new ("tcp://127.0.0.1:*", T.sch.store, T.sch.seal, NULL);
    return T.server? 0: -1;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    sch_server_destroy (&T.server);
    ths_down (&T.sch);
    return 0;
}

static int
s_setup (void **state)
{
    (void) state;
    freeReplyObject (redisCommand (T.sch.redis.raw, "FLUSHALL"));
    return 0;
}


//  ---------------------------------------------------------------------
//  Tests

/*  Pages: at most limit clusters after `after`, in name order, and `next`
    names where the following page starts until the last page. */
static void
test_pages (void **state)
{
    (void) state;
    s_clusters (25);
    char names [4096];
    json_t *reply = s_list (DX_OK, NULL);
    assert_int_equal (json_integer_value (s_member (reply, "count")), 25);
    assert_null (s_member (reply, "next"));
    json_decref (reply);

    reply = s_list (DX_OK, "{s:i}", "limit", 10);
    assert_string_equal (s_names (reply, names, sizeof names),
                         "c00000 c00001 c00002 c00003 c00004 c00005 c00006 c00007 c00008 c00009");
    assert_int_equal (json_integer_value (s_member (reply, "count")), 10);
    assert_string_equal (json_string_value (s_member (reply, "next")), "c00009");
    json_decref (reply);
    reply = s_list (DX_OK, "{s:i, s:s}", "limit", 10, "after", "c00019");
    assert_string_equal (s_names (reply, names, sizeof names),
                         "c00020 c00021 c00022 c00023 c00024");
    assert_true (json_is_null (s_member (reply, "next")));
    json_decref (reply);
    //  A page that ends exactly at the last cluster is the last
    reply = s_list (DX_OK, "{s:i, s:s}", "limit", 5, "after", "c00019");
    assert_true (json_is_null (s_member (reply, "next")));
    json_decref (reply);
    //  after need not be a cluster: the page starts after it in name order
    reply = s_list (DX_OK, "{s:i, s:s}", "limit", 2, "after", "c00012a");
    assert_string_equal (s_names (reply, names, sizeof names), "c00013 c00014");
    json_decref (reply);
    reply = s_list (DX_OK, "{s:s}", "after", "c00024");
    assert_int_equal (json_integer_value (s_member (reply, "count")), 0);
    assert_null (s_member (reply, "next"));
    json_decref (reply);

    //  Pages read one after the other give every cluster once
    char after [32] = "";
    int pages = 0, seen = 0;
    do {
        reply = after [0]? s_list (DX_OK, "{s:i, s:s}", "limit", 7, "after", after)
                         : s_list (DX_OK, "{s:i}", "limit", 7);
        seen += (int) json_integer_value (s_member (reply, "count"));
        const char *next = json_string_value (s_member (reply, "next"));
        snprintf (after, sizeof after, "%s", next? next: "");
        json_decref (reply);
        pages++;
    } while (after [0]);
    assert_int_equal (pages, 4);
    assert_int_equal (seen, 25);

    reply = s_list (DX_INVALID, "{s:s}", "after", "Not-A-Name");
    assert_string_equal (dx_msg_str (reply, "field"), "after");
    json_decref (reply);
}

/*  A list of more clusters than one slice reads: every one, in order,
    and its text is exactly the compact JSON of its body. A cluster whose
    hash is gone (an index member left behind) is not listed. */
static void
test_whole_list_in_slices (void **state)
{
    (void) state;
    enum { N = 1234 };
    s_clusters (N);
    assert_int_equal (th_redis_int (&T.sch.redis, "DEL dexter:{c00007}:cluster"), 1);
    json_t *reply = s_list (DX_OK, NULL);
    const json_t *clusters = s_member (reply, "clusters");
    assert_int_equal (json_array_size (clusters), N - 1);
    assert_int_equal (json_integer_value (s_member (reply, "count")), N - 1);
    for (size_t i = 1; i < json_array_size (clusters); i++)
        assert_true (strcmp (json_string_value (json_object_get (json_array_get (clusters, i - 1),
                                                                 "name")),
                             json_string_value (json_object_get (json_array_get (clusters, i),
                                                                 "name"))) < 0);
    const json_t *entry = json_array_get (clusters, 0);
    assert_string_equal (json_string_value (json_object_get (entry, "state")), "init");
    assert_int_equal (json_object_size (entry), 5);
    char *expected = json_dumps (json_object_get (reply, "body"), JSON_COMPACT);
    json_decref (reply);
    reply = s_list (DX_OK, "{s:b}", "text", 1);
    assert_string_equal (dx_msg_str (reply, "text"), expected);
    free (expected);
    json_decref (reply);
}


//  ---------------------------------------------------------------------
//  Through the ROUTER loop

typedef struct {
    zactor_t *actor;
    sch_store_t *store;
    zsock_t *dealer;
} s_live_t;

static void
s_live_start (s_live_t *live)
{
    live->store = sch_store_new (T.sch.redis.url);
    assert_non_null (live->store);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", th_free_port ());
    sch_server_args_t args = { endpoint, live->store, T.sch.seal };
    live->actor = zactor_new (sch_server_actor, &args);
    assert_non_null (live->actor);
    live->dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (live->dealer);
    zsock_set_linger (live->dealer, 0);
    zsock_set_rcvtimeo (live->dealer, 60000);
    assert_int_equal (zsock_connect (live->dealer, "%s", endpoint), 0);
}

static void
s_live_stop (s_live_t *live)
{
    zsock_destroy (&live->dealer);
    zactor_destroy (&live->actor);
    sch_store_destroy (&live->store);
}

/*  Sends a request of type with the string member key = value (key may
    be NULL); its id into id. */
static void
s_live_send (s_live_t *live, const char *type, const char *key, const char *value,
             char *id, size_t size)
{
    json_t *request = dx_msg_new (type, NULL);
    json_object_set_new (request, "deadline", json_integer (dx_now_ms () + 120000));
    json_object_set_new (request, "text", json_true ());
    if (key)
        json_object_set_new (request, key, json_string (value));
    snprintf (id, size, "%s", dx_msg_id (request));
    assert_int_equal (dx_msg_send (live->dealer, NULL, request), 0);
    json_decref (request);
}

/*  The next reply; its id into id. Caller frees. */
static json_t *
s_live_reply (s_live_t *live, char *id, size_t size)
{
    char err [DX_ERR_LEN];
    json_t *reply = dx_msg_recv (live->dealer, NULL, NULL, err, sizeof err);
    if (!reply)
        fail_msg ("no reply: %s", err);
    assert_string_equal (dx_msg_str (reply, "status"), DX_OK);
    snprintf (id, size, "%s", dx_msg_id (reply));
    return reply;
}

/*  Lists of 10,000 clusters are read a slice at a time between other
    requests: a GET sent with them, and another sent when the first list
    is answered, are both answered before the last list. */
static void
test_lists_let_requests_through (void **state)
{
    (void) state;
    enum { N = 10000, LISTS = 8 };
    s_clusters (N);
    s_live_t live;
    s_live_start (&live);
    char ids [LISTS][64], first_get [64], late_get [64] = "", id [64];
    //  Each after its own `after`: no two share a list
    for (int i = 0; i < LISTS; i++) {
        char after [16];
        snprintf (after, sizeof after, "a%d", i);
        s_live_send (&live, "cluster.list", "after", after, ids [i], sizeof ids [i]);
    }
    s_live_send (&live, "cluster.get", "name", "c04242", first_get, sizeof first_get);
    int lists = 0, gets = 0, late_at = -1;
    while (lists < LISTS) {
        json_t *reply = s_live_reply (&live, id, sizeof id);
        if (strcmp (id, first_get) == 0) {
            //  Sent after the lists, answered before any of them
            assert_int_equal (lists, 0);
            assert_non_null (strstr (dx_msg_str (reply, "text"), "c04242"));
            gets++;
        }
        else
        if (strcmp (id, late_get) == 0) {
            late_at = lists;
            gets++;
        }
        else {
            lists++;
            assert_non_null (strstr (dx_msg_str (reply, "text"), "\"count\":10000}"));
            if (lists == 1)
                s_live_send (&live, "cluster.get", "name", "c00001", late_get, sizeof late_get);
        }
        json_decref (reply);
    }
    assert_int_equal (gets, 2);
    assert_true (late_at >= 1 && late_at < LISTS);
    s_live_stop (&live);
}

/*  Requests for the same page that wait together are answered by one
    list: a dozen lists of 10,000 clusters cost about two lists of reads,
    not twelve. */
static void
test_waiting_lists_share (void **state)
{
    (void) state;
    enum { N = 10000, LISTS = 12 };
    s_clusters (N);
    s_live_t live;
    s_live_start (&live);
    freeReplyObject (redisCommand (T.sch.redis.raw, "CONFIG RESETSTAT"));
    char id [64];
    for (int i = 0; i < LISTS; i++)
        s_live_send (&live, "cluster.list", NULL, NULL, id, sizeof id);
    char *first = NULL;
    for (int i = 0; i < LISTS; i++) {
        json_t *reply = s_live_reply (&live, id, sizeof id);
        const char *text = dx_msg_str (reply, "text");
        if (!first)
            first = strdup (text);
        assert_string_equal (text, first);
        json_decref (reply);
    }
    free (first);
    //  One HMGET per cluster listed: at most two lists' worth
    redisReply *info = redisCommand (T.sch.redis.raw, "INFO commandstats");
    const char *hmget = strstr (info->str, "cmdstat_hmget:calls=");
    assert_non_null (hmget);
    long calls = atol (hmget + strlen ("cmdstat_hmget:calls="));
    freeReplyObject (info);
    assert_true (calls >= N && calls <= 2 * N);
    s_live_stop (&live);
}

int
main (void)
{
    dx_log_init ("test_sch_list");
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup (test_pages, s_setup),
        cmocka_unit_test_setup (test_whole_list_in_slices, s_setup),
        cmocka_unit_test_setup (test_lists_let_requests_through, s_setup),
        cmocka_unit_test_setup (test_waiting_lists_share, s_setup),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
