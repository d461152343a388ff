/*  sch_store: the scheduler's Redis access and key schema. See sch_store.h
    for the contract and docs/redis.md for the schema as operators see it.

    Commands are built in a batch (a list of argv vectors, binary-safe) and
    sent with hiredis' pipelining (redisAppendCommandArgv, then one
    redisGetReply per command), either as they are (reads) or wrapped in
    MULTI/EXEC (changes). The store also keeps one read batch: the reads
    queued by many requests (sch_store_queue_*), sent together by
    sch_store_read_flush, each request's replies found again by its ticket.
    A connection error frees the context; the next request or the cron tick
    connects again. */
#include "sch_store.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <czmq.h>
#include <hiredis.h>

#define SCH_CONNECT_TIMEOUT_MS  1000    /* connect(2) to Redis */
#define SCH_COMMAND_TIMEOUT_MS  3000    /* one round trip; the loop must not hang */
#define SCH_RECONNECT_GAP_MS    100     /* least time between two attempts */
#define SCH_DOWN_WARNING_MS     30000   /* "still unavailable" at most this often */
#define SCH_CACHE_MAX           512     /* clusters whose spec reads are kept */
#define SCH_CACHE_TTL_MS        1000    /* longest a kept read is served */
#define SCH_CACHE_MEMOS         8       /* memos kept beside one read */
#define SCH_BATCH_NAMES         4       /* clusters a batch lists; more: "many" */

/*  The parts a kept read may hold: the spec and the deployment record,
    small and read by every GET. Secrets, jobs and resources are only
    read by changes and the engine, which always read Redis. */
#define SCH_CACHE_PARTS (SCH_LOAD_CLUSTER | SCH_LOAD_CONFIG | SCH_LOAD_GROUPS \
                         | SCH_LOAD_DEPLOYMENT)

/*  A batch is its commands already in the Redis protocol (RESP): the
    arguments of all commands as "$len\r\nbytes\r\n" in one buffer, and per
    command where its arguments start and how many there are. Sending
    writes each "*argc\r\n" header before its arguments into one buffer
    handed to hiredis at once: with 20,000 commands (the list of 10,000
    clusters) this is several times cheaper than redisAppendCommandArgv
    per command. */
typedef struct {
    char *data;                 /* the arguments, RESP-encoded */
    size_t len, cap;
    size_t *starts;             /* per command: offset of its first argument */
    size_t *argcs;              /* per command: number of arguments */
    size_t count, cmd_cap;
    int oom;                    /* an allocation failed: the batch is void */
    char names [SCH_BATCH_NAMES][24];   /* the clusters whose keys it names */
    size_t nnames;
    int many;                   /* more clusters than names holds */
} s_batch_t;

/*  A queued read: where its replies start in the read batch, how many
    commands it sent, what it is. */
typedef struct {
    size_t first, count;
    unsigned what;              /* for SCH_READ_LOAD */
    int kind;
    char name [24];             /* the cluster (names are at most 16) */
    json_t *kept;               /* served from the read cache: its parts, a reference */
    uint64_t serial;            /* the kept read it is, 0 when none */
} s_ticket_t;

/*  A kept read of one cluster: the decoded parts (as s_store_decode_load
    builds them) that GETs read since the last change of the cluster. */
typedef struct {
    json_t *parts;              /* part name -> value */
    unsigned what;              /* the SCH_LOAD_* parts held */
    int64_t expires;            /* dx_mono_ms */
    uint64_t serial;            /* names this kept read, never reused */
    json_t *memos;              /* key -> text made from the parts */
} s_kept_t;

struct sch_store {
    char *host;                 /* TCP host, or NULL with path */
    int port;
    char *path;                 /* unix socket path, or NULL */
    char *user;                 /* ACL user (Redis 6+), may be NULL */
    char *password;             /* may be NULL; never logged */
    int db;
    char address [300];         /* host:port or path, for messages */
    redisContext *ctx;          /* NULL while disconnected */
    int64_t last_attempt;       /* dx_mono_ms of the last connect attempt */
    int64_t last_warning;       /* dx_mono_ms of the last "still down" warning */
    int ever_failed;            /* to log "connected again" once */
    const char *status;         /* DX_UNAVAILABLE / DX_INTERNAL of last failure */
    char error [512];
    s_batch_t reads;            /* the read batch: commands queued, not sent */
    s_ticket_t *tickets;        /* one per queued read */
    size_t ntickets, tickets_cap;
    redisReply **replies;       /* after sch_store_read_flush: reads.count */
    size_t nreplies;
    zhashx_t *cache;            /* cluster name -> s_kept_t: the read cache */
    uint64_t changes;           /* transactions sent, ever */
    uint64_t flushed_at;        /* changes when the read batch was sent */
    uint64_t serials;           /* the last s_kept_t serial given */
};

static void s_cache_forget (sch_store_t *self, const s_batch_t *batch);
static void s_kept_destroy (void **item_p);

/*  The per-cluster key parts. Every key a cluster owns is listed here, so
    that cluster delete (and create, which starts from nothing) removes all
    of them in one DEL. */
const char *sch_store_parts [] = {
    "cluster", "config", "secrets", "groups", "deployment", "specs",
    "credentials", "events", "jobs", "resources", NULL
};

/*  Config fields that are numbers in the API; Redis holds them as decimal
    strings and reads turn them back into numbers. */
static const char *s_config_numbers [] = { "masters", NULL };

/*  Deployment record fields that are numbers. */
static const char *s_deployment_numbers [] = {
    "generation", "observed_generation", "parallelism", "steps_done", "steps_total", NULL
};

/*  Deployment record fields, in the order they are written. */
static const char *s_deployment_fields [] = {
    "state", "command", "generation", "observed_generation", "parallelism",
    "steps_done", "steps_total", "current", "waiting", "last_error",
    "created_at", "updated_at", "started_at", "finished_at", "accessip", NULL
};


//  ---------------------------------------------------------------------
//  Errors

/*  Records a failure: status code and a sentence. */
static void
s_store_fail (sch_store_t *self, const char *status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_store_fail (sch_store_t *self, const char *status, const char *fmt, ...)
{
    self->status = status;
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, args);
    va_end (args);
}

/*  The connection is gone or unusable: drop it and say so. */
static void
s_store_lost (sch_store_t *self, const char *why)
{
    s_store_fail (self, DX_UNAVAILABLE, "redis at %s is unavailable: %s",
                  self->address, why && *why? why: "connection lost");
    if (self->ctx) {
        dx_warn ("lost the connection to redis at %s: %s", self->address,
                 why && *why? why: "connection lost");
        redisFree (self->ctx);
        self->ctx = NULL;
        self->ever_failed = 1;
        self->last_warning = dx_mono_ms ();
    }
    //  Redis may come back without what it had: nothing kept is sure now
    self->changes++;
    zhashx_purge (self->cache);
}

/*  Error replies that mean "Redis cannot serve right now" rather than a
    bug in what we sent. */
static int
s_store_transient (const char *text)
{
    const char *codes [] = { "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                             "NOAUTH", "READONLY", "MISCONF", "NOREPLICAS", NULL };
    for (int i = 0; codes [i]; i++)
        if (strncmp (text, codes [i], strlen (codes [i])) == 0)
            return 1;
    return 0;
}

/*  Records a Redis error reply as the store's failure. */
static void
s_store_reply_failed (sch_store_t *self, const redisReply *reply, const char *what)
{
    const char *text = reply && reply->str? reply->str: "unexpected reply";
    if (s_store_transient (text))
        s_store_fail (self, DX_UNAVAILABLE, "redis at %s is unavailable: %s",
                      self->address, text);
    else {
        s_store_fail (self, DX_INTERNAL, "redis error during %s: %s", what, text);
        dx_error ("redis error during %s: %s", what, text);
    }
}

/*  Status code of the last failure. */
const char *
sch_store_status (sch_store_t *self)
{
    return self->status? self->status: DX_INTERNAL;
}

/*  Sentence of the last failure. */
const char *
sch_store_error (sch_store_t *self)
{
    return self->error [0]? self->error: "unknown storage error";
}

/*  The reply for the last failure: what every handler answers when Redis
    fails it. */
json_t *
sch_store_error_reply (sch_store_t *self, const json_t *request)
{
    return dx_reply_error (request, sch_store_status (self), NULL, "%s",
                           sch_store_error (self));
}


//  ---------------------------------------------------------------------
//  URL and connection

/*  Decodes %XX escapes in place (passwords may hold any character). */
static int
s_store_unescape (char *text)
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
s_store_parse_int (const char *text, long min, long max, long *value)
{
    if (!*text)
        return -1;
    char *end;
    errno = 0;
    long n = strtol (text, &end, 10);
    if (errno || *end || n < min || n > max || !isdigit ((unsigned char) *text))
        return -1;
    *value = n;
    return 0;
}

/*  Fills self from url; logs and returns -1 when it is malformed. The
    password never appears in a log line. */
static int
s_store_parse_url (sch_store_t *self, const char *url)
{
    long n;
    if (strncmp (url, "unix://", 7) == 0) {
        char *copy = strdup (url + 7);
        if (!copy)
            return -1;
        char *query = strchr (copy, '?');
        self->db = 0;
        if (query) {
            *query++ = 0;
            if (strncmp (query, "db=", 3) || s_store_parse_int (query + 3, 0, 1000000, &n)) {
                dx_error ("DEXTER_REDIS_URL: unix socket URLs take only ?db=N");
                free (copy);
                return -1;
            }
            self->db = (int) n;
        }
        if (copy [0] != '/') {
            dx_error ("DEXTER_REDIS_URL: a unix socket URL is unix:///absolute/path.sock");
            free (copy);
            return -1;
        }
        self->path = copy;
        snprintf (self->address, sizeof self->address, "%s", copy);
        return 0;
    }
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
            if (!self->user || s_store_unescape (self->user))
                goto bad_escape;
        }
        self->password = strdup (colon + 1);
        if (!self->password || s_store_unescape (self->password))
            goto bad_escape;
        rest = at + 1;
    }
    char *slash = strchr (rest, '/');
    self->db = 0;
    if (slash) {
        *slash = 0;
        if (slash [1] && s_store_parse_int (slash + 1, 0, 1000000, &n)) {
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
    if (port && s_store_parse_int (port, 1, 65535, &n)) {
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
s_store_setup_command (sch_store_t *self, int argc, const char **argv, const char *what)
{
    redisReply *reply = redisCommandArgv (self->ctx, argc, argv, NULL);
    if (!reply) {
        s_store_lost (self, self->ctx->errstr);
        return -1;
    }
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        s_store_fail (self, DX_UNAVAILABLE, "redis at %s is unavailable: %s failed: %s",
                      self->address, what, reply->str);
        rc = -1;
    }
    freeReplyObject (reply);
    return rc;
}

/*  Connects (with AUTH and SELECT as the URL says) unless connected or the
    last attempt was under 100 ms ago. */
int
sch_store_connect (sch_store_t *self)
{
    if (self->ctx)
        return 0;
    int64_t now = dx_mono_ms ();
    if (self->last_attempt && now - self->last_attempt < SCH_RECONNECT_GAP_MS)
        return -1;                      /* the last failure still stands */
    self->last_attempt = now;

    struct timeval tv = { SCH_CONNECT_TIMEOUT_MS / 1000, (SCH_CONNECT_TIMEOUT_MS % 1000) * 1000 };
    self->ctx = self->path? redisConnectUnixWithTimeout (self->path, tv)
                          : redisConnectWithTimeout (self->host, self->port, tv);
    if (!self->ctx) {
        s_store_fail (self, DX_UNAVAILABLE, "redis at %s is unavailable: out of memory",
                      self->address);
        return -1;
    }
    if (self->ctx->err) {
        s_store_fail (self, DX_UNAVAILABLE, "redis at %s is unavailable: %s",
                      self->address, self->ctx->errstr);
        redisFree (self->ctx);
        self->ctx = NULL;
        self->ever_failed = 1;
        return -1;
    }
    struct timeval ctv = { SCH_COMMAND_TIMEOUT_MS / 1000, (SCH_COMMAND_TIMEOUT_MS % 1000) * 1000 };
    redisSetTimeout (self->ctx, ctv);

    int rc = 0;
    if (self->password) {
        const char *argv [3] = { "AUTH", self->user? self->user: self->password,
                                 self->password };
        rc = s_store_setup_command (self, self->user? 3: 2, argv, "AUTH");
    }
    if (rc == 0 && self->db) {
        char db [16];
        snprintf (db, sizeof db, "%d", self->db);
        const char *argv [2] = { "SELECT", db };
        rc = s_store_setup_command (self, 2, argv, "SELECT");
    }
    if (rc) {
        if (self->ctx)
            redisFree (self->ctx);
        self->ctx = NULL;
        self->ever_failed = 1;
        return -1;
    }
    if (self->ever_failed)
        dx_info ("connected to redis at %s again", self->address);
    else
        dx_info ("connected to redis at %s db %d", self->address, self->db);
    self->ever_failed = 0;
    return 0;
}

/*  Parses the URL and tries a first connection; a Redis that is down is
    not an error here (see sch_store.h). */
sch_store_t *
sch_store_new (const char *url)
{
    if (!url)
        return NULL;
    sch_store_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cache = zhashx_new ();
    if (!self->cache) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->cache, s_kept_destroy);
    if (s_store_parse_url (self, url)) {
        sch_store_destroy (&self);
        return NULL;
    }
    if (sch_store_connect (self)) {
        dx_warn ("%s; retrying every second", sch_store_error (self));
        self->last_warning = dx_mono_ms ();
    }
    return self;
}

/*  Closes the connection, wipes the password, frees; safe on NULL. */
void
sch_store_destroy (sch_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_store_t *self = *self_p;
    sch_store_read_reset (self);
    free (self->tickets);
    zhashx_destroy (&self->cache);
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

/*  Cron: reconnects; while Redis stays down, warns every 30 s, not every
    second. */
void
sch_store_tick (sch_store_t *self)
{
    if (self->ctx || sch_store_connect (self) == 0)
        return;
    //  Still down: say so now and then, not every second
    int64_t now = dx_mono_ms ();
    if (now - self->last_warning >= SCH_DOWN_WARNING_MS) {
        dx_warn ("%s; retrying every second", sch_store_error (self));
        self->last_warning = now;
    }
}

/*  1 while a connection is up. */
int
sch_store_connected (sch_store_t *self)
{
    return self->ctx != NULL;
}

/*  Where Redis is, for messages (never with the password). */
const char *
sch_store_address (sch_store_t *self)
{
    return self->address;
}

/*  dexter:{NAME}:part: the hash tag keeps a cluster in one slot. */
char *
sch_store_key (char *buf, size_t size, const char *name, const char *part)
{
    snprintf (buf, size, "dexter:{%s}:%s", name, part);
    return buf;
}


//  ---------------------------------------------------------------------
//  Batches of commands


/*  Frees a batch's buffers; the batch can be reused after. */
static void
s_batch_free (s_batch_t *batch)
{
    free (batch->data);
    free (batch->starts);
    free (batch->argcs);
    memset (batch, 0, sizeof *batch);
}

/*  Appends raw bytes to the argument buffer. */
static void
s_batch_put (s_batch_t *batch, const char *data, size_t len)
{
    if (batch->oom)
        return;
    if (batch->len + len > batch->cap) {
        size_t cap = batch->cap? batch->cap: 4096;
        while (cap < batch->len + len)
            cap *= 2;
        char *grown = realloc (batch->data, cap);
        if (!grown) {
            batch->oom = 1;
            return;
        }
        batch->data = grown;
        batch->cap = cap;
    }
    memcpy (batch->data + batch->len, data, len);
    batch->len += len;
}

/*  Writes n in decimal into buf (at least 21 bytes); returns the length. */
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
s_batch_argn (s_batch_t *batch, const char *data, size_t len)
{
    if (batch->oom || batch->count == 0)
        return;
    char head [32];
    head [0] = '$';
    size_t n = 1 + s_batch_itoa (len, head + 1);
    head [n++] = '\r';
    head [n++] = '\n';
    s_batch_put (batch, head, n);
    s_batch_put (batch, data, len);
    s_batch_put (batch, "\r\n", 2);
    batch->argcs [batch->count - 1]++;
}

/*  Appends a NUL-terminated argument to the last command. */
static void
s_batch_arg (s_batch_t *batch, const char *text)
{
    s_batch_argn (batch, text, strlen (text));
}

/*  Appends a printf-formatted argument to the last command. */
static void
s_batch_argf (s_batch_t *batch, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_batch_argf (s_batch_t *batch, const char *fmt, ...)
{
    char *text = NULL;
    va_list args;
    va_start (args, fmt);
    int rc = vasprintf (&text, fmt, args);
    va_end (args);
    if (rc < 0) {
        batch->oom = 1;
        return;
    }
    s_batch_argn (batch, text, (size_t) rc);
    free (text);
}

/*  Starts a new command with the given NULL-terminated arguments. */
static void
s_batch_cmd (s_batch_t *batch, const char *first, ...)
{
    if (batch->oom)
        return;
    if (batch->count == batch->cmd_cap) {
        size_t cap = batch->cmd_cap? batch->cmd_cap * 2: 16;
        size_t *starts = realloc (batch->starts, cap * sizeof *starts);
        if (starts)
            batch->starts = starts;
        size_t *argcs = realloc (batch->argcs, cap * sizeof *argcs);
        if (argcs)
            batch->argcs = argcs;
        if (!starts || !argcs) {
            batch->oom = 1;
            return;
        }
        batch->cmd_cap = cap;
    }
    batch->starts [batch->count] = batch->len;
    batch->argcs [batch->count++] = 0;
    va_list args;
    va_start (args, first);
    for (const char *arg = first; arg; arg = va_arg (args, const char *))
        s_batch_arg (batch, arg);
    va_end (args);
}

/*  Notes that the batch names a key of cluster name. */
static void
s_batch_name (s_batch_t *batch, const char *name)
{
    for (size_t i = 0; i < batch->nnames; i++)
        if (strcmp (batch->names [i], name) == 0)
            return;
    if (batch->nnames < SCH_BATCH_NAMES && strlen (name) < sizeof batch->names [0])
        strcpy (batch->names [batch->nnames++], name);
    else
        batch->many = 1;
}

/*  Adds the key dexter:{name}:part as an argument. */
static void
s_batch_key (s_batch_t *batch, const char *name, const char *part)
{
    char key [128];
    s_batch_name (batch, name);
    s_batch_arg (batch, sch_store_key (key, sizeof key, name, part));
}

/*  Frees an array of n replies. */
static void
s_replies_free (redisReply **replies, size_t n)
{
    if (!replies)
        return;
    for (size_t i = 0; i < n; i++)
        if (replies [i])
            freeReplyObject (replies [i]);
    free (replies);
}

/*  Sends the batch, optionally wrapped in MULTI/EXEC, in one write and
    reads every reply (batch->count, plus 2 when wrapped). On success
    *replies_p holds them (free with s_replies_free); error replies are left
    for the caller to judge. */
static int
s_store_send (sch_store_t *self, s_batch_t *batch, int transaction, redisReply ***replies_p)
{
    static const char multi [] = "*1\r\n$5\r\nMULTI\r\n";
    static const char exec [] = "*1\r\n$4\r\nEXEC\r\n";
    *replies_p = NULL;
    if (batch->oom) {
        s_store_fail (self, DX_INTERNAL, "out of memory building a redis command");
        return -1;
    }
    if (sch_store_connect (self))
        return -1;
    size_t size = batch->len + batch->count * 24 + sizeof multi + sizeof exec;
    char *out = malloc (size);
    size_t expected = batch->count + (transaction? 2: 0);
    redisReply **replies = calloc (expected? expected: 1, sizeof *replies);
    if (!out || !replies) {
        free (out);
        free (replies);
        s_store_fail (self, DX_INTERNAL, "out of memory building a redis command");
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
        s_store_lost (self, self->ctx->errstr);
        return -1;
    }
    for (size_t i = 0; i < expected; i++) {
        void *reply = NULL;
        if (redisGetReply (self->ctx, &reply) != REDIS_OK || !reply) {
            //  The reply stream is out of step now: the context is unusable
            s_store_lost (self, self->ctx->errstr);
            s_replies_free (replies, expected);
            return -1;
        }
        replies [i] = reply;
    }
    *replies_p = replies;
    return 0;
}

/*  Sends the batch as it is (reads). */
static int
s_store_pipeline (sch_store_t *self, s_batch_t *batch, redisReply ***replies_p)
{
    return s_store_send (self, batch, 0, replies_p);
}

/*  Runs the batch as one MULTI/EXEC transaction: all of it or, if Redis
    refuses any command, none of it. Any error inside the EXEC reply is
    also a failure (it would mean a bug in the schema code). */
static int
s_store_transact (sch_store_t *self, s_batch_t *batch, const char *what)
{
    redisReply **replies;
    s_cache_forget (self, batch);       /* whether or not it is carried out */
    if (s_store_send (self, batch, 1, &replies))
        return -1;
    size_t count = batch->count + 2;
    int rc = 0;
    redisReply *exec = replies [count - 1];
    for (size_t i = 0; i + 1 < count && rc == 0; i++)
        if (replies [i]->type == REDIS_REPLY_ERROR) {
            s_store_reply_failed (self, replies [i], what);
            rc = -1;
        }
    if (rc == 0 && exec->type != REDIS_REPLY_ARRAY) {
        s_store_reply_failed (self, exec, what);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < exec->elements; i++)
        if (exec->element [i]->type == REDIS_REPLY_ERROR) {
            s_store_reply_failed (self, exec->element [i], what);
            rc = -1;
        }
    s_replies_free (replies, count);
    return rc;
}

/*  Appends XADD of one event to the cluster's stream: type, time and the
    string members of fields (may be NULL). */
static void
s_batch_event (s_batch_t *batch, const char *name, const char *type, const char *now,
               const json_t *fields)
{
    s_batch_cmd (batch, "XADD", NULL);
    s_batch_key (batch, name, "events");
    s_batch_arg (batch, "MAXLEN");
    s_batch_arg (batch, "~");
    s_batch_arg (batch, SCH_EVENTS_MAXLEN);
    s_batch_arg (batch, "*");
    s_batch_arg (batch, "type");
    s_batch_arg (batch, type);
    s_batch_arg (batch, "time");
    s_batch_arg (batch, now);
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) fields, key, value) {
        if (json_is_string (value)) {
            s_batch_arg (batch, key);
            s_batch_arg (batch, json_string_value (value));
        }
        else
        if (json_is_integer (value)) {
            s_batch_arg (batch, key);
            s_batch_argf (batch, "%" JSON_INTEGER_FORMAT, json_integer_value (value));
        }
    }
}

/*  The text Redis stores for a JSON value: strings as they are, numbers in
    decimal, booleans true/false, containers as compact JSON; NULL for null
    (the field is left out). Caller frees. */
static char *
s_store_text (const json_t *value)
{
    char *text = NULL;
    switch (json_typeof (value)) {
        case JSON_STRING:
            return strdup (json_string_value (value));
        case JSON_INTEGER:
            if (asprintf (&text, "%" JSON_INTEGER_FORMAT, json_integer_value (value)) < 0)
                text = NULL;
            return text;
        case JSON_REAL:
            if (asprintf (&text, "%.17g", json_real_value (value)) < 0)
                text = NULL;
            return text;
        case JSON_TRUE:
            return strdup ("true");
        case JSON_FALSE:
            return strdup ("false");
        case JSON_NULL:
            return NULL;
        default:
            return json_dumps (value, JSON_COMPACT);
    }
}

/*  Appends field/value pairs of obj to the last command (nulls skipped). */
static void
s_batch_fields (s_batch_t *batch, const json_t *obj)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) obj, key, value) {
        if (json_is_null (value))
            continue;
        char *text = s_store_text (value);
        if (!text) {
            batch->oom = 1;
            return;
        }
        s_batch_arg (batch, key);
        s_batch_arg (batch, text);
        free (text);
    }
}

/*  Mirrors the deployment state into the cluster hash, so the list reads
    one hash per cluster. Every change of the state goes through here, in
    the transaction that changes the record. */
static void
s_batch_state (s_batch_t *batch, const char *name, const char *state)
{
    s_batch_cmd (batch, "HSET", NULL);
    s_batch_key (batch, name, "cluster");
    s_batch_arg (batch, "state");
    s_batch_arg (batch, state);
}

/*  The fields of a fresh deployment record (state init), mirrored, at
    generation (0 for a new cluster; a forgotten deployment keeps its
    number, so that no later generation repeats it: the client tokens and
    job ids of a generation are made from it). */
static void
s_batch_deployment_init (s_batch_t *batch, const char *name, const char *now,
                         long long generation)
{
    char gen [24];
    snprintf (gen, sizeof gen, "%lld", generation);
    s_batch_state (batch, name, "init");
    s_batch_cmd (batch, "HSET", NULL);
    s_batch_key (batch, name, "deployment");
    const char *init [] = {
        "state", "init", "command", "", "generation", gen, "observed_generation", "0",
        "parallelism", "", "steps_done", "0", "steps_total", "0", "current", "",
        "waiting", "", "last_error", "", "created_at", now, "updated_at", now,
        "started_at", "", "finished_at", "", "accessip", "", NULL
    };
    for (int i = 0; init [i]; i++)
        s_batch_arg (batch, init [i]);
}


//  ---------------------------------------------------------------------
//  Reads

/*  1 if name is in the NULL-terminated list. */
static int
s_store_listed (const char **list, const char *name)
{
    for (int i = 0; list [i]; i++)
        if (strcmp (list [i], name) == 0)
            return 1;
    return 0;
}

/*  A hash reply (flat array of field, value) as a JSON object of strings;
    fields in numbers become integers, and with empty_null "" becomes null.
    Returns NULL for an empty hash (a missing key). */
static json_t *
s_store_hash (const redisReply *reply, const char **numbers, int empty_null)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
        return NULL;
    json_t *obj = json_object ();
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const char *field = reply->element [i]->str;
        const char *text = reply->element [i + 1]->str;
        if (!field || !text)
            continue;
        json_t *value;
        long n;
        if (empty_null && !*text)
            value = json_null ();
        else
        if (numbers && s_store_listed (numbers, field)
        &&  s_store_parse_int (text, 0, LONG_MAX, &n) == 0)
            value = json_integer (n);
        else
            value = json_stringn (text, reply->element [i + 1]->len);
        if (!value)                     /* not UTF-8: cannot be ours */
            value = json_null ();
        json_object_set_new (obj, field, value);
    }
    return obj;
}

/*  Checks a reply is not an error; records it as the failure if it is. */
static int
s_store_reply_ok (sch_store_t *self, const redisReply *reply, const char *what)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        s_store_reply_failed (self, reply, what);
        return -1;
    }
    return 0;
}

/*  The parts sch_store_load reads, in the order their replies come. */
static const struct { unsigned flag; const char *part; } s_load_parts [] = {
    { SCH_LOAD_CLUSTER, "cluster" }, { SCH_LOAD_CONFIG, "config" },
    { SCH_LOAD_SECRETS, "secrets" }, { SCH_LOAD_GROUPS, "groups" },
    { SCH_LOAD_DEPLOYMENT, "deployment" }, { SCH_LOAD_JOBS, "jobs" },
    { SCH_LOAD_RESOURCES, "resources" } };
#define S_LOAD_NPARTS (sizeof s_load_parts / sizeof s_load_parts [0])


//  ---------------------------------------------------------------------
//  The read cache
//
//  The scheduler is the only writer of Redis, so what a read found of a
//  cluster stays true until the scheduler itself changes that cluster.
//  Queued loads (the reads of the GET handlers) of the spec and the
//  deployment record are served from here as long as it does: every
//  transaction forgets the clusters whose keys it names before it is sent,
//  whatever becomes of it; a lost connection forgets everything (Redis may
//  come back without its data); a read that a change may have overtaken is
//  not kept; and nothing is served more than SCH_CACHE_TTL_MS after it was
//  read, which bounds how long a hand edit in Redis (not supported: see
//  docs/redis.md) goes unseen. Changes and the engine read Redis itself
//  (sch_store_load), never this.

static void
s_kept_destroy (void **item_p)
{
    s_kept_t *kept = (s_kept_t *) *item_p;
    if (kept) {
        json_decref (kept->parts);
        json_decref (kept->memos);
        free (kept);
        *item_p = NULL;
    }
}

/*  Forgets what is kept of the clusters the batch names (everything when
    it names many). */
static void
s_cache_forget (sch_store_t *self, const s_batch_t *batch)
{
    self->changes++;
    if (batch->many)
        zhashx_purge (self->cache);
    else
        for (size_t i = 0; i < batch->nnames; i++)
            zhashx_delete (self->cache, batch->names [i]);
}

/*  The parts kept of name (a new reference to the cache's object, whose
    parts sch_store_load_result shares out), when they include `what` and
    are fresh; else NULL. */
static json_t *
s_cache_get (sch_store_t *self, const char *name, unsigned what, uint64_t *serial)
{
    if (what & ~SCH_CACHE_PARTS)
        return NULL;
    s_kept_t *kept = (s_kept_t *) zhashx_lookup (self->cache, name);
    if (!kept || (kept->what & what) != what)
        return NULL;
    if (kept->expires <= dx_mono_ms ()) {
        zhashx_delete (self->cache, name);
        return NULL;
    }
    *serial = kept->serial;
    return json_incref (kept->parts);
}

/*  A new object holding the parts `what` of kept parts (shared), or NULL
    when out of memory. A read of the same batch may add parts to the
    cache's object, or put an equal copy in place of one (nothing changed
    the cluster since), so what is taken equals what was there when the
    read was queued. */
static json_t *
s_cache_pick (const json_t *parts, unsigned what)
{
    json_t *result = json_object ();
    for (size_t i = 0; i < S_LOAD_NPARTS && result; i++) {
        if (!(what & s_load_parts [i].flag))
            continue;
        json_t *part = json_object_get (parts, s_load_parts [i].part);
        if (json_object_set (result, s_load_parts [i].part, part)) {
            json_decref (result);
            result = NULL;
        }
    }
    return result;
}

/*  Keeps the parts `what` of name that loaded holds (shared), read by the
    batch sent last, unless a change was sent since. The serial of the kept
    read they are now part of, 0 when not kept. */
static uint64_t
s_cache_put (sch_store_t *self, const char *name, unsigned what, const json_t *loaded)
{
    if ((what & ~SCH_CACHE_PARTS) || self->changes != self->flushed_at)
        return 0;
    int64_t now = dx_mono_ms ();
    s_kept_t *kept = (s_kept_t *) zhashx_lookup (self->cache, name);
    if (kept && kept->expires <= now) {
        zhashx_delete (self->cache, name);
        kept = NULL;
    }
    if (!kept) {
        if (zhashx_size (self->cache) >= SCH_CACHE_MAX)
            zhashx_purge (self->cache);     /* full: start again */
        kept = (s_kept_t *) calloc (1, sizeof *kept);
        if (!kept)
            return 0;
        kept->parts = json_object ();
        kept->expires = now + SCH_CACHE_TTL_MS;
        kept->serial = ++self->serials;
        if (!kept->parts || zhashx_insert (self->cache, name, kept)) {
            s_kept_destroy ((void **) &kept);
            return 0;
        }
    }
    for (size_t i = 0; i < S_LOAD_NPARTS; i++) {
        if (!(what & s_load_parts [i].flag))
            continue;
        json_t *part = json_object_get (loaded, s_load_parts [i].part);
        if (part && json_object_set (kept->parts, s_load_parts [i].part, part) == 0)
            kept->what |= s_load_parts [i].flag;
    }
    return kept->serial;
}

/*  The kept read the ticket's load is, or NULL. */
static s_kept_t *
s_cache_of (sch_store_t *self, int ticket)
{
    if (ticket < 0 || (size_t) ticket >= self->ntickets || !self->tickets [ticket].serial)
        return NULL;
    s_ticket_t *t = &self->tickets [ticket];
    s_kept_t *kept = (s_kept_t *) zhashx_lookup (self->cache, t->name);
    return kept && kept->serial == t->serial? kept: NULL;
}

/*  Appends one HGETALL per part asked for. */
static void
s_batch_load (s_batch_t *batch, const char *name, unsigned what)
{
    for (size_t i = 0; i < S_LOAD_NPARTS; i++)
        if (what & s_load_parts [i].flag) {
            s_batch_cmd (batch, "HGETALL", NULL);
            s_batch_key (batch, name, s_load_parts [i].part);
        }
}

/*  Decodes the replies of s_batch_load (one per part asked for) into the
    object sch_store_load returns. The state mirrored in the cluster hash
    is the store's, not the spec's: it is not part of the cluster object. */
static json_t *
s_store_decode_load (sch_store_t *self, redisReply **replies, const char *name,
                     unsigned what)
{
    json_t *result = json_object ();
    size_t r = 0;
    for (size_t i = 0; i < S_LOAD_NPARTS && result; i++) {
        if (!(what & s_load_parts [i].flag))
            continue;
        redisReply *reply = replies [r++];
        if (s_store_reply_ok (self, reply, "a read")) {
            json_decref (result);
            result = NULL;
            break;
        }
        json_t *value = NULL;
        switch (s_load_parts [i].flag) {
            case SCH_LOAD_CLUSTER:
                value = s_store_hash (reply, NULL, 0);
                json_object_del (value, "state");
                break;
            case SCH_LOAD_CONFIG:
                value = s_store_hash (reply, s_config_numbers, 0);
                break;
            case SCH_LOAD_SECRETS:
                value = s_store_hash (reply, NULL, 0);
                if (!value)
                    value = json_object ();
                break;
            case SCH_LOAD_DEPLOYMENT:
                value = s_store_hash (reply, s_deployment_numbers, 1);
                break;
            case SCH_LOAD_GROUPS:
            case SCH_LOAD_JOBS:
            case SCH_LOAD_RESOURCES:
                value = json_object ();
                for (size_t e = 0; e + 1 < reply->elements; e += 2) {
                    json_error_t jerr;
                    json_t *group = json_loads (reply->element [e + 1]->str, 0, &jerr);
                    if (!json_is_object (group)) {
                        json_decref (group);
                        s_store_fail (self, DX_INTERNAL, "%s %s of cluster %s holds "
                                      "malformed JSON in redis", s_load_parts [i].part,
                                      reply->element [e]->str, name);
                        dx_error ("%s", self->error);
                        json_decref (value);
                        json_decref (result);
                        value = result = NULL;
                        break;
                    }
                    json_object_set_new (value, reply->element [e]->str, group);
                }
                break;
        }
        if (result)
            json_object_set_new (result, s_load_parts [i].part, value? value: json_null ());
    }
    return result;
}

/*  One pipelined HGETALL per part asked for, decoded into one object. */
json_t *
sch_store_load (sch_store_t *self, const char *name, unsigned what)
{
    s_batch_t batch = { 0 };
    s_batch_load (&batch, name, what);
    redisReply **replies;
    int rc = s_store_pipeline (self, &batch, &replies);
    size_t count = batch.count;
    s_batch_free (&batch);
    if (rc)
        return NULL;
    json_t *result = s_store_decode_load (self, replies, name, what);
    s_replies_free (replies, count);
    return result;
}

/*  The fields of the cluster hash the list shows, state (the mirror of the
    deployment's) last. */
static const char *s_list_fields [] = { "provider", "type", "created_at", "state", NULL };

/*  The list from the ZRANGE reply of the index: one HMGET of the cluster
    hash per cluster, all in one pipelined round trip. A cluster written
    before the state was mirrored there (no state field) costs one more
    round trip for the HGETs of those deployment states. */
static json_t *
s_store_decode_list (sch_store_t *self, redisReply *names)
{
    if (s_store_reply_ok (self, names, "the cluster list"))
        return NULL;
    if (names->type != REDIS_REPLY_ARRAY) {
        s_store_fail (self, DX_INTERNAL, "%s is not a sorted set", SCH_STORE_INDEX);
        return NULL;
    }
    if (names->elements == 0)
        return json_array ();
    s_batch_t batch = { 0 };
    for (size_t i = 0; i < names->elements; i++) {
        s_batch_cmd (&batch, "HMGET", NULL);
        s_batch_key (&batch, names->element [i]->str, "cluster");
        for (int f = 0; s_list_fields [f]; f++)
            s_batch_arg (&batch, s_list_fields [f]);
    }
    redisReply **details = NULL;
    int rc = s_store_pipeline (self, &batch, &details);
    s_batch_free (&batch);
    if (rc)
        return NULL;
    //  Which clusters lack the mirror: read their deployment state instead
    size_t *missing = NULL, nmissing = 0;
    redisReply **states = NULL;
    for (size_t i = 0; i < names->elements; i++) {
        redisReply *fields = details [i];
        if (s_store_reply_ok (self, fields, "the cluster list")) {
            rc = -1;
            break;
        }
        if (fields->type == REDIS_REPLY_ARRAY && fields->elements == 4
        &&  fields->element [0]->type == REDIS_REPLY_STRING
        &&  fields->element [3]->type != REDIS_REPLY_STRING) {
            if (!missing && !(missing = calloc (names->elements, sizeof *missing))) {
                s_store_fail (self, DX_INTERNAL, "out of memory listing clusters");
                rc = -1;
                break;
            }
            missing [nmissing++] = i;
            s_batch_cmd (&batch, "HGET", NULL);
            s_batch_key (&batch, names->element [i]->str, "deployment");
            s_batch_arg (&batch, "state");
        }
    }
    if (rc == 0 && nmissing)
        rc = s_store_pipeline (self, &batch, &states);
    s_batch_free (&batch);
    json_t *list = rc? NULL: json_array ();
    for (size_t i = 0, m = 0; list && i < names->elements; i++) {
        redisReply *fields = details [i];
        if (fields->type != REDIS_REPLY_ARRAY || fields->elements != 4
        ||  fields->element [0]->type != REDIS_REPLY_STRING)
            continue;                   /* index member without a cluster: skip */
        const char *state = fields->element [3]->str;
        if (m < nmissing && missing [m] == i) {
            redisReply *reply = states [m++];
            if (s_store_reply_ok (self, reply, "the cluster list")) {
                json_decref (list);
                list = NULL;
                break;
            }
            state = reply->str;
        }
        json_t *entry = json_object ();
        json_object_set_new (entry, "name", json_string (names->element [i]->str));
        json_object_set_new (entry, "provider", json_string (fields->element [0]->str));
        json_object_set_new (entry, "type", fields->element [1]->str
                             ? json_string (fields->element [1]->str): json_null ());
        json_object_set_new (entry, "state", json_string (state? state: "init"));
        json_object_set_new (entry, "created_at", fields->element [2]->str
                             ? json_string (fields->element [2]->str): json_null ());
        json_array_append_new (list, entry);
    }
    s_replies_free (states, nmissing);
    s_replies_free (details, names->elements);
    free (missing);
    return list;
}

/*  ZRANGE of the index, then every cluster's HMGET in one pipelined round
    trip (one command per cluster, 10,000 for 10,000). */
json_t *
sch_store_cluster_list (sch_store_t *self)
{
    s_batch_t batch = { 0 };
    s_batch_cmd (&batch, "ZRANGE", SCH_STORE_INDEX, "0", "-1", NULL);
    redisReply **replies;
    int rc = s_store_pipeline (self, &batch, &replies);
    s_batch_free (&batch);
    if (rc)
        return NULL;
    json_t *list = s_store_decode_list (self, replies [0]);
    s_replies_free (replies, 1);
    return list;
}

/*  Runs one read command and returns its reply (caller frees), NULL with
    the error set on failure or an error reply. */
static redisReply *
s_store_read_one (sch_store_t *self, s_batch_t *batch, const char *what)
{
    redisReply **replies;
    int rc = s_store_pipeline (self, batch, &replies);
    s_batch_free (batch);
    if (rc)
        return NULL;
    redisReply *reply = replies [0];
    free (replies);
    if (s_store_reply_ok (self, reply, what)) {
        freeReplyObject (reply);
        return NULL;
    }
    return reply;
}

/*  HGET of one generation's snapshot. */
json_t *
sch_store_snapshot (sch_store_t *self, const char *name, int64_t generation)
{
    self->error [0] = 0;
    s_batch_t batch = { 0 };
    s_batch_cmd (&batch, "HGET", NULL);
    s_batch_key (&batch, name, "specs");
    s_batch_argf (&batch, "%lld", (long long) generation);
    redisReply *reply = s_store_read_one (self, &batch, "a snapshot read");
    if (!reply)
        return NULL;
    json_t *snapshot = NULL;
    if (reply->type == REDIS_REPLY_STRING) {
        snapshot = json_loads (reply->str, 0, NULL);
        if (!snapshot)
            s_store_fail (self, DX_INTERNAL, "snapshot %lld of cluster %s holds malformed JSON",
                          (long long) generation, name);
    }
    freeReplyObject (reply);
    return snapshot;
}

/*  GET of the sealed credentials. */
char *
sch_store_credentials (sch_store_t *self, const char *name)
{
    self->error [0] = 0;
    s_batch_t batch = { 0 };
    s_batch_cmd (&batch, "GET", NULL);
    s_batch_key (&batch, name, "credentials");
    redisReply *reply = s_store_read_one (self, &batch, "a credentials read");
    if (!reply)
        return NULL;
    char *sealed = reply->type == REDIS_REPLY_STRING? strdup (reply->str): NULL;
    freeReplyObject (reply);
    return sealed;
}

/*  Appends the XRANGE of events after `after` (exclusive, '(' + id). */
static void
s_batch_events (s_batch_t *batch, const char *name, const char *after, int64_t count)
{
    s_batch_cmd (batch, "XRANGE", NULL);
    s_batch_key (batch, name, "events");
    if (after)
        s_batch_argf (batch, "(%s", after);
    else
        s_batch_arg (batch, "-");
    s_batch_arg (batch, "+");
    s_batch_arg (batch, "COUNT");
    s_batch_argf (batch, "%lld", (long long) count);
}

/*  Event fields that are numbers, and that are booleans: a stream keeps
    text, the API answers them typed (docs/redis.md, "events"). */
static const char *s_event_numbers [] = {
    "generation", "attempt", "next_attempt", "parallelism", NULL
};
static const char *s_event_booleans [] = { "permanent", NULL };

/*  The JSON value of an event field as the stream holds it. */
static json_t *
s_store_event_value (const char *field, const char *text, size_t len)
{
    if (s_store_listed (s_event_numbers, field)) {
        char *end;
        errno = 0;
        long long n = strtoll (text, &end, 10);
        if (len && end == text + len && errno == 0)
            return json_integer (n);
    }
    if (s_store_listed (s_event_booleans, field)
    &&  (strcmp (text, "true") == 0 || strcmp (text, "false") == 0))
        return json_boolean (strcmp (text, "true") == 0);
    return json_stringn (text, len);
}

/*  An XRANGE reply as event objects; NULL (error set) for an error reply. */
static json_t *
s_store_decode_events (sch_store_t *self, const redisReply *reply)
{
    if (s_store_reply_ok (self, reply, "an events read"))
        return NULL;
    json_t *events = json_array ();
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        redisReply *entry = reply->element [i];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2
        ||  entry->element [0]->type != REDIS_REPLY_STRING)
            continue;
        json_t *event = json_object ();
        json_object_set_new (event, "id", json_string (entry->element [0]->str));
        redisReply *fields = entry->element [1];
        for (size_t f = 0; fields->type == REDIS_REPLY_ARRAY && f + 1 < fields->elements; f += 2) {
            const char *field = fields->element [f]->str;
            json_t *value = field? s_store_event_value (field, fields->element [f + 1]->str,
                                                        fields->element [f + 1]->len): NULL;
            if (field && value && strcmp (field, "id"))
                json_object_set_new (event, fields->element [f]->str, value);
            else
                json_decref (value);
        }
        json_array_append_new (events, event);
    }
    return events;
}

/*  XRANGE from an exclusive start ('(' + id), as event objects. */
json_t *
sch_store_events (sch_store_t *self, const char *name, const char *after, int64_t count)
{
    s_batch_t batch = { 0 };
    s_batch_events (&batch, name, after, count);
    redisReply **replies;
    int rc = s_store_pipeline (self, &batch, &replies);
    s_batch_free (&batch);
    if (rc)
        return NULL;
    json_t *events = s_store_decode_events (self, replies [0]);
    s_replies_free (replies, 1);
    return events;
}


//  ---------------------------------------------------------------------
//  Read batches

enum { S_READ_LOAD, S_READ_LIST, S_READ_EVENTS };

/*  Records a read just appended to the read batch (its commands start at
    first) and returns its ticket; -1 if the batch ran out of memory. */
static int
s_store_ticket (sch_store_t *self, int kind, const char *name, unsigned what, size_t first)
{
    if (self->reads.oom || self->replies) {
        s_store_fail (self, DX_INTERNAL, self->replies? "a read was queued into a sent batch"
                                                      : "out of memory queueing a read");
        return -1;
    }
    if (self->ntickets == self->tickets_cap) {
        size_t cap = self->tickets_cap? self->tickets_cap * 2: 64;
        s_ticket_t *grown = realloc (self->tickets, cap * sizeof *grown);
        if (!grown) {
            s_store_fail (self, DX_INTERNAL, "out of memory queueing a read");
            return -1;
        }
        self->tickets = grown;
        self->tickets_cap = cap;
    }
    s_ticket_t *ticket = &self->tickets [self->ntickets];
    ticket->first = first;
    ticket->count = self->reads.count - first;
    ticket->what = what;
    ticket->kind = kind;
    ticket->kept = NULL;
    ticket->serial = 0;
    size_t len = name? strnlen (name, sizeof ticket->name - 1): 0;
    memcpy (ticket->name, name? name: "", len);
    ticket->name [len] = 0;
    return (int) self->ntickets++;
}

/*  The replies of a ticket after a flush, or NULL (error set). */
static redisReply **
s_store_ticket_replies (sch_store_t *self, int ticket, int kind)
{
    if (!self->replies) {
        if (!self->error [0])
            s_store_fail (self, DX_INTERNAL, "the read batch was not sent");
        return NULL;
    }
    if (ticket < 0 || (size_t) ticket >= self->ntickets
    ||  self->tickets [ticket].kind != kind) {
        s_store_fail (self, DX_INTERNAL, "no such read in the batch");
        return NULL;
    }
    return self->replies + self->tickets [ticket].first;
}

int
sch_store_queue_load (sch_store_t *self, const char *name, unsigned what)
{
    size_t first = self->reads.count;
    uint64_t serial = 0;
    json_t *kept = self->replies? NULL: s_cache_get (self, name, what, &serial);
    if (!kept)
        s_batch_load (&self->reads, name, what);
    int ticket = s_store_ticket (self, S_READ_LOAD, name, what, first);
    if (ticket < 0)
        json_decref (kept);
    else {
        self->tickets [ticket].kept = kept;
        self->tickets [ticket].serial = serial;
    }
    return ticket;
}

int
sch_store_queue_list (sch_store_t *self)
{
    size_t first = self->reads.count;
    s_batch_cmd (&self->reads, "ZRANGE", SCH_STORE_INDEX, "0", "-1", NULL);
    return s_store_ticket (self, S_READ_LIST, NULL, 0, first);
}

int
sch_store_queue_events (sch_store_t *self, const char *name, const char *after,
                        int64_t count)
{
    size_t first = self->reads.count;
    s_batch_events (&self->reads, name, after, count);
    return s_store_ticket (self, S_READ_EVENTS, name, 0, first);
}

/*  Sends every queued read in one write and reads all their replies. */
int
sch_store_read_flush (sch_store_t *self)
{
    if (self->replies || self->reads.count == 0)
        return 0;
    self->flushed_at = self->changes;
    int rc = s_store_pipeline (self, &self->reads, &self->replies);
    if (rc == 0)
        self->nreplies = self->reads.count;
    s_batch_free (&self->reads);
    return rc;
}

json_t *
sch_store_load_result (sch_store_t *self, int ticket)
{
    if (ticket >= 0 && (size_t) ticket < self->ntickets && self->tickets [ticket].kept) {
        s_ticket_t *t = &self->tickets [ticket];
        json_t *result = s_cache_pick (t->kept, t->what);
        json_decref (t->kept);
        t->kept = NULL;
        if (!result)
            s_store_fail (self, DX_INTERNAL, "out of memory");
        return result;
    }
    redisReply **replies = s_store_ticket_replies (self, ticket, S_READ_LOAD);
    if (!replies)
        return NULL;
    s_ticket_t *t = &self->tickets [ticket];
    json_t *result = s_store_decode_load (self, replies, t->name, t->what);
    if (result)
        t->serial = s_cache_put (self, t->name, t->what, result);
    return result;
}

json_t *
sch_store_memo (sch_store_t *self, int ticket, const char *key)
{
    s_kept_t *kept = s_cache_of (self, ticket);
    return kept? json_object_get (kept->memos, key): NULL;
}

void
sch_store_memo_put (sch_store_t *self, int ticket, const char *key, json_t *text)
{
    s_kept_t *kept = s_cache_of (self, ticket);
    if (!kept || (!kept->memos && !(kept->memos = json_object ())))
        return;
    if (json_object_size (kept->memos) >= SCH_CACHE_MEMOS)
        json_object_clear (kept->memos);
    json_object_set (kept->memos, key, text);
}

json_t *
sch_store_list_result (sch_store_t *self, int ticket)
{
    redisReply **replies = s_store_ticket_replies (self, ticket, S_READ_LIST);
    return replies? s_store_decode_list (self, replies [0]): NULL;
}

json_t *
sch_store_events_result (sch_store_t *self, int ticket)
{
    redisReply **replies = s_store_ticket_replies (self, ticket, S_READ_EVENTS);
    return replies? s_store_decode_events (self, replies [0]): NULL;
}

/*  Forgets the batch: queued reads, tickets and replies. */
void
sch_store_read_reset (sch_store_t *self)
{
    for (size_t i = 0; i < self->ntickets; i++)
        json_decref (self->tickets [i].kept);
    s_batch_free (&self->reads);
    s_replies_free (self->replies, self->nreplies);
    self->replies = NULL;
    self->nreplies = 0;
    self->ntickets = 0;
}


//  ---------------------------------------------------------------------
//  Changes

/*  Writes a new cluster in one transaction, deleting any stray key of the
    name first so a cluster always starts from nothing. */
int
sch_store_cluster_create (sch_store_t *self, const json_t *cluster, const char *now)
{
    const char *name = json_string_value (json_object_get (cluster, "name"));
    const char *provider = json_string_value (json_object_get (cluster, "provider"));
    const char *type = json_string_value (json_object_get (cluster, "type"));
    if (!name || !provider || !type) {
        s_store_fail (self, DX_INTERNAL, "cluster needs name, provider and type");
        return -1;
    }
    s_batch_t batch = { 0 };
    //  Start from nothing: no stale key of an earlier cluster of that name
    s_batch_cmd (&batch, "DEL", NULL);
    for (int i = 0; sch_store_parts [i]; i++)
        s_batch_key (&batch, name, sch_store_parts [i]);
    s_batch_cmd (&batch, "HSET", NULL);
    s_batch_key (&batch, name, "cluster");
    const char *fields [] = { "name", name, "provider", provider, "type", type,
                              "created_at", now, "updated_at", now, NULL };
    for (int i = 0; fields [i]; i++)
        s_batch_arg (&batch, fields [i]);
    s_batch_deployment_init (&batch, name, now, 0);
    s_batch_cmd (&batch, "ZADD", SCH_STORE_INDEX, "0", name, NULL);
    json_t *event = json_pack ("{s:s, s:s}", "provider", provider, "cluster_type", type);
    s_batch_event (&batch, name, "cluster.created", now, event);
    json_decref (event);
    int rc = s_store_transact (self, &batch, "cluster create");
    s_batch_free (&batch);
    return rc;
}

/*  Deletes every key of the cluster and its index member in one
    transaction: nothing is left behind. */
int
sch_store_cluster_delete (sch_store_t *self, const char *name)
{
    s_batch_t batch = { 0 };
    s_batch_cmd (&batch, "DEL", NULL);
    for (int i = 0; sch_store_parts [i]; i++)
        s_batch_key (&batch, name, sch_store_parts [i]);
    s_batch_cmd (&batch, "ZREM", SCH_STORE_INDEX, name, NULL);
    int rc = s_store_transact (self, &batch, "cluster delete");
    s_batch_free (&batch);
    return rc;
}

/*  Sets the cluster's updated_at (every change to its spec). */
static void
s_batch_touch (s_batch_t *batch, const char *name, const char *now)
{
    s_batch_cmd (batch, "HSET", NULL);
    s_batch_key (batch, name, "cluster");
    s_batch_arg (batch, "updated_at");
    s_batch_arg (batch, now);
}

/*  Replaces config and secrets (DEL, then HSET) in one transaction. */
int
sch_store_config_put (sch_store_t *self, const char *name, const json_t *config,
                      const json_t *fingerprints, const json_t *sealed, const char *now)
{
    s_batch_t batch = { 0 };
    s_batch_cmd (&batch, "DEL", NULL);
    s_batch_key (&batch, name, "config");
    s_batch_key (&batch, name, "secrets");
    s_batch_cmd (&batch, "HSET", NULL);
    s_batch_key (&batch, name, "config");
    s_batch_fields (&batch, config);
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) fingerprints, key, value) {
        s_batch_argf (&batch, "%s_fingerprint", key);
        s_batch_arg (&batch, json_string_value (value)? json_string_value (value): "");
    }
    s_batch_arg (&batch, "updated_at");
    s_batch_arg (&batch, now);
    if (json_object_size (sealed)) {
        s_batch_cmd (&batch, "HSET", NULL);
        s_batch_key (&batch, name, "secrets");
        s_batch_fields (&batch, sealed);
    }
    s_batch_touch (&batch, name, now);
    //  The event names what was set, never a value of a secret
    char list [512] = "";
    json_object_foreach ((json_t *) config, key, value) {
        size_t used = strlen (list);
        snprintf (list + used, sizeof list - used, "%s%s", used? ",": "", key);
    }
    json_object_foreach ((json_t *) sealed, key, value) {
        size_t used = strlen (list);
        snprintf (list + used, sizeof list - used, "%s%s", used? ",": "", key);
    }
    json_t *event = json_pack ("{s:s}", "fields", list);
    s_batch_event (&batch, name, "config.updated", now, event);
    json_decref (event);
    int rc = s_store_transact (self, &batch, "config put");
    s_batch_free (&batch);
    return rc;
}

/*  Deletes config and secrets in one transaction. */
int
sch_store_config_delete (sch_store_t *self, const char *name, const char *now)
{
    s_batch_t batch = { 0 };
    s_batch_cmd (&batch, "DEL", NULL);
    s_batch_key (&batch, name, "config");
    s_batch_key (&batch, name, "secrets");
    s_batch_touch (&batch, name, now);
    s_batch_event (&batch, name, "config.deleted", now, NULL);
    int rc = s_store_transact (self, &batch, "config delete");
    s_batch_free (&batch);
    return rc;
}

/*  Writes one group (and removes its old name on a rename) in one
    transaction. */
int
sch_store_group_put (sch_store_t *self, const char *name, const char *old_name,
                     const json_t *group, const char *event, const char *now)
{
    const char *group_name = json_string_value (json_object_get (group, "name"));
    char *text = json_dumps (group, JSON_COMPACT);
    if (!group_name || !text) {
        free (text);
        s_store_fail (self, DX_INTERNAL, "group cannot be serialized");
        return -1;
    }
    s_batch_t batch = { 0 };
    int renamed = old_name && strcmp (old_name, group_name) != 0;
    if (renamed) {
        s_batch_cmd (&batch, "HDEL", NULL);
        s_batch_key (&batch, name, "groups");
        s_batch_arg (&batch, old_name);
    }
    s_batch_cmd (&batch, "HSET", NULL);
    s_batch_key (&batch, name, "groups");
    s_batch_arg (&batch, group_name);
    s_batch_arg (&batch, text);
    free (text);
    s_batch_touch (&batch, name, now);
    json_t *fields = renamed? json_pack ("{s:s, s:s}", "group", group_name, "from", old_name)
                            : json_pack ("{s:s}", "group", group_name);
    s_batch_event (&batch, name, event, now, fields);
    json_decref (fields);
    int rc = s_store_transact (self, &batch, "group write");
    s_batch_free (&batch);
    return rc;
}

/*  Removes one group in one transaction. */
int
sch_store_group_delete (sch_store_t *self, const char *name, const char *group,
                        const char *now)
{
    s_batch_t batch = { 0 };
    s_batch_cmd (&batch, "HDEL", NULL);
    s_batch_key (&batch, name, "groups");
    s_batch_arg (&batch, group);
    s_batch_touch (&batch, name, now);
    json_t *fields = json_pack ("{s:s}", "group", group);
    s_batch_event (&batch, name, "group.deleted", now, fields);
    json_decref (fields);
    int rc = s_store_transact (self, &batch, "group delete");
    s_batch_free (&batch);
    return rc;
}

/*  Snapshot, sealed credentials and record changes in one transaction. */
int
sch_store_deployment_start (sch_store_t *self, const char *name, int64_t generation,
                            const json_t *snapshot, const char *sealed_credentials,
                            const json_t *deployment, const json_t *jobs,
                            const char *now)
{
    char *text = json_dumps (snapshot, JSON_COMPACT);
    if (!text) {
        s_store_fail (self, DX_INTERNAL, "snapshot cannot be serialized");
        return -1;
    }
    s_batch_t batch = { 0 };
    s_batch_cmd (&batch, "HSET", NULL);
    s_batch_key (&batch, name, "specs");
    s_batch_argf (&batch, "%lld", (long long) generation);
    s_batch_arg (&batch, text);
    free (text);
    if (sealed_credentials) {
        s_batch_cmd (&batch, "SET", NULL);
        s_batch_key (&batch, name, "credentials");
        s_batch_arg (&batch, sealed_credentials);
    }
    //  The record: every known field, null written as ""
    s_batch_cmd (&batch, "HSET", NULL);
    s_batch_key (&batch, name, "deployment");
    for (int i = 0; s_deployment_fields [i]; i++) {
        json_t *value = json_object_get (deployment, s_deployment_fields [i]);
        if (!value)
            continue;
        char *field_text = json_is_null (value)? strdup (""): s_store_text (value);
        if (!field_text) {
            batch.oom = 1;
            break;
        }
        s_batch_arg (&batch, s_deployment_fields [i]);
        s_batch_arg (&batch, field_text);
        free (field_text);
    }
    s_batch_arg (&batch, "updated_at");
    s_batch_arg (&batch, now);
    const char *state = json_string_value (json_object_get (deployment, "state"));
    if (state)
        s_batch_state (&batch, name, state);
    s_batch_cmd (&batch, "DEL", NULL);
    s_batch_key (&batch, name, "jobs");
    if (json_array_size (jobs)) {
        s_batch_cmd (&batch, "HSET", NULL);
        s_batch_key (&batch, name, "jobs");
        size_t i;
        json_t *job;
        json_array_foreach (jobs, i, job) {
            char *job_text = json_dumps (job, JSON_COMPACT);
            if (!job_text) {
                batch.oom = 1;
                break;
            }
            s_batch_arg (&batch, json_string_value (json_object_get (job, "id")));
            s_batch_arg (&batch, job_text);
            free (job_text);
        }
    }
    json_t *fields = json_pack ("{s:O?, s:I, s:O?}",
                                "command", json_object_get (deployment, "command"),
                                "generation", (json_int_t) generation,
                                "parallelism", json_object_get (deployment, "parallelism"));
    s_batch_event (&batch, name, "deployment.requested", now, fields);
    json_decref (fields);
    int rc = s_store_transact (self, &batch, "deployment start");
    s_batch_free (&batch);
    return rc;
}

/*  Back to a fresh init record; snapshots and credentials deleted. */
int
sch_store_deployment_reset (sch_store_t *self, const char *name, const char *now,
                            long long generation)
{
    s_batch_t batch = { 0 };
    s_batch_cmd (&batch, "DEL", NULL);
    s_batch_key (&batch, name, "deployment");
    s_batch_key (&batch, name, "specs");
    s_batch_key (&batch, name, "credentials");
    s_batch_key (&batch, name, "jobs");
    s_batch_key (&batch, name, "resources");
    s_batch_deployment_init (&batch, name, now, generation);
    s_batch_event (&batch, name, "deployment.deleted", now, NULL);
    int rc = s_store_transact (self, &batch, "deployment delete");
    s_batch_free (&batch);
    return rc;
}

/*  Appends HSET key field JSON... for every member of obj (values as
    compact JSON); nothing when obj is empty. */
static void
s_batch_json_hash (s_batch_t *batch, const char *name, const char *part, const json_t *obj)
{
    if (!json_object_size (obj))
        return;
    s_batch_cmd (batch, "HSET", NULL);
    s_batch_key (batch, name, part);
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) obj, key, value) {
        char *text = json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) {
            batch->oom = 1;
            return;
        }
        s_batch_arg (batch, key);
        s_batch_arg (batch, text);
        free (text);
    }
}

/*  One transition of a running deployment in one transaction. */
int
sch_store_deployment_change (sch_store_t *self, const char *name,
                             const sch_store_change_t *change, const char *now)
{
    s_batch_t batch = { 0 };
    if (json_object_size (change->deployment)) {
        s_batch_cmd (&batch, "HSET", NULL);
        s_batch_key (&batch, name, "deployment");
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *) change->deployment, key, value) {
            char *text = json_is_null (value)? strdup (""): s_store_text (value);
            if (!text) {
                batch.oom = 1;
                break;
            }
            s_batch_arg (&batch, key);
            s_batch_arg (&batch, text);
            free (text);
        }
        s_batch_arg (&batch, "updated_at");
        s_batch_arg (&batch, now);
        const char *state = json_string_value (json_object_get (change->deployment, "state"));
        if (state)
            s_batch_state (&batch, name, state);
    }
    s_batch_json_hash (&batch, name, "jobs", change->jobs);
    if (change->drop_resources) {
        s_batch_cmd (&batch, "DEL", NULL);
        s_batch_key (&batch, name, "resources");
    }
    else {
        if (json_array_size (change->resources_del)) {
            s_batch_cmd (&batch, "HDEL", NULL);
            s_batch_key (&batch, name, "resources");
            size_t i;
            json_t *key;
            json_array_foreach (change->resources_del, i, key)
                s_batch_arg (&batch, json_string_value (key));
        }
        s_batch_json_hash (&batch, name, "resources", change->resources_set);
    }
    if (change->drop_credentials) {
        s_batch_cmd (&batch, "DEL", NULL);
        s_batch_key (&batch, name, "credentials");
    }
    if (change->event_type)
        s_batch_event (&batch, name, change->event_type, now, change->event);
    int rc = batch.count? s_store_transact (self, &batch, "deployment change"): 0;
    s_batch_free (&batch);
    return rc;
}
