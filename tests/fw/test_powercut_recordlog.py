# Tier 1: power-cut campaign on the record log (FORMAT.md §0.1, §3): cut at every program
# and erase ("drop") and tear them ("torn": half a page / half a block persisted) over
# 210 appends with acks and block reuse. Quick subset by default; every cut point when
# YKT_POWERCUT=full. Invariants after re-mount: every record whose append returned reads
# back intact, no torn record is accepted, sequence numbers continue without gaps or
# repeats, the watermark is the old or the new value, nothing unacknowledged was erased.
import os
import struct

from emu.nor import PowerCut
from fw import storage_dev
from validator.errors import StorageError
from validator.storage import record, record_host
from validator.storage.recordlog import RecordLog

# Fixture: a RAM flash device beside the firmware compiled from source (see tests/mpsuite.py).
MP_HEAP = "256k"

_BS = 512  # small blocks keep the RAM image small for the 128 KiB MicroPython heap
_LOG = (0, 16 * _BS)  # 16 blocks x 3 records: the workload wraps the log 4 times
_WM = (16 * _BS, 2 * _BS)
_N = 210


def full_campaign():
    return (os.getenv("YKT_POWERCUT") or "") == "full"


def _fill(img, seq):
    record.reset(img)
    img[record_host.O_STATUS] = record_host.ST_NORMAL
    struct.pack_into(">I", img, record_host.O_AMOUNT, seq * 7)
    for i in range(10):
        img[record_host.O_SERIAL + i] = (seq * 3 + i) & 0xFF


def _ok(buf, seq):
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


def _workload(fl, st, img):
    lg = RecordLog(fl, _LOG, _WM).mount()
    lg.maintain()
    for q in range(1, _N + 1):
        _fill(img, q)
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


def _check(fl, st, img, b):
    fl.revive()
    lg = RecordLog(fl, _LOG, _WM).mount()
    done, pend, ack_done, ack_pend = st
    nxt = lg.next_seq
    if not (nxt == done + 1 or (pend and nxt == pend + 1)):
        return "next_seq %d after committed %d (pending %d)" % (nxt, done, pend)
    if lg.acked_seq not in (ack_done, ack_pend):
        return "watermark %d not in (%d, %d)" % (lg.acked_seq, ack_done, ack_pend)
    if lg.first_seq > ack_done + 1:
        return "unacknowledged records lost: first_seq %d, acked %d" % (lg.first_seq, ack_done)
    for q in range(lg.first_seq, nxt):
        if lg.read(q, b) != 128 or not _ok(b, q):
            return "record %d not intact" % q
    if lg.corrupt:
        return "corrupt records reported after a clean cut"
    lg.maintain()
    _fill(img, nxt)
    if lg.append(img) != nxt:
        return "append after reboot did not continue the sequence"
    lg2 = RecordLog(fl, _LOG, _WM).mount()
    if lg2.next_seq != nxt + 1 or lg2.read(nxt, b) != 128 or not _ok(b, nxt):
        return "record appended after reboot lost"
    return None


def campaign(stride, modes=("drop", "torn")):
    """-> (cases, failures list). Also used by host_tools/bench/bench_storage.py."""
    fl = storage_dev.dev()
    img = record_host.new_image()
    b = bytearray(128)
    st = [0, 0, 0, 0]
    _reset(fl)
    _workload(fl, st, img)
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
                _workload(fl, st, img)
            except PowerCut:
                pass
            except StorageError as e:
                fails.append((mode, k, "StorageError %s" % e))
            err = _check(fl, st, img, b)
            cases += 1
            if err:
                fails.append((mode, k, err))
            k += stride
    return cases, fails, total


def test_powercut_recordlog_when_cut_anywhere_keeps_every_committed_record():
    stride = 1 if full_campaign() else 37
    cases, fails, total = campaign(stride)
    assert total > 2 * _N
    assert cases >= 2 * (total // stride), cases
    assert not fails, fails[:5]
