# stubs: stand-in T-Union card and MOT PSAM for the transaction tests (until / besides the
# emulators in emu/). Strict: unknown APDUs answer 6D00.
# SPDX-License-Identifier: MIT
#
# Same APDUs, same state machine (INIT -> 80DC cache -> 8054 commits cache + ATC + log;
# 805A answers for the last debit; tears injectable before/after the commit), but the
# "MAC" is a keyed CRC-32, so the protocol logic is exercised, not the DES crypto.
import binascii

from emu.field import CardGone


# ---- stand-in card / PSAM (until emu.tunion_card / emu.psam / emu.t0 land) -----------------
def _crc(*parts):
    c = 0
    for p in parts:
        c = binascii.crc32(bytes(p), c)
    return c & 0xFFFFFFFF


def _mac(key, *parts):
    return _crc(key, *parts).to_bytes(4, "big")


def _card_key(usage, ef15):
    # stand-in diversification: the PSAM derives the same from the 8070/801A factors
    return _mac(usage, ef15[12:20], ef15[0:8]) + _mac(usage, ef15[0:8], ef15[12:20])


def _u32(b):
    return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]


def make_ef15(city=b"\x29\x00", serial=b"\x03\x10\x47\x70\x04\x00\x67\x44\x28\x02",
              start=b"\x20\x20\x01\x01", end=b"\x20\x30\x12\x31", card_type=b"\x00\x00"):
    issuer = b"\x02\x00" + city + b"\xff\xff\xff\xff"
    return issuer + b"\x02\x01" + serial + start + end + card_type


def make_fci(ef15, aid=b"\xa0\x00\x00\x06\x32\x01\x01\x05"):
    a5 = b"\x9f\x08\x01\x02\x9f\x0c" + bytes([len(ef15)]) + ef15
    inner = b"\x84" + bytes([len(aid)]) + aid + b"\xa5" + bytes([len(a5)]) + a5
    return b"\x6f" + bytes([len(inner)]) + inner


class StubCard:
    """APDU-level stand-in of a T-Union CPU card (strict: unknown APDU -> 6D00)."""

    def __init__(self, ef15=None, balance=1000, atc=5, capp=True, interconnect=True,
                 fci_ef15=True, uid=b"\x04\x11\x22\x33"):
        self.ef15 = bytes(ef15 or make_ef15())
        self.ef17 = bytearray(60)
        self.ef17[8:10] = b"\x00\x01" if interconnect else b"\x00\x00"
        self.balance = balance
        self.atc = atc
        self.capp = capp
        self.fci_ef15 = fci_ef15
        self.uid = uid
        self.sak = 0x20
        self.kind = "A"
        self.blocked = False
        self.selected = False
        self.init = None
        self.cache = None
        self.last = None  # (atc_after, type, mac2, tac)
        self.log1e = []
        self.tear = None  # "before" (debit lost) / "after" (response lost) on next 8054
        self.challenge = None
        self.kp = _card_key(b"DPK", self.ef15)
        self.kt = _card_key(b"DTK", self.ef15)
        self.kb = _card_key(b"BLK", self.ef15)

    def deselect(self):
        self.selected = False
        self.init = None
        self.cache = None

    def apdu(self, c):
        c = bytes(c)
        ins = c[1]
        if c[0] == 0x00 and ins == 0xA4:
            aid = c[5:5 + c[4]]
            if aid != b"\xa0\x00\x00\x06\x32\x01\x01\x05":
                return b"\x6a\x82"
            self.selected = True
            self.init = None
            fci = make_fci(self.ef15 if self.fci_ef15 else b"")
            return fci + (b"\x62\x83" if self.blocked else b"\x90\x00")
        if not self.selected:
            return b"\x69\x85"
        if c[0] == 0x00 and ins == 0xB0:
            sfi = c[2] & 0x1F
            data = self.ef15 if sfi == 0x15 else bytes(self.ef17) if sfi == 0x17 else None
            if data is None:
                return b"\x6a\x82"
            return data[c[3]:c[3] + (c[4] or 256)] + b"\x90\x00"
        if c[0] == 0x00 and ins == 0x84:
            self.challenge = b"\x11\x22\x33\x44"
            return self.challenge + b"\x90\x00"
        if c[0] == 0x84 and ins == 0x1E:
            if self.challenge is None:
                return b"\x69\x85"
            want = _mac(self.kb, self.challenge + bytes(4), c[:5] + b"\x80\x00\x00")
            self.challenge = None
            if c[5:9] != want:
                return b"\x69\x88"
            self.blocked = True
            return b"\x90\x00"
        if self.blocked:
            return b"\x93\x03"
        if c[0] == 0x80 and ins == 0x50:
            if c[2] == 0x03 and not self.capp:
                return b"\x6a\x86"
            amount = _u32(c[6:10])
            if amount > self.balance:
                return b"\x94\x01"
            rand = bytes([0x1A, 0x2B, 0x3C, (self.atc * 7) & 0xFF])
            self.init = (c[2] == 0x03, amount, c[10:16], rand)
            self.cache = None
            return (self.balance.to_bytes(4, "big") + self.atc.to_bytes(2, "big") + bytes(3)
                    + b"\x01\x00" + rand + b"\x90\x00")
        if c[0] == 0x80 and ins == 0xDC:
            if self.init is None or not self.init[0]:
                return b"\x69\x85"
            self.cache = c[5:5 + c[4]]
            return b"\x90\x00"
        if c[0] == 0x80 and ins == 0x54:
            if self.init is None:
                return b"\x69\x85"
            capp, amount, term, rand = self.init
            ttsn, dt, mac1 = c[5:9], c[9:16], c[16:20]
            ttype = b"\x09" if capp else b"\x06"
            ses = _mac(self.kp, rand, self.atc.to_bytes(2, "big"), ttsn[2:4]) * 2
            if mac1 != _mac(ses, amount.to_bytes(4, "big"), ttype, term, dt):
                self.init = None
                return b"\x93\x02"
            if self.tear == "before":
                self.tear = None
                raise CardGone()
            self.balance -= amount
            self.atc += 1
            mac2 = _mac(ses, amount.to_bytes(4, "big"))
            tac = _mac(self.kt, amount.to_bytes(4, "big"), ttype, term, ttsn, dt)
            self.last = (self.atc, ttype[0], mac2, tac)
            if self.cache is not None:
                self.log1e.append(self.cache)
            self.init = None
            if self.tear == "after":
                self.tear = None
                raise CardGone()
            return tac + mac2 + b"\x90\x00"
        if c[0] == 0x80 and ins == 0x5A:
            atc = (c[5] << 8) | c[6]
            if self.last is None or self.last[0] != atc or self.last[1] != c[3]:
                return b"\x94\x06"
            return self.last[2] + self.last[3] + b"\x90\x00"
        return b"\x6d\x00"


class StubPsam:
    """APDU-level stand-in of a MOT PSAM (terminal number, DF 8011, key index, 8070/8072,
    801A/80FA)."""

    def __init__(self, terminal=b"\x00\x00\x00\x12\x34\x56", key_index=1, ttsn=0x10):
        self.terminal = terminal
        self.key_index = key_index
        self.ttsn = ttsn
        self.df = False
        self.ses = None
        self.amount = None
        self.kb = None
        self.log = []

    def apdu(self, c):
        c = bytes(c)
        self.log.append(c[:2])
        ins = c[1]
        if ins == 0xB0:
            sfi = c[2] & 0x1F
            if sfi == 0x16:
                if c[4] not in (0, 6):
                    return b"\x6c\x06"  # wrong Le (ISO 7816-4 §5.6)
                return self.terminal + b"\x90\x00"
            if sfi == 0x17 and self.df:
                return bytes([self.key_index]) + bytes(24)[:c[4] - 1] + b"\x90\x00"
            return b"\x6a\x82"
        if ins == 0xA4:
            self.df = c[5:7] == b"\x80\x11"
            return b"\x90\x00" if self.df else b"\x6a\x82"
        if not self.df:
            return b"\x69\x85"
        if ins == 0x70:
            d = c[5:5 + c[4]]
            rand, atc, amount, ttype, dt = d[0:4], d[4:6], d[6:10], d[10:11], d[11:18]
            ef15 = bytearray(30)
            ef15[12:20] = d[20:28]
            ef15[0:8] = d[28:36]
            kp = _card_key(b"DPK", ef15)
            self.ttsn += 1
            ttsn = self.ttsn.to_bytes(4, "big")
            self.ses = _mac(kp, rand, atc, ttsn[2:4]) * 2
            self.amount = amount
            mac1 = _mac(self.ses, amount, ttype, self.terminal, dt)
            return ttsn + mac1 + b"\x90\x00"
        if ins == 0x72:
            if self.ses is None:
                return b"\x69\x85"
            ok = c[5:9] == _mac(self.ses, self.amount)
            self.ses = None
            return b"\x90\x00" if ok else b"\x93\x02"
        if ins == 0x1A:
            ef15 = bytearray(30)
            ef15[12:20] = c[5:13]
            ef15[0:8] = c[13:21]
            self.kb = _card_key(b"BLK", ef15)
            return b"\x90\x00"
        if ins == 0xFA:
            if self.kb is None:
                return b"\x69\x85"
            d = c[5:5 + c[4]]
            return _mac(self.kb, d[:8], d[8:]) + b"\x90\x00"
        return b"\x6d\x00"


_OUTGOING = (0xB0, 0xB2, 0xC0, 0x84, 0xCA)


class StubT0:
    """T=0 byte engine around an APDU handler (stand-in for emu.t0.T0Card):
    reset() -> ATR; feed(bytes) -> bytes. Knobs: nulls (0x60 before each procedure
    byte), one_by_one (~INS per data byte), wrong_le (answer 6Cxx to a wrong Le),
    atr (override)."""

    ATR = bytes.fromhex("3b690000249401030100010001")  # TS T0 TB1 TC1 + 9 historical

    def __init__(self, handler, atr=None, nulls=0, one_by_one=False, wrong_le=True):
        self.h = handler
        self.atr = atr or self.ATR
        self.nulls = nulls
        self.one = one_by_one
        self.wrong_le = wrong_le
        self.buf = b""
        self.need = 5
        self.hdr = None
        self.pending = b""
        self.pps = False

    def reset(self):
        self.buf = b""
        self.hdr = None
        self.pending = b""
        return self.atr

    def _proc(self, ins):
        return b"\x60" * self.nulls + bytes([ins ^ 0xFF if self.one else ins])

    def feed(self, data):
        out = b""
        for b in data:
            out += self._byte(b)
        return out

    def _byte(self, b):
        self.buf += bytes([b])
        if self.hdr is None:
            if self.buf[:1] == b"\xff":  # PPS request: echo it
                if len(self.buf) == 4:
                    r, self.buf = self.buf, b""
                    return r
                return b""
            if len(self.buf) < 5:
                return b""
            self.hdr, self.buf = self.buf, b""
            ins, p3 = self.hdr[1], self.hdr[4]
            if ins in _OUTGOING or p3 == 0:
                return self._outgoing()
            return self._proc(ins)
        # incoming data bytes
        ins, p3 = self.hdr[1], self.hdr[4]
        if len(self.buf) < p3:
            return self._proc(ins) if self.one else b""
        apdu, self.hdr, self.buf = self.hdr + self.buf, None, b""
        r = self.h.apdu(apdu)
        data, sw = r[:-2], r[-2:]
        if data:
            self.pending = data
            return b"\x60" * self.nulls + b"\x61" + bytes([len(data)])
        return b"\x60" * self.nulls + sw

    def _outgoing(self):
        hdr, self.hdr = self.hdr, None
        ins, p3 = hdr[1], hdr[4] or 256
        if ins == 0xC0:
            data, sw = self.pending, b"\x90\x00"
            if not data:
                return b"\x6f\x00"
        else:
            r = self.h.apdu(hdr)
            data, sw = r[:-2], r[-2:]
        if self.wrong_le and data and len(data) != p3 and hdr[4] != 0:
            if ins == 0xC0:
                self.pending = data
            return b"\x6c" + bytes([len(data)])
        if ins == 0xC0:
            self.pending = b""
        if not data:
            return sw
        if self.one:
            out = b""
            for x in data[:p3]:
                out += self._proc(ins) + bytes([x])
            return out + sw
        return self._proc(ins) + data[:p3] + sw
