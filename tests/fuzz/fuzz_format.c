/* fuzz_format.c: libFuzzer target for the value formatters (value/format.c).
 *
 * The first byte chooses a formatter, the rest is the value. Each result is
 * checked against what the formatter promises, computed here independently:
 * - url: every byte kept is unreserved, reserved or part of a %XX escape,
 *   and percent-decoding the output gives what percent-decoding the input
 *   gives (existing escapes kept, everything else encoded byte by byte);
 * - query: only unreserved bytes and %XX escapes, and decoding the output
 *   gives the input exactly;
 * - text: no longer than the input, no white space but single spaces
 *   between words, none at either end;
 * - truncN: a prefix of the input of at most N characters, exactly N when
 *   the input has more, never ending inside a character (a UTF-8 sequence,
 *   or an ill-formed byte run the output writes as one U+FFFD);
 * - decN: -?digits.N-digits without leading zeros or a negative zero, and
 *   decN of the result is the result;
 * - dates: rfc3339 of the value reads back as itself, and date, ddmmyyyy
 *   and rfc822 print the same day (rfc822 with a weekday);
 * - a refused value has a reason quoting it; the arena frees everything.
 *
 *   fuzz_format tests/fuzz/corpus/format */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "value/arena.h"
#include "value/format.h"

static const char *const spells[] = {"rfc3339", "date",   "rfc822", "ddmmyyyy", "url",
                                     "query",   "text",   "trunc1", "trunc7",   "trunc100",
                                     "dec0",    "dec2",   "dec9",   "json"};
#define NSPELLS (sizeof spells / sizeof spells[0])

static void fail(const char *what, const char *spell, const sf_val *out)
{
    fprintf(stderr, "%s: %s (output %zu bytes: %.*s)\n", spell, what, out ? out->n : 0,
            out ? (int)(out->n > 200 ? 200 : out->n) : 0, out ? out->s : "");
    abort();
}

static int ishex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static int hexval(unsigned char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent-decoding; a '%' without two hex digits is itself. */
static size_t decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && ishex((unsigned char)s[i + 1]) && ishex((unsigned char)s[i + 2])) {
            out[o++] = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

static int apply(sf_arena *a, const char *spell, const char *s, size_t n, sf_val *out, char *why,
                 size_t whylen)
{
    sf_fmt_call call;
    if (sf_fmt_parse(spell, strlen(spell), &call, why, whylen) != 1)
        abort();
    sf_val in = {.kind = SF_VAL_TEXT, .truthy = n > 0, .s = s, .n = n};
    return sf_fmt_apply(a, &call, &in, out, why, whylen);
}

static void check_pct(const char *spell, int url, const char *s, size_t n, const sf_val *out)
{
    for (size_t i = 0; i < out->n; i++) {
        unsigned char c = (unsigned char)out->s[i];
        if (c == '%') {
            if (i + 2 >= out->n || !ishex((unsigned char)out->s[i + 1]) ||
                !ishex((unsigned char)out->s[i + 2]))
                fail("a '%' without two hex digits", spell, out);
            i += 2;
        } else if (!unreserved(c) && (!url || !strchr(":/?#[]@!$&'()*+,;=", c) || c == 0)) {
            fail("a byte that should be encoded", spell, out);
        }
    }
    char *d1 = malloc(n + 1), *d2 = malloc(out->n + 1);
    size_t k1 = url ? decode(s, n, d1) : n, k2 = decode(out->s, out->n, d2);
    if (!url)
        memcpy(d1, s, n);
    if (k1 != k2 || memcmp(d1, d2, k1) != 0)
        fail("decoding the output does not give the input", spell, out);
    free(d1);
    free(d2);
}

static void check_text(const char *spell, size_t n, const sf_val *out)
{
    if (out->n > n)
        fail("longer than the input", spell, out);
    if (out->n && (out->s[0] == ' ' || out->s[out->n - 1] == ' '))
        fail("white space at an end", spell, out);
    for (size_t i = 0; i < out->n; i++) {
        char c = out->s[i];
        if (c == '\t' || c == '\n' || c == '\r' || c == '\f' || (c == ' ' && i + 1 < out->n && out->s[i + 1] == ' ') ||
            ((unsigned char)c == 0xC2 && i + 1 < out->n && (unsigned char)out->s[i + 1] == 0xA0))
            fail("white space not collapsed", spell, out);
    }
}

/* The length of the character at s[i]: a well-formed UTF-8 sequence, or
 * the maximal ill-formed subpart the escaper writes as one U+FFFD (the
 * Unicode standard's table 3-7, written out here apart from the library). */
static size_t char_len(const unsigned char *s, size_t n, size_t i)
{
    unsigned c = s[i];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 1;
    size_t k = 1;
    while (k < need && i + k < n &&
           (k == 1 ? s[i + k] >= lo && s[i + k] <= hi : (s[i + k] & 0xC0) == 0x80))
        k++;
    return k;
}

/* Characters in s[0..n); *boundary set when `cut` falls between two. */
static size_t chars(const char *s0, size_t n, size_t cut, int *boundary)
{
    const unsigned char *s = (const unsigned char *)s0;
    size_t k = 0, i = 0;
    *boundary = cut == 0;
    while (i < n) {
        i += char_len(s, n, i);
        k++;
        if (i == cut)
            *boundary = 1;
    }
    return k;
}

static void check_trunc(const char *spell, size_t max, const char *s, size_t n, const sf_val *out)
{
    if (out->s != s || out->n > n)
        fail("not a prefix of the input", spell, out);
    int b;
    size_t k = chars(out->s, out->n, 0, &b);
    if (k > max || (chars(s, n, out->n, &b) > max && k != max))
        fail("not the first N characters", spell, out);
    if (!b)
        fail("cut inside a character", spell, out);
}

static void check_dec(sf_arena *a, const char *spell, unsigned dec, const sf_val *out)
{
    const char *p = out->s, *e = out->s + out->n;
    if (p < e && *p == '-')
        p++;
    const char *d0 = p;
    while (p < e && *p >= '0' && *p <= '9')
        p++;
    if (p == d0 || (p - d0 > 1 && *d0 == '0'))
        fail("integer digits", spell, out);
    if (dec) {
        if (p == e || *p != '.')
            fail("no point", spell, out);
        const char *f0 = ++p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if ((unsigned)(p - f0) != dec)
            fail("not N decimals", spell, out);
    }
    if (p != e)
        fail("trailing bytes", spell, out);
    int zero = 1;
    for (const char *q = out->s; q < e; q++)
        zero &= *q == '0' || *q == '.' || *q == '-';
    if (zero && out->s[0] == '-')
        fail("a negative zero", spell, out);
    sf_val again;
    char why[256];
    if (apply(a, spell, out->s, out->n, &again, why, sizeof why) != SF_FMT_OK ||
        again.n != out->n || memcmp(again.s, out->s, out->n) != 0)
        fail("decN of the result differs", spell, out);
}

static void check_dates(sf_arena *a, const char *s, size_t n)
{
    sf_val f[4];
    char why[256];
    int ok = 1;
    for (int i = 0; i < 4; i++)
        ok &= apply(a, spells[i], s, n, &f[i], why, sizeof why) == SF_FMT_OK;
    if (!ok) {
        /* All or none. */
        for (int i = 0; i < 4; i++)
            if (apply(a, spells[i], s, n, &f[i], why, sizeof why) == SF_FMT_OK)
                fail("one date formatter refuses what another reads", spells[i], &f[i]);
        return;
    }
    if (!(f[0].n == 20 || f[0].n == 25) || f[1].n != 10 || f[2].n != 31 || f[3].n != 10)
        fail("a date of the wrong length", "dates", &f[0]);
    if (memcmp(f[0].s, f[1].s, 10) != 0)
        fail("rfc3339 and date disagree", "date", &f[1]);
    const char *d = f[1].s, *m = f[3].s;
    if (memcmp(m, d + 8, 2) || memcmp(m + 3, d + 5, 2) || memcmp(m + 6, d, 4))
        fail("ddmmyyyy and date disagree", "ddmmyyyy", &f[3]);
    if (memcmp(f[2].s + 5, d + 8, 2) || memcmp(f[2].s + 12, d, 4))
        fail("rfc822 and date disagree", "rfc822", &f[2]);
    sf_val back;
    if (apply(a, "rfc3339", f[0].s, f[0].n, &back, why, sizeof why) != SF_FMT_OK ||
        back.n != f[0].n || memcmp(back.s, f[0].s, f[0].n) != 0)
        fail("rfc3339 does not read back as itself", "rfc3339", &f[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *spell = spells[data[0] % NSPELLS];
    /* An exact-size copy: an overread is a heap overflow. */
    size_t n = size - 1;
    char *s = malloc(n ? n : 1);
    memcpy(s, data + 1, n);
    sf_census *cs = sf_census_create();
    sf_arena a;
    sf_arena_init(&a, cs, 0);
    sf_val out;
    char why[256];
    int rc = apply(&a, spell, s, n, &out, why, sizeof why);
    if (rc == SF_FMT_NOMEM)
        abort();
    if (rc == SF_FMT_INVALID) {
        if (why[0] == '\0' || (strcmp(spell, "json") != 0 && why[0] != '\'' && !strstr(why, "not text")))
            fail("a refusal without a reason quoting the value", spell, NULL);
    } else if (strcmp(spell, "json") != 0) {
        if (out.kind != SF_VAL_TEXT)
            fail("not text", spell, &out);
        if (n == 0 && out.n != 0)
            fail("empty is not empty", spell, &out);
        if (!strcmp(spell, "url") || !strcmp(spell, "query"))
            check_pct(spell, spell[0] == 'u', s, n, &out);
        else if (!strcmp(spell, "text"))
            check_text(spell, n, &out);
        else if (!strncmp(spell, "trunc", 5))
            check_trunc(spell, (size_t)atoi(spell + 5), s, n, &out);
        else if (!strncmp(spell, "dec", 3) && n)
            check_dec(&a, spell, (unsigned)atoi(spell + 3), &out);
    }
    if (data[0] % NSPELLS < 4 && n)
        check_dates(&a, s, n);
    sf_arena_free(&a);
    if (sf_census_live_bytes(cs) != 0)
        abort();
    sf_census_free(cs);
    free(s);
    return 0;
}
