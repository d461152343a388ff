/*  az_steps: the azure-worker's entry point, az_step_run: a table from a
    step's kind to its function (az_network.c, az_hosts.c, az_crl.c), run on the job
    through an az_run_t (az_run.c). See az_steps.h. */
#include "az_steps.h"

#include <string.h>

static const struct {
    const char *kind;
    az_step_fn *fn;
} s_steps [] = {
    { "network", az_step_network },
    { "security", az_step_security },
    { "image", az_step_image },
    { "host", az_step_host },
    { "remove", az_step_remove },
    { "access.crl", az_step_access_crl },
    { "destroy.group", az_step_destroy_group },
};

int
az_step_run (const az_run_config_t *config, const json_t *assign, dx_step_out_t *out)
{
    az_run_t run;
    az_run_init (&run, config, assign, out);
    const char *kind = dx_step_str (run.job.step, "kind");
    az_step_fn *fn = NULL;
    for (size_t i = 0; kind && !fn && i < sizeof s_steps / sizeof s_steps [0]; i++)
        if (strcmp (s_steps [i].kind, kind) == 0)
            fn = s_steps [i].fn;
    if (!fn)
        dx_step_outcome (run.out, DX_STEP_FAILED, 1, "InvalidStep", "unknown step kind %s",
                         kind? kind: "(none)");
    else
    if (az_run_start (&run) == 0)
        fn (&run);
    az_run_fini (&run);
    return out->outcome == DX_STEP_DONE? 0: -1;
}
