/*  dx_curve: CurveZMQ on Dexter's two links, api -> scheduler and
    workers -> scheduler (proto/PROTOCOL.md, "Security").

    The scheduler is the CURVE server of both links, the api and every
    worker are its clients. Each process has a key pair of its own, in a
    file only it reads. The scheduler admits on a link only the clients
    whose public certificate is in that link's directory: a peer with no
    key fails the handshake, one with a key not listed there is refused by
    the ZAP handler (RFC 27, zeromq.org), and either gets nothing at all.
    Each refusal is logged once per cause (a peer's address and key, or
    "no key" on a link), not once per retry.

    The files, made on first start (mode 0600, directories 0700):

      DEXTER_CURVE_KEY_FILE   this process's key pair, never shared:
                              DATA_DIR/curve-NAME.key (NAME: scheduler,
                              api, aws-worker, ...)
      DEXTER_CURVE_DIR        what the scheduler and its clients share,
                              all of it public (DATA_DIR/curve):
        scheduler.cert        the scheduler's public certificate
        api/                  the public certificates of the apis admitted
        workers/              and of the workers admitted

    Why: scaling the workers must need nothing set by hand. So a client
    makes its own key pair when it has none and drops its public
    certificate into its link's directory before it connects; the ZAP
    handler reads a directory again whenever it changed (zcertstore); and
    a client reads the scheduler's certificate from the same place each
    time it connects, so it may start first and wait for it. Secrets never
    leave their process's file. Where no directory is shared, a client is
    given the scheduler's public key instead (DEXTER_CURVE_SERVER_KEY, the
    40 Z85 characters of scheduler.cert's public-key) and an operator
    copies the client's certificate to the scheduler. Deleting a
    certificate revokes its client for every later connection.

    No key, secret or public, is ever logged. */
#ifndef DX_CURVE_H
#define DX_CURVE_H

#include <czmq.h>

typedef struct dx_curve dx_curve_t;

/*  The links, which are also the ZAP domains and the directories' names. */
#define DX_CURVE_API     "api"
#define DX_CURVE_WORKERS "workers"

/*  The scheduler's side: loads its key pair (made if there is none),
    writes scheduler.cert, makes api/ and workers/, and starts the ZAP
    handler. The files are as above, under data_dir unless the settings
    say otherwise. One per process: libzmq has one ZAP handler per
    context. NULL on failure (logged). */
dx_curve_t *dx_curve_server_new (const char *data_dir);

/*  A client's side on link (DX_CURVE_API, DX_CURVE_WORKERS): loads its key
    pair (made if there is none) and writes its public certificate into
    the link's directory, named after name (the program: "api",
    "aws-worker"), the host and the key. Reads DEXTER_CURVE_SERVER_KEY.
    NULL on failure (logged). */
dx_curve_t *dx_curve_client_new (const char *data_dir, const char *link, const char *name);

/*  Stops the ZAP handler and frees; safe on NULL; sets *self_p to NULL.
    Destroy it after every socket it was applied to: a server socket left
    without its ZAP handler would admit any key. */
void dx_curve_destroy (dx_curve_t **self_p);

/*  Makes sock, not bound yet, the CURVE server of link, admitting the
    clients of the link's directory, and has its failed handshakes (a peer
    with no key, a broken handshake) logged. 0, or -1 (logged). */
int dx_curve_server_apply (dx_curve_t *self, zsock_t *sock, const char *link);

/*  Makes sock, not connected yet, a CURVE client of the scheduler. The
    scheduler's key is read at each call (DEXTER_CURVE_SERVER_KEY, else
    scheduler.cert), so a socket made again picks up a new one. -1 while
    it is not there (said once), else 0. Any thread. */
int dx_curve_client_apply (dx_curve_t *self, zsock_t *sock);

/*  The handshake events of sock, a client socket: a PAIR socket to poll
    and to give to dx_curve_client_refused. Caller owns it and destroys it
    after sock. NULL on failure. */
zsock_t *dx_curve_client_watch (zsock_t *sock);

/*  Reads one event from watch: 1 if the scheduler refused the handshake
    (logged once until a handshake succeeds), else 0. libzmq never tries a
    refused connection again: the caller makes a new socket, a while later.
    Any thread. */
int dx_curve_client_refused (dx_curve_t *self, zsock_t *watch);

#endif
