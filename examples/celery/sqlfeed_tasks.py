"""sqlfeed_tasks: sharded sqlfeed renders as Celery tasks.

One feed, N shards rendered in parallel by any number of workers, then one
publish:

    chord(group(render_shard.s(k, n, ...) for k in 1..n), publish.s(...))

build_feed() is the caller's side: it exports one PostgreSQL snapshot with
`sqlfeed snapshot` (so every shard, retried ones too, reads the same data),
holds it open until the chord's result is in, then lets it go.

Each task runs the sqlfeed CLI in a subprocess. The database password is
never a task argument (task arguments sit in the broker in clear) nor on a
command line (every local user can read those): the workers and the caller
get it from their environment (PGPASSWORD) or ~/.pgpass, which libpq reads.
build_feed() refuses a URL that carries a password.

Configuration (environment, read at import, the same on the caller and the
workers):
    SQLFEED_CELERY_BROKER    broker URL (default redis://127.0.0.1:6379/0)
    SQLFEED_CELERY_BACKEND   result backend (default: the broker's URL)
    SQLFEED                  the sqlfeed binary (default: sqlfeed on PATH)
    SQLFEED_SOFT_TIME_LIMIT  seconds a render may take (default 1800): then
                             sqlfeed gets SIGTERM (it removes its temporary
                             files) and the task fails; the hard limit is 60 s
                             later
    SQLFEED_CELERY_VISIBILITY  redis visibility timeout, seconds (default
                             3600): a task whose worker died unacknowledged is
                             delivered again after it. Keep it above the
                             longest render.

Test hook (tests/celery_test.sh): when the worker's environment has
SQLFEED_TASKS_FAULT_DIR=DIR, a file DIR/fail-once-NAME (NAME: shard-K,
publish or feed) makes the next such task remove the file, start sqlfeed and
SIGKILL it 0.3 s in, so that run fails (exit by signal 9, a temporary file
left behind; a run that ended sooner fails all the same) and Celery retries
the task. Without the variable the hook
costs one getenv.

Run a worker (prefork, two processes):
    celery -A sqlfeed_tasks worker --concurrency 2 --loglevel INFO
and, from the caller:
    python3 sqlfeed_tasks.py build --db postgresql://feeds@db/jobs \\
        -o /srv/feeds/jobs.xml --shards 4
"""
import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid

from celery import Celery, chord, group
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger

BROKER = os.environ.get("SQLFEED_CELERY_BROKER", "redis://127.0.0.1:6379/0")
BACKEND = os.environ.get("SQLFEED_CELERY_BACKEND", BROKER)
SQLFEED = os.environ.get("SQLFEED", "sqlfeed")
SOFT_LIMIT = int(os.environ.get("SQLFEED_SOFT_TIME_LIMIT", "1800"))

app = Celery("sqlfeed_tasks", broker=BROKER, backend=BACKEND)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # A task is acknowledged when it ends, not when it starts: a worker that
    # dies mid-render leaves its message to be delivered again.
    task_acks_late=True,
    # ... also when only the pool process died (SIGKILL, OOM killer).
    task_reject_on_worker_lost=True,
    # A render takes a core for seconds: one message at a time per process.
    worker_prefetch_multiplier=1,
    broker_transport_options={
        "visibility_timeout": int(os.environ.get("SQLFEED_CELERY_VISIBILITY", "3600"))},
    result_expires=86400,
)
log = get_task_logger(__name__)


class SqlfeedFailed(Exception):
    """A run that may succeed when tried again (database, output, lock, signal)."""


class SqlfeedRefused(Exception):
    """A run that would fail the same way again (usage, template, refused)."""


# sqlfeed's exit statuses (sqlfeed(1)): 1 other/out of memory, 4 database,
# 5 output, 8 the output's lock is held; 128+N or a signal: killed. Retried.
# 2 usage, 3 template, 6 --max-memory, 7 refused (publish: a missing or
# inconsistent shard), 9 a row check: the same run fails the same way.
RETRIED = {1, 4, 5, 8}


def _die_with_parent():
    """In the child before exec: SIGTERM when the task's process dies, so a
    killed pool process does not leave its sqlfeed running (Linux)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: nothing to do
        pass


def _fault(name):
    """The test hook described in the module's docstring."""
    d = os.environ.get("SQLFEED_TASKS_FAULT_DIR")
    if not d:
        return None
    try:
        os.unlink(os.path.join(d, "fail-once-" + name))  # only one task wins
    except FileNotFoundError:
        return None
    log.warning("sqlfeed_tasks: test hook: failing %s once", name)

    def kill(proc):
        time.sleep(0.3)
        proc.kill()
    return kill


def _run(what, argv, fault=None):
    """Runs sqlfeed; returns its stderr; raises SqlfeedFailed or SqlfeedRefused."""
    log.info("sqlfeed_tasks: %s: %s", what, " ".join(argv))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
    try:
        if fault:
            fault(proc)
        out, err = proc.communicate()
    except SoftTimeLimitExceeded:
        proc.terminate()  # sqlfeed removes its temporary files, exits 143
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        raise
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    rc = proc.returncode
    err = err.strip()
    if rc == 0 and fault:  # the test hook's kill came after sqlfeed ended
        raise SqlfeedFailed(f"{what}: test hook: failed once (sqlfeed ended before its kill)")
    if rc == 0:
        return err
    msg = f"{what}: sqlfeed " + (f"killed by signal {-rc}" if rc < 0 else f"exit {rc}")
    msg += f": {err[-2000:]}" if err else ""
    if rc < 0 or rc >= 128 or rc in RETRIED:
        raise SqlfeedFailed(msg)
    raise SqlfeedRefused(msg)


def _common(template, query, params):
    argv = ["-t", template]
    if query is not None:
        argv += ["--query", query]
    for name, value in sorted((params or {}).items()):
        argv += ["--param", f"{name}={value}"]
    return argv


RETRY = dict(bind=True, acks_late=True, autoretry_for=(SqlfeedFailed,),
             retry_backoff=1, retry_backoff_max=60, retry_jitter=True, max_retries=3,
             soft_time_limit=SOFT_LIMIT, time_limit=SOFT_LIMIT + 60)


@app.task(name="sqlfeed_tasks.render_shard", **RETRY)
def render_shard(self, k, n, db, feed, shard_dir, template="simplyhired", shard_key="id",
                 snapshot=None, params=None, query=None, run=None):
    """Shard k of n: shard_dir/K-of-N.part and its manifest K-of-N.json.
    Returns {"shard": k, "of": n, "manifest": the manifest}."""
    argv = [SQLFEED, "render", "--db", db, "-o", feed, "--shard", f"{k}/{n}",
            "--shard-key", shard_key, "--shard-dir", shard_dir, "--quiet"]
    argv += _common(template, query, params)
    if snapshot:
        argv += ["--snapshot", snapshot]
    if run:
        argv += ["--run", run]  # publish --run joins only this build's shards
    _run(f"shard {k}/{n} (try {self.request.retries + 1})", argv, _fault(f"shard-{k}"))
    with open(os.path.join(shard_dir, f"{k}-of-{n}.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    return {"shard": k, "of": n, "manifest": manifest}


@app.task(name="sqlfeed_tasks.publish", **RETRY)
def publish(self, results, feed, shard_dir, n, template="simplyhired", params=None, run=None):
    """The chord's body: checks every shard reported, then `sqlfeed publish`
    (which checks the manifests and the parts again, and writes the feed
    atomically). Idempotent: running it again writes the same feed."""
    got = sorted(r["shard"] for r in results)
    if got != list(range(1, n + 1)):
        raise SqlfeedRefused(f"publish: shards reported {got}, expected 1..{n}")
    argv = [SQLFEED, "publish", "-o", feed, "--shards", str(n), "--shard-dir", shard_dir]
    if run:
        argv += ["--run", run]
    argv += _common(template, None, params)
    _run(f"publish {feed} (try {self.request.retries + 1})", argv, _fault("publish"))
    return {"feed": feed, "bytes": os.stat(feed).st_size, "shards": n,
            "rows": sum(int(r["manifest"].get("rows", 0)) for r in results)}


@app.task(name="sqlfeed_tasks.render_feed", **RETRY)
def render_feed(self, db, feed, template="simplyhired", params=None, query=None):
    """The whole feed in one task, one process: for feeds that need no shards."""
    argv = [SQLFEED, "render", "--db", db, "-o", feed, "--quiet"] + _common(template, query, params)
    _run(f"render {feed} (try {self.request.retries + 1})", argv, _fault("feed"))
    return {"feed": feed, "bytes": os.stat(feed).st_size}


def _check_url(db):
    """A password in the URL would be stored in the broker with the task."""
    u = urllib.parse.urlsplit(db)
    if u.scheme in ("postgres", "postgresql", "mysql", "mariadb") and u.password is not None:
        raise ValueError("the database URL carries a password: task arguments are stored in "
                         "the broker; give it to the workers in PGPASSWORD or ~/.pgpass")
    if "password=" in db:
        raise ValueError("the conninfo carries a password: use PGPASSWORD or ~/.pgpass")


def build_feed(db, feed, n, template="simplyhired", shard_key="id", shard_dir=None,
               params=None, query=None, timeout=3600, keep_shards=False):
    """Renders feed as n shards on the workers and publishes it; returns the
    publish task's result. Holds one exported snapshot for the whole chord.

    The shards go to a directory of this build's own, SHARD_DIR/BUILD-ID
    (SHARD_DIR defaults to FEED.shards: it must be on storage every worker
    and the publishing worker see), removed after a successful publish
    unless keep_shards. On any failure the feed is untouched, the exception
    propagates (the chord's error), the build's directory stays for
    inspection and a rerun starts afresh under a new id and a new snapshot."""
    _check_url(db)
    feed = os.path.abspath(feed)
    base = os.path.abspath(shard_dir or feed + ".shards")
    build = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    bdir = os.path.join(base, build)
    os.makedirs(bdir)
    snap = subprocess.Popen([SQLFEED, "snapshot", "--db", db], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
    res = None
    try:
        ready, _, _ = select.select([snap.stdout], [], [], 60)
        sid = snap.stdout.readline().strip() if ready else ""
        if not sid:
            raise SqlfeedFailed(f"sqlfeed snapshot gave no id (exit {snap.poll()})")
        header = group(render_shard.s(k, n, db, feed, bdir, template, shard_key, sid,
                                      params, query, build) for k in range(1, n + 1))
        res = chord(header)(publish.s(feed, bdir, n, template, params, build))
        out = res.get(timeout=timeout, propagate=True, disable_sync_subtasks=False)
    except BaseException:
        if res is not None and res.parent is not None:
            res.parent.revoke()  # the shards not started yet need not run
        raise
    finally:
        snap.stdin.close()  # the snapshot's transaction ends
        try:
            snap.wait(timeout=30)
        except subprocess.TimeoutExpired:
            snap.kill()
            snap.wait()
    if not keep_shards:
        shutil.rmtree(bdir)
        try:
            os.rmdir(base)
        except OSError:  # other builds' directories are there
            pass
    out["build"] = build
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="sqlfeed renders on Celery workers")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("build", "render"):
        s = sub.add_parser(name)
        s.add_argument("--db", required=True)
        s.add_argument("-o", dest="feed", required=True)
        s.add_argument("-t", dest="template", default="simplyhired")
        s.add_argument("--query")
        s.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
        s.add_argument("--timeout", type=float, default=3600)
        if name == "build":
            s.add_argument("--shards", type=int, required=True)
            s.add_argument("--shard-key", default="id")
            s.add_argument("--shard-dir")
            s.add_argument("--keep-shards", action="store_true")
    a = p.parse_args(argv)
    params = dict(kv.split("=", 1) for kv in a.param)
    try:
        if a.cmd == "build":
            out = build_feed(a.db, a.feed, a.shards, a.template, a.shard_key, a.shard_dir,
                             params, a.query, a.timeout, a.keep_shards)
        else:
            _check_url(a.db)
            out = render_feed.delay(a.db, os.path.abspath(a.feed), a.template, params,
                                    a.query).get(timeout=a.timeout)
    except Exception as e:  # the chord's error, a refused URL, a timeout
        print(f"sqlfeed_tasks: {a.cmd} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    import sqlfeed_tasks  # the tasks and exceptions under their own names, as the workers have them
    sys.exit(sqlfeed_tasks.main())
