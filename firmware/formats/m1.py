"""The city's legacy MIFARE Classic (M1) purse card: sectors, blocks, access bits, the key
derivation and the three 16-byte block layouts (firmware/validator/m1/FORMAT.md).

[INF] marks a choice no source fixes: each is one constant here, documented in FORMAT.md."""

from formats.model import Codes, Hex, Layout
from formats.model import Field as F

OWNER = "m1/purse.py"
HOSTS = ("m1/layout_host.py",)
DOC = "m1/FORMAT.md"

M1_CARD = Codes(
    "m1-card", "M1 purse card: sectors, blocks, access conditions, key derivation",
    owner=OWNER, hosts=HOSTS, doc=DOC,
    items=(
        ("SEC_TRIP", 1, "[INF] sector of the issuer block and the two trip blocks"),
        ("BLK_INFO", 4, "issuer block (read-only in the field)"),
        ("BLK_TRIP0", 5, "trip slot 0 (ping-pong with slot 1)"),
        ("BLK_TRIP1", 6, "trip slot 1"),
        ("SEC_PURSE", 2, "[INF] sector of the purse"),
        ("BLK_VALUE", 8, "purse value block (MIFARE value format)"),
        ("BLK_BACKUP", 9, "backup value block: the balance before an unfinished debit"),
        ("BLK_CTRL", 10, "control block: committed transaction counter, status"),
        # access bytes 6..8 of the trailers (MF1S50 §8.7): sector 1: issuer block 010 (read
        # A|B, never written), trip blocks 100 (read A|B, write B), trailer 011 (keys written
        # with B); sector 2: value and backup 110 (read A|B, write/increment B, decrement/
        # transfer/restore A|B), control 100, trailer 011. User byte 9: 0x69.
        ("ACC_TRIP", b"\x69\x67\x89\x69", "[INF] sector 1 trailer bytes 6..9"),
        ("ACC_PURSE", b"\x48\x77\x8b\x69", "[INF] sector 2 trailer bytes 6..9"),
        # key derivation through the local PSAM: 801A 45 02 with factor 1 = UID, zero
        # padded to 8, and factor 2 = KDF_F2 with the city code in front; then three
        # 80FA 05 00 over the UID block with IV = 'M' '1' s 61 00 00 00 00 for s = the purse
        # sector, the trip sector and KDF_SHARED (FORMAT.md §3)
        ("KDF_F2", b"\x4d\x31\x00\x00\x00\x00", "[INF] factor 2 after the city code: 'M1'"),
        ("KDF_IV0", Hex(0x4D), "[INF] IV byte 0 of a sector key MAC ('M')"),
        ("KDF_IV1", Hex(0x31), "[INF] IV byte 1 ('1')"),
        ("KDF_SHARED", Hex(0xFF), "[INF] IV byte 2 of the MAC whose halves end the keys"),
        ("KEY_A", Hex(0x60), "MIFARE AUTHENTICATE with key A"),
        ("KEY_B", Hex(0x61), "MIFARE AUTHENTICATE with key B (the validator's key)"),
        ("MAC_IV", b"M1REC\x00\x00\x00", "[INF] IV of the record MAC (80FA 05 00)"),
        ("MAC_FROM", 12, "record MAC covers record bytes MAC_FROM..MAC_TO-1 (m2-padded): "
         "from DEVICE on (the log stamps VERSION, LENGTH, SEQ itself)"),
        ("MAC_TO", 71, "end of the MACed bytes: DEVICE..DATETIME, every byte clearing "
         "settles money on (card, type, amounts, counter, terminal, time)"),
        ("LAYOUT_VER", 1, "issuer block VERSION this engine reads"),
        ("STATUS_OK", 0, "control STATUS: card in use (anything else: blocked by the issuer)"),
        ("INDUSTRY_BUS", Hex(0x02), "[INF] the industry of every M1 ride: the card is "
         "accepted on the city's buses only"),
    ),
)

M1_INFO = Layout(
    "m1-info", "M1 issuer block (sector 1 block 0, written at issue)", owner=OWNER,
    prefix="MI_", hosts=HOSTS, doc=DOC, size=16,
    fields=(
        F("CITY", 0, 2, "bcd", "city code, BCD (29 00)"),
        F("NUMBER", 2, 4, "hex", "card number printed on the card, BCD"),
        F("TYPE", 6, 1, "x8", "card type, the EF15[28] code space of the fare table"),
        F("VERSION", 7, 1, "u8", "layout version, 1"),
        F("START", 8, 4, "bcd", "valid from YYYYMMDD"),
        F("END", 12, 4, "bcd", "valid through YYYYMMDD"),
    ),
)

M1_TRIP = Layout(
    "m1-trip", "M1 trip slot (sector 1 blocks 1, 2): the last trip and the debit intent",
    owner=OWNER, prefix="MT_", hosts=HOSTS, doc=DOC, size=16,
    fields=(
        F("COUNTER", 0, 2, "u16", "transaction counter of this ride: written as the "
          "committed counter + 1 BEFORE the debit (the process flag, FORMAT.md §4)"),
        F("FLAGS", 2, 1, "flags8", "ride flags (transfer, capped, penalty)"),
        F("TIME", 3, 4, "u32", "device seconds of the tap"),
        F("LINE", 7, 2, "u16", "line number"),
        F("AMOUNT", 9, 2, "u16", "fen debited by this ride"),
        F("BAL_BEFORE", 11, 4, "u32", "purse value before this ride, fen"),
        F("CHECK", 15, 1, "x8", "CRC-8 (poly 0x07, init 0xFF) of bytes 0..14"),
    ),
)

M1_CTRL = Layout(
    "m1-ctrl", "M1 control block (sector 2 block 2)", owner=OWNER, prefix="MC_",
    hosts=HOSTS, doc=DOC, size=16,
    fields=(
        F("COUNTER", 0, 2, "u16", "committed transaction counter (last finished debit)"),
        F("STATUS", 2, 1, "u8", "0 in use; other values: blocked by the issuer"),
        F("RFU", 3, 12, "none", "00"),
        F("CHECK", 15, 1, "x8", "CRC-8 (poly 0x07, init 0xFF) of bytes 0..14"),
    ),
)
