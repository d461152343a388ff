/*  dx_msg: the one codec for proto/PROTOCOL.md.

    Decoding is done in four passes, each of which can reject the message:
      1. s_scan walks the raw bytes without allocating anything: exactly one
         complete object, a map at the top, no bin/ext, nesting at most
         DX_MSG_MAX_DEPTH, and no container declaring more elements than the
         remaining bytes could hold. After it, msgpack-c's unpacker can only
         allocate memory proportional to the input and never runs out of
         its fixed nesting stack (MSGPACK_EMBED_STACK_SIZE, also 32).
      2. msgpack_unpack (in s_decode) builds msgpack objects; strings
         point into the input buffer, nothing is copied.
      3. s_to_json converts them into jansson values, checking what the
         scan does not: string keys, no duplicate keys, UTF-8 without NUL,
         integers that fit int64, finite floats.
      4. s_check_envelope (v, type, id) and, for dx_msg_decode only,
         s_check_schema against the s_schemas table (one row per message
         type of PROTOCOL.md).
    Error texts are single sentences meant for logs and INVALID replies;
    anything taken from the message itself is sanitized before it goes in.
    Memory: the decoded form of the worst input (16 MiB of one-byte
    integers) takes about 1 GB of jansson values and 2 s; the transport
    should therefore cap frames (ZMQ_MAXMSGSIZE) at DX_MSG_MAX_BYTES so
    libzmq never buffers more than that. */
#include "dx_msg.h"
#include "dx_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>
#include <sodium.h>

#define DX_ENVELOPE_MAX 64      /* longest type or id, in bytes */

/*  Writes a formatted sentence into err when the caller gave a buffer. */
static void
s_set_err (char *err, size_t errlen, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_set_err (char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (err, errlen, fmt, args);
    va_end (args);
}

/*  Clears err when the caller gave a buffer (no printf on the way of
    every message). */
static void
s_clear_err (char *err, size_t errlen)
{
    if (err && errlen)
        err [0] = 0;
}

/*  Copies at most size-1 bytes of untrusted text (not necessarily
    terminated) into buf as printable ASCII, replacing anything else with
    '?', so that message content can be quoted in a log line safely. */
static const char *
s_sanitize (const char *text, size_t len, char *buf, size_t size)
{
    size_t i;
    for (i = 0; i < len && i + 1 < size; i++) {
        unsigned char c = (unsigned char) text [i];
        buf [i] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
    }
    buf [i] = 0;
    return buf;
}

/*  True if the len bytes at s are well-formed UTF-8 (RFC 3629: shortest
    form only, no surrogates, nothing above U+10FFFF). */
static int
s_utf8_valid (const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s [i];
        size_t extra;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        else
        if (c >= 0xc2 && c <= 0xdf) { extra = 1; cp = c & 0x1f; }
        else
        if (c >= 0xe0 && c <= 0xef) { extra = 2; cp = c & 0x0f; }
        else
        if (c >= 0xf0 && c <= 0xf4) { extra = 3; cp = c & 0x07; }
        else
            return 0;                   /* continuation byte, 0xc0/0xc1, > 0xf4 */
        if (len - i - 1 < extra)
            return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((s [i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s [i + k] & 0x3f);
        }
        if ((extra == 2 && cp < 0x800)
        ||  (extra == 3 && (cp < 0x10000 || cp > 0x10ffff))
        ||  (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += extra + 1;
    }
    return 1;
}


//  ---------------------------------------------------------------------
//  Encoding

/*  The packer writes through this: a buffer that starts small (a request
    or a reply is a few hundred bytes; msgpack's sbuffer would take 8 KiB
    each time), refuses to grow past DX_MSG_MAX_BYTES so that an oversized
    message fails early, and wipes what it outgrows: messages carry
    credentials. */
#define S_WRITER_START 512

typedef struct {
    char *data;
    size_t size, cap;
} s_writer_t;

static int
s_writer_write (void *arg, const char *buf, size_t len)
{
    s_writer_t *writer = (s_writer_t *) arg;
    if (len > DX_MSG_MAX_BYTES - writer->size)
        return -1;
    if (writer->size + len > writer->cap) {
        size_t cap = writer->cap? writer->cap: S_WRITER_START;
        while (cap < writer->size + len)
            cap *= 2;
        char *data = malloc (cap);
        if (!data)
            return -1;
        if (writer->data) {
            memcpy (data, writer->data, writer->size);
            sodium_memzero (writer->data, writer->cap);
            free (writer->data);
        }
        writer->data = data;
        writer->cap = cap;
    }
    memcpy (writer->data + writer->size, buf, len);
    writer->size += len;
    return 0;
}

/*  Packs one JSON value at nesting level depth (the top map is level 1).
    Strings and keys holding NUL are refused: no decoder would accept them. */
static int
s_pack (msgpack_packer *pk, const json_t *value, int depth)
{
    switch (json_typeof (value)) {
        case JSON_OBJECT: {
            if (depth > DX_MSG_MAX_DEPTH || json_object_size (value) > UINT32_MAX)
                return -1;
            if (msgpack_pack_map (pk, json_object_size (value)))
                return -1;
            void *iter = json_object_iter ((json_t *) value);
            while (iter) {
                const char *key = json_object_iter_key (iter);
                size_t key_len = json_object_iter_key_len (iter);
                if (memchr (key, 0, key_len)
                ||  msgpack_pack_str (pk, key_len)
                ||  msgpack_pack_str_body (pk, key, key_len)
                ||  s_pack (pk, json_object_iter_value (iter), depth + 1))
                    return -1;
                iter = json_object_iter_next ((json_t *) value, iter);
            }
            return 0;
        }
        case JSON_ARRAY: {
            if (depth > DX_MSG_MAX_DEPTH || json_array_size (value) > UINT32_MAX)
                return -1;
            if (msgpack_pack_array (pk, json_array_size (value)))
                return -1;
            for (size_t i = 0; i < json_array_size (value); i++)
                if (s_pack (pk, json_array_get (value, i), depth + 1))
                    return -1;
            return 0;
        }
        case JSON_STRING: {
            const char *str = json_string_value (value);
            size_t len = json_string_length (value);
            if (memchr (str, 0, len) || len > UINT32_MAX)
                return -1;
            return msgpack_pack_str (pk, len) || msgpack_pack_str_body (pk, str, len)? -1: 0;
        }
        case JSON_INTEGER:
            return msgpack_pack_int64 (pk, (int64_t) json_integer_value (value))? -1: 0;
        case JSON_REAL:
            return msgpack_pack_double (pk, json_real_value (value))? -1: 0;
        case JSON_TRUE:
            return msgpack_pack_true (pk)? -1: 0;
        case JSON_FALSE:
            return msgpack_pack_false (pk)? -1: 0;
        case JSON_NULL:
            return msgpack_pack_nil (pk)? -1: 0;
    }
    return -1;
}

int
dx_msg_too_deep (const json_t *value, int levels)
{
    if (!json_is_object (value) && !json_is_array (value))
        return 0;
    if (levels <= 0)
        return 1;
    if (json_is_object (value)) {
        const char *key;
        json_t *member;
        json_object_foreach ((json_t *) value, key, member)
            if (dx_msg_too_deep (member, levels - 1))
                return 1;
    }
    else {
        size_t i;
        json_t *member;
        json_array_foreach (value, i, member)
            if (dx_msg_too_deep (member, levels - 1))
                return 1;
    }
    return 0;
}

/*  Packs a message; the size limit is enforced while writing. */
int
dx_msg_encode (const json_t *msg, char **buf, size_t *len)
{
    if (!json_is_object (msg) || !buf || !len)
        return -1;
    s_writer_t writer = { NULL, 0, 0 };
    msgpack_packer pk;
    msgpack_packer_init (&pk, &writer, s_writer_write);
    if (s_pack (&pk, msg, 1)) {
        if (writer.data)
            sodium_memzero (writer.data, writer.cap);
        free (writer.data);
        return -1;
    }
    *len = writer.size;
    *buf = writer.data;
    return 0;
}


//  ---------------------------------------------------------------------
//  Decoding, pass 1: the structural scan

/*  Reads an n-byte big-endian unsigned integer. */
static uint64_t
s_be (const unsigned char *p, size_t n)
{
    uint64_t value = 0;
    for (size_t i = 0; i < n; i++)
        value = (value << 8) | p [i];
    return value;
}

/*  Checks the shape of the msgpack bytes without building anything (see
    the top of this file). It keeps only a count of the elements still
    expected and the nesting stack, so it is linear in len and uses a few
    hundred bytes of stack whatever the input. */
static int
s_scan (const unsigned char *data, size_t len, char *err, size_t errlen)
{
    uint64_t open [DX_MSG_MAX_DEPTH];   /* elements left in each open container */
    int depth = 0;                      /* containers open */
    uint64_t pending = 1;               /* objects still expected, in total */
    size_t pos = 0;

    if ((data [0] & 0xf0) != 0x80 && data [0] != 0xde && data [0] != 0xdf) {
        s_set_err (err, errlen, "message is not a msgpack map");
        return -1;
    }
    while (pending > 0) {
        if (pos >= len) {
            s_set_err (err, errlen, "message is truncated (incomplete msgpack)");
            return -1;
        }
        size_t start = pos;
        unsigned char b = data [pos++];
        size_t field = 0;               /* size of a length/count field */
        size_t skip = 0;                /* payload bytes of a scalar */
        int container = 0;              /* 1 array, 2 map (elements per entry) */
        uint64_t count = 0;

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            ;                           /* fixint, nil, false, true */
        else
        if (b >= 0x80 && b <= 0x8f) { container = 2; count = b & 0x0f; }
        else
        if (b >= 0x90 && b <= 0x9f) { container = 1; count = b & 0x0f; }
        else
        if (b >= 0xa0 && b <= 0xbf) skip = b & 0x1f;
        else
        if (b == 0xca || b == 0xcb) skip = b == 0xca? 4: 8;
        else
        if (b >= 0xcc && b <= 0xcf) skip = (size_t) 1 << (b - 0xcc);
        else
        if (b >= 0xd0 && b <= 0xd3) skip = (size_t) 1 << (b - 0xd0);
        else
        if (b >= 0xd9 && b <= 0xdb) field = (size_t) 1 << (b - 0xd9);
        else
        if (b == 0xdc || b == 0xdd) { container = 1; field = b == 0xdc? 2: 4; }
        else
        if (b == 0xde || b == 0xdf) { container = 2; field = b == 0xde? 2: 4; }
        else
        if (b >= 0xc4 && b <= 0xc6) {
            s_set_err (err, errlen, "bin values are not allowed (byte %zu)", start);
            return -1;
        }
        else
        if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) {
            s_set_err (err, errlen, "ext values are not allowed (byte %zu)", start);
            return -1;
        }
        else {
            s_set_err (err, errlen, "invalid msgpack byte 0x%02x at byte %zu", b, start);
            return -1;
        }

        if (field) {                    /* str8/16/32, array16/32, map16/32 */
            if (len - pos < field) {
                s_set_err (err, errlen, "message is truncated (incomplete msgpack)");
                return -1;
            }
            uint64_t n = s_be (data + pos, field);
            pos += field;
            if (container)
                count = n;
            else
                skip = (size_t) n;
        }
        if (len - pos < skip) {
            if (field)
                s_set_err (err, errlen, "message is truncated (a string at byte %zu "
                           "declares %zu bytes)", start, skip);
            else
                s_set_err (err, errlen, "message is truncated (incomplete msgpack)");
            return -1;
        }
        pos += skip;
        pending--;

        if (container) {
            if (depth == DX_MSG_MAX_DEPTH) {
                s_set_err (err, errlen, "message nests deeper than %d levels",
                           DX_MSG_MAX_DEPTH);
                return -1;
            }
            uint64_t elements = count * (uint64_t) container;
            //  Every element takes at least one byte: a count the rest of
            //  the input cannot hold is refused here, without walking on
            pending += elements;
            if (pending > len - pos) {
                s_set_err (err, errlen, "message is truncated (%s at byte %zu "
                           "declares %llu %s)", container == 2? "a map": "an array",
                           start, (unsigned long long) count,
                           container == 2? "entries": "elements");
                return -1;
            }
            if (elements > 0) {
                open [depth++] = elements;
                continue;
            }
        }
        //  One object is complete: close every container it completes
        while (depth > 0 && --open [depth - 1] == 0)
            depth--;
    }
    if (pos != len) {
        s_set_err (err, errlen, "message has %zu trailing byte(s) after the msgpack map",
                   len - pos);
        return -1;
    }
    return 0;
}


//  ---------------------------------------------------------------------
//  Decoding, pass 3: msgpack objects to jansson values

/*  Conversion state: where the error goes, and the path from the top map
    to the value being converted, so errors can say where the fault is. */
typedef struct {
    char *err;
    size_t errlen;
    int depth;
    struct {
        const msgpack_object *key;      /* member of a map, or */
        uint32_t index;                 /* element of an array */
    } path [DX_MSG_MAX_DEPTH + 1];
} s_conv_t;

/*  The bytes of a msgpack str. msgpack-c leaves the pointer of an empty
    string NULL or stale, and neither jansson nor memchr accept NULL. */
static const char *
s_str_ptr (const msgpack_object *str)
{
    return str->via.str.size? str->via.str.ptr: "";
}

/*  Writes "at 'a.b[2].c'" (or "at the top level") for the current path. */
static void
s_conv_where (s_conv_t *self, char *buf, size_t size)
{
    if (self->depth == 0) {
        snprintf (buf, size, "at the top level");
        return;
    }
    size_t used = (size_t) snprintf (buf, size, "at '");
    for (int i = 0; i < self->depth && used < size; i++) {
        char part [48], name [40];
        if (self->path [i].key)
            snprintf (part, sizeof part, "%s%s", i? ".": "",
                      s_sanitize (s_str_ptr (self->path [i].key),
                                  self->path [i].key->via.str.size,
                                  name, sizeof name));
        else
            snprintf (part, sizeof part, "[%u]", (unsigned) self->path [i].index);
        used += (size_t) snprintf (buf + used, size - used, "%s", part);
    }
    if (used < size)
        snprintf (buf + used, size - used, "'");
}

/*  Sets the error: "<what> <where>", e.g. "string is not valid UTF-8 at
    'config.region'". */
static void
s_conv_fail (s_conv_t *self, const char *what)
{
    char where [160];
    s_conv_where (self, where, sizeof where);
    s_set_err (self->err, self->errlen, "%s %s", what, where);
}

/*  Checks a string's bytes (value or key): UTF-8, no NUL. */
static int
s_conv_check_str (s_conv_t *self, const msgpack_object *obj, const char *what)
{
    char text [64];
    if (!s_utf8_valid ((const unsigned char *) s_str_ptr (obj), obj->via.str.size)) {
        snprintf (text, sizeof text, "%s is not valid UTF-8", what);
        s_conv_fail (self, text);
        return -1;
    }
    if (memchr (s_str_ptr (obj), 0, obj->via.str.size)) {
        snprintf (text, sizeof text, "%s contains a NUL byte", what);
        s_conv_fail (self, text);
        return -1;
    }
    return 0;
}

static json_t *s_to_json (s_conv_t *self, const msgpack_object *obj);

/*  Converts a map: string keys, each once. */
static json_t *
s_map_to_json (s_conv_t *self, const msgpack_object *obj)
{
    json_t *object = json_object ();
    if (!object) {
        s_conv_fail (self, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        if (key->type != MSGPACK_OBJECT_STR) {
            s_conv_fail (self, "a map key is not a string");
            goto fail;
        }
        if (s_conv_check_str (self, key, "a map key"))
            goto fail;
        if (json_object_getn (object, s_str_ptr (key), key->via.str.size)) {
            char text [80], name [40];
            snprintf (text, sizeof text, "duplicate key '%s'",
                      s_sanitize (s_str_ptr (key), key->via.str.size, name, sizeof name));
            s_conv_fail (self, text);
            goto fail;
        }
        self->path [self->depth].key = key;
        self->depth++;
        json_t *value = s_to_json (self, &obj->via.map.ptr [i].val);
        self->depth--;
        if (!value)
            goto fail;
        if (json_object_setn_new_nocheck (object, s_str_ptr (key), key->via.str.size,
                                          value)) {
            s_conv_fail (self, "out of memory");
            goto fail;
        }
    }
    return object;
fail:
    json_decref (object);
    return NULL;
}

/*  Converts an array, element by element. */
static json_t *
s_array_to_json (s_conv_t *self, const msgpack_object *obj)
{
    json_t *array = json_array ();
    if (!array) {
        s_conv_fail (self, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < obj->via.array.size; i++) {
        self->path [self->depth].key = NULL;
        self->path [self->depth].index = i;
        self->depth++;
        json_t *value = s_to_json (self, &obj->via.array.ptr [i]);
        self->depth--;
        if (!value || json_array_append_new (array, value)) {
            if (value)
                s_conv_fail (self, "out of memory");
            json_decref (array);
            return NULL;
        }
    }
    return array;
}

/*  Converts one msgpack object into a new jansson value, or NULL with the
    error set. Recursion is bounded: s_scan admitted at most
    DX_MSG_MAX_DEPTH levels, and the check below holds that regardless. */
static json_t *
s_to_json (s_conv_t *self, const msgpack_object *obj)
{
    json_t *value = NULL;
    if (self->depth > DX_MSG_MAX_DEPTH) {
        s_conv_fail (self, "value nests too deep");
        return NULL;
    }
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
            value = json_null ();
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            value = json_boolean (obj->via.boolean);
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (obj->via.u64 > (uint64_t) INT64_MAX) {
                s_conv_fail (self, "integer is larger than 2^63-1");
                return NULL;
            }
            value = json_integer ((json_int_t) obj->via.u64);
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            value = json_integer ((json_int_t) obj->via.i64);
            break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            if (!isfinite (obj->via.f64)) {
                s_conv_fail (self, "number is not finite");
                return NULL;
            }
            value = json_real (obj->via.f64);
            break;
        case MSGPACK_OBJECT_STR:
            if (s_conv_check_str (self, obj, "string"))
                return NULL;
            value = json_stringn_nocheck (s_str_ptr (obj), obj->via.str.size);
            break;
        case MSGPACK_OBJECT_ARRAY:
            return s_array_to_json (self, obj);
        case MSGPACK_OBJECT_MAP:
            return s_map_to_json (self, obj);
        case MSGPACK_OBJECT_BIN:
        case MSGPACK_OBJECT_EXT:
        default:                        /* s_scan already refused these */
            s_conv_fail (self, "bin and ext values are not allowed");
            return NULL;
    }
    if (!value)
        s_conv_fail (self, "out of memory");
    return value;
}


//  ---------------------------------------------------------------------
//  Decoding, pass 4: envelope and per-type schema

typedef enum {
    S_STR,                              /* string */
    S_UINT,                             /* integer in [min, max] */
    S_BOOL,                             /* true or false */
    S_MAP,                              /* object */
    S_STRMAP,                           /* object whose values are strings */
    S_ARRAY,                            /* array */
    S_ANY                               /* any value */
} s_kind_t;

typedef struct {
    const char *name;
    s_kind_t kind;
    int required;
    json_int_t min, max;                /* S_UINT only */
    const char *const *choices;         /* S_STR only: NULL-terminated, or NULL */
} s_field_t;

typedef struct {
    const char *type;
    s_field_t fields [8];               /* ends at the first with name NULL */
} s_schema_t;

static const char *const s_services [] = { "aws", "azure", "vpn", NULL };
static const char *const s_outcomes [] = { "done", "failed", "retry", NULL };
static const char *const s_statuses [] = {
    DX_OK, DX_CREATED, DX_ACCEPTED, DX_INVALID, DX_NOT_FOUND, DX_CONFLICT,
    DX_UNAVAILABLE, DX_INTERNAL, NULL
};

#define REQ(n, k)        { n, k, 1, 0, 0, NULL }
#define OPT(n, k)        { n, k, 0, 0, 0, NULL }
#define REQ_UINT(n, a, b) { n, S_UINT, 1, a, b, NULL }
#define OPT_UINT(n, a, b) { n, S_UINT, 0, a, b, NULL }
#define REQ_ONE_OF(n, c) { n, S_STR, 1, 0, 0, c }
#define DEADLINE         REQ_UINT ("deadline", 0, INT64_MAX), OPT ("text", S_BOOL)
#define NAME             REQ ("name", S_STR)
#define JOB              REQ ("job", S_STR), REQ_UINT ("attempt", 0, INT64_MAX)
#define POSITIVE(n)      REQ_UINT (n, 1, INT64_MAX)

/*  One row per message type of proto/PROTOCOL.md. Keep it in step with the
    document: its tables are the contract, this is their transcription. */
static const s_schema_t s_schemas [] = {
    { "cluster.list",      { DEADLINE, OPT ("after", S_STR),
                             OPT_UINT ("limit", 1, DX_MSG_PAGE_MAX) } },
    { "cluster.create",    { DEADLINE, REQ ("cluster", S_MAP) } },
    { "cluster.get",       { DEADLINE, NAME } },
    { "cluster.delete",    { DEADLINE, NAME, REQ ("force", S_BOOL) } },
    { "config.get",        { DEADLINE, NAME } },
    { "config.put",        { DEADLINE, NAME, REQ ("fields", S_MAP) } },
    { "config.delete",     { DEADLINE, NAME } },
    { "group.list",        { DEADLINE, NAME } },
    { "group.upsert",      { DEADLINE, NAME, REQ ("fields", S_MAP) } },
    { "group.get",         { DEADLINE, NAME, REQ ("group", S_STR) } },
    { "group.update",      { DEADLINE, NAME, REQ ("group", S_STR), REQ ("fields", S_MAP) } },
    { "group.delete",      { DEADLINE, NAME, REQ ("group", S_STR) } },
    { "deployment.get",    { DEADLINE, NAME } },
    { "deployment.put",    { DEADLINE, NAME, REQ ("fields", S_MAP) } },
    { "deployment.delete", { DEADLINE, NAME, REQ ("force", S_BOOL) } },
    { "deployment.vpn",    { DEADLINE, NAME } },
    { "deployment.events", { DEADLINE, NAME, OPT ("after", S_STR),
                             OPT_UINT ("count", 1, DX_MSG_PAGE_MAX) } },
    { "vpnuser.list",      { DEADLINE, NAME } },
    { "vpnuser.add",       { DEADLINE, NAME, REQ ("fields", S_MAP) } },
    { "vpnuser.revoke",    { DEADLINE, NAME, REQ ("user", S_STR) } },
    { "health.get",        { DEADLINE } },
    { "metrics.get",       { DEADLINE } },
    { "reply",             { REQ_ONE_OF ("status", s_statuses), OPT ("body", S_ANY),
                             OPT ("text", S_STR), OPT ("message", S_STR),
                             OPT ("field", S_STR), OPT ("errors", S_ARRAY) } },
    //  scheduler <-> workers
    { "worker.ready",      { REQ_ONE_OF ("service", s_services), POSITIVE ("capacity"),
                             REQ ("worker", S_STR), OPT ("active", S_ARRAY) } },
    { "worker.welcome",    { POSITIVE ("heartbeat_ms"), POSITIVE ("lease_ms") } },
    { "heartbeat",         { OPT ("active", S_ARRAY), OPT ("metrics", S_MAP) } },
    { "worker.reconnect",  { { 0 } } },
    { "job.assign",        { JOB, REQ ("cluster", S_STR),
                             REQ_UINT ("generation", 0, INT64_MAX), REQ ("step", S_MAP),
                             REQ ("credentials", S_STRMAP), POSITIVE ("lease_ms") } },
    { "job.renew",         { JOB } },
    { "job.progress",      { JOB, REQ ("message", S_STR) } },
    { "job.result",        { JOB, REQ_ONE_OF ("outcome", s_outcomes),
                             REQ ("resources", S_ARRAY), OPT ("error", S_MAP) } },
    { "job.cancel",        { JOB } },
    { "worker.bye",        { { 0 } } },
};

/*  The envelope every message carries: v == 1, type and id strings of
    1 to DX_ENVELOPE_MAX bytes. */
static int
s_check_envelope (const json_t *msg, char *err, size_t errlen)
{
    const json_t *v = json_object_get (msg, "v");
    if (!json_is_integer (v) || json_integer_value (v) < 1) {
        s_set_err (err, errlen, "field 'v' (protocol version) must be a positive integer");
        return -1;
    }
    if (json_integer_value (v) != DX_PROTO_VERSION) {
        s_set_err (err, errlen, "unsupported protocol version %" JSON_INTEGER_FORMAT,
                   json_integer_value (v));
        return -1;
    }
    const char *fields [] = { "type", "id" };
    for (size_t i = 0; i < 2; i++) {
        const json_t *value = json_object_get (msg, fields [i]);
        if (!json_is_string (value)
        ||  json_string_length (value) < 1
        ||  json_string_length (value) > DX_ENVELOPE_MAX) {
            s_set_err (err, errlen, "field '%s' must be a string of 1 to %d bytes",
                       fields [i], DX_ENVELOPE_MAX);
            return -1;
        }
    }
    return 0;
}

/*  Checks one field's value against its row of the table. */
static int
s_check_field (const s_field_t *field, const char *type, const json_t *value,
               char *err, size_t errlen)
{
    const char *want = NULL;
    switch (field->kind) {
        case S_STR:
            if (!json_is_string (value))
                want = "a string";
            else
            if (field->choices) {
                for (size_t i = 0; field->choices [i]; i++)
                    if (streq (json_string_value (value), field->choices [i]))
                        return 0;
                char list [128] = "";
                for (size_t i = 0; field->choices [i]; i++) {
                    size_t used = strlen (list);
                    snprintf (list + used, sizeof list - used, "%s%s",
                              i? ", ": "", field->choices [i]);
                }
                s_set_err (err, errlen, "field '%s' of %s must be one of %s",
                           field->name, type, list);
                return -1;
            }
            break;
        case S_UINT:
            if (!json_is_integer (value)
            ||  json_integer_value (value) < field->min
            ||  json_integer_value (value) > field->max) {
                if (field->max == INT64_MAX)
                    s_set_err (err, errlen, "field '%s' of %s must be an integer of at "
                               "least %" JSON_INTEGER_FORMAT, field->name, type, field->min);
                else
                    s_set_err (err, errlen, "field '%s' of %s must be an integer from %"
                               JSON_INTEGER_FORMAT " to %" JSON_INTEGER_FORMAT,
                               field->name, type, field->min, field->max);
                return -1;
            }
            break;
        case S_BOOL:
            if (!json_is_boolean (value))
                want = "a boolean";
            break;
        case S_MAP:
            if (!json_is_object (value))
                want = "a map";
            break;
        case S_STRMAP: {
            const char *key;
            const json_t *member;
            if (!json_is_object (value))
                want = "a map of strings";
            else
                json_object_foreach ((json_t *) value, key, member)
                    if (!json_is_string (member))
                        want = "a map of strings";
            break;
        }
        case S_ARRAY:
            if (!json_is_array (value))
                want = "an array";
            break;
        case S_ANY:
            break;
    }
    if (want) {
        s_set_err (err, errlen, "field '%s' of %s must be %s", field->name, type, want);
        return -1;
    }
    return 0;
}

/*  Finds the row for the message's type and checks its fields. Fields
    the row does not list are ignored, as PROTOCOL.md requires. */
static int
s_check_schema (const json_t *msg, char *err, size_t errlen)
{
    const char *type = dx_msg_type (msg);
    const s_schema_t *schema = NULL;
    for (size_t i = 0; i < sizeof s_schemas / sizeof s_schemas [0]; i++)
        if (streq (s_schemas [i].type, type))
            schema = &s_schemas [i];
    if (!schema) {
        char safe [DX_ENVELOPE_MAX + 1];
        s_set_err (err, errlen, "unknown message type '%s'",
                   s_sanitize (type, strlen (type), safe, sizeof safe));
        return -1;
    }
    for (const s_field_t *field = schema->fields; field->name; field++) {
        const json_t *value = json_object_get (msg, field->name);
        if (!value) {
            if (field->required) {
                s_set_err (err, errlen, "field '%s' of %s is missing", field->name, type);
                return -1;
            }
            continue;
        }
        if (s_check_field (field, type, value, err, errlen))
            return -1;
    }
    return 0;
}

/*  The unpacker's zone grows by chunks of this size: under 1 KiB, so that
    malloc serves them from its small bins. */
#define S_ZONE_CHUNK 896

/*  All four passes; the schema only when with_schema is set. */
static json_t *
s_decode (const void *data, size_t len, int with_schema, char *err, size_t errlen)
{
    s_clear_err (err, errlen);
    if (!data || len == 0) {
        s_set_err (err, errlen, "message is empty");
        return NULL;
    }
    if (len > DX_MSG_MAX_BYTES) {
        s_set_err (err, errlen, "message of %zu bytes is larger than the limit of %u bytes",
                   len, DX_MSG_MAX_BYTES);
        return NULL;
    }
    if (s_scan ((const unsigned char *) data, len, err, errlen))
        return NULL;

    //  Our own zone, in small chunks: msgpack_unpack_next would allocate
    //  8 KiB for every message, however small
    msgpack_zone zone;
    if (!msgpack_zone_init (&zone, S_ZONE_CHUNK)) {
        s_set_err (err, errlen, "out of memory while unpacking the message");
        return NULL;
    }
    msgpack_object object;
    size_t offset = 0;
    msgpack_unpack_return rc = msgpack_unpack (data, len, &offset, &zone, &object);
    json_t *msg = NULL;
    if (rc != MSGPACK_UNPACK_SUCCESS || offset != len) {
        //  Cannot happen after s_scan, short of running out of memory
        s_set_err (err, errlen, rc == MSGPACK_UNPACK_NOMEM_ERROR
                   ? "out of memory while unpacking the message"
                   : "message is not valid msgpack");
    }
    else {
        s_conv_t conv = { .err = err, .errlen = errlen };
        msg = s_to_json (&conv, &object);
    }
    msgpack_zone_destroy (&zone);

    if (msg && (s_check_envelope (msg, err, errlen)
            || (with_schema && s_check_schema (msg, err, errlen)))) {
        json_decref (msg);
        msg = NULL;
    }
    return msg;
}

/*  Full decode: what a receiver runs on every message. */
json_t *
dx_msg_decode (const void *data, size_t len, char *err, size_t errlen)
{
    return s_decode (data, len, 1, err, errlen);
}

/*  Decode without the schema: to find the id of a message to refuse. */
json_t *
dx_msg_decode_envelope (const void *data, size_t len, char *err, size_t errlen)
{
    return s_decode (data, len, 0, err, errlen);
}


//  ---------------------------------------------------------------------
//  Building messages and replies

/*  {v, type, id}; a fresh id from dx_id_new when none is given. */
json_t *
dx_msg_new (const char *type, const char *id)
{
    if (!type)
        return NULL;
    char fresh [33];
    if (!id)
        id = dx_id_new (fresh, sizeof fresh);
    json_t *msg = json_pack ("{s:i, s:s, s:s}", "v", DX_PROTO_VERSION,
                             "type", type, "id", id);
    return msg;
}

/*  Borrowed accessors: they never fail, absent or mistyped fields read as
    NULL or the default, so callers need no type checks of their own. */
const char *
dx_msg_type (const json_t *msg)
{
    return json_string_value (json_object_get (msg, "type"));
}

const char *
dx_msg_id (const json_t *msg)
{
    return json_string_value (json_object_get (msg, "id"));
}

const char *
dx_msg_str (const json_t *msg, const char *field)
{
    return json_string_value (json_object_get (msg, field));
}

json_int_t
dx_msg_int (const json_t *msg, const char *field, json_int_t dflt)
{
    const json_t *value = json_object_get (msg, field);
    return json_is_integer (value)? json_integer_value (value): dflt;
}

int
dx_msg_bool (const json_t *msg, const char *field, int dflt)
{
    const json_t *value = json_object_get (msg, field);
    return json_is_boolean (value)? json_is_true (value): dflt;
}

/*  The text as given when it is UTF-8, else with its other bytes replaced,
    so that a message is built whatever went into it. */
json_t *
dx_msg_string_new (const char *text)
{
    json_t *string = json_string (text? text: "");
    if (!string && text) {
        char *safe = strdup (text);
        if (!safe)
            return NULL;
        for (char *c = safe; *c; c++)
            if ((unsigned char) *c >= 0x80)
                *c = '?';
        string = json_string (safe);
        free (safe);
    }
    return string;
}

/*  The common part of every reply: {v, type: reply, id, status}, with the
    request's id, or "unknown" when there is no request or no id. */
static json_t *
s_reply_base (const json_t *request, const char *status)
{
    const char *id = dx_msg_id (request);
    json_t *reply = dx_msg_new ("reply", id? id: "unknown");
    if (reply && json_object_set_new (reply, "status",
                                      json_string (status? status: DX_INTERNAL))) {
        json_decref (reply);
        reply = NULL;
    }
    return reply;
}

/*  Success (or any status) with an optional body, which is stolen. A
    request with `text` true gets the body as its compact JSON text. */
json_t *
dx_reply_new (const json_t *request, const char *status, json_t *body)
{
    json_t *reply = s_reply_base (request, status);
    if (reply && body) {
        int failed;
        if (dx_msg_bool (request, "text", 0)) {
            json_free_t release;
            json_get_alloc_funcs (NULL, &release);
            char *text = json_dumps (body, JSON_COMPACT | JSON_ENCODE_ANY);
            failed = !text || json_object_set_new (reply, "text", json_string_nocheck (text));
            if (text)
                release (text);
        }
        else
            failed = json_object_set (reply, "body", body);
        if (failed) {
            json_decref (reply);
            reply = NULL;
        }
    }
    json_decref (body);
    return reply;
}

/*  Error reply with one message and, optionally, the field at fault. */
json_t *
dx_reply_error (const json_t *request, const char *status,
                const char *field, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = NULL;
    int rc = vasprintf (&text, fmt, args);
    va_end (args);
    if (rc < 0)
        return NULL;

    json_t *reply = s_reply_base (request, status);
    if (reply
    && (json_object_set_new (reply, "message", dx_msg_string_new (text))
    ||  (field && json_object_set_new (reply, "field", json_string (field))))) {
        json_decref (reply);
        reply = NULL;
    }
    free (text);
    return reply;
}

/*  Error reply listing several faults; NULL (errors freed) when errors
    is not a non-empty array, which is a bug in the caller. */
json_t *
dx_reply_errors (const json_t *request, const char *status, json_t *errors)
{
    if (!json_is_array (errors) || json_array_size (errors) == 0) {
        json_decref (errors);
        return NULL;
    }
    json_t *reply = s_reply_base (request, status);
    if (!reply) {
        json_decref (errors);
        return NULL;
    }
    //  The reply owns errors from here on, so first stays valid as long as it
    if (json_object_set_new (reply, "errors", errors)) {
        json_decref (reply);
        return NULL;
    }
    const json_t *first = json_array_get (errors, 0);
    const char *field = json_string_value (json_object_get (first, "field"));
    const char *message = json_string_value (json_object_get (first, "message"));
    if ((field && json_object_set_new (reply, "field", json_string (field)))
    ||  json_object_set_new (reply, "message",
                             json_string (message? message: "invalid request"))) {
        json_decref (reply);
        reply = NULL;
    }
    return reply;
}


//  ---------------------------------------------------------------------
//  ZeroMQ transport

/*  Sends one frame, retrying when a signal interrupts the call. */
static int
s_send_frame (void *handle, const void *data, size_t size, int flags)
{
    int rc;
    do
        rc = zmq_send (handle, data, size, flags);
    while (rc == -1 && errno == EINTR);
    return rc == -1? -1: 0;
}

/*  [identity] + message, sent with zmq_send so that nothing is left to
    free when a send fails; the identity frame stays the caller's. */
int
dx_msg_send (zsock_t *sock, zframe_t *identity, const json_t *msg)
{
    char *buf;
    size_t len;
    if (!sock || dx_msg_encode (msg, &buf, &len))
        return -1;
    void *handle = zsock_resolve (sock);
    int rc = 0;
    if (identity)
        rc = s_send_frame (handle, zframe_data (identity), zframe_size (identity),
                           ZMQ_SNDMORE);
    if (rc == 0)
        rc = s_send_frame (handle, buf, len, 0);
    sodium_memzero (buf, len);          /* it may hold credentials */
    free (buf);
    return rc;
}

/*  Receives one message. *identity_p and *raw_p are always set (NULL when
    absent), on success and failure alike, so a caller can destroy both
    unconditionally. A ROUTER caller gets the identity even when the frame
    count is wrong; the raw frame comes whenever the frame count is right. */
json_t *
dx_msg_recv (zsock_t *sock, zframe_t **identity_p, zframe_t **raw_p,
             char *err, size_t errlen)
{
    if (identity_p)
        *identity_p = NULL;
    if (raw_p)
        *raw_p = NULL;
    s_clear_err (err, errlen);

    //  Frame by frame (no zmsg: one list and its nodes fewer per message);
    //  the frames of a message arrive together, so only the first can fail
    zframe_t *kept [2] = { NULL, NULL };
    size_t frames = 0;
    zframe_t *next = sock? zframe_recv (sock): NULL;
    if (!next) {
        int saved = errno;
        s_set_err (err, errlen, "no message received (interrupted or timed out)");
        errno = saved;
        return NULL;
    }
    while (next) {
        int more = zframe_more (next);
        if (frames < 2)
            kept [frames] = next;
        else
            zframe_destroy (&next);
        frames++;
        next = more? zframe_recv (sock): NULL;
    }
    size_t expected = identity_p? 2: 1;
    if (identity_p)
        *identity_p = kept [0];
    if (frames != expected) {
        s_set_err (err, errlen, "expected %zu frame%s (%s), got %zu", expected,
                   expected == 1? "": "s",
                   identity_p? "identity, message": "message", frames);
        if (!identity_p)
            zframe_destroy (&kept [0]);
        zframe_destroy (&kept [1]);
        return NULL;
    }
    zframe_t *frame = kept [expected - 1];
    json_t *msg = dx_msg_decode (zframe_data (frame), zframe_size (frame), err, errlen);
    if (raw_p)
        *raw_p = frame;
    else
        zframe_destroy (&frame);
    return msg;
}
