"""Real-board benchmark (boards/esp32s3_pn532): the capacities of its flash plan
(validator.storage.plan_boards.PLAN_ESP32S3, FORMAT.md §1) computed by the firmware's own
RecordLog and Blacklist on a device of the plan's geometry, and the board's heap at boot
on the MicroPython unix port through the machine shim (emu.s3world, 128 KiB heap) for a
minimal, a depot and a full board.json; the shim's own modules are reported apart
(esp32s3_heap_shim_modules: heap the chip's C machine/esp32/network do not take). A
configuration that no longer boots in 128 KiB reports esp32s3_boots_128k_* = 0 and the
figure it needs, measured in a 256 KiB heap (its free figure then 128 KiB minus that,
negative when short). esp32s3_heap_boot[_depot]_<step> split the boot into main.py's
steps (boot_phases): runtime, shim_modules, board_module, firmware_modules,
board_objects, start (up to READY). romfs_heap_per_code_object times
esp32s3_boot_code_objects_depot is what the emulation holds for code loaded from ROMFS
(each function, class body, lambda, comprehension of every module loaded at READY) that a
frozen build keeps in flash: the emulated figure is the pessimistic one."""

import os
import shutil
import tempfile

from emu.nor import NorFlash
from validator.storage import plan_boards
from validator.storage.blacklist import Blacklist
from validator.storage.recordlog import RecordLog


class _Geo:
    block_size = 4096
    prog_size = 256


def _capacities():
    p = plan_boards.PLAN_ESP32S3
    out = {
        "esp32s3_flash_bytes": plan_boards.ESP32S3_FLASH_SIZE,
        "esp32s3_plan_ok": int(plan_boards.check(p, plan_boards.ESP32S3_FLASH_SIZE)),
        "log_capacity_records_esp32s3": RecordLog(_Geo(), p["log"], p["watermark"]).capacity,
    }
    # a bank's group budget, from the firmware's own sizing on an erased device
    fl = NorFlash(p["blacklist"][0] + p["blacklist"][1], block_size=4096, prog_size=256)
    groups = Blacklist(fl, p["blacklist"]).mount().max_groups
    out["blacklist_capacity_groups_esp32s3"] = groups
    out["blacklist_capacity_esp32s3"] = groups * 64  # keys per bank, 64 per full group
    # distinct 2-byte key prefixes a million keys may spread over (FORMAT.md §5)
    out["blacklist_million_prefixes_esp32s3"] = groups - (1_000_000 + 63) // 64
    return out


# board.json as a field validator carries it (boards/esp32s3_pn532/README.md): the least a
# bus runs with (no depot, no Wi-Fi, no GPS stops), the depot over Wi-Fi without stops
# (the configuration that stopped booting), and everything: depot, Wi-Fi, watchdog and
# the GPS stops of eight lines of 24 stops
BOARD_MINIMAL = {}
BOARD_DEPOT = {"depot": "127.0.0.1:9", "retry_s": 60,
               "wifi": {"ssid": "depot-7", "key": "field-key"}}
BOARD_FULL = dict(BOARD_DEPOT, wdt_ms=8000,
                  stops={str(800 + k): [[round(31.23 + 0.001 * k, 6),
                                         round(121.47 + 0.0032 * i, 6)] for i in range(24)]
                         for k in range(8)})
# no depot, the GPS stops of a fleet's 20 lines of 24 (a 10 KB board.json)
BOARD_FLEET_STOPS = {"stops": {str(700 + k): [[round(31.2 + 0.001 * k, 6),
                                               round(121.4 + 0.0032 * i, 6)] for i in range(24)]
                               for k in range(20)}}
# the signed device configuration `ykt flash provision` writes (app/CONFIG.md)
DEVICE_CONFIG = {"city": "2900", "line": 801, "repeat_window_s": 1800, "tear_keep_s": 600}
HEAP_ROOMY = "256k"  # where a configuration that no longer fits 128 KiB still boots


def _psams():
    from emu import issuer, t0
    from emu.psam import Psam

    keys = issuer.load_master_keys()
    term = bytes.fromhex("000008010001")
    lterm = b"\x99" + term[1:]
    return [t0.T0Card(Psam(keys, terminal_no=term, serial=bytes(4) + term)),
            t0.T0Card(Psam(issuer.local_master_keys(keys), terminal_no=lterm,
                           serial=bytes(4) + lterm, app="local"))]


def boot_heap(board_cfg, heap=None, device_config=None):
    """Boot the real board.py through the shim on a provisioned flash -> (heap_used,
    heap_free) of its "@READY" line, or None when it did not reach READY (the process
    died: a MemoryError at boot)."""
    from emu import s3world

    d = tempfile.mkdtemp(prefix="bench-s3-")
    w = s3world.S3World(d, _psams(), board_cfg=board_cfg, heap=heap or s3world.HEAP)
    try:
        provision(w.flash_path, DEVICE_CONFIG if device_config is None else device_config)
        try:
            w.start(timeout=60)
        except RuntimeError:
            return None
        ev = [x for x in w.lines if x.startswith("@READY")][-1]
        kv = dict(x.split("=") for x in ev.split()[2:])
        return int(kv["heap_used"]), int(kv["heap_free"])
    finally:
        w.stop()
        shutil.rmtree(d, ignore_errors=True)


# firmware/main.py with a heap checkpoint (gc.collect(), gc.mem_alloc()) after each boot
# step, in the order main.py takes them; READY closes the last one
_PHASES_MAIN = """import gc


def _h(t):
    gc.collect()
    print("@PHASE %s %d" % (t, gc.mem_alloc()))


_h("runtime")
import time, machine, esp32, network  # noqa: E401,E402
_h("shim_modules")
from board import make_board  # noqa: E402
_h("board_module")
from validator.app.main import start  # noqa: E402
_h("firmware_modules")
b = make_board()
_h("board_objects")
start(b)
"""


def boot_phases(board_cfg, heap=None):
    """Where the boot heap goes: {step: bytes} from the checkpoints of _PHASES_MAIN --
    runtime (romboot, the ROMFS mount), shim_modules, board_module (board.py, wiring),
    firmware_modules (validator.app.main and all it imports), board_objects (make_board:
    pins, buses, driver, GPS stops), start (stores, keys, tables, sync sessions, reader,
    PSAMs, tap engines, asyncio: up to READY)."""
    from emu import romfs, s3world

    d = tempfile.mkdtemp(prefix="bench-s3p-")
    w = s3world.S3World(d, _psams(), board_cfg=board_cfg, heap=heap or s3world.HEAP)
    try:
        provision(w.flash_path, DEVICE_CONFIG)
        probe = os.path.join(d, "phases_main.py")
        with open(probe, "w") as f:
            f.write(_PHASES_MAIN)
        content = tuple((probe, dst) if dst == "main.py" else (src, dst)
                        for src, dst in s3world.CONTENT)
        w.start(timeout=60, image=romfs.build(content=content))
        out, last = {}, 0
        for line in w.lines:
            if line.startswith("@PHASE") or line.startswith("@READY"):
                t, used = ("start", line.split("heap_used=")[1].split()[0]) \
                    if line.startswith("@READY") else line.split()[1:3]
                out[t] = int(used) - last
                last = int(used)
        return out
    finally:
        w.stop()
        shutil.rmtree(d, ignore_errors=True)


def _image_source(module):
    """The source file of a module in the board's ROMFS image, or None (built in or
    frozen into the runtime, as asyncio is)."""
    from emu import s3world

    rel = module.replace(".", "/")
    for src, dst in s3world.CONTENT:
        d = dst[:-3] if dst.endswith(".py") else dst
        if rel == d or rel.startswith(d + "/"):
            p = os.path.join(s3world.ROOT, src, os.path.relpath(rel, d)) if rel != d \
                else os.path.join(s3world.ROOT, src)
            for c in (p if p.endswith(".py") else p + ".py", os.path.join(p, "__init__.py")):
                if os.path.isfile(c):
                    return c
    return None


def code_objects(path):
    """Code objects the compiler makes of a source file: the module, each class body,
    function, lambda and comprehension -- each a raw code the loader builds in the heap
    when the module comes from ROMFS (frozen code keeps them in flash)."""
    import ast

    with open(path) as f:
        tree = ast.parse(f.read(), path)
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
             ast.SetComp, ast.DictComp, ast.GeneratorExp)
    return 1 + sum(isinstance(n, kinds) for n in ast.walk(tree))


def boot_modules(board_cfg, heap=None):
    """The modules loaded when the board is READY (sys.modules, printed by the board
    task's first step of a probe main) -> sorted names."""
    from emu import romfs, s3world

    d = tempfile.mkdtemp(prefix="bench-s3m-")
    w = s3world.S3World(d, _psams(), board_cfg=board_cfg, heap=heap or s3world.HEAP)
    try:
        provision(w.flash_path, DEVICE_CONFIG)
        probe = os.path.join(d, "mods_main.py")
        with open(probe, "w") as f:
            f.write("import sys\nfrom board import make_board\nfrom validator.app.main "
                    "import start\nb = make_board()\n_ct = b.console_task\n\n\n"
                    "async def _console(v):\n    print('@MODS ' + ' '.join(sys.modules))\n"
                    "    await _ct(v)\n\nb.console_task = _console\nstart(b)\n")
        content = tuple((probe, dst) if dst == "main.py" else (src, dst)
                        for src, dst in s3world.CONTENT)
        w.start(timeout=60, image=romfs.build(content=content))
        return sorted([x for x in w.lines if x.startswith("@MODS")][-1].split()[1:])
    finally:
        w.stop()
        shutil.rmtree(d, ignore_errors=True)


def romfs_code_object_heap(n=64):
    """Heap one code object costs when its module is imported from ROMFS on this port:
    a module whose one function holds n nested defs (never run) against one without."""
    import subprocess

    from emu import romfs

    d = tempfile.mkdtemp(prefix="bench-code-")
    try:
        with open(os.path.join(d, "nested.py"), "w") as f:
            f.write("def outer(a):\n" + "".join("    def f%d(b):\n        return b + %d\n"
                                                 % (i, i) for i in range(n)) + "    return a\n")
        with open(os.path.join(d, "flat.py"), "w") as f:
            f.write("def outer(a):\n    return a\n")
        script = os.path.join(d, "measure.py")
        with open(script, "w") as f:
            f.write("import gc\nimport sys\nsys.path[:] = ['/rom']\nimport uctypes, vfs\n"
                    "a, n = __import__('os').getenv('YKT_ROMFS').split(':')\n"
                    "vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(a), int(n))), '/rom')\n"
                    "gc.collect()\nu = gc.mem_alloc()\nimport flat\ngc.collect()\n"
                    "v = gc.mem_alloc()\nimport nested\ngc.collect()\n"
                    "print('CODE', (gc.mem_alloc() - v) - (v - u))\n")
        img = romfs.build(out_dir=d, content=((os.path.join(d, "nested.py"), "nested.py"),
                                              (os.path.join(d, "flat.py"), "flat.py"),
                                              ("host_tools/emu/nor.py", "emu/nor.py")))
        r = subprocess.run(romfs.command(img, "128k", script), capture_output=True, text=True,
                           timeout=60, cwd=d)
        return int(r.stdout.split("CODE ")[1].split()[0]) // n
    finally:
        shutil.rmtree(d, ignore_errors=True)


def shim_heap():
    """Heap the shim's modules (machine, time, esp32, network) take when imported first
    in the board's image, as board.py imports them: what the chip's C modules do not cost.
    The objects the board builds through them (pins, UARTs) are not counted."""
    import subprocess

    from emu import romfs, s3world

    d = tempfile.mkdtemp(prefix="bench-shim-")
    try:
        script = os.path.join(d, "shim.py")
        with open(script, "w") as f:
            f.write("import gc\nimport sys\nsys.path[:] = ['/rom']\nimport uctypes, vfs\n"
                    "a, n = __import__('os').getenv('YKT_ROMFS').split(':')\n"
                    "vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(a), int(n))), '/rom')\n"
                    "gc.collect()\nu = gc.mem_alloc()\nimport time, machine, esp32, network\n"
                    "gc.collect()\nprint('SHIM', gc.mem_alloc() - u)\n")
        argv = romfs.command(romfs.build(content=s3world.CONTENT), s3world.HEAP, script)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=d)
        return int(r.stdout.split("SHIM ")[1].split()[0])
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _heap():
    out = {"esp32s3_heap_shim_modules": shim_heap(),
           # ROMFS code objects: heap each costs here, how many the READY board holds
           # (the depot board.json), the shim's among them -- frozen firmware keeps them
           # in flash
           "romfs_heap_per_code_object": romfs_code_object_heap()}
    mods = [m for m in boot_modules(BOARD_DEPOT, HEAP_ROOMY) if _image_source(m)]
    out["esp32s3_boot_code_objects_depot"] = sum(code_objects(_image_source(m)) for m in mods)
    out["esp32s3_boot_code_objects_shim"] = sum(code_objects(_image_source(m)) for m in mods
                                                if m in ("machine", "time", "esp32", "network"))
    for name, cfg, heap in (("", BOARD_MINIMAL, None), ("_depot", BOARD_DEPOT, HEAP_ROOMY)):
        for t, n in boot_phases(cfg, heap).items():
            out["esp32s3_heap_boot%s_%s" % (name, t)] = n
    for name, cfg in (("", BOARD_MINIMAL), ("_depot", BOARD_DEPOT), ("_full", BOARD_FULL),
                      ("_fleet_stops", BOARD_FLEET_STOPS)):
        r = boot_heap(cfg)
        out["esp32s3_boots_128k" + name] = int(r is not None)
        if r is None:  # what it needs: the figure in a heap it fits
            r = boot_heap(cfg, HEAP_ROOMY)
            r = (r[0], 128 * 1024 - r[0]) if r else (-1, -1)
        out["esp32s3_heap_used_boot" + name] = r[0]
        out["esp32s3_heap_free_boot" + name] = r[1]
    return out


def provision(path, device_config):
    """What `ykt flash provision` writes into the ykt partition: the device keys (test
    master key, device 1) and the signed configuration (test content key)."""
    import json

    from depot import devsim
    from emu import s3world
    from validator.app import content
    from validator.storage.params import ParamStore
    from validator.sync import auth_host, wire_host

    # the content key the device holds: the back office's public key where signing is
    # Ed25519, the shared key before
    kc = getattr(devsim, "TEST_CONTENT_PUB", devsim.TEST_CONTENT_KEY)
    f = NorFlash(s3world.FLASH_SIZE, path=path, invert=True)
    ps = ParamStore(f, plan_boards.PLAN_ESP32S3["params"]).mount()
    ps.put(content.P_KEYS, auth_host.make_keys(1, auth_host.derive_device_key(devsim.TEST_MASTER,
                                                                              1), kc))
    ps.put(content.P_CONFIG, auth_host.make_content(devsim.TEST_CONTENT_KEY, wire_host.K_CONFIG,
                                                    1, json.dumps(device_config).encode()))
    f.close()


def run(ctx):
    out = _capacities()
    if os.environ.get("YKT_BENCH_NO_BOOT") != "1":
        out.update(_heap())
    return out
