# ykt fares: compile a city fare table (JSON) into the signed binary the validator loads.
# SPDX-License-Identifier: MIT
#
#   ykt fares compile TABLE.json -o TABLE.bin   table v1 (rules/FORMAT.md) wrapped in a
#                                               content container signed with the back
#                                               office's Ed25519 key (PROTOCOL.md §5)
#   ykt fares show TABLE.bin                    verify and print what the validator will use
#
# The signing key comes from --key-file FILE (`ykt depot keygen`, mode 0600), else THE test
# key (depot.testkeys, the one `--test-keys` gives a validator everywhere else), and the
# output says which: a validator in service refuses a table signed with the test key.
# `show` verifies under --pub-file FILE (a .pub, or the private key file), else the test key.
import json
import struct

from emu import farec
from validator.errors import SyncError
from validator.rules import table as ft
from validator.rules import table_host
from validator.sync import auth, auth_host, wire_host
from validator.util import bcdtime
from ykt import argtypes as T
from ykt.cli import EXIT_FAIL, EXIT_USAGE, CommandError, read_bytes, read_json

KIND_NAMES = dict((v, k) for k, v in farec.CARD_TYPES)
TEST_LABEL = "TEST content key (depot.testkeys; refused by a validator in service)"


def _key(args):
    """-> (private key, label) for compile."""
    from depot import content as C

    if getattr(args, "key_file", None):
        try:
            return C.load_private(args.key_file), "key in %s" % args.key_file
        except C.KeyFileError as e:
            raise CommandError(str(e), EXIT_USAGE)
    return C.test_key(), TEST_LABEL


def _pub(args):
    """-> (public key, label) for show."""
    from depot import content as C
    from depot.testkeys import TEST_CONTENT_PUB

    f = getattr(args, "pub_file", None)
    if f:
        try:
            return C.load_public(f), "key in %s" % f
        except C.KeyFileError as e:
            raise CommandError(str(e), EXIT_USAGE)
    return TEST_CONTENT_PUB, TEST_LABEL


def _uint(bits):
    hi = (1 << bits) - 1

    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            return "a whole number 0..%d" % hi
        return None if 0 <= v <= hi else "a whole number 0..%d" % hi
    return check


def _kind(*types):
    names = {str: "a string", bool: "true or false", list: "a list", dict: "an object",
             int: "a whole number"}

    def check(v):
        if isinstance(v, bool) and bool not in types:
            return " or ".join(names[t] for t in types)
        return None if isinstance(v, types) else " or ".join(names[t] for t in types)
    return check


def _hex(n, any_ok=False):
    what = "a string of %d hex digits%s" % (n, ' or "any"' if any_ok else "")

    def check(v):
        if any_ok and v == "any":
            return None
        if not isinstance(v, str) or len(v) != n or not T.is_hex(v):
            return what
        return None
    return check


def _matrix(v):
    if not isinstance(v, list) or not all(isinstance(r, list) for r in v) or any(
            _FEN(x) for r in v for x in r):
        return "a list of rows, each a list of fares in fen 0..65535"
    return None


def _hhmm(v):
    ok = isinstance(v, str) and len(v) == 5 and v[2] == ":" and v[:2].isdigit() and \
        v[3:].isdigit() and int(v[:2]) < 24 and int(v[3:]) < 60
    return None if ok else '"HH:MM"'


_FEN = _uint(16)  # a fare in fen, as the table stores it (0..655.35 yuan)
_TEXT = _kind(str)
_FLAG = _kind(bool)
_NAME_OR_CODE = _kind(str, int)
# The fare table description `ykt fares compile` reads (rules/FORMAT.md): every key it knows,
# what each must be. Names (mode, kind, pay...) are checked by emu.farec against its lists.
SCHEMA = {
    "version": _uint(32), "activation": _NAME_OR_CODE, "city": _hex(4),
    "acquirer": _hex(16),
    "comment": _TEXT, "_comment": _TEXT,
    "transfer": {"kind": _TEXT, "value": _uint(16), "window_s": _uint(16),
                 "same_line_other_vehicle": _FLAG, "other_city": _FLAG},
    "tapoff": {"missing": _TEXT, "window_s": _uint(16), "board_needs_max": _FLAG},
    "cap": {"daily": _uint(32), "day_start": _hhmm},
    "lines": [{"id": _uint(16), "mode": _NAME_OR_CODE, "stops": _uint(8), "fare": _FEN,
               "matrix": _matrix, "comment": _TEXT}],
    "policies": [{"type": _NAME_OR_CODE, "scope": _TEXT, "pay": _TEXT, "value": _uint(16),
                  "transfer": _FLAG, "cap": _FLAG, "comment": _TEXT}],
    "accept": [{"org": _hex(4, True), "city": _hex(4, True), "comment": _TEXT}],
}
REQUIRED = ("version", "city", "lines")


def check_table(desc):
    """The first thing wrong with a fare table description, as "where: what", else None."""
    def walk(v, spec, where):
        if isinstance(spec, dict):
            if not isinstance(v, dict):
                return "%s: expected an object {...}, got %s" % (where, type(v).__name__)
            for k in v:
                if k not in spec:
                    return "%s: unknown key %r (known: %s)" % (
                        where, k, ", ".join(sorted(x for x in spec if x[0] != "_")))
            for k, sub in spec.items():
                if k in v:
                    e = walk(v[k], sub, "%s.%s" % (where, k) if where != "table" else k)
                    if e:
                        return e
            return None
        if isinstance(spec, list):
            if not isinstance(v, list):
                return "%s: expected a list [...], got %s" % (where, type(v).__name__)
            for i, x in enumerate(v):
                e = walk(x, spec[0], "%s[%d]" % (where, i))
                if e:
                    return e
            return None
        want = spec(v)
        return "%s: expected %s, got %s" % (where, want, json.dumps(v)) if want else None

    e = walk(desc, SCHEMA, "table")
    if e:
        return e
    for k in REQUIRED:
        if k not in desc:
            return "missing required key %r" % k
    for i, ln in enumerate(desc["lines"]):
        if "id" not in ln:
            return "lines[%d]: missing required key 'id'" % i
        if not ln.get("stops") and "fare" not in ln:
            return "lines[%d]: needs \"fare\" (flat) or \"stops\" and \"matrix\"" % i
        if ln.get("stops") and "matrix" not in ln:
            return "lines[%d]: \"stops\" needs a \"matrix\"" % i
    return None


def build(desc, key):
    """Signed container bytes for a table description (dict)."""
    body = farec.compile_table(desc)
    ft.FareTable(body)  # the firmware parser must accept what we ship
    return auth_host.make_content(key, wire_host.K_FARES, ft.FareTable(body).version,
                                  body)


def do_compile(args):
    desc = read_json(args.table, "a JSON fare table")
    bad = check_table(desc)
    if bad:
        raise CommandError("%s: not a fare table: %s" % (args.table, bad), EXIT_USAGE)
    key, kname = _key(args)
    try:
        blob = build(desc, key)
    except (farec.TableError, KeyError, TypeError, ValueError, IndexError, SyncError,
            struct.error) as e:
        raise CommandError("%s: not a fare table: %s" % (args.table, e), EXIT_USAGE)
    out = args.output or (args.table.rsplit(".", 1)[0] + ".bin")
    with open(out, "wb") as f:
        f.write(blob)
    t = ft.FareTable(auth_host.unwrap_content(blob)[2])
    print("%s: fare table v%d for city %04X, %d lines, %d policies, %d accepted issuers, "
          "%d bytes (body %d), signed with the %s"
          % (out, t.version, t.city, t.n_lines, t.n_pol, t.n_acc, len(blob), t.content_len,
             kname))
    return 0


def _when(s):
    b = bytearray(7)
    bcdtime.pack_datetime(s, b, 0)
    h = b.hex()
    return "%s-%s-%s %s:%s:%s" % (h[0:4], h[4:6], h[6:8], h[8:10], h[10:12], h[12:14])


def describe(t):
    """Human-readable lines for a parsed FareTable."""
    out = ["version %d  activation %s  city %04X  acquirer %s" % (
        t.version, _when(t.activation), t.city, bytes(t.acq).hex().upper())]
    out.append("transfer: %s value %d window %ds%s%s" % (
        farec.XFER_KINDS[t.xfer_kind], t.xfer_value, t.xfer_window,
        "  same-line-other-vehicle" if t.flags & table_host.FLAG_XFER_SAME_LINE else "",
        "  other-city" if t.flags & table_host.FLAG_XFER_OTHER_CITY else ""))
    out.append("tap-off: missing -> %s, window %ds%s" % (
        farec.MISSING[t.tapoff_policy], t.tapoff_window,
        "  boarding needs max" if t.flags & table_host.FLAG_BOARD_NEEDS_MAX else ""))
    out.append("daily cap: %s  service day starts %02d:%02d" % (
        "%d fen" % t.cap if t.cap else "none", t.day_start // 3600, t.day_start // 60 % 60))
    for li in range(t.n_lines):
        o = t.o_lines + li * table_host.LINE_LEN
        lid = (t.b[o] << 8) | t.b[o + 1]
        mode = "rail" if t.line_industry(li) == table_host.IND_RAIL else "bus"
        ns = t.line_stops(li)
        if not ns:
            out.append("line %d (%s): flat %d fen" % (lid, mode, t.line_fare(li)))
            continue
        out.append("line %d (%s): %d stops, max %d fen" % (lid, mode, ns, t.line_fare(li)))
        for a in range(ns):
            out.append("  %2d: " % a + " ".join("%5d" % t.section_fare(li, a, b)
                                                for b in range(ns)))
    for i in range(t.n_pol):
        o = t.o_pol + i * table_host.POLICY_LEN
        b = t.b
        pay = farec.PAYS[b[o + 2]]
        val = (b[o + 4] << 8) | b[o + 5]
        out.append("policy %d: type %s (%02X) %s: %s%s%s%s" % (
            i, KIND_NAMES.get(b[o], "?"), b[o], farec.SCOPES[b[o + 1]], pay,
            " %d%%" % val if pay == "percent" else (" %d fen" % val if pay == "fixed" else ""),
            "" if b[o + 3] & table_host.POL_TRANSFER else ", no transfer",
            "" if b[o + 3] & table_host.POL_CAP else ", no cap"))
    for i in range(t.n_acc):
        o = t.o_acc + i * table_host.ACCEPT_LEN
        org = (t.b[o] << 8) | t.b[o + 1]
        city = (t.b[o + 2] << 8) | t.b[o + 3]
        out.append("accept: org %s city %s" % ("any" if org == 0xFFFF else "%04X" % org,
                                               "any" if city == 0xFFFF else "%04X" % city))
    return out


def do_show(args):
    blob = read_bytes(args.table)
    key, kname = _pub(args)
    c = auth_host.unwrap_content(blob)
    if c is None or c[0] != wire_host.K_FARES:
        raise CommandError("%s: not a fare-table content container" % args.table, EXIT_USAGE)
    body = c[2]
    ok = auth.verify_content(key, blob) is not None
    try:
        t = ft.FareTable(body)
    except SyncError as e:
        if not ok:  # damaged in transit or signed with another key: the validator refuses it
            raise CommandError("%s: signature does not verify (%s) and the body does not "
                               "parse: %s" % (args.table, kname, e), EXIT_FAIL)
        raise CommandError("%s: %s" % (args.table, e), EXIT_USAGE)
    print("%s: %d bytes, signature %s (%s)" % (args.table, len(blob), "ok" if ok else "BAD",
                                                kname))
    for line in describe(t):
        print(line)
    if not ok:
        raise CommandError("%s: signature does not verify: the validator would refuse it"
                           % args.table, EXIT_FAIL)
    return 0


def register(sub):
    p = sub.add_parser("fares", help="compile / inspect fare tables")
    s = p.add_subparsers(dest="fares_cmd", metavar="CMD")
    c = s.add_parser("compile", help="JSON fare table -> signed binary")
    c.add_argument("table")
    c.add_argument("-o", "--output")
    c.add_argument("--key-file", metavar="FILE",
                   help="the back office's private key file (ykt depot keygen); default: "
                   "the TEST key")
    c.add_argument("--test-keys", action="store_true",
                   help="sign with THE test key (the default without --key-file)")
    c.set_defaults(func=do_compile)
    w = s.add_parser("show", help="verify and print a compiled fare table")
    w.add_argument("table")
    w.add_argument("--pub-file", metavar="FILE",
                   help="public key file (.pub) to verify with; default: the TEST key")
    w.add_argument("--test-keys", action="store_true",
                   help="verify with THE test key (the default without --pub-file)")
    w.set_defaults(func=do_show)
