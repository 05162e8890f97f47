/* monitor.c: the render's watcher thread (see monitor.h).
 *
 * The thread polls a signalfd (SIGUSR1), the census FIFO and a stop pipe with
 * a 20 ms timeout. On a request it prints the census; on every tick it
 * samples RSS, tracked bytes and rows (for the flatness verdict), and at most
 * ten times a second writes a mem-log line, redraws the progress line and
 * checks the memory budget. Nothing here runs in a signal handler, and the
 * render never waits for it: it reads atomic counters only. */
#include "monitor.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 20
#define LOG_INTERVAL 0.1    /* mem-log lines and progress redraws: at most 10/s */
#define PLAIN_INTERVAL 1.0  /* progress lines when stderr is not a terminal */
#define MAX_SAMPLES 2048    /* then every other one is dropped: memory stays flat */

struct monitor {
    monitor_opts o;
    sf_census *census;
    sf_render *render;
    sf_output *out;
    int sigfd, fifofd, stop[2];
    int fifo_created;
    FILE *log;
    int tty;          /* progress drawn in place (a terminal) */
    int log_failed;   /* errno of the first failed mem-log write, or 0 */
    int drawing;      /* progress enabled */
    double t0, last_log, last_draw, last_sample, sample_every;
    pthread_t thread;
    int running;
    atomic_int over;
    uint64_t over_rss;
    _Atomic uint64_t total; /* rows expected, 0: unknown (set late by --count) */
    /* samples for the verdict */
    double *rows, *rss, *tracked;
    size_t n;
    /* the census at start (growth) and at the last print (change) */
    sf_mem_stat start[SF_MEM_TYPE_COUNT], last[SF_MEM_TYPE_COUNT];
    uint64_t last_rows;
    double last_census_t;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t current_rss(void)
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
uint64_t peak_rss(void)
{
    char buf[2048];
    uint64_t cur = current_rss();
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

int parse_size(const char *s, uint64_t *out)
{
    /* Digits, an optional fraction, an optional K/M/G (KiB, MB: powers of
     * 1024 either way), an optional B. Nothing strtod would also take (inf,
     * nan, hex, exponents). */
    const char *p = s;
    double v = 0, scale = 1;
    int digits = 0, point = 0;
    for (; (*p >= '0' && *p <= '9') || (*p == '.' && !point); p++) {
        if (*p == '.') {
            point = 1;
            continue;
        }
        digits++;
        if (point)
            v += (*p - '0') * (scale /= 10);
        else
            v = v * 10 + (*p - '0');
    }
    if (!digits)
        return -1;
    double mult = 1;
    switch (*p) {
    case 'k': case 'K': mult = 1024.0; p++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; p++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; p++; break;
    default: break;
    }
    if (*p == 'i' && mult > 1)
        p++;
    if (*p == 'B' || *p == 'b')
        p++;
    if (*p || v * mult < 1 || v * mult > 1e18)
        return -1;
    *out = (uint64_t)(v * mult);
    return 0;
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

/* ---- samples and the verdict ----------------------------------------- */

static void add_sample(monitor *m, double rows, double rss, double tracked)
{
    if (m->n == MAX_SAMPLES) { /* keep every other one, sample half as often */
        for (size_t i = 0; i < MAX_SAMPLES / 2; i++) {
            m->rows[i] = m->rows[2 * i + 1];
            m->rss[i] = m->rss[2 * i + 1];
            m->tracked[i] = m->tracked[2 * i + 1];
        }
        m->n = MAX_SAMPLES / 2;
        m->sample_every *= 2;
    }
    m->rows[m->n] = rows;
    m->rss[m->n] = rss;
    m->tracked[m->n] = tracked;
    m->n++;
}

static size_t verdict_text(monitor *m, char *buf, size_t n, int *known)
{
    sf_flatness fr, ft;
    sf_flatness_fit(m->rows, m->rss, m->n, &fr);
    sf_flatness_fit(m->rows, m->tracked, m->n, &ft);
    *known = !(fr.verdict == SF_FLAT_UNKNOWN || ft.verdict == SF_FLAT_UNKNOWN);
    if (!*known)
        return (size_t)snprintf(buf, n, "unknown (too few rows sampled after the warm-up)");
    sf_flat_verdict v = fr.verdict == SF_GROWS || ft.verdict == SF_GROWS ? SF_GROWS : SF_FLAT;
    return (size_t)snprintf(buf, n, "%s (RSS %+.1f B/row, tracked %+.1f B/row, rows %.0f..%.0f)",
                            sf_flat_verdict_name(v), fr.slope, ft.slope, fr.from_row,
                            fr.to_row);
}

/* ---- output pieces -------------------------------------------------------- */

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

/* Writes the whole buffer to stderr in one call, so a census is never
 * interleaved with anything. */
static void put_stderr(const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Appends to buf[cap] at *o, truncating at the end. */
static void appendf(char *buf, size_t cap, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
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

static size_t format_census(monitor *m, char *buf, size_t cap, const char *why)
{
    size_t o = 0;
    sf_mem_stat st[SF_MEM_TYPE_COUNT];
    snapshot(m->census, st);
    double t = now() - m->t0;
    uint64_t rows = sf_render_rows(m->render), bytes = sf_output_bytes(m->out);
    uint64_t rss = current_rss(), peak = peak_rss(), heap = heap_in_use();
    uint64_t tracked = 0, count = 0;
    int64_t change = 0;
    APPEND("sqlfeed: census at %.2f s, row %llu (%s)\n", t, (unsigned long long)rows, why);
    APPEND("  %-16s %10s %12s %12s %12s\n", "type", "live", "bytes", "peak bytes",
           "change");
    for (int k = 0; k < SF_MEM_TYPE_COUNT; k++) {
        int64_t d = (int64_t)st[k].bytes - (int64_t)m->last[k].bytes;
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
    double dt = t - m->last_census_t;
    double rate = dt > 0 ? (double)(rows - m->last_rows) / dt : 0;
    human((double)bytes, h2, sizeof h2);
    APPEND("  rows %llu (+%llu since the last census, %.0f rows/s), bytes written %llu (%s), "
           "elapsed %.2f s\n",
           (unsigned long long)rows, (unsigned long long)(rows - m->last_rows), rate,
           (unsigned long long)bytes, h2, t);
    char v[200];
    int known;
    verdict_text(m, v, sizeof v, &known);
    if (known) /* too few rows sampled: nothing to say */
        APPEND("  memory: %s\n", v);
    memcpy(m->last, st, sizeof st);
    m->last_rows = rows;
    m->last_census_t = t;
    return o;
}

void monitor_print_census(monitor *m, FILE *f, const char *why)
{
    if (!m)
        return;
    char buf[4096];
    size_t n = format_census(m, buf, sizeof buf, why);
    fflush(f);
    if (f == stderr)
        put_stderr(buf, n);
    else
        fwrite(buf, 1, n, f);
}

static void progress_line(monitor *m, int final)
{
    double t = now() - m->t0;
    uint64_t rows = sf_render_rows(m->render);
    char line[256], b1[32], b2[32];
    human((double)sf_output_bytes(m->out), b1, sizeof b1);
    human((double)current_rss(), b2, sizeof b2);
    size_t cap = sizeof line, o = 0;
    char *buf = line;
    APPEND("%s%llu rows, %.0f rows/s, %s written, RSS %s, %.1f s", m->tty ? "\r" : "",
           (unsigned long long)rows, t > 0 ? (double)rows / t : 0.0, b1, b2, t);
    uint64_t total = atomic_load(&m->total);
    if (total) {
        double pct = 100.0 * (double)rows / (double)total;
        APPEND(", %.0f%%", pct > 100 ? 100 : pct);
        if (!final && rows > 0 && rows < total)
            APPEND(", ETA %.0f s", t * (double)(total - rows) / (double)rows);
    }
    if (m->tty) {
        /* A line that wraps cannot be redrawn with \r: cut it to the width. */
        struct winsize ws;
        size_t width = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 ? ws.ws_col : 80;
        if (o > width) /* '\r' takes no column */
            o = width;
        APPEND("\033[K"); /* clear what a longer line left */
    }
    if (!m->tty || final)
        APPEND("\n");
    put_stderr(line, o);
}

static void log_line(monitor *m, int final)
{
    sf_mem_stat st[SF_MEM_TYPE_COUNT];
    snapshot(m->census, st);
    fprintf(m->log, "{\"t\":%.3f,\"rows\":%llu,\"bytes\":%llu,\"rss\":%llu,\"heap\":%llu,"
                    "\"tracked\":%llu,\"types\":{",
            now() - m->t0, (unsigned long long)sf_render_rows(m->render),
            (unsigned long long)sf_output_bytes(m->out), (unsigned long long)current_rss(),
            (unsigned long long)heap_in_use(), (unsigned long long)tracked_of(st));
    for (int k = 0; k < SF_MEM_TYPE_COUNT; k++)
        fprintf(m->log, "%s\"%s\":%llu", k ? "," : "", st[k].name,
                (unsigned long long)st[k].bytes);
    fprintf(m->log, "},\"final\":%s}\n", final ? "true" : "false");
    if ((fflush(m->log) != 0 || ferror(m->log)) && !m->log_failed)
        m->log_failed = errno ? errno : EIO;
}

/* ---- the thread ----------------------------------------------------------- */

/* Whether RSS crossed the budget since the last look: the kernel's
 * high-water mark catches a spike that came and went between two ticks. */
static int check_budget(monitor *m, uint64_t rss)
{
    if (!m->o.max_memory || atomic_load(&m->over))
        return 0;
    uint64_t peak = peak_rss();
    uint64_t high = peak > rss ? peak : rss;
    if (high <= m->o.max_memory)
        return 0;
    m->over_rss = high;
    atomic_store(&m->over, 1);
    return 1;
}

static void tick(monitor *m, double t)
{
    uint64_t rss = current_rss();
    /* The budget every tick, whatever the sampling interval has grown to. */
    if (check_budget(m, rss))
        sf_render_cancel(m->render); /* the main thread reports it */
    if (t - m->last_sample >= m->sample_every) {
        sf_mem_stat st[SF_MEM_TYPE_COUNT];
        snapshot(m->census, st);
        add_sample(m, (double)sf_render_rows(m->render), (double)rss, (double)tracked_of(st));
        m->last_sample = t;
    }
    if (m->log && t - m->last_log >= LOG_INTERVAL) {
        log_line(m, 0);
        m->last_log = t;
    }
    if (m->drawing && t - m->last_draw >= (m->tty ? LOG_INTERVAL : PLAIN_INTERVAL)) {
        progress_line(m, 0);
        m->last_draw = t;
    }
}

static void *run(void *arg)
{
    monitor *m = arg;
    int stack = cli_signals_helper_thread_start(); /* a crash here cleans up too */
    for (;;) {
        struct pollfd p[3] = {
            {.fd = m->stop[0], .events = POLLIN},
            {.fd = m->sigfd, .events = POLLIN},
            {.fd = m->fifofd, .events = POLLIN},
        };
        int rc = poll(p, m->fifofd >= 0 ? 3 : 2, TICK_MS);
        if (rc < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        const char *why = NULL;
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(m->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
                why = "SIGUSR1";
        }
        if (m->fifofd >= 0 && (p[2].revents & POLLIN)) {
            char drain[256];
            while (read(m->fifofd, drain, sizeof drain) > 0)
                ;
            why = "census FIFO";
        }
        double t = now() - m->t0;
        if (why) {
            if (m->drawing && m->tty)
                put_stderr("\r\033[K", 4);
            monitor_print_census(m, stderr, why);
            m->last_draw = 0; /* redraw the progress line under it */
        }
        tick(m, t);
    }
    cli_signals_helper_thread_end(stack);
    return NULL;
}

/* Opens the mem-log for appending. A FIFO is opened without waiting (open()
 * would wait forever for a reader): up to 10 s for one to appear, a signal
 * ending the wait; then writes do not block the monitor either (a reader
 * that falls behind loses lines, and the end of the run says so). */
static FILE *open_log(const char *path, char *err, size_t errlen)
{
    int fd = -1;
    char dir[4096];
    if (cli_new_file_forbidden(path, dir, sizeof dir)) {
        snprintf(err, errlen, "--mem-log: will not create %s in %s (/dev and below, /proc, "
                              "/sys: kernel file systems)", path, dir);
        return NULL;
    }
    for (int waited = 0; fd < 0; waited += 20) {
        /* A signal that lands between two attempts (not in the sleep) must
         * end the wait too. */
        if (cli_signal_caught()) {
            snprintf(err, errlen, "--mem-log: interrupted waiting for a reader of %s", path);
            return NULL;
        }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0666);
        if (fd >= 0)
            break;
        if (errno != ENXIO) {
            snprintf(err, errlen, "--mem-log: cannot open %s: %s", path, strerror(errno));
            return NULL;
        }
        if (waited >= 10000) {
            snprintf(err, errlen, "--mem-log: no process opened the FIFO %s for reading within "
                                  "10 s", path);
            return NULL;
        }
        struct timespec ts = {0, 20000000L};
        if (nanosleep(&ts, NULL) != 0 && errno == EINTR) {
            snprintf(err, errlen, "--mem-log: interrupted waiting for a reader of %s", path);
            return NULL;
        }
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISFIFO(st.st_mode)) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    FILE *f = fdopen(fd, "a");
    if (!f) {
        snprintf(err, errlen, "--mem-log: cannot open %s: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

monitor *monitor_start(const monitor_opts *o, sf_census *census, sf_render *r,
                       sf_output *out, char *err, size_t errlen, int *exit_code)
{
    monitor *m = calloc(1, sizeof *m);
    *exit_code = EXIT_FAILURE_OTHER;
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->o = *o;
    atomic_store(&m->total, o->total);
    m->census = census;
    m->render = r;
    m->out = out;
    m->sigfd = m->fifofd = m->stop[0] = m->stop[1] = -1;
    m->t0 = now();
    m->sample_every = TICK_MS / 1000.0;
    m->rows = malloc(MAX_SAMPLES * sizeof *m->rows);
    m->rss = malloc(MAX_SAMPLES * sizeof *m->rss);
    m->tracked = malloc(MAX_SAMPLES * sizeof *m->tracked);
    if (!m->rows || !m->rss || !m->tracked) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snapshot(census, m->start);
    memcpy(m->last, m->start, sizeof m->last);
    m->tty = isatty(STDERR_FILENO);
    m->drawing = o->progress == PROGRESS_ALWAYS || (o->progress == PROGRESS_AUTO && m->tty);

    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    m->sigfd = signalfd(-1, &usr1, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m->sigfd < 0 || pipe(m->stop) != 0) {
        snprintf(err, errlen, "cannot watch for SIGUSR1: %s", strerror(errno));
        goto fail;
    }
    if (o->fifo) {
        struct stat sb;
        char dir[4096];
        if (stat(o->fifo, &sb) != 0) {
            if (cli_new_file_forbidden(o->fifo, dir, sizeof dir)) {
                snprintf(err, errlen, "--census-fifo: will not create %s in %s (/dev and below, "
                                      "/proc, /sys: kernel file systems)", o->fifo, dir);
                *exit_code = EXIT_OUTPUT;
                goto fail;
            }
            if (mkfifo(o->fifo, 0600) != 0) {
                snprintf(err, errlen, "--census-fifo: cannot create %s: %s", o->fifo,
                         strerror(errno));
                goto fail;
            }
            m->fifo_created = 1;
        } else if (!S_ISFIFO(sb.st_mode)) {
            snprintf(err, errlen, "--census-fifo: %s exists and is not a FIFO", o->fifo);
            *exit_code = EXIT_USAGE;
            goto fail;
        }
        /* Read-write, so the FIFO always has a writer (us) and poll() reports
         * only real data, never an endless hang-up. */
        m->fifofd = open(o->fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (m->fifofd < 0) {
            snprintf(err, errlen, "--census-fifo: cannot open %s: %s", o->fifo, strerror(errno));
            goto fail;
        }
    }
    if (o->mem_log && !(m->log = open_log(o->mem_log, err, errlen))) {
        *exit_code = EXIT_OUTPUT;
        goto fail;
    }
    if (m->log)
        log_line(m, 0); /* t = 0: every log has a start and an end */
    /* The thread blocks the signals that end a render, so they reach the
     * main thread and interrupt its blocking calls (EINTR). */
    sigset_t block, old;
    cli_signal_set(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&m->thread, NULL, run, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the monitor thread: %s", strerror(rc));
        goto fail;
    }
    m->running = 1;
    *exit_code = EXIT_OK;
    return m;
fail:
    monitor_free(m);
    return NULL;
}

void monitor_stop(monitor *m)
{
    if (!m || !m->running)
        return;
    ssize_t w;
    do
        w = write(m->stop[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(m->thread, NULL);
    m->running = 0;
    /* The last state, whatever the rate limits. */
    uint64_t rss = current_rss();
    sf_mem_stat st[SF_MEM_TYPE_COUNT];
    snapshot(m->census, st);
    add_sample(m, (double)sf_render_rows(m->render), (double)rss, (double)tracked_of(st));
    check_budget(m, rss);
    if (m->log)
        log_line(m, 1);
    if (m->drawing)
        progress_line(m, 1);
}

int monitor_log_error(const monitor *m) { return m ? m->log_failed : 0; }

void monitor_set_total(monitor *m, uint64_t rows) { atomic_store(&m->total, rows); }

int monitor_over_budget(const monitor *m, uint64_t *rss)
{
    if (!m || !atomic_load(&m->over))
        return 0;
    if (rss)
        *rss = m->over_rss;
    return 1;
}

int monitor_verdict(monitor *m, char *buf, size_t n)
{
    int known = 1;
    if (m)
        verdict_text(m, buf, n, &known);
    else
        snprintf(buf, n, "not watched (SQLFEED_CENSUS=off)");
    return known;
}

void monitor_grew_most(monitor *m, char *buf, size_t n)
{
    if (!m) {
        snprintf(buf, n, "?");
        return;
    }
    sf_mem_stat st[SF_MEM_TYPE_COUNT];
    snapshot(m->census, st);
    int best = 0;
    int64_t most = INT64_MIN;
    for (int k = 0; k < SF_MEM_TYPE_COUNT; k++) {
        int64_t d = (int64_t)st[k].peak_bytes - (int64_t)m->start[k].bytes;
        if (d > most)
            most = d, best = k;
    }
    char h[32];
    human((double)most, h, sizeof h);
    snprintf(buf, n, "%s (+%s since the start)", st[best].name, h);
}

void monitor_free(monitor *m)
{
    if (!m)
        return;
    monitor_stop(m);
    if (m->sigfd >= 0)
        close(m->sigfd);
    if (m->fifofd >= 0)
        close(m->fifofd);
    if (m->fifo_created)
        unlink(m->o.fifo);
    if (m->stop[0] >= 0)
        close(m->stop[0]);
    if (m->stop[1] >= 0)
        close(m->stop[1]);
    if (m->log)
        fclose(m->log);
    free(m->rows);
    free(m->rss);
    free(m->tracked);
    free(m);
}
