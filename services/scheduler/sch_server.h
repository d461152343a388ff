/*  sch_server: the scheduler's request loop.

    One ROUTER socket, one thread: each request is read, checked and
    dispatched through a table of message type -> handler. Changes run one
    at a time, in the order they came, each after every request before it
    has been served, so concurrent api requests can never lose an update;
    the reads of a burst of requests share one Redis round trip. A cron
    tick every second reconnects Redis. */
#ifndef SCH_SERVER_H
#define SCH_SERVER_H

#include <czmq.h>
#include <jansson.h>
#include "dx_curve.h"
#include "dx_seal.h"
#include "sch_store.h"
#include "sch_broker.h"
#include "sch_engine.h"

typedef struct sch_server sch_server_t;

/*  Binds a ROUTER at endpoint, the CurveZMQ server of the api link
    (dx_curve.h): it serves only the apis whose keys curve admits. store,
    seal and curve are borrowed and must outlive the server. curve NULL:
    no CURVE, anyone who connects is served (tests in one process, which
    have no keys). NULL if the endpoint cannot be bound (logged). */
sch_server_t *sch_server_new (const char *endpoint, sch_store_t *store,
                              dx_seal_t *seal, dx_curve_t *curve);

void sch_server_destroy (sch_server_t **self_p);

/*  Serves workers too: the loop polls broker's ROUTER and ticks it, and
    handlers read its registry. broker is borrowed and must outlive the
    server; NULL (the default) serves the api only. */
void sch_server_set_broker (sch_server_t *self, sch_broker_t *broker);

/*  Attaches the deployment engine (borrowed; NULL: deployments are
    recorded but never run, as unit tests of the handlers want). */
void sch_server_set_engine (sch_server_t *self, sch_engine_t *engine);

/*  The most agents an aws `hosts` step launches, taken into each
    deployment's snapshot (sch_plan.h); 0 (the default): one host step
    per agent. */
void sch_server_set_aws_batch_max (sch_server_t *self, int batch_max);

/*  The URL of the DC/OS installer (DEXTER_DCOS_INSTALLER_URL, borrowed:
    it must outlive the server) that dcos deployments put in their host
    steps; NULL or "" (the default): a dcos deploy is refused. */
void sch_server_set_dcos_installer_url (sch_server_t *self, const char *url);

/*  The endpoint actually bound (with the port resolved). Borrowed. */
const char *sch_server_endpoint (sch_server_t *self);

/*  The ROUTER, for a poller of the caller's. Borrowed. */
zsock_t *sch_server_socket (sch_server_t *self);

/*  Serves the requests waiting on the ROUTER (at most a burst), answering
    every one. Never blocks. sch_server_run calls it when the ROUTER is
    readable; a caller with a loop of its own may too. */
void sch_server_receive (sch_server_t *self);

/*  Serves requests until SIGINT/SIGTERM (zsys_interrupted) or, when pipe is
    not NULL, until "$TERM" arrives on it. Returns 0. */
int sch_server_run (sch_server_t *self, zsock_t *pipe);

/*  Handles one decoded request in-process and returns its reply (caller
    owns), exactly as the loop would answer it. For tests and tools. */
json_t *sch_server_handle (sch_server_t *self, const json_t *request);

/*  What the actor needs: the scheduler as a czmq actor, for tests.
    zactor_new (sch_server_actor, &args) binds and serves until the actor is
    destroyed; it signals 0 when ready and -1 if it cannot bind. */
typedef struct {
    const char *endpoint;
    sch_store_t *store;
    dx_seal_t *seal;
} sch_server_args_t;

void sch_server_actor (zsock_t *pipe, void *args);

#endif
