/*  api_client: the api's side of the api -> scheduler hop (proto/PROTOCOL.md,
    "Transport"). One DEALER per calling thread, because ZeroMQ sockets are not
    thread-safe; each is made on first use and kept in a registry so that all
    of them are closed at shutdown, after the threads that used them stopped. */
#ifndef API_CLIENT_H
#define API_CLIENT_H

#include <jansson.h>

typedef struct api_client_t api_client_t;

/*  A client for the scheduler at endpoint, waiting timeout_ms per request.
    Connects nothing yet. NULL on failure. */
api_client_t *api_client_new (const char *endpoint, int timeout_ms);

/*  Closes every thread's socket. Call only when no thread uses the client
    any more. Safe on NULL; sets *self_p to NULL. */
void api_client_destroy (api_client_t **self_p);

/*  An api_call_fn (api_handler.h): sets request's `deadline` to now plus the
    timeout, sends it on the calling thread's socket and waits for the reply
    with its id, dropping replies to earlier, abandoned requests. When nothing
    comes back in time returns a made-up UNAVAILABLE reply saying so. Caller
    owns the result; NULL only when out of memory. self is an api_client_t. */
json_t *api_client_call (void *self, json_t *request);

#endif
