# Tier 1: power-cut campaign on blacklist updates (FORMAT.md §5): a delta (adds and
# removes) and a full replacement, cut at every program and erase ("drop") and torn
# ("torn"). Invariant after re-mount: every lookup answers from the old list or every
# lookup answers from the new one (never a mix), the version says which, and the update
# can be re-applied. Quick subset by default; every cut point when YKT_POWERCUT=full.
import os
import struct

from emu.nor import PowerCut
from fw import storage_dev
from validator.storage.blacklist import OK, Blacklist
from validator.storage.blacklist_host import (
    KIND_DELTA,
    KIND_FULL,
    OP_ADD,
    OP_REMOVE,
    make_body,
)

# Fixtures (a RAM flash image, firmware and the host container builders compiled from
# source) need more than the MCU's 128 KiB; the firmware's own budget is proven from ROMFS
# by tests/host/test_heap_budget.py.
MP_HEAP = "256k"

_BS = 512
_REGION = (0, 16 * _BS)
_PFX = (b"\x01\x10", b"\x01\x11", b"\x2b\x16")


def _keys(n, seed):
    out = []
    for i in range(n):
        v = i * 1000003 + (i * i * 7 + seed * 31) % 999983
        out.append(_PFX[i * 3 // n] + struct.pack(">HI", v >> 32, v & 0xFFFFFFFF))
    return out


def _reset(fl):
    fl.revive()
    for b in range(fl.block_count):
        fl.erase(b)
    fl.reset_counters()


def _answers(bl, probe):
    return [bl.contains_key(k) for k in probe]


def campaign(stride):
    """-> (cases, failures). Also used by host_tools/bench/bench_storage.py."""
    fl = storage_dev.dev()
    old = _keys(100, 1)
    v1 = (KIND_FULL, 1, make_body(KIND_FULL, old))
    adds = [k for k in _keys(24, 5) if k not in old]
    rems = old[::7]
    ops = sorted([(OP_ADD, k) for k in adds] + [(OP_REMOVE, k) for k in rems], key=lambda t: t[1])
    delta = (KIND_DELTA, 2, make_body(KIND_DELTA, ops, base=1))
    new_d = [k for k in old if k not in rems] + adds
    full2 = _keys(110, 9)
    full = (KIND_FULL, 2, make_body(KIND_FULL, full2))
    probe = old + adds + full2 + [b"\x01\x10" + b"\x00" * 6, b"\xff" * 8]
    want_old = [k in old for k in probe]
    cases = 0
    fails = []
    for name, blob, new in (("delta", delta, new_d), ("full", full, full2)):
        want_new = [k in new for k in probe]
        _reset(fl)
        Blacklist(fl, _REGION).mount().apply(*v1)
        n0 = fl.programs + fl.erases
        if Blacklist(fl, _REGION).mount().apply(*blob) != OK:
            fails.append((name, -1, "update refused"))
            continue
        total = fl.programs + fl.erases - n0
        for mode in ("drop", "torn"):
            k = 0
            while k <= total:
                _reset(fl)
                Blacklist(fl, _REGION).mount().apply(*v1)
                fl.cut_after(k, mode)
                try:
                    Blacklist(fl, _REGION).mount().apply(*blob)
                except PowerCut:
                    pass
                fl.revive()
                bl = Blacklist(fl, _REGION).mount()
                got = _answers(bl, probe)
                cases += 1
                if not ((got == want_old and bl.version == 1) or (
                    got == want_new and bl.version == 2
                )):
                    fails.append((name, mode, k, "mixed answers, version %d" % bl.version))
                elif bl.version == 1:  # the update did not land: sync pushes it again
                    r = bl.apply(*blob)
                    if r != OK:
                        fails.append((name, mode, k, "re-apply gave %d" % r))
                    elif _answers(Blacklist(fl, _REGION).mount(), probe) != want_new:
                        fails.append((name, mode, k, "re-applied list wrong"))
                k += stride
    return cases, fails


def test_powercut_blacklist_when_update_cut_anywhere_answers_old_or_new_only():
    full = (os.getenv("YKT_POWERCUT") or "") == "full"
    cases, fails = campaign(1 if full else 2)
    assert cases >= 24, cases
    assert not fails, fails[:5]
