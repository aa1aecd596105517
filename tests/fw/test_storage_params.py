# Tier 1: parameter store (FORMAT.md §6): atomic replace, delete, compaction, and a
# power-cut campaign over a put/replace/compaction workload (old or new value per name).
import os

from emu.nor import PowerCut
from fw import storage_dev
from validator.storage.params import ParamStore

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


def _workload(ps, st):
    for i in range(12):
        name = ("a", "b", "c")[i % 3]
        val = bytes([i]) * (30 + 10 * (i % 4))
        st[name] = (st[name][0], val)  # (committed, pending)
        ps.put(name, val)
        st[name] = (val, None)


def campaign(stride):
    """-> (cases, failures, total ops). Also used by host_tools/bench/bench_storage.py."""
    fl = _flash()
    ParamStore(fl, _REGION).mount()
    st = {"a": (None, None), "b": (None, None), "c": (None, None)}
    n0 = fl.programs + fl.erases
    _workload(ParamStore(fl, _REGION).mount(), st)
    total = fl.programs + fl.erases - n0
    cases = 0
    fails = []
    for mode in ("drop", "torn"):
        for k in range(0, total + 1, stride):
            fl.revive()
            for b in range(fl.block_count):
                fl.erase(b)
            ParamStore(fl, _REGION).mount()
            st = {"a": (None, None), "b": (None, None), "c": (None, None)}
            fl.cut_after(k, mode)
            try:
                _workload(ParamStore(fl, _REGION).mount(), st)
            except PowerCut:
                pass
            fl.revive()
            ps = ParamStore(fl, _REGION).mount()
            cases += 1
            for name in ("a", "b", "c"):
                got = ps.get(name)
                if not (got == st[name][0] or (st[name][1] is not None and got == st[name][1])):
                    fails.append((mode, k, name))
            ps.put("a", b"after")  # still writable after the cut
            if ParamStore(fl, _REGION).mount().get("a") != b"after":
                fails.append((mode, k, "not writable"))
    return cases, fails, total


def test_powercut_params_when_cut_anywhere_each_name_is_old_or_new():
    stride = 1 if (os.getenv("YKT_POWERCUT") or "") == "full" else 2
    cases, fails, total = campaign(stride)
    assert cases >= 20 and total > 20
    assert not fails, fails[:5]
