/*  Tests of the deployment engine's planning in slices (sch_deploys.c with
    sch_plan.c) and of the forced delete of a big cluster, against a real
    redis-server started here on a free port. No worker connects, so no
    step runs: what is tested is what the scheduler itself does.

    Covered: a deploy of a cluster at the host cap is accepted with its
    step count and planned over many ticks, each asking for the next at
    once, the record saying how far it is; the jobs recorded are exactly
    the plan made whole; a scheduler that stops mid-plan (a new engine on
    the same Redis) goes on where it stopped, and the result is the same;
    a forced delete while planning stops it and leaves no key, and one of
    a whole plan answers at once, its memory freed by the ticks after. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/scheduler/sch_handlers.h"
#include "../../services/scheduler/sch_plan.h"
#include "harness_sch.h"

#include "dx_log.h"
#include "dx_msg.h"
#include "dx_spec.h"
#include "dx_util.h"

static const unsigned char s_master [32] = { 0x5a, 0x5a, 0x5a, 0x04 };

static struct {
    ths_t sch;                  /* Redis, store, seal; an engine without a broker per test */
} T;


//  ---------------------------------------------------------------------
//  Helpers

/*  The reply of handler to req (taken), whose status must be status.
    Caller frees. */
static json_t *
s_call (sch_change_fn *handler, const char *status, json_t *req)
{
    json_t *reply = handler (&T.sch.ctx, req);
    if (strcmp (dx_msg_str (reply, "status"), status)) {
        char *text = json_dumps (reply, 0);
        fail_msg ("%s: expected %s, got %s", dx_msg_type (req), status, text);
    }
    json_decref (req);
    return reply;
}

/*  Cluster name with 3 masters and `groups` groups of 1,000 hosts. */
static void
s_cluster (const char *name, int groups)
{
    json_decref (s_call (sch_cluster_create, DX_CREATED,
                         ths_req ("cluster.create", "{s:{s:s, s:s, s:s}}", "cluster",
                                  "name", name, "provider", "aws", "type", "mesos")));
    json_decref (s_call (sch_config_put, DX_OK,
                         ths_req ("config.put", "{s:s, s:{s:s, s:i, s:s, s:s, s:s}}", "name",
                                  name, "fields", "master_type", "m3.large", "masters", 3,
                                  "region", "us-west-2", "sshkey", "reference",
                                  "sshkeydata", TH_SSH_KEY_B64)));
    for (int i = 0; i < groups; i++) {
        char group [16];
        snprintf (group, sizeof group, "g%d", i);
        //  r3.xlarge has 4 vCPUs: 4 per host
        json_decref (s_call (sch_group_upsert, DX_CREATED,
                             ths_req ("group.upsert", "{s:s, s:{s:s, s:s, s:{}, s:{s:s}, s:s, "
                                      "s:i, s:i, s:i, s:{s:[]}}}", "name", name, "fields",
                                      "name", group, "role", "role1", "attributes", "vars",
                                      "x", "1", "instance_type", "r3.xlarge",
                                      "cpus", 4 * DX_GROUP_HOSTS_MAX, "ram", 8,
                                      "disk_size", 50, "customhwconf", "disks")));
    }
}

/*  Deploys cluster name; the steps the reply counts. */
static size_t
s_deploy (const char *name)
{
    json_t *reply = s_call (sch_deployment_put, DX_ACCEPTED,
                            ths_req ("deployment.put", "{s:s, s:{s:s, s:s, s:s}}", "name", name,
                                     "fields", "command", "deploy",
                                     "aws_access_key_id", "AKIDPLANNING0000",
                                     "aws_secret_access_key", "planning/secret/0123456789"));
    const json_t *progress = json_object_get (json_object_get (reply, "body"), "progress");
    size_t steps = (size_t) json_integer_value (json_object_get (progress, "steps_total"));
    json_decref (reply);
    return steps;
}

/*  The deployment's `current`, as GET shows it (caller frees). */
static char *
s_current (const char *name)
{
    json_t *req = ths_req ("deployment.get", "{s:s}", "name", name);
    int ticket;
    json_t *reply = sch_queue_cluster (&T.sch.ctx, req, SCH_LOAD_DEPLOYMENT, &ticket);
    assert_null (reply);
    assert_int_equal (sch_read_flush (T.sch.ctx.read), 0);
    json_t *loaded = sch_loaded_cluster (&T.sch.ctx, req, ticket, &reply);
    sch_read_reset (T.sch.ctx.read);
    assert_non_null (loaded);
    reply = sch_deployment_get (&T.sch.ctx, req, loaded);
    const json_t *progress = json_object_get (json_object_get (reply, "body"), "progress");
    const char *current = json_string_value (json_object_get (progress, "current"));
    char *copy = strdup (current? current: "");
    json_decref (reply);
    json_decref (loaded);
    json_decref (req);
    return copy;
}

/*  Ticks the engine until the plan of name is whole (at most 2 minutes);
    how many ticks it took. Every tick but the last asks for the next at
    once. */
static int
s_plan_whole (const char *name, size_t steps)
{
    int64_t deadline = dx_mono_ms () + 120000;
    int ticks = 0;
    while ((size_t) th_redis_int (&T.sch.redis, "HLEN dexter:{%s}:jobs", name) < steps
           && dx_mono_ms () < deadline) {
        int64_t next = sch_engine_tick (T.sch.engine);
        ticks++;
        if ((size_t) th_redis_int (&T.sch.redis, "HLEN dexter:{%s}:jobs", name) < steps)
            assert_true (next <= dx_mono_ms ());
    }
    assert_int_equal (th_redis_int (&T.sch.redis, "HLEN dexter:{%s}:jobs", name), steps);
    return ticks;
}

/*  The jobs recorded for name are the plan of its snapshot and resources
    made whole at once, in order, each pending at attempt 1. */
static void
s_check_jobs (const char *name, int64_t generation, size_t steps)
{
    json_t *snapshot;
    assert_int_equal (sch_read_snapshot (T.sch.ctx.read, name, generation, &snapshot), 0);
    json_t *loaded = sch_read_load (T.sch.ctx.read, name, SCH_LOAD_JOBS | SCH_LOAD_RESOURCES);
    assert_non_null (loaded);
    char err [256];
    sch_plan_t *plan = sch_plan_new (snapshot, json_object_get (loaded, "resources"),
                                     err, sizeof err);
    assert_non_null (plan);
    json_t *whole = json_array ();
    assert_int_equal (sch_plan_next (plan, SIZE_MAX, whole), steps);
    const json_t *jobs = json_object_get (loaded, "jobs");
    assert_int_equal (json_object_size (jobs), steps);
    size_t i;
    json_t *job;
    json_array_foreach (whole, i, job) {
        json_t *recorded = json_deep_copy (json_object_get (jobs, json_string_value (
                                               json_object_get (job, "id"))));
        assert_non_null (recorded);
        assert_int_equal (json_integer_value (json_object_get (recorded, "order")), i);
        assert_string_equal (json_string_value (json_object_get (recorded, "status")), "pending");
        assert_int_equal (json_integer_value (json_object_get (recorded, "attempt")), 1);
        json_object_del (recorded, "order");
        json_object_del (recorded, "status");
        json_object_del (recorded, "attempt");
        if (!json_equal (recorded, job))
            fail_msg ("job %zu is not the plan's", i);
        json_decref (recorded);
    }
    json_decref (whole);
    sch_plan_destroy (&plan);
    json_decref (loaded);
    json_decref (snapshot);
}


//  ---------------------------------------------------------------------
//  Fixtures

static int
s_setup (void **state)
{
    (void) state;
    return ths_up (&T.sch, "planning-test", s_master);
}

static int
s_teardown (void **state)
{
    (void) state;
    ths_down (&T.sch);
    return 0;
}

/*  Each test: an empty Redis and an engine without a broker. */
static int
s_test_setup (void **state)
{
    (void) state;
    freeReplyObject (ths_raw (&T.sch, "FLUSHALL"));
    if (ths_engine_up (&T.sch, 0, 0))
        return -1;
    return sch_engine_recover (T.sch.engine) == 0? 0: -1;
}

static int
s_test_teardown (void **state)
{
    (void) state;
    ths_engine_down (&T.sch);
    return 0;
}


//  ---------------------------------------------------------------------
//  Tests

/*  5,000 hosts: the PUT counts the steps and answers; the plan is made
    over many ticks, the record saying how far it is meanwhile, and ends
    as the plan made whole. */
static void
test_plan_in_slices (void **state)
{
    (void) state;
    s_cluster ("big", DX_CLUSTER_HOSTS_MAX / DX_GROUP_HOSTS_MAX);
    int64_t start = dx_mono_ms ();
    size_t steps = s_deploy ("big");
    int64_t put = dx_mono_ms () - start;
    assert_int_equal (steps, 4 + 2 + 1 + 3 + DX_CLUSTER_HOSTS_MAX);
    size_t made = (size_t) th_redis_int (&T.sch.redis, "HLEN dexter:{big}:jobs");
    assert_true (made < steps);
    assert_int_equal (th_redis_int (&T.sch.redis, "HGET dexter:{big}:deployment steps_total"),
                      steps);
    char *current = s_current ("big");
    assert_non_null (strstr (current, "planning"));
    free (current);
    start = dx_mono_ms ();
    int ticks = s_plan_whole ("big", steps);
    print_message ("%zu steps: PUT %lld ms (%zu planned at once), the rest in %d ticks, "
                   "%lld ms (not asserted)\n", steps, (long long) put, made, ticks,
                   (long long) (dx_mono_ms () - start));
    assert_true (ticks > 1);
    current = s_current ("big");
    assert_string_equal (current, "");
    free (current);
    s_check_jobs ("big", 1, steps);
    assert_int_equal (sch_engine_size (T.sch.engine), 1);
}

/*  A scheduler that stops mid-plan: a new engine on the same Redis goes
    on where the plan stopped, and the plan recorded is the same. */
static void
test_plan_resumes_after_restart (void **state)
{
    (void) state;
    s_cluster ("big", 2);
    size_t steps = s_deploy ("big");
    sch_engine_tick (T.sch.engine);
    size_t made = (size_t) th_redis_int (&T.sch.redis, "HLEN dexter:{big}:jobs");
    assert_true (made > 0 && made < steps);

    sch_engine_destroy (&T.sch.engine);     /* the crash: memory gone, Redis stays */
    T.sch.engine = sch_engine_new (T.sch.store, T.sch.seal, NULL, 0);
    T.sch.ctx.engine = T.sch.engine;
    assert_int_equal (sch_engine_recover (T.sch.engine), 0);
    assert_int_equal (sch_engine_size (T.sch.engine), 1);
    assert_int_equal (th_redis_int (&T.sch.redis, "HLEN dexter:{big}:jobs"), made);
    s_plan_whole ("big", steps);
    s_check_jobs ("big", 1, steps);
}

/*  A forced delete while the plan is made stops it: no key of the
    cluster is left, nor written again by a later tick. */
static void
test_delete_while_planning (void **state)
{
    (void) state;
    s_cluster ("big", DX_CLUSTER_HOSTS_MAX / DX_GROUP_HOSTS_MAX);
    size_t steps = s_deploy ("big");
    sch_engine_tick (T.sch.engine);
    assert_true ((size_t) th_redis_int (&T.sch.redis, "HLEN dexter:{big}:jobs") < steps);
    int64_t start = dx_mono_ms ();
    json_decref (s_call (sch_cluster_delete, DX_OK,
                         ths_req ("cluster.delete", "{s:s, s:b}", "name", "big", "force", 1)));
    print_message ("forced delete while planning: %lld ms (not asserted)\n",
                   (long long) (dx_mono_ms () - start));
    assert_int_equal (sch_engine_size (T.sch.engine), 0);
    for (int i = 0; i < 5; i++)
        sch_engine_tick (T.sch.engine);
    assert_int_equal (th_redis_int (&T.sch.redis, "EXISTS dexter:{big}:jobs "
                                    "dexter:{big}:deployment dexter:{big}:cluster"), 0);
}

/*  A forced delete of a cluster whose plan is whole answers without
    freeing the plan: the ticks after free it, each asking for the next
    at once until it is all gone. */
static void
test_delete_planned (void **state)
{
    (void) state;
    s_cluster ("big", DX_CLUSTER_HOSTS_MAX / DX_GROUP_HOSTS_MAX);
    size_t steps = s_deploy ("big");
    s_plan_whole ("big", steps);
    int64_t start = dx_mono_ms ();
    json_decref (s_call (sch_cluster_delete, DX_OK,
                         ths_req ("cluster.delete", "{s:s, s:b}", "name", "big", "force", 1)));
    int64_t deleted = dx_mono_ms ();
    assert_int_equal (sch_engine_size (T.sch.engine), 0);
    assert_int_equal (th_redis_int (&T.sch.redis, "EXISTS dexter:{big}:jobs"), 0);
    int ticks = 1;
    while (sch_engine_tick (T.sch.engine) <= dx_mono_ms ())
        assert_true (++ticks < 10000);
    print_message ("forced delete of %zu planned steps: answered in %lld ms, freed in %d "
                   "ticks, %lld ms (not asserted)\n", steps, (long long) (deleted - start),
                   ticks, (long long) (dx_mono_ms () - deleted));
}

int
main (void)
{
    dx_log_init ("test_sch_planning");
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_plan_in_slices, s_test_setup, s_test_teardown),
        cmocka_unit_test_setup_teardown (test_plan_resumes_after_restart, s_test_setup,
                                         s_test_teardown),
        cmocka_unit_test_setup_teardown (test_delete_while_planning, s_test_setup,
                                         s_test_teardown),
        cmocka_unit_test_setup_teardown (test_delete_planned, s_test_setup, s_test_teardown),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
