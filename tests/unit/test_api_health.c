/*  Unit tests for services/api/api_health.c and the probes' routes: GET
    /healthz and /readyz outside API_PREFIX, the health.get request, and
    every kind of reply made into /readyz's answer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include "../../services/api/api_health.h"
#include "../../services/api/api_route.h"
#include "dx_msg.h"

/*  The answer to a reply made of status, body (taken) and message. */
static api_answer_t
s_ready (const char *status, json_t *body, const char *message)
{
    json_t *request = api_health_request ();
    json_t *reply = status ? dx_reply_new (request, status, body) : NULL;
    if (reply && message)
        json_object_set_new (reply, "message", json_string (message));
    api_answer_t answer;
    api_health_ready (reply, &answer);
    assert_null (answer.text);
    assert_non_null (answer.body);
    json_decref (reply);
    json_decref (request);
    return answer;
}

static const char *
s_str (const api_answer_t *answer, const char *key)
{
    return json_string_value (json_object_get (answer->body, key));
}

static void
test_alive (void **state)
{
    (void) state;
    api_answer_t answer;
    api_health_alive (&answer);
    assert_int_equal (answer.status, 200);
    assert_null (answer.text);
    assert_string_equal (s_str (&answer, "status"), "ok");
    assert_int_equal (json_object_size (answer.body), 1);
    json_decref (answer.body);
}

static void
test_request (void **state)
{
    (void) state;
    json_t *request = api_health_request ();
    assert_string_equal (dx_msg_type (request), "health.get");
    assert_null (json_object_get (request, "text"));        /* its body as a value */
    assert_null (json_object_get (request, "name"));
    json_object_set_new (request, "deadline", json_integer (1));
    char *frame;
    size_t len;
    assert_int_equal (dx_msg_encode (request, &frame, &len), 0);
    char err [DX_ERR_LEN];
    json_t *decoded = dx_msg_decode (frame, len, err, sizeof err);
    assert_non_null (decoded);      /* the codec's schema takes it */
    json_decref (decoded);
    free (frame);
    json_decref (request);
}

/*  Redis serves: 200, ready, the counts as the scheduler gave them. */
static void
test_ready (void **state)
{
    (void) state;
    api_answer_t answer = s_ready (DX_OK, json_pack ("{s:s, s:{s:i, s:i, s:i}}", "redis", "ok",
                                   "workers", "aws", 2, "azure", 0, "vpn", 1), NULL);
    assert_int_equal (answer.status, 200);
    assert_true (json_is_true (json_object_get (answer.body, "ready")));
    assert_string_equal (s_str (&answer, "scheduler"), "ok");
    assert_string_equal (s_str (&answer, "redis"), "ok");
    json_t *workers = json_object_get (answer.body, "workers");
    assert_int_equal (json_integer_value (json_object_get (workers, "aws")), 2);
    assert_int_equal (json_integer_value (json_object_get (workers, "azure")), 0);
    assert_int_equal (json_object_size (answer.body), 4);
    json_decref (answer.body);
}

/*  Redis does not serve: 503, naming it, with the counts. */
static void
test_redis_missing (void **state)
{
    (void) state;
    api_answer_t answer = s_ready (DX_OK, json_pack ("{s:s, s:{s:i, s:i, s:i}}", "redis",
                                   "unreachable: Connection refused", "workers",
                                   "aws", 1, "azure", 1, "vpn", 0), NULL);
    assert_int_equal (answer.status, 503);
    assert_true (json_is_false (json_object_get (answer.body, "ready")));
    assert_string_equal (s_str (&answer, "scheduler"), "ok");
    assert_string_equal (s_str (&answer, "redis"), "unreachable: Connection refused");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (answer.body, "workers"),
                                                           "azure")), 1);
    json_decref (answer.body);
}

/*  No answer in time (the loop's made-up reply), a scheduler that does not
    serve health.get, a reply without the fields, none at all: 503 naming
    the scheduler, Redis unknown, no counts. */
static void
test_scheduler_missing (void **state)
{
    (void) state;
    struct {
        const char *status;
        json_t *body;
        const char *message, *said;
    } cases [] = {
        { DX_UNAVAILABLE, NULL, "the scheduler did not answer within 1000 ms (no connection "
          "to it); the request was not carried out",
          "the scheduler did not answer within 1000 ms (no connection to it)" },
        { DX_INVALID, NULL, "the scheduler does not serve 'health.get' messages",
          "the scheduler does not serve 'health.get' messages" },
        { DX_OK, json_pack ("{s:s}", "redis", "ok"), NULL, "the scheduler gave no health" },
        { NULL, NULL, NULL, "the scheduler gave no health" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        api_answer_t answer = s_ready (cases [i].status, cases [i].body, cases [i].message);
        assert_int_equal (answer.status, 503);
        assert_true (json_is_false (json_object_get (answer.body, "ready")));
        assert_string_equal (s_str (&answer, "scheduler"), cases [i].said);
        assert_string_equal (s_str (&answer, "redis"), "unknown");
        assert_true (json_is_null (json_object_get (answer.body, "workers")));
        json_decref (answer.body);
    }
}

/*  The probes' routes: at the root, not under the prefix; GET, HEAD and
    OPTIONS; marked as probes (no token), the API's routes not. */
static void
test_routes (void **state)
{
    (void) state;
    api_match_t match;
    const char *paths [] = { "/healthz", "/readyz", "/healthz/", "/readyz/" };
    for (size_t i = 0; i < 4; i++) {
        api_route_match ("GET", paths [i], &match);
        assert_int_equal (match.status, 200);
        assert_true (match.probe);
        assert_true (api_route_probe (match.route));
        assert_int_equal (match.route->action, paths [i][1] == 'h' ? API_DO_ALIVE : API_DO_READY);
        api_route_match ("HEAD", paths [i], &match);
        assert_int_equal (match.status, 200);
        api_route_match ("OPTIONS", paths [i], &match);
        assert_int_equal (match.status, 204);
        assert_true (match.probe);
        assert_string_equal (match.allow, "GET, HEAD, OPTIONS");
        api_route_match ("POST", paths [i], &match);
        assert_int_equal (match.status, 405);
        assert_true (match.probe);
    }
    api_route_match ("GET", "/readyz", &match);
    assert_string_equal (match.route->type, "health.get");
    const char *unknown [] = { API_PREFIX "/healthz", API_PREFIX "/readyz", "/livez", "/",
                               "/healthz/x", "//healthz", "/clusters", "/openapi.json" };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown [0]; i++) {
        api_route_match ("GET", unknown [i], &match);
        assert_int_equal (match.status, 404);
        assert_false (match.probe);
    }
    api_route_match ("GET", API_PREFIX "/clusters", &match);
    assert_int_equal (match.status, 200);
    assert_false (match.probe);
    assert_false (api_route_probe (match.route));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_alive),
        cmocka_unit_test (test_request),
        cmocka_unit_test (test_ready),
        cmocka_unit_test (test_redis_missing),
        cmocka_unit_test (test_scheduler_missing),
        cmocka_unit_test (test_routes),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
