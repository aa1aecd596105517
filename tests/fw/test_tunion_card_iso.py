# Tier 1: emu.tunion_card RF identity, SELECT/PPSE, READ BINARY/RECORD, GET BALANCE, APDU errors.
# SPDX-License-Identifier: MIT
from fw.cardkit import SELECT, SELECT_PPSE, h, init_cmd, new_card, sw


def test_card_when_placed_then_rf_identity_is_type_a_iso14443_4():
    c = new_card()
    assert c.kind == "A" and c.sak == 0x20 and len(c.uid) == 7 and c.uid[0] == 0x04
    assert c.atqa == h("4400") and c.ats[0] == len(c.ats)


def test_card_when_phone_then_random_uid_starts_08():
    c = new_card(phone=True, seed=9)
    assert len(c.uid) == 4 and c.uid[0] == 0x08
    u = c.uid
    c.reroll_uid()
    assert c.uid != u and c.uid[0] == 0x08


def test_card_when_type_b_then_atqb_and_attrib():
    c = new_card(kind="B")
    assert c.kind == "B" and len(c.atqb) == 12 and c.atqb[0] == 0x50 and c.atqb[1:5] == c.uid
    assert c.attrib_resp == b"\x00"


def test_select_when_aid_then_fci_with_9f0c_ef15():
    c = new_card()
    r = c.apdu(SELECT)
    assert sw(r) == "9000"
    i = r.find(h("9F0C1E"))
    assert r[:2] == h("6F3E") and i > 0 and r[i + 3 : i + 33] == c.ef15
    assert b"MOT_T_EP" in r


def test_select_when_fci_without_ef15_then_no_9f0c():
    c = new_card()
    c.fci_ef15 = False
    r = c.apdu(SELECT)
    assert sw(r) == "9000" and h("9F0C") not in r


def test_select_when_ppse_then_directory_has_mot_t_ep_entry():
    r = new_card().apdu(SELECT_PPSE)
    assert sw(r) == "9000"
    assert h("61174F08A00000063201010550084D4F545F545F4550870102") in r


def test_select_when_unknown_aid_or_bad_p1p2_then_6a82_6a86():
    c = new_card()
    assert sw(c.apdu(h("00A4040008A00000063201010600"))) == "6A82"
    assert sw(c.apdu(h("00A4000002801100"))) == "6A86"
    assert sw(c.apdu(h("00A4040100"))) == "6A86"
    assert sw(c.apdu(h("00A40400000008"))) == "6700"  # extended form refused


def test_select_when_wrong_le_then_6cxx():
    c = new_card()
    r = c.apdu(h("00A4040008A00000063201010510"))
    assert sw(r) == "6C40"


def test_apdu_when_not_selected_then_6985():
    c = new_card()
    for cmd in ("805C000204", "00B0950000", "00B2011C00", init_cmd(1, 1).hex()):
        assert sw(c.apdu(h(cmd))) == "6985", cmd


def test_apdu_when_unknown_cla_ins_or_short_then_6e00_6d00_6700():
    c = new_card()
    c.apdu(SELECT)
    assert sw(c.apdu(h("A0A4040000"))) == "6E00"
    assert sw(c.apdu(h("00CA000000"))) == "6D00"
    assert sw(c.apdu(h("8020000000"))) == "6D00"
    assert sw(c.apdu(h("00A4"))) == "6700"
    assert sw(c.apdu(h("805C0002040000"))) == "6700"  # Lc says 4, 2 bytes follow


def test_read_binary_when_sfi_files_then_contents():
    c = new_card()
    c.apdu(SELECT)
    assert c.apdu(h("00B0950000")) == c.ef15 + h("9000")
    assert c.apdu(h("00B0950A0A"))[:-2] == c.ef15[10:20]
    assert c.apdu(h("00B0960037"))[:-2] == c.ef16
    assert c.apdu(h("00B097003C"))[:-2] == c.ef17
    assert c.apdu(h("00B0970800"))[:2] == h("0001")  # interconnect flag


def test_read_binary_when_bad_then_error_sws():
    c = new_card()
    c.apdu(SELECT)
    assert sw(c.apdu(h("00B0950020"))) == "6C1E"
    assert sw(c.apdu(h("00B0951E01"))) == "6B00"
    assert sw(c.apdu(h("00B0990000"))) == "6A82"
    assert sw(c.apdu(h("00B0980000"))) == "6981"  # EF18 is a record file
    assert sw(c.apdu(h("00B0000000"))) == "6986"
    assert sw(c.apdu(h("00B0C00000"))) == "6A86"
    assert sw(c.apdu(h("00B09500"))) == "6700"


def test_read_record_when_empty_logs_then_6a83_and_ef1a_headers():
    c = new_card()
    c.apdu(SELECT)
    assert sw(c.apdu(h("00B201C400"))) == "6A83"  # EF18 empty
    assert sw(c.apdu(h("00B201F400"))) == "6A83"  # EF1E empty
    r = c.apdu(h("00B201D400"))
    assert sw(r) == "9000" and r[:4] == h("27017D01") and len(r) == 130
    assert sw(c.apdu(h("00B203D400"))) == "6A83"
    assert sw(c.apdu(h("00B201D410"))) == "6C80"
    assert sw(c.apdu(h("00B201D000"))) == "6A86"  # P2 not "record P1"
    assert sw(c.apdu(h("00B200D400"))) == "6A86"
    assert sw(c.apdu(h("00B201AC00"))) == "6981"  # EF15 is binary
    assert sw(c.apdu(h("00B201FC00"))) == "6A82"


def test_read_record_when_no_capp_then_ef1a_absent():
    c = new_card(capp=False)
    c.apdu(SELECT)
    assert sw(c.apdu(h("00B201D400"))) == "6A82"


def test_get_balance_when_p1_variants_then_values_and_errors():
    c = new_card(balance=4321)
    c.apdu(SELECT)
    assert c.apdu(h("805C000204")) == (4321).to_bytes(4, "big") + h("9000")
    assert c.apdu(h("805C010204"))[:-2] == bytes(4)
    assert c.apdu(h("805C020204"))[:-2] == bytes(4)
    assert c.apdu(h("805C030204"))[:-2] == (4321).to_bytes(4, "big")
    assert sw(c.apdu(h("805C040204"))) == "6A86"
    assert sw(c.apdu(h("805C000104"))) == "6A86"
    assert sw(c.apdu(h("805C000208"))) == "6C04"
    assert sw(c.apdu(h("805C0002"))) == "6700"
