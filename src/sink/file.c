/* file.c: the last sink of every chain: a file published atomically, or a
 * descriptor the caller owns (stdout).
 *
 * Publication follows the sequence that survives a crash at any point:
 * write a temporary file in the destination directory (same filesystem, so
 * rename is atomic), fsync it, close it and check close, rename it over the
 * destination, fsync the directory so the new name is durable. Any failure
 * removes the temporary file and leaves the destination as it was. The
 * temporary file is created with mode 0666 and O_EXCL, so it gets exactly
 * the mode any new file gets (the umask applies) and never follows or
 * replaces anything that exists. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sink.h"

/* Start writeback of what is written every so often, so the final fsync
 * does not wait for hundreds of megabytes at once. */
#define WRITEBACK_STEP ((uint64_t)32 << 20)

typedef struct file_sink {
    sf_sink base;
    int fd;
    int owned;       /* 1: our temporary file (atomic); 2: a device or FIFO we
                        opened; 0: the caller's descriptor */
    char *path;      /* destination (atomic mode) */
    char *tmp;       /* temporary file while it exists */
    char *dir;       /* directory to fsync after rename */
    char *label;     /* name used in messages */
    uint64_t off;    /* bytes written */
    uint64_t queued; /* bytes handed to writeback */
} file_sink;

static sf_status fail_errno(file_sink *f, const char *what, const char *name, int err)
{
    return sf_fail(&f->base.out->err, SF_ERR_OUTPUT, "%s %s: %s", what, name, strerror(err));
}

static sf_status fs_write(sf_sink *k, const char *p, size_t n)
{
    file_sink *f = (file_sink *)k;
    const atomic_int *cancel = k->out->cancel;
    while (n) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno != EINTR)
            return fail_errno(f, "write", f->tmp ? f->tmp : f->label, errno);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            f->off += (uint64_t)w;
        }
        /* A signal ends a blocked write early (EINTR, or a short count on a
         * pipe): give up if the render was cancelled, else carry on. */
        if (n && cancel && atomic_load(cancel))
            return sf_fail(&f->base.out->err, SF_ERR_CANCELLED, "write to %s interrupted",
                           f->tmp ? f->tmp : f->label);
    }
    if (f->owned == 1 && f->off - f->queued >= WRITEBACK_STEP) {
        /* Advisory: an error here resurfaces at fsync, where it is checked. */
        (void)sync_file_range(f->fd, (off64_t)f->queued, (off64_t)(f->off - f->queued),
                              SYNC_FILE_RANGE_WRITE);
        f->queued = f->off;
    }
    return SF_OK;
}

static sf_status fs_finish(sf_sink *k)
{
    file_sink *f = (file_sink *)k;
    if (!f->owned)
        return SF_OK;
    if (f->owned == 2) { /* a device or FIFO: close, and say if that failed */
        int fd = f->fd;
        f->fd = -1;
        return close(fd) == 0 ? SF_OK : fail_errno(f, "close", f->label, errno);
    }
    if (fsync(f->fd) != 0)
        return fail_errno(f, "fsync", f->tmp, errno);
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0)
        return fail_errno(f, "close", f->tmp, errno);
    if (rename(f->tmp, f->path) != 0)
        return sf_fail(&f->base.out->err, SF_ERR_OUTPUT, "rename %s to %s: %s", f->tmp,
                       f->path, strerror(errno));
    sf_dealloc(k->out->cref.census, f->tmp);
    f->tmp = NULL;
    k->out->published = 1;
    /* The rename is durable only once the directory is synced. Some
     * filesystems cannot fsync a directory (EINVAL); the file is in place. */
    int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        int rc = fsync(dfd);
        int err = errno;
        close(dfd);
        if (rc != 0 && err != EINVAL && err != EROFS)
            return sf_fail(&f->base.out->err, SF_ERR_OUTPUT,
                           "fsync of directory %s failed (%s): the new name may not survive a "
                           "crash", f->dir, strerror(err));
    }
    return SF_OK;
}

static void fs_abort(sf_sink *k)
{
    file_sink *f = (file_sink *)k;
    if (f->owned && f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->tmp) {
        unlink(f->tmp);
        sf_dealloc(k->out->cref.census, f->tmp);
        f->tmp = NULL;
    }
}

static void fs_destroy(sf_sink *k)
{
    file_sink *f = (file_sink *)k;
    sf_census *cs = k->out->cref.census;
    fs_abort(k);
    sf_dealloc(cs, f->path);
    sf_dealloc(cs, f->dir);
    sf_dealloc(cs, f->label);
    sf_dealloc(cs, f);
}

static const sf_sink_vt file_vt = {
    .name = "file",
    .write = fs_write,
    .finish = fs_finish,
    .abort = fs_abort,
    .destroy = fs_destroy,
};

static uint64_t random_u64(void)
{
    uint64_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
}

/* Creates "<dir>/.<base>.sqlfeed-XXXXXXXX": hidden, named after the
 * destination so a stray one is easy to attribute. */
static sf_status create_temp(file_sink *f)
{
    sf_census *cs = f->base.out->cref.census;
    const char *slash = strrchr(f->path, '/');
    const char *base = slash ? slash + 1 : f->path;
    if (!*base)
        return sf_fail(&f->base.out->err, SF_ERR_OUTPUT,
                       "output path %s ends with '/'; give a file name", f->path);
    f->dir = slash ? sf_strndup(cs, SF_MEM_SINK, f->path, slash == f->path ? 1
                                                             : (size_t)(slash - f->path))
                   : sf_strdup(cs, SF_MEM_SINK, ".");
    if (!f->dir)
        return sf_fail(&f->base.out->err, SF_ERR_NOMEM, "out of memory opening %s", f->path);
    size_t n = strlen(f->dir) + strlen(base) + 40;
    f->tmp = sf_alloc(cs, SF_MEM_SINK, n);
    if (!f->tmp)
        return sf_fail(&f->base.out->err, SF_ERR_NOMEM, "out of memory opening %s", f->path);
    for (int tries = 0; tries < 100; tries++) {
        snprintf(f->tmp, n, "%s/.%s.sqlfeed-%08llx", f->dir, base,
                 (unsigned long long)(random_u64() & 0xffffffffu));
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0)
            return SF_OK;
        if (errno != EEXIST) {
            int err = errno;
            sf_dealloc(cs, f->tmp);
            f->tmp = NULL;
            return sf_fail(&f->base.out->err, SF_ERR_OUTPUT,
                           "cannot create a temporary file in %s for %s: %s", f->dir, f->path,
                           strerror(err));
        }
    }
    sf_dealloc(cs, f->tmp);
    f->tmp = NULL;
    return sf_fail(&f->base.out->err, SF_ERR_OUTPUT, "cannot create a temporary file in %s",
                   f->dir);
}

sf_status sf_sink_file_open(sf_output *out, sf_sink **kp, const char *path, int fd,
                            const char *label)
{
    sf_census *cs = out->cref.census;
    file_sink *f = sf_calloc(cs, SF_MEM_SINK, 1, sizeof *f);
    if (!f)
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory");
    f->base.vt = &file_vt;
    f->base.out = out;
    f->fd = fd;
    f->label = sf_strdup(cs, SF_MEM_SINK, label);
    if (!f->label) {
        fs_destroy(&f->base);
        return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory");
    }
    if (fd < 0) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            fs_destroy(&f->base);
            return sf_fail(&out->err, SF_ERR_OUTPUT, "output %s is a directory", path);
        }
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
            /* A device or a FIFO (/dev/null, a pipe to a consumer) is written
             * to, never replaced: renaming a file over /dev/null would break
             * the machine. Not atomic, as with a descriptor. */
            f->fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
            if (f->fd < 0) {
                int err = errno;
                fs_destroy(&f->base);
                return sf_fail(&out->err, SF_ERR_OUTPUT, "cannot open %s: %s", path, strerror(err));
            }
            f->owned = 2; /* ours to close, nothing to publish */
            *kp = &f->base;
            return SF_OK;
        }
        f->owned = 1;
        f->path = sf_strdup(cs, SF_MEM_SINK, path);
        sf_status s = f->path ? create_temp(f) : sf_fail(&out->err, SF_ERR_NOMEM, "out of memory");
        if (s != SF_OK) {
            fs_destroy(&f->base);
            return s;
        }
    }
    *kp = &f->base;
    return SF_OK;
}

const char *sf_sink_file_temp(const sf_sink *k)
{
    return k->vt == &file_vt ? ((const file_sink *)k)->tmp : NULL;
}
