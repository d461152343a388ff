/* bench/api/floor.c: what the api's architecture costs without its logic.
 *
 * Two stand-ins, for measuring by hand next to bare.c (see bench/README.md,
 * "Floor"):
 *
 *   floor echo ENDPOINT       a ROUTER that answers every request at once
 *                             with a fixed OK reply of the wire protocol
 *                             (proto/PROTOCOL.md): the request's id and a
 *                             fixed `text` body. No JSON, no Redis. It
 *                             stands in for dexter-scheduler, under
 *                             dexter-api or under `floor http`.
 *   floor http PORT ENDPOINT  libmicrohttpd run as dexter-api runs it (one
 *                             thread, select mode polled with the DEALER
 *                             in one zmq_poll, the connection
 *                             suspended until the reply, a DEALER to
 *                             ENDPOINT), answering every GET with the same
 *                             fixed body once ENDPOINT has answered. No
 *                             routing, no validation, no codec.
 *
 * floor http + floor echo is the floor of the design (two processes, HTTP in
 * one, a ZeroMQ round trip to the other); dexter-api + floor echo is the api
 * alone. Binds 127.0.0.1 only; stops on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <microhttpd.h>
#include <msgpack.h>
#include <zmq.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "bench_body.h"


#define FLOOR_SLOTS 4096        /* connections waiting at once, at most */

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
s_pack_str (msgpack_packer *pk, const char *text, size_t len)
{
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text, len);
}

/*  The `id` string of the msgpack map in msg (unpacked into unpacked,
    which holds what the result points to), or NULL. */
static const char *
s_find_id (msgpack_unpacked *unpacked, zmq_msg_t *msg, size_t *len)
{
    if (msgpack_unpack_next (unpacked, zmq_msg_data (msg), zmq_msg_size (msg), NULL)
            != MSGPACK_UNPACK_SUCCESS
    ||  unpacked->data.type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < unpacked->data.via.map.size; i++) {
        const msgpack_object_kv *kv = &unpacked->data.via.map.ptr [i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 2
        &&  memcmp (kv->key.via.str.ptr, "id", 2) == 0
        &&  kv->val.type == MSGPACK_OBJECT_STR) {
            *len = kv->val.via.str.size;
            return kv->val.via.str.ptr;
        }
    }
    return NULL;
}

/*  The echo: [identity, request] in, [identity, reply] out. */
static int
s_echo (void *ctx, const char *endpoint)
{
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    int timeout = 100;
    zmq_setsockopt (router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_bind (router, endpoint)) {
        fprintf (stderr, "floor: cannot bind %s: %s\n", endpoint, zmq_strerror (zmq_errno ()));
        return 1;
    }
    while (!s_stop) {
        zmq_msg_t identity, request;
        zmq_msg_init (&identity);
        zmq_msg_init (&request);
        if (zmq_msg_recv (&identity, router, 0) < 0
        ||  zmq_msg_recv (&request, router, 0) < 0) {
            zmq_msg_close (&identity);
            zmq_msg_close (&request);
            continue;
        }
        //  The request's id, for the reply
        msgpack_unpacked unpacked;
        msgpack_unpacked_init (&unpacked);
        size_t id_len;
        const char *id = s_find_id (&unpacked, &request, &id_len);
        if (!id) {
            id = "unknown";
            id_len = strlen (id);
        }
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 5);
        s_pack_str (&pk, "v", 1);
        msgpack_pack_int (&pk, 1);
        s_pack_str (&pk, "type", 4);
        s_pack_str (&pk, "reply", 5);
        s_pack_str (&pk, "id", 2);
        s_pack_str (&pk, id, id_len);
        s_pack_str (&pk, "status", 6);
        s_pack_str (&pk, "OK", 2);
        s_pack_str (&pk, "text", 4);
        s_pack_str (&pk, BODY, sizeof BODY - 1);
        msgpack_unpacked_destroy (&unpacked);
        zmq_msg_send (&identity, router, ZMQ_SNDMORE);
        zmq_send (router, buffer.data, buffer.size, 0);
        msgpack_sbuffer_destroy (&buffer);
        zmq_msg_close (&request);
    }
    zmq_close (router);
    return 0;
}

static void *s_dealer;
static struct MHD_Connection *s_slots [FLOOR_SLOTS];
static unsigned s_next_slot;

/*  First call: nothing (as MHD intends for a GET); last call: send the
    slot's number to the echo and suspend; after the resume: answer. */
static MHD_Result_t
s_access (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size,
          void **req_cls)
{
    (void) cls; (void) url; (void) method; (void) version; (void) upload_data;
    intptr_t state = (intptr_t) *req_cls;
    if (state == 0) {
        *req_cls = (void *) 1;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (state == 1) {
        unsigned slot = s_next_slot++ % FLOOR_SLOTS;
        s_slots [slot] = conn;
        //  A request the echo can read: {v, type, id}, the id the slot
        char id [16], msg [64];
        int id_len = snprintf (id, sizeof id, "%u", slot);
        msgpack_sbuffer buffer = { .size = 0, .data = msg, .alloc = sizeof msg };
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        s_pack_str (&pk, "id", 2);
        s_pack_str (&pk, id, (size_t) id_len);
        zmq_send (s_dealer, buffer.data, buffer.size, ZMQ_DONTWAIT);
        *req_cls = (void *) 2;
        MHD_suspend_connection (conn);
        return MHD_YES;
    }
    char *text = malloc (sizeof BODY);
    if (!text)
        return MHD_NO;
    memcpy (text, BODY, sizeof BODY);
    text [sizeof BODY - 1] = '\n';
    struct MHD_Response *response =
        MHD_create_response_from_buffer (sizeof BODY, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header (response, "Content-Type", "application/json");
    MHD_add_response_header (response, "Cache-Control", "no-store");
    MHD_Result_t rc = MHD_queue_response (conn, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return rc;
}

/*  The http stand-in's loop: as api_loop.c's, without its bookkeeping. */
static zmq_pollitem_t s_items [1 + FD_SETSIZE];

static int
s_http (void *ctx, int port, const char *endpoint)
{
    s_dealer = zmq_socket (ctx, ZMQ_DEALER);
    if (zmq_connect (s_dealer, endpoint)) {
        fprintf (stderr, "floor: cannot connect to %s\n", endpoint);
        return 1;
    }
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                                .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, &s_access, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_CONNECTION_LIMIT, 1000u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (16 * 1024),
        MHD_OPTION_END);
    if (!daemon) {
        fprintf (stderr, "floor: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    int resumed = 0;
    while (!s_stop) {
        //  The DEALER and the daemon's sockets (select mode), in one poll
        fd_set reads, writes, errors;
        FD_ZERO (&reads);
        FD_ZERO (&writes);
        FD_ZERO (&errors);
        MHD_socket top = -1;
        MHD_get_fdset (daemon, &reads, &writes, &errors, &top);
        int count = 0;
        s_items [count++] = (zmq_pollitem_t) { s_dealer, 0, ZMQ_POLLIN, 0 };
        for (MHD_socket fd = 0; fd <= top; fd++) {
            short events = (short) ((FD_ISSET (fd, &reads) ? ZMQ_POLLIN : 0)
                                  | (FD_ISSET (fd, &writes) ? ZMQ_POLLOUT : 0));
            if (events)
                s_items [count++] = (zmq_pollitem_t) { NULL, fd, events, 0 };
        }
        MHD_UNSIGNED_LONG_LONG timeout = 100;
        if (MHD_get_timeout (daemon, &timeout) != MHD_YES || timeout > 100)
            timeout = 100;
        if (zmq_poll (s_items, count, resumed ? 0 : (long) timeout) < 0)
            count = 1;
        resumed = 0;
        FD_ZERO (&reads);
        FD_ZERO (&writes);
        FD_ZERO (&errors);
        for (int i = 1; i < count; i++) {
            if (s_items [i].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
                FD_SET (s_items [i].fd, &reads);
            if (s_items [i].revents & ZMQ_POLLOUT)
                FD_SET (s_items [i].fd, &writes);
        }
        MHD_run_from_select (daemon, &reads, &writes, &errors);
        zmq_msg_t reply;
        zmq_msg_init (&reply);
        while (zmq_msg_recv (&reply, s_dealer, ZMQ_DONTWAIT) >= 0) {
            //  The reply's id is the slot's number
            msgpack_unpacked unpacked;
            msgpack_unpacked_init (&unpacked);
            size_t id_len;
            const char *id = s_find_id (&unpacked, &reply, &id_len);
            if (id && id_len < 16) {
                char slot [16];
                memcpy (slot, id, id_len);
                slot [id_len] = 0;
                MHD_resume_connection (s_slots [strtoul (slot, NULL, 10) % FLOOR_SLOTS]);
                resumed = 1;
            }
            msgpack_unpacked_destroy (&unpacked);
        }
        zmq_msg_close (&reply);
    }
    MHD_stop_daemon (daemon);
    zmq_close (s_dealer);
    return 0;
}

int
main (int argc, char **argv)
{
    signal (SIGTERM, s_on_signal);
    signal (SIGINT, s_on_signal);
    void *ctx = zmq_ctx_new ();
    int rc = 2;
    if (argc == 3 && strcmp (argv [1], "echo") == 0)
        rc = s_echo (ctx, argv [2]);
    else
    if (argc == 4 && strcmp (argv [1], "http") == 0 && atoi (argv [2]) > 0)
        rc = s_http (ctx, atoi (argv [2]), argv [3]);
    else
        fprintf (stderr, "usage: %s echo ENDPOINT | %s http PORT ENDPOINT\n", argv [0], argv [0]);
    zmq_ctx_term (ctx);
    return rc;
}
