# storage_dev: one small emulated NOR shared by the storage test modules (tier 1).
# SPDX-License-Identifier: MIT
#
# The MicroPython runner keeps every imported module (and its heap) alive, so a fresh
# RAM flash per test module fragments the 128 KiB heap until a 7 KiB image no longer
# fits. All storage tests therefore share this one 9 KiB device (512-byte erase blocks,
# 256-byte pages), created on first use and erased before each use.
from emu.nor import NorFlash

BS = 512
BLOCKS = 18
_DEV = []


def dev():
    """The shared device, powered on, fully erased, counters at zero."""
    if not _DEV:
        _DEV.append(NorFlash(BLOCKS * BS, block_size=BS, prog_size=256))
    fl = _DEV[0]
    fl.revive()
    for b in range(fl.block_count):
        fl.erase(b)
    fl.reset_counters()
    return fl
