"""bench_soak: a seeded soak segment of the real tap engine under random faults (emu.soak):
taps, faults injected, failures (goal 0), taps per second, the fault mix. `make soak` runs
the full 100 000 taps."""

import time

from emu import soak


def run(ctx):
    n = 500 if ctx.quick else 3000
    t0 = time.time()
    r = soak.run(n, seed=7)
    out = {k: r[k] for k in ("soak_transactions", "soak_faults_injected", "soak_failures",
                             "soak_gray_for_clearing", "soak_recovered")}
    out["soak_taps_per_s"] = round(n / (time.time() - t0), 1)
    for k, v in r["soak_fault_mix"].items():
        out["soak_fault_" + k] = v
    return out
