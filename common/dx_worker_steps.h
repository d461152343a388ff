/*  dx_worker_steps: the job handler of a cloud worker (aws, azure), whose
    jobs are steps of proto/PROTOCOL.md run into a common/dx_step result.

        static aws_steps_config_t config = AWS_STEPS_CONFIG_DEFAULT;
        static int run (const void *config, const json_t *assign, dx_step_out_t *out)
        {   return aws_step_run (config, assign, out);   }
        static dx_worker_steps_t steps = { run, &config };
        dx_worker_new ("aws", capacity, NULL, dx_worker_steps_handle, &steps);

    The handler runs the step with the job's cancel flag and its progress
    (dx_step_progress becomes job.progress), hands its outcome
    and resources to the loop (dx_worker_job_fail, _retry, _add_resource),
    and logs one line when the step starts and one when it ends; never the
    credentials. */
#ifndef DX_WORKER_STEPS_H
#define DX_WORKER_STEPS_H

#include <jansson.h>
#include "dx_step.h"
#include "dx_worker.h"

/*  Runs the step of assign (job.assign) with the worker's config, filling
    out. Returns 0 when done, else -1; out says why. */
typedef int (dx_worker_step_fn) (const void *config, const json_t *assign, dx_step_out_t *out);

typedef struct {
    dx_worker_step_fn *run;
    const void *config;                 /* given to run; must outlive the worker */
} dx_worker_steps_t;

/*  A dx_worker_handler_fn; arg is a dx_worker_steps_t (static: see
    dx_worker.h on a handler's arg). */
void dx_worker_steps_handle (const json_t *assign, dx_worker_job_t *job, void *arg);

#endif
