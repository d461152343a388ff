/*  Tests of services/aws-worker's steps, through aws_step_run, against
    tests/fakes/fake_ec2.py (started by the harness on a free loopback
    port): every request is decoded by botocore's EC2 model and its
    signature checked by botocore's signer inside the fake, which also
    enforces AWS's dependency rules (tests/fakes/README.md).

    The steps run in the order the scheduler runs them (network, security,
    image, keypair, hosts; every step again, which must create nothing;
    a remove; destroy.* in order, twice), with the context built from the
    reported resources exactly as the scheduler builds it. Then: errors
    (AuthFailure, a wrong secret, an unknown instance type, a missing key
    pair, a missing image) are failed and permanent with AWS's own code;
    a lost RunInstances reply still gives one instance (ClientToken);
    throttling is absorbed, or ends in `retry` once the budget is spent;
    DependencyViolation is waited out inside destroy.security, and ends in
    `retry` once it outlives the wait; a spent client token (its instance
    terminated) gives a new instance; a cancelled job stops; a fixed
    address held by a live instance fails the host step at once, one held
    by an instance shutting down is waited out; a destroy of 250 instances
    stays within EC2's 200 filter values; a host's twin is terminated. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "../../services/aws-worker/aws_ec2.h"
#include "../../services/aws-worker/aws_steps.h"
#include "harness_aws.h"

#include "dx_ratelimit.h"
#include "dx_util.h"

#define AKID    "AKIDDEXTERSTEPS1"
#define SECRET  "steps/Secret+Key=Marker77"
#define REGION  "us-west-2"
#define AMI     "ami-0c1f0a2b3c4d50003"     /* the fake's newest Canonical jammy amd64 */

static th_fake_t s_fake;
static struct {
    char pem [8192];                        /* an RSA private key, PEM */
    char pub [2048];                        /* its public key, as ssh-keygen wrote it */
} T;

static const dx_retry_policy_t s_fast = { 5, 40, 6, 1 };
/*  limits: one registry for every step, as the worker keeps one per
    process, so that the steps are paced by the worker's own buckets as
    the fake's (EC2's) are: a call the fake refuses is then one a test
    asked for. */
static aws_steps_config_t s_config = { NULL, 20, 20000, &s_fast };

//  ---------------------------------------------------------------------
//  The fake EC2

static long
s_calls (const char *group, const char *key)
{
    return th_fake_calls (s_fake.endpoint, group, key);
}

/*  Resources of state list `list` whose tag `tag` is `value` (tag NULL:
    all), instances only when not terminated. */
static size_t
s_count (const json_t *state, const char *list, const char *tag, const char *value)
{
    size_t n = 0, i;
    json_t *r;
    json_array_foreach (json_object_get (state, list), i, r) {
        const char *st = json_string_value (json_object_get (r, "state"));
        if (strcmp (list, "instances") == 0 && st && strcmp (st, "terminated") == 0)
            continue;
        const char *v = tag? json_string_value (json_object_get (json_object_get (r, "tags"), tag)): "";
        if (v && (!tag || strcmp (v, value) == 0))
            n++;
    }
    return n;
}

/*  The first resource of list whose tag is value, borrowed from state. */
static json_t *
s_find (const json_t *state, const char *list, const char *tag, const char *value)
{
    size_t i;
    json_t *r;
    json_array_foreach (json_object_get (state, list), i, r) {
        const char *v = json_string_value (json_object_get (json_object_get (r, "tags"), tag));
        const char *st = json_string_value (json_object_get (r, "state"));
        if (v && strcmp (v, value) == 0 && !(st && strcmp (st, "terminated") == 0))
            return r;
    }
    return NULL;
}

static const char *const s_lists [] = {
    "vpcs", "subnets", "internet_gateways", "route_tables", "security_groups",
    "key_pairs", "instances", "volumes", "addresses", NULL
};

/*  Everything tagged dexter:cluster=name, over every list. */
static size_t
s_owned_count (const char *name)
{
    json_t *state = th_fake_ask (&s_fake, "GET", "state", NULL);
    size_t n = 0;
    for (int i = 0; s_lists [i]; i++)
        n += s_count (state, s_lists [i], "dexter:cluster", name);
    json_decref (state);
    return n;
}

//  ---------------------------------------------------------------------
//  Jobs as the scheduler makes them

/*  A cluster of the tests' key pair and credentials, its steps paced by
    the worker's buckets. */
static void
s_cluster_init (ta_cluster_t *c, const char *name)
{
    ta_cluster_init (c, name, "dexter-test", AKID, SECRET);
    c->sshkeydata = T.pem;
    c->steps = &s_config;
    c->strict = true;
}

/*  A step that must fail or retry with code, permanent as given. */
static void
s_fails (ta_cluster_t *c, const char *kind, const char *id, json_t *extra,
         dx_step_outcome_t outcome, int permanent, const char *code)
{
    dx_step_out_t out;
    ta_run (c, kind, id, extra, &out);
    if (out.outcome != outcome || strcmp (out.code, code) != 0)
        print_error ("step %s: %s %s: %s (wanted %s %s)\n", id,
                     dx_step_outcome_name (out.outcome), out.code, out.message,
                     dx_step_outcome_name (outcome), code);
    assert_int_equal (out.outcome, outcome);
    assert_int_equal (out.permanent, permanent);
    assert_string_equal (out.code, code);
    assert_true (strlen (out.message) > 0);
    dx_step_out_fini (&out);
}

static const char *
s_attr_of (const json_t *resources, const char *key, const char *attr)
{
    const char *v = json_string_value (json_object_get (ta_res (resources, key), attr));
    assert_non_null (v);
    return v;
}

/*  Host step fields as sch_plan makes them. */
static json_t *
s_host (const char *role, const char *group, int slot, const char *hostname,
        const char *type, const char *token, bool public, json_t *disks)
{
    json_t *step = json_pack ("{s:s, s:s, s:i, s:s, s:s, s:i, s:o, s:b, s:s, s:o, s:o, s:s}",
        "role", role, "group", group, "slot", slot, "hostname", hostname,
        "instance_type", type, "disk_size", strcmp (role, "agent") == 0? 30: 20,
        "disks", disks? disks: json_array (), "public", public,
        "group_role", public? "slave_public": "", "attributes",
        json_pack ("{s:s}", "rack", "r1 $(id)"), "vars", json_object (),
        "client_token", token);
    if (strcmp (role, "master") == 0)
        json_object_set_new (step, "private_ip", json_string ("10.0.0.11"));
    if (strcmp (role, "access") == 0)
        json_object_set_new (step, "private_ip", json_string ("10.0.0.10"));
    return step;
}

//  ---------------------------------------------------------------------
//  Setup

/*  The text of file name in the fake's directory into buf; 0, or -1. */
static int
s_load (const char *name, char *buf, size_t size)
{
    char path [128];
    snprintf (path, sizeof path, "%s/%s", s_fake.dir, name);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t n = fread (buf, 1, size - 1, f);
    buf [n] = 0;
    fclose (f);
    return n > 0? 0: -1;
}

/*  Makes an RSA key (PEM) with ssh-keygen into T.pem, its public key
    into T.pub. */
static int
s_make_key (void)
{
    char cmd [256];
    snprintf (cmd, sizeof cmd, "ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f %s/rsa "
              ">/dev/null", s_fake.dir);
    if (system (cmd) != 0)
        return -1;
    return s_load ("rsa", T.pem, sizeof T.pem) || s_load ("rsa.pub", T.pub, sizeof T.pub);
}

static int
s_group_setup (void **state)
{
    const char *const args [] = {
        "--region", "any", "--seed", "11", "--pending-ms", "60", "--shutdown-ms", "60",
        "--access-key", AKID, "--secret-key", SECRET, NULL
    };
    *state = &s_fake;
    if (ta_fake_up (&s_fake, "aws-steps", args) || s_make_key ()
    ||  !(s_config.limits = dx_ratelimit_new ()))
        return -1;
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"terminated_ttl_ms\": 300}"));
    return 0;
}

static int
s_group_teardown (void **state)
{
    th_fake_teardown (state);
    dx_ratelimit_destroy (&s_config.limits);
    return 0;
}

/*  1 when two OpenSSH public key lines hold the same key: their first two
    fields (type and key) are equal; the comments may differ. */
static int
s_same_key (const char *ours, const char *theirs)
{
    const char *space = strchr (theirs, ' ');
    size_t n = space? (size_t) (space - theirs) + 1 + strcspn (space + 1, " \n")
                    : strcspn (theirs, "\n");
    return strncmp (ours, theirs, n) == 0 && (ours [n] == ' ' || ours [n] == 0);
}

//  ---------------------------------------------------------------------
//  The whole life of a cluster

/*  Counts of what the fake holds for c1, per list, as one JSON object. */
static json_t *
s_census (const char *name)
{
    json_t *state = th_fake_ask (&s_fake, "GET", "state", NULL);
    json_t *census = json_object ();
    for (int i = 0; s_lists [i]; i++)
        json_object_set_new (census, s_lists [i],
                             json_integer ((json_int_t) s_count (state, s_lists [i],
                                                                 "dexter:cluster", name)));
    json_object_set_new (census, "key_pairs_imported",
                         json_integer ((json_int_t) s_count (state, "key_pairs",
                                                             "dexter:imported-by", name)));
    json_decref (state);
    return census;
}

static void
s_deploy (ta_cluster_t *c)
{
    json_decref (ta_done (c, "network", "network", NULL));
    json_decref (ta_done (c, "security", "security", NULL));
    json_decref (ta_done (c, "image", "image", NULL));
    json_decref (ta_done (c, "keypair", "keypair", NULL));
    json_decref (ta_done (c, "host", "host.access",
                         s_host ("access", "access", 0, "c1-access", "t3.small", "0123456789ab-1-access-0", false, NULL)));
    json_decref (ta_done (c, "host", "host.masters.0",
                         s_host ("master", "masters", 0, "c1-master-0", "m5.large", "0123456789ab-1-masters-0", false, NULL)));
    json_decref (ta_done (c, "host", "host.g1.0",
                         s_host ("agent", "g1", 0, "c1-g1-0", "m5.xlarge", "0123456789ab-1-g1-0", false,
                                 json_pack ("[{s:i, s:s, s:s}, {s:i, s:s, s:s}]",
                                            "size", 100, "type", "gp2", "device", "xvdf",
                                            "size", 20, "type", "io1", "device", "xvdg"))));
    json_decref (ta_done (c, "host", "host.pub.0",
                         s_host ("agent", "pub", 0, "c1-pub-0", "m5.large", "0123456789ab-1-pub-0", true, NULL)));
}

static void
test_cluster_life (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "c1");

    //  network: VPC, two subnets (fixed addresses, agents), gateway, route table
    json_t *res = ta_done (&c, "network", "network", NULL);
    assert_int_equal (json_array_size (res), 5);
    assert_true (strncmp (s_attr_of (res, "vpc", "provider_id"), "vpc-", 4) == 0);
    assert_true (strncmp (s_attr_of (res, "subnet", "provider_id"), "subnet-", 7) == 0);
    assert_string_equal (s_attr_of (res, "subnet", "zone"), REGION "a");
    assert_string_equal (s_attr_of (res, "subnet", "cidr"), "10.0.0.0/24");
    assert_string_equal (s_attr_of (res, "subnet.agents", "cidr"), "10.0.32.0/19");
    assert_string_not_equal (s_attr_of (res, "subnet", "provider_id"),
                             s_attr_of (res, "subnet.agents", "provider_id"));
    assert_string_equal (s_attr_of (res, "igw", "kind"), "internet_gateway");
    assert_string_equal (s_attr_of (res, "rtb", "kind"), "route_table");
    json_decref (res);
    json_t *st = th_fake_ask (&s_fake, "GET", "state", NULL);
    json_t *vpc = s_find (st, "vpcs", "dexter:cluster", "c1");
    assert_non_null (vpc);
    assert_true (json_is_true (json_object_get (vpc, "enable_dns_hostnames")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (vpc, "tags"), "Name")), "c1-vpc");
    assert_string_equal (json_string_value (json_object_get (json_object_get (vpc, "tags"), "dexter:uid")), "0123456789ab");
    json_t *rtb = s_find (st, "route_tables", "dexter:cluster", "c1");
    assert_int_equal (json_array_size (json_object_get (rtb, "routes")), 1);
    assert_int_equal (json_array_size (json_object_get (rtb, "associations")), 2);
    json_t *igw = s_find (st, "internet_gateways", "dexter:cluster", "c1");
    assert_string_equal (json_string_value (json_object_get (igw, "vpc_id")),
                         json_string_value (json_object_get (c.context, "vpc")));
    json_decref (st);

    //  security: three groups with their rules
    res = ta_done (&c, "security", "security", NULL);
    assert_int_equal (json_array_size (res), 3);
    json_decref (res);
    st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "security_groups", "dexter:cluster", "c1"), 3);
    size_t i;
    json_t *g;
    json_array_foreach (json_object_get (st, "security_groups"), i, g) {
        const char *name = json_string_value (json_object_get (g, "name"));
        size_t rules = json_array_size (json_object_get (g, "ingress"));
        if (strcmp (name, "c1-sg-cluster") == 0)
            assert_int_equal (rules, 1);
        if (strcmp (name, "c1-sg-access") == 0)
            assert_int_equal (rules, 2);
        if (strcmp (name, "c1-sg-public") == 0)
            assert_int_equal (rules, 3);
    }
    json_decref (st);

    //  image: Canonical's newest jammy amd64 server image, not the traps
    res = ta_done (&c, "image", "image", NULL);
    assert_string_equal (s_attr_of (res, "image", "provider_id"), AMI);
    json_decref (res);
    //  keypair: imported from the PEM, tagged as imported, not owned
    res = ta_done (&c, "keypair", "keypair", NULL);
    assert_string_equal (s_attr_of (res, "keypair", "provider_id"), "dexter-test");
    assert_string_equal (s_attr_of (res, "keypair", "kind"), "key_pair");
    json_decref (res);
    st = th_fake_ask (&s_fake, "GET", "state", NULL);
    json_t *key = s_find (st, "key_pairs", "dexter:imported-by", "c1");
    assert_non_null (key);
    assert_string_equal (json_string_value (json_object_get (key, "name")), "dexter-test");
    assert_true (s_same_key (json_string_value (json_object_get (key, "public_key")), T.pub));
    json_decref (st);

    //  hosts
    res = ta_done (&c, "host", "host.access",
                  s_host ("access", "access", 0, "c1-access", "t3.small", "0123456789ab-1-access-0", false, NULL));
    assert_string_equal (s_attr_of (res, "host.access", "state"), "running");
    assert_string_equal (s_attr_of (res, "host.access", "hostname"), "c1-access");
    assert_string_equal (s_attr_of (res, "host.access", "role"), "access");
    assert_string_equal (s_attr_of (res, "host.access", "public_ip"),
                         s_attr_of (res, "eip.access", "public_ip"));
    assert_true (strncmp (s_attr_of (res, "eip.access", "provider_id"), "eipalloc-", 9) == 0);
    assert_true (strlen (s_attr_of (res, "host.access", "private_ip")) > 0);
    assert_int_equal (strlen (s_attr_of (res, "host.access", "launched_at")), 24);  /* ISO 8601, ms */
    assert_true (strlen (s_attr_of (res, "host.access", "instance_type")) > 0);
    json_decref (res);
    res = ta_done (&c, "host", "host.masters.0",
                  s_host ("master", "masters", 0, "c1-master-0", "m5.large", "0123456789ab-1-masters-0", false, NULL));
    assert_int_equal (json_integer_value (json_object_get (ta_res (res, "host.masters.0"), "slot")), 0);
    json_decref (res);
    res = ta_done (&c, "host", "host.g1.0",
                  s_host ("agent", "g1", 0, "c1-g1-0", "m5.xlarge", "0123456789ab-1-g1-0", false,
                          json_pack ("[{s:i, s:s, s:s}, {s:i, s:s, s:s}]",
                                     "size", 100, "type", "gp2", "device", "xvdf",
                                     "size", 20, "type", "io1", "device", "xvdg")));
    assert_string_equal (s_attr_of (res, "host.g1.0", "public_ip"), "");
    json_decref (res);
    res = ta_done (&c, "host", "host.pub.0",
                  s_host ("agent", "pub", 0, "c1-pub-0", "m5.large", "0123456789ab-1-pub-0", true, NULL));
    assert_true (strlen (s_attr_of (res, "host.pub.0", "public_ip")) > 0);
    json_decref (res);

    st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "instances", "dexter:cluster", "c1"), 4);
    //  Root volumes and the agent's two disks, tagged with their host
    assert_int_equal (s_count (st, "volumes", "dexter:cluster", "c1"), 6);
    assert_int_equal (s_count (st, "volumes", "dexter:host", "c1-g1-0"), 3);
    json_t *agent = s_find (st, "instances", "dexter:host", "c1-g1-0");
    assert_non_null (agent);
    assert_string_equal (json_string_value (json_object_get (agent, "state")), "running");
    assert_string_equal (json_string_value (json_object_get (agent, "key_name")), "dexter-test");
    assert_string_equal (json_string_value (json_object_get (agent, "client_token")), "0123456789ab-1-g1-0");
    assert_string_equal (json_string_value (json_object_get (json_object_get (agent, "tags"), "dexter:group")), "g1");
    assert_string_equal (json_string_value (json_object_get (json_object_get (agent, "tags"), "dexter:role")), "agent");
    const char *user_data = json_string_value (json_object_get (agent, "user_data"));
    assert_non_null (user_data);
    assert_non_null (strstr (user_data, "hostnamectl set-hostname 'c1-g1-0'"));
    assert_non_null (strstr (user_data, "dx_disk xvdf 0\ndx_disk xvdg 1\n"));
    assert_non_null (strstr (user_data, "\\\"r1 $(id)\\\""));
    json_t *sgs = json_object_get (agent, "sg_ids");
    assert_int_equal (json_array_size (sgs), 1);
    assert_string_equal (json_string_value (json_array_get (sgs, 0)),
                         json_string_value (json_object_get (c.context, "sg.cluster")));
    json_array_foreach (json_object_get (st, "volumes"), i, g) {
        json_t *att = json_object_get (g, "attachment");
        if (!att || strcmp (json_string_value (json_object_get (att, "instance_id")),
                            json_string_value (json_object_get (agent, "id"))) != 0)
            continue;
        const char *dev = json_string_value (json_object_get (att, "device"));
        long size = (long) json_integer_value (json_object_get (g, "size"));
        assert_true (json_is_true (json_object_get (att, "delete_on_termination")));
        if (strcmp (dev, "/dev/sda1") == 0)
            assert_int_equal (size, 30);
        else
        if (strcmp (dev, "/dev/xvdf") == 0)
            assert_int_equal (size, 100);
        else {
            assert_string_equal (dev, "/dev/xvdg");
            assert_string_equal (json_string_value (json_object_get (g, "volume_type")), "io1");
        }
    }
    json_t *access = s_find (st, "instances", "dexter:host", "c1-access");
    assert_int_equal (json_array_size (json_object_get (access, "sg_ids")), 2);
    json_t *pub = s_find (st, "instances", "dexter:host", "c1-pub-0");
    assert_int_equal (json_array_size (json_object_get (pub, "sg_ids")), 2);
    assert_non_null (json_string_value (json_object_get (pub, "public_ip")));
    json_t *eip = s_find (st, "addresses", "dexter:cluster", "c1");
    assert_string_equal (json_string_value (json_object_get (eip, "instance_id")),
                         json_string_value (json_object_get (access, "id")));
    json_decref (st);

    //  Every step again: nothing new, nothing created
    json_t *before = s_census ("c1");
    long creates = s_calls ("by_action_ok", "RunInstances") + s_calls ("by_action_ok", "CreateVpc")
                 + s_calls ("by_action_ok", "AllocateAddress") + s_calls ("by_action_ok", "ImportKeyPair");
    s_deploy (&c);
    json_t *after = s_census ("c1");
    assert_true (json_equal (before, after));
    assert_int_equal (s_calls ("by_action_ok", "RunInstances") + s_calls ("by_action_ok", "CreateVpc")
                      + s_calls ("by_action_ok", "AllocateAddress") + s_calls ("by_action_ok", "ImportKeyPair"),
                      creates);
    assert_int_equal (s_calls ("by_action", "CreateSubnet"), 2);
    assert_int_equal (s_calls ("by_action", "CreateSecurityGroup"), 3);
    assert_int_equal (s_calls ("by_action", "AuthorizeSecurityGroupIngress"), 3);
    json_decref (before);
    json_decref (after);

    //  An unknown instance type: permanent, AWS's code, nothing made
    s_fails (&c, "host", "host.bad.0",
             s_host ("agent", "bad", 0, "c1-bad-0", "m9.huge", "0123456789ab-1-bad-0", false, NULL),
             DX_STEP_FAILED, 1, "InvalidParameterValue");
    assert_int_equal (s_owned_count ("c1"), 5 + 6 + 1 + 4 + 3);

    //  A lost RunInstances reply: the retry with the same token gives the same instance.
    //  The fake's buckets start full again (the worker's and EC2's clocks differ
    //  by a request's latency), so that the calls counted are the step's two
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"ec2_limits\": true}"));
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"RunInstances\", \"code\": \"InternalError\", "
                                                         "\"status\": 500, \"after\": true, \"count\": 1}"));
    long runs = s_calls ("by_action", "RunInstances");
    json_decref (ta_done (&c, "host", "host.g1.1",
                         s_host ("agent", "g1", 1, "c1-g1-1", "m5.large", "0123456789ab-1-g1-1", false, NULL)));
    assert_int_equal (s_calls ("by_action", "RunInstances"), runs + 2);
    st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "instances", "dexter:host", "c1-g1-1"), 1);
    json_decref (st);

    //  Throttling, then a remove of one agent
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"*\", \"code\": \"RequestLimitExceeded\", "
                                                         "\"status\": 503, \"count\": 3}"));
    res = ta_done (&c, "remove", "remove.g1.1",
                  json_pack ("{s:s, s:i, s:s}", "group", "g1", "slot", 1, "hostname", "c1-g1-1"));
    assert_int_equal (json_array_size (res), 1);
    assert_string_equal (s_attr_of (res, "host.g1.1", "state"), "terminated");
    assert_true (strncmp (s_attr_of (res, "host.g1.1", "provider_id"), "i-", 2) == 0);
    json_decref (res);
    st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "instances", "dexter:host", "c1-g1-1"), 0);
    assert_int_equal (s_count (st, "instances", "dexter:cluster", "c1"), 4);
    json_decref (st);
    //  The same host again with its spent client token (its instance is
    //  terminated): a new instance, under a token derived from the dead one
    res = ta_done (&c, "host", "host.g1.1",
                  s_host ("agent", "g1", 1, "c1-g1-1", "m5.large", "0123456789ab-1-g1-1", false, NULL));
    assert_string_equal (s_attr_of (res, "host.g1.1", "state"), "running");
    json_decref (res);
    st = th_fake_ask (&s_fake, "GET", "state", NULL);
    json_t *again = s_find (st, "instances", "dexter:host", "c1-g1-1");
    assert_non_null (again);
    assert_true (strncmp (json_string_value (json_object_get (again, "client_token")),
                          "0123456789ab-1-g1-1-", 20) == 0);
    json_decref (st);
    json_decref (ta_done (&c, "remove", "remove.g1.1",
                         json_pack ("{s:s, s:i, s:s}", "group", "g1", "slot", 1, "hostname", "c1-g1-1")));
    //  Removing it again: already gone, still reported so it is forgotten
    res = ta_done (&c, "remove", "remove.g1.1",
                  json_pack ("{s:s, s:i, s:s}", "group", "g1", "slot", 1, "hostname", "c1-g1-1"));
    assert_string_equal (s_attr_of (res, "host.g1.1", "state"), "terminated");
    json_decref (res);

    //  Destroy, in order; then once more: nothing left, nothing fails
    for (int round = 0; round < 2; round++) {
        res = ta_done (&c, "destroy.instances", "destroy.instances", NULL);
        assert_int_equal (json_array_size (res), round? 0: 4);
        if (!round) {
            assert_string_equal (s_attr_of (res, "host.access", "state"), "deleted");
            assert_string_equal (s_attr_of (res, "host.masters.0", "state"), "deleted");
            assert_string_equal (s_attr_of (res, "host.g1.0", "state"), "deleted");
            assert_string_equal (s_attr_of (res, "host.pub.0", "state"), "deleted");
        }
        json_decref (res);
        res = ta_done (&c, "destroy.addresses", "destroy.addresses", NULL);
        assert_int_equal (json_array_size (res), round? 0: 1);
        if (!round)
            assert_string_equal (s_attr_of (res, "eip.access", "state"), "deleted");
        json_decref (res);
        res = ta_done (&c, "destroy.security", "destroy.security", NULL);
        assert_int_equal (json_array_size (res), round? 0: 3);
        if (!round)
            assert_string_equal (s_attr_of (res, "sg.public", "state"), "deleted");
        json_decref (res);
        res = ta_done (&c, "destroy.network", "destroy.network", NULL);
        assert_int_equal (json_array_size (res), round? 0: 5);   /* vpc, 2 subnets, igw, rtb */
        json_decref (res);
    }
    usleep (400 * 1000);                /* terminated instances drop out (ttl 300 ms) */
    assert_int_equal (s_owned_count ("c1"), 0);
    st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "key_pairs", "dexter:imported-by", "c1"), 1);
    assert_int_equal (s_count (st, "vpcs", NULL, NULL), 0);
    assert_int_equal (s_count (st, "volumes", NULL, NULL), 0);
    json_decref (st);
    assert_int_equal (json_object_size (c.context), 3);    /* masters_ips, image, keypair */
    ta_cluster_fini (&c);
}

//  ---------------------------------------------------------------------
//  Errors

static void
test_errors (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "c2");
    //  Unknown key: AuthFailure; wrong secret: the fake's SignatureDoesNotMatch
    snprintf (c.akid, sizeof c.akid, "AKIDNOBODYKNOWS1");
    s_fails (&c, "network", "network", NULL, DX_STEP_FAILED, 1, "AuthFailure");
    snprintf (c.akid, sizeof c.akid, "%s", AKID);
    snprintf (c.secret, sizeof c.secret, "wrong/secret");
    s_fails (&c, "network", "network", NULL, DX_STEP_FAILED, 1, "SignatureDoesNotMatch");
    snprintf (c.secret, sizeof c.secret, "%s", SECRET);
    //  No credentials at all; a bad region; an unknown step
    c.akid [0] = 0;
    s_fails (&c, "image", "image", NULL, DX_STEP_FAILED, 1, "AuthFailure");
    snprintf (c.akid, sizeof c.akid, "%s", AKID);
    json_object_set_new (c.config, "region", json_string ("Mars 1"));
    s_fails (&c, "image", "image", NULL, DX_STEP_FAILED, 1, "InvalidParameterValue");
    json_object_set_new (c.config, "region", json_string (REGION));
    s_fails (&c, "teleport", "teleport", NULL, DX_STEP_FAILED, 1, "InvalidStep");
    //  security without the network's context
    s_fails (&c, "security", "security", NULL, DX_STEP_FAILED, 1, "InvalidStep");

    //  A key pair that does not exist, without key data
    c.sshkeydata = NULL;
    json_object_set_new (c.config, "sshkey", json_string ("nobody-key"));
    s_fails (&c, "keypair", "keypair", NULL, DX_STEP_FAILED, 1, "InvalidKeyPair.NotFound");
    c.sshkeydata = "-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n";
    s_fails (&c, "keypair", "keypair", NULL, DX_STEP_FAILED, 1, "InvalidKey.Format");
    //  An image that does not exist
    json_object_set_new (c.config, "image", json_string ("ami-0123456789abcdef0"));
    s_fails (&c, "image", "image", NULL, DX_STEP_FAILED, 1, "InvalidAMIID.NotFound");
    json_object_set_new (c.config, "image", json_string (AMI));
    json_decref (ta_done (&c, "image", "image", NULL));

    //  Throttling past the retry budget: retry, with AWS's code
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"DescribeImages\", \"code\": "
                                                         "\"RequestLimitExceeded\", \"status\": 503, \"count\": 6}"));
    s_fails (&c, "image", "image", NULL, DX_STEP_RETRY, 0, "RequestLimitExceeded");
    //  A limit exceeded: permanent
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"vpc_limit\": 0}"));
    s_fails (&c, "network", "network", NULL, DX_STEP_FAILED, 1, "VpcLimitExceeded");
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"vpc_limit\": 5}"));
    assert_int_equal (s_owned_count ("c2"), 0);
    ta_cluster_fini (&c);
}

static int
s_always (void *arg)
{
    (void) arg;
    return 1;
}

static void
test_cancel (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "c4");
    json_t *assign = ta_assign (&c, "network", "network", NULL);
    dx_step_out_t out;
    dx_step_out_init (&out, s_always, NULL);
    long before = s_calls ("by_action", "CreateVpc");
    assert_int_equal (aws_step_run (&s_config, assign, &out), -1);
    assert_int_equal (out.outcome, DX_STEP_RETRY);
    assert_string_equal (out.code, "CANCELLED");
    assert_int_equal (s_calls ("by_action", "CreateVpc"), before);
    dx_step_out_fini (&out);
    json_decref (assign);
    ta_cluster_fini (&c);
}

static int64_t s_cancel_at;

static int
s_cancel_later (void *arg)
{
    (void) arg;
    return dx_mono_ms () >= s_cancel_at;
}

/*  A cancel raised while a call is being retried stops the retries: the
    step does not wait out the whole retry budget. */
static void
test_cancel_during_retries (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "c9");
    static const dx_retry_policy_t slow = { 400, 400, 8, 1 };
    const dx_retry_policy_t *fast = s_config.retry;
    s_config.retry = &slow;
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"DescribeVpcs\", \"code\": "
                                                         "\"InternalError\", \"status\": 500, \"count\": 6}"));
    long before = s_calls ("by_action", "DescribeVpcs");
    json_t *assign = ta_assign (&c, "network", "network", NULL);
    dx_step_out_t out;
    dx_step_out_init (&out, s_cancel_later, NULL);
    s_cancel_at = dx_mono_ms () + 150;
    assert_int_equal (aws_step_run (&s_config, assign, &out), -1);
    assert_int_equal (out.outcome, DX_STEP_RETRY);
    assert_string_equal (out.code, "CANCELLED");
    assert_true (s_calls ("by_action", "DescribeVpcs") - before <= 2);
    dx_step_out_fini (&out);
    json_decref (assign);
    //  Without the cancel the step takes the rest of the faults in its stride
    s_config.retry = fast;
    json_decref (ta_done (&c, "network", "network", NULL));
    json_decref (ta_done (&c, "destroy.network", "destroy.network", NULL));
    ta_cluster_fini (&c);
}

/*  Runs a bare instance at private address ip in
    subnet, as someone might start one by hand (no Dexter tags); its id
    into id. */
static char *
s_hand_run (const char *subnet, const char *ip, char *id, size_t size)
{
    aws_ec2_t *ec2 = aws_ec2_new (REGION, AKID, SECRET, NULL);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "ImageId", AMI);
    aws_params_add (p, "InstanceType", "t3.small");
    aws_params_add (p, "MinCount", "1");
    aws_params_add (p, "MaxCount", "1");
    aws_params_add (p, "SubnetId", subnet);
    aws_params_add (p, "PrivateIpAddress", ip);
    aws_error_t err;
    xmlDocPtr doc = aws_ec2_call (ec2, "RunInstances", p, &err);
    if (!doc)
        print_error ("RunInstances by hand: %s %s\n", err.code, err.message);
    assert_non_null (doc);
    const char *text = aws_xml_text (aws_xml_child (xmlDocGetRootElement (doc), "instancesSet/item"),
                                     "instanceId");
    assert_non_null (text);
    snprintf (id, size, "%s", text);
    xmlFreeDoc (doc);
    aws_params_destroy (&p);
    aws_ec2_destroy (&ec2);
    return id;
}

static void
s_hand_terminate (const char *id)
{
    aws_ec2_t *ec2 = aws_ec2_new (REGION, AKID, SECRET, NULL);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "InstanceId.1", id);
    aws_error_t err;
    xmlDocPtr doc = aws_ec2_call (ec2, "TerminateInstances", p, &err);
    assert_non_null (doc);
    xmlFreeDoc (doc);
    aws_params_destroy (&p);
    aws_ec2_destroy (&ec2);
}

/*  destroy.security while an instance is still shutting down: AWS says
    DependencyViolation until it is terminated; the step waits it out. */
static void
test_dependency_wait (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "c3");
    c.sshkeydata = T.pem;
    ta_before_hosts (&c);
    json_t *res = ta_done (&c, "host", "host.g1.0",
                          s_host ("agent", "g1", 0, "c3-g1-0", "t3.small", "c3-1-g1-0", false, NULL));
    char id [64];
    snprintf (id, sizeof id, "%s", s_attr_of (res, "host.g1.0", "provider_id"));
    json_decref (res);

    //  A dependency that outlives the step's wait: retry, AWS's code (the
    //  instance still uses the subnet)
    s_config.wait_ms = 150;
    s_fails (&c, "destroy.network", "destroy.network", NULL, DX_STEP_RETRY, 0,
             "DependencyViolation");
    s_config.wait_ms = 20000;

    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"shutdown_ms\": 700}"));
    s_hand_terminate (id);

    long violations = s_calls ("by_error_code", "DependencyViolation");
    int64_t start = dx_mono_ms ();
    json_decref (ta_done (&c, "destroy.security", "destroy.security", NULL));
    assert_true (dx_mono_ms () - start >= 300);
    assert_true (s_calls ("by_error_code", "DependencyViolation") > violations);
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"shutdown_ms\": 60}"));
    json_decref (ta_done (&c, "destroy.instances", "destroy.instances", NULL));
    json_decref (ta_done (&c, "destroy.addresses", "destroy.addresses", NULL));
    json_decref (ta_done (&c, "destroy.network", "destroy.network", NULL));
    usleep (400 * 1000);
    assert_int_equal (s_owned_count ("c3"), 0);
    ta_cluster_fini (&c);
}

/*  A master's fixed address (10.0.0.11) held by an instance that is not
    this host: while it runs, the host step fails at once, permanent, with
    AWS's InvalidIPAddress.InUse and the holder named (no 15-minute wait
    for something no wait frees); while it shuts down, the step waits and
    then runs the master at its address. */
static void
test_fixed_address_held (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "c5");
    ta_before_hosts (&c);
    char holder [64];
    s_hand_run (json_string_value (json_object_get (c.context, "subnet")), "10.0.0.11",
                holder, sizeof holder);

    //  A live holder: failed at once, the holder named
    dx_step_out_t out;
    int64_t start = dx_mono_ms ();
    ta_run (&c, "host", "host.masters.0",
           s_host ("master", "masters", 0, "c5-master-0", "m5.large", "c5-1-masters-0", false, NULL),
           &out);
    assert_int_equal (out.outcome, DX_STEP_FAILED);
    assert_int_equal (out.permanent, 1);
    assert_string_equal (out.code, "InvalidIPAddress.InUse");
    assert_non_null (strstr (out.message, holder));
    assert_non_null (strstr (out.message, "10.0.0.11"));
    assert_true (dx_mono_ms () - start < s_config.wait_ms / 2);
    dx_step_out_fini (&out);
    json_t *st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "instances", "dexter:cluster", "c5"), 0);
    json_decref (st);

    //  A holder shutting down: waited out
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"shutdown_ms\": 700}"));
    s_hand_terminate (holder);
    long in_use = s_calls ("by_error_code", "InvalidIPAddress.InUse");
    json_t *res = ta_done (&c, "host", "host.masters.0",
                          s_host ("master", "masters", 0, "c5-master-0", "m5.large",
                                  "c5-1-masters-0", false, NULL));
    assert_true (s_calls ("by_error_code", "InvalidIPAddress.InUse") > in_use);
    assert_string_equal (s_attr_of (res, "host.masters.0", "private_ip"), "10.0.0.11");
    json_decref (res);
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"shutdown_ms\": 60}"));

    ta_destroy_all (&c);
    usleep (400 * 1000);
    assert_int_equal (s_owned_count ("c5"), 0);
    ta_cluster_fini (&c);
}

/*  A destroy of more instances than a filter takes values (200): asked and
    terminated 100 at a time, every one is gone. The fake refuses a filter
    of 201 values with FilterLimitExceeded, as EC2 does. */
static void
test_destroy_many (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "c6");
    json_decref (ta_done (&c, "network", "network", NULL));
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"instance_limit\": 300, \"shutdown_ms\": 10}"));
    aws_ec2_t *ec2 = aws_ec2_new (REGION, AKID, SECRET, NULL);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "ImageId", AMI);
    aws_params_add (p, "InstanceType", "t3.small");
    aws_params_add (p, "MinCount", "250");
    aws_params_add (p, "MaxCount", "250");
    aws_params_add (p, "SubnetId", json_string_value (json_object_get (c.context, "subnet")));
    aws_params_add (p, "TagSpecification.1.ResourceType", "instance");
    aws_params_add (p, "TagSpecification.1.Tag.1.Key", "dexter:cluster");
    aws_params_add (p, "TagSpecification.1.Tag.1.Value", "c6");
    aws_error_t err;
    xmlDocPtr doc = aws_ec2_call (ec2, "RunInstances", p, &err);
    if (!doc)
        print_error ("RunInstances by hand: %s %s\n", err.code, err.message);
    assert_non_null (doc);
    xmlFreeDoc (doc);
    aws_params_destroy (&p);
    json_t *st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "instances", "dexter:cluster", "c6"), 250);
    json_decref (st);

    //  The limit, as EC2 has it
    p = aws_params_new ();
    aws_params_add (p, "Filter.1.Name", "instance-id");
    for (int i = 1; i <= 201; i++) {
        char id [32];
        snprintf (id, sizeof id, "i-%017d", i);
        aws_params_addf (p, id, "Filter.1.Value.%d", i);
    }
    assert_null (aws_ec2_call (ec2, "DescribeInstances", p, &err));
    assert_string_equal (err.code, "FilterLimitExceeded");
    aws_params_destroy (&p);
    aws_ec2_destroy (&ec2);

    long refused = s_calls ("by_error_code", "FilterLimitExceeded");
    json_decref (ta_done (&c, "destroy.instances", "destroy.instances", NULL));
    assert_int_equal (s_calls ("by_error_code", "FilterLimitExceeded"), refused);
    st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "instances", "dexter:cluster", "c6"), 0);
    json_decref (st);
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"instance_limit\": 64, \"shutdown_ms\": 60}"));
    json_decref (ta_done (&c, "destroy.network", "destroy.network", NULL));
    ta_cluster_fini (&c);
}

/*  A host found twice (a twin launched by a stale attempt) keeps one
    instance, the same one every time; the twin is terminated. */
static void
test_twin_terminated (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "c7");
    ta_before_hosts (&c);
    json_t *res = ta_done (&c, "host", "host.g1.0",
                          s_host ("agent", "g1", 0, "c7-g1-0", "t3.small", "c7tok-1-g1-0",
                                  false, NULL));
    char first [64];
    snprintf (first, sizeof first, "%s", s_attr_of (res, "host.g1.0", "provider_id"));
    json_decref (res);

    //  The twin, tagged as the host
    aws_ec2_t *ec2 = aws_ec2_new (REGION, AKID, SECRET, NULL);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "ImageId", AMI);
    aws_params_add (p, "InstanceType", "t3.small");
    aws_params_add (p, "MinCount", "1");
    aws_params_add (p, "MaxCount", "1");
    aws_params_add (p, "SubnetId", json_string_value (json_object_get (c.context,
                                                                         "subnet.agents")));
    aws_params_add (p, "TagSpecification.1.ResourceType", "instance");
    aws_params_add (p, "TagSpecification.1.Tag.1.Key", "dexter:cluster");
    aws_params_add (p, "TagSpecification.1.Tag.1.Value", "c7");
    aws_params_add (p, "TagSpecification.1.Tag.2.Key", "dexter:host");
    aws_params_add (p, "TagSpecification.1.Tag.2.Value", "c7-g1-0");
    aws_error_t err;
    xmlDocPtr doc = aws_ec2_call (ec2, "RunInstances", p, &err);
    assert_non_null (doc);
    xmlFreeDoc (doc);
    aws_params_destroy (&p);
    aws_ec2_destroy (&ec2);
    json_t *st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "instances", "dexter:host", "c7-g1-0"), 2);
    json_decref (st);

    long terminations = s_calls ("by_action", "TerminateInstances");
    res = ta_done (&c, "host", "host.g1.0",
                  s_host ("agent", "g1", 0, "c7-g1-0", "t3.small", "c7tok-1-g1-0", false, NULL));
    const char *kept = s_attr_of (res, "host.g1.0", "provider_id");
    assert_true (s_calls ("by_action", "TerminateInstances") == terminations + 1);
    usleep (300 * 1000);                /* the fake's shutting-down -> terminated */
    st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "instances", "dexter:host", "c7-g1-0"), 1);
    json_decref (st);
    //  The same one every time
    json_t *again = ta_done (&c, "host", "host.g1.0",
                            s_host ("agent", "g1", 0, "c7-g1-0", "t3.small", "c7tok-1-g1-0",
                                    false, NULL));
    assert_string_equal (s_attr_of (again, "host.g1.0", "provider_id"), kept);
    assert_true (strcmp (kept, first) == 0 || strcmp (kept, first) < 0);
    json_decref (again);
    json_decref (res);

    ta_destroy_all (&c);
    ta_cluster_fini (&c);
}

/*  A create without a ClientToken that EC2 carried out but answered with a
    500 is not repeated inside the call (it would make a second VPC, a
    second Elastic IP): the step ends `retry`, and run again it finds what
    the first try made by its tags. */
static void
test_unrepeatable_creates (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "c8");
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"CreateVpc\", \"code\": "
                                                         "\"InternalError\", \"status\": 500, \"after\": true, "
                                                         "\"count\": 1}"));
    long creates = s_calls ("by_action", "CreateVpc");
    s_fails (&c, "network", "network", NULL, DX_STEP_RETRY, 0, "InternalError");
    assert_int_equal (s_calls ("by_action", "CreateVpc"), creates + 1);
    json_decref (ta_done (&c, "network", "network", NULL));
    assert_int_equal (s_calls ("by_action", "CreateVpc"), creates + 1);
    json_t *st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "vpcs", "dexter:cluster", "c8"), 1);
    json_decref (st);
    json_decref (ta_done (&c, "security", "security", NULL));
    json_decref (ta_done (&c, "image", "image", NULL));
    json_decref (ta_done (&c, "keypair", "keypair", NULL));

    //  The access node's Elastic IP
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"AllocateAddress\", \"code\": "
                                                         "\"InternalError\", \"status\": 500, \"after\": true, "
                                                         "\"count\": 1}"));
    json_t *host = s_host ("access", "access", 0, "c8-access", "t3.small", "c8tok-1-access-0",
                           false, NULL);
    s_fails (&c, "host", "host.access", json_incref (host), DX_STEP_RETRY, 0,
             "InternalError");
    json_decref (ta_done (&c, "host", "host.access", host));
    st = th_fake_ask (&s_fake, "GET", "state", NULL);
    assert_int_equal (s_count (st, "addresses", "dexter:cluster", "c8"), 1);
    json_decref (st);

    ta_destroy_all (&c);
    ta_cluster_fini (&c);
}

/*  No secret reaches a log, even at debug level. */
static void
test_no_secrets_in_logs (void **state)
{
    (void) state;
    char path [128];
    snprintf (path, sizeof path, "%s/stderr.log", s_fake.dir);
    int saved = th_log_capture (path);
    assert_true (saved >= 0);
    ta_cluster_t c;
    s_cluster_init (&c, "c5");
    json_object_set_new (c.config, "sshkey", json_string ("c5-key"));
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"*\", \"code\": \"InternalError\", "
                                                         "\"status\": 500, \"count\": 2}"));
    json_decref (ta_done (&c, "keypair", "keypair", NULL));
    snprintf (c.secret, sizeof c.secret, "wrong/Secret+Marker");
    s_fails (&c, "image", "image", NULL, DX_STEP_FAILED, 1, "SignatureDoesNotMatch");
    ta_cluster_fini (&c);
    char *text = th_log_release (saved, path);
    assert_non_null (text);
    unlink (path);
    assert_non_null (strstr (text, "InternalError"));       /* the log was captured */
    const char *never [] = { SECRET, "Secret+Marker", "PRIVATE KEY", AKID };
    for (size_t i = 0; i < sizeof never / sizeof never [0]; i++)
        if (strstr (text, never [i])) {
            print_error ("log holds %s:\n%s\n", never [i], text);
            fail ();
        }
    free (text);
}

/*  A PEM CRL of base64 body length len (the worker takes it as it is:
    the access node checks it against the CA). Caller frees. */
static char *
s_pem_crl (size_t len)
{
    char *pem = malloc (len + len / 64 + 64);
    size_t at = (size_t) sprintf (pem, "-----BEGIN X509 CRL-----\n");
    for (size_t i = 0; i < len; i++) {
        pem [at++] = "MIIBQUJD+/09"[i % 12];
        if (i % 64 == 63 || i + 1 == len)
            pem [at++] = '\n';
    }
    sprintf (pem + at, "-----END X509 CRL-----\n");
    return pem;
}

/*  access.crl: the access node is launched with its tags in the instance
    metadata; the CRL goes into its tags as dx_crltags says (the PEM body,
    256 characters a tag), again with a longer one; a CRL beyond the
    tags' room and one that is not a PEM CRL fail for good, naming why. */
static void
test_access_crl (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "crl1");
    ta_before_hosts (&c);
    json_t *res = ta_done (&c, "host", "host.access",
                          s_host ("access", "access", 0, "crl1-access", "t3.small",
                                  "0123456789ab-9-access-0", false, NULL));
    char id [64];
    snprintf (id, sizeof id, "%s", s_attr_of (res, "host.access", "provider_id"));
    json_decref (res);
    json_t *st = th_fake_ask (&s_fake, "GET", "state", NULL);
    json_t *inst = s_find (st, "instances", "dexter:cluster", "crl1");
    assert_non_null (inst);
    assert_string_equal (json_string_value (json_object_get (inst, "metadata_tags")), "enabled");
    json_decref (st);

    //  The context as the scheduler gives it; two sizes of CRL, 3 and 12 tags
    const size_t lens [] = { 600, 2900 };
    for (size_t n = 0; n < 2; n++) {
        char *pem = s_pem_crl (lens [n]);
        char number [8];
        snprintf (number, sizeof number, "%zu", n + 2);
        json_object_set_new (c.context, "access", json_string (id));
        json_object_set_new (c.context, "vpn_crl", json_string (pem));
        json_object_set_new (c.context, "vpn_crl_number", json_string (number));
        res = ta_done (&c, "access.crl", "access.crl", NULL);
        assert_string_equal (s_attr_of (res, "access.crl", "provider_id"), id);
        assert_string_equal (s_attr_of (res, "access.crl", "crl_number"), number);
        size_t chunks = (lens [n] + 255) / 256;
        char want [32];
        snprintf (want, sizeof want, "%zu", chunks);
        assert_string_equal (s_attr_of (res, "access.crl", "chunks"), want);
        json_decref (res);
        st = th_fake_ask (&s_fake, "GET", "state", NULL);
        inst = s_find (st, "instances", "dexter:cluster", "crl1");
        const json_t *tags = json_object_get (inst, "tags");
        snprintf (want, sizeof want, "%s:%zu", number, chunks);
        assert_string_equal (json_string_value (json_object_get (tags, "dexter:crl")), want);
        //  The chunks joined are the PEM's body
        char *body = calloc (1, lens [n] + 1);
        for (size_t i = 0; i < chunks; i++) {
            char key [32];
            snprintf (key, sizeof key, "dexter:crl.%zu", i);
            const char *chunk = json_string_value (json_object_get (tags, key));
            assert_non_null (chunk);
            assert_true (strlen (chunk) <= 256);
            strcat (body, chunk);
        }
        assert_int_equal (strlen (body), lens [n]);
        for (size_t i = 0; i < lens [n]; i++)
            assert_int_equal (body [i], "MIIBQUJD+/09"[i % 12]);
        assert_string_equal (json_string_value (json_object_get (tags, "Name")), "crl1-access");
        free (body);
        free (pem);
        json_decref (st);
    }
    //  40 tags of 256 characters at most
    char *pem = s_pem_crl (40 * 256 + 4);
    json_object_set_new (c.context, "vpn_crl", json_string (pem));
    s_fails (&c, "access.crl", "access.crl", NULL, DX_STEP_FAILED, 1, "CrlTooLarge");
    free (pem);
    json_object_set_new (c.context, "vpn_crl", json_string ("-----BEGIN CERTIFICATE-----\n"));
    s_fails (&c, "access.crl", "access.crl", NULL, DX_STEP_FAILED, 1, "InvalidCrl");
    json_object_del (c.context, "access");
    json_object_del (c.context, "vpn_crl");
    json_object_del (c.context, "vpn_crl_number");
    ta_destroy_all (&c);
    ta_cluster_fini (&c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_cluster_life),
        cmocka_unit_test (test_errors),
        cmocka_unit_test (test_cancel),
        cmocka_unit_test (test_cancel_during_retries),
        cmocka_unit_test (test_dependency_wait),
        cmocka_unit_test (test_fixed_address_held),
        cmocka_unit_test (test_destroy_many),
        cmocka_unit_test (test_twin_terminated),
        cmocka_unit_test (test_unrepeatable_creates),
        cmocka_unit_test (test_no_secrets_in_logs),
        cmocka_unit_test (test_access_crl),
    };
    int rc = cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
    th_tmpdir_remove (s_fake.dir, rc != 0);
    xmlCleanupParser ();
    return rc;
}
