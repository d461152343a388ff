/*  Unit tests for services/api/api_metrics.c: requests counted by route
    template, a method from the fixed set and status; connections and
    timeouts; the /metrics text with and without the scheduler's; and the
    /metrics route (api_route.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/api/api_metrics.h"
#include "../../services/api/api_route.h"

static void
s_contains (const char *text, const char *line)
{
    if (!strstr (text, line))
        fail_msg ("missing: %s\nin:\n%s", line, text);
}

static void
test_requests (void **state)
{
    (void) state;
    assert_true (api_metrics_enabled ());
    const char *route = "/clusters/{name}";
    api_metrics_request ("/api/v1.0", route, "GET", 200, 0.0004);
    api_metrics_request ("/api/v1.0", route, "GET", 200, 0.002);
    api_metrics_request ("/api/v1.0", route, "GET", 404, 0.0001);
    api_metrics_request ("", API_METRICS_NO_ROUTE, "BREW", 405, 0.0001);
    api_metrics_request ("/api/v1.0", route, "DELETE", 0, 0.1);
    //  A method the cache met under another text is the same series
    char get [] = "GET";
    api_metrics_request ("/api/v1.0", route, get, 200, 0.0004);
    api_metrics_connection (1);
    api_metrics_connection (1);
    api_metrics_connection (-1);
    api_metrics_scheduler_timeout ();

    char *text = api_metrics_text ("# scheduler\n");
    s_contains (text, "# TYPE dexter_api_requests_total counter\n");
    s_contains (text, "dexter_api_requests_total{route=\"/api/v1.0/clusters/{name}\","
                      "method=\"GET\",code=\"200\"} 3\n");
    s_contains (text, "dexter_api_requests_total{route=\"/api/v1.0/clusters/{name}\","
                      "method=\"GET\",code=\"404\"} 1\n");
    s_contains (text, "dexter_api_requests_total{route=\"none\",method=\"other\","
                      "code=\"405\"} 1\n");
    s_contains (text, "method=\"DELETE\",code=\"aborted\"} 1\n");
    s_contains (text, "dexter_api_request_duration_seconds_bucket{route=\"/api/v1.0/clusters/"
                      "{name}\",method=\"GET\",le=\"0.0005\"} 3\n");
    s_contains (text, "dexter_api_request_duration_seconds_count{route=\"/api/v1.0/clusters/"
                      "{name}\",method=\"GET\"} 4\n");
    s_contains (text, "dexter_api_open_connections 1\n");
    s_contains (text, "dexter_api_scheduler_timeouts_total 1\n");
    s_contains (text, "dexter_api_scheduler_scrape_ok 1\n");
    //  The scheduler's text follows the api's
    assert_string_equal (text + strlen (text) - strlen ("# scheduler\n"), "# scheduler\n");
    free (text);

    text = api_metrics_text (NULL);
    s_contains (text, "dexter_api_scheduler_scrape_ok 0\n");
    assert_null (strstr (text, "# scheduler"));
    free (text);
}

/*  /metrics is a route outside API_PREFIX, but no probe (it needs the
    token): GET and HEAD, OPTIONS with its Allow, a 405 for the rest;
    nothing below it. */
static void
test_route (void **state)
{
    (void) state;
    api_match_t match;
    const char *reads [] = { "GET", "HEAD" };
    for (size_t i = 0; i < 2; i++) {
        api_route_match (reads [i], "/metrics", &match);
        assert_int_equal (match.status, 200);
        assert_int_equal (match.route->action, API_DO_METRICS);
        assert_string_equal (match.route->type, "metrics.get");
        assert_string_equal (match.route->pattern, "/metrics");
        assert_true (api_route_outside (match.route));
        assert_false (api_route_probe (match.route));
        assert_false (match.probe);
    }
    api_route_match ("GET", "/metrics/", &match);
    assert_int_equal (match.status, 200);
    api_route_match ("OPTIONS", "/metrics", &match);
    assert_int_equal (match.status, 204);
    assert_string_equal (match.allow, "GET, HEAD, OPTIONS");
    assert_false (match.probe);
    api_route_match ("POST", "/metrics", &match);
    assert_int_equal (match.status, 405);
    assert_null (match.route);
    assert_non_null (strstr (match.message, "allowed: GET, HEAD, OPTIONS"));
    const char *others [] = { "/metrics/x", "/api/v1.0/metrics", "/Metrics", "/metricsx" };
    for (size_t i = 0; i < 4; i++) {
        api_route_match ("GET", others [i], &match);
        assert_int_equal (match.status, 404);
    }
    //  The probes stay probes
    api_route_match ("GET", "/healthz", &match);
    assert_true (match.probe);
    assert_true (api_route_outside (match.route));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_requests),
        cmocka_unit_test (test_route),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
