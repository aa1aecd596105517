"""The field engineer's kit end to end against the emulated esp32s3 board (board.py on the
unix port through boards/shim, emu.s3world) with the real mpremote over a pty:
build (reproducible) -> provision (a fleet CSV, random keys, never printed) -> deploy
(skip unchanged, verify by hash) -> verify (self-test checklist, exit code) -> the board
boots from the built image and its first sync authenticates with the provisioned key."""

import csv
import json
import os
import stat
import threading

import pytest

from depot import station
from depot.client import Keyring
from depot.db import DepotDB
from emu import issuer, s3world, t0
from emu.psam import Psam
from ykt import cli
from ykt.cmd_sync import accept_port

DEV = "00000A01"


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return tmp_path_factory.mktemp("kit")


def test_field_kit_build_when_run_twice_gives_the_same_bytes(kit, capsys):
    outs = []
    for d in ("b1", "b2"):
        assert cli.main(["flash", "build", "--target", "s3emu", "-o", str(kit / d)]) == 0
        outs.append(json.loads((kit / d / "s3emu" / "manifest.json").read_text()))
    assert outs[0] == outs[1] and len(outs[0]["files"]) > 40
    assert outs[0]["build_sha256"] in capsys.readouterr().out


def test_field_kit_provision_a_fleet_registers_keys_it_never_prints(kit, capsys):
    fleet = kit / "fleet.csv"
    with open(fleet, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["device_id", "line", "vehicle"])
        w.writerow([DEV, 801, "B-1234"])
        w.writerow(["00000A02", 12, "B-1235"])
    ring = kit / "keyring.json"
    assert cli.main(["flash", "provision", "--fleet", str(fleet), "--keyring", str(ring),
                     "--depot", "127.0.0.1:1", "--wifi-ssid", "depot-7", "--wifi-key",
                     "test-only", "--test-keys", "-o", str(kit / "prov")]) == 0
    out = capsys.readouterr().out
    keys = json.loads(ring.read_text())["devices"]
    assert sorted(keys) == [DEV, "00000A02"] and keys[DEV] != keys["00000A02"]
    for k in keys.values():
        assert k not in out and k.upper() not in out
    assert stat.S_IMODE(os.stat(kit / "prov" / DEV / "keys.bin").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ring).st_mode) == 0o600


def test_field_kit_provision_when_key_file_given_signs_with_it_and_pins_its_public_key(
        tmp_path, capsys):
    """The back office's private key comes from a file (ykt depot keygen, mode 0600), never
    from the command line; the board gets only its public key, and the configuration
    verifies under that key and not under the test key."""
    from depot import content
    from validator.sync import auth_host

    key = tmp_path / "backoffice.key"
    assert cli.main(["depot", "keygen", "-o", str(key)]) == 0
    priv = content.load_private(str(key))
    assert cli.main(["flash", "provision", "--device-id", DEV, "--keyring",
                     str(tmp_path / "ring.json"), "--key-file", str(key), "-o",
                     str(tmp_path / "prov")]) == 0
    out = capsys.readouterr().out
    assert priv.hex() not in out and priv.hex().upper() not in out
    keys_bin = (tmp_path / "prov" / DEV / "keys.bin").read_bytes()
    pub = content.load_public(str(key))
    assert pub in keys_bin and priv not in keys_bin
    cfg = (tmp_path / "prov" / DEV / "config.bin").read_bytes()
    assert content.verify(pub, cfg) is not None
    assert content.verify(auth_host.content_public(content.test_key()), cfg) is None


def _cert(path, ca):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "depot CA" if ca else "depot")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert.public_bytes(serialization.Encoding.DER)


def test_field_kit_provision_with_tls_ca_pins_the_depot_ca_on_the_board(kit, capsys):
    ca = _cert(kit / "ca.pem", True)
    ring = kit / "ring-ca.json"
    assert cli.main(["flash", "provision", "--device-id", DEV, "--keyring", str(ring),
                     "--depot", "depot.local:7700", "--tls-ca", str(kit / "ca.pem"),
                     "--test-keys", "-o", str(kit / "prov-ca")]) == 0
    d = kit / "prov-ca" / DEV
    assert (d / "depot_ca.der").read_bytes() == ca  # DER, as the board's TLS wants it
    board = json.loads((d / "board.json").read_text())
    assert board["tls"] is True and board["tls_ca"] == "depot_ca.der"
    _cert(kit / "server.pem", False)  # a server certificate is not what to pin
    assert cli.main(["flash", "provision", "--device-id", DEV, "--keyring", str(ring),
                     "--tls-ca", str(kit / "server.pem"), "--test-keys",
                     "-o", str(kit / "prov-x")]) == 2
    assert "not a CA certificate" in capsys.readouterr().err
    assert cli.main(["flash", "provision", "--device-id", DEV, "--keyring", str(ring),
                     "--tls-ca", str(kit / "none.pem"), "--test-keys",
                     "-o", str(kit / "prov-y")]) == 3
    assert cli.main(["flash", "verify", "--port", str(kit / "no-such-tty")]) == 3
    assert "no such serial port" in capsys.readouterr().err


def test_field_kit_bad_fleet_row_is_one_line_exit_2(kit, capsys):
    bad = kit / "bad.csv"
    bad.write_text("device_id,line,vehicle\nXYZ,801,B\n")
    assert cli.main(["flash", "provision", "--fleet", str(bad), "--keyring",
                     str(kit / "k2.json"), "--test-keys", "-o", str(kit / "p2")]) == 2
    assert "line 2" in capsys.readouterr().err


@pytest.fixture(scope="module")
def board(kit):
    keys = issuer.load_master_keys()
    term = bytes.fromhex("000008010001")
    lterm = b"\x99" + term[1:]
    psams = [t0.T0Card(Psam(keys, terminal_no=term, serial=bytes(4) + term)),
             t0.T0Card(Psam(issuer.local_master_keys(keys), terminal_no=lterm,
                            serial=bytes(4) + lterm, app="local"))]
    w = s3world.S3World(str(kit / "bus"), psams, unique_id="a0b1c2d3" + DEV)
    yield w
    w.stop()


def test_field_kit_deploy_then_verify_then_first_sync(kit, board, capsys):
    w = board
    port = w.repl()
    try:
        args = ["flash", "deploy", "--port", port, "--build", str(kit / "b1" / "s3emu"),
                "--device", str(kit / "prov" / DEV)]
        assert cli.main(args) == 0
        out = capsys.readouterr().out
        assert " 0 unchanged" in out and "verified" in out
        assert cli.main(args) == 0  # again: nothing to copy
        assert "0 to copy" in capsys.readouterr().out
        assert cli.main(["flash", "verify", "--port", port]) == 0
        out = capsys.readouterr().out
        for name in ("flash_plan", "keys", "config", "clock", "pn532", "psam0", "psam1",
                     "wifi"):
            assert "[PASS] %s" % name in out, out
        assert "terminal 000008010001" in out and "verify: PASS" in out
    finally:
        w.stop_repl()
    # the board boots its service from the built image; the depot knows only the keyring
    man = json.loads((kit / "b1" / "s3emu" / "manifest.json").read_text())
    port_no = _free_port()
    bj = json.loads((w_path := kit / "bus" / "board.json").read_text())
    bj.update(depot="127.0.0.1:%d" % port_no, retry_s=1)
    w_path.write_text(json.dumps(bj))
    w.start(timeout=60, image=str(kit / "b1" / "s3emu" / man["romfs"]))
    db = DepotDB(str(kit / "depot.sqlite"))
    ring = Keyring.load(str(kit / "keyring.json"))
    t = threading.Timer(0.3, w.set_network, (True,))
    t.start()
    p = accept_port("127.0.0.1:%d" % port_no, 30, timeout=0.2)
    try:
        summary = station.sync_once(p, ring, db, pull=True)
    finally:
        p.close()
        t.join()
    assert summary["device_id"] == DEV


def _free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    n = s.getsockname()[1]
    s.close()
    return n
