/*  api_http: the HTTP side of the api. A libmicrohttpd daemon without a
    thread of its own, run by its api_loop; per request it checks the head
    (api_head) and the token, matches the route on the raw path, reads the
    query, collects the body (at most API_BODY_MAX), parses it and sends
    the one scheduler request that api_handler makes of it. While the reply
    is awaited the connection is suspended and nothing blocks; the reply
    resumes it with the JSON answer. One log line per request. A request
    must arrive whole within its deadline (api_deadline), and one client
    address may hold only so many connections.

    With TLS credentials (api_tls) the daemon speaks HTTPS only. New
    credentials take effect through a new daemon on the same socket
    (api_http_renew); the old one takes no new connection, closes each of
    its own after its answer and is destroyed once it has none left, so no
    connection is dropped. */
#ifndef API_HTTP_H
#define API_HTTP_H

#include <stdint.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <zmq.h>

typedef struct api_http_t api_http_t;
struct api_loop_t;
struct api_tls_t;

typedef struct {
    const struct sockaddr *addr;    /* where to listen (IPv4 or IPv6) */
    int listen_fd;                  /* or -1: share this bound socket instead */
    const char *token;              /* required bearer token, or NULL */
    const struct api_tls_t *tls;    /* HTTPS with these, or NULL for HTTP */
    struct api_loop_t *loop;        /* runs the daemon; sends to the scheduler */
    int64_t request_ms;             /* a request must be in (head and body)
                                       this long after its first byte */
    unsigned per_ip;                /* connections open at once from one
                                       client address, 0 for any number */
} api_http_config_t;

/*  Binds (or takes listen_fd) and makes the daemon. NULL on failure
    (logged). */
api_http_t *api_http_new (const api_http_config_t *config);

/*  A new daemon like self (token, loop, socket) serving HTTPS with tls
    (borrowed only during the call); self stops accepting, answers each of
    its connections' requests with "Connection: close", and hands the
    socket over: destroy it once api_http_connections says 0. NULL on
    failure (logged), self unchanged. */
api_http_t *api_http_renew (api_http_t *self, const struct api_tls_t *tls);

/*  The connections the daemon holds open. */
unsigned api_http_connections (api_http_t *self);

/*  Closes every connection and the daemon; closes the listening socket if
    it bound it. Call with no connection suspended (no reply awaited). Safe
    on NULL; sets *self_p to NULL. */
void api_http_destroy (api_http_t **self_p);

/*  The daemon's sockets, each with what it waits for (ZMQ_POLLIN,
    ZMQ_POLLOUT), written into items, which has room for API_HTTP_ITEMS;
    returns how many. To poll before api_http_run. */
#define API_HTTP_ITEMS FD_SETSIZE
int api_http_poll_items (api_http_t *self, zmq_pollitem_t *items);

/*  Milliseconds until the daemon must run even without I/O, -1 for no
    limit. */
long api_http_timeout (api_http_t *self);

/*  Does the I/O that the polled items (api_http_poll_items, with their
    revents) say is ready, and whatever is due without I/O (timeouts,
    resumed connections); gives memory back to the system after a large
    answer. Never waits. */
void api_http_run (api_http_t *self, const zmq_pollitem_t *items, int count);

/*  Sends the answers of the connections whose replies came since the
    last run, without waiting for a poll. */
void api_http_answer (api_http_t *self);

/*  Stops accepting connections (the listening socket stays open). */
void api_http_quiesce (api_http_t *self);

/*  The listening socket, to share with other daemons. */
int api_http_listen_fd (api_http_t *self);

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
