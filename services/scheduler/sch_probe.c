/*  sch_probe: dexter-scheduler --probe. See sch_probe.h. */
#include "sch_probe.h"
#include "dx_config.h"
#include "dx_curve.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  1 if a and b are the same text; NULL is no text. */
static int
s_same (const char *a, const char *b)
{
    return a && b && strcmp (a, b) == 0;
}

/*  The endpoint to connect to for the one the scheduler binds: its
    wildcard host becomes loopback. Written into buf. */
static const char *
s_connect_endpoint (const char *bound, char *buf, size_t size)
{
    static const struct { const char *any, *loopback; } hosts [] = {
        { "tcp://0.0.0.0:", "tcp://127.0.0.1:" }, { "tcp://*:", "tcp://127.0.0.1:" },
        { "tcp://[::]:", "tcp://[::1]:" },
    };
    for (size_t i = 0; i < sizeof hosts / sizeof hosts [0]; i++) {
        size_t len = strlen (hosts [i].any);
        if (strncmp (bound, hosts [i].any, len) == 0) {
            snprintf (buf, size, "%s%s", hosts [i].loopback, bound + len);
            return buf;
        }
    }
    snprintf (buf, size, "%s", bound);
    return buf;
}

/*  Sends health.get on dealer and waits for its reply until deadline
    (dx_mono_ms). The reply (caller owns), or NULL with why set. */
static json_t *
s_ask (zsock_t *dealer, int64_t deadline, char *why, size_t size)
{
    json_t *request = dx_msg_new ("health.get", NULL);
    if (!request
    ||  json_object_set_new (request, "deadline",
                             json_integer (dx_now_ms () + SCH_PROBE_TIMEOUT_MS))
    ||  dx_msg_send (dealer, NULL, request)) {
        snprintf (why, size, "cannot send the request: %s", zmq_strerror (zmq_errno ()));
        json_decref (request);
        return NULL;
    }
    json_t *reply = NULL;
    zpoller_t *poller = zpoller_new (dealer, NULL);
    while (!reply && poller) {
        int64_t left = deadline - dx_mono_ms ();
        if (left <= 0 || !zpoller_wait (poller, (int) left))
            break;
        char err [DX_ERR_LEN];
        reply = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
        if (reply && !s_same (dx_msg_id (reply), dx_msg_id (request))) {
            json_decref (reply);
            reply = NULL;
        }
    }
    zpoller_destroy (&poller);
    if (!reply)
        snprintf (why, size, "no answer within %d ms", SCH_PROBE_TIMEOUT_MS);
    json_decref (request);
    return reply;
}

int
sch_probe_main (void)
{
    /* Its own key pair, whatever key file the scheduler was given; and
       only what goes wrong on stderr. */
    unsetenv ("DEXTER_CURVE_KEY_FILE");
    setenv ("DEXTER_LOG_LEVEL", "warn", 1);
    dx_log_init ("scheduler-probe");
    zsys_init ();
    zsys_handler_set (NULL);

    char endpoint [256], why [320] = "";
    s_connect_endpoint (dx_config_str ("SCHEDULER_ENDPOINT", DX_DEFAULT_SCHEDULER_ENDPOINT),
                        endpoint, sizeof endpoint);
    int64_t deadline = dx_mono_ms () + SCH_PROBE_TIMEOUT_MS;
    dx_curve_t *curve = dx_curve_client_new (dx_config_str ("DATA_DIR", DX_DEFAULT_DATA_DIR),
                                             DX_CURVE_API, "scheduler-probe");
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    json_t *reply = NULL;
    if (!curve || !dealer)
        snprintf (why, sizeof why, "no CurveZMQ key pair or socket (see above)");
    else {
        zsock_set_linger (dealer, 0);
        zsock_set_sndtimeo (dealer, 0);
        if (dx_curve_client_apply (curve, dealer))
            snprintf (why, sizeof why, "no scheduler certificate in DEXTER_CURVE_DIR yet");
        else
        if (zsock_connect (dealer, "%s", endpoint))
            snprintf (why, sizeof why, "cannot connect to %s", endpoint);
        else
            reply = s_ask (dealer, deadline, why, sizeof why);
    }
    int rc = 1;
    const json_t *body = json_object_get (reply, "body");
    if (reply && s_same (dx_msg_str (reply, "status"), DX_OK) && json_is_object (body)) {
        char *text = json_dumps (body, JSON_COMPACT | JSON_SORT_KEYS);
        printf ("%s\n", text? text: "{}");
        free (text);
        rc = s_same (json_string_value (json_object_get (body, "redis")), "ok")? 0: 1;
    }
    else {
        const char *message = dx_msg_str (reply, "message");
        printf ("the scheduler at %s: %s\n", endpoint,
                reply? (message? message: "an answer without a body"): why);
    }
    fflush (stdout);
    json_decref (reply);
    zsock_destroy (&dealer);
    dx_curve_destroy (&curve);
    zsys_shutdown ();
    return rc;
}
