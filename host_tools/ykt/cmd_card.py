"""ykt card: issue T-Union card images (JSON) from the test master keys; populations."""

import json
import os

from emu import issuer
from ykt.cli import EXIT_USAGE, CommandError


def register(sub):
    p = sub.add_parser("card", help="emulated T-Union card images")
    s = p.add_subparsers(dest="card_cmd", metavar="CMD")
    i = s.add_parser("issue", help="make one card image (JSON)")
    i.add_argument("--keys", default=None, help="master key file (default: the test keys)")
    i.add_argument("--alg", choices=("3des", "sm4"), default="3des")
    i.add_argument("--city", default="2900", help="city code, 4 BCD digits (EF15[2..3])")
    i.add_argument("--issuer-code", default=issuer.ISSUER_CODE, help="EF15[0..1], 4 hex digits")
    i.add_argument("--serial", default=None, help="application serial, up to 20 digits")
    i.add_argument("--type", dest="card_type", default="normal",
                   choices=[n for n, _ in issuer.CARD_TYPES])
    i.add_argument("--balance", type=int, default=5000, help="fen")
    i.add_argument("--start", default="20240101", help="YYYYMMDD")
    i.add_argument("--expiry", default="20341231", help="YYYYMMDD")
    i.add_argument("--no-interconnect", action="store_true", help="EF17 interconnect 0000")
    i.add_argument("--blocked", choices=("no", "temporary", "permanent"), default="no")
    i.add_argument("--no-capp", action="store_true", help="no compound file (type 06 only)")
    i.add_argument("--kind", choices=("A", "B"), default="A")
    i.add_argument("--phone", action="store_true", help="HCE phone: random UID 08xxxxxx")
    i.add_argument("--seed", type=int, default=1)
    i.add_argument("-o", "--output", required=True)
    i.set_defaults(func=do_issue)
    q = s.add_parser("population", help="a seeded realistic mix of cards")
    q.add_argument("--keys", default=None)
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--count", type=int, default=50)
    q.add_argument("--today", default="20250601", help="YYYYMMDD the validity mix is about")
    q.add_argument("-o", "--output", required=True, help="directory")
    q.set_defaults(func=do_population)


def _keys(path):
    try:
        return issuer.load_master_keys(path)
    except (OSError, ValueError) as e:
        raise CommandError("master keys: %s" % e, EXIT_USAGE)


def _write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


def do_issue(args):
    keys = _keys(args.keys)
    blocked = {"no": False, "temporary": True, "permanent": "permanent"}[args.blocked]
    try:
        card = issuer.issue_card(
            keys, alg=args.alg, city=args.city, serial=args.serial, card_type=args.card_type,
            balance=args.balance, start=args.start, expiry=args.expiry,
            interconnect=not args.no_interconnect, blocked=blocked, capp=not args.no_capp,
            kind=args.kind, phone=args.phone, issuer_code=args.issuer_code, seed=args.seed,
        )
    except ValueError as e:
        raise CommandError(str(e), EXIT_USAGE)
    _write(args.output, card.to_dict())
    print("%s: serial %s, %s, balance %d" % (args.output, card.ef15[10:20].hex(), args.alg,
                                             card.balance))
    return 0


def do_population(args):
    if args.count < 1:
        raise CommandError("--count must be >= 1", EXIT_USAGE)
    keys = _keys(args.keys)
    os.makedirs(args.output, exist_ok=True)
    index = []
    blacklist = []
    for n, (card, tags) in enumerate(issuer.population(keys, args.seed, args.count, args.today)):
        name = "card-%04d.json" % n
        _write(os.path.join(args.output, name), card.to_dict())
        serial = card.ef15[10:20].hex()
        index.append({"file": name, "serial": serial, "tags": tags, "balance": card.balance,
                      "city": card.ef15[2:4].hex(), "alg": card.alg})
        if "blacklisted" in tags:
            blacklist.append(serial)
    _write(os.path.join(args.output, "population.json"),
           {"seed": args.seed, "today": args.today, "cards": index})
    with open(os.path.join(args.output, "blacklist.txt"), "w") as f:
        for s in blacklist:
            f.write(s + "\n")
    print("%d cards in %s (%d blacklisted)" % (len(index), args.output, len(blacklist)))
    return 0
