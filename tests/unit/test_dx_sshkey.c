/*  Unit tests for common/dx_sshkey.c: what a key is (PEM and OpenSSH,
    plain and encrypted, and what is no private key at all), and public
    key lines equal to what ssh-keygen and openssl derive. Keys are made
    with ssh-keygen and openssl in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dx_sshkey.h"
#include "dx_util.h"
#include "harness.h"

static char s_dir [64];

/*  Runs a shell command; its first line of output goes into buf when buf
    is not NULL. Fails the test when the command fails. */
static void
s_shell (const char *cmd, char *buf, size_t size)
{
    FILE *p = popen (cmd, "r");
    assert_non_null (p);
    char line [4096] = "";
    if (!fgets (line, sizeof line, p))
        line [0] = 0;
    assert_int_equal (pclose (p), 0);
    if (buf)
        snprintf (buf, size, "%.*s", (int) strcspn (line, "\n"), line);
}

/*  Makes a key file named name in s_dir with the shell command make,
    which writes it to "$KEY". Returns the file's text (caller frees). */
static char *
s_key (const char *name, const char *make)
{
    char path [128], cmd [512];
    snprintf (path, sizeof path, "%s/%s.pub", s_dir, name);
    unlink (path);
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    unlink (path);                      /* ssh-keygen would ask to overwrite */
    snprintf (cmd, sizeof cmd, "KEY='%s'; %s", path, make);
    s_shell (cmd, NULL, 0);
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    char *text = calloc (1, 16384);
    assert_non_null (text);
    size_t n = fread (text, 1, 16383, f);
    fclose (f);
    assert_true (n > 0);
    return text;
}

/*  ssh-keygen's public key line of the key file name in s_dir, and ours
    of its text: their type and base64 are equal. */
static void
s_same_as_ssh_keygen (const char *name, const char *text)
{
    char err [256], cmd [256], theirs [4096];
    char *ours = dx_sshkey_public (text, err, sizeof err);
    if (!ours)
        fail_msg ("%s: %s", name, err);
    snprintf (cmd, sizeof cmd, "ssh-keygen -y -f %s/%s", s_dir, name);
    s_shell (cmd, theirs, sizeof theirs);
    size_t type_and_key = strcspn (theirs, " ");
    type_and_key += 1 + strcspn (theirs + type_and_key + 1, " ");
    assert_int_equal (strncmp (ours, theirs, type_and_key), 0);
    assert_string_equal (ours + type_and_key, " dexter");
    free (ours);
}

static int
s_setup (void **state)
{
    (void) state;
    return th_tmpdir (s_dir, sizeof s_dir, "sshkey");
}

static int
s_teardown (void **state)
{
    (void) state;
    th_tmpdir_remove (s_dir, 0);
    return 0;
}

/*  Every kind of file a user may send as sshkeydata. */
static void
test_kind (void **state)
{
    (void) state;
    static const struct {
        const char *name, *make;
        dx_sshkey_kind_t kind;
    } keys [] = {
        { "rsa", "ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f \"$KEY\"", DX_SSHKEY_OK },
        { "ed", "ssh-keygen -q -t ed25519 -N '' -f \"$KEY\"", DX_SSHKEY_OK },
        { "ecpem", "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
                   "-out \"$KEY\" 2>/dev/null", DX_SSHKEY_OK },
        { "edlocked", "ssh-keygen -q -t ed25519 -N 'correct horse' -f \"$KEY\"",
          DX_SSHKEY_ENCRYPTED },
        { "rsalocked", "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
                       "-aes256 -pass pass:secret -out \"$KEY\" 2>/dev/null",
          DX_SSHKEY_ENCRYPTED },
        { "pub", "openssl genpkey -algorithm ed25519 2>/dev/null | "
                 "openssl pkey -pubout -out \"$KEY\"", DX_SSHKEY_NONE },
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys [0]; i++) {
        char *text = s_key (keys [i].name, keys [i].make);
        if (dx_sshkey_kind (text, strlen (text)) != keys [i].kind)
            fail_msg ("%s: kind %d, expected %d", keys [i].name,
                      dx_sshkey_kind (text, strlen (text)), keys [i].kind);
        //  A usable key cut short is no key
        if (keys [i].kind == DX_SSHKEY_OK)
            assert_int_equal (dx_sshkey_kind (text, strlen (text) / 2), DX_SSHKEY_NONE);
        free (text);
    }
    assert_int_equal (dx_sshkey_kind ("not a key", 9), DX_SSHKEY_NONE);
    assert_int_equal (dx_sshkey_kind ("a\0b", 3), DX_SSHKEY_NONE);
    assert_int_equal (dx_sshkey_kind ("", 0), DX_SSHKEY_NONE);
    assert_int_equal (dx_sshkey_kind (NULL, 0), DX_SSHKEY_NONE);
    const char *hollow = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                         "-----END OPENSSH PRIVATE KEY-----\n";
    assert_int_equal (dx_sshkey_kind (hollow, strlen (hollow)), DX_SSHKEY_NONE);
}

/*  Public key lines as ssh-keygen -y writes them, from PEM and OpenSSH
    keys; an Ed25519 PEM key's blob holds the 32 bytes openssl reports. */
static void
test_public (void **state)
{
    (void) state;
    char *text = s_key ("rsa", "ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f \"$KEY\"");
    assert_true (strncmp (text, "-----BEGIN RSA PRIVATE KEY-----", 31) == 0);
    s_same_as_ssh_keygen ("rsa", text);
    free (text);
    text = s_key ("ed", "ssh-keygen -q -t ed25519 -N '' -f \"$KEY\"");
    s_same_as_ssh_keygen ("ed", text);
    free (text);
    text = s_key ("rsassh", "ssh-keygen -q -t rsa -b 3072 -N '' -f \"$KEY\"");
    s_same_as_ssh_keygen ("rsassh", text);
    free (text);

    text = s_key ("edpem", "openssl genpkey -algorithm ed25519 -out \"$KEY\" 2>/dev/null");
    char err [256], cmd [256], expected [128];
    char *line = dx_sshkey_public (text, err, sizeof err);
    assert_non_null (line);
    assert_true (strncmp (line, "ssh-ed25519 ", 12) == 0);
    snprintf (cmd, sizeof cmd, "openssl pkey -in %s/edpem -pubout -outform DER "
              "2>/dev/null | tail -c 32 | base64 -w0", s_dir);
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
    free (text);
}

/*  Keys EC2 cannot import, and no keys at all: refused, never quoted. */
static void
test_public_refusals (void **state)
{
    (void) state;
    char err [256];
    char *text = s_key ("ecpem", "openssl genpkey -algorithm EC -pkeyopt "
                        "ec_paramgen_curve:P-256 -out \"$KEY\" 2>/dev/null");
    assert_null (dx_sshkey_public (text, err, sizeof err));
    assert_non_null (strstr (err, "neither an RSA nor an Ed25519 key"));
    free (text);
    text = s_key ("ecssh", "ssh-keygen -q -t ecdsa -N '' -f \"$KEY\"");
    assert_null (dx_sshkey_public (text, err, sizeof err));
    assert_non_null (strstr (err, "type EC2 does not import"));
    free (text);
    text = s_key ("rsalocked", "openssl genpkey -algorithm RSA -pkeyopt "
                  "rsa_keygen_bits:2048 -aes256 -pass pass:secret -out \"$KEY\" 2>/dev/null");
    assert_null (dx_sshkey_public (text, err, sizeof err));
    assert_non_null (strstr (err, "without a passphrase"));
    free (text);

    assert_null (dx_sshkey_public ("not a key", err, sizeof err));
    assert_null (strstr (err, "not a key"));
    assert_null (dx_sshkey_public ("", err, sizeof err));
    assert_null (dx_sshkey_public (NULL, err, sizeof err));
    assert_null (dx_sshkey_public ("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                   "-----END OPENSSH PRIVATE KEY-----\n", err, sizeof err));
    assert_non_null (strstr (err, "not a readable OpenSSH private key"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_kind),
        cmocka_unit_test (test_public),
        cmocka_unit_test (test_public_refusals),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
