/* shard.c: a sharded read (docs/shards.md). Shard K of N reads the rows of
 * the query whose integer key lies in the shard's range:
 *
 *   shard 1:        key IS NULL OR key < b1
 *   shard K:        b(K-1) <= key < bK
 *   shard N:        key >= b(N-1)
 *
 * so, whatever the boundaries, every row is in exactly one shard. The
 * boundaries come from the key's distribution, computed by each shard in the
 * transaction it reads the rows in (the same data, on PostgreSQL with a
 * shared snapshot): ntile(N) over the non-NULL keys in order, bi = the
 * smallest key of tile i+1; when there are fewer keys than shards, the
 * missing boundaries are the largest key + 1 (those shards are empty). The
 * rows come in key order, NULL keys first, on every backend.
 *
 * The source prepares, in place of the user's query,
 *
 *   SELECT * FROM (\n<query>\n) AS sqlfeed_shard
 *   WHERE CAST(:sf_shard_all AS BIGINT) = 1 OR (<range>)
 *   ORDER BY CASE WHEN key IS NULL THEN 0 ELSE 1 END, key
 *
 * The plan's query runs over it with sf_shard_all = 1 (every row); the rows
 * are then read with sf_shard_all = 0 and the shard's two boundaries bound
 * as parameters (the server plans with the values: the range reaches an
 * index). The cast is spelled per backend (MariaDB: SIGNED). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

int sf_source_shard_param(const char *name)
{
    return !strcmp(name, SF_SHARD_PARAM_ALL) || !strcmp(name, SF_SHARD_PARAM_LO) ||
           !strcmp(name, SF_SHARD_PARAM_HI);
}

static int is_mysql(const sf_source *s) { return s->vt && !strcmp(s->vt->name, "mysql"); }

/* The key as an identifier, quoted for the backend (names are checked to be
 * [A-Za-z_][A-Za-z0-9_]* when set: nothing to escape). */
static void quoted_key(const sf_source *s, char *buf, size_t n)
{
    char q = is_mysql(s) ? '`' : '"';
    snprintf(buf, n, "%c%s%c", q, s->opts.shard_key, q);
}

static int append(sf_buf *b, const char *text) { return sf_buf_append(b, text, strlen(text)); }
static int is_sqlite(const sf_source *s) { return s->vt && !strcmp(s->vt->name, "sqlite"); }
static int is_pg(const sf_source *s) { return s->vt && !strcmp(s->vt->name, "postgresql"); }

/* The length of sql up to its last token: a trailing ';' (and the blanks
 * and line comments after it) would end the subquery early or comment out
 * its ')'. Skipped whole: strings '...' ('' inside; with backslash escapes on
 * MariaDB, and in PostgreSQL's E'...'), quoted names "..." and `...` (and
 * SQLite's [...]), PostgreSQL's $tag$...$tag$, line comments (-- , and # on
 * MariaDB, where -- needs a blank after it) and block comments, except
 * MariaDB's executable ones ("/" "*!" ... "*" "/"), which run: they count as
 * a token. Anything unterminated keeps the text whole: the server then says
 * what is wrong. */
static size_t query_end(const char *sql, const char *backend)
{
    int my = !strcmp(backend, "mysql"), pg = !strcmp(backend, "postgresql"),
        lite = !strcmp(backend, "sqlite");
    size_t end = 0;
    const char *p = sql;
    while (*p) {
        char c = *p;
        const char *q = NULL;
        if (c == '\'' || c == '"' || c == '`' || (lite && c == '[')) {
            char close = c == '[' ? ']' : c;
            int esc = c == '\'' && (my || (pg && p > sql && (p[-1] == 'E' || p[-1] == 'e')));
            for (q = p + 1;; q++) {
                if (!*q)
                    return strlen(sql);
                if (esc && *q == '\\' && q[1]) {
                    q++;
                    continue;
                }
                if (*q == close && close != ']' && q[1] == close) {
                    q++;
                    continue;
                }
                if (*q == close)
                    break;
            }
            q++;
        } else if (pg && c == '$' && (p == sql || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            const char *t = p + 1;
            while (isalnum((unsigned char)*t) || *t == '_')
                t++;
            if (*t == '$' && !(t > p + 1 && isdigit((unsigned char)p[1]))) {
                size_t tl = (size_t)(t - p + 1);
                char tag[72];
                if (tl < sizeof tag) {
                    memcpy(tag, p, tl);
                    tag[tl] = '\0';
                    const char *e = strstr(t + 1, tag);
                    if (!e)
                        return strlen(sql);
                    q = e + tl;
                }
            }
        } else if ((c == '-' && p[1] == '-' && (!my || !p[2] || isspace((unsigned char)p[2]) ||
                                               (unsigned char)p[2] < 0x20)) ||
                   (my && c == '#')) {
            while (*p && *p != '\n')
                p++;
            continue;
        } else if (c == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            if (!e)
                return strlen(sql);
            if (!(my && p[2] == '!')) { /* a comment: not a token */
                p = e + 2;
                continue;
            }
            q = e + 2;
        }
        if (q) {
            p = q;
            end = (size_t)(p - sql);
            continue;
        }
        if (!strchr(" \t\r\n\f\v;", c))
            end = (size_t)(p - sql) + 1;
        p++;
    }
    return end;
}

size_t sf_source_query_end(const sf_source *s, const char *sql)
{
    return query_end(sql, s->vt ? s->vt->name : "");
}

sf_status sf_source_shard_sql(sf_source *s, const char *sql, sf_buf *out)
{
    sf_census *cs = s->cref.census;
    const char *cast = is_mysql(s) ? "SIGNED" : "BIGINT";
    char key[80], cond[512], tail[1024];
    quoted_key(s, key, sizeof key);
    unsigned k = s->opts.shard_k, n = s->opts.shard_n;
    if (n == 1)
        snprintf(cond, sizeof cond, "1 = 1");
    else if (k == 1)
        snprintf(cond, sizeof cond, "%s IS NULL OR %s < CAST(:" SF_SHARD_PARAM_HI " AS %s)", key,
                 key, cast);
    else if (k == n)
        snprintf(cond, sizeof cond, "%s >= CAST(:" SF_SHARD_PARAM_LO " AS %s)", key, cast);
    else
        snprintf(cond, sizeof cond,
                 "%s >= CAST(:" SF_SHARD_PARAM_LO " AS %s) AND %s < CAST(:" SF_SHARD_PARAM_HI
                 " AS %s)",
                 key, cast, key, cast);
    /* NULLs first: SQLite and MariaDB sort them so, PostgreSQL is told. The
     * every-row switch for the plan: SQLite's plan runs over the query as
     * given instead (shard_base), its planner keeping the key's index. */
    const char *nulls = is_pg(s) ? " NULLS FIRST" : "";
    if (is_sqlite(s))
        snprintf(tail, sizeof tail, "\n) AS sqlfeed_shard WHERE %s ORDER BY %s", cond, key);
    else
        snprintf(tail, sizeof tail,
                 "\n) AS sqlfeed_shard WHERE CAST(:" SF_SHARD_PARAM_ALL " AS %s) = 1 OR (%s)"
                 " ORDER BY %s%s",
                 cast, cond, key, nulls);
    size_t len = sf_source_query_end(s, sql);
    sf_buf_init(out, cs, SF_MEM_SOURCE);
    if (append(out, "SELECT * FROM (\n") || sf_buf_append(out, sql, len) || append(out, tail) ||
        sf_buf_append(out, "", 1)) {
        sf_buf_free(out);
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    }
    return SF_OK;
}

/* ---- the plan ------------------------------------------------------------ */

typedef struct plan_ud {
    sf_source *s;
    sf_shard_plan *p;
    unsigned tiles;   /* non-NULL tiles seen */
    const char *bad;  /* a value that is not an integer */
    char badbuf[64];
    int order;        /* tiles out of order */
    int unordered;    /* keys that the database orders otherwise than as integers */
    int notint;       /* SQLite: keys stored as text or real */
} plan_ud;

static int parse_i64(const char *v, int64_t *out)
{
    if (!v || !*v)
        return -1;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end)
        return -1;
    *out = (int64_t)x;
    return 0;
}

static int parse_u64(const char *v, uint64_t *out)
{
    int64_t x;
    if (parse_i64(v, &x) != 0 || x < 0)
        return -1;
    *out = (uint64_t)x;
    return 0;
}

/* One row of the plan's query: tile (0: the NULL keys), rows, min, max. */
static int plan_row(void *ud, int ncols, const char *const *v)
{
    plan_ud *u = ud;
    sf_shard_plan *p = u->p;
    uint64_t tile, rows;
    uint64_t notint = 0;
    if (ncols != 5 || parse_u64(v[0], &tile) != 0 || parse_u64(v[1], &rows) != 0 ||
        parse_u64(v[4] ? v[4] : "0", &notint) != 0) {
        snprintf(u->badbuf, sizeof u->badbuf, "%s", v[0] ? v[0] : "NULL");
        u->bad = u->badbuf;
        return 1;
    }
    if (notint) { /* SQLite: keys stored as text or real, which sort otherwise */
        u->notint = 1;
        return 1;
    }
    p->total += rows;
    if (tile == 0) {
        p->nulls = rows;
        return 0;
    }
    int64_t lo, hi;
    if (parse_i64(v[2], &lo) != 0 || parse_i64(v[3], &hi) != 0) {
        snprintf(u->badbuf, sizeof u->badbuf, "%s", parse_i64(v[2], &lo) ? (v[2] ? v[2] : "NULL")
                                                                         : (v[3] ? v[3] : "NULL"));
        u->bad = u->badbuf;
        return 1;
    }
    if (tile != u->tiles + 1 || tile > p->n) {
        u->order = 1;
        return 1;
    }
    /* The tiles follow the database's order of the key; the ranges compare
     * integers. Both agree only when each tile's keys lie above the last
     * tile's: a text column of digits ('10' < '9') does not. */
    if (lo > hi || (tile > 1 && lo < p->max_key)) {
        u->unordered = 1;
        return 1;
    }
    if (tile == 1)
        p->min_key = lo;
    else
        p->bounds[tile - 2] = lo;
    p->max_key = hi;
    u->tiles = (unsigned)tile;
    return 0;
}

sf_status sf_source_shard_plan(sf_source *s, const char *const *values, sf_shard_plan *p)
{
    if (!s->vt->query_text)
        return sf_fail(&s->err, SF_ERR_ARG, "%s: sharded reads are not supported", s->vt->name);
    unsigned n = s->opts.shard_n;
    memset(p, 0, sizeof *p);
    p->k = s->opts.shard_k;
    p->n = n;
    char key[80], head[1024];
    quoted_key(s, key, sizeof key);
    /* The fifth column: keys SQLite stores as text or real ('10' sorts
     * before '9'), which its dynamic types let an integer-looking column
     * hold; 0 elsewhere (PostgreSQL refuses to compare text with the
     * boundaries; MariaDB's types are the column's). */
    const char *notint = is_sqlite(s) ? "sum(typeof(sf_k) NOT IN ('integer', 'null'))" : "0";
    snprintf(head, sizeof head,
             "SELECT sf_t, count(*), min(sf_k), max(sf_k), %s FROM (SELECT sf_k, CASE WHEN sf_k IS "
             "NULL THEN 0 ELSE ntile(%u) OVER (PARTITION BY CASE WHEN sf_k IS NULL THEN 0 ELSE 1 "
             "END ORDER BY sf_k) END AS sf_t FROM (SELECT %s AS sf_k FROM (\n",
             notint, n, key);
    static const char tail[] =
        "\n) AS sqlfeed_w) AS sqlfeed_a) AS sqlfeed_b GROUP BY sf_t ORDER BY sf_t";
    plan_ud u = {.s = s, .p = p};
    sf_status st = s->vt->query_text(s, "planning the shards", head, tail, values, plan_row, &u);
    if (st == SF_ERR_ARG && u.bad)
        return sf_fail(&s->err, SF_ERR_SOURCE,
                       "shard key '%s': '%s' is not an integer; a shard key is an integer "
                       "column, such as the primary key",
                       s->opts.shard_key, u.bad);
    if (st == SF_ERR_ARG && u.notint)
        return sf_fail(&s->err, SF_ERR_SOURCE,
                       "shard key '%s' holds values that are not integers (stored as text or "
                       "real); a shard key is an integer column, such as the primary key",
                       s->opts.shard_key);
    if (st == SF_ERR_ARG && u.unordered)
        return sf_fail(&s->err, SF_ERR_SOURCE,
                       "shard key '%s': the database orders its values otherwise than as "
                       "integers (a text column of digits?); a shard key is an integer column",
                       s->opts.shard_key);
    if (st == SF_ERR_ARG && u.order)
        return sf_fail(&s->err, SF_ERR_SOURCE,
                       "shard key '%s': the database numbered its tiles out of order",
                       s->opts.shard_key);
    if (st != SF_OK)
        return st;
    /* Fewer keys than shards: the shards past the keys are empty. */
    for (unsigned i = u.tiles ? u.tiles : 1; i < n; i++) {
        if (u.tiles && p->max_key == INT64_MAX)
            return sf_fail(&s->err, SF_ERR_SOURCE,
                           "shard key '%s': fewer keys than shards and a key of %lld: no "
                           "boundary above it",
                           s->opts.shard_key, (long long)INT64_MAX);
        p->bounds[i - 1] = u.tiles ? p->max_key + 1 : 0;
    }
    unsigned k = p->k;
    if (k > 1)
        snprintf(p->lo, sizeof p->lo, "%lld", (long long)p->bounds[k - 2]);
    else
        snprintf(p->lo, sizeof p->lo, "0");
    if (k < n)
        snprintf(p->hi, sizeof p->hi, "%lld", (long long)p->bounds[k - 1]);
    else
        snprintf(p->hi, sizeof p->hi, "0");
    return SF_OK;
}
