# validator.m1.link: MIFARE Classic commands through the PN532's own Crypto1 unit.
# SPDX-License-Identifier: MIT
#
# A MIFARE Classic card speaks no APDUs: the PN532 runs its commands itself when they are
# sent with InDataExchange to a MIFARE target (UM0701 §7.3.8 Table "MIFARE commands"):
#   60/61 blk key(6) uid(4)  AUTHENTICATE with key A / B (three-pass Crypto1, §7.3.8;
#                            the chip encrypts everything after it, nested auth included)
#   30 blk                   READ 16 bytes
#   A0 blk data(16)          WRITE (the chip runs both phases and their ACKs)
#   C0/C1/C2 blk value(4)    DECREMENT / INCREMENT / RESTORE into the card's transfer buffer
#   B0 blk                   TRANSFER the buffer into a block
# Status byte (§7.1 Table 5): 00 done; 14 authentication failed or the card NAKed (access
# conditions, not a value block); 01 / 2B / 29 the card did not answer (gone or torn:
# NfcTimeout, as for APDUs). A refusal is returned (the status), never raised: refusals
# are business outcomes and raising allocates. Nothing here allocates.
#
# The tap runs only with one card in the field (app.validator refuses two), whose target
# number the PN532 gave as 1 (InListPassiveTarget, §7.3.5).
from micropython import const

from validator.errors import NfcError, NfcTimeout

_CMD_IN_DATA_EXCHANGE = const(0x40)
_TG = const(1)
_TIMEOUT_MS = const(300)  # the chip's own MIFARE timeouts are far shorter
_ERR_TIMEOUT = const(0x01)
_ERR_TARGET_RELEASED = const(0x29)
_ERR_CARD_GONE = const(0x2B)
_MF_READ = const(0x30)
_MF_WRITE = const(0xA0)
_MF_TRANSFER = const(0xB0)


class M1Link:
    """MIFARE Classic commands on the reader's PN532 (validator.drivers.pn532.Pn532)."""

    def __init__(self, chip):
        self.chip = chip
        self.exchanges = 0

    def _x(self, n):
        """InDataExchange params[:n]; -> 0 or the chip's refusal status (14 ...)."""
        chip = self.chip
        ln = chip.command(_CMD_IN_DATA_EXCHANGE, n, _TIMEOUT_MS)
        self.exchanges += 1
        if ln < 1:
            raise NfcError("empty InDataExchange answer")
        e = chip.resp[0] & 0x3F
        if e == _ERR_TIMEOUT or e == _ERR_CARD_GONE or e == _ERR_TARGET_RELEASED:
            raise NfcTimeout("card did not answer")
        return e

    def auth(self, keytype, blk, key, koff, uid, uid_len):
        """AUTHENTICATE blk's sector with key[koff:koff+6]; the last four UID bytes enter
        Crypto1 (a 7-byte UID: its cascade-level-2 bytes, NXP AN10927 §3)."""
        p = self.chip.params
        p[0] = _TG
        p[1] = keytype
        p[2] = blk
        for i in range(6):
            p[3 + i] = key[koff + i]
        u = uid_len - 4
        for i in range(4):
            p[9 + i] = uid[u + i]
        return self._x(13)

    def read(self, blk, dst, off):
        """READ 16 bytes of blk into dst[off:off+16]; -> 0 or the refusal status."""
        p = self.chip.params
        p[0] = _TG
        p[1] = _MF_READ
        p[2] = blk
        e = self._x(3)
        if e:
            return e
        r = self.chip.resp
        for i in range(16):
            dst[off + i] = r[1 + i]
        return 0

    def write(self, blk, src, off):
        p = self.chip.params
        p[0] = _TG
        p[1] = _MF_WRITE
        p[2] = blk
        for i in range(16):
            p[3 + i] = src[off + i]
        return self._x(19)

    def value(self, op, blk, amount):
        """DECREMENT (C0), INCREMENT (C1) or RESTORE (C2, amount 0) of blk into the card's
        transfer buffer; the value goes little-endian, as the card keeps it."""
        p = self.chip.params
        p[0] = _TG
        p[1] = op
        p[2] = blk
        p[3] = amount & 0xFF
        p[4] = (amount >> 8) & 0xFF
        p[5] = (amount >> 16) & 0xFF
        p[6] = (amount >> 24) & 0xFF
        return self._x(7)

    def transfer(self, blk):
        p = self.chip.params
        p[0] = _TG
        p[1] = _MF_TRANSFER
        p[2] = blk
        return self._x(3)
