# validator.sync.auth_host: the back office / depot / provisioning side of validator.sync.auth.
# SPDX-License-Identifier: MIT
#
# Key derivation, the provisioning blob and content signing (PROTOCOL.md §2, §5). Host tools
# and tests only: the firmware never imports this module, so these functions cost no heap on
# the device. Common subset (depot.devsim and tier-1 tests run it on MicroPython).
import struct
from binascii import crc32

from validator.errors import SyncError
from validator.sync.auth import Hmac, _id4

# Public names of validator.sync.auth's private consts (const() names beginning with _ take no
# heap on the device); host callers import them from here. Checked equal by
# tests/host/test_heap_budget.py.
KEYS_LEN = 76
DIGEST = 32
NONCE_LEN = 16
CONTENT_HDR = 14

FrameMac = Hmac  # the frame MAC is an Hmac (tag_into/check), PROTOCOL.md §1


def hmac_sha256(key, msg):
    return Hmac(key).digest(msg)


def derive_device_key(master, device_id):
    """Back office / depot: Kd = HMAC(master, "ykt-device-key" ‖ device_id)."""
    return Hmac(master).digest(b"ykt-device-key", _id4(device_id))


# -- provisioning blob (PROTOCOL.md §2) ------------------------------------------------


def make_keys(device_id, kd, kc):
    if len(kd) != DIGEST or len(kc) != DIGEST:
        raise SyncError("keys must be 32 bytes")
    b = b"YKK1" + _id4(device_id) + bytes(kd) + bytes(kc)
    return b + struct.pack(">I", crc32(b))


def make_content(content_key, kind, version, body):
    """Back office: wrap and sign body (also used by tests and the depot's sign tool)."""
    b = b"YKC1" + struct.pack(">BBII", kind, 0, version, len(body)) + bytes(body)
    return b + Hmac(content_key).digest(b)
