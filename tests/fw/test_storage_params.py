# Tier 1: parameter store (FORMAT.md §6): atomic replace, delete, compaction, and a
# power-cut campaign over a put/replace/compaction workload (old or new value per name).
import os

from emu import powercut
from fw import storage_dev
from validator.storage.params import ParamStore

# Fixtures (a RAM flash device, and emu.powercut with every store it exercises, compiled
# from source) need more than the MCU's 128 KiB; the firmware's own budget is proven from
# ROMFS by tests/host/test_heap_budget.py.
MP_HEAP = "256k"

_BS = 512
_REGION = (0, 4 * _BS)  # two 1 KiB halves: compaction every few puts


def _flash():
    return storage_dev.dev()


def test_params_when_put_reads_back_after_remount():
    fl = _flash()
    ps = ParamStore(fl, _REGION).mount()
    ps.put("fares", b"\x01\x02\x03" * 20)
    ps.put("config", b"line=12")
    ps2 = ParamStore(fl, _REGION).mount()
    assert ps2.get("fares") == b"\x01\x02\x03" * 20 and ps2.get("config") == b"line=12"
    buf = bytearray(80)
    assert ps2.get("config", buf) == 7 and bytes(buf[:7]) == b"line=12"
    assert ps2.get("absent") is None and ps2.get("absent", buf) == -1
    assert ps2.names() == ["config", "fares"]


def test_params_when_replaced_many_times_compacts_and_keeps_newest():
    fl = _flash()
    ps = ParamStore(fl, _REGION).mount()
    ps.put("keep", b"K" * 100)
    for i in range(60):
        ps.put("cfg", bytes([i]) * 40)
    assert ps.compactions > 3
    ps.delete("keep")
    ps2 = ParamStore(fl, _REGION).mount()
    assert ps2.get("cfg") == bytes([59]) * 40 and ps2.get("keep") is None


def test_powercut_params_when_cut_anywhere_each_name_is_old_or_new():
    stride = 1 if (os.getenv("YKT_POWERCUT") or "") == "full" else 2
    cases, fails, total = powercut.params(_flash(), stride)
    assert cases >= 20 and total > 20
    assert not fails, fails[:5]
