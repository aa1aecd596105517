# wiring (esp32s3_pn532): pin numbers and partition names, shared with tests/hw.
# SPDX-License-Identifier: MIT
from micropython import const

PN532_UART = const(1)
PN532_TX = const(17)
PN532_RX = const(18)
PN532_RSTPDN = const(8)
PSAM_UART = const(2)
PSAM_IO = const(9)
PSAM_CLK = const(10)
PSAM_RST = const(11)
LED_GREEN = const(4)
LED_RED = const(5)
BUZZER = const(6)
FLASH_PARTITION = "ykt"
FLASH_PARTITION_BASE = const(0x200000)  # offset of "ykt" in partitions.csv
