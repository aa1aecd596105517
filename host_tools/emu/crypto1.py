# emu.crypto1: the MIFARE Classic stream cipher (Crypto1), its nonce PRNG and both ends of
# the three-pass authentication, written from the published description.
# SPDX-License-Identifier: MIT
#
# Common subset (CPython and MicroPython: plain ints, no big tables). Sources: F. Garcia,
# G. de Koning Gans, R. Muijrers, P. van Rossum, R. Verdult, R. Wichers Schreur, B. Jacobs,
# "Dismantling MIFARE Classic" (ESORICS 2008) §2-§3: a 48-bit LFSR x0..x47 with feedback
# taps 0 5 9 10 12 14 15 17 19 24 25 27 29 35 39 41 42 43, a two-layer non-linear filter
# over x9, x11, .., x47 (fa, fb, fc), the 16-bit nonce LFSR x^16 + x^14 + x^13 + x^11 + 1
# with suc^64 / suc^96 as the reader and tag answers, and "the parity bit of each byte is
# encrypted with the keystream bit that encrypts the next data bit". Bit order on air: the
# bytes of a word in order, each least significant bit first (ISO 14443-3 §6.1.2).
# Checked against published authentication traces in tests/host/test_m1_crypto1.py.
#
# The cipher state is an int: bit i = LFSR cell x_i. Every step outputs f(x) as the
# keystream bit, shifts x_i <- x_{i+1} and puts L(x) ^ input into x47.

_MASK48 = (1 << 48) - 1
# feedback taps of L (paper §2.2)
_TAPS = (0, 5, 9, 10, 12, 14, 15, 17, 19, 24, 25, 27, 29, 35, 39, 41, 42, 43)
_TAP_MASK = 0
for _t in _TAPS:
    _TAP_MASK |= 1 << _t


def _fa(a, b, c, d):
    return ((a | b) ^ (a & d)) ^ (c & ((a ^ b) | d))


def _fb(a, b, c, d):
    return ((a & b) | c) ^ ((a ^ b) & (c | d))


def _fc(a, b, c, d, e):
    return (a | ((b | e) & (d ^ e))) ^ ((a ^ (b & d)) & ((c ^ d) | (b & e)))


def _parity32(v):
    v ^= v >> 16
    v ^= v >> 8
    v ^= v >> 4
    v ^= v >> 2
    v ^= v >> 1
    return v & 1


def odd_parity(b):
    """ISO 14443-3 parity bit of a byte: the bit that makes the count of ones odd."""
    return _parity32(b & 0xFF) ^ 1


class Crypto1:
    """One end's cipher state. Crypto1(key) with key 6 bytes (as in the sector trailer)."""

    def __init__(self, key):
        k = bytes(key)
        if len(k) != 6:
            raise ValueError("a MIFARE key is 6 bytes")
        s = 0
        for i in range(48):  # x_i = key bit i in air order: bytes in order, LSB first
            if (k[i >> 3] >> (i & 7)) & 1:
                s |= 1 << i
        self.s = s

    def filter(self):
        """f(x): the keystream bit of the current state (no step)."""
        s = self.s

        def b(i):
            return (s >> i) & 1

        return _fc(
            _fa(b(9), b(11), b(13), b(15)),
            _fb(b(17), b(19), b(21), b(23)),
            _fb(b(25), b(27), b(29), b(31)),
            _fa(b(33), b(35), b(37), b(39)),
            _fb(b(41), b(43), b(45), b(47)),
        )

    def bit(self, inp=0, encrypted=False):
        """One step: returns the keystream bit; the bit fed back is L(x) ^ inp, where inp is
        the plaintext -- when `encrypted`, inp is a ciphertext bit and is decrypted first
        (the tag receiving {nR})."""
        ks = self.filter()
        if encrypted:
            inp ^= ks
        fb = _parity32((self.s & _TAP_MASK) & 0xFFFFFFFF) ^ _parity32(
            (self.s & _TAP_MASK) >> 32
        )
        self.s = (self.s >> 1) | (((fb ^ inp) & 1) << 47)
        return ks

    def byte(self, inp=0, encrypted=False):
        out = 0
        for i in range(8):
            out |= self.bit((inp >> i) & 1, encrypted) << i
        return out

    def word(self, inp=0, encrypted=False):
        """32 steps over a word given as the int of its 4 bytes big-endian (air order:
        byte 0 first, LSB first); returns the keystream in the same representation."""
        out = 0
        for k in range(4):
            sh = 24 - 8 * k
            out |= self.byte((inp >> sh) & 0xFF, encrypted) << sh
        return out

    # -- frames after authentication --------------------------------------------------
    def encrypt(self, data):
        """Encrypt a frame (bytes): -> (ciphertext bytes, encrypted parity bits bytes)."""
        out = bytearray(len(data))
        par = bytearray(len(data))
        for i, p in enumerate(bytes(data)):
            out[i] = p ^ self.byte(0)
            par[i] = odd_parity(p) ^ self.filter()
        return bytes(out), bytes(par)

    def decrypt(self, data, par=None):
        """Decrypt a frame; with par (encrypted parity bits) -> (plaintext, parity_ok)."""
        out = bytearray(len(data))
        ok = True
        for i, c in enumerate(bytes(data)):
            p = c ^ self.byte(0)
            out[i] = p
            if par is not None and (par[i] ^ self.filter()) != odd_parity(p):
                ok = False
        return bytes(out), ok

    def nibble(self, v):
        """Encrypt/decrypt a 4-bit ACK/NAK (the same operation)."""
        out = 0
        for i in range(4):
            out |= (((v >> i) & 1) ^ self.bit(0)) << i
        return out


# ---- the tag's nonce PRNG (paper §2.3) -------------------------------------------------------
def _swap32(x):
    return ((x & 0xFF) << 24) | ((x & 0xFF00) << 8) | ((x >> 8) & 0xFF00) | (x >> 24)


def prng_successor(x, n):
    """suc^n(x) of a 32-bit nonce (big-endian int of its 4 bytes): n steps of the 16-bit
    LFSR x^16 + x^14 + x^13 + x^11 + 1 that generates the tag nonce."""
    x = _swap32(x & 0xFFFFFFFF)
    for _ in range(n):
        x = (x >> 1) | ((((x >> 16) ^ (x >> 18) ^ (x >> 19) ^ (x >> 21)) & 1) << 31)
    return _swap32(x)


def crc_a(data):
    """ISO 14443-3 CRC_A (initial 0x6363, reflected poly 0x8408): 2 bytes, LSB first."""
    crc = 0x6363
    for b in bytes(data):
        b ^= crc & 0xFF
        b = (b ^ (b << 4)) & 0xFF
        crc = ((crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)) & 0xFFFF
    return bytes((crc & 0xFF, crc >> 8))


def u32(b, off=0):
    return (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]


def p32(v):
    return bytes(((v >> 24) & 0xFF, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF))


# ---- the three-pass authentication (paper §3) ------------------------------------------------
# tag -> reader   nT (plain; encrypted in a nested authentication)
# reader -> tag   {nR} {aR}, aR = suc^64(nT)      (8 bytes, encrypted parity)
# tag -> reader   {aT}, aT = suc^96(nT)
class ReaderAuth:
    """The reader's side (the PN532's own Crypto1 unit)."""

    def __init__(self, key, uid4):
        self.c = Crypto1(key)
        self.uid = u32(bytes(uid4))
        self.nt = 0

    def answer(self, nt_bytes, nr, nt_par=None, nested=False):
        """nT received (4 bytes; encrypted when nested) -> (8 bytes {nR}{aR}, parity)."""
        c = self.c
        v = u32(bytes(nt_bytes))
        if nested:
            # the tag sent nT ^ ks while feeding uid ^ nT: decrypt as we feed
            ks = c.word(self.uid ^ v, True)
            nt = v ^ ks
        else:
            c.word(self.uid ^ v)
            nt = v
        self.nt = nt
        out = bytearray(8)
        par = bytearray(8)
        for k in range(4):
            p = (nr >> (24 - 8 * k)) & 0xFF
            out[k] = p ^ c.byte(p)
            par[k] = odd_parity(p) ^ c.filter()
        ar = prng_successor(nt, 64)
        for k in range(4):
            p = (ar >> (24 - 8 * k)) & 0xFF
            out[4 + k] = p ^ c.byte(0)
            par[4 + k] = odd_parity(p) ^ c.filter()
        return bytes(out), bytes(par)

    def check(self, at_bytes, par=None):
        """{aT} from the tag: True when it decrypts to suc^96(nT) (with good parity)."""
        p, ok = self.c.decrypt(at_bytes, par)
        return ok and u32(p) == prng_successor(self.nt, 96)


class TagAuth:
    """The card's side. start() -> nT bytes to send; verify({nR}{aR}, parity) -> {aT}
    bytes and parity, or None when the reader does not know the key."""

    def __init__(self, key, uid4, nt):
        self.c = Crypto1(key)
        self.uid = u32(bytes(uid4))
        self.nt = nt & 0xFFFFFFFF

    def start(self, nested=False):
        if nested:
            ks = self.c.word(self.uid ^ self.nt)
            return p32(self.nt ^ ks), None
        self.c.word(self.uid ^ self.nt)
        return p32(self.nt), None

    def verify(self, data, par=None):
        c = self.c
        d = bytes(data)
        if len(d) != 8:
            return None
        ok = True
        for k in range(4):  # {nR}: decrypted while fed
            ks = c.byte(d[k], True)
            p = d[k] ^ ks
            if par is not None and (par[k] ^ c.filter()) != odd_parity(p):
                ok = False
        ar, pok = c.decrypt(d[4:8], None if par is None else par[4:8])
        if not ok or not pok or u32(ar) != prng_successor(self.nt, 64):
            return None
        return c.encrypt(p32(prng_successor(self.nt, 96)))
