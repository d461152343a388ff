/*  az_arm: a small client for Azure Resource Manager's REST API.

    az_arm_call (arm, "PUT", "resourceGroups/dexter-c1", AZ_API_RESOURCES,
    body, &err) sends body as JSON with a bearer token of the principal
    (az_cred), after a token of the subscription's client-side rate limit;
    retries throttling, 5xx and connection failures with backoff and
    jitter, honouring Retry-After (dx_retry); fetches a new token once when
    ARM refuses the one it sent (401); follows a long-running operation to
    its end (Azure-AsyncOperation, else Location, else the resource's
    provisioningState), telling a progress callback how it goes. It returns
    ARM's answer as JSON, or NULL and an az_error_t carrying ARM's (or
    Entra's) own code and message. docs/azure.md has the details.

    Every ARM write is a PUT or DELETE by name, so every call may be
    repeated safely: a try whose answer was lost is simply tried again.
    Secrets (the client secret, tokens, request bodies, which may hold an
    admin password) are wiped after use and never logged. */
#ifndef AZ_ARM_H
#define AZ_ARM_H

#include <stdint.h>
#include <jansson.h>
#include "az_cred.h"
#include "dx_ratelimit.h"
#include "dx_retry.h"

/*  The api-versions Dexter speaks, one per resource provider. */
#define AZ_API_COMPUTE   "2022-08-01"
#define AZ_API_NETWORK   "2022-07-01"
#define AZ_API_RESOURCES "2022-09-01"

//  ---------------------------------------------------------------------
//  Errors

typedef struct {
    char code [64];         /* ARM's code (InvalidRequestContent, ...), Entra's
                               (AADSTS7000215, ...), or one of docs/azure.md's */
    char message [512];     /* theirs, or what went wrong */
    long http_status;       /* 0 when no answer came (or an operation failed) */
    int retryable;          /* 1 when a later try may succeed (throttling, 5xx,
                               network, an operation still running) */
    int attempts;           /* tries of the last request made */
} az_error_t;

//  ---------------------------------------------------------------------
//  The client

typedef struct az_arm az_arm_t;

/*  A client of the principal's subscription; takes the credentials
    (*cred_p is NULL after). NULL when memory is short (the credentials
    are destroyed then too). */
az_arm_t *az_arm_new (az_cred_t **cred_p);

/*  Wipes and frees, credentials included. Safe on NULL. */
void az_arm_destroy (az_arm_t **self_p);

/*  The client's credentials. Borrowed. */
const az_cred_t *az_arm_cred (const az_arm_t *self);

/*  Uses limits (borrowed; it must outlive self) for the client-side rate
    limit, so that every client of one worker shares each subscription's
    buckets. Without it a client has buckets of its own. */
void az_arm_set_limits (az_arm_t *self, dx_ratelimit_t *limits);

/*  Uses tokens (borrowed; it must outlive self) as the token cache, so
    that every client of one worker shares the principals' tokens. Without
    it a client has a cache of its own. */
void az_arm_set_tokens (az_arm_t *self, az_tokens_t *tokens);

/*  Retry policy (copied); default: dx_retry's defaults. */
void az_arm_set_retry (az_arm_t *self, const dx_retry_policy_t *policy);

/*  A job's cancel flag: raised, a call tries no more and waits no longer
    (it is looked at before each try and while waiting) and fails with
    code CANCELLED. fn NULL: none. */
void az_arm_set_cancel (az_arm_t *self, dx_cancel_fn *fn, void *arg);

/*  Long-running operations: poll_ms between polls when ARM gives no
    Retry-After, at most wait_ms for one operation (then the call fails
    with OperationTimedOut, retryable; the operation goes on in Azure).
    Defaults AZ_ARM_DEFAULT_POLL_MS and AZ_ARM_DEFAULT_WAIT_MS. */
#define AZ_ARM_DEFAULT_POLL_MS 5000
#define AZ_ARM_DEFAULT_WAIT_MS (30 * 60 * 1000)
void az_arm_set_wait (az_arm_t *self, int64_t poll_ms, int64_t wait_ms);

/*  How a long-running operation goes, for az_arm_set_progress. */
typedef struct {
    const char *method;     /* of the call that started it */
    const char *path;       /* its path below the subscription */
    const char *status;     /* ARM's: Accepted, InProgress, Creating, ...,
                               then Succeeded, Failed or Canceled */
    double percent;         /* percentComplete, or -1 when ARM gives none */
    int polls;              /* polls so far */
    int64_t elapsed_ms;     /* since the call started it */
} az_progress_t;

/*  Called when an operation starts, each time its status changes, and
    when it ends (borrowed, for the call only). fn NULL: none. */
typedef void (az_arm_progress_fn) (const az_progress_t *progress, void *arg);
void az_arm_set_progress (az_arm_t *self, az_arm_progress_fn *fn, void *arg);

/*  Calls method ("GET", "PUT", "PATCH", "POST", "DELETE") on path with
    api_version and body (may be NULL; sent as JSON). path is below the
    subscription ("resourceGroups/dexter-c1"), or a resource id from the
    endpoint's root ("/subscriptions/.../virtualNetworks/v"); it may hold a
    query (already encoded). When the answer starts a long-running
    operation, or a GET finds its resource changing (a provisioningState
    not final), waits for its end. Returns the answer (caller decrefs):
    the resource as it is at the end for PUT, PATCH and GET, the result
    (or {}) for POST, {} for DELETE; or NULL with *err
    filled (err may be NULL). A resource that does not exist is
    http_status 404 (ResourceNotFound, ResourceGroupNotFound, ...). */
json_t *az_arm_call (az_arm_t *self, const char *method, const char *path,
                     const char *api_version, const json_t *body, az_error_t *err);

/*  az_arm_call in two halves, so that several operations run in ARM at
    once: begin sends the request (with its retries) and returns once
    ARM has answered it, before following any operation it started;
    finish follows that operation to its end and answers exactly as
    az_arm_call would. Every begun call must be finished (finish takes
    it). method is borrowed until then. begin returns NULL only when out
    of memory; finish of NULL fails with OutOfMemory. */
typedef struct az_call az_call_t;
az_call_t *az_arm_begin (az_arm_t *self, const char *method, const char *path,
                         const char *api_version, const json_t *body);
json_t *az_arm_finish (az_arm_t *self, az_call_t **call_p, az_error_t *err);

/*  GETs a list at path and every next page (nextLink); returns the
    elements of every page's "value" as one array (caller decrefs), or
    NULL with *err filled. */
json_t *az_arm_list (az_arm_t *self, const char *path, const char *api_version,
                     az_error_t *err);

/*  Rate-limit class of a method and its bucket: "reads" (GET, HEAD: burst
    250, 25/s), "deletes" (DELETE: burst 200, 10/s) or "writes" (the
    others: burst 200, 10/s), the buckets ARM keeps per subscription. A
    registry shared with az_arm_set_limits keys them
    ENDPOINT|SUBSCRIPTION|CLASS. */
const char *az_arm_class (const char *method, double *burst, double *rate);

/*  Retry class of an ARM error code with its HTTP status. */
dx_retry_class_t az_arm_classify (const char *code, long http_status);

/*  Parses one ARM answer (status and body): 2xx gives the JSON ({} for an
    empty body); otherwise NULL with *err filled from {"error": {code,
    message, details}} (or the HTTP status when the body holds no ARM
    error). This is how az_arm_call reads each answer; on its own it reads
    answers that no server gives on demand (a proxy's HTML page). */
json_t *az_arm_parse (long http_status, const char *body, size_t len, az_error_t *err);

#endif
