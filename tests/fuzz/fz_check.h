/*  fz_check: the checks the fuzz targets of user input share. Each one
    aborts with a line on stderr when its rule is broken, which libFuzzer
    reports as a crash with the input that did it. */
#ifndef FZ_CHECK_H
#define FZ_CHECK_H

#include <jansson.h>

/*  Encodes msg with dx_msg_encode and decodes it again with
    dx_msg_decode (its type's schema included); aborts unless both work
    and give msg back equal: what one service sends, the other must take
    as it was sent. Returns the decoded copy (caller owns), which is what
    the receiver works on. what names the message in the report. */
json_t *fz_send (const json_t *msg, const char *what);

/*  Aborts unless text can go into a JSON answer: jansson takes it as a
    string (UTF-8, which a fault quoting user input must still be), and
    it is not empty unless may_be_empty. */
void fz_text (const char *text, int may_be_empty, const char *what);

/*  Aborts with "fuzz: what" on stderr. */
void fz_fail (const char *what) __attribute__ ((noreturn));

#endif
