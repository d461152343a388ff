/*  Unit tests for common/dx_step.c: a step's result, the first outcome
    winning, resources and their attributes, the context a step needs,
    and the cancel flag. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dx_step.h"

static void
test_outcome (void **state)
{
    (void) state;
    dx_step_out_t out;
    dx_step_out_init (&out, NULL, NULL);
    assert_int_equal (out.outcome, DX_STEP_DONE);
    assert_string_equal (dx_step_outcome_name (out.outcome), "done");
    assert_int_equal (json_array_size (out.resources), 0);
    assert_int_equal (dx_step_cancelled (&out), 0);

    /* the first one wins: the helper that saw the cause says it */
    assert_int_equal (dx_step_outcome (&out, DX_STEP_RETRY, 1, "Throttled", "%d tries", 8), -1);
    assert_int_equal (dx_step_outcome (&out, DX_STEP_FAILED, 1, "Other", "later"), -1);
    assert_int_equal (out.outcome, DX_STEP_RETRY);
    assert_int_equal (out.permanent, 0);            /* only a failure is permanent */
    assert_string_equal (out.code, "Throttled");
    assert_string_equal (out.message, "8 tries");
    assert_string_equal (dx_step_outcome_name (out.outcome), "retry");
    dx_step_out_fini (&out);
    assert_null (out.resources);

    dx_step_out_init (&out, NULL, NULL);
    dx_step_outcome (&out, DX_STEP_FAILED, 1, "AuthFailure", "no");
    assert_int_equal (out.permanent, 1);
    assert_string_equal (dx_step_outcome_name (out.outcome), "failed");
    dx_step_out_fini (&out);
}

static void
test_resources_and_context (void **state)
{
    (void) state;
    dx_step_out_t out;
    dx_step_out_init (&out, NULL, NULL);
    json_t *vpc = dx_step_resource (&out, "vpc", "vpc", "vpc-1");
    dx_step_attr (vpc, "cidr", "10.0.0.0/16");
    dx_step_attr (vpc, "empty", NULL);
    json_t *none = dx_step_resource (&out, "image", "image", NULL);
    assert_int_equal (json_array_size (out.resources), 2);
    assert_string_equal (dx_step_str (vpc, "provider_id"), "vpc-1");
    assert_string_equal (dx_step_str (vpc, "cidr"), "10.0.0.0/16");
    assert_string_equal (dx_step_str (vpc, "empty"), "");
    assert_string_equal (dx_step_str (none, "provider_id"), "");
    assert_null (dx_step_str (vpc, "absent"));
    assert_null (dx_step_str (NULL, "absent"));

    json_t *context = json_pack ("{s:s, s:s}", "vpc", "vpc-1", "subnet", "");
    assert_string_equal (dx_step_need (&out, context, "vpc"), "vpc-1");
    assert_int_equal (out.outcome, DX_STEP_DONE);
    assert_null (dx_step_need (&out, context, "subnet"));
    assert_int_equal (out.outcome, DX_STEP_FAILED);
    assert_int_equal (out.permanent, 1);
    assert_string_equal (out.code, "InvalidStep");
    assert_non_null (strstr (out.message, "subnet"));
    json_decref (context);
    dx_step_out_fini (&out);
}

static int
s_cancel (void *arg)
{
    return *(int *) arg;
}

static void
test_cancelled (void **state)
{
    (void) state;
    int flag = 0;
    dx_step_out_t out;
    dx_step_out_init (&out, s_cancel, &flag);
    assert_int_equal (dx_step_cancelled (&out), 0);
    flag = 1;
    assert_int_equal (dx_step_cancelled (&out), 1);
    dx_step_out_fini (&out);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_outcome),
        cmocka_unit_test (test_resources_and_context),
        cmocka_unit_test (test_cancelled),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
