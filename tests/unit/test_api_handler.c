/*  Unit tests for services/api/api_handler.c, behind a fake scheduler: the
    one request each route sends, that a bad POST /clusters body is refused
    before the scheduler is asked, that the other writes pass their fields
    on for the scheduler to check, and how replies map to HTTP. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include "../../services/api/api_handler.h"
#include "dx_msg.h"

#define P API_PREFIX

/*  The fake scheduler: records each request and answers from a script. */
typedef struct {
    json_t *sent;               /* array of the requests */
    const char *status;         /* status of every answer */
    json_t *body;               /* its body (borrowed) */
    json_t *extra;              /* fields merged into error replies */
} s_fake_t;

static json_t *
s_fake_call (s_fake_t *fake, json_t *request)
{
    json_array_append (fake->sent, request);
    if (strcmp (fake->status, DX_OK) == 0 || strcmp (fake->status, DX_CREATED) == 0
    ||  strcmp (fake->status, DX_ACCEPTED) == 0)
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
    /* What api_http does, without waiting: the request goes to the fake,
       whose reply makes the answer. */
    api_answer_t answer;
    json_t *request = api_handler_request (&match, &args, &fields, &answer);
    assert_null (fields);
    if (request) {
        /* The reply's body is asked for as JSON text, which the api sends
           as it is. */
        assert_true (dx_msg_bool (request, "text", 0));
        json_t *reply = s_fake_call (fake, request);
        assert_non_null (reply);
        json_decref (request);
        api_handler_reply (reply, &answer);
        json_decref (reply);
    }
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

/*  Asserts that answer is an error: status http, code. */
static void
s_assert_error (const api_answer_t *answer, int http, const char *code)
{
    assert_int_equal (answer->status, http);
    assert_string_equal (s_str (answer->body, "code"), code);
}

/*  The one request sent so far, which must be of type. */
static json_t *
s_only_request (const s_fake_t *fake, const char *type)
{
    assert_int_equal (json_array_size (fake->sent), 1);
    json_t *request = json_array_get (fake->sent, 0);
    assert_string_equal (dx_msg_type (request), type);
    return request;
}

static void
test_handler_plain_routes (void **state)
{
    (void) state;
    static const char *routes [][3] = {
        { "GET", P "/clusters", "cluster.list" },
        { "GET", P "/clusters/c1", "cluster.get" },
        { "DELETE", P "/clusters/c1", "cluster.delete" },
        { "GET", P "/clusters/c1/config", "config.get" },
        { "DELETE", P "/clusters/c1/config", "config.delete" },
        { "GET", P "/clusters/c1/groups", "group.list" },
        { "GET", P "/clusters/c1/groups/g1", "group.get" },
        { "DELETE", P "/clusters/c1/groups/g1", "group.delete" },
        { "GET", P "/clusters/c1/deployment", "deployment.get" },
        { "DELETE", P "/clusters/c1/deployment", "deployment.delete" },
        { "GET", P "/clusters/c1/deployment/events", "deployment.events" },
        { "GET", P "/clusters/c1/deployment/vpn", "deployment.vpn" },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes [0]; i++) {
        const char *path = routes [i][1], *type = routes [i][2];
        s_fake_t fake;
        s_fake_init (&fake, DX_OK);
        fake.body = json_pack ("{s:s}", "hello", "world");
        api_answer_t answer = s_run (&fake, routes [i][0], path, NULL, NULL);
        assert_int_equal (answer.status, 200);
        assert_string_equal (s_str (answer.body, "hello"), "world");
        json_t *request = s_only_request (&fake, type);
        assert_non_null (dx_msg_id (request));
        if (strstr (path, "/c1"))
            assert_string_equal (s_str (request, "name"), "c1");
        else
            assert_null (json_object_get (request, "name"));
        if (strstr (path, "/g1"))
            assert_string_equal (s_str (request, "group"), "g1");
        int forced = strcmp (type, "cluster.delete") == 0
                  || strcmp (type, "deployment.delete") == 0;
        assert_int_equal (json_is_boolean (json_object_get (request, "force")), forced);
        assert_null (json_object_get (request, "fields"));
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
    json_t *request = s_only_request (&fake, "cluster.create");
    json_t *cluster = json_object_get (request, "cluster");
    assert_string_equal (s_str (cluster, "name"), "c1");
    assert_string_equal (s_str (cluster, "provider"), "aws");
    assert_string_equal (s_str (cluster, "type"), "mesos");
    assert_null (json_object_get (request, "fields"));
    json_decref (answer.body);
    json_decref (fake.body);
    json_decref (fake.sent);
}

/*  A bad POST /clusters body is refused with every fault, without asking
    the scheduler. */
static void
test_handler_create_invalid (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_CREATED);
    api_answer_t answer = s_run (&fake, "POST", P "/clusters", NULL, "");
    s_assert_error (&answer, 400, "INVALID");
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

/*  The provider's checks are the scheduler's: a write sends one request
    whose `fields` are the body's as parsed, and nothing it used to derive
    from them. */
static void
s_assert_fields_only (const json_t *request, const char *field, const char *value)
{
    assert_string_equal (s_str (json_object_get (request, "fields"), field), value);
    const char *gone [] = { "provider", "config", "secrets", "spec", "command",
                            "parallelism", "credentials" };
    for (size_t i = 0; i < sizeof gone / sizeof gone [0]; i++)
        if (json_object_get (request, gone [i]))
            fail_msg ("%s sends '%s'", dx_msg_type (request), gone [i]);
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
    json_t *request = s_only_request (&fake, "group.upsert");
    assert_string_equal (s_str (request, "name"), "c1");
    s_assert_fields_only (request, "name", "slaves");
    assert_string_equal (s_str (json_object_get (request, "fields"), "attributes"),
                         "{\"foo\":\"bar\"}");
    json_decref (answer.body);

    fake.status = DX_OK;
    answer = s_run (&fake, "PUT", P "/clusters/c1/groups/old", NULL, form);
    assert_int_equal (answer.status, 200);
    assert_int_equal (json_array_size (fake.sent), 2);
    request = json_array_get (fake.sent, 1);
    assert_string_equal (dx_msg_type (request), "group.update");
    assert_string_equal (s_str (request, "group"), "old");
    s_assert_fields_only (request, "name", "slaves");
    json_decref (answer.body);
    json_decref (fake.sent);
}

static void
test_handler_config_and_deployment (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_OK);
    api_answer_t answer = s_run (&fake, "PUT", P "/clusters/c1/config", NULL,
                                 "location=Central US&masters=3&ssh_password=Xy7!secret"
                                 "&ssh_user=dexter&master_type=Basic_A2");
    if (answer.status != 200)
        fail_msg ("%s", s_str (answer.body, "message"));
    json_t *request = s_only_request (&fake, "config.put");
    assert_string_equal (s_str (request, "name"), "c1");
    s_assert_fields_only (request, "ssh_password", "Xy7!secret");
    assert_string_equal (s_str (json_object_get (request, "fields"), "location"), "Central US");
    json_decref (answer.body);

    fake.status = DX_ACCEPTED;
    answer = s_run (&fake, "PUT", P "/clusters/c1/deployment", NULL,
                    "aws_access_key_id=AKIAIOSFODNN7EXAMPLE"
                    "&aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
                    "&command=deploy");
    if (answer.status != 202)
        fail_msg ("%s", s_str (answer.body, "message"));
    assert_int_equal (json_array_size (fake.sent), 2);
    request = json_array_get (fake.sent, 1);
    assert_string_equal (dx_msg_type (request), "deployment.put");
    s_assert_fields_only (request, "command", "deploy");
    json_t *fields = json_object_get (request, "fields");
    assert_string_equal (s_str (fields, "aws_access_key_id"), "AKIAIOSFODNN7EXAMPLE");
    assert_non_null (s_str (fields, "aws_secret_access_key"));
    assert_null (json_object_get (fields, "parallelism"));     /* the scheduler's default */
    json_decref (answer.body);
    json_decref (fake.sent);
}

/*  Fields the cluster's provider does not take: the scheduler's INVALID
    reply, with every fault, is the same 400 the api made before. */
static void
test_handler_invalid_for_provider (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_INVALID);
    fake.extra = json_pack ("{s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}]}",
                            "field", "credentials", "message", "not for aws",
                            "errors", "field", "credentials", "message", "not for aws",
                            "field", "aws_access_key_id", "message", "required");
    api_answer_t answer = s_run (&fake, "PUT", P "/clusters/c1/deployment", NULL,
                                 "command=deploy&credentials=abc");
    s_assert_error (&answer, 400, "INVALID");
    assert_string_equal (s_str (answer.body, "field"), "credentials");
    assert_string_equal (s_str (answer.body, "message"), "not for aws");
    assert_int_equal (json_array_size (json_object_get (answer.body, "errors")), 2);
    s_only_request (&fake, "deployment.put");
    json_decref (answer.body);
    json_decref (fake.extra);
    json_decref (fake.sent);
}

/*  A write on a cluster that does not exist: the write's own 404. */
static void
test_handler_unknown_cluster (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_init (&fake, DX_NOT_FOUND);
    fake.extra = json_pack ("{s:s}", "field", "name");
    api_answer_t answer = s_run (&fake, "PUT", P "/clusters/c1/config", NULL, "masters=3");
    s_assert_error (&answer, 404, "NOT_FOUND");
    assert_string_equal (s_str (answer.body, "field"), "name");
    s_only_request (&fake, "config.put");
    json_decref (answer.body);
    json_decref (fake.extra);
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
            /* What failed inside (the store's error text, say) is logged,
               not answered. */
            const char *message = s_str (answer.body, "message");
            assert_true ((cases [i].http == 500) == !strstr (message, "scripted"));
        }
        else
            assert_true (json_is_object (answer.body));       /* {} without a body */
        json_decref (answer.body);
        json_decref (fake.sent);
    }
    /* No status at all, or no reply (out of memory): 500. */
    json_t *replies [] = { json_object (), NULL };
    for (size_t i = 0; i < 2; i++) {
        api_answer_t answer;
        api_handler_reply (replies [i], &answer);
        s_assert_error (&answer, 500, DX_INTERNAL);
        json_decref (answer.body);
        json_decref (replies [i]);
    }
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
    s_assert_error (&answer, 503, "UNAVAILABLE");
    s_only_request (&fake, "group.update");
    json_decref (answer.body);
    json_decref (fake.sent);
}

/*  The request takes the body's fields over: freeing a request that is
    never sent (the client went away, the api stops) frees them too. */
static void
test_handler_request_owns_fields (void **state)
{
    (void) state;
    api_match_t match;
    api_route_match ("PUT", P "/clusters/c1/config", &match);
    api_query_t args = { 0 };
    api_fault_t fault;
    json_t *fields = api_body_parse_form ("masters=3", 9, &fault);
    api_answer_t answer;
    json_t *request = api_handler_request (&match, &args, &fields, &answer);
    assert_null (fields);
    assert_string_equal (dx_msg_type (request), "config.put");
    assert_string_equal (s_str (json_object_get (request, "fields"), "masters"), "3");
    json_decref (request);
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
        cmocka_unit_test (test_handler_plain_routes),
        cmocka_unit_test (test_handler_force_and_events),
        cmocka_unit_test (test_handler_string_body),
        cmocka_unit_test (test_handler_create),
        cmocka_unit_test (test_handler_create_invalid),
        cmocka_unit_test (test_handler_group_upsert_and_update),
        cmocka_unit_test (test_handler_config_and_deployment),
        cmocka_unit_test (test_handler_invalid_for_provider),
        cmocka_unit_test (test_handler_unknown_cluster),
        cmocka_unit_test (test_handler_reply_statuses),
        cmocka_unit_test (test_handler_reply_errors),
        cmocka_unit_test (test_handler_unavailable),
        cmocka_unit_test (test_handler_request_owns_fields),
        cmocka_unit_test (test_error_body),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
