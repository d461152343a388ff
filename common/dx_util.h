/*  dx_util: small helpers every service uses: time, ids, base64. */
#ifndef DX_UTIL_H
#define DX_UTIL_H

#include <stddef.h>
#include <stdint.h>

/*  Milliseconds since the Unix epoch (wall clock). */
int64_t dx_now_ms (void);

/*  Milliseconds of a monotonic clock, for deadlines and durations. */
int64_t dx_mono_ms (void);

/*  RFC 3339 UTC time with milliseconds, e.g. 2026-11-25T02:40:00.123Z,
    written into buf (at least 25 bytes). Returns buf. */
char *dx_time_iso (int64_t epoch_ms, char *buf, size_t size);

/*  Fresh unique id: 32 lowercase hex characters, unpredictable (a
    per-thread ChaCha20 stream keyed from libsodium's RNG), written into
    buf (at least 33 bytes). Returns buf. */
char *dx_id_new (char *buf, size_t size);

/*  free() that first wipes the whole block: for allocators that may hold
    credentials (jansson's, libcurl's). NULL is fine. */
void dx_free_wiped (void *ptr);

/*  Tunes malloc for a service's request loop; main calls it first. */
void dx_malloc_init (void);

/*  Free memory the heap may keep between requests. */
#define DX_MALLOC_KEEP (2u * 1024u * 1024u)

/*  Gives the heap's free memory back to the system when more than
    DX_MALLOC_KEEP of it lies unused. Called when idle (a service's tick,
    a while after a large answer): back-to-back large answers reuse the
    heap, and the RSS drops once they are over. */
void dx_malloc_release (void);

/*  Decodes base64 in either alphabet ('+/' or '-_'), padding optional,
    ASCII white space (line breaks, spaces, tabs) skipped. Returns a new
    NUL-terminated buffer (caller frees) and its length in *len, or NULL if
    the input is not base64. */
unsigned char *dx_base64_decode (const char *in, size_t *len);

/*  Encodes len bytes as standard base64 with padding. Caller frees. */
char *dx_base64_encode (const unsigned char *data, size_t len);

/*  SIGTERM and SIGINT ask every loop to stop (they set czmq's
    zsys_interrupted, which the loops watch), and SIGPIPE is ignored: a
    write to a peer that just went away must not kill the process. Called
    first thing in main, so a stop during start-up still ends in a clean
    exit; after zsys_init, zsys_handler_set (dx_stop_signal) keeps the
    handler (czmq would install its own). */
void dx_catch_stop_signals (void);
void dx_stop_signal (int signum);

/*  Linking dx_util replaces getpid(2) in the whole process (every library
    included) with one that answers from memory. libzmq asks getpid() at
    every signal between its threads, to notice a fork, and glibc no
    longer caches the pid: without this, each GET through the api costs
    the api and the scheduler several getpid system calls
    (docs/BENCHMARKS.md, section getpid, gives the count and the cost). A
    child of fork() reads its own pid again. */

#endif
