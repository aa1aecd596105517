# depot.devsim: a sync endpoint of an emulated validator, for tests and the sync bench.
# SPDX-License-Identifier: MIT
#
# Runs on the MicroPython unix port (common subset; CPython also works):
#   micropython -X heapsize=128k -m depot.devsim --tty /dev/pts/N --records 2000
#   ... --listen 7000 | --connect 127.0.0.1:7000   (TCP, loopback)
# It runs the real validator.sync Session as an asyncio task beside a stand-in "tap loop"
# task that appends a record every --tap-ms and measures how late each tap starts (the
# delay the sync task inflicted). Records come from a RecordLog-shaped log whose record
# bytes are a pure function of seq (GenLog), so 10^5 records fit in a 128 KiB heap; with
# --nor FILE the real storage RecordLog on a file-backed emulated NOR is used when present.
# On exit it prints one line: "DEVSIM {json}".
import struct
import sys
from binascii import crc32

# the one test key set (issue 19) lives in depot.testkeys; re-exported for older callers
from depot.testkeys import TEST_CONTENT_KEY, TEST_CONTENT_PUB, TEST_MASTER  # noqa: F401

DEVICE_ID = 0x1234ABCD


def _mix(x):
    """32-bit integer hash (same on MicroPython and CPython)."""
    x = (x * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x85EBCA77) & 0xFFFFFFFF
    return x ^ (x >> 13)


def _bcd(v):
    return ((v // 10) << 4) | (v % 10)


REC_SIZE = 128


def make_record(seq, rec_size=REC_SIZE, out=None):
    """A plausible bus-day record in the storage layout (storage FORMAT.md §2): the same
    route, vehicle and terminal all day, ~400 distinct cards, 20 s between taps."""
    b = out if out is not None else bytearray(REC_SIZE)
    for i in range(REC_SIZE):
        b[i] = 0
    x = _mix(seq)
    card = _mix(seq % 389 + 7)
    b[0:4] = b"YKR1"
    b[4] = 1
    b[5] = 5 if seq % 17 == 0 else 1  # refused / normal
    struct.pack_into(">HII", b, 6, REC_SIZE, seq, DEVICE_ID)
    b[16:20] = b"\x31\x04\x00\x00"
    struct.pack_into(">IH", b, 20, card, card >> 16)  # card serial tail
    b[26:34] = (b"\x02\x00\x00\x00\x31\x00\x00\x00", b"\x02\x00\x00\x00\x51\x00\x00\x00",
                b"\x03\x10\x00\x00\x21\x00\x00\x00", b"\x02\x00\x00\x00\x10\x00\x00\x00")[card & 3]
    b[34] = 1 + (card >> 5) % 3  # card type
    b[35] = 0x09 if card & 4 else 0x06
    b[37] = 1  # key version
    b[38] = 4 if card & 8 else 0  # SM4 / 3DES
    amount = 100 if b[34] == 2 else 200
    before = 3000 + card % 40000
    struct.pack_into(">III", b, 40, amount, before, before - amount)
    struct.pack_into(">H", b, 52, (card * 3 + seq // 389) & 0xFFFF)  # ATC
    b[54:60] = b"\x31\x00\x01\x02\x03\x04"  # PSAM terminal number
    struct.pack_into(">I", b, 60, 1000 + seq)  # TTSN
    t = 6 * 3600 + seq * 20  # seconds into 2026-11-24
    d = 24 + t // 86400
    t %= 86400
    b[64] = 0x20
    b[65] = 0x26
    b[66] = 0x11
    b[67] = _bcd(d)
    b[68] = _bcd(t // 3600)
    b[69] = _bcd(t // 60 % 60)
    b[70] = _bcd(t % 60)
    struct.pack_into(">I", b, 71, x)  # TAC
    struct.pack_into(">HHB", b, 75, 37, (seq // 40) % 25, (seq // 1000) & 1)
    b[80:86] = b"B12345"
    struct.pack_into(">IHI", b, 86, 3, 1, 0xFFFFFFFF)
    b[97] = 1
    struct.pack_into(">I", b, 124, crc32(memoryview(b)[4:124]))
    return b


class GenLog:
    def __init__(self, n, rec_size=REC_SIZE):
        self.rec_size = rec_size
        self.first_seq = 1
        self.next_seq = n + 1
        self.acked_seq = 0

    def append(self):
        self.next_seq += 1
        return self.next_seq - 1

    def read(self, seq, buf):
        if not self.first_seq <= seq < self.next_seq:
            raise IndexError("seq")
        make_record(seq, self.rec_size, buf)
        return self.rec_size

    def ack(self, seq):
        if seq > self.acked_seq:
            self.acked_seq = seq


_NOR_SIZE = 256 * 1024  # 60 log blocks (1860 records) + a 16 KiB watermark journal


def nor_log(path, n):
    """storage's RecordLog on a file-backed emulated NOR, filled with n records."""
    from emu.nor import NorFlash
    from validator.storage.recordlog import RecordLog

    log = RecordLog(NorFlash(_NOR_SIZE, path=path), (0, 240 * 1024), (240 * 1024, 16 * 1024))
    log.mount()
    log.maintain()
    log.rec_size = REC_SIZE
    for _ in range(n):
        tap(log)
    return log


def tap(log):
    if isinstance(log, GenLog):
        return log.append()
    make_record(log.next_seq, REC_SIZE, log.image)  # the log's own preallocated image
    seq = log.append()
    log.maintain()  # idle-time erase ahead (storage FORMAT.md: never inside a tap)
    return seq


class Clock:
    def __init__(self):
        import time

        self._t = time
        self.offset = 0

    def ticks_ms(self):
        return self._t.ticks_ms()

    def ticks_diff(self, a, b):
        return self._t.ticks_diff(a, b)

    def now(self):
        return int(self._t.time()) - 946684800 + self.offset  # unix port epoch is 1970

    def set_time(self, secs):
        self.offset += secs - self.now()


def _args(argv):
    a = {
        "tty": None, "listen": None, "connect": None, "records": 100, "tap-ms": 0,
        "seconds": 60, "sessions": 1, "nor": None, "device-id": DEVICE_ID,
        "tls": 0, "tls-ca": None,
    }
    i = 0
    while i < len(argv):
        k = argv[i][2:]
        v = argv[i + 1]
        if k in ("records", "tap-ms", "seconds", "sessions", "listen", "tls"):
            v = int(v)
        if k == "device-id":
            v = int(v, 16)
        a[k] = v
        i += 2
    return a


def main(argv):
    import asyncio
    import gc
    import os
    import time

    a = _args(argv)
    # storage first: compiling modules from source needs contiguous heap (128 KiB)
    if a["nor"]:
        log = nor_log(a["nor"], a["records"])
    else:
        log = GenLog(a["records"])
    gc.collect()
    from validator.sync import auth_host, transport
    from validator.sync.session import Session
    from validator.sync.target import LogTarget

    dev = a["device-id"]
    kd = auth_host.derive_device_key(TEST_MASTER, dev)
    clock = Clock()
    applied = {}

    class Shadow:
        """Streaming content handler: where storage would fill a flash shadow area."""

        def begin(self, kind, version, body_len):
            self.n = 0
            return 0

        def write(self, off, data):
            self.n += len(data)
            return 0

        def commit(self, version):
            applied[version] = self.n
            return 0

        def abort(self):
            self.n = 0

    sh = Shadow()
    handlers = {1: sh, 2: sh, 3: sh, 4: sh, 5: sh}
    target = LogTarget(log, dev, 0x000100, TEST_CONTENT_PUB, clock, handlers)
    listener = None
    if a["tty"]:
        link = transport.open_tty(a["tty"])
    elif a["connect"]:
        h, p = a["connect"].split(":")
        ca = None
        if a["tls-ca"]:
            with open(a["tls-ca"], "rb") as f:
                ca = f.read()  # the CA pinned at flashing (DER)
        try:
            link = transport.tcp_connect(h, int(p), tls=bool(a["tls"]), ca=ca)
        except OSError as e:
            print("DEVSIM refused", e)
            print('DEVSIM {"sessions": 0, "refused_tls": 1}')
            return 0
    else:
        listener = transport.TcpListener(a["listen"])
        print("DEVSIM listening", a["listen"])
        link = None
    sess = Session(link, target, (dev, kd, TEST_CONTENT_PUB), os.urandom, clock)
    stats = {"taps": 0, "max_tap_delay_ms": 0, "done": False, "max_step_us": 0}
    deadline = time.ticks_add(time.ticks_ms(), a["seconds"] * 1000)

    async def sync_task():
        ended = 0
        was = False
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            if listener is not None and (sess.link is None or sess.link.closed):
                c = listener.accept()
                if c is None:
                    await asyncio.sleep_ms(5)
                    continue
                sess.attach(c)
            if sess.link is None:
                await asyncio.sleep_ms(5)
                continue
            t0 = time.ticks_us()
            did = sess.step()
            us = time.ticks_diff(time.ticks_us(), t0)
            if us > stats["max_step_us"]:
                stats["max_step_us"] = us
            now = sess.authenticated()
            if was and not now:
                ended += 1
                if ended >= a["sessions"]:
                    # let the last frame (RESULT for BYE) drain
                    for _ in range(50):
                        if not sess.busy():
                            break
                        sess.step()
                        await asyncio.sleep_ms(1)
                    break
            was = now
            await asyncio.sleep_ms(0 if did else 2)
        stats["done"] = True

    async def tap_task():
        period = a["tap-ms"]
        if not period:
            return
        nxt = time.ticks_add(time.ticks_ms(), period)
        while not stats["done"]:
            wait = time.ticks_diff(nxt, time.ticks_ms())
            if wait > 0:
                await asyncio.sleep_ms(wait)
            late = time.ticks_diff(time.ticks_ms(), nxt)
            if late > stats["max_tap_delay_ms"]:
                stats["max_tap_delay_ms"] = late
            tap(log)  # the "tap": a record committed
            stats["taps"] += 1
            nxt = time.ticks_add(nxt, period)

    async def both():
        t = asyncio.create_task(tap_task())
        await sync_task()
        await t

    asyncio.run(both())
    out = {
        "acked": log.acked_seq, "next": log.next_seq, "sessions": sess.sessions,
        "refused": sess.refused, "taps": stats["taps"], "last_fault": repr(sess.last_fault),
        "max_tap_delay_ms": stats["max_tap_delay_ms"], "clock": clock.now(),
        "max_step_us": stats["max_step_us"],
        "applied": [k for k in applied], "versions": target.versions,
    }
    import json

    if sess.last_fault is not None and hasattr(sys, "print_exception"):
        sys.print_exception(sess.last_fault)
    print("DEVSIM " + json.dumps(out))


if __name__ == "__main__":
    argv = sys.argv
    i = 0
    while i < len(argv) and not argv[i].startswith("--"):
        i += 1
    main(argv[i:])
