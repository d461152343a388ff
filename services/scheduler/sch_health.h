/*  sch_health: the answer to health.get (proto/PROTOCOL.md), what the
    api's GET /readyz shows: whether Redis serves, and how many workers of
    each service are connected.

    It is answered from what the scheduler holds, without a Redis command
    and without waiting (sch_redis_health, sch_broker_workers): a Redis
    that is down or hangs cannot delay it, so the api can tell a scheduler
    that does not answer from one whose Redis is gone. */
#ifndef SCH_HEALTH_H
#define SCH_HEALTH_H

#include <jansson.h>
#include "sch_handlers.h"

/*  The reply to a health.get request: OK with {"redis": "ok" or why not,
    "workers": {"aws": N, "azure": N, "vpn": N}} (caller owns; NULL when
    out of memory). No worker for a service is no fault: the counts are
    information. */
json_t *sch_health_get (sch_ctx_t *ctx, const json_t *request);

#endif
