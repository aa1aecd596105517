# cryptolib shim for CPython: MicroPython's AES module (what the unix and ESP32 ports
# build in), so firmware code that uses it -- validator.sync.ctr, the frame cipher -- also
# runs under CPython (host tools, pytest, depot.devsim). Backed by `cryptography`.
# Only what the firmware uses and the ports offer by default: mode 1 (ECB), 16-byte keys
# and blocks; other modes raise ValueError("mode") as the unix port's does for CTR (6).
# Never put this folder on MICROPYPATH: a file module would shadow the built-in.
# SPDX-License-Identifier: MIT

MODE_ECB = 1


class aes:  # noqa: N801 -- cryptolib's own name
    def __init__(self, key, mode, iv=None):
        if mode != MODE_ECB:
            raise ValueError("mode")
        if len(key) not in (16, 32):
            raise ValueError("key")
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        c = Cipher(algorithms.AES(bytes(key)), modes.ECB())
        self._e = c.encryptor()
        self._d = c.decryptor()

    def _run(self, f, data, out):
        if len(data) % 16:
            raise ValueError("blksize")
        r = f.update(bytes(data))
        if out is None:
            return r
        out[: len(r)] = r
        return None

    def encrypt(self, data, out=None):
        return self._run(self._e, data, out)

    def decrypt(self, data, out=None):
        return self._run(self._d, data, out)
