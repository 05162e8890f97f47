/* cli.h: the sqlfeed command's own pieces. The CLI uses only the library's
 * public header, sqlfeed.h. */
#ifndef SQLFEED_CLI_H
#define SQLFEED_CLI_H

#include <signal.h>

#include "sqlfeed.h"

/* Exit statuses (documented in README.md and sqlfeed --help). */
enum {
    EXIT_OK = 0,
    EXIT_FAILURE_OTHER = 1, /* out of memory, internal error */
    EXIT_USAGE = 2,         /* bad options or arguments */
    EXIT_TEMPLATE = 3,      /* template syntax, missing partial, names not provided */
    EXIT_DATABASE = 4,      /* database open, query or row failure */
    EXIT_OUTPUT = 5,        /* creating, writing, syncing or publishing the output */
    EXIT_MEMORY = 6,        /* --max-memory crossed; nothing published */
    EXIT_REFUSED = 7,       /* a safety rail (--min-rows, --max-drop) refused to publish */
    EXIT_BUSY = 8           /* another run holds the output's lock */
    /* 128 + N: stopped by signal N (130 SIGINT, 143 SIGTERM) before the
     * rename; nothing published. A signal after it: exit 0, said. */
};

int cmd_render(int argc, char **argv);
int cmd_templates(int argc, char **argv);
int cmd_demo_db(int argc, char **argv);
int cmd_mem_plot(int argc, char **argv);

/* The census every allocation of the command is counted in, SQLite's too
 * (routed by cli_route_sqlite, which must run before SQLite is used). */
extern sf_census *cli_census;
extern int cli_census_off; /* SQLFEED_CENSUS=off: no SQLite routing, no monitor */
int cli_route_sqlite(sf_census *census);
void cli_unroute_sqlite(void);

/* Prints "sqlfeed: " + message to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The exit status for a library status. */
int cli_exit_for(sf_status st);
/* Reports a usage error of `cmd` on one line, with where to find help;
 * returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After getopt_long returned '?': says what was wrong with `arg`. */
int cli_bad_option(const char *cmd, const char *arg);

/* Signals (cli/signals.c): every signal that would end the process instead
 * cancels `r` (asynchronous ones) or removes the temporary file before dying
 * (crashes). cli_signal_set() fills the asynchronous set: held while
 * publishing, blocked in helper threads so blocking calls of the main
 * thread see EINTR. */
void cli_signals_install(sf_render *r);
/* The source a signal cancels too (sf_source_cancel): it may be connecting
 * or preparing, before the render runs. Forgotten with the render. */
void cli_signals_watch_source(sf_source *s);
void cli_signals_forget_render(void);
void cli_signal_set(sigset_t *set);
int cli_signal_caught(void); /* the last signal caught, or 0 */
/* The temporary file a crash must remove (copied; NULL: none). */
void cli_signals_set_temp(const char *path);
/* The output an asynchronous signal cancels (sf_output_cancel: a commit not
 * yet at its rename gives up); NULL: none. */
void cli_signals_set_output(sf_output *out);
/* The signal number caught so far, 0 if none, as a flag to poll. */
const volatile sig_atomic_t *cli_signal_flag(void);
/* Called first in a helper thread: gives it the crash handler's alternate
 * stack (sigaltstack is per thread); returns what _end() needs. */
int cli_signals_helper_thread_start(void);
void cli_signals_helper_thread_end(int started);
/* Dies by `sig` (its default action), so a parent sees 128+N. */
void cli_reraise(int sig);

/* Identity checks (cli/outputs.c): no output option may name an input or
 * another output. Each file is (option, path); path "-" is standard output. */
typedef struct cli_file {
    const char *option; /* "-o", "--mem-log", "the query of --template" ... */
    const char *path;
} cli_file;
/* 0 when every output differs from every input and from every other
 * output; else prints the usage error naming both and returns EXIT_USAGE.
 * `partials_dir` (may be NULL): where the template's partials are read. */
int cli_check_files(const char *cmd, const cli_file *inputs, size_t ninputs,
                    const cli_file *outputs, size_t noutputs, const char *partials_dir);
/* 1 when creating `path` (which does not exist; dangling symlinks followed)
 * would make a new file in a kernel file system's directory (/dev and
 * below, /proc, /sys: sf_output_kernel_dir), which every output option
 * refuses; that directory in dir[n]. */
int cli_new_file_forbidden(const char *path, char *dir, size_t n);

#endif
