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
    EXIT_BUSY = 8,          /* another run holds the output's lock */
    EXIT_INVALID = 9        /* a row failed a check or a formatter (--on-invalid fail) */
    /* 128 + N: stopped by signal N (130 SIGINT, 143 SIGTERM) before the
     * rename; nothing published. A signal after it: exit 0, said. */
};

int cmd_render(int argc, char **argv);
int cmd_templates(int argc, char **argv);
int cmd_demo_db(int argc, char **argv);
int cmd_mem_plot(int argc, char **argv);
int cmd_publish(int argc, char **argv);  /* cli/shards.c */
int cmd_snapshot(int argc, char **argv); /* cli/shards.c */

/* Loads --template NAME|FILE (cli/render.c); *query: its own query when
 * query_path is given (malloc'd, or NULL). An exit status, printed. */
int cli_load_template(sf_template *tpl, const char *arg, const char *query_path, char **query);
/* --param NAME=VALUE into r (cmd names the command in a usage error), and
 * SOURCE_DATE_EPOCH as r's time: exit statuses, printed. */
int cli_set_param(sf_render *r, char *arg, const char *cmd);
int cli_source_date_epoch(sf_render *r);
/* The file --template ARG names, or NULL for a built-in. */
const char *cli_template_file(const char *arg);

/* The census every allocation of the command is counted in, SQLite's too
 * (routed by cli_route_sqlite, which must run before SQLite is used). */
extern sf_census *cli_census;
extern int cli_census_off; /* SQLFEED_CENSUS=off: no SQLite routing, no monitor */
int cli_route_sqlite(sf_census *census);
void cli_unroute_sqlite(void);

/* Prints "sqlfeed: " + message to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last message cli_error() or cli_usage() printed ("" if none), for
 * --summary-json. */
const char *cli_last_error(void);
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
/* Outputs and temporary files the handlers know of, at most this many. */
#define CLI_MAX_SIGNAL_FILES 40
/* The source a signal cancels too (sf_source_cancel): it may be connecting
 * or preparing, before the render runs. Forgotten with the render. */
void cli_signals_watch_source(sf_source *s);
void cli_signals_forget_render(void);
void cli_signal_set(sigset_t *set);
int cli_signal_caught(void); /* the last signal caught, or 0 */
/* The temporary file a crash must remove (copied; NULL: none). */
void cli_signals_set_temp(const char *path);
/* Another file a crash removes (kept with the others): a temporary file,
 * an output's lock file. NULL: none. */
void cli_signals_add_temp(const char *path);
/* The output an asynchronous signal cancels (sf_output_cancel: a commit not
 * yet at its rename gives up); NULL: none. set_output replaces the list with
 * `out`; add_output adds one more (every output of a run: -1 when full). */
void cli_signals_set_output(sf_output *out);
int cli_signals_add_output(sf_output *out);
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


/* ---- Outputs of a render (cli/opts.c) ------------------------------------
 * One document to write from the scan: the first from -o/--template and the
 * options that go with them, each further one from --output SPEC. Strings
 * are malloc'd copies (cli_output_clear frees them). */
typedef struct cli_output {
    char *option;      /* how messages name it: "-o" or "--output #2" */
    char *template;    /* --template NAME|FILE */
    char *path;        /* the document, or with an index the index; "-": stdout */
    char *compress;    /* auto (NULL), none, gzip, zstd */
    char *level;       /* N or best; NULL: the codec's default */
    char *split_rows;  /* decimal rows, NULL: no limit */
    char *split_bytes; /* decimal bytes, NULL: no limit */
    char *parts;       /* the parts' pattern: given, or derived by cli_output_resolve */
    char *index;       /* the index's template, NULL: none */
    char *base_url;    /* the index's URL prefix */
    char *lastmod;     /* the column whose largest value per part is the index's lastmod */
    int parts_given;   /* --parts / parts= was given (not derived) */
    /* The run's handles (cli/render.c). */
    sf_template *tpl, *itpl;
    sf_output *out, *iout;
    int opened, iopened;
} cli_output;

/* Sets one key of an output (the names of --output SPEC: compress, level,
 * split-rows, split-bytes, parts, index, base-url, lastmod; and template,
 * path). `how` names the option in messages ("--compress", "compress= of
 * --output #2"). A key set twice to different values is a usage error.
 * Returns EXIT_OK, EXIT_USAGE (printed) or EXIT_FAILURE_OTHER (no memory). */
int cli_output_set(cli_output *o, const char *key, const char *value, const char *how);
/* Parses --output TEMPLATE=PATH[,key=value...] (a backslash makes the next
 * character literal: "\," "\=" "\\") into a cleared `o`; n numbers it. */
int cli_output_parse(cli_output *o, const char *spec, int n);
/* Checks an output's options together and derives what they imply (the
 * parts' pattern). EXIT_OK or EXIT_USAGE (printed). */
int cli_output_resolve(cli_output *o);
/* Whether any per-output option (not template, path) was set. */
int cli_output_has_options(const cli_output *o);
/* The codec that writes o's document(s): "none", "gzip" or "zstd". */
const char *cli_output_codec(const cli_output *o);
void cli_output_clear(cli_output *o);
/* 1 when `pattern` has a %d / %0Nd (0 with why set otherwise); checks the
 * rest: no conversion in the directory, one number, %r exactly when
 * with_tag, no other %. */
int cli_pattern_check(const char *pattern, int with_tag, char *why, size_t n);

/* Name-level checks (cli/outputs.c): beside what cli_check_files compares
 * (existing files by identity), an output may be a pattern (parts), and a
 * file output has companions in its directory: its temporary files, its
 * lock and its state record (.NAME.sqlfeed*: docs/sink.md; for a set, also
 * named after the pattern as written), which a run creates, and
 * removes when a killed run left them. No input may be one of those names,
 * and no two outputs' names may meet (a name one could write that the other
 * could write or remove). Directories are compared by identity. */
enum {
    CLI_NAME_PLAIN = 0,   /* a file written in place (--mem-log): its name only */
    CLI_NAME_FILE = 1,    /* a file published atomically: its name and .NAME.sqlfeed* */
    CLI_NAME_PATTERN = 2  /* a pattern (%d, %0Nd, %r) of parts, each a CLI_NAME_FILE */
};
typedef struct cli_name {
    const char *option;
    const char *path;
    int kind;
} cli_name;
int cli_check_names(const char *cmd, const cli_file *inputs, size_t ninputs,
                    const cli_name *outputs, size_t noutputs);
/* After cli_check_files() or cli_check_names() failed: the indexes of the
 * output(s) it named in its `outputs`; *b is -1 when the other was an input
 * (a program can tell whether a file of its own, a report, is at fault). */
void cli_check_culprits(long *a, long *b);

#endif
