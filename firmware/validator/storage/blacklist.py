# validator.storage.blacklist: million-entry card blacklist on NOR, 2 flash reads per lookup.
# SPDX-License-Identifier: MIT
#
# FORMAT.md §5. Keys are a lossless 8-byte reduction of the application serial
# (key_of); a bank stores groups of up to 64 keys sharing a 2-byte prefix as 6-byte
# suffixes (6.125 bytes per entry), a fence of each group's first key, and a RAM index of
# the first key of every 64-group fence chunk. Two banks ping-pong: updates (full list or
# delta merged with the active bank) are built in the inactive bank and switched by
# programming its header last. Updates arrive as the body of a content container that
# sync (auth + target) unwraps, verifies and checks for rollback: this module never sees
# the container, and its caller commits only what sync verified.
# contains() is on the tap path: buffers made once, no allocation.
import binascii
import struct

from micropython import const

from validator.errors import StorageError
from validator.storage.journal import program_span

_VERSION = const(1)
_HDR = const(64)
_G = const(64)  # keys per group
_SUF = const(6)
_LEAF = const(384)  # _G * _SUF
_CHUNK = const(512)  # fence entries per chunk (64) * 8
# Indices of the build state (Blacklist._b) and the stream state (Blacklist._st)
_B_KIND = const(0)
_B_VERSION = const(1)
_B_BANK = const(2)
_B_NG = const(3)
_B_NE = const(4)
_B_GN = const(5)
_B_GK = const(6)
_B_LEAF = const(7)
_B_FENCE = const(8)
_B_IDX = const(9)
_B_LAST = const(10)
_B_ERASED = const(11)
_B_ERR = const(12)
_B_OLD = const(13)
_B_OK = const(14)
_S_TOTAL = const(0)
_S_SEEN = const(1)
_S_HDR = const(2)
_S_ENT = const(3)
_S_KIND = const(5)
_S_ERR = const(6)
_S_COUNT = const(7)
_S_ESZ = const(8)
_S_VERSION = const(9)

# body kinds (the container's kind, sync/PROTOCOL.md §4.3) and delta ops (FORMAT.md §5);
# blacklist_host names them for host callers (tests/host/test_storage_consts.py checks)
_KIND_FULL = const(1)
_KIND_DELTA = const(2)
_OP_REMOVE = const(0)
_OP_ADD = const(1)

# apply()/end() results (business outcomes, not faults)
OK = const(0)
REJ_FORMAT = const(2)  # malformed body or unsorted keys
REJ_BASE = const(4)  # delta base is not the active version
REJ_FULL = const(5)  # more groups than a bank holds


def key_of(serial, out):
    """8-byte key of a 10-byte BCD application serial (FORMAT.md §5), allocation-free."""
    ok = (serial[0] >> 4) == 0
    if ok:
        for i in range(10):
            b = serial[i]
            if (b >> 4) > 9 or (b & 15) > 9:
                ok = False
                break
    if not ok:
        out[0] = 0xFF
        for i in range(7):
            out[1 + i] = serial[3 + i]
        return out
    for i in range(8):
        out[i] = 0
    for n in range(1, 20):  # digits 1..19, most significant first: out = out * 10 + d
        b = serial[n >> 1]
        c = (b & 15) if n & 1 else (b >> 4)
        for j in range(7, -1, -1):
            v = out[j] * 10 + c
            out[j] = v & 0xFF
            c = v >> 8
    return out


def _cmp(a, ao, b, bo, n):
    for i in range(n):
        x = a[ao + i]
        y = b[bo + i]
        if x != y:
            return -1 if x < y else 1
    return 0


class Blacklist:
    """Blacklist store on region (offset, length): two banks.

    Updates are container bodies (FORMAT.md §5): apply(kind, version, body) for a whole one,
    begin_stream/write/end for one streamed into the shadow bank. Whether the content is
    genuine and newer is decided before, by sync; end() is the switch."""

    def __init__(self, flash, region):
        off, length = region
        bs = flash.block_size
        bank = (length // 2) // bs * bs
        if off % bs or bank < 3 * bs:
            raise StorageError("blacklist geometry")
        self.flash = flash
        self._off = off
        self._bank = bank  # bank i starts at _off + i * _bank
        g = (bank - bs) // (_LEAF + 8) + 1
        while g > 0:
            ch = (g + _G - 1) // _G
            fence = (ch * _CHUNK + bs - 1) // bs * bs
            if bs + fence + g * _LEAF <= bank and ch * 8 <= bs - _HDR:
                break
            g -= 1
        self.max_groups = g
        # the fence starts at block 1 of the bank (offset flash.block_size), the leaves after it
        self._leaf_off = bs + fence
        self._st = None  # stream state of the body being received
        # RAM index: first key of every fence chunk, 8 B per 64 groups (FORMAT.md §5): 2 680 B
        # for the sim plan's 8 MiB banks, 2 032 B for the 16 MiB board's
        self._idx = bytearray((g + _G - 1) // _G * 8)
        # one lookup buffer: the fence chunk (512 B) is searched before the leaf (384 B) is
        # read over it, so both reads share it; mount reads bank headers (64 B) into it too
        self._fb = bytearray(_CHUNK)
        self._lbm = memoryview(self._fb)[0:_LEAF]
        self._k = bytearray(8)
        self._act = -1
        self._gen = 0
        self.version = 0
        self.entries = 0
        self._groups = 0
        self._b = None  # build state

    # -- mount ---------------------------------------------------------------------
    def _read_hdr(self, bank):
        """-> (gen, version, entries, groups, idx_crc) or None."""
        h = memoryview(self._fb)[0:_HDR]  # not the tap path: a view per call is fine
        self.flash.read(self._off + bank * self._bank, h)
        if bytes(h[0:4]) != b"YKBL":
            return None
        if binascii.crc32(memoryview(h)[0:60]) != struct.unpack_from(">I", h, 60)[0]:
            return None
        if h[4] != _VERSION:
            raise StorageError("blacklist format version %d" % h[4])
        gen, ver, ent, grp, fo, lo, icrc = struct.unpack_from(">IIIIIII", h, 8)
        if fo != self.flash.block_size or lo != self._leaf_off or grp > self.max_groups:
            return None  # another geometry: not ours
        return gen, ver, ent, grp, icrc

    def mount(self):
        a = self._read_hdr(0)
        b = self._read_hdr(1)
        # bank a is newer when 0 < (gen_a - gen_b) mod 2^32 < 2^31 (journal.seq_newer, inlined:
        # one module-level name less)
        newer = a is not None and b is not None and 0 < (a[0] - b[0]) & 0xFFFFFFFF < 0x80000000
        order = (0, 1) if b is None or newer else (1, 0)
        self._act = -1
        self.version = self.entries = self._groups = 0
        for bank in order:
            h = a if bank == 0 else b
            if h is None:
                continue
            ch = (h[3] + _G - 1) // _G
            idx = memoryview(self._idx)[0 : ch * 8]
            self.flash.read(self._off + bank * self._bank + _HDR, idx)
            if binascii.crc32(idx) != h[4]:
                continue  # damaged index: fall back to the older list
            self._act = bank
            self._gen, self.version, self.entries, self._groups = h[0], h[1], h[2], h[3]
            break
        return self

    # -- lookup (tap path) ------------------------------------------------------------
    def contains(self, serial):
        """True when the card with this 10-byte application serial is blacklisted."""
        return self.contains_key(key_of(serial, self._k))

    def contains_key(self, k):
        """Two flash reads: fence chunk, then leaf (FORMAT.md §5). No allocation."""
        ng = self._groups
        if self._act < 0 or ng == 0:
            return False
        idx = self._idx
        if _cmp(k, 0, idx, 0, 8) < 0:
            return False
        lo = 0
        hi = (ng + _G - 1) // _G - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _cmp(k, 0, idx, mid * 8, 8) >= 0:
                lo = mid
            else:
                hi = mid - 1
        base = self._off + self._act * self._bank
        g0 = lo * _G
        fb = self._fb
        self.flash.read(base + self.flash.block_size + g0 * 8, fb)  # read 1
        n = ng - g0
        if n > _G:
            n = _G
        lo = 0
        hi = n - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _cmp(k, 0, fb, mid * 8, 8) >= 0:
                lo = mid
            else:
                hi = mid - 1
        if k[0] != fb[lo * 8] or k[1] != fb[lo * 8 + 1]:
            return False  # a group never spans two prefixes
        lb = fb  # the fence chunk is no longer needed: the leaf goes over it
        self.flash.read(base + self._leaf_off + (g0 + lo) * _LEAF, self._lbm)  # read 2
        lo = 0
        hi = _G - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            c = _cmp(k, 2, lb, mid * _SUF, _SUF)
            if c == 0:
                return True
            if c < 0:
                hi = mid - 1
            else:
                lo = mid + 1
        return False

    # -- iteration (host tools, delta merge) -------------------------------------------
    def keys(self, bank=None):
        """Yield every key of a bank (default: the active one) as bytes. Not for the tap path."""
        bank = self._act if bank is None else bank
        if bank < 0:
            return
        h = self._read_hdr(bank)
        if h is None:
            return
        base = self._off + bank * self._bank
        f = bytearray(8)
        leaf = bytearray(_LEAF)
        for g in range(h[3]):
            self.flash.read(base + self.flash.block_size + g * 8, f)
            self.flash.read(base + self._leaf_off + g * _LEAF, leaf)
            prev = None
            for j in range(_G):
                s = bytes(leaf[j * _SUF : j * _SUF + _SUF])
                if s == prev:
                    break  # padding repeats the last suffix
                prev = s
                yield bytes(f[0:2]) + s

    # -- building (never on the tap path) ----------------------------------------------
    def begin(self, kind, version, base=0):
        """Start building a new list in the inactive bank; commit() makes it active. Only
        verified, newer content may be committed: sync decides that (sync.target)."""
        if kind == _KIND_DELTA and (self._act < 0 or base != self.version):
            return REJ_BASE
        t = 0 if self._act < 0 else 1 - self._act
        # build state: a list indexed by _B_* consts (a dict with string keys would put
        # every key in the qstr pool of the device)
        # _B_IDX is the running CRC-32 of the new RAM index: its entries go to flash (block 0,
        # after the header) as each fence chunk starts, not into a second index in RAM
        b = [kind, version, t, 0, 0, 0, bytearray(8), bytearray(_LEAF), bytearray(_CHUNK),
             0, None, 1, OK,
             self.keys() if kind == _KIND_DELTA else None, None]
        self._b = b
        # the header block goes first: from here on this bank cannot validate (FORMAT.md §5)
        self.flash.erase((self._off + t * self._bank) // self.flash.block_size)
        if b[_B_OLD] is not None:
            b[_B_OK] = next(b[_B_OLD], None)
        return OK

    def add(self, key, op=_OP_ADD):
        """Feed the next key (ascending). Delta: op _OP_ADD or _OP_REMOVE."""
        b = self._b
        if b is None or b[_B_ERR]:
            return
        k = bytes(key)
        if len(k) != 8 or (b[_B_LAST] is not None and k <= b[_B_LAST]):
            b[_B_ERR] = REJ_FORMAT
            return
        b[_B_LAST] = k
        if b[_B_KIND] == _KIND_FULL:
            if op != _OP_ADD:
                b[_B_ERR] = REJ_FORMAT
                return
            self._emit(k)
            return
        while b[_B_OK] is not None and b[_B_OK] < k:
            self._emit(b[_B_OK])
            b[_B_OK] = next(b[_B_OLD], None)
        if b[_B_OK] == k:
            b[_B_OK] = next(b[_B_OLD], None)
        if op == _OP_ADD:
            self._emit(k)

    def _emit(self, k):
        b = self._b
        if b[_B_ERR]:
            return
        gn = b[_B_GN]
        gk = b[_B_GK]
        if gn and (gn == _G or gk[0] != k[0] or gk[1] != k[1]):
            self._flush_group()
            gn = 0
        if gn == 0:
            gk[:] = k
        leaf = b[_B_LEAF]
        leaf[gn * _SUF : gn * _SUF + _SUF] = k[2:8]
        b[_B_GN] = gn + 1
        b[_B_NE] += 1

    def _prog(self, addr, data):
        """Program data at addr (page splits; erase each block before its first program)."""
        fl = self.flash
        bs = self.flash.block_size
        b = self._b
        base = (self._off + b[_B_BANK] * self._bank) // bs
        end_blk = (addr + len(data) - 1) // bs - base
        while b[_B_ERASED] <= end_blk:
            fl.erase(base + b[_B_ERASED])
            b[_B_ERASED] += 1
        program_span(fl, addr, data)

    def _flush_group(self):
        b = self._b
        gn = b[_B_GN]
        if gn == 0:
            return
        g = b[_B_NG]
        if g >= self.max_groups:
            b[_B_ERR] = REJ_FULL
            return
        leaf = b[_B_LEAF]
        for j in range(gn, _G):  # pad with the last suffix
            leaf[j * _SUF : j * _SUF + _SUF] = leaf[(gn - 1) * _SUF : gn * _SUF]
        base = self._off + b[_B_BANK] * self._bank
        # one erase frontier for the whole bank: fence blocks precede the leaf blocks, so
        # every block is erased once, before its first program, whichever stream gets there
        self._prog(base + self._leaf_off + g * _LEAF, leaf)
        fence = b[_B_FENCE]
        c = g % _G
        fence[c * 8 : c * 8 + 8] = b[_B_GK]
        if c == 0:  # first group of a fence chunk: its key is the chunk's RAM index entry
            self._prog(base + _HDR + (g // _G) * 8, b[_B_GK])
            b[_B_IDX] = binascii.crc32(b[_B_GK], b[_B_IDX])
        if c == _G - 1:
            self._prog(base + self.flash.block_size + (g - c) * 8, fence)
        b[_B_NG] = g + 1
        b[_B_GN] = 0

    def commit(self):
        """Finish the build and switch atomically (header programmed last). -> OK or REJ_*."""
        b = self._b
        if b is None:
            return REJ_FORMAT
        if b[_B_KIND] == _KIND_DELTA:
            while b[_B_OK] is not None:
                self._emit(b[_B_OK])
                b[_B_OK] = next(b[_B_OLD], None)
        self._flush_group()
        if b[_B_ERR]:
            self._b = None
            return b[_B_ERR]
        base = self._off + b[_B_BANK] * self._bank
        ng = b[_B_NG]
        c = ng % _G
        if c:
            fo = base + self.flash.block_size + (ng - c) * 8
            self._prog(fo, memoryview(b[_B_FENCE])[0 : c * 8])
        h = bytearray(_HDR)
        h[0:4] = b"YKBL"
        h[4] = _VERSION
        gen = (self._gen + 1) & 0xFFFFFFFF
        struct.pack_into(
            ">IIIIIII", h, 8, gen, b[_B_VERSION], b[_B_NE], ng, self.flash.block_size,
            self._leaf_off, b[_B_IDX],
        )
        struct.pack_into(">I", h, 60, binascii.crc32(memoryview(h)[0:60]))
        self.flash.program(base, h)  # the switch
        self._b = None
        self._act = b[_B_BANK]
        self._gen = gen
        self.version = b[_B_VERSION]
        self.entries = b[_B_NE]
        self._groups = ng
        # the new RAM index: read back what the build programmed (FORMAT.md §5)
        self.flash.read(base + _HDR, memoryview(self._idx)[0 : (ng + _G - 1) // _G * 8])
        return OK

    def abort(self):
        self._b = None
        self._st = None

    # -- content bodies (FORMAT.md §5), unwrapped and verified by sync --------------
    def apply(self, kind, version, body):
        """Build and switch to a whole body (kind 1 full / 2 delta). -> OK/REJ_*."""
        r = self.begin_stream(kind, version, len(body))
        if r == OK:
            self.write(body)
        return self.end()

    def begin_stream(self, kind, version, body_len):
        """Start receiving a body of body_len bytes: write() its bytes in order, end()."""
        if kind != _KIND_FULL and kind != _KIND_DELTA:
            self._st = None
            return REJ_FORMAT
        # stream state, indexed by _S_* consts (the body's own header is parsed as it comes)
        self._st = [body_len, 0, bytearray(), bytearray(), 0, kind, OK, 0, 0, version]
        return OK

    def write(self, chunk):
        """Next bytes of the streamed body, in order (a memoryview is not copied)."""
        st = self._st
        if st is None:
            return
        for x in chunk:
            st[_S_SEEN] += 1
            if st[_S_ERR]:
                continue
            if st[_S_ESZ] == 0:
                st[_S_HDR].append(x)
                self._parse_header(st)
                continue
            e = st[_S_ENT]
            e.append(x)
            if len(e) == st[_S_ESZ]:
                if st[_S_COUNT] == 0:
                    st[_S_ERR] = REJ_FORMAT
                    continue
                st[_S_COUNT] -= 1
                if st[_S_ESZ] == 8:
                    self.add(e, _OP_ADD)
                else:
                    if e[0] > _OP_ADD:
                        st[_S_ERR] = REJ_FORMAT
                    self.add(memoryview(e)[1:9], e[0])
                st[_S_ENT] = bytearray()

    def _parse_header(self, st):
        """The body's header: full count(4); delta base(4) count(4) (FORMAT.md §5)."""
        h = st[_S_HDR]
        if st[_S_KIND] == _KIND_FULL:
            if len(h) < 4:
                return
            base, count, esz, hb = 0, struct.unpack_from(">I", h, 0)[0], 8, 4
        else:
            if len(h) < 8:
                return
            base, count = struct.unpack_from(">II", h, 0)
            esz, hb = 9, 8
        if hb + count * esz != st[_S_TOTAL]:
            st[_S_ERR] = REJ_FORMAT
            return
        st[_S_ESZ], st[_S_COUNT] = esz, count
        st[_S_ERR] = self.begin(st[_S_KIND], st[_S_VERSION], base)

    def end(self):
        """Finish a streamed body and switch to it. -> OK or REJ_*."""
        st = self._st
        self._st = None
        if st is None:
            return REJ_FORMAT
        err = st[_S_ERR]
        if not err and (st[_S_SEEN] != st[_S_TOTAL] or st[_S_ESZ] == 0 or st[_S_COUNT]):
            err = REJ_FORMAT
        if err:
            if self._b is not None and not self._b[_B_ERR]:
                self._b[_B_ERR] = err
            self.abort()
            return err
        if self._b is not None and self._b[_B_ERR]:
            e = self._b[_B_ERR]
            self.abort()
            return e
        return self.commit()
