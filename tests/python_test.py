"""python_test.py DB CLI_XML QUERY_FILE WORKDIR: the sqlfeed package's checks
(run by python_test.sh, with PYTHONPATH at the built package). Prints the
PASS:/FAIL: lines tests/run.sh counts."""
import os
import signal
import sys
import threading
import time

import sqlfeed

db, cli_xml, query_file, work = sys.argv[1:5]
failures = 0


def check(name, cond, detail=""):
    global failures
    if cond:
        print("PASS: python: " + name)
    else:
        failures += 1
        print("FAIL: python: %s: %s" % (name, detail))
    sys.stdout.flush()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def temps(d):
    return [n for n in os.listdir(d) if ".sqlfeed-" in n]


out = os.path.join(work, "feed.xml")

# 1. The same bytes as the command (SOURCE_DATE_EPOCH fixed by the caller).
run = sqlfeed.render(db=db, template="simplyhired", output=out, params={}, query=None)
check("render is byte-identical to the command's", read(out) == read(cli_xml),
      "%d vs %d bytes" % (len(read(out)), len(read(cli_xml))))
check("Run: rows, bytes, seconds, peak RSS", run.rows > 0 and run.bytes == len(read(out))
      and run.seconds >= 0 and run.peak_rss > 1 << 20, repr(run))
check("Run: flatness verdict and census by type",
      run.flatness in ("flat", "grows", "unknown") and run.verdict
      and isinstance(run.census, dict) and "template" in run.census
      and run.census["template"]["allocs"] > 0, repr(run.as_dict()))
check("the built-in templates are listed", "simplyhired" in sqlfeed.templates())
previous = read(out)

# 2. Failures: an Error subclass with .status and .message; the file stays.
bad = os.path.join(work, "bad.mustache")
with open(bad, "w") as f:
    f.write("<jobs>{{#rows}}\n<job>{{nope}}</job>{{/rows}}</jobs>\n")
try:
    sqlfeed.render(db=db, template=bad, output=out, query="SELECT id FROM jobs")
    check("a name the query lacks raises", False, "no exception")
except sqlfeed.TemplateError as e:
    check("a name the query lacks: TemplateError, status 4, file:line:col",
          e.status == 4 and isinstance(e, sqlfeed.Error) and "bad.mustache:2:" in e.message,
          "%r status %r" % (e.message, e.status))
with open(bad, "w") as f:
    f.write("<jobs>{{#rows}}<job>{{id}}</job>{{/rows}}</job>\n")
try:
    sqlfeed.render(db=db, template=bad, output=out, query="SELECT id FROM jobs")
    check("a malformed template raises", False, "no exception")
except sqlfeed.TemplateError as e:
    check("a malformed template: TemplateError, status 3, file:line:col",
          e.status == 3 and "bad.mustache:1:" in e.message, "%r %r" % (e.status, e.message))
try:
    sqlfeed.render(db=db, template="simplyhired", output=out, query="SELECT id FROM no_table")
    check("bad SQL raises", False, "no exception")
except sqlfeed.DatabaseError as e:
    check("bad SQL: DatabaseError, status 5, SQLite's message",
          e.status == 5 and "no_table" in e.message, "%r %r" % (e.status, e.message))
try:
    sqlfeed.render(db=db, template="simplyhired", output=os.path.join(work, "nodir", "f.xml"))
    check("an output in a missing directory raises", False, "no exception")
except sqlfeed.OutputError as e:
    check("an output in a missing directory: OutputError, status 6, the path",
          e.status == 6 and "nodir" in e.message, "%r %r" % (e.status, e.message))
dates = os.path.join(work, "dates.mustache")
with open(dates, "w") as f:
    f.write("<jobs>{{#rows}}<d>{{d.rfc3339}}</d>{{/rows}}</jobs>\n")
try:
    sqlfeed.render(db=db, template=dates, output=out,
                   query="SELECT '2026-01-31 09:05:00' AS d UNION ALL SELECT 'not a date'")
    check("an invalid row raises", False, "no exception")
except sqlfeed.InvalidRowError as e:
    check("an invalid row: InvalidRowError, status 11, the row",
          e.status == 11 and "row" in e.message, "%r %r" % (e.status, e.message))
except sqlfeed.Error as e:
    check("an invalid row: InvalidRowError", False, "%s %r %r" % (type(e), e.status, e.message))
check("after the failures the previous file stays", read(out) == previous)
check("after the failures no temporary file is left", not temps(work), temps(work))

# A slow query: the demo's rows, 2,000 times over.
with open(query_file) as f:
    base = f.read().strip().rstrip(";")
slow = ("SELECT q.* FROM (%s) q CROSS JOIN (WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL "
        "SELECT n + 1 FROM c WHERE n < 2000) SELECT n FROM c)" % base)

# 3. The GIL is released: a Python thread counts during the render; the
# progress callback sees the count grow, then raises, which cancels.
counter = [0]
stop = threading.Event()


def count():
    while not stop.is_set():
        counter[0] += 1


class Enough(Exception):
    pass


seen = []


def progress(p):
    seen.append((counter[0], p["rows"]))
    if len(seen) >= 4:
        raise Enough()


t = threading.Thread(target=count)
t.start()
t0 = time.monotonic()
try:
    sqlfeed.render(db=db, template="simplyhired", output=out, query=slow, progress=progress)
    check("a progress callback's exception cancels", False, "the render finished")
except Enough:
    check("a progress callback's exception cancels the render and propagates",
          time.monotonic() - t0 < 5)
finally:
    stop.set()
    t.join()
grew = len(seen) >= 4 and seen[3][0] - seen[0][0] > 100000
check("the GIL is released: a thread counted %d during the render"
      % (seen[3][0] - seen[0][0] if len(seen) >= 4 else -1), grew, seen)
check("progress reports rows as they go", len(seen) >= 4 and seen[3][1] > seen[0][1] > 0, seen)
check("after a cancel the previous file stays", read(out) == previous)
check("after a cancel no temporary file is left", not temps(work), temps(work))

# 4. SIGINT mid-render raises KeyboardInterrupt, nothing is published.
timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
timer.start()
t0 = time.monotonic()
try:
    sqlfeed.render(db=db, template="simplyhired", output=out, query=slow)
    check("SIGINT raises KeyboardInterrupt", False, "the render finished")
except KeyboardInterrupt:
    took = time.monotonic() - t0
    check("SIGINT mid-render raises KeyboardInterrupt (%.2f s)" % took, took < 3)
timer.join()
check("after SIGINT the previous file stays", read(out) == previous)
check("after SIGINT no temporary file is left", not temps(work), temps(work))

# 5. database_url: a Django DATABASES alias, password in the environment only.
url, env = sqlfeed.database_url({"ENGINE": "django.db.backends.postgresql", "NAME": "jobs",
                                 "USER": "feed", "PASSWORD": "s3:cr@t/", "HOST": "db.example",
                                 "PORT": "5433"})
check("database_url: postgresql URL without the password",
      url == "postgresql://feed@db.example:5433/jobs" and env == {"PGPASSWORD": "s3:cr@t/"}
      and "s3" not in url, (url, env))
url, env = sqlfeed.database_url({"ENGINE": "django.db.backends.mysql", "NAME": "jobs",
                                 "USER": "feed", "PASSWORD": "pw", "HOST": "", "PORT": ""})
check("database_url: mysql, MYSQL_PWD", url == "mysql://feed@/jobs"
      and env == {"MYSQL_PWD": "pw"}, (url, env))
url, env = sqlfeed.database_url({"ENGINE": "django.db.backends.postgresql", "NAME": "jobs",
                                 "HOST": "/var/run/postgresql"})
check("database_url: a socket directory goes to ?host=",
      url == "postgresql:///jobs?host=/var/run/postgresql" and env == {}, (url, env))
url, env = sqlfeed.database_url({"ENGINE": "django.db.backends.sqlite3", "NAME": db})
check("database_url: sqlite3 is the file", url == db and env == {}, (url, env))
run = sqlfeed.render(db=url, template="simplyhired", output=out)
check("database_url's sqlite3 URL renders", read(out) == read(cli_xml))
try:
    sqlfeed.database_url({"ENGINE": "django.db.backends.oracle", "NAME": "x"})
    check("database_url: an unknown engine raises", False, "no exception")
except ValueError:
    check("database_url: an unknown engine raises ValueError", True)

sys.exit(1 if failures else 0)
