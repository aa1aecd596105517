# test_sync_wire: frame codec round trips, resynchronisation and rejection (PROTOCOL.md §1).
# SPDX-License-Identifier: MIT
from validator.sync import auth_host, wire, wire_host


def _frames_from(dec):
    out = []
    while dec.next():
        out.append((dec.type, dec.seq, bytes(dec.payload)))
    return out


def test_wire_when_frame_roundtrips_fields_match():
    f = wire_host.frame(wire_host.T_RECORDS, b"abc" * 100, seq=77)
    assert f[:2] == b"YK"
    d = wire.Decoder()
    d.feed(f)
    assert _frames_from(d) == [(wire_host.T_RECORDS, 77, b"abc" * 100)]


def test_wire_when_fed_byte_by_byte_frame_decodes():
    f = wire_host.frame(wire_host.T_ACK, b"\x00\x00\x00\x05", seq=3)
    d = wire.Decoder()
    got = []
    for i in range(len(f)):
        d.feed(f[i : i + 1])
        got += _frames_from(d)
    assert got == [(wire_host.T_ACK, 3, b"\x00\x00\x00\x05")]


def test_wire_when_noise_precedes_and_splits_frames_decoder_resyncs():
    a = wire_host.frame(wire_host.T_INFO_REQ, b"", seq=1)
    b = wire_host.frame(wire_host.T_PULL, b"1234567", seq=2)
    noise = b"\x00YK\xff\x13YKYK\x01\x02Y"
    d = wire.Decoder()
    d.feed(noise + a + noise + b + b"Y")
    got = _frames_from(d)
    assert got == [(wire_host.T_INFO_REQ, 1, b""), (wire_host.T_PULL, 2, b"1234567")]
    assert d.dropped > 0


def test_wire_when_payload_bit_flipped_frame_dropped_and_next_found():
    a = bytearray(wire_host.frame(wire_host.T_RECORDS, b"x" * 200, seq=1))
    a[40] ^= 0x10
    b = wire_host.frame(wire_host.T_RECORDS, b"y" * 20, seq=2)
    d = wire.Decoder()
    d.feed(bytes(a) + b)
    assert _frames_from(d) == [(wire_host.T_RECORDS, 2, b"y" * 20)]
    assert d.bad_crc == 1


def test_wire_when_length_field_corrupt_header_check_rejects_at_once():
    a = bytearray(wire_host.frame(wire_host.T_RECORDS, b"x" * 10, seq=1))
    a[8] = 0x0F  # bogus 3840-byte length: hchk must catch it without waiting for data
    b = wire_host.frame(wire_host.T_BYE, b"", seq=2)
    d = wire.Decoder()
    d.feed(bytes(a) + b)
    assert _frames_from(d) == [(wire_host.T_BYE, 2, b"")]
    assert d.bad_header >= 1


def test_wire_when_mac_attached_check_accepts_and_tamper_fails():
    m = auth_host.FrameMac(b"k" * 32)
    f = wire_host.frame(wire_host.T_ACK, b"\x00\x00\x00\x09", seq=5, mac=m)
    d = wire.Decoder()
    d.feed(f)
    assert d.next()
    assert d.flags & wire_host.F_MAC
    assert m.check(d.hdr, d.payload, d.tag)
    assert not auth_host.FrameMac(b"j" * 32).check(d.hdr, d.payload, d.tag)


def test_wire_when_max_payload_frames_stream_buffer_compacts():
    d = wire.Decoder()
    n = 0
    for i in range(6):
        f = wire_host.frame(wire_host.T_RECORDS, bytes([i]) * wire_host.MAX_PAYLOAD, seq=i + 1)
        off = 0
        while off < len(f):
            off += d.feed(f[off:])
            while d.next():
                assert d.plen == wire_host.MAX_PAYLOAD and d.payload[0] == n
                n += 1
    assert n == 6


def test_wire_when_payload_too_long_encode_raises():
    buf = bytearray(wire_host.MAX_FRAME + 10)
    try:
        wire.encode(buf, 1, 0, 0, wire_host.MAX_PAYLOAD + 1)
    except ValueError:
        return
    raise AssertionError("no error")


def test_wire_when_info_packed_unpacks_same():
    buf = bytearray(wire_host.INFO_LEN)
    wire_host.pack_info(buf, 0, 0xAABBCCDD, 0x010203, 5, 4, 99, 64, 7, 8, 9, 10, 123456, 2)
    i = wire_host.unpack_info(buf)
    assert i["device_id"] == 0xAABBCCDD and i["next_seq"] == 99 and i["clock"] == 123456
    assert i["rec_size"] == 64 and i["config_version"] == 10 and i["faults"] == 2


def test_rz_when_records_delta_coded_decode_restores_them():
    rs = 40
    recs = []
    for s in range(30):
        r = bytearray(rs)
        r[0] = s & 0xFF
        r[5] = 7
        for i in range(20, 20 + (s % 9)):
            r[i] = (s * 31 + i) & 0xFF
        if s % 7 == 0:
            for i in range(rs):
                r[i] = (s * 13 + i * 7 + 1) & 0xFF  # incompressible: worst case
        recs.append(bytes(r))
    out = bytearray(30 * wire_host.rz_worst(rs))
    prev = bytearray(rs)
    o = 0
    for r in recs:
        o = wire.rz_encode(prev, r, rs, out, o)
        prev[:] = r
    assert wire_host.rz_decode(bytes(out[:o]), 0, 30, rs) == b"".join(recs)
    assert o < 30 * rs  # it pays on similar records


def test_rz_when_stream_malformed_value_error():
    rs = 8
    for bad in (b"\x05ab", b"\x8f", b"\x87\x87", b"\x87\x00"):
        try:
            wire_host.rz_decode(bad, 0, 1, rs)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % bad)
