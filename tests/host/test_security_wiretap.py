# test_security_wiretap: a wiretapper on the sync line learns no record, card serial or
# amount (docs/SECURITY.md "Links", PROTOCOL.md §3.4). Real sessions over byte streams with
# every byte captured both ways: in process (the device Session under CPython), and the
# MicroPython validator (depot.devsim, cryptolib's AES) against `ykt sync` (cryptography's
# AES-CTR) over a pty, TCP to a listening device and the depot's listen:// mode, each through
# a relay that records what passes. The sessions still deliver every record.
import os
import select
import socket
import struct
import threading
import time

import pytest
from fw import sync_fixtures as fx

from depot.client import Keyring, SyncClient, SyncFailure
from depot.db import DepotDB
from depot.devsim import make_record
from validator.sync import wire, wire_host
from validator.sync.session import Session

# what a record must never show on the line (depot.devsim's layout, storage FORMAT.md §2)
SERIAL = slice(20, 26)  # card serial tail
AMOUNTS = slice(40, 52)  # amount, balance before, balance after
BODY = b"FARE-TABLE-SECRET-" * 100  # a pushed body: host -> device is covered too


def _secrets(records):
    out = set()
    for r in records:
        r = bytes(r)
        out.add(r)
        out.add(r[SERIAL])
        out.add(r[AMOUNTS])
    return out


def _leaks(capture, records):
    """The secrets of `records` (whole record, serial, amounts) found in capture."""
    return sorted({s.hex() for s in _secrets(records) if s in capture})


def _frames(stream):
    """(type, flags) of every frame in a captured byte stream."""
    d = wire.Decoder()
    out = []
    i = 0
    while i < len(stream) or d.pending():
        if i < len(stream):
            i += d.feed(stream[i : i + 1024])
        if d.next():
            out.append((d.type, d.flags))
        elif i >= len(stream):
            break
    return out


def _assert_encrypted_after_auth(h2d, d2h):
    up = _frames(h2d)
    down = _frames(d2h)
    kinds = [t for t, _ in up]
    assert wire_host.T_AUTH in kinds and len(up) > kinds.index(wire_host.T_AUTH) + 1
    after = up[kinds.index(wire_host.T_AUTH) + 1 :]
    assert after and all(f & wire_host.F_ENC and f & wire_host.F_MAC for _, f in after), after
    kinds = [t for t, _ in down]
    after = down[kinds.index(wire_host.T_CHALLENGE) + 1 :]
    assert len(after) > 3
    assert all(f & wire_host.F_ENC and f & wire_host.F_MAC for _, f in after), after


class TapPort(fx.PumpPort):
    """fx.PumpPort that keeps every byte written (host -> device) and read."""

    def __init__(self, *a):
        super().__init__(*a)
        self.h2d_bytes = bytearray()
        self.d2h_bytes = bytearray()

    def write(self, b):
        self.h2d_bytes += b
        return super().write(b)

    def read(self, n):
        b = super().read(n)
        self.d2h_bytes += b
        return b


def _in_process(tmp_path, n=120):
    from validator.sync import auth_host

    log = fx.MemLog(rec_size=128)
    recs = [make_record(s) for s in range(1, n + 1)]
    for r in recs:
        log.append(r)
    target = fx.make_target(0, log=log)
    link, h2d, d2h = fx.link_pair()
    sess = Session(link, target, fx.KEYS, os.urandom, target.clock)
    port = TapPort(sess, h2d, d2h)
    db = DepotDB(str(tmp_path / "tap.sqlite"))
    c = SyncClient(port, Keyring(devices={fx.DEVICE_ID: fx.KD}), timeout=2.0)
    c.connect()
    got = [c.pull(db, window=2, max_records=40, compress=False)]  # plain RECORDS
    for r in range(n + 1, 2 * n + 1):
        rec = make_record(r)
        recs.append(rec)
        log.append(rec)
    c.refresh_info()
    got.append(c.pull(db, window=2, compress=True))  # RECORDS_Z
    blob = auth_host.make_content(fx.KC, wire_host.K_FARES, 5, BODY)
    v = c.push(wire_host.K_FARES, blob, compress=False)
    c.bye()
    db.close()
    return port, recs, got, v, target, log


def test_wiretap_in_process_session_line_shows_no_record_serial_or_amount(tmp_path):
    port, recs, got, v, target, log = _in_process(tmp_path)
    # the session delivered everything and installed the push ...
    assert got == [(120, 0), (120, 0)] and log.acked_seq == 240
    assert v == 5 and target.applied.active[wire_host.K_FARES] == (5, BODY)
    # ... and nothing of it is readable on the line, either way
    assert _leaks(bytes(port.d2h_bytes), recs) == []
    assert BODY[:32] not in bytes(port.h2d_bytes) and b"FARE-TABLE" not in port.h2d_bytes


def test_wiretap_in_process_every_frame_after_auth_is_encrypted(tmp_path):
    port = _in_process(tmp_path, 30)[0]
    _assert_encrypted_after_auth(bytes(port.h2d_bytes), bytes(port.d2h_bytes))


def test_host_when_device_sends_a_clear_maced_frame_after_auth_downgrade_refused():
    log = fx.MemLog()
    fx.add_record(log)
    target = fx.make_target(0, log=log)
    link, h2d, d2h = fx.link_pair()
    sess = Session(link, target, fx.KEYS, os.urandom, target.clock)
    c = SyncClient(fx.PumpPort(sess, h2d, d2h), Keyring(devices={fx.DEVICE_ID: fx.KD}))
    info = c.connect()
    # a 'device' with the session's MAC key that leaves the payload in clear (no F_ENC)
    sess._tx_seq += 1
    p = bytearray(wire_host.INFO_LEN)
    wire_host.pack_info(p, 0, *[info[f[0]] for f in wire_host.SYNC_INFO_FIELDS])
    d2h.put(wire_host.frame(wire_host.T_INFO, bytes(p), sess._tx_seq, 0, sess._tx))
    with pytest.raises(SyncFailure) as e:
        c.recv()
    assert e.value.code == wire_host.E_PROTO and "downgrade" in str(e.value)


def test_host_when_device_ciphertext_bit_flipped_mac_refuses():
    log = fx.MemLog()
    fx.add_record(log)
    target = fx.make_target(0, log=log)
    link, h2d, d2h = fx.link_pair()
    sess = Session(link, target, fx.KEYS, os.urandom, target.clock)
    port = fx.PumpPort(sess, h2d, d2h)
    c = SyncClient(port, Keyring(devices={fx.DEVICE_ID: fx.KD}))
    c.connect()
    decrypted = []
    real = c.rx_cipher.crypt
    c.rx_cipher.crypt = lambda seq, data: decrypted.append(seq) or real(seq, data)
    c.send(wire_host.T_INFO_REQ)
    for _ in range(64):
        sess.step()
    f = bytearray(d2h.take(4096))
    assert f[3] & wire_host.F_ENC
    f[wire_host.HDR + 5] ^= 0x80
    from binascii import crc32

    struct.pack_into(">I", f, len(f) - 4, crc32(bytes(f[2:-4])))  # a valid CRC: an attacker
    d2h.put(bytes(f))
    with pytest.raises(SyncFailure) as e:
        c.recv()
    assert e.value.code == wire_host.E_MAC and decrypted == []


def test_host_when_tx_seq_exhausted_session_refuses_to_reuse_a_seq():
    log = fx.MemLog()
    target = fx.make_target(0, log=log)
    link, h2d, d2h = fx.link_pair()
    sess = Session(link, target, fx.KEYS, os.urandom, target.clock)
    c = SyncClient(fx.PumpPort(sess, h2d, d2h), Keyring(devices={fx.DEVICE_ID: fx.KD}))
    c.connect()
    c.tx_seq = wire_host.SEQ_LAST
    with pytest.raises(SyncFailure):
        c.send(wire_host.T_INFO_REQ)
    assert c.tx_seq == wire_host.SEQ_LAST


# -- the MicroPython validator over real transports, through a recording relay ---------------


class Relay:
    """Copies bytes between two file descriptors (ptys or sockets) and keeps both streams."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.a2b = bytearray()
        self.b2a = bytearray()
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        fds = {self.a: (self.b, self.a2b), self.b: (self.a, self.b2a)}
        while not self._stop:
            r, _, _ = select.select(list(fds), [], [], 0.05)
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    data = b""
                if not data:  # that end closed: the relay is done
                    self._stop = True
                    break
                dst, keep = fds[fd]
                keep += data
                try:
                    os.write(dst, data)
                except OSError:
                    self._stop = True

    def close(self):
        self._stop = True
        self._t.join(2)


def _mp_records(n):
    return [make_record(s) for s in range(1, n + 1)]


def _seqs(db):
    import sqlite3

    from depot.devsim import DEVICE_ID

    con = sqlite3.connect(db)
    r = [x[0] for x in con.execute("SELECT seq FROM records WHERE device_id=? ORDER BY seq",
                                   (DEVICE_ID,))]
    con.close()
    return r


def _mp():
    from test_sync_mp import MP

    if not MP:
        pytest.skip("micropython runtime not installed")


def _assert_tap(h2d, d2h, n, db):
    assert _seqs(db) == list(range(1, n + 1))
    recs = _mp_records(n)
    assert _leaks(bytes(d2h), recs) == [] and _leaks(bytes(h2d), recs) == []
    _assert_encrypted_after_auth(bytes(h2d), bytes(d2h))


def test_wiretap_micropython_device_on_a_pty_line_shows_nothing(tmp_path):
    _mp()
    import tty

    from test_sync_mp import _device, _result, ykt

    ma, sa = os.openpty()
    mb, sb = os.openpty()
    for fd in (sa, sb):
        tty.setraw(fd)
    relay = Relay(ma, mb)  # a = device end, b = host end
    db = str(tmp_path / "pty.sqlite")
    try:
        dev = _device("--tty", os.ttyname(sa), "--records", "300", "--seconds", "20")
        time.sleep(0.3)
        rc = ykt(["sync", "--port", os.ttyname(sb), "--test-keys", "--db", db,
                  "--progress", "never"])
        res = _result(dev)
    finally:
        relay.close()
        for fd in (ma, sa, mb, sb):
            os.close(fd)
    assert rc == 0 and res["acked"] == 300
    _assert_tap(relay.b2a, relay.a2b, 300, db)


def _tcp_relay(listen_port, target_port):
    """Accept one connection on listen_port, connect it to target_port, relay (in a thread)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(1)
    box = {}

    def go():
        srv.settimeout(20)
        a, _ = srv.accept()
        b = socket.create_connection(("127.0.0.1", target_port), timeout=10)
        box["socks"] = (a, b)
        box["relay"] = Relay(a.fileno(), b.fileno())
        srv.close()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, box


def test_wiretap_micropython_device_listening_on_tcp_shows_nothing(tmp_path):
    _mp()
    from test_sync_mp import _device, _free_port, _result, _wait_listening, ykt

    dport, rport = _free_port(), _free_port()
    dev = _device("--listen", str(dport), "--records", "300", "--seconds", "20")
    _wait_listening(dport)
    t, box = _tcp_relay(rport, dport)
    db = str(tmp_path / "tcp.sqlite")
    rc = ykt(["sync", "--port", "tcp://127.0.0.1:%d" % rport, "--test-keys", "--db", db,
              "--progress", "never"])
    t.join(5)
    res = _result(dev)
    relay = box["relay"]
    relay.close()
    for s in box["socks"]:
        s.close()
    assert rc == 0 and res["acked"] == 300
    _assert_tap(relay.a2b, relay.b2a, 300, db)  # a = the host's connection


def test_wiretap_depot_listen_mode_device_connecting_out_shows_nothing(tmp_path):
    _mp()
    from test_sync_mp import _device, _free_port, _result, _wait_listening, ykt

    hport, rport = _free_port(), _free_port()
    db = str(tmp_path / "listen.sqlite")
    rc = []
    th = threading.Thread(target=lambda: rc.append(ykt(
        ["sync", "--port", "listen://127.0.0.1:%d" % hport, "--test-keys", "--db", db,
         "--progress", "never", "--accept-timeout", "15"])))
    th.start()
    _wait_listening(hport)
    t, box = _tcp_relay(rport, hport)
    dev = _device("--connect", "127.0.0.1:%d" % rport, "--records", "200", "--seconds", "20")
    th.join(25)
    t.join(5)
    res = _result(dev)
    relay = box["relay"]
    relay.close()
    for s in box["socks"]:
        s.close()
    assert rc == [0] and res["acked"] == 200
    _assert_tap(relay.b2a, relay.a2b, 200, db)  # a = the device's connection
