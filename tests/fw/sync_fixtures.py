# sync_fixtures: in-memory links, record log and a minimal host for the sync tests.
# SPDX-License-Identifier: MIT
#
# Common subset (runs under pytest and tests/mprun.py). Not a test module (no test_ prefix).
# MemLog has the shape of storage's RecordLog (first_seq/acked_seq/next_seq, read, ack);
# the integration tests in tests/host use the real RecordLog when it exists.
import struct

from depot.testkeys import TEST_CONTENT_KEY, TEST_CONTENT_PUB
from validator.sync import auth, cipher_host, wire, wire_host
from validator.sync.target import LogTarget

DEVICE_ID = 0x1234ABCD
KD = bytes(range(32))
KC = TEST_CONTENT_KEY  # the back office signs with it (auth_host.make_content) -- TEST key
KP = TEST_CONTENT_PUB  # the validator holds only this public key
KEYS = (DEVICE_ID, KD, KP)
REC_SIZE = 64


class Pipe:
    """One direction of a byte link: a preallocated ring (no heap churn in a 128 KiB heap).

    `budget` bytes may pass before the link is cut; after that bytes vanish and the writer
    cannot tell (a pulled cable). When the ring is full put() takes what fits (backpressure,
    like a UART FIFO)."""

    def __init__(self, cap=4096):
        self.buf = bytearray(cap)
        self.head = 0  # next byte to read
        self.n = 0
        self.budget = -1
        self.passed = 0

    def pending(self):
        return self.n

    def clear(self):
        self.head = self.n = 0

    def put(self, data, count=-1):
        want = len(data) if count < 0 else count
        n = want
        cut = False
        if self.budget >= 0:
            if n >= self.budget:
                n = self.budget
                cut = True
            self.budget -= n
        cap = len(self.buf)
        if n > cap - self.n:
            n = cap - self.n
        t = (self.head + self.n) % cap
        for i in range(n):
            self.buf[t] = data[i]
            t += 1
            if t == cap:
                t = 0
        self.n += n
        self.passed += n
        return want if cut else n

    def take_into(self, out):
        n = min(len(out), self.n)
        cap = len(self.buf)
        h = self.head
        for i in range(n):
            out[i] = self.buf[h]
            h += 1
            if h == cap:
                h = 0
        self.head = h
        self.n -= n
        return n

    def take(self, n):
        b = bytearray(min(n, self.n))
        self.take_into(b)
        return bytes(b)


class MemLink:
    """The device end of a link (hal ByteLink)."""

    def __init__(self, rx, tx, max_write=4096):
        self.rx = rx
        self.tx = tx
        self.max_write = max_write

    def write(self, buf, n):
        if n > self.max_write:
            n = self.max_write
        return self.tx.put(buf, n)

    def readinto(self, buf):
        return self.rx.take_into(buf)

    def wait(self, ms):
        return self.rx.n > 0

    def drain(self):
        self.rx.clear()


def link_pair():
    """-> (device_link, h2d pipe, d2h pipe)."""
    h2d = Pipe()
    d2h = Pipe()
    return MemLink(h2d, d2h), h2d, d2h


class FakeClock:
    def __init__(self):
        self.ms = 0
        self.secs = 800000000

    def ticks_ms(self):
        return self.ms

    def ticks_diff(self, a, b):
        return a - b

    def now(self):
        return self.secs

    def set_time(self, s):
        self.secs = s


class MemLog:
    def __init__(self, rec_size=REC_SIZE):
        self.rec_size = rec_size
        self.recs = {}
        self.first_seq = 1
        self.next_seq = 1
        self.acked_seq = 0

    def append(self, data):
        self.recs[self.next_seq] = bytes(data)
        self.next_seq += 1
        return self.next_seq - 1

    def read(self, seq, buf):
        r = self.recs[seq]
        buf[: len(r)] = r
        return len(r)

    def ack(self, seq):
        if seq > self.acked_seq:
            self.acked_seq = seq


def make_record(seq, rec_size=REC_SIZE):
    b = bytearray(rec_size)
    struct.pack_into(">II", b, 0, seq, seq * 2654435761 & 0xFFFFFFFF)
    for i in range(8, rec_size):
        b[i] = (seq + i) & 0xFF
    return bytes(b)


class Applied:
    """Content handler that records what was activated."""

    def __init__(self):
        self.active = {}

    def __call__(self, kind, version, body):
        self.active[kind] = (version, bytes(body))
        return wire_host.OK


def make_target(n_records=0, log=None, clock=None):
    log = log if log is not None else MemLog()
    for _ in range(n_records):
        add_record(log)
    clock = clock if clock is not None else FakeClock()
    applied = Applied()
    handlers = {}
    for k in (1, 2, 3, 4, 5):
        handlers[k] = applied
    t = LogTarget(
        log, DEVICE_ID, 0x000100, KP, clock, handlers, faults=["boot", "nfc timeout"],
        rec_size=getattr(log, "rec_size", REC_SIZE),
    )
    t.applied = applied
    return t


class MiniHost:
    """Just enough host to drive a device Session in tier-1 tests (no depot, no sqlite)."""

    def __init__(self, session, h2d, d2h, kd=KD):
        self.s = session
        self.h2d = h2d
        self.d2h = d2h
        self.kd = kd
        self.dec = wire.Decoder()
        self.tx_mac = None
        self.rx_mac = None
        self.tx_cipher = None  # cipher_host.FrameCipher per direction after AUTH
        self.rx_cipher = None
        self.seq = 0
        self.frames = []

    def send(self, ftype, payload=b"", flags=0, seq=None, clear=False):
        """One frame to the device; after AUTH encrypted (F_ENC) unless clear (a
        downgrade attempt: MAC'd, but the payload in clear and no F_ENC)."""
        if self.tx_mac is not None and seq is None:
            self.seq += 1
        c = None if clear else self.tx_cipher
        f = wire_host.frame(ftype, payload, self.seq if seq is None else seq, flags,
                            self.tx_mac, c)
        self.h2d.put(f)
        return f

    def pump(self, steps=2000):
        """Step the device until a frame arrives -> (type, payload, decoder); after AUTH
        the payload is decrypted when the frame's MAC verifies and it has F_ENC (else the
        raw payload: tests check d.flags / the MAC themselves)."""
        for _ in range(steps):
            self.s.step()
            if self.d2h.n:
                self.dec.rx_commit(self.d2h.take_into(self.dec.rx_space()))
            if self.dec.next():
                d = self.dec
                p = bytes(d.payload)
                if (self.rx_cipher is not None and d.flags & wire_host.F_ENC
                        and self.rx_mac.check(d.hdr, d.payload, d.tag)):
                    p = self.rx_cipher.crypt(d.seq, p)
                return d.type, p, d
        return None, None, None

    def handshake(self, nh=b"N" * 16):
        self.tx_cipher = self.rx_cipher = None
        self.send(wire_host.T_HELLO, bytes([wire_host.PROTO_VERSION]) + nh)
        t, p, _ = self.pump()
        if t != wire_host.T_CHALLENGE:
            return t, p
        nd = p[5:21]
        dev = struct.unpack_from(">I", p, 1)[0]
        if not auth.equal(p[21:53], auth.device_proof(self.kd, dev, nh, nd)):
            return "bad device proof", p
        self.send(wire_host.T_AUTH, auth.host_proof(self.kd, dev, nh, nd))
        tm, rm, tk, rk = auth.session_keys(self.kd, nh, nd, False)
        self.tx_mac, self.rx_mac = auth.Hmac(tm), auth.Hmac(rm)
        self.tx_cipher = cipher_host.FrameCipher(tk, wire_host.CTR_H2D)
        self.rx_cipher = cipher_host.FrameCipher(rk, wire_host.CTR_D2H)
        t, p, d = self.pump()
        if t == wire_host.T_INFO and not self.rx_mac.check(d.hdr, d.payload, d.tag):
            return "bad MAC", p
        return t, p


class PumpPort:
    """Serial-like host end of an in-process link: read() runs device steps until bytes
    arrive (or `steps` steps pass, like a read timeout). For depot.client in tests."""

    def __init__(self, session, h2d, d2h, steps=64):
        self.s = session
        self.h2d = h2d
        self.d2h = d2h
        self.steps = steps
        self.in_waiting = 0

    def write(self, b):
        self.h2d.put(b)
        return len(b)

    def read(self, n):
        for _ in range(self.steps):
            if self.d2h.n:
                break
            self.s.step()
        return self.d2h.take(n)


def real_log_or_none():
    """The storage RecordLog on a 64 KiB emulated NOR when it exists, else None."""
    try:
        from validator.storage.recordlog import RecordLog
    except ImportError:
        return None
    from emu.nor import NorFlash

    log = RecordLog(NorFlash(64 * 1024), (0, 48 * 1024), (48 * 1024, 16 * 1024))
    log.mount()
    log.maintain()
    log.rec_size = 128
    return log


def add_record(log):
    """Append one record the way the tap path does (then idle-time maintenance)."""
    rs = getattr(log, "rec_size", REC_SIZE)
    seq = log.append(make_record(log.next_seq, rs))
    m = getattr(log, "maintain", None)
    if m is not None:
        m()
    return seq


def stored(log, seq):
    """The bytes the log holds for seq (what the depot must receive)."""
    rs = getattr(log, "rec_size", REC_SIZE)
    b = bytearray(rs)
    n = log.read(seq, b)
    return bytes(b) if n else None
