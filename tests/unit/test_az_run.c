/*  Tests of services/azure-worker/az_run.c: a job's fields, names and
    ownership tags; and, against tests/fakes/fake_arm.py, how the ARM
    client's failures end a step: retry, failed, or failed for good. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "../../services/azure-worker/az_run.h"
#include "../../services/azure-worker/az_steps.h"
#include "harness_az.h"

#define SECRET  "Run~Secret.Marker"

static th_fake_t s_fake;

/*  Short waits, reproducible. */
static const dx_retry_policy_t s_fast = { 5, 40, 4, 1 };
static const az_run_config_t s_config = { NULL, NULL, 100, 60000, &s_fast, NULL };

/*  A job.assign of cluster c1 in westeurope with credentials for the
    fake (secret NULL: SECRET). */
static json_t *
s_assign (const char *secret)
{
    return json_pack ("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}, s:{}}, s:o}",
                      "job", "c1:1:network", "cluster", "c1",
                      "step", "kind", "network", "id", "network", "uid", "0123456789ab",
                      "config", "location", "westeurope", "context",
                      "credentials", tz_credentials (&s_fake, secret? secret: SECRET));
}

static void
test_names_and_tags (void **state)
{
    (void) state;
    json_t *assign = s_assign (NULL);
    dx_step_out_t out;
    dx_step_out_init (&out, NULL, NULL);
    az_run_t run;
    az_run_init (&run, NULL, assign, &out);
    assert_string_equal (run.job.cluster, "c1");
    assert_string_equal (run.job.uid, "0123456789ab");
    assert_string_equal (run.location, "westeurope");
    assert_string_equal (run.group, "dexter-c1");
    assert_ptr_equal (run.config->retry, NULL);
    char path [256];
    assert_string_equal (az_run_path (&run, path, sizeof path, "Microsoft.Network/virtualNetworks",
                                      "c1-vnet"),
                         "resourceGroups/dexter-c1/providers/Microsoft.Network/virtualNetworks/c1-vnet");
    assert_string_equal (az_run_path (&run, path, sizeof path, "Microsoft.Compute/virtualMachines",
                                      NULL),
                         "resourceGroups/dexter-c1/providers/Microsoft.Compute/virtualMachines");
    char small [16];
    assert_string_equal (az_run_path (&run, small, sizeof small, "Microsoft.Compute/disks", "d"), "");

    json_t *tags = az_run_tags (&run, "agent", "g1", "c1-g1-3");
    json_t *want = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "dexter:cluster", "c1",
                              "dexter:uid", "0123456789ab", "dexter:role", "agent",
                              "dexter:group", "g1", "dexter:host", "c1-g1-3");
    assert_true (json_equal (tags, want));
    json_decref (tags);
    json_decref (want);
    tags = az_run_tags (&run, "network", NULL, NULL);
    assert_int_equal (json_object_size (tags), 3);
    json_decref (tags);
    az_run_fini (&run);
    dx_step_out_fini (&out);
    json_decref (assign);
}

/*  A job that cannot start fails for good, saying why. */
static void
test_start_refused (void **state)
{
    (void) state;
    json_t *assign = s_assign (NULL);
    json_object_del (json_object_get (assign, "credentials"), "subscriptionId");
    dx_step_out_t out;
    dx_step_out_init (&out, NULL, NULL);
    az_run_t run;
    az_run_init (&run, &s_config, assign, &out);
    assert_int_equal (az_run_start (&run), -1);
    assert_int_equal (out.outcome, DX_STEP_FAILED);
    assert_int_equal (out.permanent, 1);
    assert_string_equal (out.code, "InvalidCredentials");
    assert_string_equal (out.message, "credentials: subscriptionId is missing");
    az_run_fini (&run);
    dx_step_out_fini (&out);

    json_object_del (assign, "cluster");
    dx_step_out_init (&out, NULL, NULL);
    az_run_init (&run, &s_config, assign, &out);
    assert_int_equal (az_run_start (&run), -1);
    assert_string_equal (out.code, "InvalidStep");
    az_run_fini (&run);
    dx_step_out_fini (&out);
    json_decref (assign);
}

/*  az_step_run: a kind no step has fails for good, before any call; a
    known kind with refused credentials fails as az_run_start says. */
static void
test_step_dispatch (void **state)
{
    (void) state;
    json_t *assign = s_assign (NULL);
    json_object_set_new (json_object_get (assign, "step"), "kind", json_string ("keypair"));
    dx_step_out_t out;
    dx_step_out_init (&out, NULL, NULL);
    assert_int_equal (az_step_run (&s_config, assign, &out), -1);
    assert_int_equal (out.outcome, DX_STEP_FAILED);
    assert_int_equal (out.permanent, 1);
    assert_string_equal (out.code, "InvalidStep");
    assert_string_equal (out.message, "unknown step kind keypair");
    dx_step_out_fini (&out);

    json_object_set_new (json_object_get (assign, "step"), "kind", json_string ("network"));
    json_object_del (json_object_get (assign, "credentials"), "tenantId");
    dx_step_out_init (&out, NULL, NULL);
    assert_int_equal (az_step_run (&s_config, assign, &out), -1);
    assert_string_equal (out.code, "InvalidCredentials");
    dx_step_out_fini (&out);
    json_decref (assign);
}

//  ---------------------------------------------------------------------
//  Against the fake

static int
s_group_setup (void **state)
{
    *state = &s_fake;
    return tz_fake_up (&s_fake, "az-run", SECRET, "3", "200", true);
}

static int s_cancel_flag;

static int
s_cancelled (void *arg)
{
    (void) arg;
    return s_cancel_flag;
}

/*  Starts the network step of c1 with secret (NULL: SECRET), cancelled
    by s_cancel_flag. */
static void
s_job_start (tz_job_t *job, const char *secret)
{
    tz_job_start (job, s_assign (secret), &s_config, s_cancelled);
}

static json_t *
s_vnet (void)
{
    return json_pack ("{s:s, s:{s:{s:[s]}}}", "location", "westeurope", "properties",
                      "addressSpace", "addressPrefixes", "10.0.0.0/16");
}

/*  Done, and deletes of what is gone. */
static void
test_fake_done (void **state)
{
    (void) state;
    tz_job_t job;
    s_job_start (&job, NULL);
    json_t *body = json_pack ("{s:s, s:o}", "location", "westeurope", "tags",
                              az_run_tags (&job.run, "network", NULL, NULL));
    json_t *rg = az_run_ask (&job.run, "PUT", "resourceGroups/dexter-c1", AZ_API_RESOURCES, body);
    assert_non_null (rg);
    json_decref (rg);
    json_decref (body);
    char path [256];
    body = s_vnet ();
    json_t *vnet = az_run_ask (&job.run, "PUT", az_run_path (&job.run, path, sizeof path,
                               "Microsoft.Network/virtualNetworks", "c1-vnet"), AZ_API_NETWORK,
                               body);
    json_decref (body);
    assert_non_null (vnet);
    json_decref (vnet);
    assert_int_equal (az_run_delete (&job.run, path, AZ_API_NETWORK), 0);
    assert_int_equal (az_run_delete (&job.run, "resourceGroups/dexter-c1", AZ_API_RESOURCES), 0);
    /* gone already: done too */
    assert_int_equal (az_run_delete (&job.run, "resourceGroups/dexter-c1", AZ_API_RESOURCES), 0);
    assert_true (az_run_gone (&job.run));
    tz_expect (&job.out, DX_STEP_DONE, 0, "");
    tz_job_end (&job);
}

/*  Refusals no retry can change fail for good, with the cloud's code. */
static void
test_fake_permanent (void **state)
{
    (void) state;
    tz_job_t job;
    s_job_start (&job, "wrong-secret");
    assert_null (az_run_ask (&job.run, "GET", "resourcegroups", AZ_API_RESOURCES, NULL));
    tz_expect (&job.out, DX_STEP_FAILED, 1, "AADSTS7000215");
    assert_true (strncmp (job.out.message, "AADSTS7000215: Invalid client secret", 36) == 0);
    tz_job_end (&job);

    s_job_start (&job, NULL);
    json_t *body = json_pack ("{s:s}", "location", "westeurope");
    json_decref (az_run_ask (&job.run, "PUT", "resourceGroups/dexter-c2", AZ_API_RESOURCES, body));
    json_decref (body);
    body = s_vnet ();
    json_object_set_new (json_object_get (body, "properties"), "bogus", json_true ());
    assert_null (az_run_ask (&job.run, "PUT", "resourceGroups/dexter-c2/providers/"
                             "Microsoft.Network/virtualNetworks/c2-vnet", AZ_API_NETWORK, body));
    json_decref (body);
    tz_expect (&job.out, DX_STEP_FAILED, 1, "InvalidRequestContent");
    tz_job_end (&job);
}

/*  Busy past the retries, capacity, a cancel: later. An operation that
    failed otherwise: failed, not for good. */
static void
test_fake_later (void **state)
{
    (void) state;
    tz_job_t job;
    s_job_start (&job, NULL);
    tz_fault (&s_fake, "{\"method\": \"GET\", \"status\": 503, \"count\": 4, \"retry_after\": 0}");
    assert_null (az_run_ask (&job.run, "GET", "resourcegroups", AZ_API_RESOURCES, NULL));
    tz_expect (&job.out, DX_STEP_RETRY, 0, "ServiceUnavailable");
    assert_non_null (strstr (job.out.message, "after 4 tries"));
    tz_job_end (&job);

    s_job_start (&job, NULL);
    json_t *body = json_pack ("{s:s}", "location", "westeurope");
    json_decref (az_run_ask (&job.run, "PUT", "resourceGroups/dexter-c3", AZ_API_RESOURCES, body));
    json_decref (body);
    tz_fault (&s_fake, "{\"kind\": \"operation\", \"method\": \"PUT\", \"code\": \"AllocationFailed\", "
                       "\"message\": \"No capacity.\"}");
    body = s_vnet ();
    const char *vnet = "resourceGroups/dexter-c3/providers/Microsoft.Network/"
                       "virtualNetworks/c3-vnet";
    assert_null (az_run_ask (&job.run, "PUT", vnet, AZ_API_NETWORK, body));
    tz_expect (&job.out, DX_STEP_RETRY, 0, "AllocationFailed");
    tz_job_end (&job);

    s_job_start (&job, NULL);
    tz_fault (&s_fake, "{\"kind\": \"operation\", \"method\": \"PUT\", \"code\": \"InternalOperationError\"}");
    assert_null (az_run_ask (&job.run, "PUT", vnet, AZ_API_NETWORK, body));
    tz_expect (&job.out, DX_STEP_FAILED, 0, "InternalOperationError");
    assert_non_null (strstr (job.out.message, "PUT resourceGroups/dexter-c3"));
    tz_job_end (&job);

    s_job_start (&job, NULL);
    s_cancel_flag = 1;
    assert_null (az_run_ask (&job.run, "PUT", vnet, AZ_API_NETWORK, body));
    s_cancel_flag = 0;
    tz_expect (&job.out, DX_STEP_RETRY, 0, "CANCELLED");
    tz_job_end (&job);
    json_decref (body);
}

int
main (void)
{
    const struct CMUnitTest offline [] = {
        cmocka_unit_test (test_names_and_tags),
        cmocka_unit_test (test_start_refused),
        cmocka_unit_test (test_step_dispatch),
    };
    const struct CMUnitTest fake [] = {
        cmocka_unit_test (test_fake_done),
        cmocka_unit_test (test_fake_permanent),
        cmocka_unit_test (test_fake_later),
    };
    int rc = cmocka_run_group_tests_name ("a job", offline, NULL, NULL);
    rc |= cmocka_run_group_tests_name ("fake ARM", fake, s_group_setup, th_fake_teardown);
    th_tmpdir_remove (s_fake.dir, rc != 0);
    return rc;
}
