/* source.c: the backend table and the public sf_source_* calls. */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "source.h"
#include "sqltext.h"

/* The scan thread's ring (docs/source.md, "Prefetch": sizes measured). */
#define SF_PREFETCH_BATCHES 4
#define SF_PREFETCH_BATCH ((size_t)256 << 10)
#define SF_PREFETCH_ROW_MAX ((size_t)64 << 20)
#define SF_PREFETCH_ROW_LIMIT ((size_t)1 << 30) /* offsets in a batch are 32-bit */

/* Tried in order; the SQLite backend takes whatever has no URL scheme, so it
 * stays last. */
static const sf_source_vt *const backends[] = {
    &sf_source_pg,
    &sf_source_mysql,
    &sf_source_sqlite,
    NULL,
};

sf_source *sf_source_create(sf_census *census)
{
    sf_source *s = SF_HANDLE_CREATE(sf_source, census);
    if (s) {
        s->opts.fetch_size = 1000;
        s->opts.pg_single_row = 1; /* measured faster: docs/source.md */
        s->opts.pf_batches = SF_PREFETCH_BATCHES;
        s->opts.pf_batch = SF_PREFETCH_BATCH;
        s->opts.pf_row_max = SF_PREFETCH_ROW_MAX;
    }
    return s;
}

sf_status sf_source_set_option(sf_source *s, const char *name, const char *value)
{
    if (!s)
        return SF_ERR_ARG;
    sf_err_clear(&s->err);
    if (!name || !value)
        return sf_fail(&s->err, SF_ERR_ARG, "option without a name or value");
    char *end;
    long v = strtol(value, &end, 10);
    if (!strcmp(name, "timeout")) {
        if (*end || end == value || v < 0 || v > 86400 * 7)
            return sf_fail(&s->err, SF_ERR_ARG, "timeout: seconds from 0 to 604800, got '%s'", value);
        s->opts.timeout = (int)v;
    } else if (!strcmp(name, "fetch_size")) {
        if (*end || end == value || v < 1 || v > 1000000)
            return sf_fail(&s->err, SF_ERR_ARG, "fetch size: rows from 1 to 1000000, got '%s'", value);
        s->opts.fetch_size = (int)v;
    } else if (!strcmp(name, "prefetch")) {
        if (strcmp(value, "on") && strcmp(value, "off"))
            return sf_fail(&s->err, SF_ERR_ARG, "prefetch: on or off, got '%s'", value);
        if (s->pf)
            return sf_fail(&s->err, SF_ERR_STATE, "prefetch: the rows have started");
        s->opts.prefetch = !strcmp(value, "on");
    } else if (!strcmp(name, "prefetch_batches")) {
        if (*end || end == value || v < 2 || v > 64)
            return sf_fail(&s->err, SF_ERR_ARG, "prefetch_batches: from 2 to 64, got '%s'", value);
        s->opts.pf_batches = (int)v;
    } else if (!strcmp(name, "prefetch_batch") || !strcmp(name, "prefetch_row_max")) {
        unsigned long long u = strtoull(value, &end, 10);
        int batch = name[14] == '\0';
        unsigned long long lo = batch ? 4096 : 1, hi = batch ? 64u << 20 : SF_PREFETCH_ROW_LIMIT;
        if (*end || end == value || value[0] == '-' || u < lo || u > hi)
            return sf_fail(&s->err, SF_ERR_ARG, "%s: bytes from %llu to %llu, got '%s'", name, lo,
                           hi, value);
        if (batch)
            s->opts.pf_batch = (size_t)u;
        else
            s->opts.pf_row_max = (size_t)u;
    } else if (!strcmp(name, "sqlite_cache")) {
        if (*end || end == value || v < 64 || v > 1048576)
            return sf_fail(&s->err, SF_ERR_ARG, "sqlite_cache: KiB from 64 to 1048576, got '%s'",
                           value);
        s->opts.sqlite_cache = (int)v;
    } else if (!strcmp(name, "pg_mode")) {
        if (strcmp(value, "cursor") && strcmp(value, "single-row"))
            return sf_fail(&s->err, SF_ERR_ARG, "pg_mode: cursor or single-row, got '%s'", value);
        s->opts.pg_single_row = !strcmp(value, "single-row");
    } else if (!strcmp(name, "shard")) {
        unsigned k, n;
        char extra;
        if (s->prepared)
            return sf_fail(&s->err, SF_ERR_STATE, "shard: set it before the query is prepared");
        if (sscanf(value, "%u/%u%c", &k, &n, &extra) != 2 || k < 1 || n < 1 || k > n ||
            n > SF_SHARD_MAX || value[0] < '0' || value[0] > '9')
            return sf_fail(&s->err, SF_ERR_ARG,
                           "shard: K/N with 1 <= K <= N <= %d (e.g. 2/4), got '%s'",
                           SF_SHARD_MAX, value);
        s->opts.shard_k = k;
        s->opts.shard_n = n;
    } else if (!strcmp(name, "shard_key") || !strcmp(name, "snapshot")) {
        int key = name[1] == 'h';
        size_t n = strlen(value);
        int ok = n > 0 && n < sizeof s->opts.shard_key;
        for (size_t i = 0; ok && i < n; i++) {
            char c = value[i];
            ok = key ? (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (i && c >= '0' && c <= '9'))
                     : ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
                        (c >= 'a' && c <= 'f') || c == '-');
        }
        if (!ok)
            return sf_fail(&s->err, SF_ERR_ARG,
                           key ? "shard_key: a column name ([A-Za-z_][A-Za-z0-9_]*, at most 63 "
                                 "bytes), got '%s'"
                               : "snapshot: an exported snapshot id (hex digits and '-', as "
                                 "pg_export_snapshot() gives), got '%s'",
                           value);
        if (key && s->prepared)
            return sf_fail(&s->err, SF_ERR_STATE, "shard_key: set it before the query is prepared");
        if (!key && s->vt)
            return sf_fail(&s->err, SF_ERR_STATE, "snapshot: set it before the source is opened");
        memcpy(key ? s->opts.shard_key : s->opts.snapshot, value, n + 1);
    } else {
        return sf_fail(&s->err, SF_ERR_ARG, "unknown source option '%s'", name);
    }
    return SF_OK;
}

sf_status sf_source_export_snapshot(sf_source *s, char *buf, size_t n)
{
    if (!s || !buf || n == 0)
        return SF_ERR_ARG;
    sf_err_clear(&s->err);
    buf[0] = '\0';
    if (!s->vt)
        return sf_fail(&s->err, SF_ERR_STATE, "export a snapshot after open");
    if (!s->vt->export_snapshot)
        return sf_fail(&s->err, SF_ERR_ARG,
                       "%s: only PostgreSQL exports a snapshot (pg_export_snapshot)", s->vt->name);
    if (s->prepared)
        return sf_fail(&s->err, SF_ERR_STATE, "export the snapshot before preparing a query");
    return s->vt->export_snapshot(s, buf, n);
}

static void clear_query(sf_source *s)
{
    sf_census *cs = s->cref.census;
    for (int i = 0; i < s->ncols; i++)
        sf_dealloc(cs, s->colnames[i]);
    sf_dealloc(cs, s->colnames);
    for (int i = 0; i < s->nparams; i++)
        sf_dealloc(cs, s->paramnames[i]);
    sf_dealloc(cs, s->paramnames);
    s->colnames = s->paramnames = NULL;
    s->ncols = s->nparams = 0;
    s->prepared = 0;
    sf_dealloc(cs, s->shard_base);
    s->shard_base = NULL;
}

void sf_source_free(sf_source *s)
{
    if (!s)
        return;
    sf_prefetch_free(s); /* first: its thread may be using the backend */
    if (s->vt)
        s->vt->close(s);
    clear_query(s);
    SF_HANDLE_FREE(sf_source, s);
}

/* "scheme://" at the start, as URLs of server databases have. */
static int has_scheme(const char *db)
{
    size_t i = 0;
    while ((db[i] >= 'a' && db[i] <= 'z') || (db[i] >= 'A' && db[i] <= 'Z') ||
           (i && ((db[i] >= '0' && db[i] <= '9') || db[i] == '+' || db[i] == '-')))
        i++;
    return i > 0 && strncmp(db + i, "://", 3) == 0;
}

sf_status sf_source_open(sf_source *s, const char *db)
{
    if (!s)
        return SF_ERR_ARG;
    sf_err_clear(&s->err);
    if (s->vt)
        return sf_fail(&s->err, SF_ERR_STATE, "source already open");
    if (!db || !*db)
        return sf_fail(&s->err, SF_ERR_ARG, "no database given");
    if (atomic_load(&s->cancelled))
        return sf_fail(&s->err, SF_ERR_CANCELLED, "cancelled before connecting");
    for (size_t i = 0; backends[i]; i++) {
        if (backends[i]->accepts(db)) {
            s->vt = backends[i];
            if (s->opts.snapshot[0] && !s->vt->export_snapshot) {
                s->vt = NULL;
                return sf_fail(&s->err, SF_ERR_ARG,
                               "snapshot: only PostgreSQL reads in an exported snapshot; %s "
                               "has none",
                               backends[i]->name);
            }
            sf_status st = s->vt->open(s, db);
            if (st != SF_OK && st != SF_ERR_NOMEM && atomic_load(&s->cancelled))
                st = SF_ERR_CANCELLED; /* the message says where */
            if (st != SF_OK) {
                s->vt->close(s);
                s->vt = NULL;
            }
            return st;
        }
    }
    return sf_fail(&s->err, SF_ERR_SOURCE,
                   "no backend for '%.*s...': sqlfeed reads SQLite files, postgresql:// "
                   "(postgres://) and mysql:// (mariadb://) URLs",
                   has_scheme(db) ? (int)(strstr(db, "://") - db + 3) : 0, db);
}

sf_status sf_source_prepare(sf_source *s, const char *sql)
{
    if (!s)
        return SF_ERR_ARG;
    sf_err_clear(&s->err);
    if (!s->vt)
        return sf_fail(&s->err, SF_ERR_STATE, "prepare before open");
    if (s->prepared)
        return sf_fail(&s->err, SF_ERR_STATE, "a query is already prepared");
    if (!sql)
        return sf_fail(&s->err, SF_ERR_ARG, "no query given");
    if (atomic_load(&s->cancelled))
        return sf_fail(&s->err, SF_ERR_CANCELLED, "cancelled before the query was prepared");
    if (s->opts.shard_n && !s->opts.shard_key[0])
        return sf_fail(&s->err, SF_ERR_ARG, "a sharded read needs a shard key (shard_key)");
    if (s->opts.shard_key[0] && !s->opts.shard_n)
        return sf_fail(&s->err, SF_ERR_ARG, "shard_key without shard (K/N)");
    if (s->opts.shard_n && !s->vt->query_text)
        return sf_fail(&s->err, SF_ERR_ARG, "%s: sharded reads are not supported", s->vt->name);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *c = (const unsigned char *)sql; *c; c++)
        h = (h ^ *c) * 0x100000001b3ULL;
    s->sql_hash = h;
    sf_buf wrapped = {0};
    if (s->opts.shard_n) {
        size_t end = sf_source_query_end(s, sql);
        sf_dealloc(s->cref.census, s->shard_base);
        if (!(s->shard_base = sf_alloc(s->cref.census, SF_MEM_SOURCE, end + 1)))
            return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
        memcpy(s->shard_base, sql, end);
        s->shard_base[end] = '\0';
        sf_status w = sf_source_shard_sql(s, sql, &wrapped);
        if (w != SF_OK)
            return w;
        sql = wrapped.data;
    }
    sf_status st = s->vt->prepare(s, sql);
    if (st == SF_OK && s->opts.shard_n) {
        /* Checked by name, not left to the database: SQLite reads a
         * double-quoted name that is no column as a string. */
        int found = 0;
        /* SQLite's and MariaDB's names are case-insensitive, PostgreSQL's
         * quoted name (ours) is not. */
        int exact = !strcmp(s->vt->name, "postgresql");
        for (int i = 0; !found && i < s->ncols; i++)
            found = exact ? !strcmp(s->colnames[i], s->opts.shard_key)
                          : !strcasecmp(s->colnames[i], s->opts.shard_key);
        if (!found) {
            clear_query(s); /* as a failed prepare leaves it */
            sf_buf_free(&wrapped);
            return sf_fail(&s->err, SF_ERR_NAME,
                           "shard key '%s' is not a column the query returns (give it one, "
                           "e.g. SELECT j.id AS %s, ...)",
                           s->opts.shard_key, s->opts.shard_key);
        }
    }
    if (s->opts.shard_n) {
        if (st == SF_ERR_SOURCE) {
            /* The server names the key it cannot find (PostgreSQL: column
             * "k" does not exist; MariaDB: Unknown column 'k'): the same
             * error as SQLite's, a name the query does not provide. */
            char m[sizeof s->err.msg], q[3][80];
            snprintf(m, sizeof m, "%s", s->err.msg);
            snprintf(q[0], sizeof q[0], "\"%s\"", s->opts.shard_key);
            snprintf(q[1], sizeof q[1], "'%s'", s->opts.shard_key);
            snprintf(q[2], sizeof q[2], "`%s`", s->opts.shard_key);
            int named = strstr(m, q[0]) || strstr(m, q[1]) || strstr(m, q[2]);
            if (named) {
                sf_fail(&s->err, SF_ERR_NAME,
                        "shard key '%s' is not a column the query returns (give it one, e.g. "
                        "SELECT j.id AS %s, ...): %s",
                        s->opts.shard_key, s->opts.shard_key, m);
                st = SF_ERR_NAME;
            }
        }
        sf_buf_free(&wrapped);
    }
    if (st != SF_OK && st != SF_ERR_NOMEM && atomic_load(&s->cancelled))
        st = SF_ERR_CANCELLED;
    if (st != SF_OK)
        clear_query(s);
    else
        s->prepared = 1;
    return st;
}

sf_status sf_source_set_columns(sf_source *s, int n, const char *(*name)(void *ud, int i),
                                void *ud)
{
    sf_census *cs = s->cref.census;
    s->colnames = sf_calloc(cs, SF_MEM_SOURCE, (size_t)n + 1, sizeof *s->colnames);
    if (!s->colnames)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *nm = name(ud, i);
        if (!nm)
            return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
        for (int j = 0; j < i; j++)
            if (strcmp(s->colnames[j], nm) == 0)
                return sf_fail(&s->err, SF_ERR_SOURCE,
                               "the query has two columns named '%s' (columns %d and %d); "
                               "give one another name with AS",
                               nm, j + 1, i + 1);
        if (!(s->colnames[i] = sf_strdup(cs, SF_MEM_SOURCE, nm)))
            return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
        s->ncols = i + 1;
    }
    return SF_OK;
}

sf_status sf_source_add_param(sf_source *s, const char *name, size_t len)
{
    sf_census *cs = s->cref.census;
    char **p = sf_realloc(cs, SF_MEM_SOURCE, s->paramnames, ((size_t)s->nparams + 1) * sizeof *p);
    if (!p)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    s->paramnames = p;
    if (!(p[s->nparams] = sf_strndup(cs, SF_MEM_SOURCE, name, len)))
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    s->nparams++;
    return SF_OK;
}

int sf_source_column_count(const sf_source *s) { return s && s->prepared ? s->ncols : 0; }
const char *sf_source_column_name(const sf_source *s, int i)
{
    return s && s->prepared && i >= 0 && i < s->ncols ? s->colnames[i] : NULL;
}
const char *sf_source_backend(const sf_source *s) { return s && s->vt ? s->vt->name : ""; }
const char *sf_source_errmsg(const sf_source *s) { return s ? s->err.msg : ""; }

const char *sf_source_file(const sf_source *s)
{
    return s && s->vt && s->vt->file && s->impl ? s->vt->file(s) : NULL;
}

int sf_source_param_count(const sf_source *s) { return s->nparams; }
const char *sf_source_param_name(const sf_source *s, int i) { return s->paramnames[i]; }

sf_status sf_source_bind(sf_source *s, int i, const char *value, size_t len)
{
    return s->vt->bind(s, i, value, len);
}

static int count_row(void *ud, int ncols, const char *const *vals)
{
    char *end;
    if (ncols < 1 || !vals[0])
        return 1;
    errno = 0;
    *(uint64_t *)ud = strtoull(vals[0], &end, 10);
    return errno || *end || end == vals[0];
}

sf_status sf_source_count(sf_source *s, const char *const *values, uint64_t *rows)
{
    sf_err_clear(&s->err);
    if (!s->vt->query_text)
        return sf_fail(&s->err, SF_ERR_SOURCE, "the %s backend cannot count rows", s->vt->name);
    *rows = UINT64_MAX;
    sf_status st = s->vt->query_text(s, "counting", SF_SQL_COUNT_HEAD, SF_SQL_COUNT_TAIL, values,
                                     count_row, rows);
    if (st == SF_OK && *rows == UINT64_MAX)
        return sf_fail(&s->err, SF_ERR_SOURCE, "%s: counting: no count came back", s->vt->name);
    if (st == SF_ERR_ARG)
        return sf_fail(&s->err, SF_ERR_SOURCE, "%s: counting: not a count", s->vt->name);
    return st;
}

void sf_source_cancel(sf_source *s)
{
    if (!s)
        return;
    atomic_store(&s->cancelled, 1); /* first: a backend that starts to wait sees it */
    if (s->vt && s->vt->interrupt)
        s->vt->interrupt(s);
}

void sf_source_interrupt(sf_source *s) { sf_source_cancel(s); }

sf_status sf_source_dlopen(sf_source *s, const char *soname, const char *what, void **lib)
{
    /* RTLD_NODELETE: once loaded the library stays mapped, as a linked one
     * would, so its one-time global state is never left dangling. */
    *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!*lib)
        return sf_fail(&s->err, SF_ERR_SOURCE, "%s: %s", what, dlerror());
    return SF_OK;
}

sf_status sf_source_dlsym(sf_source *s, void *lib, const char *soname, const char *name,
                          void **slot)
{
    if (!(*slot = dlsym(lib, name)))
        return sf_fail(&s->err, SF_ERR_SOURCE, "%s lacks %s: too old?", soname, name);
    return SF_OK;
}

/* The mapping's size sits in front of the text. */
#define SECRET_HEAD 16

char *sf_source_secret_dup(sf_source *s, const char *p, size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t)page : 4096;
    if (n > SIZE_MAX - SECRET_HEAD - pg)
        return NULL;
    size_t size = (SECRET_HEAD + n + 1 + pg - 1) / pg * pg;
    char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    madvise(m, size, MADV_DONTDUMP); /* best effort */
    memcpy(m, &size, sizeof size);
    memcpy(m + SECRET_HEAD, p, n);
    m[SECRET_HEAD + n] = '\0';
    sf_census_account(s->cref.census, SF_MEM_SOURCE, 1, (int64_t)size);
    return m + SECRET_HEAD;
}

void sf_source_secret_free(sf_source *s, char *p)
{
    if (!p)
        return;
    char *m = p - SECRET_HEAD;
    size_t size;
    memcpy(&size, m, sizeof size);
    explicit_bzero(m, size);
    munmap(m, size);
    sf_census_account(s->cref.census, SF_MEM_SOURCE, -1, -(int64_t)size);
}

size_t sf_format_i64(char *buf, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    /* Work in unsigned so INT64_MIN negates without overflow. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t o = 0;
    if (v < 0)
        buf[o++] = '-';
    while (n)
        buf[o++] = tmp[--n];
    buf[o] = '\0';
    return o;
}
