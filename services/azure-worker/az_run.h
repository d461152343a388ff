/*  az_run: what the step files of the azure-worker share (internal).

    An az_run_t is one job's step being run: the job's fields, the ARM
    client made from its credentials, and the result being filled (a
    common/dx_step result). A step's function reads the job through it,
    calls ARM through it, and records its outcome and resources in
    run->out with dx_step's helpers. It mirrors the aws-worker's aws_run.

    A step function returns 0 when done, or -1 with the outcome set. So do
    the helpers here that return int; the ones that return JSON return
    NULL with the outcome set, except az_run_call, whose failure is the
    caller's to judge (run->err). The first outcome set wins.

    Every resource of a cluster lives in its resource group, dexter-NAME,
    and is named from the cluster, group and slot, so that a step run
    twice PUTs the same names and converges on the same resources. */
#ifndef AZ_RUN_H
#define AZ_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "az_arm.h"
#include "az_sizes.h"
#include "dx_ratelimit.h"
#include "dx_retry.h"
#include "dx_step.h"

/*  What the process gives every step. */
typedef struct {
    dx_ratelimit_t *limits;             /* shared by all jobs (borrowed); NULL: per client */
    az_tokens_t *tokens;                /* shared by all jobs (borrowed); NULL: per client */
    int64_t poll_ms;                    /* between polls of an operation without Retry-After */
    int64_t wait_ms;                    /* longest wait for one operation */
    const dx_retry_policy_t *retry;     /* az_arm's retries; NULL: dx_retry's defaults */
    az_sizes_t *sizes;                  /* shared by all jobs (borrowed); NULL: no cache */
} az_run_config_t;

#define AZ_RUN_CONFIG_DEFAULT \
    { NULL, NULL, AZ_ARM_DEFAULT_POLL_MS, AZ_ARM_DEFAULT_WAIT_MS, NULL, NULL }

/*  The prefix of a cluster's resource group: dexter-NAME. */
#define AZ_RUN_GROUP_PREFIX "dexter-"

typedef struct {
    const az_run_config_t *config;      /* borrowed, like everything but arm */
    az_arm_t *arm;                      /* owned; NULL until az_run_start */
    dx_step_job_t job;                  /* what the job.assign says */
    const char *location;               /* step.config.location; may be NULL */
    char group [64];                    /* the cluster's resource group */
    dx_step_out_t *out;
    az_error_t err;                     /* the last failed call's */
} az_run_t;

//  ---------------------------------------------------------------------
//  Life

/*  Reads the job.assign message's fields into self (borrowed: assign and
    out must outlive self). config NULL: the defaults. */
void az_run_init (az_run_t *self, const az_run_config_t *config, const json_t *assign,
                  dx_step_out_t *out);

/*  Checks the job (cluster, uid, credentials) and makes its ARM client,
    which holds the only copy of the credentials. 0, or -1 with the
    outcome set: credentials that are not a principal's fail the step
    permanently (InvalidCredentials, the field named). */
int az_run_start (az_run_t *self);

/*  Destroys the client (wiping the credentials) and the last error. */
void az_run_fini (az_run_t *self);

//  ---------------------------------------------------------------------
//  Names

/*  path below the subscription of the resource type/name in the
    cluster's group, into buf: az_run_path (run, buf, size,
    "Microsoft.Network/virtualNetworks", "c1-vnet") ->
    resourceGroups/dexter-c1/providers/Microsoft.Network/virtualNetworks/c1-vnet.
    name NULL: the type's collection. Returns buf ("" when it does not
    fit). */
char *az_run_path (az_run_t *self, char *buf, size_t size, const char *type, const char *name);

/*  The ownership tags of proto/PROTOCOL.md for a new resource
    (dexter:cluster, dexter:uid, dexter:role, and dexter:group and
    dexter:host unless NULL), as a new object for a body's "tags". */
json_t *az_run_tags (az_run_t *self, const char *role, const char *group, const char *host);

//  ---------------------------------------------------------------------
//  Calls

/*  ARM's answer to method on path (caller decrefs), or NULL with
    self->err filled and the outcome left alone. body is borrowed. */
json_t *az_run_call (az_run_t *self, const char *method, const char *path,
                     const char *api_version, const json_t *body);

/*  Sets the outcome of the last failed call, method on path (self->err):
    retry when it may pass (throttled or busy past the retries, capacity,
    an operation still running), failed and permanent when no retry can
    help (Entra's refusals, 4xx: a body or a name ARM refuses, a size or
    an image the location lacks), failed otherwise (docs/azure.md). -1. */
int az_run_failed (az_run_t *self, const char *method, const char *path);

/*  1 when the last failed call answered that the resource does not
    exist (404). */
int az_run_gone (az_run_t *self);

/*  The answer of method on path (caller decrefs), or NULL with the
    outcome set. */
json_t *az_run_ask (az_run_t *self, const char *method, const char *path,
                    const char *api_version, const json_t *body);

/*  az_run_ask in two halves (az_arm_begin, az_arm_finish), so that a
    step can have several operations run in ARM at once: begin sends
    method on path, finish follows what it started and answers ARM's
    answer, or NULL with the outcome set. Every begun call must be
    finished. */
az_call_t *az_run_begin (az_run_t *self, const char *method, const char *path,
                         const char *api_version, const json_t *body);
json_t *az_run_finish (az_run_t *self, az_call_t **call_p, const char *method,
                       const char *path);

/*  DELETEs path and waits until it is gone. 0 when it is, or was gone
    already (404); else -1 with the outcome set. */
int az_run_delete (az_run_t *self, const char *path, const char *api_version);

//  ---------------------------------------------------------------------
//  The steps, one function per kind of proto/PROTOCOL.md ("Steps"); each
//  is idempotent (docs/azure.md says what each calls and reports)

typedef int (az_step_fn) (az_run_t *run);

//  az_network.c
int az_step_network (az_run_t *run);
int az_step_security (az_run_t *run);
int az_step_destroy_group (az_run_t *run);

//  az_hosts.c
int az_step_image (az_run_t *run);
int az_step_host (az_run_t *run);
int az_step_remove (az_run_t *run);

//  az_crl.c
int az_step_access_crl (az_run_t *run);

#endif
