/*  api_health: the probes an orchestrator calls, outside /api/v1.0
    (docs/api.md, "Probes"). They need no token: a probe rarely can send
    one, and what they answer says nothing of the clusters.

      GET /healthz  the api's loop answers: 200 {"status": "ok"}, made here
                    without asking anything else.
      GET /readyz   the api asks the scheduler health.get: 200 when it
                    answered and its Redis serves, else 503; either way
                    the body names what is missing:
                    {"ready", "scheduler", "redis", "workers"}.

    Like api_handler, it knows nothing of MHD or ZeroMQ. */
#ifndef API_HEALTH_H
#define API_HEALTH_H

#include <jansson.h>
#include "api_handler.h"

/*  The answer to GET /healthz. */
void api_health_alive (api_answer_t *answer);

/*  The scheduler request of GET /readyz (health.get, its body as a value,
    without `deadline`, which the sender adds). Caller owns; NULL when out
    of memory. */
json_t *api_health_request (void);

/*  Maps the reply (borrowed) to health.get, or the made-up UNAVAILABLE one
    of a scheduler that did not answer in time, to the answer of GET
    /readyz: 200 or 503 with {"ready": bool, "scheduler": "ok" or why not,
    "redis": "ok", why not, or "unknown" (no answer), "workers": {"aws": N,
    "azure": N, "vpn": N} or null (no answer)}. No worker for a service is
    information, not a fault. */
void api_health_ready (const json_t *reply, api_answer_t *answer);

#endif
