# validator.link.iso14443: the reader contract (poll / transmit / release) over a PN532.
# SPDX-License-Identifier: MIT
#
# The PN532 runs the ISO/IEC 14443-4 block protocol itself (I-blocks, WTX, chaining on
# air, FSD/FSC from the ATS), so this layer maps APDUs onto InDataExchange and chains
# host <-> chip transfers with the MI bit when an APDU is bigger than one frame
# (UM0701 §7.3.8). Card detection uses InListPassiveTarget with MaxTg = 2 so two cards in
# the field are seen and refused (DB31/T 239-2020 §6.4.1), type A first, then type B.
# Nothing on the path allocates: the card information (kept in the reader itself) and
# every buffer are created once.
from micropython import const

from validator.errors import NfcError, NfcTimeout

_BR_TYPE_A = const(0x00)
_BR_TYPE_B = const(0x03)
_CHUNK = const(250)  # APDU bytes per InDataExchange frame (normal frame: 255 - TFI, cmd, Tg)
_MI = const(0x40)
_POLL_TIMEOUT_MS = const(150)
_EXCHANGE_TIMEOUT_MS = const(1500)  # chip gives up first (RF timeout / FWT from the ATS)
_SAK_ISO14443_4 = const(0x20)
# PN532 commands (UM0701 §7.3) and status-byte errors (§7.1 Table 5) used here
_CMD_IN_DATA_EXCHANGE = const(0x40)
_CMD_IN_LIST_PASSIVE_TARGET = const(0x4A)
_CMD_IN_RELEASE = const(0x52)
_ERR_TIMEOUT = const(0x01)
_ERR_TARGET_RELEASED = const(0x29)
_ERR_CARD_GONE = const(0x2B)

_KIND_A = const(1)
_KIND_B = const(2)


class Iso14443Reader:
    """poll() returns the reader itself as the card information (or None): `kind` (1 =
    type A, 2 = type B), `count` (> 1: several cards in the field), `uid[:uid_len]`
    (NFCID1 or PUPI), `sak`, `atqa` (SENS_RES as the chip reports it, MSB first; 0 for
    type B), `iso_dep`. One object, filled in place: no allocation."""

    def __init__(self, pn532, type_b=True):
        self.chip = pn532
        self.type_b = type_b
        self.kind = 0
        self.count = 0
        self.uid = bytearray(10)
        self.uid_len = 0
        self.sak = 0
        self.atqa = 0
        self.iso_dep = False
        self._tg = 1
        self.exchanges = 0
        self.version = None

    # -- lifecycle ------------------------------------------------------------------
    def begin(self):
        """Bring the chip up; tried three times (a chip still mid-frame after an MCU reset,
        or slow after power-up, misses a command: a boot must not end there)."""
        for i in range(3):
            try:
                self.version = self.chip.begin()
                # One passive-activation retry: InListPassiveTarget answers NbTg = 0 at once
                # when the field is empty instead of blocking (UM0701 §7.3.1 CfgItem 5).
                self.chip.rf_config(0x05, 3, 0xFF, 0x01, 0x01)  # MxRtyATR, PSL, Passive
                # timings: RFU, ATR_RES timeout 0x0B, RetryTimeout 0x0A = 51.2 ms (Table 12)
                self.chip.rf_config(0x02, 3, 0x00, 0x0B, 0x0A)
                return self.version
            except NfcError:
                if i == 2:
                    raise

    def field_on(self):
        for i in range(3):  # as begin(): a missed command is tried again
            try:
                self.chip.rf_config(0x01, 1, 0x01)  # CfgItem 1: RF field on (§7.3.1)
                return
            except NfcError:
                if i == 2:
                    raise

    def field_off(self):
        self.chip.rf_config(0x01, 1, 0x00)

    # -- detection --------------------------------------------------------------------
    def poll(self):
        """Activate the card(s) in the field; the reader (card information) or None when empty."""
        if self._list(_BR_TYPE_A):
            return self
        if self.type_b and self._list(_BR_TYPE_B):
            return self
        return None

    def _list(self, brty):
        chip = self.chip
        p = chip.params
        p[0] = 2  # MaxTg: two, so a second card is noticed
        p[1] = brty
        n = 2
        if brty == _BR_TYPE_B:
            p[2] = 0x00  # AFI: all families
            n = 3
        ln = chip.command(_CMD_IN_LIST_PASSIVE_TARGET, n, _POLL_TIMEOUT_MS)
        r = chip.resp
        if ln < 1 or r[0] == 0:
            return False
        c = self
        c.count = r[0]
        self._tg = r[1]
        if brty == _BR_TYPE_A:
            # Tg, SENS_RES(2), SEL_RES, NFCIDLength, NFCID1, [ATS] (UM0701 §7.3.5)
            if ln < 6:
                raise NfcError("short target data")
            c.kind = _KIND_A
            c.sak = r[4]
            c.atqa = (r[2] << 8) | r[3]  # e.g. 0004 / 0044: MIFARE Classic 1K (m1 engine)
            k = r[5]
            if k > 10 or 6 + k > ln:
                raise NfcError("bad NFCID length")
            c.uid_len = k
            for i in range(k):
                c.uid[i] = r[6 + i]
            c.iso_dep = bool(c.sak & _SAK_ISO14443_4)
        else:
            # Tg, ATQB(12: 50 PUPI(4) AppData(4) ProtInfo(3)), ATTRIB_RES len, ATTRIB_RES
            if ln < 14 or r[2] != 0x50:
                raise NfcError("bad ATQB")
            c.kind = _KIND_B
            c.sak = 0
            c.atqa = 0
            c.uid_len = 4
            for i in range(4):
                c.uid[i] = r[3 + i]
            c.iso_dep = bool(r[12] & 0x01)  # ProtInfo: ISO 14443-4 compliant bit
        return True

    # -- APDUs ------------------------------------------------------------------------
    def transmit(self, cmd, n, resp):
        """Send cmd[:n] as one APDU; response data + SW into resp; return its length.

        Each pass sends one InDataExchange frame: the next chunk of the command (MI set
        while more follows), then, once the command is out, empty frames that fetch the
        rest of the answer while the chip sets MI in its status byte (UM0701 §7.3.8)."""
        chip = self.chip
        p = chip.params
        r = chip.resp
        off = 0
        got = 0
        while True:
            k = n - off
            more = k > _CHUNK
            if more:
                k = _CHUNK
            p[0] = self._tg | (_MI if more else 0)
            for i in range(k):
                p[1 + i] = cmd[off + i]
            off += k
            ln = chip.command(_CMD_IN_DATA_EXCHANGE, 1 + k, _EXCHANGE_TIMEOUT_MS)
            if ln < 1:
                raise NfcError("empty InDataExchange answer")
            st = r[0]
            e = st & 0x3F
            if e:
                if e == _ERR_TIMEOUT or e == _ERR_CARD_GONE or e == _ERR_TARGET_RELEASED:
                    raise NfcTimeout("card did not answer")
                from validator.drivers.pn532 import status_text

                raise NfcError("PN532 status 0x%02x: %s" % (e, status_text(e)))
            if more:
                if ln != 1:
                    raise NfcError("data in a chained-send acknowledgement")
                continue
            k = ln - 1
            if got + k > len(resp):
                raise NfcError("card answer too long")
            for i in range(k):
                resp[got + i] = r[1 + i]
            got += k
            if not (st & _MI):
                break
        self.exchanges += 1
        if got < 2:
            raise NfcError("answer without status word")
        return got

    def release(self):
        """InRelease all targets: DESELECT sent, card left in HALT (UM0701 §7.3.11). Best
        effort: a line fault here is not the tap's (it has ended) and must not end the
        card loop; a card left unreleased is seen again by the wait for removal."""
        p = self.chip.params
        p[0] = 0x00
        try:
            self.chip.command(_CMD_IN_RELEASE, 1, _POLL_TIMEOUT_MS)
        except NfcError:  # NfcTimeout included
            pass
