/*  dx_crltags: a CRL as cloud tags on the access node, which reads them
    from its instance metadata and installs the CRL for OpenVPN
    (docs/vpn.md, "The CRL and the access node"). The same tags on both
    clouds:

        dexter:crl      "NUMBER:CHUNKS", the CRL's crlNumber and how many
                        chunks follow
        dexter:crl.0    the DER CRL in base64 (the PEM body without its
        ...             lines and armour), DX_CRLTAGS_CHUNK characters
        dexter:crl.K    each, the last one shorter

    A tag value holds at most 256 characters on EC2 and on Azure, and a
    resource holds at most 50 tags on both; the access node carries 6 of
    its own (Name and the ownership tags), so a CRL gets at most
    DX_CRLTAGS_MAX_CHUNKS chunks, 7,680 bytes of DER: about 350 revoked
    certificates of the cluster's CA (docs/vpn.md, "The CRL and the access
    node"). */
#ifndef DX_CRLTAGS_H
#define DX_CRLTAGS_H

#include <stddef.h>
#include <jansson.h>
#include "dx_step.h"

#define DX_CRLTAGS_KEY        "dexter:crl"
#define DX_CRLTAGS_CHUNK      256
#define DX_CRLTAGS_MAX_CHUNKS 40

/*  The tags of the PEM CRL pem whose crlNumber is number (decimal
    digits), as a JSON object {key: value} in key order dexter:crl,
    dexter:crl.0, ... (caller owns); NULL with err filled when pem is not
    one PEM CRL, number is not a number, or the CRL needs more than
    DX_CRLTAGS_MAX_CHUNKS chunks (*too_big set to 1 then, else 0). */
json_t *dx_crltags_new (const char *pem, const char *number, int *too_big,
                        char *err, size_t errlen);

/*  The access.crl step's tags, made from its context's `access` (the
    access node's id: *target), `vpn_crl` and `vpn_crl_number` (*number);
    both point into context. NULL with out's outcome set when a field is
    missing or the CRL cannot be tags (InvalidCrl, CrlTooLarge: permanent). */
json_t *dx_crltags_of_step (dx_step_out_t *out, const json_t *context,
                            const char **target, const char **number);

/*  1 if key is one of the CRL's tags (dexter:crl or dexter:crl.N). */
int dx_crltags_is_key (const char *key);

#endif
