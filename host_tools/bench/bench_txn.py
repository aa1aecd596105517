"""bench_txn: exchanges, bytes and the I/O time of one flat-fare T-Union tap (issue 4).

exchanges_per_tap = card + PSAM command APDUs of a flat-fare CAPP tap of a local card
(goal <= 8), also for a visitor (+ READ BINARY EF17); the raw inputs of the latency model
(card APDU bytes, PSAM T=0 line bytes, flash programs); tap_heap_alloc_bytes from the unix
port (heap-locked replay of the same tap); modelled_tap_io_ms = the I/O part of the tap
time under the assumptions below (the CPU part, instructions at 240 MHz, is added by the
integrator's instr_per_tap figure). Assumptions (card-protocol.md §7; [INF] = typical
datasheet/CPU-card figures, not measured here):
  * ISO 14443-4 at 106 kbit/s: 9 etu per byte (128/fc each) = 84.96 us; each I-block adds
    PCB + CRC (3 bytes) both ways; 0.2 ms FDT/turnaround per exchange.
  * PN532 over HSU 115200 8N1: 86.8 us per byte, frame overhead 9 bytes + ACK 6 each way.
  * card processing [INF]: SELECT 3, READ 3, INIT 10, 80DC 8, DEBIT 35, other 5 ms.
  * PSAM T=0 at the rate the link negotiated (Fi/Di from PPS; 9600 bit/s = Fi 372 at
    3.571 MHz when the ATR offers no TA1, as the emulated PSAM's): 10 etu per byte;
    modelled_tap_io_ms_psam38400 assumes the official MOT PSAM rate (card-protocol.md §4,
    S2: 38400). PSAM processing [INF] 8070 12 ms, 8072 3 ms.
  * NOR page program 0.7 ms typical (W25Q128 tPP) per program operation.
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

_RF_BYTE_MS = 9 * 128 / 13.56e6 * 1e3
_HSU_BYTE_MS = 10 / 115200 * 1e3
_F_HZ = 3.571e6
_CARD_MS = {0xA4: 3.0, 0xB0: 3.0, 0xB2: 3.0, 0x50: 10.0, 0xDC: 8.0, 0x54: 35.0}
_PSAM_MS = {0x70: 12.0, 0x72: 3.0}
_NOR_PROGRAM_MS = 0.7


def _t0_byte_ms(etu):
    fi, di = etu if etu else (372, 1)
    return 10 * fi / di / _F_HZ * 1e3


def _tap(visitor=False, etu=None):
    from fw import rig

    r = rig.Rig(accept=((0xFFFF, 0xFFFF),))
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
    for ins, nc, nr in log:
        rf = (nc + 3 + nr + 3) * _RF_BYTE_MS + 0.2
        hsu = (nc + 9 + 6 + nr + 9 + 6) * _HSU_BYTE_MS
        card_ms += rf + hsu + _CARD_MS.get(ins, 5.0)
    line = (r.port.written - w0) + (r.port.head - h0)
    psam_ms = line * _t0_byte_ms(etu or r.port.etu) + sum(_PSAM_MS.get(i, 0.0) for i in psam_ins)
    programs = r.flash.programs - p0
    io_ms = card_ms + psam_ms + programs * _NOR_PROGRAM_MS
    cbytes = sum(nc + nr for _, nc, nr in log)
    return res.exchanges, cbytes, line, programs, io_ms


def run(ctx):
    sys.path.insert(0, os.path.join(ctx.root, "tests"))
    ex, cb, pb, fp, io_ms = _tap()
    exv = _tap(visitor=True)[0]
    io_fast = _tap(etu=(372, 4))[4]
    out = {
        "exchanges_per_tap": ex,
        "exchanges_per_tap_visitor": exv,
        "tap_card_apdu_bytes": cb,
        "tap_psam_line_bytes": pb,
        "tap_flash_programs": fp,
        "modelled_tap_io_ms": round(io_ms, 1),
        "modelled_tap_io_ms_psam38400": round(io_fast, 1),
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
