# test_txn: the tap engine end to end -- emulated T-Union card, emulated MOT PSAM behind the
# byte-level T=0 link, the real record log / tear store / blacklist on an emulated NOR.
# SPDX-License-Identifier: MIT
import fwtest
from emu import rig
from validator.errors import (
    R_ALREADY_PAID,
    R_APP_BLOCKED,
    R_BLACKLISTED,
    R_EXPIRED,
    R_INSUFFICIENT,
    R_ISSUER_NOT_ACCEPTED,
    R_NOT_INTERCONNECT,
    R_NOT_YET_VALID,
    R_OK,
    R_RECOVERED,
    R_SAM_FAULT,
    R_TAP_AGAIN,
    SamError,
)
from validator.txn import record as TR

MP_HEAP = "1m"  # fixtures: two emulators with their crypto + a RAM NOR image

OTHER = "03104770040099999901"


def _tac_ok(r, row):
    """The issuer-side verifier accepts the record's TAC (card-protocol.md §5.3)."""
    from emu import crypto

    raw = row["raw"]
    # issuer id = ISSUER (26..33); serial factor = EF15[12..19] = SERIAL[2..9] (18..25)
    return crypto.verify_purchase_tac(
        rig.keys(), raw[38], raw[26:34], raw[18:26], row["amount"], raw[35], raw[54:60],
        raw[60:64], raw[64:71], raw[71:75])


def test_txn_when_local_capp_card_charged_in_six_exchanges():
    r = rig.Rig(fare=200)
    card = rig.card(balance=1000, offline_atc=5)
    res = r.tap(card)
    assert res.reason == R_OK
    assert res.amount == 200 and res.balance == 800 and res.capp
    assert card.balance == 800 and card.offline_atc == 6
    assert res.exchanges == 6  # SELECT, 8050, 8070, 80DC, 8054, 8072
    rows = r.rows()
    assert [x["status"] for x in rows] == ["gray", "normal"]
    rec = rows[-1]
    assert rec["seq"] == res.seq and rec["ref_seq"] == rows[0]["seq"]
    assert rec["txn_type"] == "09" and rec["card_serial"] == "03104770040067442802"
    assert rec["issuer_id"] == "02002900ffffffff" and rec["device_id"] == "00000007"
    assert rec["amount"] == 200 and rec["balance_before"] == 1000
    assert rec["balance_after"] == 800 and rec["atc"] == 5
    assert rec["terminal_no"] == "000000123456" and rec["datetime"] == "20250601083000"
    assert rec["raw"][71:75] == card.last[3]  # the card's TAC, stored as received
    assert _tac_ok(r, rec)
    assert rows[0]["tac"] == "ffffffff"
    assert not r.tears.load(bytearray(TR.CTX_TABLE_LEN))
    # the EF1E trip record the card committed (§2.6)
    e = card.ef1e[0]
    assert len(e) == 48 and e[0] == 0x06 and e[9] == 0x02
    assert e[1:9] == b"\x00\x00\x00\x00\x00\x12\x34\x56"
    assert e[17:21] == b"\x00\x00\x00\xc8" and e[21:25] == b"\x00\x00\x03\x20"
    assert e[25:32] == b"\x20\x25\x06\x01\x08\x30\x00"


def test_txn_when_sm4_card_charged_and_tac_verifies():
    r = rig.Rig(fare=150)
    card = rig.card(alg="sm4")
    res = r.tap(card)
    assert res.reason == R_OK and card.balance == 850
    rec = r.rows()[-1]
    assert rec["alg_id"] == "04" and _tac_ok(r, rec)


def test_txn_when_visitor_interconnect_whitelisted_charged_after_ef17():
    r = rig.Rig(accept=((0x0200, 0x1000),))
    card = rig.card(city="1000")
    res = r.tap(card)
    assert res.reason == R_OK and res.exchanges == 7
    assert _tac_ok(r, r.rows()[-1])


def test_txn_when_visitor_not_whitelisted_refused_without_debit():
    r = rig.Rig(accept=((0x0200, 0x1121),))
    card = rig.card(city="1000")
    res = r.tap(card)
    assert res.reason == R_ISSUER_NOT_ACCEPTED and card.balance == 1000
    rec = r.rows()[-1]
    assert rec["status"] == "refused" and rec["reason"] == R_ISSUER_NOT_ACCEPTED
    assert rec["txn_type"] == "00" and rec["tac"] == "ffffffff"


def test_txn_when_visitor_not_interconnect_refused():
    r = rig.Rig(accept=((0xFFFF, 0xFFFF),))
    card = rig.card(city="1000", interconnect=False)
    assert r.tap(card).reason == R_NOT_INTERCONNECT
    assert card.balance == 1000


def test_txn_when_card_expired_or_not_yet_valid_refused():
    r = rig.Rig()
    old = rig.card(expiry="20250531")
    assert r.tap(old).reason == R_EXPIRED
    last_day = rig.card(expiry="20250601", serial=OTHER)
    assert r.tap(last_day).reason == R_OK  # the expiry date itself is still valid
    young = rig.card(start="20250602")
    assert r.tap(young).reason == R_NOT_YET_VALID
    assert old.balance == 1000 and young.balance == 1000


def test_txn_when_balance_short_insufficient_9401():
    r = rig.Rig(fare=200)
    card = rig.card(balance=150)
    res = r.tap(card)
    assert res.reason == R_INSUFFICIENT and card.balance == 150
    assert r.rows()[-1]["status"] == "refused"


def test_txn_when_blacklisted_application_blocked_and_recorded():
    card = rig.card()
    r = rig.Rig(blacklist=(card.ef15[10:20],))
    res = r.tap(card)
    assert res.reason == R_BLACKLISTED
    assert card.blocked and card.balance == 1000
    rec = r.rows()[-1]
    assert rec["status"] == "blocked" and res.status == TR.ST_BLOCKED
    # a locked card is refused at SELECT from then on (6283)
    r2 = rig.Rig()
    assert r2.tap(card).reason == R_APP_BLOCKED
    again = r2.rows()[-1]
    assert again["status"] == "refused" and again["reason"] == R_APP_BLOCKED
    assert again["card_serial"] == "03104770040067442802"


def test_txn_when_blacklisted_sm4_card_blocked_with_sm4_mac():
    card = rig.card(alg="sm4")
    r = rig.Rig(blacklist=(card.ef15[10:20],))
    assert r.tap(card).reason == R_BLACKLISTED and card.blocked


def test_txn_when_card_has_no_capp_simple_purchase_type06():
    r = rig.Rig(fare=200)
    card = rig.card(capp=False)
    res = r.tap(card)
    assert res.reason == R_OK and not res.capp
    assert card.balance == 800 and card.ef1e == []
    rec = r.rows()[-1]
    assert rec["txn_type"] == "06" and _tac_ok(r, rec)


def test_txn_when_fci_lacks_ef15_read_binary_fallback():
    r = rig.Rig()
    card = rig.card()
    card.fci_ef15 = False
    res = r.tap(card)
    assert res.reason == R_OK and res.exchanges == 7


def test_txn_when_same_card_again_in_window_already_paid():
    r = rig.Rig(fare=200, repeat_window_s=60)
    card = rig.card()
    assert r.tap(card).reason == R_OK
    r.clock.advance(10)
    res = r.tap(card)
    assert res.reason == R_ALREADY_PAID and card.balance == 800
    r.clock.advance(60)
    assert r.tap(card).reason == R_OK and card.balance == 600


def test_txn_when_debit_response_lost_then_card_back_recovered_once():
    r = rig.Rig(fare=200)
    card = rig.card(balance=1000, offline_atc=5)
    card.arm_tear("after_commit")  # the card debits, the answer never arrives
    res = r.tap(card)
    assert res.reason == R_TAP_AGAIN and res.status == TR.ST_GRAY
    assert card.balance == 800
    gray = r.rows()[-1]
    assert gray["status"] == "gray"
    r.clock.advance(3)
    res = r.tap(card)
    assert res.reason == R_RECOVERED
    assert res.amount == 200 and res.balance == 800
    assert card.balance == 800  # charged once
    rec = r.rows()[-1]
    assert rec["status"] == "recovered" and rec["ref_seq"] == gray["seq"]
    assert rec["raw"][71:75] == card.last[3] and _tac_ok(r, rec)
    # saved TTSN / date-time / ATC, exactly what entered the TAC
    for f in ("ttsn", "datetime", "atc", "amount", "terminal_no"):
        assert rec[f] == gray[f], f
    assert rec["raw"][TR.O_TXFLAGS] == 0  # the PSAM still held the session: 8072 checked
    r.clock.advance(3)
    assert r.tap(card).reason == R_ALREADY_PAID


def test_txn_when_simple_purchase_torn_then_recovered_as_type06():
    # the tear path of a card without the compound application: INITIALIZE P1=01 again,
    # 805A with P2=06, and the record keeps what entered the type-06 TAC (§6.5)
    r = rig.Rig(fare=200)
    card = rig.card(capp=False, balance=1000, offline_atc=5)
    card.arm_tear("after_commit")
    assert r.tap(card).reason == R_TAP_AGAIN and card.balance == 800
    gray = r.rows()[-1]
    assert gray["status"] == "gray" and gray["txn_type"] == "06"
    r.clock.advance(3)
    res = r.tap(card)
    assert res.reason == R_RECOVERED and not res.capp
    assert res.amount == 200 and res.balance == 800 and card.balance == 800
    rec = r.rows()[-1]
    assert rec["status"] == "recovered" and rec["txn_type"] == "06"
    assert rec["raw"][71:75] == card.last[3] and _tac_ok(r, rec)
    for f in ("ttsn", "datetime", "atc", "amount", "terminal_no"):
        assert rec[f] == gray[f], f
    assert rec["raw"][TR.O_TXFLAGS] == 0  # the PSAM still held the type-06 session


def test_txn_when_debit_lost_before_commit_fresh_purchase():
    r = rig.Rig(fare=200)
    card = rig.card(balance=1000)
    card.arm_tear("before_commit")
    assert r.tap(card).reason == R_TAP_AGAIN
    assert card.balance == 1000
    gray = r.rows()[-1]
    assert gray["status"] == "gray" and gray["void_seq"] == 0xFFFFFFFF
    res = r.tap(card)
    assert res.reason == R_OK and card.balance == 800
    assert r.rows()[-1]["status"] == "normal" and _tac_ok(r, r.rows()[-1])
    assert not r.txn.tears.any
    # the card came back with its ATC unchanged: the records of the fresh purchase say
    # the first gray record is void, so clearing need not wait for the card
    assert r.rows()[-1]["void_seq"] == gray["seq"]
    assert r.rows()[-1]["ref_seq"] != gray["seq"]


def test_txn_when_other_card_meanwhile_served_and_tear_kept():
    r = rig.Rig(fare=200)
    torn = rig.card(balance=1000)
    torn.arm_tear("after_commit")
    other = rig.card(serial=OTHER, balance=500)
    assert r.tap(torn).reason == R_TAP_AGAIN
    assert r.tap(other).reason == R_OK and other.balance == 300
    assert r.txn.tears.any
    res = r.tap(torn)
    assert res.reason == R_RECOVERED and torn.balance == 800
    rec = r.rows()[-1]
    # the PSAM served another card meanwhile: MAC2 could not be re-checked; TAC still good
    assert rec["raw"][TR.O_TXFLAGS] == TR.FL_MAC2_UNVERIFIED and _tac_ok(r, rec)


def test_txn_when_blacklisted_card_blocked_meanwhile_recovery_flags_mac2_unverified():
    # [INF] psam._BLOCK_KEEPS_SESSION = 0: 801A may replace the PSAM's purchase session, so
    # a torn tap recovered after a block on the same PSAM is recorded "MAC2 unverified"
    # (never falsely "bad"); the TAC still verifies and the card pays once
    listed = rig.card(serial=OTHER, balance=500)
    r = rig.Rig(fare=200, blacklist=(listed.ef15[10:20],))
    torn = rig.card(balance=1000)
    torn.arm_tear("after_commit")
    assert r.tap(torn).reason == R_TAP_AGAIN
    assert r.tap(listed).reason == R_BLACKLISTED and listed.blocked
    res = r.tap(torn)
    assert res.reason == R_RECOVERED and torn.balance == 800
    rec = r.rows()[-1]
    assert rec["status"] == "recovered"
    assert rec["raw"][TR.O_TXFLAGS] == TR.FL_MAC2_UNVERIFIED and _tac_ok(r, rec)


def test_txn_when_tear_context_survives_reboot():
    r = rig.Rig(fare=200)
    card = rig.card(balance=1000)
    card.arm_tear("after_commit")
    assert r.tap(card).reason == R_TAP_AGAIN
    r.reboot()
    assert r.txn.tears.any
    res = r.tap(card)
    assert res.reason == R_RECOVERED and card.balance == 800


def test_txn_when_tear_context_older_than_keep_time_dropped():
    r = rig.Rig(fare=200, tear_keep_s=600)
    card = rig.card(balance=1000)
    card.arm_tear("before_commit")
    assert r.tap(card).reason == R_TAP_AGAIN
    r.clock.advance(601)
    assert r.tap(rig.card(serial=OTHER)).reason == R_OK
    assert not r.txn.tears.any


def test_txn_when_torn_card_short_after_debit_prove_still_recovers():
    r = rig.Rig(fare=200)
    card = rig.card(balance=300)
    card.arm_tear("after_commit")
    assert r.tap(card).reason == R_TAP_AGAIN
    assert card.balance == 100  # INIT now answers 9401: decide by 805A alone
    res = r.tap(card)
    assert res.reason == R_RECOVERED and card.balance == 100


def test_txn_when_power_lost_after_final_record_context_dropped_on_boot():
    r = rig.Rig(fare=200)
    card = rig.card()
    assert r.tap(card).reason == R_OK
    t = r.txn.tears
    for i in range(TR.CTX_LEN):
        t.t[i] = t.ctx[i]  # as if power failed before the context was dropped
    t.t[TR.C_VALID] = 1
    r.tears.save(t.t)
    r.reboot()
    assert not r.txn.tears.any


def test_txn_when_psam_missing_boot_fails_and_taps_refused():
    r = rig.Rig()
    r.port.silent = True
    fwtest.raises(SamError, r.psam.boot)
    assert not r.psam.ready
    card = rig.card()
    assert r.tap(card).reason == R_SAM_FAULT and card.balance == 1000


def test_txn_when_purchase_heap_locked_allocates_nothing():
    fwtest.need_micropython()
    r = rig.Rig(journal=True)
    r.pj.ntx = r.pj.nrx = 0
    r.idle()
    r.reader.place(rig.card())
    t = r.txn
    assert t.tap().reason == R_OK  # warm-up, recorded
    r.idle()
    r.pj.start_replay()
    r.cj.start_replay()
    r.reader.start_replay()
    for k in range(len(t._seen)):
        t._seen[k] = 0
    assert fwtest.heap_locked(t.tap) == 0
    assert t.result.reason == R_OK
    assert r.pj.mismatch == 0 and r.cj.mismatch == 0


def test_txn_when_blacklisted_block_heap_locked_allocates_nothing():
    # INITIALIZE, GET CHALLENGE, 801A + 80FA, APPLICATION BLOCK through the shared buffers,
    # replayed byte for byte (a command built from a clobbered buffer shows as a mismatch)
    fwtest.need_micropython()
    card = rig.card()
    r = rig.Rig(journal=True, blacklist=(card.ef15[10:20],))
    r.pj.ntx = r.pj.nrx = 0
    r.idle()
    r.reader.place(card)
    t = r.txn
    assert t.tap().reason == R_BLACKLISTED and card.blocked  # warm-up, recorded
    r.idle()
    r.pj.start_replay()
    r.cj.start_replay()
    r.reader.start_replay()
    assert fwtest.heap_locked(t.tap) == 0
    assert t.result.reason == R_BLACKLISTED and t.result.status == TR.ST_BLOCKED
    assert r.pj.mismatch == 0 and r.cj.mismatch == 0


def test_txn_when_tear_recovery_heap_locked_allocates_nothing():
    # the torn card back: INITIALIZE, READ RECORD EF18, 805A, 8072 and the recovered record
    fwtest.need_micropython()
    r = rig.Rig(journal=True, fare=200)
    card = rig.card(balance=1000)
    card.arm_tear("after_commit")
    t = r.txn
    tt = t.tears
    assert r.tap(card).reason == R_TAP_AGAIN
    saved = bytes(tt.t)
    tags = list(tt.tags)
    r.pj.ntx = r.pj.nrx = 0
    r.cj.ntx = r.cj.nrx = 0
    r.reader.nlen = 0
    r.clock.advance(3)
    assert r.tap(card).reason == R_RECOVERED  # warm-up, recorded
    assert r.rows()[-1]["raw"][TR.O_TXFLAGS] == 0  # 8072 sent
    # the torn state back, then the same recovery replayed with the heap locked
    for i in range(len(saved)):
        tt.t[i] = saved[i]
    for k in range(len(tags)):
        tt.tags[k] = tags[k]
    tt.any = True
    tt.store.save(tt.t)
    for k in range(len(t._seen)):
        t._seen[k] = 0
    r.idle()
    r.pj.start_replay()
    r.cj.start_replay()
    r.reader.start_replay()
    assert fwtest.heap_locked(t.tap) == 0
    assert t.result.reason == R_RECOVERED and t.result.status == TR.ST_RECOVERED
    assert r.pj.mismatch == 0 and r.cj.mismatch == 0 and r.pj.itx == r.pj.ntx
    rec = r.rows()[-1]
    assert rec["status"] == "recovered" and rec["raw"][TR.O_TXFLAGS] == 0 and _tac_ok(r, rec)


def test_txn_when_a_busy_door_boards_many_then_the_first_taps_again_already_paid():
    # a bus door boards a passenger every ~1.25 s: 48 others inside the 60 s repeat window
    # must not push the first card out of the repeat guard (it held 8: charged twice)
    r = rig.Rig(fare=200, repeat_window_s=60)
    first = rig.card(serial=1)
    assert r.tap(first).reason == R_OK
    for i in range(48):
        r.clock.advance(1)
        assert r.tap(rig.card(serial=100 + i)).reason == R_OK
        r.records.ack(r.records.next_seq - 1)  # a sync took them: the small rig log stays open
        r.records.maintain()
    res = r.tap(first)
    assert res.reason == R_ALREADY_PAID and first.balance == 800
    r.clock.advance(61)
    assert r.tap(first).reason == R_OK and first.balance == 600


def test_txn_when_an_older_context_expires_during_lookup_the_recovered_one_is_still_dropped():
    # lookup() found this card's context, then expired another one later in the table; the
    # expiry's drop() cleared the slot the recovery was to drop, so the context stayed and
    # the card's next tap recovered the same debit again: two recovered records, one TAC
    # (found by the soak, emu.soak seed 1012)
    r = rig.Rig(fare=200, repeat_window_s=10, tear_keep_s=600)
    a = rig.card(serial=11, balance=1000)
    b = rig.card(serial=12, balance=1000)
    c = rig.card(serial=13, balance=1000)
    for x in (a, b):
        x.arm_tear("after_commit")
        assert r.tap(x).reason == R_TAP_AGAIN  # a in slot 0, b in slot 1
        r.clock.advance(1)
    assert r.tap(a).reason == R_RECOVERED  # slot 0 free again
    r.clock.advance(500)
    c.arm_tear("after_commit")
    assert r.tap(c).reason == R_TAP_AGAIN  # c takes slot 0, newer than b in slot 1
    r.clock.advance(200)  # b is now past tear_keep_s, c is not
    assert r.tap(c).reason == R_RECOVERED and c.balance == 800
    r.clock.advance(30)
    res = r.tap(c)
    assert res.reason != R_RECOVERED and c.balance == 600
    recovered = [x for x in r.rows() if x["status"] == "recovered"
                 and x["card_serial"].endswith("13")]
    assert len(recovered) == 1
