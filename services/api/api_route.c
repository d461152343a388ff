/*  api_route: path pattern x method -> scheduler request (docs/api.md). */
#include "api_route.h"
#include "dx_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_SEGMENTS_MAX 6

/*  The table. Rows of one pattern are adjacent and in the order their
    methods appear in Allow headers. */
static const api_route_t s_routes [] = {
    { "/clusters", "GET", "cluster.list", API_DO_PLAIN, API_QUERY_LIST, false, true },
    { "/clusters", "POST", "cluster.create", API_DO_CREATE, API_QUERY_NONE, true, false },
    { "/clusters/{name}", "GET", "cluster.get", API_DO_PLAIN, API_QUERY_NONE, false, false },
    { "/clusters/{name}", "DELETE", "cluster.delete", API_DO_PLAIN, API_QUERY_FORCE, false, false },
    { "/clusters/{name}/config", "GET", "config.get", API_DO_PLAIN, API_QUERY_NONE, false, false },
    { "/clusters/{name}/config", "PUT", "config.put", API_DO_FIELDS, API_QUERY_NONE, true, false },
    { "/clusters/{name}/config", "DELETE", "config.delete", API_DO_PLAIN, API_QUERY_NONE, false, false },
    { "/clusters/{name}/groups", "GET", "group.list", API_DO_PLAIN, API_QUERY_NONE, false, false },
    { "/clusters/{name}/groups", "POST", "group.upsert", API_DO_FIELDS, API_QUERY_NONE, true, false },
    { "/clusters/{name}/groups/{group}", "GET", "group.get", API_DO_PLAIN, API_QUERY_NONE, false, false },
    { "/clusters/{name}/groups/{group}", "PUT", "group.update", API_DO_FIELDS, API_QUERY_NONE, true, false },
    { "/clusters/{name}/groups/{group}", "DELETE", "group.delete", API_DO_PLAIN, API_QUERY_NONE, false, false },
    { "/clusters/{name}/deployment", "GET", "deployment.get", API_DO_PLAIN, API_QUERY_NONE, false, false },
    { "/clusters/{name}/deployment", "PUT", "deployment.put", API_DO_FIELDS, API_QUERY_NONE, true, false },
    { "/clusters/{name}/deployment", "DELETE", "deployment.delete", API_DO_PLAIN, API_QUERY_FORCE, false, false },
    { "/clusters/{name}/deployment/events", "GET", "deployment.events", API_DO_PLAIN, API_QUERY_EVENTS, false, false },
    { "/clusters/{name}/deployment/vpn", "GET", "deployment.vpn", API_DO_PLAIN, API_QUERY_NONE, false, false },
    { "/clusters/{name}/deployment/vpn/users", "GET", "vpnuser.list", API_DO_PLAIN, API_QUERY_NONE, false, false },
    { "/clusters/{name}/deployment/vpn/users", "POST", "vpnuser.add", API_DO_FIELDS, API_QUERY_NONE, true, false },
    { "/clusters/{name}/deployment/vpn/users/{user}", "DELETE", "vpnuser.revoke", API_DO_PLAIN, API_QUERY_NONE, false, false },
    { .pattern = "/openapi.json", .method = "GET", .type = "openapi",
      .action = API_DO_DOCUMENT, .query = API_QUERY_NONE },
    { .pattern = "/healthz", .method = "GET", .type = "health",
      .action = API_DO_ALIVE, .query = API_QUERY_NONE },
    { .pattern = "/readyz", .method = "GET", .type = "health.get",
      .action = API_DO_READY, .query = API_QUERY_NONE },
    { .pattern = "/metrics", .method = "GET", .type = "metrics.get",
      .action = API_DO_METRICS, .query = API_QUERY_NONE },
};
#define API_ROUTES (sizeof s_routes / sizeof s_routes [0])

typedef struct {
    const char *text;
    size_t len;
} s_segment_t;

/*  Splits "/a/b/c" into segments. -1 on an empty segment ("//") or too many. */
static int
s_split (const char *rest, s_segment_t *segs, size_t *count)
{
    *count = 0;
    const char *s = rest;
    while (*s) {
        if (*s != '/' || *count == API_SEGMENTS_MAX)
            return -1;
        s++;
        size_t len = strcspn (s, "/");
        if (len == 0)
            return -1;
        segs [*count].text = s;
        segs [*count].len = len;
        (*count)++;
        s += len;
    }
    return 0;
}

/*  1 if the segments fit pattern: literals equal, placeholders anything.
    Fills name, group and user pointers (into the path) from the
    placeholders. */
static int
s_fits (const char *pattern, const s_segment_t *segs, size_t count,
        s_segment_t *name, s_segment_t *group, s_segment_t *user)
{
    s_segment_t want [API_SEGMENTS_MAX];
    size_t want_count;
    if (s_split (pattern, want, &want_count) || want_count != count)
        return 0;
    for (size_t i = 0; i < count; i++) {
        if (want [i].text [0] == '{') {
            if (strncmp (want [i].text, "{name}", want [i].len) == 0)
                *name = segs [i];
            else
            if (strncmp (want [i].text, "{user}", want [i].len) == 0)
                *user = segs [i];
            else
                *group = segs [i];
        }
        else
        if (want [i].len != segs [i].len
        ||  memcmp (want [i].text, segs [i].text, segs [i].len) != 0)
            return 0;
    }
    return 1;
}

/*  Copies a path segment into out if it is a valid name; otherwise sets the
    404 message and returns -1. */
static int
s_take_name (const s_segment_t *seg, const char *what, char *out,
             api_match_t *match)
{
    /* Room for one byte more than a name holds: a longer segment is cut
       there and fails dx_spec_name_valid on its length. */
    char text [DX_NAME_MAX + 2];
    size_t len = seg->len < sizeof text - 1 ? seg->len : sizeof text - 1;
    memcpy (text, seg->text, len);
    text [len] = 0;
    if (!dx_spec_name_valid (text)) {
        char shown [40];
        snprintf (shown, sizeof shown, "%.*s%s", (int) (seg->len < 32 ? seg->len : 32),
                  seg->text, seg->len > 32 ? "..." : "");
        char raw [sizeof match->message];
        snprintf (raw, sizeof raw, "no %s named '%s': %s names are 1 to %d "
                  "lowercase letters and digits, starting with a letter",
                  what, shown, what, DX_NAME_MAX);
        api_text_copy (match->message, sizeof match->message, raw);
        match->status = 404;
        return -1;
    }
    memcpy (out, text, len + 1);
    return 0;
}

/*  Sets a 404 for a path no route has. */
static void
s_unknown_path (const char *path, api_match_t *match)
{
    char raw [sizeof match->message];
    snprintf (raw, sizeof raw, "unknown path '%.80s%s'; the API is under "
              API_PREFIX "/clusters", path, strlen (path) > 80 ? "..." : "");
    api_text_copy (match->message, sizeof match->message, raw);
    match->status = 404;
}

bool
api_route_probe (const api_route_t *route)
{
    return route->action == API_DO_ALIVE || route->action == API_DO_READY;
}

bool
api_route_outside (const api_route_t *route)
{
    return api_route_probe (route) || route->action == API_DO_METRICS;
}

void
api_route_match (const char *method, const char *path, api_match_t *match)
{
    memset (match, 0, sizeof *match);
    size_t prefix = strlen (API_PREFIX);
    if (!path) {
        s_unknown_path ("", match);
        return;
    }
    /* Outside the prefix, only the probes' paths and /metrics. */
    bool outside = strncmp (path, API_PREFIX, prefix) != 0;
    const char *after = outside ? path : path + prefix;
    /* One trailing slash is accepted: /clusters/ is /clusters. */
    char rest [256];
    size_t len = strlen (after);
    if (len >= sizeof rest) {
        s_unknown_path (path, match);
        return;
    }
    memcpy (rest, after, len + 1);
    if (len > 0 && rest [len - 1] == '/')
        rest [len - 1] = 0;

    s_segment_t segs [API_SEGMENTS_MAX], name = { NULL, 0 }, group = { NULL, 0 };
    s_segment_t user = { NULL, 0 };
    size_t count;
    const char *pattern = NULL;
    if (s_split (rest, segs, &count) == 0)
        for (size_t i = 0; i < API_ROUTES && !pattern; i++)
            if (api_route_outside (&s_routes [i]) == outside
            &&  s_fits (s_routes [i].pattern, segs, count, &name, &group, &user)) {
                pattern = s_routes [i].pattern;
                match->probe = api_route_probe (&s_routes [i]);
            }
    if (!pattern) {
        s_unknown_path (path, match);
        return;
    }
    if (name.text && s_take_name (&name, "cluster", match->name, match))
        return;
    if (group.text && s_take_name (&group, "group", match->group, match))
        return;
    if (user.text && s_take_name (&user, "VPN user", match->user, match))
        return;

    /* The methods of this path: its rows, plus HEAD with GET, and OPTIONS. */
    const char *wanted = strcmp (method, "HEAD") == 0 ? "GET" : method;
    size_t used = 0;
    for (size_t i = 0; i < API_ROUTES; i++) {
        const api_route_t *route = &s_routes [i];
        if (strcmp (route->pattern, pattern) != 0)
            continue;
        if (strcmp (route->method, wanted) == 0)
            match->route = route;
        used += (size_t) snprintf (match->allow + used, sizeof match->allow - used,
                                   "%s%s", used ? ", " : "", route->method);
        if (strcmp (route->method, "GET") == 0)
            used += (size_t) snprintf (match->allow + used,
                                       sizeof match->allow - used, ", HEAD");
    }
    snprintf (match->allow + used, sizeof match->allow - used, ", OPTIONS");

    if (strcmp (method, "OPTIONS") == 0) {
        match->route = NULL;
        match->status = 204;
    }
    else
    if (match->route)
        match->status = 200;
    else {
        char raw [sizeof match->message];
        snprintf (raw, sizeof raw, "method %.16s is not allowed on this path; "
                  "allowed: %s", method, match->allow);
        api_text_copy (match->message, sizeof match->message, raw);
        match->status = 405;
    }
}

#define S_U64_MAX "18446744073709551615"

/*  1 if the len digits at s are a number that fits in 64 bits. */
static int
s_u64 (const char *s, size_t len)
{
    size_t max = strlen (S_U64_MAX);
    return len > 0 && (len < max || (len == max && memcmp (s, S_U64_MAX, max) <= 0));
}

/*  1 if s is a Redis stream id that events can follow: MS or MS-SEQ, each
    a 64-bit decimal, and not the largest id. Redis refuses the others with
    an error, and a refusal is for the api to give. */
static int
s_stream_id (const char *s)
{
    size_t ms = strspn (s, "0123456789");
    if (!s_u64 (s, ms))
        return 0;
    if (s [ms] == 0)
        return 1;
    const char *seq = s + ms + 1;
    size_t len = strspn (seq, "0123456789");
    return s [ms] == '-' && s_u64 (seq, len) && seq [len] == 0
        && strcmp (s, S_U64_MAX "-" S_U64_MAX) != 0;
}

/*  The value of a page size parameter, 1 to DX_MSG_PAGE_MAX, or 0 when it
    is none. */
static int
s_page_size (const char *text)
{
    size_t digits = strspn (text, "0123456789");
    int size = digits > 0 && digits <= 4 && text [digits] == 0 ? atoi (text) : 0;
    return size <= DX_MSG_PAGE_MAX ? size : 0;
}

int
api_route_query (const api_route_t *route, const char *raw,
                 api_query_t *query, api_fault_t *fault)
{
    memset (query, 0, sizeof *query);
    if (!raw || !*raw)
        return 0;
    json_t *params = api_body_parse_form (raw, strlen (raw), fault);
    if (!params)
        return -1;
    int rc = 0;
    const char *key;
    json_t *value;
    json_object_foreach (params, key, value) {
        const char *text = json_string_value (value);
        if (route->query == API_QUERY_FORCE && strcmp (key, "force") == 0) {
            if (strcmp (text, "true") == 0)
                query->force = 1;
            else
            if (strcmp (text, "false") != 0)
                rc = api_fault_set (fault, "force", "force must be true or false");
        }
        else
        if (route->query == API_QUERY_EVENTS && strcmp (key, "after") == 0) {
            if (strlen (text) >= sizeof query->after || !s_stream_id (text))
                rc = api_fault_set (fault, "after", "after must be an event id "
                                    "such as 1700000000000-0");
            else
                strcpy (query->after, text);
        }
        else
        if (route->query == API_QUERY_EVENTS && strcmp (key, "count") == 0) {
            if (!(query->count = s_page_size (text)))
                rc = api_fault_set (fault, "count", "count must be an integer "
                                    "from 1 to %d", DX_MSG_PAGE_MAX);
        }
        else
        if (route->query == API_QUERY_LIST && strcmp (key, "limit") == 0) {
            if (!(query->limit = s_page_size (text)))
                rc = api_fault_set (fault, "limit", "limit must be an integer "
                                    "from 1 to %d", DX_MSG_PAGE_MAX);
        }
        else
        if (route->query == API_QUERY_LIST && strcmp (key, "after") == 0) {
            if (!dx_spec_name_valid (text))
                rc = api_fault_set (fault, "after", "after must be a cluster name, "
                                    "the last of the page before");
            else
                strcpy (query->after, text);
        }
        else
            rc = api_fault_set (fault, key, "unknown query parameter '%.64s'%s", key,
                                route->query == API_QUERY_FORCE ? "; only force=true|false is accepted"
                              : route->query == API_QUERY_EVENTS ? "; only after and count are accepted"
                              : route->query == API_QUERY_LIST ? "; only limit and after are accepted"
                              : "; this request takes none");
        if (rc)
            break;
    }
    json_decref (params);
    return rc;
}
