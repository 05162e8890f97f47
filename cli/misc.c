/* misc.c: `sqlfeed templates` and `sqlfeed demo-db`. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "demo_db.h"

static int is_builtin_name(const char *name)
{
    return !strcmp(name, "generated_at") || !strcmp(name, "generated_date") ||
           !strcmp(name, "generated_rfc822") || !strcmp(name, "sqlfeed_version");
}

int cmd_templates(int argc, char **argv)
{
    if (argc > 1) {
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            puts("usage: sqlfeed templates\n\nLists the built-in templates: what each "
                 "writes, the columns its query must\nprovide, the parameters it reads, "
                 "and whether it carries its own query.");
            return EXIT_OK;
        }
        return cli_usage("templates", "unexpected argument '%s'", argv[1]);
    }
    sf_template *t = sf_template_create(NULL, SF_TEMPLATE_XML);
    if (!t) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    int rc = EXIT_OK;
    for (size_t i = 0; sf_builtin_template_name(i); i++) {
        const char *name = sf_builtin_template_name(i);
        if (sf_template_load_builtin(t, name) != SF_OK) {
            cli_error("built-in %s: %s", name, sf_template_errmsg(t));
            rc = EXIT_TEMPLATE;
            continue;
        }
        printf("%s\n  %s\n  columns:", name, sf_template_description(t));
        for (size_t k = 0; k < sf_template_row_name_count(t); k++)
            printf("%s %s", k ? "," : "", sf_template_row_name(t, k));
        int np = 0;
        for (size_t k = 0; k < sf_template_root_name_count(t); k++) {
            const char *p = sf_template_root_name(t, k);
            if (!is_builtin_name(p))
                printf("%s %s", np++ ? "," : "\n  parameters:", p);
        }
        printf("\n  query: %s\n\n", sf_builtin_template_query(name)
                                        ? "built in (used when --query is not given)"
                                        : "none; give --query");
    }
    sf_template_free(t);
    return rc;
}

static volatile sig_atomic_t demo_signal;
static void on_demo_signal(int sig) { demo_signal = sig; }

int cmd_demo_db(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"output", required_argument, NULL, 'o'},
        {"rows", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *rows_arg = NULL, *seed_arg = "1";
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'r': rows_arg = optarg; break;
        case 's': seed_arg = optarg; break;
        case 'h':
            puts("usage: sqlfeed demo-db --rows N -o FILE [--seed S]\n\n"
                 "Writes a SQLite database with the job-board schema (jobs, companies) and N\n"
                 "job rows of realistic text: the same N and seed give the same file.\n"
                 "FILE is replaced atomically.");
            return EXIT_OK;
        case ':':
            return cli_usage("demo-db", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_bad_option("demo-db", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("demo-db", "unexpected argument '%s'", argv[optind]);
    if (!out || !rows_arg)
        return cli_usage("demo-db", "missing %s", !rows_arg ? "--rows" : "-o");
    char *end;
    errno = 0;
    unsigned long long rows = strtoull(rows_arg, &end, 10);
    if (errno || *end || !*rows_arg || rows_arg[0] == '-')
        return cli_usage("demo-db", "--rows needs a whole number, got '%s'", rows_arg);
    unsigned long long seed = strtoull(seed_arg, &end, 10);
    if (errno || *end || !*seed_arg || seed_arg[0] == '-')
        return cli_usage("demo-db", "--seed needs a whole number, got '%s'", seed_arg);
    if (!strcmp(out, "-"))
        return cli_usage("demo-db", "demo-db writes a database file; -o - is not possible");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_demo_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    char err[512];
    sf_status st = demo_db_write(out, rows, seed, &demo_signal, err, sizeof err);
    if (demo_signal) {
        cli_error("stopped by signal %d (%s); %s not written", (int)demo_signal,
                  strsignal(demo_signal), out);
        signal(demo_signal, SIG_DFL);
        raise(demo_signal);
        return 128 + demo_signal;
    }
    if (st != SF_OK) {
        cli_error("%s", err);
        return cli_exit_for(st) == EXIT_DATABASE ? EXIT_OUTPUT : cli_exit_for(st);
    }
    fprintf(stderr, "sqlfeed: wrote %llu job rows to %s\n", rows, out);
    return EXIT_OK;
}
