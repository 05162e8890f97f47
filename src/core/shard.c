/* shard.c: sharded renders, the render's side (docs/shards.md).
 *
 * A render over a sharded source (source options "shard" and "shard_key")
 * computes the shard's plan in the read transaction (src/source/shard.c),
 * binds the shard's boundaries, and writes the rows only: its one output's
 * head and tail are rendered for the walk and dropped. After the part is
 * published, its manifest goes beside it (PART with ".part" replaced by
 * ".json"): what publish needs to check that N parts make one feed.
 *
 * sf_render_publish_shards() reads the N manifests, refuses a set that is
 * missing a shard, holds another split, or disagrees (boundaries, total,
 * template, query, parameters, compression, snapshot; rows that do not add
 * up to the total; a part whose size or CRC-32 is not its manifest's), then
 * writes head + parts + tail into the feed, published atomically: the head
 * and tail rendered now (row_count = the total) and compressed as the parts
 * are (each a gzip member or zstd frame of its own: concatenated, they are
 * one valid stream), the parts copied byte for byte. */
/* memfd_create: _GNU_SOURCE comes from the build (Makefile) */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "feed.h"
#include "sink/set.h"

#define MANIFEST_MAGIC "sqlfeed_shard"

/* ---- hashes: what the shards and publish must agree on ------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ULL;
    return h;
}
#define FNV0 0xcbf29ce484222325ULL

static uint64_t template_hash(const sf_template *t)
{
    uint64_t h = FNV0;
    for (uint32_t i = 0; i < t->nunits; i++) {
        h = fnv(h, t->units[i].name ? t->units[i].name : "", strlen(t->units[i].name ? t->units[i].name : "") + 1);
        h = fnv(h, t->units[i].src, t->units[i].srclen);
    }
    return h;
}

/* Order-free: the sum of each NAME=VALUE's hash. */
static uint64_t params_hash(const sf_render *r)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < r->nparams; i++) {
        uint64_t h = fnv(FNV0, r->params[i].name, strlen(r->params[i].name) + 1);
        sum += fnv(h, r->params[i].value, r->params[i].len);
    }
    return sum;
}

/* ---- the render's side ------------------------------------------------- */

const char *sf_shard_param_value(const sf_render *r, const char *name)
{
    if (!r->shard || !sf_source_shard_param(name))
        return NULL;
    return !strcmp(name, SF_SHARD_PARAM_ALL) ? "0"
           : !strcmp(name, SF_SHARD_PARAM_LO) ? r->shard->lo
                                               : r->shard->hi;
}

void sf_shard_release(sf_render *r)
{
    sf_census *cs = r->cref.census;
    sf_dealloc(cs, r->shard);
    sf_dealloc(cs, r->shard_lastmod);
    sf_dealloc(cs, r->lastmod_column);
    sf_dealloc(cs, r->shard_run);
    sf_buf_free(&r->shard_unique);
    r->shard_unique_sets = 0;
    r->shard = NULL;
    r->shard_lastmod = r->lastmod_column = r->shard_run = NULL;
}

static int manifest_path(const char *part, unsigned k, unsigned n, char *buf, size_t cap);

sf_status sf_shard_begin(sf_render *r)
{
    sf_source *s = r->src;
    sf_census *cs = r->cref.census;
    size_t feeds = 0;
    sf_feed_out *f = NULL;
    for (size_t i = 0; i < r->nouts; i++)
        if (!r->outs[i]->is_index)
            feeds++, f = r->outs[i];
    if (feeds != 1 || r->nouts != 1)
        return sf_fail(&r->err, SF_ERR_ARG,
                       "a sharded render writes one document (its part); this one has %zu "
                       "outputs",
                       r->nouts);
    if (!sf_output_atomic(f->out))
        return sf_fail(&r->err, SF_ERR_ARG,
                       "a sharded render writes its part to a file (a descriptor or device "
                       "cannot be checked and joined)");
    if (r->reject)
        return sf_fail(&r->err, SF_ERR_ARG, "a sharded render keeps no reject log");
    const char *tname = f->tpl->units[0].label ? f->tpl->units[0].label : f->tpl->units[0].name;
    /* A 'unique' rule: each shard checks its rows, publish the shards
     * against each other. Which row --on-invalid skip would leave out
     * depends on the rows before it, in other shards: not shardable. */
    if (sf_tpl_rules_unique_count(f->tpl) && r->skip_invalid)
        return sf_fail(&r->err, SF_ERR_TEMPLATE,
                       "%s: a 'unique' rule (sqlfeed-check) with on_invalid skip cannot be "
                       "sharded (the row left out would depend on the other shards' rows): "
                       "--on-invalid fail, or render it in one process",
                       tname ? tname : "the template");
    for (size_t i = 0; i < f->tpl->nroot_names; i++)
        if (!strcmp(f->tpl->root_names[i], FIRST_NAME))
            return sf_fail(&r->err, SF_ERR_TEMPLATE,
                           "%s reads {{#first}} (the first row) outside the rows: a sharded "
                           "feed's head is written by publish, which has no row",
                           tname ? tname : "the template");
    /* This shard's manifest of an earlier run goes first: should this run
     * fail, publish finds the shard missing instead of joining the earlier
     * run's part (we hold the part's lock: no other run of this shard is
     * writing it). */
    char mpath[4096];
    const char *part0 = sf_output_part_path(f->out, 0);
    if (!part0 || manifest_path(part0, s->opts.shard_k, s->opts.shard_n, mpath, sizeof mpath) != 0)
        return sf_fail(&r->err, SF_ERR_OUTPUT, "the shard's manifest: its path is too long");
    if (unlink(mpath) != 0 && errno != ENOENT)
        return sf_fail(&r->err, SF_ERR_OUTPUT, "removing the earlier manifest %s: %s", mpath,
                       strerror(errno));
    /* Every parameter's value for the plan's query: the query's own, and
     * every row (sf_shard_all = 1). */
    const char *values[SF_QUERY_PARAMS_MAX];
    sf_status vs = sf_render_query_values(r, s, values);
    if (vs != SF_OK)
        return vs;
    r->shard = sf_calloc(cs, SF_MEM_RENDER, 1, sizeof *r->shard);
    if (!r->shard)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    atomic_store(&r->running, s); /* the plan runs the query: a cancel reaches it */
    sf_status st = atomic_load(&r->cancel) ? SF_ERR_CANCELLED
                                           : sf_source_shard_plan(s, values, r->shard);
    atomic_store(&r->running, NULL);
    if (st != SF_OK) {
        sf_dealloc(cs, r->shard);
        r->shard = NULL;
        if (st == SF_ERR_CANCELLED || atomic_load(&r->cancel))
            return sf_fail(&r->err, SF_ERR_CANCELLED, "cancelled while planning the shards");
        return sf_fail_from(&r->err, st, "planning the shards", sf_source_errmsg(s));
    }
    /* One document: its rows only, joined by publish between one head and
     * tail. Split: complete documents (parts), which publish names and
     * indexes; each part's largest lastmod is kept for the manifest. */
    if (sf_output_is_split(f->out))
        f->shard_parts = 1;
    else
        f->body_only = 1;
    if (r->lastmod_column) {
        sf_dealloc(cs, f->max_column);
        if (!(f->max_column = sf_strdup(cs, SF_MEM_RENDER, r->lastmod_column)))
            return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    }
    sf_output_crc_on(f->out);
    return SF_OK;
}

/* The manifest: K-of-N.json in the directory of the shard's (first) part. */
static int manifest_path(const char *part, unsigned k, unsigned n, char *buf, size_t cap)
{
    const char *slash = strrchr(part, '/');
    int dl = slash ? (int)(slash - part + 1) : 0;
    return snprintf(buf, cap, "%.*s%u-of-%u.json", dl, part, k, n) < (int)cap ? 0 : -1;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Appends printf text; -1 out of memory. */
static int appendf(sf_buf *b, const char *fmt, ...) SF_PRINTF(2, 3);
static int appendf(sf_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= sizeof tmp ? -1 : sf_buf_append(b, tmp, (size_t)n);
}

/* "key": "text" with JSON's escapes; -1 out of memory. */
static int append_str(sf_buf *b, const char *key, const char *v, size_t n, int last)
{
    if (appendf(b, "\"%s\": \"", key) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        char e[8];
        int el = c == '"' || c == '\\' ? snprintf(e, sizeof e, "\\%c", c)
                 : c < 0x20           ? snprintf(e, sizeof e, "\\u%04x", c)
                                      : snprintf(e, sizeof e, "%c", c);
        if (sf_buf_append(b, e, (size_t)el) != 0)
            return -1;
    }
    return appendf(b, "\"%s\n", last ? "" : ",");
}

/* The largest --lastmod value of part i of a split shard ("" when none). */
static void part_max(const sf_feed_out *f, size_t i, const char **s, size_t *n)
{
    *s = "";
    *n = 0;
    if (f->maxcol < 0 || i >= f->nparts)
        return;
    const uint64_t *offs = (const uint64_t *)(const void *)f->offs.data;
    uint64_t from = offs[i], to = i + 1 < f->nparts ? offs[i + 1] : f->maxes.len;
    *s = f->maxes.data + from;
    *n = (size_t)(to - from);
}

/* Publishes `len` bytes as the file `path` (atomically), for a shard's
 * manifest and its unique values. */
static sf_status write_file(sf_render *r, const char *path, const void *p, size_t len,
                            const char *what)
{
    sf_output *m = sf_output_create(r->cref.census);
    sf_status st = m ? SF_OK : SF_ERR_NOMEM;
    if (st == SF_OK)
        st = sf_output_set_option(m, "compress", "none");
    if (st == SF_OK)
        st = sf_output_open_file(m, path);
    if (st == SF_OK)
        st = sf_output_write(m, p, len);
    if (st == SF_OK)
        st = sf_output_commit(m);
    if (st != SF_OK)
        st = sf_fail(&r->err, st, "the shard's part is published, but not its %s %s: %s", what,
                     path, m ? sf_output_errmsg(m) : "out of memory");
    sf_output_free(m);
    return st;
}

/* The shard's unique values (one sorted array of hashes per rule), the text
 * of K-of-N.unique: "sqlfeed-unique 1 SETS\n", then per rule "COLUMN
 * COUNT\n" and COUNT 64-bit hashes. Made when the rows end, in the render's
 * own memory: the checker (and the template it reads) may be gone by the
 * commit. */
sf_status sf_shard_take_unique(sf_render *r, sf_feed_out *f)
{
    size_t sets = sf_tpl_rules_unique_count(f->tpl);
    sf_buf *b = &r->shard_unique;
    sf_buf_free(b);
    sf_buf_init(b, r->cref.census, SF_MEM_RENDER);
    int bad = appendf(b, "sqlfeed-unique 1 %zu\n", sets);
    for (size_t i = 0; !bad && i < sets; i++) {
        const uint64_t *h;
        const char *col;
        size_t n = sf_tpl_checker_take_unique(f->checker, i, &h, &col);
        bad = appendf(b, "%s %zu\n", col, n) || (n && sf_buf_append(b, h, n * sizeof *h));
    }
    if (bad) {
        sf_buf_free(b);
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: the shard's unique values");
    }
    r->shard_unique_sets = sets;
    return SF_OK;
}

static sf_status write_unique(sf_render *r, const char *mpath, size_t *len, uint32_t *crc)
{
    char path[4096];
    size_t ml = strlen(mpath);
    if (ml < 5 || (size_t)snprintf(path, sizeof path, "%.*s.unique", (int)(ml - 5), mpath) >=
                      sizeof path)
        return sf_fail(&r->err, SF_ERR_OUTPUT, "the shard's unique values: path too long");
    *len = r->shard_unique.len;
    *crc = (uint32_t)crc32_z(0, (const unsigned char *)r->shard_unique.data, r->shard_unique.len);
    return write_file(r, path, r->shard_unique.data, r->shard_unique.len, "unique values");
}

sf_status sf_shard_manifest(sf_render *r)
{
    sf_feed_out *f = r->outs[0];
    sf_shard_plan *p = r->shard;
    sf_source *s = r->src;
    sf_output *o = f->out;
    const char *part = sf_output_part_path(o, 0);
    char path[4096];
    if (!part || manifest_path(part, p->k, p->n, path, sizeof path) != 0)
        return sf_fail(&r->err, SF_ERR_OUTPUT, "the shard's manifest: its path is too long");
    size_t ulen = 0;
    uint32_t ucrc = 0;
    size_t usets = r->shard_unique_sets;
    if (usets) {
        sf_status us = write_unique(r, path, &ulen, &ucrc);
        if (us != SF_OK)
            return us;
    }
    sf_buf t;
    sf_buf_init(&t, r->cref.census, SF_MEM_RENDER);
    int split = sf_output_is_split(o);
    size_t nparts = sf_output_part_count(o);
    const char *codec = o->codec ? o->codec->name : "none";
    int bad = appendf(&t, "{\n\"" MANIFEST_MAGIC "\": 1,\n\"version\": \"%s\",\n\"shard\": %u,\n"
                          "\"shards\": %u,\n",
                      sf_version(), p->k, p->n) ||
              append_str(&t, "key", s->opts.shard_key, strlen(s->opts.shard_key), 0) ||
              appendf(&t, "\"bounds\": \"");
    for (unsigned i = 0; !bad && i + 1 < p->n; i++)
        bad = appendf(&t, "%s%lld", i ? "," : "", (long long)p->bounds[i]);
    const char *lm = r->shard_lastmod ? r->shard_lastmod : "";
    bad = bad ||
          appendf(&t, "\",\n\"total_rows\": %llu,\n\"null_keys\": %llu,\n\"rows\": %llu,\n"
                      "\"rows_written\": %llu,\n\"rows_skipped\": %llu,\n\"split\": %d,\n",
                  (unsigned long long)p->total, (unsigned long long)p->nulls,
                  (unsigned long long)sf_render_rows(r), (unsigned long long)f->rows_written,
                  (unsigned long long)f->rows_skipped, split) ||
          append_str(&t, "part", base_name(part), strlen(base_name(part)), 0) ||
          appendf(&t, "\"bytes\": %llu,\n\"bytes_out\": %llu,\n\"crc32\": \"%08x\",\n"
                      "\"compress\": \"%s\",\n\"level\": %d,\n\"template\": \"%016llx\",\n"
                      "\"query\": \"%016llx\",\n\"params\": \"%016llx\",\n",
                  (unsigned long long)sf_output_bytes(o), (unsigned long long)sf_output_bytes_out(o),
                  (unsigned)sf_output_part_crc(o, 0), codec, o->codec ? sf_output_level(o) : 0,
                  (unsigned long long)template_hash(f->tpl), (unsigned long long)s->sql_hash,
                  (unsigned long long)params_hash(r)) ||
          append_str(&t, "snapshot", s->opts.snapshot, strlen(s->opts.snapshot), 0) ||
          append_str(&t, "run", r->shard_run ? r->shard_run : "",
                     r->shard_run ? strlen(r->shard_run) : 0, 0) ||
          appendf(&t, "\"time\": %lld,\n\"unique\": %zu,\n\"unique_bytes\": %zu,\n"
                      "\"unique_crc32\": \"%08x\",\n\"parts\": %zu,\n",
                  (long long)r->when, usets, ulen, (unsigned)ucrc, split ? nparts : (size_t)1);
    /* A split shard's parts, each its own keys (part_1_name ...). */
    for (size_t i = 0; !bad && split && i < nparts; i++) {
        const char *nm = base_name(sf_output_part_path(o, i)), *mx;
        size_t mn;
        char key[48];
        part_max(f, i, &mx, &mn);
        snprintf(key, sizeof key, "part_%zu_name", i + 1);
        bad = append_str(&t, key, nm, strlen(nm), 0) ||
              appendf(&t, "\"part_%zu_rows\": %llu,\n\"part_%zu_bytes\": %llu,\n"
                          "\"part_%zu_bytes_out\": %llu,\n\"part_%zu_crc32\": \"%08x\",\n",
                      i + 1, (unsigned long long)sf_output_part_rows(o, i), i + 1,
                      (unsigned long long)sf_output_part_bytes(o, i), i + 1,
                      (unsigned long long)sf_fileset_part_bytes_out(o, i), i + 1,
                      (unsigned)sf_output_part_crc(o, i));
        snprintf(key, sizeof key, "part_%zu_lastmod", i + 1);
        bad = bad || append_str(&t, key, mx, mn, 0);
    }
    bad = bad || append_str(&t, "lastmod", lm, strlen(lm), 1) || appendf(&t, "}\n");
    if (bad) {
        sf_buf_free(&t);
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: the shard's manifest");
    }
    sf_status st = write_file(r, path, t.data, t.len, "manifest");
    sf_buf_free(&t);
    return st;
}

/* ---- publish ------------------------------------------------------------- */

typedef struct manifest {
    unsigned shard, shards;
    char key[64], part[512], crc[16], compress[16], tpl[24], query[24], params[24],
        snapshot[64], run[208];
    const char *bounds; /* into text, blen bytes */
    size_t blen;
    uint64_t total, rows, rows_written, bytes, bytes_out, unique, unique_bytes;
    char unique_crc[16];
    size_t nparts;
    int level, split;
    long long time;
    char *text; /* the whole file, census memory */
} manifest;

#define MANIFEST_LIMIT ((size_t)16 << 20)

/* "key": value on a line of its own, as sf_shard_manifest writes it. */
static int field(const char *text, const char *key, char *buf, size_t n)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\n\"%s\": ", key);
    const char *p = strstr(text, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    size_t o = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            char c = *p;
            if (c == '\\' && p[1] == 'u' && p[2] && p[3] && p[4] && p[5]) {
                char hex[5] = {p[2], p[3], p[4], p[5], 0};
                c = (char)strtol(hex, NULL, 16);
                p += 5;
            } else if (c == '\\' && p[1]) {
                c = *++p;
            }
            if (o + 1 >= n)
                return -1;
            buf[o++] = c;
        }
        if (*p != '"')
            return -1;
    } else {
        for (; *p && *p != ',' && *p != '\n'; p++) {
            if (o + 1 >= n)
                return -1;
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
    return 0;
}

static int field_i64(const char *text, const char *key, int64_t *v)
{
    char b[32], *end;
    if (field(text, key, b, sizeof b) != 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')))
        return -1;
    errno = 0;
    *v = (int64_t)strtoll(b, &end, 10);
    return errno || *end ? -1 : 0;
}

static int field_u64(const char *text, const char *key, uint64_t *v)
{
    char b[32], *end;
    if (field(text, key, b, sizeof b) != 0 || b[0] < '0' || b[0] > '9')
        return -1;
    errno = 0;
    *v = strtoull(b, &end, 10);
    return errno || *end ? -1 : 0;
}

/* The boundaries, in the text (they may be long: 1023 of them). */
static const char *field_bounds(const char *text, size_t *len)
{
    const char *p = strstr(text, "\n\"bounds\": \"");
    if (!p)
        return NULL;
    p += strlen("\n\"bounds\": \"");
    const char *e = strchr(p, '"');
    if (!e)
        return NULL;
    *len = (size_t)(e - p);
    return p;
}

static void manifest_free(sf_census *cs, manifest *m) { sf_dealloc(cs, m->text); }

static sf_status read_manifest(sf_render *r, int dirfd, const char *dir, unsigned k, unsigned n,
                               manifest *m)
{
    char name[64];
    memset(m, 0, sizeof *m);
    snprintf(name, sizeof name, "%u-of-%u.json", k, n);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sf_fail(&r->err, errno == ENOENT ? SF_ERR_REFUSED : SF_ERR_OUTPUT,
                       "shard %u of %u is missing: %s/%s: %s (has its render finished?)", k, n,
                       dir, name, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return sf_fail(&r->err, SF_ERR_OUTPUT, "%s/%s: %s", dir, name, strerror(e));
    }
    if ((uint64_t)sb.st_size > MANIFEST_LIMIT) {
        close(fd);
        return sf_fail(&r->err, SF_ERR_REFUSED, "%s/%s: larger than 16 MiB: not a manifest", dir,
                       name);
    }
    size_t size = (size_t)sb.st_size;
    m->text = sf_alloc(r->cref.census, SF_MEM_RENDER, size + 2);
    if (!m->text) {
        close(fd);
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: a manifest");
    }
    size_t got = 0;
    int e = 0;
    while (got < size) {
        ssize_t g = read(fd, m->text + got, size - got);
        if (g < 0 && errno == EINTR)
            continue;
        if (g < 0)
            e = errno;
        if (g <= 0)
            break;
        got += (size_t)g;
    }
    close(fd);
    if (got != size)
        return sf_fail(&r->err, SF_ERR_OUTPUT, "reading %s/%s: %s", dir, name,
                       e ? strerror(e) : "it ended early (being rewritten?)");
    m->text[got] = '\0';
    uint64_t shard, shards, split, parts;
    int64_t time;
    char magic[8], lv[16];
    char *t = m->text;
    int bad = strncmp(t, "{\n", 2) || field(t, MANIFEST_MAGIC, magic, sizeof magic) ||
              strcmp(magic, "1") || field_u64(t, "shard", &shard) ||
              field_u64(t, "shards", &shards) || field(t, "key", m->key, sizeof m->key) ||
              field_u64(t, "total_rows", &m->total) || field_u64(t, "rows", &m->rows) ||
              field_u64(t, "rows_written", &m->rows_written) ||
              field_u64(t, "split", &split) || field(t, "part", m->part, sizeof m->part) ||
              field_u64(t, "bytes", &m->bytes) || field_u64(t, "bytes_out", &m->bytes_out) ||
              field(t, "crc32", m->crc, sizeof m->crc) ||
              field(t, "compress", m->compress, sizeof m->compress) ||
              field(t, "level", lv, sizeof lv) || field(t, "template", m->tpl, sizeof m->tpl) ||
              field(t, "query", m->query, sizeof m->query) ||
              field(t, "params", m->params, sizeof m->params) ||
              field(t, "snapshot", m->snapshot, sizeof m->snapshot) ||
              field(t, "run", m->run, sizeof m->run) || field_u64(t, "unique", &m->unique) ||
              field_u64(t, "unique_bytes", &m->unique_bytes) ||
              field(t, "unique_crc32", m->unique_crc, sizeof m->unique_crc) ||
              field_i64(t, "time", &time) || field_u64(t, "parts", &parts) ||
              strchr(m->part, '/') || !m->part[0] || split > 1 || parts > MANIFEST_LIMIT ||
              !(m->bounds = field_bounds(t, &m->blen));
    if (bad)
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "%s/%s is not a shard manifest sqlfeed %s reads (written by another "
                       "version, or damaged)",
                       dir, name, sf_version());
    m->shard = (unsigned)shard;
    m->shards = (unsigned)shards;
    m->level = (int)strtol(lv, NULL, 10);
    m->time = (long long)time;
    m->split = (int)split;
    m->nparts = (size_t)parts;
    if (m->shard != k || m->shards != n)
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "%s/%s says it is shard %u of %u: a manifest copied or renamed by hand?",
                       dir, name, m->shard, m->shards);
    return SF_OK;
}

/* One part of a split shard, from its manifest. */
typedef struct part_info {
    char name[512], crc[16], lastmod[8192];
    uint64_t rows, bytes, bytes_out;
} part_info;

static sf_status read_part(sf_render *r, const char *dir, const manifest *m, size_t i,
                           part_info *pi)
{
    char k[5][48];
    snprintf(k[0], sizeof k[0], "part_%zu_name", i + 1);
    snprintf(k[1], sizeof k[1], "part_%zu_rows", i + 1);
    snprintf(k[2], sizeof k[2], "part_%zu_bytes", i + 1);
    snprintf(k[3], sizeof k[3], "part_%zu_bytes_out", i + 1);
    snprintf(k[4], sizeof k[4], "part_%zu_crc32", i + 1);
    char lk[48];
    snprintf(lk, sizeof lk, "part_%zu_lastmod", i + 1);
    if (field(m->text, k[0], pi->name, sizeof pi->name) || field_u64(m->text, k[1], &pi->rows) ||
        field_u64(m->text, k[2], &pi->bytes) || field_u64(m->text, k[3], &pi->bytes_out) ||
        field(m->text, k[4], pi->crc, sizeof pi->crc) ||
        field(m->text, lk, pi->lastmod, sizeof pi->lastmod) || strchr(pi->name, '/') ||
        !pi->name[0])
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "%s/%u-of-%u.json: part %zu of shard %u is not described whole (a damaged "
                       "manifest)",
                       dir, m->shard, m->shards, i + 1, m->shard);
    return SF_OK;
}

/* Names K-of-M.json in dir for another M (or K > M): a second split mixed
 * into the directory, which publish will not guess about. */
typedef struct stray_ud {
    unsigned n;
    char found[300];
} stray_ud;

static int stray(const char *name, void *ctx)
{
    stray_ud *u = ctx;
    unsigned k, m;
    char tail[8];
    int used = 0;
    if (sscanf(name, "%u-of-%u.jso%1[n]%n", &k, &m, tail, &used) == 3 && name[used] == '\0' &&
        (m != u->n || k < 1 || k > m)) {
        snprintf(u->found, sizeof u->found, "%s", name);
        return 1;
    }
    return 0;
}

static sf_status copy_fd(sf_render *r, int fd, const char *what, sf_output *out, uint64_t *n,
                         uint32_t *crc)
{
    char buf[1 << 16];
    uint64_t total = 0;
    uint32_t c = (uint32_t)crc32_z(0, NULL, 0);
    for (;;) {
        ssize_t got = pread(fd, buf, sizeof buf, (off_t)total);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return sf_fail(&r->err, SF_ERR_OUTPUT, "reading %s: %s", what, strerror(errno));
        if (got == 0)
            break;
        c = (uint32_t)crc32_z(c, (const unsigned char *)buf, (size_t)got);
        total += (uint64_t)got;
        sf_status st = sf_output_write(out, buf, (size_t)got);
        if (st != SF_OK)
            return sf_fail_from(&r->err, st, NULL, sf_output_errmsg(out));
        if (atomic_load_explicit(&r->cancel, memory_order_relaxed))
            return sf_fail(&r->err, SF_ERR_CANCELLED, "cancelled while joining the parts");
    }
    *n = total;
    if (crc)
        *crc = c;
    return SF_OK;
}

/* Copies DIR/name into out, checking its size and CRC-32 against the
 * manifest's (k: the shard, for messages). */
static sf_status copy_part(sf_render *r, int dirfd, const char *dir, const char *name,
                           uint64_t size, const char *crc, unsigned k, unsigned n, sf_output *out)
{
    char what[1100];
    snprintf(what, sizeof what, "%s/%s", dir, name);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sf_fail(&r->err, errno == ENOENT ? SF_ERR_REFUSED : SF_ERR_OUTPUT,
                       "shard %u of %u: its part %s: %s", k, n, what, strerror(errno));
    uint64_t got = 0;
    uint32_t c = 0;
    sf_status st = copy_fd(r, fd, what, out, &got, &c);
    close(fd);
    char hex[16];
    snprintf(hex, sizeof hex, "%08x", (unsigned)c);
    if (st == SF_OK && (got != size || strcmp(hex, crc)))
        st = sf_fail(&r->err, SF_ERR_REFUSED,
                     "shard %u of %u: %s is not the part its manifest describes (%llu bytes, "
                     "CRC-32 %s; the manifest: %llu, %s)",
                     k, n, what, (unsigned long long)got, hex, (unsigned long long)size, crc);
    return st;
}

/* Checks each part's size before anything is written (a part being
 * rewritten, or damaged, is refused at once; the CRC while copying). */
static sf_status check_size(sf_render *r, int dirfd, const char *dir, const char *name,
                            uint64_t size, unsigned k, unsigned n)
{
    struct stat sb;
    if (fstatat(dirfd, name, &sb, 0) != 0)
        return sf_fail(&r->err, errno == ENOENT ? SF_ERR_REFUSED : SF_ERR_OUTPUT,
                       "shard %u of %u: its part %s/%s: %s", k, n, dir, name, strerror(errno));
    if ((uint64_t)sb.st_size != size)
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "shard %u of %u: %s/%s has %lld bytes, its manifest says %llu (a part "
                       "being rewritten, or damaged)",
                       k, n, dir, name, (long long)sb.st_size, (unsigned long long)size);
    return SF_OK;
}

/* A piece (head or tail) rendered into a memory file, compressed as the parts. */
static sf_status piece_open(sf_render *r, const manifest *m, const char *what, int *fd,
                            sf_output **o)
{
    *fd = memfd_create(what, MFD_CLOEXEC);
    if (*fd < 0)
        return sf_fail(&r->err, errno == ENOMEM ? SF_ERR_NOMEM : SF_ERR_OUTPUT,
                       "memfd_create: %s", strerror(errno));
    if (!(*o = sf_output_create(r->cref.census)))
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    char lv[16];
    snprintf(lv, sizeof lv, "%d", m->level);
    sf_status st = sf_output_set_option(*o, "compress", m->compress);
    if (st == SF_OK && strcmp(m->compress, "none"))
        st = sf_output_set_option(*o, "level", lv);
    if (st == SF_OK)
        st = sf_output_set_option(*o, "writer", "inline");
    if (st == SF_OK)
        st = sf_output_open_fd(*o, *fd, what);
    if (st != SF_OK)
        return sf_fail(&r->err, st, "the %s: %s", what, sf_output_errmsg(*o));
    return SF_OK;
}

static sf_status check_set(sf_render *r, const char *dir, const manifest *ms, unsigned n)
{
    const manifest *a = &ms[0];
    char want[24];
    for (unsigned i = 0; i < n; i++) {
        const manifest *b = &ms[i];
        if (a->blen != b->blen || memcmp(a->bounds, b->bounds, a->blen))
            return sf_fail(&r->err, SF_ERR_REFUSED,
                           "shards 1 and %u of %u in %s disagree on the boundaries (%.*s; %.*s): "
                           "they read different data (share a snapshot, or render them again)",
                           i + 1, n, dir, (int)(a->blen < 200 ? a->blen : 200), a->bounds,
                           (int)(b->blen < 200 ? b->blen : 200), b->bounds);
        const char *what = strcmp(a->key, b->key)             ? "shard key"
                           : a->total != b->total             ? "total rows"
                           : strcmp(a->tpl, b->tpl)           ? "template"
                           : strcmp(a->query, b->query)       ? "query"
                           : strcmp(a->params, b->params)     ? "parameters"
                           : strcmp(a->compress, b->compress) ? "compression"
                           : a->level != b->level             ? "compression level"
                           : strcmp(a->snapshot, b->snapshot) ? "snapshot"
                           : strcmp(a->run, b->run)           ? "run (--run)"
                           : a->split != b->split             ? "split (parts or one document)"
                           : a->unique != b->unique           ? "unique rules"
                                                              : NULL;
        if (what)
            return sf_fail(&r->err, SF_ERR_REFUSED,
                           "shards 1 and %u of %u in %s disagree on the %s: they are not one "
                           "render's (the data changed between them? share a snapshot, or "
                           "render them again)",
                           i + 1, n, dir, what);
    }
    if (r->shard_run && strcmp(a->run, r->shard_run))
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "the shards in %s are of run '%s', not '%s' (--run): a shard of this run "
                       "has not finished, or the directory holds an earlier run's",
                       dir, a->run, r->shard_run);
    snprintf(want, sizeof want, "%016llx", (unsigned long long)params_hash(r));
    if (strcmp(a->params, want))
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "the shards in %s were rendered with other parameters (--param) than "
                       "publish was given: give publish the same ones",
                       dir);
    uint64_t sum = 0;
    for (unsigned i = 0; i < n; i++)
        sum += ms[i].rows;
    if (sum != a->total)
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "the %u shards in %s hold %llu rows, the query had %llu: the split did "
                       "not cover every row once",
                       n, dir, (unsigned long long)sum, (unsigned long long)a->total);
    return SF_OK;
}

static int cmp_hash(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The shards' unique values against each other (each shard checked its
 * own): one value in two shards would be in the feed twice. SF_ERR_INVALID
 * naming the rule's column and the shards. */
static sf_status check_unique(sf_render *r, int dirfd, const char *dir, const manifest *ms,
                              unsigned n)
{
    if (!ms[0].unique)
        return SF_OK;
    sf_census *cs = r->cref.census;
    size_t sets = (size_t)ms[0].unique;
    char **text = sf_calloc(cs, SF_MEM_RENDER, n, sizeof *text);
    const char **cur = sf_calloc(cs, SF_MEM_RENDER, n, sizeof *cur);
    sf_status st = text && cur ? SF_OK : sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    /* Each shard's file, whole, its size and CRC-32 its manifest's. */
    for (unsigned k = 0; st == SF_OK && k < n; k++) {
        char name[64];
        snprintf(name, sizeof name, "%u-of-%u.unique", k + 1, n);
        size_t size = (size_t)ms[k].unique_bytes;
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            st = sf_fail(&r->err, errno == ENOENT ? SF_ERR_REFUSED : SF_ERR_OUTPUT,
                         "shard %u of %u: its unique values %s/%s: %s", k + 1, n, dir, name,
                         strerror(errno));
            break;
        }
        if (ms[k].unique != sets || size > MANIFEST_LIMIT * 64 ||
            !(text[k] = sf_alloc(cs, SF_MEM_RENDER, size + 1))) {
            close(fd);
            st = text[k] || ms[k].unique != sets || size > MANIFEST_LIMIT * 64
                     ? sf_fail(&r->err, SF_ERR_REFUSED, "shard %u of %u: %s/%s is not its "
                                                        "manifest's", k + 1, n, dir, name)
                     : sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: unique values");
            break;
        }
        size_t got = 0;
        while (got < size) {
            ssize_t g = read(fd, text[k] + got, size - got);
            if (g < 0 && errno == EINTR)
                continue;
            if (g <= 0)
                break;
            got += (size_t)g;
        }
        char extra;
        int more = read(fd, &extra, 1) > 0;
        close(fd);
        char crc[16];
        snprintf(crc, sizeof crc, "%08x",
                 (unsigned)crc32_z(0, (const unsigned char *)text[k], got));
        text[k][got] = '\0';
        size_t hl = 0;
        unsigned long ns = 0;
        if (got != size || more || strcmp(crc, ms[k].unique_crc) ||
            sscanf(text[k], "sqlfeed-unique 1 %lu\n%zn", &ns, &hl) != 1 || ns != sets)
            st = sf_fail(&r->err, SF_ERR_REFUSED,
                         "shard %u of %u: %s/%s is not the file its manifest describes", k + 1,
                         n, dir, name);
        cur[k] = text[k] + hl;
    }
    /* Rule by rule: every shard's hashes together, sorted; one twice is a
     * value in two shards. */
    for (size_t set = 0; st == SF_OK && set < sets; set++) {
        size_t total = 0, counts[SF_SHARD_MAX];
        const char *arr[SF_SHARD_MAX]; /* each shard's hashes: bytes, maybe unaligned */
        char col[128] = "";
        for (unsigned k = 0; st == SF_OK && k < n; k++) {
            const char *p = cur[k], *end = text[k] + ms[k].unique_bytes;
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            char c2[128];
            size_t cnt = 0;
            if (!nl || sscanf(p, "%127s %zu", c2, &cnt) != 2 ||
                (size_t)(end - (nl + 1)) / sizeof(uint64_t) < cnt) {
                st = sf_fail(&r->err, SF_ERR_REFUSED,
                             "shard %u of %u: its unique values are damaged", k + 1, n);
                break;
            }
            snprintf(col, sizeof col, "%s", c2);
            arr[k] = nl + 1;
            counts[k] = cnt;
            cur[k] = nl + 1 + cnt * sizeof(uint64_t);
            total += cnt;
        }
        uint64_t *all = st == SF_OK && total ? sf_alloc(cs, SF_MEM_RENDER, total * sizeof *all)
                                             : NULL;
        if (st == SF_OK && total && !all)
            st = sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: unique values");
        size_t at = 0;
        for (unsigned k = 0; st == SF_OK && total && k < n; k++) {
            if (counts[k])
                memcpy(all + at, arr[k], counts[k] * sizeof *all); /* unaligned-safe copy */
            at += counts[k];
        }
        if (st == SF_OK && total > SF_TPL_UNIQUE_MAX)
            st = sf_fail(&r->err, SF_ERR_INVALID,
                         "unique %s: more than %u distinct values in all (one process refuses "
                         "them too)",
                         col, SF_TPL_UNIQUE_MAX);
        if (st == SF_OK && total)
            qsort(all, total, sizeof *all, cmp_hash);
        for (size_t i = 1; st == SF_OK && i < total; i++) {
            if (all[i] != all[i - 1])
                continue;
            unsigned in[2] = {0, 0}, found = 0;
            for (unsigned k = 0; found < 2 && k < n; k++)
                for (size_t j = 0; found < 2 && j < counts[k]; j++) {
                    uint64_t h;
                    memcpy(&h, arr[k] + j * sizeof h, sizeof h);
                    if (h == all[i]) {
                        in[found++] = k + 1;
                        break;
                    }
                }
            st = sf_fail(&r->err, SF_ERR_INVALID,
                         "unique %s: a value is in shards %u and %u of %u (each checked its own "
                         "rows): the feed would hold it twice",
                         col, in[0], in[1], n);
        }
        sf_dealloc(cs, all);
    }
    for (unsigned k = 0; text && k < n; k++)
        sf_dealloc(cs, text[k]);
    sf_dealloc(cs, text);
    sf_dealloc(cs, cur);
    return st;
}

/* The manifests of dir, read and checked together: *out (census memory,
 * manifests_free) and the directory, open. */
static sf_status read_set(sf_render *r, const char *dir, unsigned shards, int *dirfd,
                          manifest **out)
{
    sf_census *cs = r->cref.census;
    *out = NULL;
    *dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0)
        return sf_fail(&r->err, errno == ENOENT ? SF_ERR_REFUSED : SF_ERR_OUTPUT,
                       "the shards' directory %s: %s", dir, strerror(errno));
    manifest *ms = sf_calloc(cs, SF_MEM_RENDER, shards, sizeof *ms);
    if (!ms)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    *out = ms;
    stray_ud su = {.n = shards};
    if ((sf_dir_each(*dirfd, stray, &su), su.found[0]))
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "%s holds %s, a shard of another split than %u: remove what is not this "
                       "render's",
                       dir, su.found, shards);
    sf_status st = SF_OK;
    for (unsigned k = 1; st == SF_OK && k <= shards; k++)
        st = read_manifest(r, *dirfd, dir, k, shards, &ms[k - 1]);
    if (st == SF_OK)
        st = check_set(r, dir, ms, shards);
    return st == SF_OK ? check_unique(r, *dirfd, dir, ms, shards) : st;
}

static void manifests_free(sf_render *r, manifest *ms, unsigned n)
{
    for (unsigned i = 0; ms && i < n; i++)
        manifest_free(r->cref.census, &ms[i]);
    sf_dealloc(r->cref.census, ms);
}

/* A name that says one codec for bytes of another (f.xml holding gzip, or
 * f.xml.zst holding gzip) is refused, as render refuses it (SF_ERR_ARG). */
static sf_status check_name_codec(sf_render *r, const char *name, const char *codec)
{
    const sf_stage_type *t = sf_stage_type_by_suffix(name);
    const char *says = t ? t->name : "none";
    if (strcmp(says, codec))
        return sf_fail(&r->err, SF_ERR_ARG,
                       "'%s' says %s, but the shards' parts are %s: give a name %s", name,
                       t ? says : "no compression", strcmp(codec, "none") ? codec : "not compressed",
                       !strcmp(codec, "gzip")   ? "ending in .gz"
                       : !strcmp(codec, "zstd") ? "ending in .zst"
                                                : "without .gz or .zst");
    return SF_OK;
}

static sf_status publish_start(sf_render *r, const char *dir, unsigned shards)
{
    sf_err_clear(&r->err);
    if (!dir)
        return sf_fail(&r->err, SF_ERR_ARG, "publish needs the shards' directory");
    if (shards < 1 || shards > SF_SHARD_MAX)
        return sf_fail(&r->err, SF_ERR_ARG, "shards: from 1 to %d, got %u", SF_SHARD_MAX, shards);
    if (r->ran || r->nouts)
        return sf_fail(&r->err, SF_ERR_STATE, "this render has already run; create another");
    r->ran = 1;
    return SF_OK;
}

sf_status sf_render_publish_shards(sf_render *r, sf_template *tpl, const char *dir,
                                   unsigned shards, const char *path)
{
    if (!r)
        return SF_ERR_ARG;
    if (!tpl || !path)
        return sf_fail(&r->err, SF_ERR_ARG, "publish needs a template, a directory and a path");
    if (!tpl->loaded)
        return sf_fail(&r->err, SF_ERR_STATE, "the template is not loaded");
    sf_status st = publish_start(r, dir, shards);
    if (st != SF_OK)
        return st;
    sf_census *cs = r->cref.census;
    manifest *ms = NULL;
    sf_output *head = NULL, *tail = NULL, *out = NULL;
    int hfd = -1, tfd = -1, dirfd = -1;
    char want[24];
    st = read_set(r, dir, shards, &dirfd, &ms);
    snprintf(want, sizeof want, "%016llx", (unsigned long long)template_hash(tpl));
    if (st == SF_OK && ms[0].split)
        st = sf_fail(&r->err, SF_ERR_REFUSED,
                     "the shards in %s are split into parts (split_rows, split_bytes): publish "
                     "them as a set with an index",
                     dir);
    if (st == SF_OK && strcmp(ms[0].tpl, want))
        st = sf_fail(&r->err, SF_ERR_REFUSED,
                     "the shards in %s were rendered with another template than this one", dir);
    if (st == SF_OK)
        st = check_name_codec(r, path, ms[0].compress);
    for (unsigned k = 0; st == SF_OK && k < shards; k++)
        st = check_size(r, dirfd, dir, ms[k].part, ms[k].bytes_out, k + 1, shards);
    /* The head and tail, as a one-process render over the total writes
     * them; the feed's time is the first shard's unless one was set. */
    if (st == SF_OK && !r->when_set)
        r->when = (int64_t)ms[0].time;
    sf_feed_out *f = NULL;
    if (st == SF_OK)
        st = piece_open(r, &ms[0], "the head", &hfd, &head);
    if (st == SF_OK)
        st = piece_open(r, &ms[0], "the tail", &tfd, &tail);
    if (st == SF_OK)
        st = sf_render_ready_pieces(r, tpl, head, &f);
    uint64_t written = 0; /* row_count: the rows written, as a render counts them */
    for (unsigned k = 0; ms && k < shards; k++)
        written += ms[k].rows_written;
    if (st == SF_OK)
        st = sf_feed_head_tail(r, f, head, tail, written);
    if (st == SF_OK && (st = sf_output_commit(head)) != SF_OK)
        st = sf_fail_from(&r->err, st, NULL, sf_output_errmsg(head));
    if (st == SF_OK && (st = sf_output_commit(tail)) != SF_OK)
        st = sf_fail_from(&r->err, st, NULL, sf_output_errmsg(tail));
    /* The feed: head, the parts in shard order, tail; published at once. */
    if (st == SF_OK && !(out = sf_output_create(cs)))
        st = sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    if (st == SF_OK && ((st = sf_output_set_option(out, "compress", "none")) != SF_OK ||
                        (st = sf_output_open_file(out, path)) != SF_OK))
        st = sf_fail_from(&r->err, st, NULL, sf_output_errmsg(out));
    /* The rails, against the feed's previous run (its state record, which
     * this one's rows then replace). */
    if (st == SF_OK)
        st = sf_feed_rail(r, out, written, path);
    if (st == SF_OK) {
        out->rows = written;
        sf_output_keep_state(out); /* recorded even when empty */
        atomic_store(&out->cancel, &r->cancel);
    }
    uint64_t n;
    if (st == SF_OK)
        st = copy_fd(r, hfd, "the head", out, &n, NULL);
    for (unsigned k = 0; st == SF_OK && k < shards; k++)
        st = copy_part(r, dirfd, dir, ms[k].part, ms[k].bytes_out, ms[k].crc, k + 1, shards, out);
    if (st == SF_OK)
        st = copy_fd(r, tfd, "the tail", out, &n, NULL);
    if (st == SF_OK && (st = sf_output_commit(out)) != SF_OK)
        st = sf_fail_from(&r->err, st, NULL, sf_output_errmsg(out));
    if (st == SF_OK) {
        atomic_store_explicit(&r->rows, written, memory_order_relaxed);
        r->executed = r->committed = 1;
    }
    if (out) {
        atomic_store(&out->cancel, NULL);
        if (st != SF_OK)
            sf_output_abort(out);
    }
    sf_output_free(out);
    sf_output_free(head);
    sf_output_free(tail);
    /* The head's output was added to r (its feed_out): it goes with r, but
     * not the output, freed above. */
    if (f)
        f->out = NULL;
    if (hfd >= 0)
        close(hfd);
    if (tfd >= 0)
        close(tfd);
    if (dirfd >= 0)
        close(dirfd);
    manifests_free(r, ms, shards);
    return st;
}

sf_status sf_render_publish_shard_parts(sf_render *r, sf_template *tpl, sf_template *index_tpl,
                                        const char *dir, unsigned shards, sf_output *parts,
                                        sf_output *index, const char *base_url)
{
    if (!r)
        return SF_ERR_ARG;
    if (!tpl || !index_tpl || !parts || !index)
        return sf_fail(&r->err, SF_ERR_ARG, "publish needs an index template, the parts and "
                                            "the index");
    if (!tpl->loaded || !index_tpl->loaded)
        return sf_fail(&r->err, SF_ERR_STATE, "the template is not loaded");
    if (!sf_output_is_split(parts) || parts->state != SF_OUT_OPEN || index->state != SF_OUT_OPEN)
        return sf_fail(&r->err, SF_ERR_STATE,
                       "the parts must be opened with sf_output_open_parts(), the index as a "
                       "file");
    if (parts->codec)
        return sf_fail(&r->err, SF_ERR_ARG,
                       "the parts' output must not compress (compress none): the shards' parts "
                       "are copied as they are");
    sf_status st = publish_start(r, dir, shards);
    if (st != SF_OK)
        return st;
    sf_census *cs = r->cref.census;
    manifest *ms = NULL;
    int dirfd = -1;
    part_info *pi = sf_alloc(cs, SF_MEM_RENDER, sizeof *pi);
    st = pi ? read_set(r, dir, shards, &dirfd, &ms)
            : sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    if (st == SF_OK && !ms[0].split)
        st = sf_fail(&r->err, SF_ERR_REFUSED,
                     "the shards in %s are one document each: publish joins them into one "
                     "feed, without an index",
                     dir);
    char want[24];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)template_hash(tpl));
    if (st == SF_OK && strcmp(ms[0].tpl, want))
        st = sf_fail(&r->err, SF_ERR_REFUSED,
                     "the shards in %s were rendered with another template than this one", dir);
    if (st == SF_OK) {
        char name[4096];
        /* The parts' pattern, as a name: its suffix says the codec. */
        const char *pat = sf_output_part_path(parts, 0);
        snprintf(name, sizeof name, "%s", pat ? pat : "");
        st = check_name_codec(r, name, ms[0].compress);
    }
    /* Every part's size, before anything is written; and whether any has a
     * row (an empty shard's parts are left out, unless every part is). */
    uint64_t all_rows = 0;
    for (unsigned k = 0; st == SF_OK && k < shards; k++)
        for (size_t i = 0; st == SF_OK && i < ms[k].nparts; i++)
            if ((st = read_part(r, dir, &ms[k], i, pi)) == SF_OK &&
                (st = check_size(r, dirfd, dir, pi->name, pi->bytes_out, k + 1, shards)) == SF_OK)
                all_rows += pi->rows;
    /* The set and its index through the render's own commit: the parts
     * renamed, the index last (the commit point), the earlier run's parts
     * removed after it (docs/sink.md). */
    sf_feed_out *pf = NULL, *ix = NULL;
    r->ran = 0; /* add_output and add_index check it */
    if (st == SF_OK && (st = sf_render_add_output(r, index_tpl, parts)) == SF_OK &&
        (st = sf_render_add_index(r, parts, index_tpl, index, base_url, NULL)) == SF_OK) {
        pf = r->outs[0];
        ix = r->outs[1];
    }
    r->ran = 1;
    if (st == SF_OK && !r->when_set)
        r->when = (int64_t)ms[0].time;
    if (st == SF_OK)
        st = sf_render_ready_index(r, ix);
    if (st == SF_OK) {
        pf->maxcol = 0; /* the parts' lastmod values come from the manifests */
        sf_buf_init(&pf->maxes, cs, SF_MEM_RENDER);
        sf_buf_init(&pf->offs, cs, SF_MEM_RENDER);
        atomic_store(&parts->cancel, &r->cancel);
    }
    size_t at = 0;
    uint64_t total = 0;
    for (unsigned k = 0; st == SF_OK && k < shards; k++)
        for (size_t i = 0; st == SF_OK && i < ms[k].nparts; i++, at++) {
            if ((st = read_part(r, dir, &ms[k], i, pi)) != SF_OK)
                break;
            /* An empty part (a shard with no rows) would be a document with
             * no entry, which a sitemap's schema refuses: left out. */
            if (pi->rows == 0 && (all_rows > 0 || at > 0)) {
                at--;
                continue;
            }
            if (at && (st = sf_output_next_part(parts)) != SF_OK) {
                st = sf_fail_from(&r->err, st, NULL, sf_output_errmsg(parts));
                break;
            }
            st = copy_part(r, dirfd, dir, pi->name, pi->bytes_out, pi->crc, k + 1, shards, parts);
            if (st != SF_OK)
                break;
            sf_fileset_set_part(parts, at, pi->rows, pi->bytes);
            total += pi->rows;
            uint64_t off = pf->maxes.len;
            if (sf_buf_append(&pf->offs, &off, sizeof off) != 0 ||
                sf_buf_append(&pf->maxes, pi->lastmod, strlen(pi->lastmod)) != 0)
                st = sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: index values");
            pf->nparts++;
        }
    if (st == SF_OK && at == 0)
        st = sf_fail(&r->err, SF_ERR_REFUSED, "the shards in %s hold no part", dir);
    if (parts)
        atomic_store(&parts->cancel, NULL);
    if (st == SF_OK) {
        atomic_store_explicit(&r->rows, total, memory_order_relaxed);
        pf->rows_written = total; /* the rails (sf_render_commit) count them */
        r->executed = 1;
        st = sf_render_commit(r);
    } else {
        sf_output_abort(parts);
        sf_output_abort(index);
    }
    if (dirfd >= 0)
        close(dirfd);
    manifests_free(r, ms, shards);
    sf_dealloc(cs, pi);
    return st;
}
