# validator.storage.record: the 128-byte record image (FORMAT.md §2).
# SPDX-License-Identifier: MIT
#
# The transaction engine fills a preallocated 128-byte image by these offsets (struct
# pack_into, slice assignment into memoryviews made once); RecordLog.append stamps the
# commit word, version, length, seq and CRC. All integers big-endian (FORMAT.md §0.7).
# The host decoder (decode, CSV_COLUMNS, new_image, crc_ok) is validator.storage.record_host,
# which the firmware never imports (its strings and dict keys would cost heap). The offsets
# are private consts (no heap on the device): txn.transaction keeps checked copies
# (tests/host/test_tap_consts.py), recordlog too (tests/host/test_storage_consts.py), and
# host callers import their public names from record_host.
from micropython import const

_REC_SIZE = const(128)

_O_COMMIT = const(0)  # 4: "YKR1", programmed last, outside the CRC
_O_VERSION = const(4)
_O_STATUS = const(5)
_O_LENGTH = const(6)  # u16
_O_SEQ = const(8)  # u32
_O_DEVICE = const(12)  # 4
_O_SERIAL = const(16)  # 10: EF15[10..19]
_O_ISSUER = const(26)  # 8: EF15[0..7]
_O_CARD_TYPE = const(34)
_O_TXN_TYPE = const(35)  # 06 / 09 / 00
_O_REASON = const(36)  # errors.R_*
_O_KEY_VER = const(37)
_O_ALG_ID = const(38)
_O_FLAGS = const(39)
_O_AMOUNT = const(40)  # u32 fen
_O_BAL_BEFORE = const(44)  # u32 fen
_O_BAL_AFTER = const(48)  # u32 fen
_O_ATC = const(52)  # u16 offline ATC from INITIALIZE
_O_TERMINAL = const(54)  # 6
_O_TTSN = const(60)  # 4
_O_DATETIME = const(64)  # 7 BCD YYYYMMDDhhmmss
_O_TAC = const(71)  # 4
_O_LINE = const(75)  # u16
_O_STATION = const(77)  # u16
_O_DIRECTION = const(79)
_O_VEHICLE = const(80)  # 6
_O_FARE_LIST = const(86)  # u32
_O_FARE_RULE = const(90)  # u16
_O_REF_SEQ = const(92)  # u32, FFFFFFFF none
_O_PSAM_SLOT = const(96)
_O_KEY_INDEX = const(97)
_O_RESERVED = const(98)  # 26 bytes of 00
_O_CRC = const(124)  # CRC-32 of bytes 4..123

_VERSION = const(1)

ST_NORMAL = const(1)
ST_GRAY = const(2)
ST_RECOVERED = const(3)
ST_BLOCKED = const(4)
ST_REFUSED = const(5)


def reset(img):
    """Clear an image for reuse (allocation-free)."""
    for i in range(_REC_SIZE):
        img[i] = 0
    for i in range(4):
        img[_O_TAC + i] = 0xFF
        img[_O_REF_SEQ + i] = 0xFF
    img[_O_DIRECTION] = 0xFF
