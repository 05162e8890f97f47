/* inject.c: an LD_PRELOAD shim that makes output calls fail on demand, so
 * the tests can prove what a full disk, an I/O error or a failed rename does.
 * It acts only on sqlfeed's temporary files (a descriptor or path whose name
 * contains ".sqlfeed-") and, for the directory sync, on directories, so
 * everything else the process reads and writes is untouched.
 *   SQLFEED_INJECT_ENOSPC_AFTER=N   write() fails with ENOSPC once N bytes
 *                                   went to temporary files (a short write
 *                                   first, as a full disk gives)
 *   SQLFEED_INJECT_EIO_AFTER=N      the same with EIO (a failing disk)
 *   SQLFEED_INJECT_EFBIG_AFTER=N    the same with EFBIG (a file-size limit
 *                                   with SIGXFSZ ignored)
 *   SQLFEED_INJECT_CREATE_FAIL=1    creating a temporary file fails (EACCES)
 *   SQLFEED_INJECT_FSYNC_EIO=1      fsync()/fdatasync() of a temporary file
 *                                   fails with EIO
 *   SQLFEED_INJECT_WRITEBACK_EIO=1  sync_file_range() of a temporary file
 *                                   that waits (a durable render's step
 *                                   waiting for the previous step's
 *                                   writeback, from the second step, 64 MiB)
 *                                   fails with EIO, as a failing disk's
 *                                   writeback does
 *   SQLFEED_INJECT_CLOSE_EIO=1      close() of a temporary file fails with
 *                                   EIO (NFS reports late write errors there);
 *                                   the descriptor is closed all the same
 *   SQLFEED_INJECT_RENAME_FAIL=1    rename()/renameat()/renameat2() of a
 *                                   temporary file fails with EIO
 *   SQLFEED_INJECT_DIRSYNC_EIO=1    fsync() of a directory fails with EIO
 *   SQLFEED_INJECT_FSYNC_DELAY_MS=N fsync() of a temporary file (or, with
 *   SQLFEED_INJECT_FSYNC_DELAY_ON=dir, of a directory: after the rename)
 *                                   takes N ms more, as a slow disk's does;
 *                                   signals do not shorten it (fsync is not
 *                                   interruptible). SQLFEED_INJECT_FSYNC_MARK
 *                                   =PATH: that file is created when the
 *                                   delay begins, for a test to wait on.
 *   SQLFEED_INJECT_KILL_AT=OP:N     the process kills itself (SIGKILL: no
 *                                   handler, no cleanup, as a power cut or
 *                                   the OOM killer) right before its Nth OP
 *   SQLFEED_INJECT_KILL_AFTER=OP:N  ... right after its Nth OP succeeded
 *   SQLFEED_INJECT_FAIL_AT=OP:N     its Nth OP fails with EIO
 *     OP counts, over all threads:  fsync   fsync()/fdatasync() of a
 *                                           temporary file
 *                                   rename  rename*() of a temporary file
 *                                   dirsync fsync() of a directory
 *                                   unlink  unlink()/unlinkat() of a name
 *                                           holding no ".sqlfeed" (a
 *                                           published file: an old part)
 *                                   The steps of a publication, one by one
 *                                   (tests/set_test.sh).
 * Test-only; not part of the library. */
#include <dirent.h>
#include <signal.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* The real function `name`, looked up once. */
#define REAL(type, name, args)                                                 \
    static type(*real_##name) args;                                            \
    if (!real_##name)                                                          \
        *(void **)&real_##name = dlsym(RTLD_NEXT, #name)

static int is_temp_path(const char *path) { return path && strstr(path, ".sqlfeed-") != NULL; }

static int is_temp(int fd)
{
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    return is_temp_path(path);
}

static int is_dir(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

static int flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* Bytes written to temporary files so far, for the *_AFTER limits. */
static size_t written;

/* How many of `count` bytes may go to a temporary file before the first
 * armed write limit; sets *err to its errno. SIZE_MAX: no limit armed. */
static size_t allowance(size_t count, int *err)
{
    static const struct {
        const char *var;
        int err;
    } limits[] = {
        {"SQLFEED_INJECT_ENOSPC_AFTER", ENOSPC},
        {"SQLFEED_INJECT_EIO_AFTER", EIO},
        {"SQLFEED_INJECT_EFBIG_AFTER", EFBIG},
    };
    size_t allow = (size_t)-1;
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        const char *v = getenv(limits[i].var);
        if (!v || !*v)
            continue;
        size_t limit = (size_t)strtoull(v, NULL, 10);
        size_t left = written >= limit ? 0 : limit - written;
        if (left < allow) {
            allow = left;
            *err = limits[i].err;
        }
    }
    return allow == (size_t)-1 ? allow : (count < allow ? count : allow);
}

ssize_t write(int fd, const void *buf, size_t count)
{
    REAL(ssize_t, write, (int, const void *, size_t));
    int err = 0;
    size_t allow;
    if (count && (allow = allowance(count, &err)) != (size_t)-1 && is_temp(fd)) {
        if (allow == 0) {
            errno = err;
            return -1;
        }
        ssize_t w = real_write(fd, buf, allow);
        if (w > 0)
            written += (size_t)w;
        return w;
    }
    ssize_t w = real_write(fd, buf, count);
    if (w > 0 && allowance(1, &err) != (size_t)-1 && is_temp(fd))
        written += (size_t)w;
    return w;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    REAL(ssize_t, writev, (int, const struct iovec *, int));
    int err = 0;
    if (allowance(1, &err) != (size_t)-1 && is_temp(fd)) {
        /* One buffer at a time through write(), so the limits apply. */
        ssize_t total = 0;
        for (int i = 0; i < iovcnt; i++) {
            ssize_t w = write(fd, iov[i].iov_base, iov[i].iov_len);
            if (w < 0)
                return total ? total : -1;
            total += w;
            if ((size_t)w < iov[i].iov_len)
                break;
        }
        return total;
    }
    return real_writev(fd, iov, iovcnt);
}

/* ---- KILL_AT / KILL_AFTER / FAIL_AT ------------------------------------ */

enum { OP_FSYNC, OP_RENAME, OP_DIRSYNC, OP_UNLINK, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"fsync", "rename", "dirsync", "unlink"};
static unsigned long op_seen[OP_COUNT];

/* Whether variable `var` (OP:N) names `op` at call number `n`. */
static int step_is(const char *var, int op, unsigned long n)
{
    const char *v = getenv(var);
    size_t k = strlen(op_names[op]);
    return v && !strncmp(v, op_names[op], k) && v[k] == ':' && strtoul(v + k + 1, NULL, 10) == n;
}

/* Before an OP: counts it, dies or fails as asked. 0: go on; -1: fail with
 * EIO. Returns the call's number in *n for step_after(). */
static int step_before(int op, unsigned long *n)
{
    *n = __atomic_add_fetch(&op_seen[op], 1, __ATOMIC_SEQ_CST);
    if (step_is("SQLFEED_INJECT_KILL_AT", op, *n))
        raise(SIGKILL);
    if (step_is("SQLFEED_INJECT_FAIL_AT", op, *n)) {
        errno = EIO;
        return -1;
    }
    return 0;
}

static void step_after(int op, unsigned long n, int rc)
{
    if (rc == 0 && step_is("SQLFEED_INJECT_KILL_AFTER", op, n))
        raise(SIGKILL);
}

static int steps_armed(void)
{
    return getenv("SQLFEED_INJECT_KILL_AT") || getenv("SQLFEED_INJECT_KILL_AFTER") ||
           getenv("SQLFEED_INJECT_FAIL_AT");
}

/* Runs `call` as step `op` when `counted`. */
#define STEP(op, counted, call)                                                \
    do {                                                                       \
        unsigned long n_;                                                      \
        if (!(counted) || !steps_armed())                                      \
            return call;                                                       \
        if (step_before(op, &n_) != 0)                                         \
            return -1;                                                         \
        int rc_ = call;                                                        \
        int e_ = errno;                                                        \
        step_after(op, n_, rc_);                                               \
        errno = e_;                                                            \
        return rc_;                                                            \
    } while (0)

static int is_published_path(const char *path) { return path && !strstr(path, ".sqlfeed"); }

int unlink(const char *path)
{
    REAL(int, unlink, (const char *));
    STEP(OP_UNLINK, is_published_path(path), real_unlink(path));
}

int unlinkat(int dirfd, const char *path, int flags)
{
    REAL(int, unlinkat, (int, const char *, int));
    STEP(OP_UNLINK, is_published_path(path) && !(flags & AT_REMOVEDIR),
         real_unlinkat(dirfd, path, flags));
}

static int fail_sync(int fd)
{
    return (flag("SQLFEED_INJECT_FSYNC_EIO") && is_temp(fd)) ||
           (flag("SQLFEED_INJECT_DIRSYNC_EIO") && is_dir(fd));
}

static void delay_sync(int fd)
{
    const char *ms = getenv("SQLFEED_INJECT_FSYNC_DELAY_MS");
    const char *on = getenv("SQLFEED_INJECT_FSYNC_DELAY_ON");
    int want_dir = on && strcmp(on, "dir") == 0;
    if (!ms || !*ms || (want_dir ? !is_dir(fd) : !is_temp(fd)))
        return;
    const char *mark = getenv("SQLFEED_INJECT_FSYNC_MARK");
    if (mark && *mark) {
        int m = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (m >= 0)
            close(m);
    }
    long n = atol(ms);
    struct timespec left = {n / 1000, (n % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

/* fsync and fdatasync alike: the injected delay, then the injected EIO. */
static int sync_plain(int fd, int (*real)(int))
{
    delay_sync(fd);
    if (fail_sync(fd)) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}

static int sync_with(int fd, int (*real)(int))
{
    if (!steps_armed())
        return sync_plain(fd, real);
    int op = is_dir(fd) ? OP_DIRSYNC : OP_FSYNC;
    STEP(op, op == OP_DIRSYNC || is_temp(fd), sync_plain(fd, real));
}

int fsync(int fd)
{
    REAL(int, fsync, (int));
    return sync_with(fd, real_fsync);
}

int fdatasync(int fd)
{
    REAL(int, fdatasync, (int));
    return sync_with(fd, real_fdatasync);
}

int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    REAL(int, sync_file_range, (int, off_t, off_t, unsigned int));
    if (flag("SQLFEED_INJECT_WRITEBACK_EIO") && (flags & SYNC_FILE_RANGE_WAIT_AFTER) &&
        is_temp(fd)) {
        errno = EIO;
        return -1;
    }
    return real_sync_file_range(fd, off, n, flags);
}

int close(int fd)
{
    REAL(int, close, (int));
    if (flag("SQLFEED_INJECT_CLOSE_EIO") && is_temp(fd)) {
        real_close(fd);
        errno = EIO;
        return -1;
    }
    return real_close(fd);
}

int rename(const char *from, const char *to)
{
    REAL(int, rename, (const char *, const char *));
    if (flag("SQLFEED_INJECT_RENAME_FAIL") && is_temp_path(from)) {
        errno = EIO;
        return -1;
    }
    STEP(OP_RENAME, is_temp_path(from), real_rename(from, to));
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
    REAL(int, renameat, (int, const char *, int, const char *));
    if (flag("SQLFEED_INJECT_RENAME_FAIL") && is_temp_path(from)) {
        errno = EIO;
        return -1;
    }
    STEP(OP_RENAME, is_temp_path(from), real_renameat(fromfd, from, tofd, to));
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned int flags)
{
    REAL(int, renameat2, (int, const char *, int, const char *, unsigned int));
    if (flag("SQLFEED_INJECT_RENAME_FAIL") && is_temp_path(from)) {
        errno = EIO;
        return -1;
    }
    STEP(OP_RENAME, is_temp_path(from), real_renameat2(fromfd, from, tofd, to, flags));
}

static int fail_create(const char *path, int flags)
{
    return (flags & O_CREAT) && flag("SQLFEED_INJECT_CREATE_FAIL") && is_temp_path(path);
}

int open(const char *path, int flags, ...)
{
    REAL(int, open, (const char *, int, ...));
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (fail_create(path, flags)) {
        errno = EACCES;
        return -1;
    }
    return real_open(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    REAL(int, openat, (int, const char *, int, ...));
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (fail_create(path, flags)) {
        errno = EACCES;
        return -1;
    }
    return real_openat(dirfd, path, flags, mode);
}
