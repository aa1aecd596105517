# test_txn_local: the second PSAM slot -- local-issuer (MOHURD) cards charged
# through the local PSAM in slot 1, T-Union cards through the MOT PSAM in slot 0, each slot
# failing on its own. Emulated cards and PSAMs behind the byte-level T=0 link, real storage.
# SPDX-License-Identifier: MIT
import fwtest
from emu import rig
from validator.errors import (
    R_APP_BLOCKED,
    R_BLACKLISTED,
    R_OK,
    R_RECOVERED,
    R_SAM_FAULT,
    R_TAP_AGAIN,
    R_UNSUPPORTED_CARD,
    SamError,
)
from validator.txn import record as TR

MP_HEAP = "1m"  # fixtures: three emulators with their crypto + a RAM NOR image

LTERM = b"\x00\x00\x00\x65\x43\x21"  # the local PSAM's own terminal number (its EF16)
TUNION_EXCHANGES = 6  # SELECT, 8050, 8070, 80DC, 8054, 8072
LOCAL_EXCHANGES = 8  # + SELECT T-Union (6A82) and 80CA


def _lkeys():
    from emu import issuer

    return issuer.local_master_keys(rig.keys())


class LocalRig(rig.Rig):
    """rig.Rig plus a local-issuer PSAM in slot 1 (its own T=0 port and journal)."""

    def __init__(self, local_dev=None, local_silent=False, mot_silent=False, journal=False,
                 **kw):
        from emu.psam import Psam as PsamEmu
        from emu.t0 import T0Card
        from validator.link.iso7816 import Iso7816
        from validator.sam.psam import Psam

        rig.Rig.__init__(self, journal=journal, **kw)
        self.lpsam_dev = local_dev or PsamEmu(_lkeys(), terminal_no=LTERM, app="local")
        self.lport = rig.T0Port(T0Card(self.lpsam_dev), self.clock)
        self.lport.silent = local_silent
        port = self.lport
        self.lj = None
        if journal:
            self.lj = rig.Journal()
            port = rig.JournalLink(self.lport, self.lj)
        self.lslot = Iso7816(port, self.clock)
        self.lpsam = Psam(self.lslot, self.lslot.power_up, True)
        _try_boot(self.lpsam)
        if mot_silent:
            self.port.silent = True
            _try_boot(self.psam)
        self.kw["local_psam"] = self.lpsam
        self.kw["local_slot"] = 1
        self.txn = self._new_txn()

    def reboot(self):
        _try_boot(self.lpsam)
        rig.Rig.reboot(self)


def _try_boot(p):
    try:
        p.boot()
    except SamError:
        pass


def local_card(**kw):
    kw["app"] = "local"
    return rig.card(**kw)


def _tac_ok(row, local):
    """The clearing side's check: the local family with the MOHURD factor 2 for a local
    card, the T-Union family with the issuer ID otherwise (card-protocol.md §4, §5.3)."""
    from emu import crypto, issuer

    raw = row["raw"]
    keys = _lkeys() if local else rig.keys()
    f2 = issuer.local_factor2(raw[26:34]) if local else raw[26:34]
    return crypto.verify_purchase_tac(keys, raw[38], f2, raw[18:26], row["amount"], raw[35],
                                      raw[54:60], raw[60:64], raw[64:71], raw[71:75])


def test_txn_local_when_local_card_then_charged_via_slot1_and_tac_verifies():
    r = LocalRig(fare=200)
    card = local_card(balance=1000, offline_atc=3)
    res = r.tap(card)
    assert res.reason == R_OK and res.capp
    assert res.amount == 200 and res.balance == 800 and card.balance == 800
    assert res.exchanges == LOCAL_EXCHANGES
    assert r.lpsam_dev.ttsn == 1 and r.psam_dev.ttsn == 0  # only the local PSAM worked
    rows = r.rows()
    assert [x["status"] for x in rows] == ["gray", "normal"]
    rec = rows[-1]
    assert rec["psam_slot"] == 1 and rec["terminal_no"] == LTERM.hex()
    assert rec["issuer_id"] == "03002900ffffffff" and rec["atc"] == 3
    assert rec["raw"][71:75] == card.last[3] and _tac_ok(rec, True)
    assert not _tac_ok(rec, False)
    assert rec["raw"][TR.O_TXFLAGS] == 0  # the local PSAM accepted MAC2
    e = card.ef1e[0]  # the trip record carries the local PSAM's terminal number (§2.6)
    assert e[1:9] == b"\x00\x00" + LTERM


def test_txn_local_when_tunion_card_with_two_slots_then_unchanged_six_exchanges():
    r = LocalRig(fare=200)
    card = rig.card(balance=1000)
    res = r.tap(card)
    assert res.reason == R_OK and res.exchanges == TUNION_EXCHANGES
    assert card.balance == 800
    assert r.psam_dev.ttsn == 1 and r.lpsam_dev.ttsn == 0
    rec = r.rows()[-1]
    assert rec["psam_slot"] == 0 and rec["terminal_no"] == rig.TERM.hex()
    assert _tac_ok(rec, False)


def test_txn_local_when_cards_alternate_then_each_uses_its_slot():
    r = LocalRig(fare=100)
    cards = [rig.card(), local_card(serial="03104770040011111101"),
             rig.card(serial="03104770040022222202"), local_card(serial="03104770040033333303")]
    for c in cards:
        assert r.tap(c).reason == R_OK
    rows = [x for x in r.rows() if x["status"] == "normal"]
    assert [x["psam_slot"] for x in rows] == [0, 1, 0, 1]
    assert [x["ttsn"] for x in rows] == ["00000001", "00000001", "00000002", "00000002"]
    for i in range(4):
        assert _tac_ok(rows[i], i % 2 == 1)


def test_txn_local_when_local_psam_missing_then_local_refused_tunion_works():
    r = LocalRig(local_silent=True)
    assert not r.lpsam.ready and r.psam.ready
    lc = local_card(balance=1000)
    res = r.tap(lc)
    assert res.reason == R_SAM_FAULT and lc.balance == 1000
    assert res.exchanges == 2  # SELECT T-Union (6A82), SELECT local; nothing more
    tc = rig.card(balance=1000)
    assert r.tap(tc).reason == R_OK and tc.balance == 800


def test_txn_local_when_mot_psam_missing_then_tunion_refused_local_works():
    r = LocalRig(mot_silent=True)
    assert not r.psam.ready and r.lpsam.ready
    tc = rig.card(balance=1000)
    res = r.tap(tc)
    assert res.reason == R_SAM_FAULT and tc.balance == 1000 and res.exchanges == 1
    lc = local_card(balance=1000)
    assert r.tap(lc).reason == R_OK and lc.balance == 800


def test_txn_local_when_both_psams_missing_then_nothing_sent_to_card():
    r = LocalRig(mot_silent=True, local_silent=True)
    lc = local_card()
    res = r.tap(lc)
    assert res.reason == R_SAM_FAULT and res.exchanges == 0 and lc.apdus == 0


def test_txn_local_when_mot_psam_in_local_slot_then_wrong_psam_local_refused():
    from emu.psam import Psam as PsamEmu

    r = LocalRig(local_dev=PsamEmu(rig.keys(), terminal_no=LTERM))  # no DF 1001
    assert not r.lpsam.ready
    assert r.tap(local_card()).reason == R_SAM_FAULT
    assert r.tap(rig.card()).reason == R_OK


def test_txn_local_when_no_local_slot_then_local_card_unsupported():
    r = rig.Rig()  # single-slot engine: the local AID is never selected
    lc = local_card()
    res = r.tap(lc)
    assert res.reason == R_UNSUPPORTED_CARD and lc.balance == 1000


def test_txn_local_when_local_card_not_activated_then_refused():
    r = LocalRig()
    lc = local_card()
    lc.ef15 = lc.ef15[:8] + b"\x00" + lc.ef15[9:]  # EF15[8] = 00 (§2.1, S5/S13)
    res = r.tap(lc)
    assert res.reason == R_UNSUPPORTED_CARD and lc.balance == 1000
    assert r.rows()[-1]["status"] == "refused"


def test_txn_local_when_local_sm4_card_then_charged():
    r = LocalRig(fare=150)
    lc = local_card(alg="sm4")
    assert r.tap(lc).reason == R_OK and lc.balance == 850
    rec = r.rows()[-1]
    assert rec["alg_id"] == "04" and _tac_ok(rec, True)


def test_txn_local_when_local_debit_torn_then_recovered_with_local_psam():
    r = LocalRig(fare=200)
    lc = local_card(balance=1000, offline_atc=7)
    lc.arm_tear("after_commit")
    assert r.tap(lc).reason == R_TAP_AGAIN and lc.balance == 800
    gray = r.rows()[-1]
    r.clock.advance(3)
    res = r.tap(lc)
    assert res.reason == R_RECOVERED and lc.balance == 800
    rec = r.rows()[-1]
    assert rec["status"] == "recovered" and rec["ref_seq"] == gray["seq"]
    assert rec["psam_slot"] == 1 and _tac_ok(rec, True)
    assert rec["raw"][TR.O_TXFLAGS] == 0  # MAC2 checked by the local PSAM's held session


def test_txn_local_when_local_card_blacklisted_then_blocked_with_local_psam():
    lc = local_card()
    r = LocalRig(blacklist=(lc.ef15[10:20],))
    assert r.tap(lc).reason == R_BLACKLISTED
    assert lc.blocked and lc.balance == 1000  # the MOHURD-factor maintenance key worked
    assert r.rows()[-1]["status"] == "blocked" and r.rows()[-1]["psam_slot"] == 1


def test_txn_local_when_local_purchase_heap_locked_allocates_nothing():
    fwtest.need_micropython()
    r = LocalRig(journal=True)
    r.pj.ntx = r.pj.nrx = 0
    r.lj.ntx = r.lj.nrx = 0
    r.idle()
    r.reader.place(local_card())
    t = r.txn
    assert t.tap().reason == R_OK  # warm-up, recorded
    r.idle()
    for j in (r.pj, r.lj, r.cj):
        j.start_replay()
    r.reader.start_replay()
    for k in range(len(t._seen)):
        t._seen[k] = 0
    assert fwtest.heap_locked(t.tap) == 0
    assert t.result.reason == R_OK and t.result.exchanges == LOCAL_EXCHANGES
    assert r.lj.mismatch == 0 and r.cj.mismatch == 0


class _Board:
    def __init__(self, r, ports):
        self.clock = r.clock
        self.device_id = b"\x12\x34\xab\xcd"
        self.psam_ports = ports


def _build(r, ports):
    from validator.txn import setup

    return setup.build(_Board(r, ports), r.reader, r.policy, r.records, r.tears,
                       r.blacklist, local_city=0x2900)


def test_txn_local_when_built_from_two_port_board_then_both_slots_booted():
    r = LocalRig()
    txn, fault = _build(r, [r.port, r.lport])
    assert fault == R_OK and txn.psam.ready and txn.local_psam.ready
    assert bytes(txn.local_psam.terminal) == LTERM and bytes(txn.psam.terminal) == rig.TERM
    r.txn = txn
    lc, tc = local_card(), rig.card(serial="03104770040099999901")
    assert r.tap(lc).reason == R_OK and r.tap(tc).reason == R_OK
    assert [x["psam_slot"] for x in r.rows() if x["status"] == "normal"] == [1, 0]


def test_txn_local_when_built_with_one_slot_silent_then_no_fault_state():
    r = LocalRig()
    r.lport.silent = True
    txn, fault = _build(r, [r.port, r.lport])
    assert fault == R_OK and txn.psam.ready and not txn.local_psam.ready
    r.txn = txn
    assert r.tap(local_card()).reason == R_SAM_FAULT
    assert r.tap(rig.card()).reason == R_OK
    r.port.silent = True
    txn, fault = _build(r, [r.port, r.lport])
    assert fault == R_SAM_FAULT  # no PSAM at all: the validator's fault state
    r.lport.silent = False
    txn, fault = _build(r, [r.port, r.lport])
    assert fault == R_OK and not txn.psam.ready and txn.local_psam.ready


def test_txn_local_when_single_port_board_then_no_local_application():
    r = LocalRig()
    txn, fault = _build(r, [r.port])
    assert fault == R_OK and txn.local_psam is None


def test_txn_local_when_local_card_lacks_capp_then_simple_purchase_via_slot1():
    # the 80CA code read before the first INITIALIZE (P1 03, refused) must still be the one
    # the local PSAM's 8070 covers after the second INITIALIZE (P1 01), §5.5
    r = LocalRig(fare=200)
    lc = local_card(balance=1000, capp=False)
    res = r.tap(lc)
    assert res.reason == R_OK and not res.capp and lc.balance == 800
    assert r.lpsam_dev.ttsn == 1 and r.psam_dev.ttsn == 0
    rec = r.rows()[-1]
    assert rec["txn_type"] == "06" and rec["psam_slot"] == 1 and _tac_ok(rec, True)


def _dual(balance_tunion=1000, balance_local=2000, **kw):
    from emu.dual_card import DualCard

    return DualCard(rig.card(balance=balance_tunion, **kw),
                    local_card(balance=balance_local, serial="03104770040044444404"))


def test_txn_local_when_dual_application_card_then_tunion_app_charged_local_untouched():
    # the documented choice (txn/README.md): the T-Union application first; the local one
    # only when the card answers 6A82 to the T-Union AID (card-protocol.md §8 order)
    r = LocalRig(fare=200)
    card = _dual()
    res = r.tap(card)
    assert res.reason == R_OK and res.exchanges == TUNION_EXCHANGES
    assert card.tunion.balance == 800 and card.local.balance == 2000
    assert card.selects == [b"\xa0\x00\x00\x06\x32\x01\x01\x05"]
    assert r.psam_dev.ttsn == 1 and r.lpsam_dev.ttsn == 0
    assert r.rows()[-1]["psam_slot"] == 0


def test_txn_local_when_dual_card_tunion_app_blocked_then_refused_no_local_fallback():
    r = LocalRig(fare=200)
    card = _dual(blocked=True)
    res = r.tap(card)
    assert res.reason == R_APP_BLOCKED
    assert card.tunion.balance == 1000 and card.local.balance == 2000
    assert len(card.selects) == 1  # a blocked T-Union app never sends the tap elsewhere


def test_txn_local_when_dual_card_taps_twice_then_the_same_app_both_times():
    r = LocalRig(fare=100)
    card = _dual()
    assert r.tap(card).reason == R_OK
    r.clock.advance(3600)
    assert r.tap(card).reason == R_OK
    assert card.tunion.balance == 800 and card.local.balance == 2000
