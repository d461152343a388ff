/*  api_metrics: the api's metrics and the text of GET /metrics
    (docs/metrics.md).

    The api counts its requests by route template (never a path: the
    cluster and group names stay out), method and status, times them, and
    keeps the open connections and the requests the scheduler did not
    answer in time. GET /metrics answers this text followed by the
    scheduler's (metrics.get, which carries the workers' sums). With
    DEXTER_METRICS=0 nothing is counted and /metrics is a 404. Thread-safe:
    every event loop counts into the one registry. */
#ifndef API_METRICS_H
#define API_METRICS_H

#include <stdbool.h>

/*  The route label of requests no route matched (404, refused heads). */
#define API_METRICS_NO_ROUTE "none"

/*  Whether metrics are on (DEXTER_METRICS is not "0"). */
bool api_metrics_enabled (void);

/*  Seconds of a monotonic clock; 0 without reading it when metrics are off. */
double api_metrics_clock (void);

/*  A request answered: its route's template is prefix (API_PREFIX, or ""
    outside it) followed by pattern (the route table's, or
    API_METRICS_NO_ROUTE: a string that lives as long as the process and
    always comes with the same prefix, as it keys each thread's cache of
    series); method as sent (any other than the HTTP methods the api
    knows is counted as `other`), status the HTTP status answered (0:
    none, counted as `aborted`), seconds from its request line to its
    answer. */
void api_metrics_request (const char *prefix, const char *pattern, const char *method,
                          int status, double seconds);

/*  A connection opened (+1) or closed (-1). */
void api_metrics_connection (int delta);

/*  A request the scheduler did not answer within DEXTER_API_TIMEOUT_MS. */
void api_metrics_scheduler_timeout (void);

/*  The body of GET /metrics: the api's text, then scheduler_text (the
    scheduler's answer to metrics.get, or NULL when it gave none: then
    dexter_api_scheduler_scrape_ok is 0). Caller frees; NULL when memory
    is short. */
char *api_metrics_text (const char *scheduler_text);

#endif
