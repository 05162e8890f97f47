/* source.h: the source layer: a backend is a table of functions; the
 * public sf_source_* calls and the render layer go through it. Adding a
 * backend is one file with one sf_source_vt plus a line in source.c's table.
 * Internal. */
#ifndef SF_SOURCE_H
#define SF_SOURCE_H

#include <stdatomic.h>

#include "../common.h"
#include "../value.h"

typedef struct sf_source_vt {
    const char *name;
    /* 1 when this backend handles `db` (a path, URI or URL). */
    int (*accepts)(const char *db);
    sf_status (*open)(sf_source *s, const char *db);
    /* Prepares one statement and fills the columns and parameter names
     * through sf_source_set_columns() / sf_source_add_param(). */
    sf_status (*prepare)(sf_source *s, const char *sql);
    /* Binds parameter i (0-based, in sf_source_add_param order) as text;
     * the value stays valid until the rows are done. */
    sf_status (*bind)(sf_source *s, int i, const char *value, size_t len);
    /* Starts the query if needed and moves to the next row: 1 a row, 0 no
     * more, -1 error (message in s->err, without a row number; s->row_fail
     * set to SF_ERR_NOMEM when memory ran out, else left alone). */
    int (*next_row)(sf_source *s);
    /* Column i of the current row, valid until the next next_row. */
    void (*column)(sf_source *s, int i, sf_val *out);
    /* Makes a running query stop soon. Async-signal-safe. */
    void (*interrupt)(sf_source *s);
    /* Runs head + the prepared query + tail (a query over it: the count,
     * a shard's plan) with the parameters bound to values[i] (in
     * sf_source_add_param order), without disturbing the prepared query, and
     * calls fn for each row with its columns as text (NULL: SQL NULL), at most
     * 63 bytes each (longer: SF_ERR_SOURCE); fn returns nonzero to stop
     * (returned as SF_ERR_ARG). `what` names it in messages ("counting").
     * Runs in the transaction the rows are then read in (each backend's
     * REPEATABLE READ or consistent snapshot; SQLite: a read transaction
     * begun here), so a count, a shard plan and the rows see the same data. */
    sf_status (*query_text)(sf_source *s, const char *what, const char *head, const char *tail,
                            const char *const *values,
                            int (*fn)(void *ud, int ncols, const char *const *vals), void *ud);
    /* Starts the read transaction now and exports its snapshot's id into
     * buf (n bytes); NULL for backends without one (PostgreSQL only). */
    sf_status (*export_snapshot)(sf_source *s, char *buf, size_t n);
    /* The file an open source reads (absolute), or NULL (a server, memory);
     * may be NULL for backends that read no file. */
    const char *(*file)(const sf_source *s);
    void (*close)(sf_source *s);
} sf_source_vt;

/* Options set before open (sf_source_set_option). */
typedef struct sf_source_opts {
    int timeout;    /* seconds a statement may run on a server; 0: none */
    int fetch_size; /* rows per FETCH (PostgreSQL) */
    int pg_single_row; /* PostgreSQL: libpq's single-row mode, not a cursor */
    int prefetch;      /* rows come through the scan thread (prefetch.c) */
    int pf_batches;    /* batches in its ring */
    size_t pf_batch;   /* bytes of a batch */
    size_t pf_row_max; /* bytes of values a row may hold with prefetch */
    int sqlite_cache;  /* KiB of SQLite's page cache (0: SF_SQLITE_CACHE_KIB) */
    /* A sharded read (shard.c, docs/shards.md): shard shard_k of shard_n
     * (0: not sharded) by the integer column shard_key. */
    unsigned shard_k, shard_n;
    char shard_key[64];
    char snapshot[64]; /* PostgreSQL: the exported snapshot to read in ("": none) */
} sf_source_opts;

/* The most shards a render may be cut into. */
#define SF_SHARD_MAX 1024
/* The parameters a sharded query adds (reserved: no --param takes them). */
#define SF_SHARD_PARAM_ALL "sf_shard_all"
#define SF_SHARD_PARAM_LO "sf_shard_lo"
#define SF_SHARD_PARAM_HI "sf_shard_hi"

/* A shard's plan, computed in its read transaction (shard.c): the query's
 * rows, those with a NULL key, and the N-1 boundaries. */
typedef struct sf_shard_plan {
    unsigned k, n;
    uint64_t total, nulls;
    int64_t min_key, max_key; /* over the non-NULL keys (0, 0: none) */
    int64_t bounds[SF_SHARD_MAX - 1];
    char lo[24], hi[24]; /* this shard's boundaries as text, for binding */
} sf_shard_plan;

/* SQLite's page cache for the scan, in KiB. Its own default (2 MB) is too
 * small for a join whose lookup table passes 2 MB: the rows' pages streaming
 * through push the lookups' pages out, and each lookup reads its page again.
 * Reference feed at 1,000,000 rows (companies 1.8 MB): 1.39 reads a row with
 * 2 MB, 1.08 with 4 MiB (0.87 at 200,000 rows, where companies fit): see
 * docs/source.md. */
#define SF_SQLITE_CACHE_KIB 4096

/* The scan thread's ring (prefetch.c). */
typedef struct sf_prefetch sf_prefetch;

struct sf_source {
    const sf_source_vt *vt;
    sf_source_opts opts;
    /* Atomic: sf_source_cancel() reads it from a signal handler. A backend's
     * close sets it to NULL before freeing what it pointed to. */
    _Atomic(void *) impl;
    /* Set by sf_source_cancel(), never cleared: every wait of a backend
     * (connecting included) checks it, so a cancel that lands before the
     * backend's state exists is not lost. */
    atomic_int cancelled;
    sf_census_ref cref;
    sf_errbuf err;
    int ncols;
    char **colnames;
    int nparams;
    char **paramnames;
    int prepared;
    sf_status row_fail; /* next_row's -1: SF_ERR_NOMEM, or SF_OK: SF_ERR_SOURCE */
    sf_prefetch *pf;    /* with opts.prefetch, from the first row on */
    uint64_t sql_hash;  /* FNV-1a of the query as given (a shard's manifest) */
    /* A sharded source: the query as given, up to its last token, which
     * SQLite's count and plan run over (its sharded statement has no
     * every-row switch, which would keep SQLite from the key's index). */
    char *shard_base;
};

extern const sf_source_vt sf_source_sqlite;
extern const sf_source_vt sf_source_pg;
extern const sf_source_vt sf_source_mysql;

/* For backends: record the prepared query's columns and parameters. */
sf_status sf_source_set_columns(sf_source *s, int n, const char *(*name)(void *ud, int i),
                                void *ud);
sf_status sf_source_add_param(sf_source *s, const char *name, size_t len);

/* For the render layer. */
int sf_source_param_count(const sf_source *s);
const char *sf_source_param_name(const sf_source *s, int i);
sf_status sf_source_bind(sf_source *s, int i, const char *value, size_t len);
/* With opts.prefetch the rows come from the scan thread's ring: the backend
 * belongs to that thread until the rows end (prefetch.c). */
int sf_prefetch_next(sf_source *s);
void sf_prefetch_column(sf_source *s, int i, sf_val *out);
void sf_prefetch_free(sf_source *s); /* stops and joins the thread; NULL pf: nothing */
static inline int sf_source_next(sf_source *s)
{
    return s->opts.prefetch ? sf_prefetch_next(s) : s->vt->next_row(s);
}
/* The status of next_row's last -1: SF_ERR_SOURCE unless memory ran out. */
static inline sf_status sf_source_row_status(const sf_source *s)
{
    return s->row_fail == SF_ERR_NOMEM ? SF_ERR_NOMEM : SF_ERR_SOURCE;
}
static inline void sf_source_column(sf_source *s, int i, sf_val *out)
{
    if (s->pf)
        sf_prefetch_column(s, i, out);
    else
        s->vt->column(s, i, out);
}
/* sf_source_cancel(), for the render layer. */
void sf_source_interrupt(sf_source *s);
sf_status sf_source_count(sf_source *s, const char *const *values, uint64_t *rows);

/* For backends whose client library is loaded when first used (dlopen,
 * kept mapped): open it, naming what needs it in the message; resolve one
 * function into *slot. */
sf_status sf_source_dlopen(sf_source *s, const char *soname, const char *what, void **lib);
sf_status sf_source_dlsym(sf_source *s, void *lib, const char *soname, const char *name,
                          void **slot);

/* A copy of a secret (a password kept to log in again) in pages of its
 * own, marked MADV_DONTDUMP so a core dump does not hold it, counted in the
 * census as SF_MEM_SOURCE; NULL when out of memory. sf_source_secret_free
 * wipes and unmaps it (NULL: nothing). */
char *sf_source_secret_dup(sf_source *s, const char *p, size_t n);
void sf_source_secret_free(sf_source *s, char *p);

/* Sharding (shard.c). sf_source_shard_sql: the query a sharded source
 * prepares in place of `sql` (SELECT * FROM (sql) WHERE the key is in the
 * shard's range, in key order), into *out. sf_source_shard_plan: with the
 * prepared (sharded) query's parameters bound to values[] (the shard
 * parameters' own ignored), computes the plan; SF_ERR_SOURCE when the key is
 * not an integer. */
sf_status sf_source_shard_sql(sf_source *s, const char *sql, sf_buf *out);
/* The length of sql up to its last token (no trailing blanks, ';', comments). */
size_t sf_source_query_end(const sf_source *s, const char *sql);
sf_status sf_source_shard_plan(sf_source *s, const char *const *values, sf_shard_plan *p);
/* Whether a parameter name is one of the shard's own. */
int sf_source_shard_param(const char *name);

/* Decimal text of v into buf (at least 21 bytes); returns the length. */
size_t sf_format_i64(char *buf, int64_t v);

#endif
