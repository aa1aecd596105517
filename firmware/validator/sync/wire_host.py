# validator.sync.wire_host: host side of the sync wire format (PROTOCOL.md): code and kind
# names, INFO decoding, RECORDS_Z decoding.
# SPDX-License-Identifier: MIT
#
# The depot client and tests only; the firmware never imports this module (its strings,
# dict keys and functions would cost heap on the device). Common subset.
import struct

from validator.sync.wire import INFO_FMT, INFO_LEN

# Public names of validator.sync.wire's private consts (const() names beginning with _ take no
# heap on the device); wire.__getattr__ serves them to host callers. Checked equal by
# tests/host/test_heap_budget.py.
F_MAC = 1
K_WHITELIST = 4

CODE_NAMES = (
    "ok",
    "authentication failed",
    "frame MAC wrong",
    "replayed frame",
    "protocol error",
    "out of range",
    "content refused (MAC/format)",
    "content version not newer",
    "storage fault",
    "busy",
    "unknown content kind",
)

KIND_NAMES = ("", "blacklist", "blacklist-delta", "fares", "whitelist", "config")


def code_name(code):
    if 0 <= code < len(CODE_NAMES):
        return CODE_NAMES[code]
    return "code %d" % code


def unpack_info(payload):
    """-> dict (host side)."""
    if len(payload) < INFO_LEN:
        raise ValueError("INFO too short")
    v = struct.unpack_from(INFO_FMT, payload, 0)
    keys = (
        "device_id", "firmware", "first_seq", "acked_seq", "next_seq", "rec_size",
        "blacklist_version", "fares_version", "whitelist_version", "config_version",
        "clock", "faults",
    )
    d = {}
    for i in range(len(keys)):
        d[keys[i]] = v[i]
    return d



def rz_decode(payload, off, count, rs):
    """Host side: -> bytes of count records of rs bytes; ValueError when malformed."""
    out = bytearray(count * rs)
    prev = bytearray(rs)
    o = 0
    for r in range(count):
        i = 0
        while i < rs:
            if off >= len(payload):
                raise ValueError("RECORDS_Z truncated")
            c = payload[off]
            off += 1
            if c >= 0x80:
                n = c - 0x7F
                if i + n > rs:
                    raise ValueError("RECORDS_Z run crosses a record")
                for k in range(n):
                    out[o + i + k] = prev[i + k]
                i += n
            else:
                n = c + 1
                if i + n > rs or off + n > len(payload):
                    raise ValueError("RECORDS_Z literal overrun")
                for k in range(n):
                    out[o + i + k] = payload[off + k] ^ prev[i + k]
                off += n
                i += n
        prev[:] = out[o : o + rs]
        o += rs
    if off != len(payload):
        raise ValueError("RECORDS_Z trailing bytes")
    return bytes(out)
