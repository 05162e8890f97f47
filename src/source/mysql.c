/* mysql.c: the MySQL / MariaDB backend (libmariadb).
 *
 * --db mysql://[USER[:PASSWORD]@]HOST[:PORT]/DB[?OPTIONS] (or mariadb://).
 * USER, PASSWORD and DB are percent-decoded. A HOST connects over TCP;
 * an empty HOST (mysql://USER@/DB) lets the client library choose (the
 * default Unix socket, or what the option files say); ?socket=PATH, with
 * an empty HOST or localhost, connects to that Unix socket. The password
 * comes from the URL, else from MYSQL_PWD, else from the option files:
 * the [client] group of the usual files (/etc/mysql/my.cnf, ~/.my.cnf) is
 * always read, and ?option-file=PATH reads PATH instead of them. TLS and
 * other client settings can live there too (ssl-ca, ssl-verify-server-cert).
 *
 * The session is pinned so the text of a value does not depend on server
 * settings: utf8mb4 with a binary collation, UTC (time_zone '+00:00', so a
 * TIMESTAMP reads in UTC whatever the server's zone), long net timeouts so a
 * slow writer downstream is not cut off (net_write_timeout = 3600), and
 * group_concat_max_len at its largest, with warning 1260 (a JSON_ARRAYAGG or
 * GROUP_CONCAT value cut anyway) an error at the end of the rows. Everything
 * runs in START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY, begun at
 * open: --count and the rows see the same data, and nothing can be written.
 *
 * Rows come through a server-side prepared statement (so parameters are
 * bound by the server, never pasted into SQL) without a server cursor (one
 * would materialize the whole result in a temporary table first) and without
 * mysql_stmt_store_result (which would read everything into client memory):
 * each mysql_stmt_fetch reads one row from the socket. Every column is
 * fetched as text into a buffer of our own that grows when a longer value
 * arrives, so memory is the largest row seen plus libmariadb's network
 * buffer (accounted in the census as driver memory).
 *
 * Cancelling (see my_interrupt): a signal handler cannot connect to send
 * KILL QUERY, so it only shuts the socket down; the render's thread sees the
 * read fail at once and then, outside the handler, sends KILL QUERY from a
 * second short-lived connection so the server stops working too. */
#include <errno.h>
#include <fcntl.h>
#include <dlfcn.h>
#include <mysql.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "source.h"
#include "sqltext.h"

#define CONNECT_TIMEOUT 10      /* seconds */
#define IO_TIMEOUT 600          /* seconds without a byte before a read gives up */
#define KILL_TIMEOUT 3          /* the KILL QUERY connection's connect/read limit */
#define CLIENT_GRACE 2          /* seconds past --timeout before a read gives up */
#define COL_BUF_INIT 256

enum { COL_TEXT, COL_NUM, COL_INT, COL_BIT };

typedef struct my_col {
    char *buf;          /* census memory (SF_MEM_ROW), cap bytes */
    unsigned long cap;  /* what the fetch may write */
    unsigned long len;  /* the value's full length, set by the fetch */
    my_bool is_null, error;
    uint8_t kind;       /* COL_*: how truthiness and the text are decided */
    uint8_t zerofill;   /* ZEROFILL integer: padded to width, as the server prints it */
    unsigned width;
    char bits[24];      /* a BIT value as decimal text */
    size_t nbits;
} my_col;

/* libmariadb is loaded when a MySQL/MariaDB URL is opened, not linked, so
 * that other runs do not map it and its TLS dependencies (see pg.c). The
 * functions live in the source's state (no globals); MY.f(...) calls
 * through the table of the my_impl `q` in scope. */
#define MY_FUNCS(X) \
    X(mysql_close) \
    X(mysql_errno) \
    X(mysql_error) \
    X(mysql_fetch_fields) \
    X(mysql_fetch_row) \
    X(mysql_num_fields) \
    X(mysql_free_result) \
    X(mysql_get_socket) \
    X(mysql_init) \
    X(mysql_optionsv) \
    X(mysql_real_connect) \
    X(mysql_real_connect_start) \
    X(mysql_real_connect_cont) \
    X(mysql_get_timeout_value_ms) \
    X(mysql_real_query) \
    X(mysql_stmt_attr_set) \
    X(mysql_stmt_bind_param) \
    X(mysql_stmt_bind_result) \
    X(mysql_stmt_close) \
    X(mysql_stmt_errno) \
    X(mysql_stmt_error) \
    X(mysql_stmt_execute) \
    X(mysql_stmt_fetch) \
    X(mysql_stmt_fetch_column) \
    X(mysql_stmt_field_count) \
    X(mysql_stmt_init) \
    X(mysql_stmt_param_count) \
    X(mysql_stmt_prepare) \
    X(mysql_stmt_result_metadata) \
    X(mysql_store_result) \
    X(mysql_thread_id) \

typedef struct my_api {
    void *lib;
#define MY_FIELD(f) __typeof__(f) *f;
    MY_FUNCS(MY_FIELD)
#undef MY_FIELD
} my_api;

#define MY (q->api)

typedef struct my_impl {
    my_api api;
    MYSQL *conn;
    MYSQL_STMT *stmt;
    /* A duplicate of the connection's socket, for my_interrupt: shutdown()
     * acts on the socket, and while we hold the duplicate its number cannot
     * be reused by another file even after libmariadb closes its own. */
    atomic_int sigfd;
    /* eventfd my_interrupt() writes: the connect's wait polls it (there is
     * no socket to shut down yet). */
    atomic_int wakefd;
    unsigned long thread_id;
    char where[512]; /* the URL with the password masked, for messages */
    /* What the KILL QUERY connection needs: the same server and account. */
    char *host, *user, *pass, *dbname, *socket, *option_file;
    unsigned port;
    unsigned read_timeout;
    sf_sql_rewrite rw;
    size_t sqllen;      /* rw.sql without trailing blanks and ';' */
    int *pidx;          /* per '?': the index of its name in s->paramnames */
    MYSQL_BIND *params; /* per '?' */
    MYSQL_BIND *res;    /* per column */
    my_col *cols;
    int any_fixup;      /* some column is BIT or ZEROFILL */
    int64_t net_bytes;  /* libmariadb's network buffer, as accounted */
    struct timespec wait_start;
    int started, finished, failed;
    int busy;   /* a statement may be running on the server */
    int killed; /* KILL QUERY was sent */
} my_impl;

#define IMPL(s) ((my_impl *)(s)->impl)

static int my_accepts(const char *db)
{
    return !strncmp(db, "mysql://", 8) || !strncmp(db, "mariadb://", 10);
}

/* ---- the URL ------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 32);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* *out: a census copy of p[0..n) with %XX decoded. */
static sf_status dup_decoded(sf_source *s, const char *p, size_t n, const char *what, char **out)
{
    char *d = sf_alloc(s->cref.census, SF_MEM_SOURCE, n + 1);
    if (!d)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            d[o++] = p[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(p[i + 1]) : -1, lo = i + 2 < n ? hexval(p[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            sf_dealloc(s->cref.census, d);
            return sf_fail(&s->err, SF_ERR_ARG, "%s: bad %%-escape in the %s (write %% as %%25)",
                           IMPL(s)->where, what);
        }
        d[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    d[o] = '\0';
    sf_dealloc(s->cref.census, *out); /* an option given twice: the last wins */
    *out = d;
    return SF_OK;
}

/* Splits the URL into q's connection parameters. */
static sf_status parse_url(sf_source *s, const char *db)
{
    my_impl *q = IMPL(s);
    sf_status st;
    const char *auth = strstr(db, "://") + 3;
    /* As libpq does, the user part may reach up to the first '/': a '?' or
     * '#' before it belongs to the password; the last '@' ends it (an
     * unencoded '@' in a password works too). secret.c masks the same way. */
    const char *aend = auth + strcspn(auth, "/");
    const char *at = NULL;
    for (const char *p = auth; p < aend; p++) /* the last '@' ends user:password */
        if (*p == '@')
            at = p;
    const char *hp = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        const char *uend = colon ? colon : at;
        if (uend > auth &&
            (st = dup_decoded(s, auth, (size_t)(uend - auth), "user name", &q->user)) != SF_OK)
            return st;
        char *pw = NULL;
        if (colon &&
            (st = dup_decoded(s, colon + 1, (size_t)(at - colon - 1), "password", &pw)) != SF_OK)
            return st;
        if (pw) { /* kept for the KILL QUERY connection: out of core dumps */
            q->pass = sf_source_secret_dup(s, pw, strlen(pw));
            explicit_bzero(pw, strlen(pw));
            sf_dealloc(s->cref.census, pw);
            if (!q->pass)
                return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
        }
        hp = at + 1;
    }
    aend = hp + strcspn(hp, "/?#"); /* the host and port end there */
    /* host, [IPv6 address] or nothing; then :port */
    const char *hend, *pstart = NULL;
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(aend - hp));
        if (!rb)
            return sf_fail(&s->err, SF_ERR_ARG, "%s: unterminated [address]", q->where);
        if (rb + 1 < aend && rb[1] != ':')
            return sf_fail(&s->err, SF_ERR_ARG, "%s: unexpected text after ]", q->where);
        if (rb + 1 < aend)
            pstart = rb + 2;
        hp++;
        hend = rb;
    } else {
        hend = memchr(hp, ':', (size_t)(aend - hp));
        if (hend)
            pstart = hend + 1;
        else
            hend = aend;
    }
    if (hend > hp && (st = dup_decoded(s, hp, (size_t)(hend - hp), "host", &q->host)) != SF_OK)
        return st;
    if (pstart) {
        unsigned long port = 0;
        const char *p = pstart;
        for (; p < aend && *p >= '0' && *p <= '9' && port <= 65535; p++)
            port = port * 10 + (unsigned long)(*p - '0');
        if (p != aend || p == pstart || port == 0 || port > 65535)
            return sf_fail(&s->err, SF_ERR_ARG, "%s: the port must be a number from 1 to 65535",
                           q->where);
        q->port = (unsigned)port;
    }
    const char *p = aend;
    if (*p == '/') {
        size_t n = strcspn(p + 1, "?#");
        if (n && (st = dup_decoded(s, p + 1, n, "database name", &q->dbname)) != SF_OK)
            return st;
        p += 1 + n;
    }
    if (*p == '?') {
        p++;
        while (*p && *p != '#') {
            size_t n = strcspn(p, "&#");
            const char *eq = memchr(p, '=', n);
            size_t klen = eq ? (size_t)(eq - p) : n;
            char **dst = NULL;
            if (klen == 6 && !strncmp(p, "socket", 6))
                dst = &q->socket;
            else if (klen == 11 && (!strncmp(p, "option-file", 11) || !strncmp(p, "option_file", 11)))
                dst = &q->option_file;
            if (n && (!dst || !eq || eq + 1 == p + n))
                return sf_fail(&s->err, SF_ERR_ARG,
                               "%s: %s URL option '%.*s' (known: socket=PATH, option-file=PATH)",
                               q->where, dst ? "empty" : "unknown", (int)klen, p);
            if (n && (st = dup_decoded(s, eq + 1, (size_t)(p + n - eq - 1), "URL option", dst)) != SF_OK)
                return st;
            p += n;
            if (*p == '&')
                p++;
        }
    }
    if (q->socket && q->host && strcmp(q->host, "localhost"))
        return sf_fail(&s->err, SF_ERR_ARG,
                       "%s: ?socket= is for a local server: leave the host empty or write "
                       "localhost",
                       q->where);
    return SF_OK;
}

/* ---- connections -------------------------------------------------------- */

/* mysql_real_connect without blocking (libmariadb's non-blocking API): every
 * wait is our poll() on the socket and on the eventfd my_interrupt() writes,
 * so a cancel ends it at once, whatever the server does (a host that
 * accepts TCP and never answers would hold mysql_real_connect for the
 * connect timeout). libmariadb keeps its own timeouts (MYSQL_WAIT_TIMEOUT).
 * Blocking calls work on the connection afterwards as before. m, or NULL
 * with the reason in mysql_error(m), or with s->cancelled set. */
static MYSQL *connect_nb(sf_source *s, my_impl *q, MYSQL *m, const char *host, const char *pass)
{
    MYSQL *ret = NULL;
    if (MY.mysql_optionsv(m, MYSQL_OPT_NONBLOCK, 0) != 0) /* no context: block, as before */
        return MY.mysql_real_connect(m, host, q->user, pass, q->dbname, q->port, q->socket, 0);
    int status = MY.mysql_real_connect_start(&ret, m, host, q->user, pass, q->dbname, q->port,
                                             q->socket, 0);
    while (status) {
        int fd = (int)MY.mysql_get_socket(m);
        if (atomic_load(&s->cancelled)) {
            if (fd >= 0)
                shutdown(fd, SHUT_RDWR); /* closing it then sends nothing that could wait */
            return NULL;
        }
        struct pollfd p[2] = {{fd, 0, 0}, {atomic_load(&q->wakefd), POLLIN, 0}};
        if (status & MYSQL_WAIT_READ)
            p[0].events |= POLLIN;
        if (status & MYSQL_WAIT_WRITE)
            p[0].events |= POLLOUT;
        if (status & MYSQL_WAIT_EXCEPT)
            p[0].events |= POLLPRI;
        int tmo = status & MYSQL_WAIT_TIMEOUT ? (int)MY.mysql_get_timeout_value_ms(m) : -1;
        int n = poll(p, 2, tmo);
        if (n < 0 && errno == EINTR)
            continue; /* a signal: the check above */
        int ev = 0;
        if (n == 0)
            ev = MYSQL_WAIT_TIMEOUT;
        if (n < 0 || (p[0].revents & (POLLIN | POLLERR | POLLHUP)))
            ev |= MYSQL_WAIT_READ;
        if (n < 0 || (p[0].revents & (POLLOUT | POLLERR | POLLHUP)))
            ev |= MYSQL_WAIT_WRITE;
        if (p[0].revents & POLLPRI)
            ev |= MYSQL_WAIT_EXCEPT;
        if (ev)
            status = MY.mysql_real_connect_cont(&ret, m, ev & status);
    }
    return ret;
}

/* Connects m with our options: m, or NULL with the reason in MY.mysql_error(m)
 * (the caller closes m either way). With s, the wait is connect_nb's, which
 * a cancel of s ends. */
static MYSQL *connect_to(my_impl *q, MYSQL *m, unsigned connect_timeout, unsigned io_timeout,
                         sf_source *s)
{
    unsigned read_to = io_timeout, write_to = io_timeout;
    my_bool off = 0;
    unsigned no_local_files = 0;
    MY.mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    MY.mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &read_to);
    MY.mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &write_to);
    MY.mysql_optionsv(m, MYSQL_OPT_RECONNECT, &off); /* a new session would lose the snapshot */
    MY.mysql_optionsv(m, MYSQL_OPT_LOCAL_INFILE, &no_local_files);
    MY.mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (q->option_file)
        MY.mysql_optionsv(m, MYSQL_READ_DEFAULT_FILE, q->option_file);
    MY.mysql_optionsv(m, MYSQL_READ_DEFAULT_GROUP, "client");
    if (q->socket || q->host) {
        unsigned proto = q->socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
        MY.mysql_optionsv(m, MYSQL_OPT_PROTOCOL, &proto);
    }
    /* The URL's password, else MYSQL_PWD, else (NULL) the option files'. */
    const char *pass = q->pass ? q->pass : getenv("MYSQL_PWD");
    const char *host = q->socket ? "localhost" : q->host;
    if (s)
        return connect_nb(s, q, m, host, pass);
    return MY.mysql_real_connect(m, host, q->user, pass, q->dbname, q->port, q->socket, 0);
}

/* Runs a statement that returns no rows; 0, or the error number. */
static unsigned run_sql(my_impl *q, MYSQL *m, const char *sql)
{
    if (MY.mysql_real_query(m, sql, (unsigned long)strlen(sql)) != 0)
        return MY.mysql_errno(m) ? MY.mysql_errno(m) : 1;
    MYSQL_RES *r = MY.mysql_store_result(m); /* none expected; drained if any */
    if (r)
        MY.mysql_free_result(r);
    return 0;
}

/* Sends KILL QUERY for our session from a second connection, once. Not for
 * a signal handler (it connects); returns 0 or -1 with why in buf. */
static int kill_query(my_impl *q, char *buf, size_t n)
{
    if (q->killed)
        return 0;
    q->killed = 1;
    MYSQL *k = MY.mysql_init(NULL);
    if (!k) {
        snprintf(buf, n, "out of memory");
        return -1;
    }
    int rc = 0;
    if (!connect_to(q, k, KILL_TIMEOUT, KILL_TIMEOUT, NULL)) {
        snprintf(buf, n, "cannot connect: %s", MY.mysql_error(k));
        rc = -1;
    } else {
        char sql[64];
        snprintf(sql, sizeof sql, "KILL QUERY %lu", q->thread_id);
        if (run_sql(q, k, sql) != 0) {
            snprintf(buf, n, "%s", MY.mysql_error(k));
            rc = -1;
        }
    }
    MY.mysql_close(k);
    return rc;
}

/* Error numbers meaning the session is gone. */
static int is_lost(unsigned e)
{
    return e == 2006 /* CR_SERVER_GONE_ERROR */ || e == 2013 /* CR_SERVER_LOST */ ||
           e == 2055 /* CR_SERVER_LOST_EXTENDED */ || e == 1927 /* ER_CONNECTION_KILLED */ ||
           e == 1053 /* ER_SERVER_SHUTDOWN */ || e == 4031 /* MySQL: idle timeout */;
}

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* s->err from a failed call: cancelled (stopping the query on the server
 * too), a lost connection (naming the server), or the server's own text. */
static sf_status my_fail(sf_source *s, const char *what, unsigned err, const char *msg)
{
    my_impl *q = IMPL(s);
    if (!msg || !*msg)
        msg = "unknown error";
    if (err == 2008 /* CR_OUT_OF_MEMORY */ || err == 1037 /* ER_OUTOFMEMORY */ ||
        err == 1038 /* ER_OUT_OF_SORTMEMORY */)
        return sf_fail(&s->err, SF_ERR_NOMEM, "mysql: %s%sout of memory: %s (%u)", what,
                       *what ? ": " : "", msg, err);
    if (atomic_load(&s->cancelled)) {
        char why[300];
        if (q->busy && kill_query(q, why, sizeof why) != 0)
            return sf_fail(&s->err, SF_ERR_SOURCE,
                           "mysql: cancelled; stopping the query on the server failed: %s", why);
        return sf_fail(&s->err, SF_ERR_SOURCE, "mysql: cancelled");
    }
    if (is_lost(err)) {
        if (err == 2013 && q->read_timeout && since(&q->wait_start) >= q->read_timeout - 1.0) {
            /* The server is likely still working on it: stop it there. */
            char why[300];
            if (q->busy)
                kill_query(q, why, sizeof why);
            if (s->opts.timeout > 0)
                return sf_fail(&s->err, SF_ERR_SOURCE,
                               "mysql: the client gave up after %u s: %s did not answer within "
                               "--timeout %d (+%d s), so it did not enforce its "
                               "max_statement_time (hung?): %s (%u)",
                               q->read_timeout, q->where, s->opts.timeout, CLIENT_GRACE, msg, err);
            return sf_fail(&s->err, SF_ERR_SOURCE,
                           "mysql: gave up on %s: nothing came from the server for %u s (the "
                           "read timeout; --timeout sets it): %s (%u)",
                           q->where, q->read_timeout, msg, err);
        }
        return sf_fail(&s->err, SF_ERR_SOURCE, "mysql: lost the connection to %s: %s (%u)",
                       q->where, msg, err);
    }
    if (err == 1317) /* ER_QUERY_INTERRUPTED, and not by us */
        return sf_fail(&s->err, SF_ERR_SOURCE,
                       "mysql: %s%sthe query was killed on the server (KILL QUERY?): %s (%u)",
                       what, *what ? ": " : "", msg, err);
    return sf_fail(&s->err, SF_ERR_SOURCE, "mysql: %s%s%s (%u)", what, *what ? ": " : "", msg,
                   err);
}

/* A statement's error; an unbuffered fetch leaves it on the connection. */
static sf_status stmt_fail(sf_source *s, MYSQL_STMT *st, const char *what)
{
    my_impl *q = IMPL(s);
    if (MY.mysql_stmt_errno(st))
        return my_fail(s, what, MY.mysql_stmt_errno(st), MY.mysql_stmt_error(st));
    MYSQL *m = q->conn;
    return my_fail(s, what, MY.mysql_errno(m), MY.mysql_error(m));
}

/* libmariadb's network buffer (one packet, so at least the largest row) in
 * the census as driver memory. It grows for a large row and stays. */
static void account_net(sf_source *s)
{
    my_impl *q = IMPL(s);
    int64_t now = q->conn ? (int64_t)q->conn->net.max_packet : 0;
    if (now != q->net_bytes) {
        int64_t objects = (now != 0) - (q->net_bytes != 0);
        sf_census_account(s->cref.census, SF_MEM_DRIVER, objects, now - q->net_bytes);
        q->net_bytes = now;
    }
}

/* TCP keepalives and a user timeout, so a silently dead peer ends the render
 * in about a minute rather than after the read timeout. */
static void keepalive(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return;
    int on = 1, idle = 30, intvl = 10, cnt = 3;
    unsigned user_timeout = 60000;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
}

static sf_status my_load(sf_source *s, my_api *a)
{
    sf_status st = sf_source_dlopen(s, "libmariadb.so.3", "MySQL/MariaDB needs libmariadb (Debian package libmariadb3)", &a->lib);
#define MY_LOAD(f)                                                                         \
    if (st == SF_OK)                                                                         \
        st = sf_source_dlsym(s, a->lib, "libmariadb.so.3", #f, (void **)&a->f);
    MY_FUNCS(MY_LOAD)
#undef MY_LOAD
    return st;
}

static sf_status my_open(sf_source *s, const char *db)
{
    my_impl *q = sf_calloc(s->cref.census, SF_MEM_SOURCE, 1, sizeof *q);
    if (!q)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    s->impl = q;
    atomic_init(&q->sigfd, -1);
    atomic_init(&q->wakefd, -1);
    sf_db_mask(db, q->where, sizeof q->where);
    sf_status st = parse_url(s, db);
    if (st == SF_OK)
        st = my_load(s, &q->api);
    if (st != SF_OK)
        return st;
    /* A read waits at most this long for a byte: 600 s, or with --timeout N
     * N + 2 s, so the server's own limit speaks first and a server that does
     * not enforce it (hung) is given up on by the client. */
    q->read_timeout = IO_TIMEOUT;
    if (s->opts.timeout > 0) /* the client's own limit, should the server not enforce its */
        q->read_timeout = (unsigned)s->opts.timeout + CLIENT_GRACE;
    if (!(q->conn = MY.mysql_init(NULL)))
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    int wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wfd < 0)
        return sf_fail(&s->err, errno == ENOMEM ? SF_ERR_NOMEM : SF_ERR_SOURCE,
                       "mysql: eventfd: %s", strerror(errno));
    atomic_store(&q->wakefd, wfd);
    if (!connect_to(q, q->conn, CONNECT_TIMEOUT, q->read_timeout, s)) {
        if (atomic_load(&s->cancelled))
            return sf_fail(&s->err, SF_ERR_CANCELLED, "cancelled while connecting to %s",
                           q->where);
        char why[600]; /* the host may be quoted, and a misread URL puts password text there */
        sf_db_scrub(db, MY.mysql_error(q->conn), why, sizeof why);
        unsigned e = MY.mysql_errno(q->conn);
        return sf_fail(&s->err, e == 2008 /* CR_OUT_OF_MEMORY */ ? SF_ERR_NOMEM : SF_ERR_SOURCE,
                       "cannot connect to %s: %s (%u)", q->where, why, e);
    }
    q->thread_id = MY.mysql_thread_id(q->conn);
    int fd = (int)MY.mysql_get_socket(q->conn);
    if (fd >= 0) {
        keepalive(fd);
        atomic_store(&q->sigfd, fcntl(fd, F_DUPFD_CLOEXEC, 0));
    }
    account_net(s);

    char tmo[96];
    const char *setup[] = {
        "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
        "SET SESSION net_write_timeout = 3600, net_read_timeout = 3600, time_zone = '+00:00'",
        /* JSON_ARRAYAGG and GROUP_CONCAT cut their value at this many bytes
         * (1 MiB by default) with only a warning: MariaDB's largest, and
         * warning 1260 after the rows is an error (check_warnings). */
        "SET SESSION group_concat_max_len = 4294967295",
        tmo,
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
    };
    /* --timeout: MariaDB's max_statement_time, else MySQL's max_execution_time. */
    snprintf(tmo, sizeof tmo, "SET SESSION max_statement_time = %d", s->opts.timeout);
    for (size_t i = 0; i < sizeof setup / sizeof *setup; i++) {
        if (setup[i] == tmo && s->opts.timeout <= 0)
            continue;
        unsigned e = run_sql(q, q->conn, setup[i]);
        if (e == 1193 /* ER_UNKNOWN_SYSTEM_VARIABLE */ && setup[i] == tmo) {
            snprintf(tmo, sizeof tmo, "SET SESSION max_execution_time = %ld",
                     (long)s->opts.timeout * 1000);
            e = run_sql(q, q->conn, tmo);
        }
        if (e)
            return sf_fail(&s->err, SF_ERR_SOURCE, "mysql: setting up the session on %s: %s (%u)",
                           q->where, MY.mysql_error(q->conn), e);
    }
    return SF_OK;
}

/* ---- the query ---------------------------------------------------------- */

static const char *my_colname(void *ud, int i) { return ((MYSQL_FIELD *)ud)[i].name; }

static sf_status my_prepare(sf_source *s, const char *sql)
{
    my_impl *q = IMPL(s);
    sf_census *cs = s->cref.census;
    sf_status st = sf_sql_rewrite_params(cs, SF_SQL_MYSQL, sql, &q->rw, &s->err);
    if (st != SF_OK)
        return st;
    /* A trailing ';' is fine for a prompt, not for a prepared statement or
     * the count's subquery. */
    q->sqllen = strlen(q->rw.sql); /* without a trailing ';': sf_sql_rewrite_params */
    if (!q->sqllen)
        return sf_fail(&s->err, SF_ERR_SOURCE, "query is empty");
    if (!(q->stmt = MY.mysql_stmt_init(q->conn)))
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    /* A prepare can wait on the server (for a metadata lock): a cancel then
     * stops it there too (KILL QUERY, my_fail). */
    q->busy = 1;
    int prc = MY.mysql_stmt_prepare(q->stmt, q->rw.sql, (unsigned long)q->sqllen);
    if (prc != 0) {
        st = stmt_fail(s, q->stmt, "query");
        q->busy = 0;
        return st;
    }
    q->busy = 0;
    unsigned n = MY.mysql_stmt_field_count(q->stmt);
    if (n == 0)
        return sf_fail(&s->err, SF_ERR_SOURCE, "query returns no columns; give a SELECT");
    if (MY.mysql_stmt_param_count(q->stmt) != (unsigned long)q->rw.nplaceholders)
        return sf_fail(&s->err, SF_ERR_SOURCE,
                       "query: the server counts %lu parameters where sqlfeed found %d (a "
                       "parameter inside a /*! ... */ comment?)",
                       MY.mysql_stmt_param_count(q->stmt), q->rw.nplaceholders);
    MYSQL_RES *meta = MY.mysql_stmt_result_metadata(q->stmt);
    if (!meta)
        return stmt_fail(s, q->stmt, "query");
    st = sf_source_set_columns(s, (int)n, my_colname, MY.mysql_fetch_fields(meta));
    MY.mysql_free_result(meta);
    if (st != SF_OK)
        return st;

    q->res = sf_calloc(cs, SF_MEM_SOURCE, n, sizeof *q->res);
    q->cols = sf_calloc(cs, SF_MEM_SOURCE, n, sizeof *q->cols);
    if (!q->res || !q->cols)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    for (unsigned i = 0; i < n; i++) {
        my_col *c = &q->cols[i];
        if (!(c->buf = sf_alloc(cs, SF_MEM_ROW, COL_BUF_INIT)))
            return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
        c->cap = COL_BUF_INIT;
        MYSQL_BIND *b = &q->res[i];
        b->buffer_type = MYSQL_TYPE_STRING;
        b->buffer = c->buf;
        b->buffer_length = c->cap;
        b->length = &c->len;
        b->is_null = &c->is_null;
        b->error = &c->error;
    }

    /* Distinct names in order of first use; each '?' points at its name. */
    int np = q->rw.nplaceholders;
    q->pidx = sf_calloc(cs, SF_MEM_SOURCE, (size_t)np + 1, sizeof *q->pidx);
    q->params = sf_calloc(cs, SF_MEM_SOURCE, (size_t)np + 1, sizeof *q->params);
    if (!q->pidx || !q->params)
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    for (int k = 0; k < np; k++) {
        const char *name = q->rw.names[k];
        int j;
        for (j = 0; j < s->nparams; j++)
            if (!strcmp(s->paramnames[j], name))
                break;
        if (j == s->nparams && (st = sf_source_add_param(s, name, strlen(name))) != SF_OK)
            return st;
        q->pidx[k] = j;
        q->params[k].buffer_type = MYSQL_TYPE_STRING;
        q->params[k].buffer = (void *)"";
    }
    return SF_OK;
}

static sf_status my_bind(sf_source *s, int i, const char *value, size_t len)
{
    my_impl *q = IMPL(s);
    if (len > 0xffffffffu)
        return sf_fail(&s->err, SF_ERR_SOURCE, "parameter :%s is too long", s->paramnames[i]);
    for (int k = 0; k < q->rw.nplaceholders; k++) {
        if (q->pidx[k] != i)
            continue;
        q->params[k].buffer = (void *)(value ? value : "");
        q->params[k].buffer_length = (unsigned long)len;
    }
    return SF_OK;
}

/* Column kinds, from the types the server gives at execute (a '?' column's
 * type is only known then). */
static void set_kinds(sf_source *s)
{
    my_impl *q = IMPL(s);
    MYSQL_RES *meta = MY.mysql_stmt_result_metadata(q->stmt);
    if (!meta)
        return;
    MYSQL_FIELD *f = MY.mysql_fetch_fields(meta);
    q->any_fixup = 0;
    for (int i = 0; i < s->ncols; i++) {
        my_col *c = &q->cols[i];
        switch (f[i].type) {
        case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_INT24:
        case MYSQL_TYPE_LONG: case MYSQL_TYPE_LONGLONG:
            c->kind = COL_INT;
            break;
        case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL:
        case MYSQL_TYPE_FLOAT: case MYSQL_TYPE_DOUBLE:
            c->kind = COL_NUM;
            break;
        case MYSQL_TYPE_BIT:
            c->kind = COL_BIT;
            q->any_fixup = 1;
            break;
        default:
            c->kind = COL_TEXT;
            break;
        }
        /* The binary protocol sends integers as integers: ZEROFILL's padding
         * is the client's to add, as the text protocol would show it. */
        c->zerofill = c->kind == COL_INT && (f[i].flags & ZEROFILL_FLAG) && f[i].length < 64;
        c->width = c->zerofill ? (unsigned)f[i].length : 0;
        q->any_fixup |= c->zerofill;
    }
    MY.mysql_free_result(meta);
}

/* A longer value than its buffer: grow the buffer (geometrically, so this
 * happens a few times per column at most) and read the value again. */
static int refetch_truncated(sf_source *s)
{
    my_impl *q = IMPL(s);
    int rebind = 0;
    for (int i = 0; i < s->ncols; i++) {
        my_col *c = &q->cols[i];
        if (c->is_null || c->len <= c->cap)
            continue;
        unsigned long cap = c->cap * 2 > c->len + 1 ? c->cap * 2 : c->len + 1;
        char *p = sf_realloc(s->cref.census, SF_MEM_ROW, c->buf, cap);
        if (!p) {
            sf_fail(&s->err, SF_ERR_NOMEM, "out of memory for a value of %lu bytes in column %s",
                    c->len, s->colnames[i]);
            return -1;
        }
        c->buf = p;
        c->cap = cap;
        q->res[i].buffer = p;
        q->res[i].buffer_length = cap;
        MYSQL_BIND b;
        memset(&b, 0, sizeof b);
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = p;
        b.buffer_length = cap;
        b.length = &c->len;
        b.is_null = &c->is_null;
        b.error = &c->error;
        if (MY.mysql_stmt_fetch_column(q->stmt, &b, (unsigned)i, 0) != 0) {
            stmt_fail(s, q->stmt, "");
            return -1;
        }
        rebind = 1;
    }
    /* The statement keeps its own copy of the bindings: give it the new
     * buffers for the rows to come. */
    if (rebind && MY.mysql_stmt_bind_result(q->stmt, q->res) != 0) {
        stmt_fail(s, q->stmt, "");
        return -1;
    }
    return 0;
}

/* BIT as a decimal number; ZEROFILL integers padded. */
static void fixup_row(sf_source *s)
{
    my_impl *q = IMPL(s);
    for (int i = 0; i < s->ncols; i++) {
        my_col *c = &q->cols[i];
        if (c->is_null)
            continue;
        if (c->kind == COL_BIT) {
            uint64_t v = 0;
            for (unsigned long k = 0; k < c->len && k < 8; k++)
                v = v << 8 | (unsigned char)c->buf[k];
            char tmp[24];
            size_t n = 0;
            do
                tmp[n++] = (char)('0' + v % 10);
            while (v /= 10);
            for (c->nbits = 0; n;)
                c->bits[c->nbits++] = tmp[--n];
            c->bits[c->nbits] = '\0';
        } else if (c->zerofill && c->len < c->width && c->width < c->cap) {
            unsigned long pad = c->width - c->len;
            memmove(c->buf + pad, c->buf, c->len);
            memset(c->buf, '0', pad);
            c->len = c->width;
        }
    }
}

static int start(sf_source *s)
{
    my_impl *q = IMPL(s);
    unsigned long cursor = CURSOR_TYPE_NO_CURSOR;
    if ((q->rw.nplaceholders && MY.mysql_stmt_bind_param(q->stmt, q->params) != 0) ||
        MY.mysql_stmt_attr_set(q->stmt, STMT_ATTR_CURSOR_TYPE, &cursor) != 0) {
        stmt_fail(s, q->stmt, "");
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC_COARSE, &q->wait_start);
    if (MY.mysql_stmt_execute(q->stmt) != 0) {
        stmt_fail(s, q->stmt, "");
        return -1;
    }
    set_kinds(s);
    /* No mysql_stmt_store_result: rows are read one fetch at a time. */
    if (MY.mysql_stmt_bind_result(q->stmt, q->res) != 0) {
        stmt_fail(s, q->stmt, "");
        return -1;
    }
    return 0;
}

/* After the last row: the statement's warnings. A JSON_ARRAYAGG or
 * GROUP_CONCAT value longer than group_concat_max_len was cut, and the
 * server says so only by warning 1260 (the cut JSON would often still
 * parse: a list missing its last items), so it fails the render: nothing
 * is published. Other warnings are left alone. The server keeps
 * max_error_count (64) of them: a 1260 after 64 other warnings is not
 * seen. 0, or -1 with s->err set. */
static int check_warnings(sf_source *s)
{
    my_impl *q = IMPL(s);
    /* Asked every time: after a prepared statement's streamed rows,
     * libmariadb 3.3 says 0 for mysql_warning_count and for
     * mysql_stmt_warning_count even when the server has warnings (seen with
     * MariaDB 10.11: tests/server_test.sh), and one more round trip at the
     * end of a render costs nothing. */
    static const char show[] = "SHOW WARNINGS";
    if (MY.mysql_real_query(q->conn, show, sizeof show - 1) != 0) {
        stmt_fail(s, q->stmt, "reading the query's warnings");
        return -1;
    }
    MYSQL_RES *r = MY.mysql_store_result(q->conn);
    if (!r) {
        stmt_fail(s, q->stmt, "reading the query's warnings");
        return -1;
    }
    int rc = 0;
    MYSQL_ROW row;
    if (MY.mysql_num_fields(r) >= 3) /* Level, Code, Message */
        while ((row = MY.mysql_fetch_row(r)) != NULL)
            if (row[1] && strcmp(row[1], "1260") == 0) {
                sf_fail(&s->err, SF_ERR_SOURCE,
                        "MariaDB warning 1260: %s (a JSON_ARRAYAGG or GROUP_CONCAT value was "
                        "cut at group_concat_max_len)", row[2] ? row[2] : "");
                rc = -1;
                break;
            }
    MY.mysql_free_result(r);
    return rc;
}

static int my_next(sf_source *s)
{
    my_impl *q = IMPL(s);
    if (q->failed)
        return -1;
    if (q->finished)
        return 0;
    if (!q->started) {
        q->started = q->busy = 1;
        if (start(s) != 0) {
            q->failed = q->finished = 1;
            q->busy = 0;
            return -1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC_COARSE, &q->wait_start);
    int rc = MY.mysql_stmt_fetch(q->stmt);
    if (rc == 0 || rc == MYSQL_DATA_TRUNCATED) {
        if (rc == MYSQL_DATA_TRUNCATED && refetch_truncated(s) != 0) {
            q->failed = 1; /* the rest is still coming: close() stops it */
            return -1;
        }
        if (q->any_fixup)
            fixup_row(s);
        if (SF_UNLIKELY((int64_t)q->conn->net.max_packet != q->net_bytes))
            account_net(s);
        return 1;
    }
    if (rc == MYSQL_NO_DATA) {
        q->finished = 1; /* the transaction ends with the connection */
        int w = check_warnings(s);
        q->busy = 0;
        if (w != 0) {
            q->failed = 1;
            return -1;
        }
        return 0;
    }
    /* 1: an error; libmariadb has ended the result. */
    stmt_fail(s, q->stmt, "");
    q->failed = q->finished = 1;
    q->busy = 0;
    return -1;
}

static void my_column(sf_source *s, int i, sf_val *out)
{
    my_impl *q = IMPL(s);
    my_col *c = &q->cols[i];
    if (c->is_null) {
        out->kind = SF_VAL_NULL;
        out->truthy = 0;
        out->s = "";
        out->n = 0;
        return;
    }
    out->kind = SF_VAL_TEXT;
    if (c->kind == COL_BIT) {
        out->s = c->bits;
        out->n = c->nbits;
        out->truthy = !(c->nbits == 1 && c->bits[0] == '0');
        return;
    }
    out->s = c->buf;
    out->n = c->len < c->cap ? c->len : c->cap;
    if (c->kind == COL_TEXT) {
        out->truthy = out->n > 0;
        return;
    }
    /* A number is falsey when it is zero: "0", "-0", "0.000", "0e0". */
    const char *p = out->s, *e = out->s + out->n;
    int nonzero = 0;
    if (p < e && (*p == '-' || *p == '+'))
        p++;
    for (; p < e && *p != 'e' && *p != 'E'; p++)
        if (*p >= '1' && *p <= '9')
            nonzero = 1;
    out->truthy = (uint8_t)nonzero;
}

/* SELECT COUNT(*) over the query, as its own statement, with the values
 * bound the same way; in the same snapshot as the rows. */
static sf_status my_count(sf_source *s, const char *const *values, uint64_t *rows)
{
    my_impl *q = IMPL(s);
    sf_census *cs = s->cref.census;
    if (q->busy)
        return sf_fail(&s->err, SF_ERR_STATE, "mysql: cannot count while the rows are read");
    sf_buf sql;
    if (sf_sql_wrap(cs, SF_SQL_COUNT_HEAD, q->rw.sql, SF_SQL_COUNT_TAIL, &sql, &s->err) != SF_OK)
        return SF_ERR_NOMEM;
    int np = q->rw.nplaceholders;
    MYSQL_BIND *pb = sf_calloc(cs, SF_MEM_SOURCE, (size_t)np + 1, sizeof *pb);
    MYSQL_STMT *st = pb ? MY.mysql_stmt_init(q->conn) : NULL;
    if (!st) {
        sf_buf_free(&sql);
        sf_dealloc(cs, pb);
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < np; k++) {
        const char *v = values[q->pidx[k]] ? values[q->pidx[k]] : "";
        pb[k].buffer_type = MYSQL_TYPE_STRING;
        pb[k].buffer = (void *)v;
        pb[k].buffer_length = (unsigned long)strlen(v);
    }
    unsigned long long n = 0;
    my_bool isnull = 0;
    MYSQL_BIND rb;
    memset(&rb, 0, sizeof rb);
    rb.buffer_type = MYSQL_TYPE_LONGLONG;
    rb.buffer = &n;
    rb.is_unsigned = 1;
    rb.is_null = &isnull;
    sf_status ret = SF_OK;
    /* The statement runs like the rows do: interrupt() must reach it. */
    q->busy = 1;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &q->wait_start);
    if (MY.mysql_stmt_prepare(st, sql.data, (unsigned long)sql.len) != 0 ||
        (np && MY.mysql_stmt_bind_param(st, pb) != 0) || MY.mysql_stmt_execute(st) != 0 ||
        MY.mysql_stmt_bind_result(st, &rb) != 0)
        ret = stmt_fail(s, st, "counting");
    else {
        int rc = MY.mysql_stmt_fetch(st);
        if (rc == 0 && !isnull)
            *rows = n;
        else if (rc == 1)
            ret = stmt_fail(s, st, "counting");
        else
            ret = sf_fail(&s->err, SF_ERR_SOURCE, "mysql: counting: no count came back");
    }
    q->busy = 0;
    MY.mysql_stmt_close(st);
    sf_buf_free(&sql);
    sf_dealloc(cs, pb);
    return ret;
}

/* The shard plan's query (source.h), in the transaction begun at open. */
static sf_status my_query_text(sf_source *s, const char *head, const char *tail,
                               const char *const *values,
                               int (*fn)(void *ud, int ncols, const char *const *vals), void *ud)
{
    my_impl *q = IMPL(s);
    sf_census *cs = s->cref.census;
    if (q->busy)
        return sf_fail(&s->err, SF_ERR_STATE, "mysql: a query over the rows while they are read");
    sf_buf sql;
    if (sf_sql_wrap(cs, head, q->rw.sql, tail, &sql, &s->err) != SF_OK)
        return SF_ERR_NOMEM;
    int np = q->rw.nplaceholders;
    MYSQL_BIND *pb = sf_calloc(cs, SF_MEM_SOURCE, (size_t)np + 1, sizeof *pb);
    MYSQL_STMT *st = pb ? MY.mysql_stmt_init(q->conn) : NULL;
    if (!st) {
        sf_buf_free(&sql);
        sf_dealloc(cs, pb);
        return sf_fail(&s->err, SF_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < np; k++) {
        const char *v = values[q->pidx[k]] ? values[q->pidx[k]] : "";
        pb[k].buffer_type = MYSQL_TYPE_STRING;
        pb[k].buffer = (void *)v;
        pb[k].buffer_length = (unsigned long)strlen(v);
    }
    enum { COLS = 8 };
    char text[COLS][64];
    unsigned long len[COLS];
    my_bool isnull[COLS], trunc[COLS];
    MYSQL_BIND rb[COLS];
    memset(rb, 0, sizeof rb);
    for (int c = 0; c < COLS; c++) {
        rb[c].buffer_type = MYSQL_TYPE_STRING;
        rb[c].buffer = text[c];
        rb[c].buffer_length = sizeof text[c] - 1;
        rb[c].length = &len[c];
        rb[c].is_null = &isnull[c];
        rb[c].error = &trunc[c];
    }
    sf_status ret = SF_OK;
    q->busy = 1;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &q->wait_start);
    unsigned nc = 0;
    if (MY.mysql_stmt_prepare(st, sql.data, (unsigned long)sql.len) != 0 ||
        (np && MY.mysql_stmt_bind_param(st, pb) != 0) || MY.mysql_stmt_execute(st) != 0)
        ret = stmt_fail(s, st, "planning the shards");
    else if ((nc = MY.mysql_stmt_field_count(st)) > COLS || MY.mysql_stmt_bind_result(st, rb) != 0)
        ret = nc > COLS ? sf_fail(&s->err, SF_ERR_SOURCE, "mysql: too many columns")
                        : stmt_fail(s, st, "planning the shards");
    while (ret == SF_OK) {
        int rc = MY.mysql_stmt_fetch(st);
        if (rc == MYSQL_NO_DATA)
            break;
        if (rc == 1) {
            ret = stmt_fail(s, st, "planning the shards");
            break;
        }
        if (rc == MYSQL_DATA_TRUNCATED) {
            ret = sf_fail(&s->err, SF_ERR_SOURCE, "mysql: planning the shards: a value over 63 bytes");
            break;
        }
        const char *vals[COLS];
        for (unsigned c = 0; c < nc; c++) {
            text[c][len[c] < sizeof text[c] ? len[c] : sizeof text[c] - 1] = '\0';
            vals[c] = isnull[c] ? NULL : text[c];
        }
        if (fn(ud, (int)nc, vals))
            ret = SF_ERR_ARG;
    }
    q->busy = 0;
    MY.mysql_stmt_close(st);
    sf_buf_free(&sql);
    sf_dealloc(cs, pb);
    return ret;
}

/* Async-signal-safe: an atomic store and shutdown(2), both on the list of
 * safe calls. The blocked read (or the next one) then fails at once, and the
 * thread reading sees `cancelled` and sends KILL QUERY (my_fail). */
static void my_interrupt(sf_source *s)
{
    my_impl *q = IMPL(s);
    if (!q)
        return;
    int fd = atomic_load(&q->sigfd);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    int wfd = atomic_load(&q->wakefd);
    if (wfd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(wfd, &one, sizeof one);
        (void)w; /* full (EAGAIN): it is readable already */
    }
}

static void free_str(sf_census *cs, char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        sf_dealloc(cs, p);
    }
}

static void my_close(sf_source *s)
{
    my_impl *q = IMPL(s);
    if (!q)
        return;
    sf_census *cs = s->cref.census;
    int fd = atomic_exchange(&q->sigfd, -1);
    int wfd = atomic_exchange(&q->wakefd, -1); /* a signal now writes nowhere */
    if (wfd >= 0)
        close(wfd);
    if (q->stmt) {
        /* Rows still coming: closing the statement would read them all
         * first. Shut the socket so that fails at once, and stop the query
         * on the server (it may be between rows, not writing). */
        if (q->busy) {
            if (fd >= 0)
                shutdown(fd, SHUT_RDWR);
            char why[300];
            kill_query(q, why, sizeof why);
        }
        MY.mysql_stmt_close(q->stmt);
    }
    if (q->conn)
        MY.mysql_close(q->conn); /* ends the read-only transaction */
    if (fd >= 0)
        close(fd);
    q->conn = NULL;
    account_net(s);
    if (q->cols)
        for (int i = 0; i < s->ncols; i++)
            sf_dealloc(cs, q->cols[i].buf);
    sf_dealloc(cs, q->cols);
    sf_dealloc(cs, q->res);
    sf_dealloc(cs, q->params);
    sf_dealloc(cs, q->pidx);
    sf_sql_rewrite_free(cs, &q->rw);
    free_str(cs, q->host);
    free_str(cs, q->user);
    sf_source_secret_free(s, q->pass);
    free_str(cs, q->dbname);
    free_str(cs, q->socket);
    free_str(cs, q->option_file);
    if (q->api.lib)
        dlclose(q->api.lib);
    s->impl = NULL; /* before the free: a signal handler reads it */
    sf_dealloc(cs, q);
}

const sf_source_vt sf_source_mysql = {
    .name = "mysql",
    .accepts = my_accepts,
    .open = my_open,
    .prepare = my_prepare,
    .bind = my_bind,
    .next_row = my_next,
    .column = my_column,
    .count = my_count,
    .query_text = my_query_text,
    .interrupt = my_interrupt,
    .close = my_close,
};
