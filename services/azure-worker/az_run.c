/*  az_run: one job's step being run: its fields, its ARM client, its
    names and tags, its calls and how their failures end the step. See
    az_run.h. */
#include "az_run.h"
#include "dx_log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

//  ---------------------------------------------------------------------
//  Life

static const az_run_config_t s_defaults = AZ_RUN_CONFIG_DEFAULT;

void
az_run_init (az_run_t *self, const az_run_config_t *config, const json_t *assign,
             dx_step_out_t *out)
{
    memset (self, 0, sizeof *self);
    self->config = config? config: &s_defaults;
    dx_step_job_read (&self->job, assign);
    self->location = dx_step_str (self->job.config, "location");
    snprintf (self->group, sizeof self->group, AZ_RUN_GROUP_PREFIX "%s",
              self->job.cluster? self->job.cluster: "");
    self->out = out;
}

/*  A long-running operation's progress, in the worker's log and the
    deployment's events (dx_step_progress): one line each time its status
    changes. The events name the resource by its type and name. */
static void
s_progress (const az_progress_t *progress, void *arg)
{
    az_run_t *self = arg;
    dx_info ("cluster %s: %s %s: %s after %lld s (%d polls)", self->job.cluster, progress->method,
             progress->path, progress->status, (long long) (progress->elapsed_ms / 1000),
             progress->polls);
    const char *what = strstr (progress->path, "/providers/");
    dx_step_progress (self->out, "%s %s: %s after %lld s", progress->method,
                      what? what + strlen ("/providers/"): progress->path, progress->status,
                      (long long) (progress->elapsed_ms / 1000));
}

int
az_run_start (az_run_t *self)
{
    if (!self->job.cluster || !*self->job.cluster || !self->job.uid)
        return dx_step_outcome (self->out, DX_STEP_FAILED, 1, "InvalidStep",
                                "the job has no cluster or its step no uid");
    char why [256];
    az_cred_t *cred = az_cred_new (self->job.credentials, why, sizeof why);
    if (!cred)
        return dx_step_outcome (self->out, DX_STEP_FAILED, 1, "InvalidCredentials", "%s",
                                *why? why: "out of memory");
    self->arm = az_arm_new (&cred);
    if (!self->arm)
        return dx_step_outcome (self->out, DX_STEP_RETRY, 0, "OutOfMemory", "out of memory");
    az_arm_set_limits (self->arm, self->config->limits);
    az_arm_set_tokens (self->arm, self->config->tokens);
    if (self->config->retry)
        az_arm_set_retry (self->arm, self->config->retry);
    az_arm_set_wait (self->arm, self->config->poll_ms, self->config->wait_ms);
    az_arm_set_cancel (self->arm, self->out->cancelled, self->out->cancel_arg);
    az_arm_set_progress (self->arm, s_progress, self);
    return 0;
}

void
az_run_fini (az_run_t *self)
{
    az_arm_destroy (&self->arm);
    sodium_memzero (&self->err, sizeof self->err);
}

//  ---------------------------------------------------------------------
//  Names

char *
az_run_path (az_run_t *self, char *buf, size_t size, const char *type, const char *name)
{
    int len = snprintf (buf, size, "resourceGroups/%s/providers/%s%s%s", self->group, type,
                        name? "/": "", name? name: "");
    if (len < 0 || (size_t) len >= size)
        *buf = 0;
    return buf;
}

json_t *
az_run_tags (az_run_t *self, const char *role, const char *group, const char *host)
{
    json_t *tags = json_pack ("{s:s, s:s, s:s}", "dexter:cluster", self->job.cluster,
                              "dexter:uid", self->job.uid, "dexter:role", role);
    if (group)
        json_object_set_new (tags, "dexter:group", json_string (group));
    if (host)
        json_object_set_new (tags, "dexter:host", json_string (host));
    return tags;
}

//  ---------------------------------------------------------------------
//  Calls

/*  Conditions ARM itself calls temporary: capacity, a resource group
    still being deleted, an operation it preempted or that took too long
    to provision. Later, then. */
static const char *const s_retry_codes [] = {
    "AllocationFailed", "ZonalAllocationFailed", "OverconstrainedAllocationRequest",
    "OverconstrainedZonalAllocationRequest", "ResourceGroupBeingDeleted",
    "OperationPreempted", "OSProvisioningTimedOut", NULL
};

json_t *
az_run_call (az_run_t *self, const char *method, const char *path, const char *api_version,
             const json_t *body)
{
    return az_arm_call (self->arm, method, path, api_version, body, &self->err);
}

int
az_run_failed (az_run_t *self, const char *method, const char *path)
{
    const az_error_t *err = &self->err;
    if (dx_step_cancelled (self->out) || strcmp (err->code, "CANCELLED") == 0)
        return dx_step_outcome (self->out, DX_STEP_RETRY, 0, "CANCELLED", "the job was "
                                "cancelled during %s %s", method, path);
    int later = err->retryable;
    for (const char *const *code = s_retry_codes; !later && *code; code++)
        later = strcasecmp (*code, err->code) == 0;
    if (later)
        return dx_step_outcome (self->out, DX_STEP_RETRY, 0, err->code, "%s %s: %s (after %d "
                                "tries)", method, path, err->message, err->attempts);
    if (strncmp (err->code, "AADSTS", 6) == 0
    ||  (err->http_status >= 400 && err->http_status < 500))
        return dx_step_outcome (self->out, DX_STEP_FAILED, 1, err->code, "%s", err->message);
    return dx_step_outcome (self->out, DX_STEP_FAILED, 0, err->code, "%s %s: %s", method, path,
                            err->message);
}

int
az_run_gone (az_run_t *self)
{
    return self->err.http_status == 404;
}

json_t *
az_run_ask (az_run_t *self, const char *method, const char *path, const char *api_version,
            const json_t *body)
{
    json_t *json = az_run_call (self, method, path, api_version, body);
    if (!json)
        az_run_failed (self, method, path);
    return json;
}

az_call_t *
az_run_begin (az_run_t *self, const char *method, const char *path, const char *api_version,
              const json_t *body)
{
    return az_arm_begin (self->arm, method, path, api_version, body);
}

json_t *
az_run_finish (az_run_t *self, az_call_t **call_p, const char *method, const char *path)
{
    json_t *json = az_arm_finish (self->arm, call_p, &self->err);
    if (!json)
        az_run_failed (self, method, path);
    return json;
}

int
az_run_delete (az_run_t *self, const char *path, const char *api_version)
{
    json_t *json = az_run_call (self, "DELETE", path, api_version, NULL);
    json_decref (json);
    return json || az_run_gone (self)? 0: az_run_failed (self, "DELETE", path);
}
