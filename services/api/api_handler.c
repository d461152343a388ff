/*  api_handler: a matched request -> one scheduler request; its reply ->
    the HTTP answer. */
#include "api_handler.h"
#include "dx_log.h"
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

/*  The HTTP status of a reply status ("OK" -> 200...), 0 if unknown. */
static int
s_http_status (const char *status)
{
    for (size_t i = 0; status && i < sizeof s_statuses / sizeof s_statuses [0]; i++)
        if (strcmp (status, s_statuses [i].status) == 0)
            return s_statuses [i].http;
    return 0;
}

json_t *
api_error_body (const char *code, const char *field, const char *message)
{
    json_t *body = json_pack ("{s:s, s:s}", "code", code, "message", message);
    if (body && field && *field)
        json_object_set_new (body, "field", json_string (field));
    return body;
}

/*  Sets answer to a 500 saying why. */
static void
s_internal (api_answer_t *answer, const char *message)
{
    answer->status = 500;
    answer->body = api_error_body (DX_INTERNAL, NULL, message);
}

void
api_handler_reply (const json_t *reply, api_answer_t *answer)
{
    answer->body = answer->text = NULL;
    const char *status = json_string_value (json_object_get (reply, "status"));
    int http = s_http_status (status);
    if (!reply)
        s_internal (answer, "out of memory");
    else
    if (!http)
        s_internal (answer, "the scheduler sent a reply without a known status");
    else
    if (http < 300) {
        json_t *body = json_object_get (reply, "body");
        json_t *text = json_object_get (reply, "text");
        answer->status = http;
        if (json_is_string (text))
            answer->text = json_incref (text);
        else
            answer->body = body ? json_incref (body) : json_object ();
    }
    else
    if (http == 500) {
        /* Why it failed inside is for the logs: the message may quote the
           store's own error text, which tells a client nothing it can act
           on and an attacker something. */
        const char *message = json_string_value (json_object_get (reply, "message"));
        dx_warn ("the scheduler failed a request: %s", message ? message : "(no message)");
        s_internal (answer, "the request failed inside dexter; the logs say why");
    }
    else {
        const char *message = json_string_value (json_object_get (reply, "message"));
        json_t *errors = json_object_get (reply, "errors");
        answer->status = http;
        answer->body = api_error_body (status,
                                       json_string_value (json_object_get (reply, "field")),
                                       message ? message : "the scheduler refused the request");
        if (answer->body && json_is_array (errors) && json_array_size (errors) > 0)
            json_object_set_new (answer->body, "errors", json_deep_copy (errors));
    }
}

/*  Adds the body of POST /clusters to request as `cluster` once
    dx_spec_cluster finds it valid. 0, or -1 with answer filled (400 with
    every fault, as the scheduler would answer it). */
static int
s_add_cluster (json_t *request, const json_t *fields, api_answer_t *answer)
{
    json_t *errors = json_array ();
    json_t *cluster = dx_spec_cluster (fields, errors);
    if (cluster) {
        json_decref (errors);
        return json_object_set_new (request, "cluster", cluster);
    }
    json_t *reply = dx_reply_errors (request, DX_INVALID, errors);
    api_handler_reply (reply, answer);
    json_decref (reply);
    return -1;
}

json_t *
api_handler_request (const api_match_t *match, const api_query_t *query,
                     json_t **fields_p, api_answer_t *answer)
{
    const api_route_t *route = match->route;
    json_t *fields = fields_p ? *fields_p : NULL;
    if (fields_p)
        *fields_p = NULL;
    answer->status = 500;
    answer->body = answer->text = NULL;
    json_t *request = dx_msg_new (route->type, NULL);
    int rc = request ? 0 : -1;
    if (!rc && match->name [0])
        rc = json_object_set_new (request, "name", json_string (match->name));
    if (!rc && match->group [0])
        rc = json_object_set_new (request, "group", json_string (match->group));
    if (!rc && match->user [0])
        rc = json_object_set_new (request, "user", json_string (match->user));
    if (!rc && route->action == API_DO_CREATE)
        rc = s_add_cluster (request, fields, answer);
    else
    if (!rc && route->action == API_DO_FIELDS)
        rc = json_object_set (request, "fields", fields);
    else
    if (!rc && route->query == API_QUERY_FORCE)
        rc = json_object_set_new (request, "force", json_boolean (query->force));
    else
    if (!rc && (route->query == API_QUERY_EVENTS || route->query == API_QUERY_LIST)) {
        if (query->after [0])
            rc = json_object_set_new (request, "after", json_string (query->after));
        if (!rc && query->count)
            rc = json_object_set_new (request, "count", json_integer (query->count));
        if (!rc && query->limit)
            rc = json_object_set_new (request, "limit", json_integer (query->limit));
    }
    /* The reply's body becomes the answer as it is: as JSON text, which
       is sent without decoding and dumping it again. */
    if (!rc)
        rc = json_object_set_new (request, "text", json_true ());
    json_decref (fields);
    if (!rc)
        return request;
    json_decref (request);
    if (!answer->body)
        s_internal (answer, "out of memory");
    return NULL;
}
