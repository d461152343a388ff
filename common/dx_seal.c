/*  dx_seal: secrets at rest, sealed with libsodium's secretbox
    (XSalsa20-Poly1305) under a 32-byte master key.

    A sealed value is the text "dx1:" + base64(nonce || box): printable, so it
    sits in a Redis hash or a JSON document as it is, and versioned, so a
    later format can be told apart. The master key and the fingerprint key
    derived from it live in sodium_malloc'd pages (guarded, locked, wiped on
    free) and are made read-only once set. No function here ever logs a key
    or a plaintext. */
#include "dx_seal.h"
#include "dx_config.h"
#include "dx_log.h"
#include "dx_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#define DX_SEAL_PREFIX      "dx1:"
#define DX_SEAL_PREFIX_LEN  4
#define DX_SEAL_KEY_BYTES   crypto_secretbox_KEYBYTES       /* 32 */
#define DX_SEAL_HEX_LEN     (2 * DX_SEAL_KEY_BYTES)         /* 64 */
#define DX_SEAL_FINGER_CTX  "dxfinger"                      /* crypto_kdf context */
#define DX_SEAL_FINGER_ID   1

struct dx_seal {
    unsigned char *key;         /* master key, sodium_malloc, read-only */
    unsigned char *finger_key;  /* fingerprint key derived from it, ditto */
};

/*  Copies the key into guarded memory and derives the fingerprint key, so
    the master key itself never keys a hash. */
dx_seal_t *
dx_seal_new_key (const unsigned char key [DX_SEAL_KEY_BYTES])
{
    if (!key)
        return NULL;
    if (sodium_init () < 0) {
        dx_error ("libsodium failed to initialize");
        return NULL;
    }
    dx_seal_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->key = sodium_malloc (DX_SEAL_KEY_BYTES);
    self->finger_key = sodium_malloc (crypto_kdf_KEYBYTES);
    if (!self->key || !self->finger_key) {
        dx_error ("cannot allocate protected memory for the master key");
        dx_seal_destroy (&self);
        return NULL;
    }
    memcpy (self->key, key, DX_SEAL_KEY_BYTES);
    if (crypto_kdf_derive_from_key (self->finger_key, crypto_kdf_KEYBYTES,
                                    DX_SEAL_FINGER_ID, DX_SEAL_FINGER_CTX, self->key)) {
        dx_error ("cannot derive the fingerprint key");
        dx_seal_destroy (&self);
        return NULL;
    }
    sodium_mprotect_readonly (self->key);
    sodium_mprotect_readonly (self->finger_key);
    return self;
}

/*  Parses exactly 64 hex characters into key. 0 on success, -1 otherwise
    (nothing of the text is ever logged). */
static int
s_seal_parse_hex (const char *hex, size_t len, unsigned char key [DX_SEAL_KEY_BYTES])
{
    size_t bin_len = 0;
    if (len != DX_SEAL_HEX_LEN)
        return -1;
    if (sodium_hex2bin (key, DX_SEAL_KEY_BYTES, hex, len, NULL, &bin_len, NULL) != 0
    ||  bin_len != DX_SEAL_KEY_BYTES)
        return -1;
    return 0;
}

/*  mkdir -p: creates dir and its missing parents with mode 0700. */
static int
s_seal_mkdirs (const char *dir)
{
    char path [PATH_MAX];
    size_t len = strlen (dir);
    if (len == 0 || len >= sizeof path)
        return -1;
    memcpy (path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path [i] == '/' || path [i] == 0) {
            char saved = path [i];
            path [i] = 0;
            if (mkdir (path, 0700) && errno != EEXIST)
                return -1;
            path [i] = saved;
        }
    }
    struct stat st;
    return stat (dir, &st) == 0 && S_ISDIR (st.st_mode)? 0: -1;
}

/*  Creates the key file with a fresh random key: O_CREAT|O_EXCL so that two
    processes starting at once never overwrite each other's key. Returns 0,
    -1 on failure, or 1 if the file appeared meanwhile (the caller reads it). */
static int
s_seal_create_file (const char *path, unsigned char key [DX_SEAL_KEY_BYTES])
{
    char dir [PATH_MAX];
    snprintf (dir, sizeof dir, "%s", path);
    char *slash = strrchr (dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (s_seal_mkdirs (dir)) {
            dx_error ("cannot create the data directory %s: %s", dir, strerror (errno));
            return -1;
        }
    }
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 1;
        dx_error ("cannot create the master key file %s: %s", path, strerror (errno));
        return -1;
    }
    char hex [DX_SEAL_HEX_LEN + 2];
    randombytes_buf (key, DX_SEAL_KEY_BYTES);
    sodium_bin2hex (hex, sizeof hex, key, DX_SEAL_KEY_BYTES);
    hex [DX_SEAL_HEX_LEN] = '\n';
    int rc = 0;
    if (fchmod (fd, 0600)
    ||  write (fd, hex, DX_SEAL_HEX_LEN + 1) != DX_SEAL_HEX_LEN + 1
    ||  fsync (fd)) {
        dx_error ("cannot write the master key file %s: %s", path, strerror (errno));
        rc = -1;
    }
    sodium_memzero (hex, sizeof hex);
    if (close (fd) && rc == 0) {
        dx_error ("cannot write the master key file %s: %s", path, strerror (errno));
        rc = -1;
    }
    if (rc)
        unlink (path);
    else
        dx_info ("created a new master key in %s (keep a copy: sealed secrets "
                 "cannot be read without it)", path);
    return rc;
}

/*  Reads an existing key file: a regular file, not readable or writable by
    group or others, holding 64 hex characters and an optional line break. */
static int
s_seal_read_file (const char *path, unsigned char key [DX_SEAL_KEY_BYTES])
{
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        dx_error ("cannot open the master key file %s: %s", path, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fd, &st)) {
        dx_error ("cannot stat the master key file %s: %s", path, strerror (errno));
        close (fd);
        return -1;
    }
    if (!S_ISREG (st.st_mode)) {
        dx_error ("master key file %s is not a regular file", path);
        close (fd);
        return -1;
    }
    if (st.st_mode & 077) {
        dx_error ("master key file %s is accessible by group or others (mode %04o); "
                  "refusing to use it: run chmod 600 %s",
                  path, (unsigned) (st.st_mode & 07777), path);
        close (fd);
        return -1;
    }
    char text [DX_SEAL_HEX_LEN + 4];
    ssize_t n = read (fd, text, sizeof text);
    close (fd);
    size_t len = n > 0? (size_t) n: 0;
    if (len > 0 && text [len - 1] == '\n')
        len--;
    if (len > 0 && text [len - 1] == '\r')
        len--;
    int rc = s_seal_parse_hex (text, len, key);
    sodium_memzero (text, sizeof text);
    if (n < 0)
        dx_error ("cannot read the master key file %s: %s", path, strerror (errno));
    else
    if (rc)
        dx_error ("master key file %s must hold exactly %d hexadecimal characters "
                  "(a 32-byte key) and an optional line break", path, DX_SEAL_HEX_LEN);
    return rc;
}

/*  The master key from DEXTER_MASTER_KEY, else from the key file (created
    on first start). Failures are logged without any key material. */
dx_seal_t *
dx_seal_new (const char *data_dir)
{
    if (sodium_init () < 0) {
        dx_error ("libsodium failed to initialize");
        return NULL;
    }
    unsigned char key [DX_SEAL_KEY_BYTES];
    dx_seal_t *self = NULL;

    const char *hex = dx_config_str ("MASTER_KEY", NULL);
    if (hex) {
        if (s_seal_parse_hex (hex, strlen (hex), key)) {
            dx_error ("DEXTER_MASTER_KEY must be exactly %d hexadecimal characters "
                      "(a 32-byte key)", DX_SEAL_HEX_LEN);
            return NULL;
        }
        self = dx_seal_new_key (key);
        sodium_memzero (key, sizeof key);
        return self;
    }
    char path [PATH_MAX];
    const char *file = dx_config_str ("MASTER_KEY_FILE", NULL);
    if (file)
        snprintf (path, sizeof path, "%s", file);
    else {
        if (!data_dir || !*data_dir)
            data_dir = DX_DEFAULT_DATA_DIR;
        if ((size_t) snprintf (path, sizeof path, "%s/master.key", data_dir) >= sizeof path) {
            dx_error ("data directory path is too long");
            return NULL;
        }
    }
    int rc = 1;
    if (access (path, F_OK) != 0 && errno == ENOENT)
        rc = s_seal_create_file (path, key);
    if (rc == 1)
        rc = s_seal_read_file (path, key);
    if (rc == 0)
        self = dx_seal_new_key (key);
    sodium_memzero (key, sizeof key);
    return self;
}

/*  Wipes both keys (sodium_free) and frees; safe on NULL. */
void
dx_seal_destroy (dx_seal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dx_seal_t *self = *self_p;
    sodium_free (self->key);            /* wipes; safe on NULL */
    sodium_free (self->finger_key);
    free (self);
    *self_p = NULL;
}

/*  Seals with a fresh random nonce, so equal secrets seal differently. */
char *
dx_seal_seal (dx_seal_t *self, const char *plaintext, size_t len)
{
    if (!self || (!plaintext && len))
        return NULL;
    if (len > SIZE_MAX / 2 - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES)
        return NULL;
    size_t total = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len;
    unsigned char *buf = malloc (total);
    if (!buf)
        return NULL;
    randombytes_buf (buf, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy (buf + crypto_secretbox_NONCEBYTES,
                           (const unsigned char *) (plaintext? plaintext: ""), len,
                           buf, self->key);
    char *b64 = dx_base64_encode (buf, total);
    free (buf);
    if (!b64)
        return NULL;
    size_t b64_len = strlen (b64);
    char *sealed = malloc (DX_SEAL_PREFIX_LEN + b64_len + 1);
    if (sealed) {
        memcpy (sealed, DX_SEAL_PREFIX, DX_SEAL_PREFIX_LEN);
        memcpy (sealed + DX_SEAL_PREFIX_LEN, b64, b64_len + 1);
    }
    free (b64);
    return sealed;
}

/*  Opens a sealed value; NULL for anything this key did not seal unaltered. */
char *
dx_seal_open (dx_seal_t *self, const char *sealed, size_t *len)
{
    if (len)
        *len = 0;
    if (!self || !sealed || strncmp (sealed, DX_SEAL_PREFIX, DX_SEAL_PREFIX_LEN) != 0)
        return NULL;
    const char *b64 = sealed + DX_SEAL_PREFIX_LEN;
    size_t raw_len = 0;
    unsigned char *raw = dx_base64_decode (b64, &raw_len);
    if (!raw)
        return NULL;
    //  Only the exact text we wrote opens: the decoder tolerates white space,
    //  either alphabet and stray low bits, which would let altered text pass
    char *canonical = dx_base64_encode (raw, raw_len);
    int altered = !canonical || strcmp (canonical, b64) != 0;
    free (canonical);
    if (altered || raw_len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
        free (raw);
        return NULL;
    }
    size_t plain_len = raw_len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    char *plain = malloc (plain_len + 1);
    if (!plain) {
        free (raw);
        return NULL;
    }
    if (crypto_secretbox_open_easy ((unsigned char *) plain,
                                    raw + crypto_secretbox_NONCEBYTES,
                                    raw_len - crypto_secretbox_NONCEBYTES,
                                    raw, self->key) != 0) {
        sodium_memzero (plain, plain_len + 1);
        free (plain);
        free (raw);
        return NULL;
    }
    free (raw);
    plain [plain_len] = 0;
    if (len)
        *len = plain_len;
    return plain;
}

/*  Wipes a plaintext before freeing it. */
void
dx_seal_free (char *plaintext, size_t len)
{
    if (!plaintext)
        return;
    sodium_memzero (plaintext, len);
    free (plaintext);
}

/*  BLAKE2b needs at least 16 bytes of output; we compute 16 keyed bytes and
    keep the first 8, which is plenty to tell secrets apart and shows less. */
void
dx_seal_fingerprint (dx_seal_t *self, const char *plaintext, size_t len, char out [17])
{
    unsigned char hash [crypto_generichash_BYTES_MIN];
    out [0] = 0;
    if (!self || (!plaintext && len))
        return;
    crypto_generichash (hash, sizeof hash, (const unsigned char *) (plaintext? plaintext: ""),
                        len, self->finger_key, crypto_kdf_KEYBYTES);
    sodium_bin2hex (out, 17, hash, 8);
    sodium_memzero (hash, sizeof hash);
}
