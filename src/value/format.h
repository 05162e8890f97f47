/* format.h: value formatters, the contract between the template engine and
 * value/format.c. A feed template names a formatter as a later part of a
 * dotted name ({{posted_at.rfc822}}, {{description.text.trunc5000}}); the
 * compiler turns each such part into an sf_fmt_call, the renderer applies
 * the calls in order to the value the name's first part resolved to, then
 * escapes the result for the tag's XML context like any value (a formatter
 * can never bypass the escaping). Formatted bytes go into the per-row arena:
 * nothing is allocated per row once the largest row has been seen.
 * docs/value.md. Internal. */
#ifndef SF_VALUE_FORMAT_H
#define SF_VALUE_FORMAT_H

#include "../common.h"
#include "../value.h"
#include "arena.h"

/* One formatter applied: which one, and its number (trunc150's 150, dec2's
 * 2; 0 for those that take none). */
typedef struct sf_fmt_call {
    uint16_t id;
    uint32_t arg;
} sf_fmt_call;

/* A name part read as a formatter: 1 and *call set; 0 when the part is not
 * a formatter's spelling (then it is a key, or an error: the compiler
 * decides, see docs/value.md); -1 when it is a formatter's name with a bad
 * number (trunc0, dec99): `why` says so. */
int sf_fmt_parse(const char *s, size_t n, sf_fmt_call *call, char *why, size_t whylen);
/* The spelling of a call ("trunc150"), into buf; returns buf. */
const char *sf_fmt_spell(const sf_fmt_call *call, char *buf, size_t n);
/* Every formatter, for messages and --help: "rfc3339, rfc822, ...". */
const char *sf_fmt_names(void);

/* Characters in s[0..n) as the output writes them: a well-formed UTF-8
 * sequence is one, and so is each maximal ill-formed subsequence (which the
 * escaper replaces with one U+FFFD: xml.h, sf_utf8_seq). With max below
 * that count, *cut is the byte length of the first `max` characters (else
 * n). truncN and the `max` rule count the same way. */
size_t sf_fmt_chars(const char *s, size_t n, size_t max, size_t *cut);

/* Applies one call to `in`. Missing and NULL values pass through unchanged
 * (they render empty and are falsy); text is formatted into the arena.
 * Returns 0 (*out set), SF_FMT_INVALID when the value is not what the
 * formatter reads (not a date, not a number, JSON that does not parse, a
 * list given to a text formatter): `why` names the problem and quotes the
 * value's start; SF_FMT_NOMEM when the arena refused (a->over tells the
 * row limit from memory). */
enum { SF_FMT_OK = 0, SF_FMT_INVALID = -1, SF_FMT_NOMEM = -2 };
int sf_fmt_apply(sf_arena *a, const sf_fmt_call *call, const sf_val *in, sf_val *out,
                 char *why, size_t whylen);

#endif
