/* fuzz_sqltext.c: libFuzzer target for the named-parameter rewriter and the
 * query wrapping (src/source/sqltext.c), both dialects.
 *
 * Input: byte 0 picks the dialect (even: PostgreSQL, odd: MySQL); the rest,
 * up to a NUL, is the query. Checks, for a query the rewriter accepts:
 *  - every name is [A-Za-z_][A-Za-z0-9_]*; PostgreSQL names are distinct;
 *  - when the query holds no '$' or '?' (so every one in the output is a
 *    placeholder), putting ":name" back for each placeholder gives the
 *    query's own text up to its last token: quotes, comments and casts are
 *    copied as they are, and nothing but blanks, ';' and comments is
 *    dropped at the end (the dropped rest rewrites to nothing);
 *  - the PostgreSQL output holds $1..$n, the MySQL output n '?'s;
 *  - sf_sql_wrap gives head + text + tail;
 *  - no leak: the census is empty afterwards. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fuzz.h"
#include "source/sqltext.h"

static int good_name(const char *n)
{
    if (!(n[0] == '_' || ((n[0] | 32) >= 'a' && (n[0] | 32) <= 'z')))
        return 0;
    for (const char *p = n; *p; p++)
        if (!(*p == '_' || ((*p | 32) >= 'a' && (*p | 32) <= 'z') || (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    sf_sql_dialect d = data[0] & 1 ? SF_SQL_MYSQL : SF_SQL_POSTGRES;
    size_t len = strnlen((const char *)data + 1, size - 1);
    char *sql = malloc(len + 1);
    memcpy(sql, data + 1, len);
    sql[len] = '\0';
    sf_census *c = sf_census_create();
    sf_errbuf err;
    sf_sql_rewrite rw;
    sf_status st = sf_sql_rewrite_params(c, d, sql, &rw, &err);
    if (st == SF_OK) {
        for (int i = 0; i < rw.nplaceholders; i++) {
            if (!good_name(rw.names[i]))
                abort();
            for (int j = 0; d == SF_SQL_POSTGRES && j < i; j++)
                if (!strcmp(rw.names[i], rw.names[j]))
                    abort();
        }
        size_t olen = strlen(rw.sql);
        if (!strpbrk(sql, "$?")) {
            /* Put the names back; it must be the query's prefix. */
            char *back = malloc(olen + 1 + (size_t)rw.nplaceholders * len + len + 1);
            size_t o = 0;
            int seen = 0;
            for (const char *p = rw.sql; *p;) {
                if (*p == '$' || *p == '?') {
                    int k;
                    if (*p == '$') {
                        char *end;
                        long v = strtol(p + 1, &end, 10);
                        if (v < 1 || v > rw.nplaceholders)
                            abort();
                        k = (int)v - 1;
                        p = end;
                    } else {
                        if (seen >= rw.nplaceholders)
                            abort();
                        k = seen;
                        p++;
                    }
                    seen++;
                    back[o++] = ':';
                    size_t nl = strlen(rw.names[k]);
                    memcpy(back + o, rw.names[k], nl);
                    o += nl;
                } else {
                    back[o++] = *p++;
                }
            }
            back[o] = '\0';
            if (d == SF_SQL_MYSQL && seen != rw.nplaceholders)
                abort(); /* one '?' per name occurrence */
            if (d == SF_SQL_POSTGRES && rw.nplaceholders && seen < rw.nplaceholders)
                abort(); /* every $n used */
            if (strncmp(back, sql, o) != 0)
                abort(); /* the rewrite changed text it should have copied */
            /* What was dropped is only blanks, ';' and comments. */
            sf_sql_rewrite rest;
            if (sf_sql_rewrite_params(c, d, sql + o, &rest, &err) != SF_OK || rest.sql[0] ||
                rest.nplaceholders)
                abort();
            sf_sql_rewrite_free(c, &rest);
            free(back);
        }
        sf_buf w;
        if (sf_sql_wrap(c, SF_SQL_COUNT_HEAD, rw.sql, SF_SQL_COUNT_TAIL, &w, &err) == SF_OK) {
            size_t hl = strlen(SF_SQL_COUNT_HEAD), tl = strlen(SF_SQL_COUNT_TAIL);
            if (w.len != hl + olen + tl || memcmp(w.data, SF_SQL_COUNT_HEAD, hl) ||
                memcmp(w.data + hl, rw.sql, olen) || memcmp(w.data + hl + olen, SF_SQL_COUNT_TAIL, tl))
                abort();
            sf_buf_free(&w);
        }
        sf_sql_rewrite_free(c, &rw);
    } else if (!err.msg[0]) {
        abort(); /* a failure without a message */
    }
    if (sf_census_live_bytes(c) != 0)
        abort(); /* a leak through the census */
    sf_census_free(c);
    free(sql);
    return 0;
}
