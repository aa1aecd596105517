# validator.card.purse_host: purse commands the validator does not send (GET BALANCE).
# SPDX-License-Identifier: MIT
#
# Emulators and tests only; the firmware never imports this module (card-protocol.md §3).
from validator.errors import R_OK
from validator.link import apdu

STATUS_BALANCE = ((0x9000, R_OK),)


def get_balance(buf, p1=3):
    """GET BALANCE; P1=03 = available balance excluding overdraft (§3)."""
    apdu.case2(buf, 0x80, 0x5C, p1, 0x02, 4)
    return 5
