/*  dx_worker: the shared job loop of the workers (see dx_worker.h and
    proto/PROTOCOL.md, "Transport: scheduler ⇄ workers").

    Threads and ownership:
      - The loop thread (dx_worker_run) alone touches the DEALER, the PULL
        socket and the list of running jobs. Its timers (heartbeat, scheduler
        silence, lease renewals, drain deadline) are checked after every wake
        of one zmq_poll, whose timeout is the nearest of them.
      - A job thread runs the handler with the job.assign message it owns,
        wipes and frees that message, then, under s_lock, marks the job
        finished and wakes the loop through a short-lived inproc PUSH
        socket. The loop joins it, sends job.result and frees the job.
      - At the end of a drain the loop abandons jobs still running: under
        s_lock it marks them abandoned and detaches their threads, which
        then free their job themselves and never touch ZeroMQ, so the
        worker and the ZeroMQ context can go away before they end. s_lock
        is static, not in the worker, for the same reason.
    Nothing survives a job: its message, credentials included, is wiped and
    freed by the job thread; the loop keeps only the id and attempt. */
#include "dx_worker.h"
#include "dx_cloud_metrics.h"
#include "dx_config.h"
#include "dx_log.h"
#include "dx_msg.h"
#include "dx_util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#define S_SILENT_BEATS   3              /* a peer silent this many intervals is dead */
#define S_HEARTBEAT_MIN  10
#define S_HEARTBEAT_MAX  600000
#define S_LEASE_MIN      30
#define S_LEASE_MAX      86400000
#define S_BYE_LINGER_MS  1000           /* how long worker.bye may take to leave */

/*  Guards job->finished and job->abandoned of every worker's jobs. */
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

struct dx_worker_job {
    //  Set by the loop before the thread starts, read-only afterwards
    char *id;
    json_int_t attempt;
    json_t *assign;                     /* the job thread's until it ends */
    dx_worker_handler_fn *handler;
    void *arg;
    char inproc [64];                   /* the loop's PULL endpoint */
    pthread_t thread;
    //  Any thread
    atomic_int cancelled;
    //  The handler's thread; the loop's once finished
    json_t *resources;                  /* array */
    const char *outcome;                /* "done", "failed", "retry" */
    char *code;
    char *message;
    int permanent;
    //  Under s_lock
    int finished;
    int abandoned;
    char *progress;                     /* the newest progress not sent yet */
    //  The loop's
    int64_t renew_every;
    int64_t next_renew;
    struct dx_worker_job *next;
};

struct dx_worker {
    char *service;
    int capacity;
    char *endpoint;
    dx_worker_handler_fn *handler;
    void *arg;
    int64_t drain_ms;
    char name [300];                    /* host:pid[.serial] */
    char inproc [64];
    zsock_t *dealer;
    zsock_t *watch;                     /* the DEALER's handshakes, with CURVE */
    dx_curve_t *curve;                  /* NULL: no CURVE */
    zsock_t *pull;
    int64_t heartbeat_ms;
    int64_t lease_ms;
    int welcomed;
    int64_t last_heard;                 /* monotonic ms */
    int64_t next_heartbeat;
    int outage_logged;                  /* the current silence was logged */
    dx_worker_job_t *jobs;              /* running (not yet collected) */
    int running;
    int stopping;
    int64_t drain_deadline;
};


//  ---------------------------------------------------------------------
//  Jobs

static void
s_job_free (dx_worker_job_t **job_p)
{
    dx_worker_job_t *job = *job_p;
    if (!job)
        return;
    if (job->assign) {
        dx_worker_wipe_credentials (job->assign);
        json_decref (job->assign);
    }
    json_decref (job->resources);
    free (job->id);
    free (job->code);
    free (job->message);
    free (job->progress);
    free (job);
    *job_p = NULL;
}

/*  Wakes the loop from a job thread, under s_lock (so the loop cannot
    abandon the job and end meanwhile). Only a wake-up: the loop looks at
    the jobs' flags. */
static void
s_job_wake (dx_worker_job_t *job, const char *why)
{
    zsock_t *push = zsock_new (ZMQ_PUSH);
    if (push) {
        zsock_set_sndtimeo (push, 1000);
        zsock_set_linger (push, 1000);
        if (zsock_connect (push, "%s", job->inproc) == 0)
            zstr_send (push, why);
        zsock_destroy (&push);
    }
}

/*  The job thread: the handler, then the wipe, then the report. */
static void *
s_job_thread (void *arg)
{
    dx_worker_job_t *job = (dx_worker_job_t *) arg;
    job->handler (job->assign, job, job->arg);
    dx_worker_wipe_credentials (job->assign);
    json_decref (job->assign);
    job->assign = NULL;

    pthread_mutex_lock (&s_lock);
    if (job->abandoned) {
        pthread_mutex_unlock (&s_lock);
        s_job_free (&job);
        return NULL;
    }
    job->finished = 1;
    s_job_wake (job, "done");
    pthread_mutex_unlock (&s_lock);
    return NULL;
}

int
dx_worker_job_cancelled (dx_worker_job_t *job)
{
    return job? atomic_load (&job->cancelled): 0;
}

int
dx_worker_job_add_resource (dx_worker_job_t *job, json_t *resource)
{
    if (!job || !json_is_object (resource)) {
        json_decref (resource);
        return -1;
    }
    return json_array_append_new (job->resources, resource);
}

/*  Sets outcome and error; the message is formatted here. */
static void
s_job_set_error (dx_worker_job_t *job, const char *outcome, int permanent,
                 const char *code, const char *fmt, va_list args)
{
    char *message = NULL;
    if (vasprintf (&message, fmt, args) < 0)
        message = NULL;
    free (job->code);
    free (job->message);
    job->code = strdup (code && *code? code: "ERROR");
    job->message = message;
    job->outcome = outcome;
    job->permanent = permanent;
}

void
dx_worker_job_fail (dx_worker_job_t *job, int permanent, const char *code,
                    const char *fmt, ...)
{
    if (!job)
        return;
    va_list args;
    va_start (args, fmt);
    s_job_set_error (job, "failed", permanent? 1: 0, code, fmt, args);
    va_end (args);
}

void
dx_worker_job_retry (dx_worker_job_t *job, const char *code, const char *fmt, ...)
{
    if (!job)
        return;
    va_list args;
    va_start (args, fmt);
    s_job_set_error (job, "retry", 0, code, fmt, args);
    va_end (args);
}

void
dx_worker_job_progress (dx_worker_job_t *job, const char *fmt, ...)
{
    if (!job)
        return;
    char text [DX_WORKER_PROGRESS_MAX + 1];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    char *copy = strdup (text);
    if (!copy)
        return;                         /* progress is worth no failure */
    pthread_mutex_lock (&s_lock);
    if (!job->abandoned) {
        //  Only the newest counts: one the loop has not sent yet is replaced
        free (job->progress);
        job->progress = copy;
        copy = NULL;
        s_job_wake (job, "progress");
    }
    pthread_mutex_unlock (&s_lock);
    free (copy);
}

void
dx_worker_wipe_credentials (json_t *assign)
{
    json_t *credentials = json_object_get (assign, "credentials");
    if (!json_is_object (credentials))
        return;
    const char *key;
    json_t *value;
    json_object_foreach (credentials, key, value)
        if (json_is_string (value))
            sodium_memzero ((char *) json_string_value (value), json_string_length (value));
}


//  ---------------------------------------------------------------------
//  Construction

dx_worker_t *
dx_worker_new (const char *service, int capacity, const char *endpoint,
               dx_worker_handler_fn *handler, void *arg)
{
    if (!service || !*service || !handler
    ||  capacity < 1 || capacity > DX_WORKER_MAX_CAPACITY) {
        dx_error ("worker: needs a service, a handler and a capacity of 1 to %d",
                  DX_WORKER_MAX_CAPACITY);
        return NULL;
    }
    if (sodium_init () < 0) {
        dx_error ("worker: libsodium failed to initialize");
        return NULL;
    }
    int ok;
    int64_t drain_ms = dx_config_int ("WORKER_DRAIN_MS", DX_WORKER_DEFAULT_DRAIN_MS,
                                      0, 3600000, &ok);
    if (ok)
        return NULL;
    if (!endpoint)
        endpoint = dx_config_str ("WORKER_ENDPOINT", DX_WORKER_DEFAULT_ENDPOINT);

    dx_worker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->service = strdup (service);
    self->endpoint = strdup (endpoint);
    self->capacity = capacity;
    self->handler = handler;
    self->arg = arg;
    self->drain_ms = drain_ms;
    self->heartbeat_ms = DX_WORKER_DEFAULT_HEARTBEAT_MS;
    self->lease_ms = DX_WORKER_DEFAULT_LEASE_MS;
    char host [256];
    if (gethostname (host, sizeof host) != 0)
        snprintf (host, sizeof host, "unknown");
    host [sizeof host - 1] = 0;
    //  A name never used before in this process: a closed socket's inproc
    //  name stays taken until libzmq reaps it, so a new worker at the old
    //  one's address must not reuse it
    static atomic_uint s_serial;
    unsigned serial = atomic_fetch_add (&s_serial, 1);
    snprintf (self->inproc, sizeof self->inproc, "inproc://dx-worker-%u", serial);
    //  host:pid, and a serial for any further worker of the process: the
    //  scheduler takes a second identity of one name for the same worker
    //  reconnecting
    if (serial == 0)
        snprintf (self->name, sizeof self->name, "%s:%d", host, (int) getpid ());
    else
        snprintf (self->name, sizeof self->name, "%s:%d.%u", host, (int) getpid (), serial);
    if (!self->service || !self->endpoint)
        dx_worker_destroy (&self);
    return self;
}

static void s_abandon (dx_worker_t *self);

/*  Closes the DEALER, then its watch: a monitor left without its reader
    would block libzmq. */
static void
s_hang_up (dx_worker_t *self)
{
    zsock_destroy (&self->dealer);
    zsock_destroy (&self->watch);
}

void
dx_worker_destroy (dx_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dx_worker_t *self = *self_p;
    s_abandon (self);
    s_hang_up (self);
    zsock_destroy (&self->pull);
    free (self->service);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

void
dx_worker_set_curve (dx_worker_t *self, dx_curve_t *curve)
{
    self->curve = curve;
}


//  ---------------------------------------------------------------------
//  Talking to the scheduler

/*  Sends msg (and frees it). A send that would block (the scheduler gone,
    the queue full) fails at once: a lost heartbeat or renewal is made up by
    the next one, a lost result by the lease expiring. */
static void
s_send (dx_worker_t *self, json_t *msg)
{
    if (!msg)
        return;
    if (!self->dealer || dx_msg_send (self->dealer, NULL, msg))
        dx_debug ("worker: could not send %s to the scheduler", dx_msg_type (msg));
    json_decref (msg);
}

/*  The ids of the running jobs, for heartbeats and worker.ready. */
static json_t *
s_active (dx_worker_t *self)
{
    json_t *active = json_array ();
    for (dx_worker_job_t *job = self->jobs; job; job = job->next)
        json_array_append_new (active, json_string (job->id));
    return active;
}

static void
s_announce (dx_worker_t *self)
{
    json_t *msg = dx_msg_new ("worker.ready", NULL);
    if (msg) {
        json_object_set_new (msg, "service", json_string (self->service));
        json_object_set_new (msg, "capacity", json_integer (self->capacity));
        json_object_set_new (msg, "worker", json_string (self->name));
        json_object_set_new (msg, "active", s_active (self));
    }
    self->welcomed = 0;
    s_send (self, msg);
}

/*  A new DEALER (the old one dropped with whatever it still queued) and
    worker.ready on it. With CURVE, while the scheduler's key is not known
    there is none: the next try comes after another silent spell. */
static int
s_connect (dx_worker_t *self)
{
    s_hang_up (self);
    self->last_heard = dx_mono_ms ();
    self->dealer = zsock_new (ZMQ_DEALER);
    if (!self->dealer)
        return -1;
    zsock_set_sndtimeo (self->dealer, 0);
    zsock_set_linger (self->dealer, 0);
    zsock_set_maxmsgsize (self->dealer, DX_MSG_MAX_BYTES);
    if (self->curve && dx_curve_client_apply (self->curve, self->dealer)) {
        zsock_destroy (&self->dealer);
        return 0;
    }
    if ((self->curve && !(self->watch = dx_curve_client_watch (self->dealer)))
    ||  zsock_connect (self->dealer, "%s", self->endpoint)) {
        dx_error ("worker: cannot connect to %s", self->endpoint);
        s_hang_up (self);
        return -1;
    }
    s_announce (self);
    return 0;
}

/*  The error map of a job.result. A provider's code or message may hold
    any bytes, hence dx_msg_string_new. */
static json_t *
s_error (const char *code, const char *message, int permanent)
{
    json_t *error = json_object ();
    if (error
    && (json_object_set_new (error, "code", dx_msg_string_new (code? code: "ERROR"))
    ||  json_object_set_new (error, "message", dx_msg_string_new (message))
    ||  json_object_set_new (error, "permanent", json_boolean (permanent)))) {
        json_decref (error);
        error = NULL;
    }
    return error;
}

/*  job.result for a job we do not run (at capacity, stopping, malformed):
    outcome retry or failed with the reason. */
static void
s_refuse (dx_worker_t *self, const char *job, json_int_t attempt, int permanent,
          const char *code, const char *message)
{
    json_t *msg = dx_msg_new ("job.result", NULL);
    if (msg
    && (json_object_set_new (msg, "job", dx_msg_string_new (job))
    ||  json_object_set_new (msg, "attempt", json_integer (attempt))
    ||  json_object_set_new (msg, "outcome", json_string (permanent? "failed": "retry"))
    ||  json_object_set_new (msg, "resources", json_array ())
    ||  json_object_set_new (msg, "error", s_error (code, message, permanent))))
        json_decref (msg);
    else
        s_send (self, msg);
}


//  ---------------------------------------------------------------------
//  Starting and collecting jobs

/*  Starts a thread for job.assign (stolen), or refuses the job. */
static void
s_start_job (dx_worker_t *self, json_t *assign)
{
    const char *id = dx_msg_str (assign, "job");
    json_int_t attempt = dx_msg_int (assign, "attempt", 0);
    for (dx_worker_job_t *job = self->jobs; job; job = job->next)
        if (streq (job->id, id) && job->attempt == attempt) {
            dx_debug ("worker: job %s attempt %" JSON_INTEGER_FORMAT
                      " is running already", id, attempt);
            dx_worker_wipe_credentials (assign);
            json_decref (assign);
            return;
        }
    const char *refusal = NULL;
    if (self->stopping)
        refusal = "WORKER_STOPPING";
    else
    if (self->running >= self->capacity)
        refusal = "WORKER_BUSY";

    dx_worker_job_t *job = NULL;
    if (!refusal) {
        job = calloc (1, sizeof *job);
        if (job) {
            job->id = strdup (id);
            job->resources = json_array ();
            job->outcome = "done";
        }
        if (!job || !job->id || !job->resources) {
            s_job_free (&job);
            refusal = "WORKER_ERROR";
        }
    }
    if (refusal) {
        dx_warn ("worker: refusing job %s attempt %" JSON_INTEGER_FORMAT ": %s "
                 "(%d of %d running)", id, attempt, refusal, self->running, self->capacity);
        s_refuse (self, id, attempt, 0, refusal,
                  streq (refusal, "WORKER_STOPPING")? "the worker is shutting down":
                  streq (refusal, "WORKER_BUSY")? "the worker runs as many jobs as its capacity":
                  "the worker could not start the job");
        dx_worker_wipe_credentials (assign);
        json_decref (assign);
        return;
    }
    job->attempt = attempt;
    job->handler = self->handler;
    job->arg = self->arg;
    snprintf (job->inproc, sizeof job->inproc, "%s", self->inproc);
    int64_t lease = dx_msg_int (assign, "lease_ms", self->lease_ms);
    lease = lease < S_LEASE_MIN? S_LEASE_MIN: lease > S_LEASE_MAX? S_LEASE_MAX: lease;
    job->renew_every = lease / 3;
    job->next_renew = dx_mono_ms () + job->renew_every;
    const json_t *step = json_object_get (assign, "step");
    dx_info ("worker: job %s attempt %" JSON_INTEGER_FORMAT " started (cluster %s, "
             "step %s)", id, attempt, dx_msg_str (assign, "cluster"),
             dx_msg_str (step, "kind")? dx_msg_str (step, "kind"): "?");
    job->assign = assign;

    //  Signals are for the loop thread: a handler's blocking calls should
    //  not see EINTR because of them
    sigset_t block, old;
    sigemptyset (&block);
    sigaddset (&block, SIGINT);
    sigaddset (&block, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &block, &old);
    int rc = pthread_create (&job->thread, NULL, s_job_thread, job);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (rc) {
        dx_error ("worker: cannot start a thread for job %s: %s", job->id, strerror (rc));
        s_refuse (self, job->id, attempt, 0, "WORKER_ERROR",
                  "the worker could not start the job");
        s_job_free (&job);
        return;
    }
    job->next = self->jobs;
    self->jobs = job;
    self->running++;
}

/*  job.result for a finished job. */
static void
s_send_result (dx_worker_t *self, dx_worker_job_t *job)
{
    json_t *msg = dx_msg_new ("job.result", NULL);
    if (msg
    && (json_object_set_new (msg, "job", json_string (job->id))
    ||  json_object_set_new (msg, "attempt", json_integer (job->attempt))
    ||  json_object_set_new (msg, "outcome", json_string (job->outcome))
    ||  json_object_set (msg, "resources", job->resources)
    ||  (!streq (job->outcome, "done")
         && json_object_set_new (msg, "error", s_error (job->code, job->message,
                                                        job->permanent))))) {
        json_decref (msg);
        msg = NULL;
        dx_error ("worker: out of memory building the result of job %s", job->id);
    }
    dx_info ("worker: job %s attempt %" JSON_INTEGER_FORMAT " %s%s%s%s", job->id,
             job->attempt, job->outcome, job->code? " (": "", job->code? job->code: "",
             job->code? ")": "");
    s_send (self, msg);
}

/*  Takes the finished jobs off the list (all of them when abandon is set:
    those still running are handed to their threads). Returns the
    finished ones, chained. */
static dx_worker_job_t *
s_take_finished (dx_worker_t *self, int abandon)
{
    dx_worker_job_t *done = NULL;
    dx_worker_job_t **link = &self->jobs;
    pthread_mutex_lock (&s_lock);
    while (*link) {
        dx_worker_job_t *job = *link;
        if (job->finished || abandon) {
            *link = job->next;
            self->running--;
            if (job->finished) {
                job->next = done;
                done = job;
            }
            else {
                dx_warn ("worker: abandoning job %s attempt %" JSON_INTEGER_FORMAT
                         " still running", job->id, job->attempt);
                atomic_store (&job->cancelled, 1);
                job->abandoned = 1;
                pthread_detach (job->thread);
            }
        }
        else
            link = &job->next;
    }
    pthread_mutex_unlock (&s_lock);
    return done;
}

/*  job.progress of job when it has news since the last one. */
static void
s_send_progress (dx_worker_t *self, dx_worker_job_t *job)
{
    pthread_mutex_lock (&s_lock);
    char *progress = job->progress;
    job->progress = NULL;
    pthread_mutex_unlock (&s_lock);
    if (!progress)
        return;
    json_t *msg = dx_msg_new ("job.progress", NULL);
    if (msg) {
        json_object_set_new (msg, "job", json_string (job->id));
        json_object_set_new (msg, "attempt", json_integer (job->attempt));
        json_object_set_new (msg, "message", json_string (progress));
    }
    s_send (self, msg);
    free (progress);
}

/*  Joins, reports and frees the finished jobs. */
static void
s_collect (dx_worker_t *self, int abandon)
{
    dx_worker_job_t *done = s_take_finished (self, abandon);
    while (done) {
        dx_worker_job_t *job = done;
        done = job->next;
        pthread_join (job->thread, NULL);
        s_send_progress (self, job);    /* its last words come before its result */
        s_send_result (self, job);
        s_job_free (&job);
    }
}

static void
s_abandon (dx_worker_t *self)
{
    s_collect (self, 1);
}


//  ---------------------------------------------------------------------
//  The loop

/*  One message from the scheduler. */
static void
s_receive (dx_worker_t *self)
{
    char err [DX_ERR_LEN];
    zframe_t *raw = NULL;
    json_t *msg = dx_msg_recv (self->dealer, NULL, &raw, err, sizeof err);
    self->last_heard = dx_mono_ms ();
    self->outage_logged = 0;
    if (!msg) {
        //  A job.assign we cannot read still has to be answered, or it
        //  would come back after every lease
        json_t *envelope = raw? dx_msg_decode_envelope (zframe_data (raw),
                                                        zframe_size (raw), NULL, 0): NULL;
        dx_warn ("worker: malformed message from the scheduler: %s", err);
        if (streq (dx_msg_type (envelope)? dx_msg_type (envelope): "", "job.assign")
        &&  dx_msg_str (envelope, "job"))
            s_refuse (self, dx_msg_str (envelope, "job"), dx_msg_int (envelope, "attempt", 0),
                      1, "INVALID_JOB", err);
        if (envelope) {
            dx_worker_wipe_credentials (envelope);
            json_decref (envelope);
        }
    }
    if (raw) {
        sodium_memzero (zframe_data (raw), zframe_size (raw));
        zframe_destroy (&raw);
    }
    if (!msg)
        return;

    const char *type = dx_msg_type (msg);
    if (streq (type, "worker.welcome")) {
        int64_t heartbeat = dx_msg_int (msg, "heartbeat_ms", self->heartbeat_ms);
        int64_t lease = dx_msg_int (msg, "lease_ms", self->lease_ms);
        self->heartbeat_ms = heartbeat < S_HEARTBEAT_MIN? S_HEARTBEAT_MIN:
                             heartbeat > S_HEARTBEAT_MAX? S_HEARTBEAT_MAX: heartbeat;
        self->lease_ms = lease < S_LEASE_MIN? S_LEASE_MIN:
                         lease > S_LEASE_MAX? S_LEASE_MAX: lease;
        if (!self->welcomed)
            dx_info ("worker: %s welcomed by %s (heartbeat %" PRId64 " ms, lease %"
                     PRId64 " ms)", self->name, self->endpoint, self->heartbeat_ms,
                     self->lease_ms);
        self->welcomed = 1;
        self->next_heartbeat = dx_mono_ms () + self->heartbeat_ms;
    }
    else
    if (streq (type, "heartbeat"))
        ;                               /* being heard is all it says */
    else
    if (streq (type, "worker.reconnect")) {
        dx_info ("worker: the scheduler does not know us; announcing again");
        s_announce (self);
    }
    else
    if (streq (type, "job.assign")) {
        s_start_job (self, msg);
        msg = NULL;
    }
    else
    if (streq (type, "job.cancel")) {
        //  That attempt, and any older one, no longer counts; a newer
        //  attempt of the same job (it may run here too) goes on
        const char *id = dx_msg_str (msg, "job");
        json_int_t attempt = dx_msg_int (msg, "attempt", 0);
        int found = 0;
        for (dx_worker_job_t *job = self->jobs; job; job = job->next)
            if (streq (job->id, id) && job->attempt <= attempt) {
                atomic_store (&job->cancelled, 1);
                found = 1;
            }
        dx_info ("worker: job %s attempt %" JSON_INTEGER_FORMAT " cancelled%s", id, attempt,
                 found? "": " (not running here)");
    }
    else
        dx_warn ("worker: ignoring a %s message, which is not for workers", type);
    json_decref (msg);
}

/*  The timers: scheduler silence, heartbeat, lease renewals. */
static void
s_tick (dx_worker_t *self)
{
    //  The job threads' wake-up is only quicker: one that could not be
    //  sent (no sockets left) must not leave a finished job renewed for ever
    s_collect (self, 0);
    int64_t now = dx_mono_ms ();
    if (now - self->last_heard >= S_SILENT_BEATS * self->heartbeat_ms) {
        if (!self->outage_logged)
            dx_warn ("worker: scheduler at %s silent for %" PRId64 " ms; reconnecting",
                     self->endpoint, now - self->last_heard);
        else
            dx_debug ("worker: scheduler still silent; reconnecting");
        self->outage_logged = 1;
        if (s_connect (self))
            self->last_heard = now;     /* try again after another interval */
    }
    if (self->welcomed && now >= self->next_heartbeat) {
        json_t *msg = dx_msg_new ("heartbeat", NULL);
        if (msg) {
            json_object_set_new (msg, "active", s_active (self));
            json_t *metrics = dx_metrics_snapshot (dx_cloud_metrics ());
            if (json_object_size (metrics))
                json_object_set (msg, "metrics", metrics);
            json_decref (metrics);
        }
        s_send (self, msg);
        self->next_heartbeat = now + self->heartbeat_ms;
    }
    for (dx_worker_job_t *job = self->jobs; job; job = job->next)
        if (now >= job->next_renew) {
            json_t *msg = dx_msg_new ("job.renew", NULL);
            if (msg) {
                json_object_set_new (msg, "job", json_string (job->id));
                json_object_set_new (msg, "attempt", json_integer (job->attempt));
            }
            s_send (self, msg);
            job->next_renew = now + job->renew_every;
        }
}

/*  Milliseconds until the nearest timer. */
static long
s_timeout (dx_worker_t *self)
{
    int64_t now = dx_mono_ms ();
    int64_t next = self->last_heard + S_SILENT_BEATS * self->heartbeat_ms;
    if (self->welcomed && self->next_heartbeat < next)
        next = self->next_heartbeat;
    for (dx_worker_job_t *job = self->jobs; job; job = job->next)
        if (job->next_renew < next)
            next = job->next_renew;
    if (self->stopping && self->drain_deadline < next)
        next = self->drain_deadline;
    return next <= now? 0: (long) (next - now);
}

/*  Binds the results socket and connects to the scheduler. */
static int
s_start (dx_worker_t *self)
{
    if (!self->pull) {
        self->pull = zsock_new (ZMQ_PULL);
        if (!self->pull || zsock_bind (self->pull, "%s", self->inproc)) {
            dx_error ("worker: cannot bind %s", self->inproc);
            return -1;
        }
    }
    if (s_connect (self))
        return -1;
    dx_info ("worker: %s (service %s, capacity %d) connecting to %s", self->name,
             self->service, self->capacity, self->endpoint);
    return 0;
}

/*  The loop proper; pipe is the actor's pipe or NULL. */
static int
s_run (dx_worker_t *self, zsock_t *pipe)
{
    int terminated = 0;
    while (true) {
        if (!self->stopping && (zsys_interrupted || terminated)) {
            self->stopping = 1;
            self->drain_deadline = dx_mono_ms () + self->drain_ms;
            dx_info ("worker: stopping; waiting up to %" PRId64 " ms for %d running job%s",
                     self->drain_ms, self->running, self->running == 1? "": "s");
        }
        if (self->stopping
        && (self->running == 0 || dx_mono_ms () >= self->drain_deadline))
            break;

        zmq_pollitem_t items [4];
        int count = 0;
        items [count++] = (zmq_pollitem_t) { zsock_resolve (self->pull), 0, ZMQ_POLLIN, 0 };
        if (self->dealer)
            items [count++] = (zmq_pollitem_t) { zsock_resolve (self->dealer), 0, ZMQ_POLLIN, 0 };
        if (self->watch)
            items [count++] = (zmq_pollitem_t) { zsock_resolve (self->watch), 0, ZMQ_POLLIN, 0 };
        if (pipe && !terminated)
            items [count++] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll (items, count, s_timeout (self));
        if (rc == -1) {
            if (errno == EINTR)
                continue;               /* a signal: zsys_interrupted says which */
            dx_error ("worker: polling failed: %s", zmq_strerror (errno));
            break;
        }
        for (int i = 0; i < count; i++) {
            if (!(items [i].revents & ZMQ_POLLIN))
                continue;
            if (items [i].socket == zsock_resolve (self->pull)) {
                char *wake = zstr_recv (self->pull);
                zstr_free (&wake);
                for (dx_worker_job_t *job = self->jobs; job; job = job->next)
                    s_send_progress (self, job);
                s_collect (self, 0);
            }
            else
            if (self->dealer && items [i].socket == zsock_resolve (self->dealer))
                s_receive (self);
            else
            if (self->watch && items [i].socket == zsock_resolve (self->watch))
                dx_curve_client_refused (self->curve, self->watch);     /* logs it */
            else
            if (pipe && items [i].socket == zsock_resolve (pipe)) {
                char *command = zstr_recv (pipe);
                if (!command || streq (command, "$TERM"))
                    terminated = 1;
                zstr_free (&command);
            }
        }
        s_tick (self);
    }
    //  Results that came in meanwhile go out before the bye
    s_collect (self, 0);
    s_abandon (self);
    json_t *bye = dx_msg_new ("worker.bye", NULL);
    s_send (self, bye);
    if (self->dealer)
        zsock_set_linger (self->dealer, S_BYE_LINGER_MS);
    s_hang_up (self);
    dx_info ("worker: %s stopped", self->name);
    return 0;
}

int
dx_worker_run (dx_worker_t *self)
{
    if (!self || s_start (self))
        return -1;
    return s_run (self, NULL);
}

void
dx_worker_actor (zsock_t *pipe, void *args)
{
    dx_worker_args_t *config = (dx_worker_args_t *) args;
    dx_worker_t *self = dx_worker_new (config->service, config->capacity,
                                       config->endpoint, config->handler, config->arg);
    if (self && config->drain_ms >= 0)
        self->drain_ms = config->drain_ms;
    if (!self || s_start (self)) {
        dx_worker_destroy (&self);
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    s_run (self, pipe);
    dx_worker_destroy (&self);
}
