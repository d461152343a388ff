/*  harness: temporary directories, free ports, redis-server, the fake
    clouds and their side channels, and captured logs for the unit
    tests. */
#include "harness.h"
#include "dx_http.h"
#include "dx_log.h"
#include "dx_util.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <ftw.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>                     /* after stdarg, stddef and setjmp */

#define REDIS_SERVER "/usr/bin/redis-server"
#define PYTHON       "/usr/bin/python3"

int
th_tmpdir (char *dir, size_t size, const char *prefix)
{
    int len = snprintf (dir, size, "/tmp/dx-%s-XXXXXX", prefix);
    if (len < 0 || (size_t) len >= size)
        return -1;
    return mkdtemp (dir)? 0: -1;
}

/*  nftw's callback: removes one file or (emptied) directory. */
static int
s_remove (const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void) st;
    (void) ftw;
    return type == FTW_DP? rmdir (path): unlink (path);
}

void
th_tmpdir_remove (const char *dir, int keep)
{
    if (!dir || !*dir)
        return;
    if (keep) {
        fprintf (stderr, "the test's files (logs) are kept in %s\n", dir);
        return;
    }
    nftw (dir, s_remove, 16, FTW_DEPTH | FTW_PHYS);
}

int
th_write_file (const char *path, const char *text, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen (text);
    int rc = write (fd, text, len) == (ssize_t) len && fchmod (fd, mode) == 0? 0: -1;
    return close (fd) == 0? rc: -1;
}

int
th_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr)
    ||  getsockname (fd, (struct sockaddr *) &addr, &len)) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    close (fd);
    return ntohs (addr.sin_port);
}

void
th_stop (pid_t *pid)
{
    if (!pid || *pid <= 0)
        return;
    kill (*pid, SIGTERM);
    int64_t deadline = dx_mono_ms () + 5000;
    int status;
    while (waitpid (*pid, &status, WNOHANG) == 0) {
        if (dx_mono_ms () > deadline) {
            kill (*pid, SIGKILL);
            waitpid (*pid, &status, 0);
            break;
        }
        usleep (10000);
    }
    *pid = 0;
}

/*  Forks a child that dies with this process, has stdin from /dev/null and
    stdout and stderr into log, and execs argv. The pid, or -1. */
static pid_t
s_spawn (char *const *argv, const char *log)
{
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid != 0)
        return pid;
    prctl (PR_SET_PDEATHSIG, SIGTERM);
    if (getppid () != parent)
        _exit (1);
    int in = open ("/dev/null", O_RDONLY);
    int out = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0)
        _exit (127);
    dup2 (in, 0);
    dup2 (out, 1);
    dup2 (out, 2);
    execv (argv [0], argv);
    _exit (127);
}

/*  1 when the child has exited (reaped, and said so with its log). */
static int
s_exited (pid_t pid, const char *what, const char *log)
{
    int status;
    if (waitpid (pid, &status, WNOHANG) != pid)
        return 0;
    fprintf (stderr, "%s exited at start (see %s)\n", what, log);
    return 1;
}

static int
s_redis_pings (int port)
{
    struct timeval tv = { 0, 200000 };
    redisContext *c = redisConnectWithTimeout ("127.0.0.1", port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand (c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject (r);
    }
    if (c)
        redisFree (c);
    return ok;
}

pid_t
th_redis_start (const char *dir, int port, const char *sock)
{
    char port_arg [16], log [PATH_MAX], startup [PATH_MAX];
    snprintf (port_arg, sizeof port_arg, "%d", port);
    snprintf (log, sizeof log, "%s/redis.log", dir);
    snprintf (startup, sizeof startup, "%s/redis.out", dir);
    char *argv [32] = {
        REDIS_SERVER, "--bind", "127.0.0.1", "--port", port_arg,
        "--save", "", "--appendonly", "no", "--dir", (char *) dir,
        "--logfile", log, "--daemonize", "no"
    };
    int n = 15;
    if (sock) {
        argv [n++] = "--unixsocket";
        argv [n++] = (char *) sock;
        argv [n++] = "--unixsocketperm";
        argv [n++] = "700";
    }
    argv [n] = NULL;
    pid_t pid = s_spawn (argv, startup);
    if (pid < 0)
        return -1;
    int64_t deadline = dx_mono_ms () + 10000;
    while (dx_mono_ms () < deadline) {
        if (s_redis_pings (port))
            return pid;
        if (s_exited (pid, "redis-server", log))
            return -1;
        usleep (20000);
    }
    fprintf (stderr, "redis-server did not answer within 10 s (see %s)\n", log);
    th_stop (&pid);
    return -1;
}

int
th_redis_up (th_redis_t *self, const char *prefix)
{
    memset (self, 0, sizeof *self);
    if (th_tmpdir (self->dir, sizeof self->dir, prefix))
        return -1;
    self->port = th_free_port ();
    if (self->port <= 0 || (self->pid = th_redis_start (self->dir, self->port, NULL)) <= 0)
        return -1;
    snprintf (self->url, sizeof self->url, "redis://127.0.0.1:%d/0", self->port);
    struct timeval timeout = { 5, 0 };
    self->raw = redisConnectWithTimeout ("127.0.0.1", self->port, timeout);
    if (!self->raw || self->raw->err) {
        fprintf (stderr, "cannot connect to redis-server on port %d\n", self->port);
        return -1;
    }
    return 0;
}

void
th_redis_down (th_redis_t *self)
{
    if (self->raw)
        redisFree (self->raw);
    self->raw = NULL;
    if (self->pid > 0)
        th_stop (&self->pid);
    th_tmpdir_remove (self->dir, 0);
    self->dir [0] = 0;
}

long long
th_redis_int (th_redis_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    redisReply *reply = redisvCommand (self->raw, fmt, args);
    va_end (args);
    long long n = !reply? -1
                : reply->type == REDIS_REPLY_INTEGER? reply->integer
                : reply->type == REDIS_REPLY_STRING && reply->len
                  && strspn (reply->str, "0123456789") == reply->len? atoll (reply->str): -1;
    if (reply)
        freeReplyObject (reply);
    return n;
}

/*  tests/fakes/NAME.py, looked for above the working directory and above
    this binary, or in DEXTER_SOURCE_DIR. */
static int
s_find_fake (const char *name, char *path, size_t size)
{
    const char *src = getenv ("DEXTER_SOURCE_DIR");
    if (src && *src) {
        snprintf (path, size, "%s/tests/fakes/%s.py", src, name);
        return access (path, R_OK);
    }
    char starts [2][PATH_MAX] = { "", "" };
    if (!getcwd (starts [0], sizeof starts [0]))
        starts [0][0] = 0;
    ssize_t n = readlink ("/proc/self/exe", starts [1], sizeof starts [1] - 1);
    starts [1][n > 0 ? n : 0] = 0;
    for (int s = 0; s < 2; s++) {
        char dir [PATH_MAX];
        memcpy (dir, starts [s], sizeof dir);
        while (*dir) {
            int len = snprintf (path, size, "%s/tests/fakes/%s.py", dir, name);
            if (len > 0 && (size_t) len < size && access (path, R_OK) == 0)
                return 0;
            char *slash = strrchr (dir, '/');
            if (!slash)
                break;
            *slash = 0;
        }
    }
    return -1;
}

/*  Starts the fake cloud tests/fakes/NAME.py as th_fake_ec2_start says,
    its log in dir/NAME.log. */
static pid_t
s_fake_start (const char *name, const char *dir, const char *const *args, char *endpoint,
              size_t size)
{
    char fake [PATH_MAX], port_file [PATH_MAX], log [PATH_MAX];
    if (s_find_fake (name, fake, sizeof fake)) {
        fprintf (stderr, "tests/fakes/%s.py not found (run from the source tree "
                 "or set DEXTER_SOURCE_DIR)\n", name);
        return -1;
    }
    snprintf (port_file, sizeof port_file, "%s/port", dir);
    snprintf (log, sizeof log, "%s/%s.log", dir, name);
    unlink (port_file);
    char *argv [64] = { PYTHON, fake, "--port", "0", "--port-file", port_file };
    size_t n = 6;
    for (; args && *args && n < sizeof argv / sizeof argv [0] - 1; args++)
        argv [n++] = (char *) *args;
    argv [n] = NULL;
    pid_t pid = s_spawn (argv, log);
    if (pid < 0)
        return -1;
    int64_t deadline = dx_mono_ms () + 30000;
    while (dx_mono_ms () < deadline) {
        FILE *f = fopen (port_file, "r");
        int port = 0;
        if (f) {
            if (fscanf (f, "%d", &port) != 1)
                port = 0;
            fclose (f);
        }
        if (port > 0) {
            snprintf (endpoint, size, "http://127.0.0.1:%d", port);
            return pid;
        }
        if (s_exited (pid, name, log))
            return -1;
        usleep (20000);
    }
    fprintf (stderr, "%s did not listen within 30 s (see %s)\n", name, log);
    th_stop (&pid);
    return -1;
}

pid_t
th_fake_ec2_start (const char *dir, const char *const *args, char *endpoint, size_t size)
{
    return s_fake_start ("fake_ec2", dir, args, endpoint, size);
}

pid_t
th_fake_arm_start (const char *dir, const char *const *args, char *endpoint, size_t size)
{
    return s_fake_start ("fake_arm", dir, args, endpoint, size);
}

json_t *
th_fake_side (const char *endpoint, const char *method, const char *what, const char *json)
{
    char url [256];
    snprintf (url, sizeof url, "%s/_fake/%s", endpoint, what);
    const char *headers [] = { "Content-Type: application/json", NULL };
    dx_http_request_t req = { .method = method, .url = url, .headers = headers,
                              .body = json, .body_len = json? strlen (json): 0,
                              .timeout_ms = 10000 };
    dx_http_response_t *resp = dx_http_request (&req);
    json_t *out = resp && resp->status == 200
                ? json_loadb (resp->body, resp->body_len, 0, NULL): NULL;
    if (!out)
        fprintf (stderr, "fake %s %s: %ld %s %s\n", method, what, resp? resp->status: 0,
                 resp? resp->error: "out of memory", resp && resp->body? resp->body: "");
    dx_http_response_destroy (&resp);
    return out;
}

long
th_fake_calls (const char *endpoint, const char *table, const char *key)
{
    json_t *calls = th_fake_side (endpoint, "GET", "calls", NULL);
    long n = calls? (long) json_integer_value (json_object_get (json_object_get (calls, table),
                                                                  key)): -1;
    json_decref (calls);
    return n;
}

int
th_log_capture (const char *path)
{
    fflush (stderr);
    int saved = dup (2);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || fd < 0) {
        if (saved >= 0)
            close (saved);
        if (fd >= 0)
            close (fd);
        return -1;
    }
    dup2 (fd, 2);
    close (fd);
    setenv ("DEXTER_LOG_LEVEL", "debug", 1);
    dx_log_init ("test");
    return saved;
}

char *
th_log_release (int saved, const char *path)
{
    fflush (stderr);
    dup2 (saved, 2);
    close (saved);
    setenv ("DEXTER_LOG_LEVEL", "info", 1);
    dx_log_init ("test");
    FILE *f = fopen (path, "r");
    char *text = NULL;
    size_t size = 0;
    if (f && getdelim (&text, &size, 0, f) < 0) {
        free (text);
        text = strdup ("");
    }
    if (f)
        fclose (f);
    return text;
}

//  ---------------------------------------------------------------------
//  A fake cloud shared by the tests of a file: cmocka's checks

json_t *
th_fake_ask (const th_fake_t *fake, const char *method, const char *what, const char *json)
{
    json_t *out = th_fake_side (fake->endpoint, method, what, json);
    assert_non_null (out);
    return out;
}

int
th_fake_teardown (void **state)
{
    th_fake_t *fake = *state;
    if (fake)
        th_stop (&fake->pid);
    return 0;
}
