# cardkit: shared constants and a reference purchase for the T-Union card emulator tests.
# SPDX-License-Identifier: MIT
# Not a test module. The PSAM (imported lazily) is the real emu.psam at APDU level, so the
# MACs in a purchase are real.
from emu import issuer

h = bytes.fromhex
KEYS = issuer.load_master_keys()
SELECT = h("00A4040008A00000063201010500")
SELECT_PPSE = b"\x00\xa4\x04\x00\x0e2PAY.SYS.DDF01\x00"
TERM = h("000000123456")
DT = h("20250601083000")


def sw(r):
    return r[-2:].hex().upper()


def new_card(**kw):
    kw.setdefault("balance", 1000)
    return issuer.issue_card(KEYS, **kw)


def new_psam(keys=KEYS):
    from emu.psam import Psam

    p = Psam(keys, terminal_no=TERM)
    assert p.apdu(h("00A40000028011")) == h("9000")
    return p


def init_cmd(p1, amount, key_index=1, term=TERM):
    head = bytes((0x80, 0x50, p1, 0x02, 0x0B, key_index))
    return head + amount.to_bytes(4, "big") + term + b"\x0f"


def purchase(card, psam, amount=100, capp=True, rec1e=None, rec1a=None, tear=None):
    """One purchase per card-protocol.md §9; returns (debit response, ttsn, init response)."""
    assert card.apdu(SELECT)[-2:] == h("9000")
    r = card.apdu(init_cmd(0x03 if capp else 0x01, amount))
    assert sw(r) == "9000", sw(r)
    ttype = 0x09 if capp else 0x06
    d = r[11:15] + r[4:6] + amount.to_bytes(4, "big") + bytes((ttype,)) + DT + r[9:11]
    d += card.ef15[12:20] + card.ef15[0:8]
    p = psam.apdu(b"\x80\x70\x00\x00\x24" + d)
    assert sw(p) == "9000", sw(p)
    if rec1e is not None:
        assert card.apdu(b"\x80\xdc\x00\xf0\x30" + rec1e) == h("9000")
    if rec1a is not None:
        assert card.apdu(bytes((0x80, 0xDC, rec1a[1], 0xD0, 0x80)) + rec1a) == h("9000")
    if tear:
        card.arm_tear(tear)
    deb = b"\x80\x54\x01\x00\x0f" + p[0:4] + DT + p[4:8] + b"\x08"
    return card.apdu(deb), p[0:4], r
