/*  vpn_profile: the OpenVPN files of a cluster, rendered from its PKI.

    - The client profile that GET …/deployment/vpn serves: `client`, `dev
      tun`, `proto udp`, `remote <access node's IP> 1194`, `remote-cert-tls
      server`, inline <ca> and <tls-crypt>, and `auth-user-pass` for the
      users made on the access node with adduser/passwd. A user issued a
      certificate (vpn_pki_issue) gets inline <cert> and <key> instead of
      `auth-user-pass`: the certificate is the credential.
    - The access node's server: its config (VPN_SERVER_CONF) and the files
      it names under VPN_SERVER_DIR, as cloud-init write_files entries.

    One server admits both kinds of client (docs/vpn.md, "Logins"):
    `verify-client-cert optional` verifies a certificate when the client
    sends one (chain, CRL, `remote-cert-tls client`), and
    `auth-user-pass-optional` with the auth-user-pass-verify script
    (vpn_auth.h) admits a client with a verified certificate and no
    password, or a user whose password PAM service VPN_PAM_SERVICE accepts.
    Anyone else is refused.

    A profile must survive the reference's
        echo -e `curl -qs …/deployment/vpn | tr -d '"'`
    byte for byte, so every text rendered here is checked to hold no '"',
    '\', glob character, tab, doubled space or space at a line's start;
    values (addresses, names, PEM texts) are checked before they are put
    into a file. Functions return NULL when a check fails. */
#ifndef VPN_PROFILE_H
#define VPN_PROFILE_H

#include <jansson.h>
#include "vpn_pki.h"

#define VPN_PORT          1194
#define VPN_POOL          "10.8.0.0 255.255.255.0"  /* the clients' addresses */
#define VPN_PAM_SERVICE   "login"
#define VPN_SERVER_CONF   "/etc/openvpn/server/dexter.conf"   /* openvpn-server@dexter */
#define VPN_SERVER_DIR    "/etc/openvpn/server/dexter"

/*  The client profile for pki's cluster with remote_ip (IPv4 or IPv6
    text) as the server. With cert_pem and key_pem (both or neither; a
    user's from vpn_pki_issue) the profile logs in with that certificate,
    without them with a password. Caller frees with dx_free_wiped (a
    profile may hold a private key). NULL if a value fails its check. */
char *vpn_profile_client (const vpn_pki_t *pki, const char *remote_ip,
                          const char *cert_pem, const char *key_pem);

/*  The access node's server config (caller frees). */
char *vpn_profile_server (const vpn_pki_t *pki);

/*  Every file the access node's OpenVPN server needs, as cloud-init
    write_files entries [{path, permissions, content}]: the config, CA,
    server certificate and key, tls-crypt key, CRL and the
    auth-user-pass-verify script. Caller owns; it holds the server's
    private key and the tls-crypt key, so it is a secret. NULL on failure. */
json_t *vpn_profile_server_files (const vpn_pki_t *pki);

#endif
