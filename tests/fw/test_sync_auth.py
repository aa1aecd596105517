# test_sync_auth: HMAC-SHA256 vectors, key blob, signed content container (PROTOCOL.md §2, §5).
# SPDX-License-Identifier: MIT
from binascii import hexlify

from fwtest import raises
from validator.errors import SyncError
from validator.sync import auth, auth_host

KC = b"\x0b" * 32  # an Ed25519 private key (the back office's); KP its public key
KP = auth_host.content_public(KC)


def test_hmac_when_rfc4231_vectors_match():
    # RFC 4231 §4.2 case 1, §4.3 case 2, §4.7 case 6 (key longer than the block)
    assert hexlify(auth_host.hmac_sha256(b"\x0b" * 20, b"Hi There")) == (
        b"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    )
    assert hexlify(auth_host.hmac_sha256(b"Jefe", b"what do ya want for nothing?")) == (
        b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    msg = b"Test Using Larger Than Block-Size Key - Hash Key First"
    big = auth_host.hmac_sha256(b"\xaa" * 131, msg)
    assert hexlify(big) == b"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_keys_when_blob_roundtrips_fields_match():
    blob = auth_host.make_keys(0x01020304, b"d" * 32, b"c" * 32)
    assert len(blob) == auth_host.KEYS_LEN
    assert auth.parse_keys(blob) == (0x01020304, b"d" * 32, b"c" * 32)


def test_keys_when_blob_corrupt_sync_error():
    blob = bytearray(auth_host.make_keys(7, b"d" * 32, b"c" * 32))
    blob[20] ^= 1
    raises(SyncError, auth.parse_keys, blob)
    raises(SyncError, auth.parse_keys, blob[:10])


def test_content_when_signed_verify_gives_kind_version_and_body_view():
    body = b"\x00" * 8 + b"\x11" * 8
    blob = auth_host.make_content(KC, 1, 5, body)
    kind, version, b = auth.verify_content(KP, blob)
    assert (kind, version, bytes(b)) == (1, 5, body)
    assert isinstance(b, memoryview)  # a view into the container, not a copy
    assert auth.content_header(blob, len(blob)) == (1, 5, 16)
    assert auth.content_header(blob, len(blob) + 1) is None  # body_len disagrees


def test_content_when_forged_or_wrong_key_verify_refuses():
    blob = bytearray(auth_host.make_content(KC, 1, 5, b"\x22" * 64))
    assert not auth.verify_content(b"\x0c" * 32, blob)
    blob[20] ^= 1
    assert not auth.verify_content(KP, blob)
    assert not auth.verify_content(KP, b"")
    assert not auth.verify_content(KP, b"YKC2" + b"\x00" * 92)
    short = auth_host.make_content(KC, 1, 5, b"abc")[:-1]
    assert not auth.verify_content(KP, short)


def _final(v):
    """Run the verifier's stepped signature check to its verdict."""
    for r in v.final():
        if r is not None:
            return r[0]


def test_content_when_streamed_incremental_verifier_agrees():
    blob = auth_host.make_content(KC, 3, 9, bytes(range(256)) * 5)
    for step in (1, 7, 14, 64, 1000, len(blob)):
        v = auth.ContentVerifier(KP, len(blob))
        body = bytearray()
        for i in range(0, len(blob), step):
            b = v.update(memoryview(blob)[i : i + step])
            if b is not None:  # only body bytes come back: no header, no signature
                assert v.body_at == len(body)
                body.extend(b)
        assert _final(v) and bytes(body) == bytes(range(256)) * 5
        assert v.header() == (3, 9, 1280)
    bad = bytearray(blob)
    bad[-1] ^= 1
    v = auth.ContentVerifier(KP, len(bad))
    v.update(bad)
    assert not _final(v)
    v = auth.ContentVerifier(KP, len(blob))
    v.update(memoryview(blob)[0:13])
    assert v.header() is None  # not all 14 header bytes yet


def test_session_keys_when_derived_each_side_mirrors_other():
    dtx, drx, dek, drk = auth.session_keys(b"k" * 32, b"h" * 16, b"d" * 16, True)
    htx, hrx, hek, hrk = auth.session_keys(b"k" * 32, b"h" * 16, b"d" * 16, False)
    assert len(dtx) == 32 and dtx == hrx and drx == htx and dtx != drx
    dtx, drx, htx, hrx = auth.Hmac(dtx), auth.Hmac(drx), auth.Hmac(htx), auth.Hmac(hrx)
    out = bytearray(16)
    dtx.tag_into(b"12345678", b"payload", out)
    assert hrx.check(b"12345678", b"payload", out)
    assert not htx.check(b"12345678", b"payload", out)  # no reflection across directions
    assert not drx.check(b"12345678", b"payload", out)
    # the cipher keys mirror too, are AES-128, differ per direction and from the MAC keys
    assert dek == hrk and drk == hek and dek != drk and len(dek) == 16 == len(drk)
    e2 = auth.session_keys(b"k" * 32, b"h" * 16, b"e" * 16, True)[2]
    assert e2 != dek  # a fresh device nonce, fresh keys


def test_proofs_when_nonces_differ_proofs_differ():
    a = auth.device_proof(b"k" * 32, 1, b"h" * 16, b"d" * 16)
    b = auth.device_proof(b"k" * 32, 1, b"h" * 16, b"e" * 16)
    c = auth.host_proof(b"k" * 32, 1, b"h" * 16, b"d" * 16)
    assert a != b and a != c and len(a) == 32
