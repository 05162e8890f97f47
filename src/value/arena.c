/* arena.c: chunks of at least 64 KiB, each SF_MEM_ROW in the census. */
#include <string.h>

#include "arena.h"

#define CHUNK_MIN ((size_t)64 << 10)

struct sf_arena_chunk {
    sf_arena_chunk *next;
    size_t cap, len;
    _Alignas(16) unsigned char data[];
};

void sf_arena_init(sf_arena *a, sf_census *cs, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->cs = cs;
    a->limit = limit ? limit : SF_ARENA_LIMIT;
}

void *sf_arena_alloc(sf_arena *a, size_t n, size_t align)
{
    while (a->redirect)
        a = a->redirect;
    a->over = 0;
    if (n > a->limit - a->used) {
        a->over = 1;
        a->failed = 1;
        return NULL;
    }
    size_t mask = align ? align - 1 : 0;
    for (sf_arena_chunk *c = a->cur; c; c = c->next) {
        size_t at = (c->len + mask) & ~mask;
        if (at <= c->cap && n <= c->cap - at) {
            c->len = at + n;
            a->cur = c;
            a->used += n;
            return c->data + at;
        }
        /* A chunk later in the list may be large enough: chunks after cur
         * are empty since the reset. */
    }
    size_t cap = n + 16 > CHUNK_MIN ? n + 16 : CHUNK_MIN;
    sf_arena_chunk *c = sf_alloc(a->cs, SF_MEM_ROW, sizeof *c + cap);
    if (!c) {
        a->failed = 1;
        return NULL;
    }
    c->cap = cap;
    c->len = n;
    c->next = NULL;
    /* Appended at the end, so the chunks before stay in order for reuse. */
    sf_arena_chunk **p = &a->head;
    while (*p)
        p = &(*p)->next;
    *p = c;
    a->cur = c;
    a->used += n;
    return c->data;
}

char *sf_arena_dup(sf_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = sf_arena_alloc(a, n + 1, 1);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void sf_arena_reset(sf_arena *a)
{
    for (sf_arena_chunk *c = a->head; c; c = c->next)
        c->len = 0;
    a->cur = a->head;
    a->used = 0;
    a->over = 0;
    a->failed = 0;
}

void sf_arena_free(sf_arena *a)
{
    sf_arena_chunk *c = a->head;
    while (c) {
        sf_arena_chunk *next = c->next;
        sf_dealloc(a->cs, c);
        c = next;
    }
    a->head = a->cur = NULL;
    a->used = 0;
}
