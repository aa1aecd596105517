# validator.card.capp: UPDATE CAPP DATA CACHE 80DC (card-protocol.md §2.6, §3).
# SPDX-License-Identifier: MIT
#
# `80 DC 00 F0 30 <48-byte 0x1E record>`: P2 = F0 = SFI 1E << 3 with P1 = 00 (append to
# the cyclic file); the card commits it only together with the following 8054 (§6).
from micropython import const

from validator.card.purse import NO_CAPP
from validator.errors import R_OK
from validator.link import apdu

REC1E_LEN = const(48)
# EF1E record layout (§2.6)
R1E_TYPE = const(0)
R1E_TERM = const(1)  # 8: 00 00 + 6-byte PSAM terminal number (S5, S6)
R1E_INDUSTRY = const(9)  # 02 bus
R1E_LINE = const(10)  # 7: line(2) station(2) operator(2) RFU(1) (S1)
R1E_AMOUNT = const(17)
R1E_BALANCE = const(21)  # balance after the transaction
R1E_DATETIME = const(25)
R1E_CITY = const(32)  # acquirer city code
R1E_ACQUIRER = const(34)  # acquirer institution id (8)

STATUS = (
    (0x9000, R_OK),
    (0x6A82, NO_CAPP),  # the card has no EF1E: fall back to the simple purchase
    (0x6A83, NO_CAPP),
    (0x6D00, NO_CAPP),
)


def update_1e(buf, rec, rec_off):
    """80 DC 00 F0 30 + rec[rec_off:rec_off+48]; returns length."""
    apdu.header(buf, 0x80, 0xDC, 0x00, 0xF0)
    buf[4] = REC1E_LEN
    apdu.copy(buf, 5, rec, rec_off, REC1E_LEN)
    return 5 + REC1E_LEN
