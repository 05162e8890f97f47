#!/usr/bin/python3
"""check_feedparser.py FEED [N]: reads an RSS or Atom feed with Python feedparser (what
feed readers use): no bozo (not well-formed, or not a feed), the feed's own date parsed,
every entry's date parsed, and, given N, exactly N entries. Exit 0 or 1 with the reason."""
import sys

import feedparser

d = feedparser.parse(sys.argv[1])
problems = []
if d.bozo:
    problems.append(f"bozo: {d.bozo_exception!r}")
if not d.version:
    problems.append("not recognised as a feed")
if not d.feed.get("updated_parsed"):
    problems.append(f"the feed's date {d.feed.get('updated')!r} does not parse")
for i, e in enumerate(d.entries, 1):
    if not (e.get("published_parsed") or e.get("updated_parsed")):
        problems.append(f"entry {i}: date {e.get('published') or e.get('updated')!r} does not parse")
if len(sys.argv) > 2 and len(d.entries) != int(sys.argv[2]):
    problems.append(f"{len(d.entries)} entries, want {sys.argv[2]}")
if not d.entries:
    problems.append("no entries")
if problems:
    for p in problems[:20]:
        print(f"check_feedparser: {p}", file=sys.stderr)
    sys.exit(1)
print(f"check_feedparser: ok, {d.version}, {len(d.entries)} entries, all dates parsed")
