/* lock.c: one run at a time per output, and the leftovers of killed runs.
 *
 * The lock is flock(LOCK_EX|LOCK_NB) on `.NAME.sqlfeed.lock` beside the
 * output: the kernel drops it when the holder dies however it dies
 * (SIGKILL, OOM killer), so a stale lock never blocks the next run. The
 * holder writes its PID into the file for the message a refused run gives.
 * The file is removed when the lock is released (before the descriptor is
 * closed); a run that opened it just before that finds, once it holds the
 * lock, that the name no longer leads to the file it locked, and starts
 * over on a new file, so two runs never both believe they hold it.
 *
 * Holding the lock, a run removes the temporary files a killed run left:
 * no other sqlfeed run writes this output, so every `.NAME.sqlfeed-XXXXXXXX`
 * in the directory is a leftover. For a split output, a temporary file of a
 * name M its pattern makes is M's too: a single-document run on M (which
 * holds M's lock, not the set's) may be writing it, so it is removed only
 * while this run also holds M's lock, taken without waiting (held: the file
 * is live and kept). Nothing else is ever removed: the name must be exactly
 * that shape (8 lowercase hex digits) for this output's NAME (or a name the
 * pattern makes, cut as file.c cuts a long name), and the file a regular
 * file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "set.h"

/* The lock file's name for `name` in a directory of NAME_MAX name_max. NAME
 * is cut exactly as in the temporary files' names (SF_TEMP_EXTRA), so two
 * single-document outputs whose temporary files could be mistaken for each
 * other's share one lock. (A set's lock is its pattern's: before it removes
 * a temporary file of another name M the pattern makes, it takes M's lock
 * too, see try_lock_other.) */
static char *lock_name(sf_census *cs, const char *name, long name_max)
{
    size_t keep = sf_side_keep(name, SF_TEMP_EXTRA, name_max);
    size_t n = 1 + keep + sizeof SF_LOCK_SUFFIX;
    char *s = sf_alloc(cs, SF_MEM_SINK, n);
    if (s)
        snprintf(s, n, ".%.*s%s", (int)keep, name, SF_LOCK_SUFFIX);
    return s;
}

/* The PID the holder wrote, or 0. */
static long holder_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

sf_status sf_lock_take(sf_lock *l, sf_census *cs, sf_errbuf *e, const char *dir,
                       const char *name, const char *path)
{
    l->fd = -1;
    l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    l->name = l->path = NULL;
    if (l->dirfd < 0)
        return sf_fail(e, SF_ERR_OUTPUT, "cannot open directory %s for %s: %s", dir, path,
                       strerror(errno));
    l->name = lock_name(cs, name, sf_dir_name_max(l->dirfd));
    size_t pn = strlen(dir) + 1 + (l->name ? strlen(l->name) : 0) + 1;
    l->path = l->name ? sf_alloc(cs, SF_MEM_SINK, pn) : NULL;
    if (l->path)
        snprintf(l->path, pn, "%s/%s", dir, l->name);
    if (!l->name || !l->path) {
        sf_lock_release(l, cs);
        return sf_fail(e, SF_ERR_NOMEM, "out of memory: lock file name");
    }
    for (int tries = 0; tries < 100; tries++) {
        int fd = openat(l->dirfd, l->name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd < 0 && errno == EACCES) /* another user's lock file: flock needs no write */
            fd = openat(l->dirfd, l->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            int err = errno;
            sf_status st = sf_fail(e, SF_ERR_OUTPUT, "cannot create the lock file %s/%s for %s: %s",
                                   dir, l->name, path, strerror(err));
            sf_lock_release(l, cs);
            return st;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            long pid = holder_pid(fd);
            close(fd);
            sf_status st;
            if (err != EWOULDBLOCK)
                st = sf_fail(e, SF_ERR_OUTPUT, "cannot lock %s/%s for %s: %s", dir, l->name,
                             path, strerror(err));
            else if (pid == (long)getpid())
                st = sf_fail(e, SF_ERR_BUSY, "%s is written twice by this run (two outputs "
                             "with one name)", path);
            else if (pid > 0)
                st = sf_fail(e, SF_ERR_BUSY, "another sqlfeed run (PID %ld) is writing %s", pid,
                             path);
            else
                st = sf_fail(e, SF_ERR_BUSY, "another sqlfeed run is writing %s", path);
            sf_lock_release(l, cs);
            return st;
        }
        /* Still the file the name leads to? (The previous holder removes it
         * before it lets go.) */
        struct stat a, b;
        if (fstat(fd, &a) != 0 ||
            fstatat(l->dirfd, l->name, &b, AT_SYMLINK_NOFOLLOW) != 0 || a.st_dev != b.st_dev ||
            a.st_ino != b.st_ino) {
            close(fd);
            continue;
        }
        char pid[24];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        /* The PID is for messages only: a failure to record it is no error. */
        if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n)
            (void)ftruncate(fd, 0);
        l->fd = fd;
        return SF_OK;
    }
    sf_lock_release(l, cs);
    return sf_fail(e, SF_ERR_BUSY, "another sqlfeed run keeps replacing the lock of %s", path);
}

void sf_lock_release(sf_lock *l, sf_census *cs)
{
    if (l->fd >= 0) {
        /* Removed while still held: see the top of this file. */
        unlinkat(l->dirfd, l->name, 0);
        close(l->fd);
        l->fd = -1;
    }
    if (l->dirfd >= 0) {
        close(l->dirfd);
        l->dirfd = -1;
    }
    sf_dealloc(cs, l->name);
    sf_dealloc(cs, l->path);
    l->name = l->path = NULL;
}

/* Whether `d` (n bytes) is "." + M + ".sqlfeed-" + 8 lowercase hex; then
 * *m and *mlen are M. */
static int temp_shape(const char *d, size_t n, const char **m, size_t *mlen)
{
    static const char mid[] = ".sqlfeed-";
    size_t ml = sizeof mid - 1;
    if (n < 1 + ml + 8 + 1 || d[0] != '.' || !sf_is_tag8(d + n - 8, 8) ||
        memcmp(d + n - 8 - ml, mid, ml) != 0)
        return 0;
    *m = d + 1;
    *mlen = n - 1 - ml - 8;
    return 1;
}

/* Takes the lock of output M (ml bytes, already cut as temporary names cut
 * it) in dirfd without waiting, as sf_lock_take does: the descriptor, with
 * the lock file's name in lname; -1 when another process holds it or it
 * cannot be taken (then the caller keeps M's file). */
static int try_lock_other(int dirfd, const char *m, size_t ml, char *lname, size_t cap)
{
    if ((size_t)snprintf(lname, cap, ".%.*s%s", (int)ml, m, SF_LOCK_SUFFIX) >= cap)
        return -1;
    for (int tries = 0; tries < 8; tries++) {
        int fd = openat(dirfd, lname, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd < 0)
            return -1;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            return -1;
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && fstatat(dirfd, lname, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return fd;
        close(fd); /* its holder removed it meanwhile: a new one */
    }
    return -1;
}

typedef struct leftovers {
    int dirfd;
    const char *name, *keep;
    const sf_pattern *pat;
    size_t nkeep, cut, removed;
} leftovers;

static int remove_if_leftover(const char *dn, void *ctx)
{
    leftovers *l = ctx;
    const char *m;
    size_t ml, n = strlen(dn);
    if (!temp_shape(dn, n, &m, &ml) || (l->keep && !strcmp(l->keep, dn)))
        return 0;
    int ours = l->name && ml == l->nkeep && !memcmp(m, l->name, l->nkeep);
    if (!ours && l->pat)
        ours = sf_pattern_match(l->pat, m, ml, 0, NULL, NULL) ||
               (ml <= l->cut && ml + 3 >= l->cut && sf_pattern_match(l->pat, m, ml, 1, NULL, NULL));
    struct stat st;
    if (!ours || fstatat(l->dirfd, dn, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        return 0;
    /* Another name than this output's own: removed only under its lock. */
    int own = l->name && ml == l->nkeep && !memcmp(m, l->name, l->nkeep);
    char lname[1024];
    int fd = own ? -1 : try_lock_other(l->dirfd, m, ml, lname, sizeof lname);
    if (!own && fd < 0)
        return 0; /* a live run's, or unknowable: kept */
    if (unlinkat(l->dirfd, dn, 0) == 0)
        l->removed++;
    if (fd >= 0) { /* released as sf_lock_release does: removed while held */
        unlinkat(l->dirfd, lname, 0);
        close(fd);
    }
    return 0;
}

size_t sf_stale_temps_remove(int dirfd, const char *name, const sf_pattern *pat,
                             const char *keep)
{
    long name_max = sf_dir_name_max(dirfd);
    leftovers l = {dirfd, name, keep, pat, 0, 0, 0};
    l.nkeep = name ? sf_side_keep(name, SF_TEMP_EXTRA, name_max) : 0;
    /* A part's name is cut to at most this many bytes, and at least 3
     * fewer (a UTF-8 sequence is at most 4 bytes). */
    l.cut = name_max > SF_TEMP_EXTRA ? (size_t)name_max - SF_TEMP_EXTRA : 255 - SF_TEMP_EXTRA;
    sf_dir_each(dirfd, remove_if_leftover, &l);
    return l.removed;
}

/* ---- the side of an output ----------------------------------------------- */

void sf_side_free(sf_side *s, sf_census *cs)
{
    if (!s)
        return;
    sf_lock_release(&s->lock, cs);
    sf_state_clear(&s->prev, cs);
    sf_dealloc(cs, s->state_name);
    sf_dealloc(cs, s->state_tmp);
    sf_dealloc(cs, s->dir);
    sf_dealloc(cs, s->name);
    sf_dealloc(cs, s->path);
    sf_dealloc(cs, s);
}

sf_status sf_side_open(sf_side **sp, sf_census *cs, sf_errbuf *e, const char *path,
                       const sf_pattern *pat, const char *keep)
{
    *sp = NULL;
    sf_side *s = sf_calloc(cs, SF_MEM_SINK, 1, sizeof *s);
    if (!s)
        return sf_fail(e, SF_ERR_NOMEM, "out of memory: output lock");
    s->lock = (sf_lock)SF_LOCK_INIT;
    const char *slash = strrchr(path, '/');
    s->path = sf_strdup(cs, SF_MEM_SINK, path);
    s->name = sf_strdup(cs, SF_MEM_SINK, slash ? slash + 1 : path);
    s->dir = slash ? sf_strndup(cs, SF_MEM_SINK, path, slash == path ? 1 : (size_t)(slash - path))
                   : sf_strdup(cs, SF_MEM_SINK, ".");
    if (!s->path || !s->name || !s->dir) {
        sf_side_free(s, cs);
        return sf_fail(e, SF_ERR_NOMEM, "out of memory: output lock");
    }
    sf_status st = sf_lock_take(&s->lock, cs, e, s->dir, s->name, path);
    if (st == SF_OK &&
        sf_state_names(cs, s->name, sf_dir_name_max(s->lock.dirfd), &s->state_name,
                       &s->state_tmp, &s->state_tmpcap) != 0)
        st = sf_fail(e, SF_ERR_NOMEM, "out of memory: state record name");
    if (st != SF_OK) {
        sf_side_free(s, cs);
        return st;
    }
    sf_stale_temps_remove(s->lock.dirfd, s->name, pat, keep);
    /* Read now, under the lock: a failure to read it for memory is an
     * open that fails, never a --max-drop that passes for want of it. */
    s->have_prev = sf_state_read(s->lock.dirfd, s->state_name, s->name, cs, &s->prev);
    if (s->have_prev < 0) {
        sf_side_free(s, cs);
        return sf_fail(e, SF_ERR_NOMEM, "out of memory: state record of %s", path);
    }
    *sp = s;
    return SF_OK;
}

const sf_state *sf_side_previous(const sf_side *s) { return s->have_prev ? &s->prev : NULL; }

sf_status sf_side_record(sf_side *s, sf_errbuf *e, const sf_state *st, char *buf, size_t cap)
{
    sf_state rec = *st;
    rec.name = s->name;
    if (!rec.time)
        rec.time = (uint64_t)time(NULL);
    size_t len = sf_state_format(&rec, buf, cap);
    if (!len)
        return sf_fail(e, SF_ERR_OUTPUT, "%s published, but its state record is too long",
                       s->path);
    return sf_state_write(s->lock.dirfd, s->dir, s->name, s->state_name, s->state_tmp,
                          s->state_tmpcap, s->path, buf, len, e);
}
