#!/usr/bin/python3
"""check_feedparser.py FEED [N]: reads an RSS or Atom feed with Python feedparser (what
feed readers use): no bozo (not well-formed, or not a feed), the feed's own date parsed,
every entry's date parsed, and, given N, exactly N entries. Then the rules feedparser
forgives, read from the XML itself: Atom (RFC 4287) entry ids unique (4.2.6), every date
an RFC 3339 date-time with its zone (3.3), an author on the feed or on every entry
(4.1.1); RSS 2.0 guids unique, every pubDate and lastBuildDate RFC 822 with the weekday
the date has. Exit 0 or 1 with the reason."""
import os
import sys
import xml.etree.ElementTree as ET

import feedparser

sys.path.insert(0, os.path.dirname(__file__))
from feedcheck import rfc3339, rfc822  # noqa: E402

A = "{http://www.w3.org/2005/Atom}"
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


def date_check(where, text, parse):
    try:
        parse(text or "")
    except ValueError as e:
        problems.append(f"{where}: {e}")


def unique(what, noun, values):
    seen = {}
    for i, v in values:
        if v in seen:
            problems.append(f"{what} {v!r} of {noun} {i} repeats {noun} {seen[v]}")
        seen.setdefault(v, i)


try:
    root = ET.parse(sys.argv[1]).getroot()
except ET.ParseError:
    root = None  # bozo, said above
if root is not None and root.tag == A + "feed":
    entries = root.findall(A + "entry")
    for el in ("updated", "published"):
        for t in root.findall(A + el):
            date_check(f"feed <{el}>", t.text, rfc3339)
    for i, e in enumerate(entries, 1):
        for el in ("updated", "published"):
            for t in e.findall(A + el):
                date_check(f"entry {i} <{el}>", t.text, rfc3339)
    unique("id", "entry", [(i, (e.findtext(A + "id") or "").strip()) for i, e in enumerate(entries, 1)])
    if root.find(A + "author") is None:
        bare = [i for i, e in enumerate(entries, 1) if e.find(A + "author") is None and
                (e.find(A + "source") is None or e.find(A + "source").find(A + "author") is None)]
        if bare:
            problems.append(f"no author on the feed, and none on entry {bare[0]}"
                            f"{f' (and {len(bare) - 1} more)' if len(bare) > 1 else ''}")
elif root is not None and root.tag == "rss":
    channel = root.find("channel")
    items = channel.findall("item") if channel is not None else []
    for el in ("pubDate", "lastBuildDate"):
        for t in (channel.findall(el) if channel is not None else []):
            date_check(f"channel <{el}>", t.text, rfc822)
    for i, it in enumerate(items, 1):
        for t in it.findall("pubDate"):
            date_check(f"item {i} <pubDate>", t.text, rfc822)
    unique("guid", "item", [(i, it.findtext("guid").strip()) for i, it in enumerate(items, 1)
                    if it.find("guid") is not None])
if problems:
    for p in problems[:20]:
        print(f"check_feedparser: {p}", file=sys.stderr)
    sys.exit(1)
print(f"check_feedparser: ok, {d.version}, {len(d.entries)} entries, all dates parsed")
