/*  sch_broker: the worker registry behind the second ROUTER. See
    sch_broker.h and proto/PROTOCOL.md, "Transport: scheduler ⇄ workers".

    For each message on the ROUTER:
      - undecodable: logged and dropped (a worker's decoder never sends one,
        so it is noise; answering it could feed a loop);
      - worker.ready: registers the identity (or refreshes it) and answers
        worker.welcome;
      - anything else from an identity the broker does not know: answered
        worker.reconnect so the worker announces itself again (the scheduler
        restarted, or the worker was expired while it was cut off), except
        worker.bye, which needs no answer;
      - from a known worker: counts as a sign of life, then goes through the
        dispatch table.
    The registry is a hash of workers keyed by the hex of their routing
    identity. A worker silent for SCH_BROKER_LIVENESS heartbeat intervals is
    forgotten at the next tick. */
#include "sch_broker.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <string.h>

#define SCH_BROKER_BURST 256            /* most messages handled per wakeup */

/*  One registered worker process (one DEALER). */
typedef struct {
    zframe_t *identity;                 /* routing identity */
    char *service;                      /* aws, azure, vpn */
    char *name;                         /* host:pid, for humans */
    size_t capacity;                    /* jobs at once */
    size_t active;                      /* jobs it says it runs */
    size_t assigned;                    /* jobs the engine gave it, not yet back */
    int64_t expiry;                     /* dx_mono_ms when it is dead */
} s_worker_t;

struct sch_broker {
    zsock_t *router;
    char *endpoint;                     /* as bound */
    int64_t heartbeat_ms, lease_ms;
    int64_t next_heartbeat;             /* dx_mono_ms */
    zhashx_t *workers;                  /* identity hex -> s_worker_t */
    sch_broker_events_t events;         /* the engine's callbacks, or zeros */
    void *events_arg;
    sch_wmetrics_t *metrics;            /* what the workers' heartbeats counted */
};

typedef void (s_broker_fn) (sch_broker_t *self, s_worker_t *worker, const json_t *msg);

/*  Frees a worker; the registry's destructor. */
static void
s_broker_worker_destroy (void **item_p)
{
    s_worker_t *worker = (s_worker_t *) *item_p;
    if (worker) {
        zframe_destroy (&worker->identity);
        free (worker->service);
        free (worker->name);
        free (worker);
        *item_p = NULL;
    }
}

/*  Sends msg (taken) to the worker at identity; a failure is logged only:
    a lost message is made up by the next heartbeat or announce. */
static void
s_broker_send (sch_broker_t *self, zframe_t *identity, json_t *msg)
{
    if (!msg || dx_msg_send (self->router, identity, msg))
        dx_debug ("broker: cannot send %s to a worker: %s",
                  msg? dx_msg_type (msg): "a message", zmq_strerror (zmq_errno ()));
    json_decref (msg);
}

/*  The number of job ids in a message's `active` array. */
static size_t
s_broker_active (const json_t *msg)
{
    return json_array_size (json_object_get (msg, "active"));
}

/*  A worker that reconnects (it heard nothing from us for 3 intervals, as
    after a stall of ours) comes back under a new identity, while the old
    one may still look alive from heartbeats queued before. The old one is
    the same process (same worker name and service): it is retired at once
    and silently, so that the jobs the new one lists are its own (the
    engine adopts jobs whose holder is gone) instead of going back to the
    queue when the old identity expires, to run twice at once. */
static void
s_broker_retire_twin (sch_broker_t *self, const s_worker_t *fresh)
{
    char *old = NULL;
    for (s_worker_t *worker = (s_worker_t *) zhashx_first (self->workers); worker;
         worker = (s_worker_t *) zhashx_next (self->workers))
        if (strcmp (worker->name, fresh->name) == 0
        &&  strcmp (worker->service, fresh->service) == 0) {
            old = strdup ((const char *) zhashx_cursor (self->workers));
            break;
        }
    if (old) {
        dx_info ("worker %s reconnected under a new identity; the old one is retired",
                 fresh->name);
        zhashx_delete (self->workers, old);
        free (old);
    }
}

/*  worker.ready: registers the identity, or refreshes what it said before,
    and welcomes it with the intervals both sides use. worker is NULL for
    an identity not registered yet; key is its registry key. */
static void
s_broker_ready (sch_broker_t *self, zframe_t *identity, const char *key, s_worker_t *worker,
                const json_t *msg)
{
    const char *service = dx_msg_str (msg, "service");
    const char *name = dx_msg_str (msg, "worker");
    char *service_copy = strdup (service);
    char *name_copy = strdup (name? name: key);
    int fresh = worker == NULL;
    if (fresh && service_copy && name_copy)
        worker = (s_worker_t *) calloc (1, sizeof *worker);
    if (worker && fresh)
        worker->identity = zframe_dup (identity);
    if (!worker || !worker->identity || !service_copy || !name_copy) {
        dx_error ("broker: out of memory registering a %s worker", service);
        free (service_copy);
        free (name_copy);
        if (fresh && worker) {
            zframe_destroy (&worker->identity);
            free (worker);
        }
        return;
    }
    free (worker->service);
    free (worker->name);
    worker->service = service_copy;
    worker->name = name_copy;
    worker->capacity = (size_t) dx_msg_int (msg, "capacity", 1);
    worker->active = s_broker_active (msg);
    worker->expiry = dx_mono_ms () + SCH_BROKER_LIVENESS * self->heartbeat_ms;
    if (fresh) {
        s_broker_retire_twin (self, worker);
        zhashx_insert (self->workers, key, worker);
        dx_info ("worker joined service=%s worker=%s capacity=%zu active=%zu",
                 worker->service, worker->name, worker->capacity, worker->active);
    }
    else
        dx_debug ("worker announced again service=%s worker=%s capacity=%zu active=%zu",
                  worker->service, worker->name, worker->capacity, worker->active);
    json_t *welcome = dx_msg_new ("worker.welcome", NULL);
    if (welcome) {
        json_object_set_new (welcome, "heartbeat_ms", json_integer (self->heartbeat_ms));
        json_object_set_new (welcome, "lease_ms", json_integer (self->lease_ms));
    }
    s_broker_send (self, identity, welcome);
    if (self->events.ready)
        self->events.ready (self->events_arg, key, worker->name, msg);
}

/*  heartbeat: being heard is the point; it also says which jobs run,
    and what the worker's process counted. */
static void
s_broker_heartbeat (sch_broker_t *self, s_worker_t *worker, const json_t *msg)
{
    worker->active = s_broker_active (msg);
    const json_t *metrics = json_object_get (msg, "metrics");
    if (metrics)
        sch_wmetrics_update (self->metrics, worker->name, metrics, dx_mono_ms ());
}

/*  worker.bye: a clean shutdown; its jobs go back to the queue and the
    worker is forgotten at once. */
static void
s_broker_bye (sch_broker_t *self, s_worker_t *worker, const json_t *msg)
{
    (void) msg;
    dx_info ("worker left service=%s worker=%s capacity=%zu", worker->service,
             worker->name, worker->capacity);
    char *key = zframe_strhex (worker->identity);
    if (key && self->events.gone)
        self->events.gone (self->events_arg, key, worker->name);
    if (key)
        zhashx_delete (self->workers, key);
    free (key);
}

/*  job.result, job.renew and job.progress: the engine's to judge (stale attempts are
    ignored there). */
static void
s_broker_job (sch_broker_t *self, s_worker_t *worker, const json_t *msg)
{
    char *key = zframe_strhex (worker->identity);
    if (key && self->events.job)
        self->events.job (self->events_arg, key, worker->name, msg);
    else
        dx_debug ("broker: ignoring %s of job %s attempt %lld from worker %s (no engine)",
                  dx_msg_type (msg), dx_msg_str (msg, "job"),
                  (long long) dx_msg_int (msg, "attempt", 0), worker->name);
    free (key);
}

/*  The dispatch table: what a registered worker may say, besides
    worker.ready (handled before, as it is the one message of a worker the
    broker does not know yet). */
static const struct {
    const char *type;
    s_broker_fn *handler;
} s_broker_handlers [] = {
    { "heartbeat",  s_broker_heartbeat },
    { "worker.bye", s_broker_bye },
    { "job.result", s_broker_job },
    { "job.renew",  s_broker_job },
    { "job.progress", s_broker_job },
};

/*  Handles one decoded message from identity (its registry key is key). */
static void
s_broker_handle (sch_broker_t *self, zframe_t *identity, const char *key, const json_t *msg)
{
    const char *type = dx_msg_type (msg);
    s_worker_t *worker = (s_worker_t *) zhashx_lookup (self->workers, key);
    if (strcmp (type, "worker.ready") == 0) {
        s_broker_ready (self, identity, key, worker, msg);
        return;
    }
    if (!worker) {
        if (strcmp (type, "worker.bye") == 0)
            dx_debug ("broker: worker.bye from unknown identity %s", key);
        else {
            dx_debug ("broker: %s from unknown identity %s; asking it to reconnect", type, key);
            //  A result queued before a restart of ours still counts: the
            //  engine matches it by job and attempt, whoever brings it
            if (strcmp (type, "job.result") == 0 && self->events.job)
                self->events.job (self->events_arg, key, NULL, msg);
            s_broker_send (self, identity, dx_msg_new ("worker.reconnect", NULL));
        }
        return;
    }
    worker->expiry = dx_mono_ms () + SCH_BROKER_LIVENESS * self->heartbeat_ms;
    for (size_t i = 0; i < sizeof s_broker_handlers / sizeof s_broker_handlers [0]; i++)
        if (strcmp (type, s_broker_handlers [i].type) == 0) {
            s_broker_handlers [i].handler (self, worker, msg);
            return;
        }
    dx_debug ("broker: ignoring a %s message from worker %s, which is not for the scheduler",
              type, worker->name);
}

/*  Reads one message from the ROUTER and handles it. */
static void
s_broker_receive_one (sch_broker_t *self)
{
    zframe_t *identity = NULL, *raw = NULL;
    char err [DX_ERR_LEN];
    json_t *msg = dx_msg_recv (self->router, &identity, &raw, err, sizeof err);
    char *key = identity? zframe_strhex (identity): NULL;
    if (!msg)
        dx_warn ("broker: dropped an undecodable message from %s: %s",
                 key? key: "an unknown peer", err);
    else
    if (key)
        s_broker_handle (self, identity, key, msg);
    json_decref (msg);
    free (key);
    zframe_destroy (&raw);
    zframe_destroy (&identity);
}

/*  Creates and binds the ROUTER, CurveZMQ's server for the workers link
    when curve is set. Linger 0 and no send timeout: a gone worker never
    holds up the scheduler; the size limit makes libzmq drop oversized
    frames before we see them. */
sch_broker_t *
sch_broker_new (const char *endpoint, int64_t heartbeat_ms, int64_t lease_ms,
                dx_curve_t *curve)
{
    if (!endpoint)
        return NULL;
    sch_broker_t *self = (sch_broker_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->heartbeat_ms = heartbeat_ms > 0? heartbeat_ms: SCH_BROKER_HEARTBEAT_MS;
    self->lease_ms = lease_ms > 0? lease_ms: SCH_BROKER_LEASE_MS;
    self->next_heartbeat = dx_mono_ms () + self->heartbeat_ms;
    self->workers = zhashx_new ();
    self->metrics = sch_wmetrics_new ();
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->workers || !self->metrics || !self->router) {
        dx_error ("broker: cannot create the workers' ROUTER: %s", zmq_strerror (zmq_errno ()));
        sch_broker_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->workers, s_broker_worker_destroy);
    zsock_set_linger (self->router, 0);
    zsock_set_maxmsgsize (self->router, (int64_t) DX_MSG_MAX_BYTES);
    zsock_set_sndtimeo (self->router, 0);
    if (curve && dx_curve_server_apply (curve, self->router, DX_CURVE_WORKERS)) {
        sch_broker_destroy (&self);
        return NULL;
    }
    if (zsock_bind (self->router, "%s", endpoint) == -1) {
        dx_error ("broker: cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        sch_broker_destroy (&self);
        return NULL;
    }
    const char *bound = zsock_endpoint (self->router);
    self->endpoint = strdup (bound? bound: endpoint);
    if (!self->endpoint)
        sch_broker_destroy (&self);
    return self;
}

sch_wmetrics_t *
sch_broker_metrics (sch_broker_t *self)
{
    return self->metrics;
}

/*  Closes the socket and forgets every worker; safe on NULL. */
void
sch_broker_destroy (sch_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_broker_t *self = *self_p;
    zsock_destroy (&self->router);
    zhashx_destroy (&self->workers);
    sch_wmetrics_destroy (&self->metrics);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

/*  The endpoint as bound, for logs and tests. */
const char *
sch_broker_endpoint (sch_broker_t *self)
{
    return self->endpoint;
}

/*  The ROUTER, for the scheduler's poller. */
zsock_t *
sch_broker_socket (sch_broker_t *self)
{
    return self->router;
}

/*  Handles every message waiting, up to SCH_BROKER_BURST, so a flood of
    workers never starves the api's requests. */
void
sch_broker_receive (sch_broker_t *self)
{
    for (int n = 0; n < SCH_BROKER_BURST; n++) {
        if (!(zsock_events (self->router) & ZMQ_POLLIN))
            break;
        s_broker_receive_one (self);
    }
}

/*  Heartbeats every worker when the interval is up (workers reconnect
    after 3 silent intervals, so the broker speaks even when it has nothing
    to say) and forgets the workers that missed SCH_BROKER_LIVENESS of
    theirs. Returns when it wants to run again. */
int64_t
sch_broker_tick (sch_broker_t *self)
{
    int64_t now = dx_mono_ms ();
    int beat = now >= self->next_heartbeat;
    if (beat)
        self->next_heartbeat = now + self->heartbeat_ms;
    int64_t next = self->next_heartbeat;
    zlist_t *dead = zlist_new ();
    if (dead)
        zlist_autofree (dead);          /* keys copied: deleting frees the originals */
    for (s_worker_t *worker = (s_worker_t *) zhashx_first (self->workers); worker;
         worker = (s_worker_t *) zhashx_next (self->workers)) {
        if (now >= worker->expiry) {
            dx_info ("worker expired service=%s worker=%s capacity=%zu: silent for %lld ms",
                     worker->service, worker->name, worker->capacity,
                     (long long) (SCH_BROKER_LIVENESS * self->heartbeat_ms));
            if (dead)
                zlist_append (dead, (void *) zhashx_cursor (self->workers));
            continue;
        }
        if (beat)
            s_broker_send (self, worker->identity, dx_msg_new ("heartbeat", NULL));
        if (worker->expiry < next)
            next = worker->expiry;
    }
    //  Deleted after the walk: the keys are the registry's own
    for (char *key = dead? (char *) zlist_pop (dead): NULL; key;
         key = (char *) zlist_pop (dead)) {
        s_worker_t *worker = (s_worker_t *) zhashx_lookup (self->workers, key);
        if (worker && self->events.gone)
            self->events.gone (self->events_arg, key, worker->name);
        zhashx_delete (self->workers, key);
        free (key);
    }
    zlist_destroy (&dead);
    return next;
}

/*  Live workers of service, and their total capacity. */
size_t
sch_broker_workers (sch_broker_t *self, const char *service, size_t *capacity)
{
    size_t count = 0, total = 0;
    int64_t now = dx_mono_ms ();        /* a worker past its expiry counts no more */
    for (s_worker_t *worker = (s_worker_t *) zhashx_first (self->workers); worker;
         worker = (s_worker_t *) zhashx_next (self->workers))
        if (service && now < worker->expiry && strcmp (worker->service, service) == 0) {
            count++;
            total += worker->capacity;
        }
    if (capacity)
        *capacity = total;
    return count;
}

void
sch_broker_set_events (sch_broker_t *self, const sch_broker_events_t *events, void *arg)
{
    if (events)
        self->events = *events;
    else
        memset (&self->events, 0, sizeof self->events);
    self->events_arg = arg;
}

/*  The least loaded live worker of service with room for one more job. */
const char *
sch_broker_pick (sch_broker_t *self, const char *service)
{
    const char *best = NULL;
    size_t best_room = 0;
    int64_t now = dx_mono_ms ();
    for (s_worker_t *worker = (s_worker_t *) zhashx_first (self->workers); worker;
         worker = (s_worker_t *) zhashx_next (self->workers)) {
        if (now >= worker->expiry || strcmp (worker->service, service) != 0
        ||  worker->assigned >= worker->capacity)
            continue;
        size_t room = worker->capacity - worker->assigned;
        if (room > best_room) {
            best_room = room;
            best = (const char *) zhashx_cursor (self->workers);
        }
    }
    return best;
}

int
sch_broker_send_to (sch_broker_t *self, const char *key, json_t *msg, int job)
{
    s_worker_t *worker = key? (s_worker_t *) zhashx_lookup (self->workers, key): NULL;
    if (!worker || !msg || dx_msg_send (self->router, worker->identity, msg)) {
        dx_debug ("broker: cannot send %s to worker %s", msg? dx_msg_type (msg): "a message",
                  worker? worker->name: key? key: "(none)");
        json_decref (msg);
        return -1;
    }
    json_decref (msg);
    if (job)
        worker->assigned++;
    return 0;
}

void
sch_broker_release (sch_broker_t *self, const char *key)
{
    s_worker_t *worker = key? (s_worker_t *) zhashx_lookup (self->workers, key): NULL;
    if (worker && worker->assigned > 0)
        worker->assigned--;
}

void
sch_broker_adopt (sch_broker_t *self, const char *key)
{
    s_worker_t *worker = key? (s_worker_t *) zhashx_lookup (self->workers, key): NULL;
    if (worker)
        worker->assigned++;
}

const char *
sch_broker_name (sch_broker_t *self, const char *key)
{
    s_worker_t *worker = key? (s_worker_t *) zhashx_lookup (self->workers, key): NULL;
    return worker? worker->name: NULL;
}
