/*  aws_steps: one job of the aws-worker, i.e. one step of
    proto/PROTOCOL.md ("Steps: what a job asks a worker to do"), turned
    into idempotent EC2 calls.

        aws_steps_config_t config = AWS_STEPS_CONFIG_DEFAULT;
        config.limits = limits;                 // one registry per process
        dx_step_out_t out;
        dx_step_out_init (&out, cancelled_fn, job);
        aws_step_run (&config, assign, &out);   // the job.assign message
        ... out.outcome, out.code, out.message, out.permanent, out.resources
        dx_step_out_fini (&out);

    aws_step_run needs no ZeroMQ: main.c bridges the outcome to dx_worker,
    tests call it directly against tests/fakes/fake_ec2.py. Every step
    first looks for what it would create by its tags (dexter:cluster and
    the step's own), creates only what is missing, tags at creation
    (TagSpecification), and reports what it found or made, whatever the
    outcome. docs/aws.md describes each step's calls, waits and errors.

    The result (common/dx_step) says the outcome, with AWS's code and
    message or one of docs/aws.md's. The steps themselves are in
    aws_network.c, aws_hosts.c and aws_batch.c, and what they share in
    aws_run.h; aws_steps.c maps a kind to its step. */
#ifndef AWS_STEPS_H
#define AWS_STEPS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "dx_ratelimit.h"
#include "dx_retry.h"
#include "dx_step.h"

/*  What the process gives every step. */
typedef struct {
    dx_ratelimit_t *limits;             /* shared by all jobs (borrowed); NULL: per client */
    int64_t poll_ms;                    /* DescribeInstances period while waiting */
    int64_t wait_ms;                    /* longest wait for one state (running, terminated, ...) */
    const dx_retry_policy_t *retry;     /* aws_ec2's retries; NULL: dx_retry's defaults */
} aws_steps_config_t;

#define AWS_STEPS_DEFAULT_POLL_MS 1000
#define AWS_STEPS_DEFAULT_WAIT_MS (15 * 60 * 1000)
#define AWS_STEPS_CONFIG_DEFAULT \
    { NULL, AWS_STEPS_DEFAULT_POLL_MS, AWS_STEPS_DEFAULT_WAIT_MS, NULL }

/*  Runs the step of assign (job.assign: cluster, step, credentials, job,
    attempt) and fills out; config NULL: AWS_STEPS_CONFIG_DEFAULT. Returns
    0 when the outcome is done, else -1.
    The credentials are read, copied into the EC2 client only, and wiped
    from it when the step ends. */
int aws_step_run (const aws_steps_config_t *config, const json_t *assign, dx_step_out_t *out);

#endif
