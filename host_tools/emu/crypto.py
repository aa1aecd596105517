# emu.crypto: DES/3DES/SM4 and the PBOC/JT/T 978 EP key, MAC and TAC constructions.
# SPDX-License-Identifier: MIT
#
# Common subset (CPython and MicroPython) so tier-1 tests run the card and PSAM emulators
# in-process. Pure Python; emulator speed, not firmware speed (toolchain.md §8).
# Everything here is specified in card-protocol.md §5; the SM4 family and the algorithm-ID
# value are [INF] choices documented in emu/README.md, each one named constant below.
#
# Keys, data and results are bytes. Two algorithm families:
#   ALG_3DES (0x00): 8-byte blocks, 16-byte 2-key 3DES keys, MAC_DES / MAC_3DES.
#   ALG_SM4  (0x04): 16-byte blocks, 16-byte SM4 keys, SM4 CBC-MAC.
ALG_3DES = 0x00  # §4: observed with 3DES keys (S8 trace)
ALG_SM4 = 0x04  # [INF] §4/§10.1: PBOC convention for SM4, not confirmed for T-Union EP

# [INF] SM4 family choices (README "SM4 construction"); one constant each.
SM4_DIV_INPUT_NOT = True  # DIV_SM4(MK, F8) = SM4_MK(F8 || ~F8): one block, 16-byte key
SM4_SESSION_PAD = b"\x80"  # session-key input padded ISO 9797-1 m2 to 16 bytes: 80 00..
SM4_MAC_TRUNC = 4  # SM4 CBC-MAC: leftmost 4 bytes of the last 16-byte block
SM4_TAC_KEY_HALVES_XOR = False  # TAC key = DTK itself (no 8-byte halves XOR for SM4)

from emu.des import (  # noqa: F401  (re-exported)
    _des_in,
    _des_out,
    _des_subkeys,
    _rounds,
    des_decrypt,
    des_encrypt,
    tdes_decrypt,
    tdes_encrypt,
)
from emu.sm4 import _sm4_crypt, _sm4_round_keys, sm4_decrypt, sm4_encrypt  # noqa: F401

# ---------------------------------------------------------------------------------------
# Padding and MACs (§5.1)


def xor(a, b):
    return bytes(a[i] ^ b[i] for i in range(len(a)))


def pad_m2(data, block):
    """ISO 9797-1 padding method 2: 80 then 00s to a multiple of block (always adds)."""
    n = len(data) + 1
    return bytes(data) + b"\x80" + bytes((-n) % block)


def mac_des(key8, data, iv=bytes(8)):
    """§5.1 MAC_DES: ISO 9797-1 alg. 1 with single DES, m2 padding, first 4 bytes."""
    ks = _des_subkeys(bytes(key8))
    d = pad_m2(data, 8)
    v = bytes(iv)
    for i in range(0, len(d), 8):
        l, r = _des_in(xor(v, d[i : i + 8]))
        l, r = _rounds(l, r, ks, False)
        v = _des_out(l, r)
    return v[:4]


def mac_3des(key16, data, iv=bytes(8)):
    """§5.1 MAC_3DES: ISO 9797-1 alg. 3 (retail MAC), m2 padding, first 4 bytes."""
    k1 = bytes(key16[:8])
    d = pad_m2(data, 8)
    v = bytes(iv)
    for i in range(0, len(d), 8):
        v = des_encrypt(k1, xor(v, d[i : i + 8]))
    v = des_encrypt(k1, des_decrypt(bytes(key16[8:16]), v))
    return v[:4]


def mac_sm4(key16, data, iv=bytes(16)):
    """[INF] SM4 CBC-MAC: m2 padding to 16, IV 0 unless given, leftmost SM4_MAC_TRUNC bytes."""
    rk = _sm4_round_keys(bytes(key16))
    d = pad_m2(data, 16)
    v = bytes(iv)
    for i in range(0, len(d), 16):
        v = _sm4_crypt(rk, xor(v, d[i : i + 16]), False)
    return v[:SM4_MAC_TRUNC]


def cbc_mac_raw(alg, key16, iv, data):
    """CBC over already padded data (PSAM 80FA P1=05): 3DES retail MAC or SM4 CBC, 4 bytes."""
    if alg == ALG_SM4:
        rk = _sm4_round_keys(bytes(key16))
        v = bytes(iv)
        for i in range(0, len(data), 16):
            v = _sm4_crypt(rk, xor(v, data[i : i + 16]), False)
        return v[:4]
    k1 = bytes(key16[:8])
    v = bytes(iv)
    for i in range(0, len(data), 8):
        v = des_encrypt(k1, xor(v, data[i : i + 8]))
    return des_encrypt(k1, des_decrypt(bytes(key16[8:16]), v))[:4]


def block_size(alg):
    return 16 if alg == ALG_SM4 else 8


def _check_alg(alg):
    if alg != ALG_3DES and alg != ALG_SM4:
        raise ValueError("unknown algorithm id %02X" % alg)


def _not(b):
    return bytes((x ^ 0xFF) for x in b)


# ---------------------------------------------------------------------------------------
# Keys (§5.1, §5.2)


def div(mk16, f8, alg=ALG_3DES):
    """§5.1 DIV. 3DES: 3DES_MK(F) || 3DES_MK(~F). SM4 [INF]: SM4_MK(F || ~F)."""
    _check_alg(alg)
    f8 = bytes(f8)
    if alg == ALG_SM4:
        return sm4_encrypt(mk16, f8 + (_not(f8) if SM4_DIV_INPUT_NOT else f8))
    return tdes_encrypt(mk16, f8) + tdes_encrypt(mk16, _not(f8))


def card_key(mk16, issuer_id8, serial8, alg=ALG_3DES):
    """§5.2 two-level order [INF]: K_issuer = DIV(MK, issuerId8), K = DIV(K_issuer, serial8)."""
    return div(div(mk16, issuer_id8, alg), serial8, alg)


def encrypt_block(alg, key16, block):
    return sm4_encrypt(key16, block) if alg == ALG_SM4 else tdes_encrypt(key16, block)


def session_key(alg, key16, data):
    """Session key from card key and session data (8 bytes purchase, 6 bytes load input).

    3DES: 3DES_K(data) with data padded m2 to 8 (purchase data is exactly one block, §5.3;
    load data random||ATC gets 80 00, §5.4). SM4 [INF]: SM4_K(data || 80 00..) to 16 bytes.
    """
    _check_alg(alg)
    if alg == ALG_SM4:
        d = bytes(data) + SM4_SESSION_PAD
        return sm4_encrypt(key16, d + bytes(16 - len(d)))
    d = bytes(data)
    if len(d) < 8:
        d = d + b"\x80" + bytes(7 - len(d))
    return tdes_encrypt(key16, d)


def mac(alg, key, data, iv=None):
    """Session MAC: MAC_DES (8-byte 3DES session key) or SM4 CBC-MAC (16-byte key)."""
    if alg == ALG_SM4:
        return mac_sm4(key, data, iv or bytes(16))
    return mac_des(key, data, iv or bytes(8))


def sm_mac(alg, key16, data, challenge4):
    """Secure-messaging MAC (APPLICATION BLOCK/UNBLOCK): IV = challenge || 00.., §5.1."""
    if alg == ALG_SM4:
        return mac_sm4(key16, data, bytes(challenge4) + bytes(12))
    return mac_3des(key16, data, bytes(challenge4) + bytes(4))


def tac_key(alg, dtk16):
    """§5.3: 3DES TAC key = DTK_L xor DTK_R. SM4 [INF]: DTK itself (SM4_TAC_KEY_HALVES_XOR)."""
    if alg == ALG_SM4 and not SM4_TAC_KEY_HALVES_XOR:
        return bytes(dtk16)
    return xor(dtk16[:8], dtk16[8:16])


def tac_mac(alg, dtk16, data):
    if alg == ALG_SM4:
        if SM4_TAC_KEY_HALVES_XOR:
            k = tac_key(alg, dtk16)
            return mac_sm4(k + k, data)
        return mac_sm4(dtk16, data)
    return mac_des(tac_key(alg, dtk16), data)


# ---------------------------------------------------------------------------------------
# Purchase (§5.3) and load (§5.4) constructions, shared by card, PSAM and clearing side.


def purchase_session_key(alg, dpk16, random4, atc2, ttsn4):
    return session_key(alg, dpk16, bytes(random4) + bytes(atc2) + bytes(ttsn4)[2:4])


def purchase_mac1(alg, sespk, amount4, txn_type, terminal6, datetime7, auth=b""):
    """§5.3 MAC1. auth: the 9-byte MOHURD authentication code (80CA) that a local-issuer
    (住建部) card appends to the MAC1 input (§5.5, real-card vector 303D735D); empty for
    T-Union (JT/T 978) cards."""
    data = bytes(amount4) + bytes((txn_type,)) + bytes(terminal6) + bytes(datetime7)
    return mac(alg, sespk, data + bytes(auth))


def purchase_mac2(alg, sespk, amount4):
    return mac(alg, sespk, bytes(amount4))


def purchase_tac(alg, dtk16, amount4, txn_type, terminal6, ttsn4, datetime7):
    return tac_mac(
        alg,
        dtk16,
        bytes(amount4) + bytes((txn_type,)) + bytes(terminal6) + bytes(ttsn4) + bytes(datetime7),
    )


def load_session_key(alg, dlk16, random4, online_atc2):
    return session_key(alg, dlk16, bytes(random4) + bytes(online_atc2))


def load_mac1(alg, seslk, old_balance4, amount4, terminal6):
    return mac(alg, seslk, bytes(old_balance4) + bytes(amount4) + b"\x02" + bytes(terminal6))


def load_mac2(alg, seslk, amount4, terminal6, datetime7):
    return mac(alg, seslk, bytes(amount4) + b"\x02" + bytes(terminal6) + bytes(datetime7))


def load_tac(alg, dtk16, new_balance4, online_atc2, amount4, terminal6, datetime7):
    data = bytes(new_balance4) + bytes(online_atc2) + bytes(amount4) + b"\x02"
    return tac_mac(alg, dtk16, data + bytes(terminal6) + bytes(datetime7))


# ---------------------------------------------------------------------------------------
# Clearing centre (issuer side): derive DTK from the TAC master key and check a TAC.

FAMILY_NAMES = (("3des", ALG_3DES), ("sm4", ALG_SM4))


def family_name(alg):
    for n, a in FAMILY_NAMES:
        if a == alg:
            return n
    raise ValueError("unknown algorithm id %02X" % alg)


def _hexkey(v):
    if isinstance(v, str):
        return bytes.fromhex(v)
    return bytes(v)


def master_key(master_keys, alg, usage):
    """master_keys: the whole key file object ({"3des": {...}, "sm4": {...}}) or one family."""
    fam = master_keys.get(family_name(alg)) if family_name(alg) in master_keys else master_keys
    return _hexkey(fam[usage])


def _as_int_bytes(v, n):
    if isinstance(v, int):
        return v.to_bytes(n, "big")
    return bytes(v)


def verify_purchase_tac(
    master_keys, alg, issuer_id8, serial8, amount, txn_type, terminal_no6, ttsn4, datetime7, tac4
):
    """Clearing-centre TAC check of one purchase record; amount as int fen or 4 bytes."""
    try:
        mk = master_key(master_keys, alg, "tac")
        dtk = card_key(mk, issuer_id8, serial8, alg)
        want = purchase_tac(
            alg, dtk, _as_int_bytes(amount, 4), txn_type, terminal_no6, ttsn4, datetime7
        )
    except (KeyError, ValueError, TypeError):
        return False
    return want == bytes(tac4)
