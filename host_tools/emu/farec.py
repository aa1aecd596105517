# emu.farec: fare-table compiler, JSON description -> binary table v1 (rules/FORMAT.md).
# SPDX-License-Identifier: MIT
#
# Common subset (CPython and MicroPython) so firmware tests on the unix port can build
# tables from the same dicts the host uses. The binary layout is read on the validator by
# validator.rules.table.FareTable; this is its only writer. compile_table() returns the
# CONTENT only; `ykt fares compile` appends the back-office trailer (sync auth).
import struct

from validator.util import bcdtime

CARD_TYPES = (
    ("normal", 0x00),
    ("senior", 0x01),  # S5: EF15[28] 01 elderly (local cards)
    ("student", 0x02),  # [INF] city-defined
    ("staff", 0x03),  # [INF] city-defined
    ("disabled", 0x11),  # S5: EF15[28] 11 disabled
    ("any", 0xFF),
)
SCOPES = ("local", "visiting", "any")
PAYS = ("percent", "fixed", "free", "refuse")
XFER_KINDS = ("none", "amount_off", "percent_off", "free")
MISSING = ("charge_max", "charge_none")
MODES = (("rail", 1), ("bus", 2))


class TableError(ValueError):
    pass


def _pick(names, v, what):
    for i in range(len(names)):
        if names[i] == v:
            return i
    raise TableError("%s: unknown %r" % (what, v))


def _lookup(pairs, v, what):
    if isinstance(v, int):
        return v
    for k, n in pairs:
        if k == v:
            return n
    raise TableError("%s: unknown %r" % (what, v))


def _code(v, what):
    """A 2-byte BCD-ish code given as 4 hex digits ("2900"), or "any" -> 0xFFFF."""
    if v == "any":
        return 0xFFFF
    if not isinstance(v, str) or len(v) != 4:
        raise TableError("%s: want 4 hex digits, got %r" % (what, v))
    return int(v, 16)


def parse_time(v):
    """Device seconds from an int or "YYYY-MM-DDThh:mm:ss" (local time)."""
    if isinstance(v, int):
        return v
    try:
        d, tm = v.split("T")
        y, mo, dd = d.split("-")
        hh, mi, ss = tm.split(":")
        return bcdtime.secs(int(y), int(mo), int(dd), int(hh), int(mi), int(ss))
    except (ValueError, AttributeError):
        raise TableError("bad time %r" % (v,))


def parse_hhmm(v):
    hh, mm = v.split(":")
    return int(hh) * 60 + int(mm)


def triangle(line):
    """Upper-triangle row-major list (incl. diagonal) from a line's "matrix"."""
    n = line["stops"]
    m = line["matrix"]
    if len(m) != n:
        raise TableError("line %d: matrix needs %d rows" % (line["id"], n))
    out = []
    full = all(len(row) == n for row in m)
    for i in range(n):
        row = m[i]
        if full:
            for j in range(n):
                if row[j] != m[j][i]:
                    raise TableError("line %d: matrix not symmetric" % line["id"])
            out.extend(row[i:])
        elif len(row) == n - i:
            out.extend(row)
        else:
            raise TableError("line %d: row %d length" % (line["id"], i))
    for v in out:
        if not 0 <= v <= 0xFFFF:
            raise TableError("line %d: fare out of range" % line["id"])
    return out


def compile_table(d):
    """Compile a table description (dict, see FORMAT.md) to the binary content."""
    flags = 0
    xf = d.get("transfer", {})
    tp = d.get("tapoff", {})
    cap = d.get("cap", {})
    if xf.get("same_line_other_vehicle"):
        flags |= 1
    if xf.get("other_city"):
        flags |= 2
    if tp.get("board_needs_max"):
        flags |= 4
    xkind = _pick(XFER_KINDS, xf.get("kind", "none"), "transfer kind")
    lines = sorted(d["lines"], key=lambda ln: ln["id"])
    pols = d.get("policies", [])
    acc = d.get("accept", [])
    if len(lines) > 255 or len(pols) > 255 or len(acc) > 255:
        raise TableError("too many entries")
    acq = d.get("acquirer", "0000000000000000")
    acq_b = bytes.fromhex(acq)
    if len(acq_b) != 8:
        raise TableError("acquirer: 8 bytes")
    hdr_len = 48
    o_mat = hdr_len + 12 * len(lines) + 8 * len(pols) + 4 * len(acc)
    body_lines = b""
    mats = b""
    prev = -1
    for ln in lines:
        if ln["id"] == prev or not 0 <= ln["id"] <= 0xFFFF:
            raise TableError("line id %r" % (ln["id"],))
        prev = ln["id"]
        ind = _lookup(MODES, ln.get("mode", "bus"), "mode")
        ns = ln.get("stops", 0)
        if ns:
            tri = triangle(ln)
            fare = max(tri)
            mo = o_mat + len(mats)
            mats += struct.pack(">%dH" % len(tri), *tri)
        else:
            fare = ln["fare"]
            mo = 0
        if not 0 <= fare <= 0xFFFF or not 0 <= ns <= 255:
            raise TableError("line %d: fare/stops range" % ln["id"])
        body_lines += struct.pack(">HBBHHI", ln["id"], ind, ns, fare, 0, mo)
    body_pol = b""
    for p in pols:
        ctype = _lookup(CARD_TYPES, p.get("type", "any"), "card type")
        scope = _pick(SCOPES, p.get("scope", "any"), "scope")
        pay = _pick(PAYS, p.get("pay", "percent"), "pay")
        val = p.get("value", 100 if pay == 0 else 0)
        if pay == 0 and not 0 <= val <= 100:
            raise TableError("percent out of range")
        pf = (1 if p.get("transfer", True) else 0) | (2 if p.get("cap", True) else 0)
        body_pol += struct.pack(">BBBBHH", ctype, scope, pay, pf, val, 0)
    body_acc = b""
    for a in acc:
        body_acc += struct.pack(">HH", _code(a.get("org", "any"), "org"),
                                _code(a.get("city", "any"), "city"))
    clen = o_mat + len(mats)
    xval = xf.get("value", 0)
    if xkind == 2 and not 0 <= xval <= 100:
        raise TableError("transfer percent out of range")
    hdr = (b"YKFT" + struct.pack(">BBHII", 1, hdr_len, flags, d["version"],
                                 parse_time(d.get("activation", 0)))
           + struct.pack(">H", _code(d["city"], "city")) + acq_b
           + struct.pack(">HBBHIHHBBBBI", xf.get("window_s", 0), xkind,
                         _pick(MISSING, tp.get("missing", "charge_max"), "tapoff missing"),
                         xval, cap.get("daily", 0), parse_hhmm(cap.get("day_start", "00:00")),
                         tp.get("window_s", 3 * 3600), len(lines), len(pols), len(acc), 0,
                         clen))
    if len(hdr) != hdr_len:
        raise TableError("internal: header %d" % len(hdr))
    return hdr + body_lines + body_pol + body_acc + mats


def container(body, sign=None):
    """Wrap a compiled table in a sync content container (PROTOCOL.md §5, kind 3).

    sign(bytes) -> 64-byte signature; the back office uses
    validator.sync.auth_host.content_signer(its Ed25519 private key). Without sign the
    signature is 64 zero bytes: such a container is
    refused by every device (sync.auth.verify_content); FareTables.offer takes the body.
    """
    version = struct.unpack(">I", body[8:12])[0]
    # imported here: tier-1 tests compile tables with this module at 128 KiB on MicroPython,
    # and most never wrap one
    from validator.sync import auth_host, wire_host

    c = auth_host.wrap_content(wire_host.K_FARES, version, body)
    return c + (sign(c) if sign is not None else bytes(auth_host.SIG_LEN))
