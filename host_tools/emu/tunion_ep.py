# emu.tunion_ep: the T-Union card's electronic-purse and secure-messaging commands.
# SPDX-License-Identifier: MIT
#
# Common subset. Split from emu.tunion_card so each module compiles inside the 128k
# MicroPython heap; every function here is a TUnionCard command handler
# handler(card, cmd, p1, p2, data, le, challenge) -> response bytes (card-protocol.md §3).
# Status words, file sizes and the [INF] blocked-card answers are defined here once.
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


# ---- EP commands (§3) -------------------------------------------------------------------
def _ep_state(self):
    if not self._selected:
        return SW_CONDITIONS
    if self.blocked:
        return SW_TXN_BLOCKED
    return 0

def get_balance(self, cmd, p1, p2, data, le, ch):
    if not self._selected:
        return _sw(SW_CONDITIONS)
    if p2 != 0x02 or p1 > 3:
        return _sw(SW_P1P2)
    if data or le is None:
        return _sw(SW_WRONG_LENGTH)
    # §3: P1 00 balance, 01 overdraft limit, 02 used overdraft, 03 available excl. overdraft
    v = (self.balance, self.overdraft_limit, 0, self.balance)[p1]
    return _out(v.to_bytes(4, "big"), le)

def initialize(self, cmd, p1, p2, data, le, ch):
    s = _ep_state(self)
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

def update_cache(self, cmd, p1, p2, data, le, ch):
    s = _ep_state(self)
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

def debit(self, cmd, p1, p2, data, le, ch):
    s = _ep_state(self)
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
    # a local-issuer (MOHURD) card appends its 80CA authentication code (§5.5)
    if crypto.purchase_mac1(self.alg, sespk, amount4, ttype, terminal, dt, self.auth_code) != mac1:
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

def credit(self, cmd, p1, p2, data, le, ch):
    s = _ep_state(self)
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

def prove(self, cmd, p1, p2, data, le, ch):
    s = _ep_state(self)
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
# BLOCK is checked with the block key (DAMK, "maintenance"), UNBLOCK with the card's own
# unblock key: an unblock MAC made with the block key is refused with 6988, as real cards do.
def _sm_check(self, cmd, data, ch, usage):
    if len(data) != 4:
        return SW_WRONG_LENGTH
    if ch is None:
        return SW_CONDITIONS  # no GET CHALLENGE right before
    want = crypto.sm_mac(self.alg, self.keys[usage], cmd[:5], ch)
    if want != data:
        return SW_SM_MAC
    return 0

def app_block(self, cmd, p1, p2, data, le, ch):
    if not self._selected:
        return _sw(SW_CONDITIONS)
    if p1 != 0 or p2 not in (0, 1):
        return _sw(SW_P1P2)
    s = _sm_check(self, cmd, data, ch, "maintenance")
    if s:
        return _sw(s)
    self.blocked = BLOCK_PERM if p2 == 1 else max(self.blocked, BLOCK_TEMP)
    return _sw(SW_OK)

def app_unblock(self, cmd, p1, p2, data, le, ch):
    if not self._selected:
        return _sw(SW_CONDITIONS)
    if p1 != 0 or p2 != 0:
        return _sw(SW_P1P2)
    if self.blocked == BLOCK_PERM:
        return _sw(SW_PERM_LOCKED)
    s = _sm_check(self, cmd, data, ch, "unblock")
    if s:
        return _sw(s)
    self.blocked = BLOCK_NONE
    return _sw(SW_OK)


EP_COMMANDS = {
    0x5C: get_balance,
    0x50: initialize,
    0xDC: update_cache,
    0x54: debit,
    0x52: credit,
    0x5A: prove,
}
SM_COMMANDS = {
    0x1E: app_block,
    0x18: app_unblock,
}
