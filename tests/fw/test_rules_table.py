# Tier 1: fare-table v1 parsing, activation and pending tables (rules/FORMAT.md).
# SPDX-License-Identifier: MIT
from emu import farec
from fwtest import raises
from validator.errors import SyncError
from validator.rules import table as t
from validator.rules import table_host
from validator.util.bcdtime import secs

T0 = secs(2026, 3, 1)


def _desc(version=1, activation=0, **kw):
    d = {
        "version": version, "activation": activation, "city": "2900",
        "acquirer": "01022900FFFFFFFF",
        "transfer": {"kind": "amount_off", "value": 100, "window_s": 5400},
        "cap": {"daily": 1000, "day_start": "04:00"},
        "lines": [{"id": 15, "fare": 200}, {"id": 12, "fare": 150, "mode": "rail"},
                  {"id": 801, "stops": 3, "matrix": [[200, 300, 400], [200, 300], [200]]}],
        "policies": [{"type": "senior", "scope": "local", "pay": "free"}],
        "accept": [{"org": "any", "city": "1000"}, {"org": "0101", "city": "1121"}],
    }
    d.update(kw)
    return d


def test_table_when_compiled_fields_read_back():
    tb = t.FareTable(farec.compile_table(_desc(version=7, activation=T0)))
    assert tb.version == 7 and tb.activation == T0 and tb.city == 0x2900
    assert bytes(tb.acq) == bytes.fromhex("01022900FFFFFFFF")
    assert tb.cap == 1000 and tb.day_start == 4 * 3600 and tb.xfer_window == 5400
    assert tb.n_lines == 3 and tb.line_index(12) == 0 and tb.line_index(801) == 2
    assert tb.line_index(13) == -1 and tb.line_index(0) == -1 and tb.line_index(9999) == -1
    li = tb.line_index(801)
    assert tb.line_stops(li) == 3 and tb.line_fare(li) == 400
    assert tb.section_fare(li, 0, 2) == 400 and tb.section_fare(li, 2, 0) == 400
    assert tb.section_fare(li, 1, 1) == 200 and tb.section_fare(li, 1, 2) == 300
    assert tb.line_industry(tb.line_index(12)) == table_host.IND_RAIL
    assert tb.line_industry(tb.line_index(15)) == table_host.IND_BUS


def test_table_when_whitelist_and_policy_looked_up_match_wildcards():
    tb = t.FareTable(farec.compile_table(_desc()))
    assert tb.accepted(0x0303, 0x1000) and tb.accepted(0x0101, 0x1121)
    assert not tb.accepted(0x0202, 0x1121) and not tb.accepted(0x0101, 0x3100)
    assert tb.policy(0x01, True) >= 0
    assert tb.policy(0x01, False) == -1 and tb.policy(0x00, True) == -1


def test_table_when_full_symmetric_matrix_given_equals_triangle():
    full = _desc(lines=[{"id": 1, "stops": 3,
                         "matrix": [[200, 300, 400], [300, 200, 300], [400, 300, 200]]}])
    tri = _desc(lines=[{"id": 1, "stops": 3, "matrix": [[200, 300, 400], [200, 300], [200]]}])
    assert farec.compile_table(full) == farec.compile_table(tri)
    bad = _desc(lines=[{"id": 1, "stops": 2, "matrix": [[200, 300], [400, 200]]}])
    raises(farec.TableError, farec.compile_table, bad)


def test_table_when_corrupted_raises_sync_error():
    good = farec.compile_table(_desc())
    raises(SyncError, t.FareTable, b"XKFT" + good[4:])
    raises(SyncError, t.FareTable, good[:40])
    raises(SyncError, t.FareTable, good[:-2])  # matrix cut short: content length overruns
    b = bytearray(good)
    b[4] = 2  # future format version
    raises(SyncError, t.FareTable, bytes(b))
    b = bytearray(good)
    b[-2], b[-1] = 0x01, 0xF5  # last cell -> 501: the line's max fare no longer matches
    raises(SyncError, t.FareTable, bytes(b))
    b = bytearray(good)
    b[48 + 12], b[48 + 13] = 0, 1  # second line id (15) -> 1: lines no longer sorted
    raises(SyncError, t.FareTable, bytes(b))
    b = bytearray(good)
    b[28] = 9  # unknown transfer kind
    raises(SyncError, t.FareTable, bytes(b))


def test_tables_when_parse_fails_old_table_stays_active():
    ts = t.FareTables()
    ts.offer(farec.compile_table(_desc(version=1)), T0)
    junk = b"YKFT\x01\x30" + bytes(60)  # a genuine container could still hold this
    assert ts.offer(junk, T0) == table_host.T_BAD_FORMAT
    assert ts.offer(memoryview(junk)[0:20], T0) == table_host.T_BAD_FORMAT
    assert ts.current(T0).version == 1


def test_tables_when_offered_a_view_keep_it_without_copying():
    body = bytearray(b"\x00" * 14 + farec.compile_table(_desc(version=2)) + b"\x00" * 32)
    view = memoryview(body)[14:-32]  # what sync.auth.verify_content hands over
    ts = t.FareTables()
    assert ts.offer(view, T0, 2) == table_host.T_ACTIVE
    assert ts.current(T0).blob is view


def test_tables_when_activation_in_future_pending_until_due():
    ts = t.FareTables()
    ts.offer(farec.compile_table(_desc(version=1)), T0)
    later = T0 + 86400
    assert ts.offer(farec.compile_table(_desc(version=2, activation=later)),
                    T0) == table_host.T_PENDING
    assert ts.current(later - 1).version == 1
    assert ts.current(later).version == 2 and ts.pending is None
    assert ts.current(T0).version == 2  # no going back once activated


def test_tables_when_no_table_yet_current_is_none():
    assert t.FareTables().current(T0) is None


def test_table_when_needs_asked_reads_only_what_rules_use():
    flat = _desc(lines=[{"id": 15, "fare": 200}], cap={}, transfer={})
    assert t.FareTable(farec.compile_table(flat)).needs(15) == 0
    x = _desc(lines=[{"id": 15, "fare": 200}], cap={})
    assert t.FareTable(farec.compile_table(x)).needs(15) == table_host.NEED_1E
    tb = t.FareTable(farec.compile_table(_desc()))
    assert tb.needs(15) == table_host.NEED_1E | table_host.NEED_1A  # cap on: EF1A
    sec = _desc(cap={}, transfer={})
    assert t.FareTable(farec.compile_table(sec)).needs(15) == table_host.NEED_1A  # open boarding?


def test_tables_when_container_version_differs_from_the_table_refused():
    # genuine, kind and newer are decided by sync (tests/fw/test_app_content.py); the
    # table still checks that the signed container version is the table's own
    ts = t.FareTables()
    body = farec.compile_table(_desc(version=4))
    assert ts.offer(body, T0, 9) == table_host.T_BAD_FORMAT
    assert ts.current(T0) is None
    assert ts.offer(body, T0, 4) == table_host.T_ACTIVE
