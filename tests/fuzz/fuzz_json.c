/* fuzz_json.c: libFuzzer target for the JSON view (src/value/json.c).
 *
 * The input is one column's text. A reference parser written here, the
 * plain recursive way (a tree in malloc'd nodes), decides what the view
 * must say: JSON or not (RFC 8259, strings of valid UTF-8, at most
 * SF_JSON_MAX_DEPTH arrays and objects open, lone surrogates as U+FFFD),
 * and for JSON every value: kind, truthiness, text bytes, each list's items
 * walked twice and past the end, each object's keys looked up (the first
 * member of a key wins) and a key it does not have. Then the same text is
 * viewed through an arena with a tiny limit: every refusal must be -2 from
 * the view or -1 from a lookup or item, with the arena's `failed` set.
 *
 *   fuzz_json tests/fuzz/corpus/json */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "value/arena.h"
#include "value/json.h"

#include "fuzz.h"

typedef struct node node;
struct node {
    int kind; /* sf_val_kind */
    int truthy;
    char *s; /* text: decoded bytes */
    size_t n;
    node **kids; /* list items, or map values */
    char **keys; /* map keys (decoded), n of them */
    size_t *keylen;
    size_t nkids;
};

typedef struct rd {
    const unsigned char *p, *e;
    int depth;
} rd;

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static void node_free(node *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->nkids; i++) {
        node_free(x->kids[i]);
        if (x->keys)
            free(x->keys[i]);
    }
    free(x->kids);
    free(x->keys);
    free(x->keylen);
    free(x->s);
    free(x);
}

static void ws(rd *r)
{
    while (r->p < r->e && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static void put_cp(char **s, size_t *n, unsigned long c)
{
    *s = xrealloc(*s, *n + 4);
    unsigned char *o = (unsigned char *)*s + *n;
    if (c < 0x80) {
        o[0] = (unsigned char)c, *n += 1;
    } else if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | c >> 6), o[1] = (unsigned char)(0x80 | (c & 0x3F)), *n += 2;
    } else if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | c >> 12), o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F)), *n += 3;
    } else {
        o[0] = (unsigned char)(0xF0 | c >> 18), o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
        o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)), o[3] = (unsigned char)(0x80 | (c & 0x3F));
        *n += 4;
    }
}

static int hex4(const unsigned char *p, const unsigned char *e, unsigned long *out)
{
    if (e - p < 4)
        return -1;
    unsigned long v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + (unsigned long)d;
    }
    *out = v;
    return 0;
}

/* A string (r->p at '"') decoded, by code points. */
static int str(rd *r, char **s, size_t *n)
{
    *s = NULL;
    *n = 0;
    r->p++;
    for (;;) {
        if (r->p >= r->e)
            return -1;
        unsigned long c = *r->p;
        if (c == '"') {
            r->p++;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (r->e - r->p < 2)
                return -1;
            unsigned char x = r->p[1];
            r->p += 2;
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *k = x ? strchr(from, x) : NULL;
            if (k) {
                put_cp(s, n, (unsigned char)to[k - from]);
                continue;
            }
            if (x != 'u' || hex4(r->p, r->e, &c) != 0)
                return -1;
            r->p += 4;
            if (c >= 0xD800 && c <= 0xDBFF) {
                unsigned long lo;
                if (r->e - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u' &&
                    hex4(r->p + 2, r->e, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                    c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                    r->p += 6;
                } else {
                    c = 0xFFFD;
                }
            } else if (c >= 0xDC00 && c <= 0xDFFF) {
                c = 0xFFFD;
            }
            put_cp(s, n, c);
            continue;
        }
        if (c < 0x80) {
            put_cp(s, n, c);
            r->p++;
            continue;
        }
        /* Decode a UTF-8 sequence to its code point and check the value. */
        size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        if (!len || c > 0xF7 || (size_t)(r->e - r->p) < len)
            return -1;
        unsigned long cp = c & (0x7F >> len);
        for (size_t i = 1; i < len; i++) {
            if ((r->p[i] & 0xC0) != 0x80)
                return -1;
            cp = cp << 6 | (r->p[i] & 0x3F);
        }
        unsigned long min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        put_cp(s, n, cp);
        r->p += len;
    }
}

static node *value(rd *r);

static node *container(rd *r, int obj)
{
    if (++r->depth > SF_JSON_MAX_DEPTH)
        return NULL;
    node *x = xrealloc(NULL, sizeof *x);
    memset(x, 0, sizeof *x);
    x->kind = obj ? SF_VAL_MAP : SF_VAL_LIST;
    r->p++;
    ws(r);
    if (r->p < r->e && *r->p == (obj ? '}' : ']')) {
        r->p++;
        r->depth--;
        x->truthy = obj;
        return x;
    }
    for (;;) {
        x->kids = xrealloc(x->kids, (x->nkids + 1) * sizeof *x->kids);
        if (obj) {
            x->keys = xrealloc(x->keys, (x->nkids + 1) * sizeof *x->keys);
            x->keylen = xrealloc(x->keylen, (x->nkids + 1) * sizeof *x->keylen);
            x->keys[x->nkids] = NULL;
            x->kids[x->nkids] = NULL;
            x->nkids++;
            if (r->p >= r->e || *r->p != '"' ||
                str(r, &x->keys[x->nkids - 1], &x->keylen[x->nkids - 1]) != 0)
                goto bad;
            ws(r);
            if (r->p >= r->e || *r->p != ':')
                goto bad;
            r->p++;
            ws(r);
        } else {
            x->kids[x->nkids++] = NULL;
        }
        if (!(x->kids[x->nkids - 1] = value(r)))
            goto bad;
        ws(r);
        if (r->p < r->e && *r->p == ',') {
            r->p++;
            ws(r);
            continue;
        }
        if (r->p < r->e && *r->p == (obj ? '}' : ']')) {
            r->p++;
            r->depth--;
            x->truthy = 1;
            return x;
        }
        goto bad;
    }
bad:
    node_free(x);
    return NULL;
}

static int isdig(rd *r)
{
    return r->p < r->e && *r->p >= '0' && *r->p <= '9';
}

static node *value(rd *r)
{
    if (r->p >= r->e)
        return NULL;
    unsigned char c = *r->p;
    if (c == '[' || c == '{')
        return container(r, c == '{');
    node *x = xrealloc(NULL, sizeof *x);
    memset(x, 0, sizeof *x);
    const unsigned char *start = r->p;
    if (c == '"') {
        x->kind = SF_VAL_TEXT;
        if (str(r, &x->s, &x->n) != 0)
            goto bad;
        x->truthy = x->n > 0;
        return x;
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t l = strlen(words[w]);
        if ((size_t)(r->e - r->p) >= l && memcmp(r->p, words[w], l) == 0) {
            r->p += l;
            x->kind = w == 2 ? SF_VAL_NULL : SF_VAL_BOOL;
            x->truthy = w == 0;
            return x;
        }
    }
    /* A number: int frac? exp? */
    if (*r->p == '-')
        r->p++;
    if (!isdig(r))
        goto bad;
    if (*r->p == '0')
        r->p++;
    else
        while (isdig(r))
            r->p++;
    if (r->p < r->e && *r->p == '.') {
        r->p++;
        if (!isdig(r))
            goto bad;
        while (isdig(r))
            r->p++;
    }
    if (r->p < r->e && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->e && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!isdig(r))
            goto bad;
        while (isdig(r))
            r->p++;
    }
    x->kind = SF_VAL_TEXT;
    x->n = (size_t)(r->p - start);
    x->s = xrealloc(NULL, x->n);
    memcpy(x->s, start, x->n);
    /* Zero when every digit before the exponent is 0. */
    for (size_t i = 0; i < x->n && x->s[i] != 'e' && x->s[i] != 'E'; i++)
        if (x->s[i] >= '1' && x->s[i] <= '9')
            x->truthy = 1;
    return x;
bad:
    node_free(x);
    return NULL;
}

static node *parse(const unsigned char *p, size_t n)
{
    rd r = {p, p + n, 0};
    ws(&r);
    node *x = value(&r);
    if (!x)
        return NULL;
    ws(&r);
    if (r.p != r.e) {
        node_free(x);
        return NULL;
    }
    return x;
}

/* ---- comparing ------------------------------------------------------------ */

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_json: %s\n", what);
    abort();
}

/* Deep on the first walk of a list; the second walk compares each item's
 * kind, truthiness and text only (walking every list twice at every level
 * would be 2^depth walks). */
static void same(const node *x, const sf_val *v, int deep)
{
    if (v->kind != x->kind)
        fail("kind differs");
    if ((v->truthy != 0) != (x->truthy != 0))
        fail("truthiness differs");
    if (x->kind == SF_VAL_TEXT && (v->n != x->n || (x->n && memcmp(v->s, x->s, x->n) != 0)))
        fail("text differs");
    if (!deep)
        return;
    if (x->kind == SF_VAL_LIST) {
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i <= x->nkids; i++) {
                sf_val it;
                int rc = v->ops->item(v->obj, i, &it);
                if (rc != (i < x->nkids))
                    fail("item count differs");
                if (rc == 1)
                    same(x->kids[i], &it, pass == 0);
            }
        }
    }
    if (x->kind == SF_VAL_MAP) {
        for (size_t i = 0; i < x->nkids; i++) {
            size_t first = i;
            for (size_t j = 0; j < i; j++)
                if (x->keylen[j] == x->keylen[i] &&
                    (!x->keylen[i] || memcmp(x->keys[j], x->keys[i], x->keylen[i]) == 0)) {
                    first = j;
                    break;
                }
            sf_val got;
            if (v->ops->lookup(v->obj, 0, x->keys[i] ? x->keys[i] : "", x->keylen[i], &got) != 1)
                fail("lookup of a key it has failed");
            if (first == i)
                same(x->kids[i], &got, 1);
        }
        sf_val got;
        if (v->ops->lookup(v->obj, 0, "\x01\x02 no such key", 15, &got) != 0)
            fail("lookup of a key it lacks found something");
    }
}

/* With a tiny arena: refusals only as the contract says; no crash. */
static void starve(sf_arena *a, const sf_val *v, int depth)
{
    if (depth > SF_JSON_MAX_DEPTH + 1)
        fail("deeper than the limit");
    if (v->kind == SF_VAL_LIST) {
        for (size_t i = 0;; i++) {
            sf_val it;
            int rc = v->ops->item(v->obj, i, &it);
            if (rc < 0) {
                if (!a->failed)
                    fail("item -1 without the arena failing");
                return;
            }
            if (rc == 0)
                return;
            starve(a, &it, depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sf_census *cs;
    if (!cs && !(cs = sf_census_create()))
        abort();
    /* The view reads the text in place: give it an exact-size copy, so
     * ASan sees a read past the end. */
    char *text = xrealloc(NULL, size);
    if (size)
        memcpy(text, data, size);
    node *ref = parse((const unsigned char *)text, size);

    sf_arena a;
    sf_arena_init(&a, cs, 0);
    sf_val v;
    char why[256] = "";
    int rc = sf_json_view(&a, text, size, &v, why, sizeof why);
    if (rc == -2)
        fail("an unlimited arena refused");
    if ((rc == 0) != (ref != NULL)) {
        fprintf(stderr, "view says %d (%s), the reference %s\n", rc, why,
                ref ? "JSON" : "not JSON");
        fail("validity differs");
    }
    if (rc == -1 && strncmp(why, "not JSON: at byte ", 18) != 0)
        fail("no offset in the reason");
    if (ref)
        same(ref, &v, 1);
    sf_arena_free(&a);

    for (size_t limit = 8; ref && limit <= 72; limit += 32) {
        sf_arena_init(&a, cs, limit);
        rc = sf_json_view(&a, text, size, &v, why, sizeof why);
        if (rc == -2) {
            if (!a.failed || !a.over)
                fail("-2 without the arena's limit");
        } else if (rc != 0) {
            fail("a valid text refused with a small arena, not -2");
        } else {
            starve(&a, &v, 0);
        }
        sf_arena_free(&a);
    }
    node_free(ref);
    free(text);
    return 0;
}
