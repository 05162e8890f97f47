/* sqltext.c: named parameters to server placeholders.
 *
 * The scanner knows only what decides whether a ':' starts a parameter:
 * string literals, quoted identifiers, comments, PostgreSQL dollar quotes and
 * '::' casts. Everything else is copied as it is. */
#include <stdio.h>
#include <string.h>

#include "sqltext.h"

static int name_start(char c) { return c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z'); }
static int name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

/* End of a quoted run starting at p (the quote), or NULL if unterminated.
 * Doubled quotes stay inside; `backslash` lets \x escape too. */
static const char *skip_quoted(const char *p, char q, int backslash)
{
    for (p++; *p; p++) {
        if (backslash && *p == '\\' && p[1])
            p++;
        else if (*p == q) {
            if (p[1] == q)
                p++;
            else
                return p + 1;
        }
    }
    return NULL;
}

/* A PostgreSQL dollar quote at p ("$tag$" or "$$"): the text after its end,
 * or p itself when p does not open one. */
static const char *skip_dollar(const char *p)
{
    const char *t = p + 1;
    while (name_char(*t) && !(*t >= '0' && *t <= '9' && t == p + 1))
        t++;
    if (*t != '$')
        return p;
    size_t taglen = (size_t)(t - p) + 1;
    for (const char *end = t + 1; (end = strchr(end, '$')) != NULL; end++)
        if (strncmp(end, p, taglen) == 0)
            return end + taglen;
    return NULL;
}

static sf_status add_name(sf_census *c, sf_sql_rewrite *rw, const char *name, size_t len,
                          sf_errbuf *err)
{
    char **p = sf_realloc(c, SF_MEM_SOURCE, rw->names, ((size_t)rw->nplaceholders + 1) * sizeof *p);
    if (!p)
        return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    rw->names = p;
    if (!(p[rw->nplaceholders] = sf_strndup(c, SF_MEM_SOURCE, name, len)))
        return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    rw->nplaceholders++;
    return SF_OK;
}

sf_status sf_sql_rewrite_params(sf_census *c, sf_sql_dialect d, const char *sql,
                                sf_sql_rewrite *rw, sf_errbuf *err)
{
    sf_buf out;
    sf_buf_init(&out, c, SF_MEM_SOURCE);
    memset(rw, 0, sizeof *rw);
    const char *p = sql, *run = sql;
    sf_status st = SF_OK;
    int pg = d == SF_SQL_POSTGRES;
    size_t sig_out = 0; /* output length up to the last byte that is not a blank, ';' or comment */
#define FLUSH(upto)                                                                          \
    do {                                                                                     \
        if (sf_buf_append(&out, run, (size_t)((upto) - run)) != 0) {                         \
            st = sf_fail(err, SF_ERR_NOMEM, "out of memory");                                \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)
    while (*p) {
        const char *next = p + 1;
        char ch = *p;
        int sig = !strchr(" \t\r\n\f\v;", ch);
        if (ch == '\'') {
            int esc = !pg || (p > sql && (p[-1] | 32) == 'e' && (p - 1 == sql || !name_char(p[-2])));
            next = skip_quoted(p, '\'', esc);
        } else if (ch == '"') {
            next = skip_quoted(p, '"', !pg);
        } else if (ch == '`' && !pg) {
            next = skip_quoted(p, '`', 0);
        } else if ((ch == '-' && p[1] == '-') || (ch == '#' && !pg)) {
            sig = 0;
            next = strchr(p, '\n');
            next = next ? next + 1 : p + strlen(p);
        } else if (ch == '/' && p[1] == '*') {
            sig = 0;
            int depth = 1; /* PostgreSQL nests block comments; MySQL does not */
            for (next = p + 2; *next && depth; next++) {
                if (pg && next[0] == '/' && next[1] == '*')
                    depth++, next++;
                else if (next[0] == '*' && next[1] == '/')
                    depth--, next++;
            }
        } else if (ch == '$' && pg) {
            if (p[1] >= '0' && p[1] <= '9') {
                st = sf_fail(err, SF_ERR_SOURCE,
                             "query has a positional parameter ($%c...); name it, e.g. :site, "
                             "and pass --param site=VALUE", p[1]);
                goto done;
            }
            next = skip_dollar(p);
            if (next == p)
                next = p + 1;
        } else if (ch == '?' && !pg) {
            st = sf_fail(err, SF_ERR_SOURCE, "query has a positional parameter (?); name it, "
                                             "e.g. :site, and pass --param site=VALUE");
            goto done;
        } else if (ch == ':' && p[1] == ':') {
            next = p + 2; /* a PostgreSQL cast */
        } else if (ch == ':' && name_start(p[1])) {
            const char *nm = p + 1, *e = nm;
            while (name_char(*e))
                e++;
            FLUSH(p);
            char ph[16];
            if (pg) {
                int k;
                for (k = 0; k < rw->nplaceholders; k++)
                    if (strlen(rw->names[k]) == (size_t)(e - nm) && !strncmp(rw->names[k], nm, (size_t)(e - nm)))
                        break;
                if (k == rw->nplaceholders && (st = add_name(c, rw, nm, (size_t)(e - nm), err)) != SF_OK)
                    goto done;
                snprintf(ph, sizeof ph, "$%d", k + 1);
            } else {
                if ((st = add_name(c, rw, nm, (size_t)(e - nm), err)) != SF_OK)
                    goto done;
                snprintf(ph, sizeof ph, "?");
            }
            if (sf_buf_append(&out, ph, strlen(ph)) != 0) {
                st = sf_fail(err, SF_ERR_NOMEM, "out of memory");
                goto done;
            }
            run = next = e;
        }
        if (!next) {
            st = sf_fail(err, SF_ERR_SOURCE, "query has an unterminated %s",
                         ch == '\'' ? "string" : ch == '$' ? "dollar-quoted string"
                                                           : "quoted identifier");
            goto done;
        }
        if (sig)
            sig_out = out.len + (size_t)(next - run);
        p = next;
    }
    FLUSH(p);
    /* One statement: what follows its last token (blanks, ';', comments)
     * would end a wrapper such as DECLARE ... FOR (...) or SELECT count(*)
     * FROM (...) early, or comment its closing parenthesis out. */
    if (out.data && sig_out < out.len) {
        out.len = sig_out;
        out.data[out.len] = '\0';
    }
    rw->sql = out.data ? out.data : sf_strdup(c, SF_MEM_SOURCE, "");
    if (!rw->sql)
        st = sf_fail(err, SF_ERR_NOMEM, "out of memory");
    return st;
done:
    sf_buf_free(&out);
    sf_sql_rewrite_free(c, rw);
    return st;
#undef FLUSH
}

sf_status sf_sql_wrap(sf_census *c, const char *head, const char *sql, const char *tail,
                      sf_buf *out, sf_errbuf *err)
{
    sf_buf_init(out, c, SF_MEM_SOURCE);
    if (sf_buf_append(out, head, strlen(head)) != 0 || sf_buf_append(out, sql, strlen(sql)) != 0 ||
        sf_buf_append(out, tail, strlen(tail)) != 0) {
        sf_buf_free(out);
        return sf_fail(err, SF_ERR_NOMEM, "out of memory");
    }
    return SF_OK;
}

void sf_sql_rewrite_free(sf_census *c, sf_sql_rewrite *rw)
{
    for (int i = 0; i < rw->nplaceholders; i++)
        sf_dealloc(c, rw->names[i]);
    sf_dealloc(c, rw->names);
    sf_dealloc(c, rw->sql);
    memset(rw, 0, sizeof *rw);
}
