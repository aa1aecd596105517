"""Tier 2: M1 purse records at the depot -- the records the firmware's M1 engine wrote on
emulated validators (emu.mifare.Rig), ingested as a sync stores them and cleared: every paid
M1 record verified by its PSAM MAC (no TAC) and cleared to the local operator, a torn debit
finished on another bus resolves the first bus's gray record as paid, a wrong MAC is an
error."""

from depot import clearing, keyservice
from emu import mifare
from validator.errors import R_INSUFFICIENT, R_OK, R_RECOVERED, R_TAP_AGAIN
from validator.storage import record_host as RH

DAY = "2025-06-01"  # emu.rig.Clock's day (08:30)
DEV_A, DEV_B = 0x00290001, 0x00290002
KS = keyservice.TestKeyService()


def _images(rg):
    return [r["raw"] for r in rg.rows()]


def _day(tmp_path):
    a = mifare.Rig(fare=200)
    b = mifare.Rig(fare=200)
    paid = mifare.issue_purse(a.keys, b"\x10\x20\x30\x40")
    torn = mifare.issue_purse(a.keys, b"\x04\x11\x22\x33\x44\x55\x66")
    poor = mifare.issue_purse(a.keys, b"\x10\x20\x30\x41", balance=50)
    assert a.tap(paid).reason == R_OK
    torn.tear(2, "after")
    assert a.tap(torn).reason == R_TAP_AGAIN
    assert a.tap(poor).reason == R_INSUFFICIENT
    b.clock.advance(600)
    assert b.tap(torn).reason == R_RECOVERED  # finished on another bus
    db = clearing.open_database(str(tmp_path / "d.sqlite"))
    ia, ib = _images(a), _images(b)
    assert db.ingest(DEV_A, 1, RH.REC_SIZE, b"".join(ia)) == (len(ia), 0)
    assert db.ingest(DEV_B, 1, RH.REC_SIZE, b"".join(ib)) == (len(ib), 0)
    return db, ia, ib


def test_m1_clearing_when_day_cleared_m1_macs_verified_and_owed_to_the_local_operator(tmp_path):
    db, ia, ib = _day(tmp_path)
    try:
        s = clearing.clear_day(db, DAY, KS, str(tmp_path / "out"), city="2900")
    finally:
        db.close()
    assert s["paid_records"] == s["tac_verified"] == 2 and s["tac_failed"] == 0
    assert s["tac_unverified"] == 0 and s["anomalies"] == {}
    assert s["cleared_fen"] == 400
    assert {e["destination"] for e in s["files"]["exports"]} == {clearing.LOCAL}
    # the torn debit's gray record (bus A) is paid by bus B's recovered record; the paid
    # card's gray record by its own final record
    assert s["gray_states"].get("resolved", 0) == 2 and not s["gray_states"].get("open")


def test_m1_clearing_when_m1_mac_is_wrong_the_record_fails_verification(tmp_path):
    db, ia, ib = _day(tmp_path)
    db.close()
    normal = [x for x in ia if x[RH.O_STATUS] == 1][0]
    good = clearing.decode_lite(normal)
    good["_raw"] = normal
    assert KS.verify_m1(good) == (True, None)
    raw = bytearray(normal)
    raw[RH.O_AMOUNT + 3] ^= 1  # one fen less, MAC unchanged
    bad = clearing.decode_lite(bytes(raw))
    bad["_raw"] = bytes(raw)
    assert KS.verify_m1(bad) == (False, "TAC_MISMATCH")
    assert keyservice.KeyService().verify_m1(good) == (None, "TAC_NO_KEY")
