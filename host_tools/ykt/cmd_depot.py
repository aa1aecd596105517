"""ykt depot: the depot station -- serve the fleet, the database, clearing, content."""
# The group's sub-commands live in modules ykt/depot_*.py, each with register(sub) adding
# its parser(s) to this group (set_defaults(func=...)), so the station, clearing and
# content tools grow without touching one shared file.
import importlib
import pkgutil

import ykt


def register(sub):
    p = sub.add_parser("depot", help="the depot station: serve, database, clearing, content",
                       description=__doc__)
    group = p.add_subparsers(dest="depot_verb", metavar="SUBCOMMAND")
    for m in sorted(pkgutil.iter_modules(ykt.__path__), key=lambda m: m.name):
        if m.name.startswith("depot_"):
            importlib.import_module("ykt." + m.name).register(group)
    for sp in group.choices.values():
        if sp.get_default("func") is None:
            sp.set_defaults(func=lambda _a, sp=sp: sp.print_help() or 0)
