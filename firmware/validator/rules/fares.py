# validator.rules.fares: the fare decision for one tap — pure, time injected, allocation-free.
# SPDX-License-Identifier: MIT
#
# decide() reads the card data the transaction engine already holds (EF15 from the SELECT
# FCI, optional EF17, EF1E record 1, EF1A record 2 — card-protocol.md §2.1/§2.3/§2.5/§2.6),
# the validator's position and the active FareTable, and fills a preallocated Decision:
# reason code, fare / penalty / amount in fen, and the exact EF1E and EF1A record images to
# write with the purchase. The rules and the byte layouts are in rules/FORMAT.md; the
# independent reference calculation is tests/host/fare_oracle.py.
from micropython import const

from validator import errors
from validator.util import bcdtime

# ---- card record layouts: private consts (no heap on the device); validator.rules.records
# serves the same names to host tools and tests and is never imported by the firmware.
# EF 0x1E trip record (card-protocol.md §2.6, 48 bytes) and the
# EF 0x1A bus record 2702 (§2.5; layout in rules/FORMAT.md "EF 0x1A bus record", guarded by
# a marker + CRC-16 so a record written in another city's layout is never misread).
# ---- EF 0x1E, 48 bytes (§2.6) ----
_E_TYPE = const(0)  # 03 boarding, 04 alighting, 06 single ride (flat)
_E_TERMINAL = const(1)  # 8: 00 00 + 6-byte PSAM terminal number (S5/S6)
_E_INDUSTRY = const(9)  # 01 rail, 02 bus
_E_LINE = const(10)  # u16 BE (S1: line(2) station(2) operator(2) RFU(1))
_E_STATION = const(12)  # u16 BE
_E_FLAGS = const(16)  # the RFU byte: yikatong ride flags (F_*) — 0 on foreign records
_E_AMOUNT = const(17)  # u32 BE, fen actually debited (fare + penalty)
_E_BALANCE = const(21)  # u32 BE, balance after
_E_TIME = const(25)  # 7 BCD YYYYMMDDhhmmss
_E_CITY = const(32)  # 2 BCD acquirer city code
_E_ACQ = const(34)  # 8 acquirer institution ID
_E_LEN = const(48)

_TT_BOARD = const(0x03)
_TT_ALIGHT = const(0x04)
_TT_SINGLE = const(0x06)

# ride flags in _E_FLAGS (and _A_FLAGS)
_F_TRANSFER = const(1)  # this ride used (or, on a boarding, reserved) the journey's transfer
_F_CAPPED = const(2)  # the daily cap reduced this fare
_F_PENALTY = const(4)  # amount includes a missing tap-off charge

# ---- EF 0x1A record 2 (bus, ID 2702), 128 bytes (§2.5 common header + S6 bus fields) ----
_A_LEN = const(2)  # 7D
_A_VALID = const(3)  # 01
_A_IC = const(4)  # 01 interconnect transaction
_A_LOCK = const(5)  # 00
_A_STATE = const(14)  # 00 initial, 01 boarded, 02 alighted/closed
_A_ENTRY_CITY = const(15)
_A_EXIT_CITY = const(17)
_A_ENTRY_ACQ = const(19)
_A_EXIT_ACQ = const(27)
_A_ENTRY_STOP = const(41)  # u16 BE in the last 2 bytes of the 8-byte station field (35..42)
_A_EXIT_STOP = const(49)  # u16 BE in 43..50
_A_ENTRY_TERM = const(51)
_A_EXIT_TERM = const(59)
_A_ENTRY_TIME = const(67)
_A_EXIT_TIME = const(74)
_A_MAXFARE = const(81)  # u32: priced max fare of the entry line = missing tap-off charge
_A_DIRECTION = const(85)  # S6
_A_LINE = const(86)  # u16, S6
_A_VEHICLE = const(88)  # 6, S6: the PSAM terminal number of the validator
_A_MARK = const(94)  # 'Y' — yikatong layout marker
_A_VER = const(95)  # layout version 1
_A_FLAGS = const(96)  # _F_TRANSFER: transfer discount reserved at boarding
_A_INDUSTRY = const(97)  # industry of the entry line
_A_DAY = const(98)  # 4 BCD service date of the accumulator
_A_DAY_TOTAL = const(102)  # u32 fen paid in _A_DAY_CITY on _A_DAY (fares, not penalties)
_A_DAY_COUNT = const(106)  # u16 rides counted
_A_DAY_CITY = const(108)  # 2 BCD city the accumulator belongs to
_A_CRC = const(126)  # CRC-16/CCITT-FALSE over bytes 14..125, big-endian
_A_CRC_FROM = const(14)
_A_LEN_TOTAL = const(128)
_A_MARK_BYTE = const(0x59)
_A_VERSION = const(1)

_ST_BOARDED = const(1)
_ST_CLOSED = const(2)


# CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection), one big-endian u16 per byte
# value. 16-bit, not the CRC-32 of the S1 rail record: every intermediate stays a small int on
# a 32-bit MCU (31-bit small ints), so the check allocates nothing on the tap path. A bytes
# literal stays in the ROMFS/frozen image (computing it at import took 512 B of heap and a
# function); tests/host/test_rules_records.py regenerates it from the polynomial.
_CRC_T = (
    b"\x00\x00\x10\x21\x20\x42\x30\x63\x40\x84\x50\xa5\x60\xc6\x70\xe7"
    b"\x81\x08\x91\x29\xa1\x4a\xb1\x6b\xc1\x8c\xd1\xad\xe1\xce\xf1\xef"
    b"\x12\x31\x02\x10\x32\x73\x22\x52\x52\xb5\x42\x94\x72\xf7\x62\xd6"
    b"\x93\x39\x83\x18\xb3\x7b\xa3\x5a\xd3\xbd\xc3\x9c\xf3\xff\xe3\xde"
    b"\x24\x62\x34\x43\x04\x20\x14\x01\x64\xe6\x74\xc7\x44\xa4\x54\x85"
    b"\xa5\x6a\xb5\x4b\x85\x28\x95\x09\xe5\xee\xf5\xcf\xc5\xac\xd5\x8d"
    b"\x36\x53\x26\x72\x16\x11\x06\x30\x76\xd7\x66\xf6\x56\x95\x46\xb4"
    b"\xb7\x5b\xa7\x7a\x97\x19\x87\x38\xf7\xdf\xe7\xfe\xd7\x9d\xc7\xbc"
    b"\x48\xc4\x58\xe5\x68\x86\x78\xa7\x08\x40\x18\x61\x28\x02\x38\x23"
    b"\xc9\xcc\xd9\xed\xe9\x8e\xf9\xaf\x89\x48\x99\x69\xa9\x0a\xb9\x2b"
    b"\x5a\xf5\x4a\xd4\x7a\xb7\x6a\x96\x1a\x71\x0a\x50\x3a\x33\x2a\x12"
    b"\xdb\xfd\xcb\xdc\xfb\xbf\xeb\x9e\x9b\x79\x8b\x58\xbb\x3b\xab\x1a"
    b"\x6c\xa6\x7c\x87\x4c\xe4\x5c\xc5\x2c\x22\x3c\x03\x0c\x60\x1c\x41"
    b"\xed\xae\xfd\x8f\xcd\xec\xdd\xcd\xad\x2a\xbd\x0b\x8d\x68\x9d\x49"
    b"\x7e\x97\x6e\xb6\x5e\xd5\x4e\xf4\x3e\x13\x2e\x32\x1e\x51\x0e\x70"
    b"\xff\x9f\xef\xbe\xdf\xdd\xcf\xfc\xbf\x1b\xaf\x3a\x9f\x59\x8f\x78"
    b"\x91\x88\x81\xa9\xb1\xca\xa1\xeb\xd1\x0c\xc1\x2d\xf1\x4e\xe1\x6f"
    b"\x10\x80\x00\xa1\x30\xc2\x20\xe3\x50\x04\x40\x25\x70\x46\x60\x67"
    b"\x83\xb9\x93\x98\xa3\xfb\xb3\xda\xc3\x3d\xd3\x1c\xe3\x7f\xf3\x5e"
    b"\x02\xb1\x12\x90\x22\xf3\x32\xd2\x42\x35\x52\x14\x62\x77\x72\x56"
    b"\xb5\xea\xa5\xcb\x95\xa8\x85\x89\xf5\x6e\xe5\x4f\xd5\x2c\xc5\x0d"
    b"\x34\xe2\x24\xc3\x14\xa0\x04\x81\x74\x66\x64\x47\x54\x24\x44\x05"
    b"\xa7\xdb\xb7\xfa\x87\x99\x97\xb8\xe7\x5f\xf7\x7e\xc7\x1d\xd7\x3c"
    b"\x26\xd3\x36\xf2\x06\x91\x16\xb0\x66\x57\x76\x76\x46\x15\x56\x34"
    b"\xd9\x4c\xc9\x6d\xf9\x0e\xe9\x2f\x99\xc8\x89\xe9\xb9\x8a\xa9\xab"
    b"\x58\x44\x48\x65\x78\x06\x68\x27\x18\xc0\x08\xe1\x38\x82\x28\xa3"
    b"\xcb\x7d\xdb\x5c\xeb\x3f\xfb\x1e\x8b\xf9\x9b\xd8\xab\xbb\xbb\x9a"
    b"\x4a\x75\x5a\x54\x6a\x37\x7a\x16\x0a\xf1\x1a\xd0\x2a\xb3\x3a\x92"
    b"\xfd\x2e\xed\x0f\xdd\x6c\xcd\x4d\xbd\xaa\xad\x8b\x9d\xe8\x8d\xc9"
    b"\x7c\x26\x6c\x07\x5c\x64\x4c\x45\x3c\xa2\x2c\x83\x1c\xe0\x0c\xc1"
    b"\xef\x1f\xff\x3e\xcf\x5d\xdf\x7c\xaf\x9b\xbf\xba\x8f\xd9\x9f\xf8"
    b"\x6e\x17\x7e\x36\x4e\x55\x5e\x74\x2e\x93\x3e\xb2\x0e\xd1\x1e\xf0"
)


def _crc16(buf, start, end):
    t = _CRC_T
    c = 0xFFFF
    for i in range(start, end):
        k = ((c >> 8) ^ buf[i]) & 0xFF
        c = (((c << 8) & 0xFFFF) ^ (t[2 * k] << 8)) ^ t[2 * k + 1]
    return c


def _get16(b, o):
    return (b[o] << 8) | b[o + 1]


def _put16(b, o, v):
    b[o] = (v >> 8) & 0xFF
    b[o + 1] = v & 0xFF


def _put32(b, o, v):
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF


DOOR_ANY = const(0)  # one validator for both: an open entry on this line means alighting
DOOR_ENTRY = const(1)  # front door: always a boarding
DOOR_EXIT = const(2)  # rear door: always an alighting

# Decision.kind: what the rider sees; Decision.flags holds every F_* that applied.
_K_NONE = const(0)  # refused
_K_FLAT = const(1)
_K_TRANSFER = const(2)
_K_BOARD = const(3)  # section line: entry recorded, 0 charged now
_K_SECTION = const(4)  # section line: alighting, matrix fare
_K_CAPPED = const(5)
_K_FREE = const(6)  # card-type policy: free ride
_K_NO_ENTRY = const(7)  # exit tap with no matching boarding: the line's max fare

_EV_SINGLE = const(0)
_EV_BOARD = const(1)
_EV_ALIGHT = const(2)
_EV_NO_ENTRY = const(3)

# fare-table header flags, transfer kinds, tap-off and card-type policies: private copies of
# validator.rules.table's (rules/FORMAT.md "Fare table"), checked equal by
# tests/host/test_rules_records.py; a const from another module would be a run-time lookup
# and a public name (heap) there.
_FLAG_XFER_SAME_LINE = const(1)  # same line, other vehicle (terminal) counts as a transfer
_FLAG_XFER_OTHER_CITY = const(2)  # previous ride acquired in another city counts
_FLAG_BOARD_NEEDS_MAX = const(4)  # boarding a section line needs balance >= priced max fare
_XFER_NONE = const(0)
_XFER_AMOUNT_OFF = const(1)
_XFER_PERCENT_OFF = const(2)
_XFER_FREE = const(3)
_TAPOFF_CHARGE_MAX = const(0)
_PAY_PERCENT = const(0)
_PAY_FIXED = const(1)
_PAY_FREE = const(2)
_PAY_REFUSE = const(3)
_POL_TRANSFER = const(1)
_POL_CAP = const(2)
_POLICY_LEN = const(8)  # bytes per policy entry

_MAX_FEN = const(0xFFFF)  # line fares are u16 in the table; a stored max never exceeds it


class Position:
    """Where the validator is. The app updates the fields in place (no allocation)."""

    def __init__(self, line=0, stop=0, direction=0, door=DOOR_ANY, terminal=None):
        self.line = line
        self.stop = stop
        self.direction = direction
        self.door = door
        # 8 bytes as written to EF1E[1..8]: 00 00 + 6-byte PSAM terminal number (§2.6)
        self.terminal = bytearray(8)
        if terminal is not None:
            self.terminal[8 - len(terminal):] = terminal


class Decision:
    """Preallocated result of decide(); read the fields, write rec1e / rec1a as told.

    Twelve fields at most: one more would move the instance dict up a size step. The line's
    industry is rec1e[9] and the day's total the EF1A accumulator (FORMAT.md §2)."""

    def __init__(self):
        self.rec1e = bytearray(_E_LEN)  # EF1E record to append (always, when reason R_OK)
        self.rec1a = bytearray(_A_LEN_TOTAL)  # EF1A record 2 to write when write1a
        self.clear()

    def clear(self):
        self.reason = errors.R_OK
        self.kind = _K_NONE
        self.rule = 0  # fare rule id (record FARE_RULE): policy entry number << 8 | kind
        self.flags = 0
        self.txtype = 0  # EF1E[0]: 03 boarding, 04 alighting, 06 single ride
        self.base = 0  # undiscounted fare of this ride (table), fen
        self.fare = 0  # this ride after card type, transfer and cap
        self.penalty = 0  # missing tap-off charge of an earlier boarding
        self.amount = 0  # fare + penalty: the purchase amount to debit
        self.write1a = False
        for i in range(_E_LEN):
            self.rec1e[i] = 0
        for i in range(_A_LEN_TOTAL):
            self.rec1a[i] = 0


def _copy(dst, do, src, so, n):
    for i in range(n):
        dst[do + i] = src[so + i]


def _same(a, ao, b, bo, n):
    for i in range(n):
        if a[ao + i] != b[bo + i]:
            return False
    return True


def _price(method, value, base):
    # card-type pricing (FORMAT.md "Policies"): percent rounds down (in the rider's favour);
    # a fixed fare never exceeds the line's own fare.
    if method == _PAY_FREE:
        return 0
    if method == _PAY_FIXED:
        return value if value < base else base
    return base * value // 100


def _transfer_ok(tb, now, where, industry, rec1e):
    """The newest EF1E record opens a transfer for this ride (at most once per journey)."""
    if rec1e is None or len(rec1e) < _E_LEN:
        return False
    ty = rec1e[_E_TYPE]
    if ty != _TT_SINGLE and ty != _TT_BOARD and ty != _TT_ALIGHT:
        return False  # empty (00/FF) or an update record
    if rec1e[_E_FLAGS] & _F_TRANSFER:
        return False  # that ride already was this journey's transfer
    ts = bcdtime.unpack_datetime(rec1e, _E_TIME)
    if ts < 0 or now < ts or now - ts > tb.xfer_window:
        return False
    if not (tb.flags & _FLAG_XFER_OTHER_CITY) and _get16(rec1e, _E_CITY) != tb.city:
        return False
    if rec1e[_E_INDUSTRY] != industry or _get16(rec1e, _E_LINE) != where.line:
        return True  # another mode (rail 01 -> bus 02) or another line
    if tb.flags & _FLAG_XFER_SAME_LINE:
        return not _same(rec1e, _E_TERMINAL, where.terminal, 0, 8)  # another vehicle
    return False


def _refuse(res, code):
    res.reason = code
    res.kind = _K_NONE
    res.rule = 0
    res.write1a = False


def _accept(res, tb, li, ef15, ef17):
    """Acceptance and the card-type policy (FORMAT.md §3 rules 1-3): the offset of the
    policy entry that applies, -1 when none does (full fare with transfer and cap rights),
    or -2 when the tap is refused (res says why)."""
    if li < 0:
        _refuse(res, errors.R_NO_TARIFF)
        return -2
    # local by city code, visitors by the interconnect whitelist (§2.1, §2.3, §7)
    city = _get16(ef15, 2)
    local = city == tb.city
    if not local:
        if not tb.accepted(_get16(ef15, 0), city):
            _refuse(res, errors.R_ISSUER_NOT_ACCEPTED)
            return -2
        if ef17 is not None and ef17[8] == 0 and ef17[9] == 0:
            _refuse(res, errors.R_NOT_INTERCONNECT)
            return -2
    po = tb.policy(ef15[28], local)
    if po >= 0 and tb.b[po + 2] == _PAY_REFUSE:
        _refuse(res, errors.R_CARD_TYPE_REFUSED)
        return -2
    return po


def _ride(res, tb, li, now, where, rec1a, opened):
    """Which ride this tap is (FORMAT.md §3 rules 4-6): the event, or -1 when the tap is a
    double tap (refused). Sets res.base (the list fare), res.kind and res.penalty (the
    missing tap-off of a boarding this tap leaves open)."""
    stops = tb.line_stops(li)
    ev = _EV_SINGLE
    if stops:
        match = False
        if opened and _get16(rec1a, _A_LINE) == where.line:
            et = bcdtime.unpack_datetime(rec1a, _A_ENTRY_TIME)
            match = et >= 0 and 0 <= now - et <= tb.tapoff_window
        if match and where.door != DOOR_EXIT and _get16(rec1a, _A_ENTRY_STOP) == where.stop:
            # a second tap where the ride began is a double tap, not a ride of zero stops
            _refuse(res, errors.R_ALREADY_PAID)
            return -1
        if where.door == DOOR_ENTRY:
            ev = _EV_BOARD
        elif where.door == DOOR_EXIT:
            ev = _EV_ALIGHT if match else _EV_NO_ENTRY
        else:
            ev = _EV_ALIGHT if match else _EV_BOARD
    if opened and ev != _EV_ALIGHT:
        res.flags |= _F_PENALTY
        if tb.tapoff_policy == _TAPOFF_CHARGE_MAX:
            p = _get16(rec1a, _A_MAXFARE) << 16 | _get16(rec1a, _A_MAXFARE + 2)
            res.penalty = p if p < _MAX_FEN else _MAX_FEN
    base = tb.line_fare(li)  # the flat fare, or the line's max fare
    if ev == _EV_SINGLE:
        res.kind = _K_FLAT
    elif ev == _EV_BOARD:
        base = 0
        res.kind = _K_BOARD
    elif ev == _EV_ALIGHT:
        es = _get16(rec1a, _A_ENTRY_STOP)
        if es < stops and where.stop < stops:  # else charge as far as the line goes
            base = tb.section_fare(li, es, where.stop)
        res.kind = _K_SECTION
    else:
        res.kind = _K_NO_ENTRY
    res.base = base
    return ev


def _transfer(res, tb, now, where, ev, maxfare, industry, rec1e, rec1a):
    """The journey's one transfer discount (FORMAT.md §3 rule 8): decided at boarding from
    EF1E record 1, applied at alighting from the EF1A reservation. Lowers res.fare; returns
    True when a boarding reserves the discount. maxfare: the line's max fare for this card."""
    if ev == _EV_ALIGHT:
        if not rec1a[_A_FLAGS] & _F_TRANSFER:
            return False
    elif not _transfer_ok(tb, now, where, industry, rec1e):
        return False
    if ev == _EV_BOARD:
        if maxfare > 0:  # reserve the journey's one discount only if the ride can cost
            res.flags |= _F_TRANSFER
            return True
        return False
    fare = res.fare
    k = tb.xfer_kind  # the transfer discount (FORMAT.md "transfer kinds")
    if k == _XFER_FREE:
        d = fare
    elif k == _XFER_AMOUNT_OFF:
        d = tb.xfer_value if tb.xfer_value < fare else fare
    elif k == _XFER_PERCENT_OFF:
        d = fare * tb.xfer_value // 100
    else:
        d = 0
    if d > 0:
        res.fare = fare - d
        res.flags |= _F_TRANSFER
        if res.kind != _K_FREE:
            res.kind = _K_TRANSFER
    return False


def _records(res, tb, now, where, ev, industry, rec1a, maxfare, reserve, day_total, day_count,
             balance):
    """Fill the records an accepted tap writes (FORMAT.md §2.2, §2.3): EF1E always, EF1A
    record 2 when res.write1a (its accumulator date is already in place)."""
    e = res.rec1e
    if ev == _EV_SINGLE:
        res.txtype = _TT_SINGLE
    elif ev == _EV_BOARD:
        res.txtype = _TT_BOARD
    else:
        res.txtype = _TT_ALIGHT
    e[_E_TYPE] = res.txtype
    _copy(e, _E_TERMINAL, where.terminal, 0, 8)
    e[_E_INDUSTRY] = industry
    _put16(e, _E_LINE, where.line)
    _put16(e, _E_STATION, where.stop)
    e[_E_FLAGS] = res.flags
    _put32(e, _E_AMOUNT, res.amount)
    if balance >= 0:
        _put32(e, _E_BALANCE, balance - res.amount)
    bcdtime.pack_datetime(now, e, _E_TIME)
    _put16(e, _E_CITY, tb.city)
    _copy(e, _E_ACQ, tb.acq, 0, 8)
    if not res.write1a:
        return
    a = res.rec1a
    a[_A_STATE] = _ST_BOARDED if ev == _EV_BOARD else _ST_CLOSED
    if ev == _EV_ALIGHT:  # keep the entry half of the record
        _copy(a, _A_ENTRY_CITY, rec1a, _A_ENTRY_CITY, 2)
        _copy(a, _A_ENTRY_ACQ, rec1a, _A_ENTRY_ACQ, 8)
        _copy(a, _A_ENTRY_STOP, rec1a, _A_ENTRY_STOP, 2)
        _copy(a, _A_ENTRY_TERM, rec1a, _A_ENTRY_TERM, 8)
        _copy(a, _A_ENTRY_TIME, rec1a, _A_ENTRY_TIME, 7)
    else:
        _put16(a, _A_ENTRY_CITY, tb.city)
        _copy(a, _A_ENTRY_ACQ, tb.acq, 0, 8)
        _put16(a, _A_ENTRY_STOP, where.stop)
        _copy(a, _A_ENTRY_TERM, where.terminal, 0, 8)
        bcdtime.pack_datetime(now, a, _A_ENTRY_TIME)
    if ev != _EV_BOARD:
        _put16(a, _A_EXIT_CITY, tb.city)
        _copy(a, _A_EXIT_ACQ, tb.acq, 0, 8)
        _put16(a, _A_EXIT_STOP, where.stop)
        _copy(a, _A_EXIT_TERM, where.terminal, 0, 8)
        bcdtime.pack_datetime(now, a, _A_EXIT_TIME)
        _put32(a, _A_MAXFARE, res.fare)
    else:
        _put32(a, _A_MAXFARE, maxfare)
    a[_A_DIRECTION] = where.direction & 0xFF
    _put16(a, _A_LINE, where.line)
    _copy(a, _A_VEHICLE, where.terminal, 2, 6)
    a[_A_FLAGS] = res.flags if ev != _EV_BOARD else (_F_TRANSFER if reserve else 0)
    a[_A_INDUSTRY] = industry
    _put32(a, _A_DAY_TOTAL, day_total)
    _put16(a, _A_DAY_COUNT, day_count)
    _put16(a, _A_DAY_CITY, tb.city)
    # seal: the constant 2702 header and the CRC-16 over bytes 14..125 (FORMAT.md §2)
    a[0] = 0x27
    a[1] = 0x02
    a[_A_LEN] = 0x7D
    a[_A_VALID] = 1
    a[_A_IC] = 1
    a[_A_LOCK] = 0
    a[_A_MARK] = _A_MARK_BYTE
    a[_A_VER] = _A_VERSION
    _put16(a, _A_CRC, _crc16(a, _A_CRC_FROM, _A_CRC))


def _afford(res, tb, balance):
    """Refuse the decided ride (R_INSUFFICIENT) unless balance, in fen before the tap,
    covers it: its amount, plus the line's priced max fare for a boarding under
    BOARD_NEEDS_MAX (the EF1A max fare, what a missing tap-off would cost). -> res.reason"""
    need = res.amount
    if res.txtype == _TT_BOARD and tb.flags & _FLAG_BOARD_NEEDS_MAX:
        need += _get16(res.rec1a, _A_MAXFARE) << 16 | _get16(res.rec1a, _A_MAXFARE + 2)
    if balance < need:
        _refuse(res, errors.R_INSUFFICIENT)
    return res.reason


def decide(res, tb, now, where, ef15, ef17, rec1e, rec1a, balance):
    """Fare decision for one tap; fills res (a Decision). Allocates nothing.

    tb       active FareTable (FareTables.current(now)); None -> R_NO_TARIFF
    now      device seconds (validator.util.bcdtime)
    where    Position (line, stop, direction, door, terminal)
    ef15     EF 0x15, 30 bytes (FCI tag 9F0C): issuer ID [0..7], city [2..3], type [28]
    ef17     EF 0x17 (>= 10 bytes) or None when not read: [8..9] interconnect kind
    rec1e    EF 0x1E record 1 (newest, 48 bytes) or None (needed if tb.needs() & NEED_1E)
    rec1a    EF 0x1A record 2 (128 bytes) or None (needed if tb.needs() & NEED_1A)
    balance  card balance in fen before the tap, or -1 when not known yet: the tap engine
             learns it from INITIALIZE, which needs the decided amount, and then asks
             FarePolicy.afford(balance)

    The steps, in the order of FORMAT.md §3: _accept (table, acceptance, policy), the
    card's EF1A state, _ride (event, penalty, list fare), price, _transfer, cap, _records
    (EF1E, EF1A), _afford (balance).
    """
    res.clear()
    if tb is None:
        _refuse(res, errors.R_NO_TARIFF)
        return res
    li = tb.line_index(where.line)
    po = _accept(res, tb, li, ef15, ef17)
    if po < -1:
        return res
    if po < 0:
        method, pflags, pval = _PAY_PERCENT, _POL_TRANSFER | _POL_CAP, 100
    else:
        b = tb.b
        method, pflags, pval = b[po + 2], b[po + 3], (b[po + 4] << 8) | b[po + 5]

    # -- the card's own bus record: open entry + daily accumulator. Only a 2702 record in
    # this layout with a good CRC counts; else its state is ignored (FORMAT.md §2.3)
    have1a = (
        rec1a is not None and len(rec1a) >= _A_LEN_TOTAL and rec1a[0] == 0x27
        and rec1a[1] == 0x02 and rec1a[_A_MARK] == _A_MARK_BYTE and rec1a[_A_VER] == _A_VERSION
        and _crc16(rec1a, _A_CRC_FROM, _A_CRC) == _get16(rec1a, _A_CRC)
    )
    opened = have1a and rec1a[_A_STATE] == _ST_BOARDED
    # this tap's service day goes straight to the accumulator field of the record to write
    day = res.rec1a
    bcdtime.pack_date((now - tb.day_start) // 86400 * 86400, day, _A_DAY)
    day_total = 0
    day_count = 0
    if have1a and _get16(rec1a, _A_DAY_CITY) == tb.city and _same(rec1a, _A_DAY, day, _A_DAY, 4):
        day_total = _get16(rec1a, _A_DAY_TOTAL) << 16 | _get16(rec1a, _A_DAY_TOTAL + 2)
        day_count = _get16(rec1a, _A_DAY_COUNT)

    ev = _ride(res, tb, li, now, where, rec1a, opened)
    if ev < 0:
        return res

    # -- card-type price (rule 7), transfer (rule 8)
    industry = tb.line_industry(li)
    maxfare = _price(method, pval, tb.line_fare(li))
    res.fare = _price(method, pval, res.base)
    if method == _PAY_FREE:
        res.kind = _K_FREE
    reserve = False
    if tb.xfer_kind != _XFER_NONE and (pflags & _POL_TRANSFER) and ev != _EV_NO_ENTRY:
        reserve = _transfer(res, tb, now, where, ev, maxfare, industry, rec1e, rec1a)

    # -- daily cap over fares paid in this city on this service day (rule 9, penalties
    # excluded)
    fare = res.fare
    if tb.cap and (pflags & _POL_CAP):
        room = tb.cap - day_total
        if room < 0:
            room = 0
        if fare > room:
            fare = room
            res.fare = fare
            res.flags |= _F_CAPPED
            if res.kind != _K_FREE and res.kind != _K_BOARD:
                res.kind = _K_CAPPED
    if ev != _EV_BOARD:
        day_count += 1
    res.amount = fare + res.penalty
    res.rule = ((po - tb.o_pol) // _POLICY_LEN + 1 if po >= 0 else 0) << 8 | res.kind
    # EF1A: section state, accumulator, or closing a dangling boarding
    res.write1a = tb.line_stops(li) > 0 or tb.cap > 0 or opened
    _records(res, tb, now, where, ev, industry, rec1a, maxfare, reserve, day_total + fare,
             day_count, balance)
    if balance >= 0:
        _afford(res, tb, balance)
    return res


class FarePolicy:
    """The fare policy object the tap engine (validator.txn.transaction) calls.

    FarePolicy(tables, where)
      tables  rules.table.FareTables (the app offers pushed containers to it)
      where   Position, updated in place by the app (line, stop, direction, door, terminal)
    needs() -> NEED_* bits for the current table and line (which records to READ)
    decide(now, ef15, ef17, rec1e, rec1a) -> the Decision (reason, amount, rec1e, write1a,
      rec1a, ...), made without the balance: the engine learns it from INITIALIZE, and
      INITIALIZE carries the amount decided here (card-protocol.md §3)
    afford(balance) -> R_OK or R_INSUFFICIENT (the Decision is then refused): the engine
      asks it with INITIALIZE's balance before the PSAM's 8070, so BOARD_NEEDS_MAX sees
      the card's real balance without another exchange
    """

    def __init__(self, tables, where):
        self.tables = tables
        self.where = where
        self.res = Decision()

    def needs(self):
        tb = self.tables.active
        if tb is None:
            return 0
        return tb.needs(self.where.line)

    def decide(self, now, ef15, ef17, rec1e, rec1a):
        return decide(self.res, self.tables.current(now), now, self.where, ef15, ef17, rec1e,
                      rec1a, -1)

    def afford(self, balance):
        return _afford(self.res, self.tables.active, balance)
