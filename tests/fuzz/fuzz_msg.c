/*  libFuzzer target for the message codec (common/dx_msg.c).

    For any input: dx_msg_decode and dx_msg_decode_envelope must return a
    message or an error, never crash, leak or read outside the input. Any
    message they accept must survive encode then decode unchanged (a
    mismatch aborts, which libFuzzer reports as a crash). Build and run
    with `make fuzz` / `make fuzz-run`; see docs/FUZZING.md. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dx_msg.h"

/*  Encodes msg and decodes the result with decode; aborts unless it comes
    back equal. The only allowed encode failure is the size limit: a
    float32 on the wire re-encodes as float64 (5 bytes grow to 9), so an
    input above half the limit may no longer fit. */
static void
s_check_round_trip (const json_t *msg, size_t input_len,
                    json_t *(*decode) (const void *, size_t, char *, size_t))
{
    char *buf = NULL;
    size_t len = 0;
    if (dx_msg_encode (msg, &buf, &len)) {
        if (input_len <= DX_MSG_MAX_BYTES / 2) {
            fprintf (stderr, "fuzz_msg: a decoded message did not encode\n");
            abort ();
        }
        return;
    }
    char err [DX_ERR_LEN];
    json_t *back = decode (buf, len, err, sizeof err);
    if (!back || !json_equal (back, msg)) {
        fprintf (stderr, "fuzz_msg: round trip failed: %s\n", back? "not equal": err);
        abort ();
    }
    json_decref (back);
    free (buf);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [DX_ERR_LEN];

    json_t *msg = dx_msg_decode (data, size, err, sizeof err);
    int decoded = msg != NULL;
    if (msg) {
        s_check_round_trip (msg, size, dx_msg_decode);
        //  What the scheduler does with a request: answer it
        json_t *reply = dx_reply_error (msg, DX_INVALID, "name", "%s", dx_msg_type (msg));
        s_check_round_trip (reply, 0, dx_msg_decode);
        json_decref (reply);
        json_decref (msg);
    }
    else
    if (err [0] == 0 || memchr (err, 0, sizeof err) == NULL) {
        fprintf (stderr, "fuzz_msg: decode failed without an error message\n");
        abort ();
    }

    json_t *envelope = dx_msg_decode_envelope (data, size, err, sizeof err);
    if (envelope) {
        s_check_round_trip (envelope, size, dx_msg_decode_envelope);
        //  What the scheduler does with a message it cannot use: INVALID
        json_t *reply = dx_reply_error (envelope, DX_INVALID, NULL, "%s", "bad request");
        if (!reply || strcmp (dx_msg_id (reply), dx_msg_id (envelope)) != 0)
            abort ();
        json_decref (reply);
        json_decref (envelope);
    }
    else
    if (decoded) {
        //  Whatever passes the full decoder passes the envelope decoder
        fprintf (stderr, "fuzz_msg: envelope refused a valid message: %s\n", err);
        abort ();
    }
    return 0;
}
