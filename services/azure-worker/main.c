/*  dexter-azure-worker: configuration, signals and start-up; the job loop
    is common/dx_worker, whose handler (common/dx_worker_steps) runs a
    job's step with az_step_run (az_steps.h); the ARM client is az_arm.c.

    DEXTER_WORKER_ENDPOINT    the scheduler's workers ROUTER (tcp://127.0.0.1:5557)
    DEXTER_DATA_DIR           where curve-azure-worker.key lives (./var)
    DEXTER_CURVE_DIR          the directory shared with the scheduler: its
                              scheduler.cert, and workers/, where this
                              worker's certificate goes (DATA_DIR/curve)
    DEXTER_CURVE_KEY_FILE     the worker's CurveZMQ key pair
                              (DATA_DIR/curve-azure-worker.key)
    DEXTER_CURVE_SERVER_KEY   the scheduler's public key, where no
                              directory is shared (Z85)
    DEXTER_WORKER_CAPACITY    jobs at once, 1..1024 (16)
    DEXTER_WORKER_DRAIN_MS    how long a stop waits for running jobs (30000)
    DEXTER_AZURE_POLL_MS      poll period of an operation that gives no
                              Retry-After, 10..60000 (5000)
    DEXTER_AZURE_WAIT_MS      longest wait for one operation, 1000..86400000 (1800000)
    DEXTER_LOG_LEVEL          debug, info, warn, error (info)

    ARM and Entra ID are reached at the endpoints of each job's
    credentials (docs/azure.md). Exits 0 after SIGTERM/SIGINT, 1 if it
    cannot start. */
#include "az_steps.h"
#include "dx_config.h"
#include "dx_log.h"
#include "dx_util.h"
#include "dx_worker.h"
#include "dx_worker_steps.h"

#include <czmq.h>
#include <sodium.h>

/*  What every job gets; static, so it outlives jobs abandoned at stop. */
static az_run_config_t s_config = AZ_RUN_CONFIG_DEFAULT;

static int
s_run (const void *config, const json_t *assign, dx_step_out_t *out)
{
    return az_step_run ((const az_run_config_t *) config, assign, out);
}

static dx_worker_steps_t s_steps = { s_run, &s_config };

int
main (void)
{
    dx_catch_stop_signals ();
    dx_log_init ("azure-worker");
    if (sodium_init () < 0) {
        dx_error ("cannot start: libsodium failed to initialize");
        return 1;
    }
    /* Frees wipe what they free, so the secrets that pass through bodies
       and messages (client secrets, tokens, admin passwords) do not linger
       in freed memory. */
    json_set_alloc_funcs (malloc, dx_free_wiped);
    zsys_init ();
    zsys_handler_set (dx_stop_signal);

    int ok = 0, bad = 0;
    int64_t capacity = dx_config_int ("WORKER_CAPACITY", 16, 1, DX_WORKER_MAX_CAPACITY, &ok);
    bad |= ok;
    s_config.poll_ms = dx_config_int ("AZURE_POLL_MS", AZ_ARM_DEFAULT_POLL_MS, 10, 60000, &ok);
    bad |= ok;
    s_config.wait_ms = dx_config_int ("AZURE_WAIT_MS", AZ_ARM_DEFAULT_WAIT_MS, 1000,
                                      86400000, &ok);
    bad |= ok;
    dx_ratelimit_t *limits = dx_ratelimit_new ();
    az_tokens_t *tokens = az_tokens_new ();
    s_config.limits = limits;
    s_config.tokens = tokens;

    int rc = 1;
    dx_worker_t *worker = NULL;
    dx_curve_t *curve = NULL;
    if (bad)
        dx_error ("cannot start: bad configuration (see above)");
    else
    if (!limits || !tokens)
        dx_error ("cannot start: out of memory");
    else
    if (!(curve = dx_curve_client_new (dx_config_str ("DATA_DIR", DX_DEFAULT_DATA_DIR),
                                       DX_CURVE_WORKERS, "azure-worker")))
        dx_error ("cannot start: no CurveZMQ key pair (see above)");
    else
    if (!(worker = dx_worker_new ("azure", (int) capacity, NULL, dx_worker_steps_handle,
                                  &s_steps)))
        dx_error ("cannot start: the job loop could not be made (see above)");
    else {
        dx_worker_set_curve (worker, curve);
        dx_info ("azure-worker: capacity %lld, poll %lld ms, wait at most %lld ms",
                 (long long) capacity, (long long) s_config.poll_ms,
                 (long long) s_config.wait_ms);
        rc = dx_worker_run (worker) == 0? 0: 1;
        dx_info ("azure-worker stopping");
    }
    dx_worker_destroy (&worker);
    dx_curve_destroy (&curve);
    //  The limits and tokens are not freed: a job abandoned at stop may
    //  still be finishing a call; s_config keeps them reachable until exit.
    zsys_shutdown ();
    return rc;
}
