/*  aws_ec2: the EC2 Query API client: parameters, the signed call with
    rate limit and retries, and reading the XML answers. */
#include "aws_ec2.h"
#include "dx_cloud_metrics.h"
#include "dx_http.h"
#include "dx_log.h"
#include "dx_netplan.h"
#include "dx_util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/xmlreader.h>

//  ---------------------------------------------------------------------
//  Parameters

typedef struct {
    char *key;
    char *value;
} s_pair_t;

struct aws_params {
    s_pair_t *pairs;
    size_t count;
    size_t cap;
};

aws_params_t *
aws_params_new (void)
{
    return calloc (1, sizeof (aws_params_t));
}

void
aws_params_destroy (aws_params_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    aws_params_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        free (self->pairs [i].key);
        free (self->pairs [i].value);
    }
    free (self->pairs);
    free (self);
    *self_p = NULL;
}

int
aws_params_add (aws_params_t *self, const char *key, const char *value)
{
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        s_pair_t *pairs = realloc (self->pairs, cap * sizeof *pairs);
        if (!pairs)
            return -1;
        self->pairs = pairs;
        self->cap = cap;
    }
    char *k = strdup (key), *v = strdup (value ? value : "");
    if (!k || !v) {
        free (k);
        free (v);
        return -1;
    }
    self->pairs [self->count++] = (s_pair_t) { k, v };
    return 0;
}

int
aws_params_addf (aws_params_t *self, const char *value, const char *key_fmt, ...)
{
    char key [512];
    va_list args;
    va_start (args, key_fmt);
    int n = vsnprintf (key, sizeof key, key_fmt, args);
    va_end (args);
    if (n < 0 || (size_t) n >= sizeof key)
        return -1;
    return aws_params_add (self, key, value);
}

int
aws_params_next (const aws_params_t *self, const char *prefix)
{
    size_t plen = strlen (prefix);
    long max = 0;
    for (size_t i = 0; i < self->count; i++) {
        const char *key = self->pairs [i].key;
        if (strncmp (key, prefix, plen) != 0 || key [plen] != '.' || !isdigit ((unsigned char) key [plen + 1]))
            continue;
        char *end;
        long n = strtol (key + plen + 1, &end, 10);
        if ((*end == 0 || *end == '.') && n > max)
            max = n;
    }
    return (int) max + 1;
}

int
aws_params_list (aws_params_t *self, const char *name, const char *const *values, size_t count)
{
    int n = aws_params_next (self, name);
    for (size_t i = 0; i < count; i++)
        if (aws_params_addf (self, values [i], "%s.%d", name, n + (int) i))
            return -1;
    return 0;
}

int
aws_params_filter (aws_params_t *self, const char *name, ...)
{
    va_list args;
    va_start (args, name);
    const char *value = va_arg (args, const char *);
    int n = aws_params_next (self, "Filter"), m = 0;
    int rc = value ? aws_params_addf (self, name, "Filter.%d.Name", n) : -1;
    for (; rc == 0 && value; value = va_arg (args, const char *))
        rc = aws_params_addf (self, value, "Filter.%d.Value.%d", n, ++m);
    va_end (args);
    return rc;
}

int
aws_params_tag (aws_params_t *self, const char *prefix, const char *key, const char *value)
{
    char base [256];
    int len = prefix && *prefix ? snprintf (base, sizeof base, "%s.Tag", prefix)
                                : snprintf (base, sizeof base, "Tag");
    if (len < 0 || (size_t) len >= sizeof base)
        return -1;
    int n = aws_params_next (self, base);
    if (aws_params_addf (self, key, "%s.%d.Key", base, n)
    ||  aws_params_addf (self, value, "%s.%d.Value", base, n))
        return -1;
    return 0;
}

char *
aws_params_encode (const aws_params_t *self, const char *action)
{
    size_t size = strlen (action) * 3 + sizeof "Action=&Version=" AWS_EC2_VERSION;
    size_t count = self ? self->count : 0;
    for (size_t i = 0; i < count; i++)
        size += 2 + 3 * (strlen (self->pairs [i].key) + strlen (self->pairs [i].value));
    char *body = malloc (size);
    if (!body)
        return NULL;
    char *p = body;
    p = stpcpy (p, "Action=");
    p = dx_http_escape_into (p, action);
    p = stpcpy (p, "&Version=" AWS_EC2_VERSION);
    for (size_t i = 0; i < count; i++) {
        *p++ = '&';
        p = dx_http_escape_into (p, self->pairs [i].key);
        *p++ = '=';
        p = dx_http_escape_into (p, self->pairs [i].value);
    }
    return body;
}

//  ---------------------------------------------------------------------
//  Reading answers

static int
s_named (xmlNodePtr node, const char *name, size_t len)
{
    return node->type == XML_ELEMENT_NODE
        && strlen ((const char *) node->name) == len
        && memcmp (node->name, name, len) == 0;
}

xmlNodePtr
aws_xml_child (xmlNodePtr node, const char *path)
{
    while (node && path && *path) {
        const char *slash = strchr (path, '/');
        size_t len = slash ? (size_t) (slash - path) : strlen (path);
        xmlNodePtr child = node->children;
        while (child && !s_named (child, path, len))
            child = child->next;
        node = child;
        path = slash ? slash + 1 : path + len;
    }
    return node;
}

xmlNodePtr
aws_xml_next (xmlNodePtr node)
{
    if (!node)
        return NULL;
    size_t len = strlen ((const char *) node->name);
    for (xmlNodePtr n = node->next; n; n = n->next)
        if (s_named (n, (const char *) node->name, len))
            return n;
    return NULL;
}

const char *
aws_xml_text (xmlNodePtr node, const char *path)
{
    node = aws_xml_child (node, path);
    if (!node)
        return NULL;
    for (xmlNodePtr c = node->children; c; c = c->next)
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
            return (const char *) c->content;
    return "";
}

const char *
aws_xml_tag (xmlNodePtr node, const char *key)
{
    for (xmlNodePtr item = aws_xml_child (node, "tagSet/item"); item; item = aws_xml_next (item)) {
        const char *k = aws_xml_text (item, "key");
        if (k && strcmp (k, key) == 0) {
            const char *v = aws_xml_text (item, "value");
            return v ? v : "";
        }
    }
    return NULL;
}

//  ---------------------------------------------------------------------
//  Errors and their retry class (botocore's standard retry lists)

static const char *s_throttling_codes [] = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException", NULL
};
static const char *s_transient_codes [] = {
    "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
    "ServiceUnavailable", "Unavailable", NULL
};

static int
s_listed (const char *const *list, const char *code)
{
    for (; code && *list; list++)
        if (strcmp (*list, code) == 0)
            return 1;
    return 0;
}

dx_retry_class_t
aws_ec2_classify (const char *code, long http_status)
{
    if (s_listed (s_throttling_codes, code))
        return DX_RETRY_THROTTLED;
    if (s_listed (s_transient_codes, code))
        return DX_RETRY_TRANSIENT;
    dx_http_response_t resp = { .status = http_status };
    return dx_http_classify (&resp);
}

static void
s_error (aws_error_t *err, const char *code, long status, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_error (aws_error_t *err, const char *code, long status, const char *fmt, ...)
{
    snprintf (err->code, sizeof err->code, "%s", code);
    va_list args;
    va_start (args, fmt);
    vsnprintf (err->message, sizeof err->message, fmt, args);
    va_end (args);
    err->http_status = status;
    err->retryable = aws_ec2_classify (err->code, status) != DX_RETRY_NO;
}

static pthread_once_t s_xml_once = PTHREAD_ONCE_INIT;

static void
s_xml_init (void)
{
    xmlInitParser ();
}

xmlDocPtr
aws_ec2_parse (long http_status, const char *body, size_t len, aws_error_t *err)
{
    pthread_once (&s_xml_once, s_xml_init);
    /* No network, no entity expansion, no messages on stderr. */
    xmlDocPtr doc = body && len && len <= (size_t) INT32_MAX
                  ? xmlReadMemory (body, (int) len, "ec2.xml", NULL,
                                   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
                  : NULL;
    xmlNodePtr root = doc ? xmlDocGetRootElement (doc) : NULL;
    if (http_status >= 200 && http_status < 300) {
        if (root)
            return doc;
        s_error (err, "InvalidResponse", http_status, "HTTP %ld answer is not XML", http_status);
    }
    else {
        xmlNodePtr error = NULL;
        if (root && strcmp ((const char *) root->name, "Response") == 0)
            error = aws_xml_child (root, "Errors/Error");
        else
        if (root && strcmp ((const char *) root->name, "ErrorResponse") == 0)
            error = aws_xml_child (root, "Error");
        const char *code = aws_xml_text (error, "Code");
        const char *message = aws_xml_text (error, "Message");
        if (code && *code)
            s_error (err, code, http_status, "%s", message ? message : "");
        else
            s_error (err, "HttpError", http_status, "HTTP %ld without an EC2 error in the answer", http_status);
    }
    xmlFreeDoc (doc);
    return NULL;
}

/*  The names of path, one per depth below the root, into names; their
    count, or 0 when path is empty or deeper than S_PATH_MAX. */
#define S_PATH_MAX 8
#define S_NAME_MAX 64

static size_t
s_path_names (const char *path, char names [S_PATH_MAX][S_NAME_MAX])
{
    size_t count = 0;
    while (path && *path) {
        size_t len = strcspn (path, "/");
        if (count == S_PATH_MAX || len == 0 || len >= S_NAME_MAX)
            return 0;
        memcpy (names [count], path, len);
        names [count++][len] = 0;
        path += len + (path [len] == '/');
    }
    return count;
}

int
aws_ec2_parse_each (const char *body, size_t len, const char *path, aws_ec2_item_fn *fn,
                    void *arg, char *next, size_t next_size, aws_error_t *err)
{
    pthread_once (&s_xml_once, s_xml_init);
    if (next && next_size)
        *next = 0;
    char names [S_PATH_MAX][S_NAME_MAX];
    size_t depth_max = s_path_names (path, names);
    xmlTextReaderPtr reader = depth_max && body && len && len <= (size_t) INT32_MAX
        ? xmlReaderForMemory (body, (int) len, "ec2.xml", NULL,
                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
        : NULL;
    //  matched: how many of the open elements below the root are path's
    size_t matched = 0;
    int rc = reader? xmlTextReaderRead (reader): -1, root = 0;
    while (rc == 1) {
        int depth = xmlTextReaderDepth (reader);
        if (xmlTextReaderNodeType (reader) != XML_READER_TYPE_ELEMENT || depth < 0) {
            rc = xmlTextReaderRead (reader);
            continue;
        }
        const char *name = (const char *) xmlTextReaderConstLocalName (reader);
        root |= depth == 0;
        if (depth == 0)
            matched = 0;
        else
        if (matched > (size_t) depth - 1)           /* left the deeper ones */
            matched = (size_t) depth - 1;
        if (depth == 1 && name && strcmp (name, "nextToken") == 0 && next && next_size) {
            xmlChar *text = xmlTextReaderReadString (reader);
            snprintf (next, next_size, "%s", text? (const char *) text: "");
            xmlFree (text);
        }
        if (depth > 0 && (size_t) depth <= depth_max && matched == (size_t) depth - 1
        &&  name && strcmp (name, names [depth - 1]) == 0)
            matched = depth;
        if (matched == depth_max && (size_t) depth == depth_max) {
            //  One item's tree at a time: the reader frees it once past it
            xmlNodePtr item = xmlTextReaderExpand (reader);
            if (!item) {
                rc = -1;
                break;
            }
            fn (item, arg);
            matched = depth_max - 1;
            rc = xmlTextReaderNext (reader);
        }
        else
            rc = xmlTextReaderRead (reader);
    }
    xmlFreeTextReader (reader);
    if (rc == 0 && root)
        return 0;
    s_error (err, "InvalidResponse", 200, "HTTP 200 answer is not XML");
    return -1;
}

//  ---------------------------------------------------------------------
//  The client

/*  One try's limit: EC2 answers in well under a second; a try that hangs
    is retried like a dropped connection. */
#define S_TRY_TIMEOUT_MS 30000

struct aws_ec2 {
    char *region;
    char *access_key;
    char *secret_key;
    char *session_token;        /* NULL when none */
    char *endpoint;             /* URL with a path, e.g. https://ec2.us-west-2.amazonaws.com/ */
    char sigv4 [64];            /* aws:amz:REGION:ec2 */
    dx_ratelimit_t *limits;     /* borrowed, or own_limits */
    dx_ratelimit_t *own_limits;
    dx_retry_policy_t retry;
    aws_ec2_cancel_fn *cancel;          /* may be NULL */
    void *cancel_arg;
};

static int
s_region_valid (const char *region)
{
    size_t len = region ? strlen (region) : 0;
    if (len == 0 || len > 32 || !islower ((unsigned char) region [0]))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!islower ((unsigned char) region [i]) && !isdigit ((unsigned char) region [i]) && region [i] != '-')
            return 0;
    return 1;
}

/*  The SDKs' convention: the service's variable wins over the global one. */
static char *
s_endpoint (const char *region)
{
    const char *url = getenv ("AWS_ENDPOINT_URL_EC2");
    if (!url || !*url)
        url = getenv ("AWS_ENDPOINT_URL");
    char buf [512];
    if (url && *url) {
        const char *host = strstr (url, "://");
        int has_path = host && strchr (host + 3, '/');
        snprintf (buf, sizeof buf, "%s%s", url, has_path ? "" : "/");
    }
    else
        snprintf (buf, sizeof buf, "https://ec2.%s.amazonaws.com%s/", region,
                  strncmp (region, "cn-", 3) == 0 ? ".cn" : "");
    return strdup (buf);
}

static void
s_free_secret (char **text_p)
{
    if (*text_p) {
        memset (*text_p, 0, strlen (*text_p));
        free (*text_p);
        *text_p = NULL;
    }
}

aws_ec2_t *
aws_ec2_new (const char *region, const char *access_key,
             const char *secret_key, const char *session_token)
{
    if (!s_region_valid (region) || !access_key || !*access_key || !secret_key)
        return NULL;
    aws_ec2_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->region = strdup (region);
    self->access_key = strdup (access_key);
    self->secret_key = strdup (secret_key);
    self->session_token = session_token && *session_token ? strdup (session_token) : NULL;
    self->endpoint = s_endpoint (region);
    self->own_limits = dx_ratelimit_new ();
    self->limits = self->own_limits;
    snprintf (self->sigv4, sizeof self->sigv4, "aws:amz:%s:ec2", region);
    self->retry = (dx_retry_policy_t) DX_RETRY_POLICY_DEFAULT;
    if (!self->region || !self->access_key || !self->secret_key || !self->endpoint
    ||  !self->own_limits || (session_token && *session_token && !self->session_token))
        aws_ec2_destroy (&self);
    return self;
}

void
aws_ec2_destroy (aws_ec2_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    aws_ec2_t *self = *self_p;
    s_free_secret (&self->access_key);
    s_free_secret (&self->secret_key);
    s_free_secret (&self->session_token);
    free (self->region);
    free (self->endpoint);
    dx_ratelimit_destroy (&self->own_limits);
    free (self);
    *self_p = NULL;
}

const char *
aws_ec2_endpoint (const aws_ec2_t *self)
{
    return self->endpoint;
}

void
aws_ec2_set_limits (aws_ec2_t *self, dx_ratelimit_t *limits)
{
    self->limits = limits ? limits : self->own_limits;
}

void
aws_ec2_set_retry (aws_ec2_t *self, const dx_retry_policy_t *policy)
{
    self->retry = *policy;
}

void
aws_ec2_set_cancel (aws_ec2_t *self, aws_ec2_cancel_fn *fn, void *arg)
{
    self->cancel = fn;
    self->cancel_arg = arg;
}

const char *
aws_ec2_action_class (const char *action, double *burst, double *rate)
{
    if (strncmp (action, "Describe", 8) == 0) {
        *burst = 100, *rate = 20;
        return "Describe";
    }
    if (strcmp (action, "RunInstances") == 0) {
        *burst = DX_AWS_LAUNCH_BURST, *rate = DX_AWS_LAUNCH_RATE;
        return "RunInstances";
    }
    *burst = 200, *rate = 5;
    return "Other";
}

/*  The MaxCount of RunInstances' params (1 when absent or not a number). */
static double
s_max_count (const aws_params_t *params)
{
    for (size_t i = 0; params && i < params->count; i++)
        if (strcmp (params->pairs [i].key, "MaxCount") == 0) {
            long n = strtol (params->pairs [i].value, NULL, 10);
            return n > 0? (double) n: 1;
        }
    return 1;
}

/*  A streamed call's reader (aws_ec2_parse_each's arguments). */
typedef struct {
    const char *path;
    aws_ec2_item_fn *fn;
    void *arg;
    char *next;
    size_t next_size;
} s_stream_t;

/*  One try: the document, or NULL with *err and *cls set. With stream, a
    2xx answer is streamed to it, and the document is an empty one. */
static xmlDocPtr
s_try (aws_ec2_t *self, const char *body, const s_stream_t *stream, aws_error_t *err,
       dx_retry_class_t *cls)
{
    static const char *const headers [] = {
        "Content-Type: application/x-www-form-urlencoded; charset=utf-8", NULL
    };
    dx_http_request_t req = {
        .method = "POST", .url = self->endpoint, .headers = headers,
        .body = body, .body_len = strlen (body), .timeout_ms = S_TRY_TIMEOUT_MS,
        .aws_sigv4 = self->sigv4, .aws_access_key = self->access_key,
        .aws_secret_key = self->secret_key, .aws_session_token = self->session_token
    };
    dx_http_response_t *resp = dx_http_request (&req);
    xmlDocPtr doc = NULL;
    if (!resp) {
        s_error (err, "OutOfMemory", 0, "out of memory");
        err->maybe_done = 0;
        *cls = DX_RETRY_NO;
    }
    else
    if (resp->curl_code) {
        *cls = dx_http_classify (resp);
        s_error (err, "NetworkError", 0, "%s", resp->error);
        err->retryable = *cls != DX_RETRY_NO;
        err->maybe_done = dx_http_maybe_done (resp);
    }
    else
    if (stream && resp->status >= 200 && resp->status < 300) {
        int rc = aws_ec2_parse_each (resp->body, resp->body_len, stream->path, stream->fn,
                                     stream->arg, stream->next, stream->next_size, err);
        doc = rc == 0? xmlNewDoc (BAD_CAST "1.0"): NULL;
        if (rc == 0 && !doc)
            s_error (err, "OutOfMemory", 0, "out of memory");
        *cls = DX_RETRY_NO;
    }
    else {
        doc = aws_ec2_parse (resp->status, resp->body, resp->body_len, err);
        *cls = doc ? DX_RETRY_NO : aws_ec2_classify (err->code, resp->status);
        err->maybe_done = !doc && *cls == DX_RETRY_TRANSIENT && dx_http_maybe_done (resp);
    }
    dx_http_response_destroy (&resp);
    return doc;
}

/*  Creates that take no ClientToken. A try of one whose outcome is unknown
    (err->maybe_done) is not repeated here, where a second try could make a
    second VPC or Elastic IP: the error goes back to the step (retryable),
    which runs again later and looks for what it would create by its tags
    first. Everything else is repeated safely: reads, deletes, and
    RunInstances with its ClientToken. */
static const char *const s_unrepeatable [] = {
    "AllocateAddress", "CreateInternetGateway", "CreateRouteTable", "CreateSecurityGroup",
    "CreateSubnet", "CreateVpc", "ImportKeyPair", NULL
};

/*  aws_ec2_call, and aws_ec2_stream with stream. */
static xmlDocPtr
s_call (aws_ec2_t *self, const char *action, const aws_params_t *params,
        const s_stream_t *stream, aws_error_t *err)
{
    aws_error_t scratch;
    if (!err)
        err = &scratch;
    memset (err, 0, sizeof *err);
    char *body = aws_params_encode (params, action);
    if (!body) {
        s_error (err, "OutOfMemory", 0, "out of memory");
        return NULL;
    }
    double burst, rate;
    const char *class = aws_ec2_action_class (action, &burst, &rate);
    char key [512];
    snprintf (key, sizeof key, "%s|%s|%s", self->access_key, self->region, class);

    //  RunInstances also takes one token of the instance bucket per
    //  instance it may launch (MaxCount), once: a retry with the same
    //  ClientToken launches nothing more. Filling it takes up to 500 s, so
    //  the wait looks at the cancel flag.
    double instances = strcmp (action, "RunInstances") == 0? s_max_count (params): 0;
    if (instances > 0) {
        char ikey [512];
        snprintf (ikey, sizeof ikey, "%s|%s|RunInstances.instances", self->access_key,
                  self->region);
        int64_t wait, waited = 0;
        int cancelled = 0;
        while (!cancelled && (wait = dx_ratelimit_take_n (self->limits, ikey,
                                                           AWS_EC2_INSTANCE_BURST,
                                                           AWS_EC2_INSTANCE_RATE, instances)) > 0) {
            cancelled = dx_sleep_cancellable (wait, self->cancel, self->cancel_arg) != 0;
            waited += wait;
        }
        memset (ikey, 0, sizeof ikey);
        if (waited > 0) {
            dx_debug ("ec2 %s waited %lld ms for %.0f instance tokens", action,
                      (long long) waited, instances);
            dx_cloud_metrics_wait ("aws", waited / 1000.0);
        }
        if (cancelled) {
            s_error (err, "CANCELLED", 0, "the job was cancelled while %s waited for the "
                     "instance bucket", action);
            err->retryable = 0;
            free (body);
            return NULL;
        }
    }

    dx_retry_t retry;
    dx_retry_init (&retry, &self->retry);
    xmlDocPtr doc = NULL;
    while (1) {
        int64_t waited = dx_ratelimit_wait (self->limits, key, burst, rate);
        if (waited > 0) {
            dx_debug ("ec2 %s waited %lld ms for the %s rate limit", action, (long long) waited, class);
            dx_cloud_metrics_wait ("aws", waited / 1000.0);
        }
        int64_t start = dx_mono_ms ();
        dx_retry_class_t cls;
        doc = s_try (self, body, stream, err, &cls);
        err->attempts = retry.attempts + 1;
        dx_cloud_metrics_call ("aws", action, doc != NULL, cls, (dx_mono_ms () - start) / 1000.0);
        if (doc) {
            dx_debug ("ec2 %s ok in %lld ms (try %d)", action, (long long) (dx_mono_ms () - start), err->attempts);
            break;
        }
        int64_t wait = dx_retry_next (&retry, cls);
        if (wait >= 0 && err->maybe_done && s_listed (s_unrepeatable, action)) {
            dx_warn ("ec2 %s: %s (HTTP %ld): it may have been carried out, so it is not "
                     "repeated; the step looks for the resource again when it runs again",
                     action, err->code, err->http_status);
            break;
        }
        if (wait < 0) {
            /* An answer no retry can change is the caller's to judge (a
               step expects NotFound or DependencyViolation at times and
               logs its own outcome); exhausted retries are worth a warning. */
            if (cls == DX_RETRY_NO)
                dx_debug ("ec2 %s: %s (HTTP %ld): %s",
                          action, err->code, err->http_status, err->message);
            else
                dx_warn ("ec2 %s failed: %s (HTTP %ld) after %d tries: %s",
                         action, err->code, err->http_status, err->attempts, err->message);
            break;
        }
        dx_info ("ec2 %s: %s (HTTP %ld, %s), try %d of %d, again in %lld ms",
                 action, err->code, err->http_status, dx_retry_class_name (cls),
                 err->attempts, retry.policy.max_attempts, (long long) wait);
        dx_cloud_metrics_retry ("aws", action);
        if (dx_sleep_cancellable (wait, self->cancel, self->cancel_arg)) {
            s_error (err, "CANCELLED", 0, "the job was cancelled while %s was retried", action);
            err->retryable = 0;
            break;
        }
    }
    memset (key, 0, sizeof key);
    free (body);
    return doc;
}

xmlDocPtr
aws_ec2_call (aws_ec2_t *self, const char *action,
              const aws_params_t *params, aws_error_t *err)
{
    return s_call (self, action, params, NULL, err);
}

int
aws_ec2_stream (aws_ec2_t *self, const char *action, const aws_params_t *params,
                const char *path, aws_ec2_item_fn *fn, void *arg, char *next,
                size_t next_size, aws_error_t *err)
{
    s_stream_t stream = { path, fn, arg, next, next_size };
    xmlDocPtr doc = s_call (self, action, params, &stream, err);
    xmlFreeDoc (doc);
    return doc? 0: -1;
}
