/* inject.c: an LD_PRELOAD shim that makes output calls fail on demand, so
 * the tests can prove what a full disk or an I/O error does. It acts only on
 * descriptors whose file name contains ".sqlfeed-" (sqlfeed's temporary
 * files), so everything else the process writes is untouched.
 *   SQLFEED_INJECT_ENOSPC_AFTER=N   write() fails with ENOSPC once N bytes
 *                                   went to temporary files
 *   SQLFEED_INJECT_FSYNC_EIO=1      fsync() of a temporary file fails with EIO
 * Test-only; not part of the library. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int is_temp(int fd)
{
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    return strstr(path, ".sqlfeed-") != NULL;
}

static size_t written;

ssize_t write(int fd, const void *buf, size_t count)
{
    static ssize_t (*real_write)(int, const void *, size_t);
    if (!real_write)
        *(void **)&real_write = dlsym(RTLD_NEXT, "write");
    const char *after = getenv("SQLFEED_INJECT_ENOSPC_AFTER");
    if (after && is_temp(fd)) {
        size_t limit = (size_t)strtoull(after, NULL, 10);
        if (written >= limit) {
            errno = ENOSPC;
            return -1;
        }
        if (count > limit - written)
            count = limit - written; /* a short write first, as a full disk gives */
        ssize_t w = real_write(fd, buf, count);
        if (w > 0)
            written += (size_t)w;
        return w;
    }
    return real_write(fd, buf, count);
}

int fsync(int fd)
{
    static int (*real_fsync)(int);
    if (!real_fsync)
        *(void **)&real_fsync = dlsym(RTLD_NEXT, "fsync");
    if (getenv("SQLFEED_INJECT_FSYNC_EIO") && is_temp(fd)) {
        errno = EIO;
        return -1;
    }
    return real_fsync(fd);
}
