/*  dx_msg: the one codec for proto/PROTOCOL.md.

    A message in memory is a jansson object; on the wire it is one msgpack map.
    Nothing else in Dexter packs or unpacks msgpack. */
#ifndef DX_MSG_H
#define DX_MSG_H

#include <stddef.h>
#include <jansson.h>
#include <czmq.h>

#define DX_PROTO_VERSION 1
#define DX_MSG_MAX_BYTES (16u * 1024u * 1024u)
#define DX_MSG_MAX_DEPTH 32
#define DX_ERR_LEN 256

/*  What a user may send, beside the codec's limits so that whatever the
    api (api_body) and dx_spec accept also encodes: a request body of at
    most DX_MSG_BODY_MAX bytes, nested at most DX_MSG_BODY_DEPTH levels
    (the body object is level 1, so a field's value has one level less,
    whether it came as JSON or as JSON text in a form). A message carries
    a body, or what dx_spec made of it, at most two levels down (a reply's
    list of groups), and msgpack needs at most 9 bytes where JSON has 4
    (a double such as 1e1 in an array). */
#define DX_MSG_BODY_MAX   (1024u * 1024u)
#define DX_MSG_BODY_DEPTH 16
_Static_assert (DX_MSG_BODY_DEPTH + 2 <= DX_MSG_MAX_DEPTH,
                "a body nested to the limit must fit in a message");
_Static_assert (DX_MSG_BODY_MAX / 4 * 9 < DX_MSG_MAX_BYTES / 2,
                "a body of the largest size must fit in a message");

/*  The most entries one answer of a paged read asks for: cluster.list's
    `limit`, deployment.events' `count`. */
#define DX_MSG_PAGE_MAX 1000

/* Reply status codes (proto/PROTOCOL.md, "Reply"). */
#define DX_OK          "OK"
#define DX_CREATED     "CREATED"
#define DX_ACCEPTED    "ACCEPTED"
#define DX_INVALID     "INVALID"
#define DX_NOT_FOUND   "NOT_FOUND"
#define DX_CONFLICT    "CONFLICT"
#define DX_UNAVAILABLE "UNAVAILABLE"
#define DX_INTERNAL    "INTERNAL"

/*  Packs msg (a JSON object) into msgpack. On success sets *buf (caller frees
    with free()) and *len and returns 0; returns -1 if msg is not an object,
    holds a value msgpack cannot carry, or packs to more than DX_MSG_MAX_BYTES. */
int dx_msg_encode (const json_t *msg, char **buf, size_t *len);

/*  1 if value nests deeper than levels, counting as the codec does: a
    container is one level and each container in it one more; a scalar
    is none. A message encodes only if it is not deeper than
    DX_MSG_MAX_DEPTH. Walks no deeper than levels + 1. */
int dx_msg_too_deep (const json_t *value, int levels);

/*  Unpacks and checks one message: the decoder rules, the envelope and the
    required fields of its type. Returns a new object (caller owns) or NULL
    with a human sentence in err (errlen bytes, may be NULL). */
json_t *dx_msg_decode (const void *data, size_t len, char *err, size_t errlen);

/*  Same as dx_msg_decode but without the per-type schema check (only the
    msgpack rules and the envelope). Used to read `id` from a message whose
    type-specific fields are wrong, to answer it with INVALID. */
json_t *dx_msg_decode_envelope (const void *data, size_t len, char *err, size_t errlen);

/*  New message {v, type, id}. id NULL makes a fresh unique one. Caller owns. */
json_t *dx_msg_new (const char *type, const char *id);

/*  Borrowed accessors; NULL/0/false when absent or of another type. */
const char *dx_msg_type (const json_t *msg);
const char *dx_msg_id (const json_t *msg);
const char *dx_msg_str (const json_t *msg, const char *field);
json_int_t  dx_msg_int (const json_t *msg, const char *field, json_int_t dflt);
int         dx_msg_bool (const json_t *msg, const char *field, int dflt);

/*  A JSON string of text whatever its bytes (NULL makes ""): jansson takes
    only UTF-8, so otherwise each byte above 0x7f becomes '?'. For text from
    outside (a provider's error, a message cut short) that goes into a
    message. Caller owns; NULL only when out of memory. */
json_t *dx_msg_string_new (const char *text);

/*  Reply to request with status and body (body is stolen, may be NULL).
    When the request has `text` true, the body goes as its compact JSON
    text in the reply's `text` instead of as `body` (proto/PROTOCOL.md). */
json_t *dx_reply_new (const json_t *request, const char *status, json_t *body);

/*  Error reply: status, the field at fault (may be NULL) and a printf message. */
json_t *dx_reply_error (const json_t *request, const char *status,
                        const char *field, const char *fmt, ...)
                        __attribute__ ((format (printf, 4, 5)));

/*  Error reply carrying several faults: errors is a JSON array of
    {field, message} objects (stolen, must be non-empty); the first one
    also becomes the reply's field and message. */
json_t *dx_reply_errors (const json_t *request, const char *status, json_t *errors);

/*  Sends msg on sock, preceded by a routing identity frame when identity is
    non-NULL (ROUTER side). Does not take ownership. 0/-1. */
int dx_msg_send (zsock_t *sock, zframe_t *identity, const json_t *msg);

/*  Receives one message. On a ROUTER pass identity_p to get the identity frame
    (caller destroys). Returns the decoded message, or NULL with err set when
    the frames or the message are malformed; *raw_p, when non-NULL, receives
    the message frame for callers that want to answer malformed input
    (caller destroys). *identity_p and *raw_p are always set (NULL when
    absent), on success and on failure, so the caller can destroy both.
    When no message came at all (a receive timeout, e.g. ZMQ_RCVTIMEO 0 on
    an empty socket, or a signal), both are NULL and errno is libzmq's
    (EAGAIN, EINTR). */
json_t *dx_msg_recv (zsock_t *sock, zframe_t **identity_p, zframe_t **raw_p,
                     char *err, size_t errlen);

#endif
