# validator.txn.record: the record image the tap engine writes and the tear context.
# SPDX-License-Identifier: MIT
#
# Payload handed to records.append(); the record log adds its own magic, sequence number,
# device id and CRC (storage/FORMAT.md). Big-endian integers, BCD date-time.
from micropython import const

# Record status (records.csv `status`)
ST_NORMAL = const(1)
ST_GRAY = const(2)
ST_RECOVERED = const(3)
ST_BLOCKED = const(4)
ST_REFUSED = const(5)
STATUS_NAMES = ("", "normal", "gray", "recovered", "blocked", "refused")

# Record flags
FL_MAC2_UNVERIFIED = const(1)  # recovered after the PSAM lost the session (reboot/other tap)
FL_MAC2_BAD = const(2)  # the PSAM refused the card's MAC2 (the TAC will tell clearing)
FL_PROVE_FAILED = const(4)

# Record image (payload handed to records.append; the log adds magic/seq/device/CRC).
# Every field that entered MAC1/TAC is stored exactly as sent (§7, §5.3).
I_STATUS = const(0)
I_TYPE = const(1)  # 06 / 09
I_REASON = const(2)  # R_* for refused/blocked
I_FLAGS = const(3)
I_SERIAL = const(4)  # 10, EF15[10..19]
I_ISSUER = const(14)  # 8, EF15[0..7]
I_CARDTYPE = const(22)  # EF15[28]
I_AMOUNT = const(23)  # u32 BE fen
I_BAL_BEFORE = const(27)  # u32 BE
I_BAL_AFTER = const(31)  # u32 BE
I_ATC = const(35)  # u16, offline ATC from INIT (before the debit)
I_TERMINAL = const(37)  # 6, PSAM terminal number (sent in 8050)
I_TTSN = const(43)  # 4, from 8070 (sent in 8054)
I_DATETIME = const(47)  # 7 BCD (sent in 8070 and 8054)
I_TAC = const(54)  # 4
I_KEYVER = const(58)
I_ALG = const(59)
I_LINE = const(60)  # u16
I_VEHICLE = const(62)  # u32
I_LEN = const(66)
# Tear context = record image + saved-at time (u32) + valid flag (§6.1). The tear store
# keeps a table of N_CTX of them, so other cards can be served (each purchase uses a free
# slot, LRU when full) while a torn card is awaited (S13 keeps 10, LRU; §6.1).
C_SAVED = const(66)
C_VALID = const(70)
CTX_LEN = const(72)
N_CTX = const(4)
CTX_TABLE_LEN = const(288)  # N_CTX * CTX_LEN: what tears.save() persists
