/*  Unit tests for services/api/api_head.c: what the api refuses in a
    request's head before routing, and with which status and code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include "../../services/api/api_head.h"

/*  A head the api takes: GET of a short URI, a few fields. */
static api_head_t
s_good (void)
{
    return (api_head_t) { .version = "HTTP/1.1", .uri = "/api/v1.0/clusters", .fields = 3 };
}

/*  Asserts that head is refused with status and code. */
static void
s_assert_refused (const api_head_t *head, int status, const char *code)
{
    api_refusal_t refusal;
    assert_int_equal (api_head_check (head, &refusal), -1);
    assert_int_equal (refusal.status, status);
    assert_string_equal (refusal.code, code);
    assert_non_null (refusal.message);
}

static void
test_head_taken (void **state)
{
    (void) state;
    api_refusal_t refusal;
    api_head_t head = s_good ();
    assert_int_equal (api_head_check (&head, &refusal), 0);
    head.version = "HTTP/1.0";
    head.uri = "/api/v1.0/clusters/c1?force=true";
    head.lengths = 1;
    assert_int_equal (api_head_check (&head, &refusal), 0);
    head = s_good ();
    head.encodings = 1;
    head.encoding = "Chunked";
    assert_int_equal (api_head_check (&head, &refusal), 0);
}

static void
test_head_versions (void **state)
{
    (void) state;
    const char *versions [] = { "HTTP/1.2", "HTTP/1.9", "HTTP/2.0", "HTTP/0.9", "", "http/1.1" };
    for (size_t i = 0; i < sizeof versions / sizeof versions [0]; i++) {
        api_head_t head = s_good ();
        head.version = versions [i];
        s_assert_refused (&head, 505, "VERSION_NOT_SUPPORTED");
    }
}

/*  A NUL anywhere in the request line, raw (which cut it short) or
    encoded, in the path or the query. */
static void
test_head_nul (void **state)
{
    (void) state;
    api_head_t head = s_good ();
    head.nul = true;
    s_assert_refused (&head, 400, "BAD_REQUEST");
    const char *uris [] = { "/api/v1.0/clusters/x%00/config", "/api/v1.0/clusters?a=%00",
                            "%00" };
    for (size_t i = 0; i < sizeof uris / sizeof uris [0]; i++) {
        head = s_good ();
        head.uri = uris [i];
        s_assert_refused (&head, 400, "BAD_REQUEST");
    }
}

static void
test_head_too_long (void **state)
{
    (void) state;
    char uri [API_URI_MAX + 2];
    memset (uri, 'a', sizeof uri - 1);
    uri [0] = '/';
    uri [API_URI_MAX] = 0;
    assert_false (api_head_too_long (uri));
    uri [API_URI_MAX] = 'a';
    uri [API_URI_MAX + 1] = 0;
    assert_true (api_head_too_long (uri));
    api_head_t head = s_good ();
    head.uri = uri;
    s_assert_refused (&head, 414, "URI_TOO_LONG");

    /* API_QUERY_MAX parameters are taken (empty ones count: the HTTP
       layer stores each), one more is not. */
    char query [256] = "/c?";
    for (int i = 1; i < API_QUERY_MAX; i++)
        strcat (query, i % 2 ? "a=1&" : "&");
    strcat (query, "z");
    assert_false (api_head_too_long (query));
    strcat (query, "&");
    assert_true (api_head_too_long (query));
    head.uri = query;
    s_assert_refused (&head, 414, "URI_TOO_LONG");
    assert_false (api_head_too_long ("/no/query/&&&&&&&&&&&&&&&&&&&&&&"));
}

static void
test_head_fields (void **state)
{
    (void) state;
    api_head_t head = s_good ();
    head.fields = API_FIELDS_MAX;
    api_refusal_t refusal;
    assert_int_equal (api_head_check (&head, &refusal), 0);
    head.fields++;
    s_assert_refused (&head, 431, "HEADERS_TOO_LARGE");
}

/*  Where the body ends must be beyond doubt. */
static void
test_head_framing (void **state)
{
    (void) state;
    api_head_t head = s_good ();
    head.lengths = 2;
    s_assert_refused (&head, 400, "BAD_REQUEST");
    const char *encodings [] = { "gzip", "gzip, chunked", "chunked, gzip", "identity", "" };
    for (size_t i = 0; i < sizeof encodings / sizeof encodings [0]; i++) {
        head = s_good ();
        head.encodings = 1;
        head.encoding = encodings [i];
        s_assert_refused (&head, 400, "BAD_REQUEST");
    }
    head = s_good ();
    head.encodings = 2;
    head.encoding = "chunked";
    s_assert_refused (&head, 400, "BAD_REQUEST");
    head.encodings = 1;
    head.lengths = 1;
    s_assert_refused (&head, 400, "BAD_REQUEST");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_head_taken),
        cmocka_unit_test (test_head_versions),
        cmocka_unit_test (test_head_nul),
        cmocka_unit_test (test_head_too_long),
        cmocka_unit_test (test_head_fields),
        cmocka_unit_test (test_head_framing),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
