# test_txn: the tap engine end to end -- card APDUs, PSAM over byte-level T=0, RAM stores.
# SPDX-License-Identifier: MIT
import fwtest
from fw import rig, stubs
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
from validator.link import apdu
from validator.txn import transaction as T

BEIJING = b"\x10\x00"
OTHER_SERIAL = b"\x03\x10\x47\x70\x04\x00\x99\x99\x99\x01"


def _recs(r):
    return r.records.rows()


def _u32(b, o):
    return apdu.get_u32(b, o)


def test_txn_when_local_capp_card_charged_in_six_exchanges():
    r = rig.Rig(fare=200)
    card = stubs.StubCard(balance=1000, atc=5)
    res = r.tap(card)
    assert res.reason == R_OK
    assert res.amount == 200 and res.balance == 800 and res.capp
    assert card.balance == 800 and card.atc == 6
    assert res.exchanges == 6  # SELECT, 8050, 8070, 80DC, 8054, 8072
    rows = _recs(r)
    assert [x[T.I_STATUS] for x in rows] == [T.ST_GRAY, T.ST_NORMAL]
    rec = rows[-1]
    assert rec[T.I_TYPE] == 0x09
    assert rec[T.I_SERIAL:T.I_SERIAL + 10] == card.ef15[10:20]
    assert rec[T.I_ISSUER:T.I_ISSUER + 8] == card.ef15[0:8]
    assert _u32(rec, T.I_AMOUNT) == 200 and _u32(rec, T.I_BAL_BEFORE) == 1000
    assert _u32(rec, T.I_BAL_AFTER) == 800 and apdu.get_u16(rec, T.I_ATC) == 5
    assert rec[T.I_TERMINAL:T.I_TERMINAL + 6] == b"\x00\x00\x00\x12\x34\x56"
    assert rec[T.I_TAC:T.I_TAC + 4] == card.last[3]  # the card's TAC, stored as received
    assert rec[T.I_DATETIME:T.I_DATETIME + 7] == b"\x20\x25\x06\x01\x08\x30\x00"
    assert rec[T.I_FLAGS] == 0 and not r.tears.valid
    # the EF1E trip record the card committed (§2.6)
    e = card.log1e[-1]
    assert len(e) == 48 and e[0] == 0x06 and e[9] == 0x02
    assert e[1:9] == b"\x00\x00\x00\x00\x00\x12\x34\x56"
    assert _u32(e, 17) == 200 and _u32(e, 21) == 800
    assert e[25:32] == b"\x20\x25\x06\x01\x08\x30\x00"


def test_txn_when_visitor_interconnect_whitelisted_charged_after_ef17():
    r = rig.Rig(accept=((0x0200, 0x1000),))
    card = stubs.StubCard(ef15=stubs.make_ef15(city=BEIJING))
    res = r.tap(card)
    assert res.reason == R_OK and res.exchanges == 7


def test_txn_when_visitor_not_whitelisted_refused_without_debit():
    r = rig.Rig(accept=((0x0200, 0x1121),))
    card = stubs.StubCard(ef15=stubs.make_ef15(city=BEIJING))
    res = r.tap(card)
    assert res.reason == R_ISSUER_NOT_ACCEPTED
    assert card.balance == 1000
    assert _recs(r)[-1][T.I_STATUS] == T.ST_REFUSED
    assert _recs(r)[-1][T.I_REASON] == R_ISSUER_NOT_ACCEPTED


def test_txn_when_visitor_not_interconnect_refused():
    r = rig.Rig(accept=((0xFFFF, 0xFFFF),))
    card = stubs.StubCard(ef15=stubs.make_ef15(city=BEIJING), interconnect=False)
    assert r.tap(card).reason == R_NOT_INTERCONNECT
    assert card.balance == 1000


def test_txn_when_card_expired_or_not_yet_valid_refused():
    r = rig.Rig()
    old = stubs.StubCard(ef15=stubs.make_ef15(end=b"\x20\x25\x05\x31"))
    assert r.tap(old).reason == R_EXPIRED
    last_day = stubs.StubCard(ef15=stubs.make_ef15(end=b"\x20\x25\x06\x01"))
    assert r.tap(last_day).reason == R_OK  # the expiry date itself is still valid
    young = stubs.StubCard(ef15=stubs.make_ef15(start=b"\x20\x25\x06\x02"))
    assert r.tap(young).reason == R_NOT_YET_VALID
    assert old.balance == 1000 and young.balance == 1000


def test_txn_when_balance_short_insufficient_9401():
    r = rig.Rig(fare=200)
    card = stubs.StubCard(balance=150)
    res = r.tap(card)
    assert res.reason == R_INSUFFICIENT and card.balance == 150
    assert not r.tears.valid


def test_txn_when_blacklisted_application_blocked_and_recorded():
    card = stubs.StubCard()
    r = rig.Rig(blacklist=(card.ef15[10:20],))
    res = r.tap(card)
    assert res.reason == R_BLACKLISTED
    assert card.blocked and card.balance == 1000
    assert res.status == T.ST_BLOCKED and _recs(r)[-1][T.I_STATUS] == T.ST_BLOCKED
    # the PSAM made the MAC: 801A then 80FA (§4)
    assert r.psam_dev.log[-2:] == [b"\x80\x1a", b"\x80\xfa"]
    # a locked card is refused at SELECT from then on (6283)
    r2 = rig.Rig()
    assert r2.tap(card).reason == R_APP_BLOCKED


def test_txn_when_card_has_no_capp_simple_purchase_type06():
    r = rig.Rig(fare=200)
    card = stubs.StubCard(capp=False)
    res = r.tap(card)
    assert res.reason == R_OK and not res.capp
    assert card.balance == 800 and card.log1e == []
    assert _recs(r)[-1][T.I_TYPE] == 0x06
    assert _recs(r)[-1][T.I_TAC:T.I_TAC + 4] == card.last[3]


def test_txn_when_fci_lacks_ef15_read_binary_fallback():
    r = rig.Rig()
    card = stubs.StubCard(fci_ef15=False)
    res = r.tap(card)
    assert res.reason == R_OK and res.exchanges == 7


def test_txn_when_same_card_again_in_window_already_paid():
    r = rig.Rig(fare=200, repeat_window_s=60)
    card = stubs.StubCard()
    assert r.tap(card).reason == R_OK
    r.clock.advance(10)
    res = r.tap(card)
    assert res.reason == R_ALREADY_PAID and card.balance == 800
    r.clock.advance(60)
    assert r.tap(card).reason == R_OK and card.balance == 600


def test_txn_when_debit_response_lost_then_card_back_recovered_once():
    r = rig.Rig(fare=200)
    card = stubs.StubCard(balance=1000, atc=5)
    card.tear = "after"  # the card debits, the answer never arrives
    res = r.tap(card)
    assert res.reason == R_TAP_AGAIN and res.status == T.ST_GRAY
    assert card.balance == 800 and r.tears.valid
    gray = _recs(r)[-1]
    r.clock.advance(3)
    res = r.tap(card)
    assert res.reason == R_RECOVERED
    assert res.amount == 200 and res.balance == 800
    assert card.balance == 800  # charged once
    rec = _recs(r)[-1]
    assert rec[T.I_STATUS] == T.ST_RECOVERED
    assert rec[T.I_TAC:T.I_TAC + 4] == card.last[3]
    # saved TTSN / date-time / ATC, exactly what entered the TAC
    for f, n in ((T.I_TTSN, 4), (T.I_DATETIME, 7), (T.I_ATC, 2), (T.I_AMOUNT, 4)):
        assert rec[f:f + n] == gray[f:f + n]
    assert rec[T.I_FLAGS] == 0  # PSAM still held the session: MAC2 checked by 8072
    assert not r.tears.valid
    r.clock.advance(3)
    assert r.tap(card).reason == R_ALREADY_PAID


def test_txn_when_debit_lost_before_commit_fresh_purchase():
    r = rig.Rig(fare=200)
    card = stubs.StubCard(balance=1000)
    card.tear = "before"
    assert r.tap(card).reason == R_TAP_AGAIN
    assert card.balance == 1000
    res = r.tap(card)
    assert res.reason == R_OK and card.balance == 800
    assert _recs(r)[-1][T.I_STATUS] == T.ST_NORMAL
    assert not r.tears.valid


def test_txn_when_other_card_meanwhile_served_and_tear_kept():
    r = rig.Rig(fare=200)
    torn = stubs.StubCard(balance=1000)
    torn.tear = "after"
    other = stubs.StubCard(ef15=stubs.make_ef15(serial=OTHER_SERIAL), balance=500)
    assert r.tap(torn).reason == R_TAP_AGAIN
    assert r.tap(other).reason == R_OK and other.balance == 300
    assert r.tears.valid
    res = r.tap(torn)
    assert res.reason == R_RECOVERED and torn.balance == 800
    # the PSAM served another card meanwhile: MAC2 could not be re-checked
    assert _recs(r)[-1][T.I_FLAGS] == T.FL_MAC2_UNVERIFIED


def test_txn_when_tear_context_survives_reboot():
    r = rig.Rig(fare=200)
    card = stubs.StubCard(balance=1000)
    card.tear = "after"
    assert r.tap(card).reason == R_TAP_AGAIN
    r.reboot()
    assert r.txn.tears.any
    res = r.tap(card)
    assert res.reason == R_RECOVERED and card.balance == 800


def test_txn_when_tear_context_older_than_keep_time_dropped():
    r = rig.Rig(fare=200, tear_keep_s=600)
    card = stubs.StubCard(balance=1000)
    card.tear = "before"
    assert r.tap(card).reason == R_TAP_AGAIN
    r.clock.advance(601)
    other = stubs.StubCard(ef15=stubs.make_ef15(serial=OTHER_SERIAL))
    assert r.tap(other).reason == R_OK
    assert not r.tears.valid and not r.txn.tears.any


def test_txn_when_torn_card_short_after_debit_prove_still_recovers():
    r = rig.Rig(fare=200)
    card = stubs.StubCard(balance=300)
    card.tear = "after"
    assert r.tap(card).reason == R_TAP_AGAIN
    assert card.balance == 100  # INIT now answers 9401: decide by 805A alone
    res = r.tap(card)
    assert res.reason == R_RECOVERED and card.balance == 100


def test_txn_when_power_lost_after_final_record_context_dropped_on_boot():
    r = rig.Rig(fare=200)
    card = stubs.StubCard()
    assert r.tap(card).reason == R_OK
    r.tears.save(r.txn.ctx)  # as if power failed before tears.clear()
    r.tears.buf[T.I_STATUS] = T.ST_GRAY
    r.reboot()
    assert not r.txn.tears.any and not r.tears.valid


def test_txn_when_psam_missing_boot_fails_and_taps_refused():
    r = rig.Rig()
    r.port.silent = True
    fwtest.raises(SamError, r.psam.boot)
    assert not r.psam.ready
    card = stubs.StubCard()
    assert r.tap(card).reason == R_SAM_FAULT and card.balance == 1000


def test_txn_when_purchase_heap_locked_allocates_nothing():
    fwtest.need_micropython()
    r = rig.Rig(journal=True)
    card = stubs.StubCard()
    r.pj.ntx = r.pj.nrx = 0
    r.reader.place(card)
    t = r.txn
    assert t.tap().reason == R_OK  # warm-up, recorded
    r.pj.start_replay()
    r.cj.start_replay()
    r.reader.start_replay()
    for k in range(len(t._seen_t)):
        t._seen_t[k] = 0
    tap = t.tap
    assert fwtest.heap_locked(tap) == 0
    assert t.result.reason == R_OK
    assert r.pj.mismatch == 0 and r.cj.mismatch == 0
