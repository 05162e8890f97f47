/* thread_test.c DIR: the library's threads.
 *   census: several threads allocating, reallocating and freeing through one
 *     census leave it exact (counts, bytes, allocs, peaks), and
 *     sf_census_fail_after() and the limit count every thread's allocations;
 *   prefetch (the scan thread): a render is byte-identical with and without
 *     it (SQLite, small and default rings, rows larger than a batch; and
 *     PostgreSQL / MariaDB when SQLFEED_PG_URL / SQLFEED_MY_URL are set, else
 *     SKIP); an error at row N comes after rows 1..N-1 with the same message;
 *     a cancel (the render's or the source's) mid-scan stops it; freeing the
 *     source at any point joins the thread and leaks nothing; a row past
 *     prefetch_row_max is a clear error; nothing is allocated per row;
 *     SQLite's allocator routed to the census from the scan thread.
 * Files go to the scratch directory DIR. Under ThreadSanitizer:
 *   make BUILD=build/tsan CC=clang OPT=-O1 LDFLAGS=-fsanitize=thread \
 *     EXTRA_CFLAGS="-fsanitize=thread -fno-omit-frame-pointer" build/tsan/tests/thread_test
 *   build/tsan/tests/thread_test DIR       (clean, also with the servers' URLs set)
 * Prints "PASS: name" / "FAIL: name: detail" / "SKIP: name: why"; exit 1 if
 * anything failed. */
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "sink/sink.h"
#include "source/source.h"
#include "sqlfeed.h"

/* hop.c's (not in sink.h yet). */
sf_status sf_stage_hop_open(sf_output *out, sf_stage **sp);

static const char *dir;
static char path_db[4096];

/* ---- the census under threads ------------------------------------------ */

#define CT_THREADS 4
#define CT_ROUNDS 20000
#define CT_KEEP 64

typedef struct ct_arg {
    sf_census *c;
    int id;
    uint64_t made;      /* allocations that succeeded */
    uint64_t kept_bytes; /* live at the end */
    uint64_t kept;
    void *keep[CT_KEEP];
} ct_arg;

static void *ct_main(void *v)
{
    ct_arg *a = v;
    unsigned seed = (unsigned)a->id * 2654435761u + 1;
    void *slot[CT_KEEP] = {0};
    for (int i = 0; i < CT_ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)(seed >> 16) % CT_KEEP;
        size_t n = 1 + (seed >> 8) % 3000;
        sf_mem_type t = (sf_mem_type)((unsigned)(a->id + i) % (unsigned)SF_MEM_TYPE_COUNT);
        if (!slot[k]) {
            if ((slot[k] = sf_census_malloc(a->c, t, n)))
                a->made++;
        } else if (seed & 0x100) {
            void *p = sf_census_realloc(a->c, t, slot[k], n);
            if (p)
                slot[k] = p;
        } else {
            sf_census_dealloc(a->c, slot[k]);
            slot[k] = NULL;
        }
    }
    for (int k = 0; k < CT_KEEP; k++) {
        a->keep[k] = slot[k];
        if (slot[k]) {
            a->kept++;
            a->kept_bytes += sf_census_block_size(slot[k]);
        }
    }
    return NULL;
}

static void census_totals(sf_census *c, uint64_t *count, uint64_t *bytes, uint64_t *allocs)
{
    *count = *bytes = *allocs = 0;
    for (int t = 0; t < SF_MEM_TYPE_COUNT; t++) {
        sf_mem_stat s;
        sf_census_stat(c, (sf_mem_type)t, &s);
        *count += s.count;
        *bytes += s.bytes;
        *allocs += s.allocs;
    }
}

static void test_census_threads(void)
{
    sf_census *c = sf_census_create();
    ct_arg a[CT_THREADS];
    pthread_t th[CT_THREADS];
    for (int i = 0; i < CT_THREADS; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].c = c;
        a[i].id = i;
        pthread_create(&th[i], NULL, ct_main, &a[i]);
    }
    uint64_t made = 0, kept = 0, kept_bytes = 0;
    for (int i = 0; i < CT_THREADS; i++) {
        pthread_join(th[i], NULL);
        made += a[i].made;
        kept += a[i].kept;
        kept_bytes += a[i].kept_bytes;
    }
    uint64_t count, bytes, allocs;
    census_totals(c, &count, &bytes, &allocs);
    check(count == kept && bytes == kept_bytes && sf_census_live_bytes(c) == kept_bytes,
          "census: live blocks and bytes exact after 4 threads",
          "census says %llu blocks, %llu bytes (total %llu); the threads hold %llu, %llu",
          (unsigned long long)count, (unsigned long long)bytes,
          (unsigned long long)sf_census_live_bytes(c), (unsigned long long)kept,
          (unsigned long long)kept_bytes);
    check(allocs == made, "census: allocations counted exactly under threads",
          "census says %llu, the threads made %llu", (unsigned long long)allocs,
          (unsigned long long)made);
    uint64_t peak = sf_census_peak_bytes(c);
    check(peak >= kept_bytes && peak <= (uint64_t)CT_THREADS * CT_KEEP * 3000,
          "census: peak within what the threads could hold", "peak %llu",
          (unsigned long long)peak);
    for (int i = 0; i < CT_THREADS; i++)
        for (int k = 0; k < CT_KEEP; k++)
            sf_census_dealloc(c, a[i].keep[k]);
    census_totals(c, &count, &bytes, &allocs);
    check(count == 0 && bytes == 0 && sf_census_live_bytes(c) == 0,
          "census: back to zero once every block is freed", "%llu blocks, %llu bytes",
          (unsigned long long)count, (unsigned long long)bytes);
    sf_census_free(c);
}

/* fail_after(n) and the limit: exactly n (or limit/size) allocations succeed,
 * whichever threads ask. */
typedef struct cf_arg {
    sf_census *c;
    size_t size;
    atomic_ulong ok;
    void *blocks[CT_THREADS][4096];
} cf_arg;

static cf_arg cf;
static atomic_int cf_next;

static void *cf_main(void *v)
{
    (void)v;
    int id = atomic_fetch_add(&cf_next, 1);
    for (int i = 0; i < 4096; i++)
        if ((cf.blocks[id][i] = sf_census_malloc(cf.c, SF_MEM_OTHER, cf.size)))
            atomic_fetch_add(&cf.ok, 1);
    return NULL;
}

static unsigned long cf_run(void)
{
    pthread_t th[CT_THREADS];
    atomic_store(&cf.ok, 0);
    atomic_store(&cf_next, 0);
    for (int i = 0; i < CT_THREADS; i++)
        pthread_create(&th[i], NULL, cf_main, NULL);
    for (int i = 0; i < CT_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < CT_THREADS; i++)
        for (int k = 0; k < 4096; k++) {
            sf_census_dealloc(cf.c, cf.blocks[i][k]);
            cf.blocks[i][k] = NULL;
        }
    return atomic_load(&cf.ok);
}

static void test_census_fail_limit(void)
{
    cf.c = sf_census_create();
    cf.size = 100;
    sf_census_fail_after(cf.c, 5000);
    unsigned long ok = cf_run();
    check(ok == 5000, "census: fail_after(5000) lets exactly 5000 through from 4 threads",
          "%lu succeeded", ok);
    sf_census_free(cf.c);
    cf.c = sf_census_create(); /* a peak of its own */
    sf_census_set_limit(cf.c, 100 * 3000 + 50);
    ok = cf_run();
    uint64_t peak = sf_census_peak_bytes(cf.c);
    check(ok == 3000 && peak <= 100 * 3000 + 50,
          "census: a limit of 3000 blocks admits exactly 3000 from 4 threads",
          "%lu succeeded, peak %llu", ok, (unsigned long long)peak);
    check(sf_census_set_limit(cf.c, 0) == SF_ERR_NOMEM, "census: the limit says it refused",
          "sf_census_set_limit did not report the refusals");
    check(sf_census_live_bytes(cf.c) == 0, "census: zero after the limited run", "%llu left",
          (unsigned long long)sf_census_live_bytes(cf.c));
    sf_census_free(cf.c);
}

/* ---- SQLite's allocator routed into a census (as the CLI does) ---------- */

static sf_census *sqlite_census;
static void *sq_malloc(int n)
{
    return n > 0 ? sf_census_malloc(sqlite_census, SF_MEM_SQLITE, (size_t)n) : NULL;
}
static void sq_free(void *p) { sf_census_dealloc(sqlite_census, p); }
static void *sq_realloc(void *p, int n)
{
    return n > 0 ? sf_census_realloc(sqlite_census, SF_MEM_SQLITE, p, (size_t)n) : NULL;
}
static int sq_size(void *p) { return (int)sf_census_block_size(p); }
static int sq_roundup(int n) { return (n + 7) & ~7; }
static int sq_init(void *ud) { (void)ud; return SQLITE_OK; }
static void sq_shutdown(void *ud) { (void)ud; }

/* ---- rendering ---------------------------------------------------------- */

static const char *const TEMPLATE =
    "<feed>{{#rows}}<r id=\"{{id}}\" f=\"{{f}}\">{{t}}|{{#b}}B{{/b}}{{^b}}nb{{/b}}|{{n}}</r>\n"
    "{{/rows}}{{^rows}}<empty/>{{/rows}}</feed>\n";

typedef struct run_opts {
    const char *db;
    const char *sql;
    const char *tpl;
    const char *const *opts; /* name, value, ..., NULL */
    int cancel_after;        /* >0: sf_render_cancel from another thread after this many rows */
    int source_cancel;       /* ... by sf_source_cancel instead */
} run_opts;

typedef struct run_result {
    sf_status st;
    char msg[1024];
    uint64_t rows;
    char *doc; /* malloc'ed */
    size_t len;
    uint64_t live_after; /* census live bytes after everything was freed */
} run_result;

typedef struct canceller {
    sf_render *r;
    sf_source *src;
    uint64_t after;
    int source;
    atomic_int quit;
} canceller;

static void *cancel_main(void *v)
{
    canceller *k = v;
    while (!atomic_load(&k->quit) && sf_render_rows(k->r) < k->after) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(&k->quit)) {
        if (k->source)
            sf_source_cancel(k->src);
        else
            sf_render_cancel(k->r);
    }
    return NULL;
}

static sf_status load(sf_template *tpl, const char *text)
{
    return sf_template_load_string(tpl, "t", text, strlen(text), NULL, NULL);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *d = malloc((size_t)n + 1);
    if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    if (d) {
        d[n] = 0;
        *len = (size_t)n;
    }
    return d;
}

static void render(const run_opts *o, run_result *res)
{
    memset(res, 0, sizeof *res);
    sf_census *c = sf_census_create();
    sf_source *src = sf_source_create(c);
    sf_template *tpl = sf_template_create(c, SF_TEMPLATE_XML);
    sf_output *out = sf_output_create(c);
    sf_render *r = sf_render_create(c);
    char path[4200];
    snprintf(path, sizeof path, "%s/doc.xml", dir);
    sf_status st = load(tpl, o->tpl ? o->tpl : TEMPLATE);
    if (st != SF_OK)
        snprintf(res->msg, sizeof res->msg, "template: %s", sf_template_errmsg(tpl));
    for (const char *const *p = o->opts; st == SF_OK && p && *p; p += 2)
        if ((st = sf_source_set_option(src, p[0], p[1])) != SF_OK)
            snprintf(res->msg, sizeof res->msg, "option: %s", sf_source_errmsg(src));
    if (st == SF_OK && ((st = sf_source_open(src, o->db)) != SF_OK ||
                        (st = sf_source_prepare(src, o->sql)) != SF_OK))
        snprintf(res->msg, sizeof res->msg, "source: %s", sf_source_errmsg(src));
    if (st == SF_OK && (st = sf_output_open_file(out, path)) != SF_OK)
        snprintf(res->msg, sizeof res->msg, "output: %s", sf_output_errmsg(out));
    if (st == SF_OK) {
        canceller k = {.r = r, .src = src, .after = (uint64_t)o->cancel_after,
                       .source = o->source_cancel};
        pthread_t th;
        if (o->cancel_after)
            pthread_create(&th, NULL, cancel_main, &k);
        st = sf_render_run(r, tpl, src, out);
        atomic_store(&k.quit, 1);
        if (o->cancel_after)
            pthread_join(th, NULL);
        res->rows = sf_render_rows(r);
        if (st != SF_OK) {
            snprintf(res->msg, sizeof res->msg, "%s", sf_render_errmsg(r));
            sf_output_abort(out);
        } else if ((st = sf_output_commit(out)) != SF_OK) {
            snprintf(res->msg, sizeof res->msg, "commit: %s", sf_output_errmsg(out));
        } else {
            res->doc = slurp(path, &res->len);
        }
    }
    res->st = st;
    sf_render_free(r);
    sf_output_free(out);
    sf_template_free(tpl);
    sf_source_free(src);
    res->live_after = sf_census_live_bytes(c);
    sf_census_free(c);
    unlink(path);
}

/* Renders with and without prefetch; the two must agree in every byte. */
static void same(const char *name, const char *db, const char *sql, const char *const *pf_opts)
{
    run_opts a = {.db = db, .sql = sql};
    run_opts b = {.db = db, .sql = sql, .opts = pf_opts};
    run_result ra, rb;
    render(&a, &ra);
    render(&b, &rb);
    char nm[256];
    snprintf(nm, sizeof nm, "prefetch: %s: byte-identical document", name);
    check(ra.st == SF_OK && rb.st == SF_OK && ra.len == rb.len && ra.len > 0 &&
              memcmp(ra.doc, rb.doc, ra.len) == 0 && ra.rows == rb.rows,
          nm, "inline %d (%s) %zu bytes %llu rows; prefetch %d (%s) %zu bytes %llu rows", ra.st,
          ra.msg, ra.len, (unsigned long long)ra.rows, rb.st, rb.msg, rb.len,
          (unsigned long long)rb.rows);
    snprintf(nm, sizeof nm, "prefetch: %s: nothing left in the census", name);
    check(rb.live_after == 0, nm, "%llu bytes live after free", (unsigned long long)rb.live_after);
    free(ra.doc);
    free(rb.doc);
}

/* A failing query: the same status, message and rows before it. */
static void same_error_opts(const char *name, const char *db, const char *sql,
                            uint64_t rows_before, const char *const *inline_opts,
                            const char *const *pf_opts)
{
    run_opts a = {.db = db, .sql = sql, .opts = inline_opts};
    run_opts b = {.db = db, .sql = sql, .opts = pf_opts};
    run_result ra, rb;
    render(&a, &ra);
    render(&b, &rb);
    char nm[256];
    snprintf(nm, sizeof nm, "prefetch: %s: the same error after the same rows", name);
    check(ra.st != SF_OK && ra.st == rb.st && !strcmp(ra.msg, rb.msg) && ra.rows == rb.rows &&
              (rows_before == UINT64_MAX || rb.rows == rows_before),
          nm, "inline %d '%s' after %llu rows; prefetch %d '%s' after %llu rows", ra.st, ra.msg,
          (unsigned long long)ra.rows, rb.st, rb.msg, (unsigned long long)rb.rows);
    snprintf(nm, sizeof nm, "prefetch: %s: nothing left in the census", name);
    check(rb.live_after == 0, nm, "%llu bytes live after free", (unsigned long long)rb.live_after);
    free(ra.doc);
    free(rb.doc);
}

static void same_error(const char *name, const char *db, const char *sql, uint64_t rows_before,
                       const char *const *pf_opts)
{
    same_error_opts(name, db, sql, rows_before, NULL, pf_opts);
}

static const char *const PF_ON[] = {"prefetch", "on", NULL};
static const char *const PF_SMALL[] = {"prefetch", "on", "prefetch_batch", "4096",
                                       "prefetch_batches", "2", NULL};

static int make_db(void)
{
    snprintf(path_db, sizeof path_db, "%s/t.db", dir);
    unlink(path_db);
    sqlite3 *db;
    if (sqlite3_open(path_db, &db) != SQLITE_OK)
        return -1;
    /* Every kind: integers, reals, text with markup, blobs, NULL, empty
     * text; sizes from 0 to ~9 KB (rows larger than a 4 KiB batch); one row
     * of 1 MiB (row 3000) that makes a batch grow. */
    const char *sql =
        "CREATE TABLE t(id INTEGER PRIMARY KEY, f REAL, t TEXT, b BLOB, n);"
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)"
        " INSERT INTO t SELECT i, CASE WHEN i % 5 = 0 THEN NULL ELSE i * 0.25 END,"
        " CASE WHEN i % 7 = 0 THEN '' WHEN i = 3000 THEN printf('%.*c', 1048576, 'y')"
        "   ELSE substr(printf('%.*c', (i * 37) % 9000, 'x') || '<&\"é>', 1) END,"
        " CASE WHEN i % 3 = 0 THEN x'00ff41' WHEN i % 3 = 1 THEN NULL ELSE x'' END,"
        " CASE WHEN i % 11 = 0 THEN NULL ELSE -i END FROM c;";
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "make_db: %s\n", err);
    sqlite3_free(err);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static void test_prefetch_sqlite(void)
{
    const char *all = "SELECT id, f, t, b, n FROM t ORDER BY id";
    same("sqlite, default ring", path_db, all, PF_ON);
    same("sqlite, 2 batches of 4 KiB (rows larger than a batch)", path_db, all, PF_SMALL);
    same("sqlite, empty result", path_db, "SELECT id, f, t, b, n FROM t WHERE id < 0", PF_ON);
    same("sqlite, one row", path_db, "SELECT id, f, t, b, n FROM t WHERE id = 7", PF_SMALL);
    /* abs() of the smallest integer overflows: an error at row 1234. */
    const char *bad = "SELECT id, f, CASE WHEN id = 1234 THEN abs(-9223372036854775807 - 1)"
                      " ELSE t END AS t, b, n FROM t ORDER BY id";
    same_error("sqlite, error at row 1234", path_db, bad, 1233, PF_ON);
    same_error("sqlite, error at row 1234, small ring", path_db, bad, 1233, PF_SMALL);
    const char *first = "SELECT id, f, CASE WHEN id = 1 THEN abs(-9223372036854775807 - 1)"
                        " ELSE t END AS t, b, n FROM t ORDER BY id";
    same_error("sqlite, error at row 1", path_db, first, 0, PF_ON);

    /* The bound: row 3000 holds over 1 MiB of values. */
    static const char *const PF_MAX[] = {"prefetch", "on", "prefetch_batch", "4096",
                                         "prefetch_row_max", "100000", NULL};
    run_opts o = {.db = path_db, .sql = all, .opts = PF_MAX};
    run_result r;
    render(&o, &r);
    check(r.st == SF_ERR_SOURCE && r.rows == 2999 && strstr(r.msg, "query failed at row 3000") &&
              strstr(r.msg, "more than the 100000") && strstr(r.msg, "prefetch_row_max"),
          "prefetch: a row past prefetch_row_max is an error naming the row and the limit",
          "status %d after %llu rows: %s", r.st, (unsigned long long)r.rows, r.msg);
    check(r.live_after == 0, "prefetch: nothing left after the row-limit error",
          "%llu bytes", (unsigned long long)r.live_after);
    free(r.doc);

    /* Bad option values. */
    sf_source *s = sf_source_create(NULL);
    check(sf_source_set_option(s, "prefetch", "yes") == SF_ERR_ARG &&
              sf_source_set_option(s, "prefetch_batches", "1") == SF_ERR_ARG &&
              sf_source_set_option(s, "prefetch_batch", "100") == SF_ERR_ARG &&
              sf_source_set_option(s, "prefetch_row_max", "2000000000") == SF_ERR_ARG &&
              sf_source_set_option(s, "prefetch", "off") == SF_OK,
          "prefetch: option values checked", "%s", sf_source_errmsg(s));
    sf_source_free(s);
}

static const char *const INFINITE = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                                    "FROM c) SELECT i AS id, i AS f, 'x' AS t, NULL AS b, "
                                    "NULL AS n FROM c";

static void test_prefetch_cancel(void)
{
    run_opts o = {.db = path_db, .sql = INFINITE, .opts = PF_SMALL, .cancel_after = 5000};
    run_result r;
    render(&o, &r);
    check(r.st == SF_ERR_CANCELLED && r.rows >= 5000 && strstr(r.msg, "cancelled"),
          "prefetch: sf_render_cancel mid-scan stops the render", "status %d after %llu rows: %s",
          r.st, (unsigned long long)r.rows, r.msg);
    check(r.live_after == 0, "prefetch: nothing left after a cancel", "%llu bytes",
          (unsigned long long)r.live_after);
    o.source_cancel = 1;
    render(&o, &r);
    check(r.st == SF_ERR_SOURCE && r.rows >= 5000 && strstr(r.msg, "query failed at row") &&
              (strstr(r.msg, "interrupted") || strstr(r.msg, "cancelled")),
          "prefetch: sf_source_cancel mid-scan stops the render", "status %d after %llu rows: %s",
          r.st, (unsigned long long)r.rows, r.msg);
    check(r.live_after == 0, "prefetch: nothing left after a source cancel", "%llu bytes",
          (unsigned long long)r.live_after);
}

/* The source alone: free at any point joins the thread and frees all. */
static void test_prefetch_free(void)
{
    /* 0: before any row; 1: after one row (the ring fills, the thread waits
     * for room); 5000: mid-stream; -1: after the end. */
    static const long points[] = {0, 1, 5000, -1};
    for (size_t k = 0; k < sizeof points / sizeof *points; k++) {
        sf_census *c = sf_census_create();
        sf_source *s = sf_source_create(c);
        sf_source_set_option(s, "prefetch", "on");
        sf_source_set_option(s, "prefetch_batch", "4096");
        int ok = sf_source_open(s, path_db) == SF_OK &&
                 sf_source_prepare(s, points[k] < 0 ? "SELECT id FROM t WHERE id < 100"
                                                    : INFINITE) == SF_OK;
        long got = 0;
        if (points[k] < 0) {
            /* A whole render, then the free. */
            sf_render *rr = sf_render_create(c);
            sf_template *tpl = sf_template_create(c, SF_TEMPLATE_TEXT);
            sf_output *out = sf_output_create(c);
            ok = ok &&
                 load(tpl, "{{#rows}}{{id}}\n{{/rows}}") == SF_OK &&
                 sf_output_open_fd(out, open("/dev/null", O_WRONLY | O_CLOEXEC), "null") == SF_OK &&
                 sf_render_run(rr, tpl, s, out) == SF_OK;
            got = (long)sf_render_rows(rr);
            sf_output_abort(out);
            sf_output_free(out);
            sf_template_free(tpl);
            sf_render_free(rr);
        } else if (points[k] > 0) {
            /* Through a render, cancelled after N rows, then the source freed
             * while its thread is still stepping or waiting for room. */
            sf_render *rr = sf_render_create(c);
            sf_template *tpl = sf_template_create(c, SF_TEMPLATE_TEXT);
            sf_output *out = sf_output_create(c);
            canceller kk = {.r = rr, .src = s, .after = (uint64_t)points[k]};
            pthread_t th;
            ok = ok &&
                 load(tpl, "{{#rows}}{{id}}\n{{/rows}}") == SF_OK &&
                 sf_output_open_fd(out, open("/dev/null", O_WRONLY | O_CLOEXEC), "null") == SF_OK;
            if (ok) {
                pthread_create(&th, NULL, cancel_main, &kk);
                ok = sf_render_run(rr, tpl, s, out) == SF_ERR_CANCELLED;
                atomic_store(&kk.quit, 1);
                pthread_join(th, NULL);
                got = (long)sf_render_rows(rr);
            }
            sf_output_abort(out);
            sf_output_free(out);
            sf_template_free(tpl);
            sf_render_free(rr);
        }
        sf_source_free(s); /* joins the scan thread wherever it is */
        uint64_t live = sf_census_live_bytes(c);
        char nm[128];
        snprintf(nm, sizeof nm, "prefetch: sf_source_free %s joins and frees everything",
                 points[k] == 0 ? "before any row" : points[k] < 0 ? "after the end"
                                                   : points[k] == 1 ? "after one row"
                                                                    : "mid-scan");
        check(ok && live == 0 && (points[k] <= 0 || got >= points[k]) && (points[k] >= 0 || got == 99),
              nm, "ok %d, %ld rows, %llu bytes live", ok, got, (unsigned long long)live);
        sf_census_free(c);
    }
    /* Free straight after prepare, before sf_source_next: no thread was made. */
    sf_source *s = sf_source_create(NULL);
    sf_source_set_option(s, "prefetch", "on");
    sf_source_open(s, path_db);
    sf_source_prepare(s, INFINITE);
    sf_source_free(s);
    check(1, "prefetch: free before the rows start", "%s", "");
}

/* The steady state: 100 rows and 20000 rows make as many allocations (the
 * ring is made once; a grown batch is the only other). */
static void test_prefetch_steady(void)
{
    uint64_t allocs[2];
    const char *sql[2] = {"SELECT id, f, t, b, n FROM t WHERE id <= 100 ORDER BY id",
                          "SELECT id, f, t, b, n FROM t WHERE id <= 20000 AND id <> 3000 "
                          "ORDER BY id"};
    for (int k = 0; k < 2; k++) {
        sf_census *c = sf_census_create();
        sf_source *s = sf_source_create(c);
        sf_template *tpl = sf_template_create(c, SF_TEMPLATE_XML);
        sf_output *out = sf_output_create(c);
        sf_render *r = sf_render_create(c);
        sf_source_set_option(s, "prefetch", "on");
        sf_source_set_option(s, "prefetch_batch", "16384");
        int ok = load(tpl, TEMPLATE) == SF_OK &&
                 sf_source_open(s, path_db) == SF_OK && sf_source_prepare(s, sql[k]) == SF_OK &&
                 sf_output_open_fd(out, open("/dev/null", O_WRONLY | O_CLOEXEC), "null") ==
                     SF_OK &&
                 sf_render_run(r, tpl, s, out) == SF_OK;
        allocs[k] = 0;
        for (int t = 0; t < SF_MEM_TYPE_COUNT; t++) {
            sf_mem_stat st;
            sf_census_stat(c, (sf_mem_type)t, &st);
            if (t != SF_MEM_SQLITE)
                allocs[k] += st.allocs;
        }
        if (!ok)
            allocs[k] = (uint64_t)-1 - (uint64_t)k;
        sf_output_abort(out);
        sf_render_free(r);
        sf_output_free(out);
        sf_template_free(tpl);
        sf_source_free(s);
        sf_census_free(c);
    }
    check(allocs[0] == allocs[1], "prefetch: as many allocations for 20000 rows as for 100",
          "%llu against %llu", (unsigned long long)allocs[1], (unsigned long long)allocs[0]);
}

/* SQLite's memory routed into a census: allocated on the scan thread and
 * freed on the caller's, the census stays exact. */
static void test_prefetch_sqlite_census(void)
{
    sf_census *c = sqlite_census;
    uint64_t before = sf_census_live_bytes(c);
    sf_mem_stat s0, s1;
    sf_census_stat(c, SF_MEM_SQLITE, &s0);
    run_opts o = {.db = path_db, .sql = "SELECT id, f, t, b, n FROM t ORDER BY id",
                  .opts = PF_SMALL};
    run_result r;
    render(&o, &r);
    sf_census_stat(c, SF_MEM_SQLITE, &s1);
    check(r.st == SF_OK && s1.allocs > s0.allocs && sf_census_live_bytes(c) == before,
          "prefetch: SQLite's allocator routed to the census works from the scan thread",
          "status %d (%s), sqlite allocs %llu -> %llu, live %llu -> %llu", r.st, r.msg,
          (unsigned long long)s0.allocs, (unsigned long long)s1.allocs,
          (unsigned long long)before, (unsigned long long)sf_census_live_bytes(c));
    free(r.doc);
}

/* "sqlite_cache" sizes SQLite's page cache for the scan: with the ~90 MB
 * test database read whole, SQLite's memory still live before the source
 * closes is about the cache's size. */
static uint64_t sqlite_live_after_scan(const char *cache)
{
    const char *const opts[] = {"sqlite_cache", cache, NULL};
    sf_source *src = sf_source_create(NULL);
    uint64_t rows = 0, live = 0;
    if ((!cache || sf_source_set_option(src, opts[0], opts[1]) == SF_OK) &&
        sf_source_open(src, path_db) == SF_OK &&
        sf_source_prepare(src, "SELECT id, f, t, b, n FROM t ORDER BY id") == SF_OK) {
        while (sf_source_next(src) == 1)
            rows++;
        sf_mem_stat st;
        sf_census_stat(sqlite_census, SF_MEM_SQLITE, &st);
        live = st.bytes;
    }
    sf_source_free(src);
    return rows == 20000 ? live : 0;
}

static void test_sqlite_cache(void)
{
    uint64_t small = sqlite_live_after_scan("256"), dflt = sqlite_live_after_scan(NULL),
             big = sqlite_live_after_scan("16384");
    check(small > 0 && small < (1u << 20) && dflt > (7u << 20) / 2 && dflt < (6u << 20) &&
              big > (15u << 20),
          "sqlite_cache: SQLite's memory after a whole scan follows it (256 KiB, the "
          "default 4 MiB, 16 MiB)",
          "%llu, %llu, %llu bytes live", (unsigned long long)small, (unsigned long long)dflt,
          (unsigned long long)big);
    sf_source *src = sf_source_create(NULL);
    check(sf_source_set_option(src, "sqlite_cache", "63") == SF_ERR_ARG &&
              sf_source_set_option(src, "sqlite_cache", "2000000") == SF_ERR_ARG &&
              sf_source_set_option(src, "sqlite_cache", "4M") == SF_ERR_ARG &&
              strstr(sf_source_errmsg(src), "sqlite_cache") &&
              sf_source_set_option(src, "sqlite_cache", "8192") == SF_OK,
          "sqlite_cache: KiB from 64 to 1048576, anything else SF_ERR_ARG naming it", "%s",
          sf_source_errmsg(src));
    sf_source_free(src);
}

/* ---- servers ------------------------------------------------------------ */

static void test_prefetch_servers(void)
{
    const char *pg = getenv("SQLFEED_PG_URL"), *my = getenv("SQLFEED_MY_URL");
    if (!pg || !*pg) {
        printf("SKIP: prefetch: postgresql: SQLFEED_PG_URL is not set (tests/servers.sh)\n");
    } else {
        const char *q = "SELECT g AS id, g * 0.5 AS f, repeat('<x&>', g % 700) AS t,"
                        " CASE WHEN g % 3 = 0 THEN NULL ELSE 't'::text END AS b,"
                        " CASE WHEN g % 4 = 0 THEN NULL ELSE -g END AS n"
                        " FROM generate_series(1, 20000) g";
        same("postgresql", pg, q, PF_SMALL);
        same_error("postgresql, error mid-stream", pg,
                   "SELECT g AS id, 1 / (15000 - g) AS f, repeat('y', 500) AS t, NULL AS b,"
                   " NULL AS n FROM generate_series(1, 20000) g",
                   UINT64_MAX, PF_SMALL);
        /* --timeout: enforced inside the backend, now on the scan thread. */
        static const char *const T_IN[] = {"timeout", "1", NULL};
        static const char *const T_PF[] = {"timeout", "1", "prefetch", "on", NULL};
        same_error_opts("postgresql, statement timeout mid-stream", pg,
                        "SELECT g AS id, g AS f, CASE WHEN g = 3000 THEN pg_sleep(3)::text"
                        " ELSE 'x' END AS t, NULL AS b, NULL AS n FROM generate_series(1, 5000) g",
                        UINT64_MAX, T_IN, T_PF);
        run_opts o = {.db = pg,
                      .sql = "SELECT g AS id, g AS f, 'x' AS t, NULL AS b, NULL AS n FROM "
                             "generate_series(1, 100000000) g",
                      .opts = PF_SMALL,
                      .cancel_after = 3000};
        run_result r;
        render(&o, &r);
        check(r.st == SF_ERR_CANCELLED && r.rows >= 3000 && r.live_after == 0,
              "prefetch: postgresql: a cancel mid-scan stops it", "status %d after %llu: %s",
              r.st, (unsigned long long)r.rows, r.msg);
    }
    if (!my || !*my) {
        printf("SKIP: prefetch: mariadb: SQLFEED_MY_URL is not set (tests/servers.sh)\n");
    } else {
        /* seq_1_to_N: MariaDB's Sequence engine (a recursive CTE stops at
         * max_recursive_iterations, 1000). */
        const char *q = "SELECT seq AS id, seq * 0.5 AS f, REPEAT('<x&>', seq % 700) AS t,"
                        " CASE WHEN seq % 3 = 0 THEN NULL ELSE 'b' END AS b,"
                        " CASE WHEN seq % 4 = 0 THEN NULL ELSE -seq END AS n"
                        " FROM seq_1_to_20000";
        same("mariadb", my, q, PF_SMALL);
        same_error("mariadb, error mid-stream", my,
                   "SELECT seq AS id, seq AS f, IF(seq = 15000, (SELECT 1 UNION SELECT 2), 'y')"
                   " AS t, NULL AS b, NULL AS n FROM seq_1_to_20000",
                   UINT64_MAX, PF_SMALL);
        run_opts o = {.db = my,
                      .sql = "SELECT seq AS id, seq AS f, 'x' AS t, NULL AS b, NULL AS n"
                             " FROM seq_1_to_100000000",
                      .opts = PF_SMALL,
                      .cancel_after = 3000};
        run_result r;
        render(&o, &r);
        check(r.st == SF_ERR_CANCELLED && r.rows >= 3000 && r.live_after == 0,
              "prefetch: mariadb: a cancel mid-scan stops it", "status %d after %llu: %s", r.st,
              (unsigned long long)r.rows, r.msg);
    }
}

/* ---- the writer thread (hop) ------------------------------------------- */

/* A sink for the hop to feed: keeps a checksum of what it got, can fail at a
 * byte count, can be slow, and records the thread it ran on. */
typedef struct fake_sink {
    sf_stage base;
    uint64_t got, sum;
    uint64_t fail_at; /* fail the write that reaches this many bytes; 0: never */
    long delay_ns;    /* per write */
    pthread_t ran_on;
    int writes;
} fake_sink;

static sf_status fake_write(sf_stage *st, const void *p, size_t n)
{
    fake_sink *f = (fake_sink *)st;
    f->ran_on = pthread_self();
    f->writes++;
    if (f->delay_ns) {
        struct timespec ts = {f->delay_ns / 1000000000L, f->delay_ns % 1000000000L};
        nanosleep(&ts, NULL);
    }
    if (f->fail_at && f->got + n >= f->fail_at)
        return sf_fail(&st->out->err, SF_ERR_OUTPUT, "write to fake: No space left on device");
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        f->sum = f->sum * 31 + c[i];
    f->got += n;
    return SF_OK;
}
static sf_status fake_finish(sf_stage *st) { (void)st; return SF_OK; }
static void fake_abort(sf_stage *st) { (void)st; }
static void fake_destroy(sf_stage *st) { (void)st; }
static const sf_stage_vt fake_vt = {"fake", fake_write, fake_finish, NULL, fake_abort,
                                    fake_destroy};

/* Writes `total` bytes in writes of `chunk` through a hop into a fake sink;
 * returns the first failing status (from a write or the finish). */
static sf_status hop_feed(sf_output *out, fake_sink *f, uint64_t total, size_t chunk,
                          uint64_t *sum_sent, sf_stage **hp, int finish)
{
    static unsigned char buf[300000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 7 + i / 251);
    sf_stage *h = NULL;
    sf_status st = sf_stage_hop_open(out, &h);
    *hp = h;
    if (st != SF_OK)
        return st;
    h->next = &f->base;
    uint64_t sent = 0, sum = 0;
    while (st == SF_OK && sent < total) {
        size_t n = chunk;
        if (n > total - sent)
            n = (size_t)(total - sent);
        size_t o = (size_t)(sent % 1000);
        if ((st = sf_stage_write(h, buf + o, n)) == SF_OK) {
            for (size_t i = 0; i < n; i++)
                sum = sum * 31 + buf[o + i];
            sent += n;
        }
    }
    if (st == SF_OK && finish)
        st = h->vt->finish(h);
    *sum_sent = sum;
    return st;
}

static void test_hop(void)
{
    /* Every byte, in order, on the writer thread; finish leaves it drained. */
    sf_census *c = sf_census_create();
    sf_output *out = sf_output_create(c);
    fake_sink f = {.base = {.vt = &fake_vt, .out = out}};
    uint64_t sum = 0;
    sf_stage *h;
    sf_mem_stat s0, s1;
    sf_census_stat(c, SF_MEM_OUTPUT, &s0);
    sf_status st = hop_feed(out, &f, 50u << 20, 100003, &sum, &h, 1);
    sf_census_stat(c, SF_MEM_OUTPUT, &s1);
    check(st == SF_OK && f.got == (50u << 20) && f.sum == sum &&
              !pthread_equal(f.ran_on, pthread_self()),
          "hop: 50 MiB in odd-sized writes reach the sink in order, on another thread",
          "status %d, %llu bytes, sums %s", st, (unsigned long long)f.got,
          f.sum == sum ? "agree" : "differ");
    check(f.writes == (int)((50u << 20) / (256u << 10)),
          "hop: the sink gets whole 256 KiB buffers", "%d writes", f.writes);
    check(h && h->in == (50u << 20) && h->out_bytes == (50u << 20),
          "hop: its in and out counts", "in %llu out %llu", h ? (unsigned long long)h->in : 0,
          h ? (unsigned long long)h->out_bytes : 0);
    if (h)
        h->vt->destroy(h);
    sf_mem_stat s2;
    sf_census_stat(c, SF_MEM_OUTPUT, &s2);
    check(s1.allocs == s0.allocs + 4 && s2.bytes == s0.bytes,
          "hop: four buffers allocated once, freed at destroy",
          "allocs %llu -> %llu, bytes after destroy %llu (before %llu)",
          (unsigned long long)s0.allocs, (unsigned long long)s1.allocs,
          (unsigned long long)s2.bytes, (unsigned long long)s0.bytes);

    /* A downstream failure is sticky, with its message, on a later write or
     * at finish. */
    fake_sink g = {.base = {.vt = &fake_vt, .out = out}, .fail_at = 3u << 20};
    st = hop_feed(out, &g, 20u << 20, 65536, &sum, &h, 1);
    check(st == SF_ERR_OUTPUT && strstr(sf_output_errmsg(out), "No space left") &&
              g.got < (3u << 20),
          "hop: a write failure downstream comes back with its message", "status %d: '%s'",
          st, sf_output_errmsg(out));
    if (h)
        st = sf_stage_write(h, "x", 1);
    check(st == SF_ERR_OUTPUT, "hop: the failure is sticky", "status %d", st);
    if (h)
        h->vt->destroy(h);
    /* Failing in the last buffer: only finish can report it. */
    fake_sink g2 = {.base = {.vt = &fake_vt, .out = out}, .fail_at = 1000};
    st = hop_feed(out, &g2, 2000, 2000, &sum, &h, 1);
    check(st == SF_ERR_OUTPUT, "hop: a failure of the last partial buffer is finish's",
          "status %d", st);
    if (h)
        h->vt->destroy(h);

    /* A cancel while the sink is slow: the writer gives up within a poll and a
     * write, not after the queue drains. */
    fake_sink sl = {.base = {.vt = &fake_vt, .out = out}, .delay_ns = 200000000L};
    h = NULL;
    st = sf_stage_hop_open(out, &h);
    if (st == SF_OK) {
        h->next = &sl.base;
        static char big[256 << 10];
        for (int i = 0; i < 4 && st == SF_OK; i++)
            st = sf_stage_write(h, big, sizeof big); /* fills the queue */
        sf_output_cancel(out);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (st == SF_OK)
            st = sf_stage_write(h, big, sizeof big);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        check(st == SF_ERR_CANCELLED && secs < 0.5 && sl.writes < 4,
              "hop: sf_output_cancel stops a writer behind a slow sink",
              "status %d after %.2f s, %d sink writes: %s", st, secs, sl.writes,
              sf_output_errmsg(out));
        h->vt->destroy(h);
    }
    sf_output_free(out);

    /* Destroy mid-stream (no finish) joins the thread; nothing leaks. */
    out = sf_output_create(c);
    fake_sink d = {.base = {.vt = &fake_vt, .out = out}, .delay_ns = 1000000L};
    st = hop_feed(out, &d, 4u << 20, 300000, &sum, &h, 0);
    if (h) {
        h->vt->abort(h);
        h->vt->abort(h); /* idempotent */
        sf_status late = sf_stage_write(h, "x", 1);
        check(late == SF_ERR_STATE, "hop: a write after abort fails (nothing runs the queue)",
              "status %d", late);
        h->vt->destroy(h);
    }
    sf_output_free(out);
    check(st == SF_OK && sf_census_live_bytes(c) == 0,
          "hop: destroy mid-stream joins the thread and frees everything",
          "status %d, %llu bytes live", st, (unsigned long long)sf_census_live_bytes(c));
    sf_census_free(c);
}

/* A whole render into a file, with the writer thread and inline (and with
 * gzip), gives the same document. */
static void test_writer_render(void)
{
    const char *sql = "SELECT id, f, t, b, n FROM t ORDER BY id";
    static const char *const modes[][2] = {{"thread", "none"}, {"thread", "gzip"}};
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        char *doc[2] = {NULL, NULL};
        size_t len[2] = {0, 0};
        int ok = 1;
        for (int k = 0; k < 2; k++) {
            sf_census *c = sf_census_create();
            sf_source *src = sf_source_create(c);
            sf_template *tpl = sf_template_create(c, SF_TEMPLATE_XML);
            sf_output *out = sf_output_create(c);
            sf_render *r = sf_render_create(c);
            char path[4200];
            snprintf(path, sizeof path, "%s/w%d.xml", dir, k);
            ok = ok && load(tpl, TEMPLATE) == SF_OK &&
                 sf_source_set_option(src, "prefetch", k ? "on" : "off") == SF_OK &&
                 sf_source_open(src, path_db) == SF_OK && sf_source_prepare(src, sql) == SF_OK &&
                 sf_output_set_option(out, "writer", k ? modes[m][0] : "inline") == SF_OK &&
                 sf_output_set_option(out, "compress", modes[m][1]) == SF_OK &&
                 sf_output_set_option(out, "sync_step", "1M") == SF_OK &&
                 sf_output_open_file(out, path) == SF_OK &&
                 sf_render_run(r, tpl, src, out) == SF_OK && sf_output_commit(out) == SF_OK;
            if (!ok)
                fprintf(stderr, "writer render: %s | %s | %s\n", sf_render_errmsg(r),
                        sf_output_errmsg(out), sf_source_errmsg(src));
            doc[k] = slurp(path, &len[k]);
            unlink(path);
            sf_render_free(r);
            sf_output_free(out);
            sf_template_free(tpl);
            sf_source_free(src);
            ok = ok && sf_census_live_bytes(c) == 0;
            sf_census_free(c);
        }
        char nm[160];
        snprintf(nm, sizeof nm,
                 "writer thread + prefetch, compress %s: the same file as inline, census empty",
                 modes[m][1]);
        check(ok && doc[0] && doc[1] && len[0] == len[1] && len[0] > 1000 &&
                  !memcmp(doc[0], doc[1], len[0]),
              nm, "ok %d, %zu against %zu bytes", ok, len[1], len[0]);
        free(doc[0]);
        free(doc[1]);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: thread_test DIR\n");
        return 2;
    }
    dir = argv[1];
    /* SQLite's allocator into a census of the test's own, as the CLI does:
     * every render below then allocates SQLite's memory on the scan thread. */
    sqlite_census = sf_census_create();
    static sqlite3_mem_methods methods = {sq_malloc, sq_free,    sq_realloc,  sq_size,
                                          sq_roundup, sq_init, sq_shutdown, NULL};
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK) {
        printf("FAIL: setup: cannot route SQLite's allocator\n");
        return 1;
    }
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);

    test_census_threads();
    test_census_fail_limit();
    if (make_db() != 0) {
        printf("FAIL: setup: cannot make the test database\n");
        return 1;
    }
    test_sqlite_cache();
    test_prefetch_sqlite();
    test_prefetch_cancel();
    test_prefetch_free();
    test_prefetch_steady();
    test_prefetch_sqlite_census();
    test_prefetch_servers();
    test_hop();
    test_writer_render();
    unlink(path_db);
    sqlite3_shutdown();
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
