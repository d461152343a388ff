/*  Tests of services/aws-worker's batch steps (`hosts`, and `remove` with
    `slots`), through aws_step_run, against tests/fakes/fake_ec2.py (every
    request decoded by botocore's EC2 model inside the fake).

    A group's 20 agents are one RunInstances (MinCount 1, MaxCount 20),
    tagged with the batch and mapped to their slots by amiLaunchIndex; the
    wait is one DescribeInstances per poll whatever the number of hosts;
    the step run again makes no call that creates; a call EC2 fills only
    in part leaves the rest to a further call from the first slot missing;
    a step killed right after its RunInstances, or whose reply was lost,
    finds the batch again (by its tags, or its client token) and makes no
    twin; a remove of 3 is one TerminateInstances; destroy.instances finds
    batch instances by their tags; the one-host steps find batch instances
    by their slot; RunInstances takes one request token and MaxCount
    instance tokens of the client-side buckets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>

#include "../../services/aws-worker/aws_ec2.h"
#include "../../services/aws-worker/aws_steps.h"
#include "harness_aws.h"

#include "dx_util.h"

#define AKID    "AKIDDEXTERBATCH01"
#define SECRET  "batch/Secret+Key=Marker42"
#define REGION  "us-west-2"

static th_fake_t s_fake;
static struct {
    char pem [8192];
} T;

static const dx_retry_policy_t s_fast = { 5, 40, 6, 1 };
static aws_steps_config_t s_config = { NULL, 20, 20000, &s_fast };

//  ---------------------------------------------------------------------
//  The fake EC2

static long
s_calls (const char *action)
{
    return th_fake_calls (s_fake.endpoint, "by_action", action);
}

/*  Every call the fake answered. */
static long
s_total (void)
{
    json_t *calls = th_fake_ask (&s_fake, "GET", "calls", NULL);
    long n = (long) json_integer_value (json_object_get (calls, "total"));
    json_decref (calls);
    return n;
}

/*  The live instances of cluster in the fake (caller decrefs): an array. */
static json_t *
s_instances (const char *cluster)
{
    json_t *state = th_fake_ask (&s_fake, "GET", "state", NULL);
    json_t *out = json_array ();
    size_t i;
    json_t *r;
    json_array_foreach (json_object_get (state, "instances"), i, r) {
        const char *st = json_string_value (json_object_get (r, "state"));
        const char *c = json_string_value (json_object_get (json_object_get (r, "tags"),
                                                            "dexter:cluster"));
        if (c && strcmp (c, cluster) == 0 && strcmp (st, "terminated") != 0
        &&  strcmp (st, "shutting-down") != 0)
            json_array_append (out, r);
    }
    json_decref (state);
    return out;
}

/*  The instance of slot of group in instances (by its batch tag and launch
    index), borrowed; NULL when none or more than one. */
static json_t *
s_instance_of (const json_t *instances, const char *group, long long slot)
{
    json_t *found = NULL;
    size_t i, n = 0;
    json_t *r;
    json_array_foreach (instances, i, r) {
        json_t *tags = json_object_get (r, "tags");
        const char *g = json_string_value (json_object_get (tags, "dexter:group"));
        const char *batch = json_string_value (json_object_get (tags, "dexter:batch"));
        long long index = json_integer_value (json_object_get (r, "launch_index"));
        if (g && batch && strcmp (g, group) == 0 && atoll (batch) + index == slot) {
            found = r;
            n++;
        }
    }
    return n == 1? found: NULL;
}

//  ---------------------------------------------------------------------
//  Jobs as the scheduler makes them

/*  The texts job.progress was given in the last step, one a line. */
static char s_progress [65536];

/*  A cluster of the batch's key pair and credentials. */
static void
s_cluster_init (ta_cluster_t *c, const char *name)
{
    ta_cluster_init (c, name, "dexter-batch", AKID, SECRET);
    c->sshkeydata = T.pem;
    c->steps = &s_config;
    c->progress = s_progress;
    c->progress_size = sizeof s_progress;
}

static const char *
s_attr (const json_t *resource, const char *attr)
{
    const char *v = json_string_value (json_object_get (resource, attr));
    assert_non_null (v);
    return v;
}

/*  A `hosts` step's fields as the scheduler plans them: slots from..to of
    group, their host names c-group-slot, the batch's token. */
static json_t *
s_hosts (const char *cluster, const char *group, int from, int to, const char *token)
{
    json_t *slots = json_array (), *names = json_array ();
    for (int slot = from; slot <= to; slot++) {
        char name [64];
        snprintf (name, sizeof name, "%s-%s-%d", cluster, group, slot);
        json_array_append_new (slots, json_integer (slot));
        json_array_append_new (names, json_string (name));
    }
    return json_pack ("{s:s, s:s, s:o, s:o, s:s, s:i, s:o, s:b, s:s, s:o, s:o, s:s}",
        "role", "agent", "group", group, "slots", slots, "hostnames", names,
        "instance_type", "m5.large", "disk_size", 30, "disks", json_array (), "public", 0,
        "group_role", "", "attributes", json_pack ("{s:s}", "rack", "r1"),
        "vars", json_object (), "client_token", token);
}

/*  A batch `remove` of slots (a list ending with -1). */
static json_t *
s_remove (const char *cluster, const char *group, const int *slots)
{
    json_t *list = json_array (), *names = json_array ();
    for (; *slots >= 0; slots++) {
        char name [64];
        snprintf (name, sizeof name, "%s-%s-%d", cluster, group, *slots);
        json_array_append_new (list, json_integer (*slots));
        json_array_append_new (names, json_string (name));
    }
    return json_pack ("{s:s, s:o, s:o}", "group", group, "slots", list, "hostnames", names);
}

/*  Every slot from..to of resources (a hosts step's) is there, running,
    with the attributes a host step records, its instance in the fake the
    one of its batch tag and launch index. */
static void
s_check_hosts (const char *cluster, const json_t *resources, const char *group, int from, int to)
{
    json_t *instances = s_instances (cluster);
    for (int slot = from; slot <= to; slot++) {
        char key [64], name [64], text [32];
        snprintf (key, sizeof key, "host.%s.%d", group, slot);
        snprintf (name, sizeof name, "%s-%s-%d", cluster, group, slot);
        json_t *r = ta_res (resources, key);
        assert_string_equal (s_attr (r, "kind"), "instance");
        assert_string_equal (s_attr (r, "state"), "running");
        assert_string_equal (s_attr (r, "hostname"), name);
        assert_string_equal (s_attr (r, "group"), group);
        assert_string_equal (s_attr (r, "role"), "agent");
        assert_string_equal (s_attr (r, "instance_type"), "m5.large");
        assert_true (strncmp (s_attr (r, "private_ip"), "10.0.", 5) == 0);
        assert_true (strlen (s_attr (r, "launched_at")) > 0);
        s_attr (r, "public_ip");
        assert_int_equal (json_integer_value (json_object_get (r, "slot")), slot);
        json_t *inst = s_instance_of (instances, group, slot);
        if (!inst)
            print_error ("slot %d has no instance, or more than one\n", slot);
        assert_non_null (inst);
        assert_string_equal (s_attr (r, "provider_id"), s_attr (inst, "id"));
        json_t *tags = json_object_get (inst, "tags");
        assert_null (json_object_get (tags, "dexter:host"));
        assert_string_equal (json_string_value (json_object_get (tags, "dexter:role")), "agent");
        //  Its user data names it from its launch index and its batch
        snprintf (text, sizeof text, "$((%s + 10#$index))",
                  json_string_value (json_object_get (tags, "dexter:batch")));
        const char *user_data = json_string_value (json_object_get (inst, "user_data"));
        assert_non_null (user_data);
        assert_non_null (strstr (user_data, text));
        char said [96];
        snprintf (said, sizeof said, "host %s runs: %s at ", name, s_attr (r, "provider_id"));
        assert_non_null (strstr (s_progress, said));
    }
    json_decref (instances);
}

//  ---------------------------------------------------------------------
//  Setup

static int
s_make_key (void)
{
    char cmd [256], path [128];
    snprintf (cmd, sizeof cmd, "ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f %s/rsa "
              ">/dev/null", s_fake.dir);
    if (system (cmd) != 0)
        return -1;
    snprintf (path, sizeof path, "%s/rsa", s_fake.dir);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t n = fread (T.pem, 1, sizeof T.pem - 1, f);
    T.pem [n] = 0;
    fclose (f);
    return n > 0? 0: -1;
}

static int
s_group_setup (void **state)
{
    const char *const args [] = {
        "--region", "any", "--seed", "18", "--pending-ms", "0", "--shutdown-ms", "0",
        "--access-key", AKID, "--secret-key", SECRET, NULL
    };
    *state = &s_fake;
    return ta_fake_up (&s_fake, "aws-batch", args) || s_make_key ()? -1: 0;
}

/*  Each test starts from a fresh fake: nothing but its images. */
static int
s_setup (void **state)
{
    (void) state;
    json_decref (th_fake_ask (&s_fake, "POST", "reset", NULL));
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"pending_ms\": 0, \"shutdown_ms\": 0, "
                                                         "\"instance_limit\": 64}"));
    return 0;
}

//  ---------------------------------------------------------------------
//  The tests

/*  20 agents in one RunInstances, waited for with one DescribeInstances
    per poll; run again, the step makes no call that creates and reports
    the same instances; a remove of 3 is one TerminateInstances and one
    DescribeInstances per poll; destroy.instances finds the rest by their
    tags and names each by its slot. */
static void
test_launch_remove_destroy (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "b1");
    ta_before_hosts (&c);

    long runs = s_calls ("RunInstances"), describes = s_calls ("DescribeInstances");
    json_t *res = ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b1", "g1", 0, 19, "tok-b1-g1-0"));
    assert_int_equal (s_calls ("RunInstances"), runs + 1);
    //  One to find what is there, one poll (the fake starts them at once)
    assert_int_equal (s_calls ("DescribeInstances"), describes + 2);
    assert_int_equal (json_array_size (res), 20);
    s_check_hosts ("b1", res, "g1", 0, 19);
    assert_non_null (strstr (s_progress, "; 20 of 20 hosts run\n"));
    json_t *instances = s_instances ("b1");
    assert_int_equal (json_array_size (instances), 20);
    json_decref (instances);

    //  Again: found, nothing launched, the same instances
    runs = s_calls ("RunInstances");
    describes = s_calls ("DescribeInstances");
    json_t *again = ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b1", "g1", 0, 19, "tok-b1-g1-0"));
    assert_int_equal (s_calls ("RunInstances"), runs);
    assert_int_equal (s_calls ("DescribeInstances"), describes + 2);
    for (int slot = 0; slot < 20; slot++) {
        char key [32];
        snprintf (key, sizeof key, "host.g1.%d", slot);
        assert_string_equal (s_attr (ta_res (again, key), "provider_id"),
                             s_attr (ta_res (res, key), "provider_id"));
    }
    json_decref (again);

    //  Scale down: the 3 highest slots in one call
    long terminates = s_calls ("TerminateInstances");
    describes = s_calls ("DescribeInstances");
    static const int gone [] = { 17, 18, 19, -1 };
    json_t *removed = ta_done (&c, "remove", "remove.g1", s_remove ("b1", "g1", gone));
    assert_int_equal (s_calls ("TerminateInstances"), terminates + 1);
    assert_int_equal (s_calls ("DescribeInstances"), describes + 2);
    assert_int_equal (json_array_size (removed), 3);
    for (int i = 0; gone [i] >= 0; i++) {
        char key [32];
        snprintf (key, sizeof key, "host.g1.%d", gone [i]);
        json_t *r = ta_res (removed, key);
        assert_string_equal (s_attr (r, "state"), "terminated");
        assert_string_equal (s_attr (r, "provider_id"), s_attr (ta_res (res, key), "provider_id"));
    }
    json_decref (removed);
    instances = s_instances ("b1");
    assert_int_equal (json_array_size (instances), 17);
    assert_null (s_instance_of (instances, "g1", 17));
    assert_non_null (s_instance_of (instances, "g1", 16));
    json_decref (instances);

    //  Removed again: nothing to terminate, each slot still said gone
    terminates = s_calls ("TerminateInstances");
    removed = ta_done (&c, "remove", "remove.g1", s_remove ("b1", "g1", gone));
    assert_int_equal (s_calls ("TerminateInstances"), terminates);
    assert_string_equal (s_attr (ta_res (removed, "host.g1.18"), "state"), "terminated");
    json_decref (removed);

    //  Destroy: every instance found by the cluster's tag, named by its slot
    json_t *destroyed = ta_done (&c, "destroy.instances", "destroy.instances", NULL);
    assert_int_equal (json_array_size (destroyed), 17);
    assert_string_equal (s_attr (ta_res (destroyed, "host.g1.16"), "state"), "deleted");
    assert_string_equal (s_attr (ta_res (destroyed, "host.g1.0"), "provider_id"),
                         s_attr (ta_res (res, "host.g1.0"), "provider_id"));
    json_decref (destroyed);
    json_decref (res);
    ta_destroy_all (&c);
    instances = s_instances ("b1");
    assert_int_equal (json_array_size (instances), 0);
    json_decref (instances);
    ta_cluster_fini (&c);
}

/*  A call EC2 fills only in part keeps what it launched; the rest is one
    further call for the slots from the first missing one, tagged with
    that batch: the account's instance limit (12 of 20: the step fails,
    and run again makes the call), short capacity (7 of 13: the same step
    makes the call). No capacity at all is `retry`. */
static void
test_partial_fill (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "b2");
    ta_before_hosts (&c);
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"instance_limit\": 12}"));
    dx_step_out_t out;
    ta_run (&c, "hosts", "hosts.g1.0", s_hosts ("b2", "g1", 0, 19, "tok-b2-g1-0"), &out);
    assert_int_not_equal (out.outcome, DX_STEP_DONE);
    assert_string_equal (out.code, "InstanceLimitExceeded");
    assert_int_equal (json_array_size (out.resources), 12);     /* what is there is reported */
    assert_string_equal (s_attr (ta_res (out.resources, "host.g1.11"), "state"), "pending");
    dx_step_out_fini (&out);

    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"instance_limit\": 64}"));
    long runs = s_calls ("RunInstances");
    json_t *res = ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b2", "g1", 0, 19, "tok-b2-g1-0"));
    assert_int_equal (s_calls ("RunInstances"), runs + 1);
    s_check_hosts ("b2", res, "g1", 0, 19);
    json_t *instances = s_instances ("b2");
    assert_int_equal (json_array_size (instances), 20);
    size_t second = 0, i;
    json_t *r;
    json_array_foreach (instances, i, r) {
        const char *batch = json_string_value (json_object_get (json_object_get (r, "tags"),
                                                                "dexter:batch"));
        second += strcmp (batch, "12") == 0;
    }
    assert_int_equal (second, 8);
    json_decref (instances);
    json_decref (res);

    //  Capacity short (7 of 13, MinCount met): a further call in the same
    //  step launches the other 6
    json_decref (th_fake_ask (&s_fake, "POST", "capacity", "{\"capacity\": 7, \"count\": 1}"));
    runs = s_calls ("RunInstances");
    res = ta_done (&c, "hosts", "hosts.g1.20", s_hosts ("b2", "g1", 20, 32, "tok-b2-g1-20"));
    assert_int_equal (s_calls ("RunInstances"), runs + 2);
    s_check_hosts ("b2", res, "g1", 20, 32);
    instances = s_instances ("b2");
    assert_int_equal (json_array_size (instances), 33);
    json_decref (instances);
    json_decref (res);

    //  No capacity at all: retry, as a host step; then done, nothing twice
    json_decref (th_fake_ask (&s_fake, "POST", "capacity", "{\"capacity\": 0, \"count\": 1}"));
    ta_run (&c, "hosts", "hosts.g1.33", s_hosts ("b2", "g1", 33, 35, "tok-b2-g1-33"), &out);
    assert_int_equal (out.outcome, DX_STEP_RETRY);
    assert_string_equal (out.code, "InsufficientInstanceCapacity");
    dx_step_out_fini (&out);
    res = ta_done (&c, "hosts", "hosts.g1.33", s_hosts ("b2", "g1", 33, 35, "tok-b2-g1-33"));
    s_check_hosts ("b2", res, "g1", 33, 35);
    json_decref (res);
    instances = s_instances ("b2");
    assert_int_equal (json_array_size (instances), 36);
    json_decref (instances);
    ta_destroy_all (&c);
    ta_cluster_fini (&c);
}

/*  A step killed just after its RunInstances (the worker died, its lease
    was lost) run again: the batch is found by its tags and nothing is
    launched again. A reply lost on the way: the retry with the same
    client token gets the same reservation. Either way one instance per
    slot. */
static void
test_kill_after_call (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "b3");
    ta_before_hosts (&c);
    //  Slow to start, so that the child is waiting when it is killed
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"pending_ms\": 60000}"));
    long runs = s_calls ("RunInstances");
    fflush (NULL);
    pid_t child = fork ();
    assert_true (child >= 0);
    if (child == 0) {
        dx_step_out_t out;
        ta_run (&c, "hosts", "hosts.g1.0", s_hosts ("b3", "g1", 0, 19, "tok-b3-g1-0"), &out);
        _exit (0);
    }
    int64_t deadline = dx_mono_ms () + 20000;
    while (th_fake_calls (s_fake.endpoint, "by_action_ok", "RunInstances") < runs + 1
       &&  dx_mono_ms () < deadline)
        dx_sleep_ms (5);
    kill (child, SIGKILL);
    int status = 0;
    assert_int_equal (waitpid (child, &status, 0), child);
    assert_true (WIFSIGNALED (status));
    json_t *before = s_instances ("b3");
    assert_int_equal (json_array_size (before), 20);

    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"pending_ms\": 0}"));
    json_decref (th_fake_ask (&s_fake, "POST", "advance", "{\"seconds\": 120}"));
    runs = s_calls ("RunInstances");
    json_t *res = ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b3", "g1", 0, 19, "tok-b3-g1-0"));
    assert_int_equal (s_calls ("RunInstances"), runs);
    s_check_hosts ("b3", res, "g1", 0, 19);
    json_t *after = s_instances ("b3");
    assert_int_equal (json_array_size (after), 20);
    json_decref (after);
    json_decref (before);
    json_decref (res);

    //  The next 10 slots, their reply lost once: retried with the token
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"RunInstances\", \"code\": "
                                                         "\"InternalError\", \"status\": 500, "
                                                         "\"after\": true, \"count\": 1}"));
    runs = s_calls ("RunInstances");
    res = ta_done (&c, "hosts", "hosts.g1.20", s_hosts ("b3", "g1", 20, 29, "tok-b3-g1-20"));
    assert_int_equal (s_calls ("RunInstances"), runs + 2);
    s_check_hosts ("b3", res, "g1", 20, 29);
    after = s_instances ("b3");
    assert_int_equal (json_array_size (after), 30);
    json_decref (after);
    json_decref (res);

    //  Lost for good (the step failed after the call): run again, found
    json_decref (th_fake_ask (&s_fake, "POST", "faults", "{\"action\": \"RunInstances\", \"code\": "
                                                         "\"UnauthorizedOperation\", "
                                                         "\"status\": 403, \"after\": true, "
                                                         "\"count\": 1}"));
    dx_step_out_t out;
    ta_run (&c, "hosts", "hosts.g1.30", s_hosts ("b3", "g1", 30, 34, "tok-b3-g1-30"), &out);
    assert_string_equal (out.code, "UnauthorizedOperation");
    dx_step_out_fini (&out);
    runs = s_calls ("RunInstances");
    res = ta_done (&c, "hosts", "hosts.g1.30", s_hosts ("b3", "g1", 30, 34, "tok-b3-g1-30"));
    assert_int_equal (s_calls ("RunInstances"), runs);
    s_check_hosts ("b3", res, "g1", 30, 34);
    after = s_instances ("b3");
    assert_int_equal (json_array_size (after), 35);
    json_decref (after);
    json_decref (res);
    ta_destroy_all (&c);
    ta_cluster_fini (&c);
}

/*  A slot whose instance was terminated by hand gets a new one, alone in
    its call; a batch whose instances are all gone gets new ones with a
    token derived from the dead; a slot's twin is terminated. */
static void
test_replaced (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "b4");
    ta_before_hosts (&c);
    json_t *res = ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b4", "g1", 0, 4, "tok-b4-g1-0"));
    const char *ids [5];
    for (int slot = 0; slot < 5; slot++) {
        char key [32];
        snprintf (key, sizeof key, "host.g1.%d", slot);
        ids [slot] = s_attr (ta_res (res, key), "provider_id");
    }
    aws_ec2_t *ec2 = aws_ec2_new (REGION, AKID, SECRET, NULL);
    aws_params_t *p = aws_params_new ();
    aws_params_add (p, "InstanceId.1", ids [2]);
    xmlDocPtr doc = aws_ec2_call (ec2, "TerminateInstances", p, NULL);
    assert_non_null (doc);
    xmlFreeDoc (doc);
    aws_params_destroy (&p);

    long runs = s_calls ("RunInstances");
    json_t *again = ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b4", "g1", 0, 4, "tok-b4-g1-0"));
    assert_int_equal (s_calls ("RunInstances"), runs + 1);
    s_check_hosts ("b4", again, "g1", 0, 4);
    assert_string_not_equal (s_attr (ta_res (again, "host.g1.2"), "provider_id"), ids [2]);
    assert_string_equal (s_attr (ta_res (again, "host.g1.3"), "provider_id"), ids [3]);
    json_decref (again);

    //  All of them gone: the first token's reservation is dead
    p = aws_params_new ();
    json_t *instances = s_instances ("b4");
    size_t i;
    json_t *r;
    json_array_foreach (instances, i, r)
        aws_params_addf (p, json_string_value (json_object_get (r, "id")), "InstanceId.%zu", i + 1);
    doc = aws_ec2_call (ec2, "TerminateInstances", p, NULL);
    assert_non_null (doc);
    xmlFreeDoc (doc);
    aws_params_destroy (&p);
    json_decref (instances);
    aws_ec2_destroy (&ec2);
    runs = s_calls ("RunInstances");
    again = ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b4", "g1", 0, 4, "tok-b4-g1-0"));
    s_check_hosts ("b4", again, "g1", 0, 4);
    instances = s_instances ("b4");
    assert_int_equal (json_array_size (instances), 5);
    json_decref (instances);
    assert_true (s_calls ("RunInstances") <= runs + 2);
    json_decref (again);

    //  A twin of slot 3 (a stale attempt's, say): one instance stays
    p = aws_params_new ();
    aws_params_add (p, "ImageId", "ami-0c1f0a2b3c4d50003");
    aws_params_add (p, "InstanceType", "t3.small");
    aws_params_add (p, "MinCount", "1");
    aws_params_add (p, "MaxCount", "1");
    aws_params_add (p, "SubnetId", json_string_value (json_object_get (c.context, "subnet.agents")));
    aws_params_add (p, "TagSpecification.1.ResourceType", "instance");
    aws_params_tag (p, "TagSpecification.1", "dexter:cluster", "b4");
    aws_params_tag (p, "TagSpecification.1", "dexter:group", "g1");
    aws_params_tag (p, "TagSpecification.1", "dexter:batch", "3");
    ec2 = aws_ec2_new (REGION, AKID, SECRET, NULL);
    doc = aws_ec2_call (ec2, "RunInstances", p, NULL);
    assert_non_null (doc);
    xmlFreeDoc (doc);
    aws_params_destroy (&p);
    aws_ec2_destroy (&ec2);
    instances = s_instances ("b4");
    assert_int_equal (json_array_size (instances), 6);
    json_decref (instances);
    long terminates = s_calls ("TerminateInstances");
    runs = s_calls ("RunInstances");
    again = ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b4", "g1", 0, 4, "tok-b4-g1-0"));
    assert_int_equal (s_calls ("TerminateInstances"), terminates + 1);
    assert_int_equal (s_calls ("RunInstances"), runs);
    s_check_hosts ("b4", again, "g1", 0, 4);
    instances = s_instances ("b4");
    assert_int_equal (json_array_size (instances), 5);
    json_decref (instances);
    json_decref (again);
    json_decref (res);
    ta_destroy_all (&c);
    ta_cluster_fini (&c);
}

/*  The one-host steps (batching off after a batched deploy) find an agent
    launched in a batch by its slot: a host step launches no twin, a
    remove terminates it; and a hosts step finds a host launched alone by
    its dexter:host tag. */
static void
test_single_steps (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "b7");
    ta_before_hosts (&c);
    json_t *res = ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b7", "g1", 0, 4, "tok-b7-g1-0"));
    long runs = s_calls ("RunInstances");
    json_t *one = ta_done (&c, "host", "host.g1.3", json_pack (
        "{s:s, s:s, s:i, s:s, s:s, s:i, s:[], s:b, s:s, s:{}, s:{}, s:s}", "role", "agent",
        "group", "g1", "slot", 3, "hostname", "b7-g1-3", "instance_type", "m5.large",
        "disk_size", 30, "disks", "public", 0, "group_role", "", "attributes", "vars",
        "client_token", "tok-b7-g1-3"));
    assert_int_equal (s_calls ("RunInstances"), runs);
    assert_string_equal (s_attr (ta_res (one, "host.g1.3"), "provider_id"),
                         s_attr (ta_res (res, "host.g1.3"), "provider_id"));
    json_decref (one);

    json_t *removed = ta_done (&c, "remove", "remove.g1.4",
                              json_pack ("{s:s, s:i, s:s}", "group", "g1", "slot", 4,
                                         "hostname", "b7-g1-4"));
    assert_string_equal (s_attr (ta_res (removed, "host.g1.4"), "provider_id"),
                         s_attr (ta_res (res, "host.g1.4"), "provider_id"));
    json_decref (removed);
    json_t *instances = s_instances ("b7");
    assert_int_equal (json_array_size (instances), 4);
    assert_null (s_instance_of (instances, "g1", 4));
    json_decref (instances);

    one = ta_done (&c, "host", "host.g1.4", json_pack (
        "{s:s, s:s, s:i, s:s, s:s, s:i, s:[], s:b, s:s, s:{}, s:{}, s:s}", "role", "agent",
        "group", "g1", "slot", 4, "hostname", "b7-g1-4", "instance_type", "m5.large",
        "disk_size", 30, "disks", "public", 0, "group_role", "", "attributes", "vars",
        "client_token", "tok-b7-g1-4"));
    assert_int_equal (s_calls ("RunInstances"), runs + 1);
    runs = s_calls ("RunInstances");
    json_t *again = ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b7", "g1", 0, 4, "tok-b7-g1-0"));
    assert_int_equal (s_calls ("RunInstances"), runs);
    assert_string_equal (s_attr (ta_res (again, "host.g1.4"), "provider_id"),
                         s_attr (ta_res (one, "host.g1.4"), "provider_id"));
    instances = s_instances ("b7");
    assert_int_equal (json_array_size (instances), 5);
    json_decref (instances);
    json_decref (again);
    json_decref (one);
    json_decref (res);
    ta_destroy_all (&c);
    ta_cluster_fini (&c);
}

/*  RunInstances takes one token of the account's request bucket and one
    per instance of its MaxCount from the instance bucket, both shared
    through the registry; the buckets are made nearly still here, so the
    tokens left tell what was taken. */
static void
test_buckets (void **state)
{
    (void) state;
    dx_ratelimit_t *limits = dx_ratelimit_new ();
    int64_t now = dx_mono_ms ();
    dx_bucket_t *requests = dx_ratelimit_bucket (limits, AKID "|" REGION "|RunInstances",
                                                 5, 1e-6, now);
    dx_bucket_t *instances = dx_ratelimit_bucket (limits, AKID "|" REGION
                                                  "|RunInstances.instances", 1000, 1e-6, now);
    s_config.limits = limits;
    ta_cluster_t c;
    s_cluster_init (&c, "b5");
    ta_before_hosts (&c);
    //  The fake keeps EC2's buckets too (full again): nothing is refused
    json_decref (th_fake_ask (&s_fake, "POST", "config", "{\"ec2_limits\": true}"));
    json_decref (ta_done (&c, "hosts", "hosts.g1.0", s_hosts ("b5", "g1", 0, 19, "tok-b5-g1-0")));
    assert_true (requests->tokens > 3.99 && requests->tokens < 4.01);
    assert_true (instances->tokens > 979.99 && instances->tokens < 980.01);
    json_decref (ta_done (&c, "hosts", "hosts.g1.20", s_hosts ("b5", "g1", 20, 22, "tok-b5-g1-20")));
    assert_true (instances->tokens > 976.99 && instances->tokens < 977.01);
    assert_int_equal (th_fake_calls (s_fake.endpoint, "by_error_code", "RequestLimitExceeded"), 0);
    ta_destroy_all (&c);
    ta_cluster_fini (&c);
    s_config.limits = NULL;
    dx_ratelimit_destroy (&limits);
}

/*  A cancel flag raised by a thread once the step asked for its image
    (just before its RunInstances waits for the instance bucket). */
static volatile int s_cancel_flag;

static int
s_cancelled (void *arg)
{
    (void) arg;
    return s_cancel_flag;
}

static void *
s_canceller (void *arg)
{
    long images = *(long *) arg;
    int64_t deadline = dx_mono_ms () + 20000;
    while (th_fake_calls (s_fake.endpoint, "by_action", "DescribeImages") <= images
       &&  dx_mono_ms () < deadline)
        dx_sleep_ms (5);
    dx_sleep_ms (100);
    s_cancel_flag = 1;
    return NULL;
}

/*  A RunInstances waiting for the instance bucket (nearly empty, nearly
    still) stops when the job is cancelled, without the call. */
static void
test_bucket_wait_cancelled (void **state)
{
    (void) state;
    dx_ratelimit_t *limits = dx_ratelimit_new ();
    dx_bucket_t *instances = dx_ratelimit_bucket (limits, AKID "|" REGION
                                                  "|RunInstances.instances", 1000, 1e-6,
                                                  dx_mono_ms ());
    assert_int_equal (dx_bucket_take_n (instances, 995, dx_mono_ms ()), 0);
    s_config.limits = limits;
    ta_cluster_t c;
    s_cluster_init (&c, "b8");
    ta_before_hosts (&c);
    long runs = s_calls ("RunInstances"), images = s_calls ("DescribeImages");
    s_cancel_flag = 0;
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_canceller, &images), 0);
    json_t *assign = ta_assign (&c, "hosts", "hosts.g1.0", s_hosts ("b8", "g1", 0, 19, "tok-b8"));
    dx_step_out_t out;
    dx_step_out_init (&out, s_cancelled, NULL);
    aws_step_run (&s_config, assign, &out);
    json_decref (assign);
    pthread_join (thread, NULL);
    assert_int_equal (out.outcome, DX_STEP_RETRY);
    assert_string_equal (out.code, "CANCELLED");
    assert_int_equal (s_calls ("RunInstances"), runs);
    assert_true (s_calls ("DescribeImages") > images);
    dx_step_out_fini (&out);
    s_config.limits = NULL;
    dx_ratelimit_destroy (&limits);
    ta_destroy_all (&c);
    ta_cluster_fini (&c);
}

/*  Steps the worker refuses: names that are not prefix and slot, slots
    not ascending, a role other than agent. */
static void
test_invalid (void **state)
{
    (void) state;
    ta_cluster_t c;
    s_cluster_init (&c, "b6");
    json_t *bad [4];
    bad [0] = s_hosts ("b6", "g1", 0, 2, "tok");
    json_array_set_new (json_object_get (bad [0], "hostnames"), 1, json_string ("b6-g1-7"));
    bad [1] = s_hosts ("b6", "g1", 0, 2, "tok");
    json_array_set_new (json_object_get (bad [1], "slots"), 2, json_integer (0));
    json_array_set_new (json_object_get (bad [1], "hostnames"), 2, json_string ("b6-g1-0"));
    bad [2] = s_hosts ("b6", "g1", 0, 2, "tok");
    json_object_set_new (bad [2], "role", json_string ("master"));
    bad [3] = s_hosts ("b6", "g1", 0, 2, "tok");
    json_array_remove (json_object_get (bad [3], "hostnames"), 0);
    long calls = s_total ();
    for (int i = 0; i < 4; i++) {
        dx_step_out_t out;
        ta_run (&c, "hosts", "hosts.g1.0", bad [i], &out);
        assert_int_equal (out.outcome, DX_STEP_FAILED);
        assert_int_equal (out.permanent, 1);
        assert_string_equal (out.code, "InvalidStep");
        dx_step_out_fini (&out);
    }
    assert_int_equal (s_total (), calls);
    ta_cluster_fini (&c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup (test_launch_remove_destroy, s_setup),
        cmocka_unit_test_setup (test_partial_fill, s_setup),
        cmocka_unit_test_setup (test_kill_after_call, s_setup),
        cmocka_unit_test_setup (test_replaced, s_setup),
        cmocka_unit_test_setup (test_single_steps, s_setup),
        cmocka_unit_test_setup (test_buckets, s_setup),
        cmocka_unit_test_setup (test_bucket_wait_cancelled, s_setup),
        cmocka_unit_test_setup (test_invalid, s_setup),
    };
    int rc = cmocka_run_group_tests (tests, s_group_setup, th_fake_teardown);
    th_tmpdir_remove (s_fake.dir, rc != 0);
    xmlCleanupParser ();
    return rc;
}
