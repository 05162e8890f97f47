/* fuzz_memlog.c: `sqlfeed mem-plot` on any input: the --mem-log line parser,
 * the flatness fit and the SVG chart (cli/memlog.c).
 *
 * The input's first line is the chart's title (the command puts the log's
 * file name there, which may be any bytes); every line is then parsed as a
 * mem-log line, and those accepted with rows that do not go back make the
 * series (the command refuses the whole file instead; a file of only those
 * lines gives it the same series). Checked: an accepted line holds whole
 * numbers within MEMLOG_MAX; the fit gives a valid verdict; the chart ends
 * (libFuzzer's -timeout, replay's) and is a well-formed XML document (expat). */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/memlog.h"
#include "fuzz.h"
#include "sqlfeed.h"

#define MAX_SAMPLES 20000

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_memlog: %s\n", what);
        abort();
    }
}

static int whole(double v) { return v >= 0 && v <= (double)MEMLOG_MAX && v == (double)(unsigned long long)v; }

static void check_fit(const memlog_series *s, const double *bytes)
{
    sf_flatness fl;
    check(sf_flatness_fit(s->rows, bytes, s->n, &fl) == SF_OK, "sf_flatness_fit failed");
    check(fl.verdict == SF_FLAT_UNKNOWN || fl.verdict == SF_FLAT || fl.verdict == SF_GROWS,
          "bad verdict");
    check(fl.samples <= s->n, "more samples than given");
    check(strcmp(sf_flat_verdict_name(fl.verdict), "unknown") != 0 ||
              fl.verdict == SF_FLAT_UNKNOWN,
          "verdict name");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *nl = memchr(p, '\n', size);
    size_t tlen = (size_t)((nl ? nl : end) - p);
    char title[256];
    if (tlen >= sizeof title)
        tlen = sizeof title - 1;
    memcpy(title, p, tlen);
    title[tlen] = '\0'; /* an embedded NUL ends it early, as in a C string */

    memlog_series s = {0};
    while (p < end && s.n < MAX_SAMPLES) {
        nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl + 1 : end) - p);
        /* The line alone in a buffer of its size: an overread is seen by ASan. */
        char *line = malloc(len ? len : 1);
        check(line != NULL, "out of memory");
        memcpy(line, p, len);
        memlog_sample x;
        if (memlog_parse_line(line, len, &x) == 0) {
            check(whole(x.rows) && whole(x.rss) && whole(x.tracked), "accepted a value out of range");
            if ((!s.n || x.rows >= s.rows[s.n - 1]))
                check(memlog_series_add(&s, &x) == 0, "out of memory");
        }
        free(line);
        p += len;
    }
    if (s.n >= 2) {
        check_fit(&s, s.rss);
        check_fit(&s, s.tracked);
        char *svg = NULL;
        size_t svglen = 0;
        FILE *f = open_memstream(&svg, &svglen);
        check(f != NULL, "open_memstream");
        memlog_chart(f, &s, title);
        check(fclose(f) == 0, "fclose");
        XML_Parser x = XML_ParserCreate(NULL);
        check(x != NULL, "XML_ParserCreate");
        if (XML_Parse(x, svg, (int)svglen, 1) != XML_STATUS_OK) {
            fprintf(stderr, "fuzz_memlog: the chart is not well-formed: %s at line %lu col %lu\n",
                    XML_ErrorString(XML_GetErrorCode(x)), (unsigned long)XML_GetCurrentLineNumber(x),
                    (unsigned long)XML_GetCurrentColumnNumber(x));
            abort();
        }
        XML_ParserFree(x);
        free(svg);
    }
    memlog_series_free(&s);
    return 0;
}
