#!/usr/bin/python3
"""check_indeed.py FEED: an Indeed-family feed (source/job) against the rules
docs/formats.md gives: title, date (ISO 8601 with a zone), referencenumber (unique per
job and location), url (absolute RFC 3986), company, city (never empty), country and
description present; every value in CDATA. Exit 0 and a summary, or 1 listing them."""
import datetime
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from feedcheck import Errors, items, url_problem  # noqa: E402

err = Errors("check_indeed")
seen = {}
n = 0
for i, (attrs, fields) in enumerate(items(sys.argv[1], 1), 1):
    if "title" not in fields and "referencenumber" not in fields:
        continue  # publisher, publisherurl, lastBuildDate
    w = f"job {i}"
    n += 1
    for el in ("title", "date", "referencenumber", "url", "company", "city", "country",
               "description"):
        if not fields.get(el) or not fields[el][0][0].strip():
            err.add(w, f"<{el}> is missing or empty")
    for el, vals in fields.items():
        for text, in_cdata in vals:
            if text and not in_cdata:
                err.add(w, f"<{el}> {text[:40]!r} is not in CDATA")
    ref = fields.get("referencenumber", [("", True)])[0][0]
    if ref in seen:
        err.add(w, f"referencenumber {ref!r} repeats job {seen[ref]}")
    seen.setdefault(ref, i)
    date = fields.get("date", [("", True)])[0][0]
    try:
        if datetime.datetime.fromisoformat(date.replace("Z", "+00:00")).tzinfo is None:
            err.add(w, f"<date> {date!r} has no zone")
    except ValueError:
        err.add(w, f"<date> {date!r} is not ISO 8601")
    for text, _ in fields.get("url", []):
        why = url_problem(text)
        if why:
            err.add(w, f"<url> {text!r}: {why}")
if n == 0:
    err.add("feed", "no job")
err.finish(f"{n} jobs, {len(seen)} referencenumbers")
