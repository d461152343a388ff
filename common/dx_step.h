/*  dx_step: the result of one step of proto/PROTOCOL.md ("Steps"), as a
    cloud worker (aws, azure) fills it, and the helpers every step uses
    to fill it. What differs between the clouds (the calls) is in the
    workers; what a step reports, and how, is the same for both.

        dx_step_out_t out;
        dx_step_out_init (&out, cancelled_fn, job);   // the job's cancel flag
        ... a step: dx_step_resource (&out, "vpc", "vpc", id), dx_step_attr (...),
            dx_step_outcome (&out, DX_STEP_FAILED, 1, "AuthFailure", "...")
        ... out.outcome, out.code, out.message, out.permanent, out.resources
        dx_step_out_fini (&out);

    The first outcome set wins, so a helper deep in a step can say why it
    failed and the callers above it just return -1. */
#ifndef DX_STEP_H
#define DX_STEP_H

#include <stdarg.h>
#include <jansson.h>
#include "dx_retry.h"

typedef enum {
    DX_STEP_DONE,           /* the step succeeded */
    DX_STEP_FAILED,         /* it did not: permanent says whether a retry can help */
    DX_STEP_RETRY           /* run it again later (attempt + 1) */
} dx_step_outcome_t;

typedef struct {
    dx_step_outcome_t outcome;
    int permanent;          /* with DX_STEP_FAILED */
    char code [64];         /* the cloud's code, or the worker's; "" when done */
    char message [512];     /* the cloud's message, or the worker's; never a secret */
    json_t *resources;      /* array of {key, kind, provider_id, attributes...}; owned */
    dx_cancel_fn *cancelled;            /* may be NULL */
    void *cancel_arg;
    void (*progress) (void *arg, const char *text);    /* may be NULL */
    void *progress_arg;
} dx_step_out_t;

/*  Empty result (done, no resources), with an optional cancel check. */
void dx_step_out_init (dx_step_out_t *self, dx_cancel_fn *cancelled, void *arg);

/*  Frees the resources (the result is unusable until init again). */
void dx_step_out_fini (dx_step_out_t *self);

/*  "done", "failed" or "retry": the outcome's name in job.result. */
const char *dx_step_outcome_name (dx_step_outcome_t outcome);

/*  Sets the outcome (unless one is set already); returns -1. */
int dx_step_outcome (dx_step_out_t *self, dx_step_outcome_t outcome, int permanent,
                     const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

/*  The same with a va_list, for the workers' own wrappers. */
int dx_step_voutcome (dx_step_out_t *self, dx_step_outcome_t outcome, int permanent,
                      const char *code, const char *fmt, va_list args)
    __attribute__ ((format (printf, 5, 0)));

/*  Says how the step is getting on (a long wait's state), through
    self->progress when there is one (the worker's job.progress); never a
    secret. */
void dx_step_progress (dx_step_out_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  1 once the job is cancelled. */
int dx_step_cancelled (const dx_step_out_t *self);

/*  Adds the resource {key, kind, provider_id} (id NULL: "") to the result
    and returns it, borrowed, to add attributes to with dx_step_attr. */
json_t *dx_step_resource (dx_step_out_t *self, const char *key, const char *kind,
                          const char *id);

/*  Sets attribute name of resource to value (NULL: ""). */
void dx_step_attr (json_t *resource, const char *name, const char *value);

/*  What every step reads of its job.assign (borrowed from it). */
typedef struct {
    const json_t *step;                 /* the job's step map */
    const json_t *context;              /* step.context: what earlier steps made */
    const json_t *credentials;
    const json_t *config;               /* step.config: the cluster's config */
    const char *cluster;
    const char *uid;                    /* step.uid, the deployment's */
} dx_step_job_t;

/*  Reads job from assign (which must outlive it). */
void dx_step_job_read (dx_step_job_t *job, const json_t *assign);

/*  The string at key of object, or NULL. Borrowed. */
const char *dx_step_str (const json_t *object, const char *key);

/*  The entry key of context (what earlier steps made); NULL with the
    outcome set (InvalidStep) when it is missing or empty. Borrowed. */
const char *dx_step_need (dx_step_out_t *self, const json_t *context, const char *key);

#endif
