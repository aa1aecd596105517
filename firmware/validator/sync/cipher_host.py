# validator.sync.cipher_host: the host side of the frame cipher (PROTOCOL.md §3.4).
# SPDX-License-Identifier: MIT
#
# AES-128-CTR from `cryptography` for the depot client and tests: an implementation
# independent of the device's (validator.sync.ctr over cryptolib's ECB). Host tools and
# tests only: the firmware never imports it. Kept out of auth_host so tier-1 tests that
# sign content at 128 KiB do not pay for it.
import struct


def ctr_block(direction, seq):
    """The first counter block of a frame: dir(1) | 0(3) | seq(4) | 0(8) (PROTOCOL.md §3.4)."""
    return bytes([direction, 0, 0, 0]) + struct.pack(">I", seq) + bytes(8)


class FrameCipher:
    """One direction's frame cipher for host tools: crypt(seq, data) -> bytes (encrypt and
    decrypt are the same XOR). AES-128-CTR from `cryptography` (its 128-bit big-endian
    counter, started at ctr_block(direction, seq), is exactly the device's block layout),
    an implementation independent of the device's (ctr.Ctr over cryptolib's ECB); on
    MicroPython (tier-1 test hosts) it falls back to ctr.Ctr."""

    def __init__(self, key, direction):
        self.key = bytes(key)
        self.direction = direction
        try:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        except ImportError:
            from validator.sync.ctr import Ctr

            self._ctr = Ctr(direction, self.key)
            self._cipher = None
            return
        self._cipher = (Cipher, algorithms.AES(self.key), modes.CTR)

    def crypt(self, seq, data):
        if self._cipher is None:
            b = bytearray(data)
            self._ctr.begin(seq, b, 0, len(b))
            self._ctr.run(len(b) + 16)
            return bytes(b)
        cipher, aes, ctr = self._cipher
        e = cipher(aes, ctr(ctr_block(self.direction, seq))).encryptor()
        return e.update(bytes(data)) + e.finalize()
