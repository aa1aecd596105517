# emu.pn532: a byte-level emulated NXP PN532 with an RF field of emulated cards.
# SPDX-License-Identifier: MIT
#
# Common subset (CPython and MicroPython). The core eats host bytes (feed) and queues
# the chip's frames (pop_frame / take); Hsu and SPI framing wrap it exactly as the chip's
# host interfaces do (NXP UM0701-02 §6.2.3 HSU, §6.2.5 SPI). Frames, ACK/NACK and the
# syntax-error frame follow UM0701 §6.2.1; commands §7. Cards follow emu.field.
#
# Modelled: HSU sleep until the 0x55 wake-up preamble; LCS/DCS checks (a bad frame is
# ignored, as the chip does: the host sees no ACK); host ACK aborts, host NACK repeats the
# last answer; InListPassiveTarget for 106 kbps type A (with RATS/ATS for SAK bit 0x20) and
# type B, up to two targets; InDataExchange with MI chaining both ways; InDeselect,
# InRelease; RFConfiguration items 1, 2, 5; cards placed/removed, a card removed after N
# exchanges, tears. Fault injection for driver tests: garbage before the next frame, a
# corrupted answer (bad DCS), a lost ACK, a mute chip.
from emu.field import CardGone

_CHUNK = 240  # answer bytes per InDataExchange before MI chaining (chip buffer ~262)

CMD_GET_FIRMWARE_VERSION = 0x02
CMD_SAM_CONFIGURATION = 0x14
CMD_RF_CONFIGURATION = 0x32
CMD_IN_DATA_EXCHANGE = 0x40
CMD_IN_DESELECT = 0x44
CMD_IN_LIST_PASSIVE_TARGET = 0x4A
CMD_IN_RELEASE = 0x52
CMD_DIAGNOSE = 0x00

ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
SYNTAX_ERROR = b"\x00\x00\xff\x01\xff\x7f\x81\x00"

ST_OK = 0x00
ST_TIMEOUT = 0x01
ST_WRONG_CONTEXT = 0x27
ST_RELEASED = 0x29
ST_MI = 0x40


def frame(data):
    """Wrap TFI+PD bytes into a normal or extended information frame."""
    n = len(data)
    dcs = (-sum(data)) & 0xFF
    if n <= 255:
        head = bytes((0, 0, 0xFF, n, (-n) & 0xFF))
    else:
        hi, lo = n >> 8, n & 0xFF
        head = bytes((0, 0, 0xFF, 0xFF, 0xFF, hi, lo, (-(hi + lo)) & 0xFF))
    return head + bytes(data) + bytes((dcs, 0))


class Field:
    """The RF field: cards present, removal schedules."""

    def __init__(self):
        self.cards = []
        self._left = {}  # id(card) -> exchanges still answered before it leaves

    def place(self, card):
        if card not in self.cards:
            self.cards.append(card)

    def remove(self, card):
        if card in self.cards:
            self.cards.remove(card)
            card.deselect()
        self._left.pop(id(card), None)

    def clear(self):
        for c in list(self.cards):
            self.remove(c)

    def remove_after(self, card, n):
        """The card answers n more exchanges, then leaves before answering the next."""
        self._left[id(card)] = n

    def exchange(self, card, apdu):
        """One APDU to a card; None when the card is gone (or leaves now)."""
        if card not in self.cards:
            return None
        k = id(card)
        if k in self._left:
            if self._left[k] <= 0:
                self.remove(card)
                return None
            self._left[k] -= 1
        try:
            return card.apdu(bytes(apdu))
        except CardGone:
            self.remove(card)
            return None


class Pn532Core:
    def __init__(self, field, hsu=True):
        self.field = field
        self.hsu = hsu
        self.asleep = hsu
        self._in = bytearray()
        self.frames = []  # frames queued towards the host (bytes each)
        self._last = None  # last answer frame, for a host NACK
        self.targets = []  # activated targets: [card, ...]; Tg = index + 1
        self._tx_chain = bytearray()
        self._rx_chain = b""
        self._rx_chain_tg = 0
        self.rf_on = True
        self.passive_retries = 0xFF
        self.samconfigured = False
        self.pending = None  # deferred InListPassiveTarget (infinite retries, empty field)
        # counters
        self.commands = 0
        self.bad_frames = 0
        self.exchanges = 0
        self.nacks = 0
        self.aborts = 0
        # fault injection (each applies once)
        self.fault_garbage = b""
        self.fault_corrupt = False
        self.fault_no_ack = False
        self.fault_mute = False

    # -- host bytes in ------------------------------------------------------------
    def feed(self, data):
        if self.asleep:
            i = bytes(data).find(b"\x55")
            if i < 0:
                return  # a sleeping chip loses these bytes
            self.asleep = False
            data = data[i + 1:]
        self._in += data
        while self._parse_one():
            pass

    def _drop(self, k):
        self._in = self._in[k:]  # (MicroPython bytearrays have no slice deletion)

    def _parse_one(self):
        buf = self._in
        i = buf.find(b"\x00\xff")
        if i < 0:
            if len(buf) > 1:
                self._drop(len(buf) - 1)
            return False
        if i:
            self._drop(i)
            buf = self._in
        if len(buf) < 4:
            return False
        ln, lcs = buf[2], buf[3]
        if ln == 0x00 and lcs == 0xFF:  # host ACK: abort the current command
            self._drop(5)
            self.aborts += 1
            self.pending = None
            self.frames = []
            return True
        if ln == 0xFF and lcs == 0x00:  # host NACK: repeat the last answer
            self._drop(5)
            self.nacks += 1
            if self._last is not None:
                self.frames.append(self._last)
            return True
        if ln == 0xFF and lcs == 0xFF:
            if len(buf) < 7:
                return False
            hi, lo, c = buf[4], buf[5], buf[6]
            if (hi + lo + c) & 0xFF:
                self.bad_frames += 1
                self._drop(2)
                return True
            ln = (hi << 8) | lo
            start = 7
        else:
            if (ln + lcs) & 0xFF:
                self.bad_frames += 1
                self._drop(2)
                return True
            start = 4
        if len(buf) < start + ln + 1:
            return False
        body = bytes(buf[start: start + ln])
        dcs = buf[start + ln]
        self._drop(start + ln + 1)
        if ln == 0 or (sum(body) + dcs) & 0xFF:
            self.bad_frames += 1  # the chip ignores it; the host will time out
            return True
        self._command(body)
        return True

    # -- answers ------------------------------------------------------------------
    def _queue(self, data):
        f = frame(data)
        if self.fault_corrupt:
            self.fault_corrupt = False
            self._last = f
            f = f[:-2] + bytes(((f[-2] ^ 0x5A), 0))
        else:
            self._last = f
        if self.fault_mute:
            self.fault_mute = False
            return
        if self.fault_garbage:
            self.frames.append(self.fault_garbage)
            self.fault_garbage = b""
        self.frames.append(f)

    def _answer(self, cmd, payload=b""):
        self._queue(bytes((0xD5, (cmd + 1) & 0xFF)) + bytes(payload))

    def _syntax_error(self):
        self.frames.append(SYNTAX_ERROR)

    def _command(self, body):
        if body[0] != 0xD4 or len(body) < 2:
            self._syntax_error()
            return
        cmd = body[1]
        p = body[2:]
        self.commands += 1
        if self.fault_no_ack:
            self.fault_no_ack = False
        else:
            self.frames.append(ACK)
        h = self._handlers.get(cmd)
        if h is None:
            self._syntax_error()
            return
        h(self, cmd, p)

    def _get_firmware_version(self, cmd, p):
        self._answer(cmd, b"\x32\x01\x06\x07")  # PN532 v1.6, ISO A/B + ISO 18092

    def _sam_configuration(self, cmd, p):
        if len(p) < 1 or p[0] not in (1, 2, 3, 4):
            self._syntax_error()
            return
        self.samconfigured = True
        self._answer(cmd)

    def _rf_configuration(self, cmd, p):
        if not p:
            self._syntax_error()
            return
        item = p[0]
        if item == 0x01 and len(p) >= 2:
            self.rf_on = bool(p[1] & 1)
            if not self.rf_on:
                for c in self.targets:
                    c.deselect()
                self.targets = []
        elif item == 0x05 and len(p) >= 4:
            self.passive_retries = p[3]
        self._answer(cmd)

    def _in_list_passive_target(self, cmd, p):
        if len(p) < 2 or p[0] not in (1, 2) or p[1] not in (0x00, 0x03):
            self._syntax_error()
            return
        max_tg, brty = p[0], p[1]
        kind = "A" if brty == 0x00 else "B"
        found = [c for c in self.field.cards if c.kind == kind] if self.rf_on else []
        if not found and self.passive_retries == 0xFF:
            self.pending = (cmd, bytes(p))  # waits for a card, like the chip
            return
        self._list(cmd, found[:max_tg])

    def _list(self, cmd, cards):
        for c in self.targets:
            c.deselect()
        self.targets = list(cards)
        out = bytearray((len(cards),))
        for i, c in enumerate(cards):
            out.append(i + 1)
            if c.kind == "A":
                out += bytes(c.atqa) + bytes((c.sak, len(c.uid))) + bytes(c.uid)
                if c.sak & 0x20:
                    out += bytes(c.ats)
            else:
                out += bytes(c.atqb) + bytes((len(c.attrib_resp),)) + bytes(c.attrib_resp)
        self._answer(cmd, out)

    def service(self):
        """Re-check a deferred InListPassiveTarget (infinite retries) against the field."""
        if self.pending is not None:
            cmd, p = self.pending
            kind = "A" if p[1] == 0x00 else "B"
            found = [c for c in self.field.cards if c.kind == kind] if self.rf_on else []
            if found:
                self.pending = None
                self._list(cmd, found[: p[0]])

    def _target(self, tg):
        n = tg & 0x0F
        if 1 <= n <= len(self.targets):
            return self.targets[n - 1]
        return None

    def _in_data_exchange(self, cmd, p):
        if not p:
            self._syntax_error()
            return
        tg = p[0]
        card = self._target(tg)
        if card is None:
            self._answer(cmd, bytes((ST_WRONG_CONTEXT,)))
            return
        data = p[1:]
        if self._rx_chain and self._rx_chain_tg == tg & 0x0F and not data:
            self._send_part(cmd)  # host fetches the next part of a chained answer
            return
        self._rx_chain = b""
        self._tx_chain += data
        if tg & 0x40:  # MI from the host: more command data follows
            self._answer(cmd, bytes((ST_OK,)))
            return
        apdu = bytes(self._tx_chain)
        self._tx_chain = bytearray()
        self.exchanges += 1
        r = self.field.exchange(card, apdu)
        if r is None:
            self.targets = [c for c in self.targets if c is not card]
            self._answer(cmd, bytes((ST_TIMEOUT,)))
            return
        self._rx_chain = bytes(r)
        self._rx_chain_tg = tg & 0x0F
        self._send_part(cmd)

    def _send_part(self, cmd):
        part, rest = self._rx_chain[:_CHUNK], self._rx_chain[_CHUNK:]
        self._rx_chain = rest
        st = ST_MI if rest else ST_OK
        self._answer(cmd, bytes((st,)) + part)

    def _in_release(self, cmd, p, deselect_only=False):
        if not p:
            self._syntax_error()
            return
        tg = p[0]
        if tg == 0:
            cards = list(self.targets)
        else:
            c = self._target(tg)
            cards = [c] if c is not None else []
        if tg and not cards:
            self._answer(cmd, bytes((ST_WRONG_CONTEXT,)))
            return
        for c in cards:
            c.deselect()
            if not deselect_only:
                self.targets = [t for t in self.targets if t is not c]
        self._answer(cmd, bytes((ST_OK,)))

    def _in_deselect(self, cmd, p):
        self._in_release(cmd, p, True)

    def _diagnose(self, cmd, p):
        if p and p[0] == 0x00:  # communication line test: echo
            self._answer(cmd, p)
        else:
            self._syntax_error()

    _handlers = {
        CMD_GET_FIRMWARE_VERSION: _get_firmware_version,
        CMD_SAM_CONFIGURATION: _sam_configuration,
        CMD_RF_CONFIGURATION: _rf_configuration,
        CMD_IN_LIST_PASSIVE_TARGET: _in_list_passive_target,
        CMD_IN_DATA_EXCHANGE: _in_data_exchange,
        CMD_IN_DESELECT: _in_deselect,
        CMD_IN_RELEASE: _in_release,
        CMD_DIAGNOSE: _diagnose,
    }

    # -- chip bytes out (HSU) --------------------------------------------------------
    def take(self):
        """Everything queued for the host as one byte string (HSU is a plain stream)."""
        self.service()
        if not self.frames:
            return b""
        out = b"".join(self.frames)
        self.frames = []
        return out


def _rev(b):
    r = 0
    for i in range(8):
        if b & (1 << i):
            r |= 1 << (7 - i)
    return r


_REV = bytes(_rev(i) for i in range(256))


class Pn532SpiSlave:
    """The PN532 SPI interface (UM0701 §6.2.5) as seen on the wire of an MSB-first bus.

    Each CS-low window starts with an op byte: 01 data write, 02 status read (answer bit 0
    = a frame is ready), 03 data read (the head frame, then zeros; the frame is consumed
    when CS rises). Bytes are bit-reversed because the chip shifts LSB first.
    """

    def __init__(self, core):
        self.core = core
        self.selected = False
        self._op = None
        self._pos = 0

    def cs(self, level):
        if level == 0 and not self.selected:
            self.selected = True
            self._op = None
            self._pos = 0
            if self.core.asleep:
                self.core.asleep = False  # NSS low wakes the chip
        elif level and self.selected:
            self.selected = False
            if self._op == 0x03 and self._pos > 0 and self.core.frames:
                self.core.frames.pop(0)
            self._op = None

    def exchange(self, tx):
        if not self.selected:
            return bytes(len(tx))  # MISO floats (reads as 0) while deselected
        core = self.core
        out = bytearray(len(tx))
        data_in = bytearray()
        for i, b in enumerate(tx):
            v = _REV[b]
            if self._op is None:
                self._op = v
                continue
            if self._op == 0x01:
                data_in.append(v)
            elif self._op == 0x02:
                core.service()
                out[i] = _REV[1 if core.frames else 0]
            elif self._op == 0x03:
                f = core.frames[0] if core.frames else b""
                out[i] = _REV[f[self._pos] if self._pos < len(f) else 0]
                self._pos += 1
        if data_in:
            core.feed(data_in)
        return bytes(out)
