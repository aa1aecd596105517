"""Ed25519 on the validator (validator.sync.ed25519) and the back office's signer
(validator.sync.ed25519_host) against RFC 8032 §7.1 and an independent implementation
(`cryptography`), run on CPython here; the same code on MicroPython at 128 KiB in
tests/fw/test_security_fw.py. docs/SECURITY.md names these tests."""

import os
import random

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from validator.sync import ed25519, ed25519_host

L = 2**252 + 27742317777372353535851937790883648493

# RFC 8032 §7.1: TEST 1, TEST 2, TEST 3 and TEST 1024 (secret key, public key, message, sig)
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701"
     "cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d"
     "0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f7609"
     "84dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


def _raw_pub(priv):
    return priv.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


@pytest.mark.parametrize("sk,pk,msg,sig", RFC8032)
def test_ed25519_when_rfc8032_vectors_sign_and_verify_match(sk, pk, msg, sig):
    sk, pk, msg, sig = (bytes.fromhex(x) for x in (sk, pk, msg, sig))
    assert ed25519_host.public_key(sk) == pk
    assert ed25519_host.sign(sk, msg) == sig
    assert ed25519.verify(pk, msg, sig)
    assert not ed25519.verify(pk, msg + b"x", sig)


def test_ed25519_when_sha512_pure_matches_hashlib():
    import hashlib

    rnd = random.Random(7)
    for n in (0, 1, 46, 110, 111, 112, 127, 128, 129, 255, 256, 1000):
        m = bytes(rnd.getrandbits(8) for _ in range(n))
        assert ed25519.sha512(m) == hashlib.sha512(m).digest(), n


def test_ed25519_when_cross_checked_with_cryptography_both_agree():
    rnd = random.Random(16)
    for i in range(12):
        seed = bytes(rnd.getrandbits(8) for _ in range(32))
        msg = bytes(rnd.getrandbits(8) for _ in range(rnd.choice((0, 14, 46, 200))))
        ref = Ed25519PrivateKey.from_private_bytes(seed)
        pub = _raw_pub(ref)
        assert ed25519_host.public_key(seed) == pub
        sig = ed25519_host.sign(seed, msg)
        assert sig == ref.sign(msg)  # Ed25519 is deterministic: byte-equal
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)  # raises when wrong
        assert ed25519.verify(pub, msg, ref.sign(msg))
        bad = bytearray(sig)
        bad[i % 64] ^= 1 << (i % 8)
        assert not ed25519.verify(pub, msg, bytes(bad))
        with pytest.raises(InvalidSignature):
            Ed25519PublicKey.from_public_bytes(pub).verify(bytes(bad), msg)


def test_ed25519_when_signature_malleated_or_key_not_canonical_refused():
    seed = os.urandom(32)
    pub = ed25519_host.public_key(seed)
    sig = ed25519_host.sign(seed, b"fares v7")
    s = int.from_bytes(sig[32:], "little")
    assert not ed25519.verify(pub, b"fares v7", sig[:32] + (s + L).to_bytes(32, "little"))
    # y >= p (a non-canonical encoding of a small y) and a y off the curve
    p = 2**255 - 19
    assert not ed25519.verify((p + 1).to_bytes(32, "little"), b"fares v7", sig)
    assert not ed25519.verify((2).to_bytes(32, "little"), b"fares v7", sig)
    assert not ed25519.verify(pub, b"fares v7", sig[:63])
    assert not ed25519.verify(pub[:31], b"fares v7", sig)
    assert not ed25519.verify(pub, b"fares v7", bytes(64))


def test_ed25519_when_stepped_each_slice_is_small_and_result_equal():
    seed = os.urandom(32)
    pub = ed25519_host.public_key(seed)
    sig = ed25519_host.sign(seed, b"m" * 46)
    steps = 0
    for r in ed25519.verify_steps(pub, b"m" * 46, sig):
        steps += 1
        if r is not None:
            break
    assert r == (True,) and steps > 50  # many slices: a sync step never holds taps up long
