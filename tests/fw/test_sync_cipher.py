# test_sync_cipher: the frame cipher (PROTOCOL.md §3.4) -- AES-128-CTR built from cryptolib's
# ECB on the device -- against a known answer, and the session's refusal rules: a flipped
# ciphertext bit is refused by the MAC before anything is decrypted, a MAC'd clear frame
# after AUTH (a downgrade) is refused, a seq never wraps. Runs on MicroPython (make test-mp)
# and CPython.
import struct

# the fixtures (two 4 KiB pipes, a host mirror) beside the device session: the firmware's own
# 128 KiB budget is held by the tier-2 tests (tests/host/test_heap_budget.py, test_sync_mp.py)
MP_HEAP = "256k"

from fw.sync_fixtures import KEYS, MiniHost, link_pair, make_target
from validator.sync import ctr, wire_host
from validator.sync.session import Session

KEY = bytes(range(16))
SEQ = 0x01020304
# AES-128-CTR keystream (40 bytes) for KEY from the counter block dir|000|SEQ|0*8, made with
# `cryptography` (modes.CTR) and pycryptodome (AES.MODE_CTR), which agree
KS_D2H = bytes.fromhex(
    "a13a1f06b7a842b819d80f9a1a0673a38d5dbc79536d8cd1e3663b45906555cc9eae27a3dd0a2a78")
KS_H2D = bytes.fromhex(
    "0411a3a21b497a0dddd29530e8d07c739ca41fe99227c6347900e76a50bf8911a335734069226043")


def _ks(direction, chunk):
    c = ctr.Ctr(direction, KEY)
    b = bytearray(40)
    c.begin(SEQ, b, 0, 40)
    steps = 1
    while not c.run(chunk):
        steps += 1
    return bytes(b), steps


def test_ctr_when_known_key_and_nonce_keystream_matches_independent_aes_ctr():
    assert _ks(wire_host.CTR_D2H, 512) == (KS_D2H, 1)
    assert _ks(wire_host.CTR_H2D, 512)[0] == KS_H2D  # the direction is in the counter
    # sliced 16 bytes per run: the same keystream in 3 slices (40 = 16 + 16 + 8)
    assert _ks(wire_host.CTR_D2H, 16) == (KS_D2H, 3)


def test_ctr_when_applied_twice_gives_the_plaintext_back_and_a_new_seq_a_new_stream():
    c = ctr.Ctr(1, KEY)
    msg = bytes(range(256)) + b"odd"
    b = bytearray(msg)
    c.begin(7, b, 0, len(b))
    assert c.run(512) and bytes(b) != msg
    ct = bytes(b)
    c.begin(7, b, 0, len(b))
    c.run(512)
    assert bytes(b) == msg
    c.begin(8, b, 0, len(b))
    c.run(512)
    assert bytes(b)[:16] != ct[:16]


def test_ctr_when_run_on_the_device_allocates_nothing_per_frame():
    try:
        import micropython

        lock = micropython.heap_lock
    except (ImportError, AttributeError):
        return  # CPython: no heap to lock
    c = ctr.Ctr(1, KEY)
    buf = memoryview(bytearray(560))
    c.begin(1, buf, 11, 11 + 530)  # warm up (first call paths)
    c.run(512)
    lock()
    try:
        c.begin(2, buf, 11, 11 + 529)
        done = 0
        while not c.run(256):
            done += 1
    finally:
        micropython.heap_unlock()
    assert done == 2  # 529 bytes in 3 slices (one partial block), no MemoryError when locked


def _setup():
    import gc

    gc.collect()
    link, h2d, d2h = link_pair()
    t = make_target(3)
    s = Session(link, t, KEYS, lambda n: b"\x22" * n, t.clock)
    h = MiniHost(s, h2d, d2h)
    typ, _ = h.handshake()
    assert typ == wire_host.T_INFO
    return s, t, h


def _frame_with_crc(f):
    """f with its CRC recomputed: what a line attacker sends (not noise)."""
    from binascii import crc32

    f = bytearray(f)
    struct.pack_into(">I", f, len(f) - 4, crc32(bytes(f[2:-4])))
    return bytes(f)


def test_session_when_ciphertext_bit_flipped_mac_refuses_before_any_decrypt():
    s, t, h = _setup()
    clock0 = t.clock.secs
    begun = []
    rx = s._rx
    orig = rx.begin
    rx.begin = lambda seq, buf, at, end: (begun.append(seq), orig(seq, buf, at, end))
    h.seq += 1
    f = bytearray(wire_host.frame(wire_host.T_SET_CLOCK, struct.pack(">I", clock0 + 60), h.seq,
                                  0, h.tx_mac, h.tx_cipher))
    assert f[3] & wire_host.F_ENC
    f[wire_host.HDR + 2] ^= 0x01  # one ciphertext bit
    h.h2d.put(_frame_with_crc(f))
    typ, p, _ = h.pump()
    assert typ == wire_host.T_ERROR and p == bytes([wire_host.E_MAC])
    assert begun == [] and t.clock.secs == clock0 and not s.authenticated()


def test_session_when_attacker_strips_the_enc_flag_mac_refuses():
    # the flags byte is in the MAC'd header: clearing F_ENC on the line breaks the MAC
    s, t, h = _setup()
    clock0 = t.clock.secs
    h.seq += 1
    f = bytearray(wire_host.frame(wire_host.T_SET_CLOCK, struct.pack(">I", clock0 + 60), h.seq,
                                  0, h.tx_mac, h.tx_cipher))
    f[3] &= ~wire_host.F_ENC
    from binascii import crc32

    f[10] = crc32(bytes(f[2:10])) & 0xFF  # a valid header check byte for the new flags
    h.h2d.put(_frame_with_crc(f))
    typ, p, _ = h.pump()
    assert typ == wire_host.T_ERROR and p == bytes([wire_host.E_MAC])
    assert t.clock.secs == clock0


def test_session_when_post_auth_frame_is_clear_downgrade_refused_and_session_ends():
    s, t, h = _setup()
    clock0 = t.clock.secs
    # MAC'd with the right session key (a host that skips encryption), payload in clear
    h.send(wire_host.T_SET_CLOCK, struct.pack(">I", clock0 + 60), clear=True)
    typ, p, d = h.pump()
    assert typ == wire_host.T_ERROR and p == bytes([wire_host.E_PROTO])
    assert d.flags & wire_host.F_ENC  # the device's own ERROR still goes encrypted
    assert t.clock.secs == clock0 and not s.authenticated() and s.refused == 1
    # the same request encrypted, in a new session, is acted on
    h.tx_mac = None
    h.seq = 0
    typ, _ = h.handshake(nh=b"M" * 16)
    assert typ == wire_host.T_INFO
    h.send(wire_host.T_SET_CLOCK, struct.pack(">I", clock0 + 60))
    typ, p, _ = h.pump()
    assert typ == wire_host.T_RESULT and p[1] == wire_host.OK and t.clock.secs == clock0 + 60


def test_session_when_every_device_frame_after_auth_is_encrypted_and_decrypts():
    s, t, h = _setup()
    h.send(wire_host.T_PULL, struct.pack(">IBHB", 1, 1, 0, 0))
    typ, p, d = h.pump()
    assert typ == wire_host.T_RECORDS and d.flags & wire_host.F_ENC and d.flags & wire_host.F_MAC
    first, count, rs = struct.unpack_from(">IHH", p, 0)
    assert (first, count) == (1, 3)
    raw = bytes(d.payload)  # still the ciphertext in the decoder
    for seq in (1, 2, 3):
        rec = t.log.recs[seq]
        assert rec in p and rec not in raw


def test_session_when_tx_seq_at_its_last_value_session_ends_instead_of_wrapping():
    s, t, h = _setup()
    s._tx_seq = wire_host.SEQ_LAST
    h.send(wire_host.T_INFO_REQ)
    typ, _, _ = h.pump(200)
    assert typ is None and not s.authenticated()  # nothing sent under a reused seq
