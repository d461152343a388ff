/*  dexter-azure-worker: its configuration; start-up and the job loop are
    common/dx_worker_main and dx_worker, whose handler (common/dx_worker_steps)
    runs a job's step with az_step_run (az_steps.h); the ARM client is az_arm.c.

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
    DEXTER_AZURE_SIZES_TTL_MS how long a location's VM sizes are kept, 0..86400000
                              (600000; 0: every host step lists them)
    DEXTER_LOG_LEVEL          debug, info, warn, error (info)

    ARM and Entra ID are reached at the endpoints of each job's
    credentials (docs/azure.md). Exits 0 after SIGTERM/SIGINT, 1 if it
    cannot start. */
#include "az_steps.h"
#include "dx_config.h"
#include "dx_log.h"
#include "dx_worker_main.h"
#include "dx_worker_steps.h"

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
    if (dx_worker_boot ("azure-worker"))
        return 1;
    int ok = 0, bad = 0;
    s_config.poll_ms = dx_config_int ("AZURE_POLL_MS", AZ_ARM_DEFAULT_POLL_MS, 10, 60000, &ok);
    bad |= ok;
    s_config.wait_ms = dx_config_int ("AZURE_WAIT_MS", AZ_ARM_DEFAULT_WAIT_MS, 1000,
                                      86400000, &ok);
    bad |= ok;
    //  Never freed: a job abandoned at stop may still be finishing a call;
    //  s_config keeps them reachable until exit
    int64_t sizes_ttl = dx_config_int ("AZURE_SIZES_TTL_MS", 600000, 0, 86400000, &ok);
    bad |= ok;
    s_config.limits = dx_ratelimit_new ();
    s_config.tokens = az_tokens_new ();
    s_config.sizes = sizes_ttl > 0? az_sizes_new (sizes_ttl): NULL;
    if (!s_config.limits || !s_config.tokens || (sizes_ttl > 0 && !s_config.sizes)) {
        dx_error ("cannot start: out of memory");
        return 1;
    }
    return dx_worker_main ("azure", "azure-worker", bad, dx_worker_steps_handle, &s_steps,
                           "poll %lld ms, wait at most %lld ms", (long long) s_config.poll_ms,
                           (long long) s_config.wait_ms);
}
