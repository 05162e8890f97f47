/* memplot.c: `sqlfeed mem-plot LOG -o OUT.svg`: RSS and census-tracked bytes
 * against rows, from a --mem-log file, as an SVG chart with labelled axes, a
 * legend and the flatness verdict. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "memlog.h"

/* Reads every line of `path` (any length: getline) into s. */
static int read_log(const char *path, memlog_series *s)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("mem-plot: cannot read %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    unsigned long lineno = 0;
    int rc = EXIT_OK;
    while (rc == EXIT_OK && (errno = 0, len = getline(&line, &size, f)) >= 0) {
        lineno++;
        memlog_sample x;
        if (memlog_parse_line(line, (size_t)len, &x) != 0) {
            cli_error("mem-plot: %s:%lu is not a --mem-log line", path, lineno);
            rc = EXIT_USAGE;
        } else if (s->n && x.rows < s->rows[s->n - 1]) {
            cli_error("mem-plot: %s:%lu: rows go back from %.0f to %.0f: the log holds more "
                      "than one run (give each run its own --mem-log file)",
                      path, lineno, s->rows[s->n - 1], x.rows);
            rc = EXIT_USAGE;
        } else if (memlog_series_add(s, &x) != 0) {
            cli_error("out of memory");
            rc = EXIT_FAILURE_OTHER;
        }
    }
    if (rc == EXIT_OK && errno == ENOMEM) { /* getline could not grow the line */
        cli_error("out of memory");
        rc = EXIT_FAILURE_OTHER;
    } else if (rc == EXIT_OK && ferror(f)) {
        cli_error("mem-plot: cannot read %s: %s", path, strerror(errno));
        rc = EXIT_USAGE;
    }
    free(line);
    fclose(f);
    if (rc == EXIT_OK && s->n < 2) {
        cli_error("mem-plot: %s has %zu samples; a chart needs 2", path, s->n);
        rc = EXIT_USAGE;
    }
    return rc;
}

int cmd_mem_plot(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'h':
            puts("usage: sqlfeed mem-plot LOG -o OUT.svg\n\n"
                 "Draws RSS and census-tracked bytes against rows from a render's --mem-log\n"
                 "file, as an SVG chart with the flatness verdict in its title ('-': stdout).");
            return EXIT_OK;
        case ':':
            return cli_usage("mem-plot", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_bad_option("mem-plot", argv[optind - 1]);
        }
    }
    if (optind != argc - 1 || !out)
        return cli_usage("mem-plot", "%s", optind >= argc ? "missing the mem-log file"
                                           : optind < argc - 1 ? "give one mem-log file"
                                                               : "missing -o");
    /* The chart must not overwrite the log it is drawn from. */
    const cli_file in = {"LOG", argv[optind]}, outf = {"-o", out};
    if (cli_check_files("mem-plot", &in, 1, &outf, 1, NULL))
        return EXIT_USAGE;
    memlog_series s = {0};
    int rc = read_log(argv[optind], &s);
    if (rc == EXIT_OK) {
        sf_flatness fr, ft;
        sf_flatness_fit(s.rows, s.rss, s.n, &fr);
        sf_flatness_fit(s.rows, s.tracked, s.n, &ft);
        char title[512];
        const char *base = strrchr(argv[optind], '/');
        snprintf(title, sizeof title, "%s: memory %s (RSS %+.1f B/row, tracked %+.1f B/row)",
                 base ? base + 1 : argv[optind],
                 sf_flat_verdict_name(fr.verdict == SF_GROWS || ft.verdict == SF_GROWS ? SF_GROWS
                                                                                        : fr.verdict),
                 fr.slope, ft.slope);
        /* Built in memory, published like every output: atomically. */
        char *svg = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&svg, &len);
        if (!f) {
            cli_error("out of memory");
            rc = EXIT_FAILURE_OTHER;
        } else {
            memlog_chart(f, &s, title);
            if (fclose(f) != 0) {
                cli_error("out of memory");
                rc = EXIT_FAILURE_OTHER;
            }
        }
        sf_output *o = rc == EXIT_OK ? sf_output_create(NULL) : NULL;
        if (rc == EXIT_OK) {
            sf_status st = !o ? SF_ERR_NOMEM
                           : strcmp(out, "-") == 0 ? sf_output_open_fd(o, STDOUT_FILENO, "stdout")
                                                   : sf_output_open_file(o, out);
            if (st == SF_OK)
                st = sf_output_write(o, svg, len);
            if (st == SF_OK)
                st = sf_output_commit(o);
            if (st != SF_OK) {
                cli_error("mem-plot: %s", o ? sf_output_errmsg(o) : "out of memory");
                rc = cli_exit_for(st);
            }
        }
        sf_output_free(o);
        free(svg);
    }
    memlog_series_free(&s);
    return rc;
}
