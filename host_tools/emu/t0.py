# emu.t0: ISO 7816-3 T=0 byte engine in front of an APDU-level card (the PSAM emulator).
# SPDX-License-Identifier: MIT
#
# Common subset. The firmware's PSAM link (validator.link.iso7816) talks to this object as
# it would to the UART of a PSAM slot: reset() -> ATR, feed(bytes) -> bytes sent back.
# Protocol (ISO 7816-3 §10): 5-byte header CLA INS P1 P2 P3; the card answers procedure
# bytes: 0x60 NULL (wait), INS (send/receive all remaining data), ~INS (one byte), or SW1
# SW2. Case 3/4: INS, then the Lc data bytes, then SW (61xx when response data waits,
# fetched with GET RESPONSE 00 C0 00 00 xx). Case 2: INS + Le data + SW, or 6Cxx when P3
# is not the length available (resend with P3 = xx).
#
# Knobs for negative tests: nulls (NULL bytes before each procedure byte / SW),
# one_by_one (~INS per data byte), fault = None | "mute" (never answers, ATR included)
# | "garbage" (answers seeded noise).
from emu.psam import command_case

# TS, T0 (TA1 TB1 TC1, 8 historical bytes), TA1 = 13 (Fi 372, Di 4: 38 400 bit/s at
# 3.5712 MHz, which the official MOT PSAM runs at -- card-protocol.md §4, S2), TB1, TC1,
# "MOTPSM01" [INF]. The validator negotiates it with PPS (ISO 7816-3 §9).
ATR = bytes.fromhex("3b781300004d4f5450534d3031")
SW_GET_RESPONSE_NONE = 0x6985  # [INF] GET RESPONSE with nothing waiting

_H_IDLE = 0
_H_DATA = 1
_H_PPS = 2


def _sw(sw):
    return bytes((sw >> 8, sw & 0xFF))


def _valid_ins(ins):
    # ISO 7816-3 §10.3.2: INS values 6x and 9x are invalid (they would read as SW1), and
    # so are odd ones in T=0 (ISO 7816-4 2005 allows odd INS, T=0 PSAMs do not use them).
    return (ins & 0xF0) not in (0x60, 0x90) and not (ins & 1)


class T0Card:
    def __init__(self, card, atr=ATR, nulls=0, one_by_one=False, fault=None, seed=7):
        self.card = card  # anything with apdu(cmd) -> resp (and optionally reset())
        self.atr = bytes(atr)
        self.nulls = nulls
        self.one_by_one = one_by_one
        self.fault = fault
        self._seed = seed or 7
        self.bytes_in = 0
        self.bytes_out = 0
        self.reset_count = 0
        self._state = _H_IDLE
        self._buf = b""
        self._hdr = b""
        self._pending = b""
        self._fresh = True

    def reset(self):
        self.reset_count += 1
        self._state = _H_IDLE
        self._buf = b""
        self._hdr = b""
        self._pending = b""
        self._fresh = True  # PPS allowed only straight after the ATR
        if hasattr(self.card, "reset"):
            self.card.reset()
        if self.fault == "mute":
            return b""
        if self.fault == "garbage":
            return self._noise()
        return self.atr

    def _noise(self):
        out = b""
        x = self._seed
        for _ in range(1 + (x % 7)):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            out += bytes(((x >> 16) & 0xFF,))
        self._seed = x
        return out

    def feed(self, data):
        self.bytes_in += len(data)
        out = b""
        for b in bytes(data):
            out += self._byte(b)
        if self.fault == "mute":
            return b""
        if self.fault == "garbage" and data:
            return self._noise()
        self.bytes_out += len(out)
        return out

    # ---- byte engine -----------------------------------------------------------------------
    def _proc(self, ins):
        return b"\x60" * self.nulls + bytes((ins ^ 0xFF if self.one_by_one else ins,))

    def _status(self, sw_bytes):
        return b"\x60" * self.nulls + sw_bytes

    def _byte(self, b):
        if self._state == _H_PPS:
            return self._pps_byte(b)
        if self._state == _H_DATA:
            self._buf += bytes((b,))
            if len(self._buf) < self._hdr[4]:
                return self._proc(self._hdr[1]) if self.one_by_one else b""
            return self._incoming_done()
        if not self._buf and b == 0xFF and self._fresh:
            self._state = _H_PPS
            self._buf = b"\xff"
            return b""
        self._buf += bytes((b,))
        if len(self._buf) < 5:
            return b""
        self._fresh = False
        self._hdr, self._buf = self._buf, b""
        return self._header()

    def _pps_byte(self, b):
        # PPSS FF, PPS0, optional PPS1..3 (PPS0 bits 5..7), PCK: XOR of all bytes is 0.
        self._buf += bytes((b,))
        if len(self._buf) < 2:
            return b""
        pps0 = self._buf[1]
        need = 3 + ((pps0 >> 4) & 1) + ((pps0 >> 5) & 1) + ((pps0 >> 6) & 1)
        if len(self._buf) < need:
            return b""
        req, self._buf = self._buf, b""
        self._state = _H_IDLE
        self._fresh = False
        x = 0
        for v in req:
            x ^= v
        if x != 0 or (pps0 & 0x0F) != 0:
            return b""  # bad PPS or not T=0: ISO 7816-3 §9.3, the card stays mute
        return req  # accepted: echo

    def _header(self):
        cla, ins, p3 = self._hdr[0], self._hdr[1], self._hdr[4]
        if not _valid_ins(ins):
            return self._status(_sw(0x6D00))
        if cla == 0x00 and ins == 0xC0:
            return self._get_response(p3)
        self._pending = b""  # any other command drops a waiting response
        if cla not in (0x00, 0x80):
            return self._status(_sw(0x6E00))
        case = command_case(cla, ins)
        if not case:
            return self._status(_sw(0x6D00))
        if case == 2:
            return self._outgoing()
        if p3 == 0:  # case 1 style: no data, execute now
            return self._incoming_done()
        self._state = _H_DATA
        return self._proc(ins)

    def _incoming_done(self):
        apdu = self._hdr[:4] if self._hdr[4] == 0 else self._hdr + self._buf
        self._state = _H_IDLE
        self._buf = b""
        r = self.card.apdu(apdu)
        data, sw = r[:-2], r[-2:]
        if data and sw == b"\x90\x00":
            self._pending = data
            return self._status(b"\x61" + bytes((len(data) & 0xFF,)))
        return self._status(sw)

    def _send_data(self, ins, data, sw):
        if self.one_by_one:
            out = b""
            for x in data:
                out += self._proc(ins) + bytes((x,))
            return out + self._status(sw)
        return self._proc(ins) + data + self._status(sw)

    def _outgoing(self):
        hdr = self._hdr
        r = self.card.apdu(hdr)
        data, sw = r[:-2], r[-2:]
        if not data:
            return self._status(sw)
        return self._send_data(hdr[1], data, sw)

    def _get_response(self, p3):
        if not self._pending:
            return self._status(_sw(SW_GET_RESPONSE_NONE))
        le = p3 or 256
        if le != len(self._pending):
            return self._status(b"\x6c" + bytes((len(self._pending) & 0xFF,)))
        data, self._pending = self._pending, b""
        return self._send_data(0xC0, data, b"\x90\x00")


class T0Error(Exception):
    pass


def transceive(dev, apdu, log=None, max_bytes=600):
    """Terminal side of T=0 (host tools and tests): send one APDU, follow procedure bytes,
    61xx and 6Cxx; return response data + SW. log(cmd, resp) sees every APDU exchanged.
    Raises T0Error when the card is mute or speaks nonsense."""
    apdu = bytes(apdu)
    hdr = apdu[:5] if len(apdu) >= 5 else apdu + b"\x00"
    body = apdu[5:] if len(apdu) > 5 else b""
    if len(body) > hdr[4]:
        body = body[: hdr[4]]  # case 4 Le is not sent in T=0
    out = _exchange(dev, hdr, body, max_bytes)
    if log:
        log(apdu, out)
    sw1 = out[-2]
    if sw1 == 0x61:
        return transceive(dev, b"\x00\xc0\x00\x00" + out[-1:], log, max_bytes)
    if sw1 == 0x6C and not body:
        return transceive(dev, hdr[:4] + out[-1:], log, max_bytes)
    return out


def _exchange(dev, hdr, body, max_bytes):
    rx = bytes(dev.feed(hdr))
    pos = 0
    data = b""
    sent = 0
    ins = hdr[1]
    budget = max_bytes
    while budget > 0:
        budget -= 1
        if pos >= len(rx):
            raise T0Error("card mute")
        p = rx[pos]
        pos += 1
        if p == 0x60:
            continue
        if p == ins or p == (ins ^ 0xFF):
            one = p != ins
            if sent < len(body):
                chunk = body[sent : sent + 1] if one else body[sent:]
                sent += len(chunk)
                rx = rx[pos:] + bytes(dev.feed(chunk))
                pos = 0
                continue
            want = 256 if hdr[4] == 0 else hdr[4]
            take = 1 if one else want - len(data)
            got = rx[pos : pos + take]
            data += got
            pos += len(got)
            if len(got) < take:
                raise T0Error("short data")
            continue
        if (p & 0xF0) in (0x60, 0x90):
            if pos >= len(rx):
                raise T0Error("SW1 without SW2")
            return data + bytes((p, rx[pos]))
        raise T0Error("bad procedure byte %02X" % p)
    raise T0Error("no status")
