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
/* A bit per byte of v that the scalar code must look at in mode `esc`:
 * every C0 control and every byte >= 0x80 (one signed compare catches
 * both; TAB and LF, copied by most modes, are flagged too and copied by the
 * scalar code: rarer than the markup, they cost less than excluding them on
 * every block), and the mode's own specials, paired where one compare can
 * take two: (v | 2) == '>' is exactly '<' (0x3C) or '>' (0x3E), and
 * (v | 1) == '\'' exactly '&' (0x26) or '\'' (0x27). */
static inline unsigned simd_specials(__m128i v, sf_esc esc)
{
#define EQ(x, ch) _mm_cmpeq_epi8((x), _mm_set1_epi8(ch))
    __m128i m = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
    __m128i lt_gt = EQ(_mm_or_si128(v, _mm_set1_epi8(2)), '>');
    switch (esc) {
    case SF_ESC_TEXT: m = _mm_or_si128(m, _mm_or_si128(lt_gt, EQ(v, '&'))); break;
    case SF_ESC_ATTR:
        m = _mm_or_si128(m, _mm_or_si128(lt_gt, _mm_or_si128(EQ(_mm_or_si128(v, _mm_set1_epi8(1)),
                                                                 '\''),
                                                              EQ(v, '"'))));
        break;
    case SF_ESC_HTML:
        m = _mm_or_si128(m, _mm_or_si128(lt_gt, _mm_or_si128(EQ(v, '&'), EQ(v, '"'))));
        break;
    case SF_ESC_CDATA: m = _mm_or_si128(m, EQ(v, ']')); break;
    case SF_ESC_COMMENT: m = _mm_or_si128(m, EQ(v, '-')); break;
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

#ifdef __SSE2__
    /* Blocks of 16, copied as they go: each block is stored whole into the
     * buffer, and the output advances to the first byte that needs a look
     * (all 16 when none does); that byte is handled here, writing straight
     * into the buffer, and the next block loads from the byte after it. A
     * value dense in markup (an HTML description: a '<', '>' or '&' every
     * 17 bytes in the reference feed) then costs a load, a store and one
     * replacement per special, with no run to track and copy. The buffer
     * keeps BLOCK_ROOM free: the furthest a block writes is a replacement's
     * 8-byte store at its 16th byte (23 past the length; the longer
     * replacements, CDATA's and a comment's, are the loop below's); with
     * less, the loop below goes on, which fills the buffer to its last
     * byte. Only a full buffer drains, so what goes
     * downstream is cut in the same places with the writer thread (which
     * packs whole buffers) and without: ISA-L's deflate output depends on
     * where its input is cut. The last byte is always left to the loop below
     * (strictly more than 16 bytes to go), which knows how a value ends. */
    enum { BLOCK_ROOM = 32 };
    /* The buffer's length in a local: the stores through `ob` could alias
     * *w, which would make the compiler reload it every block. */
    char *const ob = w->buf;
    size_t olen = w->len;
    const size_t cap = w->cap; /* no smaller buffer than BLOCK_ROOM is assumed */
    while (end - p > 16 && olen + BLOCK_ROOM <= cap) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = simd_specials(v, esc);
        _mm_storeu_si128((__m128i *)(void *)(ob + olen), v);
        if (SF_LIKELY(!m)) {
            olen += 16;
            p += 16;
            continue;
        }
        unsigned j = (unsigned)__builtin_ctz(m);
        olen += j;
        p += j;
        unsigned c = *p;
        unsigned k = t->cls[c];
        if (k == C_REPL) {
            memcpy(ob + olen, t->repl[c].s, 8);
            olen += t->repl[c].n;
            p++;
        } else if (k == C_UTF8) {
            size_t bad = 0, n8 = sf_utf8_seq(p, end, &bad);
            if (SF_LIKELY(n8)) {
                if (end - p >= 4) /* one fixed store; the buffer has the room */
                    memcpy(ob + olen, p, 4);
                else
                    memcpy(ob + olen, p, n8);
                olen += n8;
                p += n8;
            } else {
                memcpy(ob + olen, FFFD, 3);
                olen += 3;
                p += bad;
            }
        } else if (k == C_COPY) { /* TAB, LF (and CR where it is copied) */
            ob[olen++] = (char)c;
            p++;
        } else {
            break; /* CDATA's ']' and CR, a comment's '-': the loop below */
        }
    }
    w->len = olen;
#endif
    run = p;
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
            if (w->cap - w->len >= 8) { /* one fixed store */
                memcpy(w->buf + w->len, t->repl[c].s, 8);
                w->len += t->repl[c].n;
            } else {
                PUT(t->repl[c].s, t->repl[c].n); /* fills the buffer, then drains */
            }
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
