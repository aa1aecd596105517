# test_depot_serve: `ykt depot serve`, the unattended station, against real validators --
# the device side of the sync protocol on the MicroPython unix port (depot.devsim: the
# firmware's Session and LogTarget, 128 KiB heap) dialling in over TCP (and TLS) and on a
# pty serial line -- and against bad clients at the protocol level (the same Session in
# CPython, bench_depot_fleet.ProtoDevice): garbage, a stall, a cut mid-batch, a flood, an
# unknown device, a wrong key, a full disk and SIGTERM mid-session. Exactly-once is checked
# by counting records in the database against what each device holds and acknowledged.
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

from bench.bench_depot_fleet import ProtoDevice, drive
from depot.client import Keyring
from depot.devsim import TEST_CONTENT_KEY, TEST_MASTER, make_record
from depot.linesim import LineEmulator
from depot.serve import JsonLog, Station, open_db
from emu.world import micropython_bin, mp_env
from validator.sync import auth_host, wire_host

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MP = micropython_bin()


# -- helpers ----------------------------------------------------------------------------------
def _registry(db_path, devices):
    """Register devices (ids) with their TEST-derived keys in the device registry; with a
    database that has no registry yet, -> a keyring holding exactly these devices."""
    db = open_db(db_path)
    keys = {d: auth_host.derive_device_key(TEST_MASTER, d) for d in devices}
    reg = getattr(db, "register_device", None)
    try:
        if reg is not None:
            for i, (d, k) in enumerate(sorted(keys.items())):
                reg(d, k, "L%d" % (i % 3), "V%03d" % i, "north", 0x000100)
            return None
        return Keyring(devices=keys)
    finally:
        db.close()


def _publish_blacklist(db_path, version=1):
    """Publish a signed blacklist (when the database publishes content); -> version or 0."""
    from validator.storage import blacklist_host

    db = open_db(db_path)
    try:
        pub = getattr(db, "publish", None)
        if pub is None:
            return 0
        body = blacklist_host.make_body(blacklist_host.KIND_FULL, [bytes(8)])
        pub("blacklist", version, auth_host.make_content(
            TEST_CONTENT_KEY, wire_host.K_BLACKLIST_FULL, version, body))
        return version
    finally:
        db.close()


class _Log(JsonLog):
    """The station's JSON log lines, kept (and written to a file for a failing test)."""

    def __init__(self, path):
        super().__init__(path)
        self.path = path

    def events(self, name=None):
        with open(self.path) as f:
            ev = [json.loads(x) for x in f if x.strip()]
        return [e for e in ev if name is None or e["event"] == name]


def _station(tmp_path, devices, **kw):
    db = str(tmp_path / "depot.sqlite")
    fallback = _registry(db, devices)
    log = _Log(str(tmp_path / "station.log"))
    kw.setdefault("timeout", 1.0)
    st = Station(db, listen="127.0.0.1:0", log=log, fallback_keys=fallback, **kw).start()
    return st, db, log


def _seqs(db_path, dev):
    con = sqlite3.connect(db_path)
    try:
        rows = con.execute("SELECT seq, data FROM records WHERE device_id=? ORDER BY seq",
                           (dev,)).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows], {r[0]: bytes(r[1]) for r in rows}


def _exactly(db_path, dev, n):
    """Every record 1..n of the device is in the database once, byte for byte."""
    seqs, data = _seqs(db_path, dev)
    assert seqs == list(range(1, n + 1)), (dev, len(seqs), seqs[:3], seqs[-3:])
    assert all(data[s] == bytes(make_record(s)) for s in seqs)


def _devsim(*args):
    return subprocess.Popen([MP, "-X", "heapsize=128k", "-m", "depot.devsim"] + list(args),
                            env=mp_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _devsim_result(p, timeout=60):
    out = p.communicate(timeout=timeout)[0]
    for line in out.splitlines():
        if line.startswith("DEVSIM {"):
            return json.loads(line[7:])
    raise AssertionError("device printed no result:\n" + out)


def _wait(cond, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


# -- real validators --------------------------------------------------------------------------
def test_serve_when_micropython_validators_dial_in_at_once_and_one_is_on_serial_every_record_arrives_once(  # noqa: E501
        tmp_path):
    tcp = [0x31000001 + i for i in range(4)]
    ser = 0x31000100
    n = {d: 300 + 50 * i for i, d in enumerate(tcp + [ser])}
    le = LineEmulator(baud=None)
    st, db, log = _station(tmp_path, tcp + [ser], serial=[le.host_path], serial_poll_s=0.2,
                           http="127.0.0.1:0", json_status=str(tmp_path / "status.json"))
    published = _publish_blacklist(db)
    try:
        port = st.address[1]
        procs = {d: _devsim("--connect", "127.0.0.1:%d" % port, "--records", str(n[d]),
                            "--seconds", "40", "--device-id", "%08X" % d) for d in tcp}
        procs[ser] = _devsim("--tty", le.device_path, "--records", str(n[ser]),
                             "--seconds", "40", "--device-id", "%08X" % ser)
        res = {d: _devsim_result(p) for d, p in procs.items()}
        _wait(lambda: st.stats["sessions_ok"] >= 5 and not st.stats["active"],
              what="five sessions")
        fleet = json.loads(urllib.request.urlopen(st.url() + "api/fleet", timeout=10).read())
    finally:
        st.stop()
        le.close()
    for d in tcp + [ser]:
        assert res[d]["acked"] == n[d], res[d]  # the device's watermark: all acknowledged
        _exactly(db, d, n[d])
        if published:
            assert res[d]["versions"][0] == published  # the blacklist it lacked was pushed
        assert res[d]["clock"] > 0
    ok = log.events("session_ok")
    assert {e["device"] for e in ok} == {"%08X" % d for d in tcp + [ser]}
    assert [e["link"] for e in ok if e["device"] == "%08X" % ser] == ["serial"]
    assert {r["device_id"] for r in fleet} >= {"%08X" % d for d in tcp + [ser]}
    status = json.load(open(tmp_path / "status.json"))
    assert status["stats"]["records_new"] == sum(n.values())


def _self_signed(tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "depot.local")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    pem = tmp_path / "depot.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return str(pem)


def test_serve_when_validator_dials_in_over_tls_records_arrive_and_plain_tcp_is_refused(
        tmp_path):
    pem = _self_signed(tmp_path)
    dev = 0x31000200
    st, db, log = _station(tmp_path, [dev], tls=(pem, pem), stages={"auth": 1.0})
    try:
        plain = ProtoDevice(dev, 50)  # no TLS: the handshake fails, nothing is exchanged
        plain.connect("127.0.0.1", st.address[1])
        drive([plain], time.monotonic() + 5)
        assert plain.log.acked_seq == 0
        p = _devsim("--connect", "127.0.0.1:%d" % st.address[1], "--tls", "1", "--records",
                    "200", "--seconds", "30", "--device-id", "%08X" % dev)
        res = _devsim_result(p)
    finally:
        st.stop()
    assert res["acked"] == 200
    _exactly(db, dev, 200)
    assert any(e["kind"] == "tls" for e in log.events("connection_failed"))


# -- bad clients --------------------------------------------------------------------------------
def test_serve_when_device_unknown_or_key_wrong_nothing_is_pulled_or_pushed(tmp_path):
    good, stranger, forger = 0x31000301, 0x31000302, 0x31000303
    st, db, log = _station(tmp_path, [good, forger])
    _publish_blacklist(db)
    try:
        devs = [ProtoDevice(good, 40), ProtoDevice(stranger, 40),
                ProtoDevice(forger, 40, kd=bytes(32))]
        for d in devs:
            d.connect("127.0.0.1", st.address[1])
        drive(devs, time.monotonic() + 20)
    finally:
        st.stop()
    _exactly(db, good, 40)
    for d in devs[1:]:
        assert d.log.acked_seq == 0 and d.shadow.applied == {} and d.target.versions[0] == 0
        assert _seqs(db, d.dev_id)[0] == []
    failed = {e["device"]: e for e in log.events("session_failed")}
    assert failed["%08X" % stranger]["stage"] == "auth"
    assert "no key" in failed["%08X" % stranger]["error"]
    assert failed["%08X" % forger]["stage"] == "auth"


def test_serve_when_garbage_stall_and_cut_mid_batch_others_sync_and_the_cut_ones_resume_exactly_once(  # noqa: E501
        tmp_path):
    goods = [0x31000401 + i for i in range(3)]
    staller, cutter = 0x31000410, 0x31000411
    n = 3000
    st, db, log = _station(tmp_path, goods + [staller, cutter], timeout=0.5)
    try:
        g = socket.create_connection(st.address)
        g.sendall(os.urandom(5000) + b"YK" + os.urandom(300))  # noise, a fake frame start
        devs = [ProtoDevice(d, n) for d in goods]
        stall = ProtoDevice(staller, n, stall_after=9000)  # answers, then goes silent mid-pull
        cut = ProtoDevice(cutter, n, cut_after=15000)  # drives away mid-batch
        for d in devs + [stall, cut]:
            d.connect("127.0.0.1", st.address[1])
        drive(devs + [stall, cut], time.monotonic() + 30)
        _wait(lambda: st.stats["active"] == 0, what="the stalled session to be cut")
        g.close()
        for d in devs:
            assert d.log.acked_seq == n
        for d in (stall, cut):
            held = _seqs(db, d.dev_id)[0]
            assert held and d.log.acked_seq < n  # a part was pulled and stored ...
            assert held == list(range(1, len(held) + 1))  # ... without a gap
            assert len(held) >= d.log.acked_seq  # never acknowledged beyond what is stored
            d.stall_after = d.cut_after = None  # the next time at the terminus: resume
            d.connect("127.0.0.1", st.address[1])
        drive([stall, cut], time.monotonic() + 30)
    finally:
        st.stop()
    for d in goods + [staller, cutter]:
        _exactly(db, d, n)
    assert stall.log.acked_seq == n and cut.log.acked_seq == n
    kinds = {e["device"]: e["kind"] for e in log.events("session_failed")}
    assert kinds["%08X" % staller] == "timeout" and kinds["%08X" % cutter] == "disconnected"
    assert log.events("connection_failed")  # the garbage connection, one clear line


def test_serve_when_a_session_meets_a_bug_it_is_logged_and_the_station_keeps_serving(
        tmp_path, monkeypatch):
    # a fault injected into the session code (standing for any bug an odd validator may
    # trip): it used to escape session() and end the worker -- on a serial line, the
    # poller thread for good
    from depot import serve as serve_mod

    real = serve_mod.stn.station_session
    calls = []

    def buggy(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise AttributeError("injected bug")
        return real(*a, **kw)

    monkeypatch.setattr(serve_mod.stn, "station_session", buggy)
    dev = 0x31000420
    st, db, log = _station(tmp_path, [dev])
    try:
        d = ProtoDevice(dev, 50)
        d.connect("127.0.0.1", st.address[1])
        drive([d], time.monotonic() + 10)
        _wait(lambda: log.events("session_internal_error"), what="the logged bug")
        assert d.log.acked_seq == 0 and st.stats["internal_errors"] == 1
        d.connect("127.0.0.1", st.address[1])  # the next visit: served as usual
        drive([d], time.monotonic() + 20)
        assert d.log.acked_seq == 50
    finally:
        st.stop()
    _exactly(db, dev, 50)
    e = log.events("session_internal_error")[0]
    assert e["error"] == "AttributeError: injected bug" and e["link"] == "tcp"


def test_serve_when_flooded_with_1000_connects_a_second_validators_still_sync(tmp_path):
    goods = [0x31000501 + i for i in range(3)]
    st, db, log = _station(tmp_path, goods, timeout=0.5, max_sessions=32, max_queue=64)
    stop = threading.Event()
    sent = [0]

    def flood():
        t0 = time.monotonic()
        while not stop.is_set() and sent[0] < 1000:
            try:
                s = socket.create_connection(st.address, timeout=1)
                s.close()
            except OSError:
                pass
            sent[0] += 1
            lag = t0 + sent[0] / 1000 - time.monotonic()  # 1000 a second
            if lag > 0:
                time.sleep(lag)

    th = threading.Thread(target=flood)
    try:
        th.start()
        time.sleep(0.1)
        devs = [ProtoDevice(d, 500) for d in goods]
        for d in devs:
            d.connect("127.0.0.1", st.address[1])
        drive(devs, time.monotonic() + 60)
        th.join(30)
        _wait(lambda: st.stats["active"] == 0 and st.stats["queued"] == 0, 30,
              "the flood to drain")
        late = ProtoDevice(goods[0], 600)  # the station still serves afterwards
        late.log.acked_seq = 500
        late.connect("127.0.0.1", st.address[1])
        st.min_interval.last_ok.clear()
        drive([late], time.monotonic() + 20)
    finally:
        stop.set()
        st.stop()
    assert sent[0] >= 1000 and st.stats["accepted"] >= 1000
    for d in goods[1:]:
        _exactly(db, d, 500)
    _exactly(db, goods[0], 600)
    assert len(log.events("connection_failed")) < 200  # summarised per peer per second


# -- the station process: SIGTERM and a full disk -------------------------------------------
def _serve(tmp_path, db, port, *extra, fsize=None, log_name="serve.log"):
    status = str(tmp_path / "status.json")
    if os.path.exists(status):
        os.remove(status)  # the previous station's

    def limit():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    args = [sys.executable, "-m", "ykt", "depot", "serve", "--db", db, "--listen",
            "127.0.0.1:%d" % port, "--json-status", status, "--timeout", "1",
            "--log", str(tmp_path / log_name)] + list(extra)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        os.path.join(ROOT, p) for p in ("firmware", "host_tools", "host_tools/shims"))
    p = subprocess.Popen(args, env=env, preexec_fn=limit, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)

    def started():
        if p.poll() is not None:
            raise AssertionError("station exited:\n" + p.stdout.read())
        try:
            with open(status) as f:
                return json.load(f)["listen"] is not None
        except (OSError, ValueError):
            return False

    _wait(started, 30, "the station to start")
    return p


def _events(path, name):
    with open(path) as f:
        return [e for e in (json.loads(x) for x in f if x.strip()) if e["event"] == name]


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test_serve_when_sigterm_mid_session_exit_0_nothing_acked_uncommitted_and_resume_completes(
        tmp_path):
    dev, n = 0x31000601, 30000
    db = str(tmp_path / "depot.sqlite")
    fallback = _registry(db, [dev])
    keys = ["--test-keys"] if fallback is not None else []
    port = _free_port()
    p = _serve(tmp_path, db, port, "--drain-s", "0", *keys)
    d = ProtoDevice(dev, n)
    d.connect("127.0.0.1", port)
    end = time.monotonic() + 30
    while d.log.acked_seq < 2000 and time.monotonic() < end and not d.done:
        drive([d], time.monotonic() + 0.01)
    p.send_signal(signal.SIGTERM)  # mid-pull
    drive([d], time.monotonic() + 20)
    out = p.communicate(timeout=30)[0]
    assert p.returncode == 0, out
    held = _seqs(db, dev)[0]
    assert 0 < d.log.acked_seq < n, d.log.acked_seq  # really cut mid-session
    assert held == list(range(1, len(held) + 1)) and len(held) >= d.log.acked_seq
    stopped = _events(str(tmp_path / "serve.log"), "station_stopped")
    assert len(stopped) == 1
    p = _serve(tmp_path, db, port, *keys, log_name="serve2.log")
    try:
        d.connect("127.0.0.1", port)
        drive([d], time.monotonic() + 60)
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)
    assert p.returncode == 0
    assert d.log.acked_seq == n
    _exactly(db, dev, n)


def test_serve_when_disk_fills_mid_pull_session_fails_without_ack_station_keeps_running(
        tmp_path):
    dev, other, n = 0x31000701, 0x31000702, 8000
    db = str(tmp_path / "depot.sqlite")
    fallback = _registry(db, [dev, other])
    keys = ["--test-keys"] if fallback is not None else []
    size = sum(os.path.getsize(str(db) + s) for s in ("", "-wal") if os.path.exists(db + s))
    port = _free_port()
    # the station may write files up to ~400 KB: the records of one day do not fit
    p = _serve(tmp_path, db, port, *keys, fsize=max(size, 0) + 400 * 1024)
    try:
        d = ProtoDevice(dev, n)
        d.connect("127.0.0.1", port)
        drive([d], time.monotonic() + 30)
        _wait(lambda: _events(str(tmp_path / "serve.log"), "session_failed"), 20,
              "a failed session")
        assert p.poll() is None  # the station is still running ...
        o = ProtoDevice(other, 10)  # ... and still answers the next validator
        o.connect("127.0.0.1", port)
        drive([o], time.monotonic() + 10)
        assert o.done
    finally:
        p.send_signal(signal.SIGTERM)
        out = p.communicate(timeout=30)[0]
    assert p.returncode == 0, out
    ev = _events(str(tmp_path / "serve.log"), "session_failed")
    mine = [e for e in ev if e["device"] == "%08X" % dev]
    assert mine and mine[0]["kind"] == "database" and "database" in mine[0]["error"]
    held = _seqs(db, dev)[0]
    assert d.log.acked_seq < n and len(held) >= d.log.acked_seq  # nothing ACKed unstored
    p = _serve(tmp_path, db, port, *keys, log_name="serve2.log")  # disk space again
    try:
        d.connect("127.0.0.1", port)
        drive([d], time.monotonic() + 60)
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)
    assert d.log.acked_seq == n
    _exactly(db, dev, n)


def test_depot_status_when_station_ran_lists_the_fleet(tmp_path, capsys):
    dev = 0x31000801
    st, db, log = _station(tmp_path, [dev], json_status=str(tmp_path / "status.json"))
    try:
        d = ProtoDevice(dev, 20)
        d.connect("127.0.0.1", st.address[1])
        drive([d], time.monotonic() + 10)
        _wait(lambda: st.stats["sessions_ok"] == 1, what="the session")
        st.write_status()
    finally:
        st.stop()
    import argparse

    from ykt import depot_serve

    ap = argparse.ArgumentParser()
    depot_serve.register(ap.add_subparsers())
    args = ap.parse_args(["status", "--db", db, "--json-status", str(tmp_path / "status.json")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "%08X  ok" % dev in out and "1 ok" in out


# -- the station on PostgreSQL ------------------------------------------------------------
def _exactly_db(url, dev, n):
    db = open_db(url)
    try:
        rows = db.records(dev)
    finally:
        db.close()
    assert [s for _d, s, _b in rows] == list(range(1, n + 1)), (dev, len(rows))
    assert all(b == bytes(make_record(s)) for _d, s, b in rows)


def test_serve_when_database_is_postgresql_and_it_dies_mid_pull_nothing_is_lost_or_doubled(
        tmp_path, pg_server):
    url = pg_server.new_database()
    fleet = [0x31000901 + i for i in range(12)]
    _registry(url, fleet)
    log = _Log(str(tmp_path / "station.log"))
    st = Station(url, listen="127.0.0.1:0", log=log, timeout=2.0, resync_s=0).start()
    try:
        port = st.address[1]
        devs = [ProtoDevice(d, 500) for d in fleet]
        for d in devs:
            d.connect("127.0.0.1", port)
        drive(devs, time.monotonic() + 60)  # a fleet at once, each on its own connection
        assert all(d.done for d in devs)
        for d in fleet:
            _exactly_db(url, d, 500)
        big = ProtoDevice(0x31000901, 500 + 20000)  # the first one's day goes on
        big.connect("127.0.0.1", port)
        t = threading.Thread(target=drive, args=([big], time.monotonic() + 60))
        t.start()
        _wait(lambda: open_db(url).count(0x31000901) > 1500, 30, "the pull under way")
        pg_server.kill()  # the database server dies (SIGKILL) and comes back
        t.join(90)
        _wait(lambda: any(e["device"] == "31000901" for e in log.events("session_failed")),
              30, "the session failing on the database")
        assert big.log.acked_seq < 20500  # nothing was acknowledged past what was committed
        other = ProtoDevice(0x31000902, 500 + 10)  # the station still serves the fleet
        other.connect("127.0.0.1", port)
        drive([other], time.monotonic() + 30)
        assert other.done
        big.connect("127.0.0.1", port)  # the cut validator redials: it resumes
        drive([big], time.monotonic() + 90)
        assert big.done and big.log.acked_seq == 20500
    finally:
        st.stop()
    _exactly_db(url, 0x31000901, 20500)
    _exactly_db(url, 0x31000902, 510)
    failed = [e for e in log.events("session_failed") if e["device"] == "31000901"]
    assert failed[0]["kind"] == "database"


def test_depot_cli_when_options_are_bad_one_line_and_nothing_is_started_or_created(
        tmp_path):
    def ykt(*argv):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "firmware")]))
        return subprocess.run([sys.executable, "-m", "ykt"] + list(argv), env=env,
                              capture_output=True, text=True, timeout=60)

    db = str(tmp_path / "d.sqlite")
    r = ykt("depot", "serve", "--db", db, "--listen", "nothing")
    assert r.returncode == 2 and "--listen 'nothing'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not os.path.exists(db)
    r = ykt("depot", "serve", "--db", db, "--http", "127.0.0.1:99999")
    assert r.returncode == 2 and "0..65535" in r.stderr and not os.path.exists(db)
    missing = str(tmp_path / "no" / "where.sqlite")
    r = ykt("depot", "status", "--db", missing)
    assert r.returncode == 3 and "no such depot database" in r.stderr
    assert not os.path.exists(os.path.dirname(missing))  # nothing created on the way
