# validator.drivers.pn532_link: PN532 host interfaces -- HSU (UART); SPI in pn532_spi.
# SPDX-License-Identifier: MIT
#
# Both adapters (Hsu here, pn532_spi.Spi) offer what validator.drivers.pn532.Pn532 needs:
#   write(buf, n)             send one frame
#   begin_read(timeout_ms)    wait until the chip has something to say -> bool
#   fill(chunk, timeout_ms)   next received bytes into chunk -> count (0 = nothing yet)
#   end_read()                close the read window
#   wakeup()                  bring the chip out of power-down / low-Vbat
#   uses_irq                  True when the board wired the IRQ line
#   fast                      HSU speed to switch to after wake-up (0: stay; Spi: 0)
#   baud                      the host side's HSU speed now (the link's set_baud sets it)
# They take bus objects built by the board; they never import machine.
from micropython import const

# An HSU board may ask for a faster line once the chip answers (SetSerialBaudRate, UM0701
# §7.2.8; the chip offers 9 600 .. 1 288 000): Hsu(link, fast=460800) and a link with
# set_baud(rate). 460 800 cuts a T-Union tap's PN532 line time from ~28 ms to ~7 ms
# (bench_txn's modelled_tap_ms_hsu460800) with margin on an ESP32 UART and a short ribbon;
# nfcpy reports 921 600 working on a Raspberry Pi (nfcpy#76). The default stays at the
# power-up 115 200: the esp32s3 board has the PN532 on SPI, and the unix board's 128 KiB
# day has no heap to spare for the switch's link method.
_HSU_POWER_UP = const(115200)


class Hsu:
    """PN532 High Speed UART (HSU), 115200 8N1 at power-up (UM0701 §6.2.3).

    `link` is a ByteLink (hal.py) that can also set_baud(rate) when `fast` is given.
    The chip sleeps after power-up in HSU mode and wakes on a long preamble: 0x55 0x55
    followed by zeros (UM0701 §7.2.11, "HSU wake-up condition"). Pn532.begin() switches
    both ends to `fast` and finds the chip again at either speed after a reset of either
    side.
    """

    uses_irq = False
    # class defaults: no instance attributes (heap) unless the board asks for a speed
    fast = 0  # the HSU speed Pn532.begin() switches to (0: stay at 115 200)
    baud = _HSU_POWER_UP  # the host side's speed now (Pn532.begin sets it)

    def __init__(self, link, fast=0):
        self.link = link
        if fast:
            self.fast = fast

    def wakeup(self):
        # a bytes literal: stays in the image, no buffer in the heap
        self.link.write(b"\x55\x55\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 16)

    def write(self, buf, n):
        self.link.write(buf, n)

    def begin_read(self, timeout_ms):
        return True

    def fill(self, chunk, timeout_ms):
        n = self.link.readinto(chunk)
        if n:
            return n
        if timeout_ms > 0 and self.link.wait(timeout_ms if timeout_ms < 20 else 20):
            n = self.link.readinto(chunk)
        return n or 0

    def end_read(self):
        pass
