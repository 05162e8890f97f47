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

/* The template's literal text is read by a lexer that follows every markup
 * construct of XML 1.0 (elements, attributes with both quotes, references,
 * comments, CDATA sections, processing instructions, the XML declaration,
 * DOCTYPE with quoted literals and an internal subset holding declarations,
 * comments, PIs and parameter-entity references). It checks the literal
 * markup as it goes and reports what the compiler must act on (a start tag,
 * an attribute, an end tag) as events; the compiler keeps the element stack,
 * since sections decide what is balanced. Interpolations are transparent to
 * it (a value may be empty): each value's own escaping makes sure it cannot
 * complete a token with the text around it. */
typedef enum sf_xml_state {
    SF_XS_TEXT = 0,     /* character data; `level` says before, in or after the root */
    SF_XS_REF,          /* after '&': a reference (sub: REF_*) */
    SF_XS_LT,           /* after '<', deciding what it opens */
    SF_XS_STAG_NAME,    /* a start tag's name */
    SF_XS_TAG,          /* inside a start tag, outside attribute values (sub: TAG_*) */
    SF_XS_ATTR_NAME,    /* an attribute's name */
    SF_XS_ATTR_DQ,      /* inside a "..." attribute value */
    SF_XS_ATTR_SQ,      /* inside a '...' attribute value */
    SF_XS_ETAG,         /* an end tag (sub: 0 before the name, 1 in it, 2 after it) */
    SF_XS_BANG,         /* after "<!": "--", "[CDATA[" or "DOCTYPE" */
    SF_XS_CDATA,        /* inside <![CDATA[ ]]> */
    SF_XS_COMMENT,      /* inside <!-- --> */
    SF_XS_PI_TARGET,    /* after "<?": the target name */
    SF_XS_PI,           /* inside <?target ... ?> */
    SF_XS_DOCTYPE,      /* inside <!DOCTYPE ...>, outside literals and the subset */
    SF_XS_DT_LIT,       /* a quoted literal of the DOCTYPE (quote in `quote`) */
    SF_XS_DT_SUBSET,    /* the internal subset [ ... ] */
    SF_XS_DT_LT,        /* after '<' in the internal subset */
    SF_XS_DT_DECL,      /* <!ELEMENT, <!ATTLIST, <!ENTITY, <!NOTATION ... > */
    SF_XS_DT_DECL_LIT,  /* a quoted literal inside such a declaration */
    SF_XS_DT_COMMENT,   /* a comment in the internal subset */
    SF_XS_DT_PI,        /* a PI in the internal subset */
    SF_XS_DT_PEREF,     /* %name; in the internal subset */
    SF_XS_COUNT
} sf_xml_state;

/* `flags` */
#define SF_XF_STARTED 1  /* something precedes: no XML declaration may follow */
#define SF_XF_DOCTYPE 2  /* the document has a DOCTYPE (it may declare entities) */
#define SF_XF_AT_START 4 /* the '<' being read is the document's first byte */
#define SF_XF_XMLDECL 8  /* the PI being read is the XML declaration */
#define SF_XF_BOM 16     /* a byte-order mark was read: no second one */

/* All fields are bytes or fixed-size integers and the struct is zeroed
 * before use, so two lexers compare with memcmp. */
typedef struct sf_xml_lexer {
    uint8_t state;  /* sf_xml_state */
    uint8_t sub;    /* progress within the state */
    uint8_t match;  /* end-token progress: "]]>" "-->" "?>", or an opener's chars */
    uint8_t quote;  /* the open quote of a DOCTYPE literal */
    uint8_t level;  /* 0 before the root element, 1 inside it, 2 after it */
    uint8_t flags;  /* SF_XF_* */
    uint8_t ret;    /* SF_XS_REF and literals: the state to return to */
    uint8_t pad;
    uint32_t mark;  /* offset where the current name, reference or PI began */
    uint32_t cp;    /* a character reference's value so far */
    uint32_t vmark; /* offset where the current attribute value began */
} sf_xml_lexer;

typedef enum sf_xml_event_type {
    SF_XE_NONE = 0, /* the text ran out */
    SF_XE_ERROR,    /* the literal markup is not well-formed: msg, at pos */
    SF_XE_STAG,     /* a start tag's name: [name, name + len) */
    SF_XE_ATTR,     /* an attribute's name */
    SF_XE_STAG_END, /* the '>' ending a start tag */
    SF_XE_EMPTY,    /* the "/>" ending an empty-element tag */
    SF_XE_ETAG,     /* an end tag, at its '>': its name */
    SF_XE_ATTR_END, /* the quote ending an attribute value: the value's span */
    SF_XE_DOCTYPE   /* a DOCTYPE declaration begins */
} sf_xml_event_type;

typedef struct sf_xml_event {
    sf_xml_event_type type;
    size_t pos;            /* offset in src of the event (of the error) */
    size_t name, len;      /* a name: offset in src and length */
    char msg[200];         /* SF_XE_ERROR */
} sf_xml_event;

/* Lexes src[i..end) (offsets are into the whole of src, so names and
 * positions can be reported) until an event; returns the offset to go on
 * from. ev->type is SF_XE_NONE when the text ran out first. The caller must
 * have checked the text's characters with sf_xml_check_chars(). */
size_t sf_xml_lex(sf_xml_lexer *lx, const char *src, size_t i, size_t end, sf_xml_event *ev);

/* Checks that s[0..n) is well-formed UTF-8 holding only characters XML 1.0
 * allows; returns n, or the offset of the first byte that is not. */
size_t sf_xml_check_chars(const char *s, size_t n);

/* At a tag (offset `at`), a start tag's or an attribute's name being read
 * ends: 1 and the event in *ev, or 0 when there is none. */
int sf_xml_flush(sf_xml_lexer *lx, size_t at, sf_xml_event *ev);

/* The escaping for a value at the lexer's position: 0 and *esc set, or -1
 * when the position holds no value (markup, a name, a PI, a DOCTYPE, text
 * outside the root element). */
int sf_xml_context(const sf_xml_lexer *lx, sf_esc *esc);
/* 1 when the lexer is inside a token it reads as a whole from the source (a
 * name, a reference, the XML declaration, a markup declaration of the
 * internal subset, "<!" being opened): no Mustache tag may sit there, not
 * even one that writes nothing ({{! }} or {{= =}}), since the token would
 * be read with the tag's text in it. */
int sf_xml_in_token(const sf_xml_lexer *lx);
const char *sf_xml_state_name(const sf_xml_lexer *lx);

/* Namespaces in XML 1.0: 1 when the name s[0..n) (already a Name) is a
 * QName, NCName or NCName:NCName. */
int sf_xml_qname_ok(const char *s, size_t n);
/* The value of an attribute as a parser reads it (references replaced,
 * TAB LF CR as spaces) from its literal text s[0..n) (already checked by
 * the lexer), into out (room for n bytes: never longer); returns its length. */
size_t sf_xml_attr_value(const char *s, size_t n, char *out);

/* 1 when a section or partial tag may sit at this position: its body then
 * starts here and must end in the same context (sf_xml_same_context). */
int sf_xml_boundary_ok(const sf_xml_lexer *lx);
/* 1 when the context at a section's end is the one it started in (inside a
 * start tag, "after an attribute" and "after white space" are merged into
 * the stricter of the two by sf_xml_merge). */
int sf_xml_same_context(const sf_xml_lexer *open, const sf_xml_lexer *close);
void sf_xml_merge(sf_xml_lexer *close, const sf_xml_lexer *open);
/* Clears what does not decide how the text after a boundary is read (a
 * partial's cache key). */
void sf_xml_normalize(sf_xml_lexer *lx);

/* Length of the well-formed, XML-allowed UTF-8 sequence at p, or 0. On 0,
 * *bad is the length of the maximal ill-formed subpart to replace (>= 1),
 * or 3 for a well-formed U+FFFE/U+FFFF. */
static inline size_t sf_utf8_seq(const unsigned char *p, const unsigned char *end, size_t *bad)
{
    unsigned c = p[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0xC2 || c > 0xF4) {
        *bad = 1;
        return 0;
    }
    if (c < 0xE0) {
        need = 2;
    } else if (c < 0xF0) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no encoded surrogates */
    } else {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    }
    if (end - p < 2 || p[1] < lo || p[1] > hi) {
        *bad = 1;
        return 0;
    }
    for (size_t i = 2; i < need; i++) {
        if ((size_t)(end - p) <= i || (p[i] & 0xC0) != 0x80) {
            *bad = i;
            return 0;
        }
    }
    if (need == 3 && c == 0xEF && p[1] == 0xBF && p[2] >= 0xBE) {
        *bad = 3; /* U+FFFE, U+FFFF: well-formed but not XML characters */
        return 0;
    }
    return need;
}

#endif
