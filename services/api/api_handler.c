/*  api_handler: a matched request -> scheduler request(s) -> HTTP answer. */
#include "api_handler.h"
#include "dx_msg.h"
#include "dx_spec.h"

#include <string.h>

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
        answer->status = http;
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

/*  Sends request (stolen) and maps the reply into answer when it is not
    one of the success statuses the caller wants to look into. Returns the
    reply on success (caller owns), else NULL with answer filled. */
static json_t *
s_call (json_t *request, api_call_fn *call, void *ctx, api_answer_t *answer)
{
    if (!request) {
        s_fail (answer, 500, DX_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    json_t *reply = call (ctx, request);
    json_decref (request);
    if (!reply) {
        s_fail (answer, 500, DX_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    const char *status = json_string_value (json_object_get (reply, "status"));
    if (api_handler_http_status (status) >= 300 || !status) {
        api_handler_reply (reply, answer);
        json_decref (reply);
        return NULL;
    }
    return reply;
}

/*  Sends request (stolen) and answers with whatever the scheduler said. */
static void
s_forward (json_t *request, api_call_fn *call, void *ctx, api_answer_t *answer)
{
    json_t *reply = s_call (request, call, ctx, answer);
    if (reply) {
        api_handler_reply (reply, answer);
        json_decref (reply);
    }
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

/*  Asks the scheduler for the cluster's provider (cluster.get), into buf.
    0, or -1 with answer filled (404 when there is no such cluster). */
static int
s_provider (const api_match_t *match, api_call_fn *call, void *ctx,
            char *buf, size_t size, api_answer_t *answer)
{
    json_t *request = dx_msg_new ("cluster.get", NULL);
    if (request)
        json_object_set_new (request, "name", json_string (match->name));
    json_t *reply = s_call (request, call, ctx, answer);
    if (!reply)
        return -1;
    const char *provider = json_string_value (
        json_object_get (json_object_get (reply, "body"), "provider"));
    int rc = 0;
    if (!provider || strlen (provider) >= size) {
        s_fail (answer, 500, DX_INTERNAL, NULL,
                "the scheduler's answer holds no provider for this cluster");
        rc = -1;
    }
    else
        strcpy (buf, provider);
    json_decref (reply);
    return rc;
}

/*  POST /clusters. */
static void
s_create (const api_match_t *match, const json_t *fields, api_call_fn *call,
          void *ctx, api_answer_t *answer)
{
    json_t *errors = json_array ();
    json_t *cluster = dx_spec_cluster (fields, errors);
    if (!cluster)
        s_invalid (errors, answer);
    else {
        json_t *request = s_request (match);
        if (request)
            json_object_set_new (request, "cluster", cluster);
        else
            json_decref (cluster);
        s_forward (request, call, ctx, answer);
    }
    json_decref (errors);
}

/*  PUT config, POST/PUT group, PUT deployment: these need the provider the
    cluster was created with, which only the scheduler knows. The scheduler
    answers CONFLICT should the cluster change between the two requests. */
static void
s_provider_write (const api_match_t *match, const json_t *fields,
                  api_call_fn *call, void *ctx, api_answer_t *answer)
{
    char provider [16];
    if (s_provider (match, call, ctx, provider, sizeof provider, answer))
        return;
    json_t *errors = json_array ();
    json_t *secrets = json_object ();
    json_t *valid = NULL;
    api_do_t action = match->route->action;
    if (action == API_DO_CONFIG)
        valid = dx_spec_config (provider, fields, secrets, errors);
    else
    if (action == API_DO_GROUP)
        valid = dx_spec_group (provider, fields, errors);
    else
        valid = dx_spec_deployment (provider, fields, secrets, errors);
    if (!valid) {
        s_invalid (errors, answer);
        json_decref (errors);
        json_decref (secrets);
        return;
    }
    json_t *request = s_request (match);
    if (request) {
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
    s_forward (request, call, ctx, answer);
    json_decref (valid);
    json_decref (secrets);
    json_decref (errors);
}

void
api_handler_run (const api_match_t *match, const api_query_t *query,
                 const json_t *fields, api_call_fn *call, void *ctx,
                 api_answer_t *answer)
{
    answer->status = 500;
    answer->body = NULL;
    const api_route_t *route = match->route;
    if (!route) {
        s_fail (answer, 500, DX_INTERNAL, NULL, "no route");
        return;
    }
    json_t *empty = NULL;
    if (route->body && !fields)
        fields = empty = json_object ();

    if (route->action == API_DO_CREATE)
        s_create (match, fields, call, ctx, answer);
    else
    if (route->action != API_DO_PLAIN)
        s_provider_write (match, fields, call, ctx, answer);
    else {
        json_t *request = s_request (match);
        if (request && route->query == API_QUERY_FORCE)
            json_object_set_new (request, "force", json_boolean (query && query->force));
        if (request && route->query == API_QUERY_EVENTS && query) {
            if (query->after [0])
                json_object_set_new (request, "after", json_string (query->after));
            if (query->count)
                json_object_set_new (request, "count", json_integer (query->count));
        }
        s_forward (request, call, ctx, answer);
    }
    json_decref (empty);
    if (!answer->body)
        s_fail (answer, 500, DX_INTERNAL, NULL, "out of memory");
}
