/* zstd.c: the zstd stage: libzstd's streaming compressor, inline (the
 * default: on the thread running the chain, which is the writer thread
 * once the hop is in front) or with N worker threads (option "workers").
 * Every allocation libzstd makes, on any thread, goes through the census
 * (ZSTD_customMem), tagged SF_MEM_SINK. A frame checksum is written, so
 * zstd -t verifies the content.
 *
 * With workers, libzstd cuts the stream into jobs; each job sees only the
 * overlap before it as history, which costs ratio: at level 3 with the
 * default 8 MiB jobs it allocates 45 MiB; with 1 MiB jobs the ratio falls
 * 6 % below zstd -3's. ZSTD_c_overlapLog 9 (the whole window as each job's
 * prefix; libzstd then makes jobs at least that large) and a larger hash
 * table give back the ratio (6.09 against zstd -3's 6.04 on the reference
 * feed) at 14 MiB with one worker, 20 MiB with two (docs/sink.md). */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem, ZSTD_createCCtx_advanced */
#include <zstd.h>
#include <zstd_errors.h>

#include "sink.h"

#define ZSTD_JOB_SIZE ((int)1 << 20)
#define ZSTD_OVERLAP_LOG 9
#define ZSTD_HASH_LOG 18
#define ZSTD_HASH_LOG_UPTO 5

typedef struct zstd_stage {
    sf_stage base;
    ZSTD_CCtx *cc;
    char *obuf;
    size_t ocap;
} zstd_stage;

static void *zs_alloc(void *opaque, size_t n)
{
    return sf_alloc(opaque, SF_MEM_SINK, n);
}

/* With worker threads, libzstd 1.5.4 (Debian 12) calls its calloc wrapper,
 * which memsets what the allocator returned even when that is NULL (fixed
 * upstream after 1.5.4, facebook/zstd#4613): a refused allocation would
 * crash the process inside libzstd. So with workers the compressor's memory
 * is counted by the census but never refused by the budget or the
 * fail-after hook; without workers (the default) it is refused as any
 * other allocation and reported as SF_ERR_NOMEM. */
static void *zs_alloc_mt(void *opaque, size_t n)
{
    return sf_alloc_unrefused(opaque, SF_MEM_SINK, n);
}

static void zs_free(void *opaque, void *p) { sf_dealloc(opaque, p); }

static sf_status zs_fail(sf_stage *s, const char *what, size_t code)
{
    if (ZSTD_getErrorCode(code) == ZSTD_error_memory_allocation)
        return sf_fail(&s->out->err, SF_ERR_NOMEM, "out of memory: zstd %s for %s", what,
                       sf_sink_file_path(sf_stage_chain_tail(s)));
    return sf_fail(&s->out->err, SF_ERR_OUTPUT, "zstd %s for %s: %s", what,
                   sf_sink_file_path(sf_stage_chain_tail(s)), ZSTD_getErrorName(code));
}

/* Runs the compressor over `in` with `op` and emits what it produces until
 * the input is consumed (and, for ZSTD_e_end, the frame is complete). */
static sf_status zs_pump(zstd_stage *z, ZSTD_inBuffer *in, ZSTD_EndDirective op)
{
    for (;;) {
        ZSTD_outBuffer o = {z->obuf, z->ocap, 0};
        size_t r = ZSTD_compressStream2(z->cc, &o, in, op);
        if (ZSTD_isError(r))
            return zs_fail(&z->base, "compression", r);
        sf_status st = sf_stage_emit(&z->base, z->obuf, o.pos);
        if (st != SF_OK)
            return st;
        if (op == ZSTD_e_end ? r == 0 : in->pos == in->size)
            return SF_OK;
    }
}

static sf_status zs_write(sf_stage *s, const void *p, size_t n)
{
    zstd_stage *z = (zstd_stage *)s;
    ZSTD_inBuffer in = {p, n, 0};
    return n ? zs_pump(z, &in, ZSTD_e_continue) : SF_OK;
}

static sf_status zs_finish(sf_stage *s)
{
    zstd_stage *z = (zstd_stage *)s;
    ZSTD_inBuffer in = {NULL, 0, 0};
    return zs_pump(z, &in, ZSTD_e_end);
}

/* Stops the workers' jobs; the chain's sink drops the file. */
static void zs_abort(sf_stage *s)
{
    zstd_stage *z = (zstd_stage *)s;
    if (z->cc)
        ZSTD_CCtx_reset(z->cc, ZSTD_reset_session_only);
}

static void zs_destroy(sf_stage *s)
{
    zstd_stage *z = (zstd_stage *)s;
    sf_census *cs = s->out->cref.census;
    ZSTD_freeCCtx(z->cc); /* joins the workers, frees through the census */
    sf_dealloc(cs, z->obuf);
    sf_dealloc(cs, z);
}

static const sf_stage_vt zstd_vt = {
    .name = "zstd",
    .write = zs_write,
    .finish = zs_finish,
    .publish = NULL,
    .abort = zs_abort,
    .destroy = zs_destroy,
};

sf_status sf_stage_zstd_open(sf_output *out, int level, sf_stage **sp)
{
    sf_census *cs = out->cref.census;
    zstd_stage *z = sf_calloc(cs, SF_MEM_SINK, 1, sizeof *z);
    if (!z)
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: zstd stage");
    z->base.vt = &zstd_vt;
    z->base.out = out;
    ZSTD_customMem mem = {out->opt.workers > 0 ? zs_alloc_mt : zs_alloc, zs_free, cs};
    z->cc = ZSTD_createCCtx_advanced(mem);
    z->ocap = ZSTD_CStreamOutSize();
    z->obuf = sf_alloc(cs, SF_MEM_SINK, z->ocap);
    if (!z->cc || !z->obuf) {
        zs_destroy(&z->base);
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: zstd compressor");
    }
    size_t r = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r) && out->opt.workers > 0) {
        r = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_nbWorkers, out->opt.workers);
        if (!ZSTD_isError(r))
            r = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_jobSize, ZSTD_JOB_SIZE);
        if (!ZSTD_isError(r))
            r = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_overlapLog, ZSTD_OVERLAP_LOG);
    }
    /* The fast levels' hash table is small for a feed's long repeats:
     * 1 MiB instead of 128-512 KiB gains 0.3-1 % for no measurable time. */
    if (!ZSTD_isError(r) && level <= ZSTD_HASH_LOG_UPTO)
        r = ZSTD_CCtx_setParameter(z->cc, ZSTD_c_hashLog, ZSTD_HASH_LOG);
    if (ZSTD_isError(r)) {
        sf_status st = sf_fail(&out->err, SF_ERR_ARG, "zstd level %d with %d workers: %s",
                               level, out->opt.workers, ZSTD_getErrorName(r));
        zs_destroy(&z->base);
        return st;
    }
    *sp = &z->base;
    return SF_OK;
}
