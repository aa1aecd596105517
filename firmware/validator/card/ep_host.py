# validator.card.ep_host: host-side names of validator.card.ep's private constants, and the
# commands the validator never sends (GET BALANCE).
# SPDX-License-Identifier: MIT
#
# Emulators, tools and tests only; the firmware never imports this module.
# tests/host/test_tap_consts.py checks every value against ep.py (card-protocol.md §1-§6).
from validator.errors import R_APP_BLOCKED, R_OK
from validator.link import apdu

AID_TUNION = b"\xa0\x00\x00\x06\x32\x01\x01\x05"
AID_LOCAL = b"\xa0\x00\x00\x00\x03\x86\x98\x07\x01"
PPSE = b"2PAY.SYS.DDF01"
LABEL_EP = b"MOT_T_EP"
EF15_LEN = 30
SFI_EF15 = 0x15
SFI_EF17 = 0x17
SFI_EF18 = 0x18
SFI_EF1E = 0x1E
AUTH_LEN = 9
NO_RECORD = -2
TYPE_EP = 0x06
TYPE_CAPP = 0x09
INIT_BAL = 0
INIT_ATC = 4
INIT_OVERDRAFT = 6
INIT_KEYVER = 9
INIT_ALG = 10
INIT_RAND = 11
INIT_LEN = 15
DEBIT_TAC = 0
DEBIT_MAC2 = 4
DEBIT_LEN = 8
PROVE_MAC2 = 0
PROVE_TAC = 4
PROVE_LEN = 8
NO_CAPP = -3
NO_PROVE = -4
REC1E_LEN = 48
R1E_TYPE = 0
R1E_TERM = 1
R1E_INDUSTRY = 9
R1E_LINE = 10
R1E_AMOUNT = 17
R1E_BALANCE = 21
R1E_DATETIME = 25
R1E_CITY = 32
R1E_ACQUIRER = 34
BLOCK_TEMPORARY = 0x00

# GET CHALLENGE answers data on 9000 only; APPLICATION BLOCK: an already locked card (9303)
# or one answering 6A81 has reached the goal (§3). The engine does not need these tables.
SW_CHALLENGE = ((0x9000, R_OK),)
SW_BLOCK = (
    (0x9000, R_OK),
    (0x9303, R_APP_BLOCKED),
    (0x6A81, R_APP_BLOCKED),
)
SW_BALANCE = ((0x9000, R_OK),)


def get_balance(buf, p1=3):
    """GET BALANCE; P1=03 = available balance excluding overdraft (§3)."""
    apdu.case2(buf, 0x80, 0x5C, p1, 0x02, 4)
    return 5
