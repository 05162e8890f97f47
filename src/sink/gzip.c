/* gzip.c: the gzip stage (RFC 1952), zlib's deflate, streamed. Every
 * allocation zlib makes goes through the census (zalloc/zfree), tagged
 * SF_MEM_SINK. */
#include <zlib.h>

#include "sink.h"

#define GZ_OUT ((size_t)64 << 10)

typedef struct gzip_stage {
    sf_stage base;
    z_stream z;
    int live; /* deflateInit2 succeeded */
    unsigned char *obuf;
} gzip_stage;

static voidpf gz_alloc(voidpf opaque, uInt items, uInt size)
{
    return sf_calloc(opaque, SF_MEM_SINK, items, size);
}

static void gz_free(voidpf opaque, voidpf p) { sf_dealloc(opaque, p); }

static sf_status gz_fail(gzip_stage *g, int rc)
{
    sf_stage *s = &g->base;
    const char *path = sf_sink_file_path(sf_stage_chain_tail(s));
    if (rc == Z_MEM_ERROR)
        return sf_fail(&s->out->err, SF_ERR_NOMEM, "out of memory: gzip for %s", path);
    return sf_fail(&s->out->err, SF_ERR_OUTPUT, "gzip for %s: %s", path,
                   g->z.msg ? g->z.msg : zError(rc));
}

/* Deflates what z.next_in holds with `flush`, emitting each full output
 * buffer, until the input is consumed (Z_NO_FLUSH) or the stream ended
 * (Z_FINISH). */
static sf_status gz_pump(gzip_stage *g, int flush)
{
    for (;;) {
        g->z.next_out = g->obuf;
        g->z.avail_out = (uInt)GZ_OUT;
        int rc = deflate(&g->z, flush);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return gz_fail(g, rc);
        sf_status st = sf_stage_emit(&g->base, g->obuf, GZ_OUT - g->z.avail_out);
        if (st != SF_OK)
            return st;
        if (flush == Z_FINISH ? rc == Z_STREAM_END : g->z.avail_in == 0 && g->z.avail_out != 0)
            return SF_OK;
    }
}

static sf_status gz_write(sf_stage *s, const void *p, size_t n)
{
    gzip_stage *g = (gzip_stage *)s;
    const unsigned char *b = p;
    while (n) { /* avail_in is an unsigned int */
        uInt k = n > 1u << 30 ? 1u << 30 : (uInt)n;
        g->z.next_in = (z_const Bytef *)b;
        g->z.avail_in = k;
        sf_status st = gz_pump(g, Z_NO_FLUSH);
        if (st != SF_OK)
            return st;
        b += k;
        n -= k;
    }
    return SF_OK;
}

static sf_status gz_finish(sf_stage *s)
{
    gzip_stage *g = (gzip_stage *)s;
    g->z.next_in = NULL;
    g->z.avail_in = 0;
    return gz_pump(g, Z_FINISH);
}

static void gz_abort(sf_stage *s) { (void)s; }

static void gz_destroy(sf_stage *s)
{
    gzip_stage *g = (gzip_stage *)s;
    sf_census *cs = s->out->cref.census;
    if (g->live)
        deflateEnd(&g->z);
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

sf_status sf_stage_gzip_open(sf_output *out, int level, sf_stage **sp)
{
    sf_census *cs = out->cref.census;
    gzip_stage *g = sf_calloc(cs, SF_MEM_SINK, 1, sizeof *g);
    if (!g)
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip stage");
    g->base.vt = &gzip_vt;
    g->base.out = out;
    g->obuf = sf_alloc(cs, SF_MEM_SINK, GZ_OUT);
    g->z.zalloc = gz_alloc;
    g->z.zfree = gz_free;
    g->z.opaque = cs;
    int rc = g->obuf ? deflateInit2(&g->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
                     : Z_MEM_ERROR;
    if (rc != Z_OK) {
        sf_status st = rc == Z_MEM_ERROR
                           ? sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: gzip compressor")
                           : sf_fail(&out->err, SF_ERR_ARG, "gzip level %d: %s", level,
                                     zError(rc));
        gz_destroy(&g->base);
        return st;
    }
    g->live = 1;
    *sp = &g->base;
    return SF_OK;
}
