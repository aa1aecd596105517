# emu.nor: an emulated SPI NOR flash with real semantics and fault injection.
# SPDX-License-Identifier: MIT
#
# Common subset (CPython and MicroPython): the unix board uses it as the validator's
# flash (file-backed, so a 16 MiB device does not live in a 128 KiB heap) and tests use
# it RAM-backed. Semantics of a serial NOR (e.g. W25Q128 datasheet §8.2.15/§8.2.17):
#   * erase(block) sets the whole erase block to 0xFF;
#   * program(addr, buf) can only clear bits; a program that would set a bit that is
#     0 in flash is a NorError (real chips silently AND; refusing catches storage bugs);
#   * a program never crosses a page (prog_size) boundary.
# Every program and erase is counted; cut_after(n, mode) makes operation n+1 fail like a
# power cut: "drop" (nothing persisted), "torn" (first half of the data / half the block
# persisted), and every later operation is ignored and reads keep returning the image
# as it was at the cut, until revive(). flip_bit() simulates a retention error.
# Operation paths allocate nothing (loops over preallocated buffers), so firmware
# allocation tests can run on top of it.


import sys

_MP = sys.implementation.name == "micropython"  # streams take write(buf, n) there


class NorError(Exception):
    pass


class PowerCut(Exception):
    pass


class NorFlash:
    def __init__(self, size, block_size=4096, prog_size=256, path=None, create=True,
                 invert=False):
        if size % block_size or block_size % prog_size:
            raise NorError("geometry")
        self.size = size
        self.block_size = block_size
        self.prog_size = prog_size
        self.block_count = size // block_size
        self._f = None
        self._ram = None
        # one page buffer for every operation: program() reads the page into it and merges
        # the new bytes, erase() fills it with 0xFF, and _put() stores from it (the
        # emulator lives in the validator's heap on the unix board: no second buffer)
        self._page = bytearray(prog_size)
        # invert: the file holds each byte XOR 0xFF, so an erased device is a sparse file of
        # zeros (a 64 MiB image costs only the blocks ever programmed). Dumps of real chips
        # are plain (invert=False).
        self._inv = invert and path is not None
        self.reset_counters()
        self._budget = -1  # operations left before the cut; -1 = never
        self._mode = "drop"
        self.dead = False
        if path is None:
            self._ram = bytearray(b"\xff" * size)
            return
        try:
            f = open(path, "r+b")
        except OSError:
            if not create:
                raise
            f = open(path, "w+b")
        self._f = f
        f.seek(0, 2)
        have = f.tell()
        if have >= size:
            return
        if self._inv:  # erased = zeros on disk: extend sparsely
            f.seek(size - 1)
            f.write(b"\x00")
            return
        ff = bytearray(b"\xff" * prog_size)  # once, when a plain image file is created
        while have < size:  # extend with erased bytes
            n = size - have
            if n > prog_size:
                n = prog_size
            f.write(ff if n == prog_size else ff[:n])
            have += n

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def _get(self, addr, buf):
        if self._ram is not None:
            r = self._ram
            for i in range(len(buf)):
                buf[i] = r[addr + i]
        else:
            self._f.seek(addr)
            self._f.readinto(buf)
            if self._inv:
                for i in range(len(buf)):
                    buf[i] ^= 0xFF

    def _put(self, addr, n):
        """Store _page[:n] at addr. The page buffer is used up: an inverted file gets it
        XORed in place. Writes from index 0 only (a memoryview slice would allocate)."""
        pg = self._page
        if self._ram is not None:
            r = self._ram
            for i in range(n):
                r[addr + i] = pg[i]
            return
        if self._inv:
            for i in range(n):
                pg[i] ^= 0xFF
        f = self._f
        f.seek(addr)
        f.write(pg, n) if _MP else f.write(memoryview(pg)[:n])

    # -- counters and faults -------------------------------------------------
    def reset_counters(self):
        self.programs = 0
        self.erases = 0
        self.bytes_programmed = 0
        self.reads = 0
        self.bytes_read = 0

    def cut_after(self, n, mode="drop"):
        """Let n more program/erase operations succeed; the next one is cut."""
        if mode not in ("drop", "torn"):
            raise NorError("mode")
        self._budget = n
        self._mode = mode

    def revive(self):
        """Power back on: the device accepts operations again (contents as cut)."""
        self._budget = -1
        self.dead = False

    def _tick(self):
        """0 = operation goes ahead, 1 = this operation is the cut, 2 = already dead."""
        if self.dead:
            return 2
        if self._budget < 0:
            return 0
        if self._budget == 0:
            self.dead = True
            return 1
        self._budget -= 1
        return 0

    def flip_bit(self, addr, bit):
        b = bytearray(1)
        self._get(addr, b)
        self._page[0] = b[0] ^ (1 << bit)
        self._put(addr, 1)

    # -- the NorFlash interface (validator.hal) ----------------------------------
    def read(self, addr, buf):
        n = len(buf)
        if addr < 0 or addr + n > self.size:
            raise NorError("read out of range")
        self.reads += 1
        self.bytes_read += n
        self._get(addr, buf)

    def program(self, addr, buf):
        n = len(buf)
        if n == 0:
            return
        if addr < 0 or addr + n > self.size:
            raise NorError("program out of range")
        if (addr // self.prog_size) != ((addr + n - 1) // self.prog_size):
            raise NorError("program crosses a page")
        page = self._page
        base = addr - addr % self.prog_size
        self._get(base, page)
        off = addr - base
        for i in range(n):
            if buf[i] & ~page[off + i] & 0xFF:
                raise NorError("program would set a bit at 0x%x" % (addr + i))
        t = self._tick()
        m = n
        if t:
            if t == 2 or self._mode != "torn":
                raise PowerCut()
            m = n // 2  # torn: the first half of the data persisted
        else:
            self.programs += 1
            self.bytes_programmed += n
        for i in range(m):  # merge into the page, store it up to the last new byte
            page[off + i] = buf[i]
        self._put(base, off + m)
        if t:
            raise PowerCut()

    def erase(self, block):
        if block < 0 or block >= self.block_count:
            raise NorError("erase out of range")
        t = self._tick()
        base = block * self.block_size
        end = self.block_size
        if t:
            if t == 2 or self._mode != "torn":
                raise PowerCut()
            end //= 2  # torn: half the block erased
        else:
            self.erases += 1
        pg = self._page
        ps = self.prog_size
        for off in range(0, end, ps):
            for i in range(ps):  # refilled per page: _put uses the buffer up
                pg[i] = 0xFF
            self._put(base + off, ps)
        if t:
            raise PowerCut()
