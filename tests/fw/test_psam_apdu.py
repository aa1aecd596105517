# Tier 1: emu.psam APDU paths and the emu.t0 T=0 byte engine (procedure bytes, 61xx,
# 6Cxx, NULL, ~INS, PPS, faults), checked against the §5.6 constructed example.
from emu import crypto, issuer, t0
from emu.psam import Psam
from fwtest import raises

MP_HEAP = "256k"  # fixtures: the PSAM, T=0 and card emulators (via emu.issuer) with their crypto

h = bytes.fromhex
KEYS = issuer.load_master_keys()
# §5.6 8070 data: rand ATC amount type datetime keyVer alg serial8 issuer8
D8070 = h("1A2B3C4D00050000006409202401020830000100477004006744280202002900FFFFFFFF")


def sw(r):
    return r[-2:].hex().upper()


def psam(**kw):
    kw.setdefault("terminal_no", h("000000123456"))
    kw.setdefault("ttsn", 0x0F)
    return Psam(KEYS, **kw)


def test_psam_when_constructed_example_then_8070_ttsn_10_mac1_and_8072_ok():
    p = psam()
    assert p.apdu(h("00A40000028011")) == h("9000")
    r = p.apdu(h("8070000024") + D8070)
    assert r == h("00000010") + h("61956435") + h("9000")  # §5.6: TTSN 00000010, MAC1
    assert p.apdu(h("80720000043EF56C68")) == h("9000")  # §5.6 MAC2
    assert sw(p.apdu(h("80720000043EF56C68"))) == "6985"  # one check per 8070


def test_psam_when_8070_repeated_then_ttsn_increments():
    p = psam()
    p.apdu(h("00A40000028011"))
    a = p.apdu(h("8070000024") + D8070)
    b = p.apdu(h("8070000024") + D8070)
    assert a[:4] == h("00000010") and b[:4] == h("00000011") and a[4:8] != b[4:8]


def test_psam_when_mac2_wrong_then_9302_and_session_kept():
    p = psam()
    p.apdu(h("00A40000028011"))
    p.apdu(h("8070000024") + D8070)
    assert sw(p.apdu(h("80720000043EF56C69"))) == "9302"
    assert sw(p.apdu(h("80720000043EF56C68"))) == "9000"


def test_psam_when_wrong_keys_then_mac1_differs():
    p = Psam(issuer.wrong_keys(KEYS), terminal_no=h("000000123456"), ttsn=0x0F)
    p.apdu(h("00A40000028011"))
    assert p.apdu(h("8070000024") + D8070)[4:8] != h("61956435")


def test_psam_when_files_then_serial_terminal_key_index():
    p = psam(serial=h("00112233445566778899"))
    assert p.apdu(h("00B095000A")) == h("00112233445566778899") + h("9000")
    assert p.apdu(h("00B0960006")) == h("000000123456") + h("9000")
    assert sw(p.apdu(h("00B0970001"))) == "6A82"  # EF17 lives in DF 8011
    p.apdu(h("00A40000028011"))
    assert p.apdu(h("00B0970001")) == h("019000")
    assert sw(p.apdu(h("00B0960006"))) == "6A82"
    assert sw(p.apdu(h("00B0970020"))) == "6C19"
    assert sw(p.apdu(h("00B0971900"))) == "6B00"
    assert sw(p.apdu(h("00B0170001"))) == "6A86"
    assert p.apdu(h("00A40000023F00")) == h("9000")
    assert sw(p.apdu(h("00B0960006"))) == "9000"


def test_psam_when_errors_then_status_words():
    p = psam()
    assert sw(p.apdu(h("8070000024") + D8070)) == "6985"  # DF not selected
    assert sw(p.apdu(h("00A40000021234"))) == "6A82"
    assert sw(p.apdu(h("00A4040002801100"))) == "6A86"
    assert sw(p.apdu(h("00A400000180"))) == "6700"
    p.apdu(h("00A40000028011"))
    assert sw(p.apdu(h("8070000023") + D8070[:35])) == "6700"
    assert sw(p.apdu(h("8070010024") + D8070)) == "6A86"
    bad = bytearray(D8070)
    bad[19] = 0x07
    assert sw(p.apdu(h("8070000024") + bad)) == "6A80"  # unknown algorithm ID
    bad = bytearray(D8070)
    bad[18] = 0x02
    assert sw(p.apdu(h("8070000024") + bad)) == "6A88"  # key version not present
    bad = bytearray(D8070)
    bad[10] = 0x02
    assert sw(p.apdu(h("8070000024") + bad)) == "6A80"  # not a purchase type
    assert sw(p.apdu(h("8072000003112233"))) == "6700"
    assert sw(p.apdu(h("A0B0960006"))) == "6E00"
    assert sw(p.apdu(h("80CA000000"))) == "6D00"
    assert sw(p.apdu(h("80"))) == "6700"


def test_psam_when_sm4_card_then_mac1_uses_sm4_family():
    p = psam()
    p.apdu(h("00A40000028011"))
    d = bytearray(D8070)
    d[19] = crypto.ALG_SM4
    r = p.apdu(h("8070000024") + d)
    dpk = crypto.card_key(h(KEYS["sm4"]["purchase"]), d[28:36], d[20:28], crypto.ALG_SM4)
    ses = crypto.purchase_session_key(4, dpk, d[0:4], d[4:6], r[0:4])
    assert r[4:8] == crypto.purchase_mac1(4, ses, d[6:10], 9, h("000000123456"), d[11:18])


def test_psam_when_801a_80fa_then_card_block_mac():
    card = issuer.issue_card(KEYS)
    p = psam()
    p.apdu(h("00A40000028011"))
    assert sw(p.apdu(h("80FA050010") + bytes(16))) == "6985"  # no 801A yet
    assert p.apdu(h("801A450210") + card.ef15[12:20] + card.ef15[0:8]) == h("9000")
    card.apdu(h("00A4040008A00000063201010500"))
    ch = card.apdu(h("0084000004"))[:4]
    mac = p.apdu(h("80FA050010") + ch + bytes(4) + h("841E000004800000"))
    assert sw(mac) == "9000" and len(mac) == 6
    assert card.apdu(h("841E000004") + mac[:4]) == h("9000")
    assert sw(p.apdu(h("80FA05000C") + bytes(12))) == "6700"
    assert sw(p.apdu(h("80FA000010") + bytes(16))) == "6A86"
    assert sw(p.apdu(h("801A460210") + bytes(16))) == "6A86"
    assert sw(p.apdu(h("801A450910") + bytes(16))) == "6A88"
    assert sw(p.apdu(h("801A45020F") + bytes(15))) == "6700"


def test_psam_when_801a_sm4_then_card_block_mac_sm4():
    card = issuer.issue_card(KEYS, alg="sm4")
    p = psam()
    p.apdu(h("00A40000028011"))
    assert p.apdu(h("801A450410") + card.ef15[12:20] + card.ef15[0:8]) == h("9000")
    card.apdu(h("00A4040008A00000063201010500"))
    ch = card.apdu(h("0084000004"))[:4]
    data = ch + bytes(12) + crypto.pad_m2(h("841E000004"), 16)
    mac = p.apdu(h("80FA050020") + data)
    assert card.apdu(h("841E000004") + mac[:4]) == h("9000")


# ---- T=0 byte engine -------------------------------------------------------------------


def test_t0_when_reset_then_atr():
    e = t0.T0Card(psam())
    atr = e.reset()
    assert atr == t0.ATR and atr[0] == 0x3B


def test_t0_when_case3_then_ins_ack_then_sw():
    e = t0.T0Card(psam())
    e.reset()
    assert e.feed(h("00A4000002")) == h("A4")
    assert e.feed(h("80")) == b""
    assert e.feed(h("11")) == h("9000")


def test_t0_when_case4_then_61xx_and_get_response():
    e = t0.T0Card(psam())
    e.reset()
    assert e.feed(h("00A40000028011")) == h("A49000")
    assert e.feed(h("8070000024")) == h("70")
    assert e.feed(D8070) == h("6108")
    assert e.feed(h("00C0000004")) == h("6C08")  # wrong Le on GET RESPONSE
    assert e.feed(h("00C0000008")) == h("C0") + h("0000001061956435") + h("9000")
    assert e.feed(h("00C0000008")) == h("6985")  # nothing waiting


def test_t0_when_case2_wrong_le_then_6cxx():
    e = t0.T0Card(psam())
    e.reset()
    assert e.feed(h("00B0960000")) == h("6C06")
    assert e.feed(h("00B0960006")) == h("B0") + h("000000123456") + h("9000")
    assert e.feed(h("00B0990006")) == h("6A82")


def test_t0_when_nulls_and_one_by_one_then_procedure_bytes():
    e = t0.T0Card(psam(), nulls=2, one_by_one=True)
    e.reset()
    assert e.feed(h("00A4000002")) == h("6060") + h("5B")
    assert e.feed(h("80")) == h("6060") + h("5B")
    assert e.feed(h("11")) == h("6060") + h("9000")
    out = e.feed(h("00B0970002"))
    assert out == h("60604F01") + h("60604F02") + h("60609000")


def test_t0_when_bad_header_then_sw_without_ack():
    e = t0.T0Card(psam())
    e.reset()
    assert e.feed(h("0060000000")) == h("6D00")  # INS 6x invalid in T=0
    assert e.feed(h("0091000000")) == h("6D00")
    assert e.feed(h("A0A4000002")) == h("6E00")
    assert e.feed(h("80CA000000")) == h("6D00")


def test_t0_when_pps_after_atr_then_echo_else_command():
    e = t0.T0Card(psam())
    e.reset()
    assert e.feed(h("FF1013FC")) == h("FF1013FC")
    e.reset()
    assert e.feed(h("FF101300")) == b""  # bad PCK: mute
    assert e.feed(h("00B0960006"))[-2:] == h("9000")


def test_t0_when_faults_then_mute_or_garbage():
    e = t0.T0Card(psam(), fault="mute")
    assert e.reset() == b"" and e.feed(h("00B0960006")) == b""
    g = t0.T0Card(psam(), fault="garbage")
    assert g.reset() != t0.ATR and g.feed(h("00B0960006")) != h("B0")
    raises(t0.T0Error, t0.transceive, e, h("00B0960006"))


def test_transceive_when_case4_then_follows_61xx():
    e = t0.T0Card(psam(), nulls=1)
    e.reset()
    seen = []
    t0.transceive(e, h("00A40000028011"), lambda c, r: seen.append((c, r)))
    r = t0.transceive(e, h("8070000024") + D8070, lambda c, r: seen.append((c, r)))
    assert r == h("000000106195643590 00".replace(" ", ""))
    assert seen[-1][0] == h("00C0000008") and seen[-2][1] == h("6108")
    r = t0.transceive(e, h("00B0970000"))  # 6C19, resent with Le 19
    assert len(r) == 27 and r[0] == 1 and r[-2:] == h("9000")
    o = t0.T0Card(psam(), one_by_one=True)
    o.reset()
    assert t0.transceive(o, h("00A40000028011")) == h("9000")
    assert t0.transceive(o, h("00B0970001")) == h("019000")
