/*  sch_broker: the scheduler's side of "Transport: scheduler ⇄ workers"
    (proto/PROTOCOL.md), in the spirit of the ZeroMQ guide's Majordomo.

    A second ROUTER (DEXTER_WORKER_ENDPOINT) to which every worker process
    connects one DEALER. The broker keeps the registry of live workers by
    routing identity: it answers worker.ready with worker.welcome, heartbeats
    every worker each heartbeat_ms, forgets a worker silent for 3 intervals
    or one that says worker.bye, and tells an identity it does not know to
    announce itself again (worker.reconnect), so the scheduler may restart
    at any time.

    It is not a thread: the scheduler's loop polls sch_broker_socket and
    calls sch_broker_receive when it is readable, and sch_broker_tick at
    least by the time the previous tick asked for. Jobs are not dispatched
    yet (the deployment engine of issue 3 is to come): the registry is what
    the rest of the scheduler reads, through sch_broker_workers. */
#ifndef SCH_BROKER_H
#define SCH_BROKER_H

#include <stddef.h>
#include <stdint.h>
#include <czmq.h>

#define SCH_BROKER_HEARTBEAT_MS 1000
#define SCH_BROKER_LEASE_MS     30000
#define SCH_BROKER_LIVENESS     3       /* missed heartbeats before a worker is dead */

typedef struct sch_broker sch_broker_t;

/*  Binds a ROUTER at endpoint. heartbeat_ms and lease_ms are what the
    welcome tells workers (<= 0: SCH_BROKER_HEARTBEAT_MS, SCH_BROKER_LEASE_MS).
    NULL if the endpoint cannot be bound (logged). */
sch_broker_t *sch_broker_new (const char *endpoint, int64_t heartbeat_ms, int64_t lease_ms);

/*  Closes the socket and forgets every worker; safe on NULL; sets *self_p
    to NULL. */
void sch_broker_destroy (sch_broker_t **self_p);

/*  The endpoint actually bound (an ephemeral port resolved). Borrowed. */
const char *sch_broker_endpoint (sch_broker_t *self);

/*  The ROUTER, for the caller's poller. Borrowed. */
zsock_t *sch_broker_socket (sch_broker_t *self);

/*  Reads and handles every message waiting on the ROUTER (a bounded
    burst). Never blocks. */
void sch_broker_receive (sch_broker_t *self);

/*  Heartbeats the workers when due and expires the silent ones. Returns
    the monotonic time (dx_mono_ms) by which it wants to be called again. */
int64_t sch_broker_tick (sch_broker_t *self);

/*  The number of live workers of service (aws, azure, vpn); when capacity
    is not NULL, *capacity is set to the sum of their capacities. */
size_t sch_broker_workers (sch_broker_t *self, const char *service, size_t *capacity);

#endif
