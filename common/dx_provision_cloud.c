/*  dx_provision_cloud: the #cloud-config part of the user data, whose
    write_files carries every file of the host. See dx_provision_host.h.

    Each file's content is one YAML double-quoted string: printable ASCII
    as it is but '"' and '\' escaped, newlines and tabs as \n and \t, and
    long strings folded with YAML's escaped line break ('\' at the end of
    a line, the next line's indentation dropped), only before a character
    that is not a space, so the folding adds and loses nothing. Anything
    else in a content is refused: no byte can end the string, and every
    line stays short (a MIME 7bit part takes at most 998 characters). */
#include "dx_provision_host.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define S_FOLD 72                       /* characters of content per line */

void
dx_prov_file (dx_prov_t *self, const char *path, const char *mode, const char *content)
{
    for (const char *c = content; *c; c++)
        if (!((*c >= 0x20 && *c < 0x7f) || *c == '\n' || *c == '\t')) {
            dx_prov_fail (self, "the content of %s has a character other than printable "
                          "ASCII, newline and tab", path);
            return;
        }
    json_array_append_new (self->files, json_pack ("[s, s, s]", path, mode, content));
}

void
dx_prov_file_fmt (dx_prov_t *self, const char *path, const char *mode, const char *fmt, ...)
{
    char *content = NULL;
    va_list args;
    va_start (args, fmt);
    int rc = vasprintf (&content, fmt, args);
    va_end (args);
    if (rc < 0) {
        dx_prov_fail (self, "out of memory");
        return;
    }
    dx_prov_file (self, path, mode, content);
    free (content);
}

/*  content as a YAML double-quoted string, folded, after `indent`. */
static void
s_quoted (FILE *out, const char *content, const char *indent)
{
    fputc ('"', out);
    size_t column = 0;
    for (const char *c = content; *c; c++) {
        if (column >= S_FOLD && *c != ' ' && *c != '\t') {
            fprintf (out, "\\\n%s", indent);
            column = 0;
        }
        switch (*c) {
            case '\n': fputs ("\\n", out); break;
            case '\t': fputs ("\\t", out); break;
            case '"':  fputs ("\\\"", out); break;
            case '\\': fputs ("\\\\", out); break;
            default:   fputc (*c, out);
        }
        column++;
    }
    fputc ('"', out);
}

char *
dx_prov_cloud_config (dx_prov_t *self)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out) {
        dx_prov_fail (self, "out of memory");
        return NULL;
    }
    fprintf (out, "#cloud-config\n");
    fprintf (out, "# Dexter: cluster %s (%s on %s), host %s, role %s.\n", self->cluster,
             self->type, self->provider, self->hostname, self->role);
    fprintf (out, "# Written by common/dx_provision; the shell part runs after these files.\n");
    fprintf (out, "write_files:\n");
    size_t i;
    json_t *file;
    json_array_foreach (self->files, i, file) {
        //  Paths and modes are the module's own: letters, digits, /._-@
        fprintf (out, "  - path: %s\n", json_string_value (json_array_get (file, 0)));
        fprintf (out, "    owner: root:root\n");
        fprintf (out, "    permissions: '%s'\n", json_string_value (json_array_get (file, 1)));
        fprintf (out, "    content: ");
        s_quoted (out, json_string_value (json_array_get (file, 2)), "      ");
        fputc ('\n', out);
    }
    if (fclose (out) != 0) {
        free (text);
        dx_prov_fail (self, "out of memory");
        return NULL;
    }
    return text;
}
