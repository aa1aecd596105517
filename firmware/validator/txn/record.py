# validator.txn.record: the engine's view of the record image and the tear context layout.
# SPDX-License-Identifier: MIT
#
# The record image itself is storage/record.py (FORMAT.md §2, 128 bytes). A tear context
# is the slice of that image from SERIAL to DIRECTION (everything that entered MAC1/TAC,
# exact, plus line/station), followed by the gray record's seq, the save time and a
# valid flag. N_CTX contexts make one blob for storage.journal.TearStore (<= 244 bytes).
#
# The reference for host tools and tests: the firmware does not import this module (its
# public names would cost heap on the device); txn.transaction keeps private copies of these
# values, checked against this file by tests/host/test_tap_consts.py.
from micropython import const

from validator.storage import record as rec

CTX_BASE = const(16)  # record.O_SERIAL
CTX_IMG = const(64)  # record bytes 16..79 (SERIAL .. DIRECTION)
C_GRAY = const(64)  # u32 seq of the gray record
C_SAVED = const(68)  # u32 device seconds when saved
C_VALID = const(72)
CTX_LEN = const(76)
N_CTX = const(3)
CTX_TABLE_LEN = const(228)

# context offsets of record fields
C_SERIAL = const(0)  # rec.O_SERIAL - CTX_BASE
C_TXN_TYPE = const(19)  # rec.O_TXN_TYPE - CTX_BASE
C_AMOUNT = const(24)
C_BAL_AFTER = const(32)
C_ATC = const(36)
C_TERMINAL = const(38)
C_TTSN = const(44)
C_DATETIME = const(48)

# Engine flags in the first reserved byte of the image (FORMAT.md §2 RESERVED, offset 98).
O_TXFLAGS = const(98)
FL_MAC2_UNVERIFIED = const(1)  # recovered after the PSAM lost the session (reboot/other card)
FL_MAC2_BAD = const(2)  # the PSAM refused the card's MAC2 (the TAC decides at clearing)

ST_NORMAL = rec.ST_NORMAL
ST_GRAY = rec.ST_GRAY
ST_RECOVERED = rec.ST_RECOVERED
ST_BLOCKED = rec.ST_BLOCKED
ST_REFUSED = rec.ST_REFUSED
