/*  dx_config: DEXTER_* environment settings, with defaults, in one place.
    README lists every variable. */
#ifndef DX_CONFIG_H
#define DX_CONFIG_H

#include <stdint.h>

/*  Value of DEXTER_<name> or dflt when unset or empty. Borrowed. */
const char *dx_config_str (const char *name, const char *dflt);

/*  Integer value of DEXTER_<name> within [min, max], or dflt when unset.
    A malformed or out-of-range value logs an error and returns -1 in *ok
    (ok may be NULL). */
int64_t dx_config_int (const char *name, int64_t dflt, int64_t min, int64_t max, int *ok);

#define DX_DEFAULT_API_ADDR            "127.0.0.1:5555"
#define DX_DEFAULT_SCHEDULER_ENDPOINT  "tcp://127.0.0.1:5556"
#define DX_DEFAULT_REDIS_URL           "redis://127.0.0.1:6379/0"
#define DX_DEFAULT_DATA_DIR            "./var"
#define DX_DEFAULT_API_TIMEOUT_MS      5000

#endif
