# validator.storage.journal: ping-pong journal of fixed-size entries; tear-recovery store.
# SPDX-License-Identifier: MIT
#
# FORMAT.md §4. Two halves; the valid half header with the newer 16-bit generation is
# active; entries are appended (body first, commit word last); the newest valid entry
# wins. maintain() moves to the other half before this one fills, so a write on the tap
# path never erases. Used for the depot watermark and the tear-recovery context.
import binascii
import struct

from micropython import const

from validator.errors import StorageError

# slot classes; validator.storage.recordlog keeps the same private copies (a const from
# another module is a run-time lookup and a public name here; tests/host/test_storage_consts.py
# checks they agree)
_BLANK = const(0)
_VALID = const(1)
_CORRUPT = const(2)
_TORN = const(3)



def program_span(flash, addr, data):
    """Program data at addr, split at page (prog_size) boundaries as NOR requires."""
    p = flash.prog_size
    mv = memoryview(data)
    o = 0
    n = len(data)
    while o < n:
        k = p - (addr + o) % p
        if k > n - o:
            k = n - o
        flash.program(addr + o, mv[o : o + k])
        o += k


def seq_newer(a, b, bits):
    """True when counter a is newer than b (0 < (a - b) mod 2^bits < 2^(bits-1))."""
    d = (a - b) & ((1 << bits) - 1)
    return 0 < d < (1 << (bits - 1))


def is_blank(buf, n):
    for i in range(n):
        if buf[i] != 0xFF:
            return False
    return True


class Journal:
    """Ping-pong journal of fixed-size entries (FORMAT.md §4): the newest entry wins."""

    def __init__(self, flash, off, length, esize, reserve):
        bs = flash.block_size
        half = length // 2
        if off % bs or half % bs or half < bs or esize < 16 or half % esize:
            raise StorageError("journal geometry")
        self.flash = flash
        self._off = off  # slot s of half h is at _off + h * _half + s * _E (slot 0: header)
        self._half = half
        self._n = half // esize
        self._E = esize
        # switch early enough to never switch inside a write, but leave room to work
        self._reserve = min(reserve, max(1, self._n // 4))
        self._e = bytearray(esize)
        mv = memoryview(self._e)
        self._ebody = mv[4:]
        self._ecw = mv[0:4]
        self._edata = mv[8 : esize - 4]
        self._hb = bytearray(16)
        self.inline_switches = 0

    def _ecls(self, h, s):
        """Read entry slot s of half h into self._e: _BLANK, _VALID, _CORRUPT or _TORN."""
        e = self._e
        self.flash.read(self._off + h * self._half + s * self._E, e)
        if is_blank(e, self._E):
            return _BLANK
        if binascii.crc32(self._edata) == struct.unpack_from(">I", e, self._E - 4)[0]:
            return _VALID
        if e[0] == 0xFF and e[1] == 0xFF and e[2] == 0xFF and e[3] == 0xFF:
            return _TORN
        return _CORRUPT

    def mount(self):
        # generation of each half's header; -1 when it is not a valid header (FORMAT.md §4)
        b = self._hb
        g0 = -1
        for h in (0, 1):
            self.flash.read(self._off + h * self._half, b)
            g = -1
            if (
                b[0] == 0x59 and b[1] == 0x4B and b[2] == 0x4A and b[3] == 0x31  # "YKJ1"
                and binascii.crc32(memoryview(b)[0:8]) == struct.unpack_from(">I", b, 12)[0]
            ):
                if struct.unpack_from(">H", b, 6)[0] != self._E:
                    raise StorageError("journal format")
                g = struct.unpack_from(">H", b, 4)[0]
            if h == 0:
                g0 = g
        g1 = g
        if g0 < 0 and g1 < 0:
            self.flash.program(self._off, self._fmt(0, 0))
            self._act, self._g, self._free, self._cur = 0, 0, 1, -1
            return self
        if g0 < 0 or (g1 >= 0 and seq_newer(g1, g0, 16)):
            self._act, self._g = 1, g1
        else:
            self._act, self._g = 0, g0
        h = self._act
        lo, hi = 0, self._n
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._ecls(h, mid) == _BLANK:
                hi = mid
            else:
                lo = mid
        self._free = hi
        self._cur = -1
        for s in range(hi - 1, 0, -1):
            if self._ecls(h, s) == _VALID:
                self._cur = s
                break
        return self

    def _fmt(self, h, gen):
        bs = self.flash.block_size
        first = (self._off + h * self._half) // bs
        for i in range(self._half // bs):  # header block first: the half stops validating at once
            self.flash.erase(first + i)
        b = self._hb
        for i in range(4):
            b[i] = b"YKJ1"[i]  # a constant: no allocation
        struct.pack_into(">HH", b, 4, gen & 0xFFFF, self._E)
        b[8] = b[9] = b[10] = b[11] = 0xFF
        struct.pack_into(">I", b, 12, binascii.crc32(memoryview(b)[0:8]))
        return b

    def load(self, data):
        """Copy the current entry's data into data; False when there is none or it is cleared."""
        if self._cur < 0:
            return False
        if self._ecls(self._act, self._cur) != _VALID:
            return False
        e = self._e
        if e[4] != 0xFF or e[5] != 0xFF or e[6] != 0xFF or e[7] != 0xFF:
            return False
        n = len(data)
        if n > self._E - 12:
            n = self._E - 12
        for i in range(n):
            data[i] = e[8 + i]
        return True

    def save(self, data):
        """Append a new current entry (data ≤ E - 12 bytes, rest zero). No allocation."""
        if self._free >= self._n:
            self.inline_switches += 1
            self._switch(False)
        e = self._e
        n = len(data)
        if n > self._E - 12:
            raise StorageError("journal entry too big")
        for i in range(n):
            e[8 + i] = data[i]
        for i in range(8 + n, self._E - 4):
            e[i] = 0
        for i in range(4, 8):
            e[i] = 0xFF
        struct.pack_into(">I", e, self._E - 4, binascii.crc32(self._edata))
        for i in range(4):
            e[i] = b"YKJE"[i]  # the commit word (a constant: no allocation)
        a = self._off + self._act * self._half + self._free * self._E
        self._cur = self._free
        self._free += 1
        self._prog_entry(a)

    def _prog_entry(self, a):
        fl = self.flash
        p = fl.prog_size
        e = self._E
        if e - 4 <= p:
            fl.program(a + 4, self._ebody)
        else:  # entries are E-aligned; split the body at page boundaries
            o = 4
            while o < e:
                k = p - (a + o) % p
                if k > e - o:
                    k = e - o
                fl.program(a + o, memoryview(self._e)[o : o + k])
                o += k
        fl.program(a, self._ecw)

    def clear(self):
        """Mark the current entry cleared (programs its clear word to 0)."""
        if self._cur >= 0:
            a = self._off + self._act * self._half + self._cur * self._E
            # a bytes literal lives in the image: no buffer in the heap
            self.flash.program(a + 4, b"\x00\x00\x00\x00")

    def maintain(self):
        if self._n - self._free < self._reserve:
            self._switch(True)
            return self._half // self.flash.block_size
        return 0

    def _switch(self, _idle):
        h = self._act
        o = 1 - h
        live = self._cur >= 0 and self._ecls(h, self._cur) == _VALID and self._e[4] == 0xFF
        hdr = self._fmt(o, self._g + 1)
        free = 1
        if live:  # self._e still holds the current entry
            self._prog_entry(self._off + o * self._half + self._E)  # slot 1
            free = 2
        self.flash.program(self._off + o * self._half, hdr)
        self._act = o
        self._g = (self._g + 1) & 0xFFFF
        self._free = free
        self._cur = 1 if live else -1


class TearStore(Journal):
    """Pending torn-transaction context (FORMAT.md §4, E = 256): survives reboot.

    save(ctx) before DEBIT (tap path: no erase, no allocation when maintain() runs between
    taps); load(buf) -> True when a context is pending; clear() once resolved. A Journal
    itself (no wrapper object or forwarding methods: they cost heap at import and boot)."""

    SIZE = const(244)

    def __init__(self, flash, region):
        Journal.__init__(self, flash, region[0], region[1], 256, 8)
