/* output.c: the write buffer and the public sf_output_* calls. */
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "sink.h"

static int output_drain(sf_wbuf *w)
{
    sf_output *o = (sf_output *)w;
    if (o->state != SF_OUT_OPEN)
        return -1;
    if (w->len == 0)
        return 0;
    sf_status st = o->head->vt->write(o->head, w->buf, w->len);
    if (st != SF_OK) {
        o->state = SF_OUT_FAILED;
        return -1;
    }
    /* One writer: a relaxed load and store, read whole by other threads. */
    atomic_store_explicit(&o->drained,
                          atomic_load_explicit(&o->drained, memory_order_relaxed) + w->len,
                          memory_order_relaxed);
    w->len = 0;
    return 0;
}

sf_output *sf_output_create(sf_census *census)
{
    sf_output *o = SF_HANDLE_CREATE(sf_output, census);
    if (!o)
        return NULL;
    o->w.drain = output_drain;
    return o;
}

static void destroy_chain(sf_output *o)
{
    while (o->head) {
        sf_sink *k = o->head;
        o->head = k->next;
        k->vt->destroy(k);
    }
}

void sf_output_free(sf_output *o)
{
    if (!o)
        return;
    sf_output_abort(o);
    destroy_chain(o);
    sf_dealloc(o->cref.census, o->w.buf);
    SF_HANDLE_FREE(sf_output, o);
}

static sf_status open_common(sf_output *o, const char *path, int fd, const char *label)
{
    if (!o)
        return SF_ERR_ARG;
    sf_err_clear(&o->err);
    if (o->state != SF_OUT_NEW)
        return sf_fail(&o->err, SF_ERR_STATE, "output already opened");
    o->w.buf = sf_alloc(o->cref.census, SF_MEM_OUTPUT, SF_OUTPUT_BUFFER);
    if (!o->w.buf)
        return sf_fail(&o->err, SF_ERR_NOMEM, "out of memory: output buffer");
    o->w.cap = SF_OUTPUT_BUFFER;
    o->w.len = 0;
    sf_sink *k = NULL;
    sf_status st = sf_sink_file_open(o, &k, path, fd, label);
    if (st != SF_OK) {
        o->state = SF_OUT_FAILED;
        return st;
    }
    o->head = k;
    o->state = SF_OUT_OPEN;
    return SF_OK;
}

sf_status sf_output_open_file(sf_output *o, const char *path)
{
    if (o && (!path || !*path))
        return sf_fail(&o->err, SF_ERR_ARG, "no output path");
    return open_common(o, path, -1, path);
}

sf_status sf_output_open_fd(sf_output *o, int fd, const char *label)
{
    if (o && fd < 0)
        return sf_fail(&o->err, SF_ERR_ARG, "invalid descriptor");
    return open_common(o, NULL, fd, label ? label : "output");
}

sf_status sf_output_commit(sf_output *o)
{
    if (!o)
        return SF_ERR_ARG;
    if (o->state != SF_OUT_OPEN)
        return o->state == SF_OUT_FAILED
                   ? SF_ERR_OUTPUT
                   : sf_fail(&o->err, SF_ERR_STATE, "commit without an open output");
    sf_status st = SF_OK;
    if (output_drain(&o->w) != 0)
        st = SF_ERR_OUTPUT;
    for (sf_sink *k = o->head; st == SF_OK && k; k = k->next)
        st = k->vt->finish(k);
    if (st != SF_OK) {
        o->state = SF_OUT_FAILED;
        sf_output_abort(o);
        return st;
    }
    o->state = SF_OUT_DONE;
    return SF_OK;
}

void sf_output_abort(sf_output *o)
{
    if (!o)
        return;
    for (sf_sink *k = o->head; k; k = k->next)
        k->vt->abort(k);
    if (o->state == SF_OUT_OPEN)
        o->state = SF_OUT_FAILED;
}

int sf_output_published(const sf_output *o) { return o ? o->published : 0; }

sf_status sf_output_write(sf_output *o, const void *p, size_t n)
{
    if (!o || (n && !p))
        return SF_ERR_ARG;
    if (o->state != SF_OUT_OPEN)
        return o->state == SF_OUT_FAILED ? SF_ERR_OUTPUT
                                         : sf_fail(&o->err, SF_ERR_STATE, "output not open");
    return sf_wbuf_put(&o->w, p, n) == 0 ? SF_OK : SF_ERR_OUTPUT;
}

/* Bytes drained to the sinks: a buffer behind while rendering, all of them
 * after commit; an atomic, so a monitor thread may read it. */
uint64_t sf_output_bytes(const sf_output *o)
{
    return o ? atomic_load_explicit(&o->drained, memory_order_relaxed) : 0;
}

int sf_output_atomic(const sf_output *o) { return o ? o->atomic : 0; }

void sf_output_cancel(sf_output *o)
{
    if (o)
        atomic_store(&o->cancelled, 1); /* lock-free: async-signal-safe */
}

int sf_output_is_cancelled(const sf_output *o)
{
    return atomic_load(&o->cancelled) || (o->cancel && atomic_load(o->cancel));
}

int sf_output_kernel_dir(const char *dir)
{
    if (!dir || !*dir)
        return 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int k = sf_sink_kernel_dir(dir, fd);
    close(fd);
    return k;
}

const char *sf_output_temp_path(const sf_output *o)
{
    return o && o->head ? sf_sink_file_temp(o->head) : NULL;
}

const char *sf_output_errmsg(const sf_output *o) { return o ? o->err.msg : ""; }
