/* sqlite.c: the SQLite backend. The database opens read-only; rows come one
 * sqlite3_step() at a time, so memory is the page cache plus one row. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "source.h"
#include "sqltext.h"

typedef struct sqlite_impl {
    sqlite3 *db;
    sqlite3_stmt *stmt;
    char (*num)[40]; /* per column: text of an INTEGER or REAL value */
} sqlite_impl;

#define IMPL(s) ((sqlite_impl *)(s)->impl)

/* SQLite out of memory is the library's SF_ERR_NOMEM, whatever it hit. */
static sf_status sq_status(sqlite3 *db, int rc)
{
    int code = (db ? sqlite3_errcode(db) : rc) & 0xff;
    return code == SQLITE_NOMEM || (rc & 0xff) == SQLITE_NOMEM ? SF_ERR_NOMEM : SF_ERR_SOURCE;
}

static int sq_accepts(const char *db)
{
    return strstr(db, "://") == NULL || strncmp(db, "file:", 5) == 0;
}

static sf_status sq_open(sf_source *s, const char *db)
{
    sqlite_impl *q = sf_calloc(s->cref.census, SF_MEM_SOURCE, 1, sizeof *q);
    if (!q)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    s->impl = q;
    /* One connection, used by one thread: no mutex on every column read. */
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
    char name[512]; /* never a password, but a file: URI may hold anything */
    sf_db_mask(db, name, sizeof name);
    int rc = sqlite3_open_v2(db, &q->db, flags, NULL);
    if (rc != SQLITE_OK) {
        /* Say why in the system's words (no such file, permission denied,
         * is a directory) rather than "unable to open database file". */
        int e = q->db ? sqlite3_system_errno(q->db) : 0;
        struct stat sb;
        if (strncmp(db, "file:", 5) != 0) {
            if (stat(db, &sb) != 0)
                e = errno;
            else if (S_ISDIR(sb.st_mode))
                e = EISDIR;
        }
        if ((rc & 0xff) != SQLITE_NOMEM && e)
            return sf_fail(&s->err, SF_ERR_SOURCE, "cannot open database %s: %s", name,
                           strerror(e));
        return sf_fail(&s->err, sq_status(q->db, rc), "cannot open database %s: %s", name,
                       q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
    }
    sqlite3_extended_result_codes(q->db, 1);
    /* A writer holding a lock briefly should not fail a nightly job. */
    sqlite3_busy_timeout(q->db, 5000);
    /* Opening is lazy: read the schema now, so that a file that is not a
     * database is reported as such, naming the file. */
    char *err = NULL;
    rc = sqlite3_exec(q->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        sf_status st = sq_status(q->db, rc);
        int e = sqlite3_system_errno(q->db);
        sf_fail(&s->err, st, "cannot read database %s: %s%s%s", name,
                err ? err : sqlite3_errmsg(q->db), e && st != SF_ERR_NOMEM ? ": " : "",
                e && st != SF_ERR_NOMEM ? strerror(e) : "");
        sqlite3_free(err);
        return st;
    }
    /* A cache that holds a join's lookup pages beside the streaming ones
     * (SF_SQLITE_CACHE_KIB); through the census like all of SQLite's memory. */
    char pragma[48];
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%d",
             s->opts.sqlite_cache ? s->opts.sqlite_cache : SF_SQLITE_CACHE_KIB);
    rc = sqlite3_exec(q->db, pragma, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sf_fail(&s->err, sq_status(q->db, rc), "cannot set the page cache of %s: %s",
                       name, sqlite3_errmsg(q->db));
    return SF_OK;
}

/* Whether sql[0..) holds nothing but blanks, semicolons and comments: 1,
 * 0, or -1 when SQLite ran out of memory finding out. */
static int only_trailer(sqlite3 *db, const char *sql)
{
    while (*sql) {
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
        if ((rc & 0xff) == SQLITE_NOMEM)
            return -1;
        if (rc != SQLITE_OK)
            return 0;
        if (st) {
            sqlite3_finalize(st);
            return 0;
        }
        if (!tail || tail == sql)
            break;
        sql = tail;
    }
    return 1;
}

static const char *sq_colname(void *ud, int i) { return sqlite3_column_name(ud, i); }

static sf_status sq_prepare(sf_source *s, const char *sql)
{
    sqlite_impl *q = IMPL(s);
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(q->db, sql, -1, 0, &q->stmt, &tail);
    if (rc != SQLITE_OK)
        return sf_fail(&s->err, sq_status(q->db, rc), "query: %s", sqlite3_errmsg(q->db));
    if (!q->stmt)
        return sf_fail(&s->err, SF_ERR_SOURCE, "query is empty");
    int trailer = tail ? only_trailer(q->db, tail) : 1;
    if (trailer < 0)
        return sf_fail(&s->err, SF_ERR_NOMEM, "query: out of memory");
    if (!trailer)
        return sf_fail(&s->err, SF_ERR_SOURCE,
                       "query holds more than one statement; give exactly one SELECT");
    if (!sqlite3_stmt_readonly(q->stmt))
        return sf_fail(&s->err, SF_ERR_SOURCE, "query is not read-only; give a SELECT");
    int n = sqlite3_column_count(q->stmt);
    if (n == 0)
        return sf_fail(&s->err, SF_ERR_SOURCE, "query returns no columns");
    sf_status st = sf_source_set_columns(s, n, sq_colname, q->stmt);
    if (st != SF_OK)
        return st;
    q->num = sf_calloc(s->cref.census, SF_MEM_ROW, (size_t)n, sizeof *q->num);
    if (!q->num)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    int np = sqlite3_bind_parameter_count(q->stmt);
    for (int i = 1; i <= np; i++) {
        const char *name = sqlite3_bind_parameter_name(q->stmt, i);
        if (!name || !name[1] || name[0] == '?')
            return sf_fail(&s->err, SF_ERR_SOURCE,
                           "query parameter %d is positional (?); name it, e.g. :site, "
                           "and pass --param site=VALUE",
                           i);
        if ((st = sf_source_add_param(s, name + 1, strlen(name + 1))) != SF_OK)
            return st;
    }
    return SF_OK;
}

static sf_status sq_bind(sf_source *s, int i, const char *value, size_t len)
{
    sqlite_impl *q = IMPL(s);
    if (len > (size_t)INT32_MAX)
        return sf_fail(&s->err, SF_ERR_SOURCE, "parameter :%s is too long",
                       s->paramnames[i]);
    int rc = sqlite3_bind_text(q->stmt, i + 1, value, (int)len, SQLITE_STATIC);
    if (rc != SQLITE_OK)
        return sf_fail(&s->err, sq_status(q->db, rc), "binding :%s: %s", s->paramnames[i],
                       sqlite3_errmsg(q->db));
    return SF_OK;
}

static int sq_next(sf_source *s)
{
    sqlite_impl *q = IMPL(s);
    int rc = sqlite3_step(q->stmt);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    s->row_fail = sf_fail(&s->err, sq_status(q->db, rc), "sqlite: %s", sqlite3_errmsg(q->db));
    return -1;
}

static void sq_column(sf_source *s, int i, sf_val *out)
{
    sqlite_impl *q = IMPL(s);
    sqlite3_stmt *st = q->stmt;
    out->kind = SF_VAL_TEXT;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        out->kind = SF_VAL_NULL;
        out->truthy = 0;
        out->s = "";
        out->n = 0;
        return;
    case SQLITE_INTEGER: {
        sqlite3_int64 v = sqlite3_column_int64(st, i);
        out->n = sf_format_i64(q->num[i], v);
        out->s = q->num[i];
        out->truthy = v != 0;
        return;
    }
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, i);
        /* SQLite's own text form of a REAL, as sqlite3_column_text gives. */
        sqlite3_snprintf((int)sizeof q->num[i], q->num[i], "%!.15g", d);
        out->s = q->num[i];
        out->n = strlen(q->num[i]);
        out->truthy = d != 0.0;
        return;
    }
    case SQLITE_BLOB:
        out->s = sqlite3_column_blob(st, i);
        out->n = (size_t)sqlite3_column_bytes(st, i);
        break;
    default:
        out->s = (const char *)sqlite3_column_text(st, i);
        out->n = (size_t)sqlite3_column_bytes(st, i);
        break;
    }
    if (!out->s)
        out->s = "", out->n = 0;
    out->truthy = out->n > 0;
}

/* SELECT count(*) over the statement's own text (sqlite3_sql: without a
 * trailing ';' or a second statement), on its own prepared statement. */
/* A query over the prepared one (source.h), in the read transaction the
 * rows are then read in: BEGIN here, ended when the connection closes, so a
 * writer between a count or a shard plan and the rows changes neither. */
static sf_status sq_query_text(sf_source *s, const char *what, const char *head, const char *tail,
                               const char *const *values,
                               int (*fn)(void *ud, int ncols, const char *const *vals), void *ud)
{
    sqlite_impl *q = IMPL(s);
    int rc = SQLITE_OK;
    if (sqlite3_get_autocommit(q->db))
        rc = sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sf_fail(&s->err, sq_status(q->db, rc), "sqlite: %s: %s", what, sqlite3_errmsg(q->db));
    /* The query's text as given: what follows its last token (blanks, ';')
     * would end the subquery early; a trailing comment ends at the newline
     * the tails start with. */
    const char *sql0 = s->shard_base ? s->shard_base : sqlite3_sql(q->stmt);
    size_t len = strlen(sql0);
    while (len && strchr(" \t\r\n\f\v;", sql0[len - 1]))
        len--;
    sqlite3_str *str = sqlite3_str_new(q->db);
    sqlite3_str_appendf(str, "%s%.*s%s", head, (int)len, sql0, tail);
    char *sql = sqlite3_str_finish(str);
    if (!sql)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    sqlite3_free(sql);
    for (int i = 0; rc == SQLITE_OK && i < s->nparams; i++) {
        char name[256];
        snprintf(name, sizeof name, ":%s", s->paramnames[i]);
        int idx = sqlite3_bind_parameter_index(st, name);
        for (const char *pre = "@$"; !idx && *pre; pre++) {
            name[0] = *pre;
            idx = sqlite3_bind_parameter_index(st, name);
        }
        if (idx)
            rc = sqlite3_bind_text(st, idx, values[i], -1, SQLITE_STATIC);
    }
    sf_status ret = SF_OK;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        if ((rc = sqlite3_step(st)) != SQLITE_ROW)
            break;
        int n = sqlite3_column_count(st);
        const char *vals[8];
        char text[8][64];
        if (n > 8)
            n = 8;
        for (int i = 0; i < n; i++) {
            int type = sqlite3_column_type(st, i);
            if (type == SQLITE_NULL) {
                vals[i] = NULL;
                continue;
            }
            if (type == SQLITE_INTEGER) { /* no conversion, nothing allocated */
                sf_format_i64(text[i], (int64_t)sqlite3_column_int64(st, i));
                vals[i] = text[i];
                continue;
            }
            const unsigned char *t = sqlite3_column_text(st, i);
            if (!t) {
                sqlite3_finalize(st);
                return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
            }
            if (t && strlen((const char *)t) >= sizeof text[i]) {
                sqlite3_finalize(st);
                return sf_fail(&s->err, SF_ERR_SOURCE, "sqlite: a value over 63 bytes: '%.40s...'",
                               (const char *)t);
            }
            vals[i] = t ? strcpy(text[i], (const char *)t) : NULL;
        }
        if (fn(ud, n, vals)) {
            ret = SF_ERR_ARG;
            break;
        }
    }
    if (ret == SF_OK && rc != SQLITE_DONE)
        ret = sf_fail(&s->err, sq_status(q->db, rc), "sqlite: %s", sqlite3_errmsg(q->db));
    (void)what; /* SQLite's own message says what failed */
    sqlite3_finalize(st);
    return ret;
}

static void sq_interrupt(sf_source *s)
{
    sqlite_impl *q = IMPL(s);
    if (q && q->db)
        sqlite3_interrupt(q->db);
}

static void sq_close(sf_source *s)
{
    sqlite_impl *q = IMPL(s);
    if (!q)
        return;
    s->impl = NULL; /* first: a signal handler (sq_interrupt) reads it */
    sqlite3_finalize(q->stmt);
    sqlite3_close_v2(q->db);
    sf_dealloc(s->cref.census, q->num);
    sf_dealloc(s->cref.census, q);
}

static const char *sq_file(const sf_source *s)
{
    const sqlite_impl *q = IMPL(s);
    const char *f = q->db ? sqlite3_db_filename(q->db, "main") : NULL;
    return f && *f ? f : NULL;
}

const sf_source_vt sf_source_sqlite = {
    .name = "sqlite",
    .accepts = sq_accepts,
    .open = sq_open,
    .prepare = sq_prepare,
    .bind = sq_bind,
    .query_text = sq_query_text,
    .next_row = sq_next,
    .column = sq_column,
    .interrupt = sq_interrupt,
    .file = sq_file,
    .close = sq_close,
};
