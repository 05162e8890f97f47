/* misc.c: `sqlfeed templates` (the built-ins, --show) and `sqlfeed demo-db`. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "demo_db.h"
#include "formats.h"

/* The root names the render itself provides (not parameters): the run's
 * time and version, the first row ({{#first}}) and the rows written. */
static int is_builtin_name(const char *name)
{
    return !strcmp(name, "generated_at") || !strcmp(name, "generated_date") ||
           !strcmp(name, "generated_rfc822") || !strcmp(name, "sqlfeed_version") ||
           !strcmp(name, "first") || !strcmp(name, "row_count");
}

/* Where `make install` puts the templates (the Makefile passes its PREFIX). */
#ifndef SF_TEMPLATES_DIR
#define SF_TEMPLATES_DIR "/usr/local/share/sqlfeed/templates"
#endif

/* The backends a built-in's query can be written for, with the suffix of
 * its file (templates/NAME.pg.sql ...). */
static const char *const query_files[][2] = {
    {".sql", "sqlite"}, {".pg.sql", "postgresql"}, {".my.sql", "mysql"}};

/* `sqlfeed templates --show FILE`: FILE is NAME (or NAME.mustache) for the
 * template, NAME.sql, NAME.pg.sql or NAME.my.sql for its query on that
 * backend, as the installed files are named. */
static int show(const char *arg)
{
    size_t n = strlen(arg), len = 0;
    for (size_t k = 3; k-- > 0;) { /* the longest suffix first: .pg.sql before .sql */
        size_t sl = strlen(query_files[k][0]);
        if (n <= sl || strcmp(arg + n - sl, query_files[k][0]) != 0)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - sl), arg);
        if (!sf_builtin_template_text(name, NULL))
            break;
        const char *q = sf_builtin_template_query_for(name, query_files[k][1]);
        if (!q) {
            cli_error("built-in %s has no query of its own: give --query", name);
            return EXIT_USAGE;
        }
        fputs(q, stdout);
        return ferror(stdout) ? EXIT_FAILURE_OTHER : EXIT_OK;
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s",
             (int)(n > 9 && !strcmp(arg + n - 9, ".mustache") ? n - 9 : n), arg);
    const char *text = sf_builtin_template_text(name, &len);
    if (!text)
        return cli_usage("templates", "no built-in template '%s' (sqlfeed templates lists them)",
                         arg);
    fwrite(text, 1, len, stdout);
    return ferror(stdout) ? EXIT_FAILURE_OTHER : EXIT_OK;
}

int cmd_templates(int argc, char **argv)
{
    if (argc > 1) {
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            puts("usage: sqlfeed templates [--show NAME|NAME.sql|NAME.pg.sql|NAME.my.sql]\n\n"
                 "Lists the built-in templates: what each writes, the columns its query must\n"
                 "provide, the parameters it reads, the rows it checks, the defaults of its\n"
                 "format (limits, compression, index) and its own queries, and where the\n"
                 "installed copies are.\n"
                 "  --show NAME         prints the template, to copy and adapt\n"
                 "  --show NAME.sql     prints its query (SQLite, and every backend when it\n"
                 "                      has no other); NAME.pg.sql PostgreSQL's, NAME.my.sql\n"
                 "                      MySQL/MariaDB's (the one --db picks)");
            return EXIT_OK;
        }
        if (!strcmp(argv[1], "--show")) {
            if (argc < 3)
                return cli_usage("templates", "--show needs a template name");
            if (argc > 3)
                return cli_usage("templates", "unexpected argument '%s'", argv[3]);
            return show(argv[2]);
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
        size_t len = 0;
        const char *text = sf_builtin_template_text(name, &len);
        printf("%s\n  %s\n  columns:", name, sf_template_description(t));
        size_t nc = 0;
        for (size_t k = 0; k < sf_template_row_name_count(t); k++)
            printf("%s %s", nc++ ? "," : "", sf_template_row_name(t, k));
        int np = 0;
        for (size_t k = 0; k < sf_template_root_name_count(t); k++) {
            const char *p = sf_template_root_name(t, k);
            if (!is_builtin_name(p))
                printf("%s %s", np++ ? "," : "\n  parameters:", p);
        }
        char c[1024];
        if (cli_format_comment(text, len, "sqlfeed-check", c, sizeof c))
            printf("\n  checks: %s", c);
        if (cli_format_comment(text, len, "sqlfeed-defaults", c, sizeof c))
            printf("\n  defaults: %s", c);
        const char *q = sf_builtin_template_query(name);
        int per_backend = 0;
        for (size_t k = 1; q && k < 3; k++)
            per_backend |= sf_builtin_template_query_for(name, query_files[k][1]) != q;
        if (!q)
            printf("\n  query: none; give --query");
        else
            printf("\n  query: its own%s, used when --query is not given (--show %s.sql",
                   per_backend ? " for each backend" : "", name);
        for (size_t k = 1; per_backend && k < 3; k++)
            if (sf_builtin_template_query_for(name, query_files[k][1]) != q)
                printf(", %s%s", name, query_files[k][0]);
        printf("%s\n\n", q ? ")" : "");
    }
    printf("Installed copies (make install): %s\n"
           "sqlfeed templates --show NAME prints one; --show NAME.sql its query.\n",
           SF_TEMPLATES_DIR);
    sf_template_free(t);
    return rc;
}

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
                 "job rows of realistic text, with the tables the built-in formats read:\n"
                 "locations (1-3 per job), products (N/10, at least 100) and their images\n"
                 "(0-12 each). The same N and seed give the same file.\n"
                 "FILE is published like a feed: written to a temporary file beside it and\n"
                 "renamed over it when complete; on any failure or signal FILE is left as it\n"
                 "was (a signal: exit 128+N). Never a new file in /dev, /proc or /sys; a\n"
                 "descriptor, device or FIFO is refused (a database cannot be streamed).");
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
    struct stat sb;
    if (stat(out, &sb) == 0 && !S_ISREG(sb.st_mode))
        return cli_usage("demo-db", "-o %s is a %s: a database is a file, it cannot be "
                                    "streamed", out,
                         S_ISDIR(sb.st_mode) ? "directory" : S_ISFIFO(sb.st_mode) ? "FIFO"
                                                                                   : "device");
    /* Published like a feed (the library's file output): a temporary file
     * beside OUT, renamed over it when complete and synced; never in /dev,
     * /proc or /sys; any name the file system takes; every signal that
     * would end the process removes the temporary file (cli/signals.c). */
    cli_signals_install(NULL);
    sf_output *o = sf_output_create(cli_census);
    if (!o) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    int rc = EXIT_OK;
    char err[512] = "";
    sf_status st = sf_output_open_file(o, out);
    const char *tmp = st == SF_OK ? sf_output_temp_path(o) : NULL;
    if (st != SF_OK) {
        cli_error("demo-db: %s", sf_output_errmsg(o));
        rc = cli_exit_for(st);
    } else if (!tmp) { /* a descriptor (/dev/stdout): nothing to rename into place */
        sf_output_abort(o);
        rc = cli_usage("demo-db", "-o %s names a descriptor: a database is a file, it cannot "
                                  "be streamed", out);
    }
    if (rc != EXIT_OK) {
        sf_output_free(o);
        return rc;
    }
    cli_signals_set_temp(tmp); /* a crash removes it */
    cli_signals_set_output(o); /* a signal stops the commit before its rename */
    st = cli_signal_caught() ? SF_ERR_CANCELLED
                             : demo_db_write(tmp, out, rows, seed, cli_signal_flag(), err,
                                             sizeof err);
    if (st == SF_OK && !cli_signal_caught()) {
        st = sf_output_commit(o);
        if (st != SF_OK && st != SF_ERR_CANCELLED)
            snprintf(err, sizeof err, "%s", sf_output_errmsg(o));
    }
    int published = sf_output_published(o);
    if (!published)
        sf_output_abort(o);
    cli_signals_set_temp(NULL);
    cli_signals_set_output(NULL);
    sf_output_free(o);
    int sig = cli_signal_caught();
    if (sig && !published) {
        cli_error("stopped by signal %d (%s); nothing published, %s left as it was", sig,
                  strsignal(sig), out);
        cli_reraise(sig);
        return 128 + sig;
    }
    if (st != SF_OK) {
        if (published) /* only the directory sync failed */
            cli_error("demo-db: %s is published, but %s", out, err);
        else
            cli_error("demo-db: %s; nothing published, %s left as it was", err, out);
        return cli_exit_for(st) == EXIT_DATABASE ? EXIT_OUTPUT : cli_exit_for(st);
    }
    fprintf(stderr, "sqlfeed: wrote %llu job rows to %s\n", rows, out);
    if (sig) /* after the rename: too late to stop, the database is whole */
        cli_error("signal %d (%s) arrived after %s was published; finished normally", sig,
                  strsignal(sig), out);
    return EXIT_OK;
}
