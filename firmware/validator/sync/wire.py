# validator.sync.wire: sync frame codec, shared by the firmware and the host tools.
# SPDX-License-Identifier: MIT
#
# Common subset (MicroPython + CPython): this is the ONLY implementation of the frame
# format in PROTOCOL.md §1; ykt sync imports it too. Layout:
#   SOF "YK" | type | flags | seq(4) | len(2) | hchk | payload | [mac(16)] | crc32(4)
# The decoder keeps one preallocated buffer of one maximum frame + _SLACK; bytes are read into
# its free tail (rx_space/rx_commit, or feed) and frames are parsed in place, so a decoded
# payload is a window of that buffer valid until the next rx_space/feed call.
#
# Every constant here is private (a const() name beginning with _ is inlined and takes no
# heap on the device; a public one costs a dict slot + qstr, ~40 B each). This table is the
# firmware's reference copy of PROTOCOL.md §1/§4: the sync modules that need a value keep
# their own private copy, and host callers import public names (wire_host.T_ACK,
# wire_host.frame, ...) from validator.sync.wire_host. tests/host/test_sync_consts.py
# checks every copy against this table.
import struct
from binascii import crc32

from micropython import const

_SOF0 = const(0x59)  # "Y"
_SOF1 = const(0x4B)  # "K"
_HDR = const(11)
_MAC_LEN = const(16)
_CRC_LEN = const(4)
_MAX_PAYLOAD = const(2048)
_MAX_FRAME = const(2079)  # _HDR + _MAX_PAYLOAD + _MAC_LEN + _CRC_LEN
_F_MAC = const(1)
_F_DEFLATE = const(2)
_F_KNOWN = const(3)
# Decoder room beyond one maximum frame. The host sends one frame and waits (PUSH_DATA ->
# PUSH_ACK) or a window of 35-byte ACKs, so a small margin keeps reads large enough; it
# only has to be >= 1 for a partial frame to leave room after compaction.
_SLACK = const(64)

# Message types (PROTOCOL.md §4)
_T_HELLO = const(0x01)
_T_CHALLENGE = const(0x02)
_T_AUTH = const(0x03)
_T_INFO = const(0x04)
_T_INFO_REQ = const(0x05)
_T_PULL = const(0x10)
_T_RECORDS = const(0x11)
_T_ACK = const(0x12)
_T_PULL_END = const(0x13)
_T_RECORDS_Z = const(0x14)
_T_PUSH_BEGIN = const(0x20)
_T_PUSH_DATA = const(0x21)
_T_PUSH_END = const(0x22)
_T_PUSH_ACK = const(0x23)
_T_SET_CLOCK = const(0x30)
_T_GET_FAULTS = const(0x31)
_T_FAULTS = const(0x32)
_T_RESULT = const(0x3F)
_T_BYE = const(0x7E)
_T_ERROR = const(0x7F)

# Result / error codes (PROTOCOL.md §4.4)
_OK = const(0)
_E_AUTH = const(1)
_E_MAC = const(2)
_E_REPLAY = const(3)
_E_PROTO = const(4)
_E_RANGE = const(5)
_E_CONTENT = const(6)
_E_VERSION = const(7)
_E_STORAGE = const(8)
_E_BUSY = const(9)
_E_KIND = const(10)

# Content kinds (PROTOCOL.md §4.3)
_K_BLACKLIST_FULL = const(1)
_K_BLACKLIST_DELTA = const(2)
_K_FARES = const(3)
_K_WHITELIST = const(4)
_K_CONFIG = const(5)
_PULL_Z = const(1)  # PULL flags bit0: the host accepts RECORDS_Z
_PROTO_VERSION = const(1)
_INFO_LEN = const(44)


def encode(buf, ftype, flags, seq, plen, mac=None):
    """Finish a frame whose payload the caller already placed at buf[_HDR:_HDR+plen].

    mac: an object with tag_into(hdr_mv, payload_mv, out_mv) (auth.Hmac) or None.
    Returns the frame length. buf must hold _HDR + plen + _MAC_LEN + _CRC_LEN bytes.
    """
    if plen > _MAX_PAYLOAD:
        raise ValueError("payload too long")
    if mac is not None:
        flags |= _F_MAC
    buf[0] = _SOF0
    buf[1] = _SOF1
    struct.pack_into(">BBIH", buf, 2, ftype, flags, seq, plen)
    mv = memoryview(buf)
    buf[10] = crc32(mv[2:10]) & 0xFF
    end = _HDR + plen
    if mac is not None:
        mac.tag_into(mv[2:10], mv[_HDR:end], mv[end : end + _MAC_LEN])
        end += _MAC_LEN
    struct.pack_into(">I", buf, end, crc32(mv[2:end]))
    return end + _CRC_LEN


class Decoder:
    """Incremental, resynchronising frame parser over one preallocated buffer.

    After next() returns True: type, flags, seq, plen, payload (memoryview), and
    hdr (memoryview of bytes 2..9, the MAC'd header) and tag (memoryview or None)
    describe the frame until the next rx_space()/feed().
    Counters: bad_header, bad_crc, dropped (bytes skipped while hunting).
    """

    def __init__(self, cap=_MAX_FRAME + _SLACK):
        if cap < _MAX_FRAME:
            raise ValueError("decoder buffer too small")
        self.buf = bytearray(cap)
        self.mv = memoryview(self.buf)
        self.lo = 0
        self.hi = 0
        self.type = 0
        self.flags = 0
        self.seq = 0
        self.plen = 0
        self.payload = None
        self.hdr = None
        self.tag = None
        self.bad_header = 0
        self.bad_crc = 0
        self.dropped = 0
        self.frames = 0

    def reset(self):
        self.lo = self.hi = 0

    def pending(self):
        """Bytes held that are not yet a complete frame."""
        return self.hi - self.lo

    def skip(self):
        """Give up on the partial frame at the head (the line went quiet in the middle of
        it: a noise header announced a length that never came); the next next() rescans
        from the byte after its start, so a real frame inside it is still found."""
        if self.hi > self.lo:
            self.lo += 1
            self.dropped += 1

    def rx_space(self):
        """Writable window for link.readinto(); then call rx_commit(n)."""
        # an incomplete frame starts at lo and is < _MAX_FRAME, so after compaction at
        # least _SLACK bytes are free; with nothing held, start over at 0 (no copy) so the
        # next read can take a whole frame
        lo, hi = self.lo, self.hi
        if lo and (lo == hi or len(self.buf) - hi < _SLACK):
            if hi > lo:
                self.mv[0 : hi - lo] = self.mv[lo:hi]
            self.hi = hi - lo
            self.lo = 0
        return self.mv[self.hi :]

    def rx_commit(self, n):
        if n:
            self.hi += n

    def feed(self, data):
        """Copy bytes in; returns how many were taken (all unless the buffer is full)."""
        sp = self.rx_space()
        n = len(data)
        if n > len(sp):
            n = len(sp)
        sp[:n] = data[:n] if n < len(data) else data
        self.hi += n
        return n

    def next(self):
        buf = self.buf
        while True:
            lo, hi = self.lo, self.hi
            if hi - lo < 2:
                if hi - lo == 1 and buf[lo] != _SOF0:
                    self.lo = hi
                    self.dropped += 1
                return False
            if buf[lo] != _SOF0 or buf[lo + 1] != _SOF1:
                i = buf.find(b"YK", lo + 1, hi)
                if i < 0:
                    # keep a trailing "Y": it may be the start of the next SOF
                    i = hi - 1 if buf[hi - 1] == _SOF0 else hi
                self.dropped += i - lo
                self.lo = i
                continue
            if hi - lo < _HDR:
                return False
            mv = self.mv
            flags = buf[lo + 3]
            plen = (buf[lo + 8] << 8) | buf[lo + 9]
            if (
                crc32(mv[lo + 2 : lo + 10]) & 0xFF != buf[lo + 10]
                or plen > _MAX_PAYLOAD
                or flags & ~_F_KNOWN
            ):
                self.bad_header += 1
                self.lo = lo + 1
                self.dropped += 1
                continue
            end = lo + _HDR + plen
            if flags & _F_MAC:
                end += _MAC_LEN
            if hi < end + _CRC_LEN:
                return False
            c = (buf[end] << 24) | (buf[end + 1] << 16) | (buf[end + 2] << 8) | buf[end + 3]
            if crc32(mv[lo + 2 : end]) != c:
                self.bad_crc += 1
                self.lo = lo + 1
                self.dropped += 1
                continue
            self.type = buf[lo + 2]
            self.flags = flags
            self.seq = (buf[lo + 4] << 24) | (buf[lo + 5] << 16) | (buf[lo + 6] << 8) | buf[lo + 7]
            self.plen = plen
            p = lo + _HDR
            self.hdr = mv[lo + 2 : lo + 10]
            self.payload = mv[p : p + plen]
            self.tag = mv[p + plen : end] if flags & _F_MAC else None
            self.lo = end + _CRC_LEN
            self.frames += 1
            return True


# -- RECORDS_Z record delta coding (PROTOCOL.md §6) -----------------------------------
# Consecutive records share most bytes (device, terminal, line, vehicle, date, key
# version, reserved zeros), so each record is XORed with the one before it in the batch
# (the first with zeros) and the result is run-length coded:
#   control c < 0x80 : c + 1 literal bytes follow
#   control c >= 0x80: c - 0x7F zero bytes (1 .. 128)
# Worst case (no zero byte at all): rs + ceil(rs / 128) bytes per record.


def rz_encode(prev, cur, rs, out, o):
    """Append the coding of cur (XOR prev) to out at o; -> new o. No allocation."""
    i = 0
    while i < rs:
        if cur[i] == prev[i]:
            j = i + 1
            while j < rs and j - i < 128 and cur[j] == prev[j]:
                j += 1
            out[o] = 0x7F + (j - i)
            o += 1
            i = j
        else:
            j = i + 1
            # a literal run ends at a pair of equal bytes (a single one is cheaper inline)
            while j < rs and j - i < 128 and not (
                cur[j] == prev[j] and (j + 1 >= rs or cur[j + 1] == prev[j + 1])
            ):
                j += 1
            out[o] = j - i - 1
            o += 1
            while i < j:
                out[o] = cur[i] ^ prev[i]
                o += 1
                i += 1
    return o
