"""Tier 2: the firmware's heap budget. The real firmware runs from its ROMFS image (bytecode
in place, outside the heap, as frozen/ROMFS firmware on the MCU) with a PSAM and sync
configured, like `ykt sim` boots a validator; "S" on stdin answers "@STATE ... heap_used=N
heap_free=M" (after gc.collect()). Figures go to build/heap/figures.json and into
`make bench` (host_tools/bench/bench_heap.py).

Also guarded here: host-only modules (validator.*_host, util.errors_text, sync.ticks) stay
out of the boot path, and the public names they keep for host callers equal the firmware's
private consts (const() names beginning with _ take no heap on the device)."""

import ast
import json
import os

import pytest

from bench import bench_heap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW = os.path.join(ROOT, "firmware", "validator")
FIGURES = os.path.join(ROOT, "build", "heap", "figures.json")

# firmware module -> the host module that serves its private consts under public names
HOST_ONLY = ("_host", "errors_text", "validator.sync.ticks")


def _record(**figures):
    os.makedirs(os.path.dirname(FIGURES), exist_ok=True)
    old = {}
    if os.path.exists(FIGURES):
        with open(FIGURES) as f:
            old = json.load(f)
    old.update(figures)
    with open(FIGURES, "w") as f:
        json.dump(old, f, indent=1, sort_keys=True)


def _module_level_defs(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]


def test_heap_budget_when_firmware_modules_load_none_serves_host_names_host_modules_do():
    # No firmware module carries a module __getattr__ (it cost a function's heap on the
    # device, and a package's one is consulted before its submodules import): host callers
    # import the public names from the *_host modules / storage.plan_boards directly.
    checked = 0
    for dp, _dn, fns in os.walk(FW):
        for fn in fns:
            if fn.endswith(".py"):
                path = os.path.join(dp, fn)
                assert "__getattr__" not in _module_level_defs(path), path
                checked += 1
    assert checked >= 40

    from validator.rules import fares, fares_host, table, table_host
    from validator.storage import blacklist, blacklist_host, plan, plan_boards, record, record_host
    from validator.sync import auth, auth_host, wire, wire_host

    assert table_host.T_ACTIVE == 0 and table_host.T_BAD_FORMAT == -2 and table_host.LINE_LEN == 12
    assert fares_host.K_NO_ENTRY == 7 and wire_host.K_WHITELIST == 4 and auth_host.KEYS_LEN == 76
    assert len(auth_host.make_keys(1, b"d" * 32, b"c" * 32)) == auth_host.KEYS_LEN
    assert record_host.REC_SIZE == 128 and blacklist_host.KIND_DELTA == 2
    assert plan_boards.PLAN_ESP32S3_16M["log"][1] > 0
    for mod, name in ((table, "T_ACTIVE"), (fares, "K_NO_ENTRY"), (wire, "K_WHITELIST"),
                      (auth, "make_keys"), (record, "REC_SIZE"), (blacklist, "KIND_DELTA"),
                      (plan, "PLAN_ESP32S3_16M")):
        with pytest.raises(AttributeError):
            getattr(mod, name)


def test_heap_budget_when_boot_modules_import_from_romfs_host_only_modules_stay_out(tmp_path):
    import subprocess

    from emu import romfs

    script = tmp_path / "imports.py"
    script.write_text(bench_heap._IMPORT_SCRIPT % (bench_heap.BOOT_MODULES,)
                      + "print('MODS', ' '.join(sorted(sys.modules)))\n")
    env = dict(os.environ, YKT_BOARD_CONFIG="/dev/null")
    r = subprocess.run(romfs.command(romfs.build(), "1m", str(script)), capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=60)
    mods = [line for line in r.stdout.splitlines() if line.startswith("MODS")]
    assert mods, r.stdout + r.stderr
    loaded = mods[0].split()[1:]
    assert "validator.app.main" in loaded and "validator.sync.session" in loaded
    assert [m for m in loaded if any(h in m for h in HOST_ONLY)] == []
    used = int(r.stdout.split("IMPORT_HEAP ")[1].split()[0])
    _record(import_heap_bytes_1m=used)


def test_heap_budget_when_a_day_runs_at_mcu_heap_it_passes_and_does_not_grow(tmp_path):
    """Boot, morning sync (fare table push, clock), taps, evening pull in the MCU's heap
    (a literal -X heapsize=128k): every tap paid, both syncs done (a MemoryError anywhere on
    the way fails a tap or a sync), and what the day adds to the heap stays small (no
    per-tap or per-sync growth)."""
    from emu.world import HEAP

    w = bench_heap.provisioned_world(str(tmp_path), HEAP)
    try:
        w.start()
        boot = bench_heap.heap_state(w)
        reasons = bench_heap.day(w, str(tmp_path), taps=8)
        after = bench_heap.heap_state(w)
    finally:
        w.stop()
    assert reasons == [0] * 8 and after["taps"] == 8 and after["faults"] == 0
    _record(day_heap_used_bytes=after["heap_used"])
    assert after["heap_used"] - boot["heap_used"] < 8192


# What must stay free after boot in the literal 128k heap: a day needs ~108 KiB in all
# (bench day_min_heap_kib), i.e. sync and boot transients need ~16 KB above the boot figure.
MIN_FREE_AFTER_BOOT = 20 * 1024
# ... and in one piece, mostly (bench heap_max_block_after_boot_bytes: ~21 KB): a pushed
# fare table or the sync's inflater needs one contiguous block.
MIN_BLOCK_AFTER_BOOT = 12 * 1024


def test_heap_budget_when_firmware_boots_at_mcu_heap_enough_stays_free(tmp_path):
    from emu.world import HEAP

    w = bench_heap.provisioned_world(str(tmp_path), HEAP)
    try:
        w.start()
        st = bench_heap.heap_state(w)
    finally:
        w.stop()
    _record(boot_heap_used_bytes=st["heap_used"], heap_free_after_boot_bytes=st["heap_free"])
    assert HEAP == "128k"
    assert st["faults"] == 0
    assert st["heap_free"] >= MIN_FREE_AFTER_BOOT, st
    assert st["heap_max_block"] >= MIN_BLOCK_AFTER_BOOT, st


def test_heap_budget_when_a_100k_blacklist_is_pushed_at_mcu_heap_it_streams_and_locks(tmp_path):
    """A national-size list through the real sync stack into the 128k validator: 100 000
    keys (an 800 KB container, more than six times the heap) must stream to flash -- never
    be buffered -- and take effect: a listed card tapped afterwards is refused as
    blacklisted, and the heap after the push is where boot left it (give or take a page)."""
    import random

    from depot.devsim import TEST_CONTENT_KEY
    from emu import farec, issuer
    from emu.world import HEAP
    from validator import errors
    from validator.storage import blacklist, blacklist_host
    from validator.sync import auth_host, wire_host

    listed = "03100000000000000077"
    k = bytearray(8)
    blacklist.key_of(bytes.fromhex(listed), k)
    keys = {bytes(k)}
    rnd = random.Random(1)
    while len(keys) < 100_000:  # one issuer's serial range: realistic key prefixes
        blacklist.key_of(bytes.fromhex("03100%015d" % rnd.randrange(10**15)), k)
        keys.add(bytes(k))
    body = blacklist_host.make_body(blacklist_host.KIND_FULL, sorted(keys))
    blob = auth_host.make_content(TEST_CONTENT_KEY, wire_host.K_BLACKLIST_FULL, 1, body)
    assert len(blob) > 6 * 128 * 1024

    w = bench_heap.provisioned_world(str(tmp_path), HEAP)
    try:
        w.start()
        boot = bench_heap.heap_state(w)
        t0 = farec.parse_time(bench_heap.DAY + "T07:00:00")
        r = bench_heap.sync(w, str(tmp_path / "depot.sqlite"), clock_secs=t0, pull=False,
                            pushes=[bench_heap.fares_push(),
                                    (wire_host.K_BLACKLIST_FULL, "blacklist", blob)])
        after = bench_heap.heap_state(w)
        w.send("P 12 1 0 0")
        w.wait("POS")
        w.set_time(t0 + 600)
        card = issuer.issue_card(w.issuer_keys, serial=listed, balance=5000, seed=3)
        reason = w.tap(card)[0]
    finally:
        w.stop()
    assert [p["kind"] for p in r["pushed"]] == ["fares", "blacklist"]
    assert reason == errors.R_BLACKLISTED
    assert after["faults"] == 0 and after["heap_used"] - boot["heap_used"] < 4096


def test_heap_budget_when_6kb_fare_tables_pushed_after_a_day_at_mcu_heap_both_install(tmp_path):
    """The active fare table lives in RAM and replacing it needs the old and the new one at
    once: after a whole day at 128k (heap no longer fresh), two ~6 KB tables in a row
    (240 flat lines + 2 section lines of 40 stops) must still install, and taps go on."""
    import json

    from depot.devsim import TEST_CONTENT_KEY
    from emu import farec, issuer
    from emu.world import HEAP
    from validator.sync import auth_host, wire_host

    def table(version):
        with open(bench_heap.FARE_TABLE) as f:
            d = json.load(f)
        d["version"] = version
        d["lines"] += [{"id": 1000 + i, "mode": "bus", "fare": 200} for i in range(240)]
        d["lines"] += [{"id": 5000 + j, "mode": "bus", "stops": 40,
                        "matrix": [[200 + 10 * k for k in range(40 - a)] for a in range(40)]}
                       for j in range(2)]
        blob = farec.container(farec.compile_table(d),
                               sign=auth_host.content_signer(TEST_CONTENT_KEY))
        return (wire_host.K_FARES, "fares", blob)

    w = bench_heap.provisioned_world(str(tmp_path), HEAP)
    db = str(tmp_path / "depot.sqlite")
    try:
        w.start()
        bench_heap.day(w, str(tmp_path), taps=8)
        v2, v3 = table(2), table(3)
        assert len(v2[2]) > 6000
        r2 = bench_heap.sync(w, db, pushes=[v2], pull=False)
        r3 = bench_heap.sync(w, db, pushes=[v3], pull=False)
        w.set_time(farec.parse_time(bench_heap.DAY + "T12:00:00"))
        card = issuer.issue_card(w.issuer_keys, serial="03100000000000000099", balance=5000,
                                 seed=9)
        reason = w.tap(card)[0]
        st = bench_heap.heap_state(w)
    finally:
        w.stop()
    assert [p["version"] for p in r2["pushed"] + r3["pushed"]] == [2, 3]
    assert reason == 0 and st["faults"] == 0


def test_heap_budget_when_6kb_fare_tables_pushed_again_and_again_after_a_day_each_installs(
        tmp_path):
    """Table after table (v2..v5, ~6.5 KB each, one sync each) after a day at 128k: each
    new buffer settles in the block the table before last left, so every one installs --
    as long as nothing else takes that block between the pushes (sync.xfer keeps its room
    held through PUSH_END: taken back after the handler it landed there, and v4 was
    refused)."""
    import json

    from depot.devsim import TEST_CONTENT_KEY
    from emu import farec, issuer
    from emu.world import HEAP
    from validator.sync import auth_host, wire_host

    with open(bench_heap.FARE_TABLE) as f:
        desc = json.load(f)
    desc["lines"] += [{"id": 1000 + i, "mode": "bus", "fare": 200} for i in range(240)]
    desc["lines"] += [{"id": 5000 + j, "mode": "bus", "stops": 40,
                       "matrix": [[200 + 10 * k for k in range(40 - a)] for a in range(40)]}
                      for j in range(2)]

    w = bench_heap.provisioned_world(str(tmp_path), HEAP)
    db = str(tmp_path / "depot.sqlite")
    got = []
    try:
        w.start()
        bench_heap.day(w, str(tmp_path), taps=8)
        for v in (2, 3, 4, 5):
            desc["version"] = v
            blob = farec.container(farec.compile_table(desc),
                                   sign=auth_host.content_signer(TEST_CONTENT_KEY))
            assert len(blob) > 6000
            r = bench_heap.sync(w, db, pushes=[(wire_host.K_FARES, "fares", blob)], pull=False)
            got += [p["version"] for p in r["pushed"]]
        w.set_time(farec.parse_time(bench_heap.DAY + "T12:00:00"))
        card = issuer.issue_card(w.issuer_keys, serial="03100000000000000098", balance=5000,
                                 seed=8)
        reason = w.tap(card)[0]
        st = bench_heap.heap_state(w)
    finally:
        w.stop()
    assert got == [2, 3, 4, 5]
    assert reason == 0 and st["faults"] == 0
