# Tier 2: the fare rules inside the real tap engine (validator.txn.transaction) with the
# emulated T-Union card and MOT PSAM: records read only when needed, EF1A written with the
# purchase, amounts debited as decided. CPython only: the engine plus both emulators do not
# compile from source inside the unix port's 128k heap.
# SPDX-License-Identifier: MIT
from emu import farec, issuer, rig
from emu.psam import Psam
from emu.t0 import T0Card
from validator.errors import R_INSUFFICIENT, R_OK
from validator.rules import fares, fares_host, records, table, table_host
from validator.util import bcdtime

KEYS = issuer.load_master_keys()
TERM = b"\x00\x00\x00\x12\x34\x56"


def _table(**over):
    d = {
        "version": 1, "activation": 0, "city": "2900", "acquirer": "01022900FFFFFFFF",
        "transfer": {"kind": "amount_off", "value": 100, "window_s": 5400},
        "cap": {"daily": 1000},
        "lines": [{"id": 12, "fare": 200}, {"id": 15, "fare": 200},
                  {"id": 801, "stops": 3, "matrix": [[200, 300, 400], [200, 300], [200]]}],
    }
    for k in over:
        d[k] = over[k]
    return d


def _rig(desc):
    psam = Psam(KEYS, terminal_no=TERM)
    r = rig.Rig(psam=psam, t0=T0Card(psam))
    r.clock.t = bcdtime.secs(2026, 3, 2, 8, 0, 0)
    ts = table.FareTables()
    assert ts.offer(farec.compile_table(desc), r.clock.now()) == table_host.T_ACTIVE
    where = fares.Position(12, 0, 0, fares.DOOR_ANY, TERM)
    r.policy = fares.FarePolicy(ts, where)
    r.txn = r._new_txn()
    return r, where


def test_rules_txn_when_section_ride_board_then_alight_debits_matrix_fare():
    r, where = _rig(_table())
    card = issuer.issue_card(KEYS, balance=5000)
    where.line, where.stop = 801, 0
    res = r.tap(card)
    assert res.reason == R_OK and res.amount == 0 and res.balance == 5000
    a = card.ef1a[2]
    assert records.bus_record_ok(a) and a[records.A_STATE] == records.ST_BOARDED
    assert card.ef1e[0][0] == records.TT_BOARD
    r.clock.advance(1200)
    where.stop = 2
    res = r.tap(card)
    assert res.reason == R_OK and res.amount == 400 and res.balance == 4600
    a = card.ef1a[2]
    assert a[records.A_STATE] == records.ST_CLOSED
    assert records.get32(a, records.A_DAY_TOTAL) == 400
    e = card.ef1e[0]
    assert e[0] == records.TT_ALIGHT and records.get32(e, records.E_AMOUNT) == 400
    assert records.get32(e, records.E_BALANCE) == 4600


def test_rules_txn_when_transfer_and_cap_through_engine_amounts_match():
    r, where = _rig(_table(cap={"daily": 300}))
    card = issuer.issue_card(KEYS, balance=5000)
    got = []
    for line in (12, 15, 12, 15):
        where.line = line
        res = r.tap(card)
        got.append((res.reason, res.amount))
        r.clock.advance(600)
    # 200; transfer 200-100; new journey 200 capped to 0 (300 reached); capped 0
    assert got == [(R_OK, 200), (R_OK, 100), (R_OK, 0), (R_OK, 0)]
    assert card.balance == 4700


def test_rules_txn_when_flat_table_needs_nothing_fewer_exchanges():
    plain = _table(transfer={}, cap={}, lines=[{"id": 12, "fare": 200}])
    r1, _ = _rig(plain)
    r2, _ = _rig(_table())
    res1 = r1.tap(issuer.issue_card(KEYS, balance=5000))
    n1 = res1.exchanges
    res2 = r2.tap(issuer.issue_card(KEYS, balance=5000))
    assert res1.reason == R_OK and res2.reason == R_OK and res1.amount == res2.amount == 200
    # default-style table: + READ RECORD 1E, + READ RECORD 1A, + 80DC for EF1A
    assert res2.exchanges == n1 + 3, (n1, res2.exchanges)


def test_rules_txn_when_ride_priced_record_fare_rule_is_the_rule_id():
    # FORMAT.md §2 FARE_RULE = the fare rule id that priced the ride (rules/FORMAT.md §3
    # rule 12): policy entry number in the high byte, the pricing rule (kind) in the low
    pol = [{"type": "senior", "scope": "local", "pay": "free"},
           {"type": "any", "scope": "local", "pay": "percent", "value": 100}]
    r, where = _rig(_table(transfer={}, cap={}, policies=pol))
    res = r.tap(issuer.issue_card(KEYS, balance=5000))
    assert res.reason == R_OK and res.amount == 200
    raw = r.rows()[-1]["raw"]
    assert raw[90:92] == bytes([2, fares_host.K_FLAT])  # entry 2 (any, local), flat
    r.clock.advance(120)
    res = r.tap(issuer.issue_card(KEYS, balance=5000, card_type="senior"))
    assert res.reason == R_OK and res.amount == 0
    assert r.rows()[-1]["raw"][90:92] == bytes([1, fares_host.K_FREE])


def test_rules_txn_when_board_needs_max_card_balance_from_initialize_decides():
    # BOARD_NEEDS_MAX: boarding section line 801 (max fare 400) needs a balance of 400.
    # The balance is the card's, from INITIALIZE (the amount sent there is the boarding's
    # 0): no extra exchange, and a refused boarding stops before the PSAM's 8070.
    desc = _table(tapoff={"board_needs_max": True})
    r, where = _rig(desc)
    where.line, where.stop, where.door = 801, 0, fares.DOOR_ENTRY
    poor = issuer.issue_card(KEYS, balance=300)
    res = r.tap(poor)
    assert res.reason == R_INSUFFICIENT
    assert res.exchanges == 4  # SELECT, READ RECORD 1E, READ RECORD 1A, INITIALIZE
    assert poor.balance == 300 and not records.bus_record_ok(poor.ef1a[2])
    row = r.rows()[-1]
    assert row["status"] == "refused" and row["balance_before"] == 300
    r.clock.advance(120)
    rich = issuer.issue_card(KEYS, balance=400, serial="03104770040067442803")
    res = r.tap(rich)
    assert res.reason == R_OK and rich.ef1a[2][records.A_STATE] == records.ST_BOARDED
    r2, w2 = _rig(_table())  # the same boarding without the flag: as many exchanges
    w2.line, w2.stop, w2.door = 801, 0, fares.DOOR_ENTRY
    assert r2.tap(issuer.issue_card(KEYS, balance=400)).exchanges == res.exchanges
