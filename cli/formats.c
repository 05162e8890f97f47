/* formats.c: a template's format metadata, read from its comments: the
 * defaults a built-in format brings (its limits, compression and index:
 * {{! sqlfeed-defaults: split-rows=50000 split-bytes=50M compress=gzip
 * index=sitemap-index lastmod=lastmod }}), applied to an output where the
 * user said nothing else, and the comment text `sqlfeed templates` shows. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats.h"

static int is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

int cli_format_comment(const char *text, size_t len, const char *key, char *out, size_t n)
{
    size_t klen = strlen(key);
    if (n)
        out[0] = '\0';
    for (size_t i = 0; text && i + 3 <= len; i++) {
        if (memcmp(text + i, "{{!", 3) != 0)
            continue;
        size_t p = i + 3;
        while (p < len && is_space(text[p]))
            p++;
        if (p + klen + 1 > len || memcmp(text + p, key, klen) != 0 || text[p + klen] != ':')
            continue;
        p += klen + 1;
        size_t e = p;
        while (e + 1 < len && !(text[e] == '}' && text[e + 1] == '}'))
            e++;
        if (e + 1 >= len)
            return 0; /* not closed: the template's load says so */
        while (p < e && is_space(text[p]))
            p++;
        while (e > p && is_space(text[e - 1]))
            e--;
        if (n)
            snprintf(out, n, "%.*s", (int)(e - p), text + p);
        return 1;
    }
    return 0;
}

/* A template file's text (malloc'd), NULL when it cannot be read or is not
 * a regular file: a pipe (--template <(...)) is read once, by the load. */
static char *read_all(const char *path, size_t *len)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *nb = cap < (64u << 20) ? realloc(buf, cap *= 2) : NULL; /* a template's limit */
        if (!nb)
            free(buf);
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Whether -o PATH is written in place rather than created by sqlfeed: '-';
 * an existing device, FIFO or socket (/dev/null, >(...), /dev/stdout on a
 * terminal or a pipe); or a name in a kernel file system, where sqlfeed
 * never creates a file (sf_output_kernel_dir): /dev/stdout, /dev/fd/N and
 * /proc/self/fd/N name a descriptor even when it is a regular file, and the
 * sink writes them as one: sf_output_names_descriptor() is the sink's own
 * test, symlinks followed. */
static int written_in_place(const char *path)
{
    struct stat sb;
    if (!strcmp(path, "-") || (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)))
        return 1;
    if (sf_output_names_descriptor(path)) /* the sink's own rule */
        return 1;
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (slash == path ? 1 : (int)(slash - path)) : 1,
             slash ? path : ".");
    return sf_output_kernel_dir(dir);
}

/* The user named the parts (a %d in -o, or --parts): sqlfeed derives
 * neither their names nor their compression (the names say it). */
static int names_own_parts(const cli_output *c)
{
    return c->parts_given || (c->path && strchr(c->path, '%'));
}

/* -o names a document that is not the parts (no %d in it): with a split,
 * the index over them. --parts names the parts, not an index: the default
 * index still applies (-o sitemap.xml --parts 'pp-%r-%d.xml'). */
static int path_is_document(const cli_output *c)
{
    return c->path && !strchr(c->path, '%');
}

int cli_format_defaults(cli_output *c, const char *file)
{
    char defs[1024];
    size_t len = 0;
    const char *text = file ? NULL : sf_builtin_template_text(c->template, &len);
    char *own = file ? read_all(file, &len) : NULL;
    if (own)
        text = own;
    int found = text && cli_format_comment(text, len, "sqlfeed-defaults", defs, sizeof defs);
    free(own);
    /* Only a file sqlfeed creates takes them: stdout, a descriptor, a
     * device or a FIFO is one plain stream (no split, no index). */
    if (!found || !c->path || written_in_place(c->path))
        return EXIT_OK;
    static const char *const keys[] = {"split-rows", "split-bytes", "compress", "index",
                                       "lastmod"};
    char *vals[5] = {NULL, NULL, NULL, NULL, NULL};
    int rc = EXIT_OK;
    for (char *save = NULL, *tok = strtok_r(defs, " \t\r\n", &save); tok && rc == EXIT_OK;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        char *eq = strchr(tok, '=');
        size_t k = 0;
        while (eq && k < 5 && (strlen(keys[k]) != (size_t)(eq - tok) ||
                               strncmp(tok, keys[k], (size_t)(eq - tok)) != 0))
            k++;
        if (!eq || k == 5 || !eq[1]) {
            cli_error("template %s: sqlfeed-defaults: '%s' is not KEY=VALUE with a KEY of "
                      "split-rows, split-bytes, compress, index, lastmod", file ? file : c->template,
                      tok);
            rc = EXIT_TEMPLATE;
        } else
            vals[k] = eq + 1;
    }
    char how[160];
    const char *name = file ? file : c->template;
    for (size_t k = 0; rc == EXIT_OK && k < 2; k++) /* the limits: per key */
        if (vals[k] && !(k == 0 ? c->split_rows : c->split_bytes)) {
            snprintf(how, sizeof how, "%s= of %s's sqlfeed-defaults", keys[k], name);
            rc = cli_output_set(c, keys[k], vals[k], how);
        }
    int split = c->split_rows || c->split_bytes;
    if (rc == EXIT_OK && split && vals[2] && !c->compress && !names_own_parts(c)) {
        snprintf(how, sizeof how, "compress= of %s's sqlfeed-defaults", name);
        rc = cli_output_set(c, "compress", vals[2], how);
    }
    if (rc == EXIT_OK && split && vals[3] && !c->index && path_is_document(c)) {
        char why[160];
        if (!c->base_url) {
            cli_error("%s: %s writes its parts with an index of their absolute URLs "
                      "(index=%s, the format's default): give --base-url URL, where the "
                      "parts will be served (an --output: base-url=URL), or -o - (or "
                      "--no-defaults) for one plain document",
                      c->option ? c->option : "-o", name, vals[3]);
            rc = EXIT_USAGE;
        } else if (c->parts_given && !cli_pattern_check(c->parts, 1, why, sizeof why)) {
            cli_error("%s: %s's parts get an index (index=%s, the format's default), "
                      "written to %s, and their pattern '%s' has %s; or give --no-defaults "
                      "(none of the format's defaults)",
                      c->option ? c->option : "-o", name, vals[3], c->path, c->parts, why);
            rc = EXIT_USAGE;
        } else {
            snprintf(how, sizeof how, "index= of %s's sqlfeed-defaults", name);
            rc = cli_output_set(c, "index", vals[3], how);
        }
    }
    if (rc == EXIT_OK && c->index && vals[4] && !c->lastmod) {
        snprintf(how, sizeof how, "lastmod= of %s's sqlfeed-defaults", name);
        rc = cli_output_set(c, "lastmod", vals[4], how);
    }
    return rc;
}
