"""TLS to the depot with its certificate checked against the CA pinned at flashing
(validator.sync.transport.tcp_connect ca=, on the MicroPython unix port through
depot.devsim): a man in the middle with a self-signed certificate gets no session, the
depot whose certificate the pinned CA signed does (docs/SECURITY.md "Links")."""

import datetime
import json
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_sync_mp import _device, _free_port, _result, _seqs, _wait_listening

from ykt.cli import main as ykt

HOST = "127.0.0.1"


def _cert(tmp_path, name, subject, issuer=None, issuer_key=None, ca=False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    b = (x509.CertificateBuilder().subject_name(subj)
         .issuer_name(issuer.subject if issuer is not None else subj)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30)))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(
            __import__("ipaddress").ip_address(HOST)), x509.DNSName(HOST)]), critical=False)
    cert = b.sign(issuer_key or key, hashes.SHA256())
    pem = tmp_path / (name + ".pem")
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    der = tmp_path / (name + ".der")
    der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return cert, key, str(pem), str(der)


def _serve_once(pem, db, port, rc):
    rc.append(ykt(["sync", "--port", "listen://%s:%d" % (HOST, port), "--tls-cert", pem,
                   "--test-keys", "--db", db, "--progress", "never", "--accept-timeout", "8"]))


def test_tls_when_depot_certificate_not_from_the_pinned_ca_device_refuses(tmp_path):
    ca, ca_key, _, ca_der = _cert(tmp_path, "ca", "yikatong depot CA", ca=True)
    _, _, depot_pem, _ = _cert(tmp_path, "depot", HOST, issuer=ca, issuer_key=ca_key)
    _, _, mitm_pem, _ = _cert(tmp_path, "mitm", HOST)  # self-signed, same name
    # the man in the middle: a listener with its own certificate
    db = str(tmp_path / "mitm.sqlite")
    port = _free_port()
    rc = []
    t = threading.Thread(target=_serve_once, args=(mitm_pem, db, port, rc))
    t.start()
    _wait_listening(port)
    dev = _device("--connect", "%s:%d" % (HOST, port), "--tls", "1", "--tls-ca", ca_der,
                  "--records", "50", "--seconds", "10")
    res = _result(dev)
    t.join(20)
    assert res.get("refused_tls") == 1 and res["sessions"] == 0, res
    assert rc and rc[0] != 0  # the listener got no validator session
    # the genuine depot, its certificate signed by the pinned CA: records arrive
    db = str(tmp_path / "depot.sqlite")
    port = _free_port()
    rc = []
    t = threading.Thread(target=_serve_once, args=(depot_pem, db, port, rc))
    t.start()
    _wait_listening(port)
    dev = _device("--connect", "%s:%d" % (HOST, port), "--tls", "1", "--tls-ca", ca_der,
                  "--records", "50", "--seconds", "15")
    t.join(25)
    res = _result(dev)
    assert rc == [0], res
    assert _seqs(db)[0] == list(range(1, 51)) and json.dumps(res)
