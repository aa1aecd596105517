# validator.card.read: READ BINARY by SFI and READ RECORD (card-protocol.md §2).
# SPDX-License-Identifier: MIT
#
# READ BINARY `00 B0 (80|SFI) offset Le`; READ RECORD `00 B2 rec (SFI<<3)|4 Le`
# (ISO 7816-4 §11.3.3, §11.4.3). 6Cxx (wrong Le) is retried by the caller with Le = xx.
# The local (MOHURD) card's authentication code `80 CA 00 00 09` (§5.5) reads the same way.
from micropython import const

from validator.errors import R_OK, R_UNSUPPORTED_CARD

SFI_EF15 = const(0x15)
SFI_EF17 = const(0x17)
SFI_EF18 = const(0x18)
SFI_EF1E = const(0x1E)
AUTH_LEN = const(9)  # §5.5: 85 + 8 bytes, appended to the local card's MAC1 input
_NO_RECORD = const(-2)  # table code: 6A83, record not found (end of a cyclic log)

STATUS = (
    (0x9000, R_OK),
    (0x6A82, R_UNSUPPORTED_CARD),  # file not found
    (0x6A83, _NO_RECORD),
)


def binary(buf, sfi, off, le):
    buf[0] = 0x00
    buf[1] = 0xB0
    buf[2] = 0x80 | sfi
    buf[3] = off
    buf[4] = le
    return 5


def record(buf, rec, sfi, le):
    buf[0] = 0x00
    buf[1] = 0xB2
    buf[2] = rec
    buf[3] = (sfi << 3) | 4
    buf[4] = le
    return 5


def auth_code(buf):
    """MOHURD authentication code: 80 CA 00 00 09 (§5.5 shows only "80CA"; P1 P2 = 00 00
    in GET DATA style [INF], emu.local_card.AUTH_P1P2)."""
    buf[0] = 0x80
    buf[1] = 0xCA
    buf[2] = 0x00
    buf[3] = 0x00
    buf[4] = AUTH_LEN
    return 5
