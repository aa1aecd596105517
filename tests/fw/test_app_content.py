# Tier 1: app.content.Target, where pushed content lands. sync.auth unwraps and verifies
# every container once; the stores get only the body; one rule (sync.target) refuses a
# rollback of every kind (sync/PROTOCOL.md §4.3, §5).
# SPDX-License-Identifier: MIT
from emu import farec
from fw import storage_dev
from fw.sync_fixtures import DEVICE_ID, KC, KP, FakeClock, MemLog
from validator.app import content
from validator.rules import table
from validator.storage.blacklist import Blacklist
from validator.storage.blacklist_host import KIND_DELTA, KIND_FULL, OP_ADD, make_body
from validator.storage.params import ParamStore
from validator.sync import auth_host, wire_host

# Fixtures (a RAM flash device, firmware compiled from source) need more than the MCU's
# 128 KiB; the firmware's own budget is proven from ROMFS by tests/host/test_heap_budget.py.
MP_HEAP = "256k"

_BS = storage_dev.BS
_PARAMS = (0, 8 * _BS)
_BLACKLIST = (8 * _BS, 10 * _BS)
_KEYS = [b"\x01\x10" + bytes([0, 0, 0, 0, i, 7]) for i in range(1, 40, 3)]


def _same_flash():
    return storage_dev._DEV[0]  # the device as it is, not erased: what a reboot finds


def _target(fl, config_version=0):
    ps = ParamStore(fl, _PARAMS).mount()
    bl = Blacklist(fl, _BLACKLIST).mount()
    ts = table.FareTables()
    got = []
    t = content.Target(MemLog(), DEVICE_ID, 0x000100, KP, FakeClock(), bl, ps, ts,
                       on_config=got.append, config_version=config_version)
    return t, bl, ps, ts, got


def _push(t, kind, blob, chunk=100):
    """What sync.xfer does with PUSH_BEGIN / PUSH_DATA / PUSH_END: -> (code, version)."""
    code = t.push_begin(kind, len(blob))
    if code != wire_host.OK:
        return code, 0
    for o in range(0, len(blob), chunk):
        code = t.push_write(o, memoryview(blob)[o : o + chunk])
        if code != wire_host.OK:
            t.push_abort()
            return code, 0
    r = t.push_end()
    while r is None:  # the signature check, one slice per sync step
        r = t.push_poll()
    return r


def _bl(version, keys=_KEYS, kc=KC):
    return auth_host.make_content(kc, wire_host.K_BLACKLIST_FULL, version,
                                  make_body(KIND_FULL, keys))


def _fares(version):
    desc = {"version": version, "city": "2900", "acquirer": "02002900FFFFFFFF",
            "lines": [{"id": 12, "fare": 100 + version}]}
    return auth_host.make_content(KC, wire_host.K_FARES, version, farec.compile_table(desc))


def _config(version, line):
    return auth_host.make_content(KC, wire_host.K_CONFIG, version,
                                  b'{"city": "2900", "line": %d}' % line)


def test_content_when_each_kind_rolled_back_the_one_rule_refuses():
    t, bl, ps, ts, got = _target(storage_dev.dev())
    assert _push(t, wire_host.K_BLACKLIST_FULL, _bl(5)) == (wire_host.OK, 5)
    assert _push(t, wire_host.K_FARES, _fares(3)) == (wire_host.OK, 3)
    assert _push(t, wire_host.K_CONFIG, _config(2, 12)) == (wire_host.OK, 2)
    assert t.versions == [5, 3, 0, 2, 0, 0] and len(got) == 1  # + K_KEY, K_CLOCK
    delta = auth_host.make_content(KC, wire_host.K_BLACKLIST_DELTA, 5,
                                   make_body(KIND_DELTA, [(OP_ADD, b"\x02" * 8)], base=5))
    for kind, blob in ((wire_host.K_BLACKLIST_FULL, _bl(5, _KEYS[:2])),
                       (wire_host.K_BLACKLIST_FULL, _bl(4, _KEYS[:2])),
                       (wire_host.K_BLACKLIST_DELTA, delta),
                       (wire_host.K_FARES, _fares(3)), (wire_host.K_FARES, _fares(2)),
                       (wire_host.K_CONFIG, _config(2, 99)), (wire_host.K_CONFIG, _config(1, 99))):
        code, _ = _push(t, kind, blob)
        assert code == wire_host.E_VERSION, (kind, code)
    assert t.versions == [5, 3, 0, 2, 0, 0] and len(got) == 1  # + K_KEY, K_CLOCK
    assert bl.version == 5 and bl.entries == len(_KEYS) and ts.current(0).version == 3
    assert ps.get(content.P_FARES) == _fares(3) and ps.get(content.P_CONFIG) == _config(2, 12)
    # after a reboot the installed versions come from what the stores hold
    v, body = content.stored(ps, KP, content.P_CONFIG, wire_host.K_CONFIG)
    assert v == 2 and content.parse_config(body)["line"] == 12
    t2 = _target(_same_flash(), config_version=v)[0]
    assert t2.versions[3] == 2
    assert _push(t2, wire_host.K_CONFIG, _config(1, 99))[0] == wire_host.E_VERSION


def test_content_when_blacklist_body_tampered_never_reaches_the_list():
    t, bl, ps, ts, got = _target(storage_dev.dev())
    assert _push(t, wire_host.K_BLACKLIST_FULL, _bl(1))[0] == wire_host.OK
    other = [b"\x2b\x16" + bytes([0, 0, 0, 0, i, 9]) for i in range(1, 60, 2)]
    good = _bl(2, other)
    for at in (20, len(good) - 40, len(good) - 1):  # a key byte, the last key, the tag
        bad = bytearray(good)
        bad[at] ^= 0x01
        assert _push(t, wire_host.K_BLACKLIST_FULL, bytes(bad)) == (wire_host.E_CONTENT, 0)
    bad = bytearray(good)
    bad[4] = wire_host.K_BLACKLIST_DELTA  # the signed kind
    assert _push(t, wire_host.K_BLACKLIST_FULL, bytes(bad))[0] == wire_host.E_CONTENT
    forged = _bl(3, other, kc=b"\x66" * 32)
    assert _push(t, wire_host.K_BLACKLIST_FULL, forged)[0] == wire_host.E_CONTENT
    for b in (bl, Blacklist(_same_flash(), _BLACKLIST).mount()):
        assert b.version == 1 and b.entries == len(_KEYS)
        assert all(b.contains_key(k) for k in _KEYS)
        assert not any(b.contains_key(k) for k in other)
    assert t.versions[0] == 1
    assert _push(t, wire_host.K_BLACKLIST_FULL, good) == (wire_host.OK, 2)
    assert bl.contains_key(other[0]) and not bl.contains_key(_KEYS[0])


def test_content_when_fare_table_pushed_table_holds_a_view_of_the_body():
    t, bl, ps, ts, got = _target(storage_dev.dev())
    blob = _fares(4)
    assert _push(t, wire_host.K_FARES, blob) == (wire_host.OK, 4)
    tb = ts.current(0)
    assert isinstance(tb.blob, memoryview) and bytes(tb.blob) == blob[14:-64]
    bad = bytearray(_fares(5))
    bad[30] ^= 1
    assert _push(t, wire_host.K_FARES, bytes(bad)) == (wire_host.E_CONTENT, 0)
    assert ts.current(0).version == 4 and ps.get(content.P_FARES) == blob


def test_content_when_stored_container_forged_or_of_another_kind_boot_ignores_it():
    fl = storage_dev.dev()
    ps = ParamStore(fl, _PARAMS).mount()
    ps.put(content.P_FARES, _config(3, 1))  # genuine, but not a fare table
    assert content.stored(ps, KP, content.P_FARES, wire_host.K_FARES) is None
    bad = bytearray(_fares(3))
    bad[-1] ^= 1
    ps.put(content.P_FARES, bytes(bad))
    assert content.stored(ps, KP, content.P_FARES, wire_host.K_FARES) is None
    assert content.stored(ps, None, content.P_FARES, wire_host.K_FARES) is None  # no key
    ps.put(content.P_FARES, _fares(3))
    v, body = content.stored(ps, KP, content.P_FARES, wire_host.K_FARES)
    assert v == 3 and table.FareTables().offer(body, 0, v) == 0


def _log_with_ride(at):
    """A log whose newest record is a ride at device time `at`."""
    from validator.storage import record_host
    from validator.util import bcdtime

    log = MemLog(rec_size=record_host.REC_SIZE)
    img = record_host.new_image()
    bcdtime.pack_datetime(at, img, record_host.O_DATETIME)
    log.append(img)
    return log


def test_content_when_set_clock_goes_before_the_newest_record_it_is_refused():
    ride = 827800000  # 2026-03-27
    faults = []
    clk = FakeClock()
    t = content.Target(_log_with_ride(ride), DEVICE_ID, 0x000100, KP, clk,
                       Blacklist(storage_dev.dev(), _BLACKLIST).mount(),
                       ParamStore(storage_dev._DEV[0], _PARAMS).mount(), table.FareTables(),
                       faults=faults)
    before = clk.secs
    assert t.set_clock(ride - 3600) == wire_host.E_RANGE and clk.secs == before
    assert t.set_clock(700000000) == wire_host.E_RANGE  # 2022: before the window
    assert t.set_clock(ride + 401 * 86400) == wire_host.E_RANGE  # a jump past the window
    assert len(faults) == 3 and "refused" in faults[0]
    assert t.set_clock(ride + 60) == wire_host.OK and clk.secs == ride + 60
    # a device with no record yet takes any time inside the window
    assert content.clock_ok(ride + 3000 * 86400, 0) and not content.clock_ok(0, 0)


def test_content_when_faults_overflow_the_oldest_goes():
    faults = []
    for i in range(40):
        content.fault(faults, "f%d" % i)
    assert len(faults) == 16 and faults[0] == "f24" and faults[-1] == "f39"


def _whitelist(version, entries):
    body = b"".join(bytes([o >> 8, o & 255, c >> 8, c & 255]) for o, c in entries)
    return auth_host.make_content(KC, wire_host.K_WHITELIST, version, body)


def test_content_when_whitelist_pushed_it_decides_who_rides_over_the_tables_own_list():
    t, bl, ps, ts, got = _target(storage_dev.dev())
    desc = {"version": 1, "city": "2900", "acquirer": "02002900FFFFFFFF",
            "lines": [{"id": 12, "fare": 200}], "accept": [{"org": "0200", "city": "1000"}]}
    assert _push(t, wire_host.K_FARES, auth_host.make_content(
        KC, wire_host.K_FARES, 1, farec.compile_table(desc))) == (wire_host.OK, 1)
    tb = ts.current(0)
    assert tb.accepted(0x0200, 0x1000) and not tb.accepted(0x0200, 0x4310)
    # the clearing centre's list: Beijing out, Changsha in (and any Shanghai-org card)
    wl = _whitelist(3, [(0x0200, 0x4310), (0x0300, 0xFFFF)])
    assert _push(t, wire_host.K_WHITELIST, wl) == (wire_host.OK, 3)
    tb = ts.current(0)
    assert tb.accepted(0x0200, 0x4310) and tb.accepted(0x0300, 0x1234)
    assert not tb.accepted(0x0200, 0x1000)
    assert t.versions[2] == 3 and ps.get(content.P_WHITELIST) == wl
    # a later fare table gets the whitelist too
    desc["version"] = 2
    assert _push(t, wire_host.K_FARES, auth_host.make_content(
        KC, wire_host.K_FARES, 2, farec.compile_table(desc)))[0] == wire_host.OK
    assert ts.current(0).accepted(0x0200, 0x4310) and not ts.current(0).accepted(0x0200, 0x1000)
    # refused: not whole entries, empty, forged, rolled back; nothing changes
    bad = auth_host.make_content(KC, wire_host.K_WHITELIST, 4, b"\x02\x00\x10")
    assert _push(t, wire_host.K_WHITELIST, bad)[0] == wire_host.E_CONTENT
    assert _push(t, wire_host.K_WHITELIST, auth_host.make_content(
        KC, wire_host.K_WHITELIST, 5, b""))[0] == wire_host.E_CONTENT
    forged = auth_host.make_content(b"\x66" * 32, wire_host.K_WHITELIST, 6,
                                    b"\x02\x00\x10\x00")
    assert _push(t, wire_host.K_WHITELIST, forged)[0] == wire_host.E_CONTENT
    assert _push(t, wire_host.K_WHITELIST, _whitelist(2, [(0x0200, 0x1000)]))[0] == \
        wire_host.E_VERSION
    assert ts.current(0).accepted(0x0200, 0x4310) and t.versions[2] == 3
    # after a reboot: re-verified from the store, its version reported
    ts2 = table.FareTables()
    v, body = content.stored(ps, KP, content.P_FARES, wire_host.K_FARES)
    ts2.offer(body, 0, v)
    assert content.load_whitelist(ps, KP, ts2) == 3
    assert ts2.current(0).accepted(0x0200, 0x4310) and not ts2.current(0).accepted(0x0200,
                                                                                  0x1000)
