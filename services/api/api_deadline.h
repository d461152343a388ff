/*  api_deadline: the time one daemon gives each request to arrive whole,
    head and body. A client that sends too slowly is cut off: its socket is
    shut down, which libmicrohttpd then reads as the client leaving. So
    clients sending a byte at a time cannot hold the daemon's connections,
    which libmicrohttpd alone would keep as long as each byte comes before
    its idle timeout.

    A request's time runs from its first byte (for a connection's first
    request, from the connection's opening) until it is in. The time
    between requests on a kept-alive connection is not counted (the idle
    timeout bounds it), nor the wait for the scheduler once a request is
    in. Connections are known by their socket, below FD_SETSIZE (the daemon
    runs in select mode, which takes no other). */
#ifndef API_DEADLINE_H
#define API_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct api_deadline_t api_deadline_t;

/*  A request must be in within limit_ms. NULL when out of memory. */
api_deadline_t *api_deadline_new (int64_t limit_ms);

/*  Safe on NULL; sets *self_p to NULL. */
void api_deadline_destroy (api_deadline_t **self_p);

/*  A connection opened on fd at now: its first request's time runs. -1 if
    fd is not below FD_SETSIZE. */
int api_deadline_open (api_deadline_t *self, int fd, int64_t now);

/*  The connection on fd closed. */
void api_deadline_close (api_deadline_t *self, int fd);

/*  A request may have begun on fd at now (bytes came, or its request
    line): its time runs from now, unless it runs already or the
    connection's request is in. */
void api_deadline_start (api_deadline_t *self, int fd, int64_t now);

/*  fd's request is in: its time stops. */
void api_deadline_arrived (api_deadline_t *self, int fd);

/*  fd's request is over: the connection waits for its next request. */
void api_deadline_idle (api_deadline_t *self, int fd);

/*  Cuts off every connection whose request is still not in at now.
    Returns how many. */
int api_deadline_expire (api_deadline_t *self, int64_t now);

/*  Milliseconds from now until the next request is due, -1 for none. */
long api_deadline_timeout (api_deadline_t *self, int64_t now);

/*  true if the connection on fd was cut off. */
bool api_deadline_cut (api_deadline_t *self, int fd);

#endif
