"""sqlfeed: stream SQL rows into XML feeds, through libsqlfeed (linked statically).

    import sqlfeed
    run = sqlfeed.render(db="jobs.db", template="simplyhired", output="feed.xml",
                         params={"site": "justjobs"})
    print(run.rows, run.bytes, run.seconds, run.peak_rss, run.flatness, run.census)

    # several documents from one scan, a split sitemap with an index among them:
    run = sqlfeed.render(db="shop.db", outputs=[
        {"template": "sitemap", "options": {"split_rows": 50000, "compress": "gzip"},
         "index": {"template": "sitemap-index", "output": "www/sitemap.xml",
                   "base_url": "https://shop.example/", "lastmod": "lastmod"}},
    ])

See python/README.md.
"""
from ._sqlfeed import (Error, OutOfMemory, UsageError, TemplateError, TemplateNameError,
                       DatabaseError, OutputError, Cancelled, StateError, RefusedError,
                       BusyError, InvalidRowError, library_version, templates, mask_db)
from ._sqlfeed import render as _render
from ._sqlfeed import publish_shards as _publish_shards
from ._sqlfeed import export_snapshot as _export_snapshot, release_snapshot as _release_snapshot
from .django import database_url

__all__ = ["render", "publish", "Snapshot", "Run", "OutputRun", "templates", "mask_db", "database_url", "Error",
           "OutOfMemory", "UsageError", "TemplateError", "TemplateNameError", "DatabaseError",
           "OutputError", "Cancelled", "StateError", "RefusedError", "BusyError",
           "InvalidRowError", "library_version"]
__version__ = library_version


class OutputRun:
    """What one output of a render did.

    path (the document's file; for a set of parts with an index, the index's
    file; None for a set without one), parts_pattern (None for one document),
    template, rows (rows it wrote), rows_skipped (left out by on_invalid
    "skip"), bytes (document bytes, every part's), bytes_out (after
    compression), parts ([{path, rows, bytes}], one entry for a single
    document), index ({path, bytes, bytes_out} or None)."""

    __slots__ = ("path", "parts_pattern", "template", "rows", "rows_skipped", "bytes",
                 "bytes_out", "parts", "index")

    def __init__(self, d):
        for k in self.__slots__:
            setattr(self, k, d[k])

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        where = self.path if self.parts_pattern is None else (
            "%s (%d parts%s)" % (self.parts_pattern, len(self.parts),
                                 ", index " + self.path if self.index else ""))
        return "<sqlfeed.OutputRun %d rows, %d bytes -> %s>" % (self.rows, self.bytes, where)


class Run:
    """A finished render's figures.

    rows (rows read by the scan), bytes (document bytes, all outputs),
    bytes_out (after compression, all outputs), seconds, peak_rss (bytes),
    flatness ("flat", "grows" or "unknown"), verdict (the watch's sentence),
    grew_most, census ({type: {count, bytes, peak_bytes, allocs}}, live while
    the run's handles existed), output (the first output's path, or its
    index's, or its parts' pattern), outputs (an OutputRun per output)."""

    __slots__ = ("rows", "bytes", "bytes_out", "seconds", "peak_rss", "flatness", "verdict",
                 "grew_most", "census", "output", "census_live_bytes", "census_peak_bytes",
                 "outputs")

    def __init__(self, d):
        for k in self.__slots__:
            setattr(self, k, d[k])
        self.outputs = [OutputRun(o) for o in d["outputs"]]

    def as_dict(self):
        d = {k: getattr(self, k) for k in self.__slots__}
        d["outputs"] = [o.as_dict() for o in self.outputs]
        return d

    def __repr__(self):
        to = self.output if len(self.outputs) == 1 else "%d outputs" % len(self.outputs)
        return ("<sqlfeed.Run %d rows, %d bytes in %.2f s, peak RSS %.1f MiB, %s -> %s>"
                % (self.rows, self.bytes, self.seconds, self.peak_rss / 1048576.0,
                   self.flatness, to))


def _usage(msg):
    """A sqlfeed.UsageError (status 2), as the library raises for wrong arguments."""
    e = UsageError(msg)
    e.status = 2
    e.message = msg
    return e


def _codec_of_name(name):
    return "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else "none"


_SUFFIX = {"gzip": ".gz", "zstd": ".zst", "none": ""}


def _derive(path, insert, codec):
    """The command's rule (cli/opts.c): path's file name with its compression
    suffix and then its extension taken off, `insert` and the codec's suffix
    put back: ("dir/sitemap.xml", "-%r-%04d", "gzip") -> "dir/sitemap-%r-%04d.xml.gz"."""
    own = _codec_of_name(path)
    if own != "none":
        path = path[:-len(_SUFFIX[own])]
    base = path.rfind("/") + 1
    dot = path.rfind(".")
    ext = dot if dot > base else len(path)
    return path[:ext] + insert + path[ext:] + _SUFFIX[codec]


# re is imported where it is used, as django.py imports urllib.parse: at
# the top they would be most of `import sqlfeed`'s time (several ms, against
# 1.3-1.8 ms for the package with its .pyc; python/README.md, "Why a C
# extension, not cffi").
def _has_conversion(s):
    import re
    return re.search(r"%[0-9]*[dr]", s) is not None


def _is_absolute_url(u):
    """scheme://host..., as an index's <loc> must be (the command's check)."""
    import re
    m = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#]*)", u)
    return bool(m and m.group(1) and not m.group(1).startswith(":"))


def _is_split(opts):
    return any(str(opts.get(k, "0")) not in ("", "0") for k in ("split_rows", "split_bytes"))


_ENTRY_KEYS = {"template", "output", "options", "parts", "index"}
_INDEX_KEYS = {"template", "output", "base_url", "lastmod"}


def _resolve(i, e):
    """One entry of outputs= as the tuple _sqlfeed.render takes, by the
    command's rules (cli/opts.c cli_output_resolve), without the format
    defaults a template may declare: see python/README.md."""
    w = "outputs[%d]" % i
    if not isinstance(e, dict):
        raise TypeError("%s must be a dict, not %s" % (w, type(e).__name__))
    unknown = set(e) - _ENTRY_KEYS
    if unknown:
        raise TypeError("%s: unknown key(s) %s (template, output, options, parts, index)"
                        % (w, ", ".join(sorted(map(repr, unknown)))))
    tpl, path, parts = e.get("template"), e.get("output"), e.get("parts")
    opts = e.get("options") or {}
    index = e.get("index")
    if not isinstance(tpl, str) or not tpl:
        raise TypeError("%s: template must be a built-in's name or a template file" % w)
    for k, v in (("output", path), ("parts", parts)):
        if v is not None and (not isinstance(v, str) or not v):
            raise TypeError("%s: %s must be a non-empty str" % (w, k))
    if not isinstance(opts, dict):
        raise TypeError("%s: options must be a dict" % w)
    itpl = ipath = base_url = lastmod = None
    if index is not None:
        if not isinstance(index, dict):
            raise TypeError("%s: index must be a dict" % w)
        unknown = set(index) - _INDEX_KEYS
        if unknown:
            raise TypeError("%s: index: unknown key(s) %s (template, output, base_url, lastmod)"
                            % (w, ", ".join(sorted(map(repr, unknown)))))
        itpl, ipath = index.get("template"), index.get("output")
        base_url, lastmod = index.get("base_url"), index.get("lastmod")
        if not isinstance(itpl, str) or not itpl or not isinstance(ipath, str) or not ipath:
            raise TypeError("%s: index needs template and output (str)" % w)
        if base_url is not None and not _is_absolute_url(str(base_url)):
            raise _usage("%s: index base_url '%s' is not an absolute URL: give a scheme and a "
                         "host (https://shop.example/sitemaps)" % (w, base_url))
    split = _is_split(opts)
    if index is not None and not split:
        raise _usage("%s: an index needs split_rows or split_bytes (an index lists the parts "
                     "of a split output)" % w)
    if parts is not None and not split:
        raise _usage("%s: parts needs split_rows or split_bytes" % w)
    if not split:
        if path is None:
            raise _usage("%s: missing output" % w)
    else:
        # The parts: `parts`, or `output` when it is a pattern, or derived
        # from `output` (feed.xml.gz -> feed-%04d.xml.gz) or, with an index
        # and no output, from the index's name (sitemap.xml ->
        # sitemap-%r-%04d.xml, + .gz or .zst when compressed).
        if parts is not None and path is not None:
            raise _usage("%s: output and parts both name the parts: give one (output "
                         "feed-%%04d.xml.gz, or feed.xml.gz for feed-%%04d.xml.gz; or parts)" % w)
        if parts is None:
            name = path if path is not None else ipath
            if name is None:
                raise _usage("%s: missing output (or parts)" % w)
            if path is not None and _has_conversion(path):
                parts = path
            else:
                compress = str(opts.get("compress", "auto"))
                codec = compress if compress != "auto" else _codec_of_name(name)
                parts = _derive(name, "-%r-%04d" if index is not None else "-%04d", codec)
        path = None
        tags = parts.count("%r")
        if index is not None and tags != 1:
            raise _usage("%s: the parts' pattern '%s' has %s" % (
                w, parts, "more than one %r" if tags else "no %r for the run's tag (an index "
                "needs new names each run, e.g. sitemap-%r-%04d.xml)"))
        if index is None and tags:
            raise _usage("%s: the parts' pattern '%s' has %%r, the run's tag, which only a set "
                         "with an index has" % (w, parts))
    # What the name says and what was asked must agree (issue 8): a .gz name
    # with compress none, or a .zst one with gzip, is refused.
    named = parts if split else path
    compress = str(opts.get("compress", "auto"))
    by_name = _codec_of_name(named)
    if compress not in ("auto", by_name) and by_name != "none":
        raise _usage("%s: '%s' names a %s file but compress is %s" % (w, named, by_name, compress))
    codec = compress if compress != "auto" else by_name
    if "level" in opts and codec == "none":
        raise _usage("%s: level needs compression ('%s' is not .gz or .zst; give compress gzip "
                     "or zstd)" % (w, named))
    return (tpl, path, parts, opts, itpl, ipath,
            None if base_url is None else str(base_url), None if lastmod is None else str(lastmod))


def render(db, template=None, output=None, params=None, query=None, progress=None, interval=0.1,
           time=None, options=None, output_options=None, outputs=None, shard=None,
           shard_key=None, shard_dir=None, snapshot=None, lastmod=None, run=None):
    """Renders `template` (a built-in's name or a template file) over the rows of
    `query` (None: the template's own) from `db` into `output`, published
    atomically; returns a Run. The GIL is released while rendering. `progress`,
    if given, is called with a dict (elapsed, rows, rate, bytes, rss, peak_rss,
    total, percent, eta) every `interval` seconds on the calling thread; an
    exception it raises, or KeyboardInterrupt, cancels the render (nothing is
    published, no temporary file is left) and propagates. Failures raise
    sqlfeed.Error subclasses with .status and .message.

    Instead of template/output/output_options, `outputs` lists several
    documents rendered from one scan, each a dict: template, output, options
    (sf_output_set_option's: compress, level, split_rows, split_bytes, ...),
    parts (a pattern, with a split) and index ({template, output, base_url,
    lastmod}); query=None takes the first template's own query. All are
    published only if all succeed. A template's sqlfeed-defaults are not
    applied: give the options (python/README.md).

    shard=(K, N) with shard_key=COLUMN renders only shard K of N (docs/shards.md)
    into shard_dir (default: output + ".shards")/K-of-N.part, compressed as
    output's name says, with its manifest K-of-N.json beside it; publish()
    joins them. lastmod=COLUMN records the shard's largest value of COLUMN.
    snapshot=ID (PostgreSQL): read in the snapshot a Snapshot holds. run=ID names
    the build (publish(run=ID) joins only its shards)."""
    source_options = {}
    if snapshot is not None:
        source_options["snapshot"] = str(snapshot)
    if (shard is not None or shard_key is not None or shard_dir is not None or lastmod is not None
            or run is not None):
        if outputs is not None or shard is None or shard_key is None or output is None:
            raise TypeError("a sharded render needs shard=(K, N), shard_key and output "
                            "(one output: no outputs=)")
        k, n = shard
        source_options["shard"] = "%d/%d" % (int(k), int(n))
        source_options["shard_key"] = str(shard_key)
        import os
        d = shard_dir if shard_dir is not None else output + ".shards"
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        oo = dict(output_options or {})
        oo.setdefault("compress", _codec_of_name(output))
        oo.setdefault("cache", "keep")  # publish reads the part back soon
        output_options = oo
        output = "%s/%d-of-%d.part" % (d, int(k), int(n))
        # This shard's earlier manifest goes first, as the command does: a
        # render failing before its rows (a database down) leaves the shard
        # missing, never an earlier run's part for publish to join.
        try:
            os.unlink("%s/%d-of-%d.json" % (d, int(k), int(n)))
        except FileNotFoundError:
            pass
        if lastmod is not None or run is not None:
            options = dict(options or {})
            if lastmod is not None:
                options["shard_lastmod"] = str(lastmod)
            if run is not None:
                options["shard_run"] = str(run)
    if outputs is None:
        if template is None or output is None:
            raise TypeError("render() needs template and output, or outputs")
        entries = [{"template": template, "output": output, "options": output_options}]
    else:
        if template is not None or output is not None or output_options is not None:
            raise TypeError("render(): give template, output and output_options, or outputs, "
                            "not both")
        if isinstance(outputs, (dict, str)) or not hasattr(outputs, "__iter__"):
            raise TypeError("outputs must be a list of dicts")
        entries = list(outputs)
        if not entries:
            raise ValueError("outputs is empty")
    resolved = [_resolve(i, e) for i, e in enumerate(entries)]
    return Run(_render(db, resolved, params, query, progress, interval, time, options,
                       source_options))


def _is_template_file(name):
    return "/" in name or name.endswith(".mustache")


def publish(template, output, shards, shard_dir=None, params=None, time=None, index=None,
            base_url=None, parts=None, run=None, min_rows=None, max_drop=None):
    """Joins the parts of a sharded render (render(shard=(K, N), ...) for K in
    1..N, or `sqlfeed render --shard`) into `output`, published atomically, as
    `sqlfeed publish` does: checks every manifest first and raises RefusedError
    (status 9, the command's exit 7) naming a missing, damaged or disagreeing
    shard, leaving `output` as it was. params must be the shards' own. Returns
    the feed's rows. The GIL is released while it joins.

    Shards that were split (output_options split_rows / split_bytes) are
    published as one set instead: index= the index template (e.g.
    "sitemap-index"), output the index, base_url the parts' URL prefix, parts
    their pattern (default from output: sitemap.xml -> sitemap-%r-%04d.xml.gz,
    by the shards' compression). min_rows and max_drop are render's rails,
    for the whole feed: RefusedError, the previous feed kept."""
    d = shard_dir if shard_dir is not None else output + ".shards"
    shards = int(shards)
    if not 1 <= shards <= 1024:
        raise ValueError("shards must be from 1 to 1024, got %d" % shards)
    run = None if run is None else str(run)
    rails = (None if min_rows is None else str(min_rows),
             None if max_drop is None else str(max_drop))
    if index is None:
        if parts is not None or base_url is not None:
            raise TypeError("parts and base_url go with index= (split shards)")
        return _publish_shards(template, _is_template_file(template), d, shards, output,
                               params, time, None, False, None, None, run, *rails)
    if parts is None:
        import json
        try:
            with open("%s/1-of-%d.json" % (d, int(shards))) as f:
                codec = json.load(f).get("compress", "none")
        except (OSError, ValueError):
            codec = "none"  # publish says what is wrong with the set
        parts = _derive(output, "-%r-%04d", codec)
    if base_url is not None and not _is_absolute_url(str(base_url)):
        raise _usage("base_url '%s' is not an absolute URL" % base_url)
    return _publish_shards(template, _is_template_file(template), d, shards, output,
                           params, time, index, _is_template_file(index), parts,
                           None if base_url is None else str(base_url), run, *rails)


class Snapshot:
    """A PostgreSQL snapshot exported and held open, for shards to share:

        with sqlfeed.Snapshot(db) as snap:
            ... render(db, ..., shard=(k, n), shard_key="id", snapshot=snap.id) ...

    The transaction stays open until close() (or the end of the with block):
    keep it until every shard has finished, so a retried shard can import it
    again. .id is the pg_export_snapshot() id."""

    def __init__(self, db):
        self.id, self._holder = _export_snapshot(db)

    def close(self):
        if self._holder is not None:
            _release_snapshot(self._holder)
            self._holder = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
