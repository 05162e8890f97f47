#!/usr/bin/python3
"""python_cffi.py: issue 10's binding choice, measured. A throwaway cffi
binding (API mode, libsqlfeed.a linked statically as the extension links it)
of the same render the extension does (sf_render_add_output + execute +
commit on a worker, the scan on the source's prefetch thread, the caller
polling sf_watch_get_progress every `interval` s for the progress callback),
against the extension (build/python, `make python`), in fresh interpreters,
interleaved (one warm-up round not counted): render wall time, import time,
peak RSS over the bare interpreter (VmHWM), and the cost of a progress
callback called every millisecond.

Usage (from the project root, after `make all python`):
    /usr/bin/python3 bench/python_cffi.py [--rows 200000] [--runs 5] [--db PATH]

The database: --db, else /tmp/jobsbench/jobs-ROWS.db (the DATASET.md
reference database, made by tests/ref/make_jobs_db.py when missing). Prints
SKIP and exits 0 when cffi is not installed (Debian: python3-cffi); exit 1
when a render fails or the bindings' feeds differ."""
import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CDEF = """
typedef enum sf_status { SF_OK = 0, ... } sf_status;
typedef enum sf_template_mode { SF_TEMPLATE_XML = 0, ... } sf_template_mode;
typedef struct sf_census sf_census; typedef struct sf_source sf_source;
typedef struct sf_template sf_template; typedef struct sf_output sf_output;
typedef struct sf_render sf_render; typedef struct sf_watch sf_watch;
typedef struct sf_watch_opts { unsigned interval_ms; FILE *mem_log; uint64_t max_memory;
    uint64_t total; sf_output *output; } sf_watch_opts;
typedef struct sf_watch_progress { double elapsed; uint64_t rows; double rate; uint64_t bytes;
    uint64_t rss; uint64_t peak_rss; uint64_t total; double percent; double eta; } sf_watch_progress;
sf_census *sf_census_create(void); void sf_census_free(sf_census *);
sf_source *sf_source_create(sf_census *); void sf_source_free(sf_source *);
sf_status sf_source_set_option(sf_source *, const char *, const char *);
sf_status sf_source_open(sf_source *, const char *);
sf_status sf_source_prepare(sf_source *, const char *);
const char *sf_source_backend(const sf_source *); const char *sf_source_errmsg(const sf_source *);
void sf_source_cancel(sf_source *);
sf_template *sf_template_create(sf_census *, sf_template_mode); void sf_template_free(sf_template *);
sf_status sf_template_load_builtin(sf_template *, const char *);
const char *sf_template_errmsg(const sf_template *);
const char *sf_builtin_template_query_for(const char *, const char *);
sf_output *sf_output_create(sf_census *); void sf_output_free(sf_output *);
sf_status sf_output_open_file(sf_output *, const char *);
void sf_output_cancel(sf_output *); int sf_output_published(const sf_output *);
void sf_output_abort(sf_output *); const char *sf_output_errmsg(const sf_output *);
sf_render *sf_render_create(sf_census *); void sf_render_free(sf_render *);
void sf_render_set_time(sf_render *, int64_t); void sf_render_cancel(sf_render *);
const char *sf_render_errmsg(const sf_render *);
sf_status sf_render_add_output(sf_render *, sf_template *, sf_output *);
sf_status sf_render_execute(sf_render *, sf_source *); sf_status sf_render_commit(sf_render *);
sf_watch *sf_watch_create(sf_census *, sf_render *, const sf_watch_opts *);
sf_status sf_watch_start(sf_watch *); void sf_watch_stop(sf_watch *); void sf_watch_free(sf_watch *);
void sf_watch_get_progress(sf_watch *, sf_watch_progress *);
"""


def build(build_dir, tmp):
    from cffi import FFI
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source("_sqlfeed_cffi", '#include "sqlfeed.h"',
                   include_dirs=[os.path.join(ROOT, "include")],
                   extra_compile_args=["-std=c17", "-D_GNU_SOURCE"],
                   extra_objects=[os.path.join(build_dir, "libsqlfeed.a")],
                   libraries=["sqlite3", "z", "zstd", "deflate", "isal", "dl", "pthread", "m"],
                   extra_link_args=["-Wl,--exclude-libs,ALL"])
    ffi.compile(tmpdir=tmp, verbose=False)


def cffi_render(db, template, output, progress=None, interval=0.1):
    """The extension's render, through cffi (which releases the GIL around
    each C call): execute + commit on a Python thread, polling meanwhile."""
    import threading
    from _sqlfeed_cffi import ffi, lib

    def fail(st, msg):
        raise RuntimeError("status %d: %s" % (st, ffi.string(msg).decode()))
    census = lib.sf_census_create()
    src, tpl = lib.sf_source_create(census), lib.sf_template_create(census, lib.SF_TEMPLATE_XML)
    out, r = lib.sf_output_create(census), lib.sf_render_create(census)
    watch, done = ffi.NULL, False
    try:
        lib.sf_source_set_option(src, b"prefetch", b"on")
        if os.environ.get("SOURCE_DATE_EPOCH"):
            lib.sf_render_set_time(r, int(os.environ["SOURCE_DATE_EPOCH"]))
        st = lib.sf_template_load_builtin(tpl, template.encode())
        st and fail(st, lib.sf_template_errmsg(tpl))
        st = lib.sf_source_open(src, db.encode())
        st and fail(st, lib.sf_source_errmsg(src))
        st = lib.sf_source_prepare(src, lib.sf_builtin_template_query_for(
            template.encode(), lib.sf_source_backend(src)))
        st and fail(st, lib.sf_source_errmsg(src))
        st = lib.sf_output_open_file(out, output.encode())
        st and fail(st, lib.sf_output_errmsg(out))
        st = lib.sf_render_add_output(r, tpl, out)
        st and fail(st, lib.sf_render_errmsg(r))
        watch = lib.sf_watch_create(census, r, ffi.new("sf_watch_opts *", {"output": out}))
        lib.sf_watch_start(watch)
        res = []
        t = threading.Thread(target=lambda: res.append(lib.sf_render_execute(r, src)
                                                       or lib.sf_render_commit(r)))
        t.start()
        p = ffi.new("sf_watch_progress *")
        try:
            while t.join(interval) or t.is_alive():
                if progress:
                    lib.sf_watch_get_progress(watch, p)
                    progress({"elapsed": p.elapsed, "rows": p.rows, "rate": p.rate,
                              "bytes": p.bytes, "rss": p.rss, "peak_rss": p.peak_rss,
                              "total": p.total, "percent": p.percent, "eta": p.eta})
        except BaseException:
            lib.sf_render_cancel(r), lib.sf_source_cancel(src), lib.sf_output_cancel(out)
            t.join()
            if not lib.sf_output_published(out):
                raise
        lib.sf_watch_stop(watch)
        res[0] and fail(res[0], lib.sf_render_errmsg(r))
        done = True
    finally:
        if not done:
            lib.sf_output_abort(out)
        lib.sf_watch_free(watch), lib.sf_render_free(r), lib.sf_output_free(out)
        lib.sf_template_free(tpl), lib.sf_source_free(src), lib.sf_census_free(census)


def vmhwm():
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))


def child(kind, db, out):
    """One measurement in this fresh interpreter: prints import s, render s,
    progress calls, peak RSS KiB."""
    t0 = time.perf_counter()
    if kind == "ext-module":  # the extension module alone, without its package
        import importlib.machinery
        import importlib.util
        path = next(os.path.join(d, "sqlfeed", n) for d in sys.path if os.path.isdir(
            os.path.join(d, "sqlfeed")) for n in os.listdir(os.path.join(d, "sqlfeed"))
            if n.startswith("_sqlfeed") and n.endswith(".so"))
        loader = importlib.machinery.ExtensionFileLoader("sqlfeed._sqlfeed", path)
        loader.exec_module(loader.create_module(importlib.util.spec_from_loader(
            "sqlfeed._sqlfeed", loader)))
    elif kind.startswith("ext"):  # the package: the module, __init__.py, django.py
        import sqlfeed
        render = sqlfeed.render
    elif kind.startswith("cffi"):  # the compiled cffi module and _cffi_backend
        import _sqlfeed_cffi  # noqa: F401
        render = cffi_render
    t1 = time.perf_counter()
    calls = [0]

    def progress(p):
        calls[0] += 1
    c1 = time.thread_time()
    if kind in ("ext", "cffi", "ext+progress", "cffi+progress"):
        prog = kind.endswith("+progress")
        render(db=db, template="simplyhired", output=out, progress=progress if prog else None,
               interval=0.001 if prog else 0.1)
    t2 = time.perf_counter()
    # CPU the calling thread spent during the render: its waiting, polling
    # and callbacks (the render itself runs on the library's threads and,
    # with cffi, on a Python thread).
    c2 = time.thread_time()
    print(t1 - t0, t2 - t1, calls[0], vmhwm(), c2 - c1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--db")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    try:
        import cffi
    except ImportError:
        print("SKIP: python_cffi: cffi is not installed (Debian: python3-cffi)")
        return 0
    pkg = os.path.join(a.build, "python")
    if not os.path.isdir(os.path.join(pkg, "sqlfeed")):
        sys.exit("python_cffi: no package in %s (make python)" % pkg)
    db = a.db or "/tmp/jobsbench/jobs-%d.db" % a.rows
    if not os.path.exists(db):
        os.makedirs(os.path.dirname(db), exist_ok=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "tests/ref/make_jobs_db.py"),
                        "--rows", str(a.rows), "--out", db + ".tmp"], check=True)
        os.rename(db + ".tmp", db)
    os.environ.setdefault("SOURCE_DATE_EPOCH", "1767225600")
    with tempfile.TemporaryDirectory(prefix="sqlfeed-cffi.") as tmp:
        build(a.build, tmp)
        # The package as installed: with its .pyc (make python writes none).
        shutil.copytree(os.path.join(pkg, "sqlfeed"), os.path.join(tmp, "pkg", "sqlfeed"))
        compileall.compile_dir(os.path.join(tmp, "pkg"), quiet=1)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(tmp, "pkg"), tmp]))
        kinds = ["ext", "cffi", "bare", "ext+progress", "cffi+progress", "ext-module"]
        got = {k: [] for k in kinds}
        print("python_cffi: cffi %s, %s, %d interleaved rounds (load %s)" % (
            cffi.__version__, db, a.runs, open("/proc/loadavg").read().split()[:3]),
            file=sys.stderr)
        for rnd in range(a.runs + 1):  # round 0 warms the caches up, and is not counted
            for k in kinds:
                out = os.path.join(tmp, k.split("+")[0] + ".xml")
                t0 = time.monotonic()
                p = subprocess.run([sys.executable, __file__, "--child", k, db, out], env=env,
                                   stdout=subprocess.PIPE, check=True, text=True)
                wall = time.monotonic() - t0
                imp, ren, calls, kib, cpu = p.stdout.split()
                if rnd:
                    got[k].append((wall, float(imp), float(ren), int(calls), int(kib),
                                   float(cpu)))
        with open(os.path.join(tmp, "ext.xml"), "rb") as f1, \
                open(os.path.join(tmp, "cffi.xml"), "rb") as f2:
            while True:
                b1, b2 = f1.read(1 << 20), f2.read(1 << 20)
                if b1 != b2:
                    sys.exit("python_cffi: the two bindings' feeds differ")
                if not b1:
                    break
    med = {k: [statistics.median(x[i] for x in got[k]) for i in range(6)] for k in kinds}
    bare_kib = med["bare"][4]
    print("%d rows, medians of %d interleaved rounds, fresh interpreters" % (a.rows, a.runs))
    print()
    print("| binding | process wall s | render s (min-max) | import ms | peak RSS over bare MiB |"
          " progress calls | caller CPU ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for k in kinds:
        w, imp, ren, calls, kib, cpu = med[k]
        rendered = k in ("ext", "cffi", "ext+progress", "cffi+progress")
        rs = [x[2] for x in got[k]]
        print("| %s | %.2f | %s | %.1f | %s | %s | %s |" % (
            k, w, "%.3f (%.2f-%.2f)" % (ren, min(rs), max(rs)) if rendered else "-",
            imp * 1000,
            "%.1f" % ((kib - bare_kib) / 1024) if k != "bare" else "(%.1f MiB)" % (kib / 1024),
            "%d" % calls if "+" in k else "-", "%.1f" % (cpu * 1000) if rendered else "-"))
    print()
    print("import: ext = `import sqlfeed` (the package: the module, __init__.py, django.py), "
          "ext-module = the extension module alone, cffi = `import _sqlfeed_cffi` (and "
          "_cffi_backend); bare = the interpreter doing nothing")
    for b in ("ext", "cffi"):
        d = med[b + "+progress"][2] - med[b][2]
        n = med[b + "+progress"][3]
        c = med[b + "+progress"][5] - med[b][5]
        print("%s: a progress callback every 1 ms: render %+.3f s (noise-level), caller CPU "
              "%+.1f ms over %d calls: %.1f us a call" % (b, d, c * 1000, n,
                                                         c / n * 1e6 if n else 0))
    print("cffi / ext render time: %.3f; the feeds are identical"
          % (med["cffi"][2] / med["ext"][2]))


if __name__ == "__main__":
    sys.exit(main())
