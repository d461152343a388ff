/*  vpn_pki: one cluster's OpenVPN PKI. See vpn_pki.h.

    The PEM texts are the PKI: they are what the JSON holds and what the
    profiles inline, so loading a JSON object and writing it again gives
    the same bytes. The CA's certificate and key are also held parsed,
    for signing. Serials come from one counter: the CA has 1, the server
    certificate 2, client certificates 3 and up, so every serial the CA
    ever signs is unique. The CRL is made again from the users' list at
    each revocation, with the next crlNumber, and is valid until the CA
    expires: OpenVPN refuses every client certificate once its CRL is
    past nextUpdate, and a new CRL reaches the access node only with a
    deploy. */
#include "vpn_pki.h"
#include "dx_spec.h"
#include "dx_util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#define S_CA_SERIAL       1
#define S_SERVER_SERIAL   2
#define S_FIRST_CLIENT    3
#define S_TLS_CRYPT_BYTES 256           /* 2048 bits */
#define S_TLS_CRYPT_LINE  16            /* bytes per hex line, as OpenVPN writes them */

static const char s_tls_crypt_head [] =
    "#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n";
static const char s_tls_crypt_tail [] = "-----END OpenVPN Static key V1-----\n";

struct vpn_pki {
    char cluster [DX_NAME_MAX + 1];
    char *ca_cert_pem;
    char *ca_key_pem;                   /* secret */
    char *server_cert_pem;
    char *server_key_pem;               /* secret */
    char *tls_crypt;                    /* secret */
    char *crl_pem;
    uint64_t next_serial;
    uint64_t crl_number;
    json_t *users;                      /* [{name, serial, expiry, revoked[, revoked_at]}] */
    X509 *ca;
    EVP_PKEY *ca_key;
};

typedef enum { S_CA, S_SERVER, S_CLIENT } s_kind_t;


//  ---------------------------------------------------------------------
//  PEM text in and out

//  The text a memory BIO holds, NUL-terminated (caller frees; wipe it if
//  it is secret). The BIO's own buffer is wiped when it is freed.
static char *
s_bio_text (BIO *bio)
{
    char *data;
    long len = BIO_get_mem_data (bio, &data);
    if (len <= 0)
        return NULL;
    char *text = malloc ((size_t) len + 1);
    if (text) {
        memcpy (text, data, (size_t) len);
        text [len] = 0;
    }
    return text;
}

static char *
s_cert_pem (X509 *cert)
{
    BIO *bio = BIO_new (BIO_s_mem ());
    char *text = bio && PEM_write_bio_X509 (bio, cert) == 1? s_bio_text (bio): NULL;
    BIO_free (bio);
    return text;
}

static char *
s_key_pem (EVP_PKEY *key)
{
    BIO *bio = BIO_new (BIO_s_mem ());
    char *text = bio && PEM_write_bio_PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL) == 1?
                 s_bio_text (bio): NULL;
    BIO_free (bio);
    return text;
}

static char *
s_crl_pem (X509_CRL *crl)
{
    BIO *bio = BIO_new (BIO_s_mem ());
    char *text = bio && PEM_write_bio_X509_CRL (bio, crl) == 1? s_bio_text (bio): NULL;
    BIO_free (bio);
    return text;
}

static X509 *
s_read_cert (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    X509 *cert = bio? PEM_read_bio_X509 (bio, NULL, NULL, NULL): NULL;
    BIO_free (bio);
    return cert;
}

//  An unencrypted private key; a passphrase callback that gives nothing
//  makes an encrypted one fail instead of prompting.
static int
s_no_pass (char *buf, int size, int rwflag, void *u)
{
    (void) buf; (void) size; (void) rwflag; (void) u;
    return -1;
}

static EVP_PKEY *
s_read_key (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    EVP_PKEY *key = bio? PEM_read_bio_PrivateKey (bio, NULL, s_no_pass, NULL): NULL;
    BIO_free (bio);
    return key;
}

static X509_CRL *
s_read_crl (const char *pem)
{
    BIO *bio = BIO_new_mem_buf (pem, -1);
    X509_CRL *crl = bio? PEM_read_bio_X509_CRL (bio, NULL, NULL, NULL): NULL;
    BIO_free (bio);
    return crl;
}


//  ---------------------------------------------------------------------
//  Times

//  An ASN.1 time as seconds since the epoch; -1 if it cannot be read.
static int64_t
s_asn1_epoch (const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm (t, &tm) != 1)
        return -1;
    return (int64_t) timegm (&tm);
}

//  RFC 3339 text of an epoch (dx_time_iso's form); buf holds 32 bytes.
static const char *
s_iso (int64_t epoch, char *buf, size_t size)
{
    return dx_time_iso (epoch * 1000, buf, size);
}

//  The epoch of an s_iso text; -1 if it is not one.
static int64_t
s_iso_epoch (const char *text)
{
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    const char *end = text? strptime (text, "%Y-%m-%dT%H:%M:%S", &tm): NULL;
    if (!end || (*end != '.' && *end != 'Z'))
        return -1;
    return (int64_t) timegm (&tm);
}


//  ---------------------------------------------------------------------
//  Certificates

static int
s_add_ext (X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb (&ctx);
    X509V3_set_ctx (&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
    int rc = ext && X509_add_ext (cert, ext, -1) == 1? 0: -1;
    X509_EXTENSION_free (ext);
    return rc;
}

static EVP_PKEY *
s_key_new (void)
{
    return EVP_EC_gen ("P-256");
}

//  A certificate of kind for cn and key's public half, signed by signer:
//  issuer is the CA, or NULL for the CA itself. notAfter is days ahead
//  but never past the issuer's. NULL on failure, or if the issuer has
//  expired.
static X509 *
s_cert_new (s_kind_t kind, const char *cn, EVP_PKEY *key, uint64_t serial, int days,
            X509 *issuer, EVP_PKEY *signer)
{
    if (issuer && X509_cmp_current_time (X509_get0_notAfter (issuer)) <= 0)
        return NULL;
    X509 *cert = X509_new ();
    ASN1_INTEGER *number = ASN1_INTEGER_new ();
    bool ok = cert && number
        && X509_set_version (cert, X509_VERSION_3) == 1
        && ASN1_INTEGER_set_uint64 (number, serial) == 1
        && X509_set_serialNumber (cert, number) == 1
        && X509_time_adj_ex (X509_getm_notBefore (cert), 0, -VPN_PKI_BACKDATE_S, NULL)
        && X509_time_adj_ex (X509_getm_notAfter (cert), days, 0, NULL)
        && X509_NAME_add_entry_by_txt (X509_get_subject_name (cert), "CN", MBSTRING_ASC,
                                       (const unsigned char *) cn, -1, -1, 0) == 1
        && X509_set_issuer_name (cert, issuer? X509_get_subject_name (issuer)
                                             : X509_get_subject_name (cert)) == 1
        && X509_set_pubkey (cert, key) == 1;
    ASN1_INTEGER_free (number);
    if (ok && issuer
    &&  ASN1_TIME_compare (X509_get0_notAfter (cert), X509_get0_notAfter (issuer)) > 0)
        ok = X509_set1_notAfter (cert, X509_get0_notAfter (issuer)) == 1;

    X509 *by = issuer? issuer: cert;
    if (ok && kind == S_CA)
        ok = s_add_ext (cert, by, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") == 0
          && s_add_ext (cert, by, NID_key_usage, "critical,keyCertSign,cRLSign") == 0
          && s_add_ext (cert, by, NID_subject_key_identifier, "hash") == 0;
    else
    if (ok)
        ok = s_add_ext (cert, by, NID_basic_constraints, "critical,CA:FALSE") == 0
          && s_add_ext (cert, by, NID_key_usage, "critical,digitalSignature") == 0
          && s_add_ext (cert, by, NID_ext_key_usage,
                        kind == S_SERVER? "serverAuth": "clientAuth") == 0
          && s_add_ext (cert, by, NID_subject_key_identifier, "hash") == 0
          && s_add_ext (cert, by, NID_authority_key_identifier, "keyid:always") == 0;
    if (ok)
        ok = X509_sign (cert, signer, EVP_sha256 ()) > 0;
    if (!ok) {
        X509_free (cert);
        cert = NULL;
    }
    return cert;
}

//  The tls-crypt key text: 2048 bits from libsodium's CSPRNG in OpenVPN's
//  format (caller frees with dx_free_wiped).
static char *
s_tls_crypt_new (void)
{
    unsigned char key [S_TLS_CRYPT_BYTES];
    size_t size = sizeof s_tls_crypt_head - 1 + 2 * S_TLS_CRYPT_BYTES
                + S_TLS_CRYPT_BYTES / S_TLS_CRYPT_LINE + sizeof s_tls_crypt_tail;
    char *text = malloc (size);
    if (!text)
        return NULL;
    randombytes_buf (key, sizeof key);
    char *at = stpcpy (text, s_tls_crypt_head);
    for (size_t line = 0; line < S_TLS_CRYPT_BYTES / S_TLS_CRYPT_LINE; line++) {
        sodium_bin2hex (at, 2 * S_TLS_CRYPT_LINE + 1, key + line * S_TLS_CRYPT_LINE,
                        S_TLS_CRYPT_LINE);
        at += 2 * S_TLS_CRYPT_LINE;
        *at++ = '\n';
    }
    strcpy (at, s_tls_crypt_tail);
    sodium_memzero (key, sizeof key);
    return text;
}

//  True if text is exactly what s_tls_crypt_new writes.
static bool
s_tls_crypt_valid (const char *text)
{
    size_t head = sizeof s_tls_crypt_head - 1;
    size_t body = (2 * S_TLS_CRYPT_LINE + 1) * (S_TLS_CRYPT_BYTES / S_TLS_CRYPT_LINE);
    if (strlen (text) != head + body + sizeof s_tls_crypt_tail - 1
    ||  memcmp (text, s_tls_crypt_head, head) != 0
    ||  strcmp (text + head + body, s_tls_crypt_tail) != 0)
        return false;
    for (size_t i = 0; i < body; i++) {
        char c = text [head + i];
        bool newline = i % (2 * S_TLS_CRYPT_LINE + 1) == 2 * S_TLS_CRYPT_LINE;
        if (newline? c != '\n': !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}


//  ---------------------------------------------------------------------
//  The CRL

//  Lists serial in crl as revoked at `at` (seconds since the epoch).
static bool
s_crl_add (X509_CRL *crl, uint64_t serial, int64_t at)
{
    X509_REVOKED *entry = X509_REVOKED_new ();
    ASN1_INTEGER *number = ASN1_INTEGER_new ();
    ASN1_TIME *when = at >= 0? ASN1_TIME_set (NULL, (time_t) at): NULL;
    bool ok = entry && number && when
           && ASN1_INTEGER_set_uint64 (number, serial) == 1
           && X509_REVOKED_set_serialNumber (entry, number) == 1
           && X509_REVOKED_set_revocationDate (entry, when) == 1
           && X509_CRL_add0_revoked (crl, entry) == 1;
    if (!ok)
        X509_REVOKED_free (entry);
    ASN1_INTEGER_free (number);
    ASN1_TIME_free (when);
    return ok;
}

//  The CRL of every revoked user in users, numbered number, signed by the
//  CA; plus serial revoked at `at` when serial is not 0. PEM text (caller
//  frees) or NULL.
static char *
s_crl_new (vpn_pki_t *self, const json_t *users, uint64_t number,
           uint64_t serial, int64_t at)
{
    X509_CRL *crl = X509_CRL_new ();
    ASN1_TIME *now = ASN1_TIME_new ();
    ASN1_INTEGER *crl_number = ASN1_INTEGER_new ();
    bool ok = crl && now && crl_number
        && X509_CRL_set_version (crl, X509_CRL_VERSION_2) == 1
        && X509_CRL_set_issuer_name (crl, X509_get_subject_name (self->ca)) == 1
        && X509_time_adj_ex (now, 0, 0, NULL)
        && X509_CRL_set1_lastUpdate (crl, now) == 1
        && X509_CRL_set1_nextUpdate (crl, X509_get0_notAfter (self->ca)) == 1
        && ASN1_INTEGER_set_uint64 (crl_number, number) == 1
        && X509_CRL_add1_ext_i2d (crl, NID_crl_number, crl_number, 0, 0) == 1;

    size_t index;
    json_t *user;
    json_array_foreach (users, index, user)
        if (ok && json_is_true (json_object_get (user, "revoked")))
            ok = s_crl_add (crl, (uint64_t) json_integer_value (json_object_get (user, "serial")),
                            s_iso_epoch (json_string_value (json_object_get (user, "revoked_at"))));
    if (ok && serial)
        ok = s_crl_add (crl, serial, at);
    if (ok) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb (&ctx);
        X509V3_set_ctx (&ctx, self->ca, NULL, NULL, crl, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, NID_authority_key_identifier,
                                                   "keyid:always");
        ok = ext && X509_CRL_add_ext (crl, ext, -1) == 1
          && X509_CRL_sort (crl) == 1
          && X509_CRL_sign (crl, self->ca_key, EVP_sha256 ()) > 0;
        X509_EXTENSION_free (ext);
    }
    char *pem = ok? s_crl_pem (crl): NULL;
    X509_CRL_free (crl);
    ASN1_TIME_free (now);
    ASN1_INTEGER_free (crl_number);
    return pem;
}


//  ---------------------------------------------------------------------
//  Making, loading, saving

static void
s_free_secret (char **text_p)
{
    dx_free_wiped (*text_p);
    *text_p = NULL;
}

void
vpn_pki_destroy (vpn_pki_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vpn_pki_t *self = *self_p;
    free (self->ca_cert_pem);
    s_free_secret (&self->ca_key_pem);
    free (self->server_cert_pem);
    s_free_secret (&self->server_key_pem);
    s_free_secret (&self->tls_crypt);
    free (self->crl_pem);
    json_decref (self->users);
    X509_free (self->ca);
    EVP_PKEY_free (self->ca_key);       /* libcrypto clears private keys it frees */
    sodium_memzero (self, sizeof *self);
    free (self);
    *self_p = NULL;
}

vpn_pki_t *
vpn_pki_new (const char *cluster)
{
    if (!dx_spec_name_valid (cluster))
        return NULL;
    vpn_pki_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->cluster, sizeof self->cluster, "%s", cluster);
    self->next_serial = S_FIRST_CLIENT;
    self->crl_number = 1;
    self->users = json_array ();

    char cn [DX_NAME_MAX + 16];
    snprintf (cn, sizeof cn, "%s-ca", cluster);
    self->ca_key = s_key_new ();
    self->ca = self->ca_key? s_cert_new (S_CA, cn, self->ca_key, S_CA_SERIAL,
                                         VPN_PKI_CA_DAYS, NULL, self->ca_key): NULL;

    snprintf (cn, sizeof cn, "%s-access", cluster);
    EVP_PKEY *server_key = self->ca? s_key_new (): NULL;
    X509 *server = server_key? s_cert_new (S_SERVER, cn, server_key, S_SERVER_SERIAL,
                                           VPN_PKI_SERVER_DAYS, self->ca, self->ca_key): NULL;
    if (server) {
        self->ca_cert_pem = s_cert_pem (self->ca);
        self->ca_key_pem = s_key_pem (self->ca_key);
        self->server_cert_pem = s_cert_pem (server);
        self->server_key_pem = s_key_pem (server_key);
        self->tls_crypt = s_tls_crypt_new ();
        self->crl_pem = s_crl_new (self, self->users, self->crl_number, 0, 0);
    }
    X509_free (server);
    EVP_PKEY_free (server_key);
    if (!self->users || !self->ca_cert_pem || !self->ca_key_pem || !self->server_cert_pem
    ||  !self->server_key_pem || !self->tls_crypt || !self->crl_pem)
        vpn_pki_destroy (&self);
    return self;
}

//  A member's string; a secret member is opened with seal when there is
//  one. Caller frees (a secret with dx_free_wiped). NULL if missing.
static char *
s_member (const json_t *json, const char *name, bool secret, dx_seal_t *seal)
{
    const char *value = json_string_value (json_object_get (json, name));
    if (!value)
        return NULL;
    if (!secret || !seal)
        return strdup (value);
    size_t len;
    char *plain = dx_seal_open (seal, value, &len);
    if (!plain)
        return NULL;
    char *copy = strlen (plain) == len? strdup (plain): NULL;
    dx_seal_free (plain, len);
    return copy;
}

//  A positive integer member; 0 if missing or not one.
static uint64_t
s_count (const json_t *json, const char *name)
{
    json_t *value = json_object_get (json, name);
    return json_is_integer (value) && json_integer_value (value) > 0?
           (uint64_t) json_integer_value (value): 0;
}

//  Checks the users' list against the PKI: NULL, or what is wrong.
static const char *
s_users_check (const vpn_pki_t *self, const json_t *users)
{
    if (!json_is_array (users))
        return "users is not an array";
    size_t i, j;
    json_t *user, *other;
    json_array_foreach (users, i, user) {
        const char *name = json_string_value (json_object_get (user, "name"));
        uint64_t serial = s_count (user, "serial");
        json_t *revoked = json_object_get (user, "revoked");
        const char *at = json_string_value (json_object_get (user, "revoked_at"));
        if (!json_is_object (user) || json_object_size (user) != (json_is_true (revoked)? 5: 4))
            return "a user has the wrong members";
        if (!dx_spec_name_valid (name))
            return "a user's name breaks the name rule";
        if (serial < S_FIRST_CLIENT || serial >= self->next_serial)
            return "a user's serial was not issued by this PKI";
        if (s_iso_epoch (json_string_value (json_object_get (user, "expiry"))) < 0)
            return "a user's expiry is not a time";
        if (!json_is_boolean (revoked) || (json_is_true (revoked) && s_iso_epoch (at) < 0))
            return "a user's revocation is malformed";
        json_array_foreach (users, j, other) {
            if (j >= i)
                break;
            if (strcmp (name, json_string_value (json_object_get (other, "name"))) == 0
            ||  serial == s_count (other, "serial"))
                return "two users share a name or a serial";
        }
    }
    return NULL;
}

//  True if cert's subject is exactly CN=cn.
static bool
s_cn_is (X509 *cert, const char *cn)
{
    char text [DX_NAME_MAX + 16];
    X509_NAME *subject = X509_get_subject_name (cert);
    return X509_NAME_entry_count (subject) == 1
        && X509_NAME_get_text_by_NID (subject, NID_commonName, text, sizeof text) > 0
        && strcmp (text, cn) == 0;
}

//  Checks the loaded texts fit together: NULL, or what is wrong.
static const char *
s_check (vpn_pki_t *self)
{
    char cn [DX_NAME_MAX + 16];
    snprintf (cn, sizeof cn, "%s-ca", self->cluster);
    self->ca = s_read_cert (self->ca_cert_pem);
    self->ca_key = s_read_key (self->ca_key_pem);
    if (!self->ca || !self->ca_key)
        return "the CA's certificate or key is not PEM";
    if (X509_check_private_key (self->ca, self->ca_key) != 1
    ||  X509_verify (self->ca, self->ca_key) != 1
    ||  X509_check_ca (self->ca) != 1
    ||  !s_cn_is (self->ca, cn))
        return "the CA's certificate is not this cluster's, or not its key's";
    if (!s_tls_crypt_valid (self->tls_crypt))
        return "the tls-crypt key is not OpenVPN's static key format";

    X509 *server = s_read_cert (self->server_cert_pem);
    EVP_PKEY *server_key = s_read_key (self->server_key_pem);
    X509_CRL *crl = s_read_crl (self->crl_pem);
    const char *error = NULL;
    snprintf (cn, sizeof cn, "%s-access", self->cluster);
    if (!server || !server_key || !crl)
        error = "the server certificate, its key or the CRL is not PEM";
    else
    if (X509_verify (server, self->ca_key) != 1
    ||  X509_check_private_key (server, server_key) != 1
    ||  !s_cn_is (server, cn))
        error = "the server certificate is not the CA's or not its key's";
    else
    if (X509_CRL_verify (crl, self->ca_key) != 1)
        error = "the CRL is not the CA's";
    X509_free (server);
    EVP_PKEY_free (server_key);
    X509_CRL_free (crl);
    return error;
}

vpn_pki_t *
vpn_pki_from_json (const json_t *json, dx_seal_t *seal, const char **error)
{
    const char *why = NULL;
    vpn_pki_t *self = calloc (1, sizeof *self);
    if (!self)
        why = "out of memory";
    else
    if (!json_is_object (json)
    ||  json_integer_value (json_object_get (json, "version")) != VPN_PKI_VERSION)
        why = "not a PKI of this version";
    else
    if (!dx_spec_name_valid (json_string_value (json_object_get (json, "cluster"))))
        why = "the cluster's name breaks the name rule";
    else {
        snprintf (self->cluster, sizeof self->cluster, "%s",
                  json_string_value (json_object_get (json, "cluster")));
        self->ca_cert_pem = s_member (json, "ca_cert", false, seal);
        self->ca_key_pem = s_member (json, "ca_key", true, seal);
        self->server_cert_pem = s_member (json, "server_cert", false, seal);
        self->server_key_pem = s_member (json, "server_key", true, seal);
        self->tls_crypt = s_member (json, "tls_crypt", true, seal);
        self->crl_pem = s_member (json, "crl", false, seal);
        self->next_serial = s_count (json, "next_serial");
        self->crl_number = s_count (json, "crl_number");
        if (!self->ca_cert_pem || !self->ca_key_pem || !self->server_cert_pem
        ||  !self->server_key_pem || !self->tls_crypt || !self->crl_pem)
            why = "a member is missing, or a secret does not open with this seal";
        else
        if (self->next_serial < S_FIRST_CLIENT || !self->crl_number)
            why = "next_serial or crl_number is out of range";
        else
        if (!(why = s_users_check (self, json_object_get (json, "users"))))
            why = s_check (self);
    }
    if (!why)
        self->users = json_deep_copy (json_object_get (json, "users"));
    if (!why && !self->users)
        why = "out of memory";
    if (why)
        vpn_pki_destroy (&self);
    if (error)
        *error = why;
    return self;
}

//  Sets member name to text, sealed when secret and there is a seal.
static int
s_set (json_t *json, const char *name, const char *text, bool secret, dx_seal_t *seal)
{
    if (!secret || !seal)
        return json_object_set_new (json, name, json_string (text));
    char *sealed = dx_seal_seal (seal, text, strlen (text));
    int rc = sealed? json_object_set_new (json, name, json_string (sealed)): -1;
    free (sealed);
    return rc;
}

json_t *
vpn_pki_to_json (const vpn_pki_t *self, dx_seal_t *seal)
{
    json_t *json = json_pack ("{s:i, s:s, s:I, s:I, s:O}",
                              "version", VPN_PKI_VERSION, "cluster", self->cluster,
                              "next_serial", (json_int_t) self->next_serial,
                              "crl_number", (json_int_t) self->crl_number,
                              "users", self->users);
    if (!json
    ||  s_set (json, "ca_cert", self->ca_cert_pem, false, seal)
    ||  s_set (json, "ca_key", self->ca_key_pem, true, seal)
    ||  s_set (json, "server_cert", self->server_cert_pem, false, seal)
    ||  s_set (json, "server_key", self->server_key_pem, true, seal)
    ||  s_set (json, "tls_crypt", self->tls_crypt, true, seal)
    ||  s_set (json, "crl", self->crl_pem, false, seal))
        json_decref (json), json = NULL;
    return json;
}


//  ---------------------------------------------------------------------
//  Views

const char *vpn_pki_cluster (const vpn_pki_t *self) { return self->cluster; }
const char *vpn_pki_ca_pem (const vpn_pki_t *self) { return self->ca_cert_pem; }
const char *vpn_pki_server_cert_pem (const vpn_pki_t *self) { return self->server_cert_pem; }
const char *vpn_pki_server_key_pem (const vpn_pki_t *self) { return self->server_key_pem; }
const char *vpn_pki_tls_crypt (const vpn_pki_t *self) { return self->tls_crypt; }
const char *vpn_pki_crl_pem (const vpn_pki_t *self) { return self->crl_pem; }
uint64_t vpn_pki_next_serial (const vpn_pki_t *self) { return self->next_serial; }

uint64_t
vpn_pki_crl_number (const vpn_pki_t *self)
{
    return self->crl_number;
}

json_t *
vpn_pki_users (const vpn_pki_t *self)
{
    return json_deep_copy (self->users);
}

static json_t *
s_user (const vpn_pki_t *self, const char *name)
{
    size_t index;
    json_t *user;
    json_array_foreach (self->users, index, user)
        if (strcmp (json_string_value (json_object_get (user, "name")), name) == 0)
            return user;
    return NULL;
}


//  ---------------------------------------------------------------------
//  Users

vpn_pki_result_t
vpn_pki_issue (vpn_pki_t *self, const char *user, char **cert_pem, char **key_pem)
{
    *cert_pem = *key_pem = NULL;
    if (!dx_spec_name_valid (user))
        return VPN_PKI_INVALID;
    if (s_user (self, user))
        return VPN_PKI_EXISTS;

    EVP_PKEY *key = s_key_new ();
    X509 *cert = key? s_cert_new (S_CLIENT, user, key, self->next_serial, VPN_PKI_CLIENT_DAYS,
                                  self->ca, self->ca_key): NULL;
    char expiry [32];
    int64_t not_after = cert? s_asn1_epoch (X509_get0_notAfter (cert)): -1;
    char *cert_text = cert? s_cert_pem (cert): NULL;
    char *key_text = cert? s_key_pem (key): NULL;
    json_t *entry = not_after >= 0?
        json_pack ("{s:s, s:I, s:s, s:b}", "name", user,
                   "serial", (json_int_t) self->next_serial,
                   "expiry", s_iso (not_after, expiry, sizeof expiry), "revoked", 0): NULL;
    X509_free (cert);
    EVP_PKEY_free (key);
    if (!cert_text || !key_text || !entry || json_array_append_new (self->users, entry)) {
        free (cert_text);
        dx_free_wiped (key_text);
        return VPN_PKI_ERROR;
    }
    self->next_serial++;
    *cert_pem = cert_text;
    *key_pem = key_text;
    return VPN_PKI_OK;
}

vpn_pki_result_t
vpn_pki_revoke (vpn_pki_t *self, const char *user)
{
    if (!dx_spec_name_valid (user))
        return VPN_PKI_INVALID;
    json_t *entry = s_user (self, user);
    if (!entry)
        return VPN_PKI_NOT_FOUND;
    if (json_is_true (json_object_get (entry, "revoked")))
        return VPN_PKI_OK;

    int64_t now = dx_now_ms () / 1000;
    char at [32];
    char *crl = s_crl_new (self, self->users, self->crl_number + 1,
                           (uint64_t) json_integer_value (json_object_get (entry, "serial")), now);
    if (!crl
    ||  json_object_set_new (entry, "revoked_at", json_string (s_iso (now, at, sizeof at)))) {
        free (crl);
        return VPN_PKI_ERROR;
    }
    json_object_set_new (entry, "revoked", json_true ());
    free (self->crl_pem);
    self->crl_pem = crl;
    self->crl_number++;
    return VPN_PKI_OK;
}
