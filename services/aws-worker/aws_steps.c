/*  aws_steps: the aws-worker's entry point, aws_step_run: a table from a
    step's kind to its function (aws_network.c, aws_hosts.c, aws_batch.c,
    aws_crl.c), run on the job through an aws_run_t (aws_run.c). See
    aws_steps.h. */
#include "aws_steps.h"
#include "aws_run.h"

#include <string.h>

static const struct {
    const char *kind;
    aws_step_fn *fn;
} s_steps [] = {
    { "network", aws_step_network },
    { "security", aws_step_security },
    { "image", aws_step_image },
    { "keypair", aws_step_keypair },
    { "host", aws_step_host },
    { "hosts", aws_step_hosts },
    { "remove", aws_step_remove },
    { "access.crl", aws_step_access_crl },
    { "destroy.instances", aws_step_destroy_instances },
    { "destroy.addresses", aws_step_destroy_addresses },
    { "destroy.security", aws_step_destroy_security },
    { "destroy.network", aws_step_destroy_network },
};

int
aws_step_run (const aws_steps_config_t *config, const json_t *assign, dx_step_out_t *out)
{
    aws_run_t run;
    aws_run_init (&run, config, assign, out);
    const char *kind = dx_step_str (run.job.step, "kind");
    aws_step_fn *fn = NULL;
    for (size_t i = 0; kind && !fn && i < sizeof s_steps / sizeof s_steps [0]; i++)
        if (strcmp (s_steps [i].kind, kind) == 0)
            fn = s_steps [i].fn;
    if (!fn)
        dx_step_outcome (run.out, DX_STEP_FAILED, 1, "InvalidStep", "unknown step kind %s",
                         kind? kind: "(none)");
    else
    if (aws_run_start (&run) == 0)
        fn (&run);
    aws_run_fini (&run);
    return out->outcome == DX_STEP_DONE? 0: -1;
}
