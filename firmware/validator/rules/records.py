# validator.rules.records: byte layouts of the card records the fare rules read and write.
# SPDX-License-Identifier: MIT
#
# EF 0x1E trip record (card-protocol.md §2.6, 48 bytes) and the EF 0x1A bus record 2702
# (§2.5; the bus layout is marked unsettled there, so the one used here is documented in
# rules/FORMAT.md "EF 0x1A bus record" and guarded by a marker + CRC-16 so a record written
# by another city's validator in another layout is never misread).
#
# Host tools, emulators and tests only: the firmware never imports this module. The fare
# rules (validator.rules.fares) hold the same offsets as private consts, which take no heap
# on the device, and check / seal the bus record inline in decide(); this module names the
# offsets for host callers and keeps its own bus-record check and seal, so tests that check
# decide()'s records with them check the inlined code independently.
# tests/host/test_rules_records.py checks every value here equals the firmware's.
from validator.rules.fares import _crc16 as crc16
from validator.rules.fares import _get16 as get16
from validator.rules.fares import _put16 as put16
from validator.rules.fares import _put32 as put32  # noqa: F401

# ---- EF 0x1E, 48 bytes (§2.6) ----
E_TYPE = 0  # 03 boarding, 04 alighting, 06 single ride (flat)
E_TERMINAL = 1  # 8: 00 00 + 6-byte PSAM terminal number (S5/S6)
E_INDUSTRY = 9  # 01 rail, 02 bus
E_LINE = 10  # u16 BE (S1: line(2) station(2) operator(2) RFU(1))
E_STATION = 12  # u16 BE
_E_OPERATOR = 14  # u16 BE, 0 here
E_FLAGS = 16  # the RFU byte: yikatong ride flags (F_*) — 0 on foreign records
E_AMOUNT = 17  # u32 BE, fen actually debited (fare + penalty)
E_BALANCE = 21  # u32 BE, balance after
E_TIME = 25  # 7 BCD YYYYMMDDhhmmss
E_CITY = 32  # 2 BCD acquirer city code
E_ACQ = 34  # 8 acquirer institution ID
E_LEN = 48

TT_BOARD = 0x03
TT_ALIGHT = 0x04
TT_SINGLE = 0x06

# ride flags in E_FLAGS (and A_FLAGS)
F_TRANSFER = 1  # this ride used (or, on a boarding, reserved) the journey's transfer
F_CAPPED = 2  # the daily cap reduced this fare
F_PENALTY = 4  # amount includes a missing tap-off charge

# ---- EF 0x1A record 2 (bus, ID 2702), 128 bytes (§2.5 common header + S6 bus fields) ----
_A_ID = 0  # 27 02
_A_LEN = 2  # 7D
_A_VALID = 3  # 01
_A_IC = 4  # 01 interconnect transaction
_A_LOCK = 5  # 00
_A_SERIAL = 6  # 8, transaction serial: the engine may fill it (outside the CRC)
A_STATE = 14  # 00 initial, 01 boarded, 02 alighted/closed
A_ENTRY_CITY = 15
A_EXIT_CITY = 17
A_ENTRY_ACQ = 19
A_EXIT_ACQ = 27
A_ENTRY_STOP = 41  # u16 BE in the last 2 bytes of the 8-byte station field (35..42)
A_EXIT_STOP = 49  # u16 BE in 43..50
A_ENTRY_TERM = 51
A_EXIT_TERM = 59
A_ENTRY_TIME = 67
A_EXIT_TIME = 74
A_MAXFARE = 81  # u32: priced max fare of the entry line = missing tap-off charge
A_DIRECTION = 85  # S6
A_LINE = 86  # u16, S6
A_VEHICLE = 88  # 6, S6: the PSAM terminal number of the validator
_A_MARK = 94  # 'Y' — yikatong layout marker
_A_VER = 95  # layout version 1
A_FLAGS = 96  # F_TRANSFER: transfer discount reserved at boarding
A_INDUSTRY = 97  # industry of the entry line
A_DAY = 98  # 4 BCD service date of the accumulator
A_DAY_TOTAL = 102  # u32 fen paid in A_DAY_CITY on A_DAY (fares, not penalties)
A_DAY_COUNT = 106  # u16 rides counted
A_DAY_CITY = 108  # 2 BCD city the accumulator belongs to
_A_CRC = 126  # CRC-16/CCITT-FALSE over bytes 14..125, big-endian
_A_CRC_FROM = 14
A_LEN_TOTAL = 128
_A_MARK_BYTE = 0x59
_A_VERSION = 1

_ST_NONE = 0
ST_BOARDED = 1
ST_CLOSED = 2


def get32(b, o):
    return (get16(b, o) << 16) | get16(b, o + 2)


def bus_record_ok(r):
    """True if r is a 2702 record in this layout with a good CRC (else: ignore its state)."""
    if r is None or len(r) < A_LEN_TOTAL:
        return False
    if r[0] != 0x27 or r[1] != 0x02 or r[_A_MARK] != _A_MARK_BYTE or r[_A_VER] != _A_VERSION:
        return False
    return crc16(r, _A_CRC_FROM, _A_CRC) == get16(r, _A_CRC)


def seal_bus_record(r):
    """Fill the constant header and the CRC of a 2702 record being written."""
    r[0:6] = bytes((0x27, 0x02, 0x7D, 1, 1, 0))  # ID, length, valid, interconnect, unlocked
    r[_A_MARK] = _A_MARK_BYTE
    r[_A_VER] = _A_VERSION
    put16(r, _A_CRC, crc16(r, _A_CRC_FROM, _A_CRC))
