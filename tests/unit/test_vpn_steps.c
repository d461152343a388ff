/*  Unit tests for services/vpn/vpn_steps.c: vpn.server makes a PKI once
    and then only loads the recorded one; the server bundle and the
    profile are sealed and are the cluster's; a PKI that does not open is
    never replaced; nothing secret is reported in clear. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/vpn/vpn_steps.h"
#include "../../services/vpn/vpn_profile.h"
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

/*  A job.assign of kind for cluster, its context's vpn_pki and access_ip
    (each NULL: absent). */
static json_t *
s_assign (const char *cluster, const char *kind, const char *pki, const char *ip)
{
    json_t *context = json_object ();
    if (pki)
        json_object_set_new (context, "vpn_pki", json_string (pki));
    if (ip)
        json_object_set_new (context, "access_ip", json_string (ip));
    return json_pack ("{s:s, s:i, s:s, s:{s:s, s:s, s:s, s:o}, s:{}}",
                      "job", "c1:1:x", "attempt", 1, "cluster", cluster,
                      "step", "kind", kind, "id", kind, "provider", "aws", "context", context,
                      "credentials");
}

/*  Runs a step; out must be finished by the caller. */
static int
s_run (dx_step_out_t *out, const char *cluster, const char *kind, const char *pki,
       const char *ip)
{
    json_t *assign = s_assign (cluster, kind, pki, ip);
    dx_step_out_init (out, NULL, NULL);
    int rc = vpn_step_run (&s_config, assign, out);
    json_decref (assign);
    return rc;
}

/*  The reported resource key, borrowed from out. */
static const json_t *
s_resource (const dx_step_out_t *out, const char *key)
{
    size_t i;
    json_t *resource;
    json_array_foreach (out->resources, i, resource)
        if (strcmp (json_string_value (json_object_get (resource, "key")), key) == 0)
            return resource;
    return NULL;
}

static const char *
s_attr (const dx_step_out_t *out, const char *key, const char *name)
{
    return json_string_value (json_object_get (s_resource (out, key), name));
}

/*  An attribute opened with the seal (caller frees). */
static char *
s_open (const dx_step_out_t *out, const char *key, const char *name)
{
    const char *sealed = s_attr (out, key, name);
    assert_non_null (sealed);
    assert_true (strncmp (sealed, "dx1:", 4) == 0);
    size_t len;
    char *plain = dx_seal_open (s_seal, sealed, &len);
    assert_non_null (plain);
    char *copy = strdup (plain);
    dx_seal_free (plain, len);
    return copy;
}

/*  A new PKI for cluster, as vpn.server records it (caller frees). */
static char *
s_new_pki (const char *cluster)
{
    dx_step_out_t out;
    assert_int_equal (s_run (&out, cluster, "vpn.server", NULL, NULL), 0);
    char *pki = strdup (s_attr (&out, VPN_STEPS_PKI, "pki"));
    dx_step_out_fini (&out);
    return pki;
}

static void
test_server_makes_a_pki_and_its_sealed_bundle (void **state)
{
    (void) state;
    dx_step_out_t out;
    assert_int_equal (s_run (&out, "c1", "vpn.server", NULL, NULL), 0);
    assert_int_equal (out.outcome, DX_STEP_DONE);
    assert_int_equal (json_array_size (out.resources), 1);
    const json_t *resource = s_resource (&out, VPN_STEPS_PKI);
    assert_string_equal (json_string_value (json_object_get (resource, "kind")), "vpn.pki");
    assert_int_equal (strlen (json_string_value (json_object_get (resource, "provider_id"))), 64);

    //  The PKI: the cluster's, its secrets sealed
    json_t *pki = json_loads (s_attr (&out, VPN_STEPS_PKI, "pki"), 0, NULL);
    assert_non_null (pki);
    assert_string_equal (json_string_value (json_object_get (pki, "cluster")), "c1");
    const char *secrets [] = VPN_PKI_SECRETS;
    for (size_t i = 0; i < sizeof secrets / sizeof secrets [0]; i++)
        assert_true (strncmp (json_string_value (json_object_get (pki, secrets [i])),
                              "dx1:", 4) == 0);

    //  The bundle: every member dx_provision takes, of this CA
    char *text = s_open (&out, VPN_STEPS_PKI, "server");
    json_t *bundle = json_loads (text, 0, NULL);
    assert_non_null (bundle);
    const char *fields [] = VPN_STEPS_BUNDLE_FIELDS;
    assert_int_equal (json_object_size (bundle), sizeof fields / sizeof fields [0]);
    for (size_t i = 0; i < sizeof fields / sizeof fields [0]; i++)
        assert_non_null (json_string_value (json_object_get (bundle, fields [i])));
    assert_string_equal (json_string_value (json_object_get (bundle, "ca")),
                         json_string_value (json_object_get (pki, "ca_cert")));
    assert_non_null (strstr (json_string_value (json_object_get (bundle, "key")),
                             "PRIVATE KEY"));
    assert_non_null (strstr (json_string_value (json_object_get (bundle, "server_conf")),
                             "\nport 1194\n"));
    assert_true (strncmp (json_string_value (json_object_get (bundle, "auth")), "#!", 2) == 0);

    //  Nothing secret in clear in what the step reports
    char *reported = json_dumps (out.resources, 0);
    assert_null (strstr (reported, "PRIVATE KEY"));
    assert_null (strstr (reported, "OpenVPN Static key"));
    free (reported);
    free (text);
    json_decref (bundle);
    json_decref (pki);
    dx_step_out_fini (&out);
}

static void
test_server_keeps_the_recorded_pki (void **state)
{
    (void) state;
    char *pki = s_new_pki ("c1");
    dx_step_out_t first, again;
    assert_int_equal (s_run (&first, "c1", "vpn.server", pki, NULL), 0);
    assert_int_equal (s_run (&again, "c1", "vpn.server", pki, NULL), 0);
    //  Reported as it was recorded, byte for byte, with the same CA's bundle
    assert_string_equal (s_attr (&first, VPN_STEPS_PKI, "pki"), pki);
    assert_string_equal (s_attr (&again, VPN_STEPS_PKI, "pki"), pki);
    assert_string_equal (s_attr (&first, VPN_STEPS_PKI, "provider_id"),
                         s_attr (&again, VPN_STEPS_PKI, "provider_id"));
    char *one = s_open (&first, VPN_STEPS_PKI, "server");
    char *two = s_open (&again, VPN_STEPS_PKI, "server");
    assert_string_equal (one, two);
    free (one);
    free (two);
    dx_step_out_fini (&first);
    dx_step_out_fini (&again);

    //  A new PKI has another CA
    char *other = s_new_pki ("c1");
    assert_string_not_equal (other, pki);
    free (other);
    free (pki);
}

static void
test_profile_for_the_access_ip (void **state)
{
    (void) state;
    char *pki = s_new_pki ("c1");
    dx_step_out_t out;
    assert_int_equal (s_run (&out, "c1", "vpn.profile", pki, "203.0.113.9"), 0);
    assert_string_equal (s_attr (&out, VPN_STEPS_PROFILE, "kind"), "vpn.profile");
    assert_string_equal (s_attr (&out, VPN_STEPS_PROFILE, "remote"), "203.0.113.9");
    char *profile = s_open (&out, VPN_STEPS_PROFILE, "profile");
    assert_non_null (strstr (profile, "\nremote 203.0.113.9 1194\n"));
    assert_non_null (strstr (profile, "\nauth-user-pass\n"));
    json_t *json = json_loads (pki, 0, NULL);
    assert_non_null (strstr (profile, json_string_value (json_object_get (json, "ca_cert"))));
    char *reported = json_dumps (out.resources, 0);
    assert_null (strstr (reported, "OpenVPN Static key"));
    free (reported);
    dx_step_out_fini (&out);

    //  The same again: the same profile
    assert_int_equal (s_run (&out, "c1", "vpn.profile", pki, "203.0.113.9"), 0);
    char *again = s_open (&out, VPN_STEPS_PROFILE, "profile");
    assert_string_equal (again, profile);
    free (again);
    free (profile);
    json_decref (json);
    dx_step_out_fini (&out);
    free (pki);
}

static void
test_profile_needs_the_pki_and_an_address (void **state)
{
    (void) state;
    char *pki = s_new_pki ("c1");
    struct { const char *pki, *ip, *says; } cases [] = {
        { pki, NULL, "access_ip" },
        { NULL, "203.0.113.9", "vpn_pki" },
        { pki, "host.example.com", "not an IPv4 or IPv6 address" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        dx_step_out_t out;
        assert_int_equal (s_run (&out, "c1", "vpn.profile", cases [i].pki, cases [i].ip), -1);
        assert_int_equal (out.outcome, DX_STEP_FAILED);
        assert_true (out.permanent);
        assert_string_equal (out.code, "InvalidStep");
        assert_non_null (strstr (out.message, cases [i].says));
        assert_int_equal (json_array_size (out.resources), 0);
        dx_step_out_fini (&out);
    }
    free (pki);
}

static void
test_a_pki_that_does_not_open_is_never_replaced (void **state)
{
    (void) state;
    char *pki = s_new_pki ("c1");
    //  Sealed with another master key
    unsigned char key [32];
    memset (key, 0x11, sizeof key);
    dx_seal_t *other = dx_seal_new_key (key);
    vpn_steps_config_t config = { other };
    json_t *assign = s_assign ("c1", "vpn.server", pki, NULL);
    dx_step_out_t out;
    dx_step_out_init (&out, NULL, NULL);
    assert_int_equal (vpn_step_run (&config, assign, &out), -1);
    assert_string_equal (out.code, "VpnPkiUnreadable");
    assert_true (out.permanent);
    assert_int_equal (json_array_size (out.resources), 0);
    dx_step_out_fini (&out);
    json_decref (assign);
    dx_seal_destroy (&other);

    //  Another cluster's, or not JSON
    const char *kinds [] = { "vpn.server", "vpn.profile" };
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal (s_run (&out, "c2", kinds [i], pki, "203.0.113.9"), -1);
        assert_string_equal (out.code, "VpnPkiUnreadable");
        assert_non_null (strstr (out.message, "another cluster's"));
        dx_step_out_fini (&out);
        assert_int_equal (s_run (&out, "c1", kinds [i], "{nope", "203.0.113.9"), -1);
        assert_string_equal (out.code, "VpnPkiUnreadable");
        assert_int_equal (json_array_size (out.resources), 0);
        dx_step_out_fini (&out);
    }
    free (pki);
}

static void
test_bad_jobs_are_refused (void **state)
{
    (void) state;
    dx_step_out_t out;
    assert_int_equal (s_run (&out, "c1", "vpn.nothing", NULL, NULL), -1);
    assert_string_equal (out.code, "InvalidStep");
    assert_true (out.permanent);
    dx_step_out_fini (&out);
    //  A name the PKI refuses: no PKI, and a retry cannot help
    assert_int_equal (s_run (&out, "Bad_Name", "vpn.server", NULL, NULL), -1);
    assert_int_equal (out.outcome, DX_STEP_FAILED);
    assert_int_equal (json_array_size (out.resources), 0);
    dx_step_out_fini (&out);
    //  No seal
    vpn_steps_config_t none = { NULL };
    json_t *assign = s_assign ("c1", "vpn.server", NULL, NULL);
    dx_step_out_init (&out, NULL, NULL);
    assert_int_equal (vpn_step_run (&none, assign, &out), -1);
    assert_string_equal (out.code, "InvalidStep");
    dx_step_out_fini (&out);
    json_decref (assign);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_server_makes_a_pki_and_its_sealed_bundle),
        cmocka_unit_test (test_server_keeps_the_recorded_pki),
        cmocka_unit_test (test_profile_for_the_access_ip),
        cmocka_unit_test (test_profile_needs_the_pki_and_an_address),
        cmocka_unit_test (test_a_pki_that_does_not_open_is_never_replaced),
        cmocka_unit_test (test_bad_jobs_are_refused),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
