/*  Unit tests for services/api/api_route.c: every route x method, Allow
    lists, 404s, names in paths, query strings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include "../../services/api/api_route.h"

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
    { P "/openapi.json", { "openapi", NULL, NULL, NULL, NULL }, "GET, HEAD, OPTIONS" },
};
#define S_PATHS (sizeof s_paths / sizeof s_paths [0])
#define S_ROUTES 18             /* the rows of the table in docs/api.md */

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
                /* Exactly the writes take a body. */
                int writes = strcmp (method, "POST") == 0 || strcmp (method, "PUT") == 0;
                assert_int_equal (match.route->body, writes);
                assert_int_equal (match.route->action != API_DO_PLAIN
                                  && match.route->action != API_DO_DOCUMENT, writes);
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
    /* Every route was reached (HEAD counts its GET twice). */
    assert_int_equal (matched, S_ROUTES + S_PATHS);
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
        /* The path is matched raw: an encoded '/' is part of the name. */
        P "/clusters/a%2fconfig", P "/clusters/a%2Fgroups%2Fg1",
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
    /* Ids are two 64-bit numbers; only the largest id cannot be read after. */
    assert_int_equal (api_route_query (route, "after=18446744073709551615-18446744073709551614",
                                       &query, &fault), 0);
    assert_int_equal (api_route_query (route, "after=18446744073709551615", &query, &fault), 0);
    const char *bad [][2] = {
        { "after=18446744073709551616", "after" }, { "after=1-18446744073709551616", "after" },
        { "after=99999999999999999999-0", "after" },
        { "after=18446744073709551615-18446744073709551615", "after" },
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

/*  GET /clusters takes a page: limit (1 to DX_MSG_PAGE_MAX) and after (a
    cluster name, the last of the page before). */
static void
test_query_list (void **state)
{
    (void) state;
    const api_route_t *route = s_route ("GET", P "/clusters");
    api_query_t query;
    api_fault_t fault;
    assert_int_equal (api_route_query (route, "limit=100&after=c0042", &query, &fault), 0);
    assert_int_equal (query.limit, 100);
    assert_string_equal (query.after, "c0042");
    assert_int_equal (api_route_query (route, "limit=1000", &query, &fault), 0);
    assert_int_equal (query.limit, 1000);
    assert_string_equal (query.after, "");
    assert_int_equal (api_route_query (route, "after=a", &query, &fault), 0);
    assert_int_equal (query.limit, 0);
    const char *bad [][2] = {
        { "limit=0", "limit" }, { "limit=1001", "limit" }, { "limit=x", "limit" },
        { "limit=", "limit" }, { "limit=-5", "limit" }, { "after=", "after" },
        { "after=Upper", "after" }, { "after=1abc", "after" },
        { "after=abcdefghijklmnopq", "after" }, { "count=10", "count" },
        { "limit=1&limit=2", "limit" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        if (api_route_query (route, bad [i][0], &query, &fault) != -1)
            fail_msg ("'%s' accepted", bad [i][0]);
        assert_string_equal (fault.field, bad [i][1]);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_every_route_and_method),
        cmocka_unit_test (test_names_from_path),
        cmocka_unit_test (test_trailing_slash),
        cmocka_unit_test (test_unknown_paths),
        cmocka_unit_test (test_invalid_names),
        cmocka_unit_test (test_odd_methods),
        cmocka_unit_test (test_query_force),
        cmocka_unit_test (test_query_elsewhere),
        cmocka_unit_test (test_query_events),
        cmocka_unit_test (test_query_list),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
