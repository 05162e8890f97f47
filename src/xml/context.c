/* context.c: the lexer over a template's literal text. It tracks where in
 * the XML 1.0 grammar the next tag will land, so each {{tag}} is escaped for
 * that place when the template is compiled (nothing is decided per row), and
 * it checks that the literal markup is well-formed: every construct of XML
 * 1.0 (elements, attributes, references, comments, CDATA sections, PIs, the
 * XML declaration, DOCTYPE with quoted literals and its internal subset) is
 * followed, so a '>' inside a quoted literal never ends a declaration.
 *
 * What needs a stack (element names, sections) is the compiler's: the lexer
 * reports start tags, attributes and end tags as events. */
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "xml.h"

enum { TAG_NEED_SPACE = 0, TAG_SPACE, TAG_SLASH, TAG_AFTER_ANAME, TAG_AFTER_EQ };
enum { REF_START = 0, REF_HASH, REF_HEX, REF_NAME, REF_DEC, REF_HEXD };
enum { BANG_COMMENT = 1, BANG_CDATA = 2, BANG_DOCTYPE = 4 };

static const char *const bang_word[3] = {"--", "[CDATA[", "DOCTYPE"};

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Decodes the (already validated) UTF-8 sequence at s[i]; *n its length. */
static uint32_t decode(const char *src, size_t i, size_t end, size_t *n)
{
    const unsigned char *s = (const unsigned char *)src + i;
    size_t avail = end - i;
    if (s[0] < 0x80 || avail < 2) {
        *n = 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *n = 2;
        return (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    }
    if (s[0] < 0xF0 && avail >= 3) {
        *n = 3;
        return (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    }
    if (avail >= 4) {
        *n = 4;
        return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
               (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    }
    *n = 1;
    return 0xFFFD;
}

#include "names.h"

static int in_table(const uint16_t (*tab)[2], size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < tab[mid][0])
            hi = mid;
        else if (c > tab[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* NameStartChar and NameChar: ASCII as XML 1.0 says, beyond it the
 * characters both editions of the standard accept (names.h). */
static int name_start(uint32_t c)
{
    if (c < 0x80)
        return c == ':' || c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    return in_table(name_start_tab, sizeof name_start_tab / sizeof name_start_tab[0], c);
}

static int name_char(uint32_t c)
{
    if (c < 0x80)
        return name_start(c) || c == '-' || c == '.' || (c >= '0' && c <= '9');
    return in_table(name_char_tab, sizeof name_char_tab / sizeof name_char_tab[0], c);
}

/* A character a reference may name: XML 1.0 Char. */
static int xml_char(uint32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

size_t sf_xml_check_chars(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + n;
    size_t i = 0, bad;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return i;
            i++;
            continue;
        }
        size_t len = sf_utf8_seq(s + i, end, &bad);
        if (!len)
            return i;
        i += len;
    }
    return n;
}

/* ---- events ------------------------------------------------------------- */

static size_t fail(sf_xml_event *ev, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t fail(sf_xml_event *ev, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->msg, sizeof ev->msg, fmt, ap);
    va_end(ap);
    ev->type = SF_XE_ERROR;
    ev->pos = pos;
    return pos;
}

static size_t event(sf_xml_event *ev, sf_xml_event_type type, size_t pos, size_t name,
                    size_t len, size_t next)
{
    ev->type = type;
    ev->pos = pos;
    ev->name = name;
    ev->len = len;
    return next;
}

/* ---- the XML declaration ------------------------------------------------- */

static size_t skip_space(const char *s, size_t i, size_t n)
{
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    return i;
}

/* At s[*i]: S? name S? = S? quoted value. Sets *v, *vlen; 0 or -1. */
static int decl_attr(const char *s, size_t n, size_t *i, const char *name, size_t *v,
                     size_t *vlen)
{
    size_t k = strlen(name), j = *i;
    if (j == skip_space(s, j, n))
        return -1; /* white space must come first */
    j = skip_space(s, j, n);
    if (n - j < k || memcmp(s + j, name, k) != 0)
        return -1;
    j = skip_space(s, j + k, n);
    if (j >= n || s[j] != '=')
        return -1;
    j = skip_space(s, j + 1, n);
    if (j >= n || (s[j] != '"' && s[j] != '\''))
        return -1;
    char q = s[j++];
    size_t st = j;
    while (j < n && s[j] != q)
        j++;
    if (j >= n)
        return -1;
    *v = st;
    *vlen = j - st;
    *i = j + 1;
    return 0;
}

/* Checks the XML declaration s[0..n) (what follows "<?xml", before "?>").
 * Only UTF-8 is accepted: the output is always UTF-8 (docs/xml.md). */
static size_t check_xmldecl(const char *src, size_t base, size_t n, sf_xml_event *ev)
{
    const char *s = src + base;
    size_t i = 0, v, vl;
    if (decl_attr(s, n, &i, "version", &v, &vl) != 0)
        return fail(ev, base, "the XML declaration needs version=\"1.0\" first");
    /* Only 1.0: the output is checked and filtered as XML 1.0 (a document
     * declaring 1.1 must not hold C1 controls literally, and its readers
     * would take other characters for names and line ends). */
    if (!(vl == 3 && memcmp(s + v, "1.0", 3) == 0))
        return fail(ev, base + v,
                    "XML version \"%.*s\": sqlfeed writes XML 1.0 only; declare "
                    "version=\"1.0\"",
                    (int)(vl > 20 ? 20 : vl), s + v);
    size_t save = i;
    if (decl_attr(s, n, &i, "encoding", &v, &vl) == 0) {
        if (!(vl == 5 && strncasecmp(s + v, "UTF-8", 5) == 0))
            return fail(ev, base + v,
                        "encoding=\"%.*s\": sqlfeed writes UTF-8 only; declare "
                        "encoding=\"UTF-8\" (or leave the encoding out)",
                        (int)(vl > 40 ? 40 : vl), s + v);
    } else {
        i = save;
    }
    save = i;
    if (decl_attr(s, n, &i, "standalone", &v, &vl) == 0) {
        if (!((vl == 3 && memcmp(s + v, "yes", 3) == 0) || (vl == 2 && memcmp(s + v, "no", 2) == 0)))
            return fail(ev, base + v, "standalone must be \"yes\" or \"no\"");
    } else {
        i = save;
    }
    if (skip_space(s, i, n) != n)
        return fail(ev, base + i, "unexpected text in the XML declaration");
    return 0;
}

/* ---- markup declarations of the internal subset -------------------------- */

/* A recursive-descent check of one declaration, src[at] = '<' to src[end] =
 * '>', against the productions of XML 1.0 (elementdecl, AttlistDecl,
 * EntityDecl, NotationDecl) and its well-formedness constraints: no '<' in an
 * attribute default, '&' only as a reference (in defaults to the predefined
 * entities or a character), no parameter-entity reference inside a
 * declaration of the internal subset. Validity is not checked. The lexer
 * refuses every Mustache tag inside a declaration, so the span is the
 * declaration's own text. */
typedef struct dparse {
    const char *s;
    size_t i, end; /* s[i] is next; s[end] is the closing '>' */
    sf_xml_event *ev;
    int bad;
} dparse;

enum { LIT_SYSTEM, LIT_PUBID, LIT_ATTVALUE, LIT_ENTITYVALUE };

static int dp_fail(dparse *p, size_t at, const char *what)
{
    if (!p->bad)
        fail(p->ev, at, "%s", what);
    p->bad = 1;
    return -1;
}

static uint32_t dp_peek(const dparse *p, size_t *n)
{
    if (p->i >= p->end) {
        *n = 0;
        return 0;
    }
    return decode(p->s, p->i, p->end, n);
}

/* White space: 1 if some was skipped. */
static int dp_space(dparse *p)
{
    size_t st = p->i;
    while (p->i < p->end && is_space((unsigned char)p->s[p->i]))
        p->i++;
    return p->i > st;
}

static int dp_need_space(dparse *p, const char *what)
{
    return dp_space(p) ? 0 : dp_fail(p, p->i, what);
}

/* A Name (or an Nmtoken): 0 and its span, or -1. */
static int dp_name(dparse *p, int nmtoken, size_t *start, size_t *len, const char *what)
{
    size_t n, st = p->i;
    uint32_t c = dp_peek(p, &n);
    if (!n || !(nmtoken ? name_char(c) : name_start(c)))
        return dp_fail(p, p->i, what);
    while (n && name_char(c)) {
        p->i += n;
        c = dp_peek(p, &n);
    }
    if (start)
        *start = st, *len = p->i - st;
    return 0;
}

/* The keyword `w`, not followed by a name character. */
static int dp_word(dparse *p, const char *w)
{
    size_t k = strlen(w), n;
    if (p->end - p->i < k || memcmp(p->s + p->i, w, k) != 0)
        return 0;
    size_t save = p->i;
    p->i += k;
    uint32_t c = dp_peek(p, &n);
    if (n && name_char(c)) {
        p->i = save;
        return 0;
    }
    return 1;
}

static int dp_char(dparse *p, char ch)
{
    if (p->i < p->end && p->s[p->i] == ch) {
        p->i++;
        return 1;
    }
    return 0;
}

/* A reference inside a literal, at '&': `general` allows &name; for any
 * name (an entity value's references are bypassed), otherwise only the
 * predefined five. */
static int dp_ref(dparse *p, size_t close, int general)
{
    size_t at = p->i++;
    if (dp_char(p, '#')) {
        int hex = dp_char(p, 'x');
        uint32_t v = 0;
        size_t digits = 0;
        while (p->i < close) {
            char ch = p->s[p->i];
            int d = ch >= '0' && ch <= '9'          ? ch - '0'
                    : hex && ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : hex && ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                    : -1;
            if (d < 0)
                break;
            v = v * (hex ? 16u : 10u) + (uint32_t)d;
            if (v > 0x110000)
                v = 0x110000;
            p->i++, digits++;
        }
        if (!digits || !dp_char(p, ';'))
            return dp_fail(p, at, "malformed character reference in a declaration's literal");
        if (!xml_char(v))
            return dp_fail(p, at, "character reference to a character XML 1.0 forbids");
        return 0;
    }
    size_t st, len;
    dparse q = *p;
    q.end = close;
    if (dp_name(&q, 0, &st, &len, "'&' must start a reference (write &amp; for a literal '&')") != 0 ||
        !dp_char(&q, ';'))
        return dp_fail(p, at, "'&' must start a reference (write &amp; for a literal '&')");
    p->i = q.i;
    if (general)
        return 0;
    static const char *const pre[5] = {"lt", "gt", "amp", "apos", "quot"};
    for (int k = 0; k < 5; k++)
        if (strlen(pre[k]) == len && memcmp(p->s + st, pre[k], len) == 0)
            return 0;
    return dp_fail(p, at, "an attribute default may refer only to the entities XML predefines "
                          "(lt gt amp apos quot) or to a character");
}

/* A quoted literal of `kind`. */
static int dp_literal(dparse *p, int kind, const char *what)
{
    if (p->i >= p->end || (p->s[p->i] != '"' && p->s[p->i] != '\''))
        return dp_fail(p, p->i, what);
    char q = p->s[p->i++];
    size_t close = p->i;
    while (close < p->end && p->s[close] != q)
        close++;
    if (close >= p->end)
        return dp_fail(p, p->i - 1, "unterminated literal in a declaration");
    while (p->i < close) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (kind == LIT_PUBID &&
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr(" \r\n-'()+,./:=?;!*#@$_%", c))))
            return dp_fail(p, p->i, "a character that cannot be in a public identifier");
        if (kind == LIT_ATTVALUE && c == '<')
            return dp_fail(p, p->i, "'<' in an attribute default (write &lt;)");
        if (kind == LIT_ENTITYVALUE && c == '%')
            return dp_fail(p, p->i, "a parameter-entity reference inside a declaration of the "
                                    "internal subset (XML 1.0 forbids it; write &#37; for '%')");
        if ((kind == LIT_ATTVALUE || kind == LIT_ENTITYVALUE) && c == '&') {
            if (dp_ref(p, close, kind == LIT_ENTITYVALUE) != 0)
                return -1;
            continue;
        }
        p->i++;
    }
    p->i = close + 1;
    return 0;
}

/* ExternalID, or with `public_only_ok` also NotationDecl's PublicID. */
static int dp_external_id(dparse *p, int public_only_ok)
{
    if (dp_word(p, "SYSTEM")) {
        if (dp_need_space(p, "white space must follow SYSTEM") != 0)
            return -1;
        return dp_literal(p, LIT_SYSTEM, "a quoted system literal must follow SYSTEM");
    }
    if (!dp_word(p, "PUBLIC"))
        return dp_fail(p, p->i, "SYSTEM or PUBLIC expected");
    if (dp_need_space(p, "white space must follow PUBLIC") != 0 ||
        dp_literal(p, LIT_PUBID, "a quoted public identifier must follow PUBLIC") != 0)
        return -1;
    size_t save = p->i;
    int sp = dp_space(p);
    if (public_only_ok && (p->i >= p->end || (p->s[p->i] != '"' && p->s[p->i] != '\''))) {
        p->i = save;
        return 0;
    }
    if (!sp)
        return dp_fail(p, p->i, "white space and a quoted system literal must follow the "
                                "public identifier");
    return dp_literal(p, LIT_SYSTEM, "a quoted system literal must follow the public identifier");
}

static int dp_occurrence(dparse *p)
{
    return dp_char(p, '?') || dp_char(p, '*') || dp_char(p, '+');
}

/* cp ::= (Name | choice | seq) ('?' | '*' | '+')?, at a name or '('. */
static int dp_cp(dparse *p, int depth);

/* choice or seq, at '(' (consumed by the caller). */
static int dp_group(dparse *p, int depth)
{
    char sep = 0;
    dp_space(p);
    if (dp_cp(p, depth) != 0)
        return -1;
    for (;;) {
        dp_space(p);
        if (dp_char(p, ')'))
            break;
        char ch = p->i < p->end ? p->s[p->i] : 0;
        if ((ch != '|' && ch != ',') || (sep && ch != sep))
            return dp_fail(p, p->i, "a content model's group needs ')' or one kind of "
                                    "separator, '|' or ','");
        sep = ch, p->i++;
        dp_space(p);
        if (dp_cp(p, depth) != 0)
            return -1;
    }
    dp_occurrence(p);
    return 0;
}

static int dp_cp(dparse *p, int depth)
{
    if (dp_char(p, '(')) {
        if (depth > 64)
            return dp_fail(p, p->i, "a content model nested more than 64 deep");
        return dp_group(p, depth + 1);
    }
    if (dp_name(p, 0, NULL, NULL, "a name or '(' expected in a content model") != 0)
        return -1;
    dp_occurrence(p);
    return 0;
}

static int dp_element(dparse *p)
{
    if (dp_need_space(p, "white space must follow <!ELEMENT") != 0 ||
        dp_name(p, 0, NULL, NULL, "<!ELEMENT needs the element's name") != 0 ||
        dp_need_space(p, "white space must follow the element's name") != 0)
        return -1;
    if (dp_word(p, "EMPTY") || dp_word(p, "ANY"))
        return 0;
    if (!dp_char(p, '('))
        return dp_fail(p, p->i, "EMPTY, ANY or a content model '(...)' expected");
    dp_space(p);
    if (!dp_char(p, '#'))
        return dp_group(p, 1);
    if (!dp_word(p, "PCDATA"))
        return dp_fail(p, p->i - 1, "#PCDATA expected");
    int names = 0;
    for (;;) {
        dp_space(p);
        if (dp_char(p, ')'))
            break;
        if (!dp_char(p, '|'))
            return dp_fail(p, p->i, "'|' or ')' expected in mixed content");
        dp_space(p);
        if (dp_name(p, 0, NULL, NULL, "a name expected in mixed content") != 0)
            return -1;
        names++;
    }
    if (dp_char(p, '*'))
        return 0;
    return names ? dp_fail(p, p->i, "mixed content with names must end with ')*'") : 0;
}

static int dp_attlist(dparse *p)
{
    if (dp_need_space(p, "white space must follow <!ATTLIST") != 0 ||
        dp_name(p, 0, NULL, NULL, "<!ATTLIST needs the element's name") != 0)
        return -1;
    for (;;) {
        int sp = dp_space(p);
        if (p->i >= p->end)
            return 0;
        if (!sp)
            return dp_fail(p, p->i, "white space must come before an attribute definition");
        size_t an, al;
        if (dp_name(p, 0, &an, &al, "an attribute name expected in <!ATTLIST") != 0 ||
            dp_need_space(p, "white space must follow the attribute's name") != 0)
            return -1;
        static const char *const types[] = {"CDATA",  "IDREFS",   "IDREF",    "ID",
                                            "ENTITY", "ENTITIES", "NMTOKENS", "NMTOKEN"};
        int typed = 0;
        for (size_t k = 0; k < sizeof types / sizeof types[0] && !typed; k++)
            typed = dp_word(p, types[k]);
        if (!typed) {
            int notation = dp_word(p, "NOTATION");
            if (notation && dp_need_space(p, "white space must follow NOTATION") != 0)
                return -1;
            if (!dp_char(p, '('))
                return dp_fail(p, p->i, "an attribute type expected (CDATA, ID, ..., "
                                        "NOTATION (...) or (a|b))");
            do {
                dp_space(p);
                if (dp_name(p, !notation, NULL, NULL, "a name expected in an enumeration") != 0)
                    return -1;
                dp_space(p);
            } while (dp_char(p, '|'));
            if (!dp_char(p, ')'))
                return dp_fail(p, p->i, "'|' or ')' expected in an enumeration");
        }
        if (dp_need_space(p, "white space must follow the attribute's type") != 0)
            return -1;
        if (dp_word(p, "#REQUIRED") || dp_word(p, "#IMPLIED"))
            continue;
        if (dp_word(p, "#FIXED") && dp_need_space(p, "white space must follow #FIXED") != 0)
            return -1;
        /* A default value would be added to elements where sqlfeed's
         * namespace check does not see it. */
        if ((al == 5 && memcmp(p->s + an, "xmlns", 5) == 0) || memchr(p->s + an, ':', al))
            return dp_fail(p, an, "a default value for a namespace declaration or a prefixed "
                                  "attribute: sqlfeed checks namespaces in the elements' own "
                                  "tags; write it there (or make it #IMPLIED)");
        if (dp_literal(p, LIT_ATTVALUE, "#REQUIRED, #IMPLIED, #FIXED or a quoted default "
                                        "expected") != 0)
            return -1;
    }
}

static int dp_entity(dparse *p)
{
    if (dp_need_space(p, "white space must follow <!ENTITY") != 0)
        return -1;
    int pe = dp_char(p, '%');
    if (pe && dp_need_space(p, "white space must follow '%' in <!ENTITY %") != 0)
        return -1;
    if (dp_name(p, 0, NULL, NULL, "<!ENTITY needs the entity's name") != 0 ||
        dp_need_space(p, "white space must follow the entity's name") != 0)
        return -1;
    if (p->i < p->end && (p->s[p->i] == '"' || p->s[p->i] == '\'')) {
        /* Its text would be read as declarations when referenced (%name;),
         * and those are not checked. */
        if (pe)
            return dp_fail(p, p->i, "a parameter entity with a value in the internal subset: its "
                                    "text would be read as declarations sqlfeed does not check");
        return dp_literal(p, LIT_ENTITYVALUE, "a quoted entity value expected");
    }
    if (dp_external_id(p, 0) != 0)
        return -1;
    size_t save = p->i;
    if (!pe && dp_space(p) && dp_word(p, "NDATA")) {
        if (dp_need_space(p, "white space must follow NDATA") != 0)
            return -1;
        return dp_name(p, 0, NULL, NULL, "NDATA needs a notation's name");
    }
    p->i = save;
    return 0;
}

static int dp_notation(dparse *p)
{
    if (dp_need_space(p, "white space must follow <!NOTATION") != 0 ||
        dp_name(p, 0, NULL, NULL, "<!NOTATION needs the notation's name") != 0 ||
        dp_need_space(p, "white space must follow the notation's name") != 0)
        return -1;
    return dp_external_id(p, 1);
}

static size_t check_markupdecl(const char *src, size_t at, size_t end, sf_xml_event *ev)
{
    dparse p = {src, at + 2, end, ev, 0};
    int rc;
    if (dp_word(&p, "ELEMENT"))
        rc = dp_element(&p);
    else if (dp_word(&p, "ATTLIST"))
        rc = dp_attlist(&p);
    else if (dp_word(&p, "ENTITY"))
        rc = dp_entity(&p);
    else if (dp_word(&p, "NOTATION"))
        rc = dp_notation(&p);
    else
        return fail(ev, at, "the internal subset declares only <!ELEMENT, <!ATTLIST, <!ENTITY "
                            "and <!NOTATION");
    if (rc != 0)
        return ev->pos;
    dp_space(&p);
    if (p.i != p.end)
        return fail(ev, p.i, "unexpected '%c' in a markup declaration (only '>' may end it)",
                    src[p.i]);
    return end;
}

/* ---- the lexer ------------------------------------------------------------ */

static const char *const predefined[5] = {"lt", "gt", "amp", "apos", "quot"};

static size_t end_ref(sf_xml_lexer *lx, const char *src, size_t i, sf_xml_event *ev)
{
    if (lx->sub == REF_NAME) {
        /* Only the five XML predefines: an entity from a DTD may be unknown
         * to the reader (an external DTD is not read by most parsers) or
         * hold markup that is not balanced where it lands. */
        size_t len = i - lx->mark;
        int known = 0;
        for (int k = 0; k < 5 && !known; k++)
            known = strlen(predefined[k]) == len && memcmp(src + lx->mark, predefined[k], len) == 0;
        if (!known)
            return fail(ev, lx->mark - 1,
                        "&%.*s; is not one of the entities XML predefines (lt gt amp apos "
                        "quot); write a character reference such as &#160;",
                        (int)(len > 40 ? 40 : len), src + lx->mark);
    } else if (!xml_char(lx->cp)) {
        return fail(ev, lx->mark - 1, "character reference to a character XML 1.0 forbids");
    }
    lx->state = lx->ret;
    lx->sub = 0;
    return SIZE_MAX;
}

size_t sf_xml_lex(sf_xml_lexer *lx, const char *src, size_t i, size_t end, sf_xml_event *ev)
{
    ev->type = SF_XE_NONE;
    while (i < end) {
        unsigned char c = (unsigned char)src[i];
        size_t clen = 1;
        uint32_t cp = c;
        if (c >= 0x80)
            cp = decode(src, i, end, &clen);
        size_t next = i + clen, r;

        switch ((sf_xml_state)lx->state) {
        case SF_XS_TEXT:
            if (lx->level != 1) {
                if (!(lx->flags & (SF_XF_STARTED | SF_XF_BOM)) && cp == 0xFEFF && i == 0) {
                    lx->flags |= SF_XF_BOM; /* a byte-order mark, first in the template */
                    break;
                }
                if (c == '<') {
                    lx->flags = (uint8_t)((lx->flags & ~SF_XF_AT_START) |
                                          (lx->flags & SF_XF_STARTED ? 0 : SF_XF_AT_START));
                    lx->flags |= SF_XF_STARTED;
                    lx->state = SF_XS_LT;
                    break;
                }
                lx->flags |= SF_XF_STARTED;
                if (!is_space(c))
                    return fail(ev, i, "text outside the root element (only white space, "
                                       "comments and PIs may sit %s it)",
                                lx->level ? "after" : "before");
                break;
            }
            if (c == '<') {
                lx->state = SF_XS_LT, lx->match = 0;
            } else if (c == '&') {
                lx->state = SF_XS_REF, lx->sub = REF_START, lx->ret = SF_XS_TEXT;
                lx->mark = (uint32_t)next, lx->cp = 0, lx->match = 0;
            } else if (c == ']') {
                lx->match = lx->match < 2 ? (uint8_t)(lx->match + 1) : 2;
            } else if (c == '>' && lx->match == 2) {
                return fail(ev, i, "']]>' in element text (write ]]&gt;)");
            } else {
                lx->match = 0;
            }
            break;

        case SF_XS_REF:
            switch (lx->sub) {
            case REF_START:
                if (c == '#')
                    lx->sub = REF_HASH;
                else if (name_start(cp))
                    lx->sub = REF_NAME;
                else
                    return fail(ev, i - 1, "'&' must start a reference (write &amp; for a "
                                           "literal '&')");
                break;
            case REF_HASH:
                if (c == 'x')
                    lx->sub = REF_HEX;
                else if (c >= '0' && c <= '9')
                    lx->sub = REF_DEC, lx->cp = c - '0';
                else
                    return fail(ev, i - 2, "malformed character reference");
                break;
            case REF_NAME:
                if (c == ';') {
                    if ((r = end_ref(lx, src, i, ev)) != SIZE_MAX)
                        return r;
                } else if (!name_char(cp)) {
                    return fail(ev, lx->mark - 1, "reference without its ';'");
                }
                break;
            default: { /* REF_DEC, REF_HEX, REF_HEXD */
                int hex = lx->sub != REF_DEC;
                int d = c >= '0' && c <= '9'   ? c - '0'
                        : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                      : -1;
                if (d >= 0) {
                    uint32_t v = lx->cp * (hex ? 16u : 10u) + (uint32_t)d;
                    lx->cp = v > 0x110000 ? 0x110000 : v;
                    if (lx->sub == REF_HEX)
                        lx->sub = REF_HEXD;
                } else if (c == ';' && lx->sub != REF_HEX) {
                    if ((r = end_ref(lx, src, i, ev)) != SIZE_MAX)
                        return r;
                } else {
                    return fail(ev, lx->mark - 1, "malformed character reference");
                }
            }
            }
            break;

        case SF_XS_LT:
            if (c == '/') {
                lx->state = SF_XS_ETAG, lx->sub = 0;
            } else if (c == '?') {
                lx->state = SF_XS_PI_TARGET, lx->sub = 0, lx->ret = SF_XS_TEXT;
            } else if (c == '!') {
                lx->state = SF_XS_BANG, lx->sub = 0;
                lx->match = BANG_COMMENT | BANG_DOCTYPE | BANG_CDATA;
            } else if (name_start(cp)) {
                lx->state = SF_XS_STAG_NAME, lx->mark = (uint32_t)i;
            } else {
                return fail(ev, i - 1, "'<' must start a tag (write &lt; for a literal '<')");
            }
            break;

        case SF_XS_STAG_NAME:
            if (name_char(cp))
                break;
            lx->state = SF_XS_TAG, lx->sub = TAG_NEED_SPACE;
            return event(ev, SF_XE_STAG, lx->mark - 1, lx->mark, i - lx->mark, i);

        case SF_XS_TAG:
            if (lx->sub == TAG_SLASH) {
                if (c != '>')
                    return fail(ev, i - 1, "'/' in a tag must be followed by '>'");
                lx->state = SF_XS_TEXT, lx->match = 0;
                return event(ev, SF_XE_EMPTY, i - 1, 0, 0, next);
            }
            if (lx->sub == TAG_AFTER_ANAME) {
                if (c == '=')
                    lx->sub = TAG_AFTER_EQ;
                else if (!is_space(c))
                    return fail(ev, i, "an attribute needs =\"value\"");
                break;
            }
            if (lx->sub == TAG_AFTER_EQ) {
                if (c == '"')
                    lx->state = SF_XS_ATTR_DQ, lx->vmark = (uint32_t)next;
                else if (c == '\'')
                    lx->state = SF_XS_ATTR_SQ, lx->vmark = (uint32_t)next;
                else if (!is_space(c))
                    return fail(ev, i, "an attribute value must be quoted");
                break;
            }
            if (is_space(c)) {
                lx->sub = TAG_SPACE;
            } else if (c == '>') {
                lx->state = SF_XS_TEXT, lx->match = 0;
                return event(ev, SF_XE_STAG_END, i, 0, 0, next);
            } else if (c == '/') {
                lx->sub = TAG_SLASH;
            } else if (name_start(cp) && lx->sub == TAG_SPACE) {
                lx->state = SF_XS_ATTR_NAME, lx->mark = (uint32_t)i;
            } else if (name_start(cp)) {
                return fail(ev, i, "attributes must be separated by white space");
            } else {
                return fail(ev, i, "unexpected '%.*s' in a tag", (int)clen, src + i);
            }
            break;

        case SF_XS_ATTR_NAME:
            if (name_char(cp))
                break;
            lx->state = SF_XS_TAG, lx->sub = TAG_AFTER_ANAME;
            return event(ev, SF_XE_ATTR, lx->mark, lx->mark, i - lx->mark, i);

        case SF_XS_ATTR_DQ:
        case SF_XS_ATTR_SQ:
            if (c == (lx->state == SF_XS_ATTR_DQ ? '"' : '\'')) {
                lx->state = SF_XS_TAG, lx->sub = TAG_NEED_SPACE;
                return event(ev, SF_XE_ATTR_END, i, lx->vmark, i - lx->vmark, next);
            } else if (c == '<') {
                return fail(ev, i, "'<' in an attribute value (write &lt;)");
            } else if (c == '&') {
                lx->ret = lx->state;
                lx->state = SF_XS_REF, lx->sub = REF_START;
                lx->mark = (uint32_t)next, lx->cp = 0;
            }
            break;

        case SF_XS_ETAG:
            if (lx->sub == 0) {
                if (!name_start(cp))
                    return fail(ev, i, "'</' must be followed by an element name");
                lx->sub = 1, lx->mark = (uint32_t)i;
            } else if (lx->sub == 1 && name_char(cp)) {
                /* in the name */
            } else {
                if (lx->sub == 1)
                    lx->sub = 2, lx->cp = (uint32_t)(i - lx->mark);
                if (c == '>') {
                    lx->state = SF_XS_TEXT, lx->match = 0;
                    return event(ev, SF_XE_ETAG, lx->mark - 2, lx->mark, lx->cp, next);
                }
                if (!is_space(c))
                    return fail(ev, i, "unexpected '%.*s' in an end tag", (int)clen, src + i);
            }
            break;

        case SF_XS_BANG: {
            unsigned m = 0;
            for (unsigned k = 0; k < 3; k++)
                if ((lx->match & (1u << k)) && bang_word[k][lx->sub] == (char)c)
                    m |= 1u << k;
            if (!m)
                return fail(ev, i - 2 - lx->sub, "'<!' must start a comment <!--, a CDATA "
                                                  "section <![CDATA[ or <!DOCTYPE");
            lx->match = (uint8_t)m;
            lx->sub++;
            for (unsigned k = 0; k < 3; k++) {
                if (!(m & (1u << k)) || bang_word[k][lx->sub] != '\0')
                    continue;
                lx->sub = lx->match = 0;
                if (k == 0) {
                    lx->state = SF_XS_COMMENT;
                } else if (k == 1) {
                    if (lx->level != 1)
                        return fail(ev, i - 8, "a CDATA section outside the root element");
                    lx->state = SF_XS_CDATA;
                } else {
                    if (lx->level != 0 || (lx->flags & SF_XF_DOCTYPE))
                        return fail(ev, i - 8, "a DOCTYPE must come once, before the root "
                                               "element");
                    lx->state = SF_XS_DOCTYPE;
                    lx->flags |= SF_XF_DOCTYPE;
                    return event(ev, SF_XE_DOCTYPE, i - 8, 0, 0, next);
                }
            }
            break;
        }

        case SF_XS_COMMENT:
        case SF_XS_DT_COMMENT:
            if (lx->match == 2) {
                if (c != '>')
                    return fail(ev, i - 2, c == '-' ? "a comment cannot end with '-' ('--->')"
                                                    : "'--' inside a comment");
                lx->state = lx->state == SF_XS_COMMENT ? SF_XS_TEXT : SF_XS_DT_SUBSET;
                lx->match = 0;
            } else if (c == '-') {
                lx->match++;
            } else {
                lx->match = 0;
            }
            break;

        case SF_XS_CDATA:
            if (c == ']')
                lx->match = lx->match < 2 ? (uint8_t)(lx->match + 1) : 2;
            else if (c == '>' && lx->match == 2)
                lx->state = SF_XS_TEXT, lx->match = 0;
            else
                lx->match = 0;
            break;

        case SF_XS_PI_TARGET:
            if (lx->sub == 0) {
                if (!name_start(cp))
                    return fail(ev, i - 2, "'<?' must be followed by a target name");
                lx->sub = 1, lx->mark = (uint32_t)i;
                break;
            }
            if (name_char(cp))
                break;
            if (i - lx->mark == 3 && strncasecmp(src + lx->mark, "xml", 3) == 0) {
                if (lx->ret == SF_XS_DT_SUBSET)
                    return fail(ev, lx->mark - 2, "'<?%.3s' is reserved: a PI in the internal "
                                                  "subset cannot be the XML declaration",
                                src + lx->mark);
                if (memcmp(src + lx->mark, "xml", 3) != 0 || !(lx->flags & SF_XF_AT_START) ||
                    lx->level != 0)
                    return fail(ev, lx->mark - 2,
                                "'<?%.3s' is reserved: the XML declaration must be the first "
                                "thing in the template's output",
                                src + lx->mark);
                lx->flags |= SF_XF_XMLDECL;
                lx->mark += 3;
            }
            lx->state = lx->ret == SF_XS_DT_SUBSET ? SF_XS_DT_PI : SF_XS_PI;
            lx->sub = 0, lx->match = 0, lx->ret = 0;
            if (c == '?')
                lx->match = 1, lx->sub = 1; /* "<?target?" : only '>' may follow */
            else if (!is_space(c))
                return fail(ev, i, "a PI target must be followed by white space or '?>'");
            break;

        case SF_XS_PI:
        case SF_XS_DT_PI:
            if (lx->sub == 1 && c != '>')
                return fail(ev, i - 1, "a PI target must be followed by white space or '?>'");
            lx->sub = 0;
            if (c == '?') {
                lx->match = 1;
            } else if (c == '>' && lx->match == 1) {
                lx->match = 0;
                if (lx->state == SF_XS_DT_PI) {
                    lx->state = SF_XS_DT_SUBSET;
                    break;
                }
                lx->state = SF_XS_TEXT;
                if (lx->flags & SF_XF_XMLDECL) {
                    lx->flags &= (uint8_t)~SF_XF_XMLDECL;
                    size_t r2 = check_xmldecl(src, lx->mark, i - 1 - lx->mark, ev);
                    if (ev->type == SF_XE_ERROR)
                        return r2;
                }
            } else {
                lx->match = 0;
            }
            break;

        case SF_XS_DOCTYPE:
            /* doctypedecl ::= '<!DOCTYPE' S Name (S ExternalID)? S? ('[' intSubset ']' S?)? '>'
             * ExternalID ::= 'SYSTEM' S SystemLiteral | 'PUBLIC' S PubidLiteral S SystemLiteral */
            switch (lx->sub) {
            case 0:
                if (!is_space(c))
                    return fail(ev, i, "<!DOCTYPE must be followed by white space and a name");
                lx->sub = 1;
                break;
            case 1:
                if (name_start(cp))
                    lx->sub = 2;
                else if (!is_space(c))
                    return fail(ev, i, "<!DOCTYPE needs the root element's name");
                break;
            case 2: /* the name */
                if (name_char(cp))
                    break;
                lx->sub = 3;
                /* fall through */
            case 3: /* after the name */
            case 4: /* after white space that follows it */
                if (c == 'S' || c == 'P') {
                    if (lx->sub != 4)
                        return fail(ev, i, "white space must come before SYSTEM or PUBLIC");
                    lx->sub = 5, lx->mark = (uint32_t)i;
                } else if (c == '[') {
                    lx->state = SF_XS_DT_SUBSET;
                } else if (c == '>') {
                    lx->state = SF_XS_TEXT, lx->sub = 0;
                } else if (is_space(c)) {
                    lx->sub = 4;
                } else {
                    return fail(ev, i, "unexpected '%.*s' in <!DOCTYPE (SYSTEM \"...\", "
                                       "PUBLIC \"...\" \"...\", [...] may follow the name)",
                                (int)clen, src + i);
                }
                break;
            case 5: /* SYSTEM or PUBLIC */
                if (c >= 'A' && c <= 'Z')
                    break;
                if (i - lx->mark == 6 && memcmp(src + lx->mark, "SYSTEM", 6) == 0)
                    lx->cp = 1;
                else if (i - lx->mark == 6 && memcmp(src + lx->mark, "PUBLIC", 6) == 0)
                    lx->cp = 2;
                else
                    return fail(ev, lx->mark, "<!DOCTYPE: SYSTEM or PUBLIC expected");
                lx->sub = 6;
                /* fall through */
            case 6: /* white space, then a literal */
            case 8:
                if (!is_space(c))
                    return fail(ev, i, "<!DOCTYPE: white space and a quoted literal expected");
                lx->sub = (uint8_t)(lx->sub + 1);
                break;
            case 7: /* the first literal (system, or public id) */
            case 9: /* the system literal after a public id */
                if (c == '"' || c == '\'')
                    lx->state = SF_XS_DT_LIT, lx->quote = c;
                else if (!is_space(c))
                    return fail(ev, i, "<!DOCTYPE: a quoted literal expected");
                break;
            case 10: /* after the external id */
                if (c == '[')
                    lx->state = SF_XS_DT_SUBSET;
                else if (c == '>')
                    lx->state = SF_XS_TEXT, lx->sub = 0;
                else if (!is_space(c))
                    return fail(ev, i, "<!DOCTYPE: '[' or '>' expected");
                break;
            default: /* 11: after the internal subset */
                if (c == '>')
                    lx->state = SF_XS_TEXT, lx->sub = 0;
                else if (!is_space(c))
                    return fail(ev, i, "only '>' may follow the DOCTYPE's internal subset");
            }
            break;

        case SF_XS_DT_LIT: /* a DOCTYPE's literal: sub 7 or 9 says which */
            if (c == lx->quote) {
                lx->state = SF_XS_DOCTYPE, lx->quote = 0;
                lx->sub = lx->sub == 7 && lx->cp == 2 ? 8 : 10;
            } else if (lx->sub == 7 && lx->cp == 2 &&
                       !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         (c && strchr(" \r\n-'()+,./:=?;!*#@$_%", c)))) {
                return fail(ev, i, "'%.*s' cannot be in a public identifier", (int)clen, src + i);
            }
            break;
        case SF_XS_DT_DECL_LIT:
            if (c == lx->quote)
                lx->state = lx->ret, lx->quote = 0;
            break;

        case SF_XS_DT_SUBSET:
            if (c == ']')
                lx->state = SF_XS_DOCTYPE, lx->sub = 11;
            else if (c == '<')
                lx->state = SF_XS_DT_LT, lx->sub = 0, lx->mark = (uint32_t)i;
            else if (c == '%')
                lx->state = SF_XS_DT_PEREF, lx->sub = 0;
            else if (!is_space(c))
                return fail(ev, i, "unexpected '%.*s' in the DOCTYPE's internal subset",
                            (int)clen, src + i);
            break;

        case SF_XS_DT_LT:
            if (lx->sub == 0 && c == '?') {
                lx->state = SF_XS_PI_TARGET, lx->sub = 0, lx->ret = SF_XS_DT_SUBSET;
            } else if (lx->sub == 0 && c == '!') {
                lx->sub = 1;
            } else if (lx->sub == 1 && c == '-') {
                lx->sub = 2;
            } else if (lx->sub == 2 && c == '-') {
                lx->state = SF_XS_DT_COMMENT, lx->match = 0;
            } else if (lx->sub == 1 && c >= 'A' && c <= 'Z') {
                lx->state = SF_XS_DT_DECL;
            } else {
                return fail(ev, i, "the internal subset holds only <!ELEMENT, <!ATTLIST, "
                                   "<!ENTITY, <!NOTATION, comments, PIs and %%references;");
            }
            break;

        case SF_XS_DT_DECL:
            if (c == '"' || c == '\'')
                lx->state = SF_XS_DT_DECL_LIT, lx->quote = c, lx->ret = SF_XS_DT_DECL;
            else if (c == '>') {
                lx->state = SF_XS_DT_SUBSET;
                r = check_markupdecl(src, lx->mark, i, ev);
                if (ev->type == SF_XE_ERROR)
                    return r;
            } else if (c == '<') {
                return fail(ev, i, "'<' inside a markup declaration");
            }
            break;

        case SF_XS_DT_PEREF:
            if (lx->sub == 0 && name_start(cp))
                lx->sub = 1;
            else if (lx->sub == 1 && c == ';')
                lx->state = SF_XS_DT_SUBSET;
            else if (!(lx->sub == 1 && name_char(cp)))
                return fail(ev, i, "malformed parameter-entity reference");
            break;

        case SF_XS_COUNT:
            break;
        }
        i = next;
    }
    return end;
}

int sf_xml_flush(sf_xml_lexer *lx, size_t at, sf_xml_event *ev)
{
    ev->type = SF_XE_NONE;
    if (lx->state == SF_XS_STAG_NAME) {
        lx->state = SF_XS_TAG, lx->sub = TAG_NEED_SPACE;
        event(ev, SF_XE_STAG, lx->mark - 1, lx->mark, at - lx->mark, at);
        return 1;
    }
    if (lx->state == SF_XS_ATTR_NAME) {
        lx->state = SF_XS_TAG, lx->sub = TAG_AFTER_ANAME;
        event(ev, SF_XE_ATTR, lx->mark, lx->mark, at - lx->mark, at);
        return 1;
    }
    return 0;
}

int sf_xml_context(const sf_xml_lexer *lx, sf_esc *esc)
{
    switch ((sf_xml_state)lx->state) {
    case SF_XS_TEXT:
        if (lx->level != 1)
            return -1;
        *esc = SF_ESC_TEXT;
        return 0;
    case SF_XS_ATTR_DQ:
    case SF_XS_ATTR_SQ: *esc = SF_ESC_ATTR; return 0;
    case SF_XS_CDATA: *esc = SF_ESC_CDATA; return 0;
    case SF_XS_COMMENT:
        if (lx->match == 2)
            return -1; /* after "--": only '>' may follow */
        *esc = SF_ESC_COMMENT;
        return 0;
    default: return -1;
    }
}

int sf_xml_in_token(const sf_xml_lexer *lx)
{
    switch ((sf_xml_state)lx->state) {
    case SF_XS_REF:
    case SF_XS_LT:
    case SF_XS_STAG_NAME:
    case SF_XS_ATTR_NAME:
    case SF_XS_BANG:
    case SF_XS_PI_TARGET:
    case SF_XS_DT_LT:
    case SF_XS_DT_DECL:
    case SF_XS_DT_DECL_LIT:
    case SF_XS_DT_PEREF: return 1;
    case SF_XS_ETAG: return lx->sub == 1;
    case SF_XS_PI: return (lx->flags & SF_XF_XMLDECL) != 0;
    case SF_XS_DOCTYPE: return lx->sub == 2 || lx->sub == 5;
    default: return 0;
    }
}

int sf_xml_boundary_ok(const sf_xml_lexer *lx)
{
    switch ((sf_xml_state)lx->state) {
    case SF_XS_PI: return lx->match == 0 && !(lx->flags & SF_XF_XMLDECL);
    case SF_XS_TEXT:
    case SF_XS_CDATA:
    case SF_XS_COMMENT: return lx->match == 0;
    case SF_XS_ATTR_DQ:
    case SF_XS_ATTR_SQ:
    case SF_XS_DT_SUBSET: return 1;
    case SF_XS_TAG: return lx->sub == TAG_SPACE || lx->sub == TAG_NEED_SPACE;
    default: return 0;
    }
}

int sf_xml_same_context(const sf_xml_lexer *a, const sf_xml_lexer *b)
{
    if (a->state != b->state || a->level != b->level)
        return 0;
    switch ((sf_xml_state)a->state) {
    case SF_XS_TEXT: /* ']' progress: checked by the compiler at a section's end */
    case SF_XS_TAG:  /* both between attributes: merged */
    case SF_XS_ATTR_DQ:
    case SF_XS_ATTR_SQ:
    case SF_XS_DT_SUBSET: return 1;
    default: return a->match == b->match && a->sub == b->sub;
    }
}

void sf_xml_normalize(sf_xml_lexer *lx)
{
    lx->mark = lx->cp = 0;
    lx->ret = lx->pad = lx->quote = 0;
    lx->vmark = 0;
    lx->flags &= SF_XF_STARTED | SF_XF_DOCTYPE | SF_XF_BOM;
    if (lx->state != SF_XS_TAG)
        lx->sub = 0;
}

void sf_xml_merge(sf_xml_lexer *close, const sf_xml_lexer *open)
{
    if (close->state == SF_XS_TAG && open->sub == TAG_NEED_SPACE)
        close->sub = TAG_NEED_SPACE;
    close->flags |= open->flags & (SF_XF_STARTED | SF_XF_DOCTYPE | SF_XF_BOM);
}

const char *sf_xml_state_name(const sf_xml_lexer *lx)
{
    switch ((sf_xml_state)lx->state) {
    case SF_XS_TEXT:
        return lx->level == 0   ? "the prolog, before the root element"
               : lx->level == 2 ? "the end of the document, after the root element"
                                : "element text";
    case SF_XS_REF: return "a reference";
    case SF_XS_LT: return "a tag being opened";
    case SF_XS_STAG_NAME:
    case SF_XS_ETAG: return "a tag name";
    case SF_XS_TAG: return "markup (between attributes)";
    case SF_XS_ATTR_NAME: return "an attribute name";
    case SF_XS_ATTR_DQ: return "a double-quoted attribute value";
    case SF_XS_ATTR_SQ: return "a single-quoted attribute value";
    case SF_XS_BANG: return "a declaration being opened";
    case SF_XS_CDATA: return "a CDATA section";
    case SF_XS_COMMENT: return "a comment";
    case SF_XS_PI_TARGET:
    case SF_XS_PI: return "a processing instruction";
    case SF_XS_DOCTYPE:
    case SF_XS_DT_LIT: return "a DOCTYPE";
    case SF_XS_DT_SUBSET:
    case SF_XS_DT_LT:
    case SF_XS_DT_DECL:
    case SF_XS_DT_DECL_LIT:
    case SF_XS_DT_COMMENT:
    case SF_XS_DT_PI:
    case SF_XS_DT_PEREF: return "the DOCTYPE's internal subset";
    case SF_XS_COUNT: break;
    }
    return "?";
}

int sf_xml_qname_ok(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return 1;
    size_t k = (size_t)(colon - s), len;
    if (k == 0 || k + 1 >= n || memchr(colon + 1, ':', n - k - 1))
        return 0;
    return name_start(decode(s, k + 1, n, &len));
}

static size_t put_utf8(char *o, uint32_t c)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | c >> 6), o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | c >> 18), o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F)), o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

size_t sf_xml_attr_value(const char *s, size_t n, char *out)
{
    static const char *const names[5] = {"lt", "gt", "amp", "apos", "quot"};
    static const char chars[5] = {'<', '>', '&', '\'', '"'};
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (c != '&') {
            out[o++] = c == '\t' || c == '\n' || c == '\r' ? ' ' : c;
            i++;
            continue;
        }
        const char *semi = memchr(s + i, ';', n - i);
        size_t len = semi ? (size_t)(semi - s) - i - 1 : 0;
        if (!semi) { /* not from the lexer: copy */
            out[o++] = c, i++;
            continue;
        }
        if (len > 1 && s[i + 1] == '#') {
            int hex = s[i + 2] == 'x';
            uint32_t v = 0;
            for (size_t k = i + 2 + (size_t)hex; k < i + 1 + len; k++) {
                char d = s[k];
                v = v * (hex ? 16u : 10u) +
                    (uint32_t)(d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
                if (v > 0x10FFFF)
                    v = 0xFFFD;
            }
            o += put_utf8(out + o, v); /* a reference is at least 4 bytes */
        } else {
            char ch = '?';
            for (int k = 0; k < 5; k++)
                if (strlen(names[k]) == len && memcmp(s + i + 1, names[k], len) == 0)
                    ch = chars[k];
            out[o++] = ch;
        }
        i += len + 2;
    }
    return o;
}
