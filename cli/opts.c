/* opts.c: the outputs of `sqlfeed render`: the per-output options
 * (compression, level, split, parts, index, base URL, lastmod), the
 * --output TEMPLATE=PATH[,key=value...] syntax, and the checks that make a
 * set of options mean one thing (docs: render --help, README "Several
 * outputs").
 *
 * Why TEMPLATE=PATH,key=value with backslash escapes: one option per
 * document keeps everything about it in one word a shell line or a crontab
 * can carry, in the spelling the single-output options already use (the
 * keys are the long options without "--"); a comma or '=' in a file name is
 * rare, and `\,` `\=` `\\` write them. A feed file listing the outputs
 * would be one more format to learn and one more input to check. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "monitor.h"

static const char *const compress_names[] = {"auto", "none", "gzip", "zstd"};

void cli_output_clear(cli_output *o)
{
    char **fields[] = {&o->option,      &o->template, &o->path,  &o->compress,
                       &o->level,       &o->split_rows, &o->split_bytes, &o->parts,
                       &o->index,       &o->base_url, &o->lastmod};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
    o->parts_given = 0;
}

int cli_output_has_options(const cli_output *o)
{
    return o->compress || o->level || o->split_rows || o->split_bytes || o->parts || o->index ||
           o->base_url || o->lastmod;
}

/* "auto" "none" "gzip" "zstd" or NULL (unknown). */
static const char *compress_name(const char *v)
{
    for (size_t i = 0; i < sizeof compress_names / sizeof compress_names[0]; i++)
        if (!strcmp(v, compress_names[i]))
            return compress_names[i];
    return NULL;
}

/* A whole number > 0 (no sign, no suffix), into *n. */
static int parse_count(const char *s, unsigned long long *n)
{
    char *end;
    if (!*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    *n = strtoull(s, &end, 10);
    return errno || *end || *n == 0 ? -1 : 0;
}

int cli_output_set(cli_output *o, const char *key, const char *value, const char *how)
{
    char canon[32];
    const char *v = value;
    char **slot = NULL;
    if (!strcmp(key, "template")) {
        slot = &o->template;
    } else if (!strcmp(key, "path")) {
        slot = &o->path;
    } else if (!strcmp(key, "compress")) {
        if (!(v = compress_name(value)))
            return cli_usage("render", "%s takes auto, none, gzip or zstd, got '%s'", how, value);
        slot = &o->compress;
    } else if (!strcmp(key, "level")) {
        size_t digits = strspn(value, "0123456789");
        if (strcmp(value, "best") && (!digits || value[digits] || digits > 3))
            return cli_usage("render", "%s takes a compression level (a number, or best), got "
                                       "'%s'", how, value);
        slot = &o->level;
    } else if (!strcmp(key, "split-rows")) {
        unsigned long long n;
        if (parse_count(value, &n) != 0)
            return cli_usage("render", "%s needs a number of rows (1 or more), got '%s'", how,
                             value);
        snprintf(canon, sizeof canon, "%llu", n);
        v = canon;
        slot = &o->split_rows;
    } else if (!strcmp(key, "split-bytes")) {
        uint64_t n;
        if (parse_size(value, &n) != 0 || n == 0)
            return cli_usage("render", "%s needs a size like 50M (bytes, or K, M, G: powers of "
                                       "1024), got '%s'", how, value);
        snprintf(canon, sizeof canon, "%llu", (unsigned long long)n);
        v = canon;
        slot = &o->split_bytes;
    } else if (!strcmp(key, "parts")) {
        slot = &o->parts;
    } else if (!strcmp(key, "index")) {
        slot = &o->index;
    } else if (!strcmp(key, "base-url")) {
        slot = &o->base_url;
    } else if (!strcmp(key, "lastmod")) {
        slot = &o->lastmod;
    } else {
        return cli_usage("render", "%s: unknown key '%s' (compress, level, split-rows, "
                                   "split-bytes, parts, index, base-url, lastmod)", how, key);
    }
    if (!*value && slot != &o->base_url)
        return cli_usage("render", "%s needs a value", how);
    if (*slot) {
        if (!strcmp(*slot, v))
            return EXIT_OK;
        return cli_usage("render", "%s given twice: '%s' and '%s'", how, *slot, v);
    }
    if (!(*slot = strdup(v))) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    if (slot == &o->parts)
        o->parts_given = 1;
    return EXIT_OK;
}

/* Copies the spec's text up to an unescaped stop character (or the end)
 * into a malloc'd string with the escapes removed; *p moves past it. NULL
 * with *bad set for a backslash at the end, or out of memory. */
static char *take(const char **p, const char *stops, int *bad)
{
    const char *s = *p;
    size_t n = strlen(s), k = 0;
    char *out = malloc(n + 1);
    *bad = 0;
    if (!out)
        return NULL;
    while (*s && !strchr(stops, *s)) {
        if (*s == '\\') {
            if (!s[1]) {
                free(out);
                *bad = 1;
                return NULL;
            }
            s++;
        }
        out[k++] = *s++;
    }
    out[k] = '\0';
    *p = s;
    return out;
}

int cli_output_parse(cli_output *o, const char *spec, int n)
{
    char how[64], keyhow[128];
    snprintf(how, sizeof how, "--output #%d", n);
    if (!(o->option = strdup(how))) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    const char *p = spec;
    int bad, rc;
    char *tpl = take(&p, "=,", &bad), *path = NULL;
    if (!tpl)
        goto fail;
    if (*p != '=' || !*tpl) {
        free(tpl);
        return cli_usage("render", "%s needs TEMPLATE=PATH[,key=value...], got '%s'", how, spec);
    }
    p++;
    if (!(path = take(&p, ",", &bad)))
        goto fail_tpl;
    if (!*path) {
        free(tpl);
        free(path);
        return cli_usage("render", "%s needs TEMPLATE=PATH[,key=value...] (no PATH in '%s')", how,
                         spec);
    }
    o->template = tpl;
    o->path = path;
    while (*p == ',') {
        p++;
        char *key = take(&p, "=,", &bad), *val = NULL;
        if (!key)
            goto fail;
        if (*p != '=') {
            rc = cli_usage("render", "%s: '%s' needs key=value (in '%s')", how, key, spec);
            free(key);
            return rc;
        }
        p++;
        if (!(val = take(&p, ",", &bad))) {
            free(key);
            goto fail;
        }
        snprintf(keyhow, sizeof keyhow, "%s= of %s", key, how);
        rc = cli_output_set(o, key, val, keyhow);
        free(key);
        free(val);
        if (rc != EXIT_OK)
            return rc;
    }
    return EXIT_OK;
fail_tpl:
    free(tpl);
fail:
    if (bad)
        return cli_usage("render", "%s: a backslash at the end of '%s' (write \\\\ for one)", how,
                         spec);
    cli_error("out of memory");
    return EXIT_FAILURE_OTHER;
}

/* The codec a file name's suffix chooses. */
static const char *codec_of_name(const char *path)
{
    size_t n = strlen(path);
    if (n > 3 && !strcmp(path + n - 3, ".gz"))
        return "gzip";
    if (n > 4 && !strcmp(path + n - 4, ".zst"))
        return "zstd";
    return "none";
}

static const char *suffix_of_codec(const char *codec)
{
    return !strcmp(codec, "gzip") ? ".gz" : !strcmp(codec, "zstd") ? ".zst" : "";
}

static int is_split(const cli_output *o) { return o->split_rows || o->split_bytes; }

/* The file whose suffix decides "auto": the parts when split, else the
 * document. A derived pattern takes its suffix from the codec, so with
 * --index it is the index's name that decides. */
const char *cli_output_codec(const cli_output *o)
{
    if (o->compress && strcmp(o->compress, "auto"))
        return o->compress;
    const char *name = is_split(o) && o->parts ? o->parts : o->path;
    if (!name || !strcmp(name, "-"))
        return "none";
    return codec_of_name(name);
}

int cli_pattern_check(const char *pattern, int with_tag, char *why, size_t n)
{
    const char *slash = strrchr(pattern, '/');
    const char *base = slash ? slash + 1 : pattern;
    int nums = 0, tags = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p != '%')
            continue;
        if (p < base) {
            snprintf(why, n, "a %% in its directory (only the file name is numbered)");
            return 0;
        }
        const char *q = p + 1;
        if (*q == 'r') {
            tags++;
            p = q;
            continue;
        }
        if (*q == '0') {
            q++;
            if (*q < '1' || *q > '9') {
                snprintf(why, n, "'%%0' without a width (write %%04d)");
                return 0;
            }
            while (*q >= '0' && *q <= '9')
                q++;
            if (q - p > 4) {
                snprintf(why, n, "a width of more than 2 digits");
                return 0;
            }
        }
        if (*q != 'd') {
            snprintf(why, n, "'%%%c', which is not %%d, %%0Nd or %%r", *q ? *q : ' ');
            return 0;
        }
        nums++;
        p = q;
    }
    if (nums != 1) {
        snprintf(why, n, nums ? "more than one %%d" : "no %%d or %%0Nd for the part number");
        return 0;
    }
    if (with_tag && tags != 1) {
        snprintf(why, n, tags ? "more than one %%r" : "no %%r for the run's tag (an index "
                                                      "needs new names each run, e.g. "
                                                      "sitemap-%%r-%%04d.xml)");
        return 0;
    }
    if (!with_tag && tags) {
        snprintf(why, n, "%%r, the run's tag, which only a set with --index has");
        return 0;
    }
    return 1;
}

/* path's file name with the compression suffix and then the extension
 * taken off ("dir/sitemap.xml.gz" -> "dir/sitemap" + ".xml"), and `insert`
 * and the codec's suffix put back: "dir/sitemap-%r-%04d.xml.gz". */
static char *derive(const char *path, const char *insert, const char *codec)
{
    size_t n = strlen(path);
    const char *c = codec_of_name(path);
    if (strcmp(c, "none"))
        n -= strlen(suffix_of_codec(c));
    const char *slash = strrchr(path, '/');
    size_t base = slash ? (size_t)(slash - path) + 1 : 0, ext = n;
    for (size_t i = n; i > base + 1; i--)
        if (path[i - 1] == '.') {
            ext = i - 1;
            break;
        }
    const char *suffix = suffix_of_codec(codec);
    size_t len = ext + strlen(insert) + (n - ext) + strlen(suffix) + 1;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%.*s%s%.*s%s", (int)ext, path, insert, (int)(n - ext), path + ext,
                 suffix);
    return out;
}

/* Does a literal % in a name (not a pattern) look like one? */
static int has_conversion(const char *s)
{
    for (const char *p = strchr(s, '%'); p; p = strchr(p + 1, '%')) {
        const char *q = p + 1;
        while (*q >= '0' && *q <= '9')
            q++;
        if (*q == 'd' || *q == 'r')
            return 1;
    }
    return 0;
}

/* An absolute URL, as an index's <loc> must be: a scheme (RFC 3986:
 * ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"), then "//" and a host
 * (at least one character before the path, query or fragment). */
static int is_absolute_url(const char *u)
{
    size_t i = 0;
    if (!((u[0] >= 'A' && u[0] <= 'Z') || (u[0] >= 'a' && u[0] <= 'z')))
        return 0;
    while ((u[i] >= 'A' && u[i] <= 'Z') || (u[i] >= 'a' && u[i] <= 'z') ||
           (u[i] >= '0' && u[i] <= '9') || u[i] == '+' || u[i] == '-' || u[i] == '.')
        i++;
    if (strncmp(u + i, "://", 3) != 0)
        return 0;
    i += 3;
    size_t host = strcspn(u + i, "/?#"), at = strcspn(u + i, "@");
    if (at < host) { /* user info before the host: the host is after the @ */
        i += at + 1;
        host -= at + 1;
    }
    return host > 0 && u[i] != ':';
}

int cli_output_resolve(cli_output *o)
{
    const char *w = o->option;
    char why[160];
    int split = is_split(o);
    if (o->index && !split)
        return cli_usage("render", "%s: --index needs --split-rows or --split-bytes (an index "
                                   "lists the parts of a split output)", w);
    if (o->base_url && !o->index)
        return cli_usage("render", "%s: --base-url needs --index (it makes the index's URLs)", w);
    if (o->base_url && !is_absolute_url(o->base_url))
        return cli_usage("render", "%s: %s '%s' is not an absolute URL: give a scheme and a "
                                   "host (https://shop.example/sitemaps)", w,
                         strcmp(w, "-o") ? "base-url=" : "--base-url", o->base_url);
    if (o->lastmod && !o->index)
        return cli_usage("render", "%s: --lastmod needs --index (it is the index's lastmod)", w);
    if (o->parts && !split)
        return cli_usage("render", "%s: --parts needs --split-rows or --split-bytes", w);
    if (o->path && !strcmp(o->path, "-") && split)
        return cli_usage("render", "%s: a split output is a set of files, not stdout: give -o a "
                                   "file name (or --parts PATTERN)", w);
    if (split && !o->index) {
        /* The parts are the output: named by --parts, or by -o itself when
         * it is a pattern, or from -o's name (feed.xml.gz -> feed-%04d.xml.gz). */
        if (o->parts && o->path && !strcmp(w, "-o"))
            return cli_usage("render", "%s: without --index, -o and --parts both name the parts: "
                                       "give one (-o feed-%%04d.xml.gz, or -o feed.xml.gz and "
                                       "the parts are named feed-%%04d.xml.gz)", w);
        if (o->parts && o->path)
            return cli_usage("render", "%s: without index=, PATH names the parts (feed-%%04d.xml, "
                                       "or feed.xml for feed-%%04d.xml): drop parts=", w);
        if (!o->parts && has_conversion(o->path)) {
            o->parts = o->path;
            o->path = NULL;
            o->parts_given = 1;
        }
    }
    if (split && !o->parts) {
        if (!o->path)
            return cli_usage("render", "%s: missing -o", w);
        const char *codec = cli_output_codec(o);
        if (!(o->parts = derive(o->path, o->index ? "-%r-%04d" : "-%04d", codec))) {
            cli_error("out of memory");
            return EXIT_FAILURE_OTHER;
        }
        if (!o->index) {
            free(o->path);
            o->path = NULL;
        }
    }
    if (split && !cli_pattern_check(o->parts, o->index != NULL, why, sizeof why))
        return cli_usage("render", "%s: the parts' pattern '%s' has %s", w, o->parts, why);
    /* What the name says and what was asked must agree: -o feed.xml.gz with
     * --compress none would be plain XML under a .gz name (what issue 8 was
     * about), --compress gzip on a .zst name a file no tool reads. An
     * unknown suffix takes any codec. */
    const char *named = split ? o->parts : o->path;
    const char *codec = cli_output_codec(o);
    if (named && strcmp(named, "-") && o->compress && strcmp(o->compress, "auto")) {
        const char *by_name = codec_of_name(named);
        if (strcmp(by_name, "none") && strcmp(by_name, codec))
            return cli_usage("render", "%s: '%s' names a %s file but --compress is %s", w, named,
                             by_name, codec);
    }
    if (o->level) {
        if (!strcmp(codec, "none"))
            return cli_usage("render", "%s: --level needs compression ('%s' is not .gz or .zst; "
                                       "give --compress gzip or zstd)", w, named ? named : "-");
        if (strcmp(o->level, "best")) {
            int max = !strcmp(codec, "gzip") ? 9 : 19;
            long lv = strtol(o->level, NULL, 10);
            if (lv < 1 || lv > max)
                return cli_usage("render", "%s: --level %s is out of range for %s (1-%d, or best)",
                                 w, o->level, codec, max);
        }
    }
    if (o->index && o->path && !strcmp(o->path, "-"))
        return cli_usage("render", "%s: the index of a set is its commit point and is published "
                                   "atomically: give -o a file name, not stdout", w);
    return EXIT_OK;
}
