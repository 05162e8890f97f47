#!/usr/bin/python3
"""check_merchant.py FEED: a Google Merchant Center RSS 2.0 product feed against the
documented rules (docs/formats.md): root rss 2.0 with xmlns:g, channel title/link/
description; per item g:id (1-50 characters, unique), title (1-150), description (plain
text, 1-5000, nothing tag-like and no entity left), link and g:image_link (absolute
RFC 3986 URLs), at most 10 g:additional_image_link (URLs), g:price "12.50 EUR" (digits,
two decimals, a space, three upper-case letters), g:availability from its enum (preorder
and backorder only with a g:availability_date, RFC 3339), g:condition from its enum.
Exit 0 and a summary, or 1 listing the problems."""
import re
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, __import__("os").path.dirname(__file__))
from feedcheck import Errors, rfc3339, url_problem  # noqa: E402

G = "{http://base.google.com/ns/1.0}"
AVAIL = {"in_stock", "out_of_stock", "preorder", "backorder"}
COND = {"new", "refurbished", "used"}
DATED = {"preorder", "backorder"}  # Google asks for g:availability_date with these
PRICE = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2} [A-Z]{3}$")
# Markup left in a description, after XML unescaping: a start or end tag of an HTML
# element (the HTML standard's elements, and the obsolete ones still met in shop data:
# font, center, ...), a comment, a declaration or a processing instruction, or a
# character reference an HTML reader would decode. Text such as "Size <M>" (what the
# text formatter makes of "Size &lt;M&gt;") names no element and is text.
HTML_ELEMENTS = set("""
a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound big
blink blockquote body br button canvas caption center cite code col colgroup data datalist
dd del details dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form
frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe image img input ins
isindex kbd keygen label legend li link listing main map mark marquee math menu menuitem meta
meter multicol nav nextid nobr noembed noframes noscript object ol optgroup option output p
param picture plaintext pre progress q rb rp rt rtc ruby s samp script search section select
slot small source spacer span strike strong style sub summary sup svg table tbody td template
textarea tfoot th thead time title tr track tt u ul var video wbr xmp""".split())
TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)(?=[\s/>])[^>]*>")
OTHER = re.compile(r"<[!?][^>]*>|&([A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")


def markup(text):
    """The first piece of markup an HTML reader would see in text, or None."""
    hits = [m for m in TAG.finditer(text) if m.group(1).lower() in HTML_ELEMENTS]
    other = OTHER.search(text)
    if other:
        hits.append(other)
    return min(hits, key=lambda m: m.start()) if hits else None

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
    m = markup(desc)
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
    avail = item.findtext(G + "availability") or ""
    if avail not in AVAIL:
        err.add(w, f"g:availability {avail!r} not in {sorted(AVAIL)}")
    when = item.findtext(G + "availability_date")
    if avail in DATED and when is None:
        err.add(w, f"g:availability {avail!r} without a g:availability_date")
    if when is not None:
        try:
            rfc3339(when)
        except ValueError as e:
            err.add(w, f"g:availability_date: {e}")
    cond = item.find(G + "condition")
    if cond is not None and (cond.text or "") not in COND:
        err.add(w, f"g:condition {cond.text!r} not in {sorted(COND)}")
    n = i
if n == 0:
    err.add("channel", "no item")
err.finish(f"{n} items, {images} additional images")
