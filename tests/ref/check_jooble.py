#!/usr/bin/python3
"""check_jooble.py FEED: a Jooble job feed against its documented rules (docs/formats.md):
one wrapper element, each job an element with a unique non-empty id attribute; link (an
absolute RFC 3986 URL), name, description, pubdate and updated (DD.MM.YYYY, real dates);
every value in CDATA. Exit 0 and a summary, or 1 listing the problems."""
import datetime
import re
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from feedcheck import Errors, items, url_problem  # noqa: E402

DATE = re.compile(r"^[0-9]{2}\.[0-9]{2}\.[0-9]{4}$")
err = Errors("check_jooble")
seen = {}
n = 0
for i, (attrs, fields) in enumerate(items(sys.argv[1], 1), 1):
    w = f"job {i}"
    jid = attrs.get("id", "")
    if not jid.strip():
        err.add(w, "no id attribute")
    elif jid in seen:
        err.add(w, f"id {jid!r} repeats job {seen[jid]}")
    seen.setdefault(jid, i)
    for el in ("link", "name", "description", "pubdate", "updated"):
        if not fields.get(el) or not fields[el][0][0].strip():
            err.add(w, f"no <{el}>")
    for el, vals in fields.items():
        for text, in_cdata in vals:
            if not in_cdata:
                err.add(w, f"<{el}> {text[:40]!r} is not in CDATA")
    for el in ("pubdate", "updated", "expire"):
        for text, _ in fields.get(el, []):
            ok = DATE.match(text)
            if ok:
                try:
                    datetime.datetime.strptime(text, "%d.%m.%Y")
                except ValueError:
                    ok = None
            if not ok:
                err.add(w, f"<{el}> {text!r} is not a DD.MM.YYYY date")
    for text, _ in fields.get("link", []):
        why = url_problem(text)
        if why:
            err.add(w, f"<link> {text!r}: {why}")
    n = i
if n == 0:
    err.add("feed", "no job")
err.finish(f"{n} jobs")
