/*  The vpn library as a command, for tests/e2e/test_openvpn.py, which runs
    the real openvpn on what it writes; run with no arguments it tests its
    own commands (cmocka).

        test_vpn_tool new NAME PKI            a new PKI, as plain JSON
        test_vpn_tool server PKI ROOT         the server's files under ROOT
        test_vpn_tool profile PKI IP OUT      the password profile; OUT.json
                                              holds it as the JSON string
                                              GET …/deployment/vpn answers
        test_vpn_tool issue PKI USER IP OUT   a user's certificate profile
        test_vpn_tool revoke PKI USER         revokes a user (a new CRL)

    PKI files hold the private keys in the clear: for tests in a temporary
    directory only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../services/vpn/vpn_pki.h"
#include "../../services/vpn/vpn_profile.h"
#include "dx_util.h"
#include "harness.h"

#define streq(a, b) (strcmp ((a), (b)) == 0)

//  Writes text to path with mode, making its directories. 0 or -1.
static int
s_write (const char *path, const char *text, mode_t mode)
{
    char dir [PATH_MAX];
    snprintf (dir, sizeof dir, "%s", path);
    for (char *slash = strchr (dir + 1, '/'); slash; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        if (mkdir (dir, 0755) && errno != EEXIST)
            return -1;
        *slash = '/';
    }
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen (text);
    int rc = fchmod (fd, mode) == 0 && write (fd, text, len) == (ssize_t) len? 0: -1;
    return close (fd) || rc? -1: 0;
}

static vpn_pki_t *
s_load (const char *path)
{
    json_error_t jerr;
    json_t *json = json_load_file (path, 0, &jerr);
    const char *why = "not JSON";
    vpn_pki_t *pki = json? vpn_pki_from_json (json, NULL, &why): NULL;
    json_decref (json);
    if (!pki)
        fprintf (stderr, "%s: %s\n", path, why);
    return pki;
}

static int
s_save (const vpn_pki_t *pki, const char *path)
{
    json_t *json = vpn_pki_to_json (pki, NULL);
    char *text = json? json_dumps (json, JSON_INDENT (1)): NULL;
    int rc = text? s_write (path, text, 0600): -1;
    free (text);
    json_decref (json);
    return rc;
}

//  Writes profile to out, and to out.json as the JSON string.
static int
s_profile_out (char *profile, const char *out)
{
    json_t *string = profile? json_string (profile): NULL;
    char *text = string? json_dumps (string, JSON_ENCODE_ANY): NULL;
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s.json", out);
    int rc = text && s_write (out, profile, 0600) == 0 && s_write (path, text, 0600) == 0? 0: -1;
    free (text);
    json_decref (string);
    dx_free_wiped (profile);
    return rc;
}

static int
s_command (int argc, char **argv)
{
    const char *cmd = argv [1];
    if (streq (cmd, "new") && argc == 4) {
        vpn_pki_t *pki = vpn_pki_new (argv [2]);
        int rc = pki? s_save (pki, argv [3]): -1;
        vpn_pki_destroy (&pki);
        return rc;
    }
    vpn_pki_t *pki = argc >= 3? s_load (argv [2]): NULL;
    if (!pki)
        return -1;
    int rc = -1;
    if (streq (cmd, "server") && argc == 4) {
        json_t *files = vpn_profile_server_files (pki);
        size_t index;
        json_t *file;
        rc = files? 0: -1;
        json_array_foreach (files, index, file) {
            char path [PATH_MAX];
            snprintf (path, sizeof path, "%s%s", argv [3],
                      json_string_value (json_object_get (file, "path")));
            mode_t mode = (mode_t) strtol (json_string_value (json_object_get (file, "permissions")),
                                           NULL, 8);
            if (s_write (path, json_string_value (json_object_get (file, "content")), mode))
                rc = -1;
        }
        json_decref (files);
    }
    else
    if (streq (cmd, "profile") && argc == 5)
        rc = s_profile_out (vpn_profile_client (pki, argv [3], NULL, NULL), argv [4]);
    else
    if (streq (cmd, "issue") && argc == 6) {
        char *cert, *key;
        vpn_pki_result_t result = vpn_pki_issue (pki, argv [3], &cert, &key);
        if (result == VPN_PKI_OK && s_save (pki, argv [2]) == 0)
            rc = s_profile_out (vpn_profile_client (pki, argv [4], cert, key), argv [5]);
        else
            fprintf (stderr, "issue %s: %d\n", argv [3], result);
        free (cert);
        dx_free_wiped (key);
    }
    else
    if (streq (cmd, "revoke") && argc == 4) {
        vpn_pki_result_t result = vpn_pki_revoke (pki, argv [3]);
        rc = result == VPN_PKI_OK? s_save (pki, argv [2]): -1;
    }
    else
        fprintf (stderr, "usage: see tests/unit/test_vpn_tool.c\n");
    vpn_pki_destroy (&pki);
    return rc;
}


//  ---------------------------------------------------------------------
//  The tool's own tests; paths are s_dir (64 bytes) and a short name.

static char s_dir [64];

static int
s_run (const char *a, const char *b, const char *c, const char *d, const char *e)
{
    char *argv [] = { "test_vpn_tool", (char *) a, (char *) b, (char *) c, (char *) d,
                      (char *) e, NULL };
    int argc = 1;
    while (argv [argc])
        argc++;
    return s_command (argc, argv);
}

static char *
s_path (char buf [128], const char *name)
{
    snprintf (buf, 128, "%s/%s", s_dir, name);
    return buf;
}

static char *
s_read (const char *path)
{
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    char *text = calloc (1, 65536);
    assert_non_null (text);
    assert_true (fread (text, 1, 65535, f) > 0);
    fclose (f);
    return text;
}

static void
test_commands_write_what_openvpn_reads (void **state)
{
    (void) state;
    char pki [128], out [128], root [128], path [256];
    s_path (pki, "pki.json");
    assert_int_equal (s_run ("new", "toolc1", pki, NULL, NULL), 0);
    assert_int_equal (s_run ("server", pki, s_path (root, "root"), NULL, NULL), 0);
    snprintf (path, sizeof path, "%s%s", root, VPN_SERVER_DIR "/server.key");
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    snprintf (path, sizeof path, "%s%s", root, VPN_SERVER_CONF);
    char *conf = s_read (path);
    assert_non_null (strstr (conf, "\nverify-client-cert optional\n"));
    free (conf);

    assert_int_equal (s_run ("profile", pki, "192.0.2.7", s_path (out, "p.ovpn"), NULL), 0);
    char *profile = s_read (out);
    assert_non_null (strstr (profile, "\nremote 192.0.2.7 1194\n"));
    assert_non_null (strstr (profile, "\nauth-user-pass\n"));
    strcat (out, ".json");
    char *json = s_read (out);
    json_t *string = json_loads (json, JSON_DECODE_ANY, NULL);
    assert_string_equal (json_string_value (string), profile);
    json_decref (string);
    free (json);
    free (profile);

    assert_int_equal (s_run ("issue", pki, "alice", "192.0.2.7", s_path (out, "a.ovpn")), 0);
    profile = s_read (out);
    assert_non_null (strstr (profile, "<key>\n-----BEGIN PRIVATE KEY-----\n"));
    assert_null (strstr (profile, "auth-user-pass"));
    free (profile);
    assert_int_not_equal (s_run ("issue", pki, "alice", "192.0.2.7", out), 0);
    assert_int_equal (s_run ("revoke", pki, "alice", NULL, NULL), 0);
    assert_int_not_equal (s_run ("revoke", pki, "bob", NULL, NULL), 0);
    assert_int_not_equal (s_run ("profile", pki, "not-an-ip", out, NULL), 0);
    assert_int_not_equal (s_run ("new", "Bad_Name", s_path (out, "bad.json"), NULL, NULL), 0);
}

int
main (int argc, char **argv)
{
    if (argc > 1)
        return s_command (argc, argv) == 0? 0: 1;
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_commands_write_what_openvpn_reads),
    };
    if (th_tmpdir (s_dir, sizeof s_dir, "vpntool"))
        return 1;
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    th_tmpdir_remove (s_dir, failed);
    return failed;
}
