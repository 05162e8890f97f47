/* prefetch.c: the scan thread (source option "prefetch"). A thread of the
 * source's own steps the backend and copies each row (every column's kind,
 * truthiness and bytes) into a ring of a few fixed batches; the caller's
 * thread reads the rows back through the unchanged sf_source_next() /
 * sf_source_column(), so stepping the database and copying the row run on one
 * core while the render runs on the other.
 *
 * The ring. NB batches, each one buffer of rows laid out as
 *     [pf_row: size][pf_col x ncols][value bytes...]   (8-byte aligned)
 * The producer fills batch prod % NB and publishes each row by a release
 * store of the batch's `committed` count (no lock, no system call per row);
 * the consumer reads rows up to an acquire load of it, so it may read a batch
 * the producer is still filling. When a row does not fit, the producer seals
 * the batch (under the lock) and takes the next free one, waiting when all NB
 * are in use; the consumer releases a batch once it has read every row of a
 * sealed one. The last batch is sealed with the stream's end: 0 (no more
 * rows) or -1 (the backend's error, in s->err, after the rows before it).
 * The consumer sleeps only when it has read every committed row: until a
 * seal (signalled: about once per batch) or PF_POLL_NS, so a row the
 * producer committed before blocking in the backend (a slow server) waits at
 * most that long; a signal per row would cost a futex wake-up per row when
 * the consumer is the faster side, which is the case this thread is for.
 *
 * Ownership. While the thread runs it alone touches the backend (step,
 * column, s->err, s->row_fail), as it did the caller's thread before; the
 * caller touches them again only after joining it (at the end of the rows,
 * on a cancel, or in sf_source_free). sf_source_cancel() stays what it was:
 * a flag and the backend's interrupt, both safe from any thread.
 *
 * Memory. The batches are allocated once, at the first row (census type
 * "row"); a row larger than a batch grows that batch (to the next power of
 * two, once per size class), up to opts.pf_row_max bytes of values, past which
 * the row is an error naming both sizes. Nothing is allocated per row. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "source.h"

/* How long the consumer sleeps before looking again at a batch being filled. */
#define PF_POLL_NS (10 * 1000 * 1000L)

typedef struct pf_col {
    uint32_t off, len; /* from the row's start */
    uint8_t kind, truthy;
} pf_col;

typedef struct pf_row {
    uint64_t size; /* bytes to the next row */
} pf_row;

typedef struct pf_batch {
    char *data;
    size_t cap;
    size_t used;                  /* producer only */
    _Atomic uint32_t committed;   /* rows the consumer may read */
    int sealed;                   /* under the lock: no more rows will come here */
    int term;                     /* with sealed: 1 more in the next batch; 0 end; -1 error */
} pf_batch;

struct sf_prefetch {
    sf_source *s;
    int nb;
    size_t batch;   /* bytes of a batch as made */
    size_t row_max; /* bytes of values a row may hold */
    pf_batch *b;
    sf_val *vals; /* the producer's view of the current row */

    pthread_mutex_t mu;
    pthread_cond_t can_read;  /* a seal (the consumer waits on it) */
    pthread_cond_t can_write; /* a release or stop (the producer waits on it) */
    int mu_ok, read_ok, write_ok;
    int consumer_waiting, producer_waiting;
    int stop;        /* under the lock: the producer must end */
    uint64_t prod;   /* under the lock: the batch being filled (sequence) */
    uint64_t cons;   /* under the lock: the batch being read (sequence) */

    /* The consumer's own. */
    pthread_t thread;
    int running; /* a thread to join */
    int done;    /* the stream ended: `term` is what next returns */
    int term;
    uint32_t read, avail; /* rows read in the current batch; committed last seen */
    size_t off;           /* the next row's offset in it */
    const char *row;      /* the current row */
};

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

static size_t row_bytes(int ncols, size_t values)
{
    return align8(sizeof(pf_row) + (size_t)ncols * sizeof(pf_col) + values);
}

/* ---- the producer: the scan thread -------------------------------------- */

/* Seals b with `term` and wakes the consumer if it sleeps. */
static void seal(sf_prefetch *p, pf_batch *b, int term)
{
    pthread_mutex_lock(&p->mu);
    b->sealed = 1;
    b->term = term;
    if (p->consumer_waiting)
        pthread_cond_signal(&p->can_read);
    pthread_mutex_unlock(&p->mu);
}

/* The next batch to fill, once the consumer has released it; NULL when told
 * to stop. */
static pf_batch *next_batch(sf_prefetch *p)
{
    pthread_mutex_lock(&p->mu);
    p->prod++;
    while (!p->stop && p->prod - p->cons >= (uint64_t)p->nb) {
        p->producer_waiting = 1;
        pthread_cond_wait(&p->can_write, &p->mu);
    }
    p->producer_waiting = 0;
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (stop)
        return NULL;
    pf_batch *b = &p->b[p->prod % (uint64_t)p->nb];
    b->used = 0;
    return b;
}

static int stopping(sf_prefetch *p)
{
    pthread_mutex_lock(&p->mu);
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

/* A batch with nothing committed grows to hold `need` bytes. 0, or -1 with
 * s->err set. Its old bytes are not kept (there are none to keep). */
static int grow(sf_prefetch *p, pf_batch *b, size_t need)
{
    size_t cap = b->cap ? b->cap : p->batch;
    while (cap < need)
        cap *= 2;
    /* Never more than the largest row allowed needs. */
    size_t most = row_bytes(p->s->ncols, p->row_max);
    if (cap > most)
        cap = need > most ? need : most;
    sf_census *cs = p->s->cref.census;
    sf_dealloc(cs, b->data);
    b->cap = 0;
    if (!(b->data = sf_alloc(cs, SF_MEM_ROW, cap))) {
        p->s->row_fail = sf_fail(&p->s->err, SF_ERR_NOMEM,
                                 "out of memory growing the prefetch buffer to %zu bytes", cap);
        return -1;
    }
    b->cap = cap;
    return 0;
}

static void *scan_main(void *arg)
{
    sf_prefetch *p = arg;
    sf_source *s = p->s;
    const int ncols = s->ncols;
    pf_batch *b = &p->b[0];
    b->used = 0;
    for (;;) {
        int rc;
        if (atomic_load_explicit(&s->cancelled, memory_order_relaxed)) {
            sf_fail(&s->err, SF_ERR_SOURCE, "cancelled");
            s->row_fail = SF_OK;
            rc = -1;
        } else {
            rc = s->vt->next_row(s);
        }
        if (rc <= 0) {
            seal(p, b, rc);
            return NULL;
        }
        size_t values = 0;
        for (int i = 0; i < ncols; i++) {
            s->vt->column(s, i, &p->vals[i]);
            values += p->vals[i].n;
        }
        if (values > p->row_max) {
            s->row_fail = sf_fail(&s->err, SF_ERR_SOURCE,
                                  "the row holds %zu bytes of values, more than the %zu the "
                                  "prefetch buffer may grow to (source option prefetch_row_max)",
                                  values, p->row_max);
            seal(p, b, -1);
            return NULL;
        }
        size_t need = row_bytes(ncols, values);
        uint32_t n = atomic_load_explicit(&b->committed, memory_order_relaxed);
        if (need > b->cap - b->used) {
            if (n > 0) {
                seal(p, b, 1);
                if (!(b = next_batch(p)))
                    return NULL;
                n = 0;
            }
            if (need > b->cap && grow(p, b, need) != 0) {
                seal(p, b, -1);
                return NULL;
            }
        }
        char *row = b->data + b->used;
        ((pf_row *)(void *)row)->size = need;
        pf_col *col = (pf_col *)(void *)(row + sizeof(pf_row));
        size_t off = sizeof(pf_row) + (size_t)ncols * sizeof(pf_col);
        for (int i = 0; i < ncols; i++) {
            const sf_val *v = &p->vals[i];
            col[i].off = (uint32_t)off;
            col[i].len = (uint32_t)v->n;
            col[i].kind = v->kind;
            col[i].truthy = v->truthy;
            if (v->n)
                memcpy(row + off, v->s, v->n);
            off += v->n;
        }
        b->used += need;
        atomic_store_explicit(&b->committed, n + 1, memory_order_release);
        /* A stop (sf_source_free) while the consumer still reads would
         * otherwise go unnoticed until the ring is full. */
        if (SF_UNLIKELY(n == 0) && stopping(p))
            return NULL;
    }
}

/* ---- the consumer: the caller's thread ---------------------------------- */

static void destroy(sf_prefetch *p)
{
    sf_census *cs = p->s->cref.census;
    if (p->b)
        for (int i = 0; i < p->nb; i++)
            sf_dealloc(cs, p->b[i].data);
    sf_dealloc(cs, p->b);
    sf_dealloc(cs, p->vals);
    if (p->read_ok)
        pthread_cond_destroy(&p->can_read);
    if (p->write_ok)
        pthread_cond_destroy(&p->can_write);
    if (p->mu_ok)
        pthread_mutex_destroy(&p->mu);
    sf_dealloc(cs, p);
}

/* Tells the thread to stop and joins it. `interrupt`: it may be inside the
 * backend, waiting for rows nobody will read (sf_source_free). */
static void stop_thread(sf_prefetch *p, int interrupt)
{
    if (!p->running)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->can_write);
    pthread_mutex_unlock(&p->mu);
    if (interrupt && p->s->vt->interrupt)
        p->s->vt->interrupt(p->s);
    pthread_join(p->thread, NULL);
    p->running = 0;
}

/* The ring and the thread, at the first row. 0; 1 when the rows must come
 * inline after all (no thread could be made: prefetch is an optimisation);
 * -1 out of memory (s->err, s->row_fail set). */
static int start(sf_source *s)
{
    sf_census *cs = s->cref.census;
    sf_prefetch *p = sf_calloc(cs, SF_MEM_SOURCE, 1, sizeof *p);
    if (!p)
        goto nomem;
    s->pf = p;
    p->s = s;
    sf_err_clear(&s->err); /* from here a message is the scan's */
    p->nb = s->opts.pf_batches;
    p->batch = s->opts.pf_batch;
    p->row_max = s->opts.pf_row_max;
    p->b = sf_calloc(cs, SF_MEM_SOURCE, (size_t)p->nb, sizeof *p->b);
    p->vals = sf_calloc(cs, SF_MEM_ROW, (size_t)s->ncols, sizeof *p->vals);
    if (!p->b || !p->vals)
        goto nomem;
    for (int i = 0; i < p->nb; i++) {
        if (!(p->b[i].data = sf_alloc(cs, SF_MEM_ROW, p->batch)))
            goto nomem;
        p->b[i].cap = p->batch;
    }
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return 1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    p->mu_ok = pthread_mutex_init(&p->mu, NULL) == 0;
    p->read_ok = pthread_cond_init(&p->can_read, &ca) == 0;
    p->write_ok = pthread_cond_init(&p->can_write, NULL) == 0;
    pthread_condattr_destroy(&ca);
    if (!p->mu_ok || !p->read_ok || !p->write_ok)
        return 1;
    /* Signals stay with the caller's threads (a handler there cancels). */
    int rc = sf_thread_start(&p->thread, scan_main, p);
    if (rc != 0)
        return 1;
    p->running = 1;
    return 0;
nomem:
    s->row_fail = sf_fail(&s->err, SF_ERR_NOMEM, "out of memory (prefetch buffers)");
    return -1;
}

/* The stream has ended with `term`: the thread is joined, the backend is the
 * caller's again. */
static int finish(sf_prefetch *p, int term)
{
    stop_thread(p, 0);
    p->done = 1;
    p->term = term;
    p->row = NULL;
    return term;
}

int sf_prefetch_next(sf_source *s)
{
    sf_prefetch *p = s->pf;
    if (SF_UNLIKELY(!p)) {
        int st = start(s);
        p = s->pf;
        if (st < 0) {
            if (p)
                p->done = 1, p->term = -1;
            return -1;
        }
        if (st > 0) { /* inline from now on */
            s->opts.prefetch = 0;
            destroy(p);
            s->pf = NULL;
            return s->vt->next_row(s);
        }
    }
    if (SF_UNLIKELY(p->done))
        return p->term;
    if (SF_UNLIKELY(atomic_load_explicit(&s->cancelled, memory_order_relaxed))) {
        /* The rows already fetched are not read: stop now, as a backend
         * would. The thread may be inside the backend (interrupted by the
         * cancel) or waiting for room; once it is joined s->err is ours. */
        stop_thread(p, 1);
        if (!s->err.msg[0])
            sf_fail(&s->err, SF_ERR_SOURCE, "cancelled");
        s->row_fail = SF_OK;
        return finish(p, -1);
    }
    for (;;) {
        pf_batch *b = &p->b[p->cons % (uint64_t)p->nb];
        if (p->read == p->avail)
            p->avail = atomic_load_explicit(&b->committed, memory_order_acquire);
        if (p->read < p->avail) {
            p->row = b->data + p->off;
            p->off += (size_t)((const pf_row *)(const void *)p->row)->size;
            p->read++;
            return 1;
        }
        /* Every committed row read: wait for more, a seal, or the poll. */
        pthread_mutex_lock(&p->mu);
        if (!b->sealed && atomic_load_explicit(&b->committed, memory_order_acquire) == p->read) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            t.tv_nsec += PF_POLL_NS;
            if (t.tv_nsec >= 1000000000L)
                t.tv_sec++, t.tv_nsec -= 1000000000L;
            p->consumer_waiting = 1;
            while (!b->sealed &&
                   atomic_load_explicit(&b->committed, memory_order_acquire) == p->read &&
                   pthread_cond_timedwait(&p->can_read, &p->mu, &t) != ETIMEDOUT)
                ;
            p->consumer_waiting = 0;
        }
        int sealed = b->sealed, term = b->term;
        if (sealed && atomic_load_explicit(&b->committed, memory_order_acquire) == p->read) {
            if (term != 1) {
                pthread_mutex_unlock(&p->mu);
                return finish(p, term);
            }
            /* Read to its end: hand it back. */
            atomic_store_explicit(&b->committed, 0, memory_order_relaxed);
            b->sealed = 0;
            b->term = 0;
            p->cons++;
            if (p->producer_waiting)
                pthread_cond_signal(&p->can_write);
            p->read = p->avail = 0;
            p->off = 0;
        }
        pthread_mutex_unlock(&p->mu);
    }
}

void sf_prefetch_column(sf_source *s, int i, sf_val *out)
{
    const char *row = s->pf->row;
    const pf_col *c = (const pf_col *)(const void *)(row + sizeof(pf_row)) + i;
    out->kind = c->kind;
    out->truthy = c->truthy;
    out->n = c->len;
    out->s = c->kind == SF_VAL_NULL ? "" : row + c->off;
}

void sf_prefetch_free(sf_source *s)
{
    sf_prefetch *p = s->pf;
    if (!p)
        return;
    stop_thread(p, 1);
    s->pf = NULL;
    destroy(p);
}
