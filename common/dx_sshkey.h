/*  dx_sshkey: SSH private keys as users hand them over (sshkeydata): a PEM
    key OpenSSL reads, or a key in OpenSSH's own format ("BEGIN OPENSSH
    PRIVATE KEY"), which OpenSSL cannot parse. The api's validation asks
    what a key is; the aws worker asks for its public half.

    Nothing here prompts for a passphrase, logs, or quotes a key in an
    error; every decoded copy of a key is wiped before it is freed. */
#ifndef DX_SSHKEY_H
#define DX_SSHKEY_H

#include <stddef.h>

typedef enum {
    DX_SSHKEY_NONE,             /* not a private key */
    DX_SSHKEY_OK,               /* a private key usable without a passphrase */
    DX_SSHKEY_ENCRYPTED         /* a private key behind a passphrase */
} dx_sshkey_kind_t;

/*  What the len bytes at text are. An OpenSSH key is judged by its
    structure only: cipher and kdf "none", a public key and a private
    section. */
dx_sshkey_kind_t dx_sshkey_kind (const char *text, size_t len);

/*  The public half of an RSA or Ed25519 private key (the types EC2
    imports) as an OpenSSH public key line: "ssh-rsa AAAA... dexter" or
    "ssh-ed25519 AAAA... dexter". An OpenSSH key keeps its public key in
    the clear, so it is read from there. Caller frees; NULL with a
    sentence in err (errlen bytes) otherwise. */
char *dx_sshkey_public (const char *private_key, char *err, size_t errlen);

#endif
