# wiring (esp32s3_pn532): pin numbers, buses and partition names, shared with tests/hw and
# the host emulation (emu.s3world reads the same constants). README.md has the table.
# SPDX-License-Identifier: MIT
# Module: ESP32-S3-WROOM-2-N32R8V (32 MiB octal flash, 8 MiB octal PSRAM): GPIO26-37 belong
# to the flash/PSRAM, GPIO0/3/45/46 are strapping pins; everything below avoids them.
from micropython import const

# PN532 on SPI (mode 0, LSB first on the chip; the driver bit-reverses on an MSB bus)
PN532_SPI = const(2)
PN532_SCK = const(12)
PN532_MOSI = const(11)
PN532_MISO = const(13)
PN532_NSS = const(10)
PN532_RSTPDN = const(14)
# PSAM slot 0 (MOT) and slot 1 (local issuer): ISO 7816-3, one I/O line each (TX and RX
# on the same GPIO: the driver cancels the echo), CLK from LEDC PWM, RST a GPIO
PSAM0_UART = const(1)
PSAM0_IO = const(17)
PSAM0_CLK = const(16)
PSAM0_RST = const(15)
PSAM1_UART = const(2)
PSAM1_IO = const(18)
PSAM1_CLK = const(8)
PSAM1_RST = const(9)
PSAM_CLK_HZ = const(3571200)  # 372 clocks per etu -> 9600 bit/s before PPS
# GPS receiver (NMEA 0183, 9600 8N1) on UART0: the REPL is on the native USB (CDC)
GPS_UART = const(0)
GPS_TX = const(43)
GPS_RX = const(44)
# I2C0: DS3231 RTC (0x68, CR2032 backup) and SSD1306 128x64 OLED (0x3C)
I2C_ID = const(0)
I2C_SDA = const(1)
I2C_SCL = const(2)
RTC_ADDR = const(0x68)
OLED_ADDR = const(0x3C)
# feedback
LED_GREEN = const(4)
LED_RED = const(5)
BUZZER = const(6)
BUZZER_HZ = const(2700)
# driver keys, active low (internal pull-ups)
KEY_NEXT = const(38)
KEY_PREV = const(39)
KEY_DIR = const(40)
KEY_SIGNON = const(41)
# flash
FLASH_PARTITION = "ykt"
FLASH_PARTITION_BASE = const(0x400000)  # offset of "ykt" in partitions.csv
CONFIG_FILE = "board.json"  # on the vfs partition: Wi-Fi, depot address, stop positions
