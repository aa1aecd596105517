# mp_tap_replay: replay one recorded flat-fare tap K times on the unix port (instr_per_tap).
# SPDX-License-Identifier: MIT
#
# MicroPython script (also runs on CPython), run by bench_txn under callgrind:
#   micropython -X heapsize=8m host_tools/bench/mp_tap_replay.py MODE K [STACK]
# with MICROPYPATH = firmware:host_tools. One real tap is recorded against the
# emulators (T-Union card, emulated MOT PSAM behind emu.t0 over the firmware's own T=0
# link, stores on emu.nor); then the card and PSAM bytes are replayed from journals
# (emu.rig's Journal/JournalLink for the PSAM), so the emulators' Python work
# (crypto, APDU parsing, T=0 and PN532 byte engines) is not counted. The flash is a NOR
# model whose operations are C-level slice copies (FastNor below), mirrored onto emu.nor
# while recording.
# STACK pn532 (default): the app's view of a tap -- Iso14443Reader.poll(), txn.tap(),
#   release() -- through the firmware PN532 driver over HSU; the UART bytes of the PN532
#   emulator (emu.pn532) are journalled (WireJournal, same chunks on replay).
# STACK apdu: txn.tap() alone; rig.Reader replays the card's answers at APDU level.
#
# MODE tap:  K times { rewind journals; clock + 61 s (past the repeat window); tap; idle }
# MODE cal:  the same loop with the tap replaced by the calls the firmware made to the
#            board/harness objects (links, reader, clock, flash) during one replayed tap,
#            with the same arguments, through the same tracer wrappers. cal therefore
#            counts the harness cost per tap, which bench_txn subtracts.
# MODE loop: the loop alone (rewind, idle), nothing in place of the tap.
# MODE check: tap mode with every flash operation still mirrored onto emu.nor; at the end
#            the two flash images must be equal (FastNor behaves as emu.nor here).
# Prints "KEY value" lines: TAPS (taps answered R_OK), EXCHANGES (per tap), PROGRAMS
# (flash programs per tap), CALLS (harness calls per tap), MISMATCH (replayed bytes or
# writes that differ from the recording: the date-time), RECORDS (the log's next seq),
# SAME (check).
import gc
import sys

from emu import rig
from validator.errors import R_OK

_BS = 4096  # W25Q-like: 4 KiB sectors, 256-byte pages
_LOG = (0, 24 * _BS)
_WM = (24 * _BS, 2 * _BS)
_TEAR = (26 * _BS, 2 * _BS)
_BL = (28 * _BS, 6 * _BS)  # two banks of 3 blocks (the minimum)
_SIZE = 34 * _BS


class FastNor:
    """NOR flash (hal.NorFlash) with C-level slice operations. Programming may only clear
    bits (checked with one big-int OR). `mirror` (an emu.nor.NorFlash) gets every
    operation too while set. `log` (a list) records (bound method, args) calls."""

    def __init__(self, mirror):
        self.size = _SIZE
        self.block_size = _BS
        self.prog_size = 256
        self.block_count = _SIZE // _BS
        self.ram = bytearray(b"\xff" * _SIZE)
        self.mirror = mirror
        self.programs = 0
        self.strict = True  # False in cal mode: a replayed tear save lands on its own clear
        self.reads = 0  # RecordLog.mount() reports reads_at_mount from it
        self.log = None

    def read(self, addr, buf):
        if self.log is not None:
            self.log.append((self.read, (addr, buf)))
        if self.mirror is not None:
            self.mirror.read(addr, buf)
        self.reads += 1
        n = len(buf)
        buf[:] = memoryview(self.ram)[addr:addr + n]

    def program(self, addr, buf):
        if self.log is not None:
            # a copy: the firmware reuses its buffers, cal mode must program the same bytes
            self.log.append((self.program, (addr, bytes(buf))))
        if self.mirror is not None:
            self.mirror.program(addr, buf)
        n = len(buf)
        old = int.from_bytes(self.ram[addr:addr + n], "big")
        if old | int.from_bytes(bytes(buf), "big") != old and self.strict:
            raise OSError("program would set a bit")
        self.ram[addr:addr + n] = buf
        self.programs += 1

    def erase(self, block):
        if self.log is not None:
            self.log.append((self.erase, (block,)))
        if self.mirror is not None:
            self.mirror.erase(block)
        a = block * _BS
        self.ram[a:a + _BS] = b"\xff" * _BS


class TLink:
    """Tracing pass-through IsoPort/ByteLink in front of rig.JournalLink."""

    def __init__(self, inner):
        self.inner = inner
        self.link = self
        self.echo = inner.echo
        self.log = None

    def reset(self, level):
        self.inner.reset(level)

    def set_etu(self, fi, di):
        self.inner.inner.set_etu(fi, di)

    def write(self, buf, n):
        if self.log is not None:
            self.log.append((self.write, (bytes(buf), n)))  # the bytes as sent
        return self.inner.write(buf, n)

    def readinto(self, buf):
        if self.log is not None:
            self.log.append((self.readinto, (buf,)))
        return self.inner.readinto(buf)

    def wait(self, ms):
        if self.log is not None:
            self.log.append((self.wait, (ms,)))
        return self.inner.wait(ms)

    def drain(self):
        if self.log is not None:
            self.log.append((self.drain, ()))
        self.inner.drain()


class TReader:
    def __init__(self, inner):
        self.inner = inner
        self.log = None

    def transmit(self, cmd, n, resp):
        if self.log is not None:
            self.log.append((self.transmit, (bytes(cmd), n, resp)))  # as sent
        return self.inner.transmit(cmd, n, resp)


class TClock:
    def __init__(self, inner):
        self.inner = inner
        self.log = None

    def now(self):
        if self.log is not None:
            self.log.append((self.now, ()))
        return self.inner.t

    def ticks_ms(self):
        if self.log is not None:
            self.log.append((self.ticks_ms, ()))
        return self.inner.ms

    def ticks_diff(self, a, b):
        if self.log is not None:
            self.log.append((self.ticks_diff, (a, b)))
        return a - b

    def ticks_add(self, a, d):
        if self.log is not None:
            self.log.append((self.ticks_add, (a, d)))
        return a + d

    def sleep_ms(self, ms):
        if self.log is not None:
            self.log.append((self.sleep_ms, (ms,)))
        self.inner.ms += ms


class WireJournal:
    """ByteLink in front of emu.wires.HsuWire (the PN532 emulator): records what each
    readinto()/wait() returned, then replays exactly that (same chunk sizes) with slice
    copies; writes are compared with the recording."""

    def __init__(self, inner):
        self.inner = inner
        self.echo = False
        self.tx = bytearray()
        self.ev = []  # readinto -> bytes, wait -> bool
        self.replay = False
        self.itx = 0
        self.iev = 0
        self.mismatch = 0

    def start_replay(self):
        self.replay = True
        self.itx = 0
        self.iev = 0
        self.mismatch = 0

    def write(self, buf, n):
        if self.replay:
            if memoryview(self.tx)[self.itx:self.itx + n] != memoryview(buf)[:n]:
                self.mismatch += 1
            self.itx += n
            return n
        self.tx += bytes(buf[:n])
        return self.inner.write(buf, n)

    def readinto(self, buf):
        if self.replay:
            if self.iev >= len(self.ev):
                return 0
            c = self.ev[self.iev]
            self.iev += 1
            buf[:len(c)] = c
            return len(c)
        n = self.inner.readinto(buf)
        self.ev.append(bytes(buf[:n]))
        return n

    def wait(self, ms):
        if self.replay:
            if self.iev >= len(self.ev):
                return False
            w = self.ev[self.iev]
            self.iev += 1
            return w
        w = self.inner.wait(ms)
        self.ev.append(w)
        return w

    def drain(self):
        if not self.replay:
            self.inner.drain()


class Bench:
    """One validator core wired as in rig.Rig, with tracers and FastNor."""

    def __init__(self, stack="pn532"):
        from emu.nor import NorFlash
        from emu.psam import Psam as PsamEmu
        from emu.t0 import T0Card
        from validator.link.iso7816 import Iso7816
        from validator.sam.psam import Psam
        from validator.storage import blacklist as bl
        from validator.storage.recordlog import RecordLog, TearStore
        from validator.txn.transaction import Transaction

        self.rclock = rig.Clock()
        self.clock = TClock(self.rclock)
        self.port = rig.T0Port(T0Card(PsamEmu(rig.keys(), terminal_no=rig.TERM)), self.rclock)
        self.pj = rig.Journal()
        self.cj = rig.Journal()
        self.link = TLink(rig.JournalLink(self.port, self.pj))
        slot = Iso7816(self.link, self.clock)
        self.psam = Psam(slot, slot.power_up)
        self.psam.boot()
        self.pj.ntx = self.pj.nrx = 0  # the journal holds the tap only
        self.rreader = rig.Reader(journal=self.cj)
        self.iso = None
        self.wire = None
        if stack == "pn532":
            # the firmware's own reader stack: Iso14443Reader -> Pn532 -> Hsu -> UART
            from emu import pn532 as emu_pn532
            from emu.wires import HsuWire, SimClock
            from validator.drivers.pn532 import Pn532
            from validator.drivers.pn532_link import Hsu
            from validator.link.iso14443 import Iso14443Reader

            self.field = emu_pn532.Field()
            core = emu_pn532.Pn532Core(self.field, hsu=True)
            self.wire = WireJournal(HsuWire(core, SimClock()))
            self.hsu = TLink(self.wire)
            self.iso = Iso14443Reader(Pn532(Hsu(self.hsu), self.clock))
            self.iso.begin()
            self.wire.tx = bytearray()  # the journal holds the tap only
            self.wire.ev = []
            self.reader = self.iso
        else:  # APDU level: rig.Reader replays the card's answers (no reader firmware)
            self.reader = TReader(self.rreader)
        self.flash = FastNor(NorFlash(_SIZE, block_size=_BS, prog_size=256))
        self.records = RecordLog(self.flash, _LOG, _WM).mount()
        self.tears = TearStore(self.flash, _TEAR).mount()
        self.blacklist = bl.Blacklist(self.flash, _BL).mount()
        policy = rig.flat_policy(200, city=0x2900)  # the fare rules over a flat-fare table
        self.txn = Transaction(self.reader, self.psam, self.clock, policy, self.records,
                               self.tears, self.blacklist, local_city=0x2900, line=0x0101,
                               device_id=b"\x00\x00\x00\x07",
                               vehicle=b"\x00\x01\x23\x45\x00\x00")
        self.txn.maintain()

    def record(self):
        """The one real tap against the emulators; returns its result reason."""
        if self.iso is not None:
            self.field.place(rig.card())
        else:
            self.rreader.place(rig.card())
        return self.tap()

    def tap(self):
        """What the app does for one card: poll (InListPassiveTarget), tap, release."""
        iso = self.iso
        if iso is None:
            return self.txn.tap().reason
        if iso.poll() is None:
            return -1
        r = self.txn.tap().reason
        iso.release()
        return r

    def rewind(self):
        self.pj.start_replay()
        self.cj.start_replay()
        self.rreader.start_replay()
        if self.wire is not None:
            self.wire.start_replay()
        self.rclock.advance(61)  # repeat_window_s = 60: the same card may pay again

    def trace(self):
        """Replay one tap with every tracer logging; returns the call list."""
        log = []
        objs = (self.link, self.hsu if self.iso is not None else self.reader, self.clock,
                self.flash)
        for o in objs:
            o.log = log
        self.rewind()
        r = self.tap()
        for o in objs:
            o.log = None
        self.txn.maintain()
        return r, log


def main(mode, k, stack):
    # No garbage collection at all: the taps allocate nothing, the harness (emulators,
    # NOR slices) does, and after a collection each allocation searches a fragmented heap,
    # which moved the per-tap count by ~8 %. Without one, every allocation is at the
    # free frontier. 8 MB holds it all: setup ~1.3 MB, ~5 KB per tap.
    gc.disable()
    b = Bench(stack)
    if b.record() != R_OK:
        print("RECORD failed")
        return
    b.txn.maintain()
    mirror = b.flash.mirror
    if mode != "check":
        b.flash.mirror = None
    calls = ()
    if mode == "cal":
        r, calls = b.trace()
        if r != R_OK:
            print("TRACE failed")
            return
        print("CALLS", len(calls))
        b.flash.strict = False
    p0 = b.flash.programs
    ok = 0
    ex = 0
    mism = 0
    txn = b.txn
    for _ in range(k):
        b.rewind()
        if mode == "cal" or mode == "loop":
            for fn, args in calls:
                fn(*args)
            ok += 1
        else:
            if b.tap() == R_OK:
                ok += 1
            ex = txn.result.exchanges
        txn.maintain()
        mism += b.pj.mismatch + b.cj.mismatch + (b.wire.mismatch if b.wire else 0)
    print("TAPS", ok)
    print("EXCHANGES", ex)
    print("PROGRAMS", (b.flash.programs - p0) // k if k else 0)
    print("MISMATCH", mism)
    print("RECORDS", b.records.next_seq)
    if hasattr(gc, "mem_alloc"):
        print("HEAP", gc.mem_alloc())
    if mode == "check":
        print("SAME", 1 if bytes(b.flash.ram) == bytes(mirror._ram) else 0)


if __name__ == "__main__":
    a = sys.argv
    main(a[1] if len(a) > 1 else "tap", int(a[2]) if len(a) > 2 else 2,
         a[3] if len(a) > 3 else "pn532")
