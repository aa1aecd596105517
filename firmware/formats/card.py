"""T-Union card: applications and files, command answers, the EF1E trip record, EF1A.

Sources: shared docs card-protocol.md §1-§6 (AIDs, SFIs, INITIALIZE/DEBIT/PROVE answers,
EF1E), §2.5-§2.6 (EF1A bus record 2702, yikatong's own layout inside it, see rules/FORMAT.md).
"""

from formats.model import Codes, Hex, Layout
from formats.model import Field as F

TAP = ("txn/transaction.py", "m1/purse.py")

CARD = Codes(
    "card", "T-Union card applications, files and table codes", owner="card/ep.py",
    users=TAP + ("sam/psam.py",), hosts=("card/ep_host.py",), doc="card/README.md",
    items=(
        ("AID_TUNION", b"\xa0\x00\x00\x06\x32\x01\x01\x05", "MOT_T_EP (§1)"),
        ("AID_LOCAL", b"\xa0\x00\x00\x00\x03\x86\x98\x07\x01", "the city's own (MOHURD) EP"),
        ("PPSE", b"2PAY.SYS.DDF01", "proximity payment system environment (§1)"),
        ("LABEL_EP", b"MOT_T_EP", "application label in the PPSE directory"),
        ("TAG_DF_NAME", Hex(0x4F), "FCI / directory tag: AID"),
        ("TAG_LABEL", Hex(0x50), "directory tag: application label"),
        ("TAG_EF15", Hex(0x9F0C), "FCI tag holding EF15 (issuer data)"),
        ("EF15_LEN", 30, "EF15 public application data"),
        ("SFI_EF15", Hex(0x15), "public application data"),
        ("SFI_EF17", Hex(0x17), "interconnect / management data"),
        ("SFI_EF18", Hex(0x18), "transaction detail log"),
        ("SFI_EF1E", Hex(0x1E), "trip records (compound application)"),
        ("AUTH_LEN", 9, "§5.5: 85 + 8 bytes, appended to the local card's MAC1 input"),
        ("TYPE_EP", Hex(0x06), "simple EP purchase (§2.4 transaction types)"),
        ("TYPE_CAPP", Hex(0x09), "compound (CAPP) purchase"),
        ("BLOCK_TEMPORARY", Hex(0x00), "APPLICATION BLOCK P2 00: temporary (PBOC, §10 q8)"),
        ("NO_RECORD", -2, "table code: 6A83, record not found (end of a cyclic log)"),
        ("NO_CAPP", -3, "table code: card has no compound application/file -> type 06"),
        ("NO_PROVE", -4, "table code: 9406, no completed transaction with that ATC (§6.6)"),
        ("TLV_MALFORMED", -2, "fci_ef15/ppse_aid: a TLV overruns its parent (R_CARD_ERROR)"),
    ),
)

INIT = Layout(
    "init-answer", "INITIALIZE FOR (CAPP) PURCHASE answer", owner="card/ep.py", prefix="INIT_",
    users=TAP, hosts=("card/ep_host.py",), doc="card/README.md", size=15,
    fields=(
        F("BAL", 0, 4, "u32", "balance before, fen"),
        F("ATC", 4, 2, "u16", "offline ATC"),
        F("OVERDRAFT", 6, 3, "hex", "overdraft limit"),
        F("KEYVER", 9, 1, "x8", "purchase key version"),
        F("ALG", 10, 1, "x8", "algorithm id (00 3DES, 04 SM4 [INF])"),
        F("RAND", 11, 4, "hex", "card random for the session key"),
    ),
    consts=(("INIT_LEN", 15, "answer bytes without the status word"),),
)

DEBIT = Layout(
    "debit-answer", "DEBIT FOR (CAPP) PURCHASE answer", owner="card/ep.py", prefix="DEBIT_",
    users=TAP, hosts=("card/ep_host.py",), doc="card/README.md", size=8,
    fields=(F("TAC", 0, 4, "hex", "TAC"), F("MAC2", 4, 4, "hex", "MAC2 for the PSAM's 8072")),
    consts=(("DEBIT_LEN", 8, "answer bytes without the status word"),),
)

PROVE = Layout(
    "prove-answer", "GET TRANSACTION PROVE answer (805A)", owner="card/ep.py", prefix="PROVE_",
    users=TAP, hosts=("card/ep_host.py",), doc="card/README.md", size=8,
    fields=(F("MAC2", 0, 4, "hex", "MAC2 of the proved debit"), F("TAC", 4, 4, "hex", "TAC")),
    consts=(("PROVE_LEN", 8, "answer bytes without the status word"),),
)

EF1E = Layout(
    "ef1e", "EF1E trip record (48 bytes, cyclic)", owner="card/ep.py", prefix="E_",
    users=TAP + ("rules/fares.py",), hosts=("rules/records.py",), doc="rules/FORMAT.md",
    size=48,
    fields=(
        F("TYPE", 0, 1, "x8", "03 boarding, 04 alighting, 06 single ride (flat)"),
        F("TERMINAL", 1, 8, "hex", "00 00 + 6-byte PSAM terminal number (S5, S6)"),
        F("INDUSTRY", 9, 1, "x8", "01 rail, 02 bus"),
        F("LINE", 10, 2, "u16", "line (S1: line(2) station(2) operator(2) RFU(1))"),
        F("STATION", 12, 2, "u16", "station/stop"),
        F("OPERATOR", 14, 2, "u16", "operator, 0 here"),
        F("FLAGS", 16, 1, "flags8", "the RFU byte: yikatong ride flags; 0 on foreign records",
          codes="ride-flags"),
        F("AMOUNT", 17, 4, "u32", "fen actually debited (fare + penalty)"),
        F("BALANCE", 21, 4, "u32", "balance after the transaction"),
        F("TIME", 25, 7, "bcd", "date-time YYYYMMDDhhmmss"),
        F("CITY", 32, 2, "bcd", "acquirer city code"),
        F("ACQ", 34, 8, "hex", "acquirer institution id"),
        F("RFU", 42, 6, "none", "00"),
    ),
    consts=(
        ("E_LEN", 48, "record bytes"),
        ("TT_BOARD", Hex(0x03), "TYPE: boarding a section line"),
        ("TT_ALIGHT", Hex(0x04), "TYPE: alighting"),
        ("TT_SINGLE", Hex(0x06), "TYPE: single ride (flat)"),
    ),
)

RIDE_FLAGS = Codes(
    "ride-flags", "ride flags (EF1E FLAGS, record FLAGS, EF1A FLAGS)", owner="rules/fares.py",
    users=TAP, hosts=("rules/records.py",), doc="rules/FORMAT.md",
    items=(
        ("F_TRANSFER", 1, "transfer: this ride used (or, boarding, reserved) the transfer"),
        ("F_CAPPED", 2, "capped: the daily cap reduced this fare"),
        ("F_PENALTY", 4, "penalty: amount includes a missing tap-off charge"),
    ),
)

EF1A = Layout(
    "ef1a", "EF1A bus record 2702 (128 bytes; yikatong layout from MARK on)",
    owner="rules/fares.py", prefix="A_", hosts=("rules/records.py",), doc="rules/FORMAT.md",
    size=128,
    fields=(
        F("ID", 0, 2, "hex", "27 02"),
        F("LEN", 2, 1, "u8", "7D"),
        F("VALID", 3, 1, "u8", "01"),
        F("IC", 4, 1, "u8", "01 interconnect transaction"),
        F("LOCK", 5, 1, "u8", "00"),
        F("SERIAL", 6, 8, "hex", "transaction serial: the engine may fill it (outside the CRC)"),
        F("STATE", 14, 1, "u8", "00 initial, 01 boarded, 02 alighted/closed"),
        F("ENTRY_CITY", 15, 2, "bcd", "entry city"),
        F("EXIT_CITY", 17, 2, "bcd", "exit city"),
        F("ENTRY_ACQ", 19, 8, "hex", "entry acquirer institution"),
        F("EXIT_ACQ", 27, 8, "hex", "exit acquirer institution"),
        F("ENTRY_STATION", 35, 6, "none", "entry station field, first 6 of 8 bytes: 00"),
        F("ENTRY_STOP", 41, 2, "u16", "entry stop: last 2 bytes of the 8-byte station field"),
        F("EXIT_STATION", 43, 6, "none", "exit station field, first 6 of 8 bytes: 00"),
        F("EXIT_STOP", 49, 2, "u16", "exit stop: last 2 bytes of 43..50"),
        F("ENTRY_TERM", 51, 8, "hex", "entry terminal"),
        F("EXIT_TERM", 59, 8, "hex", "exit terminal"),
        F("ENTRY_TIME", 67, 7, "bcd", "entry time"),
        F("EXIT_TIME", 74, 7, "bcd", "exit time"),
        F("MAXFARE", 81, 4, "u32", "priced max fare of the entry line = missing tap-off charge"),
        F("DIRECTION", 85, 1, "u8", "S6"),
        F("LINE", 86, 2, "u16", "S6"),
        F("VEHICLE", 88, 6, "hex", "S6: the PSAM terminal number of the validator"),
        F("MARK", 94, 1, "u8", "'Y' (0x59): yikatong layout marker"),
        F("VER", 95, 1, "u8", "layout version 1"),
        F("FLAGS", 96, 1, "flags8", "F_TRANSFER: transfer discount reserved at boarding",
          codes="ride-flags"),
        F("INDUSTRY", 97, 1, "u8", "industry of the entry line"),
        F("DAY", 98, 4, "bcd", "service date of the accumulator"),
        F("DAY_TOTAL", 102, 4, "u32", "fen paid in DAY_CITY on DAY (fares, not penalties)"),
        F("DAY_COUNT", 106, 2, "u16", "rides counted"),
        F("DAY_CITY", 108, 2, "bcd", "city the accumulator belongs to"),
        F("RFU", 110, 16, "none", "00"),
        F("CRC", 126, 2, "u16", "CRC-16/CCITT-FALSE over bytes 14..125, big-endian"),
    ),
    consts=(
        ("A_CRC_FROM", 14, "first byte the CRC covers"),
        ("A_LEN_TOTAL", 128, "record bytes"),
        ("A_MARK_BYTE", 0x59, "MARK value"),
        ("A_VERSION", 1, "VER value"),
        ("ST_NONE", 0, "STATE: initial"),
        ("ST_BOARDED", 1, "STATE: boarded, entry open"),
        ("ST_CLOSED", 2, "STATE: alighted/closed"),
    ),
)
