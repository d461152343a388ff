/*  dx_crltags: a CRL as cloud tags. See dx_crltags.h. */
#include "dx_crltags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BEGIN "-----BEGIN X509 CRL-----"
#define S_END   "-----END X509 CRL-----"

/*  The base64 body of the one PEM CRL in pem, without line breaks
    (caller frees), or NULL. */
static char *
s_body (const char *pem)
{
    const char *begin = strstr (pem, S_BEGIN);
    const char *end = begin? strstr (begin, S_END): NULL;
    if (!begin || !end || strstr (end + 1, "-----BEGIN"))
        return NULL;
    char *body = (char *) malloc ((size_t) (end - begin) + 1);
    if (!body)
        return NULL;
    size_t len = 0;
    for (const char *c = begin + strlen (S_BEGIN); c < end; c++) {
        if (*c == '\n' || *c == '\r')
            continue;
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
              || *c == '+' || *c == '/' || *c == '=')) {
            free (body);
            return NULL;
        }
        body [len++] = *c;
    }
    body [len] = 0;
    if (len == 0 || len % 4) {
        free (body);
        return NULL;
    }
    return body;
}

json_t *
dx_crltags_new (const char *pem, const char *number, int *too_big, char *err, size_t errlen)
{
    *too_big = 0;
    size_t digits = number? strspn (number, "0123456789"): 0;
    if (!number || !*number || number [digits] || digits > 20) {
        snprintf (err, errlen, "the CRL's number is not a number");
        return NULL;
    }
    char *body = pem? s_body (pem): NULL;
    if (!body) {
        snprintf (err, errlen, "the CRL is not one PEM X509 CRL");
        return NULL;
    }
    size_t len = strlen (body);
    size_t chunks = (len + DX_CRLTAGS_CHUNK - 1) / DX_CRLTAGS_CHUNK;
    if (chunks > DX_CRLTAGS_MAX_CHUNKS) {
        *too_big = 1;
        snprintf (err, errlen, "the CRL (%zu bytes of DER) needs %zu tags of %d characters, "
                  "more than the %d the access node's tags have room for; a cluster with "
                  "so many revoked users needs a new PKI", len / 4 * 3, chunks,
                  DX_CRLTAGS_CHUNK, DX_CRLTAGS_MAX_CHUNKS);
        free (body);
        return NULL;
    }
    json_t *tags = json_object ();
    char head [64], key [32];
    snprintf (head, sizeof head, "%s:%zu", number, chunks);
    json_object_set_new (tags, DX_CRLTAGS_KEY, json_string (head));
    for (size_t i = 0; i < chunks; i++) {
        size_t at = i * DX_CRLTAGS_CHUNK;
        size_t n = len - at < DX_CRLTAGS_CHUNK? len - at: DX_CRLTAGS_CHUNK;
        snprintf (key, sizeof key, DX_CRLTAGS_KEY ".%zu", i);
        json_object_set_new (tags, key, json_stringn (body + at, n));
    }
    free (body);
    return tags;
}

json_t *
dx_crltags_of_step (dx_step_out_t *out, const json_t *context,
                    const char **target, const char **number)
{
    *target = dx_step_need (out, context, "access");
    const char *crl = *target? dx_step_need (out, context, "vpn_crl"): NULL;
    *number = crl? dx_step_need (out, context, "vpn_crl_number"): NULL;
    if (!*number)
        return NULL;
    char err [256];
    int too_big = 0;
    json_t *tags = dx_crltags_new (crl, *number, &too_big, err, sizeof err);
    if (!tags)
        dx_step_outcome (out, DX_STEP_FAILED, 1, too_big? "CrlTooLarge": "InvalidCrl",
                         "%s", err);
    return tags;
}

int
dx_crltags_is_key (const char *key)
{
    size_t n = strlen (DX_CRLTAGS_KEY);
    if (strncmp (key, DX_CRLTAGS_KEY, n))
        return 0;
    if (key [n] == 0)
        return 1;
    return key [n] == '.' && key [n + 1] && strspn (key + n + 1, "0123456789") == strlen (key + n + 1);
}
