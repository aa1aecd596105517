# emu.des: DES and 2-key 3DES-EDE block ciphers (FIPS 46-3), pure Python, SP-table rounds.
# SPDX-License-Identifier: MIT
#
# Common subset; split from emu.crypto so each module compiles inside the 128k MicroPython
# heap of the tier-1 tests. Verified against pycryptodome in tests/host/test_emu_crypto*.
import array
import struct

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
    # array('I') filled in place: 2 KB and no transient list (MicroPython heap, 128k tests).
    sp = array.array("I", bytes(2048))
    for i in range(8):
        for v in range(64):
            s = _sbox(i, v) << (28 - 4 * i)
            out = 0
            for j in range(32):
                out = (out << 1) | ((s >> (32 - _P[j])) & 1)
            sp[i * 64 + v] = out
    return sp


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
        for i in range(8):
            ks.append((sk >> (42 - 6 * i)) & 63)
    ks = bytes(ks)  # 16 rounds x 8 six-bit chunks, flat: 128 bytes per cached key
    if len(_KS_CACHE) >= 6:  # a small bounded cache: session keys change per transaction
        _KS_CACHE.clear()
    _KS_CACHE[bytes(key8)] = ks
    return ks


def _rounds(l, r, ks, decrypt):
    sp = _SP
    order = range(15, -1, -1) if decrypt else range(16)
    for n in order:
        k = n * 8
        # E expansion of r: 34-bit window r32 | r1..r32 | r1, 6-bit chunks every 4 bits.
        x = ((r & 1) << 33) | (r << 1) | (r >> 31)
        f = (
            sp[(((x >> 28) & 63) ^ ks[k + 0])]
            | sp[64 + (((x >> 24) & 63) ^ ks[k + 1])]
            | sp[128 + (((x >> 20) & 63) ^ ks[k + 2])]
            | sp[192 + (((x >> 16) & 63) ^ ks[k + 3])]
            | sp[256 + (((x >> 12) & 63) ^ ks[k + 4])]
            | sp[320 + (((x >> 8) & 63) ^ ks[k + 5])]
            | sp[384 + (((x >> 4) & 63) ^ ks[k + 6])]
            | sp[448 + ((x & 63) ^ ks[k + 7])]
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
