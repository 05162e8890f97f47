/* xml.h: the XML layer: escaping a value for the context it lands in, and
 * the lexer that finds that context from a template's literal text.
 * Internal. */
#ifndef SF_XML_H
#define SF_XML_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A write buffer with a drain callback: the escaper appends to buf and calls
 * drain when it needs room; drain empties buf (len = 0) or returns -1 after
 * recording its own error. The output layer embeds one. */
typedef struct sf_wbuf sf_wbuf;
struct sf_wbuf {
    char *buf;
    size_t len, cap; /* cap >= SF_WBUF_MIN */
    int (*drain)(sf_wbuf *w);
};
#define SF_WBUF_MIN 4096

static inline int sf_wbuf_room(sf_wbuf *w, size_t n)
{
    return w->cap - w->len >= n ? 0 : w->drain(w);
}

int sf_wbuf_put_slow(sf_wbuf *w, const char *p, size_t n);
static inline int sf_wbuf_put(sf_wbuf *w, const char *p, size_t n)
{
    if (w->cap - w->len >= n) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
        return 0;
    }
    return sf_wbuf_put_slow(w, p, n);
}

/* Where an interpolated value lands, hence how it is written. */
typedef enum sf_esc {
    SF_ESC_TEXT = 0, /* element content: & < > and CR as references */
    SF_ESC_ATTR,     /* quoted attribute value: also " ' TAB LF */
    SF_ESC_CDATA,    /* inside <![CDATA[ ]]>: no entities; ]]> and CR split out */
    SF_ESC_COMMENT,  /* inside <!-- -->: "--" and a trailing "-" broken by a space */
    SF_ESC_RAW,      /* {{{x}}} / {{&x}}: character filter only */
    SF_ESC_HTML,     /* Mustache spec escaping: & " < > */
    SF_ESC_COUNT
} sf_esc;

/* Writes s[0..n) in mode `esc`, replacing invalid UTF-8 (each maximal
 * ill-formed subsequence) and code points XML 1.0 forbids with U+FFFD.
 * Returns 0, or -1 when the buffer's drain failed. */
int sf_xml_write(sf_wbuf *w, sf_esc esc, const char *s, size_t n);

/* Lexer states for a template's literal text. */
typedef enum sf_xml_state {
    SF_XS_TEXT = 0,  /* element content (or outside the root) */
    SF_XS_LT,        /* after '<', deciding what it opens */
    SF_XS_MARKUP,    /* inside <name ...> or </name>, outside quotes */
    SF_XS_ATTR_DQ,   /* inside a "..." attribute value */
    SF_XS_ATTR_SQ,   /* inside a '...' attribute value */
    SF_XS_CDATA,     /* inside <![CDATA[ ]]> */
    SF_XS_COMMENT,   /* inside <!-- --> */
    SF_XS_PI,        /* inside <? ?> */
    SF_XS_DECL       /* inside <!DOCTYPE ...> and other declarations */
} sf_xml_state;

typedef struct sf_xml_lexer {
    uint8_t state;  /* sf_xml_state */
    uint8_t match;  /* SF_XS_LT: chars of "<!--" / "<![CDATA[" seen; else end-token progress */
    uint8_t depth;  /* SF_XS_DECL: [ ] nesting */
    uint8_t pad;
} sf_xml_lexer;

void sf_xml_lex(sf_xml_lexer *lx, const char *s, size_t n);

/* The escaping for a tag at the lexer's position: 0 and *esc set, or -1 when
 * the position holds no value (a tag name, an unquoted attribute, a PI).
 * An interpolation resets the end-token progress (the value's own output is
 * made safe against what follows). */
int sf_xml_context(sf_xml_lexer *lx, sf_esc *esc);
const char *sf_xml_state_name(sf_xml_state st);

#endif
