/*  Unit tests for services/api/api_deadline.c, on socket pairs: when a
    request's time runs, that an overdue connection is shut down (its peer
    reads the end) and the others are not, soonest first. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../../services/api/api_deadline.h"

#define LIMIT 1000

/*  A connected pair: [0] the api's side, [1] the client's. */
static void
s_pair (int fds [2])
{
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, fds), 0);
}

/*  true if the client's side of the pair reads the end of input now. */
static bool
s_ended (const int fds [2])
{
    char byte;
    return recv (fds [1], &byte, 1, MSG_DONTWAIT) == 0;
}

static void
s_close (int fds [2])
{
    close (fds [0]);
    close (fds [1]);
}

/*  A connection's first request runs from its opening; at its deadline
    the connection is cut off, not before. */
static void
test_deadline_cuts_off (void **state)
{
    (void) state;
    api_deadline_t *deadline = api_deadline_new (LIMIT);
    assert_non_null (deadline);
    int fds [2];
    s_pair (fds);
    assert_int_equal (api_deadline_timeout (deadline, 0), -1);
    assert_int_equal (api_deadline_open (deadline, fds [0], 100), 0);
    assert_int_equal (api_deadline_timeout (deadline, 600), LIMIT - 500);
    assert_int_equal (api_deadline_expire (deadline, 100 + LIMIT - 1), 0);
    assert_false (s_ended (fds));
    assert_false (api_deadline_cut (deadline, fds [0]));
    assert_int_equal (api_deadline_timeout (deadline, 5000), 0);
    assert_int_equal (api_deadline_expire (deadline, 100 + LIMIT), 1);
    assert_true (s_ended (fds));
    assert_true (api_deadline_cut (deadline, fds [0]));
    assert_int_equal (api_deadline_timeout (deadline, 5000), -1);
    api_deadline_close (deadline, fds [0]);
    assert_false (api_deadline_cut (deadline, fds [0]));
    s_close (fds);
    api_deadline_destroy (&deadline);
    assert_null (deadline);
    api_deadline_destroy (&deadline);
}

/*  Once the request is in, its time stops: neither the wait for its
    answer nor the idle time before the next request counts. The next
    request's time runs from its first byte, and bytes while a request is
    in do not start it. */
static void
test_deadline_request_cycle (void **state)
{
    (void) state;
    api_deadline_t *deadline = api_deadline_new (LIMIT);
    int fds [2];
    s_pair (fds);
    api_deadline_open (deadline, fds [0], 0);
    api_deadline_arrived (deadline, fds [0]);
    api_deadline_start (deadline, fds [0], 10);        /* pipelined bytes */
    assert_int_equal (api_deadline_timeout (deadline, 20), -1);
    assert_int_equal (api_deadline_expire (deadline, 10 * LIMIT), 0);
    api_deadline_idle (deadline, fds [0]);
    assert_int_equal (api_deadline_expire (deadline, 20 * LIMIT), 0);
    api_deadline_start (deadline, fds [0], 30 * LIMIT);
    api_deadline_start (deadline, fds [0], 31 * LIMIT);    /* runs already */
    assert_int_equal (api_deadline_timeout (deadline, 30 * LIMIT), LIMIT);
    assert_int_equal (api_deadline_expire (deadline, 31 * LIMIT - 1), 0);
    assert_false (s_ended (fds));
    assert_int_equal (api_deadline_expire (deadline, 31 * LIMIT), 1);
    assert_true (s_ended (fds));
    s_close (fds);
    api_deadline_destroy (&deadline);
}

/*  Several connections fall due in the order their time started; one
    whose request came in or which closed is not cut off. */
static void
test_deadline_order (void **state)
{
    (void) state;
    api_deadline_t *deadline = api_deadline_new (LIMIT);
    int a [2], b [2], c [2], d [2];
    s_pair (a);
    s_pair (b);
    s_pair (c);
    s_pair (d);
    api_deadline_open (deadline, a [0], 0);
    api_deadline_open (deadline, b [0], 100);
    api_deadline_open (deadline, c [0], 200);
    api_deadline_open (deadline, d [0], 300);
    api_deadline_arrived (deadline, a [0]);
    api_deadline_close (deadline, c [0]);
    assert_int_equal (api_deadline_timeout (deadline, 0), 100 + LIMIT);
    assert_int_equal (api_deadline_expire (deadline, 250 + LIMIT), 1);
    assert_true (s_ended (b));
    assert_false (s_ended (a));
    assert_false (s_ended (c));
    assert_false (s_ended (d));
    assert_int_equal (api_deadline_timeout (deadline, 250 + LIMIT), 50);
    assert_int_equal (api_deadline_expire (deadline, 300 + LIMIT), 1);
    assert_true (s_ended (d));
    /* A socket number comes back for a new connection: a new time. */
    api_deadline_close (deadline, d [0]);
    api_deadline_open (deadline, d [0], 5000);
    assert_false (api_deadline_cut (deadline, d [0]));
    assert_int_equal (api_deadline_timeout (deadline, 5000), LIMIT);
    s_close (a);
    s_close (b);
    s_close (c);
    s_close (d);
    api_deadline_destroy (&deadline);
}

/*  Sockets select cannot take are refused, and ignored elsewhere. */
static void
test_deadline_range (void **state)
{
    (void) state;
    api_deadline_t *deadline = api_deadline_new (LIMIT);
    assert_int_equal (api_deadline_open (deadline, FD_SETSIZE, 0), -1);
    assert_int_equal (api_deadline_open (deadline, -1, 0), -1);
    api_deadline_start (deadline, FD_SETSIZE, 0);
    api_deadline_arrived (deadline, FD_SETSIZE);
    api_deadline_idle (deadline, FD_SETSIZE);
    api_deadline_close (deadline, FD_SETSIZE);
    assert_false (api_deadline_cut (deadline, FD_SETSIZE));
    assert_int_equal (api_deadline_timeout (deadline, 0), -1);
    api_deadline_destroy (&deadline);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_deadline_cuts_off),
        cmocka_unit_test (test_deadline_request_cycle),
        cmocka_unit_test (test_deadline_order),
        cmocka_unit_test (test_deadline_range),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
