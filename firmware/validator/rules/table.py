# validator.rules.table: fare-table binary format v1, parsed in place over a memoryview.
# SPDX-License-Identifier: MIT
#
# The format is written down in rules/FORMAT.md (section "Fare table"); this module is its
# only firmware reader. A table is the body of a back-office content container, which
# sync unwraps and verifies (validator.sync.auth): this module never sees the container.
# Parsing validates every count, offset and matrix entry once, at install time, so the
# lookups below (used on the tap path) need no bounds checks and allocate nothing.
# All integers are big-endian. Nothing here is a dict: the MCU keeps one blob + a few ints.
from micropython import const

from validator.errors import SyncError

_FORMAT_VERSION = const(1)
_HEADER_LEN = const(48)
_LINE_LEN = const(12)
_POLICY_LEN = const(8)
_ACCEPT_LEN = const(4)

# header flags (FORMAT.md "flags")
_FLAG_XFER_SAME_LINE = const(1)  # same line, other vehicle (terminal) counts as a transfer
_FLAG_XFER_OTHER_CITY = const(2)  # previous ride acquired in another city counts
_FLAG_BOARD_NEEDS_MAX = const(4)  # boarding a section line needs balance >= priced max fare

# transfer kinds
_XFER_NONE = const(0)
_XFER_AMOUNT_OFF = const(1)
_XFER_PERCENT_OFF = const(2)
_XFER_FREE = const(3)

# missing tap-off policies
_TAPOFF_CHARGE_MAX = const(0)
_TAPOFF_CHARGE_NONE = const(1)

# policy methods / scopes / flags
_PAY_PERCENT = const(0)
_PAY_FIXED = const(1)
_PAY_FREE = const(2)
_PAY_REFUSE = const(3)
_SCOPE_LOCAL = const(0)
_SCOPE_VISITING = const(1)
_SCOPE_ANY = const(2)
_POL_TRANSFER = const(1)
_POL_CAP = const(2)
_ANY_TYPE = const(0xFF)
_ANY_CODE = const(0xFFFF)

# industry codes (card-protocol.md §2.6 EF1E[9])
_IND_RAIL = const(1)
_IND_BUS = const(2)

# what decide() needs read from the card, per line (see needs())
NEED_1E = const(1)  # EF 0x1E record 1 (the newest trip record)
NEED_1A = const(2)  # EF 0x1A record 2 (bus record 2702)

# install outcomes (FareTables.offer)
_T_ACTIVE = const(0)
_T_PENDING = const(1)
_T_BAD_FORMAT = const(-2)


def _u16(b, o):
    return (b[o] << 8) | b[o + 1]


class FareTable:
    """One parsed table. Construct with the verified body; raises SyncError if malformed."""

    def __init__(self, blob):
        b = memoryview(blob)
        n = len(b)
        if n < _HEADER_LEN or bytes(b[0:4]) != b"YKFT":
            raise SyncError("fare table: magic")
        if b[4] != _FORMAT_VERSION or b[5] != _HEADER_LEN:
            raise SyncError("fare table: format version")
        clen = _u16(b, 44) << 16 | _u16(b, 46)  # u32 fields: two u16 reads (no helper to keep)
        if clen > n or clen < _HEADER_LEN:
            raise SyncError("fare table: content length")
        self.blob = blob
        self.b = b
        self.flags = _u16(b, 6)
        self.version = _u16(b, 8) << 16 | _u16(b, 10)
        self.activation = _u16(b, 12) << 16 | _u16(b, 14)
        self.city = _u16(b, 16)
        self.acq = b[18:26]  # memoryview made once: 8-byte acquirer institution ID
        self.xfer_window = _u16(b, 26)
        self.xfer_kind = b[28]
        self.tapoff_policy = b[29]
        self.xfer_value = _u16(b, 30)
        self.cap = _u16(b, 32) << 16 | _u16(b, 34)
        self.day_start = _u16(b, 36) * 60
        self.tapoff_window = _u16(b, 38)
        self.n_lines = b[40]
        self.n_pol = b[41]
        self.n_acc = b[42]
        self.content_len = clen
        if self.xfer_kind > _XFER_FREE or self.tapoff_policy > _TAPOFF_CHARGE_NONE:
            raise SyncError("fare table: transfer/tap-off policy")
        if self.xfer_kind == _XFER_PERCENT_OFF and self.xfer_value > 100:
            raise SyncError("fare table: transfer percent")
        if self.day_start >= 86400:
            raise SyncError("fare table: day start")
        self.o_lines = _HEADER_LEN
        self.o_pol = self.o_lines + self.n_lines * _LINE_LEN
        self.o_acc = self.o_pol + self.n_pol * _POLICY_LEN
        end = self.o_acc + self.n_acc * _ACCEPT_LEN
        if end > clen:
            raise SyncError("fare table: sections overrun")
        prev = -1
        self.any_section = False
        for i in range(self.n_lines):
            o = self.o_lines + i * _LINE_LEN
            lid = _u16(b, o)
            if lid <= prev:
                raise SyncError("fare table: lines not sorted")
            prev = lid
            ind, ns, fare = b[o + 2], b[o + 3], _u16(b, o + 4)
            mo = _u16(b, o + 8) << 16 | _u16(b, o + 10)
            if ind not in (_IND_RAIL, _IND_BUS):
                raise SyncError("fare table: industry")
            if ns == 0:
                if mo != 0:
                    raise SyncError("fare table: flat line with matrix")
                continue
            self.any_section = True
            cells = ns * (ns + 1) // 2
            if mo < end or mo + 2 * cells > clen or mo & 1:
                raise SyncError("fare table: matrix offset")
            hi = 0
            for k in range(cells):
                v = _u16(b, mo + 2 * k)
                if v > hi:
                    hi = v
            if hi != fare:
                raise SyncError("fare table: section max fare != matrix max")
        for i in range(self.n_pol):
            o = self.o_pol + i * _POLICY_LEN
            if b[o + 1] > _SCOPE_ANY or b[o + 2] > _PAY_REFUSE:
                raise SyncError("fare table: policy")
            if b[o + 2] == _PAY_PERCENT and _u16(b, o + 4) > 100:
                raise SyncError("fare table: policy percent")

    # --- lookups (tap path: no allocation) ---

    def line_index(self, line):
        """Index of line id in the sorted line section, or -1."""
        b = self.b
        lo, hi = 0, self.n_lines - 1
        while lo <= hi:
            mid = (lo + hi) >> 1
            v = _u16(b, self.o_lines + mid * _LINE_LEN)
            if v == line:
                return mid
            if v < line:
                lo = mid + 1
            else:
                hi = mid - 1
        return -1

    def line_industry(self, li):
        return self.b[self.o_lines + li * _LINE_LEN + 2]

    def line_stops(self, li):
        """Stop count of a section line; 0 for a flat-fare line."""
        return self.b[self.o_lines + li * _LINE_LEN + 3]

    def line_fare(self, li):
        """Flat fare, or the maximum section fare of a section line (fen)."""
        return _u16(self.b, self.o_lines + li * _LINE_LEN + 4)

    def section_fare(self, li, a, b_):
        """Matrix fare between stops a and b (symmetric upper triangle incl. diagonal)."""
        o = self.o_lines + li * _LINE_LEN
        n = self.b[o + 3]
        if a > b_:
            a, b_ = b_, a
        k = a * n - (a * (a - 1) >> 1) + (b_ - a)
        return _u16(self.b, (_u16(self.b, o + 8) << 16 | _u16(self.b, o + 10)) + 2 * k)

    def policy(self, card_type, local):
        """Offset of the first policy matching (card type, local/visiting); -1 = none."""
        b = self.b
        want = _SCOPE_LOCAL if local else _SCOPE_VISITING
        for i in range(self.n_pol):
            o = self.o_pol + i * _POLICY_LEN
            t = b[o]
            s = b[o + 1]
            if (t == card_type or t == _ANY_TYPE) and (s == want or s == _SCOPE_ANY):
                return o
        return -1

    def accepted(self, org, city):
        """Interconnect whitelist: (issuer org, city) listed, 0xFFFF = wildcard."""
        b = self.b
        for i in range(self.n_acc):
            o = self.o_acc + i * _ACCEPT_LEN
            ao = _u16(b, o)
            ac = _u16(b, o + 2)
            if (ao == org or ao == _ANY_CODE) and (ac == city or ac == _ANY_CODE):
                return True
        return False

    def needs(self, line):
        """Card records decide() wants for a tap on this line (NEED_* bits).

        EF1E record 1 only if transfers are on; EF1A record 2 only when the table has a
        section line (an open boarding may be pending anywhere) or a daily cap (its
        accumulator lives there). A flat-only table with neither needs no READ RECORD.
        """
        m = 0
        if self.xfer_kind != _XFER_NONE:
            m |= NEED_1E
        if self.cap or self.any_section:
            m |= NEED_1A
        return m


class FareTables:
    """Active + pending table; a refused blob never replaces what is active."""

    def __init__(self):
        self.active = None
        self.pending = None

    def offer(self, body, now, version=None):
        """Parse and stage a fare table. Returns T_* (< 0 = refused: nothing changes).

        body is the table (FORMAT.md), e.g. the memoryview sync.auth.verify_content gives
        for a genuine container; the table keeps it, not a copy. version, when given, is
        the container's: the table must say the same. Whether the content is genuine and
        newer than the installed table is decided before, by sync (sync.target). A table
        whose activation time has come becomes active at once; a later one waits in
        `pending`. Sync result code: _T_BAD_FORMAT -> E_CONTENT.
        """
        try:
            t = FareTable(body)
        except (SyncError, IndexError, ValueError):
            return _T_BAD_FORMAT
        if version is not None and t.version != version:
            return _T_BAD_FORMAT  # container and table disagree on the version
        if t.activation <= now:
            self.active = t
            if self.pending is not None and self.pending.version <= t.version:
                self.pending = None
            return _T_ACTIVE
        self.pending = t
        return _T_PENDING

    def current(self, now):
        """The table in force at device time now (promotes a due pending table)."""
        p = self.pending
        if p is not None and p.activation <= now:
            self.active = p
            self.pending = None
        return self.active
