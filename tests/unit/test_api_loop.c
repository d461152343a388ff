/*  Unit tests for services/api/api_loop.c: an event loop (its daemon on a
    free loopback port, its DEALER a CurveZMQ client) in front of a
    stand-in scheduler, a ROUTER of the test's own that answers when the
    test says so. Lists are shared: the requests for the same page that
    wait to be sent go as one scheduler request, whose one reply answers
    each of them, and the next is held while one is in flight, so that a
    list answers only requests made before the scheduler read it; other
    requests pass the held ones. A list in flight that times out lets the
    held one go. Every wait is bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dx_curve.h"
#include "dx_msg.h"
#include "harness.h"
#include "../../services/api/api_loop.h"

#define WAIT_MS 5000            /* bound of every expected message or answer */
#define SHORT_MS 2000           /* the timeout of test_expiry_releases */

typedef struct {
    char dir [64];
    dx_curve_t *server, *client;
    zsock_t *router;            /* the stand-in scheduler */
    api_loop_t *loop;
    int port;                   /* the api's */
} s_fixture_t;

/*  The fixture, with a loop whose requests time out after timeout_ms. */
static int
s_setup_with (void **state, int timeout_ms)
{
    unsetenv ("DEXTER_CURVE_DIR");
    unsetenv ("DEXTER_CURVE_KEY_FILE");
    unsetenv ("DEXTER_CURVE_SERVER_KEY");
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    assert_int_equal (th_tmpdir (f->dir, sizeof f->dir, "apiloop"), 0);
    f->server = dx_curve_server_new (f->dir);
    f->client = dx_curve_client_new (f->dir, DX_CURVE_API, "api");
    assert_non_null (f->server);
    assert_non_null (f->client);
    f->router = zsock_new (ZMQ_ROUTER);
    assert_non_null (f->router);
    zsock_set_linger (f->router, 0);
    assert_int_equal (dx_curve_server_apply (f->server, f->router, DX_CURVE_API), 0);
    assert_true (zsock_bind (f->router, "tcp://127.0.0.1:*") > 0);

    struct sockaddr_storage addr;
    socklen_t addr_len;
    char err [128];
    assert_int_equal (api_http_resolve ("127.0.0.1:0", &addr, &addr_len, err, sizeof err), 0);
    api_loop_config_t config = {
        .endpoint = zsock_endpoint (f->router), .curve = f->client, .timeout_ms = timeout_ms,
        .http = { .addr = (struct sockaddr *) &addr, .listen_fd = -1, .request_ms = WAIT_MS }
    };
    f->loop = api_loop_new (&config);
    assert_non_null (f->loop);
    f->port = (int) api_http_port (api_loop_http (f->loop));
    assert_int_equal (api_loop_start (f->loop), 0);
    *state = f;
    return 0;
}

static int
s_setup (void **state)
{
    return s_setup_with (state, WAIT_MS);
}

static int
s_setup_short (void **state)
{
    return s_setup_with (state, SHORT_MS);
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    api_loop_destroy (&f->loop);
    zsock_destroy (&f->router);
    dx_curve_destroy (&f->client);
    dx_curve_destroy (&f->server);
    th_tmpdir_remove (f->dir, 0);
    free (f);
    return 0;
}

/*  A connection to the api. */
static int
s_connect (s_fixture_t *f)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) f->port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert_int_equal (connect (fd, (struct sockaddr *) &sin, sizeof sin), 0);
    return fd;
}

/*  Sends GET path on fd. */
static void
s_get (int fd, const char *path)
{
    char line [256];
    int len = snprintf (line, sizeof line, "GET /api/v1.0%s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    assert_int_equal (send (fd, line, (size_t) len, 0), len);
}

/*  Reads one answer from fd: its status, and its body into body (cut at
    size). Fails the test when none is whole within WAIT_MS. */
static int
s_answer (int fd, char *body, size_t size)
{
    static char buf [65536];
    size_t len = 0;
    int64_t until = zclock_mono () + WAIT_MS;
    while (true) {
        buf [len] = 0;
        char *end = strstr (buf, "\r\n\r\n");
        const char *cl = strcasestr (buf, "\r\nContent-Length: ");
        if (end && cl) {
            size_t want = (size_t) atol (cl + 18);
            if (len >= (size_t) (end + 4 - buf) + want) {
                snprintf (body, size, "%.*s", (int) want, end + 4);
                return atoi (buf + 9);
            }
        }
        int64_t left = until - zclock_mono ();
        assert_true (left > 0);
        struct pollfd p = { fd, POLLIN, 0 };
        assert_int_equal (poll (&p, 1, (int) left), 1);
        ssize_t n = recv (fd, buf + len, sizeof buf - 1 - len, 0);
        assert_true (n > 0);
        len += (size_t) n;
    }
}

/*  The next request the stand-in scheduler reads (WAIT_MS at most), its
    sender's identity into *identity. */
static json_t *
s_next (s_fixture_t *f, zframe_t **identity)
{
    zpoller_t *poller = zpoller_new (f->router, NULL);
    void *which = zpoller_wait (poller, WAIT_MS);
    zpoller_destroy (&poller);
    assert_ptr_equal (which, f->router);
    zframe_t *raw = NULL;
    char err [DX_ERR_LEN];
    json_t *request = dx_msg_recv (f->router, identity, &raw, err, sizeof err);
    zframe_destroy (&raw);
    assert_non_null (request);
    return request;
}

/*  Answers request with OK and text as its body's JSON text. */
static void
s_reply (s_fixture_t *f, zframe_t **identity, json_t *request, const char *text)
{
    json_t *reply = dx_reply_new (request, DX_OK, NULL);
    assert_non_null (reply);
    assert_int_equal (json_object_set_new (reply, "text", json_string (text)), 0);
    assert_int_equal (dx_msg_send (f->router, *identity, reply), 0);
    json_decref (reply);
    json_decref (request);
    zframe_destroy (identity);
}

/*  1 if a request waits on the stand-in's ROUTER now. */
static int
s_waiting (s_fixture_t *f)
{
    return (zsock_events (f->router) & ZMQ_POLLIN) != 0;
}

/*  Three lists and a GET: the first list goes at once; the two made while
    it is in flight are held (the GET made after them passes them) and go
    together once it is answered, as one request whose reply answers
    both; the first list's reply answers only the first. */
static void
test_lists_shared (void **state)
{
    s_fixture_t *f = *state;
    int first = s_connect (f), second = s_connect (f), third = s_connect (f),
        probe = s_connect (f);
    zframe_t *identity = NULL;
    char body [256];

    s_get (first, "/clusters");
    json_t *list = s_next (f, &identity);
    assert_string_equal (dx_msg_type (list), "cluster.list");
    zframe_t *list_identity = identity;
    identity = NULL;

    s_get (second, "/clusters");
    s_get (third, "/clusters");
    s_get (probe, "/clusters/probe");
    json_t *get = s_next (f, &identity);
    assert_string_equal (dx_msg_type (get), "cluster.get");
    s_reply (f, &identity, get, "{\"name\":\"probe\"}");
    assert_int_equal (s_answer (probe, body, sizeof body), 200);
    assert_string_equal (body, "{\"name\":\"probe\"}\n");
    assert_false (s_waiting (f));           /* the lists are held */

    s_reply (f, &list_identity, list, "{\"clusters\":[],\"count\":0}");
    assert_int_equal (s_answer (first, body, sizeof body), 200);
    assert_string_equal (body, "{\"clusters\":[],\"count\":0}\n");

    list = s_next (f, &identity);
    assert_string_equal (dx_msg_type (list), "cluster.list");
    s_reply (f, &identity, list, "{\"clusters\":[{\"name\":\"a\"}],\"count\":1}");
    assert_int_equal (s_answer (second, body, sizeof body), 200);
    assert_string_equal (body, "{\"clusters\":[{\"name\":\"a\"}],\"count\":1}\n");
    assert_int_equal (s_answer (third, body, sizeof body), 200);
    assert_string_equal (body, "{\"clusters\":[{\"name\":\"a\"}],\"count\":1}\n");

    close (first);
    close (second);
    close (third);
    close (probe);
}

/*  Lists of different pages are not shared: each goes at once. */
static void
test_pages_apart (void **state)
{
    s_fixture_t *f = *state;
    int all = s_connect (f), page = s_connect (f);
    zframe_t *identity = NULL, *other = NULL;
    char body [256];

    s_get (all, "/clusters");
    json_t *first = s_next (f, &identity);
    s_get (page, "/clusters?limit=1");
    json_t *second = s_next (f, &other);
    assert_null (json_object_get (first, "limit"));
    assert_int_equal (json_integer_value (json_object_get (second, "limit")), 1);
    s_reply (f, &other, second, "{\"clusters\":[],\"count\":0,\"next\":null}");
    s_reply (f, &identity, first, "{\"clusters\":[],\"count\":0}");
    assert_int_equal (s_answer (page, body, sizeof body), 200);
    assert_string_equal (body, "{\"clusters\":[],\"count\":0,\"next\":null}\n");
    assert_int_equal (s_answer (all, body, sizeof body), 200);
    assert_string_equal (body, "{\"clusters\":[],\"count\":0}\n");
    close (all);
    close (page);
}

/*  A list in flight that is never answered: its caller gets its 503 at
    its deadline, and the list held behind it goes then, for the callers
    that wait for it, who get the answer it brings. */
static void
test_expiry_releases (void **state)
{
    s_fixture_t *f = *state;
    int first = s_connect (f), second = s_connect (f);
    zframe_t *identity = NULL;
    char body [512];

    s_get (first, "/clusters");
    json_t *lost = s_next (f, &identity);
    zframe_destroy (&identity);
    json_decref (lost);
    zclock_sleep (SHORT_MS / 2);            /* the second's deadline comes later */
    s_get (second, "/clusters");
    assert_int_equal (s_answer (first, body, sizeof body), 503);
    assert_non_null (strstr (body, "may or may not"));
    json_t *held = s_next (f, &identity);
    assert_string_equal (dx_msg_type (held), "cluster.list");
    s_reply (f, &identity, held, "{\"clusters\":[],\"count\":0}");
    assert_int_equal (s_answer (second, body, sizeof body), 200);
    assert_string_equal (body, "{\"clusters\":[],\"count\":0}\n");
    close (first);
    close (second);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_lists_shared, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_pages_apart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_expiry_releases, s_setup_short, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
