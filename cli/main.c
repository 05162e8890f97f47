/* main.c: sqlfeed's entry point: the subcommand table and the help. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: sqlfeed render --db PATH (--query SQL | --query-file FILE) --template NAME|FILE\n"
    "                      -o OUT [--compress C] [--level N] [--split-rows N]\n"
    "                      [--split-bytes SIZE] [--index TEMPLATE] [--output T=PATH,...]...\n"
    "                      [--min-rows N] [--max-drop PCT] [--summary-json FILE]\n"
    "                      [--param NAME=VALUE]... [--quiet] [--census]\n"
    "                      [--census-fifo PATH] [--mem-log FILE] [--max-memory SIZE]\n"
    "                      [--progress[=auto|always|never]] [--total N | --count]\n"
    "       sqlfeed render ... -o FEED --shard K/N --shard-key COLUMN [--snapshot ID]\n"
    "       sqlfeed publish -t TEMPLATE -o FEED --shards N [--param NAME=VALUE]...\n"
    "       sqlfeed snapshot --db POSTGRES_URL\n"
    "       sqlfeed templates [--show NAME|NAME.sql]\n"
    "       sqlfeed demo-db --rows N -o FILE [--seed S]\n"
    "       sqlfeed mem-plot LOG -o OUT.svg\n"
    "       sqlfeed --help | --version\n"
    "\n"
    "Streams the rows of a SQL query through a Mustache template into an XML feed,\n"
    "in flat memory, and publishes it atomically.\n"
    "\n"
    "commands:\n"
    "  render      render a feed (sqlfeed render --help for its options)\n"
    "  templates   list the built-in templates and the columns each expects;\n"
    "              --show prints one (or its query) to copy and adapt\n"
    "  demo-db     write a deterministic SQLite demo database of job listings\n"
    "  mem-plot    chart a render's --mem-log: RSS and tracked bytes against rows\n"    "  publish     join the parts of a sharded render (render --shard K/N) into\n"
    "              one feed, checked and published atomically\n"
    "  snapshot    export a PostgreSQL snapshot for shards to share; held until\n"
    "              stdin closes\n"
    "\n"
    "exit status:\n"
    "  0  success               3  template error or a name the query does not provide\n"
    "  1  other failure         4  database error (open, query, a row)\n"
    "  2  usage error           5  output error (create, write, sync, publish)\n"
    "                           6  --max-memory crossed\n"
    "                           7  refused by --min-rows or --max-drop, or publish\n"
    "                              refused its shards; previous kept\n"
    "                           8  another sqlfeed run is writing the same output\n"
    "                           9  a row failed a check or a formatter (--on-invalid\n"
    "                              fail, the default); previous kept\n"
    "  128+N  stopped by signal N (130 SIGINT, 143 SIGTERM, any signal that would\n"
    "         end the process); nothing is published\n";

/* The last message printed, for --summary-json (cut to fit; stderr gets
 * it whole). */
static char last_error[2048];

const char *cli_last_error(void) { return last_error; }

void cli_error(const char *fmt, ...)
{
    va_list ap, copy;
    va_start(ap, fmt);
    va_copy(copy, ap);
    vsnprintf(last_error, sizeof last_error, fmt, copy);
    va_end(copy);
    fputs("sqlfeed: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_exit_for(sf_status st)
{
    switch (st) {
    case SF_OK: return EXIT_OK;
    case SF_ERR_TEMPLATE:
    case SF_ERR_NAME: return EXIT_TEMPLATE;
    case SF_ERR_SOURCE: return EXIT_DATABASE;
    case SF_ERR_OUTPUT: return EXIT_OUTPUT;
    case SF_ERR_ARG: return EXIT_USAGE;
    case SF_ERR_NOMEM:
    case SF_ERR_CANCELLED:
    case SF_ERR_STATE: return EXIT_FAILURE_OTHER;
    case SF_ERR_REFUSED: return EXIT_REFUSED;
    case SF_ERR_BUSY: return EXIT_BUSY;
    case SF_ERR_INVALID: return EXIT_INVALID;
    }
    return EXIT_FAILURE_OTHER;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap, copy;
    va_start(ap, fmt);
    va_copy(copy, ap);
    vsnprintf(last_error, sizeof last_error, fmt, copy);
    va_end(copy);
    fputs("sqlfeed: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'sqlfeed %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
    va_end(ap);
    return EXIT_USAGE;
}

int cli_bad_option(const char *cmd, const char *arg)
{
    /* getopt_long leaves optopt at the option's value when a long option
     * that takes no value got one, and at 0 when it matched none (or more
     * than one: an ambiguous abbreviation). */
    if (strncmp(arg, "--", 2) == 0) {
        const char *eq = strchr(arg, '=');
        if (optopt && eq)
            return cli_usage(cmd, "option '%.*s' takes no value", (int)(eq - arg), arg);
        return cli_usage(cmd, "unknown or ambiguous option '%.*s'",
                         eq ? (int)(eq - arg) : (int)strlen(arg), arg);
    }
    return cli_usage(cmd, "unknown option '-%c'", optopt ? optopt : '?');
}

sf_census *cli_census;
int cli_census_off;

static int dispatch(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(NULL, "no command given: render, publish, snapshot, templates, demo-db or mem-plot");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("sqlfeed %s\n", sf_version());
        return EXIT_OK;
    }
    if (!strcmp(cmd, "render"))
        return cmd_render(argc - 1, argv + 1);
    if (!strcmp(cmd, "templates"))
        return cmd_templates(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo-db"))
        return cmd_demo_db(argc - 1, argv + 1);
    if (!strcmp(cmd, "mem-plot"))
        return cmd_mem_plot(argc - 1, argv + 1);
    if (!strcmp(cmd, "publish"))
        return cmd_publish(argc - 1, argv + 1);
    if (!strcmp(cmd, "snapshot"))
        return cmd_snapshot(argc - 1, argv + 1);
    return cli_usage(NULL, "unknown %s '%s'", cmd[0] == '-' ? "option" : "command", cmd);
}

int main(int argc, char **argv)
{
    /* SIGUSR1 asks a render for its census. Blocked here, before any thread
     * exists, so every thread inherits the mask and the monitor's signalfd
     * receives it: it never kills the process, never runs a handler. */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    cli_census = sf_census_create();
    /* SQLFEED_CENSUS=off leaves SQLite's allocator alone and the render
     * unwatched: only for measuring what the census costs (make bench). */
    const char *off = getenv("SQLFEED_CENSUS");
    cli_census_off = off && strcmp(off, "off") == 0;
    if (!cli_census || (!cli_census_off && cli_route_sqlite(cli_census) != 0)) {
        cli_error("cannot set up the memory census");
        return EXIT_FAILURE_OTHER;
    }
    /* SQLFEED_FAIL_ALLOC_AFTER=N, a testing aid (docs/testing.md): the
     * census's allocations after the first N fail, as when memory runs out. */
    const char *fail = getenv("SQLFEED_FAIL_ALLOC_AFTER");
    if (fail && *fail) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(fail, &end, 10);
        if (errno || *end || *fail < '0' || *fail > '9') {
            cli_error("SQLFEED_FAIL_ALLOC_AFTER must be a number of allocations, got '%s'", fail);
            sf_census_free(cli_census);
            return EXIT_USAGE;
        }
        sf_census_fail_after(cli_census, (uint64_t)n);
    }
    int rc = dispatch(argc, argv);
    if (!cli_census_off)
        cli_unroute_sqlite(); /* SQLite gives back what it holds before the census goes */
    sf_census_free(cli_census);
    return rc;
}
