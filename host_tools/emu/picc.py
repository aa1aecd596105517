# emu.picc: the card side of ISO/IEC 14443-3 activation and the ISO/IEC 14443-4 block
# protocol, in front of any emu.field card.
# SPDX-License-Identifier: MIT
#
# Common subset. The emulated PN532 talks to cards through this layer in two ways, as the
# chip does (UM0701 §7.3.5 InListPassiveTarget, §7.3.8 InDataExchange, §7.3.9
# InCommunicateThru): raw frames from the host (`frame(data)`, InCommunicateThru: RATS,
# ATTRIB, I/R/S blocks built by a host-side ISO-DEP stack such as nfcpy's) and APDUs that
# the chip's own ISO-DEP initiator wraps in blocks (`pcd_apdu(apdu)`, InDataExchange).
#
# States (ISO 14443-3 §6.2 type A, §7.2 type B): IDLE after power-up (field on, card
# placed), ACTIVE after anticollision/SELECT (A) or REQB/WUPB (B: READY), PROTOCOL after
# RATS (A, ISO 14443-4 §5.6) or ATTRIB (B, 14443-3 §7.10), HALT after HLTA/HLTB or
# S(DESELECT) (14443-4 §8). A halted card answers only wake-up commands (WUPA, WUPB); the
# PN532's own polling sends REQA/REQB (nfcpy's driver checks for SENS_REQ 0x26 in the CIU
# FIFO), so a released card stays silent until the field is reset or the card re-enters.
# Block rules: ISO 14443-4 §7.5.3 (PICC block number starts at 1, rules D, E, 11-13).
# Frames arrive without CRC (the chip's CIU adds and checks it); a frame the card does not
# accept gets no answer (None), which the chip reports as a timeout (status 0x01).

IDLE = 0
ACTIVE = 1  # type A: selected (ISO 14443-3); type B: READY after REQB/WUPB
PROTOCOL = 2  # ISO 14443-4 activated (RATS / ATTRIB done)
HALT = 3

FSD_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)  # ISO 14443-4 §5.2.3 FSDI/FSCI -> bytes
# A card with `wtx` = n (phones: the wallet app answers slower than a chip) sends n S(WTX)
# requests (ISO 14443-4 §7.3: PCB F2, INF = WTXM) before each answer; WTXM 1 = one more FWT.
_WTXM = 1


class Picc:
    def __init__(self, field, card):
        self.field = field
        self.card = card
        self.state = IDLE
        self.cid = 0
        self.fsd = 256  # frame size the reader accepts (from RATS FSDI / ATTRIB param 2)
        self.block = 1  # PICC block number (ISO 14443-4 §7.5.3.2 rule D)
        self._rx = bytearray()  # chained command being received
        self._tx = b""  # rest of a chained answer
        self._last = None  # last block sent, for R(NAK)/R(ACK) retransmission (rule 11)
        self._wtx = 0  # S(WTX) requests still to send before the answer
        self.frames = 0
        self.wtx_requests = 0

    # -- state changes ------------------------------------------------------------------
    def power_off(self):
        """Field off or card removed: back to IDLE, volatile card state dropped."""
        self.state = IDLE
        self._reset_protocol()

    def _reset_protocol(self):
        self._wtx = 0
        self.cid = 0
        self.fsd = 256
        self.block = 1
        self._rx = bytearray()
        self._tx = b""
        self._last = None

    def poll(self, wake=False):
        """REQA/REQB (wake=False) or WUPA/WUPB (wake=True): True if the card answers."""
        if self.state == IDLE or (wake and self.state == HALT):
            self.state = ACTIVE
            self._reset_protocol()
            return True
        return False

    def fsc(self):
        """Frame size the card accepts: ATS T0 FSCI (A) or ATQB ProtInfo byte 2 (B)."""
        c = self.card
        if c.kind == "A":
            ats = c.ats
            i = ats[1] & 0x0F if len(ats) > 1 else 2
        else:
            i = c.atqb[10] >> 4
        return FSD_TABLE[i if i < 9 else 8]

    # -- activation, as the chip does it (InListPassiveTarget) ---------------------------
    def rats(self, param):
        """RATS (ISO 14443-4 §5.1): param = FSDI << 4 | CID; returns the ATS."""
        if self.card.kind != "A" or self.state != ACTIVE or param & 0x0F == 0x0F:
            return None
        self._reset_protocol()
        self.fsd = FSD_TABLE[min(param >> 4, 8)]
        self.cid = param & 0x0F
        self.state = PROTOCOL
        return bytes(self.card.ats)

    def attrib(self, data):
        """ATTRIB (ISO 14443-3 §7.10): 1D PUPI(4) Param1..4 [higher layer]."""
        c = self.card
        if (c.kind != "B" or self.state != ACTIVE or len(data) < 9
                or bytes(data[1:5]) != bytes(c.atqb[1:5])):
            return None
        self._reset_protocol()
        self.fsd = FSD_TABLE[min(data[6] & 0x0F, 8)]
        self.cid = data[8] & 0x0F
        self.state = PROTOCOL
        r = bytearray(c.attrib_resp or b"\x00")
        r[0] = (r[0] & 0xF0) | self.cid  # MBLI | CID (ISO 14443-3 §7.11)
        return bytes(r)

    # -- raw frames (InCommunicateThru) --------------------------------------------------
    def frame(self, data):
        """One frame from the reader (CRC stripped); the card's answer or None (silence)."""
        self.frames += 1
        if not data or self.card not in self.field.cards:
            return None
        c = self.card
        b0 = data[0]
        if c.kind == "A":
            if self.state == ACTIVE:
                if b0 == 0xE0 and len(data) == 2:
                    return self.rats(data[1])
                if b0 == 0x50 and len(data) == 2 and data[1] == 0x00:  # HLTA
                    self.state = HALT
                    return None
                self.state = IDLE  # any other frame: back to IDLE (14443-3 §6.2.4)
                return None
            if self.state != PROTOCOL:
                return None
        else:
            if b0 == 0x05 and len(data) == 3:  # REQB / WUPB (14443-3 §7.7)
                afi = data[1]
                if afi and afi >> 4 != (getattr(c, "afi", 0) >> 4):
                    return None
                if self.state == PROTOCOL:
                    return None
                if self.poll(wake=bool(data[2] & 0x08)) or self.state == ACTIVE:
                    return bytes(c.atqb)
                return None
            if b0 == 0x1D:
                return self.attrib(data)
            if b0 == 0x50 and len(data) == 5:  # HLTB
                if bytes(data[1:5]) == bytes(c.atqb[1:5]) and self.state in (ACTIVE, PROTOCOL):
                    self.state = HALT
                    return b"\x00"
                return None
            if self.state != PROTOCOL:
                return None
        return self._block(data)

    def _block(self, data):
        pcb = data[0]
        i = 1
        if pcb & 0x08:  # CID follows (ISO 14443-4 §7.1.1.2)
            if len(data) < 2 or data[1] & 0x0F != self.cid:
                return None
            i = 2
        elif self.cid:
            return None  # the card was given a CID; a block without one is not for it
        if pcb & 0xE2 == 0x02:  # I-block
            if pcb & 0x04:
                i += 1  # NAD: skipped (not used by these cards)
            if pcb & 0x01 != self.block:
                self.block ^= 1  # rule E
            self._tx = b""
            self._rx += data[i:]
            if pcb & 0x10:  # chaining from the reader: acknowledge (§7.5.2)
                return self._send(0xA2, b"")
            apdu = bytes(self._rx)
            self._rx = bytearray()
            r = self.field.exchange(self.card, apdu)
            if r is None:
                self.power_off()
                return None
            self._tx = bytes(r)
            self._wtx = getattr(self.card, "wtx", 0)
            if self._wtx:  # the card needs more time: S(WTX) requests first (§7.3)
                return self._wtx_request()
            return self._next_i()
        if pcb & 0xE6 == 0xA2:  # R-block
            nak = pcb & 0x10
            if pcb & 0x01 == self.block:
                return self._last  # rule 11: retransmit the last block
            if nak:
                return self._send(0xA2, b"", keep=False)  # rule 12: R(ACK)
            if self._tx:  # rule 13: continue chaining
                self.block ^= 1
                return self._next_i()
            return None
        if pcb & 0xF7 == 0xC2:  # S(DESELECT) (§8); S-blocks carry no block number
            r = self._send(0xC2, b"", keep=False, numbered=False)
            self.state = HALT
            self.card.deselect()
            return r
        if pcb & 0xF7 == 0xF2:  # S(WTX) response: the reader grants the extension
            if not self._wtx or len(data) != i + 1 or data[i] & 0x3F != _WTXM:
                return None
            self._wtx -= 1
            if self._wtx:
                return self._wtx_request()
            return self._next_i()
        return None

    def _wtx_request(self):
        self.wtx_requests += 1
        return self._send(0xF2, bytes((_WTXM,)), numbered=False)

    def _next_i(self):
        room = self.fsd - 3 - (1 if self.cid else 0)  # PCB, CID, CRC (2)
        part, rest = self._tx[:room], self._tx[room:]
        self._tx = rest
        return self._send(0x12 if rest else 0x02, part)

    def _send(self, pcb, inf, keep=True, numbered=True):
        out = bytearray((pcb | (self.block if numbered else 0) | (0x08 if self.cid else 0),))
        if self.cid:
            out.append(self.cid)
        out += inf
        out = bytes(out)
        if keep:
            self._last = out
        return out

    # -- the chip's own ISO-DEP initiator (InDataExchange) ---------------------------------
    def pcd_apdu(self, apdu, pcd):
        """Send one APDU as the PN532's ISO-DEP initiator does; the answer or None.

        `pcd` is a one-item list holding the initiator's block number (rule C: starts at
        0, toggled on each I-block answer). I-blocks are cut to the card's FSC; chained
        answers are fetched with R(ACK) (§7.5.2)."""
        if self.state != PROTOCOL:
            return None
        cid = self.cid
        hdr = 1 + (1 if cid else 0)
        room = self.fsc() - hdr - 2
        off = 0
        while True:
            part = apdu[off: off + room]
            off += len(part)
            more = off < len(apdu)
            blk = bytearray((0x02 | (0x10 if more else 0) | pcd[0] | (0x08 if cid else 0),))
            if cid:
                blk.append(cid)
            r = self._pcd_frame(bytes(blk) + part)
            if r is None:
                return None
            if more:
                if r[0] & 0xF6 != 0xA2:
                    return None
                pcd[0] ^= 1
                continue
            break
        out = bytearray()
        while True:
            if r[0] & 0xE2 != 0x02:
                return None
            pcd[0] ^= 1
            out += r[hdr:]
            if not r[0] & 0x10:
                return bytes(out)
            ack = bytearray((0xA2 | pcd[0] | (0x08 if cid else 0),))
            if cid:
                ack.append(cid)
            r = self._pcd_frame(bytes(ack))
            if r is None:
                return None

    def _pcd_frame(self, blk):
        """One block from the chip's initiator; S(WTX) requests are granted (echoed) as
        the PN532 does, until the card sends its real answer."""
        r = self.frame(blk)
        while r is not None and r[0] & 0xF7 == 0xF2:
            r = self.frame(r)
        return r
