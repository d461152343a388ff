/*  libFuzzer target for the api's body parsers (services/api/api_body.c).

    An input is a Content-Type header value, a newline, then the body (no
    newline: the whole input is a body without Content-Type). For any
    input api_body_parse gives an object of fields or a fault whose text
    can go into a JSON answer. Fields it gives are sent on as the api
    does, to every route that takes a body (api_handler_request): each
    request, or POST /clusters' 400 when dx_spec_cluster refuses the
    body, must then encode and decode unchanged. A body the parser
    accepts but no message can carry would stall the api (issue 14). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_body.h"
#include "api_handler.h"
#include "api_route.h"
#include "dx_msg.h"
#include "fz_check.h"

/*  The routes that take a body, as a client reaches them. */
static const struct {
    const char *method, *path;
} s_writes [] = {
    { "POST", API_PREFIX "/clusters" },
    { "PUT",  API_PREFIX "/clusters/demo/config" },
    { "POST", API_PREFIX "/clusters/demo/groups" },
    { "PUT",  API_PREFIX "/clusters/demo/groups/workers" },
    { "PUT",  API_PREFIX "/clusters/demo/deployment" },
};

/*  Checks parsed fields: their shape, then each write built from them. */
static void
s_check_fields (api_body_type_t type, json_t *fields)
{
    if (!json_is_object (fields) || dx_msg_too_deep (fields, DX_MSG_BODY_DEPTH))
        fz_fail ("the fields are not an object within the body depth");
    const char *key;
    json_t *value;
    json_object_foreach (fields, key, value)
        if (type == API_BODY_FORM && !json_is_string (value))
            fz_fail ("a form gave a value that is not a string");

    for (size_t i = 0; i < sizeof s_writes / sizeof s_writes [0]; i++) {
        api_match_t match;
        api_route_match (s_writes [i].method, s_writes [i].path, &match);
        if (match.status != 200 || !match.route->body)
            fz_fail ("a write route does not take a body");
        api_query_t query = { 0 };
        api_answer_t answer;
        json_t *copy = json_incref (fields);
        json_t *request = api_handler_request (&match, &query, &copy, &answer);
        if (request) {
            //  What api_loop adds before sending
            json_object_set_new (request, "deadline", json_integer (1795574400123));
            json_decref (fz_send (request, match.route->type));
            json_decref (request);
        }
        else {
            if (answer.status != 400 || !answer.body)
                fz_fail ("a request was neither built nor answered 400");
            char *text = json_dumps (answer.body, JSON_COMPACT);
            if (!text)
                fz_fail ("a 400 answer does not dump as JSON");
            free (text);
        }
        json_decref (answer.body);
        json_decref (answer.text);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *body = (const char *) data;
    size_t len = size;
    char header [256];
    const char *content_type = NULL;
    const uint8_t *newline = memchr (data, '\n', size);
    if (newline) {
        //  A header value is a C string: it ends at a NUL, if any
        size_t n = (size_t) (newline - data);
        if (n >= sizeof header)
            n = sizeof header - 1;
        memcpy (header, data, n);
        header [n] = 0;
        content_type = header;
        body = (const char *) newline + 1;
        len = size - (size_t) (newline - data) - 1;
    }
    api_body_type_t type = api_body_type (content_type);
    api_fault_t fault;
    memset (&fault, 0, sizeof fault);
    json_t *fields = api_body_parse (type, body, len, &fault);
    if (fields) {
        if (type == API_BODY_UNSUPPORTED)
            fz_fail ("a body of an unsupported type was parsed");
        s_check_fields (type, fields);
        json_decref (fields);
    }
    else {
        fz_text (fault.message, 0, "a fault's message");
        fz_text (fault.field, 1, "a fault's field");
    }
    return 0;
}
