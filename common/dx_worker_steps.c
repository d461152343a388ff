/*  dx_worker_steps: a cloud worker's job handler. See dx_worker_steps.h. */
#include "dx_worker_steps.h"
#include "dx_log.h"
#include "dx_util.h"

static int
s_cancelled (void *arg)
{
    return dx_worker_job_cancelled ((dx_worker_job_t *) arg);
}

static void
s_progress (void *arg, const char *text)
{
    dx_worker_job_progress ((dx_worker_job_t *) arg, "%s", text);
}

void
dx_worker_steps_handle (const json_t *assign, dx_worker_job_t *job, void *arg)
{
    const dx_worker_steps_t *steps = arg;
    const char *id = json_string_value (json_object_get (assign, "job"));
    const char *kind = json_string_value (json_object_get (json_object_get (assign, "step"), "kind"));
    long long attempt = (long long) json_integer_value (json_object_get (assign, "attempt"));
    id = id? id: "?";
    kind = kind? kind: "?";
    dx_info ("job %s attempt %lld: step %s starts", id, attempt, kind);
    int64_t start = dx_mono_ms ();

    dx_step_out_t out;
    dx_step_out_init (&out, s_cancelled, job);
    out.progress = s_progress;
    out.progress_arg = job;
    steps->run (steps->config, assign, &out);
    size_t i;
    json_t *resource;
    //  Copies: the loop's thread sends them, nothing is shared between threads
    json_array_foreach (out.resources, i, resource)
        dx_worker_job_add_resource (job, json_deep_copy (resource));
    if (out.outcome == DX_STEP_FAILED)
        dx_worker_job_fail (job, out.permanent, out.code, "%s", out.message);
    else
    if (out.outcome == DX_STEP_RETRY)
        dx_worker_job_retry (job, out.code, "%s", out.message);

    if (out.outcome == DX_STEP_DONE)
        dx_info ("job %s attempt %lld: step %s done in %lld ms, %zu resources", id, attempt,
                 kind, (long long) (dx_mono_ms () - start), json_array_size (out.resources));
    else
        dx_warn ("job %s attempt %lld: step %s %s%s code=%s in %lld ms: %s", id, attempt,
                 kind, dx_step_outcome_name (out.outcome), out.permanent? " (permanent)": "",
                 out.code, (long long) (dx_mono_ms () - start), out.message);
    dx_step_out_fini (&out);
}
