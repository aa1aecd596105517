# emu.scenario: the one declared schema of a scenario file (rules/README.md "Scenario file",
# plus the card and tap keys host_tools/ykt/sim.py adds) and its checker.
# SPDX-License-Identifier: MIT
#
# check(scn, name) returns the first thing wrong as one line, "where: what is expected, got
# what", or None. Every key is listed with what it must be; an unknown key (a typo such as
# "balanse") is refused, not ignored; a tap names a card the file defines; times are real
# clock times on real dates, and the taps of one file are in time order (a validator's clock
# never runs backwards within a day). The sim and emu.farescen check a file before they run
# it, so a malformed scenario is one message, never a traceback or a silently wrong day.
# Common subset (no dataclasses, no f-strings): farescen runs on the unix port too.
import json

from validator.util import bcdtime

CARD_TYPES = ("normal", "senior", "student", "staff", "disabled")
DOORS = ("any", "entry", "exit")
U31 = (1 << 31) - 1


def _isint(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _uint(hi):
    def check(v):
        return None if _isint(v) and 0 <= v <= hi else "a whole number 0..%d" % hi
    return check


def _one_of(*choices):
    def check(v):
        return None if v in choices and not isinstance(v, bool) else \
            "one of " + ", ".join(json.dumps(c) for c in choices)
    return check


def _hex(n):
    def check(v):
        if isinstance(v, str) and len(v) == n:
            try:
                bytes.fromhex(v)
                return None
            except ValueError:
                pass
        return "a string of %d hex digits" % n
    return check


def _flag(v):
    return None if isinstance(v, bool) else "true or false"


def _text(v):
    return None if isinstance(v, str) else "a string"


def _real_date(y, mo, d):
    if not (1 <= mo <= 12 and 1 <= d <= 31 and 2000 <= y <= 2099):
        return False
    # days_from_civil runs on past a month's end (02-30 is 03-02): a real day is before
    # the first of the next month
    return mo == 12 or bcdtime.secs(y, mo, d) < bcdtime.secs(y, mo + 1, 1)


def parse_date(v):
    """(y, mo, d) of a real "YYYY-MM-DD", else None."""
    if not isinstance(v, str) or len(v) != 10 or v[4] != "-" or v[7] != "-":
        return None
    y, mo, d = v[0:4], v[5:7], v[8:10]
    if not (y.isdigit() and mo.isdigit() and d.isdigit()):
        return None
    t = (int(y), int(mo), int(d))
    return t if _real_date(*t) else None


def parse_clock(v):
    """Seconds since midnight of a real "hh:mm:ss" (00:00:00..23:59:59), else None."""
    if not isinstance(v, str) or len(v) != 8 or v[2] != ":" or v[5] != ":":
        return None
    h, m, s = v[0:2], v[3:5], v[6:8]
    if not (h.isdigit() and m.isdigit() and s.isdigit()):
        return None
    h, m, s = int(h), int(m), int(s)
    return h * 3600 + m * 60 + s if h < 24 and m < 60 and s < 60 else None


def _yyyymmdd(v):
    ok = isinstance(v, str) and len(v) == 8 and v.isdigit() and _real_date(
        int(v[0:4]), int(v[4:6]), int(v[6:8]))
    return None if ok else "a real date YYYYMMDD"


def _day(v):
    return None if parse_date(v) else 'a real date "YYYY-MM-DD"'


def _at(v):
    if _isint(v):
        return None if v >= 0 else "device seconds >= 0"
    if isinstance(v, str):
        if "T" in v:
            d, _, t = v.partition("T")
            if parse_date(d) and parse_clock(t) is not None:
                return None
        elif parse_clock(v) is not None:
            return None
    return '"hh:mm:ss" (00:00:00..23:59:59), "YYYY-MM-DDThh:mm:ss" or device seconds'


def _card_type(v):
    if _isint(v):
        return None if 0 <= v <= 255 else "a card type name or an EF15[28] number 0..255"
    return None if v in CARD_TYPES else "one of " + ", ".join(CARD_TYPES) + \
        " or an EF15[28] number"


def _blocked(v):
    return None if isinstance(v, bool) or v == "permanent" else 'true, false or "permanent"'


def _city(v):
    ok = isinstance(v, str) and len(v) == 4 and v.isdigit()
    return None if ok else "a string of 4 decimal digits"


CARD = {
    "issuer": _hex(16), "type": _card_type, "balance": _uint(U31), "interconnect": _flag,
    "app": _one_of("tunion", "local", "m1"), "alg": _one_of("3des", "sm4"), "start": _yyyymmdd,
    "expiry": _yyyymmdd, "blacklisted": _flag, "blocked": _blocked, "phone": _flag,
    "kind": _one_of("A", "B"), "capp": _flag, "comment": _text, "clone_of": _text,
}
FOREIGN = {
    "mode": _one_of("rail", "bus", 1, 2), "type": _uint(255), "line": _uint(65535),
    "station": _uint(65535), "amount": _uint(U31), "city": _city, "flags": _uint(255),
    "comment": _text,
}
TAP = {
    "at": _at, "card": _text, "line": _uint(65535), "stop": _uint(255),
    "direction": _one_of(0, 1), "door": _one_of(*DOORS), "terminal": _hex(12),
    "tear": _one_of("before_commit", "after_commit"), "foreign": FOREIGN, "comment": _text,
}
SCENARIO = {
    "table": _text, "day": _day, "cards": {"*": CARD}, "taps": [TAP], "comment": _text,
    "_comment": _text,
}
REQUIRED = {"scenario": ("cards", "taps"), "tap": ("at", "card"), "validator tap": ("line",)}


def _walk(v, spec, where):
    if isinstance(spec, dict):
        if not isinstance(v, dict):
            return "%s: expected an object {...}, got %s" % (where, json.dumps(v)[:40])
        for k in v:
            sub = spec.get(k, spec.get("*"))
            if sub is None:
                return "%s: unknown key %s (known: %s)" % (
                    where, json.dumps(k), ", ".join(sorted(x for x in spec if x[0] != "_")))
            e = _walk(v[k], sub, "%s.%s" % (where, k) if where != "scenario" else k)
            if e:
                return e
        return None
    if isinstance(spec, list):
        if not isinstance(v, list):
            return "%s: expected a list [...], got %s" % (where, json.dumps(v)[:40])
        for i in range(len(v)):
            e = _walk(v[i], spec[0], "%s[%d]" % (where, i))
            if e:
                return e
        return None
    want = spec(v)
    return "%s: expected %s, got %s" % (where, want, json.dumps(v)[:40]) if want else None


def tap_seconds(at, day):
    """Device seconds of a checked tap time ("hh:mm:ss" needs the scenario's day)."""
    if _isint(at):
        return at
    if "T" in at:
        d, _, t = at.partition("T")
    else:
        d, t = day, at
    y, mo, dd = parse_date(d)
    return bcdtime.secs(y, mo, dd) + parse_clock(t)


def _check_clone(name, spec, known):
    """A card with "clone_of" is a copy of another card's data, made when the day starts:
    same serial, keys, balance and ATC (what a skimmer writes onto a blank card). It takes
    nothing else of its own, and the original is a CPU card (T-Union or the city's)."""
    if "clone_of" not in spec:
        return None
    where = "cards.%s" % name
    orig = spec["clone_of"]
    extra = sorted(set(spec) - {"clone_of", "comment"})
    if extra:
        return "%s: a clone copies %s, it takes no %s of its own" % (
            where, json.dumps(orig), json.dumps(extra[0]))
    if orig == name or orig not in known:
        return "%s.clone_of: no other card %s in cards" % (where, json.dumps(orig))
    if "clone_of" in known[orig]:
        return "%s.clone_of: %s is itself a clone; name the original" % (where, json.dumps(orig))
    if known[orig].get("app") == "m1":
        return "%s.clone_of: %s is an M1 card; clones are of CPU cards" % (
            where, json.dumps(orig))
    return None


def check(scn, cards=None, day=None):
    """The first thing wrong with a scenario (a dict from JSON), or None. cards and day: what
    the file this one extends defines (its taps may use those cards, and that day)."""
    e = _walk(scn, SCENARIO, "scenario")
    if e:
        return e
    for k in REQUIRED["scenario"]:
        if k not in scn:
            return "missing required key %s" % json.dumps(k)
    known = dict(cards or {})
    known.update(scn["cards"])
    for name in sorted(scn["cards"]):
        e = _check_clone(name, scn["cards"][name], known)
        if e:
            return e
    day = scn.get("day", day)
    last = None
    for i in range(len(scn["taps"])):
        tp = scn["taps"][i]
        where = "taps[%d]" % i
        for k in REQUIRED["tap"] + (() if "foreign" in tp else REQUIRED["validator tap"]):
            if k not in tp:
                return "%s: missing required key %s" % (where, json.dumps(k))
        if tp["card"] not in known:
            return "%s.card: no card %s in cards (known: %s)" % (
                where, json.dumps(tp["card"]), ", ".join(sorted(known)) or "none")
        if isinstance(tp["at"], str) and "T" not in tp["at"] and day is None:
            return '%s.at: "%s" needs the scenario\'s "day" (or write YYYY-MM-DDThh:mm:ss)' % (
                where, tp["at"])
        now = tap_seconds(tp["at"], day)
        if last is not None and now < last[0]:
            return "%s.at: %s is before taps[%d] (%s): taps must be in time order" % (
                where, json.dumps(tp["at"]), last[1], json.dumps(scn["taps"][last[1]]["at"]))
        last = (now, i)
    return None
