"""bench_txn: exchanges, bytes and the I/O time of one flat-fare T-Union tap.

exchanges_per_tap = card + PSAM command APDUs of a flat-fare CAPP tap of a local card
(goal <= 8), also for a visitor (+ READ BINARY EF17); the raw inputs of the latency model
(card APDU bytes, PSAM T=0 line bytes, flash programs); tap_heap_alloc_bytes from the unix
port (heap-locked replay of the same tap); modelled_tap_io_ms = the I/O part of the tap
time under the assumptions below (the CPU part, instructions at 240 MHz, is added by the
integrator's instr_per_tap figure). Assumptions (card-protocol.md §7; [INF] = typical
datasheet/CPU-card figures, not measured here):
  * ISO 14443-4 at 106 kbit/s: 9 etu per byte (128/fc each) = 84.96 us; each I-block adds
    PCB + CRC (3 bytes) both ways; 0.2 ms FDT/turnaround per exchange.
  * PN532 over HSU 115200 8N1 (the chip's power-up speed, where the boards stay): 86.8 us
    per byte, frame overhead 9 bytes + ACK 6 each way; *_hsu460800 the same tap on a
    board that switches with SetSerialBaudRate (pn532_link Hsu(link, fast)): 21.7 us.
  * card processing [INF]: SELECT 3, READ 3, INIT 10, 80DC 8, DEBIT 35, other 5 ms.
  * PSAM T=0 at the rate the link negotiated (Fi/Di from PPS; 9600 bit/s = Fi 372 at
    3.571 MHz when the ATR offers no TA1, as the emulated PSAM's): 10 etu per byte;
    modelled_tap_io_ms_psam38400 assumes the official MOT PSAM rate (card-protocol.md §4,
    S2: 38400). PSAM processing [INF] 8070 12 ms, 8072 3 ms.
  * NOR page program 0.7 ms typical (W25Q128 tPP) per program operation.

instr_per_tap (goal <= 3 M): callgrind Ir of the MicroPython part of the unix port
(--toggle-collect=micropython_unix_main, PYTHONHASHSEED=0, -X heapsize=8m, GC off) on
host_tools/bench/mp_tap_replay.py: one tap recorded against the emulators, then replayed
N and 2N times from the rig journals; gross = (I_2N - I_N) / N. The harness share (journal
replay of the card/PSAM bytes, Python clock, the slice-copy NOR model) is measured the same
way by replaying only the calls the firmware made to those objects ("cal" mode) and is
subtracted: instr_per_tap = gross - harness. It includes the idle-time housekeeping the
tap causes (RecordLog/TearStore maintain), not the PN532 driver (the reader is replayed at
APDU level). modelled_tap_ms = modelled_tap_io_ms + instr_per_tap cycles at 240 MHz
(1 x86 instruction ~ 1 Xtensa cycle, an assumption); modelled_tap_ms_cpu2x doubles the CPU
term. See firmware/validator/txn/README.md "Latency model".
"""

import os
import shutil
import subprocess
import sys

from bench import heap_locked_alloc, run_mp

_SNIPPET = r"""
import gc
import micropython
from emu import rig
def heap_locked(fn):  # bytes fn() allocates (an allocation under heap_lock raises)
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
r = rig.Rig(journal=True)
r.pj.ntx = r.pj.nrx = 0
r.idle()
r.reader.place(rig.card())
t = r.txn
t.tap()
r.idle()
r.pj.start_replay(); r.cj.start_replay(); r.reader.start_replay()
t.repeat_window_s = 0  # the same card again: a new purchase, not "already paid"
n = heap_locked(t.tap)
print("ALLOC", n if t.result.reason == 0 and r.pj.mismatch == 0 else -1)
"""

_RF_BYTE_MS = 9 * 128 / 13.56e6 * 1e3
HSU_BAUD = 115200  # the PN532's power-up HSU speed, where the boards stay
HSU_FAST = 460800  # a board that opts in to SetSerialBaudRate (pn532_link)
_F_HZ = 3.571e6
_CARD_MS = {0xA4: 3.0, 0xB0: 3.0, 0xB2: 3.0, 0x50: 10.0, 0xDC: 8.0, 0x54: 35.0}
_PSAM_MS = {0x70: 12.0, 0x72: 3.0}
_NOR_PROGRAM_MS = 0.7
_MCU_HZ = 240e6  # ESP32-class MCU [INF]; 1 unix-port x86 instruction ~ 1 cycle (assumed)
_HEAP = "8m"  # fixed: the heap size changes the instruction count (toolchain.md §7)
_REPLAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mp_tap_replay.py")


def _t0_byte_ms(etu):
    fi, di = etu if etu else (372, 1)
    return 10 * fi / di / _F_HZ * 1e3


def _atr_ta1(ta1):
    """The emulated PSAM's ATR with TA1 = ta1 (T0 bit 4 set, TA1 the byte after T0). The
    default emu.t0.ATR already offers TA1 = 13 (Fi 372, Di 4: 38 400 bit/s, what an official
    MOT PSAM offers; card-protocol.md §4, S2): set it, never add a second one."""
    from emu.t0 import ATR

    if ATR[1] & 0x10:
        return ATR[:2] + bytes((ta1,)) + ATR[3:]
    return ATR[:1] + bytes((ATR[1] | 0x10, ta1)) + ATR[2:]


def _tap(visitor=False, etu=None, ta1=None, parts=None, hsu_baud=HSU_BAUD):
    from emu import rig
    from emu.psam import Psam as PsamEmu
    from emu.t0 import T0Card

    kw = {}
    if ta1 is not None:  # PPS through the firmware's link and the T=0 emulator
        dev = PsamEmu(rig.keys(), terminal_no=rig.TERM)
        kw = {"psam": dev, "t0": T0Card(dev, atr=_atr_ta1(ta1))}
    r = rig.Rig(accept=((0xFFFF, 0xFFFF),), **kw)
    card = rig.card(city="1000") if visitor else rig.card()
    r.idle()
    r.reader.place(card)
    p0 = r.flash.programs
    w0, h0 = r.port.written, r.port.head
    log = []
    inner = r.reader.card
    psam = r.psam_dev
    psam_apdu = psam.apdu
    psam_ins = []

    class Count:
        def apdu(self, c):
            a = inner.apdu(c)
            log.append((c[1], len(c), len(a)))
            return a

    def spy(c):
        psam_ins.append(c[1])
        return psam_apdu(c)

    psam.apdu = spy
    r.reader.card = Count()
    res = r.txn.tap()
    assert res.reason == 0, res.reason
    card_ms = 0.0
    hsu_byte_ms = 10 / hsu_baud * 1e3
    for ins, nc, nr in log:
        rf = (nc + 3 + nr + 3) * _RF_BYTE_MS + 0.2
        hsu = (nc + 9 + 6 + nr + 9 + 6) * hsu_byte_ms
        card_ms += rf + hsu + _CARD_MS.get(ins, 5.0)
    line = (r.port.written - w0) + (r.port.head - h0)
    psam_ms = line * _t0_byte_ms(etu or r.port.etu) + sum(_PSAM_MS.get(i, 0.0) for i in psam_ins)
    programs = r.flash.programs - p0
    io_ms = card_ms + psam_ms + programs * _NOR_PROGRAM_MS
    if parts is not None:
        parts["card"] = card_ms
        parts["psam"] = psam_ms
        parts["psam_line"] = line * _t0_byte_ms(etu or r.port.etu)
        parts["flash"] = programs * _NOR_PROGRAM_MS
        parts["etu"] = r.port.etu
    cbytes = sum(nc + nr for _, nc, nr in log)
    return res.exchanges, cbytes, line, programs, io_ms


def replay(ctx, mode, k, valgrind=False, timeout=120, stack="pn532"):
    """Run mp_tap_replay.py MODE K STACK on the unix port; returns (Ir or None, {KEY: int}).
    STACK pn532: the firmware reader (Iso14443Reader, Pn532, Hsu) replayed at the UART;
    apdu: the engine alone, card answers replayed at APDU level (rig.Reader)."""
    cmd = [ctx.micropython, "-X", "heapsize=" + _HEAP, _REPLAY, mode, str(k), stack]
    ir, keys, p = run_mp(ctx, cmd, timeout, valgrind)
    if p.returncode != 0:
        raise RuntimeError("mp_tap_replay %s %d: rc %d: %s %s"
                           % (mode, k, p.returncode, p.stdout[-300:], p.stderr[-500:]))
    return ir, keys


def instr_per_tap(ctx, n, stack="pn532"):
    """(net, gross, harness) callgrind instructions per tap from runs with n and 2n taps."""
    ir = {}
    for mode in ("tap", "cal"):
        for k in (n, 2 * n):
            i, keys = replay(ctx, mode, k, valgrind=True, stack=stack)
            if not i or keys.get("TAPS") != k:  # 0 Ir: python3 outside the venv
                raise RuntimeError("replay %s %d: %r" % (mode, k, keys))
            ir[mode, k] = i
    gross = (ir["tap", 2 * n] - ir["tap", n]) / n
    harness = (ir["cal", 2 * n] - ir["cal", n]) / n
    return gross - harness, gross, harness


def run(ctx):
    # The official MOT PSAM runs at 38400 (S2), which the engine reaches by PPS when the ATR
    # offers TA1 = 13, as the emulated PSAM's does. The headline figures use it (PPS
    # negotiated for real); *_psam9600 a PSAM whose ATR says TA1 = 11 (the default rate,
    # no PPS).
    parts = {}
    ex, cb, pb, fp, io_ms = _tap(ta1=0x13, parts=parts)
    if parts["etu"] != (372, 4):
        raise RuntimeError("PPS to 38400 not negotiated: %r" % (parts["etu"],))
    exv = _tap(visitor=True, ta1=0x13)[0]
    io_fast = _tap(etu=(372, 4))[4]
    io_hsu_fast = _tap(ta1=0x13, hsu_baud=HSU_FAST)[4]
    slow = {}
    io_slow = _tap(ta1=0x11, parts=slow)[4]
    if slow["etu"] not in (None, (372, 1)):
        raise RuntimeError("a TA1=11 PSAM must stay at 9600: %r" % (slow["etu"],))
    out = {
        "exchanges_per_tap": ex,
        "exchanges_per_tap_visitor": exv,
        "tap_card_apdu_bytes": cb,
        "tap_psam_line_bytes": pb,
        "tap_flash_programs": fp,
        "modelled_tap_io_ms": round(io_ms, 1),
        "modelled_tap_io_ms_psam38400": round(io_fast, 1),
        "modelled_tap_io_ms_psam9600": round(io_slow, 1),
        "modelled_tap_io_ms_hsu460800": round(io_hsu_fast, 1),
        "modelled_tap_hsu_baud": HSU_BAUD,
        "modelled_tap_card_ms": round(parts["card"], 1),
        "modelled_tap_psam_ms": round(parts["psam"], 1),
        "modelled_tap_psam_ms_psam9600": round(slow["psam"], 1),
        "modelled_tap_flash_ms": round(parts["flash"], 1),
    }
    out["tap_heap_alloc_bytes"] = heap_locked_alloc(ctx, _SNIPPET, "1m", 120, "bench_txn")
    out.update(_cpu(ctx, io_ms, io_slow, io_hsu_fast))
    return out


def _cpu(ctx, io_ms, io_slow, io_hsu_fast):
    """instr_per_tap and the modelled tap time with the CPU term; {} without valgrind."""
    if not shutil.which("valgrind"):
        print("bench_txn: no valgrind, no instr_per_tap / modelled_tap_ms", file=sys.stderr)
        return {}
    n = 10 if ctx.quick else 50
    try:
        net, gross, harness = instr_per_tap(ctx, n)
        engine = instr_per_tap(ctx, n, "apdu")[0]
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        # tests/host/test_bench_txn.py fails loudly on the same script; keep the others
        print("bench_txn: instr_per_tap failed: %s" % e, file=sys.stderr)
        return {}
    cpu_ms = net / _MCU_HZ * 1e3
    return {
        "instr_per_tap": int(round(net)),
        "instr_per_tap_engine": int(round(engine)),
        "instr_per_tap_gross": int(round(gross)),
        "instr_per_tap_harness": int(round(harness)),
        "modelled_tap_cpu_ms": round(cpu_ms, 1),
        "modelled_tap_ms": round(io_ms + cpu_ms, 1),
        "modelled_tap_ms_cpu2x": round(io_ms + 2 * cpu_ms, 1),
        "modelled_tap_ms_psam9600": round(io_slow + cpu_ms, 1),
        "modelled_tap_ms_hsu460800": round(io_hsu_fast + cpu_ms, 1),
    }
