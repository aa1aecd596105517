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
# They take bus objects built by the board; they never import machine.


class Hsu:
    """PN532 High Speed UART (HSU), 115200 8N1 by default (UM0701 §6.2.3).

    `link` is a ByteLink (hal.py). The chip sleeps after power-up in HSU mode and wakes on
    a long preamble: 0x55 0x55 followed by zeros (UM0701 §7.2.11, "HSU wake-up condition").
    """

    uses_irq = False

    def __init__(self, link):
        self.link = link

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
