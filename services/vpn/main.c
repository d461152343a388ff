/*  dexter-vpn: the vpn worker. Its configuration is the master key;
    start-up and the job loop are common/dx_worker_main and dx_worker,
    whose handler (common/dx_worker_steps) runs a job's step with
    vpn_step_run (vpn_steps.h).

    DEXTER_WORKER_ENDPOINT    the scheduler's workers ROUTER (tcp://127.0.0.1:5557)
    DEXTER_DATA_DIR           where curve-vpn.key lives, and the default
                              master key file (./var)
    DEXTER_MASTER_KEY         the master key, 64 hex characters: the
                              scheduler's (common/dx_seal.h)
    DEXTER_MASTER_KEY_FILE    else the file holding it (DATA_DIR/master.key,
                              the scheduler's under `make run`); never made
                              here: without a key the worker does not start
    DEXTER_CURVE_DIR          the directory shared with the scheduler: its
                              scheduler.cert, and workers/, where this
                              worker's certificate goes (DATA_DIR/curve)
    DEXTER_CURVE_KEY_FILE     the worker's CurveZMQ key pair
                              (DATA_DIR/curve-vpn.key)
    DEXTER_CURVE_SERVER_KEY   the scheduler's public key, where no
                              directory is shared (Z85)
    DEXTER_WORKER_CAPACITY    jobs at once, 1..1024 (16)
    DEXTER_WORKER_DRAIN_MS    how long a stop waits for running jobs (30000)
    DEXTER_LOG_LEVEL          debug, info, warn, error (info)

    The master key seals the clusters' PKIs, which the scheduler records
    as the steps report them, and opens them when a step loads one: the
    CA's key is opened in this process only (docs/vpn.md). Exits 0 after
    SIGTERM/SIGINT, 1 if it cannot start. */
#include "vpn_steps.h"
#include "dx_config.h"
#include "dx_log.h"
#include "dx_seal.h"
#include "dx_worker_main.h"
#include "dx_worker_steps.h"

#include <limits.h>
#include <stdio.h>
#include <unistd.h>

/*  What every job gets; static, so it outlives jobs abandoned at stop. */
static vpn_steps_config_t s_config;

static int
s_run (const void *config, const json_t *assign, dx_step_out_t *out)
{
    return vpn_step_run ((const vpn_steps_config_t *) config, assign, out);
}

static dx_worker_steps_t s_steps = { s_run, &s_config };

/*  The scheduler's master key: DEXTER_MASTER_KEY, else the key file, which
    this worker never makes (a key of its own would seal what the
    scheduler cannot open). NULL (logged) without one. */
static dx_seal_t *
s_seal (void)
{
    const char *data_dir = dx_config_str ("DATA_DIR", DX_DEFAULT_DATA_DIR);
    char path [PATH_MAX];
    const char *file = dx_config_str ("MASTER_KEY_FILE", NULL);
    if (!file)
        snprintf (path, sizeof path, "%s/master.key", data_dir);
    if (!dx_config_str ("MASTER_KEY", NULL) && access (file? file: path, F_OK) != 0) {
        dx_error ("cannot start: no master key: the vpn worker seals with the scheduler's, "
                  "DEXTER_MASTER_KEY or the file DEXTER_MASTER_KEY_FILE (%s), which the "
                  "scheduler makes on its first start", file? file: path);
        return NULL;
    }
    dx_seal_t *seal = dx_seal_new (data_dir);
    if (!seal)
        dx_error ("cannot start: the master key cannot be read (see above)");
    return seal;
}

int
main (void)
{
    if (dx_worker_boot ("vpn"))
        return 1;
    //  Never freed: a job abandoned at stop may still be using it
    s_config.seal = s_seal ();
    if (!s_config.seal)
        return 1;
    return dx_worker_main ("vpn", "vpn", 0, dx_worker_steps_handle, &s_steps,
                           "the scheduler's master key");
}
