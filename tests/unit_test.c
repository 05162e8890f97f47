/* unit_test.c: the library's layers one at a time: the escaper, the XML
 * context lexer, template compilation and its errors, the census, rendering
 * semantics over SQLite (NULL, truthiness, empty results), and the promise
 * that rendering allocates nothing per row.
 *   unit_test SCRATCH_DIR
 * Prints "PASS: name" / "FAIL: name: detail"; exits 1 if anything failed. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source/source.h"
#include "template/template.h"
#include "xml/xml.h"

#include "check.h"

static const char *scratch;

/* ---- a write buffer into memory ------------------------------------------ */

typedef struct membuf {
    sf_wbuf w;
    char small[16]; /* tiny, so drains happen mid-value */
    char all[1 << 16];
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

static void mem_init(membuf *m)
{
    memset(m, 0, sizeof *m);
    m->w.buf = m->small;
    m->w.cap = sizeof m->small;
    m->w.drain = mem_drain;
}

static const char *esc_str(sf_esc esc, const char *s, size_t n)
{
    static membuf m;
    mem_init(&m);
    if (sf_xml_write(&m.w, esc, s, n) != 0 || mem_drain(&m.w) != 0)
        return "(write failed)";
    return m.all;
}

static void expect_esc(const char *name, sf_esc esc, const char *in, size_t n, const char *want)
{
    const char *got = esc_str(esc, in, n);
    check(strcmp(got, want) == 0, name, "want \"%s\" got \"%s\"", want, got);
}

static void test_escape(void)
{
#define E(name, esc, in, want) expect_esc(name, esc, in, sizeof(in) - 1, want)
    E("escape text specials", SF_ESC_TEXT, "a<b>&c\"d'e", "a&lt;b&gt;&amp;c\"d'e");
    E("escape text keeps TAB LF, CR as ref", SF_ESC_TEXT, "a\tb\nc\rd", "a\tb\nc&#13;d");
    E("escape text ]]> cannot appear", SF_ESC_TEXT, "]]>", "]]&gt;");
    E("escape text trailing ] as a reference", SF_ESC_TEXT, "b]]", "b]&#93;");
    E("escape text lone ]", SF_ESC_TEXT, "]", "&#93;");
    E("escape text inner ] kept", SF_ESC_TEXT, "a]b", "a]b");
    E("escape attr", SF_ESC_ATTR, "<\"'&>\t\n\r", "&lt;&quot;&apos;&amp;&gt;&#9;&#10;&#13;");
    E("escape cdata split", SF_ESC_CDATA, "a]]>b", "a]]]]><![CDATA[>b");
    E("escape cdata CR", SF_ESC_CDATA, "a\rb", "a]]>&#13;<![CDATA[b");
    E("escape cdata leading >", SF_ESC_CDATA, ">a", "]]><![CDATA[>a");
    E("escape cdata trailing ]", SF_ESC_CDATA, "a]", "a]]]><![CDATA[");
    E("escape cdata keeps markup", SF_ESC_CDATA, "<p>&amp;</p>", "<p>&amp;</p>");
    E("escape comment --", SF_ESC_COMMENT, "a--b", "a- -b");
    E("escape comment trailing -", SF_ESC_COMMENT, "a-", "a- ");
    E("escape comment leading -", SF_ESC_COMMENT, "-a", " -a");
    E("escape raw keeps markup", SF_ESC_RAW, "<b>&amp;</b>", "<b>&amp;</b>");
    E("escape html (spec)", SF_ESC_HTML, "& \" < > '", "&amp; &quot; &lt; &gt; '");
    /* The character filter, the same in every mode. */
    E("filter NUL and C0", SF_ESC_RAW, "a\x00" "b\x01\x1f" "c", "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD" "c");
    E("filter keeps DEL and C1", SF_ESC_RAW, "\x7f\xc2\x80\xc2\x9f", "\x7f\xc2\x80\xc2\x9f");
    E("filter lone continuation", SF_ESC_RAW, "\x80", "\xEF\xBF\xBD");
    E("filter overlong C0 AF = 2", SF_ESC_RAW, "\xc0\xaf", "\xEF\xBF\xBD\xEF\xBF\xBD");
    E("filter truncated E2 82 = 1", SF_ESC_RAW, "\xe2\x82", "\xEF\xBF\xBD");
    E("filter surrogate ED A0 80 = 3", SF_ESC_RAW, "\xed\xa0\x80",
      "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    E("filter above 10FFFF", SF_ESC_RAW, "\xf4\x90\x80\x80",
      "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    E("filter FFFE FFFF", SF_ESC_RAW, "\xef\xbf\xbe\xef\xbf\xbf", "\xEF\xBF\xBD\xEF\xBF\xBD");
    E("filter keeps 4-byte and noncharacter FDD0", SF_ESC_RAW, "\xf0\x9f\x98\x80\xef\xb7\x90",
      "\xf0\x9f\x98\x80\xef\xb7\x90");
    E("filter truncated 4-byte at end", SF_ESC_TEXT, "ab\xf0\x9f\x98", "ab\xEF\xBF\xBD");
    /* Long runs cross the SIMD and drain paths. */
    char big[300], want[600];
    size_t o = 0;
    for (int i = 0; i < 299; i++) {
        big[i] = (char)(i % 37 == 0 ? '&' : 'a' + i % 26);
        o += (size_t)snprintf(want + o, sizeof want - o, "%s", big[i] == '&' ? "&amp;" : (char[]){big[i], 0});
    }
    big[299] = '\0';
    expect_esc("escape long run with drains", SF_ESC_TEXT, big, 299, want);
#undef E
}

/* ---- the context lexer ------------------------------------------------- */

/* Lexes a literal the way the compiler does (starting inside the root
 * element when `inside`); the context a tag after it gets, or -1 when the
 * literal is refused or holds no value there. */
static int lex_ctx(const char *literal, int inside, sf_esc *esc)
{
    sf_xml_lexer lx;
    memset(&lx, 0, sizeof lx);
    lx.level = inside ? 1 : 0;
    size_t i = 0, n = strlen(literal);
    if (sf_xml_check_chars(literal, n) != n)
        return -2;
    while (i < n) {
        sf_xml_event ev;
        i = sf_xml_lex(&lx, literal, i, n, &ev);
        if (ev.type == SF_XE_ERROR)
            return -2;
        if (ev.type == SF_XE_STAG_END && lx.level == 0)
            lx.level = 1;
    }
    return sf_xml_context(&lx, esc);
}

/* want_ok: 1 a value goes there with escaping `want`; 0 no value goes
 * there; -2 the literal itself is refused. */
static void expect_ctx_at(const char *literal, int inside, int want_ok, sf_esc want)
{
    sf_esc esc = SF_ESC_RAW;
    int rc = lex_ctx(literal, inside, &esc);
    int ok = rc == 0 ? 1 : rc == -1 ? 0 : rc;
    char name[300];
    snprintf(name, sizeof name, "context after '%s'", literal);
    for (char *q = name; *q; q++)
        if (*q == '\n')
            *q = ' ';
    check(ok == want_ok && (ok != 1 || esc == want), name, "got %d esc=%d, want %d", ok,
          (int)esc, want_ok);
}
#define expect_ctx(lit, ok, esc) expect_ctx_at(lit, 1, ok, esc)

static void test_context(void)
{
    expect_ctx("<a>", 1, SF_ESC_TEXT);
    expect_ctx("<a href=\"", 1, SF_ESC_ATTR);
    expect_ctx("<a href='x\" ", 1, SF_ESC_ATTR);
    expect_ctx("<a href=\"x\" ", 0, SF_ESC_TEXT);
    expect_ctx("<a ", 0, SF_ESC_TEXT);
    expect_ctx("<", 0, SF_ESC_TEXT);
    expect_ctx("<![CDATA[", 1, SF_ESC_CDATA);
    expect_ctx("<![CDATA[ ]] ", 1, SF_ESC_CDATA);
    expect_ctx("<![CDATA[ x ]]>", 1, SF_ESC_TEXT);
    expect_ctx("<!--", 1, SF_ESC_COMMENT);
    expect_ctx("<!-- a -->", 1, SF_ESC_TEXT);
    expect_ctx("<!-- a --", 0, SF_ESC_TEXT);
    expect_ctx("<?pi x=\"1\"", 0, SF_ESC_TEXT);
    expect_ctx("<?pi x=\"1\"?>", 1, SF_ESC_TEXT);
    expect_ctx("<?pi ? > still ?>", 1, SF_ESC_TEXT);
    expect_ctx("<a b=\"c\"/>text", 1, SF_ESC_TEXT);
    expect_ctx("<a b='>'>", 1, SF_ESC_TEXT);
    expect_ctx("<a b=\"'>\" c='\">'>", 1, SF_ESC_TEXT);
    expect_ctx("a &amp; &#60; &#x3C; &lt;", 1, SF_ESC_TEXT);
    /* Literal markup that is not well-formed is refused. */
    expect_ctx("a ]]> b", -2, SF_ESC_TEXT);
    expect_ctx("a & b", -2, SF_ESC_TEXT);
    expect_ctx("&nosuch;", -2, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r [ <!ENTITY e \"x\"> ]><r>&e;", 0, -2, SF_ESC_TEXT);
    expect_ctx("&#0;", -2, SF_ESC_TEXT);
    expect_ctx("&#xD800;", -2, SF_ESC_TEXT);
    expect_ctx("<a b=\"<\">", -2, SF_ESC_TEXT);
    expect_ctx("<a b=c>", -2, SF_ESC_TEXT);
    expect_ctx("<a b>", -2, SF_ESC_TEXT);
    expect_ctx("<a b=\"1\"c=\"2\">", -2, SF_ESC_TEXT);
    expect_ctx("<!-- a -- b -->", -2, SF_ESC_TEXT);
    expect_ctx("<!-- a --->", -2, SF_ESC_TEXT);
    expect_ctx("<!ELEMENT a ANY>", -2, SF_ESC_TEXT);
    expect_ctx("< a>", -2, SF_ESC_TEXT);
    expect_ctx("</ a>", -2, SF_ESC_TEXT);
    expect_ctx("<?xml version=\"1.0\"?>", -2, SF_ESC_TEXT);
    expect_ctx("<!DOCTYPE r>", -2, SF_ESC_TEXT);
    expect_ctx("a\x01" "b", -2, SF_ESC_TEXT);
    expect_ctx("a\xC3" "b", -2, SF_ESC_TEXT);
    /* The prolog: the XML declaration first, DOCTYPE with quoted literals
     * (both quotes, holding '>') and an internal subset with comments, PIs,
     * declarations with literals and parameter-entity references. */
    expect_ctx_at("<?xml version=\"1.0\" encoding=\"utf-8\"?>", 0, 0, SF_ESC_TEXT);
    expect_ctx_at("<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n<r>", 0, 1, SF_ESC_TEXT);
    expect_ctx_at(" <?xml version=\"1.0\"?>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<?xml version=\"1.0\" encoding=\"US-ASCII\"?>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<?xml version=\"1.0\" encoding=\"utf-16\"?>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<?xml version=\"1.0\" encoding=\"UTF8\"?>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<?xml encoding=\"UTF-8\"?>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<?XML version=\"1.0\"?>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r SYSTEM \"a>b.dtd\"><r>", 0, 1, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r SYSTEM 'a>b.dtd'><r>", 0, 1, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r PUBLIC \"-//x//EN\" 'y>\"z'><r>", 0, 1, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r PUBLIC \"-//x>//EN\" 'y'><r>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r SYST><r>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r SYSTEM><r>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r PUBLIC \"x\"><r>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r SYSTEM \"a>b.dtd\">", 0, 0, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r SYSTEM \"a>b.dtd", 0, 0, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r [ <!ENTITY e \"]>\"> <!-- ]> --> <?p ]> ?> "
                  "<!ATTLIST r a CDATA '>]'> %pe; <!ELEMENT r ANY> ]><r>&amp;",
                  0, 1, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r [ <!ENTITY e \"]>\">", 0, 0, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r [ <!-- a -- b --> ]>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r [ x ]>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE r [ ] x>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<!DOCTYPE>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<!-- c --><?p?>\n<r x=\"", 0, 1, SF_ESC_ATTR);
    expect_ctx_at("text<r>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("<![CDATA[x]]><r>", 0, -2, SF_ESC_TEXT);
    expect_ctx_at("\xEF\xBB\xBF<?xml version=\"1.0\"?><r>", 0, 1, SF_ESC_TEXT);
}

/* ---- template compilation ------------------------------------------------ */

static sf_status compile(sf_template *t, const char *src)
{
    return sf_template_load_string(t, "t.mustache", src, strlen(src), NULL, NULL);
}

static void expect_compile_error(const char *name, const char *src, const char *want)
{
    sf_template *t = sf_template_create(NULL, SF_TEMPLATE_XML);
    sf_status st = compile(t, src);
    const char *msg = sf_template_errmsg(t);
    check(st == SF_ERR_TEMPLATE && strstr(msg, want) != NULL, name, "status %d, message '%s'",
          (int)st, msg);
    sf_template_free(t);
}

static void test_compile(void)
{
    expect_compile_error("compile: unclosed section names line:col",
                         "<a>\n  {{#rows}}<b>{{x}}</b>\n", "t.mustache:2:3: section {{#rows}} is never closed");
    expect_compile_error("compile: mismatched close", "{{#a}}{{/b}}",
                         "t.mustache:1:7: {{/b}} does not close {{#a}} opened at t.mustache:1:1");
    expect_compile_error("compile: unclosed tag", "<a>{{x</a>", "t.mustache:1:4: unclosed tag");
    expect_compile_error("compile: value in markup", "<a {{x}}>", "sits in markup");
    expect_compile_error("compile: unquoted attribute", "<a href={{x}}>", "quoted attribute");
    expect_compile_error("compile: section changes context", "<r>{{#a}}<b c=\"{{/a}}\"></r>",
                         "must leave the XML context");
    expect_compile_error("compile: bad delimiters", "{{=<%=}}", "invalid delimiters");
    expect_compile_error("compile: missing partial", "{{>nope}}", "partial 'nope' not found");
    expect_compile_error("compile: empty name", "{{ }}", "empty tag name");

    sf_template *t = sf_template_create(NULL, SF_TEMPLATE_XML);
    sf_status st = compile(t, "{{! sqlfeed: a test feed }}\n<r a=\"{{site}}\">{{#rows}}<i>{{x}}{{y.rfc3339}}</i>{{/rows}}</r>");
    check(st == SF_OK, "compile: valid template", "%s", sf_template_errmsg(t));
    check(strcmp(sf_template_description(t), "a test feed") == 0, "compile: description", "'%s'",
          sf_template_description(t));
    check(sf_template_row_name_count(t) == 2 && !strcmp(sf_template_row_name(t, 0), "x") &&
              !strcmp(sf_template_row_name(t, 1), "y"),
          "compile: row names", "%zu", sf_template_row_name_count(t));
    check(sf_template_root_name_count(t) == 1 && !strcmp(sf_template_root_name(t, 0), "site"),
          "compile: root names", "%zu", sf_template_root_name_count(t));
    /* Reloading a handle replaces the template; a failed load leaves none. */
    st = compile(t, "{{#broken}}");
    check(st == SF_ERR_TEMPLATE && sf_template_row_name_count(t) == 0,
          "compile: failed reload clears", "%d", (int)st);
    sf_template_free(t);
    sf_template_free(NULL);
}

/* ---- census ------------------------------------------------------------ */

static void test_census(void)
{
    sf_census *c = sf_census_create();
    void *a = sf_alloc(c, SF_MEM_ROW, 100);
    void *b = sf_alloc(c, SF_MEM_TEMPLATE, 50);
    a = sf_realloc(c, SF_MEM_ROW, a, 300);
    sf_mem_stat s;
    sf_census_stat(c, SF_MEM_ROW, &s);
    check(s.count == 1 && s.bytes == 300 && s.peak_bytes == 300 && s.allocs == 1,
          "census: realloc keeps one object", "count %llu bytes %llu allocs %llu",
          (unsigned long long)s.count, (unsigned long long)s.bytes, (unsigned long long)s.allocs);
    check(sf_census_live_bytes(c) == 350, "census: total", "%llu",
          (unsigned long long)sf_census_live_bytes(c));
    sf_dealloc(c, a);
    sf_dealloc(c, b);
    check(sf_census_live_bytes(c) == 0 && sf_census_peak_bytes(c) == 350, "census: all freed",
          "live %llu peak %llu", (unsigned long long)sf_census_live_bytes(c),
          (unsigned long long)sf_census_peak_bytes(c));
    check(sf_census_stat(c, SF_MEM_TYPE_COUNT, &s) == SF_ERR_ARG, "census: bad type", "%s", "");
    /* After any mix of allocations the types add up to the total. */
    void *blocks[64] = {0};
    unsigned seed = 7;
    for (int i = 0; i < 5000; i++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)(seed >> 8) % 64;
        sf_mem_type ty = (sf_mem_type)((seed >> 16) % SF_MEM_TYPE_COUNT);
        size_t n = (seed >> 4) % 3000;
        if (blocks[k] && (seed & 1))
            sf_census_dealloc(c, blocks[k]), blocks[k] = NULL;
        else
            blocks[k] = blocks[k] ? sf_census_realloc(c, ty, blocks[k], n) : sf_census_malloc(c, ty, n);
    }
    uint64_t sum = 0;
    for (int ty = 0; ty < SF_MEM_TYPE_COUNT; ty++) {
        sf_census_stat(c, (sf_mem_type)ty, &s);
        sum += s.bytes;
    }
    uint64_t live = 0;
    for (int k = 0; k < 64; k++)
        live += sf_census_block_size(blocks[k]);
    check(sum == sf_census_live_bytes(c) && sum == live, "census: types add up to the total and to the blocks",
          "types %llu, total %llu, blocks %llu", (unsigned long long)sum,
          (unsigned long long)sf_census_live_bytes(c), (unsigned long long)live);
    for (int k = 0; k < 64; k++)
        sf_census_dealloc(c, blocks[k]);
    sf_census_free(c);
    sf_census_free(NULL);

    char buf[24];
    sf_format_i64(buf, INT64_MIN);
    check(strcmp(buf, "-9223372036854775808") == 0, "format int64 min", "%s", buf);
    sf_format_i64(buf, 0);
    check(strcmp(buf, "0") == 0, "format int64 zero", "%s", buf);
}

/* ---- rendering over SQLite ----------------------------------------------- */

/* Renders `tpl` over `sql` (params as name,value pairs, NULL-terminated)
 * into a file in scratch; returns the status and the output in out. */
static sf_status render(const char *tpl, const char *sql, const char *const *params,
                        char *out, size_t outlen, char *err, size_t errlen, sf_census *census)
{
    sf_source *src = sf_source_create(census);
    sf_template *t = sf_template_create(census, SF_TEMPLATE_XML);
    sf_output *o = sf_output_create(census);
    sf_render *r = sf_render_create(census);
    char path[4096];
    snprintf(path, sizeof path, "%s/unit-out.xml", scratch);
    unlink(path);
    sf_status st = compile(t, tpl);
    if (st != SF_OK)
        snprintf(err, errlen, "%s", sf_template_errmsg(t));
    if (st == SF_OK && ((st = sf_source_open(src, ":memory:")) != SF_OK ||
                        (st = sf_source_prepare(src, sql)) != SF_OK))
        snprintf(err, errlen, "%s", sf_source_errmsg(src));
    if (st == SF_OK && (st = sf_output_open_file(o, path)) != SF_OK)
        snprintf(err, errlen, "%s", sf_output_errmsg(o));
    for (size_t i = 0; st == SF_OK && params && params[i]; i += 2)
        st = sf_render_set_param(r, params[i], params[i + 1]);
    if (st == SF_OK && (st = sf_render_run(r, t, src, o)) != SF_OK)
        snprintf(err, errlen, "%s", sf_render_errmsg(r));
    if (st == SF_OK && (st = sf_output_commit(o)) != SF_OK)
        snprintf(err, errlen, "%s", sf_output_errmsg(o));
    out[0] = '\0';
    if (st == SF_OK) {
        FILE *f = fopen(path, "rb");
        size_t n = f ? fread(out, 1, outlen - 1, f) : 0;
        out[n] = '\0';
        if (f)
            fclose(f);
    }
    sf_render_free(r);
    sf_output_free(o);
    sf_template_free(t);
    sf_source_free(src);
    return st;
}

static void expect_render(const char *name, const char *tpl, const char *sql,
                          const char *const *params, const char *want)
{
    char out[4096], err[1024] = "";
    sf_status st = render(tpl, sql, params, out, sizeof out, err, sizeof err, NULL);
    check(st == SF_OK && strcmp(out, want) == 0, name, "status %d (%s), want \"%s\" got \"%s\"",
          (int)st, err, want, out);
}

static void expect_render_error(const char *name, const char *tpl, const char *sql,
                                const char *const *params, sf_status want, const char *msg)
{
    char out[4096], err[1024] = "";
    sf_status st = render(tpl, sql, params, out, sizeof out, err, sizeof err, NULL);
    check(st == want && strstr(err, msg) != NULL, name, "status %d, message '%s'", (int)st, err);
}

static void test_render(void)
{
    const char *const city[] = {"city", "OUTER", NULL};
    expect_render("render: NULL does not fall through", "<r>{{#rows}}[{{city}}]{{/rows}}</r>",
                  "SELECT NULL AS city", city, "<r>[]</r>");
    expect_render("render: NULL is falsey", "<r>{{#rows}}{{#city}}y{{/city}}{{^city}}n{{/city}}{{/rows}}</r>",
                  "SELECT NULL AS city", city, "<r>n</r>");
    expect_render("render: 0 and '' are falsey, 'x' and 2.5 truthy",
                  "<r>{{#rows}}{{#a}}A{{/a}}{{#b}}B{{/b}}{{#c}}C{{/c}}{{#d}}D{{/d}}{{/rows}}</r>",
                  "SELECT 0 AS a, '' AS b, 'x' AS c, 2.5 AS d", NULL, "<r>CD</r>");
    expect_render("render: empty result renders {{^rows}}",
                  "<r>{{#rows}}x{{/rows}}{{^rows}}none{{/rows}}</r>", "SELECT 1 AS a WHERE 0",
                  NULL, "<r>none</r>");
    expect_render("render: section on a value keeps outer names",
                  "<r>{{#rows}}{{#a}}{{a}}-{{b}}{{/a}}{{/rows}}</r>", "SELECT 'x' AS a, 'y' AS b",
                  NULL, "<r>x-y</r>");
    const char *const site[] = {"site", "justjobs", NULL};
    expect_render("render: parameters bind and render",
                  "<r s=\"{{site}}\">{{#rows}}{{v}}{{/rows}}</r>", "SELECT :site AS v", site,
                  "<r s=\"justjobs\">justjobs</r>");
    const char *const evil[] = {"v", "'; DROP TABLE t; -- \"<&>", NULL};
    expect_render("render: a parameter is bound, never pasted", "<r>{{#rows}}{{v}}{{/rows}}</r>",
                  "SELECT :v AS v", evil, "<r>'; DROP TABLE t; -- \"&lt;&amp;&gt;</r>");
    expect_render("render: numbers keep SQLite's text", "<r>{{#rows}}{{a}} {{b}} {{c}}{{/rows}}</r>",
                  "SELECT 9223372036854775807 AS a, -0.5 AS b, 1e300 AS c", NULL,
                  "<r>9223372036854775807 -0.5 1.0e+300</r>");
    expect_render_error("render: missing names listed with positions",
                        "<r>{{#rows}}{{a}}{{nosuch}}{{/rows}}{{other}}</r>", "SELECT 1 AS a", NULL,
                        SF_ERR_NAME, "2 names that no column, parameter or built-in provides: nosuch (t.mustache:1:18), other (t.mustache:1:37)");
    expect_render_error("render: column outside rows is missing", "<r>{{a}}</r>", "SELECT 1 AS a",
                        NULL, SF_ERR_NAME, "a (t.mustache:1:4: a column, and columns are read inside {{#rows}})");
    expect_render_error("render: rows twice", "<r>{{#rows}}{{/rows}}{{#rows}}{{/rows}}</r>", "SELECT 1 AS a",
                        NULL, SF_ERR_TEMPLATE, "stream once");
    expect_render_error("render: unbound parameter", "<r/>", "SELECT :site AS a", NULL,
                        SF_ERR_NAME, "--param site=VALUE");
    expect_render_error("render: positional parameter", "<r/>", "SELECT ? AS a", NULL,
                        SF_ERR_SOURCE, "positional");
    expect_render_error("render: two statements", "<r/>", "SELECT 1 AS a; SELECT 2", NULL,
                        SF_ERR_SOURCE, "more than one statement");
    expect_render_error("render: duplicate columns", "<r/>", "SELECT 1 AS a, 2 AS a", NULL,
                        SF_ERR_SOURCE, "two columns named 'a'");
    expect_render_error("render: SQL error mid-stream names the row",
                        "<r>{{#rows}}{{v}}{{/rows}}</r>",
                        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10) "
                        "SELECT CASE WHEN x = 7 THEN abs(-9223372036854775807 - 1) ELSE x END AS v FROM c",
                        NULL, SF_ERR_SOURCE, "query failed at row 7: sqlite: integer overflow");
    const char *const bad[] = {"rows", "x", NULL};
    expect_render_error("render: reserved parameter name", "<r/>", "SELECT 1 AS a", bad,
                        SF_ERR_ARG, "");
}

/* Rendering N rows must allocate exactly as often as rendering 10. */
static void test_no_alloc_per_row(void)
{
    const char *tpl = "<r>{{#rows}}<i a=\"{{a}}\"><![CDATA[{{b}}]]>{{#c}}{{c}}{{/c}}</i>{{/rows}}</r>";
#define NO_ALLOC_SQL                                                                         \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) "            \
    "SELECT x AS a, printf('v%%d]]>', x) AS b, CASE WHEN x %% 2 THEN x * 1.5 END AS c FROM c"
    uint64_t allocs[2];
    int rows[2] = {10, 100000};
    for (int k = 0; k < 2; k++) {
        char sql[512], out[64], err[512];
        snprintf(sql, sizeof sql, NO_ALLOC_SQL, rows[k]);
        sf_census *c = sf_census_create();
        sf_status st = render(tpl, sql, NULL, out, sizeof out, err, sizeof err, c);
        allocs[k] = 0;
        for (int ty = 0; ty < SF_MEM_TYPE_COUNT; ty++) {
            sf_mem_stat s;
            sf_census_stat(c, (sf_mem_type)ty, &s);
            allocs[k] += s.allocs;
        }
        check(st == SF_OK && sf_census_live_bytes(c) == 0, "census: every block freed after a run",
              "status %d, live %llu", (int)st, (unsigned long long)sf_census_live_bytes(c));
        sf_census_free(c);
    }
    check(allocs[0] == allocs[1], "no allocation per row (10 vs 100000 rows)",
          "%llu allocations for 10 rows, %llu for 100000", (unsigned long long)allocs[0],
          (unsigned long long)allocs[1]);
}

/* ---- the flatness verdict ------------------------------------------------- */

static void expect_verdict(const char *name, double (*f)(double, unsigned), size_t n,
                           sf_flat_verdict want)
{
    static double rows[4096], bytes[4096];
    unsigned seed = 12345;
    for (size_t i = 0; i < n; i++) {
        rows[i] = (double)i * 1000.0; /* 1,000 rows a sample */
        seed = seed * 1103515245u + 12345u;
        bytes[i] = f(rows[i], seed);
    }
    sf_flatness fl;
    sf_status st = sf_flatness_fit(rows, bytes, n, &fl);
    check(st == SF_OK && fl.verdict == want, name, "verdict %s (want %s), slope %.2f B/row "
          "(halves %.2f, %.2f)", sf_flat_verdict_name(fl.verdict), sf_flat_verdict_name(want),
          fl.slope, fl.slope_first, fl.slope_second);
}

/* 6 MiB, give or take a few pages of noise, as RSS looks. */
static double flat(double r, unsigned rnd) { (void)r; return 6291456.0 + (double)(rnd % 65536); }
static double leak(double r, unsigned rnd) { return flat(r, rnd) + 64.0 * r; }
static double small_leak(double r, unsigned rnd) { return flat(r, rnd) + 10.0 * r; }
static double step(double r, unsigned rnd) { return flat(r, rnd) + (r > 100000.0 ? 4194304.0 : 0); }
static double step_late(double r, unsigned rnd) { return flat(r, rnd) + (r > 170000.0 ? 4194304.0 : 0); }
static double tiny_leak(double r, unsigned rnd) { return flat(r, rnd) + 4.0 * r; }
static double warmup(double r, unsigned rnd) { return flat(r, rnd) + (r < 20000.0 ? 100.0 * r : 2e6); }
static double late_leak(double r, unsigned rnd) { return flat(r, rnd) + (r > 60000.0 ? 200.0 * (r - 60000.0) : 0); }

static void test_flatness(void)
{
    expect_verdict("verdict: flat with page noise", flat, 200, SF_FLAT);
    expect_verdict("verdict: 64 B/row grows", leak, 200, SF_GROWS);
    expect_verdict("verdict: 10 B/row over 200k rows grows", small_leak, 200, SF_GROWS);
    expect_verdict("verdict: a 4 MiB step is flat", step, 200, SF_FLAT);
    expect_verdict("verdict: a 4 MiB step late in the run is flat", step_late, 200, SF_FLAT);
    expect_verdict("verdict: 4 B/row over 4M rows (15 MiB) grows", tiny_leak, 4000, SF_GROWS);
    expect_verdict("verdict: growth during the warm-up is flat", warmup, 200, SF_FLAT);
    expect_verdict("verdict: growth that starts late still grows", late_leak, 200, SF_GROWS);
    expect_verdict("verdict: too few samples is unknown", leak, 5, SF_FLAT_UNKNOWN);
    sf_flatness fl;
    check(sf_flatness_fit(NULL, NULL, 3, &fl) == SF_ERR_ARG, "verdict: NULL arrays refused", "%s", "");
    double rows[20] = {0}, bytes[20] = {0};
    sf_flatness_fit(rows, bytes, 20, &fl);
    check(fl.verdict == SF_FLAT_UNKNOWN, "verdict: rows standing still is unknown", "%s",
          sf_flat_verdict_name(fl.verdict));
}

/* ---- output publication ------------------------------------------------- */

static void test_output(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/unit-publish.xml", scratch);
    FILE *f = fopen(path, "w");
    fputs("previous", f);
    fclose(f);
    sf_output *o = sf_output_create(NULL);
    sf_status st = sf_output_open_file(o, path);
    const char *tmp = sf_output_temp_path(o);
    char tmpcopy[4096];
    snprintf(tmpcopy, sizeof tmpcopy, "%s", tmp ? tmp : "");
    check(st == SF_OK && tmp && access(tmp, F_OK) == 0 && strstr(tmp, "/.unit-publish.xml.sqlfeed-"),
          "output: temporary file beside the target", "%s", tmpcopy);
    sf_output_abort(o);
    check(access(tmpcopy, F_OK) != 0, "output: abort removes the temporary", "%s", tmpcopy);
    char buf[64] = "";
    f = fopen(path, "r");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    check(strcmp(buf, "previous") == 0, "output: abort keeps the previous file", "%s", buf);
    check(sf_output_commit(o) != SF_OK, "output: no commit after abort", "%s", "");
    sf_output_free(o);
    sf_output_free(NULL);

    o = sf_output_create(NULL);
    st = sf_output_open_file(o, scratch);
    check(st == SF_ERR_OUTPUT && strstr(sf_output_errmsg(o), "is a directory"),
          "output: a directory is refused", "%s", sf_output_errmsg(o));
    sf_output_free(o);
    o = sf_output_create(NULL);
    snprintf(path, sizeof path, "%s/no/such/dir/x.xml", scratch);
    st = sf_output_open_file(o, path);
    check(st == SF_ERR_OUTPUT && strstr(sf_output_errmsg(o), "No such file or directory"),
          "output: missing directory named", "%s", sf_output_errmsg(o));
    sf_output_free(o);
    sf_source_free(NULL);
    sf_render_free(NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: unit_test SCRATCH_DIR\n");
        return 2;
    }
    scratch = argv[1];
    test_escape();
    test_context();
    test_compile();
    test_census();
    test_render();
    test_no_alloc_per_row();
    test_flatness();
    test_output();
    printf("unit: %d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
