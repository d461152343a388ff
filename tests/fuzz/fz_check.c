/*  fz_check: shared checks of the fuzz targets. See fz_check.h. */
#include "fz_check.h"
#include "dx_msg.h"

#include <stdio.h>
#include <stdlib.h>

void
fz_fail (const char *what)
{
    fprintf (stderr, "fuzz: %s\n", what);
    abort ();
}

json_t *
fz_send (const json_t *msg, const char *what)
{
    char *buf = NULL;
    size_t len = 0;
    if (dx_msg_encode (msg, &buf, &len)) {
        fprintf (stderr, "fuzz: %s did not encode\n", what);
        abort ();
    }
    char err [DX_ERR_LEN];
    json_t *back = dx_msg_decode (buf, len, err, sizeof err);
    free (buf);
    if (!back || !json_equal (back, msg)) {
        fprintf (stderr, "fuzz: %s did not come back: %s\n", what,
                 back? "not equal": err);
        abort ();
    }
    return back;
}

void
fz_text (const char *text, int may_be_empty, const char *what)
{
    json_t *string = json_string (text);
    if (!string || (!may_be_empty && !*text)) {
        fprintf (stderr, "fuzz: %s is %s\n", what, string? "empty": "not UTF-8");
        abort ();
    }
    json_decref (string);
}
