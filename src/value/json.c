/* json.c: the lazy JSON view (value/json.h).
 *
 * sf_json_view() validates the whole text first (validate()), in one pass
 * with no allocation: RFC 8259's grammar, strings of valid UTF-8 (section
 * 8.1; the character filter is never asked to repair a JSON string), at
 * most SF_JSON_MAX_DEPTH arrays and objects open at once (a 64-bit stack of
 * "array or object" bits). Everything after that reads text it knows to be
 * well formed: skipping a value is counting brackets outside strings, a
 * scalar inside a container ends at the first delimiter, and no step checks
 * for the end of the text except the top level's scalar.
 *
 * An array is a `jlist`: where its first element starts and a cursor (the
 * start of element `idx`), so a walk asking 0, 1, 2, ... skips each element
 * once (O(n) for the walk); any other index restarts from the first element
 * (a second walk, or one list walked inside itself, stays correct). An
 * object is a `jmap`: where its first member starts; a lookup scans the
 * members and compares each key, decoded on the fly, with the name; the
 * FIRST member with that key wins (the scan stops there; SQLite's
 * json_extract also reads the first of duplicate keys; json_object,
 * json_build_object and JSON_OBJECT from a child table write unique keys).
 * A string without a backslash is text pointing into the column; one with
 * escapes is decoded into the arena (never longer than its escaped form).
 * \uXXXX pairs of surrogates decode to one code point; a lone surrogate
 * (valid in the grammar, not a Unicode scalar value) decodes to U+FFFD, the
 * way the character filter treats any byte sequence that is not one. Each
 * list or map value the template reaches costs one small state from the
 * arena, which the next row's reset gives back. */
#include <stdio.h>
#include <string.h>

#include "json.h"

#define STR_(x) #x
#define STR(x) STR_(x)

typedef struct jlist {
    sf_arena *a;
    const char *first; /* the first element, or the ']' of an empty array */
    const char *cur;   /* the start of element idx, or the closing ']' */
    size_t idx;
} jlist;

typedef struct jmap {
    sf_arena *a;
    const char *first; /* the first member's key, or the closing '}' */
} jmap;

static int list_item(void *obj, size_t idx, sf_val *out);
static int map_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out);
static const sf_data_ops list_ops = {NULL, list_item};
static const sf_data_ops map_ops = {map_lookup, NULL};

/* ---- validation ---------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The 4 hex digits at p (known to be there after validation). */
static unsigned hex4(const char *p)
{
    return (unsigned)(hexval(p[0]) << 12 | hexval(p[1]) << 8 | hexval(p[2]) << 4 | hexval(p[3]));
}

typedef struct vstate {
    const char *s, *p, *e;
    const char *msg; /* what was expected at p */
} vstate;

static int vfail(vstate *v, const char *at, const char *msg)
{
    v->p = at;
    v->msg = msg;
    return -1;
}

/* One UTF-8 sequence at p (p[0] >= 0x80): its length, or 0 when invalid
 * (Unicode Table 3-7: no overlong forms, no surrogates, at most U+10FFFF). */
static size_t utf8_len(const unsigned char *p, const unsigned char *e)
{
    unsigned c = p[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if ((size_t)(e - p) < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < need; k++)
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    return need;
}

/* A string at v->p (the opening quote); v->p ends after the closing one. */
static int vstring(vstate *v)
{
    const char *p = v->p + 1, *e = v->e;
    for (;;) {
        if (p == e)
            return vfail(v, p, "a closing '\"'");
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            v->p = p + 1;
            return 0;
        }
        if (c < 0x20)
            return vfail(v, p, "a control character written as an escape (\\n, \\u0001)");
        if (c == '\\') {
            if (p + 1 == e)
                return vfail(v, p + 1, "an escape after '\\'");
            char x = p[1];
            if (x == 'u') {
                for (int k = 0; k < 4; k++)
                    if (p + 2 + k == e || hexval(p[2 + k]) < 0)
                        return vfail(v, p + 2 + k, "4 hex digits after \\u");
                p += 6;
            } else if (x == '"' || x == '\\' || x == '/' || x == 'b' || x == 'f' || x == 'n' ||
                       x == 'r' || x == 't') {
                p += 2;
            } else {
                return vfail(v, p + 1, "an escape: one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX");
            }
        } else if (c >= 0x80) {
            size_t k = utf8_len((const unsigned char *)p, (const unsigned char *)e);
            if (!k)
                return vfail(v, p, "valid UTF-8");
            p += k;
        } else {
            p++;
        }
    }
}

static int digit(const char *p, const char *e)
{
    return p < e && *p >= '0' && *p <= '9';
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int vnumber(vstate *v)
{
    const char *p = v->p, *e = v->e;
    if (*p == '-')
        p++;
    if (!digit(p, e))
        return vfail(v, p, "a digit");
    if (*p == '0') {
        p++;
        if (digit(p, e))
            return vfail(v, p, "no digit after a leading 0");
    } else {
        while (digit(p, e))
            p++;
    }
    if (p < e && *p == '.') {
        p++;
        if (!digit(p, e))
            return vfail(v, p, "a digit after '.'");
        while (digit(p, e))
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (!digit(p, e))
            return vfail(v, p, "a digit in the exponent");
        while (digit(p, e))
            p++;
    }
    v->p = p;
    return 0;
}

static int vword(vstate *v, const char *w, size_t n)
{
    if ((size_t)(v->e - v->p) < n || memcmp(v->p, w, n) != 0)
        return vfail(v, v->p, "a value (object, array, string, number, true, false, null)");
    v->p += n;
    return 0;
}

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && is_ws(*p))
        p++;
    return p;
}

/* The whole text: one value, white space around it. Iterative: `stack`
 * holds a bit per open container (1: object). */
static int validate(vstate *v)
{
    uint64_t stack = 0;
    int depth = 0;
    const char *e = v->e;
    v->p = skip_ws(v->p, e);
    for (;;) {
        /* A value at v->p. */
        if (v->p == e)
            return vfail(v, v->p, "a value (object, array, string, number, true, false, null)");
        char c = *v->p;
        if (c == '[' || c == '{') {
            if (depth == SF_JSON_MAX_DEPTH)
                return vfail(v, v->p, "at most " STR(SF_JSON_MAX_DEPTH) " arrays and objects open at once");
            stack = stack << 1 | (c == '{');
            depth++;
            v->p = skip_ws(v->p + 1, e);
            if (v->p < e && *v->p == (c == '[' ? ']' : '}')) {
                v->p++;
                depth--;
                stack >>= 1;
                goto after_value;
            }
            if (c == '{')
                goto key;
            continue;
        }
        if (c == '"') {
            if (vstring(v))
                return -1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (vnumber(v))
                return -1;
        } else if (c == 't') {
            if (vword(v, "true", 4))
                return -1;
        } else if (c == 'f') {
            if (vword(v, "false", 5))
                return -1;
        } else if (c == 'n') {
            if (vword(v, "null", 4))
                return -1;
        } else {
            return vfail(v, v->p, "a value (object, array, string, number, true, false, null)");
        }
    after_value:
        v->p = skip_ws(v->p, e);
        if (depth == 0) {
            if (v->p != e)
                return vfail(v, v->p, "the end of the text after the value");
            return 0;
        }
        int obj = (int)(stack & 1);
        if (v->p < e && *v->p == ',') {
            v->p = skip_ws(v->p + 1, e);
            if (!obj)
                continue;
            goto key;
        }
        if (v->p < e && *v->p == (obj ? '}' : ']')) {
            v->p++;
            depth--;
            stack >>= 1;
            goto after_value;
        }
        return vfail(v, v->p, obj ? "',' or '}'" : "',' or ']'");
    key:
        if (v->p == e || *v->p != '"')
            return vfail(v, v->p, "a member's name in '\"'");
        if (vstring(v))
            return -1;
        v->p = skip_ws(v->p, e);
        if (v->p == e || *v->p != ':')
            return vfail(v, v->p, "':' after the member's name");
        v->p = skip_ws(v->p + 1, e);
    }
}

/* ---- reading validated text ---------------------------------------------- */

/* Past the string whose opening quote is at p; *esc set when it has a
 * backslash. */
static const char *skip_string(const char *p, int *esc)
{
    p++;
    for (;;) {
        char c = *p;
        if (c == '"')
            return p + 1;
        if (c == '\\') {
            *esc = 1;
            p += 2; /* \uXXXX's digits are no quote or backslash */
        } else {
            p++;
        }
    }
}

/* Past the value at p, inside a container (so a delimiter follows it). */
static const char *skip_value(const char *p)
{
    int esc = 0;
    char c = *p;
    if (c == '"')
        return skip_string(p, &esc);
    if (c != '[' && c != '{') {
        while (*p != ',' && *p != ']' && *p != '}' && !is_ws(*p))
            p++;
        return p;
    }
    size_t depth = 0;
    for (;;) {
        c = *p;
        if (c == '"') {
            p = skip_string(p, &esc);
            continue;
        }
        if (c == '[' || c == '{')
            depth++;
        else if ((c == ']' || c == '}') && --depth == 0)
            return p + 1;
        p++;
    }
}

/* Inside validated text white space is always followed by something. */
static const char *ws(const char *p)
{
    while (is_ws(*p))
        p++;
    return p;
}

static void put_utf8(char **o, unsigned long cp)
{
    unsigned char *q = (unsigned char *)*o;
    if (cp < 0x80) {
        *q++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *q++ = (unsigned char)(0xC0 | cp >> 6);
        *q++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *q++ = (unsigned char)(0xE0 | cp >> 12);
        *q++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *q++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *q++ = (unsigned char)(0xF0 | cp >> 18);
        *q++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *q++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *q++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    *o = (char *)q;
}

/* The escape at p (p[0] == '\\'): its code point, *p moved past it (a
 * surrogate pair is one escape of 12 bytes; a lone surrogate is U+FFFD). */
static unsigned long unescape(const char **pp)
{
    const char *p = *pp;
    char x = p[1];
    *pp = p + 2;
    switch (x) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': break;
    default: return (unsigned char)x; /* " \ / */
    }
    unsigned long u = hex4(p + 2);
    *pp = p + 6;
    if (u >= 0xDC00 && u <= 0xDFFF)
        return 0xFFFD;
    if (u >= 0xD800 && u <= 0xDBFF) {
        if (p[6] == '\\' && p[7] == 'u') {
            unsigned long lo = hex4(p + 8);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                *pp = p + 12;
                return 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
        }
        return 0xFFFD;
    }
    return u;
}

/* The string at p (its opening quote) as text; -1 when the arena refused. */
static int string_val(sf_arena *a, const char *p, sf_val *out)
{
    int esc = 0;
    const char *end = skip_string(p, &esc) - 1; /* the closing quote */
    out->kind = SF_VAL_TEXT;
    out->ops = NULL;
    out->obj = NULL;
    if (!esc) {
        out->s = p + 1;
        out->n = (size_t)(end - p - 1);
        out->truthy = out->n > 0;
        return 0;
    }
    char *buf = sf_arena_alloc(a, (size_t)(end - p - 1), 1);
    if (!buf)
        return -1;
    char *o = buf;
    for (const char *q = p + 1; q < end;) {
        if (*q != '\\') {
            *o++ = *q++;
            continue;
        }
        put_utf8(&o, unescape(&q));
    }
    out->s = buf;
    out->n = (size_t)(o - buf);
    out->truthy = out->n > 0;
    return 0;
}

/* A number is falsy when it is zero ("0", "-0", "0.0e5"), as a database's
 * numbers are (docs/template.md). */
static int number_truthy(const char *p, const char *e)
{
    for (; p < e && *p != 'e' && *p != 'E'; p++)
        if (*p >= '1' && *p <= '9')
            return 1;
    return 0;
}

/* The value at p as an sf_val; `e` bounds a scalar (the text's end at the
 * top level, NULL inside a container). 0, or -1 when the arena refused. */
static int make_val(sf_arena *a, const char *p, const char *e, sf_val *out)
{
    out->ops = NULL;
    out->obj = NULL;
    switch (*p) {
    case '"':
        return string_val(a, p, out);
    case '[': {
        jlist *l = sf_arena_alloc(a, sizeof *l, _Alignof(jlist));
        if (!l)
            return -1;
        l->a = a;
        l->first = l->cur = ws(p + 1);
        l->idx = 0;
        out->kind = SF_VAL_LIST;
        out->truthy = *l->first != ']';
        out->s = "";
        out->n = 0;
        out->ops = &list_ops;
        out->obj = l;
        return 0;
    }
    case '{': {
        jmap *m = sf_arena_alloc(a, sizeof *m, _Alignof(jmap));
        if (!m)
            return -1;
        m->a = a;
        m->first = ws(p + 1);
        out->kind = SF_VAL_MAP;
        out->truthy = 1;
        out->s = "";
        out->n = 0;
        out->ops = &map_ops;
        out->obj = m;
        return 0;
    }
    case 't':
        out->kind = SF_VAL_BOOL;
        out->truthy = 1;
        out->s = p;
        out->n = 4;
        return 0;
    case 'f':
        out->kind = SF_VAL_BOOL;
        out->truthy = 0;
        out->s = p;
        out->n = 5;
        return 0;
    case 'n':
        out->kind = SF_VAL_NULL;
        out->truthy = 0;
        out->s = "";
        out->n = 0;
        return 0;
    default: {
        const char *q = p;
        if (e) {
            while (q < e && !is_ws(*q))
                q++;
        } else {
            q = skip_value(p);
        }
        out->kind = SF_VAL_TEXT;
        out->s = p;
        out->n = (size_t)(q - p);
        out->truthy = (uint8_t)number_truthy(p, q);
        return 0;
    }
    }
}

/* After the element at p: the next one, or the closing ']'. */
static const char *next_elem(const char *p)
{
    p = ws(skip_value(p));
    return *p == ',' ? ws(p + 1) : p;
}

static int list_item(void *obj, size_t idx, sf_val *out)
{
    jlist *l = obj;
    if (idx != l->idx) {
        if (idx == l->idx + 1 && *l->cur != ']') {
            l->cur = next_elem(l->cur);
            l->idx = idx;
        } else {
            /* A new walk (idx 0), or one out of order: from the start. */
            const char *p = l->first;
            size_t i = 0;
            while (i < idx && *p != ']') {
                p = next_elem(p);
                i++;
            }
            l->cur = p;
            l->idx = i;
            if (i < idx)
                return 0;
        }
    }
    if (*l->cur == ']')
        return 0;
    return make_val(l->a, l->cur, NULL, out) ? -1 : 1;
}

/* Whether the key whose opening quote is at p, decoded, is name[0..len);
 * *after is set past its closing quote either way. */
static int key_is(const char *p, const char *name, size_t len, const char **after)
{
    int esc = 0;
    const char *end = skip_string(p, &esc) - 1;
    *after = end + 1;
    p++;
    if (!esc)
        return (size_t)(end - p) == len && memcmp(p, name, len) == 0;
    size_t i = 0;
    while (p < end) {
        if (*p != '\\') {
            if (i == len || name[i] != *p)
                return 0;
            i++, p++;
            continue;
        }
        char u[4];
        char *o = u;
        put_utf8(&o, unescape(&p));
        size_t k = (size_t)(o - u);
        if (len - i < k || memcmp(name + i, u, k) != 0)
            return 0;
        i += k;
    }
    return i == len;
}

static int map_lookup(void *obj, uint32_t sym, const char *name, size_t len, sf_val *out)
{
    jmap *m = obj;
    (void)sym; /* the template's id means nothing to JSON text: compare names */
    const char *p = m->first;
    while (*p != '}') {
        const char *after;
        int hit = key_is(p, name, len, &after);
        p = ws(ws(after) + 1); /* past ':' */
        if (hit)
            return make_val(m->a, p, NULL, out) ? -1 : 1;
        p = ws(skip_value(p));
        if (*p == ',')
            p = ws(p + 1);
    }
    return 0;
}

int sf_json_view(sf_arena *a, const char *s, size_t n, sf_val *out, char *why, size_t whylen)
{
    vstate v = {s, s, s + n, NULL};
    if (validate(&v) != 0) {
        if (whylen) {
            if (v.p < v.e)
                snprintf(why, whylen, "not JSON: at byte %zu ('%c'): expected %s",
                         (size_t)(v.p - s),
                         (unsigned char)*v.p >= 0x20 && (unsigned char)*v.p < 0x7F ? *v.p : '?',
                         v.msg);
            else
                snprintf(why, whylen, "not JSON: at byte %zu (the end): expected %s",
                         (size_t)(v.p - s), v.msg);
        }
        return -1;
    }
    const char *p = skip_ws(s, s + n);
    const char *e = s + n;
    if (make_val(a, p, e, out) != 0) {
        if (whylen)
            snprintf(why, whylen, "%s", a->over ? "the row's values pass the per-row limit"
                                                : "out of memory");
        return -2;
    }
    return 0;
}
