/* memlog.h: a --mem-log file read back (the lines cli/monitor.c writes) and
 * drawn as an SVG chart, for `sqlfeed mem-plot`. No messages and no file
 * names here, so this links on its own (tests/fuzz/fuzz_memlog.c). */
#ifndef SQLFEED_MEMLOG_H
#define SQLFEED_MEMLOG_H

#include <stddef.h>
#include <stdio.h>

/* The largest value a field may hold (a petabyte, 10^15 rows): larger is
 * taken for a line that is not ours. */
#define MEMLOG_MAX 1000000000000000ull

typedef struct memlog_sample {
    double rows, rss, tracked;
} memlog_sample;

typedef struct memlog_series {
    double *rows, *rss, *tracked;
    size_t n, cap;
} memlog_series;

/* 0 when line[0, len) is a --mem-log line: it has "rows":, "rss": and
 * "tracked": (the first of each), each followed by a whole number of at most
 * MEMLOG_MAX, as the monitor writes them (%llu); -1 otherwise (a fraction, a
 * sign, an exponent, a missing field). The line need not end in a NUL. */
int memlog_parse_line(const char *line, size_t len, memlog_sample *out);

/* Appends a sample (malloc); -1 when out of memory, the series unchanged. */
int memlog_series_add(memlog_series *s, const memlog_sample *x);
void memlog_series_free(memlog_series *s);

/* Writes the chart of s (n >= 2) to f as an SVG document; `title` is
 * escaped. */
void memlog_chart(FILE *f, const memlog_series *s, const char *title);

#endif
