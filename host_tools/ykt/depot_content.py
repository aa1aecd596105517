"""ykt depot keygen | fares | whitelist | config | clock | key: the back office's signing tools."""
# Registered into the `ykt depot` group by ykt/cmd_depot.py (modules ykt/depot_*.py).
# Library: depot.content (key files, the one signer). Every signing command needs
# --key-file FILE (a private key from `ykt depot keygen`, mode 0600) or, explicitly,
# --test-keys (THE test key, depot.testkeys: refused by any validator in service). No key
# is ever printed; the output names the key file and the public key's first bytes.
import os
import struct

from ykt import argtypes as T
from ykt.cli import EXIT_IO, EXIT_USAGE, CommandError, read_bytes, read_json

HELP = """Content for validators is signed here, with the back office's Ed25519 private key
(docs/SECURITY.md): validators hold only its public key, so neither a depot nor a stolen
validator can make content any validator accepts. Versions must grow per kind: a validator
refuses a version not newer than the one it has."""


def add_key_options(p):
    p.add_argument("--key-file", metavar="FILE",
                   help="the back office's private key file (ykt depot keygen)")
    p.add_argument("--test-keys", action="store_true",
                   help="sign with THE test key (a validator in service refuses it)")


def signing_key(args):
    """-> (private key, label) from --key-file / --test-keys; one of them is required."""
    from depot import content as C

    if args.key_file and args.test_keys:
        raise CommandError("--key-file and --test-keys: give one", EXIT_USAGE)
    if args.test_keys:
        return C.test_key(), "the TEST key"
    if not args.key_file:
        raise CommandError("a signing key is needed: --key-file FILE (or --test-keys)",
                           EXIT_USAGE)
    try:
        k = C.load_private(args.key_file)
    except C.KeyFileError as e:
        raise CommandError(str(e), EXIT_IO if "cannot read" in str(e) else EXIT_USAGE)
    return k, "the key in %s" % args.key_file


def write_signed(args, kind, version, body):
    from depot import content as C
    from validator.sync import auth_host

    key, label = signing_key(args)
    try:
        blob = C.sign_content(kind, version, body, key)
    except ValueError as e:
        raise CommandError(str(e), EXIT_USAGE)
    try:
        with open(args.output, "wb") as f:
            f.write(blob)
    except OSError as e:
        raise CommandError("%s: %s" % (args.output, e.strerror or e), EXIT_IO)
    print("%s: %s v%d, %d bytes (body %d), signed with %s (public key %s...)"
          % (args.output, _kind_name(kind), version, len(blob), len(body), label,
             auth_host.content_public(key)[:4].hex()))
    return 0


def _kind_name(kind):
    from validator.sync import wire_host

    return wire_host.KIND_NAMES[kind]


def _version(p):
    p.add_argument("--version", required=True, type=T.int_range(1, 0xFFFFFFFF),
                   help="content version: greater than every earlier one of this kind")


def register(group):
    k = group.add_parser("keygen", help="make the back office's content signing key",
                         description=HELP)
    k.add_argument("-o", "--output", required=True, metavar="FILE.key",
                   help="private key file to create (mode 0600, never overwritten); the "
                   "public key goes beside it as FILE.pub")
    k.set_defaults(func=do_keygen)

    f = group.add_parser("fares", help="sign fare tables", description=HELP)
    fs = f.add_subparsers(dest="fares_verb", metavar="VERB")
    s = fs.add_parser("sign", help="compile a JSON fare table and sign it")
    s.add_argument("table", help="JSON fare table (the version is its \"version\")")
    s.add_argument("-o", "--output", required=True)
    add_key_options(s)
    s.set_defaults(func=do_fares_sign)

    w = group.add_parser("whitelist", help="sign the accepted-issuer list", description=HELP)
    ws = w.add_subparsers(dest="whitelist_verb", metavar="VERB")
    s = ws.add_parser("sign", help="JSON [{\"org\": \"FFFF\", \"city\": \"2900\"}, ...] -> "
                      "signed K_WHITELIST")
    s.add_argument("list", help="JSON list of accepted issuers (org, city: 4 hex digits, "
                   "FFFF = any)")
    _version(s)
    s.add_argument("-o", "--output", required=True)
    add_key_options(s)
    s.set_defaults(func=do_whitelist_sign)

    c = group.add_parser("config", help="sign a device configuration", description=HELP)
    cs = c.add_subparsers(dest="config_verb", metavar="VERB")
    s = cs.add_parser("sign", help="JSON device configuration -> signed K_CONFIG")
    s.add_argument("config", help="JSON object (CONFIG.md; checked as the validator would)")
    _version(s)
    s.add_argument("-o", "--output", required=True)
    add_key_options(s)
    s.set_defaults(func=do_config_sign)

    ck = group.add_parser("clock", help="sign a clock correction past the step bound",
                          description=HELP)
    cks = ck.add_subparsers(dest="clock_verb", metavar="VERB")
    s = cks.add_parser("sign", help="device seconds for one device (or all) -> K_CLOCK")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--device-id", type=T.hex_digits(8), help="8 hex digits")
    g.add_argument("--all", action="store_true", help="for every device")
    s.add_argument("--secs", required=True, type=T.int_range(757382400, 0xFFFFFFFF),
                   help="device seconds since 2000-01-01 (2024 or later)")
    _version(s)
    s.add_argument("-o", "--output", required=True)
    add_key_options(s)
    s.set_defaults(func=do_clock_sign)

    r = group.add_parser("key", help="rotate the content signing key", description=HELP)
    rs = r.add_subparsers(dest="key_verb", metavar="VERB")
    s = rs.add_parser("rotate", help="K_KEY: the next public key, signed by the current key "
                      "(which it revokes on every validator that takes it)")
    s.add_argument("--new-pub", required=True, metavar="FILE.pub",
                   help="the next key's public key file (ykt depot keygen)")
    _version(s)
    s.add_argument("-o", "--output", required=True)
    add_key_options(s)
    s.set_defaults(func=do_key_rotate)


def do_keygen(args):
    from depot import content as C

    if os.path.exists(args.output) or os.path.exists(C.public_path(args.output)):
        raise CommandError("%s exists: a key file is never overwritten" % args.output,
                           EXIT_USAGE)
    try:
        pub = C.keygen(args.output)
    except OSError as e:
        raise CommandError("%s: %s" % (args.output, e.strerror or e), EXIT_IO)
    print("%s: new private key (mode 0600; keep it in the back office), public key in %s "
          "(%s...)" % (args.output, C.public_path(args.output), pub[:4].hex()))
    return 0


def do_fares_sign(args):
    from emu import farec
    from validator.rules import table as ft
    from validator.sync import wire_host

    desc = read_json(args.table, "a JSON fare table")
    try:
        body = farec.compile_table(desc)
        version = ft.FareTable(body).version
    except Exception as e:  # the compiler's own messages (ykt fares compile checks more)
        raise CommandError("%s: not a fare table: %s" % (args.table, e), EXIT_USAGE)
    return write_signed(args, wire_host.K_FARES, version, body)


def whitelist_body(entries):
    """K_WHITELIST body: sorted 4-byte entries org(2) city(2) (FFFF = any), as the fare
    table's accept list (rules/FORMAT.md)."""
    out = set()
    if not isinstance(entries, list):
        raise ValueError("a JSON list of {\"org\": ..., \"city\": ...}")
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or set(e) - {"org", "city"}:
            raise ValueError("entry %d: an object with \"org\" and \"city\"" % i)
        v = []
        for k in ("org", "city"):
            x = e.get(k, "FFFF")
            if not isinstance(x, str) or len(x) != 4 or not T.is_hex(x):
                raise ValueError("entry %d: %s must be 4 hex digits" % (i, k))
            v.append(int(x, 16))
        out.add(struct.pack(">HH", v[0], v[1]))
    return b"".join(sorted(out))


def do_whitelist_sign(args):
    from validator.sync import wire_host

    try:
        body = whitelist_body(read_json(args.list, "a JSON issuer list"))
    except ValueError as e:
        raise CommandError("%s: %s" % (args.list, e), EXIT_USAGE)
    return write_signed(args, wire_host.K_WHITELIST, args.version, body)


def do_config_sign(args):
    from validator.app import content
    from validator.sync import wire_host

    data = read_bytes(args.config)
    try:
        content.parse_config(data)  # the validator's own check
    except ValueError as e:
        raise CommandError("%s: %s" % (args.config, e), EXIT_USAGE)
    return write_signed(args, wire_host.K_CONFIG, args.version, data)


def do_clock_sign(args):
    from validator.sync import auth_host, wire_host

    dev = auth_host.ANY_DEVICE if args.all else int(args.device_id, 16)
    return write_signed(args, wire_host.K_CLOCK, args.version,
                        struct.pack(">II", dev, args.secs))


def do_key_rotate(args):
    from depot import content as C
    from validator.sync import wire_host

    try:
        new = C.load_public(args.new_pub)
    except C.KeyFileError as e:
        raise CommandError(str(e), EXIT_USAGE)
    return write_signed(args, wire_host.K_KEY, args.version, C.key_body(new))
