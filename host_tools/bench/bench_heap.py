"""bench_heap: the validator firmware's RAM in the MCU's 128 KiB MicroPython heap.

The firmware runs from a ROMFS image (emu.romfs: bytecode executes in place, outside the
heap, as frozen/ROMFS firmware does on the MCU) on the unix port with -X heapsize=128k, a
PSAM in slot 0 and sync configured (listening on TCP), exactly as `ykt sim` boots a
validator. What still lives in the heap: qstrs (identifiers, short strings: pools that grow
by doubling -- crossing 1260 dynamic qstrs costs one more 1280-entry pool, ~14 KiB on this
64-bit port), module dicts, function and class objects, constant objects, and the data the
boot builds (buffers, stores, sessions).

Metrics (at -X heapsize=128k, emu.world.HEAP; -1 when the firmware could not boot or
import there):
  boot_heap_used_bytes        gc.mem_alloc() after gc.collect() once the card loop runs ("S")
  heap_free_after_boot_bytes  gc.mem_free() at the same moment
  heap_max_block_after_boot_bytes  the largest single allocation the heap grants then
                              (free bytes can be scattered holes: fragmentation)
  import_heap_bytes           heap taken by importing every module the boot path imports
  day_heap_used_bytes         the same as boot_heap_used_bytes after a morning sync (fare
                              table push + clock), taps and an evening pull
  day_heap_max_block_bytes    the largest single allocation after that day
  *_512k                      the same figures on a 512 KiB heap (what the firmware uses
                              with room to spare)
  day_min_heap_kib            the smallest -X heapsize (KiB, 4 KiB steps) in which boot, a
                              morning sync, taps and the evening pull all pass: the real
                              margin at 128k, transient peaks included
Helpers provisioned_world() and heap_state() are shared with tests/host/test_heap_budget.py.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FARE_TABLE = os.path.join(ROOT, "host_tools", "emu", "fares", "default.json")
TERMINAL = "000000000001"
DAY = "2026-03-02"  # the default fare day (host_tools/emu/fares/day.json)

# Modules main.py brings in on the way to the card loop (board first, as main does).
BOOT_MODULES = (
    "board", "validator.app.main", "validator.sync.service", "validator.txn.setup",
    "validator.drivers.pn532", "validator.link.iso14443",
)

_IMPORT_SCRIPT = """
import os, sys, uctypes, vfs, gc
_a, _s = os.getenv("YKT_ROMFS").split(":")
vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(_a), int(_s))), "/rom")
sys.path[:] = ["/rom", ".frozen"]
gc.collect()
base = gc.mem_alloc()
for m in %r:
    __import__(m)
gc.collect()
print("IMPORT_HEAP", gc.mem_alloc() - base, gc.mem_free())
"""


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def provisioned_world(workdir, heap="128k"):
    """A World like `ykt sim` boots: PSAM (terminal TERMINAL) in slot 0, device keys and a
    signed configuration in the parameter store, sync listening on a free TCP port
    (w.sync_url). Not started."""
    import json as _json

    from depot.devsim import TEST_CONTENT_KEY, TEST_CONTENT_PUB, TEST_MASTER
    from emu import issuer, t0
    from emu.nor import NorFlash
    from emu.psam import Psam
    from emu.world import World
    from validator.app import content
    from validator.storage import PLAN_SIM
    from validator.storage.params import ParamStore
    from validator.sync import auth_host, wire_host

    keys = issuer.load_master_keys()
    term = bytes.fromhex(TERMINAL)
    psam = t0.T0Card(Psam(keys, terminal_no=term, serial=bytes(4) + term))
    port = _free_port()
    dev = int(TERMINAL[-8:], 16)
    w = World(workdir, device_id=TERMINAL[-8:], psams=[psam], heap=heap,
              extra_cfg={"sync": {"listen": port, "listen_host": "127.0.0.1"}})
    w.sync_url = "socket://127.0.0.1:%d" % port
    w.issuer_keys = keys
    f = NorFlash(64 << 20, path=w.flash_path, invert=True)
    ps = ParamStore(f, PLAN_SIM["params"]).mount()
    ps.put(content.P_KEYS, auth_host.make_keys(dev, auth_host.derive_device_key(TEST_MASTER, dev),
                                            TEST_CONTENT_PUB))
    cfg = {"city": "2900", "line": 0, "repeat_window_s": 60, "tear_keep_s": 600}
    ps.put(content.P_CONFIG, auth_host.make_content(TEST_CONTENT_KEY, wire_host.K_CONFIG, 1,
                                            _json.dumps(cfg).encode()))
    f.close()
    return w


def heap_state(w):
    """Send "S" and parse "@STATE ... heap_used=N heap_free=M" -> dict of ints."""
    w.send("S")
    ev = w.wait("STATE", 20)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", ev)}


def sync(w, db_path, pushes=(), clock_secs=None, pull=True):
    from depot import station
    from depot.client import Keyring
    from depot.db import DepotDB
    from depot.devsim import TEST_MASTER
    from ykt.cmd_sync import open_port

    port = open_port(w.sync_url, 115200, timeout=0.2)
    try:
        return station.sync_once(port, Keyring(master=TEST_MASTER), DepotDB(db_path),
                                 pushes=pushes, clock_secs=clock_secs, pull=pull)
    finally:
        port.close()


def fares_push():
    """(kind, name, blob) of the default fare table, signed with the test content key."""
    from depot.devsim import TEST_CONTENT_KEY
    from emu import farec
    from validator.sync import auth_host, wire_host

    with open(FARE_TABLE) as f:
        desc = json.load(f)
    blob = farec.container(farec.compile_table(desc),
                           sign=auth_host.content_signer(TEST_CONTENT_KEY))
    return (wire_host.K_FARES, "fares", blob)


def day(w, workdir, taps=12, log=None):
    """Morning sync (fare table, clock), `taps` taps of a few cards, evening pull.
    -> list of tap reasons."""
    from emu import farec, issuer

    db = os.path.join(workdir, "depot.sqlite")
    t0 = farec.parse_time(DAY + "T07:00:00")  # device time, inside the table's validity
    sync(w, db, pushes=[fares_push()], clock_secs=t0, pull=False)
    cards = [issuer.issue_card(w.issuer_keys, serial="0" + str(3100000000000000000 + i),
                               balance=5000, seed=i + 1) for i in range(4)]
    w.send("P 12 1 0 0")  # flat-fare bus line 12 of the default table, stop 1, any door
    w.wait("POS")
    reasons = []
    for i in range(taps):
        w.set_time(t0 + 600 * (i + 1))
        reasons.append(w.tap(cards[i % len(cards)])[0])
    sync(w, db, pull=True)
    return reasons


def import_heap(heap="128k"):
    """-> (bytes the boot modules take when imported from ROMFS, heap free after) or
    (-1, -1) when they do not fit."""
    from emu import romfs

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(_IMPORT_SCRIPT % (BOOT_MODULES,))
        script = f.name
    try:
        env = dict(os.environ, YKT_BOARD_CONFIG="/dev/null")
        r = subprocess.run(romfs.command(romfs.build(), heap, script), capture_output=True,
                           text=True, env=env, cwd=ROOT, timeout=60)
    finally:
        os.remove(script)
    m = re.search(r"IMPORT_HEAP (\d+) (\d+)", r.stdout)
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


def _figures(ctx, heap, sfx):
    out = {"import_heap_bytes" + sfx: import_heap(heap)[0]}
    with tempfile.TemporaryDirectory() as tmp:
        w = provisioned_world(tmp, heap)
        try:
            w.start()
            st = heap_state(w)
            out["boot_heap_used_bytes" + sfx] = st["heap_used"]
            out["heap_free_after_boot_bytes" + sfx] = st["heap_free"]
            out["heap_max_block_after_boot_bytes" + sfx] = st["heap_max_block"]
            day(w, tmp, taps=6 if ctx.quick else 24)
            st = heap_state(w)
            out["day_heap_used_bytes" + sfx] = st["heap_used"]
            out["day_heap_max_block_bytes" + sfx] = st["heap_max_block"]
        except Exception as e:  # report the figure as missing, keep the other benches going
            sys.stderr.write("bench_heap %s: %s\n" % (heap, str(e).splitlines()[0]))
            for k in ("boot_heap_used_bytes", "heap_free_after_boot_bytes",
                      "heap_max_block_after_boot_bytes", "day_heap_used_bytes",
                      "day_heap_max_block_bytes"):
                out.setdefault(k + sfx, -1)
        finally:
            w.stop()
    return out


def _day_passes(heap_k, taps):
    """True when boot, the morning sync, `taps` taps and the evening pull all succeed in
    -X heapsize=<heap_k>k."""
    with tempfile.TemporaryDirectory() as tmp:
        w = provisioned_world(tmp, "%dk" % heap_k)
        try:
            w.start()
            return day(w, tmp, taps=taps) == [0] * taps
        except Exception:
            return False
        finally:
            w.stop()


def min_day_heap_k(taps=6, lo=64, hi=160, step=4):
    """Smallest heap (KiB, a multiple of `step`) in which a whole day passes: the margin the
    firmware keeps at 128k, peak sync and boot transients included (bisection; a day that
    passes at n KiB is assumed to pass at every larger size)."""
    if not _day_passes(hi, taps):
        return -1
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if _day_passes(mid, taps):
            hi = mid
        else:
            lo = mid
    return hi


def run(ctx):
    """Main figures at the MCU's heap (a literal 128k, emu.world.HEAP) and on a roomy 512k;
    day_min_heap_kib: the smallest heap a whole day fits in (4 KiB steps)."""
    from emu.world import HEAP

    out = _figures(ctx, HEAP, "")
    out.update(_figures(ctx, "512k", "_512k"))
    out["day_min_heap_kib"] = min_day_heap_k()
    return out
