/*  aws_sshkey: the OpenSSH public key of a private key, which the keypair
    step imports into EC2 (ImportKeyPair takes public keys only). */
#ifndef AWS_SSHKEY_H
#define AWS_SSHKEY_H

#include <stddef.h>

/*  The public half of a private key, as an OpenSSH public key line
    ("ssh-rsa AAAA... dexter" or "ssh-ed25519 AAAA... dexter"): from a PEM
    key OpenSSL reads (RSA or Ed25519), or from an unencrypted OpenSSH
    private key (whose public key is stored in the clear). Caller frees;
    NULL with a sentence in err (never quoting the key) otherwise. */
char *aws_sshkey_public (const char *private_key, char *err, size_t errlen);

#endif
