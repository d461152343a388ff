/*  harness_sch: what the scheduler's unit tests share around harness.h's
    redis-server. A fixture holds the server (th_redis_t: its directory,
    port, URL and the test's own connection), the seal of the test's
    master key and the store on that Redis; and, for the tests that run
    deployments, a broker and an engine made per test, with the handlers'
    context over them.

    The raw commands go on the test's own connection, behind the
    scheduler's back: ths_raw, which may write, purges the store's read
    cache, so that no read answers with what the cache held before;
    ths_raw_str and ths_raw_int read and leave it. A reply that does not
    come fails the test. And the requests the handlers take, made as the
    api makes them (ths_req), and a raw worker on the broker (ths_worker). */
#ifndef HARNESS_SCH_H
#define HARNESS_SCH_H

#include <hiredis/hiredis.h>
#include <czmq.h>
#include <jansson.h>

#include "harness.h"
#include "../../services/scheduler/sch_broker.h"
#include "../../services/scheduler/sch_engine.h"
#include "../../services/scheduler/sch_handlers.h"
#include "../../services/scheduler/sch_store.h"

#include "dx_seal.h"

typedef struct {
    th_redis_t redis;           /* the server and the test's own connection */
    dx_seal_t *seal;            /* the master key's; NULL without one */
    sch_store_t *store;         /* on redis; NULL without a master key */
    sch_broker_t *broker;       /* per test (ths_engine_up); NULL without */
    sch_engine_t *engine;       /* per test (ths_engine_up) */
    sch_ctx_t ctx;              /* the handlers' context over all of the above */
} ths_t;

/*  Ignores SIGPIPE (as main.c does: Redis may vanish), starts a
    redis-server of the test's own (th_redis_up, its directory
    /tmp/dx-<prefix>-...) and, when master (32 bytes) is not NULL, makes
    the seal of that key and the store on that Redis. 0, or -1. */
int ths_up (ths_t *self, const char *prefix, const unsigned char *master);

/*  Destroys the store and the seal, stops the server and removes its
    directory; safe on a fixture that is not (or only partly) up. */
void ths_down (ths_t *self);

/*  Makes the broker on a free loopback port (when heartbeat_ms > 0) and
    the engine, and sets ctx over them and the store. 0, or -1. */
int ths_engine_up (ths_t *self, int heartbeat_ms, int lease_ms);

/*  Destroys the engine and the broker; safe when they are not up. */
void ths_engine_down (ths_t *self);

/*  A request as the api sends it: {v, type, id, deadline: now + 60 s}
    plus the members packed from fmt (jansson's json_pack format; NULL:
    none). A format jansson refuses fails the test. Caller owns. */
json_t *ths_req (const char *type, const char *fmt, ...);

/*  A raw DEALER on the broker (linger 0) that has said worker.ready as
    worker `worker` of service, with capacity, running job active (NULL:
    none): a worker a test plays by hand. Caller destroys. */
zsock_t *ths_worker (ths_t *self, const char *service, int capacity, const char *worker,
                     const char *active);

/*  One command on the test's own connection: its reply (caller frees).
    Purges the store's read cache. */
redisReply *ths_raw (ths_t *self, const char *fmt, ...);

/*  The string a command answers (caller frees), or NULL for anything
    else. */
char *ths_raw_str (ths_t *self, const char *fmt, ...);

/*  The integer a command answers; anything else fails the test. */
long long ths_raw_int (ths_t *self, const char *fmt, ...);

#endif
