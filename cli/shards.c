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
#include "formats.h"

static const char publish_usage[] =
    "usage: sqlfeed publish -t TEMPLATE -o FEED --shards N [--shard-dir DIR]\n"
    "                       [--index TEMPLATE --base-url URL [--parts PATTERN]]\n"
    "                       [--no-defaults] [--run ID] [--min-rows N] [--max-drop PCT]\n"
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
    "  --index TEMPLATE     the shards were split (--split-rows, --split-bytes, or the\n"
    "                       format's defaults: sitemap): their parts, in shard order,\n"
    "                       become one set, and -o is the index over them, rendered by\n"
    "                       TEMPLATE (part, name, url, row_count, bytes, lastmod: the\n"
    "                       parts' --lastmod values); published as render publishes a\n"
    "                       set: parts, then the index, then the earlier run's parts\n"
    "                       removed. Default: the format's index (sitemap-index)\n"
    "  --base-url URL       the parts' URL prefix, for the index's url\n"
    "  --parts PATTERN      the parts' names (one %d or %0Nd and one %r); default from\n"
    "                       -o: sitemap.xml -> sitemap-%r-%04d.xml.gz\n"
    "  --no-defaults        the format's defaults (its index) do not apply\n"
    "  --min-rows N         publish nothing (exit 7) when the shards wrote fewer rows\n"
    "  --max-drop PCT       publish nothing (exit 7) when they wrote fewer than the\n"
    "                       previous published feed (its .NAME.sqlfeed.state) by more\n"
    "                       than PCT percent: the rails render has, for the whole feed\n"
    "  --run ID             only shards rendered with --run ID (every shard must have\n"
    "                       the same run in any case): an earlier build's shard, left\n"
    "                       by a failed re-render, is refused\n"
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

/* The codec of the shards' parts, from the first manifest ("compress"),
 * or "" when it cannot be read (publish then says what is wrong). */
static void shards_codec(const char *dir, unsigned n, char codec[16])
{
    char path[4400], line[256];
    codec[0] = '\0';
    if ((size_t)snprintf(path, sizeof path, "%s/1-of-%u.json", dir, n) >= sizeof path)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "\"compress\": \"%15[a-z]\"", codec) == 1)
            break;
    fclose(f);
}

/* With --index (or a format whose defaults have one): the set's names.
 * co gets template, path (the index), compress (the shards'), and the
 * derived parts pattern. EXIT_OK, or an exit status (printed). */
static int split_set(cli_output *co, const char *tname, const char *feed, const char *dir,
                     unsigned shards, int no_defaults)
{
    int rc;
    if ((rc = cli_output_set(co, "template", tname, "--template")) != EXIT_OK ||
        (rc = cli_output_set(co, "path", feed, "-o")) != EXIT_OK)
        return rc;
    char codec[16];
    shards_codec(dir, shards, codec);
    if (codec[0] && (rc = cli_output_set(co, "compress", codec, "the shards' compression")) !=
                        EXIT_OK)
        return rc;
    /* A stand-in split: the parts are the shards', whatever their size. */
    if ((rc = cli_output_set(co, "split-rows", "1", "the shards' split")) != EXIT_OK)
        return rc;
    if (!no_defaults && !co->index &&
        (rc = cli_format_defaults(co, cli_template_file(tname))) != EXIT_OK)
        return rc;
    if (!co->index) {
        if (co->parts || co->base_url)
            return cli_usage("publish", "--parts and --base-url go with --index (split shards)");
        return EXIT_OK;
    }
    free(co->lastmod); /* the lastmod values are the shards' */
    co->lastmod = NULL;
    if (!(co->option = strdup("-o"))) {
        cli_error("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    return cli_output_resolve(co);
}

int cmd_publish(int argc, char **argv)
{
    enum { OPT_SHARDS = 256, OPT_SHARD_DIR, OPT_PARAM, OPT_INDEX, OPT_BASE_URL, OPT_PARTS,
           OPT_NO_DEFAULTS, OPT_RUN, OPT_MIN_ROWS, OPT_MAX_DROP };
    static const struct option longopts[] = {
        {"base-url", required_argument, NULL, OPT_BASE_URL},
        {"help", no_argument, NULL, 'h'},
        {"index", required_argument, NULL, OPT_INDEX},
        {"max-drop", required_argument, NULL, OPT_MAX_DROP},
        {"min-rows", required_argument, NULL, OPT_MIN_ROWS},
        {"no-defaults", no_argument, NULL, OPT_NO_DEFAULTS},
        {"param", required_argument, NULL, OPT_PARAM},
        {"parts", required_argument, NULL, OPT_PARTS},
        {"quiet", no_argument, NULL, 'q'},
        {"run", required_argument, NULL, OPT_RUN},
        {"shard-dir", required_argument, NULL, OPT_SHARD_DIR},
        {"shards", required_argument, NULL, OPT_SHARDS},
        {"template", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *tname = NULL, *feed = NULL, *dir = NULL;
    unsigned shards = 0;
    int quiet = 0, c, rc = EXIT_USAGE, no_defaults = 0;
    cli_output co = {0};
    sf_template *itpl = NULL;
    sf_output *parts = NULL, *index = NULL;
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
        case OPT_NO_DEFAULTS: no_defaults = 1; break;
        case OPT_MIN_ROWS:
        case OPT_MAX_DROP:
        case OPT_RUN: {
            const char *name = c == OPT_RUN ? "shard_run" : c == OPT_MIN_ROWS ? "min_rows"
                                                                            : "max_drop";
            sf_status rs = sf_render_set_option(r, name, optarg);
            if (rs != SF_OK) {
                rc = rs == SF_ERR_NOMEM ? (cli_error("out of memory"), EXIT_FAILURE_OTHER)
                                        : cli_usage("publish", "%s: %s", argv[optind - 1],
                                                    sf_render_errmsg(r));
                goto done;
            }
            break;
        }
        case OPT_INDEX:
        case OPT_BASE_URL:
        case OPT_PARTS:
            if ((rc = cli_output_set(&co, c == OPT_INDEX ? "index" : c == OPT_PARTS ? "parts"
                                                                                : "base-url",
                                     optarg, c == OPT_INDEX ? "--index" : c == OPT_PARTS
                                                                          ? "--parts"
                                                                          : "--base-url")) !=
                EXIT_OK)
                goto done;
            rc = EXIT_USAGE;
            break;
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
        case OPT_PARAM:
            if ((rc = cli_set_param(r, optarg, "publish")) != EXIT_OK)
                goto done;
            break;
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
    if ((rc = cli_source_date_epoch(r)) != EXIT_OK)
        goto done;
    char *q = NULL;
    if ((rc = cli_load_template(tpl, tname, NULL, &q)) != EXIT_OK)
        goto done;
    free(q);
    /* Split shards: -o is the index over their parts (--index, or the
     * format's: sitemap's sitemap-index), named as render names a set's. */
    if ((rc = split_set(&co, tname, feed, dir, shards, no_defaults)) != EXIT_OK)
        goto done;
    if (co.index) {
        if (!(itpl = sf_template_create(cli_census, SF_TEMPLATE_XML)) ||
            !(parts = sf_output_create(cli_census)) || !(index = sf_output_create(cli_census))) {
            cli_error("out of memory");
            rc = EXIT_FAILURE_OTHER;
            goto done;
        }
        if ((rc = cli_load_template(itpl, co.index, NULL, &q)) != EXIT_OK)
            goto done;
        free(q);
        for (size_t k = 0; !co.base_url && k < sf_template_row_name_count(itpl); k++)
            if (!strcmp(sf_template_row_name(itpl, k), "url")) {
                rc = cli_usage("publish", "the index template %s reads url (each part's absolute "
                                          "URL): give --base-url URL, where the parts will be "
                                          "served", co.index);
                goto done;
            }
        sf_status ost = sf_output_set_option(parts, "compress", "none");
        if (ost == SF_OK)
            ost = sf_output_open_parts(parts, co.parts);
        if (ost != SF_OK) {
            cli_error("publish: %s", sf_output_errmsg(parts));
            rc = cli_exit_for(ost);
            goto done;
        }
        if ((ost = sf_output_open_file(index, feed)) != SF_OK) {
            cli_error("publish: %s", sf_output_errmsg(index));
            rc = cli_exit_for(ost);
            goto done;
        }
    }
    cli_signals_install(r); /* a signal cancels the join: nothing published */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sf_status st = co.index ? sf_render_publish_shard_parts(r, tpl, itpl, dir, shards, parts,
                                                            index, co.base_url)
                            : sf_render_publish_shards(r, tpl, dir, shards, feed);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cli_signals_forget_render();
    if (st != SF_OK) {
        int sig = cli_signal_caught();
        cli_error("publish %s: %s", feed, sf_render_errmsg(r));
        rc = st == SF_ERR_CANCELLED && sig ? 128 + sig : cli_exit_for(st);
        goto done;
    }
    if (!quiet && co.index)
        fprintf(stderr, "sqlfeed: %llu rows in %zu parts from %u shard%s in %.2f s -> %s "
                        "(index of %s)\n",
                (unsigned long long)sf_render_rows(r), sf_output_part_count(parts), shards,
                shards == 1 ? "" : "s",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, feed,
                co.parts);
    else if (!quiet)
        fprintf(stderr, "sqlfeed: %llu rows from %u shard%s in %.2f s -> %s\n",
                (unsigned long long)sf_render_rows(r), shards, shards == 1 ? "" : "s",
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, feed);
    rc = EXIT_OK;
done:
    sf_output_free(parts);
    sf_output_free(index);
    sf_template_free(itpl);
    cli_output_clear(&co);
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
