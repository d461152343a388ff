/*  aws_run: one job's step being run: its fields, its EC2 client, its
    calls (with the waits for "not ready yet") and how their failures end
    the step. See aws_run.h. */
#include "aws_run.h"
#include "dx_log.h"
#include "dx_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>

//  ---------------------------------------------------------------------
//  Life

static const aws_steps_config_t s_defaults = AWS_STEPS_CONFIG_DEFAULT;

void
aws_run_init (aws_run_t *self, const aws_steps_config_t *config, const json_t *assign,
              dx_step_out_t *out)
{
    memset (self, 0, sizeof *self);
    self->config = config? config: &s_defaults;
    dx_step_job_read (&self->job, assign);
    self->region = dx_step_str (self->job.config, "region");
    self->out = out;
}

int
aws_run_start (aws_run_t *self)
{
    if (!self->job.cluster || !*self->job.cluster || !self->job.uid)
        return dx_step_outcome (self->out, DX_STEP_FAILED, 1, "InvalidStep",
                                "the job has no cluster or its step no uid");
    const char *akid = dx_step_str (self->job.credentials, "aws_access_key_id");
    const char *secret = dx_step_str (self->job.credentials, "aws_secret_access_key");
    const char *token = dx_step_str (self->job.credentials, "aws_session_token");
    if (!akid || !*akid || !secret || !*secret)
        return dx_step_outcome (self->out, DX_STEP_FAILED, 1, "AuthFailure", "the deployment's "
                                "credentials lack aws_access_key_id or aws_secret_access_key");
    const char *region = self->region? self->region: "";
    self->ec2 = aws_ec2_new (region, akid, secret, token);
    if (!self->ec2)
        return dx_step_outcome (self->out, DX_STEP_FAILED, 1, "InvalidParameterValue",
                                "config.region '%s' is not an AWS region name", region);
    aws_ec2_set_limits (self->ec2, self->config->limits);
    if (self->config->retry)
        aws_ec2_set_retry (self->ec2, self->config->retry);
    aws_ec2_set_cancel (self->ec2, self->out->cancelled, self->out->cancel_arg);
    return 0;
}

void
aws_run_fini (aws_run_t *self)
{
    aws_ec2_destroy (&self->ec2);
    sodium_memzero (&self->err, sizeof self->err);
}

//  ---------------------------------------------------------------------
//  Calls

const char *const aws_run_not_found [] = { "*.NotFound", NULL };

/*  Codes no retry can fix (PROTOCOL.md "Outcomes"); and any *LimitExceeded
    but RequestLimitExceeded (throttling, retryable). */
static const char *const s_permanent_codes [] = {
    "AuthFailure", "UnauthorizedOperation", "InvalidParameterValue",
    "InvalidParameterCombination", "Unsupported", "UnsupportedOperation",
    "MissingParameter", "UnknownParameter", "InvalidKeyPair.NotFound",
    "SignatureDoesNotMatch", "InvalidClientTokenId", "OptInRequired", "Blocked",
    "InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable",
    "InvalidKey.Format", "InvalidBlockDeviceMapping", "InvalidInstanceType",
    "InvalidAction", "InvalidUserData.Malformed", NULL
};

/*  Capacity and other conditions AWS itself calls temporary, and the "not
    ready yet" codes a step waited out for wait_ms in vain: later, then. */
static const char *const s_retry_codes [] = {
    "InsufficientInstanceCapacity", "InsufficientAddressCapacity",
    "InsufficientFreeAddressesInSubnet", "PendingVerification",
    "DependencyViolation", "IncorrectInstanceState", "InvalidIPAddress.InUse", NULL
};

static int
s_code_listed (const char *const *list, const char *code)
{
    size_t code_len = strlen (code);
    for (; list && *list; list++) {
        size_t len = strlen (*list);
        if ((*list) [0] == '*' && code_len >= len - 1
        &&  strcmp (code + code_len - (len - 1), *list + 1) == 0)
            return 1;
        if (strcmp (*list, code) == 0)
            return 1;
    }
    return 0;
}

/*  A streamed call's reader (aws_ec2_stream's arguments). */
typedef struct {
    const char *path;
    aws_ec2_item_fn *fn;
    void *arg;
    char *next;
    size_t next_size;
} s_stream_t;

/*  aws_run_call, or with stream aws_run_stream: 0 (and *doc when not
    streamed), or -1. */
static int
s_call (aws_run_t *self, const char *action, const aws_params_t *params,
        const char *const *wait_codes, const s_stream_t *stream, xmlDocPtr *doc)
{
    int64_t deadline = dx_mono_ms () + self->config->wait_ms;
    int waits = 0;
    while (1) {
        if (dx_step_cancelled (self->out)) {
            snprintf (self->err.code, sizeof self->err.code, "CANCELLED");
            snprintf (self->err.message, sizeof self->err.message, "the job was cancelled");
            self->err.retryable = 0;
            return -1;
        }
        if (stream
            ? aws_ec2_stream (self->ec2, action, params, stream->path, stream->fn, stream->arg,
                              stream->next, stream->next_size, &self->err) == 0
            : (*doc = aws_ec2_call (self->ec2, action, params, &self->err)) != NULL)
            return 0;
        if (!s_code_listed (wait_codes, self->err.code) || dx_mono_ms () >= deadline)
            return -1;
        //  One line when the wait starts, the polls at debug level
        dx_log (waits++? DX_LOG_DEBUG: DX_LOG_INFO, "cluster %s: ec2 %s: %s, not ready yet; "
                "trying every %lld ms for at most %lld ms", self->job.cluster, action,
                self->err.code, (long long) self->config->poll_ms,
                (long long) self->config->wait_ms);
        dx_sleep_ms (self->config->poll_ms);
    }
}

xmlDocPtr
aws_run_call (aws_run_t *self, const char *action, const aws_params_t *params,
              const char *const *wait_codes)
{
    xmlDocPtr doc = NULL;
    return s_call (self, action, params, wait_codes, NULL, &doc) == 0? doc: NULL;
}

int
aws_run_stream (aws_run_t *self, const char *action, const aws_params_t *params,
                const char *const *wait_codes, const char *path, aws_ec2_item_fn *fn,
                void *arg, char *next, size_t next_size)
{
    s_stream_t stream = { path, fn, arg, next, next_size };
    return s_call (self, action, params, wait_codes, &stream, NULL);
}

int
aws_run_failed (aws_run_t *self, const char *action)
{
    const aws_error_t *err = &self->err;
    size_t len = strlen (err->code);
    if (dx_step_cancelled (self->out))
        return dx_step_outcome (self->out, DX_STEP_RETRY, 0, "CANCELLED", "the job was "
                                "cancelled during %s", action);
    if (err->retryable || s_code_listed (s_retry_codes, err->code))
        return dx_step_outcome (self->out, DX_STEP_RETRY, 0, err->code, "%s: %s (after %d tries)",
                                action, err->message, err->attempts);
    if (s_code_listed (s_permanent_codes, err->code)
    ||  (len > 13 && strcmp (err->code + len - 13, "LimitExceeded") == 0
         && strcmp (err->code, "RequestLimitExceeded") != 0))
        return dx_step_outcome (self->out, DX_STEP_FAILED, 1, err->code, "%s", err->message);
    return dx_step_outcome (self->out, DX_STEP_FAILED, 0, err->code, "%s: %s", action,
                            err->message);
}

int
aws_run_code_is (aws_run_t *self, const char *code)
{
    return strcmp (self->err.code, code) == 0;
}

xmlDocPtr
aws_run_ask (aws_run_t *self, const char *action, aws_params_t **params_p,
             const char *const *wait_codes)
{
    xmlDocPtr doc = aws_run_call (self, action, *params_p, wait_codes);
    aws_params_destroy (params_p);
    if (!doc)
        aws_run_failed (self, action);
    return doc;
}

int
aws_run_act (aws_run_t *self, const char *action, aws_params_t **params_p,
             const char *const *wait_codes, ...)
{
    xmlDocPtr doc = aws_run_call (self, action, *params_p, wait_codes);
    aws_params_destroy (params_p);
    if (doc) {
        xmlFreeDoc (doc);
        return 0;
    }
    va_list args;
    va_start (args, wait_codes);
    const char *done;
    while ((done = va_arg (args, const char *)) && !aws_run_code_is (self, done))
        ;
    va_end (args);
    return done? 0: aws_run_failed (self, action);
}

void
aws_run_owned (aws_run_t *self, aws_params_t *params, const char *role)
{
    aws_params_filter (params, "tag:dexter:cluster", self->job.cluster, NULL);
    if (role)
        aws_params_filter (params, "tag:dexter:role", role, NULL);
}

void
aws_run_tag_spec (aws_run_t *self, aws_params_t *params, const char *type, const char *role,
                  const char *group, const char *host, const char *name)
{
    char prefix [64];
    snprintf (prefix, sizeof prefix, "TagSpecification.%d",
              aws_params_next (params, "TagSpecification"));
    aws_params_addf (params, type, "%s.ResourceType", prefix);
    aws_params_tag (params, prefix, "dexter:cluster", self->job.cluster);
    aws_params_tag (params, prefix, "dexter:uid", self->job.uid);
    aws_params_tag (params, prefix, "dexter:role", role);
    if (group)
        aws_params_tag (params, prefix, "dexter:group", group);
    if (host)
        aws_params_tag (params, prefix, "dexter:host", host);
    aws_params_tag (params, prefix, "Name", name);
}

int
aws_run_each_owned (aws_run_t *self, const char *action, const char *set, aws_item_fn *fn)
{
    aws_params_t *params = aws_params_new ();
    aws_run_owned (self, params, NULL);
    xmlDocPtr doc = aws_run_ask (self, action, &params, NULL);
    if (!doc)
        return -1;
    int rc = 0;
    for (xmlNodePtr item = aws_xml_child (xmlDocGetRootElement (doc), set); item && rc == 0;
         item = aws_xml_next (item))
        rc = fn (self, item);
    xmlFreeDoc (doc);
    return rc;
}

int
aws_doc_text (xmlDocPtr doc, const char *set, const char *path, char *buf, size_t size)
{
    xmlNodePtr item = aws_xml_child (xmlDocGetRootElement (doc), set);
    const char *text = item? aws_xml_text (item, path): NULL;
    if (!text || !*text)
        return -1;
    snprintf (buf, size, "%s", text);
    return 0;
}
