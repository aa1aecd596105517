# esp32 (shim): esp32.Partition on the unix port, over a file-backed emulated NOR flash.
# SPDX-License-Identifier: MIT
#
# $YKT_MACHINE's "flash" entry: {"path": file, "size": bytes, "partitions":
# {"label": [offset, length]}}. The file is an emu.nor.NorFlash image (inverted: an erased
# chip is a sparse file of zeros), so NOR rules hold: erase sets FF, a program only clears
# bits (a program that would set one is refused, catching storage bugs a real chip would
# silently AND), never across a 256-byte page.
import machine

from emu.nor import NorFlash

_nor = []
_parts = {}


def _flash():
    if not _nor:
        c = machine._config().pop("flash")  # read once: the config dict stays small
        _nor.append(NorFlash(c["size"], path=c["path"], invert=True))
        _parts.update(c["partitions"])
    return _nor[0]


class Partition:
    TYPE_DATA = 1

    def __init__(self, label, offset, length):
        self.offset = offset
        self.length = length
        self.nor = _flash()

    @staticmethod
    def find(type=1, subtype=255, label=None):
        _flash()
        return [Partition(n, _parts[n][0], _parts[n][1]) for n in _parts
                if label is None or n == label]

    def readblocks(self, block, buf, off=0):
        self.nor.read(self.offset + block * 4096 + off, buf)

    def writeblocks(self, block, buf, off=None):
        if off is None:  # simple block protocol: erase, then write whole blocks
            for i in range(len(buf) // 4096):
                self.nor.erase((self.offset // 4096) + block + i)
            off = 0
        self.nor.program(self.offset + block * 4096 + off, buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.length // 4096
        if op == 5:
            return 4096
        if op == 6:
            self.nor.erase(self.offset // 4096 + arg)
            return 0
        return 0
