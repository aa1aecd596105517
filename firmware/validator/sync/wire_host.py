# validator.sync.wire_host: host side of the sync wire format (PROTOCOL.md): code and kind
# names, INFO decoding, RECORDS_Z decoding.
# SPDX-License-Identifier: MIT
#
# The depot client and tests only; the firmware never imports this module (its strings,
# dict keys and functions would cost heap on the device). Common subset.
import struct

from validator.sync.wire import encode

# Public names of validator.sync.wire's private consts (const() names beginning with _ take no
# heap on the device); host callers import them from here. Checked equal by
# tests/host/test_heap_budget.py (and the firmware modules' own copies by
# tests/host/test_sync_consts.py).
HDR = 11
MAC_LEN = 16
CRC_LEN = 4
MAX_PAYLOAD = 2048
MAX_FRAME = 2079  # HDR + MAX_PAYLOAD + MAC_LEN + CRC_LEN
F_MAC = 1
F_DEFLATE = 2

# Message types (PROTOCOL.md §4)
T_HELLO = 0x01
T_CHALLENGE = 0x02
T_AUTH = 0x03
T_INFO = 0x04
T_INFO_REQ = 0x05
T_PULL = 0x10
T_RECORDS = 0x11
T_ACK = 0x12
T_PULL_END = 0x13
T_RECORDS_Z = 0x14
T_PUSH_BEGIN = 0x20
T_PUSH_DATA = 0x21
T_PUSH_END = 0x22
T_PUSH_ACK = 0x23
T_SET_CLOCK = 0x30
T_GET_FAULTS = 0x31
T_FAULTS = 0x32
T_RESULT = 0x3F
T_BYE = 0x7E
T_ERROR = 0x7F

# Result / error codes (PROTOCOL.md §4.4)
OK = 0
E_AUTH = 1
E_MAC = 2
E_REPLAY = 3
E_PROTO = 4
E_RANGE = 5
E_CONTENT = 6
E_VERSION = 7
E_STORAGE = 8
E_BUSY = 9
E_KIND = 10

# Content kinds (PROTOCOL.md §4.3)
K_BLACKLIST_FULL = 1
K_BLACKLIST_DELTA = 2
K_FARES = 3
K_WHITELIST = 4
K_CONFIG = 5
PULL_Z = 1  # PULL flags bit0: the host accepts RECORDS_Z
PROTO_VERSION = 1
INFO_LEN = 44
INFO_FMT = ">IIIIIHIIIIIH"  # INFO payload (PROTOCOL.md §4.1); session.py packs the same


def frame(ftype, payload=b"", seq=0, flags=0, mac=None):
    """Allocate and return one encoded frame (host side, tests)."""
    buf = bytearray(HDR + len(payload) + MAC_LEN + CRC_LEN)
    buf[HDR : HDR + len(payload)] = payload
    n = encode(buf, ftype, flags, seq, len(payload), mac)
    return bytes(buf[:n])


def pack_info(buf, off, dev, fw, first, acked, nxt, rec_size, vbl, vfare, vwl, vcfg, clk, nf):
    struct.pack_into(
        INFO_FMT, buf, off, dev, fw, first, acked, nxt, rec_size, vbl, vfare, vwl, vcfg, clk, nf
    )


def rz_worst(rs):
    """Largest RECORDS_Z coding of one rs-byte record (PROTOCOL.md §6)."""
    return rs + (rs + 127) // 128

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
