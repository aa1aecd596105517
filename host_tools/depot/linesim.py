# depot.linesim: a serial line emulator between two ptys, optionally paced at a baud rate.
# SPDX-License-Identifier: MIT
#
# CPython only. Two pseudo-terminals, A (the device end) and B (the host end); a relay
# thread per direction copies master A <-> master B, releasing bytes no faster than an
# 8N1 UART at `baud` would (10 bit times per byte: 11 520 bytes/s at 115 200 baud) in
# small slices, so both ends see a real line's throughput and latency. baud=None relays
# as fast as the ptys go. Both slave paths are real /dev/pts/N names (mpremote's fast
# pty path needs that, toolchain.md §2).
import os
import select
import threading
import time
import tty

_SLICE = 32  # bytes released at once: 2.8 ms of line time at 115200 baud


class LineEmulator:
    def __init__(self, baud=None):
        self.baud = baud
        self.bps = baud / 10.0 if baud else None
        self.ma, self.sa = os.openpty()
        self.mb, self.sb = os.openpty()
        for fd in (self.sa, self.sb):
            tty.setraw(fd)
        self.device_path = os.ttyname(self.sa)
        self.host_path = os.ttyname(self.sb)
        self.count = {"a2b": 0, "b2a": 0}
        self.budget = {"a2b": -1, "b2a": -1}  # bytes still let through; -1 = no cut
        self._stop = False
        self._threads = [
            threading.Thread(target=self._relay, args=(self.ma, self.mb, "a2b"), daemon=True),
            threading.Thread(target=self._relay, args=(self.mb, self.ma, "b2a"), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _relay(self, src, dst, name):
        free_at = time.monotonic()
        while not self._stop:
            r, _, _ = select.select([src], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(src, 4096)
            except OSError:
                time.sleep(0.01)  # the slave is closed and not yet reopened
                continue
            if not data:
                continue
            off = 0
            while off < len(data):
                piece = data[off : off + _SLICE]
                if self.bps:
                    now = time.monotonic()
                    if free_at < now:
                        free_at = now
                    free_at += len(piece) / self.bps
                    d = free_at - time.monotonic()
                    if d > 0:
                        time.sleep(d)
                b = self.budget[name]
                if b >= 0:  # a pulled cable: bytes past the cut vanish
                    piece = piece[:b]
                    self.budget[name] = b - len(piece)
                try:
                    if piece:
                        os.write(dst, piece)
                except OSError:
                    pass
                off += len(piece)
                self.count[name] += len(piece)

    def cut_after(self, direction, n):
        """Let n more bytes through in direction "a2b" (device to host) or "b2a", then
        drop everything (the cable is pulled)."""
        self.budget[direction] = n

    def restore(self):
        self.budget["a2b"] = self.budget["b2a"] = -1

    def close(self):
        self._stop = True
        for t in self._threads:
            t.join(1)
        for fd in (self.ma, self.mb, self.sa, self.sb):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
