/* context.c: a small lexer over a template's literal text that tracks where
 * in the XML grammar the next tag will land, so each {{tag}} is escaped for
 * that place when the template is compiled (nothing is decided per row).
 *
 * It is deliberately not a validating parser: it recognises the delimiters
 * that change how text is read (< > " ' <![CDATA[ ]]> <!-- --> <? ?> <!...>)
 * and nothing else. A literal token split by a tag (e.g. "<!-{{x}}-") is
 * reported as a position that holds no value. */
#include "xml.h"

static const char cdata_open[] = "<![CDATA[";
static const char comment_open[] = "<!--";

static void lex_char(sf_xml_lexer *lx, char c);

/* Follows "]]>" (mark ']') or "-->" (mark '-'): two or more marks, then '>'. */
static void end_token(sf_xml_lexer *lx, char c, char mark)
{
    if (c == mark)
        lx->match = lx->match < 2 ? (uint8_t)(lx->match + 1) : 2;
    else if (c == '>' && lx->match == 2)
        lx->state = SF_XS_TEXT, lx->match = 0;
    else
        lx->match = 0;
}

/* In SF_XS_LT, `match` counts the chars of "<..." seen so far (the '<'
 * included) and `depth` holds which openers they still are a prefix of:
 * bit 0 "<![CDATA[", bit 1 "<!--". */
static void lex_lt(sf_xml_lexer *lx, char c)
{
    size_t m = lx->match;
    int cdata = (lx->depth & 1) && m < sizeof cdata_open - 1 && cdata_open[m] == c;
    int comment = (lx->depth & 2) && m < sizeof comment_open - 1 && comment_open[m] == c;
    if (m == 1 && c == '?') {
        lx->state = SF_XS_PI;
        lx->match = lx->depth = 0;
    } else if (cdata || comment) {
        lx->match = (uint8_t)(m + 1);
        lx->depth = (uint8_t)(cdata | comment << 1);
        if (cdata && lx->match == sizeof cdata_open - 1)
            lx->state = SF_XS_CDATA, lx->match = lx->depth = 0;
        else if (comment && lx->match == sizeof comment_open - 1)
            lx->state = SF_XS_COMMENT, lx->match = lx->depth = 0;
    } else {
        /* "<!" then something else is a declaration; "<x" or "</" markup. */
        lx->state = m >= 2 ? SF_XS_DECL : SF_XS_MARKUP;
        lx->match = lx->depth = 0;
        lex_char(lx, c);
    }
}

static void lex_char(sf_xml_lexer *lx, char c)
{
    switch ((sf_xml_state)lx->state) {
    case SF_XS_TEXT:
        if (c == '<') {
            lx->state = SF_XS_LT;
            lx->match = 1;
            lx->depth = 3;
        }
        break;
    case SF_XS_LT:
        lex_lt(lx, c);
        break;
    case SF_XS_MARKUP:
        if (c == '"')
            lx->state = SF_XS_ATTR_DQ;
        else if (c == '\'')
            lx->state = SF_XS_ATTR_SQ;
        else if (c == '>')
            lx->state = SF_XS_TEXT;
        break;
    case SF_XS_ATTR_DQ:
        if (c == '"')
            lx->state = SF_XS_MARKUP;
        break;
    case SF_XS_ATTR_SQ:
        if (c == '\'')
            lx->state = SF_XS_MARKUP;
        break;
    case SF_XS_CDATA:
        end_token(lx, c, ']');
        break;
    case SF_XS_COMMENT:
        end_token(lx, c, '-');
        break;
    case SF_XS_PI:
        if (c == '?')
            lx->match = 1;
        else if (c == '>' && lx->match == 1)
            lx->state = SF_XS_TEXT, lx->match = 0;
        else
            lx->match = 0;
        break;
    case SF_XS_DECL:
        if (c == '[')
            lx->depth++;
        else if (c == ']' && lx->depth)
            lx->depth--;
        else if (c == '>' && lx->depth == 0)
            lx->state = SF_XS_TEXT;
        break;
    }
}

void sf_xml_lex(sf_xml_lexer *lx, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        lex_char(lx, s[i]);
}

int sf_xml_context(sf_xml_lexer *lx, sf_esc *esc)
{
    switch ((sf_xml_state)lx->state) {
    case SF_XS_TEXT: *esc = SF_ESC_TEXT; return 0;
    case SF_XS_ATTR_DQ:
    case SF_XS_ATTR_SQ: *esc = SF_ESC_ATTR; return 0;
    case SF_XS_CDATA: *esc = SF_ESC_CDATA; lx->match = 0; return 0;
    case SF_XS_COMMENT: *esc = SF_ESC_COMMENT; lx->match = 0; return 0;
    case SF_XS_LT:
    case SF_XS_MARKUP:
    case SF_XS_PI:
    case SF_XS_DECL: return -1;
    }
    return -1;
}

const char *sf_xml_state_name(sf_xml_state st)
{
    switch (st) {
    case SF_XS_TEXT: return "element text";
    case SF_XS_LT: return "a tag being opened";
    case SF_XS_MARKUP: return "markup (a tag name or an unquoted attribute)";
    case SF_XS_ATTR_DQ: return "a double-quoted attribute value";
    case SF_XS_ATTR_SQ: return "a single-quoted attribute value";
    case SF_XS_CDATA: return "a CDATA section";
    case SF_XS_COMMENT: return "a comment";
    case SF_XS_PI: return "a processing instruction";
    case SF_XS_DECL: return "a declaration";
    }
    return "?";
}
