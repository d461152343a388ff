/*  api_tls: the api's TLS credentials, a certificate chain and its private
    key (PEM), read from the files DEXTER_API_TLS_CERT and
    DEXTER_API_TLS_KEY name. libmicrohttpd does the TLS (with GnuTLS); this
    module reads the files, checks that a daemon takes them, and hands them
    over as daemon options, with TLS 1.2 and 1.3 the only versions offered.
    The daemon keeps its own parsed copy, so the files are read once at
    start and again on each reload (SIGHUP), and an api_tls_t lives only as
    long as it takes to start the daemons that use it. */
#ifndef API_TLS_H
#define API_TLS_H

#include <stddef.h>

typedef struct api_tls_t api_tls_t;
struct MHD_OptionItem;

/*  Reads both files and checks that a daemon takes them (a certificate
    and the key that matches it). NULL with a sentence in err when a file
    cannot be read or the pair is refused. Caller owns the result. */
api_tls_t *api_tls_new (const char *cert_file, const char *key_file,
                        char *err, size_t errlen);

/*  Wipes the key and frees. Safe on NULL; sets *self_p to NULL. */
void api_tls_destroy (api_tls_t **self_p);

/*  Writes the daemon options that serve HTTPS with these credentials
    (borrowed: self must outlive MHD_start_daemon) into items, which has
    room for API_TLS_OPTIONS, ending with MHD_OPTION_END; the daemon also
    needs the flag MHD_USE_TLS. */
#define API_TLS_OPTIONS 4
void api_tls_options (const api_tls_t *self, struct MHD_OptionItem *items);

#endif
