/*  vpn_steps: one job of the vpn worker, i.e. one `vpn.*` step of
    proto/PROTOCOL.md ("Steps"), run on the cluster's PKI (vpn_pki) and
    files (vpn_profile).

        vpn_steps_config_t config = { seal };      // the operator's master key
        dx_step_out_t out;
        dx_step_out_init (&out, cancelled_fn, job);
        vpn_step_run (&config, assign, &out);      // the job.assign message
        ... out.outcome, out.code, out.message, out.permanent, out.resources
        dx_step_out_fini (&out);

    The steps (docs/vpn.md, "The steps"):
      - vpn.server: loads the cluster's PKI from context.vpn_pki (the
        recorded `vpn.pki` resource's `pki`) or, when there is none, makes
        one; reports the resource `vpn.pki` with `pki` (the PKI's JSON, its
        secrets sealed), `server` (the access node's server bundle,
        sealed as a whole; VPN_STEPS_BUNDLE_FIELDS) and `crl_number`
        (the number of the bundle's CRL).
      - vpn.profile: loads the PKI the same way and renders the password
        login profile for context.access_ip; reports the resource
        `vpn.profile` with `remote` and `profile` (sealed: it holds the
        tls-crypt key).
      - vpn.user.add, vpn.user.revoke: a user's certificate issued or
        revoked on the recorded PKI (vpn_users.h).
    Both are idempotent: a PKI once recorded is the one every later run
    loads, so a re-run or a redeploy gives the same CA. A recorded PKI
    that does not open (another master key, a changed record) fails the
    step for good rather than making a new one, which would break the
    profiles already handed out.

    Nothing secret leaves the step unsealed, and no message says a secret:
    the CA key is opened here only. Needs no ZeroMQ: main.c hands
    vpn_step_run to common/dx_worker_steps, tests call it directly. */
#ifndef VPN_STEPS_H
#define VPN_STEPS_H

#include <jansson.h>
#include "dx_seal.h"
#include "dx_step.h"
#include "vpn_pki.h"

/*  The resources the steps report, by key (and kind). */
#define VPN_STEPS_PKI       "vpn.pki"
#define VPN_STEPS_PROFILE   "vpn.profile"

/*  The members of the server bundle, as common/dx_provision takes it
    (its `vpn` object): the CA, the server's certificate and key, the
    tls-crypt key, the CRL, the server config and the
    auth-user-pass-verify script. */
#define VPN_STEPS_BUNDLE_FIELDS \
    { "ca", "cert", "key", "tls_crypt", "crl", "server_conf", "auth" }

typedef struct {
    dx_seal_t *seal;            /* opens and seals every secret; must outlive the worker */
} vpn_steps_config_t;

/*  Runs the step of assign (job.assign: cluster, step) and fills out.
    Returns 0 when the outcome is done, else -1. */
int vpn_step_run (const vpn_steps_config_t *config, const json_t *assign, dx_step_out_t *out);

/*  The cluster's recorded PKI (the job's context.vpn_pki), opened: NULL
    when there is none (*found 0) or, with out's outcome set
    (VpnPkiUnreadable, permanent), when it does not open or is another
    cluster's (*found 1). */
vpn_pki_t *vpn_steps_load (const vpn_steps_config_t *config, const dx_step_job_t *job,
                           dx_step_out_t *out, int *found);

/*  text sealed with the master key (caller frees), or NULL with out's
    outcome set (SealFailed; what names the text). */
char *vpn_steps_seal (const vpn_steps_config_t *config, dx_step_out_t *out,
                      const char *text, const char *what);

/*  The CA's fingerprint, the provider id of the PKI's resources: SHA-256
    of its PEM text in hex, into buf (65 bytes). Returns buf. */
const char *vpn_steps_ca_id (const vpn_pki_t *pki, char *buf);

/*  The server bundle of pki as a JSON object of VPN_STEPS_BUNDLE_FIELDS
    (caller owns; it holds the server's key and the tls-crypt key), or
    NULL on failure. */
json_t *vpn_steps_bundle (const vpn_pki_t *pki);

#endif
