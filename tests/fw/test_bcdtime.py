from validator.util import bcdtime


def test_bcdtime_when_packed_matches_calendar():
    b = bytearray(7)
    t = bcdtime.secs(2024, 1, 2, 8, 30, 0)
    bcdtime.pack_datetime(t, b, 0)
    assert bytes(b) == bytes.fromhex("20240102083000")
    assert bcdtime.unpack_datetime(b, 0) == t


def test_bcdtime_when_leap_day_and_year_end_round_trip():
    b = bytearray(7)
    for args in ((2024, 2, 29, 23, 59, 59), (2023, 12, 31, 0, 0, 1), (2000, 1, 1, 0, 0, 0),
                 (2033, 12, 31, 12, 0, 0)):
        t = bcdtime.secs(*args)
        bcdtime.pack_datetime(t, b, 0)
        assert bcdtime.unpack_datetime(b, 0) == t
    assert bcdtime.secs(2000, 1, 1) == 0


def test_bcdtime_when_garbage_returns_minus_one():
    assert bcdtime.unpack_datetime(bytes.fromhex("2024133208300a"), 0) == -1
    assert bcdtime.unpack_date(bytes.fromhex("2024AA01"), 0) == -1
