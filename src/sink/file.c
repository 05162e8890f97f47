/* file.c: the sink at the end of every chain: a file published atomically, or a
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
#include <zlib.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "sink.h"

/* How long opening a FIFO waits for a process to read it, and how often it
 * looks. */
#define FIFO_WAIT_MS 10000
#define FIFO_POLL_MS 20

/* The temporary name adds this to the destination's: "." before it,
 * ".sqlfeed-XXXXXXXX" after it. */
#define TEMP_EXTRA 18

typedef struct file_sink {
    sf_stage base;
    int fd;
    int owned;       /* 1: our temporary file (atomic); 2: a device or FIFO we
                        opened; 0: the caller's descriptor */
    int dirfd;       /* the destination's directory (atomic mode), or -1 */
    char *path;      /* destination as given (atomic mode) */
    char *name;      /* destination's name in dirfd */
    char *tmpname;   /* temporary file's name in dirfd while it exists */
    char *tmp;       /* ... and its path, for messages */
    char *dir;       /* the directory as given, for messages */
    char *label;     /* name used in messages */
    uint64_t off;    /* bytes written */
    /* Durable as it goes (atomic mode, docs/sink.md): every sync_step bytes
     * the step just written starts its writeback and the one before is
     * waited for, so [0, synced) is on the device (in its cache until the
     * next flush), [synced, started) on its way. */
    uint64_t started;   /* writeback started up to here */
    uint64_t synced;    /* written back up to here */
    uint64_t sync_step; /* a step every this many bytes; 0: none (the final fsync only) */
    int sfr_off;        /* sync_file_range refused (EINVAL...): fdatasync each step */
    /* The flusher: a thread of this sink's that fdatasyncs after each step
     * (skipping a step while the last one runs), so the device's cache is
     * flushed during the render, not all at the final fsync, and the
     * writer never waits for it. Started at the first step. */
    pthread_t fl_thread;
    pthread_mutex_t fl_mu;
    pthread_cond_t fl_cv;
    int fl_state;  /* 0: none; 1: lock made; 2: thread running */
    int fl_want;   /* under fl_mu: a flush asked for */
    int fl_busy;   /* under fl_mu: a flush running */
    int fl_stop;   /* under fl_mu: the thread must end */
    int fl_errno;  /* under fl_mu: the first failed fdatasync's errno */
    uint64_t dropped;   /* bytes from 0 dropped from the page cache */
    int cache_keep;     /* 1: leave the written pages cached */
    int crc_on;         /* keep the CRC-32 of the bytes written (a shard's part) */
    uint32_t crc;
} file_sink;

static sf_status fail_errno(file_sink *f, const char *what, const char *name, int err)
{
    return sf_fail(&f->base.out->err, SF_ERR_OUTPUT, "%s %s: %s", what, name, strerror(err));
}

/* ---- the flusher ---------------------------------------------------------- */

static void *flusher_main(void *arg)
{
    file_sink *f = arg;
    pthread_mutex_lock(&f->fl_mu);
    for (;;) {
        while (!f->fl_want && !f->fl_stop)
            pthread_cond_wait(&f->fl_cv, &f->fl_mu);
        if (f->fl_stop)
            break;
        f->fl_want = 0;
        f->fl_busy = 1;
        pthread_mutex_unlock(&f->fl_mu);
        int e = fdatasync(f->fd) == 0 ? 0 : errno;
        pthread_mutex_lock(&f->fl_mu);
        f->fl_busy = 0;
        if (e && !f->fl_errno)
            f->fl_errno = e;
    }
    pthread_mutex_unlock(&f->fl_mu);
    return NULL;
}

/* The flusher's first failure, as the sink's (0: none). */
static int flusher_errno(file_sink *f)
{
    if (f->fl_state < 1)
        return 0;
    pthread_mutex_lock(&f->fl_mu);
    int e = f->fl_errno;
    pthread_mutex_unlock(&f->fl_mu);
    return e;
}

/* Asks for a flush: the thread is started at the first one. While a flush
 * runs, the ask is dropped: the bytes since that flush began wait for the
 * next step's, or for the final fsync. 0, or the errno of a flush that
 * failed (then, or before). */
static int flusher_kick(file_sink *f)
{
    if (f->fl_state == 0) {
        if (pthread_mutex_init(&f->fl_mu, NULL) != 0)
            return fdatasync(f->fd) == 0 ? 0 : errno;
        if (pthread_cond_init(&f->fl_cv, NULL) != 0) {
            pthread_mutex_destroy(&f->fl_mu);
            return fdatasync(f->fd) == 0 ? 0 : errno;
        }
        f->fl_state = 1;
        if (sf_thread_start(&f->fl_thread, flusher_main, f) == 0)
            f->fl_state = 2;
    }
    if (f->fl_state == 1) /* no thread could be made: flush here */
        return fdatasync(f->fd) == 0 ? 0 : errno;
    pthread_mutex_lock(&f->fl_mu);
    int e = f->fl_errno;
    if (!e && !f->fl_busy) {
        f->fl_want = 1;
        pthread_cond_signal(&f->fl_cv);
    }
    pthread_mutex_unlock(&f->fl_mu);
    return e;
}

/* Ends the thread (after the flush it is running, if any); the descriptor
 * must stay open until then. */
static void flusher_stop(file_sink *f)
{
    if (f->fl_state == 2) {
        pthread_mutex_lock(&f->fl_mu);
        f->fl_stop = 1;
        pthread_cond_signal(&f->fl_cv);
        pthread_mutex_unlock(&f->fl_mu);
        pthread_join(f->fl_thread, NULL);
        f->fl_state = 1;
    }
}

static void flusher_free(file_sink *f)
{
    flusher_stop(f);
    if (f->fl_state == 1) {
        pthread_cond_destroy(&f->fl_cv);
        pthread_mutex_destroy(&f->fl_mu);
        f->fl_state = 0;
    }
}

/* A durable file's pages, once written back, are clean: drop them from the
 * page cache (up to `upto`). A feed of hundreds of MB then holds a few steps
 * of cache, not its whole size: it does not push the database's pages (or
 * anything else) out, and the pages freed are the ones the next steps
 * reuse. On this project's VMs a page never used before costs the host a
 * fault: 2.5 GB of fresh page cache took 6 s of system time, of reused
 * pages 1.3 s (docs/sink.md). Advice only: its failure changes nothing. */
static void drop_cached(file_sink *f, uint64_t upto, int last)
{
    /* During the run only whole pages: the kernel drops the partial page a
     * step ends in (the next write would read it back from the disk) and
     * rounds the next range's start up past it (never dropped). The last
     * call, after the final fsync, goes to the end. */
    if (!last)
        upto -= upto % 4096;
    if (f->cache_keep || upto <= f->dropped)
        return;
    (void)posix_fadvise(f->fd, (off_t)f->dropped, (off_t)(upto - f->dropped),
                        POSIX_FADV_DONTNEED);
    f->dropped = upto;
}

/* One step of a durable file (on the thread running the sink: the writer
 * thread once the hop is in the chain). The previous step's writeback,
 * started a step ago, is waited for (it is done by now, as a rule) and its
 * pages leave the cache; this step's is started; the flusher is asked to
 * fdatasync, which flushes the device's cache (not with writer=inline).
 * Nothing here waits for the bytes just written: an fdatasync on this
 * thread did (the render stalled for each step's whole write, 15-40 ms per
 * 32 MiB, docs/bench.md). */
static sf_status sync_step(file_sink *f)
{
    const char *name = f->tmp;
    if (f->sfr_off) {
        if (fdatasync(f->fd) != 0)
            return fail_errno(f, "fdatasync", name, errno);
        f->started = f->synced = f->off;
        drop_cached(f, f->synced, 0);
        return SF_OK;
    }
    if (f->started > f->synced) {
        if (sync_file_range(f->fd, (off_t)f->synced, (off_t)(f->started - f->synced),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER) != 0)
            return fail_errno(f, "write-back of", name, errno);
        f->synced = f->started;
        drop_cached(f, f->synced, 0);
    }
    if (sync_file_range(f->fd, (off_t)f->started, (off_t)(f->off - f->started),
                        SYNC_FILE_RANGE_WRITE) != 0) {
        if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != ESPIPE)
            return fail_errno(f, "write-back of", name, errno);
        f->sfr_off = 1; /* a file system without it: fdatasync from now on */
        return sync_step(f);
    }
    f->started = f->off;
    /* writer=inline asks for one thread: no flusher then, and the device's
     * cache is flushed by the final fsync alone. */
    if (f->base.out->opt.writer == SF_WRITER_INLINE)
        return SF_OK;
    int e = flusher_kick(f);
    return e ? fail_errno(f, "fdatasync", name, e) : SF_OK;
}

static sf_status fs_write(sf_stage *k, const void *buf, size_t n)
{
    file_sink *f = (file_sink *)k;
    const char *p = buf;
    if (f->crc_on)
        f->crc = (uint32_t)crc32_z(f->crc, buf, n);
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
        if (n && sf_output_is_cancelled(k->out))
            return sf_fail(&f->base.out->err, SF_ERR_CANCELLED, "write to %s interrupted",
                           f->tmp ? f->tmp : f->label);
    }
    /* A durable file is made durable as it is written: the final fsync
     * then waits for the last step and a flush of the device's cache since
     * the flusher's last, not for the whole document. */
    if (f->owned == 1 && f->sync_step && f->off - f->started >= f->sync_step)
        return sync_step(f);
    return SF_OK;
}

/* End of stream: nothing is visible yet. A temporary file is fsync'ed and
 * closed (close checked); a device or FIFO closed; a caller's regular file
 * cut where the document ends. */
static sf_status fs_finish(sf_stage *k)
{
    file_sink *f = (file_sink *)k;
    if (!f->owned) {
        /* A regular file opened without O_TRUNC (1<>feed.xml) keeps the
         * old document's tail past what we wrote: cut it. Not with
         * O_APPEND, where other writers may own what follows. */
        struct stat st;
        int fl = fcntl(f->fd, F_GETFL);
        if (fl < 0 || (fl & O_APPEND) || fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode))
            return SF_OK;
        off_t at = lseek(f->fd, 0, SEEK_CUR);
        if (at >= 0 && at < st.st_size && ftruncate(f->fd, at) != 0)
            return fail_errno(f, "truncate", f->label, errno);
        return SF_OK;
    }
    if (f->fd < 0)
        return SF_OK; /* finished already */
    if (f->owned == 2) { /* a device or FIFO: close, and say if that failed */
        int fd = f->fd;
        f->fd = -1;
        return close(fd) == 0 ? SF_OK : fail_errno(f, "close", f->label, errno);
    }
    flusher_stop(f);
    int e = flusher_errno(f);
    if (e)
        return fail_errno(f, "fdatasync", f->tmp, e);
    if (fsync(f->fd) != 0)
        return fail_errno(f, "fsync", f->tmp, errno);
    drop_cached(f, f->off, 1);
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0)
        return fail_errno(f, "close", f->tmp, errno);
    return SF_OK;
}

/* Makes the finished temporary file visible: the rename. The directory's
 * fsync follows (sf_sink_file_sync_dir), once per directory for a set. */
static sf_status fs_publish(sf_stage *k)
{
    file_sink *f = (file_sink *)k;
    if (f->owned != 1)
        return SF_OK; /* written as it went: nothing to rename */
    if (!f->tmpname || f->fd >= 0)
        return sf_fail(&f->base.out->err, SF_ERR_STATE, "publish of %s before it was finished",
                       f->path);
    /* The last point where a signal may still stop the publication: past
     * it, the rename is done whatever arrives (docs/sink.md). */
    if (sf_output_is_cancelled(k->out))
        return sf_fail(&f->base.out->err, SF_ERR_CANCELLED,
                       "cancelled before publishing: %s left as it was", f->path);
    /* Both names relative to the directory opened at the start: the file
     * lands in the directory it was written in, whatever happened to the
     * path meanwhile, and a long path never meets PATH_MAX. */
    if (renameat(f->dirfd, f->tmpname, f->dirfd, f->name) != 0)
        return sf_fail(&f->base.out->err, SF_ERR_OUTPUT, "rename %s to %s: %s", f->tmp,
                       f->path, strerror(errno));
    sf_census *cs = k->out->cref.census;
    sf_dealloc(cs, f->tmpname);
    sf_dealloc(cs, f->tmp);
    f->tmpname = f->tmp = NULL;
    k->out->published = 1;
    return SF_OK;
}

sf_status sf_sink_file_sync_dir(sf_stage *k)
{
    file_sink *f = (file_sink *)k;
    if (k->vt->publish != fs_publish || f->owned != 1)
        return SF_OK;
    /* The rename is durable only once the directory is synced. Some
     * filesystems cannot fsync a directory (EINVAL); the file is in place. */
    if (fsync(f->dirfd) != 0 && errno != EINVAL && errno != EROFS)
        return sf_fail(&f->base.out->err, SF_ERR_OUTPUT,
                       "fsync of directory %s failed (%s): the new name may not survive a "
                       "crash", f->dir, strerror(errno));
    return SF_OK;
}

const char *sf_sink_file_path(const sf_stage *k)
{
    if (!k || k->vt->publish != fs_publish)
        return NULL;
    const file_sink *f = (const file_sink *)k;
    return f->path ? f->path : f->label;
}

static void fs_abort(sf_stage *k)
{
    file_sink *f = (file_sink *)k;
    flusher_stop(f); /* it uses the descriptor */
    if (f->owned && f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->tmpname) {
        unlinkat(f->dirfd, f->tmpname, 0);
        sf_dealloc(k->out->cref.census, f->tmpname);
        f->tmpname = NULL;
    }
    sf_dealloc(k->out->cref.census, f->tmp);
    f->tmp = NULL;
}

static void fs_destroy(sf_stage *k)
{
    file_sink *f = (file_sink *)k;
    sf_census *cs = k->out->cref.census;
    fs_abort(k);
    flusher_free(f);
    if (f->dirfd >= 0)
        close(f->dirfd);
    sf_dealloc(cs, f->path);
    sf_dealloc(cs, f->name);
    sf_dealloc(cs, f->dir);
    sf_dealloc(cs, f->label);
    sf_dealloc(cs, f);
}

static const sf_stage_vt file_vt = {
    .name = "file",
    .write = fs_write,
    .finish = fs_finish,
    .publish = fs_publish,
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

static sf_status nomem(sf_output *out, const char *what)
{
    return sf_fail(&out->err, SF_ERR_NOMEM, "out of memory: %s", what);
}

/* ---- what a path names --------------------------------------------------- */

/* "N" in full as a descriptor number, else -1. */
static int parse_fd(const char *s)
{
    if (*s < '0' || *s > '9')
        return -1;
    long v = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((v = v * 10 + (*s - '0')) > INT_MAX)
            return -1;
    return *s ? -1 : (int)v;
}

/* The descriptor a path names by its spelling alone: /dev/stdin, /dev/stdout,
 * /dev/stderr, /dev/fd/N, /proc/self/fd/N, /proc/thread-self/fd/N and
 * /proc/PID/fd/N with this process's PID; else -1. */
static int fd_by_name(const char *p)
{
    if (!strcmp(p, "/dev/stdin"))
        return 0;
    if (!strcmp(p, "/dev/stdout"))
        return 1;
    if (!strcmp(p, "/dev/stderr"))
        return 2;
    if (!strncmp(p, "/dev/fd/", 8))
        return parse_fd(p + 8);
    if (strncmp(p, "/proc/", 6) != 0)
        return -1;
    p += 6;
    if (!strncmp(p, "self/fd/", 8))
        return parse_fd(p + 8);
    if (!strncmp(p, "thread-self/fd/", 15))
        return parse_fd(p + 15);
    char pid[24];
    snprintf(pid, sizeof pid, "%ld/fd/", (long)getpid());
    size_t n = strlen(pid);
    return strncmp(p, pid, n) == 0 ? parse_fd(p + n) : -1;
}

/* The descriptor `path` names, following it as the kernel would: its own
 * spelling, the spelling of its directory resolved (/dev/./fd/1, a link to
 * /proc/self/fd), and of each symlink it leads through (a link to
 * /dev/stdout). -1 when it names a file, not a descriptor. */
static int fd_named_by(const char *path)
{
    char cur[PATH_MAX], link[PATH_MAX], dir[PATH_MAX];
    if (strlen(path) >= sizeof cur)
        return -1;
    strcpy(cur, path);
    for (int hops = 0; hops < 40; hops++) {
        int fd = fd_by_name(cur);
        if (fd >= 0)
            return fd;
        /* The canonical directory + the name. */
        char *slash = strrchr(cur, '/');
        const char *base = slash ? slash + 1 : cur;
        if (slash)
            snprintf(dir, sizeof dir, "%.*s", slash == cur ? 1 : (int)(slash - cur), cur);
        else
            strcpy(dir, ".");
        char canon[PATH_MAX];
        if (realpath(dir, canon)) {
            char joined[PATH_MAX];
            if (snprintf(joined, sizeof joined, "%s/%s", strcmp(canon, "/") ? canon : "", base) <
                    (int)sizeof joined &&
                (fd = fd_by_name(joined)) >= 0)
                return fd;
        }
        /* One symlink further. */
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n <= 0)
            return -1;
        link[n] = '\0';
        if (link[0] == '/' || !slash)
            strcpy(cur, link);
        else if (snprintf(dir, sizeof dir, "%.*s/%s", (int)(slash - cur), cur, link) <
                 (int)sizeof dir)
            strcpy(cur, dir);
        else
            return -1;
    }
    return -1;
}

int sf_output_names_descriptor(const char *path)
{
    return path && fd_named_by(path) >= 0;
}

/* Whether a directory belongs to the kernel's file systems, where sqlfeed
 * never creates a file: /dev and everything under it (its links, devpts,
 * mqueue, shm: a file there is not what anyone reading a feed expects, and
 * a rename over /dev/stdout would replace it for every process), /proc,
 * /sys, and the pseudo file systems mounted elsewhere. By real path (the
 * directory's symlinks resolved), by file system type, and, for a /dev
 * mounted on its own (devtmpfs, a container's tmpfs), by device. */
static int under(const char *real, const char *top)
{
    size_t n = strlen(top);
    return strncmp(real, top, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

int sf_sink_kernel_dir(const char *dir, int dirfd)
{
    static const long kernel_fs[] = {
        0x9fa0,     /* proc */
        0x62656572, /* sysfs */
        0x1cd1,     /* devpts */
        0x19800202, /* mqueue */
        0x64626720, /* debugfs */
        0x74726163, /* tracefs */
        0x73636673, /* securityfs */
        0x27e0eb,   /* cgroup */
        0x63677270, /* cgroup2 */
        0xcafe4a11, /* bpf */
        0x6165676c, /* pstore */
        0x62656570, /* configfs */
        0xde5e81e4, /* efivarfs */
        0x65735543, /* fusectl */
        0x42494e4d, /* binfmt_misc */
    };
    struct statfs fs;
    if (fstatfs(dirfd, &fs) == 0)
        for (size_t i = 0; i < sizeof kernel_fs / sizeof kernel_fs[0]; i++)
            if ((long)fs.f_type == kernel_fs[i])
                return 1;
    char real[PATH_MAX];
    if (dir && realpath(dir, real) &&
        (under(real, "/dev") || under(real, "/proc") || under(real, "/sys")))
        return 1;
    struct stat d, dev, root;
    if (fstat(dirfd, &d) != 0 || stat("/dev", &dev) != 0 || stat("/", &root) != 0)
        return 0;
    if (d.st_dev == dev.st_dev && d.st_ino == dev.st_ino)
        return 1; /* /dev itself, reached by another path (a bind mount) */
    return d.st_dev == dev.st_dev && dev.st_dev != root.st_dev;
}

/* Opens a FIFO for writing: without a reader, open() would wait forever.
 * Non-blocking attempts every FIFO_POLL_MS until one succeeds or FIFO_WAIT_MS
 * pass; sf_output_cancel() (a signal handler) ends the wait at the next
 * attempt, and a signal caught during the sleep (EINTR) at once. */
static int open_fifo(const sf_output *out, const char *path, int *err)
{
    for (int waited = 0;; waited += FIFO_POLL_MS) {
        if (sf_output_is_cancelled(out)) {
            *err = EINTR;
            return -1;
        }
        int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0)
                fcntl(fd, F_SETFL, fl & ~O_NONBLOCK); /* writes wait for the reader */
            return fd;
        }
        if (errno != ENXIO || waited >= FIFO_WAIT_MS) {
            *err = errno == ENXIO ? ETIMEDOUT : errno;
            return -1;
        }
        struct timespec ts = {0, FIFO_POLL_MS * 1000000L};
        if (nanosleep(&ts, NULL) != 0 && errno == EINTR) {
            *err = EINTR;
            return -1;
        }
    }
}

/* Creates "<dir>/.<name>.sqlfeed-XXXXXXXX": hidden, named after the
 * destination so a stray one is easy to attribute; the name is cut (at a
 * character boundary) so the temporary name fits the file system's
 * NAME_MAX whenever the destination's does. */
static sf_status create_temp(file_sink *f)
{
    sf_output *out = f->base.out;
    sf_census *cs = out->cref.census;
    long name_max = fpathconf(f->dirfd, _PC_NAME_MAX);
    if (name_max <= TEMP_EXTRA)
        name_max = 255;
    size_t keep = strlen(f->name);
    if (keep > (size_t)name_max - TEMP_EXTRA) {
        keep = (size_t)name_max - TEMP_EXTRA;
        while (keep > 0 && ((unsigned char)f->name[keep] & 0xc0) == 0x80)
            keep--; /* not inside a UTF-8 sequence */
    }
    size_t n = keep + TEMP_EXTRA + 1;
    size_t pn = strlen(f->dir) + 1 + n;
    f->tmpname = sf_alloc(cs, SF_MEM_SINK, n);
    f->tmp = sf_alloc(cs, SF_MEM_SINK, pn);
    if (!f->tmpname || !f->tmp) {
        sf_dealloc(cs, f->tmpname);
        sf_dealloc(cs, f->tmp);
        f->tmpname = f->tmp = NULL;
        return nomem(out, "temporary file name");
    }
    int err = EEXIST;
    for (int tries = 0; tries < 100 && err == EEXIST; tries++) {
        snprintf(f->tmpname, n, ".%.*s.sqlfeed-%08llx", (int)keep, f->name,
                 (unsigned long long)(random_u64() & 0xffffffffu));
        snprintf(f->tmp, pn, "%s/%s", f->dir, f->tmpname);
        f->fd = openat(f->dirfd, f->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                       0666);
        if (f->fd >= 0)
            return SF_OK;
        err = errno;
    }
    sf_dealloc(cs, f->tmpname);
    sf_dealloc(cs, f->tmp);
    f->tmpname = f->tmp = NULL;
    return sf_fail(&out->err, SF_ERR_OUTPUT, "cannot create a temporary file in %s for %s: %s",
                   f->dir, f->path, strerror(err));
}

/* -o PATH: what to do depends on what PATH names.
 *   a descriptor (/dev/stdout, /dev/fd/N, /proc/self/fd/N, or a link to one):
 *     written as a descriptor the caller owns, never opened by name or replaced;
 *   an existing directory: an error;
 *   an existing device, FIFO or socket (also through a symlink): opened and
 *     written, never replaced (a FIFO waits at most FIFO_WAIT_MS for a reader);
 *   anything else (nothing, a regular file, a symlink to one or to nothing):
 *     published atomically at PATH; a symlink there is replaced, its target
 *     left as it was. Never in /dev, /proc or /sys. */
static sf_status open_path(file_sink *f, const char *path)
{
    sf_output *out = f->base.out;
    sf_census *cs = out->cref.census;
    int fd = fd_named_by(path);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
            return sf_fail(&out->err, SF_ERR_OUTPUT,
                           "%s names descriptor %d, which is not open", path, fd);
        if ((fl & O_ACCMODE) == O_RDONLY)
            return sf_fail(&out->err, SF_ERR_OUTPUT,
                           "%s names descriptor %d, which is not open for writing", path, fd);
        f->fd = fd;
        f->owned = 0; /* the caller's: written, not closed, not replaced */
        return SF_OK;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return sf_fail(&out->err, SF_ERR_OUTPUT, "output %s is a directory", path);
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* A device or a FIFO (/dev/null, a pipe to a consumer) is written
         * to, never replaced: renaming a file over /dev/null would break
         * the machine. Not atomic, as with a descriptor. */
        int err = 0;
        f->fd = S_ISFIFO(st.st_mode) ? open_fifo(out, path, &err)
                                     : open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (f->fd < 0) {
            if (!err)
                err = errno;
            if (err == ETIMEDOUT)
                return sf_fail(&out->err, SF_ERR_OUTPUT,
                               "no process opened the FIFO %s for reading within %d s", path,
                               FIFO_WAIT_MS / 1000);
            return sf_fail(&out->err, SF_ERR_OUTPUT, "cannot open %s: %s", path, strerror(err));
        }
        f->owned = 2; /* ours to close, nothing to publish */
        return SF_OK;
    }
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
        return sf_fail(&out->err, SF_ERR_OUTPUT, "output path %s does not end with a file name",
                       path);
    f->path = sf_strdup(cs, SF_MEM_SINK, path);
    f->name = sf_strdup(cs, SF_MEM_SINK, base);
    f->dir = slash ? sf_strndup(cs, SF_MEM_SINK, path, slash == path ? 1 : (size_t)(slash - path))
                   : sf_strdup(cs, SF_MEM_SINK, ".");
    if (!f->path || !f->name || !f->dir)
        return nomem(out, "output path");
    f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dirfd < 0)
        return sf_fail(&out->err, SF_ERR_OUTPUT, "cannot create a temporary file in %s for %s: %s",
                       f->dir, path, strerror(errno));
    if (sf_sink_kernel_dir(f->dir, f->dirfd))
        return sf_fail(&out->err, SF_ERR_OUTPUT,
                       "will not create a file in %s (/dev and below, /proc, /sys: kernel file "
                       "systems) for %s; -o - or /dev/stdout writes to standard output",
                       f->dir, path);
    /* A name the file system cannot hold is refused now, not by the rename
     * after the whole render. */
    long name_max = fpathconf(f->dirfd, _PC_NAME_MAX);
    if (name_max > 0 && strlen(f->name) > (size_t)name_max)
        return sf_fail(&out->err, SF_ERR_OUTPUT,
                       "output name %s is %zu bytes, more than the %ld the file system of %s "
                       "allows: %s",
                       path, strlen(f->name), name_max, f->dir, strerror(ENAMETOOLONG));
    f->owned = 1;
    sf_status cs_st = create_temp(f);
    if (cs_st == SF_OK)
        out->atomic = 1;
    return cs_st;
}

sf_status sf_sink_file_open(sf_output *out, sf_stage **kp, const char *path, int fd,
                            const char *label, uint64_t sync_step, int cache_keep)
{
    sf_census *cs = out->cref.census;
    file_sink *f = sf_calloc(cs, SF_MEM_SINK, 1, sizeof *f);
    if (!f)
        return nomem(out, "file sink");
    f->base.vt = &file_vt;
    f->base.out = out;
    f->fd = fd;
    f->dirfd = -1;
    f->sync_step = sync_step;
    f->cache_keep = cache_keep;
    f->label = sf_strdup(cs, SF_MEM_SINK, label);
    sf_status s = !f->label ? nomem(out, "output name") : fd < 0 ? open_path(f, path) : SF_OK;
    if (s != SF_OK) {
        fs_destroy(&f->base);
        return s;
    }
    *kp = &f->base;
    return SF_OK;
}

const char *sf_sink_file_temp(const sf_stage *k)
{
    return k->vt == &file_vt ? ((const file_sink *)k)->tmp : NULL;
}

void sf_sink_file_crc_on(sf_stage *k)
{
    if (k && k->vt->name && !strcmp(k->vt->name, "file")) {
        ((file_sink *)k)->crc_on = 1;
        ((file_sink *)k)->crc = (uint32_t)crc32_z(0, NULL, 0);
    }
}

uint32_t sf_sink_file_crc(const sf_stage *k)
{
    return k && k->vt->name && !strcmp(k->vt->name, "file") ? ((const file_sink *)k)->crc : 0;
}
