#!/usr/bin/python3
"""check_sitemap.py FILE...: sitemaps.org documents (a urlset or a sitemapindex, plain or
gzip) against the protocol's rules that sitemap.xsd / siteindex.xsd leave open: every
<loc> an absolute RFC 3986 http(s) URL of at most 2048 characters, every <lastmod>
W3C-DTF (a date, or a date-time with a zone: the XSD's xsd:dateTime also takes
2024-05-01T10:00:00, which the protocol does not), at most 50,000 entries. Exit 0 and a
summary, or 1 listing the problems."""
import gzip
import os
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
from feedcheck import Errors, url_problem, w3cdtf  # noqa: E402

N = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
err = Errors("check_sitemap")
total = 0
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    root = ET.parse(gzip.open(path) if gz else path).getroot()
    name = os.path.basename(path)
    if root.tag not in (N + "urlset", N + "sitemapindex"):
        err.add(name, f"root <{root.tag}>, want urlset or sitemapindex in {N[1:-1]}")
        continue
    entries = list(root)
    if len(entries) > 50000:
        err.add(name, f"{len(entries)} entries (at most 50,000)")
    for i, e in enumerate(entries, 1):
        w = f"{name} entry {i}"
        loc = e.findtext(N + "loc")
        why = url_problem(loc or "")
        if why:
            err.add(w, f"<loc> {loc!r}: {why}")
        elif len(loc) > 2048:
            err.add(w, f"<loc> has {len(loc)} characters (at most 2048)")
        for t in e.findall(N + "lastmod"):
            try:
                w3cdtf((t.text or "").strip())
            except ValueError as x:
                err.add(w, f"<lastmod>: {x}")
    total += len(entries)
if total == 0:
    err.add("sitemap", "no entries")
err.finish(f"{len(sys.argv) - 1} file(s), {total} entries")
