/*  api_http: the HTTP side of the api. A libmicrohttpd daemon with a pool of
    threads; per request it checks the token, matches the route, reads the
    query, collects the body (at most API_BODY_MAX), parses it, runs the
    handler and writes the JSON answer, then logs one line. */
#ifndef API_HTTP_H
#define API_HTTP_H

#include <sys/socket.h>
#include "api_handler.h"

typedef struct api_http_t api_http_t;

typedef struct {
    const struct sockaddr *addr;    /* where to listen (IPv4 or IPv6) */
    const char *token;              /* required bearer token, or NULL */
    unsigned threads;               /* size of the thread pool */
    api_call_fn *call;              /* the scheduler */
    void *call_ctx;
} api_http_config_t;

/*  Binds and starts serving. NULL on failure (logged). */
api_http_t *api_http_new (const api_http_config_t *config);

/*  Stops serving: waits for the requests in flight, joins the threads.
    Safe on NULL; sets *self_p to NULL. */
void api_http_destroy (api_http_t **self_p);

/*  The port the daemon listens on (useful when asked for port 0). */
unsigned api_http_port (api_http_t *self);

/*  Resolves "HOST:PORT" or "[V6]:PORT" (HOST numeric or a name such as
    localhost) into addr. 0, or -1 with a sentence in err. */
int api_http_resolve (const char *text, struct sockaddr_storage *addr,
                      socklen_t *addr_len, char *err, size_t errlen);

/*  1 if addr is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z). */
int api_http_is_loopback (const struct sockaddr *addr);

/*  Writes "HOST:PORT" ("[V6]:PORT" for IPv6) of addr with port into buf. */
char *api_http_format (const struct sockaddr *addr, unsigned port,
                       char *buf, size_t size);

#endif
