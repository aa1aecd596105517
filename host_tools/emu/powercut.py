# emu.powercut: the storage power-cut campaigns (record log, blacklist, parameter store).
# SPDX-License-Identifier: MIT
#
# Each campaign runs a workload on an emulated NOR (emu.nor, 512-byte blocks), cuts power
# after every k-th program or erase ("drop") or tears it ("torn"), re-mounts and checks
# the store's invariants (storage/FORMAT.md). The tier-1 tests (tests/fw/test_powercut_*.py,
# test_storage_params.py) and `make bench` (host_tools/bench/bench_storage.py) run them.
# Common subset: the tests run them on MicroPython too.
import struct

from emu.nor import PowerCut
from validator.errors import StorageError
from validator.storage import record, record_host
from validator.storage.blacklist import OK, Blacklist
from validator.storage.blacklist_host import KIND_DELTA, KIND_FULL, OP_ADD, OP_REMOVE, make_body
from validator.storage.params import ParamStore
from validator.storage.recordlog import RecordLog

_BS = 512
# record log: 16 blocks x 3 records, the workload wraps the log 4 times
_RL_LOG = (0, 16 * _BS)
_RL_WM = (16 * _BS, 2 * _BS)
_RL_N = 210
_BL_REGION = (0, 16 * _BS)
_BL_PFX = (b"\x01\x10", b"\x01\x11", b"\x2b\x16")
_PM_REGION = (0, 4 * _BS)  # two 1 KiB halves: compaction every few puts


# -- record log (FORMAT.md §0.1, §3) ---------------------------------------------------


def _rl_fill(img, seq):
    record.reset(img)
    img[record_host.O_STATUS] = record_host.ST_NORMAL
    struct.pack_into(">I", img, record_host.O_AMOUNT, seq * 7)
    for i in range(10):
        img[record_host.O_SERIAL + i] = (seq * 3 + i) & 0xFF


def _rl_ok(buf, seq):
    return (
        record_host.crc_ok(buf)
        and struct.unpack_from(">II", buf, record_host.O_SEQ)[0] == seq
        and struct.unpack_from(">I", buf, record_host.O_AMOUNT)[0] == seq * 7
        and buf[record_host.O_SERIAL + 9] == (seq * 3 + 9) & 0xFF
    )


def _reset(fl):
    fl.revive()
    for b in range(fl.block_count):
        fl.erase(b)
    fl.reset_counters()


def _rl_workload(fl, st, img):
    lg = RecordLog(fl, _RL_LOG, _RL_WM).mount()
    lg.maintain()
    for q in range(1, _RL_N + 1):
        _rl_fill(img, q)
        st[1] = q  # pending append
        if lg.append(img) != q:
            raise AssertionError("seq")
        st[0] = q  # returned: committed
        st[1] = 0
        if q % 20 == 0:
            st[3] = q - 8  # pending ack
            lg.ack(q - 8)
            st[2] = q - 8
        lg.maintain()


def _rl_check(fl, st, img, b):
    fl.revive()
    lg = RecordLog(fl, _RL_LOG, _RL_WM).mount()
    done, pend, ack_done, ack_pend = st
    nxt = lg.next_seq
    if not (nxt == done + 1 or (pend and nxt == pend + 1)):
        return "next_seq %d after committed %d (pending %d)" % (nxt, done, pend)
    if lg.acked_seq not in (ack_done, ack_pend):
        return "watermark %d not in (%d, %d)" % (lg.acked_seq, ack_done, ack_pend)
    if lg.first_seq > ack_done + 1:
        return "unacknowledged records lost: first_seq %d, acked %d" % (lg.first_seq, ack_done)
    for q in range(lg.first_seq, nxt):
        if lg.read(q, b) != 128 or not _rl_ok(b, q):
            return "record %d not intact" % q
    if lg.corrupt:
        return "corrupt records reported after a clean cut"
    lg.maintain()
    _rl_fill(img, nxt)
    if lg.append(img) != nxt:
        return "append after reboot did not continue the sequence"
    lg2 = RecordLog(fl, _RL_LOG, _RL_WM).mount()
    if lg2.next_seq != nxt + 1 or lg2.read(nxt, b) != 128 or not _rl_ok(b, nxt):
        return "record appended after reboot lost"
    return None


def recordlog(fl, stride, modes=("drop", "torn")):
    """Record log campaign on fl (>= 18 blocks of 512 bytes) -> (cases, failures, ops)."""
    img = record_host.new_image()
    b = bytearray(128)
    st = [0, 0, 0, 0]
    _reset(fl)
    _rl_workload(fl, st, img)
    total = fl.programs + fl.erases
    cases = 0
    fails = []
    for mode in modes:
        k = 0 if mode == "drop" else stride // 2
        while k <= total:
            _reset(fl)
            for i in range(4):
                st[i] = 0
            fl.cut_after(k, mode)
            try:
                _rl_workload(fl, st, img)
            except PowerCut:
                pass
            except StorageError as e:
                fails.append((mode, k, "StorageError %s" % e))
            err = _rl_check(fl, st, img, b)
            cases += 1
            if err:
                fails.append((mode, k, err))
            k += stride
    return cases, fails, total


# -- blacklist (FORMAT.md §5) ---------------------------------------------------------


def _bl_keys(n, seed):
    out = []
    for i in range(n):
        v = i * 1000003 + (i * i * 7 + seed * 31) % 999983
        out.append(_BL_PFX[i * 3 // n] + struct.pack(">HI", v >> 32, v & 0xFFFFFFFF))
    return out


def _bl_answers(bl, probe):
    return [bl.contains_key(k) for k in probe]


def blacklist(fl, stride):
    """Blacklist campaign on fl (>= 16 blocks of 512 bytes) -> (cases, failures)."""
    old = _bl_keys(100, 1)
    v1 = (KIND_FULL, 1, make_body(KIND_FULL, old))
    adds = [k for k in _bl_keys(24, 5) if k not in old]
    rems = old[::7]
    ops = sorted([(OP_ADD, k) for k in adds] + [(OP_REMOVE, k) for k in rems], key=lambda t: t[1])
    delta = (KIND_DELTA, 2, make_body(KIND_DELTA, ops, base=1))
    new_d = [k for k in old if k not in rems] + adds
    full2 = _bl_keys(110, 9)
    full = (KIND_FULL, 2, make_body(KIND_FULL, full2))
    probe = old + adds + full2 + [b"\x01\x10" + b"\x00" * 6, b"\xff" * 8]
    want_old = [k in old for k in probe]
    cases = 0
    fails = []
    for name, blob, new in (("delta", delta, new_d), ("full", full, full2)):
        want_new = [k in new for k in probe]
        _reset(fl)
        Blacklist(fl, _BL_REGION).mount().apply(*v1)
        n0 = fl.programs + fl.erases
        if Blacklist(fl, _BL_REGION).mount().apply(*blob) != OK:
            fails.append((name, -1, "update refused"))
            continue
        total = fl.programs + fl.erases - n0
        for mode in ("drop", "torn"):
            k = 0
            while k <= total:
                _reset(fl)
                Blacklist(fl, _BL_REGION).mount().apply(*v1)
                fl.cut_after(k, mode)
                try:
                    Blacklist(fl, _BL_REGION).mount().apply(*blob)
                except PowerCut:
                    pass
                fl.revive()
                bl = Blacklist(fl, _BL_REGION).mount()
                got = _bl_answers(bl, probe)
                cases += 1
                if not ((got == want_old and bl.version == 1) or (
                    got == want_new and bl.version == 2
                )):
                    fails.append((name, mode, k, "mixed answers, version %d" % bl.version))
                elif bl.version == 1:  # the update did not land: sync pushes it again
                    r = bl.apply(*blob)
                    if r != OK:
                        fails.append((name, mode, k, "re-apply gave %d" % r))
                    elif _bl_answers(Blacklist(fl, _BL_REGION).mount(), probe) != want_new:
                        fails.append((name, mode, k, "re-applied list wrong"))
                k += stride
    return cases, fails


# -- parameter store (FORMAT.md §6) ---------------------------------------------------


def _pm_workload(ps, st):
    for i in range(12):
        name = ("a", "b", "c")[i % 3]
        val = bytes([i]) * (30 + 10 * (i % 4))
        st[name] = (st[name][0], val)  # (committed, pending)
        ps.put(name, val)
        st[name] = (val, None)


def params(fl, stride):
    """Parameter store campaign on fl (>= 4 blocks of 512 bytes) -> (cases, failures, ops)."""
    ParamStore(fl, _PM_REGION).mount()
    st = {"a": (None, None), "b": (None, None), "c": (None, None)}
    n0 = fl.programs + fl.erases
    _pm_workload(ParamStore(fl, _PM_REGION).mount(), st)
    total = fl.programs + fl.erases - n0
    cases = 0
    fails = []
    for mode in ("drop", "torn"):
        for k in range(0, total + 1, stride):
            fl.revive()
            for b in range(fl.block_count):
                fl.erase(b)
            ParamStore(fl, _PM_REGION).mount()
            st = {"a": (None, None), "b": (None, None), "c": (None, None)}
            fl.cut_after(k, mode)
            try:
                _pm_workload(ParamStore(fl, _PM_REGION).mount(), st)
            except PowerCut:
                pass
            fl.revive()
            ps = ParamStore(fl, _PM_REGION).mount()
            cases += 1
            for name in ("a", "b", "c"):
                got = ps.get(name)
                if not (got == st[name][0] or (st[name][1] is not None and got == st[name][1])):
                    fails.append((mode, k, name))
            ps.put("a", b"after")  # still writable after the cut
            if ParamStore(fl, _PM_REGION).mount().get("a") != b"after":
                fails.append((mode, k, "not writable"))
    return cases, fails, total
