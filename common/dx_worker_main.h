/*  dx_worker_main: the start-up and the life every worker binary shares
    (aws-worker, azure-worker, vpn); a worker's main.c adds only its own
    configuration and its handler.

        int main (void)
        {
            if (dx_worker_boot ("aws-worker"))
                return 1;
            int bad = ... read DEXTER_AWS_* (dx_config_int) ...;
            return dx_worker_main ("aws", "aws-worker", bad, handler, arg,
                                   "poll %lld ms", poll_ms);
        }

    Boot: stop signals caught from the first instruction, the log named,
    libsodium started, jansson's frees made wiping (secrets pass through
    bodies and messages), czmq started with the same stop handler.
    Main: DEXTER_WORKER_CAPACITY (16, 1..DX_WORKER_MAX_CAPACITY), the
    worker's CurveZMQ key pair (DEXTER_DATA_DIR, DEXTER_CURVE_*), the job
    loop until SIGTERM/SIGINT (common/dx_worker), then czmq's shutdown. */
#ifndef DX_WORKER_MAIN_H
#define DX_WORKER_MAIN_H

#include "dx_worker.h"

/*  0, or -1 (logged) when the process cannot start. */
int dx_worker_boot (const char *name);

/*  Runs the worker of service (aws, azure, vpn) named name (its key
    pair's name) with handler and arg until it is stopped; bad non-zero:
    the caller's configuration was refused (logged), so nothing starts.
    about (printf) describes that configuration in the start-up line.
    Returns the process's exit status: 0 after a stop, 1 when it could not
    start. */
int dx_worker_main (const char *service, const char *name, int bad,
                    dx_worker_handler_fn *handler, void *arg, const char *about, ...)
    __attribute__ ((format (printf, 6, 7)));

#endif
