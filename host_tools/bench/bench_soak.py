"""bench_soak: a seeded soak segment of the real tap engine under random faults (emu.soak),
then the real firmware process SIGKILLed at random instants and restarted on its flash
file (emu.soak_kill): taps, faults injected, failures (goal 0), taps per second, and the
fault mix (PSAM resets, sync cuts, SIGKILLs by instant among them). `make soak` runs the
full 100 000 taps and a few hundred kills."""

import time

from emu import soak, soak_kill


def run(ctx):
    n = 500 if ctx.quick else 3000
    t0 = time.time()
    r = soak.run(n, seed=7)
    dt = time.time() - t0
    mix = r["soak_fault_mix"]
    out = {k: r[k] for k in ("soak_faults_injected", "soak_failures", "soak_gray_for_clearing",
                             "soak_recovered")}
    out["soak_taps_per_s"] = round(n / dt, 1)
    for k, v in mix.items():
        out["soak_fault_" + k] = v
    out["soak_psam_resets"] = mix["psam_reset"]
    out["soak_sync_cuts"] = mix["sync_cut"]
    taps, kills = (40, 6) if ctx.quick else (200, 30)
    k = soak_kill.run(taps, kills=kills, seed=7)
    kmix = k["soak_kill_fault_mix"]
    out["soak_transactions"] = n + taps
    out["soak_faults_injected"] += k["soak_kill_faults_injected"]
    out["soak_failures"] += k["soak_kill_failures"]
    out["soak_sigkills"] = k["soak_sigkills"]
    out["soak_sync_cuts"] += kmix["sync_cut"]
    for name, v in kmix.items():
        if name.startswith("sigkill_"):
            out["soak_fault_" + name] = v
    out["soak_kill_taps_per_s"] = round(taps / k["soak_kill_seconds"], 1)
    out["soak_kill_heap_growth"] = k["soak_kill_heap_max"] - k["soak_kill_heap_boot"]
    return out
