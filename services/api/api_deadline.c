/*  api_deadline: per-connection request deadlines, soonest first. */
#include "api_deadline.h"
#include "dx_log.h"

#include <stdlib.h>
#include <sys/select.h>
#include <sys/socket.h>

typedef enum {
    S_CLOSED,                   /* no connection on this socket */
    S_IDLE,                     /* between requests */
    S_RECEIVING,                /* a request is coming: its time runs */
    S_IN,                       /* the request is in */
    S_CUT                       /* cut off, not closed yet */
} s_state_t;

/*  A socket's entry. Those receiving form a list in the order their time
    started, which with one limit for all is the order they fall due. */
typedef struct {
    s_state_t state;
    int64_t started;            /* monotonic ms, while receiving */
    int prev, next;             /* sockets in the list, -1 for none */
} s_conn_t;

struct api_deadline_t {
    int64_t limit_ms;
    int head, tail;             /* the soonest due and the latest, or -1 */
    s_conn_t conns [FD_SETSIZE];
};

api_deadline_t *
api_deadline_new (int64_t limit_ms)
{
    api_deadline_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->limit_ms = limit_ms;
    self->head = self->tail = -1;
    return self;
}

void
api_deadline_destroy (api_deadline_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

/*  The entry of fd, or NULL when fd is out of range. */
static s_conn_t *
s_conn (api_deadline_t *self, int fd)
{
    return fd >= 0 && fd < FD_SETSIZE ? &self->conns [fd] : NULL;
}

/*  Takes fd out of the list, into state. */
static void
s_unlink (api_deadline_t *self, int fd, s_state_t state)
{
    s_conn_t *conn = &self->conns [fd];
    if (conn->state == S_RECEIVING) {
        if (conn->prev >= 0)
            self->conns [conn->prev].next = conn->next;
        else
            self->head = conn->next;
        if (conn->next >= 0)
            self->conns [conn->next].prev = conn->prev;
        else
            self->tail = conn->prev;
    }
    conn->state = state;
}

/*  Puts fd at the end of the list, its time running from now. */
static void
s_receive (api_deadline_t *self, int fd, int64_t now)
{
    s_conn_t *conn = &self->conns [fd];
    conn->state = S_RECEIVING;
    conn->started = now;
    conn->prev = self->tail;
    conn->next = -1;
    if (self->tail >= 0)
        self->conns [self->tail].next = fd;
    else
        self->head = fd;
    self->tail = fd;
}

int
api_deadline_open (api_deadline_t *self, int fd, int64_t now)
{
    s_conn_t *conn = s_conn (self, fd);
    if (!conn)
        return -1;
    s_unlink (self, fd, S_CLOSED);      /* a socket number is reused */
    s_receive (self, fd, now);
    return 0;
}

void
api_deadline_close (api_deadline_t *self, int fd)
{
    if (s_conn (self, fd))
        s_unlink (self, fd, S_CLOSED);
}

void
api_deadline_start (api_deadline_t *self, int fd, int64_t now)
{
    s_conn_t *conn = s_conn (self, fd);
    if (conn && conn->state == S_IDLE)
        s_receive (self, fd, now);
}

void
api_deadline_arrived (api_deadline_t *self, int fd)
{
    s_conn_t *conn = s_conn (self, fd);
    if (conn && conn->state == S_RECEIVING)
        s_unlink (self, fd, S_IN);
}

void
api_deadline_idle (api_deadline_t *self, int fd)
{
    s_conn_t *conn = s_conn (self, fd);
    if (conn && (conn->state == S_RECEIVING || conn->state == S_IN))
        s_unlink (self, fd, S_IDLE);
}

int
api_deadline_expire (api_deadline_t *self, int64_t now)
{
    int count = 0;
    while (self->head >= 0 && self->conns [self->head].started + self->limit_ms <= now) {
        int fd = self->head;
        s_unlink (self, fd, S_CUT);
        /* Not closed: the socket is libmicrohttpd's, which reads the end
           of input next and closes the connection as if the client left. */
        shutdown (fd, SHUT_RDWR);
        count++;
    }
    if (count)
        dx_info ("cut off %d connection%s whose request was not in within %lld ms",
                 count, count == 1 ? "" : "s", (long long) self->limit_ms);
    return count;
}

long
api_deadline_timeout (api_deadline_t *self, int64_t now)
{
    if (self->head < 0)
        return -1;
    int64_t due = self->conns [self->head].started + self->limit_ms;
    return due > now ? (long) (due - now) : 0;
}

bool
api_deadline_cut (api_deadline_t *self, int fd)
{
    s_conn_t *conn = s_conn (self, fd);
    return conn && conn->state == S_CUT;
}
