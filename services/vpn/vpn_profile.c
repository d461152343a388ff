/*  vpn_profile: a cluster's OpenVPN files. See vpn_profile.h.

    Texts holding a private key are sized first and written once into one
    block, so no copy of the key is left behind in memory a realloc gave
    back; the caller wipes the block. */
#include "vpn_profile.h"
#include "vpn_auth.h"
#include "dx_netplan.h"
#include "dx_spec.h"
#include "dx_util.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CA_FILE        VPN_SERVER_DIR "/ca.crt"
#define S_CERT_FILE      VPN_SERVER_DIR "/server.crt"
#define S_KEY_FILE       VPN_SERVER_DIR "/server.key"
#define S_TLS_CRYPT_FILE VPN_SERVER_DIR "/tls-crypt.key"
#define S_CRL_FILE       VPN_SERVER_DIR "/crl.pem"

//  printf into a block of exactly the right size (caller frees, wiping it
//  if it holds a secret). NULL on failure.
static char *
s_format (const char *format, ...)
    __attribute__ ((format (printf, 1, 2)));

static char *
s_format (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int len = vsnprintf (NULL, 0, format, args);
    va_end (args);
    char *text = len >= 0? malloc ((size_t) len + 1): NULL;
    if (text) {
        va_start (args, format);
        vsnprintf (text, (size_t) len + 1, format, args);
        va_end (args);
    }
    return text;
}

//  True if text is one PEM block of kind ("CERTIFICATE", "PRIVATE KEY",
//  ...): its BEGIN line, base64 lines, its END line and a newline.
static bool
s_pem_valid (const char *text, const char *kind)
{
    char begin [64], end [64];
    snprintf (begin, sizeof begin, "-----BEGIN %s-----\n", kind);
    snprintf (end, sizeof end, "-----END %s-----\n", kind);
    size_t len = text? strlen (text): 0;
    if (len < strlen (begin) + strlen (end)
    ||  strncmp (text, begin, strlen (begin)) != 0
    ||  strcmp (text + len - strlen (end), end) != 0)
        return false;
    for (size_t i = strlen (begin); i < len - strlen (end); i++)
        if (!strchr ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n",
                     text [i]))
            return false;
    return true;
}

//  True if text comes through the reference's `echo -e \`… | tr -d '"'\``
//  unchanged: the shell splits it into words at blanks and joins them
//  with one space, globs words with * ? [, and echo -e reads backslashes.
static bool
s_echo_safe (const char *text)
{
    for (const char *at = text; *at; at++) {
        if (strchr ("\"\\*?[\t\r", *at))
            return false;
        if (*at == ' ' && (at == text || at [-1] == ' ' || at [-1] == '\n'
                           || at [1] == '\n' || at [1] == 0))
            return false;
    }
    return true;
}

//  The cluster network as an OpenVPN route: "10.0.0.0 255.255.0.0".
static int
s_cluster_route (char *buf, size_t size)
{
    char net [INET_ADDRSTRLEN];
    int prefix;
    struct in_addr addr;
    if (sscanf (DX_NET_CIDR, "%15[0-9.]/%d", net, &prefix) != 2
    ||  prefix < 1 || prefix > 32 || inet_pton (AF_INET, net, &addr) != 1)
        return -1;
    struct in_addr mask = { htonl (0xffffffffu << (32 - prefix)) };
    char mask_text [INET_ADDRSTRLEN];
    inet_ntop (AF_INET, &mask, mask_text, sizeof mask_text);
    snprintf (buf, size, "%s %s", net, mask_text);
    return 0;
}

static bool
s_ip_valid (const char *ip)
{
    unsigned char addr [sizeof (struct in6_addr)];
    return ip && (inet_pton (AF_INET, ip, addr) == 1 || inet_pton (AF_INET6, ip, addr) == 1);
}

//  The PKI's texts that go into files, checked again: a PKI is loaded
//  from storage, and a file must never carry what is not a key.
static bool
s_pki_valid (const vpn_pki_t *pki)
{
    return dx_spec_name_valid (vpn_pki_cluster (pki))
        && s_pem_valid (vpn_pki_ca_pem (pki), "CERTIFICATE")
        && s_pem_valid (vpn_pki_server_cert_pem (pki), "CERTIFICATE")
        && s_pem_valid (vpn_pki_server_key_pem (pki), "PRIVATE KEY")
        && s_pem_valid (vpn_pki_crl_pem (pki), "X509 CRL")
        && s_echo_safe (vpn_pki_tls_crypt (pki));
}

char *
vpn_profile_client (const vpn_pki_t *pki, const char *remote_ip,
                    const char *cert_pem, const char *key_pem)
{
    bool with_cert = cert_pem || key_pem;
    if (!s_pki_valid (pki) || !s_ip_valid (remote_ip)
    ||  (with_cert && (!s_pem_valid (cert_pem, "CERTIFICATE")
                       || !s_pem_valid (key_pem, "PRIVATE KEY"))))
        return NULL;
    char *text = s_format (
        "# Dexter cluster %s: OpenVPN client profile\n"
        "client\n"
        "dev tun\n"
        "proto udp\n"
        "remote %s %d\n"
        "resolv-retry infinite\n"
        "nobind\n"
        "remote-cert-tls server\n"
        "%s"
        "verb 3\n"
        "<ca>\n%s</ca>\n"
        "<tls-crypt>\n%s</tls-crypt>\n"
        "%s%s%s%s%s",
        vpn_pki_cluster (pki), remote_ip, VPN_PORT,
        with_cert? "": "auth-user-pass\n",
        vpn_pki_ca_pem (pki), vpn_pki_tls_crypt (pki),
        with_cert? "<cert>\n": "", with_cert? cert_pem: "", with_cert? "</cert>\n<key>\n": "",
        with_cert? key_pem: "", with_cert? "</key>\n": "");
    if (text && !s_echo_safe (text)) {
        dx_free_wiped (text);
        text = NULL;
    }
    return text;
}

char *
vpn_profile_server (const vpn_pki_t *pki)
{
    char route [64];
    if (!s_pki_valid (pki) || s_cluster_route (route, sizeof route))
        return NULL;
    return s_format (
        "# Dexter cluster %s: the access node's OpenVPN server (openvpn-server@dexter).\n"
        "# Clients log in with a certificate of the cluster's CA, or with a user's\n"
        "# password checked by PAM service '%s' (%s); anyone else is refused.\n"
        "# It runs as root: PAM reads the users' password hashes.\n"
        "port %d\n"
        "proto udp\n"
        "dev tun\n"
        "topology subnet\n"
        "server %s\n"
        "push \"route %s\"\n"
        "keepalive 10 60\n"
        "persist-tun\n"
        "explicit-exit-notify 1\n"
        "ca %s\n"
        "cert %s\n"
        "key %s\n"
        "dh none\n"
        "tls-crypt %s\n"
        "crl-verify %s\n"
        "tls-version-min 1.2\n"
        "remote-cert-tls client\n"
        "verify-client-cert optional\n"
        "auth-user-pass-optional\n"
        "script-security 2\n"
        "auth-user-pass-verify %s via-file\n"
        "verb 3\n",
        vpn_pki_cluster (pki), VPN_PAM_SERVICE, VPN_AUTH_SCRIPT,
        VPN_PORT, VPN_POOL, route,
        S_CA_FILE, S_CERT_FILE, S_KEY_FILE, S_TLS_CRYPT_FILE, S_CRL_FILE, VPN_AUTH_SCRIPT);
}

static int
s_file (json_t *files, const char *path, const char *mode, const char *content)
{
    return content? json_array_append_new (files, json_pack ("{s:s, s:s, s:s}", "path", path,
                                           "permissions", mode, "content", content)): -1;
}

json_t *
vpn_profile_server_files (const vpn_pki_t *pki)
{
    char *config = vpn_profile_server (pki);
    json_t *files = json_array ();
    if (!config || !files
    ||  s_file (files, VPN_SERVER_CONF, "0644", config)
    ||  s_file (files, S_CA_FILE, "0644", vpn_pki_ca_pem (pki))
    ||  s_file (files, S_CERT_FILE, "0644", vpn_pki_server_cert_pem (pki))
    ||  s_file (files, S_KEY_FILE, "0600", vpn_pki_server_key_pem (pki))
    ||  s_file (files, S_TLS_CRYPT_FILE, "0600", vpn_pki_tls_crypt (pki))
    ||  s_file (files, S_CRL_FILE, "0644", vpn_pki_crl_pem (pki))
    ||  s_file (files, VPN_AUTH_SCRIPT, "0755", vpn_auth_script))
        json_decref (files), files = NULL;
    free (config);
    return files;
}
