# validator.card.block: GET CHALLENGE and APPLICATION BLOCK (card-protocol.md §3, §4).
# SPDX-License-Identifier: MIT
#
# APPLICATION BLOCK `84 1E 00 P2 04 MAC(4)` is secure messaging: the MAC is made by the
# PSAM (801A 45 02 + 80FA 05 00) over the command header `84 1E 00 P2 04` padded with
# 80 00.., with IV = card challenge(4) || 00.. (§4, §5.1, S1/S4/S5).
from micropython import const

from validator.errors import R_APP_BLOCKED, R_OK
from validator.link import apdu

BLOCK_TEMPORARY = const(0x00)  # P2 00 = temporary per PBOC naming (§10 open question 8)
_CHALLENGE_LEN = const(4)

STATUS_CHALLENGE = ((0x9000, R_OK),)
STATUS_BLOCK = (
    (0x9000, R_OK),
    (0x9303, R_APP_BLOCKED),  # already locked: the goal is reached
    (0x6A81, R_APP_BLOCKED),
)


def get_challenge(buf):
    apdu.case2(buf, 0x00, 0x84, 0x00, 0x00, _CHALLENGE_LEN)
    return 5


def header(buf, p2):
    """The 5 header bytes the PSAM MACs for APPLICATION BLOCK (§4), at buf[0]."""
    apdu.header(buf, 0x84, 0x1E, 0x00, p2)
    buf[4] = 0x04
    return 5


def app_block(buf, p2, mac, mac_off):
    apdu.header(buf, 0x84, 0x1E, 0x00, p2)
    buf[4] = 0x04
    apdu.copy(buf, 5, mac, mac_off, 4)
    return 9
