# validator.card.purse: the EP purse commands (card-protocol.md §3, §5.3, §6).
# SPDX-License-Identifier: MIT
#
# GET BALANCE 805C, INITIALIZE FOR (CAPP) PURCHASE 8050, DEBIT FOR (CAPP) PURCHASE 8054,
# GET TRANSACTION PROVE 805A. CLA 80, P2 = 02 (electronic purse). Amounts are 4-byte
# big-endian fen; date-time 7-byte BCD.
from micropython import const

from validator.errors import R_APP_BLOCKED, R_CARD_ERROR, R_INSUFFICIENT, R_OK
from validator.link import apdu

TYPE_EP = const(0x06)  # simple EP purchase (§2.4 transaction types)
TYPE_CAPP = const(0x09)  # compound (CAPP) purchase

# INITIALIZE response (15 bytes): balance(4) offlineATC(2) overdraft(3) keyVer(1)
# algId(1) random(4) (§3 table)
INIT_BAL = const(0)
INIT_ATC = const(4)
_INIT_OVERDRAFT = const(6)
INIT_KEYVER = const(9)
INIT_ALG = const(10)
INIT_RAND = const(11)
INIT_LEN = const(15)
# DEBIT response: TAC(4) then MAC2(4) (§3, verified on a real trace §5.5)
DEBIT_TAC = const(0)
DEBIT_MAC2 = const(4)
DEBIT_LEN = const(8)
# GET TRANSACTION PROVE response: MAC2(4) then TAC(4) (§3)
PROVE_MAC2 = const(0)
PROVE_TAC = const(4)
PROVE_LEN = const(8)

NO_CAPP = const(-3)  # table code: card has no compound application/file -> type 06
NO_PROVE = const(-4)  # table code: 9406, no completed transaction with that ATC (§6.6)

# 9401 insufficient balance (§3); 9303/6A81 locked application; 6D00/6A86 = the card does
# not implement P1=03 (no CAPP) -> simple purchase; 6A82 CAPP file missing.
STATUS_INIT = (
    (0x9000, R_OK),
    (0x9401, R_INSUFFICIENT),
    (0x9303, R_APP_BLOCKED),
    (0x6A81, R_APP_BLOCKED),
    (0x6D00, NO_CAPP),
    (0x6A86, NO_CAPP),
    (0x6A82, NO_CAPP),
)
# 9302 = MAC1 refused: the card did NOT debit (§6.2); any SW means no debit happened.
STATUS_DEBIT = (
    (0x9000, R_OK),
    (0x9302, R_CARD_ERROR),
    (0x9401, R_INSUFFICIENT),
)
STATUS_PROVE = (
    (0x9000, R_OK),
    (0x9406, NO_PROVE),
    (0x6985, NO_PROVE),  # S7 sees 6985 on a failed 805A: treat like "not done"
)
def init_purchase(buf, capp, key_idx, amount, term, term_off):
    """INITIALIZE FOR (CAPP) PURCHASE: 80 50 03|01 02 0B keyIdx amount(4) term(6) 0F."""
    apdu.header(buf, 0x80, 0x50, 0x03 if capp else 0x01, 0x02)
    buf[4] = 0x0B
    buf[5] = key_idx
    apdu.put_u32(buf, 6, amount)
    apdu.copy(buf, 10, term, term_off, 6)
    buf[16] = INIT_LEN
    return 17


def debit(buf, ttsn, ttsn_off, dt, dt_off, mac1, mac1_off):
    """DEBIT FOR (CAPP) PURCHASE: 80 54 01 00 0F TTSN(4) datetime(7) MAC1(4) 08."""
    apdu.header(buf, 0x80, 0x54, 0x01, 0x00)
    buf[4] = 0x0F
    apdu.copy(buf, 5, ttsn, ttsn_off, 4)
    apdu.copy(buf, 9, dt, dt_off, 7)
    apdu.copy(buf, 16, mac1, mac1_off, 4)
    buf[20] = DEBIT_LEN
    return 21


def prove(buf, ttype, atc_after):
    """GET TRANSACTION PROVE for the transaction logged with ATC atc_after (= INIT ATC+1)."""
    apdu.header(buf, 0x80, 0x5A, 0x00, ttype)
    buf[4] = 0x02
    buf[5] = (atc_after >> 8) & 0xFF
    buf[6] = atc_after & 0xFF
    buf[7] = PROVE_LEN
    return 8


def __getattr__(name):
    """GET BALANCE (get_balance, STATUS_BALANCE) is not used by the validator: it lives in
    validator.card.purse_host for the emulators and tests (PEP 562 / MicroPython module
    __getattr__), so the firmware pays no heap for it."""
    from validator.card import purse_host

    return getattr(purse_host, name)
