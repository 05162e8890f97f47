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
 * through the census (zalloc/zfree). All tagged SF_MEM_SINK. */
#include <stdio.h>

#include <isa-l/igzip_lib.h>
#include <zlib.h>

#include "sink.h"

#define GZ_OUT ((size_t)64 << 10)

typedef struct gzip_stage {
    sf_stage base;
    unsigned char *obuf;
    /* zlib (levels 3-9) */
    z_stream z;
    int zlive; /* deflateInit2 succeeded */
    /* ISA-L (levels 1-2): stream state (~80 KiB) and level buffer */
    struct isal_zstream *is;
    unsigned char *lbuf;
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

static sf_status gz_write(sf_stage *st, const void *p, size_t n)
{
    gzip_stage *g = (gzip_stage *)st;
    const unsigned char *b = p;
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
    if (g->is) {
        g->is->next_in = NULL;
        g->is->avail_in = 0;
        return is_pump(g, 1);
    }
    g->z.next_in = NULL;
    g->z.avail_in = 0;
    return zl_pump(g, Z_FINISH);
}

static void gz_abort(sf_stage *st) { (void)st; /* nothing in flight off this thread */ }

static void gz_destroy(sf_stage *st)
{
    gzip_stage *g = (gzip_stage *)st;
    sf_census *cs = st->out->cref.census;
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

sf_status sf_stage_gzip_open(sf_output *out, int level, sf_stage **sp)
{
    sf_census *cs = out->cref.census;
    gzip_stage *g = sf_calloc(cs, SF_MEM_SINK, 1, sizeof *g);
    if (!g)
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip stage");
    g->base.vt = &gzip_vt;
    g->base.out = out;
    g->obuf = sf_alloc(cs, SF_MEM_SINK, GZ_OUT);
    sf_status st = !g->obuf   ? sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip stage")
                   : level <= 2 ? isal_open(g, level)
                                : zlib_open(g, level);
    if (st != SF_OK) {
        gz_destroy(&g->base);
        return st;
    }
    *sp = &g->base;
    return SF_OK;
}
