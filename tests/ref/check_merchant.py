#!/usr/bin/python3
"""check_merchant.py FEED: a Google Merchant Center RSS 2.0 product feed against the
documented rules (docs/formats.md): root rss 2.0 with xmlns:g, channel title/link/
description; per item g:id (1-50 characters, unique), title (1-150), description (plain
text, 1-5000, no markup or entities left), link and g:image_link (absolute RFC 3986
URLs), at most 10 g:additional_image_link (URLs), g:price "12.50 EUR", g:availability
and g:condition from their enums. Exit 0 and a summary, or 1 listing the problems."""
import re
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, __import__("os").path.dirname(__file__))
from feedcheck import Errors, url_problem  # noqa: E402

G = "{http://base.google.com/ns/1.0}"
AVAIL = {"in_stock", "out_of_stock", "preorder", "backorder"}
COND = {"new", "refurbished", "used"}
PRICE = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2} [A-Z]{3}$")
# HTML left in a description: a tag of HTML's (plain text may say "size <M>") or an entity.
MARKUP = re.compile(r"</?(a|b|br|div|em|h[1-6]|i|img|li|ol|p|script|span|strong|style|table|"
                    r"td|tr|u|ul)(\s[^>]*)?/?>|<!--|&([A-Za-z]+|#[0-9]+|#x[0-9A-Fa-f]+);", re.I)

err = Errors("check_merchant")
root = ET.parse(sys.argv[1]).getroot()
if root.tag != "rss" or root.get("version") != "2.0":
    err.add("root", f"<{root.tag} version={root.get('version')!r}>, want <rss version=\"2.0\">")
if 'xmlns:g="http://base.google.com/ns/1.0"' not in open(sys.argv[1], encoding="utf-8").read(4096):
    err.add("root", "no xmlns:g=\"http://base.google.com/ns/1.0\"")
channel = root.find("channel")
if channel is None:
    err.finish("")
for el in ("title", "link", "description"):
    if not (channel.findtext(el) or "").strip():
        err.add("channel", f"no <{el}>")
seen = {}
n = images = 0
for i, item in enumerate(channel.findall("item"), 1):
    w = f"item {i}"
    gid = item.findtext(G + "id") or ""
    if not gid.strip():
        err.add(w, "no g:id")
    elif len(gid) > 50:
        err.add(w, f"g:id has {len(gid)} characters (at most 50)")
    elif gid in seen:
        err.add(w, f"g:id {gid!r} repeats item {seen[gid]}")
    seen.setdefault(gid, i)
    title = item.findtext("title") or ""
    if not title.strip() or len(title) > 150:
        err.add(w, f"title has {len(title)} characters (1 to 150)")
    desc = item.findtext("description") or ""
    if not desc.strip() or len(desc) > 5000:
        err.add(w, f"description has {len(desc)} characters (1 to 5000)")
    m = MARKUP.search(desc)
    if m:
        err.add(w, f"description is not plain text: {desc[max(0, m.start() - 10):m.end() + 10]!r}")
    for el in ("link", G + "image_link"):
        why = url_problem(item.findtext(el) or "")
        if why:
            err.add(w, f"{el.replace(G, 'g:')} {item.findtext(el)!r}: {why}")
    extra = item.findall(G + "additional_image_link")
    images += len(extra)
    if len(extra) > 10:
        err.add(w, f"{len(extra)} g:additional_image_link (at most 10)")
    for e in extra:
        why = url_problem(e.text or "")
        if why:
            err.add(w, f"g:additional_image_link {e.text!r}: {why}")
    price = item.findtext(G + "price") or ""
    if not PRICE.match(price):
        err.add(w, f"g:price {price!r} is not like '12.50 EUR'")
    if (item.findtext(G + "availability") or "") not in AVAIL:
        err.add(w, f"g:availability {item.findtext(G + 'availability')!r} not in {sorted(AVAIL)}")
    cond = item.find(G + "condition")
    if cond is not None and (cond.text or "") not in COND:
        err.add(w, f"g:condition {cond.text!r} not in {sorted(COND)}")
    n = i
if n == 0:
    err.add("channel", "no item")
err.finish(f"{n} items, {images} additional images")
