"""Shared pieces of the format checkers (check_*.py): RFC 3986 URLs, a streaming
reader that tells which leaf values were written in CDATA, and the error list."""
import re
import sys
import xml.parsers.expat

# RFC 3986: an absolute http(s) URI: only unreserved, reserved and %XX (no space,
# no non-ASCII, none of "<>\^`{|}).
_URL = re.compile(r"^https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
_BAD_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def url_problem(u):
    """None when u is an absolute RFC 3986 http(s) URL, else why not."""
    if not u:
        return "empty"
    if not _URL.match(u):
        bad = sorted({c for c in u if not re.match(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]", c)})
        return "not an absolute RFC 3986 http(s) URL" + (f" (raw {bad[:5]!r})" if bad else "")
    if _BAD_PCT.search(u):
        return "a % not followed by two hex digits"
    host = u.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    if not host or host.startswith("@"):
        return "no host"
    return None


class Errors:
    def __init__(self, what):
        self.what, self.list = what, []

    def add(self, where, msg):
        self.list.append(f"{where}: {msg}")

    def finish(self, summary):
        if self.list:
            for e in self.list[:20]:
                print(f"{self.what}: {e}", file=sys.stderr)
            if len(self.list) > 20:
                print(f"{self.what}: ... {len(self.list) - 20} more", file=sys.stderr)
            print(f"{self.what}: FAILED, {len(self.list)} problem(s)", file=sys.stderr)
            sys.exit(1)
        print(f"{self.what}: ok, {summary}")


def items(path, item_depth):
    """Yields (attrs, fields) per element at depth item_depth (1 = the root's
    children): fields maps each child's tag to a list of (text, all_in_cdata)."""
    p = xml.parsers.expat.ParserCreate()
    state = {"depth": 0, "cdata": False, "item": None, "field": None, "text": [], "plain": False}
    out = []

    def start(name, attrs):
        state["depth"] += 1
        d = state["depth"]
        if d == item_depth + 1:
            state["item"] = (dict(attrs), {})
        elif d == item_depth + 2 and state["item"] is not None:
            state["field"], state["text"], state["plain"] = name, [], False

    def end(name):
        d = state["depth"]
        if d == item_depth + 2 and state["field"] is not None:
            text = "".join(state["text"])
            state["item"][1].setdefault(state["field"], []).append((text, not state["plain"]))
            state["field"] = None
        elif d == item_depth + 1 and state["item"] is not None:
            out.append(state["item"])
            state["item"] = None
        state["depth"] -= 1

    def chars(data):
        if state["field"] is not None and state["depth"] == item_depth + 2:
            state["text"].append(data)
            if not state["cdata"] and data.strip():
                state["plain"] = True

    def cdata_start():
        state["cdata"] = True

    def cdata_end():
        state["cdata"] = False

    p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = start, end, chars
    p.StartCdataSectionHandler, p.EndCdataSectionHandler = cdata_start, cdata_end
    p.buffer_text = False
    with open(path, "rb") as f:
        p.ParseFile(f)
    return out
