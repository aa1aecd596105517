# test_card_cmds: card and PSAM command builders/parsers against card-protocol.md vectors.
# SPDX-License-Identifier: MIT
from binascii import hexlify, unhexlify

from validator.card import ep, ep_host
from validator.errors import R_APP_BLOCKED, R_CARD_ERROR, R_INSUFFICIENT, R_OK
from validator.link import apdu
from validator.sam.psam import Psam

# §1 real FCI (S16): 6F 31 84 08 AID A5 25 9F08 01 02 9F0C 1E <EF15> 90 00
EF15 = unhexlify("02002900ffffffff0201031047700400674428022024010120341231" + "0000")
FCI_RSP = unhexlify("6f318408a000000632010105a5259f0801029f0c1e") + EF15 + b"\x90\x00"
# richer variant with label, priority, 9F12 before 9F0C
FCI2_RSP = (unhexlify("6f508408a000000632010105a544500" + "84d4f545f545f4550870102"
                      + "9f0801029f120f434152442049" + "4d4147452030303031" + "9f0c1e")
            + EF15 + b"\x90\x00")
# §1 PPSE directory entries (S17): 6F 49 { 84 0E "2PAY.SYS.DDF01", A5 37 { BF0C 34 {
# 61 19 {..MOT_T_CASH}, 61 17 {..MOT_T_EP} } } } -- 73, 55 and 52 bytes of content
PPSE_ENTRIES = ("61194f08a000000632010106500a4d4f545f545f43415348870101"
                "61174f08a00000063201010550084d4f545f545f4550870102")
PPSE_RSP = unhexlify("6f49840e325041592e5359532e4444463031a537bf0c34" + PPSE_ENTRIES + "9000")
# the vector as it was first written: 6F 3A / A5 28 / BF0C 25 for 73/55/52 bytes of content
PPSE_BAD_LENGTHS = unhexlify("6f3a840e325041592e5359532e4444463031a528bf0c25" + PPSE_ENTRIES
                             + "9000")
# §5.6 constructed example
TERM = unhexlify("000000123456")
INIT_CMD = "805003020b01000000640000001234560f"
DEBIT_CMD = "805401000f00000010202401020830006195643508"
PROVE_CMD = "805a000902000608"
M8070_CMD = ("80700000241a2b3c4d00050000006409202401020830000100477004006744280202002900"
             "ffffffff08")


def _hex(b, n):
    return hexlify(bytes(b[:n])).decode()


def test_select_when_built_matches_iso7816_4():
    b = bytearray(32)
    n = ep.select(b, ep_host.AID_TUNION, 8)
    assert _hex(b, n) == "00a4040008a00000063201010500"


def test_select_when_fci_has_9f0c_ef15_found():
    off = ep.fci_ef15(FCI_RSP, len(FCI_RSP))
    assert off > 0 and FCI_RSP[off:off + 30] == EF15
    off = ep.fci_ef15(FCI2_RSP, len(FCI2_RSP))
    assert off > 0 and FCI2_RSP[off:off + 30] == EF15


def test_select_when_fci_without_9f0c_or_truncated_minus_one():
    bare = unhexlify("6f0a8408a000000632010105") + b"\x90\x00"
    assert ep.fci_ef15(bare, len(bare)) == -1
    cut = FCI_RSP[:40] + b"\x90\x00"
    assert ep.fci_ef15(cut, len(cut)) == ep_host.TLV_MALFORMED  # 6F 31 runs past the answer
    assert ep.fci_ef15(b"\x90\x00", 2) == -1


def test_tlv_when_ppse_vector_lengths_match_their_content_every_level_checks():
    assert PPSE_RSP[1] == len(PPSE_RSP) - 4  # 6F: everything up to the SW
    i = PPSE_RSP.find(b"\xa5")
    assert PPSE_RSP[i + 1] == len(PPSE_RSP) - 2 - (i + 2)
    j = PPSE_RSP.find(b"\xbf\x0c")
    assert PPSE_RSP[j + 2] == len(PPSE_RSP) - 2 - (j + 3)
    assert ep.tlv_check(PPSE_RSP, 0, len(PPSE_RSP) - 2)


def test_tlv_when_ppse_inner_lengths_overrun_parent_malformed():
    assert not ep.tlv_check(PPSE_BAD_LENGTHS, 0, len(PPSE_BAD_LENGTHS) - 2)
    assert ep.ppse_aid(PPSE_BAD_LENGTHS, len(PPSE_BAD_LENGTHS)) == ep_host.TLV_MALFORMED


def test_tlv_when_fci_child_overruns_its_a5_parent_malformed():
    # 6F's length covers everything, but A5 claims 0x10 bytes while its 9F0C needs 33:
    # a parser that checks only against the outer end would still find EF15
    bad = bytearray(FCI_RSP)
    assert bad[12] == 0xA5 and bad[13] == 0x25
    bad[13] = 0x10
    assert ep.fci_ef15(bad, len(bad)) == ep_host.TLV_MALFORMED


def test_tlv_when_entry_child_overruns_its_61_parent_malformed():
    bad = bytearray(PPSE_RSP)
    i = bad.find(b"\x61\x17")
    bad[i + 1] = 0x08  # the MOT_T_EP entry claims 8 bytes; its 4F alone needs 10
    assert ep.ppse_aid(bad, len(bad)) == ep_host.TLV_MALFORMED


def test_tlv_when_constructed_tag_is_empty_or_padded_still_well_formed():
    ok = unhexlify("6f05a50300ff00") + b"\x90\x00"  # A5 holding only padding bytes
    assert ep.tlv_check(ok, 0, len(ok) - 2)
    assert ep.fci_ef15(ok, len(ok)) == -1  # well formed, no EF15: the caller reads EF15


def test_select_when_ppse_lists_ep_label_aid_returned():
    a = ep.ppse_aid(PPSE_RSP, len(PPSE_RSP))
    off, ln = a & 0xFFFF, a >> 16
    assert ln == 8 and PPSE_RSP[off:off + 8] == ep_host.AID_TUNION


def test_select_when_status_table_maps_locks():
    assert apdu.lookup(ep.SW_SELECT, 0x9000) == R_OK
    for sw in (0x6283, 0x6284, 0x9303, 0x6A81):
        assert apdu.lookup(ep.SW_SELECT, sw) == R_APP_BLOCKED
    assert apdu.lookup(ep.SW_SELECT, 0x6F00, R_CARD_ERROR) == R_CARD_ERROR


def test_read_when_built_sfi_and_record_encoded():
    b = bytearray(8)
    assert _hex(b, ep.read_binary(b, ep_host.SFI_EF17, 0, 11)) == "00b097000b"
    assert _hex(b, ep.read_record(b, 1, ep_host.SFI_EF1E, 48)) == "00b201f430"


def test_purse_when_init_capp_built_matches_56_vector():
    b = bytearray(32)
    assert _hex(b, ep.init_purchase(b, True, 1, 0x64, TERM, 0)) == INIT_CMD
    assert _hex(b, ep.init_purchase(b, False, 1, 0x64, TERM, 0))[:8] == "80500102"


def test_purse_when_debit_built_matches_56_vector():
    b = bytearray(32)
    ttsn, dt, mac1 = unhexlify("00000010"), unhexlify("20240102083000"), unhexlify("61956435")
    assert _hex(b, ep.debit(b, ttsn, 0, dt, 0, mac1, 0)) == DEBIT_CMD


def test_purse_when_prove_built_with_atc_plus_one():
    b = bytearray(16)
    assert _hex(b, ep.prove(b, ep_host.TYPE_CAPP, 0x0006)) == PROVE_CMD


def test_purse_when_status_words_mapped():
    assert apdu.lookup(ep.SW_INIT, 0x9401) == R_INSUFFICIENT
    assert apdu.lookup(ep.SW_INIT, 0x6A86) == ep_host.NO_CAPP
    assert apdu.lookup(ep.SW_DEBIT, 0x9302) == R_CARD_ERROR
    assert apdu.lookup(ep.SW_PROVE, 0x9406) == ep_host.NO_PROVE
    assert apdu.lookup(ep_host.SW_BALANCE, 0x9000) == R_OK
    b = bytearray(8)
    assert _hex(b, ep_host.get_balance(b)) == "805c030204"


def test_capp_when_update_1e_built():
    b = bytearray(64)
    r = bytearray(range(48))
    n = ep.update_1e(b, r, 0)
    assert n == 53 and _hex(b, 5) == "80dc00f030" and bytes(b[5:53]) == bytes(r)


def test_block_when_header_and_command_built():
    b = bytearray(16)
    assert _hex(b, ep.app_block(b, None, 0)) == "841e000004"
    assert _hex(b, ep.get_challenge(b)) == "0084000004"
    assert _hex(b, ep.app_block(b, b"\x01\x02\x03\x04", 0)) == "841e00000401020304"


class _Capture:
    """A PSAM link that records the command and answers a fixed response."""

    def __init__(self, answer):
        self.answer = answer
        self.sent = []

    def transmit(self, cmd, n, resp):
        self.sent.append(_hex(cmd, n))
        for i in range(len(self.answer)):
            resp[i] = self.answer[i]
        return len(self.answer)


def test_psam_when_8070_built_matches_56_vector():
    link = _Capture(unhexlify("0000001061956435") + b"\x90\x00")
    p = Psam(link)
    ef15 = unhexlify("02002900ffffffff0201") + unhexlify("0310477004006744280220240101")
    ef15 = ef15 + bytes(30 - len(ef15))
    init = bytearray(15)
    init[11:15] = unhexlify("1a2b3c4d")
    p.mac1(init, 11, 5, 0x64, 0x09, unhexlify("20240102083000"), 0, 1, 0, ef15, 0)
    assert link.sent[0] == M8070_CMD
    assert bytes(p.out) == unhexlify("0000001061956435")


def test_psam_when_8072_refused_returns_false():
    p = Psam(_Capture(b"\x93\x02"))
    assert not p.verify_mac2(b"\x3e\xf5\x6c\x68", 0)
    assert p.cmd[:9] == unhexlify("80720000043ef56c68")


def test_select_when_fci_bytes_are_random_parsers_never_raise():
    # hostile or corrupted FCI/PPSE answers: results stay inside the response, no exception
    seed = 12345
    buf = bytearray(260)
    for round_ in range(1500):
        n = 2 + (round_ % 120)
        for i in range(n):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            buf[i] = (seed >> 16) & 0xFF
        if round_ % 3 == 0:
            buf[0], buf[1] = 0x6F, max(0, n - 4)  # plausible outer template
        off = ep.fci_ef15(buf, n)
        assert off in (-1, ep_host.TLV_MALFORMED) or 0 <= off and off + 30 <= n - 2
        a = ep.ppse_aid(buf, n)
        assert a in (-1, ep_host.TLV_MALFORMED) or (a & 0xFFFF) + (a >> 16) <= n - 2
        if a >= 0 or off >= 0:
            assert ep.tlv_check(buf, 0, n - 2)  # nothing is found in a malformed tree
