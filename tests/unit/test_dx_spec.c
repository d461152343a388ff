/*  Unit tests for dx_spec: valid inputs of both providers normalize to
    exactly the documented objects; a table of bad inputs each reports
    exactly the expected fields (all at once); ssh keys are real keys made
    with OpenSSL; no message ever carries a secret; what is accepted at the
    limits of depth and size encodes as a message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dx_msg.h"
#include "dx_spec.h"
#include "dx_util.h"

#define S_PASSWORD   "Sup3r-Secret"
#define S_KEY_ID     "AKIAIOSFODNN7EXAMPLE"
#define S_SECRET     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S_SECRET_P   "wJalrXUtnFEMI+K7MDENG+bPxRfiCYEXAMPLEKEY"
#define S_CLIENT     "0b6d8e2a-1c3f-4e5a-9b7c-2d4e6f8a0b1c"
#define S_SUBSCR     "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#define S_TENANT     "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define S_CSECRET    "cl13nt~S3cr3t.value"

/*  The Azure credentials file as `az ad sp create-for-rbac --sdk-auth`
    writes it, plus a key Dexter ignores. */
#define S_CREDENTIALS \
    "{\n  \"clientId\": \"" S_CLIENT "\",\n" \
    "  \"clientSecret\": \"" S_CSECRET "\",\n" \
    "  \"subscriptionId\": \"" S_SUBSCR "\",\n" \
    "  \"tenantId\": \"" S_TENANT "\",\n" \
    "  \"activeDirectoryEndpointUrl\": \"https://login.microsoftonline.com\",\n" \
    "  \"resourceManagerEndpointUrl\": \"https://management.azure.com/\",\n" \
    "  \"activeDirectoryGraphResourceId\": \"https://graph.windows.net/\",\n" \
    "  \"sqlManagementEndpointUrl\": \"https://management.core.windows.net:8443/\",\n" \
    "  \"galleryEndpointUrl\": \"https://gallery.azure.com/\",\n" \
    "  \"managementEndpointUrl\": \"https://management.core.windows.net/\",\n" \
    "  \"somethingNew\": {\"ignored\": true}\n}\n"

/*  Keys and other texts made once for all tests. */
static struct {
    char *rsa_pem;                  /* unencrypted PKCS#8 RSA key */
    char *ec_pem;                   /* unencrypted EC key, traditional PEM */
    char *pkcs8_encrypted;          /* BEGIN ENCRYPTED PRIVATE KEY */
    char *legacy_encrypted;         /* Proc-Type: 4,ENCRYPTED */
    char *public_pem;               /* a public key: not a private key */
    char *openssh;                  /* unencrypted OpenSSH key */
    char *openssh_encrypted;        /* OpenSSH key, cipher aes256-ctr */
} s_fx;


/*  ---------------------------------------------------------------------
    Helpers
    --------------------------------------------------------------------- */

/*  Parses a JSON literal of the test itself; fails the test if it is bad. */
static json_t *
s_json (const char *text)
{
    json_error_t error;
    json_t *json = json_loads (text, 0, &error);
    if (!json)
        fail_msg ("bad test JSON: %s: %s", error.text, text);
    return json;
}

/*  base64 of data as `base64 [-w 0] | tr '+/' '-_'` writes it: url
    alphabet when url, line breaks every 76 characters when wrap. Caller
    frees. */
static char *
s_b64 (const void *data, size_t len, bool url, bool wrap)
{
    char *flat = dx_base64_encode (data, len);
    assert_non_null (flat);
    size_t flat_len = strlen (flat);
    char *out = malloc (flat_len + flat_len / 76 + 2);
    assert_non_null (out);
    size_t o = 0;
    for (size_t i = 0; i < flat_len; i++) {
        char c = flat [i];
        if (url)
            c = c == '+'? '-': c == '/'? '_': c;
        out [o++] = c;
        if (wrap && (i + 1) % 76 == 0)
            out [o++] = '\n';
    }
    if (wrap)
        out [o++] = '\n';
    out [o] = 0;
    free (flat);
    return out;
}

/*  A copy of text with every '+' as a space: what an unencoded '+' in a
    form value becomes. Caller frees. */
static char *
s_plus_as_space (const char *text)
{
    char *copy = strdup (text);
    for (char *p = copy; *p; p++)
        if (*p == '+')
            *p = ' ';
    return copy;
}

/*  PEM text of a key; a cipher and passphrase encrypt it; traditional
    writes the pre-PKCS#8 format. Caller frees. */
static char *
s_pem (EVP_PKEY *key, const EVP_CIPHER *cipher, bool traditional, bool public_only)
{
    BIO *bio = BIO_new (BIO_s_mem ());
    unsigned char *pass = (unsigned char *) "correct horse";
    int rc = public_only? PEM_write_bio_PUBKEY (bio, key)
           : traditional? PEM_write_bio_PrivateKey_traditional (bio, key, cipher,
                                  cipher? pass: NULL, cipher? 13: 0, NULL, NULL)
           : PEM_write_bio_PrivateKey (bio, key, cipher, cipher? pass: NULL,
                                       cipher? 13: 0, NULL, NULL);
    assert_int_equal (rc, 1);
    char *data;
    long len = BIO_get_mem_data (bio, &data);
    char *text = strndup (data, (size_t) len);
    BIO_free (bio);
    return text;
}

/*  Appends an SSH wire string to buf at *len. */
static void
s_put_string (unsigned char *buf, size_t *len, const void *data, size_t size)
{
    buf [(*len)++] = (unsigned char) (size >> 24);
    buf [(*len)++] = (unsigned char) (size >> 16);
    buf [(*len)++] = (unsigned char) (size >> 8);
    buf [(*len)++] = (unsigned char) size;
    memcpy (buf + *len, data, size);
    *len += size;
}

/*  An OpenSSH private key file with this cipher (its structure; the key
    bytes are filler: Dexter checks OpenSSH keys syntactically). */
static char *
s_openssh (const char *cipher)
{
    unsigned char blob [512];
    size_t len = 0;
    memcpy (blob, "openssh-key-v1", 15);            /* and its NUL */
    len = 15;
    bool none = strcmp (cipher, "none") == 0;
    s_put_string (blob, &len, cipher, strlen (cipher));
    s_put_string (blob, &len, none? "none": "bcrypt", none? 4: 6);
    s_put_string (blob, &len, none? "": "0123456789abcdef\0\0\0\x10", none? 0: 20);
    memcpy (blob + len, "\0\0\0\1", 4);
    len += 4;
    unsigned char public_key [51] = "\0\0\0\x0bssh-ed25519\0\0\0\x20";
    s_put_string (blob, &len, public_key, sizeof public_key);
    unsigned char private_part [136];
    memset (private_part, 0x5a, sizeof private_part);
    s_put_string (blob, &len, private_part, sizeof private_part);
    char *body = s_b64 (blob, len, false, false);
    char *text = malloc (strlen (body) + strlen (body) / 70 + 100);
    size_t o = (size_t) sprintf (text, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for (size_t i = 0; body [i]; i++) {
        text [o++] = body [i];
        if ((i + 1) % 70 == 0 || !body [i + 1])
            text [o++] = '\n';
    }
    sprintf (text + o, "-----END OPENSSH PRIVATE KEY-----\n");
    free (body);
    return text;
}

static int
s_setup (void **state)
{
    (void) state;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
    if (!rsa || !ec)
        return -1;
    s_fx.rsa_pem = s_pem (rsa, NULL, false, false);
    s_fx.ec_pem = s_pem (ec, NULL, true, false);
    s_fx.pkcs8_encrypted = s_pem (rsa, EVP_aes_256_cbc (), false, false);
    s_fx.legacy_encrypted = s_pem (ec, EVP_aes_128_cbc (), true, false);
    s_fx.public_pem = s_pem (rsa, NULL, false, true);
    s_fx.openssh = s_openssh ("none");
    s_fx.openssh_encrypted = s_openssh ("aes256-ctr");
    EVP_PKEY_free (rsa);
    EVP_PKEY_free (ec);
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    free (s_fx.rsa_pem);
    free (s_fx.ec_pem);
    free (s_fx.pkcs8_encrypted);
    free (s_fx.legacy_encrypted);
    free (s_fx.public_pem);
    free (s_fx.openssh);
    free (s_fx.openssh_encrypted);
    return 0;
}

/*  Fields of the errors joined by commas, e.g. "masters,region". */
static void
s_error_fields (const json_t *errors, char *buf, size_t size)
{
    size_t used = 0;
    buf [0] = 0;
    for (size_t i = 0; i < json_array_size (errors); i++) {
        const json_t *error = json_array_get (errors, i);
        const char *field = json_string_value (json_object_get (error, "field"));
        const char *message = json_string_value (json_object_get (error, "message"));
        assert_non_null (field);
        assert_non_null (message);
        assert_true (strlen (message) > 10);
        used += (size_t) snprintf (buf + used, size - used, "%s%s", i? ",": "", field);
    }
}

/*  Fails if any error message holds one of the secrets the tests use. */
static void
s_assert_no_secret (const json_t *errors)
{
    const char *secrets [] = {
        S_PASSWORD, S_SECRET, S_SECRET_P, S_CSECRET, "MII", "correct horse",
        "AAAAB3", "EXAMPLEKEY", NULL
    };
    for (size_t i = 0; i < json_array_size (errors); i++) {
        const char *message =
            json_string_value (json_object_get (json_array_get (errors, i), "message"));
        for (size_t j = 0; secrets [j]; j++)
            if (strstr (message, secrets [j]))
                fail_msg ("message leaks a secret: %s", message);
    }
}

typedef enum { S_CLUSTER, S_CONFIG, S_GROUP, S_DEPLOYMENT } s_kind_t;

/*  Runs the validator of kind; returns its result (caller owns). */
static json_t *
s_run (s_kind_t kind, const char *provider, const json_t *in, json_t *secrets,
       json_t *errors)
{
    switch (kind) {
        case S_CLUSTER:    return dx_spec_cluster (in, errors);
        case S_CONFIG:     return dx_spec_config (provider, in, secrets, errors);
        case S_GROUP:      return dx_spec_group (provider, in, errors);
        case S_DEPLOYMENT: return dx_spec_deployment (provider, in, secrets, errors);
    }
    return NULL;
}

/*  Validates in and asserts the exact normalized object and secrets. */
static void
s_expect_ok (s_kind_t kind, const char *provider, json_t *in,
             const char *expected, const char *expected_secrets)
{
    json_t *secrets = json_object ();
    json_t *errors = json_array ();
    json_t *out = s_run (kind, provider, in, secrets, errors);
    if (!out) {
        char *dump = json_dumps (errors, 0);
        fail_msg ("unexpected errors: %s", dump);
    }
    assert_int_equal (json_array_size (errors), 0);
    json_t *want = s_json (expected);
    json_t *want_secrets = s_json (expected_secrets? expected_secrets: "{}");
    if (!json_equal (out, want) || !json_equal (secrets, want_secrets)) {
        char *got = json_dumps (out, JSON_SORT_KEYS);
        char *got_secrets = json_dumps (secrets, JSON_SORT_KEYS);
        fail_msg ("got %s secrets %s\nwant %s secrets %s", got, got_secrets,
                  expected, expected_secrets);
    }
    json_decref (want);
    json_decref (want_secrets);
    json_decref (out);
    json_decref (secrets);
    json_decref (errors);
    json_decref (in);
}

/*  Base64url (no line breaks) of text. Caller frees. */
static char *
s_b64url (const char *text)
{
    return s_b64 (text, strlen (text), true, false);
}


/*  ---------------------------------------------------------------------
    Valid inputs
    --------------------------------------------------------------------- */

static void
test_name_valid (void **state)
{
    (void) state;
    assert_true (dx_spec_name_valid ("a"));
    assert_true (dx_spec_name_valid ("demo1"));
    assert_true (dx_spec_name_valid ("abcdefghijklmnop"));      /* 16 */
    assert_false (dx_spec_name_valid ("abcdefghijklmnopq"));    /* 17 */
    assert_false (dx_spec_name_valid (""));
    assert_false (dx_spec_name_valid ("1a"));
    assert_false (dx_spec_name_valid ("Demo"));
    assert_false (dx_spec_name_valid ("my-cluster"));
    assert_false (dx_spec_name_valid (NULL));
}

static void
test_disk_letter (void **state)
{
    (void) state;
    assert_int_equal (dx_spec_disk_letter ("xvdf"), 'f');
    assert_int_equal (dx_spec_disk_letter ("/dev/xvdz"), 'z');
    assert_int_equal (dx_spec_disk_letter ("xvde"), 0);
    assert_int_equal (dx_spec_disk_letter ("xvdff"), 0);
    assert_int_equal (dx_spec_disk_letter ("sdf"), 0);
    assert_int_equal (dx_spec_disk_letter ("/dev/"), 0);
    assert_int_equal (dx_spec_disk_letter (NULL), 0);
}

static void
test_cluster_ok (void **state)
{
    (void) state;
    s_expect_ok (S_CLUSTER, NULL,
        s_json ("{\"name\": \"demo\", \"provider\": \"aws\", \"type\": \"mesos\"}"),
        "{\"name\": \"demo\", \"provider\": \"aws\", \"type\": \"mesos\"}", NULL);
    s_expect_ok (S_CLUSTER, NULL,
        s_json ("{\"type\": \"dcos\", \"provider\": \"azure\", \"name\": \"az1\"}"),
        "{\"name\": \"az1\", \"provider\": \"azure\", \"type\": \"dcos\"}", NULL);
}

/*  The reference's aws config, sshkeydata in each spelling users send. */
static void
test_config_aws_ok (void **state)
{
    (void) state;
    const char *pems [] = { s_fx.rsa_pem, s_fx.ec_pem, s_fx.openssh, NULL };
    for (size_t k = 0; pems [k]; k++) {
        const char *pem = pems [k];
        char *spellings [5] = {
            s_b64 (pem, strlen (pem), true, false),     /* base64 -w 0 | tr */
            s_b64 (pem, strlen (pem), true, true),      /* base64 | tr */
            s_b64 (pem, strlen (pem), false, true),     /* plain base64 */
            NULL, NULL
        };
        char *plain = s_b64 (pem, strlen (pem), false, false);
        spellings [3] = s_plus_as_space (plain);        /* '+' unencoded in a form */
        free (plain);
        for (size_t i = 0; spellings [i]; i++) {
            json_t *in = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "master_type",
                "m3.large", "masters", "3", "region", "us-west-2", "sshkey",
                "reference", "sshkeydata", spellings [i]);
            json_t *secrets = json_pack ("{s:s}", "sshkeydata", pem);
            char *want_secrets = json_dumps (secrets, 0);
            s_expect_ok (S_CONFIG, "aws", in,
                "{\"master_type\": \"m3.large\", \"masters\": 3, "
                " \"region\": \"us-west-2\", \"sshkey\": \"reference\"}",
                want_secrets);
            free (want_secrets);
            json_decref (secrets);
            free (spellings [i]);
        }
    }
    /*  From JSON: masters a number, default master_type, an image. */
    char *data = s_b64url (s_fx.rsa_pem);
    json_t *in = json_pack ("{s:i, s:s, s:s, s:s, s:s}", "masters", 5, "region",
        "cn-north-1", "sshkey", "my key (prod)", "sshkeydata", data, "image",
        "ami-0123456789abcdef0");
    json_t *secrets = json_pack ("{s:s}", "sshkeydata", s_fx.rsa_pem);
    char *want_secrets = json_dumps (secrets, 0);
    s_expect_ok (S_CONFIG, "aws", in,
        "{\"master_type\": \"m3.large\", \"masters\": 5, \"region\": \"cn-north-1\", "
        " \"sshkey\": \"my key (prod)\", \"image\": \"ami-0123456789abcdef0\"}",
        want_secrets);
    free (want_secrets);
    json_decref (secrets);
    free (data);
}

/*  The reference's azure config; location in its spellings. */
static void
test_config_azure_ok (void **state)
{
    (void) state;
    const char *locations [] = { "Central US", "centralus", "CENTRAL US", "CentralUS", NULL };
    for (size_t i = 0; locations [i]; i++)
        s_expect_ok (S_CONFIG, "azure",
            json_pack ("{s:s, s:s, s:s, s:s, s:s}", "location", locations [i],
                       "masters", "3", "ssh_password", S_PASSWORD, "ssh_user", "dexter",
                       "master_type", "Basic_A2"),
            "{\"master_type\": \"Basic_A2\", \"masters\": 3, \"location\": \"centralus\", "
            " \"location_name\": \"Central US\", \"ssh_user\": \"dexter\"}",
            "{\"ssh_password\": \"" S_PASSWORD "\"}");
    s_expect_ok (S_CONFIG, "azure",
        s_json ("{\"location\": \"westeurope\", \"masters\": 1, \"ssh_user\": \"_ops-1\", "
                " \"ssh_password\": \"日本語Pass1\", \"image\": "
                " \"Canonical:UbuntuServer:16.04-LTS:latest\"}"),
        "{\"master_type\": \"Basic_A2\", \"masters\": 1, \"location\": \"westeurope\", "
        " \"location_name\": \"West Europe\", \"ssh_user\": \"_ops-1\", "
        " \"image\": \"Canonical:UbuntuServer:16.04-LTS:latest\"}",
        "{\"ssh_password\": \"日本語Pass1\"}");
}

static void
test_group_ok (void **state)
{
    (void) state;
    /*  Reference, AWS: instance_type r3.xlarge, 10 cpus, 64 GB: 3 hosts. */
    s_expect_ok (S_GROUP, "aws",
        s_json ("{\"name\": \"slaves\", \"role\": \"role1\", "
                " \"attributes\": \"{\\\"foo\\\":\\\"bar\\\"}\", "
                " \"vars\": \"{\\\"foo\\\":\\\"bar\\\"}\", \"instance_type\": \"r3.xlarge\", "
                " \"cpus\": \"10\", \"ram\": \"64\", \"disk_size\": \"50\"}"),
        "{\"name\": \"slaves\", \"role\": \"role1\", \"attributes\": {\"foo\": \"bar\"}, "
        " \"vars\": {\"foo\": \"bar\"}, \"instance_type\": \"r3.xlarge\", \"cpus\": 10, "
        " \"ram\": 64, \"disk_size\": 50, \"customhwconf\": {\"disks\": []}, "
        " \"hosts\": 3, \"instance\": {\"vcpus\": 4, \"memory_gib\": 30.5}}", NULL);
    /*  Reference, AWS, no instance_type: m5.xlarge; 20 cpus, 128 GB: 8. */
    s_expect_ok (S_GROUP, "aws",
        s_json ("{\"name\": \"g\", \"role\": \"role1\", "
                " \"attributes\": \"{\\\"purpose\\\":\\\"log_storing\\\"}\", "
                " \"vars\": \"{\\\"x_factor\\\":\\\"42\\\"}\", "
                " \"cpus\": \"20\", \"ram\": \"128\", \"disk_size\": \"50\"}"),
        "{\"name\": \"g\", \"role\": \"role1\", \"attributes\": {\"purpose\": \"log_storing\"}, "
        " \"vars\": {\"x_factor\": \"42\"}, \"instance_type\": \"m5.xlarge\", \"cpus\": 20, "
        " \"ram\": 128, \"disk_size\": 50, \"customhwconf\": {\"disks\": []}, "
        " \"hosts\": 8, \"instance\": {\"vcpus\": 4, \"memory_gib\": 16.0}}", NULL);
    /*  Reference, Azure: Standard_D11, 12 cpus, 16 GB: 6 hosts. JSON body
        with numbers, objects and the ebs-free disks form. */
    s_expect_ok (S_GROUP, "azure",
        s_json ("{\"name\": \"analytics\", \"role\": \"*\", "
                " \"attributes\": {\"purpose\": \"analytics\", \"rack\": 3, \"w\": 0.5}, "
                " \"vars\": {\"y_factor\": \"43\", \"nested\": {\"a\": [1, null]}}, "
                " \"instance_type\": \"Standard_D11\", \"cpus\": 12, \"ram\": 16, "
                " \"disk_size\": 50, \"customhwconf\": {\"disks\": ["
                "   {\"size\": 100, \"type\": \"Premium_LRS\"}, {\"size\": \"5\"}]}}"),
        "{\"name\": \"analytics\", \"role\": \"*\", "
        " \"attributes\": {\"purpose\": \"analytics\", \"rack\": 3, \"w\": 0.5}, "
        " \"vars\": {\"y_factor\": \"43\", \"nested\": {\"a\": [1, null]}}, "
        " \"instance_type\": \"Standard_D11\", \"cpus\": 12, \"ram\": 16, \"disk_size\": 50, "
        " \"customhwconf\": {\"disks\": ["
        "   {\"size\": 100, \"type\": \"Premium_LRS\", \"device\": \"xvdf\"}, "
        "   {\"size\": 5, \"type\": \"Standard_LRS\", \"device\": \"xvdg\"}]}, "
        " \"hosts\": 6, \"instance\": {\"vcpus\": 2, \"memory_gib\": 14.0}}", NULL);
}

/*  customhwconf: both forms; devices default to the next free one. */
static void
test_customhwconf_ok (void **state)
{
    (void) state;
    const char *base = "{\"name\": \"g\", \"role\": \"r\", \"attributes\": {}, "
                       " \"vars\": {}, \"instance_type\": \"m5.large\", \"cpus\": 2, "
                       " \"ram\": 8, \"disk_size\": 8}";
    const char *want = "{\"name\": \"g\", \"role\": \"r\", \"attributes\": {}, "
                       " \"vars\": {}, \"instance_type\": \"m5.large\", \"cpus\": 2, "
                       " \"ram\": 8, \"disk_size\": 8, "
                       " \"hosts\": 1, \"instance\": {\"vcpus\": 2, \"memory_gib\": 8.0}}";
    const struct { const char *conf, *disks; } cases [] = {
        /*  The original customhwconf (Terraform-style), as a form string. */
        { "\"{\\\"ebs_block_device\\\": [{\\\"device_name\\\": \\\"/dev/xvdh\\\", "
          "\\\"volume_size\\\": 100, \\\"volume_type\\\": \\\"gp2\\\"}, "
          "{\\\"volume_size\\\": \\\"50\\\", \\\"volume_type\\\": \\\"st1\\\"}]}\"",
          "{\"disks\": [{\"size\": 100, \"type\": \"gp2\", \"device\": \"xvdh\"}, "
          "             {\"size\": 50, \"type\": \"st1\", \"device\": \"xvdf\"}]}" },
        /*  Defaults skip devices taken explicitly, even by a later disk. */
        { "{\"disks\": [{\"size\": 10}, {\"size\": 20, \"device\": \"xvdf\"}, "
          "             {\"size\": 30, \"type\": \"io2\"}]}",
          "{\"disks\": [{\"size\": 10, \"type\": \"gp2\", \"device\": \"xvdg\"}, "
          "             {\"size\": 20, \"type\": \"gp2\", \"device\": \"xvdf\"}, "
          "             {\"size\": 30, \"type\": \"io2\", \"device\": \"xvdh\"}]}" },
        { "{\"disks\": [{\"size\": 16384, \"device\": \"/dev/xvdz\"}]}",
          "{\"disks\": [{\"size\": 16384, \"type\": \"gp2\", \"device\": \"xvdz\"}]}" },
        { "{}", "{\"disks\": []}" },
        { "\"{\\\"disks\\\": []}\"", "{\"disks\": []}" },
        { "null", "{\"disks\": []}" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        json_t *in = s_json (base);
        json_object_set_new (in, "customhwconf", json_loads (cases [i].conf,
                             JSON_DECODE_ANY, NULL));
        json_t *out = s_json (want);
        json_object_set_new (out, "customhwconf", s_json (cases [i].disks));
        char *expected = json_dumps (out, 0);
        s_expect_ok (S_GROUP, "aws", in, expected, NULL);
        free (expected);
        json_decref (out);
    }
    /*  Sixteen disks take xvdf..xvdu. */
    json_t *in = s_json ("{\"name\": \"g\", \"role\": \"r\", \"attributes\": {}, "
                         " \"vars\": {}, \"cpus\": 1, \"ram\": 1, \"disk_size\": 8}");
    json_t *disks = json_array ();
    for (int i = 0; i < 16; i++)
        json_array_append_new (disks, json_pack ("{s:i}", "size", 1));
    json_object_set_new (in, "customhwconf", json_pack ("{s:o}", "disks", disks));
    json_t *errors = json_array ();
    json_t *group = dx_spec_group ("aws", in, errors);
    assert_non_null (group);
    json_t *result = json_object_get (json_object_get (group, "customhwconf"), "disks");
    assert_int_equal (json_array_size (result), 16);
    assert_string_equal (json_string_value (json_object_get (json_array_get (result, 15),
                         "device")), "xvdu");
    json_decref (group);
    json_decref (errors);
    json_decref (in);
}

static void
test_deployment_ok (void **state)
{
    (void) state;
    /*  Reference, AWS: parallelism defaults to 5. */
    s_expect_ok (S_DEPLOYMENT, "aws",
        s_json ("{\"aws_access_key_id\": \"" S_KEY_ID "\", "
                " \"aws_secret_access_key\": \"" S_SECRET "\", \"command\": \"deploy\"}"),
        "{\"command\": \"deploy\", \"parallelism\": 5}",
        "{\"aws_access_key_id\": \"" S_KEY_ID "\", "
        " \"aws_secret_access_key\": \"" S_SECRET "\"}");
    /*  A '+' sent unencoded arrives as a space; a session token likewise. */
    char *spaced = s_plus_as_space (S_SECRET_P);
    json_t *in = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "aws_access_key_id", S_KEY_ID,
        "aws_secret_access_key", spaced, "aws_session_token", "IQoJb3JpZ2lu ZW=",
        "command", "destroy", "parallelism", "100");
    free (spaced);
    s_expect_ok (S_DEPLOYMENT, "aws", in,
        "{\"command\": \"destroy\", \"parallelism\": 100}",
        "{\"aws_access_key_id\": \"" S_KEY_ID "\", "
        " \"aws_secret_access_key\": \"" S_SECRET_P "\", "
        " \"aws_session_token\": \"IQoJb3JpZ2lu+ZW=\"}");

    /*  Reference, Azure: credentials file in each spelling. */
    const char *want_secrets =
        "{\"clientId\": \"" S_CLIENT "\", \"clientSecret\": \"" S_CSECRET "\", "
        " \"subscriptionId\": \"" S_SUBSCR "\", \"tenantId\": \"" S_TENANT "\", "
        " \"activeDirectoryEndpointUrl\": \"https://login.microsoftonline.com\", "
        " \"resourceManagerEndpointUrl\": \"https://management.azure.com/\", "
        " \"activeDirectoryGraphResourceId\": \"https://graph.windows.net/\", "
        " \"sqlManagementEndpointUrl\": \"https://management.core.windows.net:8443/\", "
        " \"galleryEndpointUrl\": \"https://gallery.azure.com/\", "
        " \"managementEndpointUrl\": \"https://management.core.windows.net/\"}";
    size_t len = strlen (S_CREDENTIALS);
    char *plain = s_b64 (S_CREDENTIALS, len, false, false);
    char *spellings [] = {
        s_b64 (S_CREDENTIALS, len, true, false),
        s_b64 (S_CREDENTIALS, len, true, true),
        s_b64 (S_CREDENTIALS, len, false, true),
        s_plus_as_space (plain),
        NULL
    };
    free (plain);
    for (size_t i = 0; spellings [i]; i++) {
        s_expect_ok (S_DEPLOYMENT, "azure",
            json_pack ("{s:s, s:s}", "command", "deploy", "credentials", spellings [i]),
            "{\"command\": \"deploy\", \"parallelism\": 5}", want_secrets);
        free (spellings [i]);
    }
    /*  Minimal credentials, tenant as a domain, endpoint on plain http. */
    char *minimal = s_b64url ("{\"clientId\": \"" S_CLIENT "\", \"clientSecret\": \"s\", "
        "\"subscriptionId\": \"" S_SUBSCR "\", \"tenantId\": \"contoso.onmicrosoft.com\", "
        "\"resourceManagerEndpointUrl\": \"http://127.0.0.1:8080\"}");
    s_expect_ok (S_DEPLOYMENT, "azure",
        json_pack ("{s:s, s:i, s:s}", "command", "deploy", "parallelism", 1,
                   "credentials", minimal),
        "{\"command\": \"deploy\", \"parallelism\": 1}",
        "{\"clientId\": \"" S_CLIENT "\", \"clientSecret\": \"s\", "
        " \"subscriptionId\": \"" S_SUBSCR "\", \"tenantId\": \"contoso.onmicrosoft.com\", "
        " \"resourceManagerEndpointUrl\": \"http://127.0.0.1:8080\"}");
    free (minimal);
}


/*  ---------------------------------------------------------------------
    Bad inputs
    --------------------------------------------------------------------- */

/*  A valid input per kind and provider; cases patch it. */
static json_t *
s_base (s_kind_t kind, const char *provider)
{
    bool aws = provider && strcmp (provider, "aws") == 0;
    json_t *base = NULL;
    char *data;
    switch (kind) {
        case S_CLUSTER:
            return s_json ("{\"name\": \"demo\", \"provider\": \"aws\", \"type\": \"mesos\"}");
        case S_CONFIG:
            if (!aws)
                return s_json ("{\"location\": \"Central US\", \"masters\": \"3\", "
                    "\"ssh_password\": \"" S_PASSWORD "\", \"ssh_user\": \"dexter\", "
                    "\"master_type\": \"Basic_A2\"}");
            data = s_b64url (s_fx.rsa_pem);
            base = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "master_type", "m3.large",
                "masters", "3", "region", "us-west-2", "sshkey", "reference",
                "sshkeydata", data);
            free (data);
            return base;
        case S_GROUP:
            return s_json (aws
                ? "{\"name\": \"slaves\", \"role\": \"role1\", "
                  " \"attributes\": \"{\\\"foo\\\":\\\" bar\\\"}\", "
                  " \"vars\": \"{\\\"foo\\\":\\\"bar\\\"}\", \"instance_type\": \"r3.xlarge\", "
                  " \"cpus\": \"10\", \"ram\": \"64\", \"disk_size\": \"50\"}"
                : "{\"name\": \"slaves\", \"role\": \"role1\", "
                  " \"attributes\": \"{\\\"purpose\\\":\\\"analytics\\\"}\", "
                  " \"vars\": \"{\\\"y_factor\\\":\\\"43\\\"}\", \"cpus\": \"12\", "
                  " \"ram\": \"16\", \"disk_size\": \"50\", \"instance_type\": \"Standard_D11\"}");
        case S_DEPLOYMENT:
            if (aws)
                return s_json ("{\"aws_access_key_id\": \"" S_KEY_ID "\", "
                    "\"aws_secret_access_key\": \"" S_SECRET "\", \"command\": \"deploy\"}");
            data = s_b64url (S_CREDENTIALS);
            base = json_pack ("{s:s, s:s}", "command", "deploy", "credentials", data);
            free (data);
            return base;
    }
    return NULL;
}

/*  Value of a patch: strings starting with '@' are made at run time:
    "@b64:TEXT" base64url of TEXT, "@rep:N:C" C repeated N times,
    "@key:NAME" base64url of a fixture key, "@big:N" a JSON object of about
    N bytes. Other values as they are. */
static json_t *
s_patch_value (json_t *value)
{
    const char *text = json_string_value (value);
    if (!text || text [0] != '@')
        return json_incref (value);
    json_t *result;
    char *made = NULL;
    if (strncmp (text, "@b64:", 5) == 0)
        made = s_b64url (text + 5);
    else
    if (strncmp (text, "@rep:", 5) == 0) {
        char *colon;
        long n = strtol (text + 5, &colon, 10);
        made = malloc ((size_t) n + 1);
        memset (made, colon [1], (size_t) n);
        made [n] = 0;
    }
    else
    if (strncmp (text, "@key:", 5) == 0) {
        const char *name = text + 5;
        const char *pem = strcmp (name, "pkcs8_encrypted") == 0? s_fx.pkcs8_encrypted
                        : strcmp (name, "legacy_encrypted") == 0? s_fx.legacy_encrypted
                        : strcmp (name, "public") == 0? s_fx.public_pem
                        : strcmp (name, "openssh_encrypted") == 0? s_fx.openssh_encrypted
                        : NULL;
        assert_non_null (pem);
        made = s_b64url (pem);
    }
    else
    if (strncmp (text, "@big:", 5) == 0) {
        long n = strtol (text + 5, NULL, 10);
        made = malloc ((size_t) n + 32);
        long used = sprintf (made, "{\"k\": \"");
        memset (made + used, 'x', (size_t) n);
        strcpy (made + used + n, "\"}");
    }
    assert_non_null (made);
    result = json_string (made);
    free (made);
    return result;
}

/*  One bad input: a patch of the base input (null removes a field) and
    the fields the errors must name, in order. */
typedef struct {
    s_kind_t kind;
    const char *provider;
    const char *patch;
    const char *fields;
} s_bad_t;

#define CREDS(client, secret, subscription, tenant, extra) \
    "@b64:{\\\"clientId\\\": " client ", \\\"clientSecret\\\": " secret \
    ", \\\"subscriptionId\\\": " subscription ", \\\"tenantId\\\": " tenant extra "}"
#define GOOD_CLIENT  "\\\"" S_CLIENT "\\\""
#define GOOD_SUBSCR  "\\\"" S_SUBSCR "\\\""
#define GOOD_TENANT  "\\\"" S_TENANT "\\\""

static const s_bad_t s_bad [] = {
    /*  cluster */
    { S_CLUSTER, NULL, "{\"name\": \"Demo\"}", "name" },
    { S_CLUSTER, NULL, "{\"name\": \"1abc\"}", "name" },
    { S_CLUSTER, NULL, "{\"name\": \"abcdefghijklmnopq\"}", "name" },
    { S_CLUSTER, NULL, "{\"name\": \"\"}", "name" },
    { S_CLUSTER, NULL, "{\"name\": \"a-b\"}", "name" },
    { S_CLUSTER, NULL, "{\"name\": 5}", "name" },
    { S_CLUSTER, NULL, "{\"provider\": \"gcp\"}", "provider" },
    { S_CLUSTER, NULL, "{\"provider\": \"AWS\"}", "provider" },
    { S_CLUSTER, NULL, "{\"type\": \"kubernetes\"}", "type" },
    { S_CLUSTER, NULL, "{\"name\": null, \"provider\": null, \"type\": null}",
      "name,provider,type" },
    { S_CLUSTER, NULL, "{\"nmae\": \"x\", \"type\": \"k8s\"}", "type,nmae" },
    /*  config, aws */
    { S_CONFIG, "aws", "{\"masters\": \"4\"}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": \"11\"}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": \"0\"}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": \"3.0\"}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": \"+3\"}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": \" 3\"}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": \"1e3\"}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": \"-1\"}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": \"\"}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": \"99999999999999999999999\"}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": 3.0}", "masters" },
    { S_CONFIG, "aws", "{\"masters\": true}", "masters" },
    { S_CONFIG, "aws", "{\"master_type\": \"M3.large\"}", "master_type" },
    { S_CONFIG, "aws", "{\"master_type\": \"Basic_A2\"}", "master_type" },
    { S_CONFIG, "aws", "{\"region\": \"us-west-9\"}", "region" },
    { S_CONFIG, "aws", "{\"region\": \"Central US\"}", "region" },
    { S_CONFIG, "aws", "{\"sshkey\": \"\"}", "sshkey" },
    { S_CONFIG, "aws", "{\"sshkey\": \"@rep:256:k\"}", "sshkey" },
    { S_CONFIG, "aws", "{\"sshkey\": \"@rep:5000:k\"}", "sshkey" },
    { S_CONFIG, "aws", "{\"sshkey\": \"tab\\there\"}", "sshkey" },
    { S_CONFIG, "aws", "{\"sshkeydata\": \"!!not base64!!\"}", "sshkeydata" },
    { S_CONFIG, "aws", "{\"sshkeydata\": \"@b64:hello world\"}", "sshkeydata" },
    { S_CONFIG, "aws", "{\"sshkeydata\": \"@key:pkcs8_encrypted\"}", "sshkeydata" },
    { S_CONFIG, "aws", "{\"sshkeydata\": \"@key:legacy_encrypted\"}", "sshkeydata" },
    { S_CONFIG, "aws", "{\"sshkeydata\": \"@key:openssh_encrypted\"}", "sshkeydata" },
    { S_CONFIG, "aws", "{\"sshkeydata\": \"@key:public\"}", "sshkeydata" },
    { S_CONFIG, "aws", "{\"sshkeydata\": \"@b64:-----BEGIN OPENSSH PRIVATE KEY-----\\n"
                       "AAAA\\n-----END OPENSSH PRIVATE KEY-----\\n\"}", "sshkeydata" },
    { S_CONFIG, "aws", "{\"sshkeydata\": {\"pem\": 1}}", "sshkeydata" },
    { S_CONFIG, "aws", "{\"location\": \"Central US\"}", "location" },
    { S_CONFIG, "aws", "{\"ssh_user\": \"dexter\", \"ssh_password\": \"x\"}",
      "ssh_user,ssh_password" },
    { S_CONFIG, "aws", "{\"image\": \"ami-123\"}", "image" },
    { S_CONFIG, "aws", "{\"image\": \"ami-0123456789ABCDEF0\"}", "image" },
    { S_CONFIG, "aws", "{\"image\": \"Canonical:UbuntuServer:16.04-LTS:latest\"}", "image" },
    { S_CONFIG, "aws", "{\"masters\": null, \"region\": null, \"sshkey\": null, "
                       " \"sshkeydata\": null}", "masters,region,sshkey,sshkeydata" },
    { S_CONFIG, "aws", "{\"master\": \"3\", \"masters\": \"2\"}", "masters,master" },
    /*  config, azure */
    { S_CONFIG, "azure", "{\"location\": \"Mars\"}", "location" },
    { S_CONFIG, "azure", "{\"location\": \"us-west-2\"}", "location" },
    { S_CONFIG, "azure", "{\"ssh_user\": \"root\"}", "ssh_user" },
    { S_CONFIG, "azure", "{\"ssh_user\": \"admin\"}", "ssh_user" },
    { S_CONFIG, "azure", "{\"ssh_user\": \"Dexter\"}", "ssh_user" },
    { S_CONFIG, "azure", "{\"ssh_user\": \"1user\"}", "ssh_user" },
    { S_CONFIG, "azure", "{\"ssh_user\": \"@rep:33:u\"}", "ssh_user" },
    { S_CONFIG, "azure", "{\"ssh_password\": \"Ab1!\"}", "ssh_password" },
    { S_CONFIG, "azure", "{\"ssh_password\": \"alllowercase1\"}", "ssh_password" },
    { S_CONFIG, "azure", "{\"ssh_password\": \"P@ssw0rd\"}", "ssh_password" },
    { S_CONFIG, "azure", "{\"ssh_password\": \"@rep:73:A\"}", "ssh_password" },
    { S_CONFIG, "azure", "{\"ssh_password\": \"Ab1\\ncdefg\"}", "ssh_password" },
    { S_CONFIG, "azure", "{\"ssh_password\": \"Dexter 2024\"}", "ssh_password" },
    { S_CONFIG, "azure", "{\"region\": \"us-west-2\"}", "region" },
    { S_CONFIG, "azure", "{\"sshkeydata\": \"@b64:x\", \"sshkey\": \"k\"}",
      "sshkey,sshkeydata" },
    { S_CONFIG, "azure", "{\"master_type\": \"m3.large\"}", "master_type" },
    { S_CONFIG, "azure", "{\"image\": \"Canonical:UbuntuServer:16.04-LTS\"}", "image" },
    { S_CONFIG, "azure", "{\"image\": \"Canonical::16.04-LTS:latest\"}", "image" },
    { S_CONFIG, "azure", "{\"image\": \"Canonical:Ubuntu Server:16.04-LTS:latest\"}", "image" },
    { S_CONFIG, "azure", "{\"image\": \"ami-12345678\"}", "image" },
    { S_CONFIG, "azure", "{\"masters\": null, \"location\": null, \"ssh_user\": null, "
                         " \"ssh_password\": null}",
      "masters,location,ssh_user,ssh_password" },
    /*  group, aws */
    { S_GROUP, "aws", "{\"name\": \"Group1\"}", "name" },
    { S_GROUP, "aws", "{\"name\": \"masters\"}", "name" },
    { S_GROUP, "aws", "{\"name\": \"master\"}", "name" },
    { S_GROUP, "azure", "{\"name\": \"access\"}", "name" },
    { S_GROUP, "aws", "{\"role\": \"\"}", "role" },
    { S_GROUP, "aws", "{\"role\": \".\"}", "role" },
    { S_GROUP, "aws", "{\"role\": \"..\"}", "role" },
    { S_GROUP, "aws", "{\"role\": \"-x\"}", "role" },
    { S_GROUP, "aws", "{\"role\": \"a/b\"}", "role" },
    { S_GROUP, "aws", "{\"role\": \"@rep:65:r\"}", "role" },
    { S_GROUP, "aws", "{\"attributes\": \"{\\\"foo\\\": {\\\"a\\\": 1}}\"}", "attributes" },
    { S_GROUP, "aws", "{\"attributes\": \"[1, 2]\"}", "attributes" },
    { S_GROUP, "aws", "{\"attributes\": \"{bad json\"}", "attributes" },
    { S_GROUP, "aws", "{\"attributes\": \"{\\\"foo\\\": null}\"}", "attributes" },
    { S_GROUP, "aws", "{\"attributes\": {\"foo\": true, \"bar\": [1]}}",
      "attributes,attributes" },
    { S_GROUP, "aws", "{\"attributes\": {\"a:b\": \"x\"}}", "attributes" },
    { S_GROUP, "aws", "{\"attributes\": \"@big:16400\"}", "attributes" },
    { S_GROUP, "aws", "{\"attributes\": 7}", "attributes" },
    { S_GROUP, "aws", "{\"vars\": \"not json\"}", "vars" },
    { S_GROUP, "aws", "{\"vars\": \"\\\"a string\\\"\"}", "vars" },
    { S_GROUP, "aws", "{\"vars\": \"{\\\"a\\\": 1, \\\"a\\\": 2}\"}", "vars" },
    { S_GROUP, "aws", "{\"vars\": \"@big:65600\"}", "vars" },
    { S_GROUP, "aws", "{\"instance_type\": \"m3.huge\"}", "instance_type" },
    { S_GROUP, "aws", "{\"instance_type\": \"Standard_D11\"}", "instance_type" },
    { S_GROUP, "aws", "{\"cpus\": \"0\"}", "cpus" },
    { S_GROUP, "aws", "{\"cpus\": \"4097\"}", "cpus" },
    { S_GROUP, "aws", "{\"cpus\": \"-1\"}", "cpus" },
    { S_GROUP, "aws", "{\"cpus\": 10.5}", "cpus" },
    { S_GROUP, "aws", "{\"ram\": \"65537\"}", "ram" },
    { S_GROUP, "aws", "{\"ram\": \"64GB\"}", "ram" },
    { S_GROUP, "aws", "{\"disk_size\": \"7\"}", "disk_size" },
    { S_GROUP, "aws", "{\"disk_size\": \"16385\"}", "disk_size" },
    { S_GROUP, "aws", "{\"instance_type\": \"t2.nano\", \"cpus\": \"4096\", \"ram\": \"1\"}",
      "cpus" },
    { S_GROUP, "aws", "{\"instance_type\": \"t2.nano\", \"cpus\": \"1\", \"ram\": \"1000\"}",
      "ram" },
    { S_GROUP, "aws", "{\"customhwconf\": \"{\\\"disks\\\": [{\\\"size\\\": 0}]}\"}",
      "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disks\": [], \"ebs_block_device\": []}}",
      "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disk\": []}}", "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disks\": [{\"size\": 1, \"iops\": 100}]}}",
      "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disks\": [{\"size\": 1, \"device\": \"xvda\"}]}}",
      "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"ebs_block_device\": [{\"volume_size\": 1, "
                      " \"device_name\": \"/dev/sdh\"}]}}", "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disks\": [{\"size\": 1, \"device\": \"xvdg\"}, "
                      " {\"size\": 2, \"device\": \"/dev/xvdg\"}]}}", "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disks\": [{\"size\": 1, \"type\": \"gp9\"}]}}",
      "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disks\": [{\"size\": 1}, {\"size\": 1}, "
                      " {\"size\": 1}, {\"size\": 1}, {\"size\": 1}, {\"size\": 1}, "
                      " {\"size\": 1}, {\"size\": 1}, {\"size\": 1}, {\"size\": 1}, "
                      " {\"size\": 1}, {\"size\": 1}, {\"size\": 1}, {\"size\": 1}, "
                      " {\"size\": 1}, {\"size\": 1}, {\"size\": 1}]}}", "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disks\": {}}}", "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disks\": [1]}}", "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disks\": [{\"type\": \"gp3\"}]}}",
      "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": \"[]\"}", "customhwconf" },
    { S_GROUP, "aws", "{\"customhwconf\": {\"disks\": [{\"size\": 0, \"type\": 1, "
                      " \"device\": \"sda\"}]}}", "customhwconf,customhwconf,customhwconf" },
    { S_GROUP, "aws", "{\"name\": null, \"role\": null, \"attributes\": null, \"vars\": null, "
                      " \"instance_type\": null, \"cpus\": null, \"ram\": null, "
                      " \"disk_size\": null}",
      "name,role,attributes,vars,cpus,ram,disk_size" },
    { S_GROUP, "aws", "{\"size\": \"3\", \"cpus\": \"x\"}", "cpus,size" },
    /*  group, azure */
    { S_GROUP, "azure", "{\"customhwconf\": {\"ebs_block_device\": [{\"volume_size\": 1}]}}",
      "customhwconf" },
    { S_GROUP, "azure", "{\"customhwconf\": {\"disks\": [{\"size\": 1, \"type\": \"gp2\"}]}}",
      "customhwconf" },
    { S_GROUP, "azure", "{\"instance_type\": null}", "instance_type" },
    { S_GROUP, "azure", "{\"instance_type\": \"m5.xlarge\"}", "instance_type" },
    { S_GROUP, "azure", "{\"instance_type\": \"standard_d11\"}", "instance_type" },
    /*  deployment, aws */
    { S_DEPLOYMENT, "aws", "{\"command\": \"deploy \"}", "command" },
    { S_DEPLOYMENT, "aws", "{\"command\": \"start\"}", "command" },
    { S_DEPLOYMENT, "aws", "{\"parallelism\": \"0\"}", "parallelism" },
    { S_DEPLOYMENT, "aws", "{\"parallelism\": \"101\"}", "parallelism" },
    { S_DEPLOYMENT, "aws", "{\"parallelism\": \"five\"}", "parallelism" },
    { S_DEPLOYMENT, "aws", "{\"aws_access_key_id\": \"akiaiosfodnn7example\"}",
      "aws_access_key_id" },
    { S_DEPLOYMENT, "aws", "{\"aws_access_key_id\": \"AKIA\"}", "aws_access_key_id" },
    { S_DEPLOYMENT, "aws", "{\"aws_secret_access_key\": \"short\"}",
      "aws_secret_access_key" },
    { S_DEPLOYMENT, "aws", "{\"aws_secret_access_key\": \"wJalrXUtnFEMI!K7MDENGbPxRfiCY\"}",
      "aws_secret_access_key" },
    { S_DEPLOYMENT, "aws", "{\"aws_secret_access_key\": \"@rep:129:a\"}",
      "aws_secret_access_key" },
    { S_DEPLOYMENT, "aws", "{\"aws_session_token\": \"tok%en\"}", "aws_session_token" },
    { S_DEPLOYMENT, "aws", "{\"aws_session_token\": \"@rep:4097:a\"}", "aws_session_token" },
    { S_DEPLOYMENT, "aws", "{\"credentials\": \"@b64:{}\"}", "credentials" },
    { S_DEPLOYMENT, "aws", "{\"command\": null, \"aws_access_key_id\": null, "
                           " \"aws_secret_access_key\": null}",
      "command,aws_access_key_id,aws_secret_access_key" },
    /*  deployment, azure */
    { S_DEPLOYMENT, "azure", "{\"credentials\": \"!!!\"}", "credentials" },
    { S_DEPLOYMENT, "azure", "{\"credentials\": \"@b64:not json\"}", "credentials" },
    { S_DEPLOYMENT, "azure", "{\"credentials\": \"@b64:[1]\"}", "credentials" },
    { S_DEPLOYMENT, "azure", "{\"credentials\": \"@b64:{\\\"clientId\\\": \\\"" S_CLIENT
                             "\\\"}\"}", "credentials,credentials,credentials" },
    { S_DEPLOYMENT, "azure", "{\"credentials\": \"" CREDS ("\\\"not-a-guid\\\"",
      "\\\"s\\\"", GOOD_SUBSCR, GOOD_TENANT, "") "\"}", "credentials" },
    { S_DEPLOYMENT, "azure", "{\"credentials\": \"" CREDS (GOOD_CLIENT, "\\\"\\\"",
      GOOD_SUBSCR, GOOD_TENANT, "") "\"}", "credentials" },
    { S_DEPLOYMENT, "azure", "{\"credentials\": \"" CREDS (GOOD_CLIENT, "\\\"s\\\"",
      "42", GOOD_TENANT, "") "\"}", "credentials" },
    { S_DEPLOYMENT, "azure", "{\"credentials\": \"" CREDS (GOOD_CLIENT, "\\\"s\\\"",
      GOOD_SUBSCR, "\\\"not a domain\\\"", "") "\"}", "credentials" },
    { S_DEPLOYMENT, "azure", "{\"credentials\": \"" CREDS (GOOD_CLIENT, "\\\"s\\\"",
      GOOD_SUBSCR, GOOD_TENANT, ", \\\"resourceManagerEndpointUrl\\\": \\\"ftp://x\\\"")
      "\"}", "credentials" },
    { S_DEPLOYMENT, "azure", "{\"credentials\": {\"clientId\": \"x\"}}", "credentials" },
    { S_DEPLOYMENT, "azure", "{\"aws_access_key_id\": \"" S_KEY_ID "\"}",
      "aws_access_key_id" },
    { S_DEPLOYMENT, "azure", "{\"command\": null, \"credentials\": null}",
      "command,credentials" },
};

/*  Every bad input is refused, names exactly the expected fields, leaks no
    secret, leaves secrets untouched and returns NULL. */
static void
test_bad_inputs (void **state)
{
    (void) state;
    size_t count = sizeof s_bad / sizeof s_bad [0];
    assert_true (count >= 60);
    for (size_t i = 0; i < count; i++) {
        const s_bad_t *bad = &s_bad [i];
        json_t *in = s_base (bad->kind, bad->provider);
        json_t *patch = s_json (bad->patch);
        const char *key;
        json_t *value;
        json_object_foreach (patch, key, value) {
            if (json_is_null (value))
                json_object_del (in, key);
            else
                json_object_set_new (in, key, s_patch_value (value));
        }
        json_t *secrets = json_object ();
        json_t *errors = json_array ();
        json_t *out = s_run (bad->kind, bad->provider, in, secrets, errors);
        char fields [512];
        s_error_fields (errors, fields, sizeof fields);
        if (out || strcmp (fields, bad->fields) != 0) {
            char *dump = json_dumps (errors, 0);
            fail_msg ("case %zu %s: want fields %s, got %s (%s)", i, bad->patch,
                      bad->fields, fields, dump);
        }
        if (getenv ("DX_TEST_VERBOSE")) {
            char *dump = json_dumps (errors, 0);
            printf ("%3zu %s\n    %s\n", i, bad->patch, dump);
            free (dump);
        }
        s_assert_no_secret (errors);
        assert_int_equal (json_object_size (secrets), 0);
        json_decref (secrets);
        json_decref (errors);
        json_decref (patch);
        json_decref (in);
    }
}

/*  Every base input of the table is valid by itself. */
static void
test_bases_valid (void **state)
{
    (void) state;
    const char *providers [] = { "aws", "azure" };
    for (int kind = S_CLUSTER; kind <= S_DEPLOYMENT; kind++)
        for (int p = 0; p < 2; p++) {
            json_t *in = s_base ((s_kind_t) kind, providers [p]);
            json_t *errors = json_array ();
            json_t *secrets = json_object ();
            json_t *out = s_run ((s_kind_t) kind, providers [p], in, secrets, errors);
            assert_non_null (out);
            assert_int_equal (json_array_size (errors), 0);
            json_decref (out);
            json_decref (secrets);
            json_decref (errors);
            json_decref (in);
        }
}

/*  Returns the message of the first error about field for in (caller
    frees). */
static char *
s_message (s_kind_t kind, const char *provider, json_t *in, const char *field)
{
    json_t *errors = json_array ();
    json_t *secrets = json_object ();
    json_t *out = s_run (kind, provider, in, secrets, errors);
    assert_null (out);
    char *message = NULL;
    for (size_t i = 0; i < json_array_size (errors) && !message; i++) {
        json_t *error = json_array_get (errors, i);
        if (strcmp (json_string_value (json_object_get (error, "field")), field) == 0)
            message = strdup (json_string_value (json_object_get (error, "message")));
    }
    assert_non_null (message);
    json_decref (secrets);
    json_decref (errors);
    json_decref (in);
    return message;
}

/*  The messages say the rule in a sentence. */
static void
test_messages (void **state)
{
    (void) state;
    const struct {
        s_kind_t kind;
        const char *provider, *in, *field, *message;
    } cases [] = {
        { S_CONFIG, "aws", "{\"masters\": \"4\"}", "masters",
          "masters must be an odd number from 1 to 9" },
        { S_CONFIG, "aws", "{\"masters\": 3, \"region\": \"us-west-9\"}", "region",
          "region 'us-west-9' is not an AWS region (e.g. us-west-2)" },
        { S_CONFIG, "aws", "{\"ssh_user\": \"x\"}", "ssh_user",
          "ssh_user is an azure parameter, not aws" },
        { S_CONFIG, "azure", "{\"region\": \"x\"}", "region",
          "region is an aws parameter, not azure" },
        { S_CONFIG, "azure", "{\"location\": \"x\"}", "masters",
          "missing required field" },
        { S_CONFIG, "azure", "{\"location\": \"Middle Earth\"}", "location",
          "location 'Middle Earth' is not an Azure location "
          "(e.g. \"Central US\" or centralus)" },
        { S_CONFIG, "azure", "{\"ssh_user\": \"root\"}", "ssh_user",
          "ssh_user 'root' is a name Azure reserves; choose another" },
        { S_CONFIG, "azure", "{\"ssh_password\": \"password\"}", "ssh_password",
          "ssh_password must be 6 to 72 characters with at least 3 of: a lowercase "
          "letter, an uppercase letter, a digit, a special character" },
        { S_CLUSTER, NULL, "{\"name\": \"a\", \"provider\": \"aws\", \"type\": \"mesos\", "
          "\"master\": 3}", "master", "unknown field" },
        { S_GROUP, "aws", "{\"cpus\": \"4097\"}", "cpus",
          "cpus must be an integer from 1 to 4096" },
        { S_GROUP, "aws", "{\"attributes\": \"{x\"}", "attributes",
          "attributes must be a JSON object: string or '}' expected near 'x' "
          "(line 1, column 2)" },
        { S_GROUP, "aws", "{\"instance_type\": \"m9.huge\"}", "instance_type",
          "instance_type 'm9.huge' is not a known aws instance type (see "
          "docs/catalog.md; names are case-sensitive)" },
        { S_GROUP, "aws", "{\"customhwconf\": "
          "{\"disks\": [{\"size\": 1, \"device\": \"xvdf\"}, {\"size\": 1, \"device\": "
          "\"xvdf\"}]}}", "customhwconf", "customhwconf disk 2: device xvdf is used twice" },
        { S_GROUP, "aws", "{\"name\": \"g\", \"role\": \"r\", \"attributes\": {}, "
          "\"vars\": {}, \"cpus\": 2000, \"ram\": 1, \"disk_size\": 8, "
          "\"instance_type\": \"t2.micro\"}", "cpus",
          "cpus 2000 and ram 1 on t2.micro (1 vCPU, 1 GiB) need 2000 hosts; a group "
          "may have at most 1000: choose a larger instance_type or ask for less" },
        { S_DEPLOYMENT, "aws", "{\"aws_secret_access_key\": \"x\"}",
          "aws_secret_access_key", "aws_secret_access_key must be 16 to 128 "
          "characters of A-Z, a-z, 0-9, '/', '+' and '='" },
        { S_DEPLOYMENT, "azure", "{\"command\": \"deploy\", \"credentials\": \"QUJD\"}",
          "credentials", "credentials must be base64 of the Azure credentials file, "
          "a JSON object (JSON error at line 1, column 3)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char *message = s_message (cases [i].kind, cases [i].provider,
                                   s_json (cases [i].in), cases [i].field);
        if (strcmp (message, cases [i].message) != 0)
            fail_msg ("case %zu: got \"%s\"", i, message);
        free (message);
    }
    /*  An encrypted key says so. */
    char *data = s_b64url (s_fx.pkcs8_encrypted);
    json_t *in = s_base (S_CONFIG, "aws");
    json_object_set_new (in, "sshkeydata", json_string (data));
    free (data);
    char *message = s_message (S_CONFIG, "aws", in, "sshkeydata");
    assert_string_equal (message, "sshkeydata must be an unencrypted private key "
                                  "(it asks for a passphrase)");
    free (message);
    assert_int_equal (ERR_peek_error (), 0);        /* nothing left behind */
}

/*  Odd calls: unknown provider, a body that is no object, NULL errors or
    secrets. None crashes; the right thing is reported. */
static void
test_odd_calls (void **state)
{
    (void) state;
    json_t *errors = json_array ();
    json_t *in = s_json ("{\"command\": \"deploy\"}");
    assert_null (dx_spec_deployment ("gcp", in, NULL, errors));
    assert_null (dx_spec_deployment (NULL, in, NULL, errors));
    json_t *array = s_json ("[1]");
    assert_null (dx_spec_cluster (array, errors));
    char fields [128];
    s_error_fields (errors, fields, sizeof fields);
    assert_string_equal (fields, "provider,provider,body");
    /*  NULL errors and secrets: validation still works. */
    assert_null (dx_spec_cluster (in, NULL));
    json_t *base = s_base (S_DEPLOYMENT, "aws");
    json_t *out = dx_spec_deployment ("aws", base, NULL, NULL);
    assert_non_null (out);
    assert_int_equal (json_integer_value (json_object_get (out, "parallelism")), 5);
    /*  Errors already in the array do not fail a valid input. */
    json_t *again = dx_spec_deployment ("aws", base, NULL, errors);
    assert_non_null (again);
    assert_int_equal (json_array_size (errors), 3);
    json_decref (again);
    json_decref (out);
    json_decref (base);
    json_decref (array);
    json_decref (in);
    json_decref (errors);
}

/*  Next value of a small deterministic PRNG (xorshift64). */
static uint64_t
s_random (uint64_t *seed)
{
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    return *seed;
}

/*  A random value of any JSON type; strings mix ASCII, UTF-8, spaces and
    base64-looking text. */
static json_t *
s_random_value (uint64_t *seed)
{
    static const char *const pieces [] = {
        "a", "Z", "0", "9", "+", "/", "-", "_", "=", " ", ":", ".", "{", "}", "\"",
        "\n", "\xc3\xa9", "\xe6\x97\xa5", "ami-", "xvd", "Standard_", "m5.", "@", "*",
        "QUJD", "LS0tLS1CRUdJTi", "eyJ", NULL
    };
    size_t n_pieces = sizeof pieces / sizeof pieces [0] - 1;
    char text [600];
    size_t used = 0;
    switch (s_random (seed) % 8) {
        case 0: return json_integer ((json_int_t) s_random (seed));
        case 1: return json_integer ((json_int_t) (s_random (seed) % 20));
        case 2: return json_real ((double) (s_random (seed) % 1000) / 7.0);
        case 3: return s_random (seed) % 2? json_true (): json_null ();
        case 4: return json_pack ("{s:[i,s]}", "disks", 1, "x");
        default:
            for (size_t i = s_random (seed) % 120; i > 0; i--) {
                const char *piece = pieces [s_random (seed) % n_pieces];
                if (used + strlen (piece) < sizeof text)
                    used += (size_t) sprintf (text + used, "%s", piece);
            }
            text [used] = 0;
            return json_string (text);
    }
}

/*  Random values in random fields never crash, leak or give both a result
    and errors. */
static void
test_garbage (void **state)
{
    (void) state;
    static const char *const fields [] = {
        "name", "provider", "type", "masters", "master_type", "region", "sshkey",
        "sshkeydata", "location", "ssh_user", "ssh_password", "image", "role",
        "attributes", "vars", "instance_type", "cpus", "ram", "disk_size",
        "customhwconf", "command", "parallelism", "aws_access_key_id",
        "aws_secret_access_key", "aws_session_token", "credentials", "bogus"
    };
    const char *providers [] = { "aws", "azure" };
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 4000; round++) {
        s_kind_t kind = (s_kind_t) (s_random (&seed) % 4);
        const char *provider = providers [s_random (&seed) % 2];
        json_t *in = s_base (kind, provider);
        for (int k = (int) (s_random (&seed) % 3) + 1; k > 0; k--)
            json_object_set_new (in, fields [s_random (&seed) % (sizeof fields / sizeof fields [0])],
                                 s_random_value (&seed));
        json_t *errors = json_array ();
        json_t *secrets = json_object ();
        json_t *out = s_run (kind, provider, in, secrets, errors);
        assert_true ((out != NULL) != (json_array_size (errors) > 0));
        json_decref (out);
        json_decref (secrets);
        json_decref (errors);
        json_decref (in);
    }
    assert_int_equal (ERR_peek_error (), 0);
}

/*  A NUL inside a string value (possible with json_stringn) is refused,
    not silently cut short; odd UTF-8 never loses an error. */
static void
test_embedded_nul (void **state)
{
    (void) state;
    json_t *in = s_base (S_CLUSTER, NULL);
    json_object_set_new (in, "name", json_stringn ("demo\0x", 6));
    json_t *errors = json_array ();
    assert_null (dx_spec_cluster (in, errors));
    char fields [64];
    s_error_fields (errors, fields, sizeof fields);
    assert_string_equal (fields, "name");
    json_decref (errors);
    json_decref (in);

    /*  Bad JSON full of multibyte UTF-8: still exactly one clear error. */
    char text [400] = "{\"";
    for (int i = 0; i < 100; i++)
        strcat (text, "\xe6\x97\xa5");
    in = s_base (S_GROUP, "aws");
    json_object_set_new (in, "attributes", json_string (text));
    errors = json_array ();
    assert_null (dx_spec_group ("aws", in, errors));
    s_error_fields (errors, fields, sizeof fields);
    assert_string_equal (fields, "attributes");
    json_decref (errors);
    json_decref (in);
}

/*  ---------------------------------------------------------------------
    Limits: what validates encodes
    --------------------------------------------------------------------- */

/*  JSON text of an object nested depth levels ({"a":{"a":{}}} is 3).
    Caller frees. */
static char *
s_nested_text (int depth)
{
    char *text = malloc ((size_t) depth * 6 + 1);
    assert_non_null (text);
    size_t used = 0;
    for (int i = 1; i < depth; i++)
        used += (size_t) sprintf (text + used, "{\"a\":");
    used += (size_t) sprintf (text + used, "{}");
    for (int i = 1; i < depth; i++)
        text [used++] = '}';
    text [used] = 0;
    return text;
}

/*  Fails unless group, as dx_spec made it, encodes where a message holds
    it deepest (a reply's list of groups) and decodes back equal. */
static void
s_assert_encodes (const json_t *group)
{
    json_t *request = dx_msg_new ("group.list", NULL);
    json_t *reply = dx_reply_new (request, DX_OK, json_pack ("[O]", group));
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal (dx_msg_encode (reply, &buf, &len), 0);
    char err [DX_ERR_LEN];
    json_t *back = dx_msg_decode (buf, len, err, sizeof err);
    if (!back)
        fail_msg ("reply did not decode: %s", err);
    assert_true (json_equal (back, reply));
    json_decref (back);
    free (buf);
    json_decref (reply);
    json_decref (request);
}

/*  Validates the aws group base with vars set to value (stolen): when
    accepted is true it must pass and encode, else fail on vars alone. */
static void
s_expect_vars (json_t *value, bool accepted)
{
    json_t *in = s_base (S_GROUP, "aws");
    json_object_set_new (in, "vars", value);
    json_t *errors = json_array ();
    json_t *out = dx_spec_group ("aws", in, errors);
    char fields [64];
    s_error_fields (errors, fields, sizeof fields);
    if (accepted) {
        assert_non_null (out);
        s_assert_encodes (out);
    }
    else {
        assert_null (out);
        assert_string_equal (fields, "vars");
    }
    json_decref (out);
    json_decref (errors);
    json_decref (in);
}

/*  vars nest at most DX_MSG_BODY_DEPTH - 1 levels, as a field of a JSON
    body does, whether sent as an object or as text in a form; 40 levels
    of form text once passed and could not be sent on. */
static void
test_limit_depth (void **state)
{
    (void) state;
    const int deepest = DX_MSG_BODY_DEPTH - 1;
    const int depths [] = { deepest, deepest + 1, 40 };
    for (size_t i = 0; i < sizeof depths / sizeof depths [0]; i++) {
        char *text = s_nested_text (depths [i]);
        s_expect_vars (s_json (text), depths [i] == deepest);
        s_expect_vars (json_string (text), depths [i] == deepest);
        free (text);
    }
    /*  The other JSON fields have the same rule. */
    char *text = s_nested_text (deepest + 1);
    json_t *in = s_base (S_GROUP, "aws");
    json_object_set_new (in, "customhwconf", json_string (text));
    json_t *errors = json_array ();
    assert_null (dx_spec_group ("aws", in, errors));
    char fields [64];
    s_error_fields (errors, fields, sizeof fields);
    assert_string_equal (fields, "customhwconf");
    assert_non_null (strstr (json_string_value (json_object_get (
        json_array_get (errors, 0), "message")), "nested"));
    json_decref (errors);
    json_decref (in);
    free (text);
}

/*  vars of exactly the largest size, made of what msgpack writes longest
    for its JSON size (doubles), validate and encode; a byte more does
    not validate. */
static void
test_limit_size (void **state)
{
    (void) state;
    const size_t max = 64 * 1024;       /* docs/api.md: vars <= 64 KiB */
    for (size_t want = max; want <= max + 1; want++) {
        //  {"a":[1.5,...,1.5],"b":"x..."}: 4 bytes per double, then padding
        json_t *vars = json_pack ("{s:[], s:s}", "a", "b", "");
        json_t *list = json_object_get (vars, "a");
        size_t frame = json_dumpb (vars, NULL, 0, JSON_COMPACT) - 1;
        for (size_t i = 0; i < (want - frame) / 4; i++)
            json_array_append_new (list, json_real (1.5));
        size_t pad = want - json_dumpb (vars, NULL, 0, JSON_COMPACT);
        char *fill = malloc (pad + 1);
        memset (fill, 'x', pad);
        fill [pad] = 0;
        json_object_set_new (vars, "b", json_string (fill));
        free (fill);
        assert_int_equal (json_dumpb (vars, NULL, 0, JSON_COMPACT), want);
        s_expect_vars (vars, want == max);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_name_valid),
        cmocka_unit_test (test_disk_letter),
        cmocka_unit_test (test_cluster_ok),
        cmocka_unit_test (test_config_aws_ok),
        cmocka_unit_test (test_config_azure_ok),
        cmocka_unit_test (test_group_ok),
        cmocka_unit_test (test_customhwconf_ok),
        cmocka_unit_test (test_deployment_ok),
        cmocka_unit_test (test_bases_valid),
        cmocka_unit_test (test_bad_inputs),
        cmocka_unit_test (test_messages),
        cmocka_unit_test (test_odd_calls),
        cmocka_unit_test (test_garbage),
        cmocka_unit_test (test_embedded_nul),
        cmocka_unit_test (test_limit_depth),
        cmocka_unit_test (test_limit_size),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
