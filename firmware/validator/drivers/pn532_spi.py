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
# (UM0701 §6.2.5). 256-byte table kept as bytes so it stays in flash when frozen.
_REV = bytes(
    ((i & 1) << 7) | ((i & 2) << 5) | ((i & 4) << 3) | ((i & 8) << 1)
    | ((i & 16) >> 1) | ((i & 32) >> 3) | ((i & 64) >> 5) | ((i & 128) >> 7)
    for i in range(256)
)


class Spi:
    """PN532 over SPI mode 0 (UM0701 §6.2.5): every transaction starts with an op byte.

    `spi` offers write_readinto(tx, rx); `cs(level)` drives chip select (0 = selected).
    Set msb_only=True when the bus cannot shift LSB first: bytes are then bit-reversed
    in software through a table. `clock` paces status polling.
    """

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
