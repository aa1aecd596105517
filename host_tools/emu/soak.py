"""emu.soak: many taps on the real transaction engine with a seeded random fault schedule,
and an independent checker of the money (the engine core on emulators: emu.rig).

Faults, each drawn per tap: the card pulled away at a random APDU boundary, the card torn
inside DEBIT (before or after its commit), power cut at a random flash operation (the write
dropped or torn), a reboot between taps, clock jumps, the log left to fill up until sync
drains it. After every tap the checker, which knows nothing of the engine, reads the new
records the way the depot does and checks:
- no lost record: sequence numbers are consecutive and every committed record reads back;
- no torn record accepted: every record read has a good CRC (RecordLog) and its TAC, when it
  has one, verifies with the issuer's keys (emu.crypto);
- money: for every card, what left the card (balance drop) equals the amounts of its final
  (normal + recovered) records, once every card has been settled at the end (no double
  charge, no ride without a record);
- no crash: anything but the modelled power cut escaping the engine fails the soak.

Two more faults of the field (each seeded like the rest):
- PSAM reset mid-session: the PSAM browns out after a random number of bytes the firmware
  wrote to it (emu.rig.T0Port.reset_after): its session is lost and its ATR arrives where an
  answer was expected. The engine refuses the tap (R_SAM_FAULT) or, if the card already
  debited, records the ride with its MAC2 unverified; its idle housekeeping
  (Transaction.maintain) re-boots the PSAM before the next tap, with no power cycle.
- sync cut mid-batch: some syncs go through the real protocol (validator.sync Session +
  LogTarget on the device side, depot.client.SyncClient + depot.db.DepotDB on the other)
  over a link that drops every byte after a random budget, in either direction. Every
  record the depot receives must be the bytes the log holds (a duplicate batch after a
  lost ACK too), and after the next whole sync the database holds every record up to the
  device's next_seq (DepotDB.contiguous_upto).

A whole validator process killed with SIGKILL is emu.soak_kill (the checker's view there
is the flash file and the cards, which live outside the killed process).
"""

import os
import random
import tempfile
import time

from emu import crypto, rig
from emu.nor import PowerCut
from validator.errors import R_RECOVERED, R_STORAGE_FULL, R_TAP_AGAIN
from validator.storage.record_host import REC_SIZE


def _tac_ok(row):
    raw = row["raw"]
    return crypto.verify_purchase_tac(
        rig.keys(), raw[38], raw[26:34], raw[18:26], row["amount"], raw[35], raw[54:60],
        raw[60:64], raw[64:71], raw[71:75])


class Checker:
    """The depot's view: pulls new records, acknowledges them, keeps the books."""

    def __init__(self, r):
        self.r = r
        self.next_seq = r.records.first_seq
        self.paid = {}  # card serial hex -> sum of final record amounts
        self.finals = 0
        self.grays = {}  # gray seq -> (card serial hex, amount): may or may not have paid
        self.resolved = set()  # gray seqs a later record points back to (REF_SEQ)
        self.failures = []

    def pull(self, ack=True):
        from validator.storage import record_host

        lg = self.r.records
        buf = bytearray(record_host.REC_SIZE)
        while self.next_seq < lg.next_seq:
            q = self.next_seq
            if not lg.read(q, buf):
                self.failures.append("record %d unreadable" % q)
                self.next_seq = q + 1
            else:
                self.take(q, buf)
        if ack and lg.next_seq > lg.first_seq:
            lg.ack(lg.next_seq - 1)

    def take(self, q, buf):
        """Book record q (its bytes in buf): the next one the depot expects."""
        from validator.storage import record_host

        if q != self.next_seq:
            self.failures.append("record %d arrived, %d expected" % (q, self.next_seq))
        d = record_host.decode(buf)
        d["raw"] = bytes(buf)
        if d["seq"] != q:
            self.failures.append("record %d holds seq %d" % (q, d["seq"]))
        if d["status"] == "gray":
            self.grays[q] = (d["card_serial"], d["amount"])
        for k in ("ref_seq", "void_seq"):  # closed by its final record, or void
            if d[k] != 0xFFFFFFFF:
                self.resolved.add(d[k])
        if d["status"] in ("normal", "recovered"):
            if not _tac_ok(d):
                self.failures.append("record %d: TAC does not verify" % q)
            self.paid[d["card_serial"]] = self.paid.get(d["card_serial"], 0) + d["amount"]
            self.finals += 1
        self.next_seq = q + 1


class _Wire:
    """One direction of the depot link; after `budget` bytes it drops everything (the
    cable pulled mid-batch: the writer cannot tell)."""

    def __init__(self):
        self.buf = bytearray()
        self.budget = -1

    def put(self, data, n):
        if self.budget >= 0:
            keep = min(n, self.budget)
            self.budget -= keep
            self.buf += bytes(data[:keep])
        else:
            self.buf += bytes(data[:n])
        return n


class _DevLink:  # the validator's end (hal ByteLink)
    def __init__(self, rx, tx):
        self.rx, self.tx = rx, tx

    def write(self, buf, n):
        return self.tx.put(buf, n)

    def readinto(self, buf):
        n = min(len(buf), len(self.rx.buf))
        buf[:n] = self.rx.buf[:n]
        del self.rx.buf[:n]
        return n

    def wait(self, ms):
        return bool(self.rx.buf)

    def drain(self):
        self.rx.buf.clear()


class _HostPort:  # the depot's end (what depot.client reads a serial port through)
    in_waiting = 0

    def __init__(self, sess, h2d, d2h):
        self.s, self.h2d, self.d2h = sess, h2d, d2h

    def write(self, b):
        self.h2d.put(b, len(b))
        return len(b)

    def read(self, n):
        for _ in range(64):
            if self.d2h.buf:
                break
            self.s.step()
        out = bytes(self.d2h.buf[:n])
        del self.d2h.buf[:n]
        return out


class _SyncClock:
    def __init__(self, c):
        self.c = c

    def ticks_ms(self):
        return self.c.ms

    def ticks_diff(self, a, b):
        return a - b

    def now(self):
        return self.c.t

    def set_time(self, s):
        self.c.t = s


DEPOT_DEVICE = 0x00120007
_KD = bytes(range(32))  # TEST KEYS: the soak's device and content keys
_KC = bytes(range(100, 132))


class Depot:
    """The real sync protocol between the rig's record log and a depot database; a sync
    may be cut after a random number of bytes in either direction."""

    def __init__(self, r, path):
        from depot.db import DepotDB

        self.r = r
        self.db = DepotDB(path)
        self.path = path
        self.got = {}  # seq -> the bytes the depot was sent for it (first arrival)
        self.failures = []
        self.log = None
        self.cuts = 0

    def _session(self):
        from validator.sync.session import Session
        from validator.sync.target import LogTarget

        if self.log is not self.r.records:  # rebooted: a new session over the same flash
            self.log = self.r.records
            self.clock = _SyncClock(self.r.clock)
            self.h2d, self.d2h = _Wire(), _Wire()
            target = LogTarget(self.log, DEPOT_DEVICE, 0x000100, _KC, self.clock, {},
                               rec_size=REC_SIZE)
            self.sess = Session(_DevLink(self.h2d, self.d2h), target,
                                (DEPOT_DEVICE, _KD, _KC), os.urandom, self.clock)
        return self.sess

    def sync(self, cut=None, cut_dir="d2h"):
        """One sync; cut = bytes allowed through before the link drops. -> True if whole."""
        from depot.client import Keyring, SyncClient, SyncFailure

        sess = self._session()
        self.h2d.budget = self.d2h.budget = -1
        if cut is not None:
            (self.d2h if cut_dir == "d2h" else self.h2d).budget = cut
        c = SyncClient(_HostPort(sess, self.h2d, self.d2h),
                       Keyring(devices={DEPOT_DEVICE: _KD}),
                       timeout=0.02 if cut is not None else 5.0)
        try:
            c.connect()
            c.pull(_Seen(self), window=2, max_records=8)
            c.bye()
            whole = True
        except SyncFailure:
            if cut is None:
                raise
            whole = False
            self.cuts += 1
        # the cable is back after a while: the device drops any partial frame
        self.h2d.budget = self.d2h.budget = -1
        self.h2d.buf.clear()
        self.r.clock.ms += 1500
        for _ in range(200):
            sess.step()
        self.d2h.buf.clear()
        return whole

    def book(self, chk):
        """The checker takes the records the database holds past its books, in order, up
        to the first gap (the next whole sync must fill it)."""
        chk.failures.extend(self.failures)
        self.failures = []
        lg = self.r.records
        upto = self.db.contiguous_upto(DEPOT_DEVICE, chk.next_seq - 1)
        buf = bytearray(REC_SIZE)
        for q in range(chk.next_seq, upto + 1):
            data = self.got.pop(q, None)
            if data is None:
                chk.failures.append("depot holds record %d it was never sent" % q)
                chk.next_seq = q + 1
                continue
            if not lg.read(q, buf) or bytes(buf) != data:
                chk.failures.append("depot record %d differs from the log" % q)
            chk.take(q, bytearray(data))
        for q in [q for q in self.got if q < chk.next_seq]:
            del self.got[q]  # re-sent after the checker booked it from the log

    def close(self):
        self.db.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(self.path + suffix)
            except OSError:
                pass


class _Seen:
    """The DepotDB the client pulls into, seen by the checker: what was sent for each seq
    (a re-sent record must be the same bytes), passed on to the real database."""

    def __init__(self, depot):
        self.d = depot

    def contiguous_upto(self, dev, after):
        return self.d.db.contiguous_upto(dev, after)

    def ingest(self, dev, first, size, data):
        got = self.d.got
        for i in range(len(data) // size):
            b = bytes(data[i * size:(i + 1) * size])
            old = got.setdefault(first + i, b)
            if old != b:
                self.d.failures.append("record %d re-sent with other bytes" % (first + i))
        return self.d.db.ingest(dev, first, size, data)


def _subset_sum(amounts, total):
    sums = {0}
    for a in amounts:
        sums |= {x + a for x in sums}
    return total in sums


def _tmpdb():
    d = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    return os.path.join(d, "ykt-soak-%d-%d.sqlite" % (os.getpid(), time.monotonic_ns()))


def run(taps=1000, seed=1, cards=24, balance=10 ** 6, tear_keep_s=600, lose_a_record=False,
        double_a_record=False):
    """-> dict of figures; 'failures' lists every broken invariant (goal: none).
    lose_a_record: debit one card behind the engine's back (proves the checker can fail);
    double_a_record: the depot books one record twice (so can the depot-side check)."""
    rnd = random.Random(seed)
    r = rig.Rig(fare=200, repeat_window_s=0, tear_keep_s=tear_keep_s)
    pop = [rig.card(balance=balance, serial=1000 + i) for i in range(cards)]
    start = [c.balance for c in pop]
    chk = Checker(r)
    depot = Depot(r, _tmpdb())
    try:
        return _run(rnd, r, pop, start, chk, depot, taps, lose_a_record, double_a_record)
    finally:
        depot.close()


def _run(rnd, r, pop, start, chk, depot, taps, lose_a_record, double_a_record):
    from validator.errors import R_SAM_FAULT

    cards = len(pop)
    faults = {"card_pulled": 0, "tear_before": 0, "tear_after": 0, "cut_drop": 0,
              "cut_torn": 0, "reboot": 0, "clock_jump": 0, "log_full": 0, "psam_reset": 0,
              "sync_cut": 0}
    syncs = 0
    reasons = {}
    again = None  # a passenger told "tap again" usually does, at once
    for i in range(taps):
        c = again if again is not None and rnd.random() < 0.9 else pop[rnd.randrange(cards)]
        again = None
        r.clock.advance(rnd.choice((1, 2, 5, 30)))
        if rnd.random() < 0.01:
            r.clock.advance(rnd.randrange(3600, 86400))
            faults["clock_jump"] += 1
        r.idle()
        r.reader.place(c)
        x = rnd.random()
        if x < 0.05:
            r.reader.remove_after(rnd.randrange(1, 8))
            faults["card_pulled"] += 1
        elif x < 0.08:
            c.arm_tear("before_commit")
            faults["tear_before"] += 1
        elif x < 0.11:
            c.arm_tear("after_commit")
            faults["tear_after"] += 1
        elif x < 0.15:
            mode = "drop" if rnd.random() < 0.5 else "torn"
            r.flash.cut_after(rnd.randrange(0, 8), mode)
            faults["cut_" + mode] += 1
        elif x < 0.17:
            r.port.reset_after(rnd.randrange(0, 6))  # a tap writes 5 times to the PSAM
        resets = r.port.resets
        try:
            res = r.txn.tap(c).reason
        except PowerCut:
            res = -1
        r.flash.revive()
        r.port.reset_at = -1  # a reset that did not come during this tap is not carried over
        faults["psam_reset"] += r.port.resets - resets  # the ones that really happened
        if res == -1 or rnd.random() < 0.01:
            r.reboot()
            faults["reboot"] += 1
        reasons[res] = reasons.get(res, 0) + 1
        if res == R_TAP_AGAIN:
            again = c
        if res == R_STORAGE_FULL:
            faults["log_full"] += 1
        # the depot syncs now and then; sometimes only after the log filled up; a few
        # syncs go over the real protocol, some of them cut mid-batch
        y = rnd.random()
        if y < 0.03:
            cut = None
            if rnd.random() < 0.5:
                cut = rnd.randrange(0, 400)  # bytes: inside AUTH, INFO or the batches
            cuts = depot.cuts
            whole = depot.sync(cut, "d2h" if rnd.random() < 0.5 else "h2d")
            faults["sync_cut"] += depot.cuts - cuts  # the cuts that broke the session
            syncs += 1
            depot.book(chk)
            if whole and chk.next_seq != r.records.next_seq:
                chk.failures.append("a whole sync left records %d..%d out of the depot" % (
                    chk.next_seq, r.records.next_seq - 1))
            if double_a_record and chk.next_seq > chk.r.records.first_seq + 1:
                double_a_record = False
                q = chk.next_seq - 1
                buf = bytearray(REC_SIZE)
                r.records.read(q, buf)
                chk.take(q, buf)
        elif res == R_STORAGE_FULL or y < 0.2:
            chk.pull()
        else:
            chk.pull(ack=False)
    if lose_a_record:
        pop[0].balance -= 200
    # the end of the day: every card comes back once more, so each torn debit is settled
    for c in pop:
        for _ in range(3):
            r.clock.advance(5)
            r.idle()
            r.reader.place(c)
            res = r.txn.tap(c).reason
            chk.pull()
            if res not in (R_TAP_AGAIN, R_STORAGE_FULL):
                break
        reasons[res] = reasons.get(res, 0) + 1
    # A gray record nothing resolved (its context aged out or was pushed out of the
    # validator's N_CTX slots by other torn cards) is what clearing settles from the card's
    # ATC chain: money may have left the card for it, or not. So per card, what left the
    # card must equal the final records plus some of its open gray records, never more.
    open_gray = {}
    for q, (key, amount) in chk.grays.items():
        if q not in chk.resolved:
            open_gray.setdefault(key, []).append(amount)
    for c, b0 in zip(pop, start, strict=True):
        key = bytes(c.ef15[10:20]).hex()
        short = (b0 - c.balance) - chk.paid.get(key, 0)
        if short != 0 and (short < 0 or not _subset_sum(open_gray.get(key, []), short)):
            chk.failures.append("card %s: %d left the card, final records say %d, open gray "
                                "records %r" % (key, b0 - c.balance, chk.paid.get(key, 0),
                                                 open_gray.get(key, [])))
    return {"soak_transactions": taps, "soak_faults_injected": sum(faults.values()),
            "soak_failures": len(chk.failures), "soak_fault_mix": faults,
            "soak_final_records": chk.finals,
            "soak_gray_for_clearing": sum(len(v) for v in open_gray.values()),
            "soak_recovered": reasons.get(R_RECOVERED, 0),
            "soak_protocol_syncs": syncs,
            "soak_sam_faults": reasons.get(R_SAM_FAULT, 0),
            "failures": chk.failures[:20]}


def main(argv=None):
    import argparse
    import json
    import sys
    import time

    ap = argparse.ArgumentParser(prog="emu.soak")
    ap.add_argument("--taps", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--segment", type=int, default=5000, help="taps per seeded segment")
    a = ap.parse_args(argv)
    total = {"soak_transactions": 0, "soak_faults_injected": 0, "soak_failures": 0}
    mix = {}
    t0 = time.time()
    seg = 0
    while total["soak_transactions"] < a.taps:
        n = min(a.segment, a.taps - total["soak_transactions"])
        res = run(n, seed=a.seed * 1000 + seg)
        for k in total:
            total[k] += res[k]
        for k, v in res["soak_fault_mix"].items():
            mix[k] = mix.get(k, 0) + v
        for f in res["failures"]:
            print("FAIL segment %d: %s" % (seg, f), file=sys.stderr)
        seg += 1
        print("soak: %d taps, %d faults, %d failures" % (
            total["soak_transactions"], total["soak_faults_injected"],
            total["soak_failures"]), flush=True)
    total["soak_taps_per_s"] = round(total["soak_transactions"] / (time.time() - t0), 1)
    total["soak_fault_mix"] = mix
    print(json.dumps(total))
    return 1 if total["soak_failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
