/* census.c: the allocator every library allocation goes through.
 *
 * Each block is prefixed by a header holding its requested size and type, so
 * the census can subtract exactly what a free returns without asking the
 * system allocator (malloc_usable_size is not portable and would count slack).
 * The census is per handle family (no global), read by sf_census_stat().
 *
 * Several threads may allocate through one census at once (the render
 * thread, a source's scan thread, an output's writer thread, zstd's workers)
 * and any thread may read it. Every counter is an atomic updated by a
 * relaxed read-modify-write (fetch_add / fetch_sub), so no update is lost;
 * peaks are raised by compare-and-swap from the value the add produced, so a
 * peak is the true maximum of its counter's history. Relaxed: a counter
 * orders nothing else, and a reader sees each one whole, possibly a moment
 * behind. docs/census.md says why atomics rather than per-thread shards. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../common.h"

/* 16 bytes keeps the user pointer aligned for any type malloc aligns for on
 * the platforms we build on (max_align_t is 16 on x86-64 and arm64). */
typedef union sf_block_head {
    struct {
        uint64_t size;
        uint32_t type;
        uint32_t magic;
    } h;
    max_align_t align;
} sf_block_head;

#define SF_BLOCK_MAGIC 0x5f5fc0deu

typedef _Atomic uint64_t counter;

struct sf_census {
    counter count[SF_MEM_TYPE_COUNT];
    counter bytes[SF_MEM_TYPE_COUNT];
    counter peak[SF_MEM_TYPE_COUNT];
    counter allocs[SF_MEM_TYPE_COUNT];
    counter total, total_peak;
    /* sf_census_fail_after(): while armed, allocations that still succeed;
     * taken one at a time by compare-and-swap, so n means n whichever
     * threads allocate. */
    counter fail_left;
    atomic_int fail_armed;
    counter limit;   /* live bytes allocations may not take the total past; 0: none */
    counter refused; /* allocations the limit refused since it was set */
};

static inline uint64_t get(const counter *c) { return atomic_load_explicit(c, memory_order_relaxed); }
static inline void set(counter *c, uint64_t v) { atomic_store_explicit(c, v, memory_order_relaxed); }
/* The counter's value after the add (subtract with the two's complement). */
static inline uint64_t add(counter *c, uint64_t n)
{
    return atomic_fetch_add_explicit(c, n, memory_order_relaxed) + n;
}
static inline void sub(counter *c, uint64_t n) { atomic_fetch_sub_explicit(c, n, memory_order_relaxed); }
/* Raises *peak to v unless it is already at least v. */
static inline void raise_peak(counter *peak, uint64_t v)
{
    uint64_t p = get(peak);
    while (p < v && !atomic_compare_exchange_weak_explicit(peak, &p, v, memory_order_relaxed,
                                                           memory_order_relaxed))
        ;
}

static const char *const sf_mem_names[SF_MEM_TYPE_COUNT] = {
    [SF_MEM_HANDLE] = "handle",     [SF_MEM_TEMPLATE] = "template",
    [SF_MEM_SOURCE] = "source",     [SF_MEM_ROW] = "row",
    [SF_MEM_RENDER] = "render",     [SF_MEM_OUTPUT] = "output buffer",
    [SF_MEM_SINK] = "sink",         [SF_MEM_SQLITE] = "sqlite",
    [SF_MEM_OTHER] = "other",       [SF_MEM_DRIVER] = "driver",
};

/* A block of n bytes of type t appears (`object`: a new one, counted in
 * allocs; 0: a block resized into t). `total_done`: the live total already
 * includes n (over_limit reserved it). */
static void census_add(sf_census *c, sf_mem_type t, uint64_t n, int object, int total_done)
{
    add(&c->count[t], 1);
    if (object)
        add(&c->allocs[t], 1);
    raise_peak(&c->peak[t], add(&c->bytes[t], n));
    raise_peak(&c->total_peak, total_done ? get(&c->total) : add(&c->total, n));
}

static void census_sub(sf_census *c, sf_mem_type t, uint64_t n)
{
    sub(&c->count[t], 1);
    sub(&c->bytes[t], n);
    sub(&c->total, n);
}

/* The testing aid of sf_census_fail_after(): 1 when this allocation must
 * fail. Every allocation and reallocation asks, once. */
static inline int fail_now(sf_census *c)
{
    if (SF_LIKELY(!atomic_load_explicit(&c->fail_armed, memory_order_relaxed)))
        return 0;
    uint64_t left = get(&c->fail_left);
    do {
        if (left == 0)
            return 1;
    } while (!atomic_compare_exchange_weak_explicit(&c->fail_left, &left, left - 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return 0;
}

void sf_census_fail_after(sf_census *c, uint64_t n)
{
    if (!c)
        return;
    set(&c->fail_left, n);
    atomic_store_explicit(&c->fail_armed, n != SF_CENSUS_FAIL_NEVER, memory_order_relaxed);
}

/* With a limit set: whether growing the live total by n would cross it
 * (counted in refused); if not, the n bytes are added to the total now, by
 * compare-and-swap, so two threads cannot both pass on the same room.
 * Returns 1 over the limit, 0 reserved, -1 no limit (nothing added). */
static int over_limit(sf_census *c, uint64_t n)
{
    uint64_t lim = get(&c->limit);
    if (SF_LIKELY(!lim))
        return -1;
    uint64_t tot = get(&c->total);
    do {
        if (tot > lim || n > lim - tot) {
            add(&c->refused, 1);
            return 1;
        }
    } while (!atomic_compare_exchange_weak_explicit(&c->total, &tot, tot + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 0;
}

void *sf_alloc(sf_census *c, sf_mem_type type, size_t n)
{
    if (n > SIZE_MAX - sizeof(sf_block_head) || fail_now(c))
        return NULL;
    int lim = over_limit(c, n);
    if (lim > 0)
        return NULL;
    sf_block_head *b = malloc(sizeof *b + n);
    if (!b) {
        if (lim == 0)
            sub(&c->total, n); /* give back the reservation */
        return NULL;
    }
    b->h.size = n;
    b->h.type = (uint32_t)type;
    b->h.magic = SF_BLOCK_MAGIC;
    census_add(c, type, n, 1, lim == 0);
    return b + 1;
}

void *sf_alloc_unrefused(sf_census *c, sf_mem_type type, size_t n)
{
    if (n > SIZE_MAX - sizeof(sf_block_head))
        return NULL;
    sf_block_head *b = malloc(sizeof *b + n);
    if (!b)
        return NULL;
    b->h.size = n;
    b->h.type = (uint32_t)type;
    b->h.magic = SF_BLOCK_MAGIC;
    census_add(c, type, n, 1, 0);
    return b + 1;
}

void *sf_calloc(sf_census *c, sf_mem_type type, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = sf_alloc(c, type, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *sf_realloc(sf_census *c, sf_mem_type type, void *p, size_t n)
{
    if (!p)
        return sf_alloc(c, type, n);
    if (n > SIZE_MAX - sizeof(sf_block_head) || fail_now(c))
        return NULL;
    sf_block_head *old = (sf_block_head *)p - 1;
    uint64_t oldsize = old->h.size;
    sf_mem_type oldtype = (sf_mem_type)old->h.type;
    int lim = n > oldsize ? over_limit(c, n - oldsize) : -1;
    if (lim > 0)
        return NULL; /* the old block is intact and still counted */
    sf_block_head *b = realloc(old, sizeof *b + n);
    if (!b) {
        if (lim == 0)
            sub(&c->total, n - oldsize);
        return NULL; /* the old block is intact and still counted */
    }
    b->h.size = n;
    b->h.type = (uint32_t)type;
    if (lim == 0) {
        /* The growth is in the total already: move the rest by hand. */
        sub(&c->count[oldtype], 1);
        sub(&c->bytes[oldtype], oldsize);
        add(&c->count[type], 1);
        raise_peak(&c->peak[type], add(&c->bytes[type], n));
        raise_peak(&c->total_peak, get(&c->total));
    } else {
        census_sub(c, oldtype, oldsize);
        census_add(c, type, n, 0, 0); /* a resize is not a new object */
    }
    return b + 1;
}

void sf_dealloc(sf_census *c, void *p)
{
    if (!p)
        return;
    sf_block_head *b = (sf_block_head *)p - 1;
    census_sub(c, (sf_mem_type)b->h.type, b->h.size);
    b->h.magic = 0;
    free(b);
}

char *sf_strndup(sf_census *c, sf_mem_type type, const char *s, size_t n)
{
    char *d = sf_alloc(c, type, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *sf_strdup(sf_census *c, sf_mem_type type, const char *s)
{
    return sf_strndup(c, type, s, strlen(s));
}

sf_census *sf_census_create(void)
{
    /* The census cannot count itself through itself; it is one plain block.
     * All-zero bytes are zero atomics on every platform we build on. */
    return calloc(1, sizeof(sf_census));
}

void sf_census_free(sf_census *census) { free(census); }

sf_status sf_census_stat(const sf_census *c, sf_mem_type type, sf_mem_stat *out)
{
    if (!c || !out || (unsigned)type >= SF_MEM_TYPE_COUNT)
        return SF_ERR_ARG;
    out->name = sf_mem_names[type];
    out->count = get(&c->count[type]);
    out->bytes = get(&c->bytes[type]);
    out->peak_bytes = get(&c->peak[type]);
    out->allocs = get(&c->allocs[type]);
    return SF_OK;
}

sf_status sf_census_set_limit(sf_census *c, uint64_t bytes)
{
    if (!c)
        return SF_ERR_ARG;
    set(&c->limit, bytes);
    uint64_t refused = atomic_exchange_explicit(&c->refused, 0, memory_order_relaxed);
    return refused ? SF_ERR_NOMEM : SF_OK;
}

uint64_t sf_census_live_bytes(const sf_census *c) { return c ? get(&c->total) : 0; }
uint64_t sf_census_peak_bytes(const sf_census *c) { return c ? get(&c->total_peak) : 0; }

void sf_census_account(sf_census *c, sf_mem_type type, int64_t objects, int64_t bytes)
{
    if (!c || (unsigned)type >= SF_MEM_TYPE_COUNT)
        return;
    /* Two's complement: adding (uint64_t)-k subtracts k. */
    add(&c->count[type], (uint64_t)objects);
    if (objects > 0)
        add(&c->allocs[type], (uint64_t)objects);
    uint64_t b = add(&c->bytes[type], (uint64_t)bytes);
    uint64_t tot = add(&c->total, (uint64_t)bytes);
    if (bytes > 0) {
        raise_peak(&c->peak[type], b);
        raise_peak(&c->total_peak, tot);
    }
}

const char *sf_mem_type_name(sf_mem_type type)
{
    return (unsigned)type < SF_MEM_TYPE_COUNT ? sf_mem_names[type] : "?";
}

void *sf_census_malloc(sf_census *c, sf_mem_type type, size_t n)
{
    return c && (unsigned)type < SF_MEM_TYPE_COUNT ? sf_alloc(c, type, n) : NULL;
}

void *sf_census_realloc(sf_census *c, sf_mem_type type, void *p, size_t n)
{
    return c && (unsigned)type < SF_MEM_TYPE_COUNT ? sf_realloc(c, type, p, n) : NULL;
}

void sf_census_dealloc(sf_census *c, void *p)
{
    if (c)
        sf_dealloc(c, p);
}

size_t sf_census_block_size(const void *p)
{
    return p ? (size_t)((const sf_block_head *)p - 1)->h.size : 0;
}

int sf_census_ref_init(sf_census_ref *ref, sf_census *given)
{
    ref->owned = given == NULL;
    ref->census = given ? given : sf_census_create();
    return ref->census ? 0 : -1;
}

void sf_census_ref_done(sf_census_ref *ref)
{
    if (ref->owned)
        sf_census_free(ref->census);
    ref->census = NULL;
}

void *sf_handle_create(sf_census *given, size_t size, size_t ref_off)
{
    sf_census_ref ref;
    if (sf_census_ref_init(&ref, given) != 0)
        return NULL;
    char *h = sf_calloc(ref.census, SF_MEM_HANDLE, 1, size);
    if (!h) {
        sf_census_ref_done(&ref);
        return NULL;
    }
    memcpy(h + ref_off, &ref, sizeof ref);
    return h;
}

void sf_handle_free(void *h, size_t ref_off)
{
    sf_census_ref ref;
    memcpy(&ref, (char *)h + ref_off, sizeof ref);
    sf_dealloc(ref.census, h);
    sf_census_ref_done(&ref);
}

void sf_buf_init(sf_buf *b, sf_census *c, sf_mem_type type)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->census = c;
    b->type = type;
}

int sf_buf_reserve(sf_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra)
        cap *= 2;
    char *d = sf_realloc(b->census, b->type, b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

int sf_buf_append(sf_buf *b, const void *p, size_t n)
{
    if (sf_buf_reserve(b, n + 1) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void sf_buf_free(sf_buf *b)
{
    sf_dealloc(b->census, b->data);
    sf_buf_init(b, b->census, b->type);
}
