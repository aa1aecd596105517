# test_sync_cipher_xcheck: the device's frame cipher (ctr.Ctr: CTR made from cryptolib's
# AES-ECB, in a real `micropython -X heapsize=128k`) against two independent AES-CTR
# implementations, `cryptography` (what the depot uses) and pycryptodome, for random keys,
# seqs, both directions and payload lengths up to a full frame, sliced as a sync step does.
import random
import subprocess

import pytest
from test_sync_mp import MP, ROOT, _env

from validator.sync import cipher_host

pytestmark = pytest.mark.skipif(not MP, reason="micropython runtime not installed")

SCRIPT = r"""
import sys
from binascii import hexlify, unhexlify
from validator.sync import ctr
for line in sys.stdin.read().split():
    key, d, seq, n, chunk = line.split(",")
    c = ctr.Ctr(int(d), unhexlify(key))
    b = bytearray(int(n))
    for i in range(len(b)):
        b[i] = i & 0xFF
    c.begin(int(seq), b, 0, len(b))
    while not c.run(int(chunk)):
        pass
    print(hexlify(b).decode())
"""


def _cases():
    rng = random.Random(16)
    out = []
    for i in range(24):
        sizes = (0, 1, 15, 16, 17, 511, 512, 513, 2047, 2048)
        n = sizes[i % 10] if i < 20 else rng.randrange(2049)
        seq = (1, 2, 0xFFFFFFFF, rng.randrange(1 << 32))[i % 4]
        out.append((rng.randbytes(16), 1 + i % 2, seq, n, (16, 64, 512)[i % 3]))
    return out


def test_device_ctr_when_compared_with_cryptography_and_pycryptodome_all_agree():
    from Crypto.Cipher import AES

    cases = _cases()
    inp = "\n".join("%s,%d,%d,%d,%d" % (k.hex(), d, s, n, c) for k, d, s, n, c in cases)
    p = subprocess.run([MP, "-X", "heapsize=128k", "-c", SCRIPT], input=inp, env=_env(),
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    got = p.stdout.split("\n")[: len(cases)]
    assert len(got) == len(cases), p.stdout
    for (key, d, seq, n, _), line in zip(cases, got, strict=True):
        plain = bytes(i & 0xFF for i in range(n))
        dev = bytes.fromhex(line)
        assert dev == cipher_host.FrameCipher(key, d).crypt(seq, plain), (d, seq, n)
        ref = AES.new(key, AES.MODE_CTR, nonce=b"",
                      initial_value=cipher_host.ctr_block(d, seq)).encrypt(plain)
        assert dev == ref, (d, seq, n)
        if n >= 16:
            assert dev != plain
