/* json_test.c: the JSON view (src/value/json.c): which texts are JSON and
 * where a bad one breaks, strings decoded (escapes, surrogates), truthiness,
 * lookups, list walks (twice, out of order, large), the arena's limit, a
 * second row allocating nothing, and a render through the template engine
 * with a JSON list as a section.
 *   json_test
 * Prints "PASS: name" / "FAIL: name: detail"; exits 1 if anything failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"
#include "value/arena.h"
#include "value/json.h"

#include "check.h"

static sf_census *cs;

/* ---- helpers ---------------------------------------------------------------- */

static int view(sf_arena *a, const char *s, sf_val *v, char *why)
{
    return sf_json_view(a, s, strlen(s), v, why, 256);
}

/* The value at a path of keys and indexes ("a.0.b"); indexes are walked
 * from 0 in order, as the renderer asks. 1 found, 0 absent, -1 error. */
static int at(const sf_val *root, const char *path, sf_val *out)
{
    sf_val v = *root;
    while (*path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        if (path[0] >= '0' && path[0] <= '9') {
            if (v.kind != SF_VAL_LIST)
                return 0;
            size_t want = (size_t)strtoul(path, NULL, 10);
            sf_val it;
            for (size_t i = 0; i <= want; i++) {
                int rc = v.ops->item(v.obj, i, &it);
                if (rc <= 0)
                    return rc;
            }
            v = it;
        } else {
            if (v.kind != SF_VAL_MAP)
                return 0;
            sf_val next;
            int rc = v.ops->lookup(v.obj, 0, path, len, &next);
            if (rc <= 0)
                return rc;
            v = next;
        }
        path += len + (dot ? 1 : 0);
    }
    *out = v;
    return 1;
}

static int is_text(const sf_val *v, const char *want, size_t wn)
{
    return v->kind == SF_VAL_TEXT && v->n == wn && memcmp(v->s, want, wn) == 0;
}

static uint64_t census_allocs(void)
{
    uint64_t n = 0;
    for (int t = 0; t < SF_MEM_TYPE_COUNT; t++) {
        sf_mem_stat s;
        sf_census_stat(cs, (sf_mem_type)t, &s);
        n += s.allocs;
    }
    return n;
}

/* ---- which texts are JSON ---------------------------------------------------- */

static void test_valid(void)
{
    static const char *const ok[] = {
        "0", "-0", "12", "-1.5e+10", "1E-2", "0.25", "\"\"", "\"x\"", "true", "false", "null",
        " [ ] ", "\t{}\r\n", "[1,[2,[3]]]", "{\"a\":{\"b\":[]},\"c\":null}",
        "\"\\u00e9\\ud83d\\ude00\"", "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"",
        "[\"\\ud800\"]", "{\"\":\"\"}", "[true,false,null,\"\",0,{}]",
    };
    sf_arena a;
    sf_arena_init(&a, cs, 0);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        sf_val v;
        char why[256] = "";
        int rc = view(&a, ok[i], &v, why);
        char name[160];
        snprintf(name, sizeof name, "json valid: %s", ok[i]);
        check(rc == 0, name, "rc %d: %s", rc, why);
    }
    sf_arena_free(&a);
}

static void test_invalid(void)
{
    static const struct {
        const char *s, *at; /* `at`: what `why` must hold */
    } bad[] = {
        {"", "at byte 0 (the end): expected a value"},
        {"  ", "at byte 2 (the end)"},
        {"[1,]", "at byte 3 (']'): expected a value"},
        {"[1 2]", "at byte 3 ('2'): expected ',' or ']'"},
        {"{\"a\" 1}", "at byte 5 ('1'): expected ':'"},
        {"{\"a\":1,}", "at byte 7 ('}'): expected a member's name"},
        {"{1:2}", "at byte 1 ('1'): expected a member's name"},
        {"01", "at byte 1 ('1'): expected no digit after a leading 0"},
        {"1.", "at byte 2 (the end): expected a digit after '.'"},
        {"1.e5", "at byte 2 ('e')"},
        {"1e", "at byte 2 (the end): expected a digit in the exponent"},
        {"-", "at byte 1 (the end): expected a digit"},
        {"+1", "at byte 0 ('+')"},
        {".5", "at byte 0 ('.')"},
        {"NaN", "at byte 0 ('N')"},
        {"tru", "at byte 0 ('t')"},
        {"nul", "at byte 0 ('n')"},
        {"'a'", "at byte 0 (''')"},
        {"1 2", "at byte 2 ('2'): expected the end of the text"},
        {"[] x", "at byte 3 ('x')"},
        {"\"abc", "at byte 4 (the end): expected a closing '\"'"},
        {"\"a\x01\"", "at byte 2 ('?'): expected a control character written as an escape"},
        {"\"a\tb\"", "at byte 2 ('?')"},
        {"\"\\x\"", "at byte 2 ('x'): expected an escape"},
        {"\"\\u12g4\"", "at byte 5 ('g'): expected 4 hex digits"},
        {"\"\\u12", "at byte 5 (the end): expected 4 hex digits"},
        {"\"\xFF\"", "at byte 1 ('?'): expected valid UTF-8"},
        {"\"\xC0\xAF\"", "at byte 1 ('?'): expected valid UTF-8"},     /* overlong '/' */
        {"\"\xED\xA0\x80\"", "at byte 1 ('?'): expected valid UTF-8"}, /* an encoded surrogate */
        {"\"\xF4\x90\x80\x80\"", "at byte 1 ('?')"},                   /* past U+10FFFF */
        {"\"\xE2\x82\"", "at byte 1 ('?')"},                           /* cut short */
        {"[", "at byte 1 (the end): expected a value"},
        {"{", "at byte 1 (the end): expected a member's name"},
        {"[1", "at byte 2 (the end): expected ',' or ']'"},
        {"]", "at byte 0 (']')"},
    };
    sf_arena a;
    sf_arena_init(&a, cs, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sf_val v;
        char why[256] = "";
        int rc = view(&a, bad[i].s, &v, why);
        char name[160];
        snprintf(name, sizeof name, "json invalid: %s", bad[i].s);
        check(rc == -1 && strncmp(why, "not JSON: ", 10) == 0 && strstr(why, bad[i].at), name,
              "rc %d, why '%s', want '%s'", rc, why, bad[i].at);
    }
    /* A NUL inside the text is a byte like any other: not JSON here. */
    sf_val v;
    char why[256] = "";
    int rc = sf_json_view(&a, "[1]\0", 4, &v, why, sizeof why);
    check(rc == -1 && strstr(why, "at byte 3"), "json invalid: NUL after the value", "rc %d: %s",
          rc, why);
    check(a.used == 0, "json invalid: validation allocates nothing", "%zu bytes", a.used);
    sf_arena_free(&a);
}

static void test_depth(void)
{
    char s[2 * SF_JSON_MAX_DEPTH + 8];
    sf_arena a;
    sf_arena_init(&a, cs, 0);
    for (int extra = 0; extra <= 1; extra++) {
        int d = SF_JSON_MAX_DEPTH + extra;
        memset(s, '[', (size_t)d);
        memset(s + d, ']', (size_t)d);
        size_t n = 2 * (size_t)d;
        sf_val v;
        char why[256] = "";
        int rc = sf_json_view(&a, s, n, &v, why, sizeof why);
        if (!extra)
            check(rc == 0, "json depth: 64 arrays nested", "rc %d: %s", rc, why);
        else
            check(rc == -1 && strstr(why, "at byte 64") && strstr(why, "at most 64"),
                  "json depth: 65 refused at byte 64", "rc %d: %s", rc, why);
    }
    /* Objects count too: 64 levels of {"a": ...}. */
    char o[8 * SF_JSON_MAX_DEPTH + 16];
    for (int extra = 0; extra <= 1; extra++) {
        int d = SF_JSON_MAX_DEPTH + extra;
        size_t n = 0;
        for (int i = 0; i < d; i++)
            memcpy(o + n, "{\"a\":", 5), n += 5;
        o[n++] = '1';
        for (int i = 0; i < d; i++)
            o[n++] = '}';
        sf_val v;
        char why[256] = "";
        int rc = sf_json_view(&a, o, n, &v, why, sizeof why);
        check(extra ? rc == -1 && strstr(why, "at most 64") != NULL : rc == 0,
              extra ? "json depth: 65 objects refused" : "json depth: 64 objects nested",
              "rc %d: %s", rc, why);
        if (!extra && rc == 0) {
            char path[2 * SF_JSON_MAX_DEPTH + 1];
            size_t k = 0;
            for (int i = 0; i < d; i++)
                path[k++] = 'a', path[k++] = '.';
            path[k - 1] = '\0';
            sf_val got;
            int r = at(&v, path, &got);
            check(r == 1 && is_text(&got, "1", 1), "json depth: the innermost value read",
                  "rc %d", r);
        }
    }
    sf_arena_free(&a);
}

/* ---- strings ---------------------------------------------------------------- */

static void test_strings(void)
{
    static const struct {
        const char *json, *want;
        size_t wn;
    } cases[] = {
        {"\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "a\"b\\c/d\b\f\n\r\t", 12},
        {"\"\\u0041\\u00e9\\u20AC\"", "A\xC3\xA9\xE2\x82\xAC", 6},
        {"\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80", 4},          /* a pair: U+1F600 */
        {"\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4},          /* U+10FFFF */
        {"\"\\ud800\"", "\xEF\xBF\xBD", 3},                     /* lone high */
        {"\"\\udc00x\"", "\xEF\xBF\xBDx", 4},                   /* lone low */
        {"\"\\ud800\\u0041\"", "\xEF\xBF\xBD" "A", 4},          /* high, then no low */
        {"\"\\ud800\\ud800\\udc00\"", "\xEF\xBF\xBD\xF0\x90\x80\x80", 7},
        {"\"\\ud800\\n\"", "\xEF\xBF\xBD\n", 4},
        {"\"\\u0000\"", "\0", 1},
        {"\"caf\xC3\xA9\"", "caf\xC3\xA9", 5},
    };
    sf_arena a;
    sf_arena_init(&a, cs, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sf_val v;
        char why[256] = "";
        int rc = view(&a, cases[i].json, &v, why);
        char name[160];
        snprintf(name, sizeof name, "json string: %s", cases[i].json);
        check(rc == 0 && is_text(&v, cases[i].want, cases[i].wn) && v.truthy, name,
              "rc %d kind %d n %zu: %s", rc, v.kind, v.n, why);
    }
    /* Unescaped strings are the column's own bytes; escaped ones arena bytes. */
    const char *plain = "  \"abc\"  ";
    sf_val v;
    char why[256];
    size_t used = a.used;
    int rc = view(&a, plain, &v, why);
    check(rc == 0 && v.s == plain + 3 && v.n == 3 && a.used == used,
          "json string: no escape points into the column", "rc %d", rc);
    rc = view(&a, "\"a\\nb\"", &v, why);
    check(rc == 0 && a.used > used, "json string: an escaped one is decoded into the arena",
          "rc %d, used %zu", rc, a.used);
    sf_arena_free(&a);
}

/* ---- truthiness ------------------------------------------------------------- */

static void test_truthy(void)
{
    static const struct {
        const char *json;
        int kind, truthy;
    } cases[] = {
        {"[]", SF_VAL_LIST, 0},   {" [ ] ", SF_VAL_LIST, 0}, {"[0]", SF_VAL_LIST, 1},
        {"{}", SF_VAL_MAP, 1},    {"\"\"", SF_VAL_TEXT, 0},  {"\"0\"", SF_VAL_TEXT, 1},
        {"0", SF_VAL_TEXT, 0},    {"-0", SF_VAL_TEXT, 0},    {"0.000", SF_VAL_TEXT, 0},
        {"0e10", SF_VAL_TEXT, 0}, {"0.5", SF_VAL_TEXT, 1},   {"-3", SF_VAL_TEXT, 1},
        {"1e-9", SF_VAL_TEXT, 1}, {"true", SF_VAL_BOOL, 1},  {"false", SF_VAL_BOOL, 0},
        {"null", SF_VAL_NULL, 0},
    };
    sf_arena a;
    sf_arena_init(&a, cs, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sf_val v;
        char why[256] = "";
        int rc = view(&a, cases[i].json, &v, why);
        char name[160];
        snprintf(name, sizeof name, "json truthy: %s is %s", cases[i].json,
                 cases[i].truthy ? "truthy" : "falsy");
        check(rc == 0 && v.kind == cases[i].kind && v.truthy == cases[i].truthy, name,
              "rc %d kind %d truthy %d", rc, v.kind, v.truthy);
    }
    /* A number is its text as written; top-level ones end before white space. */
    sf_val v;
    char why[256];
    int rc = view(&a, " -1.50E+3 \n", &v, why);
    check(rc == 0 && is_text(&v, "-1.50E+3", 8), "json number: text as written", "rc %d n %zu",
          rc, v.n);
    sf_arena_free(&a);
}

/* ---- lookups and walks ------------------------------------------------------ */

static void test_lookup(void)
{
    const char *doc = "{ \"url\" : \"http://a/1\", \"pos\":1, \"u\\u0072l2\":\"b\", \"dup\":1,"
                      " \"dup\":2, \"\\u00e9t\\u00E9\": \"summer\", \"\":\"empty\","
                      " \"n\": {\"a\": [10, {\"c\": true}, [\"x\\ty\"]], \"z\": null} }";
    sf_arena a;
    sf_arena_init(&a, cs, 0);
    sf_val v, got;
    char why[256] = "";
    int rc = view(&a, doc, &v, why);
    check(rc == 0 && v.kind == SF_VAL_MAP, "json lookup: document", "rc %d: %s", rc, why);
    if (rc != 0)
        return;
    static const struct {
        const char *path, *want;
    } hits[] = {
        {"url", "http://a/1"}, {"pos", "1"}, {"url2", "b"}, {"dup", "1"}, /* first wins */
        {"\xC3\xA9t\xC3\xA9", "summer"}, {"n.a.0", "10"}, {"n.a.2.0", "x\ty"},
    };
    for (size_t i = 0; i < sizeof hits / sizeof hits[0]; i++) {
        char name[160];
        snprintf(name, sizeof name, "json lookup: %s", hits[i].path);
        rc = at(&v, hits[i].path, &got);
        check(rc == 1 && is_text(&got, hits[i].want, strlen(hits[i].want)), name,
              "rc %d kind %d '%.*s'", rc, got.kind, (int)got.n, got.s);
    }
    rc = v.ops->lookup(v.obj, 0, "", 0, &got);
    check(rc == 1 && is_text(&got, "empty", 5), "json lookup: the empty key", "rc %d", rc);
    rc = at(&v, "n.a.1.c", &got);
    check(rc == 1 && got.kind == SF_VAL_BOOL && got.truthy, "json lookup: true inside", "rc %d",
          rc);
    rc = at(&v, "n.z", &got);
    check(rc == 1 && got.kind == SF_VAL_NULL && !got.truthy, "json lookup: null is NULL",
          "rc %d kind %d", rc, got.kind);
    static const char *const misses[] = {"ur", "urlx", "URL", "url2x", "\xC3\xA9t", "n.b",
                                         "n.a.3", "pos.x"};
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        char name[160];
        snprintf(name, sizeof name, "json lookup: %s is absent", misses[i]);
        rc = at(&v, misses[i], &got);
        check(rc == 0, name, "rc %d", rc);
    }
    sf_arena_free(&a);
}

static void test_walk(void)
{
    enum { N = 100000 };
    size_t cap = (size_t)N * 48 + 16;
    char *doc = malloc(cap);
    size_t n = 0;
    doc[n++] = '[';
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(doc + n, cap - n, "%s{\"url\":\"u%d\", \"pos\":%d}\n",
                              i ? "," : "", i, i);
    doc[n++] = ']';
    sf_arena a;
    sf_arena_init(&a, cs, 0);
    sf_val v;
    char why[256] = "";
    int rc = sf_json_view(&a, doc, n, &v, why, sizeof why);
    check(rc == 0 && v.kind == SF_VAL_LIST && v.truthy, "json walk: 100000 objects", "rc %d: %s",
          rc, why);
    if (rc != 0) {
        free(doc);
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        size_t i = 0, bad = 0;
        sf_val it, u;
        for (;; i++) {
            rc = v.ops->item(v.obj, i, &it);
            if (rc != 1)
                break;
            char want[16];
            int wn = snprintf(want, sizeof want, "u%zu", i);
            if (it.kind != SF_VAL_MAP || it.ops->lookup(it.obj, 0, "url", 3, &u) != 1 ||
                !is_text(&u, want, (size_t)wn))
                bad++;
        }
        char name[64];
        snprintf(name, sizeof name, "json walk: pass %d reads every element", pass + 1);
        check(rc == 0 && i == N && bad == 0, name, "rc %d, %zu items, %zu wrong", rc, i, bad);
    }
    /* Out of order: the view restarts, still right. */
    sf_val it, p;
    rc = v.ops->item(v.obj, 7, &it);
    int ok = rc == 1 && it.ops->lookup(it.obj, 0, "pos", 3, &p) == 1 && is_text(&p, "7", 1);
    rc = v.ops->item(v.obj, 3, &it);
    ok = ok && rc == 1 && it.ops->lookup(it.obj, 0, "pos", 3, &p) == 1 && is_text(&p, "3", 1);
    rc = v.ops->item(v.obj, 3, &it);
    ok = ok && rc == 1 && it.ops->lookup(it.obj, 0, "pos", 3, &p) == 1 && is_text(&p, "3", 1);
    ok = ok && v.ops->item(v.obj, N, &it) == 0 && v.ops->item(v.obj, N + 5, &it) == 0 &&
         v.ops->item(v.obj, N - 1, &it) == 1;
    check(ok, "json walk: out of order and past the end", "rc %d", rc);

    /* A second row's walk after a reset allocates nothing: the arena's
     * chunks stay. */
    sf_arena_reset(&a);
    uint64_t before = census_allocs();
    for (int row = 0; row < 3; row++) {
        sf_arena_reset(&a);
        rc = sf_json_view(&a, doc, n, &v, why, sizeof why);
        for (size_t i = 0; rc == 0; i++) {
            int r = v.ops->item(v.obj, i, &it);
            if (r != 1)
                break;
            it.ops->lookup(it.obj, 0, "url", 3, &p);
        }
    }
    uint64_t after = census_allocs();
    check(after == before, "json walk: rows after the largest allocate nothing (census)",
          "%llu allocations", (unsigned long long)(after - before));
    sf_arena_free(&a);
    free(doc);
}

static void test_limit(void)
{
    sf_val v, it;
    char why[256] = "";
    sf_arena a;
    sf_arena_init(&a, cs, 16); /* smaller than a list's state */
    int rc = view(&a, "[1]", &v, why);
    check(rc == -2 && a.over && a.failed && strstr(why, "limit"),
          "json limit: the view refused by the arena is -2", "rc %d over %d: %s", rc, a.over, why);
    rc = view(&a, "7", &v, why);
    check(rc == 0, "json limit: a number needs no arena", "rc %d", rc);
    sf_arena_free(&a);

    /* Room for the outer list, not for what an item needs: item returns -1
     * and the arena says why. */
    sf_arena_init(&a, cs, 40);
    rc = view(&a, "[[1], \"a\\nb\", \"plain\"]", &v, why);
    int r1 = rc == 0 ? v.ops->item(v.obj, 0, &it) : 9;
    int failed = a.failed, over = a.over;
    check(rc == 0 && r1 == -1 && failed && over, "json limit: an item past the limit is -1",
          "rc %d item %d failed %d over %d", rc, r1, failed, over);
    sf_arena_free(&a);

    sf_arena_init(&a, cs, 33);
    rc = view(&a, "[\"a\\nb\", \"plain\"]", &v, why);
    r1 = v.ops->item(v.obj, 0, &it);
    int r2 = v.ops->item(v.obj, 1, &it);
    check(rc == 0 && r1 == -1 && a.failed && r2 == 1 && is_text(&it, "plain", 5),
          "json limit: a decoded string past the limit is -1, plain text still reads",
          "rc %d %d %d", rc, r1, r2);
    sf_arena_free(&a);

    sf_arena_init(&a, cs, 20);
    rc = view(&a, "{\"k\": {\"x\": 1}}", &v, why);
    sf_val got;
    r1 = rc == 0 ? v.ops->lookup(v.obj, 0, "k", 1, &got) : 9;
    check(rc == 0 && r1 == -1 && a.failed, "json limit: a lookup past the limit is -1",
          "rc %d lookup %d", rc, r1);
    sf_arena_free(&a);
}

/* ---- a render ------------------------------------------------------------- */

typedef struct membuf {
    sf_wbuf w;
    char small[16];
    char all[1 << 20];
    size_t len;
} membuf;

static int mem_drain(sf_wbuf *w)
{
    membuf *m = (membuf *)w;
    if (m->len + w->len >= sizeof m->all)
        return -1;
    memcpy(m->all + m->len, w->buf, w->len);
    m->len += w->len;
    m->all[m->len] = '\0';
    w->len = 0;
    return 0;
}

typedef struct root {
    sf_val images, title;
} root;

static int root_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    root *r = obj;
    (void)sym;
    if (len == 6 && memcmp(name, "images", 6) == 0) {
        *out = r->images;
        return 1;
    }
    if (len == 5 && memcmp(name, "title", 5) == 0) {
        *out = r->title;
        return 1;
    }
    return 0;
}

static const sf_data_ops root_ops = {root_lookup, NULL};

static sf_status render(const char *tpl, const char *json, sf_arena *a, char *out, size_t outn,
                        char *err, size_t errn)
{
    sf_template *t = sf_template_create(cs, SF_TEMPLATE_XML);
    sf_status st = sf_template_load_string(t, "t.mustache", tpl, strlen(tpl), NULL, NULL);
    if (st != SF_OK) {
        snprintf(err, errn, "load: %s", sf_template_errmsg(t));
        sf_template_free(t);
        return st;
    }
    root r;
    memset(&r, 0, sizeof r);
    r.title.kind = SF_VAL_TEXT;
    r.title.s = "T";
    r.title.n = 1;
    r.title.truthy = 1;
    char why[256] = "";
    if (sf_json_view(a, json, strlen(json), &r.images, why, sizeof why) != 0) {
        snprintf(err, errn, "view: %s", why);
        sf_template_free(t);
        return SF_ERR_ARG;
    }
    sf_val rv;
    memset(&rv, 0, sizeof rv);
    rv.kind = SF_VAL_MAP;
    rv.truthy = 1;
    rv.ops = &root_ops;
    rv.obj = &r;
    static membuf m;
    memset(&m, 0, sizeof m);
    m.w.buf = m.small;
    m.w.cap = sizeof m.small;
    m.w.drain = mem_drain;
    sf_errbuf e;
    sf_err_clear(&e);
    st = sf_tpl_render(t, &m.w, &rv, &e);
    if (st == SF_OK && mem_drain(&m.w) != 0)
        st = SF_ERR_OUTPUT;
    snprintf(out, outn, "%s", m.all);
    snprintf(err, errn, "%s", e.msg);
    sf_template_free(t);
    return st;
}

static void test_render(void)
{
    const char *tpl = "<r t=\"{{title}}\">{{#images}}<i u=\"{{url}}\" p=\"{{pos}}\">"
                      "{{#tags}}({{.}}){{/tags}}{{^tags}}-{{/tags}}{{#main}}M{{/main}}</i>"
                      "{{/images}}{{^images}}none{{/images}}</r>";
    const char *json = "[{\"url\":\"http://x/a?b=1&c=2\",\"pos\":1,\"tags\":[\"red\",\"<b>\"],"
                       "\"main\":true},{\"url\":\"http://x/\\u00e9\",\"pos\":2,\"tags\":[],"
                       "\"main\":false}, {\"pos\":0}]";
    /* The third image has no url: absent from the item and from the root,
     * it renders empty. */
    const char *want = "<r t=\"T\"><i u=\"http://x/a?b=1&amp;c=2\" p=\"1\">(red)(&lt;b&gt;)M</i>"
           "<i u=\"http://x/\xC3\xA9\" p=\"2\">-</i><i u=\"\" p=\"0\">-</i></r>";
    sf_arena a;
    sf_arena_init(&a, cs, 0);
    char out[4096], err[1024];
    sf_status st = render(tpl, json, &a, out, sizeof out, err, sizeof err);
    check(st == SF_OK && strcmp(out, want) == 0, "json render: a section over a JSON list",
          "status %d: %s\n got: %s\nwant: %s", st, err, out, want);

    sf_arena_reset(&a);
    st = render(tpl, "[]", &a, out, sizeof out, err, sizeof err);
    check(st == SF_OK && strcmp(out, "<r t=\"T\">none</r>") == 0,
          "json render: an empty array is falsy", "status %d: %s: %s", st, err, out);

    /* The section walked twice in one template reads the same items. */
    sf_arena_reset(&a);
    st = render("<r>{{#images}}{{pos}}{{/images}}|{{#images}}{{pos}}{{/images}}</r>",
                "[{\"pos\":1},{\"pos\":2},{\"pos\":3}]", &a, out, sizeof out, err, sizeof err);
    check(st == SF_OK && strcmp(out, "<r>123|123</r>") == 0, "json render: a list walked twice",
          "status %d: %s: %s", st, err, out);

    /* The list inside itself: each level's walk restarts and stays right. */
    sf_arena_reset(&a);
    st = render("<r>{{#images}}{{.}}({{#images}}{{.}}{{/images}}){{/images}}</r>", "[1,2,3]", &a,
                out, sizeof out, err, sizeof err);
    check(st == SF_OK && strcmp(out, "<r>1(123)2(123)3(123)</r>") == 0,
          "json render: a list walked inside itself", "status %d: %s: %s", st, err, out);
    sf_arena_free(&a);

    /* The arena refusing inside the walk: the render fails, the arena says
     * why (the renderer maps it, docs/value.md). */
    sf_arena_init(&a, cs, 64);
    st = render("<r>{{#images}}<i>{{#t}}{{.}}{{/t}}</i>{{/images}}</r>",
                "[{\"t\":[1]},{\"t\":[2]},{\"t\":[3]}]", &a, out, sizeof out, err, sizeof err);
    check(st != SF_OK && a.failed && a.over, "json render: the arena's limit fails the render",
          "status %d failed %d: %s", st, a.failed, out);
    sf_arena_free(&a);
}

/* json_test render TEMPLATE FILE: FILE holds JSON texts, each followed by
 * RECORD_END (as a database's JSON column rendered raw by the CLI); each is
 * viewed and rendered through TEMPLATE (XML mode, the view as `images`),
 * one output per line on stdout. For tests/server_test.sh: the same child
 * rows aggregated by SQLite, PostgreSQL and MariaDB must render the same
 * bytes. Exit 1 when a text is not JSON or a render fails. */
#define RECORD_END "\n----8<----\n"
static int render_file(const char *tpl, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    static char data[8 << 20];
    size_t n = fread(data, 1, sizeof data - 1, f);
    fclose(f);
    data[n] = '\0';
    sf_arena a;
    sf_arena_init(&a, cs, 0);
    int rc = 0;
    for (char *p = data, *e; *p && (e = strstr(p, RECORD_END)) != NULL;
         p = e + strlen(RECORD_END)) {
        *e = '\0';
        sf_arena_reset(&a);
        static char out[1 << 20];
        char err[1024];
        sf_status st = render(tpl, p, &a, out, sizeof out, err, sizeof err);
        if (st != SF_OK) {
            fprintf(stderr, "json_test: %s: %s\n", path, err);
            rc = 1;
            break;
        }
        printf("%s\n", out);
    }
    sf_arena_free(&a);
    return rc;
}

int main(int argc, char **argv)
{
    cs = sf_census_create();
    if (!cs)
        return 1;
    if (argc == 4 && strcmp(argv[1], "render") == 0) {
        int rc = render_file(argv[2], argv[3]);
        sf_census_free(cs);
        return rc;
    }
    test_valid();
    test_invalid();
    test_depth();
    test_strings();
    test_truthy();
    test_lookup();
    test_walk();
    test_limit();
    test_render();
    sf_census_free(cs);
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
