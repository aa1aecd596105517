# validator.drivers.pn532_spi: PN532 host interface over SPI (the transport contract is
# described in validator.drivers.pn532_link).
# SPDX-License-Identifier: MIT
#
# A module of its own so that HSU boards (the usual wiring) never load the SPI class and
# its bit-reversal table into the heap. It takes bus objects built by the board; it never
# imports machine.
from micropython import const

_SPI_DW = const(0x01)  # data write   (UM0701 §6.2.5)
_SPI_SR = const(0x02)  # status read
_SPI_DR = const(0x03)  # data read
_SPI_CHUNK = const(16)

# Bit reversal for buses that can only shift MSB first: the PN532 SPI is LSB first
# (UM0701 §6.2.5). A 256-byte bytes literal: it stays in the image (flash / ROMFS), not
# in the heap; entry i is i with its bit order reversed.
_REV = (
    b"\x00\x80\x40\xc0\x20\xa0\x60\xe0\x10\x90\x50\xd0\x30\xb0\x70\xf0"
    b"\x08\x88\x48\xc8\x28\xa8\x68\xe8\x18\x98\x58\xd8\x38\xb8\x78\xf8"
    b"\x04\x84\x44\xc4\x24\xa4\x64\xe4\x14\x94\x54\xd4\x34\xb4\x74\xf4"
    b"\x0c\x8c\x4c\xcc\x2c\xac\x6c\xec\x1c\x9c\x5c\xdc\x3c\xbc\x7c\xfc"
    b"\x02\x82\x42\xc2\x22\xa2\x62\xe2\x12\x92\x52\xd2\x32\xb2\x72\xf2"
    b"\x0a\x8a\x4a\xca\x2a\xaa\x6a\xea\x1a\x9a\x5a\xda\x3a\xba\x7a\xfa"
    b"\x06\x86\x46\xc6\x26\xa6\x66\xe6\x16\x96\x56\xd6\x36\xb6\x76\xf6"
    b"\x0e\x8e\x4e\xce\x2e\xae\x6e\xee\x1e\x9e\x5e\xde\x3e\xbe\x7e\xfe"
    b"\x01\x81\x41\xc1\x21\xa1\x61\xe1\x11\x91\x51\xd1\x31\xb1\x71\xf1"
    b"\x09\x89\x49\xc9\x29\xa9\x69\xe9\x19\x99\x59\xd9\x39\xb9\x79\xf9"
    b"\x05\x85\x45\xc5\x25\xa5\x65\xe5\x15\x95\x55\xd5\x35\xb5\x75\xf5"
    b"\x0d\x8d\x4d\xcd\x2d\xad\x6d\xed\x1d\x9d\x5d\xdd\x3d\xbd\x7d\xfd"
    b"\x03\x83\x43\xc3\x23\xa3\x63\xe3\x13\x93\x53\xd3\x33\xb3\x73\xf3"
    b"\x0b\x8b\x4b\xcb\x2b\xab\x6b\xeb\x1b\x9b\x5b\xdb\x3b\xbb\x7b\xfb"
    b"\x07\x87\x47\xc7\x27\xa7\x67\xe7\x17\x97\x57\xd7\x37\xb7\x77\xf7"
    b"\x0f\x8f\x4f\xcf\x2f\xaf\x6f\xef\x1f\x9f\x5f\xdf\x3f\xbf\x7f\xff"
)


class Spi:
    """PN532 over SPI mode 0 (UM0701 §6.2.5): every transaction starts with an op byte.

    `spi` offers write_readinto(tx, rx); `cs(level)` drives chip select (0 = selected).
    Set msb_only=True when the bus cannot shift LSB first: bytes are then bit-reversed
    in software through a table. `clock` paces status polling.
    """

    fast = 0  # no line speed to negotiate on SPI (pn532_link: HSU only)

    def __init__(self, spi, cs, clock, msb_only=True, irq=None):
        self.spi = spi
        self.cs = cs
        self.clock = clock
        self.msb_only = msb_only
        self.irq = irq
        self.uses_irq = irq is not None
        self._op = bytearray(1)
        self._opr = bytearray(1)
        self._st = bytearray(2)
        self._str = bytearray(2)
        self._tx = bytearray(_SPI_CHUNK)
        self._rx = bytearray(_SPI_CHUNK)
        self._one = bytearray(1)
        self._oner = bytearray(1)

    def _b(self, v):
        return _REV[v] if self.msb_only else v

    def wakeup(self):
        # SPI wakes on NSS going low; give the oscillator time (UM0701 §7.2.11: ~2 ms).
        self.cs(0)
        self.clock.sleep_ms(2)
        self.cs(1)

    def write(self, buf, n):
        self.cs(0)
        try:
            self._op[0] = self._b(_SPI_DW)
            self.spi.write_readinto(self._op, self._opr)
            tx = self._tx
            rx = self._rx
            i = 0
            while i < n:
                k = n - i
                if k >= _SPI_CHUNK:
                    for j in range(_SPI_CHUNK):
                        tx[j] = self._b(buf[i + j])
                    self.spi.write_readinto(tx, rx)
                    i += _SPI_CHUNK
                else:
                    for j in range(k):
                        self._one[0] = self._b(buf[i + j])
                        self.spi.write_readinto(self._one, self._oner)
                    i = n
        finally:
            self.cs(1)

    def _ready(self):
        if self.irq is not None:
            return self.irq() == 0
        self.cs(0)
        try:
            self._st[0] = self._b(_SPI_SR)
            self._st[1] = 0
            self.spi.write_readinto(self._st, self._str)
        finally:
            self.cs(1)
        return (self._b(self._str[1]) & 0x01) == 1

    def begin_read(self, timeout_ms):
        clk = self.clock
        deadline = clk.ticks_add(clk.ticks_ms(), timeout_ms)
        while not self._ready():
            if clk.ticks_diff(deadline, clk.ticks_ms()) <= 0:
                return False
            clk.sleep_ms(1)
        self.cs(0)
        self._op[0] = self._b(_SPI_DR)
        self.spi.write_readinto(self._op, self._opr)
        return True

    def fill(self, chunk, timeout_ms):
        tx = self._tx
        for j in range(_SPI_CHUNK):
            tx[j] = 0
        self.spi.write_readinto(tx, self._rx)
        rx = self._rx
        for j in range(_SPI_CHUNK):
            chunk[j] = self._b(rx[j])
        return _SPI_CHUNK

    def end_read(self):
        self.cs(1)
