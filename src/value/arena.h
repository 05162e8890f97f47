/* arena.h: a per-row arena for formatted values and JSON views. Memory
 * comes in chunks that never move (a value handed out stays where it is
 * until the reset), is kept across resets (a row after the largest one
 * allocates nothing) and is bounded: past `limit` bytes handed out since
 * the last reset, an allocation fails and `over` is set, so the caller can
 * tell "this row's values are too large" from "out of memory". Internal. */
#ifndef SF_VALUE_ARENA_H
#define SF_VALUE_ARENA_H

#include "../common.h"

typedef struct sf_arena_chunk sf_arena_chunk;

typedef struct sf_arena {
    sf_census *cs;
    sf_arena_chunk *head; /* every chunk, in order */
    sf_arena_chunk *cur;  /* the chunk being filled */
    size_t used;          /* bytes handed out since the reset */
    size_t limit;         /* at most this many per reset (0: SF_ARENA_LIMIT) */
    int over;             /* the last failure was the limit, not memory */
    int failed;           /* an allocation failed since the reset (a JSON
                             view's lookup returning -1 sets it) */
    /* While set, allocations are made in that arena instead. A JSON view
     * made while the head renders lives in the head's arena, but the state
     * it makes when the rows walk it (a nested list, a decoded string) is
     * the row's: the renderer points the head's arena at the rows' one
     * during the rows, so that state is freed with each row instead of
     * piling up in the head's arena until the next head. */
    struct sf_arena *redirect;
} sf_arena;

/* 16 MiB of formatted values and JSON views per row, unless set. */
#define SF_ARENA_LIMIT ((size_t)16 << 20)

void sf_arena_init(sf_arena *a, sf_census *cs, size_t limit);
/* n bytes aligned to `align` (a power of two, at most 16); NULL when out of
 * memory or past the limit (then a->over is 1). */
void *sf_arena_alloc(sf_arena *a, size_t n, size_t align);
/* A copy of s[0..n) with a NUL after it; NULL as sf_arena_alloc. */
char *sf_arena_dup(sf_arena *a, const char *s, size_t n);
/* Everything handed out is dead; the chunks stay for the next row. */
void sf_arena_reset(sf_arena *a);
void sf_arena_free(sf_arena *a); /* NULL-safe on a zeroed arena */

#endif
