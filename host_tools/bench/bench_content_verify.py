"""bench_content_verify: the cost of one back-office signature check on the validator.

content_verify_instr: callgrind instructions (Ir) of the MicroPython part of the unix port
(--toggle-collect=micropython_unix_main, -X heapsize=128k) per auth.verify_content of a
signed 1 KB container (Ed25519, RFC 8032, pure Python: validator/sync/ed25519.py),
measured as (I_2N - I_N) / N so start-up and imports cancel out.
content_verify_ms_mcu = content_verify_instr cycles at 240 MHz (1 x86 instruction ~ 1
Xtensa cycle, the assumption bench_txn makes; the real MCU's big-int code may differ).
content_verify_steps: the bounded slices one check is cut into (verify_steps), and
content_verify_slice_instr = instr / steps, the longest a sync step holds up a tap on
average. content_verify_heap_free_min_bytes: the least free heap at which a check still
passes in a 128 KiB heap, the firmware run in place from its ROMFS image as on the MCU
(emu.romfs; bisected on the unix port).
Counts, not wall-clock; nothing here is asserted by tests.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from bench import run_mp

_MCU_HZ = 240e6

_SCRIPT = r"""
import sys
from validator.sync import auth, ed25519
blob = bytes.fromhex(%r)
pub = bytes.fromhex(%r)
n = int(sys.argv[1])
ok = 0
for i in range(n):
    ok += auth.verify_content(pub, blob) is not None
steps = 0
for r in ed25519.verify_steps(pub, b"m" * 46, bytes(64)):
    steps += 1
print("OK", ok)
print("STEPS", steps)
"""

_HEAP = r"""
import gc, os, sys, uctypes, vfs
_a, _s = os.getenv("YKT_ROMFS").split(":")
vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(_a), int(_s))), "/rom")
sys.path[:] = ["/rom"]
from validator.app import content  # as at boot: interns the verifier's names
from validator.sync import auth
blob = bytes.fromhex(%r)
pub = bytes.fromhex(%r)
fill = []
gc.collect()
want = %d
while gc.mem_free() > want + 64:
    try:
        fill.append(bytearray(48))
    except MemoryError:
        break
gc.collect()
print("FREE", gc.mem_free())
print("OK", 1 if auth.verify_content(pub, blob) is not None else 0)
"""


def _blob():
    from depot.testkeys import TEST_CONTENT_KEY, TEST_CONTENT_PUB
    from validator.sync import auth_host, wire_host

    body = bytes(range(256)) * 4
    return (auth_host.make_content(TEST_CONTENT_KEY, wire_host.K_FARES, 1, body).hex(),
            TEST_CONTENT_PUB.hex())


def _run(ctx, script, args, valgrind=False, heap="128k"):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cv.py")
        with open(path, "w") as f:
            f.write(script)
        cmd = [ctx.micropython, "-X", "heapsize=" + heap, path] + [str(a) for a in args]
        return run_mp(ctx, cmd, 600, valgrind)


def heap_free_min(ctx, blob, pub):
    from emu import romfs

    img = romfs.build()
    lo, hi = 1000, 32000  # fails at lo, passes at hi
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "heap.py")
        for _ in range(8):
            mid = (lo + hi) // 2
            with open(path, "w") as f:
                f.write(_HEAP % (blob, pub, mid))
            p = subprocess.run(romfs.command(img, "128k", path), capture_output=True,
                               text=True, cwd=ctx.root, timeout=120,
                               env=dict(ctx.mpenv, YKT_BOARD_CONFIG="/dev/null"))
            if "OK 1" in p.stdout:
                hi = mid
            else:
                lo = mid
    return hi


def run(ctx):
    blob, pub = _blob()
    out = {}
    _, keys, p = _run(ctx, _SCRIPT % (blob, pub), [1])
    if keys.get("OK") != 1:
        raise RuntimeError("bench_content_verify: the check failed: %s" % p.stderr[-500:])
    out["content_verify_steps"] = keys["STEPS"]
    out["content_verify_heap_free_min_bytes"] = heap_free_min(ctx, blob, pub)
    if not shutil.which("valgrind"):
        print("bench_content_verify: no valgrind, no content_verify_instr", file=sys.stderr)
        return out
    n = 2 if ctx.quick else 4
    ir = {}
    for k in (n, 2 * n):
        i, keys, p = _run(ctx, _SCRIPT % (blob, pub), [k], valgrind=True)
        if not i or keys.get("OK") != k:
            raise RuntimeError("bench_content_verify %d: %r %s" % (k, keys, p.stderr[-300:]))
        ir[k] = i
    instr = (ir[2 * n] - ir[n]) / n
    out["content_verify_instr"] = int(round(instr))
    out["content_verify_ms_mcu"] = round(instr / _MCU_HZ * 1e3, 1)
    out["content_verify_slice_instr"] = int(round(instr / out["content_verify_steps"]))
    return out
