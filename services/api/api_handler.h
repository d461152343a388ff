/*  api_handler: an HTTP request's one exchange with the scheduler. It
    turns a matched request into the scheduler request to send, and that
    request's reply into the HTTP status and JSON body to answer with
    (proto/PROTOCOL.md, "Reply"). It knows nothing of MHD or ZeroMQ and
    never waits: api_http sends the request and hands back the reply.

    Only what needs no state is checked here: POST /clusters with
    dx_spec_cluster, since a new cluster's provider is in its body. The
    other writes pass their fields on as they were parsed; the scheduler,
    which holds the cluster and so its provider, checks them with the same
    dx_spec functions. */
#ifndef API_HANDLER_H
#define API_HANDLER_H

#include <jansson.h>
#include "api_route.h"

/*  What to answer: an HTTP status and a JSON body, either as a value or,
    when the scheduler sent it so, as its JSON text (a JSON string whose
    value is the text, sent as it is). Both owned; at most one is set. */
typedef struct {
    int status;
    json_t *body;
    json_t *text;
} api_answer_t;

/*  The scheduler request for match (status 200) with its query and its
    body's fields (stolen, NULL when the route takes no body: they may hold
    secrets, which jansson's allocator wipes when freed). Returns the
    request, which asks for its reply's body as JSON text (caller owns;
    without `deadline`, which the sender adds), or NULL with answer filled
    when there is nothing to send: a 400 for an invalid POST /clusters
    body, a 500 when out of memory. */
json_t *api_handler_request (const api_match_t *match, const api_query_t *query,
                             json_t **fields_p, api_answer_t *answer);

/*  Maps a scheduler reply (borrowed) to answer: the body (or its text) on
    success, else {code, message, field?, errors?}. An INTERNAL reply's
    message is logged, not answered. A made-up UNAVAILABLE reply stands for
    one that did not come in time. */
void api_handler_reply (const json_t *reply, api_answer_t *answer);

/*  An error body {"code", "message"[, "field"]}. field NULL or "" is left
    out. Caller owns. */
json_t *api_error_body (const char *code, const char *field, const char *message);

#endif
