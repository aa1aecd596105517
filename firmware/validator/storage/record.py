# validator.storage.record: the 128-byte record image (FORMAT.md §2) and a host decoder.
# SPDX-License-Identifier: MIT
#
# The transaction engine fills a preallocated REC_SIZE image by these offsets (struct
# pack_into, slice assignment into memoryviews made once); RecordLog.append stamps the
# commit word, version, length, seq and CRC. All integers big-endian (FORMAT.md §0.7).
import binascii
import struct

from micropython import const

REC_SIZE = const(128)

O_COMMIT = const(0)  # 4: "YKR1", programmed last, outside the CRC
O_VERSION = const(4)
O_STATUS = const(5)
O_LENGTH = const(6)  # u16
O_SEQ = const(8)  # u32
O_DEVICE = const(12)  # 4
O_SERIAL = const(16)  # 10: EF15[10..19]
O_ISSUER = const(26)  # 8: EF15[0..7]
O_CARD_TYPE = const(34)
O_TXN_TYPE = const(35)  # 06 / 09 / 00
O_REASON = const(36)  # errors.R_*
O_KEY_VER = const(37)
O_ALG_ID = const(38)
O_FLAGS = const(39)
O_AMOUNT = const(40)  # u32 fen
O_BAL_BEFORE = const(44)  # u32 fen
O_BAL_AFTER = const(48)  # u32 fen
O_ATC = const(52)  # u16 offline ATC from INITIALIZE
O_TERMINAL = const(54)  # 6
O_TTSN = const(60)  # 4
O_DATETIME = const(64)  # 7 BCD YYYYMMDDhhmmss
O_TAC = const(71)  # 4
O_LINE = const(75)  # u16
O_STATION = const(77)  # u16
O_DIRECTION = const(79)
O_VEHICLE = const(80)  # 6
O_FARE_LIST = const(86)  # u32
O_FARE_RULE = const(90)  # u16
O_REF_SEQ = const(92)  # u32, FFFFFFFF none
O_PSAM_SLOT = const(96)
O_KEY_INDEX = const(97)
O_RESERVED = const(98)  # 26 bytes of 00
O_CRC = const(124)  # CRC-32 of bytes 4..123

VERSION = const(1)
COMMIT = b"YKR1"

ST_NORMAL = const(1)
ST_GRAY = const(2)
ST_RECOVERED = const(3)
ST_BLOCKED = const(4)
ST_REFUSED = const(5)
STATUS_NAMES = ("", "normal", "gray", "recovered", "blocked", "refused")


def new_image():
    """A zeroed image with TAC and REF_SEQ at their 'none' sentinels (not for the tap path)."""
    b = bytearray(REC_SIZE)
    reset(b)
    return b


def reset(img):
    """Clear an image for reuse (allocation-free)."""
    for i in range(REC_SIZE):
        img[i] = 0
    for i in range(4):
        img[O_TAC + i] = 0xFF
        img[O_REF_SEQ + i] = 0xFF
    img[O_DIRECTION] = 0xFF


def crc_ok(buf):
    """True when the CRC of a 128-byte slot matches (FORMAT.md §2)."""
    mv = memoryview(buf)
    return binascii.crc32(mv[4:O_CRC]) == struct.unpack_from(">I", buf, O_CRC)[0]


def _hex(buf, off, n):
    return binascii.hexlify(bytes(buf[off : off + n])).decode()


def _bcdtime(buf, off):
    return _hex(buf, off, 7)


def decode(buf):
    """Host/depot side: a 128-byte record -> dict with the records.csv columns (issue 4).

    Does not check the CRC; call crc_ok() first when the bytes come from flash."""
    u8 = lambda o: buf[o]
    u16 = lambda o: struct.unpack_from(">H", buf, o)[0]
    u32 = lambda o: struct.unpack_from(">I", buf, o)[0]
    st = u8(O_STATUS)
    return {
        "device_id": _hex(buf, O_DEVICE, 4),
        "seq": u32(O_SEQ),
        "status": STATUS_NAMES[st] if 0 < st < len(STATUS_NAMES) else "status_%d" % st,
        "txn_type": "%02x" % u8(O_TXN_TYPE),
        "card_serial": _hex(buf, O_SERIAL, 10),
        "issuer_id": _hex(buf, O_ISSUER, 8),
        "card_type": "%02x" % u8(O_CARD_TYPE),
        "amount": u32(O_AMOUNT),
        "balance_before": u32(O_BAL_BEFORE),
        "balance_after": u32(O_BAL_AFTER),
        "atc": u16(O_ATC),
        "terminal_no": _hex(buf, O_TERMINAL, 6),
        "ttsn": _hex(buf, O_TTSN, 4),
        "datetime": _bcdtime(buf, O_DATETIME),
        "tac": _hex(buf, O_TAC, 4),
        "key_version": "%02x" % u8(O_KEY_VER),
        "alg_id": "%02x" % u8(O_ALG_ID),
        "line": u16(O_LINE),
        "vehicle": _hex(buf, O_VEHICLE, 6),
        "station": u16(O_STATION),
        "direction": u8(O_DIRECTION),
        "reason": u8(O_REASON),
        "flags": u8(O_FLAGS),
        "fare_list": u32(O_FARE_LIST),
        "fare_rule": u16(O_FARE_RULE),
        "ref_seq": u32(O_REF_SEQ),
        "psam_slot": u8(O_PSAM_SLOT),
        "key_index": u8(O_KEY_INDEX),
        "version": u8(O_VERSION),
    }


CSV_COLUMNS = (
    "device_id", "seq", "status", "txn_type", "card_serial", "issuer_id", "card_type",
    "amount", "balance_before", "balance_after", "atc", "terminal_no", "ttsn", "datetime",
    "tac", "key_version", "alg_id", "line", "vehicle", "station", "direction", "reason",
    "fare_list", "fare_rule", "ref_seq",
)
