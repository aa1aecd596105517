# validator.sync.auth: HMAC-SHA256, sync session keys, frame MACs and content verification.
# SPDX-License-Identifier: MIT
#
# Common subset. MicroPython has no `hmac` module and its hashlib objects have no copy(),
# so HMAC (RFC 2104) is built here over hashlib.sha256 with the key's ipad/opad blocks
# computed once per key (toolchain.md §8: 8x faster than rebuilding the pads per call).
# PROTOCOL.md §2 (keys), §3 (challenge-response, session keys, replay), §5 (content).
import hashlib
import struct
from binascii import crc32

from micropython import const

from validator.errors import SyncError

_BLOCK = const(64)
# All private (inlined, no heap); host callers import public names (and the host-side
# helpers) from auth_host, and target.py / app/content.py keep checked copies
# (tests/host/test_sync_consts.py).
_DIGEST = const(32)
_NONCE_LEN = const(16)
_TAG_LEN = const(16)  # wire's _MAC_LEN
_KEYS_LEN = const(76)
_CONTENT_HDR = const(14)
_CONTENT_MAGIC = b"YKC1"


class Hmac:
    """HMAC-SHA256 with precomputed pads. digest(*parts) hashes the concatenation.

    Also the per-direction frame MAC (PROTOCOL.md §1): tag_into/check use
    HMAC(K, hdr ‖ payload)[:16]. (It was a FrameMac class wrapping an Hmac: one class and
    object fewer; auth_host.FrameMac names it for host callers.)
    """

    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        ipad = bytearray(_BLOCK)
        opad = bytearray(_BLOCK)
        for i in range(_BLOCK):
            k = key[i] if i < len(key) else 0
            ipad[i] = k ^ 0x36
            opad[i] = k ^ 0x5C
        self._ipad = bytes(ipad)
        self._opad = bytes(opad)

    def inner(self):
        h = hashlib.sha256()
        h.update(self._ipad)
        return h

    def outer(self, inner_digest):
        h = hashlib.sha256()
        h.update(self._opad)
        h.update(inner_digest)
        return h.digest()

    def digest(self, a, b=None, c=None, d=None):
        h = hashlib.sha256()
        h.update(self._ipad)
        h.update(a)
        if b is not None:
            h.update(b)
        if c is not None:
            h.update(c)
        if d is not None:
            h.update(d)
        return self.outer(h.digest())

    def tag_into(self, hdr, payload, out):
        t = self.digest(hdr, payload)
        for i in range(_TAG_LEN):
            out[i] = t[i]

    def check(self, hdr, payload, tag):
        if tag is None:
            return False
        return equal(self.digest(hdr, payload)[:_TAG_LEN], tag)


def equal(a, b):
    """Constant-time compare of two byte sequences of equal length."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


# -- challenge-response (PROTOCOL.md §3.1, §3.2) -------------------------------------


def _id4(device_id):
    if isinstance(device_id, int):
        return struct.pack(">I", device_id)
    return bytes(device_id)


def device_proof(kd, device_id, nh, nd):
    return Hmac(kd).digest(b"YKD1", _id4(device_id), nh, nd)


def host_proof(kd, device_id, nh, nd):
    return Hmac(kd).digest(b"YKH1", _id4(device_id), nd, nh)


def session_macs(kd, nh, nd, device_side):
    """-> (tx frame MAC, rx frame MAC) Hmac objects for one side of a session."""
    ks = Hmac(kd).digest(b"YKS1", nh, nd)
    h = Hmac(ks)
    d2h = Hmac(h.digest(b"d2h"))
    h2d = Hmac(h.digest(b"h2d"))
    if device_side:
        return d2h, h2d
    return h2d, d2h


# -- provisioning blob (PROTOCOL.md §2) ------------------------------------------------


def parse_keys(blob):
    """-> (device_id int, Kd bytes, Kc bytes); SyncError when malformed."""
    if len(blob) != _KEYS_LEN or bytes(blob[:4]) != b"YKK1":
        raise SyncError("key blob: bad magic/length")
    if struct.unpack_from(">I", blob, 72)[0] != crc32(blob[:72]):
        raise SyncError("key blob: bad CRC")
    return struct.unpack_from(">I", blob, 4)[0], bytes(blob[8:40]), bytes(blob[40:72])


# -- back-office content (PROTOCOL.md §5) ----------------------------------------------


def content_header(blob):
    """-> (kind, version, body_len) of a content container, or None if malformed."""
    if len(blob) < _CONTENT_HDR + _DIGEST or bytes(blob[:4]) != _CONTENT_MAGIC:
        return None
    kind, flags, version, blen = struct.unpack_from(">BBII", blob, 4)
    if flags != 0 or _CONTENT_HDR + blen + _DIGEST != len(blob):
        return None
    return kind, version, blen


class ContentVerifier:
    """Incremental verify_content for containers streamed into flash.

    update(chunk) with every byte of the container in order (tag included), then
    final() -> bool. The last 32 bytes seen are the tag; they are not hashed.
    """

    def __init__(self, content_key, total_len):
        self._hm = Hmac(content_key)
        self._h = self._hm.inner()
        self._total = total_len
        self._seen = 0
        self._tag = bytearray(_DIGEST)
        self._hdr = bytearray(_CONTENT_HDR)

    def update(self, chunk):
        n = len(chunk)
        body_end = self._total - _DIGEST
        s = self._seen
        for i in range(n):  # header bytes (first 14) are kept for the format check
            if s + i >= _CONTENT_HDR:
                break
            self._hdr[s + i] = chunk[i]
        if s < body_end:
            k = body_end - s
            if k > n:
                k = n
            self._h.update(chunk[:k] if k < n else chunk)
        for i in range(n):
            p = s + i - body_end
            if 0 <= p < _DIGEST:
                self._tag[p] = chunk[i]
        self._seen = s + n

    def header(self):
        """-> (kind, version, body_len) from the bytes seen so far, or None."""
        if self._seen < _CONTENT_HDR or bytes(self._hdr[:4]) != _CONTENT_MAGIC:
            return None
        kind, flags, version, blen = struct.unpack_from(">BBII", self._hdr, 4)
        return kind, version, blen

    def final(self):
        if self._seen != self._total or self._total < _CONTENT_HDR + _DIGEST:
            return False
        if bytes(self._hdr[:4]) != _CONTENT_MAGIC:
            return False
        flags = self._hdr[5]
        blen = struct.unpack_from(">I", self._hdr, 10)[0]
        if flags != 0 or _CONTENT_HDR + blen + _DIGEST != self._total:
            return False
        return equal(self._hm.outer(self._h.digest()), self._tag)


def verify_content(content_key, blob):
    """The one back-office content check: True only for a well-formed container whose
    HMAC-SHA256 tag under content_key is right. Call before activating any pushed list,
    table or configuration (storage, rules). Never raises on bad data."""
    try:
        if content_header(blob) is None:
            return False
        n = len(blob) - _DIGEST
        mv = memoryview(blob)
        return equal(Hmac(content_key).digest(mv[:n]), mv[n:])
    except Exception:
        return False
