"""ykt depot blacklist: the risk loop -- propose cards from anomalies, approve, publish."""
# Registered into the `ykt depot` group by ykt/cmd_depot.py (modules ykt/depot_*.py).
# Library: depot.risk (CLEARING.md "Risk loop").
import json

from ykt.cli import EXIT_USAGE, CommandError
from ykt.depot_clear import open_db

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
    pu.add_argument("--content-key", metavar="HEX",
                    help="the back office's 32-byte content key (default: the TEST key)")
    pu.set_defaults(func=do_publish)
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

    key = None
    if args.content_key:
        try:
            key = bytes.fromhex(args.content_key)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise CommandError("--content-key: 64 hex digits", EXIT_USAGE)
    r = _run(args, lambda db: risk.publish(db, key))
    if r is None:
        print("nothing to publish: no approved card waits for a version")
        return 0
    print("published blacklist version %d (full: %d cards; delta against %d: %d added)"
          % (r["version"], r["full_keys"], r["base"], r["added"]))
    return 0
