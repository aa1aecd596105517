# validator.storage.params: parameter store (fare tables, whitelist, config, sync keys).
# SPDX-License-Identifier: MIT
#
# FORMAT.md §6: own ping-pong halves on raw NOR rather than littlefs, so the same
# power-cut rules and emulator apply as for the log, and CPython tests need no VFS. Small
# and rarely written: put() appends a CRC'd entry (body first, commit word last) and the
# newest valid entry of a name wins; when the half is full or was left with a torn
# entry, put() compacts into the other half and switches by programming its header last.
# Never used on the tap path (rules copy what they need into RAM at boot / on change).
import binascii
import struct

from micropython import const

from validator.errors import StorageError
from validator.storage.journal import program_span, seq_newer

_EH = const(16)  # entry header
_F_DELETED = const(1)
_MAXNAME = const(32)


class ParamStore:
    def __init__(self, flash, region):
        off, length = region
        bs = flash.block_size
        half = (length // 2) // bs * bs
        if off % bs or half < bs:
            raise StorageError("params geometry")
        self.flash = flash
        self._off = off
        self._half = half
        self._bpb = half // bs
        self._t = {}
        self._act = 0
        self._g = 0
        self._free = _EH
        self._dirty = False
        self.compactions = 0

    def _a(self, h, o):
        return self._off + h * self._half + o

    def _gen(self, h):
        b = bytearray(16)
        self.flash.read(self._a(h, 0), b)
        if bytes(b[0:4]) != b"YKP1":
            return -1
        if binascii.crc32(b[0:8]) != struct.unpack_from(">I", b, 12)[0]:
            return -1
        return struct.unpack_from(">H", b, 4)[0]

    def mount(self):
        g0, g1 = self._gen(0), self._gen(1)
        if g0 < 0 and g1 < 0:
            self._format(0, 0)
            self._act, self._g, self._free, self._t, self._dirty = 0, 0, _EH, {}, False
            return self
        if g0 < 0 or (g1 >= 0 and seq_newer(g1, g0, 16)):
            self._act, self._g = 1, g1
        else:
            self._act, self._g = 0, g0
        self._scan()
        return self

    def _scan(self):
        h = self._act
        t = {}  # type: dict
        o = _EH
        eh = bytearray(_EH)
        while o + _EH <= self._half:
            self.flash.read(self._a(h, o), eh)
            if bytes(eh[0:4]) != b"YKPE":
                break
            n, fl, d = eh[4], eh[5], struct.unpack_from(">H", eh, 6)[0]
            if n == 0 or n > _MAXNAME or o + ((_EH + n + d + 15) & ~15) > self._half:
                break
            body = bytearray(n + d)
            self.flash.read(self._a(h, o + _EH), body)
            if binascii.crc32(body, binascii.crc32(eh[4:8])) != struct.unpack_from(">I", eh, 8)[0]:
                break
            name = bytes(body[0:n])
            if fl & _F_DELETED:
                t.pop(name, None)
            else:
                t[name] = (o + _EH + n, d)
            o += (_EH + n + d + 15) & ~15  # entries are 16-byte aligned (FORMAT.md §6)
        self._t = t
        self._free = o
        # anything after the last valid entry must be blank, or the next put compacts
        self._dirty = False
        chunk = bytearray(256)
        p = o
        while p < self._half:
            k = min(256, self._half - p)
            mv = memoryview(chunk)[0:k]
            self.flash.read(self._a(h, p), mv)
            for i in range(k):
                if chunk[i] != 0xFF:
                    self._dirty = True
                    return
            p += k

    def _format(self, h, gen):
        bs = self.flash.block_size
        first = (self._off + h * self._half) // bs
        for i in range(self._bpb):  # header block first
            self.flash.erase(first + i)
        b = bytearray(b"\xff" * 16)
        b[0:4] = b"YKP1"
        struct.pack_into(">HH", b, 4, gen & 0xFFFF, 0)
        struct.pack_into(">I", b, 12, binascii.crc32(b[0:8]))
        self.flash.program(self._a(h, 0), b)

    def _head(self, name, data, flags):
        """Entry header + name (FORMAT.md §6); the CRC already covers the data. The data is
        never copied into an entry image: put() of a fare table the size of a sizeable part
        of the heap must not need two more buffers of its size."""
        n, d = len(name), len(data)
        e = bytearray(_EH + n)
        e[4] = n
        e[5] = flags
        struct.pack_into(">H", e, 6, d)
        for i in range(12, _EH):
            e[i] = 0xFF  # reserved, erased
        e[_EH : _EH + n] = name
        crc = binascii.crc32(data, binascii.crc32(memoryview(e)[_EH:], binascii.crc32(e[4:8])))
        struct.pack_into(">I", e, 8, crc)
        e[0:4] = b"YKPE"  # the commit word, programmed last
        return e

    def _write_entry(self, h, o, e, data):
        a = self._a(h, o)
        program_span(self.flash, a + 4, memoryview(e)[4:])  # body first: header, name,
        if len(data):
            program_span(self.flash, a + len(e), data)  # data (the padding stays erased)
        self.flash.program(a, memoryview(e)[0:4])  # ... commit word last

    def put(self, name, data, _flags=0):
        """Atomically replace parameter `name` (str or bytes) with data (bytes-like)."""
        name = name.encode() if isinstance(name, str) else bytes(name)
        if not 0 < len(name) <= _MAXNAME or len(data) > 0xFFFF:
            raise StorageError("param name/size")
        e = self._head(name, data, _flags)
        size = (len(e) + len(data) + 15) & ~15  # entries are 16-byte aligned
        if self._dirty or self._free + size > self._half:
            self._compact(name, e, data, _flags)
            return
        o = self._free
        self._write_entry(self._act, o, e, data)
        self._free = o + size
        if _flags & _F_DELETED:
            self._t.pop(name, None)
        else:
            self._t[name] = (o + _EH + len(name), len(data))

    def delete(self, name):
        name = name.encode() if isinstance(name, str) else bytes(name)
        if name in self._t:
            self.put(name, b"", _F_DELETED)

    def _compact(self, name, e_new, data_new, flags):
        """Copy the newest entry of every other name plus the new one into the other half;
        switch by programming its header last (FORMAT.md §6)."""
        self.compactions += 1
        h, o_h = self._act, 1 - self._act
        bs = self.flash.block_size
        first = (self._off + o_h * self._half) // bs
        for i in range(self._bpb):
            self.flash.erase(first + i)
        t = {}  # type: dict
        o = _EH
        for nm in sorted(self._t):
            if nm == name:
                continue
            a, d = self._t[nm]
            data = bytearray(d)
            self.flash.read(self._a(h, a), data)
            e = self._head(nm, data, 0)
            size = (len(e) + d + 15) & ~15
            if o + size > self._half:
                raise StorageError("params full")
            self._write_entry(o_h, o, e, data)
            t[nm] = (o + _EH + len(nm), d)
            o += size
            data = None  # one other parameter in RAM at a time
        if not flags & _F_DELETED:
            size = (len(e_new) + len(data_new) + 15) & ~15
            if o + size > self._half:
                raise StorageError("params full")
            self._write_entry(o_h, o, e_new, data_new)
            t[name] = (o + _EH + len(name), len(data_new))
            o += size
        g = (self._g + 1) & 0xFFFF
        hdr = bytearray(b"\xff" * 16)
        hdr[0:4] = b"YKP1"
        struct.pack_into(">HH", hdr, 4, g, 0)
        struct.pack_into(">I", hdr, 12, binascii.crc32(hdr[0:8]))
        self.flash.program(self._a(o_h, 0), hdr)  # the switch
        self._act, self._g, self._t, self._free, self._dirty = o_h, g, t, o, False

    def size(self, name):
        """Length of parameter name, -1 when absent."""
        name = name.encode() if isinstance(name, str) else bytes(name)
        v = self._t.get(name)
        return -1 if v is None else v[1]

    def get(self, name, buf=None):
        """Copy parameter name into buf -> length; without buf return bytes (None if absent)."""
        name = name.encode() if isinstance(name, str) else bytes(name)
        v = self._t.get(name)
        if v is None:
            return None if buf is None else -1
        a, d = v
        if buf is None:
            out = bytearray(d)
            self.flash.read(self._a(self._act, a), out)
            return bytes(out)
        if len(buf) < d:
            raise StorageError("param buffer too small")
        self.flash.read(self._a(self._act, a), memoryview(buf)[0:d])
        return d

    def names(self):
        return sorted(n.decode() for n in self._t)
