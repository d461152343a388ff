/*  Tests of common/dx_crltags: a PEM CRL as the access node's tags. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dx_crltags.h"

/*  A PEM CRL whose body is len base64 characters in lines of 64. Caller
    frees. */
static char *
s_pem (size_t len)
{
    char *pem = malloc (len + len / 64 + 64);
    size_t at = (size_t) sprintf (pem, "-----BEGIN X509 CRL-----\r\n");
    for (size_t i = 0; i < len; i++) {
        pem [at++] = "MIIB+/xz09=="[i % 8];
        if (i % 64 == 63 || i + 1 == len)
            pem [at++] = '\n';
    }
    sprintf (pem + at, "-----END X509 CRL-----\n");
    return pem;
}

static void
test_chunks (void **state)
{
    (void) state;
    char err [256];
    int too_big = -1;
    //  One chunk short; exactly 40 full chunks, the most
    const size_t lens [] = { 8, 40 * 256 };
    for (size_t n = 0; n < 2; n++) {
        char *pem = s_pem (lens [n]);
        json_t *tags = dx_crltags_new (pem, "17", &too_big, err, sizeof err);
        assert_non_null (tags);
        assert_int_equal (too_big, 0);
        size_t chunks = (lens [n] + 255) / 256;
        assert_int_equal (json_object_size (tags), chunks + 1);
        char want [32];
        snprintf (want, sizeof want, "17:%zu", chunks);
        assert_string_equal (json_string_value (json_object_get (tags, "dexter:crl")), want);
        //  In key order, and the chunks joined are the body without lines
        const char *key;
        json_t *value;
        size_t i = 0, at = 0;
        json_object_foreach (tags, key, value) {
            if (i++ == 0) {
                assert_string_equal (key, "dexter:crl");
                continue;
            }
            snprintf (want, sizeof want, "dexter:crl.%zu", i - 2);
            assert_string_equal (key, want);
            const char *text = json_string_value (value);
            assert_true (strlen (text) <= 256 && strlen (text) > 0);
            for (const char *c = text; *c; c++, at++)
                assert_int_equal (*c, "MIIB+/xz09=="[at % 8]);
            assert_true (dx_crltags_is_key (key));
        }
        assert_int_equal (at, lens [n]);
        json_decref (tags);
        free (pem);
    }
}

static void
test_refusals (void **state)
{
    (void) state;
    char err [256];
    int too_big = -1;
    char *pem = s_pem (40 * 256 + 4);
    assert_null (dx_crltags_new (pem, "3", &too_big, err, sizeof err));
    assert_int_equal (too_big, 1);
    assert_non_null (strstr (err, "41 tags"));
    free (pem);
    pem = s_pem (64);
    const char *numbers [] = { "", "x", "3a", "-1", "123456789012345678901", NULL };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers [0]; i++) {
        assert_null (dx_crltags_new (pem, numbers [i], &too_big, err, sizeof err));
        assert_int_equal (too_big, 0);
        assert_non_null (strstr (err, "number"));
    }
    free (pem);
    const char *bad [] = {
        NULL, "", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "-----BEGIN X509 CRL-----\nMIIB\n",                          /* no end */
        "-----BEGIN X509 CRL-----\nMI\"B\n-----END X509 CRL-----\n", /* not base64 */
        "-----BEGIN X509 CRL-----\nMIIBx\n-----END X509 CRL-----\n",  /* not 4n */
        "-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n",         /* empty */
        "-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n"
        "-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n",   /* two */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert_null (dx_crltags_new (bad [i], "2", &too_big, err, sizeof err));
        assert_int_equal (too_big, 0);
        assert_non_null (strstr (err, "not one PEM X509 CRL"));
    }
    assert_true (dx_crltags_is_key ("dexter:crl"));
    assert_true (dx_crltags_is_key ("dexter:crl.12"));
    assert_false (dx_crltags_is_key ("dexter:crl."));
    assert_false (dx_crltags_is_key ("dexter:crl.x"));
    assert_false (dx_crltags_is_key ("dexter:crls"));
    assert_false (dx_crltags_is_key ("dexter:cluster"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_chunks),
        cmocka_unit_test (test_refusals),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
