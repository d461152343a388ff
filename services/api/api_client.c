/*  api_client: per-thread DEALER sockets to the scheduler, with deadlines. */
#include "api_client.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <czmq.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define API_CLIENT_SNDHWM 100

typedef struct {
    pthread_t thread;
    zsock_t *sock;
} s_entry_t;

struct api_client_t {
    char *endpoint;
    int timeout_ms;
    pthread_mutex_t lock;       /* guards entries */
    s_entry_t *entries;
    size_t count, size;
};

api_client_t *
api_client_new (const char *endpoint, int timeout_ms)
{
    api_client_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->endpoint = strdup (endpoint);
    self->timeout_ms = timeout_ms;
    if (!self->endpoint || pthread_mutex_init (&self->lock, NULL)) {
        free (self->endpoint);
        free (self);
        return NULL;
    }
    return self;
}

void
api_client_destroy (api_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    api_client_t *self = *self_p;
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < self->count; i++)
        zsock_destroy (&self->entries [i].sock);
    pthread_mutex_unlock (&self->lock);
    pthread_mutex_destroy (&self->lock);
    free (self->entries);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

/*  The calling thread's DEALER, made and connected on first use. Options:
    no linger (nothing to flush at exit: a request nobody waits for must not
    be delivered late), immediate (never queue to a scheduler that is not
    connected: such a send fails and we answer 503 at once rather than have
    it carried out later), a small send queue. NULL on failure. */
static zsock_t *
s_socket (api_client_t *self)
{
    pthread_t me = pthread_self ();
    zsock_t *sock = NULL;
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < self->count && !sock; i++)
        if (pthread_equal (self->entries [i].thread, me))
            sock = self->entries [i].sock;
    if (!sock && self->count == self->size) {
        size_t size = self->size ? self->size * 2 : 8;
        s_entry_t *entries = realloc (self->entries, size * sizeof *entries);
        if (!entries)
            goto done;
        self->entries = entries;
        self->size = size;
    }
    if (!sock) {
        sock = zsock_new (ZMQ_DEALER);
        if (!sock)
            goto done;
        zsock_set_linger (sock, 0);
        zsock_set_immediate (sock, 1);
        zsock_set_sndhwm (sock, API_CLIENT_SNDHWM);
        if (zsock_connect (sock, "%s", self->endpoint)) {
            dx_error ("cannot connect to the scheduler at %s", self->endpoint);
            zsock_destroy (&sock);
            goto done;
        }
        self->entries [self->count].thread = me;
        self->entries [self->count].sock = sock;
        self->count++;
    }
done:
    pthread_mutex_unlock (&self->lock);
    return sock;
}

/*  Waits until sock is ready for events, at most until the monotonic time
    deadline. 1 ready, 0 timed out, -1 error. */
static int
s_wait (zsock_t *sock, short events, int64_t deadline)
{
    while (1) {
        int64_t left = deadline - dx_mono_ms ();
        if (left < 0)
            left = 0;
        zmq_pollitem_t item = { zsock_resolve (sock), 0, events, 0 };
        int rc = zmq_poll (&item, 1, (long) left);
        if (rc > 0)
            return 1;
        if (rc == 0)
            return 0;
        if (zmq_errno () != EINTR)
            return -1;
        if (left == 0)
            return 0;
    }
}

json_t *
api_client_call (void *self_, json_t *request)
{
    api_client_t *self = self_;
    const char *id = dx_msg_id (request);
    const char *type = dx_msg_type (request);
    zsock_t *sock = s_socket (self);
    if (!sock)
        return dx_reply_error (request, DX_INTERNAL, NULL,
                               "the api could not open a socket to the scheduler");

    int64_t deadline = dx_mono_ms () + self->timeout_ms;
    json_object_set_new (request, "deadline",
                         json_integer (dx_now_ms () + self->timeout_ms));

    /* A send blocks (here: until the deadline) while no scheduler is
       connected or its queue is full; then nothing was sent at all. */
    int ready = s_wait (sock, ZMQ_POLLOUT, deadline);
    int64_t left = deadline - dx_mono_ms ();
    zsock_set_sndtimeo (sock, (int) (left > 0 ? left : 0));
    if (ready != 1 || dx_msg_send (sock, NULL, request)) {
        dx_warn ("no scheduler to take %s within %d ms at %s",
                 type ? type : "?", self->timeout_ms, self->endpoint);
        return dx_reply_error (request, DX_UNAVAILABLE, NULL,
                               "the scheduler did not answer within %d ms (no "
                               "connection to it); the request was not carried out",
                               self->timeout_ms);
    }
    while (s_wait (sock, ZMQ_POLLIN, deadline) == 1) {
        char err [DX_ERR_LEN];
        zframe_t *raw = NULL;
        json_t *reply = dx_msg_recv (sock, NULL, &raw, err, sizeof err);
        if (reply) {
            const char *reply_id = dx_msg_id (reply);
            zframe_destroy (&raw);
            if (reply_id && id && strcmp (reply_id, id) == 0)
                return reply;
            dx_debug ("dropped a late reply to an abandoned request");
            json_decref (reply);
            continue;
        }
        /* Malformed: if it is ours at least, say so rather than wait. */
        json_t *envelope = raw ? dx_msg_decode_envelope (zframe_data (raw),
                                                         zframe_size (raw), NULL, 0)
                               : NULL;
        zframe_destroy (&raw);
        int ours = envelope && id && dx_msg_id (envelope)
                && strcmp (dx_msg_id (envelope), id) == 0;
        json_decref (envelope);
        dx_error ("malformed reply from the scheduler to %s: %s",
                  type ? type : "?", err);
        if (ours)
            return dx_reply_error (request, DX_INTERNAL, NULL,
                                   "the scheduler sent a malformed reply");
    }
    dx_warn ("the scheduler did not answer %s within %d ms",
             type ? type : "?", self->timeout_ms);
    return dx_reply_error (request, DX_UNAVAILABLE, NULL,
                           "the scheduler did not answer within %d ms; the request "
                           "may or may not have been carried out: GET to check",
                           self->timeout_ms);
}
