/*  vpn_users: the steps vpn.user.add and vpn.user.revoke. See
    vpn_users.h and docs/vpn.md ("Users").

    The user's private key and the profile that holds it are wiped when
    freed; the profile leaves the step sealed only. */
#include "vpn_users.h"
#include "vpn_profile.h"
#include "dx_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  The recorded PKI, or NULL with the outcome set (none: VpnNoPki). */
static vpn_pki_t *
s_load (const vpn_steps_config_t *config, const dx_step_job_t *job, dx_step_out_t *out)
{
    int found;
    vpn_pki_t *pki = vpn_steps_load (config, job, out, &found);
    if (!found)
        dx_step_outcome (out, DX_STEP_FAILED, 1, "VpnNoPki",
                         "cluster %s has no VPN PKI yet: deploy it first", job->cluster);
    return pki;
}

/*  The user the step names, or NULL with the outcome set. */
static const char *
s_user (const dx_step_job_t *job, dx_step_out_t *out)
{
    const char *user = dx_step_str (job->step, "user");
    if (!user || !*user)
        dx_step_outcome (out, DX_STEP_FAILED, 1, "InvalidStep", "the step names no user");
    return user;
}

/*  The PKI's entry for user (borrowed from users), or NULL. */
static const json_t *
s_entry (const json_t *users, const char *user)
{
    size_t i;
    json_t *entry;
    json_array_foreach (users, i, entry)
        if (strcmp (json_string_value (json_object_get (entry, "name")), user) == 0)
            return entry;
    return NULL;
}

/*  Sets out's outcome for a refusal of vpn_pki_issue or vpn_pki_revoke. */
static void
s_refused (dx_step_out_t *out, vpn_pki_result_t rc, const char *cluster, const char *user)
{
    if (rc == VPN_PKI_INVALID)
        dx_step_outcome (out, DX_STEP_FAILED, 1, "VpnUserInvalid",
                         "user names must start with a lowercase letter and hold only "
                         "lowercase letters and digits, at most 16");
    else
    if (rc == VPN_PKI_EXISTS)
        dx_step_outcome (out, DX_STEP_FAILED, 1, "VpnUserExists",
                         "cluster %s has a VPN user %s already (a name once issued stays "
                         "taken, revoked or not)", cluster, user);
    else
    if (rc == VPN_PKI_NOT_FOUND)
        dx_step_outcome (out, DX_STEP_FAILED, 1, "VpnUserNotFound",
                         "cluster %s has no VPN user %s", cluster, user);
    else
        dx_step_outcome (out, DX_STEP_FAILED, 0, "VpnPkiFailed",
                         "cannot change the VPN PKI of cluster %s", cluster);
}

/*  Reports the changed PKI as the resource vpn.pki (its secrets sealed);
    returns the resource vpn.user to fill, or NULL with the outcome set. */
static json_t *
s_report (const vpn_steps_config_t *config, const dx_step_job_t *job, dx_step_out_t *out,
          const vpn_pki_t *pki)
{
    json_t *json = vpn_pki_to_json (pki, config->seal);
    char *text = json? json_dumps (json, JSON_COMPACT | JSON_SORT_KEYS): NULL;
    json_decref (json);
    if (!text) {
        dx_step_outcome (out, DX_STEP_FAILED, 0, "VpnPkiFailed",
                         "cannot write the VPN PKI of cluster %s", job->cluster);
        return NULL;
    }
    char id [65];
    json_t *resource = dx_step_resource (out, "vpn.pki", "vpn.pki", vpn_steps_ca_id (pki, id));
    dx_step_attr (resource, "pki", text);
    free (text);
    return dx_step_resource (out, "vpn.user", "vpn.user", id);
}

void
vpn_users_add (const vpn_steps_config_t *config, const dx_step_job_t *job, dx_step_out_t *out)
{
    const char *user = s_user (job, out);
    const char *ip = user? dx_step_need (out, job->context, "access_ip"): NULL;
    vpn_pki_t *pki = ip? s_load (config, job, out): NULL;
    if (!pki)
        return;
    char *cert = NULL, *key = NULL;
    vpn_pki_result_t rc = vpn_pki_issue (pki, user, &cert, &key);
    char *profile = rc == VPN_PKI_OK? vpn_profile_client (pki, ip, cert, key): NULL;
    char *sealed = profile? vpn_steps_seal (config, out, profile, "user's profile"): NULL;
    if (rc != VPN_PKI_OK)
        s_refused (out, rc, job->cluster, user);
    else
    if (!profile)
        dx_step_outcome (out, DX_STEP_FAILED, 1, "InvalidStep",
                         "the access node's IP %.64s is not an IPv4 or IPv6 address", ip);
    json_t *users = sealed? vpn_pki_users (pki): NULL;
    const json_t *entry = s_entry (users, user);
    json_t *resource = entry? s_report (config, job, out, pki): NULL;
    if (resource) {
        char serial [32];
        snprintf (serial, sizeof serial, "%" JSON_INTEGER_FORMAT,
                  json_integer_value (json_object_get (entry, "serial")));
        dx_step_attr (resource, "name", user);
        dx_step_attr (resource, "serial", serial);
        dx_step_attr (resource, "expires", json_string_value (json_object_get (entry, "expiry")));
        dx_step_attr (resource, "profile", sealed);
    }
    json_decref (users);
    free (cert);
    dx_free_wiped (key);
    dx_free_wiped (profile);
    free (sealed);
    vpn_pki_destroy (&pki);
}

void
vpn_users_revoke (const vpn_steps_config_t *config, const dx_step_job_t *job,
                  dx_step_out_t *out)
{
    const char *user = s_user (job, out);
    vpn_pki_t *pki = user? s_load (config, job, out): NULL;
    if (!pki)
        return;
    vpn_pki_result_t rc = vpn_pki_revoke (pki, user);
    if (rc != VPN_PKI_OK)
        s_refused (out, rc, job->cluster, user);
    json_t *users = rc == VPN_PKI_OK? vpn_pki_users (pki): NULL;
    const json_t *entry = s_entry (users, user);
    json_t *resource = entry? s_report (config, job, out, pki): NULL;
    if (resource) {
        char serial [32], number [32];
        snprintf (serial, sizeof serial, "%" JSON_INTEGER_FORMAT,
                  json_integer_value (json_object_get (entry, "serial")));
        snprintf (number, sizeof number, "%" PRIu64, vpn_pki_crl_number (pki));
        dx_step_attr (resource, "name", user);
        dx_step_attr (resource, "serial", serial);
        dx_step_attr (resource, "revoked_at",
                      json_string_value (json_object_get (entry, "revoked_at")));
        dx_step_attr (resource, "crl_number", number);
    }
    json_decref (users);
    vpn_pki_destroy (&pki);
}
