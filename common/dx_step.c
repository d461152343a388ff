/*  dx_step: a step's result and the helpers that fill it. See dx_step.h. */
#include "dx_step.h"

#include <stdio.h>
#include <string.h>

void
dx_step_out_init (dx_step_out_t *self, dx_cancel_fn *cancelled, void *arg)
{
    memset (self, 0, sizeof *self);
    self->outcome = DX_STEP_DONE;
    self->resources = json_array ();
    self->cancelled = cancelled;
    self->cancel_arg = arg;
}

void
dx_step_out_fini (dx_step_out_t *self)
{
    json_decref (self->resources);
    self->resources = NULL;
}

const char *
dx_step_outcome_name (dx_step_outcome_t outcome)
{
    return outcome == DX_STEP_DONE? "done": outcome == DX_STEP_RETRY? "retry": "failed";
}

int
dx_step_voutcome (dx_step_out_t *self, dx_step_outcome_t outcome, int permanent,
                  const char *code, const char *fmt, va_list args)
{
    if (self->outcome != DX_STEP_DONE)
        return -1;
    self->outcome = outcome;
    self->permanent = outcome == DX_STEP_FAILED && permanent;
    snprintf (self->code, sizeof self->code, "%s", code);
    vsnprintf (self->message, sizeof self->message, fmt, args);
    return -1;
}

int
dx_step_outcome (dx_step_out_t *self, dx_step_outcome_t outcome, int permanent,
                 const char *code, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    dx_step_voutcome (self, outcome, permanent, code, fmt, args);
    va_end (args);
    return -1;
}

void
dx_step_progress (dx_step_out_t *self, const char *fmt, ...)
{
    if (!self->progress)
        return;
    char text [256];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    self->progress (self->progress_arg, text);
}

int
dx_step_cancelled (const dx_step_out_t *self)
{
    return self->cancelled && self->cancelled (self->cancel_arg);
}

json_t *
dx_step_resource (dx_step_out_t *self, const char *key, const char *kind, const char *id)
{
    json_t *resource = json_pack ("{s:s, s:s, s:s}", "key", key, "kind", kind,
                                  "provider_id", id? id: "");
    json_array_append_new (self->resources, resource);
    return resource;
}

void
dx_step_attr (json_t *resource, const char *name, const char *value)
{
    json_object_set_new (resource, name, json_string (value? value: ""));
}

const char *
dx_step_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

const char *
dx_step_need (dx_step_out_t *self, const json_t *context, const char *key)
{
    const char *value = dx_step_str (context, key);
    if (value && *value)
        return value;
    dx_step_outcome (self, DX_STEP_FAILED, 1, "InvalidStep", "the step's context has no %s "
                     "(the step that makes it has not run)", key);
    return NULL;
}

void
dx_step_job_read (dx_step_job_t *job, const json_t *assign)
{
    job->step = json_object_get (assign, "step");
    job->context = json_object_get (job->step, "context");
    job->credentials = json_object_get (assign, "credentials");
    job->config = json_object_get (job->step, "config");
    job->cluster = dx_step_str (assign, "cluster");
    job->uid = dx_step_str (job->step, "uid");
}
