/* monitor.c: what the command adds to the library's watch (see monitor.h;
 * the sampling, the mem-log, the budget, the verdict and the census report
 * are sf_watch's, src/watch/watch.c).
 *
 * The command's own thread polls a signalfd (SIGUSR1), the census FIFO and a
 * stop pipe with a 20 ms timeout. On a request it prints the watch's report
 * to stderr; at most ten times a second (once a second when stderr is not a
 * terminal) it redraws the progress line from the watch's snapshot. Nothing
 * here runs in a signal handler, and the render never waits for it. */
#include "monitor.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 20
#define DRAW_INTERVAL 0.1   /* progress redraws on a terminal: at most 10/s */
#define PLAIN_INTERVAL 1.0  /* progress lines when stderr is not a terminal */

struct monitor {
    monitor_opts o;
    sf_watch *watch;
    int sigfd, fifofd, stop[2];
    int fifo_created;
    FILE *log;
    int tty;          /* progress drawn in place (a terminal) */
    int drawing;      /* progress enabled */
    double t0, last_draw;
    pthread_t thread;
    int running;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

void monitor_print_census(monitor *m, FILE *f, const char *why)
{
    if (!m)
        return;
    char buf[4096];
    size_t n = sf_watch_report(m->watch, buf, sizeof buf, why);
    fflush(f);
    if (f == stderr)
        put_stderr(buf, n);
    else
        fwrite(buf, 1, n, f);
}

static void progress_line(monitor *m, int final)
{
    sf_watch_progress p;
    sf_watch_get_progress(m->watch, &p);
    char line[256], b1[32], b2[32];
    human((double)p.bytes, b1, sizeof b1);
    human((double)p.rss, b2, sizeof b2);
    size_t cap = sizeof line, o = 0;
    char *buf = line;
    APPEND("%s%llu rows, %.0f rows/s, %s written, RSS %s, %.1f s", m->tty ? "\r" : "",
           (unsigned long long)p.rows, p.rate, b1, b2, p.elapsed);
    if (p.percent >= 0) {
        APPEND(", %.0f%%", p.percent);
        if (!final && p.eta >= 0)
            APPEND(", ETA %.0f s", p.eta);
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

/* ---- the thread ----------------------------------------------------------- */

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
        if (m->drawing && t - m->last_draw >= (m->tty ? DRAW_INTERVAL : PLAIN_INTERVAL)) {
            progress_line(m, 0);
            m->last_draw = t;
        }
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
    m->sigfd = m->fifofd = m->stop[0] = m->stop[1] = -1;
    m->t0 = now();
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
    /* The library samples, logs and keeps the budget; the command reads
     * its signals and draws. */
    sf_watch_opts wo = {.interval_ms = TICK_MS, .mem_log = m->log,
                        .max_memory = o->max_memory, .total = o->total, .output = out};
    m->watch = sf_watch_create(census, r, &wo);
    if (!m->watch) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    sf_status st = sf_watch_start(m->watch);
    if (st != SF_OK) {
        snprintf(err, errlen, "cannot start the watch's thread: %s", sf_strerror(st));
        goto fail;
    }
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
    /* The last state, whatever the rate limits: the watch's last sample
     * and mem-log line, then the last progress line. */
    sf_watch_stop(m->watch);
    if (m->drawing)
        progress_line(m, 1);
}

int monitor_log_error(const monitor *m) { return m ? sf_watch_log_error(m->watch) : 0; }

void monitor_set_total(monitor *m, uint64_t rows) { sf_watch_set_total(m->watch, rows); }

int monitor_over_budget(const monitor *m, uint64_t *rss)
{
    return m ? sf_watch_over_budget(m->watch, rss) : 0;
}

int monitor_verdict(monitor *m, char *buf, size_t n)
{
    if (m)
        return sf_watch_verdict(m->watch, buf, n);
    snprintf(buf, n, "not watched (SQLFEED_CENSUS=off)");
    return 1;
}

void monitor_grew_most(monitor *m, char *buf, size_t n)
{
    if (!m) {
        snprintf(buf, n, "?");
        return;
    }
    sf_watch_grew_most(m->watch, buf, n);
}

void monitor_free(monitor *m)
{
    if (!m)
        return;
    monitor_stop(m);
    sf_watch_free(m->watch);
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
    free(m);
}
