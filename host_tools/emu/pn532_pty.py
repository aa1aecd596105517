"""emu.pn532_pty: one emulated PN532 on a pty of its own (CPython only), for any host driver.

HSU (default): the pty carries the chip's UART bytes. The line speed is the pty's termios
speed as the host set it (pyserial's baudrate): bytes sent at a speed other than the
chip's are lost as framing errors, so a driver that changes the speed with
SetSerialBaudRate must follow it (UM0701 §7.2.8: the chip switches once the host ACKed its
answer). A pty has no per-byte speed and drops what the host flushes before this end read
it, so a host seen at the new speed while the change is pending counts as having ACKed.

SPI (`spi=True`): the pty carries the bridge of boards/unix/board.py: b"S" NSS low,
b"D" NSS high, b"X" len data -> len MISO bytes (full duplex; the chip's LSB-first bytes
appear bit-reversed on this MSB-first bus, UM0701 §6.2.5).
"""

import os
import pty
import selectors
import termios
import threading
import tty

from emu import pn532 as pn

_SPEEDS = {getattr(termios, "B%d" % b): b for b in pn.BAUD_RATES if hasattr(termios, "B%d" % b)}


def pty_baud(fd):
    """The speed the host set on its end of a pty (termios), None if unknown."""
    try:
        return _SPEEDS.get(termios.tcgetattr(fd)[5])
    except termios.error:
        return None


class Pn532Pty:
    def __init__(self, cards=(), spi=False):
        self.field = pn.Field()
        self.core = pn.Pn532Core(self.field, hsu=not spi)
        self.spi = pn.Pn532SpiSlave(self.core) if spi else None
        for c in cards:
            self.field.place(c)
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.name = os.ttyname(self.slave)
        self._buf = b""
        self._stop = threading.Event()
        self._thread = None

    def host_baud(self):
        """The speed the host set on its end of the line (None if unknown)."""
        return pty_baud(self.slave)

    def _write(self, data):
        while data:
            try:
                data = data[os.write(self.master, data):]
            except BlockingIOError:
                self._stop.wait(0.0005)

    def _on_bytes(self, data):
        if self.spi is None:
            self.core.feed(data, baud=self.host_baud())
            return
        self._buf = pn.spi_bridge(self._buf + data, self.spi, self._write)

    def serve(self, stop=None):
        """Serve until stop (a threading.Event) is set, or forever."""
        stop = stop or self._stop
        sel = selectors.DefaultSelector()
        sel.register(self.master, selectors.EVENT_READ)
        while not stop.is_set():
            for _ in sel.select(0.005):
                try:
                    data = os.read(self.master, 4096)
                except BlockingIOError:
                    continue
                except OSError:  # no host has the pty open (EIO): wait for one
                    stop.wait(0.01)
                    continue
                if data:
                    self._on_bytes(data)
            if self.spi is None:
                out = self.core.take()
                if out:
                    self._write(out)
        sel.close()

    def start(self):
        self._thread = threading.Thread(target=self.serve, daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        os.close(self.master)
        os.close(self.slave)
