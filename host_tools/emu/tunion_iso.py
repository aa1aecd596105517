# emu.tunion_iso: the T-Union card's ISO 7816-4 commands (SELECT, READ BINARY/RECORD,
# GET CHALLENGE) and its FCI / PPSE answers.
# SPDX-License-Identifier: MIT
#
# Common subset; split from emu.tunion_card so each module compiles inside the 128k
# MicroPython heap. Handlers: handler(card, cmd, p1, p2, data, le, challenge) -> response.
from emu.tunion_ep import (
    AID_EP,
    BLOCK_PERM,
    LABEL_EP,
    PPSE,
    SW_CONDITIONS,
    SW_INCOMPATIBLE_FILE,
    SW_NO_CURRENT_EF,
    SW_NOT_FOUND,
    SW_OFFSET,
    SW_P1P2,
    SW_PERM_LOCKED,
    SW_RECORD_NOT_FOUND,
    SW_SELECT_BLOCKED,
    SW_WRONG_LENGTH,
    _out,
    _sw,
    _tlv,
)


# ---- ISO commands ----------------------------------------------------------------------
def _fci(self):
    a5 = _tlv(b"\x50", self.label) + _tlv(b"\x87", b"\x02") + _tlv(b"\x9f\x08", b"\x02")
    if self.fci_ef15:
        a5 += _tlv(b"\x9f\x0c", self.ef15)  # §1: 9F0C = EF15
    return _tlv(b"\x6f", _tlv(b"\x84", self.aid) + _tlv(b"\xa5", a5))

def _ppse(self):
    entry = _tlv(b"\x4f", AID_EP) + _tlv(b"\x50", LABEL_EP) + _tlv(b"\x87", b"\x02")
    bf0c = _tlv(b"\xbf\x0c", _tlv(b"\x61", entry))  # §1 / S17 directory entry
    return _tlv(b"\x6f", _tlv(b"\x84", PPSE) + _tlv(b"\xa5", bf0c))

def select(self, cmd, p1, p2, data, le, ch):
    if p1 != 0x04 or p2 != 0x00:
        return _sw(SW_P1P2)
    if not data:
        return _sw(SW_WRONG_LENGTH)
    if data == PPSE and self.aid == AID_EP:  # a local-issuer card has no MOT_T_EP entry
        self._selected = False
        return _out(_ppse(self), le)
    if data != self.aid:
        return _sw(SW_NOT_FOUND)
    if self.blocked == BLOCK_PERM:
        self._selected = False
        return _sw(SW_PERM_LOCKED)
    self._selected = True
    r = _out(_fci(self), le)
    if self.blocked and r[-2:] == b"\x90\x00":
        return r[:-2] + _sw(SW_SELECT_BLOCKED)
    return r

def _binary_file(self, sfi):
    if sfi == 0x15:
        return self.ef15
    if sfi == 0x16:
        return self.ef16
    if sfi == 0x17:
        return self.ef17
    return None

def _record_file(self, sfi):
    if sfi == 0x18:
        return self.ef18
    if sfi == 0x1E:
        return self.ef1e
    if sfi == 0x1A and self.capp:
        return self.ef1a
    return None

def read_binary(self, cmd, p1, p2, data, le, ch):
    if not self._selected:
        return _sw(SW_CONDITIONS)
    if data or le is None:
        return _sw(SW_WRONG_LENGTH)
    if not (p1 & 0x80):
        return _sw(SW_NO_CURRENT_EF)  # offset form needs a current EF: none kept
    if p1 & 0x60:
        return _sw(SW_P1P2)
    sfi = p1 & 0x1F
    f = _binary_file(self, sfi)
    if f is None:
        other = _record_file(self, sfi) is not None
        return _sw(SW_INCOMPATIBLE_FILE if other else SW_NOT_FOUND)
    if p2 >= len(f):
        return _sw(SW_OFFSET)
    rest = len(f) - p2
    if le == 256:
        return f[p2:] + b"\x90\x00"
    if le > rest:
        return bytes((0x6C, rest))
    return f[p2 : p2 + le] + b"\x90\x00"

def read_record(self, cmd, p1, p2, data, le, ch):
    if not self._selected:
        return _sw(SW_CONDITIONS)
    if data or le is None:
        return _sw(SW_WRONG_LENGTH)
    if (p2 & 7) != 4 or p1 == 0:
        return _sw(SW_P1P2)  # only "record P1" addressing by SFI (§2)
    sfi = p2 >> 3
    f = _record_file(self, sfi)
    if f is None:
        other = _binary_file(self, sfi) is not None
        return _sw(SW_INCOMPATIBLE_FILE if other else SW_NOT_FOUND)
    if sfi == 0x1A:
        rec = f.get(p1)
    else:
        rec = f[p1 - 1] if p1 <= len(f) else None
    if rec is None:
        return _sw(SW_RECORD_NOT_FOUND)
    if le != 256 and le != len(rec):
        return bytes((0x6C, len(rec)))  # §2: resend with Le = xx
    return rec + b"\x90\x00"

def get_challenge(self, cmd, p1, p2, data, le, ch):
    if p1 or p2:
        return _sw(SW_P1P2)
    if data or le not in (4, 8):
        return _sw(SW_WRONG_LENGTH)
    c = self._rng.next4()
    if le == 8:
        c += self._rng.next4()
    self._challenge = c[:4]  # secure messaging IV = challenge(4) || 00.. (§5.1)
    return c + b"\x90\x00"


ISO_COMMANDS = {
    0xA4: select,
    0xB0: read_binary,
    0xB2: read_record,
    0x84: get_challenge,
}
