"""ykt card: issue T-Union card images (JSON) from the test master keys; populations."""

import hashlib
import json
import os
import secrets

from emu import issuer
from ykt import argtypes as T
from ykt import progress
from ykt.cli import EXIT_USAGE, CommandError, read_json


def register(sub):
    p = sub.add_parser("card", help="emulated T-Union card images")
    s = p.add_subparsers(dest="card_cmd", metavar="CMD")
    i = s.add_parser("issue", help="make one card image (JSON)",
                     description="Make one emulated T-Union card image (JSON) for `ykt emu "
                     "pn532 --card`, tests and demos. Example: ykt card issue --city 2900 "
                     "--balance 5000 -o card.json")
    i.add_argument("--keys", default=None, help="master key file (default: the test keys)")
    i.add_argument("--alg", choices=("3des", "sm4"), default="3des",
                   help="key algorithm family of the card (default %(default)s)")
    i.add_argument("--city", default="2900", type=T.decimal_digits(4),
                   help="city code, 4 decimal digits (EF15[2..3]; default %(default)s)")
    i.add_argument("--issuer-code", default=issuer.ISSUER_CODE, type=T.hex_digits(4),
                   help="EF15[0..1], 4 hex digits (default %(default)s)")
    i.add_argument("--serial", default=None, type=T.serial,
                   help="application serial, up to 20 decimal digits (default: 0, the city "
                   "code and 15 digits drawn from --seed, the algorithm and the type, so "
                   "every card issued gets its own)")
    i.add_argument("--type", dest="card_type", default="normal",
                   choices=[n for n, _ in issuer.CARD_TYPES],
                   help="card type, EF15[28] (default %(default)s)")
    i.add_argument("--balance", type=T.fen, default=5000,
                   help="fen, 0..%d (default %%(default)s = 50.00 yuan)" % T.FEN_MAX)
    i.add_argument("--start", default="20240101", type=T.yyyymmdd, help="YYYYMMDD")
    i.add_argument("--expiry", default="20341231", type=T.yyyymmdd, help="YYYYMMDD")
    i.add_argument("--no-interconnect", action="store_true", help="EF17 interconnect 0000")
    i.add_argument("--blocked", choices=("no", "temporary", "permanent"), default="no",
                   help="issue the application blocked (default %(default)s)")
    i.add_argument("--no-capp", action="store_true", help="no compound file (type 06 only)")
    i.add_argument("--kind", choices=("A", "B"), default="A",
                   help="ISO 14443 type A or B (default %(default)s)")
    i.add_argument("--phone", action="store_true", help="HCE phone: random UID 08xxxxxx")
    i.add_argument("--seed", type=T.int_range(0, 2 ** 31 - 1), default=None,
                   help="makes the serial and UID reproducible (default: a fresh random one, "
                   "printed)")
    i.add_argument("-o", "--output", "--out", dest="output", required=True, metavar="FILE",
                   help="card image to write (JSON)")
    i.add_argument("--json", action="store_true",
                   help="print what was issued as one JSON object (file, serial, uid, alg, "
                   "city, type, balance, seed)")
    i.set_defaults(func=do_issue)
    q = s.add_parser("population", help="a seeded realistic mix of cards",
                     description="A seeded, realistic mix of cards (cities, types, both "
                     "algorithms, expired, blacklisted, low balance, phones): one JSON per card, "
                     "population.json and blacklist.txt. Example: ykt card population --count "
                     "2000 -o build/pop")
    q.add_argument("--keys", default=None, help="master key file (default: the test keys)")
    q.add_argument("--seed", type=T.int_range(0, 2 ** 31 - 1), default=1,
                   help="the same seed gives the same population (default %(default)s)")
    q.add_argument("--count", type=T.int_range(1, 100000), default=50,
                   help="how many cards, 1..100000 (default %(default)s)")
    q.add_argument("--today", default="20250601", type=T.yyyymmdd,
                   help="YYYYMMDD the validity mix is about")
    q.add_argument("-o", "--output", "--out", dest="output", required=True, metavar="DIR",
                   help="directory")
    progress.add_option(q, "the cards written")
    q.add_argument("--json", action="store_true",
                   help="print the counts as one JSON object (cards, blacklisted, by tag)")
    q.set_defaults(func=do_population)


def load_master_keys(path=None):
    """A master key file (emu/test_master_keys.json shape), checked: missing/unreadable ->
    EXIT_IO, anything but {"3des"|"sm4": {usage: 32 hex digits}} -> EXIT_USAGE."""
    path = path or issuer.KEYS_PATH
    d = read_json(path, "a JSON key file")
    if not isinstance(d, dict):
        raise CommandError("%s: not a master key file (want a JSON object)" % path, EXIT_USAGE)
    for fam in ("3des", "sm4"):
        sec = d.get(fam)
        if not isinstance(sec, dict):
            raise CommandError("%s: not a master key file: no \"%s\" section (a depot key "
                               "file or a card image?)" % (path, fam), EXIT_USAGE)
        for u in issuer.USAGES:
            v = sec.get(u)
            if not isinstance(v, str) or len(v) != 32 or not T.is_hex(v):
                raise CommandError("%s: section \"%s\": \"%s\" must be 32 hex digits"
                                   % (path, fam, u), EXIT_USAGE)
    return d


_keys = load_master_keys


def _write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


def default_serial(seed, city, alg, card_type, issuer_code, kind, phone):
    """0, the 4-digit city and 15 digits hashed from the seed and what makes the card
    different: two cards issued without --serial never share a serial by accident (the
    library default in emu.issuer is one fixed serial, for reproducible fixtures)."""
    h = hashlib.sha256(("%d/%s/%s/%s/%s/%s/%s" % (seed, city, alg, card_type, issuer_code,
                                                   kind, phone)).encode()).digest()
    return "0%s%015d" % (city, int.from_bytes(h[:8], "big") % 10 ** 15)


def do_issue(args):
    keys = _keys(args.keys)
    seed = args.seed if args.seed is not None else secrets.randbelow(2 ** 31)
    serial = args.serial or default_serial(seed, args.city, args.alg, args.card_type,
                                           args.issuer_code, args.kind, args.phone)
    blocked = {"no": False, "temporary": True, "permanent": "permanent"}[args.blocked]
    try:
        card = issuer.issue_card(
            keys, alg=args.alg, city=args.city, serial=serial, card_type=args.card_type,
            balance=args.balance, start=args.start, expiry=args.expiry,
            interconnect=not args.no_interconnect, blocked=blocked, capp=not args.no_capp,
            kind=args.kind, phone=args.phone, issuer_code=args.issuer_code, seed=seed,
        )
    except ValueError as e:
        raise CommandError(str(e), EXIT_USAGE)
    _write(args.output, card.to_dict())
    if getattr(args, "json", False):
        print(json.dumps({"file": args.output, "serial": card.ef15[10:20].hex(),
                          "uid": bytes(card.uid).hex().upper(), "alg": args.alg,
                          "city": args.city, "type": args.card_type, "balance": card.balance,
                          "seed": seed}, sort_keys=True))
        return 0
    print("%s: serial %s, %s, balance %d, seed %d" % (args.output, card.ef15[10:20].hex(),
                                                       args.alg, card.balance, seed))
    return 0


def do_population(args):
    keys = _keys(args.keys)
    os.makedirs(args.output, exist_ok=True)
    index = []
    blacklist = []
    bar = progress.Bar(args.progress, "cards")
    for n, (card, tags) in enumerate(issuer.population(keys, args.seed, args.count, args.today)):
        bar(n, args.count)
        name = "card-%04d.json" % n
        _write(os.path.join(args.output, name), card.to_dict())
        serial = card.ef15[10:20].hex()
        index.append({"file": name, "serial": serial, "tags": tags, "balance": card.balance,
                      "city": card.ef15[2:4].hex(), "alg": card.alg})
        if "blacklisted" in tags:
            blacklist.append(serial)
    bar(args.count, args.count)
    _write(os.path.join(args.output, "population.json"),
           {"seed": args.seed, "today": args.today, "cards": index})
    with open(os.path.join(args.output, "blacklist.txt"), "w") as f:
        for s in blacklist:
            f.write(s + "\n")
    if getattr(args, "json", False):
        tags = {}
        for c in index:
            for t in c["tags"]:
                tags[t] = tags.get(t, 0) + 1
        print(json.dumps({"dir": args.output, "cards": len(index),
                          "blacklisted": len(blacklist), "by_tag": tags, "seed": args.seed},
                         sort_keys=True))
        return 0
    print("%d cards in %s (%d blacklisted)" % (len(index), args.output, len(blacklist)))
    return 0
