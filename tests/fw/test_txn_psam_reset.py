# test_txn_psam_reset: a PSAM that resets by itself mid-tap (supply glitch, its own
# watchdog) loses its session and answers its ATR where a response was due. The tap is
# refused or, after the card's debit, recorded with MAC2 unverified; the validator must
# re-boot the PSAM between taps instead of refusing every passenger until a power cycle.
# SPDX-License-Identifier: MIT
from emu import rig
from validator.errors import R_OK, R_SAM_FAULT

MP_HEAP = "1m"  # fixtures: two emulators with their crypto + a RAM NOR image


def test_txn_psam_reset_when_psam_browns_out_mid_tap_next_tap_pays_again():
    for n in range(5):  # a tap writes 5 times to the PSAM line (8070, 8072); reset after n
        r = rig.Rig()
        first = rig.card(serial=1001)
        r.port.reset_after(n)
        res = r.tap(first).reason
        r.port.reset_at = -1
        assert r.port.resets == 1
        assert res in (R_SAM_FAULT, R_OK), (n, res)
        nxt = rig.card(serial=1002)
        r.clock.advance(5)
        assert r.tap(nxt).reason == R_OK and nxt.balance == 800, n
        assert r.psam.ready


def test_txn_psam_reset_when_psam_stays_dead_taps_refused_card_untouched():
    r = rig.Rig()
    r.port.reset_after(2)
    r.port.silent = True  # it never comes back
    assert r.tap(rig.card(serial=1001)).reason == R_SAM_FAULT
    c = rig.card(serial=1002)
    r.clock.advance(5)
    assert r.tap(c).reason == R_SAM_FAULT and c.balance == 1000
