/* fileset.c: the names of a split output's parts: the pattern (parse,
 * expand, match), the run tag, and which files of the directory belong to
 * earlier runs. The publication sequence that uses them is in output.c and
 * docs/sink.md ("File sets"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "set.h"

size_t sf_side_keep(const char *name, size_t extra, long name_max)
{
    if (name_max <= (long)extra)
        name_max = 255;
    size_t keep = strlen(name);
    if (keep > (size_t)name_max - extra) {
        keep = (size_t)name_max - extra;
        while (keep > 0 && ((unsigned char)name[keep] & 0xc0) == 0x80)
            keep--; /* not inside a UTF-8 sequence */
    }
    return keep;
}

long sf_dir_name_max(int dirfd)
{
    long m = fpathconf(dirfd, _PC_NAME_MAX);
    return m > 0 ? m : 255;
}

int sf_is_tag8(const char *s, size_t n)
{
    if (n != 8)
        return 0;
    for (size_t i = 0; i < 8; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* ---- pattern ------------------------------------------------------------- */

void sf_pattern_free(sf_pattern *p, sf_census *cs)
{
    sf_dealloc(cs, p->dir);
    sf_dealloc(cs, p->base);
    sf_dealloc(cs, p->lit);
    memset(p, 0, sizeof *p);
}

static sf_status bad(sf_errbuf *e, const char *pattern, const char *why)
{
    return sf_fail(e, SF_ERR_ARG, "part name pattern %s: %s", pattern, why);
}

/* One literal byte: extends the last literal segment or starts one. */
static int add_lit(sf_pattern *p, size_t *lit, char c)
{
    if (p->nseg == 0 || p->seg[p->nseg - 1].kind != SF_SEG_LIT) {
        if (p->nseg == 5)
            return -1;
        p->seg[p->nseg++] = (sf_seg){SF_SEG_LIT, *lit, 0, 0};
    }
    p->lit[(*lit)++] = c;
    p->seg[p->nseg - 1].len++;
    return 0;
}

sf_status sf_pattern_parse(sf_pattern *p, sf_census *cs, sf_errbuf *e, const char *pattern)
{
    memset(p, 0, sizeof *p);
    if (!pattern || !*pattern)
        return sf_fail(e, SF_ERR_ARG, "no part name pattern");
    const char *slash = strrchr(pattern, '/');
    const char *base = slash ? slash + 1 : pattern;
    if (slash && memchr(pattern, '%', (size_t)(slash - pattern)))
        return bad(e, pattern, "a field (%) in the directory part; only the file name may hold "
                               "%d and %r");
    if (!*base)
        return bad(e, pattern, "does not end with a file name");
    size_t blen = strlen(base);
    p->dir = slash ? sf_strndup(cs, SF_MEM_SINK, pattern, slash == pattern ? 1
                                                                          : (size_t)(slash - pattern))
                   : sf_strdup(cs, SF_MEM_SINK, ".");
    p->base = sf_strdup(cs, SF_MEM_SINK, base);
    p->lit = sf_alloc(cs, SF_MEM_SINK, blen + 1);
    if (!p->dir || !p->base || !p->lit) {
        sf_pattern_free(p, cs);
        return sf_fail(e, SF_ERR_NOMEM, "out of memory: part name pattern");
    }
    size_t lit = 0;
    int nums = 0;
    const char *why = NULL;
    for (const char *s = base; *s && !why; s++) {
        if (*s != '%') {
            if (add_lit(p, &lit, *s) != 0)
                why = "too many fields";
            continue;
        }
        s++;
        if (*s == '%') { /* "%%": a literal '%' */
            if (add_lit(p, &lit, '%') != 0)
                why = "too many fields";
            continue;
        }
        sf_seg f = {SF_SEG_NUM, 0, 0, 0};
        if (*s == 'r') {
            if (p->has_tag++)
                why = "more than one %r";
            f.kind = SF_SEG_TAG;
        } else if (*s == 'd') {
            nums++;
        } else if (*s == '0' && s[1] >= '1' && s[1] <= '9' && s[2] == 'd') {
            f.width = s[1] - '0';
            s += 2;
            nums++;
        } else {
            why = "a '%' not followed by d, 0Nd (N 1-9), r or %";
            break;
        }
        if (nums > 1)
            why = "more than one part number (%d)";
        /* Two fields side by side could not be told apart in a name. */
        else if (p->nseg > 0 && p->seg[p->nseg - 1].kind != SF_SEG_LIT)
            why = "two fields side by side (put text between %d and %r)";
        else if (p->nseg == 5)
            why = "too many fields";
        else
            p->seg[p->nseg++] = f;
    }
    if (!why && nums == 0)
        why = "no part number (%d or %0Nd)";
    p->lit[lit] = '\0';
    if (why) {
        sf_pattern_free(p, cs);
        return bad(e, pattern, why);
    }
    return SF_OK;
}

size_t sf_pattern_expand(const sf_pattern *p, const char *tag, uint64_t n, char *buf,
                         size_t cap)
{
    size_t len = 0;
    for (int i = 0; i < p->nseg; i++) {
        const sf_seg *g = &p->seg[i];
        char tmp[32];
        const char *s = tmp;
        size_t k;
        if (g->kind == SF_SEG_LIT) {
            s = p->lit + g->off;
            k = g->len;
        } else if (g->kind == SF_SEG_TAG) {
            s = tag ? tag : "";
            k = strlen(s);
        } else {
            int w = snprintf(tmp, sizeof tmp, "%0*llu", g->width, (unsigned long long)n);
            k = w > 0 ? (size_t)w : 0;
        }
        if (len + k >= cap)
            return 0;
        memcpy(buf + len, s, k);
        len += k;
    }
    buf[len] = '\0';
    return len;
}

/* Matches segments [i..] against name[0..n). */
static int match_from(const sf_pattern *p, int i, const char *s, size_t n, int prefix, char *tag,
                      uint64_t *num)
{
    if (i == p->nseg)
        return n == 0;
    if (n == 0)
        return prefix; /* a name cut here */
    const sf_seg *g = &p->seg[i];
    if (g->kind == SF_SEG_LIT) {
        size_t k = g->len < n ? g->len : n;
        if (memcmp(s, p->lit + g->off, k) != 0)
            return 0;
        if (k < g->len)
            return prefix;
        return match_from(p, i + 1, s + k, n - k, prefix, tag, num);
    }
    if (g->kind == SF_SEG_TAG) {
        size_t k = n < 8 ? n : 8;
        for (size_t j = 0; j < k; j++)
            if (!((s[j] >= '0' && s[j] <= '9') || (s[j] >= 'a' && s[j] <= 'f')))
                return 0;
        if (k < 8)
            return prefix;
        if (tag) {
            memcpy(tag, s, 8);
            tag[8] = '\0';
        }
        return match_from(p, i + 1, s + 8, n - 8, prefix, tag, num);
    }
    /* A number: at least `width` (1 for %d) digits; every length tried, so
     * digits in the text after it still match. */
    size_t d = 0;
    while (d < n && d < 20 && s[d] >= '0' && s[d] <= '9')
        d++;
    size_t min = g->width > 0 ? (size_t)g->width : 1;
    for (size_t k = d; k >= 1; k--) {
        if (k < min && !(prefix && k == n))
            break;
        uint64_t v = 0;
        for (size_t j = 0; j < k; j++)
            v = v * 10 + (uint64_t)(s[j] - '0');
        if (match_from(p, i + 1, s + k, n - k, prefix, tag, num)) {
            if (num)
                *num = v;
            return 1;
        }
    }
    return 0;
}

int sf_pattern_match(const sf_pattern *p, const char *name, size_t n, int prefix, char *tag,
                     uint64_t *num)
{
    char t[9] = "";
    uint64_t v = 0;
    if (!match_from(p, 0, name, n, prefix, t, &v))
        return 0;
    if (tag)
        memcpy(tag, t, 9);
    if (num)
        *num = v;
    return 1;
}

/* ---- run tag and earlier runs ------------------------------------------- */

static uint32_t random_u32(void)
{
    uint32_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint32_t)ts.tv_nsec ^ (uint32_t)((uint64_t)ts.tv_sec << 12) ^
           ((uint32_t)getpid() << 20);
}

/* Whether a name of the pattern with tag `tag` is in dirfd. */
static int tag_in_dir(const sf_pattern *p, int dirfd, const char *tag)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    int found = 0;
    struct dirent *de;
    char t[9];
    while (!found && (de = readdir(d)) != NULL)
        found = sf_pattern_match(p, de->d_name, strlen(de->d_name), 0, t, NULL) &&
                !strcmp(t, tag);
    closedir(d);
    return found;
}

int sf_set_choose_tag(const sf_pattern *p, int dirfd, const char *prev_tag, char tag[9])
{
    for (int tries = 0; tries < 64; tries++) {
        snprintf(tag, 9, "%08x", random_u32());
        if (prev_tag && !strcmp(tag, prev_tag))
            continue;
        if (p->has_tag && tag_in_dir(p, dirfd, tag))
            continue;
        return 0;
    }
    tag[0] = '\0';
    return -1;
}

size_t sf_set_remove_stale(int dirfd, const sf_pattern *p, const char *tag, uint64_t count,
                           int *err)
{
    *err = 0;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        *err = errno;
        if (fd >= 0)
            close(fd);
        return 0;
    }
    size_t removed = 0;
    struct dirent *de;
    char t[9], mine[4096];
    uint64_t num;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (!sf_pattern_match(p, de->d_name, n, 0, t, &num))
            continue;
        /* One of the new set's names, spelled exactly as it spells them? */
        if (num >= 1 && num <= count &&
            sf_pattern_expand(p, p->has_tag ? tag : NULL, num, mine, sizeof mine) == n &&
            !memcmp(mine, de->d_name, n))
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue; /* only regular files: never a directory, link or device */
        if (unlinkat(dirfd, de->d_name, 0) == 0)
            removed++;
        else if (!*err && errno != ENOENT)
            *err = errno;
    }
    closedir(d);
    return removed;
}
