# Tier 1: the M1 purse engine (validator.m1.purse) on the whole emulated byte path: the
# firmware PN532 driver over HSU to the emulated PN532 (its own Crypto1) and an emulated
# MIFARE Classic purse card, the local PSAM (key derivation, record MAC) through the
# firmware's T=0 link, the real record log and blacklist on an emulated NOR (emu.mifare.Rig).
# Pays, refusals, a tear at every card write in every way, a power cut at every flash
# operation, and the heap-locked tap. Runs on MicroPython and CPython.
import fwtest
from emu import mifare
from validator.errors import (
    R_ALREADY_PAID,
    R_BLACKLISTED,
    R_CARD_ERROR,
    R_EXPIRED,
    R_INSUFFICIENT,
    R_OK,
    R_RECOVERED,
    R_TAP_AGAIN,
    R_UNSUPPORTED_CARD,
)
from validator.m1 import layout_host as L

MP_HEAP = "2m"  # fixtures: three emulators with their crypto, journals, a RAM NOR image

UID4 = b"\x9c\x59\x9b\x32"
UID7 = b"\x04\x0c\x60\x63\x0c\x08\x8a"
FARE = 200


def _card(rg, uid=UID4, **kw):
    kw.setdefault("balance", 1000)
    return mifare.issue_purse(rg.keys, uid, **kw)


def _paid(rows):
    """fen charged by final records, per card counter (the clearing view)."""
    out = {}
    for r in rows:
        if r["status"] in ("normal", "recovered"):
            out[r["atc"]] = out.get(r["atc"], 0) + r["amount"]
    return out


def _check_macs(rg):
    for r in rg.rows():
        if r["status"] in ("normal", "recovered"):
            assert r["card_kind"] == 1
            assert bytes.fromhex(r["m1_mac"]) == mifare.record_mac(rg.keys, r["raw"]), r


def test_m1_purse_when_card_pays_value_backup_counter_trip_and_records_follow():
    rg = mifare.Rig(fare=FARE)
    c = _card(rg)
    res = rg.tap(c)
    assert res.reason == R_OK and res.amount == FARE and res.balance == 800
    assert res.counter == 1
    v, b, ctr, trips = mifare.purse_state(c)
    assert (v, b, ctr) == (800, 800, 1) and 1 in trips
    rows = rg.rows()
    assert [r["status"] for r in rows] == ["gray", "normal"]
    n = rows[1]
    assert n["ref_seq"] == rows[0]["seq"] and n["balance_before"] == 1000
    assert n["balance_after"] == 800 and n["atc"] == 1 and n["tac"] == "ffffffff"
    assert n["card_serial"] == L.serial_of_uid(UID4).hex() and n["txn_type"] == "06"
    assert n["issuer_id"] == "4d312900ffffffff"
    _check_macs(rg)
    # the exchanges of a paid tap: 4 PSAM (801A, 3 x 80FA) + 1 MAC, 3 auths, 5 reads,
    # 1 trip write, decrement + transfer, restore + transfer, control write
    assert res.exchanges == 19


def test_m1_purse_when_crc8_by_table_it_equals_the_bitwise_reference():
    from validator.m1 import purse

    for blk in (bytes(16), b"\xff" * 16, bytes(range(16)), bytes(range(200, 216))):
        assert purse._crc8(blk, 0, 15) == L.crc8(blk[:15])
    assert L.crc8(bytes(15)) != 0  # a zeroed block fails its CHECK (init 0xFF)


def test_m1_purse_when_tapped_again_inside_the_window_already_paid_from_the_card():
    rg = mifare.Rig(fare=FARE)
    c = _card(rg)
    assert rg.tap(c).reason == R_OK
    rg.clock.advance(10)
    assert rg.tap(c).reason == R_ALREADY_PAID
    rg.clock.advance(60)
    assert rg.tap(c).reason == R_OK
    assert mifare.purse_state(c)[:3] == (600, 600, 2)


def test_m1_purse_when_7_byte_uid_and_4k_cards_pay():
    for uid, size in ((UID7, 1024), (UID4, 4096), (UID7, 4096)):
        rg = mifare.Rig(fare=FARE)
        c = _card(rg, uid=uid, size=size)
        assert rg.tap(c).reason == R_OK
        assert mifare.purse_state(c)[:3] == (800, 800, 1)
        _check_macs(rg)


def test_m1_purse_when_balance_insufficient_refused_and_nothing_written():
    rg = mifare.Rig(fare=FARE)
    c = _card(rg, balance=150)
    w0 = c.writes
    res = rg.tap(c)
    assert res.reason == R_INSUFFICIENT and c.writes == w0
    assert mifare.purse_state(c)[:3] == (150, 150, 0)
    rows = rg.rows()
    assert [r["status"] for r in rows] == ["refused"] and rows[0]["balance_before"] == 150


def test_m1_purse_when_blacklisted_by_uid_blocked_record_and_the_card_untouched():
    rg = mifare.Rig(fare=FARE, blacklist=(L.serial_of_uid(UID7),))
    c = _card(rg, uid=UID7)
    res = rg.tap(c)
    assert res.reason == R_BLACKLISTED and c.auths == 0 and c.writes == 0
    rows = rg.rows()
    assert [r["status"] for r in rows] == ["blocked"] and rows[0]["card_kind"] == 1
    other = _card(rg, uid=UID4)  # another card pays
    assert rg.tap(other).reason == R_OK


def test_m1_purse_when_expired_or_another_city_refused():
    rg = mifare.Rig(fare=FARE)
    assert rg.tap(_card(rg, end=20250101)).reason == R_EXPIRED
    # a card whose keys derive from another city code: authentication fails
    assert rg.tap(_card(rg, city=0x1000)).reason == R_CARD_ERROR


def test_m1_purse_when_not_a_classic_card_unsupported_and_nothing_sent():
    rg = mifare.Rig(fare=FARE)
    c = _card(rg)
    c.sak = 0x00
    res = rg.tap(c)
    assert res.reason == R_UNSUPPORTED_CARD and c.frames == 0 and rg.rows() == []


# ---- tears at every card write -------------------------------------------------------------
# writes of a paid tap, in order: 1 trip intent, 2 value (transfer), 3 backup (transfer),
# 4 control (the commit). What the next tap must answer, per write and mode:
_EXPECT = {
    (1, "before"): R_OK, (1, "after"): R_OK, (1, "half"): R_OK,
    (2, "before"): R_OK, (2, "after"): R_RECOVERED, (2, "half"): R_OK,
    (3, "before"): R_RECOVERED, (3, "after"): R_RECOVERED, (3, "half"): R_RECOVERED,
    (4, "before"): R_RECOVERED, (4, "after"): R_RECOVERED, (4, "half"): R_RECOVERED,
}
# (4, "after"): the card committed, only the answer was lost; the validator still holds its
# gray record of that tap and writes the final one when the card comes back


def test_m1_purse_when_torn_at_every_card_write_next_tap_settles_without_double_charge():
    for (k, mode), want in sorted(_EXPECT.items()):
        rg = mifare.Rig(fare=FARE)
        c = _card(rg)
        c.tear(k, mode)
        first = rg.tap(c)
        assert first.reason == R_TAP_AGAIN, (k, mode, first.reason)
        rg.clock.advance(5)
        second = rg.tap(c)
        assert second.reason == want, (k, mode, second.reason)
        v, b, ctr, _ = mifare.purse_state(c)
        assert (v, b, ctr) == (800, 800, 1), (k, mode, v, b, ctr)
        paid = _paid(rg.rows())
        assert paid == {1: FARE}, (k, mode, paid)
        if want == R_RECOVERED:
            rec = [r for r in rg.rows() if r["status"] == "recovered"][0]
            gray = [r for r in rg.rows() if r["status"] == "gray"][0]
            assert rec["ref_seq"] == gray["seq"]  # our own gray record, named
        elif want == R_OK:
            norm = [r for r in rg.rows() if r["status"] == "normal"][0]
            assert norm["void_seq"] == rg.rows()[0]["seq"]  # the torn one proved void
        _check_macs(rg)
        # and the card goes on: the next ride is charged once more
        rg.clock.advance(100)
        assert rg.tap(c).reason == R_OK
        assert mifare.purse_state(c)[:3] == (600, 600, 2), (k, mode)


def test_m1_purse_when_torn_card_comes_back_to_another_validator_it_is_settled_there():
    a = mifare.Rig(fare=FARE)
    c = _card(a)
    c.tear(2, "after")  # the value block paid, the rest torn
    assert a.tap(c).reason == R_TAP_AGAIN
    b = mifare.Rig(fare=FARE)  # another bus: no gray record of its own
    res = b.tap(c)
    assert res.reason == R_RECOVERED and res.amount == FARE
    rec = b.rows()[0]
    assert rec["status"] == "recovered" and rec["atc"] == 1 and rec["ref_seq"] == 0xFFFFFFFF
    assert mifare.purse_state(c)[:3] == (800, 800, 1)


def test_m1_purse_when_power_cut_at_every_flash_operation_never_charged_twice():
    from emu.nor import PowerCut

    rg = mifare.Rig(fare=FARE)
    p0 = rg.flash.programs + rg.flash.erases
    assert rg.tap(_card(rg)).reason == R_OK
    n_ops = rg.flash.programs + rg.flash.erases - p0
    assert n_ops >= 4  # gray record (2 programs), final record (2)
    for n in range(n_ops + 1):
        for mode in ("drop", "torn"):
            rg = mifare.Rig(fare=FARE)
            c = _card(rg)
            rg.records.maintain()
            rg.flash.cut_after(n, mode)
            try:
                rg.tap(c)
            except PowerCut:
                pass
            rg.flash.revive()
            rg.reboot()
            rg.clock.advance(5)
            second = rg.tap(c).reason
            assert second in (R_OK, R_ALREADY_PAID, R_RECOVERED), (n, mode, second)
            v, b, ctr, _ = mifare.purse_state(c)
            assert (v, b, ctr) == (800, 800, 1), (n, mode, v, b, ctr)
            paid = _paid(rg.rows())
            assert sum(paid.values()) <= FARE and all(x == FARE for x in paid.values())
            if second == R_ALREADY_PAID:
                # the card paid in the cut tap: its final record made it to flash, or the
                # gray one did (clearing settles it from counter 2 at the card's next ride)
                assert [r["status"] for r in rg.rows()] in (["gray", "normal"], ["gray"])


# ---- allocation ------------------------------------------------------------------------------
def _locked(rg, card, want, setup=None):
    fwtest.need_micropython()
    if setup is not None:
        setup(card)
    assert rg.record(card).reason == want  # warm-up, recorded
    rg.rewind()
    n = fwtest.heap_locked(rg.replay_tap)
    assert rg.m1.result.reason == want
    return n


def test_m1_purse_when_paid_tap_heap_locked_allocates_nothing():
    rg = mifare.Rig(fare=FARE, journal=True)
    assert _locked(rg, _card(rg), R_OK) == 0
    assert rg.m1.result.reason == R_OK


def test_m1_purse_when_recovery_heap_locked_allocates_nothing():
    rg = mifare.Rig(fare=FARE, journal=True)
    c = _card(rg)
    c.tear(3, "after")
    assert rg.tap(c).reason == R_TAP_AGAIN
    rg.clock.advance(5)
    assert _locked(rg, c, R_RECOVERED) == 0
    assert rg.m1.result.reason == R_RECOVERED


def test_m1_purse_when_blacklisted_heap_locked_allocates_nothing():
    rg = mifare.Rig(fare=FARE, journal=True, blacklist=(L.serial_of_uid(UID4),))
    assert _locked(rg, _card(rg), R_BLACKLISTED) == 0
    assert rg.m1.result.reason == R_BLACKLISTED


# ---- fare rules, unchanged ---------------------------------------------------------------
def _city_policy():
    """The sim's city table (host_tools/emu/fares/default.json): lines 12 and 15 flat 2.00,
    a section line 801, transfer 1.00 off within 90 min on another line, student 50 %,
    senior free."""
    import json

    from emu import farec
    from emu import rig as R
    from validator.rules import fares, table

    with open(R.__file__.rsplit("/", 1)[0] + "/fares/default.json") as f:
        desc = json.load(f)
    desc["activation"] = "2024-01-01T00:00:00"
    tables = table.FareTables()
    now = R.Clock().t  # the rig's morning
    assert tables.offer(farec.compile_table(desc), now) == 0
    tables.current(now)
    return fares.FarePolicy(tables, fares.Position(12, 1, 0, fares.DOOR_ANY, R.TERM))


def test_m1_purse_when_fare_rules_apply_card_type_transfer_and_section_refusal():
    pol = _city_policy()
    rg = mifare.Rig(policy=pol)
    c = _card(rg)
    assert rg.tap(c).reason == R_OK and c.balance == 800
    pol.where.line = 15  # another line within the window: the transfer discount
    rg.clock.advance(600)
    res = rg.tap(c)
    assert res.reason == R_OK and res.amount == 100 and c.balance == 700
    pol.where.line = 12  # the transfer was used: full fare again
    rg.clock.advance(600)
    assert rg.tap(c).amount == 200 and c.balance == 500
    student = _card(rg, uid=UID7, card_type=0x02)
    assert rg.tap(student).amount == 100
    senior = _card(rg, uid=b"\x01\x02\x03\x04", card_type=0x01)
    r = rg.tap(senior)
    assert r.reason == R_OK and r.amount == 0 and senior.balance == 1000
    pol.where.line = 801  # a section line needs the EF1A entry record an M1 card lacks
    assert rg.tap(_card(rg, uid=b"\x05\x06\x07\x08")).reason == R_UNSUPPORTED_CARD


def test_m1_purse_when_own_torn_tap_comes_back_late_it_is_a_new_ride():
    rg = mifare.Rig(fare=FARE)
    c = _card(rg)
    c.tear(4, "after")  # committed, the answer lost
    assert rg.tap(c).reason == R_TAP_AGAIN
    rg.clock.advance(3600)  # long after: not this tap's retry any more
    res = rg.tap(c)
    assert res.reason == R_OK and c.balance == 600  # the next ride; the first stays gray
    assert [r["status"] for r in rg.rows()] == ["gray", "gray", "normal"]
