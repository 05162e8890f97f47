/* oom_test.c: allocation failure at every point of the library, as expat's
 * allocation tests do: sf_census_fail_after(census, n) lets the first n
 * allocations succeed and fails every later one; the test runs one whole
 * render (three template loads: file with a partial, string with a partial
 * callback, built-in; source open and prepare; a parameter; the row count;
 * the output; the render; the commit) for n = 0, 1, 2, ... until it
 * succeeds. SQLite's allocator is routed into the same census, as the
 * command routes it, so its allocations fail too. For each n it asserts:
 * the call that failed returned SF_ERR_NOMEM (a create returned NULL) with
 * a message, nothing was published (the previous file byte-identical), no
 * temporary file is left, and once every handle is freed (and SQLite shut
 * down) the census holds nothing: no leak, in any build. Under ASan,
 * LeakSanitizer checks the same of the whole process.
 *   oom_test SCRATCH_DIR
 * Prints "PASS: name" / "FAIL: name: detail"; exits 1 if anything failed. */
#include <dirent.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlfeed.h"

#include "check.h"

/* ---- SQLite's allocator into the census (as cli/sqlite_mem.c) ----------- */

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

static int route_sqlite(sf_census *c)
{
    static sqlite3_mem_methods methods = {sq_malloc, sq_free,  sq_realloc, sq_size,
                                          sq_roundup, sq_init, sq_shutdown, NULL};
    sqlite_census = c;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK)
        return -1;
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return 0;
}

/* ---- files ------------------------------------------------------------- */

static char dir[2048], feed[2200], tplpath[2200], dbpath[2200];
static const char previous[] = "the previous feed\n<keep/>\n";

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The whole file, malloc'd (NULL if unreadable). */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* Names in dir holding ".sqlfeed-": temporary files left behind. */
static int temp_files_left(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".sqlfeed-") != NULL;
    closedir(d);
    return n;
}

static int make_db(void)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(dbpath, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db,
                          "CREATE TABLE jobs (id INTEGER PRIMARY KEY, site TEXT, title TEXT, "
                          "salary REAL, body TEXT);"
                          "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                          "LIMIT 40) INSERT INTO jobs SELECT x, 'a', 'Job <' || x || '> & co', "
                          "CASE WHEN x % 3 THEN x * 1000.5 END, "
                          "printf('line ]]> %d -- \"q\" ''a''', x) FROM c",
                          NULL, NULL, NULL);
    sqlite3_close(db);
    sqlite3_shutdown(); /* so that route_sqlite() can configure it */
    return rc == SQLITE_OK ? 0 : -1;
}

static int partial_fn(void *ud, const char *name, const char **text, size_t *len)
{
    (void)ud;
    if (strcmp(name, "item") != 0)
        return 0;
    *text = "<i n=\"{{id}}\">{{title}}</i>";
    *len = strlen(*text);
    return 1;
}

/* ---- one run ------------------------------------------------------------ */

typedef struct outcome {
    int ok;             /* everything succeeded and was published */
    const char *where;  /* the call that failed */
    sf_status status;   /* what it returned (SF_ERR_NOMEM for a NULL create) */
    char msg[1100];     /* its message ("" for a NULL create) */
    unsigned long long left; /* census bytes live after everything was freed */
} outcome;

#define FAIL_AT(call, st_, handle_msg)                                        \
    do {                                                                      \
        o->where = (call);                                                    \
        o->status = (st_);                                                    \
        snprintf(o->msg, sizeof o->msg, "%s", (handle_msg));                  \
        goto out;                                                             \
    } while (0)

#define TRY(call, expr, errmsg_fn, handle)                                    \
    do {                                                                      \
        sf_status st_ = (expr);                                               \
        if (st_ != SF_OK)                                                     \
            FAIL_AT(call, st_, errmsg_fn(handle));                            \
    } while (0)

#define CREATE(var, call, expr)                                               \
    do {                                                                      \
        if (!((var) = (expr)))                                                \
            FAIL_AT(call, SF_ERR_NOMEM, "(no handle)");                       \
    } while (0)

/* Runs everything with the n-th allocation failing (SF_CENSUS_FAIL_NEVER:
 * none). */
static void run_once(uint64_t n, outcome *o)
{
    memset(o, 0, sizeof *o);
    sf_census *c = sf_census_create();
    sf_template *tf = NULL, *ts = NULL, *tb = NULL;
    sf_source *src = NULL;
    sf_output *out = NULL;
    sf_render *r = NULL;
    uint64_t rows = 0;
    if (!c || route_sqlite(c) != 0) {
        o->where = "setting up the census";
        o->status = SF_ERR_STATE;
        sf_census_free(c);
        return;
    }
    sf_census_fail_after(c, n);
    CREATE(tb, "sf_template_create", sf_template_create(c, SF_TEMPLATE_XML));
    TRY("sf_template_load_builtin", sf_template_load_builtin(tb, "indeed"), sf_template_errmsg, tb);
    CREATE(ts, "sf_template_create", sf_template_create(c, SF_TEMPLATE_XML));
    static const char str[] = "<r>{{#rows}}{{>item}}{{/rows}}</r>";
    TRY("sf_template_load_string",
        sf_template_load_string(ts, "str", str, sizeof str - 1, partial_fn, NULL),
        sf_template_errmsg, ts);
    CREATE(tf, "sf_template_create", sf_template_create(c, SF_TEMPLATE_XML));
    TRY("sf_template_load_file", sf_template_load_file(tf, tplpath), sf_template_errmsg, tf);
    CREATE(src, "sf_source_create", sf_source_create(c));
    TRY("sf_source_open", sf_source_open(src, dbpath), sf_source_errmsg, src);
    TRY("sf_source_prepare",
        sf_source_prepare(src, "SELECT id, title, salary, body FROM jobs WHERE site <> :site "
                               "ORDER BY id;"),
        sf_source_errmsg, src);
    CREATE(r, "sf_render_create", sf_render_create(c));
    sf_render_set_time(r, 1700000000);
    TRY("sf_render_set_param", sf_render_set_param(r, "site", "b"), sf_render_errmsg, r);
    TRY("sf_render_count", sf_render_count(r, src, &rows), sf_render_errmsg, r);
    CREATE(out, "sf_output_create", sf_output_create(c));
    TRY("sf_output_open_file", sf_output_open_file(out, feed), sf_output_errmsg, out);
    TRY("sf_render_run", sf_render_run(r, tf, src, out), sf_render_errmsg, r);
    TRY("sf_output_commit", sf_output_commit(out), sf_output_errmsg, out);
    o->ok = rows == 40 && sf_output_published(out);
    if (!o->ok)
        FAIL_AT("the result", SF_ERR_STATE, "counted rows or published flag wrong");
out:
    sf_output_abort(out);
    sf_output_free(out);
    sf_render_free(r);
    sf_source_free(src);
    sf_template_free(tf);
    sf_template_free(ts);
    sf_template_free(tb);
    sqlite3_shutdown(); /* SQLite gives back what it holds */
    o->left = (unsigned long long)sf_census_live_bytes(c);
    sf_census_free(c);
}

/* The hook's own contract: exactly n succeed, reallocations count, it stays
 * failing, SF_CENSUS_FAIL_NEVER disarms. */
static void test_hook(void)
{
    sf_census *c = sf_census_create();
    sf_census_fail_after(c, 2);
    void *a = sf_census_malloc(c, SF_MEM_OTHER, 10);
    void *b = sf_census_realloc(c, SF_MEM_OTHER, a, 20);
    void *d = sf_census_malloc(c, SF_MEM_OTHER, 10);
    void *e = sf_census_realloc(c, SF_MEM_OTHER, b, 40);
    void *f = sf_census_malloc(c, SF_MEM_OTHER, 1);
    check(a && b && !d && !e && !f && sf_census_live_bytes(c) == 20,
          "oom hook: the first 2 allocations succeed (a realloc is one), every later one fails",
          "%p %p %p %p %p, %llu live", a, b, d, e, f,
          (unsigned long long)sf_census_live_bytes(c));
    sf_census_fail_after(c, SF_CENSUS_FAIL_NEVER);
    void *g = sf_census_malloc(c, SF_MEM_OTHER, 1);
    check(g != NULL, "oom hook: SF_CENSUS_FAIL_NEVER disarms it", "%p", g);
    sf_census_fail_after(c, 0);
    sf_template *t = sf_template_create(c, SF_TEMPLATE_XML);
    check(t == NULL, "oom hook: n = 0 fails the first allocation (a handle)", "%p", (void *)t);
    sf_census_dealloc(c, b);
    sf_census_dealloc(c, g);
    check(sf_census_live_bytes(c) == 0, "oom hook: failed allocations count nothing", "%llu",
          (unsigned long long)sf_census_live_bytes(c));
    sf_census_free(c);
    sf_census_fail_after(NULL, 0); /* accepts NULL */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: oom_test SCRATCH_DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* every line out before a crash */
    snprintf(dir, sizeof dir, "%s", argv[1]);
    snprintf(feed, sizeof feed, "%s/feed.xml", dir);
    snprintf(tplpath, sizeof tplpath, "%s/feed.mustache", dir);
    snprintf(dbpath, sizeof dbpath, "%s/oom.db", dir);
    char item[2200];
    snprintf(item, sizeof item, "%s/item.mustache", dir);
    if (make_db() != 0 ||
        write_file(tplpath, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                            "<feed site=\"{{site}}\" at=\"{{generated_at}}\">\n"
                            "{{#rows}}{{>item}}{{/rows}}{{^rows}}<!-- none -->{{/rows}}</feed>\n") != 0 ||
        write_file(item, "<job id=\"{{id}}\"><t>{{title}}</t>{{#salary}}<s>{{salary}}</s>"
                         "{{/salary}}<b><![CDATA[{{body}}]]></b><!-- {{title}} --></job>\n") != 0) {
        fprintf(stderr, "oom_test: cannot set up %s\n", dir);
        return 2;
    }

    test_hook();

    /* The reference: the same run with nothing failing. */
    outcome o;
    run_once(SF_CENSUS_FAIL_NEVER, &o);
    size_t reflen = 0;
    char *ref = read_all(feed, &reflen);
    check(o.ok && ref && strstr(ref, "</feed>") && o.left == 0, "oom lib: the run succeeds unhindered",
          "%s: %s (%s), %llu bytes left", o.where ? o.where : "-", sf_strerror(o.status), o.msg,
          o.left);
    if (!o.ok || !ref)
        return 1;

    /* The loop. */
    uint64_t n, max = 100000;
    unsigned bad = 0, failed_runs = 0;
    for (n = 0; n < max; n++) {
        if (write_file(feed, previous) != 0) {
            fprintf(stderr, "oom_test: cannot write %s\n", feed);
            return 2;
        }
        run_once(n, &o);
        size_t len = 0;
        char *now = read_all(feed, &len);
        if (o.ok) {
            check(now && len == reflen && memcmp(now, ref, len) == 0 && temp_files_left() == 0 &&
                      o.left == 0,
                  "oom lib: the first run that succeeds publishes the same feed",
                  "n=%llu, %llu bytes left", (unsigned long long)n, o.left);
            free(now);
            break;
        }
        failed_runs++;
        char why[1400] = "";
        if (o.status != SF_ERR_NOMEM)
            snprintf(why, sizeof why, "%s returned %s: %s", o.where, sf_strerror(o.status), o.msg);
        else if (!o.msg[0])
            snprintf(why, sizeof why, "%s: SF_ERR_NOMEM with an empty message", o.where);
        else if (!now || len != sizeof previous - 1 || memcmp(now, previous, len) != 0)
            snprintf(why, sizeof why, "%s failed, but the previous feed changed", o.where);
        else if (temp_files_left() != 0)
            snprintf(why, sizeof why, "%s failed, and a temporary file is left", o.where);
        else if (o.left != 0)
            snprintf(why, sizeof why, "%s failed: %llu census bytes leaked", o.where, o.left);
        free(now);
        if (why[0] && ++bad <= 25) {
            char name[80];
            snprintf(name, sizeof name, "oom lib: allocation %llu fails", (unsigned long long)n);
            check(0, name, "%s", why);
        }
    }
    check(n < max, "oom lib: the run succeeds once enough allocations do", "still failing at %llu",
          (unsigned long long)n);
    check(failed_runs >= 100, "oom lib: the hook fails allocations", "only %u runs failed",
          failed_runs);
    char name[200];
    snprintf(name, sizeof name,
             "oom lib: all %u runs with an allocation failing return SF_ERR_NOMEM with a message, "
             "publish nothing, leak nothing",
             failed_runs);
    check(bad == 0, name, "%u broke a rule (first ones above)", bad);
    free(ref);
    printf("oom lib: %d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
