/*  sch_probe: `dexter-scheduler --probe`, the health check of a running
    scheduler, for an orchestrator that can only run a command (the
    scheduler has no HTTP port; docker-compose.yml's healthcheck).

    It asks the scheduler health.get over its api link, as the api does,
    and prints the answer's body on stdout: {"redis": ..., "workers":
    {...}}, or why no answer came. Exit status 0 when the scheduler
    answered and its Redis serves, 1 otherwise. The link is CurveZMQ: the
    probe is a client of its own (name "scheduler-probe": key pair
    DATA_DIR/curve-scheduler-probe.key, its certificate in the api/
    directory of DEXTER_CURVE_DIR, where the scheduler admits it), so it
    must run where the scheduler's DEXTER_DATA_DIR and DEXTER_CURVE_DIR
    are, as a compose healthcheck does. A bind address in
    DEXTER_SCHEDULER_ENDPOINT (0.0.0.0, *, [::]) is reached on loopback. */
#ifndef SCH_PROBE_H
#define SCH_PROBE_H

/*  How long the probe waits for the answer. */
#define SCH_PROBE_TIMEOUT_MS 3000

/*  Runs the probe with the process's settings; returns the exit status. */
int sch_probe_main (void);

#endif
