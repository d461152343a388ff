/*  dx_spec: validation and normalization of what users send, exactly as
    docs/api.md "Validation" says.

    Each resource (cluster, config, group, deployment) is a table of fields:
    name, which providers take it, which require it, the check that turns a
    raw value into its normalized form, bounds, where the result goes (the
    normalized object or the secrets) and a per-provider default. One driver
    (s_validate) walks a table: it reports missing required fields,
    parameters of the other provider and unknown fields, applies defaults
    (by checking the default text as if the user had sent it) and stores
    each check's result. So every fault is reported at once, in table order,
    then unknown fields in the order they were sent.

    Checks never quote a secret back: messages about sshkeydata,
    ssh_password, credentials and the AWS keys name the rule, not the value.
    sshkeydata is any private key usable without a passphrase, as
    dx_sshkey_kind judges it. */
#include "dx_spec.h"
#include "dx_catalog.h"
#include "dx_msg.h"
#include "dx_sshkey.h"
#include "dx_util.h"

#include <openssl/crypto.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_AWS        1u             /* provider bits of a field's masks */
#define S_AZURE      2u
#define S_BOTH       (S_AWS | S_AZURE)
#define S_NONE       0u

#define S_SECRET     1u             /* result goes to secrets */
#define S_MERGE      2u             /* result is an object merged in */
#define S_ODD        4u             /* s_check_int: an odd number only */

#define S_MAX_LEN    4096           /* longest ordinary string value */
#define S_QUOTE_MAX  64             /* longest value quoted in a message */
#define S_DISKS_MAX  16

static const char *const s_provider_names [] = { "aws", "azure" };

typedef struct {
    int provider;                   /* 0 aws, 1 azure, -1 none (cluster) */
    json_t *errors;
} s_ctx_t;

typedef struct s_field s_field_t;

/*  A check turns a raw value into its normalized form (a new reference),
    or appends errors and returns NULL. */
typedef json_t *(s_check_fn) (s_ctx_t *ctx, const s_field_t *field,
                              const json_t *value);

struct s_field {
    const char *name;
    unsigned on;                    /* providers that take the field */
    unsigned required;              /* providers that require it */
    s_check_fn *check;
    long min, max;                  /* integer value or string length bounds */
    size_t max_len;                 /* longest text looked at; 0: S_MAX_LEN */
    unsigned flags;                 /* S_SECRET, S_MERGE, S_ODD */
    const char *dflt [2];           /* default per provider, as form text */
    const char *const *choices;     /* for s_check_choice */
};

typedef struct {
    const s_field_t *fields;
    size_t count;
    void (*finish) (s_ctx_t *ctx, json_t *out);
} s_resource_t;


/*  ---------------------------------------------------------------------
    Errors and small text helpers
    --------------------------------------------------------------------- */

/*  Appends {"field", "message"} to the errors. Returns NULL so a check can
    `return s_fail (...)`. */
static json_t *
s_fail (s_ctx_t *ctx, const char *field, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static json_t *
s_fail (s_ctx_t *ctx, const char *field, const char *format, ...)
{
    char message [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    json_t *error = json_object ();
    json_object_set_new (error, "field", json_string (field));
    //  A message cut inside a UTF-8 sequence (a long one, or jansson's own
    //  truncated error text) still makes an error
    json_object_set_new (error, "message", dx_msg_string_new (message));
    json_array_append_new (ctx->errors, error);
    return NULL;
}

/*  " 'text'" when text is short printable ASCII, else "": messages name
    what was sent when that helps and cannot flood or garble the answer.
    Never used on secrets. */
static const char *
s_quote (const char *text, char *buf, size_t size)
{
    size_t len = strlen (text);
    buf [0] = 0;
    if (len == 0 || len > S_QUOTE_MAX)
        return buf;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) text [i] < 0x20 || (unsigned char) text [i] > 0x7e)
            return buf;
    snprintf (buf, size, " '%s'", text);
    return buf;
}

/*  The string value of a field, or NULL after reporting that it must be
    one. */
static const char *
s_text (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    if (!json_is_string (value)) {
        s_fail (ctx, field->name, "%s must be a string", field->name);
        return NULL;
    }
    return json_string_value (value);
}

/*  True if c is in set: "a-z0-9_" style, a '-' first or last is literal. */
static bool
s_in_set (int c, const char *set)
{
    for (size_t i = 0; set [i]; i++) {
        if (set [i + 1] == '-' && set [i + 2]) {
            if (c >= (unsigned char) set [i] && c <= (unsigned char) set [i + 2])
                return true;
            i += 2;
        }
        else
        if (c == (unsigned char) set [i])
            return true;
    }
    return false;
}

/*  True if every character of text is in set (see s_in_set). */
static bool
s_all_in (const char *text, const char *set)
{
    for (; *text; text++)
        if (!s_in_set ((unsigned char) *text, set))
            return false;
    return true;
}

/*  True if text is first (one char of set `head`) then 0..max_tail chars of
    `tail`: the shape of most names here. */
static bool
s_matches (const char *text, const char *head, const char *tail, size_t max_tail)
{
    size_t len = strlen (text);
    return len >= 1 && len <= max_tail + 1
        && s_in_set ((unsigned char) text [0], head)
        && s_all_in (text + 1, tail);
}

/*  Index of text in a NULL-terminated list, or -1. */
static int
s_find (const char *const *list, const char *text)
{
    for (int i = 0; list [i]; i++)
        if (strcmp (list [i], text) == 0)
            return i;
    return -1;
}

/*  "a, b or c" from a NULL-terminated list, for messages. */
static const char *
s_join (const char *const *list, char *buf, size_t size)
{
    size_t used = 0;
    buf [0] = 0;
    for (int i = 0; list [i] && used < size; i++) {
        const char *sep = i == 0? "": list [i + 1]? ", ": " or ";
        int n = snprintf (buf + used, size - used, "%s%s", sep, list [i]);
        if (n < 0)
            break;
        used += (size_t) n;
    }
    return buf;
}

/*  A copy of text with every space read as '+': an unencoded '+' in a
    form body arrives as a space. Caller frees. */
static char *
s_spaces_as_plus (const char *text)
{
    char *copy = strdup (text);
    if (copy)
        for (char *p = copy; *p; p++)
            if (*p == ' ')
                *p = '+';
    return copy;
}

/*  Integer value of a JSON integer or a string of decimal digits (no sign,
    no spaces). Values too big to matter become LONG_MAX so the range check
    rejects them. False if value is neither. */
static bool
s_integer (const json_t *value, long *result)
{
    if (json_is_integer (value)) {
        json_int_t n = json_integer_value (value);
        *result = n > LONG_MAX? LONG_MAX: n < LONG_MIN? LONG_MIN: (long) n;
        return true;
    }
    if (!json_is_string (value))
        return false;
    const char *text = json_string_value (value);
    if (!*text || !s_all_in (text, "0-9"))
        return false;
    long n = 0;
    for (; *text; text++) {
        if (n > (LONG_MAX - 9) / 10) {
            *result = LONG_MAX;
            return true;
        }
        n = n * 10 + (*text - '0');
    }
    *result = n;
    return true;
}


/*  ---------------------------------------------------------------------
    Checks of simple fields
    --------------------------------------------------------------------- */

/*  Names end up in Redis keys (the {NAME} hash tag), cloud resource names
    and host names, hence the narrow alphabet. */
int
dx_spec_name_valid (const char *s)
{
    return s && s_matches (s, "a-z", "a-z0-9", DX_NAME_MAX - 1);
}

/*  A cluster or group name. */
static json_t *
s_check_name (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    if (!dx_spec_name_valid (text))
        return s_fail (ctx, field->name, "%s must start with a lowercase letter "
                       "and hold only lowercase letters and digits, at most %d "
                       "characters", field->name, DX_NAME_MAX);
    return json_string (text);
}

/*  Group names the hosts Dexter adds itself use: a group of that name
    would share their resource keys (host.masters.N), host names
    (NAME-master-N) or group tag (access). */
static const char *const s_reserved_groups [] = { "access", "master", "masters", NULL };

/*  A group name: a name (s_check_name) that is not reserved. */
static json_t *
s_check_group_name (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    json_t *name = s_check_name (ctx, field, value);
    if (name && s_find (s_reserved_groups, json_string_value (name)) >= 0) {
        char list [64];
        s_fail (ctx, field->name, "%s %s is reserved: the access node and the masters "
                "use it; choose another (not %s)", field->name, json_string_value (name),
                s_join (s_reserved_groups, list, sizeof list));
        json_decref (name);
        return NULL;
    }
    return name;
}

/*  One of a fixed list of words (field->choices). */
static json_t *
s_check_choice (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    if (s_find (field->choices, text) < 0) {
        char list [128];
        return s_fail (ctx, field->name, "%s must be %s", field->name,
                       s_join (field->choices, list, sizeof list));
    }
    return json_string (text);
}

/*  An integer in [field->min, field->max], odd if the field says so. */
static json_t *
s_check_int (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    long n;
    bool odd = field->flags & S_ODD;
    if (!s_integer (value, &n) || n < field->min || n > field->max
    ||  (odd && n % 2 == 0))
        return s_fail (ctx, field->name, "%s must be %s from %ld to %ld", field->name,
                       odd? "an odd number": "an integer", field->min, field->max);
    return json_integer (n);
}

/*  Reports that text, a value the catalog does not know, is not what. */
static json_t *
s_fail_unknown (s_ctx_t *ctx, const s_field_t *field, const char *text,
                const char *what)
{
    char quoted [S_QUOTE_MAX + 4];
    return s_fail (ctx, field->name, "%s%s is not %s", field->name,
                   s_quote (text, quoted, sizeof quoted), what);
}

/*  An instance type of the provider, as the catalog spells it. */
static json_t *
s_check_instance_type (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    static const char *const unknown [] = {
        "a known aws instance type (see docs/catalog.md; names are case-sensitive)",
        "a known azure instance type (see docs/catalog.md; names are case-sensitive)"
    };
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    if (!dx_catalog_instance (s_provider_names [ctx->provider], text))
        return s_fail_unknown (ctx, field, text, unknown [ctx->provider]);
    return json_string (text);
}

/*  An AWS region name. */
static json_t *
s_check_region (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    if (!dx_catalog_aws_region (text))
        return s_fail_unknown (ctx, field, text, "an AWS region (e.g. us-west-2)");
    return json_string (text);
}

/*  An Azure location by name or display name; gives both, merged into the
    result as location (the name ARM wants) and location_name. */
static json_t *
s_check_location (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    const dx_location_t *location = dx_catalog_azure_location (text);
    if (!location)
        return s_fail_unknown (ctx, field, text, "an Azure location "
                               "(e.g. \"Central US\" or centralus)");
    return json_pack ("{s:s, s:s}", "location", location->name,
                      "location_name", location->display_name);
}

/*  Printable ASCII text of min..max characters (EC2 key pair names). */
static json_t *
s_check_printable (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    size_t len = strlen (text);
    if (len < (size_t) field->min || len > (size_t) field->max
    ||  !s_all_in (text, " -~"))
        return s_fail (ctx, field->name, "%s must be %ld to %ld printable ASCII "
                       "characters", field->name, field->min, field->max);
    return json_string (text);
}

/*  A Mesos role: `*` or a name that is not `.` or `..` (the regex cannot
    start with a dot, so neither can match). */
static json_t *
s_check_role (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    if (strcmp (text, "*") != 0 && !s_matches (text, "A-Za-z0-9_", "A-Za-z0-9_.-", 63))
        return s_fail (ctx, field->name, "%s must be * or a Mesos role: up to 64 "
                       "letters, digits, '_', '.' and '-', not starting with '.' "
                       "or '-'", field->name);
    return json_string (text);
}

/*  A machine image: an AMI id on aws, publisher:offer:sku:version on
    azure. */
static json_t *
s_check_image (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    if (ctx->provider == 0) {
        size_t hex = strlen (text) - (strncmp (text, "ami-", 4) == 0? 4: 0);
        if (strncmp (text, "ami-", 4) != 0 || (hex != 8 && hex != 17)
        ||  !s_all_in (text + 4, "0-9a-f"))
            return s_fail (ctx, field->name, "%s must be an AMI id: 'ami-' and 8 "
                           "or 17 lowercase hex digits", field->name);
    }
    else {
        size_t parts = 1, part_len = 0;
        bool ok = true;
        for (const char *p = text; *p && ok; p++) {
            if (*p == ':') {
                ok = part_len > 0;
                parts++;
                part_len = 0;
            }
            else {
                ok = s_in_set ((unsigned char) *p, "A-Za-z0-9._-");
                part_len++;
            }
        }
        if (!ok || parts != 4 || part_len == 0)
            return s_fail (ctx, field->name, "%s must be publisher:offer:sku:version, "
                           "four non-empty parts of letters, digits, '.', '_' "
                           "and '-'", field->name);
    }
    return json_string (text);
}


/*  ---------------------------------------------------------------------
    Azure admin user and password
    --------------------------------------------------------------------- */

/*  Linux admin user names Azure refuses. */
static const char *const s_reserved_users [] = {
    "administrator", "admin", "user", "user1", "test", "user2", "test1",
    "user3", "admin1", "1", "123", "a", "actuser", "adm", "admin2", "aspnet",
    "backup", "console", "david", "guest", "john", "owner", "root", "server",
    "sql", "support", "support_388945a0", "sys", "test2", "test3", "user4",
    "user5", NULL
};

/*  Passwords Azure refuses however complex they look. */
static const char *const s_disallowed_passwords [] = {
    "abc@123", "P@$$w0rd", "P@ssw0rd", "P@ssword123", "Pa$$word", "pass@word1",
    "Password!", "Password1", "Password22", "iloveyou!", NULL
};

/*  Azure's Linux admin user rules. */
static json_t *
s_check_ssh_user (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    char quoted [S_QUOTE_MAX + 4];
    if (!s_matches (text, "a-z_", "a-z0-9_-", 31))
        return s_fail (ctx, field->name, "%s must start with a lowercase letter or "
                       "'_' and hold only lowercase letters, digits, '_' and '-', "
                       "at most 32 characters", field->name);
    if (s_find (s_reserved_users, text) >= 0)
        return s_fail (ctx, field->name, "%s%s is a name Azure reserves; choose "
                       "another", field->name, s_quote (text, quoted, sizeof quoted));
    return json_string (text);
}

/*  Azure's password rules: 6-72 characters, 3 of the 4 classes (lower,
    upper, digit, other), no control characters, not a disallowed one.
    Characters are counted as UTF-8 code points. */
static json_t *
s_check_ssh_password (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    bool lower = false, upper = false, digit = false, other = false, control = false;
    long chars = 0;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if ((*p & 0xC0) != 0x80)
            chars++;
        if (*p >= 'a' && *p <= 'z')      lower = true;
        else if (*p >= 'A' && *p <= 'Z') upper = true;
        else if (*p >= '0' && *p <= '9') digit = true;
        else if (*p < 0x20 || *p == 0x7f) control = true;
        else                              other = true;
    }
    if (control)
        return s_fail (ctx, field->name, "%s must not contain control characters",
                       field->name);
    //  A '+' sent by curl -d arrives as a space (form encoding): refused,
    //  rather than a password the user did not type
    if (strchr (text, ' '))
        return s_fail (ctx, field->name, "%s must not contain spaces; a '+' sent with "
                       "curl -d arrives as a space: send it as %%2B (or use curl "
                       "--data-urlencode)", field->name);
    if (chars < field->min || chars > field->max
    ||  lower + upper + digit + other < 3)
        return s_fail (ctx, field->name, "%s must be %ld to %ld characters with at "
                       "least 3 of: a lowercase letter, an uppercase letter, a "
                       "digit, a special character", field->name, field->min,
                       field->max);
    if (s_find (s_disallowed_passwords, text) >= 0)
        return s_fail (ctx, field->name, "%s is a well-known password Azure does "
                       "not allow", field->name);
    return json_string (text);
}


/*  ---------------------------------------------------------------------
    JSON object fields: attributes, vars (customhwconf below)
    --------------------------------------------------------------------- */

/*  A JSON object given as one or as a string holding one (a form sends
    text); a copy the caller owns, no larger than field->max bytes when
    serialized compactly, and nested no deeper than the field of a JSON
    body may be (DX_MSG_BODY_DEPTH, the body being one level), so that a
    form's text cannot carry what a message cannot. */
static json_t *
s_json_object (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    json_t *object;
    if (json_is_object (value))
        object = json_deep_copy (value);
    else
    if (json_is_string (value)) {
        json_error_t error;
        object = json_loads (json_string_value (value), JSON_REJECT_DUPLICATES, &error);
        if (!object)
            return s_fail (ctx, field->name, "%s must be a JSON object: %s (line %d, "
                           "column %d)", field->name, error.text, error.line,
                           error.column);
    }
    else
        return s_fail (ctx, field->name, "%s must be a JSON object", field->name);

    if (!json_is_object (object)) {
        json_decref (object);
        return s_fail (ctx, field->name, "%s must be a JSON object", field->name);
    }
    if (dx_msg_too_deep (object, DX_MSG_BODY_DEPTH - 1)) {
        json_decref (object);
        return s_fail (ctx, field->name, "%s is nested more than %d levels deep",
                       field->name, DX_MSG_BODY_DEPTH - 1);
    }
    size_t size = json_dumpb (object, NULL, 0, JSON_COMPACT);
    if (size > (size_t) field->max) {
        json_decref (object);
        return s_fail (ctx, field->name, "%s is too large: %zu bytes as compact JSON, "
                       "at most %ld", field->name, size, field->max);
    }
    return object;
}

/*  Any JSON object (vars are the user's own Ansible-style variables). */
static json_t *
s_check_vars (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    return s_json_object (ctx, field, value);
}

/*  Mesos attributes: each value a string or a number; names non-empty and
    free of the separators of Mesos' attribute syntax (':' and ';'). */
static json_t *
s_check_attributes (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    json_t *object = s_json_object (ctx, field, value);
    if (!object)
        return NULL;
    bool ok = true;
    const char *key;
    json_t *member;
    json_object_foreach (object, key, member) {
        char quoted [S_QUOTE_MAX + 4];
        if (!*key || strchr (key, ':') || strchr (key, ';')) {
            s_fail (ctx, field->name, "%s: attribute name%s must be non-empty and "
                    "contain neither ':' nor ';'", field->name,
                    s_quote (key, quoted, sizeof quoted));
            ok = false;
        }
        if (!json_is_string (member) && !json_is_number (member)) {
            s_fail (ctx, field->name, "%s: attribute%s must be a string or a number",
                    field->name, s_quote (key, quoted, sizeof quoted));
            ok = false;
        }
    }
    if (!ok)
        json_decref (object);
    return ok? object: NULL;
}


/*  ---------------------------------------------------------------------
    customhwconf: extra data disks
    --------------------------------------------------------------------- */

/*  The two ways to write a disk list: Dexter's own and the ebs_block_device
    form of the original (Terraform-style) customhwconf, aws only. */
enum { S_FORM_DISKS, S_FORM_EBS };
static const char *const s_disk_lists [] = { "disks", "ebs_block_device", NULL };
static const char *const s_disk_keys [2][4] = {
    { "size", "type", "device", NULL },
    { "volume_size", "volume_type", "device_name", NULL },
};

static const char *const s_aws_disk_types [] = {
    "gp2", "gp3", "io1", "io2", "st1", "sc1", "standard", NULL
};
static const char *const s_azure_disk_types [] = {
    "Standard_LRS", "StandardSSD_LRS", "Premium_LRS", NULL
};
static const char *const *const s_disk_types [2] = {
    s_aws_disk_types, s_azure_disk_types        /* first one is the default */
};

typedef struct {
    long size;
    const char *type;
    char device;                    /* 'f'..'z' of xvdf..xvdz; 0: not given */
} s_disk_t;

/*  Extra disks are xvdf..xvdz: the names EC2 attaches them under and the
    first-boot script looks for. */
char
dx_spec_disk_letter (const char *text)
{
    if (!text)
        return 0;
    if (strncmp (text, "/dev/", 5) == 0)
        text += 5;
    if (strlen (text) == 4 && strncmp (text, "xvd", 3) == 0
    &&  text [3] >= 'f' && text [3] <= 'z')
        return text [3];
    return 0;
}

/*  Reads disk number `number` (from 1) of the given form into disk;
    reports every fault. True if it was all good. */
static bool
s_disk_parse (s_ctx_t *ctx, const s_field_t *field, int form, size_t number,
              const json_t *entry, s_disk_t *disk)
{
    const char *name = field->name;
    const char *const *keys = s_disk_keys [form];
    const char *const *types = s_disk_types [ctx->provider];
    size_t errors = json_array_size (ctx->errors);
    char quoted [S_QUOTE_MAX + 4];

    if (!json_is_object (entry)) {
        s_fail (ctx, name, "%s disk %zu must be an object", name, number);
        return false;
    }
    const char *key;
    json_t *member;
    json_object_foreach ((json_t *) entry, key, member)
        if (s_find (keys, key) < 0)
            s_fail (ctx, name, "%s disk %zu: unknown key%s (use %s, %s, %s)", name,
                    number, s_quote (key, quoted, sizeof quoted), keys [0], keys [1],
                    keys [2]);

    json_t *size = json_object_get (entry, keys [0]);
    if (!size)
        s_fail (ctx, name, "%s disk %zu: %s is required", name, number, keys [0]);
    else
    if (!s_integer (size, &disk->size) || disk->size < 1 || disk->size > 16384)
        s_fail (ctx, name, "%s disk %zu: %s must be an integer from 1 to 16384 (GB)",
                name, number, keys [0]);

    json_t *type = json_object_get (entry, keys [1]);
    disk->type = types [0];
    if (type) {
        char list [128];
        int found = json_is_string (type)? s_find (types, json_string_value (type)): -1;
        if (found < 0)
            s_fail (ctx, name, "%s disk %zu: %s must be %s", name, number, keys [1],
                    s_join (types, list, sizeof list));
        else
            disk->type = types [found];
    }

    json_t *device = json_object_get (entry, keys [2]);
    disk->device = 0;
    if (device) {
        disk->device = dx_spec_disk_letter (json_string_value (device));
        if (!disk->device)
            s_fail (ctx, name, "%s disk %zu: %s must be one of xvdf to xvdz", name,
                    number, keys [2]);
    }
    return json_array_size (ctx->errors) == errors;
}

/*  The disks, given explicitly or not: explicit devices must be unique; the
    others get the next free of xvdf, xvdg, ... in order. Normalized to
    {"disks": [{size, type, device}]}. */
static json_t *
s_check_customhwconf (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *name = field->name;
    json_t *conf = s_json_object (ctx, field, value);
    if (!conf)
        return NULL;
    size_t errors = json_array_size (ctx->errors);

    const char *key;
    json_t *member;
    json_object_foreach (conf, key, member)
        if (s_find (s_disk_lists, key) < 0) {
            char quoted [S_QUOTE_MAX + 4];
            s_fail (ctx, name, "%s: unknown key%s (use disks%s)", name,
                    s_quote (key, quoted, sizeof quoted),
                    ctx->provider == 0? " or ebs_block_device": "");
        }
    json_t *disks = json_object_get (conf, "disks");
    json_t *ebs = json_object_get (conf, "ebs_block_device");
    int form = ebs? S_FORM_EBS: S_FORM_DISKS;
    json_t *list = ebs? ebs: disks;
    if (disks && ebs)
        s_fail (ctx, name, "%s must hold either disks or ebs_block_device, not both",
                name);
    else
    if (ebs && ctx->provider != 0)
        s_fail (ctx, name, "%s: ebs_block_device is for aws only; on %s use disks",
                name, s_provider_names [ctx->provider]);
    else
    if (list && !json_is_array (list))
        s_fail (ctx, name, "%s: %s must be an array", name, s_disk_lists [form]);
    else
    if (json_array_size (list) > S_DISKS_MAX)
        s_fail (ctx, name, "%s has %zu disks; at most %d are allowed", name,
                json_array_size (list), S_DISKS_MAX);
    if (json_array_size (ctx->errors) != errors) {
        json_decref (conf);
        return NULL;
    }

    s_disk_t parsed [S_DISKS_MAX];
    bool taken ['z' + 1] = { false };
    size_t count = json_array_size (list);
    for (size_t i = 0; i < count; i++) {
        if (!s_disk_parse (ctx, field, form, i + 1, json_array_get (list, i), &parsed [i])
        ||  !parsed [i].device)
            continue;
        if (taken [(int) parsed [i].device])
            s_fail (ctx, name, "%s disk %zu: device xvd%c is used twice", name, i + 1,
                    parsed [i].device);
        taken [(int) parsed [i].device] = true;
    }
    json_decref (conf);
    if (json_array_size (ctx->errors) != errors)
        return NULL;

    json_t *result = json_array ();
    char next = 'f';
    for (size_t i = 0; i < count; i++) {
        if (!parsed [i].device) {
            while (taken [(int) next])  /* at most 16 disks: never past 'z' */
                next++;
            parsed [i].device = next;
            taken [(int) next] = true;
        }
        char device [8];
        snprintf (device, sizeof device, "xvd%c", parsed [i].device);
        json_array_append_new (result, json_pack ("{s:i, s:s, s:s}",
            "size", (json_int_t) parsed [i].size, "type", parsed [i].type,
            "device", device));
    }
    return json_pack ("{s:o}", "disks", result);
}


/*  ---------------------------------------------------------------------
    Base64-wrapped secrets: sshkeydata and credentials
    --------------------------------------------------------------------- */

/*  Says whether decoded bytes are the kind of thing expected (and keeps
    what it learned in arg). */
typedef bool (s_judge_fn) (const unsigned char *data, size_t len, void *arg);

/*  Decodes base64 text (either alphabet, dx_base64_decode's tolerance) and
    asks judge about the bytes: first as sent, then, if that was not it and
    the text has spaces, with spaces read as '+'. Returns the accepted bytes
    (caller frees, NUL-terminated) or NULL; *was_base64 tells whether any
    reading decoded at all. */
static unsigned char *
s_decode_tolerant (const char *text, s_judge_fn *judge, void *arg,
                   size_t *len, bool *was_base64)
{
    *was_base64 = false;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *spelled = NULL;
        if (attempt == 1) {
            if (!strchr (text, ' ') || !(spelled = s_spaces_as_plus (text)))
                break;
        }
        unsigned char *data = dx_base64_decode (spelled? spelled: text, len);
        free (spelled);
        if (!data)
            continue;
        *was_base64 = true;
        if (judge (data, *len, arg))
            return data;
        OPENSSL_cleanse (data, *len);   /* it may hold a secret */
        free (data);
    }
    return NULL;
}

/*  Judge for s_decode_tolerant: is it a private key (encrypted or not)? */
static bool
s_judge_key (const unsigned char *data, size_t len, void *arg)
{
    dx_sshkey_kind_t *kind = arg;
    *kind = dx_sshkey_kind ((const char *) data, len);
    return *kind != DX_SSHKEY_NONE;
}

/*  sshkeydata: base64 of an unencrypted private key; the secret kept is the
    decoded key text. */
static json_t *
s_check_sshkeydata (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    dx_sshkey_kind_t kind = DX_SSHKEY_NONE;
    size_t len = 0;
    bool was_base64;
    unsigned char *pem = s_decode_tolerant (text, s_judge_key, &kind, &len, &was_base64);
    if (!pem)
        return s_fail (ctx, field->name, was_base64
                       ? "%s must be base64 of a PEM private key file "
                         "(base64 -w 0 key.pem | tr '+/' '-_')"
                       : "%s is not base64 or base64url", field->name);
    json_t *result = NULL;
    if (kind == DX_SSHKEY_ENCRYPTED)
        s_fail (ctx, field->name, "%s must be an unencrypted private key (it asks "
                "for a passphrase)", field->name);
    else
    if (!(result = json_stringn ((const char *) pem, len)))
        s_fail (ctx, field->name, "%s must be base64 of a key file in UTF-8 text",
                field->name);
    OPENSSL_cleanse (pem, len);
    free (pem);
    return result;
}

/*  Judge for s_decode_tolerant: is it a JSON object? Keeps it, or where
    the JSON went wrong (never what it said: that may be a secret). */
typedef struct {
    json_t *object;
    int line, column;
} s_json_found_t;

static bool
s_judge_json (const unsigned char *data, size_t len, void *arg)
{
    s_json_found_t *found = arg;
    json_error_t error;
    json_t *json = json_loadb ((const char *) data, len, JSON_REJECT_DUPLICATES, &error);
    if (json_is_object (json)) {
        found->object = json;
        return true;
    }
    found->line = json? 0: error.line;    /* 0: JSON, but not an object */
    found->column = json? 0: error.column;
    json_decref (json);
    return false;
}

/*  1 if text is a GUID: 8-4-4-4-12 hex digits. */
static bool
s_is_guid (const char *text)
{
    if (strlen (text) != 36)
        return false;
    for (int i = 0; i < 36; i++)
        if (i == 8 || i == 13 || i == 18 || i == 23? text [i] != '-'
                                                   : !s_in_set ((unsigned char) text [i], "0-9a-fA-F"))
            return false;
    return true;
}

/*  True if text is a DNS domain name of two or more labels
    (contoso.onmicrosoft.com). */
static bool
s_is_domain (const char *text)
{
    size_t len = strlen (text), label = 0, labels = 1;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = text [i];
        if (c == '.' || c == 0) {
            if (label == 0 || label > 63 || text [i - 1] == '-')
                return false;
            labels += c == '.';
            label = 0;
        }
        else
        if (!s_in_set ((unsigned char) c, "A-Za-z0-9-") || (label == 0 && c == '-'))
            return false;
        else
            label++;
    }
    return labels >= 2;
}

/*  True if text is an http:// or https:// URL with a host and no spaces. */
static bool
s_is_url (const char *text)
{
    const char *rest = strncmp (text, "https://", 8) == 0? text + 8
                     : strncmp (text, "http://", 7) == 0? text + 7: NULL;
    return rest && *rest && *rest != '/' && s_all_in (rest, "!-~");
}

typedef enum { S_CRED_TEXT, S_CRED_GUID, S_CRED_TENANT, S_CRED_URL } s_cred_kind_t;

/*  The fields of an Azure SDK auth file (az ad sp create-for-rbac
    --sdk-auth) that Dexter keeps; others are ignored. */
static const struct {
    const char *key;
    bool required;
    s_cred_kind_t kind;
} s_credential_keys [] = {
    { "clientId",                       true,  S_CRED_GUID },
    { "clientSecret",                   true,  S_CRED_TEXT },
    { "subscriptionId",                 true,  S_CRED_GUID },
    { "tenantId",                       true,  S_CRED_TENANT },
    { "activeDirectoryEndpointUrl",     false, S_CRED_URL },
    { "resourceManagerEndpointUrl",     false, S_CRED_URL },
    { "activeDirectoryGraphResourceId", false, S_CRED_URL },
    { "sqlManagementEndpointUrl",       false, S_CRED_URL },
    { "galleryEndpointUrl",             false, S_CRED_URL },
    { "managementEndpointUrl",          false, S_CRED_URL },
};

static const char *const s_cred_rules [] = {
    [S_CRED_TEXT]   = "a non-empty string",
    [S_CRED_GUID]   = "a GUID",
    [S_CRED_TENANT] = "a GUID or a domain name",
    [S_CRED_URL]    = "an http:// or https:// URL",
};

/*  credentials: base64 of the Azure credentials JSON; the secrets kept are
    its known fields, as strings. */
static json_t *
s_check_credentials (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    s_json_found_t found = { NULL, 0, 0 };
    size_t len = 0;
    bool was_base64;
    unsigned char *data = s_decode_tolerant (text, s_judge_json, &found, &len, &was_base64);
    if (!data) {
        if (!was_base64)
            return s_fail (ctx, field->name, "%s is not base64 or base64url",
                           field->name);
        if (found.line <= 0)
            return s_fail (ctx, field->name, "%s must be base64 of the Azure "
                           "credentials file, a JSON object", field->name);
        return s_fail (ctx, field->name, "%s must be base64 of the Azure credentials "
                       "file, a JSON object (JSON error at line %d, column %d)",
                       field->name, found.line, found.column);
    }
    OPENSSL_cleanse (data, len);
    free (data);

    size_t errors = json_array_size (ctx->errors);
    json_t *result = json_object ();
    for (size_t i = 0; i < sizeof s_credential_keys / sizeof s_credential_keys [0]; i++) {
        const char *key = s_credential_keys [i].key;
        s_cred_kind_t kind = s_credential_keys [i].kind;
        json_t *member = json_object_get (found.object, key);
        const char *item = json_string_value (member);
        if (!member) {
            if (s_credential_keys [i].required)
                s_fail (ctx, field->name, "%s: %s is missing", field->name, key);
            continue;
        }
        bool ok = item && *item && strlen (item) <= S_MAX_LEN;
        if (ok && kind == S_CRED_GUID)
            ok = s_is_guid (item);
        else
        if (ok && kind == S_CRED_TENANT)
            ok = s_is_guid (item) || s_is_domain (item);
        else
        if (ok && kind == S_CRED_URL)
            ok = s_is_url (item);
        if (ok)
            json_object_set_new (result, key, json_string (item));
        else
            s_fail (ctx, field->name, "%s: %s must be %s", field->name, key,
                    s_cred_rules [kind]);
    }
    json_decref (found.object);
    if (json_array_size (ctx->errors) != errors) {
        json_decref (result);
        return NULL;
    }
    return result;
}


/*  ---------------------------------------------------------------------
    AWS credentials
    --------------------------------------------------------------------- */

/*  An access key id: uppercase letters and digits. */
static json_t *
s_check_aws_key_id (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    size_t len = strlen (text);
    if (len < (size_t) field->min || len > (size_t) field->max || !s_all_in (text, "A-Z0-9"))
        return s_fail (ctx, field->name, "%s must be %ld to %ld uppercase letters and "
                       "digits", field->name, field->min, field->max);
    return json_string (text);
}

/*  A secret access key or session token: base64-like characters, a space
    read as '+' (an unencoded '+' in curl -d arrives as a space). */
static json_t *
s_check_aws_secret (s_ctx_t *ctx, const s_field_t *field, const json_t *value)
{
    const char *text = s_text (ctx, field, value);
    if (!text)
        return NULL;
    char *secret = s_spaces_as_plus (text);
    if (!secret)
        return s_fail (ctx, field->name, "%s could not be read (out of memory)",
                       field->name);
    size_t len = strlen (secret);
    json_t *result = NULL;
    if (len < (size_t) field->min || len > (size_t) field->max
    ||  !s_all_in (secret, "A-Za-z0-9/+="))
        s_fail (ctx, field->name, "%s must be %ld to %ld characters of A-Z, a-z, "
                "0-9, '/', '+' and '='", field->name, field->min, field->max);
    else
        result = json_string (secret);
    OPENSSL_cleanse (secret, len);
    free (secret);
    return result;
}


/*  ---------------------------------------------------------------------
    The field tables, one per resource, in docs/api.md's order
    --------------------------------------------------------------------- */

static const char *const s_providers [] = { "aws", "azure", NULL };
static const char *const s_cluster_types [] = { "mesos", "dcos", NULL };
static const char *const s_commands [] = { "deploy", "destroy", NULL };

static const s_field_t s_cluster_fields [] = {
    { .name = "name",      .on = S_BOTH, .required = S_BOTH, .check = s_check_name },
    { .name = "provider",  .on = S_BOTH, .required = S_BOTH, .check = s_check_choice,
      .choices = s_providers },
    { .name = "type",      .on = S_BOTH, .required = S_BOTH, .check = s_check_choice,
      .choices = s_cluster_types },
};

static const s_field_t s_config_fields [] = {
    //  An odd count, so the Mesos/ZooKeeper quorum has a majority
    { .name = "masters",     .on = S_BOTH, .required = S_BOTH, .check = s_check_int,
      .min = 1, .max = 9, .flags = S_ODD },
    { .name = "master_type", .on = S_BOTH, .required = S_NONE,
      .check = s_check_instance_type, .dflt = { DX_SPEC_MASTER_TYPE_AWS, DX_SPEC_MASTER_TYPE_AZURE } },
    { .name = "region",      .on = S_AWS, .required = S_AWS, .check = s_check_region },
    { .name = "sshkey",      .on = S_AWS, .required = S_AWS, .check = s_check_printable,
      .min = 1, .max = 255 },
    { .name = "sshkeydata",  .on = S_AWS, .required = S_AWS, .check = s_check_sshkeydata,
      .max_len = 65536, .flags = S_SECRET },
    { .name = "location",    .on = S_AZURE, .required = S_AZURE,
      .check = s_check_location, .flags = S_MERGE },
    { .name = "ssh_user",    .on = S_AZURE, .required = S_AZURE,
      .check = s_check_ssh_user },
    { .name = "ssh_password", .on = S_AZURE, .required = S_AZURE,
      .check = s_check_ssh_password, .min = 6, .max = 72, .flags = S_SECRET },
    { .name = "image",       .on = S_BOTH, .required = S_NONE, .check = s_check_image },
};

static const s_field_t s_group_fields [] = {
    { .name = "name",       .on = S_BOTH, .required = S_BOTH, .check = s_check_group_name },
    { .name = "role",       .on = S_BOTH, .required = S_BOTH, .check = s_check_role },
    { .name = "attributes", .on = S_BOTH, .required = S_BOTH, .check = s_check_attributes,
      .max = 16 * 1024, .max_len = 64 * 1024 },
    { .name = "vars",       .on = S_BOTH, .required = S_BOTH, .check = s_check_vars,
      .max = 64 * 1024, .max_len = 256 * 1024 },
    { .name = "instance_type", .on = S_BOTH, .required = S_AZURE,
      .check = s_check_instance_type, .dflt = { "m5.xlarge", NULL } },
    { .name = "cpus",       .on = S_BOTH, .required = S_BOTH, .check = s_check_int,
      .min = 1, .max = 4096 },
    { .name = "ram",        .on = S_BOTH, .required = S_BOTH, .check = s_check_int,
      .min = 1, .max = 65536 },
    { .name = "disk_size",  .on = S_BOTH, .required = S_BOTH, .check = s_check_int,
      .min = 8, .max = 16384 },
    { .name = "customhwconf", .on = S_BOTH, .required = S_NONE,
      .check = s_check_customhwconf, .max = 16 * 1024, .max_len = 64 * 1024,
      .dflt = { "{\"disks\": []}", "{\"disks\": []}" } },
};

static const s_field_t s_deployment_fields [] = {
    { .name = "command",     .on = S_BOTH, .required = S_BOTH, .check = s_check_choice,
      .choices = s_commands },
    { .name = "parallelism", .on = S_BOTH, .required = S_NONE, .check = s_check_int,
      .min = 1, .max = 100, .dflt = { "5", "5" } },
    { .name = "aws_access_key_id", .on = S_AWS, .required = S_AWS,
      .check = s_check_aws_key_id, .min = 16, .max = 128, .flags = S_SECRET },
    { .name = "aws_secret_access_key", .on = S_AWS, .required = S_AWS,
      .check = s_check_aws_secret, .min = 16, .max = 128, .flags = S_SECRET },
    { .name = "aws_session_token", .on = S_AWS, .required = S_NONE,
      .check = s_check_aws_secret, .min = 1, .max = 4096, .flags = S_SECRET },
    { .name = "credentials", .on = S_AZURE, .required = S_AZURE,
      .check = s_check_credentials, .max_len = 65536, .flags = S_SECRET | S_MERGE },
};

/*  A group's size in hosts, from its instance type; needs the checked
    instance_type, cpus and ram (a fault there was reported already). */
static void
s_group_finish (s_ctx_t *ctx, json_t *out)
{
    const char *name = json_string_value (json_object_get (out, "instance_type"));
    const dx_instance_type_t *type =
        dx_catalog_instance (s_provider_names [ctx->provider], name);
    json_t *cpus = json_object_get (out, "cpus");
    json_t *ram = json_object_get (out, "ram");
    if (!type || !cpus || !ram)
        return;
    long hosts = dx_catalog_hosts (type, (long) json_integer_value (cpus),
                                   (long) json_integer_value (ram));
    if (hosts > DX_GROUP_HOSTS_MAX) {
        long by_cpus = dx_catalog_hosts (type, (long) json_integer_value (cpus), 0);
        s_fail (ctx, by_cpus > DX_GROUP_HOSTS_MAX? "cpus": "ram", "cpus %ld and ram %ld on "
                "%s (%d vCPU%s, %g GiB) need %ld hosts; a group may have at most %d: "
                "choose a larger instance_type or ask for less",
                (long) json_integer_value (cpus), (long) json_integer_value (ram),
                type->name, type->vcpus, type->vcpus == 1? "": "s", type->memory_gib,
                hosts, DX_GROUP_HOSTS_MAX);
        return;
    }
    json_object_set_new (out, "hosts", json_integer (hosts));
    json_object_set_new (out, "instance", json_pack ("{s:i, s:f}",
        "vcpus", type->vcpus, "memory_gib", type->memory_gib));
}

#define S_RESOURCE(fields, finish) \
    { fields, sizeof (fields) / sizeof ((fields) [0]), finish }
static const s_resource_t s_cluster = S_RESOURCE (s_cluster_fields, NULL);
static const s_resource_t s_config = S_RESOURCE (s_config_fields, NULL);
static const s_resource_t s_group = S_RESOURCE (s_group_fields, s_group_finish);
static const s_resource_t s_deployment = S_RESOURCE (s_deployment_fields, NULL);


/*  ---------------------------------------------------------------------
    The driver
    --------------------------------------------------------------------- */

/*  Checks one field of the table against the input: reports it missing,
    from the other provider or too long; applies its default; stores the
    normalized value in out or secrets. */
static void
s_field_run (s_ctx_t *ctx, const s_field_t *field, const json_t *in,
             json_t *out, json_t *secrets)
{
    unsigned mine = ctx->provider < 0? S_BOTH: 1u << ctx->provider;
    const json_t *value = json_object_get (in, field->name);
    if (json_is_null (value))
        value = NULL;                   /* JSON null: as if not sent */
    if (!(field->on & mine)) {
        if (value)
            s_fail (ctx, field->name, "%s is an %s parameter, not %s", field->name,
                    s_provider_names [field->on == S_AWS? 0: 1],
                    s_provider_names [ctx->provider]);
        return;
    }
    json_t *dflt = NULL;
    if (!value) {
        if (field->required & mine) {
            s_fail (ctx, field->name, "missing required field");
            return;
        }
        const char *text = ctx->provider < 0? NULL: field->dflt [ctx->provider];
        if (!text)
            return;
        value = dflt = json_string (text);
    }
    size_t max_len = field->max_len? field->max_len: S_MAX_LEN;
    json_t *result = NULL;
    if (json_is_string (value) && json_string_length (value) > max_len)
        s_fail (ctx, field->name, "%s is too long: at most %zu characters",
                field->name, max_len);
    else
    if (json_is_string (value)
    &&  strlen (json_string_value (value)) != json_string_length (value))
        s_fail (ctx, field->name, "%s must not contain NUL characters", field->name);
    else
        result = field->check (ctx, field, value);
    json_decref (dflt);
    if (!result)
        return;
    json_t *target = field->flags & S_SECRET? secrets: out;
    if (field->flags & S_MERGE) {
        json_object_update (target, result);
        json_decref (result);
    }
    else
        json_object_set_new (target, field->name, result);
}

/*  True if the resource has a field of this name (for any provider). */
static bool
s_known_field (const s_resource_t *resource, const char *name)
{
    for (size_t i = 0; i < resource->count; i++)
        if (strcmp (resource->fields [i].name, name) == 0)
            return true;
    return false;
}

/*  Validates `in` against a resource's table for a provider (-1: none).
    All faults go to errors; secrets reach the caller's object only when
    everything was valid. Returns the normalized object or NULL. */
static json_t *
s_validate (const s_resource_t *resource, int provider, const json_t *in,
            json_t *secrets, json_t *errors)
{
    json_t *own_errors = errors? NULL: json_array ();
    s_ctx_t ctx = { provider, errors? errors: own_errors };
    size_t before = json_array_size (ctx.errors);
    json_t *out = json_object ();
    json_t *found = json_object ();

    if (!json_is_object (in))
        s_fail (&ctx, "body", "the request must be an object of fields");
    else {
        for (size_t i = 0; i < resource->count; i++)
            s_field_run (&ctx, &resource->fields [i], in, out, found);
        if (resource->finish)
            resource->finish (&ctx, out);
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *) in, key, value)
            if (!s_known_field (resource, key))
                s_fail (&ctx, key, "unknown field");
    }
    bool ok = json_array_size (ctx.errors) == before;
    if (ok && secrets)
        json_object_update (secrets, found);
    json_decref (found);
    json_decref (own_errors);
    if (!ok) {
        json_decref (out);
        return NULL;
    }
    return out;
}

/*  s_validate for a provider named by the caller (the cluster's). */
static json_t *
s_validate_for (const char *provider, const s_resource_t *resource,
                const json_t *in, json_t *secrets, json_t *errors)
{
    int index = provider? s_find (s_providers, provider): -1;
    if (index < 0) {
        s_ctx_t ctx = { -1, errors };
        if (errors)
            s_fail (&ctx, "provider", "provider must be aws or azure");
        return NULL;
    }
    return s_validate (resource, index, in, secrets, errors);
}

/*  The public entry points: one table each (see the header for shapes). */
json_t *
dx_spec_cluster (const json_t *in, json_t *errors)
{
    return s_validate (&s_cluster, -1, in, NULL, errors);
}

json_t *
dx_spec_config (const char *provider, const json_t *in, json_t *secrets,
                json_t *errors)
{
    return s_validate_for (provider, &s_config, in, secrets, errors);
}

json_t *
dx_spec_group (const char *provider, const json_t *in, json_t *errors)
{
    return s_validate_for (provider, &s_group, in, NULL, errors);
}

json_t *
dx_spec_deployment (const char *provider, const json_t *in, json_t *secrets,
                    json_t *errors)
{
    return s_validate_for (provider, &s_deployment, in, secrets, errors);
}
