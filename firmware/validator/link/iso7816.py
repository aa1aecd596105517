# validator.link.iso7816: ISO/IEC 7816-3 T=0 over a UART-like byte link (PSAM slot).
# SPDX-License-Identifier: MIT
#
# The board supplies an IsoPort (validator.hal): `link` (ByteLink at the slot's baud rate),
# `reset(level)` (RST pin; the board already runs the clock) and `echo` (True when TX and
# RX share the single I/O line, so every byte we send comes back and must be discarded).
#
# What this module does (section numbers: ISO/IEC 7816-3:2006):
#   * cold reset and ATR read + parse (§8): TS (3B direct; 3F inverse, converted here when
#     the UART reads it as 03), T0, TAi/TBi/TCi/TDi, historical bytes, TCK (present only
#     when a protocol other than T=0 is offered, §8.2.5);
#   * optional PPS (§9) when TA1 offers a faster Fi/Di; the port changes its baud rate
#     through an optional `set_etu(fi, di)` method;
#   * T=0 command transport (§10): procedure bytes INS (send/receive the rest), ~INS (one
#     byte), NULL 0x60 (keep waiting), SW1 0x6X/0x9X; 61xx -> GET RESPONSE (§10.3.3, case 4
#     and PSAM responses), 6Cxx -> resend the header with P3 = xx;
#   * work waiting time (§10.2): WWT = 960 * WI * Fi / f; we hold it in milliseconds and
#     raise SamError(0, _SAM_TIMEOUT) when the PSAM stays silent longer.
#
# Bytes move one at a time through a preallocated 1-byte buffer: T=0 itself is byte-paced
# (~INS procedure bytes, echo) and slicing memoryviews would allocate. transmit() allocates
# nothing; reset() runs at boot only.
from micropython import const

from validator.errors import SamError

# SamError.code values for link-level faults (sw = 0)
_SAM_NO_ATR = const(1)
_SAM_BAD_ATR = const(2)
_SAM_TIMEOUT = const(3)
_SAM_PROTOCOL = const(4)
_SAM_ECHO = const(5)
_SAM_PPS = const(6)
_SAM_OVERFLOW = const(7)

_TS_DIRECT = const(0x3B)
_TS_INVERSE = const(0x3F)
_TS_INVERSE_SEEN = const(0x03)  # inverse-convention TS read by a direct-convention UART


# §8.1: inverse convention = logic 1 is the low state and bits come MSB first. A UART set up
# for the direct convention therefore receives bitreverse(~x); the map is its own inverse,
# so the same table converts in both directions. A bytes literal stays in the image (ROMFS
# or frozen) and takes no heap; iso7816_host.conv() computes it and a test compares.
_INV = const(
    b"\xff\x7f\xbf\x3f\xdf\x5f\x9f\x1f\xef\x6f\xaf\x2f\xcf\x4f\x8f\x0f"
    b"\xf7\x77\xb7\x37\xd7\x57\x97\x17\xe7\x67\xa7\x27\xc7\x47\x87\x07"
    b"\xfb\x7b\xbb\x3b\xdb\x5b\x9b\x1b\xeb\x6b\xab\x2b\xcb\x4b\x8b\x0b"
    b"\xf3\x73\xb3\x33\xd3\x53\x93\x13\xe3\x63\xa3\x23\xc3\x43\x83\x03"
    b"\xfd\x7d\xbd\x3d\xdd\x5d\x9d\x1d\xed\x6d\xad\x2d\xcd\x4d\x8d\x0d"
    b"\xf5\x75\xb5\x35\xd5\x55\x95\x15\xe5\x65\xa5\x25\xc5\x45\x85\x05"
    b"\xf9\x79\xb9\x39\xd9\x59\x99\x19\xe9\x69\xa9\x29\xc9\x49\x89\x09"
    b"\xf1\x71\xb1\x31\xd1\x51\x91\x11\xe1\x61\xa1\x21\xc1\x41\x81\x01"
    b"\xfe\x7e\xbe\x3e\xde\x5e\x9e\x1e\xee\x6e\xae\x2e\xce\x4e\x8e\x0e"
    b"\xf6\x76\xb6\x36\xd6\x56\x96\x16\xe6\x66\xa6\x26\xc6\x46\x86\x06"
    b"\xfa\x7a\xba\x3a\xda\x5a\x9a\x1a\xea\x6a\xaa\x2a\xca\x4a\x8a\x0a"
    b"\xf2\x72\xb2\x32\xd2\x52\x92\x12\xe2\x62\xa2\x22\xc2\x42\x82\x02"
    b"\xfc\x7c\xbc\x3c\xdc\x5c\x9c\x1c\xec\x6c\xac\x2c\xcc\x4c\x8c\x0c"
    b"\xf4\x74\xb4\x34\xd4\x54\x94\x14\xe4\x64\xa4\x24\xc4\x44\x84\x04"
    b"\xf8\x78\xb8\x38\xd8\x58\x98\x18\xe8\x68\xa8\x28\xc8\x48\x88\x08"
    b"\xf0\x70\xb0\x30\xd0\x50\x90\x10\xe0\x60\xa0\x20\xc0\x40\x80\x00"
)
# What goes out on the line is staged here: the 5-byte TPDU header (§10.1), then the data
# phase over it (P3 = Lc <= 255, §10.1; one write() per INS procedure byte). The header is
# no longer needed once the data phase starts (INS is kept in a local; a 6Cxx resend only
# follows a TPDU without data, and GET RESPONSE writes a whole new header). One buffer for
# every slot: the engine talks to one PSAM at a time; inverse-convention bytes are converted
# in place and back (_INV is its own inverse), so no second buffer is needed.
_TX = bytearray(256)
_NULL = const(0x60)
_ATR_MAX = const(33)
_WI_DEFAULT = const(10)
# Fi by TA1 high nibble, Di by low nibble (§8.3 tables 7 and 8); 0 = RFU.
_FI = const((372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768, 1024, 1536, 2048, 0, 0))
_DI = const((0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0))


class Iso7816:
    """One PSAM slot speaking T=0.

    Iso7816(port, clock, wwt_ms=None, atr_ms=400, f_khz=3571)
      port   IsoPort (link, reset(level), echo)
      clock  hal.Clock (ticks_ms/ticks_diff/sleep_ms)
      wwt_ms fixed work waiting time; None = from the ATR (WI in TC2) at f_khz and Fi
    """

    def __init__(self, port, clock, wwt_ms=None, atr_ms=400, f_khz=3571):
        self.port = port
        self.link = port.link
        self.clock = clock
        self.atr = bytearray(_ATR_MAX)
        self.atr_len = 0
        self.hist_off = 0  # historical bytes = atr[hist_off:hist_off + hist_len]
        self.hist_len = 0
        self.ta1 = 0x11
        self.protocols = 1  # bit i set = T=i offered
        self.wi = _WI_DEFAULT
        # 0 = WWT fixed by the caller (wwt_ms), never derived from the ATR; one attribute
        # less keeps the instance dict at 17 slots (the next size is 23: +96 B per slot)
        self.f_khz = 0 if wwt_ms else f_khz
        self.wwt_ms = wwt_ms or 1000
        self._atr_ms = atr_ms
        self._b1 = bytearray(1)
        self.inverse = False  # True: convert every byte (TS arrived as 0x03)
        self.exchanges = 0  # command APDUs transmitted (GET RESPONSE not counted)
        self._got = 0

    # ---- bytes ------------------------------------------------------------------------
    def _get(self, ms):
        """Next byte from the line, waiting at most ms; raise SamError on silence."""
        link = self.link
        b = self._b1
        clock = self.clock
        t0 = clock.ticks_ms()
        while True:
            if link.readinto(b):
                return _INV[b[0]] if self.inverse else b[0]
            left = ms - clock.ticks_diff(clock.ticks_ms(), t0)
            if left <= 0 or not link.wait(left):
                if not link.readinto(b):
                    raise SamError(0, _SAM_TIMEOUT)
                return _INV[b[0]] if self.inverse else b[0]

    def _putn(self, buf, n):
        """Send buf[:n] (our own staging buffer) in one write; with echo, read the n bytes
        back and compare."""
        if self.inverse:
            for i in range(n):
                buf[i] = _INV[buf[i]]
            self.link.write(buf, n)
            for i in range(n):
                buf[i] = _INV[buf[i]]
        else:
            self.link.write(buf, n)
        if self.port.echo:
            for i in range(n):
                if self._get(self.wwt_ms) != buf[i]:
                    raise SamError(0, _SAM_ECHO)

    def _put(self, v):
        b = self._b1
        b[0] = _INV[v] if self.inverse else v
        self.link.write(b, 1)
        if self.port.echo:
            # single-wire I/O: our own byte comes straight back (§5.2 contact C7)
            if self._get(self.wwt_ms) != v:
                raise SamError(0, _SAM_ECHO)

    # ---- reset / ATR (§8) ---------------------------------------------------------------
    def reset(self):
        """Cold reset, read and check the ATR; return its length. Boot path only."""
        port = self.port
        port.reset(0)
        self.clock.sleep_ms(10)
        self.link.drain()
        port.reset(1)
        atr = self.atr
        self.inverse = False
        try:
            ts = self._get(self._atr_ms)
        except SamError:
            raise SamError(0, _SAM_NO_ATR)
        if ts == _TS_INVERSE_SEEN:
            # inverse convention on a direct-convention UART (§8.1): convert from now on.
            # (The board's UART must check odd parity then; MOT PSAMs seen all use 3B.)
            self.inverse = True
            ts = _TS_INVERSE
        elif ts != _TS_DIRECT and ts != _TS_INVERSE:  # 3F: the board's UART converts
            raise SamError(0, _SAM_BAD_ATR)
        atr[0] = ts
        n = 1
        y = self._get(self._atr_ms)  # T0
        atr[n] = y
        n += 1
        k = y & 0x0F
        i = 1
        protocols = 0
        self.ta1 = 0x11
        self.wi = _WI_DEFAULT
        tck = False
        while True:
            td = 0
            for bit in range(4):
                if y & (0x10 << bit):
                    if n >= _ATR_MAX:
                        raise SamError(0, _SAM_BAD_ATR)
                    v = self._get(self._atr_ms)
                    atr[n] = v
                    n += 1
                    if bit == 0 and i == 1:
                        self.ta1 = v
                    elif bit == 2 and i == 2:
                        self.wi = v or _WI_DEFAULT  # TC2 = WI (§10.2)
                    elif bit == 3:
                        td = v
            if not y & 0x80:
                break
            t = td & 0x0F
            protocols |= 1 << t
            if t != 0:
                tck = True
            y = td
            i += 1
        if not protocols:
            protocols = 1
        self.protocols = protocols
        self.hist_off = n
        self.hist_len = k
        if n + k + (1 if tck else 0) > _ATR_MAX:
            raise SamError(0, _SAM_BAD_ATR)
        for _ in range(k):
            atr[n] = self._get(self._atr_ms)
            n += 1
        if tck:
            atr[n] = self._get(self._atr_ms)
            n += 1
            x = 0
            for j in range(1, n):
                x ^= atr[j]
            if x:
                raise SamError(0, _SAM_BAD_ATR)  # §8.2.5: T0..TCK XOR to zero
        if not protocols & 1:
            raise SamError(0, _SAM_BAD_ATR)  # this link speaks T=0 only
        self.atr_len = n
        self._set_wwt(0x11)  # until a PPS changes Fi
        return n

    def _set_wwt(self, ta1):
        if not self.f_khz:
            return  # fixed by the caller
        fi = _FI[ta1 >> 4] or 372
        # WWT = 960 * WI * Fi / f (§10.2); +50% margin for UART latency
        self.wwt_ms = (960 * self.wi * fi) // self.f_khz * 3 // 2 + 1

    def power_up(self):
        """Reset + ATR, then PPS when offered (boot path); returns the ATR length."""
        n = self.reset()
        self.pps()
        return n

    def pps(self):
        """Negotiate TA1's Fi/Di with T=0 (§9.2) if the ATR offers more than the default.

        Returns True when the rate changed. Needs port.set_etu(fi, di); without it the
        slot stays at the default rate (always legal, §9.1)."""
        ta1 = self.ta1
        if ta1 == 0x11 or not hasattr(self.port, "set_etu"):
            return False
        fi = _FI[ta1 >> 4]
        di = _DI[ta1 & 0x0F]
        if not fi or not di:
            return False
        req = (0xFF, 0x10, ta1, 0xFF ^ 0x10 ^ ta1)
        for v in req:
            self._put(v)
        for v in req:  # a successful PPS echoes the request (§9.3)
            if self._get(self.wwt_ms) != v:
                raise SamError(0, _SAM_PPS)
        self.port.set_etu(fi, di)
        self._set_wwt(ta1)
        return True

    # ---- T=0 transport (§10) ------------------------------------------------------------
    def transmit(self, cmd, n, resp):
        """Send command APDU cmd[:n] (case 1..4), fill resp with data + SW1 SW2.

        Returns the response length. Raises SamError on timeout/protocol fault."""
        self.exchanges += 1
        hdr = _TX
        for i in range(4):
            hdr[i] = cmd[i]
        le = 0
        lc = 0
        if n == 5:
            le = cmd[4] or 256  # case 2: P3 = Le
            hdr[4] = cmd[4]
        elif n > 5:
            lc = cmd[4]  # case 3 / case 4: P3 = Lc; Le is obtained via 61xx (§12.2.4)
            if n != 5 + lc and n != 6 + lc:
                raise SamError(0, _SAM_PROTOCOL)
            hdr[4] = lc
        else:
            hdr[4] = 0  # case 1
        self._got = 0
        sw = self._tpdu(cmd, lc, le, resp)
        for _ in range(16):
            sw1 = sw >> 8
            if sw1 == 0x6C and lc == 0:
                # wrong Le: resend the same header with P3 = SW2 (§10.3.3)
                hdr[4] = sw & 0xFF
                sw = self._tpdu(cmd, 0, hdr[4] or 256, resp)
            elif sw1 == 0x61:
                # response bytes waiting: GET RESPONSE 00 C0 00 00 xx (§10.3.3); chains
                hdr[0] = 0x00
                hdr[1] = 0xC0
                hdr[2] = 0
                hdr[3] = 0
                hdr[4] = sw & 0xFF
                lc = 0
                sw = self._tpdu(cmd, 0, hdr[4] or 256, resp)
            else:
                break
        else:
            raise SamError(sw, _SAM_PROTOCOL)
        got = self._got
        resp[got] = sw >> 8
        resp[got + 1] = sw & 0xFF
        return got + 2

    def _tpdu(self, cmd, lc, le, resp):
        """One T=0 TPDU: the header in _TX[:5], then procedure bytes until SW1 SW2;
        returns SW. Sends cmd[5:5+lc] as the card asks (staged over the header); appends up
        to le received bytes at resp[self._got]."""
        hdr = _TX
        self._putn(hdr, 5)
        ins = hdr[1]
        sent = 0
        wwt = self.wwt_ms
        cap = len(resp) - 2
        got = self._got
        while True:
            pb = self._get(wwt)
            if pb == _NULL:
                continue  # §10.3.3: NULL asks for more waiting time
            if pb == ins or pb == ins ^ 0xFF:
                one = pb != ins  # ~INS: exactly one byte, then another procedure byte
                if sent < lc:
                    if one:
                        self._put(cmd[5 + sent])
                        sent += 1
                    else:
                        tx = _TX
                        k = lc - sent
                        for i in range(k):
                            tx[i] = cmd[5 + sent + i]
                        self._putn(tx, k)
                        sent = lc
                elif le > 0:
                    while le > 0:
                        if got >= cap:
                            raise SamError(0, _SAM_OVERFLOW)
                        resp[got] = self._get(wwt)
                        got += 1
                        le -= 1
                        if one:
                            break
                    self._got = got
                else:
                    raise SamError(0, _SAM_PROTOCOL)
                continue
            hi = pb & 0xF0
            if hi == 0x60 or hi == 0x90:
                return (pb << 8) | self._get(wwt)
            raise SamError(0, _SAM_PROTOCOL)

