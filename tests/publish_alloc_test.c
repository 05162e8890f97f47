/* publish_alloc_test.c DB DIR: an allocation failure at every point of a
 * render through the library, as expat's allocation tests do. Linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc, so every allocation the
 * library makes (the census is its one caller of the C allocator) can be made
 * to fail; SQLite, a shared library, is left alone. For N = 0, 1, 2, ... the
 * Nth allocation fails, until a whole run succeeds; for each N:
 *   - no crash (and, under ASan/LeakSanitizer, no leak, no bad access);
 *   - the output and render calls that failed said SF_ERR_NOMEM, with a message;
 *   - nothing published: the previous feed is byte-identical;
 *   - no temporary file is left in the directory.
 * Every feature the library offers a run is used: a template from a string
 * with a partial, a parameter bound in the query and read by the template,
 * a shared census, a file output published atomically.
 * Prints PASS/FAIL lines; exit 1 on failure. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlfeed.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static long fail_at = -1; /* the allocation to fail, counted from 0; -1: none */
static long seen;         /* allocations since arming */

static int fail_now(void) { return fail_at >= 0 && seen++ == fail_at; }
void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }

static const char *const TPL = "<r p=\"{{p}}\">{{#rows}}{{>item}}{{/rows}}</r>\n";
static const char *const ITEM = "<v id=\"{{id}}\">{{title}}</v>";

static int partial(void *ud, const char *name, const char **text, size_t *len)
{
    (void)ud;
    if (strcmp(name, "item") != 0)
        return 0;
    *text = ITEM;
    *len = strlen(ITEM);
    return 1;
}

static int failures;
static void fail(long n, const char *what)
{
    if (++failures <= 20)
        printf("FAIL: allocation %ld failed: %s\n", n, what);
}

/* Whether DIR holds a temporary file. */
static int temp_left(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)))
        found |= strstr(e->d_name, ".sqlfeed-") != NULL;
    if (d)
        closedir(d);
    return found;
}

static int is_previous(const char *path)
{
    char buf[64] = "";
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return strcmp(buf, "previous feed\n") == 0;
}

/* Which call of the run failed, and how. */
typedef struct outcome {
    const char *step;
    sf_status st;
    const char *msg;
    int must_be_nomem; /* a call of the output or render layers */
} outcome;

static char msgbuf[1100];

static outcome run_once(const char *db, const char *target)
{
    outcome o = {"", SF_OK, "", 0};
    sf_census *c = sf_census_create();
    sf_template *t = c ? sf_template_create(c, SF_TEMPLATE_XML) : NULL;
    sf_source *s = c ? sf_source_create(c) : NULL;
    sf_output *out = c ? sf_output_create(c) : NULL;
    sf_render *r = c ? sf_render_create(c) : NULL;
#define STEP(name, nomem, call, errmsg)                                                    \
    if (o.st == SF_OK && (o.st = (call)) != SF_OK) {                                       \
        o.step = name;                                                                     \
        o.must_be_nomem = nomem;                                                           \
        snprintf(msgbuf, sizeof msgbuf, "%s", errmsg);                                     \
        o.msg = msgbuf;                                                                    \
    }
    if (!c || !t || !s || !out || !r) {
        o.step = "create";
        o.st = SF_ERR_NOMEM; /* NULL from a create is its out-of-memory answer */
        o.msg = "NULL handle";
    }
    STEP("sf_template_load_string", 0,
         sf_template_load_string(t, "alloc.mustache", TPL, strlen(TPL), partial, NULL),
         sf_template_errmsg(t));
    STEP("sf_source_open", 0, sf_source_open(s, db), sf_source_errmsg(s));
    STEP("sf_source_prepare", 0,
         sf_source_prepare(s, "SELECT id, title FROM jobs WHERE site <> :p ORDER BY id LIMIT 500"),
         sf_source_errmsg(s));
    STEP("sf_render_set_param", 1, sf_render_set_param(r, "p", "nosuchsite & <co>"),
         sf_render_errmsg(r));
    STEP("sf_output_open_file", 1, sf_output_open_file(out, target), sf_output_errmsg(out));
    STEP("sf_render_run", 0, sf_render_run(r, t, s, out), sf_render_errmsg(r));
    STEP("sf_output_commit", 1, sf_output_commit(out), sf_output_errmsg(out));
    if (o.st != SF_OK)
        sf_output_abort(out);
    sf_render_free(r);
    sf_output_free(out);
    sf_source_free(s);
    sf_template_free(t);
    sf_census_free(c);
    return o;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: publish_alloc_test DB DIR\n");
        return 2;
    }
    char target[4096];
    snprintf(target, sizeof target, "%s/feed.xml", argv[2]);
    long n, total = -1, nomem = 0, other = 0;
    for (n = 0; n < 100000; n++) {
        FILE *f = fopen(target, "wb");
        if (!f || fputs("previous feed\n", f) < 0 || fclose(f) != 0) {
            printf("FAIL: allocation failure at every point: cannot write %s\n", target);
            return 1;
        }
        seen = 0;
        fail_at = n;
        outcome o = run_once(argv[1], target);
        fail_at = -1;
        if (o.st == SF_OK) {
            if (seen <= n) { /* no allocation failed: the run is complete */
                total = seen;
                break;
            }
            /* The failure was absorbed (a best-effort allocation): the run
             * succeeded, so the feed must be the new one. */
            if (is_previous(target))
                fail(n, "the run succeeded but the feed was not published");
            continue;
        }
        char what[1400];
        if (o.must_be_nomem && o.st != SF_ERR_NOMEM) {
            snprintf(what, sizeof what, "%s returned '%s', not out of memory: %s", o.step,
                     sf_strerror(o.st), o.msg);
            fail(n, what);
        }
        if (!*o.msg) {
            snprintf(what, sizeof what, "%s failed (%s) without a message", o.step,
                     sf_strerror(o.st));
            fail(n, what);
        }
        if (!is_previous(target)) {
            snprintf(what, sizeof what, "%s failed and the previous feed changed", o.step);
            fail(n, what);
        }
        if (temp_left(argv[2])) {
            snprintf(what, sizeof what, "%s failed and left a temporary file", o.step);
            fail(n, what);
        }
        if (o.st == SF_ERR_NOMEM)
            nomem++;
        else {
            other++;
            printf("NOTE: allocation %ld: %s returned '%s' (%s)\n", n, o.step, sf_strerror(o.st),
                   o.msg);
        }
    }
    if (total < 0) {
        printf("FAIL: allocation failure at every point: no run succeeded\n");
        return 1;
    }
    if (failures)
        return 1;
    printf("PASS: an allocation failure at each of the %ld allocations of a render (template "
           "with a partial, parameter, file output): no crash, nothing published, no temporary "
           "file (%ld out of memory, %ld other statuses from other layers)\n",
           total, nomem, other);
    return 0;
}
