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
 * encoding, ISO dates, UTC (whatever PGTZ, the role's or the database's
 * default say: a timestamptz reads `2026-01-31 09:05:00+00`, so the
 * document does not depend on where the job runs), hex bytea.
 * Connections set keepalives and a TCP user timeout, so a peer that silently
 * dies ends the render instead of hanging it.
 *
 * Nothing waits inside libpq: the connection is non-blocking and every wait
 * is our poll() on the socket and on an eventfd that pg_interrupt() writes
 * (async-signal-safe), with the client's own deadline when --timeout is set.
 * So a server that stops answering (a backend under SIGSTOP, a hung host)
 * cannot hold a cancelled render: the wait ends at once, the cancel request
 * goes to the server from the render's thread (PQcancel, in a thread of its
 * own waited for at most CANCEL_WAIT seconds), and the run ends. */
#include <dlfcn.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

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
    X(PQsendQuery) \
    X(PQsendPrepare) \
    X(PQsendDescribePrepared) \
    X(PQsetnonblocking) \
    X(PQflush) \
    X(PQisBusy) \
    X(PQconsumeInput) \
    X(PQsocket) \
    X(PQconninfoParse) \
    X(PQconninfoFree) \
    X(PQfreemem) \
    X(PQresultStatus) \
    X(PQclear) \
    X(PQresultErrorMessage) \
    X(PQnfields) \
    X(PQfname) \
    X(PQftype) \
    X(PQresultErrorField) \
    X(PQresultMemorySize) \
    X(PQntuples) \
    X(PQsendQueryParams) \
    X(PQsetSingleRowMode) \
    X(PQgetResult) \
    X(PQgetisnull) \
    X(PQgetvalue) \
    X(PQgetlength) \
    X(PQfreeCancel) \
    X(PQfinish) \

typedef struct pq_api {
    void *lib;
#define PQ_FIELD(f) __typeof__(f) *f;
    PQ_FUNCS(PQ_FIELD)
#undef PQ_FIELD
} pq_api;

#define CANCEL_WAIT 2  /* seconds the cancel request may take before we go on */
#define CLIENT_GRACE 2 /* seconds past --timeout before the client gives up */

typedef struct pg_impl {
    pq_api api;
    PGconn *conn;
    atomic_int wakefd; /* eventfd: pg_interrupt() writes, every wait polls it */
    int cancel_sent; /* the cancel request went to the server */
    struct timespec deadline; /* of the running statement, with --timeout */
    int has_deadline;
    const char *db;  /* during open only: to scrub libpq's messages */
    /* Where the text sent begins in the query's own text, in characters
     * (a wrapper's head before it); -1: what is sent is not the query. */
    int pos_base;
    char where[512]; /* the URL with the password masked, for messages */
    sf_sql_rewrite rw;
    const char **values; /* per $n */
    int *lengths;
    Oid *types;          /* per column */
    PGresult *batch;     /* the current FETCH */
    int64_t batch_bytes; /* accounted in the census as driver memory */
    int row, nrows;
    int started, finished;
    int in_tx; /* the read transaction has begun (begin_read) */
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

/* The keywords a conninfo string may start with (libpq's own list, the
 * common ones): "KEY=" or "KEY =" there makes --db a conninfo string. */
static const char *const conninfo_keys[] = {
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "service",
    "sslmode", "sslpassword", "connect_timeout", "options", "application_name",
    "target_session_attrs", "channel_binding", "sslcert", "sslkey", "sslrootcert", NULL};

static int pg_accepts(const char *db)
{
    while (*db == ' ' || (*db >= '\t' && *db <= '\r'))
        db++;
    if (!strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11))
        return 1;
    for (size_t i = 0; conninfo_keys[i]; i++) { /* a conninfo string */
        size_t n = strlen(conninfo_keys[i]);
        if (strncmp(db, conninfo_keys[i], n) != 0)
            continue;
        const char *p = db + n;
        while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
            p++;
        if (*p == '=')
            return 1;
    }
    return 0;
}

/* ---- connecting ---------------------------------------------------------- */

/* PQconnectdbParams, in a thread of its own, waited for with the eventfd: a
 * cancel ends the wait at once, whatever the server does (a host that
 * accepts TCP and never answers holds PQconnectdbParams connect_timeout
 * seconds per host). libpq's own connect keeps all its rules (each host of a
 * list tried in turn, connect_timeout per host, target_session_attrs).
 * PQconnectPoll would not: libpq applies connect_timeout, and moves on to
 * the next host when it passes, only in its blocking loop.
 *
 * The job lives in pages of its own (MADV_DONTDUMP: it holds the --db
 * string, password included) shared by the two threads; whichever is done
 * with it last unmaps it. A cancelled open leaves the thread to finish
 * alone: it closes the connection it made and unmaps the job. */
enum { JOB_RUNNING, JOB_DONE, JOB_ABANDONED };

typedef struct pg_connect_job {
    size_t size;     /* of the mapping */
    atomic_int state;
    int donefd;      /* eventfd the thread writes when done (JOB_DONE) */
    __typeof__(PQconnectdbParams) *connectdb;
    __typeof__(PQfinish) *finish;
    const char *keys[10], *vals[10];
    PGconn *conn;    /* the result, NULL when out of memory */
    char db[];       /* a copy of the --db string */
} pg_connect_job;

static void job_unmap(pg_connect_job *j)
{
    size_t size = j->size;
    explicit_bzero(j, size);
    munmap(j, size);
}

static void *connect_thread(void *arg)
{
    pg_connect_job *j = arg;
    PGconn *c = j->connectdb(j->keys, j->vals, 1);
    explicit_bzero(j->db, strlen(j->db)); /* libpq has its own copy now */
    j->conn = c;
    int expect = JOB_RUNNING;
    if (atomic_compare_exchange_strong(&j->state, &expect, JOB_DONE)) {
        uint64_t one = 1;
        ssize_t w = write(j->donefd, &one, sizeof one);
        (void)w;
    } else { /* abandoned: nobody waits for this connection */
        if (c)
            j->finish(c);
        job_unmap(j);
    }
    return NULL;
}

/* Connects with our defaults (keys/vals, db last): SF_OK with q->conn set
 * (maybe to a failed connection: PQstatus says), or s->err set. */
static sf_status pg_connect(sf_source *s, const char *const *keys, const char *const *vals,
                            const char *db)
{
    pg_impl *q = IMPL(s);
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t)page : 4096, dblen = strlen(db);
    if (dblen > SIZE_MAX / 2)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    size_t size = (sizeof(pg_connect_job) + dblen + 1 + pg - 1) / pg * pg;
    pg_connect_job *j = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (j == MAP_FAILED)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    madvise(j, size, MADV_DONTDUMP); /* best effort */
    j->size = size;
    atomic_init(&j->state, JOB_RUNNING);
    j->connectdb = PQ.PQconnectdbParams;
    j->finish = PQ.PQfinish;
    memcpy(j->db, db, dblen + 1);
    size_t n = 0;
    for (; keys[n] && n + 1 < sizeof j->keys / sizeof j->keys[0]; n++) {
        j->keys[n] = keys[n]; /* static strings, but db */
        j->vals[n] = vals[n] == db ? j->db : vals[n];
    }
    j->keys[n] = j->vals[n] = NULL;
    sf_census_account(s->cref.census, SF_MEM_SOURCE, 1, (int64_t)size);
    sf_status st = SF_OK;
    if ((j->donefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        st = sf_fail(&s->err, errno == ENOMEM ? SF_ERR_NOMEM : SF_ERR_SOURCE,
                     "postgresql: eventfd: %s", strerror(errno));
        goto unmap;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals go to the waiting thread */
    pthread_t t;
    int rc = pthread_create(&t, NULL, connect_thread, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        st = sf_fail(&s->err, rc == EAGAIN || rc == ENOMEM ? SF_ERR_NOMEM : SF_ERR_SOURCE,
                     "postgresql: cannot start the connecting thread: %s", strerror(rc));
        close(j->donefd);
        goto unmap;
    }
    for (;;) {
        if (atomic_load(&s->cancelled)) {
            int expect = JOB_RUNNING;
            if (atomic_compare_exchange_strong(&j->state, &expect, JOB_ABANDONED)) {
                pthread_detach(t); /* it closes its connection and unmaps j */
                close(j->donefd);
                sf_census_account(s->cref.census, SF_MEM_SOURCE, -1, -(int64_t)size);
                return sf_fail(&s->err, SF_ERR_CANCELLED, "cancelled while connecting to %s",
                               q->where);
            }
            break; /* done meanwhile: take its connection, the next wait sees the cancel */
        }
        struct pollfd p[2] = {{j->donefd, POLLIN, 0}, {atomic_load(&q->wakefd), POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR) {
            /* Cannot wait for it: wait for it the only other way. */
            break;
        }
        if (p[0].revents & POLLIN)
            break;
    }
    pthread_join(t, NULL);
    close(j->donefd);
    q->conn = j->conn;
    if (!q->conn)
        st = sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
unmap:
    sf_census_account(s->cref.census, SF_MEM_SOURCE, -1, -(int64_t)size);
    job_unmap(j);
    return st;
}

/* ---- waiting ------------------------------------------------------------- */

static void *cancel_thread(void *arg)
{
    PGcancel *c = arg;
    /* The thread owns c: it may outlive the source (a server that does
     * not answer), so it finds libpq itself (loaded and kept: NODELETE). */
    void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_NOLOAD);
    if (lib) {
        int (*cancel)(PGcancel *, char *, int) = (int (*)(PGcancel *, char *, int))dlsym(lib, "PQcancel");
        void (*freec)(PGcancel *) = (void (*)(PGcancel *))dlsym(lib, "PQfreeCancel");
        char err[256];
        if (cancel)
            cancel(c, err, (int)sizeof err);
        if (freec)
            freec(c);
        dlclose(lib);
    }
    return NULL;
}

/* Asks the server to stop the running statement (PQcancel opens a
 * connection of its own), waiting at most CANCEL_WAIT s for it: a server
 * that does not answer cannot hold the render. Once. */
static void send_cancel(sf_source *s)
{
    pg_impl *q = IMPL(s);
    if (q->cancel_sent || !q->conn)
        return;
    q->cancel_sent = 1;
    PGcancel *c = PQ.PQgetCancel(q->conn);
    if (!c)
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* no signal handler runs there */
    pthread_t t;
    int rc = pthread_create(&t, NULL, cancel_thread, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        PQ.PQfreeCancel(c);
        return;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += CANCEL_WAIT;
    if (pthread_timedjoin_np(t, NULL, &dl) != 0)
        pthread_detach(t); /* it finishes (or not) alone, and frees c */
}

static void start_deadline(sf_source *s)
{
    pg_impl *q = IMPL(s);
    q->has_deadline = s->opts.timeout > 0;
    if (q->has_deadline) {
        clock_gettime(CLOCK_MONOTONIC, &q->deadline);
        q->deadline.tv_sec += s->opts.timeout + CLIENT_GRACE;
    }
}

/* Milliseconds to the deadline (>= 0), or -1 when there is none. */
static int ms_left(const pg_impl *q)
{
    if (!q->has_deadline)
        return -1;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (long long)(q->deadline.tv_sec - now.tv_sec) * 1000 +
                   (q->deadline.tv_nsec - now.tv_nsec) / 1000000;
    return ms <= 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
}

/* Waits until libpq holds a whole result (PQgetResult will not block), or
 * a cancel, or the client's deadline. 0, or -1 with s->err set. */
static int pg_wait(sf_source *s)
{
    pg_impl *q = IMPL(s);
    int fd = PQ.PQsocket(q->conn);
    for (;;) {
        int f = PQ.PQflush(q->conn); /* non-blocking: 1 while some is unsent */
        if (f == 0 && !PQ.PQisBusy(q->conn))
            return 0;
        if (f < 0 || fd < 0)
            return 0; /* the failure is in the next result */
        if (atomic_load(&s->cancelled)) {
            send_cancel(s);
            sf_fail(&s->err, SF_ERR_SOURCE, "postgresql: cancelled");
            return -1;
        }
        int left = ms_left(q);
        if (left == 0) {
            send_cancel(s);
            sf_fail(&s->err, SF_ERR_SOURCE,
                    "postgresql: the client gave up after %d s: %s did not answer within "
                    "--timeout %d (+%d s), so it did not enforce its statement_timeout (hung?)",
                    s->opts.timeout + CLIENT_GRACE, q->where, s->opts.timeout, CLIENT_GRACE);
            return -1;
        }
        struct pollfd p[2] = {{fd, (short)(POLLIN | (f ? POLLOUT : 0)), 0},
                              {atomic_load(&q->wakefd), POLLIN, 0}};
        int n = poll(p, 2, left);
        if (n < 0 && errno != EINTR) {
            sf_fail(&s->err, SF_ERR_SOURCE, "postgresql: poll: %s", strerror(errno));
            return -1;
        }
        if (n > 0 && (p[0].revents & (POLLIN | POLLERR | POLLHUP)) && !PQ.PQconsumeInput(q->conn))
            return 0; /* the connection failed: the next result says how */
    }
}

/* The results of what was just sent, waited for: the first failed one, else
 * the last; NULL with s->err set when the wait failed. */
static PGresult *pg_results(sf_source *s)
{
    pg_impl *q = IMPL(s);
    PGresult *keep = NULL;
    for (;;) {
        if (pg_wait(s) != 0) {
            PQ.PQclear(keep);
            return NULL;
        }
        PGresult *r = PQ.PQgetResult(q->conn);
        if (!r)
            break;
        ExecStatusType k = keep ? PQ.PQresultStatus(keep) : PGRES_COMMAND_OK;
        if (keep && (k == PGRES_FATAL_ERROR || k == PGRES_BAD_RESPONSE)) {
            PQ.PQclear(r);
        } else {
            PQ.PQclear(keep);
            keep = r;
        }
        if (PQ.PQstatus(q->conn) == CONNECTION_BAD)
            break;
    }
    return keep;
}

/* The first line of a libpq message, without "ERROR:  " and the newline,
 * with the secrets of the --db string scrubbed (libpq's own parse errors
 * quote the URI). */
static void first_line(const char *db, const char *msg, char *buf, size_t n)
{
    if (!msg || !*msg)
        msg = "unknown error";
    if (!strncmp(msg, "ERROR:  ", 8) || !strncmp(msg, "FATAL:  ", 8))
        msg += 8;
    char line[600];
    size_t len = strcspn(msg, "\n");
    snprintf(line, sizeof line, "%.*s", (int)len, msg);
    sf_db_scrub(db, line, buf, n);
}

/* Line and column of the 1-based character position `pos` in sql. */
static void line_col(const char *sql, long pos, int *line, int *col)
{
    *line = 1, *col = 1;
    for (const unsigned char *p = (const unsigned char *)sql; *p && pos > 1; p++) {
        if ((*p & 0xC0) == 0x80)
            continue; /* a UTF-8 continuation byte: same character */
        pos--;
        if (*p == '\n')
            (*line)++, *col = 1;
        else
            (*col)++;
    }
}

/* A failed result as one line: the server's message, then its DETAIL,
 * HINT and the position in the query (line:col of the text as sent, where
 * each :name reads $n). Out of memory in libpq is SF_ERR_NOMEM. */
static sf_status pg_fail(sf_source *s, const char *what, const PGresult *r)
{
    pg_impl *q = IMPL(s);
    const char *db = q->db ? q->db : "";
    const char *primary = r ? PQ.PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *msg = primary ? primary
                      : r && *PQ.PQresultErrorMessage(r) ? PQ.PQresultErrorMessage(r)
                                                          : PQ.PQerrorMessage(q->conn);
    char line[600], extra[600] = "";
    first_line(db, msg, line, sizeof line);
    if (r) {
        const char *detail = PQ.PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
        const char *hint = PQ.PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
        const char *pos = PQ.PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
        size_t o = 0;
        if (detail && o < sizeof extra)
            o += (size_t)snprintf(extra + o, sizeof extra - o, "; DETAIL: %.*s",
                                  (int)strcspn(detail, "\n"), detail);
        if (hint && o < sizeof extra)
            o += (size_t)snprintf(extra + o, sizeof extra - o, "; HINT: %.*s",
                                  (int)strcspn(hint, "\n"), hint);
        long at = pos ? strtol(pos, NULL, 10) - q->pos_base : 0;
        if (pos && q->pos_base >= 0 && at >= 1 && q->rw.sql && o < sizeof extra) {
            int ln, col;
            line_col(q->rw.sql, at, &ln, &col);
            snprintf(extra + o, sizeof extra - o, " (at line %d, column %d of the query)", ln, col);
        }
    }
    if (atomic_load(&s->cancelled))
        return sf_fail(&s->err, SF_ERR_SOURCE, "postgresql: cancelled (%s)", line);
    if (!strncmp(line, "out of memory", 13))
        return sf_fail(&s->err, SF_ERR_NOMEM, "postgresql: %s%s%s", what, *what ? ": " : "",
                       line);
    return sf_fail(&s->err, SF_ERR_SOURCE, "postgresql: %s%s%s%s", what, *what ? ": " : "", line,
                   extra);
}

/* Sends one command (`params` < 0: PQsendQuery, which may hold several;
 * else PQsendQueryParams) and waits for its results; NULL with s->err set,
 * or the result (the caller clears it). */
static PGresult *pg_exec(sf_source *s, const char *what, const char *sql, int params,
                         const char *const *values, const int *lengths)
{
    pg_impl *q = IMPL(s);
    start_deadline(s);
    int sent = params < 0 ? PQ.PQsendQuery(q->conn, sql)
                          : PQ.PQsendQueryParams(q->conn, sql, params, NULL, values, lengths, NULL, 0);
    if (!sent) {
        pg_fail(s, what, NULL);
        return NULL;
    }
    PGresult *r = pg_results(s);
    if (!r && !s->err.msg[0])
        pg_fail(s, what, NULL);
    return r;
}

/* Runs a command that returns no rows: SF_OK, or the failure in s->err. */
static sf_status exec_cmd(sf_source *s, const char *what, const char *sql)
{
    PGresult *r = pg_exec(s, what, sql, -1, NULL, NULL);
    if (!r)
        return !strncmp(s->err.msg, "out of memory", 13) ? SF_ERR_NOMEM : SF_ERR_SOURCE;
    sf_status st = PQ.PQresultStatus(r) == PGRES_COMMAND_OK ? SF_OK : pg_fail(s, what, r);
    PQ.PQclear(r);
    return st;
}

static int exec_ok(sf_source *s, const char *sql) { return exec_cmd(s, "", sql) == SF_OK ? 0 : -1; }

/* libpq's own reading of db must agree with ours on every password (else
 * a message or argv could show one): PQconninfoParse, compared with the
 * scanner of secret.c. */
static sf_status check_secrets(sf_source *s, const char *db)
{
    pg_impl *q = IMPL(s);
    char *perr = NULL;
    PQconninfoOption *opts = PQ.PQconninfoParse(db, &perr);
    if (!opts) {
        if (!perr)
            return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
        char line[600];
        first_line(db, perr, line, sizeof line);
        PQ.PQfreemem(perr);
        return sf_fail(&s->err, SF_ERR_ARG, "cannot connect to %s: %s", q->where, line);
    }
    sf_status st = SF_OK;
    for (PQconninfoOption *o = opts; o->keyword && st == SF_OK; o++)
        if ((!strcmp(o->keyword, "password") || !strcmp(o->keyword, "sslpassword")) && o->val &&
            *o->val && !sf_db_has_secret(db, o->val))
            st = sf_fail(&s->err, SF_ERR_ARG,
                         "%s: libpq reads another password from this --db string than the "
                         "one sqlfeed finds in it, so it could show in messages: in a URL, "
                         "write '@' as %%40 and '/' as %%2F in a user name or password",
                         q->where);
    PQ.PQconninfoFree(opts);
    return st;
}

static sf_status pg_open(sf_source *s, const char *db)
{
    while (*db == ' ' || (*db >= '\t' && *db <= '\r')) /* as pg_accepts read it */
        db++;
    pg_impl *q = sf_calloc(s->cref.census, SF_MEM_SOURCE, 1, sizeof *q);
    if (!q)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    atomic_init(&q->wakefd, -1);
    q->pos_base = -1;
    s->impl = q;
    q->db = db;
    sf_db_mask(db, q->where, sizeof q->where);
    sf_status st = pq_load(s, &q->api);
    if (st == SF_OK)
        st = check_secrets(s, db);
    if (st == SF_OK) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0)
            st = sf_fail(&s->err, errno == ENOMEM ? SF_ERR_NOMEM : SF_ERR_SOURCE,
                         "postgresql: eventfd: %s", strerror(errno));
        atomic_store(&q->wakefd, fd);
    }
    if (st != SF_OK) {
        q->db = NULL;
        return st;
    }
    /* Our defaults first: with expand_dbname, what the URL or conninfo says
     * overrides them, and libpq's PG* variables and .pgpass still apply. */
    const char *keys[] = {"connect_timeout", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                          "client_encoding", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "1", "30", "10", "3", "60000", "UTF8", "sqlfeed", db, NULL};
    if ((st = pg_connect(s, keys, vals, db)) != SF_OK) {
        q->db = NULL;
        return st;
    }
    if (PQ.PQstatus(q->conn) != CONNECTION_OK) {
        char line[600], clean[600];
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
        sf_db_scrub(db, line, clean, sizeof clean);
        q->db = NULL;
        return sf_fail(&s->err, !strncmp(clean, "out of memory", 13) ? SF_ERR_NOMEM : SF_ERR_SOURCE,
                       "cannot connect to %s: %s", q->where, clean);
    }
    q->db = NULL; /* the caller's string: not kept past open */
    /* Non-blocking from here: every wait is pg_wait's poll. */
    if (PQ.PQsetnonblocking(q->conn, 1) != 0)
        return pg_fail(s, "setting up the session", NULL);
    q->single = s->opts.pg_single_row;
    char setup[512];
    snprintf(setup, sizeof setup,
             "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex';"
             " SET extra_float_digits = 1; SET cursor_tuple_fraction = 1;"
             " SET statement_timeout = %d; SET TimeZone = 'UTC';",
             s->opts.timeout * 1000);
    return exec_cmd(s, "setting up the session", setup);
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

/* Sends a prepare or describe (PQsendPrepare / PQsendDescribePrepared) and
 * waits: the result, or NULL with s->err set. */
static PGresult *pg_prepare_step(sf_source *s, int describe)
{
    pg_impl *q = IMPL(s);
    start_deadline(s);
    int sent = describe ? PQ.PQsendDescribePrepared(q->conn, "")
                        : PQ.PQsendPrepare(q->conn, "", q->rw.sql, q->rw.nplaceholders, NULL);
    PGresult *r = sent ? pg_results(s) : NULL;
    q->pos_base = 0;
    if (!r && !s->err.msg[0])
        pg_fail(s, "query", NULL);
    if (r && PQ.PQresultStatus(r) != PGRES_COMMAND_OK) {
        pg_fail(s, "query", r);
        PQ.PQclear(r);
        r = NULL;
    }
    q->pos_base = -1;
    return r;
}

static sf_status pg_prepare(sf_source *s, const char *sql)
{
    pg_impl *q = IMPL(s);
    sf_census *cs = s->cref.census;
    sf_status st = sf_sql_rewrite_params(cs, SF_SQL_POSTGRES, sql, &q->rw, &s->err);
    if (st != SF_OK)
        return st;
    if (!q->rw.sql[0])
        return sf_fail(&s->err, SF_ERR_SOURCE, "query is empty");
    /* Describe without running: the columns are known before any row. */
    PGresult *r = pg_prepare_step(s, 0);
    if (r) {
        PQ.PQclear(r);
        r = pg_prepare_step(s, 1);
    }
    if (!r)
        return !strncmp(s->err.msg, "postgresql: out of memory", 25) ? SF_ERR_NOMEM : SF_ERR_SOURCE;
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
    if (gone && !atomic_load(&s->cancelled)) {
        char line[600];
        first_line("", msg, line, sizeof line);
        sf_fail(&s->err, SF_ERR_SOURCE, "postgresql: lost the connection to %s: %s", q->where, line);
    } else {
        pg_fail(s, "", r);
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
    PGresult *r = pg_exec(s, "", sql, -1, NULL, NULL);
    if (!r)
        return -1;
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

/* The read transaction, begun once: before the rows, or before a shard's
 * plan (so both see the same data), or to export its snapshot. With the
 * "snapshot" option it imports an exported snapshot (SET TRANSACTION
 * SNAPSHOT must be the transaction's first statement), so several shards
 * read the same data. */
static sf_status begin_read(sf_source *s)
{
    pg_impl *q = IMPL(s);
    if (q->in_tx)
        return SF_OK;
    sf_status st = exec_cmd(s, "", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (st == SF_OK && s->opts.snapshot[0]) {
        char set[128]; /* the id holds hex digits and '-' only (source.c) */
        snprintf(set, sizeof set, "SET TRANSACTION SNAPSHOT '%s'", s->opts.snapshot);
        if ((st = exec_cmd(s, "importing the snapshot", set)) != SF_OK) {
            char m[sizeof s->err.msg];
            snprintf(m, sizeof m, "%s", s->err.msg);
            st = sf_fail(&s->err, st,
                         "%s (the snapshot %s must still be held open by the process that "
                         "exported it: sqlfeed snapshot)",
                         m, s->opts.snapshot);
        }
    }
    q->in_tx = st == SF_OK;
    return st;
}

static sf_status pg_query_text(sf_source *s, const char *head, const char *tail,
                               const char *const *values,
                               int (*fn)(void *ud, int ncols, const char *const *vals), void *ud)
{
    pg_impl *q = IMPL(s);
    if (q->started)
        return sf_fail(&s->err, SF_ERR_STATE, "postgresql: a query over the rows once they started");
    sf_status st = begin_read(s);
    if (st != SF_OK)
        return st;
    sf_buf sql;
    if (sf_sql_wrap(s->cref.census, head, q->rw.sql, tail, &sql, &s->err) != SF_OK)
        return SF_ERR_NOMEM;
    PGresult *r = pg_exec(s, "planning the shards", sql.data, q->rw.nplaceholders, values, NULL);
    sf_buf_free(&sql);
    if (!r)
        return SF_ERR_SOURCE;
    if (PQ.PQresultStatus(r) != PGRES_TUPLES_OK) {
        q->pos_base = (int)strlen(head);
        st = pg_fail(s, "planning the shards", r);
        q->pos_base = -1;
        PQ.PQclear(r);
        return st;
    }
    int nc = PQ.PQnfields(r) < 8 ? PQ.PQnfields(r) : 8;
    for (int row = 0; st == SF_OK && row < PQ.PQntuples(r); row++) {
        const char *vals[8];
        for (int c = 0; c < nc; c++)
            vals[c] = PQ.PQgetisnull(r, row, c) ? NULL : PQ.PQgetvalue(r, row, c);
        if (fn(ud, nc, vals))
            st = SF_ERR_ARG;
    }
    PQ.PQclear(r);
    return st;
}

static sf_status pg_export_snapshot(sf_source *s, char *buf, size_t n)
{
    sf_status st = begin_read(s);
    if (st != SF_OK)
        return st;
    PGresult *r = pg_exec(s, "exporting the snapshot", "SELECT pg_export_snapshot()", 0, NULL, NULL);
    if (!r)
        return SF_ERR_SOURCE;
    if (PQ.PQresultStatus(r) != PGRES_TUPLES_OK || PQ.PQntuples(r) != 1) {
        st = pg_fail(s, "exporting the snapshot", r);
    } else if ((size_t)snprintf(buf, n, "%s", PQ.PQgetvalue(r, 0, 0)) >= n) {
        st = sf_fail(&s->err, SF_ERR_ARG, "exporting the snapshot: its id is longer than %zu bytes",
                     n - 1);
        buf[0] = '\0';
    }
    PQ.PQclear(r);
    return st;
}

/* Single-row mode: one PGresult per row, the server streaming meanwhile.
 * The whole query is one statement: the client's deadline runs from the
 * moment it is sent. */
static int single_next(sf_source *s)
{
    pg_impl *q = IMPL(s);
    drop_batch(s);
    if (!q->started) {
        q->started = 1;
        if (begin_read(s) != SF_OK)
            return -1;
        start_deadline(s);
        q->pos_base = 0; /* until the query's end: its errors point into it */
        if (!PQ.PQsendQueryParams(q->conn, q->rw.sql, q->rw.nplaceholders, NULL, q->values,
                                  q->lengths, NULL, 0) ||
            !PQ.PQsetSingleRowMode(q->conn)) {
            pg_fail(s, "", NULL);
            return -1;
        }
    }
    if (pg_wait(s) != 0) {
        q->finished = 1;
        return -1;
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
    q->finished = 1;
    /* The end of the query: the rest of its results, waited for. */
    while (PQ.PQstatus(q->conn) != CONNECTION_BAD) {
        if (pg_wait(s) != 0)
            return -1;
        if (!(r = PQ.PQgetResult(q->conn)))
            break;
        PQ.PQclear(r);
    }
    q->pos_base = -1;
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
        if (begin_read(s) != SF_OK)
            return -1;
        static const char head[] = "DECLARE sqlfeed_rows NO SCROLL CURSOR FOR ";
        sf_buf decl;
        if (sf_sql_wrap(s->cref.census, head, q->rw.sql, "", &decl, &s->err) != SF_OK)
            return -1;
        PGresult *r = pg_exec(s, "", decl.data, q->rw.nplaceholders, q->values, q->lengths);
        sf_buf_free(&decl);
        if (!r)
            return -1;
        int ok = PQ.PQresultStatus(r) == PGRES_COMMAND_OK;
        q->pos_base = (int)sizeof head - 1;
        if (!ok)
            pg_fail(s, "", r);
        q->pos_base = -1;
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
    PGresult *r = pg_exec(s, "counting", sql.data, q->rw.nplaceholders, values, NULL);
    sf_buf_free(&sql);
    if (!r)
        return SF_ERR_SOURCE;
    sf_status st = SF_OK;
    if (PQ.PQresultStatus(r) == PGRES_TUPLES_OK && PQ.PQntuples(r) == 1) {
        *rows = strtoull(PQ.PQgetvalue(r, 0, 0), NULL, 10);
    } else {
        q->pos_base = (int)strlen(SF_SQL_COUNT_HEAD);
        st = pg_fail(s, "counting", r);
        q->pos_base = -1;
    }
    PQ.PQclear(r);
    return st;
}

/* Async-signal-safe: an atomic store and a write(2) to the eventfd, which
 * the wait in progress (or the next one) sees at once; the render's thread
 * then sends the cancel request to the server (send_cancel). */
static void pg_interrupt(sf_source *s)
{
    pg_impl *q = IMPL(s);
    if (!q)
        return;
    int fd = atomic_load(&q->wakefd);
    if (fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(fd, &one, sizeof one);
        (void)w; /* full (EAGAIN): it is readable already */
    }
}

static void pg_close(sf_source *s)
{
    pg_impl *q = IMPL(s);
    if (!q)
        return;
    sf_census *cs = s->cref.census;
    drop_batch(s);
    if (q->conn) {
        /* A statement still running (a failed or cancelled render): stop it
         * on the server before leaving. PQfinish does not wait (the
         * connection is non-blocking). */
        if (q->started && !q->finished && PQ.PQstatus(q->conn) == CONNECTION_OK)
            send_cancel(s);
        PQ.PQfinish(q->conn); /* ends the transaction and the cursor with it */
    }
    int fd = atomic_exchange(&q->wakefd, -1); /* a signal now writes nowhere */
    if (fd >= 0)
        close(fd);
    if (q->api.lib)
        dlclose(q->api.lib);
    sf_sql_rewrite_free(cs, &q->rw);
    sf_dealloc(cs, q->values);
    sf_dealloc(cs, q->lengths);
    sf_dealloc(cs, q->types);
    s->impl = NULL; /* before the free: a signal handler reads it */
    sf_dealloc(cs, q);
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
    .query_text = pg_query_text,
    .export_snapshot = pg_export_snapshot,
    .close = pg_close,
};
