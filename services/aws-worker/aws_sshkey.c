/*  aws_sshkey: the OpenSSH public key of a private key, for the keypair
    step's ImportKeyPair. See aws_sshkey.h.

    No library writes OpenSSH's public key format from an OpenSSL key, so
    the wire blob is built here (RFC 4253 6.6, RFC 8709):
        ssh-rsa:     string "ssh-rsa", mpint e, mpint n
        ssh-ed25519: string "ssh-ed25519", string (32 raw bytes)
    where string and mpint are a 4-byte big-endian length and the bytes
    (an mpint gets a leading zero byte when its top bit is set). The line
    is then "TYPE base64(blob) dexter". */
#include "aws_sshkey.h"
#include "dx_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define S_BLOB_MAX 2048     /* an RSA-16384 key's blob is about 2 KiB */

typedef struct {
    unsigned char data [S_BLOB_MAX];
    size_t len;
    int overflow;
} s_blob_t;

static void
s_blob_string (s_blob_t *blob, const unsigned char *bytes, size_t len, int mpint)
{
    int pad = mpint && len > 0 && (bytes [0] & 0x80);
    size_t total = len + (size_t) pad;
    if (blob->len + 4 + total > sizeof blob->data) {
        blob->overflow = 1;
        return;
    }
    unsigned char *p = blob->data + blob->len;
    p [0] = (unsigned char) (total >> 24);
    p [1] = (unsigned char) (total >> 16);
    p [2] = (unsigned char) (total >> 8);
    p [3] = (unsigned char) total;
    p += 4;
    if (pad)
        *p++ = 0;
    memcpy (p, bytes, len);
    blob->len += 4 + total;
}

static void
s_blob_bn (s_blob_t *blob, const BIGNUM *bn)
{
    unsigned char bytes [S_BLOB_MAX];
    int len = BN_num_bytes (bn);
    if (len < 0 || (size_t) len > sizeof bytes) {
        blob->overflow = 1;
        return;
    }
    BN_bn2bin (bn, bytes);
    s_blob_string (blob, bytes, (size_t) len, 1);
}

/*  "TYPE base64(blob) dexter". Caller frees. */
static char *
s_line (const char *type, const unsigned char *blob, size_t len)
{
    size_t b64_size = 4 * ((len + 2) / 3) + 1;
    unsigned char *b64 = malloc (b64_size);
    if (!b64)
        return NULL;
    EVP_EncodeBlock (b64, blob, (int) len);
    char *line = NULL;
    if (asprintf (&line, "%s %s dexter", type, (char *) b64) < 0)
        line = NULL;
    free (b64);
    return line;
}

/*  From an OpenSSL private key. */
static char *
s_from_pkey (EVP_PKEY *pkey, char *err, size_t errlen)
{
    s_blob_t blob = { .len = 0 };
    const char *type = NULL;
    if (EVP_PKEY_get_base_id (pkey) == EVP_PKEY_RSA) {
        BIGNUM *e = NULL, *n = NULL;
        if (EVP_PKEY_get_bn_param (pkey, OSSL_PKEY_PARAM_RSA_E, &e)
        &&  EVP_PKEY_get_bn_param (pkey, OSSL_PKEY_PARAM_RSA_N, &n)) {
            type = "ssh-rsa";
            s_blob_string (&blob, (const unsigned char *) type, strlen (type), 0);
            s_blob_bn (&blob, e);
            s_blob_bn (&blob, n);
        }
        BN_free (e);
        BN_free (n);
    }
    else
    if (EVP_PKEY_get_base_id (pkey) == EVP_PKEY_ED25519) {
        unsigned char raw [32];
        size_t raw_len = sizeof raw;
        if (EVP_PKEY_get_raw_public_key (pkey, raw, &raw_len) && raw_len == 32) {
            type = "ssh-ed25519";
            s_blob_string (&blob, (const unsigned char *) type, strlen (type), 0);
            s_blob_string (&blob, raw, raw_len, 0);
        }
    }
    else {
        snprintf (err, errlen, "sshkeydata is neither an RSA nor an Ed25519 key "
                  "(the key types EC2 imports)");
        return NULL;
    }
    if (!type || blob.overflow) {
        snprintf (err, errlen, "sshkeydata: the public key cannot be derived");
        return NULL;
    }
    return s_line (type, blob.data, blob.len);
}

/*  Reads a 4-byte length and that many bytes at *p (end at end). */
static const unsigned char *
s_take (const unsigned char **p, const unsigned char *end, uint32_t *len)
{
    if (end - *p < 4)
        return NULL;
    uint32_t n = ((uint32_t) (*p) [0] << 24) | ((uint32_t) (*p) [1] << 16)
               | ((uint32_t) (*p) [2] << 8) | (uint32_t) (*p) [3];
    if ((size_t) (end - *p - 4) < n)
        return NULL;
    const unsigned char *start = *p + 4;
    *p = start + n;
    *len = n;
    return start;
}

/*  From an "openssh-key-v1" private key: its first public key blob is in
    the clear, after the cipher, kdf, kdf options and key count. */
static char *
s_from_openssh (const char *text, char *err, size_t errlen)
{
    static const char begin [] = "-----BEGIN OPENSSH PRIVATE KEY-----";
    static const char end_mark [] = "-----END OPENSSH PRIVATE KEY-----";
    static const char magic [] = "openssh-key-v1";      /* with its NUL */
    const char *body = strstr (text, begin);
    const char *end = body? strstr (body, end_mark): NULL;
    char *line = NULL;
    if (!body || !end) {
        snprintf (err, errlen, "sshkeydata is not a private key");
        return NULL;
    }
    body += strlen (begin);
    //  The body holds the private key too: wipe every copy
    size_t body_len = (size_t) (end - body);
    char *base64 = strndup (body, body_len);
    size_t len = 0;
    unsigned char *raw = base64? dx_base64_decode (base64, &len): NULL;
    if (base64)
        OPENSSL_cleanse (base64, body_len);
    free (base64);
    if (raw && len > sizeof magic && memcmp (raw, magic, sizeof magic) == 0) {
        const unsigned char *p = raw + sizeof magic, *stop = raw + len;
        uint32_t n, count = 0, type_len;
        int ok = s_take (&p, stop, &n) && s_take (&p, stop, &n) && s_take (&p, stop, &n);
        if (ok && stop - p >= 4) {
            count = ((uint32_t) p [0] << 24) | ((uint32_t) p [1] << 16)
                  | ((uint32_t) p [2] << 8) | (uint32_t) p [3];
            p += 4;
        }
        const unsigned char *blob = ok && count >= 1? s_take (&p, stop, &n): NULL;
        const unsigned char *bp = blob;
        const unsigned char *type = blob? s_take (&bp, blob + n, &type_len): NULL;
        char type_name [32] = "";
        if (type && type_len < sizeof type_name) {
            memcpy (type_name, type, type_len);
            type_name [type_len] = 0;
        }
        if (strcmp (type_name, "ssh-rsa") == 0 || strcmp (type_name, "ssh-ed25519") == 0)
            line = s_line (type_name, blob, n);
        else
            snprintf (err, errlen, "sshkeydata is an OpenSSH key of a type EC2 does not "
                      "import (use RSA or Ed25519)");
    }
    else
        snprintf (err, errlen, "sshkeydata is not a readable OpenSSH private key");
    if (raw) {
        OPENSSL_cleanse (raw, len);
        free (raw);
    }
    return line;
}

/*  Never asks for a passphrase: an encrypted key is refused. */
static int
s_no_passphrase (char *buf, int size, int rwflag, void *arg)
{
    (void) buf, (void) size, (void) rwflag, (void) arg;
    return -1;
}

char *
aws_sshkey_public (const char *private_key, char *err, size_t errlen)
{
    if (!private_key || !*private_key || strlen (private_key) > INT_MAX) {
        snprintf (err, errlen, "sshkeydata is empty");
        return NULL;
    }
    if (strstr (private_key, "-----BEGIN OPENSSH PRIVATE KEY-----"))
        return s_from_openssh (private_key, err, errlen);
    BIO *bio = BIO_new_mem_buf (private_key, (int) strlen (private_key));
    EVP_PKEY *pkey = bio? PEM_read_bio_PrivateKey (bio, NULL, s_no_passphrase, NULL): NULL;
    BIO_free (bio);
    char *line = NULL;
    if (pkey)
        line = s_from_pkey (pkey, err, errlen);
    else
        snprintf (err, errlen, "sshkeydata is not a PEM private key OpenSSL reads "
                  "without a passphrase");
    EVP_PKEY_free (pkey);
    ERR_clear_error ();
    return line;
}
