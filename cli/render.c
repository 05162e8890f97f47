/* render.c: `sqlfeed render`: options, signals, the run, the summary. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "monitor.h"

static const char render_usage[] =
    "usage: sqlfeed render --db PATH (--query SQL | --query-file FILE) --template NAME|FILE\n"
    "                      -o OUT [--param NAME=VALUE]... [--quiet]\n"
    "\n"
    "  --db DB              SQLite database file (opened read-only), or a server:\n"
    "                       postgresql://USER@HOST:PORT/DB (or a libpq conninfo;\n"
    "                       PGPASSWORD and ~/.pgpass are honoured), or\n"
    "                       mysql://USER@HOST:PORT/DB (MYSQL_PWD, ~/.my.cnf [client])\n"
    "  --timeout SECONDS    a server query's time limit (default: none; dead peers\n"
    "                       are found by TCP keepalives within about a minute)\n"
    "  --fetch-size N       PostgreSQL: read through a cursor, N rows per FETCH\n"
    "                       (default: libpq's single-row mode, faster here)\n"
    "  --query SQL          the query: one SELECT; its rows are {{#rows}}...{{/rows}}\n"
    "  --query-file FILE    read the query from FILE\n"
    "                       (neither: the template's own query, if it has one: a\n"
    "                       built-in's, or NAME.sql beside a template file)\n"
    "  --template NAME|FILE a built-in template (sqlfeed templates) or a .mustache file\n"
    "  -o, --output OUT     the feed; published atomically when complete ('-': stdout;\n"
    "                       /dev/stdout, /dev/fd/N: that descriptor; a device or FIFO:\n"
    "                       written, not replaced; never a new file in /dev (also\n"
    "                       /dev/shm), /proc or /sys; a name too long for the file\n"
    "                       system is refused before any row)\n"
    "  --param NAME=VALUE   bound as :NAME in the query (never pasted into it) and\n"
    "                       readable as {{NAME}} in the template; repeatable\n"
    "  -q, --quiet          no summary on stderr (errors still print)\n"
    "  --census             print the memory census at the end\n"
    "  --census-fifo PATH   print the census whenever a line is written to the FIFO\n"
    "                       PATH (made if missing); kill -USR1 PID does the same\n"
    "  --mem-log FILE       append memory samples as JSON lines (10/s at most, and\n"
    "                       at the end); sqlfeed mem-plot FILE -o mem.svg charts them\n"
    "  --max-memory SIZE    stop, publish nothing and exit 6 when peak RSS crosses\n"
    "                       SIZE, or a row would take the census past it (bytes, or\n"
    "                       with K, M, G: powers of 1024)\n"
    "  --progress[=WHEN]    rows, rows/s, bytes, RSS, elapsed on stderr, redrawn\n"
    "                       10 times a second: auto (the default: when stderr is a\n"
    "                       terminal), always (plain lines when not), never\n"
    "  --total N            rows to expect: the progress shows percent and ETA\n"
    "  --count              count the rows first (SELECT count(*) over the query)\n"
    "  -h, --help           this help\n"
    "\n"
    "The template also reads generated_at (2026-01-31T12:00:00Z), generated_date,\n"
    "generated_rfc822 and sqlfeed_version; SOURCE_DATE_EPOCH fixes their time.\n"
    "A file output is written to a temporary file beside OUT and renamed over it\n"
    "only when complete: on any failure or signal OUT is left as it was (a signal\n"
    "that would end the process: exit 128+N; a file-size limit: exit 5). A signal\n"
    "after the rename changes nothing: OUT is published, exit 0, and it is said.\n"
    "A regular file given as a descriptor (-o - 1<>OUT) is cut where the feed ends.\n"
    "No output (-o, --mem-log, --census-fifo) may be an input (the database file\n"
    "SQLite opens, the template, each partial it reads, the query) or another\n"
    "output (exit 2); none creates a file under /dev, /proc or /sys (exit 5).\n"
    "A FIFO nobody reads is waited for 10 s at most.\n"
    "kill -USR1 PID prints the census of a running render: live objects and bytes\n"
    "by type, heap, RSS, rows, and whether memory grows with the rows.\n";

/* The --db string kept to connect with: argv's own copy shows x's where its
 * passwords were (sf_db_hide_secrets). It lives in pages of its own marked
 * MADV_DONTDUMP, so a core dump does not hold it, and is wiped as soon as
 * the database is open (db_copy_wipe). NULL when out of memory. */
static char *db_copy_make(const char *arg, size_t *size)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t)page : 4096, n = strlen(arg) + 1;
    *size = (n + pg - 1) / pg * pg;
    char *p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, *size, MADV_DONTDUMP); /* best effort: a kernel without it still works */
    memcpy(p, arg, n);
    return p;
}

static void db_copy_free(char *p, size_t size)
{
    if (p) {
        explicit_bzero(p, size);
        munmap(p, size);
    }
}

/* Once the source is open, the copy is not needed: wipe it (the string
 * becomes ""). */
static void db_copy_wipe(const char *db)
{
    explicit_bzero((char *)db, strlen(db));
}

/* Reads a whole file; NULL on failure, message printed, *rc the exit
 * status it calls for (1 out of memory, 2 cannot read). */
static char *read_text_file(const char *path, const char *what, int *rc)
{
    FILE *f = fopen(path, "rb");
    *rc = EXIT_USAGE;
    if (!f) {
        cli_error("cannot read %s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            cli_error("out of memory reading %s", path);
            *rc = EXIT_FAILURE_OTHER;
            fclose(f);
            return NULL;
        }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        cli_error("cannot read %s %s", what, path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int is_file_name(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 9 && strcmp(s + n - 9, ".mustache") == 0);
}

/* The file --template names, or NULL for a built-in. */
static const char *template_file(const char *arg)
{
    return !is_file_name(arg) && sf_builtin_template_text(arg, NULL) ? NULL : arg;
}

/* NAME.sql beside a template file NAME.mustache (malloc'd), or NULL. */
static char *template_query_path(const char *file)
{
    size_t n = file ? strlen(file) : 0;
    if (n <= 9 || strcmp(file + n - 9, ".mustache") != 0)
        return NULL;
    char *sql = malloc(n - 9 + 5);
    if (sql)
        snprintf(sql, n - 9 + 5, "%.*s.sql", (int)(n - 9), file);
    return sql;
}

/* Loads --template; sets *query to the template's own query when it has one
 * (malloc'd). Returns an exit status: one rule for a name that is neither a
 * built-in nor a readable file, whichever it looks like: exit 2. */
static int load_template(sf_template *tpl, const char *arg, char **query)
{
    sf_status st;
    const char *file = template_file(arg);
    *query = NULL;
    if (!file) {
        st = sf_template_load_builtin(tpl, arg);
        const char *q = sf_builtin_template_query(arg);
        if (st == SF_OK && q && !(*query = strdup(q)))
            st = SF_ERR_NOMEM;
    } else {
        FILE *f = fopen(file, "rb");
        struct stat sb;
        int err = !f ? errno : fstat(fileno(f), &sb) != 0 ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
        if (f)
            fclose(f);
        if (err) {
            cli_error("no built-in template or readable file named '%s' (%s; sqlfeed templates "
                      "lists the built-ins)", arg, strerror(err));
            return EXIT_USAGE;
        }
        st = sf_template_load_file(tpl, file);
        char *sql = st == SF_OK ? template_query_path(file) : NULL;
        if (st == SF_OK && !sql && strlen(file) > 9 &&
            !strcmp(file + strlen(file) - 9, ".mustache"))
            st = SF_ERR_NOMEM;
        if (sql && access(sql, F_OK) == 0) {
            int rc;
            *query = read_text_file(sql, "query file", &rc);
            free(sql);
            if (!*query)
                return rc;
        } else
            free(sql);
    }
    if (st != SF_OK) {
        cli_error("%s", st == SF_ERR_NOMEM ? "out of memory" : sf_template_errmsg(tpl));
        return cli_exit_for(st);
    }
    return EXIT_OK;
}

typedef struct render_opts {
    const char *db, *query, *query_file, *template, *output;
    const char *timeout, *fetch_size;
    int quiet, census, count;
    monitor_opts mon;
} render_opts;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void summary(const render_opts *o, sf_render *r, sf_output *out, monitor *m,
                    double secs)
{
    uint64_t rows = sf_render_rows(r), bytes = sf_output_bytes(out);
    double rate = secs > 0 ? (double)rows / secs : 0;
    char verdict[200];
    /* A verdict needs samples: a short run has nothing to say about it. */
    int known = monitor_verdict(m, verdict, sizeof verdict);
    fprintf(stderr,
            "sqlfeed: %llu rows, %llu bytes (%.1f MB) in %.2f s, %.0f rows/s, peak RSS %.1f "
            "MiB%s%s -> %s\n",
            (unsigned long long)rows, (unsigned long long)bytes, (double)bytes / 1e6, secs,
            rate, (double)peak_rss() / 1048576.0, known ? ", memory " : "", known ? verdict : "",
            strcmp(o->output, "-") == 0 ? "stdout" : o->output);
}

/* A --db that names a file (SQLite), not a server or a URI. */
static const char *db_file(const char *db)
{
    return db && !strstr(db, "://") && !strchr(db, '=') && strncmp(db, "file:", 5) != 0 ? db
                                                                                          : NULL;
}

/* No output is an input or another output (cli/outputs.c). */
static int check_files(const render_opts *o, const char *tpl_query)
{
    const char *tfile = template_file(o->template);
    cli_file in[] = {
        {"--db", db_file(o->db)},
        {"--template", tfile},
        {"--query-file", o->query_file},
        {"the query of --template", tpl_query},
    };
    cli_file outs[] = {
        {"-o", o->output},
        {"--mem-log", o->mon.mem_log},
        {"--census-fifo", o->mon.fifo},
    };
    char dir[4096] = "";
    if (tfile) {
        const char *slash = strrchr(tfile, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (slash == tfile ? 1 : (int)(slash - tfile)) : 1,
                 slash ? tfile : ".");
    }
    return cli_check_files("render", in, sizeof in / sizeof in[0], outs,
                           sizeof outs / sizeof outs[0], tfile ? dir : NULL);
}

/* The files only an open source and a compiled template know: the file
 * SQLite opened (a file: URI, a path with '=' in it, a symlink: the real
 * one), and every partial file the template read. Checked after both, before
 * any output exists. */
static int check_read_files(const render_opts *o, sf_source *src, sf_template *tpl)
{
    size_t nt = sf_template_file_count(tpl), n = 0;
    cli_file *in = malloc((nt + 1) * sizeof *in);
    if (!in) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    if (sf_source_file(src))
        in[n++] = (cli_file){"--db", sf_source_file(src)};
    for (size_t i = 0; i < nt; i++)
        in[n++] = (cli_file){i ? "a partial of --template" : "--template", sf_template_file(tpl, i)};
    cli_file outs[] = {
        {"-o", o->output},
        {"--mem-log", o->mon.mem_log},
        {"--census-fifo", o->mon.fifo},
    };
    int rc = cli_check_files("render", in, n, outs, sizeof outs / sizeof outs[0], NULL);
    free(in);
    return rc;
}

/* What to say about the destination when nothing was published. */
static void say_left(const render_opts *o, sf_output *out, int opened, char *buf, size_t n)
{
    int to_stdout = strcmp(o->output, "-") == 0;
    if (!opened) /* stopped before the output was opened */
        snprintf(buf, n, "nothing written, %s left as it was", to_stdout ? "stdout" : o->output);
    else if (to_stdout || !sf_output_atomic(out))
        snprintf(buf, n, "the output is incomplete");
    else
        snprintf(buf, n, "nothing published, %s left as it was", o->output);
}

static int run_render(const render_opts *o, sf_render *r, const char *query)
{
    sf_census *census = cli_census;
    monitor *mon = NULL;
    monitor_opts mo = o->mon;
    uint64_t budget_rss = 0, limit = 0;
    char err[512], left[4200];
    sf_template *tpl = sf_template_create(census, SF_TEMPLATE_XML);
    sf_source *src = sf_source_create(census);
    sf_output *out = sf_output_create(census);
    char *own_query = NULL, *tpl_query = NULL;
    int rc = EXIT_OK, refused = 0, opened = 0;
    sf_status st = SF_OK;
    int to_stdout = strcmp(o->output, "-") == 0;
    double t0 = now_seconds();

    /* From here on every signal that would end the process ends the run
     * instead, cleanly (cli/signals.c): also while connecting, or waiting
     * for a FIFO's reader. */
    cli_signals_install(r);
    cli_signals_watch_source(src); /* a connect or a prepare stops too */
    if (!tpl || !src || !out) {
        cli_error("out of memory");
        rc = EXIT_FAILURE_OTHER;
        goto done;
    }
    tpl_query = !query ? template_query_path(template_file(o->template)) : NULL;
    if ((rc = check_files(o, tpl_query)) != EXIT_OK)
        goto done;
    if ((rc = load_template(tpl, o->template, &own_query)) != EXIT_OK)
        goto done;
    if (cli_signal_caught())
        goto signalled;
    if (!query)
        query = own_query;
    if (!query) {
        cli_error("no query: give --query or --query-file (template '%s' has none of its own)",
                  o->template);
        rc = EXIT_USAGE;
        goto done;
    }
    if ((o->timeout && (st = sf_source_set_option(src, "timeout", o->timeout)) != SF_OK) ||
        (o->fetch_size && ((st = sf_source_set_option(src, "fetch_size", o->fetch_size)) != SF_OK ||
                           (st = sf_source_set_option(src, "pg_mode", "cursor")) != SF_OK))) {
        rc = st == SF_ERR_NOMEM ? (cli_error("out of memory"), EXIT_FAILURE_OTHER)
                                : cli_usage("render", "%s", sf_source_errmsg(src));
        goto done;
    }
    /* A database server's client library keeps the password (from --db,
     * PGPASSWORD, ~/.pgpass, MYSQL_PWD, ~/.my.cnf) in its own memory for the
     * connection's life, where sqlfeed cannot wipe it: such a process makes
     * no core dump (and cannot be attached to by other users). */
    if (!db_file(o->db))
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    st = sf_source_open(src, o->db);
    db_copy_wipe(o->db); /* connected or not, the password is not needed any more */
    if (st != SF_OK || (st = sf_source_prepare(src, query)) != SF_OK) {
        if (cli_signal_caught())
            goto signalled;
        cli_error("%s", sf_source_errmsg(src));
        rc = cli_exit_for(st);
        goto done;
    }
    if (cli_signal_caught())
        goto signalled;
    if ((rc = check_read_files(o, src, tpl)) != EXIT_OK)
        goto done;
    cli_signals_set_output(out); /* a signal stops a FIFO wait, or a commit before its rename */
    st = to_stdout ? sf_output_open_fd(out, STDOUT_FILENO, "stdout")
                   : sf_output_open_file(out, o->output);
    opened = st == SF_OK;
    cli_signals_set_temp(sf_output_temp_path(out)); /* a crash removes it */
    if (cli_signal_caught())
        goto signalled;
    if (st != SF_OK) {
        cli_error("%s", sf_output_errmsg(out));
        rc = cli_exit_for(st);
        goto done;
    }
    /* Watching starts before counting: the count runs the whole query, and
     * a census, the budget and Ctrl-C must reach it too. */
    /* SQLFEED_CENSUS=off (measuring the census's cost): nothing watches. */
    if (!cli_census_off && !(mon = monitor_start(&mo, census, r, out, err, sizeof err, &rc))) {
        if (cli_signal_caught())
            goto signalled;
        cli_error("%s", err);
        goto done;
    }
    if (o->mon.max_memory) {
        /* The monitor checks RSS every 20 ms; within a row (one huge value)
         * the census refuses what would take the tracked bytes past the
         * budget less what lies outside them now (code, libraries, stacks). */
        uint64_t rss = current_rss(), live = sf_census_live_bytes(census);
        uint64_t base = rss > live ? rss - live : 0;
        limit = o->mon.max_memory > base + live ? o->mon.max_memory - base : live + 1;
        sf_census_set_limit(census, limit);
    }
    if (o->count && !cli_signal_caught()) {
        uint64_t total = 0;
        st = sf_render_count(r, src, &total);
        if (st == SF_OK) {
            if (mon)
                monitor_set_total(mon, total);
        } else if (!cli_signal_caught() && !monitor_over_budget(mon, NULL) &&
                   !(limit && (refused = sf_census_set_limit(census, limit) != SF_OK))) {
            monitor_stop(mon);
            cli_error("--count: %s", sf_render_errmsg(r));
            rc = cli_exit_for(st);
            goto done;
        }
    }
    st = cli_signal_caught() || refused || monitor_over_budget(mon, NULL)
             ? SF_ERR_CANCELLED
             : sf_render_run(r, tpl, src, out);
    cli_signals_forget_render();
    if (limit && sf_census_set_limit(census, 0) != SF_OK)
        refused = 1;
    monitor_stop(mon);
    say_left(o, out, opened, left, sizeof left);
    if (monitor_over_budget(mon, &budget_rss) && !cli_signal_caught()) {
        sf_output_abort(out);
        char grew[128];
        monitor_grew_most(mon, grew, sizeof grew);
        cli_error("memory budget exceeded: RSS %.1f MiB > --max-memory %.1f MiB after row %llu; "
                  "grew most: %s; %s",
                  (double)budget_rss / 1048576.0, (double)o->mon.max_memory / 1048576.0,
                  (unsigned long long)sf_render_rows(r), grew, left);
        monitor_print_census(mon, stderr, "memory budget exceeded");
        rc = EXIT_MEMORY;
        goto done_printed;
    }
    if (refused && st != SF_OK && !cli_signal_caught()) {
        sf_output_abort(out);
        cli_error("memory budget exceeded: an allocation would take the tracked bytes past %.1f "
                  "MiB (--max-memory %.1f MiB less %.1f MiB of code and libraries) after row "
                  "%llu; %s",
                  (double)limit / 1048576.0, (double)o->mon.max_memory / 1048576.0,
                  (double)(o->mon.max_memory - limit) / 1048576.0,
                  (unsigned long long)sf_render_rows(r), left);
        monitor_print_census(mon, stderr, "memory budget exceeded");
        rc = EXIT_MEMORY;
        goto done_printed;
    }
    if (cli_signal_caught())
        goto signalled;
    if (st == SF_OK) {
        /* Publishing takes an fsync and a rename. A signal up to the rename
         * cancels it (the output checks right before renaming): nothing is
         * published. One after it finds the feed published: we finish. */
        st = sf_output_commit(out);
        if (sf_output_published(out))
            cli_signals_set_temp(NULL);
        if (st == SF_ERR_CANCELLED && !sf_output_published(out) && cli_signal_caught())
            goto signalled;
    }
    if (st != SF_OK) {
        sf_output_abort(out);
        rc = cli_exit_for(st);
        if (*sf_render_errmsg(r)) /* the render failed */
            cli_error("%s; %s", sf_render_errmsg(r), left);
        else if (sf_output_published(out)) /* only the directory sync failed */
            cli_error("%s is published (%llu rows), but %s", o->output,
                      (unsigned long long)sf_render_rows(r), sf_output_errmsg(out));
        else
            cli_error("publishing failed after all %llu rows: %s; %s",
                      (unsigned long long)sf_render_rows(r), sf_output_errmsg(out), left);
        goto done;
    }
    cli_signals_set_temp(NULL);
    if (!o->quiet)
        summary(o, r, out, mon, now_seconds() - t0);
    if (cli_signal_caught()) /* too late to stop: the feed is whole; say so, exit 0 */
        cli_error("signal %d (%s) arrived after %s was %s; finished normally",
                  cli_signal_caught(), strsignal(cli_signal_caught()),
                  to_stdout ? "the output" : o->output,
                  sf_output_published(out) ? "published" : "complete");
    goto done;
signalled:
    cli_signals_forget_render();
    monitor_stop(mon);
    say_left(o, out, opened, left, sizeof left);
    sf_output_abort(out);
    cli_signals_set_temp(NULL);
    cli_error("stopped by signal %d (%s) after row %llu; %s", cli_signal_caught(),
              strsignal(cli_signal_caught()), (unsigned long long)sf_render_rows(r), left);
    rc = 128 + cli_signal_caught();
done:
    /* --census: at the end of the run, however it ended. */
    if (o->census && mon) {
        monitor_stop(mon);
        monitor_print_census(mon, stderr, rc == EXIT_OK ? "end of run" : "end of a failed run");
    }
done_printed:
    if (mon && monitor_log_error(mon))
        cli_error("warning: --mem-log %s: write failed (%s); the log is incomplete",
                  o->mon.mem_log, strerror(monitor_log_error(mon)));
    cli_signals_forget_render();
    monitor_free(mon);
    cli_signals_set_output(NULL);
    sf_output_free(out);
    cli_signals_set_temp(NULL);
    sf_source_free(src);
    sf_template_free(tpl);
    free(own_query);
    free(tpl_query);
    return rc;
}

int cmd_render(int argc, char **argv)
{
    enum {
        OPT_DB = 256, OPT_QUERY, OPT_QUERY_FILE, OPT_TEMPLATE, OPT_PARAM, OPT_CENSUS,
        OPT_CENSUS_FIFO, OPT_MEM_LOG, OPT_MAX_MEMORY, OPT_PROGRESS, OPT_TOTAL, OPT_COUNT,
        OPT_TIMEOUT, OPT_FETCH_SIZE
    };
    /* Sorted by name, as --help lists them. */
    static const struct option longopts[] = {
        {"census", no_argument, NULL, OPT_CENSUS},
        {"census-fifo", required_argument, NULL, OPT_CENSUS_FIFO},
        {"count", no_argument, NULL, OPT_COUNT},
        {"db", required_argument, NULL, OPT_DB},
        {"fetch-size", required_argument, NULL, OPT_FETCH_SIZE},
        {"help", no_argument, NULL, 'h'},
        {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
        {"mem-log", required_argument, NULL, OPT_MEM_LOG},
        {"output", required_argument, NULL, 'o'},
        {"param", required_argument, NULL, OPT_PARAM},
        {"progress", optional_argument, NULL, OPT_PROGRESS},
        {"query", required_argument, NULL, OPT_QUERY},
        {"query-file", required_argument, NULL, OPT_QUERY_FILE},
        {"quiet", no_argument, NULL, 'q'},
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"total", required_argument, NULL, OPT_TOTAL},
        {NULL, 0, NULL, 0},
    };
    render_opts o = {0};
    char *db_copy = NULL;
    size_t db_copy_size = 0;
    o.mon.progress = PROGRESS_AUTO;
    sf_render *r = sf_render_create(cli_census);
    char *query = NULL;
    int rc = EXIT_USAGE, c;
    if (!r) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ho:q", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DB:
            db_copy_free(db_copy, db_copy_size);
            if (!(o.db = db_copy = db_copy_make(optarg, &db_copy_size))) {
                cli_error("out of memory");
                rc = EXIT_FAILURE_OTHER;
                goto done;
            }
            if (sf_db_hide_secrets(optarg)) /* what ps shows from now on */
                prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* and no core dump holds it */
            break;
        case OPT_QUERY: o.query = optarg; break;
        case OPT_QUERY_FILE: o.query_file = optarg; break;
        case OPT_TEMPLATE: o.template = optarg; break;
        case 'o': o.output = optarg; break;
        case 'q': o.quiet = 1; break;
        case OPT_CENSUS: o.census = 1; break;
        case OPT_CENSUS_FIFO: o.mon.fifo = optarg; break;
        case OPT_MEM_LOG: o.mon.mem_log = optarg; break;
        case OPT_COUNT: o.count = 1; break;
        case OPT_TIMEOUT: o.timeout = optarg; break;
        case OPT_FETCH_SIZE: o.fetch_size = optarg; break;
        case OPT_MAX_MEMORY:
            if (parse_size(optarg, &o.mon.max_memory) != 0) {
                rc = cli_usage("render", "--max-memory needs a size like 64M, got '%s'", optarg);
                goto done;
            }
            break;
        case OPT_TOTAL: {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(optarg, &end, 10);
            if (errno || *end || !*optarg || optarg[0] == '-' || n == 0) {
                rc = cli_usage("render", "--total needs a number of rows, got '%s'", optarg);
                goto done;
            }
            o.mon.total = n;
            break;
        }
        case OPT_PROGRESS:
            if (!optarg || !strcmp(optarg, "always"))
                o.mon.progress = optarg ? PROGRESS_ALWAYS : PROGRESS_ALWAYS;
            else if (!strcmp(optarg, "auto"))
                o.mon.progress = PROGRESS_AUTO;
            else if (!strcmp(optarg, "never"))
                o.mon.progress = PROGRESS_NEVER;
            else {
                rc = cli_usage("render", "--progress takes auto, always or never, got '%s'",
                               optarg);
                goto done;
            }
            break;
        case 'h':
            fputs(render_usage, stdout);
            rc = EXIT_OK;
            goto done;
        case OPT_PARAM: {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                rc = cli_usage("render", "--param needs NAME=VALUE, got '%s'", optarg);
                goto done;
            }
            *eq = '\0';
            sf_status st = sf_render_set_param(r, optarg, eq + 1);
            *eq = '=';
            if (st == SF_ERR_NOMEM) {
                cli_error("--param: %s", sf_render_errmsg(r));
                rc = EXIT_FAILURE_OTHER;
                goto done;
            }
            if (st != SF_OK) {
                rc = cli_usage("render", "--param: %s", sf_render_errmsg(r));
                goto done;
            }
            break;
        }
        case ':':
            rc = cli_usage("render", "option '%s' needs a value", argv[optind - 1]);
            goto done;
        default:
            rc = cli_bad_option("render", argv[optind - 1]);
            goto done;
        }
    }
    if (optind < argc) {
        rc = cli_usage("render", "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    const char *missing = !o.db ? "--db" : !o.template ? "--template" : !o.output ? "-o" : NULL;
    if (missing) {
        rc = cli_usage("render", "missing %s", missing);
        goto done;
    }
    if (o.query && o.query_file) {
        rc = cli_usage("render", "give --query or --query-file, not both");
        goto done;
    }
    if (o.count && o.mon.total) {
        rc = cli_usage("render", "give --total or --count, not both");
        goto done;
    }
    if (o.query_file && !(query = read_text_file(o.query_file, "query file", &rc)))
        goto done;
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        errno = 0;
        long long t = strtoll(sde, &end, 10);
        if (errno || *end || t < 0 || t > 253402300799LL) { /* 9999-12-31T23:59:59Z */
            cli_error("SOURCE_DATE_EPOCH must be seconds since 1970 (up to year 9999), got '%s'",
                      sde);
            goto done;
        }
        sf_render_set_time(r, (int64_t)t);
    }
    rc = run_render(&o, r, o.query ? o.query : query);
done:
    free(query);
    db_copy_free(db_copy, db_copy_size);
    sf_render_free(r);
    if (rc >= 128)
        cli_reraise(rc - 128);
    return rc;
}
