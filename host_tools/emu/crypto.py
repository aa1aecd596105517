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
import struct

ALG_3DES = 0x00  # §4: observed with 3DES keys (S8 trace)
ALG_SM4 = 0x04  # [INF] §4/§10.1: PBOC convention for SM4, not confirmed for T-Union EP

# [INF] SM4 family choices (README "SM4 construction"); one constant each.
SM4_DIV_INPUT_NOT = True  # DIV_SM4(MK, F8) = SM4_MK(F8 || ~F8): one block, 16-byte key
SM4_SESSION_PAD = b"\x80"  # session-key input padded ISO 9797-1 m2 to 16 bytes: 80 00..
SM4_MAC_TRUNC = 4  # SM4 CBC-MAC: leftmost 4 bytes of the last 16-byte block
SM4_TAC_KEY_HALVES_XOR = False  # TAC key = DTK itself (no 8-byte halves XOR for SM4)

# ---------------------------------------------------------------------------------------
# DES (FIPS 46-3). Bit numbers in the tables are 1-based from the MSB, as in the standard.

_IP = bytes((
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
))
_FP = bytes((
    40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
    38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
    36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
    34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
))
_PC1 = bytes((
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
    10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
    63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
    14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
))
_PC2 = bytes((
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
    23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
    41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
    44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
))
_SHIFTS = bytes((1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1))
_P = bytes((
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
    2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
))
# S-boxes, each 4 rows x 16 columns.
_S = bytes.fromhex(
    "e4d12fb83a6c5907" "0f74e2d1a6cb9538" "41e8d62bfc973a50" "fc8249175b3ea06d"
    "f18e6b34972dc05a" "3d47f28ec01a69b5" "0e7ba4d158c6932f" "d8a13f42b67c05e9"
    "a09e63f51dc7b428" "d709346a285ecbf1" "d6498f30b12c5ae7" "1ad069874fe3b52c"
    "7de3069a1285bc4f" "d8b56f03472c1ae9" "a690cb7df13e5284" "3f06a1d8945bc72e"
    "2c417ab6853fd0e9" "eb2c47d150fa3986" "421bad78f9c5630e" "b8c71e2d6f09a453"
    "c1af92680d34e75b" "af427c9561de0b38" "9ef528c3704a1db6" "432c95fabe17608d"
    "4b2ef08d3c975a61" "d0b7491ae35c2f86" "14bdc37eaf680592" "6bd814a7950fe23c"
    "d2846fb1a93e50c7" "1fd8a374c56b0e92" "7b419ce206adf358" "21e74a8dfc90356b"
)


def _sbox(i, v):
    row = ((v >> 4) & 2) | (v & 1)
    col = (v >> 1) & 15
    b = _S[i * 32 + row * 8 + (col >> 1)]
    return (b >> 4) if not (col & 1) else (b & 15)


def _build_sp():
    # SP[i*64 + v] = P(S_i(v) placed at nibble i): the classic combined S+P table.
    sp = []
    for i in range(8):
        for v in range(64):
            s = _sbox(i, v) << (28 - 4 * i)
            out = 0
            for j in range(32):
                out = (out << 1) | ((s >> (32 - _P[j])) & 1)
            sp.append(out)
    return tuple(sp)


_SP = _build_sp()


def _permute(b, table, n_in):
    """Generic bit permutation of the big-endian integer b (n_in bits) by table."""
    out = 0
    for t in table:
        out = (out << 1) | ((b >> (n_in - t)) & 1)
    return out


_KS_CACHE = {}


def _des_subkeys(key8):
    ks = _KS_CACHE.get(key8)
    if ks is not None:
        return ks
    k = struct.unpack(">Q", key8)[0]
    cd = _permute(k, _PC1, 64)
    c = cd >> 28
    d = cd & 0xFFFFFFF
    ks = []
    for s in _SHIFTS:
        c = ((c << s) | (c >> (28 - s))) & 0xFFFFFFF
        d = ((d << s) | (d >> (28 - s))) & 0xFFFFFFF
        sk = _permute((c << 28) | d, _PC2, 56)
        ks.append(tuple((sk >> (42 - 6 * i)) & 63 for i in range(8)))
    ks = tuple(ks)
    if len(_KS_CACHE) > 32:  # a small bounded cache: session keys change per transaction
        _KS_CACHE.clear()
    _KS_CACHE[bytes(key8)] = ks
    return ks


def _rounds(l, r, ks, decrypt):
    sp = _SP
    order = range(15, -1, -1) if decrypt else range(16)
    for n in order:
        k = ks[n]
        # E expansion of r: 34-bit window r32 | r1..r32 | r1, 6-bit chunks every 4 bits.
        x = ((r & 1) << 33) | (r << 1) | (r >> 31)
        f = (
            sp[(((x >> 28) & 63) ^ k[0])]
            | sp[64 + (((x >> 24) & 63) ^ k[1])]
            | sp[128 + (((x >> 20) & 63) ^ k[2])]
            | sp[192 + (((x >> 16) & 63) ^ k[3])]
            | sp[256 + (((x >> 12) & 63) ^ k[4])]
            | sp[320 + (((x >> 8) & 63) ^ k[5])]
            | sp[384 + (((x >> 4) & 63) ^ k[6])]
            | sp[448 + ((x & 63) ^ k[7])]
        )
        l, r = r, l ^ f
    return r, l  # undo the last swap


def _des_in(block):
    b = struct.unpack(">Q", block)[0]
    v = _permute(b, _IP, 64)
    return v >> 32, v & 0xFFFFFFFF


def _des_out(l, r):
    return struct.pack(">Q", _permute((l << 32) | r, _FP, 64))


def des_encrypt(key8, block8):
    l, r = _des_in(block8)
    l, r = _rounds(l, r, _des_subkeys(bytes(key8)), False)
    return _des_out(l, r)


def des_decrypt(key8, block8):
    l, r = _des_in(block8)
    l, r = _rounds(l, r, _des_subkeys(bytes(key8)), True)
    return _des_out(l, r)


def tdes_encrypt(key16, block8):
    """2-key 3DES-EDE: E_K1(D_K2(E_K1(x))); IP/FP between stages cancel and are skipped."""
    k1 = _des_subkeys(bytes(key16[:8]))
    k2 = _des_subkeys(bytes(key16[8:16]))
    l, r = _des_in(block8)
    l, r = _rounds(l, r, k1, False)
    l, r = _rounds(l, r, k2, True)
    l, r = _rounds(l, r, k1, False)
    return _des_out(l, r)


def tdes_decrypt(key16, block8):
    k1 = _des_subkeys(bytes(key16[:8]))
    k2 = _des_subkeys(bytes(key16[8:16]))
    l, r = _des_in(block8)
    l, r = _rounds(l, r, k1, True)
    l, r = _rounds(l, r, k2, False)
    l, r = _rounds(l, r, k1, True)
    return _des_out(l, r)


# ---------------------------------------------------------------------------------------
# SM4 (GB/T 32907-2016). One T-table T0[b] = L(S(b) << 24); other byte lanes by rotation.

_SM4_S = bytes.fromhex(
    "d690e9fecce13db716b614c228fb2c05" "2b679a762abe04c3aa44132649860699"
    "9c4250f491ef987a33540b43edcfac62" "e4b31ca9c908e89580df94fa758f3fa6"
    "4707a7fcf37317ba83593c19e6854fa8" "686b81b27164da8bf8eb0f4b70569d35"
    "1e240e5e6358d1a225227c3b01217887" "d40046579fd327524c3602e7a0c4c89e"
    "eabf8ad240c738b5a3f7f2cef96115a1" "e0ae5da49b341a55ad933230f58cb1e3"
    "1df6e22e8266ca60c02923ab0d534e6f" "d5db3745defd8e2f03ff6a726d6c5b51"
    "8d1baf92bbddbc7f11d95c411f105ad8" "0ac13188a5cd7bbd2d74d012b8e5b4b0"
    "8969974a0c96777e65b9f109c56ec684" "18f07dec3adc4d2079ee5f3ed7cb3948"
)
_SM4_FK = (0xA3B1BAC6, 0x56AA3350, 0x677D9197, 0xB27022DC)
_M32 = 0xFFFFFFFF


def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & _M32


def _sm4_t0():
    t = []
    for b in range(256):
        x = _SM4_S[b] << 24
        t.append(x ^ _rotl(x, 2) ^ _rotl(x, 10) ^ _rotl(x, 18) ^ _rotl(x, 24))
    return tuple(t)


_SM4_T0 = _sm4_t0()
_SM4_CK = tuple(
    ((28 * i % 256) << 24) | (((28 * i + 7) % 256) << 16) | (((28 * i + 14) % 256) << 8)
    | ((28 * i + 21) % 256)
    for i in range(32)
)
_RK_CACHE = {}


def _sm4_round_keys(key16):
    rk = _RK_CACHE.get(key16)
    if rk is not None:
        return rk
    k = list(struct.unpack(">4I", key16))
    for i in range(4):
        k[i] ^= _SM4_FK[i]
    s = _SM4_S
    out = []
    for i in range(32):
        x = k[1] ^ k[2] ^ k[3] ^ _SM4_CK[i]
        x = (s[x >> 24] << 24) | (s[(x >> 16) & 255] << 16) | (s[(x >> 8) & 255] << 8) | s[
            x & 255
        ]
        nk = k[0] ^ x ^ _rotl(x, 13) ^ _rotl(x, 23)  # L' of the key schedule
        out.append(nk)
        k = [k[1], k[2], k[3], nk]
    rk = tuple(out)
    if len(_RK_CACHE) > 32:
        _RK_CACHE.clear()
    _RK_CACHE[bytes(key16)] = rk
    return rk


def _sm4_crypt(rk, block16, decrypt):
    x0, x1, x2, x3 = struct.unpack(">4I", block16)
    t = _SM4_T0
    for i in range(32):
        a = x1 ^ x2 ^ x3 ^ rk[31 - i if decrypt else i]
        # T(a) = T0[b0] ^ rotr(T0[b1], 8) ^ rotr(T0[b2], 16) ^ rotr(T0[b3], 24)
        y = (
            t[a >> 24]
            ^ _rotl(t[(a >> 16) & 255], 24)
            ^ _rotl(t[(a >> 8) & 255], 16)
            ^ _rotl(t[a & 255], 8)
        )
        x0, x1, x2, x3 = x1, x2, x3, x0 ^ y
    return struct.pack(">4I", x3, x2, x1, x0)


def sm4_encrypt(key16, block16):
    return _sm4_crypt(_sm4_round_keys(bytes(key16)), block16, False)


def sm4_decrypt(key16, block16):
    return _sm4_crypt(_sm4_round_keys(bytes(key16)), block16, True)


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
        return sm4_encrypt(mk16, f8 + _not(f8))
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


def purchase_mac1(alg, sespk, amount4, txn_type, terminal6, datetime7):
    data = bytes(amount4) + bytes((txn_type,)) + bytes(terminal6) + bytes(datetime7)
    return mac(alg, sespk, data)


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
