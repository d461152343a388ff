/*  api_loop: one event loop thread of the api. It owns one HTTP daemon
    (api_http, polled from here, no thread of its own), one DEALER to the
    scheduler (proto/PROTOCOL.md, "Transport") and the table of requests
    waiting for a reply. It never blocks but in zmq_poll, on the DEALER and
    the daemon's sockets together: each wakeup runs the daemon (which may
    send many requests) and then takes every reply that has arrived, so one
    wakeup carries many messages.

    A request is sent at once when the DEALER takes it, else kept in order
    until it does (a shared read may also wait for the one of its fields
    in flight: api_loop_send) (ZMQ_IMMEDIATE: nothing is queued to a scheduler that is
    not connected). The DEALER is a CurveZMQ client (dx_curve.h); while
    the scheduler's public key is not there yet, or after the scheduler
    refused the handshake, the loop has none and makes one again every
    second, and requests wait as for a scheduler that is down. Each waits
    until its deadline, now plus the timeout, so the wait queue in arrival
    order is the deadline order. At the deadline its callback gets a
    made-up UNAVAILABLE reply saying whether it was sent at all. Replies
    whose id is not waited for (late answers to requests that already got
    a 503) are dropped.

    New TLS credentials (api_loop_renew) give the loop a new daemon on the
    same socket; it runs the old ones too, retired, until their last
    connection has closed. */
#ifndef API_LOOP_H
#define API_LOOP_H

#include <jansson.h>
#include <stdbool.h>
#include "api_http.h"
#include "dx_curve.h"

typedef struct api_loop_t api_loop_t;   /* also named in api_http.h */
struct api_tls_t;

/*  Called with the reply (borrowed) to a request sent with api_loop_send,
    or with a made-up one at its deadline. */
typedef void (api_reply_fn) (void *ctx, const json_t *reply);

typedef struct {
    const char *endpoint;           /* the scheduler's ROUTER */
    dx_curve_t *curve;              /* the api's key pair (dx_curve_client_new
                                       on DX_CURVE_API); borrowed, outlives
                                       the loop */
    int timeout_ms;                 /* per request */
    api_http_config_t http;         /* the daemon; its loop is set here */
} api_loop_config_t;

/*  Makes the loop: its daemon listens (or shares config->http.listen_fd),
    its DEALER connects. No thread yet. NULL on failure (logged). */
api_loop_t *api_loop_new (const api_loop_config_t *config);

/*  Starts the loop's thread. 0/-1. */
int api_loop_start (api_loop_t *self);

/*  Asks the loop to stop (any thread): it stops taking connections, lets
    the requests in flight finish (each within its deadline) and ends. */
void api_loop_stop (api_loop_t *self);

/*  Waits for the thread (if started), then closes the daemon and the
    socket. Safe on NULL; sets *self_p to NULL. */
void api_loop_destroy (api_loop_t **self_p);

/*  From another thread, while the loop runs: makes the loop serve new
    connections with tls (borrowed until this returns) from a new daemon,
    and retire the current one (api_http_renew). Waits until it is done:
    0, or -1 if the loop kept its daemon (logged). */
int api_loop_renew (api_loop_t *self, const struct api_tls_t *tls);

/*  The loop's daemon (the one taking new connections). */
api_http_t *api_loop_http (api_loop_t *self);

/*  A caller waiting for a reply (api_loop_send). */
typedef struct api_wait_t api_wait_t;

/*  From the loop's thread: sends request (stolen) with its `deadline`,
    after the daemon's current run together with the others made in it,
    and calls fn (ctx) once with its reply, or with a made-up UNAVAILABLE
    one when none came within the timeout. Returns the wait, for
    api_loop_forget until fn is called, or NULL when out of memory or when
    the codec cannot carry the request (fn is not called): either is known
    at once, so nothing unsendable waits in front of other requests.

    share: a read whose answer is the same for every request of the same
    fields (cluster.list): it joins the request of the same fields that
    is not sent yet, if there is one, and one reply answers both. While
    one of those fields is in flight the next is held, and sent when it
    is answered: one list crosses the link at a time, for every caller
    that asked in the meantime, instead of one copy per caller in front
    of every other reply. Each caller still gets an answer read after
    it asked, and its own 503 at its own deadline. */
api_wait_t *api_loop_send (api_loop_t *self, json_t *request, bool share,
                           api_reply_fn *fn, void *ctx);

/*  From the loop's thread: forget wait (its fn is not called). */
void api_loop_forget (api_loop_t *self, api_wait_t *wait);

/*  true once the loop is stopping: start no new work. */
bool api_loop_stopping (api_loop_t *self);

#endif
