"""emu.i2cbus: an I2C bus model behind the machine shim's I2C bridge (CPython only).

Bridge format (boards/shim/machine.py): b"w" addr u16 len data -> one status byte
(0 ACK, 1 NACK: no device at addr); b"r" addr u16 len -> status, then len bytes. A device
is an object with write(data) and read(n) -> bytes (a write then a read is a repeated
START register read). `stuck = True` models a bus held low: requests get no answer, the
firmware's I2C call blocks, and only the watchdog gets the board out.

Devices: Ds3231 (battery-backed RTC, time kept in a file across power loss: DS3231
datasheet, register map 0x00-0x12, OSF = status bit 7 "oscillator stopped") and Ssd1306
(128x64 OLED controller: command stream, GDDRAM in horizontal addressing mode; the
framebuffer is MONO_VLSB like MicroPython's framebuf).
"""

import datetime
import json
import os
import time

EPOCH_2000 = 946684800


def _bcd(v):
    return (v // 10) << 4 | v % 10


def _unbcd(b):
    return (b >> 4) * 10 + (b & 15)


class Ds3231:
    ADDR = 0x68

    def __init__(self, path, now=time.time):
        self.path = path
        self._now = now
        self.ptr = 0
        self.regs = bytearray(19)
        self.regs[0x0E] = 0x1C
        self.state = {"base": 0, "host": now(), "osf": 1}  # a new chip: oscillator stopped
        if os.path.exists(path):
            with open(path) as f:
                self.state = json.load(f)

    def _save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f)
        os.replace(tmp, self.path)

    def secs(self):
        """Device seconds (since 2000-01-01) the chip counts now."""
        s = self.state
        return int(s["base"] + (self._now() - s["host"]))

    def set_secs(self, secs):
        self.state = {"base": secs, "host": self._now(), "osf": 0}
        self._save()

    def lose_battery(self):
        """Coin cell removed while the power is off: time lost, OSF set."""
        self.state = {"base": 0, "host": self._now(), "osf": 1}
        self._save()

    def _fill(self):
        t = datetime.datetime.fromtimestamp(self.secs() + EPOCH_2000, datetime.timezone.utc)
        r = self.regs
        r[0] = _bcd(t.second)
        r[1] = _bcd(t.minute)
        r[2] = _bcd(t.hour)  # 24-hour mode (bit 6 = 0)
        r[3] = t.isoweekday()
        r[4] = _bcd(t.day)
        r[5] = _bcd(t.month) | (0x80 if t.year >= 2100 else 0)
        r[6] = _bcd(t.year % 100)
        r[0x0F] = (r[0x0F] & 0x7F) | (0x80 if self.state.get("osf") else 0)
        r[0x11], r[0x12] = 25, 0  # 25.00 C

    def write(self, data):
        if not data:
            return
        self.ptr = data[0] % 19
        if len(data) == 1:
            return
        self._fill()
        timeset = False
        for b in data[1:]:
            if self.ptr <= 6:
                timeset = True
            if self.ptr == 0x0F:
                b = (b & 0x7F) | (self.regs[0x0F] & b & 0x80)  # OSF: write 0 to clear only
            self.regs[self.ptr] = b
            self.ptr = (self.ptr + 1) % 19
        if timeset:
            r = self.regs
            year = 2000 + _unbcd(r[6]) + (100 if r[5] & 0x80 else 0)
            t = datetime.datetime(year, _unbcd(r[5] & 0x1F), _unbcd(r[4]), _unbcd(r[2] & 0x3F),
                                  _unbcd(r[1]), _unbcd(r[0] & 0x7F),
                                  tzinfo=datetime.timezone.utc)
            self.set_secs(int(t.timestamp()) - EPOCH_2000)
        elif not self.regs[0x0F] & 0x80 and self.state.get("osf"):
            self.state["osf"] = 0  # firmware cleared OSF
            self._save()

    def read(self, n):
        self._fill()
        out = bytearray()
        for _ in range(n):
            out.append(self.regs[self.ptr])
            self.ptr = (self.ptr + 1) % 19
        return bytes(out)


# SSD1306 commands that take arguments (datasheet §9 command table): opcode -> arg count
_ARGS = {0x81: 1, 0x20: 1, 0x21: 2, 0x22: 2, 0xA8: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1,
         0xDB: 1, 0x8D: 1, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5, 0xA3: 2}


class Ssd1306:
    ADDR = 0x3C

    def __init__(self, width=128, height=64):
        self.w, self.h = width, height
        self.ram = bytearray(width * height // 8)
        self.on = False
        self.col = [0, width - 1]
        self.page = [0, height // 8 - 1]
        self.cx = self.cp = 0
        self.frames = 0  # complete screen updates (a write reaching the last byte)

    def write(self, data):
        if not data:
            return
        ctrl, body = data[0], data[1:]
        if ctrl & 0x40:  # data stream
            for b in body:
                self.ram[self.cp * self.w + self.cx] = b
                if self.cp == self.page[1] and self.cx == self.col[1]:
                    self.frames += 1
                self.cx += 1
                if self.cx > self.col[1]:
                    self.cx = self.col[0]
                    self.cp += 1
                    if self.cp > self.page[1]:
                        self.cp = self.page[0]
            return
        i = 0
        while i < len(body):
            op = body[i]
            n = _ARGS.get(op, 0)
            args = body[i + 1:i + 1 + n]
            i += 1 + n
            if op == 0xAE:
                self.on = False
            elif op == 0xAF:
                self.on = True
            elif op == 0x21 and len(args) == 2:
                self.col = [args[0], args[1]]
                self.cx = args[0]
            elif op == 0x22 and len(args) == 2:
                self.page = [args[0], args[1]]
                self.cp = args[0]

    def read(self, n):
        return bytes(n)  # status reads are not modelled

    def pixel(self, x, y):
        return self.ram[(y // 8) * self.w + x] >> (y % 8) & 1

    def text(self, font):
        """The screen read back as text rows of 8x8 cells, matched against font:
        {bytes(8) column bitmap: char} (emu.i2cbus.framebuf_font() makes it)."""
        rows = []
        for page in range(self.h // 8):
            s = ""
            for cx in range(self.w // 8):
                cell = bytes(self.ram[page * self.w + cx * 8:page * self.w + cx * 8 + 8])
                s += font.get(cell, "?")
            rows.append(s.rstrip())
        return rows


def framebuf_font(micropython="micropython"):
    """MicroPython's own 8x8 framebuf font, rendered by the runtime: {cell: char}."""
    import subprocess

    code = ("import framebuf\nb=bytearray(8)\nf=framebuf.FrameBuffer(b,8,8,framebuf.MONO_VLSB)"
            "\nfor c in range(32,127):\n f.fill(0)\n f.text(chr(c),0,0,1)\n print(b.hex())")
    out = subprocess.run([micropython, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    font = {}
    for i, h in enumerate(out):
        font.setdefault(bytes.fromhex(h), chr(32 + i))
    return font


class Bus:
    def __init__(self, devices=()):
        self.devices = {d.ADDR: d for d in devices}
        self.stuck = False
        self.buf = b""
        self.transfers = 0

    def feed(self, data):
        """Bytes from the firmware -> bytes back (status and read data)."""
        self.buf += data
        out = b""
        while len(self.buf) >= 4 and not self.stuck:
            op, addr, n = self.buf[0], self.buf[1], int.from_bytes(self.buf[2:4], "big")
            if op == 0x77:
                if len(self.buf) < 4 + n:
                    break
                data, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                d = self.devices.get(addr)
                if d is not None:
                    d.write(bytes(data))
                out += b"\x00" if d is not None else b"\x01"
            elif op == 0x72:
                self.buf = self.buf[4:]
                d = self.devices.get(addr)
                out += (b"\x00" + d.read(n)) if d is not None else b"\x01"
            else:
                self.buf = self.buf[1:]  # noise
            self.transfers += 1
        return out
