# test_sync_fuzz: >= 10 000 fuzzed frames at each side: no crash, only clear errors.
import os
import random
import struct

from fw import sync_fixtures as fx

from depot.client import Keyring, SyncClient, SyncFailure
from depot.db import DepotDB
from validator.sync import auth_host, wire_host
from validator.sync.session import Session

N_DEVICE = 12000
N_HOST = 10000
TYPES = (
    wire_host.T_HELLO, wire_host.T_CHALLENGE, wire_host.T_AUTH, wire_host.T_INFO,
    wire_host.T_INFO_REQ, wire_host.T_PULL, wire_host.T_RECORDS, wire_host.T_ACK,
    wire_host.T_PULL_END, wire_host.T_PUSH_BEGIN, wire_host.T_PUSH_DATA, wire_host.T_PUSH_END,
    wire_host.T_PUSH_ACK, wire_host.T_SET_CLOCK, wire_host.T_GET_FAULTS, wire_host.T_FAULTS,
    wire_host.T_RESULT, wire_host.T_BYE, wire_host.T_ERROR, 0x00, 0x55, 0xFF,
)


def _payload(rng):
    k = rng.random()
    if k < 0.4:
        n = rng.randrange(0, 12)
    elif k < 0.8:
        n = rng.randrange(0, 80)
    else:
        n = rng.randrange(0, wire_host.MAX_PAYLOAD)
    return rng.randbytes(n)


def _device_rig():
    log = fx.real_log_or_none() or fx.MemLog()
    for _ in range(20):
        fx.add_record(log)
    target = fx.make_target(0, log=log)
    link, h2d, d2h = fx.link_pair()
    sess = Session(link, target, fx.KEYS, os.urandom, target.clock)
    return log, target, sess, fx.MiniHost(sess, h2d, d2h)


def _fuzz_frame(rng, host):
    """One hostile frame: random fields, MAC'd with the real session key or not, or a valid
    frame with bytes flipped/dropped/inserted."""
    t = rng.choice(TYPES)
    p = _payload(rng)
    k = rng.random()
    if k < 0.45 and host.tx_mac is not None:
        host.seq += 1
        flags = wire_host.F_DEFLATE if rng.random() < 0.1 else 0
        # authenticated garbage, encrypted like every frame after AUTH (so it reaches the
        # handlers decrypted) or, now and then, a MAC'd clear frame (a downgrade)
        c = host.tx_cipher if rng.random() < 0.9 else None
        return wire_host.frame(t, p, host.seq, flags, host.tx_mac, c)
    f = bytearray(wire_host.frame(t, p, rng.randrange(0, 1 << 32), 0, None))
    if k < 0.7:
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(3)
            i = rng.randrange(len(f))
            if op == 0:
                f[i] ^= 1 << rng.randrange(8)
            elif op == 1:
                del f[i]
            else:
                f.insert(i, rng.randrange(256))
    elif k < 0.8:
        f[3] = rng.randrange(256)  # unknown/contradictory flags (header check then fails)
    return bytes(f)


def test_device_when_10000_fuzzed_frames_never_crashes_and_still_serves():
    rng = random.Random(6)
    log, target, sess, host = _device_rig()
    versions0 = list(target.versions)
    sent = 0
    while sent < N_DEVICE:
        if rng.random() < 0.02 or (host.tx_mac is not None and not sess.authenticated()):
            host.tx_mac = None
            host.seq = 0
            typ, _ = host.handshake(nh=rng.randbytes(16))
            assert typ == wire_host.T_INFO, typ
        host.h2d.put(_fuzz_frame(rng, host))
        sent += 1
        for _ in range(6):  # device steps never raise
            sess.step()
        host.d2h.clear()
        if rng.random() < 0.01:
            host.h2d.put(rng.randbytes(rng.randrange(1, 300)))  # raw line noise
    for _ in range(300):
        sess.step()
    # nothing unsigned got activated, the device still works
    assert target.versions == versions0 and target.applied.active == {}
    host.tx_mac = None
    host.seq = 0
    host.dec.reset()
    host.d2h.clear()
    typ, p = host.handshake(nh=b"after-fuzz-nonce")
    assert typ == wire_host.T_INFO
    assert sess.dec.frames > N_DEVICE // 4
    assert sess.refused > 0


class _DeviceCipher:
    """crypt(seq, data) with the device session's own tx cipher (ctr.Ctr), so the fuzzing
    'device' encrypts as the real one would."""

    def __init__(self, ctr):
        self.ctr = ctr

    def crypt(self, seq, data):
        b = bytearray(data)
        self.ctr.begin(seq, b, 0, len(b))
        self.ctr.run(len(b) + 16)
        return bytes(b)


class FuzzDevicePort:
    """A hostile 'device': after a genuine handshake, answers every read with a fuzzed frame,
    half of them correctly MAC'd with the real session key."""

    def __init__(self, sess, h2d, d2h, rng):
        self.real = fx.PumpPort(sess, h2d, d2h)
        self.sess = sess
        self.rng = rng
        self.fuzz = False
        self.frames = 0
        self.in_waiting = 0

    def write(self, b):
        return self.real.write(b)

    def read(self, n):
        if not self.fuzz:
            return self.real.read(n)
        rng = self.rng
        self.frames += 1
        t = rng.choice(TYPES)
        p = _payload(rng)
        if t == wire_host.T_RECORDS and rng.random() < 0.5 and len(p) >= 8:
            b = bytearray(p)  # plausible batch headers, hostile lengths and seqs
            struct.pack_into(">IHH", b, 0, rng.randrange(0, 100), rng.randrange(3), 64)
            p = bytes(b)
        if rng.random() < 0.5:
            s = self.sess
            s._tx_seq += rng.choice((1, 1, 1, 0, -1))
            c = None
            if rng.random() < 0.9:  # mostly encrypted like the device's, else a downgrade
                c = _DeviceCipher(s._tx)
            return wire_host.frame(t, p, s._tx_seq, 0, s._tx, c)
        f = bytearray(wire_host.frame(t, p, rng.randrange(1 << 32)))
        if rng.random() < 0.5:
            f[rng.randrange(len(f))] ^= 0x40
        return bytes(f)


def test_host_when_10000_fuzzed_frames_only_clear_sync_errors(tmp_path):
    rng = random.Random(66)
    log = fx.MemLog()
    for _ in range(5):
        fx.add_record(log)
    target = fx.make_target(0, log=log)
    link, h2d, d2h = fx.link_pair()
    sess = Session(link, target, fx.KEYS, os.urandom, target.clock)
    port = FuzzDevicePort(sess, h2d, d2h, rng)
    db = DepotDB(str(tmp_path / "fuzz.sqlite"))
    blob = auth_host.make_content(fx.KC, wire_host.K_FARES, 2, b"f" * 5000)
    failures = ok = 0
    while port.frames < N_HOST:
        port.fuzz = False
        h2d.clear()  # a fresh connection: nothing left over from the last round
        d2h.clear()
        c = SyncClient(port, Keyring(devices={fx.DEVICE_ID: fx.KD}), timeout=1.0)
        c.connect()
        c.timeout = 0.05
        port.fuzz = True
        op = rng.randrange(5)
        try:
            if op == 0:
                c.pull(db, window=2, max_records=4)
            elif op == 1:
                c.push(wire_host.K_FARES, blob)
            elif op == 2:
                c.set_clock(123)
            elif op == 3:
                c.faults()
            else:
                c.refresh_info()
            ok += 1
        except SyncFailure as e:
            assert str(e)  # a message a field engineer can read
            failures += 1
    assert failures > 100
    db.close()
