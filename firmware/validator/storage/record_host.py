# validator.storage.record_host: decode a 128-byte record (FORMAT.md §2) on the host side.
# SPDX-License-Identifier: MIT
#
# Host tools, the depot and tests only; the firmware never imports this module, so its
# strings, dict keys and functions cost no heap on the device. Common subset (tier-1 tests
# use it on MicroPython too).
import binascii
import struct

from validator.storage.record import reset

# public names of validator.storage.record's private consts (checked equal by
# tests/host/test_storage_consts.py); host callers import them and crc_ok from here
REC_SIZE = 128
O_VERSION = 4
O_STATUS = 5
O_LENGTH = 6  # u16
O_SEQ = 8  # u32
O_DEVICE = 12  # 4
O_SERIAL = 16  # 10: EF15[10..19]
O_ISSUER = 26  # 8: EF15[0..7]
O_CARD_TYPE = 34
O_TXN_TYPE = 35  # 06 / 09 / 00
O_REASON = 36  # errors.R_*
O_KEY_VER = 37
O_ALG_ID = 38
O_FLAGS = 39
O_AMOUNT = 40  # u32 fen
O_BAL_BEFORE = 44  # u32 fen
O_BAL_AFTER = 48  # u32 fen
O_ATC = 52  # u16 offline ATC from INITIALIZE
O_TERMINAL = 54  # 6
O_TTSN = 60  # 4
O_DATETIME = 64  # 7 BCD YYYYMMDDhhmmss
O_TAC = 71  # 4
O_LINE = 75  # u16
O_STATION = 77  # u16
O_DIRECTION = 79
O_VEHICLE = 80  # 6
O_FARE_LIST = 86  # u32
O_FARE_RULE = 90  # u16
O_REF_SEQ = 92  # u32, FFFFFFFF none
O_PSAM_SLOT = 96
O_KEY_INDEX = 97
O_CRC = 124  # CRC-32 of bytes 4..123
VERSION = 1

COMMIT = b"YKR1"  # the commit word at offset 0 (programmed last, outside the CRC)
STATUS_NAMES = ("", "normal", "gray", "recovered", "blocked", "refused")


def crc_ok(buf):
    """True when the CRC of a 128-byte slot matches (FORMAT.md §2)."""
    return binascii.crc32(memoryview(buf)[4:O_CRC]) == struct.unpack_from(">I", buf, O_CRC)[0]


def new_image():
    """A zeroed image with TAC and REF_SEQ at their 'none' sentinels (not for the tap path)."""
    b = bytearray(REC_SIZE)
    reset(b)
    return b


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
    "fare_list", "fare_rule", "ref_seq", "psam_slot",
)
