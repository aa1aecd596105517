# esp32 (shim): esp32.Partition on the unix port, over a file-backed emulated NOR flash.
# SPDX-License-Identifier: MIT
#
# $YKT_MACHINE's "flash" entry: {"path": file, "size": bytes, "partitions":
# {"label": [offset, length]}}. The file is an emu.nor.NorFlash(invert=True) image: each
# byte stored XOR 0xFF, so an erased chip is a sparse file of zeros. It is read and
# written here directly rather than through emu.nor, whose class would cost ~2.3 KB of the
# validator's heap that the chip's C esp32 module does not. NOR rules hold as there: erase
# sets FF, a program only clears bits (one that would set a bit raises, catching storage
# bugs a real chip would silently AND), never across a 256-byte page. The host side
# (provisioning, tests, ykt inspect) reads the same file with emu.nor.
import machine

_f = []
_parts = {}
_pg = bytearray(256)  # one page: program() merges in it, erase() zero-fills it (no allocation)


def _flash():
    if not _f:
        c = machine._config()["flash"]
        try:
            f = open(c["path"], "r+b")
        except OSError:  # a blank chip: the sparse image emu.nor would create
            f = open(c["path"], "w+b")
            f.seek(c["size"] - 1)
            f.write(b"\x00")
        _f.append(f)
        _parts.update(c["partitions"])
    return _f[0]


class Partition:
    TYPE_DATA = 1

    def __init__(self, offset, length):
        self.offset = offset
        self.length = length

    @staticmethod
    def find(type=1, subtype=255, label=None):
        _flash()
        return [Partition(_parts[n][0], _parts[n][1]) for n in _parts
                if label is None or n == label]

    def readblocks(self, block, buf, off=0):
        f = _f[0]
        f.seek(self.offset + block * 4096 + off)
        f.readinto(buf)
        for i in range(len(buf)):
            buf[i] ^= 0xFF

    def writeblocks(self, block, buf, off=None):
        if off is None:  # simple block protocol: erase, then write whole blocks page-wise
            mv = memoryview(buf)
            for i in range(len(buf) // 4096):
                self.ioctl(6, block + i)
            for p in range(0, len(buf), 256):
                self.writeblocks(block, mv[p:p + 256], p)
            return
        a = self.offset + block * 4096 + off
        n = len(buf)
        o = a % 256
        if o + n > 256:
            raise OSError(22)  # EINVAL: a NOR program never crosses a page
        f = _f[0]
        pg = _pg
        f.seek(a - o)
        f.readinto(pg)  # the page as stored (inverted)
        for i in range(n):
            if buf[i] & pg[o + i]:  # stored 1 = a 0 bit on the chip
                raise OSError(5)  # EIO: a program can only clear bits
            pg[o + i] = buf[i] ^ 0xFF
        f.seek(a - o)
        f.write(pg, o + n)

    def ioctl(self, op, arg):
        if op == 4:
            return self.length // 4096
        if op == 5:
            return 4096
        if op == 6:
            f = _f[0]
            pg = _pg
            for i in range(256):
                pg[i] = 0  # erased: FF on the chip, zeros in the image
            f.seek(self.offset + arg * 4096)
            for _ in range(16):
                f.write(pg)
            return 0
        return 0
