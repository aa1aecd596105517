"""Architecture rules, enforced: only boards/ imports machine; firmware layers import downward.

The firmware's layers (house style principles 1-2, with rules as a pure leaf): drivers ->
link -> card/sam -> txn -> app. rules (fares, fare tables: pure, time injected) and
storage (flash) are leaves beside each other that txn and app use; sync (wire, session,
content check) is a leaf service that only app wires to storage. util, errors and hal are
usable everywhere. ALLOWED below is the table; README.md "Architecture" says the same.
The device never imports firmware/formats (a host-only registry), and host_tools never
import from tests/ (what a tool shares with the tests lives in host_tools).
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
    "rules": {"rules"},  # pure: sync unwraps and verifies a table before rules sees its body
    "sync": {"sync"},
    "txn": {"card", "sam", "link", "storage", "rules", "txn"},
    # the M1 purse engine (MIFARE Classic): the PN532's own Crypto1 commands (drivers),
    # the local PSAM for keys and record MACs, the same log and fare rules as txn
    "m1": {"drivers", "link", "sam", "storage", "rules", "m1"},
    "app": None,  # the top: may use every layer
}
# rules may use no OS, hardware or I/O module at all: only these
RULES_STDLIB = {"micropython", "struct"}
STDLIB_OK = {"micropython", "struct", "binascii", "hashlib", "collections", "asyncio", "errno",
             "gc", "sys", "array"}
# Board-supplied transports may touch OS channels (house style §3.3).
STDLIB_EXTRA = {
    "validator/sync/transport.py": {"select", "socket", "termios", "os", "time", "ssl"},
    # compression (deflate on MicroPython, zlib under CPython) and stream wrappers
    "validator/sync/session.py": {"io", "deflate", "zlib", "time"},
    "validator/sync/xfer.py": {"io", "deflate", "zlib"},
    "validator/app/content.py": {"json"},  # device configuration body (boot/sync path)
    # AES: MicroPython's built-in on the unix and ESP32 ports (host_tools/shims under CPython)
    "validator/sync/ctr.py": {"cryptolib"},
    # a host-side mirror beside the code it mirrors, as auth_host/wire_host: the depot's
    # and the tests' frame cipher, from an independent library (the device never imports it)
    "validator/sync/cipher_host.py": {"cryptography"},
}


def _imports(path, src=None):
    tree = ast.parse(src if src is not None else open(path).read(), path)
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


def test_layers_when_rules_imported_it_is_pure():
    # the table above keeps rules off every other layer; here: no OS or I/O module either
    bad = []
    for p in _py_files(os.path.join(FW, "rules")):
        for ln, mod in _imports(p):
            top = mod.split(".")[0]
            if top == "validator":
                sub = mod.split(".")[1] if "." in mod else ""
                if sub in ("rules", "errors", "util", ""):
                    continue
            elif top in RULES_STDLIB:
                continue
            bad.append("%s:%d imports %s" % (os.path.relpath(p, ROOT), ln, mod))
    assert not bad, "rules must stay pure: " + ", ".join(bad)


def test_layers_when_device_code_never_imports_the_format_registry():
    bad = []
    for top in (FW, os.path.join(ROOT, "boards"), os.path.join(ROOT, "firmware", "main.py")):
        files = [top] if top.endswith(".py") else _py_files(top)
        for p in files:
            if not os.path.exists(p):
                continue
            for ln, mod in _imports(p):
                if mod.split(".")[0] == "formats" or mod.startswith("firmware.formats"):
                    bad.append("%s:%d" % (os.path.relpath(p, ROOT), ln))
    assert not bad, "firmware/formats is host-only: " + ", ".join(bad)


def _tests_modules():
    """Top-level module names that exist only under tests/ (fw, fwtest, conftest, ...)."""
    names = {"tests"}
    for e in os.listdir(os.path.join(ROOT, "tests")):
        if e.endswith(".py"):
            names.add(e[:-3])
        elif os.path.isdir(os.path.join(ROOT, "tests", e)) and not e.startswith((".", "_")):
            names.add(e)
    return names


def test_layers_when_host_tools_never_import_from_tests():
    banned = _tests_modules()
    bad = []
    for p in _py_files(os.path.join(ROOT, "host_tools")):
        rel = os.path.relpath(p, ROOT)
        src = open(p).read()
        for ln, mod in _imports(p, src):
            if mod.split(".")[0] in banned:
                bad.append("%s:%d imports %s" % (rel, ln, mod))
        for node in ast.walk(ast.parse(src, p)):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if node.value == "tests":  # os.path.join(root, "tests"): a sys.path hack
                bad.append("%s:%d names the tests directory" % (rel, node.lineno))
            elif "import " in node.value:  # a script handed to a subprocess
                try:
                    sub = list(_imports(p, node.value))
                except SyntaxError:
                    continue
                for _, mod in sub:
                    if mod.split(".")[0] in banned:
                        bad.append("%s:%d snippet imports %s" % (rel, node.lineno, mod))
    assert not bad, "host_tools must not depend on tests/: " + ", ".join(bad)
