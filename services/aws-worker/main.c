/*  dexter-aws-worker: configuration, signals and start-up; the job loop is
    common/dx_worker, whose handler (common/dx_worker_steps) runs a job's
    step with aws_step_run (aws_steps.h); the EC2 client is aws_ec2.c.

    DEXTER_WORKER_ENDPOINT    the scheduler's workers ROUTER (tcp://127.0.0.1:5557)
    DEXTER_DATA_DIR           where curve-aws-worker.key lives (./var)
    DEXTER_CURVE_DIR          the directory shared with the scheduler: its
                              scheduler.cert, and workers/, where this
                              worker's certificate goes (DATA_DIR/curve)
    DEXTER_CURVE_KEY_FILE     the worker's CurveZMQ key pair
                              (DATA_DIR/curve-aws-worker.key)
    DEXTER_CURVE_SERVER_KEY   the scheduler's public key, where no
                              directory is shared (Z85)
    DEXTER_WORKER_CAPACITY    jobs at once, 1..1024 (16)
    DEXTER_WORKER_DRAIN_MS    how long a stop waits for running jobs (30000)
    DEXTER_AWS_POLL_MS        DescribeInstances period while waiting, 10..60000 (1000)
    DEXTER_AWS_WAIT_MS        longest wait for one state, 1000..86400000 (900000)
    DEXTER_LOG_LEVEL          debug, info, warn, error (info)
    AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL   EC2 endpoint override (tests)

    Exits 0 after SIGTERM/SIGINT, 1 if it cannot start. */
#include "aws_steps.h"
#include "dx_config.h"
#include "dx_log.h"
#include "dx_util.h"
#include "dx_worker.h"
#include "dx_worker_steps.h"

#include <czmq.h>
#include <sodium.h>
#include <string.h>
#include <libxml/parser.h>

/*  What every job gets; static, so it outlives jobs abandoned at stop. */
static aws_steps_config_t s_config = AWS_STEPS_CONFIG_DEFAULT;

static int
s_run (const void *config, const json_t *assign, dx_step_out_t *out)
{
    return aws_step_run ((const aws_steps_config_t *) config, assign, out);
}

static dx_worker_steps_t s_steps = { s_run, &s_config };

int
main (void)
{
    dx_catch_stop_signals ();
    dx_log_init ("aws-worker");
    if (sodium_init () < 0) {
        dx_error ("cannot start: libsodium failed to initialize");
        return 1;
    }
    /* Frees wipe what they free, so the credentials that pass through
       bodies and messages do not linger in freed memory. */
    json_set_alloc_funcs (malloc, dx_free_wiped);
    xmlInitParser ();
    zsys_init ();
    zsys_handler_set (dx_stop_signal);

    int ok = 0, bad = 0;
    int64_t capacity = dx_config_int ("WORKER_CAPACITY", 16, 1, DX_WORKER_MAX_CAPACITY, &ok);
    bad |= ok;
    s_config.poll_ms = dx_config_int ("AWS_POLL_MS", AWS_STEPS_DEFAULT_POLL_MS, 10, 60000, &ok);
    bad |= ok;
    s_config.wait_ms = dx_config_int ("AWS_WAIT_MS", AWS_STEPS_DEFAULT_WAIT_MS, 1000,
                                      86400000, &ok);
    bad |= ok;
    dx_ratelimit_t *limits = dx_ratelimit_new ();
    s_config.limits = limits;

    int rc = 1;
    dx_worker_t *worker = NULL;
    dx_curve_t *curve = NULL;
    if (bad)
        dx_error ("cannot start: bad configuration (see above)");
    else
    if (!limits)
        dx_error ("cannot start: out of memory");
    else
    if (!(curve = dx_curve_client_new (dx_config_str ("DATA_DIR", DX_DEFAULT_DATA_DIR),
                                       DX_CURVE_WORKERS, "aws-worker")))
        dx_error ("cannot start: no CurveZMQ key pair (see above)");
    else
    if (!(worker = dx_worker_new ("aws", (int) capacity, NULL, dx_worker_steps_handle,
                                         &s_steps)))
        dx_error ("cannot start: the job loop could not be made (see above)");
    else {
        dx_worker_set_curve (worker, curve);
        dx_info ("aws-worker: capacity %lld, poll %lld ms, wait at most %lld ms",
                 (long long) capacity, (long long) s_config.poll_ms,
                 (long long) s_config.wait_ms);
        rc = dx_worker_run (worker) == 0? 0: 1;
        dx_info ("aws-worker stopping");
    }
    dx_worker_destroy (&worker);
    dx_curve_destroy (&curve);
    //  The limits are not freed: a job abandoned at stop may still be
    //  finishing a call; s_config keeps them reachable until exit.
    zsys_shutdown ();
    return rc;
}
