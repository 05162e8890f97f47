/* state.c: the state record of an output's last published run,
 * `.NAME.sqlfeed.state` beside it: one JSON object on one line,
 *   {"sqlfeed_state":1,"name":"feed.xml","rows":N,"bytes":N,"time":T,
 *    "tag":"1a2b3c4d","parts":["feed-1a2b3c4d-0001.xml.gz",...]}
 * name: the output's full file name (a long NAME is cut in the record's own
 * file name, so the record says whose it is); rows: rows rendered; bytes:
 * uncompressed bytes; time: seconds since the epoch; tag: the run tag of a
 * split output ("" when none); parts: the names of its parts (absent for a
 * single document).
 * It is replaced atomically after the output is published (temporary file,
 * fsync, rename, directory fsync), so a reader sees the previous record or
 * the new one. Reading is forgiving: a record that is missing, larger than
 * SF_STATE_MAX, not this shape, or for another name is "no previous run". */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "set.h"

#define SF_STATE_MAX ((size_t)16 << 20)
/* A record up to this size is read without an allocation (a single
 * document's always is; a set's with some 100 parts or fewer). */
#define SF_STATE_INLINE 4096
/* The longest name or key the parser keeps (a file name is at most 255
 * bytes; the record of a longer one is someone else's). */
#define SF_STATE_STR 1024

int sf_state_names(sf_census *cs, const char *name, long name_max, char **sname, char **tmp,
                   size_t *tmpcap)
{
    size_t keep = sf_side_keep(name, SF_TEMP_EXTRA, name_max);
    size_t n = 1 + keep + sizeof SF_STATE_SUFFIX;
    *tmpcap = 1 + keep + SF_TEMP_EXTRA;
    *sname = sf_alloc(cs, SF_MEM_SINK, n);
    *tmp = sf_alloc(cs, SF_MEM_SINK, *tmpcap);
    if (!*sname || !*tmp) {
        sf_dealloc(cs, *sname);
        sf_dealloc(cs, *tmp);
        *sname = *tmp = NULL;
        return -1;
    }
    snprintf(*sname, n, ".%.*s%s", (int)keep, name, SF_STATE_SUFFIX);
    return 0;
}

/* ---- parsing: in place, no allocation ------------------------------------ */

typedef struct cursor {
    const char *p, *end;
} cursor;

static void ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch)
{
    ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int hexval(char h)
{
    return h >= '0' && h <= '9' ? h - '0'
           : h >= 'a' && h <= 'f' ? h - 'a' + 10
           : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                  : -1;
}

/* A string, unescaped into buf (NUL-terminated, *len its length; NULL buf:
 * checked and skipped); 0 on anything unexpected or longer than cap - 1. */
static int string(cursor *c, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    if (!eat(c, '"'))
        return 0;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if ((unsigned char)ch < 0x20)
            return 0;
        if (ch == '\\') {
            if (c->p >= c->end)
                return 0;
            char e = *c->p++;
            switch (e) {
            case '"': case '\\': case '/': ch = e; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                /* We write \u only below 0x20; accept any ASCII but NUL. */
                if (c->end - c->p < 4 || c->p[0] != '0' || c->p[1] != '0')
                    return 0;
                int hi = hexval(c->p[2]), lo = hexval(c->p[3]);
                if (hi < 0 || lo < 0 || hi > 7 || (hi == 0 && lo == 0))
                    return 0;
                ch = (char)(hi * 16 + lo);
                c->p += 4;
                break;
            }
            default:
                return 0;
            }
        }
        if (buf) {
            if (n + 1 >= cap)
                return 0;
            buf[n] = ch;
        }
        n++;
    }
    if (!eat(c, '"'))
        return 0;
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = n;
    return 1;
}

static int number(cursor *c, uint64_t *v)
{
    ws(c);
    const char *s = c->p;
    uint64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
        c->p++;
    }
    if (c->p == s || (c->p - s > 1 && *s == '0'))
        return 0;
    *v = x;
    return 1;
}

/* The parts array: checked (non-empty strings without '/') and counted;
 * with buf, each decoded into it NUL-terminated (*at bytes used so far). */
static int names(cursor *c, size_t *count, char *buf, size_t cap, size_t *at)
{
    if (!eat(c, '['))
        return 0;
    *count = 0;
    if (eat(c, ']'))
        return 1;
    do {
        size_t n = 0;
        char *dst = buf ? buf + *at : NULL;
        if (!string(c, dst, buf ? cap - *at : 0, &n) || n == 0)
            return 0; /* an empty name is not ours */
        if (dst) {
            if (memchr(dst, '/', n))
                return 0; /* a part is a name in the directory, never a path */
            *at += n + 1;
        }
        (*count)++;
    } while (eat(c, ','));
    return eat(c, ']');
}

static int parse(const char *text, size_t n, const char *name, sf_state *st, char *buf,
                 size_t cap)
{
    size_t at = 0, names_at = 0, remove_at = 0;
    int have_remove = 0;
    memset(st, 0, sizeof *st);
    cursor c = {text, text + n};
    char key[64], val[SF_STATE_STR];
    int ok = eat(&c, '{'), version = 0, have_rows = 0, have_name = 0, have_parts = 0;
    if (ok && eat(&c, '}'))
        ok = 0; /* {} is not a record */
    while (ok) {
        ws(&c);
        if (!string(&c, key, sizeof key, NULL)) {
            /* A long key is a later version's: skipped. */
            key[0] = '\0';
            if (!string(&c, NULL, 0, NULL)) {
                ok = 0;
                break;
            }
        }
        if (!eat(&c, ':')) {
            ok = 0;
            break;
        }
        uint64_t v = 0;
        size_t len = 0;
        if (!strcmp(key, "sqlfeed_state")) {
            ok = number(&c, &v) && v == 1;
            version = 1;
        } else if (!strcmp(key, "rows")) {
            ok = number(&c, &st->rows);
            have_rows = 1;
        } else if (!strcmp(key, "bytes")) {
            ok = number(&c, &st->bytes);
        } else if (!strcmp(key, "time")) {
            ok = number(&c, &st->time);
        } else if (!strcmp(key, "tag")) {
            ok = string(&c, val, sizeof val, &len) && (len == 0 || sf_is_tag8(val, len));
            if (ok)
                memcpy(st->tag, val, len + 1);
        } else if (!strcmp(key, "owner")) {
            ok = number(&c, &st->owner);
        } else if (!strcmp(key, "name")) {
            ok = !have_name && string(&c, val, sizeof val, &len) && len > 0 &&
                 (!name || !strcmp(val, name));
            have_name = 1;
        } else if (!strcmp(key, "parts")) {
            names_at = at;
            ok = !have_parts && names(&c, &st->parts, buf, cap, &at);
            have_parts = 1;
        } else if (!strcmp(key, "remove")) {
            remove_at = at;
            ok = !have_remove && names(&c, &st->nremove, buf, cap, &at);
            have_remove = 1;
        } else { /* a later version's key: a number or a string, skipped */
            ws(&c);
            ok = c.p < c.end && *c.p == '"' ? string(&c, NULL, 0, NULL) : number(&c, &v);
        }
        if (!ok || !eat(&c, ','))
            break;
    }
    ok = ok && eat(&c, '}') && version && have_rows && have_name;
    ws(&c);
    ok = ok && c.p == c.end;
    if (!ok)
        memset(st, 0, sizeof *st);
    else if (buf) {
        st->names = st->parts ? buf + names_at : NULL;
        st->remove = st->nremove ? buf + remove_at : NULL;
    }
    return ok;
}

int sf_state_parse(const char *text, size_t n, const char *name, sf_state *st)
{
    return parse(text, n, name, st, NULL, 0);
}

void sf_state_clear(sf_state *st, sf_census *cs)
{
    sf_dealloc(cs, st->mem);
    memset(st, 0, sizeof *st);
}

int sf_state_read(int dirfd, const char *sname, const char *name, sf_census *cs, sf_state *st)
{
    memset(st, 0, sizeof *st);
    int fd = openat(dirfd, sname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct stat s;
    char inline_buf[SF_STATE_INLINE];
    char *text = inline_buf;
    size_t len = 0, size = 0;
    int ok = fstat(fd, &s) == 0 && S_ISREG(s.st_mode) && (size_t)s.st_size <= SF_STATE_MAX;
    if (ok) {
        size = (size_t)s.st_size;
        if (size > sizeof inline_buf && !(text = sf_alloc(cs, SF_MEM_SINK, size))) {
            close(fd);
            return -1;
        }
    }
    while (ok && len < size) {
        ssize_t r = read(fd, text + len, size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* shorter than it said: parse what is there */
        len += (size_t)r;
    }
    close(fd);
    ok = ok && sf_state_parse(text, len, name, st);
    /* The names, decoded (never longer than the text), for the removal of
     * the previous run's parts. */
    char *nb = NULL;
    if (ok && (st->parts || st->nremove) && !(nb = sf_alloc(cs, SF_MEM_SINK, len + 1)))
        ok = -1;
    if (nb)
        ok = parse(text, len, name, st, nb, len + 1);
    if (nb && ok)
        st->mem = nb;
    else
        sf_dealloc(cs, nb);
    if (text != inline_buf)
        sf_dealloc(cs, text);
    if (ok < 0)
        memset(st, 0, sizeof *st);
    return ok;
}

/* ---- writing: into buffers the caller holds, no allocation ---------------- */

size_t sf_state_format_size(const sf_state *st)
{
    /* Every byte of a name escaped as \u00XX at worst, plus quotes and
     * commas; the fixed text and six numbers fit in 256. */
    size_t n = 256 + 6 * (st->name ? strlen(st->name) : 0) + 3 * (st->parts + st->nremove);
    for (size_t i = 0, at = 0; i < st->parts; i++, at += strlen(st->names + at) + 1)
        n += 6 * strlen(st->names + at);
    for (size_t i = 0, at = 0; i < st->nremove; i++, at += strlen(st->remove + at) + 1)
        n += 6 * strlen(st->remove + at);
    return n;
}

typedef struct out {
    char *p;
    size_t len, cap;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->len + n < o->cap)
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_string(out *o, const char *s)
{
    put(o, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            put(o, esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            put(o, esc, 6);
        } else {
            put(o, s, 1);
        }
    }
    put(o, "\"", 1);
}

size_t sf_state_format(const sf_state *st, char *buf, size_t cap)
{
    out o = {buf, 0, cap};
    char num[160];
    int k = snprintf(num, sizeof num, ",\"rows\":%llu,\"bytes\":%llu,\"time\":%llu,\"tag\":",
                     (unsigned long long)st->rows, (unsigned long long)st->bytes,
                     (unsigned long long)st->time);
    static const char open[] = "{\"sqlfeed_state\":1,\"name\":";
    put(&o, open, sizeof open - 1);
    put_string(&o, st->name ? st->name : "");
    put(&o, num, (size_t)k);
    put_string(&o, st->tag);
    if (st->owner) {
        k = snprintf(num, sizeof num, ",\"owner\":%llu", (unsigned long long)st->owner);
        put(&o, num, (size_t)k);
    }
    if (st->parts) {
        put(&o, ",\"parts\":[", 10);
        const char *s = st->names;
        for (size_t i = 0; i < st->parts; i++, s += strlen(s) + 1) {
            if (i)
                put(&o, ",", 1);
            put_string(&o, s);
        }
        put(&o, "]", 1);
    }
    if (st->nremove) {
        put(&o, ",\"remove\":[", 11);
        const char *s = st->remove;
        for (size_t i = 0; i < st->nremove; i++, s += strlen(s) + 1) {
            if (i)
                put(&o, ",", 1);
            put_string(&o, s);
        }
        put(&o, "]", 1);
    }
    put(&o, "}\n", 2);
    if (o.len >= cap)
        return 0;
    buf[o.len] = '\0';
    return o.len;
}

static uint32_t random_u32(void)
{
    uint32_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16);
}

sf_status sf_state_write(int dirfd, const char *dir, const char *name, const char *sname,
                         char *tmp, size_t tmpcap, const char *path, const char *text, size_t len,
                         sf_errbuf *e)
{
    size_t keep = sf_side_keep(name, SF_TEMP_EXTRA, sf_dir_name_max(dirfd));
    if (keep + SF_TEMP_EXTRA + 1 > tmpcap)
        keep = tmpcap > SF_TEMP_EXTRA + 1 ? tmpcap - SF_TEMP_EXTRA - 1 : 0;
    int fd = -1, err = EEXIST;
    for (int tries = 0; tries < 100 && fd < 0 && err == EEXIST; tries++) {
        snprintf(tmp, tmpcap, ".%.*s.sqlfeed-%08x", (int)keep, name, random_u32());
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
        err = fd < 0 ? errno : 0;
    }
    const char *what = "create";
    size_t done = 0;
    if (fd >= 0) {
        while (done < len) {
            ssize_t w = write(fd, text + done, len - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                err = w < 0 ? errno : EIO;
                what = "write";
                break;
            }
            done += (size_t)w;
        }
        if (done == len && fsync(fd) != 0) {
            err = errno;
            what = "fsync";
            done = 0;
        }
        if (close(fd) != 0 && done == len) {
            err = errno;
            what = "close";
            done = 0;
        }
        if (done == len && renameat(dirfd, tmp, dirfd, sname) != 0) {
            err = errno;
            what = "rename";
            done = 0;
        }
        if (done != len)
            unlinkat(dirfd, tmp, 0);
    }
    if (fd < 0 || done != len)
        return sf_fail(e, SF_ERR_OUTPUT,
                       "%s published, but its state record %s/%s could not be written (%s: %s): "
                       "the next run's --max-drop compares with an older run",
                       path, dir, sname, what, strerror(err));
    if (fsync(dirfd) != 0 && errno != EINVAL && errno != EROFS)
        return sf_fail(e, SF_ERR_OUTPUT,
                       "%s published, but the fsync of directory %s after its state record "
                       "failed (%s)",
                       path, dir, strerror(errno));
    return SF_OK;
}
