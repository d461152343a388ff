/*  vpn_steps: the vpn worker's steps, vpn.server and vpn.profile. See
    vpn_steps.h and docs/vpn.md ("The steps").

    Texts that hold a secret in clear (the bundle, the profile) are
    sealed at once and wiped when freed; what the steps report holds
    secrets only sealed. */
#include "vpn_steps.h"
#include "vpn_auth.h"
#include "vpn_profile.h"
#include "vpn_users.h"
#include "dx_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

typedef struct {
    const vpn_steps_config_t *config;
    dx_step_job_t job;
    dx_step_out_t *out;
} s_run_t;

/*  A text sealed with the master key (caller frees), or NULL with the
    outcome set. */
char *
vpn_steps_seal (const vpn_steps_config_t *config, dx_step_out_t *out, const char *text,
                const char *what)
{
    char *sealed = dx_seal_seal (config->seal, text, strlen (text));
    if (!sealed)
        dx_step_outcome (out, DX_STEP_FAILED, 0, "SealFailed", "cannot seal the %s", what);
    return sealed;
}

static char *
s_seal (s_run_t *run, const char *text, const char *what)
{
    return vpn_steps_seal (run->config, run->out, text, what);
}

vpn_pki_t *
vpn_steps_load (const vpn_steps_config_t *config, const dx_step_job_t *job,
                dx_step_out_t *out, int *found)
{
    const char *text = dx_step_str (job->context, "vpn_pki");
    *found = text && *text;
    if (!*found)
        return NULL;
    json_t *json = json_loads (text, 0, NULL);
    const char *error = "it is not JSON";
    vpn_pki_t *pki = json? vpn_pki_from_json (json, config->seal, &error): NULL;
    json_decref (json);
    if (pki && strcmp (vpn_pki_cluster (pki), job->cluster)) {
        error = "it is another cluster's";
        vpn_pki_destroy (&pki);
    }
    if (!pki)
        dx_step_outcome (out, DX_STEP_FAILED, 1, "VpnPkiUnreadable",
                         "the recorded VPN PKI of cluster %s cannot be used (%s): it was "
                         "sealed with another master key (DEXTER_MASTER_KEY or the key file "
                         "changed) or altered; a new one would break the profiles already "
                         "handed out, so none is made", job->cluster, error);
    return pki;
}

/*  The cluster's recorded PKI (context.vpn_pki), opened; NULL when there
    is none (*found 0) or, with the outcome set, when it does not open
    (*found 1). */
static vpn_pki_t *
s_load (s_run_t *run, int *found)
{
    return vpn_steps_load (run->config, &run->job, run->out, found);
}

json_t *
vpn_steps_bundle (const vpn_pki_t *pki)
{
    char *conf = vpn_profile_server (pki);
    json_t *bundle = conf? json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                      "ca", vpn_pki_ca_pem (pki),
                                      "cert", vpn_pki_server_cert_pem (pki),
                                      "key", vpn_pki_server_key_pem (pki),
                                      "tls_crypt", vpn_pki_tls_crypt (pki),
                                      "crl", vpn_pki_crl_pem (pki),
                                      "server_conf", conf,
                                      "auth", vpn_auth_script): NULL;
    free (conf);
    return bundle;
}

const char *
vpn_steps_ca_id (const vpn_pki_t *pki, char *buf)
{
    unsigned char hash [crypto_hash_sha256_BYTES];
    const char *pem = vpn_pki_ca_pem (pki);
    crypto_hash_sha256 (hash, (const unsigned char *) pem, strlen (pem));
    return sodium_bin2hex (buf, 65, hash, sizeof hash);
}

/*  vpn.server: the PKI, recorded or new, and the server bundle. */
static void
s_step_server (s_run_t *run)
{
    int found;
    vpn_pki_t *pki = s_load (run, &found);
    if (found && !pki)
        return;
    if (!pki && !(pki = vpn_pki_new (run->job.cluster))) {
        dx_step_outcome (run->out, DX_STEP_FAILED, 0, "VpnPkiFailed",
                         "cannot make the VPN PKI of cluster %s", run->job.cluster);
        return;
    }
    //  A recorded PKI is reported as it was, byte for byte
    char *text = found? strdup (dx_step_str (run->job.context, "vpn_pki")): NULL;
    if (!found) {
        json_t *json = vpn_pki_to_json (pki, run->config->seal);
        text = json? json_dumps (json, JSON_COMPACT | JSON_SORT_KEYS): NULL;
        json_decref (json);
    }
    json_t *bundle = vpn_steps_bundle (pki);
    char *plain = bundle? json_dumps (bundle, JSON_COMPACT): NULL;
    json_decref (bundle);
    char *server = plain? s_seal (run, plain, "server bundle"): NULL;
    dx_free_wiped (plain);
    if (!text || !plain)
        dx_step_outcome (run->out, DX_STEP_FAILED, 0, "VpnPkiFailed",
                         "cannot write the VPN PKI of cluster %s", run->job.cluster);
    if (text && server) {
        char id [65];
        json_t *resource = dx_step_resource (run->out, VPN_STEPS_PKI, VPN_STEPS_PKI,
                                             vpn_steps_ca_id (pki, id));
        char number [32];
        snprintf (number, sizeof number, "%" PRIu64, vpn_pki_crl_number (pki));
        dx_step_attr (resource, "pki", text);
        dx_step_attr (resource, "server", server);
        dx_step_attr (resource, "crl_number", number);  /* the bundle's CRL */
    }
    free (text);
    free (server);
    vpn_pki_destroy (&pki);
}

/*  vpn.profile: the password login profile for the access node's IP. */
static void
s_step_profile (s_run_t *run)
{
    const char *ip = dx_step_need (run->out, run->job.context, "access_ip");
    int found;
    vpn_pki_t *pki = ip? s_load (run, &found): NULL;
    if (ip && !found) {
        dx_step_need (run->out, run->job.context, "vpn_pki");
        return;
    }
    if (!pki)
        return;
    char *profile = vpn_profile_client (pki, ip, NULL, NULL);
    char *sealed = profile? s_seal (run, profile, "profile"): NULL;
    if (!profile)
        dx_step_outcome (run->out, DX_STEP_FAILED, 1, "InvalidStep",
                         "the access node's IP %.64s is not an IPv4 or IPv6 address", ip);
    if (sealed) {
        char id [65];
        json_t *resource = dx_step_resource (run->out, VPN_STEPS_PROFILE, VPN_STEPS_PROFILE,
                                             vpn_steps_ca_id (pki, id));
        dx_step_attr (resource, "remote", ip);
        dx_step_attr (resource, "profile", sealed);
    }
    dx_free_wiped (profile);
    free (sealed);
    vpn_pki_destroy (&pki);
}

/*  vpn.user.add and vpn.user.revoke: vpn_users.c. */
static void
s_step_user_add (s_run_t *run)
{
    vpn_users_add (run->config, &run->job, run->out);
}

static void
s_step_user_revoke (s_run_t *run)
{
    vpn_users_revoke (run->config, &run->job, run->out);
}

static const struct {
    const char *kind;
    void (*fn) (s_run_t *run);
} s_steps [] = {
    { "vpn.server", s_step_server },
    { "vpn.profile", s_step_profile },
    { "vpn.user.add", s_step_user_add },
    { "vpn.user.revoke", s_step_user_revoke },
};

int
vpn_step_run (const vpn_steps_config_t *config, const json_t *assign, dx_step_out_t *out)
{
    s_run_t run = { .config = config, .out = out };
    dx_step_job_read (&run.job, assign);
    const char *kind = dx_step_str (run.job.step, "kind");
    void (*fn) (s_run_t *) = NULL;
    for (size_t i = 0; kind && !fn && i < sizeof s_steps / sizeof s_steps [0]; i++)
        if (strcmp (s_steps [i].kind, kind) == 0)
            fn = s_steps [i].fn;
    if (!fn)
        dx_step_outcome (out, DX_STEP_FAILED, 1, "InvalidStep", "unknown step kind %s",
                         kind? kind: "(none)");
    else
    if (!run.job.cluster || !*run.job.cluster)
        dx_step_outcome (out, DX_STEP_FAILED, 1, "InvalidStep", "the job names no cluster");
    else
    if (!config || !config->seal)
        dx_step_outcome (out, DX_STEP_FAILED, 1, "InvalidStep", "the vpn worker has no seal");
    else
        fn (&run);
    return out->outcome == DX_STEP_DONE? 0: -1;
}
