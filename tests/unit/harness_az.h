/*  harness_az: what the tests of services/azure-worker share. The fake
    ARM (tests/fakes/fake_arm.py) started for a file's tests with one
    service principal, the credentials a job carries for it, and one
    step's run (az_run) started against it. */
#ifndef HARNESS_AZ_H
#define HARNESS_AZ_H

#include <stdbool.h>
#include <jansson.h>

#include "../../services/azure-worker/az_run.h"
#include "harness.h"

/*  The service principal's tenant, client and subscription. */
#define TZ_TENANT   "3c0d1e2f-0000-4000-8000-0000000000aa"
#define TZ_CLIENT   "7e1f2a3b-0000-4000-8000-0000000000bb"
#define TZ_SUB      "9a8b7c6d-0000-4000-8000-0000000000cc"

/*  Makes fake->dir (/tmp/dx-<prefix>-...) and starts the fake ARM there
    (th_fake_arm_start) for the principal with secret, with --seed seed,
    --lro-ms lro_ms, no Retry-After wait and, when quiet, no request
    log. 0 or -1. */
int tz_fake_up (th_fake_t *fake, const char *prefix, const char *secret, const char *seed,
                const char *lro_ms, bool quiet);

/*  A job's credentials for the principal with secret, pointing at the
    fake (caller decrefs). */
json_t *tz_credentials (const th_fake_t *fake, const char *secret);

/*  Adds a fault to the fake (POST /_fake/faults with json). */
void tz_fault (const th_fake_t *fake, const char *json);

/*  The resource out reports under key, borrowed; or NULL. */
json_t *tz_reported (const dx_step_out_t *out, const char *key);

/*  The string name of object, or "" when it has none. */
const char *tz_field (const json_t *object, const char *name);

/*  One step's run against the fake. */
typedef struct {
    json_t *assign;
    dx_step_out_t out;
    az_run_t run;
} tz_job_t;

/*  Starts job for assign (taken) with config, cancelled as out's cancel
    test (may be NULL); fails the test unless az_run_start succeeds. */
void tz_job_start (tz_job_t *job, json_t *assign, const az_run_config_t *config,
                   dx_cancel_fn *cancelled);

/*  Frees what tz_job_start made. */
void tz_job_end (tz_job_t *job);

/*  Fails the test unless out has outcome, permanent and code (said on
    stderr with the message). */
void tz_expect (const dx_step_out_t *out, dx_step_outcome_t outcome, int permanent,
                const char *code);

#endif
