# rig: test harness for the transaction engine -- clock, reader/PSAM adapters, RAM stores.
# SPDX-License-Identifier: MIT
#
# Not a test module. Runs on CPython and MicroPython. The adapters speak to any object
# with apdu(cmd) -> resp (cards) or reset()/feed() (T=0 contact cards): the emulators in
# emu/ or the stand-ins in fw/stubs.py. The PSAM always goes through the firmware's
# byte-level T=0 link (validator.link.iso7816) via T0Port.
import binascii

from emu.field import CardGone
from validator.errors import NfcTimeout
from validator.util import bcdtime


# ---- clock -------------------------------------------------------------------------------
class Clock:
    def __init__(self, t=None):
        self.t = t if t is not None else bcdtime.secs(2025, 6, 1, 8, 30, 0)
        self.ms = 1000

    def now(self):
        return self.t

    def ticks_ms(self):
        return self.ms

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, d):
        return a + d

    def sleep_ms(self, ms):
        self.ms += ms

    def advance(self, s):
        self.t += s
        self.ms += s * 1000


# ---- PSAM slot: ByteLink + IsoPort over a byte engine with reset() / feed() ----------------
class T0Port:
    """IsoPort for validator.link.iso7816 over an emulated contact card (`dev`):
    dev.reset() -> ATR bytes, dev.feed(bytes) -> bytes. Preallocated RX ring."""

    def __init__(self, dev, clock, echo=False, cap=1024):
        self.dev = dev
        self.clock = clock
        self.echo = echo
        self.link = self
        self.rx = bytearray(cap)
        self.head = 0
        self.tail = 0
        self.powered = False
        self.written = 0
        self.etu = None
        self.silent = False  # True: the device stops answering (pulled PSAM)

    def _push(self, data):
        for b in data:
            self.rx[self.tail % len(self.rx)] = b
            self.tail += 1

    # IsoPort
    def reset(self, level):
        if level == 0:
            self.powered = False
            return
        self.powered = True
        if not self.silent:
            self._push(self.dev.reset())

    def set_etu(self, fi, di):
        self.etu = (fi, di)

    # ByteLink
    def write(self, buf, n=None):
        if n is None:
            n = len(buf)
        self.written += n
        if self.echo:
            self._push(bytes(buf[:n]))
        if self.powered and not self.silent:
            self._push(self.dev.feed(bytes(buf[:n])))
        return n

    def readinto(self, buf):
        n = 0
        while n < len(buf) and self.head < self.tail:
            buf[n] = self.rx[self.head % len(self.rx)]
            self.head += 1
            n += 1
        return n

    def wait(self, ms):
        if self.head < self.tail:
            return True
        self.clock.sleep_ms(ms)
        return False

    def drain(self):
        self.head = self.tail


class Journal:
    """Records what a live link/reader answered, then replays it without allocating, so
    a whole tap can run under micropython.heap_lock() (the emulators themselves allocate).
    Replay checks that the firmware sends exactly the bytes it sent while recording."""

    def __init__(self, cap=512):
        self.tx = bytearray(cap)
        self.rx = bytearray(cap)
        self.ntx = 0
        self.nrx = 0
        self.itx = 0
        self.irx = 0
        self.replay = False
        self.mismatch = 0

    def start_replay(self):
        self.replay = True
        self.itx = 0
        self.irx = 0
        self.mismatch = 0

    def put_tx(self, buf, n):
        if self.replay:
            for i in range(n):
                if self.tx[self.itx] != buf[i]:
                    self.mismatch += 1
                self.itx += 1
        else:
            for i in range(n):
                self.tx[self.ntx] = buf[i]
                self.ntx += 1

    def put_rx(self, buf, n):
        for i in range(n):
            self.rx[self.nrx] = buf[i]
            self.nrx += 1


class JournalLink:
    """ByteLink/IsoPort wrapper: records the inner port's bytes, then replays them."""

    def __init__(self, inner, journal):
        self.inner = inner
        self.j = journal
        self.link = self
        self.echo = inner.echo
        self._one = bytearray(1)

    def reset(self, level):
        if not self.j.replay:
            self.inner.reset(level)

    def write(self, buf, n):
        self.j.put_tx(buf, n)
        if not self.j.replay:
            self.inner.write(buf, n)
        return n

    def readinto(self, buf):
        j = self.j
        if j.replay:
            if j.irx >= j.nrx:
                return 0
            buf[0] = j.rx[j.irx]
            j.irx += 1
            return 1
        n = self.inner.readinto(buf)
        j.put_rx(buf, n)
        return n

    def wait(self, ms):
        if self.j.replay:
            return self.j.irx < self.j.nrx
        return self.inner.wait(ms)

    def drain(self):
        if not self.j.replay:
            self.inner.drain()


# ---- card reader (contactless) ---------------------------------------------------------------
class Reader:
    """reader.transmit() over card.apdu(); CardGone -> NfcTimeout (the reader sees silence).
    With a Journal, records APDU responses and replays them allocation-free."""

    def __init__(self, card=None, journal=None):
        self.card = card
        self.j = journal
        self.log = []  # command APDUs (hex) when logging is on
        self.logging = False
        self.count = 0
        self.lens = bytearray(64)  # response lengths in replay order
        self.nlen = 0
        self.ilen = 0

    def place(self, card):
        self.card = card

    def transmit(self, cmd, n, resp):
        self.count += 1
        j = self.j
        if j is not None and j.replay:
            j.put_tx(cmd, n)
            r = self.lens[self.ilen] | (self.lens[self.ilen + 1] << 8)
            self.ilen += 2
            for i in range(r):
                resp[i] = j.rx[j.irx]
                j.irx += 1
            return r
        if self.card is None:
            raise NfcTimeout()
        c = bytes(cmd[:n])
        if self.logging:
            self.log.append(binascii.hexlify(c).decode())
        try:
            r = self.card.apdu(c)
        except CardGone:
            self.card = None
            raise NfcTimeout()
        for i in range(len(r)):
            resp[i] = r[i]
        if j is not None:
            j.put_tx(cmd, n)
            j.put_rx(r, len(r))
            self.lens[self.nlen] = len(r) & 0xFF
            self.lens[self.nlen + 1] = len(r) >> 8
            self.nlen += 2
        return len(r)

    def start_replay(self):
        self.ilen = 0


# ---- RAM stand-ins for storage (same method names as validator.storage) ---------------------
class MemRecords:
    def __init__(self, size=72, cap=32):
        self.size = size
        self.cap = cap
        self.slab = bytearray(size * cap)
        self.n = 0
        self.seq = 0

    def append(self, img):
        k = self.n % self.cap
        o = k * self.size
        for i in range(len(img)):
            self.slab[o + i] = img[i]
        self.n += 1
        self.seq += 1
        return self.seq

    def last(self, buf):
        if not self.n:
            return 0
        o = ((self.n - 1) % self.cap) * self.size
        for i in range(len(buf)):
            buf[i] = self.slab[o + i]
        return len(buf)

    def rows(self):
        out = []
        for k in range(max(0, self.n - self.cap), self.n):
            o = (k % self.cap) * self.size
            out.append(bytes(self.slab[o:o + self.size]))
        return out


class MemTears:
    def __init__(self, size=288):
        self.buf = bytearray(size)
        self.valid = False
        self.saves = 0

    def save(self, buf):
        for i in range(len(buf)):
            self.buf[i] = buf[i]
        self.valid = True
        self.saves += 1

    def load(self, buf):
        if not self.valid:
            return False
        for i in range(len(buf)):
            buf[i] = self.buf[i]
        return True

    def clear(self):
        self.valid = False


class MemBlacklist:
    def __init__(self, serials=()):
        self.keys = [bytes(s) for s in serials]

    def contains(self, buf, off):
        for k in self.keys:
            ok = True
            for i in range(10):
                if k[i] != buf[off + i]:
                    ok = False
                    break
            if ok:
                return True
        return False


# ---- a whole validator core on the bench ----------------------------------------------------
class Rig:
    """Clock + PSAM (byte-level T=0) + reader + RAM stores + flat fare + Transaction."""

    def __init__(self, fare=200, city=0x2900, accept=(), blacklist=(), echo=False,
                 journal=False, psam=None, t0=None, **kw):
        from fw.stubs import StubPsam, StubT0
        from validator.link.iso7816 import Iso7816
        from validator.sam.psam import Psam
        from validator.txn.flat import FlatFare

        self.clock = Clock()
        self.psam_dev = psam or StubPsam()
        self.t0 = t0 or StubT0(self.psam_dev)
        self.port = T0Port(self.t0, self.clock, echo=echo)
        port = self.port
        self.pj = self.cj = None
        if journal:
            self.pj = Journal()
            self.cj = Journal()
            port = JournalLink(self.port, self.pj)
        self.slot = Iso7816(port, self.clock)
        self.psam = Psam(self.slot, self.slot.reset)
        self.psam.boot()
        self.reader = Reader(journal=self.cj)
        self.records = MemRecords()
        self.tears = MemTears()
        self.blacklist = MemBlacklist(blacklist)
        self.policy = FlatFare(fare, city=city, acquirer=b"\x02\x00\x29\x00\xff\xff\xff\xff",
                               line=0x0101, accept=accept)
        self.kw = kw
        self.city = city
        self.txn = self._new_txn()

    def _new_txn(self):
        from validator.txn.transaction import Transaction

        return Transaction(self.reader, self.psam, self.clock, self.policy, self.records,
                           self.tears, self.blacklist, local_city=self.city, line=0x0101,
                           vehicle=0x12345, **self.kw)

    def reboot(self):
        """Power cycle: RAM state lost, PSAM re-booted, stores kept."""
        self.psam.boot()
        self.txn = self._new_txn()

    def tap(self, card):
        self.reader.place(card)
        return self.txn.tap(card)
