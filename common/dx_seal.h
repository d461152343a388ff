/*  dx_seal: secrets at rest. libsodium secretbox under a 32-byte master key.

    The key comes from DEXTER_MASTER_KEY (64 hex characters), else from the
    file DEXTER_MASTER_KEY_FILE (default DATA_DIR/master.key), which is created
    with mode 0600 and a random key on first start. */
#ifndef DX_SEAL_H
#define DX_SEAL_H

#include <stddef.h>

typedef struct dx_seal dx_seal_t;

/*  Loads or creates the master key as described above. NULL on failure
    (logged). data_dir is used only for the default key file. */
dx_seal_t *dx_seal_new (const char *data_dir);

/*  From a given 32-byte key (dx_seal_new's, or a test's); the seal keeps
    its own copy. NULL on failure (logged). */
dx_seal_t *dx_seal_new_key (const unsigned char key[32]);

void dx_seal_destroy (dx_seal_t **self_p);

/*  Seals plaintext: returns "dx1:" + base64(nonce || box). Caller frees.
    NULL on failure. */
char *dx_seal_seal (dx_seal_t *self, const char *plaintext, size_t len);

/*  Opens a sealed string. Returns a NUL-terminated plaintext (caller frees
    with dx_seal_free, which wipes it) and its length in *len; NULL if the
    text was not sealed by this key or was altered. */
char *dx_seal_open (dx_seal_t *self, const char *sealed, size_t *len);

/*  Wipes and frees a plaintext from dx_seal_open. Safe on NULL. */
void dx_seal_free (char *plaintext, size_t len);

/*  Fingerprint: 16 hex characters of BLAKE2b keyed with a key derived from the
    master key. Same secret, same fingerprint; reveals nothing without the key.
    out must hold 17 bytes. */
void dx_seal_fingerprint (dx_seal_t *self, const char *plaintext, size_t len, char out[17]);

#endif
