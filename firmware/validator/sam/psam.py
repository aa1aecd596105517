# validator.sam.psam: the MOT PSAM command set and boot sequence (card-protocol.md §4).
# SPDX-License-Identifier: MIT
#
# Boot (§4 start-up, S2/S5/S6): READ BINARY EF16 -> 6-byte terminal number; SELECT DF
# 8011; READ BINARY EF17 byte 0 -> purchase key index. Per tap: 8070 (MAC1 + TTSN) and
# 8072 (MAC2 check). For APPLICATION BLOCK: 801A 45 02 (general DES init with the card's
# two diversification factors) + 80FA 05 00 (MAC with IV).
#
# The local-issuer PSAM (the city's own MOHURD "住建部" card application, card-protocol.md
# §0/§5.5/§8) speaks the same commands: Psam(link, reset, local=True) selects _DF_LOCAL
# instead of 8011 and lays 8070 out the MOHURD way (factor 2 and the auth code, below).
#
# `link` is anything with transmit(cmd, n, resp) -> int, normally link.iso7816.Iso7816.
# An unexpected status word is a fault (SamError); the transaction turns it into
# R_SAM_FAULT. A missing or wrong PSAM leaves `ready` False: the app must not accept taps.
from micropython import const

from validator.errors import SamError
from validator.link import apdu

_TERM_LEN = const(6)
# 8070 data layout (§4 table), 36 bytes
_M_RAND = const(0)
_M_ATC = const(4)
_M_AMOUNT = const(6)
_M_TYPE = const(10)
_M_DT = const(11)
_M_KEYVER = const(18)
_M_ALG = const(19)
_M_F1 = const(20)
_M_F2 = const(28)
_M_LEN = const(36)
# Local-issuer (MOHURD) PSAM:
# [INF] its application DF: no source names it; one constant (emu.psam.DF_LOCAL matches).
_DF_LOCAL = const(b"\x10\x01")
_DF_MOT = const(b"\x80\x11")  # §4 [C2]
# [C2] §4 "MOHURD PSAMs in S5/S7": factor 2 = cityCode(2) FF 00 00 00 00 00, the city code
# taken from EF15[2..3] [INF: the layout the emulated local card keeps].
_F2_CITY = const(2)
_F2_FILL = const(0xFF)
# [INF] §5.5: the MOHURD card's MAC1 covers the 9-byte 80CA authentication code, which the
# 36-byte MOT layout has no room for: the local PSAM takes it appended (Lc 0x24 + 9 = 0x2D).
_AUTH_LEN = const(9)
_BLOCK_KEY_USAGE = const(0x45)  # 801A 45 02 for T-Union APPLICATION BLOCK (§4, S1/S4/S5)
_BLOCK_KEY_VER = const(0x02)
# [INF] Does 801A (general DES init for a block MAC) leave the purchase session 8070 set up
# in place? No source says; a PSAM with one temporary key register would lose it, and a
# later 8072 for a torn tap would then fail -- flagging a good recovery "MAC2 bad". Chosen:
# 0 = assume the session is gone (the recovery is recorded "MAC2 unverified", never falsely
# bad); 1 = assume it survives (the emulated PSAM keeps both).
_BLOCK_KEEPS_SESSION = const(0)
_BLOCK_KEY_SM4 = const(0x04)  # [INF] SM4 maintenance key id mirrors the SM4 algorithm id
_ALG_SM4 = const(0x04)  # algorithm id from INITIALIZE (§4 [INF]); 00 = 3DES

# The APDU buffers, one pair for every slot AND the tap engine (txn.transaction uses
# psam.cmd / psam.resp for the card): one tap talks to one device at a time, and no command
# is built from the other's buffer (the engine copies what it keeps -- INIT, TAC, challenge
# -- out of resp before the next exchange). Sizes from the spec's maxima:
#   cmd  133 = UPDATE CAPP DATA CACHE of the 128-byte EF1A record, 5 + 128 (§2.5, §3); the
#        biggest PSAM command is the local 8070, 5 + 45 + Le = 51 (§4, §5.5)
#   resp 262 >= 256 data + SW1 SW2 of a short APDU (ISO 7816-4 §5.1); the 4 spare bytes
#        cost nothing (the heap rounds both sizes up to the same 32-byte blocks)
_CMD = bytearray(133)
_RESP = bytearray(262)


class Psam:
    """PSAM session on one slot. Psam(link, reset=None, local=False): reset() re-powers the
    slot and returns the ATR length (the Iso7816 object's reset); None when the slot has no
    reset. local=True: the local-issuer (MOHURD) PSAM (DF _DF_LOCAL, MOHURD 8070 layout).

    After boot(): terminal (bytearray 6), key_index (int), ready (bool).
    After mac1(): ttsn (4) and mac1 (4) in self.out[0:4], self.out[4:8]."""

    def __init__(self, link, reset=None, local=False):
        self.link = link
        self._reset = reset
        self.local = local
        self.terminal = bytearray(_TERM_LEN)
        self.key_index = 0
        self.ready = False
        self.cmd = _CMD  # shared, see above
        self.resp = _RESP
        self.out = bytearray(8)  # TTSN(4) MAC1(4) after 8070; MAC(4) after 80FA
        # id of the tap whose 8070 the PSAM holds the session for (set by the caller)
        self.session_tag = 0

    def _x(self, n):
        """Exchange self.cmd[:n]; return response data length; SamError on SW != 9000."""
        r = self.link.transmit(self.cmd, n, self.resp)
        sw = apdu.sw(self.resp, r)
        if sw != 0x9000:  # the only success status of every PSAM command used (§4)
            raise SamError(sw, self.cmd[1])
        return r - 2

    def boot(self):
        """Reset (if possible), read the terminal number, select DF 8011, read the key
        index. Raises SamError for a missing/wrong PSAM; sets ready on success."""
        self.ready = False
        self.session_tag = 0
        if self._reset is not None:
            self._reset()
        c = self.cmd
        apdu.case2(c, 0x00, 0xB0, 0x96, 0x00, _TERM_LEN)  # EF16, SFI 16
        if self._x(5) != _TERM_LEN:
            raise SamError(0x9000, 0xB0)
        apdu.copy(self.terminal, 0, self.resp, 0, _TERM_LEN)
        # SELECT the application DF by FID: 8011 (MOT) or the local issuer's
        apdu.case3(c, 0x00, 0xA4, 0x00, 0x00, _DF_LOCAL if self.local else _DF_MOT, 2)
        self._x(7)
        apdu.case2(c, 0x00, 0xB0, 0x97, 0x00, 1)  # EF17 byte 0 = key index
        if self._x(5) < 1:
            raise SamError(0x9000, 0xB0)
        self.key_index = self.resp[0]
        self.ready = True

    def _factor2(self, c, off, ef15, ef15_off):
        """Diversification factor 2 into c[off:off+8]: EF15[0..7] (issuer ID, §4) for the MOT
        PSAM; cityCode(2) FF 00 00 00 00 00 for the local (MOHURD) PSAM (§4, S5/S7)."""
        if not self.local:
            apdu.copy(c, off, ef15, ef15_off, 8)
            return
        c[off] = ef15[ef15_off + _F2_CITY]
        c[off + 1] = ef15[ef15_off + _F2_CITY + 1]
        c[off + 2] = _F2_FILL
        for i in range(off + 3, off + 8):
            c[i] = 0

    def mac1(self, rand, rand_off, atc, amount, ttype, dt, dt_off, keyver, alg, ef15, ef15_off,
             auth=None, auth_off=0):
        """8070: MAC1 + TTSN for a purchase; result TTSN(4) MAC1(4) in self.out.

        Factor 1 = EF15[12..19] (card serial), factor 2 per _factor2 (§4). auth: the local
        card's 9-byte 80CA code at auth[auth_off:] (appended for the local PSAM, §5.5 [INF]);
        None for MOT."""
        c = self.cmd
        apdu.header(c, 0x80, 0x70, 0x00, 0x00)
        ln = _M_LEN
        d = 5
        apdu.copy(c, d + _M_RAND, rand, rand_off, 4)
        c[d + _M_ATC] = (atc >> 8) & 0xFF
        c[d + _M_ATC + 1] = atc & 0xFF
        apdu.put_u32(c, d + _M_AMOUNT, amount)
        c[d + _M_TYPE] = ttype
        apdu.copy(c, d + _M_DT, dt, dt_off, 7)
        c[d + _M_KEYVER] = keyver
        c[d + _M_ALG] = alg
        apdu.copy(c, d + _M_F1, ef15, ef15_off + 12, 8)
        self._factor2(c, d + _M_F2, ef15, ef15_off)
        if self.local:
            apdu.copy(c, d + _M_LEN, auth, auth_off, _AUTH_LEN)
            ln = _M_LEN + _AUTH_LEN
        c[4] = ln
        c[d + ln] = 8  # Le: TTSN + MAC1 (arrives via 61 08 on T=0)
        if self._x(6 + ln) < 8:
            raise SamError(0x9000, 0x70)
        apdu.copy(self.out, 0, self.resp, 0, 8)

    def verify_mac2(self, mac2, off):
        """8072: True if the PSAM accepts the card's MAC2 (§4). A refusal is returned, not
        raised: after a debit the record must still be written (the TAC proves it)."""
        c = self.cmd
        apdu.header(c, 0x80, 0x72, 0x00, 0x00)
        c[4] = 4
        apdu.copy(c, 5, mac2, off, 4)
        r = self.link.transmit(c, 9, self.resp)
        return apdu.sw(self.resp, r) == 0x9000

    def block_mac(self, ef15, ef15_off, challenge, ch_off, header, hdr_off, alg):
        """MAC for APPLICATION BLOCK (secure messaging, §4/§5.1): 801A 45 with the card's
        factors (P2 = maintenance key of the card's algorithm family), then 80FA 05 00 with
        IV = challenge || 00.. and the command header header[hdr_off:hdr_off+5] padded
        (ISO 9797-1 m. 2) to the cipher block (8 for 3DES, 16 for SM4 [INF §10.1]). MAC in
        self.out[0:4]."""
        c = self.cmd
        sm4 = alg == _ALG_SM4
        if not _BLOCK_KEEPS_SESSION:
            self.session_tag = 0  # no torn tap's 8072 goes to this PSAM any more
        apdu.header(c, 0x80, 0x1A, _BLOCK_KEY_USAGE, _BLOCK_KEY_SM4 if sm4 else _BLOCK_KEY_VER)
        c[4] = 16
        apdu.copy(c, 5, ef15, ef15_off + 12, 8)
        self._factor2(c, 13, ef15, ef15_off)
        self._x(21)
        bs = 16 if sm4 else 8
        apdu.header(c, 0x80, 0xFA, 0x05, 0x00)
        c[4] = 2 * bs
        apdu.copy(c, 5, challenge, ch_off, 4)
        for i in range(9, 5 + 2 * bs):
            c[i] = 0
        apdu.copy(c, 5 + bs, header, hdr_off, 5)
        c[10 + bs] = 0x80
        c[5 + 2 * bs] = 4
        if self._x(6 + 2 * bs) < 4:
            raise SamError(0x9000, 0xFA)
        apdu.copy(self.out, 0, self.resp, 0, 4)
