/* feed_test.c: the template cut and the feed loop (issue 8, points 1, 5, 7, 8).
 *   feed_test DIR      (scratch files go in DIR)
 *
 * - sf_tpl_head / sf_tpl_row / sf_tpl_tail write exactly what sf_tpl_render
 *   writes, over many templates (rows inside sections, lists, inverted
 *   sections and partials, never reached, empty) and row counts;
 * - several outputs rendered from one scan are byte-identical to separate
 *   runs, and rendering allocates nothing per row with two outputs;
 * - split outputs: parts at row and byte limits, each a complete document;
 *   a row larger than the limit is an error naming it; an index over the
 *   parts with the largest value per part;
 * - the rails (min_rows, max_drop) refuse with both counts.
 * The output layer's split calls are replaced (link-time --wrap) by a fake
 * that records where each part starts in one file, for outputs the test
 * registers; any other output goes to the real calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/split.h"
#include "sink/sink.h"
#include "template/template.h"

static const char *scratch;

/* ---- a growing memory wbuf ----------------------------------------------- */

typedef struct membuf {
    sf_wbuf w;
} membuf;

static int mem_drain(sf_wbuf *w)
{
    size_t cap = w->cap * 2;
    char *p = realloc(w->buf, cap);
    if (!p)
        return -1;
    w->buf = p;
    w->cap = cap;
    return 0;
}

static void mem_init(membuf *m)
{
    m->w.cap = SF_WBUF_MIN;
    m->w.buf = malloc(m->w.cap);
    m->w.len = 0;
    m->w.drain = mem_drain;
}

static void mem_free(membuf *m) { free(m->w.buf); }

/* ---- a data model: root values, a list of rows, a one-item list ----------- */

typedef struct model {
    size_t nrows;
    char text[64][24];
} model;

static const sf_data_ops root_ops, list_ops, row_ops, one_ops, item_ops;
static model g_model; /* one model at a time */

static int root_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)obj, (void)sym;
    memset(out, 0, sizeof *out);
    if (len == 4 && memcmp(name, "rows", 4) == 0) {
        out->kind = SF_VAL_LIST;
        out->truthy = g_model.nrows > 0;
        out->ops = &list_ops;
        out->obj = &g_model;
        return 1;
    }
    if (len == 3 && memcmp(name, "one", 3) == 0) {
        out->kind = SF_VAL_LIST;
        out->truthy = 1;
        out->ops = &one_ops;
        return 1;
    }
    if (len == 3 && memcmp(name, "two", 3) == 0) {
        out->kind = SF_VAL_LIST;
        out->truthy = 1;
        out->ops = &one_ops;
        out->obj = &g_model; /* two items */
        return 1;
    }
    if (len == 1 && (name[0] == 't' || name[0] == 'f')) {
        out->kind = SF_VAL_TEXT;
        out->s = name[0] == 't' ? "T" : "";
        out->n = name[0] == 't';
        out->truthy = name[0] == 't';
        return 1;
    }
    return 0;
}

static int list_item(void *obj, size_t idx, sf_val *out)
{
    model *m = obj;
    if (idx >= m->nrows)
        return 0;
    memset(out, 0, sizeof *out);
    out->kind = SF_VAL_MAP;
    out->truthy = 1;
    out->ops = &row_ops;
    out->obj = m->text[idx];
    return 1;
}

static int row_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)sym;
    if (len != 1 || name[0] != 'a')
        return 0;
    memset(out, 0, sizeof *out);
    out->kind = SF_VAL_TEXT;
    out->s = obj;
    out->n = strlen(obj);
    out->truthy = 1;
    return 1;
}

static int one_item(void *obj, size_t idx, sf_val *out)
{
    if (idx >= (obj ? 2u : 1u))
        return 0;
    memset(out, 0, sizeof *out);
    out->kind = SF_VAL_MAP;
    out->truthy = 1;
    out->ops = &item_ops;
    out->obj = (void *)(idx ? "x2" : "x1");
    return 1;
}

static int item_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)sym;
    if (len != 1 || name[0] != 'x')
        return 0;
    memset(out, 0, sizeof *out);
    out->kind = SF_VAL_TEXT;
    out->s = obj;
    out->n = strlen(obj);
    out->truthy = 1;
    return 1;
}

static const sf_data_ops root_ops = {.lookup = root_lookup};
static const sf_data_ops list_ops = {.item = list_item};
static const sf_data_ops row_ops = {.lookup = row_lookup};
static const sf_data_ops one_ops = {.item = one_item};
static const sf_data_ops item_ops = {.lookup = item_lookup};

static int partials(void *ud, const char *name, const char **text, size_t *len)
{
    (void)ud;
    static const char *const table[][2] = {
        {"p", "[{{#rows}}<{{a}}>{{/rows}}]"},
        {"q", "Q{{>p}}q"},
        {"ind", "line\n{{#rows}}\n  {{a}}\n{{/rows}}\nend\n"},
        {"e", "{{^rows}}none{{/rows}}"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i][0], name) == 0) {
            *text = table[i][1];
            *len = strlen(*text);
            return 1;
        }
    return 0;
}

static const char *const cut_templates[] = {
    "a{{#rows}}<{{a}}>{{/rows}}z",
    "{{#rows}}{{a}}{{/rows}}",
    "{{#t}}head{{#rows}}<{{a}}{{t}}>{{/rows}}tail{{/t}}end",
    "{{#f}}never{{#rows}}x{{/rows}}{{/f}}{{^f}}alt{{/f}}",
    "{{^f}}in{{#rows}}<{{a}}>{{/rows}}out{{/f}}after",
    "{{#rows}}x{{a}}{{/rows}}{{^rows}}empty{{/rows}}",
    "{{^rows}}empty{{/rows}}{{#rows}}x{{/rows}}/",
    "<{{>q}}>",
    "{{#t}}({{#t}}{{>p}}{{/t}}){{/t}}!",
    "{{#one}}({{x}}{{#rows}}<{{a}}{{x}}>{{/rows}}{{x}}){{/one}}.",
    "{{#two}}({{x}}{{#rows}}<{{a}}{{x}}>{{/rows}}{{x}}){{/two}}.",
    "<\n  {{>ind}}\n>\n",
    "{{#t}}\n  {{>ind}}\n{{/t}}\n",
    "{{=<% %>=}}<%#rows%>[<%a%>]<%/rows%><%={{ }}=%>{{t}}",
    "{{#rows}}{{#rows}}{{a}}{{/rows}};{{/rows}}",
    "{{>e}}{{#t}}{{>p}}{{/t}}{{>e}}",
    "no rows here {{t}}",
    "",
};

/* head + rows + tail against the whole walk, for one template and n rows;
 * also a second part (head + rows + tail again), and the tail measured with
 * keep = 1 before the rows. */
static void cut_case(const char *src, size_t n, int mode)
{
    char name[200];
    snprintf(name, sizeof name, "cut: \"%.60s\" (%s) with %zu rows", src,
             mode == SF_TEMPLATE_HTML ? "html" : "text", n);
    for (char *p = name; *p; p++)
        if (*p == '\n')
            *p = '|';
    sf_census *cs = sf_census_create();
    sf_template *t = sf_template_create(cs, (sf_template_mode)mode);
    if (sf_template_load_string(t, "t.mustache", src, strlen(src), partials, NULL) != SF_OK) {
        check(0, name, "compile: %s", sf_template_errmsg(t));
        sf_template_free(t);
        sf_census_free(cs);
        return;
    }
    g_model.nrows = n;
    for (size_t i = 0; i < n; i++)
        snprintf(g_model.text[i], sizeof g_model.text[i], "r%zu", i + 1);
    sf_val root = {.kind = SF_VAL_MAP, .truthy = 1, .ops = &root_ops};
    sf_val rows = {.kind = SF_VAL_LIST, .ops = &list_ops, .obj = &g_model};
    sf_errbuf err = {{0}};
    membuf whole, cut, tail;
    mem_init(&whole);
    mem_init(&cut);
    mem_init(&tail);
    sf_status st = sf_tpl_render(t, &whole.w, &root, &err);
    sf_tpl_run *k = sf_tpl_run_create(cs, t, &root, &rows, &err);
    sf_status cst = k ? SF_OK : SF_ERR_NOMEM;
    size_t part_len = 0, tail_at = 0;
    int ok = 1;
    for (int part = 0; part < 2 && cst == SF_OK; part++) {
        int reached;
        cst = sf_tpl_head(k, &cut.w, &reached);
        if (cst == SF_OK && reached && part == 0)
            cst = sf_tpl_tail_ex(k, &tail.w, 1);
        for (size_t i = 0; cst == SF_OK && reached && i < n; i++) {
            sf_val row;
            list_item(&g_model, i, &row);
            cst = sf_tpl_row(k, &cut.w, &row);
        }
        if (part == 0)
            tail_at = cut.w.len;
        if (cst == SF_OK)
            cst = sf_tpl_tail(k, &cut.w);
        if (part == 0) {
            part_len = cut.w.len;
            /* The measured tail is the tail written after the rows. */
            if (cst == SF_OK && reached &&
                (tail.w.len != part_len - tail_at ||
                 memcmp(tail.w.buf, cut.w.buf + tail_at, tail.w.len) != 0))
                ok = 0;
            if (cst == SF_OK && !reached && tail_at != part_len)
                ok = 0;
        }
    }
    ok = ok && st == SF_OK && cst == SF_OK && part_len == whole.w.len &&
         cut.w.len == 2 * part_len && memcmp(cut.w.buf, whole.w.buf, part_len) == 0 &&
         memcmp(cut.w.buf + part_len, whole.w.buf, part_len) == 0;
    check(ok, name, "whole %d \"%.*s\", cut %d \"%.*s\" (%s)", (int)st, (int)whole.w.len,
          whole.w.buf, (int)cst, (int)cut.w.len, cut.w.buf, err.msg);
    sf_tpl_run_free(k);
    mem_free(&whole);
    mem_free(&cut);
    mem_free(&tail);
    sf_template_free(t);
    check(sf_census_live_bytes(cs) == 0, "cut: every block freed", "%llu live",
          (unsigned long long)sf_census_live_bytes(cs));
    sf_census_free(cs);
}

static void test_cut(void)
{
    static const size_t counts[] = {0, 1, 3};
    for (size_t i = 0; i < sizeof cut_templates / sizeof cut_templates[0]; i++)
        for (size_t c = 0; c < 3; c++)
            cut_case(cut_templates[i], counts[c],
                     i % 2 ? SF_TEMPLATE_HTML : SF_TEMPLATE_TEXT);
}

/* ---- a fake split output (--wrap) ------------------------------------------ */

#define MAXPARTS 256
typedef struct fake {
    sf_output *o;
    uint64_t rows_limit, bytes_limit;
    uint64_t start[MAXPARTS]; /* where each part starts in the one file */
    uint64_t rows[MAXPARTS];
    size_t n; /* parts opened */
    char path[MAXPARTS][64];
    int has_prev;
    uint64_t prev;
} fake;
static fake fakes[4];
static size_t nfakes;

static fake *fake_of(const sf_output *o)
{
    for (size_t i = 0; i < nfakes; i++)
        if (fakes[i].o == o)
            return &fakes[i];
    return NULL;
}

static fake *fake_add(sf_output *o, uint64_t rows_limit, uint64_t bytes_limit)
{
    fake *f = &fakes[nfakes++];
    memset(f, 0, sizeof *f);
    f->o = o;
    f->rows_limit = rows_limit;
    f->bytes_limit = bytes_limit;
    f->n = 1;
    return f;
}

static uint64_t fake_pos(const sf_output *o) { return sf_output_bytes(o) + o->w.len; }

int __real_sf_output_is_split(const sf_output *o);
int __real_sf_output_split_due(const sf_output *o, uint64_t row_bytes, uint64_t tail_bytes);
void __real_sf_output_count_row(sf_output *o);
sf_status __real_sf_output_next_part(sf_output *o);
uint64_t __real_sf_output_split_bytes(const sf_output *o);
size_t __real_sf_output_part_count(const sf_output *o);
const char *__real_sf_output_part_path(const sf_output *o, size_t i);
uint64_t __real_sf_output_part_rows(const sf_output *o, size_t i);
uint64_t __real_sf_output_part_bytes(const sf_output *o, size_t i);
int __real_sf_output_previous_rows(const sf_output *o, uint64_t *rows);
int __wrap_sf_output_is_split(const sf_output *o);
int __wrap_sf_output_split_due(const sf_output *o, uint64_t row_bytes, uint64_t tail_bytes);
void __wrap_sf_output_count_row(sf_output *o);
sf_status __wrap_sf_output_next_part(sf_output *o);
uint64_t __wrap_sf_output_split_bytes(const sf_output *o);
size_t __wrap_sf_output_part_count(const sf_output *o);
const char *__wrap_sf_output_part_path(const sf_output *o, size_t i);
uint64_t __wrap_sf_output_part_rows(const sf_output *o, size_t i);
uint64_t __wrap_sf_output_part_bytes(const sf_output *o, size_t i);
int __wrap_sf_output_previous_rows(const sf_output *o, uint64_t *rows);

int __wrap_sf_output_is_split(const sf_output *o)
{
    fake *f = fake_of(o);
    return f ? f->rows_limit || f->bytes_limit : __real_sf_output_is_split(o);
}

int __wrap_sf_output_split_due(const sf_output *o, uint64_t row_bytes, uint64_t tail_bytes)
{
    fake *f = fake_of(o);
    if (!f)
        return __real_sf_output_split_due(o, row_bytes, tail_bytes);
    uint64_t rows = f->rows[f->n - 1];
    if (rows == 0)
        return 0;
    if (f->rows_limit && rows >= f->rows_limit)
        return 1;
    return f->bytes_limit &&
           fake_pos(o) - f->start[f->n - 1] + row_bytes + tail_bytes > f->bytes_limit;
}

void __wrap_sf_output_count_row(sf_output *o)
{
    fake *f = fake_of(o);
    if (f)
        f->rows[f->n - 1]++;
    else
        __real_sf_output_count_row(o);
}

sf_status __wrap_sf_output_next_part(sf_output *o)
{
    fake *f = fake_of(o);
    if (!f)
        return __real_sf_output_next_part(o);
    if (f->n == MAXPARTS)
        return SF_ERR_OUTPUT;
    f->start[f->n] = fake_pos(o);
    f->rows[f->n] = 0;
    f->n++;
    return SF_OK;
}

uint64_t __wrap_sf_output_split_bytes(const sf_output *o)
{
    fake *f = fake_of(o);
    return f ? f->bytes_limit : __real_sf_output_split_bytes(o);
}

size_t __wrap_sf_output_part_count(const sf_output *o)
{
    fake *f = fake_of(o);
    return f ? f->n : __real_sf_output_part_count(o);
}

const char *__wrap_sf_output_part_path(const sf_output *o, size_t i)
{
    fake *f = fake_of(o);
    if (!f)
        return __real_sf_output_part_path(o, i);
    snprintf(f->path[i], sizeof f->path[i], "/srv/feed-%04zu.xml", i + 1);
    return f->path[i];
}

uint64_t __wrap_sf_output_part_rows(const sf_output *o, size_t i)
{
    fake *f = fake_of(o);
    return f ? f->rows[i] : __real_sf_output_part_rows(o, i);
}

uint64_t __wrap_sf_output_part_bytes(const sf_output *o, size_t i)
{
    fake *f = fake_of(o);
    if (!f)
        return __real_sf_output_part_bytes(o, i);
    return (i + 1 < f->n ? f->start[i + 1] : fake_pos(o)) - f->start[i];
}

int __wrap_sf_output_previous_rows(const sf_output *o, uint64_t *rows)
{
    fake *f = fake_of(o);
    if (!f)
        return __real_sf_output_previous_rows(o, rows);
    *rows = f->prev;
    return f->has_prev;
}

/* ---- rendering over SQLite ------------------------------------------------- */

#define SEQ_SQL                                                                              \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) "            \
    "SELECT x AS a, printf('v%%d]]>', x) AS b, CASE WHEN x %% 2 THEN x * 1.5 END AS c, "       \
    "printf('2026-%%02d-%%02d', 1 + (x * 7) %% 12, 1 + (x * 13) %% 28) AS d FROM c "           \
    "WHERE x >= %d"

static const char *const feed_templates[] = {
    "<r>{{#rows}}<i a=\"{{a}}\"><![CDATA[{{b}}]]>{{#c}}{{c}}{{/c}}</i>{{/rows}}</r>\n",
    "<list n=\"{{n}}\">{{#rows}}<a>{{a}}</a>{{/rows}}{{^rows}}<none/>{{/rows}}</list>",
    "<static>{{n}}{{^rows}} empty{{/rows}}</static>",
    "<r>{{#n}}<x>{{#rows}}<d>{{d}}</d>{{/rows}}</x>{{/n}}</r>",
};

typedef struct spec {
    const char *tpl;
    uint64_t split_rows, split_bytes; /* fake split */
} spec;

typedef struct result {
    sf_status st;
    char err[1024];
    uint64_t rows;
    fake *fk[4];
} result;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[got] = '\0';
    *len = got;
    return b;
}

static void out_path(char *buf, size_t n, const char *tag, size_t i)
{
    snprintf(buf, n, "%s/feed-%s-%zu.xml", scratch, tag, i);
}

/* Renders `nspec` outputs from one scan of rows [from, to]; each output's
 * file is out_path(tag, i). Index (when index_tpl): over output 0's parts,
 * into out_path(tag, 9). Options as name, value pairs. */
static void run_feed(const spec *sp, size_t nspec, int from, int to, const char *tag,
                     const char *index_tpl, const char *const *opts, result *res,
                     sf_census *cs, int commit)
{
    char sql[1024];
    snprintf(sql, sizeof sql, SEQ_SQL, to, from);
    sf_source *src = sf_source_create(cs);
    sf_render *r = sf_render_create(cs);
    sf_template *t[5] = {0};
    sf_output *o[5] = {0};
    sf_status st = sf_source_open(src, ":memory:");
    if (st == SF_OK)
        st = sf_source_prepare(src, sql);
    if (st != SF_OK)
        snprintf(res->err, sizeof res->err, "%s", sf_source_errmsg(src));
    nfakes = 0;
    int reads_n = 0;
    for (size_t i = 0; i < nspec; i++)
        reads_n |= strstr(sp[i].tpl, "n}}") != NULL;
    if (st == SF_OK && reads_n)
        st = sf_render_set_param(r, "n", "N");
    for (size_t i = 0; opts && opts[i] && st == SF_OK; i += 2)
        st = sf_render_set_option(r, opts[i], opts[i + 1]);
    for (size_t i = 0; i < nspec + (index_tpl != NULL) && st == SF_OK; i++) {
        char path[4096];
        int is_index = i == nspec;
        out_path(path, sizeof path, tag, is_index ? 9 : i);
        unlink(path);
        const char *src_tpl = is_index ? index_tpl : sp[i].tpl;
        t[i] = sf_template_create(cs, SF_TEMPLATE_XML);
        o[i] = sf_output_create(cs);
        st = sf_template_load_string(t[i], "t.mustache", src_tpl, strlen(src_tpl), NULL, NULL);
        if (st != SF_OK) {
            snprintf(res->err, sizeof res->err, "%s", sf_template_errmsg(t[i]));
            break;
        }
        if ((st = sf_output_open_file(o[i], path)) != SF_OK)
            break;
        if (is_index) {
            st = sf_render_add_index(r, o[0], t[i], o[i], "https://x.test/", "d");
        } else {
            res->fk[i] = sp[i].split_rows || sp[i].split_bytes
                             ? fake_add(o[i], sp[i].split_rows, sp[i].split_bytes)
                             : NULL;
            st = nspec == 1 && !index_tpl ? sf_render_run(r, t[i], src, o[i])
                                          : sf_render_add_output(r, t[i], o[i]);
        }
    }
    if (st == SF_OK && (nspec > 1 || index_tpl))
        st = sf_render_execute(r, src);
    if (st == SF_OK && commit)
        st = sf_render_commit(r);
    if (st != SF_OK && !res->err[0])
        snprintf(res->err, sizeof res->err, "%s", sf_render_errmsg(r));
    res->st = st;
    res->rows = sf_render_rows(r);
    sf_render_free(r);
    for (size_t i = 0; i < 5; i++) {
        sf_output_free(o[i]);
        sf_template_free(t[i]);
    }
    sf_source_free(src);
}

static uint64_t census_allocs(sf_census *c)
{
    uint64_t n = 0;
    for (int ty = 0; ty < SF_MEM_TYPE_COUNT; ty++) {
        sf_mem_stat s;
        sf_census_stat(c, (sf_mem_type)ty, &s);
        n += s.allocs;
    }
    return n;
}

/* Several outputs from one scan: each byte-identical to its own run. */
static void test_several(void)
{
    spec sp[4];
    for (size_t i = 0; i < 4; i++)
        sp[i] = (spec){.tpl = feed_templates[i]};
    static const int counts[] = {0, 1, 57};
    for (size_t c = 0; c < 3; c++) {
        result all = {0};
        run_feed(sp, 4, 1, counts[c] ? counts[c] : 1, "all", NULL, NULL, &all, NULL, 1);
        if (counts[c] == 0) /* no rows: x >= 2 of 1 */
            run_feed(sp, 4, 2, 1, "all", NULL, NULL, &all, NULL, 1);
        int same = all.st == SF_OK;
        char diff[1400] = "";
        for (size_t i = 0; i < 4; i++) {
            result one = {0};
            run_feed(&sp[i], 1, counts[c] ? 1 : 2, counts[c] ? counts[c] : 1, "one", NULL, NULL,
                     &one, NULL, 1);
            char pa[4096], pb[4096];
            out_path(pa, sizeof pa, "all", i);
            out_path(pb, sizeof pb, "one", 0);
            size_t na = 0, nb = 0;
            char *a = slurp(pa, &na), *b = slurp(pb, &nb);
            if (one.st != SF_OK || !a || !b || na != nb || memcmp(a, b, na) != 0) {
                same = 0;
                snprintf(diff, sizeof diff, "output %zu: %d %s / %.80s vs %.80s", i, (int)one.st,
                         one.err, a ? a : "(none)", b ? b : "(none)");
            }
            free(a);
            free(b);
        }
        char name[128];
        snprintf(name, sizeof name, "several outputs from one scan = separate runs (%d rows)",
                 counts[c]);
        check(same, name, "status %d (%s) %s", (int)all.st, all.err, diff);
    }
}

/* Allocations do not depend on the row count, with two outputs, and with a
 * split one (by rows and bytes) beside a plain one. */
static void test_no_alloc_per_row(void)
{
    spec two[2] = {{.tpl = feed_templates[0]}, {.tpl = feed_templates[1]}};
    spec split[2] = {{.tpl = feed_templates[0], .split_rows = 5000, .split_bytes = 600000},
                     {.tpl = feed_templates[3]}};
    const spec *sets[2] = {two, split};
    const char *names[2] = {"no allocation per row: two outputs (10 vs 100000 rows)",
                            "no allocation per row: a split output and a plain one"};
    for (int s = 0; s < 2; s++) {
        uint64_t allocs[2] = {0, 0};
        int rows[2] = {10, 100000};
        int ok = 1;
        char why[1200] = "";
        for (int k = 0; k < 2; k++) {
            sf_census *c = sf_census_create();
            result res = {0};
            run_feed(sets[s], 2, 1, rows[k], "alloc", NULL, NULL, &res, c, 1);
            allocs[k] = census_allocs(c);
            if (res.st != SF_OK || sf_census_live_bytes(c) != 0 ||
                res.rows != (uint64_t)rows[k]) {
                ok = 0;
                snprintf(why, sizeof why, "status %d (%s), live %llu, rows %llu", (int)res.st,
                         res.err, (unsigned long long)sf_census_live_bytes(c),
                         (unsigned long long)res.rows);
            }
            sf_census_free(c);
        }
        check(ok && allocs[0] == allocs[1], names[s], "%llu allocations for 10 rows, %llu for "
              "100000; %s", (unsigned long long)allocs[0], (unsigned long long)allocs[1], why);
    }
}

/* Each part of a split output is the document of its rows alone. */
static void check_parts(const char *name, const spec *sp, int nrows, const result *res)
{
    const fake *f = res->fk[0];
    char path[4096];
    out_path(path, sizeof path, "split", 0);
    size_t n = 0;
    char *all = slurp(path, &n);
    int ok = res->st == SF_OK && f && all && res->rows == (uint64_t)nrows;
    char why[512] = "";
    int first = 1;
    uint64_t total_rows = 0;
    for (size_t p = 0; ok && p < f->n; p++) {
        uint64_t from = f->start[p], to = p + 1 < f->n ? f->start[p + 1] : n;
        total_rows += f->rows[p];
        if ((sp->split_rows && f->rows[p] > sp->split_rows) ||
            (sp->split_bytes && to - from > sp->split_bytes) || f->rows[p] == 0) {
            ok = 0;
            snprintf(why, sizeof why, "part %zu: %llu rows, %llu bytes", p + 1,
                     (unsigned long long)f->rows[p], (unsigned long long)(to - from));
            break;
        }
        /* A part that stopped early: the next row would not have fitted. */
        if (p + 1 < f->n && sp->split_rows && !sp->split_bytes && f->rows[p] != sp->split_rows)
            ok = 0;
        spec one = {.tpl = sp->tpl};
        result r1 = {0};
        run_feed(&one, 1, first, first + (int)f->rows[p] - 1, "part", NULL, NULL, &r1, NULL, 1);
        first += (int)f->rows[p];
        char pp[4096];
        out_path(pp, sizeof pp, "part", 0);
        size_t m = 0;
        char *doc = slurp(pp, &m);
        if (!doc || m != to - from || memcmp(doc, all + from, m) != 0) {
            ok = 0;
            snprintf(why, sizeof why, "part %zu differs from its rows rendered alone: %.*s vs %.*s", p + 1, (int)(to - from > 150 ? 150 : to - from), all + from, (int)(m > 150 ? 150 : m), doc ? doc : "");
        }
        free(doc);
    }
    ok = ok && total_rows == (uint64_t)nrows;
    check(ok, name, "status %d (%s), %zu parts, %s", (int)res->st, res->err, f ? f->n : 0, why);
    free(all);
}

static void test_split(void)
{
    spec by_rows = {.tpl = feed_templates[0], .split_rows = 10};
    result res = {0};
    run_feed(&by_rows, 1, 1, 35, "split", NULL, NULL, &res, NULL, 1);
    check_parts("split: every 10 rows, 35 rows in 4 complete parts", &by_rows, 35, &res);
    check(res.fk[0] && res.fk[0]->n == 4, "split: 35 rows by 10 make 4 parts", "%zu",
          res.fk[0] ? res.fk[0]->n : 0);

    spec by_bytes = {.tpl = feed_templates[0], .split_bytes = 1000};
    memset(&res, 0, sizeof res);
    run_feed(&by_bytes, 1, 1, 200, "split", NULL, NULL, &res, NULL, 1);
    check_parts("split: 1000 bytes, 200 rows in complete parts under the limit", &by_bytes, 200,
                &res);

    spec both = {.tpl = feed_templates[3], .split_rows = 7, .split_bytes = 300};
    memset(&res, 0, sizeof res);
    run_feed(&both, 1, 1, 100, "split", NULL, NULL, &res, NULL, 1);
    check_parts("split: rows and bytes (whichever first), section around the rows", &both, 100,
                &res);

    /* Exactly at the limit: a part of head + k rows + tail = limit holds. */
    spec exact = {.tpl = "<r>{{#rows}}<i/>{{/rows}}</r>", .split_bytes = 3 + 4 * 5 + 4};
    memset(&res, 0, sizeof res);
    run_feed(&exact, 1, 1, 12, "split", NULL, NULL, &res, NULL, 1);
    check_parts("split: a part exactly at the byte limit", &exact, 12, &res);
    check(res.fk[0] && res.fk[0]->n == 3 && res.fk[0]->rows[0] == 5,
          "split: 27 bytes hold 5 rows of 4 bytes with a 7-byte head and tail", "%zu parts",
          res.fk[0] ? res.fk[0]->n : 0);

    spec tiny = {.tpl = feed_templates[0], .split_bytes = 54};
    memset(&res, 0, sizeof res);
    run_feed(&tiny, 1, 1, 20, "split", NULL, NULL, &res, NULL, 1);
    check(res.st == SF_ERR_OUTPUT && strstr(res.err, "row 11 is 48 bytes: with a part's head and tail (8 bytes) that "
                                                "is more than the split limit (54 bytes)"),
          "split: a row larger than the limit is an error naming the row", "%d %s",
          (int)res.st, res.err);

    spec huge_head = {.tpl = "<r a=\"{{n}}{{n}}{{n}}\">{{#rows}}{{a}}{{/rows}}</r>",
                      .split_bytes = 10};
    memset(&res, 0, sizeof res);
    run_feed(&huge_head, 1, 1, 3, "split", NULL, NULL, &res, NULL, 1);
    check(res.st == SF_ERR_OUTPUT && strstr(res.err, "more than the split limit of 10"),
          "split: a head and tail over the limit is an error", "%d %s", (int)res.st, res.err);

    /* An index over the parts: one row per part, lastmod its largest d. */
    const char *itpl = "<index>{{#rows}}<s n=\"{{part}}\" r=\"{{row_count}}\" b=\"{{bytes}}\">"
                       "<loc>{{url}}</loc><name>{{name}}</name><m>{{lastmod}}</m></s>{{/rows}}"
                       "</index>";
    spec idx = {.tpl = feed_templates[0], .split_rows = 12};
    memset(&res, 0, sizeof res);
    run_feed(&idx, 1, 1, 30, "split", itpl, NULL, &res, NULL, 1);
    char ip[4096];
    out_path(ip, sizeof ip, "split", 9);
    size_t n = 0;
    char *got = slurp(ip, &n);
    /* d = 2026-MM-DD with MM = 1 + 7x mod 12, DD = 1 + 13x mod 28: the
     * largest per part, computed here the same way. */
    char want[2048], line[256], pp[4096];
    out_path(pp, sizeof pp, "split", 0);
    size_t parts_len = 0;
    free(slurp(pp, &parts_len));
    snprintf(want, sizeof want, "<index>");
    for (int p = 0; p < 3 && res.fk[0]; p++) {
        char best[16] = "";
        for (int x = 1 + 12 * p; x <= 30 && x <= 12 * (p + 1); x++) {
            char d[16];
            snprintf(d, sizeof d, "2026-%02d-%02d", 1 + (x * 7) % 12, 1 + (x * 13) % 28);
            if (strcmp(d, best) > 0)
                snprintf(best, sizeof best, "%s", d);
        }
        snprintf(line, sizeof line,
                 "<s n=\"%d\" r=\"%d\" b=\"%llu\"><loc>https://x.test/feed-%04d.xml</loc>"
                 "<name>feed-%04d.xml</name><m>%s</m></s>",
                 p + 1, p < 2 ? 12 : 6,
                 (unsigned long long)((p < 2 ? res.fk[0]->start[p + 1] : parts_len) -
                                      res.fk[0]->start[p]),
                 p + 1, p + 1, best);
        strcat(want, line);
    }
    strcat(want, "</index>");
    check(res.st == SF_OK && got && strcmp(got, want) == 0,
          "index: a row per part with url, rows, bytes and the largest lastmod", "%d %s\n got %s\nwant %s",
          (int)res.st, res.err, got ? got : "(none)", want);
    free(got);
}

static void test_rails(void)
{
    spec one = {.tpl = feed_templates[0], .split_rows = 1000};
    result res = {0};
    const char *const min[] = {"min_rows", "10", NULL};
    run_feed(&one, 1, 1, 9, "rail", NULL, min, &res, NULL, 1);
    char path[4096];
    out_path(path, sizeof path, "rail", 0);
    check(res.st == SF_ERR_REFUSED && strstr(res.err, "9 rows, fewer than the minimum of 10") &&
              strstr(res.err, "/srv/feed-0001.xml") && access(path, F_OK) != 0,
          "rails: min_rows refuses, naming both counts and the output, nothing published",
          "%d %s", (int)res.st, res.err);
    memset(&res, 0, sizeof res);
    run_feed(&one, 1, 1, 10, "rail", NULL, min, &res, NULL, 1);
    check(res.st == SF_OK && access(path, F_OK) == 0, "rails: min_rows met publishes", "%d %s",
          (int)res.st, res.err);

    /* max_drop against a previous run of 100 rows (the fake's record). */
    for (int k = 0; k < 3; k++) {
        int rows = k == 0 ? 89 : k == 1 ? 90 : 200;
        char sql[512];
        snprintf(sql, sizeof sql, SEQ_SQL, rows, 1);
        sf_source *src = sf_source_create(NULL);
        sf_render *r = sf_render_create(NULL);
        sf_template *t = sf_template_create(NULL, SF_TEMPLATE_XML);
        sf_output *o = sf_output_create(NULL);
        unlink(path);
        sf_status st = sf_source_open(src, ":memory:");
        if (st == SF_OK)
            st = sf_source_prepare(src, sql);
        if (st == SF_OK)
            st = sf_template_load_string(t, "t", feed_templates[0], strlen(feed_templates[0]),
                                         NULL, NULL);
        if (st == SF_OK)
            st = sf_output_open_file(o, path);
        nfakes = 0;
        fake *f = fake_add(o, 0, 0);
        f->has_prev = 1;
        f->prev = 100;
        if (st == SF_OK)
            st = sf_render_set_option(r, "max_drop", "10");
        if (st == SF_OK)
            st = sf_render_add_output(r, t, o);
        if (st == SF_OK)
            st = sf_render_execute(r, src);
        if (st == SF_OK)
            st = sf_render_commit(r);
        const char *msg = sf_render_errmsg(r);
        if (k == 0)
            check(st == SF_ERR_REFUSED &&
                      strstr(msg, "89 rows against 100 in the previous run, a drop of 11.0%") &&
                      strstr(msg, "more than 10%") && access(path, F_OK) != 0,
                  "rails: max_drop refuses a drop past the limit, naming both counts", "%d %s",
                  (int)st, msg);
        else
            check(st == SF_OK && access(path, F_OK) == 0,
                  k == 1 ? "rails: max_drop allows a drop at the limit"
                         : "rails: max_drop allows a rise",
                  "%d %s", (int)st, msg);
        sf_render_free(r);
        sf_output_free(o);
        sf_template_free(t);
        sf_source_free(src);
    }
    nfakes = 0;
    sf_render *r = sf_render_create(NULL);
    check(sf_render_set_option(r, "max_drop", "101") == SF_ERR_ARG &&
              sf_render_set_option(r, "min_rows", "-1") == SF_ERR_ARG &&
              sf_render_set_option(r, "nosuch", "1") == SF_ERR_ARG &&
              sf_render_set_option(r, "max_drop", "2.5%") == SF_OK &&
              sf_render_commit(r) == SF_ERR_STATE,
          "rails: bad option values and a commit without a run are refused", "%s",
          sf_render_errmsg(r));
    sf_render_free(r);
}

/* A failing query mid-stream names its row with several outputs too. */
static void test_errors(void)
{
    const char *sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10) "
                      "SELECT CASE WHEN x = 7 THEN abs(-9223372036854775807 - 1) ELSE x END AS a "
                      "FROM c";
    sf_source *src = sf_source_create(NULL);
    sf_render *r = sf_render_create(NULL);
    sf_template *t = sf_template_create(NULL, SF_TEMPLATE_XML);
    sf_output *o[2] = {sf_output_create(NULL), sf_output_create(NULL)};
    const char *tpl = "<r>{{#rows}}{{a}}{{/rows}}</r>";
    sf_status st = sf_source_open(src, ":memory:");
    if (st == SF_OK)
        st = sf_source_prepare(src, sql);
    if (st == SF_OK)
        st = sf_template_load_string(t, "t", tpl, strlen(tpl), NULL, NULL);
    for (int i = 0; i < 2 && st == SF_OK; i++) {
        char path[4096];
        out_path(path, sizeof path, "err", (size_t)i);
        if ((st = sf_output_open_file(o[i], path)) == SF_OK)
            st = sf_render_add_output(r, t, o[i]);
    }
    if (st == SF_OK)
        st = sf_render_execute(r, src);
    check(st == SF_ERR_SOURCE &&
              strstr(sf_render_errmsg(r), "query failed at row 7: sqlite: integer overflow") &&
              sf_render_rows(r) == 6,
          "errors: a failing row is named with two outputs", "%d %s", (int)st,
          sf_render_errmsg(r));
    check(sf_render_commit(r) == SF_ERR_STATE, "errors: no commit after a failed execute", "%s",
          sf_render_errmsg(r));
    check(sf_render_add_output(r, t, o[0]) == SF_ERR_STATE,
          "errors: no output added after the run", "%s", sf_render_errmsg(r));
    sf_render_free(r);
    r = sf_render_create(NULL);
    check(sf_render_execute(r, src) == SF_ERR_STATE, "errors: execute without an output",
          "%s", sf_render_errmsg(r));
    sf_render_free(r);
    for (int i = 0; i < 2; i++)
        sf_output_free(o[i]);
    sf_template_free(t);
    sf_source_free(src);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: feed_test SCRATCH_DIR\n");
        return 2;
    }
    scratch = argv[1];
    test_cut();
    test_several();
    test_no_alloc_per_row();
    test_split();
    test_rails();
    test_errors();
    printf("feed: %d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
