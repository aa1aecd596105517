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
from emu.tunion_ep import (  # noqa: F401  (constants re-exported for users of the card)
    _SERIAL_OFF,
    AID_EP,
    BLOCK_NONE,
    BLOCK_PERM,
    BLOCK_TEMP,
    EF1A_LEN,
    EF1E_LEN,
    EF1E_RECORDS,
    EF18_LEN,
    EF18_RECORDS,
    EP_COMMANDS,
    LABEL_EP,
    PPSE,
    SM_COMMANDS,
    SW_BAD_DATA,
    SW_CLA,
    SW_CONDITIONS,
    SW_INCOMPATIBLE_FILE,
    SW_INS,
    SW_INSUFFICIENT,
    SW_KEY_INDEX,
    SW_MAC,
    SW_NO_CURRENT_EF,
    SW_NO_PROVE,
    SW_NOT_FOUND,
    SW_OFFSET,
    SW_OK,
    SW_P1P2,
    SW_PERM_LOCKED,
    SW_RECORD_NOT_FOUND,
    SW_SELECT_BLOCKED,
    SW_SM_MAC,
    SW_TXN_BLOCKED,
    SW_WRONG_LENGTH,
    TEAR_MODES,
    _h,
    _out,
    _parse,
    _sw,
    _tlv,
)
from emu.tunion_iso import ISO_COMMANDS


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


class TUnionCard:
    """A T-Union EP card. `keys`: card keys already diversified (see emu.issuer.card_keys):
    {"purchase": DPK, "tac": DTK, "load": DLK, "maintenance": DAMK (APPLICATION BLOCK),
    "unblock": the application unblock key (APPLICATION UNBLOCK)}, 16 bytes (or hex) each.
    """

    # The application profile; emu.local_card.LocalCard (MOHURD) overrides all four.
    aid = AID_EP
    label = LABEL_EP
    auth_code = b""  # appended to the MAC1 input (§5.5); none on T-Union cards
    commands = EP_COMMANDS

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
        for k in ("purchase", "tac", "load", "maintenance", "unblock"):
            if k not in keys:
                raise ValueError("card keys: no %r key (the card file predates separate "
                                 "block and unblock keys: issue it again)" % k)
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
        # a phone wallet asks for a waiting-time extension before each answer (emu.picc)
        self.wtx = 1 if phone else 0
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
            h = self.commands.get(ins)
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


_ISO = ISO_COMMANDS
_EP = EP_COMMANDS
_SM = SM_COMMANDS
