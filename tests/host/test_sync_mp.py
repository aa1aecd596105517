# test_sync_mp: the device session in a real `micropython -X heapsize=128k` process, over a
# pty (serial path) and loopback TCP (both directions), against `ykt sync` in CPython.
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from depot.devsim import DEVICE_ID, TEST_CONTENT_KEY, make_record
from depot.linesim import LineEmulator
from validator.sync import auth_host, wire_host
from ykt import cmd_sync
from ykt.cli import EXIT_FAIL, EXIT_IO, EXIT_OK, EXIT_PROTOCOL, CommandError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MP = os.path.join(os.path.dirname(sys.executable), "micropython")
if not os.path.exists(MP):
    MP = shutil.which("micropython")
pytestmark = pytest.mark.skipif(not MP, reason="micropython runtime not installed")


def ykt(argv):
    """`ykt sync ...` through its own parser and ykt.cli's error -> exit code rule (the
    full ykt parser imports every verb, some of which may be mid-change by others)."""
    import argparse

    p = argparse.ArgumentParser(prog="ykt")
    cmd_sync.register(p.add_subparsers())
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except CommandError as e:
        print("ykt: " + str(e), file=sys.stderr)
        return e.code


def _env():
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(
        [os.path.join(ROOT, p) for p in ("firmware", "host_tools")] + [".frozen"]
    )
    return env


def _device(*args):
    return subprocess.Popen(
        [MP, "-X", "heapsize=128k", "-m", "depot.devsim"] + list(args),
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _result(p, timeout=30):
    out = p.communicate(timeout=timeout)[0]
    for line in out.splitlines():
        if line.startswith("DEVSIM {"):
            return json.loads(line[7:])
    raise AssertionError("device printed no result:\n" + out)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _wait_listening(port, timeout=20.0):
    """Wait until something listens on 127.0.0.1:port (the device has booted), without
    connecting to it (a probe connection would be a session to the device): Linux's
    /proc/net/tcp lists the socket in state 0A (LISTEN)."""
    want = ":%04X" % port
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(want) and parts[3] == "0A":
                    return
        time.sleep(0.05)
    raise AssertionError("nothing listens on port %d after %g s" % (port, timeout))


def _seqs(db):
    con = sqlite3.connect(db)
    r = [x[0] for x in con.execute("SELECT seq FROM records WHERE device_id=? ORDER BY seq",
                                   (DEVICE_ID,))]
    data = dict(con.execute("SELECT seq, data FROM records WHERE device_id=?", (DEVICE_ID,)))
    con.close()
    return r, data


def test_sync_when_micropython_device_on_pty_records_pulled_fares_pushed_taps_not_delayed(
    tmp_path, capsys
):
    fares = tmp_path / "fares.ykc"
    fares.write_bytes(auth_host.make_content(TEST_CONTENT_KEY, wire_host.K_FARES, 7, b"F" * 9000))
    db = str(tmp_path / "depot.sqlite")
    with LineEmulator() as le:
        dev = _device("--tty", le.device_path, "--records", "1500", "--tap-ms", "10",
                      "--seconds", "30")
        time.sleep(0.3)
        rc = ykt(["sync", "--port", le.host_path, "--test-keys", "--db", db, "--fares",
                  str(fares), "--json", "--progress", "never"])
        res = _result(dev)
    assert rc == EXIT_OK
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    seqs, data = _seqs(db)
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 1500
    assert all(bytes(data[s]) == bytes(make_record(s)) for s in (1, 700, 1500))
    assert res["acked"] == len(seqs)  # the device's watermark is exactly what we hold
    assert res["versions"][1] == 7 and summary["pushed"][0]["version"] == 7
    # the tap task beside the sync task was never held up by more than a few ms
    assert res["taps"] > 0 and res["max_tap_delay_ms"] <= 15, res


def test_sync_when_device_listens_on_tcp_ykt_connects_and_resumes(tmp_path):
    db = str(tmp_path / "depot.sqlite")
    port = _free_port()
    dev = _device("--listen", str(port), "--records", "300", "--seconds", "30",
                  "--sessions", "2")
    _wait_listening(port)
    url = "tcp://127.0.0.1:%d" % port
    assert ykt(["sync", "--port", url, "--test-keys", "--db", db, "--progress", "never"]) == 0
    assert ykt(["sync", "--port", url, "--test-keys", "--db", db, "--progress", "never"]) == 0
    res = _result(dev)
    seqs, _ = _seqs(db)
    assert seqs == list(range(1, 301)) and res["acked"] == 300 and res["sessions"] == 2


def test_sync_when_nobody_listens_on_the_tcp_port_the_error_says_so(tmp_path):
    port = _free_port()  # closed: the connection is refused at once
    with pytest.raises(CommandError) as e:
        cmd_sync.open_port("tcp://127.0.0.1:%d" % port, 115200)
    assert "cannot connect to 127.0.0.1:%d" % port in str(e.value)
    assert e.value.code == EXIT_IO


def test_sync_when_device_connects_out_depot_listens_records_arrive(tmp_path):
    db = str(tmp_path / "depot.sqlite")
    port = _free_port()
    import threading

    rc = []
    t = threading.Thread(target=lambda: rc.append(ykt(
        ["sync", "--port", "listen://127.0.0.1:%d" % port, "--test-keys", "--db", db,
         "--progress", "never", "--accept-timeout", "10"])))
    t.start()
    _wait_listening(port)
    dev = _device("--connect", "127.0.0.1:%d" % port, "--records", "200", "--seconds", "20")
    t.join(20)
    res = _result(dev)
    assert rc == [0]
    assert _seqs(db)[0] == list(range(1, 201)) and res["acked"] == 200


def test_sync_when_wrong_key_exit_4_and_device_unchanged(tmp_path, capsys):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"master": "00" * 32}))
    db = str(tmp_path / "depot.sqlite")
    with LineEmulator() as le:
        dev = _device("--tty", le.device_path, "--records", "50", "--seconds", "3")
        time.sleep(0.3)
        rc = ykt(["sync", "--port", le.host_path, "--keys", str(keys), "--db", db,
                  "--progress", "never"])
        res = _result(dev)
    assert rc == EXIT_PROTOCOL
    assert "authentication" in capsys.readouterr().err
    assert res["acked"] == 0 and res["sessions"] == 0
    assert _seqs(db)[0] == []


def test_sync_when_forged_blacklist_pushed_exit_1_and_nothing_activated(tmp_path, capsys):
    forged = tmp_path / "bl.ykc"
    forged.write_bytes(auth_host.make_content(b"\x01" * 32, wire_host.K_BLACKLIST_FULL, 99,
                                              b"\x00" * 800))
    db = str(tmp_path / "depot.sqlite")
    with LineEmulator() as le:
        dev = _device("--tty", le.device_path, "--records", "10", "--seconds", "20")
        time.sleep(0.3)
        rc = ykt(["sync", "--port", le.host_path, "--test-keys", "--db", db, "--blacklist",
                  str(forged), "--progress", "never"])
        # the session was left open by the failed command: end it the way a cable pull does
        res = _result(dev, timeout=40)
    assert rc == EXIT_FAIL
    assert "content refused" in capsys.readouterr().err
    assert res["versions"] == [0, 0, 0, 0] and res["applied"] == []


def test_sync_when_cable_pulled_mid_pull_on_real_recordlog_resume_loses_and_doubles_nothing(
    tmp_path,
):
    # the device runs storage's RecordLog on a file-backed emulated NOR, taps every 20 ms
    db = str(tmp_path / "depot.sqlite")
    nor = str(tmp_path / "flash.nor")
    with LineEmulator() as le:
        dev = _device("--tty", le.device_path, "--nor", nor, "--records", "1200",
                      "--tap-ms", "20", "--seconds", "40", "--sessions", "2")
        time.sleep(0.5)
        le.cut_after("a2b", 15000)  # device -> host dies mid-pull (~1/4 of the records)
        rc1 = ykt(["sync", "--port", le.host_path, "--test-keys", "--db", db, "--timeout",
                   "1", "--progress", "never"])
        got1 = len(_seqs(db)[0])
        le.restore()
        time.sleep(0.2)
        rc2 = ykt(["sync", "--port", le.host_path, "--test-keys", "--db", db,
                   "--progress", "never"])
        res = _result(dev, timeout=60)
    assert rc1 == 3 and 0 < got1 < 1200  # the first sync really was cut short
    assert rc2 == 0
    seqs, data = _seqs(db)
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 1200
    assert res["acked"] == len(seqs), res
    assert all(bytes(data[s]) == bytes(make_record(s)) for s in seqs[:: 97])


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


def test_sync_when_device_connects_out_over_tls_records_arrive(tmp_path):
    pem = _self_signed(tmp_path)
    db = str(tmp_path / "depot.sqlite")
    port = _free_port()
    import threading

    rc = []
    t = threading.Thread(target=lambda: rc.append(ykt(
        ["sync", "--port", "listen://127.0.0.1:%d" % port, "--tls-cert", pem, "--test-keys",
         "--db", db, "--progress", "never", "--accept-timeout", "10"])))
    t.start()
    _wait_listening(port)
    dev = _device("--connect", "127.0.0.1:%d" % port, "--tls", "1", "--records", "300",
                  "--seconds", "20")
    t.join(20)
    res = _result(dev)
    assert rc == [0], res
    assert _seqs(db)[0] == list(range(1, 301)) and res["acked"] == 300
