# board (esp32s3_pn532): ESP32-S3 validator with a PN532 on HSU and one MOT PSAM slot.
# SPDX-License-Identifier: MIT
#
# The only place besides the other boards that imports machine. Pins and the flash plan
# are in wiring.py (shared with tests/hw); README.md has the wiring table.
#   PN532 (HSU, 115200 8N1)      UART1 TX=GPIO17 RX=GPIO18, RSTPD_N=GPIO8
#   PSAM slot 0 (ISO 7816-3)     UART2 on one I/O line (TX and RX tied: echo), 9600 8E2
#                                CLK = PWM 3.5712 MHz on GPIO10 (372 clocks per etu),
#                                RST = GPIO11
#   feedback                     LED green GPIO4, LED red GPIO5, buzzer PWM GPIO6
#   flash                        data partition "ykt" (esp32.Partition), raw NOR access
import select
import time

import esp32
import machine
import wiring


class UartLink:
    """hal.ByteLink over machine.UART (a MicroPython stream)."""

    def __init__(self, uart):
        self.uart = uart
        self._p = select.poll()
        self._p.register(uart, select.POLLIN)

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


class PartitionFlash:
    """hal.NorFlash on an ESP-IDF data partition (4 KiB erase blocks, 256-byte pages)."""

    def __init__(self, part):
        self.part = part
        self.block_size = 4096
        self.prog_size = 256
        self.block_count = part.ioctl(4, 0)
        self.size = self.block_count * self.block_size

    def read(self, addr, buf):
        self.part.readblocks(addr // 4096, buf, addr % 4096)

    def program(self, addr, buf):
        # writeblocks with an offset programs without erasing (extended block protocol)
        self.part.writeblocks(addr // 4096, buf, addr % 4096)

    def erase(self, block):
        self.part.ioctl(6, block)


class Clock:
    """RTC-backed; MicroPython on ESP32 counts seconds from 2000-01-01, like the device."""

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def ticks_add(self, a, d):
        return time.ticks_add(a, d)

    def sleep_ms(self, ms):
        time.sleep_ms(ms)

    def now(self):
        return time.time()

    def set_time(self, secs):
        t = time.gmtime(secs)
        machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


class Indicator:
    def __init__(self):
        from validator.app import feedback

        self._fb = feedback
        self.green = machine.Pin(wiring.LED_GREEN, machine.Pin.OUT, value=0)
        self.red = machine.Pin(wiring.LED_RED, machine.Pin.OUT, value=0)
        self.buzzer = machine.PWM(machine.Pin(wiring.BUZZER), freq=2700, duty_u16=0)

    def show(self, reason, amount, balance):
        c = self._fb.colour(reason)
        self.green.value(c == self._fb.GREEN or c == self._fb.AMBER)
        self.red.value(c == self._fb.RED or c == self._fb.AMBER)
        self.buzzer.duty_u16(32768 if self._fb.beeps(reason) else 0)

    def idle(self):
        self.green.value(0)
        self.red.value(0)
        self.buzzer.duty_u16(0)


class PsamPort:
    """hal.IsoPort: one contact slot; the card clock runs from PWM, RST is a GPIO."""

    def __init__(self, uart_id, io_pin, clk_pin, rst_pin):
        self.clk = machine.PWM(machine.Pin(clk_pin), freq=3571200, duty_u16=32768)
        self.rst = machine.Pin(rst_pin, machine.Pin.OUT, value=0)
        uart = machine.UART(uart_id, baudrate=9600, bits=8, parity=0, stop=2,
                            tx=io_pin, rx=io_pin, timeout=0, rxbuf=512)
        self.uart = uart
        self.link = UartLink(uart)
        self.echo = True  # one I/O line: everything sent is also received

    def set_etu(self, fi, di):
        """PPS agreed Fi/Di (ISO 7816-3 §9): bit rate = f / (Fi / Di), f = 3.5712 MHz."""
        self.uart.init(baudrate=3571200 * di // fi, bits=8, parity=0, stop=2)

    def reset(self, level):
        self.rst.value(level)


class Board:
    name = "esp32s3_pn532"

    def __init__(self):
        from validator.drivers.pn532_link import Hsu
        from validator.storage.plan_boards import PLAN_ESP32S3_16M

        self.device_id = machine.unique_id()[-4:]
        self.clock = Clock()
        self.indicator = Indicator()
        parts = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=wiring.FLASH_PARTITION)
        if not parts:
            raise OSError("no '%s' data partition" % wiring.FLASH_PARTITION)
        self.flash = PartitionFlash(parts[0])
        # FORMAT.md gives absolute flash addresses; the "ykt" partition starts at
        # wiring.FLASH_PARTITION_BASE (partitions.csv), and PartitionFlash is relative to it.
        base = wiring.FLASH_PARTITION_BASE
        self.flash_plan = {k: (off - base, ln) for k, (off, ln) in PLAN_ESP32S3_16M.items()
                           if off >= base}
        self.pn532_reset = machine.Pin(wiring.PN532_RSTPDN, machine.Pin.OUT, value=1)
        uart = machine.UART(wiring.PN532_UART, baudrate=115200, tx=wiring.PN532_TX,
                            rx=wiring.PN532_RX, timeout=0, rxbuf=1024)
        self.pn532 = Hsu(UartLink(uart))
        self.psam_ports = [PsamPort(wiring.PSAM_UART, wiring.PSAM_IO, wiring.PSAM_CLK,
                                    wiring.PSAM_RST)]

    def urandom(self, n):
        import os

        return os.urandom(n)


def make_board():
    return Board()
