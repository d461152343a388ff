/*  sch_read: loads, the list, snapshots, credentials and events, one-shot
    or in the read batch, decoded from what Redis holds. See sch_read.h.

    Redis keeps text: numbers as decimal strings, "" for none, groups, jobs
    and resources as JSON. Decoding gives back the types the API shows.
    The read batch is one sch_batch_t of every queued read's commands; a
    ticket says where its replies start and what to decode them as. */
#include "sch_read.h"
#include "sch_store.h"
#include "dx_log.h"
#include "dx_msg.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*  The parts a load reads, in the order their replies come. */
static const struct { unsigned flag; const char *part; } s_parts [] = {
    { SCH_LOAD_CLUSTER, "cluster" }, { SCH_LOAD_CONFIG, "config" },
    { SCH_LOAD_SECRETS, "secrets" }, { SCH_LOAD_GROUPS, "groups" },
    { SCH_LOAD_DEPLOYMENT, "deployment" }, { SCH_LOAD_JOBS, "jobs" },
    { SCH_LOAD_RESOURCES, "resources" } };
#define S_NPARTS (sizeof s_parts / sizeof s_parts [0])

/*  The parts the cache may keep: the spec and the deployment record,
    small and read by every GET. Secrets, jobs and resources are only read
    by changes and the engine, which always read Redis. */
#define S_CACHED (SCH_LOAD_CLUSTER | SCH_LOAD_CONFIG | SCH_LOAD_GROUPS | SCH_LOAD_DEPLOYMENT)

/*  Fields that are numbers in the API: of the config, of the deployment
    record, of events. And event fields that are booleans. */
static const char *s_config_numbers [] = { "masters", NULL };
static const char *s_deployment_numbers [] = {
    "generation", "observed_generation", "parallelism", "steps_done", "steps_total", NULL
};
static const char *s_event_numbers [] = {
    "generation", "attempt", "next_attempt", "parallelism", NULL
};
static const char *s_event_booleans [] = { "permanent", NULL };

/*  The fields of the cluster hash the list shows, state (the mirror of the
    deployment's) last. */
static const char *s_list_fields [] = { "provider", "type", "created_at", "state", NULL };

#define S_LIST_SLICE 1000       /* names per round trip of a list read whole */

typedef enum { S_LOAD, S_EVENTS } s_kind_t;

/*  A queued read: where its replies start in the batch, what it is. */
typedef struct {
    size_t first;
    s_kind_t kind;
    unsigned what;              /* of a load */
    char name [24];             /* the cluster (names are at most 16) */
    json_t *kept;               /* served from the cache: its parts, a reference */
    uint64_t serial;            /* the kept read it is, 0 when none */
} s_ticket_t;

struct sch_read {
    sch_redis_t *redis;         /* borrowed */
    sch_cache_t *cache;         /* borrowed */
    uint64_t session;           /* of the connection the cache's reads came on */
    sch_batch_t batch;          /* queued, not sent */
    s_ticket_t *tickets;        /* one per queued read */
    size_t ntickets, tickets_cap;
    redisReply **replies;       /* after the flush: one per command */
    size_t nreplies;
    uint64_t flushed_at;        /* the cache's epoch when the batch was sent */
};

sch_read_t *
sch_read_new (sch_redis_t *redis, sch_cache_t *cache)
{
    sch_read_t *self = calloc (1, sizeof *self);
    if (self) {
        self->redis = redis;
        self->cache = cache;
        self->session = sch_redis_session (redis);
    }
    return self;
}

void
sch_read_destroy (sch_read_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_read_t *self = *self_p;
    sch_read_reset (self);
    free (self->tickets);
    free (self);
    *self_p = NULL;
}

/*  The cache, first emptied if the connection was lost since it was last
    looked at: Redis may have come back without what it had. */
static sch_cache_t *
s_read_cache (sch_read_t *self)
{
    uint64_t session = sch_redis_session (self->redis);
    if (session != self->session) {
        sch_cache_purge (self->cache);
        self->session = session;
    }
    return self->cache;
}


//  ---------------------------------------------------------------------
//  Decoding

/*  1 if name is in the NULL-terminated list. */
static int
s_read_listed (const char **list, const char *name)
{
    for (int i = 0; list [i]; i++)
        if (strcmp (list [i], name) == 0)
            return 1;
    return 0;
}

/*  The JSON value of stored text: an integer when the field is one of
    numbers and the text is one, else the string (null: not UTF-8, which
    Dexter never writes). */
static json_t *
s_read_value (const char **numbers, const char *field, const char *text, size_t len)
{
    if (numbers && s_read_listed (numbers, field) && isdigit ((unsigned char) *text)) {
        char *end;
        errno = 0;
        long long n = strtoll (text, &end, 10);
        if (errno == 0 && end == text + len)
            return json_integer (n);
    }
    json_t *value = json_stringn (text, len);
    return value? value: json_null ();
}

/*  A hash reply (flat array of field, value) as a JSON object; with
    empty_null "" becomes null. NULL for an empty hash (a missing key). */
static json_t *
s_read_hash (const redisReply *reply, const char **numbers, int empty_null)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
        return NULL;
    json_t *obj = json_object ();
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *field = reply->element [i], *text = reply->element [i + 1];
        if (!field->str || !text->str)
            continue;
        json_object_set_new (obj, field->str, empty_null && !text->len
                             ? json_null (): s_read_value (numbers, field->str, text->str,
                                                           text->len));
    }
    return obj;
}

/*  A hash of JSON objects (groups, jobs, resources) as one object; NULL
    with the failure recorded when one is not an object. */
static json_t *
s_read_json_hash (sch_read_t *self, const redisReply *reply, const char *part,
                  const char *name)
{
    json_t *value = json_object ();
    for (size_t e = 0; e + 1 < reply->elements; e += 2) {
        json_t *member = json_loads (reply->element [e + 1]->str, 0, NULL);
        if (!json_is_object (member)) {
            json_decref (member);
            json_decref (value);
            sch_redis_fail (self->redis, DX_INTERNAL, "%s %s of cluster %s holds malformed "
                            "JSON in redis", part, reply->element [e]->str, name);
            dx_error ("%s", sch_redis_error (self->redis));
            return NULL;
        }
        json_object_set_new (value, reply->element [e]->str, member);
    }
    return value;
}

/*  Appends one HGETALL per part asked for. */
static void
s_read_load_cmds (sch_batch_t *batch, const char *name, unsigned what)
{
    char key [128];
    for (size_t i = 0; i < S_NPARTS; i++)
        if (what & s_parts [i].flag) {
            sch_batch_cmd (batch, "HGETALL", NULL);
            sch_batch_arg (batch, sch_store_key (key, sizeof key, name, s_parts [i].part));
        }
}

/*  Decodes the replies of s_read_load_cmds into the object sch_read_load
    returns. The state mirrored in the cluster hash is the store's, not the
    spec's: it is not part of the cluster object. */
static json_t *
s_read_decode_load (sch_read_t *self, redisReply **replies, const char *name, unsigned what)
{
    json_t *result = json_object ();
    size_t r = 0;
    for (size_t i = 0; i < S_NPARTS && result; i++) {
        if (!(what & s_parts [i].flag))
            continue;
        redisReply *reply = replies [r++];
        json_t *value = NULL;
        if (sch_redis_check (self->redis, reply, "a read")) {
            json_decref (result);
            return NULL;
        }
        switch (s_parts [i].flag) {
            case SCH_LOAD_CLUSTER:
                value = s_read_hash (reply, NULL, 0);
                json_object_del (value, "state");
                break;
            case SCH_LOAD_CONFIG:
                value = s_read_hash (reply, s_config_numbers, 0);
                break;
            case SCH_LOAD_SECRETS:
                value = s_read_hash (reply, NULL, 0);
                if (!value)
                    value = json_object ();
                break;
            case SCH_LOAD_DEPLOYMENT:
                value = s_read_hash (reply, s_deployment_numbers, 1);
                break;
            default:                    /* groups, jobs, resources */
                value = s_read_json_hash (self, reply, s_parts [i].part, name);
                if (!value) {
                    json_decref (result);
                    return NULL;
                }
        }
        json_object_set_new (result, s_parts [i].part, value? value: json_null ());
    }
    return result;
}

/*  The clusters of names (count of them, rows their HMGET replies)
    appended to entries; an index member without a cluster is left out.
    A cluster written before the state was mirrored (no state field) costs
    one more round trip for the HGETs of those deployment states. 0, or
    -1 on failure. */
static int
s_read_list_rows (sch_read_t *self, char **names, size_t count, redisReply **rows,
                  json_t *entries)
{
    char key [128];
    sch_batch_t batch = { 0 };
    int rc = 0;
    //  Which clusters lack the mirror: read their deployment state instead
    size_t *missing = NULL, nmissing = 0;
    redisReply **states = NULL;
    for (size_t i = 0; i < count && rc == 0; i++) {
        redisReply *fields = rows [i];
        rc = sch_redis_check (self->redis, fields, "the cluster list");
        if (rc || fields->type != REDIS_REPLY_ARRAY || fields->elements != 4
        ||  fields->element [0]->type != REDIS_REPLY_STRING
        ||  fields->element [3]->type == REDIS_REPLY_STRING)
            continue;
        if (!missing && !(missing = calloc (count, sizeof *missing))) {
            sch_redis_fail (self->redis, DX_INTERNAL, "out of memory listing clusters");
            rc = -1;
            break;
        }
        missing [nmissing++] = i;
        sch_batch_cmd (&batch, "HGET", NULL);
        sch_batch_arg (&batch, sch_store_key (key, sizeof key, names [i], "deployment"));
        sch_batch_arg (&batch, "state");
    }
    if (rc == 0 && nmissing)
        rc = sch_redis_pipeline (self->redis, &batch, &states);
    sch_batch_free (&batch);
    for (size_t i = 0, m = 0; rc == 0 && i < count; i++) {
        redisReply *fields = rows [i];
        if (fields->type != REDIS_REPLY_ARRAY || fields->elements != 4
        ||  fields->element [0]->type != REDIS_REPLY_STRING)
            continue;                   /* index member without a cluster: skip */
        const char *state = fields->element [3]->str;
        if (m < nmissing && missing [m] == i) {
            redisReply *reply = states [m++];
            if (sch_redis_check (self->redis, reply, "the cluster list")) {
                rc = -1;
                break;
            }
            state = reply->str;
        }
        json_t *entry = json_object ();
        json_object_set_new (entry, "name", json_string (names [i]));
        json_object_set_new (entry, "provider", json_string (fields->element [0]->str));
        json_object_set_new (entry, "type", fields->element [1]->str
                             ? json_string (fields->element [1]->str): json_null ());
        json_object_set_new (entry, "state", json_string (state? state: "init"));
        json_object_set_new (entry, "created_at", fields->element [2]->str
                             ? json_string (fields->element [2]->str): json_null ());
        json_array_append_new (entries, entry);
    }
    sch_redis_replies_free (states, nmissing);
    free (missing);
    return rc;
}

/*  An XRANGE reply as event objects; NULL for an error reply. */
static json_t *
s_read_decode_events (sch_read_t *self, const redisReply *reply)
{
    if (sch_redis_check (self->redis, reply, "an events read"))
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
            const redisReply *text = fields->element [f + 1];
            if (!field || !text->str || strcmp (field, "id") == 0)
                continue;
            int boolean = s_read_listed (s_event_booleans, field)
                       && (strcmp (text->str, "true") == 0 || strcmp (text->str, "false") == 0);
            json_object_set_new (event, field, boolean
                                 ? json_boolean (strcmp (text->str, "true") == 0)
                                 : s_read_value (s_event_numbers, field, text->str, text->len));
        }
        json_array_append_new (events, event);
    }
    return events;
}


//  ---------------------------------------------------------------------
//  One-shot reads

/*  Sends batch (freed) and gives its one reply (caller frees), NULL on
    failure or an error reply. */
static redisReply *
s_read_one (sch_read_t *self, sch_batch_t *batch, const char *what)
{
    redisReply **replies;
    int rc = sch_redis_pipeline (self->redis, batch, &replies);
    sch_batch_free (batch);
    if (rc)
        return NULL;
    redisReply *reply = replies [0];
    free (replies);
    if (sch_redis_check (self->redis, reply, what)) {
        freeReplyObject (reply);
        return NULL;
    }
    return reply;
}

json_t *
sch_read_load (sch_read_t *self, const char *name, unsigned what)
{
    sch_batch_t batch = { 0 };
    s_read_load_cmds (&batch, name, what);
    redisReply **replies;
    size_t count = sch_batch_size (&batch);
    int rc = sch_redis_pipeline (self->redis, &batch, &replies);
    sch_batch_free (&batch);
    if (rc)
        return NULL;
    json_t *result = s_read_decode_load (self, replies, name, what);
    sch_redis_replies_free (replies, count);
    return result;
}

json_t *
sch_read_list (sch_read_t *self)
{
    sch_read_list_t *list = sch_read_list_new (NULL, 0);
    json_t *entries = json_array ();
    int rc = list && entries? 0: -1;
    while (rc == 0)
        rc = sch_read_list_next (self, list, S_LIST_SLICE, entries);
    sch_read_list_destroy (&list);
    if (rc < 0) {
        json_decref (entries);
        return NULL;
    }
    return entries;
}

int
sch_read_snapshot (sch_read_t *self, const char *name, int64_t generation,
                   json_t **snapshot_p)
{
    *snapshot_p = NULL;
    char key [128];
    sch_batch_t batch = { 0 };
    sch_batch_cmd (&batch, "HGET", sch_store_key (key, sizeof key, name, "specs"), NULL);
    sch_batch_argf (&batch, "%lld", (long long) generation);
    redisReply *reply = s_read_one (self, &batch, "a snapshot read");
    if (!reply)
        return -1;
    int rc = 0;
    if (reply->type == REDIS_REPLY_STRING && !(*snapshot_p = json_loads (reply->str, 0, NULL))) {
        sch_redis_fail (self->redis, DX_INTERNAL, "snapshot %lld of cluster %s holds "
                        "malformed JSON", (long long) generation, name);
        rc = -1;
    }
    freeReplyObject (reply);
    return rc;
}

int
sch_read_credentials (sch_read_t *self, const char *name, char **sealed_p)
{
    *sealed_p = NULL;
    char key [128];
    sch_batch_t batch = { 0 };
    sch_batch_cmd (&batch, "GET", sch_store_key (key, sizeof key, name, "credentials"), NULL);
    redisReply *reply = s_read_one (self, &batch, "a credentials read");
    if (!reply)
        return -1;
    int rc = 0;
    if (reply->type == REDIS_REPLY_STRING && !(*sealed_p = strdup (reply->str))) {
        sch_redis_fail (self->redis, DX_INTERNAL, "out of memory reading credentials");
        rc = -1;
    }
    freeReplyObject (reply);
    return rc;
}


//  ---------------------------------------------------------------------
//  The list of clusters, a slice at a time

struct sch_read_list {
    char *from;                 /* names come after this one; NULL: from the first */
    char **names;               /* found in the index, their rows not read yet */
    size_t count;               /* of names */
    size_t limit;               /* names the list takes at most; 0: all */
    size_t taken;               /* names taken, rows read or not */
    bool ended;                 /* the index has no more names for the list */
    bool beyond;                /* it has names beyond the limit */
};

sch_read_list_t *
sch_read_list_new (const char *after, size_t limit)
{
    sch_read_list_t *self = calloc (1, sizeof *self);
    if (self && after && *after && !(self->from = strdup (after))) {
        free (self);
        return NULL;
    }
    if (self)
        self->limit = limit;
    return self;
}

/*  Forgets the names found. */
static void
s_read_list_forget (sch_read_list_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        free (self->names [i]);
    free (self->names);
    self->names = NULL;
    self->count = 0;
}

void
sch_read_list_destroy (sch_read_list_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_read_list_t *self = *self_p;
    s_read_list_forget (self);
    free (self->from);
    free (self);
    *self_p = NULL;
}

/*  Takes the names of a ZRANGE reply as the ones found. 0, or -1 with the
    failure recorded. */
static int
s_read_list_found (sch_read_t *self, sch_read_list_t *list, const redisReply *found)
{
    if (sch_redis_check (self->redis, found, "the cluster index"))
        return -1;
    if (found->type != REDIS_REPLY_ARRAY) {
        sch_redis_fail (self->redis, DX_INTERNAL, "%s is not a sorted set", SCH_STORE_INDEX);
        return -1;
    }
    list->names = calloc (found->elements + 1, sizeof *list->names);
    for (size_t i = 0; list->names && i < found->elements; i++)
        if (found->element [i]->str
        && (list->names [list->count] = strdup (found->element [i]->str)))
            list->count++;
    if (!list->names || list->count < found->elements) {
        sch_redis_fail (self->redis, DX_INTERNAL, "out of memory listing clusters");
        return -1;
    }
    list->taken += list->count;
    return 0;
}

int
sch_read_list_next (sch_read_t *self, sch_read_list_t *list, size_t count, json_t *entries)
{
    //  The names to ask for: what the limit leaves, at most count; at the
    //  limit, one, to learn whether the index holds more
    size_t room = list->limit? list->limit - list->taken: SIZE_MAX;
    size_t ask = list->ended? 0: room == 0? 1: room < count? room: count;
    char key [128];
    sch_batch_t batch = { 0 };
    for (size_t i = 0; i < list->count; i++) {
        sch_batch_cmd (&batch, "HMGET", sch_store_key (key, sizeof key, list->names [i],
                                                       "cluster"), NULL);
        for (int f = 0; s_list_fields [f]; f++)
            sch_batch_arg (&batch, s_list_fields [f]);
    }
    const char *from = list->count? list->names [list->count - 1]: list->from;
    if (ask) {
        sch_batch_cmd (&batch, "ZRANGE", SCH_STORE_INDEX, NULL);
        if (from)
            sch_batch_argf (&batch, "(%s", from);
        else
            sch_batch_arg (&batch, "-");
        sch_batch_arg (&batch, "+");
        sch_batch_arg (&batch, "BYLEX");
        sch_batch_arg (&batch, "LIMIT");
        sch_batch_arg (&batch, "0");
        sch_batch_argf (&batch, "%zu", ask);
    }
    size_t sent = sch_batch_size (&batch);
    redisReply **replies = NULL;
    int rc = sent? sch_redis_pipeline (self->redis, &batch, &replies): 0;
    sch_batch_free (&batch);
    if (rc)
        return -1;
    rc = s_read_list_rows (self, list->names, list->count, replies, entries);
    if (rc == 0) {
        //  The list goes on after the last name whose row was read
        if (list->count) {
            free (list->from);
            list->from = list->names [list->count - 1];
            list->names [list->count - 1] = NULL;
        }
        s_read_list_forget (list);
        const redisReply *found = ask? replies [sent - 1]: NULL;
        if (found && room == 0) {
            rc = sch_redis_check (self->redis, found, "the cluster index");
            list->beyond = rc == 0 && found->type == REDIS_REPLY_ARRAY && found->elements > 0;
            list->ended = true;
        }
        else
        if (found) {
            rc = s_read_list_found (self, list, found);
            list->ended = rc == 0 && list->count < ask;
        }
    }
    sch_redis_replies_free (replies, sent);
    return rc? -1: list->ended && list->count == 0;
}

const char *
sch_read_list_beyond (const sch_read_list_t *list)
{
    return list->beyond? list->from: NULL;
}


//  ---------------------------------------------------------------------
//  The read batch

/*  Records a read just appended to the batch (its commands start at
    first) and returns its ticket; -1 when out of memory. */
static int
s_read_ticket (sch_read_t *self, s_kind_t kind, const char *name, unsigned what, size_t first)
{
    if (self->replies) {
        sch_redis_fail (self->redis, DX_INTERNAL, "a read was queued into a sent batch");
        return -1;
    }
    if (self->ntickets == self->tickets_cap) {
        size_t cap = self->tickets_cap? self->tickets_cap * 2: 64;
        s_ticket_t *grown = realloc (self->tickets, cap * sizeof *grown);
        if (!grown) {
            sch_redis_fail (self->redis, DX_INTERNAL, "out of memory queueing a read");
            return -1;
        }
        self->tickets = grown;
        self->tickets_cap = cap;
    }
    s_ticket_t *ticket = &self->tickets [self->ntickets];
    *ticket = (s_ticket_t) {
        .first = first, .kind = kind, .what = what
    };
    size_t len = name? strnlen (name, sizeof ticket->name - 1): 0;
    memcpy (ticket->name, name? name: "", len);
    ticket->name [len] = 0;
    return (int) self->ntickets++;
}

/*  The ticket, when it is one of the batch and of that kind, else NULL
    with the failure recorded. */
static s_ticket_t *
s_read_ticket_of (sch_read_t *self, int ticket, s_kind_t kind)
{
    if (ticket < 0 || (size_t) ticket >= self->ntickets || self->tickets [ticket].kind != kind) {
        sch_redis_fail (self->redis, DX_INTERNAL, "no such read in the batch");
        return NULL;
    }
    return &self->tickets [ticket];
}

/*  The replies of a ticket after the flush, or NULL. */
static redisReply **
s_read_replies (sch_read_t *self, const s_ticket_t *ticket)
{
    if (!self->replies) {
        sch_redis_fail (self->redis, DX_INTERNAL, "the read batch was not sent");
        return NULL;
    }
    return self->replies + ticket->first;
}

int
sch_read_queue_load (sch_read_t *self, const char *name, unsigned what)
{
    size_t first = sch_batch_size (&self->batch);
    uint64_t serial = 0;
    json_t *kept = self->replies || (what & ~S_CACHED)
                 ? NULL: sch_cache_get (s_read_cache (self), name, what, &serial);
    if (!kept)
        s_read_load_cmds (&self->batch, name, what);
    int ticket = s_read_ticket (self, S_LOAD, name, what, first);
    if (ticket < 0)
        json_decref (kept);
    else {
        self->tickets [ticket].kept = kept;
        self->tickets [ticket].serial = serial;
    }
    return ticket;
}

int
sch_read_queue_events (sch_read_t *self, const char *name, const char *after, int64_t count)
{
    char key [128];
    size_t first = sch_batch_size (&self->batch);
    sch_batch_cmd (&self->batch, "XRANGE", sch_store_key (key, sizeof key, name, "events"),
                   NULL);
    if (after)
        sch_batch_argf (&self->batch, "(%s", after);
    else
        sch_batch_arg (&self->batch, "-");
    sch_batch_arg (&self->batch, "+");
    sch_batch_arg (&self->batch, "COUNT");
    sch_batch_argf (&self->batch, "%lld", (long long) count);
    return s_read_ticket (self, S_EVENTS, name, 0, first);
}

int
sch_read_flush (sch_read_t *self)
{
    size_t count = sch_batch_size (&self->batch);
    if (self->replies || count == 0)
        return 0;
    self->flushed_at = sch_cache_epoch (s_read_cache (self));
    int rc = sch_redis_pipeline (self->redis, &self->batch, &self->replies);
    if (rc == 0)
        self->nreplies = count;
    sch_batch_free (&self->batch);
    return rc;
}

/*  A new object holding the parts `what` of kept parts (shared), or NULL
    when out of memory. A read of the same batch may have added parts to
    the cache's object, or put an equal copy in place of one (nothing
    changed the cluster since), so what is taken equals what was there
    when the read was queued. */
static json_t *
s_read_pick (const json_t *kept, unsigned what)
{
    json_t *result = json_object ();
    for (size_t i = 0; i < S_NPARTS && result; i++)
        if ((what & s_parts [i].flag)
        &&  json_object_set (result, s_parts [i].part, json_object_get (kept, s_parts [i].part))) {
            json_decref (result);
            result = NULL;
        }
    return result;
}

json_t *
sch_read_load_result (sch_read_t *self, int ticket)
{
    s_ticket_t *t = s_read_ticket_of (self, ticket, S_LOAD);
    if (t && t->kept) {
        json_t *result = s_read_pick (t->kept, t->what);
        json_decref (t->kept);
        t->kept = NULL;
        if (!result)
            sch_redis_fail (self->redis, DX_INTERNAL, "out of memory");
        return result;
    }
    redisReply **replies = t? s_read_replies (self, t): NULL;
    json_t *result = replies? s_read_decode_load (self, replies, t->name, t->what): NULL;
    if (result && !(t->what & ~S_CACHED))
        t->serial = sch_cache_put (s_read_cache (self), t->name, t->what, result,
                                   self->flushed_at);
    return result;
}

json_t *
sch_read_events_result (sch_read_t *self, int ticket)
{
    s_ticket_t *t = s_read_ticket_of (self, ticket, S_EVENTS);
    redisReply **replies = t? s_read_replies (self, t): NULL;
    return replies? s_read_decode_events (self, replies [0]): NULL;
}

void
sch_read_reset (sch_read_t *self)
{
    for (size_t i = 0; i < self->ntickets; i++)
        json_decref (self->tickets [i].kept);
    sch_batch_free (&self->batch);
    sch_redis_replies_free (self->replies, self->nreplies);
    self->replies = NULL;
    self->nreplies = 0;
    self->ntickets = 0;
}

/*  The ticket of a load the cache keeps, or NULL. */
static s_ticket_t *
s_read_kept_load (sch_read_t *self, int ticket)
{
    if (ticket < 0 || (size_t) ticket >= self->ntickets)
        return NULL;
    s_ticket_t *t = &self->tickets [ticket];
    return t->kind == S_LOAD && t->serial? t: NULL;
}

json_t *
sch_read_memo (sch_read_t *self, int ticket, const char *key)
{
    s_ticket_t *t = s_read_kept_load (self, ticket);
    return t? sch_cache_memo (s_read_cache (self), t->name, t->serial, key): NULL;
}

void
sch_read_memo_put (sch_read_t *self, int ticket, const char *key, json_t *text)
{
    s_ticket_t *t = s_read_kept_load (self, ticket);
    if (t)
        sch_cache_memo_put (s_read_cache (self), t->name, t->serial, key, text);
}
