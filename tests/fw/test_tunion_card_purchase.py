# Tier 1: emu.tunion_card purchase, CAPP cache, INITIALIZE, DEBIT status paths.
# SPDX-License-Identifier: MIT
# The PSAM side of each purchase is the real emu.psam (APDU level), so MACs are real.
from emu import crypto, issuer
from fw.cardkit import (
    DT,
    KEYS,
    SELECT,
    TERM,
    h,
    init_cmd,
    new_card,
    new_psam,
    purchase,
    sw,
)


def test_capp_purchase_when_good_then_commit_everything():
    c = new_card(balance=1000)
    rec = bytes(range(48))
    rec1a = h("27027D0101") + bytes(123)
    r, ttsn, init = purchase(c, new_psam(), 150, rec1e=rec, rec1a=rec1a)
    assert sw(r) == "9000" and len(r) == 10
    assert init[:4] == (1000).to_bytes(4, "big") and init[10] == crypto.ALG_3DES
    assert c.balance == 850 and c.offline_atc == 1
    c.apdu(SELECT)
    log = c.apdu(h("00B201C400"))
    assert log[:-2] == h("0001") + bytes(3) + (150).to_bytes(4, "big") + b"\x09" + TERM + DT
    assert c.apdu(h("00B201F400"))[:-2] == rec
    assert c.apdu(h("00B202D400"))[:-2] == rec1a
    tac = r[0:4]
    assert crypto.verify_purchase_tac(KEYS, 0, c.ef15[0:8], c.ef15[12:20], 150, 9, TERM,
                                      ttsn, DT, tac)


def test_capp_purchase_when_mac2_then_psam_8072_accepts():
    c = new_card()
    p = new_psam()
    r, _, _ = purchase(c, p, 10)
    assert p.apdu(b"\x80\x72\x00\x00\x04" + r[4:8]) == h("9000")


def test_simple_purchase_when_p1_01_then_type_06():
    c = new_card(capp=False)
    r, ttsn, _ = purchase(c, new_psam(), 100, capp=False)
    assert sw(r) == "9000"
    c.apdu(SELECT)
    assert c.apdu(h("00B201C400"))[9] == 0x06
    assert crypto.verify_purchase_tac(KEYS, 0, c.ef15[0:8], c.ef15[12:20], 100, 6, TERM,
                                      ttsn, DT, r[0:4])


def test_sm4_card_when_purchase_then_tac_verifies():
    c = new_card(alg="sm4")
    p = new_psam()
    r, ttsn, init = purchase(c, p, 100)
    assert sw(r) == "9000" and init[10] == crypto.ALG_SM4
    assert p.apdu(b"\x80\x72\x00\x00\x04" + r[4:8]) == h("9000")
    assert crypto.verify_purchase_tac(KEYS, 4, c.ef15[0:8], c.ef15[12:20], 100, 9, TERM,
                                      ttsn, DT, r[0:4])


def test_init_when_no_capp_card_p1_03_then_6a86():
    c = new_card(capp=False)
    c.apdu(SELECT)
    assert sw(c.apdu(init_cmd(0x03, 1))) == "6A86"
    assert sw(c.apdu(h("80DC00F030") + bytes(48))) == "6D00"


def test_init_when_errors_then_9401_9403_6a86_6700():
    c = new_card(balance=50)
    c.apdu(SELECT)
    assert sw(c.apdu(init_cmd(3, 51))) == "9401"
    assert sw(c.apdu(init_cmd(3, 50, key_index=2))) == "9403"
    assert sw(c.apdu(h("8050030100"))) == "6A86"
    assert sw(c.apdu(h("8050020200"))) == "6A86"
    assert sw(c.apdu(h("805003020A") + bytes(10))) == "6700"
    assert sw(c.apdu(init_cmd(3, 50)[:-1] + b"\x10")) == "6C0F"
    assert sw(c.apdu(init_cmd(3, 50))) == "9000"


def test_debit_when_mac1_wrong_then_9302_and_no_debit():
    c = new_card(balance=1000)
    c.apdu(SELECT)
    c.apdu(init_cmd(3, 100))
    r = c.apdu(h("805401000F00000001") + DT + h("0000000008"))
    assert sw(r) == "9302" and c.balance == 1000 and c.offline_atc == 0
    assert sw(c.apdu(h("805401000F00000001") + DT + h("0000000008"))) == "6985"


def test_debit_when_wrong_psam_then_9302():
    c = new_card(balance=1000)
    r, _, _ = purchase(c, new_psam(issuer.wrong_keys(KEYS)), 100)
    assert sw(r) == "9302" and c.balance == 1000


def test_debit_when_no_init_or_interleaved_command_then_6985():
    c = new_card()
    c.apdu(SELECT)
    assert sw(c.apdu(h("805401000F") + bytes(15))) == "6985"
    c.apdu(init_cmd(3, 1))
    c.apdu(h("805C000204"))  # anything but 80DC between INIT and DEBIT ends the session
    assert sw(c.apdu(h("805401000F") + bytes(15))) == "6985"


def test_debit_when_malformed_then_6a86_6700_6c08():
    c = new_card()
    c.apdu(SELECT)
    c.apdu(init_cmd(3, 1))
    assert sw(c.apdu(h("805402000F") + bytes(15))) == "6A86"
    c.apdu(init_cmd(3, 1))
    assert sw(c.apdu(h("805401000E") + bytes(14))) == "6700"
    c.apdu(init_cmd(3, 1))
    assert sw(c.apdu(h("805401000F") + bytes(15) + b"\x04")) == "6C08"


def test_update_cache_when_bad_then_errors():
    c = new_card()
    c.apdu(SELECT)
    assert sw(c.apdu(h("80DC00F030") + bytes(48))) == "6985"  # no CAPP init
    c.apdu(init_cmd(1, 1))
    assert sw(c.apdu(h("80DC00F030") + bytes(48))) == "6985"  # simple purchase init
    c.apdu(init_cmd(3, 1))
    assert sw(c.apdu(h("80DC00F02F") + bytes(47))) == "6700"
    assert sw(c.apdu(h("80DC01F030") + bytes(48))) == "6A86"
    assert sw(c.apdu(h("80DC09D080") + h("2709") + bytes(126))) == "6A83"
    assert sw(c.apdu(h("80DC01D080") + h("2702") + bytes(126))) == "6A80"
    assert sw(c.apdu(h("80DC0100") )) == "6A86"


def test_uncommitted_cache_when_debit_fails_then_records_unchanged():
    c = new_card()
    c.apdu(SELECT)
    c.apdu(init_cmd(3, 1))
    assert c.apdu(h("80DC00F030") + bytes(range(48))) == h("9000")
    c.apdu(h("805401000F") + bytes(15))  # bad MAC1
    assert sw(c.apdu(h("00B201F400"))) == "6A83"
