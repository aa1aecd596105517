# Tier 1: emu.tunion_card GET CHALLENGE and APPLICATION BLOCK/UNBLOCK secure messaging.
# SPDX-License-Identifier: MIT
from emu import crypto, issuer
from emu.tunion_card import BLOCK_PERM, BLOCK_TEMP
from fw.cardkit import KEYS, SELECT, h, new_card, sw


def _block_mac(c, header, challenge, usage=None):
    # APPLICATION BLOCK: the block key (DAMK); UNBLOCK (8418): the separate unblock key
    if usage is None:
        usage = "unblock" if header[1] == 0x18 else "maintenance"
    k = issuer.card_keys(KEYS, c.alg, c.ef15)[usage]
    return crypto.sm_mac(c.alg, k, header, challenge)


def test_app_block_when_mac_good_then_select_6283_and_purchase_refused():
    c = new_card()
    c.apdu(SELECT)
    ch = c.apdu(h("0084000004"))[:4]
    assert c.apdu(h("841E000004") + _block_mac(c, h("841E000004"), ch)) == h("9000")
    r = c.apdu(SELECT)
    assert sw(r) == "6283" and r[:2] == h("6F3E")  # FCI still there (S5: blacklisted)
    assert sw(c.apdu(h("805003020B0100000001000000123456"))) == "9303"
    assert sw(c.apdu(h("00B0950000"))) == "9000"
    ch = c.apdu(h("0084000004"))[:4]
    assert c.apdu(h("8418000004") + _block_mac(c, h("8418000004"), ch)) == h("9000")
    assert sw(c.apdu(SELECT)) == "9000" and c.blocked == 0


def test_app_unblock_when_mac_made_with_the_block_key_6988_and_still_blocked():
    c = new_card()
    c.apdu(SELECT)
    ch = c.apdu(h("0084000004"))[:4]
    assert c.apdu(h("841E000004") + _block_mac(c, h("841E000004"), ch)) == h("9000")
    c.apdu(SELECT)
    ch = c.apdu(h("0084000004"))[:4]
    mac = _block_mac(c, h("8418000004"), ch, usage="maintenance")
    assert c.apdu(h("8418000004") + mac) == h("6988")
    assert c.blocked == BLOCK_TEMP
    ch = c.apdu(h("0084000004"))[:4]
    assert c.apdu(h("8418000004") + _block_mac(c, h("8418000004"), ch)) == h("9000")
    assert c.blocked == 0


def test_app_block_when_mac_made_with_the_unblock_key_6988():
    c = new_card()
    c.apdu(SELECT)
    ch = c.apdu(h("0084000004"))[:4]
    mac = _block_mac(c, h("841E000004"), ch, usage="unblock")
    assert c.apdu(h("841E000004") + mac) == h("6988") and c.blocked == 0


def test_card_when_keys_lack_unblock_clear_error():
    c = new_card()
    keys = dict(c.keys)
    del keys["unblock"]
    try:
        type(c)(c.ef15, keys)
    except ValueError as e:
        assert "unblock" in str(e)
    else:
        raise AssertionError("card built without an unblock key")


def test_app_block_when_sm4_card_then_sm4_secure_messaging():
    c = new_card(alg="sm4")
    c.apdu(SELECT)
    ch = c.apdu(h("0084000004"))[:4]
    assert c.apdu(h("841E000004") + _block_mac(c, h("841E000004"), ch)) == h("9000")
    assert c.blocked == BLOCK_TEMP


def test_app_block_when_permanent_then_select_9303_and_no_unblock():
    c = new_card()
    c.apdu(SELECT)
    ch = c.apdu(h("0084000004"))[:4]
    assert c.apdu(h("841E000104") + _block_mac(c, h("841E000104"), ch)) == h("9000")
    assert c.blocked == BLOCK_PERM
    assert c.apdu(SELECT) == h("9303")
    assert sw(c.apdu(h("8418000004") + bytes(4))) == "6985"


def test_app_block_when_bad_mac_or_no_challenge_then_6988_6985():
    c = new_card()
    c.apdu(SELECT)
    assert sw(c.apdu(h("841E000004") + bytes(4))) == "6985"
    ch = c.apdu(h("0084000004"))[:4]
    c.apdu(h("805C000204"))  # the challenge is only good for the next command
    assert sw(c.apdu(h("841E000004") + _block_mac(c, h("841E000004"), ch))) == "6985"
    c.apdu(h("0084000004"))
    assert sw(c.apdu(h("841E000004") + bytes(4))) == "6988"
    c.apdu(h("0084000004"))
    assert sw(c.apdu(h("841E000003") + bytes(3))) == "6700"
    assert sw(c.apdu(h("841E000204") + bytes(4))) == "6A86"
    assert c.blocked == 0


def test_get_challenge_when_le_4_or_8_else_6700():
    c = new_card()
    a = c.apdu(h("0084000004"))
    b = c.apdu(h("0084000008"))
    assert sw(a) == "9000" and len(a) == 6 and len(b) == 10 and a[:4] != b[:4]
    assert sw(c.apdu(h("0084000005"))) == "6700"
    assert sw(c.apdu(h("0084010004"))) == "6A86"
