/* render.c: one run: checks the template's names against the query,
 * binds parameters, peeks the first row, and renders the template with the
 * query's rows as the list `rows`.
 *
 * The context the template sees is three kinds of frames, all answered from
 * maps built once per run (template symbol -> column or root value), so a
 * lookup in the row loop is an array index:
 *   root: parameters, built-ins (generated_at ...) and `rows`;
 *   rows: a list whose items are the query's rows, read one at a time;
 *   row:  the current row's columns (NULL is present-but-null). */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../sink/sink.h"
#include "../source/source.h"
#include "../template/template.h"

enum { B_AT, B_DATE, B_RFC822, B_VERSION, B_COUNT };
static const char *const builtin_names[B_COUNT] = {
    [B_AT] = "generated_at",
    [B_DATE] = "generated_date",
    [B_RFC822] = "generated_rfc822",
    [B_VERSION] = "sqlfeed_version",
};
#define ROWS_NAME "rows"

typedef struct sf_param {
    char *name;
    char *value;
    size_t len;
} sf_param;

struct sf_render {
    sf_census_ref cref;
    sf_errbuf err;
    sf_param *params;
    size_t nparams;
    int64_t when;
    int when_set;
    int ran;
    /* Written by sf_render_cancel() from a signal handler or another thread:
     * lock-free atomics, safe in both. */
    atomic_int cancel;
    _Atomic(sf_source *) running; /* the source to interrupt */
    _Atomic uint64_t rows; /* one writer (the run); monitors read it */

    /* During a run. */
    const sf_template *tpl;
    sf_source *src;
    int32_t *colmap;  /* template symbol -> column, or -1 */
    int32_t *rootmap; /* template symbol -> root value, or -1 */
    uint32_t rows_sym;
    int has_row;
    int rows_begun; /* the list has been iterated: it cannot be again */
    sf_status fail;
    char btext[B_COUNT][64];
};

static const sf_data_ops root_ops, rows_ops, row_ops;

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
    SF_HANDLE_FREE(sf_render, r);
}

static int reserved(const char *name)
{
    if (strcmp(name, ROWS_NAME) == 0)
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

/* ---- the context the template reads -------------------------------------- */

static int root_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)name, (void)len;
    sf_render *r = obj;
    if (sym == r->rows_sym) {
        out->kind = SF_VAL_LIST;
        out->truthy = (uint8_t)r->has_row;
        out->ops = &rows_ops;
        out->obj = r;
        return 1;
    }
    int32_t k = r->rootmap[sym];
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

static int row_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)name, (void)len;
    sf_render *r = obj;
    int32_t c = r->colmap[sym];
    if (c < 0)
        return 0;
    sf_source_column(r->src, c, out);
    return 1;
}

static int rows_item(void *obj, size_t idx, sf_val *out)
{
    sf_render *r = obj;
    if (idx == 0) {
        if (r->rows_begun) {
            r->fail = sf_fail(&r->err, SF_ERR_TEMPLATE,
                              "the rows are iterated a second time; a query's rows stream once");
            return -1;
        }
        r->rows_begun = 1;
        if (!r->has_row)
            return 0;
    } else {
        if (atomic_load_explicit(&r->cancel, memory_order_relaxed)) {
            r->fail = sf_fail(&r->err, SF_ERR_CANCELLED, "cancelled after row %llu",
                              (unsigned long long)sf_render_rows(r));
            return -1;
        }
        int rc = sf_source_next(r->src);
        if (rc < 0) {
            int c = atomic_load(&r->cancel);
            r->fail = sf_fail(&r->err, c ? SF_ERR_CANCELLED : sf_source_row_status(r->src),
                              "%s at row %llu: %s", c ? "cancelled" : "query failed",
                              (unsigned long long)sf_render_rows(r) + 1, sf_source_errmsg(r->src));
            return -1;
        }
        if (rc == 0)
            return 0;
    }
    atomic_store_explicit(&r->rows, atomic_load_explicit(&r->rows, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    out->kind = SF_VAL_MAP;
    out->truthy = 1;
    out->ops = &row_ops;
    out->obj = r;
    return 1;
}

static const sf_data_ops root_ops = {.lookup = root_lookup};
static const sf_data_ops rows_ops = {.item = rows_item};
static const sf_data_ops row_ops = {.lookup = row_lookup};

/* ---- the run ----------------------------------------------------------- */

static int find_column(const sf_source *s, const char *name)
{
    for (int i = 0; i < s->ncols; i++)
        if (strcmp(s->colnames[i], name) == 0)
            return i;
    return -1;
}

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

static int pred_col(void *ud, const char *name)
{
    return find_column(((sf_render *)ud)->src, name) >= 0;
}

static int pred_root(void *ud, const char *name) { return find_root(ud, name) >= 0; }

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

static sf_status build_maps(sf_render *r)
{
    const sf_template *t = r->tpl;
    sf_census *cs = r->cref.census;
    size_t n = t->nsyms ? t->nsyms : 1;
    r->colmap = sf_alloc(cs, SF_MEM_ROW, n * sizeof *r->colmap);
    r->rootmap = sf_alloc(cs, SF_MEM_ROW, n * sizeof *r->rootmap);
    if (!r->colmap || !r->rootmap)
        return sf_fail(&r->err, SF_ERR_NOMEM, "out of memory");
    r->rows_sym = UINT32_MAX;
    for (uint32_t i = 0; i < t->nsyms; i++) {
        r->colmap[i] = find_column(r->src, t->syms[i].name);
        r->rootmap[i] = find_root(r, t->syms[i].name);
        if (strcmp(t->syms[i].name, ROWS_NAME) == 0)
            r->rows_sym = i;
    }
    return SF_OK;
}

static sf_status bind_params(sf_render *r)
{
    sf_source *s = r->src;
    for (int i = 0; i < sf_source_param_count(s); i++) {
        const char *name = sf_source_param_name(s, i);
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
 * that silently ignored it. */
static sf_status check_params_used(sf_render *r)
{
    for (size_t k = 0; k < r->nparams; k++) {
        const char *name = r->params[k].name;
        int used = template_reads(r->tpl, name);
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

static sf_status run(sf_render *r, sf_output *out)
{
    sf_status st = sf_tpl_check(r->tpl, ROWS_NAME, pred_col, pred_root, r, &r->err);
    if (st != SF_OK || (st = check_params_used(r)) != SF_OK)
        return st;
    if ((st = bind_params(r)) != SF_OK || (st = build_maps(r)) != SF_OK)
        return st;
    /* The first row decides {{^rows}} and surfaces a failing query before a
     * byte is written. */
    atomic_store(&r->running, r->src);
    if (atomic_load(&r->cancel))
        return sf_fail(&r->err, SF_ERR_CANCELLED, "cancelled before the first row");
    int rc = sf_source_next(r->src);
    if (rc < 0) {
        int c = atomic_load(&r->cancel);
        return sf_fail(&r->err, c ? SF_ERR_CANCELLED : sf_source_row_status(r->src),
                       "%s at row 1: %s", c ? "cancelled" : "query failed",
                       sf_source_errmsg(r->src));
    }
    r->has_row = rc;

    sf_val root = {.kind = SF_VAL_MAP, .truthy = 1, .ops = &root_ops, .obj = r};
    st = sf_tpl_render(r->tpl, &out->w, &root, &r->err);
    if (st == SF_ERR_SOURCE && r->fail != SF_OK)
        return r->fail;
    if (st == SF_ERR_OUTPUT)
        return sf_fail(&r->err, SF_ERR_OUTPUT, "output failed after row %llu: %s",
                       (unsigned long long)sf_render_rows(r), sf_output_errmsg(out));
    return st;
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
    const char *values[64];
    int n = sf_source_param_count(src);
    if (n > 64)
        return sf_fail(&r->err, SF_ERR_ARG, "too many query parameters to count");
    for (int i = 0; i < n; i++) {
        const char *name = sf_source_param_name(src, i);
        values[i] = NULL;
        for (size_t k = 0; k < r->nparams; k++)
            if (strcmp(r->params[k].name, name) == 0)
                values[i] = r->params[k].value;
        if (!values[i])
            return sf_fail(&r->err, SF_ERR_NAME,
                           "the query uses :%s but no value was given (--param %s=VALUE)",
                           name, name);
    }
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
    r->ran = 1;
    r->tpl = tpl;
    r->src = src;
    r->fail = SF_OK;
    atomic_store_explicit(&r->rows, 0, memory_order_relaxed);
    r->rows_begun = 0;
    if (!r->when_set)
        r->when = (int64_t)time(NULL);
    sf_status st = format_builtins(r);
    if (st != SF_OK)
        return st;
    out->cancel = &r->cancel; /* a write blocked on a stalled reader stops too */
    st = run(r, out);
    out->cancel = NULL;
    atomic_store(&r->running, NULL);
    sf_census *cs = r->cref.census;
    sf_dealloc(cs, r->colmap);
    sf_dealloc(cs, r->rootmap);
    r->colmap = r->rootmap = NULL;
    return st;
}
