/* render_feed.c: render a feed through libsqlfeed, the way an embedding
 * program would: open a source, compile a template, render to an output,
 * publish it, and print the census of what the library allocated.
 *
 *   render_feed DB OUT          renders the built-in simplyhired template
 *
 * Build: cc render_feed.c $(pkg-config --cflags --libs sqlfeed)   (the shared library)
 *    or: cc render_feed.c $(pkg-config --cflags sqlfeed) -Wl,-Bstatic -lsqlfeed -Wl,-Bdynamic \
 *        $(pkg-config --static --libs sqlfeed | sed s/-lsqlfeed//)   (static) */
#include <stdio.h>

#include "sqlfeed.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DB OUT\n", argv[0]);
        return 2;
    }
    sf_census *census = sf_census_create();
    sf_source *src = sf_source_create(census);
    sf_template *tpl = sf_template_create(census, SF_TEMPLATE_XML);
    sf_output *out = sf_output_create(census);
    sf_render *r = sf_render_create(census);
    int rc = 1;
    sf_status st;

    if (!census || !src || !tpl || !out || !r) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    if ((st = sf_template_load_builtin(tpl, "simplyhired")) != SF_OK) {
        fprintf(stderr, "template: %s\n", sf_template_errmsg(tpl));
        goto done;
    }
    if ((st = sf_source_open(src, argv[1])) != SF_OK ||
        (st = sf_source_prepare(src, sf_builtin_template_query("simplyhired"))) != SF_OK) {
        fprintf(stderr, "source: %s\n", sf_source_errmsg(src));
        goto done;
    }
    if ((st = sf_output_open_file(out, argv[2])) != SF_OK) {
        fprintf(stderr, "output: %s\n", sf_output_errmsg(out));
        goto done;
    }
    if ((st = sf_render_run(r, tpl, src, out)) != SF_OK) {
        fprintf(stderr, "render: %s\n", sf_render_errmsg(r));
        sf_output_abort(out); /* the previous file at OUT stays */
        goto done;
    }
    if ((st = sf_output_commit(out)) != SF_OK) {
        fprintf(stderr, "publish: %s\n", sf_output_errmsg(out));
        goto done;
    }
    printf("%llu rows, %llu bytes -> %s\n", (unsigned long long)sf_render_rows(r),
           (unsigned long long)sf_output_bytes(out), argv[2]);
    printf("census (live while the handles exist):\n");
    for (int t = 0; t < SF_MEM_TYPE_COUNT; t++) {
        sf_mem_stat s;
        if (sf_census_stat(census, (sf_mem_type)t, &s) == SF_OK && s.allocs)
            printf("  %-14s %6llu live %10llu bytes (peak %llu)\n", s.name,
                   (unsigned long long)s.count, (unsigned long long)s.bytes,
                   (unsigned long long)s.peak_bytes);
    }
    printf("  %-14s %6s      %10llu bytes (peak %llu)\n", "total", "",
           (unsigned long long)sf_census_live_bytes(census),
           (unsigned long long)sf_census_peak_bytes(census));
    rc = 0;
done:
    sf_render_free(r);
    sf_output_free(out);
    sf_template_free(tpl);
    sf_source_free(src);
    sf_census_free(census);
    return rc;
}
