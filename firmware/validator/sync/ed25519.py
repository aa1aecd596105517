# validator.sync.ed25519: Ed25519 signature verification (RFC 8032 §5.1.7), pure Python.
# SPDX-License-Identifier: MIT
#
# The validator holds only back-office public keys and checks content signatures with
# verify(). Common subset: MicroPython's big ints (mpz) carry the field arithmetic mod
# p = 2^255 - 19; MicroPython has no hashlib.sha512, so SHA-512 (FIPS 180-4) is here too.
# Sync / boot path only, never the tap path (bench_content_verify: content_verify_instr,
# content_verify_ms_mcu). Written for the 128 KiB heap: imported only for a check and
# dropped after it (sync.auth), so it is small -- four functions, few names (every function
# and name costs heap even run in place from ROM) -- and every allocation it makes is small
# (<= 128 bytes: a check runs at the end of a push in a heap a day of taps has fragmented,
# where not even a 512-byte block may exist: tests/host/test_heap_budget.py). The signing
# half lives in ed25519_host.
#
# Verification is cofactorless ([S]B == R + [k]A, checked as encode([S]B - [k]A) == R)
# with S < L and a canonical A required (RFC 8032 §5.1.7), and R compared as bytes with a
# canonical encoding, so a signature has exactly one accepted form (no malleability).
# The constants live in bytes literals, run in place from ROM at no heap cost: a big-int
# const() is a heap object (~128 bytes each, measured) for as long as the module is loaded.
# Little-endian, 32 bytes each; _c(i) reads one.
_C = (
    b"\xed\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"  # p = 2^255 - 19
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f"
    b"\xed\xd3\xf5\x5c\x1a\x63\x12\x58\xd6\x9c\xf7\xa2\xde\xf9\xde\x14"  # L, the group order
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10"
    b"\xa3\x78\x59\x13\xca\x4d\xeb\x75\xab\xd8\x41\x41\x4d\x0a\x70\x00"  # d = -121665/121666
    b"\x98\xe8\x79\x77\x79\x40\xc7\x8c\x73\xfe\x6f\x2b\xee\x6c\x03\x52"
    b"\x59\xf1\xb2\x26\x94\x9b\xd6\xeb\x56\xb1\x83\x82\x9a\x14\xe0\x00"  # 2d
    b"\x30\xd1\xf3\xee\xf2\x80\x8e\x19\xe7\xfc\xdf\x56\xdc\xd9\x06\x24"
    b"\xb0\xa0\x0e\x4a\x27\x1b\xee\xc4\x78\xe4\x2f\xad\x06\x18\x43\x2f"  # sqrt(-1)
    b"\xa7\xd7\xfb\x3d\x99\x00\x4d\x2b\x0b\xdf\xc1\x4f\x80\x24\x83\x2b"
    b"\x1a\xd5\x25\x8f\x60\x2d\x56\xc9\xb2\xa7\x25\x95\x60\xc7\x2c\x69"  # B.x
    b"\x5c\xdc\xd6\xfd\x31\xe2\xa4\xc0\xfe\x53\x6e\xcd\xd3\x36\x69\x21"
    b"\x58\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66"  # B.y
    b"\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66\x66"
    b"\xa3\xdd\xb7\xa5\xb3\x8a\xde\x6d\xf5\x52\x51\x77\x80\x9f\xf0\x20"  # B.x * B.y
    b"\x7d\xe3\xab\x64\x8e\x4e\xea\x66\x65\x76\x8b\xd7\x0f\x5f\x87\x67"
)
# SHA-512 initial hash value (FIPS 180-4 §5.3.5), 8 words big-endian
_IV = (
    b"\x6a\x09\xe6\x67\xf3\xbc\xc9\x08\xbb\x67\xae\x85\x84\xca\xa7\x3b"
    b"\x3c\x6e\xf3\x72\xfe\x94\xf8\x2b\xa5\x4f\xf5\x3a\x5f\x1d\x36\xf1"
    b"\x51\x0e\x52\x7f\xad\xe6\x82\xd1\x9b\x05\x68\x8c\x2b\x3e\x6c\x1f"
    b"\x1f\x83\xd9\xab\xfb\x41\xbd\x6b\x5b\xe0\xcd\x19\x13\x7e\x21\x79"
)


def _c(i):
    return int.from_bytes(_C[32 * i : 32 * i + 32], "little")


_P = _c(0)
_D2 = _c(3)
_M64 = (1 << 64) - 1


def _add(p, q):
    """Extended twisted Edwards addition, a = -1 (add-2008-hwcd-3)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = t1 * _D2 % _P * t2 % _P
    d = 2 * z1 * z2 % _P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _dbl(p):
    """Extended doubling, a = -1 (dbl-2008-hwcd)."""
    x1, y1, z1, _ = p
    a = x1 * x1 % _P
    b = y1 * y1 % _P
    c = 2 * z1 * z1 % _P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1) % _P
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def sha512(m):
    """SHA-512 of the bytes m -> 64 bytes (_sha run to the end)."""
    for r in _sha(m):
        if r is not None:
            return r[0]


def _sha(m):
    """SHA-512 of the bytes m as a generator: None after every 8 rounds, then (digest,).
    The round constants (the first 64 bits of the fractional parts of the cube roots of
    the first 80 primes, FIPS 180-4 §4.2.3) are computed as the rounds go, not kept in a
    table; the message schedule is a rolling window of 16 words and the padded message is
    built one 128-byte block at a time."""
    n = len(m)
    nb = (n + 17 + 127) // 128  # blocks, with the 0x80 byte and the 16-byte length
    blk = bytearray(128)
    hs = [int.from_bytes(_IV[8 * i : 8 * i + 8], "big") for i in range(8)]
    w = [0] * 16
    for o in range(0, nb * 128, 128):
        for i in range(128):
            j = o + i
            blk[i] = m[j] if j < n else (0x80 if j == n else 0)
        if o + 128 == nb * 128:
            blk[120:] = (n * 8).to_bytes(8, "big")
        for i in range(16):
            w[i] = int.from_bytes(blk[8 * i : 8 * i + 8], "big")
        a, bb, c, d, e, f, g, h = hs
        p = 1  # the last prime used for a round constant
        for i in range(80):
            if i & 7 == 7:
                yield None
            if i >= 16:  # w[i] over w[i - 16] in the window
                x = w[(i - 15) & 15]
                y = w[(i - 2) & 15]
                w[i & 15] = (w[i & 15] + w[(i - 7) & 15]
                             + (((x >> 1) | (x << 63)) ^ ((x >> 8) | (x << 56)) ^ (x >> 7))
                             + (((y >> 19) | (y << 45)) ^ ((y >> 61) | (y << 3)) ^ (y >> 6))
                             ) & _M64
            while True:  # the next prime
                p += 1
                x = 2
                while x * x <= p and p % x:
                    x += 1
                if x * x > p:
                    break
            y = p << 192
            x = 1 << 68  # > cbrt(409 << 192): Newton's iteration descends onto the root
            while True:
                k = (2 * x + y // (x * x)) // 3
                if k >= x:
                    break
                x = k
            t = (h + ((((e >> 14) | (e << 50)) ^ ((e >> 18) | (e << 46))
                       ^ ((e >> 41) | (e << 23))) & _M64) + ((e & f) ^ (~e & g))
                 + (x & _M64) + w[i & 15]) & _M64
            u = (((((a >> 28) | (a << 36)) ^ ((a >> 34) | (a << 30)) ^ ((a >> 39) | (a << 25)))
                  & _M64) + ((a & bb) ^ (a & c) ^ (bb & c)))
            h = g
            g = f
            f = e
            e = (d + t) & _M64
            d = c
            c = bb
            bb = a
            a = (t + u) & _M64
        v = (a, bb, c, d, e, f, g, h)
        for i in range(8):
            hs[i] = (hs[i] + v[i]) & _M64
    blk = bytearray(64)
    for i in range(8):
        blk[8 * i : 8 * i + 8] = hs[i].to_bytes(8, "big")
    yield (bytes(blk),)


def verify(pub, msg, sig):
    """True when sig (64 bytes) is pub's (32 bytes) Ed25519 signature of msg
    (verify_steps run to the end)."""
    for r in verify_steps(pub, msg, sig):
        if r is not None:
            return r[0]


def verify_steps(pub, msg, sig):
    """Ed25519 verification (RFC 8032 §5.1.7, cofactorless: encode([S]B - [k]A) == R) as
    a generator, so a sync task can check a signature between taps: None after each
    bounded slice (8 SHA-512 rounds, 8 scalar bits, 16 exponent bits: ~0.3 ms on the unix
    port), then (True,) or (False,). Never raises on bad input (wrong lengths, A off the
    curve or not canonical, S >= L): it ends (False,). R needs no decoding: the encoding
    compared against is canonical, so a non-canonical R never matches."""
    try:
        if len(pub) != 32 or len(sig) != 64:
            yield (False,)
            return
        s = int.from_bytes(sig[32:], "little")
        L = _c(1)
        if s >= L:
            yield (False,)
            return
        # decode A (RFC 8032 §5.1.3): x = u v^3 (u v^7)^((p-5)/8)
        y = int.from_bytes(pub, "little")
        sign = y >> 255
        y &= (1 << 255) - 1
        if y >= _P:
            yield (False,)
            return
        x = y * y % _P
        u = (x - 1) % _P
        v = (_c(2) * x + 1) % _P
        t = v * v % _P * v % _P
        b = u * t % _P * t % _P * v % _P
        x = 1
        for i in range(251, -1, -1):  # (p - 5) / 8 = 2^252 - 3: bits 251..2 set, 1 clear
            x = x * x % _P
            if i != 1:
                x = x * b % _P
            if i & 15 == 0:
                yield None
        x = u * t % _P * x % _P
        t = v * x % _P * x % _P
        if t != u:
            if t != _P - u:
                yield (False,)
                return
            x = x * _c(4) % _P
        if x == 0 and sign:
            yield (False,)
            return
        if x & 1 != sign:
            x = _P - x
        na = (_P - x, y, 1, (_P - x) * y % _P)  # -A
        x = y = u = v = t = b = 0  # the decoding's big ints go before the ladder
        k = bytearray(64 + len(msg))
        k[:32] = sig[:32]
        k[32:64] = pub
        k[64:] = msg
        for r in _sha(k):
            if r is None:
                yield None
        k = int.from_bytes(r[0], "little") % L
        r = L = None
        # [s]B + [k](-A), Straus: one doubling chain for both scalars (no table of
        # B + (-A): four big ints fewer held, an addition more per bit where both are set)
        b = (_c(5), _c(6), 1, _c(7))
        q = (0, 1, 1, 0)
        for i in range(255, -1, -1):
            q = _dbl(q)
            if (s >> i) & 1:
                q = _add(q, b)
            if (k >> i) & 1:
                q = _add(q, na)
            if i & 7 == 0:
                yield None
        x, y, z, _ = q
        b = z
        z = 1
        for i in range(254, -1, -1):  # z^(p - 2), p - 2 = 2^255 - 21: all bits but 4 and 2
            z = z * z % _P
            if i != 4 and i != 2:
                z = z * b % _P
            if i & 15 == 0:
                yield None
        yield ((y * z % _P | ((x * z % _P & 1) << 255)).to_bytes(32, "little")
               == bytes(sig[:32]),)
    except Exception:
        yield (False,)
