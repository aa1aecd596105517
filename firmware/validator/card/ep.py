# validator.card.ep: the T-Union / MOHURD EP card command set (card-protocol.md §1-§6).
# SPDX-License-Identifier: MIT
#
# One module for every command family the validator sends (it used to be five: select,
# read, purse, capp, block). A module costs heap of its own on the device (~160 B + its
# globals dict + the names it imports), so the families live together here. Every builder
# writes into a caller-supplied buffer and returns the length; parsers work by offset; status
# words map through module-level tuples of (sw, code) pairs (link.apdu.lookup). Codes are
# errors.R_* reasons or the negative table codes below. Nothing here allocates or raises on
# card data.
#
# Layout constants are private (`_X = const(..)` is inlined and takes no heap); modules that
# need a value keep a private copy checked by tests/host/test_tap_consts.py, and host callers
# import public names from validator.card.ep_host (a module __getattr__ serving them would
# cost a function's heap here).
from micropython import const

from validator.link import apdu

# Reason codes: private copies of errors.R_* (checked by tests/host/test_tap_consts.py).
# With every entry a compile-time constant, the status tables below are constant tuples
# that stay in the image (ROMFS/frozen) instead of being built on the heap at import.
_R_OK = const(0)
_R_APP_BLOCKED = const(6)
_R_INSUFFICIENT = const(9)
_R_CARD_ERROR = const(13)
_R_UNSUPPORTED_CARD = const(14)

# ---- SELECT by AID / PPSE and the FCI (§1) ------------------------------------------------
# SELECT `00 A4 04 00 Lc AID 00` (ISO 7816-4 §11.2.2). The T-Union FCI carries EF15 (30
# bytes) in tag 9F0C, so a flat-fare tap needs no READ BINARY (§1, S1/S9). PPSE
# `2PAY.SYS.DDF01` is the fallback: its directory entry labelled MOT_T_EP names the AID.
_AID_TUNION = const(b"\xa0\x00\x00\x06\x32\x01\x01\x05")  # MOT_T_EP (§1)
# The city's own CPU card (MOHURD "住建部" profile, §0, §8 [C2]): a dual-mode validator
# selects it after the T-Union AID answered 6A82.
_AID_LOCAL = const(b"\xa0\x00\x00\x00\x03\x86\x98\x07\x01")
_PPSE = const(b"2PAY.SYS.DDF01")
_LABEL_EP = const(b"MOT_T_EP")
_EF15_LEN = const(30)
_TAG_DF_NAME = const(0x4F)
_TAG_LABEL = const(0x50)
_TAG_EF15 = const(0x9F0C)

# §1: 6283/6284/9303 = invalidated or locked application; 6A81 after APPLICATION BLOCK
# on some COS; 6A82 = application not present.
SW_SELECT = (
    (0x9000, _R_OK),
    (0x6283, _R_APP_BLOCKED),
    (0x6284, _R_APP_BLOCKED),
    (0x9303, _R_APP_BLOCKED),
    (0x6A81, _R_APP_BLOCKED),
    (0x6A82, _R_UNSUPPORTED_CARD),
)


def select(buf, aid, n):
    """SELECT by name aid[:n], first occurrence, FCI requested; returns length."""
    apdu.header(buf, 0x00, 0xA4, 0x04, 0x00)
    buf[4] = n
    for i in range(n):
        buf[5 + i] = aid[i]
    buf[5 + n] = 0x00
    return 6 + n


def tlv_find(buf, off, end, tag):
    """Where the value of the first `tag` in BER-TLV buf[off:end] is, descending into
    constructed tags: (len << 16) | value offset; -1 if absent."""
    while off + 2 <= end:
        t = buf[off]
        off += 1
        if t == 0x00 or t == 0xFF:  # padding between TLVs (ISO 7816-4 §5.2.2.1)
            continue
        constructed = t & 0x20
        if t & 0x1F == 0x1F:  # two-byte tag
            if off >= end:
                return -1
            t = (t << 8) | buf[off]
            off += 1
        if off >= end:
            return -1
        ln = buf[off]
        off += 1
        if ln == 0x81:
            ln = buf[off]
            off += 1
        elif ln > 0x80:
            return -1  # longer forms never occur in a ≤256-byte response
        if off + ln > end:
            return -1
        if t == tag:
            return (ln << 16) | off
        if not constructed:
            off += ln
    return -1


def fci_ef15(resp, n):
    """Offset of EF15 (tag 9F0C, 30 bytes) in the FCI resp[:n-2]; -1 if absent/short."""
    r = tlv_find(resp, 0, n - 2, _TAG_EF15)
    if r < 0 or (r >> 16) < _EF15_LEN:
        return -1
    return r & 0xFFFF


def ppse_aid(resp, n):
    """Packed (len << 16 | off) of the MOT_T_EP AID in a PPSE FCI, -1 if none (§1, S17).

    Directory entries are `61 { 4F aid 50 label 87 prio }`; we take the entry whose
    label is MOT_T_EP, else the first AID starting with the T-Union EP AID."""
    end = n - 2
    off = 0
    first = -1
    while True:
        e = tlv_find(resp, off, end, 0x61)
        if e < 0:
            return first
        eoff = e & 0xFFFF
        eend = eoff + (e >> 16)
        a = tlv_find(resp, eoff, eend, _TAG_DF_NAME)
        if a >= 0:
            lab = tlv_find(resp, eoff, eend, _TAG_LABEL)
            if lab >= 0 and (lab >> 16) == len(_LABEL_EP) and apdu.equal(
                resp, lab & 0xFFFF, _LABEL_EP, 0, len(_LABEL_EP)
            ):
                return a
            if first < 0 and (a >> 16) >= 8 and apdu.equal(resp, a & 0xFFFF, _AID_TUNION, 0, 8):
                first = a
        off = eend


# ---- READ BINARY by SFI, READ RECORD, the MOHURD authentication code (§2, §5.5) ------------
# READ BINARY `00 B0 (80|SFI) offset Le`; READ RECORD `00 B2 rec (SFI<<3)|4 Le`
# (ISO 7816-4 §11.3.3, §11.4.3). 6Cxx (wrong Le) is retried by the caller with Le = xx.
_SFI_EF15 = const(0x15)
_SFI_EF17 = const(0x17)
_SFI_EF18 = const(0x18)
_SFI_EF1E = const(0x1E)
_AUTH_LEN = const(9)  # §5.5: 85 + 8 bytes, appended to the local card's MAC1 input
_NO_RECORD = const(-2)  # table code: 6A83, record not found (end of a cyclic log)

SW_READ = (
    (0x9000, _R_OK),
    (0x6A82, _R_UNSUPPORTED_CARD),  # file not found
    (0x6A83, _NO_RECORD),
)


def read_binary(buf, sfi, off, le):
    buf[0] = 0x00
    buf[1] = 0xB0
    buf[2] = 0x80 | sfi
    buf[3] = off
    buf[4] = le
    return 5


def read_record(buf, rec, sfi, le):
    buf[0] = 0x00
    buf[1] = 0xB2
    buf[2] = rec
    buf[3] = (sfi << 3) | 4
    buf[4] = le
    return 5


def auth_code(buf):
    """MOHURD authentication code: 80 CA 00 00 09 (§5.5 shows only "80CA"; P1 P2 = 00 00
    in GET DATA style [INF], emu.local_card.AUTH_P1P2)."""
    apdu.case2(buf, 0x80, 0xCA, 0x00, 0x00, _AUTH_LEN)
    return 5


# ---- the purse: INITIALIZE 8050, DEBIT 8054, GET TRANSACTION PROVE 805A (§3, §5.3, §6) ------
# CLA 80, P2 = 02 (electronic purse). Amounts are 4-byte big-endian fen; date-time 7-byte
# BCD. GET BALANCE (805C) is not sent by the validator: it lives in ep_host.
_TYPE_EP = const(0x06)  # simple EP purchase (§2.4 transaction types)
_TYPE_CAPP = const(0x09)  # compound (CAPP) purchase
# INITIALIZE response (15 bytes): balance(4) offlineATC(2) overdraft(3) keyVer(1)
# algId(1) random(4) (§3 table)
_INIT_BAL = const(0)
_INIT_ATC = const(4)
_INIT_OVERDRAFT = const(6)
_INIT_KEYVER = const(9)
_INIT_ALG = const(10)
_INIT_RAND = const(11)
_INIT_LEN = const(15)
# DEBIT response: TAC(4) then MAC2(4) (§3, verified on a real trace §5.5)
_DEBIT_TAC = const(0)
_DEBIT_MAC2 = const(4)
_DEBIT_LEN = const(8)
# GET TRANSACTION PROVE response: MAC2(4) then TAC(4) (§3)
_PROVE_MAC2 = const(0)
_PROVE_TAC = const(4)
_PROVE_LEN = const(8)
_NO_CAPP = const(-3)  # table code: card has no compound application/file -> type 06
_NO_PROVE = const(-4)  # table code: 9406, no completed transaction with that ATC (§6.6)

# 9401 insufficient balance (§3); 9303/6A81 locked application; 6D00/6A86 = the card does
# not implement P1=03 (no CAPP) -> simple purchase; 6A82 CAPP file missing.
SW_INIT = (
    (0x9000, _R_OK),
    (0x9401, _R_INSUFFICIENT),
    (0x9303, _R_APP_BLOCKED),
    (0x6A81, _R_APP_BLOCKED),
    (0x6D00, _NO_CAPP),
    (0x6A86, _NO_CAPP),
    (0x6A82, _NO_CAPP),
)
# 9302 = MAC1 refused: the card did NOT debit (§6.2); any SW means no debit happened.
SW_DEBIT = (
    (0x9000, _R_OK),
    (0x9302, _R_CARD_ERROR),
    (0x9401, _R_INSUFFICIENT),
)
SW_PROVE = (
    (0x9000, _R_OK),
    (0x9406, _NO_PROVE),
    (0x6985, _NO_PROVE),  # S7 sees 6985 on a failed 805A: treat like "not done"
)


def init_purchase(buf, capp, key_idx, amount, term, term_off):
    """INITIALIZE FOR (CAPP) PURCHASE: 80 50 03|01 02 0B keyIdx amount(4) term(6) 0F."""
    apdu.header(buf, 0x80, 0x50, 0x03 if capp else 0x01, 0x02)
    buf[4] = 0x0B
    buf[5] = key_idx
    apdu.put_u32(buf, 6, amount)
    apdu.copy(buf, 10, term, term_off, 6)
    buf[16] = _INIT_LEN
    return 17


def debit(buf, ttsn, ttsn_off, dt, dt_off, mac1, mac1_off):
    """DEBIT FOR (CAPP) PURCHASE: 80 54 01 00 0F TTSN(4) datetime(7) MAC1(4) 08."""
    apdu.header(buf, 0x80, 0x54, 0x01, 0x00)
    buf[4] = 0x0F
    apdu.copy(buf, 5, ttsn, ttsn_off, 4)
    apdu.copy(buf, 9, dt, dt_off, 7)
    apdu.copy(buf, 16, mac1, mac1_off, 4)
    buf[20] = _DEBIT_LEN
    return 21


def prove(buf, ttype, atc_after):
    """GET TRANSACTION PROVE for the transaction logged with ATC atc_after (= INIT ATC+1)."""
    apdu.header(buf, 0x80, 0x5A, 0x00, ttype)
    buf[4] = 0x02
    buf[5] = (atc_after >> 8) & 0xFF
    buf[6] = atc_after & 0xFF
    buf[7] = _PROVE_LEN
    return 8


# ---- UPDATE CAPP DATA CACHE 80DC for EF1E (§2.6, §3) --------------------------------------
# `80 DC 00 F0 30 <48-byte 0x1E record>`: P2 = F0 = SFI 1E << 3 with P1 = 00 (append to
# the cyclic file); the card commits it only together with the following 8054 (§6).
_REC1E_LEN = const(48)
# EF1E record layout (§2.6)
_R1E_TYPE = const(0)
_R1E_TERM = const(1)  # 8: 00 00 + 6-byte PSAM terminal number (S5, S6)
_R1E_INDUSTRY = const(9)  # 02 bus
_R1E_LINE = const(10)  # 7: line(2) station(2) operator(2) RFU(1) (S1)
_R1E_AMOUNT = const(17)
_R1E_BALANCE = const(21)  # balance after the transaction
_R1E_DATETIME = const(25)
_R1E_CITY = const(32)  # acquirer city code
_R1E_ACQUIRER = const(34)  # acquirer institution id (8)

SW_CAPP = (
    (0x9000, _R_OK),
    (0x6A82, _NO_CAPP),  # the card has no EF1E: fall back to the simple purchase
    (0x6A83, _NO_CAPP),
    (0x6D00, _NO_CAPP),
)


def update_1e(buf, rec, rec_off):
    """80 DC 00 F0 30 + rec[rec_off:rec_off+48]; returns length."""
    apdu.header(buf, 0x80, 0xDC, 0x00, 0xF0)
    buf[4] = _REC1E_LEN
    apdu.copy(buf, 5, rec, rec_off, _REC1E_LEN)
    return 5 + _REC1E_LEN


# ---- GET CHALLENGE and APPLICATION BLOCK (§3, §4) -----------------------------------------
# APPLICATION BLOCK `84 1E 00 P2 04 MAC(4)` is secure messaging: the MAC is made by the
# PSAM (801A 45 02 + 80FA 05 00) over the command header `84 1E 00 P2 04` padded with
# 80 00.., with IV = card challenge(4) || 00.. (§4, §5.1, S1/S4/S5). GET CHALLENGE succeeds
# on 9000 only; the APPLICATION BLOCK answer is not needed (the record is written anyway):
# their status tables live in ep_host for the emulators and tests.
_BLOCK_TEMPORARY = const(0x00)  # P2 00 = temporary per PBOC naming (§10 open question 8)


def get_challenge(buf):
    apdu.case2(buf, 0x00, 0x84, 0x00, 0x00, 4)
    return 5


def app_block(buf, mac, mac_off):
    """APPLICATION BLOCK 84 1E 00 00 04 MAC(4); returns 9. mac None: only the 5 header bytes
    the PSAM MACs (§4), returns 5 -- one builder for both keeps the header in one place."""
    apdu.header(buf, 0x84, 0x1E, 0x00, _BLOCK_TEMPORARY)
    buf[4] = 0x04
    if mac is None:
        return 5
    apdu.copy(buf, 5, mac, mac_off, 4)
    return 9
