"""Reason codes, the PSAM 8070 input, storage internals shared between modules, the fare
table and the fare decision."""

from formats.model import Codes, Hex, Layout
from formats.model import Field as F

REASONS = Codes(
    "reasons", "reason codes (a tap's outcome; stable: they go into records)",
    owner="errors.py", public=True,
    users=("txn/transaction.py", "card/ep.py", "card/ep_host.py",
           "app/validator.py", "app/feedback.py", "rules/fares.py"),
    hosts=(), doc=None,
    items=(
        ("R_OK", 0, "accepted"),
        ("R_NO_CARD", 1, "no card in the field"),
        ("R_MULTIPLE_CARDS", 2, "more than one card"),
        ("R_BLACKLISTED", 3, "card on the blacklist (locked)"),
        ("R_EXPIRED", 4, "past the card's end date"),
        ("R_NOT_YET_VALID", 5, "before the card's start date"),
        ("R_APP_BLOCKED", 6, "the application is blocked"),
        ("R_NOT_INTERCONNECT", 7, "not an interconnect card"),
        ("R_ISSUER_NOT_ACCEPTED", 8, "issuer not accepted here"),
        ("R_INSUFFICIENT", 9, "insufficient balance"),
        ("R_ALREADY_PAID", 10, "a repeat tap inside the window"),
        ("R_TAP_AGAIN", 11, "debit unanswered: present the card again"),
        ("R_RECOVERED", 12, "a torn debit completed"),
        ("R_CARD_ERROR", 13, "the card answered an error"),
        ("R_UNSUPPORTED_CARD", 14, "no supported application"),
        ("R_SAM_FAULT", 15, "the PSAM is missing or failed"),
        ("R_STORAGE_FULL", 16, "the record log is full: sync needed"),
        ("R_COMM_ERROR", 17, "the card left or the reader failed"),
        ("R_FAULT", 18, "internal fault (flash, ...)"),
        ("R_NO_TARIFF", 19, "no active fare table, or the line is not in it"),
        ("R_CARD_TYPE_REFUSED", 20, "the city policy refuses this card type"),
    ),
)

PSAM_8070 = Layout(
    "psam-8070", "PSAM MAC1 request (8070 data)", owner="sam/psam.py", prefix="M_",
    doc="sam/README.md", size=36,
    fields=(
        F("RAND", 0, 4, "hex", "card random from INITIALIZE"),
        F("ATC", 4, 2, "u16", "offline ATC"),
        F("AMOUNT", 6, 4, "u32", "fen"),
        F("TYPE", 10, 1, "x8", "transaction type 06/09"),
        F("DT", 11, 7, "bcd", "date-time YYYYMMDDhhmmss"),
        F("KEYVER", 18, 1, "x8", "key version from INITIALIZE"),
        F("ALG", 19, 1, "x8", "algorithm id from INITIALIZE"),
        F("F1", 20, 8, "hex", "diversification factor 1: card serial (EF15[12..19])"),
        F("F2", 28, 8, "hex", "factor 2: issuer id; city code + FF fill for local cards"),
    ),
    consts=(
        ("M_LEN", 36, "request bytes (+ AUTH_LEN for a local card's 80CA code)"),
        ("TERM_LEN", 6, "PSAM terminal number"),
        ("DF_LOCAL", b"\x10\x01", "the local issuer's DF in the PSAM ([INF], one constant)"),
        ("DF_MOT", b"\x80\x11", "the MOT DF (§4 [C2])"),
        ("F2_CITY", 2, "F2: city code offset"),
        ("F2_FILL", Hex(0xFF), "F2: fill byte"),
        ("BLOCK_KEY_USAGE", Hex(0x45), "801A 45 02 for T-Union APPLICATION BLOCK (§4, S1/S4/S5)"),
        ("BLOCK_KEY_VER", Hex(0x02), "801A key version"),
        ("BLOCK_KEY_SM4", Hex(0x04), "[INF] SM4 maintenance key id mirrors the SM4 algorithm id"),
        ("ALG_SM4", Hex(0x04), "algorithm id of SM4 from INITIALIZE ([INF]); 00 = 3DES"),
    ),
)

SAM_LINK = Codes(
    "sam-link-codes", "SamError codes of the PSAM T=0 link (SamError.code)",
    owner="link/iso7816.py", hosts=("link/iso7816_host.py",), doc="sam/README.md",
    items=(
        ("SAM_NO_ATR", 1, "no ATR after reset"),
        ("SAM_BAD_ATR", 2, "malformed ATR (TS, TCK, length)"),
        ("SAM_TIMEOUT", 3, "no answer within the work waiting time"),
        ("SAM_PROTOCOL", 4, "a procedure byte or answer the T=0 rules do not allow"),
        ("SAM_ECHO", 5, "the line echo did not match what was sent"),
        ("SAM_PPS", 6, "PPS exchange refused or garbled"),
        ("SAM_OVERFLOW", 7, "answer longer than the buffer"),
    ),
)

ATR_TS = Codes(
    "atr-ts", "ATR initial character TS (ISO/IEC 7816-3 §8.1)", owner="link/iso7816.py",
    hosts=("link/iso7816_host.py",), doc="sam/README.md", hexfmt=True,
    items=(
        ("TS_DIRECT", 0x3B, "direct convention"),
        ("TS_INVERSE", 0x3F, "inverse convention"),
        ("TS_INVERSE_SEEN", 0x03, "inverse-convention TS read by a direct-convention UART"),
    ),
)

JOURNAL = Codes(
    "journal-slots", "slot classes of a scanned flash slot", owner="storage/journal.py",
    users=("storage/recordlog.py",), doc="storage/FORMAT.md",
    items=(
        ("BLANK", 0, "all FF"),
        ("VALID", 1, "CRC matches"),
        ("CORRUPT", 2, "CRC wrong, commit word programmed: committed, then damaged"),
        ("TORN", 3, "CRC wrong, commit word FF: the cut hit the body program"),
    ),
)

BLACKLIST = Codes(
    "blacklist-body", "blacklist content body", owner="storage/blacklist.py",
    hosts=("storage/blacklist_host.py",), doc="storage/FORMAT.md",
    items=(
        ("KIND_FULL", 1, "a full list"),
        ("KIND_DELTA", 2, "changes against a base version"),
        ("OP_REMOVE", 0, "delta entry: remove the key"),
        ("OP_ADD", 1, "delta entry: add the key"),
    ),
)

FARE_TABLE = Codes(
    "fare-table", "fare table v1 codes and sizes", owner="rules/table.py",
    users=("rules/fares.py",), hosts=("rules/table_host.py",), doc="rules/FORMAT.md",
    items=(
        ("FT_MAGIC", b"YKFT", "body magic"),
        ("FORMAT_VERSION", 1, "body format version"),
        ("HEADER_LEN", 48, "header bytes"),
        ("LINE_LEN", 12, "bytes per line entry"),
        ("POLICY_LEN", 8, "bytes per card-type policy entry"),
        ("ACCEPT_LEN", 4, "bytes per accepted-issuer entry"),
        ("FLAG_XFER_SAME_LINE", 1, "same line, other vehicle (terminal) counts as a transfer"),
        ("FLAG_XFER_OTHER_CITY", 2, "previous ride acquired in another city counts"),
        ("FLAG_BOARD_NEEDS_MAX", 4, "boarding a section line needs balance >= priced max fare"),
        ("XFER_NONE", 0, "transfer kind: none"),
        ("XFER_AMOUNT_OFF", 1, "transfer kind: amount off"),
        ("XFER_PERCENT_OFF", 2, "transfer kind: percent off"),
        ("XFER_FREE", 3, "transfer kind: free"),
        ("TAPOFF_CHARGE_MAX", 0, "missing tap-off: charge the entry line's max fare"),
        ("TAPOFF_CHARGE_NONE", 1, "missing tap-off: charge nothing"),
        ("PAY_PERCENT", 0, "policy pay: percent of the fare"),
        ("PAY_FIXED", 1, "policy pay: fixed fare"),
        ("PAY_FREE", 2, "policy pay: free"),
        ("PAY_REFUSE", 3, "policy pay: refuse the card type"),
        ("SCOPE_LOCAL", 0, "policy scope: local cards"),
        ("SCOPE_VISITING", 1, "policy scope: visiting cards"),
        ("SCOPE_ANY", 2, "policy scope: any card"),
        ("POL_TRANSFER", 1, "policy bit0: may get a transfer discount"),
        ("POL_CAP", 2, "policy bit1: the daily cap applies"),
        ("ANY_TYPE", Hex(0xFF), "policy card type: any"),
        ("ANY_CODE", Hex(0xFFFF), "accept entry: any code"),
        ("IND_RAIL", 1, "industry: rail"),
        ("IND_BUS", 2, "industry: bus"),
        ("T_ACTIVE", 0, "install: the table is in force now"),
        ("T_PENDING", 1, "install: activation time in the future"),
        ("T_BAD_FORMAT", -2, "install: framing or parsing failed"),
    ),
)

FT = dict(owner="rules/table.py", hosts=("rules/table_host.py",), doc="rules/FORMAT.md")

FARE_HEADER = Layout(
    "fare-header", "fare table header (48 bytes)", prefix="TH_", size=48, **FT,
    fields=(
        F("MAGIC", 0, 4, "ascii", '"YKFT"'),
        F("FORMAT", 4, 1, "u8", "format version = 1; a parser refuses any other value"),
        F("HDR_LEN", 5, 1, "u8", "header length = 48"),
        F("FLAGS", 6, 2, "u16", "FLAG_* bits"),
        F("VERSION", 8, 4, "u32", "table version (monotonic per city)"),
        F("ACTIVATION", 12, 4, "u32", "activation time, device seconds (local time since "
          "2000-01-01, `util/bcdtime.py`)"),
        F("CITY", 16, 2, "bcd", "home city code; a card whose EF15[2..3] equals it is local"),
        F("ACQ", 18, 8, "hex", "acquirer institution ID, written to EF1E ACQ and EF1A"),
        F("XFER_WINDOW", 26, 2, "u16", "transfer window, seconds"),
        F("XFER_KIND", 28, 1, "u8", "transfer kind (XFER_*)"),
        F("TAPOFF", 29, 1, "u8", "missing tap-off policy (TAPOFF_*)"),
        F("XFER_VALUE", 30, 2, "u16", "transfer value: fen off, or percent off (0-100)"),
        F("CAP", 32, 4, "u32", "daily cap in fen, 0 = no cap"),
        F("DAY_START", 36, 2, "u16", "service-day start, minutes after midnight (rides before "
          "it count for the previous day)"),
        F("TAPOFF_WINDOW", 38, 2, "u16", "tap-off window, seconds: an older open boarding is "
          "a missing tap-off"),
        F("N_LINES", 40, 1, "u8", "line entries (<= 255)"),
        F("N_POL", 41, 1, "u8", "policy entries"),
        F("N_ACC", 42, 1, "u8", "accept entries"),
        F("RFU", 43, 1, "none", "0"),
        F("CONTENT_LEN", 44, 4, "u32", "body length"),
    ),
)

FARE_LINE = Layout(
    "fare-line", "fare table line entry (12 bytes, sorted by line id)", prefix="TL_",
    size=12, **FT,
    fields=(
        F("LINE", 0, 2, "u16", "line id, also written to EF1E LINE and EF1A LINE"),
        F("INDUSTRY", 2, 1, "u8", "01 rail, 02 bus (EF1E INDUSTRY)"),
        F("STOPS", 3, 1, "u8", "0 = flat-fare line; n = section line with stops 0..n-1"),
        F("FARE", 4, 2, "u16", "flat fare; for a section line the maximum of its matrix"),
        F("RFU", 6, 2, "none", "0"),
        F("MATRIX", 8, 4, "u32", "matrix offset from the body start (0 for a flat line)"),
    ),
)

FARE_POLICY = Layout(
    "fare-policy", "fare table card-type policy entry (8 bytes, first match wins)",
    prefix="TP_", size=8, users=("rules/fares.py",), **FT,
    fields=(
        F("CARD_TYPE", 0, 1, "x8", "card type (EF15[28]), or FF for any"),
        F("SCOPE", 1, 1, "u8", "SCOPE_*"),
        F("PAY", 2, 1, "u8", "PAY_*"),
        F("RIGHTS", 3, 1, "u8", "POL_TRANSFER, POL_CAP bits"),
        F("VALUE", 4, 2, "u16", "percent or fixed fare"),
        F("RFU", 6, 2, "none", "0"),
    ),
)

FARE_ACCEPT = Layout(
    "fare-accept", "fare table accept entry (4 bytes, interconnect whitelist)", prefix="TA_",
    size=4, **FT,
    fields=(
        F("ORG", 0, 2, "hex", "issuer organisation code, EF15[0..1]; FFFF any"),
        F("CITY", 2, 2, "hex", "city code, EF15[2..3]; FFFF any"),
    ),
)

NEEDS = Codes(
    "fare-needs", "what a fare policy needs read from the card (policy.needs() bits)",
    owner="rules/table.py", users=("txn/transaction.py",),
    hosts=("rules/table_host.py",), doc="rules/FORMAT.md",
    items=(
        ("NEED_1E", 1, "EF 0x1E record 1 (the newest trip record)"),
        ("NEED_1A", 2, "EF 0x1A record 2 (bus record 2702)"),
        ("NEED_EF17", 4, "read EF17 for local cards too (visitors always)"),
    ),
)

KINDS = Codes(
    "fare-kinds", "fare decision kinds (Decision.kind)", owner="rules/fares.py",
    users=("txn/transaction.py", "m1/purse.py"), hosts=("rules/fares_host.py",),
    doc="rules/FORMAT.md", listed=True,
    items=(
        ("K_NONE", 0, "refused"),
        ("K_FLAT", 1, "flat fare"),
        ("K_TRANSFER", 2, "transfer discount"),
        ("K_BOARD", 3, "section line: entry recorded, 0 charged now"),
        ("K_SECTION", 4, "section line: alighting, matrix fare"),
        ("K_CAPPED", 5, "the daily cap applied"),
        ("K_FREE", 6, "card-type policy: free ride"),
        ("K_NO_ENTRY", 7, "exit tap with no matching boarding: the line's max fare"),
    ),
)
