/*  dx_http: one synchronous HTTP request over libcurl, for the cloud workers.

    Every request gets a fresh curl handle (curl's SigV4 signer is exact only
    then), HTTP/1.1, no redirects, http/https only, a total timeout and a
    capped response body. Optional AWS Signature Version 4 is done by curl
    (CURLOPT_AWS_SIGV4); docs/aws.md says which rules make it exact. The
    answer's headers are kept, for what a provider says in them
    (Retry-After, ARM's Azure-AsyncOperation and Location).
    Nothing here logs: no URL, header, body or credential reaches a log. */
#ifndef DX_HTTP_H
#define DX_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include "dx_retry.h"

#define DX_HTTP_MAX_BODY        (64u * 1024u * 1024u)
#define DX_HTTP_DEFAULT_TIMEOUT 30000
#define DX_HTTP_ERROR_LEN       256
#define DX_HTTP_MAX_HEADERS     64          /* kept of one answer; more are dropped */

typedef struct {
    const char *method;         /* "GET", "POST", ...; NULL: POST with a body, else GET */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    const char *body;           /* sent as is (curl POSTFIELDS); may be NULL (a POST
                                   then sends Content-Length: 0) */
    size_t body_len;
    long timeout_ms;            /* whole request; 0: DX_HTTP_DEFAULT_TIMEOUT */
    size_t max_body;            /* response cap; 0: DX_HTTP_MAX_BODY */
    /* AWS SigV4; aws_sigv4 NULL: unsigned. */
    const char *aws_sigv4;      /* "aws:amz:REGION:SERVICE", all four parts */
    const char *aws_access_key;
    const char *aws_secret_key;
    const char *aws_session_token;  /* sent as X-Amz-Security-Token; may be NULL */
} dx_http_request_t;

typedef struct {
    long status;                /* HTTP status; 0 when no answer came */
    char *body;                 /* NUL-terminated (body_len excludes the NUL); NULL when no answer */
    size_t body_len;
    char *content_type;         /* NULL when the answer had none */
    int curl_code;              /* CURLcode; 0 when the exchange completed */
    char error [DX_HTTP_ERROR_LEN];  /* curl's error text when curl_code != 0 */
    char **headers;             /* the answer's header lines, "Name: value" without
                                   CR LF; read them with dx_http_header */
    size_t header_count;
} dx_http_response_t;

/*  Performs req. Returns a new response (caller destroys), also when the
    exchange failed (status 0, curl_code and error set); NULL only when out
    of memory. A signed request whose header list holds an entry without a
    value, or its own X-Amz-Date or Authorization, is refused unsent
    (curl_code CURLE_BAD_FUNCTION_ARGUMENT): curl would sign it wrongly. */
dx_http_response_t *dx_http_request (const dx_http_request_t *req);

void dx_http_response_destroy (dx_http_response_t **self_p);

/*  The value of the answer's header name (case-insensitive; the last one
    when it came more than once), blanks around it removed, or NULL.
    Borrowed from the response. */
const char *dx_http_header (const dx_http_response_t *self, const char *name);

/*  The answer's Retry-After (RFC 9110: delay-seconds, or an HTTP-date,
    counted from now and 0 when past) in milliseconds, or -1 when there is
    none or it cannot be read. */
int64_t dx_http_retry_after_ms (const dx_http_response_t *self);

/*  Writes text at out percent-encoded as RFC 3986 asks of a query or
    form value, which is also how SigV4 canonicalises: A-Z a-z 0-9 - _ . ~
    stay, every other byte becomes %XX (uppercase hex), so ' ' is %20 and
    '+' %2B. out has room for 3 * strlen (text) + 1 bytes. Returns the end
    of what it wrote (its NUL). */
char *dx_http_escape_into (char *out, const char *text);

/*  Retry class of an answer by HTTP alone: connection failures and
    timeouts, 500, 502, 503 and 504 are transient, 429 is throttled,
    everything else (including success) is DX_RETRY_NO. Providers refine
    this with their error codes. */
dx_retry_class_t dx_http_classify (const dx_http_response_t *self);

/*  1 when a request that failed may still have been carried out by the
    server: it was sent (or may have been) and no answer came, or the
    answer was a 5xx. 0 when it never left (no connection) or a 4xx. */
int dx_http_maybe_done (const dx_http_response_t *self);

#endif
