# Tier 1: the record log, watermark and tear store on the emulated NOR (FORMAT.md §2-§4).
import struct

import fwtest
from fw import storage_dev
from fwtest import raises
from validator.errors import StorageError
from validator.storage import record, record_host
from validator.storage.recordlog import RecordLog, TearStore

# Fixtures (a RAM flash device, firmware compiled from source) need more than the MCU's
# 128 KiB; the firmware's own budget is proven from ROMFS by tests/host/test_heap*.py.
MP_HEAP = "256k"

# small erase blocks keep the RAM image small enough for the 128 KiB MicroPython heap:
# 8 log blocks x 3 records, watermark 2 x 512 B, tear store 2 x 1 KiB (3 entries a half)
_BS = 512
_LOG = (0, 8 * _BS)
_WM = (8 * _BS, 2 * _BS)
_TEAR = (10 * _BS, 4 * _BS)
_SPB = 3  # records per block


def _flash():
    return storage_dev.dev()


def _log(fl):
    lg = RecordLog(fl, _LOG, _WM).mount()
    lg.maintain()
    return lg


def _fill(img, seq):
    record.reset(img)
    img[record_host.O_STATUS] = record_host.ST_NORMAL
    img[record_host.O_TXN_TYPE] = 0x09
    struct.pack_into(">I", img, record_host.O_AMOUNT, seq * 7)
    for i in range(10):
        img[record_host.O_SERIAL + i] = (seq + i) & 0xFF


def _ok(buf, seq):
    d = record_host.decode(buf)
    return record_host.crc_ok(buf) and d["seq"] == seq and d["amount"] == seq * 7 and buf[
        record_host.O_SERIAL + 3
    ] == (seq + 3) & 0xFF


def test_recordlog_when_appended_reads_back_after_remount():
    fl = _flash()
    lg = _log(fl)
    img = record_host.new_image()
    for q in range(1, 21):
        _fill(img, q)
        assert lg.append(img) == q
        lg.maintain()
    lg2 = RecordLog(fl, _LOG, _WM).mount()
    assert lg2.first_seq == 1 and lg2.next_seq == 21 and lg2.acked_seq == 0
    b = bytearray(128)
    for q in range(1, 21):
        assert lg2.read(q, b) == 128 and _ok(b, q)
    assert lg2.read(21, b) == 0 and lg2.read(0, b) == 0


def test_recordlog_when_fresh_needs_maintain_before_append():
    fl = _flash()
    lg = RecordLog(fl, _LOG, _WM).mount()
    assert lg.full  # nothing prepared: no erase happens inside append
    raises(StorageError, lg.append, record_host.new_image())
    lg.maintain()
    assert not lg.full and lg.append(record_host.new_image()) == 1


def test_recordlog_when_full_of_unacked_refuses_and_never_overwrites():
    fl = _flash()
    lg = _log(fl)
    img = record_host.new_image()
    n = 0
    while not lg.full:
        n += 1
        _fill(img, n)
        lg.append(img)
        lg.maintain()
    assert n == lg.capacity == 8 * _SPB
    raises(StorageError, lg.append, img)
    b = bytearray(128)
    assert lg.read(1, b) == 128 and _ok(b, 1)
    lg.ack(8)  # depot took 1..8: blocks 0 and 1 (1..6) become reusable, not 2 (7..9)
    lg.maintain()
    assert not lg.full
    _fill(img, n + 1)
    assert lg.append(img) == n + 1
    assert lg.first_seq == 7
    lg2 = RecordLog(fl, _LOG, _WM).mount()
    assert lg2.first_seq == 7 and lg2.next_seq == n + 2 and lg2.acked_seq == 8
    for q in range(7, n + 2):
        assert lg2.read(q, b) == 128 and _ok(b, q)


def test_recordlog_when_wrapping_many_laps_keeps_sequence():
    fl = _flash()
    lg = _log(fl)
    img = record_host.new_image()
    b = bytearray(128)
    for q in range(1, 701):
        _fill(img, q)
        assert lg.append(img) == q
        if q % 5 == 0:
            lg.ack(q - 2)
        lg.maintain()
        if q % 97 == 0:
            lg = RecordLog(fl, _LOG, _WM).mount()
            assert lg.next_seq == q + 1 and lg.first_seq <= lg.acked_seq + 1
            lg.maintain()
    assert lg.read(700, b) == 128 and _ok(b, 700)
    for q in range(lg.first_seq, 701):
        assert lg.read(q, b) == 128 and _ok(b, q)


def test_recordlog_when_bit_flipped_reports_and_later_records_stay_readable():
    fl = _flash()
    lg = _log(fl)
    img = record_host.new_image()
    for q in range(1, 21):
        _fill(img, q)
        lg.append(img)
        lg.maintain()
    # record 10 is block 3 slot 1; record 20 (the newest) is block 6 slot 2
    fl.flip_bit(3 * _BS + 128 + 50, 3)
    fl.flip_bit(6 * _BS + 2 * 128 + 70, 0)
    lg2 = RecordLog(fl, _LOG, _WM).mount()
    assert lg2.next_seq == 21  # the damaged newest record still holds its number
    b = bytearray(128)
    assert lg2.read(10, b) == 0 and lg2.corrupt >= 1
    for q in range(11, 20):
        assert lg2.read(q, b) == 128 and _ok(b, q)
    assert lg2.read(20, b) == 0
    assert lg2.read(9, b) == 128 and _ok(b, 9)
    lg2.maintain()
    assert lg2.append(img) == 21


def test_recordlog_when_block_header_bit_flipped_still_finds_the_end():
    fl = _flash()
    lg = _log(fl)
    img = record_host.new_image()
    for q in range(1, 18):
        _fill(img, q)
        lg.append(img)
        lg.maintain()
    for blk in (0, 2, 4, 5):  # oldest, middle, the one before current, current
        fl.flip_bit(blk * _BS + 9, blk % 8)
    lg2 = RecordLog(fl, _LOG, _WM).mount()
    assert lg2.next_seq == 18 and lg2.first_seq == 1 and lg2.header_repairs >= 1
    b = bytearray(128)
    for q in range(1, 18):
        assert lg2.read(q, b) == 128 and _ok(b, q)
    lg2.maintain()
    assert lg2.append(img) == 18


def test_recordlog_when_mounted_reads_a_bounded_number_of_slots():
    fl = _flash()
    lg = _log(fl)
    img = record_host.new_image()
    for q in range(1, 20):
        _fill(img, q)
        lg.append(img)
        lg.maintain()
    lg2 = RecordLog(fl, _LOG, _WM).mount()
    # FORMAT.md §3: 2 + log2(B) headers + 3 + 3 + 1 + 2 + 1 slots + watermark (2 + 6 + few)
    assert lg2.reads_at_mount <= 2 + 3 + 10 + 10, lg2.reads_at_mount


def test_recordlog_when_append_runs_heap_locked_allocates_nothing():
    fwtest.need_micropython()
    fl = _flash()
    lg = _log(fl)
    img = record_host.new_image()
    _fill(img, 1)
    lg.append(img)

    def tap():
        lg.append(img)

    assert fwtest.heap_locked(tap) == 0
    lg.maintain()
    assert fwtest.heap_locked(tap) == 0


def test_tearstore_when_saved_survives_remount_until_cleared():
    fl = _flash()
    ts = TearStore(fl, _TEAR).mount()
    buf = bytearray(TearStore.SIZE)
    assert not ts.load(buf)
    ctx = bytearray(range(200))
    ts.save(ctx)
    ts2 = TearStore(fl, _TEAR).mount()
    assert ts2.load(buf) and bytes(buf[:200]) == bytes(ctx)
    ts2.clear()
    assert not TearStore(fl, _TEAR).mount().load(buf)


def test_tearstore_when_maintained_between_taps_never_erases_on_save():
    fl = _flash()
    ts = TearStore(fl, _TEAR).mount()
    buf = bytearray(TearStore.SIZE)
    ctx = bytearray(64)
    for i in range(100):  # 3 entries per 1 KiB half: many switches
        ctx[0] = i
        e0 = fl.erases
        ts.save(ctx)
        assert fl.erases == e0
        if i % 3:
            ts.clear()
        ts.maintain()
    assert ts.inline_switches == 0
    ts2 = TearStore(fl, _TEAR).mount()
    assert ts2.load(buf) == (99 % 3 == 0) and (99 % 3 or buf[0] == 99)


def test_tearstore_when_save_runs_heap_locked_allocates_nothing():
    fwtest.need_micropython()
    fl = _flash()
    ts = TearStore(fl, _TEAR).mount()
    ctx = bytearray(128)
    ts.save(ctx)

    def tap():
        ts.save(ctx)
        ts.clear()

    assert fwtest.heap_locked(tap) == 0
