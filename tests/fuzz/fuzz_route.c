/*  libFuzzer target for the api's router and query parser
    (services/api/api_route.c).

    The first byte picks the method (its low three bits) and whether the
    API prefix comes before the rest (bit 3), so that the fuzzer spends
    its time inside the API; the rest is the path, then '?' and the query
    string. For any input api_route_match answers 200, 204, 404 or 405
    with names that pass dx_spec_name_valid and texts that can go into a
    JSON answer; for a matched route api_route_query gives values within
    their ranges or a fault; and the request api_handler_request builds
    from them encodes, and decodes against its type's schema: the
    scheduler must take every request the api can send. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_handler.h"
#include "api_route.h"
#include "dx_msg.h"
#include "dx_spec.h"
#include "fz_check.h"

static const char *const s_methods [8] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"
};

/*  Checks a match against the rules of api_route.h. */
static void
s_check_match (const char *method, const api_match_t *match)
{
    int status = match->status;
    if (status != 200 && status != 204 && status != 404 && status != 405)
        fz_fail ("api_route_match gave an unknown status");
    if ((status == 200) != (match->route != NULL))
        fz_fail ("a route without 200, or 200 without a route");
    if ((match->name [0] && !dx_spec_name_valid (match->name))
    ||  (match->group [0] && !dx_spec_name_valid (match->group)))
        fz_fail ("a matched name fails dx_spec_name_valid");
    if (status == 200) {
        const api_route_t *route = match->route;
        const char *wanted = strcmp (method, "HEAD") == 0? "GET": method;
        if (strcmp (route->method, wanted) != 0)
            fz_fail ("a route of another method matched");
        if (!strstr (route->pattern, "{name}") != !match->name [0]
        ||  !strstr (route->pattern, "{group}") != !match->group [0])
            fz_fail ("a path name missing or left over");
    }
    if (status == 204 || status == 405) {
        size_t len = strlen (match->allow);
        if (len < 7 || strcmp (match->allow + len - 7, "OPTIONS") != 0)
            fz_fail ("an Allow list that does not end with OPTIONS");
    }
    if (status == 404 || status == 405)
        fz_text (match->message, 0, "a 404 or 405 message");
}

/*  Checks parsed query values against their ranges: each only on the
    routes that take it. */
static void
s_check_query (const api_route_t *route, const api_query_t *query)
{
    int events = route->query == API_QUERY_EVENTS, list = route->query == API_QUERY_LIST;
    if ((query->force && route->query != API_QUERY_FORCE)
    ||  (query->count && !events) || (query->limit && !list)
    ||  (query->after [0] && !events && !list))
        fz_fail ("a query value for a route that does not take it");
    if (query->force != 0 && query->force != 1)
        fz_fail ("force neither 0 nor 1");
    if (query->count < 0 || query->count > DX_MSG_PAGE_MAX
    ||  query->limit < 0 || query->limit > DX_MSG_PAGE_MAX)
        fz_fail ("count or limit out of 0..DX_MSG_PAGE_MAX");
    if (events && strspn (query->after, "0123456789-") != strlen (query->after))
        fz_fail ("after is not a stream id");
    if (list && query->after [0] && !dx_spec_name_valid (query->after))
        fz_fail ("after is not a cluster name");
}

/*  Builds the scheduler request as the api does and sends it through the
    codec. Writes get a valid cluster body. */
static void
s_check_request (const api_match_t *match, const api_query_t *query)
{
    json_t *fields = match->route->body
        ? json_pack ("{s:s, s:s, s:s}", "name", "demo", "provider", "aws", "type", "mesos")
        : NULL;
    api_answer_t answer;
    json_t *request = api_handler_request (match, query, match->route->body? &fields: NULL,
                                           &answer);
    if (!request)
        fz_fail ("no request for a matched route and a valid body");
    json_object_set_new (request, "deadline", json_integer (1795574400123));
    json_decref (fz_send (request, match->route->type));
    json_decref (request);
    json_decref (answer.body);
    json_decref (answer.text);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *method = s_methods [data [0] & 7];
    const char *prefix = data [0] & 8? API_PREFIX: "";
    //  MHD hands over the URL as a C string: it ends at a NUL
    size_t prefix_len = strlen (prefix);
    char *url = malloc (prefix_len + size);
    if (!url)
        return 0;
    memcpy (url, prefix, prefix_len);
    memcpy (url + prefix_len, data + 1, size - 1);
    url [prefix_len + size - 1] = 0;
    char *query_text = strchr (url, '?');
    if (query_text)
        *query_text++ = 0;

    api_match_t match;
    api_route_match (method, url, &match);
    s_check_match (method, &match);
    if (match.status == 200) {
        api_query_t query;
        api_fault_t fault;
        memset (&fault, 0, sizeof fault);
        if (api_route_query (match.route, query_text, &query, &fault) == 0) {
            s_check_query (match.route, &query);
            //  The OpenAPI document and /healthz are the api's own
            //  answers: no request
            if (match.route->action != API_DO_DOCUMENT
            &&  match.route->action != API_DO_ALIVE)
                s_check_request (&match, &query);
        }
        else {
            fz_text (fault.message, 0, "a query fault's message");
            fz_text (fault.field, 1, "a query fault's field");
        }
    }
    free (url);
    return 0;
}
