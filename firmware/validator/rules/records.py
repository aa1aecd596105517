# validator.rules.records: byte layouts of the card records the fare rules read and write.
# SPDX-License-Identifier: MIT
#
# EF 0x1E trip record (card-protocol.md §2.6, 48 bytes) and the EF 0x1A bus record 2702
# (§2.5; the bus layout is marked unsettled there, so the one used here is documented in
# rules/FORMAT.md "EF 0x1A bus record" and guarded by a marker + CRC-16 so a record written
# by another city's validator in another layout is never misread).
from micropython import const

# ---- EF 0x1E, 48 bytes (§2.6) ----
E_TYPE = const(0)  # 03 boarding, 04 alighting, 06 single ride (flat)
E_TERMINAL = const(1)  # 8: 00 00 + 6-byte PSAM terminal number (S5/S6)
E_INDUSTRY = const(9)  # 01 rail, 02 bus
E_LINE = const(10)  # u16 BE (S1: line(2) station(2) operator(2) RFU(1))
E_STATION = const(12)  # u16 BE
_E_OPERATOR = const(14)  # u16 BE, 0 here
E_FLAGS = const(16)  # the RFU byte: yikatong ride flags (F_*) — 0 on foreign records
E_AMOUNT = const(17)  # u32 BE, fen actually debited (fare + penalty)
E_BALANCE = const(21)  # u32 BE, balance after
E_TIME = const(25)  # 7 BCD YYYYMMDDhhmmss
E_CITY = const(32)  # 2 BCD acquirer city code
E_ACQ = const(34)  # 8 acquirer institution ID
E_LEN = const(48)

TT_BOARD = const(0x03)
TT_ALIGHT = const(0x04)
TT_SINGLE = const(0x06)

# ride flags in E_FLAGS (and A_FLAGS)
F_TRANSFER = const(1)  # this ride used (or, on a boarding, reserved) the journey's transfer
F_CAPPED = const(2)  # the daily cap reduced this fare
F_PENALTY = const(4)  # amount includes a missing tap-off charge

# ---- EF 0x1A record 2 (bus, ID 2702), 128 bytes (§2.5 common header + S6 bus fields) ----
_A_ID = const(0)  # 27 02
_A_LEN = const(2)  # 7D
_A_VALID = const(3)  # 01
_A_IC = const(4)  # 01 interconnect transaction
_A_LOCK = const(5)  # 00
_A_SERIAL = const(6)  # 8, transaction serial: the engine may fill it (outside the CRC)
A_STATE = const(14)  # 00 initial, 01 boarded, 02 alighted/closed
A_ENTRY_CITY = const(15)
A_EXIT_CITY = const(17)
A_ENTRY_ACQ = const(19)
A_EXIT_ACQ = const(27)
A_ENTRY_STOP = const(41)  # u16 BE in the last 2 bytes of the 8-byte station field (35..42)
A_EXIT_STOP = const(49)  # u16 BE in 43..50
A_ENTRY_TERM = const(51)
A_EXIT_TERM = const(59)
A_ENTRY_TIME = const(67)
A_EXIT_TIME = const(74)
A_MAXFARE = const(81)  # u32: priced max fare of the entry line = missing tap-off charge
A_DIRECTION = const(85)  # S6
A_LINE = const(86)  # u16, S6
A_VEHICLE = const(88)  # 6, S6: the PSAM terminal number of the validator
_A_MARK = const(94)  # 'Y' — yikatong layout marker
_A_VER = const(95)  # layout version 1
A_FLAGS = const(96)  # F_TRANSFER: transfer discount reserved at boarding
A_INDUSTRY = const(97)  # industry of the entry line
A_DAY = const(98)  # 4 BCD service date of the accumulator
A_DAY_TOTAL = const(102)  # u32 fen paid in A_DAY_CITY on A_DAY (fares, not penalties)
A_DAY_COUNT = const(106)  # u16 rides counted
A_DAY_CITY = const(108)  # 2 BCD city the accumulator belongs to
_A_CRC = const(126)  # CRC-16/CCITT-FALSE over bytes 14..125, big-endian
_A_CRC_FROM = const(14)
A_LEN_TOTAL = const(128)
_A_MARK_BYTE = const(0x59)
_A_VERSION = const(1)

_ST_NONE = const(0)
ST_BOARDED = const(1)
ST_CLOSED = const(2)


def _mk_crc_table():
    # CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection). 16-bit, not the CRC-32
    # of the S1 rail record: every intermediate stays a small int on a 32-bit MCU (31-bit
    # small ints), so the check allocates nothing on the tap path.
    t = bytearray(512)
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
            c &= 0xFFFF
        t[2 * i] = c >> 8
        t[2 * i + 1] = c & 0xFF
    return bytes(t)


_CRC_T = _mk_crc_table()


def crc16(buf, start, end):
    t = _CRC_T
    c = 0xFFFF
    for i in range(start, end):
        k = ((c >> 8) ^ buf[i]) & 0xFF
        c = (((c << 8) & 0xFFFF) ^ (t[2 * k] << 8)) ^ t[2 * k + 1]
    return c


def get16(b, o):
    return (b[o] << 8) | b[o + 1]


def get32(b, o):
    return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]


def put16(b, o, v):
    b[o] = (v >> 8) & 0xFF
    b[o + 1] = v & 0xFF


def put32(b, o, v):
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF


def bus_record_ok(r):
    """True if r is a 2702 record in this layout with a good CRC (else: ignore its state)."""
    if r is None or len(r) < A_LEN_TOTAL:
        return False
    if r[0] != 0x27 or r[1] != 0x02 or r[_A_MARK] != _A_MARK_BYTE or r[_A_VER] != _A_VERSION:
        return False
    return crc16(r, _A_CRC_FROM, _A_CRC) == get16(r, _A_CRC)


def seal_bus_record(r):
    """Fill the constant header and the CRC of a 2702 record being written."""
    r[0] = 0x27
    r[1] = 0x02
    r[_A_LEN] = 0x7D
    r[_A_VALID] = 1
    r[_A_IC] = 1
    r[_A_LOCK] = 0
    r[_A_MARK] = _A_MARK_BYTE
    r[_A_VER] = _A_VERSION
    put16(r, _A_CRC, crc16(r, _A_CRC_FROM, _A_CRC))
