"""emu.world: the emulated bus around one validator process (CPython only).

Creates the ptys the unix board opens (PN532 HSU or SPI bridge, PSAM I/O lines, a gpio
channel for the PSAM reset lines), runs the PN532 core with its RF field and the PSAM T=0
engines behind them in a service thread, and starts the real firmware on the MicroPython
unix port with a 128 KiB heap, its bytecode in a ROMFS image outside the heap as on the
MCU (emu.romfs; rom=False runs firmware/main.py from source instead). The firmware reports results
as "@..." lines on stdout; the simulator drives it through stdin ("T secs", "C n", "Q").
Wire formats of the bridge are described in boards/unix/board.py.
"""

import json
import os
import pty
import queue
import selectors
import shutil
import subprocess
import sys
import threading
import time
import tty

from emu import pn532 as pn
from emu.pn532_pty import pty_baud

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The MCU's heap, taken literally: -X heapsize=128k (129 536 bytes for objects). This unix
# port is 64-bit, so every object word and GC block is twice what it is on the 32-bit MCU:
# fitting here leaves the MCU about half its heap free. bench_heap also reports 512k
# figures (what the firmware uses with room to spare).
HEAP = "128k"


def _pty():
    m, s = pty.openpty()
    tty.setraw(s)
    tty.setraw(m)
    os.set_blocking(m, False)
    return m, s, os.ttyname(s)


def micropython_bin():
    return shutil.which("micropython") or os.path.join(sys.prefix, "bin", "micropython")


def mp_env(extra=None):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(
        os.path.join(ROOT, p) for p in ("boards/unix", "firmware", "host_tools")
    ) + ":.frozen"
    env.update(extra or {})
    return env


class World:
    def __init__(self, workdir, device_id="00000001", psams=(), spi=False, flash_size=64 << 20,
                 heap=HEAP, time_secs=None, main=None, log=None, extra_cfg=None, rom=True):
        # absolute: the firmware runs with cwd=ROOT (the checkout, or the installed tree),
        # so a relative folder (`ykt sim -o build/sim` from anywhere) would name another place
        workdir = self.workdir = os.path.abspath(workdir)
        os.makedirs(workdir, exist_ok=True)
        self.field = pn.Field()
        self.core = pn.Pn532Core(self.field, hsu=not spi)
        self.spi = pn.Pn532SpiSlave(self.core) if spi else None
        self.psams = list(psams)  # emu.t0.T0Card per slot
        self.device_id = device_id
        self.events = queue.Queue()
        self.lines = []
        self.log = log
        self._stop = threading.Event()
        self._fds = {}
        self._spi_buf = b""
        self._gpio_buf = b""
        self._rst = {}
        self.flash_path = os.path.join(workdir, "flash-%s.bin" % device_id)
        m, s, name = _pty()
        self._fds[m] = ("pn532", None)
        self._slaves = [s]
        cfg = {
            "device_id": device_id,
            "pn532": name,
            "pn532_mode": "spi" if spi else "hsu",
            "flash": self.flash_path,
            "flash_size": flash_size,
            "psam": [],
        }
        if time_secs is not None:
            cfg["time"] = time_secs
        m, s, name = _pty()
        self._fds[m] = ("gpio", None)
        self._slaves.append(s)
        cfg["gpio"] = name
        for i, _ in enumerate(self.psams):
            m, s, name = _pty()
            self._fds[m] = ("psam", i)
            self._slaves.append(s)
            cfg["psam"].append(name)
        cfg.update(extra_cfg or {})
        self.cfg = cfg
        self.cfg_path = os.path.join(workdir, "board-%s.json" % device_id)
        with open(self.cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
        self.heap = heap
        self.rom = rom and main is None  # firmware from a ROMFS image (emu.romfs)
        self.main = main or os.path.join(ROOT, "firmware", "main.py")
        self.proc = None

    # -- the service thread (emulated chips) ------------------------------------------
    def _serve(self):
        sel = selectors.DefaultSelector()
        for fd in self._fds:
            sel.register(fd, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in sel.select(0.005):
                fd = key.fd
                try:
                    data = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    continue
                if data:
                    self._on_bytes(fd, data)
            if self.spi is None:
                self.core.service()
                out = self.core.take()
                if out:
                    self._chip_out(self._pn532_fd(), out)

    def _pn532_fd(self):
        for fd, (kind, _) in self._fds.items():
            if kind == "pn532":
                return fd

    def _write(self, fd, data):
        while data:
            try:
                n = os.write(fd, data)
                data = data[n:]
            except BlockingIOError:
                time.sleep(0.0005)

    def _on_bytes(self, fd, data):
        kind, idx = self._fds[fd]
        if kind == "pn532":
            if self.spi is None:
                core = self.core
                core.feed(data, baud=self._host_baud())
                out = core.take()
                if out:
                    self._chip_out(fd, out)
            else:
                self._spi_bytes(fd, data)
        elif kind == "gpio":
            self._gpio_buf += data
            while len(self._gpio_buf) >= 3:
                op, slot, level = self._gpio_buf[:3]
                self._gpio_buf = self._gpio_buf[3:]
                if op == 0x52 and slot < len(self.psams):  # "R": reset line of a slot
                    prev = self._rst.get(slot, 1)
                    self._rst[slot] = level
                    if level and not prev:  # RST released: the card answers its ATR
                        atr = self.psams[slot].reset()
                        if atr:
                            self._write(self._psam_fd(slot), atr)
        elif kind == "psam":
            out = self.psams[idx].feed(data)
            if out:
                self._write(fd, out)

    def _host_baud(self):
        """The HSU speed the firmware set on its end of the PN532 pty (termios), or None."""
        return pty_baud(self._slaves[0])

    def _chip_out(self, fd, out):
        """The chip's bytes to the firmware; at a speed the firmware's end is not set to
        they arrive as framing errors: lost (emu.pn532 counts them)."""
        baud = self._host_baud()
        if baud is not None and baud != self.core.baud:
            self.core.lost_bytes += len(out)
            return
        self._write(fd, out)

    def pn532_power_cycle(self):
        """The reader board browns out and comes back: a fresh chip (asleep, 115 200 baud,
        RF off, no SAM configuration) in the same field, cards where they were."""
        self.core = pn.Pn532Core(self.field, hsu=self.spi is None)
        if self.spi is not None:
            self.spi = pn.Pn532SpiSlave(self.core)

    def _psam_fd(self, slot):
        for fd, (kind, i) in self._fds.items():
            if kind == "psam" and i == slot:
                return fd

    def _spi_bytes(self, fd, data):
        self._spi_buf = pn.spi_bridge(self._spi_buf + data, self.spi,
                                      lambda rx: self._write(fd, rx), strict=False)

    # -- the firmware process ------------------------------------------------------------
    def start(self, wait_ready=True, timeout=20):
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if self.rom:
            from emu import romfs

            args = romfs.command(romfs.build(), self.heap)
        else:
            args = [micropython_bin(), "-X", "heapsize=" + self.heap, self.main]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=mp_env({"YKT_BOARD_CONFIG": self.cfg_path}), cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        if wait_ready:
            self.wait("READY", timeout)
        return self

    def _read_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if self.log:
                self.log(line)
            if line.startswith("@"):
                self.events.put(line[1:])
        self.events.put("EXIT %s" % self.proc.wait())

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, prefix, timeout=10):
        """Next event starting with prefix (other events are kept in self.seen)."""
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                raise TimeoutError("no @%s from the firmware; last lines:\n%s"
                                   % (prefix, "\n".join(self.lines[-15:])))
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev.startswith(prefix):
                return ev
            if ev.startswith("EXIT"):
                raise RuntimeError("firmware exited (%s); last lines:\n%s"
                                   % (ev, "\n".join(self.lines[-25:])))

    def last_tap_detail(self):
        """Fare details of the tap just reported, from its "@DETAIL" line."""
        ev = self.wait("DETAIL", 5).split()
        from validator.rules import fares_host

        k = int(ev[2])
        return {"reason": int(ev[1]), "kind": fares_host.KIND_NAMES[k] if k else "none",
                "fare": int(ev[3]), "penalty": int(ev[4]), "status": int(ev[5]),
                "seq": int(ev[6])}

    def set_time(self, secs):
        self.send("T %d" % secs)
        self.wait("TIME")

    def tap(self, card, timeout=10, remove=True):
        """Place a card, wait for the firmware's result, take the card away again.
        Returns (reason, amount, balance, seq); details of the tap in self.detail."""
        self.field.place(card)
        ev = self.wait("TAP", timeout)
        self.detail = self.last_tap_detail()
        if remove:
            self.field.remove(card)
            self.wait("IDLE", timeout)
        _, reason, amount, balance, seq = ev.split()
        return int(reason), int(amount), int(balance), self.detail["seq"]

    def stop(self, timeout=10):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.send("Q")
                self.proc.wait(timeout)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._stop.set()
        for fd in list(self._fds) + self._slaves:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = {}
        self._slaves = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()
