# test_txn_edge: the tap engine on awkward links and cards -- PPSE-only cards, echoing and
# slow PSAM lines, cards or PSAMs vanishing mid-tap, a PSAM with the wrong keys.
# SPDX-License-Identifier: MIT
from emu import rig
from validator.errors import (
    R_CARD_ERROR,
    R_COMM_ERROR,
    R_FAULT,
    R_OK,
    R_SAM_FAULT,
    R_STORAGE_FULL,
    R_TAP_AGAIN,
    R_UNSUPPORTED_CARD,
    StorageError,
)

MP_HEAP = "1m"  # fixtures: two emulators with their crypto + a RAM NOR image

_AID = b"\xa0\x00\x00\x06\x32\x01\x01\x05"
_LONG = _AID + b"\x11\x21\x00\x01"


class _LongAidPhone:
    """A wallet that answers only its long AID (A000000632010105 + suffix, §1) and lists
    it in PPSE; behind it the emulated card."""

    def __init__(self, card):
        self.card = card
        self.selects = 0

    def __getattr__(self, k):
        return getattr(self.card, k)

    def apdu(self, c):
        c = bytes(c)
        if c[:4] == b"\x00\xa4\x04\x00":
            self.selects += 1
            aid = c[5:5 + c[4]]
            if aid == _AID:
                return b"\x6a\x82"
            if aid == b"2PAY.SYS.DDF01":
                e = b"\x4f\x0c" + _LONG + b"\x50\x08MOT_T_EP\x87\x01\x02"
                d = b"\xbf\x0c" + bytes([len(e) + 2]) + b"\x61" + bytes([len(e)]) + e
                f = b"\x84\x0e2PAY.SYS.DDF01\xa5" + bytes([len(d)]) + d
                return b"\x6f" + bytes([len(f)]) + f + b"\x90\x00"
            if aid == _LONG:
                return self.card.apdu(b"\x00\xa4\x04\x00\x08" + _AID + b"\x00")
        return self.card.apdu(c)


def test_txn_edge_when_only_ppse_knows_the_aid_purchase_via_long_aid():
    r = rig.Rig()
    phone = _LongAidPhone(rig.card())
    res = r.tap(phone)
    assert res.reason == R_OK and phone.card.balance == 800
    assert phone.selects == 3 and res.exchanges == 8


class _BadTlvCard:
    """The emulated card with one length byte of its FCI (or PPSE) answer changed."""

    def __init__(self, card, fix):
        self.card = card
        self.fix = fix  # fn(select data, answer) -> answer

    def __getattr__(self, k):
        return getattr(self.card, k)

    def apdu(self, c):
        c = bytes(c)
        r = self.card.apdu(c)
        if c[:4] == b"\x00\xa4\x04\x00":
            r = self.fix(c[5:5 + c[4]], r)
        return r


def _a5_short(aid, r):
    # A5 claims 8 bytes less than its children need; 6F still covers them all
    r = bytearray(r)
    i = r.find(b"\xa5")
    if aid == _AID and i > 0:
        r[i + 1] -= 8
    return bytes(r)


def test_txn_edge_when_fci_child_overruns_its_parent_card_error_no_debit():
    r = rig.Rig()
    card = rig.card()
    res = r.tap(_BadTlvCard(card, _a5_short))
    assert res.reason == R_CARD_ERROR and card.balance == 1000
    assert res.exchanges == 1  # refused at SELECT: no READ BINARY of a card that lies


def _ppse_only(aid, r):
    if aid == _AID:
        return b"\x6a\x82"  # only PPSE knows the application
    if aid == b"2PAY.SYS.DDF01":
        r = bytearray(r)
        i = r.find(b"\xbf\x0c")
        r[i + 2] -= 4  # BF0C shorter than its 61 entry
        return bytes(r)
    return r


def test_txn_edge_when_ppse_entry_overruns_bf0c_card_error():
    r = rig.Rig()
    card = rig.card()
    res = r.tap(_BadTlvCard(card, _ppse_only))
    assert res.reason == R_CARD_ERROR and card.balance == 1000


def test_txn_edge_when_ppse_well_formed_without_ep_unsupported_card():
    def no_entry(aid, r):
        if aid == _AID:
            return b"\x6a\x82"
        if aid == b"2PAY.SYS.DDF01":
            f = b"\x84\x0e2PAY.SYS.DDF01\xa5\x03\xbf\x0c\x00"
            return b"\x6f" + bytes([len(f)]) + f + b"\x90\x00"
        return r

    r = rig.Rig()
    res = r.tap(_BadTlvCard(rig.card(), no_entry))
    assert res.reason == R_UNSUPPORTED_CARD


def test_txn_edge_when_psam_line_echoes_with_nulls_and_single_bytes_tap_ok():
    from emu.psam import Psam
    from emu.t0 import T0Card

    psam = Psam(rig.keys(), terminal_no=rig.TERM)
    r = rig.Rig(echo=True, psam=psam, t0=T0Card(psam, nulls=2, one_by_one=True))
    card = rig.card()
    assert r.tap(card).reason == R_OK and card.balance == 800


def test_txn_edge_when_card_leaves_during_80dc_no_debit_no_context():
    r = rig.Rig()
    card = rig.card()
    card.tear_after(3)  # SELECT, 8050, 80DC <- gone (8070 goes to the PSAM)
    res = r.tap(card)
    assert res.reason == R_COMM_ERROR and card.balance == 1000
    assert not r.txn.tears.any
    r.reader.place(card)
    assert r.tap(card).reason == R_OK and card.balance == 800


def test_txn_edge_when_psam_falls_silent_mid_tap_sam_fault_no_debit():
    r = rig.Rig()
    card = rig.card()
    r.port.silent = True
    res = r.tap(card)
    assert res.reason == R_SAM_FAULT and card.balance == 1000
    assert not r.txn.tears.any


def test_txn_edge_when_psam_keys_wrong_mac1_refused_9302_no_debit():
    from emu import issuer
    from emu.psam import Psam
    from emu.t0 import T0Card

    psam = Psam(issuer.wrong_keys(rig.keys()), terminal_no=rig.TERM)
    r = rig.Rig(psam=psam, t0=T0Card(psam))
    card = rig.card()
    res = r.tap(card)
    assert res.reason == R_CARD_ERROR and res.sw == 0x9302
    assert card.balance == 1000 and not r.txn.tears.any
    rows = r.rows()
    assert [x["status"] for x in rows] == ["gray", "refused"]
    assert rows[1]["ref_seq"] == rows[0]["seq"]  # the refusal closes the gray record


class _Boarding:
    """A policy asking for the EF1A write (a section-line boarding)."""

    def __init__(self, kind=3):  # 3 = board (validator.rules.fares kinds)
        self.reason = R_OK
        self.amount = self.base = self.flags = 0
        self.kind = self.rule = kind
        self.write1a = True
        self.rec1e = bytearray(48)
        self.rec1a = bytearray(128)
        self.rec1a[0] = 0x27
        self.rec1a[1] = 0x02
        self.rec1a[2] = 0x7D

    def needs(self):
        return 0

    def decide(self, now, ef15, ef17, rec1e, rec1a):
        return self

    def afford(self, balance):
        return R_OK


def test_txn_edge_when_boarding_needs_ef1a_and_card_lacks_capp_refused():
    r = rig.Rig()
    r.policy = _Boarding()
    r.txn = r._new_txn()
    assert r.tap(rig.card(capp=False)).reason == R_UNSUPPORTED_CARD
    card = rig.card()
    assert r.tap(card).reason == R_OK and card.ef1a[2][0:3] == b"\x27\x02\x7d"


def test_txn_edge_when_flat_fare_tracks_cap_and_card_lacks_capp_simple_purchase_pays():
    r = rig.Rig()
    r.policy = _Boarding(kind=1)  # flat fare whose EF1A write is only the day total
    r.policy.amount = r.policy.base = 200
    r.txn = r._new_txn()
    card = rig.card(capp=False)
    before = card.balance
    res = r.tap(card)
    assert res.reason == R_OK and not res.capp and card.balance == before - 200


def test_txn_edge_when_torn_card_paid_elsewhere_meanwhile_not_taken_as_ours():
    r = rig.Rig(fare=200)
    card = rig.card(balance=1000)
    card.arm_tear("before_commit")  # no debit here ...
    assert r.tap(card).reason == R_TAP_AGAIN
    other_bus = _bus(b"\x00\x00\x00\x65\x43\x21", fare=300)
    assert other_bus.tap(card).reason == R_OK  # ... then ATC+1 on another validator
    assert card.balance == 700
    res = r.tap(card)
    assert res.reason == R_OK and card.balance == 500  # charged here now, nothing recovered
    assert [x["status"] for x in r.rows()][-1] == "normal"
    assert not r.txn.tears.any


def _bus(terminal, **kw):
    from emu.psam import Psam
    from emu.t0 import T0Card

    psam = Psam(rig.keys(), terminal_no=terminal)
    return rig.Rig(psam=psam, t0=T0Card(psam), **kw)


class _Closed:
    """A policy that refuses every ride (e.g. no valid fare table any more)."""

    reason = 19
    amount = base = kind = rule = flags = 0
    write1a = False

    def needs(self):
        return 0

    def decide(self, now, ef15, ef17, rec1e, rec1a):
        return self


def test_txn_edge_when_torn_card_back_but_fares_refuse_still_recovered():
    from validator.errors import R_RECOVERED

    r = rig.Rig(fare=200)
    card = rig.card(balance=1000)
    card.arm_tear("after_commit")
    r.tap(card)
    r.policy = _Closed()
    r.txn.policy = r.policy
    res = r.tap(card)
    assert res.reason == R_RECOVERED and card.balance == 800
    assert r.rows()[-1]["status"] == "recovered"


class _DiesAt8072:
    """A PSAM emulator that goes mute on the 8072 (pulled out right after the debit)."""

    def __init__(self, psam, port):
        self.psam = psam
        self.port = port

    def __getattr__(self, k):
        return getattr(self.psam, k)

    def apdu(self, c):
        if c[1] == 0x72:
            self.port.silent = True
            return b""
        return self.psam.apdu(c)


def test_txn_edge_when_psam_dies_after_debit_ride_recorded_psam_faulted():
    from emu.psam import Psam
    from emu.t0 import T0Card
    from validator.txn import record as TR

    real = Psam(rig.keys(), terminal_no=rig.TERM)
    dying = _DiesAt8072(real, None)
    r = rig.Rig(psam=dying, t0=T0Card(dying))
    dying.port = r.port
    card = rig.card()
    res = r.tap(card)
    assert res.reason == R_OK and card.balance == 800
    rec = r.rows()[-1]
    assert rec["status"] == "normal" and rec["raw"][TR.O_TXFLAGS] == TR.FL_MAC2_UNVERIFIED
    assert not r.psam.ready and not r.txn.tears.any
    assert r.tap(rig.card(serial=OTHER_SERIAL)).reason == R_SAM_FAULT


OTHER_SERIAL = "03104770040099999901"


class _NoMotDf:
    """A contact card that is not a MOT PSAM: it has no DF 8011."""

    def __init__(self, psam):
        self.psam = psam

    def __getattr__(self, k):
        return getattr(self.psam, k)

    def apdu(self, c):
        if c[1] == 0xA4:
            return b"\x6a\x82"
        return self.psam.apdu(c)


def test_txn_edge_when_psam_lacks_df8011_boot_fails_sam_fault():
    from emu.psam import Psam
    from emu.t0 import T0Card
    from validator.errors import SamError

    wrong = _NoMotDf(Psam(rig.keys(), terminal_no=rig.TERM))
    try:
        rig.Rig(psam=wrong, t0=T0Card(wrong))
    except SamError as e:
        assert e.sw == 0x6A82
    else:
        raise AssertionError("a PSAM without DF 8011 booted")


class _Board:
    def __init__(self, r, ports):
        self.clock = r.clock
        self.device_id = b"\x12\x34\xab\xcd"
        self.psam_ports = ports


def test_txn_edge_when_built_from_board_psam_booted_and_taps_work():
    from validator.txn import setup

    r = rig.Rig()
    txn, fault = setup.build(_Board(r, [r.port]), r.reader, r.policy, r.records, r.tears,
                             r.blacklist, local_city=0x2900)
    assert fault == R_OK and txn.psam.ready
    assert bytes(txn.psam.terminal) == rig.TERM and txn.psam.key_index == 1
    r.txn = txn
    card = rig.card()
    assert r.tap(card).reason == R_OK and card.balance == 800
    assert r.rows()[-1]["device_id"] == "1234abcd"


def test_txn_edge_when_board_has_no_psam_fault_and_taps_refused():
    from validator.txn import setup

    r = rig.Rig()
    txn, fault = setup.build(_Board(r, []), r.reader, r.policy, r.records, r.tears,
                             r.blacklist)
    assert fault == R_SAM_FAULT and not txn.psam.ready
    r.port.silent = True
    txn2, fault2 = setup.build(_Board(r, [r.port]), r.reader, r.policy, r.records, r.tears,
                               r.blacklist)
    assert fault2 == R_SAM_FAULT
    r.txn = txn2
    card = rig.card()
    assert r.tap(card).reason == R_SAM_FAULT and card.balance == 1000


class _No1E:
    """A card that takes INITIALIZE FOR CAPP PURCHASE but has no EF1E: 80DC answers 6A82."""

    def __init__(self, card):
        self.card = card

    def __getattr__(self, k):
        return getattr(self.card, k)

    def apdu(self, c):
        if c[1] == 0xDC:
            return b"\x6a\x82"
        return self.card.apdu(c)


def test_txn_edge_when_80dc_answers_6a82_after_8070_simple_purchase_with_new_ttsn():
    # the second round of the purchase loop: a fresh INITIALIZE (P1 01) and a second 8070;
    # the record must hold the second TTSN and INITIALIZE answer, what entered the TAC
    from emu import crypto

    r = rig.Rig(fare=200)
    card = rig.card(balance=1000, offline_atc=5)
    res = r.tap(_No1E(card))
    assert res.reason == R_OK and not res.capp and card.balance == 800
    assert r.psam_dev.ttsn == 2  # one 8070 per round
    rec = r.rows()[-1]
    assert rec["status"] == "normal" and rec["txn_type"] == "06" and rec["atc"] == 5
    raw = rec["raw"]
    assert raw[60:64] == b"\x00\x00\x00\x02"
    assert crypto.verify_purchase_tac(rig.keys(), raw[38], raw[26:34], raw[18:26], 200,
                                      raw[35], raw[54:60], raw[60:64], raw[64:71], raw[71:75])


def test_txn_edge_when_psam_dies_at_recovery_8072_ride_recovered_psam_faulted():
    # the torn card is back and 805A gave its TAC: a PSAM dying at the 8072 must not lose
    # the recovered ride (the rule after a debit, above), and it stops the following taps
    from emu.psam import Psam
    from emu.t0 import T0Card
    from validator.errors import R_RECOVERED
    from validator.txn import record as TR

    real = Psam(rig.keys(), terminal_no=rig.TERM)
    dying = _DiesAt8072(real, None)
    r = rig.Rig(psam=dying, t0=T0Card(dying))
    dying.port = r.port
    card = rig.card(balance=1000)
    card.arm_tear("after_commit")
    assert r.tap(card).reason == R_TAP_AGAIN and card.balance == 800
    gray = r.rows()[-1]
    r.clock.advance(3)
    res = r.tap(card)
    assert res.reason == R_RECOVERED and res.amount == 200 and card.balance == 800
    rec = r.rows()[-1]
    assert rec["status"] == "recovered" and rec["ref_seq"] == gray["seq"]
    assert rec["raw"][TR.O_TXFLAGS] == TR.FL_MAC2_UNVERIFIED
    assert not r.psam.ready and not r.txn.tears.any
    assert r.tap(rig.card(serial=OTHER_SERIAL)).reason == R_SAM_FAULT


def _fill(r):
    """Fill the rig's small log with unacknowledged records (the depot never pulled)."""
    img = bytearray(128)
    while not r.records.full:
        r.records.maintain()
        if r.records.full:
            break
        r.records.append(img)
    r.records.maintain()  # nothing acknowledged: no block can be erased
    assert r.records.full


def test_txn_edge_when_log_full_storage_full_before_card_or_psam():
    # FORMAT.md §0.6: a log full of unacknowledged records refuses the tap, and nothing is
    # started that would need a record: no card command, no PSAM command, no tear context
    r = rig.Rig()
    card = rig.card()
    _fill(r)
    n = r.records.next_seq
    sent, psam_bytes = r.reader.count, r.port.written
    res = r.tap(card)
    assert res.reason == R_STORAGE_FULL and res.exchanges == 0
    assert r.reader.count == sent and r.port.written == psam_bytes
    assert not r.txn.tears.any and not r.tears.load(bytearray(228))
    assert card.balance == 1000 and r.records.next_seq == n and res.seq == -1


class _BrokenFlash:
    """The log's flash after it failed: every program raises (a worn-out or dead chip)."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, k):
        return getattr(self.inner, k)

    def program(self, addr, buf):
        raise StorageError("program failed")


def test_txn_edge_when_flash_broken_mid_tap_fault_no_debit():
    r = rig.Rig()
    card = rig.card()
    r.idle()
    r.records.flash = _BrokenFlash(r.flash)
    r.reader.place(card)
    res = r.txn.tap(card)
    assert res.reason == R_FAULT and card.balance == 1000


def test_txn_edge_when_one_slot_left_storage_full_before_the_card_is_charged():
    # a paid ride needs two slots (gray record, then its final record): with one left the
    # tap is refused before anything is sent -- not charged and then told "storage full"
    # (the soak found the old behaviour: the gray record took the last slot, the debit went
    # through, the final record could not be kept). After a sync it pays as usual.
    r = rig.Rig()
    n = 0
    img = bytearray(128)
    probe = rig.Rig()
    while True:
        probe.records.maintain()
        if probe.records.full:
            break
        probe.records.append(img)
        n += 1
    for _ in range(n - 1):
        r.records.maintain()
        r.records.append(img)
    assert r.records.room(1) and not r.records.room(2) and not r.records.full
    card = rig.card()
    sent = r.reader.count
    res = r.tap(card)
    assert res.reason == R_STORAGE_FULL and res.exchanges == 0 and r.reader.count == sent
    assert card.balance == 1000 and not r.txn.tears.any
    r.records.ack(r.records.next_seq - 1)
    r.records.maintain()
    r.clock.advance(5)
    res = r.tap(card)
    assert res.reason == R_OK and res.amount == 200 and card.balance == 800
    assert not r.txn.tears.any


class _Dev:
    """What app.main.TapProcessor reads of the device: its fault log and record log."""

    def __init__(self, records):
        self.faults = []
        self.records = records


def test_txn_edge_when_log_full_the_fault_log_says_so_once_per_episode():
    from validator.app.main import TapProcessor

    r = rig.Rig()
    _fill(r)
    dev = _Dev(r.records)
    tp = TapProcessor(dev, r.txn)
    for _ in range(3):
        r.reader.place(rig.card())
        assert tp.process(None).reason == R_STORAGE_FULL
    assert len(dev.faults) == 1 and "record log full" in dev.faults[0]
    r.records.ack(r.records.next_seq - 1)  # the evening sync took everything
    r.records.maintain()
    r.reader.place(rig.card())
    assert tp.process(None).reason != R_STORAGE_FULL and not tp.full
