"""emu.s3world: the emulated PCB around boards/esp32s3_pn532/board.py (CPython only).

The real board's board.py runs unchanged on the MicroPython unix port: the `machine`,
`esp32`, `network` and `time` modules are the shim in boards/shim, and every
peripheral is a pty whose far end is served here, in one service thread:

  SPI2 bridge   the PN532 (emu.pn532 core + SPI slave; NSS is GPIO wiring.PN532_NSS)
  UART1, UART2  PSAM slots 0 (MOT) and 1 (local issuer), T=0 engines (emu.t0) on one
                I/O line each: every byte the firmware sends comes back (echo); a slot
                answers its ATR when RST rises with its CLK running (PWM frames)
  UART0         the GPS receiver (emu.gps: RMC + GGA once a second while enabled)
  I2C0          emu.i2cbus: DS3231 (battery-backed: a JSON file beside the flash) and
                SSD1306 (framebuffer read back as text with the runtime's own font)
  ctl           GPIO/PWM frames (kept with host timestamps: feedback timing), the
                watchdog (no feed within its timeout -> SIGKILL, like the chip's reset),
                Wi-Fi (`network_seen`), driver keys (press())
  flash         a 32 MiB emu.nor image file (esp32.Partition "ykt" at 0x400000)

The firmware and the board's glue run from a ROMFS image outside the 128 KiB heap (as
frozen code on the MCU; emu.romfs). power_cut() kills the process (SIGKILL) and start()
boots it again with the same ptys, flash and RTC file, like a bus's ignition.
"""

import json
import os
import pty
import queue
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
import tty

from emu import gps as gpsmod
from emu import i2cbus, romfs
from emu import pn532 as pn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEAP = "128k"
FLASH_SIZE = 32 << 20
PARTITION = (0x400000, 0x1C00000)
CONTENT = (
    ("firmware/validator", "validator"),
    ("firmware/main.py", "main.py"),
    ("boards/esp32s3_pn532/board.py", "board.py"),
    ("boards/esp32s3_pn532/wiring.py", "wiring.py"),
    ("boards/shim/machine.py", "machine.py"),
    ("boards/shim/time.py", "time.py"),
    ("boards/shim/esp32.py", "esp32.py"),
    ("boards/shim/network.py", "network.py"),
    ("host_tools/emu/nor.py", "emu/nor.py"),
)


def wiring():
    """boards/esp32s3_pn532/wiring.py read on the host (its consts as plain ints)."""
    ns = {}
    with open(os.path.join(ROOT, "boards", "esp32s3_pn532", "wiring.py")) as f:
        src = f.read().replace("from micropython import const", "const = int")
    exec(compile(src, "wiring.py", "exec"), ns)
    return {k: v for k, v in ns.items() if k.isupper()}


def _pty():
    m, s = pty.openpty()
    tty.setraw(s)
    tty.setraw(m)
    os.set_blocking(m, False)
    return m, s, os.ttyname(s)


class S3World:
    def __init__(self, workdir, psams, unique_id="a0b1c2d300000001", heap=HEAP,
                 board_cfg=None, log=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.w = wiring()
        self.field = pn.Field()
        self.core = pn.Pn532Core(self.field, hsu=False)
        self.spi = pn.Pn532SpiSlave(self.core)
        self.psams = list(psams)
        self.gps = gpsmod.Gps()
        self.gps_on = False
        self.gps_time = None  # unix seconds the receiver reports (None: host time)
        self.rtc = i2cbus.Ds3231(os.path.join(workdir, "ds3231.json"))
        self.oled = i2cbus.Ssd1306()
        self.bus = i2cbus.Bus([self.rtc, self.oled])
        self.flash_path = os.path.join(workdir, "flash.bin")
        self.events = queue.Queue()
        self.lines = []
        self.log = log
        self.pins = {}
        self.pwm = {}
        self.trace = []  # (host time, "P"|"F", pin, value): LED and buzzer timing
        self.network_seen = False
        self.wlan_join = False
        self.wdt_ms = None
        self.wdt_fed = 0.0
        self.wdt_resets = 0
        self.reset_cause = 1
        self.proc = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._fds = {}
        self._slaves = []
        self._bufs = {}
        cfg = {"uart": {}, "spi": {}, "i2c": {}, "unique_id": unique_id,
               "spi_cs": {str(self.w["PN532_NSS"]): str(self.w["PN532_SPI"])},
               "flash": {"path": self.flash_path, "size": FLASH_SIZE,
                         "partitions": {self.w["FLASH_PARTITION"]: list(PARTITION)}}}
        cfg["spi"][str(self.w["PN532_SPI"])] = self._open("spi", None)
        cfg["uart"][str(self.w["PSAM0_UART"])] = self._open("psam", 0)
        cfg["uart"][str(self.w["PSAM1_UART"])] = self._open("psam", 1)
        cfg["uart"][str(self.w["GPS_UART"])] = self._open("gps", None)
        cfg["i2c"][str(self.w["I2C_ID"])] = self._open("i2c", None)
        cfg["ctl"] = self._open("ctl", None)
        self.cfg = cfg
        self.cfg_path = os.path.join(workdir, "machine.json")
        self.board_cfg = board_cfg  # None: the board keeps the board.json it has (deployed)
        self.heap = heap
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _open(self, kind, idx):
        m, s, name = _pty()
        self._fds[m] = (kind, idx)
        self._slaves.append(s)
        self._bufs[m] = b""
        return name

    def _fd(self, kind, idx=None):
        for fd, (k, i) in self._fds.items():
            if k == kind and i == idx:
                return fd
        return None

    # -- the service thread -----------------------------------------------------------------
    def _serve(self):
        sel = selectors.DefaultSelector()
        for fd in self._fds:
            sel.register(fd, selectors.EVENT_READ)
        last_gps = 0.0
        while not self._stop.is_set():
            for key, _ in sel.select(0.005):
                try:
                    data = os.read(key.fd, 4096)
                except (BlockingIOError, OSError):
                    continue
                if data:
                    with self._lock:
                        self._on_bytes(key.fd, data)
            now = time.time()
            if self.gps_on and now - last_gps >= 1.0:
                last_gps = now
                self._write(self._fd("gps"), self.gps.sentences(self.gps_time or now))
            if self.wdt_ms and self.proc is not None and self.proc.poll() is None:
                if (now - self.wdt_fed) * 1000 > self.wdt_ms:
                    self.wdt_ms = None
                    self.wdt_resets += 1
                    self.reset_cause = 3  # machine.WDT_RESET
                    self.events.put("WDT")  # before the process's EXIT
                    self.proc.send_signal(signal.SIGKILL)

    def _write(self, fd, data):
        while data:
            try:
                n = os.write(fd, data)
                data = data[n:]
            except BlockingIOError:
                time.sleep(0.0005)
            except OSError:
                return

    def _on_bytes(self, fd, data):
        kind, idx = self._fds[fd]
        if kind == "spi":
            self._bufs[fd] = pn.spi_bridge(self._bufs[fd] + data, self.spi,
                                           lambda rx: self._write(fd, rx), strict=False)
        elif kind == "psam":
            self._write(fd, data)  # one I/O line: the firmware reads its own bytes back
            out = self.psams[idx].feed(data)
            if out:
                self._write(fd, out)
        elif kind == "i2c":
            out = self.bus.feed(data)
            if out:
                self._write(fd, out)
        elif kind == "ctl":
            b = self._bufs[fd] + data
            while len(b) >= 8:
                self._ctl(*struct.unpack(">BBHI", b[:8]))
                b = b[8:]
            self._bufs[fd] = b

    def _ctl(self, op, pin, a, b):
        t = time.time()
        w = self.w
        if op == 0x50:  # P: GPIO level
            prev = self.pins.get(pin)
            self.pins[pin] = a
            self.trace.append((t, "P", pin, a))
            for slot, (rst, clk) in enumerate(((w["PSAM0_RST"], w["PSAM0_CLK"]),
                                               (w["PSAM1_RST"], w["PSAM1_CLK"]))):
                if pin == rst and a and prev == 0 and slot < len(self.psams):
                    f, d = self.pwm.get(clk, (0, 0))
                    if f and d:  # a card answers only with its clock running
                        atr = self.psams[slot].reset()
                        if atr:
                            self._write(self._fd("psam", slot), atr)
        elif op == 0x46:  # F: PWM duty, freq
            self.pwm[pin] = (b, a)
            self.trace.append((t, "F", pin, a))
        elif op == 0x45:  # E: watchdog started
            self.wdt_ms = b
            self.wdt_fed = t
        elif op == 0x57:  # W: fed
            self.wdt_fed = t
        elif op == 0x4E:  # N: station join / leave
            self.wlan_join = bool(a)

    def _send_ctl(self, op, pin, a, b=0):
        self._write(self._fd("ctl"), struct.pack(">BBHI", op, pin, a, b))

    # -- what a test does to the world ----------------------------------------------------
    def set_network(self, seen):
        """The terminus Wi-Fi comes into range (or goes)."""
        self.network_seen = seen
        self._send_ctl(0x4E, 0, 1 if seen else 0)

    def press(self, key, hold_s=0.08):
        """A driver key: NEXT, PREV, DIR or SIGNON (active low)."""
        pin = self.w["KEY_" + key]
        self._send_ctl(0x49, pin, 0)
        time.sleep(hold_s)
        self._send_ctl(0x49, pin, 1)
        time.sleep(hold_s)  # a finger lifts for a while before the next press

    def screen(self, font):
        return self.oled.text(font)

    # -- the firmware process ------------------------------------------------------------
    def repl(self, heap="1M"):
        """The board in maintenance mode: the unix port's REPL on a pty (mpremote connects
        to the returned /dev/pts/N with `resume`), cwd = the board's filesystem, the same
        buses. Stop it (stop_repl) before start()."""
        m, s = pty.openpty()
        tty.setraw(s)
        env = dict(os.environ, YKT_MACHINE=self.cfg_path, MICROPYPATH=":.frozen")
        with open(self.cfg_path, "w") as f:
            json.dump(dict(self.cfg, reset_cause=self.reset_cause), f, indent=1)
        self._power_on()
        self.repl_proc = subprocess.Popen([romfs_mp(), "-X", "heapsize=" + heap],
                                          stdin=m, stdout=m, stderr=m, env=env,
                                          cwd=self.workdir)
        os.close(m)
        self._repl_slave = s
        return os.ttyname(s)

    def stop_repl(self):
        self.repl_proc.kill()
        self.repl_proc.wait()
        os.close(self._repl_slave)

    def start(self, wait_ready=True, timeout=30, image=None):
        cfg = dict(self.cfg, reset_cause=self.reset_cause)
        with open(self.cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
        if self.board_cfg is not None:
            with open(os.path.join(self.workdir, "board.json"), "w") as f:
                json.dump(self.board_cfg, f, indent=1)
        self._power_on()
        self.network_seen and self._send_ctl(0x4E, 0, 1)
        image = image or romfs.build(content=CONTENT)
        args = romfs.command(image, self.heap)
        env = dict(os.environ)
        env["YKT_MACHINE"] = self.cfg_path
        env["PYTHONPATH"] = os.path.join(ROOT, "host_tools")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        self._reader = threading.Thread(target=self._read_stdout, args=(self.proc,),
                                        daemon=True)
        self._reader.start()
        self.reset_cause = 1
        if wait_ready:
            self.wait("READY", timeout)
        return self

    def _power_on(self):
        """Every chip starts from reset: bytes in flight when the power went are gone (pty
        queues flushed, half-received I2C/SPI/ctl requests dropped), the PN532 restarts."""
        import termios

        with self._lock:
            for fd in list(self._fds) + self._slaves:
                try:
                    termios.tcflush(fd, termios.TCIOFLUSH)
                except (OSError, termios.error):
                    pass
            for fd in self._bufs:
                self._bufs[fd] = b""
            self.bus.buf = b""
            self.core = pn.Pn532Core(self.field, hsu=False)
            self.spi = pn.Pn532SpiSlave(self.core)
            self.wdt_ms = None
            self.pins.clear()
            self.pwm.clear()

    def _read_stdout(self, proc):
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if self.log:
                self.log(line)
            if line.startswith("@"):
                self.events.put(line[1:])
        self.events.put("EXIT %s" % proc.wait())

    def wait(self, prefix, timeout=10):
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                raise TimeoutError("no @%s from the firmware; last lines:\n%s"
                                   % (prefix, "\n".join(self.lines[-20:])))
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev.startswith(prefix):
                return ev
            if ev.startswith("EXIT") and not prefix.startswith("EXIT"):
                raise RuntimeError("firmware exited (%s); last lines:\n%s"
                                   % (ev, "\n".join(self.lines[-30:])))

    def drain(self):
        while True:
            try:
                self.events.get_nowait()
            except queue.Empty:
                return

    def tap(self, card, timeout=15, remove=True):
        """Place a card, wait for "@TAP reason amount balance", take the card away."""
        self.field.place(card)
        ev = self.wait("TAP", timeout).split()
        if remove:
            self.field.remove(card)
        return int(ev[1]), int(ev[2]), int(ev[3])

    def power_cut(self):
        """Ignition off: the process dies at once (SIGKILL), nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.wdt_ms = None
        self.wait("EXIT", 5)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stop.set()
        self._thread.join(2)
        for fd in list(self._fds) + self._slaves:
            try:
                os.close(fd)
            except OSError:
                pass


def romfs_mp():
    import shutil

    return shutil.which("micropython") or os.path.join(os.path.dirname(sys.executable),
                                                       "micropython")


def run_main():  # pragma: no cover - manual: python -m emu.s3world DIR
    w = S3World(sys.argv[1], psams=(), log=print)
    w.start(wait_ready=False)
    w.proc.wait()
