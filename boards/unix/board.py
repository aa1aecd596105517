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
#   indicator   result lines on stdout: "@TAP reason amount balance -1" / "@IDLE" (the
#               record seq is reported by "@DETAIL")
# Control lines on stdin: "T <secs>" set the clock, "C <n> [torn]" cut power after n
# flash operations, "P line stop dir door" set the position, "A" run the next tap with
# the heap locked, "a" report its allocation ("@ALLOC n", -1 if it tried to allocate),
# "S" state (counters, heap used/free and the largest block it could grant), "Q" quit.
# Configuration: JSON file named by $YKT_BOARD_CONFIG.
#
# Heap: this is emulation glue (a pin map on the MCU), so it is kept to two classes:
# Pty is every byte channel (ByteLink, the SPI bridge, a PSAM slot's IsoPort) and Board
# is also the Clock and the Indicator (board.clock is board.indicator is board). Each
# class costs ~290 B and each method ~57 B of the 128 KiB heap (heaptools README).
import os
import select
import sys
import time

from emu.nor import NorFlash


class Pty:
    """hal.ByteLink over a pty (readinto never blocks, wait() polls without allocating);
    with spi=True also the hal SpiBus + chip select tunnelled to the emulated PN532 SPI
    slave; with a slot number also the hal.IsoPort of that PSAM slot (link is itself, RST
    through the gpio Pty)."""

    # IsoPort defaults as class attributes: instance slots only where they differ
    echo = False
    etu = (372, 1)
    gpio = None

    def __init__(self, path, slot=-1, gpio=None, spi=False):
        import termios

        self.f = f = open(path, "r+b")
        fd = f.fileno()
        termios.setraw(fd)
        a = termios.tcgetattr(fd)
        a[6][6] = 0  # VMIN: reads return what is there
        a[6][5] = 0  # VTIME: without waiting
        a[4] = a[5] = termios.B115200  # the line speed, which the emulated PN532 reads
        termios.tcsetattr(fd, termios.TCSANOW, a)
        self._p = select.poll()
        self._p.register(f, select.POLLIN)
        self.link = self
        if slot >= 0:
            self.gpio = gpio
            self._msg = bytearray(b"R\x00\x00")
            self._msg[1] = slot
        if spi:
            self._hdr = bytearray(b"X\x00")
            self._chunk = bytearray(16)

    def write(self, buf, n):
        return self.f.write(buf, n)

    def readinto(self, buf):
        return self.f.readinto(buf) or 0

    def wait(self, ms):
        for _ in self._p.ipoll(ms):
            return True
        return False

    def drain(self):
        while self.wait(0):
            if not self.readinto(bytearray(64)):
                break

    # -- SPI bridge ---------------------------------------------------------------
    def cs(self, level):
        self.f.write(b"D" if level else b"S", 1)

    def write_readinto(self, tx, rx):
        n = len(tx)
        self._hdr[1] = n
        self.f.write(self._hdr, 2)
        self.f.write(tx, n)
        got = 0
        c = self._chunk
        while got < n:
            if not self.wait(200):
                raise OSError(110)  # ETIMEDOUT: the emulator went away
            k = self.readinto(c)
            for i in range(k):
                if got + i < n:
                    rx[got + i] = c[i]
            got += k

    # -- PSAM slot (hal.IsoPort) ----------------------------------------------------
    def set_etu(self, fi, di):
        """PPS agreed a new rate (ISO 7816-3 §9): a pty has no baud rate; keep it for S."""
        self.etu = (fi, di)

    def reset(self, level):
        if self.gpio is not None:
            self._msg[2] = level
            self.gpio.write(self._msg, 3)


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


class Board:
    name = "unix"
    flash_plan = None  # validator.storage.PLAN_SIM
    quit = False

    def __init__(self, cfg):
        self.device_id = bytes.fromhex(cfg.get("device_id", "00000001"))
        # hal.Clock: the OS tick functions themselves (instance attributes are not bound)
        self.clock = self
        self.ticks_ms = time.ticks_ms
        self.ticks_diff = time.ticks_diff
        self.ticks_add = time.ticks_add
        self.sleep_ms = time.sleep_ms
        self.urandom = os.urandom
        self.set_time(cfg.get("time", 0))
        self.out = open(1, "wb")  # unbuffered event stream (stdout)
        self.indicator = self
        self._line = bytearray(b"@TAP " + b"\x00" * 59)
        self.flash = NorFlash(cfg.get("flash_size", 64 << 20), path=cfg["flash"],
                              invert=cfg.get("flash_invert", True))
        spi = cfg.get("pn532_mode", "hsu") == "spi"
        link = Pty(cfg["pn532"], spi=spi)
        if spi:
            from validator.drivers.pn532_spi import Spi

            self.pn532 = Spi(link, link.cs, self, msb_only=True)
        else:
            from validator.drivers.pn532_link import Hsu

            self.pn532 = Hsu(link)  # 115 200, the chip's power-up speed (Pty set it)
        g = Pty(cfg["gpio"]) if cfg.get("gpio") else None
        self.psam_ports = [Pty(p, i, g) for i, p in enumerate(cfg.get("psam", ()))]
        self.sync_cfg = cfg.get("sync")
        self._stdin = select.poll()
        self._stdin.register(sys.stdin, select.POLLIN)

    # -- hal.Clock (with ticks_ms, ticks_diff, ticks_add, sleep_ms above) ----------------
    def now(self):
        return self._base + time.ticks_diff(time.ticks_ms(), self._t0) // 1000

    def set_time(self, secs):
        self._t0 = time.ticks_ms()
        self._base = secs

    # -- hal.Indicator: lines on stdout, allocation-free -----------------------------------
    def show(self, reason, amount, balance):
        b = self._line
        p = _itoa(b, 5, reason)
        b[p] = 0x20
        p = _itoa(b, p + 1, amount)
        b[p] = 0x20
        p = _itoa(b, p + 1, balance)
        b[p] = 0x20
        b[p + 1] = 0x2D  # "-1": the record seq is in @DETAIL
        b[p + 2] = 0x31
        b[p + 3] = 0x0A
        self.out.write(b, p + 4)

    def idle(self):
        self.out.write(b"@IDLE\n", 6)

    # -- the simulator's console (not on the tap path) -------------------------------------
    def emit(self, line):
        """Free-form status line to the simulator."""
        self.out.write(b"@" + line.encode() + b"\n")

    def after_tap(self, v, r):
        """Simulator report after each tap: "@DETAIL reason kind fare penalty status seq"."""
        d = getattr(getattr(getattr(v.processor, "dev", None), "policy", None), "res", None)
        kind = fare = penalty = 0
        if d is not None and r.reason in (0, 12):
            kind, fare, penalty = d.kind, d.fare, d.penalty
        self.emit("DETAIL %d %d %d %d %d %d" % (r.reason, kind, fare, penalty,
                                                getattr(r, "status", 0), getattr(r, "seq", -1)))

    async def console_task(self, v):
        import asyncio

        self.emit("READY " + self.device_id.hex())
        while not self.quit:
            while self._stdin.poll(0):
                line = sys.stdin.readline()
                if not line:
                    self.quit = True
                    break
                p = line.split()
                c = p[0] if p else ""
                if c == "T":
                    self.set_time(int(p[1]))
                    self.emit("TIME %d" % self.now())
                elif c == "C":
                    self.flash.cut_after(int(p[1]), p[2] if len(p) > 2 else "drop")
                    self.emit("CUT ARMED")
                elif c == "P":  # position from the driver console / GPS: line stop dir door
                    sp = getattr(v.processor, "set_position", None)
                    if sp is not None:
                        sp(int(p[1]), int(p[2]), int(p[3]), int(p[4]))
                    self.emit("POS " + " ".join(p[1:5]))
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
                    f = self.flash
                    used, free = gc.mem_alloc(), gc.mem_free()
                    self.emit("STATE taps=%d faults=%d programs=%d erases=%d heap_used=%d "
                              "heap_free=%d heap_max_block=%d psam_di=%s reinits=%d hsu=%d" % (
                                  v.taps, v.faults, f.programs, f.erases, used, free,
                                  _max_block(free),
                                  ",".join(str(p.etu[1]) for p in self.psam_ports),
                                  v.reinits, getattr(self.pn532, "baud", 0)))
            await asyncio.sleep_ms(5)
        self.emit("BYE taps=%d" % v.taps)


def _max_block(free):
    """The largest single allocation the heap grants now (fragmentation: free bytes can be
    many small holes): bisect bytearray sizes in 32-byte GC blocks, freeing each try."""
    import gc

    lo, hi = 0, free // 32 + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            b = bytearray(mid * 32 - 16)  # the object header takes part of the blocks
            del b
            lo = mid
        except MemoryError:
            hi = mid
    gc.collect()
    return lo * 32


def make_board():
    import json

    with open(os.getenv("YKT_BOARD_CONFIG") or "build/sim/board.json") as f:
        return Board(json.load(f))
