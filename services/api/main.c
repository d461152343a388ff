/*  dexter-api: the REST gateway (docs/api.md). Configuration, signals and
    start-up; the work is in api_loop.c (the event loops: HTTP and the ZeroMQ
    hop), api_http.c (HTTP), api_route.c (the route table), api_body.c
    (bodies) and api_handler.c (requests to the scheduler and their answers).

    DEXTER_API_ADDR            HOST:PORT to listen on (127.0.0.1:5555)
    DEXTER_API_TOKEN           bearer token every request must carry; required
                               when the address is not loopback
    DEXTER_API_THREADS         event loop threads (1)
    DEXTER_API_TIMEOUT_MS      how long to wait for the scheduler (5000)
    DEXTER_SCHEDULER_ENDPOINT  the scheduler's ROUTER (tcp://127.0.0.1:5556) */
#include "api_http.h"
#include "api_loop.h"
#include "dx_config.h"
#include "dx_log.h"
#include "dx_util.h"

#include <czmq.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>

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
    const char *endpoint = dx_config_str ("SCHEDULER_ENDPOINT",
                                          DX_DEFAULT_SCHEDULER_ENDPOINT);
    int64_t threads = dx_config_int ("API_THREADS", 1, 1, 256, &ok);
    bad |= ok;
    int64_t timeout = dx_config_int ("API_TIMEOUT_MS", DX_DEFAULT_API_TIMEOUT_MS,
                                     1, 600000, &ok);
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
    if (!token && !api_http_is_loopback ((struct sockaddr *) &addr)) {
        dx_error ("refusing to listen on %s, which is not a loopback address, "
                  "without DEXTER_API_TOKEN: set a token (clients then send "
                  "'Authorization: Bearer <token>') or listen on 127.0.0.1",
                  addr_text);
        return 2;
    }

    /* SIGINT/SIGTERM are taken by sigwait below; every thread started from
       here on (MHD's, ZeroMQ's) inherits the mask and never sees them. */
    zsys_handler_set (NULL);
    signal (SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);

    /* The first loop binds; the others share its socket. */
    api_loop_t *loops [256] = { NULL };
    api_loop_config_t config = {
        .endpoint = endpoint, .timeout_ms = (int) timeout,
        .http = { .addr = (struct sockaddr *) &addr, .listen_fd = -1, .token = token }
    };
    int started = 1;
    for (int64_t i = 0; i < threads && started; i++) {
        loops [i] = api_loop_new (&config);
        started = loops [i] && api_loop_start (loops [i]) == 0;
        if (started)
            config.http.listen_fd = api_http_listen_fd (api_loop_http (loops [0]));
    }
    if (started) {
        char where [80];
        dx_info ("listening on http://%s", api_http_format ((struct sockaddr *) &addr,
                 api_http_port (api_loop_http (loops [0])), where, sizeof where));
        dx_info ("scheduler at %s, timeout %lld ms, %lld threads%s", endpoint,
                 (long long) timeout, (long long) threads,
                 token ? ", bearer token required" : "");
        int sig = 0;
        sigwait (&stop, &sig);
        dx_info ("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    }
    for (int64_t i = 0; i < threads; i++)
        api_loop_stop (loops [i]);
    for (int64_t i = threads - 1; i >= 0; i--)
        api_loop_destroy (&loops [i]);
    zsys_shutdown ();
    if (!started)
        return 1;
    dx_info ("stopped");
    return 0;
}
