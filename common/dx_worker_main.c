/*  dx_worker_main: a worker binary's start-up and life. See
    dx_worker_main.h. */
#include "dx_worker_main.h"
#include "dx_config.h"
#include "dx_curve.h"
#include "dx_log.h"
#include "dx_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <czmq.h>
#include <jansson.h>
#include <sodium.h>

int
dx_worker_boot (const char *name)
{
    dx_catch_stop_signals ();
    dx_log_init (name);
    if (sodium_init () < 0) {
        dx_error ("cannot start: libsodium failed to initialize");
        return -1;
    }
    json_set_alloc_funcs (malloc, dx_free_wiped);
    zsys_init ();
    zsys_handler_set (dx_stop_signal);
    return 0;
}

int
dx_worker_main (const char *service, const char *name, int bad,
                dx_worker_handler_fn *handler, void *arg, const char *about, ...)
{
    int ok = 0;
    int64_t capacity = dx_config_int ("WORKER_CAPACITY", 16, 1, DX_WORKER_MAX_CAPACITY, &ok);
    bad |= ok;
    char text [256];
    va_list args;
    va_start (args, about);
    vsnprintf (text, sizeof text, about, args);
    va_end (args);

    int rc = 1;
    dx_worker_t *worker = NULL;
    dx_curve_t *curve = NULL;
    if (bad)
        dx_error ("cannot start: bad configuration (see above)");
    else
    if (!(curve = dx_curve_client_new (dx_config_str ("DATA_DIR", DX_DEFAULT_DATA_DIR),
                                       DX_CURVE_WORKERS, name)))
        dx_error ("cannot start: no CurveZMQ key pair (see above)");
    else
    if (!(worker = dx_worker_new (service, (int) capacity, NULL, handler, arg)))
        dx_error ("cannot start: the job loop could not be made (see above)");
    else {
        dx_worker_set_curve (worker, curve);
        dx_info ("%s: capacity %lld, %s", name, (long long) capacity, text);
        rc = dx_worker_run (worker) == 0? 0: 1;
        dx_info ("%s stopping", name);
    }
    dx_worker_destroy (&worker);
    dx_curve_destroy (&curve);
    zsys_shutdown ();
    return rc;
}
