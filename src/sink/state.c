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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "set.h"

#define SF_STATE_MAX ((size_t)16 << 20)

void sf_state_free(sf_state *st, sf_census *cs)
{
    sf_dealloc(cs, st->names);
    sf_dealloc(cs, st->name);
    memset(st, 0, sizeof *st);
}

/* The record's file name for output `name`. */
static char *state_name(sf_census *cs, const char *name, long name_max)
{
    size_t keep = sf_side_keep(name, SF_TEMP_EXTRA, name_max);
    size_t n = 1 + keep + sizeof SF_STATE_SUFFIX;
    char *s = sf_alloc(cs, SF_MEM_SINK, n);
    if (s)
        snprintf(s, n, ".%.*s%s", (int)keep, name, SF_STATE_SUFFIX);
    return s;
}

/* ---- parsing ------------------------------------------------------------- */

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

/* A string into b (unescaped, NUL-terminated); 0 on anything unexpected. */
static int string(cursor *c, sf_buf *b)
{
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
        if (sf_buf_append(b, &ch, 1) != 0)
            return 0;
    }
    if (!eat(c, '"'))
        return 0;
    char z = '\0';
    if (sf_buf_append(b, &z, 1) != 0)
        return 0;
    b->len--; /* the NUL stays after the text, not in it */
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

/* The parts array: names appended to b, each with its NUL. */
static int names(cursor *c, sf_buf *b, size_t *count)
{
    if (!eat(c, '['))
        return 0;
    *count = 0;
    if (eat(c, ']'))
        return 1;
    do {
        size_t at = b->len;
        if (!string(c, b) || b->len == at)
            return 0; /* an empty name is not ours */
        b->len++;     /* keep the NUL */
        (*count)++;
    } while (eat(c, ','));
    return eat(c, ']');
}

int sf_state_parse(const char *text, size_t n, sf_census *cs, sf_state *st)
{
    memset(st, 0, sizeof *st);
    cursor c = {text, text + n};
    sf_buf key, val, parts;
    sf_buf_init(&key, cs, SF_MEM_SINK);
    sf_buf_init(&val, cs, SF_MEM_SINK);
    sf_buf_init(&parts, cs, SF_MEM_SINK);
    int ok = eat(&c, '{'), version = 0, have_rows = 0;
    if (ok && eat(&c, '}'))
        ok = 0; /* {} is not a record */
    while (ok) {
        key.len = 0;
        if (!string(&c, &key) || !eat(&c, ':')) {
            ok = 0;
            break;
        }
        const char *k = key.data;
        uint64_t v = 0;
        if (!strcmp(k, "sqlfeed_state")) {
            ok = number(&c, &v) && v == 1;
            version = 1;
        } else if (!strcmp(k, "rows")) {
            ok = number(&c, &st->rows);
            have_rows = 1;
        } else if (!strcmp(k, "bytes")) {
            ok = number(&c, &st->bytes);
        } else if (!strcmp(k, "time")) {
            ok = number(&c, &st->time);
        } else if (!strcmp(k, "tag")) {
            val.len = 0;
            ok = string(&c, &val) && (val.len == 0 || sf_is_tag8(val.data, val.len));
            if (ok)
                memcpy(st->tag, val.len ? val.data : "", val.len ? 9 : 1);
        } else if (!strcmp(k, "name")) {
            val.len = 0;
            ok = !st->name && string(&c, &val) && val.len > 0 &&
                 (st->name = sf_strdup(cs, SF_MEM_SINK, val.data)) != NULL;
        } else if (!strcmp(k, "parts")) {
            ok = parts.len == 0 && names(&c, &parts, &st->parts);
        } else { /* a later version's key: a number or a string, skipped */
            ws(&c);
            val.len = 0;
            ok = c.p < c.end && *c.p == '"' ? string(&c, &val) : number(&c, &v);
        }
        if (!ok || !eat(&c, ','))
            break;
    }
    ok = ok && eat(&c, '}') && version && have_rows && st->name;
    ws(&c);
    ok = ok && c.p == c.end;
    sf_buf_free(&key);
    sf_buf_free(&val);
    if (ok && parts.len) {
        st->names = parts.data; /* handed over */
        st->names_len = parts.len;
    } else {
        sf_buf_free(&parts);
    }
    if (!ok)
        sf_state_free(st, cs);
    return ok;
}

int sf_state_read(int dirfd, const char *name, sf_census *cs, sf_state *st)
{
    memset(st, 0, sizeof *st);
    char *sn = state_name(cs, name, sf_dir_name_max(dirfd));
    if (!sn)
        return 0;
    int fd = openat(dirfd, sn, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    sf_dealloc(cs, sn);
    if (fd < 0)
        return 0;
    struct stat s;
    char *text = NULL;
    size_t len = 0;
    int ok = fstat(fd, &s) == 0 && S_ISREG(s.st_mode) && (size_t)s.st_size <= SF_STATE_MAX &&
             (text = sf_alloc(cs, SF_MEM_SINK, (size_t)s.st_size + 1)) != NULL;
    while (ok && len < (size_t)s.st_size) {
        ssize_t r = read(fd, text + len, (size_t)s.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* shorter than it said: parse what is there */
        len += (size_t)r;
    }
    close(fd);
    ok = ok && sf_state_parse(text, len, cs, st);
    sf_dealloc(cs, text);
    if (ok && strcmp(st->name, name) != 0) {
        sf_state_free(st, cs); /* another output whose cut name is the same */
        ok = 0;
    }
    return ok;
}

/* ---- writing ------------------------------------------------------------- */

static int put(sf_buf *b, const char *s) { return sf_buf_append(b, s, strlen(s)); }

static int put_string(sf_buf *b, const char *s)
{
    int r = put(b, "\"");
    for (; *s && r == 0; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            r = sf_buf_append(b, esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            r = put(b, esc);
        } else {
            r = sf_buf_append(b, s, 1);
        }
    }
    return r == 0 ? put(b, "\"") : r;
}

int sf_state_format(const sf_state *st, sf_census *cs, char **out, size_t *len)
{
    sf_buf b;
    sf_buf_init(&b, cs, SF_MEM_SINK);
    /* One allocation: room for the worst case (every byte of a name
     * escaped as \u00XX), so the count does not depend on the figures. */
    size_t need = 256 + 6 * (st->name ? strlen(st->name) : 0) + 8 * st->parts;
    for (size_t i = 0, at = 0; i < st->parts; i++, at += strlen(st->names + at) + 1)
        need += 6 * strlen(st->names + at);
    if (sf_buf_reserve(&b, need) != 0)
        return -1;
    char num[160];
    snprintf(num, sizeof num, ",\"rows\":%llu,\"bytes\":%llu,\"time\":%llu,\"tag\":",
             (unsigned long long)st->rows, (unsigned long long)st->bytes,
             (unsigned long long)st->time);
    int r = put(&b, "{\"sqlfeed_state\":1,\"name\":");
    r = r ? r : put_string(&b, st->name ? st->name : "");
    r = r ? r : put(&b, num);
    r = r ? r : put_string(&b, st->tag);
    if (!r && st->parts) {
        r = put(&b, ",\"parts\":[");
        const char *s = st->names;
        for (size_t i = 0; i < st->parts && !r; i++, s += strlen(s) + 1)
            r = (i ? put(&b, ",") : 0) || put_string(&b, s);
        r = r ? r : put(&b, "]");
    }
    r = r ? r : put(&b, "}\n");
    if (r) {
        sf_buf_free(&b);
        return -1;
    }
    *out = b.data;
    *len = b.len;
    return 0;
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

sf_status sf_state_write(int dirfd, const char *dir, const char *name, const char *path,
                         const sf_state *st, sf_census *cs, sf_errbuf *e)
{
    long name_max = sf_dir_name_max(dirfd);
    size_t keep = sf_side_keep(name, SF_TEMP_EXTRA, name_max);
    size_t tn = 1 + keep + SF_TEMP_EXTRA;
    char *tmp = sf_alloc(cs, SF_MEM_SINK, tn);
    char *sn = state_name(cs, name, name_max);
    char *text = NULL;
    size_t len = 0;
    if (!tmp || !sn || sf_state_format(st, cs, &text, &len) != 0) {
        sf_dealloc(cs, tmp);
        sf_dealloc(cs, sn);
        return sf_fail(e, SF_ERR_NOMEM, "out of memory: state record of %s", path);
    }
    int fd = -1, err = EEXIST;
    for (int tries = 0; tries < 100 && fd < 0 && err == EEXIST; tries++) {
        snprintf(tmp, tn, ".%.*s.sqlfeed-%08x", (int)keep, name, random_u32());
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
        if (done == len && renameat(dirfd, tmp, dirfd, sn) != 0) {
            err = errno;
            what = "rename";
            done = 0;
        }
        if (done != len)
            unlinkat(dirfd, tmp, 0);
    }
    sf_dealloc(cs, text);
    sf_status r = SF_OK;
    if (fd < 0 || done != len)
        r = sf_fail(e, SF_ERR_OUTPUT,
                    "%s published, but its state record %s/%s could not be written (%s: %s): "
                    "the next run's --max-drop compares with an older run",
                    path, dir, sn, what, strerror(err));
    else if (fsync(dirfd) != 0 && errno != EINVAL && errno != EROFS)
        r = sf_fail(e, SF_ERR_OUTPUT,
                    "%s published, but the fsync of directory %s after its state record failed "
                    "(%s)",
                    path, dir, strerror(errno));
    sf_dealloc(cs, tmp);
    sf_dealloc(cs, sn);
    return r;
}
