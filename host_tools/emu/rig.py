# emu.rig: the transaction engine on emulators -- clock, reader/PSAM adapters, RAM stores.
# SPDX-License-Identifier: MIT
#
# Common subset (CPython and MicroPython): the tier-1 transaction tests and the tap
# benchmarks (host_tools/bench/bench_txn.py, mp_tap_replay.py) build the same validator
# core from it. The adapters speak to any object with apdu(cmd) -> resp (cards,
# emu.tunion_card) or reset()/feed() (T=0 contact cards, emu.t0.T0Card). The PSAM always
# goes through the firmware's byte-level T=0 link (validator.link.iso7816) via T0Port;
# records, tear contexts and the blacklist go to the real storage classes on an emulated
# NOR (emu.nor).
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
        self.reset_at = -1  # reset_after(): writes left before the PSAM browns out
        self.resets = 0

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
        if self.reset_at >= 0:
            self.reset_at -= 1
            if self.reset_at < 0:
                self._brownout()  # what was just written never reached the old session
                return n
        if self.powered and not self.silent:
            self._push(self.dev.feed(bytes(buf[:n])))
        return n

    def reset_after(self, n):
        """Backend API: the PSAM resets by itself (supply glitch, watchdog) after n more
        writes from the firmware: its session state is gone, its ATR comes out on the I/O
        line where the firmware expects an answer, and the byte written is lost."""
        self.reset_at = n

    def _brownout(self):
        self.resets += 1
        self.drain()
        if not self.silent:
            self._push(self.dev.reset())

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
        self.gone_after = -1

    def place(self, card):
        self.card = card
        self.gone_after = -1

    def remove_after(self, n):
        """Backend API: the passenger pulls the card away after n more exchanges (the next
        one sees silence: NfcTimeout, as on a real reader)."""
        self.gone_after = n

    def transmit(self, cmd, n, resp):
        self.count += 1
        if self.gone_after == 0:
            self.card = None
        if self.gone_after >= 0:
            self.gone_after -= 1
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


# ---- a whole validator core on the bench ----------------------------------------------------
TERM = b"\x00\x00\x00\x12\x34\x56"
_BS = 512
_LOG = (0, 8 * _BS)
_WM = (8 * _BS, 2 * _BS)
_TEAR = (10 * _BS, 4 * _BS)
_BL = (14 * _BS, 16 * _BS)
_KEYS = []


def keys():
    """The test master keys (emu/test_master_keys.json), loaded once."""
    if not _KEYS:
        from emu import issuer

        _KEYS.append(issuer.load_master_keys())
    return _KEYS[0]


def card(**kw):
    """A freshly issued emulated T-Union card (emu.issuer.issue_card keywords)."""
    from emu import issuer

    kw.setdefault("balance", 1000)
    return issuer.issue_card(keys(), **kw)


def rows(log):
    """Every record in the log, decoded (storage.record.decode dicts), oldest first."""
    from validator.storage import record_host

    out = []
    buf = bytearray(record_host.REC_SIZE)
    for seq in range(log.first_seq, log.next_seq):
        if log.read(seq, buf):
            d = record_host.decode(buf)
            d["raw"] = bytes(buf)
            out.append(d)
    return out


LINE = 0x0101  # the rig's bus line


def flat_policy(fare=200, city=0x2900, accept=()):
    """The real fare policy (rules.fares.FarePolicy) over a one-line flat-fare table
    without transfers or a cap: it needs no card record (READ RECORD) and no EF1A write.
    accept: (org, city) int pairs visitors must match, 0xFFFF = any."""
    from emu import farec
    from validator.rules import fares, table

    desc = {"version": 1, "city": "%04x" % city, "acquirer": "02002900FFFFFFFF",
            "lines": [{"id": LINE, "fare": fare}],
            "accept": [{"org": "%04x" % o, "city": "%04x" % c} for o, c in accept]}
    tables = table.FareTables()
    assert tables.offer(farec.compile_table(desc), 0) == 0
    return fares.FarePolicy(tables, fares.Position(LINE, 0, 0, fares.DOOR_ANY, TERM))


class Rig:
    """Clock + emulated MOT PSAM behind the byte-level T=0 link + reader + the real record
    log, tear store and blacklist on an emulated NOR + a flat fare + the Transaction."""

    def __init__(self, fare=200, city=0x2900, accept=(), blacklist=(), echo=False,
                 journal=False, psam=None, t0=None, **kw):
        from emu.nor import NorFlash
        from emu.psam import Psam as PsamEmu
        from emu.t0 import T0Card
        from validator.link.iso7816 import Iso7816
        from validator.sam.psam import Psam
        from validator.storage import blacklist as bl
        from validator.storage import blacklist_host
        from validator.storage.recordlog import RecordLog, TearStore

        self.clock = Clock()
        self.psam_dev = psam or PsamEmu(keys(), terminal_no=TERM)
        self.t0 = t0 or T0Card(self.psam_dev)
        self.port = T0Port(self.t0, self.clock, echo=echo)
        port = self.port
        self.pj = self.cj = None
        if journal:
            self.pj = Journal()
            self.cj = Journal()
            port = JournalLink(self.port, self.pj)
        self.slot = Iso7816(port, self.clock)
        self.psam = Psam(self.slot, self.slot.power_up)
        self.psam.boot()
        self.reader = Reader(journal=self.cj)
        self.flash = NorFlash(30 * _BS, block_size=_BS, prog_size=256)
        self.records = RecordLog(self.flash, _LOG, _WM).mount()
        self.records.maintain()
        self.tears = TearStore(self.flash, _TEAR).mount()
        self.blacklist = bl.Blacklist(self.flash, _BL).mount()
        if blacklist:
            ks = sorted(bytes(bl.key_of(s, bytearray(8))) for s in blacklist)
            self.blacklist.begin(blacklist_host.KIND_FULL, 1)
            for k in ks:
                self.blacklist.add(k)
            assert self.blacklist.commit() == bl.OK
        self.policy = flat_policy(fare, city, accept)
        self.kw = kw
        self.city = city
        self.txn = self._new_txn()

    def _new_txn(self):
        from validator.txn.transaction import Transaction

        return Transaction(self.reader, self.psam, self.clock, self.policy, self.records,
                           self.tears, self.blacklist, local_city=self.city, line=0x0101,
                           device_id=b"\x00\x00\x00\x07", vehicle=b"\x00\x01\x23\x45\x00\x00",
                           **self.kw)

    def idle(self):
        """What the app does between taps: flash housekeeping, a faulted PSAM re-booted."""
        self.txn.maintain()

    def reboot(self):
        """Power cycle: RAM state lost, PSAM re-booted, stores re-mounted."""
        from validator.storage.recordlog import RecordLog, TearStore

        self.records = RecordLog(self.flash, _LOG, _WM).mount()
        self.records.maintain()
        self.tears = TearStore(self.flash, _TEAR).mount()
        self.psam.boot()
        self.txn = self._new_txn()

    def rows(self):
        return rows(self.records)

    def tap(self, c):
        self.idle()
        self.reader.place(c)
        return self.txn.tap(c)
