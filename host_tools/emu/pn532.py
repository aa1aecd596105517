# emu.pn532: a byte-level emulated NXP PN532 with an RF field of emulated cards.
# SPDX-License-Identifier: MIT
#
# Common subset (CPython and MicroPython). The core eats host bytes (feed) and queues
# the chip's frames (pop_frame / take); Hsu and SPI framing wrap it exactly as the chip's
# host interfaces do (NXP UM0701-02 §6.2.3 HSU, §6.2.5 SPI). Frames, ACK/NACK and the
# syntax-error frame follow UM0701 §6.2.1; commands §7. Cards follow emu.field.
#
# Modelled: power-down and HSU/SPI wake-up (§7.2.11: WAKE_LOST_BYTES); the HSU line speed
# and SetSerialBaudRate (§7.2.8); LCS/DCS checks (a bad frame is ignored, as the chip does:
# the host sees no ACK); host ACK aborts, host NACK repeats the last answer; Diagnose,
# GetFirmwareVersion, GetGeneralStatus, Read/WriteRegister (the CIU registers host
# drivers touch), SetParameters (automatic RATS), SAMConfiguration modes, PowerDown;
# RFConfiguration (field off drops every card's power; initiator commands switch it back
# on); InListPassiveTarget for 106 kbps type A (SENS_RES MSB first; RATS/ATS for SAK bit
# 0x20 when automatic RATS is on) and type B (AFI required), up to two targets, REQA/REQB
# semantics (a halted card stays silent); InAutoPoll; InDataExchange through the chip's own
# ISO-DEP initiator with MI chaining both ways; InCommunicateThru (raw frames to the
# card's emu.picc layer: RATS, ATTRIB, WUPB, I/R/S blocks); InSelect, InDeselect,
# InRelease; a new command cancels a waiting one. Cards placed/removed, a card removed
# after N exchanges, tears. Fault injection for driver tests: garbage before the next
# frame, a corrupted answer (bad DCS), a lost ACK, a mute chip.
# MIFARE Classic targets (emu.mifare, `mifare` set): InDataExchange runs the MIFARE command
# set as the chip does (§7.3.8 "MIFARE commands"): 60/61 blk key(6) uid(4) is the reader
# side of the Crypto1 three-pass authentication done by the chip itself (emu.crypto1; nested
# when a sector is open), then 30 READ, A0 WRITE (both phases and their ACKs), C0/C1/C2
# DECREMENT/INCREMENT/RESTORE (the data phase has no answer: the chip's timeout means done)
# and B0 TRANSFER go encrypted with encrypted parity. Status: 00 done; 14 authentication
# failed or [INF] the card NAKed (the chip's code for both here); 02 a CRC error in the
# card's answer; 01 no answer (card gone or torn).
from emu import crypto1
from emu.field import CardGone
from emu.picc import ACTIVE as PICC_ACTIVE
from emu.picc import HALT as PICC_HALT
from emu.picc import IDLE as PICC_IDLE
from emu.picc import PROTOCOL as PICC_PROTOCOL
from emu.picc import Picc

_CHUNK = 240  # answer bytes per InDataExchange before MI chaining (chip buffer ~262)

CMD_GET_FIRMWARE_VERSION = 0x02
CMD_SAM_CONFIGURATION = 0x14
CMD_RF_CONFIGURATION = 0x32
CMD_IN_DATA_EXCHANGE = 0x40
CMD_IN_DESELECT = 0x44
CMD_IN_LIST_PASSIVE_TARGET = 0x4A
CMD_IN_RELEASE = 0x52
CMD_DIAGNOSE = 0x00
CMD_GET_GENERAL_STATUS = 0x04
CMD_READ_REGISTER = 0x06
CMD_WRITE_REGISTER = 0x08
CMD_SET_SERIAL_BAUD_RATE = 0x10
CMD_SET_PARAMETERS = 0x12
CMD_POWER_DOWN = 0x16
CMD_IN_COMMUNICATE_THRU = 0x42
CMD_IN_SELECT = 0x54
CMD_IN_AUTO_POLL = 0x60
# InAutoPoll types (§7.3.13 Table): generic 106 kbps A, MIFARE, ISO 14443-4 A; 106 kbps B,
# ISO 14443-4 B
_AUTO_POLL_TYPES = {0x00: "A", 0x10: "A", 0x20: "A", 0x03: "B", 0x23: "B"}

ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
SYNTAX_ERROR = b"\x00\x00\xff\x01\xff\x7f\x81\x00"

ST_OK = 0x00
ST_TIMEOUT = 0x01
ST_WRONG_CONTEXT = 0x27
ST_RELEASED = 0x29
ST_MI = 0x40
ST_CRC = 0x02
ST_MIFARE_AUTH = 0x14


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
    """The RF field: cards present, removal schedules, each card's ISO 14443 state."""

    def __init__(self):
        self.cards = []
        self._left = {}  # id(card) -> exchanges still answered before it leaves
        self._picc = {}  # id(card) -> emu.picc.Picc (activation state, block numbers)

    def place(self, card):
        if card not in self.cards:
            self.cards.append(card)
            self.picc(card).power_off()  # enters the field unpowered-fresh: IDLE

    def picc(self, card):
        k = id(card)
        p = self._picc.get(k)
        if p is None or p.card is not card:
            p = self._picc[k] = Picc(self, card)
        return p

    def remove(self, card):
        if card in self.cards:
            self.cards.remove(card)
            card.deselect()
        self.picc(card).power_off()
        self._left.pop(id(card), None)

    def clear(self):
        for c in list(self.cards):
            self.remove(c)

    def power_off(self):
        """The reader's field went off: every card loses power (back to IDLE)."""
        for c in self.cards:
            c.deselect()
            self.picc(c).power_off()

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


# Registers the host drivers read or write (UM0701 §7.2.4/§7.2.5; CIU = the PN512 core,
# PN532 datasheet §8.6 register map), with the values a chip shows after SAMConfiguration.
# Any other address reads 00 and keeps what is written (the chip's XRAM/SFR space).
REG_CIU_TX_CONTROL = 0x6304  # bits 1..0 Tx2RFEn/Tx1RFEn: the field is on (RFConfiguration)
REG_CIU_FIFO_DATA = 0x6339  # after an empty type A poll: SENS_REQ 0x26 still in the FIFO
REG_CIU_FIFO_LEVEL = 0x633A
_REG_RESET = {
    0x6301: 0x3B,  # CIU_Mode
    0x6302: 0x80,  # CIU_TxMode (TxCRCEn)
    0x6303: 0x80,  # CIU_RxMode (RxCRCEn)
    0x6305: 0x40,  # CIU_TxAuto (Force100ASK)
    0x630D: 0x00,  # CIU_ManualRCV
    0x6331: 0x20,  # CIU_Command (idle)
    0x633D: 0x00,  # CIU_BitFraming
}
SET_PARAMS_RESET = 0x14  # §7.2.9: fAutomaticATR_RES (bit 2) and fAutomaticRATS (bit 4) set
FLAG_AUTO_RATS = 0x10
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)  # §7.2.8
WAKE_HSU = 0x10  # PowerDown WakeUpEnable bits (§7.2.11): 4 HSU, 5 SPI, 7 I2C
WAKE_SPI = 0x20
# HSU wake-up (§7.2.11, §6.2.3): any byte's start bit on HSU_RX wakes a sleeping chip, but
# the oscillator needs time to start, so the byte that woke it and the next ones are lost.
# A host therefore sends a preamble before its frame: 55 55 00 00 00 .. (Adafruit, the
# firmware) or ten 00 (nfcpy) both get through; a bare frame 00 00 FF .. loses its start
# code and gets no answer.
WAKE_LOST_BYTES = 3
_TYPE_A = 0x00
_TYPE_B = 0x03


class Pn532Core:
    def __init__(self, field, hsu=True):
        self.field = field
        self.hsu = hsu
        self.asleep = True  # after power-up the chip is in low-Vbat/power-down (§7.2.11)
        self.wake_sources = WAKE_HSU if hsu else WAKE_SPI
        self._wake_lost = 0
        self.baud = 115200  # HSU line speed (§6.2.3); changed by SetSerialBaudRate
        self._baud_next = None  # applied when the host ACKs the answer (§7.2.8)
        self._in = bytearray()
        self.frames = []  # frames queued towards the host (bytes each)
        self._last = None  # last answer frame, for a host NACK
        self.targets = []  # activated targets: [card, ...]; Tg = index + 1
        self.current = 0  # Tg index of the InSelect'ed / last listed target
        self._pcd = {}  # id(card) -> [block number] of the chip's own ISO-DEP initiator
        self._tx_chain = bytearray()
        self._rx_chain = b""
        self._rx_chain_tg = 0
        self._m1 = {}  # id(card) -> the chip's Crypto1 state for a MIFARE target (or None)
        self._nr = 0x6B8B4567  # the chip's reader-nonce generator (deterministic here)
        self.m1_auths = 0
        self.rf_on = False  # RF field: off at power-up, switched on by initiator commands
        self.passive_retries = 0xFF
        self.samconfigured = False
        self.sam_mode = 0
        self.flags = SET_PARAMS_RESET
        self.regs = dict(_REG_RESET)
        self.last_error = 0
        self.pending = None  # deferred InListPassiveTarget/InAutoPoll (infinite retries)
        # counters
        self.commands = 0
        self.bad_frames = 0
        self.exchanges = 0
        self.nacks = 0
        self.aborts = 0
        self.lost_bytes = 0  # bytes a sleeping chip or a wrong line speed lost
        # fault injection (each applies once)
        self.fault_garbage = b""
        self.fault_corrupt = False
        self.fault_no_ack = False
        self.fault_mute = False

    # -- host bytes in ------------------------------------------------------------
    def feed(self, data, baud=None):
        """Host bytes on HSU_RX (or MOSI data). `baud`: the speed the host sends at, when
        the caller knows it (a pty's termios); at another speed than the chip's, every
        byte is a framing error and is lost."""
        if baud is not None and self.hsu and baud != self.baud:
            if baud == self._baud_next:
                # the host already runs at the new speed, so its ACK went out: on a pty a
                # change of speed can overtake bytes this end has not read yet (and a host
                # that reopens its port flushes what it wrote)
                self.baud = baud
                self._baud_next = None
            else:
                self.lost_bytes += len(data)
                return
        if self.asleep:
            if not self.hsu or not self.wake_sources & WAKE_HSU or not data:
                self.lost_bytes += len(data)
                return
            self.asleep = False
            self._wake_lost = WAKE_LOST_BYTES
        if self._wake_lost:
            k = min(self._wake_lost, len(data))
            self._wake_lost -= k
            self.lost_bytes += k
            data = data[k:]
        self._in += data
        while self._parse_one():
            pass

    def wake_spi(self):
        """NSS low (SPI): wakes the chip when PowerDown enabled SPI wake-up (§7.2.11)."""
        if self.asleep and self.wake_sources & WAKE_SPI:
            self.asleep = False

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
        if ln == 0x00 and lcs == 0xFF:  # host ACK: abort the current command (§6.2.1.3)
            self._drop(5)
            self.aborts += 1
            self.pending = None
            self.frames = []
            if self._baud_next is not None:  # SetSerialBaudRate takes effect (§7.2.8)
                self.baud = self._baud_next
                self._baud_next = None
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

    def _status(self, cmd, st, payload=b""):
        self.last_error = st
        self._answer(cmd, bytes((st,)) + bytes(payload))

    def _syntax_error(self):
        self.frames.append(SYNTAX_ERROR)

    def _command(self, body):
        if body[0] != 0xD4 or len(body) < 2:
            self._syntax_error()
            return
        cmd = body[1]
        p = body[2:]
        self.commands += 1
        self.pending = None  # a new command ends a waiting one: it never answers later
        self._baud_next = None
        if self.fault_no_ack:
            self.fault_no_ack = False
        else:
            self.frames.append(ACK)
        h = self._handlers.get(cmd)
        if h is None:
            self._syntax_error()
            return
        h(self, cmd, p)

    # -- miscellaneous commands (§7.2) ---------------------------------------------
    def _diagnose(self, cmd, p):
        # §7.2.1: NumTst 00 communication line test (echo, up to 262 bytes), 01 ROM and
        # 02 RAM tests (status 00 = OK); the antenna/polling tests are not modelled.
        if p and p[0] == 0x00:
            self._answer(cmd, p)
        elif len(p) == 1 and p[0] in (0x01, 0x02):
            self._answer(cmd, b"\x00")
        else:
            self._syntax_error()

    def _get_firmware_version(self, cmd, p):
        self._answer(cmd, b"\x32\x01\x06\x07")  # PN532 v1.6, ISO A/B + ISO 18092 (§7.2.2)

    def _get_general_status(self, cmd, p):
        # §7.2.3: Err, Field (external field, target mode: 0), NbTg, per target Tg BrRx
        # BrTx Type (106 kbps = 00, type 00 = ISO 14443-3 A/B), SAM status
        out = bytearray((self.last_error, 0x00, len(self.targets)))
        for i in range(len(self.targets)):
            out += bytes((i + 1, 0x00, 0x00, 0x00))
        out.append(0x00)
        self._answer(cmd, out)

    def _read_register(self, cmd, p):
        # §7.2.4: ADR (2 bytes, MSB first) .. -> Val ..
        if not p or len(p) & 1:
            self._syntax_error()
            return
        out = bytearray()
        for i in range(0, len(p), 2):
            out.append(self._reg(p[i] << 8 | p[i + 1]))
        self._answer(cmd, out)

    def _reg(self, a):
        if a == REG_CIU_TX_CONTROL:
            return 0x80 | (0x03 if self.rf_on else 0x00)
        if a == REG_CIU_FIFO_LEVEL:
            return 1 if self.regs.get(REG_CIU_FIFO_DATA) is not None else 0
        if a == REG_CIU_FIFO_DATA:
            v = self.regs.pop(REG_CIU_FIFO_DATA, None)
            return 0 if v is None else v
        return self.regs.get(a, 0)

    def _write_register(self, cmd, p):
        # §7.2.5: (ADR(2) Val) ..
        if not p or len(p) % 3:
            self._syntax_error()
            return
        for i in range(0, len(p), 3):
            a = p[i] << 8 | p[i + 1]
            if a == REG_CIU_TX_CONTROL:
                self._set_field(bool(p[i + 2] & 0x03))
            else:
                self.regs[a] = p[i + 2]
        self._answer(cmd)

    def _set_serial_baud_rate(self, cmd, p):
        # §7.2.8: answered at the old speed; the new one applies once the host has sent
        # its ACK of the answer.
        if len(p) != 1 or p[0] >= len(BAUD_RATES):
            self._syntax_error()
            return
        self._answer(cmd)
        self._baud_next = BAUD_RATES[p[0]]

    def _set_parameters(self, cmd, p):
        # §7.2.9: bit 0 fNADUsed, 1 fDIDUsed, 2 fAutomaticATR_RES, 4 fAutomaticRATS,
        # 5 fISO14443-4_PICC, 6 fRemovePrePostAmble; bits 3 and 7 RFU (must be 0)
        if len(p) != 1 or p[0] & 0x88:
            self._syntax_error()
            return
        self.flags = p[0]
        self._answer(cmd)

    def _sam_configuration(self, cmd, p):
        # §7.2.10: Mode 1 normal, 2 virtual card (Timeout needed), 3 wired, 4 dual card
        if len(p) < 1 or p[0] not in (1, 2, 3, 4) or (p[0] == 2 and len(p) < 2):
            self._syntax_error()
            return
        self.samconfigured = True
        self.sam_mode = p[0]
        self._answer(cmd)

    def _power_down(self, cmd, p):
        # §7.2.11: WakeUpEnable [GenerateIRQ]; answers status 00 and then sleeps. The RF
        # field goes off with the chip, so the cards lose power and the targets are gone.
        if len(p) not in (1, 2):
            self._syntax_error()
            return
        self._status(cmd, 0x00)
        self.wake_sources = p[0]
        self._set_field(False)
        self.asleep = True

    # -- RF field (§7.3.1 RFConfiguration) ------------------------------------------
    def _set_field(self, on):
        if self.rf_on and not on:
            self.field.power_off()
            self.targets = []
            self._pcd = {}
            self._m1 = {}
        self.rf_on = on

    def _rf_configuration(self, cmd, p):
        if not p:
            self._syntax_error()
            return
        item = p[0]
        need = {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}
        if item not in need or len(p) != 1 + need[item]:
            self._syntax_error()
            return
        if item == 0x01:  # bit 0 RF on, bit 1 AutoRFCA
            self._set_field(bool(p[1] & 1))
        elif item == 0x05:  # MxRtyATR, MxRtyPSL, MxRtyPassiveActivation
            self.passive_retries = p[3]
        self._answer(cmd)

    # -- initiator commands (§7.3) ----------------------------------------------------
    def _candidates(self, kind, afi=0):
        # the chip switches its field on for a poll (the PN532 does so for every initiator
        # command that needs it, whatever an earlier RFConfiguration item 1 said)
        self._set_field(True)
        out = []
        if self.sam_mode == 3:
            # wired card mode (§7.2.10): initiator commands reach the SAM, not the field;
            # no SAM is wired to this chip, so nothing answers
            return out
        for c in self.field.cards:
            if c.kind != kind:
                continue
            if kind == "B" and afi and afi >> 4 != getattr(c, "afi", 0) >> 4:
                continue
            if self.field.picc(c).poll():  # REQA / REQB: halted cards stay silent
                out.append(c)
        return out

    def _in_list_passive_target(self, cmd, p):
        # §7.3.5: MaxTg (1..2) BrTy [InitiatorData]; type B (BrTy 3) needs the AFI byte
        if len(p) < 2 or p[0] not in (1, 2) or p[1] not in (_TYPE_A, _TYPE_B):
            self._syntax_error()
            return
        if p[1] == _TYPE_B and len(p) < 3:
            self._syntax_error()
            return
        uid = bytes(p[2:]) if p[1] == _TYPE_A else b""
        if uid and len(uid) not in (4, 7, 10):
            self._syntax_error()
            return
        self._poll_list(cmd, bytes(p))

    def _poll_list(self, cmd, p):
        max_tg, brty = p[0], p[1]
        kind = "A" if brty == _TYPE_A else "B"
        afi = p[2] if kind == "B" else 0
        for c in self.targets:
            c.deselect()
        self.targets = []
        found = self._candidates(kind, afi)
        if kind == "A" and len(p) > 2:  # a UID given: only that card
            want = bytes(p[2:])
            found = [c for c in found if bytes(c.uid) == want]
        if not found:
            if kind == "A":
                self.regs[REG_CIU_FIFO_DATA] = 0x26  # no SENS_RES: SENS_REQ left in the FIFO
            if self.passive_retries == 0xFF:
                self.pending = (cmd, p)  # waits for a card, like the chip
                return
        self._answer(cmd, self._list(found[:max_tg]))

    def _list(self, cards):
        self.targets = list(cards)
        self.current = 0
        self._pcd = {}
        self._m1 = {}
        out = bytearray((len(cards),))
        for i, c in enumerate(cards):
            out.append(i + 1)
            out += self._target_data(c, i + 1)
        return bytes(out)

    def _target_data(self, c, tg):
        picc = self.field.picc(c)
        if c.kind == "A":
            # SENS_RES as the chip reports it: MSB first (`00 44` for a 7-byte UID; the
            # card sends `44 00` on air, LSB first), SEL_RES, NFCIDLength, NFCID1 (§7.3.5)
            a = bytes(c.atqa)
            out = bytearray((a[1], a[0], c.sak, len(c.uid))) + bytes(c.uid)
            if c.sak & 0x20 and self.flags & FLAG_AUTO_RATS:
                out += picc.rats(0x50)  # FSD 64, CID 0 (the chip's own RATS)
            self._pcd[id(c)] = [0]
            return out
        # ATQB(12), ATTRIB_RES length, ATTRIB_RES; the chip's ATTRIB gives CID = Tg and
        # FSD 64 (nfcpy's driver undoes it with S(DESELECT) CID 1 and WUPB)
        attrib = b"\x1d" + bytes(c.atqb[1:5]) + bytes((0x00, 0x05, 0x01, tg))
        r = picc.attrib(attrib) or b""
        self._pcd[id(c)] = [0]
        return bytes(c.atqb) + bytes((len(r),)) + r

    def service(self):
        """Re-check a deferred InListPassiveTarget/InAutoPoll (infinite retries)."""
        if self.pending is not None:
            cmd, p = self.pending
            if cmd == CMD_IN_AUTO_POLL:
                out = self._auto_poll_once(p)
                if out is not None:
                    self.pending = None
                    self._answer(cmd, out)
                return
            kind = "A" if p[1] == _TYPE_A else "B"
            f = self.field
            if any(c.kind == kind and f.picc(c).state == PICC_IDLE for c in f.cards):
                self.pending = None
                self._poll_list(cmd, p)

    def _in_auto_poll(self, cmd, p):
        # §7.3.13: PollNr (FF = endless), Period, Type1..Typen; answers NbTg then per
        # target Type, length, target data as InListPassiveTarget gives it.
        if len(p) < 3 or p[1] == 0 or len(p) > 17:
            self._syntax_error()
            return
        for t in p[2:]:
            if t not in _AUTO_POLL_TYPES:
                self._syntax_error()
                return
        out = self._auto_poll_once(bytes(p))
        if out is None:
            if p[0] == 0xFF:
                self.pending = (cmd, bytes(p))
                return
            out = b"\x00"
        self._answer(cmd, out)

    def _auto_poll_once(self, p):
        for c in self.targets:
            c.deselect()
        self.targets = []
        for t in p[2:]:
            kind = _AUTO_POLL_TYPES[t]
            found = self._candidates(kind)
            if t in (0x20, 0x23):
                found = [c for c in found if (c.sak & 0x20 if kind == "A" else c.atqb[10] & 1)]
            if found:
                c = found[0]
                self.targets = [c]
                self._pcd = {}
                data = bytes((1,)) + self._target_data(c, 1)
                return bytes((1, t, len(data))) + data
        return None

    def _target(self, tg):
        n = tg & 0x0F
        if 1 <= n <= len(self.targets):
            return self.targets[n - 1]
        return None

    def _in_data_exchange(self, cmd, p):
        # §7.3.8: Tg (bit 6 = MI: more data follows) DataOut; status, DataIn. The chip runs
        # ISO-DEP itself for a target it activated (automatic RATS / ATTRIB).
        if not p:
            self._syntax_error()
            return
        tg = p[0]
        card = self._target(tg)
        if card is None:
            self._status(cmd, ST_WRONG_CONTEXT)
            return
        data = p[1:]
        if getattr(card, "mifare", False):
            self._mifare(cmd, card, bytes(data))
            return
        if self._rx_chain and self._rx_chain_tg == tg & 0x0F and not data:
            self._send_part(cmd)  # host fetches the next part of a chained answer
            return
        self._rx_chain = b""
        self._tx_chain += data
        if tg & 0x40:  # MI from the host: more command data follows
            self._status(cmd, ST_OK)
            return
        apdu = bytes(self._tx_chain)
        self._tx_chain = bytearray()
        self.exchanges += 1
        picc = self.field.picc(card)
        pcd = self._pcd.setdefault(id(card), [0])
        r = picc.pcd_apdu(apdu, pcd)
        if r is None:
            self.targets = [c for c in self.targets if c is not card]
            self._status(cmd, ST_TIMEOUT)
            return
        self._rx_chain = bytes(r)
        self._rx_chain_tg = tg & 0x0F
        self._send_part(cmd)

    # -- MIFARE Classic through the chip's Crypto1 unit (§7.3.8) ------------------------
    def _m1_tx(self, card, plain, raw=None):
        """One frame to the card: plain + CRC_A, encrypted when a sector is open (or raw
        bytes/parity as given). -> the card's (data, par, bits) or None."""
        if raw is not None:
            data, par = raw
        else:
            body = bytes(plain) + crypto1.crc_a(plain)
            c = self._m1.get(id(card))
            if c is not None:
                data, par = c.encrypt(body)
            else:
                data, par = body, bytes(crypto1.odd_parity(b) for b in body)
        return card.frame(data, par)

    def _m1_ack(self, card, r):
        """True when the answer is the 4-bit ACK; a NAK closes the sector."""
        if r is None or r[2] != 4:
            return False
        c = self._m1.get(id(card))
        v = c.nibble(r[0][0]) if c is not None else r[0][0]
        if v != 0x0A:
            self._m1[id(card)] = None
            return False
        return True

    def _mifare(self, cmd, card, d):
        self.exchanges += 1
        try:
            self._mifare_cmd(cmd, card, d)
        except CardGone:
            self.field.remove(card)
            self.targets = [c for c in self.targets if c is not card]
            self._status(cmd, ST_TIMEOUT)

    def _mifare_cmd(self, cmd, card, d):
        if not d:
            self._syntax_error()
            return
        op = d[0]
        k = id(card)
        picc = self.field.picc(card)
        if picc.state != PICC_ACTIVE or card not in self.field.cards:
            self._status(cmd, ST_TIMEOUT)  # halted, or back to IDLE after a NAK
            return
        self._mifare_op(cmd, card, d, op, k)
        if self.last_error == ST_MIFARE_AUTH:
            picc.state = PICC_IDLE  # a refused command: the card left ACTIVE (MF1S50 §10.1)
            self._m1[k] = None

    def _mifare_op(self, cmd, card, d, op, k):
        if op in (0x60, 0x61):
            if len(d) != 12:
                self._syntax_error()
                return
            nested = self._m1.get(k) is not None
            r = self._m1_tx(card, d[0:2])
            if r is None or r[2] != 32:
                self._m1[k] = None
                self._status(cmd, ST_MIFARE_AUTH if r is not None else ST_TIMEOUT)
                return
            ra = crypto1.ReaderAuth(d[2:8], d[8:12])
            self._nr = (self._nr * 1103515245 + 12345) & 0xFFFFFFFF
            out, par = ra.answer(r[0], self._nr, nested=nested)
            self.m1_auths += 1
            r = self._m1_tx(card, None, (out, par))
            if r is None or r[2] != 32 or not ra.check(r[0], r[1]):
                self._m1[k] = None  # wrong key: the card stays silent (§7.3.8 status 14)
                self._status(cmd, ST_MIFARE_AUTH)
                return
            self._m1[k] = ra.c
            self._status(cmd, ST_OK)
            return
        c = self._m1.get(k)
        if c is None:
            self._status(cmd, ST_MIFARE_AUTH)  # no sector open: the chip refuses
            return
        if op == 0x30 and len(d) == 2:
            r = self._m1_tx(card, d)
            if r is None:
                self._status(cmd, ST_TIMEOUT)
                return
            if r[2] == 4:
                self._m1_ack(card, r)
                self._status(cmd, ST_MIFARE_AUTH)
                return
            p, ok = c.decrypt(r[0], r[1])
            if not ok or len(p) != 18 or crypto1.crc_a(p[:16]) != p[16:]:
                self._status(cmd, ST_CRC)
                return
            self._status(cmd, ST_OK, p[:16])
            return
        if op == 0xA0 and len(d) == 18:
            two = d[2:18]
        elif op in (0xC0, 0xC1, 0xC2) and len(d) == 6:
            two = d[2:6]
        elif op == 0xB0 and len(d) == 2:
            two = None
        else:
            self._syntax_error()
            return
        r = self._m1_tx(card, d[0:2])
        if r is None:
            self._status(cmd, ST_TIMEOUT)
            return
        if not self._m1_ack(card, r):
            self._status(cmd, ST_MIFARE_AUTH)
            return
        if two is None:
            self._status(cmd, ST_OK)
            return
        r = self._m1_tx(card, two)
        if op == 0xA0:
            if r is None:
                self._status(cmd, ST_TIMEOUT)
            elif not self._m1_ack(card, r):
                self._status(cmd, ST_MIFARE_AUTH)
            else:
                self._status(cmd, ST_OK)
            return
        # value operations: silence is success (MF1S50 §10.4.2); a NAK is a refusal
        if r is not None and not self._m1_ack(card, r):
            self._status(cmd, ST_MIFARE_AUTH)
            return
        self._status(cmd, ST_OK)

    def _send_part(self, cmd):
        part, rest = self._rx_chain[:_CHUNK], self._rx_chain[_CHUNK:]
        self._rx_chain = rest
        self._status(cmd, ST_MI if rest else ST_OK, part)

    def _in_communicate_thru(self, cmd, p):
        # §7.3.9: DataOut sent as is (the CIU adds the CRC) to the current target; status,
        # DataIn. Timeout (01) when the card stays silent.
        if not p:
            self._syntax_error()
            return
        if not self.rf_on:
            self._status(cmd, 0x0A)  # RF field not switched on
            return
        card = self._target(self.current + 1)
        if card is None:
            self._status(cmd, ST_WRONG_CONTEXT)
            return
        self.exchanges += 1
        r = self.field.picc(card).frame(bytes(p))
        if r is None:
            self._status(cmd, ST_TIMEOUT)
            return
        self._status(cmd, ST_OK, r)

    def _in_select(self, cmd, p):
        # §7.3.12: Tg becomes the current target
        if len(p) != 1:
            self._syntax_error()
            return
        if self._target(p[0]) is None:
            self._status(cmd, ST_WRONG_CONTEXT)
            return
        self.current = (p[0] & 0x0F) - 1
        self._status(cmd, ST_OK)

    def _in_release(self, cmd, p, deselect_only=False):
        # §7.3.10 InDeselect / §7.3.11 InRelease: S(DESELECT) to an ISO-DEP target (it
        # halts); InRelease also forgets it. Tg 0 = all targets.
        if len(p) != 1:
            self._syntax_error()
            return
        tg = p[0]
        if tg == 0:
            cards = list(self.targets)
        else:
            c = self._target(tg)
            cards = [c] if c is not None else []
        if tg and not cards:
            self._status(cmd, ST_WRONG_CONTEXT)
            return
        for c in cards:
            picc = self.field.picc(c)
            if picc.state == PICC_PROTOCOL:  # S(DESELECT) with its CID
                picc.frame(bytes((0xCA, picc.cid)) if picc.cid else b"\xc2")
            else:  # an ISO 14443-3 target: HLTA / HLTB
                picc.state = PICC_HALT
                c.deselect()
                self._m1.pop(id(c), None)
            if not deselect_only:
                self.targets = [t for t in self.targets if t is not c]
        self._status(cmd, ST_OK)

    def _in_deselect(self, cmd, p):
        self._in_release(cmd, p, True)

    _handlers = {
        CMD_DIAGNOSE: _diagnose,
        CMD_GET_FIRMWARE_VERSION: _get_firmware_version,
        CMD_GET_GENERAL_STATUS: _get_general_status,
        CMD_READ_REGISTER: _read_register,
        CMD_WRITE_REGISTER: _write_register,
        CMD_SET_SERIAL_BAUD_RATE: _set_serial_baud_rate,
        CMD_SET_PARAMETERS: _set_parameters,
        CMD_SAM_CONFIGURATION: _sam_configuration,
        CMD_POWER_DOWN: _power_down,
        CMD_RF_CONFIGURATION: _rf_configuration,
        CMD_IN_LIST_PASSIVE_TARGET: _in_list_passive_target,
        CMD_IN_DATA_EXCHANGE: _in_data_exchange,
        CMD_IN_COMMUNICATE_THRU: _in_communicate_thru,
        CMD_IN_DESELECT: _in_deselect,
        CMD_IN_RELEASE: _in_release,
        CMD_IN_SELECT: _in_select,
        CMD_IN_AUTO_POLL: _in_auto_poll,
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


def spi_bridge(b, spi, write, strict=True):
    """Decode the SPI bridge's byte stream (the unix board's SPI transport over a pty):
    b"S" NSS low, b"D" NSS high, b"X" len data = one full-duplex transfer whose MISO bytes
    go to write(bytes). Returns the unconsumed tail (an incomplete transfer). An unknown op
    byte raises ValueError when strict, else it is dropped (noise on the line)."""
    while b:
        op = b[0]
        if op == 0x53:
            spi.cs(0)
            b = b[1:]
        elif op == 0x44:
            spi.cs(1)
            b = b[1:]
        elif op == 0x58:
            if len(b) < 2 or len(b) < 2 + b[1]:
                break
            n = b[1]
            write(spi.exchange(b[2 : 2 + n]))
            b = b[2 + n :]
        elif strict:
            raise ValueError("SPI bridge: unknown op byte 0x%02x" % op)
        else:
            b = b[1:]
    return b


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
            self.core.wake_spi()  # NSS low wakes the chip (§7.2.11)
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
