"""Tier 2: the real board (boards/esp32s3_pn532/board.py, unchanged, through the machine
shim on the unix port, emu.s3world) boots to READY in the 128 KiB heap with the field
configurations a bus is given (host_tools/bench/bench_board.py: minimal, depot + Wi-Fi),
and leaves a stated budget free. The figures are byte counts of the "@READY ...
heap_used=N heap_free=M" line (after gc.collect()), never times.

A boot that dies (MemoryError in make_processor or the sync sessions) is a boot loop on
a bus: it fails here, not only in `make bench`."""

import os

import pytest

from bench import bench_board
from emu import s3world
from emu.nor import NorFlash
from validator.storage import plan_boards
from validator.storage.params import ParamStore

# the budget at READY: what boot may hold, and what must stay for a sync's push (a 6 KB
# fare table in one piece) and the boot transients of the day (tests/host/test_heap_budget)
MAX_USED_BOOT = 110 * 1024
MIN_FREE_BOOT = 16 * 1024


def _boots(path):
    f = NorFlash(s3world.FLASH_SIZE, path=path, invert=True)
    try:
        b = ParamStore(f, plan_boards.PLAN_ESP32S3["params"]).mount().get("boots")
    finally:
        f.close()
    return int.from_bytes(b, "big") if b is not None else 0


def _boot_twice(tmp_path, board_cfg):
    """Boot, cut the power, boot again on the same flash -> the two READY figures."""
    w = s3world.S3World(str(tmp_path / "bus"), bench_board._psams(), board_cfg=board_cfg)
    try:
        bench_board.provision(w.flash_path, bench_board.DEVICE_CONFIG)
        out = []
        for n in (1, 2):
            w.start(timeout=60)
            ev = [x for x in w.lines if x.startswith("@READY")][-1]
            kv = dict(x.split("=") for x in ev.split()[2:])
            out.append((int(kv["heap_used"]), int(kv["heap_free"])))
            w.power_cut()
            # the boot count the firmware wrote through esp32.Partition, read on the host
            # with emu.nor: the shim keeps the NorFlash image format
            assert _boots(w.flash_path) == n
    finally:
        w.stop()
    return out


def test_esp32s3_boot_when_board_json_is_minimal_it_is_ready_within_budget(tmp_path):
    # no depot, no Wi-Fi, no GPS stops: the least a bus runs with
    for used, free in _boot_twice(tmp_path, bench_board.BOARD_MINIMAL):
        assert used <= MAX_USED_BOOT and free >= MIN_FREE_BOOT, (used, free)


@pytest.mark.xfail(strict=True, reason="over budget: ~121 KB used, ~8 KB free at READY (bench "
                   "esp32s3_heap_used_boot_depot); the sync session's buffers (~6.8 KB) are "
                   "built at boot, before any depot link")
def test_esp32s3_boot_when_board_json_has_depot_and_wifi_it_is_ready_within_budget(tmp_path):
    # the configuration that stopped booting: depot over Wi-Fi, no "stops" table
    for used, free in _boot_twice(tmp_path, bench_board.BOARD_DEPOT):
        assert used <= MAX_USED_BOOT and free >= MIN_FREE_BOOT, (used, free)


def test_esp32s3_boot_when_board_json_holds_a_fleets_gps_stops_it_is_ready_within_budget(
        tmp_path):
    # 20 lines of 24 stops (a 10 KB board.json): read into two arrays, not a json tree of
    # ~75 KB that did not fit beside the firmware (MemoryError in make_board: a boot loop)
    for used, free in _boot_twice(tmp_path, bench_board.BOARD_FLEET_STOPS):
        assert used <= MAX_USED_BOOT and free >= MIN_FREE_BOOT, (used, free)


def test_esp32s3_boot_budget_is_a_count_of_the_128k_heap():
    assert s3world.HEAP == "128k" and os.path.basename(s3world.CONTENT[2][0]) == "board.py"
