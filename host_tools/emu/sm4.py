# emu.sm4: SM4 block cipher (GB/T 32907-2016), pure Python, one T-table plus rotations.
# SPDX-License-Identifier: MIT
#
# Common subset; split from emu.crypto (MicroPython compile memory). Verified against the
# `cryptography` package and the GB/T vector in tests.
import array
import struct

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
    t = array.array("I", bytes(1024))
    for b in range(256):
        x = _SM4_S[b] << 24
        t[b] = x ^ _rotl(x, 2) ^ _rotl(x, 10) ^ _rotl(x, 18) ^ _rotl(x, 24)
    return t


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
    if len(_RK_CACHE) >= 6:
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
