/*  az_crl: the access.crl step: the cluster's newest CRL written into the
    running access VM's tags, with one PATCH of the VM (the SDK's
    VirtualMachineUpdate) that keeps its other tags; the access node's
    dexter-crl timer reads them from Azure's instance metadata (IMDS
    tagsList). The tags are dx_crltags'; docs/vpn.md, "The CRL and the
    access node". */
#include "az_run.h"
#include "az_arm.h"
#include "dx_crltags.h"

#include <stdio.h>
#include <string.h>

#define S_TAGS_MAX 50                   /* Azure's tags a resource */

int
az_step_access_crl (az_run_t *run)
{
    const char *vm_id, *number;
    json_t *tags = dx_crltags_of_step (run->out, run->job.context, &vm_id, &number);
    if (!tags)
        return -1;
    //  The VM of the recorded id, by its name in the cluster's group
    const char *slash = strrchr (vm_id, '/');
    char path [512];
    az_run_path (run, path, sizeof path, "Microsoft.Compute/virtualMachines",
                 slash? slash + 1: vm_id);
    json_t *vm = az_run_ask (run, "GET", path, AZ_API_COMPUTE, NULL);
    if (!vm) {
        json_decref (tags);
        return -1;
    }
    //  Its tags but an older CRL's, and the new CRL's
    json_t *want = json_object ();
    const char *key;
    json_t *value;
    json_object_foreach (json_object_get (vm, "tags"), key, value)
        if (!dx_crltags_is_key (key))
            json_object_set (want, key, value);
    json_decref (vm);
    size_t chunks = json_object_size (tags) - 1;
    json_object_update (want, tags);
    json_decref (tags);
    if (json_object_size (want) > S_TAGS_MAX) {
        size_t count = json_object_size (want);
        json_decref (want);
        return dx_step_outcome (run->out, DX_STEP_FAILED, 1, "CrlTooLarge", "the access VM "
                                "would have %zu tags with the CRL's, more than Azure's %d",
                                count, S_TAGS_MAX), -1;
    }
    json_t *body = json_pack ("{s:o}", "tags", want);
    json_t *done = az_run_ask (run, "PATCH", path, AZ_API_COMPUTE, body);
    json_decref (body);
    if (!done)
        return -1;
    json_decref (done);
    json_t *res = dx_step_resource (run->out, "access.crl", "tags", vm_id);
    char text [32];
    snprintf (text, sizeof text, "%zu", chunks);
    dx_step_attr (res, "crl_number", number);
    dx_step_attr (res, "chunks", text);
    return 0;
}
