"""ykt.reference: the command reference (host_tools/ykt/REFERENCE.md) made from the parsers
themselves, so it says what `--help` says.

    python -m ykt.reference            print it
    python -m ykt.reference --write    rewrite host_tools/ykt/REFERENCE.md

tests/host/test_cli_reference.py fails when a command or an option is missing from the file
or the file names one the parsers do not have; run --write after changing an option."""

import argparse
import contextlib
import io
import os
import sys

from ykt import cli

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "REFERENCE.md")
WIDTH = "99"  # help is wrapped at a fixed width, not at the terminal's


def commands(p=None, path=()):
    """(path tuple, parser) of ykt and every command and sub-command, depth first."""
    p = p or cli.build_parser()
    yield path, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                yield from commands(sp, path + (name,))


def options(p):
    """Every option string and positional name of one parser (not -h/--help, nor an option
    kept only to refuse it with a pointer to its successor: help=SUPPRESS)."""
    out = []
    for a in p._actions:
        if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if a.help == argparse.SUPPRESS:
            continue
        out.extend(a.option_strings or [a.dest])
    return out


def help_text(p):
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            p.print_help()
        return buf.getvalue().rstrip() + "\n"
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def text():
    out = ["# ykt command reference", "",
           "Generated from the parsers by `python -m ykt.reference --write` (what `ykt ... "
           "--help` prints). Exit codes: README.md, \"Two commands\".", ""]
    for path, p in commands():
        out.append("## " + " ".join(("ykt",) + path))
        out.append("")
        out.append("```")
        out.append(help_text(p).rstrip())
        out.append("```")
        out.append("")
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    t = text()
    if argv == ["--write"]:
        with open(PATH, "w") as f:
            f.write(t)
        print("wrote " + PATH)
    else:
        sys.stdout.write(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
