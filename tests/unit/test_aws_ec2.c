/*  Tests of services/aws-worker/aws_ec2.c: parameter encoding, EC2's list
    flattening, reading XML answers and errors, retry classification,
    endpoints; and the proof, against tests/fakes/fake_ec2.py (started by
    the harness on a free loopback port): real calls whose form bodies are
    decoded by botocore's EC2 model and whose SigV4 signatures are
    recomputed by botocore's signer inside the fake. Nothing is skipped:
    without /usr/bin/python3 and botocore the test fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "../../services/aws-worker/aws_ec2.h"
#include "harness_aws.h"

#include "dx_util.h"

#define AKID     "AKIDDEXTERTEST01"
#define SECRET   "dexter/Secret+Key=Marker42"
#define TMP_AKID "ASIADEXTERTEMP01"
#define TMP_KEY  "TempSecretMarker/77"
#define TOKEN    "SessionTokenMarker//9+Zz=="
#define REGION   "us-west-2"
#define AMI      "ami-0c1f0a2b3c4d50003"    /* the fake's Canonical jammy amd64 */

static th_fake_t s_fake;

/*  Short waits, reproducible: the tests retry many times. */
static const dx_retry_policy_t s_fast = { 5, 40, 6, 1 };

//  ---------------------------------------------------------------------
//  Parameters and encoding

/*  Values as SigV4 canonicalises them, in the form body. */
static void
test_uri_encode (void **state)
{
    (void) state;
    const char *cases [][2] = {
        { "", "" },
        { "AZaz09-_.~", "AZaz09-_.~" },
        { "a b", "a%20b" },                 /* never '+' for a space */
        { "a+b", "a%2Bb" },
        { "a/b", "a%2Fb" },
        { "tag:dexter:cluster", "tag%3Adexter%3Acluster" },
        { "=&%*?#[]@!$'(),;", "%3D%26%25%2A%3F%23%5B%5D%40%21%24%27%28%29%2C%3B" },
        { "\xc3\xa9t\xc3\xa9 \xe2\x82\xac", "%C3%A9t%C3%A9%20%E2%82%AC" },  /* été € */
        { "\x01\x7f\xff", "%01%7F%FF" },
    };
    const char *prefix = "Action=A&Version=2016-11-15&k=";
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        aws_params_t *p = aws_params_new ();
        aws_params_add (p, "k", cases [i][0]);
        char *out = aws_params_encode (p, "A");
        assert_true (strncmp (out, prefix, strlen (prefix)) == 0);
        assert_string_equal (out + strlen (prefix), cases [i][1]);
        free (out);
        aws_params_destroy (&p);
    }
}

static void
test_params (void **state)
{
    (void) state;
    aws_params_t *p = aws_params_new ();
    assert_int_equal (aws_params_next (p, "Filter"), 1);
    assert_int_equal (aws_params_filter (p, "tag:dexter:cluster", "c1", NULL), 0);
    assert_int_equal (aws_params_filter (p, "instance-state-name", "pending", "running", NULL), 0);
    assert_int_equal (aws_params_next (p, "Filter"), 3);
    assert_int_equal (aws_params_filter (p, "no-values", NULL), -1);     /* adds nothing */
    assert_int_equal (aws_params_next (p, "Filter"), 3);
    const char *ids [] = { "i-1", "i-2" };
    assert_int_equal (aws_params_list (p, "InstanceId", ids, 2), 0);
    assert_int_equal (aws_params_list (p, "InstanceId", ids, 1), 0);   /* continues at 3 */
    assert_int_equal (aws_params_addf (p, "instance", "TagSpecification.%d.ResourceType", 1), 0);
    assert_int_equal (aws_params_tag (p, "TagSpecification.1", "Name", "a b+c"), 0);
    assert_int_equal (aws_params_tag (p, "TagSpecification.1", "dexter:cluster", "c1"), 0);
    assert_int_equal (aws_params_tag (p, NULL, "k", "v"), 0);
    assert_int_equal (aws_params_next (p, "TagSpecification"), 2);
    assert_int_equal (aws_params_next (p, "TagSpecification.1.Tag"), 3);
    assert_int_equal (aws_params_next (p, "Tag"), 2);
    assert_int_equal (aws_params_next (p, "Filter.2.Value"), 3);
    assert_int_equal (aws_params_next (p, "Filte"), 1);                  /* whole segments only */
    char *body = aws_params_encode (p, "DescribeInstances");
    assert_string_equal (body,
        "Action=DescribeInstances&Version=2016-11-15"
        "&Filter.1.Name=tag%3Adexter%3Acluster&Filter.1.Value.1=c1"
        "&Filter.2.Name=instance-state-name&Filter.2.Value.1=pending&Filter.2.Value.2=running"
        "&InstanceId.1=i-1&InstanceId.2=i-2&InstanceId.3=i-1"
        "&TagSpecification.1.ResourceType=instance"
        "&TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=a%20b%2Bc"
        "&TagSpecification.1.Tag.2.Key=dexter%3Acluster&TagSpecification.1.Tag.2.Value=c1"
        "&Tag.1.Key=k&Tag.1.Value=v");
    free (body);
    aws_params_destroy (&p);
    assert_null (p);
    aws_params_destroy (&p);
    body = aws_params_encode (NULL, "DescribeRegions");
    assert_string_equal (body, "Action=DescribeRegions&Version=2016-11-15");
    free (body);
}

//  ---------------------------------------------------------------------
//  Answers

static const char s_describe_instances [] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
    "  <requestId>8f7724cf-496f-496e-8fe3-example</requestId>\n"
    "  <reservationSet>\n"
    "    <item>\n"
    "      <reservationId>r-1234567890abcdef0</reservationId>\n"
    "      <ownerId>123456789012</ownerId>\n"
    "      <groupSet/>\n"
    "      <instancesSet>\n"
    "        <item>\n"
    "          <instanceId>i-1234567890abcdef0</instanceId>\n"
    "          <imageId>ami-bff32ccc</imageId>\n"
    "          <instanceState><code>16</code><name>running</name></instanceState>\n"
    "          <privateIpAddress>10.0.0.12</privateIpAddress>\n"
    "          <reason/>\n"
    "          <tagSet>\n"
    "            <item><key>Name</key><value>m1 &amp; &lt;co&gt; &#xe9;</value></item>\n"
    "            <item><key>dexter:cluster</key><value>c1</value></item>\n"
    "            <item><key>empty</key><value/></item>\n"
    "          </tagSet>\n"
    "        </item>\n"
    "        <item>\n"
    "          <instanceId>i-0598c7d356eba48d7</instanceId>\n"
    "          <instanceState><code>0</code><name>pending</name></instanceState>\n"
    "        </item>\n"
    "      </instancesSet>\n"
    "    </item>\n"
    "    <item>\n"
    "      <reservationId>r-0aaaaaaaaaaaaaaaa</reservationId>\n"
    "      <instancesSet>\n"
    "        <item><instanceId>i-0bbbbbbbbbbbbbbbb</instanceId></item>\n"
    "      </instancesSet>\n"
    "    </item>\n"
    "  </reservationSet>\n"
    "</DescribeInstancesResponse>\n";

static void
test_xml_describe_instances (void **state)
{
    (void) state;
    aws_error_t err;
    xmlDocPtr doc = aws_ec2_parse (200, s_describe_instances, strlen (s_describe_instances), &err);
    assert_non_null (doc);
    xmlNodePtr root = xmlDocGetRootElement (doc);
    assert_string_equal (aws_xml_text (root, "requestId"), "8f7724cf-496f-496e-8fe3-example");
    const char *expected [] = { "i-1234567890abcdef0", "i-0598c7d356eba48d7", "i-0bbbbbbbbbbbbbbbb" };
    size_t count = 0, reservations = 0;
    for (xmlNodePtr r = aws_xml_child (root, "reservationSet/item"); r; r = aws_xml_next (r)) {
        reservations++;
        for (xmlNodePtr i = aws_xml_child (r, "instancesSet/item"); i; i = aws_xml_next (i)) {
            assert_true (count < 3);
            assert_string_equal (aws_xml_text (i, "instanceId"), expected [count++]);
        }
    }
    assert_int_equal (reservations, 2);
    assert_int_equal (count, 3);
    xmlNodePtr first = aws_xml_child (root, "reservationSet/item/instancesSet/item");
    assert_string_equal (aws_xml_text (first, "instanceState/name"), "running");
    assert_string_equal (aws_xml_text (first, "reason"), "");          /* empty element */
    assert_null (aws_xml_text (first, "noSuchThing"));
    assert_null (aws_xml_text (first, "instanceState/name/deeper"));
    assert_string_equal (aws_xml_tag (first, "Name"), "m1 & <co> \xc3\xa9");
    assert_string_equal (aws_xml_tag (first, "dexter:cluster"), "c1");
    assert_string_equal (aws_xml_tag (first, "empty"), "");
    assert_null (aws_xml_tag (first, "missing"));
    assert_null (aws_xml_tag (aws_xml_next (first), "Name"));        /* no tagSet */
    assert_ptr_equal (aws_xml_child (first, NULL), first);
    assert_null (aws_xml_child (NULL, "a"));
    assert_null (aws_xml_next (NULL));
    assert_null (aws_xml_text (NULL, "a"));
    xmlFreeDoc (doc);
}

/*  What a streamed answer gave: each item's instanceId (or its
    reservationId), and its Name tag. */
typedef struct {
    char ids [4][64];
    char name [64];
    size_t count;
} s_seen_t;

static void
s_see (xmlNodePtr item, void *arg)
{
    s_seen_t *seen = arg;
    assert_true (seen->count < 4);
    const char *id = aws_xml_text (item, "instanceId");
    if (!id)
        id = aws_xml_text (item, "reservationId");
    assert_non_null (id);
    snprintf (seen->ids [seen->count++], sizeof seen->ids [0], "%s", id);
    if (aws_xml_tag (item, "Name"))
        snprintf (seen->name, sizeof seen->name, "%s", aws_xml_tag (item, "Name"));
}

static void
test_xml_stream (void **state)
{
    (void) state;
    aws_error_t err;
    char next [64] = "x";
    s_seen_t seen = { .count = 0 };
    //  Each instance, whole (its tags are items too, deeper: not taken)
    assert_int_equal (aws_ec2_parse_each (s_describe_instances, strlen (s_describe_instances),
                                          "reservationSet/item/instancesSet/item", s_see, &seen,
                                          next, sizeof next, &err), 0);
    assert_int_equal (seen.count, 3);
    assert_string_equal (seen.ids [0], "i-1234567890abcdef0");
    assert_string_equal (seen.ids [1], "i-0598c7d356eba48d7");
    assert_string_equal (seen.ids [2], "i-0bbbbbbbbbbbbbbbb");
    assert_string_equal (seen.name, "m1 & <co> \xc3\xa9");
    assert_string_equal (next, "");
    //  Another depth: the reservations
    memset (&seen, 0, sizeof seen);
    assert_int_equal (aws_ec2_parse_each (s_describe_instances, strlen (s_describe_instances),
                                          "reservationSet/item", s_see, &seen, NULL, 0, &err), 0);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.ids [1], "r-0aaaaaaaaaaaaaaaa");
    //  The root's nextToken, wherever it is; an item elsewhere is not one
    const char *paged =
        "<DescribeInstancesResponse><nextToken>page-2</nextToken><reservationSet><item>"
        "<instancesSet><item><instanceId>i-1</instanceId></item></instancesSet></item>"
        "</reservationSet><instancesSet><item><instanceId>i-stray</instanceId></item>"
        "</instancesSet></DescribeInstancesResponse>";
    memset (&seen, 0, sizeof seen);
    assert_int_equal (aws_ec2_parse_each (paged, strlen (paged),
                                          "reservationSet/item/instancesSet/item", s_see, &seen,
                                          next, sizeof next, &err), 0);
    assert_int_equal (seen.count, 1);
    assert_string_equal (seen.ids [0], "i-1");
    assert_string_equal (next, "page-2");
    //  Not XML, or cut short: InvalidResponse
    const char *cut = "<DescribeInstancesResponse><reservationSet><item>";
    assert_int_equal (aws_ec2_parse_each (cut, strlen (cut), "reservationSet/item", s_see, &seen,
                                          NULL, 0, &err), -1);
    assert_string_equal (err.code, "InvalidResponse");
    assert_int_equal (aws_ec2_parse_each ("", 0, "reservationSet/item", s_see, &seen, NULL, 0,
                                          &err), -1);
}

static void
test_xml_errors (void **state)
{
    (void) state;
    const char *auth =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>AuthFailure</Code>"
        "<Message>AWS was not able to validate the provided access credentials</Message></Error></Errors>"
        "<RequestID>b1c5f2a5-0000</RequestID></Response>";
    aws_error_t err;
    assert_null (aws_ec2_parse (401, auth, strlen (auth), &err));
    assert_string_equal (err.code, "AuthFailure");
    assert_string_equal (err.message, "AWS was not able to validate the provided access credentials");
    assert_int_equal (err.http_status, 401);
    assert_int_equal (err.retryable, 0);

    const char *throttled =
        "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
        "</Message></Error></Errors><RequestID>x</RequestID></Response>";
    assert_null (aws_ec2_parse (503, throttled, strlen (throttled), &err));
    assert_string_equal (err.code, "RequestLimitExceeded");
    assert_int_equal (err.retryable, 1);

    const char *query_style =
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded"
        "</Message></Error></ErrorResponse>";
    assert_null (aws_ec2_parse (400, query_style, strlen (query_style), &err));
    assert_string_equal (err.code, "Throttling");
    assert_string_equal (err.message, "Rate exceeded");
    assert_int_equal (err.retryable, 1);

    const char *html = "<html><body>Bad Gateway</body></html>";
    assert_null (aws_ec2_parse (502, html, strlen (html), &err));
    assert_string_equal (err.code, "HttpError");
    assert_int_equal (err.http_status, 502);
    assert_int_equal (err.retryable, 1);

    assert_null (aws_ec2_parse (500, "", 0, &err));
    assert_string_equal (err.code, "HttpError");
    assert_int_equal (err.retryable, 1);

    assert_null (aws_ec2_parse (200, "not xml", 7, &err));
    assert_string_equal (err.code, "InvalidResponse");
    assert_int_equal (err.retryable, 0);

    const char *noent = "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>";
    xmlDocPtr doc = aws_ec2_parse (200, noent, strlen (noent), &err);
    if (doc) {          /* parsed without fetching the entity */
        const char *text = aws_xml_text (xmlDocGetRootElement (doc), NULL);
        assert_true (text == NULL || strstr (text, "root:") == NULL);
        xmlFreeDoc (doc);
    }
}

static void
test_classify_and_classes (void **state)
{
    (void) state;
    const struct { const char *code; long status; dx_retry_class_t cls; } table [] = {
        { "RequestLimitExceeded", 503, DX_RETRY_THROTTLED },
        { "Throttling", 400, DX_RETRY_THROTTLED },
        { "ThrottlingException", 400, DX_RETRY_THROTTLED },
        { "EC2ThrottledException", 400, DX_RETRY_THROTTLED },
        { "InternalError", 500, DX_RETRY_TRANSIENT },
        { "Unavailable", 503, DX_RETRY_TRANSIENT },
        { "RequestTimeout", 400, DX_RETRY_TRANSIENT },
        { "Anything", 502, DX_RETRY_TRANSIENT },
        { "Anything", 429, DX_RETRY_THROTTLED },
        { "AuthFailure", 401, DX_RETRY_NO },
        { "SignatureDoesNotMatch", 403, DX_RETRY_NO },
        { "InvalidParameterValue", 400, DX_RETRY_NO },
        { "UnknownParameter", 400, DX_RETRY_NO },
        { "InvalidInstanceID.NotFound", 400, DX_RETRY_NO },
        { "DryRunOperation", 412, DX_RETRY_NO },
        { NULL, 400, DX_RETRY_NO },
    };
    for (size_t i = 0; i < sizeof table / sizeof table [0]; i++)
        assert_int_equal (aws_ec2_classify (table [i].code, table [i].status), table [i].cls);

    double burst, rate;
    assert_string_equal (aws_ec2_action_class ("DescribeInstances", &burst, &rate), "Describe");
    assert_true (burst == 100 && rate == 20);
    assert_string_equal (aws_ec2_action_class ("RunInstances", &burst, &rate), "RunInstances");
    assert_true (burst == 5 && rate == 2);
    assert_string_equal (aws_ec2_action_class ("TerminateInstances", &burst, &rate), "Other");
    assert_true (burst == 200 && rate == 5);
}

/*  AWS_ENDPOINT_URL_EC2 wins over AWS_ENDPOINT_URL, which wins over AWS. */
static void
test_endpoints (void **state)
{
    (void) state;
    unsetenv ("AWS_ENDPOINT_URL_EC2");
    unsetenv ("AWS_ENDPOINT_URL");
    aws_ec2_t *ec2 = aws_ec2_new ("eu-central-1", "A", "S", NULL);
    assert_string_equal (aws_ec2_endpoint (ec2), "https://ec2.eu-central-1.amazonaws.com/");
    aws_ec2_destroy (&ec2);
    ec2 = aws_ec2_new ("cn-north-1", "A", "S", NULL);
    assert_string_equal (aws_ec2_endpoint (ec2), "https://ec2.cn-north-1.amazonaws.com.cn/");
    aws_ec2_destroy (&ec2);
    setenv ("AWS_ENDPOINT_URL", "http://global:1", 1);
    ec2 = aws_ec2_new (REGION, "A", "S", NULL);
    assert_string_equal (aws_ec2_endpoint (ec2), "http://global:1/");
    aws_ec2_destroy (&ec2);
    setenv ("AWS_ENDPOINT_URL_EC2", "http://ec2only:2/", 1);
    ec2 = aws_ec2_new (REGION, "A", "S", NULL);
    assert_string_equal (aws_ec2_endpoint (ec2), "http://ec2only:2/");
    aws_ec2_destroy (&ec2);
    setenv ("AWS_ENDPOINT_URL_EC2", "", 1);        /* empty: unset */
    ec2 = aws_ec2_new (REGION, "A", "S", NULL);
    assert_string_equal (aws_ec2_endpoint (ec2), "http://global:1/");
    aws_ec2_destroy (&ec2);
    unsetenv ("AWS_ENDPOINT_URL");
    setenv ("AWS_ENDPOINT_URL_EC2", s_fake.endpoint, 1);

    assert_null (aws_ec2_new ("", "A", "S", NULL));
    assert_null (aws_ec2_new ("us-west-2/../x", "A", "S", NULL));
    assert_null (aws_ec2_new ("US-WEST-2", "A", "S", NULL));
    assert_null (aws_ec2_new (REGION, "", "S", NULL));
    assert_null (aws_ec2_new (REGION, "A", NULL, NULL));
    aws_ec2_destroy (&ec2);
    aws_ec2_destroy (NULL);
}

//  ---------------------------------------------------------------------
//  The fake EC2

static long
s_count (const char *group, const char *key)
{
    return th_fake_calls (s_fake.endpoint, group, key);
}

static int
s_group_setup (void **state)
{
    const char *const args [] = {
        "--region", REGION, "--seed", "7", "--pending-ms", "0", "--shutdown-ms", "0",
        "--access-key", AKID, "--secret-key", SECRET,
        "--access-key", TMP_AKID, "--secret-key", TMP_KEY, "--session-token", TOKEN, NULL
    };
    *state = &s_fake;
    return ta_fake_up (&s_fake, "aws-ec2", args);
}

static aws_ec2_t *
s_client (const char *akid, const char *secret, const char *token)
{
    aws_ec2_t *ec2 = aws_ec2_new (REGION, akid, secret, token);
    assert_non_null (ec2);
    assert_true (strncmp (aws_ec2_endpoint (ec2), s_fake.endpoint, strlen (s_fake.endpoint)) == 0);
    aws_ec2_set_retry (ec2, &s_fast);
    return ec2;
}

/*  A call that must succeed; prints AWS's error otherwise. */
static xmlDocPtr
s_call_ok (aws_ec2_t *ec2, const char *action, const aws_params_t *p)
{
    aws_error_t err;
    xmlDocPtr doc = aws_ec2_call (ec2, action, p, &err);
    if (!doc)
        print_error ("%s: %s (HTTP %ld): %s\n", action, err.code, err.http_status, err.message);
    assert_non_null (doc);
    return doc;
}

/*  The ids at path/item/field of an answer, as a count; first id copied. */
static size_t
s_items (xmlDocPtr doc, const char *path, const char *field, char *first, size_t size)
{
    size_t n = 0;
    for (xmlNodePtr i = aws_xml_child (xmlDocGetRootElement (doc), path); i; i = aws_xml_next (i)) {
        if (n++ == 0 && first)
            snprintf (first, size, "%s", aws_xml_text (i, field));
    }
    return n;
}

//  ---------------------------------------------------------------------
//  Against the fake

#define NAME_TAG "c1 net +/~ \xc3\xa9t\xc3\xa9 & <x>"

static void
test_fake_vpc_and_tags (void **state)
{
    (void) state;
    aws_ec2_t *ec2 = s_client (AKID, SECRET, NULL);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "CidrBlock", "10.0.0.0/16");
    aws_params_add (p, "TagSpecification.1.ResourceType", "vpc");
    aws_params_tag (p, "TagSpecification.1", "dexter:cluster", "c1");
    aws_params_tag (p, "TagSpecification.1", "Name", NAME_TAG);
    xmlDocPtr doc = s_call_ok (ec2, "CreateVpc", p);
    aws_params_destroy (&p);
    char vpc [64];
    snprintf (vpc, sizeof vpc, "%s", aws_xml_text (xmlDocGetRootElement (doc), "vpc/vpcId"));
    assert_true (strncmp (vpc, "vpc-", 4) == 0 && strlen (vpc) == 21);
    xmlFreeDoc (doc);

    /* found by its ownership tag, with the name as given */
    p = aws_params_new ();
    aws_params_filter (p, "tag:dexter:cluster", "c1", "c2", NULL);
    doc = s_call_ok (ec2, "DescribeVpcs", p);
    aws_params_destroy (&p);
    char found [64] = "";
    assert_int_equal (s_items (doc, "vpcSet/item", "vpcId", found, sizeof found), 1);
    assert_string_equal (found, vpc);
    xmlNodePtr item = aws_xml_child (xmlDocGetRootElement (doc), "vpcSet/item");
    assert_string_equal (aws_xml_tag (item, "Name"), NAME_TAG);
    assert_string_equal (aws_xml_text (item, "cidrBlock"), "10.0.0.0/16");
    xmlFreeDoc (doc);

    /* another cluster's filter finds nothing */
    p = aws_params_new ();
    aws_params_filter (p, "tag:dexter:cluster", "c9", NULL);
    doc = s_call_ok (ec2, "DescribeVpcs", p);
    aws_params_destroy (&p);
    assert_int_equal (s_items (doc, "vpcSet/item", "vpcId", NULL, 0), 0);
    xmlFreeDoc (doc);

    /* CreateTags, then the tag is there */
    p = aws_params_new ();
    const char *ids [] = { vpc };
    aws_params_list (p, "ResourceId", ids, 1);
    aws_params_tag (p, NULL, "dexter:role", "network");
    aws_params_tag (p, NULL, "plus+slash/space", "a+b/c d~");
    doc = s_call_ok (ec2, "CreateTags", p);
    assert_string_equal (aws_xml_text (xmlDocGetRootElement (doc), "return"), "true");
    xmlFreeDoc (doc);
    aws_params_destroy (&p);
    p = aws_params_new ();
    aws_params_list (p, "VpcId", ids, 1);
    doc = s_call_ok (ec2, "DescribeVpcs", p);
    aws_params_destroy (&p);
    item = aws_xml_child (xmlDocGetRootElement (doc), "vpcSet/item");
    assert_string_equal (aws_xml_tag (item, "dexter:role"), "network");
    assert_string_equal (aws_xml_tag (item, "plus+slash/space"), "a+b/c d~");
    xmlFreeDoc (doc);
    aws_ec2_destroy (&ec2);
}

/*  RunInstances in a new subnet with ClientToken, tags on instances and
    volumes and an extra EBS volume; DescribeInstances; TerminateInstances. */
static void
test_fake_instances (void **state)
{
    (void) state;
    aws_ec2_t *ec2 = s_client (AKID, SECRET, NULL);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "CidrBlock", "10.1.0.0/16");
    xmlDocPtr doc = s_call_ok (ec2, "CreateVpc", p);
    aws_params_destroy (&p);
    char vpc [64], subnet [64];
    snprintf (vpc, sizeof vpc, "%s", aws_xml_text (xmlDocGetRootElement (doc), "vpc/vpcId"));
    xmlFreeDoc (doc);
    p = aws_params_new ();
    aws_params_add (p, "VpcId", vpc);
    aws_params_add (p, "CidrBlock", "10.1.1.0/24");
    doc = s_call_ok (ec2, "CreateSubnet", p);
    aws_params_destroy (&p);
    snprintf (subnet, sizeof subnet, "%s", aws_xml_text (xmlDocGetRootElement (doc), "subnet/subnetId"));
    assert_true (strncmp (subnet, "subnet-", 7) == 0);
    xmlFreeDoc (doc);

    p = aws_params_new ();
    aws_params_add (p, "ImageId", AMI);
    aws_params_add (p, "InstanceType", "m5.large");
    aws_params_add (p, "MinCount", "2");
    aws_params_add (p, "MaxCount", "2");
    aws_params_add (p, "SubnetId", subnet);
    aws_params_add (p, "ClientToken", "c1-gen1-agents-0001");
    aws_params_add (p, "UserData", "IyEvYmluL3NoCmVjaG8gaGVsbG8K");
    aws_params_add (p, "BlockDeviceMapping.1.DeviceName", "/dev/sda1");
    aws_params_add (p, "BlockDeviceMapping.1.Ebs.VolumeSize", "30");
    aws_params_add (p, "BlockDeviceMapping.2.DeviceName", "/dev/sdf");
    aws_params_add (p, "BlockDeviceMapping.2.Ebs.VolumeSize", "100");
    aws_params_add (p, "BlockDeviceMapping.2.Ebs.VolumeType", "gp3");
    aws_params_add (p, "BlockDeviceMapping.2.Ebs.DeleteOnTermination", "true");
    aws_params_add (p, "TagSpecification.1.ResourceType", "instance");
    aws_params_tag (p, "TagSpecification.1", "dexter:cluster", "c2");
    aws_params_tag (p, "TagSpecification.1", "dexter:group", "agents");
    aws_params_add (p, "TagSpecification.2.ResourceType", "volume");
    aws_params_tag (p, "TagSpecification.2", "dexter:cluster", "c2");
    doc = s_call_ok (ec2, "RunInstances", p);
    char reservation [64], instance [64];
    snprintf (reservation, sizeof reservation, "%s", aws_xml_text (xmlDocGetRootElement (doc), "reservationId"));
    assert_true (strncmp (reservation, "r-", 2) == 0);
    assert_int_equal (s_items (doc, "instancesSet/item", "instanceId", instance, sizeof instance), 2);
    assert_true (strncmp (instance, "i-", 2) == 0);
    xmlFreeDoc (doc);

    /* the same ClientToken again: the same reservation, nothing new */
    doc = s_call_ok (ec2, "RunInstances", p);
    assert_string_equal (aws_xml_text (xmlDocGetRootElement (doc), "reservationId"), reservation);
    xmlFreeDoc (doc);
    aws_params_destroy (&p);

    /* DescribeInstances by tag: reservations -> instances -> volumes */
    p = aws_params_new ();
    aws_params_filter (p, "tag:dexter:cluster", "c2", NULL);
    aws_params_filter (p, "instance-state-name", "pending", "running", NULL);
    doc = s_call_ok (ec2, "DescribeInstances", p);
    aws_params_destroy (&p);
    const char *ids [2] = { NULL, NULL };
    char idbuf [2][64];
    size_t n = 0;
    for (xmlNodePtr r = aws_xml_child (xmlDocGetRootElement (doc), "reservationSet/item"); r; r = aws_xml_next (r)) {
        assert_string_equal (aws_xml_text (r, "reservationId"), reservation);
        for (xmlNodePtr i = aws_xml_child (r, "instancesSet/item"); i; i = aws_xml_next (i)) {
            assert_true (n < 2);
            snprintf (idbuf [n], sizeof idbuf [n], "%s", aws_xml_text (i, "instanceId"));
            ids [n] = idbuf [n];
            n++;
            assert_string_equal (aws_xml_text (i, "instanceType"), "m5.large");
            assert_string_equal (aws_xml_text (i, "subnetId"), subnet);
            assert_string_equal (aws_xml_tag (i, "dexter:group"), "agents");
            int sdf = 0;
            for (xmlNodePtr b = aws_xml_child (i, "blockDeviceMapping/item"); b; b = aws_xml_next (b))
                if (strcmp (aws_xml_text (b, "deviceName"), "/dev/sdf") == 0) {
                    sdf = 1;
                    assert_true (strncmp (aws_xml_text (b, "ebs/volumeId"), "vol-", 4) == 0);
                    assert_string_equal (aws_xml_text (b, "ebs/deleteOnTermination"), "true");
                }
            assert_true (sdf);
        }
    }
    assert_int_equal (n, 2);
    xmlFreeDoc (doc);

    /* The same answer streamed: the same instances, no further page */
    p = aws_params_new ();
    aws_params_filter (p, "tag:dexter:cluster", "c2", NULL);
    aws_params_add (p, "MaxResults", "5");
    s_seen_t seen = { .count = 0 };
    char next [64] = "x";
    aws_error_t err;
    assert_int_equal (aws_ec2_stream (ec2, "DescribeInstances", p,
                                      "reservationSet/item/instancesSet/item", s_see, &seen,
                                      next, sizeof next, &err), 0);
    aws_params_destroy (&p);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.ids [0], ids [0]);
    assert_string_equal (seen.ids [1], ids [1]);
    assert_string_equal (next, "");
    /* An error answer is an error, as for aws_ec2_call */
    p = aws_params_new ();
    aws_params_add (p, "MaxResults", "2");
    assert_int_equal (aws_ec2_stream (ec2, "DescribeInstances", p, "reservationSet/item",
                                      s_see, &seen, NULL, 0, &err), -1);
    aws_params_destroy (&p);
    assert_string_equal (err.code, "InvalidParameterValue");

    p = aws_params_new ();
    aws_params_filter (p, "tag:dexter:cluster", "c2", NULL);
    aws_params_filter (p, "size", "100", NULL);
    doc = s_call_ok (ec2, "DescribeVolumes", p);
    aws_params_destroy (&p);
    assert_int_equal (s_items (doc, "volumeSet/item", "volumeId", NULL, 0), 2);
    xmlFreeDoc (doc);

    p = aws_params_new ();
    aws_params_list (p, "InstanceId", ids, 2);
    doc = s_call_ok (ec2, "TerminateInstances", p);
    aws_params_destroy (&p);
    size_t terminated = 0;
    for (xmlNodePtr i = aws_xml_child (xmlDocGetRootElement (doc), "instancesSet/item"); i; i = aws_xml_next (i)) {
        assert_string_equal (aws_xml_text (i, "previousState/name"), "running");
        const char *now = aws_xml_text (i, "currentState/name");
        assert_true (strcmp (now, "shutting-down") == 0 || strcmp (now, "terminated") == 0);
        terminated++;
    }
    assert_int_equal (terminated, 2);
    xmlFreeDoc (doc);
    aws_ec2_destroy (&ec2);
}

/*  Wrong credentials fail at once, with AWS's code and message. */
static void
test_fake_auth (void **state)
{
    (void) state;
    long before = s_count ("by_error_code", "AuthFailure");
    aws_ec2_t *ec2 = s_client ("AKIDUNKNOWN00000", SECRET, NULL);
    aws_error_t err;
    assert_null (aws_ec2_call (ec2, "DescribeVpcs", NULL, &err));
    assert_string_equal (err.code, "AuthFailure");
    assert_string_equal (err.message, "AWS was not able to validate the provided access credentials");
    assert_int_equal (err.http_status, 401);
    assert_int_equal (err.retryable, 0);
    assert_int_equal (err.attempts, 1);
    assert_int_equal (s_count ("by_error_code", "AuthFailure"), before + 1);
    aws_ec2_destroy (&ec2);

    ec2 = s_client (AKID, "not-the-secret", NULL);
    assert_null (aws_ec2_call (ec2, "DescribeVpcs", NULL, &err));
    assert_string_equal (err.code, "SignatureDoesNotMatch");
    assert_non_null (strstr (err.message, "signature we calculated does not match"));
    assert_int_equal (err.http_status, 403);
    assert_int_equal (err.retryable, 0);
    assert_int_equal (err.attempts, 1);
    aws_ec2_destroy (&ec2);

    /* a temporary key: with its token it works, without it it does not */
    long calls = s_count ("by_access_key", TMP_AKID);
    ec2 = s_client (TMP_AKID, TMP_KEY, TOKEN);
    xmlDocPtr doc = s_call_ok (ec2, "DescribeVpcs", NULL);
    xmlFreeDoc (doc);
    aws_ec2_destroy (&ec2);
    assert_int_equal (s_count ("by_access_key", TMP_AKID), calls + 1);
    ec2 = s_client (TMP_AKID, TMP_KEY, NULL);
    assert_null (aws_ec2_call (ec2, "DescribeVpcs", NULL, &err));
    assert_string_equal (err.code, "AuthFailure");
    aws_ec2_destroy (&ec2);
    ec2 = s_client (TMP_AKID, TMP_KEY, "wrong-token");
    assert_null (aws_ec2_call (ec2, "DescribeVpcs", NULL, &err));
    assert_string_equal (err.code, "AuthFailure");
    aws_ec2_destroy (&ec2);
}

/*  Permanent errors of the model come back at once. */
static void
test_fake_permanent (void **state)
{
    (void) state;
    aws_ec2_t *ec2 = s_client (AKID, SECRET, NULL);
    long before = s_count ("by_action", "DescribeVpcs");
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "Bogus", "1");
    aws_error_t err;
    assert_null (aws_ec2_call (ec2, "DescribeVpcs", p, &err));
    aws_params_destroy (&p);
    assert_string_equal (err.code, "UnknownParameter");
    assert_string_equal (err.message, "The parameter Bogus is not recognized");
    assert_int_equal (err.retryable, 0);
    assert_int_equal (err.attempts, 1);
    assert_int_equal (s_count ("by_action", "DescribeVpcs"), before + 1);

    p = aws_params_new ();
    aws_params_add (p, "ImageId", AMI);
    aws_params_add (p, "InstanceType", "m5.huge");
    aws_params_add (p, "MinCount", "1");
    aws_params_add (p, "MaxCount", "1");
    assert_null (aws_ec2_call (ec2, "RunInstances", p, &err));
    aws_params_destroy (&p);
    assert_string_equal (err.code, "InvalidParameterValue");
    assert_non_null (strstr (err.message, "m5.huge"));
    assert_int_equal (err.attempts, 1);

    assert_null (aws_ec2_call (ec2, "DescribeNothing", NULL, &err));
    assert_string_equal (err.code, "InvalidAction");
    aws_ec2_destroy (&ec2);
}

/*  Scripted throttling and 5xx: the call succeeds after retries, and the
    fake counted every try. */
static void
test_fake_retries (void **state)
{
    (void) state;
    aws_ec2_t *ec2 = s_client (AKID, SECRET, NULL);
    long tries = s_count ("by_action", "DescribeVpcs");
    long throttled = s_count ("by_error_code", "RequestLimitExceeded");
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"DescribeVpcs\", \"code\": \"RequestLimitExceeded\", \"count\": 3}"));
    aws_error_t err;
    xmlDocPtr doc = aws_ec2_call (ec2, "DescribeVpcs", NULL, &err);
    assert_non_null (doc);
    xmlFreeDoc (doc);
    assert_int_equal (err.attempts, 4);
    assert_int_equal (s_count ("by_action", "DescribeVpcs"), tries + 4);
    assert_int_equal (s_count ("by_error_code", "RequestLimitExceeded"), throttled + 3);

    long internal = s_count ("by_error_code", "InternalError");
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"*\", \"code\": \"InternalError\", \"count\": 2}"));
    doc = aws_ec2_call (ec2, "DescribeVpcs", NULL, &err);
    assert_non_null (doc);
    xmlFreeDoc (doc);
    assert_int_equal (err.attempts, 3);
    assert_int_equal (s_count ("by_error_code", "InternalError"), internal + 2);

    /* too many: the last error, marked retryable, after max_attempts tries */
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"DescribeVpcs\", \"code\": \"RequestLimitExceeded\", \"count\": 6}"));
    assert_null (aws_ec2_call (ec2, "DescribeVpcs", NULL, &err));
    assert_string_equal (err.code, "RequestLimitExceeded");
    assert_string_equal (err.message, "Request limit exceeded.");
    assert_int_equal (err.http_status, 503);
    assert_int_equal (err.retryable, 1);
    assert_int_equal (err.attempts, 6);

    /* a lost reply (the fake did it, then failed): the retry with the same
       ClientToken returns the same reservation, no duplicate instance */
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "CidrBlock", "10.2.0.0/16");
    doc = s_call_ok (ec2, "CreateVpc", p);
    aws_params_destroy (&p);
    char vpc [64], subnet [64];
    snprintf (vpc, sizeof vpc, "%s", aws_xml_text (xmlDocGetRootElement (doc), "vpc/vpcId"));
    xmlFreeDoc (doc);
    p = aws_params_new ();
    aws_params_add (p, "VpcId", vpc);
    aws_params_add (p, "CidrBlock", "10.2.1.0/24");
    doc = s_call_ok (ec2, "CreateSubnet", p);
    aws_params_destroy (&p);
    snprintf (subnet, sizeof subnet, "%s", aws_xml_text (xmlDocGetRootElement (doc), "subnet/subnetId"));
    xmlFreeDoc (doc);
    long ok_before = s_count ("by_action_ok", "RunInstances");
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"RunInstances\", \"code\": \"InternalError\", \"count\": 1, \"after\": true}"));
    p = aws_params_new ();
    aws_params_add (p, "ImageId", AMI);
    aws_params_add (p, "InstanceType", "t3.micro");
    aws_params_add (p, "MinCount", "1");
    aws_params_add (p, "MaxCount", "1");
    aws_params_add (p, "SubnetId", subnet);
    aws_params_add (p, "ClientToken", "lost-reply-token");
    doc = aws_ec2_call (ec2, "RunInstances", p, &err);
    aws_params_destroy (&p);
    assert_non_null (doc);
    assert_int_equal (err.attempts, 2);
    xmlFreeDoc (doc);
    assert_int_equal (s_count ("by_action_ok", "RunInstances"), ok_before + 1);
    json_t *st = th_fake_ask (&s_fake, "GET", "state", NULL);
    json_t *instances = json_object_get (st, "instances");
    size_t in_subnet = 0, i;
    json_t *inst;
    json_array_foreach (instances, i, inst) {
        json_t *sn = json_object_get (inst, "subnet_id");
        if (!sn)
            sn = json_object_get (inst, "SubnetId");
        in_subnet += sn && json_is_string (sn) && strcmp (json_string_value (sn), subnet) == 0;
    }
    json_decref (st);
    assert_int_equal (in_subnet, 1);
    aws_ec2_destroy (&ec2);
}

/*  Random throttling (30 %) and 5xx (10 %): every call still succeeds. */
static void
test_fake_random_faults (void **state)
{
    (void) state;
    aws_ec2_t *ec2 = s_client (AKID, SECRET, NULL);
    dx_retry_policy_t patient = { 2, 20, 12, 5 };
    aws_ec2_set_retry (ec2, &patient);
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"throttle_rate\": 0.3, \"error_rate\": 0.1, \"seed\": 11}"));
    long throttled = s_count ("by_error_code", "RequestLimitExceeded");
    long internal = s_count ("by_error_code", "InternalError");
    int retried = 0;
    for (int i = 0; i < 30; i++) {
        aws_error_t err;
        xmlDocPtr doc = aws_ec2_call (ec2, "DescribeVpcs", NULL, &err);
        if (!doc)
            print_error ("call %d: %s %s\n", i, err.code, err.message);
        assert_non_null (doc);
        xmlFreeDoc (doc);
        retried += err.attempts - 1;
    }
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"throttle_rate\": 0, \"error_rate\": 0}"));
    long faults = s_count ("by_error_code", "RequestLimitExceeded") - throttled
                + s_count ("by_error_code", "InternalError") - internal;
    assert_true (retried > 3);
    assert_int_equal (faults, retried);
    aws_ec2_destroy (&ec2);
}

/*  Nobody listening: a retryable NetworkError after max_attempts tries. */
static void
test_network_error (void **state)
{
    (void) state;
    setenv ("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:9", 1);     /* discard: refused */
    aws_ec2_t *ec2 = aws_ec2_new (REGION, AKID, SECRET, NULL);
    setenv ("AWS_ENDPOINT_URL_EC2", s_fake.endpoint, 1);
    dx_retry_policy_t two = { 1, 5, 2, 1 };
    aws_ec2_set_retry (ec2, &two);
    aws_error_t err;
    assert_null (aws_ec2_call (ec2, "DescribeVpcs", NULL, &err));
    assert_string_equal (err.code, "NetworkError");
    assert_int_equal (err.http_status, 0);
    assert_int_equal (err.retryable, 1);
    assert_int_equal (err.attempts, 2);
    assert_true (strlen (err.message) > 0);
    aws_ec2_destroy (&ec2);
}

/*  The client-side buckets: per account, region and class, shared by
    every client given the same registry. */
static void
test_fake_rate_limit (void **state)
{
    (void) state;
    dx_ratelimit_t *limits = dx_ratelimit_new ();
    aws_ec2_t *ec2 = s_client (AKID, SECRET, NULL);
    aws_ec2_set_limits (ec2, limits);
    /* empty the account's RunInstances bucket (burst 5, 2/s) */
    dx_bucket_t *run = dx_ratelimit_bucket (limits, AKID "|" REGION "|RunInstances", 5, 2, dx_mono_ms ());
    for (int i = 0; i < 5; i++)
        assert_int_equal (dx_bucket_take (run, dx_mono_ms ()), 0);
    /* another class takes from its own bucket */
    xmlDocPtr doc = s_call_ok (ec2, "DescribeVpcs", NULL);
    xmlFreeDoc (doc);
    dx_bucket_t *describe = dx_ratelimit_bucket (limits, AKID "|" REGION "|Describe", 1, 1, 0);
    assert_true (describe->burst == 100 && describe->rate == 20);
    assert_true (describe->tokens == 99);
    assert_true (run->tokens < 1);
    /* RunInstances waits for its token (~500 ms); DryRun answers 412 */
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "ImageId", AMI);
    aws_params_add (p, "InstanceType", "t3.micro");
    aws_params_add (p, "MinCount", "1");
    aws_params_add (p, "MaxCount", "1");
    aws_params_add (p, "DryRun", "true");
    int64_t t0 = dx_mono_ms ();
    aws_error_t err;
    assert_null (aws_ec2_call (ec2, "RunInstances", p, &err));
    int64_t took = dx_mono_ms () - t0;
    assert_string_equal (err.code, "DryRunOperation");
    assert_int_equal (err.http_status, 412);
    assert_true (took >= 350);
    /* a second client of the same account shares the bucket */
    aws_ec2_t *other = s_client (AKID, SECRET, NULL);
    aws_ec2_set_limits (other, limits);
    t0 = dx_mono_ms ();
    assert_null (aws_ec2_call (other, "RunInstances", p, &err));
    assert_true (dx_mono_ms () - t0 >= 350);
    aws_params_destroy (&p);
    aws_ec2_destroy (&other);
    aws_ec2_destroy (&ec2);
    dx_ratelimit_destroy (&limits);
}

/*  With debug logging, retries and failures are logged, and no line holds
    a secret, a token, an access key id or an Authorization header. */
static void
test_no_secrets_in_logs (void **state)
{
    (void) state;
    char path [128];
    snprintf (path, sizeof path, "%s/stderr.log", s_fake.dir);
    int saved = th_log_capture (path);
    assert_true (saved >= 0);

    aws_ec2_t *ec2 = s_client (TMP_AKID, TMP_KEY, TOKEN);
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"DescribeVpcs\", \"code\": \"RequestLimitExceeded\", \"count\": 1}"));
    xmlDocPtr doc = aws_ec2_call (ec2, "DescribeVpcs", NULL, NULL);
    xmlFreeDoc (doc);
    aws_ec2_destroy (&ec2);
    ec2 = s_client (AKID, "wrong/secret", NULL);
    assert_null (aws_ec2_call (ec2, "DescribeVpcs", NULL, NULL));
    aws_ec2_destroy (&ec2);

    char *text = th_log_release (saved, path);
    assert_non_null (text);
    assert_non_null (strstr (text, "RequestLimitExceeded"));
    assert_non_null (strstr (text, "SignatureDoesNotMatch"));
    const char *never [] = { SECRET, TMP_KEY, TOKEN, "wrong/secret", AKID, TMP_AKID, "Authorization", "AWS4-HMAC" };
    for (size_t i = 0; i < sizeof never / sizeof never [0]; i++)
        if (strstr (text, never [i])) {
            print_error ("log holds %s:\n%s\n", never [i], text);
            fail ();
        }
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_uri_encode),
        cmocka_unit_test (test_params),
        cmocka_unit_test (test_xml_describe_instances),
        cmocka_unit_test (test_xml_stream),
        cmocka_unit_test (test_xml_errors),
        cmocka_unit_test (test_classify_and_classes),
        cmocka_unit_test (test_endpoints),
        cmocka_unit_test (test_fake_vpc_and_tags),
        cmocka_unit_test (test_fake_instances),
        cmocka_unit_test (test_fake_auth),
        cmocka_unit_test (test_fake_permanent),
        cmocka_unit_test (test_fake_retries),
        cmocka_unit_test (test_fake_random_faults),
        cmocka_unit_test (test_network_error),
        cmocka_unit_test (test_fake_rate_limit),
        cmocka_unit_test (test_no_secrets_in_logs),
    };
    int rc = cmocka_run_group_tests (tests, s_group_setup, th_fake_teardown);
    th_tmpdir_remove (s_fake.dir, rc != 0);
    xmlCleanupParser ();
    return rc;
}
