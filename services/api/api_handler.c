/*  api_handler: a matched request -> scheduler request(s) -> HTTP answer,
    one step per reply. */
#include "api_handler.h"
#include "dx_msg.h"
#include "dx_spec.h"

#include <stdlib.h>
#include <string.h>

typedef enum {
    S_START,            /* nothing sent yet */
    S_PROVIDER,         /* waiting for cluster.get, to learn the provider */
    S_FINAL,            /* waiting for the reply that is the answer */
    S_OVER              /* answered */
} s_state_t;

struct api_job_t {
    s_state_t state;
    api_match_t match;
    api_query_t query;
    json_t *fields;     /* the body's fields, or NULL */
};

api_job_t *
api_job_new (const api_match_t *match, const api_query_t *query, json_t **fields_p)
{
    api_job_t *self = calloc (1, sizeof *self);
    if (self) {
        self->match = *match;
        if (query)
            self->query = *query;
        if (fields_p) {
            self->fields = *fields_p;
            *fields_p = NULL;
        }
    }
    return self;
}

void
api_job_destroy (api_job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    json_decref ((*self_p)->fields);
    free (*self_p);
    *self_p = NULL;
}

static const struct {
    const char *status;
    int http;
} s_statuses [] = {
    { DX_OK, 200 }, { DX_CREATED, 201 }, { DX_ACCEPTED, 202 },
    { DX_INVALID, 400 }, { DX_NOT_FOUND, 404 }, { DX_CONFLICT, 409 },
    { DX_UNAVAILABLE, 503 }, { DX_INTERNAL, 500 },
};

int
api_handler_http_status (const char *status)
{
    for (size_t i = 0; status && i < sizeof s_statuses / sizeof s_statuses [0]; i++)
        if (strcmp (status, s_statuses [i].status) == 0)
            return s_statuses [i].http;
    return 500;
}

json_t *
api_error_body (const char *code, const char *field, const char *message)
{
    json_t *body = json_pack ("{s:s, s:s}", "code", code, "message", message);
    if (body && field && *field)
        json_object_set_new (body, "field", json_string (field));
    return body;
}

/*  Sets answer to an error (status, code, field, message). */
static void
s_fail (api_answer_t *answer, int status, const char *code, const char *field,
        const char *message)
{
    answer->status = status;
    answer->body = api_error_body (code, field, message);
}

void
api_handler_reply (const json_t *reply, api_answer_t *answer)
{
    const char *status = json_string_value (json_object_get (reply, "status"));
    int http = api_handler_http_status (status);
    if (!status || (http == 500 && strcmp (status, DX_INTERNAL) != 0)) {
        s_fail (answer, 500, DX_INTERNAL, NULL,
                "the scheduler sent a reply without a known status");
        return;
    }
    if (http < 300) {
        json_t *body = json_object_get (reply, "body");
        json_t *text = json_object_get (reply, "text");
        answer->status = http;
        if (json_is_string (text))
            answer->text = json_incref (text);
        else
            answer->body = body ? json_incref (body) : json_object ();
        return;
    }
    const char *message = json_string_value (json_object_get (reply, "message"));
    const char *field = json_string_value (json_object_get (reply, "field"));
    answer->status = http;
    answer->body = api_error_body (status, field,
                                   message ? message : "the scheduler refused the request");
    json_t *errors = json_object_get (reply, "errors");
    if (answer->body && json_is_array (errors) && json_array_size (errors) > 0)
        json_object_set_new (answer->body, "errors", json_deep_copy (errors));
}

/*  A new request of type with the path's name and group. */
static json_t *
s_request (const api_match_t *match)
{
    json_t *request = dx_msg_new (match->route->type, NULL);
    if (request && match->name [0])
        json_object_set_new (request, "name", json_string (match->name));
    if (request && match->group [0])
        json_object_set_new (request, "group", json_string (match->group));
    return request;
}

/*  Answers 400 with every fault dx_spec found (errors is borrowed). */
static void
s_invalid (const json_t *errors, api_answer_t *answer)
{
    json_t *first = json_array_get (errors, 0);
    if (!first) {
        s_fail (answer, 500, DX_INTERNAL, NULL, "validation failed without a reason");
        return;
    }
    const char *message = json_string_value (json_object_get (first, "message"));
    s_fail (answer, 400, DX_INVALID,
            json_string_value (json_object_get (first, "field")),
            message ? message : "invalid input");
    if (answer->body)
        json_object_set_new (answer->body, "errors", json_deep_copy (errors));
}

/*  PROVIDER -> FINAL: the write that needs the provider the cluster was
    created with, which only the scheduler knows (config PUT, group POST/PUT,
    deployment PUT). The scheduler answers CONFLICT should the cluster change
    between the two requests. Returns the write, or NULL with answer filled
    (400 when the body is not valid for this provider). */
static json_t *
s_provider_write (api_job_t *self, const char *provider, api_answer_t *answer)
{
    json_t *errors = json_array ();
    json_t *secrets = json_object ();
    json_t *valid = NULL;
    api_do_t action = self->match.route->action;
    if (action == API_DO_CONFIG)
        valid = dx_spec_config (provider, self->fields, secrets, errors);
    else
    if (action == API_DO_GROUP)
        valid = dx_spec_group (provider, self->fields, errors);
    else
        valid = dx_spec_deployment (provider, self->fields, secrets, errors);
    json_t *request = NULL;
    if (!valid)
        s_invalid (errors, answer);
    else
    if ((request = s_request (&self->match))) {
        json_object_set_new (request, "provider", json_string (provider));
        if (action == API_DO_CONFIG) {
            json_object_set (request, "config", valid);
            json_object_set (request, "secrets", secrets);
        }
        else
        if (action == API_DO_GROUP)
            json_object_set (request, "spec", valid);
        else {
            json_object_set (request, "command", json_object_get (valid, "command"));
            json_object_set (request, "parallelism", json_object_get (valid, "parallelism"));
            json_object_set (request, "credentials", secrets);
        }
    }
    json_decref (valid);
    json_decref (secrets);
    json_decref (errors);
    return request;
}

/*  START: the first request. POST /clusters is validated here; the writes
    that need a provider first ask for the cluster. NULL with answer filled
    when there is nothing to send. */
static json_t *
s_first (api_job_t *self, api_answer_t *answer)
{
    const api_route_t *route = self->match.route;
    json_t *request = NULL;
    if (route->action == API_DO_CREATE) {
        json_t *errors = json_array ();
        json_t *cluster = dx_spec_cluster (self->fields, errors);
        if (!cluster)
            s_invalid (errors, answer);
        else
        if ((request = s_request (&self->match)))
            json_object_set_new (request, "cluster", cluster);
        else
            json_decref (cluster);
        json_decref (errors);
        self->state = S_FINAL;
    }
    else
    if (route->action != API_DO_PLAIN) {
        if ((request = dx_msg_new ("cluster.get", NULL)))
            json_object_set_new (request, "name", json_string (self->match.name));
        self->state = S_PROVIDER;
    }
    else {
        const api_query_t *query = &self->query;
        if ((request = s_request (&self->match))) {
            if (route->query == API_QUERY_FORCE)
                json_object_set_new (request, "force", json_boolean (query->force));
            if (route->query == API_QUERY_EVENTS && query->after [0])
                json_object_set_new (request, "after", json_string (query->after));
            if (route->query == API_QUERY_EVENTS && query->count)
                json_object_set_new (request, "count", json_integer (query->count));
        }
        self->state = S_FINAL;
    }
    return request;
}

/*  1 if reply has one of the success statuses. */
static int
s_success (const json_t *reply)
{
    const char *status = json_string_value (json_object_get (reply, "status"));
    return status && api_handler_http_status (status) < 300;
}

api_step_t
api_job_next (api_job_t *self, const json_t *reply, json_t **request,
              api_answer_t *answer)
{
    *request = NULL;
    answer->status = 500;
    answer->body = answer->text = NULL;
    if (!self->match.route)
        s_fail (answer, 500, DX_INTERNAL, NULL, "no route");
    else
    if (self->state == S_START) {
        if (self->match.route->body && !self->fields)
            self->fields = json_object ();
        *request = s_first (self, answer);
    }
    else
    if (self->state == S_PROVIDER && s_success (reply)) {
        const char *provider = json_string_value (
            json_object_get (json_object_get (reply, "body"), "provider"));
        if (!provider || strlen (provider) >= 16)
            s_fail (answer, 500, DX_INTERNAL, NULL,
                    "the scheduler's answer holds no provider for this cluster");
        else
            *request = s_provider_write (self, provider, answer);
        self->state = S_FINAL;
    }
    else
    if (self->state == S_PROVIDER || self->state == S_FINAL)
        api_handler_reply (reply, answer);
    if (*request && self->state == S_FINAL)
        /* Its reply's body becomes the answer as it is: as JSON text,
           which the api sends without decoding and dumping it again. */
        json_object_set_new (*request, "text", json_true ());
    if (*request)
        return API_STEP_SEND;
    self->state = S_OVER;
    if (!answer->body && !answer->text)
        s_fail (answer, 500, DX_INTERNAL, NULL, "out of memory");
    return API_STEP_DONE;
}
