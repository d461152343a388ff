/*  aws_ec2: a small client for the EC2 Query API (version 2016-11-15).

    aws_ec2_call (ec2, "DescribeVpcs", params, &err) POSTs the form body
    Action=DescribeVpcs&Version=2016-11-15&<params>, signed with SigV4 by
    dx_http, waits for a token of the account's client-side rate limit,
    retries throttling, 5xx and connection failures with backoff (dx_retry),
    and returns the XML answer as a libxml2 document, or NULL and an
    aws_error_t carrying AWS's own code and message. docs/aws.md has the
    details. Credentials are never logged. */
#ifndef AWS_EC2_H
#define AWS_EC2_H

#include <stddef.h>
#include <libxml/tree.h>
#include "dx_ratelimit.h"
#include "dx_retry.h"

#define AWS_EC2_VERSION "2016-11-15"

//  ---------------------------------------------------------------------
//  Parameters: an ordered list of key/value pairs, EC2's flattened form

typedef struct aws_params aws_params_t;

aws_params_t *aws_params_new (void);
void aws_params_destroy (aws_params_t **self_p);

/*  Appends key=value (both copied). 0, or -1 when out of memory. */
int aws_params_add (aws_params_t *self, const char *key, const char *value);

/*  Same with a printf-formatted key: aws_params_addf (p, "vpc-1",
    "Filter.%d.Value.1", n). */
int aws_params_addf (aws_params_t *self, const char *value, const char *key_fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  The next free index N of prefix.N (1 when there is none yet):
    aws_params_next (p, "Filter") after Filter.1.Name is 2. */
int aws_params_next (const aws_params_t *self, const char *prefix);

/*  name.N=value for each value, N continuing after the ones there:
    aws_params_list (p, "InstanceId", ids, 2) -> InstanceId.1, InstanceId.2. */
int aws_params_list (aws_params_t *self, const char *name, const char *const *values, size_t count);

/*  A filter: Filter.N.Name=name, Filter.N.Value.M=each value (NULL ends
    the values; at least one, else -1 and nothing is added).
    aws_params_filter (p, "tag:dexter:cluster", "c1", NULL). */
int aws_params_filter (aws_params_t *self, const char *name, ...) __attribute__ ((sentinel));

/*  A tag under prefix: prefix.Tag.N.Key / prefix.Tag.N.Value, or
    Tag.N.Key / Tag.N.Value when prefix is NULL or "" (CreateTags). */
int aws_params_tag (aws_params_t *self, const char *prefix, const char *key, const char *value);

/*  The form body: Action=action&Version=2016-11-15&key=value..., in the
    order added. Every key and value is encoded as SigV4 canonicalises
    (RFC 3986): A-Z a-z 0-9 - _ . ~ stay, every other byte becomes %XX
    (uppercase), so ' ' is %20, '+' %2B, '/' %2F, and UTF-8 is encoded
    byte by byte. self may be NULL. Caller frees. */
char *aws_params_encode (const aws_params_t *self, const char *action);

//  ---------------------------------------------------------------------
//  Errors

typedef struct {
    char code [64];         /* AWS's code (AuthFailure, ...) or NetworkError/InvalidResponse */
    char message [512];     /* AWS's message, or what went wrong */
    long http_status;       /* 0 when no answer came */
    int retryable;          /* 1 when a later try may succeed (throttling, 5xx, network) */
    int attempts;           /* tries made */
    int maybe_done;         /* 1 when EC2 may have carried the call out (no answer
                               came, or a 5xx): a create without a ClientToken is
                               then not tried again by aws_ec2_call */
} aws_error_t;

//  ---------------------------------------------------------------------
//  The client

typedef struct aws_ec2 aws_ec2_t;

/*  A client of region's EC2 with these credentials (copied; session_token
    may be NULL). The endpoint is AWS_ENDPOINT_URL_EC2, else AWS_ENDPOINT_URL,
    else https://ec2.REGION.amazonaws.com (.com.cn in cn- regions). NULL
    when region is not a region name or memory is short. */
aws_ec2_t *aws_ec2_new (const char *region, const char *access_key,
                        const char *secret_key, const char *session_token);

/*  Wipes the credentials and frees. Safe on NULL. */
void aws_ec2_destroy (aws_ec2_t **self_p);

/*  The endpoint used, e.g. "https://ec2.us-west-2.amazonaws.com". Borrowed. */
const char *aws_ec2_endpoint (const aws_ec2_t *self);

/*  Uses limits (borrowed; it must outlive self) for the client-side rate
    limit, so that every client of one worker shares the account's buckets.
    Without it a client has buckets of its own. */
void aws_ec2_set_limits (aws_ec2_t *self, dx_ratelimit_t *limits);

/*  Retry policy (copied); default: dx_retry's defaults. */
void aws_ec2_set_retry (aws_ec2_t *self, const dx_retry_policy_t *policy);

/*  A job's cancel flag: raised, a call tries no more (it is looked at
    before each retry and while waiting for it) and fails with code
    CANCELLED. fn NULL: none. */
typedef int (aws_ec2_cancel_fn) (void *arg);
void aws_ec2_set_cancel (aws_ec2_t *self, aws_ec2_cancel_fn *fn, void *arg);

/*  Calls action with params (may be NULL). Returns the answer (caller
    frees with xmlFreeDoc) or NULL with *err filled (err may be NULL). */
xmlDocPtr aws_ec2_call (aws_ec2_t *self, const char *action,
                        const aws_params_t *params, aws_error_t *err);

/*  aws_ec2_call for answers that may be big (DescribeInstances of a
    thousand instances is megabytes of tree): the answer is read as a
    stream (aws_ec2_parse_each: fn on each element at path, the root's
    nextToken into next), so that one item is held at a time. 0, or -1
    with *err filled as by aws_ec2_call. */
/*  What is done with each item of a streamed answer: item is one element
    with all its children, borrowed until fn returns. */
typedef void (aws_ec2_item_fn) (xmlNodePtr item, void *arg);
int aws_ec2_stream (aws_ec2_t *self, const char *action, const aws_params_t *params,
                    const char *path, aws_ec2_item_fn *fn, void *arg, char *next,
                    size_t next_size, aws_error_t *err);

/*  Rate-limit class of an action and its bucket: "Describe" (Describe*:
    burst 100, 20/s), "RunInstances" (DX_AWS_LAUNCH_BURST and _RATE of
    dx_netplan.h, which the scheduler paces hosts with), "Other" (burst
    200, 5/s): the rates AWS publishes. A registry shared with
    aws_ec2_set_limits keys its buckets ACCESS_KEY_ID|REGION|CLASS.
    RunInstances takes, besides its request token, one token per instance
    of its MaxCount from EC2's instance bucket (AWS_EC2_INSTANCE_BURST,
    _RATE), keyed ACCESS_KEY_ID|REGION|RunInstances.instances. */
#define AWS_EC2_INSTANCE_BURST  1000
#define AWS_EC2_INSTANCE_RATE   2       /* per second */

const char *aws_ec2_action_class (const char *action, double *burst, double *rate);

/*  Retry class of an EC2 error code with its HTTP status. */
dx_retry_class_t aws_ec2_classify (const char *code, long http_status);

//  ---------------------------------------------------------------------
//  Reading answers (namespaces are ignored; names are element names)

/*  The first element at path below node ("reservationSet/item"), or NULL. */
xmlNodePtr aws_xml_child (xmlNodePtr node, const char *path);

/*  The next sibling element with node's name (the next `item`), or NULL. */
xmlNodePtr aws_xml_next (xmlNodePtr node);

/*  Text of the element at path below node ("" when empty), or NULL when
    there is none. Borrowed from the document. path NULL or "": node itself. */
const char *aws_xml_text (xmlNodePtr node, const char *path);

/*  Value of tag key in node's tagSet, or NULL. Borrowed. */
const char *aws_xml_tag (xmlNodePtr node, const char *key);

/*  Parses one EC2 answer (status and body) into a document, or NULL with
    *err filled from <Response><Errors><Error> (or the HTTP status when the
    body holds no EC2 error). This is how aws_ec2_call reads each answer;
    on its own it reads answers that no server gives on demand (a proxy's
    HTML page, a document that is not EC2's). */
xmlDocPtr aws_ec2_parse (long http_status, const char *body, size_t len, aws_error_t *err);

/*  Reads a 2xx answer as a stream: calls fn on each element at path below
    the root ("reservationSet/item/instancesSet/item"), in order, and
    copies the root's nextToken ("" when none) into next [next_size]
    (next may be NULL). One item's tree is held at a time, so a thousand
    instances cost what one does. 0, or -1 with *err filled
    (InvalidResponse) when the body is not XML; fn may have seen the
    items before the fault. This is how aws_ec2_stream reads answers. */
int aws_ec2_parse_each (const char *body, size_t len, const char *path, aws_ec2_item_fn *fn,
                        void *arg, char *next, size_t next_size, aws_error_t *err);

#endif
