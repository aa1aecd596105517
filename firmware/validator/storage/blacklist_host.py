# validator.storage.blacklist_host: build blacklist container bodies (FORMAT.md §5) on the host.
# SPDX-License-Identifier: MIT
#
# Back office, sim and tests only; the firmware never imports this module (its functions
# would cost heap on the device). Common subset: tier-1 tests use it on MicroPython.
import struct

# public names of validator.storage.blacklist's private consts (checked equal by
# tests/host/test_storage_consts.py); host callers import them from here
KIND_FULL = 1
KIND_DELTA = 2
OP_REMOVE = 0
OP_ADD = 1

CMAGIC = b"YKC1"  # content container magic (sync/PROTOCOL.md §5)


def make_body(kind, keys, base=0):
    """Host side: container body for sorted keys (full) or sorted (op, key) pairs (delta)."""
    if kind == KIND_FULL:
        return struct.pack(">I", len(keys)) + b"".join(bytes(k) for k in keys)
    return struct.pack(">II", base, len(keys)) + b"".join(bytes([op]) + bytes(k) for op, k in keys)


def container(kind, version, body, sign):
    """Host side: wrap body as a sync/PROTOCOL.md §5 container; sign(bytes) -> 32-byte tag."""
    b = CMAGIC + struct.pack(">BBII", kind, 0, version, len(body)) + bytes(body)
    return b + sign(b)
