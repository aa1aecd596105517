# test_txn_void_seq: a tear context names its gray record by seq (GRAY_SEQ), and a record
# that proves a torn debit void or resolves it carries that seq (VOID_SEQ / REF_SEQ) to
# clearing. Power lost at any flash operation of a tap, then other cards tapping, then the
# first card back: every VOID_SEQ / REF_SEQ must name a gray record of that same card --
# never another passenger's gray record that took the seq the lost one was to have.
# SPDX-License-Identifier: MIT
from emu import rig
from emu.nor import PowerCut
from validator.errors import R_OK

MP_HEAP = "1m"  # fixtures: two emulators with their crypto + a RAM NOR image

NONE = 0xFFFFFFFF


def _by_seq(r):
    return {d["seq"]: d for d in r.rows()}


def test_txn_void_seq_when_power_is_cut_at_each_flash_op_links_name_the_same_card():
    for n in range(8):
        for mode in ("drop", "torn"):
            r = rig.Rig()
            a = rig.card(serial=1001)
            r.flash.cut_after(n, mode)
            try:
                r.tap(a)
            except PowerCut:
                pass
            r.flash.revive()
            r.reboot()
            b = rig.card(serial=1002)
            r.clock.advance(5)
            assert r.tap(b).reason == R_OK
            r.clock.advance(5)
            r.tap(a)
            rows = _by_seq(r)
            for d in rows.values():
                for k in ("void_seq", "ref_seq"):
                    q = d[k]
                    if q == NONE:
                        continue
                    g = rows.get(q)
                    assert g is not None and g["status"] == "gray", (n, mode, k, d["seq"], q)
                    assert g["card_serial"] == d["card_serial"], (n, mode, k, d["seq"], q)
