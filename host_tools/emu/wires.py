# emu.wires: in-process byte channels between firmware drivers and emulated chips.
# SPDX-License-Identifier: MIT
#
# Common subset. Tier-1 tests wire the real firmware drivers to the emulators through
# these objects: every byte crosses the same interface a UART or SPI bus would carry.
# SimClock is an injectable hal.Clock whose time only moves when someone waits, so
# timeouts are exercised deterministically and instantly.


class SimClock:
    def __init__(self, now=0):
        self._ms = 0
        self._base = now

    def ticks_ms(self):
        return self._ms

    def ticks_add(self, t, d):
        return t + d

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self._ms += ms

    advance = sleep_ms

    def now(self):
        return self._base + self._ms // 1000

    def set_time(self, secs):
        self._base = secs - self._ms // 1000


class HsuWire:
    """ByteLink for the firmware side; the far end is a Pn532Core in HSU mode.

    `noise` bytes are delivered before the chip's next bytes (line garbage);
    `mangle(fn)` lets a test rewrite the next chunk the chip sends.
    """

    def __init__(self, core, clock):
        self.core = core
        self.clock = clock
        self._rx = bytearray()
        self.noise = b""
        self._mangle = None
        self.written = 0
        self.baud = 115200  # the host end's line speed (set_baud): bytes at another speed
        # than the chip's are lost, as framing errors are on a real UART

    def set_baud(self, rate):
        self.baud = rate

    def write(self, buf, n=None):
        if n is None:
            n = len(buf)
        self.written += n
        self.core.feed(bytes(buf[:n]), baud=self.baud)
        return n

    def _pull(self):
        out = self.core.take()
        if out and self.baud != self.core.baud:
            self.core.lost_bytes += len(out)  # sent at a speed this end is not set to
            out = b""
        if out:
            if self._mangle is not None:
                out, self._mangle = self._mangle(out), None
            if self.noise:
                out, self.noise = self.noise + out, b""
            self._rx += out

    def mangle(self, fn):
        self._mangle = fn

    def readinto(self, buf, n=None):
        self._pull()
        k = len(buf) if n is None else n
        if k > len(self._rx):
            k = len(self._rx)
        for i in range(k):
            buf[i] = self._rx[i]
        self._rx = self._rx[k:]
        return k

    def wait(self, ms):
        self._pull()
        if self._rx:
            return True
        self.clock.advance(ms)
        return False

    def drain(self):
        self._pull()
        self._rx = bytearray()


class SpiWire:
    """SpiBus + chip select for the firmware side; the far end is a Pn532SpiSlave."""

    def __init__(self, slave):
        self.slave = slave
        self.transfers = 0

    def write_readinto(self, tx, rx):
        self.transfers += 1
        r = self.slave.exchange(bytes(tx))
        for i in range(len(r)):
            rx[i] = r[i]

    def cs(self, level):
        self.slave.cs(level)


class ReplayWire:
    """A ByteLink that plays back chip bytes recorded earlier, allocation-free.

    Used to prove a driver path allocates nothing: record a real exchange against the
    emulator (RecordingWire), then replay it under micropython.heap_lock(). Like the real
    chip, the bytes answering write number k become readable only after that write.
    """

    def __init__(self, recording, clock):
        self.script = bytearray(recording.recorded)
        self.ends = tuple(recording.ends)
        self.clock = clock
        self.rewind()

    def rewind(self):
        self.pos = 0
        self.seg = -1
        self.limit = 0

    def write(self, buf, n=None):
        if self.seg + 1 < len(self.ends):
            self.seg += 1
            self.limit = self.ends[self.seg]
        return n

    def readinto(self, buf, n=None):
        k = len(buf)
        left = self.limit - self.pos
        if k > left:
            k = left
        s = self.script
        p = self.pos
        for i in range(k):
            buf[i] = s[p + i]
        self.pos = p + k
        return k

    def wait(self, ms):
        if self.pos < self.limit:
            return True
        self.clock.advance(ms)
        return False


class RecordingWire(HsuWire):
    """HsuWire that keeps every byte the chip sent, split by the host write it answered."""

    def __init__(self, core, clock):
        HsuWire.__init__(self, core, clock)
        self.recorded = bytearray()
        self.ends = []

    def start(self):
        self.recorded = bytearray()
        self.ends = []

    def write(self, buf, n=None):
        r = HsuWire.write(self, buf, n)
        self.ends.append(len(self.recorded))
        return r

    def readinto(self, buf, n=None):
        k = HsuWire.readinto(self, buf, n)
        self.recorded += bytes(buf[:k])
        if self.ends:
            self.ends[-1] = len(self.recorded)
        return k
