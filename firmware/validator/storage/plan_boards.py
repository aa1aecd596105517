# validator.storage.plan_boards: the other boards' flash plans and the plan checker.
# SPDX-License-Identifier: MIT
#
# Imported only by whoever needs it (the esp32s3 board, host tools: `from
# validator.storage.plan_boards import PLAN_ESP32S3`): the unix/sim validator boots with
# PLAN_SIM alone, so the esp32s3 dicts and the checker cost it no heap. FORMAT.md §1.

# sim board: 64 MiB file-backed NorFlash (W25Q512-class geometry); its plan is storage.plan
SIM_FLASH_SIZE = 64 * 1024 * 1024

# esp32s3 board: ESP32-S3-WROOM-2-N32R8V, 32 MiB octal flash. 0x000000-0x1FFFFF boot-
# loader, partition table, nvs, phy and the MicroPython factory app; 0x200000-0x3FFFFF the
# vfs partition (board.json, ROMFS); 0x400000 up the raw "ykt" data partition
# (boards/esp32s3_pn532/partitions.csv), which board.py makes partition-relative.
ESP32S3_FLASH_SIZE = 32 * 1024 * 1024
PLAN_ESP32S3 = {
    "firmware": (0x000000, 0x200000),
    "vfs": (0x200000, 0x200000),
    "params": (0x400000, 0x10000),
    "tear": (0x410000, 0x8000),
    "watermark": (0x418000, 0x2000),
    "log": (0x41A000, 0xFC6000),  # 4 038 blocks x 31 = 125 178 records
    "blacklist": (0x13E0000, 0xC20000),  # 2 x 6.0625 MiB banks: >= 1 000 000 keys each
}
ESP32S3_PARTITION_BASE = 0x400000

# the earlier 16 MiB module (ESP32-S3-WROOM-1-N16R8): same blacklist, a one-week log
ESP32S3_16M_FLASH_SIZE = 16 * 1024 * 1024
PLAN_ESP32S3_16M = {
    "firmware": (0x000000, 0x200000),
    "params": (0x200000, 0x10000),
    "tear": (0x210000, 0x8000),
    "watermark": (0x218000, 0x2000),
    "log": (0x21A000, 0x1C6000),  # 454 blocks x 31 = 14 074 records
    "blacklist": (0x3E0000, 0xC20000),  # 2 x 6.0625 MiB banks
}


def partition_plan(plan=None, base=ESP32S3_PARTITION_BASE):
    """The validator's regions relative to the data partition that starts at base."""
    plan = plan or PLAN_ESP32S3
    return {k: (off - base, ln) for k, (off, ln) in plan.items() if off >= base}


def check(plan, size, block=4096):
    """True when regions are block-aligned, inside the device and do not overlap."""
    spans = sorted(plan.values())
    end = 0
    for off, length in spans:
        if off % block or length % block or off < end or off + length > size:
            return False
        end = off + length
    return True
