# Tier 1: fare rules, table-driven: one case per rule (rules/FORMAT.md §3), plus record bytes and
# the allocation-free proof of decide() on every path (rules/FORMAT.md §Semantics).
# SPDX-License-Identifier: MIT
from emu import farec
from emu.farecard import FareCard
from fwtest import MICROPYTHON, heap_locked
from validator.errors import R_OK, reason_name
from validator.rules import fares, fares_host, records, table, table_host
from validator.util import bcdtime

T = bcdtime.secs(2026, 3, 2, 7, 0, 0)
LOCAL = "02002900FFFFFFFF"
BEIJING = "01011000FFFFFFFF"
FAR = "03003100FFFFFFFF"


def _base():
    return {
        "version": 1, "activation": 0, "city": "2900", "acquirer": "01022900FFFFFFFF",
        "transfer": {"kind": "amount_off", "value": 100, "window_s": 3600},
        "tapoff": {"missing": "charge_max", "window_s": 7200},
        "lines": [{"id": 12, "fare": 200}, {"id": 15, "fare": 200}, {"id": 20, "fare": 150},
                  {"id": 801, "stops": 4,
                   "matrix": [[200, 250, 300, 400], [200, 250, 300], [200, 250], [200]]}],
        "policies": [
            {"type": "senior", "scope": "local", "pay": "free"},
            {"type": "student", "scope": "local", "pay": "percent", "value": 50},
            {"type": "staff", "scope": "local", "pay": "fixed", "value": 180},
            {"type": 0x85, "scope": "any", "pay": "refuse"},
            {"type": "any", "scope": "visiting", "pay": "percent", "value": 100,
             "transfer": False},
        ],
        "accept": [{"org": "any", "city": "1000"}],
    }


def _table(over):
    d = _base()
    for k in over:
        d[k] = over[k]
    return table.FareTable(farec.compile_table(d))


def _run(over, card, steps):
    """Run steps; return [(reason, kind, fare, penalty)] for every validator tap.

    step: (minutes after T, line, stop, door[, terminal byte]) or ("rail", minutes, line)
    """
    tb = _table(over)
    c = FareCard(card.get("issuer", LOCAL), card.get("type", 0), card.get("balance", 5000),
                 card.get("ic", 1))
    res = fares.Decision()
    w = fares.Position()
    out = []
    for s in steps:
        if s[0] == "rail":
            c.foreign_trip(T + s[1] * 60, 1, 4, s[2], 3, 300,
                           s[3] if len(s) > 3 else 0x2900)
            continue
        w.line, w.stop, w.door = s[1], s[2], s[3]
        w.terminal[7] = s[4] if len(s) > 4 else 1
        fares.decide(res, tb, T + s[0] * 60, w, c.ef15, c.ef17, c.rec1e(), c.rec1a,
                     c.balance)
        if res.reason == R_OK:
            c.commit(res)
            out.append((reason_name(res.reason), fares_host.KIND_NAMES[res.kind], res.fare,
                        res.penalty))
        else:
            out.append((reason_name(res.reason), "none", 0, 0))
    return out


A, E, X = fares.DOOR_ANY, fares.DOOR_ENTRY, fares.DOOR_EXIT
OK = "ok"

# (name, table overrides, card, steps, expected)
CASES = (
    ("flat fare per line", {}, {}, [(0, 12, 1, A), (300, 20, 1, A)],
     [(OK, "flat", 200, 0), (OK, "flat", 150, 0)]),
    ("student pays percent", {}, {"type": 2}, [(0, 12, 1, A)], [(OK, "flat", 100, 0)]),
    ("staff fixed fare, never above the line fare", {}, {"type": 3},
     [(0, 12, 1, A), (300, 20, 1, A)], [(OK, "flat", 180, 0), (OK, "flat", 150, 0)]),
    ("senior rides free", {}, {"type": 1}, [(0, 12, 1, A)], [(OK, "free", 0, 0)]),
    ("card type refused by policy", {}, {"type": 0x85}, [(0, 12, 1, A)],
     [("card_type_refused", "none", 0, 0)]),
    ("visitor on the whitelist pays the visitor policy", {}, {"issuer": BEIJING, "type": 1},
     [(0, 12, 1, A), (10, 15, 1, A)], [(OK, "flat", 200, 0), (OK, "flat", 200, 0)]),
    ("visitor not on the whitelist refused", {}, {"issuer": FAR}, [(0, 12, 1, A)],
     [("issuer_not_accepted", "none", 0, 0)]),
    ("visitor without interconnect flag refused", {}, {"issuer": BEIJING, "ic": 0},
     [(0, 12, 1, A)], [("not_interconnect", "none", 0, 0)]),
    ("local card needs no interconnect flag", {}, {"ic": 0}, [(0, 12, 1, A)],
     [(OK, "flat", 200, 0)]),
    ("transfer to another line, once per journey", {}, {},
     [(0, 12, 1, A), (20, 15, 1, A), (40, 12, 1, A), (60, 20, 1, A)],
     [(OK, "flat", 200, 0), (OK, "transfer", 100, 0), (OK, "flat", 200, 0),
      (OK, "transfer", 50, 0)]),
    ("no transfer on the same line or after the window", {}, {},
     [(0, 12, 1, A), (20, 12, 1, A, 2), (81, 15, 1, A)],
     [(OK, "flat", 200, 0), (OK, "flat", 200, 0), (OK, "flat", 200, 0)]),
    ("same line other vehicle counts when the city says so",
     {"transfer": {"kind": "amount_off", "value": 100, "window_s": 3600,
                   "same_line_other_vehicle": True}}, {},
     [(0, 12, 1, A, 1), (20, 12, 1, A, 1), (25, 12, 1, A, 2)],
     [(OK, "flat", 200, 0), (OK, "flat", 200, 0), (OK, "transfer", 100, 0)]),
    ("rail to bus transfer from the card's 0x1E rail record", {}, {},
     [("rail", 0, 2), (10, 12, 1, A)], [(OK, "transfer", 100, 0)]),
    ("rail record acquired in another city opens no transfer", {}, {},
     [("rail", 0, 2, 0x1000), (10, 12, 1, A)], [(OK, "flat", 200, 0)]),
    ("other-city record counts when the city says so",
     {"transfer": {"kind": "amount_off", "value": 100, "window_s": 3600, "other_city": True}},
     {}, [("rail", 0, 2, 0x1000), (10, 12, 1, A)], [(OK, "transfer", 100, 0)]),
    ("percent-off transfer",
     {"transfer": {"kind": "percent_off", "value": 25, "window_s": 3600}}, {},
     [(0, 12, 1, A), (10, 15, 1, A)], [(OK, "flat", 200, 0), (OK, "transfer", 150, 0)]),
    ("free transfer", {"transfer": {"kind": "free", "window_s": 3600}}, {},
     [(0, 12, 1, A), (10, 15, 1, A)], [(OK, "flat", 200, 0), (OK, "transfer", 0, 0)]),
    ("policy without transfer right pays full", {}, {"issuer": BEIJING},
     [(0, 12, 1, A), (10, 15, 1, A)], [(OK, "flat", 200, 0), (OK, "flat", 200, 0)]),
    ("section: board free, alight pays the matrix", {}, {},
     [(0, 801, 0, E), (20, 801, 3, X)], [(OK, "board", 0, 0), (OK, "section", 400, 0)]),
    ("section with one validator: open entry means alighting", {}, {},
     [(0, 801, 1, A), (20, 801, 2, A)], [(OK, "board", 0, 0), (OK, "section", 250, 0)]),
    ("section fare is symmetric (return direction)", {}, {},
     [(0, 801, 3, A), (20, 801, 1, A)], [(OK, "board", 0, 0), (OK, "section", 300, 0)]),
    ("double tap where the ride began is already paid", {}, {},
     [(0, 801, 1, E), (1, 801, 1, A), (2, 801, 1, E)],
     [(OK, "board", 0, 0), ("already_paid", "none", 0, 0), ("already_paid", "none", 0, 0)]),
    ("exit tap without boarding pays the line max", {}, {}, [(0, 801, 2, X)],
     [(OK, "no_entry", 400, 0)]),
    ("missing tap-off charged the max at next boarding", {}, {},
     [(0, 801, 0, E), (200, 12, 1, A), (300, 15, 1, A)],
     [(OK, "board", 0, 0), (OK, "flat", 200, 400), (OK, "flat", 200, 0)]),
    ("missing tap-off, next boarding on the same section line", {}, {"type": 2},
     [(0, 801, 0, E), (30, 801, 2, E), (50, 801, 3, X)],
     [(OK, "board", 0, 0), (OK, "board", 0, 200), (OK, "section", 125, 0)]),
    ("missing tap-off free by policy, entry closed", {"tapoff": {"missing": "charge_none"}},
     {}, [(0, 801, 0, E), (200, 12, 1, A), (300, 15, 1, A)],
     [(OK, "board", 0, 0), (OK, "flat", 200, 0), (OK, "flat", 200, 0)]),
    ("stale entry beyond the tap-off window is a new boarding", {}, {},
     [(0, 801, 0, A), (121, 801, 3, A), (140, 801, 2, A)],
     [(OK, "board", 0, 0), (OK, "board", 0, 400), (OK, "section", 250, 0)]),
    ("transfer decided at boarding, applied at alighting", {}, {},
     [(0, 12, 1, A), (20, 801, 0, E), (40, 801, 3, X), (50, 15, 1, A)],
     [(OK, "flat", 200, 0), (OK, "board", 0, 0), (OK, "transfer", 300, 0),
      (OK, "flat", 200, 0)]),
    ("daily cap: partial then free, reset on the next service day",
     {"cap": {"daily": 500, "day_start": "04:00"}}, {},
     [(0, 12, 1, A), (120, 15, 1, A), (240, 12, 1, A), (360, 15, 1, A),
      (20 * 60 + 30, 12, 1, A), (22 * 60 + 30, 12, 1, A)],
     [(OK, "flat", 200, 0), (OK, "flat", 200, 0), (OK, "capped", 100, 0),
      (OK, "capped", 0, 0), (OK, "capped", 0, 0), (OK, "flat", 200, 0)]),
    ("daily cap: the ride that crosses it pays exactly the rest",
     {"cap": {"daily": 550}}, {},
     [(0, 12, 1, A), (120, 15, 1, A), (240, 12, 1, A)],
     [(OK, "flat", 200, 0), (OK, "flat", 200, 0), (OK, "capped", 150, 0)]),
    ("percent pricing rounds down",
     {"policies": [{"type": "student", "scope": "local", "pay": "percent", "value": 33}]},
     {"type": 2}, [(0, 20, 1, A), (300, 12, 1, A)],
     [(OK, "flat", 49, 0), (OK, "flat", 66, 0)]),
    ("daily cap counts section fares, not penalties",
     {"cap": {"daily": 500}}, {},
     [(0, 801, 0, E), (200, 12, 1, A), (300, 801, 0, E), (320, 801, 3, X), (400, 15, 1, A)],
     [(OK, "board", 0, 0), (OK, "flat", 200, 400), (OK, "board", 0, 0),
      (OK, "capped", 300, 0), (OK, "capped", 0, 0)]),
    ("insufficient balance refused, nothing written", {}, {"balance": 150},
     [(0, 12, 1, A), (5, 20, 1, A)], [("insufficient_balance", "none", 0, 0),
                                      (OK, "flat", 150, 0)]),
    ("boarding needs the max fare when the city says so",
     {"tapoff": {"board_needs_max": True}}, {"balance": 350},
     [(0, 801, 0, E), (1, 12, 1, A)], [("insufficient_balance", "none", 0, 0),
                                       (OK, "flat", 200, 0)]),
    ("unknown line is a fault", {}, {}, [(0, 99, 1, A)], [("no_tariff", "none", 0, 0)]),
)


def test_fares_when_each_rule_case_runs_outcomes_match():
    for name, over, card, steps, want in CASES:
        got = _run(over, card, steps)
        if got != want:
            raise AssertionError("%s: got %r want %r" % (name, got, want))


def test_fares_when_no_table_is_a_fault():
    res = fares.Decision()
    c = FareCard()
    fares.decide(res, None, T, fares.Position(12), c.ef15, None, None, None, 100)
    assert reason_name(res.reason) == "no_tariff" and res.amount == 0


def test_fares_when_ride_priced_rule_id_names_policy_entry_and_kind():
    # Decision.rule (record FARE_RULE, rules/FORMAT.md §3 rule 12): the number of the
    # policy entry that priced the ride (1 = first, 0 = none matched) << 8 | the kind
    tb = _table({})
    res = fares.Decision()
    w = fares.Position(12, 1, 0, A)
    for issuer, ctype, entry, kind in ((LOCAL, 0, 0, fares_host.K_FLAT),
                                       (LOCAL, 1, 1, fares_host.K_FREE),
                                       (LOCAL, 2, 2, fares_host.K_FLAT),
                                       (BEIJING, 0, 5, fares_host.K_FLAT),
                                       (LOCAL, 0x85, 0, fares_host.K_NONE)):
        c = FareCard(issuer, ctype, 5000, 1)
        fares.decide(res, tb, T, w, c.ef15, c.ef17, None, c.rec1a, c.balance)
        assert res.rule == entry << 8 | kind, (issuer, ctype, res.rule)


def test_fares_when_flat_ride_1e_record_bytes_are_complete():
    tb = _table({})
    c = FareCard(balance=1000)
    res = fares.Decision()
    w = fares.Position(12, 0x0304, 1, A, bytes.fromhex("000000123456"))
    fares.decide(res, tb, T, w, c.ef15, None, None, c.rec1a, c.balance)
    e = res.rec1e
    assert e[0] == 0x06 and bytes(e[1:9]) == bytes.fromhex("0000000000123456")
    assert e[9] == 0x02 and bytes(e[10:14]) == bytes.fromhex("000C0304")
    assert bytes(e[17:25]) == bytes.fromhex("000000C8" + "00000320")  # 200, 800 after
    assert bytes(e[25:32]) == bytes.fromhex("20260302070000")
    assert bytes(e[32:42]) == bytes.fromhex("290001022900FFFFFFFF")
    assert not res.write1a  # flat line, no cap, no open boarding: EF1A untouched


def test_fares_when_boarding_1a_record_layout_and_crc_hold():
    tb = _table({})
    c = FareCard()
    res = fares.Decision()
    w = fares.Position(801, 2, 1, E, bytes.fromhex("000000123456"))
    fares.decide(res, tb, T, w, c.ef15, None, None, c.rec1a, c.balance)
    a = res.rec1a
    assert res.write1a and res.txtype == 0x03 and res.rec1e[0] == 0x03
    assert bytes(a[0:6]) == bytes.fromhex("27027D010100") and a[14] == 0x01
    assert bytes(a[15:17]) == b"\x29\x00" and bytes(a[41:43]) == b"\x00\x02"
    assert bytes(a[67:74]) == bytes.fromhex("20260302070000")
    assert bytes(a[81:85]) == bytes.fromhex("00000190")  # max fare 400 = tap-off charge
    assert a[85] == 1 and bytes(a[86:88]) == bytes.fromhex("0321")
    assert bytes(a[88:94]) == bytes.fromhex("000000123456") and a[94] == 0x59
    assert records.bus_record_ok(a)
    a[6] = 0x99  # transaction serial is outside the CRC: the engine may fill it
    assert records.bus_record_ok(a)
    a[41] ^= 1
    assert not records.bus_record_ok(a)


def test_fares_when_1a_record_foreign_or_corrupt_state_ignored():
    tb = _table({})
    c = FareCard()
    res = fares.Decision()
    w = fares.Position(801, 0, 0, E)
    fares.decide(res, tb, T, w, c.ef15, None, None, c.rec1a, c.balance)
    c.commit(res)
    c.rec1a[100] ^= 0xFF  # another layout / a torn write: CRC fails
    w.stop, w.door = 3, A
    fares.decide(res, tb, T + 600, w, c.ef15, None, None, c.rec1a, c.balance)
    assert res.reason == R_OK and res.kind == fares_host.K_BOARD and res.penalty == 0


def test_fares_when_crc16_known_answer():
    # CRC-16/CCITT-FALSE check value for "123456789" is 0x29B1
    assert records.crc16(b"123456789", 0, 9) == 0x29B1


def _alloc_case(over, steps, last):
    """Warm up on all but the last step, then measure decide() of the last one."""
    tb = _table(over)
    c = FareCard()
    res = fares.Decision()
    w = fares.Position()
    for s in steps:
        w.line, w.stop, w.door = s[1], s[2], s[3]
        fares.decide(res, tb, T + s[0] * 60, w, c.ef15, c.ef17, c.rec1e(), c.rec1a, c.balance)
        c.commit(res)
    w.line, w.stop, w.door = last[1], last[2], last[3]
    call = _Call(res, tb, T + last[0] * 60, w, c)
    call.run()
    return heap_locked(call.run), res.kind


class _Call:
    # A bound method, not a closure: calling a closure over more than a few cells
    # allocates on MicroPython, which would blame decide() for the harness.
    def __init__(self, res, tb, now, w, c):
        self.res, self.tb, self.now, self.w = res, tb, now, w
        self.e15, self.e17, self.r1e, self.r1a, self.bal = (c.ef15, c.ef17, c.rec1e(),
                                                            c.rec1a, c.balance)

    def run(self):
        fares.decide(self.res, self.tb, self.now, self.w, self.e15, self.e17, self.r1e,
                     self.r1a, self.bal)


def test_fares_when_any_path_decided_allocates_nothing():
    if not MICROPYTHON:
        heap_locked(None)  # skips on CPython with the standard message
    cap = {"cap": {"daily": 300}}
    for over, steps, last, kind in (
        ({}, [], (0, 12, 1, A), fares_host.K_FLAT),
        ({}, [(0, 12, 1, A)], (10, 15, 1, A), fares_host.K_TRANSFER),
        ({}, [], (0, 801, 1, E), fares_host.K_BOARD),
        ({}, [(0, 801, 1, E)], (20, 801, 3, X), fares_host.K_SECTION),
        ({}, [(0, 801, 1, E)], (300, 12, 3, A), fares_host.K_FLAT),  # penalty path
        ({}, [], (0, 801, 1, X), fares_host.K_NO_ENTRY),
        (cap, [(0, 12, 1, A), (200, 15, 1, A)], (400, 12, 1, A), fares_host.K_CAPPED),
        ({}, [(0, 801, 1, E)], (1, 801, 1, A), fares_host.K_NONE),  # already paid
    ):
        n, k = _alloc_case(over, steps, last)
        assert k == kind, (last, k)
        assert n == 0, (last, n)


def test_fare_policy_when_engine_calls_it_decides_and_allocates_nothing():
    ts = table.FareTables()
    d = _base()
    d["cap"] = {"daily": 1000}
    assert ts.offer(farec.compile_table(d), 0) == 0
    where = fares.Position(801, 1, 0, E, bytes.fromhex("000000123456"))
    pol = fares.FarePolicy(ts, where)
    assert pol.needs() == table_host.NEED_1E | table_host.NEED_1A
    c = FareCard()
    res = pol.decide(T, c.ef15, None, None, c.rec1a)
    assert res.reason == R_OK and res.kind == fares_host.K_BOARD and res.write1a
    c.commit(res)
    where.stop, where.door = 3, X
    r1a, r1e = c.rec1a, c.rec1e()
    res = pol.decide(T + 600, c.ef15, None, r1e, r1a)
    assert res.amount == 300 and res.kind == fares_host.K_SECTION
    if MICROPYTHON:
        call = _PolicyCall(pol, T + 600, c.ef15, r1e, r1a)
        assert heap_locked(call.run) == 0
    assert fares.FarePolicy(table.FareTables(), where).needs() == 0


class _PolicyCall:
    def __init__(self, pol, now, e15, r1e, r1a):
        self.pol, self.now, self.e15, self.r1e, self.r1a = pol, now, e15, r1e, r1a

    def run(self):
        self.pol.decide(self.now, self.e15, None, self.r1e, self.r1a)


def test_fare_policy_when_boarding_needs_max_balance_checked_after_initialize():
    # on the device the balance is known only from INITIALIZE, which needs the decided
    # amount: decide() runs without it, then the engine asks afford(balance)
    ts = table.FareTables()
    d = _base()
    d["tapoff"] = {"missing": "charge_max", "window_s": 7200, "board_needs_max": True}
    assert ts.offer(farec.compile_table(d), 0) == 0
    pol = fares.FarePolicy(ts, fares.Position(801, 0, 0, E))
    c = FareCard(balance=399)
    res = pol.decide(T, c.ef15, None, None, c.rec1a)
    assert res.reason == R_OK and res.amount == 0 and res.kind == fares_host.K_BOARD
    assert pol.afford(400) == R_OK and res.reason == R_OK
    if MICROPYTHON:
        assert heap_locked(_AffordCall(pol, 400).run) == 0
    assert reason_name(pol.afford(399)) == "insufficient_balance"
    assert res.reason == pol.afford(399) and res.kind == fares_host.K_NONE
    pol.where.line = 12  # a flat ride needs its fare only (the card's INITIALIZE checks it)
    res = pol.decide(T + 60, c.ef15, None, None, c.rec1a)
    assert res.amount == 200 and pol.afford(200) == R_OK


class _AffordCall:
    def __init__(self, pol, bal):
        self.pol, self.bal = pol, bal

    def run(self):
        self.pol.afford(self.bal)
