/*  api_handler: runs a matched request. It builds the scheduler request(s)
    the route names, validates bodies with dx_spec first (so bad input is a
    400 without asking the scheduler), and maps the reply to an HTTP status
    and JSON body (proto/PROTOCOL.md, "Reply"). It knows nothing of MHD or
    ZeroMQ: the scheduler is a function, so tests can put a fake behind it. */
#ifndef API_HANDLER_H
#define API_HANDLER_H

#include <jansson.h>
#include "api_route.h"

/*  Sends request (borrowed; the callee may add fields such as `deadline`)
    to the scheduler and returns its reply (caller owns): a real one, or one
    made up with UNAVAILABLE when the scheduler did not answer in time.
    NULL only when out of memory. */
typedef json_t *(api_call_fn) (void *ctx, json_t *request);

/*  What to answer: an HTTP status and a JSON body (owned; NULL for none). */
typedef struct {
    int status;
    json_t *body;
} api_answer_t;

/*  Runs the route of match with its query and body fields (NULL when the
    route takes no body; borrowed) and fills answer. */
void api_handler_run (const api_match_t *match, const api_query_t *query,
                      const json_t *fields, api_call_fn *call, void *ctx,
                      api_answer_t *answer);

/*  An error body {"code", "message"[, "field"]}. field NULL or "" is left
    out. Caller owns. */
json_t *api_error_body (const char *code, const char *field, const char *message);

/*  The HTTP status of a reply status ("OK" -> 200...), 500 if unknown. */
int api_handler_http_status (const char *status);

/*  Maps a scheduler reply (borrowed) to answer: the body on success, else
    {code, message, field?, errors?}. */
void api_handler_reply (const json_t *reply, api_answer_t *answer);

#endif
