# test_sync_session: the device session state machine over an in-memory link (PROTOCOL.md §3-4).
# SPDX-License-Identifier: MIT
import struct

from fw.sync_fixtures import (
    DEVICE_ID,
    KD,
    KEYS,
    REC_SIZE,
    MemLog,
    MiniHost,
    link_pair,
    make_record,
    make_target,
)
from validator.sync import auth, wire_host
from validator.sync.session import Session

# Fixtures (a RAM flash device, firmware compiled from source) need more than the MCU's
# 128 KiB; the firmware's own budget is proven from ROMFS by tests/host/test_heap*.py.
MP_HEAP = "256k"

_N = [0]


def _rand(n):
    _N[0] += 1
    return bytes([(_N[0] * 7 + i) & 0xFF for i in range(n)])


def _setup(n_records=0, kd=KD):
    link, h2d, d2h = link_pair()
    t = make_target(n_records)
    s = Session(link, t, KEYS, _rand, t.clock)
    return s, t, MiniHost(s, h2d, d2h, kd)


def _pull_all(h, window=2, maxr=10):
    h.send(wire_host.T_PULL, struct.pack(">IBH", 0, window, maxr))
    got = []
    while True:
        t, p, d = h.pump()
        assert t is not None, "device went silent"
        assert h.rx_mac.check(d.hdr, d.payload, d.tag)
        if t == wire_host.T_PULL_END:
            return got, struct.unpack(">I", p)[0]
        assert t == wire_host.T_RECORDS, t
        first, count, rs = struct.unpack_from(">IHH", p, 0)
        for i in range(count):
            got.append((first + i, p[8 + i * rs : 8 + (i + 1) * rs]))
        h.send(wire_host.T_ACK, struct.pack(">I", first + count - 1))


def test_session_when_host_knows_key_info_describes_device():
    s, t, h = _setup(5)
    typ, p = h.handshake()
    assert typ == wire_host.T_INFO
    i = wire_host.unpack_info(p)
    assert i["device_id"] == DEVICE_ID and i["next_seq"] == 6 and i["acked_seq"] == 0
    assert i["rec_size"] == REC_SIZE
    assert s.authenticated()


def test_session_when_pulled_and_acked_all_records_move_and_watermark_advances():
    s, t, h = _setup(37)
    h.handshake()
    got, nxt = _pull_all(h)
    assert [g[0] for g in got] == list(range(1, 38))
    assert all(g[1] == make_record(g[0]) for g in got)
    assert nxt == 38
    for _ in range(20):
        s.step()
    assert t.log.acked_seq == 37


def test_session_when_second_pull_nothing_new_only_pull_end():
    s, t, h = _setup(3)
    h.handshake()
    _pull_all(h)
    for _ in range(10):
        s.step()
    got, nxt = _pull_all(h)
    assert got == [] and nxt == 4


def test_session_when_wrong_key_nothing_read_nothing_changed():
    s, t, h = _setup(5, kd=b"\x99" * 32)
    typ, p = h.handshake()
    assert typ == "bad device proof"  # the host sees the device does not share its key
    # an impostor host that ignores that and answers anyway is refused
    h.send(wire_host.T_AUTH, b"\x00" * 32)
    typ, p, _ = h.pump()
    assert typ == wire_host.T_ERROR and p[0] == wire_host.E_AUTH
    assert not s.authenticated()
    h.send(wire_host.T_PULL, struct.pack(">IBH", 0, 1, 10))
    typ, p, _ = h.pump()
    assert typ == wire_host.T_ERROR and p[0] == wire_host.E_AUTH
    h.send(wire_host.T_SET_CLOCK, struct.pack(">I", 5))
    h.pump()
    assert t.clock.secs == 800000000 and t.log.acked_seq == 0


def test_session_when_frame_replayed_refused_and_session_ends():
    s, t, h = _setup(5)
    h.handshake()
    f = h.send(wire_host.T_SET_CLOCK, struct.pack(">I", 900000000))
    typ, p, _ = h.pump()
    assert typ == wire_host.T_RESULT and p[1] == wire_host.OK and t.clock.secs == 900000000
    t.clock.secs = 1
    h.h2d.put(f)  # the same frame again
    typ, p, _ = h.pump()
    assert typ == wire_host.T_ERROR and p[0] == wire_host.E_REPLAY
    assert t.clock.secs == 1
    for _ in range(5):
        s.step()
    assert not s.authenticated()


def test_session_when_frame_from_old_session_replayed_mac_refuses():
    s, t, h = _setup(5)
    h.handshake()
    f = h.send(wire_host.T_SET_CLOCK, struct.pack(">I", 900000000))
    h.pump()
    t.clock.secs = 1
    h2 = MiniHost(s, h.h2d, h.d2h)
    h2.handshake(nh=b"M" * 16)
    h.h2d.put(f)  # seq 1 from the old session: MAC under the old keys
    typ, p, _ = h2.pump()
    assert typ == wire_host.T_ERROR and p[0] == wire_host.E_MAC
    assert t.clock.secs == 1


def test_session_when_faults_requested_log_returned():
    s, t, h = _setup()
    h.handshake()
    h.send(wire_host.T_GET_FAULTS)
    typ, p, _ = h.pump()
    assert typ == wire_host.T_FAULTS and p == b"boot\nnfc timeout\n"


def test_session_when_garbage_sent_device_survives_and_still_serves():
    s, t, h = _setup(4)
    seed = 12345
    junk = bytearray(3000)
    for i in range(len(junk)):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        junk[i] = (seed >> 16) & 0xFF
    h.h2d.put(bytes(junk) + b"YK")
    for _ in range(50):
        s.step()
    typ, p = h.handshake()
    assert typ == wire_host.T_INFO


def test_session_when_idle_too_long_session_dropped():
    s, t, h = _setup()
    h.handshake()
    t.clock.ms += 31000
    s.step()
    assert not s.authenticated()


def test_session_when_step_called_work_bounded_per_step():
    # a step writes at most 512 bytes and reads at most 8 records (PROTOCOL.md Req. 1)
    s, t, h = _setup(100)
    h.handshake()
    h.send(wire_host.T_PULL, struct.pack(">IBH", 0, 4, 60))
    reads = [0]
    orig = t.log.read

    def counting(seq, buf):
        reads[0] += 1
        return orig(seq, buf)

    t.log.read = counting
    for _ in range(200):
        before_r = reads[0]
        before_w = h.d2h.passed
        s.step()
        assert reads[0] - before_r <= 8
        assert h.d2h.passed - before_w <= 512
        h.d2h.clear()  # the host reads everything
    assert h.d2h.passed > 100 * 64  # and it really streamed every record


def test_session_when_host_accepts_rz_records_arrive_compressed_and_exact():
    s, t, h = _setup(60)
    h.handshake()
    h.send(wire_host.T_PULL, struct.pack(">IBHB", 0, 2, 25, wire_host.PULL_Z))
    got = []
    raw_bytes = 0
    while True:
        typ, p, d = h.pump()
        assert typ is not None and h.rx_mac.check(d.hdr, d.payload, d.tag)
        if typ == wire_host.T_PULL_END:
            break
        assert typ == wire_host.T_RECORDS_Z, typ
        first, count, rs = struct.unpack_from(">IHH", p, 0)
        data = wire_host.rz_decode(p, 8, count, rs)
        raw_bytes += len(p)
        for i in range(count):
            got.append((first + i, data[i * rs : (i + 1) * rs]))
        h.send(wire_host.T_ACK, struct.pack(">I", first + count - 1))
    assert [g[0] for g in got] == list(range(1, 61))
    assert all(g[1] == make_record(g[0]) for g in got)
    assert raw_bytes < 60 * REC_SIZE


def _rz_pull(rs, n, rec):
    """Pull n records of rs bytes (rec(seq) -> bytes) with RECORDS_Z; -> [(seq, data)]."""
    link, h2d, d2h = link_pair()
    log = MemLog(rs)
    for seq in range(1, n + 1):
        log.append(rec(seq))
    t = make_target(log=log)
    s = Session(link, t, KEYS, _rand, t.clock)
    h = MiniHost(s, h2d, d2h)
    h.handshake()
    h.send(wire_host.T_PULL, struct.pack(">IBHB", 0, 2, 0, wire_host.PULL_Z))
    got = []
    while True:
        typ, p, d = h.pump()
        assert typ is not None and h.rx_mac.check(d.hdr, d.payload, d.tag)
        if typ == wire_host.T_PULL_END:
            return got
        assert typ == wire_host.T_RECORDS_Z, typ
        first, count, size = struct.unpack_from(">IHH", p, 0)
        data = wire_host.rz_decode(p, 8, count, size)
        for i in range(count):
            got.append((first + i, data[i * size : (i + 1) * size]))
        h.send(wire_host.T_ACK, struct.pack(">I", first + count - 1))


def test_session_when_rz_records_share_no_byte_worst_case_batches_stay_exact():
    # every byte differs from the record before (and the first has no zero byte): each
    # record codes to its worst size, rs + ceil(rs / 128) (PROTOCOL.md §6), so the coded
    # batch fills the frame right up to the raw records read into its tail
    for rs in (128, 200):
        def rec(seq, rs=rs):
            return bytes([(seq + i * 3) & 0xFF or 0x55 for i in range(rs)])

        got = _rz_pull(rs, 40, rec)
        assert [g[0] for g in got] == list(range(1, 41)), rs
        assert all(g[1] == rec(g[0]) for g in got), rs


def test_session_when_pulled_and_pushed_attributes_fit_one_dict_size():
    # MicroPython grows an instance dict from 37 to 47 slots (752 B in one block on a
    # 64-bit port) at the 38th attribute; every attribute is made at boot and they stay
    # within 37, so a sync mid-day never needs that block (xfer._xfer_init)
    s, t, h = _setup(30)
    n = len(s.__dict__)
    h.handshake()
    _pull_all(h)
    h.send(wire_host.T_PUSH_BEGIN, struct.pack(">BI", 3, 100))
    h.pump()
    assert len(s.__dict__) == n <= 37, sorted(s.__dict__)


def test_session_when_noise_header_promises_long_frame_quiet_line_resyncs():
    s, t, h = _setup(3)
    # a header with a valid check byte announcing 2000 bytes that never come
    fake = bytearray(wire_host.frame(wire_host.T_RECORDS, b"z" * 2000, seq=1))[:40]
    h.h2d.put(fake)
    h.send(wire_host.T_HELLO, bytes([wire_host.PROTO_VERSION]) + b"N" * 16)
    typ, p, _ = h.pump(steps=50)
    assert typ is None  # the HELLO is swallowed by the bogus frame ...
    t.clock.ms += 1500  # ... until the line has been quiet for a second
    typ, p, _ = h.pump(steps=100)
    assert typ == wire_host.T_CHALLENGE
    assert p[21:53] == auth.device_proof(KD, DEVICE_ID, b"N" * 16, p[5:21])
