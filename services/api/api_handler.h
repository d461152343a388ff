/*  api_handler: runs a matched request as a small state machine, one step
    per scheduler reply. It builds the scheduler request(s) the route names,
    validates bodies with dx_spec first (so bad input is a 400 without asking
    the scheduler), and maps the reply to an HTTP status and JSON body
    (proto/PROTOCOL.md, "Reply"). It knows nothing of MHD or ZeroMQ and never
    waits: each step either hands back a request to send, or the answer.

        start --(plain, create)------------------------------> FINAL
        start --(config/group/deployment writes)--> PROVIDER --> FINAL
        PROVIDER: the cluster.get reply gives the provider; validate the
                  body for it (400 without a second request), build the write
        FINAL:    the write's (or plain request's) reply is the answer

    Any reply that is not a success ends the job with that reply mapped. */
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

/*  What a step produced. */
typedef enum {
    API_STEP_SEND,          /* *request is to be sent; call api_job_next with its reply */
    API_STEP_DONE           /* *answer is filled; the job is over */
} api_step_t;

typedef struct api_job_t api_job_t;

/*  A job for match with its query and body fields (NULL when the route
    takes no body). match and query are copied; fields is stolen (it may
    hold secrets: jansson's allocator wipes them when freed). NULL when out
    of memory. */
api_job_t *api_job_new (const api_match_t *match, const api_query_t *query,
                        json_t **fields_p);

/*  Frees the job. Safe on NULL; sets *self_p to NULL. */
void api_job_destroy (api_job_t **self_p);

/*  Runs the next step: the first with reply NULL, each later one with the
    reply (borrowed) to the request the previous step handed out; a made-up
    UNAVAILABLE reply stands for one that did not come in time. Sets either
    *request (caller owns; without `deadline`, which the sender adds) or
    *answer (caller owns its body). */
api_step_t api_job_next (api_job_t *self, const json_t *reply,
                         json_t **request, api_answer_t *answer);

/*  An error body {"code", "message"[, "field"]}. field NULL or "" is left
    out. Caller owns. */
json_t *api_error_body (const char *code, const char *field, const char *message);

/*  The HTTP status of a reply status ("OK" -> 200...), 500 if unknown. */
int api_handler_http_status (const char *status);

/*  Maps a scheduler reply (borrowed) to answer: the body (or its text) on
    success, else {code, message, field?, errors?}. */
void api_handler_reply (const json_t *reply, api_answer_t *answer);

#endif
