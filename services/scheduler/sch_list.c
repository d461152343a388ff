/*  sch_list: cluster.list a slice at a time. See sch_list.h.

    The answer is kept as the text dx_reply_new would make of it,
    {"clusters":[...],"count":N} (and "next" for a page), each slice's
    entries dumped as they come, so that no turn of the loop dumps the
    whole list; a request without `text` gets the text parsed back. */
#include "sch_list.h"
#include "dx_msg.h"
#include "dx_spec.h"
#include "dx_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SLICE 250                     /* names read per round trip */

struct sch_list {
    sch_store_t *store;
    sch_read_list_t *cursor;
    size_t limit;                       /* 0: every cluster */
    char after [DX_NAME_MAX + 1];       /* "": from the first */
    char *text;                         /* the answer so far */
    size_t len, cap;
    size_t count;                       /* clusters in it */
    int state;                          /* 0 reading, 1 complete, -1 failed */
    json_t *answer;                     /* once complete: the text as a string */
    json_t *body;                       /* ... parsed, when a request wants it */
    char status [16];                   /* once failed: the failure */
    char error [256];
};

json_t *
sch_list_check (const json_t *request)
{
    const char *after = dx_msg_str (request, "after");
    json_int_t limit = dx_msg_int (request, "limit", 1);
    if (after && *after && !dx_spec_name_valid (after))
        return dx_reply_error (request, DX_INVALID, "after", "after must be a cluster name "
                               "(the last of the page before)");
    if (limit < 1 || limit > DX_MSG_PAGE_MAX)
        return dx_reply_error (request, DX_INVALID, "limit", "limit must be an integer from "
                               "1 to %d", DX_MSG_PAGE_MAX);
    return NULL;
}

sch_list_t *
sch_list_new (sch_store_t *store, const json_t *request)
{
    sch_list_t *self = (sch_list_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->limit = (size_t) dx_msg_int (request, "limit", 0);
    const char *after = dx_msg_str (request, "after");
    snprintf (self->after, sizeof self->after, "%s", after? after: "");
    self->cursor = sch_read_list_new (self->after, self->limit);
    if (!self->cursor)
        sch_list_destroy (&self);
    return self;
}

void
sch_list_destroy (sch_list_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sch_list_t *self = *self_p;
    sch_read_list_destroy (&self->cursor);
    free (self->text);
    json_decref (self->answer);
    json_decref (self->body);
    free (self);
    *self_p = NULL;
}

int
sch_list_serves (const sch_list_t *self, const json_t *request)
{
    const char *after = dx_msg_str (request, "after");
    return (size_t) dx_msg_int (request, "limit", 0) == self->limit
        && strcmp (after? after: "", self->after) == 0;
}

/*  Appends len bytes of text to the answer. 0, or -1 when out of memory. */
static int
s_list_add (sch_list_t *self, const char *text, size_t len)
{
    if (self->len + len + 1 > self->cap) {
        size_t cap = self->cap? self->cap: 4096;
        while (cap < self->len + len + 1)
            cap *= 2;
        char *grown = (char *) realloc (self->text, cap);
        if (!grown)
            return -1;
        self->text = grown;
        self->cap = cap;
    }
    memcpy (self->text + self->len, text, len);
    self->len += len;
    self->text [self->len] = 0;
    return 0;
}

/*  Appends the entries of one slice. 0, or -1 when out of memory. */
static int
s_list_entries (sch_list_t *self, const json_t *entries)
{
    size_t i;
    json_t *entry;
    json_array_foreach (entries, i, entry) {
        char *text = json_dumps (entry, JSON_COMPACT);
        int rc = !text || (self->count && s_list_add (self, ",", 1))
              || s_list_add (self, text, strlen (text));
        free (text);
        if (rc)
            return -1;
        self->count++;
    }
    return 0;
}

/*  Closes the answer: its count and, for a page, where the next starts. */
static int
s_list_close (sch_list_t *self)
{
    const char *beyond = sch_read_list_beyond (self->cursor);
    json_t *next = beyond? json_string (beyond): json_null ();
    char *next_text = next? json_dumps (next, JSON_COMPACT | JSON_ENCODE_ANY): NULL;
    char tail [64];
    int len = snprintf (tail, sizeof tail, "],\"count\":%zu%s", self->count,
                        self->limit? ",\"next\":": "");
    int rc = !next_text || s_list_add (self, tail, (size_t) len)
          || (self->limit && s_list_add (self, next_text, strlen (next_text)))
          || s_list_add (self, "}", 1);
    free (next_text);
    json_decref (next);
    if (rc == 0)
        self->answer = json_stringn_nocheck (self->text, self->len);
    return self->answer? 0: -1;
}

/*  Stops the list for good, keeping why for the replies. */
static void
s_list_fail (sch_list_t *self, const char *status, const char *error)
{
    snprintf (self->status, sizeof self->status, "%s", status);
    snprintf (self->error, sizeof self->error, "%s", error);
    self->state = -1;
}

int
sch_list_build (sch_list_t *self, int64_t until)
{
    if (self->state == 0 && !self->text && s_list_add (self, "{\"clusters\":[", 13))
        s_list_fail (self, DX_INTERNAL, "out of memory listing clusters");
    while (self->state == 0) {
        json_t *entries = json_array ();
        int rc = entries? sch_read_list_next (sch_store_read (self->store), self->cursor,
                                              S_SLICE, entries): -1;
        if (rc < 0)
            s_list_fail (self, sch_redis_status (sch_store_redis (self->store)),
                         sch_store_error (self->store));
        else
        if (s_list_entries (self, entries) || (rc == 1 && s_list_close (self)))
            s_list_fail (self, DX_INTERNAL, "out of memory listing clusters");
        else
        if (rc == 1)
            self->state = 1;
        json_decref (entries);
        if (dx_mono_ms () >= until)
            break;
    }
    return self->state;
}

json_t *
sch_list_reply (sch_list_t *self, const json_t *request)
{
    if (self->state < 0)
        return dx_reply_error (request, self->status, NULL, "%s", self->error);
    int text = dx_msg_bool (request, "text", 0);
    if (!text && !self->body)
        self->body = json_loadb (self->text, self->len, 0, NULL);
    json_t *reply = dx_reply_new (request, DX_OK, NULL);
    if (reply && json_object_set (reply, text? "text": "body", text? self->answer: self->body)) {
        json_decref (reply);
        reply = NULL;
    }
    return reply;
}
