/*  Unit tests for common/dx_http.c against a one-shot HTTP server on a
    loopback port, run by a thread of this test: what goes on the wire
    (method, body, headers, no Expect, the SigV4 Authorization and session
    token, no secret), answers (status, body, content type, headers,
    Retry-After), percent-encoding, the body cap,
    refused header lists, connection failures, timeouts and the retry
    classification. SigV4 correctness itself is proven against botocore in
    test_aws_ec2. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "dx_http.h"
#include "dx_retry.h"
#include "dx_util.h"

//  A server for one exchange: it accepts one connection, reads one request
//  (headers and Content-Length body), waits delay_ms, answers, closes.

typedef struct {
    int listener;
    int port;
    pthread_t thread;
    /* the answer */
    int status;
    const char *content_type;   /* NULL: no Content-Type header */
    const char *headers;        /* more header lines, each ending in CR LF; NULL: none */
    char *body;
    size_t body_len;
    int delay_ms;
    /* what came */
    char *request;              /* headers and body, NUL-terminated */
    size_t request_len;
    char *request_body;         /* points into request */
} s_server_t;

static void *
s_serve (void *arg)
{
    s_server_t *s = arg;
    int fd = accept (s->listener, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t cap = 1 << 16, len = 0, need = 0;
    char *buf = malloc (cap + 1);
    while (1) {
        if (len == cap) {
            cap *= 2;
            buf = realloc (buf, cap + 1);
        }
        ssize_t n = recv (fd, buf + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t) n;
        buf [len] = 0;
        char *end = strstr (buf, "\r\n\r\n");
        if (end && !need) {
            const char *cl = strcasestr (buf, "\r\nContent-Length:");
            need = (size_t) (end + 4 - buf) + (cl && cl < end ? strtoul (cl + 17, NULL, 10) : 0);
        }
        if (need && len >= need)
            break;
    }
    s->request = buf;
    s->request_len = len;
    char *end = strstr (buf, "\r\n\r\n");
    s->request_body = end ? end + 4 : buf + len;
    usleep ((useconds_t) s->delay_ms * 1000);
    char head [2048];
    int n = snprintf (head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s%s%s%s\r\n",
                      s->status, s->body_len, s->content_type ? "Content-Type: " : "",
                      s->content_type ? s->content_type : "", s->content_type ? "\r\n" : "",
                      s->headers ? s->headers : "");
    if (send (fd, head, (size_t) n, MSG_NOSIGNAL) == n && s->body_len)
        (void) !send (fd, s->body, s->body_len, MSG_NOSIGNAL);
    close (fd);
    return NULL;
}

static s_server_t *
s_server_start (int status, const char *content_type, const char *body, int delay_ms)
{
    s_server_t *s = calloc (1, sizeof *s);
    s->status = status;
    s->content_type = content_type;
    s->body = strdup (body);
    s->body_len = strlen (body);
    s->delay_ms = delay_ms;
    s->listener = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t alen = sizeof addr;
    assert_int_equal (bind (s->listener, (struct sockaddr *) &addr, sizeof addr), 0);
    assert_int_equal (listen (s->listener, 4), 0);
    assert_int_equal (getsockname (s->listener, (struct sockaddr *) &addr, &alen), 0);
    s->port = ntohs (addr.sin_port);
    assert_int_equal (pthread_create (&s->thread, NULL, s_serve, s), 0);
    return s;
}

static void
s_server_stop (s_server_t **s_p)
{
    s_server_t *s = *s_p;
    shutdown (s->listener, SHUT_RDWR);      /* wakes an accept() that got nothing */
    pthread_join (s->thread, NULL);
    close (s->listener);
    free (s->request);
    free (s->body);
    free (s);
    *s_p = NULL;
}

static char *
s_url (const s_server_t *s, char *buf, size_t size)
{
    snprintf (buf, size, "http://127.0.0.1:%d/path?q=1", s->port);
    return buf;
}

//  ---------------------------------------------------------------------

static void
test_post_and_answer (void **state)
{
    (void) state;
    s_server_t *s = s_server_start (201, "text/xml;charset=UTF-8", "<ok>yes</ok>", 0);
    char url [128];
    const char *headers [] = { "X-Test: one two", "Content-Type: application/x-www-form-urlencoded", NULL };
    dx_http_request_t req = { .url = s_url (s, url, sizeof url), .headers = headers,
                              .body = "a=1&b=%20", .body_len = 9 };
    dx_http_response_t *resp = dx_http_request (&req);
    s_server_stop (&s);     /* joins: the request is recorded */
    assert_non_null (resp);
    assert_int_equal (resp->curl_code, 0);
    assert_int_equal (resp->status, 201);
    assert_string_equal (resp->body, "<ok>yes</ok>");
    assert_int_equal (resp->body_len, 12);
    assert_string_equal (resp->content_type, "text/xml;charset=UTF-8");
    assert_int_equal (dx_http_classify (resp), DX_RETRY_NO);
    dx_http_response_destroy (&resp);
    assert_null (resp);
    dx_http_response_destroy (&resp);
}

static void
test_request_on_the_wire (void **state)
{
    (void) state;
    s_server_t *s = s_server_start (200, NULL, "", 0);
    char url [128];
    const char *headers [] = { "X-Test: one two", NULL };
    dx_http_request_t req = { .url = s_url (s, url, sizeof url), .headers = headers,
                              .body = "a=1&b=%20", .body_len = 9 };
    dx_http_response_t *resp = dx_http_request (&req);
    assert_int_equal (resp->status, 200);
    assert_string_equal (resp->body, "");       /* an empty body is "", not NULL */
    assert_null (resp->content_type);
    dx_http_response_destroy (&resp);
    assert_true (strncmp (s->request, "POST /path?q=1 HTTP/1.1\r\n", 25) == 0);
    assert_non_null (strstr (s->request, "\r\nX-Test: one two\r\n"));
    assert_non_null (strcasestr (s->request, "\r\nContent-Length: 9\r\n"));
    assert_null (strcasestr (s->request, "\r\nExpect:"));
    assert_string_equal (s->request_body, "a=1&b=%20");
    s_server_stop (&s);

    /* GET and other methods */
    s = s_server_start (204, NULL, "", 0);
    req = (dx_http_request_t) { .url = s_url (s, url, sizeof url) };
    resp = dx_http_request (&req);
    assert_int_equal (resp->status, 204);
    dx_http_response_destroy (&resp);
    assert_true (strncmp (s->request, "GET /path?q=1 ", 14) == 0);
    s_server_stop (&s);

    /* a POST without a body is a POST, of nothing */
    s = s_server_start (200, NULL, "", 0);
    req = (dx_http_request_t) { .method = "POST", .url = s_url (s, url, sizeof url) };
    resp = dx_http_request (&req);
    assert_int_equal (resp->status, 200);
    dx_http_response_destroy (&resp);
    assert_true (strncmp (s->request, "POST /path?q=1 ", 15) == 0);
    assert_non_null (strcasestr (s->request, "\r\nContent-Length: 0\r\n"));
    s_server_stop (&s);

    s = s_server_start (202, NULL, "", 0);
    req = (dx_http_request_t) { .method = "DELETE", .url = s_url (s, url, sizeof url) };
    resp = dx_http_request (&req);
    assert_int_equal (resp->status, 202);
    dx_http_response_destroy (&resp);
    assert_true (strncmp (s->request, "DELETE /path?q=1 ", 17) == 0);
    s_server_stop (&s);

    s = s_server_start (200, "text/plain", "", 0);
    req = (dx_http_request_t) { .method = "HEAD", .url = s_url (s, url, sizeof url) };
    resp = dx_http_request (&req);
    assert_int_equal (resp->status, 200);
    assert_string_equal (resp->content_type, "text/plain");
    dx_http_response_destroy (&resp);
    assert_true (strncmp (s->request, "HEAD /path?q=1 ", 15) == 0);
    s_server_stop (&s);
}

/*  Over 1 MiB curl would ask "Expect: 100-continue" and wait; it doesn't. */
static void
test_no_expect_for_big_bodies (void **state)
{
    (void) state;
    size_t len = 1536 * 1024;
    char *big = malloc (len);
    memset (big, 'x', len);
    s_server_t *s = s_server_start (200, NULL, "", 0);
    char url [128];
    dx_http_request_t req = { .url = s_url (s, url, sizeof url), .body = big, .body_len = len };
    int64_t t0 = dx_mono_ms ();
    dx_http_response_t *resp = dx_http_request (&req);
    assert_int_equal (resp->status, 200);
    assert_true (dx_mono_ms () - t0 < 900);      /* no 1 s Expect wait */
    dx_http_response_destroy (&resp);
    assert_null (strcasestr (s->request, "\r\nExpect:"));
    assert_int_equal (strlen (s->request_body), len);
    s_server_stop (&s);
    free (big);
}

/*  curl signs: Authorization with the scope, X-Amz-Date, the session token
    as a signed X-Amz-Security-Token header; the secret never travels. */
static void
test_sigv4_headers (void **state)
{
    (void) state;
    s_server_t *s = s_server_start (200, "text/xml", "<x/>", 0);
    char url [128];
    const char *headers [] = { "Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL };
    dx_http_request_t req = {
        .url = s_url (s, url, sizeof url), .headers = headers, .body = "Action=X", .body_len = 8,
        .aws_sigv4 = "aws:amz:eu-west-1:ec2", .aws_access_key = "AKIDTEST",
        .aws_secret_key = "SeCrEt/Key+VALUE", .aws_session_token = "TOKEN/abc=="
    };
    dx_http_response_t *resp = dx_http_request (&req);
    assert_int_equal (resp->status, 200);
    dx_http_response_destroy (&resp);
    const char *auth = strstr (s->request, "\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/");
    assert_non_null (auth);
    assert_non_null (strstr (auth, "/eu-west-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="));
    assert_non_null (strstr (s->request, "\r\nX-Amz-Date: 20"));
    assert_non_null (strstr (s->request, "\r\nX-Amz-Security-Token: TOKEN/abc==\r\n"));
    assert_null (strstr (s->request, "SeCrEt"));
    s_server_stop (&s);

    /* without a token: no token header */
    s = s_server_start (200, NULL, "", 0);
    req.url = s_url (s, url, sizeof url);
    req.aws_session_token = NULL;
    resp = dx_http_request (&req);
    dx_http_response_destroy (&resp);
    assert_null (strcasestr (s->request, "X-Amz-Security-Token"));
    assert_non_null (strstr (s->request, "SignedHeaders=content-type;host;x-amz-date,"));
    s_server_stop (&s);
}

/*  Entries curl would sign wrongly are refused before anything is sent. */
static void
test_signed_header_rules (void **state)
{
    (void) state;
    const char *bad [][2] = {
        { "Expect:", NULL }, { "X-Empty;", NULL }, { "X-Blank:   ", NULL },
        { "x-amz-date: 20260101T000000Z", NULL }, { "Authorization: AWS4-HMAC-SHA256 x", NULL },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        dx_http_request_t req = {
            .url = "http://127.0.0.1:9/", .headers = bad [i], .body = "", .body_len = 0,
            .aws_sigv4 = "aws:amz:us-west-2:ec2", .aws_access_key = "A", .aws_secret_key = "S"
        };
        dx_http_response_t *resp = dx_http_request (&req);
        assert_int_equal (resp->curl_code, CURLE_BAD_FUNCTION_ARGUMENT);
        assert_int_equal (resp->status, 0);
        assert_non_null (strstr (resp->error, "signed request"));
        assert_int_equal (dx_http_classify (resp), DX_RETRY_NO);
        dx_http_response_destroy (&resp);
    }
}

static void
test_body_cap (void **state)
{
    (void) state;
    char *big = malloc (100001);
    memset (big, 'y', 100000);
    big [100000] = 0;
    s_server_t *s = s_server_start (200, "text/plain", big, 0);
    free (big);
    char url [128];
    dx_http_request_t req = { .url = s_url (s, url, sizeof url), .max_body = 1000 };
    dx_http_response_t *resp = dx_http_request (&req);
    assert_int_equal (resp->status, 0);
    assert_int_equal (resp->curl_code, CURLE_WRITE_ERROR);
    assert_string_equal (resp->error, "response body over the size limit");
    assert_null (resp->body);
    assert_int_equal (resp->body_len, 0);
    dx_http_response_destroy (&resp);
    s_server_stop (&s);
}

static void
test_failures_and_classes (void **state)
{
    (void) state;
    /* nobody listens: a transient failure */
    s_server_t *s = s_server_start (200, NULL, "", 0);
    int port = s->port;
    s_server_stop (&s);
    char url [128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/", port);
    dx_http_request_t req = { .url = url, .timeout_ms = 2000 };
    dx_http_response_t *resp = dx_http_request (&req);
    assert_int_equal (resp->status, 0);
    assert_int_equal (resp->curl_code, CURLE_COULDNT_CONNECT);
    assert_true (strlen (resp->error) > 0);
    assert_int_equal (dx_http_classify (resp), DX_RETRY_TRANSIENT);
    dx_http_response_destroy (&resp);

    /* an answer too slow: timeout, transient */
    s = s_server_start (200, NULL, "late", 1000);
    req = (dx_http_request_t) { .url = s_url (s, url, sizeof url), .timeout_ms = 200 };
    int64_t t0 = dx_mono_ms ();
    resp = dx_http_request (&req);
    assert_true (dx_mono_ms () - t0 < 900);
    assert_int_equal (resp->curl_code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal (dx_http_classify (resp), DX_RETRY_TRANSIENT);
    dx_http_response_destroy (&resp);
    s_server_stop (&s);

    /* only http and https */
    req = (dx_http_request_t) { .url = "file:///etc/passwd" };
    resp = dx_http_request (&req);
    assert_int_equal (resp->curl_code, CURLE_UNSUPPORTED_PROTOCOL);
    assert_int_equal (dx_http_classify (resp), DX_RETRY_NO);
    dx_http_response_destroy (&resp);

    /* by status */
    const struct { long status; dx_retry_class_t cls; } table [] = {
        { 200, DX_RETRY_NO }, { 400, DX_RETRY_NO }, { 401, DX_RETRY_NO }, { 404, DX_RETRY_NO },
        { 429, DX_RETRY_THROTTLED }, { 500, DX_RETRY_TRANSIENT }, { 501, DX_RETRY_NO },
        { 502, DX_RETRY_TRANSIENT }, { 503, DX_RETRY_TRANSIENT }, { 504, DX_RETRY_TRANSIENT },
    };
    for (size_t i = 0; i < sizeof table / sizeof table [0]; i++) {
        dx_http_response_t r = { .status = table [i].status };
        assert_int_equal (dx_http_classify (&r), table [i].cls);
    }
    dx_http_response_t r = { .curl_code = CURLE_GOT_NOTHING };
    assert_int_equal (dx_http_classify (&r), DX_RETRY_TRANSIENT);
    r.curl_code = CURLE_PEER_FAILED_VERIFICATION;
    assert_int_equal (dx_http_classify (&r), DX_RETRY_NO);
}

/*  The answer's headers, by name in any case, the last of a repeated one;
    Retry-After as seconds or a date, and nothing when unreadable. */
static void
test_answer_headers (void **state)
{
    (void) state;
    s_server_t *s = s_server_start (202, NULL, "", 0);
    s->headers = "Azure-AsyncOperation: http://127.0.0.1:1/op?api-version=1 \r\n"
                 "X-Twice: one\r\nx-twice:   two\r\nRetry-After: 7\r\n";
    char url [128];
    dx_http_request_t req = { .url = s_url (s, url, sizeof url) };
    dx_http_response_t *resp = dx_http_request (&req);
    s_server_stop (&s);
    assert_int_equal (resp->status, 202);
    assert_string_equal (dx_http_header (resp, "azure-asyncoperation"), "http://127.0.0.1:1/op?api-version=1");
    assert_string_equal (dx_http_header (resp, "X-Twice"), "two");
    assert_string_equal (dx_http_header (resp, "Content-Length"), "0");
    assert_null (dx_http_header (resp, "Location"));
    assert_null (dx_http_header (resp, "X-Twic"));
    assert_int_equal (dx_http_retry_after_ms (resp), 7000);
    dx_http_response_destroy (&resp);

    const struct { const char *line; int64_t lo, hi; } cases [] = {
        { "Retry-After: 0\r\n", 0, 0 },
        { "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n", 0, 0 },      /* past */
        { "Retry-After: Fri, 31 Dec 2100 23:59:59 GMT\r\n", -1, -1 },  /* beyond a day */
        { "Retry-After: soon\r\n", -1, -1 },
        { "Retry-After: 5x\r\n", -1, -1 },
        { "Retry-After: 86401\r\n", -1, -1 },
        { "", -1, -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s = s_server_start (429, NULL, "", 0);
        s->headers = cases [i].line;
        req.url = s_url (s, url, sizeof url);
        resp = dx_http_request (&req);
        s_server_stop (&s);
        int64_t ms = dx_http_retry_after_ms (resp);
        assert_true (ms >= cases [i].lo && ms <= cases [i].hi);
        dx_http_response_destroy (&resp);
    }
    /* a date a minute ahead */
    char line [128];
    time_t later = time (NULL) + 60;
    strftime (line, sizeof line, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", gmtime (&later));
    s = s_server_start (503, NULL, "", 0);
    s->headers = line;
    req.url = s_url (s, url, sizeof url);
    resp = dx_http_request (&req);
    s_server_stop (&s);
    int64_t ms = dx_http_retry_after_ms (resp);
    assert_true (ms > 55000 && ms <= 60000);
    dx_http_response_destroy (&resp);
}

/*  RFC 3986's unreserved characters stay, every other byte is %XX. */
static void
test_escape (void **state)
{
    (void) state;
    char out [64];
    char *end = dx_http_escape_into (out, "a-Z_0.9~ +/=&\xc3\xa9");
    assert_string_equal (out, "a-Z_0.9~%20%2B%2F%3D%26%C3%A9");
    assert_ptr_equal (end, out + strlen (out));
    assert_ptr_equal (dx_http_escape_into (out, ""), out);
    assert_string_equal (out, "");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_post_and_answer),
        cmocka_unit_test (test_request_on_the_wire),
        cmocka_unit_test (test_no_expect_for_big_bodies),
        cmocka_unit_test (test_sigv4_headers),
        cmocka_unit_test (test_signed_header_rules),
        cmocka_unit_test (test_body_cap),
        cmocka_unit_test (test_failures_and_classes),
        cmocka_unit_test (test_answer_headers),
        cmocka_unit_test (test_escape),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
