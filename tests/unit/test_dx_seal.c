/*  Unit tests for dx_seal: sealing round trips, tamper and wrong-key
    detection, the master key from the environment and from a key file
    (created 0600 on first start, reused after), refusal of bad key files,
    and fingerprints. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dx_seal.h"
#include "harness.h"
#include "dx_log.h"

static const unsigned char s_key_a [32] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const unsigned char s_key_b [32] = { 0x42 };

/*  A fresh temporary directory per test; removed by s_rm_tree. */
static char s_tmp [64];

static int
s_setup (void **state)
{
    (void) state;
    unsetenv ("DEXTER_MASTER_KEY");
    unsetenv ("DEXTER_MASTER_KEY_FILE");
    snprintf (s_tmp, sizeof s_tmp, "/tmp/dx-seal-test-XXXXXX");
    return mkdtemp (s_tmp)? 0: -1;
}

/*  Removes what the tests create: files and at most two directory levels. */
static int
s_teardown (void **state)
{
    (void) state;
    char cmd [160];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_tmp);
    int rc = system (cmd);
    unsetenv ("DEXTER_MASTER_KEY");
    unsetenv ("DEXTER_MASTER_KEY_FILE");
    return rc == 0? 0: -1;
}

static void
test_round_trip (void **state)
{
    (void) state;
    dx_seal_t *seal = dx_seal_new_key (s_key_a);
    assert_non_null (seal);
    const char *texts [] = { "hunter2", "", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n",
                             "ünïcödé ✓" };
    for (size_t i = 0; i < sizeof texts / sizeof texts [0]; i++) {
        char *sealed = dx_seal_seal (seal, texts [i], strlen (texts [i]));
        assert_non_null (sealed);
        assert_memory_equal (sealed, "dx1:", 4);
        if (*texts [i])
            assert_null (strstr (sealed, texts [i]));
        size_t len = 99;
        char *plain = dx_seal_open (seal, sealed, &len);
        assert_non_null (plain);
        assert_int_equal (len, strlen (texts [i]));
        assert_string_equal (plain, texts [i]);
        dx_seal_free (plain, len);
        free (sealed);
    }
    //  Binary with an embedded NUL survives too
    const char binary [] = { 'a', 0, 'b', (char) 0xff };
    char *sealed = dx_seal_seal (seal, binary, sizeof binary);
    size_t len;
    char *plain = dx_seal_open (seal, sealed, &len);
    assert_non_null (plain);
    assert_int_equal (len, sizeof binary);
    assert_memory_equal (plain, binary, sizeof binary);
    dx_seal_free (plain, len);
    free (sealed);

    //  Random nonce: the same text seals differently each time
    char *one = dx_seal_seal (seal, "same", 4);
    char *two = dx_seal_seal (seal, "same", 4);
    assert_string_not_equal (one, two);
    free (one);
    free (two);
    dx_seal_destroy (&seal);
    assert_null (seal);
    dx_seal_destroy (&seal);            /* safe on NULL */
    dx_seal_free (NULL, 0);
}

/*  Changes every character of the sealed text in turn to another base64
    character (and the prefix to something else): none may open. */
static void
test_tamper (void **state)
{
    (void) state;
    dx_seal_t *seal = dx_seal_new_key (s_key_a);
    char *sealed = dx_seal_seal (seal, "top secret value", 16);
    assert_non_null (sealed);
    size_t n = strlen (sealed);
    for (size_t i = 0; i < n; i++) {
        char *copy = strdup (sealed);
        if (copy [i] == '=')
            copy [i] = 'A';
        else
            copy [i] = copy [i] == 'A'? 'B': 'A';
        size_t len = 1;
        char *plain = dx_seal_open (seal, copy, &len);
        if (plain)
            fail_msg ("altered character %zu of %s still opened", i, sealed);
        assert_int_equal (len, 0);
        //  The other alphabet or white space is an alteration too
        copy [i] = sealed [i] == '+'? '-': sealed [i] == '/'? '_': sealed [i];
        if (copy [i] != sealed [i])
            assert_null (dx_seal_open (seal, copy, NULL));
        free (copy);
    }
    //  Truncated, extended, unprefixed, garbage, empty
    char *copy = strdup (sealed);
    copy [n - 5] = 0;
    assert_null (dx_seal_open (seal, copy, NULL));
    free (copy);
    assert_null (dx_seal_open (seal, sealed + 4, NULL));
    assert_null (dx_seal_open (seal, "dx1:", NULL));
    assert_null (dx_seal_open (seal, "dx1:AAAA", NULL));
    assert_null (dx_seal_open (seal, "dx1:!!!!", NULL));
    assert_null (dx_seal_open (seal, "", NULL));
    assert_null (dx_seal_open (seal, NULL, NULL));
    assert_null (dx_seal_open (NULL, sealed, NULL));
    free (sealed);
    dx_seal_destroy (&seal);
}

static void
test_wrong_key (void **state)
{
    (void) state;
    dx_seal_t *a = dx_seal_new_key (s_key_a);
    dx_seal_t *b = dx_seal_new_key (s_key_b);
    char *sealed = dx_seal_seal (a, "password", 8);
    size_t len = 5;
    assert_null (dx_seal_open (b, sealed, &len));
    assert_int_equal (len, 0);
    char *plain = dx_seal_open (a, sealed, &len);
    assert_non_null (plain);
    dx_seal_free (plain, len);
    free (sealed);
    dx_seal_destroy (&a);
    dx_seal_destroy (&b);
}

/*  First start creates DATA_DIR (with parents) and master.key, 0600, 64 hex
    characters and a newline; a second start reads the same key. */
static void
test_key_file_created_and_reused (void **state)
{
    (void) state;
    char dir [128], path [160];
    snprintf (dir, sizeof dir, "%s/data/nested", s_tmp);
    snprintf (path, sizeof path, "%s/master.key", dir);

    dx_seal_t *first = dx_seal_new (dir);
    assert_non_null (first);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    assert_int_equal (st.st_size, 65);
    char text [80] = "";
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    assert_non_null (fgets (text, sizeof text, f));
    fclose (f);
    assert_int_equal (strlen (text), 65);
    assert_int_equal (text [64], '\n');
    for (int i = 0; i < 64; i++)
        assert_true (isxdigit ((unsigned char) text [i]));

    char *sealed = dx_seal_seal (first, "kept across restarts", 20);
    char fp1 [17];
    dx_seal_fingerprint (first, "x", 1, fp1);
    dx_seal_destroy (&first);

    dx_seal_t *second = dx_seal_new (dir);
    assert_non_null (second);
    size_t len;
    char *plain = dx_seal_open (second, sealed, &len);
    assert_non_null (plain);
    assert_string_equal (plain, "kept across restarts");
    dx_seal_free (plain, len);
    char fp2 [17];
    dx_seal_fingerprint (second, "x", 1, fp2);
    assert_string_equal (fp1, fp2);
    free (sealed);
    dx_seal_destroy (&second);

    //  The file's key is the key: the same 64 hex in the environment opens too
    text [64] = 0;
    setenv ("DEXTER_MASTER_KEY", text, 1);
    dx_seal_t *env = dx_seal_new ("/nonexistent/never/created");
    assert_non_null (env);
    dx_seal_fingerprint (env, "x", 1, fp2);
    assert_string_equal (fp1, fp2);
    dx_seal_destroy (&env);
    assert_int_equal (access ("/nonexistent/never/created", F_OK), -1);
}

static void
test_key_file_env_path (void **state)
{
    (void) state;
    char path [160];
    snprintf (path, sizeof path, "%s/keys/custom.key", s_tmp);
    setenv ("DEXTER_MASTER_KEY_FILE", path, 1);
    dx_seal_t *seal = dx_seal_new (s_tmp);
    assert_non_null (seal);
    dx_seal_destroy (&seal);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    char other [160];
    snprintf (other, sizeof other, "%s/master.key", s_tmp);
    assert_int_equal (access (other, F_OK), -1);
}

static void
test_bad_key_files_refused (void **state)
{
    (void) state;
    char path [160];
    snprintf (path, sizeof path, "%s/master.key", s_tmp);
    const char *good = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

    //  Readable by group or others
    assert_int_equal (th_write_file (path, good, 0644), 0);
    assert_null (dx_seal_new (s_tmp));
    assert_int_equal (th_write_file (path, good, 0640), 0);
    assert_null (dx_seal_new (s_tmp));
    //  Permissions fixed: accepted
    assert_int_equal (th_write_file (path, good, 0600), 0);
    dx_seal_t *seal = dx_seal_new (s_tmp);
    assert_non_null (seal);
    dx_seal_destroy (&seal);
    //  Without the newline, and with CRLF: accepted
    assert_int_equal (th_write_file (path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 0600), 0);
    seal = dx_seal_new (s_tmp);
    assert_non_null (seal);
    dx_seal_destroy (&seal);
    assert_int_equal (th_write_file (path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\r\n", 0600), 0);
    seal = dx_seal_new (s_tmp);
    assert_non_null (seal);
    dx_seal_destroy (&seal);
    //  Wrong lengths, non-hex, empty, trailing junk: refused
    const char *bad [] = {
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddee\n",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00\n",
        "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
        "",
        "\n",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\nextra\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert_int_equal (th_write_file (path, bad [i], 0600), 0);
        seal = dx_seal_new (s_tmp);
        if (seal)
            fail_msg ("bad key file %zu was accepted", i);
    }
    //  A directory where the file should be
    unlink (path);
    assert_int_equal (mkdir (path, 0700), 0);
    assert_null (dx_seal_new (s_tmp));
    rmdir (path);
}

static void
test_bad_env_key_refused (void **state)
{
    (void) state;
    const char *bad [] = {
        "0011",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeg0",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0",
        " 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        setenv ("DEXTER_MASTER_KEY", bad [i], 1);
        dx_seal_t *seal = dx_seal_new (s_tmp);
        if (seal)
            fail_msg ("bad DEXTER_MASTER_KEY %zu was accepted", i);
    }
    //  No key file was created as a side effect
    char path [160];
    snprintf (path, sizeof path, "%s/master.key", s_tmp);
    assert_int_equal (access (path, F_OK), -1);

    setenv ("DEXTER_MASTER_KEY", "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a", 1);
    dx_seal_t *seal = dx_seal_new (s_tmp);
    assert_non_null (seal);
    dx_seal_destroy (&seal);
}

static void
test_fingerprint (void **state)
{
    (void) state;
    dx_seal_t *a = dx_seal_new_key (s_key_a);
    dx_seal_t *a2 = dx_seal_new_key (s_key_a);
    dx_seal_t *b = dx_seal_new_key (s_key_b);
    char f1 [17], f2 [17], f3 [17], f4 [17];
    dx_seal_fingerprint (a, "secret", 6, f1);
    dx_seal_fingerprint (a2, "secret", 6, f2);
    dx_seal_fingerprint (a, "secreT", 6, f3);
    dx_seal_fingerprint (b, "secret", 6, f4);
    assert_int_equal (strlen (f1), 16);
    for (int i = 0; i < 16; i++)
        assert_true (isxdigit ((unsigned char) f1 [i]) && !isupper ((unsigned char) f1 [i]));
    assert_string_equal (f1, f2);           /* stable */
    assert_string_not_equal (f1, f3);       /* changes with the secret */
    assert_string_not_equal (f1, f4);       /* and with the key */
    //  Not a plain unkeyed hash of the value either: differs from the empty one
    char empty [17];
    dx_seal_fingerprint (a, "", 0, empty);
    assert_int_equal (strlen (empty), 16);
    assert_string_not_equal (empty, f1);
    dx_seal_destroy (&a);
    dx_seal_destroy (&a2);
    dx_seal_destroy (&b);
}

int
main (void)
{
    dx_log_init ("test_dx_seal");
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_tamper, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_wrong_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_key_file_created_and_reused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_key_file_env_path, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_key_files_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_env_key_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fingerprint, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
