"""ykt: tools for T-Union bus fare validators, for depot staff and technicians.

Run `ykt COMMAND --help` for the options of one command. Examples:

  ykt sim                                   run an emulated bus day (build/sim/)
  ykt card issue --city 2900 --balance 5000 -o card.json
  ykt fares compile fares.json -o fares.bin
  ykt sync --port /dev/ttyUSB0 --keys keys.json --export-csv records.csv
  ykt sync --port listen://0.0.0.0:7000 --fares fares.bin   (the validator dials in)
  ykt inspect build/sim/flash.bin           read a flash dump taken off a validator

Exit codes: 0 ok, 1 the operation ran and failed, 2 bad option or input file content,
3 file/device/port not reachable, 4 the device or card answered wrongly, 70 internal
error (please report it with the --debug output), 130 interrupted. A reader that stops
early (`ykt inspect dump | head`) ends the command quietly with 1.
"""
# Each command module cmd_*.py defines register(sub), adding its argparse parser(s) with
# set_defaults(func=do_<verb>); do_<verb>(args) returns an exit code. One catch in main()
# turns every error into one "ykt: ..." line and an exit code; --debug shows tracebacks.

import argparse
import importlib
import json
import pkgutil
import sys
import traceback

import ykt

EXIT_OK = 0
EXIT_FAIL = 1  # the operation ran and reported a failure (a test verdict, a refused push)
EXIT_USAGE = 2  # bad option value or bad input file content: nothing was done
EXIT_IO = 3  # file, device or port not reachable (missing, unreadable, refused)
EXIT_PROTOCOL = 4  # peer spoke nonsense, authentication failed
EXIT_INTERNAL = 70  # a bug in ykt (EX_SOFTWARE); --debug shows the traceback
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    def __init__(self, msg, code=EXIT_FAIL):
        super().__init__(msg)
        self.code = code


def read_bytes(path):
    """A whole input file; a missing or unreadable one is a CommandError naming it."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise CommandError("cannot read %s: %s" % (path, e.strerror or e), EXIT_IO)


def read_json(path, what="JSON"):
    """A JSON input file: missing/unreadable -> EXIT_IO, not JSON -> EXIT_USAGE."""
    raw = read_bytes(path)
    try:
        return json.loads(raw)
    except ValueError as e:
        raise CommandError("%s: not %s: %s" % (path, what, e), EXIT_USAGE)


def versions():
    """(firmware, sync protocol, record format) versions, from the firmware's own mirrors."""
    import validator
    from validator.storage import record_host
    from validator.sync import wire_host

    return validator.VERSION, wire_host.PROTO_VERSION, record_host.REC_VERSION


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error in the same form as every other fault:
    'ykt: card issue: argument --city: expected ..., got '12' (see ykt card issue --help)'."""

    def error(self, message):
        where = self.prog[len("ykt"):].strip()
        self.exit(EXIT_USAGE, "ykt: %s%s (see %s --help)\n"
                  % (where + ": " if where else "", message, self.prog))


def _help_of(p):
    def show(_args):
        p.print_help()
        return EXIT_OK
    return show


def build_parser():
    fw, proto, rec = versions()
    p = Parser(prog="ykt", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version",
                   version="ykt firmware %s, sync protocol %d, record format %d"
                   % (fw, proto, rec))
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")
    for m in sorted(pkgutil.iter_modules(ykt.__path__), key=lambda m: m.name):
        if m.name.startswith("cmd_"):
            importlib.import_module("ykt." + m.name).register(sub)
    for name, sp in sub.choices.items():
        # a command group given without its sub-command shows its own help
        if sp.get_default("func") is None:
            sp.set_defaults(func=_help_of(sp))
    p.set_defaults(func=_help_of(p))
    return p


def _run(args):
    debug = getattr(args, "debug", False)
    try:
        return args.func(args) or EXIT_OK
    except BaseException as e:  # one catch: a message line and an exit code, never a traceback
        if debug:
            traceback.print_exc()
        msg, code = _explain(e)
        if msg is None:
            _quiet_stdout()
        else:
            print("ykt: " + msg, file=sys.stderr)
        return code


def _quiet_stdout():
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush does
    not raise again (the Python docs' recipe, signal module, "Note on SIGPIPE")."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _explain(e):
    if isinstance(e, CommandError):
        return str(e), e.code
    if isinstance(e, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(e, BrokenPipeError):  # `ykt inspect dump | head`: the reader has gone
        return None, EXIT_FAIL
    if isinstance(e, SystemExit):
        return "exit %s" % (e.code,), e.code if isinstance(e.code, int) else EXIT_FAIL
    if isinstance(e, OSError):
        if e.filename is not None:
            return "cannot access %s: %s" % (e.filename, e.strerror or e), EXIT_IO
        return str(e.strerror or e), EXIT_IO
    name = type(e).__name__  # the validator fault tree, by name (no firmware import here)
    if name in ("SyncError", "NfcError", "NfcTimeout", "SamError", "CardError"):
        return "%s: %s" % (name, e), EXIT_PROTOCOL
    if name == "StorageError":
        return "%s: %s" % (name, e), EXIT_FAIL
    return ("internal error: %s: %s (run again as `ykt --debug ...` for the traceback)"
            % (name, e), EXIT_INTERNAL)


def main(argv=None):
    p = build_parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as e:  # --help, --version, a bad option: argparse has printed it
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
