/*  harness_aws: what the tests of services/aws-worker share. The fake EC2
    started for a file's tests, and clusters whose steps run through
    aws_step_run as the scheduler assigns them: a job.assign per step, its
    resources recorded in the cluster's context. */
#ifndef HARNESS_AWS_H
#define HARNESS_AWS_H

#include <stdbool.h>
#include <jansson.h>

#include "../../services/aws-worker/aws_steps.h"
#include "harness.h"

/*  Makes fake->dir (/tmp/dx-<prefix>-...), starts tests/fakes/fake_ec2.py
    there with args (th_fake_ec2_start) and points the EC2 client at it
    (AWS_ENDPOINT_URL_EC2). 0 or -1. */
int ta_fake_up (th_fake_t *fake, const char *prefix, const char *const *args);

/*  A cluster as the scheduler knows it, for its steps' jobs. */
typedef struct {
    const char *name;
    json_t *context;                    /* as sch_dispatch's s_deploy_context */
    json_t *config;
    char akid [64], secret [64];
    const char *sshkeydata;             /* the keypair step's, or NULL */
    const aws_steps_config_t *steps;    /* what aws_step_run is given */
    char *progress;                     /* the last step's job.progress texts, */
    size_t progress_size;               /* one a line, when not NULL */
    bool strict;                        /* every resource reported must have a
                                           kind, a done step no code */
} ta_cluster_t;

/*  A cluster called name in us-west-2 with one m5.large master, key pair
    sshkey and the credentials akid/secret; nothing else set. */
void ta_cluster_init (ta_cluster_t *c, const char *name, const char *sshkey,
                      const char *akid, const char *secret);

/*  Frees what ta_cluster_init made. */
void ta_cluster_fini (ta_cluster_t *c);

/*  A job.assign for a step of kind with extra fields (taken; may be NULL). */
json_t *ta_assign (ta_cluster_t *c, const char *kind, const char *id, json_t *extra);

/*  Runs a step; its result into out (caller finis). Records resources in
    the cluster's context as the scheduler does (hosts' and addresses'
    aside). */
void ta_run (ta_cluster_t *c, const char *kind, const char *id, json_t *extra,
             dx_step_out_t *out);

/*  A step that must be done; returns its resources (caller decrefs). */
json_t *ta_done (ta_cluster_t *c, const char *kind, const char *id, json_t *extra);

/*  The steps before the hosts, in the scheduler's order. */
void ta_before_hosts (ta_cluster_t *c);

/*  The destroy steps, in the scheduler's order. */
void ta_destroy_all (ta_cluster_t *c);

/*  The resource of key in resources, borrowed; fails the test when none. */
json_t *ta_res (const json_t *resources, const char *key);

#endif
