/*  dx_log: one line per event on stderr, written with a single write(2) so
    lines from several threads never interleave. */
#include "dx_log.h"
#include "dx_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *s_service = "dexter";
static int s_level = DX_LOG_INFO;
static const char *s_names [] = { "DEBUG", "INFO", "WARN", "ERROR" };

void
dx_log_init (const char *service)
{
    s_service = service;
    const char *level = getenv ("DEXTER_LOG_LEVEL");
    if (level && *level) {
        for (int i = DX_LOG_DEBUG; i <= DX_LOG_ERROR; i++)
            if (strcasecmp (level, s_names [i]) == 0)
                s_level = i;
    }
}

void
dx_log (int level, const char *fmt, ...)
{
    if (level < s_level)
        return;
    char line [2048], stamp [32];
    int n = snprintf (line, sizeof line, "%s %s[%d] %s ",
                      dx_time_iso (dx_now_ms (), stamp, sizeof stamp),
                      s_service, (int) getpid (), s_names [level]);
    va_list args;
    va_start (args, fmt);
    int m = vsnprintf (line + n, sizeof line - (size_t) n - 1, fmt, args);
    va_end (args);
    size_t len = (size_t) n + (m < 0 ? 0 : (size_t) m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* One event, one line: fold any line break a message carries. */
    for (size_t i = (size_t) n; i < len; i++)
        if (line [i] == '\n' || line [i] == '\r')
            line [i] = ' ';
    line [len++] = '\n';
    ssize_t rc = write (STDERR_FILENO, line, len);
    (void) rc;
}
