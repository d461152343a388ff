/*  sch_redis: the connection to Redis, batches of commands, pipelines and
    transactions, and the outbox of writes kept for Redis. See sch_redis.h.

    A batch holds its commands' arguments in the Redis protocol (RESP) in
    one buffer; sending writes each command's "*argc\r\n" header before its
    arguments into one buffer handed to hiredis at once, then reads one
    reply per command. A reply stream out of step (an error or a timeout in
    the middle) makes the context unusable: it is dropped.

    The outbox is a list of batches, oldest first. Every send drains it
    first (s_redis_drain) and is refused while it cannot: that one rule
    keeps Redis in the order the writes were made. */
#include "sch_redis.h"
#include "sch_metrics.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#define S_CONNECT_TIMEOUT_MS  1000      /* connect(2) to Redis */
#define S_COMMAND_TIMEOUT_MS  3000      /* one round trip; the loop must not hang */
#define S_RECONNECT_GAP_MS    100       /* least time between two attempts */
#define S_DOWN_WARNING_MS     30000     /* "still unavailable" at most this often */

/*  A write kept for Redis (the outbox is a list of these). */
typedef struct s_kept {
    struct s_kept *next;
    sch_batch_t batch;
    uint64_t serial;
    int uncertain;              /* it may have been carried out: look first */
    char what [64];             /* names it in logs */
} s_kept_t;

struct sch_redis {
    char *host;                 /* TCP host, or NULL with path */
    int port;
    char *path;                 /* unix socket path, or NULL */
    char *user;                 /* ACL user (Redis 6+), may be NULL */
    char *password;             /* may be NULL; never logged */
    int db;
    char address [300];         /* host:port or path, for messages */
    redisContext *ctx;          /* NULL while disconnected */
    uint64_t session;           /* connections lost, ever */
    int64_t last_attempt;       /* dx_mono_ms of the last connect attempt */
    int64_t last_warning;       /* dx_mono_ms of the last "still down" warning */
    int ever_failed;            /* to log "connected again" once */
    const char *status;         /* DX_UNAVAILABLE / DX_INTERNAL of last failure */
    char error [512];
    char said [600];            /* error, and the writes waiting, as told */
    char cause [160];           /* why the last connection failed or was
                                   lost, without the address (health) */
    s_kept_t *kept, *kept_last; /* the outbox, oldest first */
    size_t nkept;
    uint64_t serial;            /* of the last write kept */
};

static int s_redis_drain (sch_redis_t *self);
static void s_kept_destroy (s_kept_t **kept_p);


//  ---------------------------------------------------------------------
//  Failures

void
sch_redis_fail (sch_redis_t *self, const char *status, const char *fmt, ...)
{
    self->status = status;
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, args);
    va_end (args);
}

const char *
sch_redis_status (sch_redis_t *self)
{
    return self->status? self->status: DX_INTERNAL;
}

/*  While writes are kept every command fails for want of Redis, so the
    sentence says how many wait. */
const char *
sch_redis_error (sch_redis_t *self)
{
    if (!self->error [0])
        return "unknown storage error";
    if (!self->nkept)
        return self->error;
    snprintf (self->said, sizeof self->said, "%s; %zu accepted writes wait for it",
              self->error, self->nkept);
    return self->said;
}

/*  Frees the context: the next command or tick connects again. */
static void
s_redis_drop (sch_redis_t *self)
{
    if (self->ctx)
        redisFree (self->ctx);
    self->ctx = NULL;
    self->ever_failed = 1;
}

/*  The connection is gone or unusable: drop it and say so. */
static void
s_redis_lost (sch_redis_t *self, const char *why)
{
    if (!why || !*why)
        why = "connection lost";
    sch_redis_fail (self, DX_UNAVAILABLE, "redis at %s is unavailable: %s", self->address,
                    why);
    snprintf (self->cause, sizeof self->cause, "%s", why);
    sch_metrics_redis_error ("connection");
    if (self->ctx) {
        dx_warn ("lost the connection to redis at %s: %s", self->address, why);
        s_redis_drop (self);
        self->session++;
        self->last_warning = dx_mono_ms ();
    }
}

/*  Error replies that mean "Redis cannot serve right now" rather than a
    bug in what we sent (OOM: maxmemory reached, until memory is freed). */
static int
s_redis_transient (const char *text)
{
    const char *codes [] = { "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                             "NOAUTH", "READONLY", "MISCONF", "NOREPLICAS", "OOM", NULL };
    for (int i = 0; codes [i]; i++)
        if (strncmp (text, codes [i], strlen (codes [i])) == 0)
            return 1;
    return 0;
}

int
sch_redis_check (sch_redis_t *self, const redisReply *reply, const char *what)
{
    if (reply && reply->type != REDIS_REPLY_ERROR)
        return 0;
    const char *text = reply && reply->str? reply->str: "unexpected reply";
    sch_metrics_redis_error ("reply");
    if (s_redis_transient (text))
        sch_redis_fail (self, DX_UNAVAILABLE, "redis at %s is unavailable: %s",
                        self->address, text);
    else {
        sch_redis_fail (self, DX_INTERNAL, "redis error during %s: %s", what, text);
        dx_error ("redis error during %s: %s", what, text);
    }
    return -1;
}


//  ---------------------------------------------------------------------
//  URL and connection

/*  Decodes %XX escapes in place (passwords may hold any character). */
static int
s_redis_unescape (char *text)
{
    char *out = text;
    for (char *in = text; *in; in++) {
        if (*in == '%') {
            if (!isxdigit ((unsigned char) in [1]) || !isxdigit ((unsigned char) in [2]))
                return -1;
            char hex [3] = { in [1], in [2], 0 };
            *out++ = (char) strtol (hex, NULL, 16);
            in += 2;
        }
        else
            *out++ = *in;
    }
    *out = 0;
    return 0;
}

/*  Parses a decimal integer in [min, max] from text; -1 if it is not one. */
static int
s_redis_parse_int (const char *text, long min, long max, long *value)
{
    if (!isdigit ((unsigned char) *text))
        return -1;
    char *end;
    errno = 0;
    long n = strtol (text, &end, 10);
    if (errno || *end || n < min || n > max)
        return -1;
    *value = n;
    return 0;
}

/*  unix:///absolute/path.sock[?db=N] into self. */
static int
s_redis_parse_unix (sch_redis_t *self, const char *rest)
{
    char *copy = strdup (rest);
    if (!copy)
        return -1;
    char *query = strchr (copy, '?');
    long n = 0;
    const char *fault = NULL;
    if (query) {
        *query++ = 0;
        if (strncmp (query, "db=", 3) || s_redis_parse_int (query + 3, 0, 1000000, &n))
            fault = "DEXTER_REDIS_URL: unix socket URLs take only ?db=N";
    }
    if (!fault && copy [0] != '/')
        fault = "DEXTER_REDIS_URL: a unix socket URL is unix:///absolute/path.sock";
    if (fault) {
        dx_error ("%s", fault);
        free (copy);
        return -1;
    }
    self->db = (int) n;
    self->path = copy;
    snprintf (self->address, sizeof self->address, "%s", copy);
    return 0;
}

/*  Fills self from url; logs and returns -1 when it is malformed. The
    password never appears in a log line. */
static int
s_redis_parse_url (sch_redis_t *self, const char *url)
{
    long n;
    if (strncmp (url, "unix://", 7) == 0)
        return s_redis_parse_unix (self, url + 7);
    if (strncmp (url, "redis://", 8) != 0) {
        dx_error ("DEXTER_REDIS_URL must be redis://[:password@]host:port[/db] or "
                  "unix:///path/to.sock (TLS rediss:// is not supported)");
        return -1;
    }
    char *copy = strdup (url + 8);
    if (!copy)
        return -1;
    int rc = -1;
    char *rest = copy;
    char *at = strrchr (rest, '@');
    if (at) {
        *at = 0;
        char *colon = strchr (rest, ':');
        if (!colon) {
            dx_error ("DEXTER_REDIS_URL: credentials must be [user]:password@");
            goto done;
        }
        *colon = 0;
        if (*rest) {
            self->user = strdup (rest);
            if (!self->user || s_redis_unescape (self->user))
                goto bad_escape;
        }
        self->password = strdup (colon + 1);
        if (!self->password || s_redis_unescape (self->password))
            goto bad_escape;
        rest = at + 1;
    }
    char *slash = strchr (rest, '/');
    self->db = 0;
    if (slash) {
        *slash = 0;
        if (slash [1] && s_redis_parse_int (slash + 1, 0, 1000000, &n)) {
            dx_error ("DEXTER_REDIS_URL: the database after '/' must be a number");
            goto done;
        }
        self->db = slash [1]? (int) n: 0;
    }
    char *port = NULL;
    if (rest [0] == '[') {                  /* [ipv6]:port */
        char *close = strchr (rest, ']');
        if (!close) {
            dx_error ("DEXTER_REDIS_URL: unterminated [IPv6 address]");
            goto done;
        }
        *close = 0;
        rest++;
        if (close [1] == ':')
            port = close + 2;
        else
        if (close [1]) {
            dx_error ("DEXTER_REDIS_URL: unexpected text after the IPv6 address");
            goto done;
        }
    }
    else {
        port = strchr (rest, ':');
        if (port)
            *port++ = 0;
    }
    self->port = 6379;
    if (port && s_redis_parse_int (port, 1, 65535, &n)) {
        dx_error ("DEXTER_REDIS_URL: the port must be a number from 1 to 65535");
        goto done;
    }
    if (port)
        self->port = (int) n;
    self->host = strdup (*rest? rest: "127.0.0.1");
    if (!self->host)
        goto done;
    if (strchr (self->host, ':'))
        snprintf (self->address, sizeof self->address, "[%s]:%d", self->host, self->port);
    else
        snprintf (self->address, sizeof self->address, "%s:%d", self->host, self->port);
    rc = 0;
    goto done;
bad_escape:
    dx_error ("DEXTER_REDIS_URL: malformed %%XX escape in the credentials");
done:
    free (copy);
    return rc;
}

/*  Runs one command synchronously during connection set-up. */
static int
s_redis_setup_command (sch_redis_t *self, int argc, const char **argv, const char *what)
{
    redisReply *reply = redisCommandArgv (self->ctx, argc, argv, NULL);
    if (!reply) {
        s_redis_lost (self, self->ctx->errstr);
        return -1;
    }
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        sch_redis_fail (self, DX_UNAVAILABLE, "redis at %s is unavailable: %s failed: %s",
                        self->address, what, reply->str);
        snprintf (self->cause, sizeof self->cause, "%s failed: %s", what, reply->str);
        rc = -1;
    }
    freeReplyObject (reply);
    return rc;
}

/*  Connects (with AUTH and SELECT as the URL says) unless connected or the
    last attempt was under S_RECONNECT_GAP_MS ago. 0 when connected. */
static int
s_redis_connect (sch_redis_t *self)
{
    if (self->ctx)
        return 0;
    int64_t now = dx_mono_ms ();
    if (self->last_attempt && now - self->last_attempt < S_RECONNECT_GAP_MS)
        return -1;                      /* the last failure still stands */
    self->last_attempt = now;

    struct timeval tv = { S_CONNECT_TIMEOUT_MS / 1000, (S_CONNECT_TIMEOUT_MS % 1000) * 1000 };
    self->ctx = self->path? redisConnectUnixWithTimeout (self->path, tv)
                          : redisConnectWithTimeout (self->host, self->port, tv);
    if (!self->ctx || self->ctx->err) {
        sch_redis_fail (self, DX_UNAVAILABLE, "redis at %s is unavailable: %s", self->address,
                        self->ctx? self->ctx->errstr: "out of memory");
        snprintf (self->cause, sizeof self->cause, "%s",
                  self->ctx? self->ctx->errstr: "out of memory");
        s_redis_drop (self);
        return -1;
    }
    struct timeval ctv = { S_COMMAND_TIMEOUT_MS / 1000, (S_COMMAND_TIMEOUT_MS % 1000) * 1000 };
    redisSetTimeout (self->ctx, ctv);

    int rc = 0;
    if (self->password) {
        const char *argv [3] = { "AUTH", self->user? self->user: self->password,
                                 self->password };
        rc = s_redis_setup_command (self, self->user? 3: 2, argv, "AUTH");
    }
    if (rc == 0 && self->db) {
        char db [16];
        snprintf (db, sizeof db, "%d", self->db);
        const char *argv [2] = { "SELECT", db };
        rc = s_redis_setup_command (self, 2, argv, "SELECT");
    }
    if (rc) {
        s_redis_drop (self);
        return -1;
    }
    if (self->ever_failed)
        dx_info ("connected to redis at %s again", self->address);
    else
        dx_info ("connected to redis at %s db %d", self->address, self->db);
    self->ever_failed = 0;
    return 0;
}

sch_redis_t *
sch_redis_new (const char *url)
{
    if (!url)
        return NULL;
    sch_redis_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    if (s_redis_parse_url (self, url)) {
        sch_redis_destroy (&self);
        return NULL;
    }
    if (s_redis_connect (self)) {
        dx_warn ("%s; retrying every second", sch_redis_error (self));
        self->last_warning = dx_mono_ms ();
    }
    return self;
}

void
sch_redis_destroy (sch_redis_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_redis_t *self = *self_p;
    if (self->kept && s_redis_drain (self))
        dx_error ("stopping with %zu writes redis never took: they are lost (%s)",
                  self->nkept, self->error);
    while (self->kept) {
        s_kept_t *kept = self->kept;
        self->kept = kept->next;
        s_kept_destroy (&kept);
    }
    if (self->ctx)
        redisFree (self->ctx);
    free (self->host);
    free (self->path);
    free (self->user);
    if (self->password) {
        memset (self->password, 0, strlen (self->password));
        free (self->password);
    }
    free (self);
    *self_p = NULL;
}

/*  Looks at the idle connection without waiting: Redis sends nothing
    unasked, so a socket that is readable holds its end (or an error, or
    bytes out of step): the connection is lost. A Redis that stopped is
    seen at once, not at the next command. */
static void
s_redis_peek (sch_redis_t *self)
{
    if (!self->ctx || self->ctx->fd < 0)
        return;
    struct pollfd pfd = { .fd = self->ctx->fd, .events = POLLIN };
    if (poll (&pfd, 1, 0) <= 0)
        return;
    char byte;
    ssize_t got = recv (self->ctx->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    s_redis_lost (self, got == 0? "Server closed the connection"
                      : got < 0? strerror (errno): "unexpected data from redis");
}

void
sch_redis_tick (sch_redis_t *self)
{
    if (!self->kept)
        s_redis_peek (self);
    int up = self->kept? s_redis_drain (self) == 0: self->ctx || s_redis_connect (self) == 0;
    if (up)
        return;
    int64_t now = dx_mono_ms ();
    if (now - self->last_warning >= S_DOWN_WARNING_MS) {
        dx_warn ("%s; retrying every second", sch_redis_error (self));
        self->last_warning = now;
    }
}

const char *
sch_redis_health (sch_redis_t *self, char *buf, size_t size)
{
    s_redis_peek (self);
    if (!self->ctx)
        snprintf (buf, size, "unreachable: %s", self->cause [0]? self->cause: "not connected");
    else
    if (self->nkept)
        snprintf (buf, size, "%zu accepted writes wait for it: it takes no writes now",
                  self->nkept);
    else
        return NULL;
    return buf;
}

int
sch_redis_connected (sch_redis_t *self)
{
    return self->ctx != NULL;
}

const char *
sch_redis_address (sch_redis_t *self)
{
    return self->address;
}

uint64_t
sch_redis_session (sch_redis_t *self)
{
    return self->session;
}


//  ---------------------------------------------------------------------
//  Batches

void
sch_batch_free (sch_batch_t *self)
{
    free (self->data);
    free (self->starts);
    free (self->argcs);
    memset (self, 0, sizeof *self);
}

size_t
sch_batch_size (const sch_batch_t *self)
{
    return self->count;
}

/*  Appends raw bytes to the argument buffer. */
static void
s_batch_put (sch_batch_t *self, const char *data, size_t len)
{
    if (self->oom)
        return;
    if (self->len + len > self->cap) {
        size_t cap = self->cap? self->cap: 4096;
        while (cap < self->len + len)
            cap *= 2;
        char *grown = realloc (self->data, cap);
        if (!grown) {
            self->oom = 1;
            return;
        }
        self->data = grown;
        self->cap = cap;
    }
    memcpy (self->data + self->len, data, len);
    self->len += len;
}

/*  Writes n in decimal into buf (at least 21 bytes); returns the length.
    Every argument and command header goes through here: no printf. */
static size_t
s_batch_itoa (size_t n, char *buf)
{
    char tmp [24];
    size_t len = 0;
    do {
        tmp [len++] = (char) ('0' + n % 10);
        n /= 10;
    } while (n);
    for (size_t i = 0; i < len; i++)
        buf [i] = tmp [len - 1 - i];
    return len;
}

/*  Appends len bytes of data as an argument of the last command. */
static void
s_batch_argn (sch_batch_t *self, const char *data, size_t len)
{
    if (self->oom || self->count == 0)
        return;
    char head [32];
    head [0] = '$';
    size_t n = 1 + s_batch_itoa (len, head + 1);
    head [n++] = '\r';
    head [n++] = '\n';
    s_batch_put (self, head, n);
    s_batch_put (self, data, len);
    s_batch_put (self, "\r\n", 2);
    self->argcs [self->count - 1]++;
}

void
sch_batch_arg (sch_batch_t *self, const char *text)
{
    s_batch_argn (self, text, strlen (text));
}

void
sch_batch_arg_take (sch_batch_t *self, char *text)
{
    if (!text)
        self->oom = 1;
    else
        s_batch_argn (self, text, strlen (text));
    free (text);
}

void
sch_batch_argf (sch_batch_t *self, const char *fmt, ...)
{
    char *text = NULL;
    va_list args;
    va_start (args, fmt);
    int rc = vasprintf (&text, fmt, args);
    va_end (args);
    if (rc < 0) {
        self->oom = 1;
        return;
    }
    s_batch_argn (self, text, (size_t) rc);
    free (text);
}

void
sch_batch_cmd (sch_batch_t *self, const char *first, ...)
{
    if (self->oom)
        return;
    if (self->count == self->cmd_cap) {
        size_t cap = self->cmd_cap? self->cmd_cap * 2: 16;
        size_t *starts = realloc (self->starts, cap * sizeof *starts);
        if (starts)
            self->starts = starts;
        size_t *argcs = realloc (self->argcs, cap * sizeof *argcs);
        if (argcs)
            self->argcs = argcs;
        if (!starts || !argcs) {
            self->oom = 1;
            return;
        }
        self->cmd_cap = cap;
    }
    self->starts [self->count] = self->len;
    self->argcs [self->count++] = 0;
    va_list args;
    va_start (args, first);
    for (const char *arg = first; arg; arg = va_arg (args, const char *))
        sch_batch_arg (self, arg);
    va_end (args);
}


//  ---------------------------------------------------------------------
//  Pipelines and transactions

void
sch_redis_replies_free (redisReply **replies, size_t count)
{
    if (!replies)
        return;
    for (size_t i = 0; i < count; i++)
        if (replies [i])
            freeReplyObject (replies [i]);
    free (replies);
}

/*  Sends the batch, wrapped in MULTI/EXEC when transaction is set, in one
    write and reads every reply (batch->count, plus 2 when wrapped). The
    kept writes are not looked at: callers drain them first. *cut is set
    when the connection broke once the batch may have reached Redis, which
    may then have carried it out. */
static int
s_redis_roundtrip (sch_redis_t *self, const sch_batch_t *batch, int transaction,
                   redisReply ***replies_p, int *cut)
{
    static const char multi [] = "*1\r\n$5\r\nMULTI\r\n";
    static const char exec [] = "*1\r\n$4\r\nEXEC\r\n";
    *replies_p = NULL;
    *cut = 0;
    if (batch->oom) {
        sch_redis_fail (self, DX_INTERNAL, "out of memory building a redis command");
        return -1;
    }
    if (s_redis_connect (self))
        return -1;
    double start = sch_metrics_clock ();
    size_t size = batch->len + batch->count * 24 + sizeof multi + sizeof exec;
    char *out = malloc (size);
    size_t expected = batch->count + (transaction? 2: 0);
    redisReply **replies = calloc (expected? expected: 1, sizeof *replies);
    if (!out || !replies) {
        free (out);
        free (replies);
        sch_redis_fail (self, DX_INTERNAL, "out of memory building a redis command");
        return -1;
    }
    size_t used = 0;
    if (transaction) {
        memcpy (out, multi, sizeof multi - 1);
        used = sizeof multi - 1;
    }
    for (size_t i = 0; i < batch->count; i++) {
        size_t end = i + 1 < batch->count? batch->starts [i + 1]: batch->len;
        out [used++] = '*';
        used += s_batch_itoa (batch->argcs [i], out + used);
        out [used++] = '\r';
        out [used++] = '\n';
        memcpy (out + used, batch->data + batch->starts [i], end - batch->starts [i]);
        used += end - batch->starts [i];
    }
    if (transaction) {
        memcpy (out + used, exec, sizeof exec - 1);
        used += sizeof exec - 1;
    }
    int rc = redisAppendFormattedCommand (self->ctx, out, used);
    free (out);
    if (rc != REDIS_OK) {
        free (replies);
        s_redis_lost (self, self->ctx->errstr);
        return -1;
    }
    for (size_t i = 0; i < expected; i++) {
        void *reply = NULL;
        if (redisGetReply (self->ctx, &reply) != REDIS_OK || !reply) {
            //  The reply stream is out of step now: the context is unusable
            s_redis_lost (self, self->ctx->errstr);
            sch_redis_replies_free (replies, expected);
            *cut = 1;
            return -1;
        }
        replies [i] = reply;
    }
    sch_metrics_redis_roundtrip (sch_metrics_clock () - start);
    *replies_p = replies;
    return 0;
}

/*  Runs the batch as one transaction, the kept writes not looked at (see
    s_redis_roundtrip for *cut). An error reply inside EXEC fails it too:
    a bug in what was sent. */
static int
s_redis_exec (sch_redis_t *self, const sch_batch_t *batch, const char *what, int *cut)
{
    redisReply **replies;
    if (s_redis_roundtrip (self, batch, 1, &replies, cut))
        return -1;
    size_t count = batch->count + 2;
    redisReply *exec = replies [count - 1];
    int rc = 0;
    for (size_t i = 0; i + 1 < count && rc == 0; i++)
        rc = sch_redis_check (self, replies [i], what);
    if (rc == 0 && exec->type != REDIS_REPLY_ARRAY)
        rc = sch_redis_check (self, exec->type == REDIS_REPLY_ERROR? exec: NULL, what);
    for (size_t i = 0; rc == 0 && i < exec->elements; i++)
        rc = sch_redis_check (self, exec->element [i], what);
    sch_redis_replies_free (replies, count);
    return rc;
}

int
sch_redis_pipeline (sch_redis_t *self, const sch_batch_t *batch, redisReply ***replies_p)
{
    int cut;
    *replies_p = NULL;
    return s_redis_drain (self)? -1: s_redis_roundtrip (self, batch, 0, replies_p, &cut);
}

int
sch_redis_transact (sch_redis_t *self, const sch_batch_t *batch, const char *what)
{
    int cut;
    return s_redis_drain (self)? -1: s_redis_exec (self, batch, what, &cut);
}


//  ---------------------------------------------------------------------
//  The outbox

void
sch_batch_witness (sch_batch_t *self)
{
    self->witness = self->count;
}

/*  The argument at *at, as s_batch_argn wrote it ("$len\r\nbytes\r\n"):
    its bytes, their length in *len; *at moves on to the next one. */
static const char *
s_batch_next (const char **at, size_t *len)
{
    char *end;
    *len = strtoul (*at + 1, &end, 10);
    const char *bytes = end + 2;
    *at = bytes + *len + 2;
    return bytes;
}

/*  1 if the fields of the witness of batch (XADD key ... * field value
    ...) are those of the last entry of its stream: Redis carried the
    batch out. 0 if they are not, or there is no witness; -1 when Redis
    cannot say now. */
static int
s_redis_witnessed (sch_redis_t *self, const sch_batch_t *batch)
{
    if (!batch->witness)
        return 0;
    //  XADD key [MAXLEN ~ N] * field value ...: the fields follow the id
    size_t cmd = batch->witness - 1, argc = batch->argcs [cmd], arg = 2, len, key_len;
    const char *at = batch->data + batch->starts [cmd];
    s_batch_next (&at, &len);
    const char *key = s_batch_next (&at, &key_len);
    while (arg < argc) {
        const char *id = s_batch_next (&at, &len);
        arg++;
        if (len == 1 && *id == '*')
            break;
    }
    sch_batch_t probe = { 0 };
    sch_batch_cmd (&probe, "XREVRANGE", NULL);
    s_batch_argn (&probe, key, key_len);
    sch_batch_arg (&probe, "+");
    sch_batch_arg (&probe, "-");
    sch_batch_arg (&probe, "COUNT");
    sch_batch_arg (&probe, "1");
    redisReply **replies;
    int cut;
    int rc = s_redis_roundtrip (self, &probe, 0, &replies, &cut);
    sch_batch_free (&probe);
    if (rc)
        return -1;
    const redisReply *reply = replies [0];
    int found = sch_redis_check (self, reply, "looking for a kept write's event");
    if (found == 0 && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1
    &&  reply->element [0]->elements == 2) {
        const redisReply *fields = reply->element [0]->element [1];
        found = fields->type == REDIS_REPLY_ARRAY && fields->elements == argc - arg;
        for (size_t f = 0; found == 1 && f < fields->elements; f++) {
            const redisReply *field = fields->element [f];
            const char *sent = s_batch_next (&at, &len);
            found = field->type == REDIS_REPLY_STRING && field->len == len
                 && memcmp (field->str, sent, len) == 0;
        }
    }
    sch_redis_replies_free (replies, 1);
    return found;
}

/*  Frees a kept write; safe on NULL. */
static void
s_kept_destroy (s_kept_t **kept_p)
{
    if (*kept_p) {
        sch_batch_free (&(*kept_p)->batch);
        free (*kept_p);
        *kept_p = NULL;
    }
}

/*  Takes batch into the outbox, after every write kept before it. Its
    serial, or 0 when out of memory. */
static uint64_t
s_redis_keep (sch_redis_t *self, sch_batch_t *batch, const char *what, int uncertain)
{
    s_kept_t *kept = calloc (1, sizeof *kept);
    if (!kept)
        return 0;
    kept->batch = *batch;
    memset (batch, 0, sizeof *batch);
    kept->serial = ++self->serial;
    kept->uncertain = uncertain;
    snprintf (kept->what, sizeof kept->what, "%s", what);
    if (self->kept_last)
        self->kept_last->next = kept;
    else {
        self->kept = kept;
        dx_warn ("%s: keeping the writes redis cannot take, in order, until it can",
                 self->error);
    }
    self->kept_last = kept;
    self->nkept++;
    return kept->serial;
}

/*  Sends the kept writes, oldest first, until none is left (0) or Redis
    cannot take one now (-1, UNAVAILABLE). One that Redis refuses for good
    (a bug in it) is logged and dropped: it would hold up every other. */
static int
s_redis_drain (sch_redis_t *self)
{
    size_t taken = 0;
    while (self->kept) {
        s_kept_t *kept = self->kept;
        int cut = 0;
        int found = kept->uncertain? s_redis_witnessed (self, &kept->batch): 0;
        int rc = found? found < 0: s_redis_exec (self, &kept->batch, kept->what, &cut);
        if (rc && strcmp (sch_redis_status (self), DX_UNAVAILABLE) == 0) {
            if (found == 0)
                kept->uncertain = cut;
            return -1;
        }
        if (rc)
            dx_error ("redis refused %s, kept for it, for good; it is dropped: %s",
                      kept->what, self->error);
        self->kept = kept->next;
        if (!self->kept)
            self->kept_last = NULL;
        self->nkept--;
        s_kept_destroy (&kept);
        taken++;
    }
    if (taken)
        dx_info ("redis at %s took what was kept for it (%zu writes)", self->address, taken);
    return 0;
}

int
sch_redis_write (sch_redis_t *self, sch_batch_t *batch, const char *what, uint64_t *serial)
{
    int cut = 0;
    int rc = s_redis_drain (self)? -1: s_redis_exec (self, batch, what, &cut);
    uint64_t kept = 0;
    if (rc && strcmp (sch_redis_status (self), DX_UNAVAILABLE) == 0) {
        kept = s_redis_keep (self, batch, what, cut);
        if (!kept)
            dx_error ("out of memory keeping %s for redis: it is lost", what);
    }
    sch_batch_free (batch);
    if (kept && serial)
        *serial = kept;
    return kept? 1: rc;
}

int
sch_redis_flush (sch_redis_t *self)
{
    return s_redis_drain (self);
}

size_t
sch_redis_kept (sch_redis_t *self)
{
    return self->nkept;
}

int
sch_redis_written (sch_redis_t *self, uint64_t serial)
{
    return !self->kept || self->kept->serial > serial;
}
