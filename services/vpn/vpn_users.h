/*  vpn_users: the vpn worker's user steps, run on a cluster's recorded
    PKI when the api asks (proto/PROTOCOL.md, "VPN users"; docs/vpn.md,
    "Users"). The scheduler sends them as jobs like any step, one at a
    time per cluster and never while the cluster's vpn.server runs.

      - vpn.user.add: step.user gets a client certificate (vpn_pki_issue)
        and its profile: the password profile's remote, CA and tls-crypt
        key, with the certificate and key inline. Reports `vpn.pki` (`pki`,
        the PKI's JSON with the user listed, secrets sealed) and
        `vpn.user` (`name`, `serial`, `expires`, and `profile`, sealed: it
        holds the user's private key, which is in no other place and which
        the scheduler hands to the api once and never records).
      - vpn.user.revoke: step.user's certificate revoked (vpn_pki_revoke):
        reports `vpn.pki` with the new CRL, and `vpn.user` (`name`,
        `serial`, `revoked_at`, `crl_number`).
    Needs context.vpn_pki (else VpnNoPki) and, to add, context.access_ip.
    Refusals are permanent failures with a code the scheduler maps:
    VpnUserInvalid (a bad name), VpnUserExists, VpnUserNotFound. On any
    failure nothing is reported, so nothing changes. */
#ifndef VPN_USERS_H
#define VPN_USERS_H

#include "vpn_steps.h"

void vpn_users_add (const vpn_steps_config_t *config, const dx_step_job_t *job,
                    dx_step_out_t *out);
void vpn_users_revoke (const vpn_steps_config_t *config, const dx_step_job_t *job,
                       dx_step_out_t *out);

#endif
