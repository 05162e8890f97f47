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
#include "formats.h"
#include "monitor.h"

static const char render_usage[] =
    "usage: sqlfeed render --db PATH (--query SQL | --query-file FILE) --template NAME|FILE\n"
    "                      -o OUT [OUTPUT OPTIONS] [--output TEMPLATE=PATH[,KEY=VALUE]...]...\n"
    "                      [--param NAME=VALUE]... [--quiet]\n"
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
    "                       (neither: the first template's own query, if it has one: a\n"
    "                       built-in's, or NAME.sql beside a template file; for a\n"
    "                       PostgreSQL or MariaDB --db NAME.pg.sql or NAME.my.sql\n"
    "                       there, when present)\n"
    "  -t, --template NAME|FILE\n"
    "                       a built-in template (sqlfeed templates) or a .mustache file\n"
    "  -o OUT               the feed; published atomically when complete ('-': stdout;\n"
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
    "  --threads on|off     on (the default): the database is read on a thread of its\n"
    "                       own and each output compressed and written on another\n"
    "                       (gzip: in 256 KiB blocks on 2 threads more);\n"
    "                       off: everything on one thread\n"
    "  --sqlite-cache SIZE  SQLite's page cache (default 4M; K, M, G; 64K to 1G):\n"
    "                       room for a join's lookup tables beside the streamed rows;\n"
    "                       less under a tight --max-memory (peak RSS falls with it)\n"
    "  -h, --help           this help\n"
    "\n"
    "Output options (for -o and --template; an --output takes them as KEY=VALUE):\n"
    "  --compress C         auto (the default), none, gzip or zstd. auto chooses by\n"
    "                       the name's suffix: .gz gzip, .zst zstd; any other suffix\n"
    "                       stays plain, unless the format's defaults choose (below:\n"
    "                       sitemap's parts are gzip). A name that says one codec and\n"
    "                       a --compress that says another is refused (exit 2)\n"
    "  --level N|best       gzip 1-9 (default 1), zstd 1-19 (default 3); best: the\n"
    "                       codec's highest ratio\n"
    "  --split-rows N       start a new part before a row that would make N+1 rows\n"
    "  --split-bytes SIZE   ... or take the part past SIZE bytes (uncompressed, head\n"
    "                       and tail included; K, M, G); a row larger alone fails\n"
    "  --parts PATTERN      the parts' names: one %d or %0Nd (the part number, from 1)\n"
    "                       and, with --index, %r (a new tag each run). Default: from\n"
    "                       -o: feed.xml.gz -> feed-%04d.xml.gz; with --index from the\n"
    "                       index's name: sitemap.xml -> sitemap-%r-%04d.xml (+ .gz or\n"
    "                       .zst when compressed). Without --index, -o may itself be\n"
    "                       the pattern (-o feed-%04d.xml)\n"
    "  --index TEMPLATE     also write an index over the parts to -o, rendered by\n"
    "                       TEMPLATE with one row per part: part, name, url,\n"
    "                       row_count, bytes, lastmod. The index is the set's\n"
    "                       commit point: the parts are renamed first, the index\n"
    "                       last, and the parts of an earlier run it no longer names\n"
    "                       are removed after it\n"
    "                       (--compress and --level are the parts'; the index is\n"
    "                       compressed by its own name's suffix)\n"
    "  --base-url URL       with --index: url = URL + / + the part's file name\n"
    "                       (percent-encoded; the / only if URL lacks one). An\n"
    "                       absolute URL (scheme://host...), else exit 2; an index\n"
    "                       template that reads url (sitemap-index) requires it\n"
    "  --lastmod COLUMN     with --index: lastmod = the largest value of COLUMN in the\n"
    "                       part (dates as instants, whatever their zone; else text)\n"
    "  --output TEMPLATE=PATH[,KEY=VALUE...]\n"
    "                       one more document from the same scan, with its own\n"
    "                       template and KEYs compress, level, split-rows,\n"
    "                       split-bytes, parts, index, base-url, lastmod; repeatable\n"
    "                       (up to 16 outputs). A backslash makes the next character\n"
    "                       literal: write a comma in a name as \\, and = as \\=\n"
    "                       Every output is published only if all succeed\n"
    "\n"
    "Sharded renders (docs/shards.md; joined by sqlfeed publish):\n"
    "  --shard K/N          render only shard K of N (1 <= K <= N <= 1024) into\n"
    "                       DIR/K-of-N.part (rows only, no head or tail, compressed\n"
    "                       as -o's name or --compress says) and its manifest\n"
    "                       DIR/K-of-N.json (rows, bytes, CRC-32, boundaries, ...),\n"
    "                       each published atomically; nothing is written at -o.\n"
    "                       Split (--split-rows, --split-bytes, or the format's:\n"
    "                       sitemap), the parts DIR/K-of-N-0001.part ..., each a\n"
    "                       complete document, which publish names and indexes.\n"
    "                       One output, no --index or --base-url (publish's), no\n"
    "                       --reject-log. --lastmod COLUMN: the manifest records the\n"
    "                       largest value of COLUMN (of each part, when split)\n"
    "  --shard-key COLUMN   an integer column of the query (its primary key): shard\n"
    "                       1 takes the NULL keys and the keys below b1, shard K the\n"
    "                       keys from b(K-1) below bK, shard N the rest; the N-1\n"
    "                       boundaries come from the keys' distribution (ntile),\n"
    "                       computed by each shard in its read transaction. Every\n"
    "                       row is in one shard; the joined feed is in key order\n"
    "  --shard-dir DIR      where the part goes (default: -o's name + .shards, made)\n"
    "  --run ID             this build's name (a chord's id, a Job's name), recorded in\n"
    "                       the manifest: publish --run ID joins only shards of that run\n"
    "  --snapshot ID        PostgreSQL: read in the snapshot `sqlfeed snapshot`\n"
    "                       exported and holds, so that every shard sees the same data\n"
    "\n"
    "Format defaults ({{! sqlfeed-defaults: split-rows=50000 compress=gzip ... }} in a\n"
    "template; `sqlfeed templates` lists each built-in's): the keys split-rows,\n"
    "split-bytes, compress, index and lastmod, each taken where its option is not\n"
    "given, by an output that is a file sqlfeed creates (never by stdout, a\n"
    "descriptor, a device or a FIFO: those get one plain document); compress only\n"
    "when sqlfeed names the parts (no --parts, no %d in -o), index only when -o\n"
    "names a file, not a pattern (-o is then the index: give --base-url; a --parts\n"
    "of your own needs a %r).\n"
    "  --no-defaults        no output takes its format's defaults\n"
    "\n"
    "Safety rails and reports:\n"
    "  --min-rows N         publish nothing (exit 7) when an output wrote fewer rows\n"
    "                       (rows --on-invalid skip left out do not count)\n"
    "  --max-drop PCT       publish nothing (exit 7) when an output has fewer rows than\n"
    "                       its previous published run (recorded beside it in\n"
    "                       .NAME.sqlfeed.state) by more than PCT percent. Both\n"
    "                       need files: stdout, a device or a FIFO is refused (exit 2)\n"
    "  --summary-json FILE  the run's figures as JSON (rows, items, rows_skipped,\n"
    "                       bytes in and out, parts, seconds, peak RSS, memory\n"
    "                       verdict, exit status), written also when the run fails,\n"
    "                       atomically\n"
    "\n"
    "Row checks ({{! sqlfeed-check: required NAME, ...; max NAME N; enum NAME A|B;\n"
    "unique NAME }} in a template) and formatters ({{posted_at.rfc822}}):\n"
    "  --on-invalid fail|skip\n"
    "                       a row that fails a check or a formatter: fail (the\n"
    "                       default) stops the run, exit 9, naming the row, the\n"
    "                       column and the rule's file:line:col; nothing published.\n"
    "                       skip leaves the row out of that output only (the other\n"
    "                       outputs still get it), counts it (rows_skipped) and\n"
    "                       says so on stderr at the end, even with --quiet\n"
    "  --reject-log FILE    with skip: the rows left out as TSV (row, key = the\n"
    "                       first column, output, column, reason), published with\n"
    "                       the outputs\n"
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
    "Each file output takes a lock beside it (.NAME.sqlfeed.lock): a second run on\n"
    "the same output exits 8 at once; holding the lock, a run removes the temporary\n"
    "files a killed run left (.NAME.sqlfeed-*). Parts' names, their temporary files\n"
    "and the state and lock files are checked against the inputs and the other\n"
    "outputs too.\n"
    "exit status: 0 published; 2 usage; 3 template; 4 database; 5 output; 6\n"
    "--max-memory; 7 refused by --min-rows/--max-drop (the message names both\n"
    "counts, the rows each output wrote; the previous feed stays); 8 another run\n"
    "holds the lock; 9 a row failed a check or a formatter (--on-invalid fail:\n"
    "\"row N: column C: REASON (rule at FILE:LINE:COL)\"; the previous feed stays);\n"
    "128+N signal N.\n"
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
const char *cli_template_file(const char *arg)
{
    return !is_file_name(arg) && sf_builtin_template_text(arg, NULL) ? NULL : arg;
}

/* The backend --db names, as sf_source_open will choose it (pg.c, mysql.c,
 * sqlite.c: their accepts), known before connecting so that the query
 * file a template file takes for it is checked with the other inputs:
 * "postgresql" (a postgresql:// or postgres:// URL, or a conninfo:
 * key=value), "mysql" (mysql://, mariadb://), else "sqlite". The source's
 * own answer after the open is the one used: run_render compares them. */
static const char *db_backend(const char *db)
{
    static const char *const conninfo_keys[] = { /* src/source/pg.c's */
        "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "service",
        "sslmode", "sslpassword", "connect_timeout", "options", "application_name",
        "target_session_attrs", "channel_binding", "sslcert", "sslkey", "sslrootcert", NULL};
    if (!db)
        return "sqlite";
    if (!strncmp(db, "mysql://", 8) || !strncmp(db, "mariadb://", 10))
        return "mysql"; /* tested first by the library, but never with spaces before */
    while (*db == ' ' || (*db >= '\t' && *db <= '\r'))
        db++;
    if (!strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11))
        return "postgresql";
    for (size_t i = 0; conninfo_keys[i]; i++) {
        size_t n = strlen(conninfo_keys[i]);
        const char *p = db + n;
        if (strncmp(db, conninfo_keys[i], n) != 0)
            continue;
        while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
            p++;
        if (*p == '=')
            return "postgresql";
    }
    return "sqlite";
}

/* The query beside a template file NAME.mustache for a backend (malloc'd),
 * as a built-in has one per backend: NAME.pg.sql (postgresql) or NAME.my.sql
 * (mysql) when that file exists, else NAME.sql. NULL when the file is not
 * NAME.mustache (or no memory: *nomem set). */
static char *template_query_path(const char *file, const char *backend, int *nomem)
{
    size_t n = file ? strlen(file) : 0;
    if (n <= 9 || strcmp(file + n - 9, ".mustache") != 0)
        return NULL;
    const char *suffix = !strcmp(backend, "postgresql") ? ".pg.sql"
                         : !strcmp(backend, "mysql")    ? ".my.sql"
                                                        : ".sql";
    char *sql = malloc(n - 9 + 8);
    if (!sql) {
        *nomem = 1;
        return NULL;
    }
    snprintf(sql, n - 9 + 8, "%.*s%s", (int)(n - 9), file, suffix);
    if (strcmp(suffix, ".sql") && access(sql, F_OK) != 0)
        snprintf(sql, n - 9 + 8, "%.*s.sql", (int)(n - 9), file);
    return sql;
}

/* Loads --template; sets *query to the template's own query when it has one
 * (malloc'd): a built-in's, or for a file the file `query_path` (from
 * template_query_path; NULL: none wanted) when it exists. Returns an exit
 * status: one rule for a name that is neither a built-in nor a readable
 * file, whichever it looks like: exit 2. */
int cli_set_param(sf_render *r, char *arg, const char *cmd)
{
    char *eq = strchr(arg, '=');
    if (!eq)
        return cli_usage(cmd, "--param needs NAME=VALUE, got '%s'", arg);
    *eq = '\0';
    sf_status st = sf_render_set_param(r, arg, eq + 1);
    *eq = '=';
    if (st == SF_ERR_NOMEM) {
        cli_error("--param: %s", sf_render_errmsg(r));
        return EXIT_FAILURE_OTHER;
    }
    return st == SF_OK ? EXIT_OK : cli_usage(cmd, "--param: %s", sf_render_errmsg(r));
}

int cli_source_date_epoch(sf_render *r)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (!sde || !*sde)
        return EXIT_OK;
    char *end;
    errno = 0;
    long long t = strtoll(sde, &end, 10);
    if (errno || *end || t < 0 || t > 253402300799LL) { /* 9999-12-31T23:59:59Z */
        cli_error("SOURCE_DATE_EPOCH must be seconds since 1970 (up to year 9999), got '%s'", sde);
        return EXIT_USAGE;
    }
    sf_render_set_time(r, (int64_t)t);
    return EXIT_OK;
}

int cli_load_template(sf_template *tpl, const char *arg, const char *query_path, char **query)
{
    sf_status st;
    const char *file = cli_template_file(arg);
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
        if (st == SF_OK && query_path && access(query_path, F_OK) == 0) {
            int rc;
            if (!(*query = read_text_file(query_path, "query file", &rc)))
                return rc;
        }
    }
    if (st != SF_OK) {
        cli_error("%s", st == SF_ERR_NOMEM ? "out of memory" : sf_template_errmsg(tpl));
        return cli_exit_for(st);
    }
    return EXIT_OK;
}

/* At most this many documents from one scan (each may have an index: the
 * signal handlers know every output, cli.h CLI_MAX_SIGNAL_FILES). */
#define MAX_OUTPUTS 16

typedef struct render_opts {
    const char *db, *query, *query_file;
    const char *timeout, *fetch_size;
    char sqlite_cache[24]; /* --sqlite-cache in KiB, as the source option takes it; "" unset */
    const char *min_rows, *max_drop, *summary_json;
    const char *on_invalid, *reject_log;
    int quiet, census, count;
    int no_defaults; /* --no-defaults: no output takes its format's sqlfeed-defaults */
    int threads; /* --threads: 1 on (the default), 0 off */
    /* --shard K/N: this render writes shard K's part into shard_dir
     * (docs/shards.md); --snapshot: a PostgreSQL snapshot to read in. */
    const char *shard, *shard_key, *shard_dir, *snapshot, *shard_lastmod, *run;
    char shard_dir_buf[4096];
    cli_output outs[MAX_OUTPUTS];
    size_t nouts;
    sf_output *reject; /* --reject-log's output, the render's (sf_render_reject_log) */
    monitor_opts mon;
    /* What the run did, for the summary and --summary-json. */
    double secs;
    int watched, verdict_known, published;
    char verdict[200];
} render_opts;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How messages name an output: its file, stdout, or its parts' pattern. */
static const char *out_name(const cli_output *c)
{
    return c->path ? (strcmp(c->path, "-") ? c->path : "stdout") : c->parts;
}

/* Rows the output's template rendered (each part's, added up). */
static uint64_t out_items(const cli_output *c)
{
    uint64_t n = 0;
    if (!c->opened)
        return 0;
    for (size_t i = 0; i < sf_output_part_count(c->out); i++)
        n += sf_output_part_rows(c->out, i);
    return n;
}

/* ", 3.1 MB gzip" when the bytes written differ from the document's. */
static void compressed(const cli_output *c, char *buf, size_t n)
{
    const char *codec = cli_output_codec(c);
    if (!strcmp(codec, "none"))
        snprintf(buf, n, "%s", "");
    else
        snprintf(buf, n, ", %.1f MB %s", (double)sf_output_bytes_out(c->out) / 1e6, codec);
}

/* "feed.xml", "feed-%04d.xml.gz (3 parts)", "sitemap.xml (index of 3 parts)". */
static void target(const cli_output *c, char *buf, size_t n)
{
    size_t parts = c->opened ? sf_output_part_count(c->out) : 0;
    if (!c->parts)
        snprintf(buf, n, "%s", out_name(c));
    else if (c->index)
        snprintf(buf, n, "%s (index of %zu part%s)", c->path, parts, parts == 1 ? "" : "s");
    else
        snprintf(buf, n, "%s (%zu part%s)", c->parts, parts, parts == 1 ? "" : "s");
}

static void summary(const render_opts *o, sf_render *r)
{
    uint64_t rows = sf_render_rows(r);
    double rate = o->secs > 0 ? (double)rows / o->secs : 0;
    char to[4200], comp[64];
    /* A verdict needs samples: a short run has nothing to say about it. */
    const char *mem = o->verdict_known ? ", memory " : "", *verdict = o->verdict_known ? o->verdict : "";
    if (o->nouts == 1) {
        const cli_output *c = &o->outs[0];
        uint64_t bytes = sf_output_bytes(c->out);
        compressed(c, comp, sizeof comp);
        target(c, to, sizeof to);
        fprintf(stderr,
                "sqlfeed: %llu rows, %llu bytes (%.1f MB%s) in %.2f s, %.0f rows/s, peak RSS "
                "%.1f MiB%s%s -> %s\n",
                (unsigned long long)rows, (unsigned long long)bytes, (double)bytes / 1e6, comp,
                o->secs, rate, (double)sf_rss_peak() / 1048576.0, mem, verdict, to);
        return;
    }
    fprintf(stderr, "sqlfeed: %llu rows in %.2f s, %.0f rows/s, peak RSS %.1f MiB%s%s -> %zu "
                    "outputs\n",
            (unsigned long long)rows, o->secs, rate, (double)sf_rss_peak() / 1048576.0, mem,
            verdict, o->nouts);
    for (size_t i = 0; i < o->nouts; i++) {
        const cli_output *c = &o->outs[i];
        uint64_t bytes = sf_output_bytes(c->out);
        compressed(c, comp, sizeof comp);
        target(c, to, sizeof to);
        fprintf(stderr, "sqlfeed:   %llu items, %llu bytes (%.1f MB%s) -> %s\n",
                (unsigned long long)out_items(c), (unsigned long long)bytes, (double)bytes / 1e6,
                comp, to);
    }
}

/* A --db that names a file (SQLite), not a server or a URI. */
static const char *db_file(const char *db)
{
    return db && !strstr(db, "://") && !strchr(db, '=') && strncmp(db, "file:", 5) != 0 ? db
                                                                                          : NULL;
}

/* The directory a template file reads its partials from. */
static void partials_dir(const char *tfile, char *dir, size_t n)
{
    const char *slash = strrchr(tfile, '/');
    snprintf(dir, n, "%.*s", slash ? (slash == tfile ? 1 : (int)(slash - tfile)) : 1,
             slash ? tfile : ".");
}

/* Every output file of the run: concrete files (for cli_check_files) and
 * names with patterns (for cli_check_names). */
typedef struct out_list {
    cli_file files[2 * MAX_OUTPUTS + 4];
    cli_name names[2 * MAX_OUTPUTS + 4];
    size_t nfiles, nnames;
} out_list;

static void out_list_make(const render_opts *o, out_list *l)
{
    l->nfiles = l->nnames = 0;
    for (size_t i = 0; i < o->nouts; i++) {
        const cli_output *c = &o->outs[i];
        if (c->path) {
            l->files[l->nfiles++] = (cli_file){c->option, c->path};
            l->names[l->nnames++] = (cli_name){c->option, c->path, CLI_NAME_FILE};
        }
        if (c->parts)
            l->names[l->nnames++] = (cli_name){c->option, c->parts, CLI_NAME_PATTERN};
    }
    l->files[l->nfiles++] = (cli_file){"--reject-log", o->reject_log};
    l->names[l->nnames++] = (cli_name){"--reject-log", o->reject_log, CLI_NAME_FILE};
    l->files[l->nfiles++] = (cli_file){"--mem-log", o->mon.mem_log};
    l->files[l->nfiles++] = (cli_file){"--census-fifo", o->mon.fifo};
    l->files[l->nfiles++] = (cli_file){"--summary-json", o->summary_json};
    l->names[l->nnames++] = (cli_name){"--mem-log", o->mon.mem_log, CLI_NAME_PLAIN};
    l->names[l->nnames++] = (cli_name){"--census-fifo", o->mon.fifo, CLI_NAME_PLAIN};
    l->names[l->nnames++] = (cli_name){"--summary-json", o->summary_json, CLI_NAME_FILE};
}

/* How messages name an output's template files: kind 0 the template, 1 a
 * partial of it, 2 the index's template, 3 a partial of that. */
static char input_labels[MAX_OUTPUTS][4][64];

static const char *input_label(const render_opts *o, size_t i, int kind)
{
    static const char *const first[] = {"--template", "a partial of --template", "--index",
                                        "a partial of --index"};
    static const char *const more[] = {"the template of ", "a partial of the template of ",
                                       "the index of ", "a partial of the index of "};
    if (!strcmp(o->outs[i].option, "-o"))
        return first[kind];
    snprintf(input_labels[i][kind], sizeof input_labels[i][kind], "%s%s", more[kind],
             o->outs[i].option);
    return input_labels[i][kind];
}

/* After a failed check over out_list l (n entries, the summary last): a
 * --summary-json at fault is not written (it would go where it must not). */
static int spare_summary(render_opts *o, int rc, size_t n)
{
    long a, b;
    cli_check_culprits(&a, &b);
    if (rc != EXIT_OK && (a == (long)n - 1 || b == (long)n - 1))
        o->summary_json = NULL;
    return rc;
}

/* No output is an input or another output (cli/outputs.c). */
static int check_files(render_opts *o, const char *tpl_query)
{
    cli_file in[2 * MAX_OUTPUTS + 3];
    size_t n = 0;
    in[n++] = (cli_file){"--db", db_file(o->db)};
    in[n++] = (cli_file){"--query-file", o->query_file};
    in[n++] = (cli_file){"the query of --template", tpl_query};
    for (size_t i = 0; i < o->nouts; i++) {
        in[n++] = (cli_file){input_label(o, i, 0), cli_template_file(o->outs[i].template)};
        if (o->outs[i].index)
            in[n++] = (cli_file){input_label(o, i, 2), cli_template_file(o->outs[i].index)};
    }
    out_list l;
    out_list_make(o, &l);
    int stdouts = 0;
    for (size_t i = 0; i < l.nfiles; i++)
        if (l.files[i].path && !strcmp(l.files[i].path, "-") && stdouts++) {
            if (i == l.nfiles - 1)
                o->summary_json = NULL;
            return cli_usage("render", "%s - and another output both write to stdout; give each "
                                       "its own file", l.files[i].option);
        }
    int rc = spare_summary(o, cli_check_files("render", in, n, l.files, l.nfiles, NULL), l.nfiles);
    /* A possible partial of any template file (NAME.mustache beside it). */
    for (size_t i = 3; rc == EXIT_OK && i < n; i++) {
        char dir[4096];
        if (!in[i].path)
            continue;
        partials_dir(in[i].path, dir, sizeof dir);
        rc = spare_summary(o, cli_check_files("render", NULL, 0, l.files, l.nfiles, dir),
                           l.nfiles);
    }
    if (rc == EXIT_OK)
        rc = spare_summary(o, cli_check_names("render", in, n, l.names, l.nnames), l.nnames);
    return rc;
}

/* The files only an open source and a compiled template know: the file
 * SQLite opened (a file: URI, a path with '=' in it, a symlink: the real
 * one), and every partial file each template read. Checked after both,
 * before any output exists. */
static int check_read_files(render_opts *o, sf_source *src, const char *tpl_query)
{
    size_t nt = 0, n = 0;
    for (size_t i = 0; i < o->nouts; i++)
        nt += sf_template_file_count(o->outs[i].tpl) +
              (o->outs[i].itpl ? sf_template_file_count(o->outs[i].itpl) : 0);
    cli_file *in = malloc((nt + 2) * sizeof *in);
    if (!in) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    if (sf_source_file(src))
        in[n++] = (cli_file){"--db", sf_source_file(src)};
    if (tpl_query) /* as the open's backend chose it (run_render) */
        in[n++] = (cli_file){"the query of --template", tpl_query};
    for (size_t i = 0; i < o->nouts; i++) {
        const sf_template *ts[2] = {o->outs[i].tpl, o->outs[i].itpl};
        for (int k = 0; k < 2; k++)
            for (size_t j = 0; ts[k] && j < sf_template_file_count(ts[k]); j++)
                in[n++] = (cli_file){input_label(o, i, 2 * k + (j > 0)),
                                     sf_template_file(ts[k], j)};
    }
    out_list l;
    out_list_make(o, &l);
    int rc = spare_summary(o, cli_check_files("render", in, n, l.files, l.nfiles, NULL), l.nfiles);
    if (rc == EXIT_OK)
        rc = spare_summary(o, cli_check_names("render", in, n, l.names, l.nnames), l.nnames);
    free(in);
    return rc;
}

/* What to say about the destinations when nothing was published. */
static void say_left(const render_opts *o, char *buf, size_t n)
{
    int opened = 0, partial = 0;
    for (size_t i = 0; i < o->nouts; i++) {
        const cli_output *c = &o->outs[i];
        opened |= c->opened;
        partial |= c->opened && !sf_output_atomic(c->out);
    }
    const char *what = o->nouts == 1 ? out_name(&o->outs[0]) : "every output";
    if (!opened) /* stopped before an output was opened */
        snprintf(buf, n, "nothing written, %s left as it was", what);
    else if (partial)
        snprintf(buf, n, o->nouts == 1 ? "the output is incomplete"
                                       : "nothing published, but what went to stdout or a "
                                         "device is incomplete");
    else
        snprintf(buf, n, "nothing published, %s left as it was", what);
}

static int published_any(const render_opts *o)
{
    for (size_t i = 0; i < o->nouts; i++) {
        const cli_output *c = &o->outs[i];
        /* A set with an index is visible once its index is. */
        if (c->index ? c->iopened && sf_output_published(c->iout)
                     : c->opened && sf_output_published(c->out))
            return 1;
    }
    return 0;
}

/* The first message an output of the run holds. */
static const char *output_errmsg(const render_opts *o)
{
    for (size_t i = 0; i < o->nouts; i++) {
        const cli_output *c = &o->outs[i];
        if (c->out && *sf_output_errmsg(c->out))
            return sf_output_errmsg(c->out);
        if (c->iout && *sf_output_errmsg(c->iout))
            return sf_output_errmsg(c->iout);
    }
    return "";
}

static void abort_outputs(render_opts *o)
{
    for (size_t i = 0; i < o->nouts; i++) {
        sf_output_abort(o->outs[i].out);
        sf_output_abort(o->outs[i].iout);
    }
    sf_output_abort(o->reject);
}

/* Rows --on-invalid skip left out, said at the end (also with --quiet: a
 * feed that lacks rows is worth a line), per output. */
static void say_skipped(const render_opts *o, sf_render *r, int published)
{
    uint64_t rows = sf_render_rows(r);
    for (size_t i = 0; i < o->nouts; i++) {
        const cli_output *c = &o->outs[i];
        uint64_t n = c->opened ? sf_render_rows_skipped(r, c->out) : 0;
        if (!n)
            continue;
        if (!published)
            fprintf(stderr, "sqlfeed: skipped %llu of %llu rows in %s (nothing published)\n",
                    (unsigned long long)n, (unsigned long long)rows, out_name(c));
        else if (o->reject && sf_output_published(o->reject))
            fprintf(stderr, "sqlfeed: skipped %llu of %llu rows in %s: see %s\n",
                    (unsigned long long)n, (unsigned long long)rows, out_name(c), o->reject_log);
        else if (o->reject)
            fprintf(stderr, "sqlfeed: skipped %llu of %llu rows in %s (the reject log %s was "
                            "not published)\n",
                    (unsigned long long)n, (unsigned long long)rows, out_name(c), o->reject_log);
        else
            fprintf(stderr, "sqlfeed: skipped %llu of %llu rows in %s (no --reject-log)\n",
                    (unsigned long long)n, (unsigned long long)rows, out_name(c));
    }
}

/* An option the library refused: SF_ERR_ARG is the user's (exit 2). */
static int option_failed(sf_status st, const char *what, const char *msg)
{
    if (st == SF_ERR_NOMEM) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    if (st == SF_ERR_ARG)
        return cli_usage("render", "%s: %s", what, msg);
    cli_error("%s: %s", what, msg);
    return cli_exit_for(st);
}

/* Sets an output's options and opens it (its parts, its index). */
static int open_output(const render_opts *o, cli_output *c, sf_render *r)
{
    sf_status st = SF_OK;
    struct { const char *name, *value; } opts[] = {
        {"compress", c->compress},
        {"level", c->level},
        {"split_rows", c->split_rows},
        {"split_bytes", c->split_bytes},
        {"writer", o->threads ? NULL : "inline"},
        {"workers", !o->threads ? "0" : NULL}, /* gzip's and zstd's threads */
        /* A shard's part is read again soon, by publish: its pages stay cached. */
        {"cache", o->shard ? "keep" : NULL},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (opts[i].value && (st = sf_output_set_option(c->out, opts[i].name, opts[i].value)))
            return option_failed(st, c->option, sf_output_errmsg(c->out));
    if (c->parts)
        st = sf_output_open_parts(c->out, c->parts);
    else if (!strcmp(c->path, "-"))
        st = sf_output_open_fd(c->out, STDOUT_FILENO, "stdout");
    else
        st = sf_output_open_file(c->out, c->path);
    c->opened = st == SF_OK;
    /* A crash removes the temporary file and the lock file (the kernel
     * drops the lock itself with the process; sf_output_lock_path). */
    cli_signals_add_temp(sf_output_temp_path(c->out));
    cli_signals_add_temp(sf_output_lock_path(c->out));
    if (st != SF_OK) {
        cli_error("%s", sf_output_errmsg(c->out));
        return cli_exit_for(st);
    }
    /* A rail decides at the end whether to publish: what goes out as it is
     * written (stdout, a device, a FIFO) cannot be held back. */
    if ((o->min_rows || o->max_drop) && !sf_output_atomic(c->out))
        return cli_usage("render", "%s %s is written as it goes (not a file published "
                                   "atomically): --min-rows and --max-drop cannot hold it back",
                         c->option, out_name(c));
    uint64_t prev;
    if (o->max_drop && !o->quiet && !sf_output_previous_rows(c->out, &prev))
        fprintf(stderr, "sqlfeed: note: no usable record of a previous run of %s (first run, "
                        "or its .sqlfeed.state is missing or unreadable): --max-drop has "
                        "nothing to compare with this time\n",
                out_name(c));
    if ((st = sf_render_add_output(r, c->tpl, c->out)) != SF_OK) {
        cli_error("%s", sf_render_errmsg(r));
        return cli_exit_for(st);
    }
    if (!c->index)
        return EXIT_OK;
    /* The index is small: written inline, compressed by its own suffix. */
    if ((st = sf_output_set_option(c->iout, "writer", "inline")) != SF_OK)
        return option_failed(st, c->option, sf_output_errmsg(c->iout));
    st = sf_output_open_file(c->iout, c->path);
    c->iopened = st == SF_OK;
    cli_signals_add_temp(sf_output_temp_path(c->iout));
    cli_signals_add_temp(sf_output_lock_path(c->iout));
    if (st != SF_OK) {
        cli_error("%s", sf_output_errmsg(c->iout));
        return cli_exit_for(st);
    }
    if ((st = sf_render_add_index(r, c->out, c->itpl, c->iout, c->base_url ? c->base_url : "",
                                  c->lastmod)) != SF_OK) {
        cli_error("%s", sf_render_errmsg(r));
        return cli_exit_for(st);
    }
    return EXIT_OK;
}

static int run_render(render_opts *o, sf_render *r, const char *query)
{
    sf_census *census = cli_census;
    monitor *mon = NULL;
    monitor_opts mo = o->mon;
    uint64_t budget_rss = 0, limit = 0;
    char err[512], left[4200];
    sf_source *src = sf_source_create(census);
    char *own_query = NULL, *tpl_query = NULL;
    int rc = EXIT_OK, refused = 0, nomem = !src;
    sf_status st = SF_OK;
    double t0 = now_seconds();
    cli_output *first = &o->outs[0];

    /* From here on every signal that would end the process ends the run
     * instead, cleanly (cli/signals.c): also while connecting, or waiting
     * for a FIFO's reader. */
    cli_signals_install(r);
    cli_signals_watch_source(src); /* a connect or a prepare stops too */
    cli_signals_set_output(NULL);
    cli_signals_set_temp(NULL);
    for (size_t i = 0; i < o->nouts; i++) {
        cli_output *c = &o->outs[i];
        c->tpl = sf_template_create(census, SF_TEMPLATE_XML);
        c->out = sf_output_create(census);
        nomem |= !c->tpl || !c->out;
        if (c->index) {
            c->itpl = sf_template_create(census, SF_TEMPLATE_XML);
            c->iout = sf_output_create(census);
            nomem |= !c->itpl || !c->iout;
        }
        /* a signal stops a FIFO wait, or a commit before its first rename */
        if ((c->out && cli_signals_add_output(c->out)) || (c->iout && cli_signals_add_output(c->iout)))
            nomem = 1; /* cannot happen: MAX_OUTPUTS fits */
    }
    if (nomem) {
        cli_error("out of memory");
        rc = EXIT_FAILURE_OTHER;
        goto done;
    }
    /* A template file's own query for the backend --db names: checked as
     * an input before anything connects. */
    const char *backend = db_backend(o->db);
    tpl_query = !query ? template_query_path(cli_template_file(first->template), backend, &nomem)
                       : NULL;
    if (nomem) {
        cli_error("out of memory");
        rc = EXIT_FAILURE_OTHER;
        goto done;
    }
    if ((rc = check_files(o, tpl_query)) != EXIT_OK)
        goto done;
    /* The query, when not given, is the first template's own. */
    for (size_t i = 0; i < o->nouts; i++) {
        cli_output *c = &o->outs[i];
        char *q = NULL;
        if ((rc = cli_load_template(c->tpl, c->template, i ? NULL : tpl_query, &q)) != EXIT_OK)
            goto done;
        if (i == 0)
            own_query = q;
        else
            free(q);
        if (c->index) {
            if ((rc = cli_load_template(c->itpl, c->index, NULL, &q)) != EXIT_OK)
                goto done;
            free(q);
            /* Without --base-url a part's url would be its bare file name:
             * not the absolute URL an index such as sitemap-index lists. */
            for (size_t k = 0; !c->base_url && k < sf_template_row_name_count(c->itpl); k++)
                if (!strcmp(sf_template_row_name(c->itpl, k), "url")) {
                    rc = cli_usage("render", "%s: the index template %s reads url (each part's "
                                             "absolute URL): give %s, where the parts will be "
                                             "served", c->option, c->index,
                                   strcmp(c->option, "-o") ? "base-url=URL" : "--base-url URL");
                    goto done;
                }
        }
        if (cli_signal_caught())
            goto signalled;
    }
    if (!query)
        query = own_query;
    if (!query) {
        cli_error("no query: give --query or --query-file (template '%s' has none of its own)",
                  first->template);
        rc = EXIT_USAGE;
        goto done;
    }
    if ((o->timeout && (st = sf_source_set_option(src, "timeout", o->timeout)) != SF_OK) ||
        (o->fetch_size && ((st = sf_source_set_option(src, "fetch_size", o->fetch_size)) != SF_OK ||
                           (st = sf_source_set_option(src, "pg_mode", "cursor")) != SF_OK)) ||
        (st = sf_source_set_option(src, "prefetch", o->threads ? "on" : "off")) != SF_OK ||
        (o->sqlite_cache[0] &&
         (st = sf_source_set_option(src, "sqlite_cache", o->sqlite_cache)) != SF_OK) ||
        (o->shard && ((st = sf_source_set_option(src, "shard", o->shard)) != SF_OK ||
                      (st = sf_source_set_option(src, "shard_key", o->shard_key)) != SF_OK)) ||
        (o->snapshot && (st = sf_source_set_option(src, "snapshot", o->snapshot)) != SF_OK)) {
        rc = st == SF_ERR_NOMEM ? (cli_error("out of memory"), EXIT_FAILURE_OTHER)
                                : cli_usage("render", "%s", sf_source_errmsg(src));
        goto done;
    }
    if ((o->shard_lastmod &&
         (st = sf_render_set_option(r, "shard_lastmod", o->shard_lastmod)) != SF_OK) ||
        (o->run && (st = sf_render_set_option(r, "shard_run", o->run)) != SF_OK)) {
        rc = st == SF_ERR_NOMEM ? (cli_error("out of memory"), EXIT_FAILURE_OTHER)
                                : cli_usage("render", "%s", sf_render_errmsg(r));
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
    /* A built-in's own query may be written for each backend (a JSON
     * aggregate), and so may a template file's (NAME.pg.sql beside it). */
    if (st == SF_OK && query == own_query && !cli_template_file(first->template))
        query = sf_builtin_template_query_for(first->template, sf_source_backend(src));
    else if (st == SF_OK && query == own_query && tpl_query &&
             strcmp(sf_source_backend(src), backend) != 0) {
        /* db_backend read --db otherwise than the source (it mirrors the
         * backends' rules, so only if they change): the source's choice
         * counts, checked by check_read_files below. */
        char *path = template_query_path(cli_template_file(first->template),
                                         sf_source_backend(src), &nomem);
        if (path && strcmp(path, tpl_query) != 0) {
            free(own_query);
            own_query = NULL;
            free(tpl_query);
            tpl_query = path;
            if (access(path, F_OK) == 0 && !(own_query = read_text_file(path, "query file", &rc)))
                goto done;
            if (!(query = own_query)) {
                cli_error("no query: give --query or --query-file (template '%s' has none of "
                          "its own)", first->template);
                rc = EXIT_USAGE;
                goto done;
            }
        } else
            free(path);
        if (nomem) {
            cli_error("out of memory");
            rc = EXIT_FAILURE_OTHER;
            goto done;
        }
    }
    if (st != SF_OK || (st = sf_source_prepare(src, query)) != SF_OK) {
        if (cli_signal_caught())
            goto signalled;
        cli_error("%s", sf_source_errmsg(src));
        rc = cli_exit_for(st);
        goto done;
    }
    if (cli_signal_caught())
        goto signalled;
    if ((rc = check_read_files(o, src, tpl_query)) != EXIT_OK)
        goto done;
    /* Opening takes each output's lock (another run: exit 8) and removes
     * what a killed run left beside it. */
    for (size_t i = 0; i < o->nouts; i++) {
        rc = open_output(o, &o->outs[i], r);
        if (cli_signal_caught())
            goto signalled;
        if (rc != EXIT_OK)
            goto done;
    }
    /* The reject log: opened by the render (its lock, its temporary file),
     * published with the outputs; a crash removes it like theirs. */
    if (o->reject_log) {
        st = sf_render_set_option(r, "reject_log", o->reject_log);
        if ((o->reject = sf_render_reject_log(r)) != NULL) {
            cli_signals_add_temp(sf_output_temp_path(o->reject));
            cli_signals_add_temp(sf_output_lock_path(o->reject));
            cli_signals_add_output(o->reject);
        }
        if (cli_signal_caught())
            goto signalled;
        if (st != SF_OK) {
            cli_error("--reject-log: %s", sf_render_errmsg(r));
            rc = cli_exit_for(st);
            goto done;
        }
    }
    /* Watching starts before counting: the count runs the whole query, and
     * a census, the budget and Ctrl-C must reach it too. */
    /* SQLFEED_CENSUS=off (measuring the census's cost): nothing watches. */
    if (!cli_census_off &&
        !(mon = monitor_start(&mo, census, r, first->out, err, sizeof err, &rc))) {
        if (cli_signal_caught())
            goto signalled;
        cli_error("%s", err);
        goto done;
    }
    if (o->mon.max_memory) {
        /* The monitor checks RSS every 20 ms; within a row (one huge value)
         * the census refuses what would take the tracked bytes past the
         * budget less what lies outside them now (code, libraries, stacks). */
        uint64_t rss = sf_rss_current(), live = sf_census_live_bytes(census);
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
             : sf_render_execute(r, src);
    cli_signals_forget_render();
    if (limit && sf_census_set_limit(census, 0) != SF_OK)
        refused = 1;
    monitor_stop(mon);
    say_left(o, left, sizeof left);
    if (monitor_over_budget(mon, &budget_rss) && !cli_signal_caught()) {
        abort_outputs(o);
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
        abort_outputs(o);
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
    int run_failed = st != SF_OK;
    if (st == SF_OK) {
        /* Publishing: the rails (--min-rows, --max-drop), then every output
         * finished (trailers, fsync), then renamed. A signal up to the first
         * rename cancels it (nothing published); one after it finds the set
         * being published: we finish. */
        st = sf_render_commit(r);
        o->published = published_any(o);
        if (o->published)
            cli_signals_set_temp(NULL);
        if (st == SF_ERR_CANCELLED && !o->published && cli_signal_caught())
            goto signalled;
    }
    if (st != SF_OK) {
        abort_outputs(o);
        rc = cli_exit_for(st);
        const char *msg = *sf_render_errmsg(r) ? sf_render_errmsg(r) : output_errmsg(o);
        if (!run_failed)
            say_skipped(o, r, o->published);
        if (run_failed) /* the render failed */
            cli_error("%s; %s", msg, left);
        else if (st == SF_ERR_REFUSED) /* the rail's message names both counts and what stays */
            cli_error("%s", msg);
        else if (o->published && o->nouts == 1) /* only what follows the rename failed */
            cli_error("%s is published (%llu rows), but %s", out_name(first),
                      (unsigned long long)sf_render_rows(r), msg);
        else if (o->published) { /* past the first rename: say which are out */
            char done_list[2048] = "", not_list[2048] = "";
            for (size_t i = 0; i < o->nouts; i++) {
                const cli_output *c = &o->outs[i];
                int pub = c->opened && sf_output_published(c->index ? c->iout : c->out);
                char *l = pub ? done_list : not_list;
                size_t n = strlen(l);
                snprintf(l + n, sizeof done_list - n, "%s%s", n ? ", " : "", out_name(c));
            }
            if (!not_list[0]) /* every document is in place: what followed failed */
                cli_error("published after %llu rows: %s; but %s",
                          (unsigned long long)sf_render_rows(r), done_list, msg);
            else
                cli_error("published after %llu rows: %s; not published: %s (%s)",
                          (unsigned long long)sf_render_rows(r), done_list, not_list, msg);
        }
        else
            cli_error("publishing failed after all %llu rows: %s; %s",
                      (unsigned long long)sf_render_rows(r), msg, left);
        goto done;
    }
    cli_signals_set_temp(NULL);
    o->secs = now_seconds() - t0;
    o->watched = mon != NULL;
    o->verdict_known = monitor_verdict(mon, o->verdict, sizeof o->verdict);
    if (!o->quiet)
        summary(o, r);
    say_skipped(o, r, 1);
    if (cli_signal_caught()) /* too late to stop: the feed is whole; say so, exit 0 */
        cli_error("signal %d (%s) arrived after %s %s; finished normally",
                  cli_signal_caught(), strsignal(cli_signal_caught()),
                  o->nouts == 1 ? (strcmp(first->path ? first->path : "", "-") ? out_name(first)
                                                                               : "the output")
                                : "the outputs",
                  o->published ? (o->nouts == 1 ? "was published" : "were published")
                               : (o->nouts == 1 ? "was complete" : "were complete"));
    goto done;
signalled:
    cli_signals_forget_render();
    monitor_stop(mon);
    say_left(o, left, sizeof left);
    abort_outputs(o);
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
    if (rc != EXIT_OK) {
        abort_outputs(o); /* every temporary file goes, whatever failed (idempotent) */
        o->secs = now_seconds() - t0;
        o->watched = mon != NULL;
        monitor_stop(mon);
        o->verdict_known = mon ? monitor_verdict(mon, o->verdict, sizeof o->verdict) : 0;
        o->published = published_any(o);
    }
    cli_signals_forget_render();
    monitor_free(mon);
    cli_signals_set_output(NULL);
    cli_signals_set_temp(NULL);
    sf_source_free(src);
    free(own_query);
    free(tpl_query);
    return rc;
}

/* ---- --summary-json ------------------------------------------------------ */

/* A JSON string: quotes, backslashes and control characters escaped; bytes
 * that are not UTF-8 (a file name may hold any) become U+FFFD. */
static void json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
            p++;
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            p++;
        } else {
            /* A well-formed sequence (no overlong form, no surrogate, up to
             * U+10FFFF) is copied; anything else is one U+FFFD per byte. */
            size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            if (c >= 0xf5)
                len = 0;
            int good = len > 0;
            for (size_t k = 1; good && k < len; k++)
                good = (p[k] & 0xc0) == 0x80;
            if (good && len == 3)
                good = !(c == 0xe0 && p[1] < 0xa0) && !(c == 0xed && p[1] >= 0xa0);
            if (good && len == 4)
                good = !(c == 0xf0 && p[1] < 0x90) && !(c == 0xf4 && p[1] >= 0x90);
            if (good) {
                fwrite(p, 1, len, f);
                p += len;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

static const char *status_name(int rc)
{
    switch (rc) {
    case EXIT_OK: return "ok";
    case EXIT_FAILURE_OTHER: return "failure";
    case EXIT_USAGE: return "usage";
    case EXIT_TEMPLATE: return "template";
    case EXIT_DATABASE: return "database";
    case EXIT_OUTPUT: return "output";
    case EXIT_MEMORY: return "memory";
    case EXIT_REFUSED: return "refused";
    case EXIT_BUSY: return "busy";
    case EXIT_INVALID: return "invalid";
    }
    return rc >= 128 ? "signal" : "failure";
}

/* The run's figures as one JSON object (README "Summary for schedulers"). */
static void summary_json_text(FILE *f, const render_opts *o, sf_render *r, int rc)
{
    fprintf(f, "{\"sqlfeed\": \"%s\", \"exit\": %d, \"status\": \"%s\", \"signal\": %d,\n",
            sf_version(), rc, status_name(rc), rc >= 128 ? rc - 128 : 0);
    fputs(" \"error\": ", f);
    json_str(f, rc == EXIT_OK ? "" : cli_last_error());
    /* "flat (RSS ...)" -> "flat" */
    char verdict[32] = "unknown";
    size_t vn = strcspn(o->verdict, " (");
    if (!o->watched)
        snprintf(verdict, sizeof verdict, "not watched");
    else if (o->verdict_known && vn < sizeof verdict) {
        memcpy(verdict, o->verdict, vn);
        verdict[vn] = '\0';
    }
    fprintf(f, ",\n \"rows\": %llu, \"seconds\": %.3f, \"peak_rss\": %llu, \"memory\": \"%s\", "
               "\"published\": %s,\n \"outputs\": [",
            (unsigned long long)sf_render_rows(r), o->secs, (unsigned long long)sf_rss_peak(),
            verdict, o->published ? "true" : "false");
    for (size_t i = 0; i < o->nouts; i++) {
        const cli_output *c = &o->outs[i];
        fprintf(f, "%s\n  {\"option\": ", i ? "," : "");
        json_str(f, c->option);
        fputs(", \"template\": ", f);
        json_str(f, c->template);
        fputs(", \"path\": ", f);
        json_str(f, c->parts && !c->index ? NULL : c->path);
        fputs(", \"pattern\": ", f);
        json_str(f, c->parts);
        fprintf(f, ", \"compress\": \"%s\",\n   \"items\": %llu, \"rows_skipped\": %llu, "
                   "\"bytes_in\": %llu, \"bytes_out\": %llu, \"published\": %s,\n"
                   "   \"parts\": [",
                cli_output_codec(c), (unsigned long long)out_items(c),
                (unsigned long long)(c->opened ? sf_render_rows_skipped(r, c->out) : 0),
                (unsigned long long)(c->opened ? sf_output_bytes(c->out) : 0),
                (unsigned long long)(c->opened ? sf_output_bytes_out(c->out) : 0),
                c->opened && sf_output_published(c->out) ? "true" : "false");
        size_t np = c->opened && c->parts ? sf_output_part_count(c->out) : 0;
        for (size_t k = 0; k < np; k++) {
            fprintf(f, "%s\n    {\"path\": ", k ? "," : "");
            json_str(f, sf_output_part_path(c->out, k));
            fprintf(f, ", \"rows\": %llu, \"bytes\": %llu}",
                    (unsigned long long)sf_output_part_rows(c->out, k),
                    (unsigned long long)sf_output_part_bytes(c->out, k));
        }
        fputs(np ? "],\n   \"index\": " : "],\n   \"index\": ", f);
        if (!c->index) {
            fputs("null}", f);
            continue;
        }
        fputs("{\"path\": ", f);
        json_str(f, c->path);
        fputs(", \"template\": ", f);
        json_str(f, c->index);
        fprintf(f, ", \"bytes_in\": %llu, \"bytes_out\": %llu, \"published\": %s}}",
                (unsigned long long)(c->iopened ? sf_output_bytes(c->iout) : 0),
                (unsigned long long)(c->iopened ? sf_output_bytes_out(c->iout) : 0),
                c->iopened && sf_output_published(c->iout) ? "true" : "false");
    }
    fputs("\n ]}\n", f);
}

/* Writes --summary-json FILE through an output of its own: published
 * atomically like a feed (temporary file, fsync, rename), never created in
 * /dev, /proc or /sys; '-' or a descriptor is written as it goes. A failure
 * is a warning: the run's own exit status stands. */
static void write_summary_json(const render_opts *o, sf_render *r, int rc)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        cli_error("warning: --summary-json %s: out of memory", o->summary_json);
        return;
    }
    summary_json_text(f, o, r, rc);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(text);
        cli_error("warning: --summary-json %s: out of memory", o->summary_json);
        return;
    }
    sf_output *out = sf_output_create(cli_census);
    sf_status st = out ? sf_output_set_option(out, "writer", "inline") : SF_ERR_NOMEM;
    if (st == SF_OK)
        st = !strcmp(o->summary_json, "-") ? sf_output_open_fd(out, STDOUT_FILENO, "stdout")
                                           : sf_output_open_file(out, o->summary_json);
    if (st == SF_OK && (st = sf_output_write(out, text, len)) == SF_OK)
        st = sf_output_commit(out);
    if (st != SF_OK) {
        sf_output_abort(out);
        /* Printed without cli_error: the run's last error stays what it was. */
        fprintf(stderr, "sqlfeed: warning: --summary-json: %s\n",
                out ? sf_output_errmsg(out) : "out of memory");
    }
    sf_output_free(out);
    free(text);
}

/* --shard K/N: the one output becomes the shard's part, DIR/K-of-N.part,
 * compressed as -o's name says; or, split (--split-rows, --split-bytes, or
 * the format's defaults: sitemap), its parts DIR/K-of-N-%04d.part, each a
 * complete document. An index is publish's to write (docs/shards.md). */
static int shard_output(render_opts *o)
{
    unsigned k, n;
    char extra;
    cli_output *c = &o->outs[0];
    if (!o->shard)
        return cli_usage("render", "--shard-key, --shard-dir and --run go with --shard K/N");
    if (sscanf(o->shard, "%u/%u%c", &k, &n, &extra) != 2 || k < 1 || k > n || n > 1024 ||
        o->shard[0] < '0' || o->shard[0] > '9')
        return cli_usage("render", "--shard takes K/N with 1 <= K <= N <= 1024 (e.g. 2/4), got "
                                   "'%s'", o->shard);
    if (!o->shard_key)
        return cli_usage("render", "--shard needs --shard-key COLUMN (an integer column of the "
                                   "query, such as its primary key)");
    if (o->nouts != 1)
        return cli_usage("render", "--shard writes one feed's part: no --output");
    if (!c->path || !strcmp(c->path, "-") || sf_output_names_descriptor(c->path))
        return cli_usage("render", "--shard needs -o FEED, the file publish will write (the part "
                                   "goes to FEED.shards/, or --shard-dir)");
    if (c->parts || c->index || c->base_url)
        return cli_usage("render", "--shard: the shard's parts are named in --shard-dir; "
                                   "--parts, --index and --base-url go to sqlfeed publish");
    if (o->reject_log)
        return cli_usage("render", "--shard keeps no --reject-log");
    int rc;
    /* The format's split and compression apply (a sitemap shard is split
     * in parts of 50,000 URLs); its index is publish's. */
    /* The index's --base-url is publish's too: a stand-in lets the format's
     * index apply here (then dropped with it). */
    if (!(c->base_url = strdup("https://publish.invalid/"))) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    if (!o->no_defaults && (rc = cli_format_defaults(c, cli_template_file(c->template))) != EXIT_OK)
        return rc;
    free(c->index);
    free(c->base_url);
    free(c->parts);
    c->index = c->base_url = c->parts = NULL;
    if (!o->shard_dir) {
        if ((size_t)snprintf(o->shard_dir_buf, sizeof o->shard_dir_buf, "%s.shards", c->path) >=
            sizeof o->shard_dir_buf)
            return cli_usage("render", "-o: name too long");
        o->shard_dir = o->shard_dir_buf;
    }
    if (mkdir(o->shard_dir, 0777) != 0 && errno != EEXIST) {
        cli_error("--shard-dir %s: %s", o->shard_dir, strerror(errno));
        return EXIT_OUTPUT;
    }
    /* This shard's manifest of an earlier run goes now, whatever happens
     * next (the database unreachable, a template error): publish then finds
     * the shard missing rather than joining the earlier run's part. The
     * library removes it too, at the render's start, for other callers. */
    char manifest[4200];
    if ((size_t)snprintf(manifest, sizeof manifest, "%s/%u-of-%u.json", o->shard_dir, k, n) >=
        sizeof manifest)
        return cli_usage("render", "--shard-dir: name too long");
    if (unlink(manifest) != 0 && errno != ENOENT) {
        cli_error("--shard: removing the earlier manifest %s: %s", manifest, strerror(errno));
        return EXIT_OUTPUT;
    }
    const char *codec = cli_output_codec(c); /* by -o's suffix, or --compress */
    int split = c->split_rows || c->split_bytes;
    char part[4200];
    if ((size_t)snprintf(part, sizeof part, split ? "%s/%u-of-%u-%%04d.part" : "%s/%u-of-%u.part",
                         o->shard_dir, k, n) >= sizeof part)
        return cli_usage("render", "--shard-dir: name too long");
    char *p = strdup(part), *z = strdup(codec);
    if (!p || !z) {
        free(p);
        free(z);
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    free(c->path);
    free(c->compress);
    if (split) {
        c->path = NULL;
        c->parts = p;
        c->parts_given = 1;
    } else {
        c->path = p;
    }
    c->compress = z;
    /* --lastmod (or the format's): the largest value of each part, in the
     * manifest (kept until the end: freed with the run's options). */
    o->shard_lastmod = c->lastmod;
    c->lastmod = NULL;
    o->no_defaults = 1;
    return EXIT_OK;
}

int cmd_render(int argc, char **argv)
{
    enum {
        OPT_DB = 256, OPT_QUERY, OPT_QUERY_FILE, OPT_TEMPLATE, OPT_PARAM, OPT_CENSUS,
        OPT_CENSUS_FIFO, OPT_MEM_LOG, OPT_MAX_MEMORY, OPT_PROGRESS, OPT_TOTAL, OPT_COUNT,
        OPT_TIMEOUT, OPT_FETCH_SIZE, OPT_OUTPUT, OPT_COMPRESS, OPT_LEVEL, OPT_SPLIT_ROWS,
        OPT_SPLIT_BYTES, OPT_PARTS, OPT_INDEX, OPT_BASE_URL, OPT_LASTMOD, OPT_MIN_ROWS,
        OPT_MAX_DROP, OPT_SUMMARY_JSON, OPT_THREADS, OPT_SQLITE_CACHE, OPT_ON_INVALID,
        OPT_REJECT_LOG, OPT_NO_DEFAULTS, OPT_SHARD, OPT_SHARD_KEY, OPT_SHARD_DIR, OPT_SNAPSHOT,
        OPT_RUN
    };
    /* Sorted by name, as --help lists them. */
    static const struct option longopts[] = {
        {"base-url", required_argument, NULL, OPT_BASE_URL},
        {"census", no_argument, NULL, OPT_CENSUS},
        {"census-fifo", required_argument, NULL, OPT_CENSUS_FIFO},
        {"compress", required_argument, NULL, OPT_COMPRESS},
        {"count", no_argument, NULL, OPT_COUNT},
        {"db", required_argument, NULL, OPT_DB},
        {"fetch-size", required_argument, NULL, OPT_FETCH_SIZE},
        {"help", no_argument, NULL, 'h'},
        {"index", required_argument, NULL, OPT_INDEX},
        {"lastmod", required_argument, NULL, OPT_LASTMOD},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"max-drop", required_argument, NULL, OPT_MAX_DROP},
        {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
        {"mem-log", required_argument, NULL, OPT_MEM_LOG},
        {"min-rows", required_argument, NULL, OPT_MIN_ROWS},
        {"no-defaults", no_argument, NULL, OPT_NO_DEFAULTS},
        {"on-invalid", required_argument, NULL, OPT_ON_INVALID},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"param", required_argument, NULL, OPT_PARAM},
        {"parts", required_argument, NULL, OPT_PARTS},
        {"progress", optional_argument, NULL, OPT_PROGRESS},
        {"query", required_argument, NULL, OPT_QUERY},
        {"query-file", required_argument, NULL, OPT_QUERY_FILE},
        {"quiet", no_argument, NULL, 'q'},
        {"reject-log", required_argument, NULL, OPT_REJECT_LOG},
        {"run", required_argument, NULL, OPT_RUN},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"shard-dir", required_argument, NULL, OPT_SHARD_DIR},
        {"shard-key", required_argument, NULL, OPT_SHARD_KEY},
        {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
        {"split-bytes", required_argument, NULL, OPT_SPLIT_BYTES},
        {"split-rows", required_argument, NULL, OPT_SPLIT_ROWS},
        {"sqlite-cache", required_argument, NULL, OPT_SQLITE_CACHE},
        {"summary-json", required_argument, NULL, OPT_SUMMARY_JSON},
        {"template", required_argument, NULL, OPT_TEMPLATE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"total", required_argument, NULL, OPT_TOTAL},
        {NULL, 0, NULL, 0},
    };
    /* The -o/--template output's own options, by option. */
    static const struct { int opt; const char *key, *name; } first_keys[] = {
        {OPT_COMPRESS, "compress", "--compress"},   {OPT_LEVEL, "level", "--level"},
        {OPT_SPLIT_ROWS, "split-rows", "--split-rows"},
        {OPT_SPLIT_BYTES, "split-bytes", "--split-bytes"},
        {OPT_PARTS, "parts", "--parts"},            {OPT_INDEX, "index", "--index"},
        {OPT_BASE_URL, "base-url", "--base-url"},   {OPT_LASTMOD, "lastmod", "--lastmod"},
        {OPT_TEMPLATE, "template", "--template"},   {'t', "template", "--template"},
        {'o', "path", "-o"},
    };
    static render_opts o; /* large (the outputs); one render per process */
    cli_output more[MAX_OUTPUTS];
    size_t nmore = 0;
    cli_output first = {0};
    char *db_copy = NULL;
    size_t db_copy_size = 0;
    memset(&o, 0, sizeof o);
    memset(more, 0, sizeof more);
    o.mon.progress = PROGRESS_AUTO;
    o.threads = 1;
    sf_render *r = sf_render_create(cli_census);
    char *query = NULL;
    int rc = EXIT_USAGE, c, parsed = 0;
    if (!r) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ho:qt:", longopts, NULL)) != -1) {
        int handled = 0;
        for (size_t i = 0; i < sizeof first_keys / sizeof first_keys[0]; i++)
            if (first_keys[i].opt == c) {
                rc = c == 'o' && !*optarg
                         ? cli_usage("render", "-o needs a file name ('-' for stdout)")
                         : cli_output_set(&first, first_keys[i].key, optarg, first_keys[i].name);
                if (rc != EXIT_OK)
                    goto done;
                handled = 1;
                break;
            }
        if (handled)
            continue;
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
        case 'q': o.quiet = 1; break;
        case OPT_CENSUS: o.census = 1; break;
        case OPT_CENSUS_FIFO: o.mon.fifo = optarg; break;
        case OPT_MEM_LOG: o.mon.mem_log = optarg; break;
        case OPT_COUNT: o.count = 1; break;
        case OPT_SHARD: o.shard = optarg; break;
        case OPT_SHARD_KEY: o.shard_key = optarg; break;
        case OPT_SHARD_DIR: o.shard_dir = optarg; break;
        case OPT_SNAPSHOT: o.snapshot = optarg; break;
        case OPT_RUN: o.run = optarg; break;
        case OPT_NO_DEFAULTS: o.no_defaults = 1; break;
        case OPT_TIMEOUT: o.timeout = optarg; break;
        case OPT_FETCH_SIZE: o.fetch_size = optarg; break;
        case OPT_SUMMARY_JSON:
            if (!*optarg) {
                rc = cli_usage("render", "--summary-json needs a file name");
                goto done;
            }
            o.summary_json = optarg;
            break;
        case OPT_MIN_ROWS: {
            char *end;
            errno = 0;
            (void)strtoull(optarg, &end, 10);
            if (errno || *end || *optarg < '0' || *optarg > '9') {
                rc = cli_usage("render", "--min-rows needs a number of rows, got '%s'", optarg);
                goto done;
            }
            o.min_rows = optarg;
            break;
        }
        case OPT_MAX_DROP: {
            char *end;
            errno = 0;
            double v = strtod(optarg, &end);
            if (errno || *end || end == optarg || !(v >= 0 && v <= 100) ||
                (*optarg != '.' && (*optarg < '0' || *optarg > '9'))) {
                rc = cli_usage("render", "--max-drop needs a percentage from 0 to 100, got '%s'",
                               optarg);
                goto done;
            }
            o.max_drop = optarg;
            break;
        }
        case OPT_ON_INVALID:
            if (strcmp(optarg, "fail") && strcmp(optarg, "skip")) {
                rc = cli_usage("render", "--on-invalid takes fail or skip, got '%s'", optarg);
                goto done;
            }
            o.on_invalid = optarg;
            break;
        case OPT_REJECT_LOG:
            if (!*optarg || !strcmp(optarg, "-")) {
                rc = cli_usage("render", "--reject-log needs a file name (it is published with "
                                         "the outputs, not written to stdout)");
                goto done;
            }
            o.reject_log = optarg;
            break;
        case OPT_THREADS:
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                rc = cli_usage("render", "--threads takes on or off, got '%s'", optarg);
                goto done;
            }
            o.threads = !strcmp(optarg, "on");
            break;
        case OPT_OUTPUT:
            if (nmore == MAX_OUTPUTS - 1) {
                rc = cli_usage("render", "at most %d outputs from one scan", MAX_OUTPUTS);
                goto done;
            }
            nmore++;
            if ((rc = cli_output_parse(&more[nmore - 1], optarg, (int)nmore + 1)) != EXIT_OK)
                goto done;
            break;
        case OPT_SQLITE_CACHE: {
            uint64_t n = 0;
            if (parse_size(optarg, &n) != 0 || n < (64u << 10) || n > (1u << 30)) {
                rc = cli_usage("render", "--sqlite-cache needs a size from 64K to 1G, got '%s'",
                               optarg);
                goto done;
            }
            snprintf(o.sqlite_cache, sizeof o.sqlite_cache, "%llu",
                     (unsigned long long)(n >> 10));
            break;
        }
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
        case OPT_PARAM:
            if ((rc = cli_set_param(r, optarg, "render")) != EXIT_OK)
                goto done;
            break;
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
    /* The outputs: -o/--template (and the options that go with them) first,
     * then each --output in order. */
    int has_first = first.template || first.path || (first.parts && !first.index);
    if (has_first || !nmore) {
        const char *missing = !o.db ? "--db" : !first.template ? "--template"
                              : !first.path && !first.parts ? "-o" : NULL;
        if (!missing && first.index && !first.path)
            missing = "-o (the index, with --index)";
        if (missing) {
            rc = cli_usage("render", "missing %s", missing);
            goto done;
        }
        if (!(first.option = strdup("-o"))) {
            cli_error("out of memory");
            rc = EXIT_FAILURE_OTHER;
            goto done;
        }
        o.outs[o.nouts++] = first;
        memset(&first, 0, sizeof first);
    } else if (cli_output_has_options(&first)) {
        rc = cli_usage("render", "--compress, --level, --split-*, --parts, --index, --base-url "
                                 "and --lastmod go with -o and --template; an --output takes "
                                 "them as key=value (--output T=PATH,compress=gzip)");
        goto done;
    } else if (!o.db) {
        rc = cli_usage("render", "missing --db");
        goto done;
    }
    for (size_t i = 0; i < nmore; i++) {
        o.outs[o.nouts++] = more[i];
        memset(&more[i], 0, sizeof more[i]);
    }
    nmore = 0;
    if ((o.shard || o.shard_key || o.shard_dir || o.run) && (rc = shard_output(&o)) != EXIT_OK)
        goto done;
    for (size_t i = 0; i < o.nouts; i++) /* the format's defaults first (cli/formats.c) */
        if ((!o.no_defaults &&
             (rc = cli_format_defaults(&o.outs[i], cli_template_file(o.outs[i].template))) != EXIT_OK) ||
            (rc = cli_output_resolve(&o.outs[i])) != EXIT_OK)
            goto done;
    if (o.query && o.query_file) {
        rc = cli_usage("render", "give --query or --query-file, not both");
        goto done;
    }
    if (o.count && o.mon.total) {
        rc = cli_usage("render", "give --total or --count, not both");
        goto done;
    }
    if (o.summary_json && strcmp(o.summary_json, "-")) {
        char dir[4096];
        if (cli_new_file_forbidden(o.summary_json, dir, sizeof dir)) {
            cli_error("--summary-json %s: no file is created in %s (a kernel file system)",
                      o.summary_json, dir);
            o.summary_json = NULL;
            rc = EXIT_OUTPUT;
            goto done;
        }
    }
    if (o.reject_log && (!o.on_invalid || strcmp(o.on_invalid, "skip"))) {
        rc = cli_usage("render", "--reject-log lists the rows --on-invalid skip leaves out: give "
                                 "--on-invalid skip");
        goto done;
    }
    if (o.reject_log) {
        char dir[4096];
        if (cli_new_file_forbidden(o.reject_log, dir, sizeof dir)) {
            cli_error("--reject-log %s: no file is created in %s (a kernel file system)",
                      o.reject_log, dir);
            rc = EXIT_OUTPUT;
            goto done;
        }
    }
    sf_status st;
    if (o.on_invalid && (st = sf_render_set_option(r, "on_invalid", o.on_invalid)) != SF_OK) {
        rc = option_failed(st, "--on-invalid", sf_render_errmsg(r));
        goto done;
    }
    if ((o.min_rows && (st = sf_render_set_option(r, "min_rows", o.min_rows)) != SF_OK) ||
        (o.max_drop && (st = sf_render_set_option(r, "max_drop", o.max_drop)) != SF_OK)) {
        rc = option_failed(st, o.min_rows ? "--min-rows" : "--max-drop", sf_render_errmsg(r));
        goto done;
    }
    parsed = 1;
    if (o.query_file && !(query = read_text_file(o.query_file, "query file", &rc)))
        goto done;
    if ((rc = cli_source_date_epoch(r)) != EXIT_OK)
        goto done;
    rc = run_render(&o, r, o.query ? o.query : query);
done:
    /* --summary-json: also for a failed run, once the options were read
     * (a run refused for its options says so too, exit 2). */
    if (o.summary_json && (parsed || rc == EXIT_USAGE) && o.nouts)
        write_summary_json(&o, r, rc);
    for (size_t i = 0; i < o.nouts; i++) {
        cli_output *out = &o.outs[i];
        sf_output_free(out->out);
        sf_output_free(out->iout);
        sf_template_free(out->tpl);
        sf_template_free(out->itpl);
        cli_output_clear(out);
    }
    for (size_t i = 0; i < nmore; i++)
        cli_output_clear(&more[i]);
    cli_output_clear(&first);
    free((char *)o.shard_lastmod);
    free(query);
    db_copy_free(db_copy, db_copy_size);
    sf_render_free(r);
    if (rc >= 128)
        cli_reraise(rc - 128);
    return rc;
}
