# test_local_card: the emulated local-issuer (MOHURD) card and PSAM against the §5.5
# real-card vector and the T-Union profile they differ from.
# SPDX-License-Identifier: MIT
from emu import crypto, issuer, local_card
from emu.psam import Psam

MP_HEAP = "1m"  # fixtures: the emulators and their crypto

KEYS = issuer.load_master_keys()


def h(s):
    return bytes.fromhex(s)


# card-protocol.md §5.5: Huada test card (MOHURD/Changsha profile), already diversified keys
R_DPK = h("A338D92A10C8285411E761445C831C22")
R_DLK = h("374598B5C0B0EAE1E1D06609AC5BB369")
R_DTK = h("CAA6025290114BFCC3C9043F70F7A07A")
R_DAMK = h("6474215EF549707831BB8DB9895FD48A")
R_AUTH = h("8588D32B7688D32B76")
R_SERIAL = h("4100000089999985")
SELECT_LOCAL = h("00A4040009A0000000038698070100")
SELECT_TUNION = h("00A4040008A00000063201010500")


class _Fixed:
    """The card's RNG pinned to the random of the real trace."""

    s = 1

    def next4(self):
        return h("9AC87503")


def _real_card():
    ef15 = h("0300430000000000") + b"\x01\x01" + b"\x00\x00" + R_SERIAL
    ef15 += h("20110101") + h("20301231") + b"\x00\x00"
    keys = {"purchase": R_DPK, "tac": R_DTK, "load": R_DLK, "maintenance": R_DAMK,
            "unblock": bytes(range(16))}  # the real card's unblock key is not known
    c = local_card.LocalCard(ef15, keys, auth_code=R_AUTH, balance=0x1C37)
    c._rng = _Fixed()
    return c


def _init_real(c):
    assert c.apdu(SELECT_LOCAL)[-2:] == b"\x90\x00"
    r = c.apdu(h("805003020B0100001C370000000000010F"))
    assert r == h("00001C37000000000001009AC87503") + b"\x90\x00"  # the trace, byte for byte


def test_local_mac1_when_auth_code_appended_then_real_card_vector():
    ses = crypto.purchase_session_key(0, R_DPK, h("9AC87503"), h("0000"), h("00000001"))
    args = (0, ses, h("00001C37"), 0x09, h("000000000001"), h("20110919204812"))
    assert crypto.purchase_mac1(*args, auth=R_AUTH) == h("303D735D")
    assert crypto.purchase_mac1(*args) == h("CD573164")  # what the card refused


def test_local_card_when_real_trace_replayed_then_tac_and_mac2_match():
    c = _real_card()
    _init_real(c)
    assert c.apdu(h("80CA000009")) == R_AUTH + b"\x90\x00"
    _init_real(c)  # 80CA ends the INIT session, as on the card: INIT again
    r = c.apdu(h("805401000F0000000120110919204812303D735D08"))
    assert r == h("44A8E04A350AC480") + b"\x90\x00"  # TAC then MAC2 (§5.5)
    assert c.balance == 0 and c.offline_atc == 1


def test_local_card_when_plain_mac1_then_9302_no_debit():
    c = _real_card()
    _init_real(c)
    assert c.apdu(h("805401000F0000000120110919204812CD57316408")) == h("9302")
    assert c.balance == 0x1C37 and c.offline_atc == 0


def test_local_card_when_tunion_aid_or_ppse_selected_then_6a82():
    c = issuer.issue_card(KEYS, app="local")
    assert c.apdu(SELECT_TUNION) == h("6A82")
    assert c.apdu(h("00A404000E325041592E5359532E444446303100")) == h("6A82")
    r = c.apdu(SELECT_LOCAL)
    assert r[-2:] == b"\x90\x00" and local_card.AID_LOCAL in r and c.ef15 in r


def test_tunion_card_when_80ca_sent_then_6d00_no_auth_code():
    c = issuer.issue_card(KEYS)
    assert c.apdu(SELECT_TUNION)[-2:] == b"\x90\x00"
    assert c.apdu(h("80CA000009")) == h("6D00")
    assert c.apdu(SELECT_LOCAL) == h("6A82")


def test_local_card_when_round_tripped_then_same_profile():
    c = issuer.issue_card(KEYS, app="local", balance=777)
    d = local_card.from_dict(c.to_dict())
    assert isinstance(d, local_card.LocalCard) and d.auth_code == c.auth_code
    assert d.balance == 777 and d.keys == c.keys
    t = local_card.from_dict(issuer.issue_card(KEYS).to_dict())
    assert not isinstance(t, local_card.LocalCard)


def _psam_boot(p, df):
    assert p.apdu(h("00B0960006"))[-2:] == b"\x90\x00"
    return p.apdu(h("00A4000002") + df)


def test_local_psam_when_booted_then_df_1001_not_8011():
    p = Psam(issuer.local_master_keys(KEYS), app="local")
    assert _psam_boot(p, h("8011")) == h("6A82")
    assert _psam_boot(p, h("1001")) == h("9000")
    assert p.apdu(h("00B0970001")) == h("01") + h("9000")
    mot = Psam(KEYS)
    assert _psam_boot(mot, h("1001")) == h("6A82")


def _purchase(card, psam, factor2, auth, lc):
    """8050 -> 8070 (local layout) -> 8054 -> 8072; returns (8070 SW, debit response)."""
    card.apdu(SELECT_LOCAL)
    r = card.apdu(h("805003020B01000000C80000001234560F"))
    assert r[-2:] == b"\x90\x00"
    d = r[11:15] + r[4:6] + h("000000C8") + b"\x09" + h("20250601083000") + r[9:11]
    d += card.ef15[12:20] + factor2 + auth
    m = psam.apdu(h("80700000") + bytes((lc,)) + d + b"\x08")
    if m[-2:] != b"\x90\x00":
        return m[-2:], None
    dr = card.apdu(h("805401000F") + m[0:4] + h("20250601083000") + m[4:8] + b"\x08")
    if dr[-2:] == b"\x90\x00":
        assert psam.apdu(h("8072000004") + dr[4:8]) == h("9000")
    return m[-2:], dr


def test_local_psam_when_mohurd_factor_and_auth_code_then_card_debits_and_tac_verifies():
    lk = issuer.local_master_keys(KEYS)
    p = Psam(lk, app="local")
    _psam_boot(p, h("1001"))
    c = issuer.issue_card(KEYS, app="local", balance=1000)
    f2 = issuer.local_factor2(c.ef15)
    assert f2 == h("2900FF0000000000")
    sw, dr = _purchase(c, p, f2, c.auth_code, 0x2D)
    assert sw == h("9000") and dr[-2:] == h("9000") and c.balance == 800
    assert crypto.verify_purchase_tac(lk, 0, f2, c.ef15[12:20], 200, 0x09, h("000000123456"),
                                      h("00000001"), h("20250601083000"), dr[0:4])
    # the T-Union key family and factor do not verify a local card's TAC
    assert not crypto.verify_purchase_tac(KEYS, 0, c.ef15[0:8], c.ef15[12:20], 200, 0x09,
                                          h("000000123456"), h("00000001"),
                                          h("20250601083000"), dr[0:4])


def test_local_psam_when_mot_layout_or_issuer_factor_then_refused():
    p = Psam(issuer.local_master_keys(KEYS), app="local")
    _psam_boot(p, h("1001"))
    c = issuer.issue_card(KEYS, app="local", balance=1000)
    assert _purchase(c, p, issuer.local_factor2(c.ef15), b"", 0x24)[0] == h("6700")
    assert _purchase(c, p, c.ef15[0:8], c.auth_code, 0x2D)[0] == h("6A80")
    # a MAC1 without the auth code (what a MOT-style PSAM would make) is refused by the card
    sw, dr = _purchase(c, p, issuer.local_factor2(c.ef15), bytes(9), 0x2D)
    assert sw == h("9000") and dr == h("9302") and c.balance == 1000


def test_local_card_when_sm4_then_purchase_verifies():
    lk = issuer.local_master_keys(KEYS)
    p = Psam(lk, app="local")
    _psam_boot(p, h("1001"))
    c = issuer.issue_card(KEYS, app="local", alg="sm4", balance=1000)
    f2 = issuer.local_factor2(c.ef15)
    sw, dr = _purchase(c, p, f2, c.auth_code, 0x2D)
    assert dr[-2:] == h("9000") and c.balance == 800
    assert crypto.verify_purchase_tac(lk, 4, f2, c.ef15[12:20], 200, 0x09, h("000000123456"),
                                      h("00000001"), h("20250601083000"), dr[0:4])


class _Capture:
    """A PSAM link that records the command bytes and answers a fixed response."""

    def __init__(self, answer):
        self.answer = answer
        self.sent = []

    def transmit(self, cmd, n, resp):
        self.sent.append(bytes(cmd[:n]))
        for i in range(len(self.answer)):
            resp[i] = self.answer[i]
        return len(self.answer)


def test_local_psam_builder_when_8070_then_mohurd_factor_and_auth_code_lc_2d():
    from validator.sam.psam import Psam as FwPsam

    ef15 = issuer.issue_card(KEYS, app="local").ef15
    init = bytearray(15)
    init[11:15] = h("1a2b3c4d")
    dt = h("20240102083000")
    link = _Capture(h("0000001061956435") + b"\x90\x00")
    FwPsam(link, None, True).mac1(init, 11, 5, 0x64, 0x09, dt, 0, 1, 0, ef15, 0, R_AUTH)
    want = h("807000002D") + h("1a2b3c4d0005000000640920240102083000") + b"\x01\x00"
    want += ef15[12:20] + h("2900FF0000000000") + R_AUTH + b"\x08"
    assert link.sent[0] == want
    mot = _Capture(h("0000001061956435") + b"\x90\x00")
    FwPsam(mot).mac1(init, 11, 5, 0x64, 0x09, dt, 0, 1, 0, ef15, 0, R_AUTH)
    assert mot.sent[0][4] == 0x24 and mot.sent[0][33:41] == ef15[0:8]  # MOT: no auth code


def test_local_psam_builder_when_801a_then_mohurd_factor():
    from validator.sam.psam import Psam as FwPsam

    ef15 = issuer.issue_card(KEYS, app="local").ef15
    link = _Capture(h("11223344") + b"\x90\x00")
    FwPsam(link, None, True).block_mac(ef15, 0, h("01020304"), 0, h("841E000004"), 0, 0)
    assert link.sent[0] == h("801A450210") + ef15[12:20] + h("2900FF0000000000")
