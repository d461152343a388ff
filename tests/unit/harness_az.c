/*  harness_az: the fake ARM, its credentials and step runs for the tests
    of services/azure-worker. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "harness_az.h"

int
tz_fake_up (th_fake_t *fake, const char *prefix, const char *secret, const char *seed,
            const char *lro_ms, bool quiet)
{
    char principal [256];
    snprintf (principal, sizeof principal, "%s:%s:%s:%s", TZ_TENANT, TZ_CLIENT, TZ_SUB, secret);
    const char *const args [] = {
        "--principal", principal, "--seed", seed, "--lro-ms", lro_ms, "--retry-after-s", "0",
        quiet? "--quiet": NULL, NULL
    };
    if (th_tmpdir (fake->dir, sizeof fake->dir, prefix))
        return -1;
    fake->pid = th_fake_arm_start (fake->dir, args, fake->endpoint, sizeof fake->endpoint);
    return fake->pid > 0? 0: -1;
}

json_t *
tz_credentials (const th_fake_t *fake, const char *secret)
{
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", "clientId", TZ_CLIENT,
                      "clientSecret", secret, "tenantId", TZ_TENANT, "subscriptionId", TZ_SUB,
                      "activeDirectoryEndpointUrl", fake->endpoint,
                      "resourceManagerEndpointUrl", fake->endpoint);
}

void
tz_fault (const th_fake_t *fake, const char *json)
{
    json_decref (th_fake_ask (fake, "POST", "faults", json));
}

json_t *
tz_reported (const dx_step_out_t *out, const char *key)
{
    size_t i;
    json_t *res;
    json_array_foreach (out->resources, i, res)
        if (strcmp (json_string_value (json_object_get (res, "key")), key) == 0)
            return res;
    return NULL;
}

const char *
tz_field (const json_t *object, const char *name)
{
    const char *value = json_string_value (json_object_get (object, name));
    return value? value: "";
}

void
tz_job_start (tz_job_t *job, json_t *assign, const az_run_config_t *config,
              dx_cancel_fn *cancelled)
{
    job->assign = assign;
    dx_step_out_init (&job->out, cancelled, NULL);
    az_run_init (&job->run, config, job->assign, &job->out);
    assert_int_equal (az_run_start (&job->run), 0);
}

void
tz_job_end (tz_job_t *job)
{
    az_run_fini (&job->run);
    dx_step_out_fini (&job->out);
    json_decref (job->assign);
}

void
tz_expect (const dx_step_out_t *out, dx_step_outcome_t outcome, int permanent, const char *code)
{
    if (out->outcome != outcome || strcmp (out->code, code))
        print_error ("outcome %s %s: %s\n", dx_step_outcome_name (out->outcome), out->code,
                     out->message);
    assert_int_equal (out->outcome, outcome);
    assert_int_equal (out->permanent, permanent);
    assert_string_equal (out->code, code);
}
