"""python_test.py DB CLI_XML QUERY_FILE WORKDIR SQLFEED: the sqlfeed package's
checks (run by python_test.sh, with PYTHONPATH at the built package; SQLFEED
the command, whose renders the package's are compared with). Prints the
PASS:/FAIL: lines tests/run.sh counts."""
import gzip
import os
import re
import signal
import subprocess
import sys
import threading
import time

import sqlfeed

db, cli_xml, query_file, work, sqlfeed_bin = sys.argv[1:6]
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

# 4. A signal mid-render whose handler raises cancels it: nothing published.
def signalled(sig, exc, what):
    """Sends sig 0.3 s into a slow render; exc must come out of it, soon."""
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), sig))
    timer.start()
    t0 = time.monotonic()
    try:
        sqlfeed.render(db=db, template="simplyhired", output=out, query=slow)
        check("%s cancels the render" % what, False, "the render finished")
    except exc:
        took = time.monotonic() - t0
        check("%s cancels the render, raising %s (%.2f s)" % (what, exc.__name__, took),
              took < 3)
    timer.join()
    check("after %s the previous file stays" % what, read(out) == previous)
    check("after %s no temporary file is left" % what, not temps(work), temps(work))


signalled(signal.SIGINT, KeyboardInterrupt, "SIGINT")


# Celery's soft time limit: its worker's SIGUSR1 handler raises
# SoftTimeLimitExceeded in the task; a handler raising any exception does the
# same here.
class SoftTimeLimitExceeded(Exception):
    pass


def soft_limit(signum, frame):
    raise SoftTimeLimitExceeded()


old_usr1 = signal.signal(signal.SIGUSR1, soft_limit)
signalled(signal.SIGUSR1, SoftTimeLimitExceeded, "a soft time limit (SIGUSR1, as Celery's)")
signal.signal(signal.SIGUSR1, old_usr1)

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

# 6. Several outputs, split parts and an index from one scan, against the
# command's render of the same options.
def cli(*args):
    p = subprocess.run([sqlfeed_bin, "render", "--db", db, "--quiet"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("sqlfeed render %s: exit %d: %s" % (args, p.returncode, p.stderr))


def mkdir(name):
    d = os.path.join(work, name)
    os.mkdir(d)
    return d


def leftovers(d):
    """Temporary files and lock files: none may stay after a run."""
    return [n for n in os.listdir(d) if ".sqlfeed-" in n or n.endswith(".sqlfeed.lock")]


def part_files(d):
    """{part number: file name} of the parts in d (NAME-[TAG-]NNNN.xml.gz)."""
    out = {}
    for n in os.listdir(d):
        m = re.match(r"^(?:sitemap|plain)-(?:([0-9a-f]+)-)?(\d{4})\.xml\.gz$", n)
        if m:
            out[int(m.group(2))] = n
    return out


def tag_of(name):
    return re.match(r"^sitemap-([0-9a-f]+)-\d{4}\.xml\.gz$", name).group(1)


base = "https://shop.example/sitemaps"
cdir, pdir = mkdir("cli-split"), mkdir("py-split")
cli("-t", "sitemap", "-o", os.path.join(cdir, "sitemap.xml"), "--split-rows", "50",
    "--compress", "gzip", "--index", "sitemap-index", "--base-url", base, "--lastmod", "lastmod")
run = sqlfeed.render(db=db, outputs=[{
    "template": "sitemap", "options": {"split_rows": 50, "compress": "gzip"},
    "index": {"template": "sitemap-index", "output": os.path.join(pdir, "sitemap.xml"),
              "base_url": base, "lastmod": "lastmod"}}])
cparts, pparts = part_files(cdir), part_files(pdir)
check("split sitemap: the same part numbers as the command's (%d parts)" % len(pparts),
      len(pparts) >= 3 and sorted(cparts) == sorted(pparts) == list(range(1, len(pparts) + 1)),
      (sorted(os.listdir(cdir)), sorted(os.listdir(pdir))))
same = all(gzip.decompress(read(os.path.join(cdir, cparts[k])))
           == gzip.decompress(read(os.path.join(pdir, pparts[k]))) for k in cparts
           if k in pparts)
check("split sitemap: each part's decompressed bytes equal the command's, by part number",
      cparts and same)
ctag, ptag = tag_of(cparts[1]), tag_of(pparts[1]) if pparts else ""
cindex = read(os.path.join(cdir, "sitemap.xml")).replace(ctag.encode(), ptag.encode())
check("split sitemap: the index equals the command's modulo the run tag %r",
      ptag and ptag != ctag and cindex == read(os.path.join(pdir, "sitemap.xml"))
      and (base + "/sitemap-%s-0001.xml.gz" % ptag).encode() in cindex,
      read(os.path.join(pdir, "sitemap.xml"))[:400])
o = run.outputs[0] if len(run.outputs) == 1 else None
check("split sitemap: the run's parts (path, rows, bytes) and index figures",
      o is not None and o.path == os.path.join(pdir, "sitemap.xml")
      and o.parts_pattern == os.path.join(pdir, "sitemap-%r-%04d.xml.gz")
      and [os.path.basename(p["path"]) for p in o.parts] == [pparts[k] for k in sorted(pparts)]
      and all(p["rows"] == 50 for p in o.parts[:-1]) and 0 < o.parts[-1]["rows"] <= 50
      and sum(p["rows"] for p in o.parts) == o.rows == run.rows and o.rows_skipped == 0
      and all(p["bytes"] == len(gzip.decompress(read(p["path"]))) for p in o.parts)
      and sum(p["bytes"] for p in o.parts) == o.bytes
      and o.bytes_out == sum(os.path.getsize(p["path"]) for p in o.parts) < o.bytes
      and o.index["path"] == o.path and o.index["bytes"] == os.path.getsize(o.path),
      o and o.as_dict())
check("split sitemap: no temporary or lock file is left", not leftovers(pdir), leftovers(pdir))

# Split without an index: the parts named from the output (plain.xml.gz ->
# plain-%04d.xml.gz), as the command names them (--no-defaults: the
# command would otherwise add sitemap's index).
cdir, pdir = mkdir("cli-plain"), mkdir("py-plain")
cli("-t", "sitemap", "-o", os.path.join(cdir, "plain.xml.gz"), "--split-rows", "70",
    "--no-defaults")
run = sqlfeed.render(db=db, template="sitemap", output=os.path.join(pdir, "plain.xml.gz"),
                     output_options={"split_rows": 70})
cparts, pparts = part_files(cdir), part_files(pdir)
check("split without an index: the parts the command writes, byte for byte (%d)" % len(pparts),
      len(pparts) >= 2 and cparts == pparts
      and all(read(os.path.join(cdir, cparts[k])) == read(os.path.join(pdir, pparts[k]))
              for k in cparts)
      and run.outputs[0].path is None and run.outputs[0].index is None
      and run.outputs[0].parts_pattern == os.path.join(pdir, "plain-%04d.xml.gz"),
      (sorted(os.listdir(cdir)), sorted(os.listdir(pdir)), run.outputs[0].as_dict()))

# Two outputs from one scan: the built-in and a template file, one gzip'ed.
titles = os.path.join(work, "titles.mustache")
with open(titles, "w") as f:
    f.write('<titles>\n{{#rows}}<t href="{{url}}">{{title}}</t>\n{{/rows}}</titles>\n')
cdir, pdir = mkdir("cli-two"), mkdir("py-two")
cli("-t", "simplyhired", "-o", os.path.join(cdir, "jobs.xml"),
    "--output", "%s=%s" % (titles, os.path.join(cdir, "titles.xml.gz")))
pa, pb = os.path.join(pdir, "jobs.xml"), os.path.join(pdir, "titles.xml.gz")
run = sqlfeed.render(db=db, outputs=[{"template": "simplyhired", "output": pa},
                                     {"template": titles, "output": pb}])
check("two outputs from one scan: each byte-identical to the command's",
      read(pa) == read(os.path.join(cdir, "jobs.xml")) == read(cli_xml)
      and read(pb) == read(os.path.join(cdir, "titles.xml.gz")), sorted(os.listdir(pdir)))
a, b = run.outputs if len(run.outputs) == 2 else (None, None)
check("two outputs: per-output rows, bytes and bytes_out",
      a and a.rows == b.rows == run.rows > 0 and a.bytes == a.bytes_out == len(read(pa))
      and b.bytes == len(gzip.decompress(read(pb))) and b.bytes_out == len(read(pb))
      and run.bytes == a.bytes + b.bytes and a.path == pa and b.path == pb
      and [p["path"] for p in a.parts] == [pa] and run.output == pa,
      run.as_dict() if a else run.outputs)

# on_invalid skip: a row left out of one output only, counted there.
short = os.path.join(work, "short.mustache")
with open(short, "w") as f:
    f.write('{{! sqlfeed-check: max title 18 }}\n'
            '<titles>\n{{#rows}}<t>{{title}}</t>\n{{/rows}}</titles>\n')
cli("-t", "simplyhired", "-o", os.path.join(cdir, "skip.xml"), "--on-invalid", "skip",
    "--output", "%s=%s" % (short, os.path.join(cdir, "short.xml")))
run = sqlfeed.render(db=db, options={"on_invalid": "skip"},
                     outputs=[{"template": "simplyhired", "output": os.path.join(pdir, "skip.xml")},
                              {"template": short, "output": os.path.join(pdir, "short.xml")}])
a, b = run.outputs
check("on_invalid skip: rows_skipped per output, the same bytes as the command's",
      a.rows_skipped == 0 and a.rows == run.rows and 0 < b.rows_skipped < run.rows
      and b.rows + b.rows_skipped == run.rows
      and read(os.path.join(pdir, "short.xml")) == read(os.path.join(cdir, "short.xml"))
      and read(os.path.join(pdir, "skip.xml")) == read(cli_xml),
      (a.as_dict(), b.as_dict()))

# A failing output publishes neither; nothing is left behind.
fdir = mkdir("py-fail")
fa, fb = os.path.join(fdir, "a.xml"), os.path.join(fdir, "b.xml")
for path in (fa, fb):
    with open(path, "w") as f:
        f.write("previous\n")


def untouched():
    return read(fa) == read(fb) == b"previous\n" and not leftovers(fdir)


try:
    sqlfeed.render(db=db, outputs=[{"template": "simplyhired", "output": fa},
                                   {"template": short, "output": fb}])
    check("a second output failing a check raises", False, "no exception")
except sqlfeed.InvalidRowError as e:
    check("a second output failing a check mid-scan: InvalidRowError, neither published, "
          "nothing left", e.status == 11 and "title" in e.message and untouched(),
          (e.message, os.listdir(fdir)))
try:
    sqlfeed.render(db=db, options={"min_rows": 100000},
                   outputs=[{"template": "simplyhired", "output": fa},
                            {"template": titles, "output": fb}])
    check("min_rows refusing raises", False, "no exception")
except sqlfeed.RefusedError as e:
    check("min_rows refusing at commit: RefusedError, neither published, nothing left",
          e.status == 9 and untouched(), (e.message, os.listdir(fdir)))
try:
    sqlfeed.render(db=db, outputs=[{"template": "simplyhired", "output": fa},
                                   {"template": titles,
                                    "output": os.path.join(fdir, "nodir", "b.xml")}])
    check("a second output in a missing directory raises", False, "no exception")
except sqlfeed.OutputError as e:
    check("a second output in a missing directory: OutputError, the first not published",
          e.status == 6 and "nodir" in e.message and untouched(), (e.message, os.listdir(fdir)))
try:
    sqlfeed.render(db=db, query=slow, progress=lambda p: (_ for _ in ()).throw(Enough()),
                   outputs=[{"template": "simplyhired", "output": fa},
                            {"template": titles, "output": fb}])
    check("a progress exception with two outputs cancels", False, "the render finished")
except Enough:
    check("a progress exception with two outputs: neither published, nothing left",
          untouched(), os.listdir(fdir))

# The command's rules, as UsageError (status 2).
sitemap_index = {"template": "sitemap-index", "output": os.path.join(fdir, "ix.xml"),
                 "base_url": base}
bad_entries = [
    ("an index without a split", {"template": "sitemap", "index": sitemap_index}, "split"),
    ("an index reading url without base_url",
     {"template": "sitemap", "options": {"split_rows": 50},
      "index": {"template": "sitemap-index", "output": os.path.join(fdir, "ix.xml")}},
     "base_url"),
    ("a relative base_url",
     {"template": "sitemap", "options": {"split_rows": 50},
      "index": dict(sitemap_index, base_url="/sitemaps")}, "absolute"),
    ("an indexed pattern without %r",
     {"template": "sitemap", "options": {"split_rows": 50},
      "parts": os.path.join(fdir, "s-%04d.xml"), "index": sitemap_index}, "%r"),
    ("a .gz name with compress none",
     {"template": "simplyhired", "output": os.path.join(fdir, "x.xml.gz"),
      "options": {"compress": "none"}}, "gzip"),
    ("an unknown output option",
     {"template": "simplyhired", "output": fa, "options": {"colour": "blue"}}, "colour"),
]
for what, entry, word in bad_entries:
    try:
        sqlfeed.render(db=db, outputs=[entry])
        check("%s raises UsageError" % what, False, "no exception")
    except sqlfeed.UsageError as e:
        check("%s: UsageError, status 2, says %r" % (what, word),
              e.status == 2 and word in e.message and untouched(), e.message)
try:  # checked before connecting: a server that is not there is not reached
    sqlfeed.render(db="postgresql://feed@127.0.0.1:1/jobs",
                   outputs=[{"template": "simplyhired", "output": fa,
                             "options": {"colour": "blue"}}])
    check("a bad output option raises before connecting", False, "no exception")
except sqlfeed.Error as e:
    check("a bad output option raises UsageError before connecting",
          isinstance(e, sqlfeed.UsageError) and "colour" in e.message, "%s %s" % (type(e), e))
try:
    sqlfeed.render(db=db, template="simplyhired", output=fa, outputs=[])
    check("template/output and outputs together raise TypeError", False, "no exception")
except TypeError:
    check("template/output and outputs together raise TypeError", True)

# ---- sharded renders: shards from Python, joined by publish ---------------
sdir = os.path.join(work, "shards")
os.mkdir(sdir)
SHARD_Q = None  # the template's own query, ordered by id: the joined feed's order
shard_one = cli_xml
sfeed = os.path.join(sdir, "feed.xml.gz")
parts_rows = []
for k in (1, 2, 3):
    run = sqlfeed.render(db=db, template="simplyhired", output=sfeed, query=SHARD_Q,
                         shard=(k, 3), shard_key="id")
    parts_rows.append(run.rows)
check("render(shard=(K, 3)) writes each part and manifest",
      all(os.path.exists(os.path.join(sfeed + ".shards", "%d-of-3.%s" % (k, e)))
          for k in (1, 2, 3) for e in ("part", "json")), os.listdir(sfeed + ".shards"))
rows = sqlfeed.publish("simplyhired", sfeed, 3)
import gzip
check("publish joins 3 shards into the one-process render (%d rows)" % rows,
      gzip.open(sfeed).read() == read(shard_one) and rows == sum(parts_rows))
os.rename(os.path.join(sfeed + ".shards", "2-of-3.json"), os.path.join(sdir, "moved.json"))
before = read(sfeed)
try:
    sqlfeed.publish("simplyhired", sfeed, 3)
    check("publish without shard 2 raises", False, "no exception")
except sqlfeed.RefusedError as e:
    check("publish without shard 2: RefusedError, status 9, names the shard; the feed stays",
          e.status == 9 and "shard 2 of 3 is missing" in e.message and read(sfeed) == before,
          e.message)
os.rename(os.path.join(sdir, "moved.json"), os.path.join(sfeed + ".shards", "2-of-3.json"))
before = read(sfeed)
try:
    sqlfeed.publish("simplyhired", sfeed, 3, min_rows=10 ** 6)
    check("publish(min_rows=...) refuses too few rows", False, "no exception")
except sqlfeed.RefusedError as e:
    check("publish(min_rows=...): RefusedError naming both counts; the feed stays",
          "fewer than the minimum of 1000000" in e.message and read(sfeed) == before, e.message)
try:
    sqlfeed.render(db=db, template="simplyhired", output=sfeed, shard=(1, 2))
    check("shard without shard_key raises", False, "no exception")
except TypeError:
    check("shard without shard_key raises TypeError", True)
# Split shards: a sitemap in parts from 2 shards, one set with its index.
mdir = os.path.join(work, "maps")
os.mkdir(mdir)
mfeed = os.path.join(mdir, "sitemap.xml")
SQ = "SELECT p.id, p.link AS loc, p.updated_at AS lastmod FROM products p ORDER BY p.id"
for k in (1, 2):
    sqlfeed.render(db=db, template="sitemap", output=mfeed, query=SQ, shard=(k, 2),
                   shard_key="id", output_options={"compress": "gzip", "split_rows": 10})
rows = sqlfeed.publish("sitemap", mfeed, 2, index="sitemap-index",
                       base_url="https://shop.example/maps")
idx = read(mfeed).decode()
names = re.findall(r"<loc>https://shop.example/maps/([^<]*)</loc>", idx)
urls = []
for n in names:
    urls += re.findall(rb"<loc>([^<]*)</loc>", gzip.open(os.path.join(mdir, n)).read())
one_map = os.path.join(work, "one-sitemap.xml")
sqlfeed.render(db=db, template="sitemap", output=one_map, query=SQ)
want = re.findall(rb"<loc>([^<]*)</loc>", read(one_map))
check("publish(index=...) makes split shards one set: %d parts, the URLs in order" % len(names),
      len(names) > 2 and urls == want and rows == len(want), (len(urls), len(want), rows))
try:
    sqlfeed.Snapshot(db)
    check("Snapshot on SQLite raises", False, "no exception")
except sqlfeed.UsageError as e:
    check("Snapshot on SQLite: UsageError, only PostgreSQL", "PostgreSQL" in e.message, e.message)

sys.exit(1 if failures else 0)
