"""bench_txn: exchanges and bytes of one flat-fare T-Union tap through the real tap engine.

Metrics (issue 4): exchanges_per_tap = card + PSAM command APDUs of a flat-fare CAPP tap of
a local card (goal <= 8); the visitor variant (+ READ BINARY EF17); the raw inputs of the
latency model (card APDU bytes both ways, PSAM T=0 line bytes both ways, flash programs);
tap_heap_alloc_bytes from the unix port (heap-locked replay of the same tap).
"""

import os
import subprocess
import sys

_SNIPPET = r"""
import fwtest
from fw import rig
r = rig.Rig(journal=True)
r.pj.ntx = r.pj.nrx = 0
r.idle()
r.reader.place(rig.card())
t = r.txn
t.tap()
r.idle()
r.pj.start_replay(); r.cj.start_replay(); r.reader.start_replay()
for k in range(len(t._seen_t)):
    t._seen_t[k] = 0
n = fwtest.heap_locked(t.tap)
print("ALLOC", n if t.result.reason == 0 and r.pj.mismatch == 0 else -1)
"""


def _tap(visitor=False):
    from fw import rig

    r = rig.Rig(accept=((0xFFFF, 0xFFFF),))
    card = rig.card(city="1000") if visitor else rig.card()
    r.idle()
    r.reader.place(card)
    p0 = r.flash.programs
    w0, h0 = r.port.written, r.port.head
    bytes_card = [0]
    inner = r.reader.card

    class Count:
        def apdu(self, c):
            a = inner.apdu(c)
            bytes_card[0] += len(c) + len(a)
            return a

    r.reader.card = Count()
    res = r.txn.tap()
    assert res.reason == 0, res.reason
    p1 = r.flash.programs
    return res.exchanges, bytes_card[0], (r.port.written - w0) + (r.port.head - h0), p1 - p0


def run(ctx):
    sys.path.insert(0, os.path.join(ctx.root, "tests"))
    ex, cb, pb, fp = _tap()
    exv, _, _, _ = _tap(visitor=True)
    out = {
        "exchanges_per_tap": ex,
        "exchanges_per_tap_visitor": exv,
        "tap_card_apdu_bytes": cb,
        "tap_psam_line_bytes": pb,
        "tap_flash_programs": fp,
    }
    try:
        p = subprocess.run([ctx.micropython, "-X", "heapsize=1m", "-c", _SNIPPET],
                           env=ctx.mpenv, capture_output=True, text=True, timeout=120)
        for line in p.stdout.splitlines():
            if line.startswith("ALLOC "):
                out["tap_heap_alloc_bytes"] = int(line.split()[1])
    except (OSError, subprocess.TimeoutExpired):
        pass
    return out
