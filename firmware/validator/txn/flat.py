# validator.txn.flat: a flat-fare policy with an interconnect whitelist (the stand-in the
# tap engine uses until the app wires validator.rules.fares.decide in).
# SPDX-License-Identifier: MIT
#
# Policy interface used by txn.transaction: needs() -> NEED_* bits; decide(now, ef15,
# ef17, rec1e, rec1a) -> an object with reason, amount, rec1e (48), write1a, rec1a (128).
# The engine itself fills EF1E amount, balance, date-time and terminal (§2.6).
from micropython import const

from validator.errors import R_ISSUER_NOT_ACCEPTED, R_OK

_ANY = const(0xFFFF)
# EF1E record layout (§2.6): private copies of card.ep's (tests/host/test_tap_consts.py)
_REC1E_LEN = const(48)
_R1E_TYPE = const(0)
_R1E_INDUSTRY = const(9)
_R1E_LINE = const(10)
_R1E_CITY = const(32)
_R1E_ACQUIRER = const(34)
_INDUSTRY_BUS = const(0x02)
_TYPE_SINGLE = const(0x06)


class FlatFare:
    """FlatFare(amount, city=0x0000, acquirer=b"", line=0, accept=())

    city      BCD city code as an int (EF15[2..3]), e.g. 0x2900; local cards always pass
    acquirer  8-byte acquirer institution id for EF1E[34..41]
    accept    tuple of (org, city) ints that visitors must match (0xFFFF = any)"""

    def __init__(self, amount, city=0, acquirer=b"", line=0, accept=()):
        self.amount = amount
        self.city = city
        self.acquirer = bytearray(8)
        for i in range(len(acquirer)):
            self.acquirer[i] = acquirer[i]
        self.line = line
        self.accept = accept
        self.reason = R_OK
        self.base = amount  # list fare (record FARE_LIST)
        self.kind = 1  # flat (record FARE_RULE; rules.fares.K_FLAT)
        self.flags = 0
        self.write1a = False
        self.rec1e = bytearray(_REC1E_LEN)
        self.rec1a = bytearray(128)

    def needs(self):
        return 0

    def decide(self, now, ef15, ef17, rec1e, rec1a):
        city = (ef15[2] << 8) | ef15[3]
        org = (ef15[0] << 8) | ef15[1]
        self.reason = R_OK
        if city != self.city:
            ok = False
            for pair in self.accept:
                if (pair[0] == org or pair[0] == _ANY) and (pair[1] == city or pair[1] == _ANY):
                    ok = True
                    break
            if not ok:
                self.reason = R_ISSUER_NOT_ACCEPTED
                return self
        r = self.rec1e
        for i in range(_REC1E_LEN):
            r[i] = 0
        r[_R1E_TYPE] = _TYPE_SINGLE
        r[_R1E_INDUSTRY] = _INDUSTRY_BUS
        r[_R1E_LINE] = (self.line >> 8) & 0xFF
        r[_R1E_LINE + 1] = self.line & 0xFF
        r[_R1E_CITY] = (self.city >> 8) & 0xFF
        r[_R1E_CITY + 1] = self.city & 0xFF
        for i in range(8):
            r[_R1E_ACQUIRER + i] = self.acquirer[i]
        return self
