/*  harness: what the unit tests that need real processes share. A
    temporary directory, a free loopback port, the servers they start
    and stop by pid: redis-server and the fake clouds of tests/fakes
    (fake_ec2.py, fake_arm.py) with their side channels; and stderr
    captured, to look at what the logs hold.

    Children ask for SIGTERM when the test process dies, so an aborted run
    leaves nothing behind. Every wait is bounded; a failure is said on
    stderr with the log to read. */
#ifndef HARNESS_H
#define HARNESS_H

#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>
#include <hiredis/hiredis.h>

/*  Makes /tmp/dx-<prefix>-XXXXXX into dir (size >= 64). 0 or -1. */
int th_tmpdir (char *dir, size_t size, const char *prefix);

/*  Removes dir and everything in it, or, when keep is set, leaves it for
    reading after a failure (and says where it is). */
void th_tmpdir_remove (const char *dir, int keep);

/*  Writes text into path (made or emptied) with mode, whatever the umask.
    0 or -1. */
int th_write_file (const char *path, const char *text, mode_t mode);

/*  A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int th_free_port (void);

/*  SIGTERM, then SIGKILL after 5 s; always reaps. Sets *pid to 0; safe on
    0. */
void th_stop (pid_t *pid);

/*  Starts redis-server on 127.0.0.1:port, with its files (and its log,
    redis.log) in dir and, when sock is not NULL, also on that unix socket.
    No persistence. Waits, at most 10 s, until it answers PING. The pid,
    or -1. */
pid_t th_redis_start (const char *dir, int port, const char *sock);

/*  A redis-server of a test's own, with what a test of the scheduler
    needs around it: its directory (/tmp/dx-<prefix>-...), its port, its
    URL for the code under test, and a connection of the test's own
    (commands behind the code's back, to look or to break things). */
typedef struct {
    char dir [64];
    int port;
    pid_t pid;
    char url [64];
    redisContext *raw;
} th_redis_t;

/*  Starts it (th_redis_start) and connects. 0, or -1 (said on stderr). */
int th_redis_up (th_redis_t *self, const char *prefix);

/*  Disconnects, stops the server and removes its directory; safe on a
    redis that is not up. */
void th_redis_down (th_redis_t *self);

/*  The number a command on the test's connection answers: an integer, or
    a string of digits; -1 for anything else. */
long long th_redis_int (th_redis_t *self, const char *fmt, ...);

/*  Starts tests/fakes/fake_ec2.py (looked for above the working directory
    and above this binary; DEXTER_SOURCE_DIR, when set, names the tree) on
    a free port with the NULL-terminated extra arguments args, its log in
    dir/fake_ec2.log, and waits at most 30 s (botocore's model loads
    slowly) until it listens. Writes http://127.0.0.1:PORT into endpoint.
    The pid, or -1. */
pid_t th_fake_ec2_start (const char *dir, const char *const *args, char *endpoint,
                         size_t size);

/*  Starts tests/fakes/fake_arm.py (Resource Manager and the Entra token
    endpoint) the same way, its log in dir/fake_arm.log; the endpoint is
    both the credentials' activeDirectoryEndpointUrl and
    resourceManagerEndpointUrl. The pid, or -1. */
pid_t th_fake_arm_start (const char *dir, const char *const *args, char *endpoint,
                         size_t size);

/*  The side channel of the fake cloud at endpoint: method on
    /_fake/<what>, with the JSON text json (may be NULL). The answer
    (caller decrefs), or NULL, said on stderr, unless it is a 200 with
    JSON. */
json_t *th_fake_side (const char *endpoint, const char *method, const char *what,
                      const char *json);

/*  calls.<table>.<key> of the fake's GET /_fake/calls: 0 when absent, -1
    when the fake does not answer. */
long th_fake_calls (const char *endpoint, const char *table, const char *key);

/*  Sends stderr to path (truncated) and logs at debug level, so that a
    test can look at what the logs hold. The saved stderr, for
    th_log_release, or -1. */
int th_log_capture (const char *path);

/*  Puts stderr back, logs at info level again, and returns what path
    holds (caller frees), or NULL when it cannot be read. */
char *th_log_release (int saved, const char *path);

/*  A private key as dx_spec takes it: an unencrypted OpenSSH key of filler
    bytes (dx_spec checks the form of OpenSSH keys, OpenSSL cannot read
    them), as the PEM text the scheduler seals and as its base64, what a
    request's sshkeydata carries. The PEM holds "PLAINPEMMARKER", text
    nothing else holds, to look for where no secret may be. */
#define TH_SSH_KEY_PEM \
    "-----BEGIN OPENSSH PRIVATE KEY-----\n" \
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" \
    "QyNTUxOQAAACAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHwAAABtaWlpaWlpa\n" \
    "PLAINPEMMARKER7qWlpaWlpaWlo=\n" \
    "-----END OPENSSH PRIVATE KEY-----\n"
#define TH_SSH_KEY_B64 \
    "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0KYjNCbGJuTnphQzFyWlhrdGRqRUFBQUFB" \
    "Qkc1dmJtVUFBQUFFYm05dVpRQUFBQUFBQUFBQkFBQUFNd0FBQUF0emMyZ3RaVwpReU5UVXhPUUFBQUNB" \
    "QUFRSURCQVVHQndnSkNnc01EUTRQRUJFU0V4UVZGaGNZR1JvYkhCMGVId0FBQUJ0YVdscGFXbHBhClBM" \
    "QUlOUEVNTUFSS0VSN3FXbHBhV2xwYVdsbz0KLS0tLS1FTkQgT1BFTlNTSCBQUklWQVRFIEtFWS0tLS0t" \
    "Cg=="

/*  A fake cloud that the tests of one file share: its directory (for its
    log and the test's files), its endpoint and its pid. */
typedef struct {
    char dir [64];
    char endpoint [64];
    pid_t pid;
} th_fake_t;

/*  th_fake_side on fake, for a test: fails the test unless there is an
    answer. The answer (caller decrefs). */
json_t *th_fake_ask (const th_fake_t *fake, const char *method, const char *what,
                     const char *json);

/*  A cmocka group teardown: stops the fake that the group setup put in
    *state (safe on none). 0. */
int th_fake_teardown (void **state);

#endif
