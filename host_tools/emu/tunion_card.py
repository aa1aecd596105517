# emu.tunion_card: a strict T-Union (JT/T 978) electronic-purse CPU card, APDU level.
# SPDX-License-Identifier: MIT
#
# Common subset. Implements card-protocol.md §1-§6 with real crypto (emu.crypto) and the
# RF-field contract of emu.field (kind/uid/atqa/sak/ats, apdu(), deselect(), CardGone).
# Strict like Keyple's StubSmartCard: anything not understood is an error status word,
# never a guess, and nothing but CardGone ever escapes apdu(). README.md lists every SW.
#
# Backend API for tests: arm_tear("before_commit"|"after_commit") for the next DEBIT,
# tear_after(n) (card leaves the field on the n-th next APDU), to_dict()/from_dict().
from emu import crypto
from emu.field import CardGone

AID_EP = bytes.fromhex("A000000632010105")  # §1 MOT_T_EP
PPSE = b"2PAY.SYS.DDF01"
LABEL_EP = b"MOT_T_EP"

BLOCK_NONE = 0
BLOCK_TEMP = 1  # 841E P2=00 [INF §10.8]
BLOCK_PERM = 2  # 841E P2=01

# [INF §10.8] what a blocked card says. One constant each.
SW_SELECT_BLOCKED = 0x6283  # temporarily blocked: FCI + 6283 (S5 treats as blacklisted)
SW_PERM_LOCKED = 0x9303  # permanently locked: SELECT answers 9303 without FCI
SW_TXN_BLOCKED = 0x9303  # INIT/DEBIT/CREDIT/PROVE/DC on a blocked application

SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_NO_CURRENT_EF = 0x6986
SW_INCOMPATIBLE_FILE = 0x6981
SW_CONDITIONS = 0x6985
SW_SM_MAC = 0x6988  # [INF] ISO 7816-4 incorrect secure-messaging data (bad 841E/8418 MAC)
SW_BAD_DATA = 0x6A80
SW_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_P1P2 = 0x6A86
SW_OFFSET = 0x6B00
SW_INS = 0x6D00
SW_CLA = 0x6E00
SW_INSUFFICIENT = 0x9401
SW_MAC = 0x9302
SW_KEY_INDEX = 0x9403  # [INF] PBOC "key index not supported"
SW_NO_PROVE = 0x9406

EF18_RECORDS = 10  # §2.4
EF18_LEN = 23
EF1E_RECORDS = 30  # §2.6
EF1E_LEN = 48
EF1A_LEN = 128  # §2.5

TEAR_MODES = ("before_commit", "after_commit")

_SERIAL_OFF = 12  # §2.1 EF15[12..19]: diversification factor 1


def _sw(sw):
    return bytes((sw >> 8, sw & 0xFF))


def _u32(b):
    return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]


def _h(b):
    return bytes(b).hex()


def _tlv(tag, value):
    return bytes(tag) + bytes((len(value),)) + bytes(value)


class _Rng:
    """xorshift32: deterministic challenges/randoms so a scenario replays exactly."""

    def __init__(self, state):
        self.s = (state & 0xFFFFFFFF) or 0x1234567

    def next4(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x.to_bytes(4, "big")


def _parse(cmd):
    """ISO 7816-4 short APDU -> (data, le) with le None when absent, 256 for 00; or SW int."""
    n = len(cmd)
    if n < 4:
        return SW_WRONG_LENGTH
    if n == 4:
        return (b"", None)
    if n == 5:
        return (b"", cmd[4] or 256)
    lc = cmd[4]
    if lc == 0:  # extended-length APDUs are not supported by the card
        return SW_WRONG_LENGTH
    if n == 5 + lc:
        return (bytes(cmd[5:]), None)
    if n == 6 + lc:
        return (bytes(cmd[5 : 5 + lc]), cmd[-1] or 256)
    return SW_WRONG_LENGTH


def _out(data, le):
    """Response data against Le: absent or 00 takes all; any other mismatch -> 6Cxx."""
    if le is None or le == 256 or le == len(data):
        return bytes(data) + b"\x90\x00"
    return bytes((0x6C, len(data) & 0xFF))


class TUnionCard:
    """A T-Union EP card. `keys`: card keys already diversified (see emu.issuer.card_keys):
    {"purchase": DPK, "tac": DTK, "load": DLK, "maintenance": DAMK}, 16 bytes (or hex) each.
    """

    def __init__(
        self,
        ef15,
        keys,
        alg=crypto.ALG_3DES,
        balance=0,
        offline_atc=0,
        online_atc=0,
        ef16=None,
        ef17=None,
        capp=True,
        capp_records=(1, 2),
        blocked=BLOCK_NONE,
        key_index=1,
        key_version=1,
        overdraft_limit=0,
        fci_ef15=True,
        kind="A",
        uid=None,
        phone=False,
        seed=1,
    ):
        if len(ef15) != 30:
            raise ValueError("EF15 is 30 bytes")
        self.ef15 = bytes(ef15)
        self.keys = {}
        for k in ("purchase", "tac", "load", "maintenance"):
            v = keys[k]
            self.keys[k] = bytes.fromhex(v) if isinstance(v, str) else bytes(v)
        self.alg = alg
        self.balance = balance
        self.offline_atc = offline_atc
        self.online_atc = online_atc
        self.ef16 = bytes(ef16) if ef16 is not None else bytes(55)
        self.ef17 = bytes(ef17) if ef17 is not None else bytes(60)
        self.capp = capp
        self.ef1a = {}
        if capp:
            for n in capp_records:
                r = bytearray(EF1A_LEN)
                r[0] = 0x27
                r[1] = n
                r[2] = 0x7D
                r[3] = 1  # application valid (§2.5)
                r[4] = 1  # interconnect transaction
                self.ef1a[n] = bytes(r)
        self.ef18 = []  # newest first (record 1), at most EF18_RECORDS
        self.ef1e = []  # newest first, at most EF1E_RECORDS
        self.blocked = blocked
        self.key_index = key_index
        self.key_version = key_version
        self.overdraft_limit = overdraft_limit
        self.fci_ef15 = fci_ef15
        self.phone = phone
        self.last = None  # (type, atc_after, mac2, tac) of the last completed transaction
        self._rng = _Rng(seed)
        self.kind = kind
        if uid is None:
            uid = self._rng.next4()
            if phone:  # HCE: random UID, UID0 = 08 (ISO 14443-3 §6.4.4)
                uid = b"\x08" + uid[1:]
            elif kind == "A":
                uid = b"\x04" + uid[1:] + self._rng.next4()[:3]  # 7-byte NXP-style UID
        self.uid = bytes(uid)
        self._set_rf()
        self._tear = None
        self._tear_n = 0
        self.apdus = 0  # commands answered (tests / statistics)
        self.deselect()

    def _set_rf(self):
        if self.kind == "B":
            self.atqb = b"\x50" + self.uid[:4] + b"\x00\x00\x00\x00" + b"\x00\x81\x71"
            self.attrib_resp = b"\x00"
            self.atqa = b""
            self.sak = 0
            self.ats = b""
            return
        # ATQA as sent on air, LSB first: bit 7..6 = UID size (single/double)
        self.atqa = b"\x04\x00" if len(self.uid) == 4 else b"\x44\x00"
        self.sak = 0x20  # ISO 14443-4 compliant, §8
        # ATS: TL T0(FSCI=8, TA TB TC) TA TB(FWI 7, SFGI 0) TC; phones send a longer one
        self.ats = b"\x05\x78\x80\x70\x02" if not self.phone else b"\x05\x78\x80\x80\x02"
        self.atqb = b""
        self.attrib_resp = b""

    # ---- backend API ---------------------------------------------------------------------
    def deselect(self):
        self._selected = False  # EP ADF selected
        self._init = None  # pending INITIALIZE (purchase or load)
        self._cache1e = None
        self._cache1a = None
        self._challenge = None

    def arm_tear(self, mode):
        """Next DEBIT loses the card: before it commits, or after (response lost)."""
        if mode not in TEAR_MODES:
            raise ValueError("tear mode: " + str(mode))
        self._tear = mode

    def tear_after(self, n):
        """The card leaves the field when the n-th next APDU arrives (n >= 1)."""
        self._tear_n = n

    @property
    def serial8(self):
        return self.ef15[_SERIAL_OFF : _SERIAL_OFF + 8]

    @property
    def issuer_id8(self):
        return self.ef15[0:8]

    def reroll_uid(self):
        """A phone presents a fresh random UID at each tap."""
        if self.phone:
            self.uid = b"\x08" + self._rng.next4()[1:]

    # ---- APDU entry ----------------------------------------------------------------------
    def apdu(self, cmd):
        if self._tear_n:
            self._tear_n -= 1
            if self._tear_n == 0:
                self.deselect()
                raise CardGone()
        self.apdus += 1
        try:
            return self._apdu(bytes(cmd))
        except CardGone:
            self.deselect()
            raise
        except Exception:  # strictness: an internal slip must still look like a card error
            self._init = None
            return _sw(0x6F00)

    def _apdu(self, cmd):
        p = _parse(cmd)
        if isinstance(p, int):
            return _sw(p)
        data, le = p
        cla, ins, p1, p2 = cmd[0], cmd[1], cmd[2], cmd[3]
        h = None
        if cla == 0x00:
            h = _ISO.get(ins)
        elif cla == 0x80:
            h = _EP.get(ins)
        elif cla == 0x84:
            h = _SM.get(ins)
        else:
            return _sw(SW_CLA)
        if h is None:
            return _sw(SW_INS)
        if ins not in (0xDC, 0x54, 0x52):  # §9: INIT -> [80DC] -> 8054 (or 8052), nothing else
            self._init = None
            self._cache1e = self._cache1a = None
        # A challenge is good for the very next command only (secure messaging, §5.1).
        challenge, self._challenge = self._challenge, None
        return h(self, cmd, p1, p2, data, le, challenge)

    # ---- ISO commands ----------------------------------------------------------------------
    def _fci(self):
        a5 = _tlv(b"\x50", LABEL_EP) + _tlv(b"\x87", b"\x02") + _tlv(b"\x9f\x08", b"\x02")
        if self.fci_ef15:
            a5 += _tlv(b"\x9f\x0c", self.ef15)  # §1: 9F0C = EF15
        return _tlv(b"\x6f", _tlv(b"\x84", AID_EP) + _tlv(b"\xa5", a5))

    def _ppse(self):
        entry = _tlv(b"\x4f", AID_EP) + _tlv(b"\x50", LABEL_EP) + _tlv(b"\x87", b"\x02")
        bf0c = _tlv(b"\xbf\x0c", _tlv(b"\x61", entry))  # §1 / S17 directory entry
        return _tlv(b"\x6f", _tlv(b"\x84", PPSE) + _tlv(b"\xa5", bf0c))

    def _select(self, cmd, p1, p2, data, le, ch):
        if p1 != 0x04 or p2 != 0x00:
            return _sw(SW_P1P2)
        if not data:
            return _sw(SW_WRONG_LENGTH)
        if data == PPSE:
            self._selected = False
            return _out(self._ppse(), le)
        if data != AID_EP:
            return _sw(SW_NOT_FOUND)
        if self.blocked == BLOCK_PERM:
            self._selected = False
            return _sw(SW_PERM_LOCKED)
        self._selected = True
        r = _out(self._fci(), le)
        if self.blocked and r[-2:] == b"\x90\x00":
            return r[:-2] + _sw(SW_SELECT_BLOCKED)
        return r

    def _binary_file(self, sfi):
        if sfi == 0x15:
            return self.ef15
        if sfi == 0x16:
            return self.ef16
        if sfi == 0x17:
            return self.ef17
        return None

    def _record_file(self, sfi):
        if sfi == 0x18:
            return self.ef18
        if sfi == 0x1E:
            return self.ef1e
        if sfi == 0x1A and self.capp:
            return self.ef1a
        return None

    def _read_binary(self, cmd, p1, p2, data, le, ch):
        if not self._selected:
            return _sw(SW_CONDITIONS)
        if data or le is None:
            return _sw(SW_WRONG_LENGTH)
        if not (p1 & 0x80):
            return _sw(SW_NO_CURRENT_EF)  # offset form needs a current EF: none kept
        if p1 & 0x60:
            return _sw(SW_P1P2)
        sfi = p1 & 0x1F
        f = self._binary_file(sfi)
        if f is None:
            other = self._record_file(sfi) is not None
            return _sw(SW_INCOMPATIBLE_FILE if other else SW_NOT_FOUND)
        if p2 >= len(f):
            return _sw(SW_OFFSET)
        rest = len(f) - p2
        if le == 256:
            return f[p2:] + b"\x90\x00"
        if le > rest:
            return bytes((0x6C, rest))
        return f[p2 : p2 + le] + b"\x90\x00"

    def _read_record(self, cmd, p1, p2, data, le, ch):
        if not self._selected:
            return _sw(SW_CONDITIONS)
        if data or le is None:
            return _sw(SW_WRONG_LENGTH)
        if (p2 & 7) != 4 or p1 == 0:
            return _sw(SW_P1P2)  # only "record P1" addressing by SFI (§2)
        sfi = p2 >> 3
        f = self._record_file(sfi)
        if f is None:
            other = self._binary_file(sfi) is not None
            return _sw(SW_INCOMPATIBLE_FILE if other else SW_NOT_FOUND)
        if sfi == 0x1A:
            rec = f.get(p1)
        else:
            rec = f[p1 - 1] if p1 <= len(f) else None
        if rec is None:
            return _sw(SW_RECORD_NOT_FOUND)
        if le != 256 and le != len(rec):
            return bytes((0x6C, len(rec)))  # §2: resend with Le = xx
        return rec + b"\x90\x00"

    def _get_challenge(self, cmd, p1, p2, data, le, ch):
        if p1 or p2:
            return _sw(SW_P1P2)
        if data or le not in (4, 8):
            return _sw(SW_WRONG_LENGTH)
        c = self._rng.next4()
        if le == 8:
            c += self._rng.next4()
        self._challenge = c[:4]  # secure messaging IV = challenge(4) || 00.. (§5.1)
        return c + b"\x90\x00"

    # ---- EP commands (§3) -------------------------------------------------------------------
    def _ep_state(self):
        if not self._selected:
            return SW_CONDITIONS
        if self.blocked:
            return SW_TXN_BLOCKED
        return 0

    def _get_balance(self, cmd, p1, p2, data, le, ch):
        if not self._selected:
            return _sw(SW_CONDITIONS)
        if p2 != 0x02 or p1 > 3:
            return _sw(SW_P1P2)
        if data or le is None:
            return _sw(SW_WRONG_LENGTH)
        # §3: P1 00 balance, 01 overdraft limit, 02 used overdraft, 03 available excl. overdraft
        v = (self.balance, self.overdraft_limit, 0, self.balance)[p1]
        return _out(v.to_bytes(4, "big"), le)

    def _initialize(self, cmd, p1, p2, data, le, ch):
        s = self._ep_state()
        if s:
            return _sw(s)
        if p2 != 0x02 or p1 not in (0x00, 0x01, 0x03):
            return _sw(SW_P1P2)
        if p1 == 0x03 and not self.capp:
            return _sw(SW_P1P2)  # no compound file: terminal falls back to P1=01 (type 06)
        if len(data) != 11:
            return _sw(SW_WRONG_LENGTH)
        if data[0] != self.key_index:
            return _sw(SW_KEY_INDEX)
        amount = _u32(data[1:5])
        terminal = data[5:11]
        rnd = self._rng.next4()
        if p1 == 0x00:  # INITIALIZE FOR LOAD (§3, §5.4)
            if self.balance + amount > 0x7FFFFFFF:
                return _sw(SW_BAD_DATA)
            atc = self.online_atc.to_bytes(2, "big")
            seslk = crypto.load_session_key(self.alg, self.keys["load"], rnd, atc)
            mac1 = crypto.load_mac1(
                self.alg, seslk, self.balance.to_bytes(4, "big"), data[1:5], terminal
            )
            self._init = ("load", amount, terminal, rnd, seslk)
            resp = self.balance.to_bytes(4, "big") + atc + bytes((self.key_version, self.alg))
            return _out(resp + rnd + mac1, le)
        if amount > self.balance:
            return _sw(SW_INSUFFICIENT)
        ttype = 0x09 if p1 == 0x03 else 0x06
        self._init = ("purchase", amount, terminal, rnd, ttype)
        resp = self.balance.to_bytes(4, "big") + self.offline_atc.to_bytes(2, "big")
        resp += self.overdraft_limit.to_bytes(3, "big") + bytes((self.key_version, self.alg))
        return _out(resp + rnd, le)

    def _update_cache(self, cmd, p1, p2, data, le, ch):
        s = self._ep_state()
        if s:
            return _sw(s)
        if not self.capp:
            return _sw(SW_INS)
        if self._init is None or self._init[0] != "purchase" or self._init[4] != 0x09:
            return _sw(SW_CONDITIONS)  # only inside a CAPP purchase (§3)
        if p2 == 0xF0:  # EF1E, §2.6
            if p1 != 0:
                return _sw(SW_P1P2)
            if len(data) != EF1E_LEN:
                return _sw(SW_WRONG_LENGTH)
            self._cache1e = data
            return _sw(SW_OK)
        if p2 == 0xD0:  # EF1A record P1, §2.5
            if len(data) != EF1A_LEN:
                return _sw(SW_WRONG_LENGTH)
            if p1 not in self.ef1a:
                return _sw(SW_RECORD_NOT_FOUND)
            if data[0] != 0x27 or data[1] != p1:
                return _sw(SW_BAD_DATA)  # record ID 27 0N must name the record written
            self._cache1a = (p1, data)
            return _sw(SW_OK)
        return _sw(SW_P1P2)

    def _debit(self, cmd, p1, p2, data, le, ch):
        s = self._ep_state()
        if s:
            return _sw(s)
        if p1 != 0x01 or p2 != 0x00:
            return _sw(SW_P1P2)
        if len(data) != 15:
            return _sw(SW_WRONG_LENGTH)
        if le is not None and le != 256 and le != 8:
            return _sw(0x6C08)
        init = self._init
        if init is None or init[0] != "purchase":
            return _sw(SW_CONDITIONS)
        _, amount, terminal, rnd, ttype = init
        cache1e, cache1a = self._cache1e, self._cache1a
        self._init = None
        self._cache1e = self._cache1a = None
        ttsn, dt, mac1 = data[0:4], data[4:11], data[11:15]
        atc = self.offline_atc.to_bytes(2, "big")
        amount4 = amount.to_bytes(4, "big")
        sespk = crypto.purchase_session_key(self.alg, self.keys["purchase"], rnd, atc, ttsn)
        if crypto.purchase_mac1(self.alg, sespk, amount4, ttype, terminal, dt) != mac1:
            return _sw(SW_MAC)  # §3: 9302, card did not debit
        tear, self._tear = self._tear, None
        if tear == "before_commit":
            raise CardGone()
        mac2 = crypto.purchase_mac2(self.alg, sespk, amount4)
        tac = crypto.purchase_tac(self.alg, self.keys["tac"], amount4, ttype, terminal, ttsn, dt)
        # Commit: every change below happens together or not at all (§6 simulator reqs).
        atc_after = (self.offline_atc + 1) & 0xFFFF
        rec = atc_after.to_bytes(2, "big") + bytes(3) + amount4 + bytes((ttype,)) + terminal + dt
        ef18 = [rec] + self.ef18[: EF18_RECORDS - 1]
        ef1e = self.ef1e
        if cache1e is not None:
            ef1e = [cache1e] + self.ef1e[: EF1E_RECORDS - 1]
        self.balance -= amount
        self.offline_atc = atc_after
        self.ef18 = ef18
        self.ef1e = ef1e
        if cache1a is not None:
            self.ef1a[cache1a[0]] = cache1a[1]
        self.last = (ttype, atc_after, mac2, tac)
        if tear == "after_commit":
            raise CardGone()
        return tac + mac2 + b"\x90\x00"  # §3: TAC then MAC2

    def _credit(self, cmd, p1, p2, data, le, ch):
        s = self._ep_state()
        if s:
            return _sw(s)
        if p1 != 0x00 or p2 != 0x00:
            return _sw(SW_P1P2)
        if len(data) != 11:
            return _sw(SW_WRONG_LENGTH)
        if le is not None and le != 256 and le != 4:
            return _sw(0x6C04)
        init = self._init
        self._init = None
        if init is None or init[0] != "load":
            return _sw(SW_CONDITIONS)
        _, amount, terminal, rnd, seslk = init
        amount4 = amount.to_bytes(4, "big")
        dt, mac2 = data[0:7], data[7:11]
        if crypto.load_mac2(self.alg, seslk, amount4, terminal, dt) != mac2:
            return _sw(SW_MAC)
        nb = (self.balance + amount).to_bytes(4, "big")
        atc = self.online_atc.to_bytes(2, "big")
        tac = crypto.load_tac(self.alg, self.keys["tac"], nb, atc, amount4, terminal, dt)
        atc_after = (self.online_atc + 1) & 0xFFFF
        rec = atc_after.to_bytes(2, "big") + bytes(3) + amount4 + b"\x02" + terminal + dt
        self.ef18 = [rec] + self.ef18[: EF18_RECORDS - 1]
        self.balance += amount
        self.online_atc = atc_after
        # [INF] GET TRANSACTION PROVE for a load answers the host MAC2 it accepted, then TAC
        self.last = (0x02, atc_after, bytes(mac2), tac)
        return tac + b"\x90\x00"

    def _prove(self, cmd, p1, p2, data, le, ch):
        s = self._ep_state()
        if s:
            return _sw(s)
        if p1 != 0x00 or p2 not in (0x02, 0x06, 0x09):
            return _sw(SW_P1P2)
        if len(data) != 2:
            return _sw(SW_WRONG_LENGTH)
        atc = (data[0] << 8) | data[1]
        last = self.last
        if last is None or last[0] != p2 or last[1] != atc:
            return _sw(SW_NO_PROVE)  # §6: no such completed transaction
        return _out(last[2] + last[3], le)  # §3: MAC2 then TAC

    # ---- secure messaging: APPLICATION BLOCK / UNBLOCK (§3, §5.1) -----------------------
    def _sm_check(self, cmd, data, ch):
        if len(data) != 4:
            return SW_WRONG_LENGTH
        if ch is None:
            return SW_CONDITIONS  # no GET CHALLENGE right before
        want = crypto.sm_mac(self.alg, self.keys["maintenance"], cmd[:5], ch)
        if want != data:
            return SW_SM_MAC
        return 0

    def _app_block(self, cmd, p1, p2, data, le, ch):
        if not self._selected:
            return _sw(SW_CONDITIONS)
        if p1 != 0 or p2 not in (0, 1):
            return _sw(SW_P1P2)
        s = self._sm_check(cmd, data, ch)
        if s:
            return _sw(s)
        self.blocked = BLOCK_PERM if p2 == 1 else max(self.blocked, BLOCK_TEMP)
        return _sw(SW_OK)

    def _app_unblock(self, cmd, p1, p2, data, le, ch):
        if not self._selected:
            return _sw(SW_CONDITIONS)
        if p1 != 0 or p2 != 0:
            return _sw(SW_P1P2)
        if self.blocked == BLOCK_PERM:
            return _sw(SW_PERM_LOCKED)
        s = self._sm_check(cmd, data, ch)
        if s:
            return _sw(s)
        self.blocked = BLOCK_NONE
        return _sw(SW_OK)

    # ---- persistence -----------------------------------------------------------------------
    def to_dict(self):
        d = {
            "version": 1,
            "kind": self.kind,
            "uid": _h(self.uid),
            "phone": self.phone,
            "alg": self.alg,
            "keys": {k: _h(v) for k, v in self.keys.items()},
            "ef15": _h(self.ef15),
            "ef16": _h(self.ef16),
            "ef17": _h(self.ef17),
            "balance": self.balance,
            "offline_atc": self.offline_atc,
            "online_atc": self.online_atc,
            "overdraft_limit": self.overdraft_limit,
            "key_index": self.key_index,
            "key_version": self.key_version,
            "capp": self.capp,
            "fci_ef15": self.fci_ef15,
            "blocked": self.blocked,
            "ef18": [_h(r) for r in self.ef18],
            "ef1e": [_h(r) for r in self.ef1e],
            "ef1a": {str(n): _h(r) for n, r in self.ef1a.items()},
            "last": None,
            "rng": self._rng.s,
        }
        if self.last is not None:
            t, a, m, c = self.last
            d["last"] = {"type": t, "atc_after": a, "mac2": _h(m), "tac": _h(c)}
        return d

    @classmethod
    def from_dict(cls, d):
        h = bytes.fromhex
        c = cls(
            h(d["ef15"]),
            d["keys"],
            alg=d["alg"],
            balance=d["balance"],
            offline_atc=d["offline_atc"],
            online_atc=d["online_atc"],
            ef16=h(d["ef16"]),
            ef17=h(d["ef17"]),
            capp=d["capp"],
            capp_records=(),
            blocked=d["blocked"],
            key_index=d["key_index"],
            key_version=d["key_version"],
            overdraft_limit=d["overdraft_limit"],
            fci_ef15=d["fci_ef15"],
            kind=d["kind"],
            uid=h(d["uid"]),
            phone=d["phone"],
            seed=d["rng"],
        )
        c.ef18 = [h(r) for r in d["ef18"]]
        c.ef1e = [h(r) for r in d["ef1e"]]
        c.ef1a = {}
        for n, r in d["ef1a"].items():
            c.ef1a[int(n)] = h(r)
        last = d.get("last")
        if last:
            c.last = (last["type"], last["atc_after"], h(last["mac2"]), h(last["tac"]))
        return c


_ISO = {
    0xA4: TUnionCard._select,
    0xB0: TUnionCard._read_binary,
    0xB2: TUnionCard._read_record,
    0x84: TUnionCard._get_challenge,
}
_EP = {
    0x5C: TUnionCard._get_balance,
    0x50: TUnionCard._initialize,
    0xDC: TUnionCard._update_cache,
    0x54: TUnionCard._debit,
    0x52: TUnionCard._credit,
    0x5A: TUnionCard._prove,
}
_SM = {
    0x1E: TUnionCard._app_block,
    0x18: TUnionCard._app_unblock,
}
