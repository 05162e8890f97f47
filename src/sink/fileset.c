/* fileset.c: the names of a split output's parts: the pattern (parse,
 * expand, match), the run tag, and which files of the directory belong to
 * earlier runs. The publication sequence that uses them is in output.c and
 * docs/sink.md ("File sets"). */
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "set.h"
#include "sink.h"

size_t sf_side_keep(const char *name, size_t extra, long name_max)
{
    if (name_max <= (long)extra)
        name_max = 255;
    size_t keep = strlen(name);
    if (keep > (size_t)name_max - extra) {
        keep = (size_t)name_max - extra;
        while (keep > 0 && ((unsigned char)name[keep] & 0xc0) == 0x80)
            keep--; /* not inside a UTF-8 sequence */
    }
    return keep;
}

long sf_dir_name_max(int dirfd)
{
    long m = fpathconf(dirfd, _PC_NAME_MAX);
    return m > 0 ? m : 255;
}

int sf_is_tag8(const char *s, size_t n)
{
    if (n != 8)
        return 0;
    for (size_t i = 0; i < 8; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* ---- pattern ------------------------------------------------------------- */

void sf_pattern_free(sf_pattern *p, sf_census *cs)
{
    sf_dealloc(cs, p->dir);
    sf_dealloc(cs, p->base);
    sf_dealloc(cs, p->lit);
    memset(p, 0, sizeof *p);
}

static sf_status bad(sf_errbuf *e, const char *pattern, const char *why)
{
    return sf_fail(e, SF_ERR_ARG, "part name pattern %s: %s", pattern, why);
}

/* One literal byte: extends the last literal segment or starts one. */
static int add_lit(sf_pattern *p, size_t *lit, char c)
{
    if (p->nseg == 0 || p->seg[p->nseg - 1].kind != SF_SEG_LIT) {
        if (p->nseg == 5)
            return -1;
        p->seg[p->nseg++] = (sf_seg){SF_SEG_LIT, *lit, 0, 0};
    }
    p->lit[(*lit)++] = c;
    p->seg[p->nseg - 1].len++;
    return 0;
}

sf_status sf_pattern_parse(sf_pattern *p, sf_census *cs, sf_errbuf *e, const char *pattern)
{
    memset(p, 0, sizeof *p);
    if (!pattern || !*pattern)
        return sf_fail(e, SF_ERR_ARG, "no part name pattern");
    const char *slash = strrchr(pattern, '/');
    const char *base = slash ? slash + 1 : pattern;
    if (slash && memchr(pattern, '%', (size_t)(slash - pattern)))
        return bad(e, pattern, "a field (%) in the directory part; only the file name may hold "
                               "%d and %r");
    if (!*base)
        return bad(e, pattern, "does not end with a file name");
    size_t blen = strlen(base);
    p->dir = slash ? sf_strndup(cs, SF_MEM_SINK, pattern, slash == pattern ? 1
                                                                          : (size_t)(slash - pattern))
                   : sf_strdup(cs, SF_MEM_SINK, ".");
    p->base = sf_strdup(cs, SF_MEM_SINK, base);
    p->lit = sf_alloc(cs, SF_MEM_SINK, blen + 1);
    if (!p->dir || !p->base || !p->lit) {
        sf_pattern_free(p, cs);
        return sf_fail(e, SF_ERR_NOMEM, "out of memory: part name pattern");
    }
    size_t lit = 0;
    int nums = 0;
    const char *why = NULL;
    for (const char *s = base; *s && !why; s++) {
        if (*s != '%') {
            if (add_lit(p, &lit, *s) != 0)
                why = "too many fields";
            continue;
        }
        s++;
        if (*s == '%') { /* "%%": a literal '%' */
            if (add_lit(p, &lit, '%') != 0)
                why = "too many fields";
            continue;
        }
        sf_seg f = {SF_SEG_NUM, 0, 0, 0};
        if (*s == 'r') {
            if (p->has_tag++)
                why = "more than one %r";
            f.kind = SF_SEG_TAG;
        } else if (*s == 'd') {
            nums++;
        } else if (*s == '0' && s[1] >= '1' && s[1] <= '9' && s[2] == 'd') {
            f.width = s[1] - '0';
            s += 2;
            nums++;
        } else {
            why = "a '%' not followed by d, 0Nd (N 1-9), r or %";
            break;
        }
        if (nums > 1)
            why = "more than one part number (%d)";
        /* Two fields side by side could not be told apart in a name. */
        else if (p->nseg > 0 && p->seg[p->nseg - 1].kind != SF_SEG_LIT)
            why = "two fields side by side (put text between %d and %r)";
        else if (p->nseg == 5)
            why = "too many fields";
        else
            p->seg[p->nseg++] = f;
    }
    if (!why && nums == 0)
        why = "no part number (%d or %0Nd)";
    p->lit[lit] = '\0';
    if (why) {
        sf_pattern_free(p, cs);
        return bad(e, pattern, why);
    }
    return SF_OK;
}

size_t sf_pattern_expand(const sf_pattern *p, const char *tag, uint64_t n, char *buf,
                         size_t cap)
{
    size_t len = 0;
    for (int i = 0; i < p->nseg; i++) {
        const sf_seg *g = &p->seg[i];
        char tmp[32];
        const char *s = tmp;
        size_t k;
        if (g->kind == SF_SEG_LIT) {
            s = p->lit + g->off;
            k = g->len;
        } else if (g->kind == SF_SEG_TAG) {
            s = tag ? tag : "";
            k = strlen(s);
        } else {
            int w = snprintf(tmp, sizeof tmp, "%0*llu", g->width, (unsigned long long)n);
            k = w > 0 ? (size_t)w : 0;
        }
        if (len + k >= cap)
            return 0;
        memcpy(buf + len, s, k);
        len += k;
    }
    buf[len] = '\0';
    return len;
}

/* Matches segments [i..] against name[0..n). */
static int match_from(const sf_pattern *p, int i, const char *s, size_t n, int prefix, char *tag,
                      uint64_t *num)
{
    if (i == p->nseg)
        return n == 0;
    if (n == 0)
        return prefix; /* a name cut here */
    const sf_seg *g = &p->seg[i];
    if (g->kind == SF_SEG_LIT) {
        size_t k = g->len < n ? g->len : n;
        if (memcmp(s, p->lit + g->off, k) != 0)
            return 0;
        if (k < g->len)
            return prefix;
        return match_from(p, i + 1, s + k, n - k, prefix, tag, num);
    }
    if (g->kind == SF_SEG_TAG) {
        size_t k = n < 8 ? n : 8;
        for (size_t j = 0; j < k; j++)
            if (!((s[j] >= '0' && s[j] <= '9') || (s[j] >= 'a' && s[j] <= 'f')))
                return 0;
        if (k < 8)
            return prefix;
        if (tag) {
            memcpy(tag, s, 8);
            tag[8] = '\0';
        }
        return match_from(p, i + 1, s + 8, n - 8, prefix, tag, num);
    }
    /* A number: at least `width` (1 for %d) digits; every length tried, so
     * digits in the text after it still match. */
    size_t d = 0;
    while (d < n && d < 20 && s[d] >= '0' && s[d] <= '9')
        d++;
    size_t min = g->width > 0 ? (size_t)g->width : 1;
    for (size_t k = d; k >= 1; k--) {
        if (k < min && !(prefix && k == n))
            break;
        uint64_t v = 0;
        for (size_t j = 0; j < k; j++)
            v = v * 10 + (uint64_t)(s[j] - '0');
        if (match_from(p, i + 1, s + k, n - k, prefix, tag, num)) {
            if (num)
                *num = v;
            return 1;
        }
    }
    return 0;
}

int sf_pattern_match(const sf_pattern *p, const char *name, size_t n, int prefix, char *tag,
                     uint64_t *num)
{
    char t[9] = "";
    uint64_t v = 0;
    if (!match_from(p, 0, name, n, prefix, t, &v))
        return 0;
    if (tag)
        memcpy(tag, t, 9);
    if (num)
        *num = v;
    return 1;
}

/* ---- run tag and earlier runs ------------------------------------------- */

static uint32_t random_u32(void)
{
    uint32_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint32_t)ts.tv_nsec ^ (uint32_t)((uint64_t)ts.tv_sec << 12) ^
           ((uint32_t)getpid() << 20);
}

int sf_dir_each(int dirfd, int (*fn)(const char *name, void *ctx), void *ctx)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    /* getdents64 into the stack: opendir would malloc outside the census. */
    _Alignas(struct dirent64) char buf[8192];
    int rc = 0, stop = 0;
    while (!stop) {
        ssize_t n = getdents64(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            break;
        }
        for (ssize_t at = 0; at < n && !stop;) {
            const struct dirent64 *de = (const struct dirent64 *)(const void *)(buf + at);
            at += de->d_reclen;
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                stop = fn(de->d_name, ctx);
        }
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

typedef struct tag_seen {
    const sf_pattern *p;
    const char *tag;
    int found;
} tag_seen;

static int see_tag(const char *name, void *ctx)
{
    tag_seen *t = ctx;
    char tg[9];
    t->found = sf_pattern_match(t->p, name, strlen(name), 0, tg, NULL) && !strcmp(tg, t->tag);
    return t->found;
}

/* Whether a name of the pattern with tag `tag` is in dirfd. */
static int tag_in_dir(const sf_pattern *p, int dirfd, const char *tag)
{
    tag_seen t = {p, tag, 0};
    sf_dir_each(dirfd, see_tag, &t);
    return t.found;
}

int sf_set_choose_tag(const sf_pattern *p, int dirfd, const char *prev_tag, char tag[9])
{
    for (int tries = 0; tries < 64; tries++) {
        snprintf(tag, 9, "%08x", random_u32());
        if (prev_tag && !strcmp(tag, prev_tag))
            continue;
        if (p->has_tag && tag_in_dir(p, dirfd, tag))
            continue;
        return 0;
    }
    tag[0] = '\0';
    return -1;
}

size_t sf_set_remove_stale(int dirfd, const sf_pattern *p, const char *old, size_t nold,
                           const char *tag, uint64_t count, int *err)
{
    size_t removed = 0;
    *err = 0;
    for (size_t i = 0; i < nold; i++, old += strlen(old) + 1) {
        size_t n = strlen(old);
        char mine[4096];
        uint64_t num;
        if (strchr(old, '/') || !sf_pattern_match(p, old, n, 0, NULL, &num))
            continue; /* not a name of this pattern: not ours to remove */
        /* One of the new set's names, spelled exactly as it spells them? */
        if (num >= 1 && num <= count &&
            sf_pattern_expand(p, p->has_tag ? tag : NULL, num, mine, sizeof mine) == n &&
            !memcmp(mine, old, n))
            continue;
        struct stat st;
        if (fstatat(dirfd, old, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue; /* only regular files: never a directory, link or device */
        if (unlinkat(dirfd, old, 0) == 0)
            removed++;
        else if (!*err && errno != ENOENT)
            *err = errno;
    }
    return removed;
}

/* ---- the parts of a split output ----------------------------------------
 * The current part's chain is o->head, so the write buffer drains into it;
 * a finished part keeps its file sink (which holds the temporary file)
 * until publish renames it or abort removes it, and nothing else: the
 * stages before it (the writer thread's buffers, a compressor's blocks,
 * about 4 MiB with gzip on its workers) are freed when the part ends, so a
 * set of many parts holds what one part does. */

typedef struct sf_set_part {
    sf_stage *chain; /* NULL once freed */
    char *path;      /* the final path */
    char *name;      /* its file name (inside path) */
    uint64_t rows, bytes, bytes_out;
    uint32_t crc;    /* CRC-32 of the file, when the set keeps them (a shard's) */
    int fixed;       /* rows and bytes given (sf_fileset_set_part), not counted */
} sf_set_part;

typedef struct sf_fileset {
    sf_pattern pat;
    char tag[9];
    sf_set_part *parts;
    size_t n, cap;
    uint64_t part_start; /* o->drained when the current part began */
    int indexed;         /* an index publishes it: settle waits for it */
    int crc;             /* keep each part's CRC-32 (sf_output_crc_on) */
    int renamed;         /* parts renamed: the next step is settle */
    int settled;         /* state recorded, earlier runs' parts removed */
    uint64_t owner;      /* the index over it (sf_output_set_index), 0: none */
    /* The record, made ready before the first rename (names, room to
     * format it), so nothing fails for memory once parts are visible. */
    char *rec_names, *rec_buf;
    size_t rec_cap;
    /* The record's to-remove list: the previous record's parts (when the
     * same index published them) and the names its own list still had on
     * disk, less the new set's names; removed after the record. */
    char *rec_remove;
    size_t rec_nremove;
} sf_fileset;

static sf_set_part *cur(const sf_output *o) { return &o->set->parts[o->set->n - 1]; }

/* Opens part n+1: its name, its chain (a temporary file beside it). */
static sf_status open_part(sf_output *o)
{
    sf_fileset *fs = o->set;
    sf_census *cs = o->cref.census;
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 16;
        sf_set_part *p = sf_realloc(cs, SF_MEM_SINK, fs->parts, cap * sizeof *p);
        if (!p)
            return sf_fail(&o->err, SF_ERR_NOMEM, "out of memory: list of parts");
        fs->parts = p;
        fs->cap = cap;
    }
    char name[4096];
    size_t len = sf_pattern_expand(&fs->pat, fs->pat.has_tag ? fs->tag : NULL, fs->n + 1, name,
                                   sizeof name);
    if (!len)
        return sf_fail(&o->err, SF_ERR_OUTPUT, "part %zu of %s: name too long", fs->n + 1,
                       o->side->path);
    int here = !strchr(o->side->path, '/');
    size_t dl = here ? 0 : strlen(fs->pat.dir) + 1;
    sf_set_part *p = &fs->parts[fs->n];
    memset(p, 0, sizeof *p);
    p->path = sf_alloc(cs, SF_MEM_SINK, dl + len + 1);
    if (!p->path)
        return sf_fail(&o->err, SF_ERR_NOMEM, "out of memory: part name");
    if (here)
        memcpy(p->path, name, len + 1);
    else
        snprintf(p->path, dl + len + 1, "%s%s%s", fs->pat.dir,
                 strcmp(fs->pat.dir, "/") ? "/" : "", name);
    p->name = p->path + strlen(p->path) - len;
    sf_status st = sf_stage_chain_open(o, p->path, -1, p->path, &p->chain);
    /* A part is a file published by rename, never a device, FIFO or
     * descriptor that a name of the pattern happens to lead to. */
    if (st == SF_OK && !sf_sink_file_temp(sf_stage_chain_tail(p->chain))) {
        st = sf_fail(&o->err, SF_ERR_OUTPUT, "part %s is not a regular file", p->path);
        sf_stage_chain_free(p->chain);
    }
    if (st != SF_OK) {
        sf_dealloc(cs, p->path);
        return st;
    }
    if (fs->crc)
        sf_sink_file_crc_on(sf_stage_chain_tail(p->chain));
    fs->n++;
    o->head = p->chain;
    fs->part_start = atomic_load_explicit(&o->drained, memory_order_relaxed);
    return SF_OK;
}

/* The current part is complete and its chain finished: its figures. */
static void part_done(sf_output *o)
{
    sf_set_part *p = cur(o);
    if (!p->fixed)
        p->bytes = atomic_load_explicit(&o->drained, memory_order_relaxed) - o->set->part_start;
    sf_stage *sink = sf_stage_chain_tail(p->chain);
    p->bytes_out = sink ? sink->in : 0;
    p->crc = sf_sink_file_crc(sink);
}

void sf_fileset_crc_on(sf_output *o)
{
    o->set->crc = 1;
    if (o->set->n) /* the first part is open already */
        sf_sink_file_crc_on(sf_stage_chain_tail(o->set->parts[o->set->n - 1].chain));
}

uint32_t sf_fileset_part_crc(const sf_output *o, size_t i)
{
    return i < o->set->n ? o->set->parts[i].crc : 0;
}

void sf_fileset_set_part(sf_output *o, size_t i, uint64_t rows, uint64_t bytes)
{
    if (i < o->set->n) {
        o->rows += rows - o->set->parts[i].rows;
        o->set->parts[i].rows = rows;
        o->set->parts[i].bytes = bytes;
        o->set->parts[i].fixed = 1;
    }
}

uint64_t sf_fileset_part_bytes_out(const sf_output *o, size_t i)
{
    return i < o->set->n ? o->set->parts[i].bytes_out : 0;
}

void sf_fileset_free(sf_output *o)
{
    sf_fileset *fs = o->set;
    if (!fs)
        return;
    sf_census *cs = o->cref.census;
    for (size_t i = 0; i < fs->n; i++) {
        if (fs->parts[i].chain == o->head)
            o->head = NULL; /* the output does not free it twice */
        sf_stage_chain_free(fs->parts[i].chain);
        sf_dealloc(cs, fs->parts[i].path);
    }
    sf_dealloc(cs, fs->parts);
    sf_dealloc(cs, fs->rec_names);
    sf_dealloc(cs, fs->rec_buf);
    sf_dealloc(cs, fs->rec_remove);
    sf_pattern_free(&fs->pat, cs);
    sf_dealloc(cs, fs);
    o->set = NULL;
}

sf_status sf_fileset_open(sf_output *o, const char *pattern)
{
    sf_census *cs = o->cref.census;
    sf_fileset *fs = sf_calloc(cs, SF_MEM_SINK, 1, sizeof *fs);
    if (!fs)
        return sf_fail(&o->err, SF_ERR_NOMEM, "out of memory: file set");
    o->set = fs;
    sf_status st = sf_pattern_parse(&fs->pat, cs, &o->err, pattern);
    if (st != SF_OK) {
        sf_dealloc(cs, fs);
        o->set = NULL;
        return st;
    }
    /* %r is the shape of a set an index names: publish then leaves the old
     * parts to sf_output_settle(), called once the index is in place. So a
     * caller that forgets to say so errs on the safe side (old parts kept),
     * never on removing what the published index names. */
    fs->indexed = fs->pat.has_tag;
    /* Never a lock file or a part in /dev, /proc, /sys (file.c's rule,
     * checked before the lock is created). */
    if (sf_output_kernel_dir(fs->pat.dir))
        return sf_fail(&o->err, SF_ERR_OUTPUT,
                       "will not create a file in %s (/dev and below, /proc, /sys: kernel file "
                       "systems) for %s",
                       fs->pat.dir, pattern);
    st = sf_side_open(&o->side, cs, &o->err, pattern, &fs->pat, NULL);
    /* Under the lock: what the previous record still had to remove (its
     * run stopped or failed before it could). Names it lists only; one
     * that is gone is skipped; one that cannot be removed is carried into
     * this run's record (prepare_remove). */
    if (st == SF_OK && sf_side_previous(o->side) && sf_side_previous(o->side)->nremove) {
        const sf_state *pr = sf_side_previous(o->side);
        int rerr = 0;
        sf_set_remove_stale(o->side->lock.dirfd, &fs->pat, pr->remove, pr->nremove, NULL, 0,
                            &rerr);
    }
    const sf_state *prev = st == SF_OK && fs->pat.has_tag ? sf_side_previous(o->side) : NULL;
    if (st == SF_OK && fs->pat.has_tag &&
        sf_set_choose_tag(&fs->pat, o->side->lock.dirfd, prev ? prev->tag : NULL, fs->tag) != 0)
        st = sf_fail(&o->err, SF_ERR_OUTPUT, "no free run tag for %s", pattern);
    if (st == SF_OK)
        st = open_part(o);
    return st; /* on failure the caller frees (open_failed) */
}

int sf_output_is_split(const sf_output *o) { return o && o->set; }

int sf_output_split_due(const sf_output *o, uint64_t row_bytes, uint64_t tail_bytes)
{
    if (!o || !o->set || o->state != SF_OUT_OPEN)
        return 0;
    const sf_set_part *p = cur(o);
    if (p->rows == 0)
        return 0;
    if (o->opt.split_rows && p->rows >= o->opt.split_rows)
        return 1;
    if (!o->opt.split_bytes)
        return 0;
    uint64_t have =
        atomic_load_explicit(&o->drained, memory_order_relaxed) + o->w.len - o->set->part_start;
    return have + row_bytes + tail_bytes > o->opt.split_bytes;
}

void sf_output_count_row(sf_output *o)
{
    o->rows++;
    if (o->set)
        cur(o)->rows++;
}

sf_status sf_output_next_part(sf_output *o)
{
    if (!o)
        return SF_ERR_ARG;
    if (!o->set || o->state != SF_OUT_OPEN)
        return o->state == SF_OUT_FAILED
                   ? SF_ERR_OUTPUT
                   : sf_fail(&o->err, SF_ERR_STATE, "next part of an output that is not split");
    if (o->w.drain(&o->w) != 0)
        return SF_ERR_OUTPUT;
    sf_status st = sf_stage_chain_finish(o->head);
    if (st == SF_OK) {
        part_done(o);
        o->head = cur(o)->chain = sf_stage_chain_trim(cur(o)->chain);
        st = open_part(o);
    }
    if (st != SF_OK) {
        o->state = SF_OUT_FAILED;
        sf_output_abort(o);
    }
    return st;
}

/* sf_output_finish, the last part: its figures. */
void sf_fileset_finished(sf_output *o)
{
    if (o->set)
        part_done(o);
}

void sf_fileset_abort(sf_output *o)
{
    for (size_t i = 0; o->set && i < o->set->n; i++)
        sf_stage_chain_abort(o->set->parts[i].chain);
}

/* The set's record (its names in fs->rec_names once ready). */
static sf_state record_of(const sf_output *o)
{
    const sf_fileset *fs = o->set;
    sf_state rec = {0};
    rec.name = o->side->name;
    rec.rows = o->rows;
    rec.bytes = atomic_load_explicit(&o->drained, memory_order_relaxed);
    memcpy(rec.tag, fs->pat.has_tag ? fs->tag : "", fs->pat.has_tag ? 9 : 1);
    rec.parts = fs->n;
    rec.names = fs->rec_names;
    rec.owner = fs->owner;
    rec.nremove = fs->rec_nremove;
    rec.remove = fs->rec_remove;
    return rec;
}

/* 1 when `name` is one of the new set's names, spelled as it spells them. */
static int new_name(const sf_fileset *fs, const char *name, size_t n)
{
    char mine[4096];
    uint64_t num;
    return sf_pattern_match(&fs->pat, name, n, 0, NULL, &num) && num >= 1 && num <= fs->n &&
           sf_pattern_expand(&fs->pat, fs->pat.has_tag ? fs->tag : NULL, num, mine,
                             sizeof mine) == n &&
           !memcmp(mine, name, n);
}

/* 1 when a to-remove entry belongs in the new record: a name of the
 * pattern without '/', not the new set's; from the previous record's own
 * to-remove list (`listed`) only while it still is a regular file (open
 * removed the rest: what is left is what it could not remove). */
static int to_remove(const sf_output *o, const char *name, int listed)
{
    const sf_fileset *fs = o->set;
    size_t n = strlen(name);
    uint64_t num;
    if (strchr(name, '/') || !sf_pattern_match(&fs->pat, name, n, 0, NULL, &num) ||
        new_name(fs, name, n))
        return 0;
    struct stat st;
    return !listed || (fstatat(o->side->lock.dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                       S_ISREG(st.st_mode));
}

/* The record's to-remove list (fs->rec_remove), before the first rename. */
static int prepare_remove(sf_output *o)
{
    sf_fileset *fs = o->set;
    const sf_state *prev = sf_side_previous(o->side);
    fs->rec_nremove = 0;
    if (!prev)
        return 0;
    const char *lists[2] = {prev->owner == fs->owner ? prev->names : NULL, prev->remove};
    size_t counts[2] = {prev->owner == fs->owner ? prev->parts : 0, prev->nremove}, size = 0;
    for (int pass = 0; pass < 2; pass++) {
        const char *s = lists[0];
        for (int l = 0; l < 2; l++, s = lists[1]) {
            for (size_t i = 0; s && i < counts[l]; i++, s += strlen(s) + 1) {
                if (!to_remove(o, s, l))
                    continue;
                size_t k = strlen(s) + 1;
                if (pass)
                    memcpy(fs->rec_remove + size, s, k);
                size += k;
                fs->rec_nremove += (size_t)pass;
            }
        }
        if (!pass && size && !(fs->rec_remove = sf_alloc(o->cref.census, SF_MEM_SINK, size)))
            return -1;
        if (!size)
            break;
        size = 0;
    }
    return 0;
}

/* Before the first rename: everything the record needs, allocated. */
static sf_status prepare_record(sf_output *o)
{
    sf_fileset *fs = o->set;
    sf_census *cs = o->cref.census;
    size_t n = 0;
    for (size_t i = 0; i < fs->n; i++)
        n += strlen(fs->parts[i].name) + 1;
    fs->rec_names = sf_alloc(cs, SF_MEM_SINK, n ? n : 1);
    if (fs->rec_names) {
        char *at = fs->rec_names;
        for (size_t i = 0; i < fs->n; i++) {
            size_t k = strlen(fs->parts[i].name) + 1;
            memcpy(at, fs->parts[i].name, k);
            at += k;
        }
        if (prepare_remove(o) == 0) {
            sf_state rec = record_of(o);
            fs->rec_cap = sf_state_format_size(&rec);
            fs->rec_buf = sf_alloc(cs, SF_MEM_SINK, fs->rec_cap);
        }
    }
    if (!fs->rec_names || !fs->rec_buf)
        return sf_fail(&o->err, SF_ERR_NOMEM, "out of memory: state record of %s",
                       o->side->path);
    return SF_OK;
}

/* The state record and the removal of earlier runs' parts. */
static sf_status settle(sf_output *o)
{
    sf_fileset *fs = o->set;
    sf_census *cs = o->cref.census;
    if (fs->settled)
        return SF_OK;
    fs->settled = 1;
    o->published = 1; /* its index is in place (or it has none) */
    sf_state rec = record_of(o);
    sf_status st = sf_side_record(o->side, &o->err, &rec, fs->rec_buf, fs->rec_cap);
    sf_dealloc(cs, fs->rec_names);
    sf_dealloc(cs, fs->rec_buf);
    fs->rec_names = fs->rec_buf = NULL;
    /* Only once the new set's record (and, before it, its index) is in
     * place: a crash before this point leaves the old parts the old index
     * names. Only the names of the record's to-remove list: the previous
     * record's parts (when the same index, or, both, none, published them)
     * and what its own list still had; never a name no record lists, which
     * may be a user's file or another output's. A crash or a failed
     * removal from here on leaves names this record lists: the next run
     * removes them at open (docs/sink.md). */
    int err = 0;
    if (fs->rec_nremove)
        sf_set_remove_stale(o->side->lock.dirfd, &fs->pat, fs->rec_remove, fs->rec_nremove,
                            fs->pat.has_tag ? fs->tag : NULL, fs->n, &err);
    sf_dealloc(cs, fs->rec_remove);
    fs->rec_remove = NULL;
    fs->rec_nremove = 0;
    if (err && st == SF_OK)
        st = sf_fail(&o->err, SF_ERR_OUTPUT,
                     "%s published, but a part of an earlier run in %s could not be removed "
                     "(%s); the next run removes it",
                     o->side->path, o->side->dir, strerror(err));
    return st;
}

sf_status sf_fileset_publish(sf_output *o, int *renamed)
{
    sf_fileset *fs = o->set;
    *renamed = 0;
    sf_status pst = fs->rec_buf ? SF_OK : prepare_record(o);
    if (pst != SF_OK)
        return pst;
    /* Every part under its final name; with %r none of them is a name the
     * published index uses, so the previous set is still whole. */
    for (size_t i = 0; i < fs->n; i++) {
        sf_stage *sink = sf_stage_chain_tail(fs->parts[i].chain);
        sf_status st = sink->vt->publish(sink);
        if (st != SF_OK) {
            /* An indexed set is not published until its index is: the
             * parts renamed so far are names no index uses. Without an
             * index, parts 1..i are the new ones. */
            o->published = !fs->indexed && i > 0;
            return st; /* the caller aborts the rest */
        }
        if (!fs->indexed)
            sf_output_no_return(o); /* part 1 is visible: the rest follow */
    }
    *renamed = 1;
    /* An indexed set's parts are new names no reader follows yet: it is
     * published when its index is (settle), not now. */
    o->published = !fs->indexed;
    /* One directory fsync for them all, before any index names them. */
    sf_status st = sf_sink_file_sync_dir(sf_stage_chain_tail(fs->parts[0].chain));
    fs->renamed = 1;
    if (st != SF_OK || fs->indexed)
        return st;
    return settle(o);
}

void sf_output_set_indexed(sf_output *o)
{
    if (o && o->set)
        o->set->indexed = 1;
}

void sf_output_set_index(sf_output *o, const sf_output *index)
{
    if (!o || !o->set || !index || !index->side)
        return;
    /* FNV-1a over the index's directory (device, inode) and file name: the
     * same index from any working directory, never another one's. */
    struct stat st;
    uint64_t h = 1469598103934665603u;
    if (fstat(index->side->lock.dirfd, &st) != 0)
        return;
    uint64_t id[2] = {(uint64_t)st.st_dev, (uint64_t)st.st_ino};
    const unsigned char *b = (const unsigned char *)id;
    for (size_t i = 0; i < sizeof id; i++)
        h = (h ^ b[i]) * 1099511628211u;
    for (const char *c = index->side->name; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211u;
    o->set->owner = h ? h : 1;
}

sf_status sf_output_settle(sf_output *o)
{
    if (!o)
        return SF_ERR_ARG;
    if (!o->set)
        return SF_OK;
    if (!o->set->renamed)
        return sf_fail(&o->err, SF_ERR_STATE, "settle before the parts were published");
    return settle(o);
}

size_t sf_fileset_count(const sf_output *o) { return o->set->n; }

const char *sf_fileset_part(const sf_output *o, size_t i, uint64_t *rows, uint64_t *bytes)
{
    if (i >= o->set->n)
        return NULL;
    const sf_set_part *p = &o->set->parts[i];
    if (rows)
        *rows = p->rows;
    if (bytes) /* a finished part's; the current one's so far, buffer included */
        *bytes = i + 1 < o->set->n || o->state != SF_OUT_OPEN || p->fixed
                     ? p->bytes
                     : atomic_load_explicit(&o->drained, memory_order_relaxed) + o->w.len -
                           o->set->part_start;
    return p->path;
}

uint64_t sf_fileset_bytes_out(const sf_output *o)
{
    uint64_t n = 0;
    for (size_t i = 0; i < o->set->n; i++) {
        sf_stage *sink = sf_stage_chain_tail(o->set->parts[i].chain);
        n += sink ? sink->in : 0;
    }
    return n;
}
