/* common.h: what every layer of the library shares: the census allocator
 * entry points, the per-handle message buffer and one-line error macros.
 * Internal: never included by the CLI or by users. */
#ifndef SF_COMMON_H
#define SF_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "sqlfeed.h"

#if defined(__GNUC__)
#define SF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SF_LIKELY(x) __builtin_expect(!!(x), 1)
#define SF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SF_PRINTF(f, a)
#define SF_LIKELY(x) (x)
#define SF_UNLIKELY(x) (x)
#endif

/* Every handle carries its last failure in a fixed buffer, so reporting an
 * error never needs memory (and works after an allocation failure). */
#define SF_ERRMSG_SIZE 1024
typedef struct sf_errbuf {
    char msg[SF_ERRMSG_SIZE];
} sf_errbuf;

/* Formats into e (truncating with "..." when long) and returns `status`, so
 * a failure is one line: return sf_fail(&h->err, SF_ERR_X, "...", ...); */
sf_status sf_fail(sf_errbuf *e, sf_status status, const char *fmt, ...) SF_PRINTF(3, 4);
sf_status sf_vfail(sf_errbuf *e, sf_status status, const char *fmt, va_list ap) SF_PRINTF(3, 0);
/* Copies another handle's message, prefixed with `prefix` when not NULL. */
sf_status sf_fail_from(sf_errbuf *e, sf_status status, const char *prefix, const char *msg);
static inline void sf_err_clear(sf_errbuf *e) { e->msg[0] = '\0'; }

/* The census allocator (src/census/census.c). Every block has a small header
 * with its size and type, so frees and reallocs keep the census exact. */
void *sf_alloc(sf_census *c, sf_mem_type type, size_t n);
void *sf_calloc(sf_census *c, sf_mem_type type, size_t n, size_t size);
/* Counted like sf_alloc, but never refused by the budget or the
 * fail-after hook (NULL only when malloc itself fails): for a library that
 * cannot survive a refused allocation (libzstd 1.5.4's worker threads). */
void *sf_alloc_unrefused(sf_census *c, sf_mem_type type, size_t n);
void *sf_realloc(sf_census *c, sf_mem_type type, void *p, size_t n);
void sf_dealloc(sf_census *c, void *p);
char *sf_strndup(sf_census *c, sf_mem_type type, const char *s, size_t n);
char *sf_strdup(sf_census *c, sf_mem_type type, const char *s);

/* Handles that were given no census own a private one. */
typedef struct sf_census_ref {
    sf_census *census;
    int owned;
} sf_census_ref;
int sf_census_ref_init(sf_census_ref *ref, sf_census *given);
void sf_census_ref_done(sf_census_ref *ref);

/* A zeroed handle of `size` bytes whose sf_census_ref sits at `ref_off`,
 * allocated from `given` (NULL: a private census the handle owns); and its
 * release, which frees an owned census last. */
void *sf_handle_create(sf_census *given, size_t size, size_t ref_off);
void sf_handle_free(void *h, size_t ref_off);
#define SF_HANDLE_CREATE(type, given) \
    ((type *)sf_handle_create((given), sizeof(type), offsetof(type, cref)))
#define SF_HANDLE_FREE(type, h) sf_handle_free((h), offsetof(type, cref))

/* A growable byte array in census memory; grows geometrically so appends are
 * amortised O(1) and the steady state allocates nothing. */
typedef struct sf_buf {
    char *data;
    size_t len, cap;
    sf_census *census;
    sf_mem_type type;
} sf_buf;
void sf_buf_init(sf_buf *b, sf_census *c, sf_mem_type type);
int sf_buf_reserve(sf_buf *b, size_t extra); /* 0 on success, -1 out of memory */
int sf_buf_append(sf_buf *b, const void *p, size_t n);
void sf_buf_free(sf_buf *b);

/* Starts a library thread with the asynchronous signals blocked in it
 * (faults left deliverable): pthread_create's result (thread.c). */
#include <pthread.h>
int sf_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
