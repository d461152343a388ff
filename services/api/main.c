/*  dexter-api: the REST gateway (docs/api.md). Configuration, signals and
    start-up; the work is in api_loop.c (the event loops: HTTP and the ZeroMQ
    hop), api_http.c (HTTP), api_tls.c (HTTPS credentials), api_route.c (the
    route table), api_body.c (bodies) and api_handler.c (requests to the
    scheduler and their answers).

    DEXTER_API_ADDR            HOST:PORT to listen on (127.0.0.1:5555)
    DEXTER_API_TOKEN           bearer token every request must carry; required
                               when the address is not loopback
    DEXTER_API_TLS_CERT        PEM certificate chain and private key: serve
    DEXTER_API_TLS_KEY         HTTPS only; both read again on SIGHUP. Required
                               when the address is not loopback...
    DEXTER_API_INSECURE_HTTP   ...unless this is 1: a TLS-terminating proxy
                               is in front
    DEXTER_API_THREADS         event loop threads (1)
    DEXTER_API_TIMEOUT_MS      how long to wait for the scheduler (5000)
    DEXTER_API_REQUEST_DEADLINE_MS  how long a client may take to send a
                               request, head and body (10000)
    DEXTER_API_CONNECTIONS_PER_IP   connections open at once from one client
                               address, per event loop (256; 0: any)
    DEXTER_SCHEDULER_ENDPOINT  the scheduler's ROUTER (tcp://127.0.0.1:5556)
    DEXTER_DATA_DIR            where curve-api.key lives (./var)
    DEXTER_CURVE_DIR           the directory shared with the scheduler: its
                               scheduler.cert, and api/, where this api's
                               certificate goes (DATA_DIR/curve)
    DEXTER_CURVE_KEY_FILE      the api's CurveZMQ key pair
                               (DATA_DIR/curve-api.key)
    DEXTER_CURVE_SERVER_KEY    the scheduler's public key, where no
                               directory is shared (Z85) */
#include "api_http.h"
#include "api_loop.h"
#include "api_tls.h"
#include "dx_config.h"
#include "dx_curve.h"
#include "dx_log.h"
#include "dx_util.h"

#include <czmq.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>

/*  How long a request may take to arrive: ample for any client on a
    working network, short enough that clients trickling bytes give their
    connections back soon. */
#define API_REQUEST_DEADLINE_MS 10000
/*  Connections from one address: a quarter of what a loop holds (1000), so
    that a few hosts cannot take them all, while one host may still run a
    couple of hundred clients at once. */
#define API_CONNECTIONS_PER_IP  256

/*  SIGHUP: reads the certificate and key again; every loop then takes new
    connections with them, and its connections made before finish as they
    were. A pair that cannot be used changes nothing. */
static void
s_reload (api_loop_t **loops, int64_t threads, const char *cert_file,
          const char *key_file)
{
    if (!cert_file) {
        dx_info ("SIGHUP: nothing to reload (no DEXTER_API_TLS_CERT)");
        return;
    }
    char why [512];
    api_tls_t *tls = api_tls_new (cert_file, key_file, why, sizeof why);
    if (!tls) {
        dx_error ("SIGHUP: %s; new connections still get the previous certificate", why);
        return;
    }
    int64_t renewed = 0;
    for (int64_t i = 0; i < threads; i++)
        renewed += api_loop_renew (loops [i], tls) == 0;
    api_tls_destroy (&tls);
    if (renewed == threads)
        dx_info ("SIGHUP: new connections get the certificate in %s", cert_file);
    else
        dx_error ("SIGHUP: %lld of %lld event loops kept the previous certificate",
                  (long long) (threads - renewed), (long long) threads);
}

int
main (void)
{
    dx_log_init ("api");
    if (sodium_init () < 0) {
        dx_error ("libsodium failed to initialize");
        return 1;
    }
    dx_malloc_init ();
    /* Frees wipe what they free, so the credentials that pass through
       bodies and messages do not linger in freed memory. */
    json_set_alloc_funcs (malloc, dx_free_wiped);
    json_object_seed (0);

    int bad = 0, ok;
    const char *addr_text = dx_config_str ("API_ADDR", DX_DEFAULT_API_ADDR);
    const char *token = dx_config_str ("API_TOKEN", NULL);
    const char *cert_file = dx_config_str ("API_TLS_CERT", NULL);
    const char *key_file = dx_config_str ("API_TLS_KEY", NULL);
    int64_t insecure = dx_config_int ("API_INSECURE_HTTP", 0, 0, 1, &ok);
    bad |= ok;
    const char *endpoint = dx_config_str ("SCHEDULER_ENDPOINT",
                                          DX_DEFAULT_SCHEDULER_ENDPOINT);
    int64_t threads = dx_config_int ("API_THREADS", 1, 1, 256, &ok);
    bad |= ok;
    int64_t timeout = dx_config_int ("API_TIMEOUT_MS", DX_DEFAULT_API_TIMEOUT_MS,
                                     1, 600000, &ok);
    bad |= ok;
    int64_t request_ms = dx_config_int ("API_REQUEST_DEADLINE_MS", API_REQUEST_DEADLINE_MS,
                                        100, 600000, &ok);
    bad |= ok;
    int64_t per_ip = dx_config_int ("API_CONNECTIONS_PER_IP", API_CONNECTIONS_PER_IP,
                                    0, 1000, &ok);
    bad |= ok;
    if (bad)
        return 2;

    struct sockaddr_storage addr;
    socklen_t addr_len;
    char err [300];
    if (api_http_resolve (addr_text, &addr, &addr_len, err, sizeof err)) {
        dx_error ("DEXTER_API_ADDR: %s", err);
        return 2;
    }
    bool loopback = api_http_is_loopback ((struct sockaddr *) &addr);
    if (!token && !loopback) {
        dx_error ("refusing to listen on %s, which is not a loopback address, "
                  "without DEXTER_API_TOKEN: set a token (clients then send "
                  "'Authorization: Bearer <token>') or listen on 127.0.0.1",
                  addr_text);
        return 2;
    }
    if (!cert_file != !key_file) {
        dx_error ("DEXTER_API_TLS_CERT and DEXTER_API_TLS_KEY go together: set "
                  "both (HTTPS) or neither (HTTP)");
        return 2;
    }
    if (!cert_file && !loopback && !insecure) {
        dx_error ("refusing to listen on %s, which is not a loopback address, "
                  "over plain HTTP: set DEXTER_API_TLS_CERT and DEXTER_API_TLS_KEY "
                  "(HTTPS), or DEXTER_API_INSECURE_HTTP=1 if a TLS-terminating "
                  "proxy is in front, or listen on 127.0.0.1", addr_text);
        return 2;
    }
    if (!cert_file && !loopback)
        dx_warn ("serving plain HTTP on %s, which is not a loopback address "
                 "(DEXTER_API_INSECURE_HTTP=1): the token and the bodies cross "
                 "the network in clear up to the TLS-terminating proxy", addr_text);
    api_tls_t *tls = NULL;
    if (cert_file && !(tls = api_tls_new (cert_file, key_file, err, sizeof err))) {
        dx_error ("DEXTER_API_TLS_CERT, DEXTER_API_TLS_KEY: %s", err);
        return 2;
    }

    /* SIGINT/SIGTERM/SIGHUP are taken by sigwait below; every thread
       started from here on (MHD's, ZeroMQ's) inherits the mask and never
       sees them. */
    zsys_handler_set (NULL);
    signal (SIGPIPE, SIG_IGN);
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);

    /* The first loop binds; the others share its socket. */
    dx_curve_t *curve = dx_curve_client_new (dx_config_str ("DATA_DIR", DX_DEFAULT_DATA_DIR),
                                             DX_CURVE_API, "api");
    api_loop_t *loops [256] = { NULL };
    api_loop_config_t config = {
        .endpoint = endpoint, .curve = curve, .timeout_ms = (int) timeout,
        .http = { .addr = (struct sockaddr *) &addr, .listen_fd = -1, .token = token,
                  .tls = tls, .request_ms = request_ms, .per_ip = (unsigned) per_ip }
    };
    int started = curve != NULL;
    for (int64_t i = 0; i < threads && started; i++) {
        loops [i] = api_loop_new (&config);
        started = loops [i] && api_loop_start (loops [i]) == 0;
        if (started)
            config.http.listen_fd = api_http_listen_fd (api_loop_http (loops [0]));
    }
    api_tls_destroy (&tls);         /* the daemons hold their own copies */
    if (started) {
        char where [80];
        dx_info ("listening on %s://%s", cert_file ? "https" : "http",
                 api_http_format ((struct sockaddr *) &addr,
                                  api_http_port (api_loop_http (loops [0])),
                                  where, sizeof where));
        dx_info ("scheduler at %s, timeout %lld ms, %lld threads%s", endpoint,
                 (long long) timeout, (long long) threads,
                 token ? ", bearer token required" : "");
        int sig = 0;
        while (sigwait (&signals, &sig) == 0 && sig == SIGHUP)
            s_reload (loops, threads, cert_file, key_file);
        dx_info ("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    for (int64_t i = 0; i < threads; i++)
        api_loop_stop (loops [i]);
    for (int64_t i = threads - 1; i >= 0; i--)
        api_loop_destroy (&loops [i]);
    dx_curve_destroy (&curve);
    zsys_shutdown ();
    if (!started)
        return 1;
    dx_info ("stopped");
    return 0;
}
