# test_txn_powercut: lose power at every flash operation of a tap, reboot, tap again.
# SPDX-License-Identifier: MIT
#
# Invariant (txn/README.md: "never-doubled, provable"): every debit the card made has exactly one
# final (normal/recovered) record, each with a TAC the issuer-side verifier accepts, and
# the passenger who taps again after the reboot is never charged twice for one ride.
from emu import rig
from validator.errors import R_ALREADY_PAID, R_OK, R_RECOVERED

MP_HEAP = "1m"  # fixtures: two emulators with their crypto + a RAM NOR image


def _tac_ok(row):
    from emu import crypto

    raw = row["raw"]
    return crypto.verify_purchase_tac(
        rig.keys(), raw[38], raw[26:34], raw[18:26], row["amount"], raw[35], raw[54:60],
        raw[60:64], raw[64:71], raw[71:75])


def _ops_of_one_tap():
    r = rig.Rig()
    r.idle()
    p0 = r.flash.programs + r.flash.erases
    r.reader.place(rig.card())
    assert r.txn.tap().reason == R_OK
    return r.flash.programs + r.flash.erases - p0


def _campaign(mode):
    from emu.nor import PowerCut

    n_ops = _ops_of_one_tap()
    assert n_ops >= 5  # tear context, gray record (2), final record (2), drop
    cuts = 0
    for n in range(n_ops + 1):
        r = rig.Rig(fare=200)
        card = rig.card(balance=1000)
        r.idle()
        r.flash.cut_after(n, mode)
        r.reader.place(card)
        cut = False
        try:
            first = r.txn.tap().reason
        except PowerCut:
            cut = True
            cuts += 1
        r.flash.revive()
        r.reboot()
        r.clock.advance(5)
        second = r.tap(card).reason
        debits = len(card.ef18)
        finals = [x for x in r.rows() if x["status"] in ("normal", "recovered")]
        assert debits == 1, (mode, n, cut, second, debits)  # one ride, one debit
        assert len(finals) == 1, (mode, n, [x["status"] for x in r.rows()])
        assert finals[0]["atc"] == 0 and _tac_ok(finals[0]), (mode, n)
        if not cut:
            assert first == R_OK and second == R_ALREADY_PAID, (mode, n)
        else:
            assert second in (R_OK, R_RECOVERED, R_ALREADY_PAID), (mode, n, second)
    assert cuts == n_ops  # every flash operation of the tap was cut once


def test_txn_powercut_when_cut_drops_the_write_no_ride_lost_or_doubled():
    _campaign("drop")


def test_txn_powercut_when_cut_tears_the_write_no_ride_lost_or_doubled():
    _campaign("torn")
