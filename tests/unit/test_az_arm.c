/*  Tests of services/azure-worker/az_arm.c: reading ARM's answers and
    errors, retry and rate-limit classes; and, against
    tests/fakes/fake_arm.py (started by the harness on a free loopback
    port, judging every PUT body by the Azure SDK's models): the token
    grant and its cache, a token refreshed after a 401, a wrong secret,
    api-versions, 429 with Retry-After, 5xx retried, long-running
    operations that succeed, fail or outlast their wait, cancel, paging,
    the rate-limit buckets, and no secret in any log line. Nothing is
    skipped: without /usr/bin/python3 and python3-azure the test fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "../../services/azure-worker/az_arm.h"
#include "harness_az.h"

#include "dx_cloud_metrics.h"
#include "dx_util.h"

//  ---------------------------------------------------------------------
//  Answers

static void
test_parse (void **state)
{
    (void) state;
    az_error_t err;
    const char *ok = "{\"name\": \"rg\", \"properties\": {\"provisioningState\": \"Succeeded\"}}";
    json_t *json = az_arm_parse (200, ok, strlen (ok), &err);
    assert_string_equal (json_string_value (json_object_get (json, "name")), "rg");
    json_decref (json);
    json = az_arm_parse (204, "", 0, &err);             /* no content: {} */
    assert_true (json_is_object (json) && json_object_size (json) == 0);
    json_decref (json);

    memset (&err, 0, sizeof err);
    assert_null (az_arm_parse (200, "<html/>", 7, &err));
    assert_string_equal (err.code, "InvalidResponse");
    assert_int_equal (err.retryable, 0);

    const char *rg = "{\"error\": {\"code\": \"ResourceGroupNotFound\", "
                     "\"message\": \"Resource group 'dexter-c1' could not be found.\"}}";
    assert_null (az_arm_parse (404, rg, strlen (rg), &err));
    assert_string_equal (err.code, "ResourceGroupNotFound");
    assert_string_equal (err.message, "Resource group 'dexter-c1' could not be found.");
    assert_int_equal (err.http_status, 404);
    assert_int_equal (err.retryable, 0);

    /* the first detail says what the message does not */
    const char *bad = "{\"error\": {\"code\": \"InvalidRequestContent\", \"message\": \"The request "
                      "content was invalid.\", \"details\": [{\"code\": \"UnknownMember\", "
                      "\"message\": \"properties.bogus\"}, {\"code\": \"x\", \"message\": \"y\"}]}}";
    assert_null (az_arm_parse (400, bad, strlen (bad), &err));
    assert_string_equal (err.code, "InvalidRequestContent");
    assert_string_equal (err.message, "The request content was invalid. (UnknownMember: properties.bogus)");

    /* some providers write Code and Message, at the top */
    const char *top = "{\"Code\": \"TooManyRequests\", \"Message\": \"slow down\"}";
    assert_null (az_arm_parse (429, top, strlen (top), &err));
    assert_string_equal (err.code, "TooManyRequests");
    assert_string_equal (err.message, "slow down");
    assert_int_equal (err.retryable, 1);

    /* a proxy's page */
    assert_null (az_arm_parse (502, "<html>Bad Gateway</html>", 24, &err));
    assert_string_equal (err.code, "HttpError");
    assert_string_equal (err.message, "HTTP 502 without an ARM error in the answer");
    assert_int_equal (err.retryable, 1);
    assert_null (az_arm_parse (403, "", 0, &err));
    assert_string_equal (err.code, "HttpError");
    assert_int_equal (err.retryable, 0);
}

static void
test_classes (void **state)
{
    (void) state;
    const struct { const char *code; long status; dx_retry_class_t cls; } table [] = {
        { "TooManyRequests", 429, DX_RETRY_THROTTLED },
        { "SubscriptionRequestsThrottled", 429, DX_RETRY_THROTTLED },
        { "Whatever", 429, DX_RETRY_THROTTLED },
        { "InternalServerError", 500, DX_RETRY_TRANSIENT },
        { "ServiceUnavailable", 503, DX_RETRY_TRANSIENT },
        { "RetryableError", 409, DX_RETRY_TRANSIENT },
        { "AnotherOperationInProgress", 409, DX_RETRY_TRANSIENT },
        { "RequestTimeout", 408, DX_RETRY_TRANSIENT },
        { "InvalidRequestContent", 400, DX_RETRY_NO },
        { "ResourceNotFound", 404, DX_RETRY_NO },
        { "ExpiredAuthenticationToken", 401, DX_RETRY_NO },
        { "AuthorizationFailed", 403, DX_RETRY_NO },
        { "InUseSubnetCannotBeDeleted", 400, DX_RETRY_NO },
        { "InternalServerError", 0, DX_RETRY_TRANSIENT },   /* a failed operation's */
        { "OSProvisioningTimedOut", 0, DX_RETRY_NO },
    };
    for (size_t i = 0; i < sizeof table / sizeof table [0]; i++)
        assert_int_equal (az_arm_classify (table [i].code, table [i].status), table [i].cls);
    double burst, rate;
    assert_string_equal (az_arm_class ("GET", &burst, &rate), "reads");
    assert_true (burst == 250 && rate == 25);
    const char *writes [] = { "PUT", "PATCH", "POST" };
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal (az_arm_class (writes [i], &burst, &rate), "writes");
        assert_true (burst == 200 && rate == 10);
    }
    assert_string_equal (az_arm_class ("DELETE", &burst, &rate), "deletes");
    assert_true (burst == 200 && rate == 10);
}

//  ---------------------------------------------------------------------
//  The fake ARM

#define SECRET  "Arm~Secret.Marker+/=&42"
#define LOCATION "westeurope"

static th_fake_t s_fake;
static struct {
    az_tokens_t *tokens;            /* a worker's: shared by the clients */
    dx_ratelimit_t *limits;
} T;

/*  Short waits, reproducible: the tests retry many times. */
static const dx_retry_policy_t s_fast = { 5, 40, 6, 1 };

static long
s_count (const char *table, const char *key)
{
    return th_fake_calls (s_fake.endpoint, table, key);
}

static void
s_config (const char *json)
{
    json_decref (th_fake_ask (&s_fake, "POST", "config", json));
}

static int
s_group_setup (void **state)
{
    *state = &s_fake;
    int rc = tz_fake_up (&s_fake, "az-arm", SECRET, "7", "300", false);
    T.tokens = az_tokens_new ();
    T.limits = dx_ratelimit_new ();
    return rc == 0 && T.tokens && T.limits? 0: -1;
}

static int
s_group_teardown (void **state)
{
    th_fake_teardown (state);
    az_tokens_destroy (&T.tokens);
    dx_ratelimit_destroy (&T.limits);
    return 0;
}

/*  The job's credentials, pointing at the fake; secret NULL: SECRET. */
static json_t *
s_credentials (const char *secret)
{
    return tz_credentials (&s_fake, secret? secret: SECRET);
}

/*  A client of the worker's token cache and limits. */
static az_arm_t *
s_client (const char *secret)
{
    json_t *credentials = s_credentials (secret);
    char why [256];
    az_cred_t *cred = az_cred_new (credentials, why, sizeof why);
    json_decref (credentials);
    assert_non_null (cred);
    az_arm_t *arm = az_arm_new (&cred);
    assert_non_null (arm);
    assert_null (cred);
    az_arm_set_tokens (arm, T.tokens);
    az_arm_set_limits (arm, T.limits);
    az_arm_set_retry (arm, &s_fast);
    az_arm_set_wait (arm, 100, 60000);
    return arm;
}

/*  az_arm_call with a body it takes. */
static json_t *
s_call (az_arm_t *arm, const char *method, const char *path, const char *api, json_t *body,
        az_error_t *err)
{
    json_t *json = az_arm_call (arm, method, path, api, body, err);
    json_decref (body);
    return json;
}

/*  A call that must succeed; prints ARM's error otherwise. */
static json_t *
s_call_ok (az_arm_t *arm, const char *method, const char *path, const char *api,
           json_t *body)
{
    az_error_t err;
    json_t *json = s_call (arm, method, path, api, body, &err);
    if (!json)
        print_error ("%s %s: %s (HTTP %ld): %s\n", method, path, err.code, err.http_status,
                     err.message);
    assert_non_null (json);
    return json;
}

static json_t *
s_group_body (void)
{
    return json_pack ("{s:s, s:{s:s}}", "location", LOCATION, "tags", "dexter:cluster", "c1");
}

static json_t *
s_vnet_body (const char *prefix)
{
    return json_pack ("{s:s, s:{s:{s:[s]}}}", "location", LOCATION, "properties",
                      "addressSpace", "addressPrefixes", prefix);
}

static const char *
s_state (const json_t *resource)
{
    return json_string_value (json_object_get (json_object_get (resource, "properties"),
                                               "provisioningState"));
}

/*  A resource group: created, read, answered with ARM's own 404 once it
    is gone; the api-version is sent, and judged. */
static void
test_fake_group (void **state)
{
    (void) state;
    az_arm_t *arm = s_client (NULL);
    json_t *rg = s_call_ok (arm, "PUT", "resourceGroups/dexter-c1", AZ_API_RESOURCES,
                            s_group_body ());
    assert_string_equal (json_string_value (json_object_get (rg, "name")), "dexter-c1");
    assert_string_equal (s_state (rg), "Succeeded");
    const char *id = json_string_value (json_object_get (rg, "id"));
    assert_string_equal (id, "/subscriptions/" TZ_SUB "/resourceGroups/dexter-c1");
    /* by its id, from the endpoint's root */
    json_t *again = s_call_ok (arm, "GET", id, AZ_API_RESOURCES, NULL);
    assert_string_equal (json_string_value (json_object_get (json_object_get (again, "tags"),
                                                              "dexter:cluster")), "c1");
    json_decref (again);
    json_decref (rg);

    az_error_t err;
    assert_null (az_arm_call (arm, "GET", "resourceGroups/dexter-c1", "1999-01-01", NULL, &err));
    assert_string_equal (err.code, "InvalidApiVersionParameter");
    assert_int_equal (err.http_status, 400);
    assert_int_equal (err.retryable, 0);
    assert_int_equal (err.attempts, 1);
    assert_null (az_arm_call (arm, "GET", "resourceGroups/nothing", AZ_API_RESOURCES, NULL, &err));
    assert_string_equal (err.code, "ResourceGroupNotFound");
    assert_int_equal (err.http_status, 404);
    assert_int_equal (err.attempts, 1);
    az_arm_destroy (&arm);
    assert_null (arm);
    az_arm_destroy (&arm);
}

typedef struct {
    char statuses [512];            /* "Creating,Succeeded," */
    int calls;
    int64_t last_elapsed;
} s_seen_t;

static void
s_on_progress (const az_progress_t *progress, void *arg)
{
    s_seen_t *seen = arg;
    assert_true (strncmp (progress->path, "resourceGroups/", 15) == 0);
    assert_null (strstr (progress->path, TZ_SUB));
    assert_true (progress->elapsed_ms >= seen->last_elapsed);
    seen->last_elapsed = progress->elapsed_ms;
    strncat (seen->statuses, progress->status, sizeof seen->statuses - strlen (seen->statuses) - 2);
    strcat (seen->statuses, ",");
    seen->calls++;
}

/*  The value of a sample of the process's cloud metrics, 0 when absent. */
static double
s_metric (const char *action, const char *outcome)
{
    char key [256];
    if (outcome)
        snprintf (key, sizeof key, "dexter_cloud_calls_total{provider=\"azure\",action=\"%s\","
                  "outcome=\"%s\"}", action, outcome);
    else
        snprintf (key, sizeof key, "dexter_cloud_retries_total{provider=\"azure\","
                  "action=\"%s\"}", action);
    json_t *snapshot = dx_metrics_snapshot (dx_cloud_metrics ());
    double v = json_number_value (json_object_get (snapshot, key));
    json_decref (snapshot);
    return v;
}

/*  A PUT that ARM runs as an operation: followed through
    Azure-AsyncOperation to the resource as it is at the end; a resource
    group's DELETE through its Location, to {}. */
static void
test_fake_operations (void **state)
{
    (void) state;
    az_arm_t *arm = s_client (NULL);
    s_seen_t seen = { "", 0, 0 };
    az_arm_set_progress (arm, s_on_progress, &seen);
    const char *vnets = "PUT Microsoft.Network/virtualNetworks";
    double puts = s_metric (vnets, "ok"), polls_ok = s_metric ("GET operation", "ok");
    double deletes = s_metric ("DELETE resourceGroups", "ok");
    double missing = s_metric ("DELETE resourceGroups", "error");
    json_decref (s_call_ok (arm, "PUT", "resourceGroups/dexter-ops", AZ_API_RESOURCES,
                            s_group_body ()));
    assert_int_equal (seen.calls, 0);              /* at once: no operation */
    long polls = s_count ("by_request", "GET operations");
    int64_t t0 = dx_mono_ms ();
    json_t *vnet = s_call_ok (arm, "PUT", "resourceGroups/dexter-ops/providers/"
                              "Microsoft.Network/virtualNetworks/ops-vnet", AZ_API_NETWORK,
                              s_vnet_body ("10.0.0.0/16"));
    assert_true (dx_mono_ms () - t0 >= 300);
    assert_string_equal (s_state (vnet), "Succeeded");
    assert_string_equal (json_string_value (json_object_get (vnet, "name")), "ops-vnet");
    json_decref (vnet);
    assert_string_equal (seen.statuses, "Updating,InProgress,Succeeded,");
    assert_true (s_count ("by_request", "GET operations") > polls);

    /* the same body again: 200 Succeeded at once */
    seen = (s_seen_t) { "", 0, 0 };
    json_decref (s_call_ok (arm, "PUT", "resourceGroups/dexter-ops/providers/"
                            "Microsoft.Network/virtualNetworks/ops-vnet", AZ_API_NETWORK,
                            s_vnet_body ("10.0.0.0/16")));
    assert_int_equal (seen.calls, 0);

    seen = (s_seen_t) { "", 0, 0 };
    json_t *gone = s_call_ok (arm, "DELETE", "resourceGroups/dexter-ops", AZ_API_RESOURCES, NULL);
    assert_true (json_is_object (gone) && json_object_size (gone) == 0);
    json_decref (gone);
    assert_string_equal (seen.statuses, "Accepted,InProgress,Succeeded,");
    az_error_t err;
    assert_null (az_arm_call (arm, "GET", "resourceGroups/dexter-ops", AZ_API_RESOURCES, NULL,
                              &err));
    assert_string_equal (err.code, "ResourceGroupNotFound");
    /* deleting what is gone: ARM's 404, which steps count as done */
    assert_null (az_arm_call (arm, "DELETE", "resourceGroups/dexter-ops", AZ_API_RESOURCES,
                              NULL, &err));
    assert_int_equal (err.http_status, 404);
    /* counted by action, the resource type without names: each try */
    assert_true (s_metric (vnets, "ok") == puts + 2);
    assert_true (s_metric ("GET operation", "ok") > polls_ok);
    assert_true (s_metric ("DELETE resourceGroups", "ok") == deletes + 1);
    assert_true (s_metric ("DELETE resourceGroups", "error") == missing + 1);
    az_arm_destroy (&arm);
}

/*  An operation that ends Failed gives the operation's own error; one
    that outlasts the wait, OperationTimedOut (retryable); a cancel stops
    the wait at once. */
static void
test_fake_operation_ends (void **state)
{
    (void) state;
    az_arm_t *arm = s_client (NULL);
    json_decref (s_call_ok (arm, "PUT", "resourceGroups/dexter-fail", AZ_API_RESOURCES,
                            s_group_body ()));
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"kind\": \"operation\", \"method\": \"PUT\", "
                                       "\"type\": \"Microsoft.Network/virtualNetworks\", \"code\": "
                                       "\"InternalOperationError\", \"message\": \"The vnet broke.\"}"));
    const char *path = "resourceGroups/dexter-fail/providers/Microsoft.Network/"
                       "virtualNetworks/fail-vnet";
    az_error_t err;
    assert_null (s_call (arm, "PUT", path, AZ_API_NETWORK, s_vnet_body ("10.1.0.0/16"),
                         &err));
    assert_string_equal (err.code, "InternalOperationError");
    assert_string_equal (err.message, "The vnet broke.");
    assert_int_equal (err.http_status, 0);
    assert_int_equal (err.retryable, 0);

    /* a long one: the wait ends first */
    s_config ("{\"lro_ms\": 20000}");
    az_arm_set_wait (arm, 100, 700);
    json_t *body = s_vnet_body ("10.2.0.0/16");
    int64_t t0 = dx_mono_ms ();
    assert_null (az_arm_call (arm, "PUT", path, AZ_API_NETWORK, body, &err));
    int64_t took = dx_mono_ms () - t0;
    assert_true (took >= 600 && took < 5000);
    assert_string_equal (err.code, "OperationTimedOut");
    assert_int_equal (err.retryable, 1);
    assert_non_null (strstr (err.message, "virtualNetworks/fail-vnet"));
    assert_non_null (strstr (err.message, "(status InProgress)"));
    s_config ("{\"lro_ms\": 300}");
    json_decref (body);
    az_arm_destroy (&arm);
}

static int
s_cancel_after (void *arg)
{
    return dx_mono_ms () >= *(int64_t *) arg;
}

static void
test_fake_cancel (void **state)
{
    (void) state;
    az_arm_t *arm = s_client (NULL);
    json_decref (s_call_ok (arm, "PUT", "resourceGroups/dexter-cancel", AZ_API_RESOURCES,
                            s_group_body ()));
    s_config ("{\"lro_ms\": 20000}");
    int64_t at = dx_mono_ms () + 400;
    az_arm_set_cancel (arm, s_cancel_after, &at);
    az_error_t err;
    json_t *body = s_vnet_body ("10.3.0.0/16");
    assert_null (az_arm_call (arm, "PUT", "resourceGroups/dexter-cancel/providers/"
                              "Microsoft.Network/virtualNetworks/c-vnet", AZ_API_NETWORK, body,
                              &err));
    assert_true (dx_mono_ms () - at < 1000);
    assert_string_equal (err.code, "CANCELLED");
    assert_int_equal (err.retryable, 0);
    /* cancelled before it starts: not a single try */
    long total = s_count ("by_method", "GET");
    assert_null (az_arm_call (arm, "GET", "resourceGroups/dexter-cancel", AZ_API_RESOURCES, NULL,
                              &err));
    assert_string_equal (err.code, "CANCELLED");
    assert_int_equal (s_count ("by_method", "GET"), total);
    s_config ("{\"lro_ms\": 300}");
    json_decref (body);
    az_arm_destroy (&arm);
}

/*  One grant serves every client of the principal; a token that expires
    is refused (401), dropped and replaced once, and the call goes on. */
static void
test_fake_tokens (void **state)
{
    (void) state;
    long grants = s_count ("by_request", "POST token");
    az_arm_t *a = s_client (NULL), *b = s_client (NULL);
    json_decref (s_call_ok (a, "GET", "resourcegroups", AZ_API_RESOURCES, NULL));
    json_decref (s_call_ok (b, "GET", "resourcegroups", AZ_API_RESOURCES, NULL));
    assert_int_equal (s_count ("by_request", "POST token"), grants + (grants? 0: 1));
    grants = s_count ("by_request", "POST token");

    long expired = s_count ("by_error_code", "ExpiredAuthenticationToken");
    json_decref (th_fake_ask (&s_fake, "POST", "expire-tokens", NULL));
    az_error_t err;
    json_t *json = az_arm_call (a, "GET", "resourcegroups", AZ_API_RESOURCES, NULL, &err);
    assert_non_null (json);
    json_decref (json);
    assert_int_equal (err.attempts, 1);            /* the refresh is part of the try */
    assert_int_equal (s_count ("by_error_code", "ExpiredAuthenticationToken"), expired + 1);
    assert_int_equal (s_count ("by_request", "POST token"), grants + 1);
    /* the other client takes the new token from the cache */
    json_decref (s_call_ok (b, "GET", "resourcegroups", AZ_API_RESOURCES, NULL));
    assert_int_equal (s_count ("by_request", "POST token"), grants + 1);
    assert_int_equal (s_count ("by_error_code", "ExpiredAuthenticationToken"), expired + 1);
    az_arm_destroy (&a);
    az_arm_destroy (&b);

    /* short-lived tokens are fetched again before they expire */
    s_config ("{\"token_ttl_s\": 2}");
    az_tokens_t *own = az_tokens_new ();
    a = s_client (NULL);
    az_arm_set_tokens (a, own);
    grants = s_count ("by_request", "POST token");
    json_decref (s_call_ok (a, "GET", "resourcegroups", AZ_API_RESOURCES, NULL));
    json_decref (s_call_ok (a, "GET", "resourcegroups", AZ_API_RESOURCES, NULL));
    assert_int_equal (s_count ("by_request", "POST token"), grants + 1);
    usleep (1100 * 1000);
    json_decref (s_call_ok (a, "GET", "resourcegroups", AZ_API_RESOURCES, NULL));
    assert_int_equal (s_count ("by_request", "POST token"), grants + 2);
    s_config ("{\"token_ttl_s\": 3599}");
    az_arm_destroy (&a);
    az_tokens_destroy (&own);
}

/*  Entra's refusals end the call at once with Entra's own code and
    message, and nothing reaches ARM; its throttling is retried. */
static void
test_fake_entra_errors (void **state)
{
    (void) state;
    long arm_calls = s_count ("by_method", "PUT");
    az_arm_t *arm = s_client ("not-the-secret");
    az_error_t err;
    assert_null (s_call (arm, "PUT", "resourceGroups/dexter-wrong", AZ_API_RESOURCES,
                         s_group_body (), &err));
    assert_string_equal (err.code, "AADSTS7000215");
    assert_true (strncmp (err.message, "AADSTS7000215: Invalid client secret provided.", 46) == 0);
    assert_null (strchr (err.message, '\n'));
    assert_null (strstr (err.message, "Trace ID"));
    assert_int_equal (err.http_status, 401);
    assert_int_equal (err.retryable, 0);
    assert_int_equal (err.attempts, 1);
    assert_int_equal (s_count ("by_method", "PUT"), arm_calls);
    az_arm_destroy (&arm);

    /* another tenant's principal: unknown there */
    json_t *credentials = s_credentials (NULL);
    json_object_set_new (credentials, "clientId", json_string ("00000000-0000-4000-8000-000000000001"));
    az_cred_t *cred = az_cred_new (credentials, NULL, 0);
    json_decref (credentials);
    arm = az_arm_new (&cred);
    assert_null (az_arm_call (arm, "GET", "resourcegroups", AZ_API_RESOURCES, NULL, &err));
    assert_string_equal (err.code, "AADSTS700016");
    assert_int_equal (err.retryable, 0);
    az_arm_destroy (&arm);

    /* Entra busy for a while: retried, then the token serves */
    az_tokens_t *own = az_tokens_new ();
    arm = s_client (NULL);
    az_arm_set_tokens (arm, own);
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"method\": \"POST\", \"type\": \"token\", "
                                       "\"status\": 503, \"count\": 2, \"retry_after\": 0}"));
    json_t *json = az_arm_call (arm, "GET", "resourcegroups", AZ_API_RESOURCES, NULL, &err);
    assert_non_null (json);
    json_decref (json);
    az_arm_destroy (&arm);
    az_tokens_destroy (&own);
}

/*  429 waits what Retry-After says; 5xx is retried with jitter; too many
    give the last error, retryable. */
static void
test_fake_retries (void **state)
{
    (void) state;
    az_arm_t *arm = s_client (NULL);
    long throttled = s_count ("by_error_code", "TooManyRequests");
    double counted = s_metric ("GET resourceGroups", "throttled");
    double retries = s_metric ("GET resourceGroups", NULL);
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"method\": \"GET\", \"status\": 429, "
                                       "\"code\": \"TooManyRequests\", \"count\": 2, \"retry_after\": 1}"));
    az_error_t err;
    int64_t t0 = dx_mono_ms ();
    json_t *json = az_arm_call (arm, "GET", "resourcegroups", AZ_API_RESOURCES, NULL, &err);
    int64_t took = dx_mono_ms () - t0;
    assert_non_null (json);
    json_decref (json);
    assert_int_equal (err.attempts, 3);
    assert_true (took >= 2000 && took < 6000);     /* 1 s twice, not 40 ms */
    assert_int_equal (s_count ("by_error_code", "TooManyRequests"), throttled + 2);
    assert_true (s_metric ("GET resourceGroups", "throttled") == counted + 2);
    assert_true (s_metric ("GET resourceGroups", NULL) == retries + 2);

    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"method\": \"PUT\", \"status\": 500, \"count\": 2}"));
    t0 = dx_mono_ms ();
    json = s_call (arm, "PUT", "resourceGroups/dexter-retry", AZ_API_RESOURCES,
                   s_group_body (), &err);
    assert_non_null (json);
    json_decref (json);
    assert_int_equal (err.attempts, 3);
    assert_true (dx_mono_ms () - t0 < 1000);

    /* a lost reply: the PUT was done, the repeat finds it done */
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"method\": \"PUT\", \"status\": 503, \"count\": 1, "
                                       "\"after\": true, \"retry_after\": 0}"));
    json = s_call (arm, "PUT", "resourceGroups/dexter-lost", AZ_API_RESOURCES,
                   s_group_body (), &err);
    assert_non_null (json);
    assert_string_equal (s_state (json), "Succeeded");
    json_decref (json);
    assert_int_equal (err.attempts, 2);

    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"method\": \"GET\", \"status\": 503, \"count\": 6, "
                                       "\"retry_after\": 0}"));
    assert_null (az_arm_call (arm, "GET", "resourcegroups", AZ_API_RESOURCES, NULL, &err));
    assert_string_equal (err.code, "ServiceUnavailable");
    assert_int_equal (err.http_status, 503);
    assert_int_equal (err.retryable, 1);
    assert_int_equal (err.attempts, 6);
    az_arm_destroy (&arm);
}

/*  Every page of a list, one array; the VM sizes of a location. */
static void
test_fake_list (void **state)
{
    (void) state;
    az_arm_t *arm = s_client (NULL);
    s_config ("{\"page_size\": 2}");
    char path [64];
    for (int i = 0; i < 5; i++) {
        snprintf (path, sizeof path, "resourceGroups/dexter-page%d", i);
        json_decref (s_call_ok (arm, "PUT", path, AZ_API_RESOURCES, s_group_body ()));
    }
    long lists = s_count ("by_request", "GET Microsoft.Resources/resourceGroups");
    az_error_t err;
    json_t *groups = az_arm_list (arm, "resourcegroups", AZ_API_RESOURCES, &err);
    assert_non_null (groups);
    size_t pages = (size_t) (s_count ("by_request", "GET Microsoft.Resources/resourceGroups") - lists);
    size_t found = 0, i;
    json_t *group;
    json_array_foreach (groups, i, group)
        found += strncmp (json_string_value (json_object_get (group, "name")), "dexter-page", 11) == 0;
    assert_int_equal (found, 5);
    assert_int_equal (pages, (json_array_size (groups) + 1) / 2);
    json_decref (groups);
    s_config ("{\"page_size\": 100}");

    json_t *sizes = az_arm_list (arm, "providers/Microsoft.Compute/locations/" LOCATION "/vmSizes",
                                 AZ_API_COMPUTE, &err);
    assert_non_null (sizes);
    int d2s = 0;
    json_t *size;
    json_array_foreach (sizes, i, size)
        if (strcmp (json_string_value (json_object_get (size, "name")), "Standard_D2s_v3") == 0)
            d2s = json_integer_value (json_object_get (size, "maxDataDiskCount")) > 0;
    assert_true (d2s);
    json_decref (sizes);
    az_arm_destroy (&arm);
}

/*  The client's own buckets: writes wait for their bucket, reads and
    deletes have their own, and ARM never had to say 429. */
static void
test_fake_rate_limits (void **state)
{
    (void) state;
    az_arm_t *arm = s_client (NULL);
    json_decref (s_call_ok (arm, "PUT", "resourceGroups/dexter-rate", AZ_API_RESOURCES,
                            s_group_body ()));
    long throttled = s_count ("by_status", "429");
    char key [128];
    snprintf (key, sizeof key, "%s|%s|writes", s_fake.endpoint, TZ_SUB);
    while (dx_ratelimit_wait (T.limits, key, 200, 10) == 0)
        ;                       /* the bucket is empty now */
    int64_t t0 = dx_mono_ms ();
    json_decref (s_call_ok (arm, "PUT", "resourceGroups/dexter-rate", AZ_API_RESOURCES,
                            s_group_body ()));
    assert_true (dx_mono_ms () - t0 >= 60);        /* ~100 ms: 10/s */
    t0 = dx_mono_ms ();
    json_decref (s_call_ok (arm, "GET", "resourceGroups/dexter-rate", AZ_API_RESOURCES, NULL));
    assert_true (dx_mono_ms () - t0 < 60);
    assert_int_equal (s_count ("by_status", "429"), throttled);
    az_arm_destroy (&arm);
}

/*  A debug log of calls, retries, a refresh, a failed operation and a
    wrong secret holds none of the secrets, tokens or the subscription. */
static void
test_no_secrets_in_logs (void **state)
{
    (void) state;
    char path [128];
    snprintf (path, sizeof path, "%s/stderr.log", s_fake.dir);
    int saved = th_log_capture (path);
    assert_true (saved >= 0);

    az_arm_t *arm = s_client (NULL);
    json_decref (th_fake_ask (&s_fake, "POST", "expire-tokens", NULL));
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"method\": \"PUT\", \"status\": 429, \"count\": 1, "
                                       "\"retry_after\": 0}"));
    json_t *vm = json_pack ("{s:s, s:{s:{s:s, s:s, s:s}}}", "location", LOCATION, "properties",
                            "osProfile", "computerName", "c1", "adminUsername", "dexter",
                            "adminPassword", "Pass!Marker99");
    json_decref (s_call (arm, "PUT", "resourceGroups/dexter-log", AZ_API_RESOURCES,
                         s_group_body (), NULL));
    json_decref (az_arm_call (arm, "PUT", "resourceGroups/dexter-log/providers/"
                              "Microsoft.Compute/virtualMachines/c1", AZ_API_COMPUTE, vm, NULL));
    json_decref (vm);
    az_arm_destroy (&arm);
    arm = s_client ("wrong~Marker");
    assert_null (az_arm_call (arm, "GET", "resourcegroups", AZ_API_RESOURCES, NULL, NULL));
    az_arm_destroy (&arm);

    char *text = th_log_release (saved, path);
    assert_non_null (text);
    assert_non_null (strstr (text, "ExpiredAuthenticationToken"));
    assert_non_null (strstr (text, "AADSTS7000215"));
    assert_non_null (strstr (text, "resourceGroups/dexter-log"));
    const char *never [] = { SECRET, "wrong~Marker", "Pass!Marker99", TZ_SUB, "Bearer", "eyJ",
                             "client_secret", "Marker" };
    for (size_t i = 0; i < sizeof never / sizeof never [0]; i++)
        if (strstr (text, never [i])) {
            print_error ("log holds %s:\n%s\n", never [i], text);
            fail ();
        }
    free (text);
}

int
main (void)
{
    const struct CMUnitTest offline [] = {
        cmocka_unit_test (test_parse),
        cmocka_unit_test (test_classes),
    };
    const struct CMUnitTest fake [] = {
        cmocka_unit_test (test_fake_group),
        cmocka_unit_test (test_fake_operations),
        cmocka_unit_test (test_fake_operation_ends),
        cmocka_unit_test (test_fake_cancel),
        cmocka_unit_test (test_fake_tokens),
        cmocka_unit_test (test_fake_entra_errors),
        cmocka_unit_test (test_fake_retries),
        cmocka_unit_test (test_fake_list),
        cmocka_unit_test (test_fake_rate_limits),
        cmocka_unit_test (test_no_secrets_in_logs),
    };
    int rc = cmocka_run_group_tests_name ("answers", offline, NULL, NULL);
    rc |= cmocka_run_group_tests_name ("fake ARM", fake, s_group_setup, s_group_teardown);
    th_tmpdir_remove (s_fake.dir, rc != 0);
    return rc;
}
