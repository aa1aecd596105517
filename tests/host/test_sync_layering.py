# test_sync_layering: the sync service imports only downward-safe modules (house style §2):
# its own package, validator.errors, micropython and the common-subset stdlib. It must
# never reach into app/txn/storage/rules -- it talks to them through the sync target.
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYNC = os.path.join(ROOT, "firmware", "validator", "sync")
ALLOWED = {
    "micropython", "struct", "binascii", "hashlib", "select", "socket", "ssl", "termios",
    "time", "sys", "io", "deflate", "zlib", "gc", "asyncio",
    "cryptolib",  # MicroPython's AES (unix and ESP32 ports): the frame cipher's ECB block
}
# host-only mirrors (*_host.py, never imported by the firmware) may use the host's crypto
HOST_ALLOWED = {"cryptography"}


def test_sync_when_imports_walked_only_own_package_errors_and_stdlib():
    bad = []
    for name in sorted(os.listdir(SYNC)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(SYNC, name)).read())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            for m in mods:
                if m.startswith("validator.sync") or m == "validator.errors":
                    continue
                if m.split(".")[0] in ALLOWED:
                    continue
                if name.endswith("_host.py") and m.split(".")[0] in HOST_ALLOWED:
                    continue
                bad.append((name, m))
    assert bad == []
