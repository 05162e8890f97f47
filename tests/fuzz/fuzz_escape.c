/* fuzz_escape.c: libFuzzer target for the escaper, one context at a time.
 *
 * The input is one value. For each context a value can sit in (element
 * text, an attribute value in double and in single quotes, a CDATA section,
 * a comment) it is escaped twice in a row into a minimal document, with the
 * template text that could complete an end token right after it ('>' after
 * element text, "]]>" after CDATA, "-->" after a comment), and the document
 * is parsed with expat. The characters expat reads back must be the value's
 * allowed characters, twice: each maximal ill-formed UTF-8 subsequence and
 * each character XML 1.0 forbids as U+FFFD, computed here independently of
 * src/xml/escape.c. In a comment, where a space is added to break "--" and
 * a CR cannot be kept, spaces are left out of the comparison and CR is read
 * as LF. (A PI holds no value: sqlfeed refuses a tag there.)
 *
 *   fuzz_escape tests/fuzz/corpus/escape */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xml/xml.h"

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *q = realloc(b->p, cap);
        if (!q)
            abort();
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* ---- the reference filter ------------------------------------------------ */

static void put_cp(buf *b, unsigned long c)
{
    char o[4];
    size_t n;
    if (c < 0x80)
        o[0] = (char)c, n = 1;
    else if (c < 0x800)
        o[0] = (char)(0xC0 | c >> 6), o[1] = (char)(0x80 | (c & 0x3F)), n = 2;
    else if (c < 0x10000)
        o[0] = (char)(0xE0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 0x3F)),
        o[2] = (char)(0x80 | (c & 0x3F)), n = 3;
    else
        o[0] = (char)(0xF0 | c >> 18), o[1] = (char)(0x80 | ((c >> 12) & 0x3F)),
        o[2] = (char)(0x80 | ((c >> 6) & 0x3F)), o[3] = (char)(0x80 | (c & 0x3F)), n = 4;
    put(b, o, n);
}

/* Unicode's "maximal subpart" decoding (Table 3-7 of the standard). */
static void filter(const unsigned char *s, size_t n, buf *out)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        unsigned long cp;
        size_t len = 1;
        if (c < 0x80) {
            cp = c;
        } else {
            size_t need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                          : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
            unsigned lo = 0x80, hi = 0xBF;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
            cp = need == 2 ? c & 0x1F : need == 3 ? c & 0x0F : c & 0x07;
            size_t k = 1;
            while (k < need && i + k < n) {
                unsigned d = s[i + k];
                if (k == 1 ? (d < lo || d > hi) : (d & 0xC0) != 0x80)
                    break;
                cp = cp << 6 | (d & 0x3F);
                k++;
            }
            if (need == 0 || k < need) {
                put(out, "\xEF\xBF\xBD", 3);
                i += need == 0 ? 1 : k;
                continue;
            }
            len = need;
        }
        int allowed = cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp != 0xFFFE && cp != 0xFFFF);
        if (allowed)
            put_cp(out, cp);
        else
            put(out, "\xEF\xBF\xBD", 3);
        i += len;
    }
}

/* ---- writing through the escaper ----------------------------------------- */

typedef struct wmem {
    sf_wbuf w;
    char small[SF_WBUF_MIN];
    buf *out;
} wmem;

static int wdrain(sf_wbuf *w)
{
    wmem *m = (wmem *)w;
    put(m->out, w->buf, w->len);
    w->len = 0;
    return 0;
}

static void escape_into(buf *doc, sf_esc esc, const char *v, size_t n)
{
    wmem m;
    m.w.buf = m.small;
    m.w.len = 0;
    m.w.cap = sizeof m.small;
    m.w.drain = wdrain;
    m.out = doc;
    if (sf_xml_write(&m.w, esc, v, n) != 0 || sf_xml_write(&m.w, esc, v, n) != 0 ||
        wdrain(&m.w) != 0)
        abort();
}

/* ---- reading back ----------------------------------------------------------- */

typedef struct got {
    buf text;
    int depth;
} got;

static void on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    got *g = ud;
    (void)name;
    g->depth++;
    for (int i = 0; atts[i]; i += 2)
        if (strcmp(atts[i], "a") == 0)
            put(&g->text, atts[i + 1], strlen(atts[i + 1]));
}

static void on_end(void *ud, const XML_Char *name)
{
    (void)name;
    ((got *)ud)->depth--;
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    got *g = ud;
    if (g->depth > 0)
        put(&g->text, s, (size_t)len);
}

static void on_comment(void *ud, const XML_Char *s)
{
    got *g = ud;
    put(&g->text, s, strlen(s));
}

/* Leaves out spaces and reads CR LF and CR as LF (a comment's view). */
static void comment_view(buf *b)
{
    size_t o = 0;
    for (size_t i = 0; i < b->len; i++) {
        char c = b->p[i];
        if (c == ' ')
            continue;
        if (c == '\r') {
            if (i + 1 < b->len && b->p[i + 1] == '\n')
                continue;
            c = '\n';
        }
        b->p[o++] = c;
    }
    b->len = o;
}

static const struct {
    sf_esc esc;
    const char *name, *pre, *post, *tail; /* tail: the template text after the values */
} cases[] = {
    {SF_ESC_TEXT, "element text", "<r>", "></r>", ">"},
    {SF_ESC_ATTR, "attribute (\")", "<r a=\"", "\"/>", ""},
    {SF_ESC_ATTR, "attribute (')", "<r a='", "'/>", ""},
    {SF_ESC_CDATA, "CDATA", "<r><![CDATA[", "]]>></r>", ">"},
    {SF_ESC_COMMENT, "comment", "<r><!--", "--></r>", ""},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        buf doc = {0}, want = {0};
        got g;
        memset(&g, 0, sizeof g);
        put(&doc, cases[k].pre, strlen(cases[k].pre));
        escape_into(&doc, cases[k].esc, v, size);
        put(&doc, cases[k].post, strlen(cases[k].post));
        filter(data, size, &want);
        filter(data, size, &want);
        put(&want, cases[k].tail, strlen(cases[k].tail));

        XML_Parser xp = XML_ParserCreate("UTF-8");
        XML_SetUserData(xp, &g);
        XML_SetElementHandler(xp, on_start, on_end);
        XML_SetCharacterDataHandler(xp, on_text);
        if (cases[k].esc == SF_ESC_COMMENT)
            XML_SetCommentHandler(xp, on_comment);
        if (XML_Parse(xp, doc.p, (int)doc.len, 1) == XML_STATUS_ERROR) {
            fprintf(stderr, "%s: not well-formed: %s at col %lu\n%.*s\n", cases[k].name,
                    XML_ErrorString(XML_GetErrorCode(xp)),
                    (unsigned long)XML_GetCurrentColumnNumber(xp), (int)doc.len, doc.p);
            abort();
        }
        XML_ParserFree(xp);
        if (cases[k].esc == SF_ESC_COMMENT) {
            comment_view(&want);
            comment_view(&g.text);
        }
        if (g.text.len != want.len || memcmp(g.text.p ? g.text.p : "", want.p ? want.p : "", want.len) != 0) {
            fprintf(stderr, "%s: read back %zu bytes, want %zu\n", cases[k].name, g.text.len,
                    want.len);
            abort();
        }
        free(doc.p);
        free(want.p);
        free(g.text.p);
    }
    return 0;
}
