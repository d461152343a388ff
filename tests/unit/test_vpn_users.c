/*  Unit tests for services/vpn/vpn_users.c: vpn.user.add issues a
    certificate on the recorded PKI and reports the PKI with the user and
    the user's profile, sealed; vpn.user.revoke puts the serial on a new
    CRL; refusals (a bad name, a duplicate, an unknown user, no PKI) are
    permanent, named, and report nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/vpn/vpn_steps.h"
#include "../../services/vpn/vpn_pki.h"
#include "dx_seal.h"
#include "harness.h"

static dx_seal_t *s_seal;
static vpn_steps_config_t s_config;

static int
s_setup (void **state)
{
    (void) state;
    unsigned char key [32];
    memset (key, 0x5a, sizeof key);
    s_seal = dx_seal_new_key (key);
    s_config.seal = s_seal;
    return s_seal? 0: -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    dx_seal_destroy (&s_seal);
    return 0;
}

/*  Runs a step of kind for cluster with context vpn_pki, access_ip and
    step.user (each NULL: absent); out must be finished by the caller. */
static int
s_run (dx_step_out_t *out, const char *cluster, const char *kind, const char *pki,
       const char *ip, const char *user)
{
    json_t *context = json_object ();
    if (pki)
        json_object_set_new (context, "vpn_pki", json_string (pki));
    if (ip)
        json_object_set_new (context, "access_ip", json_string (ip));
    json_t *assign = json_pack ("{s:s, s:i, s:s, s:{s:s, s:s, s:o}, s:{}}",
                                "job", "c1:users:1", "attempt", 1, "cluster", cluster,
                                "step", "kind", kind, "id", kind, "context", context,
                                "credentials");
    if (user)
        json_object_set_new (json_object_get (assign, "step"), "user", json_string (user));
    dx_step_out_init (out, NULL, NULL);
    int rc = vpn_step_run (&s_config, assign, out);
    json_decref (assign);
    return rc;
}

static const char *
s_attr (const dx_step_out_t *out, const char *key, const char *name)
{
    size_t i;
    json_t *resource;
    json_array_foreach (out->resources, i, resource)
        if (strcmp (json_string_value (json_object_get (resource, "key")), key) == 0)
            return json_string_value (json_object_get (resource, name));
    return NULL;
}

/*  A new PKI for cluster, as vpn.server records it (caller frees). */
static char *
s_new_pki (const char *cluster)
{
    dx_step_out_t out;
    assert_int_equal (s_run (&out, cluster, "vpn.server", NULL, NULL, NULL), 0);
    char *pki = strdup (s_attr (&out, VPN_STEPS_PKI, "pki"));
    dx_step_out_fini (&out);
    return pki;
}

/*  pki with user added (caller frees), out's profile opened into
    *profile (caller frees) when profile is not NULL. */
static char *
s_add (const char *pki, const char *user, char **profile)
{
    dx_step_out_t out;
    assert_int_equal (s_run (&out, "c1", "vpn.user.add", pki, "203.0.113.9", user), 0);
    char *next = strdup (s_attr (&out, VPN_STEPS_PKI, "pki"));
    if (profile) {
        size_t len;
        char *plain = dx_seal_open (s_seal, s_attr (&out, "vpn.user", "profile"), &len);
        assert_non_null (plain);
        *profile = strndup (plain, len);
        dx_seal_free (plain, len);
    }
    dx_step_out_fini (&out);
    return next;
}

/*  The users of a recorded PKI (caller owns). */
static json_t *
s_users (const char *pki)
{
    json_t *json = json_loads (pki, 0, NULL);
    assert_non_null (json);
    json_t *users = json_incref (json_object_get (json, "users"));
    json_decref (json);
    return users;
}

static void
test_add_issues_and_reports_the_profile_sealed (void **state)
{
    (void) state;
    char *pki = s_new_pki ("c1");
    dx_step_out_t out;
    assert_int_equal (s_run (&out, "c1", "vpn.user.add", pki, "203.0.113.9", "alice"), 0);
    assert_int_equal (json_array_size (out.resources), 2);
    assert_string_equal (s_attr (&out, "vpn.user", "name"), "alice");
    assert_string_equal (s_attr (&out, "vpn.user", "serial"), "3");
    assert_non_null (strstr (s_attr (&out, "vpn.user", "expires"), "Z"));
    //  The same CA: the same resource id
    assert_string_equal (s_attr (&out, VPN_STEPS_PKI, "provider_id"),
                         s_attr (&out, "vpn.user", "provider_id"));

    //  The PKI lists alice; its secrets stay sealed and the CA is the same
    const char *next = s_attr (&out, VPN_STEPS_PKI, "pki");
    json_t *before = json_loads (pki, 0, NULL), *after = json_loads (next, 0, NULL);
    assert_string_equal (json_string_value (json_object_get (before, "ca_cert")),
                         json_string_value (json_object_get (after, "ca_cert")));
    assert_true (strncmp (json_string_value (json_object_get (after, "ca_key")), "dx1:", 4) == 0);
    json_t *users = json_object_get (after, "users");
    assert_int_equal (json_array_size (users), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (users, 0), "name")),
                         "alice");
    assert_int_equal (json_integer_value (json_object_get (after, "next_serial")), 4);

    //  The profile: the cluster's, with the certificate and key inline
    size_t len;
    char *profile = dx_seal_open (s_seal, s_attr (&out, "vpn.user", "profile"), &len);
    assert_non_null (profile);
    assert_non_null (strstr (profile, "\nremote 203.0.113.9 1194\n"));
    assert_non_null (strstr (profile, "<cert>\n-----BEGIN CERTIFICATE-----"));
    assert_non_null (strstr (profile, "<key>\n-----BEGIN PRIVATE KEY-----"));
    assert_null (strstr (profile, "auth-user-pass"));
    assert_non_null (strstr (profile, json_string_value (json_object_get (after, "ca_cert"))));
    dx_seal_free (profile, len);

    //  No key in clear in what the step reports
    char *reported = json_dumps (out.resources, 0);
    assert_null (strstr (reported, "PRIVATE KEY"));
    assert_null (strstr (reported, "OpenVPN Static key"));
    free (reported);
    json_decref (before);
    json_decref (after);
    dx_step_out_fini (&out);
    free (pki);
}

static void
test_each_user_gets_a_key_of_its_own (void **state)
{
    (void) state;
    char *pki = s_new_pki ("c1");
    char *alice, *bob;
    char *one = s_add (pki, "alice", &alice);
    char *two = s_add (one, "bob", &bob);
    json_t *users = s_users (two);
    assert_int_equal (json_array_size (users), 2);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (users, 1), "serial")), 4);
    const char *ka = strstr (alice, "<key>"), *kb = strstr (bob, "<key>");
    assert_non_null (ka);
    assert_non_null (kb);
    assert_string_not_equal (ka, kb);
    json_decref (users);
    free (alice);
    free (bob);
    free (one);
    free (two);
    free (pki);
}

static void
test_revoke_puts_the_serial_on_a_new_crl (void **state)
{
    (void) state;
    char *pki = s_new_pki ("c1");
    char *one = s_add (pki, "alice", NULL);
    dx_step_out_t out;
    assert_int_equal (s_run (&out, "c1", "vpn.user.revoke", one, NULL, "alice"), 0);
    assert_string_equal (s_attr (&out, "vpn.user", "name"), "alice");
    assert_string_equal (s_attr (&out, "vpn.user", "serial"), "3");
    assert_string_equal (s_attr (&out, "vpn.user", "crl_number"), "2");
    assert_non_null (strstr (s_attr (&out, "vpn.user", "revoked_at"), "Z"));
    assert_null (s_attr (&out, "vpn.user", "profile"));
    json_t *before = json_loads (one, 0, NULL);
    json_t *after = json_loads (s_attr (&out, VPN_STEPS_PKI, "pki"), 0, NULL);
    assert_string_not_equal (json_string_value (json_object_get (before, "crl")),
                             json_string_value (json_object_get (after, "crl")));
    assert_int_equal (json_integer_value (json_object_get (after, "crl_number")), 2);
    json_t *alice = json_array_get (json_object_get (after, "users"), 0);
    assert_true (json_is_true (json_object_get (alice, "revoked")));

    //  The PKI loads, and its CRL lists serial 3
    vpn_pki_t *loaded = vpn_pki_from_json (after, s_seal, NULL);
    assert_non_null (loaded);
    assert_int_equal (vpn_pki_crl_number (loaded), 2);
    vpn_pki_destroy (&loaded);

    //  vpn.server on it bundles the new CRL, and says which
    dx_step_out_t server;
    assert_int_equal (s_run (&server, "c1", "vpn.server", s_attr (&out, VPN_STEPS_PKI, "pki"),
                             NULL, NULL), 0);
    assert_string_equal (s_attr (&server, VPN_STEPS_PKI, "crl_number"), "2");
    size_t len;
    char *bundle = dx_seal_open (s_seal, s_attr (&server, VPN_STEPS_PKI, "server"), &len);
    json_t *opened = json_loadb (bundle, len, 0, NULL);
    assert_string_equal (json_string_value (json_object_get (opened, "crl")),
                         json_string_value (json_object_get (after, "crl")));
    json_decref (opened);
    dx_seal_free (bundle, len);
    dx_step_out_fini (&server);

    //  Revoking again changes nothing but is no error
    dx_step_out_t again;
    assert_int_equal (s_run (&again, "c1", "vpn.user.revoke", s_attr (&out, VPN_STEPS_PKI, "pki"),
                             NULL, "alice"), 0);
    assert_string_equal (s_attr (&again, "vpn.user", "crl_number"), "2");
    dx_step_out_fini (&again);
    json_decref (before);
    json_decref (after);
    dx_step_out_fini (&out);
    free (one);
    free (pki);
}

static void
test_refusals_are_permanent_and_report_nothing (void **state)
{
    (void) state;
    char *pki = s_new_pki ("c1");
    char *one = s_add (pki, "alice", NULL);
    struct { const char *kind, *pki, *ip, *user, *code; } cases [] = {
        { "vpn.user.add", one, "203.0.113.9", "alice", "VpnUserExists" },
        { "vpn.user.add", one, "203.0.113.9", "Alice", "VpnUserInvalid" },
        { "vpn.user.add", one, "203.0.113.9", "a-b", "VpnUserInvalid" },
        { "vpn.user.add", NULL, "203.0.113.9", "bob", "VpnNoPki" },
        { "vpn.user.add", one, NULL, "bob", "InvalidStep" },
        { "vpn.user.add", one, "203.0.113.9", NULL, "InvalidStep" },
        { "vpn.user.revoke", one, NULL, "bob", "VpnUserNotFound" },
        { "vpn.user.revoke", NULL, NULL, "alice", "VpnNoPki" },
        { "vpn.user.revoke", "{nope", NULL, "alice", "VpnPkiUnreadable" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        dx_step_out_t out;
        assert_int_equal (s_run (&out, "c1", cases [i].kind, cases [i].pki, cases [i].ip,
                                 cases [i].user), -1);
        assert_int_equal (out.outcome, DX_STEP_FAILED);
        assert_true (out.permanent);
        assert_string_equal (out.code, cases [i].code);
        assert_int_equal (json_array_size (out.resources), 0);
        dx_step_out_fini (&out);
    }
    //  Another cluster's PKI is never changed
    dx_step_out_t out;
    assert_int_equal (s_run (&out, "c2", "vpn.user.add", one, "203.0.113.9", "bob"), -1);
    assert_string_equal (out.code, "VpnPkiUnreadable");
    dx_step_out_fini (&out);
    free (one);
    free (pki);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_add_issues_and_reports_the_profile_sealed),
        cmocka_unit_test (test_each_user_gets_a_key_of_its_own),
        cmocka_unit_test (test_revoke_puts_the_serial_on_a_new_crl),
        cmocka_unit_test (test_refusals_are_permanent_and_report_nothing),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
