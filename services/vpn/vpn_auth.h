/*  vpn_auth: the access node's OpenVPN auth-user-pass-verify script.

    A Python 3 program (every cloud image with cloud-init has python3)
    that OpenVPN runs `via-file` for each client: a client that sent no
    username and no password is admitted only if OpenVPN verified its
    certificate (tls_serial_0 is set); a client that sent a username is
    admitted only if PAM service VPN_PAM_SERVICE ("login") authenticates
    it and its account is valid, through libpam called with ctypes.
    OpenVPN's PAM plugin cannot take this place: it refuses a blank
    username, which is what a certificate-only client sends. */
#ifndef VPN_AUTH_H
#define VPN_AUTH_H

#include "vpn_profile.h"

#define VPN_AUTH_SCRIPT VPN_SERVER_DIR "/auth.py"

/*  The script's text. */
extern const char vpn_auth_script [];

#endif
