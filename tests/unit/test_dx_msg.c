/*  Unit tests for common/dx_msg.c: the codec of proto/PROTOCOL.md.

    Malformed input is written byte by byte with the small mp_ builder below,
    so each decoder rule is tested with exactly the bytes that break it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dx_msg.h"

//  ---------------------------------------------------------------------
//  A tiny msgpack writer for hand-made test input

typedef struct {
    unsigned char data [8192];
    size_t len;
} mp_t;

static void
mp_raw (mp_t *b, const void *data, size_t len)
{
    assert_true (b->len + len <= sizeof b->data);
    memcpy (b->data + b->len, data, len);
    b->len += len;
}

static void
mp_byte (mp_t *b, unsigned char c)
{
    mp_raw (b, &c, 1);
}

/*  A map header for n entries (fixmap or map16). */
static void
mp_map (mp_t *b, unsigned n)
{
    if (n < 16)
        mp_byte (b, (unsigned char) (0x80 | n));
    else {
        mp_byte (b, 0xde);
        mp_byte (b, (unsigned char) (n >> 8));
        mp_byte (b, (unsigned char) n);
    }
}

/*  A str of len bytes (fixstr or str8). */
static void
mp_strn (mp_t *b, const char *s, size_t len)
{
    assert_true (len < 256);
    if (len < 32)
        mp_byte (b, (unsigned char) (0xa0 | len));
    else {
        mp_byte (b, 0xd9);
        mp_byte (b, (unsigned char) len);
    }
    mp_raw (b, s, len);
}

static void
mp_str (mp_t *b, const char *s)
{
    mp_strn (b, s, strlen (s));
}

/*  Starts a message: a map of 3 + extra entries holding v, type and id. */
static void
mp_envelope (mp_t *b, int v, const char *type, unsigned extra)
{
    mp_map (b, 3 + extra);
    mp_str (b, "v");
    mp_byte (b, (unsigned char) v);
    mp_str (b, "type");
    mp_str (b, type);
    mp_str (b, "id");
    mp_str (b, "req-1");
}

/*  Asserts that decoding fails with an error containing expected. */
static void
s_expect_error (const void *data, size_t len, const char *expected)
{
    char err [DX_ERR_LEN] = "untouched";
    json_t *msg = dx_msg_decode (data, len, err, sizeof err);
    if (msg || !strstr (err, expected))
        print_error ("expected error containing \"%s\", got %s \"%s\"\n",
                     expected, msg? "a message and": "", err);
    assert_null (msg);
    assert_non_null (strstr (err, expected));
}

static void
s_expect_mp_error (const mp_t *b, const char *expected)
{
    s_expect_error (b->data, b->len, expected);
}

/*  Decodes b, asserting success, and returns the message (caller owns). */
static json_t *
s_decode_ok (const mp_t *b)
{
    char err [DX_ERR_LEN];
    json_t *msg = dx_msg_decode (b->data, b->len, err, sizeof err);
    if (!msg)
        print_error ("unexpected decode error: %s\n", err);
    assert_non_null (msg);
    return msg;
}

/*  Encodes msg, decodes it again and checks both are equal. */
static void
s_assert_round_trip (const json_t *msg)
{
    char *buf;
    size_t len;
    char err [DX_ERR_LEN];
    assert_int_equal (dx_msg_encode (msg, &buf, &len), 0);
    json_t *back = dx_msg_decode (buf, len, err, sizeof err);
    if (!back)
        print_error ("round trip of %s failed: %s\n", dx_msg_type (msg), err);
    assert_non_null (back);
    assert_true (json_equal (back, msg));
    json_decref (back);
    free (buf);
}

/*  A request of type with the given fields added (stolen). */
static json_t *
s_request (const char *type, json_t *fields)
{
    json_t *msg = dx_msg_new (type, NULL);
    assert_non_null (msg);
    json_object_set_new (msg, "deadline", json_integer (1795574400123));
    assert_int_equal (json_object_update (msg, fields), 0);
    json_decref (fields);
    return msg;
}


//  ---------------------------------------------------------------------
//  Round trips

static void
test_round_trip_every_request (void **state)
{
    (void) state;
    json_t *group = json_pack ("{s:s, s:i, s:i, s:s, s:{s:s}, s:[{s:i, s:s}]}",
                               "name", "workers", "cpus", 16, "ram", 64,
                               "role", "*", "attributes", "rack", "r1",
                               "disks", "size", 100, "device", "xvdf");
    json_t *requests [] = {
        s_request ("cluster.list", json_object ()),
        s_request ("cluster.create", json_pack ("{s:{s:s, s:s, s:s}}", "cluster",
                   "name", "c1", "provider", "aws", "type", "mesos")),
        s_request ("cluster.get", json_pack ("{s:s}", "name", "c1")),
        s_request ("cluster.delete", json_pack ("{s:s, s:b}", "name", "c1", "force", 1)),
        s_request ("config.get", json_pack ("{s:s}", "name", "c1")),
        s_request ("config.put", json_pack ("{s:s, s:{s:s, s:i, s:f, s:n, s:s}}",
                   "name", "c1", "fields", "region", "us-west-2", "masters", 3,
                   "ratio", 0.25, "image", "sshkeydata", "LS0tLS1CRUdJTg==")),
        s_request ("config.delete", json_pack ("{s:s}", "name", "c1")),
        s_request ("group.list", json_pack ("{s:s}", "name", "c1")),
        s_request ("group.upsert", json_pack ("{s:s, s:O}", "name", "c1", "fields", group)),
        s_request ("group.get", json_pack ("{s:s, s:s}", "name", "c1", "group", "workers")),
        s_request ("group.update", json_pack ("{s:s, s:s, s:O}", "name", "c1",
                   "group", "workers", "fields", group)),
        s_request ("group.delete", json_pack ("{s:s, s:s}", "name", "c1", "group", "workers")),
        s_request ("deployment.get", json_pack ("{s:s}", "name", "c1")),
        s_request ("deployment.put", json_pack ("{s:s, s:{s:s, s:s, s:s, s:s}}",
                   "name", "c1", "fields", "command", "deploy", "parallelism", "5",
                   "aws_access_key_id", "AKIAABCDEFGHIJKLMNOP",
                   "aws_secret_access_key", "abc/def+ghi=")),
        s_request ("deployment.delete", json_pack ("{s:s, s:b}", "name", "c1", "force", 0)),
        s_request ("deployment.vpn", json_pack ("{s:s}", "name", "c1")),
        s_request ("deployment.events", json_pack ("{s:s}", "name", "c1")),
        s_request ("deployment.events", json_pack ("{s:s, s:s, s:i}", "name", "c1",
                   "after", "1795574400123-0", "count", 1000)),
    };
    for (size_t i = 0; i < sizeof requests / sizeof requests [0]; i++) {
        assert_non_null (requests [i]);
        s_assert_round_trip (requests [i]);
        json_decref (requests [i]);
    }
    json_decref (group);
}

/*  A reply far larger than the encoder's first buffer and the decoder's
    zone chunks: a list of 5,000 clusters (about 300 kB packed, tens of
    thousands of objects) and one string of 200 kB come back intact. */
static void
test_round_trip_large (void **state)
{
    (void) state;
    json_t *clusters = json_array ();
    for (int i = 0; i < 5000; i++) {
        char name [16];
        snprintf (name, sizeof name, "c%d", i);
        json_array_append_new (clusters, json_pack ("{s:s, s:s, s:s, s:i}", "name", name,
                               "provider", i % 2? "aws": "azure", "state", "init",
                               "generation", i));
    }
    size_t blob_len = 200 * 1024;
    char *blob = malloc (blob_len);
    assert_non_null (blob);
    for (size_t i = 0; i < blob_len; i++)
        blob [i] = (char) ('a' + i % 26);
    json_t *request = dx_msg_new ("cluster.list", NULL);
    json_t *reply = dx_reply_new (request, DX_OK, json_pack ("{s:o, s:s%}", "clusters",
                                  clusters, "note", blob, blob_len));
    free (blob);
    assert_non_null (reply);
    char *buf;
    size_t len;
    assert_int_equal (dx_msg_encode (reply, &buf, &len), 0);
    assert_true (len > 400 * 1024);
    char err [DX_ERR_LEN];
    json_t *back = dx_msg_decode (buf, len, err, sizeof err);
    assert_non_null (back);
    assert_true (json_equal (back, reply));
    free (buf);
    json_decref (back);
    json_decref (reply);
    json_decref (request);
}

static void
test_round_trip_replies (void **state)
{
    (void) state;
    json_t *request = s_request ("cluster.get", json_pack ("{s:s}", "name", "c1"));
    json_t *replies [] = {
        dx_reply_new (request, DX_OK, json_pack ("{s:s, s:[s, s], s:{s:i}, s:b, s:n, s:f}",
                      "name", "c1", "groups", "g1", "g2", "hosts", "masters", 3,
                      "configured", 1, "vpn", "load", -1.5)),
        dx_reply_new (request, DX_ACCEPTED, NULL),
        dx_reply_new (request, DX_OK, json_pack ("[I, I]", (json_int_t) INT64_MIN,
                                                 (json_int_t) INT64_MAX)),
        dx_reply_error (request, DX_NOT_FOUND, "name", "cluster '%s' does not exist", "c1"),
        dx_reply_errors (request, DX_INVALID, json_pack ("[{s:s, s:s}, {s:s, s:s}]",
                         "field", "masters", "message", "masters is required",
                         "field", "region", "message", "region is required")),
    };
    for (size_t i = 0; i < sizeof replies / sizeof replies [0]; i++) {
        assert_non_null (replies [i]);
        assert_string_equal (dx_msg_type (replies [i]), "reply");
        assert_string_equal (dx_msg_id (replies [i]), dx_msg_id (request));
        s_assert_round_trip (replies [i]);
        json_decref (replies [i]);
    }
    json_decref (request);
}

/*  A message of type with the given fields added (stolen), no deadline. */
static json_t *
s_message (const char *type, json_t *fields)
{
    json_t *msg = dx_msg_new (type, NULL);
    assert_non_null (msg);
    assert_non_null (fields);
    assert_int_equal (json_object_update (msg, fields), 0);
    json_decref (fields);
    return msg;
}

/*  Every message between the scheduler and the workers. */
static void
test_round_trip_worker_messages (void **state)
{
    (void) state;
    json_t *messages [] = {
        s_message ("worker.ready", json_pack ("{s:s, s:i, s:s}", "service", "aws",
                   "capacity", 8, "worker", "host1:4242")),
        s_message ("worker.ready", json_pack ("{s:s, s:i, s:s, s:[s, s]}", "service", "vpn",
                   "capacity", 1, "worker", "host1:4243", "active", "job-1", "job-2")),
        s_message ("worker.welcome", json_pack ("{s:i, s:i}", "heartbeat_ms", 1000,
                   "lease_ms", 30000)),
        s_message ("heartbeat", json_object ()),
        s_message ("heartbeat", json_pack ("{s:[s]}", "active", "job-1")),
        s_message ("worker.reconnect", json_object ()),
        s_message ("job.assign", json_pack ("{s:s, s:i, s:s, s:i, s:{s:s, s:s, s:i}, "
                   "s:{s:s, s:s, s:s}, s:i}", "job", "job-1", "attempt", 1, "cluster", "c1",
                   "generation", 3, "step", "kind", "instances", "group", "workers",
                   "count", 4, "credentials", "aws_access_key_id", "AKIAABCDEFGHIJKLMNOP",
                   "aws_secret_access_key", "abc/def+ghi=", "region", "us-west-2",
                   "lease_ms", 30000)),
        s_message ("job.renew", json_pack ("{s:s, s:i}", "job", "job-1", "attempt", 1)),
        s_message ("job.result", json_pack ("{s:s, s:i, s:s, s:[{s:s, s:s, s:s}]}",
                   "job", "job-1", "attempt", 1, "outcome", "done", "resources",
                   "kind", "vpc", "provider_id", "vpc-0123", "cidr", "10.0.0.0/16")),
        s_message ("job.result", json_pack ("{s:s, s:i, s:s, s:[], s:{s:s, s:s, s:b}}",
                   "job", "job-1", "attempt", 2, "outcome", "failed", "resources",
                   "error", "code", "AuthFailure", "message", "bad keys", "permanent", 1)),
        s_message ("job.result", json_pack ("{s:s, s:i, s:s, s:[], s:{s:s, s:s, s:b}}",
                   "job", "job-1", "attempt", 3, "outcome", "retry", "resources",
                   "error", "code", "WORKER_BUSY", "message", "at capacity", "permanent", 0)),
        s_message ("job.cancel", json_pack ("{s:s, s:i}", "job", "job-1", "attempt", 1)),
        s_message ("worker.bye", json_object ()),
    };
    for (size_t i = 0; i < sizeof messages / sizeof messages [0]; i++) {
        s_assert_round_trip (messages [i]);
        json_decref (messages [i]);
    }

    //  Each table row checks its fields
    struct {
        const char *type;
        json_t *fields;
        const char *expected;
    } cases [] = {
        { "worker.ready", json_pack ("{s:s, s:i, s:s}", "service", "gcp", "capacity", 1,
          "worker", "h:1"), "field 'service' of worker.ready must be one of aws, azure, vpn" },
        { "worker.ready", json_pack ("{s:s, s:i, s:s}", "service", "aws", "capacity", 0,
          "worker", "h:1"), "field 'capacity' of worker.ready must be an integer of at least 1" },
        { "worker.ready", json_pack ("{s:s, s:i}", "service", "aws", "capacity", 1),
          "field 'worker' of worker.ready is missing" },
        { "worker.ready", json_pack ("{s:s, s:i, s:s, s:s}", "service", "aws", "capacity", 1,
          "worker", "h:1", "active", "job-1"), "field 'active' of worker.ready must be an array" },
        { "worker.welcome", json_pack ("{s:i}", "heartbeat_ms", 1000),
          "field 'lease_ms' of worker.welcome is missing" },
        { "worker.welcome", json_pack ("{s:i, s:i}", "heartbeat_ms", 0, "lease_ms", 1),
          "field 'heartbeat_ms' of worker.welcome must be an integer of at least 1" },
        { "heartbeat", json_pack ("{s:{}}", "active"),
          "field 'active' of heartbeat must be an array" },
        { "job.assign", json_pack ("{s:s, s:i, s:s, s:i, s:{}, s:{s:i}, s:i}", "job", "j",
          "attempt", 1, "cluster", "c1", "generation", 1, "step", "credentials", "k", 1,
          "lease_ms", 100), "field 'credentials' of job.assign must be a map of strings" },
        { "job.assign", json_pack ("{s:s, s:i, s:s, s:i, s:[], s:{}, s:i}", "job", "j",
          "attempt", 1, "cluster", "c1", "generation", 1, "step", "credentials",
          "lease_ms", 100), "field 'step' of job.assign must be a map" },
        { "job.assign", json_pack ("{s:s, s:i, s:s, s:i, s:{}, s:{}}", "job", "j",
          "attempt", 1, "cluster", "c1", "generation", 1, "step", "credentials"),
          "field 'lease_ms' of job.assign is missing" },
        { "job.renew", json_pack ("{s:s, s:i}", "job", "j", "attempt", -1),
          "field 'attempt' of job.renew must be an integer of at least 0" },
        { "job.renew", json_pack ("{s:i, s:i}", "job", 7, "attempt", 1),
          "field 'job' of job.renew must be a string" },
        { "job.result", json_pack ("{s:s, s:i, s:s, s:[]}", "job", "j", "attempt", 1,
          "outcome", "maybe", "resources"),
          "field 'outcome' of job.result must be one of done, failed, retry" },
        { "job.result", json_pack ("{s:s, s:i, s:s}", "job", "j", "attempt", 1,
          "outcome", "done"), "field 'resources' of job.result is missing" },
        { "job.result", json_pack ("{s:s, s:i, s:s, s:[], s:s}", "job", "j", "attempt", 1,
          "outcome", "failed", "resources", "error", "boom"),
          "field 'error' of job.result must be a map" },
        { "job.cancel", json_pack ("{s:s}", "job", "j"),
          "field 'attempt' of job.cancel is missing" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        json_t *msg = s_message (cases [i].type, cases [i].fields);
        char *buf;
        size_t len;
        assert_int_equal (dx_msg_encode (msg, &buf, &len), 0);
        s_expect_error (buf, len, cases [i].expected);
        free (buf);
        json_decref (msg);
    }
}

/*  Floats: float64 stays exact; float32 on the wire becomes a real. */
static void
test_floats (void **state)
{
    (void) state;
    mp_t b = { .len = 0 };
    mp_envelope (&b, 1, "cluster.list", 3);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x00);
    mp_str (&b, "f32");
    mp_raw (&b, "\xca\x3f\xc0\x00\x00", 5);               /* 1.5f */
    mp_str (&b, "f64");
    mp_raw (&b, "\xcb\xc0\x09\x21\xfb\x54\x44\x2d\x18", 9);    /* -pi */
    json_t *msg = s_decode_ok (&b);
    assert_true (json_is_real (json_object_get (msg, "f32")));
    assert_true (json_real_value (json_object_get (msg, "f32")) == 1.5);
    assert_true (json_real_value (json_object_get (msg, "f64")) == -3.141592653589793);
    json_decref (msg);
}


//  ---------------------------------------------------------------------
//  Encoder

static void
test_encode_rejects (void **state)
{
    (void) state;
    char *buf = NULL;
    size_t len = 0;

    //  Not an object at the top
    json_t *array = json_array ();
    assert_int_equal (dx_msg_encode (array, &buf, &len), -1);
    assert_int_equal (dx_msg_encode (NULL, &buf, &len), -1);
    json_decref (array);

    //  Nesting: 32 levels pack, 33 do not
    json_t *top = json_object ();
    json_t *inner = top;
    for (int level = 2; level <= 32; level++) {
        json_t *child = json_object ();
        json_object_set_new (inner, "x", child);
        inner = child;
    }
    assert_int_equal (dx_msg_encode (top, &buf, &len), 0);
    free (buf);
    //  dx_msg_too_deep counts as the encoder does
    assert_false (dx_msg_too_deep (top, DX_MSG_MAX_DEPTH));
    assert_true (dx_msg_too_deep (top, DX_MSG_MAX_DEPTH - 1));
    json_object_set_new (inner, "x", json_array ());            /* level 33 */
    assert_int_equal (dx_msg_encode (top, &buf, &len), -1);
    assert_true (dx_msg_too_deep (top, DX_MSG_MAX_DEPTH));
    assert_false (dx_msg_too_deep (json_object_get (top, "x"), DX_MSG_MAX_DEPTH));
    json_decref (top);
    json_t *scalar = json_integer (1);
    assert_false (dx_msg_too_deep (scalar, 0));
    json_decref (scalar);

    //  Larger than DX_MSG_MAX_BYTES
    char *big = malloc (DX_MSG_MAX_BYTES);
    assert_non_null (big);
    memset (big, 'a', DX_MSG_MAX_BYTES);
    json_t *msg = json_pack ("{s:s%}", "blob", big, (size_t) DX_MSG_MAX_BYTES);
    free (big);
    assert_non_null (msg);
    assert_int_equal (dx_msg_encode (msg, &buf, &len), -1);
    json_decref (msg);

    //  NUL in a string or a key: no decoder would take it back
    msg = json_object ();
    json_object_set_new (msg, "s", json_stringn ("a\0b", 3));
    assert_int_equal (dx_msg_encode (msg, &buf, &len), -1);
    json_decref (msg);
    msg = json_object ();
    json_object_setn_new (msg, "k\0k", 3, json_true ());
    assert_int_equal (dx_msg_encode (msg, &buf, &len), -1);
    json_decref (msg);
}

/*  The packed bytes are the compact msgpack forms PROTOCOL.md describes. */
static void
test_encode_bytes (void **state)
{
    (void) state;
    json_t *msg = json_pack ("{s:i}", "v", 1);
    char *buf;
    size_t len;
    assert_int_equal (dx_msg_encode (msg, &buf, &len), 0);
    assert_int_equal (len, 4);
    assert_memory_equal (buf, "\x81\xa1v\x01", 4);
    free (buf);
    json_decref (msg);

    msg = json_pack ("{s:I, s:f, s:b, s:n}", "i", (json_int_t) -300, "f", 0.5, "t", 1, "z");
    assert_int_equal (dx_msg_encode (msg, &buf, &len), 0);
    const unsigned char expect [] = {
        0x84, 0xa1, 'i', 0xd1, 0xfe, 0xd4,
        0xa1, 'f', 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0,
        0xa1, 't', 0xc3,
        0xa1, 'z', 0xc0
    };
    assert_int_equal (len, sizeof expect);
    assert_memory_equal (buf, expect, sizeof expect);
    free (buf);
    json_decref (msg);
}


//  ---------------------------------------------------------------------
//  Decoder rules, one by one

static void
test_decode_size_limits (void **state)
{
    (void) state;
    s_expect_error ("", 0, "message is empty");
    s_expect_error (NULL, 0, "message is empty");
    size_t len = DX_MSG_MAX_BYTES + 1;
    unsigned char *big = calloc (1, len);
    assert_non_null (big);
    big [0] = 0x80;
    s_expect_error (big, len, "larger than the limit of 16777216 bytes");
    free (big);
}

static void
test_decode_framing (void **state)
{
    (void) state;
    mp_t b = { .len = 0 };
    mp_envelope (&b, 1, "cluster.list", 1);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x05);
    json_decref (s_decode_ok (&b));

    //  Trailing bytes after one complete object
    mp_t trailing = b;
    mp_byte (&trailing, 0xc0);
    s_expect_mp_error (&trailing, "message has 1 trailing byte(s) after the msgpack map");

    //  Every proper prefix is truncated
    for (size_t cut = 1; cut < b.len; cut++)
        s_expect_error (b.data, cut, "truncated");

    //  Top level not a map
    s_expect_error ("\x92\x01\x02", 3, "not a msgpack map");
    s_expect_error ("\xa1x", 2, "not a msgpack map");
    s_expect_error ("\x01", 1, "not a msgpack map");

    //  The byte msgpack never uses
    s_expect_error ("\x81\xa1v\xc1", 4, "invalid msgpack byte 0xc1");
}

/*  Headers declaring 2^32-1 elements or bytes must fail at once, before
    anything is allocated for them (ASan would catch a huge allocation). */
static void
test_decode_huge_declared_lengths (void **state)
{
    (void) state;
    s_expect_error ("\xdf\xff\xff\xff\xff", 5,
                    "message is truncated (a map at byte 0 declares 4294967295 entries)");
    s_expect_error ("\x81\xa1x\xdd\xff\xff\xff\xff\x01\x02", 10,
                    "message is truncated (an array at byte 3 declares 4294967295 elements)");
    s_expect_error ("\x81\xa1x\xdb\xff\xff\xff\xff" "abc", 11, "truncated");
    s_expect_error ("\x81\xda\xff\xff" "ab", 6, "truncated");
    //  A valid-looking map16 of 0x1000 entries with no entries present
    s_expect_error ("\xde\x10\x00\xa1v\x01", 6, "truncated");
}

static void
test_decode_keys (void **state)
{
    (void) state;
    mp_t b = { .len = 0 };
    mp_envelope (&b, 1, "cluster.list", 2);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x05);
    mp_byte (&b, 0x07);                                 /* integer key */
    mp_byte (&b, 0x01);
    s_expect_mp_error (&b, "a map key is not a string at the top level");

    //  A non-string key deep down names its place
    b.len = 0;
    mp_envelope (&b, 1, "cluster.list", 2);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x05);
    mp_str (&b, "spec");
    mp_map (&b, 1);
    mp_byte (&b, 0xc3);                                 /* true as a key */
    mp_byte (&b, 0x01);
    s_expect_mp_error (&b, "a map key is not a string at 'spec'");

    b.len = 0;
    mp_envelope (&b, 1, "cluster.list", 2);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x05);
    mp_str (&b, "v");                                   /* v again */
    mp_byte (&b, 0x01);
    s_expect_mp_error (&b, "duplicate key 'v'");

    //  Empty keys and strings, also as the very first string (where
    //  msgpack-c leaves the string pointer NULL)
    b.len = 0;
    mp_map (&b, 6);
    mp_str (&b, "");
    mp_str (&b, "");
    mp_raw (&b, "\xa1v\x01\xa4type\xac" "cluster.list" "\xa2id\xa1r", 26);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x05);
    mp_str (&b, "x");
    mp_str (&b, "");
    json_t *msg = s_decode_ok (&b);
    assert_string_equal (json_string_value (json_object_get (msg, "")), "");
    assert_string_equal (json_string_value (json_object_get (msg, "x")), "");
    s_assert_round_trip (msg);
    json_decref (msg);

    b.len = 0;
    mp_map (&b, 5);
    mp_str (&b, "");
    mp_byte (&b, 0x01);
    mp_raw (&b, "\xa1v\x01\xa4type\xac" "cluster.list" "\xa2id\xa1r", 26);
    mp_str (&b, "");
    mp_byte (&b, 0x02);
    s_expect_mp_error (&b, "duplicate key '' at the top level");

    //  Same key in two different maps is fine
    b.len = 0;
    mp_envelope (&b, 1, "cluster.list", 2);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x05);
    mp_str (&b, "x");
    mp_map (&b, 1);
    mp_str (&b, "v");
    mp_byte (&b, 0x02);
    json_decref (s_decode_ok (&b));
}

/*  Builds a message whose field "x" nests so that the deepest container
    is at level depth (the top map is level 1). */
static void
s_nested (mp_t *b, int depth, int as_arrays)
{
    b->len = 0;
    mp_envelope (b, 1, "cluster.list", 2);
    mp_str (b, "deadline");
    mp_byte (b, 0x05);
    mp_str (b, "x");
    for (int level = 2; level < depth; level++) {
        if (as_arrays)
            mp_byte (b, 0x91);
        else {
            mp_map (b, 1);
            mp_str (b, "x");
        }
    }
    mp_byte (b, as_arrays? 0x91: 0x80);                 /* innermost */
    if (as_arrays)
        mp_byte (b, 0x01);
}

static void
test_decode_depth (void **state)
{
    (void) state;
    mp_t b;
    for (int as_arrays = 0; as_arrays <= 1; as_arrays++) {
        s_nested (&b, 32, as_arrays);
        json_t *msg = s_decode_ok (&b);
        s_assert_round_trip (msg);
        json_decref (msg);
        s_nested (&b, 33, as_arrays);
        s_expect_mp_error (&b, "nests deeper than 32 levels");
    }
    //  A long run of array headers (a classic stack exhaustion input)
    mp_t deep = { .len = 0 };
    mp_map (&deep, 1);
    mp_str (&deep, "x");
    for (int i = 0; i < 5000; i++)
        mp_byte (&deep, 0x91);
    mp_byte (&deep, 0x01);
    s_expect_mp_error (&deep, "nests deeper than 32 levels");
}

/*  A message with one extra field "x" whose value is the given bytes. */
static void
s_with_value (mp_t *b, const void *value, size_t len)
{
    b->len = 0;
    mp_envelope (b, 1, "cluster.list", 2);
    mp_str (b, "deadline");
    mp_byte (b, 0x05);
    mp_str (b, "x");
    mp_raw (b, value, len);
}

static void
test_decode_values (void **state)
{
    (void) state;
    mp_t b;
    s_with_value (&b, "\xc4\x01\x41", 3);
    s_expect_mp_error (&b, "bin values are not allowed");
    s_with_value (&b, "\xc5\x00\x01\x41", 4);
    s_expect_mp_error (&b, "bin values are not allowed");
    s_with_value (&b, "\xd4\x01\x00", 3);
    s_expect_mp_error (&b, "ext values are not allowed");
    s_with_value (&b, "\xc7\x01\x05\x00", 4);
    s_expect_mp_error (&b, "ext values are not allowed");

    //  UTF-8: bad continuation, overlong (2, 3, 4 bytes), surrogate, above
    //  U+10FFFF, cut short, a byte that is never UTF-8
    const char *bad_utf8 [] = {
        "\xa2\xc3\x28", "\xa2\xc0\x80", "\xa3\xe0\x80\xaf", "\xa4\xf0\x80\x80\xaf",
        "\xa3\xed\xa0\x80",
        "\xa4\xf4\x90\x80\x80", "\xa2\xe2\x82", "\xa1\xff"
    };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8 [0]; i++) {
        s_with_value (&b, bad_utf8 [i], 1 + (bad_utf8 [i][0] & 0x1f));
        s_expect_mp_error (&b, "string is not valid UTF-8 at 'x'");
    }
    //  Good UTF-8 of every length is kept as it is
    s_with_value (&b, "\xaa" "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 11);
    json_t *msg = s_decode_ok (&b);
    assert_string_equal (json_string_value (json_object_get (msg, "x")),
                         "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    json_decref (msg);

    s_with_value (&b, "\xa3" "a\0b", 4);
    s_expect_mp_error (&b, "string contains a NUL byte at 'x'");

    //  A bad key is reported as a key
    b.len = 0;
    mp_envelope (&b, 1, "cluster.list", 2);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x05);
    mp_raw (&b, "\xa2k\0", 3);
    mp_byte (&b, 0x01);
    s_expect_mp_error (&b, "a map key contains a NUL byte");

    //  Integers: 2^63-1 fits, 2^63 does not; the most negative int64 fits
    s_with_value (&b, "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9);
    msg = s_decode_ok (&b);
    assert_true (json_integer_value (json_object_get (msg, "x")) == INT64_MAX);
    json_decref (msg);
    s_with_value (&b, "\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 9);
    s_expect_mp_error (&b, "integer is larger than 2^63-1 at 'x'");
    s_with_value (&b, "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    s_expect_mp_error (&b, "integer is larger than 2^63-1");
    s_with_value (&b, "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9);
    msg = s_decode_ok (&b);
    assert_true (json_integer_value (json_object_get (msg, "x")) == INT64_MIN);
    json_decref (msg);

    //  NaN and infinity have no JSON form
    s_with_value (&b, "\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 9);
    s_expect_mp_error (&b, "number is not finite");
    s_with_value (&b, "\xca\xff\x80\x00\x00", 5);
    s_expect_mp_error (&b, "number is not finite");

    //  The path of a fault inside arrays and maps
    s_with_value (&b, "\x92\x01\x81\xa1k\xa1\xff", 7);
    s_expect_mp_error (&b, "string is not valid UTF-8 at 'x[1].k'");
}

static void
test_decode_envelope (void **state)
{
    (void) state;
    mp_t b = { .len = 0 };
    mp_envelope (&b, 2, "cluster.list", 1);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x05);
    s_expect_mp_error (&b, "unsupported protocol version 2");
    char err [DX_ERR_LEN];
    assert_null (dx_msg_decode_envelope (b.data, b.len, err, sizeof err));
    assert_string_equal (err, "unsupported protocol version 2");

    b.len = 0;
    mp_envelope (&b, 0x7f, "cluster.list", 0);
    s_expect_mp_error (&b, "unsupported protocol version 127");

    //  v of the wrong type, zero, negative or missing
    const char *bad_v [] = { "\xa1\x31", "\x00", "\xff", "\xc0", "\xcb\x3f\xf0\0\0\0\0\0\0" };
    size_t bad_v_len [] = { 2, 1, 1, 1, 9 };
    for (size_t i = 0; i < 5; i++) {
        b.len = 0;
        mp_map (&b, 3);
        mp_str (&b, "v");
        mp_raw (&b, bad_v [i], bad_v_len [i]);
        mp_str (&b, "type");
        mp_str (&b, "cluster.list");
        mp_str (&b, "id");
        mp_str (&b, "r");
        s_expect_mp_error (&b, "field 'v' (protocol version) must be a positive integer");
    }
    b.len = 0;
    mp_map (&b, 2);
    mp_str (&b, "type");
    mp_str (&b, "cluster.list");
    mp_str (&b, "id");
    mp_str (&b, "r");
    s_expect_mp_error (&b, "field 'v' (protocol version) must be a positive integer");

    //  type and id: strings of 1 to 64 bytes
    char long_text [66];
    memset (long_text, 'a', 65);
    long_text [65] = 0;
    const char *fields [] = { "type", "id" };
    for (int f = 0; f < 2; f++) {
        for (int variant = 0; variant < 4; variant++) {
            b.len = 0;
            mp_map (&b, 3);
            mp_str (&b, "v");
            mp_byte (&b, 1);
            for (int g = 0; g < 2; g++) {
                mp_str (&b, fields [g]);
                if (g != f)
                    mp_str (&b, g == 0? "cluster.list": "r");
                else
                if (variant == 0)
                    mp_str (&b, "");
                else
                if (variant == 1)
                    mp_str (&b, long_text);
                else
                if (variant == 2)
                    mp_byte (&b, 0x01);
                else
                    mp_byte (&b, 0xc0);
            }
            char expected [64];
            snprintf (expected, sizeof expected,
                      "field '%s' must be a string of 1 to 64 bytes", fields [f]);
            s_expect_mp_error (&b, expected);
        }
    }
    //  64 bytes is still fine
    long_text [64] = 0;
    b.len = 0;
    mp_map (&b, 4);
    mp_str (&b, "v");
    mp_byte (&b, 1);
    mp_str (&b, "type");
    mp_str (&b, "cluster.list");
    mp_str (&b, "id");
    mp_str (&b, long_text);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x00);
    json_t *msg = s_decode_ok (&b);
    assert_string_equal (dx_msg_id (msg), long_text);
    json_decref (msg);
}

static void
test_decode_schema (void **state)
{
    (void) state;
    char err [DX_ERR_LEN];

    //  Unknown type: an error for dx_msg_decode, fine for the envelope
    mp_t b = { .len = 0 };
    mp_envelope (&b, 1, "cluster.explode", 0);
    s_expect_mp_error (&b, "unknown message type 'cluster.explode'");
    json_t *msg = dx_msg_decode_envelope (b.data, b.len, err, sizeof err);
    assert_non_null (msg);
    assert_string_equal (dx_msg_id (msg), "req-1");
    assert_string_equal (err, "");
    json_decref (msg);

    //  A type with control characters is quoted safely
    b.len = 0;
    mp_envelope (&b, 1, "bad\ntype", 0);
    s_expect_mp_error (&b, "unknown message type 'bad?type'");

    //  Missing required fields, and the envelope still readable
    b.len = 0;
    mp_envelope (&b, 1, "cluster.get", 1);
    mp_str (&b, "deadline");
    mp_byte (&b, 0x05);
    s_expect_mp_error (&b, "field 'name' of cluster.get is missing");
    msg = dx_msg_decode_envelope (b.data, b.len, NULL, 0);
    assert_non_null (msg);
    json_decref (msg);

    b.len = 0;
    mp_envelope (&b, 1, "cluster.get", 1);
    mp_str (&b, "name");
    mp_str (&b, "c1");
    s_expect_mp_error (&b, "field 'deadline' of cluster.get is missing");

    b.len = 0;
    mp_envelope (&b, 1, "reply", 0);
    s_expect_mp_error (&b, "field 'status' of reply is missing");

    //  Wrong types, one field of every kind
    struct {
        const char *type;
        json_t *fields;
        const char *expected;
    } cases [] = {
        { "cluster.get", json_pack ("{s:i}", "name", 7),
          "field 'name' of cluster.get must be a string" },
        { "cluster.delete", json_pack ("{s:s, s:s}", "name", "c1", "force", "true"),
          "field 'force' of cluster.delete must be a boolean" },
        { "cluster.create", json_pack ("{s:[]}", "cluster"),
          "field 'cluster' of cluster.create must be a map" },
        { "config.put", json_pack ("{s:s, s:[]}", "name", "c1", "fields"),
          "field 'fields' of config.put must be a map" },
        { "deployment.put", json_pack ("{s:s}", "name", "c1"),
          "field 'fields' of deployment.put is missing" },
        { "group.upsert", json_pack ("{s:s, s:s}", "name", "c1", "fields", "x"),
          "field 'fields' of group.upsert must be a map" },
        { "deployment.events", json_pack ("{s:s, s:i}", "name", "c1", "count", 0),
          "field 'count' of deployment.events must be an integer from 1 to 1000" },
        { "deployment.events", json_pack ("{s:s, s:i}", "name", "c1", "after", 0),
          "field 'after' of deployment.events must be a string" },
        { "group.update", json_pack ("{s:s, s:s, s:s}", "name", "c1",
          "group", "g1", "fields", "{}"),
          "field 'fields' of group.update must be a map" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        json_t *request = s_request (cases [i].type, cases [i].fields);
        char *buf;
        size_t len;
        assert_int_equal (dx_msg_encode (request, &buf, &len), 0);
        s_expect_error (buf, len, cases [i].expected);
        free (buf);
        json_decref (request);
    }

    //  A negative deadline
    json_t *request = s_request ("cluster.list", json_object ());
    json_object_set_new (request, "deadline", json_integer (-1));
    char *buf;
    size_t len;
    assert_int_equal (dx_msg_encode (request, &buf, &len), 0);
    s_expect_error (buf, len, "field 'deadline' of cluster.list must be an integer "
                              "of at least 0");
    free (buf);
    json_decref (request);

    //  Replies: status must be a known code; errors an array
    request = dx_msg_new ("reply", "r1");
    json_object_set_new (request, "status", json_string ("MAYBE"));
    assert_int_equal (dx_msg_encode (request, &buf, &len), 0);
    s_expect_error (buf, len, "field 'status' of reply must be one of OK, CREATED, "
                              "ACCEPTED, INVALID, NOT_FOUND, CONFLICT, UNAVAILABLE, INTERNAL");
    free (buf);
    json_object_set_new (request, "status", json_string (DX_INVALID));
    json_object_set_new (request, "errors", json_string ("x"));
    assert_int_equal (dx_msg_encode (request, &buf, &len), 0);
    s_expect_error (buf, len, "field 'errors' of reply must be an array");
    free (buf);
    json_decref (request);

    //  Unknown extra fields are ignored
    request = s_request ("cluster.get", json_pack ("{s:s, s:{s:[i]}, s:s}", "name", "c1",
                                                   "future", "x", 1, "other", "y"));
    s_assert_round_trip (request);
    json_decref (request);
}


//  ---------------------------------------------------------------------
//  Building messages and accessors

static void
test_new_and_accessors (void **state)
{
    (void) state;
    json_t *msg = dx_msg_new ("cluster.get", NULL);
    assert_non_null (msg);
    assert_int_equal (dx_msg_int (msg, "v", 0), 1);
    assert_string_equal (dx_msg_type (msg), "cluster.get");
    assert_int_equal (strlen (dx_msg_id (msg)), 32);
    json_t *other = dx_msg_new ("cluster.get", NULL);
    assert_string_not_equal (dx_msg_id (msg), dx_msg_id (other));
    json_decref (other);

    json_object_set_new (msg, "name", json_string ("c1"));
    json_object_set_new (msg, "force", json_true ());
    json_object_set_new (msg, "count", json_integer (42));
    assert_string_equal (dx_msg_str (msg, "name"), "c1");
    assert_null (dx_msg_str (msg, "count"));
    assert_null (dx_msg_str (msg, "absent"));
    assert_int_equal (dx_msg_int (msg, "count", -1), 42);
    assert_int_equal (dx_msg_int (msg, "name", -1), -1);
    assert_int_equal (dx_msg_bool (msg, "force", 0), 1);
    assert_int_equal (dx_msg_bool (msg, "count", 7), 7);
    assert_int_equal (dx_msg_bool (msg, "absent", 0), 0);
    json_decref (msg);

    msg = dx_msg_new ("cluster.list", "given-id");
    assert_string_equal (dx_msg_id (msg), "given-id");
    json_decref (msg);
    assert_null (dx_msg_new (NULL, NULL));
    assert_null (dx_msg_type (NULL));
    assert_null (dx_msg_id (NULL));
    assert_int_equal (dx_msg_int (NULL, "x", 3), 3);

    //  Strings from outside: UTF-8 kept, other bytes as '?', NULL as ""
    json_t *text = dx_msg_string_new ("caf\xc3\xa9");
    assert_string_equal (json_string_value (text), "caf\xc3\xa9");
    json_decref (text);
    text = dx_msg_string_new ("bad \xff\xc3 end\t");
    assert_string_equal (json_string_value (text), "bad ?? end\t");
    json_decref (text);
    text = dx_msg_string_new (NULL);
    assert_string_equal (json_string_value (text), "");
    json_decref (text);
}

static void
test_replies (void **state)
{
    (void) state;
    json_t *request = dx_msg_new ("cluster.get", "abc");

    json_t *reply = dx_reply_new (request, DX_OK, json_pack ("{s:s}", "name", "c1"));
    assert_string_equal (dx_msg_type (reply), "reply");
    assert_string_equal (dx_msg_id (reply), "abc");
    assert_string_equal (dx_msg_str (reply, "status"), "OK");
    assert_string_equal (json_string_value (json_object_get (
                         json_object_get (reply, "body"), "name")), "c1");
    json_decref (reply);

    reply = dx_reply_new (NULL, DX_INTERNAL, NULL);
    assert_string_equal (dx_msg_id (reply), "unknown");
    assert_null (json_object_get (reply, "body"));
    json_decref (reply);

    json_t *no_id = json_object ();
    reply = dx_reply_error (no_id, DX_INVALID, NULL, "bad %s of %d bytes", "thing", 3);
    assert_string_equal (dx_msg_id (reply), "unknown");
    assert_string_equal (dx_msg_str (reply, "status"), "INVALID");
    assert_string_equal (dx_msg_str (reply, "message"), "bad thing of 3 bytes");
    assert_null (json_object_get (reply, "field"));
    json_decref (reply);
    json_decref (no_id);

    reply = dx_reply_error (request, DX_CONFLICT, "name", "cluster %s exists", "c1");
    assert_string_equal (dx_msg_str (reply, "field"), "name");
    assert_string_equal (dx_msg_str (reply, "message"), "cluster c1 exists");
    json_decref (reply);

    //  A message that is not UTF-8 still makes a reply
    reply = dx_reply_error (request, DX_INVALID, NULL, "bad byte %s", "\xff");
    assert_non_null (reply);
    assert_string_equal (dx_msg_str (reply, "message"), "bad byte ?");
    json_decref (reply);

    reply = dx_reply_errors (request, DX_INVALID, json_pack ("[{s:s, s:s}, {s:s, s:s}]",
                             "field", "masters", "message", "masters is required",
                             "field", "region", "message", "region is required"));
    assert_string_equal (dx_msg_str (reply, "field"), "masters");
    assert_string_equal (dx_msg_str (reply, "message"), "masters is required");
    assert_int_equal (json_array_size (json_object_get (reply, "errors")), 2);
    json_decref (reply);

    assert_null (dx_reply_errors (request, DX_INVALID, json_array ()));
    assert_null (dx_reply_errors (request, DX_INVALID, NULL));
    json_decref (request);
}

/*  A request with text true gets its body as compact JSON text, which
    survives the codec; text must be a boolean in a request, a string in a
    reply. */
static void
test_text_replies (void **state)
{
    (void) state;
    json_t *request = s_request ("cluster.get", json_pack ("{s:s, s:b}", "name", "c1",
                                                           "text", 1));
    s_assert_round_trip (request);
    json_t *reply = dx_reply_new (request, DX_OK,
                                  json_pack ("{s:s, s:[i, f], s:{}, s:s}", "name", "c1",
                                             "n", 7, 0.5, "empty", "utf8", "\u00e9\\\""));
    assert_null (json_object_get (reply, "body"));
    assert_string_equal (dx_msg_str (reply, "text"),
                         "{\"name\":\"c1\",\"n\":[7,0.5],\"empty\":{},\"utf8\":\"\u00e9\\\\\\\"\"}");
    s_assert_round_trip (reply);
    json_decref (reply);

    //  Errors carry no body, text or not
    reply = dx_reply_error (request, DX_NOT_FOUND, "name", "no %s", "c1");
    assert_null (json_object_get (reply, "text"));
    json_decref (reply);

    //  text false: the body as a value
    json_object_set_new (request, "text", json_false ());
    reply = dx_reply_new (request, DX_OK, json_pack ("{s:s}", "name", "c1"));
    assert_null (json_object_get (reply, "text"));
    assert_non_null (json_object_get (reply, "body"));
    json_decref (reply);

    //  Wrong types are refused by the decoder
    char *buf, err [DX_ERR_LEN];
    size_t len;
    json_object_set_new (request, "text", json_string ("yes"));
    assert_int_equal (dx_msg_encode (request, &buf, &len), 0);
    assert_null (dx_msg_decode (buf, len, err, sizeof err));
    assert_non_null (strstr (err, "'text'"));
    free (buf);
    reply = dx_reply_new (request, DX_OK, NULL);
    json_object_set_new (reply, "text", json_integer (1));
    assert_int_equal (dx_msg_encode (reply, &buf, &len), 0);
    assert_null (dx_msg_decode (buf, len, err, sizeof err));
    assert_non_null (strstr (err, "'text'"));
    free (buf);
    json_decref (reply);
    json_decref (request);
}


//  ---------------------------------------------------------------------
//  ZeroMQ transport: a DEALER (api) and a ROUTER (scheduler) over TCP

static void
test_zmq (void **state)
{
    (void) state;
    char err [DX_ERR_LEN];
    zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
    assert_non_null (router);
    const char *endpoint = zsock_endpoint (router);
    assert_non_null (endpoint);
    zsock_t *dealer = zsock_new_dealer (endpoint);
    assert_non_null (dealer);
    zsock_set_rcvtimeo (router, 5000);
    zsock_set_rcvtimeo (dealer, 5000);

    //  Request: DEALER -> ROUTER, the identity comes out separately
    json_t *request = s_request ("cluster.get", json_pack ("{s:s}", "name", "c1"));
    assert_int_equal (dx_msg_send (dealer, NULL, request), 0);
    zframe_t *identity = NULL, *raw = NULL;
    json_t *got = dx_msg_recv (router, &identity, &raw, err, sizeof err);
    assert_non_null (got);
    assert_string_equal (err, "");
    assert_true (json_equal (got, request));
    assert_non_null (identity);
    assert_non_null (raw);
    json_t *again = dx_msg_decode (zframe_data (raw), zframe_size (raw), NULL, 0);
    assert_true (json_equal (again, request));
    json_decref (again);
    zframe_destroy (&raw);

    //  Reply: ROUTER -> DEALER with the identity
    json_t *reply = dx_reply_new (got, DX_OK, json_pack ("{s:s}", "name", "c1"));
    assert_int_equal (dx_msg_send (router, identity, reply), 0);
    json_t *back = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
    assert_non_null (back);
    assert_true (json_equal (back, reply));
    assert_string_equal (dx_msg_id (back), dx_msg_id (request));
    json_decref (back);
    json_decref (reply);
    json_decref (got);
    zframe_destroy (&identity);

    //  Garbage: an error, and the raw frame handed over
    assert_int_equal (zstr_send (dealer, "garbage"), 0);
    got = dx_msg_recv (router, &identity, &raw, err, sizeof err);
    assert_null (got);
    assert_string_equal (err, "message is not a msgpack map");
    assert_non_null (identity);
    assert_non_null (raw);
    assert_int_equal (zframe_size (raw), 7);
    assert_memory_equal (zframe_data (raw), "garbage", 7);
    assert_null (dx_msg_decode_envelope (zframe_data (raw), zframe_size (raw), NULL, 0));
    zframe_destroy (&raw);
    zframe_destroy (&identity);

    //  A request with a bad field: the envelope gives the id to answer with
    json_object_set_new (request, "name", json_integer (5));
    assert_int_equal (dx_msg_send (dealer, NULL, request), 0);
    got = dx_msg_recv (router, &identity, &raw, err, sizeof err);
    assert_null (got);
    assert_string_equal (err, "field 'name' of cluster.get must be a string");
    json_t *envelope = dx_msg_decode_envelope (zframe_data (raw), zframe_size (raw),
                                               NULL, 0);
    assert_non_null (envelope);
    reply = dx_reply_error (envelope, DX_INVALID, NULL, "%s", err);
    assert_int_equal (dx_msg_send (router, identity, reply), 0);
    back = dx_msg_recv (dealer, NULL, NULL, err, sizeof err);
    assert_non_null (back);
    assert_string_equal (dx_msg_id (back), dx_msg_id (request));
    assert_string_equal (dx_msg_str (back, "status"), "INVALID");
    assert_string_equal (dx_msg_str (back, "message"),
                         "field 'name' of cluster.get must be a string");
    json_decref (back);
    json_decref (reply);
    json_decref (envelope);
    zframe_destroy (&raw);
    zframe_destroy (&identity);

    //  Wrong number of frames, both directions
    assert_int_equal (zstr_sendx (dealer, "a", "b", NULL), 0);
    got = dx_msg_recv (router, &identity, &raw, err, sizeof err);
    assert_null (got);
    assert_string_equal (err, "expected 2 frames (identity, message), got 3");
    assert_non_null (identity);
    assert_null (raw);
    assert_int_equal (zframe_send (&identity, router, ZFRAME_MORE), 0);
    assert_int_equal (zstr_sendx (router, "x", "y", NULL), 0);
    got = dx_msg_recv (dealer, NULL, &raw, err, sizeof err);
    assert_null (got);
    assert_null (raw);
    assert_string_equal (err, "expected 1 frame (message), got 2");

    //  Nothing arrives: the receive timeout is reported, not a hang
    zsock_set_rcvtimeo (dealer, 50);
    got = dx_msg_recv (dealer, NULL, &raw, err, sizeof err);
    assert_null (got);
    assert_null (raw);
    assert_non_null (strstr (err, "no message received"));

    //  What cannot be encoded is not sent
    json_t *not_object = json_array ();
    assert_int_equal (dx_msg_send (dealer, NULL, not_object), -1);
    json_decref (not_object);

    json_decref (request);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip_every_request),
        cmocka_unit_test (test_round_trip_replies),
        cmocka_unit_test (test_round_trip_large),
        cmocka_unit_test (test_round_trip_worker_messages),
        cmocka_unit_test (test_floats),
        cmocka_unit_test (test_encode_rejects),
        cmocka_unit_test (test_encode_bytes),
        cmocka_unit_test (test_decode_size_limits),
        cmocka_unit_test (test_decode_framing),
        cmocka_unit_test (test_decode_huge_declared_lengths),
        cmocka_unit_test (test_decode_keys),
        cmocka_unit_test (test_decode_depth),
        cmocka_unit_test (test_decode_values),
        cmocka_unit_test (test_decode_envelope),
        cmocka_unit_test (test_decode_schema),
        cmocka_unit_test (test_new_and_accessors),
        cmocka_unit_test (test_replies),
        cmocka_unit_test (test_text_replies),
        cmocka_unit_test (test_zmq),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
