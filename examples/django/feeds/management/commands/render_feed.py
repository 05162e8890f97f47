"""manage.py render_feed: renders a feed with sqlfeed from one of the
project's DATABASES aliases.

    ./manage.py render_feed --template simplyhired -o /srv/www/feeds/jobs.xml
    ./manage.py render_feed --database replica --template rss -o rss.xml \\
        --param channel_title=Jobs --param channel_link=https://jobs.example/ ...

The alias becomes sqlfeed's --db string with sqlfeed.database_url(); the
password goes into this process's environment (PGPASSWORD or MYSQL_PWD) for
the client library to read, never into the URL or onto a command line, and
is taken out again after the render. A sqlfeed.Error becomes a
CommandError: its message on stderr, exit status 1, and nothing published
(the previous feed stays)."""
import os

import sqlfeed
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS


def _param(text):
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise CommandError("--param takes NAME=VALUE, got %r" % text)
    return name, value


class Command(BaseCommand):
    help = "Renders a feed with sqlfeed from one of DATABASES' aliases, published atomically."

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='the DATABASES alias to read (default: "default")')
        parser.add_argument("--template", required=True,
                            help="a built-in template's name (sqlfeed templates) or a file")
        parser.add_argument("-o", "--output", required=True,
                            help="the feed file, replaced atomically when complete")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                            help="bound as :NAME in the query and readable as {{NAME}}; "
                                 "repeatable")

    def handle(self, *args, **options):
        alias = options["database"]
        if alias not in settings.DATABASES:
            raise CommandError("unknown database alias %r (DATABASES has %s)"
                               % (alias, ", ".join(sorted(settings.DATABASES))))
        params = dict(_param(p) for p in options["param"])
        try:
            db, env = sqlfeed.database_url(settings.DATABASES[alias])
        except ValueError as e:
            raise CommandError("database %r: %s" % (alias, e)) from None
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            run = sqlfeed.render(db=db, template=options["template"], output=options["output"],
                                 params=params)
        except sqlfeed.Error as e:
            raise CommandError("sqlfeed: %s (status %d)" % (e.message, e.status)) from None
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.stdout.write("sqlfeed: %d rows, %d bytes in %.2f s, peak RSS %.1f MiB, memory %s "
                          "-> %s (database %r: %s)"
                          % (run.rows, run.bytes, run.seconds, run.peak_rss / 1048576.0,
                             run.flatness, run.output, alias, sqlfeed.mask_db(db)))
