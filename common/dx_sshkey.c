/*  dx_sshkey: SSH private keys. See dx_sshkey.h.

    OpenSSH's own format is read here (OpenSSH's PROTOCOL.key): between its
    BEGIN and END lines, base64 of
        "openssh-key-v1\0", string cipher, string kdf, string kdf options,
        uint32 count, count public key blobs, string private section
    where a string is a 4-byte big-endian length and the bytes. The public
    keys are in the clear even when the private section is encrypted.

    No library writes OpenSSH's public key format from an OpenSSL key, so
    the blob of a PEM key's public half is built here (RFC 4253 6.6,
    RFC 8709):
        ssh-rsa:     string "ssh-rsa", mpint e, mpint n
        ssh-ed25519: string "ssh-ed25519", string (32 raw bytes)
    where an mpint gets a leading zero byte when its top bit is set. */
#include "dx_sshkey.h"
#include "dx_util.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define S_BLOB_MAX 2048         /* an RSA-16384 key's blob is about 2 KiB */

static const char s_openssh_begin [] = "-----BEGIN OPENSSH PRIVATE KEY-----";
static const char s_openssh_end [] = "-----END OPENSSH PRIVATE KEY-----";
static const char s_openssh_magic [] = "openssh-key-v1";    /* and its NUL */


//  ---------------------------------------------------------------------
//  OpenSSH's format

/*  Reads one wire string (uint32 length, bytes) at *pos of data; false if
    it would run past the end. */
static bool
s_ssh_string (const unsigned char *data, size_t len, size_t *pos,
              const unsigned char **text, size_t *text_len)
{
    if (len - *pos < 4)
        return false;
    const unsigned char *p = data + *pos;
    size_t n = (size_t) p [0] << 24 | (size_t) p [1] << 16 | (size_t) p [2] << 8 | p [3];
    *pos += 4;
    if (len - *pos < n)
        return false;
    *text = data + *pos;
    *text_len = n;
    *pos += n;
    return true;
}

/*  True if the wire string equals word. */
static bool
s_ssh_is (const unsigned char *text, size_t len, const char *word)
{
    return len == strlen (word) && memcmp (text, word, len) == 0;
}

/*  The decoded body of the OpenSSH key block in the len bytes at text
    (caller wipes and frees), or NULL when there is none. */
static unsigned char *
s_openssh_decode (const char *text, size_t len, size_t *blob_len)
{
    const char *begin = memmem (text, len, s_openssh_begin, strlen (s_openssh_begin));
    if (!begin)
        return NULL;
    const char *body = begin + strlen (s_openssh_begin);
    const char *end = memmem (body, (size_t) (text + len - body), s_openssh_end,
                              strlen (s_openssh_end));
    if (!end)
        return NULL;
    size_t body_len = (size_t) (end - body);
    char *base64 = strndup (body, body_len);
    if (!base64)
        return NULL;
    unsigned char *blob = dx_base64_decode (base64, blob_len);
    OPENSSL_cleanse (base64, body_len);
    free (base64);
    return blob;
}

/*  What the decoded body of an OpenSSH key holds, as far as it could be
    read. */
typedef struct {
    bool header;                        /* magic, cipher, kdf, kdf options */
    bool encrypted;                     /* cipher other than "none" */
    bool kdf_none;
    const unsigned char *public_key;    /* the first one; NULL if unread */
    size_t public_len;
    bool private_part;                  /* a non-empty private section */
} s_openssh_t;

static void
s_openssh_parse (const unsigned char *blob, size_t len, s_openssh_t *key)
{
    memset (key, 0, sizeof *key);
    size_t pos = sizeof s_openssh_magic;
    const unsigned char *cipher, *kdf, *options, *private_part;
    size_t cipher_len, kdf_len, options_len, private_len;
    if (len < pos || memcmp (blob, s_openssh_magic, pos) != 0
    ||  !s_ssh_string (blob, len, &pos, &cipher, &cipher_len)
    ||  !s_ssh_string (blob, len, &pos, &kdf, &kdf_len)
    ||  !s_ssh_string (blob, len, &pos, &options, &options_len))
        return;
    key->header = true;
    key->encrypted = !s_ssh_is (cipher, cipher_len, "none");
    key->kdf_none = s_ssh_is (kdf, kdf_len, "none");
    if (len - pos < 4 || memcmp (blob + pos, "\0\0\0\0", 4) == 0)
        return;                         /* no key count, or no keys */
    pos += 4;
    if (!s_ssh_string (blob, len, &pos, &key->public_key, &key->public_len)
    ||  key->public_len == 0) {
        key->public_key = NULL;
        return;
    }
    key->private_part = s_ssh_string (blob, len, &pos, &private_part, &private_len)
                     && private_len > 0;
}

/*  dx_sshkey_kind for text holding an OpenSSH key block. */
static dx_sshkey_kind_t
s_openssh_kind (const char *text, size_t len)
{
    size_t blob_len = 0;
    unsigned char *blob = s_openssh_decode (text, len, &blob_len);
    if (!blob)
        return DX_SSHKEY_NONE;
    s_openssh_t key;
    s_openssh_parse (blob, blob_len, &key);
    dx_sshkey_kind_t kind = !key.header? DX_SSHKEY_NONE
                          : key.encrypted? DX_SSHKEY_ENCRYPTED
                          : key.kdf_none && key.public_key && key.private_part? DX_SSHKEY_OK
                          : DX_SSHKEY_NONE;
    OPENSSL_cleanse (blob, blob_len);
    free (blob);
    return kind;
}


//  ---------------------------------------------------------------------
//  OpenSSH public key lines

/*  A public key blob being written. */
typedef struct {
    unsigned char data [S_BLOB_MAX];
    size_t len;
    bool overflow;
} s_blob_t;

static void
s_blob_string (s_blob_t *blob, const unsigned char *bytes, size_t len, bool mpint)
{
    bool pad = mpint && len > 0 && (bytes [0] & 0x80);
    size_t total = len + pad;
    if (blob->len + 4 + total > sizeof blob->data) {
        blob->overflow = true;
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
        blob->overflow = true;
        return;
    }
    BN_bn2bin (bn, bytes);
    s_blob_string (blob, bytes, (size_t) len, true);
}

/*  "TYPE base64(blob) dexter". Caller frees. */
static char *
s_line (const char *type, const unsigned char *blob, size_t len)
{
    char *base64 = dx_base64_encode (blob, len);
    char *line = NULL;
    if (base64 && asprintf (&line, "%s %s dexter", type, base64) < 0)
        line = NULL;
    free (base64);
    return line;
}

/*  The line of an OpenSSL private key. */
static char *
s_pkey_public (EVP_PKEY *pkey, char *err, size_t errlen)
{
    s_blob_t blob = { .len = 0 };
    const char *type = NULL;
    if (EVP_PKEY_get_base_id (pkey) == EVP_PKEY_RSA) {
        BIGNUM *e = NULL, *n = NULL;
        if (EVP_PKEY_get_bn_param (pkey, OSSL_PKEY_PARAM_RSA_E, &e)
        &&  EVP_PKEY_get_bn_param (pkey, OSSL_PKEY_PARAM_RSA_N, &n)) {
            type = "ssh-rsa";
            s_blob_string (&blob, (const unsigned char *) type, strlen (type), false);
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
            s_blob_string (&blob, (const unsigned char *) type, strlen (type), false);
            s_blob_string (&blob, raw, raw_len, false);
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

/*  The line of an OpenSSH private key: its first public key as it is. */
static char *
s_openssh_public (const char *text, char *err, size_t errlen)
{
    size_t blob_len = 0;
    unsigned char *blob = s_openssh_decode (text, strlen (text), &blob_len);
    s_openssh_t key = { .public_key = NULL };
    if (blob)
        s_openssh_parse (blob, blob_len, &key);
    const unsigned char *type = NULL;
    size_t type_len = 0, pos = 0;
    if (key.public_key)
        s_ssh_string (key.public_key, key.public_len, &pos, &type, &type_len);
    char *line = NULL;
    if (!key.public_key)
        snprintf (err, errlen, "sshkeydata is not a readable OpenSSH private key");
    else
    if (type && (s_ssh_is (type, type_len, "ssh-rsa") || s_ssh_is (type, type_len, "ssh-ed25519"))) {
        char name [16];
        snprintf (name, sizeof name, "%.*s", (int) type_len, (const char *) type);
        line = s_line (name, key.public_key, key.public_len);
    }
    else
        snprintf (err, errlen, "sshkeydata is an OpenSSH key of a type EC2 does not "
                  "import (use RSA or Ed25519)");
    if (blob) {
        OPENSSL_cleanse (blob, blob_len);
        free (blob);
    }
    return line;
}


//  ---------------------------------------------------------------------
//  PEM keys and the entry points

/*  Passphrase callback that never prompts (OpenSSL's default would ask on
    the terminal): it notes that the key is encrypted and refuses. */
static int
s_refuse_passphrase (char *buf, int size, int rwflag, void *arg)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    *(bool *) arg = true;
    return -1;
}

/*  The PEM private key in the len bytes at text, or NULL (*asked set when
    it wanted a passphrase). Leaves no OpenSSL error for the next caller. */
static EVP_PKEY *
s_pem_read (const char *text, size_t len, bool *asked)
{
    *asked = false;
    BIO *bio = BIO_new_mem_buf (text, (int) len);
    EVP_PKEY *pkey = bio? PEM_read_bio_PrivateKey (bio, NULL, s_refuse_passphrase, asked)
                        : NULL;
    BIO_free (bio);
    ERR_clear_error ();
    return pkey;
}

dx_sshkey_kind_t
dx_sshkey_kind (const char *text, size_t len)
{
    if (!text || len == 0 || len > INT_MAX || memchr (text, 0, len))
        return DX_SSHKEY_NONE;
    if (memmem (text, len, s_openssh_begin, strlen (s_openssh_begin)))
        return s_openssh_kind (text, len);
    bool asked;
    EVP_PKEY *pkey = s_pem_read (text, len, &asked);
    if (pkey) {
        EVP_PKEY_free (pkey);
        return DX_SSHKEY_OK;
    }
    //  Encrypted, also when OpenSSL gave up before asking for the passphrase
    if (asked
    ||  memmem (text, len, "-----BEGIN ENCRYPTED PRIVATE KEY-----", 37)
    ||  memmem (text, len, "Proc-Type: 4,ENCRYPTED", 22))
        return DX_SSHKEY_ENCRYPTED;
    return DX_SSHKEY_NONE;
}

char *
dx_sshkey_public (const char *private_key, char *err, size_t errlen)
{
    size_t len = private_key? strlen (private_key): 0;
    if (len == 0 || len > INT_MAX) {
        snprintf (err, errlen, "sshkeydata is empty");
        return NULL;
    }
    if (strstr (private_key, s_openssh_begin))
        return s_openssh_public (private_key, err, errlen);
    bool asked;
    EVP_PKEY *pkey = s_pem_read (private_key, len, &asked);
    if (!pkey) {
        snprintf (err, errlen, "sshkeydata is not a PEM private key OpenSSL reads "
                  "without a passphrase");
        return NULL;
    }
    char *line = s_pkey_public (pkey, err, errlen);
    EVP_PKEY_free (pkey);
    return line;
}
