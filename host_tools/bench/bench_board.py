"""Real-board benchmark (boards/esp32s3_pn532): the capacities of its flash plan
(validator.storage.plan_boards.PLAN_ESP32S3, FORMAT.md §1) computed by the firmware's own
RecordLog and Blacklist on a device of the plan's geometry, and the board's heap at boot
on the MicroPython unix port through the machine shim (emu.s3world, 128 KiB heap)."""

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


def _heap():
    """Boot the real board.py through the shim with a provisioned flash: heap at READY."""
    from emu import issuer, s3world, t0
    from emu.psam import Psam

    keys = issuer.load_master_keys()
    term = bytes.fromhex("000008010001")
    lterm = b"\x99" + term[1:]
    psams = [t0.T0Card(Psam(keys, terminal_no=term, serial=bytes(4) + term)),
             t0.T0Card(Psam(issuer.local_master_keys(keys), terminal_no=lterm,
                            serial=bytes(4) + lterm, app="local"))]
    d = tempfile.mkdtemp(prefix="bench-s3-")
    w = s3world.S3World(d, psams, board_cfg={"depot": "127.0.0.1:9", "retry_s": 60})
    try:
        _provision(w.flash_path)
        ev = w.start(timeout=60) and [x for x in w.lines if x.startswith("@READY")][-1]
        kv = dict(x.split("=") for x in ev.split()[2:])
        return {"esp32s3_heap_used_boot": int(kv["heap_used"]),
                "esp32s3_heap_free_boot": int(kv["heap_free"])}
    finally:
        w.stop()
        shutil.rmtree(d, ignore_errors=True)


def _provision(path):
    import json

    from depot.devsim import TEST_CONTENT_KEY, TEST_MASTER
    from emu import s3world
    from validator.app import content
    from validator.storage.params import ParamStore
    from validator.sync import auth_host, wire_host

    f = NorFlash(s3world.FLASH_SIZE, path=path, invert=True)
    ps = ParamStore(f, plan_boards.PLAN_ESP32S3["params"]).mount()
    ps.put(content.P_KEYS, auth_host.make_keys(1, auth_host.derive_device_key(TEST_MASTER, 1),
                                               TEST_CONTENT_KEY))
    cfg = json.dumps({"city": "2900", "line": 801}).encode()
    ps.put(content.P_CONFIG, auth_host.make_content(TEST_CONTENT_KEY, wire_host.K_CONFIG, 1, cfg))
    f.close()


def run(ctx):
    out = _capacities()
    if os.environ.get("YKT_BENCH_NO_BOOT") != "1":
        out.update(_heap())
    return out
