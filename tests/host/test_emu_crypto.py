# Tier 2: emu.crypto against independent implementations (pycryptodome, cryptography) on
# random data, and a purchase through the emulators checked by an independent §5.3 oracle.
import random

from Crypto.Cipher import DES, DES3
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from emu import crypto as c
from emu import issuer
from emu.psam import Psam

R = random.Random(978)


def rb(n):
    return bytes(R.getrandbits(8) for _ in range(n))


def _ecb(alg, key):
    if alg is TripleDES:
        key = key + key[:8]  # 2-key 3DES as the 3-key form K1 K2 K1
    return Cipher(alg(key), modes.ECB()).encryptor()


def _pad(d, n=8):
    d = d + b"\x80"
    return d + bytes(-len(d) % n)


def _ref_mac_des(k8, d, iv=bytes(8)):
    return DES.new(k8, DES.MODE_CBC, iv=iv).encrypt(_pad(d))[-8:][:4]


def _ref_mac_3des(k16, d, iv):
    v = DES.new(k16[:8], DES.MODE_CBC, iv=iv).encrypt(_pad(d))[-8:]
    v = DES.new(k16[8:], DES.MODE_ECB).decrypt(v)
    return DES.new(k16[:8], DES.MODE_ECB).encrypt(v)[:4]


def _ref_div(mk, f):
    e = _ecb(TripleDES, mk)
    return e.update(f) + e.update(bytes(x ^ 0xFF for x in f))


def test_des_when_random_then_matches_pycryptodome():
    for _ in range(300):
        k, b = rb(8), rb(8)
        assert c.des_encrypt(k, b) == DES.new(k, DES.MODE_ECB).encrypt(b)
        assert c.des_decrypt(k, b) == DES.new(k, DES.MODE_ECB).decrypt(b)


def test_tdes_when_random_then_matches_cryptography_and_pycryptodome():
    n = 0
    while n < 200:
        k, b = rb(16), rb(8)
        assert c.tdes_encrypt(k, b) == _ecb(TripleDES, k).update(b)
        try:
            e = DES3.new(k, DES3.MODE_ECB)
        except ValueError:  # degenerate 2-key (K1 == K2 after parity)
            continue
        assert c.tdes_decrypt(k, b) == e.decrypt(b)
        n += 1


def test_sm4_when_random_then_matches_cryptography():
    for _ in range(200):
        k, b = rb(16), rb(16)
        assert c.sm4_encrypt(k, b) == _ecb(algorithms.SM4, k).update(b)
        d = Cipher(algorithms.SM4(k), modes.ECB()).decryptor()
        assert c.sm4_decrypt(k, b) == d.update(b)


def test_macs_when_random_then_match_reference_cbc():
    for n in range(0, 40):
        d = rb(n)
        k16, iv = rb(16), rb(8)
        assert c.mac_des(k16[:8], d) == _ref_mac_des(k16[:8], d)
        assert c.mac_des(k16[:8], d, iv) == _ref_mac_des(k16[:8], d, iv)
        assert c.mac_3des(k16, d, iv) == _ref_mac_3des(k16, d, iv)
        iv16 = rb(16)
        enc = Cipher(algorithms.SM4(k16), modes.CBC(iv16)).encryptor()
        assert c.mac_sm4(k16, d, iv16) == (enc.update(_pad(d, 16)) + enc.finalize())[-16:][:4]


def test_div_when_random_then_matches_reference():
    for _ in range(50):
        mk, f = rb(16), rb(8)
        assert c.div(mk, f) == _ref_div(mk, f)
        e = _ecb(algorithms.SM4, mk)
        assert c.div(mk, f, c.ALG_SM4) == e.update(f + bytes(x ^ 0xFF for x in f))


def test_purchase_when_random_cards_then_independent_oracle_agrees():
    keys = issuer.load_master_keys()
    mpk = bytes.fromhex(keys["3des"]["purchase"])
    mtk = bytes.fromhex(keys["3des"]["tac"])
    for i in range(20):
        serial = "%020d" % R.randrange(10**19)
        card = issuer.issue_card(keys, serial=serial, balance=10**6, seed=i + 1)
        p = Psam(keys, terminal_no=rb(6), ttsn=R.randrange(1 << 31))
        p.apdu(bytes.fromhex("00A40000028011"))
        amount = R.randrange(1, 5000)
        card.apdu(bytes.fromhex("00A4040008A00000063201010500"))
        a4 = amount.to_bytes(4, "big")
        init = card.apdu(b"\x80\x50\x03\x02\x0b\x01" + a4 + p.terminal_no + b"\x0f")
        dt = bytes.fromhex("20250601%06d" % R.randrange(240000))
        iss, ser = card.ef15[0:8], card.ef15[12:20]
        m = p.apdu(b"\x80\x70\x00\x00\x24" + init[11:15] + init[4:6] + a4 + b"\x09" + dt
                   + init[9:11] + ser + iss)
        ttsn = m[0:4]
        r = card.apdu(b"\x80\x54\x01\x00\x0f" + ttsn + dt + m[4:8] + b"\x08")
        assert r[-2:] == b"\x90\x00"
        # oracle: §5.2/§5.3 written out with pycryptodome / cryptography only
        dpk = _ref_div(_ref_div(mpk, iss), ser)
        dtk = _ref_div(_ref_div(mtk, iss), ser)
        ses = DES3.new(dpk, DES3.MODE_ECB).encrypt(init[11:15] + init[4:6] + ttsn[2:])
        assert m[4:8] == _ref_mac_des(ses, a4 + b"\x09" + p.terminal_no + dt)
        assert r[4:8] == _ref_mac_des(ses, a4)
        tk = bytes(x ^ y for x, y in zip(dtk[:8], dtk[8:], strict=True))
        assert r[0:4] == _ref_mac_des(tk, a4 + b"\x09" + p.terminal_no + ttsn + dt)
        assert c.verify_purchase_tac(keys, 0, iss, ser, amount, 9, p.terminal_no, ttsn, dt,
                                     r[0:4])
