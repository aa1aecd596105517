"""Tier 2: the sync modules' private copies of the wire constants equal the wire table.

validator.sync.wire keeps every constant private (a `_X = const(..)` is inlined and takes no
heap on the device); session, xfer, target and app.content keep private copies of the values
they use, and validator.sync.wire_host serves public names to host callers. A copy that drifts
from PROTOCOL.md would silently change the wire, so every copy is checked here against wire.py
(and wire_host against wire.py too)."""

import os
import re

from fwconsts import module_consts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FW = os.path.join(ROOT, "firmware", "validator")
COPIES = ("sync/session.py", "sync/xfer.py", "sync/target.py", "app/content.py")
WIRE_NAME = re.compile(r"^_(HDR|MAC_LEN|CRC_LEN|MAX_PAYLOAD|MAX_FRAME|F_[A-Z]+|T_[A-Z_]+|OK|"
                       r"E_[A-Z]+|K_[A-Z_]+|PULL_Z|PROTO_VERSION|INFO_LEN)$")


def _consts(rel):
    return module_consts(os.path.join(FW, rel))


def test_sync_consts_when_modules_copy_wire_values_they_match_wire():
    wire = _consts("sync/wire.py")
    checked = 0
    for rel in COPIES:
        for name, v in _consts(rel).items():
            if WIRE_NAME.match(name):
                assert name in wire, "%s: %s is not a wire constant" % (rel, name)
                assert v == wire[name], "%s: %s=%r, wire.py says %r" % (rel, name, v, wire[name])
                checked += 1
    assert checked >= 50


def test_sync_consts_when_modules_copy_auth_values_they_match_auth():
    auth = _consts("sync/auth.py")
    checked = 0
    for rel in ("sync/target.py", "app/content.py"):
        for name in ("_CONTENT_HDR", "_DIGEST"):
            assert _consts(rel)[name] == auth[name], (rel, name)
            checked += 1
    assert checked == 4


def test_sync_consts_when_host_names_wire_values_they_match_wire():
    from validator.sync import wire, wire_host

    fw = _consts("sync/wire.py")
    checked = 0
    for name, v in _consts("sync/wire_host.py").items():
        if isinstance(v, int) and "_" + name in fw:
            assert fw["_" + name] == v, name
            assert not hasattr(wire, name)  # host-only name: wire_host serves it
            checked += 1
    assert checked >= 45
    # the INFO format the session packs is the one the host unpacks (PROTOCOL.md §4.1)
    with open(os.path.join(FW, "sync", "session.py")) as f:
        assert '"%s"' % wire_host.INFO_FMT in f.read()


def test_sync_consts_when_wire_is_imported_it_defines_no_public_constant():
    # a public const costs ~40 B of heap on the device; host callers use wire_host's names
    public = [n for n in _consts("sync/wire.py") if not n.startswith("_")]
    assert public == []
