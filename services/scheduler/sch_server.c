/*  sch_server: the request loop and the dispatch table. See sch_server.h.

    The loop serves bursts: when the ROUTER is readable it takes every
    message already waiting (up to SCH_BURST). Reads are queued and the
    reads of consecutive read requests share one pipelined Redis round
    trip; a change first flushes the reads queued before it, then runs
    alone, read-modify-write, exactly as if requests came one at a time.
    So Redis sees the effects in request order, and the loop sleeps once
    per burst, not once per request.

    A list of clusters may be too long to read in one turn: cluster.list
    requests wait in line, and each turn gives the list being built
    (sch_list) a few milliseconds, between bursts, so that no request waits
    for a whole list; a message on the ROUTER ends the lists' share after
    the slice under way (one Redis round trip), so a GET waits for one
    slice at most. While lists wait, the loop does not sleep.

    For each message on the ROUTER:
      - undecodable: answered INVALID (with the decoder's sentence) when its
        envelope still gives an id, else logged and dropped;
      - past its deadline: dropped (the api has answered 503 already and
        must not see the change happen later), logged at debug;
      - otherwise validated (cluster and group names become Redis keys, so
        they are checked here too), dispatched, answered, and logged at
        debug with type, cluster, status and duration in microseconds.
    Secret values the request carried are wiped from memory once handled. */
#include "sch_server.h"
#include "sch_handlers.h"
#include "sch_health.h"
#include "sch_list.h"
#include "sch_metrics.h"
#include "sch_vpn.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_spec.h"
#include "dx_util.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#define SCH_TICK_MS 1000

#define SCH_BURST   256          /* most messages served per wakeup */
#define S_LIST_MS   5            /* time given to lists per turn */

/*  A row of the dispatch table: a change, a read in two halves
    (sch_handlers.h), a load of the request's cluster (the parts `load`,
    SCH_LOAD_*) and the handler that answers from it, or the list, read in
    slices (sch_list.h). A pure load's answer
    depends on nothing but those parts and the request's name and group,
    so its text is kept beside the kept read (sch_read_memo) and served
    again from there. */
typedef struct {
    const char *type;
    sch_change_fn *change;
    sch_queue_fn *queue;
    sch_reply_fn *reply;
    sch_loaded_fn *loaded;
    sch_change_fn *now;         /* answered at once, without Redis */
    sch_defer_fn *defer;        /* a change answered later (sch_vpn) */
    unsigned load;
    bool pure;
    bool list;
} s_handler_t;

/*  The parts cluster.get shows. */
#define S_CLUSTER_PARTS (SCH_LOAD_CONFIG | SCH_LOAD_GROUPS | SCH_LOAD_DEPLOYMENT)

/*  The dispatch table: one row per request type of proto/PROTOCOL.md. */
static const s_handler_t s_server_handlers [] = {
    { "cluster.list",      .list = true },
    { "cluster.create",    .change = sch_cluster_create },
    { "cluster.get",       .loaded = sch_cluster_get, .load = S_CLUSTER_PARTS, .pure = true },
    { "cluster.delete",    .change = sch_cluster_delete },
    { "config.get",        .loaded = sch_config_get, .load = SCH_LOAD_CONFIG, .pure = true },
    { "config.put",        .change = sch_config_put },
    { "config.delete",     .change = sch_config_delete },
    { "group.list",        .loaded = sch_group_list, .load = SCH_LOAD_GROUPS, .pure = true },
    { "group.upsert",      .change = sch_group_upsert },
    { "group.get",         .loaded = sch_group_get, .load = SCH_LOAD_GROUPS, .pure = true },
    { "group.update",      .change = sch_group_update },
    { "group.delete",      .change = sch_group_delete },
    { "deployment.get",    .loaded = sch_deployment_get, .load = SCH_LOAD_DEPLOYMENT },
    { "deployment.put",    .change = sch_deployment_put },
    { "deployment.delete", .change = sch_deployment_delete },
    { "deployment.vpn",    .loaded = sch_deployment_vpn,
                           .load = SCH_LOAD_DEPLOYMENT | SCH_LOAD_RESOURCES },
    { "deployment.events", .queue = sch_deployment_events_queue,
                           .reply = sch_deployment_events_reply },
    { "vpnuser.list",      .loaded = sch_vpn_user_list,
                           .load = SCH_LOAD_DEPLOYMENT | SCH_LOAD_RESOURCES },
    { "vpnuser.add",       .defer = sch_vpn_user_add },
    { "vpnuser.revoke",    .defer = sch_vpn_user_revoke },
    { "health.get",        .now = sch_health_get },
    { "metrics.get",       .change = sch_metrics_get },
};

/*  A read waiting for the flush of its burst; owns its message. */
typedef struct {
    zframe_t *identity, *raw;
    json_t *request;
    const s_handler_t *row;
    int ticket;
    int64_t start;              /* s_server_usecs when it was read */
} s_pending_t;

struct sch_server {
    zsock_t *router;
    char *endpoint;             /* as bound */
    sch_ctx_t ctx;              /* what handlers use */
    s_pending_t pending [SCH_BURST];
    size_t npending;
    zlistx_t *waiting;          /* s_pending_t: lists not begun, in order */
    sch_list_t *list;           /* the list being built, or NULL */
    zlistx_t *served;           /* s_pending_t: the requests it answers */
};

/*  INVALID reply if a cluster or group name the request carries is not a
    name (dx_spec_name_valid): they are spliced into Redis keys ({NAME} is
    a hash tag), so the scheduler checks them whatever the api did. */
static json_t *
s_server_check_names (const json_t *request)
{
    static const char *fields [] = { "name", "group" };
    for (size_t i = 0; i < 2; i++) {
        const json_t *value = json_object_get (request, fields [i]);
        if (value && !dx_spec_name_valid (json_string_value (value)))
            return dx_reply_error (request, DX_INVALID, "name",
                                   "%s name must start with a lowercase letter and hold only "
                                   "lowercase letters and digits, at most %d",
                                   i? "group": "cluster", DX_NAME_MAX);
    }
    //  Requests for one cluster must say which
    const char *type = dx_msg_type (request);
    if (strcmp (type, "cluster.list") && strcmp (type, "cluster.create")
    &&  strcmp (type, "health.get") && strcmp (type, "metrics.get")
    &&  !json_is_string (json_object_get (request, "name")))
        return dx_reply_error (request, DX_INVALID, "name", "the cluster name is missing");
    return NULL;
}

/*  The row of the dispatch table for type, NULL if there is none. */
static const s_handler_t *
s_server_lookup (const char *type)
{
    for (size_t i = 0; type && i < sizeof s_server_handlers / sizeof s_server_handlers [0]; i++)
        if (strcmp (type, s_server_handlers [i].type) == 0)
            return &s_server_handlers [i];
    return NULL;
}

/*  First step of every request: the reply when it is known without Redis
    (unknown type, bad name, a read's own check), else NULL with *row_p
    set and, for a read, its reads queued under *ticket. */
static json_t *
s_server_start (sch_server_t *self, const json_t *request, const s_handler_t **row_p,
                int *ticket)
{
    const char *type = dx_msg_type (request);
    const s_handler_t *row = s_server_lookup (type);
    *row_p = row;
    *ticket = -1;
    if (!row)
        return dx_reply_error (request, DX_INVALID, NULL,
                               "the scheduler does not serve '%.64s' messages",
                               type? type: "untyped");
    json_t *reply = s_server_check_names (request);
    if (!reply && row->now)
        reply = row->now (&self->ctx, request);
    else
    if (!reply && row->list)
        reply = sch_list_check (request);
    else
    if (!reply && !row->change && !row->defer)
        reply = row->queue? row->queue (&self->ctx, request, ticket)
                          : sch_queue_cluster (&self->ctx, request, row->load, ticket);
    return reply;
}

/*  The second half of a read, once its reads were flushed: the reply of
    the row's handler. */
static json_t *
s_server_reply (sch_server_t *self, const s_handler_t *row, const json_t *request,
                int ticket)
{
    if (row->reply)
        return row->reply (&self->ctx, request, ticket);
    json_t *reply;
    json_t *loaded = sch_loaded_cluster (&self->ctx, request, ticket, &reply);
    if (loaded) {
        reply = row->loaded (&self->ctx, request, loaded);
        json_decref (loaded);
    }
    return reply;
}

/*  A reply for sure: NULL (out of memory) becomes INTERNAL. */
static json_t *
s_server_sure (const json_t *request, json_t *reply)
{
    if (!reply) {
        const char *type = dx_msg_type (request);
        dx_error ("no reply to %s (out of memory?)", type? type: "a message");
        reply = dx_reply_error (request, DX_INTERNAL, NULL, "the scheduler could not "
                                "build a reply");
    }
    return reply;
}

/*  Dispatches one decoded request through the table and answers it alone
    (a read is queued, flushed and built at once); never returns NULL, so
    every request gets an answer. */
json_t *
sch_server_handle (sch_server_t *self, const json_t *request)
{
    const s_handler_t *row;
    int ticket;
    json_t *reply = s_server_start (self, request, &row, &ticket);
    if (!reply && row->change)
        reply = row->change (&self->ctx, request);
    else
    if (!reply && row->defer) {
        //  No one to answer later: the reply says it was taken
        reply = row->defer (&self->ctx, request, NULL);
        if (!reply)
            reply = dx_reply_new (request, DX_ACCEPTED, json_pack ("{s:b}", "queued", 1));
    }
    else
    if (!reply && row->list) {
        sch_list_t *list = sch_list_new (self->ctx.store, request);
        while (list && sch_list_build (list, INT64_MAX) == 0)
            ;
        reply = list? sch_list_reply (list, request): NULL;
        sch_list_destroy (&list);
    }
    else
    if (!reply) {
        if (sch_read_flush (self->ctx.read))
            reply = sch_store_error_reply (self->ctx.store, request);
        else
            reply = s_server_reply (self, row, request, ticket);
        sch_read_reset (self->ctx.read);
    }
    return s_server_sure (request, reply);
}

/*  Microseconds of a monotonic clock, for request durations. */
static int64_t
s_server_usecs (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*  Answers a message the decoder refused, when its envelope yields an id. */
static void
s_server_refuse (sch_server_t *self, zframe_t *identity, zframe_t *raw, const char *err)
{
    json_t *envelope = raw? dx_msg_decode_envelope (zframe_data (raw), zframe_size (raw),
                                                    NULL, 0): NULL;
    const char *type = dx_msg_type (envelope);
    if (envelope && identity && type && strcmp (type, "reply") != 0) {
        json_t *reply = dx_reply_error (envelope, DX_INVALID, NULL, "%s", err);
        if (!reply || dx_msg_send (self->router, identity, reply))
            dx_warn ("cannot send the INVALID reply to a malformed %.64s", type);
        json_decref (reply);
        dx_debug ("request type=%.64s status=INVALID: %s", type, err);
    }
    else
        dx_warn ("dropped an undecodable message: %s", err);
    sch_wipe (json_object_get (envelope, "fields"));
    json_decref (envelope);
}

/*  Sends reply (taken) to identity and logs the request at debug. */
static void
s_server_answer (sch_server_t *self, zframe_t *identity, const json_t *request,
                 json_t *reply, int64_t start)
{
    const char *type = dx_msg_type (request);
    const char *name = dx_msg_str (request, "name");
    reply = s_server_sure (request, reply);
    if (dx_msg_send (self->router, identity, reply))
        dx_warn ("cannot send the reply to %s: %s", type, zmq_strerror (zmq_errno ()));
    dx_debug ("request type=%s name=%s status=%s us=%lld", type,
              name? name: "-", dx_msg_str (reply, "status"),
              (long long) (s_server_usecs () - start));
    json_decref (reply);
}

/*  Frees what one message held, wiping its secrets first: the fields of
    a config or a deployment (the only strings of a request that are). */
static void
s_server_release (zframe_t **identity_p, zframe_t **raw_p, json_t **request_p)
{
    if (*request_p) {
        sch_wipe (json_object_get (*request_p, "fields"));
        json_decref (*request_p);
        *request_p = NULL;
    }
    if (*raw_p)                         /* the wire bytes held secrets too */
        sodium_memzero (zframe_data (*raw_p), zframe_size (*raw_p));
    zframe_destroy (raw_p);
    zframe_destroy (identity_p);
}

/*  The reply to a queued read: for a pure load that asks for text, the
    text kept beside its kept read when there is one, else the handler's
    reply, whose text is then kept. */
static json_t *
s_server_read_reply (sch_server_t *self, s_pending_t *read)
{
    const json_t *request = read->request;
    char key [64] = "";
    if (read->row->pure && dx_msg_bool (request, "text", 0)) {
        const char *group = dx_msg_str (request, "group");
        snprintf (key, sizeof key, "%s/%s", read->row->type, group? group: "");
        json_t *text = sch_read_memo (self->ctx.read, read->ticket, key);
        json_t *reply = text? dx_reply_new (request, DX_OK, NULL): NULL;
        if (reply && json_object_set (reply, "text", text) == 0)
            return reply;
        json_decref (reply);
    }
    json_t *reply = s_server_reply (self, read->row, request, read->ticket);
    json_t *text = json_object_get (reply, "text");
    if (key [0] && text && streq (dx_msg_str (reply, "status"), DX_OK))
        sch_read_memo_put (self->ctx.read, read->ticket, key, text);
    return reply;
}

/*  Serves the queued reads: one round trip for all of them, then each
    reply built and sent. Redis down: every one gets the store's error. */
static void
s_server_flush (sch_server_t *self)
{
    if (self->npending == 0)
        return;
    int failed = sch_read_flush (self->ctx.read);
    for (size_t i = 0; i < self->npending; i++) {
        s_pending_t *read = &self->pending [i];
        json_t *reply = failed? sch_store_error_reply (self->ctx.store, read->request)
                              : s_server_read_reply (self, read);
        s_server_answer (self, read->identity, read->request, reply, read->start);
        s_server_release (&read->identity, &read->raw, &read->request);
    }
    self->npending = 0;
    sch_read_reset (self->ctx.read);
}

/*  Reads one message from the ROUTER and answers it, or queues it when it
    is a read (answered by the next s_server_flush). A change first
    flushes the reads queued before it, then runs alone. 0 took one, -1
    none was waiting (the ROUTER never blocks: ZMQ_RCVTIMEO 0). */
static int
s_server_take (sch_server_t *self)
{
    zframe_t *identity = NULL, *raw = NULL;
    char err [DX_ERR_LEN];
    int64_t start = s_server_usecs ();
    json_t *request = dx_msg_recv (self->router, &identity, &raw, err, sizeof err);
    if (!request && !identity && !raw && (errno == EAGAIN || errno == EINTR))
        return -1;
    if (!request)
        s_server_refuse (self, identity, raw, err);
    else {
        const char *type = dx_msg_type (request);
        const char *name = dx_msg_str (request, "name");
        json_int_t deadline = dx_msg_int (request, "deadline", 0);
        int64_t now = dx_now_ms ();
        if (strcmp (type, "reply") == 0)
            dx_debug ("dropped a reply sent to the scheduler (id %s)", dx_msg_id (request));
        else
        if (deadline < now)
            dx_debug ("request type=%s name=%s dropped: its deadline passed %lld ms ago",
                      type, name? name: "-", (long long) (now - deadline));
        else {
            const s_handler_t *row;
            int ticket;
            json_t *reply = s_server_start (self, request, &row, &ticket);
            if (!reply && row->list) {
                //  Waits for its turn (s_server_lists), which owns it now
                s_pending_t *list = (s_pending_t *) calloc (1, sizeof *list);
                if (list && zlistx_add_end (self->waiting, list)) {
                    *list = (s_pending_t) { identity, raw, request, row, -1, start };
                    return 0;
                }
                free (list);
                reply = dx_reply_error (request, DX_INTERNAL, NULL, "out of memory");
            }
            else
            if (!reply && !row->change && !row->defer) {
                //  A read: kept until the flush, which owns it from now on
                assert (self->npending < SCH_BURST);
                s_pending_t *read = &self->pending [self->npending++];
                read->identity = identity;
                read->raw = raw;
                read->request = request;
                read->row = row;
                read->ticket = ticket;
                read->start = start;
                return 0;
            }
            if (!reply && row->defer) {
                //  Kept until sch_vpn answers it (s_server_later), which owns it now
                s_pending_t *later = (s_pending_t *) calloc (1, sizeof *later);
                if (later) {
                    *later = (s_pending_t) { identity, raw, request, row, -1, start };
                    s_server_flush (self);
                    reply = row->defer (&self->ctx, request, later);
                    if (!reply)
                        return 0;
                    *later = (s_pending_t) { 0 };
                    free (later);
                }
                else
                    reply = dx_reply_error (request, DX_INTERNAL, NULL, "out of memory");
            }
            else
            if (!reply) {
                s_server_flush (self);
                reply = row->change (&self->ctx, request);
            }
            s_server_answer (self, identity, request, reply, start);
        }
    }
    s_server_release (&identity, &raw, &request);
    return 0;
}

/*  Frees a list request that waited (a zlistx destructor). */
static void
s_server_list_free (void **item_p)
{
    s_pending_t *list = (s_pending_t *) *item_p;
    if (list) {
        s_server_release (&list->identity, &list->raw, &list->request);
        free (list);
        *item_p = NULL;
    }
}

/*  sch_vpn's answer to a request it kept (an s_pending_t): sent, or, with
    reply NULL, dropped; the request is freed. */
static void
s_server_later (void *arg, void *waiter, json_t *reply)
{
    sch_server_t *self = (sch_server_t *) arg;
    s_pending_t *later = (s_pending_t *) waiter;
    if (!later) {
        json_decref (reply);
        return;
    }
    if (reply)
        s_server_answer (self, later->identity, later->request, reply, later->start);
    s_server_list_free ((void **) &later);
}

/*  Begins the next list: the one the first request waiting asks for
    (those past their deadline are dropped: the api has answered 503),
    serving every request waiting for the same page. 0, or -1 when none
    waits. */
static int
s_server_list_begin (sch_server_t *self)
{
    s_pending_t *first;
    while ((first = (s_pending_t *) zlistx_first (self->waiting))
    &&     dx_msg_int (first->request, "deadline", 0) < dx_now_ms ()) {
        dx_debug ("request type=cluster.list dropped: its deadline passed while it waited");
        zlistx_delete (self->waiting, NULL);
    }
    if (!first)
        return -1;
    self->list = sch_list_new (self->ctx.store, first->request);
    if (!self->list) {
        s_server_answer (self, first->identity, first->request, NULL, first->start);
        zlistx_delete (self->waiting, NULL);
        return -1;
    }
    for (s_pending_t *list = (s_pending_t *) zlistx_first (self->waiting); list;
         list = (s_pending_t *) zlistx_next (self->waiting))
        if (sch_list_serves (self->list, list->request))
            zlistx_add_end (self->served, zlistx_detach_cur (self->waiting));
    return 0;
}

/*  1 if a message waits on the ROUTER. */
static int
s_server_readable (sch_server_t *self)
{
    return (zsock_events (self->router) & ZMQ_POLLIN) != 0;
}

/*  Gives the lists their time until `until`, a slice at a time: reads the
    list being built, answers the requests it serves once it is complete,
    and begins the next one, for as long as time remains and no request
    waits on the ROUTER: a GET that comes during a list is read after the
    slice under way, not after the lists' whole share of the turn. */
static void
s_server_lists (sch_server_t *self, int64_t until)
{
    while (self->list || s_server_list_begin (self) == 0) {
        int built;
        do
            built = sch_list_build (self->list, 0);
        while (built == 0 && dx_mono_ms () < until && !s_server_readable (self));
        if (built == 0)
            return;
        s_pending_t *list;
        while ((list = (s_pending_t *) zlistx_first (self->served))) {
            s_server_answer (self, list->identity, list->request,
                             sch_list_reply (self->list, list->request), list->start);
            zlistx_delete (self->served, NULL);
            if (dx_mono_ms () >= until)
                return;
        }
        sch_list_destroy (&self->list);
        if (dx_mono_ms () >= until || s_server_readable (self))
            return;
    }
}

/*  Serves a burst: every message already waiting on the ROUTER, up to
    SCH_BURST, so that consecutive reads share one Redis round trip and the
    loop sleeps once per burst rather than once per request. Receiving
    until there is none looks at libzmq's mailbox once per burst, where
    asking ZMQ_EVENTS first would look once per message. Then the lists
    have their time. */
void
sch_server_receive (sch_server_t *self)
{
    for (int n = 0; n < SCH_BURST; n++)
        if (s_server_take (self))
            break;
    s_server_flush (self);
    s_server_lists (self, dx_mono_ms () + S_LIST_MS);
}

/*  1 while lists are being built or wait to be. */
static int
s_server_listing (sch_server_t *self)
{
    return self->list || zlistx_size (self->waiting);
}

/*  Creates and binds the ROUTER, CurveZMQ's server for the api link when
    curve is set. Linger 0 so a stop never waits on a gone api; the size
    limit makes libzmq drop oversized frames before we see them. */
sch_server_t *
sch_server_new (const char *endpoint, sch_store_t *store, dx_seal_t *seal,
                dx_curve_t *curve)
{
    if (!endpoint || !store || !seal)
        return NULL;
    sch_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx.store = store;
    self->ctx.read = sch_store_read (store);
    self->ctx.seal = seal;
    self->waiting = zlistx_new ();
    self->served = zlistx_new ();
    if (!self->waiting || !self->served) {
        sch_server_destroy (&self);
        return NULL;
    }
    zlistx_set_destructor (self->waiting, s_server_list_free);
    zlistx_set_destructor (self->served, s_server_list_free);
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->router) {
        dx_error ("cannot create the ROUTER socket: %s", zmq_strerror (zmq_errno ()));
        sch_server_destroy (&self);
        return NULL;
    }
    zsock_set_linger (self->router, 0);
    zsock_set_maxmsgsize (self->router, (int64_t) DX_MSG_MAX_BYTES);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_rcvtimeo (self->router, 0);
    if (curve && dx_curve_server_apply (curve, self->router, DX_CURVE_API)) {
        sch_server_destroy (&self);
        return NULL;
    }
    if (zsock_bind (self->router, "%s", endpoint) == -1) {
        dx_error ("cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        sch_server_destroy (&self);
        return NULL;
    }
    const char *bound = zsock_endpoint (self->router);
    self->endpoint = strdup (bound? bound: endpoint);
    if (!self->endpoint) {
        sch_server_destroy (&self);
        return NULL;
    }
    return self;
}

/*  Closes the socket and frees the server; safe on NULL. */
void
sch_server_destroy (sch_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_server_t *self = *self_p;
    sch_vpn_destroy (&self->ctx.vpn);
    zlistx_destroy (&self->waiting);
    zlistx_destroy (&self->served);
    sch_list_destroy (&self->list);
    zsock_destroy (&self->router);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

void
sch_server_set_dcos_installer_url (sch_server_t *self, const char *url)
{
    self->ctx.dcos_installer_url = url;
}

/*  Attaches the worker broker (borrowed), polled and ticked by the loop. */
void
sch_server_set_broker (sch_server_t *self, sch_broker_t *broker)
{
    self->ctx.broker = broker;
}

/*  Attaches the deployment engine (borrowed), ticked by the loop. */
void
sch_server_set_engine (sch_server_t *self, sch_engine_t *engine)
{
    self->ctx.engine = engine;
    sch_vpn_destroy (&self->ctx.vpn);
    if (engine && self->ctx.broker) {
        self->ctx.vpn = sch_vpn_new (self->ctx.store, self->ctx.seal, self->ctx.broker, engine);
        if (self->ctx.vpn)
            sch_vpn_set_answer (self->ctx.vpn, s_server_later, self);
        else
            dx_error ("out of memory: VPN users cannot be served");
    }
}

void
sch_server_set_aws_batch_max (sch_server_t *self, int batch_max)
{
    self->ctx.aws_batch_max = batch_max;
}

/*  The endpoint as bound (an ephemeral port resolved), for logs and tests. */
const char *
sch_server_endpoint (sch_server_t *self)
{
    return self->endpoint;
}

zsock_t *
sch_server_socket (sch_server_t *self)
{
    return self->router;
}

/*  The loop: one request at a time, a cron tick every second, the
    broker's workers served and ticked when due, the engine ticked after
    what workers say and when it asked to be, until a signal or $TERM. The
    deployments in progress are loaded first (retried every cron tick while
    Redis cannot be read). */
int
sch_server_run (sch_server_t *self, zsock_t *pipe)
{
    sch_broker_t *broker = self->ctx.broker;
    sch_engine_t *engine = self->ctx.engine;
    int recovered = engine? sch_engine_recover (engine) == 0: 1;
    int64_t next_engine = engine? sch_engine_tick (engine): INT64_MAX;
    zpoller_t *poller = zpoller_new (self->router, NULL);
    if (pipe)
        zpoller_add (poller, pipe);
    if (broker)
        zpoller_add (poller, sch_broker_socket (broker));
    int64_t next_tick = dx_mono_ms () + SCH_TICK_MS;
    int64_t next_broker = broker? sch_broker_tick (broker): next_tick;
    while (true) {
        int64_t wakeup = next_broker < next_tick? next_broker: next_tick;
        if (next_engine < wakeup)
            wakeup = next_engine;
        int64_t wait = s_server_listing (self)? 0: wakeup - dx_mono_ms ();
        void *which = zpoller_wait (poller, wait < 0? 0: (int) wait);
        if (zpoller_terminated (poller)) {
            //  A signal we do not stop for (EINTR) only interrupts the wait
            if (zsys_interrupted || zmq_errno () != EINTR)
                break;
        }
        else
        if (which == self->router)
            sch_server_receive (self);
        else
        if (broker && which == sch_broker_socket (broker)) {
            sch_broker_receive (broker);
            next_engine = 0;            /* results free room, workers join */
        }
        else
        if (pipe && which == pipe) {
            char *command = zstr_recv (pipe);
            int stop = !command || strcmp (command, "$TERM") == 0;
            zstr_free (&command);
            if (stop)
                break;
        }
        if (which != self->router && s_server_listing (self))
            s_server_lists (self, dx_mono_ms () + S_LIST_MS);
        if (dx_mono_ms () >= next_tick) {
            sch_redis_tick (sch_store_redis (self->ctx.store));
            dx_malloc_release ();       /* what a long list left free */
            if (!recovered)
                recovered = sch_engine_recover (engine) == 0;
            next_tick = dx_mono_ms () + SCH_TICK_MS;
        }
        if (broker && dx_mono_ms () >= next_broker)
            next_broker = sch_broker_tick (broker);
        if (engine && recovered && dx_mono_ms () >= next_engine) {
            next_engine = sch_engine_tick (engine);
            int64_t next_vpn = self->ctx.vpn? sch_vpn_tick (self->ctx.vpn): INT64_MAX;
            if (next_vpn < next_engine)
                next_engine = next_vpn;
        }
    }
    zpoller_destroy (&poller);
    return 0;
}

/*  The server as a czmq actor, so tests can run it in-process. */
void
sch_server_actor (zsock_t *pipe, void *args)
{
    sch_server_args_t *config = (sch_server_args_t *) args;
    sch_server_t *self = sch_server_new (config->endpoint, config->store, config->seal, NULL);
    zsock_signal (pipe, self? 0: 1);
    if (self) {
        sch_server_run (self, pipe);
        sch_server_destroy (&self);
    }
}
