# validator.storage.plan_boards: the other boards' flash plans and the plan checker.
# SPDX-License-Identifier: MIT
#
# Imported only by whoever needs it (the esp32s3 board, host tools: `from
# validator.storage.plan_boards import PLAN_ESP32S3_16M`): the unix/sim validator boots with
# PLAN_SIM alone, so the 16 MiB board's dict and the checker cost it no heap. FORMAT.md §1.

# sim board: 64 MiB file-backed NorFlash (W25Q512-class geometry); its plan is storage.plan
SIM_FLASH_SIZE = 64 * 1024 * 1024

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
