"""ykt depot blacklist: the risk loop -- propose cards from anomalies, approve, publish --
and the back office's own tools: build a list body from card numbers, sign it."""
# Registered into the `ykt depot` group by ykt/cmd_depot.py (modules ykt/depot_*.py).
# Library: depot.risk (CLEARING.md "Risk loop"), depot.content (the signer).
import json

from ykt import argtypes as T
from ykt.cli import EXIT_IO, EXIT_USAGE, CommandError, read_bytes
from ykt.depot_clear import open_db
from ykt.depot_content import add_key_options, signing_key, write_signed

HELP = """Cards that clearing flagged (anomalies of the chosen reasons: TAC failure, ATC
repeat or regression, value lost from the balance chain, two vehicles too close) are
proposed for the blacklist; an operator approves or rejects each proposal; publish signs
the next blacklist version (a full list and a delta against the previous version) and
stores it in the database, from where the station pushes it to every validator at its
next sync."""


def register(group):
    p = group.add_parser("blacklist", help="propose, approve and publish blacklist entries",
                         description=HELP)
    sub = p.add_subparsers(dest="blacklist_verb", metavar="VERB")
    pr = sub.add_parser("propose", help="propose cards from open anomalies")
    pr.add_argument("--db", required=True)
    pr.add_argument("--reason", action="append", default=[],
                    help="reason code or kind that proposes (repeatable; default: %s)"
                    % "TAC_MISMATCH, ATC_REPEAT, ATC_REGRESSION, BAL_LOST, TWO_VEHICLES")
    pr.set_defaults(func=do_propose)
    ap = sub.add_parser("approve", help="an operator approves proposals (ids or card numbers)")
    ap.add_argument("--db", required=True)
    ap.add_argument("--by", required=True, help="the approving operator's name")
    ap.add_argument("--reject", action="store_true", help="reject them instead")
    ap.add_argument("ids", nargs="+", help="proposal ids or card numbers")
    ap.set_defaults(func=do_approve)
    ls = sub.add_parser("list", help="the proposals and their state")
    ls.add_argument("--db", required=True)
    ls.add_argument("--state", help="proposed, approved or rejected")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=do_list)
    pu = sub.add_parser("publish", help="sign and store the next blacklist version")
    pu.add_argument("--db", required=True)
    add_key_options(pu)
    pu.set_defaults(func=do_publish)
    b = sub.add_parser("build", help="card numbers (one 20-digit serial a line) -> a list "
                       "body (storage FORMAT.md §5)")
    b.add_argument("cards", help="text file: one application serial a line, # comments")
    b.add_argument("--delta-base", type=T.int_range(1, 0xFFFFFFFF), metavar="VERSION",
                   help="build a delta (additions) against that version instead of a full list")
    b.add_argument("-o", "--output", required=True)
    b.set_defaults(func=do_build)
    sg = sub.add_parser("sign", help="sign a list body (ykt depot blacklist build) for "
                        "validators")
    sg.add_argument("body")
    sg.add_argument("--delta", action="store_true",
                    help="the body is a delta (build --delta-base), not a full list")
    sg.add_argument("--version", required=True, type=T.int_range(1, 0xFFFFFFFF),
                    help="greater than every earlier blacklist version")
    sg.add_argument("-o", "--output", required=True)
    add_key_options(sg)
    sg.set_defaults(func=do_sign)
    p.set_defaults(func=lambda _a: p.print_help() or 0)


def _run(args, f):
    db = open_db(args.db)
    try:
        return f(db)
    except ValueError as e:
        raise CommandError(str(e), EXIT_USAGE)
    finally:
        db.close()


def do_propose(args):
    from depot import risk

    new = _run(args, lambda db: risk.propose(db, args.reason or None))
    for p in new:
        print("proposal %d: card %s (%s; anomalies %s)" % (p["id"], p["card"], p["reason"],
                                                          p["anomaly_ids"]))
    print("%d new proposals" % len(new))
    return 0


def do_approve(args):
    from depot import risk

    done = _run(args, lambda db: risk.decide(db, args.ids, args.by, not args.reject))
    for p in done:
        print("proposal %d: card %s %s by %s" % (p["id"], p["card"], p["state"], args.by))
    if not done:
        raise CommandError("no pending proposal matches %s" % " ".join(args.ids), EXIT_USAGE)
    return 0


def do_list(args):
    from depot import risk

    rows = _run(args, lambda db: risk.proposals(db, args.state))
    if args.json:
        print(json.dumps(rows, indent=1, sort_keys=True))
        return 0
    for p in rows:
        print("%4d %-20s %-9s %-28s by %-10s version %s" % (
            p["id"], p["card"], p["state"], p["reason"], p["approved_by"] or "-",
            p["version"] if p["version"] is not None else "-"))
    print("%d proposals" % len(rows))
    return 0


def do_publish(args):
    from depot import risk

    key = signing_key(args)[0]
    r = _run(args, lambda db: risk.publish(db, key))
    if r is None:
        print("nothing to publish: no approved card waits for a version")
        return 0
    print("published blacklist version %d (full: %d cards; delta against %d: %d added)"
          % (r["version"], r["full_keys"], r["base"], r["added"]))
    return 0


def do_build(args):
    from depot import risk
    from validator.storage import blacklist_host

    try:
        with open(args.cards) as f:
            lines = [ln.split("#")[0].strip() for ln in f]
    except OSError as e:
        raise CommandError("%s: %s" % (args.cards, e.strerror or e), EXIT_IO)
    keys = set()
    for i, ln in enumerate(lines):
        if not ln:
            continue
        if len(ln) != 20 or not ln.isdigit():
            raise CommandError("%s:%d: expected a 20-digit card serial, got %r"
                               % (args.cards, i + 1, ln), EXIT_USAGE)
        keys.add(risk.card_key(ln))
    keys = sorted(keys)
    if args.delta_base:
        body = blacklist_host.make_body(blacklist_host.KIND_DELTA,
                                        [(blacklist_host.OP_ADD, k) for k in keys],
                                        base=args.delta_base)
    else:
        body = blacklist_host.make_body(blacklist_host.KIND_FULL, keys)
    with open(args.output, "wb") as f:
        f.write(body)
    print("%s: %s of %d cards, %d bytes (unsigned: ykt depot blacklist sign)"
          % (args.output, "delta against v%d" % args.delta_base if args.delta_base
             else "full list", len(keys), len(body)))
    return 0


def do_sign(args):
    import struct

    from validator.sync import wire_host

    body = read_bytes(args.body)
    hdr = 8 if args.delta else 4  # base(4) count(4) entries(9) | count(4) keys(8)
    n = struct.unpack_from(">I", body, hdr - 4)[0] if len(body) >= hdr else -1
    if n < 0 or len(body) != hdr + n * (9 if args.delta else 8):
        raise CommandError("%s: not a blacklist %s body (ykt depot blacklist build%s)"
                           % (args.body, "delta" if args.delta else "full-list",
                              " --delta-base" if args.delta else ""), EXIT_USAGE)
    kind = wire_host.K_BLACKLIST_DELTA if args.delta else wire_host.K_BLACKLIST_FULL
    return write_signed(args, kind, args.version, body)
