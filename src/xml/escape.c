/* escape.c: writing one value into XML, safely for its context.
 *
 * One pass over the bytes. Runs of bytes that need nothing (most of any
 * real text, multi-byte UTF-8 included) are copied with one memcpy; the scan
 * stops only at an ASCII byte the context treats specially, at a UTF-8 lead
 * byte whose sequence is ill-formed, or at U+FFFE/U+FFFF.
 *
 * Policy (docs/xml.md): every maximal ill-formed UTF-8 subsequence becomes
 * one U+FFFD (the Unicode "maximal subpart" practice, as WHATWG decoders do);
 * well-formed code points XML 1.0 forbids (C0 controls other than TAB, LF,
 * CR; U+FFFE; U+FFFF) also become U+FFFD. Surrogates and values above
 * U+10FFFF cannot be well-formed UTF-8, so the first rule covers them. */
#include "xml.h"

#include "../common.h"

#define FFFD "\xEF\xBF\xBD"

int sf_wbuf_put_slow(sf_wbuf *w, const char *p, size_t n)
{
    while (n) {
        if (w->len == w->cap && w->drain(w) != 0)
            return -1;
        size_t k = w->cap - w->len;
        if (k > n)
            k = n;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
    }
    return 0;
}

/* Byte classes: 0 copy, 1 an ASCII byte with a replacement in this context,
 * 2 a byte >= 0x80 (check the UTF-8 sequence), 3 context-specific logic. */
enum { C_COPY = 0, C_REPL = 1, C_UTF8 = 2, C_SPECIAL = 3 };

/* Replacements are stored in 8-byte slots and written with one fixed-size
 * store (the buffer keeps room for it), then the length is added. */
typedef struct esc_repl {
    char s[7];
    uint8_t n;
} esc_repl;

typedef struct esc_table {
    uint8_t cls[256];
    esc_repl repl[128];
} esc_table;

#define R(lit) { lit, sizeof(lit) - 1 }

/* The tables are built at compile time from designated initializers (with
 * the GNU range extension gcc and clang accept), so there is no mutable state
 * and no init call. */
#define CTRL_TO_FFFD [0 ... 8] = R(FFFD), [11] = R(FFFD), [12] = R(FFFD), [14 ... 31] = R(FFFD)
#define HIGH_UTF8 [0x80 ... 0xFF] = C_UTF8
#define CTRL_CLS [0 ... 8] = C_REPL, [11] = C_REPL, [12] = C_REPL, [14 ... 31] = C_REPL

static const esc_table tables[SF_ESC_COUNT] = {
    [SF_ESC_TEXT] = {
        .cls = { CTRL_CLS, ['\r'] = C_REPL, ['&'] = C_REPL, ['<'] = C_REPL, ['>'] = C_REPL,
                 HIGH_UTF8 },
        .repl = { CTRL_TO_FFFD, ['\r'] = R("&#13;"), ['&'] = R("&amp;"), ['<'] = R("&lt;"),
                  ['>'] = R("&gt;") },
    },
    [SF_ESC_ATTR] = {
        .cls = { CTRL_CLS, ['\t'] = C_REPL, ['\n'] = C_REPL, ['\r'] = C_REPL, ['&'] = C_REPL,
                 ['<'] = C_REPL, ['>'] = C_REPL, ['"'] = C_REPL, ['\''] = C_REPL, HIGH_UTF8 },
        .repl = { CTRL_TO_FFFD, ['\t'] = R("&#9;"), ['\n'] = R("&#10;"), ['\r'] = R("&#13;"),
                  ['&'] = R("&amp;"), ['<'] = R("&lt;"), ['>'] = R("&gt;"), ['"'] = R("&quot;"),
                  ['\''] = R("&apos;") },
    },
    [SF_ESC_CDATA] = {
        .cls = { CTRL_CLS, ['\r'] = C_SPECIAL, [']'] = C_SPECIAL, HIGH_UTF8 },
        .repl = { CTRL_TO_FFFD },
    },
    [SF_ESC_COMMENT] = {
        .cls = { CTRL_CLS, ['-'] = C_SPECIAL, HIGH_UTF8 },
        .repl = { CTRL_TO_FFFD },
    },
    [SF_ESC_RAW] = {
        .cls = { CTRL_CLS, HIGH_UTF8 },
        .repl = { CTRL_TO_FFFD },
    },
    [SF_ESC_HTML] = {
        .cls = { CTRL_CLS, ['&'] = C_REPL, ['<'] = C_REPL, ['>'] = C_REPL, ['"'] = C_REPL,
                 HIGH_UTF8 },
        .repl = { CTRL_TO_FFFD, ['&'] = R("&amp;"), ['<'] = R("&lt;"), ['>'] = R("&gt;"),
                  ['"'] = R("&quot;") },
    },
};

#ifdef __SSE2__
#include <emmintrin.h>
/* A bit per byte of v that the scalar loop must look at in mode `esc`:
 * C0 controls (less those the mode copies), bytes >= 0x80 (the signed
 * compare catches both), and the mode's own specials. */
static inline unsigned simd_specials(__m128i v, sf_esc esc)
{
#define EQ(ch) _mm_cmpeq_epi8(v, _mm_set1_epi8(ch))
    __m128i m = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
    __m128i copied = esc == SF_ESC_ATTR ? _mm_setzero_si128() : _mm_or_si128(EQ('\t'), EQ('\n'));
    if (esc == SF_ESC_COMMENT || esc == SF_ESC_RAW || esc == SF_ESC_HTML)
        copied = _mm_or_si128(copied, EQ('\r'));
    m = _mm_andnot_si128(copied, m);
    switch (esc) {
    case SF_ESC_TEXT:
        m = _mm_or_si128(m, _mm_or_si128(_mm_or_si128(EQ('<'), EQ('>')), _mm_or_si128(EQ('&'), EQ('\r'))));
        break;
    case SF_ESC_ATTR:
        m = _mm_or_si128(m, _mm_or_si128(_mm_or_si128(EQ('<'), EQ('>')),
                                          _mm_or_si128(EQ('&'), _mm_or_si128(EQ('"'), EQ('\'')))));
        break;
    case SF_ESC_CDATA: m = _mm_or_si128(m, _mm_or_si128(EQ(']'), EQ('\r'))); break;
    case SF_ESC_COMMENT: m = _mm_or_si128(m, EQ('-')); break;
    case SF_ESC_HTML:
        m = _mm_or_si128(m, _mm_or_si128(_mm_or_si128(EQ('<'), EQ('>')), _mm_or_si128(EQ('&'), EQ('"'))));
        break;
    case SF_ESC_RAW:
    case SF_ESC_COUNT: break;
    }
#undef EQ
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

#define PUT(p, n)                                                                            \
    do {                                                                                     \
        if (sf_wbuf_put(w, (const char *)(p), (n)) != 0)                                     \
            return -1;                                                                       \
    } while (0)
#define PUTS(lit) PUT(lit, sizeof(lit) - 1)

/* Copies a run; short runs (most, in markup-heavy text) as one 16-byte
 * store when both sides have the room. */
static inline int put_run(sf_wbuf *w, const unsigned char *run, size_t n,
                          const unsigned char *end)
{
    if (n <= 16 && (size_t)(end - run) >= 16 && w->cap - w->len >= 16) {
        memcpy(w->buf + w->len, run, 16);
        w->len += n;
        return 0;
    }
    return sf_wbuf_put(w, (const char *)run, n);
}

/* The body, inlined once per mode so `esc` is a constant everywhere. */
static inline __attribute__((always_inline)) int
write_mode(sf_wbuf *w, const sf_esc esc, const unsigned char *s, size_t n)
{
    const esc_table *t = &tables[esc];
    const unsigned char *p = s, *end = s + n, *run = s;

    /* A CDATA value that opens with '>' could complete a "]]" the template
     * left just before the tag; restart the section first. */
    if (esc == SF_ESC_CDATA && s[0] == '>')
        PUTS("]]><![CDATA[");
    else if (esc == SF_ESC_COMMENT && s[0] == '-')
        PUTS(" ");

    while (p < end) {
#ifdef __SSE2__
        while (end - p >= 16) {
            unsigned m = simd_specials(_mm_loadu_si128((const __m128i *)(const void *)p), esc);
            if (m) {
                p += __builtin_ctz(m);
                break;
            }
            p += 16;
        }
        if (p == end)
            break;
#endif
        unsigned c = *p;
        unsigned k = t->cls[c];
        if (SF_LIKELY(k == C_COPY)) {
            p++;
            continue;
        }
        size_t bad = 0;
        if (k == C_UTF8) {
            size_t len = sf_utf8_seq(p, end, &bad);
            if (SF_LIKELY(len)) {
                p += len;
                continue;
            }
        }
        if (put_run(w, run, (size_t)(p - run), end) != 0)
            return -1;
        if (k == C_REPL) {
            if (sf_wbuf_room(w, 8) != 0)
                return -1;
            memcpy(w->buf + w->len, t->repl[c].s, 8);
            w->len += t->repl[c].n;
            p++;
        } else if (k == C_UTF8) {
            PUTS(FFFD);
            p += bad;
        } else if (esc == SF_ESC_CDATA) {
            if (c == '\r') { /* CDATA cannot keep a CR: a reference between sections */
                PUTS("]]>&#13;<![CDATA[");
                p++;
            } else if (end - p >= 3 && p[1] == ']' && p[2] == '>') {
                PUTS("]]]]><![CDATA[>");
                p += 3;
            } else {
                PUTS("]");
                p++;
            }
        } else { /* SF_ESC_COMMENT, '-' */
            p++;
            if (p == end || *p == '-')
                PUTS("- ");
            else
                PUTS("-");
        }
        run = p;
    }
    /* In element text a ']' ending the value could complete "]]>" with a
     * '>' of the template's text (or with ']' and '>' after it); written as
     * a reference it cannot. (A '>' of the value is always &gt;, so this
     * last ']' is the only way a value could add to the token.) */
    if (esc == SF_ESC_TEXT && end[-1] == ']') {
        if (put_run(w, run, (size_t)(p - run) - 1, end) != 0)
            return -1;
        PUTS("&#93;");
        return 0;
    }
    if (put_run(w, run, (size_t)(p - run), end) != 0)
        return -1;
    /* A CDATA value that ends in ']' could complete "]]>" with the text that
     * follows; close and reopen the section so it cannot. */
    if (esc == SF_ESC_CDATA && end[-1] == ']')
        PUTS("]]><![CDATA[");
    return 0;
}

int sf_xml_write(sf_wbuf *w, sf_esc esc, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0)
        return 0;
    switch (esc) {
    case SF_ESC_TEXT: return write_mode(w, SF_ESC_TEXT, s, n);
    case SF_ESC_ATTR: return write_mode(w, SF_ESC_ATTR, s, n);
    case SF_ESC_CDATA: return write_mode(w, SF_ESC_CDATA, s, n);
    case SF_ESC_COMMENT: return write_mode(w, SF_ESC_COMMENT, s, n);
    case SF_ESC_RAW: return write_mode(w, SF_ESC_RAW, s, n);
    case SF_ESC_HTML: return write_mode(w, SF_ESC_HTML, s, n);
    case SF_ESC_COUNT: break;
    }
    return 0;
}
