/*  dx_log: one line per event on stderr.

    2026-11-25T02:40:00.123Z scheduler[1234] INFO cluster created name=c1
    Never pass a secret to these functions. */
#ifndef DX_LOG_H
#define DX_LOG_H

enum { DX_LOG_DEBUG, DX_LOG_INFO, DX_LOG_WARN, DX_LOG_ERROR };

/*  Names the service in every line and reads DEXTER_LOG_LEVEL
    (debug, info, warn, error; default info). */
void dx_log_init (const char *service);

void dx_log (int level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

#define dx_debug(...) dx_log (DX_LOG_DEBUG, __VA_ARGS__)
#define dx_info(...)  dx_log (DX_LOG_INFO, __VA_ARGS__)
#define dx_warn(...)  dx_log (DX_LOG_WARN, __VA_ARGS__)
#define dx_error(...) dx_log (DX_LOG_ERROR, __VA_ARGS__)

#endif
