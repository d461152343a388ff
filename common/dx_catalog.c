/*  dx_catalog: instance types, AWS regions and Azure locations. The data is
    in dx_catalog.def (X-macros); this file only builds tables from it and
    looks things up. The tables are small (a few hundred rows) and looked up
    once per request, so a linear scan is plenty. */
#include "dx_catalog.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define DX_INSTANCE(provider, name, vcpus, memory_gib) \
    { #provider, name, vcpus, memory_gib },
static const dx_instance_type_t s_instances [] = {
#include "dx_catalog.def"
};

#define DX_AWS_REGION(name) name,
static const char *const s_aws_regions [] = {
#include "dx_catalog.def"
};

#define DX_AZURE_LOCATION(name, display_name) { name, display_name },
static const dx_location_t s_azure_locations [] = {
#include "dx_catalog.def"
};

#define S_COUNT(array) (sizeof (array) / sizeof ((array) [0]))

/*  The instance type of provider with this exact (case-sensitive) name: AWS
    and Azure both spell their sizes one way, and so do we. */
const dx_instance_type_t *
dx_catalog_instance (const char *provider, const char *name)
{
    if (!provider || !name)
        return NULL;
    for (size_t i = 0; i < S_COUNT (s_instances); i++)
        if (strcmp (s_instances [i].provider, provider) == 0
        &&  strcmp (s_instances [i].name, name) == 0)
            return &s_instances [i];
    return NULL;
}

/*  1 if region is an AWS region name (exact, as AWS spells it). */
int
dx_catalog_aws_region (const char *region)
{
    if (!region)
        return 0;
    for (size_t i = 0; i < S_COUNT (s_aws_regions); i++)
        if (strcmp (s_aws_regions [i], region) == 0)
            return 1;
    return 0;
}

/*  True if text equals display with display's spaces left out, ignoring
    case: so "CentralUS" names "Central US". */
static bool
s_equal_without_spaces (const char *display, const char *text)
{
    for (;;) {
        while (*display == ' ')
            display++;
        if (!*display || !*text)
            return !*display && !*text;
        if (tolower ((unsigned char) *display) != tolower ((unsigned char) *text))
            return false;
        display++;
        text++;
    }
}

/*  The Azure location named by text: its name ("centralus"), its display
    name ("Central US") or the display name without spaces, ignoring case;
    the reference sends display names, ARM wants names. */
const dx_location_t *
dx_catalog_azure_location (const char *text)
{
    if (!text)
        return NULL;
    for (size_t i = 0; i < S_COUNT (s_azure_locations); i++) {
        const dx_location_t *location = &s_azure_locations [i];
        if (strcasecmp (location->name, text) == 0
        ||  strcasecmp (location->display_name, text) == 0
        ||  s_equal_without_spaces (location->display_name, text))
            return location;
    }
    return NULL;
}

/*  Hosts a group needs: max(ceil(cpus / vcpus), ceil(ram / memory)). Memory
    is counted in MiB so that fractional GiB (r3's 30.5, m3's 3.75) divide
    exactly. Returns -1 for a missing type or negative amounts. */
long
dx_catalog_hosts (const dx_instance_type_t *type, long cpus, long ram_gib)
{
    if (!type || type->vcpus <= 0 || type->memory_gib <= 0 || cpus < 0 || ram_gib < 0)
        return -1;
    long by_cpus = cpus / type->vcpus + (cpus % type->vcpus != 0);
    long memory_mib = lround (type->memory_gib * 1024.0);
    long by_ram;
    if (ram_gib <= LONG_MAX / 1024) {
        long ram_mib = ram_gib * 1024;
        by_ram = ram_mib / memory_mib + (ram_mib % memory_mib != 0);
    }
    else
        by_ram = (long) ceil ((double) ram_gib / type->memory_gib);
    return by_cpus > by_ram? by_cpus: by_ram;
}
