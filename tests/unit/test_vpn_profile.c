/*  Unit tests for services/vpn/vpn_profile.c and vpn_auth.c: what the
    client profiles and the server config say, that the reference's
    `echo -e \`… | tr -d '"'\`` gives the profile back (run with the real
    bash), that values are checked, and that the server's files are the
    ones its config names. The real openvpn runs them in
    tests/e2e/test_openvpn.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../../services/vpn/vpn_auth.h"
#include "../../services/vpn/vpn_pki.h"
#include "../../services/vpn/vpn_profile.h"
#include "dx_util.h"
#include "harness.h"

static char s_dir [64];
static vpn_pki_t *s_pki;

//  True if text has line as one whole line.
static int
s_has_line (const char *text, const char *line)
{
    size_t len = strlen (line);
    for (const char *at = strstr (text, line); at; at = strstr (at + 1, line))
        if ((at == text || at [-1] == '\n') && at [len] == '\n')
            return 1;
    return 0;
}

//  The text between <tag> and </tag> lines, as a new string.
static char *
s_block (const char *text, const char *tag)
{
    char open [32], close [32];
    snprintf (open, sizeof open, "\n<%s>\n", tag);
    snprintf (close, sizeof close, "</%s>\n", tag);
    const char *start = strstr (text, open);
    if (!start)
        return NULL;
    start += strlen (open);
    const char *end = strstr (start, close);
    assert_non_null (end);
    return strndup (start, (size_t) (end - start));
}

static void
test_password_profile (void **state)
{
    (void) state;
    char *profile = vpn_profile_client (s_pki, "203.0.113.9", NULL, NULL);
    assert_non_null (profile);
    const char *lines [] = { "client", "dev tun", "proto udp", "remote 203.0.113.9 1194",
                             "remote-cert-tls server", "auth-user-pass", "nobind" };
    for (size_t i = 0; i < sizeof lines / sizeof lines [0]; i++)
        if (!s_has_line (profile, lines [i]))
            fail_msg ("no line '%s' in:\n%s", lines [i], profile);
    char *ca = s_block (profile, "ca"), *tls_crypt = s_block (profile, "tls-crypt");
    assert_string_equal (ca, vpn_pki_ca_pem (s_pki));
    assert_string_equal (tls_crypt, vpn_pki_tls_crypt (s_pki));
    assert_null (s_block (profile, "cert"));
    assert_null (s_block (profile, "key"));
    assert_null (strstr (profile, vpn_pki_server_key_pem (s_pki)));
    free (ca);
    free (tls_crypt);
    dx_free_wiped (profile);

    profile = vpn_profile_client (s_pki, "2001:db8::7", NULL, NULL);
    assert_true (s_has_line (profile, "remote 2001:db8::7 1194"));
    dx_free_wiped (profile);
}

static void
test_certificate_profile (void **state)
{
    (void) state;
    char *cert, *key;
    assert_int_equal (vpn_pki_issue (s_pki, "alice", &cert, &key), VPN_PKI_OK);
    char *profile = vpn_profile_client (s_pki, "203.0.113.9", cert, key);
    assert_non_null (profile);
    assert_true (s_has_line (profile, "client"));
    assert_true (s_has_line (profile, "remote-cert-tls server"));
    assert_false (s_has_line (profile, "auth-user-pass"));
    char *in_cert = s_block (profile, "cert"), *in_key = s_block (profile, "key");
    char *ca = s_block (profile, "ca");
    assert_string_equal (in_cert, cert);
    assert_string_equal (in_key, key);
    assert_string_equal (ca, vpn_pki_ca_pem (s_pki));
    free (in_cert);
    dx_free_wiped (in_key);
    free (ca);
    dx_free_wiped (profile);

    /* Both or neither, and each a PEM block of its kind. */
    assert_null (vpn_profile_client (s_pki, "203.0.113.9", cert, NULL));
    assert_null (vpn_profile_client (s_pki, "203.0.113.9", NULL, key));
    assert_null (vpn_profile_client (s_pki, "203.0.113.9", key, cert));
    char *bent = strdup (cert);
    bent [40] = '"';
    assert_null (vpn_profile_client (s_pki, "203.0.113.9", bent, key));
    bent [40] = '<';
    assert_null (vpn_profile_client (s_pki, "203.0.113.9", bent, key));
    free (bent);
    free (cert);
    dx_free_wiped (key);
}

static void
test_remote_is_checked (void **state)
{
    (void) state;
    const char *bad [] = { NULL, "", "203.0.113", "203.0.113.300", "access.example.com",
                           "203.0.113.9 1195", "203.0.113.9\nscript-security 3",
                           " 203.0.113.9", "1.2.3.4\"" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        assert_null (vpn_profile_client (s_pki, bad [i], NULL, NULL));
}

//  Runs the reference's line on the JSON string of profile, with bash:
//  its output (caller frees).
static char *
s_reference_echo (const char *profile)
{
    json_t *string = json_string (profile);
    char *json = json_dumps (string, JSON_ENCODE_ANY);
    json_decref (string);
    char path [128], script [128];
    snprintf (path, sizeof path, "%s/vpn.json", s_dir);
    snprintf (script, sizeof script, "%s/fetch.sh", s_dir);
    assert_int_equal (th_write_file (path, json, 0600), 0);
    free (json);
    /* curl -qs …/deployment/vpn, with the answer in a file. */
    assert_int_equal (th_write_file (script, "echo -e `cat \"$1\" | tr -d '\"'`\n", 0600), 0);
    char cmd [320];
    snprintf (cmd, sizeof cmd, "/bin/bash %s %s", script, path);
    FILE *p = popen (cmd, "r");
    assert_non_null (p);
    char *out = calloc (1, 65536);
    size_t n = fread (out, 1, 65535, p);
    assert_int_equal (pclose (p), 0);
    assert_true (n > 0);
    return out;
}

static void
test_reference_echo_gives_the_profile_back (void **state)
{
    (void) state;
    char *cert, *key;
    assert_int_equal (vpn_pki_issue (s_pki, "bob", &cert, &key), VPN_PKI_OK);
    char *profiles [] = { vpn_profile_client (s_pki, "203.0.113.9", NULL, NULL),
                          vpn_profile_client (s_pki, "203.0.113.9", cert, key) };
    for (int i = 0; i < 2; i++) {
        char *out = s_reference_echo (profiles [i]);
        /* The profile, then echo's own newline. */
        size_t len = strlen (profiles [i]);
        assert_int_equal (strlen (out), len + 1);
        assert_memory_equal (out, profiles [i], len);
        assert_int_equal (out [len], '\n');
        dx_free_wiped (out);
        dx_free_wiped (profiles [i]);
    }
    free (cert);
    dx_free_wiped (key);
}

static void
test_server_config (void **state)
{
    (void) state;
    char *conf = vpn_profile_server (s_pki);
    assert_non_null (conf);
    const char *lines [] = {
        "port 1194", "proto udp", "dev tun", "topology subnet",
        "server 10.8.0.0 255.255.255.0", "push \"route 10.0.0.0 255.255.0.0\"",
        "ca /etc/openvpn/server/dexter/ca.crt", "cert /etc/openvpn/server/dexter/server.crt",
        "key /etc/openvpn/server/dexter/server.key", "dh none",
        "tls-crypt /etc/openvpn/server/dexter/tls-crypt.key",
        "crl-verify /etc/openvpn/server/dexter/crl.pem",
        "remote-cert-tls client", "verify-client-cert optional", "auth-user-pass-optional",
        "script-security 2",
        "auth-user-pass-verify /etc/openvpn/server/dexter/auth.py via-file" };
    for (size_t i = 0; i < sizeof lines / sizeof lines [0]; i++)
        if (!s_has_line (conf, lines [i]))
            fail_msg ("no line '%s' in:\n%s", lines [i], conf);
    /* No key inline, and no privilege drop: PAM reads /etc/shadow. */
    assert_null (strstr (conf, "BEGIN"));
    assert_null (strstr (conf, "\nuser "));
    assert_null (strstr (conf, "\nduplicate-cn"));
    free (conf);
}

static void
test_server_files_are_what_the_config_names (void **state)
{
    (void) state;
    json_t *files = vpn_profile_server_files (s_pki);
    assert_non_null (files);
    assert_int_equal (json_array_size (files), 7);
    const char *conf = NULL;
    size_t index;
    json_t *file;
    json_array_foreach (files, index, file) {
        assert_int_equal (json_object_size (file), 3);
        const char *path = json_string_value (json_object_get (file, "path"));
        const char *mode = json_string_value (json_object_get (file, "permissions"));
        const char *content = json_string_value (json_object_get (file, "content"));
        assert_non_null (content);
        if (strcmp (path, VPN_SERVER_CONF) == 0)
            conf = content;
        const char *secret = strstr (path, ".key")? "0600": strstr (path, ".py")? "0755": "0644";
        assert_string_equal (mode, secret);
    }
    assert_non_null (conf);
    char *rendered = vpn_profile_server (s_pki);
    assert_string_equal (conf, rendered);
    free (rendered);
    /* Every file the config names is there, with the PKI's text. */
    struct { const char *option, *content; } named [] = {
        { "ca", vpn_pki_ca_pem (s_pki) }, { "cert", vpn_pki_server_cert_pem (s_pki) },
        { "key", vpn_pki_server_key_pem (s_pki) }, { "tls-crypt", vpn_pki_tls_crypt (s_pki) },
        { "crl-verify", vpn_pki_crl_pem (s_pki) }, { "auth-user-pass-verify", vpn_auth_script } };
    for (size_t i = 0; i < sizeof named / sizeof named [0]; i++) {
        char prefix [64];
        snprintf (prefix, sizeof prefix, "\n%s ", named [i].option);
        const char *at = strstr (conf, prefix);
        assert_non_null (at);
        at += strlen (prefix);
        char path [128];
        snprintf (path, sizeof path, "%.*s", (int) strcspn (at, " \n"), at);
        int found = 0;
        json_array_foreach (files, index, file)
            if (strcmp (json_string_value (json_object_get (file, "path")), path) == 0) {
                assert_string_equal (json_string_value (json_object_get (file, "content")),
                                     named [i].content);
                found = 1;
            }
        if (!found)
            fail_msg ("%s names %s, which is not among the files", named [i].option, path);
    }
    json_decref (files);
}

//  Runs the auth script as OpenVPN does (via-file) with creds in the
//  file and tls_serial_0 set when serial is not NULL: its exit code.
static int
s_auth (const char *creds, const char *serial)
{
    char script [128], file [128], cmd [512];
    snprintf (script, sizeof script, "%s/auth.py", s_dir);
    snprintf (file, sizeof file, "%s/creds", s_dir);
    assert_int_equal (th_write_file (script, vpn_auth_script, 0700), 0);
    assert_int_equal (th_write_file (file, creds, 0600), 0);
    snprintf (cmd, sizeof cmd, "env -u tls_serial_0 %s%s %s %s", serial? "tls_serial_0=": "",
              serial? serial: "", script, file);
    int status = system (cmd);
    assert_true (WIFEXITED (status));
    return WEXITSTATUS (status);
}

static void
test_auth_script_admits_only_a_verified_certificate_without_password (void **state)
{
    (void) state;
    assert_int_equal (strncmp (vpn_auth_script, "#!/usr/bin/python3\n", 19), 0);
    assert_non_null (strstr (vpn_auth_script, "\nSERVICE = b'login'\n"));
    /* No username, no password: the certificate decides. */
    assert_int_equal (s_auth ("\n\n", "5"), 0);
    assert_int_equal (s_auth ("\n\n", NULL), 1);
    assert_int_equal (s_auth ("\n\n", ""), 1);
    /* A password without a name, or a name without a password: never. */
    assert_int_equal (s_auth ("\nsecret\n", "5"), 1);
    assert_int_equal (s_auth ("vpnuser1\n\n", "5"), 1);
    assert_int_equal (s_auth ("vpnuser1\n\n", NULL), 1);
}

static int
s_setup (void **state)
{
    (void) state;
    s_pki = vpn_pki_new ("c1");
    return s_pki && th_tmpdir (s_dir, sizeof s_dir, "vpnprofile") == 0? 0: -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    vpn_pki_destroy (&s_pki);
    th_tmpdir_remove (s_dir, 0);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_password_profile),
        cmocka_unit_test (test_certificate_profile),
        cmocka_unit_test (test_remote_is_checked),
        cmocka_unit_test (test_reference_echo_gives_the_profile_back),
        cmocka_unit_test (test_server_config),
        cmocka_unit_test (test_server_files_are_what_the_config_names),
        cmocka_unit_test (test_auth_script_admits_only_a_verified_certificate_without_password),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
