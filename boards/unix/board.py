# board (unix): the emulated validator board for the MicroPython unix port.
# SPDX-License-Identifier: MIT
#
# Same firmware, emulated hardware: every bus is a real OS byte channel (a pty) whose far
# end is an emulator in the host process (host_tools/emu/world.py):
#   PN532 HSU   pty, raw 8N1 bytes (UM0701 §6.2.3)
#   PN532 SPI   pty carrying an SPI bridge: b"S" = NSS low, b"D" = NSS high,
#               b"X" len data -> len MISO bytes (full duplex, MSB first on this "bus")
#   PSAM slots  one pty each for the I/O line; the RST lines are b"R" slot level on the
#               gpio pty (slot 0 = MOT PSAM)
#   flash       emu.nor.NorFlash backed by a file (NOR semantics, counters, power cut)
#   clock       ticks_ms from the OS; wall time settable by the simulator (b"T secs")
#   indicator   result lines on stdout: "@TAP reason amount balance seq" / "@IDLE"
# Control lines on stdin: "T <secs>" set the clock, "C <n> [torn]" cut power after n
# flash operations, "A" run the next tap with the heap locked, "a" report its allocation
# ("@ALLOC n", -1 if it tried to allocate), "S" state, "Q" quit.
# Configuration: JSON file named by $YKT_BOARD_CONFIG.
import json
import os
import select
import sys
import termios
import time

from micropython import const

from emu.nor import NorFlash

_VMIN = const(6)
_VTIME = const(5)


def _raw(f):
    fd = f.fileno()
    termios.setraw(fd)
    a = termios.tcgetattr(fd)
    a[6][_VMIN] = 0
    a[6][_VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, a)


class PtyLink:
    """hal.ByteLink over a pty; readinto never blocks, wait() uses poll (no allocation)."""

    def __init__(self, path):
        self.f = open(path, "r+b")
        _raw(self.f)
        self._p = select.poll()
        self._p.register(self.f, select.POLLIN)
        self.tx_bytes = 0
        self.rx_bytes = 0

    def write(self, buf, n):
        self.tx_bytes += n
        return self.f.write(buf, n)

    def readinto(self, buf):
        n = self.f.readinto(buf)
        if n:
            self.rx_bytes += n
        return n or 0

    def wait(self, ms):
        for _ in self._p.ipoll(ms):
            return True
        return False

    def drain(self):
        while self.wait(0):
            if not self.readinto(bytearray(64)):
                break


class SpiBridge:
    """hal SpiBus + chip select, tunnelled over a pty to the emulated PN532 SPI slave."""

    def __init__(self, link):
        self.link = link
        self._hdr = bytearray(2)
        self._S = b"S"
        self._D = b"D"
        self._chunk = bytearray(16)

    def cs(self, level):
        self.link.write(self._D if level else self._S, 1)

    def write_readinto(self, tx, rx):
        n = len(tx)
        self._hdr[0] = 0x58  # "X"
        self._hdr[1] = n
        self.link.write(self._hdr, 2)
        self.link.write(tx, n)
        got = 0
        c = self._chunk
        while got < n:
            if not self.link.wait(200):
                raise OSError(110)  # ETIMEDOUT: the emulator went away
            k = self.link.readinto(c)
            for i in range(k):
                if got + i < n:
                    rx[got + i] = c[i]
            got += k


class Clock:
    def __init__(self):
        self._t0 = time.ticks_ms()
        self._base = 0

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def ticks_add(self, a, d):
        return time.ticks_add(a, d)

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def now(self):
        return self._base + time.ticks_diff(time.ticks_ms(), self._t0) // 1000

    def set_time(self, secs):
        self._t0 = time.ticks_ms()
        self._base = secs


def _itoa(buf, pos, v):
    """Write decimal v at buf[pos]; return the new position (no allocation)."""
    if v < 0:
        buf[pos] = 0x2D
        pos += 1
        v = -v
    start = pos
    while True:
        buf[pos] = 0x30 + v % 10
        pos += 1
        v //= 10
        if not v:
            break
    i, j = start, pos - 1
    while i < j:
        buf[i], buf[j] = buf[j], buf[i]
        i += 1
        j -= 1
    return pos


class Indicator:
    """Reports each result to the simulator as a line on stdout (allocation-free)."""

    def __init__(self, out):
        self.out = out
        self._line = bytearray(64)
        self._tap = b"@TAP "
        self._idle = b"@IDLE\n"
        self.last_seq = -1

    def show(self, reason, amount, balance):
        b = self._line
        for i in range(5):
            b[i] = self._tap[i]
        p = _itoa(b, 5, reason)
        b[p] = 0x20
        p = _itoa(b, p + 1, amount)
        b[p] = 0x20
        p = _itoa(b, p + 1, balance)
        b[p] = 0x20
        p = _itoa(b, p + 1, self.last_seq)
        b[p] = 0x0A
        self.out.write(b, p + 1)

    def idle(self):
        self.out.write(self._idle, len(self._idle))


class Board:
    name = "unix"

    def __init__(self, cfg):
        self.cfg = cfg
        self.device_id = bytes.fromhex(cfg.get("device_id", "00000001"))
        self.clock = Clock()
        if "time" in cfg:
            self.clock.set_time(cfg["time"])
        self.out = open(1, "wb")  # unbuffered event stream (stdout)
        self.indicator = Indicator(self.out)
        self.flash = NorFlash(cfg.get("flash_size", 64 << 20), path=cfg["flash"],
                              invert=cfg.get("flash_invert", True))
        from validator.drivers.pn532_link import Hsu, Spi

        if cfg.get("pn532_mode", "hsu") == "spi":
            bridge = SpiBridge(PtyLink(cfg["pn532"]))
            self.pn532 = Spi(bridge, bridge.cs, self.clock, msb_only=True)
        else:
            self.pn532 = Hsu(PtyLink(cfg["pn532"]))
        self.gpio = PtyLink(cfg["gpio"]) if cfg.get("gpio") else None
        self.psam_ports = [PsamPort(i, PtyLink(p), self.gpio) for i, p in
                           enumerate(cfg.get("psam", ()))]
        self.sync_cfg = cfg.get("sync")
        self.flash_plan = None  # validator.storage.PLAN_SIM
        self._stdin = select.poll()
        self._stdin.register(sys.stdin, select.POLLIN)
        self.quit = False

    def urandom(self, n):
        return os.urandom(n)

    def emit(self, line):
        """Free-form status line to the simulator (not on the tap path)."""
        self.out.write(b"@" + line.encode() + b"\n")

    def _control(self, v):
        while self._stdin.poll(0):
            line = sys.stdin.readline()
            if not line:
                self.quit = True
                return
            parts = line.split()
            if not parts:
                continue
            c = parts[0]
            if c == "T":
                self.clock.set_time(int(parts[1]))
                self.emit("TIME %d" % self.clock.now())
            elif c == "C":
                self.flash.cut_after(int(parts[1]), parts[2] if len(parts) > 2 else "drop")
                self.emit("CUT ARMED")
            elif c == "P":  # position from the driver console / GPS: line stop dir door
                sp = getattr(v.processor, "set_position", None)
                if sp is not None:
                    sp(int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4]))
                self.emit("POS " + " ".join(parts[1:5]))
            elif c == "A":  # probe: run the next tap with the heap locked
                v.probe_alloc = True
                self.emit("ALLOC ARMED")
            elif c == "a":
                self.emit("ALLOC %d" % v.last_alloc)
            elif c == "Q":
                self.quit = True
            elif c == "S":
                import gc

                gc.collect()
                self.emit("STATE taps=%d faults=%d programs=%d erases=%d heap_used=%d "
                          "heap_free=%d psam_di=%s" % (
                              v.taps, v.faults, self.flash.programs, self.flash.erases,
                              gc.mem_alloc(), gc.mem_free(),
                              ",".join(str(p.etu[1]) for p in self.psam_ports)))

    def after_tap(self, v, r):
        """Simulator report after each tap (not on the tap path): fare details."""
        p = v.processor
        d = getattr(getattr(getattr(p, "dev", None), "policy", None), "res", None)
        kind = fare = penalty = 0
        if d is not None and r.reason in (0, 12):
            kind, fare, penalty = d.kind, d.fare, d.penalty
        self.emit("DETAIL %d %d %d %d %d %d" % (r.reason, kind, fare, penalty,
                                                getattr(r, "status", 0), getattr(r, "seq", -1)))

    async def console_task(self, v):
        import asyncio

        self.emit("READY %s" % self.device_id.hex())
        while not self.quit:
            self._control(v)
            await asyncio.sleep_ms(5)
        self.emit("BYE taps=%d" % v.taps)


class PsamPort:
    """hal.IsoPort: the I/O line on a pty, RST through the gpio channel."""

    def __init__(self, slot, link, gpio):
        self.slot = slot
        self.link = link
        self.gpio = gpio
        self.echo = False
        self.etu = (372, 1)
        self._msg = bytearray(b"R\x00\x00")

    def set_etu(self, fi, di):
        """PPS agreed a new rate (ISO 7816-3 §9): a pty has no baud rate; keep it for S."""
        self.etu = (fi, di)

    def reset(self, level):
        if self.gpio is not None:
            self._msg[1] = self.slot
            self._msg[2] = level
            self.gpio.write(self._msg, 3)


def make_board():
    with open(os.getenv("YKT_BOARD_CONFIG") or "build/sim/board.json") as f:
        cfg = json.load(f)
    return Board(cfg)
