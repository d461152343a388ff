/*  sch_dispatch: starting jobs. What may start of a deployment goes to a
    worker of its service, paced and within its parallelism; a job's
    step gets its context from what earlier steps recorded and its
    credentials opened, with the secrets its kind and step id take; its
    start is written before job.assign is sent. See sch_engine_private.h
    and proto/PROTOCOL.md ("Transport: scheduler ⇄ workers", "Steps"). */
#include "sch_engine_private.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

/*  The secrets of the config that a step's credentials carry, by the
    step's kind (proto/PROTOCOL.md, "Steps"): aws's key pair takes the
    private key, azure's hosts their admin password. */
static const struct {
    const char *kind;
    const char *secret;
} s_step_secrets [] = {
    { "keypair", "sshkeydata" },
    { "host", "ssh_password" },
};
#define S_STEP_SECRETS (sizeof s_step_secrets / sizeof s_step_secrets [0])

/*  The service whose workers run a step, by the prefix of its kind; every
    other step goes to the workers of the deployment's provider. */
static const struct {
    const char *prefix;
    const char *service;
} s_step_services [] = {
    { "vpn.", "vpn" },
};
#define S_STEP_SERVICES (sizeof s_step_services / sizeof s_step_services [0])

/*  Secrets that an earlier step reported sealed in a resource, opened into
    the credentials of the steps that need them (proto/PROTOCOL.md,
    "Steps"): the access node's host step takes the vpn service's server
    bundle, as `vpn` (its JSON text), for its user data. */
static const struct {
    const char *step;                   /* the step id */
    const char *resource, *attribute;   /* the sealed text */
    const char *credential;
} s_resource_secrets [] = {
    { "host.access", "vpn.pki", "server", "vpn" },
};
#define S_RESOURCE_SECRETS (sizeof s_resource_secrets / sizeof s_resource_secrets [0])


/*  The service of a step of kind (s_step_services). */
static const char *
s_step_service (const sch_deploy_t *d, const char *kind)
{
    for (size_t i = 0; kind && i < S_STEP_SERVICES; i++)
        if (strncmp (kind, s_step_services [i].prefix, strlen (s_step_services [i].prefix)) == 0)
            return s_step_services [i].service;
    return d->provider;
}

/*  The access.crl step's context: the access node (`access`, its
    provider id) and the recorded PKI's CRL (`vpn_crl`, PEM, and
    `vpn_crl_number`). The CRL is public; the PKI's JSON has it in clear. */
static void
s_deploy_crl_context (sch_deploy_t *d, json_t *context)
{
    const char *access = sch_deploy_attr (d, "host.access", "provider_id");
    const char *text = sch_deploy_attr (d, "vpn.pki", "pki");
    json_t *pki = text? json_loads (text, 0, NULL): NULL;
    const char *crl = json_string_value (json_object_get (pki, "crl"));
    json_int_t number = json_integer_value (json_object_get (pki, "crl_number"));
    if (access && *access)
        json_object_set_new (context, "access", json_string (access));
    if (crl && number > 0) {
        char buf [32];
        snprintf (buf, sizeof buf, "%" JSON_INTEGER_FORMAT, number);
        json_object_set_new (context, "vpn_crl", json_string (crl));
        json_object_set_new (context, "vpn_crl_number", json_string (buf));
    }
    json_decref (pki);
}

/*  What earlier steps recorded, as the step's context: resource key ->
    provider id, hosts and addresses left out, and the masters' IPs; a
    vpn step also gets the recorded PKI (its secrets sealed) and the
    access node's public address. */
static json_t *
s_deploy_context (sch_deploy_t *d, const char *kind)
{
    json_t *context = json_object ();
    const char *key;
    json_t *resource;
    json_object_foreach (d->resources, key, resource) {
        if (strncmp (key, "host.", 5) == 0 || strncmp (key, "eip.", 4) == 0)
            continue;
        const char *id = json_string_value (json_object_get (resource, "provider_id"));
        if (id)
            json_object_set_new (context, key, json_string (id));
    }
    json_object_set_new (context, "masters_ips",
                         json_string (d->masters_ips? d->masters_ips: ""));
    if (strcmp (s_step_service (d, kind), "vpn") == 0) {
        const char *pki = sch_deploy_attr (d, "vpn.pki", "pki");
        const char *ip = sch_deploy_attr (d, "eip.access", "public_ip");
        if (pki)
            json_object_set_new (context, "vpn_pki", json_string (pki));
        if (ip && *ip)
            json_object_set_new (context, "access_ip", json_string (ip));
    }
    if (strcmp (kind, SCH_PLAN_ACCESS_CRL) == 0)
        s_deploy_crl_context (d, context);
    return context;
}

/*  Wipes every string in value, however deep, in place. */
static void
s_wipe (json_t *value)
{
    size_t i;
    const char *key;
    json_t *item;
    if (json_is_string (value))
        sodium_memzero ((char *) json_string_value (value), json_string_length (value));
    else
    if (json_is_array (value))
        json_array_foreach (value, i, item)
            s_wipe (item);
    else
    if (json_is_object (value))
        json_object_foreach (value, key, item)
            s_wipe (item);
}

/*  The job's credentials, opened: the deployment's, plus the secret its
    kind takes (s_step_secrets) and those its step id takes from the
    resources (s_resource_secrets); none for a vpn step. NULL when they
    cannot be opened. */
static json_t *
s_deploy_credentials (sch_engine_t *self, sch_deploy_t *d, const char *kind, const char *id)
{
    //  The vpn service is no cloud's client: its steps get no credentials
    if (strcmp (s_step_service (d, kind), "vpn") == 0)
        return json_object ();
    if (!d->credentials)
        return NULL;
    size_t len = 0;
    char *plain = dx_seal_open (self->seal, d->credentials, &len);
    if (!plain)
        return NULL;
    json_t *credentials = json_loadb (plain, len, 0, NULL);
    dx_seal_free (plain, len);
    if (!json_is_object (credentials)) {
        json_decref (credentials);
        return NULL;
    }
    for (size_t i = 0; i < S_STEP_SECRETS; i++) {
        const char *name = s_step_secrets [i].secret;
        const char *sealed = json_string_value (json_object_get (d->secrets, name));
        char *secret = sealed && strcmp (kind, s_step_secrets [i].kind) == 0
                     ? dx_seal_open (self->seal, sealed, &len): NULL;
        if (secret) {
            json_object_set_new (credentials, name, json_stringn (secret, len));
            dx_seal_free (secret, len);
        }
    }
    for (size_t i = 0; i < S_RESOURCE_SECRETS; i++) {
        if (strcmp (id, s_resource_secrets [i].step))
            continue;
        const char *sealed = sch_deploy_attr (d, s_resource_secrets [i].resource,
                                              s_resource_secrets [i].attribute);
        char *secret = sealed? dx_seal_open (self->seal, sealed, &len): NULL;
        if (sealed && !secret) {
            //  Sealed with another key: no step can use it
            s_wipe (credentials);
            json_decref (credentials);
            return NULL;
        }
        if (secret) {
            json_object_set_new (credentials, s_resource_secrets [i].credential,
                                 json_stringn (secret, len));
            dx_seal_free (secret, len);
        }
    }
    return credentials;
}

/*  1 unless a secret that step id takes from the resources
    (s_resource_secrets) is there and does not open. */
static int
s_resource_secrets_open (sch_engine_t *self, sch_deploy_t *d, const char *id)
{
    for (size_t i = 0; i < S_RESOURCE_SECRETS; i++) {
        const char *sealed = strcmp (id, s_resource_secrets [i].step)? NULL
                           : sch_deploy_attr (d, s_resource_secrets [i].resource,
                                              s_resource_secrets [i].attribute);
        size_t len;
        char *secret = sealed? dx_seal_open (self->seal, sealed, &len): NULL;
        if (sealed && !secret)
            return 0;
        if (secret)
            dx_seal_free (secret, len);
    }
    return 1;
}

/*  1 when every job that job needs is done. */
static int
s_job_ready (sch_deploy_t *d, sch_job_t *job, int64_t now)
{
    if (job->status != SCH_JOB_PENDING || job->not_before > now)
        return 0;
    size_t i;
    json_t *need;
    json_array_foreach (json_object_get (job->record, "needs"), i, need) {
        sch_job_t *other = sch_deploy_job (d, json_string_value (need));
        if (other && other->status != SCH_JOB_DONE)
            return 0;
    }
    return 1;
}

/*  The job id of PROTOCOL.md: NAME:GENERATION:STEP. */
static char *
s_job_id (const sch_deploy_t *d, const sch_job_t *job, char *buf, size_t size)
{
    snprintf (buf, size, "%s:%" PRId64 ":%s", d->name, d->generation, job->id);
    return buf;
}

/*  Sends worker job.cancel of attempt `attempt` of job_id. */
void
sch_engine_send_cancel (sch_engine_t *self, const char *worker, const char *job_id,
                        int64_t attempt)
{
    json_t *cancel = dx_msg_new ("job.cancel", NULL);
    json_object_set_new (cancel, "job", json_string (job_id));
    json_object_set_new (cancel, "attempt", json_integer (attempt));
    sch_broker_send_to (self->broker, worker, cancel, 0);
}

/*  Tells the worker running job to stop it and frees its place there. */
void
sch_engine_cancel (sch_engine_t *self, const sch_deploy_t *d, const sch_job_t *job)
{
    char job_id [128];
    sch_engine_send_cancel (self, job->worker, s_job_id (d, job, job_id, sizeof job_id),
                            job->attempt);
    sch_broker_release (self->broker, job->worker);
}

/*  The job.assign of the job's current attempt (caller owns; it holds the
    opened credentials: free it with s_assign_free), or NULL when the
    deployment's credentials cannot be opened. */
static json_t *
s_engine_assign (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job)
{
    const char *kind = json_string_value (json_object_get (job->record, "kind"));
    json_t *credentials = s_deploy_credentials (self, d, kind? kind: "", job->id);
    if (!credentials)
        return NULL;
    char job_id [128];
    json_t *step = json_deep_copy (json_object_get (job->record, "step"));
    json_object_set_new (step, "context", s_deploy_context (d, kind? kind: ""));
    json_t *msg = dx_msg_new ("job.assign", NULL);
    json_object_set_new (msg, "job", json_string (s_job_id (d, job, job_id, sizeof job_id)));
    json_object_set_new (msg, "attempt", json_integer (job->attempt));
    json_object_set_new (msg, "cluster", json_string (d->name));
    json_object_set_new (msg, "generation", json_integer (d->generation));
    json_object_set_new (msg, "step", step);
    json_object_set_new (msg, "credentials", credentials);
    json_object_set_new (msg, "lease_ms", json_integer (self->lease_ms));
    return msg;
}

/*  Wipes the credentials of a job.assign and frees it; safe on NULL. */
static void
s_assign_free (json_t **msg_p)
{
    if (*msg_p) {
        s_wipe (json_object_get (*msg_p, "credentials"));
        json_decref (*msg_p);
        *msg_p = NULL;
    }
}

/*  Sends the job.assign msg (taken) of a job whose start Redis has to the
    job's worker; the lease runs from now. 0, or -1 if it was not sent. */
static int
s_engine_send (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job, json_t *msg)
{
    json_incref (msg);                  /* to wipe it after the send */
    int rc = sch_broker_send_to (self->broker, job->worker, msg, 0);
    s_assign_free (&msg);
    job->reserved = 0;
    job->lease_expiry = dx_mono_ms () + self->lease_ms;
    if (rc == 0)
        dx_info ("deployment %s: step %s attempt %" PRId64 " -> worker %s", d->name, job->id,
                 job->attempt, job->worker_name? job->worker_name: "?");
    return rc;
}

/*  The credentials cannot be opened. They are read again (a read that
    failed when the deployment was loaded left none); while Redis cannot be
    read the next tick tries again, as with any Redis failure. Missing, or
    sealed with another master key, no retry can help: job fails for good,
    with a message saying what to do, and the deployment ends once nothing
    runs. Returns 1 if the deployment ended (d is freed). */
static int
s_engine_no_credentials (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job)
{
    char *sealed;
    if (sch_read_credentials (self->read, d->name, &sealed)) {
        dx_error ("deployment %s: cannot read its credentials, trying again: %s", d->name,
                  sch_store_error (self->store));
        return 0;
    }
    if (sealed && (!d->credentials || strcmp (sealed, d->credentials))) {
        free (d->credentials);
        d->credentials = sealed;        /* the next dispatch tries them */
        return 0;
    }
    free (sealed);
    const char *code = "CredentialsUnreadable";
    const char *message = "the deployment's credentials cannot be opened: they are missing, "
                          "or were sealed with another master key (DEXTER_MASTER_KEY or the "
                          "data directory changed); PUT the deployment again with its "
                          "credentials";
    if (!s_resource_secrets_open (self, d, job->id)) {
        code = "VpnBundleUnreadable";
        message = "the access node's OpenVPN server bundle, which the vpn service sealed, "
                  "cannot be opened with the scheduler's master key: the vpn service and the "
                  "scheduler must have the same master key (DEXTER_MASTER_KEY or "
                  "DEXTER_MASTER_KEY_FILE); fix it, then destroy and deploy again";
    }
    dx_error ("deployment %s: step %s: %s", d->name, job->id, message);
    sch_engine_fail (d, job, code, message);
    json_t *event = json_pack ("{s:s, s:I, s:s, s:s, s:s}", "step", job->id,
                               "attempt", (json_int_t) job->attempt,
                               "code", code, "message", message,
                               "permanent", "true");
    sch_engine_write (self, d, job, NULL, NULL, NULL, "step.failed", event, NULL);
    return sch_engine_maybe_finish (self, d);
}

/*  Starts job on worker. Its attempt, worker and step.started event are
    written first, and job.assign is sent only once Redis has them: so no
    attempt number is ever sent twice, even by a scheduler restarted
    since. A start kept for Redis is sent once it is written
    (sch_engine_tick). 0 to go on dispatching; -1 to stop: the job was not
    sent now, or the deployment ended (d is freed). */
static int
s_engine_start_job (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job, const char *worker,
                    int64_t now)
{
    char job_id [128];
    int64_t old = sch_tomb_attempt (self, s_job_id (d, job, job_id, sizeof job_id));
    if (old >= job->attempt) {
        dx_debug ("deployment %s: step %s starts at attempt %" PRId64 ", above those of a "
                  "deleted cluster of the same name", d->name, job->id, old + 1);
        job->attempt = old + 1;
    }
    json_t *msg = s_engine_assign (self, d, job);
    if (!msg) {
        s_engine_no_credentials (self, d, job);
        return -1;
    }
    sch_job_set_worker (job, worker, sch_broker_name (self->broker, worker));
    sch_broker_adopt (self->broker, job->worker);
    job->status = SCH_JOB_RUNNING;
    d->running++;
    char started [32];
    json_object_set_new (job->record, "started_at",
                         json_string (dx_time_iso (dx_now_ms (), started, sizeof started)));
    json_t *event = json_pack ("{s:s, s:O, s:I, s:s}", "step", job->id,
                               "kind", json_object_get (job->record, "kind"),
                               "attempt", (json_int_t) job->attempt,
                               "worker", job->worker_name? job->worker_name: "");
    int rc = sch_engine_write (self, d, job, json_pack ("{s:s}", "waiting", ""), NULL, NULL,
                               "step.started", event, &job->reserved);
    if (rc == 0 && s_engine_send (self, d, job, msg) == 0)
        return 0;
    if (rc == 0)
        sch_engine_requeue (self, d, job, "it could not be sent to its worker", 1);
    else
    if (rc > 0) {
        s_assign_free (&msg);
        job->lease_expiry = INT64_MAX;  /* its lease starts when it is sent */
    }
    else {
        //  Not recorded, so not sent; its number is spent all the same
        s_assign_free (&msg);
        sch_broker_release (self->broker, job->worker);
        sch_job_set_worker (job, NULL, NULL);
        d->running--;
        job->status = SCH_JOB_PENDING;
        job->attempt++;
        job->not_before = now + SCH_BACKOFF_MAX;
    }
    return -1;
}

/*  Sends a job whose start was kept for Redis, now that Redis has it; one
    that cannot be sent (its worker left, its credentials no longer open)
    runs again as the next attempt. Returns 1 if the deployment ended. */
int
sch_engine_send_reserved (sch_engine_t *self, sch_deploy_t *d, sch_job_t *job)
{
    json_t *msg = s_engine_assign (self, d, job);
    if (msg && s_engine_send (self, d, job, msg) == 0)
        return 0;
    return sch_engine_requeue (self, d, job, "its start was recorded late and it could not be "
                               "sent then", 1);
}

/*  Starts what may start of one deployment: nothing while writes wait
    for Redis, as a start must be written before it is sent. It may end
    the deployment (its credentials cannot be opened): d is then freed. */
void
sch_engine_dispatch (sch_engine_t *self, sch_deploy_t *d, int64_t now)
{
    if (!self->broker || d->failing || d->plan || sch_redis_kept (self->redis))
        return;
    int paced = 0;                      /* no more paced steps this time */
    const char *full [S_STEP_SERVICES + 1]; /* services with no room this time */
    size_t nfull = 0;
    for (size_t i = 0; i < d->njobs && d->running < (size_t) d->parallelism; i++) {
        sch_job_t *job = &d->jobs [i];
        if (!s_job_ready (d, job, now))
            continue;
        const char *kind = json_string_value (json_object_get (job->record, "kind"));
        int pace = d->pace_key && kind && strcmp (kind, d->pace_kind) == 0;
        if (pace && (paced || d->paced_until > now))
            continue;
        if (self->side.holds && kind && self->side.holds (self->side_arg, d->name, kind))
            continue;
        const char *service = s_step_service (d, kind);
        size_t f = 0;
        while (f < nfull && strcmp (full [f], service))
            f++;
        if (f < nfull)
            continue;
        const char *worker = sch_broker_pick (self->broker, service);
        if (!worker) {
            full [nfull++] = service;
            if (nfull == S_STEP_SERVICES + 1)
                return;
            continue;
        }
        if (pace) {
            dx_bucket_t *bucket = dx_ratelimit_bucket (self->pacing, d->pace_key,
                                                       d->pace_burst, d->pace_rate, now);
            int64_t wait = bucket? dx_bucket_take (bucket, now): 0;
            if (wait > 0) {
                d->paced_until = now + wait;
                paced = 1;
                continue;
            }
        }
        if (s_engine_start_job (self, d, job, worker, now))
            return;
    }
}
