/* commit_test.c: how a render reports what its output failed with, and an
 * allocation failure inside a compressor with worker threads.
 *
 *   commit_test DIR
 *
 * 1. A cancel that the output notices (the writer thread waiting for room
 *    behind a slow compressor) is SF_ERR_CANCELLED, as a cancel between
 *    rows is, never SF_ERR_OUTPUT; the message names the row.
 * 2. zstd with worker threads under an allocation failure at every point
 *    (sf_census_fail_after n = 0, 1, ...): the process never crashes
 *    (libzstd 1.5.4 writes through a NULL from its allocator in its
 *    multi-threaded path, so its memory is counted but never refused), each
 *    run is SF_OK or SF_ERR_NOMEM, leaves no temporary file and frees
 *    everything.
 * 3. sf_render_cancel() during sf_render_commit() (before the first rename)
 *    stops it: nothing published, SF_ERR_CANCELLED. */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "sqlfeed.h"

static const char *dir;

/* Rows of incompressible text, so zstd at level 19 is slow. */
#define QUERY(n)                                                                                \
    "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " #n ") "         \
    "SELECT i AS id, hex(randomblob(300)) AS body FROM k"

static const char tpl_text[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<jobs>\n"
                               "{{#rows}}<job id=\"{{id}}\">{{body}}</job>\n{{/rows}}</jobs>\n";

static char db_path[4096];

static void make_db(void)
{
    snprintf(db_path, sizeof db_path, "%s/empty.db", dir);
    FILE *f = fopen(db_path, "w"); /* an empty file is an empty SQLite database */
    if (f)
        fclose(f);
}

/* Files in DIR/sub whose names contain "sqlfeed-" (temporary files). */
static int temps_in(const char *sub)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    DIR *d = opendir(p);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".sqlfeed-") != NULL;
    closedir(d);
    return n;
}

typedef struct job {
    sf_census *c;
    sf_source *src;
    sf_template *tpl;
    sf_output *out;
    sf_render *r;
} job;

static sf_status job_open(job *j, const char *sql, const char *path, const char *const *opts)
{
    memset(j, 0, sizeof *j);
    j->c = sf_census_create();
    j->src = sf_source_create(j->c);
    j->tpl = sf_template_create(j->c, SF_TEMPLATE_XML);
    j->out = sf_output_create(j->c);
    j->r = sf_render_create(j->c);
    if (!j->c || !j->src || !j->tpl || !j->out || !j->r)
        return SF_ERR_NOMEM;
    sf_status st = sf_template_load_string(j->tpl, "t", tpl_text, sizeof tpl_text - 1, NULL, NULL);
    for (; st == SF_OK && opts && opts[0]; opts += 2)
        st = sf_output_set_option(j->out, opts[0], opts[1]);
    if (st == SF_OK)
        st = sf_source_open(j->src, db_path);
    if (st == SF_OK)
        st = sf_source_prepare(j->src, sql);
    if (st == SF_OK)
        st = sf_output_open_file(j->out, path);
    return st;
}

static uint64_t job_free(job *j)
{
    sf_render_free(j->r);
    sf_output_free(j->out);
    sf_template_free(j->tpl);
    sf_source_free(j->src);
    uint64_t live = sf_census_live_bytes(j->c);
    sf_census_free(j->c);
    return live;
}

typedef struct canceller {
    sf_render *r;
    uint64_t after;
    atomic_int quit;
} canceller;

static void *cancel_main(void *a)
{
    canceller *k = a;
    while (!atomic_load(&k->quit) && sf_render_rows(k->r) < k->after)
        usleep(200);
    if (!atomic_load(&k->quit))
        sf_render_cancel(k->r);
    return NULL;
}

static void test_cancel_status(void)
{
    char sub[4096], path[4200];
    snprintf(sub, sizeof sub, "%s/cancel", dir);
    mkdir(sub, 0755);
    snprintf(path, sizeof path, "%s/slow.xml.zst", sub);
    const char *opts[] = {"level", "19", "writer", "thread", NULL};
    for (int round = 0; round < 3; round++) {
        job j;
        sf_status st = job_open(&j, QUERY(200000), path, opts);
        check(st == SF_OK, "cancel: open", "%d", (int)st);
        canceller k = {.r = j.r, .after = 3000};
        pthread_t th;
        pthread_create(&th, NULL, cancel_main, &k);
        st = sf_render_run(j.r, j.tpl, j.src, j.out);
        atomic_store(&k.quit, 1);
        pthread_join(th, NULL);
        char name[128];
        snprintf(name, sizeof name,
                 "cancel behind a slow writer thread is SF_ERR_CANCELLED naming the row (round %d)",
                 round + 1);
        /* The cancel lands behind a row ("cancelled after row N") or, when
         * the scan is stepping the database then, interrupts it ("cancelled
         * at row N: sqlite: interrupted"): both name the row. */
        const char *m = sf_render_errmsg(j.r);
        check(st == SF_ERR_CANCELLED && !strncmp(m, "cancelled ", 10) &&
                  (strstr(m, "after row ") || strstr(m, "at row ")),
              name,
              "status %d: %s", (int)st, sf_render_errmsg(j.r));
        sf_output_abort(j.out);
        check(job_free(&j) == 0 && temps_in("cancel") == 0 && access(path, F_OK) != 0,
              "cancel: nothing published, nothing left, census back to zero", "temps %d",
              temps_in("cancel"));
    }
}

/* An allocation failing at each point of a render into `name` (in oom/)
 * with 2 compressor threads, over `sql`. */
static void workers_oom(const char *name, const char *sql, const char *what_test)
{
    char sub[4096], path[4200];
    snprintf(sub, sizeof sub, "%s/oom", dir);
    mkdir(sub, 0755);
    snprintf(path, sizeof path, "%s/%s", sub, name);
    const char *opts[] = {"workers", "2", NULL};
    int bad = 0, nomem = 0, ok_at = -1;
    char what[512] = "";
    for (uint64_t n = 0; n < 400 && ok_at < 0; n++) {
        unlink(path);
        job j;
        sf_status st = job_open(&j, sql, path, opts);
        if (st == SF_OK) {
            sf_census_fail_after(j.c, n);
            st = sf_render_run(j.r, j.tpl, j.src, j.out);
            if (st == SF_OK)
                st = sf_output_commit(j.out);
            else
                sf_output_abort(j.out);
            sf_census_fail_after(j.c, SF_CENSUS_FAIL_NEVER);
        }
        if (st == SF_OK)
            ok_at = (int)n;
        else if (st == SF_ERR_NOMEM)
            nomem++;
        else if (!bad++)
            snprintf(what, sizeof what, "n=%llu: status %d: %s", (unsigned long long)n, (int)st,
                     sf_render_errmsg(j.r));
        uint64_t live = job_free(&j);
        if ((live || temps_in("oom")) && !bad++)
            snprintf(what, sizeof what, "n=%llu: %llu bytes live, %d temporary files",
                     (unsigned long long)n, (unsigned long long)live, temps_in("oom"));
    }
    check(bad == 0 && ok_at > 0 && nomem > 0, what_test,
          "%s (success first at n=%d, %d out-of-memory runs)", what, ok_at, nomem);
}

static void test_workers_oom(void)
{
    workers_oom("o.xml.zst", QUERY(400),
                "zstd with 2 workers, an allocation failing at each point: SF_ERR_NOMEM or "
                "success, never a crash, nothing leaked or left");
    /* 1.2 MB of feed: five blocks, so the workers run. */
    workers_oom("o.xml.gz", QUERY(2000),
                "gzip on 2 workers, an allocation failing at each point: SF_ERR_NOMEM or "
                "success, never a crash, nothing leaked or left");
}

static void test_cancel_in_commit(void)
{
    char sub[4096], path[4200];
    snprintf(sub, sizeof sub, "%s/commit", dir);
    mkdir(sub, 0755);
    snprintf(path, sizeof path, "%s/c.xml.zst", sub);
    const char *opts[] = {"level", "19", "writer", "thread", NULL};
    job j;
    sf_status st = job_open(&j, QUERY(3000), path, opts);
    if (st == SF_OK)
        st = sf_render_add_output(j.r, j.tpl, j.out);
    if (st == SF_OK)
        st = sf_render_execute(j.r, j.src);
    check(st == SF_OK, "cancel in commit: execute", "%d %s", (int)st, sf_render_errmsg(j.r));
    /* The writer thread still has level-19 work queued: a cancel now is
     * seen by the commit's wait for it, before any rename. */
    sf_render_cancel(j.r);
    st = sf_render_commit(j.r);
    check(st == SF_ERR_CANCELLED && access(path, F_OK) != 0,
          "sf_render_cancel() before the commit's first rename: SF_ERR_CANCELLED, nothing "
          "published",
          "status %d: %s", (int)st, sf_render_errmsg(j.r));
    check(job_free(&j) == 0 && temps_in("commit") == 0,
          "cancel in commit: no temporary file, census back to zero", "temps %d",
          temps_in("commit"));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: commit_test DIR\n");
        return 2;
    }
    dir = argv[1];
    make_db();
    test_cancel_status();
    test_workers_oom();
    test_cancel_in_commit();
    printf("commit: %d passed, %d failed\n", passes, failures);
    return failures != 0;
}
