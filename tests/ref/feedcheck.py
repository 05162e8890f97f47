"""Shared pieces of the format checkers (check_*.py): RFC 3986 URLs, the date forms
(RFC 3339, W3C-DTF, RFC 822) parsed to instants, a streaming reader that tells which leaf
values were written in CDATA, and the error list."""
import datetime
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


# RFC 3339 section 5.6 date-time: a zone is part of the grammar (Z or +-hh:mm), T and Z in
# either case (section 5.6's note).
_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?"
                      r"([Zz]|[+-]\d\d:\d\d)$")
# W3C-DTF (https://www.w3.org/TR/NOTE-datetime): YYYY, YYYY-MM, YYYY-MM-DD, or a complete
# date plus hh:mm[:ss[.s]] and a zone designator, which is not optional in a date-time.
_W3CDTF = re.compile(r"^(\d{4})(?:-(\d\d)(?:-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?"
                     r"(Z|[+-]\d\d:\d\d))?)?)?$")


def _instant(y, mo, d, h, mi, s, zone):
    """An aware datetime from the fields (strings or None), or ValueError."""
    if zone in (None, "Z", "z"):
        tz = datetime.timezone.utc
    else:
        hh, mm = int(zone[1:3]), int(zone[4:6])
        if hh > 23 or mm > 59:
            raise ValueError(f"zone {zone} out of range")
        off = datetime.timedelta(hours=hh, minutes=mm)
        tz = datetime.timezone(-off if zone[0] == "-" else off)
    sec = int(s or 0)
    leap = sec == 60  # a leap second (RFC 3339 5.7): the instant before the next minute
    t = datetime.datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0),
                          59 if leap else sec, tzinfo=tz)
    return t + datetime.timedelta(seconds=1) if leap else t


def rfc3339(text):
    """The instant of an RFC 3339 date-time (a zone required), or ValueError."""
    m = _RFC3339.match(text)
    if not m:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time with a zone")
    y, mo, d, h, mi, s, _, zone = m.groups()
    return _instant(y, mo, d, h, mi, s, zone)


def w3cdtf(text):
    """The instant of a W3C-DTF value (a date at midnight UTC, as sqlfeed prints a date-only
    value as a date-time), or ValueError: a date-time without a zone is not W3C-DTF."""
    m = _W3CDTF.match(text)
    if not m:
        raise ValueError(f"{text!r} is not W3C-DTF (a date, or a date-time with a zone)")
    y, mo, d, h, mi, s, _, zone = m.groups()
    return _instant(y, mo, d, h, mi, s, zone)


_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_ZONES = {"UT": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7,
          "MDT": -6, "PST": -8, "PDT": -7}
# RFC 822 section 5 (with RFC 1123's four-digit year allowed): [day ","] date time zone.
_RFC822 = re.compile(r"^(?:([A-Z][a-z]{2}), )?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}|\d{2}) "
                     r"(\d\d):(\d\d)(?::(\d\d))? ([A-Z]{1,3}|[+-]\d{4})$")


def rfc822(text):
    """The instant of an RFC 822 date-time, or ValueError; a weekday that is not the
    date's (computed) is an error, as is a day the month does not have."""
    m = _RFC822.match(text)
    if not m:
        raise ValueError(f"{text!r} is not an RFC 822 date-time")
    wd, d, mon, y, h, mi, s, zone = m.groups()
    if mon not in _MONTHS:
        raise ValueError(f"{text!r}: {mon!r} is not a month")
    if wd is not None and wd not in _DAYS:
        raise ValueError(f"{text!r}: {wd!r} is not a weekday")
    if zone in _ZONES:
        zone = "%+03d:00" % _ZONES[zone]
    elif zone[0] in "+-":
        zone = zone[:3] + ":" + zone[3:]
    else:
        raise ValueError(f"{text!r}: zone {zone!r} is not one this check reads (UT, GMT, Z, the US zones, +-hhmm)")
    year = int(y) if len(y) == 4 else 1900 + int(y)
    t = _instant(year, _MONTHS.index(mon) + 1, d, h, mi, s, zone)
    if wd is not None and _DAYS[datetime.date(year, _MONTHS.index(mon) + 1, int(d)).weekday()] != wd:
        real = _DAYS[datetime.date(year, _MONTHS.index(mon) + 1, int(d)).weekday()]
        raise ValueError(f"{text!r}: the date is a {real}, not a {wd}")
    return t


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


def items(path, item_depth, tag=None):
    """Yields (attrs, fields) per element at depth item_depth (1 = the root's
    children), only those named tag when given: fields maps each child's tag to a
    list of (text, all_in_cdata)."""
    p = xml.parsers.expat.ParserCreate()
    state = {"depth": 0, "cdata": False, "item": None, "field": None, "text": [], "plain": False}
    out = []

    def start(name, attrs):
        state["depth"] += 1
        d = state["depth"]
        if d == item_depth + 1:
            state["item"] = (dict(attrs), {}) if tag is None or name == tag else None
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
