/*  dexter-scheduler: configuration, signals and start-up; the work is in
    sch_server (the loop), sch_broker (the workers), sch_engine (the
    deployments), sch_store (the state in Redis) and the handlers
    (sch_handlers.h).

    DEXTER_SCHEDULER_ENDPOINT  ROUTER endpoint (tcp://127.0.0.1:5556)
    DEXTER_WORKER_ENDPOINT     the workers' ROUTER endpoint (tcp://127.0.0.1:5557)
    DEXTER_DCOS_INSTALLER_URL  the DC/OS installer of dcos clusters, put in
                               their host steps; unset, a dcos deploy is
                               refused (none)
    DEXTER_REDIS_URL           redis://[:password@]host:port[/db] or
                               unix:///path/to.sock (redis://127.0.0.1:6379/0)
    DEXTER_DATA_DIR            where master.key and curve-scheduler.key
                               live (./var)
    DEXTER_MASTER_KEY[_FILE]   the master key itself, or its file
    DEXTER_CURVE_DIR           the directory shared with the api and the
                               workers: scheduler.cert, and the certificates
                               of the clients admitted (DATA_DIR/curve)
    DEXTER_CURVE_KEY_FILE      the scheduler's CurveZMQ key pair
                               (DATA_DIR/curve-scheduler.key)
    DEXTER_HEARTBEAT_MS        heartbeat interval told to workers (1000)
    DEXTER_LEASE_MS            lease of a job told to workers (30000)
    DEXTER_AWS_BATCH_MAX       the most agents one aws `hosts` step
                               launches, 0 to 1000; 0: one host step per
                               agent (1000)
    DEXTER_LOG_LEVEL           debug, info, warn, error (info)

    Exits 0 after SIGTERM/SIGINT, 1 if it cannot start.

    `dexter-scheduler --probe` serves nothing: it asks the running
    scheduler whether it is healthy (sch_probe.h) and exits 0 or 1. */
#include "sch_probe.h"
#include "sch_server.h"
#include "sch_store.h"
#include "sch_broker.h"
#include "sch_engine.h"
#include "sch_plan.h"
#include "dx_worker.h"
#include "dx_config.h"
#include "dx_curve.h"
#include "dx_log.h"
#include "dx_provision.h"
#include "dx_seal.h"
#include "dx_util.h"

#include <stdio.h>
#include <string.h>

/*  Reads the configuration, starts the store, the seal and the server, and
    serves until SIGTERM/SIGINT; everything is freed so ASan sees no leak. */
int
main (int argc, char *argv [])
{
    if (argc == 2 && strcmp (argv [1], "--probe") == 0)
        return sch_probe_main ();
    if (argc > 1) {
        fprintf (stderr, "usage: dexter-scheduler [--probe]\n");
        return 2;
    }
    dx_catch_stop_signals ();           /* first: a stop during start-up is clean */
    dx_log_init ("scheduler");
    dx_malloc_init ();
    zsys_init ();
    zsys_handler_set (dx_stop_signal);

    const char *endpoint = dx_config_str ("SCHEDULER_ENDPOINT", DX_DEFAULT_SCHEDULER_ENDPOINT);
    const char *redis_url = dx_config_str ("REDIS_URL", DX_DEFAULT_REDIS_URL);
    const char *data_dir = dx_config_str ("DATA_DIR", DX_DEFAULT_DATA_DIR);
    const char *dcos_installer_url = dx_config_str ("DCOS_INSTALLER_URL", "");
    const char *worker_endpoint = dx_config_str ("WORKER_ENDPOINT", DX_WORKER_DEFAULT_ENDPOINT);
    int heartbeat_bad, lease_bad, batch_bad;   /* -1 when malformed or out of range */
    int64_t heartbeat_ms = dx_config_int ("HEARTBEAT_MS", SCH_BROKER_HEARTBEAT_MS, 10,
                                          600000, &heartbeat_bad);
    int64_t lease_ms = dx_config_int ("LEASE_MS", SCH_BROKER_LEASE_MS, 100, 86400000,
                                      &lease_bad);
    int64_t batch_max = dx_config_int ("AWS_BATCH_MAX", SCH_PLAN_AWS_BATCH_MAX, 0,
                                       SCH_PLAN_AWS_BATCH_MAX, &batch_bad);

    int rc = 1;
    sch_store_t *store = NULL;
    sch_server_t *server = NULL;
    sch_broker_t *broker = NULL;
    sch_engine_t *engine = NULL;
    dx_curve_t *curve = NULL;
    dx_seal_t *seal = dx_seal_new (data_dir);
    if (!seal)
        dx_error ("cannot start: no usable master key (see the error above)");
    else
    if (!(curve = dx_curve_server_new (data_dir)))
        dx_error ("cannot start: no CurveZMQ key pair or ZAP handler (see above)");
    else
    if (*dcos_installer_url && !dx_provision_url_valid (dcos_installer_url))
        dx_error ("cannot start: DEXTER_DCOS_INSTALLER_URL must be an http or https URL of "
                  "letters, digits and :/._~%%+=?&@,- (docs/provision.md)");
    else
    if (!(store = sch_store_new (redis_url)))
        dx_error ("cannot start: DEXTER_REDIS_URL is malformed");
    else
    if (!(server = sch_server_new (endpoint, store, seal, curve)))
        dx_error ("cannot start: cannot bind %s", endpoint);
    else
    if (heartbeat_bad || lease_bad)
        dx_error ("cannot start: DEXTER_HEARTBEAT_MS must be 10 to 600000 and "
                  "DEXTER_LEASE_MS 100 to 86400000 (milliseconds)");
    else
    if (batch_bad)
        dx_error ("cannot start: DEXTER_AWS_BATCH_MAX must be 0 to %d",
                  SCH_PLAN_AWS_BATCH_MAX);
    else
    if (!(broker = sch_broker_new (worker_endpoint, heartbeat_ms, lease_ms, curve)))
        dx_error ("cannot start: cannot bind the workers' endpoint %s "
                  "(DEXTER_WORKER_ENDPOINT)", worker_endpoint);
    else
    if (!(engine = sch_engine_new (store, seal, broker, lease_ms)))
        dx_error ("cannot start: out of memory");
    else {
        sch_server_set_dcos_installer_url (server, dcos_installer_url);
        if (!*dcos_installer_url)
            dx_info ("DEXTER_DCOS_INSTALLER_URL is not set: a deploy of a dcos cluster "
                     "is refused (docs/provision.md)");
        sch_server_set_broker (server, broker);
        sch_server_set_engine (server, engine);
        sch_server_set_aws_batch_max (server, (int) batch_max);
        dx_info ("scheduler serving on %s, workers on %s, redis at %s",
                 sch_server_endpoint (server), sch_broker_endpoint (broker),
                 sch_redis_address (sch_store_redis (store)));
        sch_server_run (server, NULL);
        dx_info ("scheduler stopping");
        rc = 0;
    }
    sch_server_destroy (&server);
    sch_engine_destroy (&engine);
    sch_broker_destroy (&broker);
    sch_store_destroy (&store);
    dx_curve_destroy (&curve);          /* after the sockets it guards */
    dx_seal_destroy (&seal);
    zsys_shutdown ();
    return rc;
}
