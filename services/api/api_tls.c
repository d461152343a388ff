/*  api_tls: the certificate and key files, read and checked. */
#include "api_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*  A certificate chain or key is a few KiB; a file far larger is a
    mistake. */
#define API_TLS_FILE_MAX (1024 * 1024)
/*  TLS 1.2 and 1.3 only: 1.0 and 1.1 are deprecated (RFC 8996). */
#define API_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define API_TLS_REASON_MAX 256

struct api_tls_t {
    char *cert;                     /* PEM text */
    char *key;                      /* PEM text, wiped when freed */
    size_t key_len;
};

/*  The whole text of a regular file, NUL-terminated, in a buffer of
    *len + 1 bytes. NULL with a sentence in err. */
static char *
s_read_file (const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf (err, errlen, "cannot open %s: %s", path, strerror (errno));
        return NULL;
    }
    struct stat st;
    char *text = NULL;
    ssize_t n = -1;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode) || st.st_size > API_TLS_FILE_MAX)
        snprintf (err, errlen, "%s is not a regular file of at most %d bytes",
                  path, API_TLS_FILE_MAX);
    else
    if (!(text = malloc ((size_t) st.st_size + 1)))
        snprintf (err, errlen, "out of memory reading %s", path);
    else
    if ((n = read (fd, text, (size_t) st.st_size)) < 0)
        snprintf (err, errlen, "cannot read %s: %s", path, strerror (errno));
    else
    if ((size_t) n != (size_t) st.st_size || memchr (text, 0, (size_t) n)) {
        snprintf (err, errlen, "%s is not a PEM text file (or changed while read)", path);
        n = -1;
    }
    close (fd);
    if (text && n < 0) {
        sodium_memzero (text, (size_t) st.st_size);
        free (text);
        return NULL;
    }
    if (text) {
        text [n] = 0;
        *len = (size_t) n;
    }
    return text;
}

/*  Keeps libmicrohttpd's first complaint (why it refused the pair). */
__attribute__ ((format (printf, 2, 0)))
static void
s_capture (void *cls, const char *fmt, va_list ap)
{
    char *line = cls;
    if (line [0])
        return;
    vsnprintf (line, API_TLS_REASON_MAX, fmt, ap);
    line [strcspn (line, "\r\n")] = 0;
}

/*  The checking daemon has no socket: no request ever comes. */
static enum MHD_Result
s_no_access (void *cls, struct MHD_Connection *conn, const char *url,
             const char *method, const char *version, const char *upload_data,
             size_t *upload_data_size, void **req_cls)
{
    (void) cls, (void) conn, (void) url, (void) method, (void) version;
    (void) upload_data, (void) upload_data_size, (void) req_cls;
    return MHD_NO;
}

/*  Starts (and stops) a daemon without a socket on the pair: GnuTLS parses
    both and checks that the key is the certificate's, as a serving daemon
    would. 0, or -1 with its reason in err. */
static int
s_check (const api_tls_t *self, char *err, size_t errlen)
{
    struct MHD_OptionItem options [API_TLS_OPTIONS];
    api_tls_options (self, options);
    char reason [API_TLS_REASON_MAX] = "";
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_USE_TLS | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, &s_no_access, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, &s_capture, reason,
        MHD_OPTION_ARRAY, options,
        MHD_OPTION_END);
    if (!daemon) {
        snprintf (err, errlen, "not a usable certificate and key: %s",
                  reason [0] ? reason : "libmicrohttpd refused them");
        return -1;
    }
    MHD_stop_daemon (daemon);
    return 0;
}

api_tls_t *
api_tls_new (const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    api_tls_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    size_t cert_len;
    if (!(self->cert = s_read_file (cert_file, &cert_len, err, errlen))
    ||  !(self->key = s_read_file (key_file, &self->key_len, err, errlen))
    ||  s_check (self, err, errlen))
        api_tls_destroy (&self);
    return self;
}

void
api_tls_destroy (api_tls_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    api_tls_t *self = *self_p;
    if (self->key) {
        sodium_memzero (self->key, self->key_len);
        free (self->key);
    }
    free (self->cert);
    free (self);
    *self_p = NULL;
}

void
api_tls_options (const api_tls_t *self, struct MHD_OptionItem *items)
{
    items [0] = (struct MHD_OptionItem) { MHD_OPTION_HTTPS_MEM_CERT, 0, self->cert };
    items [1] = (struct MHD_OptionItem) { MHD_OPTION_HTTPS_MEM_KEY, 0, self->key };
    items [2] = (struct MHD_OptionItem) { MHD_OPTION_HTTPS_PRIORITIES, 0,
                                          (void *) API_TLS_PRIORITIES };
    items [3] = (struct MHD_OptionItem) { MHD_OPTION_END, 0, NULL };
}
