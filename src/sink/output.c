/* output.c: the write buffer, the options and the public sf_output_* calls:
 * open builds the stage chain (stages.c), finish ends it, publish makes it
 * visible. */
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "set.h"
#include "sink.h"

static int output_drain(sf_wbuf *w)
{
    sf_output *o = (sf_output *)w;
    if (o->state != SF_OUT_OPEN)
        return -1;
    if (w->len == 0)
        return 0;
    sf_status st = sf_stage_write(o->head, w->buf, w->len);
    if (st != SF_OK) {
        o->state = SF_OUT_FAILED;
        o->drain_status = st;
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
    o->opt.compress_auto = 1;
    o->opt.level = -1;
    o->opt.workers = -1; /* the codec's: SF_GZIP_WORKERS_DEFAULT, SF_ZSTD_WORKERS_DEFAULT */
    o->opt.writer = SF_WRITER_THREAD;
    o->opt.sync_step = SF_SYNC_STEP_DEFAULT;
    return o;
}

void sf_output_free(sf_output *o)
{
    if (!o)
        return;
    sf_output_abort(o);
    sf_fileset_free(o); /* a set's chains, o->head among them */
    sf_stage_chain_free(o->head);
    o->head = NULL;
    sf_side_free(o->side, o->cref.census); /* the lock last: the temporary files are gone */
    o->side = NULL;
    sf_dealloc(o->cref.census, o->w.buf);
    SF_HANDLE_FREE(sf_output, o);
}

/* ---- options ------------------------------------------------------------- */

/* A count: digits, optionally K, M, G (powers of 1024) when `sized`. */
static int parse_count(const char *v, int sized, uint64_t *out)
{
    if (*v < '0' || *v > '9')
        return -1;
    uint64_t n = 0;
    for (; *v >= '0' && *v <= '9'; v++) {
        if (n > (UINT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    unsigned shift = 0;
    if (sized && *v) {
        switch (*v++) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return -1;
        }
    }
    if (*v || (shift && n > (UINT64_MAX >> shift)))
        return -1;
    *out = n << shift;
    return 0;
}

sf_status sf_output_set_option(sf_output *o, const char *name, const char *value)
{
    if (!o)
        return SF_ERR_ARG;
    sf_err_clear(&o->err);
    if (!name || !value)
        return sf_fail(&o->err, SF_ERR_ARG, "output option needs a name and a value");
    if (o->state != SF_OUT_NEW)
        return sf_fail(&o->err, SF_ERR_STATE, "output option %s set after the output was opened",
                       name);
    uint64_t n = 0;
    if (!strcmp(name, "compress")) {
        const sf_stage_type *t = NULL;
        if (!strcmp(value, "auto") || !strcmp(value, "none"))
            ;
        else if (!(t = sf_stage_type_find(value)))
            return sf_fail(&o->err, SF_ERR_ARG,
                           "unknown compression '%s' (auto, none, %s)", value,
                           sf_stage_type_names());
        o->opt.compress_auto = !strcmp(value, "auto");
        o->opt.compress = t;
        return SF_OK;
    }
    if (!strcmp(name, "level")) {
        if (!strcmp(value, "best")) {
            o->opt.level_best = 1;
            o->opt.level = -1;
            return SF_OK;
        }
        /* The codec's own range is checked at open, when it is known. */
        if (parse_count(value, 0, &n) != 0 || n < 1 || n > 99)
            return sf_fail(&o->err, SF_ERR_ARG, "level '%s' is not a number from 1 or 'best'",
                           value);
        o->opt.level = (int)n;
        o->opt.level_best = 0;
        return SF_OK;
    }
    if (!strcmp(name, "workers")) {
        if (parse_count(value, 0, &n) != 0 || n > 64)
            return sf_fail(&o->err, SF_ERR_ARG, "workers '%s' is not a number from 0 to 64",
                           value);
        o->opt.workers = (int)n;
        return SF_OK;
    }
    if (!strcmp(name, "writer")) {
        if (!strcmp(value, "thread"))
            o->opt.writer = SF_WRITER_THREAD;
        else if (!strcmp(value, "inline"))
            o->opt.writer = SF_WRITER_INLINE;
        else
            return sf_fail(&o->err, SF_ERR_ARG, "writer '%s' is not 'thread' or 'inline'", value);
        return SF_OK;
    }
    if (!strcmp(name, "cache")) {
        if (!strcmp(value, "drop") || !strcmp(value, "keep"))
            o->opt.cache_keep = !strcmp(value, "keep");
        else
            return sf_fail(&o->err, SF_ERR_ARG, "cache '%s' is not 'drop' or 'keep'", value);
        return SF_OK;
    }
    uint64_t *dst = !strcmp(name, "sync_step")     ? &o->opt.sync_step
                    : !strcmp(name, "split_rows")  ? &o->opt.split_rows
                    : !strcmp(name, "split_bytes") ? &o->opt.split_bytes
                                                   : NULL;
    if (!dst)
        return sf_fail(&o->err, SF_ERR_ARG,
                       "unknown output option '%s' (compress, level, workers, writer, sync_step, "
                       "cache, split_rows, split_bytes)",
                       name);
    int sized = dst != &o->opt.split_rows;
    if (parse_count(value, sized, &n) != 0)
        return sf_fail(&o->err, SF_ERR_ARG, "%s '%s' is not a %s", name, value,
                       sized ? "size (a number, optionally with K, M or G)" : "number");
    *dst = n;
    return SF_OK;
}

uint64_t sf_output_split_rows(const sf_output *o) { return o ? o->opt.split_rows : 0; }
uint64_t sf_output_split_bytes(const sf_output *o) { return o ? o->opt.split_bytes : 0; }

/* ---- open, finish, publish ----------------------------------------------- */

static sf_status open_buffer(sf_output *o)
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
    return SF_OK;
}

/* A failed open: nothing of it stays (temporary files, lock). */
static sf_status open_failed(sf_output *o, sf_status st)
{
    o->state = SF_OUT_FAILED;
    sf_output_abort(o);
    sf_fileset_free(o);
    sf_stage_chain_free(o->head);
    o->head = NULL;
    sf_side_free(o->side, o->cref.census);
    o->side = NULL;
    return st;
}

static sf_status open_common(sf_output *o, const char *path, int fd, const char *label)
{
    sf_status st = open_buffer(o);
    if (st != SF_OK)
        return st;
    sf_stage *head = NULL;
    st = sf_stage_chain_open(o, path, fd, label, &head);
    if (st != SF_OK) {
        o->state = SF_OUT_FAILED;
        return st;
    }
    o->head = head;
    /* A file published by rename: one run at a time (the lock), and what a
     * killed run left is removed. The chain comes first, so a path that
     * names a descriptor, a device or a kernel directory is what it always
     * was, and creates no lock file. */
    if (o->atomic) {
        const char *tmp = sf_sink_file_temp(sf_stage_chain_tail(head));
        const char *slash = tmp ? strrchr(tmp, '/') : NULL;
        st = sf_side_open(&o->side, o->cref.census, &o->err, path, NULL,
                          slash ? slash + 1 : tmp);
        if (st != SF_OK)
            return open_failed(o, st);
        /* Between our temporary file's creation and the lock, a whole other
         * run may have held the lock and removed it as a leftover: then
         * start the chain again, under the lock now. */
        struct stat sb;
        if (fstatat(o->side->lock.dirfd, slash ? slash + 1 : tmp, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            sf_stage_chain_abort(o->head);
            sf_stage_chain_free(o->head);
            o->head = NULL;
            if ((st = sf_stage_chain_open(o, path, fd, label, &head)) != SF_OK)
                return open_failed(o, st);
            o->head = head;
        }
    }
    o->state = SF_OUT_OPEN;
    return SF_OK;
}

sf_status sf_output_open_parts(sf_output *o, const char *pattern)
{
    if (o && (!pattern || !*pattern))
        return sf_fail(&o->err, SF_ERR_ARG, "no part name pattern");
    sf_status st = open_buffer(o);
    if (st != SF_OK)
        return st;
    st = sf_fileset_open(o, pattern);
    if (st != SF_OK)
        return open_failed(o, st);
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

/* A failure of finish or publish: everything dropped, the temporary file
 * removed. */
static sf_status failed(sf_output *o, sf_status st)
{
    o->state = SF_OUT_FAILED;
    sf_output_abort(o);
    return st;
}

sf_status sf_output_finish(sf_output *o)
{
    if (!o)
        return SF_ERR_ARG;
    if (o->state == SF_OUT_FINISHED)
        return SF_OK;
    if (o->state != SF_OUT_OPEN)
        return o->state == SF_OUT_FAILED
                   ? SF_ERR_OUTPUT
                   : sf_fail(&o->err, SF_ERR_STATE, "finish without an open output");
    if (output_drain(&o->w) != 0)
        return failed(o, o->drain_status != SF_OK ? o->drain_status : SF_ERR_OUTPUT);
    sf_status st = sf_stage_chain_finish(o->head);
    if (st != SF_OK)
        return failed(o, st);
    sf_fileset_finished(o);
    o->state = SF_OUT_FINISHED;
    return SF_OK;
}

sf_status sf_output_publish(sf_output *o)
{
    if (!o)
        return SF_ERR_ARG;
    if (o->state != SF_OUT_FINISHED)
        return o->state == SF_OUT_FAILED
                   ? SF_ERR_OUTPUT
                   : sf_fail(&o->err, SF_ERR_STATE, "publish of an output not finished");
    if (o->set) {
        int renamed = 0;
        sf_status st = sf_fileset_publish(o, &renamed);
        if (!renamed)
            return failed(o, st); /* the parts not renamed yet removed */
        o->state = SF_OUT_DONE;
        return st;
    }
    sf_stage *sink = sf_stage_chain_tail(o->head);
    sf_status st = sink->vt->publish(sink);
    if (st != SF_OK)
        return failed(o, st);
    o->state = SF_OUT_DONE;
    /* Past the rename: a failed directory sync leaves the document
     * published (sf_output_published() says so), the message says what
     * may not survive a crash. */
    st = sf_sink_file_sync_dir(sink);
    if (o->side && (o->rows || o->keep_state)) {
        /* On the stack: nothing may fail for memory past the rename (a
         * single document's record is at most ~2 KiB: its name escaped). */
        char buf[4096];
        sf_state rec = {0};
        rec.rows = o->rows;
        rec.bytes = sf_output_bytes(o);
        sf_errbuf e;
        sf_status rs = sf_side_record(o->side, st == SF_OK ? &o->err : &e, &rec, buf, sizeof buf);
        if (st == SF_OK)
            st = rs;
    }
    return st;
}

sf_status sf_output_commit(sf_output *o)
{
    if (!o)
        return SF_ERR_ARG;
    if (o->state != SF_OUT_OPEN)
        return o->state == SF_OUT_FAILED
                   ? SF_ERR_OUTPUT
                   : sf_fail(&o->err, SF_ERR_STATE, "commit without an open output");
    sf_status st = sf_output_finish(o);
    return st != SF_OK ? st : sf_output_publish(o);
}

void sf_output_abort(sf_output *o)
{
    if (!o)
        return;
    sf_stage_chain_abort(o->head);
    sf_fileset_abort(o);
    if (o->state == SF_OUT_OPEN || o->state == SF_OUT_FINISHED)
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
    if (sf_wbuf_put(&o->w, p, n) == 0)
        return SF_OK;
    return o->drain_status != SF_OK ? o->drain_status : SF_ERR_OUTPUT;
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
    if (atomic_load(&o->no_return))
        return 0;
    const atomic_int *rc = atomic_load(&o->cancel);
    return atomic_load(&o->cancelled) || (rc && atomic_load(rc));
}

sf_status sf_output_drain_status(const sf_output *o)
{
    return o->drain_status;
}

void sf_output_no_return(sf_output *o)
{
    if (o)
        atomic_store(&o->no_return, 1);
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
    return o && o->head ? sf_sink_file_temp(sf_stage_chain_tail(o->head)) : NULL;
}

int sf_output_level(const sf_output *o)
{
    if (!o || !o->codec)
        return 0;
    return o->opt.level_best ? o->codec->level_best
           : o->opt.level < 0 ? o->codec->level_default
                              : o->opt.level;
}

void sf_output_crc_on(sf_output *o)
{
    if (o && o->set)
        sf_fileset_crc_on(o);
    else if (o && o->head)
        sf_sink_file_crc_on(sf_stage_chain_tail(o->head));
}

uint32_t sf_output_crc(const sf_output *o)
{
    return o && o->head && !o->set ? sf_sink_file_crc(sf_stage_chain_tail(o->head)) : 0;
}

uint32_t sf_output_part_crc(const sf_output *o, size_t i)
{
    if (o && o->set)
        return sf_fileset_part_crc(o, i);
    return i == 0 ? sf_output_crc(o) : 0;
}

/* Bytes the file sink(s) were given: the compressed size. */
uint64_t sf_output_bytes_out(const sf_output *o)
{
    if (o && o->set)
        return sf_fileset_bytes_out(o);
    sf_stage *sink = o ? sf_stage_chain_tail(o->head) : NULL;
    return sink ? sink->in : 0;
}

/* A single document is one part (a file set keeps its own list: fileset.c). */
size_t sf_output_part_count(const sf_output *o)
{
    return !o ? 0 : o->set ? sf_fileset_count(o) : o->head ? 1 : 0;
}

const char *sf_output_part_path(const sf_output *o, size_t i)
{
    if (o && o->set)
        return sf_fileset_part(o, i, NULL, NULL);
    return o && o->head && i == 0 ? sf_sink_file_path(sf_stage_chain_tail(o->head)) : NULL;
}

uint64_t sf_output_part_rows(const sf_output *o, size_t i)
{
    uint64_t rows = 0;
    if (o && o->set)
        return sf_fileset_part(o, i, &rows, NULL) ? rows : 0;
    return o && i == 0 ? o->rows : 0;
}

uint64_t sf_output_part_bytes(const sf_output *o, size_t i)
{
    uint64_t bytes = 0;
    if (o && o->set)
        return sf_fileset_part(o, i, NULL, &bytes) ? bytes : 0;
    return o && i == 0 ? sf_output_bytes(o) : 0;
}

int sf_output_previous_rows(const sf_output *o, uint64_t *rows)
{
    const sf_state *prev = o && o->side ? sf_side_previous(o->side) : NULL;
    if (!prev)
        return 0;
    if (rows)
        *rows = prev->rows;
    return 1;
}

const char *sf_output_lock_path(const sf_output *o)
{
    return o && o->side && o->side->lock.fd >= 0 ? o->side->lock.path : NULL;
}

void sf_output_keep_state(sf_output *o)
{
    if (o)
        o->keep_state = 1;
}

const char *sf_output_errmsg(const sf_output *o) { return o ? o->err.msg : ""; }
