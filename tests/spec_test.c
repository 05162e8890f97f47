/* spec_test.c: runs the official Mustache spec (tests/data/mustache-spec)
 * through the engine in its spec mode (SF_TEMPLATE_HTML) with JSON data.
 *   spec_test [-v] DIR [FILE.json...]   (default: the six core modules)
 * Prints "FILE: N passed, M failed" per file and "FAIL: ..." with the
 * template, expected and actual output per failing case; -v also prints
 * "PASS: ..." per passing case. Exits 1 if any case failed. */
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"

/* ---- JSON as sf_val -------------------------------------------------- */

/* Number texts live until the case ends. */
typedef struct arena {
    char *s[4096];
    size_t n;
} arena;
static arena g_arena; /* test program: one case at a time */

static const char *keep(const char *s)
{
    if (g_arena.n == sizeof g_arena.s / sizeof g_arena.s[0])
        return "";
    return g_arena.s[g_arena.n++] = strdup(s);
}

static void arena_clear(void)
{
    for (size_t i = 0; i < g_arena.n; i++)
        free(g_arena.s[i]);
    g_arena.n = 0;
}

static const sf_data_ops json_map_ops, json_list_ops;

static void to_val(struct json_object *j, sf_val *out)
{
    memset(out, 0, sizeof *out);
    switch (json_object_get_type(j)) {
    case json_type_null:
        out->kind = SF_VAL_NULL;
        break;
    case json_type_boolean:
        out->kind = SF_VAL_BOOL;
        out->truthy = (uint8_t)json_object_get_boolean(j);
        break;
    case json_type_int: {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)json_object_get_int64(j));
        out->kind = SF_VAL_TEXT;
        out->s = keep(buf);
        out->n = strlen(out->s);
        out->truthy = json_object_get_int64(j) != 0;
        break;
    }
    case json_type_double: {
        /* The shortest form that reads back the same, as JSON writers do. */
        double d = json_object_get_double(j);
        char buf[40];
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, d);
            if (strtod(buf, NULL) == d)
                break;
        }
        out->kind = SF_VAL_TEXT;
        out->s = keep(buf);
        out->n = strlen(out->s);
        out->truthy = d != 0;
        break;
    }
    case json_type_string:
        out->kind = SF_VAL_TEXT;
        out->s = json_object_get_string(j);
        out->n = (size_t)json_object_get_string_len(j);
        out->truthy = out->n > 0;
        break;
    case json_type_array:
        out->kind = SF_VAL_LIST;
        out->truthy = json_object_array_length(j) > 0;
        out->ops = &json_list_ops;
        out->obj = j;
        break;
    case json_type_object:
        out->kind = SF_VAL_MAP;
        out->truthy = 1;
        out->ops = &json_map_ops;
        out->obj = j;
        break;
    }
}

static int json_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    (void)sym, (void)len;
    struct json_object *v;
    if (!json_object_object_get_ex(obj, name, &v))
        return 0;
    to_val(v, out);
    return 1;
}

static int json_item(void *obj, size_t idx, sf_val *out)
{
    if (idx >= json_object_array_length(obj))
        return 0;
    to_val(json_object_array_get_idx(obj, idx), out);
    return 1;
}

static const sf_data_ops json_map_ops = {.lookup = json_lookup};
static const sf_data_ops json_list_ops = {.item = json_item};

/* ---- output into memory ----------------------------------------------- */

typedef struct membuf {
    sf_wbuf w;
    char *all;
    size_t len;
} membuf;

static int mem_drain(sf_wbuf *w)
{
    membuf *m = (membuf *)w;
    char *p = realloc(m->all, m->len + w->len + 1);
    if (!p)
        return -1;
    memcpy(p + m->len, w->buf, w->len);
    m->all = p;
    m->len += w->len;
    m->all[m->len] = '\0';
    w->len = 0;
    return 0;
}

static int partial_lookup(void *ud, const char *name, const char **text, size_t *len)
{
    struct json_object *partials = ud, *p;
    if (!partials || !json_object_object_get_ex(partials, name, &p))
        return 0;
    *text = json_object_get_string(p);
    *len = (size_t)json_object_get_string_len(p);
    return 1;
}

static void show(const char *label, const char *s)
{
    fprintf(stdout, "    %s: \"", label);
    for (; *s; s++) {
        if (*s == '\n')
            fputs("\\n", stdout);
        else if (*s == '\r')
            fputs("\\r", stdout);
        else
            fputc(*s, stdout);
    }
    fputs("\"\n", stdout);
}

static int verbose;

static int run_case(const char *file, struct json_object *tc)
{
    struct json_object *jname, *jtpl, *jexp, *jdata, *jpartials = NULL;
    json_object_object_get_ex(tc, "name", &jname);
    json_object_object_get_ex(tc, "template", &jtpl);
    json_object_object_get_ex(tc, "expected", &jexp);
    json_object_object_get_ex(tc, "data", &jdata);
    json_object_object_get_ex(tc, "partials", &jpartials);
    const char *name = json_object_get_string(jname);

    sf_template *t = sf_template_create(NULL, SF_TEMPLATE_HTML);
    char buf[64];
    membuf m = {.w = {.buf = buf, .cap = sizeof buf, .drain = mem_drain}};
    sf_errbuf err = {{0}};
    int ok = 0;
    sf_status st = sf_template_load_string(t, name, json_object_get_string(jtpl),
                                           (size_t)json_object_get_string_len(jtpl),
                                           partial_lookup, jpartials);
    if (st != SF_OK) {
        printf("FAIL: %s: %s: compile: %s\n", file, name, sf_template_errmsg(t));
        goto out;
    }
    sf_val root;
    to_val(jdata, &root);
    st = sf_tpl_render(t, &m.w, &root, &err);
    if (st == SF_OK && mem_drain(&m.w) != 0)
        st = SF_ERR_NOMEM;
    if (st != SF_OK) {
        printf("FAIL: %s: %s: render: %s %s\n", file, name, sf_strerror(st), err.msg);
        goto out;
    }
    const char *got = m.all ? m.all : "";
    ok = strcmp(got, json_object_get_string(jexp)) == 0;
    if (ok) {
        if (verbose)
            printf("PASS: %s: %s\n", file, name);
    } else {
        printf("FAIL: %s: %s\n", file, name);
        show("template", json_object_get_string(jtpl));
        show("expected", json_object_get_string(jexp));
        show("got     ", got);
    }
out:
    free(m.all);
    sf_template_free(t);
    arena_clear();
    return ok;
}

int main(int argc, char **argv)
{
    static const char *const core[] = {"interpolation.json", "sections.json", "inverted.json",
                                       "comments.json", "delimiters.json", "partials.json"};
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        verbose = 1;
        argv++;
        argc--;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: spec_test [-v] DIR [FILE.json...]\n");
        return 2;
    }
    int nfiles = argc > 2 ? argc - 2 : (int)(sizeof core / sizeof core[0]);
    int failed_total = 0;
    for (int f = 0; f < nfiles; f++) {
        const char *file = argc > 2 ? argv[2 + f] : core[f];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], file);
        struct json_object *doc = json_object_from_file(path);
        struct json_object *tests;
        if (!doc || !json_object_object_get_ex(doc, "tests", &tests)) {
            printf("FAIL: %s: cannot read (%s)\n", file, json_util_get_last_err());
            failed_total++;
            json_object_put(doc);
            continue;
        }
        int pass = 0, fail = 0;
        for (size_t i = 0; i < json_object_array_length(tests); i++) {
            if (run_case(file, json_object_array_get_idx(tests, i)))
                pass++;
            else
                fail++;
        }
        printf("%s: %d passed, %d failed\n", file, pass, fail);
        failed_total += fail;
        json_object_put(doc);
    }
    return failed_total ? 1 : 0;
}
