/*  Unit tests for common/dx_util.c: base64, ids, time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "dx_util.h"

/*  Decodes in, asserting success, and compares with the expected bytes. */
static void
s_decode_equals (const char *in, const void *expected, size_t expected_len)
{
    size_t len = 12345;
    unsigned char *out = dx_base64_decode (in, &len);
    if (!out)
        print_error ("could not decode \"%s\"\n", in);
    assert_non_null (out);
    assert_int_equal (len, expected_len);
    assert_memory_equal (out, expected, expected_len);
    assert_int_equal (out [len], 0);            /* NUL-terminated */
    free (out);
}

static void
s_decode_fails (const char *in)
{
    size_t len = 0;
    unsigned char *out = dx_base64_decode (in, &len);
    if (out)
        print_error ("\"%s\" decoded but should not\n", in);
    assert_null (out);
}

/*  RFC 4648 section 10 test vectors, both directions. */
static void
test_base64_vectors (void **state)
{
    (void) state;
    const char *plain [] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    const char *coded [] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
    for (size_t i = 0; i < 7; i++) {
        char *enc = dx_base64_encode ((const unsigned char *) plain [i], strlen (plain [i]));
        assert_non_null (enc);
        assert_string_equal (enc, coded [i]);
        free (enc);
        s_decode_equals (coded [i], plain [i], strlen (plain [i]));
    }
}

static void
test_base64_padding_optional (void **state)
{
    (void) state;
    s_decode_equals ("Zg", "f", 1);
    s_decode_equals ("Zm8", "fo", 2);
    s_decode_equals ("Zm9vYg", "foob", 4);
    s_decode_equals ("aGVsbG8gd29ybGQ", "hello world", 11);
    s_decode_equals ("aGVsbG8gd29ybGQ=", "hello world", 11);
}

/*  0xfb 0xff 0xbf uses the two alphabet-specific characters twice. */
static void
test_base64_alphabets (void **state)
{
    (void) state;
    const unsigned char bytes [] = { 0xfb, 0xff, 0xbf, 0xfb, 0xef };
    s_decode_equals ("+/+/++8=", bytes, 5);
    s_decode_equals ("-_-_--8=", bytes, 5);
    s_decode_equals ("-_-_--8", bytes, 5);
    char *enc = dx_base64_encode (bytes, sizeof bytes);
    assert_string_equal (enc, "+/+/++8=");
    free (enc);
}

static void
test_base64_whitespace (void **state)
{
    (void) state;
    s_decode_equals ("aGVs\nbG8g\r\nd29y bGQ=", "hello world", 11);
    s_decode_equals (" \taGVsbG8gd29ybGQ=\n", "hello world", 11);
    s_decode_equals ("Zm9v\nYmFy\n", "foobar", 6);
    s_decode_equals ("Zg==\n", "f", 1);
    s_decode_equals ("\n \t\r", "", 0);
}

static void
test_base64_rejects (void **state)
{
    (void) state;
    s_decode_fails ("Zm9v*mFy");                /* not an alphabet character */
    s_decode_fails ("Zm9v.mFy");
    s_decode_fails ("Zm9v\vYmFy");              /* vertical tab is not skipped */
    s_decode_fails ("Zm9v\xc3\xa9");            /* non-ASCII */
    s_decode_fails ("Zg==Zg==");                /* data after '=' */
    s_decode_fails ("Zg=a");
    s_decode_fails ("Z");                       /* one character is no byte */
    s_decode_fails ("Zm9vY");
    s_decode_fails ("Zg===");                   /* too much padding */
    s_decode_fails ("=");
    s_decode_fails ("====");
    s_decode_fails ("Zm9v=");                   /* padding after a full group */
}

/*  Every length and every byte value survives encode then decode, also
    when the text is turned into the URL alphabet without padding. */
static void
test_base64_round_trip (void **state)
{
    (void) state;
    unsigned char data [300];
    for (size_t i = 0; i < sizeof data; i++)
        data [i] = (unsigned char) (i * 7 + 3);
    for (size_t n = 0; n <= sizeof data; n += (n < 20? 1: 37)) {
        char *enc = dx_base64_encode (data, n);
        assert_non_null (enc);
        assert_int_equal (strlen (enc), (n + 2) / 3 * 4);
        s_decode_equals (enc, data, n);
        for (char *c = enc; *c; c++) {
            if (*c == '+') *c = '-';
            if (*c == '/') *c = '_';
            if (*c == '=') *c = 0;
        }
        s_decode_equals (enc, data, n);
        free (enc);
    }
}

static void
test_ids (void **state)
{
    (void) state;
    char a [33], b [33];
    assert_ptr_equal (dx_id_new (a, sizeof a), a);
    dx_id_new (b, sizeof b);
    assert_int_equal (strlen (a), 32);
    assert_int_equal (strspn (a, "0123456789abcdef"), 32);
    assert_string_not_equal (a, b);

    char small [32];
    memset (small, 'x', sizeof small);
    assert_ptr_equal (dx_id_new (small, sizeof small), small);
    assert_string_equal (small, "");

    char big [64];
    dx_id_new (big, sizeof big);
    assert_int_equal (strlen (big), 32);
}

static int
s_cmp_ids (const void *a, const void *b)
{
    return strcmp ((const char *) a, (const char *) b);
}

#define S_IDS 20000

/*  Ids of one thread for s_ids_thread. */
static void *
s_ids_thread (void *arg)
{
    char (*ids) [33] = arg;
    for (int i = 0; i < S_IDS; i++)
        dx_id_new (ids [i], sizeof ids [i]);
    return NULL;
}

/*  Every id differs: many from one thread, and those of two threads (each
    has its own key) from each other. */
static void
test_ids_unique (void **state)
{
    (void) state;
    char (*ids) [33] = calloc (3 * S_IDS, sizeof *ids);
    assert_non_null (ids);
    s_ids_thread (ids);
    pthread_t threads [2];
    for (int t = 0; t < 2; t++)
        assert_int_equal (pthread_create (&threads [t], NULL, s_ids_thread,
                                          ids + (t + 1) * S_IDS), 0);
    for (int t = 0; t < 2; t++)
        pthread_join (threads [t], NULL);
    qsort (ids, 3 * S_IDS, sizeof *ids, s_cmp_ids);
    for (int i = 0; i < 3 * S_IDS; i++) {
        assert_int_equal (strspn (ids [i], "0123456789abcdef"), 32);
        if (i > 0)
            assert_string_not_equal (ids [i - 1], ids [i]);
    }
    free (ids);
}

static void
test_time (void **state)
{
    (void) state;
    char buf [32];
    assert_ptr_equal (dx_time_iso (0, buf, sizeof buf), buf);
    assert_string_equal (buf, "1970-01-01T00:00:00.000Z");
    assert_string_equal (dx_time_iso (1795574400123, buf, sizeof buf),
                         "2026-11-25T02:40:00.123Z");
    assert_string_equal (dx_time_iso (951782400999, buf, sizeof buf),
                         "2000-02-29T00:00:00.999Z");
    assert_string_equal (dx_time_iso (4102444799001, buf, sizeof buf),
                         "2099-12-31T23:59:59.001Z");
    //  A buffer of exactly 25 bytes is enough
    char exact [25];
    assert_string_equal (dx_time_iso (1795574400123, exact, sizeof exact),
                         "2026-11-25T02:40:00.123Z");

    int64_t now = dx_now_ms ();
    assert_true (now > 1700000000000);          /* after November 2023 */
    int64_t mono1 = dx_mono_ms ();
    int64_t mono2 = dx_mono_ms ();
    assert_true (mono1 >= 0);
    assert_true (mono2 >= mono1);
}

/*  getpid() (dx_util's, answered from memory) is the kernel's pid, in the
    parent and in the child of a fork alike. */
static void
test_getpid (void **state)
{
    (void) state;
    pid_t parent = getpid ();
    assert_int_equal (parent, (pid_t) syscall (SYS_getpid));
    assert_int_equal (getpid (), parent);
    int pipefd [2];
    assert_int_equal (pipe (pipefd), 0);
    pid_t child = fork ();
    assert_true (child >= 0);
    if (child == 0) {
        pid_t seen [2] = { getpid (), (pid_t) syscall (SYS_getpid) };
        ssize_t n = write (pipefd [1], seen, sizeof seen);
        _exit (n == (ssize_t) sizeof seen? 0: 1);
    }
    close (pipefd [1]);
    pid_t seen [2] = { 0, 0 };
    assert_int_equal (read (pipefd [0], seen, sizeof seen), (ssize_t) sizeof seen);
    close (pipefd [0]);
    int status = 0;
    assert_int_equal (waitpid (child, &status, 0), child);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    assert_int_equal (seen [0], child);
    assert_int_equal (seen [1], child);
    assert_int_equal (getpid (), parent);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_base64_vectors),
        cmocka_unit_test (test_base64_padding_optional),
        cmocka_unit_test (test_base64_alphabets),
        cmocka_unit_test (test_base64_whitespace),
        cmocka_unit_test (test_base64_rejects),
        cmocka_unit_test (test_base64_round_trip),
        cmocka_unit_test (test_ids),
        cmocka_unit_test (test_ids_unique),
        cmocka_unit_test (test_time),
        cmocka_unit_test (test_getpid),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
