"""ykt command line: verbs are cmd_*.py modules in this package.

Each verb module defines ``register(sub)``, adding its argparse parser(s) with
``set_defaults(func=do_<verb>)``; ``do_<verb>(args)`` returns an exit code. One catch
here turns the project's error hierarchy into messages and exit codes (mpremote style).
"""

import argparse
import importlib
import pkgutil
import sys

import ykt

EXIT_OK = 0
EXIT_FAIL = 1  # the operation ran and reported a failure (a test verdict, a refused push)
EXIT_USAGE = 2
EXIT_IO = 3  # device/port/file not reachable
EXIT_PROTOCOL = 4  # peer spoke nonsense, authentication failed


class CommandError(Exception):
    def __init__(self, msg, code=EXIT_FAIL):
        super().__init__(msg)
        self.code = code


def build_parser():
    p = argparse.ArgumentParser(prog="ykt", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    for m in sorted(pkgutil.iter_modules(ykt.__path__), key=lambda m: m.name):
        if m.name.startswith("cmd_"):
            importlib.import_module("ykt." + m.name).register(sub)
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if not getattr(args, "func", None):
        p.print_help()
        return EXIT_USAGE
    try:
        return args.func(args) or EXIT_OK
    except CommandError as e:
        print("ykt: " + str(e), file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("ykt: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print("ykt: %s" % e, file=sys.stderr)
        return EXIT_IO
    except Exception as e:  # the validator fault tree and anything unexpected
        name = type(e).__name__
        if name in ("SyncError", "NfcError", "NfcTimeout", "SamError", "CardError"):
            print("ykt: %s: %s" % (name, e), file=sys.stderr)
            return EXIT_PROTOCOL
        if name == "StorageError":
            print("ykt: %s: %s" % (name, e), file=sys.stderr)
            return EXIT_FAIL
        raise


if __name__ == "__main__":
    sys.exit(main())
