# validator.storage.plan: flash plans (region -> (offset, length)) per board, FORMAT.md §1.
# SPDX-License-Identifier: MIT
#
# Boards copy one of these into board.flash_plan (hal.Board). Erase block 4 KiB, page 256 B.
# Regions: params (ParamStore), tear (TearStore), watermark (RecordLog's journal),
# log (RecordLog), blacklist (Blacklist, two banks).

# sim board: 64 MiB file-backed NorFlash (W25Q512-class geometry)
SIM_FLASH_SIZE = 64 * 1024 * 1024
PLAN_SIM = {
    "params": (0x0000000, 0x10000),
    "tear": (0x0010000, 0x8000),
    "watermark": (0x0018000, 0x2000),
    "log": (0x0020000, 0x2800000),  # 40 MiB: 10 240 blocks x 31 = 317 440 records
    "blacklist": (0x2820000, 0x1000000),  # 2 x 8 MiB banks
}

# esp32s3 board: 16 MiB flash; the first 2 MiB hold bootloader, partition table, nvs,
# phy and the MicroPython factory app
ESP32S3_FLASH_SIZE = 16 * 1024 * 1024
PLAN_ESP32S3_16M = {
    "firmware": (0x000000, 0x200000),
    "params": (0x200000, 0x10000),
    "tear": (0x210000, 0x8000),
    "watermark": (0x218000, 0x2000),
    "log": (0x21A000, 0x1C6000),  # 454 blocks x 31 = 14 074 records
    "blacklist": (0x3E0000, 0xC20000),  # 2 x 6.0625 MiB banks
}


def check(plan, size, block=4096):
    """True when regions are block-aligned, inside the device and do not overlap."""
    spans = sorted(plan.values())
    end = 0
    for off, length in spans:
        if off % block or length % block or off < end or off + length > size:
            return False
        end = off + length
    return True
