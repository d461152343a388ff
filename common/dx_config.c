/*  dx_config: DEXTER_* settings from the environment. */
#include "dx_config.h"
#include "dx_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

const char *
dx_config_str (const char *name, const char *dflt)
{
    char var [128];
    snprintf (var, sizeof var, "DEXTER_%s", name);
    const char *value = getenv (var);
    return value && *value ? value : dflt;
}

int64_t
dx_config_int (const char *name, int64_t dflt, int64_t min, int64_t max, int *ok)
{
    if (ok)
        *ok = 0;
    const char *text = dx_config_str (name, NULL);
    if (!text)
        return dflt;
    char *end;
    errno = 0;
    long long value = strtoll (text, &end, 10);
    if (errno || *end || value < min || value > max) {
        dx_error ("DEXTER_%s=%s is not an integer in [%lld, %lld]",
                  name, text, (long long) min, (long long) max);
        if (ok)
            *ok = -1;
        return dflt;
    }
    return value;
}
