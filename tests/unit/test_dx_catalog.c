/*  Unit tests for dx_catalog: the types the reference names, published
    numbers, regions, locations and the hosts arithmetic. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "dx_catalog.h"

/*  The rows of the data file, read the way dx_catalog.c reads them: what
    the table tests walk. */
#define DX_INSTANCE(provider, name, vcpus, memory_gib) \
    { #provider, name, vcpus, memory_gib },
static const dx_instance_type_t s_rows [] = {
#include "dx_catalog.def"
};
#define S_ROWS (sizeof s_rows / sizeof s_rows [0])

/*  Asserts that provider offers name with these vCPUs and GiB. */
static void
s_expect (const char *provider, const char *name, int vcpus, double memory_gib)
{
    const dx_instance_type_t *type = dx_catalog_instance (provider, name);
    if (!type)
        fail_msg ("%s instance type %s missing", provider, name);
    assert_string_equal (type->provider, provider);
    assert_string_equal (type->name, name);
    if (type->vcpus != vcpus || type->memory_gib != memory_gib)
        fail_msg ("%s: %d vCPUs %g GiB, expected %d %g", name, type->vcpus,
                  type->memory_gib, vcpus, memory_gib);
}

/*  Every instance type the reference uses, and its supported Azure list. */
static void
test_reference_types (void **state)
{
    (void) state;
    s_expect ("aws", "m3.large", 2, 7.5);
    s_expect ("aws", "r3.xlarge", 4, 30.5);
    s_expect ("aws", "m5.xlarge", 4, 16.0);           /* our aws default */
    s_expect ("azure", "Basic_A2", 2, 3.5);
    s_expect ("azure", "Basic_A3", 4, 7.0);
    s_expect ("azure", "Standard_D11", 2, 14.0);
    s_expect ("azure", "Standard_DS1", 1, 3.5);
    s_expect ("azure", "Standard_DS2", 2, 7.0);
    s_expect ("azure", "Standard_DS3", 4, 14.0);
    s_expect ("azure", "Standard_DS4", 8, 28.0);
    s_expect ("azure", "Standard_DS11", 2, 14.0);
    s_expect ("azure", "Standard_DS12", 4, 28.0);
    s_expect ("azure", "Standard_DS13", 8, 56.0);
    s_expect ("azure", "Standard_DS14", 16, 112.0);
}

/*  Spot checks against AWS's and Azure's published specifications. */
static void
test_published_numbers (void **state)
{
    (void) state;
    s_expect ("aws", "m3.medium", 1, 3.75);
    s_expect ("aws", "m4.10xlarge", 40, 160.0);
    s_expect ("aws", "m5.24xlarge", 96, 384.0);
    s_expect ("aws", "m5.metal", 96, 384.0);
    s_expect ("aws", "m6i.32xlarge", 128, 512.0);
    s_expect ("aws", "m6i.metal", 128, 512.0);
    s_expect ("aws", "c4.8xlarge", 36, 60.0);
    s_expect ("aws", "c5.9xlarge", 36, 72.0);
    s_expect ("aws", "c5.18xlarge", 72, 144.0);
    s_expect ("aws", "c5.metal", 96, 192.0);
    s_expect ("aws", "c6i.32xlarge", 128, 256.0);
    s_expect ("aws", "c6i.metal", 128, 256.0);
    s_expect ("aws", "r3.large", 2, 15.25);
    s_expect ("aws", "r4.16xlarge", 64, 488.0);
    s_expect ("aws", "r5.metal", 96, 768.0);
    s_expect ("aws", "r6i.32xlarge", 128, 1024.0);
    s_expect ("aws", "r6i.metal", 128, 1024.0);
    s_expect ("aws", "t2.nano", 1, 0.5);
    s_expect ("aws", "t2.2xlarge", 8, 32.0);
    s_expect ("aws", "t3.nano", 2, 0.5);
    s_expect ("azure", "Basic_A0", 1, 0.75);
    s_expect ("azure", "Basic_A4", 8, 14.0);
    s_expect ("azure", "Standard_A0", 1, 0.75);
    s_expect ("azure", "Standard_A5", 2, 14.0);
    s_expect ("azure", "Standard_A8", 8, 56.0);
    s_expect ("azure", "Standard_A11", 16, 112.0);
    s_expect ("azure", "Standard_A1_v2", 1, 2.0);
    s_expect ("azure", "Standard_A8m_v2", 8, 64.0);
    s_expect ("azure", "Standard_D1", 1, 3.5);
    s_expect ("azure", "Standard_D14", 16, 112.0);
    s_expect ("azure", "Standard_D2_v3", 2, 8.0);
    s_expect ("azure", "Standard_D64_v3", 64, 256.0);
    s_expect ("azure", "Standard_D2s_v5", 2, 8.0);
    s_expect ("azure", "Standard_D96s_v5", 96, 384.0);
}

/*  Every size of every required family is there (names only). */
static void
test_families_complete (void **state)
{
    (void) state;
    static const char *const aws [] = {
        "m3.medium", "m3.large", "m3.xlarge", "m3.2xlarge",
        "m4.large", "m4.xlarge", "m4.2xlarge", "m4.4xlarge", "m4.10xlarge", "m4.16xlarge",
        "m5.large", "m5.xlarge", "m5.2xlarge", "m5.4xlarge", "m5.8xlarge", "m5.12xlarge",
        "m5.16xlarge", "m5.24xlarge", "m5.metal",
        "m6i.large", "m6i.xlarge", "m6i.2xlarge", "m6i.4xlarge", "m6i.8xlarge",
        "m6i.12xlarge", "m6i.16xlarge", "m6i.24xlarge", "m6i.32xlarge", "m6i.metal",
        "c4.large", "c4.xlarge", "c4.2xlarge", "c4.4xlarge", "c4.8xlarge",
        "c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge", "c5.9xlarge", "c5.12xlarge",
        "c5.18xlarge", "c5.24xlarge", "c5.metal",
        "c6i.large", "c6i.xlarge", "c6i.2xlarge", "c6i.4xlarge", "c6i.8xlarge",
        "c6i.12xlarge", "c6i.16xlarge", "c6i.24xlarge", "c6i.32xlarge", "c6i.metal",
        "r3.large", "r3.xlarge", "r3.2xlarge", "r3.4xlarge", "r3.8xlarge",
        "r4.large", "r4.xlarge", "r4.2xlarge", "r4.4xlarge", "r4.8xlarge", "r4.16xlarge",
        "r5.large", "r5.xlarge", "r5.2xlarge", "r5.4xlarge", "r5.8xlarge", "r5.12xlarge",
        "r5.16xlarge", "r5.24xlarge", "r5.metal",
        "r6i.large", "r6i.xlarge", "r6i.2xlarge", "r6i.4xlarge", "r6i.8xlarge",
        "r6i.12xlarge", "r6i.16xlarge", "r6i.24xlarge", "r6i.32xlarge", "r6i.metal",
        "t2.nano", "t2.micro", "t2.small", "t2.medium", "t2.large", "t2.xlarge", "t2.2xlarge",
        "t3.nano", "t3.micro", "t3.small", "t3.medium", "t3.large", "t3.xlarge", "t3.2xlarge",
        NULL
    };
    static const char *const azure [] = {
        "Basic_A0", "Basic_A1", "Basic_A2", "Basic_A3", "Basic_A4",
        "Standard_A0", "Standard_A1", "Standard_A2", "Standard_A3", "Standard_A4",
        "Standard_A5", "Standard_A6", "Standard_A7", "Standard_A8", "Standard_A9",
        "Standard_A10", "Standard_A11",
        "Standard_A1_v2", "Standard_A2_v2", "Standard_A4_v2", "Standard_A8_v2",
        "Standard_A2m_v2", "Standard_A4m_v2", "Standard_A8m_v2",
        "Standard_D1", "Standard_D2", "Standard_D3", "Standard_D4",
        "Standard_D11", "Standard_D12", "Standard_D13", "Standard_D14",
        "Standard_DS1", "Standard_DS2", "Standard_DS3", "Standard_DS4",
        "Standard_DS11", "Standard_DS12", "Standard_DS13", "Standard_DS14",
        "Standard_D2_v3", "Standard_D4_v3", "Standard_D8_v3", "Standard_D16_v3",
        "Standard_D32_v3", "Standard_D48_v3", "Standard_D64_v3",
        "Standard_D2s_v5", "Standard_D4s_v5", "Standard_D8s_v5", "Standard_D16s_v5",
        "Standard_D32s_v5", "Standard_D48s_v5", "Standard_D64s_v5", "Standard_D96s_v5",
        NULL
    };
    size_t count = 0;
    for (size_t i = 0; aws [i]; i++, count++)
        if (!dx_catalog_instance ("aws", aws [i]))
            fail_msg ("aws %s missing", aws [i]);
    for (size_t i = 0; azure [i]; i++, count++)
        if (!dx_catalog_instance ("azure", azure [i]))
            fail_msg ("azure %s missing", azure [i]);
    /*  Nothing else crept in, and no duplicates. */
    assert_int_equal (S_ROWS, count);
}

/*  Table sanity: sane numbers, memory in quarter GiB (so the MiB arithmetic
    of dx_catalog_hosts is exact), no name twice, each row found by the
    lookup. */
static void
test_table_sane (void **state)
{
    (void) state;
    assert_true (S_ROWS > 150);
    for (size_t i = 0; i < S_ROWS; i++) {
        const dx_instance_type_t *type = &s_rows [i];
        assert_true (strcmp (type->provider, "aws") == 0
                  || strcmp (type->provider, "azure") == 0);
        assert_true (type->vcpus >= 1 && type->vcpus <= 128);
        assert_true (type->memory_gib >= 0.5 && type->memory_gib <= 1024);
        assert_true (fmod (type->memory_gib * 4, 1.0) == 0.0);
        for (size_t j = i + 1; j < S_ROWS; j++)
            assert_false (strcmp (type->name, s_rows [j].name) == 0);
        s_expect (type->provider, type->name, type->vcpus, type->memory_gib);
    }
}

/*  Names are exact: wrong case, wrong provider, NULLs. */
static void
test_instance_exact (void **state)
{
    (void) state;
    assert_null (dx_catalog_instance ("aws", "M3.large"));
    assert_null (dx_catalog_instance ("aws", "m3.large "));
    assert_null (dx_catalog_instance ("azure", "standard_ds1"));
    assert_null (dx_catalog_instance ("azure", "m3.large"));
    assert_null (dx_catalog_instance ("aws", "Basic_A2"));
    assert_null (dx_catalog_instance ("gcp", "m3.large"));
    assert_null (dx_catalog_instance (NULL, "m3.large"));
    assert_null (dx_catalog_instance ("aws", NULL));
    assert_null (dx_catalog_instance ("aws", ""));
}

/*  AWS regions: commercial, GovCloud, China, newer ones; not made-up ones. */
static void
test_aws_regions (void **state)
{
    (void) state;
    static const char *const regions [] = {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1",
        "eu-central-1", "eu-central-2", "eu-south-2", "ap-northeast-1",
        "ap-southeast-3", "ap-south-2", "sa-east-1", "af-south-1", "me-central-1",
        "ca-central-1", "us-gov-west-1", "us-gov-east-1", "cn-north-1",
        "cn-northwest-1", "il-central-1", "ap-southeast-4", "ca-west-1", NULL
    };
    for (size_t i = 0; regions [i]; i++)
        if (!dx_catalog_aws_region (regions [i]))
            fail_msg ("region %s missing", regions [i]);
    assert_false (dx_catalog_aws_region ("us-west-9"));
    assert_false (dx_catalog_aws_region ("US-WEST-2"));
    assert_false (dx_catalog_aws_region ("us-west-2a"));
    assert_false (dx_catalog_aws_region ("aws-global"));
    assert_false (dx_catalog_aws_region (""));
    assert_false (dx_catalog_aws_region (NULL));
}

/*  Azure locations by name, display name (any case) or the display name
    without its spaces. */
static void
test_azure_locations (void **state)
{
    (void) state;
    static const char *const spellings [] = {
        "Central US", "centralus", "CENTRAL US", "central us", "CentralUS", NULL
    };
    for (size_t i = 0; spellings [i]; i++) {
        const dx_location_t *location = dx_catalog_azure_location (spellings [i]);
        if (!location)
            fail_msg ("'%s' not found", spellings [i]);
        assert_string_equal (location->name, "centralus");
        assert_string_equal (location->display_name, "Central US");
    }
    const dx_location_t *location = dx_catalog_azure_location ("West Europe");
    assert_non_null (location);
    assert_string_equal (location->name, "westeurope");
    location = dx_catalog_azure_location ("eastus2");
    assert_non_null (location);
    assert_string_equal (location->display_name, "East US 2");
    location = dx_catalog_azure_location ("East US");
    assert_non_null (location);
    assert_string_equal (location->name, "eastus");       /* not eastus2 */
    location = dx_catalog_azure_location ("australiacentral2");
    assert_non_null (location);
    assert_string_equal (location->display_name, "Australia Central 2");
    assert_non_null (dx_catalog_azure_location ("UK South"));
    assert_non_null (dx_catalog_azure_location ("germanywestcentral"));
    assert_non_null (dx_catalog_azure_location ("Switzerland North"));

    assert_null (dx_catalog_azure_location ("Central"));
    assert_null (dx_catalog_azure_location ("Central US 3"));
    assert_null (dx_catalog_azure_location ("us-west-2"));
    assert_null (dx_catalog_azure_location (""));
    assert_null (dx_catalog_azure_location (NULL));
}

/*  hosts = max(ceil(cpus / vcpus), ceil(ram / GiB)), fractional GiB
    handled exactly. */
static void
test_hosts (void **state)
{
    (void) state;
    const dx_instance_type_t *r3 = dx_catalog_instance ("aws", "r3.xlarge");
    assert_int_equal (dx_catalog_hosts (r3, 10, 64), 3);       /* reference */
    assert_int_equal (dx_catalog_hosts (r3, 12, 60), 3);       /* 12/4 = 3 */
    assert_int_equal (dx_catalog_hosts (r3, 4, 61), 2);        /* exactly 2 */
    assert_int_equal (dx_catalog_hosts (r3, 4, 62), 3);
    assert_int_equal (dx_catalog_hosts (r3, 1, 1), 1);
    assert_int_equal (dx_catalog_hosts (r3, 0, 0), 0);

    const dx_instance_type_t *m5 = dx_catalog_instance ("aws", "m5.xlarge");
    assert_int_equal (dx_catalog_hosts (m5, 10, 64), 4);       /* ram decides */
    assert_int_equal (dx_catalog_hosts (m5, 20, 128), 8);
    assert_int_equal (dx_catalog_hosts (m5, 17, 16), 5);       /* cpus decide */

    const dx_instance_type_t *m3 = dx_catalog_instance ("aws", "m3.medium");
    assert_int_equal (dx_catalog_hosts (m3, 1, 15), 4);        /* 4 x 3.75 */
    assert_int_equal (dx_catalog_hosts (m3, 1, 16), 5);

    const dx_instance_type_t *a0 = dx_catalog_instance ("azure", "Basic_A0");
    assert_int_equal (dx_catalog_hosts (a0, 1, 3), 4);         /* 4 x 0.75 */
    assert_int_equal (dx_catalog_hosts (a0, 1, 65536), 87382);

    const dx_instance_type_t *d11 = dx_catalog_instance ("azure", "Standard_D11");
    assert_int_equal (dx_catalog_hosts (d11, 12, 16), 6);      /* reference */

    assert_int_equal (dx_catalog_hosts (NULL, 1, 1), -1);
    assert_int_equal (dx_catalog_hosts (m5, -1, 1), -1);
    assert_int_equal (dx_catalog_hosts (m5, 1, -1), -1);
    assert_true (dx_catalog_hosts (m5, 1, 9000000000000000000L) > 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_reference_types),
        cmocka_unit_test (test_published_numbers),
        cmocka_unit_test (test_families_complete),
        cmocka_unit_test (test_table_sane),
        cmocka_unit_test (test_instance_exact),
        cmocka_unit_test (test_aws_regions),
        cmocka_unit_test (test_azure_locations),
        cmocka_unit_test (test_hosts),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
