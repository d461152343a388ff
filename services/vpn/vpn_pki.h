/*  vpn_pki: one cluster's OpenVPN PKI, made with OpenSSL's libcrypto.

    What it holds (docs/vpn.md, "The PKI"):
      - a CA: EC P-256 key, self-signed, SHA-256, CA:TRUE, keyCertSign and
        cRLSign, valid VPN_PKI_CA_DAYS;
      - the access node's server certificate: CN NAME-access, serverAuth,
        valid VPN_PKI_SERVER_DAYS (never past the CA);
      - OpenVPN's tls-crypt key: 2048 random bits (libsodium's CSPRNG) in
        OpenVPN's "Static key V1" format;
      - the CRL, signed by the CA, valid until the CA expires;
      - the users it issued client certificates to (clientAuth, CN = the
        user's name, serials from one counter, valid VPN_PKI_CLIENT_DAYS):
        name, serial, expiry, revoked. A user's private key is handed to the
        caller once and never kept.

    Storage form: a JSON object (vpn_pki_to_json). Its secrets are the
    members VPN_PKI_SECRETS names; with a seal they are stored sealed
    (dx_seal), which is the only way a service may store them. The module
    writes no files and logs no key; the key material it frees is wiped
    (libcrypto clears the keys it frees; the PEM texts are wiped here).
    Copies in jansson's strings are wiped only under wiping allocators
    (json_set_alloc_funcs with dx_free_wiped, as services/api/main.c does),
    which a service holding a PKI installs.
    Loading a JSON object gives back the same PKI, byte for byte: nothing is
    made again once it exists.

    Not thread-safe: one PKI object per thread. */
#ifndef VPN_PKI_H
#define VPN_PKI_H

#include <stdint.h>
#include <jansson.h>
#include "dx_seal.h"

#define VPN_PKI_VERSION      1
#define VPN_PKI_CA_DAYS      3650
#define VPN_PKI_SERVER_DAYS  3650
#define VPN_PKI_CLIENT_DAYS  730
#define VPN_PKI_BACKDATE_S   3600       /* notBefore: an hour back, for clock skew */

/*  The JSON members that are secret: sealed when a seal is given. */
#define VPN_PKI_SECRETS { "ca_key", "server_key", "tls_crypt" }

/*  Results of the calls that change a PKI. On any error nothing changed. */
typedef enum {
    VPN_PKI_OK = 0,
    VPN_PKI_INVALID = -1,       /* a name breaks the cluster-name rule */
    VPN_PKI_EXISTS = -2,        /* the user already has a certificate */
    VPN_PKI_NOT_FOUND = -3,     /* no such user */
    VPN_PKI_ERROR = -4          /* libcrypto failed, or the CA has expired */
} vpn_pki_result_t;

typedef struct vpn_pki vpn_pki_t;

/*  Makes a new PKI for cluster (the cluster-name rule, dx_spec_name_valid):
    CA, server certificate, tls-crypt key, empty CRL. NULL on a bad name or
    a libcrypto failure. */
vpn_pki_t *vpn_pki_new (const char *cluster);

/*  Loads a PKI from its JSON object. seal opens the secret members (NULL:
    they are plain text, as vpn_pki_to_json wrote them without a seal).
    Checks everything: names, PEM texts, that the keys match their
    certificates, that the server certificate, the CRL and every serial
    are the CA's. NULL if anything is wrong; *error (if not NULL) then
    points at a static text saying what, never at a secret. */
vpn_pki_t *vpn_pki_from_json (const json_t *json, dx_seal_t *seal, const char **error);

/*  The PKI's JSON object (caller owns). With a seal the secret members are
    sealed; without one they are plain text, for tests and for a caller
    that seals them itself. NULL on failure. */
json_t *vpn_pki_to_json (const vpn_pki_t *self, dx_seal_t *seal);

/*  Frees the PKI, wiping its keys; safe on NULL; sets *self_p to NULL. */
void vpn_pki_destroy (vpn_pki_t **self_p);

/*  Borrowed views, valid while the PKI lives and unchanged. */
const char *vpn_pki_cluster (const vpn_pki_t *self);
const char *vpn_pki_ca_pem (const vpn_pki_t *self);
const char *vpn_pki_server_cert_pem (const vpn_pki_t *self);
const char *vpn_pki_server_key_pem (const vpn_pki_t *self);       /* secret */
const char *vpn_pki_tls_crypt (const vpn_pki_t *self);            /* secret */
const char *vpn_pki_crl_pem (const vpn_pki_t *self);              /* changes on revoke */

/*  The number of the current CRL: 1 for the empty CRL, one more with each
    revocation. */
uint64_t vpn_pki_crl_number (const vpn_pki_t *self);

/*  The serial the next client certificate gets. */
uint64_t vpn_pki_next_serial (const vpn_pki_t *self);

/*  The users, [{name, serial, expiry, revoked[, revoked_at]}] (caller
    owns): expiry and revoked_at are RFC 3339 UTC times. */
json_t *vpn_pki_users (const vpn_pki_t *self);

/*  Issues user a client certificate: a new EC P-256 key, CN user,
    clientAuth, the next serial. On VPN_PKI_OK *cert_pem and *key_pem are
    the certificate and its PKCS#8 private key (caller frees both; the key
    with dx_free_wiped) and the user is listed. A name once issued stays
    taken, revoked or not (VPN_PKI_EXISTS). */
vpn_pki_result_t vpn_pki_issue (vpn_pki_t *self, const char *user,
                                char **cert_pem, char **key_pem);

/*  Revokes user's certificate: a new CRL, signed by the CA, lists its
    serial. Revoking a revoked user changes nothing and is VPN_PKI_OK. */
vpn_pki_result_t vpn_pki_revoke (vpn_pki_t *self, const char *user);

#endif
