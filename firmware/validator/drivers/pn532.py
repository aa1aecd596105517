# validator.drivers.pn532: NXP PN532 host-controller frames and commands.
# SPDX-License-Identifier: MIT
#
# Reference: NXP UM0701-02 "PN532 User Manual" rev 02:
#   §6.2.1.1 normal information frame  00 00 FF LEN LCS TFI PD0..PDn DCS 00
#   §6.2.1.2 extended information frame 00 00 FF FF FF LENm LENl LCS TFI PD.. DCS 00
#   §6.2.1.3 ACK 00 00 FF 00 FF 00, NACK 00 00 FF FF 00 00
#   §6.2.1.5 error frame (syntax error)  00 00 FF 01 FF 7F 81 00
#   §7 commands; §7.1 status byte error codes.
# LEN counts TFI + PD bytes; LEN + LCS == 0 (mod 256); TFI + PD.. + DCS == 0 (mod 256).
# TFI is D4 host -> PN532 and D5 PN532 -> host; the answer code is the command + 1.
#
# The driver is transport-agnostic (validator.drivers.pn532_link.Hsu or pn532_spi.Spi)
# and knows nothing about cards: ISO 14443-4 lives in validator.link.iso14443. One frame
# buffer, allocated once, serves both directions; command() allocates nothing, so it can
# sit on the tap path.
from micropython import const

from validator.errors import NfcError, NfcTimeout

_CMD_GET_FIRMWARE_VERSION = const(0x02)
_CMD_SET_SERIAL_BAUD_RATE = const(0x10)
_CMD_SAM_CONFIGURATION = const(0x14)
_CMD_RF_CONFIGURATION = const(0x32)
# InDataExchange 0x40, InListPassiveTarget 0x4A, InRelease 0x52: built by link.iso14443

_TFI_HOST = const(0xD4)
_TFI_CHIP = const(0xD5)
_MAX_DATA = const(264)  # TFI + PD bytes in one extended frame (UM0701 §6.2.1.2)
_FRAME_BUF = const(_MAX_DATA + 10)
_P_OFF = const(7)  # params in a normal frame: 00 00 FF LEN LCS D4 cmd
# A received frame's TFI..PDn, DCS (at most _MAX_DATA + 1 bytes) go into the same buffer
# from here: after the 6 bytes an ACK/NACK we send takes, and 8 + 265 <= _FRAME_BUF. The
# frame out is on the wire before an answer is read, and callers take the answer before
# they fill the next parameters.
_B_OFF = const(8)
_ACK_TIMEOUT_MS = const(30)  # the chip ACKs within ~1 ms of a good frame
_NACK_RETRIES = const(2)
_RESYNC_LIMIT = const(600)  # bytes of garbage tolerated while hunting a start code

# Frame kinds returned by _read_frame
_K_ACK = const(1)
_K_NACK = const(2)
_K_DATA = const(3)
_K_ERROR = const(4)
_STALE_MAX = const(4)  # late answers dropped per command before giving up
_HSU_POWER_UP = const(115200)  # the chip's HSU speed after power-up (§6.2.3)

# Status-byte error codes (UM0701 §7.1, Table 5): status_text() names them; link.iso14443
# tests the ones that mean "card gone" (0x01 timeout, 0x29 released, 0x2B disappeared).


def status_text(code):
    """Text of a status-byte error code. Codes (bytes) and "|"-separated texts in the same
    order, as function constants: no module-level table objects or names in the heap when
    the firmware runs from ROMFS/frozen .mpy. Only error messages use it."""
    i = (
        b"\x01\x02\x03\x04\x05\x06\x07\x09\x0a\x0b\x0d\x0e\x10"
        b"\x12\x13\x14\x23\x25\x26\x27\x29\x2a\x2b\x2c\x2d\x2e"
    ).find(bytes((code,))) if 0 <= code < 256 else -1
    if i < 0:
        return "unknown status"
    return (
        "target did not answer|CRC error|parity error|bit count error in anticollision|"
        "framing error|abnormal bit collision|communication buffer too small|"
        "RF buffer overflow|RF field not switched on in time|RF protocol error|"
        "temperature error|internal buffer overflow|invalid parameter|"
        "DEP unsupported command|data format does not match the specification|"
        "MIFARE authentication error|UID check byte wrong|invalid device state|"
        "operation not allowed in this configuration|"
        "command not acceptable in the current context|target released by initiator|"
        "card ID does not match|card previously activated has disappeared|"
        "NFCID3 mismatch|over-current|NAD missing in DEP frame"
    ).split("|")[i]


class Pn532:
    """One PN532 behind a transport (pn532_link.Hsu or pn532_spi.Spi).

    `command(cmd, n_params, timeout_ms)` sends `cmd` with `self.params[:n_params]` and
    returns the number of answer bytes placed in `self.resp` (the bytes after D5 cmd+1).
    `params` and `resp` are windows on the one frame buffer: fill `params` for every
    command, and take what you need from `resp` before filling the next parameters.
    Counters (frames_sent, nacks_sent, resyncs, garbage_bytes) help tests and benches.
    """

    def __init__(self, transport, clock):
        self.t = transport
        self.clock = clock
        self._tx = bytearray(_FRAME_BUF)
        # the caller fills parameters straight into the outgoing frame, after 00 00 FF LEN
        # LCS TFI cmd (UM0701 §6.2.1.1): no second 264-byte buffer and no copy; command()
        # moves them 3 bytes on for the rare extended frame (§6.2.1.2)
        mv = memoryview(self._tx)
        self.params = mv[_P_OFF:_P_OFF + _MAX_DATA]
        self._body = mv[_B_OFF:]  # TFI..PDn, DCS of the frame in
        # the answer data after D5 (cmd+1): a window on the frame body, made once, so an
        # answer is never copied inside the driver
        self.resp = mv[_B_OFF + 2:_B_OFF + _MAX_DATA]
        self._chunk = bytearray(64)
        self._pos = 0
        self._avail = 0
        self.frames_sent = 0
        self.nacks_sent = 0
        self.resyncs = 0
        self.garbage_bytes = 0

    # -- frames out ---------------------------------------------------------------
    def _control(self, ln, lcs):
        """Send 00 00 FF ln lcs 00: an ACK (00 FF) or a NACK (FF 00) frame (§6.2.1.3)."""
        tx = self._tx
        tx[0] = 0
        tx[1] = 0
        tx[2] = 0xFF
        tx[3] = ln
        tx[4] = lcs
        tx[5] = 0
        self.t.write(tx, 6)

    def abort(self):
        """Send an ACK frame: cancels the command the chip is processing (§6.2.1.3)."""
        self._control(0x00, 0xFF)

    # -- bytes in -----------------------------------------------------------------
    def _byte(self, deadline):
        while self._pos >= self._avail:
            left = self.clock.ticks_diff(deadline, self.clock.ticks_ms())
            if left <= 0:
                raise NfcTimeout("PN532 did not answer")
            self._avail = self.t.fill(self._chunk, left)
            self._pos = 0
        b = self._chunk[self._pos]
        self._pos += 1
        return b

    def _read_frame(self, timeout_ms):
        """Read one frame; return its kind. Data frames leave TFI..PDn in _body and the
        data length in self._blen. Garbage before a start code is skipped (resync); a
        frame with a bad LCS/DCS raises NfcError('checksum') so the caller can NACK."""
        clk = self.clock
        deadline = clk.ticks_add(clk.ticks_ms(), timeout_ms)
        if not self.t.begin_read(timeout_ms):
            raise NfcTimeout("PN532 not ready")
        try:
            skipped = 0
            prev = -1
            while True:  # hunt for the start code 00 FF
                b = self._byte(deadline)
                if prev == 0x00 and b == 0xFF:
                    break
                if b != 0x00:
                    skipped += 1
                prev = b
                if skipped > _RESYNC_LIMIT:
                    raise NfcError("no PN532 start code in garbage")
            if skipped:
                self.resyncs += 1
                self.garbage_bytes += skipped
            ln = self._byte(deadline)
            lcs = self._byte(deadline)
            if ln == 0x00 and lcs == 0xFF:
                return _K_ACK
            if ln == 0xFF and lcs == 0x00:
                return _K_NACK
            if ln == 0xFF and lcs == 0xFF:  # extended frame
                hi = self._byte(deadline)
                lo = self._byte(deadline)
                c = self._byte(deadline)
                if (hi + lo + c) & 0xFF:
                    raise NfcError("checksum")
                ln = (hi << 8) | lo
            elif (ln + lcs) & 0xFF:
                raise NfcError("checksum")
            if ln < 1 or ln > _MAX_DATA:
                raise NfcError("checksum")
            body = self._body
            s = 0
            i = 0
            chunk = self._chunk
            while i <= ln:  # TFI..PDn, DCS: copied straight from the receive chunk
                if self._pos >= self._avail:
                    body[i] = self._byte(deadline)  # refills the chunk
                    s += body[i]
                    i += 1
                    continue
                p = self._pos
                k = self._avail - p
                if k > ln + 1 - i:
                    k = ln + 1 - i
                for j in range(k):
                    b = chunk[p + j]
                    body[i + j] = b
                    s += b
                i += k
                self._pos = p + k
            if s & 0xFF:
                raise NfcError("checksum")
            self._blen = ln
            if ln == 1 and body[0] == 0x7F:
                return _K_ERROR
            return _K_DATA
        finally:
            self.t.end_read()

    # -- commands -------------------------------------------------------------------
    def command(self, cmd, n_params, timeout_ms):
        """Run one command; return the length of the answer data in self.resp."""
        tx = self._tx
        n = n_params
        ln = n + 2  # TFI + cmd + params
        if ln > _MAX_DATA:
            raise NfcError("PN532 frame too long")
        tx[0] = 0x00
        tx[1] = 0x00
        tx[2] = 0xFF
        if ln <= 255:
            tx[3] = ln
            tx[4] = (-ln) & 0xFF
            i = 5
        else:  # extended frame, §6.2.1.2: LEN is 3 bytes longer, the params move on
            for k in range(n - 1, -1, -1):
                tx[_P_OFF + 3 + k] = tx[_P_OFF + k]
            tx[3] = 0xFF
            tx[4] = 0xFF
            tx[5] = ln >> 8
            tx[6] = ln & 0xFF
            tx[7] = (-(tx[5] + tx[6])) & 0xFF
            i = 8
        tx[i] = _TFI_HOST
        tx[i + 1] = cmd
        s = _TFI_HOST + cmd
        i += 2
        for k in range(i, i + n):
            s += tx[k]
        i += n
        tx[i] = (-s) & 0xFF
        tx[i + 1] = 0x00
        self._pos = 0  # drop bytes left from an earlier exchange
        self._avail = 0
        self.t.write(tx, i + 2)
        self.frames_sent += 1
        stale = 0  # late answers to earlier commands dropped (the driver gave up on them)
        while True:
            try:
                k = self._read_frame(_ACK_TIMEOUT_MS)
            except NfcError as e:
                if isinstance(e, NfcTimeout):
                    raise NfcTimeout("PN532 sent no ACK")
                raise NfcError("PN532 ACK garbled")
            if k != _K_DATA or stale >= _STALE_MAX:
                break
            stale += 1  # an answer where the ACK is due: an earlier command's, late
        if k == _K_NACK:
            raise NfcError("PN532 answered NACK")
        if k == _K_ERROR:
            raise NfcError("PN532 rejected the frame (syntax error)")
        if k != _K_ACK:
            raise NfcError("PN532 sent data instead of ACK")
        tries = 0
        while True:
            try:
                k = self._read_frame(timeout_ms)
            except NfcTimeout:
                self.abort()
                raise
            except NfcError as e:
                if e.args[0] != "checksum" or tries >= _NACK_RETRIES:
                    raise
                tries += 1
                self._pos = 0  # drop the rest of the bad frame
                self._avail = 0
                self.nacks_sent += 1
                self._control(0xFF, 0x00)  # NACK: repeat your last frame (§6.2.1.3)
                continue
            if k == _K_DATA:
                body = self._body
                if self._blen >= 2 and body[0] == _TFI_CHIP and body[1] == ((cmd + 1) & 0xFF):
                    break
                if stale >= _STALE_MAX:
                    raise NfcError("PN532 answered another command")
                stale += 1  # a late answer to an earlier command: not ours, drop it
                continue
            if k == _K_ERROR:
                raise NfcError("PN532 error frame: syntax error (UM0701 §6.2.1.5)")
            # a stray ACK/NACK here is ignored; keep waiting for the answer
        return self._blen - 2

    def begin(self):
        """Wake the chip (HSU preamble), normal SAM mode, switch an HSU line to the
        transport's `fast` speed, return (ic, ver, rev, support).

        Tried four times: after an MCU reset mid-frame the chip may still be parsing the
        old frame and miss the first command (a wakeup before each try). With `fast`, the
        tries alternate between the host's current speed and the other one: a reset of
        the reader alone leaves the chip at 115 200 and the host fast, a reset of the MCU
        alone the other way round."""
        t = self.t
        p = self.params
        fast = t.fast
        for i in range(4):
            if fast and i & 1:
                t.baud = _HSU_POWER_UP if t.baud == fast else fast
                t.link.set_baud(t.baud)
            t.wakeup()
            p[0] = 0x01  # SAMConfiguration: normal mode, no SAM (§7.2.10)
            p[1] = 0x14  # virtual-card timeout 20 x 50 ms (unused in normal mode)
            p[2] = 0x00 if not t.uses_irq else 0x01
            try:
                self.command(_CMD_SAM_CONFIGURATION, 3, 100)
                break
            except NfcError:
                if i == 3:
                    raise
        if fast and t.baud != fast:
            # SetSerialBaudRate (§7.2.8): the chip answers at the old speed and takes the
            # new one once the host has ACKed that answer; then the host follows. BR codes
            # 0..8 (Table 10) are 9 600 .. 1 288 000 baud, each rate // 9600 (mod 256) below
            # (a literal: no table in the heap; inline: no method object either)
            # (a speed not in the table goes as 0xFF: the chip refuses it, NfcError)
            p[0] = b"\x01\x02\x04\x06\x0c\x18\x30\x60\x86".find(
                bytes((fast // 9600 & 0xFF,))) & 0xFF
            self.command(_CMD_SET_SERIAL_BAUD_RATE, 1, 100)
            self.abort()  # the host's ACK of the answer: the chip switches after it
            t.baud = fast
            t.link.set_baud(fast)
        return self.firmware_version()

    def firmware_version(self):
        n = self.command(_CMD_GET_FIRMWARE_VERSION, 0, 100)
        if n != 4:
            raise NfcError("bad GetFirmwareVersion answer")
        r = self.resp
        return (r[0], r[1], r[2], r[3])

    def rf_config(self, item, n, a, b=0, c=0):
        """RFConfiguration (§7.3.1): CfgItem `item` with its n (1 or 3) data bytes a, b, c.
        Item 1 = RF field on/off; 2 = timings (RFU, ATR_RES timeout, RetryTimeout code);
        5 = MxRtyATR, MxRtyPSL, MxRtyPassiveActivation (0xFF = forever)."""
        p = self.params
        p[0] = item
        p[1] = a
        p[2] = b
        p[3] = c
        self.command(_CMD_RF_CONFIGURATION, 1 + n, 100)
