"""ykt depot serve / status: the unattended depot station and its status view."""
# Registered into the `ykt depot` group by ykt/cmd_depot.py (modules ykt/depot_*.py).
import json
import os

from ykt.cli import EXIT_IO, EXIT_USAGE, CommandError

DEFAULT_DB = os.path.join("build", "depot", "depot.sqlite")

SERVE_HELP = """Serve the fleet: validators connect out over TCP (TLS with --tls-cert) and
sync themselves, many at once; each --serial port is polled for a validator on a cable.
Each session authenticates with the device registry's key (an unknown device or a wrong
key gets nothing), pulls records past the watermark (committed before ACK), pushes the
latest published content the device lacks, sets the clock and reads the fault log.
Logs are JSON lines on stderr (or --log FILE). SIGTERM: stop accepting, let running
sessions finish their current commit, exit 0. Dashboard on --http HOST:PORT."""


def register(group):
    p = group.add_parser("serve", help="run the depot station (validators sync themselves)",
                         description=SERVE_HELP)
    p.add_argument("--db", default=DEFAULT_DB,
                   help="SQLite file or postgresql://... URL (default %(default)s)")
    p.add_argument("--listen", default="0.0.0.0:7700", metavar="HOST:PORT",
                   help="where validators connect (default %(default)s; '' = no TCP)")
    p.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate")
    p.add_argument("--tls-key", metavar="PEM", help="private key for --tls-cert")
    p.add_argument("--serial", action="append", default=[], metavar="PORT",
                   help="poll this serial port for a validator (repeatable)")
    p.add_argument("--http", metavar="HOST:PORT", help="serve the fleet dashboard here")
    p.add_argument("--json-status", metavar="FILE",
                   help="keep the station's status as JSON in FILE (see `ykt depot status`)")
    p.add_argument("--stale-hours", type=float, default=24.0,
                   help="a validator not synced for this long is stale (default %(default)s)")
    p.add_argument("--log", metavar="FILE", help="JSON log lines to FILE instead of stderr")
    p.add_argument("--max-sessions", type=int, default=256,
                   help="sessions run at once (default %(default)s)")
    p.add_argument("--max-queue", type=int, default=1024,
                   help="connections waiting for a session slot before new ones are "
                   "closed (default %(default)s)")
    p.add_argument("--timeout", type=float, default=3.0,
                   help="seconds a validator may stay silent when an answer is due")
    p.add_argument("--resync-s", type=float, default=300.0,
                   help="a validator synced less than this ago is turned away before AUTH "
                   "(default %(default)s)")
    p.add_argument("--serial-poll-s", type=float, default=2.0,
                   help="seconds between polls of a serial port (default %(default)s)")
    p.add_argument("--drain-s", type=float, default=10.0,
                   help="on SIGTERM, seconds running sessions may take to finish before "
                   "each stops after its current commit (default %(default)s)")
    p.add_argument("--keys", metavar="FILE",
                   help="extra depot key file {master|devices} for devices not in the "
                   "registry (the registry is always used first)")
    p.add_argument("--test-keys", action="store_true",
                   help="the TEST master key for devices not in the registry (emulated "
                   "validators only)")
    p.set_defaults(func=do_serve)

    s = group.add_parser("status", help="the fleet and the station at a glance")
    s.add_argument("--db", default=DEFAULT_DB, help="SQLite file or postgresql:// URL")
    s.add_argument("--json-status", metavar="FILE", help="the running station's status file")
    s.add_argument("--stale-hours", type=float, default=24.0,
                   help="a validator not synced for this long is stale (default %(default)s)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=do_status)


def _fallback_keys(args):
    if not (args.keys or args.test_keys):
        return None
    from ykt.cmd_sync import _keyring

    return _keyring(args)


def _hostport(opt, v):
    """HOST:PORT checked before anything starts (a bad --listen/--http is exit 2)."""
    from depot.serve import hostport

    try:
        host, port = hostport(v)
    except ValueError:
        raise CommandError("%s %r: give HOST:PORT (e.g. 0.0.0.0:7700)" % (opt, v),
                           EXIT_USAGE) from None
    if not 0 <= port <= 65535:
        raise CommandError("%s %r: port %d is not 0..65535" % (opt, v, port), EXIT_USAGE)
    return host, port


def existing_db(url):
    """A SQLite --db that a read-only command needs must exist (never created empty)."""
    from depot import db as dbmod

    if not dbmod.is_pg_url(url) and not os.path.exists(url):
        raise CommandError("cannot read %s: no such depot database" % url, EXIT_IO)
    return url


def do_serve(args):
    from depot.serve import JsonLog, Station

    if args.listen:
        _hostport("--listen", args.listen)
    if args.http:
        _hostport("--http", args.http)
    for opt in ("max_sessions", "max_queue"):
        if getattr(args, opt) < 1:
            raise CommandError("--%s must be at least 1" % opt.replace("_", "-"), EXIT_USAGE)
    for opt in ("timeout", "resync_s", "serial_poll_s", "drain_s", "stale_hours"):
        if getattr(args, opt) < 0:
            raise CommandError("--%s must not be negative" % opt.replace("_", "-"), EXIT_USAGE)
    if args.tls_cert and not os.path.exists(args.tls_cert):
        raise CommandError("cannot read %s: no such file" % args.tls_cert, EXIT_IO)
    tls = None
    if args.tls_cert:
        tls = (args.tls_cert, args.tls_key or args.tls_cert)
    try:
        log = JsonLog(args.log)
    except OSError as e:
        raise CommandError("cannot write log %s: %s" % (args.log, e.strerror or e), EXIT_IO)
    st = Station(args.db, listen=args.listen or None, tls=tls, serial=args.serial,
                 http=args.http, json_status=args.json_status, stale_hours=args.stale_hours,
                 log=log, max_sessions=args.max_sessions, max_queue=args.max_queue,
                 timeout=args.timeout, fallback_keys=_fallback_keys(args),
                 resync_s=args.resync_s, serial_poll_s=args.serial_poll_s,
                 drain_s=args.drain_s)
    try:
        st.db()  # fail now, in one line, if the database cannot be opened
    except Exception as e:
        raise CommandError("cannot open the depot database %s: %s" % (args.db, e), EXIT_IO)
    try:
        return st.run()
    except OSError as e:
        raise CommandError("station: %s" % e, EXIT_IO)
    except ValueError as e:
        raise CommandError("station: %s" % e, EXIT_USAGE)


def do_status(args):
    from depot.dashboard import data
    from depot.serve import open_db

    out = {}
    if args.json_status:
        try:
            with open(args.json_status) as f:
                out["station"] = json.load(f)
        except (OSError, ValueError) as e:
            raise CommandError("cannot read %s: %s" % (args.json_status, e), EXIT_IO)
    existing_db(args.db)
    try:
        db = open_db(args.db)
        out["fleet"] = data.fleet(db, args.stale_hours)
        out["pending"] = data.pending(db)
        db.close()
    except Exception as e:
        raise CommandError("cannot read the depot database %s: %s" % (args.db, e), EXIT_IO)
    if args.json:
        print(json.dumps(out, indent=1, sort_keys=True, default=str))
        return 0
    st = out.get("station")
    if st:
        s = st["stats"]
        print("station %s: %s, %d syncing, %d ok, %d failed, %d records received" % (
            st.get("listen"), "stopping" if st.get("stopping") else "running", s["active"],
            s["sessions_ok"], s["sessions_failed"], s["records_new"]))
    for d in out["fleet"]:
        print("%s  %-6s line %-5s vehicle %-8s last sync %s" % (
            d["device_id"], d["state"], d.get("line") or "-", d.get("vehicle") or "-",
            "%.1f h ago" % d["age_h"] if d.get("age_h") is not None else "never"))
    p = out["pending"]
    print("pending: %s records, %.2f CNY" % (p.get("records"), (p.get("amount_fen") or 0) / 100))
    return 0
