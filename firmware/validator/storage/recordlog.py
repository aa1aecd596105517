# validator.storage.recordlog: power-safe append-only record log on raw NOR + ping-pong journals.
# SPDX-License-Identifier: MIT
#
# Format, recovery procedure and bounds: FORMAT.md §3 (log) and §4 (journal). Design:
# fixed 128-byte slots in 4 KiB blocks used in physical order; the record body is
# programmed before its commit word, so a cut leaves a torn slot that is skipped (it
# never got a sequence number) or a whole record. Blocks are erased only by maintain(),
# and only when every record in them is at or below the depot watermark.
# append() is the tap path: no erase, no allocation (buffers/memoryviews made here).
import binascii
import struct

from micropython import const

from validator.errors import StorageError
from validator.storage.journal import Journal, TearStore, is_blank  # noqa: F401 (app imports TearStore here)

_SLOT = const(128)
_VERSION = const(1)
_AHEAD = const(2)  # prepared empty blocks maintain() keeps ahead of the current block
_HDR_LEN = const(24)
# record image offsets and version (FORMAT.md §2), private copies of validator.storage.record's
# (tests/host/test_storage_consts.py checks they agree)
_O_VERSION = const(4)
_O_LENGTH = const(6)
_O_SEQ = const(8)
_O_CRC = const(124)
_REC_VERSION = const(1)
# slot classes: the same values as validator.storage.journal's (tests/host/test_storage_consts.py)
_BLANK = const(0)
_VALID = const(1)
_CORRUPT = const(2)
_TORN = const(3)

# block-header magic b"YKLB" (FORMAT.md §3) is written as literals below; _MAGIC_CRC is
# binascii.crc32(b"YKLB") (a const: no module-level objects or names in the heap)
_MAGIC_CRC = const(0x2F90DDA0)


class RecordLog:
    """Record log over flash region log=(offset, length), watermark journal wm=(offset, length).

    mount() once at boot; append(img) on the tap path; maintain() in idle time;
    read(seq, buf) / ack(seq) for the sync engine. first_seq, acked_seq, next_seq (plain
    ints: callers read them, never write) and full are attributes; corrupt counts damaged
    records met by read() and mount().
    """

    def __init__(self, flash, log, wm):
        off, length = log
        bs = flash.block_size
        if off % bs or length % bs or bs % _SLOT or length // bs < 3:
            raise StorageError("log geometry")
        self.flash = flash
        self._off = off
        self._B = length // bs
        self._S = bs // _SLOT
        self.capacity = self._B * (self._S - 1)
        self._wm = Journal(flash, wm[0], wm[1], 16, 8)
        # tap-path buffers, made once; image is the log's own 128-byte record image (fill it,
        # then append())
        self.image = bytearray(_SLOT)
        mv = memoryview(self.image)
        self._body = mv[4:]
        self._crcmv = mv[4 : _O_CRC]
        self._cw = mv[0:4]
        self._sb = bytearray(_SLOT)  # scan buffer (mount, read, maintain)
        self._hb = bytearray(_HDR_LEN)  # block headers; the 4-byte watermark entry too
        self.corrupt = 0
        self.torn = 0
        self.header_repairs = 0  # block headers read through their second copy
        self.reads_at_mount = 0
        self.acked_seq = 0
        self._cseq = -1  # read cursor: seq expected at (_cblk, _cslot)
        self._cblk = 0
        self._cslot = 0

    # -- addresses and small readers ------------------------------------------
    # blocks are used in physical order and wrap: the next block is (b + 1) % _B (FORMAT.md §3)
    def _addr(self, b, s):
        return self._off + (b * self._S + s) * _SLOT

    def _hdr(self, b):
        """Lap of block b, or -1 when its header is not valid.

        Two copies of the lap, each with its own CRC (FORMAT.md §3): one flipped bit
        cannot invalidate a header, so the binary search over headers stays monotone."""
        h = self._hb
        self.flash.read(self._addr(b, 0), h)
        if h[0:4] == b"YKLB" and binascii.crc32(memoryview(h)[0:12]) == struct.unpack_from(
            ">I", h, 12
        )[0]:
            if h[4] != _VERSION:
                raise StorageError("log format version %d" % h[4])
            return struct.unpack_from(">I", h, 8)[0]
        # the copy's CRC covers the magic too: CRC-32 of FF FF FF FF alone is FFFFFFFF,
        # so a blank copy would otherwise validate
        if binascii.crc32(memoryview(h)[16:20], _MAGIC_CRC) == struct.unpack_from(">I", h, 20)[0]:
            self.header_repairs += 1
            return struct.unpack_from(">I", h, 16)[0]
        return -1

    def _cls(self, b, s):
        """Read slot s of block b into self._sb; its class (FORMAT.md §2)."""
        buf = self._sb
        self.flash.read(self._addr(b, s), buf)
        if is_blank(buf, _SLOT):
            return _BLANK
        if binascii.crc32(memoryview(buf)[4:_O_CRC]) == struct.unpack_from(">I", buf, _O_CRC)[0]:
            return _VALID
        if buf[0] == 0xFF and buf[1] == 0xFF and buf[2] == 0xFF and buf[3] == 0xFF:
            return _TORN
        return _CORRUPT

    # -- mount / recovery (FORMAT.md §3) ----------------------------------------
    def mount(self):
        fl = self.flash
        r0 = fl.reads
        self._wm.mount()
        self.acked_seq = 0
        if self._wm.load(self._hb):  # the watermark entry: 4 bytes (FORMAT.md §4)
            self.acked_seq = struct.unpack_from(">I", self._hb, 0)[0]
        B, S = self._B, self._S
        h0 = self._hdr(0)
        if h0 >= 0:
            lap = h0
            lo, hi = 0, B - 1  # blocks 0..f carry lap; find f
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._hdr(mid) == lap:
                    lo = mid
                else:
                    hi = mid - 1
            f = lo
        else:
            hl = self._hdr(B - 1)
            f = B - 1
            lap = hl  # -1: nothing prepared yet (fresh region)
        self._f = f
        self._L = lap
        acked = self.acked_seq
        # current block: walk back from f over prepared, empty blocks
        ready = 0
        cur = f
        found = False
        if lap >= 0:
            for _ in range(B):
                if self._hdr(cur) < 0:
                    break
                if self._cls(cur, 1) != _BLANK:
                    found = True
                    break
                ready += 1
                cur = (cur - 1) % self._B
        self._ready = ready
        self._blk = cur
        self._empty_cur = not found
        self.corrupt = 0
        nxt = acked + 1
        if not found:
            self._slot = S
            self._old = -1
            self.first_seq = nxt
            self.next_seq = nxt
        else:
            lo, hi = 1, S  # slot lo is not blank; first blank in (lo, hi]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self._cls(cur, mid) == _BLANK:
                    hi = mid
                else:
                    lo = mid
            self._slot = hi
            self._old = self._find_oldest(f, lap)
            last = self._last_seq_before(cur, hi)
            if last >= 0 and last + 1 > nxt:
                nxt = last + 1
            self.next_seq = nxt
            # first seq: the first committed record from the oldest block on
            first = -1
            b = self._old
            for _ in range(B):
                first = self._first_seq_in(b)
                if first >= 0 or b == self._blk:
                    break
                b = (b + 1) % B
            self.first_seq = nxt if first < 0 or first > nxt else first
        self._cseq = -1
        self.reads_at_mount = fl.reads - r0
        return self

    def _find_oldest(self, f, lap):
        B = self._B
        if lap == 0 and f < B - 1 and self._hdr(f + 1) < 0:
            o = 0  # no wrap yet (FORMAT.md §3 step 4)
        else:
            o = (f + 1) % self._B
            if self._hdr(o) < 0:
                o = (o + 1) % self._B  # the block being prepared at the cut
        # prepared-but-empty blocks only follow the current one: if o is empty, the
        # current block is the oldest
        if o != self._blk and self._cls(o, 1) == _BLANK:
            o = self._blk
        return o

    def _last_seq_before(self, b, s):
        """Seq of the last committed record before slot s of block b (walks back)."""
        ncor = 0
        for _ in range(self._B):
            for i in range(s - 1, 0, -1):
                c = self._cls(b, i)
                if c == _VALID:
                    return struct.unpack_from(">I", self._sb, _O_SEQ)[0] + ncor
                if c == _CORRUPT:
                    ncor += 1
                    self.corrupt += 1
                elif c == _TORN:
                    self.torn += 1
            if b == self._old:
                break
            b = (b - 1) % self._B
            if self._hdr(b) < 0:
                break
            s = self._S
        return -1

    def _first_seq_in(self, b):
        """Seq of the first committed record in block b, -1 if it has no valid record."""
        ncor = 0
        for i in range(1, self._S):
            c = self._cls(b, i)
            if c == _VALID:
                return struct.unpack_from(">I", self._sb, _O_SEQ)[0] - ncor
            if c == _CORRUPT:
                ncor += 1
            elif c == _BLANK:
                break
        return -1

    # -- public state -------------------------------------------------------------
    @property
    def full(self):
        return self._slot >= self._S and self._ready == 0

    # -- tap path -------------------------------------------------------------------
    def append(self, img=None):
        """Commit one 128-byte record image; return its seq. No erase, no allocation.

        Stamps commit word, version, length, seq and CRC (FORMAT.md §2). Raises
        StorageError when the log is full (refuse the tap: R_STORAGE_FULL)."""
        if self._slot >= self._S:
            if self._ready == 0:
                raise StorageError("log full")
            self._blk = (self._blk + 1) % self._B
            self._slot = 1
            self._ready -= 1
            if self._empty_cur:
                self._empty_cur = False
                self._old = self._blk
        b = self.image
        if img is not None and img is not b:
            b[:] = img
        seq = self.next_seq
        b[_O_VERSION] = _REC_VERSION
        struct.pack_into(">HI", b, _O_LENGTH, _SLOT, seq)
        struct.pack_into(">I", b, _O_CRC, binascii.crc32(self._crcmv))
        b[0] = 0x59  # "YKR1"
        b[1] = 0x4B
        b[2] = 0x52
        b[3] = 0x31
        a = self._addr(self._blk, self._slot)
        self._slot += 1
        self.flash.program(a + 4, self._body)  # body first ...
        self.flash.program(a, self._cw)  # ... commit word last
        self.next_seq = seq + 1
        return seq

    # -- idle time ------------------------------------------------------------------
    def maintain(self):
        """Prepare blocks ahead of need (erase + header). Returns erases done."""
        n = 0
        while self._ready < _AHEAD:
            x = (self._f + 1) % self._B
            if x == self._blk:
                break
            # x lies in the run of blocks that hold records (oldest .. current)?
            old = self._old
            if old >= 0 and (x - old) % self._B <= (self._blk - old) % self._B and not (
                x == self._blk and self._empty_cur
            ):
                if x != old:
                    break  # cannot happen: records are contiguous from the oldest
                cnt = 0
                for i in range(1, self._S):
                    c = self._cls(x, i)
                    if c == _VALID or c == _CORRUPT:
                        cnt += 1
                last = self.first_seq + cnt - 1
                if last > self.acked_seq:
                    break  # unacknowledged: never overwrite (FORMAT.md §0.6)
                self._old = (x + 1) % self._B
                self.first_seq = last + 1
            lap = self._L + 1 if x == 0 else self._L
            self._prepare(x, lap)
            self._f = x
            self._L = lap
            self._ready += 1
            n += 1
        n += self._wm.maintain()
        return n

    def _prepare(self, x, lap):
        self.flash.erase(self._off // (self._S * _SLOT) + x)
        h = self._hb
        for i in range(4):
            h[i] = b"YKLB"[i]
        h[4] = _VERSION
        h[5] = h[6] = h[7] = 0xFF
        struct.pack_into(">I", h, 8, lap)
        struct.pack_into(">I", h, 12, binascii.crc32(memoryview(h)[0:12]))
        struct.pack_into(">I", h, 16, lap)
        struct.pack_into(">I", h, 20, binascii.crc32(memoryview(h)[16:20], _MAGIC_CRC))
        self.flash.program(self._addr(x, 0), h)

    # -- sync side --------------------------------------------------------------------
    def ack(self, seq):
        """The depot holds every record up to seq: advance the persistent watermark."""
        if seq >= self.next_seq:
            raise StorageError("ack beyond the log")
        if seq <= self.acked_seq:
            return
        struct.pack_into(">I", self._hb, 0, seq)
        self._wm.save(memoryview(self._hb)[0:4])  # sync path, not the tap path: a view is fine
        self.acked_seq = seq

    def read(self, seq, buf):
        """Copy record seq into buf (128 bytes); -> 128, or 0 when absent or corrupt."""
        if seq < self.first_seq or seq >= self.next_seq:
            return 0
        if seq == self._cseq:
            b, s, at = self._cblk, self._cslot, seq
        else:
            b = self._find_block(seq)
            s = 1
            at = self._first_seq_in(b)
            if at < 0:
                return 0
        for _ in range(self._B * self._S):
            if s >= self._S:
                if b == self._blk:
                    return 0
                b = (b + 1) % self._B
                s = 1
            c = self._cls(b, s)
            s += 1
            if c == _BLANK:
                return 0
            if c == _TORN:
                continue
            if c == _VALID:
                at = struct.unpack_from(">I", self._sb, _O_SEQ)[0]
            if at == seq:
                self._cseq, self._cblk, self._cslot = seq + 1, b, s
                if c == _CORRUPT:
                    self.corrupt += 1
                    return 0
                for i in range(_SLOT):
                    buf[i] = self._sb[i]
                return _SLOT
            at += 1
            if at > seq:
                return 0
        return 0

    def _find_block(self, seq):
        """Block holding seq: binary search over the blocks oldest .. current."""
        B = self._B
        n = (self._blk - self._old) % B + 1
        lo, hi = 0, n - 1  # block lo starts at or before seq
        while lo < hi:
            mid = (lo + hi + 1) // 2
            v = self._first_seq_in((self._old + mid) % B)
            if 0 <= v <= seq:
                lo = mid
            else:
                hi = mid - 1
        return (self._old + lo) % B
