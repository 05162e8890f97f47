"""sqlfeed: stream SQL rows into XML feeds, through libsqlfeed (linked statically).

    import sqlfeed
    run = sqlfeed.render(db="jobs.db", template="simplyhired", output="feed.xml",
                         params={"site": "justjobs"})
    print(run.rows, run.bytes, run.seconds, run.peak_rss, run.flatness, run.census)

See python/README.md.
"""
from ._sqlfeed import (Error, OutOfMemory, UsageError, TemplateError, TemplateNameError,
                       DatabaseError, OutputError, Cancelled, StateError, RefusedError,
                       BusyError, InvalidRowError, library_version, templates, mask_db)
from ._sqlfeed import render as _render
from .django import database_url

__all__ = ["render", "Run", "templates", "mask_db", "database_url", "Error", "OutOfMemory",
           "UsageError", "TemplateError", "TemplateNameError", "DatabaseError", "OutputError",
           "Cancelled", "StateError", "RefusedError", "BusyError", "InvalidRowError",
           "library_version"]
__version__ = library_version


class Run:
    """A finished render's figures.

    rows, bytes (document bytes), bytes_out (after compression), seconds,
    peak_rss (bytes), flatness ("flat", "grows" or "unknown"), verdict (the
    watch's sentence), grew_most, census ({type: {count, bytes, peak_bytes,
    allocs}}, live while the run's handles existed), output (the path)."""

    __slots__ = ("rows", "bytes", "bytes_out", "seconds", "peak_rss", "flatness", "verdict",
                 "grew_most", "census", "output", "census_live_bytes", "census_peak_bytes")

    def __init__(self, d):
        for k in self.__slots__:
            setattr(self, k, d[k])

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return ("<sqlfeed.Run %d rows, %d bytes in %.2f s, peak RSS %.1f MiB, %s -> %s>"
                % (self.rows, self.bytes, self.seconds, self.peak_rss / 1048576.0,
                   self.flatness, self.output))


def render(db, template, output, params=None, query=None, progress=None, interval=0.1,
           time=None, options=None, output_options=None):
    """Renders `template` (a built-in's name or a template file) over the rows of
    `query` (None: the template's own) from `db` into `output`, published
    atomically; returns a Run. The GIL is released while rendering. `progress`,
    if given, is called with a dict (elapsed, rows, rate, bytes, rss, peak_rss,
    total, percent, eta) every `interval` seconds on the calling thread; an
    exception it raises, or KeyboardInterrupt, cancels the render (nothing is
    published, no temporary file is left) and propagates. Failures raise
    sqlfeed.Error subclasses with .status and .message."""
    return Run(_render(db, template, output, params, query, progress, interval, time, options,
                       output_options))
