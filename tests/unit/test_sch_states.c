/*  Tests of services/scheduler/sch_states.c and of how the store keeps it
    (sch_store.c) and metrics.get shows it (sch_metrics.c): every cluster
    counted in the state of its deployment as the store writes (create,
    deployment start, a transition, reset, delete), a state that is none
    of the states counted nowhere, a load replacing the table, and a new
    store and engine on the same Redis (a restarted scheduler) counting
    the same once the engine recovers. A real redis-server on a free port;
    without it the test fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/scheduler/sch_engine.h"
#include "../../services/scheduler/sch_handlers.h"
#include "../../services/scheduler/sch_metrics.h"
#include "../../services/scheduler/sch_states.h"
#include "harness.h"

#include "dx_msg.h"
#include "dx_seal.h"
#include "dx_util.h"

#define NOW "2026-01-01T00:00:00Z"

static const unsigned char s_master [32] = { 0x5a, 0x5a, 0x5a, 0x07 };

static th_redis_t R;

static int
s_setup (void **state)
{
    (void) state;
    signal (SIGPIPE, SIG_IGN);
    return th_redis_up (&R, "states-test");
}

static int
s_teardown (void **state)
{
    (void) state;
    th_redis_down (&R);
    return 0;
}

/*  The counts of every state, as "init=1 deploying=0 ...". */
static char *
s_counts (sch_states_t *states, char *buf, size_t size)
{
    size_t used = 0;
    buf [0] = 0;
    for (size_t i = 0; i < SCH_STATES_COUNT; i++)
        used += (size_t) snprintf (buf + used, size - used, "%s%s=%zu", i? " ": "",
                                   sch_states_names [i], sch_states_count (states, i));
    return buf;
}

static void
s_create (sch_store_t *store, const char *name)
{
    json_t *cluster = json_pack ("{s:s, s:s, s:s}", "name", name, "provider", "aws",
                                 "type", "mesos");
    assert_int_equal (sch_store_cluster_create (store, cluster, NOW), 0);
    json_decref (cluster);
}

static void
s_start (sch_store_t *store, const char *name, const char *state, const char *command)
{
    json_t *snapshot = json_object ();
    json_t *deployment = json_pack ("{s:s, s:s}", "state", state, "command", command);
    json_t *jobs = json_array ();
    assert_int_equal (sch_store_deployment_start (store, name, 1, snapshot, NULL, deployment,
                                                  jobs, NOW), 0);
    json_decref (snapshot);
    json_decref (deployment);
    json_decref (jobs);
}

static void
s_end (sch_store_t *store, const char *name, const char *state)
{
    json_t *deployment = json_pack ("{s:s}", "state", state);
    json_t *event = json_pack ("{s:s}", "state", state);
    sch_store_change_t change = { .deployment = deployment, .event_type = "deployment.finished",
                                  .event = event };
    assert_int_equal (sch_store_deployment_change (store, name, &change, NOW, NULL), 0);
    json_decref (deployment);
    json_decref (event);
}

/*  The table alone: set, move, drop, a state that is none, a load. */
static void
test_table (void **state)
{
    (void) state;
    char buf [256];
    sch_states_t *t = sch_states_new ();
    assert_non_null (t);
    assert_false (sch_states_loaded (t));
    sch_states_set (t, "a", "init");
    sch_states_set (t, "b", "init");
    sch_states_set (t, "a", "deploying");
    sch_states_set (t, "a", "deploying");           /* the same: counted once */
    sch_states_set (t, "c", "no-such-state");       /* counted nowhere */
    assert_string_equal (s_counts (t, buf, sizeof buf), "init=1 deploying=1 deployed=0 "
                         "deploy_failed=0 destroying=0 destroyed=0 destroy_failed=0");
    sch_states_set (t, "b", "bogus");               /* out of init, into nothing */
    sch_states_drop (t, "a");
    sch_states_drop (t, "nobody");
    assert_string_equal (s_counts (t, buf, sizeof buf), "init=0 deploying=0 deployed=0 "
                         "deploy_failed=0 destroying=0 destroyed=0 destroy_failed=0");
    //  A load replaces all; a cluster's state may be in its deployment
    sch_states_set (t, "x", "deployed");
    json_t *list = json_loads ("[{\"name\": \"a\", \"state\": \"destroyed\"},"
                               " {\"name\": \"b\", \"deployment\": {\"state\": \"deploy_failed\"}},"
                               " {\"name\": \"c\", \"state\": \"destroyed\"}, {\"state\": \"init\"}]",
                               0, NULL);
    assert_non_null (list);
    assert_int_equal (sch_states_load (t, list), 0);
    json_decref (list);
    assert_true (sch_states_loaded (t));
    assert_string_equal (s_counts (t, buf, sizeof buf), "init=0 deploying=0 deployed=0 "
                         "deploy_failed=1 destroying=0 destroyed=2 destroy_failed=0");
    sch_states_set (t, "c", "destroying");
    assert_string_equal (s_counts (t, buf, sizeof buf), "init=0 deploying=0 deployed=0 "
                         "deploy_failed=1 destroying=1 destroyed=1 destroy_failed=0");
    sch_states_destroy (&t);
    assert_null (t);
    sch_states_destroy (&t);
}

/*  The text of metrics.get with the store of ctx. */
static char *
s_metrics (sch_store_t *store)
{
    sch_ctx_t ctx = { .store = store };
    json_t *request = dx_msg_new ("metrics.get", "m1");
    json_t *reply = sch_metrics_get (&ctx, request);
    assert_string_equal (dx_msg_str (reply, "status"), "OK");
    char *text = strdup (dx_msg_str (reply, "text"));
    json_decref (reply);
    json_decref (request);
    return text;
}

static void
s_has (const char *text, const char *line)
{
    if (!strstr (text, line))
        fail_msg ("missing: %s\nin:\n%s", line, text);
}

/*  The store counts as it writes; a new store (a restarted scheduler)
    counts the same once its engine recovers; metrics.get shows them. */
static void
test_store_and_restart (void **state)
{
    (void) state;
    char buf [256];
    sch_store_t *store = sch_store_new (R.url);
    assert_non_null (store);
    sch_states_t *states = sch_store_states (store);
    s_create (store, "c1");
    s_create (store, "c2");
    s_create (store, "c3");
    s_create (store, "c4");
    assert_string_equal (s_counts (states, buf, sizeof buf), "init=4 deploying=0 deployed=0 "
                         "deploy_failed=0 destroying=0 destroyed=0 destroy_failed=0");
    s_start (store, "c1", "deploying", "deploy");
    s_start (store, "c2", "deploying", "deploy");
    s_start (store, "c3", "deploying", "deploy");
    assert_string_equal (s_counts (states, buf, sizeof buf), "init=1 deploying=3 deployed=0 "
                         "deploy_failed=0 destroying=0 destroyed=0 destroy_failed=0");
    s_end (store, "c1", "deployed");
    s_end (store, "c2", "deploy_failed");
    s_end (store, "c3", "deployed");
    s_start (store, "c3", "destroying", "destroy");
    s_end (store, "c3", "destroy_failed");
    s_start (store, "c3", "destroying", "destroy");
    s_end (store, "c3", "destroyed");
    //  A transition that writes no state leaves the counts
    json_t *progress = json_pack ("{s:s}", "steps_done", "1");
    sch_store_change_t change = { .deployment = progress };
    assert_int_equal (sch_store_deployment_change (store, "c1", &change, NOW, NULL), 0);
    json_decref (progress);
    assert_int_equal (sch_store_deployment_reset (store, "c2", NOW, 1), 0);
    assert_int_equal (sch_store_cluster_delete (store, "c4"), 0);
    const char *expected = "init=1 deploying=0 deployed=1 deploy_failed=0 destroying=0 "
                           "destroyed=1 destroy_failed=0";
    assert_string_equal (s_counts (states, buf, sizeof buf), expected);

    //  Not loaded yet: no series of the gauge
    char *text = s_metrics (store);
    s_has (text, "# TYPE dexter_scheduler_deployments gauge\n");
    assert_null (strstr (text, "\ndexter_scheduler_deployments{"));
    free (text);

    //  A restarted scheduler: a new store and engine on the same Redis
    dx_seal_t *seal = dx_seal_new_key (s_master);
    sch_store_t *again = sch_store_new (R.url);
    sch_engine_t *engine = sch_engine_new (again, seal, NULL, 1000);
    assert_non_null (engine);
    assert_false (sch_states_loaded (sch_store_states (again)));
    assert_int_equal (sch_engine_recover (engine), 0);
    assert_true (sch_states_loaded (sch_store_states (again)));
    assert_string_equal (s_counts (sch_store_states (again), buf, sizeof buf), expected);
    text = s_metrics (again);
    s_has (text, "dexter_scheduler_deployments{state=\"init\"} 1\n");
    s_has (text, "dexter_scheduler_deployments{state=\"deploying\"} 0\n");
    s_has (text, "dexter_scheduler_deployments{state=\"deployed\"} 1\n");
    s_has (text, "dexter_scheduler_deployments{state=\"deploy_failed\"} 0\n");
    s_has (text, "dexter_scheduler_deployments{state=\"destroying\"} 0\n");
    s_has (text, "dexter_scheduler_deployments{state=\"destroyed\"} 1\n");
    s_has (text, "dexter_scheduler_deployments{state=\"destroy_failed\"} 0\n");
    s_has (text, "\ndexter_scheduler_clusters 3\n");
    free (text);

    //  And it goes on counting from there
    s_start (again, "c2", "deploying", "deploy");
    text = s_metrics (again);
    s_has (text, "dexter_scheduler_deployments{state=\"init\"} 0\n");
    s_has (text, "dexter_scheduler_deployments{state=\"deploying\"} 1\n");
    free (text);

    sch_engine_destroy (&engine);
    sch_store_destroy (&again);
    sch_store_destroy (&store);
    dx_seal_destroy (&seal);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_table),
        cmocka_unit_test (test_store_and_restart),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
