# machine (shim): the ESP32 `machine` API on the MicroPython unix port, every peripheral a
# real byte stream to an emulator in the host process (host_tools/emu/s3world.py).
# SPDX-License-Identifier: MIT
#
# Put boards/shim first on the path (MICROPYPATH, or inside the ROMFS image): a
# filesystem module named machine shadows the unix port's built-in one (appendix D of the
# toolchain notes; its few names -- mem32, Signal -- are not needed by any board, so they
# are not re-exported). boards/esp32s3_pn532/board.py runs on it unchanged.
#
# Exactly the API the board uses, because on the unix port this module lives in the
# validator's 128 KiB heap (each class ~290 B, each method ~57 B on this 64-bit port) while
# the MCU's machine module is C in flash: Pin, PWM, UART, SPI, I2C, WDT, RTC, unique_id,
# reset_cause. The emulated PCB is the JSON file named by $YKT_MACHINE:
#   "uart":   {"<id>": "/dev/pts/N"}      one pty per UART (PSAM I/O lines, GPS)
#   "spi":    {"<id>": "/dev/pts/N"}      SPI bridge pty (emu.pn532.spi_bridge format:
#                                         b"S"/b"D" chip select, b"X" len data)
#   "spi_cs": {"<pin>": "<spi id>"}       GPIOs wired to a bridged slave's chip select
#   "i2c":    {"<id>": "/dev/pts/N"}      I2C bridge pty (format below)
#   "ctl":    "/dev/pts/N"                GPIO/PWM/WDT/Wi-Fi frames, both directions
#   "unique_id": "hex", "reset_cause": n, "flash" (the esp32 shim)
# ctl frames are 8 bytes: op, pin, u16 a, u32 b (big-endian):
#   to the host   b"P" pin level   b"F" pin duty_u16 freq (PWM)   b"E" - - timeout_ms
#                 (WDT started)   b"W" (WDT fed)   b"N" - join - (Wi-Fi station join/leave)
#   from the host b"I" pin level (an input's level: driver keys)   b"N" - seen - (the
#                 terminus network is in range)
# I2C bridge: b"w" addr u16 len data -> 1 status byte (0 ACK, 1 NACK); b"r" addr u16 len
# -> status byte, then len bytes when ACKed. A bus the emulator holds stuck never answers:
# the call blocks, as a driver does on a bus held low with its timeout disabled.
# Tap-path calls (Pin.value, PWM.duty_u16, UART any/readinto/write, SPI transfers)
# allocate nothing: frames go through preallocated buffers.
import io
import select
import struct
import time  # the shim time module: RTC.datetime() sets its wall clock

WDT_RESET = 3  # reset_cause() values as on the ESP32 port
PWRON_RESET = 1

_files = {}
_frame = bytearray(8)
_inframe = bytearray(8)
_levels = bytearray(b"\x01" * 64)  # input levels as last reported (pull-ups: idle high)
_outs = bytearray(64)  # per GPIO, as the chip keeps it: bit 1 an output, bit 0 its level
_net = bytearray(2)  # [0] terminus network seen, [1] station asked to join
_ctl = []  # [file, poll] once opened


def _config():
    """$YKT_MACHINE, read at each call (boot only): kept, its dicts and paths would hold
    ~1 KB of the heap for good."""
    import json
    import os

    with open(os.getenv("YKT_MACHINE") or "machine.json") as f:
        return json.load(f)


def _open(path):
    """A raw pty that never blocks a read, opened once per path (a shared bus) -> (file,
    poll registered for input)."""
    f = _files.get(path)
    if f is None:
        import termios

        fl = open(path, "r+b")
        fd = fl.fileno()
        termios.setraw(fd)
        a = termios.tcgetattr(fd)
        a[6][6] = 0  # VMIN: reads return what is there
        a[6][5] = 0  # VTIME: without waiting
        termios.tcsetattr(fd, termios.TCSANOW, a)
        p = select.poll()
        p.register(fl, select.POLLIN)
        f = _files[path] = (fl, p)
    return f


def _send(op, pin, a, b):
    if not _ctl:
        _ctl.extend(_open(_config()["ctl"]))
    struct.pack_into(">BBHI", _frame, 0, op, pin, a, b)
    _ctl[0].write(_frame, 8)


def _pump():
    """Take the host's frames (input levels, network) that arrived so far."""
    if not _ctl:
        _ctl.extend(_open(_config()["ctl"]))
    for _ in _ctl[1].ipoll(0):
        while (_ctl[0].readinto(_inframe) or 0) == 8:  # the host writes whole frames
            if _inframe[0] == 0x49:  # "I"
                _levels[_inframe[1] & 63] = _inframe[3]
            elif _inframe[0] == 0x4E:  # "N"
                _net[0] = _inframe[3]


def unique_id():
    return bytes.fromhex(_config().get("unique_id", "0000000000000001"))


def reset_cause():
    return _config().get("reset_cause", PWRON_RESET)


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 1
    spi = None  # class default: only a bridged chip select holds its bus

    def __init__(self, id, mode=-1, pull=-1, value=None):
        # the GPIO number is a pin's one attribute (an instance dict of one slot): its
        # mode and level are the GPIO's, in _outs, as the chip's registers hold them
        self.id = id
        if mode == 3:
            _outs[id & 63] |= 2
        elif mode != -1:
            _outs[id & 63] &= 1
        c = _config()
        bus = c.get("spi_cs", {}).get(str(id))
        if bus is not None:
            self.spi = _open(c["spi"][bus])[0]
        if value is not None:
            self.value(value)

    def value(self, v=None):
        i = self.id & 63
        if v is None:
            if _outs[i] & 2:
                return _outs[i] & 1
            _pump()
            return _levels[i]
        v = 1 if v else 0
        _outs[i] = _outs[i] & 2 | v
        if self.spi is not None:  # a bridged slave's chip select
            self.spi.write(b"D" if v else b"S", 1)
        else:
            _send(0x50, self.id, v, 0)
        return None


class PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        self.pin = pin.id
        self.f = freq
        self.duty_u16(duty_u16)

    def duty_u16(self, d):
        _send(0x46, self.pin, d, self.f)


class _Stream(io.IOBase):
    """UART, SPI and I2C in one class: a pty plus its poll (one class in the heap)."""

    def __init__(self, kind, id, **kw):
        self.f, self.p = _open(_config()[kind][str(id)])
        if kind != "uart":  # a UART needs no staging buffers
            self.hdr = bytearray(16)  # I2C header / SPI receive chunk
            self.one = bytearray(1)

    # -- UART (select.poll works on the pty's own fd: ioctl 10 returns it) ---------------
    def init(self, baudrate=0, **kw):
        pass  # a pty has no bit rate

    def any(self):
        for _ in self.p.ipoll(0):
            return 1
        return 0

    def read(self, n=256):
        return self.f.read(n) if self.any() else None

    def readinto(self, buf):
        return self.f.readinto(buf) if self.any() else None

    def write(self, buf, n=-1):
        return self.f.write(buf) if n < 0 else self.f.write(buf, n)

    def ioctl(self, req, arg):
        if req == 10:  # MP_STREAM_GET_FILENO
            return self.f.fileno()
        return 0

    # -- SPI (bridge: b"X" len data -> len MISO bytes) ---------------------------------
    def write_readinto(self, tx, rx):
        n = len(tx)
        self.hdr[0] = 0x58
        self.hdr[1] = n
        self.f.write(self.hdr, 2)
        self.f.write(tx, n)
        got = 0
        c = self.hdr
        while got < n:
            if not self._wait(500):
                raise OSError(110)  # ETIMEDOUT: the emulator went away
            k = self.f.readinto(c) or 0
            for i in range(k):
                if got + i < n:
                    rx[got + i] = c[i]
            got += k

    def _wait(self, ms):
        for _ in self.p.ipoll(ms):
            return True
        return False

    # -- I2C ----------------------------------------------------------------------------
    def _xfer(self, op, addr, n, bufs, into=None):
        h = self.hdr
        h[0], h[1], h[2], h[3] = op, addr, n >> 8, n & 0xFF
        self.f.write(h, 4)
        for b in bufs:
            self.f.write(b)
        self._wait(-1)  # a stuck bus never answers: the caller hangs here
        self.f.readinto(self.one)
        if self.one[0]:
            raise OSError(19)  # ENODEV: no ACK, as machine.I2C reports it
        got = 0
        while into is not None and got < n:
            self._wait(-1)
            got += self.f.readinto(memoryview(into)[got:]) or 0

    def writeto(self, addr, buf, stop=True):
        self._xfer(0x77, addr, len(buf), (buf,))

    def writevto(self, addr, vector, stop=True):
        self._xfer(0x77, addr, sum(len(b) for b in vector), vector)

    def writeto_mem(self, addr, mem, buf):
        self.one[0] = mem
        self._xfer(0x77, addr, len(buf) + 1, (bytes(self.one), buf))

    def readfrom_mem_into(self, addr, mem, buf):
        self.one[0] = mem
        self._xfer(0x77, addr, 1, (bytes(self.one),))
        self._xfer(0x72, addr, len(buf), (), buf)


def UART(id, baudrate=115200, **kw):
    return _Stream("uart", id, baudrate=baudrate)


def SPI(id, **kw):
    return _Stream("spi", id)


def I2C(id=0, **kw):
    return _Stream("i2c", id)


class WDT:
    """The hardware watchdog: the host kills the process when feed() stops coming."""

    def __init__(self, id=0, timeout=5000):
        _send(0x45, 0, 0, timeout)

    def feed(self):
        _send(0x57, 0, 0, 0)


class RTC:
    """The chip's internal RTC: sets the wall clock of the shim time module (lost at power
    off, as on the ESP32; the battery-backed clock is the DS3231 on the I2C bus)."""

    def datetime(self, t):
        time.set_wall(time.mktime((t[0], t[1], t[2], t[4], t[5], t[6], 0, 0)))
