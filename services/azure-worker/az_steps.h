/*  az_steps: one job of the azure-worker, i.e. one step of
    proto/PROTOCOL.md ("Steps: what a job asks a worker to do"), turned
    into idempotent Azure Resource Manager calls.

        az_run_config_t config = AZ_RUN_CONFIG_DEFAULT;
        config.limits = limits;                 // one registry per process
        config.tokens = tokens;                 // one token cache per process
        dx_step_out_t out;
        dx_step_out_init (&out, cancelled_fn, job);
        az_step_run (&config, assign, &out);    // the job.assign message
        ... out.outcome, out.code, out.message, out.permanent, out.resources
        dx_step_out_fini (&out);

    az_step_run needs no ZeroMQ: main.c hands it to common/dx_worker_steps,
    tests call it directly against tests/fakes/fake_arm.py. Every resource
    lives in the cluster's resource group and is named from the cluster,
    group and slot, so a step run twice PUTs the same names; a step first
    reads what it would write, and writes only what differs. docs/azure.md
    describes each step's calls, waits and errors.

    The steps themselves are in az_network.c and az_hosts.c, and what they
    share in az_run.h; az_steps.c maps a kind to its step. It mirrors the
    aws-worker's aws_steps. */
#ifndef AZ_STEPS_H
#define AZ_STEPS_H

#include <jansson.h>
#include "az_run.h"
#include "dx_step.h"

/*  Runs the step of assign (job.assign: cluster, step, credentials, job,
    attempt) and fills out; config NULL: AZ_RUN_CONFIG_DEFAULT. Returns 0
    when the outcome is done, else -1. The credentials are read, copied
    into the ARM client only, and wiped from it when the step ends. */
int az_step_run (const az_run_config_t *config, const json_t *assign, dx_step_out_t *out);

#endif
