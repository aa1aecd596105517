# validator.sync.xfer: the pull (records out) and push (content in) halves of the session.
# SPDX-License-Identifier: MIT
#
# A mixin of validator.sync.session.Session, split out so each module compiles within a
# 128 KiB heap when run from source. PROTOCOL.md §4.2 (PULL), §4.3 (PUSH), §6 (coding).
import struct

from micropython import const

from validator.sync import wire

# Private copies of validator.sync.wire's values (PROTOCOL.md §1, §4; checked equal by
# tests/host/test_sync_consts.py): a const is inlined, an imported name costs heap.
_HDR = const(11)
_MAX_PAYLOAD = const(2048)
_F_DEFLATE = const(2)
_PULL_Z = const(1)
_T_RECORDS = const(0x11)
_T_ACK = const(0x12)
_T_PULL_END = const(0x13)
_T_RECORDS_Z = const(0x14)
_T_PUSH_BEGIN = const(0x20)
_T_PUSH_DATA = const(0x21)
_T_PUSH_END = const(0x22)
_T_PUSH_ACK = const(0x23)
_OK = const(0)
_E_PROTO = const(4)
_E_RANGE = const(5)
_E_STORAGE = const(8)

_STEP_RECORDS = const(8)  # records read from flash per step
_REC_OFF = const(19)  # _HDR + first_seq(4) count(2) rec_size(2)
_MAX_WINDOW = const(8)
_DEFLATE_WBITS = const(10)
# Room kept for the push path's big transient blocks. DeflateIO allocates its decompressor
# state (1336 B on the 64-bit unix port, less on a 32-bit MCU) and a 1 << _DEFLATE_WBITS
# window at its first read; activating a pushed container parses it (rules.table) and
# writes it to flash. Blocks that size may not exist in a heap fragmented by boot and a
# day of taps (measured at a 120k heap after boot: 11.6 KB free, largest hole 864 B), so
# the session holds one block from boot and lets go of it only while it inflates a
# PUSH_DATA chunk or ends a push: the allocation that needs it triggers the collection
# that frees it, and _spare() takes it back afterwards. (Not around PUSH_BEGIN: the
# buffered container would settle in it for the whole push.)
_ROOM = const(2560)
_MAX_Z_RECORDS = const(512)  # records per RECORDS_Z batch (the payload limit decides too)


def _inflate(src, dst):
    """Raw-deflate src into dst (memoryview); -> length. PROTOCOL.md §6."""
    try:
        import io

        import deflate  # MicroPython: decompress-only DeflateIO
    except ImportError:
        import zlib

        out = zlib.decompress(bytes(src), -_DEFLATE_WBITS)
        if len(out) > len(dst):
            raise ValueError("inflated data too long")
        dst[: len(out)] = out
        return len(out)

    class _Src(io.IOBase):
        """The compressed payload read in place from the frame: io.BytesIO would need a
        copy of it (up to 2 KiB in one block). DeflateIO reads a byte at a time; the
        stream protocol hands readinto a stack buffer, so this allocates nothing."""

        def __init__(self, mv):
            self.mv = mv
            self.o = 0

        def readinto(self, b):
            o = self.o
            n = len(self.mv) - o
            if n > len(b):
                n = len(b)
            for i in range(n):
                b[i] = self.mv[o + i]
            self.o = o + n
            return n

    d = deflate.DeflateIO(_Src(src), deflate.RAW, _DEFLATE_WBITS)
    n = 0
    while n < len(dst):
        k = d.readinto(dst[n:])
        if not k:
            break
        n += k
    if d.read(1):
        raise ValueError("inflated data too long")
    return n


class Transfer:
    """Pull and push handlers; Session supplies the frame senders and calls _xfer_init."""

    def _xfer_init(self, target, txmv):
        # Every pull/push attribute is made here, at boot: the instance dict then never
        # grows mid-day (a rehash is one more block of up to ~750 B, hard to find in a
        # fragmented heap). Session + these stay <= 37 attributes, one MicroPython map size
        # (tests/fw/test_sync_session.py checks it).
        self.target = target
        self._txmv = txmv  # one frame: _HDR + payload + MAC + CRC
        # RECORDS_Z scratch, made at the first PULL that asks for it: the previous record of
        # the batch and a copy of the current one (the raw records themselves are read into
        # the tail of the frame buffer, _build_batch)
        self._zprev = None
        self._zcur = None
        self._sent_hw = 0  # highest record seq sent to any host since boot
        # pull: _pulling is 0 (no), 1 (RECORDS) or 2 (RECORDS_Z)
        self._pulling = 0
        self._building = False
        self._rec_size = 0
        self._max_rec = 0
        self._window = 0
        self._next = 0
        self._sess_acked = 0
        self._b_first = 0
        self._b_count = 0
        self._zoff = 0
        # push: _push_off is the next container offset while a push is open, -1 otherwise
        self._push_off = -1
        self._push_total = 0
        self._room = bytearray(_ROOM)

    # Provided by Session.
    def _send(self, ftype, plen):
        raise NotImplementedError

    def _result(self, req, code, arg=0):
        raise NotImplementedError

    def _error(self, code, end=True):
        raise NotImplementedError

    def _on_pull(self, p):
        if len(p) != 7 and len(p) != 8:
            return self._error(_E_PROTO)
        frm, win, maxr = struct.unpack_from(">IBH", p, 0)
        z = len(p) == 8 and p[7] & _PULL_Z
        i = self.target.info()
        rs = i[5]
        if not 0 < rs <= 1024:
            return self._error(_E_STORAGE)
        cap = _MAX_Z_RECORDS if z else (_MAX_PAYLOAD - 8) // rs
        if maxr == 0 or maxr > cap:
            maxr = cap
        if win == 0:
            win = 1
        if win > _MAX_WINDOW:
            win = _MAX_WINDOW
        if frm <= i[3]:
            frm = i[3] + 1  # never resend what the depot already confirmed
        if z and (self._zprev is None or len(self._zprev) != rs):
            self._zprev = self._zcur = None  # free the old scratch before making the new one
            self._zprev = bytearray(rs)
            self._zcur = bytearray(rs)
        self._pulling = 2 if z else 1
        self._rec_size = rs
        self._max_rec = maxr
        self._window = win
        self._next = frm
        self._sess_acked = frm - 1

    def _window_open(self):
        return self._next - 1 - self._sess_acked < self._window * self._max_rec

    def _start_batch(self):
        self._building = True
        self._b_first = 0
        self._b_count = 0
        self._zoff = _REC_OFF
        self._build_batch()

    def _build_batch(self):
        rs = self._rec_size
        z = self._pulling == 2
        want = self._max_rec - self._b_count
        if want > _STEP_RECORDS:
            want = _STEP_RECORDS
        if z:
            # worst RECORDS_Z coding of one record: rs + ceil(rs / 128) (PROTOCOL.md §6)
            room = (_HDR + _MAX_PAYLOAD - self._zoff) // (rs + (rs + 127) // 128)
            if want > room:
                want = room
            # Raw records go to the tail of the payload area and are coded to the front of
            # it. Coding never overtakes a record not yet copied out: record k+1 starts at
            # tail - (want-k-1)*rs >= zoff + (k+1)*worst (by `room`), the most that coding
            # records 0..k can write. So no separate raw-record scratch (8 records, 1 KiB).
            at = _HDR + _MAX_PAYLOAD - want * rs
            dst = self._txmv[at : at + want * rs]
        else:
            off = _REC_OFF + self._b_count * rs
            dst = self._txmv[off : off + want * rs]
        n = 0
        if want:
            try:
                first, n = self.target.read_records(self._next, dst, want)
            except Exception as e:
                self._building = False
                self._pulling = 0
                self.last_fault = e
                return self._error(_E_STORAGE)
            if n and self._b_count and first != self._next:
                n = 0  # a gap inside a batch: close this batch, the next starts at `first`
        if n:
            if not self._b_count:
                self._b_first = first
            if z:
                self._encode(n, rs, at)
            self._b_count += n
            self._next = first + n
        if want and n == want and self._b_count < self._max_rec:
            return  # more to read next step
        self._building = False
        if self._b_count:
            struct.pack_into(">IHH", self._txmv, _HDR, self._b_first, self._b_count, rs)
            last = self._b_first + self._b_count - 1
            if last > self._sent_hw:
                self._sent_hw = last
            if z:
                self._send(_T_RECORDS_Z, self._zoff - _HDR)
            else:
                self._send(_T_RECORDS, 8 + self._b_count * rs)
        else:
            self._pulling = 0
            struct.pack_into(">I", self._txmv, _HDR, self._next)
            self._send(_T_PULL_END, 4)

    def _encode(self, n, rs, at):
        """Delta-code n raw records at _tx[at:] onto the batch at _zoff (PROTOCOL.md §6)."""
        if not self._b_count:
            prev = self._zprev
            for i in range(rs):
                prev[i] = 0
        tx = self._txmv
        o = self._zoff
        for k in range(n):
            cur = self._zcur
            p = at + k * rs
            cur[:] = self._txmv[p : p + rs]  # copied out before coding can overwrite it
            o = wire.rz_encode(self._zprev, cur, rs, tx, o)
            self._zcur = self._zprev  # this record is the next one's previous
            self._zprev = cur
        self._zoff = o

    def _on_ack(self, p):
        if len(p) != 4:
            return self._error(_E_PROTO)
        upto = struct.unpack_from(">I", p, 0)[0]
        if upto > self._sent_hw:
            return self._result(_T_ACK, _E_RANGE, self._sent_hw)
        if self._pulling and upto > self._sess_acked:
            self._sess_acked = upto
        if upto > self.target.info()[3]:
            self.target.ack(upto)

    # -- push (PROTOCOL.md §4.3) ------------------------------------------------------

    def _on_push_begin(self, p):
        if len(p) != 5:
            return self._error(_E_PROTO)
        kind, total = struct.unpack_from(">BI", p, 0)
        if self._push_off >= 0:
            self.target.push_abort()
        code = self.target.push_begin(kind, total)
        self._push_total = total
        self._push_off = 0 if code == _OK else -1
        self._result(_T_PUSH_BEGIN, code)

    def _on_push_data(self, p, flags):
        if self._push_off < 0 or len(p) < 4:
            return self._result(_T_PUSH_DATA, _E_PROTO)
        off = struct.unpack_from(">I", p, 0)[0]
        if off == self._push_off:
            data = p[4:]
            if flags & _F_DEFLATE:
                self._room = None  # for the inflater's state and window (_ROOM)
                try:
                    n = _inflate(data, self._txmv[0:_MAX_PAYLOAD])
                except Exception:
                    n = -1
                self._spare()
                if n < 0:
                    return self._result(_T_PUSH_DATA, _E_PROTO, self._push_off)
                data = self._txmv[0:n]
            if self._push_off + len(data) > self._push_total:
                return self._result(_T_PUSH_DATA, _E_RANGE, self._push_off)
            code = self.target.push_write(off, data)
            if code != _OK:
                at = self._push_off
                self._push_off = -1
                self.target.push_abort()
                return self._result(_T_PUSH_DATA, code, at)
            self._push_off += len(data)
        struct.pack_into(">I", self._txmv, _HDR, self._push_off)
        self._send(_T_PUSH_ACK, 4)

    def _on_push_end(self):
        at = self._push_off
        if at < 0:
            return self._result(_T_PUSH_END, _E_PROTO)
        self._push_off = -1
        if at != self._push_total:
            self.target.push_abort()
            return self._result(_T_PUSH_END, _E_RANGE, at)
        self._room = None  # for activating the container (_ROOM)
        try:
            code, version = self.target.push_end()
        finally:
            self._spare()
        self._result(_T_PUSH_END, code, version)

    def _spare(self):
        """Take the room back after the work that used its block (_ROOM). On MicroPython's
        own heap, collect first so the room goes back into the lowest hole instead of
        wandering into (and splitting) the free run the next push needs; under CPython
        (host tests) a collection costs ~3 ms and places nothing."""
        if self._room is None:
            import gc

            if hasattr(gc, "mem_free"):
                gc.collect()
            try:
                self._room = bytearray(_ROOM)
            except MemoryError:
                pass  # no block that big now: try again after the next push step
