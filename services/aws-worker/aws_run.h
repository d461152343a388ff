/*  aws_run: what the step files of the aws-worker share (internal).

    An aws_run_t is one job's step being run: the job's fields, the EC2
    client made from its credentials, and the result being filled.
    aws_steps.c makes one per job and hands it to the step's function;
    aws_network.c, aws_hosts.c and aws_batch.c hold those functions, which
    read the job through it, call EC2 through it, and record their outcome
    and resources in its result, run->out, with common/dx_step's helpers.

    A step function returns 0 when done, or -1 with the outcome set. So do
    the helpers here that return int; the ones that return a document
    return NULL with the outcome set, except aws_run_call, whose failure
    is the caller's to judge (run->err). The first outcome set wins. */
#ifndef AWS_RUN_H
#define AWS_RUN_H

#include <stddef.h>
#include <jansson.h>
#include <libxml/tree.h>
#include "aws_ec2.h"
#include "aws_steps.h"

typedef struct {
    const aws_steps_config_t *config;   /* borrowed, like everything but ec2 */
    aws_ec2_t *ec2;                     /* owned; NULL until aws_run_start */
    dx_step_job_t job;                  /* what the job.assign says */
    const char *region;                 /* step.config.region */
    dx_step_out_t *out;
    aws_error_t err;                    /* the last failed call's */
} aws_run_t;

//  ---------------------------------------------------------------------
//  Life

/*  Reads the job.assign message's fields into self (borrowed: assign and
    out must outlive self). config NULL: the defaults. */
void aws_run_init (aws_run_t *self, const aws_steps_config_t *config,
                   const json_t *assign, dx_step_out_t *out);

/*  Checks the job (cluster, uid, credentials, region) and makes its EC2
    client, which holds the only copy of the credentials. 0, or -1 with
    the outcome set. */
int aws_run_start (aws_run_t *self);

/*  Destroys the client (wiping the credentials) and the last error. */
void aws_run_fini (aws_run_t *self);

//  ---------------------------------------------------------------------
//  Calls
//
//  wait_codes (NULL-terminated, may be NULL) are the answers that mean
//  "not ready yet": the call is made again every poll_ms until it stops
//  giving one, wait_ms has passed, or the job is cancelled. A code
//  "*.NotFound" stands for every code ending in ".NotFound".

/*  For calls with an id a previous call just made (eventual consistency). */
extern const char *const aws_run_not_found [];

/*  The answer of action (caller frees), or NULL with self->err filled and
    the outcome left alone. params are borrowed. */
xmlDocPtr aws_run_call (aws_run_t *self, const char *action, const aws_params_t *params,
                        const char *const *wait_codes);

/*  aws_run_call for answers that may be big: the answer is streamed to
    fn, one element at path at a time, and its nextToken copied into next
    (aws_ec2_stream). 0, or -1 with self->err set and the outcome left
    alone. params are borrowed. */
int aws_run_stream (aws_run_t *self, const char *action, const aws_params_t *params,
                    const char *const *wait_codes, const char *path, aws_ec2_item_fn *fn,
                    void *arg, char *next, size_t next_size);

/*  Sets the outcome of the last failed call of action (self->err): retry,
    failed, or failed and permanent (docs/aws.md, "Outcomes"); -1. */
int aws_run_failed (aws_run_t *self, const char *action);

/*  1 when the last failed call answered code. */
int aws_run_code_is (aws_run_t *self, const char *code);

/*  The answer of action (caller frees), or NULL with the outcome set.
    Takes the params (*params_p is NULL after). */
xmlDocPtr aws_run_ask (aws_run_t *self, const char *action, aws_params_t **params_p,
                       const char *const *wait_codes);

/*  Calls action for its effect. 0 when it succeeds or answers one of the
    NULL-terminated codes after wait_codes, which say it is done already
    (gone, attached, there); else -1 with the outcome set. Takes the
    params. */
int aws_run_act (aws_run_t *self, const char *action, aws_params_t **params_p,
                 const char *const *wait_codes, ...) __attribute__ ((sentinel));

/*  Adds the filters that select what this cluster owns: dexter:cluster,
    and dexter:role when role is not NULL. */
void aws_run_owned (aws_run_t *self, aws_params_t *params, const char *role);

/*  Adds TagSpecification.N for resource type with the ownership tags of
    proto/PROTOCOL.md and the Name tag; group and host may be NULL. */
void aws_run_tag_spec (aws_run_t *self, aws_params_t *params, const char *type,
                       const char *role, const char *group, const char *host,
                       const char *name);

/*  What is done to one item of an answer. 0, or -1 with the outcome set. */
typedef int (aws_item_fn) (aws_run_t *run, xmlNodePtr item);

/*  Calls fn on each item at set (a path below the root) of action's
    answer for everything the cluster owns, in order, until one fails.
    0, or -1 with the outcome set. */
int aws_run_each_owned (aws_run_t *self, const char *action, const char *set,
                        aws_item_fn *fn);

/*  The text at path below the first item at set of doc, copied into buf.
    0, or -1 (buf untouched) when there is none or it is empty. */
int aws_doc_text (xmlDocPtr doc, const char *set, const char *path, char *buf, size_t size);

//  ---------------------------------------------------------------------
//  Instances (aws_hosts.c), shared with the batch steps (aws_batch.c)

/*  The states of an instance that is there: pending, running, stopping,
    stopped (NULL-terminated). */
extern const char *const aws_live_states [];

/*  Each instance (inst, an xmlNodePtr) of a DescribeInstances answer. */
#define AWS_FOREACH_INSTANCE(doc, inst) \
    for (xmlNodePtr s_r_ = aws_xml_child (xmlDocGetRootElement (doc), "reservationSet/item"); \
         s_r_; s_r_ = aws_xml_next (s_r_)) \
        for (xmlNodePtr inst = aws_xml_child (s_r_, "instancesSet/item"); inst; \
             inst = aws_xml_next (inst))

/*  The slot of an instance of a group: the last part of its dexter:host
    tag (a host launched alone), else its dexter:batch tag (the first slot
    of the RunInstances call that made it) plus its amiLaunchIndex; -1
    when it has neither. */
long long aws_instance_slot (xmlNodePtr instance);

/*  RunInstances' parameters that do not depend on how many instances a
    call launches: image, type, key, the user data of provision (a host
    step map, dx_provision's input), disks, subnet and security groups of
    the job's step. The caller adds MinCount, MaxCount, ClientToken and
    the tags. NULL with the outcome set. */
aws_params_t *aws_host_params (aws_run_t *run, const json_t *provision);

//  ---------------------------------------------------------------------
//  The steps, one function per kind of proto/PROTOCOL.md ("Steps"); each
//  is idempotent (docs/aws.md says what each calls and reports)

typedef int (aws_step_fn) (aws_run_t *run);

//  aws_network.c
int aws_step_network (aws_run_t *run);
int aws_step_security (aws_run_t *run);
int aws_step_destroy_security (aws_run_t *run);
int aws_step_destroy_network (aws_run_t *run);

//  aws_hosts.c
int aws_step_image (aws_run_t *run);
int aws_step_keypair (aws_run_t *run);
int aws_step_host (aws_run_t *run);
int aws_step_remove (aws_run_t *run);
int aws_step_destroy_instances (aws_run_t *run);
int aws_step_destroy_addresses (aws_run_t *run);

//  aws_batch.c
int aws_step_hosts (aws_run_t *run);
int aws_step_remove_batch (aws_run_t *run);         /* aws_step_remove with `slots` */

/*  aws_crl.c */
int aws_step_access_crl (aws_run_t *run);

#endif
