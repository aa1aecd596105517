# Tier 1: emu.crypto known answers (card-protocol.md §5.5 real card, §5.6 constructed),
# FIPS/GB-T block cipher vectors, the SM4 family and the clearing-centre TAC verifier.
from emu import crypto as c

h = bytes.fromhex

# §5.6 constructed example
MPK = h("0123456789ABCDEFFEDCBA9876543210")
MTK = h("00112233445566778899AABBCCDDEEFF")
ISSUER = h("02002900FFFFFFFF")
SERIAL = h("4770040067442802")
RAND = h("1A2B3C4D")
ATC = h("0005")
AMOUNT = h("00000064")
TERM = h("000000123456")
TTSN = h("00000010")
DT = h("20240102083000")

# §5.5 real card (Huada, MOHURD profile), already diversified keys
R_DPK = h("A338D92A10C8285411E761445C831C22")
R_DTK = h("CAA6025290114BFCC3C9043F70F7A07A")


def test_des_when_fips_vector_then_known_ciphertext():
    k = h("133457799BBCDFF1")
    assert c.des_encrypt(k, h("0123456789ABCDEF")) == h("85E813540F0AB405")
    assert c.des_decrypt(k, h("85E813540F0AB405")) == h("0123456789ABCDEF")


def test_tdes_when_keys_equal_halves_then_single_des():
    k = h("133457799BBCDFF1")
    assert c.tdes_encrypt(k + k, h("0123456789ABCDEF")) == h("85E813540F0AB405")
    assert c.tdes_decrypt(MPK, c.tdes_encrypt(MPK, DT + b"\x00")) == DT + b"\x00"


def test_sm4_when_gbt_vector_then_known_ciphertext():
    k = h("0123456789ABCDEFFEDCBA9876543210")
    assert c.sm4_encrypt(k, k) == h("681EDF34D206965E86B3E94F536E4246")
    assert c.sm4_decrypt(k, h("681EDF34D206965E86B3E94F536E4246")) == k


def test_pad_m2_when_block_multiple_then_adds_whole_block():
    assert c.pad_m2(b"", 8) == h("8000000000000000")
    assert c.pad_m2(h("0102030405060708"), 8) == h("01020304050607088000000000000000")
    assert len(c.pad_m2(b"\x01" * 15, 16)) == 16


def test_div_when_constructed_example_then_keys_match():
    k_issuer = c.div(MPK, ISSUER)
    assert k_issuer == h("E11CBDA535B672BCB3D3B4B90D64002D")
    assert c.div(k_issuer, SERIAL) == h("8E7A4AAF898FD3BDAF1F6D25CF9C8086")
    assert c.card_key(MTK, ISSUER, SERIAL) == h("AB4698E5E8713EBAB4A66D3E54828F9A")


def test_purchase_when_constructed_example_then_mac1_mac2_tac_match():
    dpk = c.card_key(MPK, ISSUER, SERIAL)
    dtk = c.card_key(MTK, ISSUER, SERIAL)
    ses = c.purchase_session_key(c.ALG_3DES, dpk, RAND, ATC, TTSN)
    assert ses == h("E79F43CAE25F1C50")
    assert c.purchase_mac1(c.ALG_3DES, ses, AMOUNT, 0x09, TERM, DT) == h("61956435")
    assert c.purchase_mac2(c.ALG_3DES, ses, AMOUNT) == h("3EF56C68")
    assert c.tac_key(c.ALG_3DES, dtk) == h("1FE0F5DBBCF3B120")
    assert c.purchase_tac(c.ALG_3DES, dtk, AMOUNT, 0x09, TERM, TTSN, DT) == h("E9F56686")


def test_purchase_when_real_card_trace_then_mac2_and_tac_match_card():
    # §5.5: INIT rand 9AC87503, ATC 0000, amount 00001C37, terminal 000000000001,
    # DEBIT TTSN 00000001 datetime 20110919204812 -> card answered TAC 44A8E04A MAC2 350AC480
    ses = c.purchase_session_key(c.ALG_3DES, R_DPK, h("9AC87503"), h("0000"), h("00000001"))
    assert ses == h("45B5E6403E9995A8")
    assert c.purchase_mac2(c.ALG_3DES, ses, h("00001C37")) == h("350AC480")
    tac = c.purchase_tac(
        c.ALG_3DES, R_DTK, h("00001C37"), 0x09, h("000000000001"), h("00000001"),
        h("20110919204812"),
    )
    assert tac == h("44A8E04A")


def test_purchase_when_real_card_mac1_then_plain_and_auth_code_forms_differ():
    ses = c.purchase_session_key(c.ALG_3DES, R_DPK, h("9AC87503"), h("0000"), h("00000001"))
    plain = c.purchase_mac1(c.ALG_3DES, ses, h("00001C37"), 0x09, h("000000000001"),
                            h("20110919204812"))
    assert plain == h("CD573164")
    data = h("00001C3709000000000001201109192048128588D32B7688D32B76")
    assert c.mac_des(ses, data) == h("303D735D")  # the MOHURD card appends its auth code


def test_mac_3des_when_halves_equal_then_equals_single_des_cbc_mac():
    k = h("0123456789ABCDEF")
    d = h("841E000004")
    assert c.mac_3des(k + k, d, h("1122334400000000")) == c.mac_des(k, d, h("1122334400000000"))


def test_mac_3des_when_iv_changes_then_mac_changes():
    k = h("6474215EF549707831BB8DB9895FD48A")
    a = c.mac_3des(k, h("841E000004"), h("0102030400000000"))
    b = c.mac_3des(k, h("841E000004"), h("0102030500000000"))
    assert len(a) == 4 and a != b


def test_cbc_mac_raw_when_data_prepadded_then_equals_padding_mac():
    k = h("6474215EF549707831BB8DB9895FD48A")
    iv = h("A1B2C3D400000000")
    assert c.cbc_mac_raw(c.ALG_3DES, k, iv, h("841E000004800000")) == c.sm_mac(
        c.ALG_3DES, k, h("841E000004"), iv[:4]
    )
    iv16 = iv[:4] + bytes(12)
    assert c.cbc_mac_raw(c.ALG_SM4, k, iv16, c.pad_m2(h("841E000004"), 16)) == c.sm_mac(
        c.ALG_SM4, k, h("841E000004"), iv[:4]
    )


def test_sm4_family_when_constructed_then_documented_construction_holds():
    dpk = c.card_key(MPK, ISSUER, SERIAL, c.ALG_SM4)
    k_issuer = c.sm4_encrypt(MPK, ISSUER + bytes(x ^ 0xFF for x in ISSUER))
    assert dpk == c.sm4_encrypt(k_issuer, SERIAL + bytes(x ^ 0xFF for x in SERIAL))
    ses = c.purchase_session_key(c.ALG_SM4, dpk, RAND, ATC, TTSN)
    assert ses == c.sm4_encrypt(dpk, RAND + ATC + TTSN[2:] + h("8000000000000000"))
    assert len(ses) == 16
    mac2 = c.purchase_mac2(c.ALG_SM4, ses, AMOUNT)
    assert mac2 == c.sm4_encrypt(ses, AMOUNT + h("800000000000000000000000"))[:4]
    assert c.ALG_SM4 == 0x04


def test_load_when_session_key_then_3des_pads_80_00():
    dlk = c.card_key(MPK, ISSUER, SERIAL)
    assert c.load_session_key(c.ALG_3DES, dlk, RAND, ATC) == c.tdes_encrypt(
        dlk, RAND + ATC + h("8000")
    )


def test_verify_purchase_tac_when_record_genuine_then_true_else_false():
    keys = {"3des": {"tac": MTK.hex(), "purchase": MPK.hex()}}
    args = [keys, c.ALG_3DES, ISSUER, SERIAL, 100, 0x09, TERM, TTSN, DT]
    assert c.verify_purchase_tac(*(args + [h("E9F56686")]))
    assert not c.verify_purchase_tac(*(args + [h("E9F56687")]))
    args[4] = 101  # amount tampered
    assert not c.verify_purchase_tac(*(args + [h("E9F56686")]))


def test_verify_purchase_tac_when_family_missing_or_alg_unknown_then_false():
    keys = {"3des": {"tac": MTK.hex()}}
    assert not c.verify_purchase_tac(keys, c.ALG_SM4, ISSUER, SERIAL, 100, 9, TERM, TTSN, DT,
                                     h("E9F56686"))
    assert not c.verify_purchase_tac(keys, 0x07, ISSUER, SERIAL, 100, 9, TERM, TTSN, DT,
                                     h("E9F56686"))
