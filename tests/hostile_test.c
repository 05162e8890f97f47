/*
 * hostile_test.c - independent hostile-input test for sqlfeed.
 *
 * Written from the specification only; it includes no project source.
 *
 *   hostile_test PATH_TO_SQLFEED SCRATCH_DIR
 *       Builds SCRATCH_DIR/hostile.db full of hostile values, renders it
 *       through a template that uses every XML context with sqlfeed, parses
 *       the result with expat and compares every value, in every context,
 *       with this file's own reference implementation of the documented
 *       character filter.
 *
 *   hostile_test --self-test [SCRATCH_DIR]
 *       Checks the reference filter on known vectors (Unicode chapter 3
 *       tables, WHATWG examples) and the expat collector on a hand-written
 *       document.  With SCRATCH_DIR it also runs the whole pipeline against
 *       a small built-in reference writer instead of sqlfeed, which shows
 *       that a correct writer passes every check of the real run.
 *
 * Output: one "PASS: name" or "FAIL: name: detail" line per check, lines
 * starting with "#" are extra diagnostics.  Exit 0 iff every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <expat.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))

#define CLI_TIMEOUT_S 600u        /* per sqlfeed run */
#define XML_CHUNK (4u << 20)      /* expat is fed in chunks of this size */
#define MIX_SIZE (10u << 20)      /* the 10 MB mixed value */
#define MAX_DETAIL_LINES 10       /* "#" lines per context */
#define LABEL_MAX 64

/* ------------------------------------------------------------------ */
/* Check reporting                                                     */
/* ------------------------------------------------------------------ */

static int g_pass, g_fail;
static unsigned long long g_ctx_compared;  /* (row, context) pairs compared */
static unsigned long long g_bytes_compared; /* expected bytes in them */
static size_t g_rows_total;

static void pass(const char *name)
{
    printf("PASS: %s\n", name);
    fflush(stdout);
    g_pass++;
}

static void fail(const char *name, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void fail(const char *name, const char *fmt, ...)
{
    va_list ap;
    printf("FAIL: %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    g_fail++;
}

static void check(int ok, const char *name, const char *detail)
{
    if (ok)
        pass(name);
    else
        fail(name, "%s", detail);
}

static void die(const char *what)
{
    printf("FAIL: internal: %s\n", what);
    fflush(stdout);
    exit(1);
}

/* ------------------------------------------------------------------ */
/* Growable byte buffer                                                */
/* ------------------------------------------------------------------ */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra)
{
    size_t c;
    unsigned char *q;
    if (extra <= b->cap - b->n)
        return;
    c = b->cap ? b->cap : 256;
    while (c - b->n < extra) {
        if (c > SIZE_MAX / 2)
            die("buffer too large");
        c *= 2;
    }
    q = realloc(b->p, c);
    if (!q)
        die("out of memory");
    b->p = q;
    b->cap = c;
}

static void buf_put(buf_t *b, const void *s, size_t n)
{
    if (!n)
        return;
    buf_reserve(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void buf_putc(buf_t *b, unsigned char c)
{
    buf_reserve(b, 1);
    b->p[b->n++] = c;
}

static void buf_puts(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_free(buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* Lower-case hex dump of at most 8 bytes, "<end>" when empty. */
static void hex_of(char *out, size_t on, const unsigned char *p, size_t n)
{
    size_t w = 0, i;
    if (n == 0) {
        snprintf(out, on, "<end>");
        return;
    }
    out[0] = '\0';
    for (i = 0; i < n && i < 8 && w + 4 < on; i++) {
        int r = snprintf(out + w, on - w, "%s%02x", i ? " " : "", p[i]);
        if (r < 0)
            break;
        w += (size_t)r;
    }
}

/* ------------------------------------------------------------------ */
/* Reference implementation of the documented character filter         */
/* ------------------------------------------------------------------ */

static const unsigned char U_FFFD[3] = {0xEF, 0xBF, 0xBD};

/* XML 1.0 Char production (surrogates never reach this function). */
static int xml_char_ok(uint32_t cp)
{
    return cp == 0x9 || cp == 0xA || cp == 0xD ||
           (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
           (cp >= 0x10000 && cp <= 0x10FFFF);
}

/*
 * Decode s as UTF-8; each maximal ill-formed subpart becomes one U+FFFD
 * (Unicode ch. 3 "substitution of maximal subparts", WHATWG decoder);
 * well-formed characters outside the XML 1.0 Char production become U+FFFD
 * too; everything else is copied unchanged.
 */
static void ref_filter(const unsigned char *s, size_t n, buf_t *out)
{
    size_t i = 0;
    while (i < n) {
        unsigned b = s[i];
        unsigned need, k, lo = 0x80, hi = 0xBF;
        uint32_t cp;
        size_t j;
        if (b < 0x80) {
            if (xml_char_ok(b))
                buf_putc(out, (unsigned char)b);
            else
                buf_put(out, U_FFFD, 3);
            i++;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
            cp = b & 0x1Fu;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            cp = b & 0x0Fu;
            if (b == 0xE0)
                lo = 0xA0; /* no overlongs */
            if (b == 0xED)
                hi = 0x9F; /* no surrogates */
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            cp = b & 0x07u;
            if (b == 0xF0)
                lo = 0x90; /* no overlongs */
            if (b == 0xF4)
                hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            /* 80-BF stray continuation, C0/C1 overlong leads, F5-FF */
            buf_put(out, U_FFFD, 3);
            i++;
            continue;
        }
        j = i + 1;
        for (k = 0; k < need; k++, j++) {
            if (j >= n || s[j] < lo || s[j] > hi)
                break;
            cp = (cp << 6) | (uint32_t)(s[j] & 0x3Fu);
            lo = 0x80;
            hi = 0xBF;
        }
        if (k < need) {
            /* Maximal subpart s[i..j) is ill-formed; s[j] not consumed. */
            buf_put(out, U_FFFD, 3);
            i = j;
            continue;
        }
        if (xml_char_ok(cp))
            buf_put(out, s + i, j - i);
        else
            buf_put(out, U_FFFD, 3);
        i = j;
    }
}

/* XML end-of-line handling: CR LF -> LF, lone CR -> LF. */
static void norm_cr(const unsigned char *s, size_t n, buf_t *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] == '\r') {
            buf_putc(out, '\n');
            if (i + 1 < n && s[i + 1] == '\n')
                i++;
        } else {
            buf_putc(out, s[i]);
        }
    }
}

/*
 * Comment rule on a filtered value: a space after every '-' followed by
 * another '-' or ending the value, a space before a leading '-'.
 */
static void comment_dashes(const unsigned char *f, size_t n, buf_t *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (f[i] == '-' && i == 0)
            buf_putc(out, ' ');
        buf_putc(out, f[i]);
        if (f[i] == '-' && (i + 1 == n || f[i + 1] == '-'))
            buf_putc(out, ' ');
    }
}

/* What a parser reports for a comment holding filtered value f. */
static void comment_expect(const unsigned char *f, size_t n, buf_t *out)
{
    buf_t tmp = {0};
    comment_dashes(f, n, &tmp);
    norm_cr(tmp.p, tmp.n, out);
    buf_free(&tmp);
}

/* ------------------------------------------------------------------ */
/* Deterministic pseudo-random numbers (splitmix64)                    */
/* ------------------------------------------------------------------ */

static uint64_t g_rng = 0x5EED5EED12345678ULL;

static uint64_t rng_next(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static unsigned rng_below(unsigned n) { return (unsigned)(rng_next() % n); }

static unsigned char rng_byte(void) { return (unsigned char)(rng_next() & 0xFFu); }

/* Bytes that matter to UTF-8 decoding and XML escaping. */
static const unsigned char INTERESTING[] = {
    ']',  '>',  '<',  '&',  '-',  '"',  '\'', '\r', '\n', '\t', 0x00,
    0x01, 0x0B, 0x1F, 0x7F, 0x80, 0x82, 0x8F, 0x90, 0x98, 0x9F, 0xA0,
    0xAF, 0xBD, 0xBE, 0xBF, 0xC0, 0xC1, 0xC2, 0xC3, 0xDF, 0xE0, 0xE2,
    0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFE, 0xFF};

/* Random byte biased towards the interesting ones. */
static unsigned char biased_byte(void)
{
    unsigned r = rng_below(10);
    if (r < 5)
        return INTERESTING[rng_below((unsigned)sizeof INTERESTING)];
    if (r < 8)
        return (unsigned char)(0x20 + rng_below(0x5F));
    return rng_byte();
}

/* ------------------------------------------------------------------ */
/* Hostile values                                                      */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *label;
    const char *s;
    size_t n;
} piece_t;

#define P(l, s) {l, s, sizeof(s) - 1}

/* Text values inserted one per row; also the material of the 10 MB mix.
 * (Hex escapes are split with "" where a hex digit follows.) */
static const piece_t PIECES[] = {
    P("]]>", "]]>"),
    P("a]]>b]]>]]>", "a]]>b]]>]]>"),
    P("]", "]"),
    P("]]", "]]"),
    P("x]", "x]"),
    P(">x", ">x"),
    P(">x]] (adjacent tags)", ">x]]"),
    P("]]]>", "]]]>"),
    P("]]]]>>", "]]]]>>"),
    P("--", "--"),
    P("-", "-"),
    P("a-", "a-"),
    P("-a", "-a"),
    P("a--b", "a--b"),
    P("---", "---"),
    P("-->", "-->"),
    P("<!--x-->", "<!--x-->"),
    P("- -", "- -"),
    P("double quote", "\""),
    P("single quote", "'"),
    P("<>&", "<>&"),
    P("&amp; literal", "&amp;"),
    P("&#0; literal", "&#0;"),
    P("&lt;&#x41; literal", "&lt;&#x41;"),
    P("<?pi?>", "<?x y?>"),
    P("<![CDATA[ literal", "<![CDATA[x"),
    P("{{v}} literal", "{{v}}{{{v}}}{{&v}}"),
    P("CR", "\r"),
    P("LF", "\n"),
    P("TAB", "\t"),
    P("CRLF", "\r\n"),
    P("lone CR at end", "a\r"),
    P("CR in middle", "a\rb"),
    P("LFCR", "\n\r"),
    P("CR/LF mix", "\r\r\n\n\r\t\r"),
    P("spaces", "  a  b  "),
    P("NUL in middle", "a\0b"),
    P("controls in text", "a\x01" "b\x1F" "c\x0B" "d\x0C"),
    P("lone cont 80", "\x80"),
    P("lone cont BF", "\xBF"),
    P("cont 80 BF", "\x80\xBF"),
    P("cont run", "\x80\x81\x82\xBF"),
    P("trunc C3 at end", "a\xC3"),
    P("trunc E2 82 at end", "a\xE2\x82"),
    P("trunc F0 9F 98 at end", "a\xF0\x9F\x98"),
    P("trunc E2 82 + x", "\xE2\x82x"),
    P("trunc F0 9F 98 + ]]>", "\xF0\x9F\x98]]>"),
    P("trunc C3 + C3 A9", "\xC3\xC3\xA9"),
    P("overlong C0 AF", "\xC0\xAF"),
    P("overlong C1 BF", "\xC1\xBF"),
    P("overlong C0 80", "\xC0\x80"),
    P("overlong E0 80 AF", "\xE0\x80\xAF"),
    P("overlong E0 9F BF", "\xE0\x9F\xBF"),
    P("overlong F0 80 80 AF", "\xF0\x80\x80\xAF"),
    P("overlong F0 8F BF BF", "\xF0\x8F\xBF\xBF"),
    P("surrogate ED A0 80", "\xED\xA0\x80"),
    P("surrogate ED BF BF", "\xED\xBF\xBF"),
    P("surrogate pair 6 bytes", "\xED\xA0\xBD\xED\xB8\x80"),
    P("above max F4 90 80 80", "\xF4\x90\x80\x80"),
    P("bytes F5..FF", "\xF5\xF6\xF7\xF8\xF9\xFA\xFB\xFC\xFD\xFE\xFF"),
    P("F5 80 80 80", "\xF5\x80\x80\x80"),
    P("F8 5-byte form", "\xF8\x88\x80\x80\x80"),
    P("FC 6-byte form", "\xFC\x84\x80\x80\x80\x80"),
    P("U+FFFE", "\xEF\xBF\xBE"),
    P("U+FFFF", "\xEF\xBF\xBF"),
    P("U+FFFD", "\xEF\xBF\xBD"),
    P("U+FDD0", "\xEF\xB7\x90"),
    P("U+1FFFE", "\xF0\x9F\xBF\xBE"),
    P("U+10FFFF", "\xF4\x8F\xBF\xBF"),
    P("U+D7FF", "\xED\x9F\xBF"),
    P("U+E000", "\xEE\x80\x80"),
    P("BOM mid-string", "a\xEF\xBB\xBF" "b"),
    P("BOM at start", "\xEF\xBB\xBF" "x"),
    P("e-acute", "\xC3\xA9"),
    P("euro", "\xE2\x82\xAC"),
    P("CJK", "\xE4\xB8\xAD"),
    P("emoji", "\xF0\x9F\x98\x80"),
    P("ZWJ family",
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7"),
    P("ZWJ rainbow flag",
      "\xF0\x9F\x8F\xB3\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x8C\x88"),
    P("flag FR", "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7"),
    P("combining acute", "e\xCC\x81"),
    P("Unicode table 3-8",
      "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
    P("mixed", "\x00]]>\r\n--\xC0\xAF<&\"'\xED\xA0\x80-"),
};
#define NPIECES (sizeof PIECES / sizeof PIECES[0])

/* Database builder: remembers a label per inserted id (ids are 1..n). */
typedef struct {
    sqlite3 *db;
    sqlite3_stmt *st;
    int err;
    char errmsg[256];
    char (*labels)[LABEL_MAX];
    size_t n, cap;
} dbb_t;

static sqlite3_int64 dbb_next(dbb_t *d, const char *label)
{
    if (d->n == d->cap) {
        size_t c = d->cap ? d->cap * 2 : 512;
        char(*q)[LABEL_MAX] = realloc(d->labels, c * sizeof *q);
        if (!q)
            die("out of memory");
        d->labels = q;
        d->cap = c;
    }
    snprintf(d->labels[d->n], LABEL_MAX, "%s", label);
    d->n++;
    return (sqlite3_int64)d->n;
}

/* Binds the id, runs the prepared INSERT whose ?2 is already bound. */
static void dbb_step(dbb_t *d, sqlite3_int64 id, int bind_rc)
{
    int rc;
    if (bind_rc == SQLITE_OK)
        bind_rc = sqlite3_bind_int64(d->st, 1, id);
    if (bind_rc != SQLITE_OK) {
        if (!d->err)
            snprintf(d->errmsg, sizeof d->errmsg, "bind row %lld: %s",
                     (long long)id, sqlite3_errstr(bind_rc));
        d->err = 1;
    } else if ((rc = sqlite3_step(d->st)) != SQLITE_DONE) {
        if (!d->err)
            snprintf(d->errmsg, sizeof d->errmsg, "insert row %lld: %s",
                     (long long)id, sqlite3_errmsg(d->db));
        d->err = 1;
    }
    sqlite3_reset(d->st);
    sqlite3_clear_bindings(d->st);
}

/* TEXT with explicit byte length (embedded NULs survive). */
static void ins_text(dbb_t *d, const char *label, const void *p, size_t n)
{
    sqlite3_int64 id = dbb_next(d, label);
    int rc = sqlite3_bind_text64(d->st, 2, n ? (const char *)p : "",
                                 (sqlite3_uint64)n, SQLITE_STATIC, SQLITE_UTF8);
    dbb_step(d, id, rc);
}

static void ins_blob(dbb_t *d, const char *label, const void *p, size_t n)
{
    sqlite3_int64 id = dbb_next(d, label);
    int rc = n ? sqlite3_bind_blob64(d->st, 2, p, (sqlite3_uint64)n,
                                     SQLITE_STATIC)
               : sqlite3_bind_zeroblob(d->st, 2, 0);
    dbb_step(d, id, rc);
}

static void ins_int(dbb_t *d, const char *label, sqlite3_int64 v)
{
    sqlite3_int64 id = dbb_next(d, label);
    dbb_step(d, id, sqlite3_bind_int64(d->st, 2, v));
}

static void ins_real(dbb_t *d, const char *label, double v)
{
    sqlite3_int64 id = dbb_next(d, label);
    dbb_step(d, id, sqlite3_bind_double(d->st, 2, v));
}

static void ins_null(dbb_t *d, const char *label)
{
    sqlite3_int64 id = dbb_next(d, label);
    dbb_step(d, id, sqlite3_bind_null(d->st, 2));
}

/* The deterministic ~10 MB mix of everything above. */
static void gen_mix(buf_t *b, size_t target)
{
    unsigned k, len;
    while (b->n < target) {
        unsigned r = rng_below(20);
        if (r < 13) {
            const piece_t *p = &PIECES[rng_below((unsigned)NPIECES)];
            buf_put(b, p->s, p->n);
        } else if (r < 16) {
            len = 1 + rng_below(16);
            for (k = 0; k < len; k++)
                buf_putc(b, biased_byte());
        } else if (r < 18) {
            len = 1 + rng_below(8);
            for (k = 0; k < len; k++)
                buf_putc(b, rng_byte());
        } else if (r < 19) {
            buf_putc(b, (unsigned char)rng_below(0x20)); /* C0 control */
        } else {
            buf_putc(b, 0xC2); /* C1 control as UTF-8 */
            buf_putc(b, (unsigned char)(0x80 + rng_below(0x20)));
        }
    }
}

static void add_values(dbb_t *d)
{
    char lab[LABEL_MAX];
    unsigned char tmp[256];
    unsigned b, len, k;
    buf_t big = {0};
    size_t i;

    /* every C0 control individually and all together, DEL */
    for (b = 0; b < 0x20; b++) {
        tmp[0] = (unsigned char)b;
        snprintf(lab, sizeof lab, "C0 0x%02X", b);
        ins_text(d, lab, tmp, 1);
    }
    for (b = 0; b < 0x20; b++)
        tmp[b] = (unsigned char)b;
    ins_text(d, "C0 all 0x00-0x1F", tmp, 0x20);
    ins_text(d, "DEL 0x7F", "\x7F", 1);

    /* C1 controls as UTF-8, individually and together */
    for (b = 0x80; b < 0xA0; b++) {
        tmp[0] = 0xC2;
        tmp[1] = (unsigned char)b;
        snprintf(lab, sizeof lab, "C1 U+%04X", b);
        ins_text(d, lab, tmp, 2);
    }
    for (b = 0x80; b < 0xA0; b++) {
        tmp[2 * (b - 0x80)] = 0xC2;
        tmp[2 * (b - 0x80) + 1] = (unsigned char)b;
    }
    ins_text(d, "C1 all U+0080-U+009F", tmp, 0x40);

    for (i = 0; i < NPIECES; i++)
        ins_text(d, PIECES[i].label, PIECES[i].s, PIECES[i].n);

    /* numbers, NULL, empty */
    ins_int(d, "int 0", 0);
    ins_int(d, "int -1", -1);
    ins_int(d, "int 42", 42);
    ins_int(d, "int max", INT64_MAX);
    ins_int(d, "int min", INT64_MIN);
    ins_real(d, "real 1.5", 1.5);
    ins_real(d, "real -0.0", -0.0);
    ins_real(d, "real 1e300", 1e300);
    ins_real(d, "real pi", 3.141592653589793);
    ins_real(d, "real 2.0", 2.0);
    ins_real(d, "real 0.1", 0.1);
    ins_real(d, "real -1.5e-7", -1.5e-7);
    ins_real(d, "real 1e-300", 1e-300);
    ins_null(d, "NULL");
    ins_text(d, "empty string", "", 0);

    /* BLOBs */
    ins_blob(d, "blob empty", "", 0);
    ins_blob(d, "blob ]]> CR NUL", "]]>\r\0\xC0\xAF-", 8);
    ins_blob(d, "blob e-acute (valid UTF-8)", "\xC3\xA9", 2);
    for (b = 0; b < 256; b++)
        tmp[b] = (unsigned char)b;
    ins_blob(d, "blob all 256 byte values", tmp, 256);
    for (k = 0; k < 65536; k++)
        buf_putc(&big, rng_byte());
    ins_blob(d, "blob 64 KB random", big.p, big.n);
    big.n = 0;
    for (k = 0; k < 65536; k++)
        buf_putc(&big, biased_byte());
    ins_blob(d, "blob 64 KB biased random", big.p, big.n);
    big.n = 0;

    /* the 10 MB mix, as TEXT */
    gen_mix(&big, MIX_SIZE);
    ins_text(d, "10 MB mix", big.p, big.n);
    buf_free(&big);

    /* random bytes of each length 0..300 (even: uniform, odd: biased) */
    for (len = 0; len <= 300; len++) {
        big.n = 0;
        for (k = 0; k < len; k++)
            buf_putc(&big, (len & 1u) ? biased_byte() : rng_byte());
        snprintf(lab, sizeof lab, "random %s len %u",
                 (len & 1u) ? "biased" : "uniform", len);
        ins_text(d, lab, big.p, big.n);
    }
    buf_free(&big);
}

/* Creates dbpath from scratch; returns 1 on success. */
static int build_db(const char *dbpath, dbb_t *d, char *err, size_t en)
{
    char j[4096];
    char *msg = NULL;
    unlink(dbpath);
    snprintf(j, sizeof j, "%.4000s-journal", dbpath);
    unlink(j);
    if (sqlite3_open(dbpath, &d->db) != SQLITE_OK) {
        snprintf(err, en, "open %.300s: %s", dbpath, sqlite3_errmsg(d->db));
        return 0;
    }
    if (sqlite3_exec(d->db,
                     "CREATE TABLE t(id INTEGER PRIMARY KEY, v); BEGIN;",
                     NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_prepare_v2(d->db, "INSERT INTO t(id, v) VALUES(?1, ?2)", -1,
                           &d->st, NULL) != SQLITE_OK) {
        snprintf(err, en, "setup: %s", msg ? msg : sqlite3_errmsg(d->db));
        sqlite3_free(msg);
        return 0;
    }
    add_values(d);
    sqlite3_finalize(d->st);
    d->st = NULL;
    if (d->err) {
        snprintf(err, en, "%s", d->errmsg);
        return 0;
    }
    if (sqlite3_exec(d->db, "COMMIT;", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, en, "commit: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return 0;
    }
    sqlite3_close(d->db);
    d->db = NULL;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Expected values, read back from the database                        */
/* ------------------------------------------------------------------ */

typedef struct {
    long long id;
    char label[LABEL_MAX];
    unsigned char *f; /* reference-filtered value */
    size_t fn;
} row_t;

typedef struct {
    row_t *v;
    size_t n;
} rows_t;

static void rows_free(rows_t *r)
{
    size_t i;
    for (i = 0; i < r->n; i++)
        free(r->v[i].f);
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

static void row_set(row_t *row, long long id, const char *label,
                    const unsigned char *src, size_t sn)
{
    buf_t fb = {0};
    row->id = id;
    snprintf(row->label, sizeof row->label, "%s", label);
    ref_filter(src, sn, &fb);
    row->f = fb.p;
    row->fn = fb.n;
}

/*
 * TEXT/BLOB: raw bytes (sqlite3_column_blob/bytes); INTEGER/REAL:
 * SQLite's own text form (sqlite3_column_text); NULL: empty string.
 */
static int load_rows(const char *dbpath, const dbb_t *d, rows_t *rows,
                     char *err, size_t en)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int rc;
    if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT id, v FROM t ORDER BY id", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(err, en, "read back: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return 0;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long long id = (long long)sqlite3_column_int64(st, 0);
        int type = sqlite3_column_type(st, 1);
        const unsigned char *src = NULL;
        int sn;
        const char *label = "?";
        if (rows->n == cap) {
            row_t *q;
            cap = cap ? cap * 2 : 512;
            q = realloc(rows->v, cap * sizeof *q);
            if (!q)
                die("out of memory");
            rows->v = q;
        }
        if (type == SQLITE_INTEGER || type == SQLITE_FLOAT)
            src = sqlite3_column_text(st, 1);
        else if (type != SQLITE_NULL)
            src = sqlite3_column_blob(st, 1);
        sn = type == SQLITE_NULL ? 0 : sqlite3_column_bytes(st, 1);
        if (sn < 0 || (sn > 0 && !src))
            die("sqlite3_column_* failed");
        if (id >= 1 && (unsigned long long)id <= (unsigned long long)d->n)
            label = d->labels[id - 1];
        row_set(&rows->v[rows->n], id, label, src ? src : U_FFFD,
                (size_t)sn);
        rows->n++;
    }
    if (rc != SQLITE_DONE)
        snprintf(err, en, "read back: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc == SQLITE_DONE;
}

static const row_t *find_row(const rows_t *rows, long long id)
{
    size_t lo = 0, hi = rows->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rows->v[mid].id == id)
            return &rows->v[mid];
        if (rows->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Contexts and streaming comparison                                   */
/* ------------------------------------------------------------------ */

typedef enum { K_ATTR, K_ELEM, K_COMMENT } kind_t;
typedef enum { X_PLAIN, X_COMMENT, X_NORMCR } xform_t;

/* Expected text of a context: pre + xform(F) * rep + post. */
typedef struct {
    const char *name; /* check name */
    kind_t kind;
    const char *xml; /* attribute or element name */
    const char *pre, *post;
    unsigned rep;
    xform_t xf;
} ctxdef_t;

/* Main template: every context for the same value. */
static const char MAIN_TEMPLATE[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<doc>{{#rows}}<r id=\"{{id}}\" dq=\"{{v}}\" sq='{{v}}'>"
    "<text>{{v}}</text><tl>pre{{v}}post</tl><ta>{{v}}{{v}}</ta>"
    "<cdata><![CDATA[{{v}}]]></cdata><cl><![CDATA[pre{{v}}post]]></cl>"
    "<ca><![CDATA[{{v}}{{v}}]]></ca><!--{{v}}--></r>{{/rows}}</doc>\n";

static const ctxdef_t MAIN_CTX[] = {
    {"dq", K_ATTR, "dq", "", "", 1, X_PLAIN},
    {"sq", K_ATTR, "sq", "", "", 1, X_PLAIN},
    {"text", K_ELEM, "text", "", "", 1, X_PLAIN},
    {"text_lit", K_ELEM, "tl", "pre", "post", 1, X_PLAIN},
    {"text_adj", K_ELEM, "ta", "", "", 2, X_PLAIN},
    {"cdata", K_ELEM, "cdata", "", "", 1, X_PLAIN},
    {"cdata_lit", K_ELEM, "cl", "pre", "post", 1, X_PLAIN},
    {"cdata_adj", K_ELEM, "ca", "", "", 2, X_PLAIN},
    {"comment", K_COMMENT, NULL, "", "", 1, X_COMMENT},
};

/* Raw template: filter but no escaping; CR is normalized by the parser.
 * Raw values in element text are refused in an XML template (data could
 * break it), so this one declares itself plain text: the output is XML for
 * the rows selected (no < & ] >), and checks the filter of raw values. */
static const char RAW_TEMPLATE[] =
    "{{! sqlfeed-format: text }}\n"
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<doc>{{#rows}}<r id=\"{{id}}\"><a>{{{v}}}</a><b>{{&v}}</b></r>"
    "{{/rows}}</doc>\n";

static const ctxdef_t RAW_CTX[] = {
    {"raw {{{v}}}", K_ELEM, "a", "", "", 1, X_NORMCR},
    {"raw {{&v}}", K_ELEM, "b", "", "", 1, X_NORMCR},
};

#define MAXCTX 12

/* Streaming comparison of one context of one row. */
typedef struct {
    const unsigned char *seg_p[4];
    size_t seg_n[4];
    int nseg;
    size_t total;          /* expected length */
    size_t off;            /* actual bytes seen */
    int seen, dup, bad;
    size_t bad_off;        /* first differing offset */
    unsigned char got[8];  /* actual bytes from bad_off */
    size_t ngot;
} cmp_t;

static void cmp_add(cmp_t *c, const unsigned char *p, size_t n)
{
    if (n == 0)
        return;
    c->seg_p[c->nseg] = p;
    c->seg_n[c->nseg] = n;
    c->nseg++;
    c->total += n;
}

static void cmp_init(cmp_t *c, const char *pre, const unsigned char *base,
                     size_t bn, unsigned rep, const char *post)
{
    unsigned k;
    memset(c, 0, sizeof *c);
    cmp_add(c, (const unsigned char *)pre, strlen(pre));
    for (k = 0; k < rep && k < 2; k++)
        cmp_add(c, base, bn);
    cmp_add(c, (const unsigned char *)post, strlen(post));
}

static size_t cmp_expected(const cmp_t *c, size_t off, unsigned char *out,
                           size_t max)
{
    size_t n = 0;
    int k = 0;
    while (n < max && k < c->nseg) {
        if (off < c->seg_n[k]) {
            out[n++] = c->seg_p[k][off++];
        } else {
            off -= c->seg_n[k];
            k++;
        }
    }
    return n;
}

static void cmp_mismatch(cmp_t *c, const unsigned char *s, size_t n)
{
    c->bad = 1;
    c->bad_off = c->off;
    c->ngot = n < sizeof c->got ? n : sizeof c->got;
    memcpy(c->got, s, c->ngot);
}

static void cmp_feed(cmp_t *c, const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !c->bad) {
        size_t o = c->off, m;
        int k = 0;
        const unsigned char *e;
        if (c->off >= c->total) {
            cmp_mismatch(c, s + i, n - i);
            break;
        }
        while (o >= c->seg_n[k]) {
            o -= c->seg_n[k];
            k++;
        }
        m = c->seg_n[k] - o;
        if (m > n - i)
            m = n - i;
        e = c->seg_p[k] + o;
        if (memcmp(e, s + i, m) != 0) {
            size_t j = 0;
            while (e[j] == s[i + j])
                j++;
            c->off += j;
            i += j;
            cmp_mismatch(c, s + i, n - i);
            break;
        }
        c->off += m;
        i += m;
    }
    c->off += n - i;
}

/* Returns 1 if the context matched; otherwise writes a detail line. */
static int cmp_finish(const cmp_t *c, char *detail, size_t dn)
{
    unsigned char eb[8];
    char eh[40], gh[40];
    size_t at, en;
    if (!c->seen) {
        snprintf(detail, dn, "context missing from output");
        return 0;
    }
    if (c->dup) {
        snprintf(detail, dn, "context appears more than once");
        return 0;
    }
    if (!c->bad && c->off == c->total)
        return 1;
    at = c->bad ? c->bad_off : c->off; /* off < total: output too short */
    en = cmp_expected(c, at, eb, sizeof eb);
    hex_of(eh, sizeof eh, eb, en);
    hex_of(gh, sizeof gh, c->got, c->bad ? c->ngot : 0);
    snprintf(detail, dn,
             "first difference at offset %zu: expected [%s] got [%s] "
             "(expected %zu bytes, got %zu)",
             at, eh, gh, c->total, c->off);
    return 0;
}

/* ------------------------------------------------------------------ */
/* expat collector                                                     */
/* ------------------------------------------------------------------ */

typedef struct {
    unsigned long long rows, failed, bytes;
    char first[640];
    int shown;
} ctxstat_t;

typedef struct {
    const ctxdef_t *defs;
    size_t nd;
    const rows_t *rows;
    int quiet;           /* no "#" lines */
    int depth;
    int in_r;
    const row_t *row;    /* expected row of the current <r>, or NULL */
    int cur;             /* context of the current child element, or -1 */
    cmp_t cmp[MAXCTX];
    buf_t xb[MAXCTX];    /* transformed expected values */
    ctxstat_t st[MAXCTX];
    long long *ids;      /* ids of the <r> elements, in document order */
    size_t nids, capids;
    unsigned long nstruct;
    char struct_first[320];
} pstate_t;

static void struct_err(pstate_t *ps, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void struct_err(pstate_t *ps, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ps->nstruct == 0)
        snprintf(ps->struct_first, sizeof ps->struct_first, "%s", msg);
    ps->nstruct++;
    if (!ps->quiet && ps->nstruct <= MAX_DETAIL_LINES)
        printf("# structure: %s\n", msg);
}

static void begin_row(pstate_t *ps, const XML_Char **atts)
{
    const char *idv = NULL;
    char *end;
    long long id;
    size_t k;
    int i;
    ps->in_r = 1;
    ps->row = NULL;
    ps->cur = -1;
    for (i = 0; atts[i]; i += 2)
        if (strcmp(atts[i], "id") == 0)
            idv = atts[i + 1];
    if (!idv) {
        struct_err(ps, "<r> without id attribute");
        return;
    }
    errno = 0;
    id = strtoll(idv, &end, 10);
    if (errno || end == idv || *end) {
        struct_err(ps, "bad id attribute \"%.40s\"", idv);
        return;
    }
    if (ps->nids == ps->capids) {
        long long *q;
        ps->capids = ps->capids ? ps->capids * 2 : 512;
        q = realloc(ps->ids, ps->capids * sizeof *q);
        if (!q)
            die("out of memory");
        ps->ids = q;
    }
    ps->ids[ps->nids++] = id;
    ps->row = find_row(ps->rows, id);
    if (!ps->row) {
        struct_err(ps, "<r> with unknown id %lld", id);
        return;
    }
    for (k = 0; k < ps->nd; k++) {
        const ctxdef_t *d = &ps->defs[k];
        const unsigned char *base = ps->row->f;
        size_t bn = ps->row->fn;
        if (d->xf != X_PLAIN) {
            ps->xb[k].n = 0;
            if (d->xf == X_COMMENT)
                comment_expect(base, bn, &ps->xb[k]);
            else
                norm_cr(base, bn, &ps->xb[k]);
            base = ps->xb[k].p;
            bn = ps->xb[k].n;
        }
        cmp_init(&ps->cmp[k], d->pre, base, bn, d->rep, d->post);
        if (d->kind == K_ATTR) {
            for (i = 0; atts[i]; i += 2)
                if (strcmp(atts[i], d->xml) == 0) {
                    ps->cmp[k].seen = 1;
                    cmp_feed(&ps->cmp[k], (const unsigned char *)atts[i + 1],
                             strlen(atts[i + 1]));
                }
        }
    }
}

static void end_row(pstate_t *ps)
{
    size_t k;
    char detail[512];
    if (ps->row) {
        for (k = 0; k < ps->nd; k++) {
            ctxstat_t *s = &ps->st[k];
            s->rows++;
            s->bytes += ps->cmp[k].total;
            if (cmp_finish(&ps->cmp[k], detail, sizeof detail))
                continue;
            s->failed++;
            if (!s->first[0])
                snprintf(s->first, sizeof s->first, "row %lld [%s]: %s",
                         ps->row->id, ps->row->label, detail);
            if (!ps->quiet && s->shown < MAX_DETAIL_LINES) {
                printf("# %s: row %lld [%s]: %s\n", ps->defs[k].name,
                       ps->row->id, ps->row->label, detail);
                s->shown++;
            }
        }
    }
    ps->in_r = 0;
    ps->row = NULL;
    ps->cur = -1;
}

static void XMLCALL on_start(void *ud, const XML_Char *name,
                             const XML_Char **atts)
{
    pstate_t *ps = ud;
    size_t k;
    ps->depth++;
    if (ps->depth == 1) {
        if (strcmp(name, "doc") != 0)
            struct_err(ps, "root element <%.40s>, expected <doc>", name);
        return;
    }
    if (ps->depth == 2) {
        if (strcmp(name, "r") != 0)
            struct_err(ps, "unexpected <%.40s> in <doc>", name);
        else
            begin_row(ps, atts);
        return;
    }
    if (ps->depth == 3 && ps->in_r) {
        for (k = 0; k < ps->nd; k++)
            if (ps->defs[k].kind == K_ELEM &&
                strcmp(ps->defs[k].xml, name) == 0) {
                if (ps->cmp[k].seen)
                    ps->cmp[k].dup = 1;
                ps->cmp[k].seen = 1;
                ps->cur = (int)k;
                return;
            }
    }
    struct_err(ps, "unexpected element <%.40s> at depth %d", name, ps->depth);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    pstate_t *ps = ud;
    (void)name;
    if (ps->depth == 3)
        ps->cur = -1;
    else if (ps->depth == 2 && ps->in_r)
        end_row(ps);
    ps->depth--;
}

/* Character data, including CDATA content; runs are compared as they come. */
static void XMLCALL on_chars(void *ud, const XML_Char *s, int len)
{
    pstate_t *ps = ud;
    if (len <= 0)
        return;
    if (ps->depth == 3 && ps->in_r && ps->cur >= 0) {
        if (ps->row)
            cmp_feed(&ps->cmp[ps->cur], (const unsigned char *)s, (size_t)len);
        return;
    }
    if (ps->depth >= 3)
        return; /* inside an unexpected element, already reported */
    struct_err(ps, "character data outside the value contexts (depth %d)",
               ps->depth);
}

static void XMLCALL on_comment(void *ud, const XML_Char *data)
{
    pstate_t *ps = ud;
    size_t k;
    if (ps->depth == 2 && ps->in_r) {
        for (k = 0; k < ps->nd; k++)
            if (ps->defs[k].kind == K_COMMENT) {
                if (!ps->row)
                    return;
                if (ps->cmp[k].seen)
                    ps->cmp[k].dup = 1;
                ps->cmp[k].seen = 1;
                cmp_feed(&ps->cmp[k], (const unsigned char *)data,
                         strlen(data));
                return;
            }
    }
    struct_err(ps, "unexpected comment at depth %d", ps->depth);
}

static void pstate_init(pstate_t *ps, const ctxdef_t *defs, size_t nd,
                        const rows_t *rows, int quiet)
{
    memset(ps, 0, sizeof *ps);
    if (nd > MAXCTX)
        die("too many contexts");
    ps->defs = defs;
    ps->nd = nd;
    ps->rows = rows;
    ps->quiet = quiet;
    ps->cur = -1;
}

static void pstate_free(pstate_t *ps)
{
    size_t k;
    for (k = 0; k < MAXCTX; k++)
        buf_free(&ps->xb[k]);
    free(ps->ids);
    ps->ids = NULL;
}

/* Streams f through expat; returns 1 if the document is well-formed. */
static int parse_xml(FILE *f, pstate_t *ps, char *err, size_t en)
{
    XML_Parser p = XML_ParserCreate(NULL);
    char *chunk = malloc(XML_CHUNK);
    int ok = 1;
    if (!p || !chunk)
        die("cannot create parser");
    XML_SetUserData(p, ps);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_chars);
    XML_SetCommentHandler(p, on_comment);
    for (;;) {
        size_t n = fread(chunk, 1, XML_CHUNK, f);
        int fin = n < XML_CHUNK;
        if (ferror(f)) {
            snprintf(err, en, "read error");
            ok = 0;
            break;
        }
        if (XML_Parse(p, chunk, (int)n, fin) == XML_STATUS_ERROR) {
            long long at = (long long)XML_GetCurrentByteIndex(p);
            unsigned char around[8];
            size_t an = 0;
            char hx[40];
            clearerr(f);
            if (at >= 0 && fseeko(f, (off_t)at, SEEK_SET) == 0)
                an = fread(around, 1, sizeof around, f);
            hex_of(hx, sizeof hx, around, an);
            snprintf(err, en,
                     "expat: %s at line %llu column %llu (byte %lld: [%s])",
                     XML_ErrorString(XML_GetErrorCode(p)),
                     (unsigned long long)XML_GetCurrentLineNumber(p),
                     (unsigned long long)XML_GetCurrentColumnNumber(p), at, hx);
            ok = 0;
            break;
        }
        if (fin)
            break;
    }
    free(chunk);
    XML_ParserFree(p);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Built-in reference writer (self-test only; stands in for sqlfeed)   */
/* ------------------------------------------------------------------ */

static void bw_attr(FILE *o, const unsigned char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        case '\'': fputs("&apos;", o); break;
        case '\t': fputs("&#9;", o); break;
        case '\n': fputs("&#10;", o); break;
        case '\r': fputs("&#13;", o); break;
        default: putc(s[i], o);
        }
    }
}

static void bw_text(FILE *o, const unsigned char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '\r': fputs("&#13;", o); break;
        default: putc(s[i], o);
        }
    }
}

/* Whole content of one CDATA section: split "]]>", CR as char ref. */
static void bw_cdata(FILE *o, const unsigned char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] == ']' && i + 2 < n && s[i + 1] == ']' && s[i + 2] == '>') {
            fputs("]]]]><![CDATA[>", o);
            i += 2;
        } else if (s[i] == '\r') {
            fputs("]]>&#13;<![CDATA[", o);
        } else {
            putc(s[i], o);
        }
    }
}

static int bw_write(const char *out, const rows_t *rows, const long long *ids,
                    size_t nids, int raw)
{
    FILE *o = fopen(out, "wb");
    buf_t tmp = {0};
    size_t i;
    int ok;
    if (!o)
        return 0;
    fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<doc>", o);
    for (i = 0; i < nids; i++) {
        const row_t *r = find_row(rows, ids[i]);
        if (!r)
            continue;
        if (raw) {
            fprintf(o, "<r id=\"%lld\"><a>", r->id);
            if (r->fn)
                fwrite(r->f, 1, r->fn, o);
            fputs("</a><b>", o);
            if (r->fn)
                fwrite(r->f, 1, r->fn, o);
            fputs("</b></r>", o);
            continue;
        }
        fprintf(o, "<r id=\"%lld\" dq=\"", r->id);
        bw_attr(o, r->f, r->fn);
        fputs("\" sq='", o);
        bw_attr(o, r->f, r->fn);
        fputs("'><text>", o);
        bw_text(o, r->f, r->fn);
        fputs("</text><tl>pre", o);
        bw_text(o, r->f, r->fn);
        fputs("post</tl><ta>", o);
        bw_text(o, r->f, r->fn);
        bw_text(o, r->f, r->fn);
        fputs("</ta><cdata><![CDATA[", o);
        bw_cdata(o, r->f, r->fn);
        fputs("]]></cdata><cl><![CDATA[", o);
        tmp.n = 0;
        buf_puts(&tmp, "pre");
        buf_put(&tmp, r->f, r->fn);
        buf_puts(&tmp, "post");
        bw_cdata(o, tmp.p, tmp.n);
        fputs("]]></cl><ca><![CDATA[", o);
        tmp.n = 0;
        buf_put(&tmp, r->f, r->fn);
        buf_put(&tmp, r->f, r->fn);
        bw_cdata(o, tmp.p, tmp.n);
        fputs("]]></ca><!--", o);
        tmp.n = 0;
        comment_dashes(r->f, r->fn, &tmp); /* CR stays raw */
        if (tmp.n)
            fwrite(tmp.p, 1, tmp.n, o);
        fputs("--></r>", o);
    }
    fputs("</doc>\n", o);
    buf_free(&tmp);
    ok = !ferror(o);
    return fclose(o) == 0 && ok;
}

/* ------------------------------------------------------------------ */
/* Running sqlfeed                                                     */
/* ------------------------------------------------------------------ */

/* fork/execv + waitpid; returns 1 iff the exit status is 0. */
static int run_sqlfeed(const char *bin, const char *db, const char *query,
                       const char *tpl, const char *out, char *detail,
                       size_t dn)
{
    char *argv[12];
    pid_t pid;
    int st;
    argv[0] = (char *)bin;
    argv[1] = (char *)"render";
    argv[2] = (char *)"--db";
    argv[3] = (char *)db;
    argv[4] = (char *)"--query";
    argv[5] = (char *)query;
    argv[6] = (char *)"--template";
    argv[7] = (char *)tpl;
    argv[8] = (char *)"-o";
    argv[9] = (char *)out;
    argv[10] = (char *)"--quiet";
    argv[11] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        snprintf(detail, dn, "fork: %s", strerror(errno));
        return 0;
    }
    if (pid == 0) {
        alarm(CLI_TIMEOUT_S); /* survives execv: a hang ends as SIGALRM */
        execv(bin, argv);
        fprintf(stderr, "hostile_test: execv %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            snprintf(detail, dn, "waitpid: %s", strerror(errno));
            return 0;
        }
    }
    if (WIFEXITED(st)) {
        if (WEXITSTATUS(st) == 0)
            return 1;
        snprintf(detail, dn, "exit status %d%s", WEXITSTATUS(st),
                 WEXITSTATUS(st) == 127 ? " (exec failed?)" : "");
        return 0;
    }
    if (WIFSIGNALED(st)) {
        snprintf(detail, dn, "killed by signal %d%s", WTERMSIG(st),
                 WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
        return 0;
    }
    snprintf(detail, dn, "unexpected wait status %d", st);
    return 0;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f)
        return 0;
    ok = fputs(text, f) >= 0;
    return (fclose(f) == 0) && ok;
}

/* ------------------------------------------------------------------ */
/* One render + parse + compare pass                                   */
/* ------------------------------------------------------------------ */

/*
 * bin == NULL: use the built-in writer (self-test).  raw selects the raw
 * template and only the rows whose filtered value has no < & ] >.
 */
static void run_part(const char *bin, const char *dir, int raw,
                     const rows_t *rows)
{
    const ctxdef_t *defs = raw ? RAW_CTX : MAIN_CTX;
    size_t nd = raw ? sizeof RAW_CTX / sizeof RAW_CTX[0]
                    : sizeof MAIN_CTX / sizeof MAIN_CTX[0];
    const char *pfx = raw ? "raw " : "";
    char db[4096], tpl[4096], out[4096], name[128], detail[1024];
    long long *want = malloc((rows->n + 1) * sizeof *want);
    size_t nwant = 0, i, k;
    buf_t query = {0};
    pstate_t ps;
    FILE *f;
    int wf, rendered;

    if (!want)
        die("out of memory");
    snprintf(db, sizeof db, "%s/hostile.db", dir);
    snprintf(tpl, sizeof tpl, "%s/%s", dir,
             raw ? "hostile_raw.mustache" : "hostile.mustache");
    snprintf(out, sizeof out, "%s/%s", dir,
             raw ? "hostile_raw.xml" : "hostile.xml");

    /* rows to expect, and the query selecting them */
    if (!raw) {
        buf_puts(&query, "SELECT id, v FROM t ORDER BY id");
        for (i = 0; i < rows->n; i++)
            want[nwant++] = rows->v[i].id;
    } else {
        buf_puts(&query, "SELECT id, v FROM t WHERE id IN (");
        for (i = 0; i < rows->n; i++) {
            const row_t *r = &rows->v[i];
            char num[32];
            size_t j;
            int ok = 1;
            for (j = 0; j < r->fn && ok; j++)
                if (r->f[j] == '<' || r->f[j] == '&' || r->f[j] == ']' ||
                    r->f[j] == '>')
                    ok = 0;
            if (!ok)
                continue;
            snprintf(num, sizeof num, "%s%lld", nwant ? "," : "", r->id);
            buf_puts(&query, num);
            want[nwant++] = r->id;
        }
        buf_puts(&query, ") ORDER BY id");
    }
    buf_putc(&query, 0);

    /* render */
    snprintf(name, sizeof name, "%srender exit status", pfx);
    unlink(out);
    if (!write_file(tpl, raw ? RAW_TEMPLATE : MAIN_TEMPLATE)) {
        fail(name, "cannot write template %s", tpl);
        rendered = 0;
    } else if (bin) {
        rendered = run_sqlfeed(bin, db, (const char *)query.p, tpl, out,
                               detail, sizeof detail);
        check(rendered, name, detail);
    } else {
        rendered = bw_write(out, rows, want, nwant, raw);
        check(rendered, name, "built-in writer failed");
    }

    /* parse and compare */
    pstate_init(&ps, defs, nd, rows, 0);
    snprintf(name, sizeof name, "%swell-formed", pfx);
    f = fopen(out, "rb");
    if (!f) {
        snprintf(detail, sizeof detail, "cannot open %.300s: %s", out,
                 strerror(errno));
        wf = 0;
    } else {
        wf = parse_xml(f, &ps, detail, sizeof detail);
        fclose(f);
    }
    check(wf, name, detail);

    /* every row exactly once, in id order */
    snprintf(name, sizeof name, "%srows exactly once in id order", pfx);
    for (i = 0; i < nwant && i < ps.nids && want[i] == ps.ids[i]; i++)
        ;
    if (i == nwant && i == ps.nids) {
        pass(name);
    } else {
        char w[32] = "none", g[32] = "none";
        if (i < nwant)
            snprintf(w, sizeof w, "%lld", want[i]);
        if (i < ps.nids)
            snprintf(g, sizeof g, "%lld", ps.ids[i]);
        fail(name, "expected %zu rows, got %zu; first difference at "
                   "position %zu: expected id %s, got id %s",
             nwant, ps.nids, i, w, g);
    }

    snprintf(name, sizeof name, "%sstructure", pfx);
    if (ps.nstruct != 0)
        fail(name, "%lu problem(s), first: %s", ps.nstruct, ps.struct_first);
    else if (!wf)
        fail(name, "document not fully parsed");
    else
        pass(name);

    /* one check per context */
    for (k = 0; k < nd; k++) {
        const ctxstat_t *s = &ps.st[k];
        snprintf(name, sizeof name, "context %s", defs[k].name);
        g_ctx_compared += s->rows;
        g_bytes_compared += s->bytes;
        if (!wf)
            fail(name, "document not fully parsed (%llu rows compared, "
                       "%llu differ)%s%s",
                 s->rows, s->failed, s->first[0] ? "; first: " : "",
                 s->first);
        else if (s->rows == 0)
            fail(name, "no rows compared");
        else if (s->failed)
            fail(name, "%llu of %llu rows differ; first: %s", s->failed,
                 s->rows, s->first);
        else
            pass(name);
    }
    pstate_free(&ps);
    buf_free(&query);
    free(want);
}

/* Build the database, then run the main and the raw pass. */
static void run_all(const char *bin, const char *dir)
{
    char db[4096], err[512];
    dbb_t d;
    rows_t rows = {0};
    memset(&d, 0, sizeof d);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fail("create database", "mkdir %s: %s", dir, strerror(errno));
        return;
    }
    snprintf(db, sizeof db, "%s/hostile.db", dir);
    if (!build_db(db, &d, err, sizeof err)) {
        fail("create database", "%s", err);
        if (d.st)
            sqlite3_finalize(d.st);
        sqlite3_close(d.db);
        free(d.labels);
        return;
    }
    if (!load_rows(db, &d, &rows, err, sizeof err)) {
        fail("create database", "%s", err);
        free(d.labels);
        rows_free(&rows);
        return;
    }
    if (rows.n != d.n) {
        fail("create database", "inserted %zu rows, read back %zu", d.n,
             rows.n);
    } else {
        pass("create database");
    }
    g_rows_total = rows.n;
    run_part(bin, dir, 0, &rows);
    run_part(bin, dir, 1, &rows);
    rows_free(&rows);
    free(d.labels);
}

/* ------------------------------------------------------------------ */
/* Self-test of the reference filter and the collector                 */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    const char *in;
    size_t inn;
    const char *out;
    size_t outn;
} vec_t;

#define V(n, i, o) {n, i, sizeof(i) - 1, o, sizeof(o) - 1}
#define R "\xEF\xBF\xBD"

static const vec_t FILTER_VECS[] = {
    V("E2 82 at end -> 1 U+FFFD", "\xE2\x82", R),
    V("C0 AF -> 2", "\xC0\xAF", R R),
    V("ED A0 80 -> 3", "\xED\xA0\x80", R R R),
    V("F0 9F 98 at end -> 1", "\xF0\x9F\x98", R),
    V("F0 9F 98 41 -> 1 + A", "\xF0\x9F\x98" "A", R "A"),
    V("C3 at end", "a\xC3", "a" R),
    V("C3 28", "\xC3(", R "("),
    V("E2 28 A1 (WHATWG)", "\xE2\x28\xA1", R "(" R),
    V("E0 80 AF -> 3", "\xE0\x80\xAF", R R R),
    V("E0 9F BF -> 3", "\xE0\x9F\xBF", R R R),
    V("F0 80 80 AF -> 4", "\xF0\x80\x80\xAF", R R R R),
    V("C1 BF -> 2", "\xC1\xBF", R R),
    V("80 BF -> 2", "\x80\xBF", R R),
    V("F4 90 80 80 -> 4", "\xF4\x90\x80\x80", R R R R),
    V("F5 -> 1", "\xF5", R),
    V("FF -> 1", "\xFF", R),
    V("F5..FF -> 11", "\xF5\xF6\xF7\xF8\xF9\xFA\xFB\xFC\xFD\xFE\xFF",
      R R R R R R R R R R R),
    V("F8 88 80 80 80 -> 5", "\xF8\x88\x80\x80\x80", R R R R R),
    V("ED BF BF -> 3", "\xED\xBF\xBF", R R R),
    V("surrogate pair -> 6", "\xED\xA0\xBD\xED\xB8\x80", R R R R R R),
    V("U+FFFE -> 1", "\xEF\xBF\xBE", R),
    V("U+FFFF -> 1", "\xEF\xBF\xBF", R),
    V("U+FFFD kept", R, R),
    V("U+FDD0 kept", "\xEF\xB7\x90", "\xEF\xB7\x90"),
    V("U+1FFFE kept", "\xF0\x9F\xBF\xBE", "\xF0\x9F\xBF\xBE"),
    V("U+10FFFF kept", "\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"),
    V("U+FEFF kept", "a\xEF\xBB\xBF" "b", "a\xEF\xBB\xBF" "b"),
    V("U+D7FF/U+E000 kept", "\xED\x9F\xBF\xEE\x80\x80",
      "\xED\x9F\xBF\xEE\x80\x80"),
    V("2/3/4-byte kept", "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80",
      "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"),
    V("NUL -> 1", "\0", R),
    V("C0 controls -> U+FFFD", "\x01\x08\x0B\x0C\x0E\x1F", R R R R R R),
    V("TAB LF CR kept", "\t\n\r", "\t\n\r"),
    V("DEL and C1 kept", "\x7F\xC2\x80\xC2\x9F", "\x7F\xC2\x80\xC2\x9F"),
    V("Unicode table 3-8",
      "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
      "a" R R R "b" R "c" R R "d"),
    V("Unicode non-shortest forms", "\xC0\xAF\xE0\x80\xBF\xF0\x81\x82\x41",
      R R R R R R R R "A"),
    V("Unicode ill-formed surrogates", "\xED\xA0\x80\xED\xBF\xBF\xED\xAF\x41",
      R R R R R R R R "A"),
    V("Unicode other ill-formed", "\xF4\x91\x92\x93\xFF\x41\x80\xBF\x42",
      R R R R R "A" R R "B"),
    V("Unicode truncated", "\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41",
      R R R R "A"),
    V("empty", "", ""),
};

static const vec_t COMMENT_VECS[] = {
    V("--", "--", " - - "),
    V("-", "-", " - "),
    V("a-", "a-", "a- "),
    V("-a", "-a", " -a"),
    V("a--b", "a--b", "a- -b"),
    V("---", "---", " - - - "),
    V("x-y", "x-y", "x-y"),
    V("CR handling", "a\r\nb\rc\r", "a\nb\nc\n"),
    V("CR then dash", "\r-", "\n- "),
    V("empty", "", ""),
};

static const vec_t NORM_VECS[] = {
    V("CRLF", "\r\n", "\n"),
    V("CR CRLF", "\r\r\n", "\n\n"),
    V("LF CR", "\n\r", "\n\n"),
    V("lone CR at end", "a\r", "a\n"),
};

static void run_vecs(const char *what, const vec_t *v, size_t n, int mode)
{
    size_t i;
    char name[160], eh[40], gh[40];
    for (i = 0; i < n; i++) {
        buf_t out = {0};
        size_t j = 0;
        if (mode == 0)
            ref_filter((const unsigned char *)v[i].in, v[i].inn, &out);
        else if (mode == 1)
            comment_expect((const unsigned char *)v[i].in, v[i].inn, &out);
        else
            norm_cr((const unsigned char *)v[i].in, v[i].inn, &out);
        snprintf(name, sizeof name, "selftest %s: %s", what, v[i].name);
        if (out.n == v[i].outn &&
            (out.n == 0 || memcmp(out.p, v[i].out, out.n) == 0)) {
            pass(name);
        } else {
            while (j < out.n && j < v[i].outn &&
                   out.p[j] == (unsigned char)v[i].out[j])
                j++;
            hex_of(eh, sizeof eh, (const unsigned char *)v[i].out + j,
                   v[i].outn - j);
            hex_of(gh, sizeof gh, out.p ? out.p + j : NULL, out.n - j);
            fail(name, "offset %zu: expected [%s] got [%s]", j, eh, gh);
        }
        buf_free(&out);
    }
}

/* Hand-written document: row 1 correct everywhere, row 2 wrong in cdata. */
static const char HAND_DOC[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<doc><r id=\"1\" dq=\"a&#9;b&#13;&#10;c]]&gt;d-\""
    " sq='a&#9;b&#13;&#10;c]]&gt;d-'>"
    "<text>a\tb&#13;\nc]]&gt;d-</text>"
    "<tl>prea\tb&#13;\nc]]&gt;d-post</tl>"
    "<ta>a\tb&#13;\nc]]&gt;d-a\tb&#13;\nc]]&gt;d-</ta>"
    "<cdata><![CDATA[a\tb]]>&#13;<![CDATA[\nc]]]]><![CDATA[>d-]]></cdata>"
    "<cl><![CDATA[prea\tb]]>&#13;<![CDATA[\nc]]]]><![CDATA[>d-post]]></cl>"
    "<ca><![CDATA[a\tb]]>&#13;<![CDATA[\nc]]]]><![CDATA[>d-a\tb]]>&#13;"
    "<![CDATA[\nc]]]]><![CDATA[>d-]]></ca>"
    "<!--a\tb\r\nc]]>d- --></r>"
    "<r id=\"2\" dq=\"-x\" sq='-x'><text>-x</text><tl>pre-xpost</tl>"
    "<ta>-x-x</ta><cdata><![CDATA[-y]]></cdata>"
    "<cl><![CDATA[pre-xpost]]></cl><ca><![CDATA[-x-x]]></ca><!-- -x--></r>"
    "</doc>\n";

static int parse_string(const char *doc, pstate_t *ps, char *err, size_t en)
{
    FILE *f = tmpfile();
    int ok;
    if (!f)
        die("tmpfile");
    fputs(doc, f);
    rewind(f);
    ok = parse_xml(f, ps, err, en);
    fclose(f);
    return ok;
}

static void self_test_collector(void)
{
    static const char f1[] = "a\tb\r\nc]]>d-";
    rows_t rows;
    row_t rv[2];
    pstate_t ps;
    char err[512] = "", detail[256];
    size_t k;
    int ok;

    row_set(&rv[0], 1, "hand 1", (const unsigned char *)f1, sizeof f1 - 1);
    row_set(&rv[1], 2, "hand 2", (const unsigned char *)"-x", 2);
    rows.v = rv;
    rows.n = 2;

    pstate_init(&ps, MAIN_CTX, sizeof MAIN_CTX / sizeof MAIN_CTX[0], &rows,
                1);
    ok = parse_string(HAND_DOC, &ps, err, sizeof err);
    check(ok, "selftest collector: hand document well-formed", err);
    ok = ps.nids == 2 && ps.ids[0] == 1 && ps.ids[1] == 2 && ps.nstruct == 0;
    check(ok, "selftest collector: rows and structure",
          ps.nstruct ? ps.struct_first : "wrong row ids");
    for (k = 0; k < ps.nd; k++) {
        char name[96];
        unsigned long long want_fail = strcmp(MAIN_CTX[k].name, "cdata") == 0;
        snprintf(name, sizeof name, "selftest collector: %s",
                 MAIN_CTX[k].name);
        snprintf(detail, sizeof detail,
                 "%llu rows, %llu failed (want 2, %llu): %s", ps.st[k].rows,
                 ps.st[k].failed, want_fail, ps.st[k].first);
        check(ps.st[k].rows == 2 && ps.st[k].failed == want_fail, name,
              detail);
    }
    k = 5; /* cdata: the mismatch must be located at offset 1 */
    check(strstr(ps.st[k].first, "offset 1: expected [78] got [79]") != NULL,
          "selftest collector: mismatch detail", ps.st[k].first);
    pstate_free(&ps);

    /* negative: expat must reject a raw control character */
    pstate_init(&ps, MAIN_CTX, sizeof MAIN_CTX / sizeof MAIN_CTX[0], &rows,
                1);
    ok = parse_string("<doc><r id=\"1\"><text>\x01</text></r></doc>", &ps,
                      err, sizeof err);
    check(!ok && strstr(err, "line 1") != NULL,
          "selftest collector: control character rejected",
          ok ? "document accepted" : err);
    pstate_free(&ps);

    /* negative: "--" inside a comment */
    pstate_init(&ps, MAIN_CTX, sizeof MAIN_CTX / sizeof MAIN_CTX[0], &rows,
                1);
    ok = parse_string("<doc><r id=\"1\"><!--a--b--></r></doc>", &ps, err,
                      sizeof err);
    check(!ok, "selftest collector: -- in comment rejected",
          "document accepted");
    pstate_free(&ps);

    free(rv[0].f);
    free(rv[1].f);
}

static void self_test_units(void)
{
    run_vecs("filter", FILTER_VECS, sizeof FILTER_VECS / sizeof FILTER_VECS[0],
             0);
    run_vecs("comment", COMMENT_VECS,
             sizeof COMMENT_VECS / sizeof COMMENT_VECS[0], 1);
    run_vecs("norm_cr", NORM_VECS, sizeof NORM_VECS / sizeof NORM_VECS[0], 2);
    self_test_collector();
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--self-test") == 0) {
        self_test_units();
        if (argc >= 3)
            run_all(NULL, argv[2]);
    } else if (argc == 3) {
        run_all(argv[1], argv[2]);
    } else {
        fprintf(stderr,
                "usage: %s PATH_TO_SQLFEED SCRATCH_DIR\n"
                "       %s --self-test [SCRATCH_DIR]\n",
                argv[0], argv[0]);
        return 2;
    }
    printf("hostile: %zu rows, %llu contexts compared, %llu bytes of "
           "allowed characters compared (%d passed, %d failed)\n",
           g_rows_total, g_ctx_compared, g_bytes_compared, g_pass, g_fail);
    return g_fail ? 1 : 0;
}
