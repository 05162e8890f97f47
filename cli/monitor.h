/* monitor.h: the command's side of watching a running render. The library's
 * sf_watch (sqlfeed.h) samples memory, writes the mem-log, keeps the budget
 * and gives the verdict and the census report; the command adds what is a
 * command's: the census on demand (SIGUSR1 through a signalfd, or a line
 * written to a FIFO) printed to stderr, opening --mem-log (a FIFO waited
 * for), and the progress line on the terminal. Its thread only reads and
 * writes to stderr; the render never waits for it. */
#ifndef SQLFEED_MONITOR_H
#define SQLFEED_MONITOR_H

#include <stdint.h>
#include <stdio.h>

#include "sqlfeed.h"

enum { PROGRESS_NEVER = 0, PROGRESS_ALWAYS = 1, PROGRESS_AUTO = 2 };

typedef struct monitor_opts {
    const char *fifo;     /* --census-fifo PATH, or NULL */
    const char *mem_log;  /* --mem-log FILE, or NULL */
    int progress;         /* PROGRESS_* */
    uint64_t max_memory;  /* --max-memory in bytes, 0: none */
    uint64_t total;       /* rows expected (--total, --count), 0: unknown */
} monitor_opts;

typedef struct monitor monitor;

/* Starts watching. SIGUSR1 must be blocked in every thread (main() does it
 * first thing). NULL on failure, with a message in err and the exit status
 * it calls for in *exit_code. */
monitor *monitor_start(const monitor_opts *o, sf_census *census, sf_render *r,
                       sf_output *out, char *err, size_t errlen, int *exit_code);
/* The rows to expect, once known (--count): percent and ETA from then on. */
void monitor_set_total(monitor *m, uint64_t rows);
/* After monitor_stop: errno of a failed --mem-log write, or 0. */
int monitor_log_error(const monitor *m);
/* Stops the thread, takes the last sample, writes the last mem-log line and
 * the last progress state. Safe with NULL. */
void monitor_stop(monitor *m);
/* After monitor_stop: whether RSS crossed --max-memory. */
int monitor_over_budget(const monitor *m, uint64_t *rss);
/* After monitor_stop: "flat (RSS +0.1 B/row, tracked +0.0 B/row)" or so;
 * returns 0 when the verdict is unknown (too few samples). With NULL: "not
 * watched (SQLFEED_CENSUS=off)". */
int monitor_verdict(monitor *m, char *buf, size_t n);
/* After monitor_stop: the type whose live bytes grew most since the start. */
void monitor_grew_most(monitor *m, char *buf, size_t n);
/* The census, as SIGUSR1 prints it, to f; `why` names the occasion. */
void monitor_print_census(monitor *m, FILE *f, const char *why);
void monitor_free(monitor *m);

/* Parses "512K", "64M", "2G" (powers of 1024) or plain bytes; 0 on success. */
int parse_size(const char *s, uint64_t *out);

#endif
