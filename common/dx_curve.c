/*  dx_curve: the key files, the scheduler's ZAP handler and the clients'
    side of CurveZMQ. See dx_curve.h.

    The ZAP handler is an actor. It answers libzmq's question about each
    CURVE handshake on the server sockets (a REP socket at
    inproc://zeromq.zap.01, RFC 27) from the link's directory of
    certificates, and it reads the monitors of those sockets, because a
    peer with no key fails before ZAP is asked and is seen only there. It
    is bound before any server socket is and must outlive them: libzmq
    lets every key in where no ZAP handler answers. Its log lines are
    limited per cause and in all, so that neither a peer retrying nor one
    trying fresh keys floods the log. */
#include "dx_curve.h"
#include "dx_config.h"
#include "dx_log.h"
#include "dx_ratelimit.h"
#include "dx_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#define S_ZAP_ENDPOINT  "inproc://zeromq.zap.01"    /* where libzmq asks (RFC 27) */
#define S_KEY_BYTES     32
#define S_KEY_TXT       40          /* a key in Z85 */
#define S_FILE_MAX      4096        /* a certificate file is far smaller */
#define S_SERVER_CERT   "scheduler.cert"
#define S_QUIET_MS      600000      /* a cause of refusal is logged again after this */
#define S_CAUSES_MAX    1024        /* causes remembered; past that all are forgotten */
#define S_LINES_BURST   20          /* refusal lines per S_QUIET_MS, all causes together */
/*  What a server's monitor reports: handshakes that failed before ZAP. */
#define S_SERVER_EVENTS (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
/*  What a client's monitor reports: the outcome of each handshake. */
#define S_CLIENT_EVENTS (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH \
                         | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)

struct dx_curve {
    zcert_t *cert;                  /* this process's key pair */
    char *dir;                      /* DEXTER_CURVE_DIR */
    zactor_t *zap;                  /* the scheduler's ZAP handler */
    char *link;                     /* a client's link */
    char *server_key;               /* a client's DEXTER_CURVE_SERVER_KEY, or NULL */
    char *public_path;              /* a client's certificate, for log lines */
    atomic_bool waiting_said;       /* the scheduler's key was missing: logged */
    atomic_bool refused_said;       /* a refusal was logged since the last success */
};


//  ---------------------------------------------------------------------
//  Files

/*  mkdir -p, with mode 0700 for each directory it makes. */
static int
s_mkdirs (const char *dir)
{
    struct stat st;
    if (mkdir (dir, 0700) == 0
    || (errno == EEXIST && stat (dir, &st) == 0 && S_ISDIR (st.st_mode)))
        return 0;
    if (errno != ENOENT)
        return -1;
    char parent [PATH_MAX];
    snprintf (parent, sizeof parent, "%s", dir);
    char *slash = strrchr (parent, '/');
    if (!slash || slash == parent)
        return -1;
    *slash = 0;
    return s_mkdirs (parent) == 0 && (mkdir (dir, 0700) == 0 || errno == EEXIST)? 0: -1;
}

/*  printf into path (PATH_MAX bytes); -1 (logged) when it does not fit. */
static int __attribute__ ((format (printf, 2, 3)))
s_path (char *path, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    int len = vsnprintf (path, PATH_MAX, fmt, args);
    va_end (args);
    if (len < 0 || len >= PATH_MAX) {
        dx_error ("curve: a key file's path is too long");
        return -1;
    }
    return 0;
}

/*  True when secret_key is the secret key of public_key (Curve25519). */
static bool
s_pair_matches (const byte *public_key, const byte *secret_key)
{
    byte derived [S_KEY_BYTES];
    bool same = crypto_scalarmult_base (derived, secret_key) == 0
             && sodium_memcmp (derived, public_key, S_KEY_BYTES) == 0;
    sodium_memzero (derived, sizeof derived);
    return same;
}

/*  Decodes the Z85 key text into key; false if it is not one. */
static bool
s_key_decode (const char *text, byte *key)
{
    return text && strlen (text) == S_KEY_TXT && zmq_z85_decode (key, text);
}

/*  The certificate in path, in zcert's format (read here rather than by
    zcert_load, which would look for path_secret first). With secret, the
    file must be open to its owner alone and hold the secret key of its
    public key. NULL when there is none (*why NULL), or when it is not
    such a certificate (*why says why). */
static zcert_t *
s_cert_read (const char *path, bool secret, const char **why)
{
    *why = NULL;
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            *why = strerror (errno);
        return NULL;
    }
    char text [S_FILE_MAX + 1];
    struct stat st;
    ssize_t len = 0;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode))
        *why = "it is not a regular file";
    else
    if (secret && (st.st_mode & 077))
        *why = "it is open to group or others: run chmod 600 on it";
    else
    if ((len = read (fd, text, S_FILE_MAX)) < 0 || len == S_FILE_MAX)
        *why = len < 0? strerror (errno): "it is too long for a certificate";
    close (fd);
    text [len > 0? len: 0] = 0;

    zconfig_t *root = *why? NULL: zconfig_str_load (text);
    sodium_memzero (text, sizeof text);
    char *public_txt = root? zconfig_get (root, "curve/public-key", NULL): NULL;
    char *secret_txt = root? zconfig_get (root, "curve/secret-key", NULL): NULL;
    byte public_key [S_KEY_BYTES], secret_key [S_KEY_BYTES] = { 0 };
    if (!*why && !s_key_decode (public_txt, public_key))
        *why = "it holds no public-key of 40 Z85 characters";
    else
    if (!*why && secret && !s_key_decode (secret_txt, secret_key))
        *why = "it holds no secret-key of 40 Z85 characters";
    else
    if (!*why && secret && !s_pair_matches (public_key, secret_key))
        *why = "its public-key is not its secret-key's";
    zcert_t *cert = *why? NULL: zcert_new_from (public_key, secret_key);
    if (secret_txt)
        sodium_memzero (secret_txt, strlen (secret_txt));
    sodium_memzero (secret_key, sizeof secret_key);
    zconfig_destroy (&root);
    return cert;
}

/*  Wipes the secret key and destroys: czmq would free it as it is (its
    getters say const, but the arrays are the certificate's own). */
static void
s_cert_destroy (zcert_t **cert_p)
{
    if (*cert_p) {
        sodium_memzero ((byte *) zcert_secret_key (*cert_p), S_KEY_BYTES);
        sodium_memzero ((char *) zcert_secret_txt (*cert_p), S_KEY_TXT);
        zcert_destroy (cert_p);
    }
}

/*  Writes cert into path in zcert's format, with its secret key when
    secret is set, through a hidden temporary file beside it (zcertstore
    skips hidden files), so that nobody ever reads half a certificate. A
    key pair is linked into place only where there is no file: 1 when one
    appeared meanwhile (another process of the same data directory made
    its own first). A public certificate replaces what was there. 0, 1,
    or -1 (logged). */
static int
s_cert_write (zcert_t *cert, const char *path, bool secret, const char *name)
{
    const char *base = strrchr (path, '/');
    base = base? base + 1: path;
    char tmp [PATH_MAX];
    if (s_path (tmp, "%.*s.%s.XXXXXX", (int) (base - path), path, base))
        return -1;
    char text [512];
    int len = snprintf (text, sizeof text,
                        "#   ZeroMQ CURVE %s Certificate of Dexter's %s\n\n"
                        "metadata\n    name = \"%s\"\ncurve\n    public-key = \"%s\"\n",
                        secret? "**Secret**": "Public", name, name, zcert_public_txt (cert));
    if (secret)
        len += snprintf (text + len, sizeof text - (size_t) len, "    secret-key = \"%s\"\n",
                         zcert_secret_txt (cert));
    int fd = mkstemp (tmp);             /* mode 0600 */
    int rc = fd < 0
          || write (fd, text, (size_t) len) != len || fsync (fd)? -1: 0;
    sodium_memzero (text, sizeof text);
    if (fd >= 0 && close (fd))
        rc = -1;
    if (rc == 0)
        rc = secret? link (tmp, path): rename (tmp, path);
    int err = errno;
    if (fd >= 0)
        unlink (tmp);
    if (rc && secret && err == EEXIST)
        return 1;
    if (rc)
        dx_error ("curve: cannot write %s: %s", path, strerror (err));
    return rc;
}

/*  Writes cert's public certificate into path unless it is there already
    (a certificate store reloads a directory whenever it changed). */
static int
s_cert_publish (zcert_t *cert, const char *path, const char *name)
{
    const char *why;
    zcert_t *there = s_cert_read (path, false, &why);
    int same = there && streq (zcert_public_txt (there), zcert_public_txt (cert));
    zcert_destroy (&there);
    return same? 0: s_cert_write (cert, path, false, name);
}

/*  The key pair in path, made on first use. NULL on failure (logged). */
static zcert_t *
s_key_pair (const char *path, const char *name)
{
    const char *why;
    zcert_t *cert = s_cert_read (path, true, &why);
    if (!cert && !why) {                    /* no file yet */
        char dir [PATH_MAX];
        snprintf (dir, sizeof dir, "%s", path);
        char *slash = strrchr (dir, '/');
        if (slash && slash != dir)
            *slash = 0;
        int rc = -1;
        if (slash && slash != dir && s_mkdirs (dir))
            dx_error ("curve: cannot make the directory %s: %s", dir, strerror (errno));
        else
        if ((cert = zcert_new ()) && (rc = s_cert_write (cert, path, true, name)))
            s_cert_destroy (&cert);
        if (rc == 0)
            dx_info ("curve: made a new key pair in %s", path);
        if (rc == 1)                        /* another process's, made meanwhile */
            cert = s_cert_read (path, true, &why);
    }
    if (!cert && why)
        dx_error ("curve: cannot use the key pair in %s: %s", path, why);
    return cert;
}

/*  A new dx_curve_t with the key pair and directory the settings name:
    DEXTER_CURVE_KEY_FILE and DEXTER_CURVE_DIR, or their defaults under
    data_dir. */
static dx_curve_t *
s_new (const char *data_dir, const char *name)
{
    if (!data_dir || !*data_dir)
        data_dir = DX_DEFAULT_DATA_DIR;
    const char *dir_set = dx_config_str ("CURVE_DIR", NULL);
    const char *key_set = dx_config_str ("CURVE_KEY_FILE", NULL);
    char dir [PATH_MAX], key [PATH_MAX];
    if ((dir_set? s_path (dir, "%s", dir_set): s_path (dir, "%s/curve", data_dir))
    ||  (key_set? s_path (key, "%s", key_set): s_path (key, "%s/curve-%s.key", data_dir, name)))
        return NULL;
    if (!zsys_has_curve ()) {
        dx_error ("curve: this libzmq has no CURVE security");
        return NULL;
    }
    dx_curve_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->dir = strdup (dir);
    if (!self->dir || !(self->cert = s_key_pair (key, name)))
        dx_curve_destroy (&self);
    return self;
}


//  ---------------------------------------------------------------------
//  Monitors

/*  Has sock report events on a new inproc endpoint, written into
    endpoint (64 bytes). 0/-1. */
static int
s_monitor (zsock_t *sock, int events, char *endpoint)
{
    static atomic_uint s_serial;
    snprintf (endpoint, 64, "inproc://dx-curve-watch-%u", atomic_fetch_add (&s_serial, 1));
    return zmq_socket_monitor (zsock_resolve (sock), endpoint, events);
}

/*  A PAIR socket connected to a monitor's endpoint. NULL on failure. */
static zsock_t *
s_watch_new (const char *endpoint)
{
    zsock_t *watch = zsock_new (ZMQ_PAIR);
    if (watch && zsock_connect (watch, "%s", endpoint))
        zsock_destroy (&watch);
    return watch;
}

/*  Reads one monitor event: its kind and value, and the socket's endpoint
    into endpoint (64 bytes). 0, or -1 if what came was not an event. */
static int
s_event_recv (zsock_t *watch, uint16_t *event, uint32_t *value, char *endpoint)
{
    zframe_t *head = zframe_recv (watch);
    zframe_t *where = head && zframe_more (head)? zframe_recv (watch): NULL;
    int rc = head && zframe_size (head) == sizeof *event + sizeof *value && where? 0: -1;
    if (rc == 0) {
        memcpy (event, zframe_data (head), sizeof *event);
        memcpy (value, zframe_data (head) + sizeof *event, sizeof *value);
        snprintf (endpoint, 64, "%.*s", (int) zframe_size (where),
                  (const char *) zframe_data (where));
    }
    zframe_destroy (&head);
    zframe_destroy (&where);
    return rc;
}


//  ---------------------------------------------------------------------
//  The ZAP handler (the scheduler's)

/*  A link the handler admits clients on. */
typedef struct {
    char *link;
    char *dir;
    zcertstore_t *store;            /* the certificates of dir */
    zsock_t *watch;                 /* the monitor of the link's server socket */
} s_domain_t;

/*  The actor's state: made by the caller, then its thread's alone. */
typedef struct {
    zsock_t *handler;               /* the REP socket libzmq asks */
    s_domain_t domains [2];
    zhashx_t *said;                 /* cause -> int64_t *: when it was logged */
    dx_bucket_t lines;              /* refusal lines in all */
    size_t unsaid;                  /* refusals `lines` left out since the last one */
} s_zap_t;

static void
s_said_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_zap_destroy (s_zap_t **zap_p)
{
    s_zap_t *zap = *zap_p;
    if (!zap)
        return;
    //  Unbound first: the endpoint is free for another handler at once
    if (zap->handler)
        zsock_unbind (zap->handler, "%s", S_ZAP_ENDPOINT);
    zsock_destroy (&zap->handler);
    for (size_t i = 0; i < 2; i++) {
        zsock_destroy (&zap->domains [i].watch);
        zcertstore_destroy (&zap->domains [i].store);
        free (zap->domains [i].link);
        free (zap->domains [i].dir);
    }
    zhashx_destroy (&zap->said);
    free (zap);
    *zap_p = NULL;
}

/*  The handler of the links under dir: their directories made, their
    certificates loaded, the ZAP endpoint bound. NULL on failure (logged). */
static s_zap_t *
s_zap_new (const char *dir)
{
    s_zap_t *zap = calloc (1, sizeof *zap);
    if (!zap)
        return NULL;
    zap->said = zhashx_new ();
    if (zap->said)
        zhashx_set_destructor (zap->said, s_said_free);
    dx_bucket_init (&zap->lines, S_LINES_BURST, S_LINES_BURST * 1000.0 / S_QUIET_MS,
                    dx_mono_ms ());
    const char *links [2] = { DX_CURVE_API, DX_CURVE_WORKERS };
    int rc = zap->said? 0: -1;
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        s_domain_t *domain = &zap->domains [i];
        char path [PATH_MAX];
        if ((rc = s_path (path, "%s/%s", dir, links [i])))
            break;
        if ((rc = s_mkdirs (path)))
            dx_error ("curve: cannot make the directory %s: %s", path, strerror (errno));
        domain->link = strdup (links [i]);
        domain->dir = strdup (path);
        domain->store = zcertstore_new (path);
        if (!rc && (!domain->link || !domain->dir || !domain->store))
            rc = -1;
    }
    if (rc == 0 && (!(zap->handler = zsock_new (ZMQ_REP))
                ||  zsock_bind (zap->handler, "%s", S_ZAP_ENDPOINT))) {
        dx_error ("curve: cannot bind the ZAP handler: %s", zmq_strerror (zmq_errno ()));
        rc = -1;
    }
    if (rc)
        s_zap_destroy (&zap);
    return zap;
}

static s_domain_t *
s_zap_domain (s_zap_t *zap, const char *link)
{
    for (size_t i = 0; link && i < 2; i++)
        if (streq (zap->domains [i].link, link))
            return &zap->domains [i];
    return NULL;
}

/*  Logs a refusal, unless its cause was logged less than S_QUIET_MS ago
    or the refusal lines in all are past their limit. The cause itself is
    never logged (it may hold a key). */
static void __attribute__ ((format (printf, 3, 4)))
s_zap_refused (s_zap_t *zap, const char *cause, const char *fmt, ...)
{
    int64_t now = dx_mono_ms ();
    int64_t *said = zhashx_lookup (zap->said, cause);
    if (said && now - *said < S_QUIET_MS)
        return;
    if (dx_bucket_take (&zap->lines, now)) {
        zap->unsaid++;
        return;
    }
    if (!said) {
        if (zhashx_size (zap->said) >= S_CAUSES_MAX)
            zhashx_purge (zap->said);
        if ((said = malloc (sizeof *said)))
            zhashx_insert (zap->said, cause, said);
    }
    if (said)
        *said = now;
    char line [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    if (zap->unsaid)
        dx_warn ("%s (%zu refusals before it were not logged)", line, zap->unsaid);
    else
        dx_warn ("%s", line);
    zap->unsaid = 0;
}

/*  One ZAP request: 200 for a CURVE client whose key is in a certificate
    of its link's directory, else 400 and the refusal logged. */
static void
s_zap_answer (s_zap_t *zap)
{
    zmsg_t *request = zmsg_recv (zap->handler);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    zframe_t *sequence = zmsg_pop (request);
    char *link = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    zframe_t *identity = zmsg_pop (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);
    zmsg_destroy (&request);

    s_domain_t *domain = s_zap_domain (zap, link);
    char text [S_KEY_TXT + 1] = "";
    bool curve = mechanism && streq (mechanism, "CURVE")
              && key && zframe_size (key) == S_KEY_BYTES
              && zmq_z85_encode (text, zframe_data (key), S_KEY_BYTES);
    bool admitted = domain && curve && zcertstore_lookup (domain->store, text);
    if (!admitted) {
        char cause [128];
        snprintf (cause, sizeof cause, "%s %s %s", link? link: "", address? address: "", text);
        if (domain && curve)
            s_zap_refused (zap, cause, "curve: refused a client of the %s link from %s: "
                           "no certificate in %s has its key", link, address? address: "?",
                           domain->dir);
        else
            s_zap_refused (zap, cause, "curve: refused a %s handshake for '%s', which is "
                           "no link", mechanism? mechanism: "?", link? link: "?");
    }
    zmsg_t *reply = zmsg_new ();
    if (reply) {
        zmsg_addstr (reply, "1.0");
        zmsg_addmem (reply, sequence? zframe_data (sequence): NULL,
                     sequence? zframe_size (sequence): 0);
        zmsg_addstr (reply, admitted? "200": "400");
        zmsg_addstr (reply, admitted? "OK": "not admitted");
        zmsg_addstr (reply, "");            /* user id */
        zmsg_addmem (reply, NULL, 0);       /* metadata */
        zmsg_send (&reply, zap->handler);
    }
    zstr_free (&version);
    zstr_free (&link);
    zstr_free (&address);
    zstr_free (&mechanism);
    zframe_destroy (&sequence);
    zframe_destroy (&identity);
    zframe_destroy (&key);
}

/*  One event of a server socket's monitor: a handshake that failed before
    ZAP was asked. libzmq names the socket's own address only, so the
    cause is the link and the failure. A peer with no key is seen either
    way: both ends check the other's mechanism, and whichever reads the
    other's greeting first hangs up, so the scheduler sees a mismatch or,
    as often on a busy host, a peer that hung up mid-handshake. */
static void
s_zap_event (s_zap_t *zap, s_domain_t *domain)
{
    uint16_t event;
    uint32_t value;
    char endpoint [64];
    if (s_event_recv (domain->watch, &event, &value, endpoint))
        return;
    char cause [96];
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        snprintf (cause, sizeof cause, "%s hung up", domain->link);
        s_zap_refused (zap, cause, "curve: refused a connection to the %s link (%s): the "
                       "peer hung up during the handshake (%s), as one without CURVE, or no "
                       "ZeroMQ peer, does", domain->link, endpoint, strerror ((int) value));
        return;
    }
    snprintf (cause, sizeof cause, "%s %x", domain->link, value);
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        s_zap_refused (zap, cause, "curve: refused a connection without CURVE to the %s "
                       "link (%s): a peer with no key", domain->link, endpoint);
    else
        s_zap_refused (zap, cause, "curve: refused a connection to the %s link (%s): its "
                       "handshake failed (ZMTP error 0x%x; a client with another scheduler's "
                       "public key, or no ZeroMQ peer)", domain->link, endpoint, value);
}

/*  "WATCH" link endpoint: reads the monitor at endpoint of link's server
    socket. Signals 0, or 1 if it cannot. */
static void
s_zap_watch (s_zap_t *zap, zpoller_t *poller, zsock_t *pipe, const char *link,
             const char *endpoint)
{
    s_domain_t *domain = s_zap_domain (zap, link);
    int rc = domain && !domain->watch && endpoint
          && (domain->watch = s_watch_new (endpoint))
          && zpoller_add (poller, domain->watch) == 0? 0: 1;
    zsock_signal (pipe, (byte) rc);
}

/*  The actor: answers ZAP requests and reads the monitors until $TERM.
    No signal stops it, nor interrupts its wait (the process's other
    threads take them): the server sockets may still be open, and must not
    be left without it. */
static void
s_zap_actor (zsock_t *pipe, void *arg)
{
    sigset_t signals;
    sigfillset (&signals);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    s_zap_t *zap = (s_zap_t *) arg;
    zpoller_t *poller = zpoller_new (pipe, zap->handler, NULL);
    if (poller)
        zpoller_set_nonstop (poller, true);
    zsock_signal (pipe, 0);
    bool done = !poller;
    while (!done) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = NULL, *link = NULL, *endpoint = NULL;
            zstr_recvx (pipe, &command, &link, &endpoint, NULL);
            done = !command || streq (command, "$TERM");
            if (!done)
                s_zap_watch (zap, poller, pipe, link, endpoint);
            zstr_free (&command);
            zstr_free (&link);
            zstr_free (&endpoint);
        }
        else
        if (which == zap->handler)
            s_zap_answer (zap);
        else
        if (which)
            s_zap_event (zap, which == zap->domains [0].watch? &zap->domains [0]
                                                              : &zap->domains [1]);
        else
            done = zpoller_terminated (poller);    /* the context is ending */
    }
    zpoller_destroy (&poller);
    s_zap_destroy (&zap);
}


//  ---------------------------------------------------------------------
//  The scheduler

dx_curve_t *
dx_curve_server_new (const char *data_dir)
{
    dx_curve_t *self = s_new (data_dir, "scheduler");
    if (!self)
        return NULL;
    char path [PATH_MAX];
    s_zap_t *zap = NULL;
    if (s_mkdirs (self->dir))
        dx_error ("curve: cannot make the directory %s: %s", self->dir, strerror (errno));
    else
    if (s_path (path, "%s/" S_SERVER_CERT, self->dir) == 0
    &&  s_cert_publish (self->cert, path, "scheduler") == 0
    &&  (zap = s_zap_new (self->dir))
    &&  !(self->zap = zactor_new (s_zap_actor, zap)))
        s_zap_destroy (&zap);               /* the actor owns it once started */
    if (!self->zap)
        dx_curve_destroy (&self);
    return self;
}

int
dx_curve_server_apply (dx_curve_t *self, zsock_t *sock, const char *link)
{
    char endpoint [64];
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, link);
    if (s_monitor (sock, S_SERVER_EVENTS, endpoint)) {
        dx_error ("curve: cannot monitor the %s link's socket: %s", link,
                  zmq_strerror (zmq_errno ()));
        return -1;
    }
    if (zstr_sendx (self->zap, "WATCH", link, endpoint, NULL) || zsock_wait (self->zap)) {
        dx_error ("curve: the ZAP handler cannot watch the %s link", link);
        zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
        return -1;
    }
    return 0;
}


//  ---------------------------------------------------------------------
//  The clients

/*  The file name of the client's certificate: name, host and 8 hex of a
    hash of its key (unique enough, and no part of the key itself). */
static int
s_client_cert_path (dx_curve_t *self, const char *name, char *path)
{
    char host [64] = "";
    gethostname (host, sizeof host - 1);
    for (char *c = host; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '-' && *c != '.')
            *c = '_';
    byte hash [crypto_generichash_BYTES_MIN];
    char hex [9];
    crypto_generichash (hash, sizeof hash, zcert_public_key (self->cert), S_KEY_BYTES,
                        NULL, 0);
    sodium_bin2hex (hex, sizeof hex, hash, (sizeof hex - 1) / 2);
    return s_path (path, "%s/%s/%s-%s-%s.cert", self->dir, self->link, name,
                   *host? host: "host", hex);
}

dx_curve_t *
dx_curve_client_new (const char *data_dir, const char *link, const char *name)
{
    dx_curve_t *self = s_new (data_dir, name);
    if (!self)
        return NULL;
    const char *server_key = dx_config_str ("CURVE_SERVER_KEY", NULL);
    byte decoded [S_KEY_BYTES];
    char path [PATH_MAX], dir [PATH_MAX];
    int rc = -1;
    if (server_key && !s_key_decode (server_key, decoded))
        dx_error ("curve: DEXTER_CURVE_SERVER_KEY must be the scheduler's public key, 40 "
                  "Z85 characters (the public-key of its scheduler.cert)");
    else
    if ((self->link = strdup (link))
    &&  (!server_key || (self->server_key = strdup (server_key)))
    &&  s_path (dir, "%s/%s", self->dir, link) == 0
    &&  s_client_cert_path (self, name, path) == 0
    &&  (self->public_path = strdup (path))) {
        if (s_mkdirs (dir))
            dx_error ("curve: cannot make the directory %s: %s", dir, strerror (errno));
        else
            rc = s_cert_publish (self->cert, path, name);
    }
    if (rc)
        dx_curve_destroy (&self);
    else
        dx_info ("curve: %s's public certificate is %s; the scheduler admits it from there",
                 name, path);
    return self;
}

int
dx_curve_client_apply (dx_curve_t *self, zsock_t *sock)
{
    char server_key [S_KEY_TXT + 1];
    if (self->server_key)
        snprintf (server_key, sizeof server_key, "%s", self->server_key);
    else {
        char path [PATH_MAX];
        const char *why = NULL;
        zcert_t *server = s_path (path, "%s/" S_SERVER_CERT, self->dir)? NULL
                        : s_cert_read (path, false, &why);
        if (!server) {
            if (!atomic_exchange (&self->waiting_said, true))
                dx_info ("curve: no usable %s yet (%s): waiting for the scheduler to write "
                         "its public certificate", path, why? why: "there is no file");
            return -1;
        }
        snprintf (server_key, sizeof server_key, "%s", zcert_public_txt (server));
        zcert_destroy (&server);
    }
    atomic_store (&self->waiting_said, false);
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, server_key);
    return 0;
}

zsock_t *
dx_curve_client_watch (zsock_t *sock)
{
    char endpoint [64];
    if (s_monitor (sock, S_CLIENT_EVENTS, endpoint))
        return NULL;
    zsock_t *watch = s_watch_new (endpoint);
    if (!watch)             /* nobody would read: stop it before it blocks */
        zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
    return watch;
}

int
dx_curve_client_refused (dx_curve_t *self, zsock_t *watch)
{
    uint16_t event;
    uint32_t value;
    char endpoint [64];
    if (s_event_recv (watch, &event, &value, endpoint))
        return 0;
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        atomic_store (&self->refused_said, false);
        return 0;
    }
    if (!atomic_exchange (&self->refused_said, true)) {
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            dx_error ("curve: the scheduler at %s refused this key (ZAP status %u): it "
                      "admits it once %s is in its %s directory", endpoint, value,
                      self->public_path, self->link);
        else
            dx_error ("curve: the handshake with the scheduler at %s failed (ZMTP error "
                      "0x%x): is its public key the one in %s%s?", endpoint, value,
                      self->server_key? "DEXTER_CURVE_SERVER_KEY": self->dir,
                      self->server_key? "": "/" S_SERVER_CERT);
    }
    return 1;
}

void
dx_curve_destroy (dx_curve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dx_curve_t *self = *self_p;
    zactor_destroy (&self->zap);
    s_cert_destroy (&self->cert);
    free (self->dir);
    free (self->link);
    free (self->server_key);
    free (self->public_path);
    free (self);
    *self_p = NULL;
}
