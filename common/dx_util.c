/*  dx_util: time, ids, base64. */
#include "dx_util.h"

#include <czmq.h>
#include <malloc.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sodium.h>

static int64_t
s_clock_ms (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
dx_now_ms (void)
{
    return s_clock_ms (CLOCK_REALTIME);
}

int64_t
dx_mono_ms (void)
{
    return s_clock_ms (CLOCK_MONOTONIC);
}

char *
dx_time_iso (int64_t epoch_ms, char *buf, size_t size)
{
    time_t secs = (time_t) (epoch_ms / 1000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    char base [32];
    strftime (base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf, size, "%s.%03dZ", base, (int) (epoch_ms % 1000));
    return buf;
}

/*  Each thread draws its ids from its own ChaCha20 key, taken once from
    the system's RNG: id n is the start of the keystream block for nonce n.
    As unpredictable as drawing 16 random bytes each time, without a
    getrandom() system call per message. A fork would repeat the parent's
    ids; no service forks. */
static _Thread_local struct {
    unsigned char key [crypto_stream_chacha20_KEYBYTES];
    uint64_t next;
    int keyed;
} s_ids;

char *
dx_id_new (char *buf, size_t size)
{
    if (size < 33) {
        if (size)
            buf [0] = 0;
        return buf;
    }
    if (!s_ids.keyed) {
        if (sodium_init () < 0)
            abort ();
        randombytes_buf (s_ids.key, sizeof s_ids.key);
        s_ids.keyed = 1;
    }
    unsigned char nonce [crypto_stream_chacha20_NONCEBYTES] = { 0 };
    uint64_t n = s_ids.next++;
    for (size_t i = 0; i < sizeof nonce && i < sizeof n; i++)
        nonce [i] = (unsigned char) (n >> (8 * i));
    unsigned char raw [16];
    crypto_stream_chacha20 (raw, sizeof raw, nonce, s_ids.key);
    sodium_bin2hex (buf, size, raw, sizeof raw);
    return buf;
}

void
dx_free_wiped (void *ptr)
{
    if (ptr) {
        sodium_memzero (ptr, malloc_usable_size (ptr));
        free (ptr);
    }
}

/*  Two arenas: few threads, small RSS. Freed memory stays in the heap and
    blocks under 8 MiB come from it, so each request reuses the last one's
    buffers instead of paying brk/mmap and page faults again;
    dx_malloc_release gives the memory back when the service is idle. */
void
dx_malloc_init (void)
{
    mallopt (M_ARENA_MAX, 2);
    mallopt (M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    mallopt (M_MMAP_THRESHOLD, 8 * 1024 * 1024);
}

void
dx_malloc_release (void)
{
    struct mallinfo2 info = mallinfo2 ();
    if (info.fordblks > DX_MALLOC_KEEP)
        malloc_trim (0);
}

void
dx_stop_signal (int signum)
{
    (void) signum;
    zsys_interrupted = 1;
}

void
dx_catch_stop_signals (void)
{
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = dx_stop_signal;
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    signal (SIGPIPE, SIG_IGN);
}

/*  getpid(2) answered from memory (dx_util.h says why). A definition in
    the executable is the one the dynamic linker binds every library's
    calls to; the linker exports it because libzmq refers to it. The child
    of a fork reads its pid again (pthread_atfork). bench/getpid.sh builds
    with DX_GETPID_UNCACHED to measure what this saves. */
#ifndef DX_GETPID_UNCACHED
static atomic_int s_pid;
static pthread_once_t s_pid_once = PTHREAD_ONCE_INIT;

static void
s_pid_forget (void)
{
    atomic_store_explicit (&s_pid, 0, memory_order_relaxed);
}

static void
s_pid_watch_forks (void)
{
    pthread_atfork (NULL, NULL, s_pid_forget);
}

pid_t
getpid (void)
{
    pid_t pid = (pid_t) atomic_load_explicit (&s_pid, memory_order_relaxed);
    if (pid == 0) {
        pthread_once (&s_pid_once, s_pid_watch_forks);
        pid = (pid_t) syscall (SYS_getpid);
        atomic_store_explicit (&s_pid, (int) pid, memory_order_relaxed);
    }
    return pid;
}
#endif

/*  Value of one base64 character in either alphabet, -1 if not one. */
static int
s_b64_value (unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

unsigned char *
dx_base64_decode (const char *in, size_t *len)
{
    size_t n = strlen (in);
    unsigned char *out = malloc (n / 4 * 3 + 4);
    if (!out)
        return NULL;
    size_t o = 0, pad = 0, digits = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) in [i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = s_b64_value (c);
        if (v < 0 || pad) {             /* bad character, or data after '=' */
            free (out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t) v;
        if (++digits % 4 == 0) {
            out [o++] = (unsigned char) (acc >> 16);
            out [o++] = (unsigned char) (acc >> 8);
            out [o++] = (unsigned char) acc;
            acc = 0;
        }
    }
    size_t rest = digits % 4;
    if (rest == 1 || pad > 2 || (pad && (rest + pad) % 4 != 0)) {
        free (out);
        return NULL;
    }
    if (rest == 2)
        out [o++] = (unsigned char) (acc >> 4);
    else
    if (rest == 3) {
        out [o++] = (unsigned char) (acc >> 10);
        out [o++] = (unsigned char) (acc >> 2);
    }
    out [o] = 0;
    *len = o;
    return out;
}

char *
dx_base64_encode (const unsigned char *data, size_t len)
{
    size_t size = sodium_base64_encoded_len (len, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc (size);
    if (out)
        sodium_bin2base64 (out, size, data, len, sodium_base64_VARIANT_ORIGINAL);
    return out;
}
