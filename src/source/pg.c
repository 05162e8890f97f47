/* pg.c: the PostgreSQL backend (libpq).
 *
 * Rows stream one of two ways, both inside BEGIN ISOLATION LEVEL REPEATABLE
 * READ READ ONLY:
 *  - single-row mode (the default): the query is sent once and the server
 *    streams while we render; libpq hands over one PGresult per row. Client
 *    memory is one row plus libpq's input buffer.
 *  - a cursor (pg_mode "cursor", the CLI's --fetch-size): DECLARE ... NO
 *    SCROLL CURSOR FOR <query>, then FETCH FORWARD n until none is left;
 *    memory is one batch of n rows; cursor_tuple_fraction = 1 plans for the
 *    whole result. Each FETCH is a round trip in which client and server
 *    take turns, which is why it is not the default: on 200,000 rows of the
 *    reference feed it took 2.84 s and 13.6 MiB against 1.60 s and 11.2 MiB
 *    for single-row mode (docs/source.md).
 *
 * Parameters are bound by the server (PQexecParams with $n placeholders, made
 * from :name by sf_sql_rewrite_params), never pasted into the text. The
 * session is pinned so text does not depend on server settings: UTF8 client
 * encoding, ISO dates, UTC (unless PGTZ says otherwise), hex bytea.
 * Connections set keepalives and a TCP user timeout, so a peer that silently
 * dies ends the render instead of hanging it. */
#include <dlfcn.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"
#include "sqltext.h"

/* Type OIDs whose text reads as a number, or a boolean. */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_FLOAT4 = 700,
       OID_FLOAT8 = 701, OID_NUMERIC = 1700 };

/* libpq is loaded when a PostgreSQL URL is opened, not linked: its
 * dependencies (TLS, Kerberos, LDAP) would otherwise cost every run, SQLite
 * ones included, some 5 MiB of RSS. The functions live in the source's state
 * (no globals); PQ.f(...) calls through it. */
#define PQ_FUNCS(X) \
    X(PQconnectdbParams) \
    X(PQstatus) \
    X(PQerrorMessage) \
    X(PQgetCancel) \
    X(PQexec) \
    X(PQresultStatus) \
    X(PQclear) \
    X(PQresultErrorMessage) \
    X(PQprepare) \
    X(PQdescribePrepared) \
    X(PQnfields) \
    X(PQfname) \
    X(PQftype) \
    X(PQresultErrorField) \
    X(PQresultMemorySize) \
    X(PQntuples) \
    X(PQexecParams) \
    X(PQsendQueryParams) \
    X(PQsetSingleRowMode) \
    X(PQgetResult) \
    X(PQgetisnull) \
    X(PQgetvalue) \
    X(PQgetlength) \
    X(PQcancel) \
    X(PQfreeCancel) \
    X(PQfinish) \

typedef struct pq_api {
    void *lib;
#define PQ_FIELD(f) __typeof__(f) *f;
    PQ_FUNCS(PQ_FIELD)
#undef PQ_FIELD
} pq_api;

typedef struct pg_impl {
    pq_api api;
    PGconn *conn;
    PGcancel *cancel; /* PQcancel is safe in a signal handler */
    atomic_int cancelled;
    char where[512]; /* the URL with the password masked, for messages */
    sf_sql_rewrite rw;
    const char **values; /* per $n */
    int *lengths;
    Oid *types;          /* per column */
    PGresult *batch;     /* the current FETCH */
    int64_t batch_bytes; /* accounted in the census as driver memory */
    int row, nrows;
    int started, finished;
    int single; /* single-row mode instead of a cursor */
} pg_impl;

#define IMPL(s) ((pg_impl *)(s)->impl)
/* Every libpq call goes through the table loaded for the source in scope. */
#define PQ (IMPL(s)->api)

static sf_status pq_load(sf_source *s, pq_api *a)
{
    sf_status st = sf_source_dlopen(s, "libpq.so.5", "PostgreSQL needs libpq (Debian package libpq5)", &a->lib);
#define PQ_LOAD(f)                                                                         \
    if (st == SF_OK)                                                                         \
        st = sf_source_dlsym(s, a->lib, "libpq.so.5", #f, (void **)&a->f);
    PQ_FUNCS(PQ_LOAD)
#undef PQ_LOAD
    return st;
}

static const char *const conninfo_keys[] = {"host=", "hostaddr=", "port=", "dbname=", "user=",
                                            "service=", "sslmode=", NULL};

static int pg_accepts(const char *db)
{
    if (!strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11))
        return 1;
    for (size_t i = 0; conninfo_keys[i]; i++) /* a conninfo string */
        if (!strncmp(db, conninfo_keys[i], strlen(conninfo_keys[i])))
            return 1;
    return 0;
}

/* The first line of a libpq message, without "ERROR:  " and the newline. */
static void first_line(const char *msg, char *buf, size_t n)
{
    if (!msg || !*msg)
        msg = "unknown error";
    if (!strncmp(msg, "ERROR:  ", 8))
        msg += 8;
    else if (!strncmp(msg, "FATAL:  ", 8))
        msg += 8;
    size_t len = strcspn(msg, "\n");
    snprintf(buf, n, "%.*s", (int)len, msg);
}

static sf_status pg_fail(sf_source *s, const char *what, const char *msg)
{
    char line[600];
    first_line(msg, line, sizeof line);
    pg_impl *q = IMPL(s);
    if (atomic_load(&q->cancelled))
        return sf_fail(&s->err, SF_ERR_SOURCE, "postgresql: cancelled (%s)", line);
    return sf_fail(&s->err, SF_ERR_SOURCE, "postgresql: %s%s%s", what, *what ? ": " : "", line);
}

/* Runs a command that returns no rows; 0, or -1 with s->err set. */
static int exec_ok(sf_source *s, const char *sql)
{
    pg_impl *q = IMPL(s);
    PGresult *r = PQ.PQexec(q->conn, sql);
    int ok = PQ.PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        pg_fail(s, "", r ? PQ.PQresultErrorMessage(r) : PQ.PQerrorMessage(q->conn));
    PQ.PQclear(r);
    return ok ? 0 : -1;
}

static sf_status pg_open(sf_source *s, const char *db)
{
    pg_impl *q = sf_calloc(s->cref.census, SF_MEM_SOURCE, 1, sizeof *q);
    if (!q)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    s->impl = q;
    sf_db_mask(db, q->where, sizeof q->where);
    sf_status lst = pq_load(s, &q->api);
    if (lst != SF_OK)
        return lst;
    /* Our defaults first: with expand_dbname, what the URL or conninfo says
     * overrides them, and libpq's PG* variables and .pgpass still apply. */
    const char *keys[] = {"connect_timeout", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                          "client_encoding", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "1", "30", "10", "3", "60000", "UTF8", "sqlfeed", db, NULL};
    q->conn = PQ.PQconnectdbParams(keys, vals, 1);
    if (!q->conn)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    if (PQ.PQstatus(q->conn) != CONNECTION_OK) {
        char line[600];
        /* libpq's message may span lines ("connection to server at ... failed:
         * FATAL: ..."): keep it all on one. */
        const char *m = PQ.PQerrorMessage(q->conn);
        size_t o = 0;
        for (; *m && o + 1 < sizeof line; m++) {
            char ch = *m == '\n' || *m == '\t' ? ' ' : *m;
            if (ch != ' ' || (o && line[o - 1] != ' '))
                line[o++] = ch;
        }
        while (o && line[o - 1] == ' ')
            o--;
        line[o] = '\0';
        return sf_fail(&s->err, SF_ERR_SOURCE, "cannot connect to %s: %s", q->where, line);
    }
    q->cancel = PQ.PQgetCancel(q->conn);
    q->single = s->opts.pg_single_row;
    char setup[512];
    snprintf(setup, sizeof setup,
             "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex';"
             " SET extra_float_digits = 1; SET cursor_tuple_fraction = 1;"
             " SET statement_timeout = %d;%s",
             s->opts.timeout * 1000, getenv("PGTZ") ? "" : " SET TimeZone = 'UTC';");
    PGresult *r = PQ.PQexec(q->conn, setup);
    int ok = PQ.PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        pg_fail(s, "setting up the session", PQ.PQresultErrorMessage(r));
    PQ.PQclear(r);
    return ok ? SF_OK : SF_ERR_SOURCE;
}

typedef struct colname_ud {
    const pq_api *api;
    const PGresult *res;
} colname_ud;

static const char *pg_colname(void *ud, int i)
{
    const colname_ud *c = ud;
    return c->api->PQfname(c->res, i);
}

static sf_status pg_prepare(sf_source *s, const char *sql)
{
    pg_impl *q = IMPL(s);
    sf_census *cs = s->cref.census;
    sf_status st = sf_sql_rewrite_params(cs, SF_SQL_POSTGRES, sql, &q->rw, &s->err);
    if (st != SF_OK)
        return st;
    /* Describe without running: the columns are known before any row. */
    PGresult *r = PQ.PQprepare(q->conn, "", q->rw.sql, q->rw.nplaceholders, NULL);
    if (PQ.PQresultStatus(r) != PGRES_COMMAND_OK) {
        st = pg_fail(s, "query", PQ.PQresultErrorMessage(r));
        PQ.PQclear(r);
        return st;
    }
    PQ.PQclear(r);
    r = PQ.PQdescribePrepared(q->conn, "");
    if (PQ.PQresultStatus(r) != PGRES_COMMAND_OK) {
        st = pg_fail(s, "query", PQ.PQresultErrorMessage(r));
        PQ.PQclear(r);
        return st;
    }
    int n = PQ.PQnfields(r);
    if (n == 0) {
        PQ.PQclear(r);
        return sf_fail(&s->err, SF_ERR_SOURCE, "query returns no columns; give a SELECT");
    }
    colname_ud cu = {&q->api, r};
    st = sf_source_set_columns(s, n, pg_colname, &cu);
    q->types = st == SF_OK ? sf_calloc(cs, SF_MEM_SOURCE, (size_t)n, sizeof *q->types) : NULL;
    if (st == SF_OK && !q->types)
        st = sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    for (int i = 0; st == SF_OK && i < n; i++)
        q->types[i] = PQ.PQftype(r, i);
    PQ.PQclear(r);
    if (st != SF_OK)
        return st;
    int np = q->rw.nplaceholders;
    q->values = sf_calloc(cs, SF_MEM_SOURCE, (size_t)np + 1, sizeof *q->values);
    q->lengths = sf_calloc(cs, SF_MEM_SOURCE, (size_t)np + 1, sizeof *q->lengths);
    if (!q->values || !q->lengths)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < np; i++)
        if ((st = sf_source_add_param(s, q->rw.names[i], strlen(q->rw.names[i]))) != SF_OK)
            return st;
    return SF_OK;
}

static sf_status pg_bind(sf_source *s, int i, const char *value, size_t len)
{
    pg_impl *q = IMPL(s);
    if (len > INT32_MAX)
        return sf_fail(&s->err, SF_ERR_SOURCE, "parameter :%s is too long", s->paramnames[i]);
    q->values[i] = value; /* $(i+1): distinct names map one to one */
    q->lengths[i] = (int)len;
    return SF_OK;
}

/* A failed result: the server's error, or, when the connection is gone (the
 * backend killed, the network down), says so and names the server. */
static void lost_or_failed(sf_source *s, const PGresult *r)
{
    pg_impl *q = IMPL(s);
    const char *msg = r && *PQ.PQresultErrorMessage(r) ? PQ.PQresultErrorMessage(r) : PQ.PQerrorMessage(q->conn);
    const char *sev = r ? PQ.PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
    const char *state = r ? PQ.PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    /* Gone: libpq says so, or the server ended the session (FATAL: the
     * backend terminated, shut down), or a connection exception (08xxx). */
    int gone = PQ.PQstatus(q->conn) == CONNECTION_BAD || (sev && !strcmp(sev, "FATAL")) ||
               (state && (!strncmp(state, "08", 2) || !strncmp(state, "57P0", 4)));
    if (gone && !atomic_load(&q->cancelled)) {
        char line[600];
        first_line(msg, line, sizeof line);
        sf_fail(&s->err, SF_ERR_SOURCE, "postgresql: lost the connection to %s: %s", q->where, line);
    } else {
        pg_fail(s, "", msg);
    }
}

static void drop_batch(sf_source *s)
{
    pg_impl *q = IMPL(s);
    if (q->batch) {
        sf_census_account(s->cref.census, SF_MEM_DRIVER, -1, -q->batch_bytes);
        PQ.PQclear(q->batch);
        q->batch = NULL;
        q->batch_bytes = 0;
    }
}

static int fetch_batch(sf_source *s)
{
    pg_impl *q = IMPL(s);
    char sql[96];
    drop_batch(s);
    snprintf(sql, sizeof sql, "FETCH FORWARD %d FROM sqlfeed_rows", s->opts.fetch_size);
    PGresult *r = PQ.PQexec(q->conn, sql);
    if (PQ.PQresultStatus(r) != PGRES_TUPLES_OK) {
        lost_or_failed(s, r);
        PQ.PQclear(r);
        return -1;
    }
    q->batch = r;
    q->batch_bytes = (int64_t)PQ.PQresultMemorySize(r);
    sf_census_account(s->cref.census, SF_MEM_DRIVER, 1, q->batch_bytes);
    q->nrows = PQ.PQntuples(r);
    q->row = -1;
    return 0;
}

/* Single-row mode: one PGresult per row, the server streaming meanwhile. */
static int single_next(sf_source *s)
{
    pg_impl *q = IMPL(s);
    drop_batch(s);
    if (!q->started) {
        q->started = 1;
        if (exec_ok(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
            return -1;
        if (!PQ.PQsendQueryParams(q->conn, q->rw.sql, q->rw.nplaceholders, NULL, q->values,
                               q->lengths, NULL, 0) ||
            !PQ.PQsetSingleRowMode(q->conn)) {
            pg_fail(s, "", PQ.PQerrorMessage(q->conn));
            return -1;
        }
    }
    PGresult *r = PQ.PQgetResult(q->conn);
    ExecStatusType rs = PQ.PQresultStatus(r);
    if (rs == PGRES_SINGLE_TUPLE) {
        q->batch = r;
        q->batch_bytes = (int64_t)PQ.PQresultMemorySize(r);
        sf_census_account(s->cref.census, SF_MEM_DRIVER, 1, q->batch_bytes);
        q->row = 0;
        q->nrows = 1;
        return 1;
    }
    int ok = rs == PGRES_TUPLES_OK;
    if (!ok)
        lost_or_failed(s, r);
    PQ.PQclear(r);
    while ((r = PQ.PQgetResult(q->conn)) != NULL) /* the end of the query */
        PQ.PQclear(r);
    q->finished = 1;
    if (!ok)
        return -1;
    return exec_ok(s, "COMMIT") == 0 ? 0 : -1;
}

static int pg_next(sf_source *s)
{
    pg_impl *q = IMPL(s);
    if (q->finished)
        return 0;
    if (q->single)
        return single_next(s);
    if (!q->started) {
        q->started = 1;
        if (exec_ok(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
            return -1;
        sf_buf decl;
        if (sf_sql_wrap(s->cref.census, "DECLARE sqlfeed_rows NO SCROLL CURSOR FOR ", q->rw.sql,
                        "", &decl, &s->err) != SF_OK)
            return -1;
        PGresult *r = PQ.PQexecParams(q->conn, decl.data, q->rw.nplaceholders, NULL, q->values,
                                   q->lengths, NULL, 0);
        sf_buf_free(&decl);
        int ok = PQ.PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            pg_fail(s, "", PQ.PQresultErrorMessage(r));
        PQ.PQclear(r);
        if (!ok || fetch_batch(s) != 0)
            return -1;
    }
    if (++q->row < q->nrows)
        return 1;
    if (q->nrows == 0)
        goto end;
    if (fetch_batch(s) != 0)
        return -1;
    if (++q->row < q->nrows)
        return 1;
end:
    drop_batch(s);
    q->finished = 1;
    return exec_ok(s, "COMMIT") == 0 ? 0 : -1;
}

static int numeric_zero(const char *v)
{
    char *end;
    double d = strtod(v, &end);
    return end != v && d == 0.0;
}

static void pg_column(sf_source *s, int i, sf_val *out)
{
    pg_impl *q = IMPL(s);
    if (PQ.PQgetisnull(q->batch, q->row, i)) {
        out->kind = SF_VAL_NULL;
        out->truthy = 0;
        out->s = "";
        out->n = 0;
        return;
    }
    out->kind = SF_VAL_TEXT;
    out->s = PQ.PQgetvalue(q->batch, q->row, i);
    out->n = (size_t)PQ.PQgetlength(q->batch, q->row, i);
    switch (q->types[i]) {
    case OID_BOOL: out->truthy = out->s[0] == 't'; break;
    case OID_INT2: case OID_INT4: case OID_INT8:
    case OID_FLOAT4: case OID_FLOAT8: case OID_NUMERIC:
        out->truthy = !numeric_zero(out->s);
        break;
    default: out->truthy = out->n > 0; break;
    }
}

static sf_status pg_count(sf_source *s, const char *const *values, uint64_t *rows)
{
    pg_impl *q = IMPL(s);
    sf_buf sql;
    if (sf_sql_wrap(s->cref.census, SF_SQL_COUNT_HEAD, q->rw.sql, SF_SQL_COUNT_TAIL, &sql,
                    &s->err) != SF_OK)
        return SF_ERR_NOMEM;
    PGresult *r = PQ.PQexecParams(q->conn, sql.data, q->rw.nplaceholders, NULL, values, NULL, NULL, 0);
    sf_buf_free(&sql);
    sf_status st = SF_OK;
    if (PQ.PQresultStatus(r) == PGRES_TUPLES_OK && PQ.PQntuples(r) == 1)
        *rows = strtoull(PQ.PQgetvalue(r, 0, 0), NULL, 10);
    else
        st = pg_fail(s, "counting", PQ.PQresultErrorMessage(r));
    PQ.PQclear(r);
    return st;
}

static void pg_interrupt(sf_source *s)
{
    pg_impl *q = IMPL(s);
    if (!q || !q->cancel)
        return;
    atomic_store(&q->cancelled, 1);
    char err[256];
    PQ.PQcancel(q->cancel, err, (int)sizeof err); /* async-signal-safe, per libpq's docs */
}

static void pg_close(sf_source *s)
{
    pg_impl *q = IMPL(s);
    if (!q)
        return;
    sf_census *cs = s->cref.census;
    drop_batch(s);
    if (q->cancel)
        PQ.PQfreeCancel(q->cancel);
    if (q->conn)
        PQ.PQfinish(q->conn); /* ends the transaction and the cursor with it */
    if (q->api.lib)
        dlclose(q->api.lib);
    sf_sql_rewrite_free(cs, &q->rw);
    sf_dealloc(cs, q->values);
    sf_dealloc(cs, q->lengths);
    sf_dealloc(cs, q->types);
    sf_dealloc(cs, q);
    s->impl = NULL;
}

const sf_source_vt sf_source_pg = {
    .name = "postgresql",
    .accepts = pg_accepts,
    .open = pg_open,
    .prepare = pg_prepare,
    .bind = pg_bind,
    .next_row = pg_next,
    .column = pg_column,
    .count = pg_count,
    .interrupt = pg_interrupt,
    .close = pg_close,
};
