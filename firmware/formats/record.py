"""The 128-byte record image, its status codes and engine flags; the tear context."""

from formats.model import Codes, Layout
from formats.model import Field as F

RECORD = Layout(
    "record", "record image, 128 bytes", owner="storage/record.py", prefix="O_",
    users=("storage/recordlog.py", "txn/transaction.py", "app/content.py", "m1/purse.py"),
    hosts=("storage/record_host.py",), doc="storage/FORMAT.md", size=128, listed=True,
    fields=(
        F("COMMIT", 0, 4, "none", 'commit word `59 4B 52 31` ("YKR1"), programmed **last**, '
          "not covered by the CRC"),
        F("VERSION", 4, 1, "u8", "record format version, 1"),
        F("STATUS", 5, 1, "enum8", "1 normal, 2 gray, 3 recovered, 4 blocked, 5 refused",
          codes="record-status"),
        F("LENGTH", 6, 2, "u16", "128 (slot bytes; a later version may only grow into "
          "reserved bytes)"),
        F("SEQ", 8, 4, "u32", "sequence number, consecutive per device"),
        F("DEVICE", 12, 4, "hex", "device id (board.device_id)", column="device_id"),
        F("SERIAL", 16, 10, "hex", "EF15[10..19] application serial, BCD, exact",
          column="card_serial"),
        F("ISSUER", 26, 8, "hex", "EF15[0..7] issuer id (factor 2), exact", column="issuer_id"),
        F("CARD_TYPE", 34, 1, "x8", "card type (EF15[28] / EF17[10], per txn engine)"),
        F("TXN_TYPE", 35, 1, "x8", "`06` simple purchase, `09` CAPP, `00` no debit "
          "(refused/blocked)"),
        F("REASON", 36, 1, "u8", "errors.R_* reason code of the decision"),
        F("KEY_VER", 37, 1, "x8", "key version from INITIALIZE, exact", column="key_version"),
        F("ALG_ID", 38, 1, "x8", "algorithm id from INITIALIZE, exact"),
        F("FLAGS", 39, 1, "flags8", "ride flags (EF1E flags: transfer, capped, penalty)",
          codes="ride-flags"),
        F("AMOUNT", 40, 4, "u32", "fen, exact (as in 8070/8054)"),
        F("BAL_BEFORE", 44, 4, "u32", "fen (INITIALIZE response)", column="balance_before"),
        F("BAL_AFTER", 48, 4, "u32", "fen", column="balance_after"),
        F("ATC", 52, 2, "u16", "offline ATC from INITIALIZE, exact (the 805A prove uses "
          "ATC+1)"),
        F("TERMINAL", 54, 6, "hex", "PSAM terminal number (EF16), exact", column="terminal_no"),
        F("TTSN", 60, 4, "hex", "PSAM terminal transaction serial from 8070, exact"),
        F("DATETIME", 64, 7, "bcd", "YYYYMMDDhhmmss BCD, exact"),
        F("TAC", 71, 4, "hex", "TAC from 8054/805A; `FFFFFFFF` when none (gray, refused)"),
        F("LINE", 75, 2, "u16", "line number"),
        F("STATION", 77, 2, "u16", "station/stop"),
        F("DIRECTION", 79, 1, "u8", "0 up, 1 down, FF unknown"),
        F("VEHICLE", 80, 6, "hex", "vehicle id, 6 bytes (BCD or ASCII, per operator)"),
        F("FARE_LIST", 86, 4, "u32", "fen list fare before discounts/caps"),
        F("FARE_RULE", 90, 2, "u16", "rule id that priced the ride: policy entry (1-based, "
          "0 none) << 8 | Decision.kind (rules/FORMAT.md §3 rule 12)"),
        F("REF_SEQ", 92, 4, "u32", "seq of the gray record this one resolves, `FFFFFFFF` "
          "none"),
        F("PSAM_SLOT", 96, 1, "u8", "PSAM slot used"),
        F("KEY_INDEX", 97, 1, "u8", "PSAM key index (EF17 byte 0) sent in 8050"),
        F("TXFLAGS", 98, 1, "flags8", "engine flags: bit0 MAC2 unverified (the PSAM lost the "
          "purchase session), bit1 MAC2 bad (the PSAM refused the card's MAC2); clearing "
          "decides by the TAC", codes="record-txflags"),
        F("VOID_SEQ", 99, 4, "u32", "seq of a gray record this tap proved void (the torn card "
          "came back with its ATC unchanged: no debit); `FFFFFFFF` none (00000000 in records "
          "written before the field existed)"),
        F("CARD_KIND", 103, 1, "u8", "0 CPU card (T-Union / local EP), 1 MIFARE Classic M1 "
          "purse (m1/FORMAT.md: SERIAL = UID, ATC = the card's transaction counter, no TAC)"),
        F("M1_MAC", 104, 4, "hex", "M1 records: MAC of the local PSAM (80FA) over bytes 12..70 "
          "(m1/FORMAT.md §5); 00000000 otherwise"),
        F("RESERVED", 108, 16, "none", "00"),
        F("CRC", 124, 4, "u32", "CRC-32 of bytes 4..123, big-endian", column=""),
    ),
    consts=(
        ("REC_SIZE", 128, "bytes per record (one log slot)"),
        ("KIND_CPU", 0, "CARD_KIND of a CPU-card record"),
        ("KIND_M1", 1, "CARD_KIND of an M1 purse record"),
        ("REC_VERSION", 1, "the record format version in VERSION"),
        ("REC_COMMIT", b"YKR1", "the commit word"),
        ("NONE32", 0xFFFFFFFF, "TAC / REF_SEQ when there is none"),
    ),
)

RECORD_STATUS = Codes(
    "record-status", "record STATUS values", owner="storage/record.py",
    users=("txn/transaction.py", "m1/purse.py"), hosts=("storage/record_host.py",),
    doc="storage/FORMAT.md",
    items=(
        ("ST_NORMAL", 1, "a completed debit (TAC from 8054)"),
        ("ST_GRAY", 2, "written before DEBIT: the card may or may not have paid"),
        ("ST_RECOVERED", 3, "a torn debit proved done later (TAC from 805A)"),
        ("ST_BLOCKED", 4, "a blacklisted card locked (APPLICATION BLOCK)"),
        ("ST_REFUSED", 5, "a tap refused after the card was read (no debit)"),
    ),
)

RECORD_TXFLAGS = Codes(
    "record-txflags", "record TXFLAGS bits", owner="storage/record.py",
    users=("txn/transaction.py",), hosts=("storage/record_host.py",), doc="storage/FORMAT.md",
    items=(
        ("FL_MAC2_UNVERIFIED", 1, "mac2_unverified: recovered after the PSAM lost the session "
         "(reboot, another card, a block)"),
        ("FL_MAC2_BAD", 2, "mac2_bad: the PSAM refused the card's MAC2 (the TAC decides at "
         "clearing)"),
    ),
)

TEAR_CONTEXT = Layout(
    "tear-context", "tear context (one of N_CTX in the tear store blob)",
    owner="txn/transaction.py", prefix="C_", hosts=("txn/record.py",), doc="txn/README.md",
    size=76, base=0,
    fields=(
        F("IMAGE", 0, 64, "hex", "record bytes 16..79 (SERIAL .. DIRECTION), exact: "
          "everything that entered MAC1/TAC, plus line/station"),
        F("SERIAL", 0, 10, "alias", "record SERIAL"),
        F("TXN_TYPE", 19, 1, "alias", "record TXN_TYPE (inside the image copy)"),
        F("AMOUNT", 24, 4, "alias", "record AMOUNT"),
        F("BAL_AFTER", 32, 4, "alias", "record BAL_AFTER"),
        F("ATC", 36, 2, "alias", "record ATC (the prove uses ATC+1)"),
        F("TERMINAL", 38, 6, "alias", "record TERMINAL"),
        F("TTSN", 44, 4, "alias", "record TTSN"),
        F("DATETIME", 48, 7, "alias", "record DATETIME"),
        F("GRAY", 64, 4, "u32", "seq of the gray record"),
        F("SAVED", 68, 4, "u32", "device seconds when saved"),
        F("VALID", 72, 1, "u8", "1 when the slot holds a context"),
        F("PAD", 73, 3, "none", "00"),
    ),
    consts=(
        ("CTX_BASE", 16, "record offset of the context's image copy (O_SERIAL)"),
        ("CTX_IMG", 64, "bytes of the image copy (record 16..79)"),
        ("CTX_LEN", 76, "bytes per context"),
        ("N_CTX", 3, "contexts in the table (LRU)"),
        ("CTX_TABLE_LEN", 228, "the blob storage.journal.TearStore persists (<= 244)"),
    ),
)
