# emu.psam: a MOT PSAM (application DF 8011), APDU level, with real 3DES/SM4 crypto.
# SPDX-License-Identifier: MIT
#
# Common subset. card-protocol.md §4: EF15 serial, EF16 terminal number, DF 8011 with EF17
# key index, 8070 MAC1 (two-level diversification, TTSN), 8072 MAC2 check, 801A/80FA for
# the APPLICATION BLOCK secure-messaging MAC. Put it behind emu.t0.T0Card for the byte
# stream. A "wrong PSAM" is a Psam built with other master keys (emu.issuer.wrong_keys).
# Psam(..., app="local") is the city's own (MOHURD "住建部") PSAM for local-issuer cards:
# its application DF is DF_LOCAL, and its 8070 takes the MOHURD layout (LOCAL_* below).
# Strict: unknown or malformed commands answer an error SW; apdu() never raises.
from emu import crypto

DF_MOT = b"\x80\x11"
MF = b"\x3f\x00"

# ---- the local-issuer (MOHURD) PSAM, app="local" -------------------------------------------
# [INF] its application DF: not in any source; one constant (firmware: sam.psam DF_LOCAL).
DF_LOCAL = b"\x10\x01"
# §4 "MOHURD PSAMs in S5/S7" [C2]: 8070 factor 2 = cityCode(2) FF 00 00 00 00 00.
LOCAL_F2_TAIL = b"\xff\x00\x00\x00\x00\x00"
# [INF] §5.5 puts the card's 9-byte 80CA authentication code into MAC1; the 36-byte MOT
# layout has no room for it, so the local PSAM takes it appended: Lc 0x24 + 9 = 0x2D.
LOCAL_AUTH_LEN = 9
LOCAL_MAC1_LC = 0x24 + LOCAL_AUTH_LEN

# [INF §10.6] TTSN is incremented by every 8070 (before use): the first MAC1 after
# Psam(ttsn=n) carries n + 1. One constant so the other choice (at 8072) is one edit.
TTSN_INCREMENT_AT_8070 = True
SW_MAC2_BAD = 0x9302  # [INF] 8072 answer when MAC2 does not verify (9000 when it does)

# 801A P1 = key usage, P2 = key id (§4: T-Union application block uses 80 1A 45 02).
USAGE_MAINTENANCE = 0x45
P2_BLOCK_3DES = 0x02
P2_BLOCK_SM4 = 0x04  # [INF] SM4 family maintenance key id, mirrors the SM4 algorithm ID

SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_CONDITIONS = 0x6985
SW_BAD_DATA = 0x6A80
SW_NOT_FOUND = 0x6A82
SW_P1P2 = 0x6A86
SW_KEY_NOT_FOUND = 0x6A88
SW_OFFSET = 0x6B00
SW_INS = 0x6D00
SW_CLA = 0x6E00

# (CLA, INS) the PSAM answers, with the ISO 7816-3 case the T=0 engine needs:
# 2 = outgoing (P3 is Le), 3 = incoming data (the PSAM may then answer 61xx).
COMMANDS = (
    (0x00, 0xA4, 3),
    (0x00, 0xB0, 2),
    (0x80, 0x70, 3),
    (0x80, 0x72, 3),
    (0x80, 0x1A, 3),
    (0x80, 0xFA, 3),
)


def _sw(sw):
    return bytes((sw >> 8, sw & 0xFF))


def command_case(cla, ins):
    """ISO 7816-3 case of a supported command, 0 if the PSAM does not know it."""
    for c, i, k in COMMANDS:
        if c == cla and i == ins:
            return k
    return 0


class Psam:
    """MOT PSAM. master_keys: the test key file object {"3des": {...}, "sm4": {...}}
    (emu.issuer.load_master_keys()); only "purchase" and "maintenance" are used (the TAC
    key stays with the clearing centre). app="local": the local issuer's PSAM (DF_LOCAL,
    8070 Lc LOCAL_MAC1_LC with the MOHURD factor 2 and the card's auth code); give it
    emu.issuer.local_master_keys(keys)."""

    def __init__(
        self,
        master_keys,
        terminal_no=b"\x00\x00\x00\x12\x34\x56",
        serial=b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01",
        key_index=1,
        key_version=1,
        ttsn=0,
        issuer_id=b"\x02\x00\x29\x00\xff\xff\xff\xff",
        app="mot",
    ):
        if len(terminal_no) != 6 or len(serial) != 10:
            raise ValueError("terminal number is 6 bytes, serial 10")
        if app not in ("mot", "local"):
            raise ValueError("PSAM application: mot or local")
        self.keys = master_keys
        self.local = app == "local"
        self.df = DF_LOCAL if self.local else DF_MOT
        self.terminal_no = bytes(terminal_no)
        self.key_index = key_index
        self.key_version = key_version
        self.ttsn = ttsn
        self.ef15 = bytes(serial)  # §4 step 2: PSAM serial
        self.ef16 = self.terminal_no  # §4 step 3: terminal number
        # §4 step 5 / S18: keyIdx(1) issuerId(8) receiverId(8) startDate(4) endDate(4)
        self.ef17 = (
            bytes((key_index,))
            + bytes(issuer_id)
            + bytes(issuer_id)
            + b"\x20\x24\x01\x01"
            + b"\x20\x34\x12\x31"
        )
        self.apdus = 0
        self.reset()

    def reset(self):
        """Cold/warm reset: back to MF, sessions dropped (TTSN is persistent)."""
        self._df = False
        self._purchase = None  # (alg, sespk, amount4) of the last 8070
        self._sm = None  # (alg, key) after 801A

    def _mk(self, alg, usage):
        return crypto.master_key(self.keys, alg, usage)

    def apdu(self, cmd):
        cmd = bytes(cmd)
        self.apdus += 1
        try:
            return self._apdu(cmd)
        except Exception:  # a slip of ours must still look like a PSAM error
            return _sw(0x6F00)

    def _apdu(self, cmd):
        n = len(cmd)
        if n < 4:
            return _sw(SW_WRONG_LENGTH)
        cla, ins, p1, p2 = cmd[0], cmd[1], cmd[2], cmd[3]
        if cla not in (0x00, 0x80):
            return _sw(SW_CLA)
        case = command_case(cla, ins)
        if not case:
            return _sw(SW_INS)
        if case == 2:
            if n != 5:
                return _sw(SW_WRONG_LENGTH)
            return self._read_binary(p1, p2, cmd[4] or 256)
        data = b""
        if n > 4:
            lc = cmd[4]
            if n != 5 + lc and not (n == 6 + lc and lc):
                return _sw(SW_WRONG_LENGTH)
            data = cmd[5 : 5 + lc]
        if ins == 0xA4:
            return self._select(p1, p2, data)
        if not self._df:
            return _sw(SW_CONDITIONS)  # MOT application commands live in DF 8011
        if ins == 0x70:
            return self._mac1(p1, p2, data)
        if ins == 0x72:
            return self._mac2(p1, p2, data)
        if ins == 0x1A:
            return self._des_init(p1, p2, data)
        return self._des_mac(p1, p2, data)

    def _select(self, p1, p2, data):
        if p1 != 0x00 or p2 != 0x00:
            return _sw(SW_P1P2)
        if len(data) != 2:
            return _sw(SW_WRONG_LENGTH)
        if data == self.df:
            self._df = True
        elif data == MF:
            self._df = False
        else:
            return _sw(SW_NOT_FOUND)
        self._purchase = self._sm = None
        return _sw(SW_OK)

    def _read_binary(self, p1, p2, le):
        if not (p1 & 0x80) or (p1 & 0x60):
            return _sw(SW_P1P2)
        sfi = p1 & 0x1F
        f = None
        if not self._df and sfi == 0x15:
            f = self.ef15
        elif not self._df and sfi == 0x16:
            f = self.ef16
        elif self._df and sfi == 0x17:
            f = self.ef17
        if f is None:
            return _sw(SW_NOT_FOUND)
        if p2 >= len(f):
            return _sw(SW_OFFSET)
        rest = len(f) - p2
        if le > rest:
            return bytes((0x6C, rest))  # ISO 7816-4: wrong Le, resend with xx
        return f[p2 : p2 + le] + b"\x90\x00"

    def _mac1(self, p1, p2, d):
        """8070 (§4, §5.6): rand(4)@0 ATC(2)@4 amount(4)@6 type@10 datetime(7)@11 keyVer@18
        alg@19 serial8@20 issuer8@28 -> TTSN(4) MAC1(4). (The §4 table's offsets column
        skips two bytes after the ATC; the §5.6 example and the 36-byte length fix these.)"""
        if p1 or p2:
            return _sw(SW_P1P2)
        auth = b""
        if self.local:
            if len(d) != LOCAL_MAC1_LC:
                return _sw(SW_WRONG_LENGTH)
            if d[30:36] != LOCAL_F2_TAIL:
                return _sw(SW_BAD_DATA)  # not a MOHURD factor 2 (§4)
            auth = d[36:45]
        elif len(d) != 0x24:
            return _sw(SW_WRONG_LENGTH)
        alg = d[19]
        if alg != crypto.ALG_3DES and alg != crypto.ALG_SM4:
            return _sw(SW_BAD_DATA)
        if d[18] != self.key_version:
            return _sw(SW_KEY_NOT_FOUND)
        if d[10] not in (0x06, 0x09):
            return _sw(SW_BAD_DATA)
        dpk = crypto.card_key(self._mk(alg, "purchase"), d[28:36], d[20:28], alg)
        if TTSN_INCREMENT_AT_8070:
            self.ttsn = (self.ttsn + 1) & 0xFFFFFFFF
        ttsn = self.ttsn.to_bytes(4, "big")
        sespk = crypto.purchase_session_key(alg, dpk, d[0:4], d[4:6], ttsn)
        mac1 = crypto.purchase_mac1(alg, sespk, d[6:10], d[10], self.terminal_no, d[11:18],
                                    auth)
        self._purchase = (alg, sespk, bytes(d[6:10]))
        return ttsn + mac1 + b"\x90\x00"

    def _mac2(self, p1, p2, d):
        if p1 or p2:
            return _sw(SW_P1P2)
        if len(d) != 4:
            return _sw(SW_WRONG_LENGTH)
        if self._purchase is None:
            return _sw(SW_CONDITIONS)
        alg, sespk, amount4 = self._purchase
        if crypto.purchase_mac2(alg, sespk, amount4) != d:
            return _sw(SW_MAC2_BAD)
        self._purchase = None  # one successful check per 8070
        return _sw(SW_OK)

    def _des_init(self, p1, p2, d):
        """801A: general DES/SM4 init with factor1 = serial8, factor2 = issuer8 (§4)."""
        if p1 != USAGE_MAINTENANCE:
            return _sw(SW_P1P2)
        if p2 == P2_BLOCK_3DES:
            alg = crypto.ALG_3DES
        elif p2 == P2_BLOCK_SM4:
            alg = crypto.ALG_SM4
        else:
            return _sw(SW_KEY_NOT_FOUND)
        if len(d) != 16:
            return _sw(SW_WRONG_LENGTH)
        key = crypto.card_key(self._mk(alg, "maintenance"), d[8:16], d[0:8], alg)
        self._sm = (alg, key)
        return _sw(SW_OK)

    def _des_mac(self, p1, p2, d):
        """80FA P1=05: MAC with initial value over data the terminal has already padded."""
        if p1 != 0x05 or p2 != 0x00:
            return _sw(SW_P1P2)
        if self._sm is None:
            return _sw(SW_CONDITIONS)
        alg, key = self._sm
        bs = crypto.block_size(alg)
        if len(d) < 2 * bs or len(d) % bs:
            return _sw(SW_WRONG_LENGTH)
        return crypto.cbc_mac_raw(alg, key, d[:bs], d[bs:]) + b"\x90\x00"
