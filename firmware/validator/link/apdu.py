# validator.link.apdu: APDU header/Lc/Le helpers, status-word split, status-table lookup.
# SPDX-License-Identifier: MIT
#
# ISO/IEC 7816-4 §5.1 command APDU: CLA INS P1 P2 [Lc data] [Le]. Builders write into a
# caller-supplied bytearray and return the length; nothing here allocates.
#
# Status tables (house style principle 4): a module-level tuple of (sw, code) pairs, one per
# command. `code` is a validator.errors.R_* reason code (a business outcome) or _FAULT when
# the status word means a fault the caller raises on. SW1 wildcards are written with the
# low byte 0xFF masked: an entry (0x61FF, x) would need masks, so we keep exact SWs only and
# handle 61xx / 6Cxx in the link layer (ISO 7816-3 §10.3.3), where they belong. Success is
# 0x9000, written as a literal by the callers (a public constant here costs heap).
from micropython import const

_FAULT = const(-1)  # table code: unexpected answer, caller treats as a fault


def header(buf, cla, ins, p1, p2):
    buf[0] = cla
    buf[1] = ins
    buf[2] = p1
    buf[3] = p2
    return 4


def case2(buf, cla, ins, p1, p2, le):
    """Case 2 (no data, Le expected). Le 0 means 256 (ISO 7816-4 §5.1)."""
    header(buf, cla, ins, p1, p2)
    buf[4] = le & 0xFF
    return 5


def case3(buf, cla, ins, p1, p2, data, lc):
    """Case 3: header + Lc + data[:lc]."""
    header(buf, cla, ins, p1, p2)
    buf[4] = lc
    for i in range(lc):
        buf[5 + i] = data[i]
    return 5 + lc


def sw(resp, n):
    """SW1SW2 as an int from the last two bytes of resp[:n]; 0 if n < 2."""
    if n < 2:
        return 0
    return (resp[n - 2] << 8) | resp[n - 1]


def lookup(table, sw_, default=_FAULT):
    """Code of sw_ in a status table of (sw, code) pairs; `default` when absent."""
    for pair in table:
        if pair[0] == sw_:
            return pair[1]
    return default


def put_u32(buf, off, v):
    buf[off] = (v >> 24) & 0xFF
    buf[off + 1] = (v >> 16) & 0xFF
    buf[off + 2] = (v >> 8) & 0xFF
    buf[off + 3] = v & 0xFF


def get_u32(buf, off):
    return (buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]


def get_u16(buf, off):
    return (buf[off] << 8) | buf[off + 1]


def copy(dst, doff, src, soff, n):
    """dst[doff:doff+n] = src[soff:soff+n] without slicing (slices allocate)."""
    for i in range(n):
        dst[doff + i] = src[soff + i]


def equal(a, aoff, b, boff, n):
    for i in range(n):
        if a[aoff + i] != b[boff + i]:
            return False
    return True
