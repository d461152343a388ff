/*  sch_redis: the scheduler's one connection to Redis, the commands sent on
    it, and the failure state of all of them.

    The URL is redis://[[user]:password@]host[:port][/db] or
    unix:///path/to.sock[?db=N]. A Redis that is down is not an error at
    start: commands fail UNAVAILABLE until it is back. A command connects
    first when there is no connection (attempts at least 100 ms apart, so a
    storm of requests cannot hammer a Redis that is down) and the cron,
    sch_redis_tick, tries every second. A connection that fails is dropped;
    the next command or tick connects again.

    Commands are built in a batch (sch_batch_t, binary-safe) and sent in
    one write: as they are (a pipeline: reads) or wrapped in MULTI/EXEC (a
    transaction: changes).

    Writes that must not be lost (what the scheduler learns from its
    workers) go through sch_redis_write: what Redis cannot take now is
    kept, in order, in the outbox, and sent before any other command, so
    nothing reads or writes Redis past a write still waiting.

    Functions returning int give 0 on success and -1 on failure. Every
    failure, and those its callers record with sch_redis_fail, is kept
    here: sch_redis_status says UNAVAILABLE (Redis cannot be reached or
    cannot serve now) or INTERNAL (anything else), sch_redis_error the
    sentence. The password is never logged. */
#ifndef SCH_REDIS_H
#define SCH_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis.h>

typedef struct sch_redis sch_redis_t;

/*  Parses url and tries to connect once (Redis being down is logged, not a
    failure). NULL only when the URL is malformed (logged) or out of
    memory. */
sch_redis_t *sch_redis_new (const char *url);

/*  Closes the connection, wipes the password, frees; safe on NULL; sets
    *self_p to NULL. */
void sch_redis_destroy (sch_redis_t **self_p);

/*  Cron: notices a connection Redis closed (without waiting), reconnects
    when disconnected and sends the kept writes; while Redis stays down,
    says so every 30 s, not every second. */
void sch_redis_tick (sch_redis_t *self);

/*  Whether Redis serves now, for health: NULL when the connection is up
    and no write waits, else a sentence saying what is wrong, written into
    buf, without the address or the password. Never waits: it only looks
    at the idle connection (one that Redis closed counts as lost) and
    never connects; sch_redis_tick does, every second. */
const char *sch_redis_health (sch_redis_t *self, char *buf, size_t size);

/*  1 while a connection is up. */
int sch_redis_connected (sch_redis_t *self);

/*  "host:port" or the socket path, for logs and messages. Borrowed. */
const char *sch_redis_address (sch_redis_t *self);

/*  Names the current session: it changes whenever a connection is lost,
    so that a reader can tell that what it read before may no longer hold
    (Redis may come back without its data). */
uint64_t sch_redis_session (sch_redis_t *self);

/*  Status code (DX_UNAVAILABLE or DX_INTERNAL) and sentence of the last
    failure. Borrowed. */
const char *sch_redis_status (sch_redis_t *self);
const char *sch_redis_error (sch_redis_t *self);

/*  Records a failure of the caller's (a reply it cannot decode, say). */
void sch_redis_fail (sch_redis_t *self, const char *status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  0 if reply is not an error reply; else records it as the failure (what
    says during what) and returns -1. Transient errors (LOADING, BUSY,
    READONLY ...) are UNAVAILABLE. */
int sch_redis_check (sch_redis_t *self, const redisReply *reply, const char *what);


//  ---------------------------------------------------------------------
//  Batches of commands

/*  Commands to send together, their arguments already in the Redis
    protocol. Start from { 0 }, end with sch_batch_free; the members are
    sch_redis.c's. A failed allocation voids the batch: sending it fails
    (INTERNAL). */
typedef struct {
    char *data;                 /* every argument, as "$len\r\nbytes\r\n" */
    size_t len, cap;
    size_t *starts;             /* per command: offset of its first argument */
    size_t *argcs;              /* per command: number of arguments */
    size_t count, cmd_cap;
    size_t witness;             /* 1 + the index of the witness command, or 0 */
    int oom;
} sch_batch_t;

/*  Starts a command with the NULL-terminated arguments given. */
void sch_batch_cmd (sch_batch_t *self, const char *first, ...);

/*  Appends an argument to the last command: text; printf-formatted text;
    text taken (freed here: NULL, an allocation that failed, voids the
    batch). */
void sch_batch_arg (sch_batch_t *self, const char *text);
void sch_batch_argf (sch_batch_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
void sch_batch_arg_take (sch_batch_t *self, char *text);

/*  The number of commands in the batch. */
size_t sch_batch_size (const sch_batch_t *self);

/*  Frees what the batch holds; it may be used again after. */
void sch_batch_free (sch_batch_t *self);

/*  Sends the batch as it is, in one write, and reads every reply into
    *replies_p (sch_batch_size of them; free with sch_redis_replies_free).
    Error replies are left for the caller to judge (sch_redis_check). */
int sch_redis_pipeline (sch_redis_t *self, const sch_batch_t *batch, redisReply ***replies_p);

/*  Runs the batch as one MULTI/EXEC transaction: all of it or, if Redis
    refuses any command, none of it. An error reply inside EXEC fails it
    too (a bug in what was sent); what names the change in the error. */
int sch_redis_transact (sch_redis_t *self, const sch_batch_t *batch, const char *what);

/*  Frees count replies and their array; safe on NULL. */
void sch_redis_replies_free (redisReply **replies, size_t count);


//  ---------------------------------------------------------------------
//  Writes that must not be lost: the outbox
//
//  A write that Redis cannot take now (it is down, the connection broke
//  under it, or it refuses writes for now: LOADING, MISCONF, OOM,
//  NOREPLICAS ...) is kept and sent again, oldest first, before any other
//  command, until Redis has it. Meanwhile every other command fails
//  UNAVAILABLE, saying how many writes wait: nothing reads state older
//  than a write made.
//
//  A write whose connection broke after it was sent may have been
//  carried out, its answer lost. Before it is sent again it is looked
//  for: its witness, the XADD of its event, is the last entry of its
//  stream if Redis carried it out, as nothing was sent after it. So it is
//  carried out once, never twice. A write without a witness must hold
//  only absolute values (HSET, DEL), which are the same sent twice.
//
//  The outbox lives in the scheduler's memory: a scheduler that dies
//  loses it (the engine is built so that Redis still never holds less
//  than what workers were told: sch_engine.h). It holds only what was
//  already accepted, and nothing new is accepted while it holds anything.

/*  Marks the last command of the batch, the XADD of the change's event,
    as the witness of the batch. */
void sch_batch_witness (sch_batch_t *self);

/*  Runs batch as one transaction, as sch_redis_transact does, after every
    write kept before it; when Redis cannot take it now it is kept (see
    above). The batch is taken: empty after the call. 0: Redis has it; 1:
    kept, numbered *serial (when not NULL); -1: Redis refused it for good
    (INTERNAL: a bug in what was sent; logged, not kept). */
int sch_redis_write (sch_redis_t *self, sch_batch_t *batch, const char *what,
                     uint64_t *serial);

/*  Sends the kept writes, oldest first. 0 when none is left. */
int sch_redis_flush (sch_redis_t *self);

/*  The number of writes kept. */
size_t sch_redis_kept (sch_redis_t *self);

/*  1 once the write kept as serial is no longer kept: Redis has it (or
    refused it for good). */
int sch_redis_written (sch_redis_t *self, uint64_t serial);

#endif
