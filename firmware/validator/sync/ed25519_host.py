# validator.sync.ed25519_host: Ed25519 key generation and signing (RFC 8032 §5.1.5, §5.1.6).
# SPDX-License-Identifier: MIT
#
# The back office's half of validator.sync.ed25519: host tools and tests only, never
# imported by the firmware. Common subset (tier-1 tests sign on MicroPython); CPython's
# hashlib.sha512 is used where it exists. Cross-checked against `cryptography` and the
# RFC 8032 §7.1 vectors in tests/host/test_security_ed25519.py.
import hashlib

from validator.sync import ed25519 as _e

_h512 = getattr(hashlib, "sha512", None)  # CPython's; MicroPython has none


def _sha512(m):
    return _h512(m).digest() if _h512 is not None else _e.sha512(m)


# the signer's own curve constants (validator.sync.ed25519 keeps its in a bytes literal)
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493  # group order
_BY = 4 * pow(5, _P - 2, _P) % _P
_BX = 0x216936D3CD6E53FEC0A4E231FDD6DC5C692CC7609525A7B2C9562D608F25D51A
_B = (_BX, _BY, 1, _BX * _BY % _P)


def _base_mul(n):
    """encode([n]B), double-and-add (the signer's secrets are not on a validator)."""
    q = (0, 1, 1, 0)
    for i in range(255, -1, -1):
        q = _e._dbl(q)
        if (n >> i) & 1:
            q = _e._add(q, _B)
    x, y, z, _ = q
    zi = pow(z, _P - 2, _P)
    return ((y * zi % _P) | (((x * zi % _P) & 1) << 255)).to_bytes(32, "little")


def _secret(seed):
    if len(seed) != 32:
        raise ValueError("an Ed25519 private key is 32 bytes")
    h = _sha512(bytes(seed))
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def public_key(seed):
    """The 32-byte public key of a 32-byte private key (seed)."""
    return _base_mul(_secret(seed)[0])


def sign(seed, msg, pub=None):
    """The 64-byte Ed25519 signature of msg under the private key seed."""
    a, prefix = _secret(seed)
    if pub is None:
        pub = _base_mul(a)
    msg = bytes(msg)
    r = int.from_bytes(_sha512(prefix + msg), "little") % _L
    rb = _base_mul(r)
    k = int.from_bytes(_sha512(rb + pub + msg), "little") % _L
    return rb + ((r + k * a) % _L).to_bytes(32, "little")
