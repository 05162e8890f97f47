/* signals.c: every signal whose default action ends the process ends a
 * render cleanly instead: the temporary file is removed, the previous feed
 * stays, and the process dies by the same signal (exit status 128+N).
 *
 * Two kinds (signal(7)):
 *   asynchronous (SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGALRM, SIGUSR2,
 *     SIGVTALRM, SIGPROF, SIGIO/SIGPOLL, SIGXCPU, SIGPWR, SIGSTKFLT, the
 *     real-time signals): the handler only records the signal and pulls the
 *     render's cancel switch (async-signal-safe); the main thread stops at
 *     the next row or blocked call (no SA_RESTART: EINTR), aborts the output,
 *     reports, and re-raises;
 *   synchronous crashes (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP,
 *     SIGSYS): the process cannot go on, so the handler unlinks the
 *     temporary file (unlink(2) is async-signal-safe; the path was copied
 *     into a static buffer beforehand), restores the disposition it found
 *     (a sanitizer's handler, or the default) and re-raises.
 * Publication: an asynchronous signal also cancels every output registered
 * with cli_signals_set_output() / cli_signals_add_output() (all the
 * documents and indexes of one scan), so a commit not yet at its first
 * rename gives up (nothing published, 128+N); one arriving after the first
 * rename finds the set being published: the command finishes (exit 0) and
 * says so.
 * SIGPIPE is ignored (a closed pipe is an output error, exit 5) and so is
 * SIGXFSZ (a file-size limit makes write(2) fail with EFBIG: exit 5). A
 * signal that was ignored when sqlfeed started stays ignored (nohup's
 * SIGHUP), except SIGINT and SIGQUIT: a shell without job control ignores
 * those in every background job on its own, and `kill -INT PID` must still
 * stop such a render. SIGUSR1 asks for the census
 * (blocked, read by the monitor's signalfd). SIGKILL cannot be caught: it
 * can leave a .NAME.sqlfeed-* file, never a partial feed. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const int async_sigs[] = {
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGALRM, SIGUSR2, SIGVTALRM, SIGPROF, SIGIO, SIGXCPU,
#ifdef SIGPWR
    SIGPWR,
#endif
#ifdef SIGSTKFLT
    SIGSTKFLT,
#endif
};
static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};
#define NCRASH (sizeof crash_sigs / sizeof crash_sigs[0])

static sf_render *volatile g_render;
/* The outputs an asynchronous signal cancels: every output of the run (its
 * documents, its indexes), so that none of them starts publishing. A slot
 * is filled before the count that makes it visible grows. */
static sf_output *volatile g_outputs[CLI_MAX_SIGNAL_FILES];
static atomic_size_t g_noutputs;
static sf_source *volatile g_source; /* while connecting and preparing too */
static volatile sig_atomic_t g_signal;
static struct sigaction crash_old[NCRASH];
/* The temporary files to unlink on a crash (one per output: the file being
 * written; a split output's earlier parts and anything a crash leaves are
 * removed by the next run, which holds the output's lock); g_temp_set[i]
 * says slot i is whole. A crash may happen in another thread (the
 * monitor's): the flags are C11 atomics (lock-free, so usable in a
 * handler), stored with release after the copy and loaded with acquire, so
 * the handler never sees a flag before the bytes. */
static char g_temp[CLI_MAX_SIGNAL_FILES][PATH_MAX + 256];
static atomic_int g_temp_set[CLI_MAX_SIGNAL_FILES];
/* Stacks for the crash handler, so a stack overflow can still clean up:
 * one for the main thread, one for a helper thread (the monitor's). */
#define ALTSTACK_SIZE (1 << 16)
static char altstack[ALTSTACK_SIZE], altstack_helper[ALTSTACK_SIZE];
static atomic_flag helper_stack_taken = ATOMIC_FLAG_INIT;

static void on_signal(int sig)
{
    int e = errno;
    g_signal = sig;
    sf_render *r = g_render;
    if (r)
        sf_render_cancel(r);
    size_t n = atomic_load(&g_noutputs);
    for (size_t i = 0; i < n && i < CLI_MAX_SIGNAL_FILES; i++) {
        sf_output *o = g_outputs[i];
        if (o)
            sf_output_cancel(o);
    }
    sf_source *s = g_source;
    if (s)
        sf_source_cancel(s);
    errno = e;
}

static void on_crash(int sig)
{
    int removed = 0;
    for (size_t i = 0; i < CLI_MAX_SIGNAL_FILES; i++) {
        if (atomic_load_explicit(&g_temp_set[i], memory_order_acquire) && unlink(g_temp[i]) == 0)
            removed++;
        atomic_store(&g_temp_set[i], 0);
    }
    /* One line, with async-signal-safe calls only: write(2) of fixed text. */
    char msg[128] = "sqlfeed: crashed with signal ", num[12];
    size_t n = strlen(msg), k = 0;
    for (unsigned v = (unsigned)sig; k == 0 || v; v /= 10)
        num[k++] = (char)('0' + v % 10);
    while (k)
        msg[n++] = num[--k];
    const char *tail = removed > 1 ? "; temporary files removed, nothing published\n"
                       : removed   ? "; temporary file removed, nothing published\n"
                                   : "; nothing published\n";
    size_t t = strlen(tail);
    memcpy(msg + n, tail, t);
    ssize_t w = write(2, msg, n + t);
    (void)w;
    for (size_t i = 0; i < NCRASH; i++)
        if (crash_sigs[i] == sig)
            sigaction(sig, &crash_old[i], NULL);
    /* Pending until this handler returns (the signal is blocked in it); a
     * fault also recurs when the instruction runs again. Either way the
     * disposition found at the start (the default: die, maybe dump core;
     * or a sanitizer's report) takes it from here. */
    raise(sig);
}

static int was_ignored(int sig)
{
    struct sigaction old;
    return sigaction(sig, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
           old.sa_handler == SIG_IGN;
}

void cli_signal_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < sizeof async_sigs / sizeof async_sigs[0]; i++)
        sigaddset(set, async_sigs[i]);
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
        sigaddset(set, s);
}

void cli_signals_install(sf_render *r)
{
    g_render = r;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return EINTR */
    sigset_t all;
    cli_signal_set(&all);
    sa.sa_mask = all; /* one handler at a time */
    for (int s = 1; s <= SIGRTMAX; s++)
        if (sigismember(&all, s) == 1 && (s == SIGINT || s == SIGQUIT || !was_ignored(s)))
            sigaction(s, &sa, NULL);
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NCRASH; i++)
        sigaction(crash_sigs[i], &sa, &crash_old[i]);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is an error to report, not a death */
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit is EFBIG from write: exit 5 */
}

void cli_signals_watch_source(sf_source *s) { g_source = s; }

void cli_signals_forget_render(void)
{
    g_render = NULL;
    g_source = NULL;
}

void cli_signals_set_output(sf_output *out)
{
    atomic_store(&g_noutputs, 0);
    if (out)
        cli_signals_add_output(out);
}

int cli_signals_add_output(sf_output *out)
{
    size_t n = atomic_load(&g_noutputs);
    if (n >= CLI_MAX_SIGNAL_FILES)
        return -1;
    g_outputs[n] = out;
    atomic_store(&g_noutputs, n + 1); /* seq_cst: the slot is written before it counts */
    return 0;
}

int cli_signals_helper_thread_start(void)
{
    if (atomic_flag_test_and_set(&helper_stack_taken))
        return -1; /* one helper at a time has a stack of its own */
    stack_t ss = {.ss_sp = altstack_helper, .ss_size = sizeof altstack_helper, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        atomic_flag_clear(&helper_stack_taken);
        return -1;
    }
    return 0;
}

void cli_signals_helper_thread_end(int started)
{
    if (started != 0)
        return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    atomic_flag_clear(&helper_stack_taken);
}

int cli_signal_caught(void) { return g_signal; }

void cli_signals_set_temp(const char *path)
{
    for (size_t i = 0; i < CLI_MAX_SIGNAL_FILES; i++)
        atomic_store(&g_temp_set[i], 0);
    if (path)
        cli_signals_add_temp(path);
}

void cli_signals_add_temp(const char *path)
{
    if (!path || strlen(path) >= sizeof g_temp[0])
        return;
    for (size_t i = 0; i < CLI_MAX_SIGNAL_FILES; i++) {
        if (atomic_load(&g_temp_set[i]))
            continue;
        memcpy(g_temp[i], path, strlen(path) + 1);
        atomic_store_explicit(&g_temp_set[i], 1, memory_order_release);
        return;
    }
}

const volatile sig_atomic_t *cli_signal_flag(void) { return &g_signal; }

void cli_reraise(int sig)
{
    for (size_t i = 0; i < CLI_MAX_SIGNAL_FILES; i++)
        atomic_store(&g_temp_set[i], 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
}
