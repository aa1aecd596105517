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

Not covered here: killing a whole validator process (the unix board under emu.world),
PSAM resets and a sync cut mid-batch; see the issue tracker.
"""

import random

from emu import crypto, rig
from emu.nor import PowerCut
from validator.errors import R_RECOVERED, R_STORAGE_FULL, R_TAP_AGAIN


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
            else:
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
        if ack and lg.next_seq > lg.first_seq:
            lg.ack(lg.next_seq - 1)


def _subset_sum(amounts, total):
    sums = {0}
    for a in amounts:
        sums |= {x + a for x in sums}
    return total in sums


def run(taps=1000, seed=1, cards=24, balance=10 ** 6, tear_keep_s=600, lose_a_record=False):
    """-> dict of figures; 'failures' lists every broken invariant (goal: none).
    lose_a_record: debit one card behind the engine's back (proves the checker can fail)."""
    rnd = random.Random(seed)
    r = rig.Rig(fare=200, repeat_window_s=0, tear_keep_s=tear_keep_s)
    pop = [rig.card(balance=balance, serial=1000 + i) for i in range(cards)]
    start = [c.balance for c in pop]
    chk = Checker(r)
    faults = {"card_pulled": 0, "tear_before": 0, "tear_after": 0, "cut_drop": 0,
              "cut_torn": 0, "reboot": 0, "clock_jump": 0, "log_full": 0}
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
        try:
            res = r.txn.tap(c).reason
        except PowerCut:
            res = -1
        r.flash.revive()
        if res == -1 or rnd.random() < 0.01:
            r.reboot()
            faults["reboot"] += 1
        reasons[res] = reasons.get(res, 0) + 1
        if res == R_TAP_AGAIN:
            again = c
        if res == R_STORAGE_FULL:
            faults["log_full"] += 1
        # the depot syncs now and then; sometimes only after the log filled up
        if res == R_STORAGE_FULL or rnd.random() < 0.2:
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
    t0 = time.time()
    seg = 0
    while total["soak_transactions"] < a.taps:
        n = min(a.segment, a.taps - total["soak_transactions"])
        res = run(n, seed=a.seed * 1000 + seg)
        for k in total:
            total[k] += res[k]
        for f in res["failures"]:
            print("FAIL segment %d: %s" % (seg, f), file=sys.stderr)
        seg += 1
        print("soak: %d taps, %d faults, %d failures" % (
            total["soak_transactions"], total["soak_faults_injected"],
            total["soak_failures"]), flush=True)
    total["soak_taps_per_s"] = round(total["soak_transactions"] / (time.time() - t0), 1)
    print(json.dumps(total))
    return 1 if total["soak_failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
