"""emu.soak_kill: the real validator process killed with SIGKILL at seeded random instants
(CPython only).

The firmware runs as `make sim` runs it: the MicroPython unix port with the MCU's 128 KiB
heap, its bytecode in a ROMFS image, the emulated PN532, PSAMs and a file-backed NOR flash
around it (emu.world, set up, provisioned and given its morning sync by ykt.sim). A seeded
schedule taps cards and syncs with the depot over the serial line (depot.station.sync_once
into a depot.db.DepotDB), and now and then SIGKILLs the process:
- tap:   at a random instant of a tap (card exchanges, PSAM, feedback);
- gray:  just after the card answered UPDATE CAPP DATA CACHE (80DC), the tap's flash
         writes before DEBIT (tear context, gray record);
- final: just after the PSAM answered 8072 (MAC2), the final record's flash writes;
- sync:  at a random instant of a sync session (batches, the watermark ACK writes);
- idle:  between taps (erase-ahead of the record log runs then);
- boot:  while the restarted firmware mounts its stores and counts the boot.
Other faults of the day ride along: cards pulled away mid-exchange, DEBIT torn, syncs cut
mid-batch (the serial line drops the device's bytes), and the PSAM resetting by itself
after a random byte of a tap (its ATR where an answer was due): the tap is refused or
recorded MAC2-unverified, and the app's idle task must re-boot the PSAM, so a second
R_SAM_FAULT in a row without a reset of its own fails the soak.
The observation hooks (which card or PSAM command was just answered) only time the kill;
the bytes on every line are the emulators' own. After each kill the process is restarted
on the same flash file (the PN532, PSAMs, lines and cards stay: they are other chips) and
its clock set again (the board's RTC).

The checker lives outside the killed process. It reads the flash file while the process
is dead (a read-only view: emu.soak_kill.FlashView, mounted with the firmware's storage
reader; nothing is written back), the depot database and the cards, and checks:
- no torn record accepted: every record read has its CRC, holds its own seq, and a final
  (normal / recovered) record's TAC verifies with the issuer keys (emu.crypto);
- no lost record: a record seen once (in a flash image or the depot) is never different,
  never gone from the log unless the depot holds it, and every tap that told the
  passenger OK names a record that is there; after a whole sync the depot holds every
  record up to the device's next_seq (DepotDB.contiguous_upto);
- sequence continuity: next_seq never goes back, records are consecutive;
- no double charge: a passenger whose tap was killed after the card paid taps again at
  once and is not charged again; no two final records carry one card debit (serial, ATC);
- money conservation, at the end once every card came back once more: for every card,
  the balance it lost = the amounts of its final records in the depot (+ some of its open
  gray records, what clearing settles from the card's ATC chain), never more;
- heap: after every restart and now and then the firmware's heap in use (after a
  collection, "S") stays within its boot figure + HEAP_BUDGET.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time

from emu import soak, world
from validator import errors as E
from validator.storage import PLAN_SIM
from validator.storage.record_host import REC_SIZE

TERMINAL = "000000120001"  # the first Sim validator: it syncs over a serial line
DEVICE = int(TERMINAL[-8:], 16)
HEAP_BUDGET = 16384  # bytes the heap in use may grow past its figure at READY
FINAL = ("normal", "recovered")
_INV = bytes(255 - i for i in range(256))


class FlashView:
    """The board's flash image file seen read-only (the unix board stores each byte XOR
    FF): reads come from the file, anything a mount would program or erase stays here."""

    def __init__(self, path, size=64 << 20, block_size=4096, prog_size=256):
        self.f = open(path, "rb")
        self.size = size
        self.block_size = block_size
        self.prog_size = prog_size
        self.block_count = size // block_size
        self.over = {}  # block -> bytearray, written by a mount (never to the file)
        self.reads = 0

    def close(self):
        self.f.close()

    def read(self, addr, buf):
        self.reads += 1
        n = len(buf)
        bs = self.block_size
        i = 0
        while i < n:
            a = addr + i
            b, off = divmod(a, bs)
            k = min(n - i, bs - off)
            o = self.over.get(b)
            if o is not None:
                buf[i:i + k] = o[off:off + k]
            else:
                self.f.seek(a)
                d = self.f.read(k)
                buf[i:i + k] = (d + bytes(k - len(d))).translate(_INV)
            i += k

    def _block(self, b):
        o = self.over.get(b)
        if o is None:
            o = bytearray(self.block_size)
            self.read(b * self.block_size, o)
            self.over[b] = o
        return o

    def program(self, addr, buf):
        b, off = divmod(addr, self.block_size)
        o = self._block(b)
        for i in range(len(buf)):
            o[off + i] &= buf[i]

    def erase(self, block):
        self.over[block] = bytearray(b"\xff" * self.block_size)


def read_log(path):
    """-> (first_seq, acked_seq, next_seq, {seq: record bytes}, [unreadable seqs], tear
    contexts pending) of a board's flash image, read with the firmware's own readers."""
    from validator.storage.recordlog import RecordLog, TearStore
    from validator.txn import record as tear

    fv = FlashView(path)
    try:
        lg = RecordLog(fv, PLAN_SIM["log"], PLAN_SIM["watermark"]).mount()
        recs, bad = {}, []
        buf = bytearray(REC_SIZE)
        for q in range(lg.first_seq, lg.next_seq):
            if lg.read(q, buf):
                recs[q] = bytes(buf)
            else:
                bad.append(q)
        tb = bytearray(TearStore.SIZE)
        pending = 0
        if TearStore(fv, PLAN_SIM["tear"]).mount().load(tb):
            pending = sum(1 for k in range(tear.N_CTX) if tb[k * tear.CTX_LEN + tear.C_VALID])
        return lg.first_seq, lg.acked_seq, lg.next_seq, recs, bad, pending
    finally:
        fv.close()


class _Probe:
    """A card or PSAM emulator seen by the kill schedule: each command it answers is
    reported (INS byte) to `hook`; the emulator itself answers."""

    def __init__(self, inner, name, hook):
        self.inner = inner
        self.name = name
        self.hook = hook

    def __getattr__(self, k):
        return getattr(self.inner, k)

    def apdu(self, cmd):
        r = self.inner.apdu(cmd)
        self.hook(self.name, cmd[1] if len(cmd) > 1 else -1)
        return r


class _Brownout:
    """The PSAM slot's contact card as the world serves it, able to reset by itself (a
    supply glitch, its own watchdog) after `left` more bytes from the firmware: its
    session is gone, its ATR goes out where the answer was due, the rest is lost."""

    def __init__(self, t0):
        self.t0 = t0
        self.left = -1
        self.resets = 0

    def reset(self):
        return self.t0.reset()

    def feed(self, data):
        if self.left < 0:
            return self.t0.feed(data)
        if len(data) <= self.left:
            self.left -= len(data)
            return self.t0.feed(data)
        out = self.t0.feed(data[:self.left])
        self.left = -1
        self.resets += 1
        return out + self.t0.reset()


class Killer:
    """Sends SIGKILL to the validator process: after `delay` seconds from now, or from the
    moment the armed event (("card", 0xDC), ("psam", 0x72)) happens."""

    def __init__(self):
        self.armed = None
        self.pid = None
        self.fired = threading.Event()
        self.lock = threading.Lock()
        self.gen = 0  # disarm() bumps it: a pending kill of an older arming is void
        self.triggered = False  # a kill is on its way (its delay running)
        self.seen = {}

    def on(self, name, ins):
        self.seen[(name, ins)] = time.monotonic()
        with self.lock:
            a = self.armed
            if a is not None and a[0] == (name, ins):
                self.armed = None
                self._later(a[1])

    def arm(self, pid, event, delay):
        with self.lock:
            self.gen += 1  # a kill still pending from an older arming is void
            self.fired.clear()
            self.triggered = False
            self.pid = pid
            if event is None:
                self._later(delay)
            else:
                self.armed = (event, delay)

    def disarm(self):
        """No kill after this; -> whether one was sent (final: under the same lock)."""
        with self.lock:
            self.armed = None
            self.gen += 1
            return self.fired.is_set()

    def _later(self, delay):
        pid, gen = self.pid, self.gen
        self.triggered = True

        def go():
            if delay > 0:
                time.sleep(delay)
            with self.lock:
                if self.gen != gen:
                    return
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.fired.set()

        threading.Thread(target=go, daemon=True).start()


class Checker:
    """The depot's and the auditor's view, from outside the killed process."""

    def __init__(self, keys):
        self.keys = keys
        self.seen = {}  # seq -> record bytes, from a flash image or the depot
        self.next_seq = 0  # the highest next_seq a flash image showed
        self.depot = {}  # seq -> bytes the depot database holds (first arrival)
        self.depot_upto = 0  # the depot holds every record up to this seq
        self.told = set()  # seqs the firmware reported for a paid tap
        self.pending = 0  # tear contexts in the last image
        self.failures = []

    def fail(self, msg):
        self.failures.append(msg)

    def check_record(self, q, b, where):
        from validator.storage import record_host

        if not record_host.crc_ok(b):
            self.fail("%s record %d: CRC bad" % (where, q))
            return None
        d = record_host.decode(b)
        d["raw"] = b
        if d["seq"] != q:
            self.fail("%s record %d holds seq %d" % (where, q, d["seq"]))
        if d["status"] in FINAL and not soak._tac_ok(d):
            self.fail("%s record %d: TAC does not verify" % (where, q))
        old = self.seen.get(q)
        if old is None:
            self.seen[q] = b
        elif old != b:
            self.fail("%s record %d differs from the one seen before" % (where, q))
        return d

    def image(self, path, when):
        """The flash image of a dead (or stopped) process. -> its next_seq and records."""
        first, acked, nxt, recs, bad, self.pending = read_log(path)
        for q in bad:
            self.fail("%s: record %d unreadable" % (when, q))
        if nxt < self.next_seq:
            self.fail("%s: next_seq went back from %d to %d" % (when, self.next_seq, nxt))
        self.next_seq = max(self.next_seq, nxt)
        for q, b in recs.items():
            self.check_record(q, b, when)
        for q in self.seen:
            if q >= nxt:
                self.fail("%s: record %d, seen before, is gone (next_seq %d)" % (when, q, nxt))
            elif q < first and q not in self.depot:
                self.fail("%s: record %d left the log before the depot had it" % (when, q))
        for q in self.told:
            if q not in recs and q not in self.depot:
                self.fail("%s: paid tap's record %d is not there" % (when, q))
        return nxt, recs

    def booked(self, db):
        """After a sync: the depot's new contiguous records. -> how far it holds them."""
        upto = db.contiguous_upto(DEVICE, self.depot_upto)
        for q in range(self.depot_upto + 1, upto + 1):
            b = self.depot.get(q)
            if b is None:
                self.fail("depot holds record %d it was never sent" % q)
                continue
            self.check_record(q, b, "depot")
        self.depot_upto = upto
        return upto


class _Seen:
    """The DepotDB sync_once pulls into, as the checker sees it: what was sent for each
    seq (a record re-sent after a lost ACK must be the same bytes), passed on."""

    def __init__(self, db, chk):
        self.db = db
        self.chk = chk

    def __getattr__(self, k):
        return getattr(self.db, k)

    def _see(self, first, size, data):
        for i in range(len(data) // size):
            b = bytes(data[i * size:(i + 1) * size])
            old = self.chk.depot.setdefault(first + i, b)
            if old != b:
                self.chk.fail("record %d re-sent with other bytes" % (first + i))

    def ingest(self, dev, first, size, data):
        self._see(first, size, data)
        return self.db.ingest(dev, first, size, data)

    def ingest_batches(self, dev, batches):
        """The station's group commit (several frames, one transaction), seen the same."""
        for first, size, data in batches:
            self._see(first, size, data)
        return self.db.ingest_batches(dev, batches)


def _drain_until_exit(w, timeout=10):
    """Events of the killed process up to its EXIT: [(event, monotonic time)]."""
    out = []
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the killed validator did not exit")
        try:
            ev = w.events.get(timeout=left)
        except Exception:
            continue
        if ev.startswith("EXIT"):
            return out
        out.append(ev)


def _next_event(w, timeout):
    """Next event, or None after timeout, or "EXIT ..."."""
    import queue

    try:
        return w.events.get(timeout=timeout)
    except queue.Empty:
        return None


class Bus:
    """One validator process (ykt.sim), its cards, the depot, and the restart."""

    def __init__(self, out_dir, n_cards, balance, log=None):
        from depot.client import Keyring
        from depot.db import DepotDB
        from depot.devsim import TEST_MASTER
        from ykt import sim

        self.log = log or (lambda s: None)
        self.sim = sim.Sim(out_dir, log=self.log)
        self.sim.prepare(sim.load_scenario(sim.DEFAULT_SCENARIO))
        self.w = self.sim.validator(TERMINAL)  # provisioned, booted, morning sync done
        self.argv = self.w.proc.args  # this ROMFS image for every restart (sources move)
        self.killer = Killer()
        self.keyring = Keyring(master=TEST_MASTER)
        self.db_path = os.path.join(out_dir, "soak-depot.sqlite")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.db_path + suffix):
                os.remove(self.db_path + suffix)
        self.db = DepotDB(self.db_path)
        self.now = self.sim.day_start + 3600  # device seconds: 06:00
        psam = self.w.psams[0]
        psam.card = _Probe(psam.card, "psam", self.killer.on)
        self.brownout = self.w.psams[0] = _Brownout(psam)
        self.cards = []
        for i in range(n_cards):
            c = self.sim.card("soak-%d" % i, {"balance": balance})
            self.cards.append(_Probe(c, "card", self.killer.on))
        self.start_bal = [c.balance for c in self.cards]
        self.heap_boot = None
        self.heap_max = 0
        self.crashes = []  # the firmware exiting or hanging on its own: soak failures
        self.setup()

    def setup(self):
        """After (re)boot: position and clock, as the driver console and RTC give them."""
        w = self.w
        w.send("P 12 1 0 0")
        w.wait("POS")
        w.set_time(self.now)
        used = self.heap()
        if self.heap_boot is None:
            self.heap_boot = used

    def heap(self):
        self.w.send("S")
        st = dict(kv.split("=") for kv in self.w.wait("STATE").split()[1:])
        used = int(st["heap_used"])
        self.heap_max = max(self.heap_max, used)
        return used

    def restart(self, boot_kill=None):
        """Start the firmware again on the same flash and lines (the old one is dead)."""
        w = self.w
        w.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, cwd=world.ROOT,
            env=world.mp_env({"YKT_BOARD_CONFIG": w.cfg_path}))
        w._reader = threading.Thread(target=w._read_stdout, daemon=True)
        w._reader.start()
        if boot_kill is not None:  # killed again while it boots
            self.killer.arm(w.proc.pid, None, boot_kill)
        while True:
            ev = _next_event(w, 30)
            if ev is None:
                raise TimeoutError("validator neither booted nor died:\n" + _tail(w))
            if ev.startswith("EXIT"):
                if boot_kill is None or not self.killer.disarm():
                    self.crashes.append("the firmware exited at boot (%s):\n%s" % (
                        ev, _tail(w)))
                return False
            if ev.startswith("READY"):
                break
        if boot_kill is not None:
            self.killer.fired.wait(5)
            if self.killer.disarm():
                _drain_until_exit(w)
                return False
        self.setup()
        return True

    def sync(self, chk, kill_after=None, cut=None, timeout=1.5):
        """One depot sync over the serial line (records pulled into the DepotDB); maybe
        SIGKILLed after kill_after seconds, or cut after `cut` bytes from the device.
        -> the device's next_seq after a whole sync, else None."""
        from depot import station
        from ykt.cmd_sync import open_port

        w = self.w
        le = self.sim.lines[0]
        if cut is not None:
            le.budget["a2b"] = cut
        if kill_after is not None:
            self.killer.arm(w.proc.pid, None, kill_after)
        port = open_port(w.sync_port, 115200, timeout=0.2)
        nxt = None
        try:
            summary = station.sync_once(
                port, self.keyring, _Seen(self.db, chk), pull=True,
                timeout=timeout if (kill_after is not None or cut is not None) else 10.0)
            nxt = summary["info_after"]["next_seq"]
        except station.StationError:
            if kill_after is None and cut is None:
                raise
        finally:
            port.close()
            le.budget["a2b"] = -1
        chk.booked(self.db)
        return nxt

    def stop(self):
        try:
            self.sim.stop()
        finally:
            self.db.close()


def run(taps=300, kills=20, seed=1, cards=40, balance=100000, out_dir=None, log=None,
        lose_a_record=False, progress=False):
    """-> dict of figures; 'failures' lists every broken invariant (goal: none).
    lose_a_record: debit a card behind the validator's back (the checker must fail)."""
    import tempfile

    from emu import issuer

    rnd = random.Random(seed)
    tmp = None
    if out_dir is None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        tmp = tempfile.TemporaryDirectory(prefix="ykt-soak-kill-", dir=base)
        out_dir = tmp.name
    t0 = time.time()
    bus = Bus(out_dir, cards, balance, log)
    chk = Checker(issuer.load_master_keys())
    try:
        res = _run(rnd, bus, chk, taps, kills, lose_a_record, progress)
    finally:
        bus.stop()
        if tmp is not None:
            tmp.cleanup()
    res["soak_kill_seconds"] = round(time.time() - t0, 1)
    return res


_KINDS = ("tap", "gray", "final", "sync", "idle", "boot")
_WEIGHTS = (3, 3, 3, 2, 1, 1)


def _run(rnd, bus, chk, taps, kills, lose_a_record, progress=False):
    w = bus.w
    p_kill = min(1.0, kills / float(taps))
    mix = {"sigkill_" + k: 0 for k in _KINDS}
    mix.update({"sync_cut": 0, "card_pulled": 0, "tear": 0, "psam_reset": 0,
                "killed_with_tear_pending": 0})
    reasons = {}
    syncs = 0
    tap_s = 0.1  # a tap's length, learnt from the taps
    again = None  # (card index, paid in the killed tap): the passenger taps again at once
    gaps = {"gray": 0.002, "final": 0.002}  # probed command -> end of the flash writes
    last = None  # the previous tap's reason

    def kill_and_restart(kind, exited=False):
        if not exited:
            _drain_until_exit(w)
        w.field.clear()  # the passenger is startled away; the card keeps what it has
        nxt, recs = chk.image(w.flash_path, "after a SIGKILL (%s)" % kind)
        if chk.pending:
            mix["killed_with_tear_pending"] += 1  # it landed between DEBIT's context and
            # the final record (or the card left and has not come back)
        while rnd.random() < 0.15:  # killed again while booting
            mix["sigkill_boot"] += 1
            bus.restart(boot_kill=rnd.uniform(0.0, 1.5))
            nxt, recs = chk.image(w.flash_path, "after a SIGKILL (boot)")
        for _ in range(3):  # a crash at boot is a failure (bus.crashes); boot it again
            if bus.restart():
                break
        else:
            raise RuntimeError("the validator does not boot:\n" + _tail(w))
        return nxt, recs

    for i in range(taps):
        k = again[0] if again is not None else rnd.randrange(len(bus.cards))
        paid_before = again[1] if again is not None else False
        again = None
        c = bus.cards[k]
        # a passenger tapping again does so at once (inside the repeat window)
        bus.now += rnd.choice((1, 2, 5)) if paid_before else rnd.choice((1, 2, 5, 30, 61))
        w.set_time(bus.now)
        kill = _KINDS[_pick(rnd, _WEIGHTS)] if rnd.random() < p_kill else None
        if kill == "boot":
            kill = "idle"  # boot kills follow other kills (kill_and_restart)
        if kill == "idle":
            mix["sigkill_idle"] += 1
            bus.killer.arm(w.proc.pid, None, rnd.uniform(0.0, 0.4))
            bus.killer.fired.wait(5)
            bus.killer.disarm()
            kill_and_restart("idle")
            kill = None
        if kill == "sync":
            kill = "tap"  # syncs are killed below, when one is due
        pulled = rnd.random() < 0.04
        if pulled:
            w.field.remove_after(c, rnd.randrange(1, 8))
            mix["card_pulled"] += 1
        elif rnd.random() < 0.03:
            c.arm_tear(rnd.choice(("before_commit", "after_commit")))
            mix["tear"] += 1
        elif rnd.random() < 0.03:
            bus.brownout.left = rnd.randrange(0, 60)  # a tap writes ~55 bytes to the PSAM
        resets = bus.brownout.resets
        bal0 = c.balance
        if kill == "tap":
            bus.killer.arm(w.proc.pid, None, rnd.uniform(0.0, tap_s * 1.2))
        elif kill == "gray":
            bus.killer.arm(w.proc.pid, ("card", 0xDC), rnd.uniform(0.0, gaps["gray"]))
        elif kill == "final":
            bus.killer.arm(w.proc.pid, ("psam", 0x72), rnd.uniform(0.0, gaps["final"]))
        t_tap = time.monotonic()
        w.field.place(c)
        reason = None
        died = exited = False
        while True:
            ev = _next_event(w, 10)
            if ev is None:  # hung: a failure; kill it and go on with the day
                bus.crashes.append("tap %d: no result in 10 s:\n%s" % (i, _tail(w)))
                bus.killer.arm(w.proc.pid, None, 0)
                kill = kill or "tap"
                continue
            if ev.startswith("EXIT"):
                if kill is None:
                    bus.crashes.append("tap %d: the firmware exited (%s):\n%s" % (
                        i, ev, _tail(w)))
                    kill = "tap"
                died = exited = True
                break
            if ev.startswith("TAP"):
                reason = int(ev.split()[1])
                if kill is None:
                    t = time.monotonic()
                    tap_s = 0.9 * tap_s + 0.1 * (t - t_tap)
                    _learn(gaps, bus.killer.seen, t, t_tap)
            elif ev.startswith("DETAIL"):
                seq = int(ev.split()[6])
                if reason in (E.R_OK, E.R_RECOVERED) and seq >= 0:
                    chk.told.add(seq)
                break
        if kill is not None and not died:
            if bus.killer.triggered:
                bus.killer.fired.wait(0.5)  # its instant came: let it land
            if bus.killer.disarm():
                died = True  # it landed after the result (feedback, removal)
            else:
                kill = None  # the instant never came (a refused card sends no 80DC)
        bus.brownout.left = -1
        reset = bus.brownout.resets - resets
        mix["psam_reset"] += reset
        if died:
            mix["sigkill_" + kill] += 1
            kill_and_restart(kill, exited)
            reasons["killed"] = reasons.get("killed", 0) + 1
        else:
            reasons[reason] = reasons.get(reason, 0) + 1
            w.field.remove(c)
            w.wait("IDLE", 10)
            if reason == E.R_TAP_AGAIN:
                again = (k, False)
            if reason == E.R_SAM_FAULT and not reset and last == E.R_SAM_FAULT:
                # (one alone may be a PSAM answer late on a loaded host: a real timeout)
                chk.fail("tap %d: R_SAM_FAULT again, with no PSAM reset in it: the PSAM "
                         "was not re-booted after the last one" % i)
            if reason == E.R_SAM_FAULT:
                time.sleep(0.5)  # the next passenger: the idle task re-boots the PSAM
        last = reason if not died else None
        if paid_before and c.balance != bal0:
            chk.fail("card %d was debited in a killed tap and again when it came back at "
                     "once (%d -> %d)" % (k, bal0, c.balance))
        if died and rnd.random() < 0.9:
            # the card's own balance says whether the killed tap debited it
            again = (k, paid_before or c.balance < bal0)
        # the depot syncs now and then; some syncs are killed, some cut
        if rnd.random() < 0.05:
            syncs += 1
            if rnd.random() < p_kill * 4:
                bus.sync(chk, kill_after=rnd.uniform(0.0, 0.3))
                if bus.killer.disarm():
                    mix["sigkill_sync"] += 1
                    kill_and_restart("sync")
            elif rnd.random() < 0.3:
                if bus.sync(chk, cut=rnd.randrange(0, 600)) is None:
                    mix["sync_cut"] += 1
            else:
                _whole_sync(bus, chk)
        if i % 50 == 49:
            _heap_check(bus, chk)
        if progress and i % 100 == 99:
            print("soak_kill: %d taps, %d SIGKILLs, %d failures" % (
                i + 1, sum(v for n, v in mix.items() if n.startswith("sigkill_")),
                len(chk.failures) + len(bus.crashes)), file=sys.stderr, flush=True)
    if lose_a_record:
        bus.cards[0].inner.balance -= 200
    # the end of the day: every card once more (each torn debit settled), a whole sync
    for k, c in enumerate(bus.cards):
        bus.now += 61
        w.set_time(bus.now)
        r = w.tap(c)[0]
        reasons[r] = reasons.get(r, 0) + 1
    _whole_sync(bus, chk)
    w.stop()
    chk.image(w.flash_path, "at the end")
    _balance(bus, chk)
    chk.failures.extend(bus.crashes)
    faults = sum(v for k, v in mix.items() if k != "killed_with_tear_pending")
    return {"soak_kill_taps": taps, "soak_sigkills": sum(v for k, v in mix.items()
                                                          if k.startswith("sigkill_")),
            "soak_kill_faults_injected": faults, "soak_kill_failures": len(chk.failures),
            "soak_kill_fault_mix": mix, "soak_kill_syncs": syncs,
            "soak_kill_records": len(chk.depot),
            "soak_kill_heap_boot": bus.heap_boot, "soak_kill_heap_max": bus.heap_max,
            "soak_kill_reasons": {str(k): v for k, v in reasons.items()},
            "soak_kill_window_ms": {k: round(v * 1000, 1) for k, v in gaps.items()},
            "failures": chk.failures[:20]}


def _tail(w, n=40):
    return "\n".join(w.lines[-n:])


def _pick(rnd, weights):
    x = rnd.random() * sum(weights)
    for i, wt in enumerate(weights):
        x -= wt
        if x < 0:
            return i
    return len(weights) - 1


def _learn(gaps, seen, t_result, t_tap):
    """How long after the probed command the tap's flash writes end: 80DC answered ->
    DEBIT arrives (tear context, gray record), 8072 answered -> the result line (final
    record, context dropped)."""
    dc, debit, mac2 = seen.get(("card", 0xDC)), seen.get(("card", 0x54)), seen.get(("psam", 0x72))
    if dc is not None and debit is not None and t_tap < dc < debit:
        gaps["gray"] = max(gaps["gray"], debit - dc)
    if mac2 is not None and t_tap < mac2 < t_result:
        gaps["final"] = max(gaps["final"], t_result - mac2)


def _whole_sync(bus, chk):
    nxt = bus.sync(chk)
    if chk.depot_upto != nxt - 1:
        chk.fail("a whole sync left records %d..%d out of the depot" % (
            chk.depot_upto + 1, nxt - 1))


def _heap_check(bus, chk):
    used = bus.heap()
    if used > bus.heap_boot + HEAP_BUDGET:
        chk.fail("heap in use %d, boot figure %d + budget %d" % (
            used, bus.heap_boot, HEAP_BUDGET))


def _balance(bus, chk):
    """Money: per card, what left it = its final records in the depot + some open grays;
    and no card debit (serial, ATC) in two final records."""
    from validator.storage import record_host

    paid, grays, resolved, debits = {}, {}, set(), {}
    for q, b in chk.depot.items():
        d = record_host.decode(b)
        if d["status"] == "gray":
            grays[q] = (d["card_serial"], d["amount"])
        for f in ("ref_seq", "void_seq"):
            if d[f] != 0xFFFFFFFF:
                resolved.add(d[f])
        if d["status"] in FINAL:
            paid[d["card_serial"]] = paid.get(d["card_serial"], 0) + d["amount"]
            key = (d["card_serial"], d["atc"])
            if key in debits and d["amount"]:
                chk.fail("records %d and %d carry one debit (card %s ATC %d)" % (
                    debits[key], q, key[0], key[1]))
            debits[key] = q
    missing = [q for q in chk.seen if q not in chk.depot]
    if missing:
        chk.fail("records never reached the depot: %s" % missing[:10])
    open_gray = {}
    for q, (key, amount) in grays.items():
        if q not in resolved:
            open_gray.setdefault(key, []).append(amount)
    for c, b0 in zip(bus.cards, bus.start_bal, strict=True):
        key = bytes(c.ef15[10:20]).hex()
        short = (b0 - c.balance) - paid.get(key, 0)
        if short != 0 and (short < 0 or not soak._subset_sum(open_gray.get(key, []), short)):
            chk.fail("card %s: %d left the card, final records say %d, open gray %r" % (
                key, b0 - c.balance, paid.get(key, 0), open_gray.get(key, [])))


def main(argv=None):
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="emu.soak_kill")
    ap.add_argument("--taps", type=int, default=3000)
    ap.add_argument("--kills", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="keep the flash, depot and logs here")
    a = ap.parse_args(argv)
    res = run(a.taps, a.kills, a.seed, out_dir=a.out, progress=True)
    for f in res["failures"]:
        print("FAIL: %s" % f, file=sys.stderr)
    print(json.dumps({k: v for k, v in res.items() if k != "failures"}))
    return 1 if res["soak_kill_failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
