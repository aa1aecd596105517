"""ykt sync: pull records into the depot database, push lists/tables, set the clock.

PORT is a serial device (/dev/ttyUSB0, /dev/pts/N; pyserial serial_for_url),
tcp://host:port or socket://host:port (a validator listening), or listen://host:port to
wait for a validator that connects out. Pushed files are content containers signed by the
back office (firmware/validator/sync/PROTOCOL.md section 5); the depot cannot make or alter
them.

examples:
  ykt sync --port /dev/ttyUSB0 --keys build/depot/keys.json --export-csv records.csv
  ykt sync --port listen://0.0.0.0:7000 --keys build/depot/keys.json --fares fares.bin
  ykt sync --port socket://192.168.4.1:7000 --test-keys --json   (an emulated validator)
"""

import argparse
import json
import os

from ykt import argtypes as T
from ykt import progress
from ykt.cli import EXIT_FAIL, EXIT_IO, EXIT_PROTOCOL, EXIT_USAGE, CommandError, read_bytes

DEFAULT_DB = os.path.join("build", "depot", "depot.sqlite")
DEFAULT_KEYS = os.path.join("build", "depot", "keys.json")

# wire codes -> exit codes: who is at fault decides the code
_PROTOCOL_CODES = (1, 2, 3, 4)  # E_AUTH, E_MAC, E_REPLAY, E_PROTO


def register(sub):
    p = sub.add_parser("sync", help="sync one validator (records, lists, tables, clock)",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", required=True, type=T.port_url,
                   help="where the validator is: a serial device (/dev/ttyUSB0), "
                   "tcp://HOST:PORT or socket://HOST:PORT (it listens), or "
                   "listen://HOST:PORT (wait here for it to connect out, see --accept-timeout)")
    p.add_argument("--baud", type=T.int_range(300, 12000000), default=115200,
                   help="serial line speed in bits per second (default %(default)s; "
                   "ignored for tcp://, socket://, listen://)")
    p.add_argument("--accept-timeout", type=T.seconds(0.1, 86400), default=30.0,
                   help="with listen://h:p, how long to wait for the validator to connect, "
                   "seconds (default %(default)s)")
    p.add_argument("--tls-cert", metavar="PEM", help="with listen://: serve TLS with this cert")
    p.add_argument("--tls-key", metavar="PEM", help="private key for --tls-cert")
    p.add_argument("--db", default=DEFAULT_DB, help="depot SQLite file (default %(default)s)")
    p.add_argument("--keys", default=None,
                   help="depot key file JSON {master|devices} (default %s)" % DEFAULT_KEYS)
    p.add_argument("--test-keys", action="store_true",
                   help="use the built-in TEST master key (emulated validators only)")
    for k in ("blacklist", "blacklist-delta", "fares", "whitelist", "config"):
        p.add_argument("--" + k, metavar="FILE", help="push a signed %s container" % k)
    p.add_argument("--no-pull", action="store_true", help="do not pull records")
    p.add_argument("--no-clock", action="store_true", help="do not set the device clock")
    p.add_argument("--faults", action="store_true", help="print the device fault log")
    p.add_argument("--window", type=T.int_range(1, 8), default=4,
                   help="batches in flight, 1..8 (default %(default)s)")
    p.add_argument("--timeout", type=T.seconds(0.05, 600), default=3.0,
                   help="response timeout, seconds (default %(default)s)")
    p.add_argument("--export-csv", metavar="PATH", help="write the clearing CSV afterwards")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    progress.add_option(p, "pulls and pushes")
    p.set_defaults(func=do_sync)

    k = sub.add_parser("sync-keys", help="make a validator's sync key blob (provisioning)",
                       description="Write the 76-byte sync.keys blob a validator is flashed "
                       "with (PROTOCOL.md section 2): device id, its device key derived from "
                       "the depot master key, and the back-office content key.")
    k.add_argument("--device-id", required=True, type=T.hex_digits(8), help="8 hex digits")
    k.add_argument("--keys", default=None, help="depot key file with the master (default %s)"
                   % DEFAULT_KEYS)
    k.add_argument("--test-keys", action="store_true", help="TEST master and content keys")
    k.add_argument("--content-key", metavar="HEX", type=T.hex_digits(64),
                   help="the back office's content PUBLIC key (Ed25519), 64 hex digits")
    k.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="FILE",
                   help="blob file to write")
    k.set_defaults(func=do_sync_keys)


def _keyring(args):
    from depot.client import Keyring

    if args.test_keys:
        from depot.devsim import TEST_MASTER

        return Keyring(master=TEST_MASTER)
    path = args.keys or DEFAULT_KEYS
    try:
        return Keyring.load(path)
    except OSError as e:
        raise CommandError("cannot read key file %s: %s (use --keys FILE or --test-keys)"
                           % (path, e.strerror or e), EXIT_IO)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CommandError("key file %s: not a depot key file {master|devices}: %s"
                           % (path, e), EXIT_USAGE)


class SocketPort:
    """Serial-like wrapper of a connected TCP socket: listen:// (the validator connects out
    to the depot) and tcp:// / socket:// (the depot connects to a listening validator).
    Not pyserial's socket:// handler: its close() sleeps 0.3 s, which was 90% of a depot
    sync over TCP (0.33 s against 0.03 s of protocol), i.e. minutes on a fleet."""

    def __init__(self, sock, timeout):
        import socket

        self.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)

    @property
    def in_waiting(self):
        """Like pyserial: > 0 when a read returns at once (then read(n) takes what is there,
        up to n, in one recv); 0 makes the caller wait for one byte up to the timeout."""
        import select

        r, _, _ = select.select([self.sock], [], [], 0)
        return 65536 if r else 0

    def read(self, n):
        import socket

        try:
            return self.sock.recv(n)
        except socket.timeout:
            return b""

    def write(self, b):
        self.sock.sendall(b)
        return len(b)

    def close(self):
        self.sock.close()


def accept_port(hostport, wait_s, timeout=0.05, tls=None):
    """tls: (certfile, keyfile) to run TLS over the accepted connection (Wi-Fi depots)."""
    import socket

    host, _, port = hostport.rpartition(":")
    try:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host or "127.0.0.1", int(port)))
        srv.listen(1)
        srv.settimeout(wait_s)
        c, _ = srv.accept()
        if tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            c.settimeout(wait_s)
            c = ctx.wrap_socket(c, server_side=True)
    except socket.timeout:
        raise CommandError("no validator connected to %s within %g s" % (hostport, wait_s),
                           EXIT_IO)
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        raise CommandError("cannot listen on %s: %s" % (hostport, e), EXIT_IO)
    finally:
        try:
            srv.close()
        except Exception:
            pass
    return SocketPort(c, timeout)


def connect_port(hostport, timeout=0.05, connect_s=5.0):
    """The depot connects to a validator listening on host:port."""
    import socket

    host, _, port = hostport.rpartition(":")
    try:
        s = socket.create_connection((host or "127.0.0.1", int(port)), timeout=connect_s)
    except (OSError, ValueError) as e:
        raise CommandError("cannot connect to %s: %s" % (hostport, e), EXIT_IO)
    return SocketPort(s, timeout)


def open_port(url, baud, timeout=0.05, wait_s=30.0, tls=None):
    import serial

    if url.startswith("listen://"):
        return accept_port(url[len("listen://") :], wait_s, timeout, tls)
    for scheme in ("tcp://", "socket://"):
        if url.startswith(scheme):
            return connect_port(url[len(scheme) :], timeout)
    try:
        return serial.serial_for_url(url, baudrate=baud, timeout=timeout)
    except (serial.SerialException, ValueError, OSError) as e:
        raise CommandError("cannot open %s: %s" % (url, e), EXIT_IO)


def do_sync(args):
    from depot.db import DepotDB
    from depot.station import StationError, local_secs_since_2000, sync_once
    from validator.sync import wire_host

    pushes = []
    for opt, kind in (("blacklist", wire_host.K_BLACKLIST_FULL), ("blacklist_delta",
                      wire_host.K_BLACKLIST_DELTA), ("fares", wire_host.K_FARES),
                      ("whitelist", wire_host.K_WHITELIST), ("config", wire_host.K_CONFIG)):
        path = getattr(args, opt)
        if path:
            pushes.append((kind, path, read_bytes(path)))
    keyring = _keyring(args)
    tls = None
    if args.tls_cert:
        tls = (args.tls_cert, args.tls_key or args.tls_cert)
    port = open_port(args.port, args.baud, wait_s=args.accept_timeout, tls=tls)
    db = DepotDB(args.db)
    try:
        summary = sync_once(
            port, keyring, db, pushes,
            clock_secs=None if args.no_clock else local_secs_since_2000(),
            pull=not args.no_pull, faults=args.faults, window=args.window,
            timeout=args.timeout, progress=lambda label: progress.Bar(args.progress, label),
        )
    except StationError as e:
        if e.code is None:
            code = EXIT_IO
        elif e.code in _PROTOCOL_CODES:
            code = EXIT_PROTOCOL
        else:
            code = EXIT_FAIL
        raise CommandError(str(e), code)
    finally:
        try:
            port.close()
        except Exception:
            pass
    summary["port"] = args.port
    summary["db"] = args.db
    if args.export_csv:
        summary["csv_rows"] = db.export_csv(args.export_csv)
    db.close()
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        i = summary["info_after"]
        print("device %s fw %d.%d.%d: %d new records (%d already in depot), watermark %d, "
              "next %d" % (summary["device_id"], i["firmware"] >> 16, i["firmware"] >> 8 & 255,
                           i["firmware"] & 255, summary.get("records_new", 0),
                           summary.get("records_dup", 0), i["acked_seq"], i["next_seq"]))
        for p in summary["pushed"]:
            print("pushed %s v%d from %s" % (p["kind"], p["version"], p["file"]))
        if "clock_set" in summary:
            print("clock set")
        for line in summary.get("faults", []):
            print("fault: " + line)
    return 0


def do_sync_keys(args):
    from validator.errors import SyncError
    from validator.sync import auth_host

    dev = int(args.device_id, 16)
    ring = _keyring(args)
    kd = ring.key_for(dev)
    if kd is None:
        raise CommandError("no master or key for device %08X in the key file" % dev, EXIT_FAIL)
    if args.content_key:
        kc = bytes.fromhex(args.content_key)
    elif args.test_keys:
        from depot.devsim import TEST_CONTENT_PUB

        kc = TEST_CONTENT_PUB
    else:
        raise CommandError("--content-key HEX is required (or --test-keys)", EXIT_USAGE)
    try:
        blob = auth_host.make_keys(dev, kd, kc)
    except SyncError as e:
        raise CommandError(str(e), EXIT_FAIL)
    with open(args.out, "wb") as f:
        f.write(blob)
    print("wrote %s: device %08X, device key %s..., content public key %s..." % (
        args.out, dev, kd[:4].hex(), kc[:4].hex()))
    return 0
