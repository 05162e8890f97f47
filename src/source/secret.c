/* secret.c: the passwords a --db string carries, found the way the client
 * libraries read the string, so that they can be overwritten in argv,
 * masked in messages, and scrubbed from a library's error text.
 *
 * Two grammars:
 *  - a URL, scheme://[USER[:PASSWORD]@]HOST[:PORT][/DB][?K=V&...]. libpq
 *    looks for the '@' only up to the first '/' (a '?' or '#' before it is
 *    part of the password); sqlfeed's MySQL URL reader does the same and
 *    takes the last '@' there. The secret runs from the first ':' of the
 *    user part to that '@'; with no '@' before the first '/' but one after
 *    it (a '/' written unencoded in a password), to the last '@' of the
 *    string: more than either reader would take, never less. In the query,
 *    the values of password= and sslpassword= (keys percent-decoded) are
 *    secrets too, wherever a '?' or '&' starts such a KEY=, up to the next
 *    '&'.
 *  - a libpq conninfo string, KEY = VALUE ..., VALUE bare (backslash
 *    escapes) or in single quotes (backslash escapes), exactly as libpq's
 *    conninfo_parse reads it. The values of password and sslpassword are
 *    secrets. A string libpq cannot parse (a missing '=', an unterminated
 *    quote) is masked from its first "password" to its end.
 * Keys compare without case, though libpq's do: a stricter mask, never a
 * looser one. A value that is itself a URL (dbname=postgresql://...) has its
 * own secrets masked too. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sqltext.h"

enum { KIND_URL, KIND_CONNINFO };

typedef void (*span_fn)(void *ud, size_t start, size_t end, int kind);

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Whether key[0..n) names a secret: password, sslpassword; percent-decoded
 * when `pct`. */
static int secret_key(const char *key, size_t n, int pct)
{
    char k[16];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)key[i];
        if (pct && c == '%' && i + 2 < n && hexval(key[i + 1]) >= 0 && hexval(key[i + 2]) >= 0) {
            c = hexval(key[i + 1]) * 16 + hexval(key[i + 2]);
            i += 2;
        }
        if (o == sizeof k)
            return 0;
        k[o++] = (char)lower(c);
    }
    return (o == 8 && !memcmp(k, "password", 8)) || (o == 11 && !memcmp(k, "sslpassword", 11));
}

static const char *find_char(const char *p, const char *end, char c)
{
    return p < end ? memchr(p, c, (size_t)(end - p)) : NULL;
}

static const char *find_last(const char *p, const char *end, char c)
{
    const char *last = NULL;
    for (; p < end; p++)
        if (*p == c)
            last = p;
    return last;
}

/* "scheme://" at p: the position after it, or NULL. */
static const char *after_scheme(const char *p, const char *end)
{
    const char *q = p;
    while (q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                       (q > p && ((*q >= '0' && *q <= '9') || *q == '+' || *q == '-' || *q == '.'))))
        q++;
    if (q == p || end - q < 3 || memcmp(q, "://", 3) != 0)
        return NULL;
    return q + 3;
}

/* Spans are collected, then sorted and merged, so that the rules may
 * overlap (a query value inside a conservative user part, a nested URL)
 * and what comes out is in order and disjoint. Past SPAN_MAX, everything
 * from the first span that did not fit to the end is one secret. */
#define SPAN_MAX 64

typedef struct span_set {
    size_t start[SPAN_MAX], end[SPAN_MAX];
    int kind[SPAN_MAX];
    int n;
    size_t rest; /* SIZE_MAX, or where the spans that did not fit begin */
} span_set;

static void add_span(span_set *ss, size_t start, size_t end, int kind)
{
    if (end <= start)
        return;
    if (ss->n < SPAN_MAX) {
        ss->start[ss->n] = start;
        ss->end[ss->n] = end;
        ss->kind[ss->n] = kind;
        ss->n++;
    } else if (start < ss->rest) {
        ss->rest = start;
    }
}

static void scan_url(span_set *ss, const char *base, const char *p, const char *end, int depth);

/* A value that holds a URL: its secrets too (a nested connection string),
 * one level deep (deeper, a string of nested URLs would cost exponential
 * time; such a value is masked whole instead). */
static void scan_nested(span_set *ss, const char *base, const char *p, const char *end, int depth)
{
    if (depth >= 1) {
        for (const char *q = p; q + 3 <= end; q++)
            if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
                add_span(ss, (size_t)(p - base), (size_t)(end - base), KIND_URL);
                return;
            }
        return;
    }
    for (const char *q = p; q + 3 <= end; q++) {
        if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
            const char *s = q;
            while (s > p && ((s[-1] >= 'a' && s[-1] <= 'z') || (s[-1] >= 'A' && s[-1] <= 'Z') ||
                             (s[-1] >= '0' && s[-1] <= '9') || s[-1] == '+' || s[-1] == '-' ||
                             s[-1] == '.'))
                s--;
            if (s < q) {
                scan_url(ss, base, s, end, depth + 1);
                return;
            }
        }
    }
}

static void scan_url(span_set *ss, const char *base, const char *p, const char *end, int depth)
{
    const char *auth = after_scheme(p, end);
    if (!auth)
        return;
    const char *slash = find_char(auth, end, '/');
    if (!slash)
        slash = end;
    const char *at = find_last(auth, slash, '@');
    if (!at)
        at = find_last(slash, end, '@');
    if (at) {
        const char *colon = find_char(auth, at, ':');
        if (colon)
            add_span(ss, (size_t)(colon + 1 - base), (size_t)(at - base), KIND_URL);
    }
    /* Query parameters, wherever a '?' or '&' starts one: libpq's query
     * starts after its '@', the MySQL reader's after the last '@'; reading
     * every KEY=VALUE that follows a '?' or '&' covers both. A value ends at
     * '&' (a '?' or '#' inside it is kept by libpq). */
    for (const char *t = auth; t < end; t++) {
        if (*t != '?' && *t != '&')
            continue;
        const char *k = t + 1, *e = k;
        while (e < end && *e != '=' && *e != '&' && *e != '?')
            e++;
        if (e == end || *e != '=')
            continue;
        const char *vend = find_char(e + 1, end, '&');
        if (!vend)
            vend = end;
        if (secret_key(k, (size_t)(e - k), 1))
            add_span(ss, (size_t)(e + 1 - base), (size_t)(vend - base), KIND_URL);
        else
            scan_nested(ss, base, e + 1, vend, depth);
    }
}

/* libpq's conninfo grammar; -1 when libpq would refuse the string. */
static int scan_conninfo(span_set *ss, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(s[i]))
            i++;
        if (i == len)
            break;
        size_t k0 = i;
        while (i < len && s[i] != '=' && !is_space(s[i]))
            i++;
        size_t k1 = i;
        while (i < len && is_space(s[i]))
            i++;
        if (i == len || s[i] != '=')
            return -1; /* missing "=" after the key */
        i++;
        while (i < len && is_space(s[i]))
            i++;
        size_t v0, v1;
        if (i < len && s[i] == '\'') {
            v0 = ++i;
            for (;;) {
                if (i >= len)
                    return -1; /* unterminated quoted string */
                if (s[i] == '\\') {
                    i += i + 1 < len ? 2 : 1;
                    continue;
                }
                if (s[i] == '\'')
                    break;
                i++;
            }
            v1 = i++;
        } else {
            v0 = i;
            while (i < len && !is_space(s[i]))
                i += s[i] == '\\' && i + 1 < len ? 2 : 1;
            v1 = i;
        }
        if (secret_key(s + k0, k1 - k0, 0))
            add_span(ss, v0, v1, KIND_CONNINFO);
        else
            scan_nested(ss, s, s + v0, s + v1, 0);
    }
    return 0;
}

/* Calls fn for every secret of db, in order, spans disjoint. */
static void scan(const char *db, span_fn fn, void *ud)
{
    size_t len = strlen(db);
    span_set ss;
    ss.n = 0;
    ss.rest = SIZE_MAX;
    const char *p = db;
    while (p < db + len && is_space(*p))
        p++;
    if (after_scheme(p, db + len)) {
        scan_url(&ss, db, p, db + len, 0);
    } else if (memchr(db, '=', len)) { /* else a plain path or name: not conninfo to libpq */
        if (scan_conninfo(&ss, db, len) != 0) {
            /* libpq refuses it: masked from its first "password" on */
            ss.n = 0;
            ss.rest = SIZE_MAX;
            for (size_t i = 0; i + 8 <= len; i++) {
                size_t j = 0;
                while (j < 8 && lower((unsigned char)db[i + j]) == "password"[j])
                    j++;
                if (j == 8) {
                    add_span(&ss, i + 8, len, KIND_CONNINFO);
                    break;
                }
            }
        }
    }
    if (ss.rest != SIZE_MAX) /* spans that did not fit: all from there on */
        add_span(&ss, ss.rest, len, KIND_URL);
    for (int i = 1; i < ss.n; i++) /* insertion sort by start: at most 64 */
        for (int j = i; j > 0 && ss.start[j - 1] > ss.start[j]; j--) {
            size_t t0 = ss.start[j], t1 = ss.end[j];
            int tk = ss.kind[j];
            ss.start[j] = ss.start[j - 1], ss.end[j] = ss.end[j - 1], ss.kind[j] = ss.kind[j - 1];
            ss.start[j - 1] = t0, ss.end[j - 1] = t1, ss.kind[j - 1] = tk;
        }
    if (ss.rest != SIZE_MAX) { /* the last span (from rest to the end) swallows the others */
        int k = 0;
        while (k < ss.n && ss.end[k] <= ss.rest)
            k++;
        size_t from = k < ss.n && ss.start[k] < ss.rest ? ss.start[k] : ss.rest;
        ss.start[k] = from, ss.end[k] = len, ss.kind[k] = KIND_URL;
        ss.n = k + 1;
    }
    for (int i = 0; i < ss.n;) {
        size_t a = ss.start[i], b = ss.end[i];
        int kind = ss.kind[i];
        for (i++; i < ss.n && ss.start[i] <= b; i++) {
            if (ss.end[i] > b)
                b = ss.end[i];
            if (ss.kind[i] != kind)
                kind = KIND_URL;
        }
        fn(ud, a, b, kind);
    }
}

/* ---- overwriting and masking --------------------------------------------- */

typedef struct hide_ud {
    char *db;
    size_t count;
} hide_ud;

static void hide_span(void *ud, size_t start, size_t end, int kind)
{
    hide_ud *h = ud;
    (void)kind;
    memset(h->db + start, 'x', end - start);
    h->count++;
}

size_t sf_db_hide_secrets(char *db)
{
    hide_ud h = {db, 0};
    if (db)
        scan(db, hide_span, &h);
    return h.count;
}

typedef struct mask_ud {
    const char *db;
    char *buf;
    size_t n, o; /* o: the length the masked text has so far (may pass n) */
    size_t done; /* db bytes consumed */
} mask_ud;

static void mask_put(mask_ud *m, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++, m->o++)
        if (m->o + 1 < m->n)
            m->buf[m->o] = p[i];
}

static void mask_span(void *ud, size_t start, size_t end, int kind)
{
    mask_ud *m = ud;
    (void)kind;
    mask_put(m, m->db + m->done, start - m->done);
    mask_put(m, "***", 3);
    m->done = end;
}

size_t sf_db_mask(const char *db, char *buf, size_t n)
{
    if (!db)
        db = "";
    mask_ud m = {db, buf, buf ? n : 0, 0, 0};
    scan(db, mask_span, &m);
    mask_put(&m, db + m.done, strlen(db + m.done));
    if (m.n)
        buf[m.o < m.n ? m.o : m.n - 1] = '\0';
    return m.o;
}

/* ---- comparing ----------------------------------------------------------- */

/* Whether db[start..end), decoded as its kind says, equals value. */
static int span_equals(const char *db, size_t start, size_t end, int kind, const char *value)
{
    const char *v = value;
    for (size_t i = start; i < end; i++) {
        int c = (unsigned char)db[i];
        if (kind == KIND_URL && c == '%' && i + 2 < end && hexval(db[i + 1]) >= 0 &&
            hexval(db[i + 2]) >= 0) {
            c = hexval(db[i + 1]) * 16 + hexval(db[i + 2]);
            i += 2;
        } else if (kind == KIND_CONNINFO && c == '\\') {
            if (i + 1 == end)
                break; /* a bare value's last backslash escapes nothing: libpq drops it */
            c = (unsigned char)db[++i];
        }
        if ((unsigned char)*v != c || !*v)
            return 0;
        v++;
    }
    return *v == '\0';
}

typedef struct match_ud {
    const char *db, *value;
    int found;
} match_ud;

static void match_span(void *ud, size_t start, size_t end, int kind)
{
    match_ud *m = ud;
    if (!m->found)
        m->found = span_equals(m->db, start, end, kind, m->value);
}

int sf_db_has_secret(const char *db, const char *value)
{
    match_ud m = {db, value, 0};
    if (db && value)
        scan(db, match_span, &m);
    return m.found;
}

/* ---- scrubbing a library's message --------------------------------------- */

#define MAX_SPANS SPAN_MAX

typedef struct spans_ud {
    size_t start[MAX_SPANS], end[MAX_SPANS];
    int kind[MAX_SPANS];
    int n, overflow;
    size_t first_start; /* of the spans past MAX_SPANS: all of them from here */
} spans_ud;

static void collect_span(void *ud, size_t start, size_t end, int kind)
{
    spans_ud *s = ud;
    if (s->n < MAX_SPANS) {
        s->start[s->n] = start;
        s->end[s->n] = end;
        s->kind[s->n] = kind;
        s->n++;
    } else if (!s->overflow) {
        s->overflow = 1;
        s->first_start = start;
    }
}

/* Whether db[a..b) overlaps a secret. */
static int overlaps(const spans_ud *s, size_t dblen, size_t a, size_t b)
{
    for (int i = 0; i < s->n; i++)
        if (a < s->end[i] && s->start[i] < b)
            return 1;
    return s->overflow && b > s->first_start && s->first_start < dblen;
}

/* Whether msg[0..len) occurs in db overlapping a secret. */
static int fragment_of_secret(const char *db, size_t dblen, const spans_ud *s, const char *frag,
                              size_t len)
{
    if (!len || len > dblen)
        return 0;
    for (const char *p = db; (p = memmem(p, dblen - (size_t)(p - db), frag, len)) != NULL; p++)
        if (overlaps(s, dblen, (size_t)(p - db), (size_t)(p - db) + len))
            return 1;
    return 0;
}

/* Length of a secret's text at msg[i..) (as written or decoded), or 0. */
static size_t secret_at(const char *db, const spans_ud *s, const char *msg, size_t i, size_t mlen)
{
    for (int k = 0; k < s->n; k++) {
        size_t len = s->end[k] - s->start[k];
        if (len && len <= mlen - i && !memcmp(msg + i, db + s->start[k], len))
            return len;
        /* decoded: walk the span, matching msg as it decodes */
        size_t j = i, p = s->start[k];
        while (p < s->end[k] && j < mlen) {
            int c = (unsigned char)db[p];
            size_t step = 1;
            if (s->kind[k] == KIND_URL && c == '%' && p + 2 < s->end[k] &&
                hexval(db[p + 1]) >= 0 && hexval(db[p + 2]) >= 0) {
                c = hexval(db[p + 1]) * 16 + hexval(db[p + 2]);
                step = 3;
            } else if (s->kind[k] == KIND_CONNINFO && c == '\\' && p + 1 < s->end[k]) {
                c = (unsigned char)db[p + 1];
                step = 2;
            }
            if ((unsigned char)msg[j] != c)
                break;
            p += step;
            j++;
        }
        if (p == s->end[k] && j > i)
            return j - i;
    }
    return 0;
}

void sf_db_scrub(const char *db, const char *msg, char *buf, size_t n)
{
    if (!n)
        return;
    if (!msg)
        msg = "";
    if (!db)
        db = "";
    spans_ud s;
    memset(&s, 0, sizeof s);
    scan(db, collect_span, &s);
    if (s.overflow) {
        snprintf(buf, n, "(message withheld: the connection string holds more than %d passwords)",
                 MAX_SPANS);
        return;
    }
    size_t dblen = strlen(db), mlen = strlen(msg), o = 0;
#define PUT(c) do { if (o + 1 < n) buf[o++] = (c); } while (0)
#define PUTS(str) do { for (const char *put_ = (str); *put_; put_++) PUT(*put_); } while (0)
    for (size_t i = 0; i < mlen;) {
        /* The whole string quoted: its masked form. */
        if (dblen && dblen <= mlen - i && !memcmp(msg + i, db, dblen) && (s.n || s.overflow)) {
            char masked[SF_ERRMSG_SIZE];
            sf_db_mask(db, masked, sizeof masked);
            for (const char *m = masked; *m; m++)
                PUT(*m);
            i += dblen;
            continue;
        }
        size_t k = secret_at(db, &s, msg, i, mlen);
        if (k) {
            PUTS("***");
            i += k;
            continue;
        }
        /* A quoted fragment of the string that reaches into a secret. */
        char q = msg[i];
        if (q == '"' || q == '\'') {
            const char *close = i + 1 < mlen ? memchr(msg + i + 1, q, mlen - i - 1) : NULL;
            size_t flen = close ? (size_t)(close - msg) - i - 1 : 0;
            int whole = flen == dblen && !memcmp(msg + i + 1, db, dblen); /* masked next */
            if (close && !whole && fragment_of_secret(db, dblen, &s, msg + i + 1, flen)) {
                PUT(q);
                PUTS("***");
                PUT(q);
                i = (size_t)(close - msg) + 1;
                continue;
            }
        }
        PUT(msg[i]);
        i++;
    }
#undef PUTS
#undef PUT
    buf[o] = '\0';
}
