/*  dx_http: a synchronous libcurl request with a fresh handle each time. */
#include "dx_http.h"
#include "dx_util.h"

#include <ctype.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static CURLcode s_init_rc = CURLE_OK;

/*  libcurl's own memory is wiped when it is freed: it holds copies of the
    credentials (the user:password of SigV4, a session token header, the
    request it signs). Through these from the first use of libcurl on. */

/*  A move, so that the old block is wiped too. */
static void *
s_curl_realloc (void *ptr, size_t size)
{
    if (!ptr)
        return malloc (size);
    void *moved = malloc (size? size: 1);
    if (!moved)
        return NULL;
    size_t old = malloc_usable_size (ptr);
    memcpy (moved, ptr, old < size? old: size);
    dx_free_wiped (ptr);
    return moved;
}

static void
s_global_init (void)
{
    s_init_rc = curl_global_init_mem (CURL_GLOBAL_DEFAULT, malloc, dx_free_wiped,
                                      s_curl_realloc, strdup, calloc);
}

typedef struct {
    dx_http_response_t *resp;
    size_t cap;                 /* allocated bytes of resp->body */
    size_t max;
    int too_big;
} s_sink_t;

static size_t
s_write (char *data, size_t size, size_t nmemb, void *arg)
{
    s_sink_t *sink = arg;
    dx_http_response_t *resp = sink->resp;
    size_t n = size * nmemb;
    if (n > sink->max - resp->body_len) {
        sink->too_big = 1;
        return 0;               /* curl stops with CURLE_WRITE_ERROR */
    }
    if (resp->body_len + n + 1 > sink->cap) {
        size_t cap = sink->cap ? sink->cap : 16384;
        while (cap < resp->body_len + n + 1)
            cap *= 2;
        char *body = realloc (resp->body, cap);
        if (!body)
            return 0;
        resp->body = body;
        sink->cap = cap;
    }
    memcpy (resp->body + resp->body_len, data, n);
    resp->body_len += n;
    resp->body [resp->body_len] = 0;
    return n;
}

static void
s_headers_clear (dx_http_response_t *resp)
{
    for (size_t i = 0; i < resp->header_count; i++)
        free (resp->headers [i]);
    free (resp->headers);
    resp->headers = NULL;
    resp->header_count = 0;
}

/*  One header line of the answer. A status line starts a new answer (after
    a 100 Continue), whose headers replace the ones kept so far. */
static size_t
s_header (char *data, size_t size, size_t nmemb, void *arg)
{
    dx_http_response_t *resp = ((s_sink_t *) arg)->resp;
    size_t n = size * nmemb, len = n;
    if (n >= 5 && memcmp (data, "HTTP/", 5) == 0) {
        s_headers_clear (resp);
        return n;
    }
    while (len && strchr ("\r\n \t", data [len - 1]))
        len--;
    if (len == 0 || !memchr (data, ':', len) || resp->header_count == DX_HTTP_MAX_HEADERS)
        return n;
    if (!resp->headers && !(resp->headers = calloc (DX_HTTP_MAX_HEADERS, sizeof (char *))))
        return 0;
    char *line = strndup (data, len);
    if (!line)
        return 0;                   /* curl stops with CURLE_WRITE_ERROR */
    resp->headers [resp->header_count++] = line;
    return n;
}

/*  1 if a header list entry would make curl's SigV4 signature wrong: curl
    signs "Name:" and "Name;" entries, which it does not send as signed,
    and dates or signatures are curl's to add. */
static int
s_breaks_signature (const char *header)
{
    const char *colon = strchr (header, ':');
    if (!colon)
        return 1;
    const char *value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t name = (size_t) (colon - header);
    return *value == 0
        || (name == 10 && strncasecmp (header, "x-amz-date", 10) == 0)
        || (name == 13 && strncasecmp (header, "authorization", 13) == 0);
}

static void
s_fail (dx_http_response_t *resp, int code, const char *text)
{
    resp->curl_code = code;
    snprintf (resp->error, sizeof resp->error, "%s", text);
}

/*  Builds the header list into *list; -1 (resp says why) on a bad entry. */
static int
s_headers (const dx_http_request_t *req, dx_http_response_t *resp, struct curl_slist **list)
{
    for (const char *const *h = req->headers; h && *h; h++) {
        if (req->aws_sigv4 && s_breaks_signature (*h)) {
            s_fail (resp, CURLE_BAD_FUNCTION_ARGUMENT,
                    "header entry without a value, or X-Amz-Date/Authorization, in a signed request");
            return -1;
        }
        struct curl_slist *l = curl_slist_append (*list, *h);
        if (!l)
            return -1;
        *list = l;
    }
    if (req->aws_sigv4 && req->aws_session_token && *req->aws_session_token) {
        size_t len = strlen (req->aws_session_token) + 32;
        char *line = malloc (len);
        if (!line)
            return -1;
        snprintf (line, len, "X-Amz-Security-Token: %s", req->aws_session_token);
        struct curl_slist *l = curl_slist_append (*list, line);
        memset (line, 0, len);
        free (line);
        if (!l)
            return -1;
        *list = l;
    }
    /* "Expect:" (no value) stops curl's "Expect: 100-continue"; curl would
       sign that empty entry, so signed requests go without it: curl sends
       the Expect header only for bodies over 1 MiB, and unsigned. */
    if (!req->aws_sigv4) {
        struct curl_slist *l = curl_slist_append (*list, "Expect:");
        if (!l)
            return -1;
        *list = l;
    }
    return 0;
}

dx_http_response_t *
dx_http_request (const dx_http_request_t *req)
{
    dx_http_response_t *resp = calloc (1, sizeof *resp);
    if (!resp)
        return NULL;
    pthread_once (&s_once, s_global_init);
    CURL *curl = s_init_rc == CURLE_OK ? curl_easy_init () : NULL;
    if (!curl) {
        s_fail (resp, CURLE_FAILED_INIT, "curl initialisation failed");
        return resp;
    }
    struct curl_slist *headers = NULL;
    if (s_headers (req, resp, &headers)) {
        if (!resp->curl_code)
            s_fail (resp, CURLE_OUT_OF_MEMORY, "out of memory");
        curl_slist_free_all (headers);
        curl_easy_cleanup (curl);
        return resp;
    }
    s_sink_t sink = { resp, 0, req->max_body ? req->max_body : DX_HTTP_MAX_BODY, 0 };
    char errbuf [CURL_ERROR_SIZE] = "";
    long timeout = req->timeout_ms > 0 ? req->timeout_ms : DX_HTTP_DEFAULT_TIMEOUT;

    curl_easy_setopt (curl, CURLOPT_URL, req->url);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, timeout < 10000 ? timeout : 10000L);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "dexter/1");
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, &sink);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    const char *method = req->method ? req->method : req->body ? "POST" : "GET";
    /* A POST without a body still says so (Content-Length: 0): curl would
       send a GET. */
    if (req->body || strcmp (method, "POST") == 0) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (req->body ? req->body_len : 0));
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    }
    if (strcmp (method, "GET") == 0 && !req->body)
        curl_easy_setopt (curl, CURLOPT_HTTPGET, 1L);
    else
    if (strcmp (method, "HEAD") == 0)
        curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    else
    if (strcmp (method, "POST") != 0)
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    if (req->aws_sigv4) {
        curl_easy_setopt (curl, CURLOPT_AWS_SIGV4, req->aws_sigv4);
        curl_easy_setopt (curl, CURLOPT_USERNAME, req->aws_access_key ? req->aws_access_key : "");
        curl_easy_setopt (curl, CURLOPT_PASSWORD, req->aws_secret_key ? req->aws_secret_key : "");
    }

    CURLcode rc = curl_easy_perform (curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &resp->status);
        char *ctype = NULL;
        if (curl_easy_getinfo (curl, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype)
            resp->content_type = strdup (ctype);
        if (!resp->body)
            resp->body = calloc (1, 1);
    }
    else
    if (sink.too_big)
        s_fail (resp, rc, "response body over the size limit");
    else
        s_fail (resp, rc, *errbuf ? errbuf : curl_easy_strerror (rc));
    if (rc != CURLE_OK) {
        free (resp->body);
        resp->body = NULL;
        resp->body_len = 0;
        s_headers_clear (resp);
    }
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
    return resp;
}

void
dx_http_response_destroy (dx_http_response_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->body);
    free ((*self_p)->content_type);
    s_headers_clear (*self_p);
    free (*self_p);
    *self_p = NULL;
}

/*  A day is more than any provider asks for; a longer Retry-After is
    garbage. */
#define S_RETRY_AFTER_MAX_S 86400

const char *
dx_http_header (const dx_http_response_t *self, const char *name)
{
    size_t len = strlen (name);
    for (size_t i = self->header_count; i-- > 0; ) {
        const char *line = self->headers [i];
        if (strncasecmp (line, name, len) != 0 || line [len] != ':')
            continue;
        const char *value = line + len + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        return value;               /* the line ends without blanks: s_header cut them */
    }
    return NULL;
}

int64_t
dx_http_retry_after_ms (const dx_http_response_t *self)
{
    const char *value = dx_http_header (self, "Retry-After");
    if (!value || !*value)
        return -1;
    int64_t ms;
    if (*value >= '0' && *value <= '9') {
        char *end;
        unsigned long long seconds = strtoull (value, &end, 10);
        if (*end || seconds > S_RETRY_AFTER_MAX_S)
            return -1;
        ms = (int64_t) seconds * 1000;
    }
    else {
        time_t when = curl_getdate (value, NULL);
        if (when == (time_t) -1)
            return -1;
        ms = (int64_t) when * 1000 - dx_now_ms ();
    }
    return ms < 0? 0: ms > S_RETRY_AFTER_MAX_S * 1000? -1: ms;
}

char *
dx_http_escape_into (char *out, const char *text)
{
    static const char hex [] = "0123456789ABCDEF";
    for (const unsigned char *s = (const unsigned char *) text; *s; s++) {
        if (isalnum (*s) || *s == '-' || *s == '_' || *s == '.' || *s == '~')
            *out++ = (char) *s;
        else {
            *out++ = '%';
            *out++ = hex [*s >> 4];
            *out++ = hex [*s & 15];
        }
    }
    *out = 0;
    return out;
}

int
dx_http_maybe_done (const dx_http_response_t *self)
{
    switch (self->curl_code) {
        case CURLE_OK:
            return self->status >= 500;
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SSL_CONNECT_ERROR:
            return 0;
        default:
            return 1;
    }
}

dx_retry_class_t
dx_http_classify (const dx_http_response_t *self)
{
    switch (self->curl_code) {
        case CURLE_OK:
            break;
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            return DX_RETRY_TRANSIENT;
        default:
            return DX_RETRY_NO;     /* bad URL, TLS verification, our own bugs */
    }
    if (self->status == 429)
        return DX_RETRY_THROTTLED;
    if (self->status == 500 || self->status == 502 || self->status == 503 || self->status == 504)
        return DX_RETRY_TRANSIENT;
    return DX_RETRY_NO;
}
