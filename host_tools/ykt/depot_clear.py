"""ykt depot clear / anomalies: clear a business day; list what clearing flagged."""
# Registered into the `ykt depot` group by ykt/cmd_depot.py (modules ykt/depot_*.py).
# Library: depot.clearing (CLEARING.md).
import json
import os
import sys

from ykt.cli import EXIT_FAIL, EXIT_IO, EXIT_USAGE, CommandError

CLEAR_HELP = """Clear one business day (04:00 to 04:00) of the depot database: every normal and
recovered record's TAC checked by the key service, gray records resolved, anomalies flagged
with reason codes, and in --out: one CSV + JSONL export per destination (local: the city's
own cards; national: other cities' T-Union cards) and issuer, each ending in a control
record (count, amount, sha256); errors-DAY (anomalies and their records), gray-DAY (every
gray record's state) and settlement-DAY.json. See host_tools/depot/CLEARING.md. Exit 1 when
a TAC failed or a record is corrupt (the files are still written)."""


def register(group):
    p = group.add_parser("clear", help="clear a business day: TAC checks, exports, settlement",
                         description=CLEAR_HELP)
    p.add_argument("--db", required=True, help="SQLite file or postgresql://... URL")
    p.add_argument("--day", help="business day YYYY-MM-DD (default: every day in the database)")
    p.add_argument("-o", "--output", "--out", dest="out",
                   default=os.path.join("build", "clearing"),
                   help="folder for the files (default %(default)s)")
    p.add_argument("--city", default="2900", help="the operator's city code (default 2900)")
    p.add_argument("--operator", help="the operator's name in the settlement")
    p.add_argument("--key-service", default="test",
                   help="test (TEST master keys, default), test-reference (pure Python), "
                   "test:KEYFILE")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=do_clear)

    a = group.add_parser("anomalies", help="list the anomalies clearing flagged")
    a.add_argument("--db", required=True, help="SQLite file or postgresql://... URL")
    a.add_argument("--kind", action="append", default=[],
                   help="only this kind or reason code (repeatable)")
    a.add_argument("--status", help="only this status (open, proposed, approved, rejected)")
    a.add_argument("--day", help="only anomalies found clearing this day")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=do_anomalies)


def open_db(path):
    from depot import clearing

    if not str(path).startswith("postgresql:") and not os.path.exists(path):
        raise CommandError("cannot read %s: no such database" % path, EXIT_IO)
    try:
        return clearing.open_database(path)
    except Exception as e:  # a driver's own error type: unreachable server, bad file
        raise CommandError("cannot open the depot database %s: %s" % (path, e), EXIT_IO)


def do_clear(args):
    from depot import clearing, keyservice

    try:
        ks = keyservice.open_keyservice(args.key_service)
    except (ValueError, OSError) as e:
        raise CommandError(str(e), EXIT_USAGE)
    if args.day is not None:
        try:
            clearing._day_bounds(args.day)
        except clearing.ClearingError as e:
            raise CommandError(str(e), EXIT_USAGE)
    db = open_db(args.db)
    try:
        kw = dict(city=args.city, operator=args.operator)
        if args.day:
            out = {args.day: clearing.clear_day(db, args.day, ks, args.out, **kw)}
        else:
            out = clearing.clear_all(db, ks, args.out, **kw)
    finally:
        db.close()
    if args.json:
        print(json.dumps(out, indent=1, sort_keys=True))
    else:
        for day, s in out.items():
            print_summary(s)
    bad = sum(s["tac_failed"] + s["corrupt"] for s in out.values())
    if bad:
        raise CommandError("%d records failed their TAC or are corrupt (see the error files)"
                           % bad, EXIT_FAIL)
    return 0


def print_summary(s):
    w = sys.stdout.write
    w("business day %s (city %s): %d records, %d paid: TAC %d verified, %d failed, %d not "
      "verifiable; %d corrupt\n" % (s["day"], s["city"], s["records_in_day"], s["paid_records"],
                                   s["tac_verified"], s["tac_failed"], s["tac_unverified"],
                                   s["corrupt"]))
    w("  gray records: %s\n" % (s["gray_resolutions"] or "none"))
    w("  anomalies: %s (%d new)\n" % (s["anomalies"] or "none", s["anomalies_new"]))
    for e in s["files"].get("exports", []):
        w("  %-8s %s: %d records, %.2f CNY -> %s\n" % (e["destination"], e["issuer"], e["count"],
                                                     e["amount_fen"] / 100, e["csv"]))
    st = s.get("settlement")
    if st:
        w("  settlement: %.2f CNY owed to the operator %s; disputed (gray, no TAC) %.2f CNY\n"
          % (st["owed_to_operator_fen"] / 100, st["by_destination_fen"],
             st["disputed_gray_debited_fen"] / 100))


def do_anomalies(args):
    from depot import clearing

    db = open_db(args.db)
    try:
        rows = clearing.list_anomalies(db, kinds=args.kind or None, status=args.status,
                                       day=args.day)
    finally:
        db.close()
    if args.json:
        print(json.dumps(rows, indent=1, sort_keys=True))
        return 0
    for a in rows:
        dev = "%08X" % a["device_id"] if a["device_id"] is not None else "-"
        print("%4d %-13s %-16s %-8s %-20s %-8s %s" % (a["id"], a["kind"], a["reason"], dev,
                                                    a["card"] or "-", a["status"], a["detail"]))
    print("%d anomalies" % len(rows))
    return 0
