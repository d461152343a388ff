/*  Unit tests for services/vpn/vpn_pki.c: the CA, server and client
    certificates verify against the CA for their purpose (X509_verify_cert)
    and carry the right extensions; serials are unique; a revocation lands
    in a CRL the CA signed and makes the certificate fail verification;
    the JSON form round-trips, plain and sealed, and a tampered one is
    refused; nothing changes on an error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../../services/vpn/vpn_pki.h"
#include "dx_seal.h"
#include "dx_util.h"
#include "harness.h"

#define S_DAY 86400

static X509 *
s_cert (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
    BIO_free (bio);
    assert_non_null (cert);
    return cert;
}

static EVP_PKEY *
s_key (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    EVP_PKEY *key = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
    BIO_free (bio);
    assert_non_null (key);
    return key;
}

static X509_CRL *
s_crl (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    X509_CRL *crl = PEM_read_bio_X509_CRL (bio, NULL, NULL, NULL);
    BIO_free (bio);
    assert_non_null (crl);
    return crl;
}

static void
s_assert_cn (X509 *cert, const char *cn)
{
    char text [64];
    assert_true (X509_NAME_get_text_by_NID (X509_get_subject_name (cert), NID_commonName,
                                            text, sizeof text) > 0);
    assert_string_equal (text, cn);
}

//  EC P-256, signed with ECDSA over SHA-256.
static void
s_assert_algorithms (X509 *cert)
{
    assert_int_equal (X509_get_signature_nid (cert), NID_ecdsa_with_SHA256);
    EVP_PKEY *key = X509_get0_pubkey (cert);
    char group [64];
    size_t len;
    assert_int_equal (EVP_PKEY_get_base_id (key), EVP_PKEY_EC);
    assert_int_equal (EVP_PKEY_get_group_name (key, group, sizeof group, &len), 1);
    assert_string_equal (group, "prime256v1");
}

//  notAfter is days ahead of now, give or take a minute.
static void
s_assert_days (const ASN1_TIME *not_after, int days)
{
    int day, sec;
    assert_int_equal (ASN1_TIME_diff (&day, &sec, NULL, not_after), 1);
    long long ahead = (long long) day * S_DAY + sec;
    assert_true (ahead > (long long) days * S_DAY - 60);
    assert_true (ahead <= (long long) days * S_DAY);
}

//  X509_verify_cert of pem against the PKI's CA for purpose, with the
//  PKI's CRL when crl is set: 1, or the negated X509_V_ERR.
static int
s_verify (const vpn_pki_t *pki, const char *pem, int purpose, int crl)
{
    X509_STORE *store = X509_STORE_new ();
    X509 *ca = s_cert (vpn_pki_ca_pem (pki));
    assert_int_equal (X509_STORE_add_cert (store, ca), 1);
    X509_CRL *list = NULL;
    if (crl) {
        list = s_crl (vpn_pki_crl_pem (pki));
        assert_int_equal (X509_STORE_add_crl (store, list), 1);
        X509_STORE_set_flags (store, X509_V_FLAG_CRL_CHECK);
    }
    X509 *cert = s_cert (pem);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new ();
    assert_int_equal (X509_STORE_CTX_init (ctx, store, cert, NULL), 1);
    assert_int_equal (X509_STORE_CTX_set_purpose (ctx, purpose), 1);
    int rc = X509_verify_cert (ctx) == 1? 1: -X509_STORE_CTX_get_error (ctx);
    X509_STORE_CTX_free (ctx);
    X509_free (cert);
    X509_CRL_free (list);
    X509_free (ca);
    X509_STORE_free (store);
    return rc;
}

static uint64_t
s_serial (X509 *cert)
{
    uint64_t serial;
    assert_int_equal (ASN1_INTEGER_get_uint64 (&serial, X509_get0_serialNumber (cert)), 1);
    return serial;
}


//  ---------------------------------------------------------------------

static void
test_ca_is_a_ca (void **state)
{
    (void) state;
    vpn_pki_t *pki = vpn_pki_new ("c1");
    assert_non_null (pki);
    assert_string_equal (vpn_pki_cluster (pki), "c1");
    X509 *ca = s_cert (vpn_pki_ca_pem (pki));
    s_assert_cn (ca, "c1-ca");
    s_assert_algorithms (ca);
    assert_int_equal (X509_check_ca (ca), 1);
    assert_true (X509_get_extension_flags (ca) & EXFLAG_CA);
    int critical = 0;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i (ca, NID_basic_constraints, &critical, NULL);
    assert_non_null (bc);
    assert_true (bc->ca);
    assert_int_equal (critical, 1);
    BASIC_CONSTRAINTS_free (bc);
    assert_int_equal (X509_get_key_usage (ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal (X509_check_issued (ca, ca), X509_V_OK);
    assert_int_equal (s_serial (ca), 1);
    s_assert_days (X509_get0_notAfter (ca), VPN_PKI_CA_DAYS);
    assert_int_equal (s_verify (pki, vpn_pki_ca_pem (pki), X509_PURPOSE_ANY, 1), 1);
    X509_free (ca);
    vpn_pki_destroy (&pki);
    assert_null (pki);
    vpn_pki_destroy (&pki);
}

static void
test_server_certificate_serves (void **state)
{
    (void) state;
    vpn_pki_t *pki = vpn_pki_new ("c1");
    X509 *server = s_cert (vpn_pki_server_cert_pem (pki));
    s_assert_cn (server, "c1-access");
    s_assert_algorithms (server);
    assert_int_equal (X509_check_ca (server), 0);
    assert_int_equal (X509_get_extended_key_usage (server), XKU_SSL_SERVER);
    assert_int_equal (X509_get_key_usage (server), KU_DIGITAL_SIGNATURE);
    assert_int_equal (s_serial (server), 2);
    s_assert_days (X509_get0_notAfter (server), VPN_PKI_SERVER_DAYS);
    EVP_PKEY *key = s_key (vpn_pki_server_key_pem (pki));
    assert_int_equal (X509_check_private_key (server, key), 1);
    assert_int_equal (s_verify (pki, vpn_pki_server_cert_pem (pki), X509_PURPOSE_SSL_SERVER, 1), 1);
    assert_int_equal (s_verify (pki, vpn_pki_server_cert_pem (pki), X509_PURPOSE_SSL_CLIENT, 1),
                      -X509_V_ERR_INVALID_PURPOSE);
    EVP_PKEY_free (key);
    X509_free (server);
    vpn_pki_destroy (&pki);
}

static void
test_tls_crypt_key_is_openvpns_format (void **state)
{
    (void) state;
    vpn_pki_t *a = vpn_pki_new ("c1"), *b = vpn_pki_new ("c1");
    const char *text = vpn_pki_tls_crypt (a);
    const char *head = "#\n# 2048 bit OpenVPN static key\n#\n"
                       "-----BEGIN OpenVPN Static key V1-----\n";
    assert_int_equal (strncmp (text, head, strlen (head)), 0);
    const char *line = text + strlen (head);
    for (int i = 0; i < 16; i++, line += 33) {
        assert_int_equal (strspn (line, "0123456789abcdef"), 32);
        assert_int_equal (line [32], '\n');
    }
    assert_string_equal (line, "-----END OpenVPN Static key V1-----\n");
    assert_string_not_equal (text, vpn_pki_tls_crypt (b));
    assert_string_not_equal (vpn_pki_ca_pem (a), vpn_pki_ca_pem (b));
    vpn_pki_destroy (&a);
    vpn_pki_destroy (&b);
}

static void
test_new_refuses_a_bad_cluster_name (void **state)
{
    (void) state;
    assert_null (vpn_pki_new (NULL));
    assert_null (vpn_pki_new (""));
    assert_null (vpn_pki_new ("C1"));
    assert_null (vpn_pki_new ("c1-x"));
    assert_null (vpn_pki_new ("abcdefghijklmnopq"));          /* 17 */
    vpn_pki_t *pki = vpn_pki_new ("abcdefghijklmnop");         /* 16 */
    assert_non_null (pki);
    vpn_pki_destroy (&pki);
}

static void
test_clients_verify_with_unique_serials (void **state)
{
    (void) state;
    vpn_pki_t *pki = vpn_pki_new ("c1");
    const char *names [] = { "alice", "bob", "carol" };
    uint64_t serials [5] = { 1, 2 };
    for (int i = 0; i < 3; i++) {
        char *cert_pem, *key_pem;
        assert_int_equal (vpn_pki_next_serial (pki), 3 + i);
        assert_int_equal (vpn_pki_issue (pki, names [i], &cert_pem, &key_pem), VPN_PKI_OK);
        X509 *cert = s_cert (cert_pem);
        EVP_PKEY *key = s_key (key_pem);
        s_assert_cn (cert, names [i]);
        s_assert_algorithms (cert);
        assert_int_equal (X509_check_private_key (cert, key), 1);
        assert_int_equal (X509_get_extended_key_usage (cert), XKU_SSL_CLIENT);
        assert_int_equal (X509_get_key_usage (cert), KU_DIGITAL_SIGNATURE);
        assert_int_equal (X509_check_ca (cert), 0);
        s_assert_days (X509_get0_notAfter (cert), VPN_PKI_CLIENT_DAYS);
        assert_int_equal (s_verify (pki, cert_pem, X509_PURPOSE_SSL_CLIENT, 1), 1);
        assert_int_equal (s_verify (pki, cert_pem, X509_PURPOSE_SSL_SERVER, 1),
                          -X509_V_ERR_INVALID_PURPOSE);
        serials [2 + i] = s_serial (cert);
        for (int j = 0; j < 2 + i; j++)
            assert_true (serials [j] != serials [2 + i]);

        json_t *users = vpn_pki_users (pki);
        json_t *user = json_array_get (users, (size_t) i);
        assert_string_equal (json_string_value (json_object_get (user, "name")), names [i]);
        assert_int_equal (json_integer_value (json_object_get (user, "serial")), serials [2 + i]);
        assert_true (json_is_false (json_object_get (user, "revoked")));
        char expiry [32];
        int day, sec;
        ASN1_TIME_diff (&day, &sec, NULL, X509_get0_notAfter (cert));
        int64_t not_after = (int64_t) time (NULL) + (int64_t) day * S_DAY + sec;
        dx_time_iso (not_after * 1000, expiry, sizeof expiry);
        assert_int_equal (strncmp (json_string_value (json_object_get (user, "expiry")),
                                   expiry, 16), 0);       /* to the minute */
        json_decref (users);
        EVP_PKEY_free (key);
        X509_free (cert);
        free (cert_pem);
        dx_free_wiped (key_pem);
    }
    vpn_pki_destroy (&pki);
}

//  The PKI's JSON (plain), to compare states.
static json_t *
s_state (const vpn_pki_t *pki)
{
    json_t *json = vpn_pki_to_json (pki, NULL);
    assert_non_null (json);
    return json;
}

static void
test_issue_refuses_and_changes_nothing (void **state)
{
    (void) state;
    vpn_pki_t *pki = vpn_pki_new ("c1");
    char *cert, *key;
    assert_int_equal (vpn_pki_issue (pki, "alice", &cert, &key), VPN_PKI_OK);
    free (cert);
    dx_free_wiped (key);
    json_t *before = s_state (pki);
    const char *bad [] = { "", "Alice", "al ice", "a-b", "1alice", "abcdefghijklmnopq" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert_int_equal (vpn_pki_issue (pki, bad [i], &cert, &key), VPN_PKI_INVALID);
        assert_null (cert);
        assert_null (key);
    }
    assert_int_equal (vpn_pki_issue (pki, NULL, &cert, &key), VPN_PKI_INVALID);
    assert_int_equal (vpn_pki_issue (pki, "alice", &cert, &key), VPN_PKI_EXISTS);
    assert_null (cert);
    assert_int_equal (vpn_pki_revoke (pki, "nobody"), VPN_PKI_NOT_FOUND);
    assert_int_equal (vpn_pki_revoke (pki, "No"), VPN_PKI_INVALID);
    json_t *after = s_state (pki);
    assert_true (json_equal (before, after));
    json_decref (before);
    json_decref (after);

    /* A revoked name stays taken. */
    assert_int_equal (vpn_pki_revoke (pki, "alice"), VPN_PKI_OK);
    assert_int_equal (vpn_pki_issue (pki, "alice", &cert, &key), VPN_PKI_EXISTS);
    vpn_pki_destroy (&pki);
}

static void
test_empty_crl_is_the_cas (void **state)
{
    (void) state;
    vpn_pki_t *pki = vpn_pki_new ("c1");
    X509 *ca = s_cert (vpn_pki_ca_pem (pki));
    X509_CRL *crl = s_crl (vpn_pki_crl_pem (pki));
    assert_int_equal (X509_CRL_verify (crl, X509_get0_pubkey (ca)), 1);
    assert_int_equal (X509_NAME_cmp (X509_CRL_get_issuer (crl), X509_get_subject_name (ca)), 0);
    assert_true (sk_X509_REVOKED_num (X509_CRL_get_REVOKED (crl)) <= 0);   /* none: no list */
    assert_int_equal (ASN1_TIME_compare (X509_CRL_get0_nextUpdate (crl), X509_get0_notAfter (ca)), 0);
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i (crl, NID_crl_number, NULL, NULL);
    assert_int_equal (ASN1_INTEGER_get (number), 1);
    ASN1_INTEGER_free (number);
    X509_CRL_free (crl);
    X509_free (ca);
    vpn_pki_destroy (&pki);
}

static void
test_revocation_lands_in_the_crl (void **state)
{
    (void) state;
    vpn_pki_t *pki = vpn_pki_new ("c1");
    char *alice, *bob, *key;
    assert_int_equal (vpn_pki_issue (pki, "alice", &alice, &key), VPN_PKI_OK);
    dx_free_wiped (key);
    assert_int_equal (vpn_pki_issue (pki, "bob", &bob, &key), VPN_PKI_OK);
    dx_free_wiped (key);
    assert_int_equal (s_verify (pki, bob, X509_PURPOSE_SSL_CLIENT, 1), 1);

    assert_int_equal (vpn_pki_revoke (pki, "bob"), VPN_PKI_OK);
    X509 *ca = s_cert (vpn_pki_ca_pem (pki));
    X509 *bob_cert = s_cert (bob), *alice_cert = s_cert (alice);
    X509_CRL *crl = s_crl (vpn_pki_crl_pem (pki));
    assert_int_equal (X509_CRL_verify (crl, X509_get0_pubkey (ca)), 1);
    assert_int_equal (sk_X509_REVOKED_num (X509_CRL_get_REVOKED (crl)), 1);
    X509_REVOKED *entry = NULL;
    assert_int_equal (X509_CRL_get0_by_cert (crl, &entry, bob_cert), 1);
    assert_int_equal (X509_CRL_get0_by_cert (crl, &entry, alice_cert), 0);
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i (crl, NID_crl_number, NULL, NULL);
    assert_int_equal (ASN1_INTEGER_get (number), 2);
    ASN1_INTEGER_free (number);
    assert_int_equal (s_verify (pki, bob, X509_PURPOSE_SSL_CLIENT, 1), -X509_V_ERR_CERT_REVOKED);
    assert_int_equal (s_verify (pki, alice, X509_PURPOSE_SSL_CLIENT, 1), 1);

    json_t *users = vpn_pki_users (pki);
    json_t *user = json_array_get (users, 1);
    assert_true (json_is_true (json_object_get (user, "revoked")));
    assert_non_null (json_string_value (json_object_get (user, "revoked_at")));
    assert_true (json_is_false (json_object_get (json_array_get (users, 0), "revoked")));
    json_decref (users);

    /* Again: nothing changes. Then alice: both are listed. */
    char *crl_before = strdup (vpn_pki_crl_pem (pki));
    assert_int_equal (vpn_pki_revoke (pki, "bob"), VPN_PKI_OK);
    assert_string_equal (vpn_pki_crl_pem (pki), crl_before);
    assert_int_equal (vpn_pki_revoke (pki, "alice"), VPN_PKI_OK);
    assert_int_equal (s_verify (pki, alice, X509_PURPOSE_SSL_CLIENT, 1), -X509_V_ERR_CERT_REVOKED);
    assert_int_equal (s_verify (pki, bob, X509_PURPOSE_SSL_CLIENT, 1), -X509_V_ERR_CERT_REVOKED);
    free (crl_before);
    X509_CRL_free (crl);
    X509_free (alice_cert);
    X509_free (bob_cert);
    X509_free (ca);
    free (alice);
    free (bob);
    vpn_pki_destroy (&pki);
}

//  A PKI with two users, one revoked.
static vpn_pki_t *
s_pki_with_users (void)
{
    vpn_pki_t *pki = vpn_pki_new ("c1");
    char *cert, *key;
    assert_int_equal (vpn_pki_issue (pki, "alice", &cert, &key), VPN_PKI_OK);
    free (cert);
    dx_free_wiped (key);
    assert_int_equal (vpn_pki_issue (pki, "bob", &cert, &key), VPN_PKI_OK);
    free (cert);
    dx_free_wiped (key);
    assert_int_equal (vpn_pki_revoke (pki, "bob"), VPN_PKI_OK);
    return pki;
}

static void
test_json_round_trip (void **state)
{
    (void) state;
    vpn_pki_t *pki = s_pki_with_users ();
    json_t *json = s_state (pki);
    char *text = json_dumps (json, 0);
    json_t *read = json_loads (text, 0, NULL);
    const char *error = "unset";
    vpn_pki_t *loaded = vpn_pki_from_json (read, NULL, &error);
    assert_non_null (loaded);
    assert_null (error);
    json_t *again = s_state (loaded);
    assert_true (json_equal (json, again));
    assert_string_equal (vpn_pki_crl_pem (loaded), vpn_pki_crl_pem (pki));
    assert_int_equal (vpn_pki_next_serial (loaded), 5);

    /* The loaded PKI goes on where the first left off. */
    char *cert, *key;
    assert_int_equal (vpn_pki_issue (loaded, "bob", &cert, &key), VPN_PKI_EXISTS);
    assert_int_equal (vpn_pki_issue (loaded, "carol", &cert, &key), VPN_PKI_OK);
    X509 *carol = s_cert (cert);
    assert_int_equal (s_serial (carol), 5);
    assert_int_equal (s_verify (pki, cert, X509_PURPOSE_SSL_CLIENT, 1), 1);
    X509_free (carol);
    free (cert);
    dx_free_wiped (key);

    json_decref (again);
    json_decref (read);
    free (text);
    json_decref (json);
    vpn_pki_destroy (&loaded);
    vpn_pki_destroy (&pki);
}

static void
test_json_sealed (void **state)
{
    (void) state;
    unsigned char key_a [32], key_b [32];
    memset (key_a, 0xa5, sizeof key_a);
    memset (key_b, 0x5b, sizeof key_b);
    dx_seal_t *seal = dx_seal_new_key (key_a), *other = dx_seal_new_key (key_b);
    vpn_pki_t *pki = s_pki_with_users ();
    json_t *sealed = vpn_pki_to_json (pki, seal);
    assert_non_null (sealed);
    const char *secrets [] = VPN_PKI_SECRETS;
    for (size_t i = 0; i < sizeof secrets / sizeof secrets [0]; i++)
        assert_int_equal (strncmp (json_string_value (json_object_get (sealed, secrets [i])),
                                   "dx1:", 4), 0);
    char *text = json_dumps (sealed, 0);
    assert_null (strstr (text, "PRIVATE KEY"));
    assert_null (strstr (text, "Static key"));
    char line [40];
    snprintf (line, sizeof line, "%.32s", strstr (vpn_pki_tls_crypt (pki), "V1-----\n") + 8);
    assert_null (strstr (text, line));
    assert_non_null (strstr (text, "BEGIN CERTIFICATE"));      /* public parts stay readable */
    free (text);

    vpn_pki_t *loaded = vpn_pki_from_json (sealed, seal, NULL);
    assert_non_null (loaded);
    json_t *plain = s_state (pki), *plain_loaded = s_state (loaded);
    assert_true (json_equal (plain, plain_loaded));

    const char *error = NULL;
    assert_null (vpn_pki_from_json (sealed, other, &error));
    assert_non_null (error);
    assert_null (vpn_pki_from_json (sealed, NULL, &error));
    assert_null (vpn_pki_from_json (plain, seal, &error));

    json_decref (plain);
    json_decref (plain_loaded);
    json_decref (sealed);
    vpn_pki_destroy (&loaded);
    vpn_pki_destroy (&pki);
    dx_seal_destroy (&seal);
    dx_seal_destroy (&other);
}

//  from_json of good with member set to value (NULL: removed) fails.
static void
s_refused (const json_t *good, const char *member, json_t *value)
{
    json_t *bad = json_deep_copy (good);
    if (value)
        json_object_set_new (bad, member, value);
    else
        json_object_del (bad, member);
    const char *error = NULL;
    vpn_pki_t *pki = vpn_pki_from_json (bad, NULL, &error);
    if (pki)
        fail_msg ("loaded with %s changed", member);
    assert_non_null (error);
    json_decref (bad);
}

//  As s_refused, with user index's member set to value.
static void
s_refused_user (const json_t *good, size_t index, const char *member, json_t *value)
{
    json_t *users = json_deep_copy (json_object_get (good, "users"));
    if (value)
        json_object_set_new (json_array_get (users, index), member, value);
    else
        json_object_del (json_array_get (users, index), member);
    s_refused (good, "users", users);
}

static void
test_from_json_refuses_what_does_not_fit (void **state)
{
    (void) state;
    vpn_pki_t *pki = s_pki_with_users (), *other = vpn_pki_new ("c1");
    json_t *good = s_state (pki), *theirs = s_state (other);
    vpn_pki_t *ok = vpn_pki_from_json (good, NULL, NULL);
    assert_non_null (ok);
    vpn_pki_destroy (&ok);
    assert_null (vpn_pki_from_json (NULL, NULL, NULL));
    assert_null (vpn_pki_from_json (json_object_get (good, "users"), NULL, NULL));

    const char *members [] = { "ca_cert", "ca_key", "server_cert", "server_key", "tls_crypt",
                               "crl", "cluster", "version", "next_serial", "crl_number", "users" };
    for (size_t i = 0; i < sizeof members / sizeof members [0]; i++)
        s_refused (good, members [i], NULL);
    /* Another CA's parts: each alone does not fit. */
    const char *parts [] = { "ca_cert", "ca_key", "server_cert", "server_key", "crl" };
    for (size_t i = 0; i < sizeof parts / sizeof parts [0]; i++)
        s_refused (good, parts [i], json_deep_copy (json_object_get (theirs, parts [i])));
    s_refused (good, "cluster", json_string ("c2"));
    s_refused (good, "cluster", json_string ("C1"));
    s_refused (good, "version", json_integer (2));
    s_refused (good, "next_serial", json_integer (4));        /* bob has 4 */
    s_refused (good, "next_serial", json_integer (0));
    s_refused (good, "crl_number", json_integer (0));
    s_refused (good, "ca_cert", json_string ("-----BEGIN CERTIFICATE-----\nAAAA\n"));
    s_refused (good, "ca_key", json_string (vpn_pki_server_key_pem (pki)));
    char *tls_crypt = strdup (vpn_pki_tls_crypt (pki));
    char *digit = strstr (tls_crypt, "V1-----\n") + 8;
    *digit = 'X';
    s_refused (good, "tls_crypt", json_string (tls_crypt));
    free (tls_crypt);
    s_refused (good, "users", json_object ());
    s_refused_user (good, 1, "name", json_string ("alice"));
    s_refused_user (good, 1, "name", json_string ("Bob"));
    s_refused_user (good, 1, "serial", json_integer (3));
    s_refused_user (good, 1, "serial", json_integer (2));
    s_refused_user (good, 1, "expiry", json_string ("soon"));
    s_refused_user (good, 1, "revoked_at", NULL);
    s_refused_user (good, 0, "revoked", json_string ("no"));
    s_refused_user (good, 0, "extra", json_true ());
    json_decref (good);
    json_decref (theirs);
    vpn_pki_destroy (&pki);
    vpn_pki_destroy (&other);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ca_is_a_ca),
        cmocka_unit_test (test_server_certificate_serves),
        cmocka_unit_test (test_tls_crypt_key_is_openvpns_format),
        cmocka_unit_test (test_new_refuses_a_bad_cluster_name),
        cmocka_unit_test (test_clients_verify_with_unique_serials),
        cmocka_unit_test (test_issue_refuses_and_changes_nothing),
        cmocka_unit_test (test_empty_crl_is_the_cas),
        cmocka_unit_test (test_revocation_lands_in_the_crl),
        cmocka_unit_test (test_json_round_trip),
        cmocka_unit_test (test_json_sealed),
        cmocka_unit_test (test_from_json_refuses_what_does_not_fit),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
