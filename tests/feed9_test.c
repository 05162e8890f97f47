/* feed9_test.c DIR: issue 9 points 3 and 4 at the library level: the rules'
 * parser and evaluation (src/template/checks.c) through their internal
 * interface, the render options on_invalid and reject_log, the counts
 * (sf_render_rows_written / _skipped), {{#first}} and {{row_count}}, and
 * the census: nothing allocated per row by the checks, the first row's
 * copy or a skipped row (a unique set grows geometrically, no more).
 * A formatter's failure is faked: sf_tpl_row and sf_tpl_run_bad are
 * wrapped at link time (Makefile), so a chosen row writes part of itself,
 * then fails with SF_ERR_INVALID as the engine does.
 * Prints PASS/FAIL lines; exit 1 when anything failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sqlfeed.h"
#include "template/template.h"

static const char *scratch;
static uint64_t fail_after = SF_CENSUS_FAIL_NEVER; /* armed once the handles exist */

/* ---- the faked formatter failure ------------------------------------------ */

static unsigned fmt_fail_row; /* 0: none; else the row (call) that fails */
static unsigned fmt_calls;
static int fake_fmt;          /* the template is said to have formatters */

sf_status __real_sf_tpl_row(sf_tpl_run *k, sf_wbuf *w, const sf_val *row);
sf_status __wrap_sf_tpl_row(sf_tpl_run *k, sf_wbuf *w, const sf_val *row);
const sf_tpl_bad *__real_sf_tpl_run_bad(const sf_tpl_run *k);
const sf_tpl_bad *__wrap_sf_tpl_run_bad(const sf_tpl_run *k);

sf_status __wrap_sf_tpl_row(sf_tpl_run *k, sf_wbuf *w, const sf_val *row)
{
    if (++fmt_calls != fmt_fail_row)
        return __real_sf_tpl_row(k, w, row);
    /* What a walk that stops at a bad value has written: part of the row. */
    if (sf_wbuf_put(w, "PARTIAL", 7) != 0)
        return SF_ERR_OUTPUT;
    return SF_ERR_INVALID;
}

const sf_tpl_bad *__wrap_sf_tpl_run_bad(const sf_tpl_run *k)
{
    (void)k;
    static const sf_tpl_bad bad = {"posted_at", "'yesterday' is not a date"};
    return &bad;
}

static sf_template *compile(sf_census *cs, const char *text, sf_status *st)
{
    sf_template *t = sf_template_create(cs, SF_TEMPLATE_XML);
    *st = t ? sf_template_load_string(t, "t.mustache", text, strlen(text), NULL, NULL)
            : SF_ERR_NOMEM;
    return t;
}

/* ---- the rules: parsing ---------------------------------------------------- */

static void expect_bad(const char *name, const char *text, const char *msg)
{
    sf_status st;
    sf_template *t = compile(NULL, text, &st);
    check(st == SF_ERR_TEMPLATE && strstr(sf_template_errmsg(t), msg), name, "status %d: %s",
          (int)st, sf_template_errmsg(t));
    sf_template_free(t);
}

static void test_parse(void)
{
    sf_status st;
    sf_template *t = compile(NULL,
                             "{{! sqlfeed-check: required a, b; max c 3; enum d x|y; unique a }}"
                             "{{!sqlfeed-check:max b 9}}<r/>",
                             &st);
    check(st == SF_OK && sf_tpl_rules_count(t) == 6 && sf_tpl_rules_column_count(t) == 4 &&
              !strcmp(sf_tpl_rules_column(t, 0), "a") && !strcmp(sf_tpl_rules_column(t, 3), "d") &&
              !sf_tpl_rules_column(t, 4),
          "rules: two comments, six rules over four columns", "status %d (%s), %zu rules",
          (int)st, sf_template_errmsg(t), t ? sf_tpl_rules_count(t) : 0);
    sf_template_free(t);
    t = compile(NULL, "{{! sqlfeed: a feed }}{{! another }}<r/>", &st);
    check(st == SF_OK && sf_tpl_rules_count(t) == 0 && !strcmp(sf_template_description(t), "a feed"),
          "rules: other comments are not checks (the description stays)", "%d", (int)st);
    sf_template_free(t);
    expect_bad("rules: an unknown kind", "<r>\n  {{! sqlfeed-check: requird a }}</r>",
               "t.mustache:2:3: sqlfeed-check: unknown rule 'requird'");
    expect_bad("rules: max needs a number", "{{! sqlfeed-check: max a }}<r/>", "expected max NAME N");
    expect_bad("rules: max over the bound", "{{! sqlfeed-check: max a 1000000001 }}<r/>",
               "from 1 to 1000000000");
    expect_bad("rules: required without a column", "{{! sqlfeed-check: required }}<r/>",
               "names no column");
    expect_bad("rules: required with an empty name", "{{! sqlfeed-check: required a,,b }}<r/>",
               "'' is not a column name");
    expect_bad("rules: enum without values", "{{! sqlfeed-check: enum a }}<r/>",
               "expected enum NAME VALUE|VALUE");
    expect_bad("rules: an empty comment", "{{! sqlfeed-check: }}<r/>", "sqlfeed-check: no rule");
}

/* ---- the rules: evaluation --------------------------------------------------- */

typedef struct fake_row {
    const char *v[4]; /* by rule column; NULL is SQL NULL */
} fake_row;

static int fake_col(void *ud, size_t i, const char *name, sf_val *out)
{
    (void)name;
    const fake_row *r = ud;
    if (i >= 4)
        return 0;
    if (!r->v[i]) {
        out->kind = SF_VAL_NULL;
        out->truthy = 0;
        return 1;
    }
    out->kind = SF_VAL_TEXT;
    out->s = r->v[i];
    out->n = strlen(r->v[i]);
    out->truthy = out->n > 0;
    return 1;
}

static void test_eval(void)
{
    sf_census *cs = sf_census_create();
    sf_status st;
    /* columns: a (0), c (1), d (2) */
    sf_template *t = compile(cs, "{{! sqlfeed-check: required a; max c 3; enum d x|y z; unique a }}<r/>",
                             &st);
    sf_tpl_checker *k = st == SF_OK ? sf_tpl_checker_create(cs, t) : NULL;
    check(k != NULL, "eval: a checker", "status %d: %s", (int)st, sf_template_errmsg(t));
    if (!k) {
        sf_template_free(t);
        sf_census_free(cs);
        return;
    }
    struct {
        fake_row row;
        sf_status want;
        const char *column, *reason, *where;
        int keep;
    } cases[] = {
        {{{"k1", "abc", "x"}}, SF_OK, NULL, NULL, NULL, 1},
        {{{NULL, "abc", "x"}}, SF_ERR_INVALID, "a", "required, is NULL", "t.mustache:1:29", 0},
        {{{" \t", "abc", "x"}}, SF_ERR_INVALID, "a", "required, is empty", "t.mustache:1:29", 0},
        {{{"k2", "\xC3\xA9\xC3\xA9\xC3\xA9", "y z"}}, SF_OK, NULL, NULL, NULL, 0}, /* 3 chars, 6 bytes */
        {{{"k2", "abcd", "x"}}, SF_ERR_INVALID, "c", "max 3 characters, has 4", "t.mustache:1:32", 0},
        {{{"k2", NULL, "x"}}, SF_OK, NULL, NULL, NULL, 1}, /* NULL passes max; k2 was not kept */
        {{{"k2", "a", "x"}}, SF_ERR_INVALID, "a", "unique, 'k2' came before", "t.mustache:1:55", 0},
        {{{"k3", "a", "X"}}, SF_ERR_INVALID, "d", "enum x|y z, is 'X'", "t.mustache:1:41", 0},
        {{{"k3", "a", NULL}}, SF_OK, NULL, NULL, NULL, 1}, /* NULL passes enum */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sf_tpl_verdict v;
        memset(&v, 0, sizeof v);
        st = sf_tpl_checker_row(k, fake_col, &cases[i].row, &v);
        char name[64];
        snprintf(name, sizeof name, "eval: row %zu", i + 1);
        int ok = st == cases[i].want;
        if (ok && st != SF_OK)
            ok = !strcmp(v.column, cases[i].column) && !strcmp(v.reason, cases[i].reason) &&
                 !strcmp(v.where, cases[i].where);
        check(ok, name, "status %d, column '%s', reason '%s', at '%s'", (int)st, v.column,
              v.reason, v.where);
        if (st == SF_OK && cases[i].keep) {
            sf_errbuf err;
            sf_status ks = sf_tpl_checker_keep(k, &err);
            if (ks != SF_OK)
                check(0, name, "keep: %d %s", (int)ks, err.msg);
        }
    }
    /* A unique set grows geometrically: 100000 values, a few dozen blocks. */
    sf_mem_stat before, after;
    sf_census_stat(cs, SF_MEM_RENDER, &before);
    char buf[32];
    fake_row r = {{buf, "a", "x"}};
    int bad = 0;
    for (int i = 0; i < 100000 && !bad; i++) {
        snprintf(buf, sizeof buf, "v%d", i);
        sf_tpl_verdict v;
        sf_errbuf err;
        bad = sf_tpl_checker_row(k, fake_col, &r, &v) != SF_OK || sf_tpl_checker_keep(k, &err) != SF_OK;
    }
    sf_census_stat(cs, SF_MEM_RENDER, &after);
    check(!bad && after.allocs - before.allocs < 20 && after.bytes - before.bytes <= (size_t)8 << 18,
          "eval: 100000 unique values: under 20 allocations, 8 bytes a slot (2 MiB)",
          "bad %d, %llu allocations, %llu bytes", bad,
          (unsigned long long)(after.allocs - before.allocs),
          (unsigned long long)(after.bytes - before.bytes));
    sf_tpl_checker_free(k);
    sf_template_free(t);
    sf_mem_stat s;
    uint64_t live = 0;
    for (int ty = 0; ty < SF_MEM_TYPE_COUNT; ty++)
        if (ty != SF_MEM_HANDLE && sf_census_stat(cs, (sf_mem_type)ty, &s) == SF_OK)
            live += s.bytes;
    check(live == 0, "eval: everything freed", "%llu bytes live", (unsigned long long)live);
    sf_census_free(cs);
}

/* The limit of a unique check: 10,000,000 distinct values kept, then the
 * run fails (the check, not the row); a repeat at the limit is still a
 * failing row, not the limit. About 128 MiB of table at the end. */
static void test_unique_limit(void)
{
    sf_census *cs = sf_census_create();
    sf_status st;
    sf_template *t = compile(cs, "{{! sqlfeed-check: unique a }}<r/>", &st);
    sf_tpl_checker *k = st == SF_OK ? sf_tpl_checker_create(cs, t) : NULL;
    char buf[32];
    fake_row r = {{buf}};
    sf_tpl_verdict v;
    sf_errbuf err;
    uint32_t i;
    st = k ? SF_OK : SF_ERR_NOMEM;
    for (i = 0; st == SF_OK && i < SF_TPL_UNIQUE_MAX; i++) {
        /* i in decimal, written by hand: snprintf would be most of the time */
        char tmp[16];
        size_t n = 0, j = 0;
        uint32_t x = i;
        do
            tmp[n++] = (char)('0' + x % 10);
        while ((x /= 10) != 0);
        while (n)
            buf[j++] = tmp[--n];
        buf[j] = '\0';
        if ((st = sf_tpl_checker_row(k, fake_col, &r, &v)) == SF_OK)
            st = sf_tpl_checker_keep(k, &err);
    }
    check(st == SF_OK && i == SF_TPL_UNIQUE_MAX, "unique: 10,000,000 distinct values kept",
          "at %u: status %d", i, (int)st);
    snprintf(buf, sizeof buf, "%u", 17u);
    st = k ? sf_tpl_checker_row(k, fake_col, &r, &v) : SF_ERR_NOMEM;
    check(st == SF_ERR_INVALID && !strcmp(v.reason, "unique, '17' came before"),
          "unique: at the limit a repeat is still the row's failure", "status %d", (int)st);
    snprintf(buf, sizeof buf, "new");
    st = k ? sf_tpl_checker_row(k, fake_col, &r, &v) : SF_ERR_NOMEM;
    if (st == SF_OK)
        st = sf_tpl_checker_keep(k, &err);
    check(st == SF_ERR_INVALID &&
              strstr(err.msg, "sqlfeed-check 'unique a' (at t.mustache:1:20): more than 10000000 "
                              "distinct values"),
          "unique: one more distinct value fails the run", "status %d: %s", (int)st,
          st == SF_ERR_INVALID ? err.msg : "");
    sf_mem_stat s;
    sf_census_stat(cs, SF_MEM_RENDER, &s);
    check(s.bytes <= ((size_t)130 << 20), "unique: the table at the limit is 128 MiB",
          "%llu bytes", (unsigned long long)s.bytes);
    sf_tpl_checker_free(k);
    sf_template_free(t);
    sf_census_free(cs);
}

/* ---- the render -------------------------------------------------------------- */

typedef struct run_result {
    sf_status st;
    char err[1024];
    char out[8192];
    char log[8192];
    uint64_t written, skipped, allocs, live;
} run_result;

static void slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    size_t k = f ? fread(buf, 1, n - 1, f) : 0;
    buf[k] = '\0';
    if (f)
        fclose(f);
}

/* Renders `tpl` over `sql` with the options (name, value, ..., NULL). */
static void render(run_result *res, const char *tpl, const char *sql, const char *const *opts)
{
    sf_census *cs = sf_census_create();
    sf_status st;
    sf_template *t = compile(cs, tpl, &st);
    if (st == SF_OK && fake_fmt)
        t->nfcalls = 1; /* as if it had a formatter: its rows may fail */
    fmt_calls = 0;
    sf_source *src = sf_source_create(cs);
    sf_output *o = sf_output_create(cs);
    sf_render *r = sf_render_create(cs);
    char path[4096], log[4096];
    snprintf(path, sizeof path, "%s/out.xml", scratch);
    snprintf(log, sizeof log, "%s/rejects.tsv", scratch);
    unlink(path);
    unlink(log);
    memset(res, 0, sizeof *res);
    if (st != SF_OK)
        snprintf(res->err, sizeof res->err, "%s", sf_template_errmsg(t));
    if (st == SF_OK && ((st = sf_source_open(src, ":memory:")) != SF_OK ||
                        (st = sf_source_prepare(src, sql)) != SF_OK))
        snprintf(res->err, sizeof res->err, "%s", sf_source_errmsg(src));
    if (st == SF_OK) /* from here on, the render's allocations */
        sf_census_fail_after(cs, fail_after);
    if (st == SF_OK && (st = sf_output_open_file(o, path)) != SF_OK)
        snprintf(res->err, sizeof res->err, "%s", sf_output_errmsg(o));
    for (size_t i = 0; st == SF_OK && opts && opts[i]; i += 2) {
        const char *v = strcmp(opts[i + 1], "LOG") ? opts[i + 1] : log;
        if ((st = sf_render_set_option(r, opts[i], v)) != SF_OK)
            snprintf(res->err, sizeof res->err, "%s", sf_render_errmsg(r));
    }
    if (st == SF_OK && (st = sf_render_run(r, t, src, o)) != SF_OK)
        snprintf(res->err, sizeof res->err, "%s", sf_render_errmsg(r));
    res->written = sf_render_rows_written(r, o);
    res->skipped = sf_render_rows_skipped(r, o);
    if (st == SF_OK && (st = sf_render_commit(r)) != SF_OK)
        snprintf(res->err, sizeof res->err, "%s", sf_render_errmsg(r));
    for (int ty = 0; ty < SF_MEM_TYPE_COUNT; ty++) {
        sf_mem_stat s;
        if (ty != SF_MEM_SQLITE && sf_census_stat(cs, (sf_mem_type)ty, &s) == SF_OK)
            res->allocs += s.allocs;
    }
    res->st = st;
    if (st == SF_OK) {
        slurp(path, res->out, sizeof res->out);
        slurp(log, res->log, sizeof res->log);
    }
    sf_render_free(r);
    sf_output_free(o);
    sf_template_free(t);
    sf_source_free(src);
    res->live = sf_census_live_bytes(cs);
    sf_census_free(cs);
}

/* n rows: id 1..n; city NULL every 10th row; code repeating every 7th. */
static void rows_sql(char *buf, size_t n, int rows)
{
    snprintf(buf, n,
             "WITH RECURSIVE c(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM c WHERE id < %d) "
             "SELECT 'k' || id AS ref, CASE WHEN id %% 10 = 0 THEN NULL ELSE 'x' END AS city, "
             "id AS code FROM c",
             rows);
}

static void test_render(void)
{
    run_result res;
    const char *tpl = "{{! sqlfeed-check: required city; max ref 5 }}"
                      "<f t=\"{{#first}}{{ref}}{{/first}}\">{{#rows}}{{ref}},{{/rows}}"
                      "<n>{{row_count}}</n></f>";
    char sql[512];
    rows_sql(sql, sizeof sql, 25);
    const char *const skip[] = {"on_invalid", "skip", "reject_log", "LOG", NULL};
    render(&res, tpl, sql, skip);
    check(res.st == SF_OK &&
              !strcmp(res.out, "<f t=\"k1\">k1,k2,k3,k4,k5,k6,k7,k8,k9,k11,k12,k13,k14,k15,k16,"
                               "k17,k18,k19,k21,k22,k23,k24,k25,<n>23</n></f>") &&
              res.written == 23 && res.skipped == 2,
          "render: skip leaves rows 10, 20 (NULL city) out; first in the head; row_count",
          "status %d (%s), written %llu, skipped %llu: %s", (int)res.st, res.err,
          (unsigned long long)res.written, (unsigned long long)res.skipped, res.out);
    char want[1024];
    snprintf(want, sizeof want,
             "row\tkey\toutput\tcolumn\treason\n"
             "10\tk10\t%s/out.xml\tcity\trequired, is NULL\n"
             "20\tk20\t%s/out.xml\tcity\trequired, is NULL\n",
             scratch, scratch);
    check(!strcmp(res.log, want), "render: the reject log's lines", "got '%s', want '%s'", res.log,
          want);
    render(&res, tpl, sql, NULL);
    check(res.st == SF_ERR_INVALID &&
              !strcmp(res.err, "row 10: column city: required, is NULL (rule at t.mustache:1:29)"),
          "render: fail is the default: SF_ERR_INVALID with the row, column and rule", "%d %s",
          (int)res.st, res.err);

    /* The census: a run of 2000 rows allocates what a run of 200 does. */
    const char *tpl2 = "{{! sqlfeed-check: required city; max ref 9; enum city x }}"
                       "<f t=\"{{#first}}{{ref}}{{/first}}\">{{#rows}}{{ref}},{{/rows}}"
                       "<n>{{row_count}}</n></f>";
    run_result small, big;
    rows_sql(sql, sizeof sql, 200);
    render(&small, tpl2, sql, skip);
    rows_sql(sql, sizeof sql, 2000);
    render(&big, tpl2, sql, skip);
    check(small.st == SF_OK && big.st == SF_OK && big.skipped == 200 && small.allocs == big.allocs,
          "census: checks, skips, the reject log and first allocate nothing per row",
          "status %d/%d (%s%s), %llu allocations for 200 rows, %llu for 2000", (int)small.st,
          (int)big.st, small.err, big.err, (unsigned long long)small.allocs,
          (unsigned long long)big.allocs);

    /* Options. */
    const char *const bad_mode[] = {"on_invalid", "drop", NULL};
    render(&res, tpl, sql, bad_mode);
    check(res.st == SF_ERR_ARG && strstr(res.err, "expected skip or fail"),
          "options: on_invalid drop refused", "%d %s", (int)res.st, res.err);
    const char *const empty_log[] = {"reject_log", "", NULL};
    render(&res, tpl, sql, empty_log);
    check(res.st == SF_ERR_ARG, "options: reject_log '' refused", "%d %s", (int)res.st, res.err);
    const char *const twice[] = {"reject_log", "LOG", "reject_log", "LOG", NULL};
    render(&res, tpl, sql, twice);
    check(res.st == SF_ERR_STATE && strstr(res.err, "reject_log is set already"),
          "options: reject_log twice refused", "%d %s", (int)res.st, res.err);
    const char *const nodir[] = {"reject_log", "/nonexistent-dir/x.tsv", NULL};
    render(&res, tpl, sql, nodir);
    check(res.st == SF_ERR_OUTPUT, "options: a reject log that cannot be created", "%d %s",
          (int)res.st, res.err);

    /* Names. */
    rows_sql(sql, sizeof sql, 3);
    render(&res, "{{! sqlfeed-check: unique nosuch }}<f>{{#rows}}{{ref}}{{/rows}}</f>", sql, NULL);
    check(res.st == SF_ERR_NAME &&
              !strcmp(res.err, "t.mustache:1:20: sqlfeed-check 'unique nosuch': 'nosuch' is not a "
                               "column of the query"),
          "names: a rule's column is checked", "%d %s", (int)res.st, res.err);
    render(&res, "<f>{{#rows}}{{ref}}{{/rows}}{{#first}}{{code}}{{/first}}{{row_count}}</f>", sql, NULL);
    check(res.st == SF_OK && !strcmp(res.out, "<f>k1k2k313</f>"),
          "names: first and row_count in the tail", "%d %s %s", (int)res.st, res.err, res.out);
    render(&res, "<f>{{#rows}}{{row_count}}{{/rows}}</f>", sql, NULL);
    check(res.st == SF_ERR_TEMPLATE && strstr(res.err, "t.mustache:1:13: row_count is known only after the rows"),
          "names: row_count inside the rows", "%d %s", (int)res.st, res.err);
    render(&res, "<f>{{#rows}}{{row_count}}{{/rows}}</f>",
           "SELECT 7 AS row_count UNION ALL SELECT 8", NULL);
    check(res.st == SF_OK && !strcmp(res.out, "<f>78</f>"),
          "names: a column named row_count is the column inside the rows", "%d %s %s",
          (int)res.st, res.err, res.out);
    render(&res, "<f>{{#rows}}{{#first}}({{ref}}){{/first}}{{/rows}}</f>", sql, NULL);
    check(res.st == SF_OK && !strcmp(res.out, "<f>(k1)(k1)(k1)</f>"),
          "names: first read only inside the rows is the first row", "%d %s %s", (int)res.st,
          res.err, res.out);
    render(&res, "<f>{{#first}}{{ref}}{{/first}}{{^first}}none{{/first}}{{#rows}}{{/rows}}</f>",
           "SELECT 'a' AS ref WHERE 0", NULL);
    check(res.st == SF_OK && !strcmp(res.out, "<f>none</f>"), "names: first without rows is falsy",
          "%d %s %s", (int)res.st, res.err, res.out);
}

static void test_formatter(void)
{
    run_result res;
    char sql[512], want[1024];
    rows_sql(sql, sizeof sql, 5);
    const char *tpl = "<f>{{#rows}}<j>{{ref}}</j>{{/rows}}<n>{{row_count}}</n></f>";
    const char *const skip[] = {"on_invalid", "skip", "reject_log", "LOG", NULL};
    fake_fmt = 1;
    fmt_fail_row = 3;
    render(&res, tpl, sql, skip);
    snprintf(want, sizeof want,
             "row\tkey\toutput\tcolumn\treason\n"
             "3\tk3\t%s/out.xml\tposted_at\t'yesterday' is not a date\n",
             scratch);
    check(res.st == SF_OK &&
              !strcmp(res.out, "<f><j>k1</j><j>k2</j><j>k4</j><j>k5</j><n>4</n></f>") &&
              res.skipped == 1 && !strcmp(res.log, want),
          "formatter, skip: the failed row writes nothing (rendered into the row buffer first)",
          "status %d (%s): '%s', log '%s'", (int)res.st, res.err, res.out, res.log);
    render(&res, tpl, sql, NULL);
    check(res.st == SF_ERR_INVALID && !strncmp(res.err, "row 3: ", 7),
          "formatter, fail: SF_ERR_INVALID, the row number first", "status %d (%s)", (int)res.st,
          res.err);
    /* Split by rows (2 a part): the row buffer holds the row that would
     * start a part; a failed one starts none. */
    const char *const split[] = {"on_invalid", "skip", NULL};
    fmt_fail_row = 3;
    sf_census *cs = sf_census_create();
    sf_template *t = compile(cs, tpl, &res.st);
    t->nfcalls = 1;
    sf_source *src = sf_source_create(cs);
    sf_output *o = sf_output_create(cs);
    sf_render *r = sf_render_create(cs);
    char pattern[4096], p1[4096], p2[4096], p3[4096];
    snprintf(pattern, sizeof pattern, "%s/part-%%d.xml", scratch);
    snprintf(p1, sizeof p1, "%s/part-1.xml", scratch);
    snprintf(p2, sizeof p2, "%s/part-2.xml", scratch);
    snprintf(p3, sizeof p3, "%s/part-3.xml", scratch);
    fmt_calls = 0;
    sf_status st = sf_source_open(src, ":memory:");
    if (st == SF_OK)
        st = sf_source_prepare(src, sql);
    if (st == SF_OK)
        st = sf_output_set_option(o, "split_rows", "2");
    if (st == SF_OK)
        st = sf_output_open_parts(o, pattern);
    for (size_t i = 0; st == SF_OK && split[i]; i += 2)
        st = sf_render_set_option(r, split[i], split[i + 1]);
    if (st == SF_OK)
        st = sf_render_run(r, t, src, o);
    if (st == SF_OK)
        st = sf_render_commit(r);
    char a[256], b[256], c[256] = "";
    slurp(p1, a, sizeof a);
    slurp(p2, b, sizeof b);
    int third = access(p3, F_OK) == 0;
    check(st == SF_OK && !strcmp(a, "<f><j>k1</j><j>k2</j><n>2</n></f>") &&
              !strcmp(b, "<f><j>k4</j><j>k5</j><n>2</n></f>") && !third &&
              sf_render_rows_skipped(r, o) == 1 && sf_render_rows_written(r, o) == 4,
          "formatter, skip, split by rows: parts 1-2 and 4-5", "status %d (%s) '%s' '%s' %d %s",
          (int)st, sf_render_errmsg(r), a, b, third, c);
    sf_render_free(r);
    sf_output_free(o);
    sf_template_free(t);
    sf_source_free(src);
    sf_census_free(cs);
    fake_fmt = 0;
    fmt_fail_row = 0;
}

/* Every allocation of a run with checks, skip, a reject log, first and
 * row_count failing in turn: each failure clean (SF_ERR_NOMEM, a message,
 * nothing leaked), until the run succeeds. */
static void test_oom(void)
{
    const char *tpl = "{{! sqlfeed-check: required city; unique code }}"
                      "<f t=\"{{#first}}{{ref}}{{/first}}\">{{#rows}}{{ref}},{{/rows}}"
                      "<n>{{row_count}}</n></f>";
    char sql[512];
    rows_sql(sql, sizeof sql, 30);
    const char *const skip[] = {"on_invalid", "skip", "reject_log", "LOG", NULL};
    run_result res;
    int bad = 0;
    uint64_t n;
    for (n = 0; n < 2000 && !bad; n++) {
        fail_after = n;
        render(&res, tpl, sql, skip);
        if (res.st == SF_OK)
            break;
        bad = res.st != SF_ERR_NOMEM || !res.err[0] || res.live != 0;
    }
    fail_after = SF_CENSUS_FAIL_NEVER;
    check(!bad && n > 20 && res.st == SF_OK && res.skipped == 3 && res.live == 0,
          "oom: every allocation of a checked, skipping run fails cleanly",
          "at allocation %llu: status %d (%s), %llu bytes live", (unsigned long long)n,
          (int)res.st, res.err, (unsigned long long)res.live);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: feed9_test DIR\n");
        return 2;
    }
    scratch = argv[1];
    test_parse();
    test_eval();
    test_unique_limit();
    test_render();
    test_formatter();
    test_oom();
    printf("feed9: %d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
