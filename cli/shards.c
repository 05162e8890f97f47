/* shards.c: `sqlfeed publish` (join the parts of a sharded render into one
 * feed) and `sqlfeed snapshot` (export a PostgreSQL snapshot for the shards
 * to share, held until stdin closes). docs/shards.md. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char publish_usage[] =
    "usage: sqlfeed publish -t TEMPLATE -o FEED --shards N [--shard-dir DIR]\n"
    "                       [--param NAME=VALUE]... [--quiet]\n"
    "\n"
    "Joins the parts that `sqlfeed render --shard K/N` wrote into one feed, FEED,\n"
    "published atomically: the head and tail of TEMPLATE (rendered now, row_count\n"
    "the total), around the parts copied byte for byte in shard order (gzip members\n"
    "and zstd frames concatenate: the head and tail are compressed as the parts).\n"
    "\n"
    "  -t, --template NAME|FILE  the shards' template (checked: the same text)\n"
    "  -o FEED              the feed (the shards' -o)\n"
    "  --shards N           how many shards the render was cut into\n"
    "  --shard-dir DIR      where the parts are (default: FEED.shards, as render's)\n"
    "  --param NAME=VALUE   the shards' parameters, all of them (checked: the same)\n"
    "  -q, --quiet          no summary on stderr\n"
    "  -h, --help           this help\n"
    "\n"
    "Checks first, and refuses (exit 7, naming the shard; FEED untouched): a\n"
    "missing manifest or part (DIR/K-of-N.json, DIR/K-of-N.part), a manifest of\n"
    "another split in DIR, shards that disagree (boundaries, total rows, template,\n"
    "query, parameters, compression, snapshot: the data changed between them),\n"
    "rows that do not add up to the query's total, a part whose size or CRC-32 is\n"
    "not its manifest's, another template or other --param values than the\n"
    "shards'. The feed's generated_* time is the first shard's (SOURCE_DATE_EPOCH\n"
    "overrides it): publishing twice gives the same file. A template that reads\n"
    "{{#first}} cannot be sharded (exit 3).\n"
    "exit status: 0 published; 2 usage; 3 template; 5 output; 7 refused;\n"
    "8 another run holds FEED's lock; 128+N signal N (nothing published).\n";

static const char snapshot_usage[] =
    "usage: sqlfeed snapshot --db POSTGRES_URL\n"
    "\n"
    "Begins a REPEATABLE READ transaction on PostgreSQL, prints its exported\n"
    "snapshot's id (pg_export_snapshot()) and a newline on stdout, and holds the\n"
    "transaction open until stdin reaches end-of-file (or SIGINT, SIGTERM), so that\n"
    "`sqlfeed render --shard K/N --snapshot ID` runs read the same data. Keep it open\n"
    "until every shard has finished: a shard retried later imports the id again.\n"
    "  --db URL             as render's --db (PGPASSWORD, ~/.pgpass honoured)\n"
    "  -h, --help           this help\n"
    "exit status: 0 held until end-of-file; 2 usage; 4 database; 128+N signal N.\n";

int cmd_publish(int argc, char **argv)
{
    enum { OPT_SHARDS = 256, OPT_SHARD_DIR, OPT_PARAM };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"param", required_argument, NULL, OPT_PARAM},
        {"quiet", no_argument, NULL, 'q'},
        {"shard-dir", required_argument, NULL, OPT_SHARD_DIR},
        {"shards", required_argument, NULL, OPT_SHARDS},
        {"template", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *tname = NULL, *feed = NULL, *dir = NULL;
    unsigned shards = 0;
    int quiet = 0, c, rc = EXIT_USAGE;
    char dirbuf[4200];
    sf_render *r = sf_render_create(cli_census);
    sf_template *tpl = sf_template_create(cli_census, SF_TEMPLATE_XML);
    if (!r || !tpl) {
        cli_error("out of memory");
        rc = EXIT_FAILURE_OTHER;
        goto done;
    }
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ho:qt:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(publish_usage, stdout);
            rc = EXIT_OK;
            goto done;
        case 'o': feed = optarg; break;
        case 't': tname = optarg; break;
        case 'q': quiet = 1; break;
        case OPT_SHARD_DIR: dir = optarg; break;
        case OPT_SHARDS: {
            char *end;
            errno = 0;
            unsigned long n = strtoul(optarg, &end, 10);
            if (errno || *end || optarg[0] < '1' || optarg[0] > '9' || n > 1024) {
                rc = cli_usage("publish", "--shards takes a number from 1 to 1024, got '%s'",
                               optarg);
                goto done;
            }
            shards = (unsigned)n;
            break;
        }
        case OPT_PARAM: {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                rc = cli_usage("publish", "--param needs NAME=VALUE, got '%s'", optarg);
                goto done;
            }
            *eq = '\0';
            sf_status st = sf_render_set_param(r, optarg, eq + 1);
            *eq = '=';
            if (st != SF_OK) {
                rc = st == SF_ERR_NOMEM ? (cli_error("out of memory"), EXIT_FAILURE_OTHER)
                                        : cli_usage("publish", "--param: %s", sf_render_errmsg(r));
                goto done;
            }
            break;
        }
        case ':':
            rc = cli_usage("publish", "option '%s' needs a value", argv[optind - 1]);
            goto done;
        default:
            rc = cli_bad_option("publish", argv[optind - 1]);
            goto done;
        }
    }
    if (optind < argc) {
        rc = cli_usage("publish", "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    if (!tname || !feed || !shards) {
        rc = cli_usage("publish", "missing %s", !tname ? "--template" : !feed ? "-o" : "--shards N");
        goto done;
    }
    if (!strcmp(feed, "-") || sf_output_names_descriptor(feed)) {
        rc = cli_usage("publish", "-o names the feed file to publish, not a descriptor");
        goto done;
    }
    if (!dir) {
        if ((size_t)snprintf(dirbuf, sizeof dirbuf, "%s.shards", feed) >= sizeof dirbuf) {
            rc = cli_usage("publish", "-o: name too long");
            goto done;
        }
        dir = dirbuf;
    }
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        errno = 0;
        long long t = strtoll(sde, &end, 10);
        if (errno || *end || t < 0 || t > 253402300799LL) {
            cli_error("SOURCE_DATE_EPOCH must be seconds since 1970 (up to year 9999), got '%s'",
                      sde);
            goto done;
        }
        sf_render_set_time(r, (int64_t)t);
    }
    char *q = NULL;
    if ((rc = cli_load_template(tpl, tname, NULL, &q)) != EXIT_OK)
        goto done;
    free(q);
    cli_signals_install(r); /* a signal cancels the join: nothing published */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sf_status st = sf_render_publish_shards(r, tpl, dir, shards, feed);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cli_signals_forget_render();
    if (st != SF_OK) {
        int sig = cli_signal_caught();
        cli_error("publish %s: %s", feed, sf_render_errmsg(r));
        rc = st == SF_ERR_CANCELLED && sig ? 128 + sig : cli_exit_for(st);
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "sqlfeed: %llu rows from %u shard%s in %.2f s -> %s\n",
                (unsigned long long)sf_render_rows(r), shards, shards == 1 ? "" : "s",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, feed);
    rc = EXIT_OK;
done:
    sf_template_free(tpl);
    sf_render_free(r);
    if (rc >= 128)
        cli_reraise(rc - 128);
    return rc;
}

int cmd_snapshot(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *db = NULL;
    int c, rc = EXIT_USAGE;
    sf_source *src = NULL;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(snapshot_usage, stdout);
            rc = EXIT_OK;
            goto done;
        case 'd':
            free(db);
            if (!(db = strdup(optarg))) {
                cli_error("out of memory");
                rc = EXIT_FAILURE_OTHER;
                goto done;
            }
            if (sf_db_hide_secrets(optarg))
                prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
            break;
        case ':':
            rc = cli_usage("snapshot", "option '%s' needs a value", argv[optind - 1]);
            goto done;
        default:
            rc = cli_bad_option("snapshot", argv[optind - 1]);
            goto done;
        }
    }
    if (optind < argc) {
        rc = cli_usage("snapshot", "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    if (!db) {
        rc = cli_usage("snapshot", "missing --db");
        goto done;
    }
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* libpq keeps the password */
    if (!(src = sf_source_create(cli_census))) {
        cli_error("out of memory");
        rc = EXIT_FAILURE_OTHER;
        goto done;
    }
    char id[128];
    sf_status st = sf_source_open(src, db);
    explicit_bzero(db, strlen(db));
    if (st == SF_OK)
        st = sf_source_export_snapshot(src, id, sizeof id);
    if (st != SF_OK) {
        cli_error("snapshot: %s", sf_source_errmsg(src));
        rc = st == SF_ERR_ARG ? EXIT_USAGE : cli_exit_for(st);
        goto done;
    }
    printf("%s\n", id);
    if (fflush(stdout) != 0) {
        cli_error("snapshot: writing the id: %s", strerror(errno));
        rc = EXIT_OUTPUT;
        goto done;
    }
    /* Hold the transaction until stdin ends (the signals' default actions
     * end the process, and the server ends the transaction with it). */
    char buf[512];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    rc = EXIT_OK;
done:
    sf_source_free(src);
    free(db);
    return rc;
}
