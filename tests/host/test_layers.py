"""Architecture rules, enforced: only boards/ imports machine; firmware layers import downward.

House style principles 1-2: drivers -> link -> card/sam -> txn -> rules -> app, with storage
and sync as services; util, errors and hal are usable everywhere.
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW = os.path.join(ROOT, "firmware", "validator")

BASE = {"util", "errors", "hal", ""}
ALLOWED = {
    "drivers": {"drivers"},
    "link": {"drivers", "link"},
    "card": {"link", "card"},
    "sam": {"link", "sam"},
    "storage": {"storage"},
    "rules": {"rules", "sync"},  # sync.auth verifies signed fare tables
    "sync": {"sync", "storage"},
    "txn": {"card", "sam", "link", "storage", "rules", "txn"},
    "app": None,  # the top: may use every layer
}
STDLIB_OK = {"micropython", "struct", "binascii", "hashlib", "collections", "asyncio", "errno",
             "gc", "sys", "array"}
# Board-supplied transports may touch OS channels (house style §3.3).
STDLIB_EXTRA = {
    "validator/sync/transport.py": {"select", "socket", "termios", "os", "time", "ssl"},
    # compression (deflate on MicroPython, zlib under CPython) and stream wrappers
    "validator/sync/session.py": {"io", "deflate", "zlib", "time"},
    "validator/sync/xfer.py": {"io", "deflate", "zlib"},
    "validator/app/content.py": {"json"},  # device configuration body (boot/sync path)
}


def _imports(path):
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            if node.module == "validator":
                for a in node.names:
                    yield node.lineno, "validator." + a.name


def _py_files(top):
    for d, _, files in os.walk(top):
        for f in files:
            if f.endswith(".py"):
                yield os.path.join(d, f)


def test_layers_when_outside_boards_machine_is_never_imported():
    bad = []
    for top in ("firmware", "host_tools", "tests/fw"):
        for p in _py_files(os.path.join(ROOT, top)):
            for ln, mod in _imports(p):
                if mod == "machine" or mod.startswith("machine."):
                    bad.append("%s:%d" % (os.path.relpath(p, ROOT), ln))
    assert not bad, "machine imported outside boards/: " + ", ".join(bad)


def test_layers_when_firmware_imports_only_downward_and_allowed_stdlib():
    bad = []
    for p in _py_files(FW):
        rel = os.path.relpath(p, os.path.join(ROOT, "firmware"))
        parts = rel.split(os.sep)
        layer = parts[1] if len(parts) > 2 else ""
        allowed = ALLOWED.get(layer, set()) if layer else set()
        for ln, mod in _imports(p):
            if mod.startswith("validator"):
                sub = mod.split(".")[1] if "." in mod else ""
                if sub in BASE or allowed is None or sub in allowed:
                    continue
                bad.append("%s:%d imports %s (layer %s)" % (rel, ln, mod, layer or "root"))
            else:
                top = mod.split(".")[0]
                if top in STDLIB_OK or top in STDLIB_EXTRA.get(rel, ()):
                    continue
                bad.append("%s:%d imports %s" % (rel, ln, mod))
    assert not bad, "\n".join(bad)


def test_layers_when_emulators_are_common_subset_they_avoid_cpython_only_modules():
    cpython_only = {"dataclasses", "typing", "enum", "pathlib", "abc"}
    bad = []
    for p in _py_files(os.path.join(ROOT, "host_tools", "emu")):
        with open(p) as f:
            if "CPython only" in f.read(400):
                continue
        for ln, mod in _imports(p):
            if mod.split(".")[0] in cpython_only:
                bad.append("%s:%d %s" % (os.path.relpath(p, ROOT), ln, mod))
    assert not bad, bad
