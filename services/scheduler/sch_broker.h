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
    by the broker itself: the deployment engine (sch_engine) picks a worker
    with sch_broker_pick, sends the job with sch_broker_assign, and hears
    about results, renewals, announcements and lost workers through the
    callbacks it sets with sch_broker_set_events. */
#ifndef SCH_BROKER_H
#define SCH_BROKER_H

#include <stddef.h>
#include <stdint.h>
#include <czmq.h>
#include <jansson.h>
#include "dx_curve.h"
#include "sch_wmetrics.h"

#define SCH_BROKER_HEARTBEAT_MS 1000
#define SCH_BROKER_LEASE_MS     30000
#define SCH_BROKER_LIVENESS     3       /* missed heartbeats before a worker is dead */

typedef struct sch_broker sch_broker_t;

/*  Binds a ROUTER at endpoint, the CurveZMQ server of the workers link
    (dx_curve.h): only the workers whose keys curve admits get through, so
    no other peer ever sees a job. heartbeat_ms and lease_ms are what the
    welcome tells workers (<= 0: SCH_BROKER_HEARTBEAT_MS, SCH_BROKER_LEASE_MS).
    curve is borrowed and must outlive the broker; NULL: no CURVE, any
    peer may register as a worker (tests in one process, which have no
    keys). NULL if the endpoint cannot be bound (logged). */
sch_broker_t *sch_broker_new (const char *endpoint, int64_t heartbeat_ms,
                              int64_t lease_ms, dx_curve_t *curve);

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

/*  What the broker tells the engine. worker is the worker's registry key
    (hex of its routing identity) and name its host:pid. msg is borrowed. */
typedef struct {
    /*  job.result or job.renew from a registered worker. */
    void (*job) (void *arg, const char *worker, const char *name, const json_t *msg);
    /*  worker.ready: msg's `active` lists the jobs it runs now. */
    void (*ready) (void *arg, const char *worker, const char *name, const json_t *msg);
    /*  The worker is gone (expired or said worker.bye): every job it held
        must go back to the queue. Called before it is forgotten. */
    void (*gone) (void *arg, const char *worker, const char *name);
} sch_broker_events_t;

void sch_broker_set_events (sch_broker_t *self, const sch_broker_events_t *events, void *arg);

/*  The live worker of service with the most free room (capacity minus the
    jobs assigned to it), or NULL when every one is full or there is none.
    The key returned is borrowed until the next broker call. */
const char *sch_broker_pick (sch_broker_t *self, const char *service);

/*  Sends msg (taken) to worker. With job set, counts one more job assigned
    to it (until sch_broker_release). 0, or -1 when the worker is unknown
    or the send failed (the message is dropped). */
int sch_broker_send_to (sch_broker_t *self, const char *worker, json_t *msg, int job);

/*  One job fewer assigned to worker (its result came, or it was taken away);
    counts one more when adopt is set (a restarted scheduler learns it runs
    a job). Unknown workers are ignored. */
void sch_broker_release (sch_broker_t *self, const char *worker);
void sch_broker_adopt (sch_broker_t *self, const char *worker);

/*  What the workers' heartbeats counted (sch_wmetrics.h). Borrowed. */
sch_wmetrics_t *sch_broker_metrics (sch_broker_t *self);

/*  The host:pid name of worker, or NULL. Borrowed. */
const char *sch_broker_name (sch_broker_t *self, const char *worker);

#endif
