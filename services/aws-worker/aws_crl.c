/*  aws_crl: the access.crl step: the cluster's newest CRL written into the
    running access instance's tags (CreateTags), where the access node's
    dexter-crl timer reads it through the instance metadata (IMDSv2 with
    InstanceMetadataTags, which the host step enables for the access
    node). The tags are dx_crltags'; docs/vpn.md, "The CRL and the access
    node". */
#include "aws_run.h"
#include "dx_crltags.h"

#include <stdio.h>
#include <string.h>

int
aws_step_access_crl (aws_run_t *run)
{
    const char *instance, *number;
    json_t *tags = dx_crltags_of_step (run->out, run->job.context, &instance, &number);
    if (!tags)
        return -1;
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "ResourceId.1", instance);
    const char *key;
    json_t *value;
    json_object_foreach (tags, key, value)
        aws_params_tag (p, NULL, key, json_string_value (value));
    size_t count = json_object_size (tags);
    json_decref (tags);
    if (aws_run_act (run, "CreateTags", &p, aws_run_not_found, NULL))
        return -1;
    json_t *res = dx_step_resource (run->out, "access.crl", "tags", instance);
    char chunks [32];
    snprintf (chunks, sizeof chunks, "%zu", count - 1);
    dx_step_attr (res, "crl_number", number);
    dx_step_attr (res, "chunks", chunks);
    return 0;
}
