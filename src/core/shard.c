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

#define MANIFEST_MAX 8192
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
    r->shard = NULL;
    r->shard_lastmod = r->lastmod_column = NULL;
}

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
    if (sf_output_is_split(f->out))
        return sf_fail(&r->err, SF_ERR_ARG,
                       "a sharded render's part cannot itself be split (split_rows, "
                       "split_bytes): publish joins the parts into one document");
    if (!sf_output_atomic(f->out))
        return sf_fail(&r->err, SF_ERR_ARG,
                       "a sharded render writes its part to a file (a descriptor or device "
                       "cannot be checked and joined)");
    if (r->reject)
        return sf_fail(&r->err, SF_ERR_ARG, "a sharded render keeps no reject log");
    /* Every parameter's value for the plan's query: the query's own, and
     * every row (sf_shard_all = 1). */
    const char *values[64];
    int n = sf_source_param_count(s);
    if (n > 64)
        return sf_fail(&r->err, SF_ERR_ARG, "too many query parameters");
    for (int i = 0; i < n; i++) {
        const char *name = sf_source_param_name(s, i);
        values[i] = !sf_source_shard_param(name) ? NULL
                    : strcmp(name, SF_SHARD_PARAM_ALL) ? "0"
                                                       : "1";
        for (size_t k = 0; !values[i] && k < r->nparams; k++)
            if (strcmp(r->params[k].name, name) == 0)
                values[i] = r->params[k].value;
        if (!values[i])
            return sf_fail(&r->err, SF_ERR_NAME,
                           "the query uses :%s but no value was given (--param %s=VALUE)", name,
                           name);
    }
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
    f->body_only = 1;
    if (r->lastmod_column) {
        sf_dealloc(cs, f->max_column);
        if (!(f->max_column = sf_strdup(cs, SF_MEM_RENDER, r->lastmod_column)))
            return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    }
    sf_output_crc_on(f->out);
    return SF_OK;
}

/* The manifest's path: the part's, ".part" replaced by (or else + ".json"). */
static int manifest_path(const char *part, char *buf, size_t n)
{
    size_t len = strlen(part);
    if (len > 5 && !strcmp(part + len - 5, ".part"))
        len -= 5;
    return snprintf(buf, n, "%.*s.json", (int)len, part) < (int)n ? 0 : -1;
}

static void json_text(char *buf, size_t n, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf[o++] = '\\', buf[o++] = (char)c;
        else if (c < 0x20)
            o += (size_t)snprintf(buf + o, n - o, "\\u%04x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = '\0';
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

sf_status sf_shard_manifest(sf_render *r)
{
    sf_feed_out *f = r->outs[0];
    sf_shard_plan *p = r->shard;
    sf_source *s = r->src;
    const char *part = sf_output_part_path(f->out, 0);
    char path[4096], text[MANIFEST_MAX], bounds[MANIFEST_MAX / 2], lastmod[1024], key[160],
        name[600];
    if (!part || manifest_path(part, path, sizeof path) != 0)
        return sf_fail(&r->err, SF_ERR_OUTPUT, "the shard's manifest: its path is too long");
    size_t bo = 0;
    bounds[0] = '\0';
    for (unsigned i = 0; i + 1 < p->n && bo + 24 < sizeof bounds; i++)
        bo += (size_t)snprintf(bounds + bo, sizeof bounds - bo, "%s%lld", i ? "," : "",
                               (long long)p->bounds[i]);
    if (p->n > 1 && bo + 24 >= sizeof bounds)
        return sf_fail(&r->err, SF_ERR_ARG, "too many shards for the manifest");
    json_text(lastmod, sizeof lastmod, r->shard_lastmod ? r->shard_lastmod : "");
    json_text(key, sizeof key, s->opts.shard_key);
    json_text(name, sizeof name, base_name(part));
    const char *codec = f->out->codec ? f->out->codec->name : "none";
    int len = snprintf(
        text, sizeof text,
        "{\n\"" MANIFEST_MAGIC "\": 1,\n\"version\": \"%s\",\n\"shard\": %u,\n\"shards\": %u,\n"
        "\"key\": \"%s\",\n\"bounds\": \"%s\",\n\"total_rows\": %llu,\n\"null_keys\": %llu,\n"
        "\"rows\": %llu,\n\"rows_written\": %llu,\n\"rows_skipped\": %llu,\n\"part\": \"%s\",\n"
        "\"bytes\": %llu,\n\"bytes_out\": %llu,\n\"crc32\": \"%08x\",\n\"compress\": \"%s\",\n"
        "\"level\": %d,\n\"template\": \"%016llx\",\n\"query\": \"%016llx\",\n"
        "\"params\": \"%016llx\",\n\"snapshot\": \"%s\",\n\"time\": %lld,\n"
        "\"lastmod\": \"%s\"\n}\n",
        sf_version(), p->k, p->n, key, bounds, (unsigned long long)p->total,
        (unsigned long long)p->nulls, (unsigned long long)sf_render_rows(r),
        (unsigned long long)f->rows_written, (unsigned long long)f->rows_skipped, name,
        (unsigned long long)sf_output_bytes(f->out),
        (unsigned long long)sf_output_bytes_out(f->out), (unsigned)sf_output_crc(f->out), codec,
        f->out->codec ? sf_output_level(f->out) : 0, (unsigned long long)template_hash(f->tpl),
        (unsigned long long)s->sql_hash, (unsigned long long)params_hash(r), s->opts.snapshot,
        (long long)r->when, lastmod);
    if (len < 0 || (size_t)len >= sizeof text)
        return sf_fail(&r->err, SF_ERR_ARG, "the shard's manifest is too long");
    sf_output *m = sf_output_create(r->cref.census);
    if (!m)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    sf_status st = sf_output_set_option(m, "compress", "none");
    if (st == SF_OK)
        st = sf_output_open_file(m, path);
    if (st == SF_OK)
        st = sf_output_write(m, text, (size_t)len);
    if (st == SF_OK)
        st = sf_output_commit(m);
    if (st != SF_OK)
        st = sf_fail(&r->err, st, "the part %s is published, but not its manifest: %s", part,
                     sf_output_errmsg(m));
    sf_output_free(m);
    return st;
}

/* ---- publish ------------------------------------------------------------- */

typedef struct manifest {
    unsigned shard, shards;
    char key[64], bounds[MANIFEST_MAX / 2], part[512], crc[16], compress[16], tpl[24],
        query[24], params[24], snapshot[64];
    uint64_t total, rows, bytes, bytes_out;
    int level;
    long long time;
} manifest;

/* "key": value on a line of its own, as sf_shard_manifest writes it. */
static int field(const char *text, const char *key, char *buf, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\n\"%s\": ", key);
    const char *p = strstr(text, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    size_t o = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (o + 1 >= n)
                return -1;
            buf[o++] = *p;
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

static int field_u64(const char *text, const char *key, uint64_t *v)
{
    char b[32], *end;
    if (field(text, key, b, sizeof b) != 0 || b[0] < '0' || b[0] > '9')
        return -1;
    errno = 0;
    *v = strtoull(b, &end, 10);
    return errno || *end ? -1 : 0;
}

static sf_status read_manifest(sf_render *r, int dirfd, const char *dir, unsigned k, unsigned n,
                               manifest *m)
{
    char name[64], text[MANIFEST_MAX + 1];
    snprintf(name, sizeof name, "%u-of-%u.json", k, n);
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sf_fail(&r->err, errno == ENOENT ? SF_ERR_REFUSED : SF_ERR_OUTPUT,
                       "shard %u of %u is missing: %s/%s: %s (has its render finished?)", k, n,
                       dir, name, strerror(errno));
    ssize_t got = read(fd, text, MANIFEST_MAX);
    int e = errno;
    close(fd);
    if (got < 0)
        return sf_fail(&r->err, SF_ERR_OUTPUT, "reading %s/%s: %s", dir, name, strerror(e));
    text[got] = '\0';
    memset(m, 0, sizeof *m);
    uint64_t shard, shards, level, time;
    char magic[8], lv[16];
    int bad = strncmp(text, "{\n", 2) || field(text, MANIFEST_MAGIC, magic, sizeof magic) ||
              strcmp(magic, "1") || field_u64(text, "shard", &shard) ||
              field_u64(text, "shards", &shards) || field(text, "key", m->key, sizeof m->key) ||
              field(text, "bounds", m->bounds, sizeof m->bounds) ||
              field_u64(text, "total_rows", &m->total) || field_u64(text, "rows", &m->rows) ||
              field(text, "part", m->part, sizeof m->part) ||
              field_u64(text, "bytes", &m->bytes) || field_u64(text, "bytes_out", &m->bytes_out) ||
              field(text, "crc32", m->crc, sizeof m->crc) ||
              field(text, "compress", m->compress, sizeof m->compress) ||
              field(text, "level", lv, sizeof lv) || field(text, "template", m->tpl, sizeof m->tpl) ||
              field(text, "query", m->query, sizeof m->query) ||
              field(text, "params", m->params, sizeof m->params) ||
              field(text, "snapshot", m->snapshot, sizeof m->snapshot) ||
              field_u64(text, "time", &time) || strchr(m->part, '/') || !m->part[0];
    if (bad)
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "%s/%s is not a shard manifest sqlfeed %s reads (written by another "
                       "version, or damaged)",
                       dir, name, sf_version());
    level = (uint64_t)strtoull(lv, NULL, 10);
    m->shard = (unsigned)shard;
    m->shards = (unsigned)shards;
    m->level = (int)level;
    m->time = (long long)time;
    if (m->shard != k || m->shards != n)
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "%s/%s says it is shard %u of %u: a manifest copied or renamed by hand?",
                       dir, name, m->shard, m->shards);
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

static sf_status check_set(sf_render *r, const char *dir, const manifest *ms, unsigned n,
                           uint64_t tpl_hash)
{
    const manifest *a = &ms[0];
    char want[24];
    for (unsigned i = 0; i < n; i++) {
        const manifest *b = &ms[i];
        const char *what = strcmp(a->key, b->key)             ? "shard key"
                           : strcmp(a->bounds, b->bounds)     ? "boundaries"
                           : a->total != b->total             ? "total rows"
                           : strcmp(a->tpl, b->tpl)           ? "template"
                           : strcmp(a->query, b->query)       ? "query"
                           : strcmp(a->params, b->params)     ? "parameters"
                           : strcmp(a->compress, b->compress) ? "compression"
                           : a->level != b->level             ? "compression level"
                           : strcmp(a->snapshot, b->snapshot) ? "snapshot"
                                                              : NULL;
        if (what && !strcmp(what, "boundaries"))
            return sf_fail(&r->err, SF_ERR_REFUSED,
                           "shards 1 and %u of %u in %s disagree on the boundaries (%s; %s): "
                           "they read different data (share a snapshot, or render them again)",
                           i + 1, n, dir, a->bounds, b->bounds);
        if (what)
            return sf_fail(&r->err, SF_ERR_REFUSED,
                           "shards 1 and %u of %u in %s disagree on the %s: they are not one "
                           "render's (the data changed between them? share a snapshot, or "
                           "render them again)",
                           i + 1, n, dir, what);
    }
    snprintf(want, sizeof want, "%016llx", (unsigned long long)tpl_hash);
    if (strcmp(a->tpl, want))
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "the shards in %s were rendered with another template than this one", dir);
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

sf_status sf_render_publish_shards(sf_render *r, sf_template *tpl, const char *dir,
                                   unsigned shards, const char *path)
{
    if (!r)
        return SF_ERR_ARG;
    sf_err_clear(&r->err);
    if (!tpl || !dir || !path)
        return sf_fail(&r->err, SF_ERR_ARG, "publish needs a template, a directory and a path");
    if (shards < 1 || shards > SF_SHARD_MAX)
        return sf_fail(&r->err, SF_ERR_ARG, "shards: from 1 to %d, got %u", SF_SHARD_MAX, shards);
    if (r->ran || r->nouts)
        return sf_fail(&r->err, SF_ERR_STATE, "this render has already run; create another");
    if (!tpl->loaded)
        return sf_fail(&r->err, SF_ERR_STATE, "the template is not loaded");
    r->ran = 1;
    sf_census *cs = r->cref.census;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return sf_fail(&r->err, errno == ENOENT ? SF_ERR_REFUSED : SF_ERR_OUTPUT,
                       "the shards' directory %s: %s", dir, strerror(errno));
    manifest *ms = sf_calloc(cs, SF_MEM_RENDER, shards, sizeof *ms);
    sf_output *head = NULL, *tail = NULL, *out = NULL;
    int hfd = -1, tfd = -1;
    sf_status st = ms ? SF_OK : sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    stray_ud su = {.n = shards};
    if (st == SF_OK && (sf_dir_each(dirfd, stray, &su), su.found[0]))
        st = sf_fail(&r->err, SF_ERR_REFUSED,
                     "%s holds %s, a shard of another split than %u: remove what is not this "
                     "render's",
                     dir, su.found, shards);
    for (unsigned k = 1; st == SF_OK && k <= shards; k++)
        st = read_manifest(r, dirfd, dir, k, shards, &ms[k - 1]);
    if (st == SF_OK)
        st = check_set(r, dir, ms, shards, template_hash(tpl));
    for (unsigned k = 0; st == SF_OK && k < shards; k++) {
        struct stat sb;
        if (fstatat(dirfd, ms[k].part, &sb, 0) != 0)
            st = sf_fail(&r->err, errno == ENOENT ? SF_ERR_REFUSED : SF_ERR_OUTPUT,
                         "shard %u of %u: its part %s/%s: %s", k + 1, shards, dir, ms[k].part,
                         strerror(errno));
        else if ((uint64_t)sb.st_size != ms[k].bytes_out)
            st = sf_fail(&r->err, SF_ERR_REFUSED,
                         "shard %u of %u: %s/%s has %lld bytes, its manifest says %llu (a part "
                         "being rewritten, or damaged)",
                         k + 1, shards, dir, ms[k].part, (long long)sb.st_size,
                         (unsigned long long)ms[k].bytes_out);
    }
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
    if (st == SF_OK)
        st = sf_feed_head_tail(r, f, head, tail, ms[0].total);
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
    if (st == SF_OK)
        atomic_store(&out->cancel, &r->cancel);
    uint64_t n, body = 0;
    if (st == SF_OK)
        st = copy_fd(r, hfd, "the head", out, &n, NULL);
    for (unsigned k = 0; st == SF_OK && k < shards; k++) {
        char what[600];
        snprintf(what, sizeof what, "%s/%s", dir, ms[k].part);
        int fd = openat(dirfd, ms[k].part, O_RDONLY | O_CLOEXEC);
        uint32_t crc = 0;
        if (fd < 0) {
            st = sf_fail(&r->err, SF_ERR_OUTPUT, "opening %s: %s", what, strerror(errno));
            break;
        }
        st = copy_fd(r, fd, what, out, &n, &crc);
        close(fd);
        char got[16];
        snprintf(got, sizeof got, "%08x", (unsigned)crc);
        if (st == SF_OK && (n != ms[k].bytes_out || strcmp(got, ms[k].crc)))
            st = sf_fail(&r->err, SF_ERR_REFUSED,
                         "shard %u of %u: %s is not the part its manifest describes (%llu bytes, "
                         "CRC-32 %s; the manifest: %llu, %s)",
                         k + 1, shards, what, (unsigned long long)n, got,
                         (unsigned long long)ms[k].bytes_out, ms[k].crc);
        body += ms[k].bytes;
    }
    if (st == SF_OK)
        st = copy_fd(r, tfd, "the tail", out, &n, NULL);
    if (st == SF_OK && (st = sf_output_commit(out)) != SF_OK)
        st = sf_fail_from(&r->err, st, NULL, sf_output_errmsg(out));
    if (st == SF_OK) {
        atomic_store_explicit(&r->rows, ms[0].total, memory_order_relaxed);
        r->executed = r->committed = 1;
    }
    (void)body;
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
    close(dirfd);
    sf_dealloc(cs, ms);
    return st;
}
