# emu.echo_card: a minimal ISO 14443-4 responder for reader and app tests.
# SPDX-License-Identifier: MIT
#
# Answers SELECT by AID with an empty FCI and 9000 when the AID is in `aids` (6A82
# otherwise), echoes any other APDU followed by 9000, or answers `answer_len` counting
# bytes (to exercise MI chaining). Follows the emu.field contract.


class EchoCard:
    kind = "A"
    atqa = b"\x04\x00"  # ATQA 0004 (4-byte UID) as sent on air, LSB first
    sak = 0x20
    ats = b"\x05\x78\x80\x70\x02"
    TUNION_AID = b"\xa0\x00\x00\x06\x32\x01\x01\x05"

    def __init__(self, uid=b"\x01\x02\x03\x04", answer_len=None, aids=None):
        self.uid = uid
        self.answer_len = answer_len
        self.aids = (self.TUNION_AID,) if aids is None else aids
        self.apdus = []
        self.deselects = 0

    def apdu(self, cmd):
        self.apdus.append(bytes(cmd))
        if self.answer_len is not None:
            return bytes(i & 0xFF for i in range(self.answer_len)) + b"\x90\x00"
        if len(cmd) >= 5 and cmd[1] == 0xA4 and cmd[2] == 0x04:
            aid = bytes(cmd[5: 5 + cmd[4]])
            return b"\x6f\x00\x90\x00" if aid in self.aids else b"\x6a\x82"
        return bytes(cmd) + b"\x90\x00"

    def deselect(self):
        self.deselects += 1


class TypeBEchoCard(EchoCard):
    kind = "B"
    atqb = b"\x50\xaa\xbb\xcc\xdd\x00\x00\x00\x00\x00\x71\x71"
    attrib_resp = b"\x00"
