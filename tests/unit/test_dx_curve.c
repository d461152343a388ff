/*  Unit tests for common/dx_curve.c: the key files (made 0600 in 0700
    directories on first start, the same keys read back after, bad files
    refused), the settings that name them, and the links themselves: a
    scheduler ROUTER admits a listed client, a client listed after it
    started, and a client given the scheduler's key by setting, and lets
    nothing through from a peer with no key, an unlisted key, or a client
    of the other link. Every wait is bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dx_curve.h"
#include "harness.h"

#define WAIT_MS 3000            /* bound of every expected message */
#define QUIET_MS 500            /* how long nothing must come */

static char s_dir [64];         /* the test's DEXTER_DATA_DIR */

static int
s_setup (void **state)
{
    (void) state;
    unsetenv ("DEXTER_CURVE_DIR");
    unsetenv ("DEXTER_CURVE_KEY_FILE");
    unsetenv ("DEXTER_CURVE_SERVER_KEY");
    return th_tmpdir (s_dir, sizeof s_dir, "curve");
}

static int
s_teardown (void **state)
{
    (void) state;
    th_tmpdir_remove (s_dir, 0);
    return 0;
}

/*  The permission bits of path, or -1 if there is no such file. */
static int
s_mode (const char *fmt, ...)
{
    char path [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (path, sizeof path, fmt, args);
    va_end (args);
    struct stat st;
    return stat (path, &st)? -1: (int) (st.st_mode & 07777);
}

/*  The whole of a (small) file, or "" if there is none. */
static char *
s_slurp (const char *path, char *buf, size_t size)
{
    buf [0] = 0;
    int fd = open (path, O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read (fd, buf, size - 1);
        buf [n > 0? n: 0] = 0;
        close (fd);
    }
    return buf;
}

/*  The names of the files in dir (one per line) and how many there are. */
static int
s_list (const char *dir, char *names, size_t size)
{
    int count = 0;
    names [0] = 0;
    DIR *d = opendir (dir);
    struct dirent *entry;
    while (d && (entry = readdir (d)))
        if (entry->d_name [0] != '.') {
            strncat (names, entry->d_name, size - strlen (names) - 2);
            strcat (names, "\n");
            count++;
        }
    if (d)
        closedir (d);
    return count;
}

/*  The public key (Z85) of the public certificate at path. */
static void
s_public_key (const char *path, char key [41])
{
    zcert_t *cert = zcert_load (path);
    assert_non_null (cert);
    snprintf (key, 41, "%s", zcert_public_txt (cert));
    zcert_destroy (&cert);
}

//  ---------------------------------------------------------------------
//  Files

static void
test_server_files (void **state)
{
    (void) state;
    dx_curve_t *curve = dx_curve_server_new (s_dir);
    assert_non_null (curve);
    assert_int_equal (s_mode ("%s/curve-scheduler.key", s_dir), 0600);
    assert_int_equal (s_mode ("%s/curve", s_dir), 0700);
    assert_int_equal (s_mode ("%s/curve/scheduler.cert", s_dir), 0600);
    assert_int_equal (s_mode ("%s/curve/api", s_dir), 0700);
    assert_int_equal (s_mode ("%s/curve/workers", s_dir), 0700);
    char path [256], key [4096], cert [4096], first [41], again [41];
    snprintf (path, sizeof path, "%s/curve-scheduler.key", s_dir);
    s_slurp (path, key, sizeof key);
    assert_non_null (strstr (key, "secret-key = \""));
    snprintf (path, sizeof path, "%s/curve/scheduler.cert", s_dir);
    s_slurp (path, cert, sizeof cert);
    assert_null (strstr (cert, "secret-key"));
    s_public_key (path, first);
    dx_curve_destroy (&curve);
    assert_null (curve);

    //  Started again: the same key pair, the same certificate
    curve = dx_curve_server_new (s_dir);
    assert_non_null (curve);
    char now [4096];
    snprintf (path, sizeof path, "%s/curve-scheduler.key", s_dir);
    assert_string_equal (s_slurp (path, now, sizeof now), key);
    snprintf (path, sizeof path, "%s/curve/scheduler.cert", s_dir);
    s_public_key (path, again);
    assert_string_equal (again, first);
    dx_curve_destroy (&curve);
    dx_curve_destroy (&curve);          /* safe on NULL */
}

static void
test_client_files (void **state)
{
    (void) state;
    dx_curve_t *curve = dx_curve_client_new (s_dir, DX_CURVE_WORKERS, "aws-worker");
    assert_non_null (curve);
    assert_int_equal (s_mode ("%s/curve-aws-worker.key", s_dir), 0600);
    assert_int_equal (s_mode ("%s/curve/workers", s_dir), 0700);
    char dir [256], names [1024], path [1400];
    snprintf (dir, sizeof dir, "%s/curve/workers", s_dir);
    assert_int_equal (s_list (dir, names, sizeof names), 1);
    assert_true (strncmp (names, "aws-worker-", 11) == 0);
    *strchr (names, '\n') = 0;
    assert_int_equal (s_mode ("%s/%s", dir, names), 0600);
    snprintf (path, sizeof path, "%s/%s", dir, names);
    char cert [4096];
    assert_null (strstr (s_slurp (path, cert, sizeof cert), "secret-key"));
    dx_curve_destroy (&curve);

    //  Started again, and a second process of the same data directory:
    //  one key pair, one certificate
    curve = dx_curve_client_new (s_dir, DX_CURVE_WORKERS, "aws-worker");
    dx_curve_t *twin = dx_curve_client_new (s_dir, DX_CURVE_WORKERS, "aws-worker");
    assert_non_null (curve);
    assert_non_null (twin);
    char again [1024];
    assert_int_equal (s_list (dir, again, sizeof again), 1);
    assert_int_equal (strncmp (again, names, strlen (names)), 0);
    dx_curve_destroy (&twin);
    dx_curve_destroy (&curve);
}

static void
test_settings_name_the_files (void **state)
{
    (void) state;
    char dir [256], key [256];
    snprintf (dir, sizeof dir, "%s/shared", s_dir);
    snprintf (key, sizeof key, "%s/private/mine.key", s_dir);
    setenv ("DEXTER_CURVE_DIR", dir, 1);
    setenv ("DEXTER_CURVE_KEY_FILE", key, 1);
    dx_curve_t *curve = dx_curve_client_new (s_dir, DX_CURVE_API, "api");
    assert_non_null (curve);
    assert_int_equal (s_mode ("%s", key), 0600);
    assert_int_equal (s_mode ("%s/private", s_dir), 0700);
    assert_int_equal (s_mode ("%s/api", dir), 0700);
    assert_int_equal (s_mode ("%s/curve-api.key", s_dir), -1);
    dx_curve_destroy (&curve);
}

static void
test_bad_files (void **state)
{
    (void) state;
    char path [256];
    snprintf (path, sizeof path, "%s/curve-scheduler.key", s_dir);
    dx_curve_t *curve = dx_curve_server_new (s_dir);
    assert_non_null (curve);
    dx_curve_destroy (&curve);
    char good [4096];
    s_slurp (path, good, sizeof good);

    //  Open to group or others
    assert_int_equal (chmod (path, 0640), 0);
    assert_null (dx_curve_server_new (s_dir));
    assert_int_equal (chmod (path, 0400), 0);           /* read-only is fine */
    assert_non_null ((curve = dx_curve_server_new (s_dir)));
    dx_curve_destroy (&curve);

    //  Not a key pair
    const char *bad [] = {
        "",
        "not a certificate at all\n",
        "curve\n    public-key = \"short\"\n    secret-key = \"short\"\n",
        //  A key pair whose halves do not belong together
        "curve\n    public-key = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\"\n"
        "    secret-key = \"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\"\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        unlink (path);
        assert_int_equal (th_write_file (path, bad [i], 0600), 0);
        assert_null (dx_curve_server_new (s_dir));
        assert_null (dx_curve_client_new (s_dir, DX_CURVE_API, "scheduler"));
    }
    //  Not a file
    unlink (path);
    assert_int_equal (mkdir (path, 0700), 0);
    assert_null (dx_curve_server_new (s_dir));
    rmdir (path);
    assert_int_equal (th_write_file (path, good, 0600), 0);
    assert_non_null ((curve = dx_curve_server_new (s_dir)));
    dx_curve_destroy (&curve);

    //  A scheduler's key that is not one
    setenv ("DEXTER_CURVE_SERVER_KEY", "tooshort", 1);
    assert_null (dx_curve_client_new (s_dir, DX_CURVE_API, "api"));
}


//  ---------------------------------------------------------------------
//  The links

/*  A ROUTER on a loopback port, the CURVE server of link. */
static zsock_t *
s_router (dx_curve_t *server, const char *link)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert_non_null (router);
    zsock_set_linger (router, 0);
    zsock_set_rcvtimeo (router, 0);
    assert_int_equal (dx_curve_server_apply (server, router, link), 0);
    assert_true (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    return router;
}

/*  A DEALER of client (NULL: with no key at all) to router, which sends
    "hello". */
static zsock_t *
s_dealer (dx_curve_t *client, zsock_t *router)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    zsock_set_linger (dealer, 0);
    if (client)
        assert_int_equal (dx_curve_client_apply (client, dealer), 0);
    assert_int_equal (zsock_connect (dealer, "%s", zsock_endpoint (router)), 0);
    zstr_send (dealer, "hello");
    return dealer;
}

/*  1 if router receives "hello" within ms. */
static int
s_hears (zsock_t *router, int ms)
{
    zpoller_t *poller = zpoller_new (router, NULL);
    int heard = 0;
    if (zpoller_wait (poller, ms) == router) {
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *identity = zmsg_pop (msg);
        char *text = zmsg_popstr (msg);
        heard = text && streq (text, "hello");
        zstr_free (&text);
        zframe_destroy (&identity);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    return heard;
}

/*  1 if watch says, within WAIT_MS, that the scheduler refused client. */
static int
s_refused (dx_curve_t *client, zsock_t *watch)
{
    zpoller_t *poller = zpoller_new (watch, NULL);
    int refused = 0;
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (!refused && zclock_mono () < deadline
       &&  zpoller_wait (poller, (int) (deadline - zclock_mono ())) == watch)
        refused = dx_curve_client_refused (client, watch);
    zpoller_destroy (&poller);
    return refused;
}

static void
test_links (void **state)
{
    (void) state;
    dx_curve_t *server = dx_curve_server_new (s_dir);
    assert_non_null (server);
    zsock_t *workers = s_router (server, DX_CURVE_WORKERS);
    zsock_t *api = s_router (server, DX_CURVE_API);

    //  Listed clients, each on its own link
    dx_curve_t *worker = dx_curve_client_new (s_dir, DX_CURVE_WORKERS, "aws-worker");
    dx_curve_t *gateway = dx_curve_client_new (s_dir, DX_CURVE_API, "api");
    assert_non_null (worker);
    assert_non_null (gateway);
    zsock_t *dealer = s_dealer (worker, workers);
    assert_true (s_hears (workers, WAIT_MS));
    zsock_destroy (&dealer);
    dealer = s_dealer (gateway, api);
    assert_true (s_hears (api, WAIT_MS));
    zsock_destroy (&dealer);

    //  The api's key on the workers' link: refused, and told so
    dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    assert_int_equal (dx_curve_client_apply (gateway, dealer), 0);
    zsock_t *watch = dx_curve_client_watch (dealer);
    assert_non_null (watch);
    assert_int_equal (zsock_connect (dealer, "%s", zsock_endpoint (workers)), 0);
    zstr_send (dealer, "hello");
    assert_true (s_refused (gateway, watch));
    assert_false (s_hears (workers, QUIET_MS));
    zsock_destroy (&dealer);
    zsock_destroy (&watch);

    //  No key at all
    dealer = s_dealer (NULL, workers);
    assert_false (s_hears (workers, QUIET_MS));
    zsock_destroy (&dealer);

    //  A key nobody listed: a client whose certificate went elsewhere
    char elsewhere [256];
    snprintf (elsewhere, sizeof elsewhere, "%s/elsewhere", s_dir);
    setenv ("DEXTER_CURVE_DIR", elsewhere, 1);
    char key [256];
    snprintf (key, sizeof key, "%s/stranger.key", s_dir);
    setenv ("DEXTER_CURVE_KEY_FILE", key, 1);
    char server_cert [256], server_key [41];
    snprintf (server_cert, sizeof server_cert, "%s/curve/scheduler.cert", s_dir);
    s_public_key (server_cert, server_key);
    setenv ("DEXTER_CURVE_SERVER_KEY", server_key, 1);
    dx_curve_t *stranger = dx_curve_client_new (s_dir, DX_CURVE_WORKERS, "aws-worker");
    assert_non_null (stranger);
    dealer = s_dealer (stranger, workers);
    assert_false (s_hears (workers, QUIET_MS));
    zsock_destroy (&dealer);

    //  ... admitted once its certificate is copied where the scheduler
    //  looks, with nothing restarted
    char copy [512];
    snprintf (copy, sizeof copy, "cp %s/workers/*.cert %s/curve/workers/", elsewhere, s_dir);
    assert_int_equal (system (copy), 0);
    dealer = s_dealer (stranger, workers);
    assert_true (s_hears (workers, WAIT_MS));
    zsock_destroy (&dealer);

    zsock_destroy (&workers);
    zsock_destroy (&api);
    dx_curve_destroy (&stranger);
    dx_curve_destroy (&worker);
    dx_curve_destroy (&gateway);
    dx_curve_destroy (&server);
}

static void
test_client_waits_for_the_scheduler (void **state)
{
    (void) state;
    dx_curve_t *client = dx_curve_client_new (s_dir, DX_CURVE_API, "api");
    assert_non_null (client);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_int_equal (dx_curve_client_apply (client, dealer), -1);
    assert_int_equal (dx_curve_client_apply (client, dealer), -1);
    dx_curve_t *server = dx_curve_server_new (s_dir);
    assert_non_null (server);
    assert_int_equal (dx_curve_client_apply (client, dealer), 0);
    zsock_destroy (&dealer);
    dx_curve_destroy (&server);
    dx_curve_destroy (&client);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_server_files, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_client_files, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_settings_name_the_files, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_files, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_links, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_client_waits_for_the_scheduler, s_setup,
                                         s_teardown),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return rc;
}
