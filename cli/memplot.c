/* memplot.c: `sqlfeed mem-plot LOG -o OUT.svg`: RSS and census-tracked bytes
 * against rows, from a --mem-log file, as an SVG chart with labelled axes, a
 * legend and the flatness verdict. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct series {
    double *rows, *rss, *tracked;
    size_t n, cap;
} series;

static int field(const char *line, const char *key, double *out)
{
    const char *p = strstr(line, key);
    if (!p)
        return -1;
    char *end;
    *out = strtod(p + strlen(key), &end);
    return end == p + strlen(key) ? -1 : 0;
}

static int read_log(const char *path, series *s)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("mem-plot: cannot read %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    char line[4096];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        double r, rss, tr;
        if (field(line, "\"rows\":", &r) || field(line, "\"rss\":", &rss) ||
            field(line, "\"tracked\":", &tr) || !isfinite(r) || !isfinite(rss) ||
            !isfinite(tr) || r < 0 || rss < 0 || tr < 0 || r > 1e15 || rss > 1e15 || tr > 1e15) {
            cli_error("mem-plot: %s:%u is not a --mem-log line", path, lineno);
            fclose(f);
            return EXIT_USAGE;
        }
        if (s->n && r < s->rows[s->n - 1]) {
            cli_error("mem-plot: %s:%u: rows go back from %.0f to %.0f: the log holds more than "
                      "one run (give each run its own --mem-log file)",
                      path, lineno, s->rows[s->n - 1], r);
            fclose(f);
            return EXIT_USAGE;
        }
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 256;
            double *a = realloc(s->rows, cap * sizeof *a), *b = a ? realloc(s->rss, cap * sizeof *b) : NULL;
            if (a)
                s->rows = a;
            if (b)
                s->rss = b;
            double *c = b ? realloc(s->tracked, cap * sizeof *c) : NULL;
            if (!c) {
                cli_error("out of memory");
                fclose(f);
                return EXIT_FAILURE_OTHER;
            }
            s->tracked = c;
            s->cap = cap;
        }
        s->rows[s->n] = r;
        s->rss[s->n] = rss;
        s->tracked[s->n] = tr;
        s->n++;
    }
    fclose(f);
    if (s->n < 2) {
        cli_error("mem-plot: %s has %zu samples; a chart needs 2", path, s->n);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* A round step near range/5: 1, 2 or 5 times a power of ten. */
static double nice_step(double range)
{
    double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f);
    }
}

static void chart(FILE *f, const series *s, const char *title)
{
    const double W = 820, H = 460, L = 80, R = 30, T = 50, B = 60;
    double xmax = s->rows[s->n - 1] > 0 ? s->rows[s->n - 1] : 1, ymax = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->rss[i] > ymax) ymax = s->rss[i];
        if (s->tracked[i] > ymax) ymax = s->tracked[i];
    }
    ymax = ymax / 1048576.0 * 1.15;
    if (ymax <= 0) ymax = 1;
    double xs = nice_step(xmax), ys = nice_step(ymax);
    ymax = ceil(ymax / ys) * ys;
    double pw = W - L - R, ph = H - T - B;
#define PX(x) (L + (x) / xmax * pw)
#define PY(y) (T + ph - (y) / ymax * ph)
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<title>", W, H, W, H);
    xml_text(f, title);
    fprintf(f, "</title>\n<text x=\"%.0f\" y=\"24\" font-size=\"15\">", L);
    xml_text(f, title);
    fputs("</text>\n<g stroke=\"#ddd\">\n", f);
    for (double x = 0; x <= xmax * 1.0001; x += xs)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(x), T, PX(x), T + ph);
    for (double y = 0; y <= ymax * 1.0001; y += ys)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", L, PY(y), L + pw, PY(y));
    fputs("</g>\n<g text-anchor=\"middle\">\n", f);
    for (double x = 0; x <= xmax * 1.0001; x += xs)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%.0f</text>\n", PX(x), T + ph + 18, x);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">rows done</text>\n</g>\n<g text-anchor=\"end\">\n",
            L + pw / 2, H - 14);
    for (double y = 0; y <= ymax * 1.0001; y += ys)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%g</text>\n", L - 8, PY(y) + 4, y);
    fprintf(f, "</g>\n<text transform=\"translate(22 %.1f) rotate(-90)\" text-anchor=\"middle\">"
               "memory (MiB)</text>\n",
            T + ph / 2);
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n",
            L, T, pw, ph);
    const char *colour[2] = {"#1f77b4", "#d62728"};
    const double *ys2[2] = {s->rss, s->tracked};
    for (int k = 0; k < 2; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colour[k]);
        for (size_t i = 0; i < s->n; i++)
            fprintf(f, "%s%.1f,%.1f", i ? " " : "", PX(s->rows[i]), PY(ys2[k][i] / 1048576.0));
        fputs("\"/>\n", f);
    }
    const char *label[2] = {"RSS (resident set size)", "tracked by the census"};
    for (int k = 0; k < 2; k++) {
        double y = T + 16 + k * 18;
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                   "stroke-width=\"2\"/><text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                L + pw - 210, y - 4, L + pw - 186, y - 4, colour[k], L + pw - 180, y, label[k]);
    }
    fputs("</svg>\n", f);
#undef PX
#undef PY
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
    series s = {0};
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
            chart(f, &s, title);
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
    free(s.rows);
    free(s.rss);
    free(s.tracked);
    return rc;
}
