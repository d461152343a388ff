/*  az_arm: the Resource Manager client: answers and errors, the token
    grant, the bearer call with rate limit and retries, and the long-running
    operations. See az_arm.h. */
#include "az_arm.h"
#include "dx_cloud_metrics.h"
#include "dx_http.h"
#include "dx_log.h"
#include "dx_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

/*  The actions metrics name for Entra ID's token grant and for the polls
    of a long-running operation (az_arm_call names the others). */
#define S_TOKEN_ACTION "POST token"
#define S_POLL_ACTION  "GET operation"

//  ---------------------------------------------------------------------
//  Errors and their retry class

static void
s_error (az_error_t *err, const char *code, long status, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_error (az_error_t *err, const char *code, long status, const char *fmt, ...)
{
    snprintf (err->code, sizeof err->code, "%s", code);
    va_list args;
    va_start (args, fmt);
    vsnprintf (err->message, sizeof err->message, fmt, args);
    va_end (args);
    err->http_status = status;
    err->retryable = az_arm_classify (err->code, status) != DX_RETRY_NO;
}

/*  Codes ARM (or a resource provider) answers when a later try will do:
    throttling, and conflicts that pass by themselves. */
static const char *const s_throttled_codes [] = {
    "TooManyRequests", "SubscriptionRequestsThrottled", "ResourceRequestsThrottled",
    "ResourceCollectionRequestsThrottled", "OperationThrottled", NULL
};
static const char *const s_transient_codes [] = {
    "InternalServerError", "ServiceUnavailable", "GatewayTimeout", "RetryableError",
    "AnotherOperationInProgress", "InternalExecutionError", NULL
};

static int
s_listed (const char *const *list, const char *code)
{
    for (; code && *list; list++)
        if (strcasecmp (*list, code) == 0)
            return 1;
    return 0;
}

dx_retry_class_t
az_arm_classify (const char *code, long http_status)
{
    if (s_listed (s_throttled_codes, code))
        return DX_RETRY_THROTTLED;
    if (s_listed (s_transient_codes, code) || http_status == 408)
        return DX_RETRY_TRANSIENT;
    dx_http_response_t resp = { .status = http_status };
    return dx_http_classify (&resp);
}

/*  The string member key of object, in either case ARM writes it
    ("code" or "Code"), or NULL. Borrowed. */
static const char *
s_member (const json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    if (!text) {
        char upper [32];
        snprintf (upper, sizeof upper, "%s", key);
        upper [0] = (char) (upper [0] - 'a' + 'A');
        text = json_string_value (json_object_get (object, upper));
    }
    return text;
}

/*  Fills err from an ARM error object {code, message, details: [...]};
    the first detail, which often says what the message does not, is
    added to the message. 0, or -1 when error holds no code. */
static int
s_error_from (az_error_t *err, const json_t *error, long status)
{
    const char *code = s_member (error, "code");
    if (!code || !*code)
        return -1;
    const char *message = s_member (error, "message");
    json_t *detail = json_array_get (json_object_get (error, "details"), 0);
    const char *detail_code = s_member (detail, "code");
    const char *detail_message = s_member (detail, "message");
    if (detail_code && detail_message)
        s_error (err, code, status, "%s (%s: %s)", message? message: "", detail_code,
                 detail_message);
    else
        s_error (err, code, status, "%s", message? message: "");
    return 0;
}

json_t *
az_arm_parse (long http_status, const char *body, size_t len, az_error_t *err)
{
    json_t *json = len? json_loadb (body, len, 0, NULL): json_object ();
    if (http_status >= 200 && http_status < 300) {
        if (json)
            return json;
        s_error (err, "InvalidResponse", http_status, "HTTP %ld answer is not JSON", http_status);
        return NULL;
    }
    json_t *error = json_object_get (json, "error");
    if (s_error_from (err, json_is_object (error)? error: json, http_status))
        s_error (err, "HttpError", http_status, "HTTP %ld without an ARM error in the answer",
                 http_status);
    json_decref (json);
    return NULL;
}

//  ---------------------------------------------------------------------
//  The client

/*  One try's limit: ARM answers in seconds; a try that hangs is retried
    like a dropped connection. */
#define S_TRY_TIMEOUT_MS 60000

struct az_arm {
    az_cred_t *cred;
    char *subscription_url;     /* ENDPOINT/subscriptions/SUB/ */
    size_t origin_len;          /* of the endpoint's scheme://host[:port] */
    dx_ratelimit_t *limits;     /* borrowed, or own_limits */
    dx_ratelimit_t *own_limits;
    az_tokens_t *tokens;        /* borrowed, or own_tokens */
    az_tokens_t *own_tokens;
    dx_retry_policy_t retry;
    dx_cancel_fn *cancel;       /* may be NULL */
    void *cancel_arg;
    az_arm_progress_fn *progress;       /* may be NULL */
    void *progress_arg;
    int64_t poll_ms;
    int64_t wait_ms;
};

az_arm_t *
az_arm_new (az_cred_t **cred_p)
{
    az_arm_t *self = calloc (1, sizeof *self);
    if (!self) {
        az_cred_destroy (cred_p);
        return NULL;
    }
    self->cred = *cred_p;
    *cred_p = NULL;
    const char *arm = az_cred_arm (self->cred);
    const char *host = strstr (arm, "://") + 3;
    self->origin_len = (size_t) (host - arm) + strcspn (host, "/");
    if (asprintf (&self->subscription_url, "%s/subscriptions/%s/", arm,
                  az_cred_subscription (self->cred)) < 0)
        self->subscription_url = NULL;
    self->own_limits = dx_ratelimit_new ();
    self->limits = self->own_limits;
    self->own_tokens = az_tokens_new ();
    self->tokens = self->own_tokens;
    self->retry = (dx_retry_policy_t) DX_RETRY_POLICY_DEFAULT;
    self->poll_ms = AZ_ARM_DEFAULT_POLL_MS;
    self->wait_ms = AZ_ARM_DEFAULT_WAIT_MS;
    if (!self->subscription_url || !self->own_limits || !self->own_tokens)
        az_arm_destroy (&self);
    return self;
}

void
az_arm_destroy (az_arm_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    az_arm_t *self = *self_p;
    az_cred_destroy (&self->cred);
    free (self->subscription_url);
    dx_ratelimit_destroy (&self->own_limits);
    az_tokens_destroy (&self->own_tokens);
    free (self);
    *self_p = NULL;
}

const az_cred_t *
az_arm_cred (const az_arm_t *self)
{
    return self->cred;
}

void
az_arm_set_limits (az_arm_t *self, dx_ratelimit_t *limits)
{
    self->limits = limits? limits: self->own_limits;
}

void
az_arm_set_tokens (az_arm_t *self, az_tokens_t *tokens)
{
    self->tokens = tokens? tokens: self->own_tokens;
}

void
az_arm_set_retry (az_arm_t *self, const dx_retry_policy_t *policy)
{
    self->retry = *policy;
}

void
az_arm_set_cancel (az_arm_t *self, dx_cancel_fn *fn, void *arg)
{
    self->cancel = fn;
    self->cancel_arg = arg;
}

void
az_arm_set_wait (az_arm_t *self, int64_t poll_ms, int64_t wait_ms)
{
    self->poll_ms = poll_ms > 0? poll_ms: AZ_ARM_DEFAULT_POLL_MS;
    self->wait_ms = wait_ms > 0? wait_ms: AZ_ARM_DEFAULT_WAIT_MS;
}

void
az_arm_set_progress (az_arm_t *self, az_arm_progress_fn *fn, void *arg)
{
    self->progress = fn;
    self->progress_arg = arg;
}

const char *
az_arm_class (const char *method, double *burst, double *rate)
{
    if (strcmp (method, "GET") == 0 || strcmp (method, "HEAD") == 0) {
        *burst = 250, *rate = 25;
        return "reads";
    }
    *burst = 200, *rate = 10;
    return strcmp (method, "DELETE") == 0? "deletes": "writes";
}

//  ---------------------------------------------------------------------
//  Retries, shared by the token grant and the ARM calls

/*  One try: 0 when it succeeded, else -1 with *err filled, *cls set and
    *after_ms set when the answer said how long to wait (Retry-After). */
typedef int (s_try_fn) (az_arm_t *self, void *ctx, az_error_t *err,
                        dx_retry_class_t *cls, int64_t *after_ms);

/*  Tries until one succeeds (0), no retry can help or the budget is spent
    (-1), or the job is cancelled (-1, CANCELLED). what names the request
    in logs, action in metrics. */
static int
s_with_retries (az_arm_t *self, const char *what, const char *action, s_try_fn *try_fn,
                void *ctx, az_error_t *err)
{
    dx_retry_t retry;
    dx_retry_init (&retry, &self->retry);
    while (1) {
        if (self->cancel && self->cancel (self->cancel_arg))
            break;
        int64_t start = dx_mono_ms (), after = -1;
        dx_retry_class_t cls = DX_RETRY_NO;
        memset (err, 0, sizeof *err);
        int rc = try_fn (self, ctx, err, &cls, &after);
        err->attempts = retry.attempts + 1;
        if (rc == 0) {
            int attempts = err->attempts;
            memset (err, 0, sizeof *err);       /* what earlier tries said is over */
            err->attempts = attempts;
            dx_debug ("arm %s ok in %lld ms (try %d)", what,
                      (long long) (dx_mono_ms () - start), attempts);
            return 0;
        }
        int64_t wait = dx_retry_next_after (&retry, cls, after);
        if (wait < 0) {
            /* An answer no retry can change is the caller's to judge (a
               step expects ResourceNotFound at times); exhausted retries
               are worth a warning. */
            if (cls == DX_RETRY_NO)
                dx_debug ("arm %s: %s (HTTP %ld): %s", what, err->code, err->http_status,
                          err->message);
            else
                dx_warn ("arm %s failed: %s (HTTP %ld) after %d tries: %s", what, err->code,
                         err->http_status, err->attempts, err->message);
            return -1;
        }
        dx_info ("arm %s: %s (HTTP %ld, %s), try %d of %d, again in %lld ms", what, err->code,
                 err->http_status, dx_retry_class_name (cls), err->attempts,
                 retry.policy.max_attempts, (long long) wait);
        dx_cloud_metrics_retry ("azure", action);
        if (dx_sleep_cancellable (wait, self->cancel, self->cancel_arg))
            break;
    }
    s_error (err, "CANCELLED", 0, "the job was cancelled during %s", what);
    err->retryable = 0;
    return -1;
}

/*  Fills err from a failed exchange (no answer, or out of memory) and
    sets its class. */
static void
s_exchange_failed (const dx_http_response_t *resp, az_error_t *err, dx_retry_class_t *cls)
{
    if (!resp) {
        s_error (err, "OutOfMemory", 0, "out of memory");
        *cls = DX_RETRY_NO;
    }
    else {
        *cls = dx_http_classify (resp);
        s_error (err, "NetworkError", 0, "%s", resp->error);
        err->retryable = *cls != DX_RETRY_NO;
    }
}

/*  Wipes and frees an answer whose body may hold a secret (a token). */
static void
s_response_wipe (dx_http_response_t **resp_p)
{
    if (*resp_p && (*resp_p)->body)
        sodium_memzero ((*resp_p)->body, (*resp_p)->body_len);
    dx_http_response_destroy (resp_p);
}

//  ---------------------------------------------------------------------
//  Tokens: the client-credentials grant, through the cache

typedef struct {
    char *token;                /* the grant's: wiped by whoever takes it */
    int64_t lifetime_s;
} s_grant_t;

/*  Reads Entra's answer: the token, or err with Entra's own code
    (AADSTSnnn, else its "error") and the first line of its description
    (the next ones are trace ids). */
static int
s_grant_read (const dx_http_response_t *resp, s_grant_t *grant, az_error_t *err)
{
    json_t *json = resp->body_len? json_loadb (resp->body, resp->body_len, 0, NULL): NULL;
    json_t *token = json_object_get (json, "access_token");
    json_t *expires = json_object_get (json, "expires_in");
    int rc = -1;
    if (resp->status == 200 && json_is_string (token) && json_string_length (token)) {
        grant->token = strdup (json_string_value (token));
        /* v2.0 gives a number, v1.0 gave a string */
        grant->lifetime_s = json_is_integer (expires)? json_integer_value (expires)
                          : json_is_string (expires)? atoll (json_string_value (expires)): 0;
        if (grant->token)
            rc = 0;
        else
            s_error (err, "OutOfMemory", 0, "out of memory");
        sodium_memzero ((char *) json_string_value (token), json_string_length (token));
    }
    else {
        const char *error = s_member (json, "error");
        const char *description = s_member (json, "error_description");
        json_t *number = json_array_get (json_object_get (json, "error_codes"), 0);
        char code [32];
        if (json_is_integer (number))
            snprintf (code, sizeof code, "AADSTS%lld", (long long) json_integer_value (number));
        else
            snprintf (code, sizeof code, "%s", error? error: "HttpError");
        int line = description? (int) strcspn (description, "\r\n"): 0;
        if (description)
            s_error (err, code, resp->status, "%.*s", line, description);
        else
            s_error (err, code, resp->status, "HTTP %ld from the token endpoint", resp->status);
        /* Entra's own "try again later" comes with an HTTP status that says so */
        if (error && strcmp (error, "temporarily_unavailable") == 0)
            err->retryable = 1;
    }
    json_decref (json);
    return rc;
}

static int
s_grant_try (az_arm_t *self, void *ctx, az_error_t *err, dx_retry_class_t *cls,
             int64_t *after_ms)
{
    s_grant_t *grant = ctx;
    static const char *const headers [] = {
        "Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL
    };
    char *body = az_cred_grant_body (self->cred);
    if (!body) {
        s_error (err, "OutOfMemory", 0, "out of memory");
        *cls = DX_RETRY_NO;
        return -1;
    }
    dx_http_request_t req = {
        .method = "POST", .url = az_cred_token_url (self->cred), .headers = headers,
        .body = body, .body_len = strlen (body), .timeout_ms = S_TRY_TIMEOUT_MS
    };
    int64_t start = dx_mono_ms ();
    dx_http_response_t *resp = dx_http_request (&req);
    dx_free_wiped (body);
    int rc = -1;
    if (!resp || resp->curl_code)
        s_exchange_failed (resp, err, cls);
    else {
        rc = s_grant_read (resp, grant, err);
        *cls = rc == 0? DX_RETRY_NO: az_arm_classify (err->code, resp->status);
        if (rc && *cls == DX_RETRY_NO && err->retryable)
            *cls = DX_RETRY_TRANSIENT;          /* temporarily_unavailable */
        *after_ms = dx_http_retry_after_ms (resp);
    }
    dx_cloud_metrics_call ("azure", S_TOKEN_ACTION, rc == 0, *cls,
                           (dx_mono_ms () - start) / 1000.0);
    s_response_wipe (&resp);
    return rc;
}

/*  A bearer token for the principal (caller wipes and frees it): the
    cached one unless it is stale (ARM just refused it), else a fresh
    grant, which the cache then hands to the other jobs. NULL with *err
    filled when Entra refuses or cannot be reached. */
static char *
s_token (az_arm_t *self, const char *stale, az_error_t *err)
{
    char *token = az_tokens_acquire (self->tokens, self->cred, stale);
    if (token)
        return token;
    s_grant_t grant = { NULL, 0 };
    int rc = s_with_retries (self, "token grant", S_TOKEN_ACTION, s_grant_try, &grant, err);
    az_tokens_release (self->tokens, self->cred, rc == 0? grant.token: NULL, grant.lifetime_s);
    return grant.token;
}

//  ---------------------------------------------------------------------
//  ARM requests

/*  One ARM request. */
typedef struct {
    const char *method;
    const char *url;            /* complete, api-version included */
    const char *body;           /* JSON text, or NULL */
    const char *what;           /* for logs: "PUT resourceGroups/x" */
    const char *action;         /* for metrics: "PUT Microsoft.Network/virtualNetworks" */
    /* the answer */
    long status;
    json_t *json;
    char *async_url;            /* Azure-AsyncOperation, or NULL */
    char *location;             /* Location, or NULL */
    int64_t retry_after_ms;     /* -1 when none */
    int64_t answered;           /* when the answer came (monotonic ms) */
} s_request_t;

/*  Sends the request once with token. 0 with the answer in request, else
    -1 with err filled and *cls set. */
static int
s_exchange (s_request_t *request, const char *token, az_error_t *err, dx_retry_class_t *cls,
            int64_t *after_ms)
{
    char *bearer = NULL;
    if (asprintf (&bearer, "Authorization: Bearer %s", token) < 0) {
        s_error (err, "OutOfMemory", 0, "out of memory");
        *cls = DX_RETRY_NO;
        return -1;
    }
    const char *headers [] = {
        bearer, "Accept: application/json",
        request->body? "Content-Type: application/json": NULL, NULL
    };
    dx_http_request_t req = {
        .method = request->method, .url = request->url, .headers = headers,
        .body = request->body, .body_len = request->body? strlen (request->body): 0,
        .timeout_ms = S_TRY_TIMEOUT_MS
    };
    int64_t start = dx_mono_ms ();
    dx_http_response_t *resp = dx_http_request (&req);
    dx_free_wiped (bearer);
    int rc = -1;
    if (!resp || resp->curl_code)
        s_exchange_failed (resp, err, cls);
    else {
        request->status = resp->status;
        request->json = az_arm_parse (resp->status, resp->body, resp->body_len, err);
        *cls = request->json? DX_RETRY_NO: az_arm_classify (err->code, resp->status);
        *after_ms = request->retry_after_ms = dx_http_retry_after_ms (resp);
        request->answered = dx_mono_ms ();
        const char *async_url = dx_http_header (resp, "Azure-AsyncOperation");
        const char *location = dx_http_header (resp, "Location");
        request->async_url = async_url && *async_url? strdup (async_url): NULL;
        request->location = location && *location? strdup (location): NULL;
        rc = request->json? 0: -1;
    }
    dx_http_response_destroy (&resp);
    dx_cloud_metrics_call ("azure", request->action, rc == 0, *cls,
                           (dx_mono_ms () - start) / 1000.0);
    return rc;
}

/*  Frees what an answer left in request. */
static void
s_request_clear (s_request_t *request)
{
    json_decref (request->json);
    free (request->async_url);
    free (request->location);
    request->json = NULL;
    request->async_url = request->location = NULL;
}

/*  One try of an ARM request: a rate-limit token, a bearer token, the
    exchange; when ARM refuses the bearer token (401: it expired, or was
    revoked), a fresh one and the exchange once more. */
static int
s_request_try (az_arm_t *self, void *ctx, az_error_t *err, dx_retry_class_t *cls,
               int64_t *after_ms)
{
    s_request_t *request = ctx;
    double burst, rate;
    const char *class = az_arm_class (request->method, &burst, &rate);
    char key [512];
    snprintf (key, sizeof key, "%.*s|%s|%s", (int) self->origin_len, az_cred_arm (self->cred),
              az_cred_subscription (self->cred), class);
    int64_t waited = dx_ratelimit_wait (self->limits, key, burst, rate);
    if (waited > 0) {
        dx_debug ("arm %s waited %lld ms for the %s rate limit", request->what,
                  (long long) waited, class);
        dx_cloud_metrics_wait ("azure", waited / 1000.0);
    }
    s_request_clear (request);
    request->status = 0;
    char *token = s_token (self, NULL, err);
    int rc = token? s_exchange (request, token, err, cls, after_ms): -1;
    if (rc && token && request->status == 401) {
        dx_info ("arm %s: %s, with a fresh token once more", request->what, err->code);
        char *fresh = s_token (self, token, err);
        if (fresh) {
            s_request_clear (request);
            rc = s_exchange (request, fresh, err, cls, after_ms);
        }
        dx_free_wiped (fresh);
    }
    if (rc && request->status == 401)
        *cls = DX_RETRY_NO;     /* refused twice: the principal lacks the right */
    dx_free_wiped (token);
    return rc;
}

/*  Sends request with retries; 0 with the answer in it, or -1. */
static int
s_request (az_arm_t *self, s_request_t *request, az_error_t *err)
{
    return s_with_retries (self, request->what, request->action, s_request_try, request, err);
}

/*  The complete URL of path (see az_arm_call) with api_version. Caller
    frees. NULL when memory is short. */
static char *
s_url (az_arm_t *self, const char *path, const char *api_version)
{
    char *url = NULL;
    const char *sep = strchr (path, '?')? "&": "?";
    int rc = *path == '/'
           ? asprintf (&url, "%s%s%sapi-version=%s", az_cred_arm (self->cred), path, sep,
                       api_version)
           : asprintf (&url, "%s%s%sapi-version=%s", self->subscription_url, path, sep,
                       api_version);
    return rc < 0? NULL: url;
}

/*  1 when url (a poll or next page URL ARM gave) is on the endpoint: the
    bearer token goes nowhere else. */
static int
s_on_endpoint (az_arm_t *self, const char *url)
{
    return strncasecmp (url, az_cred_arm (self->cred), self->origin_len) == 0
        && url [self->origin_len] == '/';
}

/*  "METHOD type", what metrics name: the resource type of path, its
    provider namespace and type segments without the names between them
    ("PUT Microsoft.Network/virtualNetworks/subnets"); without a provider,
    the path's first segment (`resourceGroups` for a group and the list of
    them, whatever its case). A bounded set, unlike the names in path. */
static void
s_action (const char *method, const char *path, char *action, size_t size)
{
    size_t len = strcspn (path, "?");
    const char *providers = NULL;
    for (const char *p = path; (p = strstr (p, "providers/")) && (size_t) (p - path) < len; p++)
        if (p == path || p [-1] == '/')
            providers = p;
    int n = snprintf (action, size, "%s ", method);
    if (!providers) {
        size_t seg = strcspn (path, "/?");
        if (seg == 0)
            snprintf (action + n, size - n, "subscription");
        else
        if (seg == strlen ("resourceGroups") && strncasecmp (path, "resourceGroups", seg) == 0)
            snprintf (action + n, size - n, "resourceGroups");
        else
            snprintf (action + n, size - n, "%.*s", (int) seg, path);
        return;
    }
    //  providers/NS/type/name/type/name...: keep NS and every type
    const char *p = providers + strlen ("providers/");
    const char *end = path + len;
    for (int segment = 0; p < end && (size_t) n < size - 1; segment++) {
        size_t seg = strcspn (p, "/?");
        if (p + seg > end)
            seg = end - p;
        if (segment == 0 || segment % 2 == 1)
            n += snprintf (action + n, size - n, "%s%.*s", segment? "/": "", (int) seg, p);
        p += seg;
        if (*p == '/')
            p++;
    }
}

/*  "METHOD path", the path below the subscription: what logs name. */
static void
s_what (az_arm_t *self, const char *method, const char *path, char *what, size_t size)
{
    const char *sub = self->subscription_url + strlen (az_cred_arm (self->cred));
    if (strncasecmp (path, sub, strlen (sub)) == 0)
        path += strlen (sub);
    snprintf (what, size, "%s %.*s", method, (int) strcspn (path, "?"), path);
}

//  ---------------------------------------------------------------------
//  Long-running operations

static const char *
s_provisioning_state (const json_t *json)
{
    return json_string_value (json_object_get (json_object_get (json, "properties"),
                                               "provisioningState"));
}

/*  1 when status ends an operation. */
static int
s_terminal (const char *status)
{
    return strcasecmp (status, "Succeeded") == 0 || strcasecmp (status, "Failed") == 0
        || strcasecmp (status, "Canceled") == 0;
}

/*  Fills err when an operation ended Failed or Canceled: ARM's own code
    and message from error (may be NULL); -1. */
static int
s_operation_failed (az_error_t *err, const char *status, const json_t *error, const char *what)
{
    if (!json_is_object (error) || s_error_from (err, error, 0))
        s_error (err, strcasecmp (status, "Canceled") == 0? "OperationCanceled"
                                                          : "OperationFailed",
                 0, "%s ended %s", what, status);
    err->http_status = 0;
    return -1;
}

/*  The operation being followed. */
typedef struct {
    const char *method;
    const char *what;
    const char *action;
    int64_t start;
    int polls;
    char status [64];           /* the last one told */
} s_operation_t;

/*  Records the operation's status, and tells the progress callback when
    it changed. */
static void
s_progress (az_arm_t *self, s_operation_t *op, const char *status, const json_t *json)
{
    if (strcmp (op->status, status) == 0)
        return;
    snprintf (op->status, sizeof op->status, "%s", status);
    if (!self->progress)
        return;
    json_t *percent = json_object_get (json, "percentComplete");
    az_progress_t progress = {
        .method = op->method, .path = op->what + strlen (op->method) + 1, .status = status,
        .percent = json_is_number (percent)? json_number_value (percent): -1,
        .polls = op->polls, .elapsed_ms = dx_mono_ms () - op->start
    };
    self->progress (&progress, self->progress_arg);
}

/*  The shortest wait between polls: a Retry-After of 0 is no reason to
    ask without pause. */
#define S_MIN_POLL_MS 100

/*  Follows the operation request started to its end: polls url, the
    operation's status (async: {status, error}), or its Location (202 until
    done), or else the resource (its provisioningState), each after
    Retry-After or poll_ms. 0 with the last answer in request, or -1. */
static int
s_follow (az_arm_t *self, s_request_t *request, s_operation_t *op, az_error_t *err)
{
    int async = request->async_url != NULL;
    const char *url = async? request->async_url
                    : request->location? request->location: request->url;
    char *poll_url = strdup (url);
    if (!poll_url || !s_on_endpoint (self, poll_url)) {
        if (poll_url)
            s_error (err, "InvalidResponse", request->status, "%s: the operation's URL is "
                     "not on the Resource Manager endpoint", op->what);
        else
            s_error (err, "OutOfMemory", 0, "out of memory");
        free (poll_url);
        return -1;
    }
    int by_location = !async && request->location;
    int64_t deadline = op->start + self->wait_ms;
    int64_t delay = request->retry_after_ms;
    //  The first wait counts from ARM's answer, not from now: an operation
    //  begun beside others (az_arm_begin) may be followed after them
    int64_t since = request->answered? dx_mono_ms () - request->answered: 0;
    int rc = -1;
    while (1) {
        int64_t wait = delay < 0? self->poll_ms: delay > S_MIN_POLL_MS? delay: S_MIN_POLL_MS;
        wait = since < wait - S_MIN_POLL_MS? wait - since: S_MIN_POLL_MS;
        since = 0;
        int64_t left = deadline - dx_mono_ms ();
        if (left <= 0) {
            s_error (err, "OperationTimedOut", 0, "%s still runs after %lld s (status %s)",
                     op->what, (long long) (self->wait_ms / 1000), op->status);
            err->retryable = 1;
            break;
        }
        if (wait > left)
            wait = left;
        if (dx_sleep_cancellable (wait, self->cancel, self->cancel_arg)) {
            s_error (err, "CANCELLED", 0, "the job was cancelled while %s ran", op->what);
            break;
        }
        s_request_t poll = { .method = "GET", .url = poll_url, .what = op->what,
                             .action = S_POLL_ACTION };
        op->polls++;
        if (s_request (self, &poll, err)) {
            s_request_clear (&poll);
            break;
        }
        delay = poll.retry_after_ms;
        const char *status = async? s_member (poll.json, "status")
                           : by_location? (poll.status == 202? "InProgress": "Succeeded")
                           : s_provisioning_state (poll.json);
        status = status? status: "InProgress";
        s_progress (self, op, status, poll.json);
        if (s_terminal (status)) {
            if (strcasecmp (status, "Succeeded") == 0) {
                s_request_clear (request);
                request->json = poll.json;
                request->status = poll.status;
                poll.json = NULL;
                rc = 0;
            }
            else
                s_operation_failed (err, status, json_object_get (poll.json, "error"), op->what);
            s_request_clear (&poll);
            break;
        }
        s_request_clear (&poll);
    }
    free (poll_url);
    return rc;
}

/*  1 when the answer to request starts an operation to follow: 202, or
    a 200 or 201 whose resource is still being provisioned. */
static int
s_started (const s_request_t *request)
{
    const char *state = s_provisioning_state (request->json);
    if (request->status == 202)
        return request->async_url || request->location;
    return (request->status == 200 || request->status == 201) && state && !s_terminal (state);
}

/*  The answer of an operation that succeeded: for PUT and PATCH, and a
    GET that met its resource changing, the resource as it is now (GET
    url), for POST what its Location holds, for DELETE {}. Replaces
    request->json. */
static int
s_result (az_arm_t *self, s_request_t *request, s_operation_t *op, const char *location,
          az_error_t *err)
{
    int put = strcmp (op->method, "PUT") == 0 || strcmp (op->method, "PATCH") == 0
           || strcmp (op->method, "GET") == 0;
    const char *url = put? request->url
                    : strcmp (op->method, "POST") == 0 && location
                      && s_on_endpoint (self, location)? location: NULL;
    if (!url) {
        json_decref (request->json);
        request->json = json_object ();
        return 0;
    }
    char action [128];                  /* a GET of the operation's resource type */
    const char *type = strchr (op->action, ' ');
    snprintf (action, sizeof action, "GET %s", type? type + 1: op->action);
    s_request_t get = { .method = "GET", .url = url, .what = op->what, .action = action };
    if (s_request (self, &get, err)) {
        s_request_clear (&get);
        return -1;
    }
    json_decref (request->json);
    request->json = get.json;
    get.json = NULL;
    s_request_clear (&get);
    return 0;
}

//  ---------------------------------------------------------------------
//  Calls

/*  Wipes and frees text jansson made (json_dumps), which may hold a
    password. */
static void
s_json_text_free (char *text)
{
    if (!text)
        return;
    json_malloc_t malloc_fn;
    json_free_t free_fn;
    json_get_alloc_funcs (&malloc_fn, &free_fn);
    sodium_memzero (text, strlen (text));
    free_fn (text);
}

struct az_call {
    char what [256];            /* for logs: "PUT resourceGroups/x" */
    char action [128];          /* for metrics */
    char *url;
    s_request_t request;
    s_operation_t op;
    int rc;                     /* the request's: 0, or -1 with err */
    az_error_t err;
};

az_call_t *
az_arm_begin (az_arm_t *self, const char *method, const char *path,
              const char *api_version, const json_t *body)
{
    az_call_t *call = (az_call_t *) calloc (1, sizeof *call);
    if (!call)
        return NULL;
    s_what (self, method, path, call->what, sizeof call->what);
    s_action (method, path, call->action, sizeof call->action);
    call->url = s_url (self, path, api_version);
    char *text = body? json_dumps (body, JSON_COMPACT): NULL;
    if (!call->url || (body && !text)) {
        s_error (&call->err, "OutOfMemory", 0, "out of memory");
        call->rc = -1;
        s_json_text_free (text);
        return call;
    }
    call->request = (s_request_t) { .method = method, .url = call->url, .body = text,
                                    .what = call->what, .action = call->action };
    call->op = (s_operation_t) { .method = method, .what = call->what,
                                 .action = call->action, .start = dx_mono_ms () };
    call->rc = s_request (self, &call->request, &call->err);
    s_json_text_free (text);
    call->request.body = NULL;
    return call;
}

json_t *
az_arm_finish (az_arm_t *self, az_call_t **call_p, az_error_t *err)
{
    az_error_t scratch;
    if (!err)
        err = &scratch;
    az_call_t *call = call_p? *call_p: NULL;
    if (!call) {
        memset (err, 0, sizeof *err);
        s_error (err, "OutOfMemory", 0, "out of memory");
        return NULL;
    }
    *call_p = NULL;
    *err = call->err;
    s_request_t *request = &call->request;
    s_operation_t *op = &call->op;
    int rc = call->rc;
    if (rc == 0 && s_started (request)) {
        const char *state = s_provisioning_state (request->json);
        char *location = request->location? strdup (request->location): NULL;
        s_progress (self, op, state? state: "Accepted", request->json);
        rc = s_follow (self, request, op, err);
        if (rc == 0)
            rc = s_result (self, request, op, location, err);
        else
        if (strcmp (err->code, "CANCELLED") != 0)
            s_progress (self, op, strcmp (err->code, "OperationTimedOut") == 0
                                  ? "TimedOut": "Failed", NULL);
        free (location);
        dx_log (rc == 0? DX_LOG_DEBUG: DX_LOG_INFO, "arm %s: the operation ended %s after "
                "%d polls, %lld ms", call->what, rc == 0? "Succeeded": err->code, op->polls,
                (long long) (dx_mono_ms () - op->start));
    }
    /* a resource still failed after its PUT is no success */
    const char *state = rc == 0? s_provisioning_state (request->json): NULL;
    if (state && strcmp (op->method, "GET") != 0 && strcasecmp (state, "Succeeded") != 0
    &&  s_terminal (state))
        rc = s_operation_failed (err, state, NULL, call->what);
    json_t *json = rc == 0? request->json: NULL;
    if (rc)
        json_decref (request->json);
    request->json = NULL;
    s_request_clear (request);
    free (call->url);
    sodium_memzero (&call->err, sizeof call->err);
    free (call);
    return json;
}

json_t *
az_arm_call (az_arm_t *self, const char *method, const char *path,
             const char *api_version, const json_t *body, az_error_t *err)
{
    az_call_t *call = az_arm_begin (self, method, path, api_version, body);
    return az_arm_finish (self, &call, err);
}

json_t *
az_arm_list (az_arm_t *self, const char *path, const char *api_version, az_error_t *err)
{
    json_t *all = json_array ();
    char *url = s_url (self, path, api_version);
    char what [256], action [128];
    s_what (self, "GET", path, what, sizeof what);
    s_action ("GET", path, action, sizeof action);
    az_error_t scratch;
    if (!err)
        err = &scratch;
    memset (err, 0, sizeof *err);
    if (!all || !url) {
        s_error (err, "OutOfMemory", 0, "out of memory");
        json_decref (all);
        all = NULL;
    }
    while (all && url) {
        s_request_t request = { .method = "GET", .url = url, .what = what, .action = action };
        int rc = s_request (self, &request, err);
        const char *next = rc == 0? s_member (request.json, "nextLink"): NULL;
        if (rc == 0)
            json_array_extend (all, json_object_get (request.json, "value"));
        free (url);
        url = next && *next? strdup (next): NULL;
        if (url && !s_on_endpoint (self, url)) {
            s_error (err, "InvalidResponse", request.status, "%s: the next page is not on "
                     "the Resource Manager endpoint", what);
            rc = -1;
        }
        s_request_clear (&request);
        if (rc) {
            json_decref (all);
            all = NULL;
        }
    }
    free (url);
    return all;
}
