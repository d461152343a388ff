/*  Tests of services/aws-worker/aws_sshkey.c: the OpenSSH public key of
    RSA and Ed25519 private keys (PEM, PKCS#8, OpenSSH's own format) equals
    what ssh-keygen -y and openssl say; what is not a key is refused
    without being quoted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/aws-worker/aws_sshkey.h"
#include "harness.h"

#include "dx_util.h"

static char s_dir [64];

/*  Output of a shell command (first line), into buf. */
static void
s_shell (const char *cmd, char *buf, size_t size)
{
    FILE *p = popen (cmd, "r");
    assert_non_null (p);
    if (!fgets (buf, (int) size, p))
        *buf = 0;
    pclose (p);
    buf [strcspn (buf, "\n")] = 0;
}

/*  The text of file name in the test's directory (a static buffer). */
static char *
s_read (const char *name)
{
    char path [128];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    static char text [8192];
    size_t n = fread (text, 1, sizeof text - 1, f);
    text [n] = 0;
    fclose (f);
    return text;
}

/*  Runs cmd, which makes the key file name, and returns aws_sshkey_public's
    line for that key (caller frees). */
static char *
s_public (const char *cmd, const char *name)
{
    char err [256];
    assert_int_equal (system (cmd), 0);
    char *line = aws_sshkey_public (s_read (name), err, sizeof err);
    if (!line)
        print_error ("%s\n", err);
    assert_non_null (line);
    return line;
}

/*  The type and key (the first two fields) of two OpenSSH public key
    lines are equal; the comments may differ. */
static void
s_same_key (const char *ours, const char *theirs)
{
    const char *space = strchr (theirs, ' ');
    size_t n = space? (size_t) (space - theirs) + 1 + strcspn (space + 1, " \n")
                    : strcspn (theirs, "\n");
    if (strncmp (ours, theirs, n) != 0 || (ours [n] != ' ' && ours [n] != 0)) {
        print_error ("ours:   %s\ntheirs: %s\n", ours, theirs);
        fail ();
    }
}

/*  RSA PEM (PKCS#1): as ssh-keygen -y */
static void
test_rsa_pem (void **state)
{
    (void) state;
    char cmd [256], expected [4096];
    snprintf (cmd, sizeof cmd, "ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f %s/rsa >/dev/null",
              s_dir);
    char *line = s_public (cmd, "rsa");
    assert_true (strncmp (line, "ssh-rsa AAAAB3NzaC1yc2E", 23) == 0);
    snprintf (cmd, sizeof cmd, "ssh-keygen -y -f %s/rsa", s_dir);
    s_shell (cmd, expected, sizeof expected);
    s_same_key (line, expected);
    free (line);
}

/*  Ed25519 in OpenSSH's own format: as ssh-keygen -y */
static void
test_ed25519_openssh (void **state)
{
    (void) state;
    char cmd [256], expected [4096];
    snprintf (cmd, sizeof cmd, "ssh-keygen -q -t ed25519 -N '' -f %s/ed >/dev/null", s_dir);
    char *line = s_public (cmd, "ed");
    snprintf (cmd, sizeof cmd, "ssh-keygen -y -f %s/ed", s_dir);
    s_shell (cmd, expected, sizeof expected);
    s_same_key (line, expected);
    free (line);
}

/*  Ed25519 PEM (PKCS#8): the blob holds the 32 bytes openssl reports */
static void
test_ed25519_pkcs8 (void **state)
{
    (void) state;
    char cmd [256], expected [4096];
    snprintf (cmd, sizeof cmd, "openssl genpkey -algorithm ed25519 -out %s/edpem 2>/dev/null",
              s_dir);
    char *line = s_public (cmd, "edpem");
    assert_true (strncmp (line, "ssh-ed25519 ", 12) == 0);
    snprintf (cmd, sizeof cmd, "openssl pkey -in %s/edpem -pubout -outform DER 2>/dev/null | "
              "tail -c 32 | base64 -w0", s_dir);
    s_shell (cmd, expected, sizeof expected);
    size_t raw_len = 0, blob_len = 0;
    unsigned char *raw = dx_base64_decode (expected, &raw_len);
    char *b64 = strndup (line + 12, strcspn (line + 12, " "));
    unsigned char *blob = dx_base64_decode (b64, &blob_len);
    assert_int_equal (raw_len, 32);
    assert_int_equal (blob_len, 4 + 11 + 4 + 32);
    assert_memory_equal (blob, "\0\0\0\x0bssh-ed25519\0\0\0\x20", 19);
    assert_memory_equal (blob + 19, raw, 32);
    free (raw);
    free (blob);
    free (b64);
    free (line);
}

/*  Refusals, never quoting the key */
static void
test_refusals (void **state)
{
    (void) state;
    char err [256];
    assert_null (aws_sshkey_public ("not a key", err, sizeof err));
    assert_null (strstr (err, "not a key"));
    assert_null (aws_sshkey_public ("", err, sizeof err));
    assert_null (aws_sshkey_public ("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                    "-----END OPENSSH PRIVATE KEY-----\n", err, sizeof err));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_rsa_pem),
        cmocka_unit_test (test_ed25519_openssh),
        cmocka_unit_test (test_ed25519_pkcs8),
        cmocka_unit_test (test_refusals),
    };
    if (th_tmpdir (s_dir, sizeof s_dir, "aws-sshkey"))
        return 1;
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    th_tmpdir_remove (s_dir, rc != 0);
    return rc;
}
