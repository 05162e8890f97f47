/* json.h: a JSON column as a value the template walks: an array is a list
 * ({{#images.json}}...{{/images.json}} once per element), an object a map
 * ({{url}} inside), a string text (decoded: escapes written into the arena,
 * unescaped strings pointing into the column's own bytes), a number text as
 * written, true and false BOOL, null NULL. The view is lazy: the text is
 * validated once, in one pass that allocates nothing, then elements and
 * members are found by scanning it when the template asks; the few bytes of
 * state a list or map needs come from the per-row arena, so a row after the
 * largest allocates nothing. docs/value.md. Internal. */
#ifndef SF_VALUE_JSON_H
#define SF_VALUE_JSON_H

#include "../value.h"
#include "arena.h"

/* The deepest nesting of arrays and objects a column may hold. */
#define SF_JSON_MAX_DEPTH 64

/* Makes *out a view of the JSON text s[0..n) (which must stay valid while
 * the view is used: the row's value). Truthiness follows Mustache: an empty
 * array is falsy, any object truthy, "" falsy. Returns 0; -1 when the text
 * is not JSON (RFC 8259, one value, white space around it allowed) or
 * nests deeper than SF_JSON_MAX_DEPTH: `why` gives the byte offset and what
 * was expected; -2 when the arena refused (a->over: the per-row limit). */
int sf_json_view(sf_arena *a, const char *s, size_t n, sf_val *out, char *why, size_t whylen);

#endif
