# Tier 1: blacklist store (FORMAT.md §5): key reduction, 2-read lookups, full/delta
# bodies (whole or streamed), refusal of malformed bodies. Forged or old content is sync's
# to refuse: tests/fw/test_app_content.py.
import struct

import fwtest
from fw import storage_dev
from validator.storage.blacklist import (
    OK,
    REJ_BASE,
    REJ_FORMAT,
    Blacklist,
    key_of,
)
from validator.storage.blacklist_host import (
    KIND_DELTA,
    KIND_FULL,
    OP_ADD,
    OP_REMOVE,
    make_body,
)

# Fixtures (a RAM flash device, firmware compiled from source) need more than the MCU's
# 128 KiB; the firmware's own budget is proven from ROMFS by tests/host/test_heap*.py.
MP_HEAP = "256k"

_BS = 512  # small blocks keep the RAM image small for the 128 KiB MicroPython heap
_REGION = (0, 16 * _BS)  # two 4 KiB banks: 8 groups of 64 keys each
_PREFIXES = (b"\x01\x10", b"\x01\x11", b"\x2b\x16", b"\xff\x00")


def _keys(n, seed):
    """n distinct ascending keys over 4 prefixes, no set (the MicroPython heap stays whole)."""
    out = []
    for i in range(n):
        p = _PREFIXES[i * len(_PREFIXES) // n]
        v = i * 1000003 + (i * i * 7 + seed * 31) % 999983
        out.append(p + struct.pack(">HI", v >> 32, v & 0xFFFFFFFF))
    return out


def _merge(keys, adds, rems):
    out = [k for k in keys if k not in rems] + [k for k in adds if k not in keys]
    out.sort()
    return out


def _store(fl):
    return Blacklist(fl, _REGION).mount()


def _flash():
    return storage_dev.dev()


def _probe(bl, keys):
    return [bl.contains_key(k) for k in keys]


def test_key_of_when_standard_serial_is_the_19_digit_number():
    o = bytearray(8)
    key_of(bytes.fromhex("03104770040067442802"), o)
    assert int.from_bytes(bytes(o), "big") == 3104770040067442802
    a = bytes(key_of(bytes.fromhex("03104770040067442801"), bytearray(8)))
    b = bytes(key_of(bytes.fromhex("03104770040067442810"), bytearray(8)))
    assert a < bytes(o) < b  # numeric order is byte order


def test_key_of_when_serial_not_bcd_uses_ff_prefix():
    o = key_of(bytes.fromhex("13104770040067442802"), bytearray(8))
    assert bytes(o) == bytes.fromhex("ff70040067442802")
    o = key_of(bytes.fromhex("0310477004006744280a"), bytearray(8))
    assert o[0] == 0xFF


def test_blacklist_when_full_list_applied_answers_exactly_in_two_reads():
    fl = _flash()
    bl = _store(fl)
    keys = _keys(200, 7)
    assert bl.apply(KIND_FULL, 3, make_body(KIND_FULL, keys)) == OK
    bl = _store(fl)
    assert bl.version == 3 and bl.entries == 200
    absent = [k[:7] + bytes([k[7] ^ 1]) for k in keys[::5]]
    absent = [k for k in absent if k not in keys] + [b"\x00" * 8, b"\xff" * 8]
    absent += [b"\x01\x12" + k[2:] for k in keys[:3]]  # prefix between two groups' prefixes
    for k in keys:
        r0 = fl.reads
        assert bl.contains_key(k)
        assert fl.reads - r0 <= 2
    for k in absent:
        assert not bl.contains_key(k)


def test_blacklist_when_serial_listed_contains_finds_it():
    fl = _flash()
    bl = _store(fl)
    ser = bytes.fromhex("03104770040067442802")
    k = bytes(key_of(ser, bytearray(8)))
    assert bl.apply(KIND_FULL, 1, make_body(KIND_FULL, [k])) == OK
    assert bl.contains(ser)
    assert not bl.contains(bytes.fromhex("03104770040067442803"))


def test_blacklist_when_delta_applied_adds_and_removes():
    fl = _flash()
    bl = _store(fl)
    keys = _keys(120, 3)
    bl.apply(KIND_FULL, 1, make_body(KIND_FULL, keys))
    adds = [k for k in _keys(24, 99) if k not in keys]
    rems = keys[::9]
    ops = sorted([(OP_ADD, k) for k in adds] + [(OP_REMOVE, k) for k in rems], key=lambda t: t[1])
    assert bl.apply(KIND_DELTA, 2, make_body(KIND_DELTA, ops, base=1)) == OK
    new = _merge(keys, adds, rems)
    bl = _store(fl)
    assert bl.version == 2 and bl.entries == len(new)
    i = 0
    for k in bl.keys():  # streamed: no second list on the small MicroPython heap
        assert k == new[i]
        i += 1
    assert i == len(new)
    for k in keys:
        assert bl.contains_key(k) == (k in new)
    for k in adds:
        assert bl.contains_key(k)


def test_blacklist_when_body_has_wrong_base_or_unsorted_keys_keeps_the_active_list():
    # genuine and newer is sync's decision (sync.target, tests/fw/test_app_content.py);
    # what the store refuses is a body it cannot apply
    fl = _flash()
    bl = _store(fl)
    keys = _keys(100, 5)
    bl.apply(KIND_FULL, 4, make_body(KIND_FULL, keys))
    bad = make_body(KIND_DELTA, [(OP_ADD, keys[0])], base=3)
    assert bl.apply(KIND_DELTA, 5, bad) == REJ_BASE
    unsorted = make_body(KIND_FULL, [keys[1], keys[0]])
    assert bl.apply(KIND_FULL, 6, unsorted) == REJ_FORMAT
    assert bl.apply(KIND_FULL, 6, make_body(KIND_FULL, keys)[:-1]) == REJ_FORMAT  # short
    assert bl.apply(3, 6, make_body(KIND_FULL, keys)) == REJ_FORMAT  # not a blacklist kind
    for b2 in (bl, _store(fl)):
        assert b2.version == 4 and b2.entries == 100
        assert all(_probe(b2, keys))


def test_blacklist_when_streamed_in_small_chunks_switches_at_end_only():
    fl = _flash()
    bl = _store(fl)
    keys = _keys(150, 11)
    body = make_body(KIND_FULL, keys)
    assert bl.begin_stream(KIND_FULL, 9, len(body)) == OK
    for o in range(0, len(body), 7):
        bl.write(memoryview(body)[o : o + 7])
        assert bl.version == 0  # nothing active changes before end()
    assert bl.end() == OK and bl.version == 9
    short = make_body(KIND_FULL, keys[:5])
    bl.begin_stream(KIND_FULL, 10, len(short))
    bl.write(short[:-3])
    assert bl.end() == REJ_FORMAT
    bl.begin_stream(KIND_FULL, 10, len(short))
    bl.write(short)
    bl.abort()  # what sync does for a container whose tag is wrong
    assert bl.end() == REJ_FORMAT
    assert _store(fl).version == 9 and all(_probe(_store(fl), keys))


def test_blacklist_when_lookup_runs_heap_locked_allocates_nothing():
    fwtest.need_micropython()
    fl = _flash()
    bl = _store(fl)
    keys = _keys(120, 2)
    bl.apply(KIND_FULL, 1, make_body(KIND_FULL, keys))
    ser = bytearray(bytes.fromhex("03104770040067442802"))
    k = keys[50]
    res = [False, False]

    def tap():
        res[0] = bl.contains(ser)
        res[1] = bl.contains_key(k)

    tap()
    assert fwtest.heap_locked(tap) == 0
    assert res == [False, True]


def test_blacklist_when_geometry_is_the_esp32s3_plan_holds_a_million():
    class _Geo:  # geometry only: the constructor reads nothing
        block_size = 4096
        prog_size = 256

    bl = Blacklist(_Geo(), (0x3E0000, 0xC20000))
    assert bl.max_groups * 64 >= 1000000
    # RAM: index + one lookup buffer (fence chunk 512, the 384-byte leaf read over it) + key (8)
    assert len(bl._idx) == 2032 and len(bl._lbm) == 384
    assert len(bl._idx) <= 4096 and len(bl._fb) + len(bl._idx) + 8 <= 8192
