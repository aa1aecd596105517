# validator.storage.plan: flash plans (region -> (offset, length)) per board, FORMAT.md §1.
# SPDX-License-Identifier: MIT
#
# Boards copy one of these into board.flash_plan (hal.Board). Erase block 4 KiB, page 256 B.
# Regions: params (ParamStore), tear (TearStore), watermark (RecordLog's journal),
# log (RecordLog), blacklist (Blacklist, two banks). Only the sim plan (the default) lives
# here; PLAN_ESP32S3_16M, the flash sizes and check() are in storage.plan_boards (imported
# from there by who needs them) so the sim validator's heap never holds them.

# sim board: 64 MiB file-backed NorFlash (W25Q512-class geometry)
PLAN_SIM = {
    "params": (0x0000000, 0x10000),
    "tear": (0x0010000, 0x8000),
    "watermark": (0x0018000, 0x2000),
    "log": (0x0020000, 0x2800000),  # 40 MiB: 10 240 blocks x 31 = 317 440 records
    "blacklist": (0x2820000, 0x1000000),  # 2 x 8 MiB banks
}
