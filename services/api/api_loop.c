/*  api_loop: an event loop thread: HTTP daemon + DEALER + waiting requests. */
#include "api_loop.h"
#include "api_metrics.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <czmq.h>
#include <errno.h>
#include <sodium.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define API_LOOP_SNDHWM  1000   /* requests queued to the scheduler */
#define API_LOOP_TICK_MS 100    /* longest sleep: how soon a stop is seen */
#define API_LOOP_FLUSH   5      /* daemon runs after the last reply, on stop */
#define API_LOOP_REDIAL_MS 1000 /* next try at a DEALER: no scheduler key yet, or refused */

/*  A scheduler request: sent once, answering every waiter it has. */
typedef struct s_pending_t {
    struct s_pending_t *next_unsent;    /* the send queue, in order */
    json_t *request;                    /* owned; its id is the table's key */
    char *frame;                        /* the request encoded (owned, wiped) */
    size_t frame_len;
    bool sent;                          /* false: waits for the DEALER, or
                                           for the one before it (held) */
    bool held;                          /* waits for before's reply */
    char *key;                          /* shared: the request without its
                                           id (owned); NULL: not shared */
    struct s_pending_t *before, *after; /* shared: the one of the same key
                                           in flight, the one held for it */
    struct api_wait_t *waiters;         /* in arrival order, by mate */
} s_pending_t;

/*  One caller waiting for a reply (an HTTP request). */
struct api_wait_t {
    struct api_wait_t *prev, *next;     /* the wait queue, in deadline order */
    struct api_wait_t *mate;            /* the next waiter of its request */
    s_pending_t *pending;
    int64_t deadline;                   /* monotonic ms */
    api_reply_fn *fn;
    void *ctx;
};

struct api_loop_t {
    char *endpoint;
    int timeout_ms;
    api_http_t *http;                   /* takes new connections */
    zlistx_t *daemons;                  /* api_http_t: http first, then those
                                           api_loop_renew retired */
    zsock_t *control;                   /* api_loop_renew's end of the pipe */
    zsock_t *pipe;                      /* the loop's end */
    dx_curve_t *curve;                  /* the api's key pair (borrowed) */
    zsock_t *dealer;                    /* NULL until the next dial (s_dial) */
    void *handle;                       /* the DEALER's libzmq socket */
    zsock_t *watch;                     /* the DEALER's handshakes */
    int64_t redial;                     /* when to dial again without a DEALER */
    zhashx_t *pending;                  /* id -> s_pending_t (freed by
                                           s_pending_free) */
    zhashx_t *shared;                   /* key -> the newest s_pending_t of
                                           that key (not owned) */
    api_wait_t *head, *tail;            /* waiters, soonest deadline first */
    s_pending_t *unsent, *unsent_tail;  /* to send, in order (a held one
                                           joins when its turn comes) */
    pthread_t thread;
    bool started;
    atomic_bool stop;                   /* asked to stop (any thread) */
    bool stopping;                      /* the loop has seen it */
    /* What a turn polls: the pipe, the DEALER and its watch, then the
       daemons' sockets, which are distinct descriptors below FD_SETSIZE
       (a retired daemon no longer polls the listening socket). */
    zmq_pollitem_t items [3 + API_HTTP_ITEMS];
};

/*  Closes the DEALER, then its watch: a monitor left without its reader
    would block libzmq. */
static void
s_hang_up (api_loop_t *self)
{
    zsock_destroy (&self->dealer);
    zsock_destroy (&self->watch);
    self->handle = NULL;
}

/*  A new DEALER to the scheduler, a CurveZMQ client with the scheduler's
    key as it is now; the old one, if any, closed. Without that key yet
    there is none until the next try, API_LOOP_REDIAL_MS later: requests
    wait as for a scheduler that is down. No linger (a request nobody
    waits for must not be delivered late), immediate (never queue to a
    scheduler that is not connected: such a request waits here and is
    answered 503 at its deadline, never carried out later), sends that
    never block. 0, or -1 if it cannot be made (logged). */
static int
s_dial (api_loop_t *self)
{
    s_hang_up (self);
    self->redial = dx_mono_ms () + API_LOOP_REDIAL_MS;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return -1;
    zsock_set_linger (dealer, 0);
    zsock_set_immediate (dealer, 1);
    zsock_set_sndhwm (dealer, API_LOOP_SNDHWM);
    zsock_set_sndtimeo (dealer, 0);
    if (dx_curve_client_apply (self->curve, dealer)) {
        zsock_destroy (&dealer);
        return 0;
    }
    if (!(self->watch = dx_curve_client_watch (dealer))
    ||  zsock_connect (dealer, "%s", self->endpoint)) {
        dx_error ("cannot connect to the scheduler at %s", self->endpoint);
        zsock_destroy (&dealer);
        zsock_destroy (&self->watch);
        return -1;
    }
    self->dealer = dealer;
    self->handle = zsock_resolve (dealer);
    return 0;
}

api_loop_t *
api_loop_new (const api_loop_config_t *config)
{
    api_loop_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    atomic_init (&self->stop, false);
    self->timeout_ms = config->timeout_ms;
    self->curve = config->curve;
    self->endpoint = strdup (config->endpoint);
    self->pending = zhashx_new ();
    self->shared = zhashx_new ();
    self->daemons = zlistx_new ();
    self->control = zsys_create_pipe (&self->pipe);
    if (!self->endpoint || !self->pending || !self->shared || !self->daemons || !self->control)
        goto fail;
    zlistx_set_destructor (self->daemons, (czmq_destructor *) api_http_destroy);
    /* Keys are the requests' ids and keys, which live as long as their
       entries. */
    zhashx_set_key_duplicator (self->pending, NULL);
    zhashx_set_key_destructor (self->pending, NULL);
    zhashx_set_key_duplicator (self->shared, NULL);
    zhashx_set_key_destructor (self->shared, NULL);

    if (s_dial (self))
        goto fail;

    api_http_config_t http = config->http;
    http.loop = self;
    if (!(self->http = api_http_new (&http)))
        goto fail;
    zlistx_add_start (self->daemons, self->http);
    return self;
fail:
    api_loop_destroy (&self);
    return NULL;
}

/*  Appends p to the send queue. */
static void
s_unsent_add (api_loop_t *self, s_pending_t *p)
{
    p->next_unsent = NULL;
    if (self->unsent_tail)
        self->unsent_tail->next_unsent = p;
    else
        self->unsent = p;
    self->unsent_tail = p;
}

/*  Takes p out of the send queue, if it is there. */
static void
s_unsent_remove (api_loop_t *self, s_pending_t *p)
{
    s_pending_t *prev = NULL;
    for (s_pending_t *q = self->unsent; q; prev = q, q = q->next_unsent)
        if (q == p) {
            if (prev)
                prev->next_unsent = p->next_unsent;
            else
                self->unsent = p->next_unsent;
            if (self->unsent_tail == p)
                self->unsent_tail = prev;
            break;
        }
    p->next_unsent = NULL;
}

/*  Encodes p's request with a deadline of now plus the timeout, in place
    of its frame. 0, or -1 when the codec cannot carry it (the frame, if
    any, is kept). */
static int
s_encode (api_loop_t *self, s_pending_t *p)
{
    char *frame;
    size_t len;
    if (json_object_set_new (p->request, "deadline",
                             json_integer (dx_now_ms () + self->timeout_ms))
    ||  dx_msg_encode (p->request, &frame, &len))
        return -1;
    if (p->frame)
        sodium_memzero (p->frame, p->frame_len);    /* it may hold secrets */
    free (p->frame);
    p->frame = frame;
    p->frame_len = len;
    return 0;
}

/*  Forgets p, whose waiters are gone: out of the table and the send
    queue; the request held behind it (same key) may be sent now. */
static void
s_pending_free (api_loop_t *self, s_pending_t *p)
{
    if (!p->sent && !p->held)
        s_unsent_remove (self, p);
    if (p->key && zhashx_lookup (self->shared, p->key) == p)
        zhashx_delete (self->shared, p->key);
    if (p->before)
        p->before->after = NULL;
    if (p->after) {
        s_pending_t *next = p->after;
        next->before = NULL;
        next->held = false;
        /* Its deadline counts from now, since it could not go before
           (out of memory: the one it was made with) */
        s_encode (self, next);
        s_unsent_add (self, next);
    }
    zhashx_delete (self->pending, dx_msg_id (p->request));
    json_decref (p->request);
    if (p->frame)
        sodium_memzero (p->frame, p->frame_len);    /* it may hold secrets */
    free (p->frame);
    free (p->key);
    free (p);
}

/*  Takes w out of the wait queue and of its request's waiters, and frees
    it; the request goes when its last waiter does. */
static void
s_wait_free (api_loop_t *self, api_wait_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        self->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        self->tail = w->prev;
    s_pending_t *p = w->pending;
    api_wait_t **link = &p->waiters;
    while (*link != w)
        link = &(*link)->mate;
    *link = w->mate;
    free (w);
    if (!p->waiters)
        s_pending_free (self, p);
}

/*  Hands reply (stolen) to every waiter of p, each forgotten first, then
    forgets p. */
static void
s_complete (api_loop_t *self, s_pending_t *p, json_t *reply)
{
    while (p->waiters) {
        api_wait_t *w = p->waiters;
        api_reply_fn *fn = w->fn;
        void *ctx = w->ctx;
        bool last = !w->mate;
        s_wait_free (self, w);          /* the last frees p */
        fn (ctx, reply);
        if (last)
            break;
    }
    json_decref (reply);
}

/*  Sends p if the DEALER takes it now. 0 sent, -1 not (yet): the DEALER
    is full or not connected, which is the only way a send can fail, since
    p was encoded when it was queued. */
static int
s_send (api_loop_t *self, s_pending_t *p)
{
    int rc;
    do
        rc = zmq_send (self->handle, p->frame, p->frame_len, ZMQ_DONTWAIT);
    while (rc == -1 && errno == EINTR);
    if (rc == -1)
        return -1;
    p->sent = true;
    return 0;
}

/*  The key under which request is shared: its text without the id. NULL
    when out of memory. Caller frees. */
static char *
s_share_key (const json_t *request)
{
    json_t *copy = json_copy ((json_t *) request);
    char *key = copy && json_object_del (copy, "id") == 0
              ? json_dumps (copy, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref (copy);
    return key;
}

api_wait_t *
api_loop_send (api_loop_t *self, json_t *request, bool share,
               api_reply_fn *fn, void *ctx)
{
    api_wait_t *w = request ? calloc (1, sizeof *w) : NULL;
    const char *id = dx_msg_id (request);
    char *key = share && w && id ? s_share_key (request) : NULL;
    s_pending_t *newest = key ? zhashx_lookup (self->shared, key) : NULL;
    s_pending_t *p = newest && !newest->sent ? newest : NULL;
    if (p) {
        /* Joins the request of the same key not sent yet: its reply will
           be read after this request came, so it answers this one too. */
        free (key);
        json_decref (request);
    }
    else {
        p = w && id && (!share || key) ? calloc (1, sizeof *p) : NULL;
        if (p)
            p->request = request;
        //  Encoded now, so that a request the codec cannot carry is refused
        //  here instead of waiting at the head of the queue, in front of others
        if (!p || s_encode (self, p)) {
            free (p);
            free (key);
            free (w);
            json_decref (request);
            return NULL;
        }
        p->key = key;
        if (newest) {
            /* The one of the same key is in flight: this one goes when
               that is answered, for every request that joins it meanwhile */
            p->held = true;
            p->before = newest;
            newest->after = p;
        }
        else
            s_unsent_add (self, p);
        if (key) {
            /* Deleted first: an update would keep the old entry's key,
               which is freed with it */
            zhashx_delete (self->shared, key);
            zhashx_insert (self->shared, key, p);
        }
        zhashx_insert (self->pending, dx_msg_id (p->request), p);
    }
    w->pending = p;
    w->deadline = dx_mono_ms () + self->timeout_ms;
    w->fn = fn;
    w->ctx = ctx;
    api_wait_t **link = &p->waiters;
    while (*link)
        link = &(*link)->mate;
    *link = w;
    w->prev = self->tail;
    if (self->tail)
        self->tail->next = w;
    else
        self->head = w;
    self->tail = w;
    return w;                       /* sent with the turn's others (s_turn) */
}

void
api_loop_forget (api_loop_t *self, api_wait_t *wait)
{
    if (wait)
        s_wait_free (self, wait);
}

/*  Sends what waits for the DEALER, in order, as long as it takes them. */
static void
s_flush (api_loop_t *self)
{
    while (self->unsent && s_send (self, self->unsent) == 0) {
        s_pending_t *p = self->unsent;
        self->unsent = p->next_unsent;
        if (!self->unsent)
            self->unsent_tail = NULL;
        p->next_unsent = NULL;
    }
}

/*  The type of p's request, for log lines. */
static const char *
s_type_of (s_pending_t *p)
{
    const char *type = p ? dx_msg_type (p->request) : NULL;
    return type ? type : "?";
}

/*  Takes one message from the DEALER without waiting and hands it to the
    request it answers. 0 took one, -1 none was there. */
static int
s_receive (api_loop_t *self)
{
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    if (zmq_msg_recv (&msg, self->handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&msg);
        return errno == EINTR ? 0 : -1;
    }
    char err [DX_ERR_LEN] = "";
    json_t *reply = NULL;
    if (zmq_msg_more (&msg)) {
        snprintf (err, sizeof err, "expected 1 frame (message), got more");
        do {
            zmq_msg_close (&msg);
            zmq_msg_init (&msg);
        } while (zmq_msg_recv (&msg, self->handle, ZMQ_DONTWAIT) >= 0
              && zmq_msg_more (&msg));
    }
    else
        reply = dx_msg_decode (zmq_msg_data (&msg), zmq_msg_size (&msg),
                               err, sizeof err);
    if (reply) {
        s_pending_t *p = dx_msg_id (reply)
                       ? zhashx_lookup (self->pending, dx_msg_id (reply)) : NULL;
        if (p && p->sent)
            s_complete (self, p, reply);
        else {
            dx_debug ("dropped a late reply to an abandoned request");
            json_decref (reply);
        }
    }
    else {
        /* Malformed: if it answers one of ours at least, say so rather
           than wait. */
        json_t *envelope = err [0] && zmq_msg_size (&msg)
            ? dx_msg_decode_envelope (zmq_msg_data (&msg), zmq_msg_size (&msg), NULL, 0)
            : NULL;
        const char *id = dx_msg_id (envelope);
        s_pending_t *p = id ? zhashx_lookup (self->pending, id) : NULL;
        if (p && !p->sent)
            p = NULL;
        dx_error ("malformed reply from the scheduler to %s: %s", s_type_of (p), err);
        if (p)
            s_complete (self, p, dx_reply_error (p->request, DX_INTERNAL, NULL,
                        "the scheduler sent a malformed reply"));
        json_decref (envelope);
    }
    zmq_msg_close (&msg);
    return 0;
}

/*  Answers every waiter whose deadline has passed with a made-up
    UNAVAILABLE reply: "not carried out" when its request was never sent. */
static void
s_expire (api_loop_t *self, int64_t now)
{
    while (self->head && self->head->deadline <= now) {
        api_wait_t *w = self->head;
        s_pending_t *p = w->pending;
        json_t *reply;
        if (!p->sent) {
            dx_warn ("no scheduler to take %s within %d ms at %s",
                     s_type_of (p), self->timeout_ms, self->endpoint);
            reply = dx_reply_error (p->request, DX_UNAVAILABLE, NULL,
                                    "the scheduler did not answer within %d ms (no "
                                    "connection to it); the request was not carried out",
                                    self->timeout_ms);
        }
        else {
            dx_warn ("the scheduler did not answer %s within %d ms",
                     s_type_of (p), self->timeout_ms);
            reply = dx_reply_error (p->request, DX_UNAVAILABLE, NULL,
                                    "the scheduler did not answer within %d ms; the "
                                    "request may or may not have been carried out: "
                                    "GET to check", self->timeout_ms);
        }
        api_metrics_scheduler_timeout ();
        api_reply_fn *fn = w->fn;
        void *ctx = w->ctx;
        s_wait_free (self, w);
        fn (ctx, reply);
        json_decref (reply);
    }
}

/*  How long the next poll may sleep: until the daemon's next timeout, the
    soonest deadline, or a tick, whichever comes first. */
static long
s_timeout (api_loop_t *self, int64_t now)
{
    int64_t timeout = API_LOOP_TICK_MS;
    if (self->head && self->head->deadline - now < timeout)
        timeout = self->head->deadline - now;
    for (api_http_t *http = zlistx_first (self->daemons); http;
         http = zlistx_next (self->daemons)) {
        long due = api_http_timeout (http);
        if (due >= 0 && due < timeout)
            timeout = due;
    }
    return timeout < 0 ? 0 : (long) timeout;
}

/*  The sockets of every daemon, written into items; returns how many. */
static int
s_poll_items (api_loop_t *self, zmq_pollitem_t *items)
{
    int count = 0;
    for (api_http_t *http = zlistx_first (self->daemons); http;
         http = zlistx_next (self->daemons))
        count += api_http_poll_items (http, items + count);
    return count;
}

/*  Runs every daemon on the polled items (each finds its own sockets
    among them). */
static void
s_run_daemons (api_loop_t *self, const zmq_pollitem_t *items, int count)
{
    for (api_http_t *http = zlistx_first (self->daemons); http;
         http = zlistx_next (self->daemons))
        api_http_run (http, items, count);
}

/*  Takes the credentials api_loop_renew sent, makes the new daemon and
    says whether it did. */
static void
s_renew (api_loop_t *self)
{
    void *tls = NULL;
    if (zsock_recv (self->pipe, "p", &tls))
        return;
    api_http_t *fresh = api_http_renew (self->http, tls);
    if (fresh) {
        zlistx_add_start (self->daemons, fresh);
        self->http = fresh;
    }
    zsock_send (self->pipe, "i", fresh ? 0 : -1);
}

/*  Destroys the retired daemons that have no connection left. */
static void
s_reap (api_loop_t *self)
{
    for (api_http_t *http = zlistx_first (self->daemons); http;
         http = zlistx_next (self->daemons))
        if (http != self->http && api_http_connections (http) == 0) {
            zlistx_delete (self->daemons, zlistx_cursor (self->daemons));
            dx_debug ("an HTTP daemon replaced on reload closed its last connection");
        }
}

/*  One turn: wait for the DEALER or the daemon, run the daemon (which may
    queue many requests), send them, take every reply there is, expire,
    and send the answers of the requests that ended. Requests go out
    together after the daemon's run rather than one by one as they are
    made: the first send wakes libzmq's I/O thread, which would otherwise
    carry the first request alone and the scheduler wake for it alone;
    together they travel, and are read, in one wakeup. */
static void
s_turn (api_loop_t *self)
{
    zmq_pollitem_t *items = self->items;
    int own = 1;            /* the pipe, the DEALER and its watch */
    items [0] = (zmq_pollitem_t) { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 };
    if (self->dealer) {
        items [own++] = (zmq_pollitem_t) {
            self->handle, 0, (short) (ZMQ_POLLIN | (self->unsent ? ZMQ_POLLOUT : 0)), 0
        };
        items [own++] = (zmq_pollitem_t) { zsock_resolve (self->watch), 0, ZMQ_POLLIN, 0 };
    }
    int count = s_poll_items (self, items + own);
    long timeout = s_timeout (self, dx_mono_ms ());
    if (zmq_poll (items, own + count, timeout) < 0) {
        if (zmq_errno () != EINTR)
            dx_warn ("zmq_poll: %s", zmq_strerror (zmq_errno ()));
        for (int i = 0; i < own; i++)
            items [i].revents = 0;
        count = 0;          /* revents are not to be trusted */
    }
    s_run_daemons (self, items + own, count);
    if (self->unsent && self->dealer)
        s_flush (self);
    while (self->dealer && s_receive (self) == 0)
        ;
    s_expire (self, dx_mono_ms ());
    //  libzmq never tries a refused handshake again: the DEALER is made
    //  anew a while later, with the scheduler's key read again
    if (own == 3 && (items [2].revents & ZMQ_POLLIN)
    &&  dx_curve_client_refused (self->curve, self->watch))
        s_hang_up (self);
    if (!self->dealer && dx_mono_ms () >= self->redial)
        s_dial (self);
    for (api_http_t *http = zlistx_first (self->daemons); http;
         http = zlistx_next (self->daemons))
        api_http_answer (http);
    if (zlistx_size (self->daemons) > 1)
        s_reap (self);
    if (items [0].revents & ZMQ_POLLIN)
        s_renew (self);
}

/*  The thread: turns until stopped and drained. On a stop it takes no new
    connections and no new requests, but lets those in flight finish. */
static void *
s_run (void *arg)
{
    api_loop_t *self = arg;
    while (!self->stopping || self->head) {
        if (!self->stopping && atomic_load (&self->stop)) {
            self->stopping = true;
            api_http_quiesce (self->http);
        }
        s_turn (self);
    }
    for (int i = 0; i < API_LOOP_FLUSH; i++) {
        int count = s_poll_items (self, self->items);
        if (zmq_poll (self->items, count, 10) < 0)
            count = 0;
        s_run_daemons (self, self->items, count);
    }
    return NULL;
}

int
api_loop_start (api_loop_t *self)
{
    if (pthread_create (&self->thread, NULL, s_run, self))
        return -1;
    self->started = true;
    return 0;
}

void
api_loop_stop (api_loop_t *self)
{
    if (self)
        atomic_store (&self->stop, true);
}

void
api_loop_destroy (api_loop_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    api_loop_t *self = *self_p;
    if (self->started) {
        api_loop_stop (self);
        pthread_join (self->thread, NULL);
    }
    /* Drained when the thread ended; after a failed start only entries
       nobody waits for can be left. */
    zlistx_destroy (&self->daemons);
    while (self->head)
        s_wait_free (self, self->head);
    s_hang_up (self);
    zsock_destroy (&self->control);
    zsock_destroy (&self->pipe);
    zhashx_destroy (&self->pending);
    zhashx_destroy (&self->shared);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

int
api_loop_renew (api_loop_t *self, const struct api_tls_t *tls)
{
    int rc = -1;
    if (zsock_send (self->control, "p", tls) == 0)
        zsock_recv (self->control, "i", &rc);
    return rc;
}

api_http_t *
api_loop_http (api_loop_t *self)
{
    return self->http;
}

bool
api_loop_stopping (api_loop_t *self)
{
    return self->stopping;
}
