/* render.c: one run: checks each template's names against the query, binds
 * parameters, peeks the first row, then pushes the rows through every
 * output added (src/core/feed.c), and commits them as a set.
 *
 * The context a template sees is three kinds of frames, all answered from
 * maps built once per run and output (template symbol -> column or root
 * value), so a lookup in the row loop is an array index:
 *   root: parameters, built-ins (generated_at ...) and `rows`;
 *   rows: a list whose items are the query's rows (the feed loop pushes
 *         them: the list itself is never iterated);
 *   row:  the current row's columns (NULL is present-but-null).
 * Two root names come from the rows (issue 9): `first`, a map over a copy of
 * the run's first row, and `row_count`, the rows written to the document or
 * part, which only the part after the rows section may read. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feed.h"

static const char *const builtin_names[B_COUNT] = {
    [B_AT] = "generated_at",
    [B_DATE] = "generated_date",
    [B_RFC822] = "generated_rfc822",
    [B_VERSION] = "sqlfeed_version",
};

sf_render *sf_render_create(sf_census *census) { return SF_HANDLE_CREATE(sf_render, census); }

void sf_render_free(sf_render *r)
{
    if (!r)
        return;
    sf_census *cs = r->cref.census;
    for (size_t i = 0; i < r->nparams; i++) {
        sf_dealloc(cs, r->params[i].name);
        sf_dealloc(cs, r->params[i].value);
    }
    sf_dealloc(cs, r->params);
    for (size_t i = 0; i < r->nouts; i++) {
        sf_feed_release(r->outs[i]);
        sf_dealloc(cs, r->outs[i]->base_url);
        sf_dealloc(cs, r->outs[i]);
    }
    sf_dealloc(cs, r->outs);
    sf_output_free(r->reject); /* not published: its temporary file goes */
    sf_feed_release_first(r);
    sf_shard_release(r);
    SF_HANDLE_FREE(sf_render, r);
}

static int reserved(const char *name)
{
    /* first and row_count are the feed's: a parameter of that name would
     * be shadowed where the template reads them, so it is refused. */
    if (strcmp(name, ROWS_NAME) == 0 || strcmp(name, FIRST_NAME) == 0 ||
        strcmp(name, ROW_COUNT_NAME) == 0 || sf_source_shard_param(name))
        return 1;
    for (int i = 0; i < B_COUNT; i++)
        if (strcmp(name, builtin_names[i]) == 0)
            return 1;
    return 0;
}

sf_status sf_render_set_param(sf_render *r, const char *name, const char *value)
{
    if (!r)
        return SF_ERR_ARG;
    sf_err_clear(&r->err);
    if (!name || !value)
        return sf_fail(&r->err, SF_ERR_ARG, "parameter without a name or value");
    int ok = name[0] == '_' || ((name[0] | 32) >= 'a' && (name[0] | 32) <= 'z');
    for (const char *p = name; ok && *p; p++)
        ok = *p == '_' || ((*p | 32) >= 'a' && (*p | 32) <= 'z') || (*p >= '0' && *p <= '9');
    if (!ok || !name[0])
        return sf_fail(&r->err, SF_ERR_ARG,
                       "invalid parameter name '%s': use letters, digits and _", name);
    if (reserved(name))
        return sf_fail(&r->err, SF_ERR_ARG, "parameter name '%s' is reserved (built-in)", name);
    sf_census *cs = r->cref.census;
    size_t len = strlen(value);
    char *v = sf_strndup(cs, SF_MEM_RENDER, value, len);
    if (!v)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].name, name) == 0) {
            sf_dealloc(cs, r->params[i].value);
            r->params[i].value = v;
            r->params[i].len = len;
            return SF_OK;
        }
    }
    sf_param *p = sf_realloc(cs, SF_MEM_RENDER, r->params, (r->nparams + 1) * sizeof *p);
    char *nm = sf_strdup(cs, SF_MEM_RENDER, name);
    if (!p || !nm) {
        if (p)
            r->params = p;
        sf_dealloc(cs, nm);
        sf_dealloc(cs, v);
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    }
    r->params = p;
    p[r->nparams].name = nm;
    p[r->nparams].value = v;
    p[r->nparams].len = len;
    r->nparams++;
    return SF_OK;
}

void sf_render_set_time(sf_render *r, int64_t unix_seconds)
{
    if (r) {
        r->when = unix_seconds;
        r->when_set = 1;
    }
}

void sf_render_cancel(sf_render *r)
{
    if (!r)
        return;
    atomic_store(&r->cancel, 1);
    sf_source *s = atomic_load(&r->running);
    if (s)
        sf_source_interrupt(s);
}

uint64_t sf_render_rows(const sf_render *r)
{
    return r ? atomic_load_explicit(&r->rows, memory_order_relaxed) : 0;
}
const char *sf_render_errmsg(const sf_render *r) { return r ? r->err.msg : ""; }

static const sf_feed_out *out_of(const sf_render *r, const sf_output *o)
{
    for (size_t i = 0; r && i < r->nouts; i++)
        if (r->outs[i]->out == o)
            return r->outs[i];
    return NULL;
}

uint64_t sf_render_rows_written(const sf_render *r, const sf_output *out)
{
    const sf_feed_out *f = out_of(r, out);
    return f ? f->rows_written : 0;
}

uint64_t sf_render_rows_skipped(const sf_render *r, const sf_output *out)
{
    const sf_feed_out *f = out_of(r, out);
    return f ? f->rows_skipped : 0;
}

sf_output *sf_render_reject_log(const sf_render *r) { return r ? r->reject : NULL; }

/* ---- options ------------------------------------------------------------ */

/* The reject log's first line: its columns (docs/checks.md). */
static const char REJECT_HEADER[] = "row\tkey\toutput\tcolumn\treason\n";

sf_status sf_render_set_option(sf_render *r, const char *name, const char *value)
{
    if (!r)
        return SF_ERR_ARG;
    sf_err_clear(&r->err);
    if (!name || !value)
        return sf_fail(&r->err, SF_ERR_ARG, "option without a name or value");
    if (r->ran)
        return sf_fail(&r->err, SF_ERR_STATE, "option '%s' set after the run", name);
    if (strcmp(name, "shard_lastmod") == 0 || strcmp(name, "shard_run") == 0) {
        int run = name[6] == 'r';
        size_t n = strlen(value);
        if (run && (n > 200 || strpbrk(value, "\"\\") || strspn(value, "\t\n\r") != 0))
            return sf_fail(&r->err, SF_ERR_ARG,
                           "shard_run: at most 200 bytes, no quote, backslash or control "
                           "character, got '%s'",
                           value);
        for (size_t i = 0; run && i < n; i++)
            if ((unsigned char)value[i] < 0x20)
                return sf_fail(&r->err, SF_ERR_ARG, "shard_run: no control characters");
        char *c = sf_strdup(r->cref.census, SF_MEM_RENDER, value);
        if (!c)
            return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
        char **slot = run ? &r->shard_run : &r->lastmod_column;
        sf_dealloc(r->cref.census, *slot);
        *slot = c;
        return SF_OK;
    }
    if (strcmp(name, "min_rows") == 0) {
        char *end;
        unsigned long long n = strtoull(value, &end, 10);
        if (value[0] < '0' || value[0] > '9' || *end)
            return sf_fail(&r->err, SF_ERR_ARG, "min_rows '%s': expected a number of rows",
                           value);
        r->min_rows = (uint64_t)n;
        r->min_rows_set = 1;
        return SF_OK;
    }
    if (strcmp(name, "max_drop") == 0) {
        char *end;
        double pct = strtod(value, &end);
        if (end != value && *end == '%')
            end++;
        if ((value[0] < '0' || value[0] > '9') || *end || !isfinite(pct) || pct > 100.0)
            return sf_fail(&r->err, SF_ERR_ARG,
                           "max_drop '%s': expected a percentage from 0 to 100", value);
        r->max_drop = pct;
        r->max_drop_set = 1;
        return SF_OK;
    }
    if (strcmp(name, "on_invalid") == 0) {
        if (strcmp(value, "skip") != 0 && strcmp(value, "fail") != 0)
            return sf_fail(&r->err, SF_ERR_ARG, "on_invalid '%s': expected skip or fail", value);
        r->skip_invalid = strcmp(value, "skip") == 0;
        return SF_OK;
    }
    if (strcmp(name, "reject_log") == 0) {
        if (r->reject)
            return sf_fail(&r->err, SF_ERR_STATE, "reject_log is set already");
        if (!value[0])
            return sf_fail(&r->err, SF_ERR_ARG, "reject_log needs a file name");
        /* Opened now (its lock, its temporary file), written as rows are
         * left out, published with the outputs at commit. */
        sf_output *o = sf_output_create(r->cref.census);
        if (!o)
            return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
        sf_status st = sf_output_set_option(o, "writer", "inline");
        if (st == SF_OK)
            st = sf_output_open_file(o, value);
        if (st == SF_OK)
            st = sf_output_write(o, REJECT_HEADER, sizeof REJECT_HEADER - 1);
        if (st != SF_OK) {
            sf_fail_from(&r->err, st, NULL, sf_output_errmsg(o));
            sf_output_free(o);
            return st;
        }
        r->reject = o;
        return SF_OK;
    }
    return sf_fail(&r->err, SF_ERR_ARG,
                   "unknown render option '%s' (min_rows, max_drop, on_invalid, reject_log)", name);
}

/* ---- outputs ------------------------------------------------------------ */

static sf_feed_out *find_out(const sf_render *r, const sf_output *o)
{
    for (size_t i = 0; i < r->nouts; i++)
        if (r->outs[i]->out == o)
            return r->outs[i];
    return NULL;
}

static sf_status add(sf_render *r, sf_template *tpl, sf_output *out, sf_feed_out **made)
{
    if (!tpl->loaded)
        return sf_fail(&r->err, SF_ERR_STATE, "the template is not loaded");
    if (out->state != SF_OUT_OPEN)
        return sf_fail(&r->err, SF_ERR_STATE, "the output is not open");
    if (find_out(r, out))
        return sf_fail(&r->err, SF_ERR_ARG, "this output was added already");
    sf_census *cs = r->cref.census;
    sf_feed_out **a = sf_realloc(cs, SF_MEM_RENDER, r->outs, (r->nouts + 1) * sizeof *a);
    if (!a)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    r->outs = a;
    sf_feed_out *f = sf_calloc(cs, SF_MEM_RENDER, 1, sizeof *f);
    if (!f)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    f->r = r;
    f->tpl = tpl;
    f->out = out;
    f->num = r->nouts + 1;
    f->maxcol = -1;
    r->outs[r->nouts++] = f;
    *made = f;
    return SF_OK;
}

sf_status sf_render_add_output(sf_render *r, sf_template *tpl, sf_output *out)
{
    if (!r)
        return SF_ERR_ARG;
    sf_err_clear(&r->err);
    if (!tpl || !out)
        return sf_fail(&r->err, SF_ERR_ARG, "an output needs a template and an output");
    if (r->ran)
        return sf_fail(&r->err, SF_ERR_STATE, "this render has already run; create another");
    sf_feed_out *f;
    sf_status st = add(r, tpl, out, &f);
    if (st == SF_OK)
        sf_output_keep_state(out); /* a feed: recorded even when empty */
    return st;
}

sf_status sf_render_add_index(sf_render *r, sf_output *parts, sf_template *tpl,
                              sf_output *index, const char *base_url, const char *max_column)
{
    if (!r)
        return SF_ERR_ARG;
    sf_err_clear(&r->err);
    if (!parts || !tpl || !index)
        return sf_fail(&r->err, SF_ERR_ARG, "an index needs its parts, a template and an output");
    if (r->ran)
        return sf_fail(&r->err, SF_ERR_STATE, "this render has already run; create another");
    sf_feed_out *p = find_out(r, parts);
    if (!p || p->is_index)
        return sf_fail(&r->err, SF_ERR_ARG,
                       "the index's parts are not an output of this render (add it first)");
    if (p->index)
        return sf_fail(&r->err, SF_ERR_ARG, "output %zu has an index already", p->num);
    sf_census *cs = r->cref.census;
    /* The base is a directory: "https://ex.com/maps" and ".../maps/" both
     * give ".../maps/NAME" (a base that is "" gives the bare name). */
    const char *b = base_url ? base_url : "";
    size_t bl = strlen(b);
    int slash = bl > 0 && b[bl - 1] != '/';
    char *url = sf_alloc(cs, SF_MEM_RENDER, bl + (size_t)slash + 1);
    if (url) {
        memcpy(url, b, bl);
        if (slash)
            url[bl++] = '/';
        url[bl] = '\0';
    }
    char *col = max_column ? sf_strdup(cs, SF_MEM_RENDER, max_column) : NULL;
    if (!url || (max_column && !col)) {
        sf_dealloc(cs, url);
        sf_dealloc(cs, col);
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    }
    sf_feed_out *f;
    sf_status st = add(r, tpl, index, &f);
    if (st != SF_OK) {
        sf_dealloc(cs, url);
        sf_dealloc(cs, col);
        return st;
    }
    f->is_index = 1;
    f->parts = p;
    f->base_url = url;
    f->base_len = strlen(url);
    p->index = f;
    p->max_column = col;
    return SF_OK;
}

/* ---- the context the template reads -------------------------------------- */

static int find_root(const sf_render *r, const char *name)
{
    for (size_t i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].name, name) == 0)
            return (int)i;
    for (int i = 0; i < B_COUNT; i++)
        if (strcmp(builtin_names[i], name) == 0)
            return (int)r->nparams + i;
    return -1;
}

int sf_feed_root_value(const sf_render *r, int32_t k, sf_val *out)
{
    if (k < 0)
        return 0;
    out->kind = SF_VAL_TEXT;
    if ((size_t)k < r->nparams) {
        out->s = r->params[k].value;
        out->n = r->params[k].len;
    } else {
        out->s = r->btext[(size_t)k - r->nparams];
        out->n = strlen(out->s);
    }
    out->truthy = out->n > 0;
    return 1;
}

static int find_column(const sf_source *s, const char *name)
{
    if (!s) /* publishing shards: no source, the shards read the rows */
        return -1;
    for (int i = 0; i < s->ncols; i++)
        if (strcmp(s->colnames[i], name) == 0)
            return i;
    return -1;
}

static int pred_col(void *ud, const char *name)
{
    if (!((sf_render *)ud)->src)
        return 1; /* publishing shards: their renders checked the columns */
    return find_column(((sf_render *)ud)->src, name) >= 0;
}

static int pred_index_col(void *ud, const char *name)
{
    (void)ud;
    return sf_feed_index_field(name) >= 0;
}

static int pred_root(void *ud, const char *name) { return find_root(ud, name) >= 0; }

/* ---- the feed's own names: first, row_count --------------------------------
 * sf_tpl_check knows two places, the rows and the rest. A feed template has
 * a third: inside {{#first}} the first row's columns are read outside the
 * rows. And row_count has a time: it is known after the rows. Both need the
 * order of the nodes, so this walk visits them as rendering reaches them
 * (a partial once per path, as sf_tpl_check does), before and after it. */

#define FWALK_BUDGET 1000000

typedef struct fwalk {
    sf_render *r;
    const sf_template *t;
    uint8_t *active; /* per unit: on the current path */
    uint8_t *marks;  /* per symbol: 1 a column read inside {{#first}} */
    size_t budget;
    int pass;        /* 1: marks and row_count; 2: a marked column read elsewhere */
    int rows_done;   /* the walk is past the rows section */
    int any_marks;
    sf_status st;
} fwalk;

static const char *node_first(const sf_template *t, const sf_node *nd)
{
    return t->syms[t->parts[nd->parts]].name;
}

static int sym_marked(const fwalk *w, const char *name)
{
    for (uint32_t i = 0; w->marks && i < w->t->nsyms; i++)
        if (w->marks[i] && strcmp(w->t->syms[i].name, name) == 0)
            return 1;
    return 0;
}

static void fwalk_range(fwalk *w, uint32_t unit, uint32_t from, uint32_t to, int in_rows,
                        int in_first)
{
    const sf_template *t = w->t;
    const sf_unit *u = &t->units[unit];
    for (uint32_t i = from; i < to && w->st == SF_OK;) {
        const sf_node *nd = &u->nodes[i];
        if (w->budget-- == 0)
            return; /* sf_tpl_check refuses what is this large */
        if (nd->type == SF_N_TEXT) {
            i++;
            continue;
        }
        if (nd->type == SF_N_PARTIAL) {
            if (nd->b != SF_NO_UNIT && !w->active[nd->b]) {
                w->active[nd->b] = 1;
                fwalk_range(w, nd->b, 0, t->units[nd->b].nnodes, in_rows, in_first);
                w->active[nd->b] = 0;
            }
            i++;
            continue;
        }
        const char *name = nd->nparts ? node_first(t, nd) : NULL;
        int col = name && pred_col(w->r, name);
        char where[512];
        if (name && w->pass == 1 && strcmp(name, ROW_COUNT_NAME) == 0 && !w->rows_done &&
            !(in_rows && col)) {
            sf_tpl_where(t, u, nd->pos, where, sizeof where);
            w->st = sf_fail(&w->r->err, SF_ERR_TEMPLATE,
                            "%s: row_count is known only after the rows: read it after "
                            "{{/%s}}",
                            where, ROWS_NAME);
            return;
        }
        if (name && w->pass == 1 && in_first && !in_rows && col) {
            w->marks[t->parts[nd->parts]] = 1;
            w->any_marks = 1;
        }
        if (name && w->pass == 2 && !in_rows && !in_first && col && sym_marked(w, name) &&
            find_root(w->r, name) < 0) {
            sf_tpl_where(t, u, nd->pos, where, sizeof where);
            w->st = sf_fail(&w->r->err, SF_ERR_NAME,
                            "the template reads 1 name that no column, parameter or built-in "
                            "provides: %s (%s: a column, and columns are read inside "
                            "{{#%s}} or {{#%s}})",
                            name, where, ROWS_NAME, FIRST_NAME);
            return;
        }
        if (nd->type == SF_N_VAR) {
            i++;
            continue;
        }
        int rows = nd->type == SF_N_SECTION && nd->nparts == 1 && strcmp(name, ROWS_NAME) == 0;
        /* {{#first}} is the first row, unless a column of that name is. */
        int first = nd->type == SF_N_SECTION && nd->nparts == 1 &&
                    strcmp(name, FIRST_NAME) == 0 && !(in_rows && col);
        fwalk_range(w, unit, i + 1, nd->b, in_rows || rows, in_first || first);
        if (rows)
            w->rows_done = 1;
        i = nd->b;
    }
}

/* 1 when `name` is a column read inside {{#first}} (sf_tpl_check's root
 * predicate for a feed template: such a column is provided there). */
static int pred_feed_root(void *ud, const char *name)
{
    fwalk *w = ud;
    return find_root(w->r, name) >= 0 || strcmp(name, FIRST_NAME) == 0 ||
           strcmp(name, ROW_COUNT_NAME) == 0 || sym_marked(w, name);
}

static int pred_feed_col(void *ud, const char *name) { return pred_col(((fwalk *)ud)->r, name); }

/* A feed template's names: sf_tpl_check with first's columns provided,
 * then row_count's place, then first's columns read elsewhere. */
static sf_status check_feed_names(sf_render *r, const sf_template *t)
{
    sf_census *cs = r->cref.census;
    fwalk w = {.r = r, .t = t, .budget = FWALK_BUDGET, .pass = 1, .st = SF_OK};
    w.active = sf_calloc(cs, SF_MEM_RENDER, t->nunits ? t->nunits : 1, 1);
    w.marks = sf_calloc(cs, SF_MEM_RENDER, t->nsyms ? t->nsyms : 1, 1);
    sf_status st = SF_OK;
    if (!w.active || !w.marks)
        st = sf_fail(&r->err, SF_ERR_NOMEM, "out of memory checking the template");
    sf_errbuf first_err;
    sf_err_clear(&first_err);
    sf_status rc_st = SF_OK;
    if (st == SF_OK) {
        w.active[0] = 1;
        fwalk_range(&w, 0, 0, t->units[0].nnodes, 0, 0);
        rc_st = w.st; /* row_count's place: said after the missing names */
        if (rc_st != SF_OK)
            first_err = r->err;
        st = sf_tpl_check(t, ROWS_NAME, pred_feed_col, pred_feed_root, &w, &r->err);
    }
    if (st == SF_OK && rc_st != SF_OK) {
        r->err = first_err;
        st = rc_st;
    }
    if (st == SF_OK && w.any_marks) {
        w.pass = 2;
        w.budget = FWALK_BUDGET;
        w.rows_done = 0;
        fwalk_range(&w, 0, 0, t->units[0].nnodes, 0, 0);
        st = w.st;
    }
    if (st == SF_OK)
        st = sf_tpl_rules_check_names(t, pred_col, r, &r->err);
    sf_dealloc(cs, w.active);
    sf_dealloc(cs, w.marks);
    return st;
}

static sf_status format_builtins(sf_render *r)
{
    time_t t = (time_t)r->when;
    struct tm tm;
    if ((int64_t)t != r->when || !gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1 ||
        tm.tm_year + 1900 > 9999)
        return sf_fail(&r->err, SF_ERR_ARG,
                       "time %lld is out of range for generated_at (years 1 to 9999)",
                       (long long)r->when);
    strftime(r->btext[B_AT], sizeof r->btext[B_AT], "%Y-%m-%dT%H:%M:%SZ", &tm);
    strftime(r->btext[B_DATE], sizeof r->btext[B_DATE], "%Y-%m-%d", &tm);
    /* RFC 822 names are English whatever the locale. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(r->btext[B_RFC822], sizeof r->btext[B_RFC822], "%s, %02d %s %04d %02d:%02d:%02d +0000",
             days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(r->btext[B_VERSION], sizeof r->btext[B_VERSION], "%s", SF_VERSION_STRING);
    return SF_OK;
}

/* The symbol maps of one output's template: columns (or, for an index, the
 * fields of a part) and root values. */
static sf_status build_maps(sf_render *r, sf_feed_out *f)
{
    const sf_template *t = f->tpl;
    sf_census *cs = r->cref.census;
    size_t n = t->nsyms ? t->nsyms : 1;
    f->colmap = sf_alloc(cs, SF_MEM_ROW, n * sizeof *f->colmap);
    f->rootmap = sf_alloc(cs, SF_MEM_ROW, n * sizeof *f->rootmap);
    if (!f->colmap || !f->rootmap)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    f->rows_sym = UINT32_MAX;
    for (uint32_t i = 0; i < t->nsyms; i++) {
        const char *name = t->syms[i].name;
        f->colmap[i] = f->is_index ? sf_feed_index_field(name) : find_column(r->src, name);
        f->rootmap[i] = find_root(r, name);
        if (strcmp(name, ROWS_NAME) == 0)
            f->rows_sym = i;
        if (!f->is_index && f->rootmap[i] < 0 && strcmp(name, FIRST_NAME) == 0) {
            f->rootmap[i] = ROOT_FIRST;
            r->reads_first = 1; /* a symbol of the template, wherever it is read */
        }
        if (!f->is_index && f->rootmap[i] < 0 && strcmp(name, ROW_COUNT_NAME) == 0)
            f->rootmap[i] = ROOT_ROW_COUNT;
    }
    if (f->is_index || !r->src)
        return SF_OK;
    /* Row checks: each rule's column mapped once; the unique sets are this
     * run's. */
    size_t nr = sf_tpl_rules_column_count(t);
    if (!sf_tpl_rules_count(t))
        return SF_OK;
    f->rulemap = sf_alloc(cs, SF_MEM_ROW, (nr ? nr : 1) * sizeof *f->rulemap);
    f->checker = sf_tpl_checker_create(cs, t);
    if (!f->rulemap || !f->checker)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nr; i++)
        f->rulemap[i] = find_column(r->src, sf_tpl_rules_column(t, i));
    return SF_OK;
}

static sf_status bind_params(sf_render *r)
{
    sf_source *s = r->src;
    for (int i = 0; i < sf_source_param_count(s); i++) {
        const char *name = sf_source_param_name(s, i);
        const char *sv = sf_shard_param_value(r, name);
        if (sv) {
            sf_status st = sf_source_bind(s, i, sv, strlen(sv));
            if (st != SF_OK)
                return sf_fail_from(&r->err, st, NULL, sf_source_errmsg(s));
            continue;
        }
        size_t k;
        for (k = 0; k < r->nparams; k++)
            if (strcmp(r->params[k].name, name) == 0)
                break;
        if (k == r->nparams)
            return sf_fail(&r->err, SF_ERR_NAME,
                           "the query uses :%s but no value was given (--param %s=VALUE)",
                           name, name);
        sf_status st = sf_source_bind(s, i, r->params[k].value, r->params[k].len);
        if (st != SF_OK)
            return sf_fail_from(&r->err, st, NULL, sf_source_errmsg(s));
    }
    return SF_OK;
}

/* Whether the template reads `name` anywhere. */
static int template_reads(const sf_template *t, const char *name)
{
    for (size_t i = 0; i < t->nroot_names; i++)
        if (strcmp(t->root_names[i], name) == 0)
            return 1;
    for (size_t i = 0; i < t->nrow_names; i++)
        if (strcmp(t->row_names[i], name) == 0)
            return 1;
    return 0;
}

/* A parameter nobody reads is a typo or a wrong assumption (a built-in
 * query that does not filter on it): refuse it rather than publish a feed
 * that silently ignored it. Read by any of the templates is read. */
static sf_status check_params_used(sf_render *r)
{
    for (size_t k = 0; k < r->nparams; k++) {
        const char *name = r->params[k].name;
        int used = 0;
        for (size_t o = 0; !used && o < r->nouts; o++)
            used = template_reads(r->outs[o]->tpl, name);
        for (int i = 0; !used && i < sf_source_param_count(r->src); i++)
            used = strcmp(sf_source_param_name(r->src, i), name) == 0;
        if (!used)
            return sf_fail(&r->err, SF_ERR_NAME,
                           "parameter '%s' is read by neither the query (:%s) nor the template "
                           "({{%s}})",
                           name, name, name);
    }
    return SF_OK;
}

/* Everything checked before the first row: names, parameters, indexes. */
static sf_status prepare(sf_render *r)
{
    sf_status st;
    for (size_t i = 0; i < r->nouts; i++) {
        sf_feed_out *f = r->outs[i];
        if (!f->is_index)
            st = check_feed_names(r, f->tpl);
        else if (sf_tpl_rules_count(f->tpl))
            st = sf_fail(&r->err, SF_ERR_TEMPLATE,
                         "%s: an index template has sqlfeed-check rules; row checks apply to "
                         "a feed's rows",
                         f->tpl->units[0].label ? f->tpl->units[0].label : f->tpl->units[0].name);
        else
            st = sf_tpl_check(f->tpl, ROWS_NAME, pred_index_col, pred_root, r, &r->err);
        if (st != SF_OK)
            return st;
    }
    if ((st = check_params_used(r)) != SF_OK)
        return st;
    /* A shard's plan reads the whole query: once every name is checked. */
    if (r->src->opts.shard_n && r->lastmod_column && find_column(r->src, r->lastmod_column) < 0)
        return sf_fail(&r->err, SF_ERR_NAME,
                       "the shard's largest-value column '%s' (--lastmod) is not a column of "
                       "the query",
                       r->lastmod_column);
    if (r->src->opts.shard_n && (st = sf_shard_begin(r)) != SF_OK)
        return st;
    for (size_t i = 0; i < r->nouts; i++) {
        sf_feed_out *f = r->outs[i];
        if (f->is_index && !sf_output_is_split(f->parts->out))
            return sf_fail(&r->err, SF_ERR_ARG,
                           "an index lists the parts of an output opened with "
                           "sf_output_open_parts(); output %zu is one document",
                           f->parts->num);
        if (f->is_index && sf_output_is_split(f->out))
            return sf_fail(&r->err, SF_ERR_ARG, "an index (output %zu) cannot itself be split",
                           f->num);
        if (f->max_column && (f->maxcol = find_column(r->src, f->max_column)) < 0)
            return sf_fail(&r->err, SF_ERR_NAME,
                           "the index's largest-value column '%s' is not a column of the query",
                           f->max_column);
    }
    if ((st = bind_params(r)) != SF_OK)
        return st;
    for (size_t i = 0; i < r->nouts; i++)
        if ((st = build_maps(r, r->outs[i])) != SF_OK)
            return st;
    return SF_OK;
}

/* ---- the run ----------------------------------------------------------- */

sf_status sf_render_query_values(sf_render *r, const sf_source *src, const char **values)
{
    int n = sf_source_param_count(src);
    if (n > SF_QUERY_PARAMS_MAX)
        return sf_fail(&r->err, SF_ERR_ARG, "the query has more than %d parameters",
                       SF_QUERY_PARAMS_MAX);
    for (int i = 0; i < n; i++) {
        const char *name = sf_source_param_name(src, i);
        values[i] = !sf_source_shard_param(name) ? NULL
                    : strcmp(name, SF_SHARD_PARAM_ALL) ? "0"
                                                       : "1"; /* every row */
        for (size_t k = 0; !values[i] && k < r->nparams; k++)
            if (strcmp(r->params[k].name, name) == 0)
                values[i] = r->params[k].value;
        if (!values[i])
            return sf_fail(&r->err, SF_ERR_NAME,
                           "the query uses :%s but no value was given (--param %s=VALUE)",
                           name, name);
    }
    return SF_OK;
}

sf_status sf_render_count(sf_render *r, sf_source *src, uint64_t *rows)
{
    if (!r)
        return SF_ERR_ARG;
    sf_err_clear(&r->err);
    if (!src || !rows)
        return sf_fail(&r->err, SF_ERR_ARG, "count needs a source and a result");
    if (!src->prepared)
        return sf_fail(&r->err, SF_ERR_STATE, "the source has no prepared query");
    const char *values[SF_QUERY_PARAMS_MAX];
    sf_status vs = sf_render_query_values(r, src, values);
    if (vs != SF_OK)
        return vs;
    /* Counting runs the whole query: sf_render_cancel() must reach it too. */
    atomic_store(&r->running, src);
    sf_status st = atomic_load(&r->cancel) ? SF_ERR_CANCELLED : sf_source_count(src, values, rows);
    atomic_store(&r->running, NULL);
    if (st == SF_ERR_CANCELLED || (st != SF_OK && atomic_load(&r->cancel)))
        return sf_fail(&r->err, SF_ERR_CANCELLED, "cancelled while counting the rows");
    if (st != SF_OK)
        return sf_fail_from(&r->err, st, "counting the rows", sf_source_errmsg(src));
    return SF_OK;
}

sf_status sf_render_execute(sf_render *r, sf_source *src)
{
    if (!r)
        return SF_ERR_ARG;
    sf_err_clear(&r->err);
    if (!src)
        return sf_fail(&r->err, SF_ERR_ARG, "execute needs a source");
    if (r->ran)
        return sf_fail(&r->err, SF_ERR_STATE, "this render has already run; create another");
    if (!r->nouts)
        return sf_fail(&r->err, SF_ERR_STATE, "no output to render (sf_render_add_output)");
    if (!src->prepared)
        return sf_fail(&r->err, SF_ERR_STATE, "the source has no prepared query");
    for (size_t i = 0; i < r->nouts; i++)
        if (r->outs[i]->out->state != SF_OUT_OPEN)
            return sf_fail(&r->err, SF_ERR_STATE, "the output is not open");
    r->ran = 1;
    r->src = src;
    r->fail = SF_OK;
    atomic_store_explicit(&r->rows, 0, memory_order_relaxed);
    if (!r->when_set)
        r->when = (int64_t)time(NULL);
    sf_status st = format_builtins(r);
    if (st == SF_OK && (st = prepare(r)) == SF_OK) {
        for (size_t i = 0; i < r->nouts; i++) /* a write blocked on a stalled reader stops too */
            atomic_store(&r->outs[i]->out->cancel, &r->cancel);
        st = sf_feed_loop(r);
        for (size_t i = 0; i < r->nouts; i++)
            atomic_store(&r->outs[i]->out->cancel, NULL);
    }
    atomic_store(&r->running, NULL);
    /* What only the loop needs goes now; the indexes keep theirs for commit. */
    for (size_t i = 0; i < r->nouts; i++)
        if (!r->outs[i]->is_index)
            sf_feed_release_loop(r->outs[i]);
    sf_feed_release_first(r);
    r->executed = st == SF_OK;
    return st;
}

sf_status sf_render_run(sf_render *r, sf_template *tpl, sf_source *src, sf_output *out)
{
    if (!r)
        return SF_ERR_ARG;
    sf_err_clear(&r->err);
    if (!tpl || !src || !out)
        return sf_fail(&r->err, SF_ERR_ARG, "render needs a template, a source and an output");
    if (r->ran)
        return sf_fail(&r->err, SF_ERR_STATE, "this render has already run; create another");
    if (!tpl->loaded)
        return sf_fail(&r->err, SF_ERR_STATE, "the template is not loaded");
    if (!src->prepared)
        return sf_fail(&r->err, SF_ERR_STATE, "the source has no prepared query");
    if (out->state != SF_OUT_OPEN)
        return sf_fail(&r->err, SF_ERR_STATE, "the output is not open");
    sf_feed_out *f;
    sf_status st = add(r, tpl, out, &f);
    return st != SF_OK ? st : sf_render_execute(r, src);
}

sf_status sf_render_ready_pieces(sf_render *r, sf_template *tpl, sf_output *head,
                                 sf_feed_out **made)
{
    sf_status st = add(r, tpl, head, made);
    if (st == SF_OK)
        st = format_builtins(r);
    if (st == SF_OK)
        st = check_feed_names(r, tpl); /* the head's and tail's names: params, built-ins */
    /* Not check_params_used: a parameter only the query reads is given to
     * publish too, for the shards' parameters to be compared. */
    if (st == SF_OK)
        st = build_maps(r, *made);
    if (st == SF_OK && r->reads_first)
        st = sf_fail(&r->err, SF_ERR_TEMPLATE,
                     "the template reads {{#first}} (the first row) outside the rows: a sharded "
                     "feed's head is written by publish, which has no row");
    return st;
}

sf_status sf_render_ready_index(sf_render *r, sf_feed_out *ix)
{
    sf_status st = format_builtins(r);
    if (st == SF_OK && sf_tpl_rules_count(ix->tpl))
        st = sf_fail(&r->err, SF_ERR_TEMPLATE, "an index template has sqlfeed-check rules");
    if (st == SF_OK)
        st = sf_tpl_check(ix->tpl, ROWS_NAME, pred_index_col, pred_root, r, &r->err);
    if (st == SF_OK)
        st = build_maps(r, ix);
    return st;
}
