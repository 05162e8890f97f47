/* format.c: the value formatters (format.h, docs/value.md).
 *
 * Each formatter reads the value's bytes once. Those whose result is the
 * input or a piece of it (url and query on text that needs no escape, text
 * on text without markup, entities or runs of white space, every trunc)
 * hand back the input itself: no copy. The others write their result into
 * the per-row arena, sized before the write (url, query, dec) or bounded by
 * the input's length (text: every tag, entity and run of white space is
 * replaced by no more bytes than it held). */
#include <stdio.h>
#include <string.h>

#include "../xml/xml.h"
#include "date.h"
#include "format.h"
#include "json.h"

enum {
    F_RFC3339 = 1,
    F_DATE,
    F_RFC822,
    F_DDMMYYYY,
    F_URL,
    F_QUERY,
    F_TEXT,
    F_TRUNC,
    F_DEC,
    F_JSON
};

static const struct {
    const char *name;
    uint16_t id;
} names[] = {
    {"rfc3339", F_RFC3339}, {"date", F_DATE}, {"rfc822", F_RFC822}, {"ddmmyyyy", F_DDMMYYYY},
    {"url", F_URL},         {"query", F_QUERY}, {"text", F_TEXT},    {"json", F_JSON},
};

#define TRUNC_MAX 1000000000u /* trunc1000000000: a billion characters */
#define DEC_MAX 9u

const char *sf_fmt_names(void)
{
    return "rfc3339, date, rfc822, ddmmyyyy, url, query, text, truncN, decN, json";
}

/* The number after "trunc" or "dec": 1 read (*v), -1 none or not a plain
 * decimal (a sign, a leading zero, a letter), -2 too large. */
static int number(const char *s, size_t n, uint32_t max, uint32_t *v)
{
    if (n == 0 || (s[0] == '0' && n > 1))
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(s[i] - '0');
        if (x > max)
            return -2;
    }
    *v = (uint32_t)x;
    return 1;
}

int sf_fmt_parse(const char *s, size_t n, sf_fmt_call *call, char *why, size_t whylen)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0) {
            call->id = names[i].id;
            call->arg = 0;
            return 1;
        }
    if (n >= 5 && memcmp(s, "trunc", 5) == 0) {
        /* "trunc" then anything but digits is a key ("truncated"). */
        if (n > 5 && (s[5] < '0' || s[5] > '9'))
            return 0;
        uint32_t v = 0;
        int rc = number(s + 5, n - 5, TRUNC_MAX, &v);
        if (rc < 0 || v == 0) {
            snprintf(why, whylen, "'%.*s': truncN takes a number of characters from 1 to %u, "
                                  "without leading zeros (trunc150)",
                     (int)(n > 40 ? 40 : n), s, TRUNC_MAX);
            return -1;
        }
        call->id = F_TRUNC;
        call->arg = v;
        return 1;
    }
    if (n >= 3 && memcmp(s, "dec", 3) == 0) {
        if (n > 3 && (s[3] < '0' || s[3] > '9'))
            return 0; /* "decimals", "description": keys */
        uint32_t v = 0;
        if (number(s + 3, n - 3, DEC_MAX, &v) < 0) {
            snprintf(why, whylen, "'%.*s': decN takes a number of decimals from 0 to %u (dec2)",
                     (int)(n > 40 ? 40 : n), s, DEC_MAX);
            return -1;
        }
        call->id = F_DEC;
        call->arg = v;
        return 1;
    }
    return 0;
}

const char *sf_fmt_spell(const sf_fmt_call *call, char *buf, size_t n)
{
    if (call->id == F_TRUNC)
        snprintf(buf, n, "trunc%u", (unsigned)call->arg);
    else if (call->id == F_DEC)
        snprintf(buf, n, "dec%u", (unsigned)call->arg);
    else {
        const char *name = "?";
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (names[i].id == call->id)
                name = names[i].name;
        snprintf(buf, n, "%s", name);
    }
    return buf;
}

/* ---- messages ------------------------------------------------------------ */

/* The value's start, for a message: at most 40 bytes cut on a character
 * boundary, controls as '?', "..." when cut. */
static void quote(char *buf, size_t bn, const char *s, size_t n)
{
    size_t k = n > 40 ? 40 : n;
    while (k < n && k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    size_t o = 0;
    for (size_t i = 0; i < k && o + 1 < bn; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = c < 0x20 || c == 0x7F ? '?' : (char)c;
    }
    if (k < n)
        for (int i = 0; i < 3 && o + 1 < bn; i++)
            buf[o++] = '.';
    buf[o] = '\0';
}

static int invalid(char *why, size_t whylen, const char *s, size_t n, const char *what,
                   const char *detail)
{
    char q[200];
    quote(q, sizeof q, s, n);
    snprintf(why, whylen, "'%s' is not %s%s%s", q, what, detail && detail[0] ? ": " : "",
             detail ? detail : "");
    return SF_FMT_INVALID;
}

static int text_out(sf_val *out, const char *s, size_t n)
{
    memset(out, 0, sizeof *out);
    out->kind = SF_VAL_TEXT;
    out->s = s;
    out->n = n;
    out->truthy = n > 0;
    return SF_FMT_OK;
}

/* ---- dates ----------------------------------------------------------------- */

static int fmt_date(sf_arena *a, int form, const char *s, size_t n, sf_val *out, char *why,
                    size_t whylen)
{
    sf_date d;
    char detail[128];
    if (sf_date_parse(s, n, &d, detail, sizeof detail) != 0)
        return invalid(why, whylen, s, n, "a date", detail);
    char buf[SF_DATE_MAX];
    size_t k = sf_date_print(&d, form, buf);
    char *p = sf_arena_alloc(a, k, 1);
    if (!p)
        return SF_FMT_NOMEM;
    memcpy(p, buf, k);
    return text_out(out, p, k);
}

/* ---- percent-encoding (RFC 3986) --------------------------------------------- */

/* Bytes kept as they are: bit 1 for url, the unreserved (ALPHA DIGIT
 * - . _ ~) and the reserved (: / ? # [ ] @ ! $ & ' ( ) * + , ; =); bit 2
 * for query, the unreserved only. A url also keeps '%' when two hex digits
 * follow (an escape already made). */
static const unsigned char pct_keep[256] = {
    ['A'] = 3, ['B'] = 3, ['C'] = 3, ['D'] = 3, ['E'] = 3, ['F'] = 3, ['G'] = 3, ['H'] = 3,
    ['I'] = 3, ['J'] = 3, ['K'] = 3, ['L'] = 3, ['M'] = 3, ['N'] = 3, ['O'] = 3, ['P'] = 3,
    ['Q'] = 3, ['R'] = 3, ['S'] = 3, ['T'] = 3, ['U'] = 3, ['V'] = 3, ['W'] = 3, ['X'] = 3,
    ['Y'] = 3, ['Z'] = 3, ['a'] = 3, ['b'] = 3, ['c'] = 3, ['d'] = 3, ['e'] = 3, ['f'] = 3,
    ['g'] = 3, ['h'] = 3, ['i'] = 3, ['j'] = 3, ['k'] = 3, ['l'] = 3, ['m'] = 3, ['n'] = 3,
    ['o'] = 3, ['p'] = 3, ['q'] = 3, ['r'] = 3, ['s'] = 3, ['t'] = 3, ['u'] = 3, ['v'] = 3,
    ['w'] = 3, ['x'] = 3, ['y'] = 3, ['z'] = 3, ['0'] = 3, ['1'] = 3, ['2'] = 3, ['3'] = 3,
    ['4'] = 3, ['5'] = 3, ['6'] = 3, ['7'] = 3, ['8'] = 3, ['9'] = 3, ['-'] = 3, ['.'] = 3,
    ['_'] = 3, ['~'] = 3, [':'] = 1, ['/'] = 1, ['?'] = 1, ['#'] = 1, ['['] = 1, [']'] = 1,
    ['@'] = 1, ['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,
    ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1,
};

static int hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

/* A url's '%' at s[i] that starts an escape. */
static int escape_at(const char *s, size_t n, size_t i)
{
    return s[i] == '%' && i + 2 < n && hex(s[i + 1]) && hex(s[i + 2]);
}

static int fmt_pct(sf_arena *a, int url, const char *s, size_t n, sf_val *out)
{
    const unsigned char bit = url ? 1 : 2;
    size_t enc = 0;
    for (size_t i = 0; i < n; i++)
        if (!(pct_keep[(unsigned char)s[i]] & bit)) {
            if (url && escape_at(s, n, i))
                i += 2;
            else
                enc++;
        }
    if (enc == 0)
        return text_out(out, s, n);
    if (enc > (SIZE_MAX - n) / 2)
        return SF_FMT_NOMEM;
    char *p = sf_arena_alloc(a, n + 2 * enc, 1);
    if (!p)
        return SF_FMT_NOMEM;
    static const char digits[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((pct_keep[c] & bit) || (url && escape_at(s, n, i))) {
            p[o++] = (char)c;
        } else {
            p[o++] = '%';
            p[o++] = digits[c >> 4];
            p[o++] = digits[c & 15];
        }
    }
    return text_out(out, p, o);
}

/* ---- HTML to text ------------------------------------------------------------ */

/* Named references decoded: HTML 4's Latin-1 set (U+00A0..U+00FF, in
 * order) and the markup and punctuation ones feeds use. Others stay as
 * written. */
static const char *const latin1[96] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",
    "uml",    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",
    "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",  "para",   "middot",
    "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil",
    "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave", "Iacute", "Icirc",  "Iuml",
    "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",   "times",
    "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",
    "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",
    "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml",
};

static const struct {
    const char *name;
    uint16_t cp;
} entities[] = {
    {"amp", '&'},       {"lt", '<'},        {"gt", '>'},        {"quot", '"'},
    {"nbsp", 0xA0},     {"apos", '\''},     {"OElig", 338},     {"oelig", 339},     {"Scaron", 352},
    {"scaron", 353},    {"Yuml", 376},      {"circ", 710},      {"tilde", 732},
    {"ensp", 8194},     {"emsp", 8195},     {"thinsp", 8201},   {"ndash", 8211},
    {"mdash", 8212},    {"lsquo", 8216},    {"rsquo", 8217},    {"sbquo", 8218},
    {"ldquo", 8220},    {"rdquo", 8221},    {"bdquo", 8222},    {"dagger", 8224},
    {"Dagger", 8225},   {"bull", 8226},     {"hellip", 8230},   {"permil", 8240},
    {"prime", 8242},    {"Prime", 8243},    {"lsaquo", 8249},   {"rsaquo", 8250},
    {"euro", 8364},     {"trade", 8482},
};

/* Elements that separate words: their start and end tags become a space.
 * One string per name length (names of that length, each followed by a
 * space), so a tag is compared with the few of its length. */
#define BLOCK_MAX 10
static const char *const blocks[BLOCK_MAX + 1] = {
    [1] = "p ",
    [2] = "br li tr td th ul ol dl dt dd hr h1 h2 h3 h4 h5 h6 ",
    [3] = "div pre nav ",
    [4] = "main ",
    [5] = "table aside thead tbody tfoot ",
    [6] = "header footer figure ",
    [7] = "section article address caption ",
    [10] = "blockquote figcaption ",
};

static int alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int alnum(char c) { return alpha(c) || (c >= '0' && c <= '9'); }
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

/* s[0..n) is `w` (lower case), ignoring ASCII case. */
static int iequal(const char *s, size_t n, const char *w)
{
    size_t k = strlen(w);
    if (n != k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (lower(s[i]) != w[i])
            return 0;
    return 1;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

/* What a byte of HTML text is: 0 copied as it is; WS white space; C2 the
 * first byte of U+00A0 (or of another character); MARK '<' or '&'. */
enum { T_WS = 1, T_C2, T_MARK };
static const unsigned char tclass[256] = {
    [' '] = T_WS, ['\t'] = T_WS, ['\n'] = T_WS, ['\r'] = T_WS, ['\f'] = T_WS,
    [0xC2] = T_C2, ['<'] = T_MARK, ['&'] = T_MARK,
};

static size_t put_utf8(char *p, uint32_t c)
{
    if (c < 0x80) {
        p[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        p[0] = (char)(0xC0 | c >> 6);
        p[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        p[0] = (char)(0xE0 | c >> 12);
        p[1] = (char)(0x80 | (c >> 6 & 0x3F));
        p[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    p[0] = (char)(0xF0 | c >> 18);
    p[1] = (char)(0x80 | (c >> 12 & 0x3F));
    p[2] = (char)(0x80 | (c >> 6 & 0x3F));
    p[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* A character reference at s[i] ('&'): its code point and length, or 0
 * when it is not one (then the '&' is text). Numeric references to no
 * character (0, surrogates, past U+10FFFF) are U+FFFD. */
/* What HTML's numeric character references 0x80-0x9F mean (the HTML
 * standard's table, Windows-1252); 0 keeps the code point. */
static const uint16_t cp1252[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

static size_t entity(const char *s, size_t n, size_t i, uint32_t *cp)
{
    size_t j = i + 1;
    if (j < n && s[j] == '#') {
        j++;
        int x = j < n && (s[j] == 'x' || s[j] == 'X');
        j += (size_t)x;
        size_t d0 = j;
        uint32_t v = 0;
        while (j < n && (x ? hex(s[j]) : (s[j] >= '0' && s[j] <= '9'))) {
            char c = s[j];
            uint32_t dv = c <= '9' ? (uint32_t)(c - '0') : (uint32_t)(lower(c) - 'a' + 10);
            if (v <= 0x10FFFF)
                v = v * (x ? 16u : 10u) + dv;
            j++;
        }
        if (j == d0 || j >= n || s[j] != ';')
            return 0;
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            v = 0xFFFD;
        else if (v >= 0x80 && v <= 0x9F && cp1252[v - 0x80])
            v = cp1252[v - 0x80]; /* HTML reads &#128;-&#159; as Windows-1252 */
        *cp = v;
        return j + 1 - i;
    }
    size_t k0 = j;
    while (j < n && j - k0 < 8 && alnum(s[j]))
        j++;
    if (j == k0 || j >= n || s[j] != ';')
        return 0;
    size_t k = j - k0;
    for (size_t e = 0; e < sizeof entities / sizeof entities[0]; e++)
        if (strlen(entities[e].name) == k && memcmp(entities[e].name, s + k0, k) == 0) {
            *cp = entities[e].cp;
            return j + 1 - i;
        }
    for (size_t e = 0; e < 96; e++)
        if (strlen(latin1[e]) == k && memcmp(latin1[e], s + k0, k) == 0) {
            *cp = (uint32_t)(0xA0 + e);
            return j + 1 - i;
        }
    return 0;
}

/* The end of a tag whose name ended at s[i]: just past its '>', or n. A
 * quoted attribute value may hold '>'. */
static size_t tag_end(const char *s, size_t n, size_t i)
{
    while (i < n) {
        char c = s[i++];
        if (c == '>')
            return i;
        if (c == '=') {
            while (i < n && is_ws(s[i]))
                i++;
            if (i < n && (s[i] == '"' || s[i] == '\'')) {
                const char *q = memchr(s + i + 1, s[i], n - i - 1);
                if (!q)
                    return n;
                i = (size_t)(q - s) + 1;
            }
        }
    }
    return n;
}

/* Past the end tag of a script or style element whose content starts at
 * s[i], or n. */
static size_t raw_end(const char *s, size_t n, size_t i, const char *name)
{
    size_t k = strlen(name);
    while (i < n) {
        const char *lt = memchr(s + i, '<', n - i);
        if (!lt)
            return n;
        i = (size_t)(lt - s) + 1;
        if (i < n && s[i] == '/' && n - i - 1 >= k && iequal(s + i + 1, k, name) &&
            (i + 1 + k == n || !alnum(s[i + 1 + k])))
            return tag_end(s, n, i + 1 + k);
    }
    return n;
}

typedef struct tout {
    char *p;
    size_t o;
    int space; /* white space (or a block tag) since the last character */
} tout;

static void emit(tout *t, const char *s, size_t k)
{
    if (t->space && t->o)
        t->p[t->o++] = ' ';
    t->space = 0;
    memcpy(t->p + t->o, s, k);
    t->o += k;
}

/* Text to copy: white space collapses, a no-break space (U+00A0) is white
 * space too. */
static void emit_text(tout *t, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char k = tclass[(unsigned char)s[i]];
        if (k == T_WS) {
            t->space = 1;
            i++;
        } else if (k == T_C2 && i + 1 < n && (unsigned char)s[i + 1] == 0xA0) {
            t->space = 1;
            i += 2;
        } else {
            size_t j = i + 1;
            while (j < n && tclass[(unsigned char)s[j]] == 0) /* copied as it is */
                j++;
            emit(t, s + i, j - i);
            i = j;
        }
    }
}

/* Whether text needs the formatter at all: markup, a reference, white
 * space other than single spaces between words. */
static int text_plain(const char *s, size_t n)
{
    if (n && (s[0] == ' ' || s[n - 1] == ' '))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char k = tclass[(unsigned char)s[i]];
        if (SF_LIKELY(k == 0))
            continue;
        if (k == T_MARK || (k == T_WS && (s[i] != ' ' || s[i + 1] == ' ')) ||
            (k == T_C2 && i + 1 < n && (unsigned char)s[i + 1] == 0xA0))
            return 0;
    }
    return 1;
}

static int fmt_text(sf_arena *a, const char *s, size_t n, sf_val *out)
{
    if (text_plain(s, n))
        return text_out(out, s, n);
    tout t = {sf_arena_alloc(a, n, 1), 0, 0};
    if (!t.p)
        return SF_FMT_NOMEM;
    size_t i = 0;
    while (i < n) {
        /* Text up to the next '<' or '&'. */
        size_t j = i;
        while (j < n && tclass[(unsigned char)s[j]] != T_MARK)
            j++;
        emit_text(&t, s + i, j - i);
        i = j;
        if (i == n)
            break;
        if (s[i] == '&') {
            uint32_t cp;
            size_t k = entity(s, n, i, &cp);
            if (k == 0) {
                emit(&t, "&", 1);
                i++;
            } else if (cp == 0xA0 || cp == ' ' || (cp < 0x80 && is_ws((char)cp))) {
                t.space = 1;
                i += k;
            } else {
                char u[4];
                emit(&t, u, put_utf8(u, cp));
                i += k;
            }
            continue;
        }
        /* '<': a tag, a comment, a declaration, or a literal '<'. */
        size_t b = i + 1;
        if (b < n && s[b] == '!') {
            if (n - b >= 3 && memcmp(s + b, "!--", 3) == 0) {
                /* HTML: "<!-->" and "<!--->" are empty comments. */
                size_t c0 = b + 3;
                if (c0 < n && s[c0] == '>') {
                    i = c0 + 1;
                    continue;
                }
                if (n - c0 >= 2 && s[c0] == '-' && s[c0 + 1] == '>') {
                    i = c0 + 2;
                    continue;
                }
                const char *e = memmem(s + c0, n - c0, "-->", 3);
                i = e ? (size_t)(e - s) + 3 : n;
            } else if (n - b >= 8 && memcmp(s + b, "![CDATA[", 8) == 0) {
                const char *e = memmem(s + b + 8, n - b - 8, "]]>", 3);
                size_t end = e ? (size_t)(e - s) : n;
                emit_text(&t, s + b + 8, end - b - 8);
                i = e ? end + 3 : n;
            } else {
                i = tag_end(s, n, b);
            }
            continue;
        }
        if (b < n && s[b] == '?') {
            i = tag_end(s, n, b);
            continue;
        }
        int close = b < n && s[b] == '/';
        size_t n0 = b + (size_t)close;
        if (n0 >= n || !alpha(s[n0])) {
            if (close) { /* "</" and no name: ignored up to its '>' */
                i = tag_end(s, n, n0);
                continue;
            }
            emit(&t, "<", 1);
            i++;
            continue;
        }
        size_t n1 = n0;
        while (n1 < n && (alnum(s[n1]) || s[n1] == '-' || s[n1] == ':'))
            n1++;
        i = tag_end(s, n, n1);
        size_t len = n1 - n0;
        if (len > BLOCK_MAX)
            continue;
        char nm[BLOCK_MAX];
        for (size_t k = 0; k < len; k++)
            nm[k] = lower(s[n0 + k]);
        for (const char *bl = t.space ? NULL : blocks[len]; bl && *bl; bl += len + 1) {
            size_t k = 0;
            while (k < len && bl[k] == nm[k])
                k++;
            if (k == len) {
                t.space = 1;
                break;
            }
        }
        if (!close && ((len == 6 && memcmp(nm, "script", 6) == 0) ||
                       (len == 5 && memcmp(nm, "style", 5) == 0)) &&
            !(s[i - 1] == '>' && s[i - 2] == '/')) {
            i = raw_end(s, n, i, len == 6 ? "script" : "style");
            t.space = 1;
        }
    }
    return text_out(out, t.p, t.o);
}

/* ---- trunc, dec ------------------------------------------------------------- */

size_t sf_fmt_chars(const char *s, size_t n, size_t max, size_t *cut)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t chars = 0;
    *cut = n;
    while (p < end) {
        if (chars == max) {
            *cut = (size_t)(p - (const unsigned char *)s);
            max = SIZE_MAX; /* go on counting */
        }
        size_t k = 1, bad = 1;
        if (*p >= 0x80 && (k = sf_utf8_seq(p, end, &bad)) == 0)
            k = bad;
        p += k;
        chars++;
    }
    return chars;
}

/* The first `max` characters as the output writes them (sf_fmt_chars):
 * never a sequence split, and an invalid byte run counted as the one
 * U+FFFD it becomes. */
static int fmt_trunc(const char *s, size_t n, uint32_t max, sf_val *out)
{
    if (n <= max)
        return text_out(out, s, n);
    size_t cut;
    sf_fmt_chars(s, n, max, &cut);
    return text_out(out, s, cut);
}

/* The exponent form databases print floats in (SQLite 1.0e-05, PostgreSQL
 * 1e-05, 1.0e+16): the digits written out with the point moved, then
 * rounded as any decimal. An exponent past SF_DEC_EXP_MAX is refused
 * rather than written out. */
#define SF_DEC_EXP_MAX 4096
static int fmt_dec(sf_arena *a, const char *s0, size_t n0, uint32_t dec, sf_val *out,
                   char *why, size_t whylen);
static int dec_exponent(sf_arena *a, const char *s0, size_t n0, const char *s, size_t n, int neg,
                        size_t i0, size_t i1, size_t f0, size_t f1, size_t i, uint32_t dec,
                        sf_val *out, char *why, size_t whylen)
{
    int eneg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        eneg = s[i++] == '-';
    size_t ed = i;
    long ex = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (ex <= SF_DEC_EXP_MAX)
            ex = ex * 10 + (s[i] - '0');
        i++;
    }
    if (i == ed || i != n)
        return invalid(why, whylen, s0, n0, "a number", "");
    if (ex > SF_DEC_EXP_MAX)
        return invalid(why, whylen, s0, n0, "a number", ": its exponent is too large");
    size_t ni = i1 - i0, nf = f1 - f0, nd = ni + nf;
    long point = (long)ni + (eneg ? -ex : ex); /* where the point goes in the digits */
    size_t zl = point < 0 ? (size_t)-point : 0;                              /* zeros after "0." */
    size_t zr = point > (long)nd ? (size_t)(point - (long)nd) : 0; /* zeros before the point */
    char *p = sf_arena_alloc(a, 1 + 2 + zl + nd + zr + 1, 1);
    if (!p)
        return SF_FMT_NOMEM;
    size_t o = 0;
    if (neg)
        p[o++] = '-';
    if (point <= 0) {
        p[o++] = '0';
        p[o++] = '.';
        memset(p + o, '0', zl);
        o += zl;
    }
    for (size_t k = 0; k < nd; k++) {
        if (point > 0 && k == (size_t)point)
            p[o++] = '.';
        p[o++] = k < ni ? s[i0 + k] : s[f0 + k - ni];
    }
    memset(p + o, '0', zr);
    o += zr;
    return fmt_dec(a, p, o, dec, out, why, whylen);
}

/* A decimal number ([+-]digits[.digits], or .digits) rounded to `dec`
 * places, half away from zero, on its digits: no float, any length. */
static int fmt_dec(sf_arena *a, const char *s0, size_t n0, uint32_t dec, sf_val *out,
                   char *why, size_t whylen)
{
    const char *s = s0;
    size_t n = n0;
    while (n && is_ws(*s))
        s++, n--;
    while (n && is_ws(s[n - 1]))
        n--;
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    size_t i0 = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t i1 = i, f0 = i, f1 = i;
    if (i < n && s[i] == '.') {
        f0 = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        f1 = i;
    }
    if (i1 == i0 && f1 == f0)
        return invalid(why, whylen, s0, n0, "a number", "");
    if (i < n && (s[i] == 'e' || s[i] == 'E'))
        return dec_exponent(a, s0, n0, s, n, neg, i0, i1, f0, f1, i + 1, dec, out, why, whylen);
    if (i != n)
        return invalid(why, whylen, s0, n0, "a number", "");
    while (i0 < i1 && s[i0] == '0') /* leading zeros */
        i0++;
    size_t ilen = i1 - i0;
    /* sign, a carry digit, the integer digits (at least one), '.', dec */
    size_t cap = 2 + (ilen ? ilen : 1) + 1 + dec;
    char *p = sf_arena_alloc(a, cap, 1);
    if (!p)
        return SF_FMT_NOMEM;
    /* The digits, right-aligned after room for the sign and a carry. */
    char *d = p + 2;
    size_t nd = 0;
    if (ilen == 0)
        d[nd++] = '0';
    memcpy(d + nd, s + i0, ilen);
    nd += ilen;
    size_t ip = nd; /* integer digits */
    for (uint32_t k = 0; k < dec; k++)
        d[nd++] = f0 + k < f1 ? s[f0 + k] : '0';
    int up = f0 + dec < f1 && s[f0 + dec] >= '5';
    char *start = d;
    if (up) {
        size_t k = nd;
        while (k > 0 && d[k - 1] == '9')
            d[--k] = '0';
        if (k > 0)
            d[k - 1]++;
        else
            *--start = '1', ip++;
    }
    int zero = 1;
    for (char *q = start; q < d + nd; q++)
        zero &= *q == '0';
    if (neg && !zero)
        *--start = '-', ip++;
    /* Insert the point: move the decimals one place right. */
    size_t len = (size_t)(d + nd - start);
    if (dec) {
        memmove(start + ip + 1, start + ip, len - ip);
        start[ip] = '.';
        len++;
    }
    text_out(out, start, len);
    out->truthy = !zero;
    return SF_FMT_OK;
}

/* ---- json -------------------------------------------------------------------- */

static int fmt_json(sf_arena *a, const char *s, size_t n, sf_val *out, char *why, size_t whylen)
{
    char detail[200];
    int rc = sf_json_view(a, s, n, out, detail, sizeof detail);
    if (rc == -2)
        return SF_FMT_NOMEM;
    if (rc < 0)
        /* "'[1,' is not JSON: at byte 3 ...", not "... JSON: not JSON: ..." */
        return invalid(why, whylen, s, n, "JSON",
                       detail + (strncmp(detail, "not JSON: ", 10) == 0 ? 10 : 0));
    return SF_FMT_OK;
}

/* ---- apply --------------------------------------------------------------------- */

int sf_fmt_apply(sf_arena *a, const sf_fmt_call *call, const sf_val *in, sf_val *out,
                 char *why, size_t whylen)
{
    const char *s;
    size_t n;
    switch ((sf_val_kind)in->kind) {
    case SF_VAL_MISSING:
    case SF_VAL_NULL:
        *out = *in;
        return SF_FMT_OK;
    case SF_VAL_BOOL:
        s = in->truthy ? "true" : "false";
        n = in->truthy ? 4 : 5;
        break;
    case SF_VAL_TEXT:
        s = in->s;
        n = in->n;
        break;
    case SF_VAL_LIST:
    case SF_VAL_MAP:
    default:
        if (call->id == F_JSON) { /* already a JSON value */
            *out = *in;
            return SF_FMT_OK;
        }
        snprintf(why, whylen, "a %s, not text: the %s formatter reads text",
                 in->kind == SF_VAL_LIST ? "list" : "map",
                 sf_fmt_spell(call, (char[16]){0}, 16));
        return SF_FMT_INVALID;
    }
    if (n == 0) /* empty stays empty, for json too (a column with no list) */
        return text_out(out, s, 0);
    switch (call->id) {
    case F_RFC3339:
        return fmt_date(a, SF_DATE_RFC3339, s, n, out, why, whylen);
    case F_DATE:
        return fmt_date(a, SF_DATE_DAY, s, n, out, why, whylen);
    case F_RFC822:
        return fmt_date(a, SF_DATE_RFC822, s, n, out, why, whylen);
    case F_DDMMYYYY:
        return fmt_date(a, SF_DATE_DDMMYYYY, s, n, out, why, whylen);
    case F_URL:
        return fmt_pct(a, 1, s, n, out);
    case F_QUERY:
        return fmt_pct(a, 0, s, n, out);
    case F_TEXT:
        return fmt_text(a, s, n, out);
    case F_TRUNC:
        return fmt_trunc(s, n, call->arg, out);
    case F_DEC:
        return fmt_dec(a, s, n, call->arg, out, why, whylen);
    case F_JSON:
        return fmt_json(a, s, n, out, why, whylen);
    default:
        snprintf(why, whylen, "unknown formatter %u", (unsigned)call->id);
        return SF_FMT_INVALID;
    }
}
