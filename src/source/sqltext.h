/* sqltext.h: what server backends need from a query's text: named
 * parameters rewritten into the server's own placeholders (so values are
 * bound by the server, never pasted into SQL), and the secrets of a --db
 * string. Internal. */
#ifndef SF_SQLTEXT_H
#define SF_SQLTEXT_H

#include "../common.h"

typedef enum sf_sql_dialect {
    SF_SQL_POSTGRES, /* $1, $2 ...; '...' (E'...' backslashes), "...", $tag$...$tag$, :: */
    SF_SQL_MYSQL     /* ?; '...' and "..." with backslash escapes, `...`, # comments */
} sf_sql_dialect;

/* Rewrites each `:name` outside strings, identifiers and comments
 * (PostgreSQL's `::type` casts excluded) into the dialect's placeholder. names[] gets one entry per placeholder, in order
 * (a name used twice appears twice for '?', once for '$n' which repeats the
 * number). *out is census memory (SF_MEM_SOURCE); names point into it.
 * Positional '?' (MySQL) or '$1' (PostgreSQL) in the text are refused:
 * returns SF_ERR_SOURCE with a message in err. */
typedef struct sf_sql_rewrite {
    char *sql;           /* rewritten text */
    char **names;        /* per placeholder: the parameter name */
    int nplaceholders;   /* '?' count (MySQL) or distinct names (PostgreSQL) */
} sf_sql_rewrite;

sf_status sf_sql_rewrite_params(sf_census *c, sf_sql_dialect d, const char *sql,
                                sf_sql_rewrite *out, sf_errbuf *err);
void sf_sql_rewrite_free(sf_census *c, sf_sql_rewrite *rw);

/* head + sql + tail into *out (census memory); e.g. the count query
 * SF_SQL_COUNT_HEAD + rw.sql + SF_SQL_COUNT_TAIL. The rewritten text ends at
 * its last token (no trailing blanks, ";" or comments), so it can be wrapped
 * as it is. */
#define SF_SQL_COUNT_HEAD "SELECT count(*) FROM (\n"
#define SF_SQL_COUNT_TAIL "\n) AS sqlfeed_count"
sf_status sf_sql_wrap(sf_census *c, const char *head, const char *sql, const char *tail,
                      sf_buf *out, sf_errbuf *err);

/* Secrets of a --db string (secret.c; the public sf_db_hide_secrets and
 * sf_db_mask in sqlfeed.h). sf_db_scrub copies a client library's message
 * into buf (n bytes, NUL-terminated) with every secret of db removed: its
 * text as written and as decoded, the whole string in its masked form, and
 * any quoted fragment ("..." or '...') of db that reaches into a secret.
 * sf_db_has_secret: 1 when `value` is what one of db's secrets decodes to
 * (to check a library's own parse against ours). */
void sf_db_scrub(const char *db, const char *msg, char *buf, size_t n);
int sf_db_has_secret(const char *db, const char *value);

#endif
