# validator.rules.fares: the fare decision for one tap — pure, time injected, allocation-free.
# SPDX-License-Identifier: MIT
#
# decide() reads the card data the transaction engine already holds (EF15 from the SELECT
# FCI, optional EF17, EF1E record 1, EF1A record 2 — card-protocol.md §2.1/§2.3/§2.5/§2.6),
# the validator's position and the active FareTable, and fills a preallocated Decision:
# reason code, fare / penalty / amount in fen, and the exact EF1E and EF1A record images to
# write with the purchase. Rules (issue 7) and the byte layouts are in rules/FORMAT.md; the
# independent reference calculation is tests/host/fare_oracle.py.
from micropython import const

from validator.errors import (
    R_ALREADY_PAID,
    R_CARD_TYPE_REFUSED,
    R_INSUFFICIENT,
    R_ISSUER_NOT_ACCEPTED,
    R_NO_TARIFF,
    R_NOT_INTERCONNECT,
    R_OK,
)
from validator.rules import records as r
from validator.rules import table as t
from validator.util import bcdtime

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
KIND_NAMES = ("none", "flat", "transfer", "board", "section", "capped", "free", "no_entry")

_EV_SINGLE = const(0)
_EV_BOARD = const(1)
_EV_ALIGHT = const(2)
_EV_NO_ENTRY = const(3)

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
    """Preallocated result of decide(); read the fields, write rec1e / rec1a as told."""

    def __init__(self):
        self.rec1e = bytearray(r.E_LEN)  # EF1E record to append (always, when reason R_OK)
        self.rec1a = bytearray(r.A_LEN_TOTAL)  # EF1A record 2 to write when write1a
        self._day = bytearray(4)
        self.clear()

    def clear(self):
        self.reason = R_OK
        self.kind = _K_NONE
        self.flags = 0
        self.txtype = 0  # EF1E[0]: 03 boarding, 04 alighting, 06 single ride
        self.industry = 0
        self.base = 0  # undiscounted fare of this ride (table), fen
        self.fare = 0  # this ride after card type, transfer and cap
        self.penalty = 0  # missing tap-off charge of an earlier boarding
        self.amount = 0  # fare + penalty: the purchase amount to debit
        self.day_total = 0  # daily accumulator after this ride (cap), fen
        self.write1a = False
        for i in range(r.E_LEN):
            self.rec1e[i] = 0
        for i in range(r.A_LEN_TOTAL):
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
    if method == t.PAY_FREE:
        return 0
    if method == t.PAY_FIXED:
        return value if value < base else base
    return base * value // 100


def _transfer_ok(tb, now, where, industry, rec1e):
    """The newest EF1E record opens a transfer for this ride (at most once per journey)."""
    if rec1e is None or len(rec1e) < r.E_LEN:
        return False
    ty = rec1e[r.E_TYPE]
    if ty != r.TT_SINGLE and ty != r.TT_BOARD and ty != r.TT_ALIGHT:
        return False  # empty (00/FF) or an update record
    if rec1e[r.E_FLAGS] & r.F_TRANSFER:
        return False  # that ride already was this journey's transfer
    ts = bcdtime.unpack_datetime(rec1e, r.E_TIME)
    if ts < 0 or now < ts or now - ts > tb.xfer_window:
        return False
    if not (tb.flags & t.FLAG_XFER_OTHER_CITY) and r.get16(rec1e, r.E_CITY) != tb.city:
        return False
    if rec1e[r.E_INDUSTRY] != industry or r.get16(rec1e, r.E_LINE) != where.line:
        return True  # another mode (rail 01 -> bus 02) or another line
    if tb.flags & t.FLAG_XFER_SAME_LINE:
        return not _same(rec1e, r.E_TERMINAL, where.terminal, 0, 8)  # another vehicle
    return False


def _discount(tb, fare):
    k = tb.xfer_kind
    if k == t.XFER_FREE:
        return fare
    if k == t.XFER_AMOUNT_OFF:
        return tb.xfer_value if tb.xfer_value < fare else fare
    if k == t.XFER_PERCENT_OFF:
        return fare * tb.xfer_value // 100
    return 0


def _refuse(res, code):
    res.reason = code
    res.kind = _K_NONE
    res.write1a = False


def decide(res, tb, now, where, ef15, ef17, rec1e, rec1a, balance):
    """Fare decision for one tap; fills res (a Decision). Allocates nothing.

    tb       active FareTable (FareTables.current(now)); None -> R_NO_TARIFF
    now      device seconds (validator.util.bcdtime)
    where    Position (line, stop, direction, door, terminal)
    ef15     EF 0x15, 30 bytes (FCI tag 9F0C): issuer ID [0..7], city [2..3], type [28]
    ef17     EF 0x17 (>= 10 bytes) or None when not read: [8..9] interconnect kind
    rec1e    EF 0x1E record 1 (newest, 48 bytes) or None (needed if tb.needs() & NEED_1E)
    rec1a    EF 0x1A record 2 (128 bytes) or None (needed if tb.needs() & NEED_1A)
    balance  card balance in fen before the tap, or -1 to skip the sufficiency check
    """
    res.clear()
    if tb is None:
        _refuse(res, R_NO_TARIFF)
        return res
    li = tb.line_index(where.line)
    if li < 0:
        _refuse(res, R_NO_TARIFF)
        return res
    # -- acceptance: local by city code, visitors by the interconnect whitelist (§2.1, §2.3, §7)
    org = r.get16(ef15, 0)
    city = r.get16(ef15, 2)
    local = city == tb.city
    if not local:
        if not tb.accepted(org, city):
            _refuse(res, R_ISSUER_NOT_ACCEPTED)
            return res
        if ef17 is not None and ef17[8] == 0 and ef17[9] == 0:
            _refuse(res, R_NOT_INTERCONNECT)
            return res
    po = tb.policy(ef15[28], local)
    if po < 0:
        method, pflags, pval = t.PAY_PERCENT, t.POL_TRANSFER | t.POL_CAP, 100
    else:
        b = tb.b
        method, pflags, pval = b[po + 2], b[po + 3], (b[po + 4] << 8) | b[po + 5]
    if method == t.PAY_REFUSE:
        _refuse(res, R_CARD_TYPE_REFUSED)
        return res

    industry = tb.line_industry(li)
    stops = tb.line_stops(li)
    linemax = tb.line_fare(li)
    res.industry = industry

    # -- the card's own bus record: open entry + daily accumulator (FORMAT.md §EF1A)
    have1a = r.bus_record_ok(rec1a)
    opened = have1a and rec1a[r.A_STATE] == r.ST_BOARDED
    day = res._day
    sd = (now - tb.day_start) // 86400
    bcdtime.pack_date(sd * 86400, day, 0)
    day_total = 0
    day_count = 0
    if have1a and r.get16(rec1a, r.A_DAY_CITY) == tb.city and _same(rec1a, r.A_DAY, day, 0, 4):
        day_total = r.get32(rec1a, r.A_DAY_TOTAL)
        day_count = r.get16(rec1a, r.A_DAY_COUNT)

    # -- which event is this tap
    if stops == 0:
        ev = _EV_SINGLE
    else:
        match = False
        if opened and r.get16(rec1a, r.A_LINE) == where.line:
            et = bcdtime.unpack_datetime(rec1a, r.A_ENTRY_TIME)
            match = et >= 0 and 0 <= now - et <= tb.tapoff_window
        if match and where.door != DOOR_EXIT and r.get16(rec1a, r.A_ENTRY_STOP) == where.stop:
            # a second tap where the ride began is a double tap, not a ride of zero stops
            _refuse(res, R_ALREADY_PAID)
            return res
        if where.door == DOOR_ENTRY:
            ev = _EV_BOARD
        elif where.door == DOOR_EXIT:
            ev = _EV_ALIGHT if match else _EV_NO_ENTRY
        else:
            ev = _EV_ALIGHT if match else _EV_BOARD

    # -- a boarding left open and not closed by this tap: missing tap-off
    penalty = 0
    if opened and ev != _EV_ALIGHT:
        res.flags |= r.F_PENALTY
        if tb.tapoff_policy == t.TAPOFF_CHARGE_MAX:
            penalty = r.get32(rec1a, r.A_MAXFARE)
            if penalty > _MAX_FEN:
                penalty = _MAX_FEN

    # -- base fare of this ride
    if ev == _EV_SINGLE:
        base = linemax
        kind = _K_FLAT
    elif ev == _EV_BOARD:
        base = 0
        kind = _K_BOARD
    elif ev == _EV_ALIGHT:
        es = r.get16(rec1a, r.A_ENTRY_STOP)
        if es < stops and where.stop < stops:
            base = tb.section_fare(li, es, where.stop)
        else:
            base = linemax  # stop outside the matrix: charge as far as the line goes
        kind = _K_SECTION
    else:
        base = linemax
        kind = _K_NO_ENTRY
    fare = _price(method, pval, base)
    if method == t.PAY_FREE:
        kind = _K_FREE

    # -- transfer: decided at boarding (EF1E rec 1), applied at alighting (EF1A flag)
    xfer_allowed = tb.xfer_kind != t.XFER_NONE and (pflags & t.POL_TRANSFER)
    reserve = False
    if xfer_allowed and ev != _EV_NO_ENTRY:
        if ev == _EV_ALIGHT:
            xfer = rec1a[r.A_FLAGS] & r.F_TRANSFER
        else:
            xfer = _transfer_ok(tb, now, where, industry, rec1e)
        if xfer:
            if ev == _EV_BOARD:
                # reserve the journey's one discount only if the ride can cost something
                reserve = _price(method, pval, linemax) > 0
                if reserve:
                    res.flags |= r.F_TRANSFER
            else:
                d = _discount(tb, fare)
                if d > 0:
                    fare -= d
                    res.flags |= r.F_TRANSFER
                    if kind != _K_FREE:
                        kind = _K_TRANSFER

    # -- daily cap over fares paid in this city on this service day (penalties excluded)
    if tb.cap and (pflags & t.POL_CAP):
        room = tb.cap - day_total
        if room < 0:
            room = 0
        if fare > room:
            fare = room
            res.flags |= r.F_CAPPED
            if kind != _K_FREE and kind != _K_BOARD:
                kind = _K_CAPPED
    day_total += fare
    if ev != _EV_BOARD:
        day_count += 1

    amount = fare + penalty
    res.base = base
    res.fare = fare
    res.penalty = penalty
    res.amount = amount
    res.day_total = day_total
    res.kind = kind
    if balance >= 0:
        need = amount
        if ev == _EV_BOARD and (tb.flags & t.FLAG_BOARD_NEEDS_MAX):
            need += _price(method, pval, linemax)
        if balance < need:
            _refuse(res, R_INSUFFICIENT)
            return res

    # -- EF1E record (§2.6): every accepted tap appends one
    e = res.rec1e
    if ev == _EV_SINGLE:
        res.txtype = r.TT_SINGLE
    elif ev == _EV_BOARD:
        res.txtype = r.TT_BOARD
    else:
        res.txtype = r.TT_ALIGHT
    e[r.E_TYPE] = res.txtype
    _copy(e, r.E_TERMINAL, where.terminal, 0, 8)
    e[r.E_INDUSTRY] = industry
    r.put16(e, r.E_LINE, where.line)
    r.put16(e, r.E_STATION, where.stop)
    e[r.E_FLAGS] = res.flags
    r.put32(e, r.E_AMOUNT, amount)
    if balance >= 0:
        r.put32(e, r.E_BALANCE, balance - amount)
    bcdtime.pack_datetime(now, e, r.E_TIME)
    r.put16(e, r.E_CITY, tb.city)
    _copy(e, r.E_ACQ, tb.acq, 0, 8)

    # -- EF1A record 2: section state, accumulator, or closing a dangling boarding
    if stops == 0 and not tb.cap and not opened:
        return res
    res.write1a = True
    a = res.rec1a
    a[r.A_STATE] = r.ST_BOARDED if ev == _EV_BOARD else r.ST_CLOSED
    if ev == _EV_ALIGHT:  # keep the entry half of the record
        _copy(a, r.A_ENTRY_CITY, rec1a, r.A_ENTRY_CITY, 2)
        _copy(a, r.A_ENTRY_ACQ, rec1a, r.A_ENTRY_ACQ, 8)
        _copy(a, r.A_ENTRY_STOP, rec1a, r.A_ENTRY_STOP, 2)
        _copy(a, r.A_ENTRY_TERM, rec1a, r.A_ENTRY_TERM, 8)
        _copy(a, r.A_ENTRY_TIME, rec1a, r.A_ENTRY_TIME, 7)
    else:
        r.put16(a, r.A_ENTRY_CITY, tb.city)
        _copy(a, r.A_ENTRY_ACQ, tb.acq, 0, 8)
        r.put16(a, r.A_ENTRY_STOP, where.stop)
        _copy(a, r.A_ENTRY_TERM, where.terminal, 0, 8)
        bcdtime.pack_datetime(now, a, r.A_ENTRY_TIME)
    if ev != _EV_BOARD:
        r.put16(a, r.A_EXIT_CITY, tb.city)
        _copy(a, r.A_EXIT_ACQ, tb.acq, 0, 8)
        r.put16(a, r.A_EXIT_STOP, where.stop)
        _copy(a, r.A_EXIT_TERM, where.terminal, 0, 8)
        bcdtime.pack_datetime(now, a, r.A_EXIT_TIME)
        r.put32(a, r.A_MAXFARE, fare)
    else:
        r.put32(a, r.A_MAXFARE, _price(method, pval, linemax))
    a[r.A_DIRECTION] = where.direction & 0xFF
    r.put16(a, r.A_LINE, where.line)
    _copy(a, r.A_VEHICLE, where.terminal, 2, 6)
    a[r.A_FLAGS] = res.flags if ev != _EV_BOARD else (r.F_TRANSFER if reserve else 0)
    a[r.A_INDUSTRY] = industry
    _copy(a, r.A_DAY, day, 0, 4)
    r.put32(a, r.A_DAY_TOTAL, day_total)
    r.put16(a, r.A_DAY_COUNT, day_count)
    r.put16(a, r.A_DAY_CITY, tb.city)
    r.seal_bus_record(a)
    return res


class FarePolicy:
    """The fare policy object the tap engine (validator.txn.transaction) calls.

    FarePolicy(tables, where)
      tables  rules.table.FareTables (the app offers pushed containers to it)
      where   Position, updated in place by the app (line, stop, direction, door, terminal)
    needs() -> NEED_* bits for the current table and line (which records to READ)
    decide(now, ef15, ef17, rec1e, rec1a) -> the Decision (reason, amount, rec1e, write1a,
      rec1a, ...). `balance` is -1 (unknown) unless the app sets it before the tap: the
      card's own INITIALIZE refuses an amount above the balance anyway.
    """

    def __init__(self, tables, where):
        self.tables = tables
        self.where = where
        self.res = Decision()
        self.balance = -1

    def needs(self):
        tb = self.tables.active
        if tb is None:
            return 0
        return tb.needs(self.where.line)

    def decide(self, now, ef15, ef17, rec1e, rec1a):
        return decide(self.res, self.tables.current(now), now, self.where, ef15, ef17, rec1e,
                      rec1a, self.balance)


def __getattr__(name):
    """Host callers' names for this module's private consts and host-only helpers: they live
    in validator.rules.fares_host (never imported by the firmware; PEP 562 / MicroPython module
    __getattr__)."""
    from validator.rules import fares_host as h

    return getattr(h, name)
