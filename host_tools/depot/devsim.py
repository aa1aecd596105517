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

from validator.sync import auth
from validator.sync.session import Session
from validator.sync.target import LogTarget

DEVICE_ID = 0x1234ABCD
TEST_MASTER = b"yikatong-test-depot-master-key!!"  # tests/sim only
TEST_CONTENT_KEY = b"yikatong-test-backoffice-c-key!!"


def make_record(seq, rec_size=64, out=None):
    b = out if out is not None else bytearray(rec_size)
    struct.pack_into(">II", b, 0, seq, seq * 2654435761 & 0xFFFFFFFF)
    for i in range(8, rec_size):
        b[i] = (seq + i) & 0xFF
    return b


class GenLog:
    def __init__(self, n, rec_size=64):
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
    }
    i = 0
    while i < len(argv):
        k = argv[i][2:]
        v = argv[i + 1]
        if k in ("records", "tap-ms", "seconds", "sessions", "listen"):
            v = int(v)
        if k == "device-id":
            v = int(v, 16)
        a[k] = v
        i += 2
    return a


def main(argv):
    import asyncio
    import os
    import time

    from validator.sync import transport

    a = _args(argv)
    dev = a["device-id"]
    kd = auth.derive_device_key(TEST_MASTER, dev)
    log = GenLog(a["records"])
    clock = Clock()
    applied = {}

    class Shadow:
        """Streaming content handler: where storage would fill a flash shadow area."""

        def begin(self, kind, total):
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
    target = LogTarget(log, dev, 0x000100, TEST_CONTENT_KEY, clock, handlers)
    listener = None
    if a["tty"]:
        link = transport.open_tty(a["tty"])
    elif a["connect"]:
        h, p = a["connect"].split(":")
        link = transport.tcp_connect(h, int(p))
    else:
        listener = transport.TcpListener(a["listen"])
        print("DEVSIM listening", a["listen"])
        link = None
    sess = Session(link, target, (dev, kd, TEST_CONTENT_KEY), os.urandom, clock)
    stats = {"taps": 0, "max_tap_delay_ms": 0, "done": False}
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
            did = sess.step()
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
            log.append()  # the "tap": a record committed
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
        "applied": [k for k in applied], "versions": target.versions,
    }
    import json

    print("DEVSIM " + json.dumps(out))


if __name__ == "__main__":
    argv = sys.argv
    i = 0
    while i < len(argv) and not argv[i].startswith("--"):
        i += 1
    main(argv[i:])
