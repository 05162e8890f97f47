/* cli.h: the sqlfeed command's own pieces. The CLI uses only the library's
 * public header, sqlfeed.h. */
#ifndef SQLFEED_CLI_H
#define SQLFEED_CLI_H

#include "sqlfeed.h"

/* Exit statuses (documented in README.md and sqlfeed --help). */
enum {
    EXIT_OK = 0,
    EXIT_FAILURE_OTHER = 1, /* out of memory, internal error */
    EXIT_USAGE = 2,         /* bad options or arguments */
    EXIT_TEMPLATE = 3,      /* template syntax, missing partial, names not provided */
    EXIT_DATABASE = 4,      /* database open, query or row failure */
    EXIT_OUTPUT = 5,        /* creating, writing, syncing or publishing the output */
    EXIT_MEMORY = 6         /* --max-memory crossed; nothing published */
    /* 128 + N: stopped by signal N (130 SIGINT, 143 SIGTERM); nothing published */
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

#endif
