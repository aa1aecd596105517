# test_iso7816: the T=0 PSAM link byte by byte against an emulated contact card.
# SPDX-License-Identifier: MIT
import fwtest
from emu import rig
from validator.errors import SamError
from validator.link import apdu
from validator.link.iso7816 import Iso7816
from validator.link.iso7816_host import SAM_BAD_ATR, SAM_ECHO, SAM_NO_ATR, SAM_TIMEOUT

MP_HEAP = "512k"  # fixture: the emulated PSAM with its DES/SM4 code

EF16_CMD = b"\x00\xb0\x96\x00\x06"
SEL_8011_CMD = b"\x00\xa4\x00\x00\x02\x80\x11"


def _slot(echo=False, **kw):
    from emu.psam import Psam
    from emu.t0 import T0Card

    clock = rig.Clock()
    dev = Psam(rig.keys(), terminal_no=rig.TERM)
    t0 = T0Card(dev, **kw)
    port = rig.T0Port(t0, clock, echo=echo)
    return Iso7816(port, clock), port, dev, clock


def _boot(link):
    link.reset()
    return bytearray(260)


def _select_df(link, resp):
    n = link.transmit(bytearray(SEL_8011_CMD), 7, resp)
    assert apdu.sw(resp, n) == 0x9000


def test_iso7816_when_reset_atr_parsed_historical_bytes():
    link, _, _, _ = _slot()
    assert link.reset() == 13
    assert link.atr[0] == 0x3B and link.ta1 == 0x13  # 38 400 bit/s offered (MOT PSAM, S2)
    assert link.hist_len == 8 and link.hist_off == 5  # T0=78: TA1, TB1, TC1, then history
    assert bytes(link.atr[link.hist_off:link.hist_off + 8]) == b"MOTPSM01"
    assert link.protocols == 1


def test_iso7816_when_atr_offers_t1_tck_checked():
    # TS T0(TD1 present, 0 hist) TD1(T=1) TCK; XOR(T0..TCK) must be 0
    good = bytes([0x3B, 0x80, 0x01, 0x80 ^ 0x01])
    link, _, _, _ = _slot(atr=good)
    e = fwtest.raises(SamError, link.reset)  # T=1 only: our link speaks T=0
    assert e.code == SAM_BAD_ATR
    both = bytes([0x3B, 0x80, 0x80, 0x01])  # TD1 -> T=0 with TD2 -> T=1
    both = both + bytes([0x80 ^ 0x80 ^ 0x01])
    link, _, _, _ = _slot(atr=both)
    assert link.reset() == 5
    assert link.protocols == 3
    bad = both[:-1] + bytes([both[-1] ^ 1])
    link, _, _, _ = _slot(atr=bad)
    assert fwtest.raises(SamError, link.reset).code == SAM_BAD_ATR


def test_iso7816_when_ts_wrong_bad_atr():
    link, _, _, _ = _slot(atr=b"\x12\x00")
    assert fwtest.raises(SamError, link.reset).code == SAM_BAD_ATR


def _inv(x):
    v = 0
    for i in range(8):
        if x & (1 << i):
            v |= 0x80 >> i
    return v ^ 0xFF


class _InverseLine:
    """An inverse-convention PSAM (TS 3F) as a direct-convention UART sees it: every byte
    bit-reversed and complemented, both ways (ISO 7816-3 §8.1)."""

    def __init__(self, t0):
        self.t0 = t0

    def reset(self):
        return bytes([_inv(x) for x in self.t0.reset()])

    def feed(self, data):
        out = self.t0.feed(bytes([_inv(x) for x in data]))
        return bytes([_inv(x) for x in out])


def test_iso7816_when_inverse_convention_ts_03_bytes_converted():
    from emu.psam import Psam
    from emu.t0 import ATR, T0Card

    clock = rig.Clock()
    t0 = T0Card(Psam(rig.keys(), terminal_no=rig.TERM), atr=b"\x3f" + ATR[1:])
    link = Iso7816(rig.T0Port(_InverseLine(t0), clock), clock)
    assert link.reset() == 13 and link.inverse and link.atr[0] == 0x3F
    assert bytes(link.atr[link.hist_off:link.hist_off + 8]) == b"MOTPSM01"
    resp = bytearray(260)
    n = link.transmit(bytearray(EF16_CMD), 5, resp)
    assert bytes(resp[:n]) == b"\x00\x00\x00\x12\x34\x56\x90\x00"


def _mac1_cmd():
    cmd = bytearray(64)
    apdu.header(cmd, 0x80, 0x70, 0, 0)
    cmd[4] = 36
    for i in range(36):
        cmd[5 + i] = (i * 37 + 11) & 0xFF  # every data byte differs: a mixed-up one shows
    cmd[5 + 10] = 0x09  # CAPP
    cmd[5 + 18] = 1  # key version
    cmd[5 + 19] = 0  # 3DES
    cmd[5 + 36] = 8
    return cmd


def test_iso7816_when_inverse_and_direct_slots_share_staging_then_both_exchange_intact():
    # Both slots stage header and data phase in the one module buffer; the inverse slot
    # converts it in place and back (§8.1). Same keys and terminal in both PSAMs: the same
    # 8070 must give the same TTSN and MAC1 through either convention, in any order, and a
    # 6Cxx resend (header reused from the buffer) must work after an inverse exchange.
    from emu.psam import Psam
    from emu.t0 import ATR, T0Card

    clock = rig.Clock()
    t0 = T0Card(Psam(rig.keys(), terminal_no=rig.TERM), atr=b"\x3f" + ATR[1:])
    inv = Iso7816(rig.T0Port(_InverseLine(t0), clock, echo=True), clock)
    assert inv.reset() == 13 and inv.inverse
    direct, _, _, _ = _slot()
    resp = _boot(direct)
    _select_df(direct, resp)
    _select_df(inv, resp)
    out = []
    for link in (inv, direct, inv, direct):
        n = link.transmit(_mac1_cmd(), 42, resp)  # case 4: data phase, 61 08, GET RESPONSE
        assert n == 10 and apdu.sw(resp, n) == 0x9000
        out.append(bytes(resp[:8]))
        # EF17 (25 bytes) asked with Le 0x30: 6C19, the header resent from the buffer
        n = link.transmit(bytearray(b"\x00\xb0\x97\x00\x30"), 5, resp)
        assert n == 27 and apdu.sw(resp, n) == 0x9000
        out.append(bytes(resp[:25]))
    mac = out[0::2]
    assert mac[0] == mac[1] and mac[2] == mac[3] and mac[0] != mac[2]
    assert mac[0][:4] == b"\x00\x00\x00\x01" and mac[2][:4] == b"\x00\x00\x00\x02"
    ef17 = out[1::2]
    assert ef17[0] == ef17[1] == ef17[2] == ef17[3] and ef17[0][0] == 1  # key index 1


def test_iso7816_when_slot_empty_no_atr():
    link, port, _, _ = _slot()
    port.silent = True
    assert fwtest.raises(SamError, link.reset).code == SAM_NO_ATR


def test_iso7816_when_case2_read_returns_data_and_sw():
    link, _, _, _ = _slot()
    link.reset()
    resp = bytearray(260)
    n = link.transmit(bytearray(EF16_CMD), 5, resp)
    assert bytes(resp[:n]) == b"\x00\x00\x00\x12\x34\x56\x90\x00"


def test_iso7816_when_wrong_le_6cxx_resent():
    link, port, _, _ = _slot()
    link.reset()
    resp = bytearray(260)
    n = link.transmit(bytearray(b"\x00\xb0\x96\x00\x08"), 5, resp)  # 6C06, resend
    assert bytes(resp[:n]) == b"\x00\x00\x00\x12\x34\x56\x90\x00"
    assert link.exchanges == 1


def test_iso7816_when_case4_61xx_get_response():
    link, _, _, _ = _slot()
    resp = _boot(link)
    _select_df(link, resp)
    cmd = bytearray(64)
    apdu.header(cmd, 0x80, 0x70, 0, 0)
    cmd[4] = 36
    cmd[5 + 10] = 0x09  # CAPP
    cmd[5 + 18] = 1  # key version
    cmd[5 + 36] = 8
    n = link.transmit(cmd, 42, resp)
    assert n == 10 and apdu.sw(resp, n) == 0x9000
    assert bytes(resp[:4]) == b"\x00\x00\x00\x01"  # TTSN from the PSAM


def test_iso7816_when_null_bytes_and_byte_by_byte_still_works():
    link, _, _, _ = _slot(nulls=3, one_by_one=True)
    resp = _boot(link)
    n = link.transmit(bytearray(EF16_CMD), 5, resp)
    assert bytes(resp[:n]) == b"\x00\x00\x00\x12\x34\x56\x90\x00"


def test_iso7816_when_echo_line_echo_discarded():
    link, port, _, _ = _slot(echo=True)
    resp = _boot(link)
    n = link.transmit(bytearray(EF16_CMD), 5, resp)
    assert bytes(resp[:n]) == b"\x00\x00\x00\x12\x34\x56\x90\x00"


def test_iso7816_when_echo_corrupted_sam_error():
    link, port, _, _ = _slot(echo=False)
    _boot(link)
    link.port = _EchoLiar(port)  # the board says echo, but the line does not echo
    e = fwtest.raises(SamError, link.transmit, bytearray(EF16_CMD), 5, bytearray(260))
    assert e.code in (SAM_ECHO, SAM_TIMEOUT)


class _EchoLiar:
    def __init__(self, port):
        self.echo = True
        self.link = port


def test_iso7816_when_psam_silent_timeout_after_wwt():
    link, port, _, clock = _slot()
    _boot(link)
    port.silent = True
    t0 = clock.ticks_ms()
    e = fwtest.raises(SamError, link.transmit, bytearray(EF16_CMD), 5, bytearray(260))
    assert e.code == SAM_TIMEOUT
    waited = clock.ticks_ms() - t0
    assert link.wwt_ms <= waited <= 2 * link.wwt_ms + 10


def test_iso7816_when_wwt_from_atr_about_one_second():
    link, _, _, _ = _slot()
    link.reset()
    # WI 10, Fi 372 at 3.571 MHz: 960*10*372/3.571 MHz = 1.0 s, +50 % margin
    assert 1400 <= link.wwt_ms <= 1600


def test_iso7816_when_ta1_offers_faster_pps_negotiated():
    atr = bytes([0x3B, 0x10, 0x96])  # TA1 = 96: Fi 512, Di 32
    link, port, _, _ = _slot(atr=atr)
    link.reset()
    assert link.ta1 == 0x96
    assert link.pps()
    assert port.etu == (512, 32)
    _boot(link)


def test_iso7816_when_transmit_heap_locked_no_allocation():
    fwtest.need_micropython()
    j = rig.Journal()
    clock = rig.Clock()
    port = rig.JournalLink(_slot()[1], j)
    link = Iso7816(port, clock)
    link.reset()
    resp = bytearray(260)
    cmd = bytearray(EF16_CMD)
    j.ntx = j.nrx = 0
    link.transmit(cmd, 5, resp)
    j.start_replay()
    assert fwtest.heap_locked(lambda: link.transmit(cmd, 5, resp)) == 0
    assert j.mismatch == 0
