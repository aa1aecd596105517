# validator.sync.ctr: the frame cipher, AES-128-CTR from AES-ECB (PROTOCOL.md §3.4).
# SPDX-License-Identifier: MIT
#
# Common subset. Imported by the session at AUTH and dropped when the session ends
# (auth.drop, like ed25519): its class and functions take heap only while a session is
# authenticated, not all day (measured in the 128 KiB world of tests/host/test_heap_budget.py:
# +128 B after a day instead of +448 B with the class kept in auth).
from validator.sync.auth import Hmac


class Ctr(Hmac):
    """One direction's frame MAC and AES-128-CTR frame cipher (PROTOCOL.md §1, §3.4), CTR
    built from ECB. An Hmac (tag_into/check: the frame MAC) that also encrypts: one object
    per direction, made at AUTH (mac_key None: a cipher alone, for tests).

    Counter block j of the frame with seq: dir(1) | 0(3) | seq(4) | 0(4) | j(4); the
    sender's seq strictly increases within a session and each direction has its own key, so
    no counter block repeats under a key. begin(seq, buf, at, end) starts a payload
    buf[at:end]; run(n) XORs the keystream into at most n more bytes (n a multiple of 16) in
    place and -> True when the payload is done, so a sync step does a bounded slice.
    scratch: 32 bytes, the counter block and its keystream block, that a session's two
    directions share (a run writes the block whole first; the session lends its spent
    nonces). Nothing is allocated per frame; a session adds its pads and AES contexts.
    AES-128-ECB is MicroPython's cryptolib (unix and ESP32 ports; its CTR mode 6 is built on
    neither, so CTR is made here); under CPython the cryptolib shim (host_tools/shims).
    """

    def __init__(self, direction, key, mac_key=None, scratch=None):
        if mac_key is not None:
            Hmac.__init__(self, mac_key)
        self._aes = ecb(key)
        self._dir = direction
        v = memoryview(scratch if scratch is not None else bytearray(32))
        self._b = v[0:16]  # the counter block
        self._k = v[16:32]  # its keystream
        self._seq = 0
        self._j = 0
        self.buf = None
        self.at = 0
        self.end = 0
        self.keys = None  # the session's keys, kept by the session's rx one (session._park)

    def begin(self, seq, buf, at, end):
        self._seq = seq
        self._j = 0
        self.buf = buf
        self.at = at
        self.end = end

    def run(self, n):
        o = self.at
        e = self.end
        lim = o + n
        if lim > e:
            lim = e
        b = self._b
        k = self._k
        q = self._seq  # the block is shared: written whole here, the index per block below
        b[0] = self._dir
        b[1] = b[2] = b[3] = b[8] = b[9] = b[10] = b[11] = b[12] = 0
        b[4] = (q >> 24) & 0xFF
        b[5] = (q >> 16) & 0xFF
        b[6] = (q >> 8) & 0xFF
        b[7] = q & 0xFF
        a = self._aes
        m = self.buf
        j = self._j
        while o < lim:
            b[13] = (j >> 16) & 0xFF
            b[14] = (j >> 8) & 0xFF
            b[15] = j & 0xFF
            a.encrypt(b, k)  # a method call, not a bound method: no allocation
            j += 1
            if lim - o >= 16:
                m[o] ^= k[0]
                m[o + 1] ^= k[1]
                m[o + 2] ^= k[2]
                m[o + 3] ^= k[3]
                m[o + 4] ^= k[4]
                m[o + 5] ^= k[5]
                m[o + 6] ^= k[6]
                m[o + 7] ^= k[7]
                m[o + 8] ^= k[8]
                m[o + 9] ^= k[9]
                m[o + 10] ^= k[10]
                m[o + 11] ^= k[11]
                m[o + 12] ^= k[12]
                m[o + 13] ^= k[13]
                m[o + 14] ^= k[14]
                m[o + 15] ^= k[15]
                o += 16
            else:
                for i in range(lim - o):
                    m[o + i] ^= k[i]
                o = lim
        self.at = o
        self._j = j
        if o >= e:
            self.buf = None
            return True
        return False


def ecb(key):
    """AES-128-ECB with encrypt(in, out): MicroPython's cryptolib (host_tools/shims has
    its CPython stand-in)."""
    import cryptolib

    return cryptolib.aes(key, 1)
