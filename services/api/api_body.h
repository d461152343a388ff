/*  api_body: turns an HTTP request body into a JSON object of fields.

    Forms (application/x-www-form-urlencoded, or no Content-Type) are parsed
    here by hand because `curl -d` sends values unencoded: raw JSON, spaces,
    line breaks and base64url all arrive as they were typed. JSON bodies must
    be one object. Pure functions: no I/O, no state, so tests run in-process. */
#ifndef API_BODY_H
#define API_BODY_H

#include <stddef.h>
#include <jansson.h>
#include "dx_msg.h"

#define API_BODY_MAX  DX_MSG_BODY_MAX     /* bytes; more is 413 */

/*  Why a request was refused with 400: the field at fault ("" when none)
    and a human sentence. Filled by the functions below on failure. */
typedef struct {
    char field [80];
    char message [320];
} api_fault_t;

typedef enum {
    API_BODY_FORM,          /* application/x-www-form-urlencoded or absent */
    API_BODY_JSON,          /* application/json */
    API_BODY_UNSUPPORTED    /* anything else: 415 */
} api_body_type_t;

/*  Classifies a Content-Type header value (NULL or empty means form).
    Parameters such as charset are allowed; the media type is matched
    case-insensitively. */
api_body_type_t api_body_type (const char *content_type);

/*  Parses len bytes of form data (need not be NUL-terminated): pairs split on
    '&', name and value on the first '=', '+' read as a space, %XX decoded.
    Empty pairs are skipped; a pair without '=' has the value "". Returns a new
    object of string values (caller owns) or NULL with fault set when a %
    sequence is malformed, a name is empty or given twice, or a name or value
    is not UTF-8 or holds NUL. */
json_t *api_body_parse_form (const char *data, size_t len, api_fault_t *fault);

/*  Parses len bytes of a body of type into a new object (caller owns), or
    NULL with fault set. A form as api_body_parse_form; JSON must be one
    object, without repeated keys, nested at most DX_MSG_BODY_DEPTH deep
    (the fault is jansson's message, line and column, without the text it
    saw, which may be a secret); API_BODY_UNSUPPORTED fails. */
json_t *api_body_parse (api_body_type_t type, const char *data, size_t len,
                        api_fault_t *fault);

/*  Sets fault to field (may be NULL) and a printf message. Returns -1 so a
    caller can `return api_fault_set (...)`. */
int api_fault_set (api_fault_t *fault, const char *field, const char *fmt, ...)
                   __attribute__ ((format (printf, 3, 4)));

/*  Copies text into dst (size bytes) as valid UTF-8: invalid bytes become
    '?', and a cut never splits a character. Messages may quote user input
    (a path, a field name, the bytes jansson saw near a syntax error), and an
    error body must still be valid JSON. */
void api_text_copy (char *dst, size_t size, const char *src);

#endif
