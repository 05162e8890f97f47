#!/usr/bin/python3
"""check_indeed.py FEED: an Indeed-family feed (source/job) against the rules
docs/formats.md gives: title, date (RFC 3339, a zone required), referencenumber (unique per
job and location), url (absolute RFC 3986), company, city (never empty), country and
description present; every value in CDATA. Every <job> child of the root is a job (one
without title or referencenumber fails, never passes as a header). Exit 0 and a summary,
or 1 listing them."""
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from feedcheck import Errors, items, rfc3339, url_problem  # noqa: E402

err = Errors("check_indeed")
seen = {}
n = 0
for i, (attrs, fields) in enumerate(items(sys.argv[1], 1, "job"), 1):
    w = f"job {i}"
    n = i
    for el in ("title", "date", "referencenumber", "url", "company", "city", "country",
               "description"):
        if not fields.get(el) or not fields[el][0][0].strip():
            err.add(w, f"<{el}> is missing or empty")
    for el, vals in fields.items():
        for text, in_cdata in vals:
            if text and not in_cdata:
                err.add(w, f"<{el}> {text[:40]!r} is not in CDATA")
    ref = fields.get("referencenumber", [("", True)])[0][0]
    if ref.strip() and ref in seen:  # (an empty one is said above)
        err.add(w, f"referencenumber {ref!r} repeats job {seen[ref]}")
    elif ref.strip():
        seen[ref] = i
    date = fields.get("date", [("", True)])[0][0]
    try:
        rfc3339(date)
    except ValueError as e:
        err.add(w, f"<date>: {e}")
    for text, _ in fields.get("url", []):
        why = url_problem(text)
        if why:
            err.add(w, f"<url> {text!r}: {why}")
if n == 0:
    err.add("feed", "no job")
err.finish(f"{n} jobs, {len(seen)} referencenumbers")
