# board (esp32s3_pn532): ESP32-S3 validator, PN532 on SPI, two PSAM slots, GPS, RTC, OLED.
# SPDX-License-Identifier: MIT
#
# The only place besides the other boards that imports machine. Pins are in wiring.py,
# the wiring table and parts list in README.md, the flash plan in
# validator.storage.plan_boards.PLAN_ESP32S3 (FORMAT.md §1).
#   PN532          SPI2 + NSS GPIO, RSTPD_N GPIO (validator.drivers.pn532_spi)
#   PSAM slot 0/1  UART1/UART2 on one I/O line each (echo), CLK = LEDC PWM 3.5712 MHz,
#                  RST = GPIO (slot 0 MOT, slot 1 the local issuer)
#   GPS            UART0 9600 8N1, NMEA RMC/GGA; a stop is detected against board.json
#                  "stops" (the fare table has no stop coordinates: README "GPS")
#   I2C0           DS3231 RTC (battery-backed, read at boot) and SSD1306 128x64 OLED
#   feedback       LED green/red, buzzer PWM: per-reason patterns that end on their own
#   driver keys    next stop / previous stop / direction / sign-on, active low
#   sync           Wi-Fi station dialling the depot (board.json "depot"), only while the
#                  station is connected (sync cfg "up")
#   watchdog       machine.WDT fed by the board task: a stalled event loop resets the chip
# The board task (console_task) runs every 10 ms beside the card loop: feeds the
# watchdog, steps the feedback pattern, redraws the display, reads GPS and keys, keeps
# Wi-Fi joined. show()/idle() are on the tap path: they set pins and note what to draw,
# nothing more (no allocation, no I2C).
# Service log on the console (USB-CDC): "@BOOT rtc=secs|-1 cause=n", "@READY id ...",
# "@TAP reason amount balance", "@POS line stop dir key|gps|signon", "@WIFI 0|1",
# "@GPS 0|1", "@SIGNON line", "@CLOCK secs".
#
# Heap: like boards/unix, glue is kept to few classes (~290 B each, ~57 B per method on the
# 64-bit port): Board is also the Clock, the Indicator, the RTC, the display, the GPS and
# the keys (board.clock is board.indicator is board); PsamPort is a slot's link itself.
import select
import time

import esp32
import machine
import wiring
from micropython import const

_TASK_MS = const(10)
_WDT_MS = const(8000)
_DEBOUNCE = const(3)  # task periods a key must read pressed
_STOP_RADIUS_M = const(40)  # GPS: this close to a stop's position = at that stop
_CLK_HZ = const(3571200)  # wiring.PSAM_CLK_HZ (checked by tests/host/test_board_esp32s3.py)
_RTC = const(0x68)
_OLED = const(0x3C)
# SSD1306 datasheet §10: display off, horizontal addressing, segment/COM remap, 64 MUX,
# clock, precharge, VCOMH, contrast, charge pump on, display on
_OLED_INIT = (b"\x00\xae\x20\x00\x40\xa1\xa8\x3f\xc8\xd3\x00\xda\x12\xd5\x80\xd9\xf1\xdb"
              b"\x30\x81\xcf\xa4\xa6\x8d\x14\xaf")
# what the display says per reason code (validator.errors R_* order), English only: the
# 8x8 framebuf font is ASCII (README: Chinese needs a bitmap font). One line per code in
# one bytes constant, not a tuple of str: from a ROMFS image each str of a tuple is an
# object in the heap (0.8 KB); frozen, both stay in flash
_TEXT = (b"PAID\n\nONE CARD ONLY\nBLACKLISTED\nEXPIRED\nNOT YET VALID\nBLOCKED\n"
         b"NOT ACCEPTED\nNOT ACCEPTED\nLOW BALANCE\nALREADY PAID\nTAP AGAIN\nRECOVERED\n"
         b"CARD ERROR\nUNSUPPORTED\nPSAM FAULT\nLOG FULL\nTAP AGAIN\nFAULT\nNO TARIFF\n"
         b"TYPE REFUSED\n")
# pattern per feedback colour (off, green, red, amber), 3 bytes each: beep on ms, gap ms,
# LED hold ms
_PAT = b"\x00\x00\x00\x0f\x00\x0f\x0c\x07\x14\x0a\x0a\x0f"  # x10 ms


class PartitionFlash:
    """hal.NorFlash on an ESP-IDF data partition (4 KiB erase blocks, 256-byte pages)."""

    def __init__(self, part):
        self.part = part
        self.block_size = 4096
        self.prog_size = 256
        self.block_count = part.ioctl(4, 0)
        self.size = self.block_count * self.block_size
        self.reads = 0  # read count (RecordLog reports its boot scan in reads)

    def read(self, addr, buf):
        self.reads += 1
        self.part.readblocks(addr // 4096, buf, addr % 4096)

    def program(self, addr, buf):
        # writeblocks with an offset programs without erasing (extended block protocol)
        self.part.writeblocks(addr // 4096, buf, addr % 4096)

    def erase(self, block):
        self.part.ioctl(6, block)


class PsamPort:
    """hal.IsoPort and its hal.ByteLink (link is itself): one contact slot on a UART whose
    TX and RX share the I/O line (echo); the card clock runs from PWM, RST is a GPIO."""

    echo = True

    def __init__(self, uart_id, io_pin, clk_pin, rst_pin):
        self.clk = machine.PWM(machine.Pin(clk_pin), freq=_CLK_HZ, duty_u16=32768)
        self.rst = machine.Pin(rst_pin, machine.Pin.OUT, value=0)
        self.uart = machine.UART(uart_id, baudrate=9600, bits=8, parity=0, stop=2,
                                 tx=io_pin, rx=io_pin, timeout=0, rxbuf=512)
        self._p = select.poll()
        self._p.register(self.uart, select.POLLIN)
        self.link = self

    def write(self, buf, n):
        # stream write takes an optional length (py/stream.c), so no slice is allocated
        return self.uart.write(buf, n)  # type: ignore[call-arg]

    def readinto(self, buf):
        if not self.uart.any():
            return 0
        return self.uart.readinto(buf) or 0

    def wait(self, ms):
        for _ in self._p.ipoll(ms):
            return True
        return False

    def drain(self):
        while self.uart.any():
            self.uart.read()

    def set_etu(self, fi, di):
        """PPS agreed Fi/Di (ISO 7816-3 §9): bit rate = f / (Fi / Di), f = 3.5712 MHz."""
        self.uart.init(baudrate=_CLK_HZ * di // fi, bits=8, parity=0, stop=2)

    def reset(self, level):
        self.rst.value(level)


def _bcd(v):
    return (v // 10) << 4 | v % 10


def _unbcd(b):
    return (b >> 4) * 10 + (b & 15)


def _coord(v, hemi):
    """NMEA ddmm.mmmm / dddmm.mmmm -> signed degrees."""
    d = float(v or 0)
    deg = int(d // 100)
    out = deg + (d - deg * 100) / 60
    return -out if hemi in ("S", "W") else out


def _forget(name):
    import sys

    sys.modules.pop(name, None)
    pkg, _, mod = name.rpartition(".")
    p = sys.modules.get(pkg)
    if p is not None and hasattr(p, mod):
        delattr(p, mod)


def _read_config(path):
    """board.json -> (cfg without "stops", stop positions, stop lines). json would build the
    "stops" table as a list per stop and an object per number, all alive at once: 30 KB of
    the heap at boot for 8 lines of 24 stops, the boot's peak. The table's text is scanned
    here instead, twice: once to count, once to fill one float array of lat, lon pairs
    and one int array of (line, first stop, stop count) triples, each allocated once at
    its size; json gets the rest, with "stops": null. A table of another shape (a stop
    not a pair of numbers) is dropped, the rest kept."""
    import array
    import json

    buf = bytearray(256)  # the file is read through this, chunk by chunk
    tok = bytearray()  # the string or number being read
    n = m = 0  # numbers and lines in the table (first pass)
    rest = None
    bad = put = False  # a table of the wrong shape; filling the arrays (second pass)
    for fill in (False, True):
        if fill:
            if bad:
                n = m = 0  # the table is dropped
            xy = array.array("f", bytes(4 * n))
            li = array.array("i", bytes(12 * m))
            rest = bytearray()
            put = not bad
        depth = sd = 0  # object/array depth in the file, and inside the stops table
        q = esc = False  # in a string, after a backslash
        key = b""  # the last string completed at depth 1 (a key of the top object)
        k = j = pn = 0  # numbers and line triples seen, numbers in this stop
        with open(path, "rb") as f:
            while True:
                got = f.readinto(buf)
                if not got:
                    break
                for i in range(got):
                    c = buf[i]
                    if sd == 0:  # outside the stops table: the text goes to json
                        if fill:
                            rest.append(c)
                        if q:
                            if esc:
                                esc = False
                            elif c == 0x5C:
                                esc = True
                            elif c == 0x22:
                                q = False
                                if depth == 1:
                                    key = bytes(tok)
                            elif depth == 1:
                                tok.append(c)
                        elif c == 0x22:
                            q = True
                            tok[:] = b""
                        elif c == 0x7B or c == 0x5B:  # { [
                            depth += 1
                        elif c == 0x7D or c == 0x5D:  # } ]
                            depth -= 1
                        elif c == 0x3A and depth == 1 and key == b"stops":  # its value
                            key = b""
                            if fill:
                                rest.extend(b"null")
                            sd = -1  # the value's first bracket next
                        continue
                    if q:  # a line's key inside the table
                        if c == 0x22:
                            q = False
                            if sd == 1:
                                if put:
                                    try:
                                        li[j] = int(tok)
                                    except ValueError:
                                        bad = True
                                    li[j + 1] = k // 2
                                j += 3
                        else:
                            tok.append(c)
                    elif c == 0x22:
                        q = True
                        tok[:] = b""
                    elif c == 0x7B or c == 0x5B:
                        sd = 1 if sd < 0 else sd + 1
                        tok[:] = b""
                        pn = 0
                    elif c in b",]} \t\r\n":
                        if tok and sd == 3:  # a number of a pair
                            if put:
                                try:
                                    xy[k] = float(tok)
                                except ValueError:
                                    bad = True
                            k += 1
                            pn += 1
                        tok[:] = b""
                        if c == 0x5D and sd == 3 and pn != 2:
                            bad = True  # a stop of one number or three: no pair
                        if c == 0x5D or c == 0x7D:
                            sd -= 1
                            if sd == 1 and j and put:  # a line's list closed: its count
                                li[j - 1] = k // 2 - li[j - 2]
                    elif sd > 3:
                        bad = True
                    elif c != 0x3A:
                        tok.append(c)
        n, m = k, j // 3
        if sd:
            raise ValueError("board.json: the stops table does not end")
    cfg = json.loads(rest)
    return (cfg if isinstance(cfg, dict) else {}), xy, li


class Board:
    name = "esp32s3_pn532"

    def __init__(self):
        from validator.app import feedback
        from validator.drivers.pn532_spi import Spi
        from validator.storage.plan_boards import partition_plan

        try:
            cfg, self.stops, self.stop_lines = _read_config(wiring.CONFIG_FILE)
        except (OSError, ValueError):
            import array

            cfg = {}
            self.stops = array.array("f")
            self.stop_lines = array.array("i")
        self.device_id = machine.unique_id()[-4:]
        self.i2c = machine.I2C(wiring.I2C_ID, scl=machine.Pin(wiring.I2C_SCL),
                               sda=machine.Pin(wiring.I2C_SDA), freq=400000)
        self._rb = bytearray(8)  # RTC registers / status
        # hal.Clock: the chip's RTC (time.time() counts from 2000) set from the DS3231
        self.clock = self
        self.ticks_ms = time.ticks_ms
        self.ticks_diff = time.ticks_diff
        self.ticks_add = time.ticks_add
        self.sleep_ms = time.sleep_ms
        self.now = time.time
        secs = self.rtc_read()
        if secs is not None:
            self._set_chip(secs)
        print("@BOOT rtc=%d cause=%d" % (-1 if secs is None else secs, machine.reset_cause()))
        # hal.Indicator: LEDs, buzzer, display
        self.indicator = self
        self._fb = feedback
        self.green = machine.Pin(wiring.LED_GREEN, machine.Pin.OUT, value=0)
        self.red = machine.Pin(wiring.LED_RED, machine.Pin.OUT, value=0)
        self.buzzer = machine.PWM(machine.Pin(wiring.BUZZER), freq=wiring.BUZZER_HZ,
                                  duty_u16=0)
        self.reason = -1  # -1: idle screen
        self.amount = self.balance = self.colour = self.beeps = 0
        self.t0 = time.ticks_ms()
        self.active = self.buzz = False
        self.dirty = True
        self.logged = True
        try:
            self.i2c.writeto(_OLED, _OLED_INIT)
            self.oled = True
        except OSError:
            self.oled = False  # no display fitted: the validator works without it
        parts = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=wiring.FLASH_PARTITION)
        if not parts:
            raise OSError("no '%s' data partition" % wiring.FLASH_PARTITION)
        self.flash = PartitionFlash(parts[0])
        self.flash_plan = partition_plan(base=wiring.FLASH_PARTITION_BASE)
        _forget("validator.storage.plan_boards")  # its dicts served once: free the heap
        machine.Pin(wiring.PN532_RSTPDN, machine.Pin.OUT, value=1)  # held high: running
        nss = machine.Pin(wiring.PN532_NSS, machine.Pin.OUT, value=1)
        spi = machine.SPI(wiring.PN532_SPI, baudrate=1000000, polarity=0, phase=0,
                          sck=machine.Pin(wiring.PN532_SCK), mosi=machine.Pin(wiring.PN532_MOSI),
                          miso=machine.Pin(wiring.PN532_MISO))
        self.pn532 = Spi(spi, nss.value, self, msb_only=True)
        self.psam_ports = [
            PsamPort(wiring.PSAM0_UART, wiring.PSAM0_IO, wiring.PSAM0_CLK, wiring.PSAM0_RST),
            PsamPort(wiring.PSAM1_UART, wiring.PSAM1_IO, wiring.PSAM1_CLK, wiring.PSAM1_RST),
        ]
        self.gps = machine.UART(wiring.GPS_UART, baudrate=9600, tx=wiring.GPS_TX,
                                rx=wiring.GPS_RX, timeout=0, rxbuf=512)
        self._line = bytearray(96)
        self._n = 0
        self.fix = False
        self.lat = self.lon = 0.0
        self._gstop = -1  # the stop the GPS last arrived at
        self.keys = [machine.Pin(p, machine.Pin.IN, machine.Pin.PULL_UP) for p in
                     (wiring.KEY_NEXT, wiring.KEY_PREV, wiring.KEY_DIR, wiring.KEY_SIGNON)]
        self._kc = bytearray(4)  # consecutive pressed samples per key
        self.wlan = None
        self.sync_cfg = None
        w = cfg.get("wifi", {})
        self.wifi = (w.get("ssid", ""), w.get("key", ""))
        self.wdt_ms = cfg.get("wdt_ms", _WDT_MS)
        if cfg.get("depot"):
            import network

            self.wlan = network.WLAN(network.STA_IF)
            self.wlan.active(True)
            self.sync_cfg = {"connect": cfg["depot"], "tls": bool(cfg.get("tls")),
                             "tls_ca": cfg.get("tls_ca"),  # pinned at provisioning
                             "retry_s": cfg.get("retry_s", 30), "up": self.wlan.isconnected}

    def urandom(self, n):
        import os

        return os.urandom(n)

    # -- clock: DS3231 (datasheet: time 00h-06h BCD; status 0Fh bit 7 OSF = stopped) ------
    def rtc_read(self):
        """-> device seconds since 2000-01-01, or None (no chip, or OSF set)."""
        b = self._rb
        try:
            self.i2c.readfrom_mem_into(_RTC, 0x0F, memoryview(b)[:1])
            if b[0] & 0x80:
                return None
            self.i2c.readfrom_mem_into(_RTC, 0x00, memoryview(b)[:7])
        except OSError:
            return None
        return time.mktime((2000 + _unbcd(b[6]) + (100 if b[5] & 0x80 else 0),
                            _unbcd(b[5] & 0x1F), _unbcd(b[4]), _unbcd(b[2] & 0x3F),
                            _unbcd(b[1]), _unbcd(b[0] & 0x7F), 0, 0))

    def _set_chip(self, secs):
        t = time.gmtime(secs)
        machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))

    def set_time(self, secs):
        """hal.Clock.set_time (sync SET CLOCK): the chip's RTC and the DS3231."""
        self._set_chip(secs)
        t = time.gmtime(secs)
        b = bytes((_bcd(t[5]), _bcd(t[4]), _bcd(t[3]), t[6] + 1, _bcd(t[2]),
                   _bcd(t[1]) | (0x80 if t[0] >= 2100 else 0), _bcd(t[0] % 100)))
        try:
            self.i2c.writeto_mem(_RTC, 0x00, b)
            self.i2c.writeto_mem(_RTC, 0x0F, b"\x00")  # clear OSF: the time is valid
        except OSError:
            pass
        print("@CLOCK %d" % secs)

    # -- hal.Indicator (tap path: pins only) and the pattern the board task ends ---------
    def show(self, reason, amount, balance):
        fb = self._fb
        c = fb.colour(reason)
        self.reason = reason
        self.amount = amount
        self.balance = balance
        self.colour = c
        self.beeps = fb.beeps(reason)
        self.t0 = time.ticks_ms()
        self.active = True
        self.dirty = True
        self.logged = False
        self.green.value(c == fb.GREEN or c == fb.AMBER)
        self.red.value(c == fb.RED or c == fb.AMBER)
        self.buzz = self.beeps > 0
        if self.buzz:
            self.buzzer.duty_u16(32768)

    def idle(self):
        pass  # the card left: the pattern still ends by its own timing

    def _step(self, now):
        if not self.active:
            return
        c = 3 * self.colour
        on, period = _PAT[c] * 10, (_PAT[c] + _PAT[c + 1]) * 10
        dt = time.ticks_diff(now, self.t0)
        k = dt // period if period else 0
        b = k < self.beeps and dt - k * period < on
        if b != self.buzz:  # only edges reach the PWM
            self.buzz = b
            self.buzzer.duty_u16(32768 if b else 0)
        if dt >= _PAT[c + 2] * 100 and k >= self.beeps:
            self.green.value(0)
            self.red.value(0)
            if self.buzz:
                self.buzzer.duty_u16(0)
            self.active = self.buzz = False
            self.reason = -1
            self.dirty = True

    def _draw(self, pos, wifi):
        """The screen, one 8-pixel page at a time through a 128-byte framebuf."""
        import framebuf

        pg = bytearray(128)
        fbuf = framebuf.FrameBuffer(pg, 128, 8, framebuf.MONO_VLSB)
        rows = [""] * 8
        rows[0] = "L%d S%d %s%s" % (pos.line, pos.stop, "DN" if pos.direction else "UP",
                                   "  WIFI" if wifi else "")
        r = self.reason
        if r < 0:
            rows[3] = "PLEASE TAP"
            t = time.gmtime(time.time())
            rows[7] = "%02d:%02d" % (t[3], t[4])
        else:
            i = 0  # the start of line r of _TEXT, -1 past its end
            for _ in range(r):
                i = _TEXT.find(b"\n", i) + 1 or -1
                if i < 0:
                    break
            rows[2] = str(_TEXT[i:_TEXT.find(b"\n", i)], "ascii") \
                if 0 <= i < len(_TEXT) and r >= 0 else "FAULT %d" % r
            paid = self._fb.charged(r)
            if paid:
                rows[4] = "FARE %d.%02d" % (self.amount // 100, self.amount % 100)
            if paid or r == 9:  # R_INSUFFICIENT: the passenger sees why
                rows[6] = "BAL %d.%02d" % (self.balance // 100, self.balance % 100)
        for p in range(8):
            fbuf.fill(0)
            if rows[p]:
                fbuf.text(rows[p], 0, 0, 1)
            self.i2c.writeto(_OLED, bytes((0, 0x21, 0, 127, 0x22, p, p)))
            self.i2c.writevto(_OLED, (b"\x40", pg))
        self.dirty = False

    # -- position: driver keys and GPS ----------------------------------------------------
    def _set_pos(self, v, stop, direction, source):
        dev = getattr(v.processor, "dev", None)
        if dev is None:
            return
        pos = dev.position
        if stop != pos.stop or direction != pos.direction or source == "signon":
            v.processor.set_position(pos.line, stop, direction, 0)
            print("@POS %d %d %d %s" % (pos.line, stop, direction, source))
            self.dirty = True

    def _key(self, v, k):
        dev = getattr(v.processor, "dev", None)
        if dev is None:
            return
        pos = dev.position
        t = dev.tables.current(time.time())
        li = t.line_index(pos.line) if t is not None else -1
        n = t.line_stops(li) if li >= 0 else 0
        if k == 0:  # next stop
            self._set_pos(v, min(pos.stop + 1, n - 1) if n else pos.stop + 1, pos.direction,
                          "key")
        elif k == 1:  # previous stop
            self._set_pos(v, max(pos.stop - 1, 0), pos.direction, "key")
        elif k == 2:  # direction: the far terminus becomes stop 0 of the other direction
            self._set_pos(v, 0, pos.direction ^ 1, "key")
        else:  # driver sign-on: recorded, back to the start of the line
            from validator.app import content

            content.fault(dev.faults, "driver: sign-on line %d" % pos.line)
            print("@SIGNON %d" % pos.line)
            self._set_pos(v, 0, 0, "signon")

    def _gps(self, v):
        """Read NMEA from the receiver; on a fix, the nearest configured stop within
        _STOP_RADIUS_M becomes the position (board.json "stops": {"line": [[lat, lon],
        ...]} in the order of direction 0)."""
        u = self.gps
        ln = self._line
        ck = memoryview(ln)[80:]  # the receive chunk: the line's last 16 bytes
        while u.any():
            k = u.readinto(ck) or 0
            if not k:
                break
            for i in range(k):
                c = ck[i]
                if c == 0x24:  # "$" starts a sentence
                    self._n = 0
                if c == 0x0A:
                    self._nmea(v, bytes(ln[:self._n]).strip())
                    self._n = 0
                elif self._n < 80:
                    ln[self._n] = c
                    self._n += 1

    def _nmea(self, v, s):
        if len(s) < 10 or s[0] != 0x24 or s[-3] != 0x2A:
            return
        x = 0
        for c in s[1:-3]:
            x ^= c
        try:
            if x != int(s[-2:], 16):
                return  # NMEA 0183: XOR of the characters between $ and *
            f = s[1:-3].decode().split(",")
        except (ValueError, UnicodeError):
            return
        if f[0][2:] == "RMC" and len(f) > 6:
            fix = f[2] == "A"
            if fix != self.fix:
                self.fix = fix
                print("@GPS %d" % fix)
            if not fix:
                return
            self.lat = _coord(f[3], f[4])
            self.lon = _coord(f[5], f[6])
        else:
            return  # GGA and the rest: RMC carries position, validity and date
        dev = getattr(v.processor, "dev", None)
        if dev is None:
            return
        ln = self.stop_lines
        first = count = 0
        for j in range(0, len(ln), 3):
            if ln[j] == dev.position.line:
                first, count = ln[j + 1], ln[j + 2]
        if not count:
            return
        import math

        st = self.stops
        best, bi = float(_STOP_RADIUS_M), -1
        for i in range(count):
            p = 2 * (first + i)
            dx = (st[p + 1] - self.lon) * math.cos(math.radians(self.lat))
            d = math.sqrt(dx * dx + (st[p] - self.lat) ** 2) * 111195.0  # equirectangular
            if d < best:
                best, bi = d, i
        if bi >= 0 and bi != self._gstop:  # arrival at a stop; in between, and at the
            self._gstop = bi  # same stop, a driver key's correction stands
            dr = dev.position.direction
            self._set_pos(v, count - 1 - bi if dr else bi, dr, "gps")

    # -- the board task -------------------------------------------------------------------
    async def console_task(self, v):
        import asyncio
        import gc

        wdt = machine.WDT(timeout=self.wdt_ms)
        gc.collect()
        print("@READY %s heap_used=%d heap_free=%d" % (self.device_id.hex(), gc.mem_alloc(),
                                                      gc.mem_free()))
        wifi = False
        last_wifi = last_join = time.ticks_add(time.ticks_ms(), -20000)
        while True:
            wdt.feed()
            now = time.ticks_ms()
            self._step(now)
            if not self.logged:
                self.logged = True
                print("@TAP %d %d %d" % (self.reason, self.amount, self.balance))
            for i in range(4):
                if self.keys[i].value() == 0:
                    if self._kc[i] < _DEBOUNCE:
                        self._kc[i] += 1
                        if self._kc[i] == _DEBOUNCE:
                            self._key(v, i)
                else:
                    self._kc[i] = 0
            self._gps(v)
            if self.wlan is not None and time.ticks_diff(now, last_wifi) >= 500:
                last_wifi = now
                up = self.wlan.isconnected()
                if not up and time.ticks_diff(now, last_join) >= 10000:
                    last_join = now  # the station scans and joins in the background
                    self.wlan.connect(self.wifi[0], self.wifi[1])
                if up != wifi:
                    wifi = up
                    print("@WIFI %d" % up)
                    self.dirty = True
            if self.dirty and self.oled:
                dev = getattr(v.processor, "dev", None)
                if dev is not None:
                    self._draw(dev.position, wifi)
            await asyncio.sleep_ms(_TASK_MS)  # type: ignore[attr-defined]


def make_board():
    global wiring
    b = Board()
    # wiring's pin names are read once, here: its module dict (~1 KB of heap) goes
    _forget("wiring")
    del wiring
    return b
