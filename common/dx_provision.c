/*  dx_provision: the user data of a host. See dx_provision.h.

    Three passes: the step and the settings are read and checked into a
    dx_prov_t (nothing is written from an unchecked value); the parts are
    written (dx_provision_base.c, dx_provision_roles.c: files and shell
    lines; dx_provision_cloud.c: the #cloud-config of the files); the two
    parts are joined as MIME multipart, and for the user data gzipped when
    over the provider's limit and base64-encoded. The document depends on
    nothing but its inputs (no time, no randomness, a fixed boundary), so
    a step run again sends the same user data: EC2 matches a ClientToken's
    parameters, user data included. */
#include "dx_provision.h"
#include "dx_provision_host.h"
#include "dx_config.h"
#include "dx_spec.h"
#include "dx_util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sodium.h>
#include <zlib.h>

/*  The MIME boundary. Every line of either part is the module's own, or a
    content line of the cloud-config that starts with spaces, so no line
    can be a delimiter; the join checks anyway. */
#define S_BOUNDARY "==DEXTER-USER-DATA-7f3a9c=="

/*  The head of a part: ASCII text, lines short enough for 7bit. */
#define S_PART_HEADER(type, name) \
    "Content-Type: " type "; charset=\"us-ascii\"\n" \
    "MIME-Version: 1.0\n" \
    "Content-Transfer-Encoding: 7bit\n" \
    "Content-Disposition: attachment; filename=\"" name "\"\n\n"

void
dx_prov_fail (dx_prov_t *self, const char *fmt, ...)
{
    if (self->failed)
        return;                         /* the first fault is the one to say */
    self->failed = true;
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->err, self->errlen, fmt, args);
    va_end (args);
}

void
dx_prov_sh (dx_prov_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vfprintf (self->sh, fmt, args);
    va_end (args);
    fputc ('\n', self->sh);
}

void
dx_prov_sh_lines (dx_prov_t *self, const char *const *lines)
{
    for (; *lines; lines++) {
        fputs (*lines, self->sh);
        fputc ('\n', self->sh);
    }
}

char *
dx_prov_zk_url (const dx_prov_t *self, const char *path)
{
    size_t size = 6 + self->master_count * 22 + strlen (path) + 1;
    char *url = malloc (size);
    if (!url)
        return NULL;
    strcpy (url, "zk://");
    for (size_t i = 0; i < self->master_count; i++) {
        if (i)
            strcat (url, ",");
        strcat (url, self->masters [i]);
        strcat (url, ":2181");
    }
    strcat (url, path);
    return url;
}

int
dx_prov_chars (const char *text, size_t max, const char *extra)
{
    size_t len = text? strlen (text): 0;
    if (len == 0 || len > max)
        return 0;
    for (const char *c = text; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
           || (*c >= '0' && *c <= '9') || strchr (extra, *c)))
            return 0;
    return 1;
}

const char *
dx_prov_scalar (const json_t *value, char *buf, size_t size)
{
    if (json_is_string (value))
        return json_string_value (value);
    if (json_is_integer (value))
        snprintf (buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value (value));
    else
    if (json_is_real (value))
        snprintf (buf, size, "%.17g", json_real_value (value));
    else
    if (json_is_boolean (value))
        return json_is_true (value)? "true": "false";
    else
        return NULL;
    return buf;
}

/*  The string field of step, checked; "" allowed when may_be_empty. */
static const char *
s_field (dx_prov_t *self, const json_t *step, const char *name, size_t max,
         const char *extra, bool may_be_empty)
{
    const char *text = json_string_value (json_object_get (step, name));
    if (may_be_empty && (!text || !*text))
        return "";
    if (!dx_prov_chars (text, max, extra)) {
        dx_prov_fail (self, "host step: %s is missing or has characters other than "
                      "letters, digits and '%s'", name, extra);
        return "";
    }
    return text;
}

/*  1 if text is an IPv4 address in dotted-quad form. */
static int
s_ipv4 (const char *text)
{
    struct in_addr addr;
    return text && strlen (text) < 16 && inet_pton (AF_INET, text, &addr) == 1;
}

bool
dx_provision_url_valid (const char *url)
{
    return url && (strncmp (url, "http://", 7) == 0 || strncmp (url, "https://", 8) == 0)
        && dx_prov_chars (url, 1024, ":/._~%+=?&@,-");
}

/*  A setting's value (dx_config_str: the default when unset or empty,
    as docker compose passes an unset variable on); `none` is "" for a
    setting that may be switched off. Checked against the characters a
    URL (or a version, a distribution) may hold here, none of them a
    shell's or YAML's quote; name is the variable, for the message. */
static const char *
s_setting (dx_prov_t *self, const char *name, const char *value, bool url)
{
    if (!*value || strcmp (value, "none") == 0)
        return "";
    bool ok = url? dx_provision_url_valid (value): dx_prov_chars (value, 64, ".+~:-_");
    if (!ok)
        dx_prov_fail (self, "%s is not %s (docs/provision.md)", name,
                      url? "an http or https URL of letters, digits and :/._~%+=?&@,-"
                         : "letters, digits and .+~:-_");
    return ok? value: "";
}

static void
s_settings (dx_prov_t *self)
{
    dx_prov_settings_t *s = &self->settings;
    s->mesos_apt_repo = s_setting (self, "DEXTER_MESOS_APT_REPO",
        dx_config_str ("MESOS_APT_REPO", DX_PROVISION_MESOS_APT_REPO), true);
    if (!*s->mesos_apt_repo)
        dx_prov_fail (self, "DEXTER_MESOS_APT_REPO cannot be none (docs/provision.md)");
    s->mesos_apt_dist = s_setting (self, "DEXTER_MESOS_APT_DIST",
        dx_config_str ("MESOS_APT_DIST", ""), false);
    s->mesos_apt_key_url = s_setting (self, "DEXTER_MESOS_APT_KEY_URL",
        dx_config_str ("MESOS_APT_KEY_URL", DX_PROVISION_MESOS_APT_KEY_URL), true);
    s->mesos_version = s_setting (self, "DEXTER_MESOS_VERSION",
        dx_config_str ("MESOS_VERSION", ""), false);
    s->marathon_version = s_setting (self, "DEXTER_MARATHON_VERSION",
        dx_config_str ("MARATHON_VERSION", ""), false);
}

/*  The DC/OS installer's URL: the step's dcos_installer_url, the
    scheduler's DEXTER_DCOS_INSTALLER_URL, without which a dcos access
    node (the bootstrap node) cannot be made. */
static void
s_installer (dx_prov_t *self, const json_t *step)
{
    const json_t *value = json_object_get (step, "dcos_installer_url");
    const char *url = value? json_string_value (value): "";
    self->settings.dcos_installer_url = "";
    if (!url)
        dx_prov_fail (self, "host step: dcos_installer_url must be a string");
    else
    if (*url && !dx_provision_url_valid (url))
        dx_prov_fail (self, "host step: dcos_installer_url is not an http or https URL of "
                      "letters, digits and :/._~%%+=?&@,- (DEXTER_DCOS_INSTALLER_URL)");
    else
    if (!*url && strcmp (self->type, "dcos") == 0 && strcmp (self->role, "access") == 0)
        dx_prov_fail (self, "host step: no dcos_installer_url: the access node of a dcos "
                      "cluster serves the DC/OS installer from it; the scheduler's "
                      "DEXTER_DCOS_INSTALLER_URL sets it (docs/provision.md)");
    else
        self->settings.dcos_installer_url = url;
}

/*  The masters of context.masters_ips, and a master's ZooKeeper id: its
    place among them (its private_ip's), so every master numbers the
    ensemble alike. */
static void
s_masters (dx_prov_t *self, const json_t *step)
{
    const json_t *context = json_object_get (step, "context");
    const char *list = json_string_value (json_object_get (context, "masters_ips"));
    if (list && *list) {
        const char *start = list;
        while (!self->failed) {
            size_t len = strcspn (start, ",");
            char ip [16] = "";
            if (len < sizeof ip)
                memcpy (ip, start, len);
            if (len >= sizeof ip || !s_ipv4 (ip))
                dx_prov_fail (self, "host step: context.masters_ips must be IPv4 addresses "
                              "separated by commas");
            else
            if (self->master_count == DX_PROV_MASTERS_MAX)
                dx_prov_fail (self, "host step: more than %d masters", DX_PROV_MASTERS_MAX);
            else
                strcpy (self->masters [self->master_count++], ip);
            if (!start [len])
                break;
            start += len + 1;
        }
    }
    if (self->failed)
        return;
    bool needs = strcmp (self->role, "access") != 0 || strcmp (self->type, "dcos") == 0;
    if (needs && self->master_count == 0) {
        dx_prov_fail (self, "host step: context.masters_ips is empty; a %s %s needs the masters",
                      self->type, self->role);
        return;
    }
    if (strcmp (self->role, "master") == 0) {
        for (size_t i = 0; i < self->master_count; i++)
            if (strcmp (self->masters [i], self->private_ip) == 0)
                self->zk_id = i + 1;
        if (!self->zk_id)
            dx_prov_fail (self, "host step: a master's private_ip (%s) must be one of "
                          "context.masters_ips", *self->private_ip? self->private_ip: "none");
    }
}

/*  Reads and checks the step into self. */
static void
s_read (dx_prov_t *self, const char *cluster, const json_t *step, const json_t *credentials)
{
    if (!dx_spec_name_valid (cluster)) {
        dx_prov_fail (self, "host step: the cluster name is missing or not a name");
        return;
    }
    if (!json_is_object (step)) {
        dx_prov_fail (self, "host step: not an object");
        return;
    }
    self->cluster = cluster;
    self->role = s_field (self, step, "role", 16, "", false);
    self->type = s_field (self, step, "cluster_type", 16, "", false);
    self->provider = s_field (self, step, "provider", 16, "", false);
    const json_t *batch = json_object_get (step, "batch");
    if (batch) {
        //  A batch of agents: each works its name out (dx_provision.h)
        self->batched = true;
        self->hostname_prefix = s_field (self, step, "hostname_prefix", 54, "-", false);
        self->batch = json_is_integer (batch)? (long long) json_integer_value (batch): -1;
        if (self->batch < 0 || self->batch > 99999999)
            dx_prov_fail (self, "host step: batch must be a slot, 0 to 99999999");
        snprintf (self->batch_label, sizeof self->batch_label, "%s(%lld+index)",
                  self->hostname_prefix, self->batch);
        self->hostname = self->batch_label;
    }
    else
        self->hostname = s_field (self, step, "hostname", 63, "-", false);
    self->group = json_string_value (json_object_get (step, "group"));
    if (!dx_spec_name_valid (self->group))
        dx_prov_fail (self, "host step: group is missing or not a name");
    self->group_role = s_field (self, step, "group_role", 64, "-_*.", true);
    self->private_ip = json_string_value (json_object_get (step, "private_ip"));
    if (!self->private_ip)
        self->private_ip = "";
    if (*self->private_ip && !s_ipv4 (self->private_ip))
        dx_prov_fail (self, "host step: private_ip is not an IPv4 address");
    if (self->failed)
        return;
    if (strcmp (self->role, "access") && strcmp (self->role, "master") && strcmp (self->role, "agent"))
        dx_prov_fail (self, "host step: role must be access, master or agent");
    if (strcmp (self->type, "mesos") && strcmp (self->type, "dcos"))
        dx_prov_fail (self, "host step: cluster_type must be mesos or dcos");
    if (strcmp (self->provider, "aws") && strcmp (self->provider, "azure"))
        dx_prov_fail (self, "host step: provider must be aws or azure");
    if (self->batched && (strcmp (self->provider, "aws") || strcmp (self->role, "agent")))
        dx_prov_fail (self, "host step: only aws agents come in batches (the slot is EC2's "
                      "ami-launch-index plus the batch)");
    if (!*self->group_role)
        self->group_role = strcmp (self->role, "agent") == 0? "*": self->role;

    static const char *objects [] = { "attributes", "vars" };
    const json_t **slots [] = { &self->attributes, &self->vars };
    for (size_t i = 0; i < 2; i++) {
        const json_t *value = json_object_get (step, objects [i]);
        if (value && !json_is_object (value))
            dx_prov_fail (self, "host step: %s must be an object", objects [i]);
        *slots [i] = value;
    }
    self->disks = json_object_get (step, "disks");
    if (self->disks && !json_is_array (self->disks))
        dx_prov_fail (self, "host step: disks must be an array");
    self->vpn = json_object_get (credentials, "vpn");
    if (!self->vpn)
        self->vpn = json_object_get (step, "vpn");
    if (self->vpn && !json_is_object (self->vpn))
        dx_prov_fail (self, "host step: vpn must be an object");
    if (self->vpn && strcmp (self->role, "access") != 0)
        dx_prov_fail (self, "host step: only the access node takes a vpn server bundle");
    if (self->failed)
        return;
    s_masters (self, step);
    s_settings (self);
    if (!self->failed)
        s_installer (self, step);
}

/*  Wipes every string in value (an array of arrays, or an object). */
static void
s_wipe_strings (json_t *value)
{
    if (json_is_string (value))
        sodium_memzero ((char *) json_string_value (value), json_string_length (value));
    size_t i;
    json_t *item;
    json_array_foreach (value, i, item)
        s_wipe_strings (item);
    const char *key;
    json_object_foreach (value, key, item)
        s_wipe_strings (item);
}

/*  text's lines never start with the boundary's delimiter. */
static bool
s_no_delimiter (const char *text)
{
    const char *delimiter = "\n--" S_BOUNDARY;
    return strncmp (text, delimiter + 1, strlen (delimiter) - 1) != 0
        && !strstr (text, delimiter);
}

char *
dx_provision_document (const char *cluster, const json_t *step, const json_t *credentials,
                       char *err, size_t errlen)
{
    char scratch [8];
    dx_prov_t self = { .err = err? err: scratch, .errlen = err? errlen: sizeof scratch };
    *self.err = 0;
    json_t *empty = json_object ();
    json_t *no_disks = json_array ();
    //  A job's credentials are strings (proto/PROTOCOL.md): there the
    //  bundle comes as its JSON text
    json_t *opened = NULL;
    const char *bundle = json_string_value (json_object_get (credentials, "vpn"));
    if (bundle) {
        json_t *vpn = json_loads (bundle, JSON_REJECT_DUPLICATES, NULL);
        opened = json_pack ("{s:o}", "vpn", vpn? vpn: json_string ("not JSON"));
        credentials = opened;
    }
    s_read (&self, cluster, step, credentials);
    if (!self.attributes)
        self.attributes = empty;
    if (!self.vars)
        self.vars = empty;
    if (!self.disks)
        self.disks = no_disks;

    char *shell = NULL, *config = NULL, *document = NULL;
    size_t size = 0;
    self.files = json_array ();
    self.sh = self.failed? NULL: open_memstream (&shell, &size);
    if (!self.failed && (!self.sh || !self.files))
        dx_prov_fail (&self, "out of memory");
    if (!self.failed) {
        dx_prov_base (&self);
        dx_prov_role (&self);
        dx_prov_sh (&self, "%s", "");
        dx_prov_sh (&self, "echo \"dexter: provisioning ends $(date -u +%%FT%%TZ)\"");
    }
    if (self.sh && fclose (self.sh) != 0)
        dx_prov_fail (&self, "out of memory");
    if (!self.failed)
        config = dx_prov_cloud_config (&self);
    if (!self.failed && (!s_no_delimiter (shell) || !s_no_delimiter (config)))
        dx_prov_fail (&self, "host step: a part would hold the MIME boundary");
    if (!self.failed) {
        if (asprintf (&document,
                "Content-Type: multipart/mixed; boundary=\"" S_BOUNDARY "\"\n"
                "MIME-Version: 1.0\n\n"
                "--" S_BOUNDARY "\n" S_PART_HEADER ("text/cloud-config", "dexter.cfg") "%s"
                "--" S_BOUNDARY "\n" S_PART_HEADER ("text/x-shellscript", "dexter.sh") "%s"
                "--" S_BOUNDARY "--\n", config, shell) < 0) {
            document = NULL;
            dx_prov_fail (&self, "out of memory");
        }
    }
    free (shell);
    //  The bundle's keys were in these: wiped before they are freed
    s_wipe_strings (self.files);
    s_wipe_strings (json_object_get (opened, "vpn"));
    dx_free_wiped (config);
    json_decref (self.files);
    json_decref (empty);
    json_decref (no_disks);
    json_decref (opened);
    if (self.failed) {
        dx_free_wiped (document);
        return NULL;
    }
    return document;
}

/*  data gzipped (no name, no time: the same bytes every time); *size in
    and out. Caller frees. */
static unsigned char *
s_gzip (const char *data, size_t *size)
{
    z_stream z = { 0 };
    if (deflateInit2 (&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong bound = deflateBound (&z, (uLong) *size);
    unsigned char *out = malloc (bound);
    if (!out) {
        deflateEnd (&z);
        return NULL;
    }
    z.next_in = (Bytef *) data;
    z.avail_in = (uInt) *size;
    z.next_out = out;
    z.avail_out = (uInt) bound;
    int rc = deflate (&z, Z_FINISH);
    *size = z.total_out;
    deflateEnd (&z);
    if (rc != Z_STREAM_END) {
        free (out);
        return NULL;
    }
    return out;
}

/*  The host name of a step for a message: its hostname, or its batch's
    prefix. */
static const char *
s_hostname_of (const json_t *step)
{
    const char *name = json_string_value (json_object_get (step, "hostname"));
    if (!name)
        name = json_string_value (json_object_get (step, "hostname_prefix"));
    return name? name: "?";
}

char *
dx_provision_user_data (const char *cluster, const json_t *step, const json_t *credentials,
                        char *err, size_t errlen)
{
    char *document = dx_provision_document (cluster, step, credentials, err, errlen);
    if (!document)
        return NULL;
    bool aws = strcmp (json_string_value (json_object_get (step, "provider")), "aws") == 0;
    size_t limit = aws? DX_PROVISION_AWS_MAX_BYTES: DX_PROVISION_AZURE_MAX_BYTES;
    size_t size = strlen (document);
    char *user_data = NULL;
    if (size <= limit)
        user_data = dx_base64_encode ((const unsigned char *) document, size);
    else {
        size_t plain = size;
        unsigned char *packed = s_gzip (document, &size);
        if (packed && size <= limit)
            user_data = dx_base64_encode (packed, size);
        else
        if (packed && err)
            snprintf (err, errlen, "the user data of host %s is %zu bytes, %zu gzipped; %s takes "
                      "at most %zu (the group's vars and attributes are too large)",
                      s_hostname_of (step), plain, size,
                      aws? "EC2": "Azure", limit);
        dx_free_wiped (packed);
    }
    if (!user_data && err && !*err)
        snprintf (err, errlen, "out of memory");
    dx_free_wiped (document);
    return user_data;
}
