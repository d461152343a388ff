/*  Unit tests for common/dx_metrics.c: the text format (HELP, TYPE,
    labels, values), escaping, histogram buckets, invalid declarations,
    updates from several threads, snapshots and their rendered sums. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dx_metrics.h"

static void
test_counter_and_gauge_text (void **state)
{
    (void) state;
    dx_metrics_t *reg = dx_metrics_new ();
    dx_metric_t *calls = dx_metrics_counter (reg, "dexter_calls_total", "Calls made.",
                                             DX_LABELS ("provider", "outcome"));
    dx_metric_t *open = dx_metrics_gauge (reg, "dexter_open", "Open now.", DX_NO_LABELS);
    dx_metric_t *idle = dx_metrics_counter (reg, "dexter_idle_total", "Never used.",
                                            DX_NO_LABELS);
    assert_non_null (calls);
    assert_non_null (open);
    assert_non_null (idle);
    dx_metric_add (calls, 1, "aws", "ok");
    dx_metric_add (calls, 2, "aws", "ok");
    dx_metric_add (calls, 1, "azure", "throttled");
    dx_series_set (dx_metric_only (open), 7);
    dx_series_add (dx_metric_only (open), -2);
    dx_series_add (dx_metric_only (open), 0.5);
    assert_true (dx_series_value (dx_metric_series (calls, "aws", "ok")) == 3);

    char *text = dx_metrics_render (reg);
    assert_string_equal (text,
        "# HELP dexter_calls_total Calls made.\n"
        "# TYPE dexter_calls_total counter\n"
        "dexter_calls_total{provider=\"aws\",outcome=\"ok\"} 3\n"
        "dexter_calls_total{provider=\"azure\",outcome=\"throttled\"} 1\n"
        "# HELP dexter_open Open now.\n"
        "# TYPE dexter_open gauge\n"
        "dexter_open 5.5\n"
        "# HELP dexter_idle_total Never used.\n"
        "# TYPE dexter_idle_total counter\n");
    free (text);
    dx_metrics_destroy (&reg);
    assert_null (reg);
    dx_metrics_destroy (&reg);
}

/*  Label values escape backslash, double quote and line feed; help texts
    backslash and line feed (a quote stays). */
static void
test_escaping (void **state)
{
    (void) state;
    dx_metrics_t *reg = dx_metrics_new ();
    dx_metric_t *m = dx_metrics_counter (reg, "x_total", "A \"help\" \\ on\ntwo lines.",
                                         DX_LABELS ("v"));
    dx_metric_add (m, 1, "a\\b\"c\nd");
    char *text = dx_metrics_render (reg);
    assert_string_equal (text,
        "# HELP x_total A \"help\" \\\\ on\\ntwo lines.\n"
        "# TYPE x_total counter\n"
        "x_total{v=\"a\\\\b\\\"c\\nd\"} 1\n");
    free (text);
    dx_metrics_destroy (&reg);
}

/*  Buckets are cumulative, `le` is the shortest text of the bound, +Inf
    equals the count; an observation on a bound falls in that bucket. */
static void
test_histogram_buckets (void **state)
{
    (void) state;
    dx_metrics_t *reg = dx_metrics_new ();
    const double bounds [] = { 0.005, 0.1, 1, 2.5 };
    dx_metric_t *h = dx_metrics_histogram (reg, "rt_seconds", "Round trips.",
                                           DX_LABELS ("op"), bounds, 4);
    assert_non_null (h);
    dx_series_t *s = dx_metric_series (h, "get");
    dx_series_observe (s, 0.001);
    dx_series_observe (s, 0.1);
    dx_series_observe (s, 0.5);
    dx_series_observe (s, 3);
    dx_series_observe (s, 2.5);
    char *text = dx_metrics_render (reg);
    assert_string_equal (text,
        "# HELP rt_seconds Round trips.\n"
        "# TYPE rt_seconds histogram\n"
        "rt_seconds_bucket{op=\"get\",le=\"0.005\"} 1\n"
        "rt_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
        "rt_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
        "rt_seconds_bucket{op=\"get\",le=\"2.5\"} 4\n"
        "rt_seconds_bucket{op=\"get\",le=\"+Inf\"} 5\n"
        "rt_seconds_sum{op=\"get\"} 6.101\n"
        "rt_seconds_count{op=\"get\"} 5\n");
    free (text);

    //  Observing a counter or adding to a histogram changes nothing.
    dx_series_add (s, 1);
    dx_series_observe (NULL, 1);
    dx_series_add (NULL, 1);
    dx_metrics_destroy (&reg);
}

static void
test_invalid_declarations (void **state)
{
    (void) state;
    dx_metrics_t *reg = dx_metrics_new ();
    const double ok [] = { 1, 2 }, unsorted [] = { 2, 1 }, inf [] = { 1, INFINITY };
    assert_non_null (dx_metrics_counter (reg, "a_total", "A.", DX_NO_LABELS));
    assert_null (dx_metrics_counter (reg, "a_total", "Again.", DX_NO_LABELS));
    assert_null (dx_metrics_counter (reg, "1abc", "Digit first.", DX_NO_LABELS));
    assert_null (dx_metrics_counter (reg, "a-b", "Dash.", DX_NO_LABELS));
    assert_null (dx_metrics_counter (reg, "b_total", "Bad label.", DX_LABELS ("a:b")));
    assert_null (dx_metrics_counter (reg, "c_total", "Five labels.",
                                     DX_LABELS ("a", "b", "c", "d", "e")));
    assert_null (dx_metrics_histogram (reg, "h1", "le label.", DX_LABELS ("le"), ok, 2));
    assert_null (dx_metrics_histogram (reg, "h2", "Unsorted.", DX_NO_LABELS, unsorted, 2));
    assert_null (dx_metrics_histogram (reg, "h3", "Infinite.", DX_NO_LABELS, inf, 2));
    assert_null (dx_metrics_histogram (reg, "h4", "None.", DX_NO_LABELS, ok, 0));
    assert_non_null (dx_metrics_histogram (reg, "h5", "Fine.", DX_LABELS ("a", "b"), ok, 2));
    assert_null (dx_metric_series (NULL, "x"));
    dx_metrics_destroy (&reg);
}

static dx_metric_t *s_shared_counter;
static dx_metric_t *s_shared_histogram;

static void *
s_hammer (void *arg)
{
    const char *label = arg;
    for (int i = 0; i < 10000; i++) {
        dx_metric_add (s_shared_counter, 1, label);
        dx_metric_observe (s_shared_histogram, 0.25, label);
    }
    return NULL;
}

/*  Four threads on two series: no update is lost. */
static void
test_threads (void **state)
{
    (void) state;
    dx_metrics_t *reg = dx_metrics_new ();
    const double bounds [] = { 0.5 };
    s_shared_counter = dx_metrics_counter (reg, "n_total", "N.", DX_LABELS ("t"));
    s_shared_histogram = dx_metrics_histogram (reg, "d_seconds", "D.", DX_LABELS ("t"),
                                               bounds, 1);
    pthread_t threads [4];
    const char *labels [] = { "a", "b", "a", "b" };
    for (int i = 0; i < 4; i++)
        assert_int_equal (pthread_create (&threads [i], NULL, s_hammer, (void *) labels [i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join (threads [i], NULL);
    json_t *snapshot = dx_metrics_snapshot (reg);
    assert_int_equal (json_integer_value (json_object_get (snapshot, "n_total{t=\"a\"}")), 20000);
    assert_int_equal (json_integer_value (json_object_get (snapshot, "n_total{t=\"b\"}")), 20000);
    assert_int_equal (json_integer_value (
        json_object_get (snapshot, "d_seconds_bucket{t=\"a\",le=\"0.5\"}")), 20000);
    assert_int_equal (json_integer_value (json_object_get (snapshot, "d_seconds_sum{t=\"b\"}")),
                      5000);
    json_decref (snapshot);
    dx_metrics_destroy (&reg);
}

/*  A snapshot holds counters and histograms, not gauges; two snapshots
    summed and rendered with the families' headers read as one registry
    that counted both. */
static void
test_snapshot_and_sums (void **state)
{
    (void) state;
    const double bounds [] = { 1 };
    dx_metrics_t *regs [2];
    for (int i = 0; i < 2; i++) {
        regs [i] = dx_metrics_new ();
        dx_metric_t *c = dx_metrics_counter (regs [i], "w_calls_total", "Calls.",
                                             DX_LABELS ("action"));
        dx_metric_t *h = dx_metrics_histogram (regs [i], "w_wait_seconds", "Waits.",
                                               DX_NO_LABELS, bounds, 1);
        dx_metrics_gauge (regs [i], "w_busy", "Busy.", DX_NO_LABELS);
        dx_metric_set (dx_metrics_gauge (regs [i], "w_other", "Other.", DX_LABELS ("x")), 1, "y");
        dx_metric_add (c, 1 + i, i? "Describe": "Run");
        dx_metric_add (c, 1, "Run");
        dx_series_observe (dx_metric_only (h), 0.5 + i);
    }
    json_t *a = dx_metrics_snapshot (regs [0]), *b = dx_metrics_snapshot (regs [1]);
    assert_int_equal (json_object_size (a), 5);     /* 1 counter + 4 histogram samples */
    assert_null (json_object_get (a, "w_other{x=\"y\"}"));
    json_t *sum = json_object ();
    assert_int_equal (dx_metrics_sum_into (sum, a), 0);
    assert_int_equal (dx_metrics_sum_into (sum, b), 0);
    json_object_set_new (sum, "unknown_total", json_integer (9));
    char *head = strdup ("# own\n");
    char *text = dx_metrics_render_sums (regs [0], sum, head);
    assert_string_equal (text,
        "# own\n"
        "# HELP w_calls_total Calls.\n"
        "# TYPE w_calls_total counter\n"
        "w_calls_total{action=\"Run\"} 3\n"
        "w_calls_total{action=\"Describe\"} 2\n"
        "# HELP w_wait_seconds Waits.\n"
        "# TYPE w_wait_seconds histogram\n"
        "w_wait_seconds_bucket{le=\"1\"} 1\n"
        "w_wait_seconds_bucket{le=\"+Inf\"} 2\n"
        "w_wait_seconds_sum 2\n"
        "w_wait_seconds_count 2\n");
    free (text);
    json_decref (a);
    json_decref (b);
    json_decref (sum);
    for (int i = 0; i < 2; i++)
        dx_metrics_destroy (&regs [i]);
}

/*  Values: integers print bare, fractions as their shortest exact text, infinities and NaN
    as Prometheus spells them. */
static void
test_values (void **state)
{
    (void) state;
    dx_metrics_t *reg = dx_metrics_new ();
    dx_metric_t *g = dx_metrics_gauge (reg, "g", "G.", DX_LABELS ("k"));
    dx_metric_set (g, 0.1, "tenth");
    dx_metric_set (g, INFINITY, "inf");
    dx_metric_set (g, -INFINITY, "minf");
    dx_metric_set (g, NAN, "nan");
    dx_metric_set (g, 1e20, "big");
    char *text = dx_metrics_render (reg);
    assert_string_equal (text,
        "# HELP g G.\n"
        "# TYPE g gauge\n"
        "g{k=\"tenth\"} 0.1\n"
        "g{k=\"inf\"} +Inf\n"
        "g{k=\"minf\"} -Inf\n"
        "g{k=\"nan\"} NaN\n"
        "g{k=\"big\"} 1e+20\n");
    free (text);
    dx_metrics_destroy (&reg);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_counter_and_gauge_text),
        cmocka_unit_test (test_escaping),
        cmocka_unit_test (test_histogram_buckets),
        cmocka_unit_test (test_invalid_declarations),
        cmocka_unit_test (test_threads),
        cmocka_unit_test (test_snapshot_and_sums),
        cmocka_unit_test (test_values),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
