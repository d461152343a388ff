/*  dexter-aws-worker: its configuration; start-up and the job loop are
    common/dx_worker_main and dx_worker, whose handler (common/dx_worker_steps)
    runs a job's step with aws_step_run (aws_steps.h); the EC2 client is aws_ec2.c.

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
#include "dx_worker_main.h"
#include "dx_worker_steps.h"

#include <malloc.h>
#include <libxml/parser.h>

/*  malloc arenas the job threads share. glibc gives each thread that
    finds an arena busy one of its own, up to 8 per core, and keeps what a
    job freed in it for that arena alone: at a hundred jobs with
    DescribeInstances answers of megabytes each, that is tens of MB held
    for nothing. The jobs wait on EC2, not on malloc, so two do. */
#define S_ARENAS 2

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
    mallopt (M_ARENA_MAX, S_ARENAS);
    if (dx_worker_boot ("aws-worker"))
        return 1;
    xmlInitParser ();
    int ok = 0, bad = 0;
    s_config.poll_ms = dx_config_int ("AWS_POLL_MS", AWS_STEPS_DEFAULT_POLL_MS, 10, 60000, &ok);
    bad |= ok;
    s_config.wait_ms = dx_config_int ("AWS_WAIT_MS", AWS_STEPS_DEFAULT_WAIT_MS, 1000,
                                      86400000, &ok);
    bad |= ok;
    //  Never freed: a job abandoned at stop may still be finishing a call;
    //  s_config keeps them reachable until exit
    s_config.limits = dx_ratelimit_new ();
    if (!s_config.limits) {
        dx_error ("cannot start: out of memory");
        return 1;
    }
    return dx_worker_main ("aws", "aws-worker", bad, dx_worker_steps_handle, &s_steps,
                           "poll %lld ms, wait at most %lld ms", (long long) s_config.poll_ms,
                           (long long) s_config.wait_ms);
}
