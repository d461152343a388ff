/*  Unit tests for services/api/api_route.c (every route x method, Allow
    lists, 404s, names in paths, query strings) and, through a fake scheduler,
    for services/api/api_handler.c: which request each route sends, that bad
    bodies are refused before the scheduler is asked, and how replies map to
    HTTP. The modules are compiled into this test (the Makefile links tests
    with libdexter only). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../services/api/api_body.c"
#include "../../services/api/api_route.c"
#include "../../services/api/api_handler.c"

#define P API_PREFIX

static const char *s_methods [] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };

/*  Each path, the methods it takes with their request types, and its Allow
    header. */
static const struct {
    const char *path;
    const char *types [5];      /* GET POST PUT DELETE PATCH: type or NULL */
    const char *allow;
} s_paths [] = {
    { P "/clusters", { "cluster.list", "cluster.create", NULL, NULL, NULL },
      "GET, HEAD, POST, OPTIONS" },
    { P "/clusters/c1", { "cluster.get", NULL, NULL, "cluster.delete", NULL },
      "GET, HEAD, DELETE, OPTIONS" },
    { P "/clusters/c1/config", { "config.get", NULL, "config.put", "config.delete", NULL },
      "GET, HEAD, PUT, DELETE, OPTIONS" },
    { P "/clusters/c1/groups", { "group.list", "group.upsert", NULL, NULL, NULL },
      "GET, HEAD, POST, OPTIONS" },
    { P "/clusters/c1/groups/g1", { "group.get", NULL, "group.update", "group.delete", NULL },
      "GET, HEAD, PUT, DELETE, OPTIONS" },
    { P "/clusters/c1/deployment", { "deployment.get", NULL, "deployment.put",
                                     "deployment.delete", NULL },
      "GET, HEAD, PUT, DELETE, OPTIONS" },
    { P "/clusters/c1/deployment/events", { "deployment.events", NULL, NULL, NULL, NULL },
      "GET, HEAD, OPTIONS" },
    { P "/clusters/c1/deployment/vpn", { "deployment.vpn", NULL, NULL, NULL, NULL },
      "GET, HEAD, OPTIONS" },
};
#define S_PATHS (sizeof s_paths / sizeof s_paths [0])

/*  The expected type of method on path i, or NULL when not allowed. */
static const char *
s_expected (size_t i, const char *method)
{
    static const char *order [] = { "GET", "POST", "PUT", "DELETE", "PATCH" };
    if (strcmp (method, "HEAD") == 0)
        method = "GET";
    for (size_t m = 0; m < 5; m++)
        if (strcmp (order [m], method) == 0)
            return s_paths [i].types [m];
    return NULL;
}

static void
test_every_route_and_method (void **state)
{
    (void) state;
    size_t matched = 0;
    for (size_t i = 0; i < S_PATHS; i++)
        for (size_t m = 0; m < sizeof s_methods / sizeof s_methods [0]; m++) {
            api_match_t match;
            const char *method = s_methods [m];
            api_route_match (method, s_paths [i].path, &match);
            const char *type = s_expected (i, method);
            if (strcmp (method, "OPTIONS") == 0) {
                assert_int_equal (match.status, 204);
                assert_null (match.route);
                assert_string_equal (match.allow, s_paths [i].allow);
            }
            else
            if (type) {
                if (match.status != 200)
                    fail_msg ("%s %s: %d %s", method, s_paths [i].path,
                              match.status, match.message);
                assert_string_equal (match.route->type, type);
                assert_string_equal (match.name, strstr (s_paths [i].path, "/c1") ? "c1" : "");
                matched++;
            }
            else {
                if (match.status != 405)
                    fail_msg ("%s %s: expected 405, got %d", method,
                              s_paths [i].path, match.status);
                assert_null (match.route);
                assert_string_equal (match.allow, s_paths [i].allow);
                assert_non_null (strstr (match.message, method));
            }
        }
    /* Every row of the table was reached (HEAD counts its GET twice). */
    assert_int_equal (matched, api_route_count () + S_PATHS);
}

static void
test_route_table (void **state)
{
    (void) state;
    assert_int_equal (api_route_count (), 17);
    assert_null (api_route_at (api_route_count ()));
    for (size_t i = 0; i < api_route_count (); i++) {
        const api_route_t *route = api_route_at (i);
        int writes = strcmp (route->method, "POST") == 0 || strcmp (route->method, "PUT") == 0;
        assert_int_equal (route->body, writes);
        assert_int_equal (route->action != API_DO_PLAIN, writes);
    }
}

static void
test_names_from_path (void **state)
{
    (void) state;
    api_match_t match;
    api_route_match ("GET", P "/clusters/abcdefghijklmnop/groups/z9", &match);
    assert_int_equal (match.status, 200);
    assert_string_equal (match.name, "abcdefghijklmnop");
    assert_string_equal (match.group, "z9");
    api_route_match ("GET", P "/clusters", &match);
    assert_string_equal (match.name, "");
    assert_string_equal (match.group, "");
}

static void
test_trailing_slash (void **state)
{
    (void) state;
    const char *paths [] = { P "/clusters/", P "/clusters/c1/", P "/clusters/c1/groups/g1/",
                             P "/clusters/c1/deployment/vpn/" };
    for (size_t i = 0; i < sizeof paths / sizeof paths [0]; i++) {
        api_match_t match;
        api_route_match ("GET", paths [i], &match);
        if (match.status != 200)
            fail_msg ("%s: %d", paths [i], match.status);
    }
}

static void
test_unknown_paths (void **state)
{
    (void) state;
    const char *paths [] = {
        "/", "", "/clusters", "/api/clusters", "/api/v2.0/clusters", "/api/v1.0",
        "/api/v1.0/", "/api/v1.0x/clusters", "/api/v1.0/nope", P "/clusters//",
        P "//clusters", P "/clusters/c1//config", P "/clusters/c1/nope",
        P "/clusters/c1/groups/g1/extra", P "/clusters/c1/deployment/nope",
        P "/clusters/c1/config/x", P "/clusters/c1/deployment/events/x",
        P "/a/b/c/d/e/f/g/h", P "/clusters/c1/groups/g1/a/b/c/d",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths [0]; i++) {
        api_match_t match;
        api_route_match ("GET", paths [i], &match);
        if (match.status != 404)
            fail_msg ("'%s': expected 404, got %d", paths [i], match.status);
        assert_null (match.route);
        assert_non_null (strstr (match.message, "unknown path"));
    }
    /* A very long path is a 404 too, not an overflow. */
    char longer [2048];
    memset (longer, 'a', sizeof longer - 1);
    longer [sizeof longer - 1] = 0;
    memcpy (longer, P "/clusters/", strlen (P "/clusters/"));
    api_match_t match;
    api_route_match ("GET", longer, &match);
    assert_int_equal (match.status, 404);
}

/*  A name that fails dx_spec_name_valid cannot exist: 404, saying why, and
    that comes before 405. */
static void
test_invalid_names (void **state)
{
    (void) state;
    const char *clusters [] = {
        P "/clusters/Bad", P "/clusters/1abc", P "/clusters/abcdefghijklmnopq",
        P "/clusters/a-b/config", P "/clusters/a_b/groups", P "/clusters/a%20b",
        P "/clusters/\xC3\xA9t\xC3\xA9", P "/clusters/a\xFF",
    };
    for (size_t i = 0; i < sizeof clusters / sizeof clusters [0]; i++) {
        api_match_t match;
        api_route_match ("GET", clusters [i], &match);
        if (match.status != 404)
            fail_msg ("'%s': expected 404, got %d", clusters [i], match.status);
        assert_non_null (strstr (match.message, "no cluster named"));
        json_t *text = json_string (match.message);   /* valid UTF-8 */
        assert_non_null (text);
        json_decref (text);
    }
    api_match_t match;
    api_route_match ("GET", P "/clusters/c1/groups/G1", &match);
    assert_int_equal (match.status, 404);
    assert_non_null (strstr (match.message, "no group named 'G1'"));
    api_route_match ("DELETE", P "/clusters/c1/groups/g_1", &match);
    assert_int_equal (match.status, 404);
    api_route_match ("POST", P "/clusters/BAD", &match);
    assert_int_equal (match.status, 404);
    api_route_match ("GET", P "/clusters/abcdefghijklmnop", &match);
    assert_int_equal (match.status, 200);
}

static void
test_odd_methods (void **state)
{
    (void) state;
    const char *methods [] = { "TRACE", "CONNECT", "get", "FOO", "" };
    for (size_t i = 0; i < sizeof methods / sizeof methods [0]; i++) {
        api_match_t match;
        api_route_match (methods [i], P "/clusters", &match);
        assert_int_equal (match.status, 405);
        assert_string_equal (match.allow, "GET, HEAD, POST, OPTIONS");
    }
}

/*  The route with this method and pattern. */
static const api_route_t *
s_route (const char *method, const char *path)
{
    api_match_t match;
    api_route_match (method, path, &match);
    assert_int_equal (match.status, 200);
    return match.route;
}

static void
test_query_force (void **state)
{
    (void) state;
    const api_route_t *route = s_route ("DELETE", P "/clusters/c1");
    api_query_t query;
    api_fault_t fault;
    assert_int_equal (api_route_query (route, NULL, &query, &fault), 0);
    assert_int_equal (query.force, 0);
    assert_int_equal (api_route_query (route, "", &query, &fault), 0);
    assert_int_equal (api_route_query (route, "force=true", &query, &fault), 0);
    assert_int_equal (query.force, 1);
    assert_int_equal (api_route_query (route, "force=false", &query, &fault), 0);
    assert_int_equal (query.force, 0);
    const char *bad [] = { "force=yes", "force", "force=", "force=TRUE", "force=true&force=true",
                           "force=%zz", "force=1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        if (api_route_query (route, bad [i], &query, &fault) != -1)
            fail_msg ("'%s' accepted", bad [i]);
        assert_string_equal (fault.field, "force");
    }
    assert_int_equal (api_route_query (route, "forced=true", &query, &fault), -1);
    assert_string_equal (fault.field, "forced");
    assert_non_null (strstr (fault.message, "unknown query parameter"));
    route = s_route ("DELETE", P "/clusters/c1/deployment");
    assert_int_equal (api_route_query (route, "force=true", &query, &fault), 0);
    assert_int_equal (query.force, 1);
}

static void
test_query_elsewhere (void **state)
{
    (void) state;
    const char *refused [][2] = {
        { "GET", P "/clusters/c1" }, { "GET", P "/clusters" }, { "POST", P "/clusters" },
        { "DELETE", P "/clusters/c1/config" }, { "DELETE", P "/clusters/c1/groups/g1" },
        { "PUT", P "/clusters/c1/deployment" },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        const api_route_t *route = s_route (refused [i][0], refused [i][1]);
        api_query_t query;
        api_fault_t fault;
        assert_int_equal (api_route_query (route, "force=true", &query, &fault), -1);
        assert_string_equal (fault.field, "force");
        assert_non_null (strstr (fault.message, "unknown query parameter"));
        assert_int_equal (api_route_query (route, "", &query, &fault), 0);
    }
}

static void
test_query_events (void **state)
{
    (void) state;
    const api_route_t *route = s_route ("GET", P "/clusters/c1/deployment/events");
    api_query_t query;
    api_fault_t fault;
    assert_int_equal (api_route_query (route, "after=1700000000000-3&count=10",
                                       &query, &fault), 0);
    assert_string_equal (query.after, "1700000000000-3");
    assert_int_equal (query.count, 10);
    assert_int_equal (api_route_query (route, "count=1000&after=0", &query, &fault), 0);
    assert_int_equal (query.count, 1000);
    assert_string_equal (query.after, "0");
    assert_int_equal (api_route_query (route, "count=1", &query, &fault), 0);
    assert_string_equal (query.after, "");
    const char *bad [][2] = {
        { "count=0", "count" }, { "count=1001", "count" }, { "count=abc", "count" },
        { "count=-1", "count" }, { "count=", "count" }, { "count=99999999999", "count" },
        { "after=abc", "after" }, { "after=1-", "after" }, { "after=-1", "after" },
        { "after=1-2-3", "after" }, { "after=123456789012345678901", "after" },
        { "force=true", "force" }, { "count=1&count=2", "count" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        if (api_route_query (route, bad [i][0], &query, &fault) != -1)
            fail_msg ("'%s' accepted", bad [i][0]);
        assert_string_equal (fault.field, bad [i][1]);
    }
}

/* -- the handler, behind a fake scheduler ------------------------------- */

/*  The fake scheduler: records each request and answers from a script. */
typedef struct {
    json_t *sent;               /* array of the requests */
    const char *provider;       /* cluster.get answers OK with it; NULL: NOT_FOUND */
    const char *status;         /* status of every other answer */
    json_t *body;               /* its body (borrowed) */
    json_t *extra;              /* fields merged into error replies */
} s_fake_t;

static json_t *
s_fake_call (void *ctx, json_t *request)
{
    s_fake_t *fake = ctx;
    json_array_append (fake->sent, request);
    int success = strcmp (fake->status, DX_OK) == 0 || strcmp (fake->status, DX_CREATED) == 0
               || strcmp (fake->status, DX_ACCEPTED) == 0;
    if (strcmp (dx_msg_type (request), "cluster.get") == 0 && success) {
        if (!fake->provider)
            return dx_reply_error (request, DX_NOT_FOUND, "name", "no cluster %s",
                                   dx_msg_str (request, "name"));
        return dx_reply_new (request, DX_OK, json_pack ("{s:s, s:s}", "name",
                             dx_msg_str (request, "name"), "provider", fake->provider));
    }
    if (success)
        return dx_reply_new (request, fake->status,
                             fake->body ? json_incref (fake->body) : NULL);
    json_t *reply = dx_reply_error (request, fake->status, NULL, "scripted %s", fake->status);
    if (fake->extra)
        json_object_update (reply, fake->extra);
    return reply;
}

static void
s_fake_init (s_fake_t *fake, const char *status)
{
    memset (fake, 0, sizeof *fake);
    fake->sent = json_array ();
    fake->provider = "aws";
    fake->status = status;
}

/*  Runs method path?query with a form body (NULL: none) against fake. */
static api_answer_t
s_run (s_fake_t *fake, const char *method, const char *path, const char *query,
       const char *form)
{
    api_match_t match;
    api_route_match (method, path, &match);
    assert_int_equal (match.status, 200);
    api_query_t args;
    api_fault_t fault;
    assert_int_equal (api_route_query (match.route, query, &args, &fault), 0);
    json_t *fields = form ? api_body_parse_form (form, strlen (form), &fault) : NULL;
    if (form)
        assert_non_null (fields);
    /* What api_http does, without waiting: each step's request goes to the
       fake, whose reply drives the next step, until the answer. */
    api_job_t *job = api_job_new (&match, &args, &fields);
    assert_non_null (job);
    assert_null (fields);
    api_answer_t answer;
    json_t *request, *reply = NULL;
    int steps = 0;
    bool text = false;
    while (api_job_next (job, reply, &request, &answer) == API_STEP_SEND) {
        assert_non_null (request);
        assert_true (++steps <= 2);         /* at most cluster.get, then the write */
        /* The provider lookup wants the body as a value, the last request
           its text (which the api sends as it is) */
        text = dx_msg_bool (request, "text", 0);
        json_decref (reply);
        reply = s_fake_call (fake, request);
        json_decref (request);
        assert_non_null (reply);
    }
    assert_null (request);
    json_decref (reply);
    api_job_destroy (&job);
    assert_null (job);
    if (answer.status < 300)
        assert_true (text);
    if (answer.text) {                      /* the fake's body, dumped */
        assert_true (answer.status < 300);
        assert_null (answer.body);
        answer.body = json_loads (json_string_value (answer.text), JSON_DECODE_ANY, NULL);
        json_decref (answer.text);
        answer.text = NULL;
    }
    assert_non_null (answer.body);
    return answer;
}

/*  A string field, failing the test (not crashing it) when absent. */
static const char *
s_str (const json_t *object, const char *field)
{
    const char *value = json_string_value (json_object_get (object, field));
    if (!value)
        fail_msg ("no string field '%s'", field);
    return value;
}

static void
test_handler_plain_routes (void **state)
{
    (void) state;
    for (size_t i = 0; i < S_PATHS; i++)
        for (size_t m = 0; m < 5; m++) {
            const char *methods [] = { "GET", "POST", "PUT", "DELETE", "PATCH" };
            const char *type = s_paths [i].types [m];
            if (!type || (strcmp (methods [m], "GET") && strcmp (methods [m], "DELETE")))
                continue;
            s_fake_t fake;
            s_fake_init (&fake, DX_OK);
            fake.body = json_pack ("{s:s}", "hello", "world");
            api_answer_t answer = s_run (&fake, methods [m], s_paths [i].path, NULL, NULL);
            assert_int_equal (answer.status, 200);
            if (strcmp (type, "cluster.get"))       /* the fake's own answer */
                assert_string_equal (s_str (answer.body, "hello"), "world");
            assert_int_equal (json_array_size (fake.sent), 1);
            json_t *request = json_array_get (fake.sent, 0);
            assert_string_equal (dx_msg_type (request), type);
            assert_non_null (dx_msg_id (request));
            if (strstr (s_paths [i].path, "/c1"))
                assert_string_equal (s_str (request, "name"), "c1");
            else
                assert_null (json_object_get (request, "name"));
            if (strstr (s_paths [i].path, "/g1"))
                assert_string_equal (s_str (request, "group"), "g1");
            int forced = strcmp (type, "cluster.delete") == 0
                      || strcmp (type, "deployment.delete") == 0;
            assert_int_equal (json_is_boolean (json_object_get (request, "force")), forced);
            json_decref (answer.body);
            json_decref (fake.body);
            json_decref (fake.sent);
        }
}

static void
test_handler_force_and_events (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_OK);
    api_answer_t answer = s_run (&fake, "DELETE", P "/clusters/c1", "force=true", NULL);
    assert_true (json_is_true (json_object_get (json_array_get (fake.sent, 0), "force")));
    json_decref (answer.body);
    answer = s_run (&fake, "DELETE", P "/clusters/c1/deployment", NULL, NULL);
    assert_true (json_is_false (json_object_get (json_array_get (fake.sent, 1), "force")));
    json_decref (answer.body);
    answer = s_run (&fake, "GET", P "/clusters/c1/deployment/events", "after=5-1&count=7", NULL);
    json_t *request = json_array_get (fake.sent, 2);
    assert_string_equal (s_str (request, "after"), "5-1");
    assert_int_equal (json_integer_value (json_object_get (request, "count")), 7);
    json_decref (answer.body);
    answer = s_run (&fake, "GET", P "/clusters/c1/deployment/events", NULL, NULL);
    request = json_array_get (fake.sent, 3);
    assert_null (json_object_get (request, "after"));
    assert_null (json_object_get (request, "count"));
    json_decref (answer.body);
    json_decref (fake.sent);
}

/*  The VPN profile is a JSON string body: passed through as it is. */
static void
test_handler_string_body (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_OK);
    fake.body = json_string ("client\nremote 1.2.3.4 1194\n");
    api_answer_t answer = s_run (&fake, "GET", P "/clusters/c1/deployment/vpn", NULL, NULL);
    assert_int_equal (answer.status, 200);
    assert_string_equal (json_string_value (answer.body), "client\nremote 1.2.3.4 1194\n");
    json_decref (answer.body);
    json_decref (fake.body);
    json_decref (fake.sent);
}

static void
test_handler_create (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_CREATED);
    fake.body = json_pack ("{s:s}", "name", "c1");
    api_answer_t answer = s_run (&fake, "POST", P "/clusters", NULL,
                                 "name=c1&provider=aws&type=mesos");
    assert_int_equal (answer.status, 201);
    json_t *request = json_array_get (fake.sent, 0);
    assert_string_equal (dx_msg_type (request), "cluster.create");
    json_t *cluster = json_object_get (request, "cluster");
    assert_string_equal (s_str (cluster, "name"), "c1");
    assert_string_equal (s_str (cluster, "provider"), "aws");
    assert_string_equal (s_str (cluster, "type"), "mesos");
    json_decref (answer.body);
    json_decref (fake.body);
    json_decref (fake.sent);
}

/*  Bad bodies are refused with every fault, without asking the scheduler. */
static void
test_handler_create_invalid (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_CREATED);
    api_answer_t answer = s_run (&fake, "POST", P "/clusters", NULL, "");
    assert_int_equal (answer.status, 400);
    assert_string_equal (s_str (answer.body, "code"), "INVALID");
    json_t *errors = json_object_get (answer.body, "errors");
    assert_int_equal (json_array_size (errors), 3);     /* name, provider, type */
    assert_string_equal (s_str (answer.body, "field"),
                         s_str (json_array_get (errors, 0), "field"));
    assert_non_null (s_str (answer.body, "message"));
    assert_int_equal (json_array_size (fake.sent), 0);
    json_decref (answer.body);
    answer = s_run (&fake, "POST", P "/clusters", NULL,
                    "name=c1&provider=gcp&type=mesos&master=3");
    assert_int_equal (answer.status, 400);
    assert_true (json_array_size (json_object_get (answer.body, "errors")) >= 2);
    assert_int_equal (json_array_size (fake.sent), 0);
    json_decref (answer.body);
    json_decref (fake.sent);
}

static void
test_handler_group_upsert_and_update (void **state)
{
    (void) state;
    const char *form = "name=slaves&role=role1&attributes={\"foo\":\"bar\"}"
                       "&vars={\"foo\":\"bar\"}&cpus=10&ram=64&disk_size=50";
    s_fake_t fake;
    s_fake_init (&fake, DX_CREATED);
    api_answer_t answer = s_run (&fake, "POST", P "/clusters/c1/groups", NULL, form);
    assert_int_equal (answer.status, 201);
    assert_int_equal (json_array_size (fake.sent), 2);
    assert_string_equal (dx_msg_type (json_array_get (fake.sent, 0)), "cluster.get");
    json_t *request = json_array_get (fake.sent, 1);
    assert_string_equal (dx_msg_type (request), "group.upsert");
    assert_string_equal (s_str (request, "name"), "c1");
    assert_string_equal (s_str (request, "provider"), "aws");
    json_t *spec = json_object_get (request, "spec");
    assert_string_equal (s_str (spec, "name"), "slaves");
    assert_true (json_is_object (json_object_get (spec, "attributes")));
    json_decref (answer.body);

    fake.status = DX_OK;
    answer = s_run (&fake, "PUT", P "/clusters/c1/groups/old", NULL, form);
    assert_int_equal (answer.status, 200);
    request = json_array_get (fake.sent, 3);
    assert_string_equal (dx_msg_type (request), "group.update");
    assert_string_equal (s_str (request, "group"), "old");
    assert_string_equal (s_str (json_object_get (request, "spec"), "name"), "slaves");
    json_decref (answer.body);

    /* Invalid for the cluster's provider: only cluster.get was asked. */
    answer = s_run (&fake, "POST", P "/clusters/c1/groups", NULL, "name=x&cpus=0");
    assert_int_equal (answer.status, 400);
    assert_int_equal (json_array_size (fake.sent), 5);
    assert_string_equal (dx_msg_type (json_array_get (fake.sent, 4)), "cluster.get");
    json_decref (answer.body);
    json_decref (fake.sent);
}

static void
test_handler_config_and_deployment (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_OK);
    fake.provider = "azure";
    api_answer_t answer = s_run (&fake, "PUT", P "/clusters/c1/config", NULL,
                                 "location=Central US&masters=3&ssh_password=Xy7!secret"
                                 "&ssh_user=dexter&master_type=Basic_A2");
    if (answer.status != 200)
        fail_msg ("%s", s_str (answer.body, "message"));
    json_t *request = json_array_get (fake.sent, 1);
    assert_string_equal (dx_msg_type (request), "config.put");
    assert_string_equal (s_str (request, "provider"), "azure");
    assert_string_equal (s_str (json_object_get (request, "secrets"), "ssh_password"),
                         "Xy7!secret");
    assert_null (json_object_get (json_object_get (request, "config"), "ssh_password"));
    json_decref (answer.body);

    fake.provider = "aws";
    fake.status = DX_ACCEPTED;
    answer = s_run (&fake, "PUT", P "/clusters/c1/deployment", NULL,
                    "aws_access_key_id=AKIAIOSFODNN7EXAMPLE"
                    "&aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
                    "&command=deploy");
    if (answer.status != 202)
        fail_msg ("%s", s_str (answer.body, "message"));
    request = json_array_get (fake.sent, 3);
    assert_string_equal (dx_msg_type (request), "deployment.put");
    assert_string_equal (s_str (request, "command"), "deploy");
    assert_int_equal (json_integer_value (json_object_get (request, "parallelism")), 5);
    json_t *credentials = json_object_get (request, "credentials");
    assert_string_equal (s_str (credentials, "aws_access_key_id"), "AKIAIOSFODNN7EXAMPLE");
    assert_non_null (s_str (credentials, "aws_secret_access_key"));
    json_decref (answer.body);

    /* A parameter of the other provider. */
    answer = s_run (&fake, "PUT", P "/clusters/c1/deployment", NULL,
                    "command=deploy&credentials=abc");
    assert_int_equal (answer.status, 400);
    assert_int_equal (json_array_size (fake.sent), 5);
    json_decref (answer.body);
    json_decref (fake.sent);
}

/*  A write on a cluster that does not exist: 404 from cluster.get. */
static void
test_handler_unknown_cluster (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_OK);
    fake.provider = NULL;
    api_answer_t answer = s_run (&fake, "PUT", P "/clusters/c1/config", NULL, "masters=3");
    assert_int_equal (answer.status, 404);
    assert_string_equal (s_str (answer.body, "code"), "NOT_FOUND");
    assert_string_equal (s_str (answer.body, "field"), "name");
    assert_int_equal (json_array_size (fake.sent), 1);
    json_decref (answer.body);
    json_decref (fake.sent);
}

static void
test_handler_reply_statuses (void **state)
{
    (void) state;
    const struct { const char *status; int http; } cases [] = {
        { DX_OK, 200 }, { DX_CREATED, 201 }, { DX_ACCEPTED, 202 }, { DX_INVALID, 400 },
        { DX_NOT_FOUND, 404 }, { DX_CONFLICT, 409 }, { DX_UNAVAILABLE, 503 },
        { DX_INTERNAL, 500 }, { "WHATEVER", 500 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_fake_t fake;
        s_fake_init (&fake, cases [i].status);
        api_answer_t answer = s_run (&fake, "GET", P "/clusters", NULL, NULL);
        assert_int_equal (answer.status, cases [i].http);
        if (cases [i].http >= 400) {
            const char *code = s_str (answer.body, "code");
            assert_string_equal (code, cases [i].http == 500 ? DX_INTERNAL : cases [i].status);
            assert_non_null (s_str (answer.body, "message"));
        }
        else
            assert_true (json_is_object (answer.body));       /* {} without a body */
        json_decref (answer.body);
        json_decref (fake.sent);
    }
    assert_int_equal (api_handler_http_status (NULL), 500);
}

/*  Errors with several faults pass through with field and errors. */
static void
test_handler_reply_errors (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_CONFLICT);
    fake.extra = json_pack ("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "field", "name",
                            "errors", "field", "name", "message", "taken",
                            "field", "role", "message", "odd");
    api_answer_t answer = s_run (&fake, "GET", P "/clusters/c1", NULL, NULL);
    assert_int_equal (answer.status, 409);
    assert_string_equal (s_str (answer.body, "field"), "name");
    assert_int_equal (json_array_size (json_object_get (answer.body, "errors")), 2);
    json_decref (answer.body);
    json_decref (fake.extra);
    json_decref (fake.sent);
}

/*  What api_loop makes up when the scheduler is silent: UNAVAILABLE. */
static void
test_handler_unavailable (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_UNAVAILABLE);
    api_answer_t answer = s_run (&fake, "PUT", P "/clusters/c1/groups/g1", NULL, "name=g1");
    assert_int_equal (answer.status, 503);
    assert_string_equal (s_str (answer.body, "code"), "UNAVAILABLE");
    assert_int_equal (json_array_size (fake.sent), 1);  /* stopped at cluster.get */
    json_decref (answer.body);
    json_decref (fake.sent);
}

/*  A job abandoned while it waits (the client went away, the api stops)
    frees what it holds, the body's fields included. */
static void
test_handler_abandoned (void **state)
{
    (void) state;
    api_match_t match;
    api_route_match ("PUT", P "/clusters/c1/config", &match);
    api_query_t args = { 0 };
    api_fault_t fault;
    json_t *fields = api_body_parse_form ("masters=3", 9, &fault);
    api_job_t *job = api_job_new (&match, &args, &fields);
    json_t *request;
    api_answer_t answer;
    assert_int_equal (api_job_next (job, NULL, &request, &answer), API_STEP_SEND);
    assert_string_equal (dx_msg_type (request), "cluster.get");
    json_decref (request);
    api_job_destroy (&job);
    api_job_destroy (&job);                 /* safe on NULL */
    api_job_destroy (NULL);
}

static void
test_error_body (void **state)
{
    (void) state;
    json_t *body = api_error_body ("NOT_FOUND", NULL, "gone");
    assert_string_equal (s_str (body, "code"), "NOT_FOUND");
    assert_null (json_object_get (body, "field"));
    json_decref (body);
    body = api_error_body ("INVALID", "", "bad");
    assert_null (json_object_get (body, "field"));
    json_decref (body);
    body = api_error_body ("INVALID", "cpus", "bad");
    assert_string_equal (s_str (body, "field"), "cpus");
    json_decref (body);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_every_route_and_method),
        cmocka_unit_test (test_route_table),
        cmocka_unit_test (test_names_from_path),
        cmocka_unit_test (test_trailing_slash),
        cmocka_unit_test (test_unknown_paths),
        cmocka_unit_test (test_invalid_names),
        cmocka_unit_test (test_odd_methods),
        cmocka_unit_test (test_query_force),
        cmocka_unit_test (test_query_elsewhere),
        cmocka_unit_test (test_query_events),
        cmocka_unit_test (test_handler_plain_routes),
        cmocka_unit_test (test_handler_force_and_events),
        cmocka_unit_test (test_handler_string_body),
        cmocka_unit_test (test_handler_create),
        cmocka_unit_test (test_handler_create_invalid),
        cmocka_unit_test (test_handler_group_upsert_and_update),
        cmocka_unit_test (test_handler_config_and_deployment),
        cmocka_unit_test (test_handler_unknown_cluster),
        cmocka_unit_test (test_handler_reply_statuses),
        cmocka_unit_test (test_handler_reply_errors),
        cmocka_unit_test (test_handler_unavailable),
        cmocka_unit_test (test_handler_abandoned),
        cmocka_unit_test (test_error_body),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
