# validator.card.select: SELECT by AID / PPSE and FCI parsing (card-protocol.md §1).
# SPDX-License-Identifier: MIT
#
# SELECT `00 A4 04 00 Lc AID 00` (ISO 7816-4 §11.2.2). The T-Union FCI carries EF15 (30
# bytes) in tag 9F0C, so a flat-fare tap needs no READ BINARY (§1, S1/S9). PPSE
# `2PAY.SYS.DDF01` is the fallback: its directory entry labelled MOT_T_EP names the AID.
from micropython import const

from validator.errors import R_APP_BLOCKED, R_OK, R_UNSUPPORTED_CARD
from validator.link import apdu

AID_TUNION = b"\xa0\x00\x00\x06\x32\x01\x01\x05"  # MOT_T_EP (§1)
# The city's own CPU card (MOHURD "住建部" profile, §0, §8 [C2]): a dual-mode validator
# selects it after the T-Union AID answered 6A82.
AID_LOCAL = b"\xa0\x00\x00\x00\x03\x86\x98\x07\x01"
PPSE = b"2PAY.SYS.DDF01"
LABEL_EP = b"MOT_T_EP"
EF15_LEN = const(30)
_TAG_AID = const(0x84)
_TAG_DF_NAME = const(0x4F)
_TAG_LABEL = const(0x50)
_TAG_EF15 = const(0x9F0C)
_TAG_APP_VER = const(0x9F08)

# §1: 6283/6284/9303 = invalidated or locked application; 6A81 after APPLICATION BLOCK
# on some COS; 6A82 = application not present.
STATUS = (
    (0x9000, R_OK),
    (0x6283, R_APP_BLOCKED),
    (0x6284, R_APP_BLOCKED),
    (0x9303, R_APP_BLOCKED),
    (0x6A81, R_APP_BLOCKED),
    (0x6A82, R_UNSUPPORTED_CARD),
)


def build(buf, aid, n):
    """SELECT by name aid[:n], first occurrence, FCI requested; returns length."""
    apdu.header(buf, 0x00, 0xA4, 0x04, 0x00)
    buf[4] = n
    for i in range(n):
        buf[5 + i] = aid[i]
    buf[5 + n] = 0x00
    return 6 + n


def tlv_find(buf, off, end, tag):
    """Offset of the value of the first `tag` in BER-TLV buf[off:end], descending into
    constructed tags; the length is then at tlv_len(buf, off_of_value). -1 if absent.

    Returns the value offset with the length packed above bit 16: (len << 16) | off."""
    while off + 2 <= end:
        t = buf[off]
        off += 1
        if t == 0x00 or t == 0xFF:  # padding between TLVs (ISO 7816-4 §5.2.2.1)
            continue
        constructed = t & 0x20
        if t & 0x1F == 0x1F:  # two-byte tag
            if off >= end:
                return -1
            t = (t << 8) | buf[off]
            off += 1
        if off >= end:
            return -1
        ln = buf[off]
        off += 1
        if ln == 0x81:
            ln = buf[off]
            off += 1
        elif ln > 0x80:
            return -1  # longer forms never occur in a ≤256-byte response
        if off + ln > end:
            return -1
        if t == tag:
            return (ln << 16) | off
        if not constructed:
            off += ln
    return -1


def fci_ef15(resp, n):
    """Offset of EF15 (tag 9F0C, 30 bytes) in the FCI resp[:n-2]; -1 if absent/short."""
    r = tlv_find(resp, 0, n - 2, _TAG_EF15)
    if r < 0 or (r >> 16) < EF15_LEN:
        return -1
    return r & 0xFFFF


def ppse_aid(resp, n):
    """Packed (len << 16 | off) of the MOT_T_EP AID in a PPSE FCI, -1 if none (§1, S17).

    Directory entries are `61 { 4F aid 50 label 87 prio }`; we take the entry whose
    label is MOT_T_EP, else the first AID starting with the T-Union EP AID."""
    end = n - 2
    off = 0
    first = -1
    while True:
        e = tlv_find(resp, off, end, 0x61)
        if e < 0:
            return first
        eoff = e & 0xFFFF
        eend = eoff + (e >> 16)
        a = tlv_find(resp, eoff, eend, _TAG_DF_NAME)
        if a >= 0:
            lab = tlv_find(resp, eoff, eend, _TAG_LABEL)
            if lab >= 0 and (lab >> 16) == len(LABEL_EP) and apdu.equal(
                resp, lab & 0xFFFF, LABEL_EP, 0, len(LABEL_EP)
            ):
                return a
            if first < 0 and (a >> 16) >= 8 and apdu.equal(resp, a & 0xFFFF, AID_TUNION, 0, 8):
                first = a
        off = eend
