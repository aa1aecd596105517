"""ykt flash: provision a validator's flash image (what a field engineer writes at install).

`ykt flash image` builds the validator's data region with a fresh record log and a parameter
store holding the device's sync key blob (`ykt sync-keys`) and its back-office-signed
configuration (city, line, repeat window; a K_CONFIG content container). Write it to the
board's data partition (esp32s3: `esptool.py write_flash 0x400000 ykt.bin`, see
boards/esp32s3_pn532/README.md), or point the unix board's config at it. Fare tables and
blacklists then arrive through the first depot sync.
"""

import argparse
import json
import os

from ykt import argtypes as T
from ykt.cli import EXIT_IO, EXIT_USAGE, CommandError, read_bytes

BOARDS = {"sim": (64 << 20, 0), "esp32s3": (32 << 20, 0x400000)}  # flash size, ykt base


def register(sub):
    p = sub.add_parser("flash", help="provision a validator flash image (keys, configuration)")
    s = p.add_subparsers(dest="flash_cmd", metavar="CMD")
    im = s.add_parser("image", help="build a provisioned flash image")
    im.add_argument("--board", choices=sorted(BOARDS), default="sim",
                    help="which validator the image is for (default %(default)s)")
    im.add_argument("--keys-blob", required=True, help="sync key blob from `ykt sync-keys`")
    im.add_argument("--config", required=True,
                    help="signed configuration container, or a JSON file signed here with "
                         "--key-file; "
                         "keys (all optional): city \"2900\", line 0..65535, repeat_window_s "
                         "0..3600, tear_keep_s 0..86400 (firmware/validator/app/CONFIG.md)")
    _signing_options(im)
    im.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="FILE",
                    help="flash image to write (sim: the whole 64 MiB NOR, inverted; esp32s3: "
                    "the ykt data partition, written at 0x400000)")
    im.set_defaults(func=do_image)
    _kit_register(s)


def _signing_options(p):
    """--key-file / --test-keys, as every signing command has them (ykt depot ...). The
    private key never goes on the command line (shell history, `ps`): the old --content-key
    HEX is refused with a pointer to --key-file."""
    from ykt.depot_content import add_key_options

    add_key_options(p)
    p.add_argument("--content-key", dest="content_key_hex", metavar="HEX", help=argparse.SUPPRESS)


def _signing_key(args, missing):
    """The 32-byte back-office private key that signs the configuration."""
    from ykt.depot_content import signing_key

    if args.content_key_hex is not None:
        raise CommandError("--content-key: a private key is not taken on the command line "
                           "(shell history, ps); give --key-file FILE (ykt depot keygen)",
                           EXIT_USAGE)
    if not (args.key_file or args.test_keys):
        raise CommandError(missing, EXIT_USAGE)
    return signing_key(args)[0]


def _config_blob(args):
    from validator.sync import auth_host, wire_host

    data = read_bytes(args.config)
    if data[:4] == auth_host.CONTENT_MAGIC:
        return data
    try:
        json.loads(data)
    except ValueError:
        raise CommandError("--config %s: neither a signed content container nor JSON"
                           % args.config, EXIT_USAGE)
    from validator.app import content

    try:
        content.parse_config(data)  # the validator's own check: it would refuse it at boot
    except ValueError as e:
        raise CommandError("--config %s: %s" % (args.config, e), EXIT_USAGE)
    kc = _signing_key(args, "a JSON --config is signed here: --key-file FILE (or --test-keys)")
    return auth_host.make_content(kc, wire_host.K_CONFIG, 1, data)


def do_image(args):
    from emu.nor import NorFlash
    from validator.app import content
    from validator.errors import SyncError
    from validator.storage import PLAN_SIM
    from validator.storage.params import ParamStore
    from validator.storage.plan_boards import partition_plan
    from validator.storage.recordlog import RecordLog
    from validator.sync import auth

    keys = read_bytes(args.keys_blob)
    try:
        dev = auth.parse_keys(keys)[0]
    except SyncError as e:
        raise CommandError("--keys-blob %s: not a sync key blob: %s" % (args.keys_blob, e),
                           EXIT_USAGE)
    cfg = _config_blob(args)
    size, base = BOARDS[args.board]
    plan = PLAN_SIM if args.board == "sim" else partition_plan(base=base)
    if os.path.exists(args.out):
        os.remove(args.out)
    f = NorFlash(size - base, path=args.out, invert=args.board == "sim")
    ps = ParamStore(f, plan["params"]).mount()
    ps.put(content.P_KEYS, keys)
    ps.put(content.P_CONFIG, cfg)
    log = RecordLog(f, plan["log"], plan["watermark"]).mount()
    log.maintain()  # first block erased: the validator can record its first tap at once
    f.close()
    print("flash image %s for device %08X (%s board, %d bytes, params %s)"
          % (args.out, dev, args.board, size - base, ", ".join(sorted(ps.names()))))
    return 0


# -- the field engineer's kit: build | provision | deploy | verify ------------------------
# build     the board's frozen firmware as .mpy files (mpy-cross, one source name: the
#           same input gives the same bytes) plus a ROMFS image of them; a manifest of
#           every file's sha256 and the build hash (sha256 of the manifest) are printed.
# provision a fresh random device key per device (os.urandom), registered with the depot
#           (depot db register_device when the registry has it, else the depot keyring
#           JSON), the key blob and the signed configuration written to a 0600 folder;
#           the key is never printed. --fleet CSV provisions one device per row.
# deploy    mpremote over the board's serial port (`connect PORT resume`): files whose
#           sha256 on the board already match are skipped, the rest copied, every file
#           checked by hash after the copy; then the keys and configuration are written
#           into the parameter store of the ykt partition by code run on the board.
# verify    a self-test run on the board, printed as a checklist: flash plan, keys,
#           configuration, clock, PN532 firmware, both PSAM ATRs and terminal numbers,
#           Wi-Fi; exit code 0 only when every check passed.
import hashlib
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = {
    # the board's firmware as frozen on the MCU
    "esp32s3": (("firmware/validator", "validator"), ("firmware/main.py", "main.py"),
                ("boards/esp32s3_pn532/board.py", "board.py"),
                ("boards/esp32s3_pn532/wiring.py", "wiring.py")),
}
# the emulated board (unix port): the same files plus the machine shim, which plays the
# part of the MCU's C modules (boards/shim), and the emulated NOR behind esp32.Partition
TARGETS["s3emu"] = TARGETS["esp32s3"] + (
    ("boards/shim/machine.py", "machine.py"), ("boards/shim/time.py", "time.py"),
    ("boards/shim/esp32.py", "esp32.py"), ("boards/shim/network.py", "network.py"),
    ("host_tools/emu/nor.py", "emu/nor.py"))
EXIT_FAIL = 1


def _kit_register(s):
    b = s.add_parser("build", help="reproducible frozen firmware (.mpy tree + ROMFS), hash")
    b.add_argument("--target", choices=sorted(TARGETS), default="esp32s3")
    b.add_argument("-o", "--output", "--out", dest="out", metavar="DIR",
                   default=os.path.join("build", "flash"),
                   help="output folder (default %(default)s)")
    b.set_defaults(func=do_build)
    p = s.add_parser("provision", help="device key, depot registration, signed configuration")
    p.add_argument("--device-id", type=T.hex_digits(8), help="8 hex digits (or --fleet)")
    p.add_argument("--line", type=T.int_range(0, 65535), default=0,
                   help="bus line until the driver signs on, 0..65535 (default %(default)s)")
    p.add_argument("--vehicle", default="")
    p.add_argument("--city", default="2900", type=T.decimal_digits(4),
                   help="home city code, 4 decimal digits (default %(default)s)")
    p.add_argument("--fleet", help="CSV of vehicles: device_id,line,vehicle[,city]")
    p.add_argument("--keyring", required=True,
                   help="the depot's keyring JSON ({\"devices\": {id: key}}), created 0600")
    p.add_argument("--depot-db", help="depot database: register_device() when it has one")
    p.add_argument("--depot", default="", help="host:port the board dials over Wi-Fi")
    p.add_argument("--wifi-ssid", default="")
    p.add_argument("--wifi-key", default="")
    _signing_options(p)
    p.add_argument("--tls-ca", metavar="PEM|DER",
                   help="the depot's CA certificate, pinned on the board: it dials the depot "
                   "over TLS and refuses a certificate that does not chain to it")
    p.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="DIR",
                   help="folder: one subfolder per device")
    p.set_defaults(func=do_provision)
    d = s.add_parser("deploy", help="build + provisioning onto a board with mpremote")
    d.add_argument("--port", required=True, help="/dev/ttyACM0, /dev/pts/N (not a symlink)")
    d.add_argument("--build", required=True, help="output folder of `ykt flash build`")
    d.add_argument("--device", required=True, help="a device folder of `ykt flash provision`")
    d.set_defaults(func=do_deploy)
    v = s.add_parser("verify", help="self-test on the board: checklist, exit code")
    v.add_argument("--port", required=True)
    v.set_defaults(func=do_verify)


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def do_build(args):
    from emu import romfs

    content = TARGETS[args.target]
    tree = os.path.join(args.out, args.target, "tree")
    if os.path.isdir(tree):
        shutil.rmtree(tree)
    mpyc = romfs.tool("mpy-cross")  # the flash (or sim) extra
    files = {}
    for src, dst in romfs._files(content):
        out = os.path.join(tree, dst[:-3] + ".mpy")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        r = subprocess.run([mpyc, "-s", "rom", "-o", out, src], capture_output=True, text=True)
        if r.returncode:
            raise CommandError("mpy-cross %s: %s" % (src, r.stderr.strip()), EXIT_FAIL)
        with open(out, "rb") as f:
            files[dst[:-3] + ".mpy"] = _sha(f.read())
    image = romfs.build(os.path.join(args.out, args.target), content=content)
    with open(image, "rb") as f:
        img_sha = _sha(f.read())
    man = {"target": args.target, "files": dict(sorted(files.items())),
           "romfs": os.path.basename(image), "romfs_sha256": img_sha}
    digest = _sha(json.dumps(man["files"], sort_keys=True).encode())
    man["build_sha256"] = digest
    with open(os.path.join(args.out, args.target, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1, sort_keys=True)
    print("build %s: %d files, build sha256 %s, romfs %s sha256 %s"
          % (args.target, len(files), digest, os.path.basename(image), img_sha))
    return 0


def _fleet_rows(args):
    import csv

    if not args.fleet:
        if not args.device_id:
            raise CommandError("--device-id or --fleet is needed", EXIT_USAGE)
        return [{"device_id": args.device_id, "line": args.line, "vehicle": args.vehicle,
                 "city": args.city}]
    rows = []
    with open(args.fleet, newline="") as f:
        for n, r in enumerate(csv.DictReader(f), 2):
            try:
                dev = r["device_id"].strip()
                int(dev, 16)
                if len(dev) != 8:
                    raise ValueError(dev)
                rows.append({"device_id": dev, "line": int(r.get("line") or 0),
                             "vehicle": (r.get("vehicle") or "").strip(),
                             "city": (r.get("city") or args.city).strip()})
            except (KeyError, ValueError) as e:
                raise CommandError("--fleet %s line %d: need device_id (8 hex), line, vehicle"
                                   " (%s)" % (args.fleet, n, e), EXIT_USAGE)
    return rows


def _write_secret(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


CA_FILE = "depot_ca.der"  # on the board's filesystem, beside board.json


def _read_ca(path):
    """The depot CA certificate (PEM or DER) -> DER, checked to be a CA certificate."""
    from cryptography import x509

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise CommandError("cannot read %s: %s" % (path, e.strerror or e), EXIT_IO) from None
    try:
        cert = (x509.load_pem_x509_certificate(raw) if b"-----BEGIN" in raw
                else x509.load_der_x509_certificate(raw))
    except ValueError as e:
        raise CommandError("%s: not an X.509 certificate: %s" % (path, e), EXIT_USAGE) from None
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    if not ca:
        raise CommandError("%s: not a CA certificate (basicConstraints CA:TRUE): pin the "
                           "depot's CA, not its server certificate" % path, EXIT_USAGE)
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.DER)


def do_provision(args):
    from validator.sync import auth_host, wire_host

    kc = _signing_key(args, "the configuration is signed here: --key-file FILE (or --test-keys)")
    ca_der = _read_ca(args.tls_ca) if args.tls_ca else None
    ring = {"devices": {}}
    if os.path.exists(args.keyring):
        with open(args.keyring) as f:
            ring = json.load(f)
        ring.setdefault("devices", {})
    db = None
    if args.depot_db:
        from depot.serve import open_db

        db = open_db(args.depot_db)
    from validator.app import content

    for row in _fleet_rows(args):
        dev = int(row["device_id"], 16)
        kd = os.urandom(32)  # the device's own sync key
        cfg = {"city": row["city"], "line": row["line"]}
        body = json.dumps(cfg, sort_keys=True).encode()
        try:
            content.parse_config(body)  # the validator's own check (app/CONFIG.md)
        except ValueError as e:
            raise CommandError("device %s%s: %s" % (row["device_id"], " (--fleet %s)"
                                                      % args.fleet if args.fleet else "", e),
                               EXIT_USAGE)
        d = os.path.join(args.out, "%08X" % dev)
        os.makedirs(d, mode=0o700, exist_ok=True)
        _write_secret(os.path.join(d, "keys.bin"),
                      auth_host.make_keys(dev, kd, auth_host.content_public(kc)))
        with open(os.path.join(d, "config.bin"), "wb") as f:
            f.write(auth_host.make_content(kc, wire_host.K_CONFIG, 1, body))
        board = {"depot": args.depot, "wifi": {"ssid": args.wifi_ssid, "key": args.wifi_key},
                 "vehicle": row["vehicle"]}
        if ca_der is not None:  # the pinned CA goes to the board beside board.json
            with open(os.path.join(d, CA_FILE), "wb") as f:
                f.write(ca_der)
            board.update(tls=True, tls_ca=CA_FILE)
        _write_secret(os.path.join(d, "board.json"), json.dumps(board, indent=1).encode())
        ring["devices"]["%08X" % dev] = kd.hex()
        if db is not None:
            db.register_device(dev, kd, line=row["line"], vehicle=row["vehicle"],
                               depot=args.depot, expected_firmware=None)
        print("provisioned %08X line %d vehicle %s: key generated and registered (%s), "
              "signed configuration in %s" % (dev, row["line"], row["vehicle"] or "-",
                                              "depot registry" if db is not None
                                              else args.keyring, d))
    tmp = args.keyring + ".tmp"
    _write_secret(tmp, json.dumps(ring, indent=1, sort_keys=True).encode())
    os.replace(tmp, args.keyring)
    return 0


def _mpremote(port, *cmd, timeout=120, what=None):
    """Run mpremote on the board; what names the step in errors (an exec's code, which
    may carry key material, is never echoed)."""
    from emu import romfs

    exe = romfs.tool("mpremote")
    if not port.startswith(("COM", "rfc2217:", "socket:")) and not os.path.exists(port):
        raise CommandError("cannot reach %s: no such serial port (is the board plugged "
                           "in?)" % port, EXIT_IO)
    try:
        r = subprocess.run([exe, "connect", port, "resume"] + list(cmd), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CommandError("mpremote %s: no answer from %s in %d s" % (what or cmd[0], port,
                                                                       timeout), EXIT_FAIL)
    if r.returncode:
        err = (r.stderr or r.stdout).strip().splitlines()
        tb = [ln for ln in err if not ln.startswith("ykt") and "unhexlify" not in ln]
        raise CommandError("mpremote %s on %s failed: %s" % (what or cmd[0], port,
                                                             " | ".join(tb[-3:])), EXIT_FAIL)
    return r.stdout


_HASHES = """
import hashlib, binascii
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return '-'
    h = hashlib.sha256()
    b = bytearray(512)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(b[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
for p in %r:
    print('H', p, _h(p))
"""


def _board_hashes(port, paths):
    out = _mpremote(port, "exec", _HASHES % (list(paths),), what="file hashes")
    got = {}
    for ln in out.splitlines():
        p = ln.split()
        if len(p) == 3 and p[0] == "H":
            got[p[1]] = p[2]
    return got


_PARAMS = """
import esp32, binascii
from board import PartitionFlash
from validator.storage.plan_boards import partition_plan
from validator.storage.params import ParamStore
import wiring
part = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=wiring.FLASH_PARTITION)[0]
fl = PartitionFlash(part)
ps = ParamStore(fl, partition_plan(base=wiring.FLASH_PARTITION_BASE)['params']).mount()
from validator.app import content
ps.put(content.P_KEYS, binascii.unhexlify(%r))
ps.put(content.P_CONFIG, binascii.unhexlify(%r))
print('PARAMS', ' '.join(sorted(ps.names())))
import board
board.Board().set_time(%d)  # the battery-backed clock, from the engineer's laptop
"""


def do_deploy(args):
    with open(os.path.join(args.build, "manifest.json")) as f:
        man = json.load(f)
    tree = os.path.join(args.build, "tree")
    want = dict(man["files"])
    with open(os.path.join(args.device, "board.json"), "rb") as f:
        want["board.json"] = _sha(f.read())
    if os.path.exists(os.path.join(args.device, CA_FILE)):  # the pinned depot CA
        with open(os.path.join(args.device, CA_FILE), "rb") as f:
            want[CA_FILE] = _sha(f.read())
    have = _board_hashes(args.port, want)
    todo = [p for p in sorted(want) if have.get(p) != want[p]]
    print("deploy: %d files, %d unchanged, %d to copy" % (len(want), len(want) - len(todo),
                                                          len(todo)))
    dirs = sorted({os.path.dirname(p) for p in todo if os.path.dirname(p)})
    if dirs:
        _mpremote(args.port, "exec", "import os\nfor d in %r:\n try: os.mkdir(d)\n "
                  "except OSError: pass" % (_parents(dirs),), what="mkdir")
    step = 16
    for i in range(0, len(todo), step):
        cmd = []
        for p in todo[i:i + step]:
            src = (os.path.join(args.device, p) if p in ("board.json", CA_FILE)
                   else os.path.join(tree, p))
            cmd += ["fs", "cp", src, ":" + p, "+"]
        _mpremote(args.port, *cmd[:-1])
        done = min(i + step, len(todo))
        bar = "#" * (30 * done // len(todo))
        print("  [%-30s] %d/%d" % (bar, done, len(todo)), flush=True)
    have = _board_hashes(args.port, want)
    bad = [p for p in want if have.get(p) != want[p]]
    if bad:
        raise CommandError("deploy: hash mismatch on the board after copy: %s"
                           % ", ".join(bad[:5]), EXIT_FAIL)
    from validator.sync import auth

    with open(os.path.join(args.device, "keys.bin"), "rb") as f:
        keys = f.read()
    with open(os.path.join(args.device, "config.bin"), "rb") as f:
        cfg = f.read()
    import time

    from depot.station import local_secs_since_2000

    out = _mpremote(args.port, "exec", _PARAMS % (keys.hex(), cfg.hex(),
                                                   local_secs_since_2000(time.time())),
                    what="parameter store write")
    if "PARAMS" not in out:
        raise CommandError("deploy: the parameter store was not written: %s" % out[-300:],
                           EXIT_FAIL)
    print("deploy: verified %d files by sha256 (build %s), device %08X provisioned"
          % (len(want), man["build_sha256"][:16], auth.parse_keys(keys)[0]))
    return 0


def _parents(dirs):
    out = set()
    for d in dirs:
        parts = d.split("/")
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]))
    return sorted(out, key=lambda d: d.count("/"))


_SELFTEST = """
def _check(name, fn):
    try:
        ok, detail = fn()
    except Exception as e:
        ok, detail = False, '%s: %s' % (type(e).__name__, e)
    print('CHECK', name, 'PASS' if ok else 'FAIL', detail)
import board, machine, wiring
from validator.app import content
from validator.storage.plan_boards import partition_plan, check, ESP32S3_FLASH_SIZE, PLAN_ESP32S3
from validator.storage.params import ParamStore
b = board.Board()
def _plan():
    bl = PLAN_ESP32S3['blacklist']
    need = bl[0] + bl[1] - wiring.FLASH_PARTITION_BASE
    ok = check(PLAN_ESP32S3, ESP32S3_FLASH_SIZE) and b.flash.size >= need
    return ok, 'ykt partition %d KiB, plan needs %d KiB' % (b.flash.size // 1024, need // 1024)
_check('flash_plan', _plan)
ps = ParamStore(b.flash, b.flash_plan['params']).mount()
def _keys():
    from validator.sync import auth
    k = ps.get(content.P_KEYS)
    if k is None:
        return False, 'no key blob'
    dev = auth.parse_keys(k)[0]
    return True, 'device %08X' % dev
_check('keys', _keys)
_check('config', lambda: (ps.get(content.P_CONFIG) is not None, 'signed configuration stored'))
def _clock():
    s = b.rtc_read()
    return s is not None, 'DS3231 %s' % (s if s is not None else 'not set (oscillator stopped)')
_check('clock', _clock)
def _nfc():
    from validator.drivers.pn532 import Pn532
    v = Pn532(b.pn532, b).begin()
    return v[0] == 0x32, 'PN5%02X firmware %d.%d' % v[:3]
_check('pn532', _nfc)
from validator.txn.setup import _boot
import binascii
for slot in (0, 1):
    def _psam():
        p = _boot(b, slot, slot == 1)
        return p.ready, 'terminal %s' % binascii.hexlify(p.terminal).decode()
    _check('psam%d' % slot, _psam)
def _wifi():
    if b.wlan is None:
        return False, 'no depot in board.json'
    up = 'connected' if b.wlan.isconnected() else 'not in range now'
    return True, 'station for %s, %s' % (b.sync_cfg['connect'], up)
_check('wifi', _wifi)
"""


def do_verify(args):
    out = _mpremote(args.port, "exec", _SELFTEST, timeout=180, what="self-test")
    checks = []
    for ln in out.splitlines():
        p = ln.split(None, 3)
        if len(p) >= 3 and p[0] == "CHECK":
            checks.append((p[1], p[2] == "PASS", p[3] if len(p) > 3 else ""))
    if not checks:
        raise CommandError("verify: the board ran no self-test:\n" + out[-600:], EXIT_FAIL)
    for name, ok, detail in checks:
        print("  [%s] %-10s %s" % ("PASS" if ok else "FAIL", name, detail))
    failed = [c for c in checks if not c[1]]
    print("verify: %s (%d/%d checks passed)" % ("FAIL" if failed else "PASS",
                                                 len(checks) - len(failed), len(checks)))
    return EXIT_FAIL if failed else 0
