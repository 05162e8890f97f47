/* feed.c: the feed loop. The rows loop sits above the templates: the first
 * row is peeked, then every output's head is written (sf_tpl_head), each row
 * goes to each output whose head reached its rows section (sf_tpl_row),
 * then every tail (sf_tpl_tail). A split output ends a part before a row
 * that would take it past a limit: its tail, the next part, its head again.
 * After the parts are finished, an index is rendered over them through the
 * same head / row / tail, its rows being the parts. sf_render_commit checks
 * the rails, finishes every output, then publishes them (docs/architecture.md,
 * "A run").
 *
 * Per row nothing is allocated: each output's runner, maps and row buffer
 * are made once per run; the row buffer and the largest-value copy grow to
 * the largest row seen and stay (a `unique` check's set grows with the
 * distinct values it keeps, geometrically: docs/checks.md).
 *
 * Row checks (issue 9): before a row renders into an output, the output's
 * template rules are checked; a row that fails one, or whose template fails
 * (a formatter: not a date), fails the run (on_invalid fail: SF_ERR_INVALID,
 * "row N: ...") or is left out of that output only (skip: counted, listed
 * in the reject log). Under skip, a template that can fail renders each row
 * into the row buffer first, so a failed row writes nothing. */
#include <stdio.h>
#include <string.h>

#include "feed.h"
#include "value/date.h"

/* ---- the context --------------------------------------------------------- */

static const sf_data_ops root_ops, rows_ops, row_ops, part_ops, first_ops;

static int root_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)name, (void)len;
    sf_feed_out *f = obj;
    if (sym == f->rows_sym) {
        out->kind = SF_VAL_LIST;
        out->truthy = (uint8_t)(f->is_index ? f->nparts > 0 : f->r->has_row);
        out->ops = &rows_ops;
        out->obj = f;
        return 1;
    }
    int32_t k = f->rootmap[sym];
    if (k == ROOT_FIRST) { /* a map over the first row's copy; falsy without rows */
        out->kind = SF_VAL_MAP;
        out->truthy = f->r->first_vals != NULL;
        out->s = NULL;
        out->n = 0;
        out->ops = &first_ops;
        out->obj = f;
        return 1;
    }
    if (k == ROOT_ROW_COUNT) {
        out->kind = SF_VAL_TEXT;
        if (f->measuring == 1) {
            out->s = ROW_COUNT_BOUND;
            out->n = sizeof ROW_COUNT_BOUND - 1;
            out->truthy = 1;
        } else {
            uint64_t n = f->measuring ? 0 : f->part_rows;
            out->n = sf_format_i64(f->rc_text, (int64_t)n);
            out->s = f->rc_text;
            out->truthy = n != 0;
        }
        return 1;
    }
    return sf_feed_root_value(f->r, k, out);
}

static int first_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)name, (void)len;
    sf_feed_out *f = obj;
    int32_t c = f->colmap[sym];
    if (c < 0 || !f->r->first_vals)
        return 0;
    *out = f->r->first_vals[c];
    return 1;
}

/* The loop pushes the rows; the list is asked for an item only when a
 * template walks it after the cut, a second time. */
static int rows_item(void *obj, size_t idx, sf_val *out)
{
    (void)idx, (void)out;
    sf_render *r = ((sf_feed_out *)obj)->r;
    r->fail = sf_fail(&r->err, SF_ERR_TEMPLATE,
                      "the rows are iterated a second time; a query's rows stream once");
    return -1;
}

static int row_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)name, (void)len;
    sf_feed_out *f = obj;
    int32_t c = f->colmap[sym];
    if (c < 0)
        return 0;
    sf_source_column(f->r->src, c, out);
    return 1;
}

/* An index's row: one part. */
enum { F_PART, F_NAME, F_URL, F_ROWS, F_BYTES, F_LASTMOD, F_COUNT };
/* "row_count", not "rows": {{rows}} is the list in every template. */
static const char *const part_fields[F_COUNT] = {"part", "name", "url", "row_count", "bytes",
                                                 "lastmod"};

int sf_feed_index_field(const char *name)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strcmp(part_fields[i], name) == 0)
            return i;
    return -1;
}

static const char *part_name(const sf_feed_out *ix)
{
    const char *p = sf_output_part_path(ix->parts->out, ix->ipart);
    if (!p)
        return "";
    const char *slash = strrchr(p, '/');
    return slash ? slash + 1 : p;
}

static void text_val(sf_val *out, const char *s, size_t n)
{
    out->kind = SF_VAL_TEXT;
    out->s = s;
    out->n = n;
    out->truthy = n > 0;
}

static int part_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)name, (void)len;
    sf_feed_out *ix = obj;
    const sf_feed_out *p = ix->parts;
    int32_t field = ix->colmap[sym];
    const char *s;
    switch (field) {
    case F_PART:
    case F_ROWS:
    case F_BYTES: {
        uint64_t v = field == F_PART   ? (uint64_t)ix->ipart + 1
                     : field == F_ROWS ? sf_output_part_rows(p->out, ix->ipart)
                                       : sf_output_part_bytes(p->out, ix->ipart);
        char *b = ix->inum[field == F_PART ? 0 : field == F_ROWS ? 1 : 2];
        int n = snprintf(b, sizeof ix->inum[0], "%llu", (unsigned long long)v);
        text_val(out, b, (size_t)n);
        out->truthy = v != 0;
        return 1;
    }
    case F_NAME:
        s = part_name(ix);
        text_val(out, s, strlen(s));
        return 1;
    case F_URL: {
        s = part_name(ix);
        size_t n = strlen(s);
        ix->iurl.len = 0;
        /* The file name percent-encoded (RFC 3986: all but the unreserved
         * characters), so a name with a space, '&' or 'é' is a valid URL. */
        int bad = sf_buf_append(&ix->iurl, ix->base_url, ix->base_len) != 0;
        for (size_t i = 0; !bad && i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~') {
                bad = sf_buf_append(&ix->iurl, s + i, 1) != 0;
            } else {
                static const char hex[] = "0123456789ABCDEF";
                char e[3] = {'%', hex[c >> 4], hex[c & 15]};
                bad = sf_buf_append(&ix->iurl, e, 3) != 0;
            }
        }
        if (bad) {
            ix->r->fail = sf_fail(&ix->r->err, SF_ERR_NOMEM, "out of memory: index url");
            return -1;
        }
        text_val(out, ix->iurl.data, ix->iurl.len);
        return 1;
    }
    case F_LASTMOD:
        if (p->maxcol >= 0 && ix->ipart < p->nparts) {
            const uint64_t *offs = (const uint64_t *)(const void *)p->offs.data;
            uint64_t from = offs[ix->ipart];
            uint64_t to = ix->ipart + 1 < p->nparts ? offs[ix->ipart + 1] : p->maxes.len;
            text_val(out, p->maxes.data + from, (size_t)(to - from));
        } else {
            text_val(out, "", 0);
        }
        return 1;
    default:
        return 0;
    }
}

static const sf_data_ops root_ops = {.lookup = root_lookup};
static const sf_data_ops rows_ops = {.item = rows_item};
static const sf_data_ops row_ops = {.lookup = row_lookup};
static const sf_data_ops part_ops = {.lookup = part_lookup};
static const sf_data_ops first_ops = {.lookup = first_lookup};

/* The first row, copied once when the rows start: every part's head (and
 * the tail) reads the same values, though the source has moved on. */
static sf_status copy_first(sf_render *r)
{
    sf_source *src = r->src;
    sf_census *cs = r->cref.census;
    size_t n = src->ncols > 0 ? (size_t)src->ncols : 1, bytes = 1;
    r->first_vals = sf_calloc(cs, SF_MEM_RENDER, n, sizeof *r->first_vals);
    if (!r->first_vals)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: the first row");
    for (int i = 0; i < src->ncols; i++) {
        sf_source_column(src, i, &r->first_vals[i]);
        if (r->first_vals[i].kind == SF_VAL_TEXT)
            bytes += r->first_vals[i].n;
    }
    if (!(r->first_text = sf_alloc(cs, SF_MEM_RENDER, bytes))) {
        sf_feed_release_first(r);
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: the first row");
    }
    size_t at = 0;
    for (int i = 0; i < src->ncols; i++) {
        sf_val *v = &r->first_vals[i];
        if (v->kind != SF_VAL_TEXT)
            continue;
        if (v->n)
            memcpy(r->first_text + at, v->s, v->n);
        v->s = r->first_text + at;
        at += v->n;
    }
    return SF_OK;
}

void sf_feed_release_first(sf_render *r)
{
    sf_dealloc(r->cref.census, r->first_vals);
    sf_dealloc(r->cref.census, r->first_text);
    r->first_vals = NULL;
    r->first_text = NULL;
}

/* ---- the row buffer (split by bytes) -------------------------------------- */

static int scratch_drain(sf_wbuf *w)
{
    sf_scratch *s = (sf_scratch *)w;
    size_t cap = w->cap * 2 < s->bound ? w->cap * 2 : s->bound;
    if (cap >= w->len + 64) {
        char *p = sf_realloc(s->cs, SF_MEM_OUTPUT, w->buf, cap);
        if (!p) {
            s->nomem = 1;
            return -1;
        }
        w->buf = p;
        w->cap = cap;
        return 0;
    }
    /* Past the bound: the row cannot fit a part; count what follows. */
    s->over += w->len;
    w->len = 0;
    return 0;
}

static sf_status scratch_init(sf_render *r, sf_scratch *s, uint64_t limit)
{
    s->cs = r->cref.census;
    s->bound = limit > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)limit + 64;
    if (s->bound < 2 * SF_WBUF_MIN)
        s->bound = 2 * SF_WBUF_MIN;
    size_t cap = s->bound < ((size_t)64 << 10) ? s->bound : (size_t)64 << 10;
    s->w.buf = sf_alloc(s->cs, SF_MEM_OUTPUT, cap);
    if (!s->w.buf)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: row buffer");
    s->w.cap = cap;
    s->w.len = 0;
    s->w.drain = scratch_drain;
    return SF_OK;
}

static void scratch_reset(sf_scratch *s)
{
    s->w.len = 0;
    s->over = 0;
}

static uint64_t scratch_bytes(const sf_scratch *s) { return s->over + s->w.len; }

/* ---- the loop ------------------------------------------------------------ */

static const char *label(const sf_feed_out *f, char *buf, size_t n)
{
    const char *p = sf_output_part_path(f->out, 0);
    if (p && *p)
        snprintf(buf, n, "%s", p);
    else
        snprintf(buf, n, "output %zu", f->num);
    return buf;
}

/* The render's message for a template call's failure. */
static sf_status tpl_failed(sf_render *r, sf_feed_out *f, sf_status st)
{
    if (st == SF_ERR_SOURCE && r->fail != SF_OK)
        return r->fail;
    /* SF_ERR_INVALID from a head or tail (a formatter over the first
     * row's copy or a parameter) keeps the engine's message: it names the
     * value and the tag; no row can be left out there, skip or not. A
     * column's value is the first row's: the message says so. */
    if (st == SF_ERR_INVALID && r->has_row && f->run) {
        const char *col = sf_tpl_run_bad(f->run)->column;
        for (int i = 0; i < r->src->ncols; i++)
            if (!strcmp(r->src->colnames[i], col)) {
                char msg[SF_ERRMSG_SIZE];
                snprintf(msg, sizeof msg, "%s", r->err.msg);
                return sf_fail(&r->err, SF_ERR_INVALID, "row 1, read by {{#first}}: %s", msg);
            }
    }
    if (st == SF_ERR_OUTPUT && f->sc.nomem)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: row buffer");
    if (st == SF_ERR_OUTPUT) {
        /* The buffer says only that its drain failed: the output knows why
         * (a cancel and out of memory keep their status). */
        sf_status why = sf_output_drain_status(f->out);
        if (why == SF_ERR_CANCELLED || why == SF_ERR_NOMEM)
            return sf_fail(&r->err, why, "%s after row %llu: %s",
                           why == SF_ERR_CANCELLED ? "cancelled" : "out of memory",
                           (unsigned long long)sf_render_rows(r), sf_output_errmsg(f->out));
        return sf_fail(&r->err, SF_ERR_OUTPUT, "output failed after row %llu: %s",
                       (unsigned long long)sf_render_rows(r), sf_output_errmsg(f->out));
    }
    return st;
}

static sf_status copy_scratch(sf_render *r, sf_feed_out *f)
{
    if (sf_wbuf_put(&f->out->w, f->sc.w.buf, f->sc.w.len) != 0)
        return tpl_failed(r, f, SF_ERR_OUTPUT);
    return SF_OK;
}

/* A part's head: straight into the output, or through the row buffer to be
 * measured. */
static sf_status start_part(sf_render *r, sf_feed_out *f)
{
    int reached;
    sf_status st;
    f->part_rows = 0;
    if (f->body_only) {
        /* A shard: the head is publish's (shard.c); rendered for its walk. */
        st = sf_tpl_head(f->run, &f->hide.w, &reached);
    } else if (!f->split_bytes || f->measured) {
        /* Later parts' heads are the first's (the same values): straight
         * in, as the row buffer holds the row that starts the part. */
        st = sf_tpl_head(f->run, &f->out->w, &reached);
    } else {
        scratch_reset(&f->sc);
        st = sf_tpl_head(f->run, &f->sc.w, &reached);
        f->head_bytes = scratch_bytes(&f->sc);
        if (st == SF_OK && f->sc.over) {
            char l[256];
            return sf_fail(&r->err, SF_ERR_OUTPUT,
                           "the head of %s is %llu bytes, more than the split limit of %llu",
                           label(f, l, sizeof l), (unsigned long long)f->head_bytes,
                           (unsigned long long)f->split_bytes);
        }
        if (st == SF_OK)
            st = copy_scratch(r, f);
    }
    if (st != SF_OK)
        return tpl_failed(r, f, st);
    if (f->reached && !reached) /* a later part: the same values, the same walk */
        return sf_fail(&r->err, SF_ERR_STATE, "a part's head did not reach the rows");
    f->reached = reached;
    return SF_OK;
}

/* The tail bytes of every part (they read no row, and what they read is
 * the same for the whole run), rendered once to be counted. */
static sf_status measure_tail(sf_render *r, sf_feed_out *f)
{
    /* row_count varies: measured at its widest (20 digits, truthy), and
     * at 0 (falsy: a {{^row_count}} body, for a part whose rows were all
     * left out); the larger bounds every part's tail. */
    uint64_t most = 0;
    sf_status st = SF_OK;
    for (int m = 1; st == SF_OK && m <= 2; m++) {
        scratch_reset(&f->sc);
        f->measuring = m;
        st = sf_tpl_tail_ex(f->run, &f->sc.w, 1);
        f->measuring = 0;
        if (scratch_bytes(&f->sc) > most)
            most = scratch_bytes(&f->sc);
    }
    if (st != SF_OK)
        return tpl_failed(r, f, st);
    f->tail_bytes = most;
    f->measured = 1;
    if (f->head_bytes + f->tail_bytes > f->split_bytes) {
        char l[256];
        return sf_fail(&r->err, SF_ERR_OUTPUT,
                       "the head and tail of a part of %s are %llu bytes, more than the split "
                       "limit of %llu",
                       label(f, l, sizeof l), (unsigned long long)(f->head_bytes + f->tail_bytes),
                       (unsigned long long)f->split_bytes);
    }
    return SF_OK;
}

/* The current part's largest max_column value goes on record. */
static sf_status close_max(sf_render *r, sf_feed_out *f)
{
    if (!f->index && !f->shard_parts)
        return SF_OK;
    uint64_t at = f->maxes.len;
    if (sf_buf_append(&f->offs, &at, sizeof at) != 0 ||
        (f->have_max && sf_buf_append(&f->maxes, f->cur_max.data, f->cur_max.len) != 0))
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: index values");
    f->have_max = 0;
    f->nparts++;
    return SF_OK;
}

/* Seconds since the epoch of a value that is a date (value/date.h), or 0
 * when it is none. */
static int instant(const char *s, size_t n, long long *t)
{
    sf_date d;
    char why[8];
    if (sf_date_parse(s, n, &d, why, sizeof why) != 0)
        return 0;
    *t = ((sf_days_from_civil(d.year, d.month, d.day) * 24 + d.hour) * 60 + d.min - d.off) * 60 +
         d.sec;
    return 1;
}

/* Whether the largest value so far, a[0..an), is at least b[0..bn): as
 * instants when both are dates (2026-01-31T10:00:00+02:00 is before
 * 2026-01-31T09:00:00Z, which their text says the other way round), else
 * as bytes. */
static int later_or_same(const char *a, size_t an, const char *b, size_t bn)
{
    long long ta, tb;
    if (instant(a, an, &ta) && instant(b, bn, &tb))
        return ta >= tb;
    size_t n = bn < an ? bn : an;
    int c = memcmp(b, a, n);
    return c < 0 || (c == 0 && bn <= an);
}

static sf_status track_max(sf_render *r, sf_feed_out *f)
{
    sf_val v;
    sf_source_column(r->src, f->maxcol, &v);
    if (v.kind != SF_VAL_TEXT)
        return SF_OK; /* NULL: no value */
    if (f->have_max && later_or_same(f->cur_max.data, f->cur_max.len, v.s, v.n))
        return SF_OK;
    f->cur_max.len = 0;
    if (sf_buf_append(&f->cur_max, v.s, v.n) != 0)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory: index values");
    f->have_max = 1;
    return SF_OK;
}

static sf_status next_part(sf_render *r, sf_feed_out *f)
{
    sf_status st = sf_tpl_tail(f->run, &f->out->w);
    if (st != SF_OK)
        return tpl_failed(r, f, st);
    if ((st = close_max(r, f)) != SF_OK)
        return st;
    if ((st = sf_output_next_part(f->out)) != SF_OK)
        return sf_fail_from(&r->err, st, NULL, sf_output_errmsg(f->out));
    return start_part(r, f);
}

/* ---- row checks, skipped rows, the reject log -------------------------- */

/* Internal: the row is left out of this output (never returned). */
#define SKIPPED ((sf_status)1001)

static int rule_column(void *ud, size_t i, const char *name, sf_val *out)
{
    (void)name;
    sf_feed_out *f = ud;
    int32_t c = f->rulemap[i];
    if (c < 0)
        return 0;
    sf_source_column(f->r->src, c, out);
    return 1;
}

/* s[0..n) into the reject log, tabs, newlines, CRs and backslashes written
 * as \t \n \r \\ so each record stays one line of five fields. */
static int log_field(sf_output *o, const char *s, size_t n)
{
    char buf[256];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i], e = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\\' ? '\\' : 0;
        if (k + 2 > sizeof buf) {
            if (sf_output_write(o, buf, k) != SF_OK)
                return -1;
            k = 0;
        }
        if (e) {
            buf[k++] = '\\';
            buf[k++] = e;
        } else {
            buf[k++] = c;
        }
    }
    return k && sf_output_write(o, buf, k) != SF_OK ? -1 : 0;
}

/* How the reject log names the output a row was left out of: its file,
 * for parts the part's. */
static const char *log_name(const sf_feed_out *f, char *buf, size_t n)
{
    size_t parts = sf_output_part_count(f->out);
    const char *p = parts ? sf_output_part_path(f->out, parts - 1) : NULL;
    return p && *p ? p : label(f, buf, n);
}

static sf_status reject_line(sf_render *r, sf_feed_out *f, const char *column, const char *reason)
{
    sf_output *o = r->reject;
    if (!o)
        return SF_OK;
    char num[24], l[256];
    size_t nn = sf_format_i64(num, (int64_t)sf_render_rows(r));
    sf_val key = {.kind = SF_VAL_NULL};
    if (r->src->ncols > 0)
        sf_source_column(r->src, 0, &key);
    const char *name = log_name(f, l, sizeof l);
    int bad = sf_output_write(o, num, nn) != SF_OK || sf_output_write(o, "\t", 1) != SF_OK;
    /* The key: the row's first column (NULL as \N). */
    if (!bad && key.kind == SF_VAL_TEXT)
        bad = log_field(o, key.s, key.n) != 0;
    else if (!bad && key.kind == SF_VAL_BOOL)
        bad = log_field(o, key.truthy ? "true" : "false", key.truthy ? 4 : 5) != 0;
    else if (!bad)
        bad = sf_output_write(o, "\\N", 2) != SF_OK;
    bad = bad || sf_output_write(o, "\t", 1) != SF_OK || log_field(o, name, strlen(name)) ||
          sf_output_write(o, "\t", 1) != SF_OK || log_field(o, column, strlen(column)) ||
          sf_output_write(o, "\t", 1) != SF_OK || log_field(o, reason, strlen(reason)) ||
          sf_output_write(o, "\n", 1) != SF_OK;
    if (bad)
        return sf_fail(&r->err, sf_output_drain_status(o) == SF_ERR_NOMEM ? SF_ERR_NOMEM
                                                                          : SF_ERR_OUTPUT,
                       "writing the reject log after row %llu: %s",
                       (unsigned long long)sf_render_rows(r), sf_output_errmsg(o));
    return SF_OK;
}

/* A row that failed a rule (where: the rule's position) or its template
 * (where NULL: err holds the engine's message). */
static sf_status row_invalid(sf_render *r, sf_feed_out *f, const char *column, const char *reason,
                             const char *where)
{
    unsigned long long n = (unsigned long long)sf_render_rows(r);
    if (!r->skip_invalid) {
        if (where)
            return sf_fail(&r->err, SF_ERR_INVALID, "row %llu: column %s: %s (rule at %s)", n,
                           column, reason, where);
        char msg[SF_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "%s", r->err.msg);
        return sf_fail(&r->err, SF_ERR_INVALID, "row %llu: %s", n, msg);
    }
    f->rows_skipped++;
    sf_status st = reject_line(r, f, column, reason);
    sf_err_clear(&r->err);
    return st != SF_OK ? st : SKIPPED;
}

/* A template call on a row failed: a formatter's SF_ERR_INVALID is the
 * row's (skipped only when nothing of it was written); the rest as before. */
static sf_status row_tpl_failed(sf_render *r, sf_feed_out *f, sf_status st, int buffered)
{
    if (st != SF_ERR_INVALID)
        return tpl_failed(r, f, st);
    if (r->skip_invalid && !buffered) /* cannot happen: can_fail buffers */
        return sf_fail(&r->err, SF_ERR_STATE, "row %llu: %s (written in part)",
                       (unsigned long long)sf_render_rows(r), r->err.msg);
    const sf_tpl_bad *bad = sf_tpl_run_bad(f->run);
    char reason[SF_ERRMSG_SIZE];
    snprintf(reason, sizeof reason, "%s", bad->reason[0] ? bad->reason : r->err.msg);
    return row_invalid(r, f, bad->column, reason, NULL);
}

static sf_status feed_row(sf_render *r, sf_feed_out *f)
{
    sf_val row = {.kind = SF_VAL_MAP, .truthy = 1, .ops = &row_ops, .obj = f};
    sf_status st;
    if (f->checker) {
        sf_tpl_verdict v;
        sf_status cs = sf_tpl_checker_row(f->checker, rule_column, f, &v);
        if (cs == SF_ERR_NOMEM)
            return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory checking row %llu (%s)",
                           (unsigned long long)sf_render_rows(r), v.where);
        if (cs != SF_OK)
            return row_invalid(r, f, v.column, v.reason, v.where);
    }
    /* Split by bytes measures the row before it goes in; a row that may
     * fail under skip is held until it succeeded. */
    int buffered = f->split_bytes || f->can_fail;
    uint64_t bytes = 0;
    if (buffered) {
        scratch_reset(&f->sc);
        if ((st = sf_tpl_row(f->run, &f->sc.w, &row)) != SF_OK)
            return row_tpl_failed(r, f, st, 1);
        bytes = scratch_bytes(&f->sc);
        if (f->split_bytes && f->head_bytes + bytes + f->tail_bytes > f->split_bytes) {
            char l[256];
            return sf_fail(&r->err, SF_ERR_OUTPUT,
                           "row %llu is %llu bytes: with a part's head and tail (%llu bytes) "
                           "that is more than the split limit (%llu bytes) of %s",
                           (unsigned long long)sf_render_rows(r), (unsigned long long)bytes,
                           (unsigned long long)(f->head_bytes + f->tail_bytes),
                           (unsigned long long)f->split_bytes, label(f, l, sizeof l));
        }
    }
    if (f->split && sf_output_split_due(f->out, bytes, f->tail_bytes) &&
        (st = next_part(r, f)) != SF_OK)
        return st;
    if (buffered)
        st = copy_scratch(r, f);
    else if ((st = sf_tpl_row(f->run, &f->out->w, &row)) != SF_OK)
        st = row_tpl_failed(r, f, st, 0);
    if (st != SF_OK)
        return st;
    if (f->checker && (st = sf_tpl_checker_keep(f->checker, &r->err)) != SF_OK)
        return st;
    sf_output_count_row(f->out);
    f->rows_written++;
    f->part_rows++;
    return (f->index || f->body_only || f->shard_parts) && f->maxcol >= 0 ? track_max(r, f)
                                                                           : SF_OK;
}

/* What only the loop needs (runner, maps, row buffer): freed after it. */
void sf_feed_release_loop(sf_feed_out *f)
{
    sf_census *cs = f->r->cref.census;
    sf_tpl_run_free(f->run);
    f->run = NULL;
    sf_dealloc(cs, f->colmap);
    sf_dealloc(cs, f->rootmap);
    f->colmap = f->rootmap = NULL;
    sf_dealloc(cs, f->sc.w.buf);
    f->sc.w.buf = NULL;
    sf_dealloc(cs, f->hide.w.buf);
    f->hide.w.buf = NULL;
    sf_buf_free(&f->cur_max);
    sf_tpl_checker_free(f->checker);
    f->checker = NULL;
    sf_dealloc(cs, f->rulemap);
    f->rulemap = NULL;
}

/* Everything, with what commit needs (the parts' largest values). */
void sf_feed_release(sf_feed_out *f)
{
    sf_census *cs = f->r->cref.census;
    sf_feed_release_loop(f);
    sf_buf_free(&f->maxes);
    sf_buf_free(&f->offs);
    sf_buf_free(&f->iurl);
    sf_dealloc(cs, f->max_column);
    f->max_column = NULL;
}

static sf_status make_run(sf_render *r, sf_feed_out *f)
{
    sf_val root = {.kind = SF_VAL_MAP, .truthy = 1, .ops = &root_ops, .obj = f};
    sf_val rows = {.kind = SF_VAL_LIST, .ops = &rows_ops, .obj = f};
    f->run = sf_tpl_run_create(r->cref.census, f->tpl, &root, &rows, &r->err);
    return f->run ? SF_OK : sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
}

static sf_status row_failed(sf_render *r, int rc)
{
    (void)rc;
    int c = atomic_load(&r->cancel);
    return sf_fail(&r->err, c ? SF_ERR_CANCELLED : sf_source_row_status(r->src),
                   "%s at row %llu: %s", c ? "cancelled" : "query failed",
                   (unsigned long long)sf_render_rows(r) + 1, sf_source_errmsg(r->src));
}

sf_status sf_feed_loop(sf_render *r)
{
    sf_census *cs = r->cref.census;
    sf_status st;
    for (size_t i = 0; i < r->nouts; i++) {
        sf_feed_out *f = r->outs[i];
        if (f->is_index)
            continue;
        if ((st = make_run(r, f)) != SF_OK)
            return st;
        f->split = sf_output_is_split(f->out);
        f->split_bytes = f->split ? sf_output_split_bytes(f->out) : 0;
        /* Formatters are what can fail while a row renders (rules are
         * checked before): only then, and only under skip, is a row held. */
        f->can_fail = r->skip_invalid && f->tpl->nfcalls > 0;
        if ((f->split_bytes || f->can_fail) &&
            (st = scratch_init(r, &f->sc, f->split_bytes ? f->split_bytes : UINT64_MAX)) != SF_OK)
            return st;
        /* A shard's head and tail: counted and dropped past 8 KiB. */
        if (f->body_only && (st = scratch_init(r, &f->hide, 0)) != SF_OK)
            return st;
        sf_buf_init(&f->cur_max, cs, SF_MEM_ROW);
        sf_buf_init(&f->maxes, cs, SF_MEM_RENDER);
        sf_buf_init(&f->offs, cs, SF_MEM_RENDER);
    }
    /* The first row decides {{^rows}} and surfaces a failing query before a
     * byte is written. */
    atomic_store(&r->running, r->src);
    if (atomic_load(&r->cancel))
        return sf_fail(&r->err, SF_ERR_CANCELLED, "cancelled before the first row");
    int rc = sf_source_next(r->src);
    if (rc < 0)
        return row_failed(r, rc);
    r->has_row = rc;
    if (r->has_row && r->reads_first && (st = copy_first(r)) != SF_OK)
        return st;

    int any = 0;
    for (size_t i = 0; i < r->nouts; i++) {
        sf_feed_out *f = r->outs[i];
        if (f->is_index)
            continue;
        if ((st = start_part(r, f)) != SF_OK)
            return st;
        if (f->reached && f->split_bytes && (st = measure_tail(r, f)) != SF_OK)
            return st;
        any |= f->reached;
    }
    if (r->has_row && any) {
        for (;;) {
            atomic_store_explicit(&r->rows,
                                  atomic_load_explicit(&r->rows, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            for (size_t i = 0; i < r->nouts; i++)
                if (r->outs[i]->reached && (st = feed_row(r, r->outs[i])) != SF_OK &&
                    st != SKIPPED)
                    return st;
            if (atomic_load_explicit(&r->cancel, memory_order_relaxed))
                return sf_fail(&r->err, SF_ERR_CANCELLED, "cancelled after row %llu",
                               (unsigned long long)sf_render_rows(r));
            rc = sf_source_next(r->src);
            if (rc < 0)
                return row_failed(r, rc);
            if (rc == 0)
                break;
        }
    }
    for (size_t i = 0; i < r->nouts; i++) {
        sf_feed_out *f = r->outs[i];
        if (f->is_index)
            continue;
        if (f->reached &&
            (st = sf_tpl_tail(f->run, f->body_only ? &f->hide.w : &f->out->w)) != SF_OK)
            return tpl_failed(r, f, st);
        if ((st = close_max(r, f)) != SF_OK)
            return st;
        if (f->body_only && f->have_max &&
            !(r->shard_lastmod = sf_alloc(cs, SF_MEM_RENDER, f->cur_max.len + 1)))
            return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
        if (f->body_only && f->have_max) {
            memcpy(r->shard_lastmod, f->cur_max.data, f->cur_max.len);
            r->shard_lastmod[f->cur_max.len] = '\0';
        }
        /* A shard's unique values go in its manifest's company: publish
         * checks them across the shards (shard.c). */
        if ((f->body_only || f->shard_parts) && f->checker &&
            sf_tpl_rules_unique_count(f->tpl) && (st = sf_shard_take_unique(r, f)) != SF_OK)
            return st;
    }
    return SF_OK;
}

/* Publishing shards (shard.c): the head into `head`, the tail into `tail`,
 * of one walk of f's template, as a render over `rows` rows (none: the
 * empty branch) writes them; row_count is `rows`. */
sf_status sf_feed_head_tail(sf_render *r, sf_feed_out *f, sf_output *head, sf_output *tail,
                            uint64_t rows)
{
    sf_status st = make_run(r, f);
    int reached = 0;
    r->has_row = rows > 0;
    if (st == SF_OK)
        st = sf_tpl_head(f->run, &head->w, &reached);
    f->part_rows = rows;
    if (st == SF_OK && reached)
        st = sf_tpl_tail(f->run, &tail->w);
    if (st == SF_ERR_SOURCE && r->fail != SF_OK)
        return r->fail;
    if (st != SF_OK)
        return tpl_failed(r, f, st);
    return SF_OK;
}

/* ---- commit: rails, finish, indexes, publish ------------------------------- */

/* The rails count the rows each output wrote (a row skipped by a check is
 * not in it). */
sf_status sf_feed_rail(sf_render *r, const sf_output *out, uint64_t rows, const char *name)
{
    if (r->min_rows_set && rows < r->min_rows)
        return sf_fail(&r->err, SF_ERR_REFUSED,
                       "refusing to publish %s: %llu rows, fewer than the minimum of %llu "
                       "(min_rows); the previous document stays",
                       name, (unsigned long long)rows, (unsigned long long)r->min_rows);
    uint64_t prev;
    if (r->max_drop_set && sf_output_previous_rows(out, &prev) && rows < prev) {
        double drop = 100.0 * (double)(prev - rows) / (double)prev;
        if (drop > r->max_drop)
            return sf_fail(&r->err, SF_ERR_REFUSED,
                           "refusing to publish %s: %llu rows against %llu in the previous "
                           "run, a drop of %.1f%%, more than %g%% (max_drop); the previous "
                           "document stays",
                           name, (unsigned long long)rows, (unsigned long long)prev, drop,
                           r->max_drop);
    }
    return SF_OK;
}

static sf_status rails(sf_render *r)
{
    for (size_t i = 0; i < r->nouts; i++) {
        sf_feed_out *f = r->outs[i];
        if (f->is_index)
            continue;
        char l[256];
        sf_status st = sf_feed_rail(r, f->out, f->rows_written,
                                    label(f->index ? f->index : f, l, sizeof l));
        if (st != SF_OK)
            return st;
    }
    return SF_OK;
}

static sf_status render_index(sf_render *r, sf_feed_out *ix)
{
    sf_feed_out *p = ix->parts;
    size_t n = sf_output_part_count(p->out);
    if (n != p->nparts)
        return sf_fail(&r->err, SF_ERR_STATE,
                       "the index of output %zu: the output has %zu parts, the render wrote %zu",
                       p->num, n, p->nparts);
    ix->nparts = n;
    sf_buf_init(&ix->iurl, r->cref.census, SF_MEM_RENDER);
    sf_status st = make_run(r, ix);
    int reached = 0;
    if (st == SF_OK)
        st = sf_tpl_head(ix->run, &ix->out->w, &reached);
    sf_val row = {.kind = SF_VAL_MAP, .truthy = 1, .ops = &part_ops, .obj = ix};
    for (size_t i = 0; st == SF_OK && reached && i < n; i++) {
        ix->ipart = i;
        st = sf_tpl_row(ix->run, &ix->out->w, &row);
    }
    if (st == SF_OK && reached)
        st = sf_tpl_tail(ix->run, &ix->out->w);
    if (st == SF_ERR_SOURCE && r->fail != SF_OK)
        return r->fail;
    if (st == SF_ERR_OUTPUT)
        return sf_fail(&r->err, SF_ERR_OUTPUT, "writing the index: %s", sf_output_errmsg(ix->out));
    return st;
}

static void abort_all(sf_render *r)
{
    for (size_t i = 0; i < r->nouts; i++)
        sf_output_abort(r->outs[i]->out);
    sf_output_abort(r->reject);
}

static sf_status output_failed(sf_render *r, sf_feed_out *f, sf_status st)
{
    return sf_fail_from(&r->err, st, NULL, sf_output_errmsg(f->out));
}

static sf_status commit(sf_render *r);

sf_status sf_render_commit(sf_render *r)
{
    if (!r)
        return SF_ERR_ARG;
    sf_err_clear(&r->err);
    if (!r->executed)
        return sf_fail(&r->err, SF_ERR_STATE, "commit without a successful sf_render_execute()");
    if (r->committed)
        return sf_fail(&r->err, SF_ERR_STATE, "this render has been committed already");
    r->committed = 1;
    /* sf_render_cancel() reaches the commit too (a writer thread's drain,
     * the fsyncs before the first rename), as it reached the rows. */
    for (size_t i = 0; i < r->nouts; i++)
        atomic_store(&r->outs[i]->out->cancel, &r->cancel);
    if (r->reject)
        atomic_store(&r->reject->cancel, &r->cancel);
    sf_status st = commit(r);
    if (st == SF_OK && r->shard)
        st = sf_shard_manifest(r);
    for (size_t i = 0; i < r->nouts; i++)
        atomic_store(&r->outs[i]->out->cancel, NULL);
    if (r->reject)
        atomic_store(&r->reject->cancel, NULL);
    return st;
}

static sf_status commit(sf_render *r)
{
    r->fail = SF_OK;
    sf_status st = rails(r);
    /* Every document is finished before any is published: parts, then the
     * indexes over them (which need the parts' final names and sizes). */
    for (size_t i = 0; st == SF_OK && i < r->nouts; i++)
        if (!r->outs[i]->is_index && (st = sf_output_finish(r->outs[i]->out)) != SF_OK)
            st = output_failed(r, r->outs[i], st);
    for (size_t i = 0; st == SF_OK && i < r->nouts; i++) {
        sf_feed_out *f = r->outs[i];
        if (f->is_index && (st = render_index(r, f)) == SF_OK &&
            (st = sf_output_finish(f->out)) != SF_OK)
            st = output_failed(r, f, st);
    }
    if (st == SF_OK && r->reject && (st = sf_output_finish(r->reject)) != SF_OK)
        st = sf_fail_from(&r->err, st, "the reject log", sf_output_errmsg(r->reject));
    if (st != SF_OK) {
        abort_all(r);
        return st;
    }
    /* Each set learns its index before its record is prepared (at its
     * publish, before the first rename: nothing allocated after one). */
    for (size_t i = 0; i < r->nouts; i++)
        if (!r->outs[i]->is_index && r->outs[i]->index)
            sf_output_set_index(r->outs[i]->out, r->outs[i]->index->out);
    /* Parts before their index: the index is the set's commit point. Until
     * something is visible, a failure publishes nothing; after the first
     * rename (the point of no return) every other output is still
     * published, its index too if its parts are, and the first failure is
     * returned: a renamed document cannot be taken back, so holding the
     * others back would only leave a mixed state for no gain. */
    sf_status first = SF_OK;
    int visible = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < r->nouts; i++) {
            sf_feed_out *f = r->outs[i];
            if (f->is_index != pass)
                continue;
            if (f->is_index && f->parts && f->parts->failed) {
                sf_output_abort(f->out); /* its parts are not all in place */
                f->failed = 1;
                continue;
            }
            st = sf_output_publish(f->out);
            if (sf_output_published(f->out) && !visible) {
                visible = 1; /* a cancel no longer stops the others */
                for (size_t k = 0; k < r->nouts; k++)
                    sf_output_no_return(r->outs[k]->out);
            }
            if (st == SF_OK)
                continue;
            f->failed = 1;
            if (first == SF_OK)
                first = output_failed(r, f, st);
            if (!visible) {
                abort_all(r);
                return first;
            }
            if (!sf_output_published(f->out))
                sf_output_abort(f->out);
        }
    /* The reject log last: it lists what the published documents left out. */
    if (r->reject) {
        st = sf_output_publish(r->reject);
        if (st != SF_OK) {
            r->reject_failed = 1;
            if (first == SF_OK)
                first = sf_fail_from(&r->err, st, "the reject log",
                                     sf_output_errmsg(r->reject));
            if (!visible) {
                abort_all(r);
                return first;
            }
            if (!sf_output_published(r->reject))
                sf_output_abort(r->reject);
        } else if (!visible) {
            visible = 1;
            for (size_t k = 0; k < r->nouts; k++)
                sf_output_no_return(r->outs[k]->out);
        }
    }
    /* Every index is in place: each set's record, then its earlier runs'
     * parts removed (docs/sink.md, steps 5 and 6); for every set whose
     * index was published, whatever happened to the others. */
    for (size_t i = 0; i < r->nouts; i++) {
        sf_feed_out *f = r->outs[i];
        if (f->is_index || f->failed)
            continue;
        int indexed_ok = 1;
        for (size_t k = 0; k < r->nouts; k++)
            if (r->outs[k]->is_index && r->outs[k]->parts == f && r->outs[k]->failed)
                indexed_ok = 0;
        if (indexed_ok && (st = sf_output_settle(f->out)) != SF_OK && first == SF_OK)
            first = output_failed(r, f, st);
    }
    return first;
}
