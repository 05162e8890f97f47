/* gzip.c: the gzip stage (RFC 1952, one member), streamed, on two engines
 * chosen by level (measured on the 506 MB reference feed, docs/sink.md):
 *
 *   level 1    ISA-L igzip level 2: 557 MB/s a core, ratio 4.13 (ISA-L 1:
 *              579 MB/s, 3.99, too close to gzip -1's 3.97 on small
 *              feeds; zlib -1: 148 MB/s, 3.97)
 *   level 2    ISA-L igzip level 3: 270 MB/s, ratio 4.29 (zlib -2: 135 MB/s,
 *              4.25)
 *   levels 3-9 zlib at that level (ISA-L's best ratio is below zlib -3's)
 *
 * so each level is at least as small as zlib's at the same level, and as
 * fast as a Debian library makes it. Memory: ISA-L allocates nothing (its
 * stream state and level buffer are ours, from the census); zlib allocates
 * through the census (zalloc/zfree). All tagged SF_MEM_SINK.
 *
 * Two ways to run them (option "workers"):
 *
 *   workers N (default 2)  blocks, as pigz does: the input is cut into
 *              256 KiB blocks, each deflated on one of N worker threads
 *              primed with the 32 KiB before it (deflate's whole window, so
 *              the ratio is the stream's: 4.133 against 4.134 on the
 *              reference feed) and ended on a byte boundary (a sync flush);
 *              the thread running the chain concatenates them in order into
 *              one member, with the CRC-32 combined from the blocks'. The
 *              bytes do not depend on the threads' timing.
 *   workers 0  one stream on the thread running the chain (the writer
 *              thread, or the render's with writer=inline).
 *
 * Nothing is allocated per block: the blocks' buffers and each worker's
 * engine are allocated at open (an output buffer grows for input that does
 * not compress, and stays grown). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <zlib.h>

#include "sink.h"

#define GZ_OUT ((size_t)64 << 10)
#define PG_BLOCK ((size_t)256 << 10) /* input a block */
#define PG_DICT ((size_t)32 << 10)   /* deflate's window: what primes a block */
/* A block's output buffer, at first: feeds deflate to a quarter or less;
 * input that does not compress grows it (by half, as often as needed, each
 * slot once: then kept). */
#define PG_OUT0 (PG_BLOCK / 2)

/* A compressor: ISA-L's stream and level buffer (levels 1-2), or zlib's. */
typedef struct gz_engine {
    struct isal_zstream *is;
    unsigned char *lbuf;
    uint32_t isl, lsize; /* ISA-L level and level buffer size */
    z_stream z;
    int zlive; /* deflateInit2 succeeded */
} gz_engine;

enum { PG_FREE, PG_QUEUED, PG_DONE, PG_FAILED };

typedef struct pg_slot {
    unsigned char *in, *dict, *out;
    size_t len, dlen, cap, olen;
    uint32_t crc;
    int last;  /* the member's last block */
    int state; /* under the lock once queued */
    int err;   /* PG_FAILED: the engine's code, or Z_MEM_ERROR */
} pg_slot;

struct gzip_stage;
typedef struct pg_worker {
    struct gzip_stage *g;
    gz_engine e;
    pthread_t t;
    int running;
} pg_worker;

typedef struct gzip_stage {
    sf_stage base;
    unsigned char *obuf;
    /* zlib (levels 3-9) */
    z_stream z;
    int zlive; /* deflateInit2 succeeded */
    /* ISA-L (levels 1-2): stream state (~80 KiB) and level buffer */
    struct isal_zstream *is;
    unsigned char *lbuf;
    /* Blocks (workers > 0): nslots = nworkers + 2 buffers, block k in
     * slot[k % nslots]; blocks [tail, head) are queued or done, the caller
     * fills block head, the workers take block `next`. */
    int level, nworkers, nslots;
    int started, running; /* the workers were started; how many run */
    pg_worker *w;
    pg_slot *slot;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    int sync_ok;                 /* mu, work and done made */
    uint64_t head, tail, next;   /* under mu (head and tail: the caller's) */
    int stop;                    /* under mu: the workers must end */
    uint32_t crc;                /* of the blocks emitted */
    uint64_t total;              /* their input bytes */
    int header_out;
} gzip_stage;

static voidpf gz_alloc(voidpf opaque, uInt items, uInt size)
{
    return sf_calloc(opaque, SF_MEM_SINK, items, size);
}

static void gz_free(voidpf opaque, voidpf p) { sf_dealloc(opaque, p); }

static sf_status gz_fail(gzip_stage *g, int rc, const char *msg)
{
    sf_stage *s = &g->base;
    const char *path = sf_sink_file_path(sf_stage_chain_tail(s));
    if (rc == Z_MEM_ERROR)
        return sf_fail(&s->out->err, SF_ERR_NOMEM, "out of memory: gzip for %s", path);
    return sf_fail(&s->out->err, SF_ERR_OUTPUT, "gzip for %s: %s", path, msg);
}

/* zlib: deflates what z.next_in holds with `flush`, emitting each output
 * buffer, until the input is consumed (Z_NO_FLUSH) or the member ended
 * (Z_FINISH). */
static sf_status zl_pump(gzip_stage *g, int flush)
{
    for (;;) {
        g->z.next_out = g->obuf;
        g->z.avail_out = (uInt)GZ_OUT;
        int rc = deflate(&g->z, flush);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return gz_fail(g, rc, g->z.msg ? g->z.msg : zError(rc));
        sf_status st = sf_stage_emit(&g->base, g->obuf, GZ_OUT - g->z.avail_out);
        if (st != SF_OK)
            return st;
        if (flush == Z_FINISH ? rc == Z_STREAM_END : g->z.avail_in == 0 && g->z.avail_out != 0)
            return SF_OK;
    }
}

/* ISA-L: the same, ending the member when `end`. */
static sf_status is_pump(gzip_stage *g, int end)
{
    struct isal_zstream *s = g->is;
    s->end_of_stream = (uint16_t)end;
    s->flush = NO_FLUSH;
    for (;;) {
        s->next_out = g->obuf;
        s->avail_out = (uint32_t)GZ_OUT;
        int rc = isal_deflate(s);
        if (rc != COMP_OK) { /* ISA-L's codes are not zlib's: -4 is ISAL_INVALID_LEVEL */
            char m[64];
            snprintf(m, sizeof m, "ISA-L deflate failed (code %d)", rc);
            return gz_fail(g, Z_STREAM_ERROR, m);
        }
        sf_status st = sf_stage_emit(&g->base, g->obuf, GZ_OUT - s->avail_out);
        if (st != SF_OK)
            return st;
        if (end ? s->internal_state.state == ZSTATE_END
                : s->avail_in == 0 && s->avail_out != 0)
            return SF_OK;
    }
}

/* ---- blocks -------------------------------------------------------------- */

/* Makes an engine at the stage's level (ISA-L 1-2, zlib 3-9): raw deflate
 * (`gzip_wrap` 0: the stage writes the member's header and trailer) or a
 * gzip member. Z_MEM_ERROR, another zlib code, or Z_OK. */
static int engine_open(gzip_stage *g, gz_engine *e, int gzip_wrap)
{
    sf_census *cs = g->base.out->cref.census;
    if (g->level <= 2) {
        e->isl = g->level == 1 ? 2 : 3;
        e->lsize = e->isl == 2 ? ISAL_DEF_LVL2_DEFAULT : ISAL_DEF_LVL3_DEFAULT;
        e->is = sf_alloc(cs, SF_MEM_SINK, sizeof *e->is);
        e->lbuf = sf_alloc(cs, SF_MEM_SINK, e->lsize);
        if (!e->is || !e->lbuf)
            return Z_MEM_ERROR;
        isal_deflate_init(e->is);
        e->is->gzip_flag = gzip_wrap ? IGZIP_GZIP : IGZIP_DEFLATE;
        e->is->level = e->isl;
        e->is->level_buf = e->lbuf;
        e->is->level_buf_size = e->lsize;
        return Z_OK;
    }
    e->z.zalloc = gz_alloc;
    e->z.zfree = gz_free;
    e->z.opaque = cs;
    int rc = deflateInit2(&e->z, g->level, Z_DEFLATED, gzip_wrap ? 15 + 16 : -15, 8,
                          Z_DEFAULT_STRATEGY);
    e->zlive = rc == Z_OK;
    return rc;
}

static void engine_close(gzip_stage *g, gz_engine *e)
{
    sf_census *cs = g->base.out->cref.census;
    if (e->zlive)
        deflateEnd(&e->z);
    e->zlive = 0;
    sf_dealloc(cs, e->is);
    sf_dealloc(cs, e->lbuf);
    e->is = NULL;
    e->lbuf = NULL;
}

/* Room for more output: the block's buffer grows by half (input that does
 * not compress; kept for the slot's next blocks). */
static int block_grow(gzip_stage *g, pg_slot *s)
{
    size_t cap = s->cap + s->cap / 2;
    unsigned char *o = sf_realloc(g->base.out->cref.census, SF_MEM_SINK, s->out, cap);
    if (!o)
        return Z_MEM_ERROR;
    s->out = o;
    s->cap = cap;
    return Z_OK;
}

/* What block_deflate returns for ISA-L's code c (its codes are not zlib's:
 * -4 is ISAL_INVALID_LEVEL, zlib's Z_MEM_ERROR): PG_ISAL_FAILED - c. */
#define PG_ISAL_FAILED 1000

/* Deflates one block with engine e: primed with its dictionary, ended by a
 * sync flush (on a byte boundary), or the final block. On any thread: it
 * touches only the slot and the engine. Z_OK, Z_MEM_ERROR (its output
 * could not grow), another zlib code, or PG_ISAL_FAILED - ISA-L's code. */
static int block_deflate(gzip_stage *g, gz_engine *e, pg_slot *s)
{
    size_t o = 0;
    if (e->is) {
        struct isal_zstream *z = e->is;
        isal_deflate_reset(z);
        z->gzip_flag = IGZIP_DEFLATE;
        z->level = e->isl;
        z->level_buf = e->lbuf;
        z->level_buf_size = e->lsize;
        int rc = s->dlen ? isal_deflate_set_dict(z, s->dict, (uint32_t)s->dlen) : COMP_OK;
        if (rc != COMP_OK)
            return PG_ISAL_FAILED - rc;
        z->next_in = s->in;
        z->avail_in = (uint32_t)s->len;
        z->end_of_stream = (uint16_t)s->last;
        z->flush = SYNC_FLUSH;
        for (;;) {
            z->next_out = s->out + o;
            z->avail_out = (uint32_t)(s->cap - o);
            rc = isal_deflate(z);
            if (rc != COMP_OK)
                return PG_ISAL_FAILED - rc;
            o = s->cap - z->avail_out;
            if (s->last ? z->internal_state.state == ZSTATE_END
                        : z->avail_in == 0 && z->avail_out != 0)
                break;
            if ((rc = block_grow(g, s)) != Z_OK)
                return rc;
        }
    } else {
        z_stream *z = &e->z;
        int rc = deflateReset(z);
        if (rc == Z_OK && s->dlen)
            rc = deflateSetDictionary(z, s->dict, (uInt)s->dlen);
        if (rc != Z_OK)
            return rc;
        z->next_in = s->in;
        z->avail_in = (uInt)s->len;
        int flush = s->last ? Z_FINISH : Z_SYNC_FLUSH;
        for (;;) {
            z->next_out = s->out + o;
            z->avail_out = (uInt)(s->cap - o);
            rc = deflate(z, flush);
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
                return rc;
            o = s->cap - z->avail_out;
            if (s->last ? rc == Z_STREAM_END : z->avail_in == 0 && z->avail_out != 0)
                break;
            if ((rc = block_grow(g, s)) != Z_OK)
                return rc;
        }
    }
    s->olen = o;
    s->crc = crc32_gzip_refl(0, s->in, s->len);
    return Z_OK;
}

static void *pg_main(void *arg)
{
    pg_worker *w = arg;
    gzip_stage *g = w->g;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->stop && g->next == g->head)
            pthread_cond_wait(&g->work, &g->mu);
        if (g->stop)
            break;
        pg_slot *s = &g->slot[g->next++ % (uint64_t)g->nslots];
        pthread_mutex_unlock(&g->mu);
        int rc = block_deflate(g, &w->e, s);
        pthread_mutex_lock(&g->mu);
        s->err = rc;
        s->state = rc == Z_OK ? PG_DONE : PG_FAILED;
        pthread_cond_signal(&g->done);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Ends the workers (each after its block in progress). */
static void pg_stop(gzip_stage *g)
{
    if (!g->sync_ok)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_broadcast(&g->work);
    pthread_mutex_unlock(&g->mu);
    for (int i = 0; i < g->nworkers; i++)
        if (g->w[i].running) {
            pthread_join(g->w[i].t, NULL);
            g->w[i].running = 0;
        }
}

static sf_status pg_fail(gzip_stage *g, int rc)
{
    if (rc < PG_ISAL_FAILED)
        return gz_fail(g, rc, zError(rc));
    char m[64];
    snprintf(m, sizeof m, "ISA-L deflate failed (code %d)", PG_ISAL_FAILED - rc);
    return gz_fail(g, Z_STREAM_ERROR, m);
}

/* Emits the oldest block once it is done: the member's header first, its
 * trailer after the last block. */
static sf_status pg_collect(gzip_stage *g)
{
    pg_slot *s = &g->slot[g->tail % (uint64_t)g->nslots];
    pthread_mutex_lock(&g->mu);
    while (s->state == PG_QUEUED)
        pthread_cond_wait(&g->done, &g->mu);
    int state = s->state, err = s->err;
    pthread_mutex_unlock(&g->mu);
    if (state == PG_FAILED)
        return pg_fail(g, err);
    sf_status st = SF_OK;
    if (!g->header_out) {
        /* What ISA-L writes: no name, no time, OS unknown. */
        static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
        if ((st = sf_stage_emit(&g->base, hdr, sizeof hdr)) != SF_OK)
            return st;
        g->header_out = 1;
    }
    if ((st = sf_stage_emit(&g->base, s->out, s->olen)) != SF_OK)
        return st;
    g->crc = (uint32_t)crc32_combine(g->crc, s->crc, (z_off_t)s->len);
    g->total += s->len;
    if (s->last) {
        unsigned char tr[8];
        for (int k = 0; k < 4; k++) {
            tr[k] = (unsigned char)(g->crc >> (8 * k));
            tr[4 + k] = (unsigned char)(g->total >> (8 * k)); /* ISIZE: modulo 2^32 */
        }
        if ((st = sf_stage_emit(&g->base, tr, sizeof tr)) != SF_OK)
            return st;
    }
    pthread_mutex_lock(&g->mu);
    s->state = PG_FREE;
    g->tail++;
    pthread_mutex_unlock(&g->mu);
    return SF_OK;
}

/* Hands the block being filled to the workers (the first time, starts
 * them; with none, deflates it here), then readies the next slot: primed
 * with this block's last 32 KiB, once its previous block is emitted. */
static sf_status pg_submit(gzip_stage *g, int last)
{
    pg_slot *s = &g->slot[g->head % (uint64_t)g->nslots];
    s->last = last;
    /* The first block is deflated here; the workers start with the second
     * unless it is the last: a feed of one block (a small part of a set,
     * exactly 256 KiB too) starts no thread. */
    if (!g->started && !last && g->head >= 1) {
        g->started = 1;
        for (int i = 0; i < g->nworkers; i++)
            if ((g->w[i].running = sf_thread_start(&g->w[i].t, pg_main, &g->w[i]) == 0))
                g->running++;
    }
    if (!g->running) { /* the first block, the last of one or two, or no
                          thread could be made: here, on worker 0's engine */
        int rc = block_deflate(g, &g->w[0].e, s);
        s->err = rc;
        s->state = rc == Z_OK ? PG_DONE : PG_FAILED;
        pthread_mutex_lock(&g->mu);
        g->head++;
        g->next++;
        pthread_mutex_unlock(&g->mu);
    } else {
        pthread_mutex_lock(&g->mu);
        s->state = PG_QUEUED;
        g->head++;
        pthread_cond_signal(&g->work);
        pthread_mutex_unlock(&g->mu);
    }
    if (last)
        return SF_OK;
    while (g->head - g->tail >= (uint64_t)g->nslots) {
        sf_status st = pg_collect(g);
        if (st != SF_OK)
            return st;
    }
    pg_slot *n = &g->slot[g->head % (uint64_t)g->nslots];
    n->dlen = s->len < PG_DICT ? s->len : PG_DICT;
    memcpy(n->dict, s->in + s->len - n->dlen, n->dlen);
    n->len = 0;
    return SF_OK;
}

static sf_status pg_write(gzip_stage *g, const unsigned char *b, size_t n)
{
    while (n) {
        pg_slot *s = &g->slot[g->head % (uint64_t)g->nslots];
        size_t k = PG_BLOCK - s->len < n ? PG_BLOCK - s->len : n;
        memcpy(s->in + s->len, b, k);
        s->len += k;
        b += k;
        n -= k;
        if (s->len == PG_BLOCK) {
            sf_status st = pg_submit(g, 0);
            if (st != SF_OK)
                return st;
        }
    }
    return SF_OK;
}

static sf_status pg_finish(gzip_stage *g)
{
    sf_status st = pg_submit(g, 1);
    while (st == SF_OK && g->tail != g->head)
        st = pg_collect(g);
    pg_stop(g);
    return st;
}

static sf_status gz_write(sf_stage *st, const void *p, size_t n)
{
    gzip_stage *g = (gzip_stage *)st;
    const unsigned char *b = p;
    if (g->slot)
        return pg_write(g, b, n);
    while (n) { /* both engines count input in 32 bits */
        uint32_t k = n > 1u << 30 ? 1u << 30 : (uint32_t)n;
        sf_status r;
        if (g->is) {
            g->is->next_in = (uint8_t *)(uintptr_t)b;
            g->is->avail_in = k;
            r = is_pump(g, 0);
        } else {
            g->z.next_in = (z_const Bytef *)b;
            g->z.avail_in = k;
            r = zl_pump(g, Z_NO_FLUSH);
        }
        if (r != SF_OK)
            return r;
        b += k;
        n -= k;
    }
    return SF_OK;
}

static sf_status gz_finish(sf_stage *st)
{
    gzip_stage *g = (gzip_stage *)st;
    if (g->slot)
        return pg_finish(g);
    if (g->is) {
        g->is->next_in = NULL;
        g->is->avail_in = 0;
        return is_pump(g, 1);
    }
    g->z.next_in = NULL;
    g->z.avail_in = 0;
    return zl_pump(g, Z_FINISH);
}

/* The workers end after their block in progress; what is queued is
 * dropped with the stage. */
static void gz_abort(sf_stage *st) { pg_stop((gzip_stage *)st); }

static void gz_destroy(sf_stage *st)
{
    gzip_stage *g = (gzip_stage *)st;
    sf_census *cs = st->out->cref.census;
    pg_stop(g);
    if (g->sync_ok) {
        pthread_cond_destroy(&g->done);
        pthread_cond_destroy(&g->work);
        pthread_mutex_destroy(&g->mu);
    }
    for (int i = 0; g->w && i < g->nworkers; i++)
        engine_close(g, &g->w[i].e);
    for (int i = 0; g->slot && i < g->nslots; i++) {
        sf_dealloc(cs, g->slot[i].in);
        sf_dealloc(cs, g->slot[i].dict);
        sf_dealloc(cs, g->slot[i].out);
    }
    sf_dealloc(cs, g->w);
    sf_dealloc(cs, g->slot);
    if (g->zlive)
        deflateEnd(&g->z);
    sf_dealloc(cs, g->is);
    sf_dealloc(cs, g->lbuf);
    sf_dealloc(cs, g->obuf);
    sf_dealloc(cs, g);
}

static const sf_stage_vt gzip_vt = {
    .name = "gzip",
    .write = gz_write,
    .finish = gz_finish,
    .publish = NULL,
    .abort = gz_abort,
    .destroy = gz_destroy,
};

static sf_status isal_open(gzip_stage *g, int level)
{
    sf_output *out = g->base.out;
    sf_census *cs = out->cref.census;
    uint32_t isl = level == 1 ? 2 : 3;
    uint32_t lsize = isl == 2 ? ISAL_DEF_LVL2_DEFAULT : ISAL_DEF_LVL3_DEFAULT;
    g->is = sf_alloc(cs, SF_MEM_SINK, sizeof *g->is);
    g->lbuf = sf_alloc(cs, SF_MEM_SINK, lsize);
    if (!g->is || !g->lbuf)
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip compressor");
    isal_deflate_init(g->is);
    g->is->gzip_flag = IGZIP_GZIP;
    g->is->level = isl;
    g->is->level_buf = g->lbuf;
    g->is->level_buf_size = lsize;
    return SF_OK;
}

static sf_status zlib_open(gzip_stage *g, int level)
{
    sf_output *out = g->base.out;
    g->z.zalloc = gz_alloc;
    g->z.zfree = gz_free;
    g->z.opaque = out->cref.census;
    int rc = deflateInit2(&g->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (rc == Z_MEM_ERROR)
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip compressor");
    if (rc != Z_OK)
        return sf_fail(&out->err, SF_ERR_ARG, "gzip level %d: %s", level, zError(rc));
    g->zlive = 1;
    return SF_OK;
}

/* Blocks: the slots' buffers, the workers' engines and the lock. */
static sf_status blocks_open(gzip_stage *g, int workers)
{
    sf_output *out = g->base.out;
    sf_census *cs = out->cref.census;
    g->nworkers = workers;
    g->nslots = workers + 2; /* a block for each worker, one being emitted, one filled */
    g->w = sf_calloc(cs, SF_MEM_SINK, (size_t)g->nworkers, sizeof *g->w);
    g->slot = sf_calloc(cs, SF_MEM_SINK, (size_t)g->nslots, sizeof *g->slot);
    if (!g->w || !g->slot)
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip blocks");
    for (int i = 0; i < g->nslots; i++) {
        pg_slot *s = &g->slot[i];
        s->in = sf_alloc(cs, SF_MEM_SINK, PG_BLOCK);
        s->dict = sf_alloc(cs, SF_MEM_SINK, PG_DICT);
        s->out = sf_alloc(cs, SF_MEM_SINK, PG_OUT0);
        s->cap = PG_OUT0;
        if (!s->in || !s->dict || !s->out)
            return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip blocks");
    }
    for (int i = 0; i < g->nworkers; i++) {
        g->w[i].g = g;
        int rc = engine_open(g, &g->w[i].e, 0);
        if (rc == Z_MEM_ERROR)
            return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip compressor");
        if (rc != Z_OK)
            return sf_fail(&out->err, SF_ERR_ARG, "gzip level %d: %s", g->level, zError(rc));
    }
    if (pthread_mutex_init(&g->mu, NULL) != 0)
        return sf_fail(&out->err, SF_ERR_NOMEM, "gzip blocks: cannot make a lock");
    if (pthread_cond_init(&g->work, NULL) != 0) {
        pthread_mutex_destroy(&g->mu);
        return sf_fail(&out->err, SF_ERR_NOMEM, "gzip blocks: cannot make a lock");
    }
    if (pthread_cond_init(&g->done, NULL) != 0) {
        pthread_cond_destroy(&g->work);
        pthread_mutex_destroy(&g->mu);
        return sf_fail(&out->err, SF_ERR_NOMEM, "gzip blocks: cannot make a lock");
    }
    g->sync_ok = 1;
    g->crc = (uint32_t)crc32_z(0, NULL, 0);
    return SF_OK;
}

sf_status sf_stage_gzip_open(sf_output *out, int level, sf_stage **sp)
{
    sf_census *cs = out->cref.census;
    gzip_stage *g = sf_calloc(cs, SF_MEM_SINK, 1, sizeof *g);
    if (!g)
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip stage");
    g->base.vt = &gzip_vt;
    g->base.out = out;
    g->level = level;
    int workers = out->opt.workers < 0 ? SF_GZIP_WORKERS_DEFAULT : out->opt.workers;
    g->obuf = workers ? NULL : sf_alloc(cs, SF_MEM_SINK, GZ_OUT);
    sf_status st = workers      ? blocks_open(g, workers)
                   : !g->obuf   ? sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip stage")
                   : level <= 2 ? isal_open(g, level)
                                : zlib_open(g, level);
    if (st != SF_OK) {
        gz_destroy(&g->base);
        return st;
    }
    *sp = &g->base;
    return SF_OK;
}
