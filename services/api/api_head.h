/*  api_head: what the api refuses in a request's head before it routes it
    (docs/api.md, "Errors"). The request line must be HTTP/1.0 or 1.1,
    hold no NUL, raw or %00, and stay within API_URI_MAX bytes and
    API_QUERY_MAX query parameters; the head within API_FIELDS_MAX header
    fields; and where the body ends must be beyond doubt: at most one
    Content-Length, or Transfer-Encoding: chunked alone. A server and a
    proxy in front of it that read an ambiguous length differently see
    different requests in the same bytes (request smuggling), so every
    refusal here closes the connection. Pure functions: no I/O, so tests
    run them in-process. */
#ifndef API_HEAD_H
#define API_HEAD_H

#include <stdbool.h>

#define API_URI_MAX     2048    /* bytes of the request target; more is 414 */
#define API_QUERY_MAX   16      /* query parameters; more is 414 */
#define API_FIELDS_MAX  64      /* header fields; more is 431 */

/*  What the checks look at, as the HTTP layer parsed it. */
typedef struct {
    const char *version;        /* "HTTP/1.1" */
    const char *uri;            /* the raw request target, query included */
    bool nul;                   /* a raw NUL cut the request line short */
    unsigned fields;            /* header fields */
    unsigned lengths;           /* Content-Length fields */
    unsigned encodings;         /* Transfer-Encoding fields */
    const char *encoding;       /* the first one's value, or NULL */
} api_head_t;

/*  Why a head was refused: the HTTP status, the error code and a sentence
    (both static). */
typedef struct {
    int status;
    const char *code;
    const char *message;
} api_refusal_t;

/*  true if uri (raw, query included) is longer than API_URI_MAX or its
    query has more than API_QUERY_MAX parameters. */
bool api_head_too_long (const char *uri);

/*  0 if the api takes head, else -1 with refusal set: 400 BAD_REQUEST, 414
    URI_TOO_LONG, 431 HEADERS_TOO_LARGE or 505 VERSION_NOT_SUPPORTED. */
int api_head_check (const api_head_t *head, api_refusal_t *refusal);

#endif
