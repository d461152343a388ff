/*  api_route: the route table of docs/api.md. A path pattern and a method
    select the scheduler request to make and how to build it; this module only
    matches (404, 405 with Allow, OPTIONS) and reads query strings. Pure
    functions: no I/O, so tests run every route in-process. */
#ifndef API_ROUTE_H
#define API_ROUTE_H

#include <stdbool.h>
#include "api_body.h"
#include "dx_spec.h"

#define API_PREFIX "/api/v1.0"

/*  How a route builds its scheduler request (api_handler.c). */
typedef enum {
    API_DO_PLAIN,       /* name/group from the path, the query's parameters */
    API_DO_CREATE,      /* cluster.create: the body checked by dx_spec_cluster */
    API_DO_FIELDS,      /* the body's fields as parsed: the scheduler checks
                           them for the cluster's provider */
    API_DO_DOCUMENT,    /* no scheduler request: the api answers its OpenAPI
                           document itself (api_openapi.h) */
    /* The probes (api_health.h): their patterns are whole paths, outside
       API_PREFIX, and they need no token (api_route_probe). */
    API_DO_ALIVE,       /* no scheduler request: GET /healthz */
    API_DO_READY,       /* health.get, its reply made into GET /readyz's
                           answer */
    /* GET /metrics (api_metrics.h), outside API_PREFIX too, with the token */
    API_DO_METRICS      /* metrics.get; the api's text and the reply's */
} api_do_t;

/*  Which query parameters a route accepts; any other is a 400. */
typedef enum {
    API_QUERY_NONE,
    API_QUERY_FORCE,    /* force=true|false */
    API_QUERY_EVENTS,   /* after=ID, count=1..DX_MSG_PAGE_MAX */
    API_QUERY_LIST      /* limit=1..DX_MSG_PAGE_MAX, after=NAME */
} api_query_kind_t;

typedef struct {
    const char *pattern;        /* "/clusters/{name}/groups/{group}" */
    const char *method;         /* "GET", "POST", "PUT", "DELETE" */
    const char *type;           /* the scheduler request, e.g. "group.get" */
    api_do_t action;
    api_query_kind_t query;
    bool body;                  /* takes a form or JSON body */
    bool shared;                /* a read whose answer is the same for
                                   every request of the same query, and
                                   large: requests waiting to be sent
                                   share one (api_loop_send) */
} api_route_t;

/*  The result of matching a request line. */
typedef struct {
    int status;                 /* 200 matched, 204 OPTIONS, 404, 405 */
    const api_route_t *route;   /* when status is 200 */
    char name [DX_NAME_MAX + 1];    /* cluster in the path, or "" */
    char group [DX_NAME_MAX + 1];   /* group in the path, or "" */
    char user [DX_NAME_MAX + 1];    /* VPN user in the path, or "" */
    char allow [64];            /* Allow header for 204 and 405 */
    bool probe;                 /* the path is a probe's (api_route_probe) */
    char message [200];         /* why, for 404 and 405 */
} api_match_t;

/*  The query parameters a matched route was given. */
typedef struct {
    int force;                  /* 0 unless force=true */
    char after [48];            /* "" when absent */
    int count;                  /* 0 when absent */
    int limit;                  /* 0 when absent */
} api_query_t;

/*  1 if route is a probe's (API_DO_ALIVE, API_DO_READY). */
bool api_route_probe (const api_route_t *route);

/*  1 if route's pattern is a whole path, outside API_PREFIX (the probes'
    and /metrics, which is outside the OpenAPI contract: docs/metrics.md). */
bool api_route_outside (const api_route_t *route);

/*  Matches method and path (raw, as sent, without the query: not
    %-decoded, so an encoded '/' is part of its segment): under API_PREFIX
    the API's routes, outside it the probes'. HEAD is read as
    GET; OPTIONS answers 204 with the Allow list of the path. A name or
    group that fails dx_spec_name_valid is a 404: it cannot exist. */
void api_route_match (const char *method, const char *path, api_match_t *match);

/*  Parses the raw query string (the text after '?', may be NULL) for route.
    0, or -1 with fault set: unknown parameter, bad value, given twice. */
int api_route_query (const api_route_t *route, const char *raw,
                     api_query_t *query, api_fault_t *fault);

#endif
