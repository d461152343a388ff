/*  Unit tests for services/scheduler/sch_wmetrics.c and sch_metrics.c:
    the workers' samples summed, a restart under the same name, a worker
    folded after SCH_WMETRICS_KEEP_MS, maps not as the protocol says; and
    metrics.get's text, the scheduler's families followed by the workers'
    sums. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dx_msg.h"
#include "dx_util.h"
#include "../../services/scheduler/sch_broker.h"
#include "../../services/scheduler/sch_metrics.h"
#include "../../services/scheduler/sch_wmetrics.h"

#define CALLS "dexter_cloud_calls_total{provider=\"aws\",action=\"RunInstances\",outcome=\"ok\"}"
#define RETRIES "dexter_cloud_retries_total{provider=\"aws\",action=\"RunInstances\"}"

static double
s_sum (sch_wmetrics_t *w, const char *key, int64_t now)
{
    json_t *sums = sch_wmetrics_sums (w, now);
    assert_non_null (sums);
    double v = json_number_value (json_object_get (sums, key));
    json_decref (sums);
    return v;
}

static void
s_update (sch_wmetrics_t *w, const char *name, double calls, double retries, int64_t now,
          int rc)
{
    json_t *m = json_pack ("{s:f}", CALLS, calls);
    if (retries >= 0)
        json_object_set_new (m, RETRIES, json_real (retries));
    assert_int_equal (sch_wmetrics_update (w, name, m, now), rc);
    json_decref (m);
}

/*  Two workers add up; one restarting under its name keeps what it had
    counted; totals never go down. */
static void
test_sums_and_restarts (void **state)
{
    (void) state;
    sch_wmetrics_t *w = sch_wmetrics_new ();
    s_update (w, "h:1", 3, 1, 1000, 0);
    s_update (w, "h:2", 2, -1, 1000, 0);
    assert_true (s_sum (w, CALLS, 1000) == 5);
    assert_true (s_sum (w, RETRIES, 1000) == 1);
    s_update (w, "h:1", 4, 1, 2000, 0);
    assert_true (s_sum (w, CALLS, 2000) == 6);
    //  h:1 restarted: it counts from zero, its 4 calls are kept
    s_update (w, "h:1", 1, 0, 3000, 0);
    assert_true (s_sum (w, CALLS, 3000) == 7);
    assert_true (s_sum (w, RETRIES, 3000) == 1);
    //  A sample gone missing is a restart too
    s_update (w, "h:1", 2, -1, 4000, 0);
    assert_true (s_sum (w, CALLS, 4000) == 2 + 4 + 1 + 2);
    assert_true (s_sum (w, RETRIES, 4000) == 1);
    sch_wmetrics_destroy (&w);
    assert_null (w);
}

/*  A worker silent for SCH_WMETRICS_KEEP_MS is folded into the departed:
    the totals stay; it is forgotten, so the same name counts anew. */
static void
test_fold_departed (void **state)
{
    (void) state;
    sch_wmetrics_t *w = sch_wmetrics_new ();
    s_update (w, "h:1", 3, -1, 0, 0);
    s_update (w, "h:2", 2, -1, SCH_WMETRICS_KEEP_MS, 0);
    int64_t later = SCH_WMETRICS_KEEP_MS + 10;
    assert_true (s_sum (w, CALLS, later) == 5);
    s_update (w, "h:1", 1, -1, later, 0);
    assert_true (s_sum (w, CALLS, later) == 6);
    sch_wmetrics_destroy (&w);
}

/*  Maps not as the protocol says are ignored whole. */
static void
test_invalid_maps (void **state)
{
    (void) state;
    sch_wmetrics_t *w = sch_wmetrics_new ();
    const char *bad [] = {
        "{\"other_total\": 1}",
        "{\"dexter_x_total\": -1}",
        "{\"dexter_x_total\": \"1\"}",
        "{\"dexter_ok_total\": 1, \"dexter_x_total\": null}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        json_t *m = json_loads (bad [i], 0, NULL);
        assert_non_null (m);
        assert_int_equal (sch_wmetrics_update (w, "h:1", m, 0), -1);
        json_decref (m);
    }
    json_t *sums = sch_wmetrics_sums (w, 0);
    assert_int_equal (json_object_size (sums), 0);
    json_decref (sums);
    sch_wmetrics_destroy (&w);
}

/*  metrics.get: OK with the text of every scheduler family, the counts
    made so far, and the workers' sums under their families' headers. */
static void
test_metrics_get (void **state)
{
    (void) state;
    sch_broker_t *broker = sch_broker_new ("tcp://127.0.0.1:*", 0, 0, NULL);
    assert_non_null (broker);
    s_update (sch_broker_metrics (broker), "h:1", 3, 2, dx_mono_ms (), 0);
    sch_metrics_step ("aws", "host", "step.started");
    sch_metrics_step ("aws", "host", "step.done");
    sch_metrics_step ("aws", "host", "step.progress");     /* not counted */
    sch_metrics_lease_expired ("aws");
    sch_metrics_cache (1);
    sch_metrics_redis_roundtrip (0.0003);

    sch_ctx_t ctx = { .broker = broker };
    json_t *request = dx_msg_new ("metrics.get", "m1");
    json_object_set_new (request, "deadline", json_integer (dx_now_ms () + 1000));
    json_t *reply = sch_metrics_get (&ctx, request);
    assert_string_equal (dx_msg_str (reply, "status"), "OK");
    const char *text = dx_msg_str (reply, "text");
    assert_non_null (text);
    const char *expected [] = {
        "# TYPE dexter_scheduler_clusters gauge\n",
        "# TYPE dexter_scheduler_steps_total counter\n",
        "dexter_scheduler_steps_total{provider=\"aws\",kind=\"host\",event=\"started\"} ",
        "dexter_scheduler_steps_total{provider=\"aws\",kind=\"host\",event=\"done\"} ",
        "dexter_scheduler_lease_expiries_total{provider=\"aws\"} ",
        "dexter_scheduler_workers{service=\"aws\"} 0\n",
        "dexter_scheduler_jobs_running 0\n",
        "dexter_scheduler_cache_lookups_total{result=\"hit\"} ",
        "dexter_scheduler_redis_roundtrip_seconds_bucket{le=\"0.0005\"} ",
        "# TYPE dexter_cloud_calls_total counter\n" CALLS " 3\n",
        "# TYPE dexter_cloud_retries_total counter\n" RETRIES " 2\n",
        "# TYPE dexter_cloud_call_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected [0]; i++)
        if (!strstr (text, expected [i]))
            fail_msg ("missing: %s\nin:\n%s", expected [i], text);
    assert_null (strstr (text, "event=\"progress\""));
    //  No cluster gauge without Redis
    assert_null (strstr (text, "\ndexter_scheduler_clusters "));
    json_decref (reply);
    json_decref (request);
    sch_broker_destroy (&broker);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_sums_and_restarts),
        cmocka_unit_test (test_fold_departed),
        cmocka_unit_test (test_invalid_maps),
        cmocka_unit_test (test_metrics_get),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
