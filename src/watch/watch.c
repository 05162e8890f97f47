/* watch.c: a running render seen from a sampler thread (sqlfeed.h, "Watch";
 * docs/watch.md).
 *
 * The thread wakes every interval (20 ms), checks the memory budget, takes
 * a sample of (rows, RSS, tracked bytes) for the flatness verdict when one
 * is due, and at most ten times a second appends a mem-log line. It reads
 * only atomic counters (the census, the render's rows, the output's bytes)
 * and /proc, so the render never waits for it. The samples, the baseline of
 * the report's "change" column and the mem-log are shared with the caller's
 * threads (a report asked for on SIGUSR1, the final sample): one mutex,
 * never held across anything slower than formatting a line. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"

#define DEFAULT_TICK_MS 20
#define LOG_INTERVAL 0.1  /* mem-log lines: at most 10/s (the CLI's format, docs/census.md) */
#define MAX_SAMPLES 2048  /* then every other one is dropped: the watch stays flat */

struct sf_watch {
    sf_census_ref cref;
    sf_census *census;
    sf_render *render;
    sf_watch_opts o;
    double tick;      /* seconds between wake-ups */
    pthread_t thread;
    int running;      /* the thread exists (joined by sf_watch_stop) */
    int started;      /* sf_watch_start succeeded once */
    int finished;     /* the last sample and line are taken */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC: a clock change does not stall it */
    int stopping;     /* under lock */
    atomic_int over;
    _Atomic uint64_t over_rss;
    _Atomic uint64_t total;
    atomic_int log_failed; /* errno of the first failed mem-log write, or 0 */
    double t0, last_log, last_sample, sample_every;
    /* samples for the verdict (under lock) */
    double *rows, *rss, *tracked;
    size_t n;
    /* the census at the start (growth) and at the last report (change) */
    sf_mem_stat start[SF_MEM_TYPE_COUNT], last[SF_MEM_TYPE_COUNT];
    uint64_t last_rows;
    double last_report_t;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- what the process holds -------------------------------------------- */

uint64_t sf_rss_current(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* This process's own high-water mark (VmHWM). Not getrusage's ru_maxrss:
 * that one survives execve, so a render started by a 300 MB Python process
 * would report, and be budgeted on, the parent's peak. */
uint64_t sf_rss_peak(void)
{
    char buf[2048];
    uint64_t cur = sf_rss_current();
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cur;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return cur;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nVmHWM:");
    unsigned long long kib;
    if (!p || sscanf(p + 7, " %llu kB", &kib) != 1)
        return cur;
    uint64_t hwm = (uint64_t)kib * 1024;
    return hwm > cur ? hwm : cur; /* the mark lags the current figure a little */
}

static uint64_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

static void snapshot(const sf_census *c, sf_mem_stat *st)
{
    for (int t = 0; t < SF_MEM_TYPE_COUNT; t++)
        sf_census_stat(c, (sf_mem_type)t, &st[t]);
}

static uint64_t tracked_of(const sf_mem_stat *st)
{
    uint64_t sum = 0;
    for (int t = 0; t < SF_MEM_TYPE_COUNT; t++)
        sum += st[t].bytes;
    return sum;
}

static uint64_t rows_of(const sf_watch *w) { return w->render ? sf_render_rows(w->render) : 0; }

static uint64_t bytes_of(const sf_watch *w)
{
    return w->o.output ? sf_output_bytes(w->o.output) : 0;
}

/* ---- samples and the verdict (under lock) ------------------------------ */

static void add_sample(sf_watch *w, double rows, double rss, double tracked)
{
    if (w->n == MAX_SAMPLES) { /* keep every other one, sample half as often */
        for (size_t i = 0; i < MAX_SAMPLES / 2; i++) {
            w->rows[i] = w->rows[2 * i + 1];
            w->rss[i] = w->rss[2 * i + 1];
            w->tracked[i] = w->tracked[2 * i + 1];
        }
        w->n = MAX_SAMPLES / 2;
        w->sample_every *= 2;
    }
    w->rows[w->n] = rows;
    w->rss[w->n] = rss;
    w->tracked[w->n] = tracked;
    w->n++;
}

static sf_flat_verdict verdict_locked(sf_watch *w, char *buf, size_t n)
{
    sf_flatness fr, ft;
    sf_flatness_fit(w->rows, w->rss, w->n, &fr);
    sf_flatness_fit(w->rows, w->tracked, w->n, &ft);
    if (fr.verdict == SF_FLAT_UNKNOWN || ft.verdict == SF_FLAT_UNKNOWN) {
        if (buf)
            snprintf(buf, n, "unknown (too few rows sampled after the warm-up)");
        return SF_FLAT_UNKNOWN;
    }
    sf_flat_verdict v = fr.verdict == SF_GROWS || ft.verdict == SF_GROWS ? SF_GROWS : SF_FLAT;
    if (buf)
        snprintf(buf, n, "%s (RSS %+.1f B/row, tracked %+.1f B/row, rows %.0f..%.0f)",
                 sf_flat_verdict_name(v), fr.slope, ft.slope, fr.from_row, fr.to_row);
    return v;
}

/* ---- text --------------------------------------------------------------- */

static void human(double b, char *buf, size_t n)
{
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, n, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(buf, n, "%.1f MiB", b / (1024.0 * 1024));
    else if (b >= 1024.0)
        snprintf(buf, n, "%.1f KiB", b / 1024.0);
    else
        snprintf(buf, n, "%.0f B", b);
}

/* Appends to buf[cap] at *o, truncating at the end. */
static void appendf(char *buf, size_t cap, size_t *o, const char *fmt, ...) SF_PRINTF(4, 5);
static void appendf(char *buf, size_t cap, size_t *o, const char *fmt, ...)
{
    if (*o + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *o, cap - *o, fmt, ap);
    va_end(ap);
    if (k > 0)
        *o += (size_t)k < cap - *o ? (size_t)k : cap - *o - 1;
}
#define APPEND(...) appendf(buf, cap, &o, __VA_ARGS__)

size_t sf_watch_report(sf_watch *w, char *buf, size_t cap, const char *why)
{
    if (!buf || !cap)
        return 0;
    buf[0] = '\0';
    if (!w)
        return 0;
    size_t o = 0;
    sf_mem_stat st[SF_MEM_TYPE_COUNT];
    pthread_mutex_lock(&w->lock);
    snapshot(w->census, st);
    double t = now() - w->t0;
    uint64_t rows = rows_of(w), bytes = bytes_of(w);
    uint64_t rss = sf_rss_current(), peak = sf_rss_peak(), heap = heap_in_use();
    uint64_t tracked = 0, count = 0;
    int64_t change = 0;
    APPEND("sqlfeed: census at %.2f s, row %llu (%s)\n", t, (unsigned long long)rows,
           why ? why : "report");
    APPEND("  %-16s %10s %12s %12s %12s\n", "type", "live", "bytes", "peak bytes",
           "change");
    for (int k = 0; k < SF_MEM_TYPE_COUNT; k++) {
        int64_t d = (int64_t)st[k].bytes - (int64_t)w->last[k].bytes;
        APPEND("  %-16s %10llu %12llu %12llu %+12lld\n", st[k].name,
               (unsigned long long)st[k].count, (unsigned long long)st[k].bytes,
               (unsigned long long)st[k].peak_bytes, (long long)d);
        tracked += st[k].bytes;
        count += st[k].count;
        change += d;
    }
    APPEND("  %-16s %10llu %12llu %12s %+12lld\n", "tracked total", (unsigned long long)count,
           (unsigned long long)tracked, "", (long long)change);
    char h1[32], h2[32], h3[32], h4[32];
    human((double)heap, h1, sizeof h1);
    human((double)heap - (double)tracked, h2, sizeof h2);
    if (heap)
        APPEND("  heap in use (mallinfo2) %llu (%s): %s untracked (block headers, malloc "
               "overhead, the command's own buffers, libc)\n",
               (unsigned long long)heap, h1, h2);
    else /* another allocator (a sanitizer's) answers mallinfo2 with zeros */
        APPEND("  heap in use (mallinfo2): not reported by this process's allocator\n");
    human((double)rss, h1, sizeof h1);
    human((double)peak, h3, sizeof h3);
    human((double)rss - (double)(heap ? heap : tracked), h4, sizeof h4);
    APPEND("  RSS %llu (%s), peak RSS %s: %s beyond the %s (code, shared libraries, stacks, "
           "mapped files)\n",
           (unsigned long long)rss, h1, h3, h4, heap ? "heap" : "tracked bytes");
    double dt = t - w->last_report_t;
    double rate = dt > 0 ? (double)(rows - w->last_rows) / dt : 0;
    human((double)bytes, h2, sizeof h2);
    APPEND("  rows %llu (+%llu since the last census, %.0f rows/s), bytes written %llu (%s), "
           "elapsed %.2f s\n",
           (unsigned long long)rows, (unsigned long long)(rows - w->last_rows), rate,
           (unsigned long long)bytes, h2, t);
    char v[200];
    if (verdict_locked(w, v, sizeof v) != SF_FLAT_UNKNOWN) /* too few rows: nothing to say */
        APPEND("  memory: %s\n", v);
    memcpy(w->last, st, sizeof st);
    w->last_rows = rows;
    w->last_report_t = t;
    pthread_mutex_unlock(&w->lock);
    return o;
}

/* One mem-log line (under lock): the format `sqlfeed mem-plot` and
 * tests/fuzz/fuzz_memlog.c read, unchanged from the command's. */
static void log_line(sf_watch *w, int final)
{
    FILE *f = w->o.mem_log;
    sf_mem_stat st[SF_MEM_TYPE_COUNT];
    snapshot(w->census, st);
    fprintf(f, "{\"t\":%.3f,\"rows\":%llu,\"bytes\":%llu,\"rss\":%llu,\"heap\":%llu,"
               "\"tracked\":%llu,\"types\":{",
            now() - w->t0, (unsigned long long)rows_of(w), (unsigned long long)bytes_of(w),
            (unsigned long long)sf_rss_current(), (unsigned long long)heap_in_use(),
            (unsigned long long)tracked_of(st));
    for (int k = 0; k < SF_MEM_TYPE_COUNT; k++)
        fprintf(f, "%s\"%s\":%llu", k ? "," : "", st[k].name, (unsigned long long)st[k].bytes);
    fprintf(f, "},\"final\":%s}\n", final ? "true" : "false");
    if ((fflush(f) != 0 || ferror(f)) && !atomic_load(&w->log_failed))
        atomic_store(&w->log_failed, errno ? errno : EIO);
}

/* ---- the thread ---------------------------------------------------------- */

/* Whether RSS crossed the budget since the last look: the kernel's
 * high-water mark catches a spike that came and went between two ticks. */
static int check_budget(sf_watch *w, uint64_t rss)
{
    if (!w->o.max_memory || atomic_load(&w->over))
        return 0;
    uint64_t peak = sf_rss_peak();
    uint64_t high = peak > rss ? peak : rss;
    if (high <= w->o.max_memory)
        return 0;
    atomic_store(&w->over_rss, high);
    atomic_store(&w->over, 1);
    return 1;
}

static void sample_now(sf_watch *w, uint64_t rss)
{
    sf_mem_stat st[SF_MEM_TYPE_COUNT];
    snapshot(w->census, st);
    add_sample(w, (double)rows_of(w), (double)rss, (double)tracked_of(st));
}

static void tick(sf_watch *w, double t)
{
    uint64_t rss = sf_rss_current();
    /* The budget every tick, whatever the sampling interval has grown to;
     * the program learns of it from the render's SF_ERR_CANCELLED. */
    if (check_budget(w, rss) && w->render)
        sf_render_cancel(w->render);
    pthread_mutex_lock(&w->lock);
    if (t - w->last_sample >= w->sample_every) {
        sample_now(w, rss);
        w->last_sample = t;
    }
    if (w->o.mem_log && t - w->last_log >= LOG_INTERVAL) {
        log_line(w, 0);
        w->last_log = t;
    }
    pthread_mutex_unlock(&w->lock);
}

static void *run(void *arg)
{
    sf_watch *w = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long step = (long)(w->tick * 1e9);
    for (;;) {
        next.tv_nsec += step;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        pthread_mutex_lock(&w->lock);
        int rc = 0;
        while (!w->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&w->wake, &w->lock, &next);
        int stop = w->stopping;
        pthread_mutex_unlock(&w->lock);
        if (stop)
            break;
        double t = now();
        /* A tick late by more than one period (a stopped process) starts
         * the schedule afresh rather than catching up in a burst. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 >
            (double)next.tv_sec + (double)next.tv_nsec / 1e9 + w->tick)
            next = ts;
        tick(w, t - w->t0);
    }
    return NULL;
}

/* ---- the handle ------------------------------------------------------------ */

sf_watch *sf_watch_create(sf_census *census, sf_render *render, const sf_watch_opts *opts)
{
    if (!census)
        return NULL;
    sf_watch *w = SF_HANDLE_CREATE(sf_watch, census);
    if (!w)
        return NULL;
    w->census = census;
    w->render = render;
    if (opts)
        w->o = *opts;
    w->tick = (w->o.interval_ms ? w->o.interval_ms : DEFAULT_TICK_MS) / 1000.0;
    w->sample_every = w->tick;
    atomic_init(&w->over, 0);
    atomic_init(&w->over_rss, 0);
    atomic_init(&w->total, w->o.total);
    atomic_init(&w->log_failed, 0);
    w->rows = sf_alloc(census, SF_MEM_OTHER, MAX_SAMPLES * sizeof *w->rows);
    w->rss = sf_alloc(census, SF_MEM_OTHER, MAX_SAMPLES * sizeof *w->rss);
    w->tracked = sf_alloc(census, SF_MEM_OTHER, MAX_SAMPLES * sizeof *w->tracked);
    pthread_condattr_t ca;
    int cond_ok = 0, lock_ok = pthread_mutex_init(&w->lock, NULL) == 0;
    if (pthread_condattr_init(&ca) == 0) {
        cond_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                  pthread_cond_init(&w->wake, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!w->rows || !w->rss || !w->tracked || !lock_ok || !cond_ok) {
        if (lock_ok)
            pthread_mutex_destroy(&w->lock);
        if (cond_ok)
            pthread_cond_destroy(&w->wake);
        sf_dealloc(census, w->rows);
        sf_dealloc(census, w->rss);
        sf_dealloc(census, w->tracked);
        SF_HANDLE_FREE(sf_watch, w);
        return NULL;
    }
    /* The start: after the watch's own memory, so it is not growth. */
    w->t0 = now(); /* again at sf_watch_start */
    snapshot(census, w->start);
    memcpy(w->last, w->start, sizeof w->last);
    return w;
}

sf_status sf_watch_start(sf_watch *w)
{
    if (!w)
        return SF_ERR_ARG;
    if (w->started || w->finished)
        return SF_ERR_STATE;
    /* Time 0 is now, not sf_watch_create: what the program does between
     * the two (the command waits for a mem-log FIFO's reader) is not the
     * render's. The census baseline stays the one taken at create. */
    w->t0 = now();
    if (w->o.mem_log) { /* t = 0: every log has a start and an end */
        pthread_mutex_lock(&w->lock);
        log_line(w, 0);
        pthread_mutex_unlock(&w->lock);
    }
    if (sf_thread_start(&w->thread, run, w) != 0)
        return SF_ERR_NOMEM;
    w->started = w->running = 1;
    return SF_OK;
}

void sf_watch_stop(sf_watch *w)
{
    if (!w || w->finished)
        return;
    if (w->running) {
        pthread_mutex_lock(&w->lock);
        w->stopping = 1;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        w->running = 0;
    }
    /* The last state, whatever the rate limits. */
    uint64_t rss = sf_rss_current();
    pthread_mutex_lock(&w->lock);
    sample_now(w, rss);
    if (w->o.mem_log)
        log_line(w, 1);
    w->finished = 1;
    pthread_mutex_unlock(&w->lock);
    check_budget(w, rss);
}

void sf_watch_free(sf_watch *w)
{
    if (!w)
        return;
    sf_watch_stop(w);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    sf_dealloc(w->census, w->rows);
    sf_dealloc(w->census, w->rss);
    sf_dealloc(w->census, w->tracked);
    SF_HANDLE_FREE(sf_watch, w);
}

/* ---- queries ----------------------------------------------------------------- */

void sf_watch_set_total(sf_watch *w, uint64_t rows)
{
    if (w)
        atomic_store(&w->total, rows);
}

int sf_watch_over_budget(const sf_watch *w, uint64_t *rss)
{
    if (!w || !atomic_load(&w->over))
        return 0;
    if (rss)
        *rss = atomic_load(&w->over_rss);
    return 1;
}

int sf_watch_log_error(const sf_watch *w) { return w ? atomic_load(&w->log_failed) : 0; }

int sf_watch_verdict(sf_watch *w, char *buf, size_t n)
{
    if (!w) {
        if (buf && n)
            snprintf(buf, n, "unknown (not watched)");
        return 0;
    }
    pthread_mutex_lock(&w->lock);
    sf_flat_verdict v = verdict_locked(w, buf && n ? buf : NULL, n);
    pthread_mutex_unlock(&w->lock);
    return v != SF_FLAT_UNKNOWN;
}

sf_flat_verdict sf_watch_flatness(sf_watch *w)
{
    if (!w)
        return SF_FLAT_UNKNOWN;
    pthread_mutex_lock(&w->lock);
    sf_flat_verdict v = verdict_locked(w, NULL, 0);
    pthread_mutex_unlock(&w->lock);
    return v;
}

void sf_watch_grew_most(sf_watch *w, char *buf, size_t n)
{
    if (!buf || !n)
        return;
    if (!w) {
        snprintf(buf, n, "?");
        return;
    }
    sf_mem_stat st[SF_MEM_TYPE_COUNT];
    snapshot(w->census, st);
    int best = 0;
    int64_t most = INT64_MIN;
    for (int k = 0; k < SF_MEM_TYPE_COUNT; k++) {
        int64_t d = (int64_t)st[k].peak_bytes - (int64_t)w->start[k].bytes;
        if (d > most)
            most = d, best = k;
    }
    char h[32];
    human((double)most, h, sizeof h);
    snprintf(buf, n, "%s (+%s since the start)", st[best].name, h);
}

void sf_watch_get_progress(sf_watch *w, sf_watch_progress *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    out->percent = out->eta = -1;
    if (!w)
        return;
    double t = now() - w->t0;
    uint64_t rows = rows_of(w), total = atomic_load(&w->total);
    out->elapsed = t;
    out->rows = rows;
    out->rate = t > 0 ? (double)rows / t : 0.0;
    out->bytes = bytes_of(w);
    out->rss = sf_rss_current();
    out->peak_rss = sf_rss_peak();
    out->total = total;
    if (total) {
        double pct = 100.0 * (double)rows / (double)total;
        out->percent = pct > 100 ? 100 : pct;
        if (rows > 0 && rows < total)
            out->eta = t * (double)(total - rows) / (double)rows;
    }
}
