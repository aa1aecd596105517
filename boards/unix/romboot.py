# romboot (unix board): mount the firmware's ROMFS image and start main, like a ROMFS MCU.
# SPDX-License-Identifier: MIT
#
# emu.romfs.launch() holds the image outside the MicroPython heap and passes its address
# in $YKT_ROMFS; VfsRom over uctypes.bytearray_at executes the .mpy files in place, so the
# 128 KiB heap holds data only, as with frozen firmware on the MCU.
import os
import sys

import uctypes
import vfs

_addr, _size = os.getenv("YKT_ROMFS").split(":")
vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(_addr), int(_size))), "/rom")
sys.path[:] = ["/rom", ".frozen"]
del _addr, _size
import main  # noqa: E402,F401 -- firmware/main.py, from the image
