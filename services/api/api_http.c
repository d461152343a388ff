/*  api_http: libmicrohttpd daemon, auth, body collection, suspended
    connections waiting for the scheduler, JSON answers. */
#include "api_http.h"
#include "api_body.h"
#include "api_deadline.h"
#include "api_handler.h"
#include "api_head.h"
#include "api_health.h"
#include "api_loop.h"
#include "api_metrics.h"
#include "api_openapi.h"
#include "api_route.h"
#include "api_tls.h"
#include "dx_log.h"
#include "dx_metrics.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/*  A client that keeps sending after its body was refused is cut off once
    this much more was thrown away (MHD cannot answer in the middle of an
    upload, only at its end). */
#define API_DROP_MAX    (8u * 1024u * 1024u)
#define API_IDLE_S      30u         /* close connections idle this long */
#define API_PROFILE_TYPE "application/x-openvpn-profile"   /* GET …/deployment/vpn, raw */
/*  Connections at once. The daemon runs in select mode (see api_http_new),
    which takes only descriptors below FD_SETSIZE (1024): those it would
    get beyond that it closes at once, whatever this limit says. */
#define API_CONNECTIONS 1000u
/*  Each connection's memory pool (request line, headers, read and write
    buffers). MHD clears what a request used when the next one starts, so
    its size is paid on every request: half the default 32 KiB, which still
    takes request headers of 12 KiB (tests/e2e/test_api.py). */
#define API_CONNECTION_MEMORY (16u * 1024u)
/*  After an answer this large, freed memory goes back to the system so
    that the RSS drops again (a list of 10,000 clusters is 1 MB), once no
    large answer came for API_TRIM_MS: back-to-back lists reuse the heap
    (dx_malloc_release). So does the memory of closed connections (their
    pools, their bodies), once none closed for API_TRIM_MS. */
#define API_TRIM_BYTES  (256u * 1024u)
/*  Each connection's socket send buffer (the kernel doubles it): a send
    copies at most this much, so one turn of the loop writes at most this
    much per connection, and a turn that answers a hundred lists of 1 MB
    at once does not hold every other answer behind 100 MB of copying;
    the rest goes in the next turns, as the sockets drain. */
#define API_SNDBUF      (128 * 1024)
#define API_TRIM_MS     300

struct api_http_t {
    struct MHD_Daemon *daemon;
    api_loop_t *loop;
    char *token;                    /* NULL: no auth */
    size_t token_len;
    struct sockaddr_storage addr;   /* as configured, for api_http_renew */
    int own_fd;                     /* the socket we bound (or took over
                                       in api_http_renew), or -1 */
    bool quiesced;                  /* retired or stopping */
    api_deadline_t *deadline;       /* of its connections' requests */
    int64_t request_ms;             /* as configured, for api_http_renew */
    unsigned per_ip;                /* likewise */
    int64_t trim_at;                /* monotonic ms to trim at, 0: none */
    /* The sockets of the connections resumed since the last run (which
       must then be at once: MHD does not count them in its timeout). */
    MHD_socket resumed [API_CONNECTIONS];
    unsigned resumed_count;
    /* The last answer made of a reply's text, kept for the rest of the
       run: the connections a shared request answers (api_loop_send) get
       the same text, and each queues this one response, whose buffer MHD
       sends from, rather than a copy of its own. */
    json_t *shared_text;
    struct MHD_Response *shared_response;
    size_t shared_len;
};

/*  A connection's request, from its request line to the end of its
    answer. There is one per connection, made when it opens and freed when
    it closes (s_connection), and each request line starts it afresh
    (s_uri_log): MHD may give up on a request before its access handler
    ran (a query too long for its memory pool) and then never calls
    s_completed, so a context made per request would leak. */
typedef struct {
    api_http_t *http;
    struct MHD_Connection *conn;
    int fd;                         /* the connection's socket */
    int64_t started;                /* monotonic ms */
    double clock;                   /* api_metrics_clock at its start */
    char *uri;                      /* the raw request target, as sent */
    char *query;                    /* raw text after '?' (in uri), or NULL */
    const char *line_uri;           /* where MHD's request line holds the
                                       URI: compared, never read */
    bool close;                     /* answer with Connection: close */
    char method [16];               /* for the log line */
    char path [160];
    bool seen;                      /* the first access call happened */
    api_match_t match;
    api_query_t args;
    api_body_type_t type;
    bool too_large;                 /* body over API_BODY_MAX: 413 */
    bool unwanted;                  /* a body where none is taken: 400 */
    char *body;
    size_t len, cap;
    size_t dropped;
    api_wait_t *wait;               /* while suspended: the scheduler
                                       reply it waits for, else NULL */
    bool ready;                     /* answer holds the reply's answer */
    api_answer_t answer;
    size_t sent;                    /* bytes of the answer */
    int status;                     /* answered with, 0 until then */
    int refusal;                    /* a refusal held for the last call */
    json_t *refusal_body;
    bool refusal_challenge;
} s_request_t;

/*  Wipes and frees the body buffer: bodies carry credentials. Only the
    bytes received were written, so only those are wiped. */
static void
s_body_free (s_request_t *req)
{
    if (req->body) {
        sodium_memzero (req->body, req->len);
        free (req->body);
    }
    req->body = NULL;
    req->len = req->cap = 0;
}

/*  Copies text for the log: printable ASCII only, cut at size. */
static void
s_printable (char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src && src [i] && i + 1 < size; i++)
        dst [i] = src [i] > 0x20 && src [i] < 0x7f ? src [i] : '?';
    dst [i] = 0;
}

/*  Frees what the request holds and forgets its scheduler request; the
    context stays for the connection's next request. */
static void
s_request_clear (s_request_t *req)
{
    if (req->wait)                  /* only when closed while waiting */
        api_loop_forget (req->http->loop, req->wait);
    s_body_free (req);
    json_decref (req->refusal_body);
    json_decref (req->answer.body);
    json_decref (req->answer.text);
    free (req->uri);
    *req = (s_request_t) { .http = req->http, .conn = req->conn, .fd = req->fd };
}

/*  Gives freed memory back to the system API_TRIM_MS from now, unless
    more comes to free by then. */
static void
s_trim_later (api_http_t *self)
{
    self->trim_at = dx_mono_ms () + API_TRIM_MS;
}

/*  MHD calls this when a connection opens and when it closes: the request
    context lives as long as the connection, and so does its place among
    the deadlines. Without a context (out of memory) s_uri_log refuses the
    connection's requests. */
static void
s_connection (void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
    api_http_t *self = cls;
    s_request_t *req = *socket_context;
    api_metrics_connection (toe == MHD_CONNECTION_NOTIFY_STARTED? 1: -1);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (info && (req = calloc (1, sizeof *req))) {
            *req = (s_request_t) { .http = self, .conn = conn, .fd = info->connect_fd };
            int size = API_SNDBUF;
            if (setsockopt (req->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size))
                dx_debug ("cannot set SO_SNDBUF: %s", strerror (errno));
            api_deadline_open (self->deadline, req->fd, dx_mono_ms ());
        }
        *socket_context = req;
        return;
    }
    if (req) {
        s_request_clear (req);
        api_deadline_close (self->deadline, req->fd);
        free (req);
        *socket_context = NULL;
    }
    s_trim_later (self);
}

/*  MHD calls this with the raw request line's URI before anything else:
    a request starts. Its context, cleared of anything a request MHD gave
    up on left behind, keeps the raw target, whose query we parse
    ourselves to catch repeated parameters. */
static void *
s_uri_log (void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void) cls;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    s_request_t *req = info ? info->socket_context : NULL;
    if (!req)
        return NULL;
    s_request_clear (req);
    req->started = dx_mono_ms ();
    req->clock = api_metrics_clock ();
    api_deadline_start (req->http->deadline, req->fd, req->started);
    if (!uri || !(req->uri = strdup (uri)))
        return NULL;
    req->line_uri = uri;
    char *query = strchr (req->uri, '?');
    if (query) {
        req->query = query + 1;
        /* MHD splits the query next, one record per parameter in the
           connection's memory pool; with a few hundred the pool runs out
           and MHD closes the connection without an answer. So a query
           over the limit is ended here, in MHD's own request line (its
           bytes, not a constant, though passed as one): MHD sees none,
           and s_begin answers 414 from our copy. */
        if (api_head_too_long (req->uri))
            ((char *) uri) [query - req->uri + 1] = 0;
    }
    return req;
}

/*  MHD's unescape callback: none. The path is routed as sent, so that an
    encoded '/' stays part of the segment it is in; the query we decode
    ourselves (api_route_query). */
static size_t
s_unescape_none (void *cls, struct MHD_Connection *conn, char *text)
{
    (void) cls;
    (void) conn;
    return strlen (text);
}

/*  Counts a request that reached the access handler (api_metrics.h): by
    its route's template, or none when no route matched. */
static void
s_count (s_request_t *req)
{
    const api_route_t *matched = req->match.status == 200? req->match.route: NULL;
    api_metrics_request (matched && !api_route_outside (matched)? API_PREFIX: "",
                         matched? matched->pattern: API_METRICS_NO_ROUTE, req->method,
                         req->status, api_metrics_clock () - req->clock);
}

/*  MHD calls this when a request is over, answered or not: one log line,
    then the context is cleared for the connection's next request. Never
    logs bodies or query values. */
static void
s_completed (void *cls, struct MHD_Connection *conn, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void) conn;
    api_http_t *self = cls;
    s_request_t *req = *req_cls;
    if (!req)
        return;
    if (req->sent > API_TRIM_BYTES)
        s_trim_later (self);
    if (req->seen)
        s_count (req);
    long long ms = (long long) (dx_mono_ms () - req->started);
    if (req->seen && req->status)
        dx_info ("%s %s %d %lldms", req->method, req->path, req->status, ms);
    else
    if (req->seen)
        dx_info ("%s %s aborted (%s) %lldms", req->method, req->path,
                 toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout"
               : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? "shutdown"
               : api_deadline_cut (self->deadline, req->fd) ? "too slow"
               : "connection closed", ms);
    else
        dx_debug ("request refused by the HTTP layer before routing");
    api_deadline_idle (self->deadline, req->fd);
    s_request_clear (req);
    *req_cls = NULL;
}

/*  Routes MHD's own complaints into our log. */
__attribute__ ((format (printf, 2, 0)))
static void
s_mhd_log (void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    char line [512];
    vsnprintf (line, sizeof line, fmt, ap);
    size_t len = strlen (line);
    while (len > 0 && (line [len - 1] == '\n' || line [len - 1] == '\r'))
        line [--len] = 0;
    dx_warn ("http: %s", line);
}

/*  The text to send for a body, and a newline, in a buffer MHD frees with
    free: the text (a JSON string) as it is, or the body dumped compact.
    Both are stolen; NULL for no body (or out of memory). */
static char *
s_body_text (json_t *body, json_t *text, size_t *len)
{
    char *buf = NULL;
    *len = 0;
    if (text) {
        size_t size = json_string_length (text);
        if ((buf = malloc (size + 1))) {
            memcpy (buf, json_string_value (text), size);
            *len = size + 1;
        }
    }
    else
    if (body) {
        /* json_dumps's buffer is exactly the text and its NUL. jansson
           allocates with malloc (main.c), so free frees it. */
        if ((buf = json_dumps (body, JSON_COMPACT | JSON_ENCODE_ANY)))
            *len = strlen (buf) + 1;
    }
    if (buf)
        buf [*len - 1] = '\n';
    json_decref (body);
    json_decref (text);
    return buf;
}

/*  Drops the kept answer (api_http_t.shared_response). */
static void
s_unshare (api_http_t *self)
{
    if (self->shared_response)
        MHD_destroy_response (self->shared_response);
    json_decref (self->shared_text);
    self->shared_response = NULL;
    self->shared_text = NULL;
}

/*  Queues the answer: status and a JSON body or its text (both stolen;
    NULL for none), plus an Allow header and the Bearer challenge when
    asked. An answer of the same text as the kept one is that response. */
static enum MHD_Result
s_respond (struct MHD_Connection *conn, s_request_t *req, int status,
           json_t *body, json_t *body_text, const char *allow, bool challenge)
{
    api_http_t *self = req->http;
    bool shareable = body_text && !body && !allow && !challenge && !req->close;
    struct MHD_Response *response;
    size_t len;
    if (shareable && body_text == self->shared_text) {
        json_decref (body_text);
        response = self->shared_response;
        len = self->shared_len;
    }
    else {
        json_t *kept = shareable ? json_incref (body_text) : NULL;
        char *text = s_body_text (body, body_text, &len);
        response = len
            ? MHD_create_response_from_buffer (len, text, MHD_RESPMEM_MUST_FREE)
            : MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
        if (!response) {
            free (text);
            json_decref (kept);
            return MHD_NO;
        }
        bool metrics = req->match.route && req->match.route->action == API_DO_METRICS
                    && status == 200;
        if (len)
            MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                     metrics? DX_METRICS_CONTENT_TYPE: "application/json");
        MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (allow && *allow)
            MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, allow);
        if (challenge)
            MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                     "Bearer realm=\"dexter\"");
        /* A retired or stopping daemon lets each client go after its answer:
           the next request comes on a new connection, to the daemon that
           replaced it. A refused head closes too (api_head.h). */
        if (self->quiesced || req->close)
            MHD_add_response_header (response, MHD_HTTP_HEADER_CONNECTION, "close");
        if (kept) {
            s_unshare (self);
            self->shared_text = kept;
            self->shared_response = response;
            self->shared_len = len;
        }
    }
    req->sent = len;
    enum MHD_Result rc = MHD_queue_response (conn, (unsigned) status, response);
    if (response != self->shared_response)
        MHD_destroy_response (response);
    req->status = status;
    return rc;
}

/*  An error answer {code, message, field?}. */
static enum MHD_Result
s_fail (struct MHD_Connection *conn, s_request_t *req, int status,
        const char *code, const char *field, const char *message)
{
    return s_respond (conn, req, status, api_error_body (code, field, message),
                      NULL, NULL, status == 401);
}

/*  1 if req is GET …/deployment/vpn answered 200 whose Accept names the
    raw profile (API_PROFILE_TYPE). */
static bool
s_wants_profile (struct MHD_Connection *conn, s_request_t *req)
{
    const char *accept = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_ACCEPT);
    return req->answer.status == 200 && req->answer.text && accept
        && strcmp (req->match.route->type, "deployment.vpn") == 0
        && strcasestr (accept, API_PROFILE_TYPE);
}

/*  Queues the profile of a JSON string answer as the raw file. */
static enum MHD_Result
s_answer_profile (struct MHD_Connection *conn, s_request_t *req)
{
    json_t *text = req->answer.text;
    req->answer.text = NULL;
    req->ready = false;
    json_t *profile = json_loadb (json_string_value (text), json_string_length (text),
                                  JSON_DECODE_ANY, NULL);
    json_decref (text);
    if (!json_is_string (profile)) {
        json_decref (profile);
        return s_fail (conn, req, 500, "INTERNAL", NULL, "the profile is not a JSON string");
    }
    size_t len = json_string_length (profile);
    struct MHD_Response *response = MHD_create_response_from_buffer (
        len, (void *) json_string_value (profile), MHD_RESPMEM_MUST_COPY);
    json_decref (profile);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, API_PROFILE_TYPE);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (req->http->quiesced || req->close)
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONNECTION, "close");
    req->sent = len;
    enum MHD_Result rc = MHD_queue_response (conn, 200, response);
    MHD_destroy_response (response);
    req->status = 200;
    return rc;
}

/*  Queues the answer left in req. */
static enum MHD_Result
s_answer (struct MHD_Connection *conn, s_request_t *req)
{
    if (s_wants_profile (conn, req))
        return s_answer_profile (conn, req);
    json_t *body = req->answer.body, *text = req->answer.text;
    req->answer.body = req->answer.text = NULL;
    req->ready = false;
    return s_respond (conn, req, req->answer.status, body, text, NULL, false);
}

/*  1 if the request announces a body (a length above 0, or chunks). */
static bool
s_has_body (struct MHD_Connection *conn)
{
    const char *length = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (length && strspn (length, "0") != strlen (length))
        || MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/*  Refuses a request on its first call. MHD must close the connection when
    it answers before the body was read, so a request without a body gets
    its answer on the last call instead, which keeps the connection alive;
    one with a body is answered at once, without reading the body. */
static enum MHD_Result
s_refuse (struct MHD_Connection *conn, s_request_t *req, int status,
          json_t *body, bool challenge)
{
    if (s_has_body (conn))
        return s_respond (conn, req, status, body, NULL,
                          status == 405 || status == 204 ? req->match.allow : NULL,
                          challenge);
    req->refusal = status;
    req->refusal_body = body;
    req->refusal_challenge = challenge;
    return MHD_YES;
}

/*  1 if the request carries `Authorization: Bearer <our token>`. The
    comparison takes the same time wherever the tokens differ. */
static bool
s_authorized (api_http_t *self, struct MHD_Connection *conn)
{
    if (!self->token)
        return true;
    const char *value = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_AUTHORIZATION);
    if (!value)
        return false;
    while (*value == ' ')
        value++;
    if (strncasecmp (value, "Bearer", 6) != 0 || value [6] != ' ')
        return false;
    const char *token = value + 6;
    while (*token == ' ')
        token++;
    size_t len = strlen (token);
    while (len > 0 && (token [len - 1] == ' ' || token [len - 1] == '\t'))
        len--;
    return len == self->token_len
        && sodium_memcmp (token, self->token, len) == 0;
}

/*  Counts the header fields api_head looks at. */
static enum MHD_Result
s_head_field (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    api_head_t *head = cls;
    head->fields++;
    if (strcasecmp (key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        head->lengths++;
    else
    if (strcasecmp (key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0 && !head->encodings++)
        head->encoding = value;
    return MHD_YES;
}

/*  0 if the api takes the request's head (api_head.h), else -1 with
    refusal set. MHD hands the request line over as C strings cut from it
    in place, the URI ending where the version begins: a raw NUL ends the
    URI early, and the version then does not follow it. */
static int
s_head_check (struct MHD_Connection *conn, s_request_t *req, const char *version,
              api_refusal_t *refusal)
{
    api_head_t head = {
        .version = version, .uri = req->uri,
        .nul = req->line_uri + strlen (req->uri) + 1 != version
    };
    MHD_get_connection_values (conn, MHD_HEADER_KIND, &s_head_field, &head);
    return api_head_check (&head, refusal);
}

/*  The first call, with the headers in: everything that can be decided
    before the body is, so that a bad request is refused without reading it
    (a head the api does not take, a 413 on a declared length, 401, 404,
    405, 415, a bad query). */
static enum MHD_Result
s_begin (api_http_t *self, struct MHD_Connection *conn, s_request_t *req,
         const char *method, const char *url, const char *version)
{
    s_printable (req->method, sizeof req->method, method);
    s_printable (req->path, sizeof req->path, url);
    api_refusal_t refusal;
    if (s_head_check (conn, req, version, &refusal)) {
        req->close = true;
        return s_fail (conn, req, refusal.status, refusal.code, NULL, refusal.message);
    }
    /* Matched first (a pure function) only so that the probes, which
       need no token for GET, HEAD and OPTIONS, are known: every other
       request still gets its 401 before its 404 or 405. */
    api_route_match (method, url, &req->match);
    bool probe = req->match.probe
              && (req->match.status == 200 || req->match.status == 204);
    if (!probe && !s_authorized (self, conn))
        return s_refuse (conn, req, 401, api_error_body ("UNAUTHORIZED", NULL,
                         "this api needs the header 'Authorization: Bearer <token>' "
                         "with the token it was started with (DEXTER_API_TOKEN)"), true);

    if (req->match.status == 204)
        return s_refuse (conn, req, 204, NULL, false);
    if (req->match.status == 405)
        return s_refuse (conn, req, 405, api_error_body ("METHOD_NOT_ALLOWED", NULL,
                                                         req->match.message), false);
    if (req->match.status != 200)
        return s_refuse (conn, req, 404, api_error_body ("NOT_FOUND", NULL,
                                                         req->match.message), false);
    if (req->match.route->action == API_DO_METRICS && !api_metrics_enabled ())
        return s_refuse (conn, req, 404, api_error_body ("NOT_FOUND", NULL,
                         "metrics are off on this api (DEXTER_METRICS=0)"), false);

    api_fault_t fault;
    if (api_route_query (req->match.route, req->query, &req->args, &fault))
        return s_refuse (conn, req, 400, api_error_body ("INVALID", fault.field,
                                                         fault.message), false);

    const char *length = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long declared = 0;
    if (length) {
        char *end;
        declared = strtoull (length, &end, 10);
        if (*end || end == length)
            declared = 0;       /* MHD refuses malformed lengths itself */
    }
    if (!req->match.route->body) {
        if (declared > 0)
            return s_fail (conn, req, 400, "INVALID", NULL,
                           "this request takes no body (DELETE takes ?force=true "
                           "in the query string)");
        return MHD_YES;
    }
    const char *type = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE);
    req->type = api_body_type (type);
    if (req->type == API_BODY_UNSUPPORTED)
        return s_refuse (conn, req, 415, api_error_body ("UNSUPPORTED_MEDIA_TYPE", NULL,
                         "the body must be application/x-www-form-urlencoded "
                         "(what curl -d sends) or application/json"), false);
    if (declared > API_BODY_MAX)
        return s_fail (conn, req, 413, "TOO_LARGE", NULL,
                       "the body is larger than 1 MiB (1048576 bytes)");
    return MHD_YES;
}

/*  Takes one piece of the body: kept while under the limit, otherwise the
    whole body is dropped (wiped) and the rest only counted. The buffer
    grows with what arrives, never to what Content-Length declares: a
    client may declare a megabyte and send a byte. */
static enum MHD_Result
s_collect (s_request_t *req, const char *data, size_t size)
{
    if (!req->match.route->body)
        req->unwanted = true;
    else
    if (!req->too_large && req->len + size > API_BODY_MAX) {
        req->too_large = true;
        s_body_free (req);
    }
    if (req->unwanted || req->too_large) {
        req->dropped += size;
        return req->dropped > API_DROP_MAX ? MHD_NO : MHD_YES;
    }
    if (!req->body || req->len + size > req->cap) {
        size_t cap = req->cap > req->len + size ? req->cap : req->len + size;
        if (req->body && cap < 2 * req->cap)
            cap = 2 * req->cap;
        if (cap > API_BODY_MAX)
            cap = API_BODY_MAX;
        /* Grown by hand, not realloc, so the old copy can be wiped. */
        char *body = malloc (cap);
        if (!body)
            return MHD_NO;
        if (req->body)
            memcpy (body, req->body, req->len);
        size_t len = req->len;
        s_body_free (req);
        req->body = body;
        req->len = len;
        req->cap = cap;
    }
    memcpy (req->body + req->len, data, size);
    req->len += size;
    return MHD_YES;
}

/*  The answer of GET /metrics: the api's text and the text of the
    scheduler's reply, or the api's alone (scrape_ok 0) when the scheduler
    gave none. */
static void
s_metrics_answer (const json_t *reply, api_answer_t *answer)
{
    const char *status = json_string_value (json_object_get (reply, "status"));
    const char *text = status && strcmp (status, DX_OK) == 0
                     ? json_string_value (json_object_get (reply, "text")): NULL;
    char *body = api_metrics_text (text);
    answer->body = NULL;
    answer->text = body? json_string (body): NULL;
    answer->status = answer->text? 200: 500;
    if (!answer->text)
        answer->body = api_error_body (DX_INTERNAL, NULL, "out of memory");
    free (body);
}

/*  The loop's callback with the reply to the request a connection waits
    for: the connection resumes with its answer, which the access handler's
    next call sends. */
static void
s_on_reply (void *ctx, const json_t *reply)
{
    s_request_t *req = ctx;
    api_http_t *self = req->http;
    req->wait = NULL;
    if (req->match.route->action == API_DO_READY)
        api_health_ready (reply, &req->answer);
    else
    if (req->match.route->action == API_DO_METRICS)
        s_metrics_answer (reply, &req->answer);
    else
        api_handler_reply (reply, &req->answer);
    req->ready = true;
    MHD_resume_connection (req->conn);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info (req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    /* A connection resumes once between runs: there is room. */
    if (self->resumed_count < API_CONNECTIONS)
        self->resumed [self->resumed_count++] = info ? info->connect_fd : -1;
}

/*  The last call, with the whole body in: parse, then send the request
    and suspend the connection until its reply comes. */
static enum MHD_Result
s_finish (api_http_t *self, struct MHD_Connection *conn, s_request_t *req)
{
    if (req->too_large)
        return s_fail (conn, req, 413, "TOO_LARGE", NULL,
                       "the body is larger than 1 MiB (1048576 bytes)");
    if (req->unwanted)
        return s_fail (conn, req, 400, "INVALID", NULL,
                       "this request takes no body (DELETE takes ?force=true "
                       "in the query string)");
    if (api_loop_stopping (self->loop))
        return MHD_NO;              /* stopping: no new work */
    if (req->match.route->action == API_DO_DOCUMENT) {
        req->answer.status = 200;
        req->answer.text = json_stringn (api_openapi_json, api_openapi_json_len);
        return req->answer.text ? s_answer (conn, req)
             : s_fail (conn, req, 500, "INTERNAL", NULL, "out of memory");
    }
    if (req->match.route->action == API_DO_ALIVE) {
        api_health_alive (&req->answer);
        return s_answer (conn, req);
    }
    json_t *fields = NULL;
    if (req->match.route->body) {
        api_fault_t fault;
        fields = api_body_parse (req->type, req->body ? req->body : "", req->len, &fault);
        s_body_free (req);
        if (!fields)
            return s_fail (conn, req, 400, "INVALID", fault.field, fault.message);
    }
    json_t *request;
    if (req->match.route->action == API_DO_READY) {
        if (!(request = api_health_request ()))
            return s_fail (conn, req, 500, "INTERNAL", NULL, "out of memory");
    }
    else
    if (!(request = api_handler_request (&req->match, &req->args, &fields,
                                         &req->answer)))
        return s_answer (conn, req);
    req->wait = api_loop_send (self->loop, request, req->match.route->shared,
                               s_on_reply, req);
    if (!req->wait)
        return s_fail (conn, req, 500, "INTERNAL", NULL,
                       "the request cannot be sent to the scheduler: out of memory, "
                       "or too large or too deeply nested to encode");
    MHD_suspend_connection (conn);
    return MHD_YES;
}

/*  MHD's access handler: called once with the headers, once per piece of
    body, and once more at the end. */
static enum MHD_Result
s_access (void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **req_cls)
{
    api_http_t *self = cls;
    s_request_t *req = *req_cls;
    if (!req)
        return MHD_NO;              /* out of memory in s_uri_log */
    if (!req->seen) {
        req->seen = true;
        return s_begin (self, conn, req, method, url, version);
    }
    if (req->status) {              /* answered already: ignore the rest */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!*upload_data_size)         /* the last call: the request is in */
        api_deadline_arrived (self->deadline, req->fd);
    if (req->refusal && !*upload_data_size) {
        json_t *body = req->refusal_body;
        req->refusal_body = NULL;
        return s_respond (conn, req, req->refusal, body, NULL,
                          req->refusal == 405 || req->refusal == 204
                          ? req->match.allow : NULL, req->refusal_challenge);
    }
    if (req->refusal) {             /* a body after all: keep refusing */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        enum MHD_Result rc = s_collect (req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return rc;
    }
    if (req->ready)                 /* resumed: the reply came */
        return s_answer (conn, req);
    if (req->wait)                  /* still waiting (not expected) */
        return MHD_YES;
    return s_finish (self, conn, req);
}

api_http_t *
api_http_new (const api_http_config_t *config)
{
    api_http_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->loop = config->loop;
    self->own_fd = -1;
    memcpy (&self->addr, config->addr, config->addr->sa_family == AF_INET6
            ? sizeof (struct sockaddr_in6) : sizeof (struct sockaddr_in));
    self->request_ms = config->request_ms;
    self->per_ip = config->per_ip;
    self->deadline = api_deadline_new (config->request_ms);
    if (config->token) {
        self->token = strdup (config->token);
        self->token_len = strlen (config->token);
    }
    if (!self->deadline || (config->token && !self->token)) {
        api_http_destroy (&self);
        return NULL;
    }
    /* No thread of its own: the loop polls the daemon's sockets and runs
       it. Select mode, not epoll: with epoll libmicrohttpd takes a
       suspended connection out of its set and puts it back on resume (two
       epoll_ctl), then reads it once more in vain; in select mode suspend
       and resume cost no system call, and the loop's one poll per turn
       covers every connection. */
    unsigned flags = MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (config->addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem tls [API_TLS_OPTIONS] = { { MHD_OPTION_END, 0, NULL } };
    if (config->tls) {
        flags |= MHD_USE_TLS;
        api_tls_options (config->tls, tls);
    }
    /* Either a shared bound socket or an address to bind. */
    struct MHD_OptionItem where [] = {
        config->listen_fd >= 0
            ? (struct MHD_OptionItem) { MHD_OPTION_LISTEN_SOCKET, config->listen_fd, NULL }
            : (struct MHD_OptionItem) { MHD_OPTION_SOCK_ADDR, 0, (void *) config->addr },
        { MHD_OPTION_END, 0, NULL }
    };
    self->daemon = MHD_start_daemon (
        flags, 0, NULL, NULL, &s_access, self,
        MHD_OPTION_EXTERNAL_LOGGER, &s_mhd_log, self,     /* first: MHD wants it so */
        MHD_OPTION_ARRAY, where,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_NOTIFY_CONNECTION, &s_connection, self,
        MHD_OPTION_URI_LOG_CALLBACK, &s_uri_log, self,
        MHD_OPTION_UNESCAPE_CALLBACK, &s_unescape_none, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, &s_completed, self,
        MHD_OPTION_CONNECTION_TIMEOUT, API_IDLE_S,
        MHD_OPTION_CONNECTION_LIMIT, API_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, self->per_ip,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) API_CONNECTION_MEMORY,
        MHD_OPTION_END);
    if (!self->daemon) {
        dx_error ("cannot start the HTTP server (see the line above)");
        api_http_destroy (&self);
        return NULL;
    }
    if (config->listen_fd < 0)
        self->own_fd = api_http_listen_fd (self);
    return self;
}

api_http_t *
api_http_renew (api_http_t *self, const api_tls_t *tls)
{
    api_http_config_t config = {
        .addr = (struct sockaddr *) &self->addr, .listen_fd = api_http_listen_fd (self),
        .token = self->token, .tls = tls, .loop = self->loop,
        .request_ms = self->request_ms, .per_ip = self->per_ip
    };
    api_http_t *fresh = api_http_new (&config);
    if (!fresh)
        return NULL;
    fresh->own_fd = self->own_fd;
    self->own_fd = -1;
    api_http_quiesce (self);
    return fresh;
}

unsigned
api_http_connections (api_http_t *self)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

void
api_http_destroy (api_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    api_http_t *self = *self_p;
    s_unshare (self);
    if (self->daemon) {
        /* A quiesced daemon leaves the (maybe shared) socket open. */
        api_http_quiesce (self);
        MHD_stop_daemon (self->daemon);
    }
    api_deadline_destroy (&self->deadline);
    if (self->own_fd >= 0)
        close (self->own_fd);
    if (self->token) {
        sodium_memzero (self->token, self->token_len);
        free (self->token);
    }
    free (self);
    *self_p = NULL;
}

int
api_http_poll_items (api_http_t *self, zmq_pollitem_t *items)
{
    fd_set reads, writes, errors;
    FD_ZERO (&reads);
    FD_ZERO (&writes);
    FD_ZERO (&errors);
    MHD_socket top = -1;
    if (MHD_get_fdset (self->daemon, &reads, &writes, &errors, &top) != MHD_YES)
        return 0;           /* only with a socket MHD never takes in this mode */
    int count = 0;
    for (MHD_socket fd = 0; fd <= top; fd++) {
        short events = (short) ((FD_ISSET (fd, &reads) ? ZMQ_POLLIN : 0)
                              | (FD_ISSET (fd, &writes) ? ZMQ_POLLOUT : 0));
        if (events || FD_ISSET (fd, &errors))
            items [count++] = (zmq_pollitem_t) { NULL, fd, events, 0 };
    }
    return count;
}

long
api_http_timeout (api_http_t *self)
{
    /* MHD takes resumed connections up in its next run, and does not
       count them in its timeout: that run must be now. */
    if (self->resumed_count)
        return 0;
    long due = api_deadline_timeout (self->deadline, dx_mono_ms ());
    MHD_UNSIGNED_LONG_LONG timeout;
    if (MHD_get_timeout (self->daemon, &timeout) != MHD_YES)
        return due;
    long idle = timeout > 1000000 ? 1000000 : (long) timeout;
    return due >= 0 && due < idle ? due : idle;
}

void
api_http_run (api_http_t *self, const zmq_pollitem_t *items, int count)
{
    fd_set reads, writes, errors;
    FD_ZERO (&reads);
    FD_ZERO (&writes);
    FD_ZERO (&errors);
    int64_t now = dx_mono_ms ();
    for (int i = 0; i < count; i++) {
        /* An error or a hang-up (ZMQ_POLLERR) is found by reading. Bytes
           on an idle connection begin its next request. */
        if (items [i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
            FD_SET (items [i].fd, &reads);
            api_deadline_start (self->deadline, items [i].fd, now);
        }
        if (items [i].revents & ZMQ_POLLOUT)
            FD_SET (items [i].fd, &writes);
        if (items [i].revents & ZMQ_POLLERR)
            FD_SET (items [i].fd, &errors);
    }
    self->resumed_count = 0;
    MHD_run_from_select (self->daemon, &reads, &writes, &errors);
    s_unshare (self);
    now = dx_mono_ms ();
    api_deadline_expire (self->deadline, now);
    if (self->trim_at && now >= self->trim_at) {
        self->trim_at = 0;
        dx_malloc_release ();
    }
}

void
api_http_answer (api_http_t *self)
{
    if (!self->resumed_count)
        return;
    /* The first run resumes them and makes their answers (the access
       handler's last call); a connection sends when its socket is
       writable, so the second run says theirs are, as an idle keep-alive
       socket is: the answers go out now instead of after one more poll.
       A send that would block leaves the rest to the poll, as ever. */
    fd_set reads, writes, errors;
    FD_ZERO (&reads);
    FD_ZERO (&writes);
    FD_ZERO (&errors);
    MHD_run_from_select (self->daemon, &reads, &writes, &errors);
    for (unsigned i = 0; i < self->resumed_count; i++)
        if (self->resumed [i] >= 0)
            FD_SET (self->resumed [i], &writes);
    self->resumed_count = 0;
    MHD_run_from_select (self->daemon, &reads, &writes, &errors);
    s_unshare (self);
}

void
api_http_quiesce (api_http_t *self)
{
    if (!self->quiesced) {
        MHD_quiesce_daemon (self->daemon);
        self->quiesced = true;
    }
}

int
api_http_listen_fd (api_http_t *self)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    return info ? (int) info->listen_fd : -1;
}

unsigned
api_http_port (api_http_t *self)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

int
api_http_resolve (const char *text, struct sockaddr_storage *addr,
                  socklen_t *addr_len, char *err, size_t errlen)
{
    char host [256];
    const char *port;
    if (text [0] == '[') {
        const char *close = strchr (text, ']');
        if (!close || close [1] != ':' || (size_t) (close - text - 1) >= sizeof host) {
            snprintf (err, errlen, "'%s' is not [IPv6]:PORT", text);
            return -1;
        }
        memcpy (host, text + 1, (size_t) (close - text - 1));
        host [close - text - 1] = 0;
        port = close + 2;
    }
    else {
        const char *colon = strrchr (text, ':');
        if (!colon || colon == text || (size_t) (colon - text) >= sizeof host) {
            snprintf (err, errlen, "'%s' is not HOST:PORT", text);
            return -1;
        }
        memcpy (host, text, (size_t) (colon - text));
        host [colon - text] = 0;
        port = colon + 1;
    }
    size_t digits = strspn (port, "0123456789");
    if (digits == 0 || digits > 5 || port [digits] || atoi (port) > 65535) {
        snprintf (err, errlen, "'%s': the port must be a number from 0 to 65535", text);
        return -1;
    }
    struct addrinfo hints, *found = NULL;
    memset (&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo (host, port, &hints, &found);
    if (rc) {
        snprintf (err, errlen, "cannot resolve '%s': %s", host, gai_strerror (rc));
        return -1;
    }
    /* A name with both families (localhost) binds IPv4: what most clients
       try first. */
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *ai = found; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET || (ai->ai_family == AF_INET6 && !pick))
            if (!pick || pick->ai_family != AF_INET)
                pick = ai;
    if (!pick || pick->ai_addrlen > sizeof *addr) {
        freeaddrinfo (found);
        snprintf (err, errlen, "'%s' has no IPv4 or IPv6 address", host);
        return -1;
    }
    memcpy (addr, pick->ai_addr, pick->ai_addrlen);
    *addr_len = pick->ai_addrlen;
    freeaddrinfo (found);
    return 0;
}

int
api_http_is_loopback (const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) addr;
        return (ntohl (in->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->sa_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *) addr)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK (in6)
            || (IN6_IS_ADDR_V4MAPPED (in6) && in6->s6_addr [12] == 127);
    }
    return 0;
}

char *
api_http_format (const struct sockaddr *addr, unsigned port, char *buf, size_t size)
{
    char host [INET6_ADDRSTRLEN] = "?";
    if (addr->sa_family == AF_INET)
        inet_ntop (AF_INET, &((const struct sockaddr_in *) addr)->sin_addr,
                   host, sizeof host);
    else
    if (addr->sa_family == AF_INET6)
        inet_ntop (AF_INET6, &((const struct sockaddr_in6 *) addr)->sin6_addr,
                   host, sizeof host);
    snprintf (buf, size, addr->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    return buf;
}
