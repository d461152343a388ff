/*  dx_worker: the one job loop every worker (aws, azure, vpn) shares.

    The worker side of "Transport: scheduler ⇄ workers" in proto/PROTOCOL.md.
    A worker binary is configuration plus:

        dx_worker_t *worker = dx_worker_new ("aws", 8, NULL, s_handle, &config);
        dx_worker_set_curve (worker, curve);
        dx_worker_run (worker);             // until SIGTERM/SIGINT
        dx_worker_destroy (&worker);

    One thread (the caller of dx_worker_run) owns the DEALER to the scheduler:
    it announces the worker (worker.ready), heartbeats, renews leases, sends
    results and reconnects when the scheduler falls silent. Each job runs in
    its own thread, which calls the handler with the job.assign message; a
    handler may block for minutes, the loop keeps heartbeating meanwhile. The
    worker keeps nothing between jobs: after a job its message, credentials
    included, is wiped and freed.

    Stopping: when zsys_interrupted is set (czmq's SIGINT/SIGTERM handler, or
    the service's own), the loop stops taking jobs, waits for running ones at
    most DEXTER_WORKER_DRAIN_MS (30000), sends worker.bye and returns. Jobs
    still running then are cancelled (dx_worker_job_cancelled) and abandoned:
    their threads free their own job when the handler returns, so the
    handler's arg must outlive dx_worker_destroy (make it static, or free it
    only at exit).

    Job threads block SIGINT and SIGTERM, so signals reach the loop and a
    handler's blocking calls never see EINTR because of them.

    Secrets: credentials arrive in job.assign; the received frame and the
    decoded strings are wiped (sodium_memzero) and never logged. Copies a
    handler makes (request strings, curl buffers) are the handler's to wipe;
    a worker's main that installs wiping jansson allocators
    (json_set_alloc_funcs, as services/api/main.c does) covers the jansson
    ones. */
#ifndef DX_WORKER_H
#define DX_WORKER_H

#include <stdint.h>
#include <czmq.h>
#include <jansson.h>
#include "dx_curve.h"

#define DX_WORKER_DEFAULT_ENDPOINT     "tcp://127.0.0.1:5557"
#define DX_WORKER_DEFAULT_DRAIN_MS     30000
#define DX_WORKER_DEFAULT_HEARTBEAT_MS 1000     /* until worker.welcome */
#define DX_WORKER_DEFAULT_LEASE_MS     30000    /* until worker.welcome */
#define DX_WORKER_MAX_CAPACITY         1024

typedef struct dx_worker dx_worker_t;

/*  One running job, as its handler sees it. Borrowed by the handler for
    the duration of the call; all dx_worker_job_* functions are for the
    handler's thread, except dx_worker_job_cancelled which any thread may
    call while the handler runs. */
typedef struct dx_worker_job dx_worker_job_t;

/*  Runs one job in its own thread. assign is the job.assign message
    (job, attempt, cluster, generation, step, credentials, lease_ms), valid
    until the handler returns, then wiped: copy what must outlive the call
    (never the credentials). The outcome is `done` unless the handler calls
    dx_worker_job_fail or dx_worker_job_retry; resources it added are sent
    with any outcome. */
typedef void (dx_worker_handler_fn) (const json_t *assign, dx_worker_job_t *job,
                                     void *arg);

/*  New worker for service (aws, azure, vpn) running at most capacity jobs
    at once (1..DX_WORKER_MAX_CAPACITY). endpoint NULL means
    DEXTER_WORKER_ENDPOINT or DX_WORKER_DEFAULT_ENDPOINT. Reads
    DEXTER_WORKER_DRAIN_MS. Does not connect yet. NULL on bad arguments or
    configuration (logged). arg is borrowed (see above). */
dx_worker_t *dx_worker_new (const char *service, int capacity, const char *endpoint,
                            dx_worker_handler_fn *handler, void *arg);

/*  Makes every connection to the scheduler a CurveZMQ client of the
    workers link with curve's key pair (dx_curve_client_new (..., DX_CURVE_WORKERS,
    ...)): the scheduler then sends jobs only to workers whose keys it
    knows. Before dx_worker_run; curve is borrowed and must outlive the
    worker. Without it the worker connects with no key, as tests in one
    process do. */
void dx_worker_set_curve (dx_worker_t *self, dx_curve_t *curve);

/*  Frees the worker; safe on NULL; sets *self_p to NULL. Call it after
    dx_worker_run returned (or without running). */
void dx_worker_destroy (dx_worker_t **self_p);

/*  Runs the loop until zsys_interrupted is set, then drains (see above).
    Returns 0, or -1 if the worker could not start (logged). */
int dx_worker_run (dx_worker_t *self);

/*  The worker as a czmq actor, for tests and for processes that run more
    than one thing: zactor_new (dx_worker_actor, &args) starts it (the actor
    signals 0 when running, -1 if it could not start); zactor_destroy stops
    it exactly as a signal would: drain, worker.bye, free. args is read
    only during zactor_new. */
typedef struct {
    const char *service;
    int capacity;
    const char *endpoint;               /* NULL: as dx_worker_new */
    dx_worker_handler_fn *handler;
    void *arg;
    int64_t drain_ms;                   /* < 0: DEXTER_WORKER_DRAIN_MS */
} dx_worker_args_t;

void dx_worker_actor (zsock_t *pipe, void *args);

/*  True once the scheduler cancelled the job (job.cancel) or the worker is
    abandoning it at shutdown. A long handler polls it between cloud calls
    and returns early; its result is still sent (the scheduler ignores it). */
int dx_worker_job_cancelled (dx_worker_job_t *job);

/*  Adds one resource ({kind, provider_id, attributes...}; stolen) to the
    result. 0, or -1 if resource is not an object (it is freed). */
int dx_worker_job_add_resource (dx_worker_job_t *job, json_t *resource);

/*  Outcome `failed`: error {code, message, permanent}. permanent means no
    retry can help (bad credentials, invalid parameter); code is the
    provider's own error code where there is one. Never put a secret in
    the message. The last call of fail/retry wins. */
void dx_worker_job_fail (dx_worker_job_t *job, int permanent, const char *code,
                         const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));

/*  Outcome `retry`: the step could not finish now (throttled past the
    retry budget, a dependency not ready); the scheduler runs it again with
    attempt + 1. error.permanent is false. */
void dx_worker_job_retry (dx_worker_job_t *job, const char *code,
                          const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

/*  Says how the job is getting on ("VM c1-g1-0: Creating after 20 s"):
    the loop sends it to the scheduler as job.progress, which records it
    in the deployment's events (step.progress). Only the newest text that
    has not left yet is sent, so a handler may call it as often as it
    likes; texts are cut at DX_WORKER_PROGRESS_MAX bytes. Never put a
    secret in it. */
#define DX_WORKER_PROGRESS_MAX 256
void dx_worker_job_progress (dx_worker_job_t *job, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  Wipes (sodium_memzero) every string of the message's `credentials` map
    in place. The loop calls it on each job.assign when its job ends. */
void dx_worker_wipe_credentials (json_t *assign);

#endif
