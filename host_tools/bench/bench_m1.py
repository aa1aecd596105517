"""bench_m1: exchanges, instructions, modelled time and heap of one M1 purse tap.

The tap is the app's: InListPassiveTarget, the M1 engine (validator.m1.purse), InRelease,
on emu.mifare.Rig -- the firmware PN532 driver over HSU to the emulated PN532 and its own
Crypto1, an emulated MIFARE Classic 1K purse card, the local PSAM behind the firmware's
T=0 link (PPS to 38400, as the CPU bench), the real record log on an emulated NOR.

m1_exchanges_per_tap = InDataExchange (MIFARE commands) + PSAM APDUs of a paid flat-fare
tap (the poll and the release are not counted, as for the CPU card);
m1_tap_heap_alloc_bytes from the unix port (the same tap replayed from journals with the
heap locked; goal 0); m1_modelled_tap_io_ms under the CPU bench's model plus, for MIFARE
(MF1S50 §9-§10 timings, [INF] typical, not measured):
  * each MIFARE command is its air frames at 106 kbit/s (9 etu per byte incl. parity,
    0.2 ms frame delay each way) plus the HSU frames of its InDataExchange at 115 200
    (86.8 us a byte; *_hsu460800 on a board that switches with SetSerialBaudRate, 21.7 us),
    9 bytes of frame + ACK 6 each way, plus card time [INF]: AUTHENTICATE 1 ms
    (two passes), READ 0.5 ms, WRITE / TRANSFER 4 ms (EEPROM erase + program), value
    phase 0.5 ms, and the chip's wait for the silent value data phase (FWT) 1 ms;
  * PSAM: line bytes at the negotiated etu, 80FA / 801A 2 ms each [INF];
  * NOR: 0.7 ms per page program.
m1_instr_per_tap: callgrind Ir of the MicroPython part of the unix port on this module run
as a script (mode tap: K replays of the recorded tap; mode cal: the harness calls the
firmware made during one replay -- HSU and PSAM links, clock, flash -- repeated with the
same arguments), (I_2K - I_K) / K of tap minus that of cal, as bench_txn does for the CPU
card; one gc.collect() after the setup (see mp_main: the unix port heap-allocates large
bytecode frames, and an uncollected heap makes each such call walk a sieve of holes).
m1_modelled_tap_ms = io + instructions at 240 MHz (goal <= 150 ms).

Runs under CPython (run(ctx), from `make bench`) and, as `micropython bench_m1.py MODE K`,
on the unix port (common subset at module level).
"""

import sys

UID = b"\x9c\x59\x9b\x32"
_RF_BYTE_MS = 9 * 128 / 13.56e6 * 1e3
_F_HZ = 3.571e6
_CARD_MS = {0x60: 1.0, 0x61: 1.0, 0x30: 0.5, 0xA0: 4.0, 0xB0: 4.0, 0xC0: 0.5, 0xC1: 0.5,
            0xC2: 0.5}
_VALUE_FWT_MS = 1.0
_PSAM_MS = {0x1A: 2.0, 0xFA: 2.0}
_NOR_PROGRAM_MS = 0.7
_MCU_HZ = 240e6
_HEAP = "8m"


# ---- the replay (MicroPython and CPython) ----------------------------------------------------
def _rig(tracers=None):
    from emu import mifare

    kw = {}
    if tracers is not None:
        from bench import mp_tap_replay as M

        def t(kind, o):
            if kind == "clock":
                x = M.TClock(o)
            elif kind == "flash":
                x = M.FastNor(None)
            else:
                x = M.TLink(o)
            tracers.append(x)
            return x

        kw = {"tracer": t, "plan": {"log": M._LOG, "watermark": M._WM, "blacklist": M._BL},
              "flash": None}
    rg = mifare.Rig(fare=200, journal=True, **kw)
    return rg


def mp_main(mode, k):
    import gc

    from emu import mifare
    from validator.errors import R_OK

    gc.disable()
    tr = []
    rg = _rig(tr)
    card = mifare.issue_purse(rg.keys, UID, balance=10 ** 7)
    if rg.record(card).reason != R_OK:
        print("RECORD failed")
        return
    # One collection after the setup, then none: the unix port puts a bytecode frame of more
    # than VM_MAX_STATE_ON_STACK words on the heap (malloc + free per call), and gc_alloc
    # scans for it from the first free block; left as the compiler's frees made it, the
    # heap below the frontier is a sieve of one-block holes that each such call walks
    # (~28 k instructions a call here, most of the count). After a collection the first
    # holes are large and the frame is found at once, as on the MCU's compact 128 KiB heap.
    gc.collect()
    calls = []
    if mode == "cal":
        for o in tr:
            o.log = calls
        rg.rewind()
        if rg.replay_tap().reason != R_OK:
            print("TRACE failed")
            return
        for o in tr:
            o.log = None
        print("CALLS", len(calls))
        for o in tr:
            if hasattr(o, "strict"):
                o.strict = False
    ok = 0
    for _ in range(k):
        rg.rewind()
        if mode == "cal":
            for fn, args in calls:
                fn(*args)
            ok += 1
        elif rg.replay_tap().reason == R_OK:
            ok += 1
    print("TAPS", ok)
    print("EXCHANGES", rg.m1.result.exchanges)
    print("MISMATCH", rg.wj.mismatch + rg.pj.mismatch)


# ---- CPython: the bench ------------------------------------------------------------------------
_SNIPPET = r"""
import gc
import micropython
from emu import mifare
def heap_locked(fn):
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    micropython.heap_lock()
    try:
        fn()
    finally:
        micropython.heap_unlock()
        gc.enable()
    return gc.mem_alloc() - before
rg = mifare.Rig(journal=True)
c = mifare.issue_purse(rg.keys, b"\x9c\x59\x9b\x32", balance=100000)
r = rg.record(c)
rg.rewind()
n = heap_locked(rg.replay_tap)
print("ALLOC", n if rg.m1.result.reason == 0 and r.reason == 0 else -1)
"""


def _io(parts=None, hsu_baud=None):
    """One paid tap on the rig, instrumented: (exchanges, io_ms); the HSU line at hsu_baud
    (default the boards', bench_txn.HSU_BAUD)."""
    from bench.bench_txn import HSU_BAUD

    hsu_byte_ms = 10 / (hsu_baud or HSU_BAUD) * 1e3
    from emu import mifare

    rg = mifare.Rig(fare=200)
    card = mifare.issue_purse(rg.keys, UID, balance=100000)
    rg.records.maintain()
    rg.place(card)
    info = rg.reader.poll()
    air = []
    frame = card.frame

    def spy(data, par=None):
        r = frame(data, par)
        air.append((len(data), 0 if r is None else (len(r[0]) if r[2] != 4 else 1)))
        return r

    card.frame = spy
    ops = []
    dx = rg.core._mifare

    def spy_dx(cmd, c, d):
        ops.append(d[0])
        return dx(cmd, c, d)

    rg.core._mifare = spy_dx
    psam_ins = []
    apdu = rg.psam_dev.apdu

    def spy_psam(c):
        psam_ins.append(c[1])
        return apdu(c)

    rg.psam_dev.apdu = spy_psam
    w0, h0 = rg.port.written, rg.port.head
    hw0 = rg.wire.written
    taken = [0]
    take = rg.core.take

    def spy_take():
        out = take()
        taken[0] += len(out)
        return out

    p0 = rg.flash.programs
    rg.core.take = spy_take
    hw_poll = rg.wire.written
    res = rg.m1.tap(info)
    if res.reason != 0:
        raise RuntimeError("bench_m1: the tap answered %d" % res.reason)
    hsu_bytes = (rg.wire.written - hw_poll) + taken[0]
    del hw0
    rf_ms = sum((a + b) * _RF_BYTE_MS + 0.2 for a, b in air)
    card_ms = rf_ms + hsu_bytes * hsu_byte_ms + sum(_CARD_MS.get(o, 1.0) for o in ops)
    card_ms += _VALUE_FWT_MS * sum(1 for o in ops if o in (0xC0, 0xC1, 0xC2))
    etu = rg.port.etu or (372, 1)
    line = (rg.port.written - w0) + (rg.port.head - h0)
    psam_ms = line * 10 * etu[0] / etu[1] / _F_HZ * 1e3 + sum(_PSAM_MS.get(i, 0.0)
                                                              for i in psam_ins)
    flash_ms = (rg.flash.programs - p0) * _NOR_PROGRAM_MS
    if parts is not None:
        parts.update({"card": card_ms, "psam": psam_ms, "flash": flash_ms, "ops": len(ops),
                      "psam_apdus": len(psam_ins), "etu": etu, "air_frames": len(air)})
    return res.exchanges, card_ms + psam_ms + flash_ms


def _replay(ctx, mode, k, valgrind):
    import os

    from bench import run_mp

    cmd = [ctx.micropython, "-X", "heapsize=" + _HEAP, os.path.abspath(__file__), mode, str(k)]
    ir, keys, p = run_mp(ctx, cmd, 300, valgrind)
    if p.returncode != 0 or keys.get("TAPS") != k:
        raise RuntimeError("bench_m1 %s %d: rc %d %s %s" % (mode, k, p.returncode,
                                                            p.stdout[-300:], p.stderr[-500:]))
    return ir, keys


def instr_per_tap(ctx, n):
    ir = {}
    for mode in ("tap", "cal"):
        for k in (n, 2 * n):
            ir[mode, k] = _replay(ctx, mode, k, True)[0]
            if not ir[mode, k]:
                raise RuntimeError("bench_m1: no callgrind count (%s %d)" % (mode, k))
    gross = (ir["tap", 2 * n] - ir["tap", n]) / n
    harness = (ir["cal", 2 * n] - ir["cal", n]) / n
    return gross - harness, gross, harness


def run(ctx):
    import shutil

    parts = {}
    ex, io_ms = _io(parts)
    io_fast = _io(hsu_baud=460800)[1]
    out = {
        "m1_exchanges_per_tap": ex,
        "m1_card_commands_per_tap": parts["ops"],
        "m1_psam_apdus_per_tap": parts["psam_apdus"],
        "m1_modelled_tap_io_ms": round(io_ms, 1),
        "m1_modelled_tap_io_ms_hsu460800": round(io_fast, 1),
        "m1_modelled_tap_card_ms": round(parts["card"], 1),
        "m1_modelled_tap_psam_ms": round(parts["psam"], 1),
        "m1_modelled_tap_flash_ms": round(parts["flash"], 1),
    }
    from bench import heap_locked_alloc

    out["m1_tap_heap_alloc_bytes"] = heap_locked_alloc(ctx, _SNIPPET, "2m", 300, "bench_m1")
    if not shutil.which("valgrind"):
        print("bench_m1: no valgrind, no m1_instr_per_tap / m1_modelled_tap_ms",
              file=sys.stderr)
        return out
    try:
        net, gross, harness = instr_per_tap(ctx, 5 if ctx.quick else 20)
    except (OSError, RuntimeError) as e:
        print("bench_m1: m1_instr_per_tap failed: %s" % e, file=sys.stderr)
        return out
    cpu_ms = net / _MCU_HZ * 1e3
    out.update({
        "m1_instr_per_tap": int(round(net)),
        "m1_instr_per_tap_gross": int(round(gross)),
        "m1_instr_per_tap_harness": int(round(harness)),
        "m1_modelled_tap_cpu_ms": round(cpu_ms, 1),
        "m1_modelled_tap_ms": round(io_ms + cpu_ms, 1),
        "m1_modelled_tap_ms_hsu460800": round(io_fast + cpu_ms, 1),
    })
    return out


if __name__ == "__main__":
    a = sys.argv
    mp_main(a[1] if len(a) > 1 else "tap", int(a[2]) if len(a) > 2 else 2)
