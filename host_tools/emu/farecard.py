# emu.farecard: the fare-relevant state of one T-Union card, without RF or crypto.
# SPDX-License-Identifier: MIT
#
# Holds exactly what validator.rules.fares.decide() reads (EF15, EF17, EF1E cyclic
# records, EF1A record 2, balance) and applies a Decision the way the card would commit a
# compound purchase (card-protocol.md §6: the 1E/1A records become visible together with
# the debit). Used by the rule tests and usable by a scenario runner that wants fare
# outcomes without the full card/PSAM emulators. Common subset.
from validator.rules import records as r
from validator.util import bcdtime

N_1E = 30  # EF1E: 30 cyclic records of 48 bytes (§2.6)


def ef15_for(issuer_hex, card_type=0):
    """A 30-byte EF15 image with the given issuer ID (16 hex digits) and type byte [28]."""
    b = bytearray(30)
    b[0:8] = bytes.fromhex(issuer_hex)
    b[8] = 0x02  # application type: every T-Union sample shows 02 (§2.1)
    b[9] = 0x01
    b[28] = card_type
    return b


class FareCard:
    def __init__(self, issuer_hex="02002900FFFFFFFF", card_type=0, balance=5000,
                 interconnect=1):
        self.ef15 = ef15_for(issuer_hex, card_type)
        self.ef17 = bytearray(60)
        self.ef17[9] = 1 if interconnect else 0
        self.trips = []  # newest first, each a 48-byte bytearray
        self.rec1a = bytearray(128)  # a virgin card: record 2 all zero (state 00)
        self.balance = balance

    def rec1e(self):
        """EF1E record 1 (newest) or None when the log is empty (card answers 6A83)."""
        return self.trips[0] if self.trips else None

    def commit(self, res):
        """Apply an accepted Decision: debit, append EF1E, replace EF1A if told."""
        self.balance -= res.amount
        rec = bytearray(res.rec1e)
        r.put32(rec, r.E_BALANCE, self.balance)
        self.trips.insert(0, rec)
        del self.trips[N_1E:]
        if res.write1a:
            self.rec1a = bytearray(res.rec1a)

    def foreign_trip(self, now, industry, txtype, line, station, amount, city=0x2900,
                     flags=0, terminal=b"\x00\x00\x00\x00\x00\x00\x00\x99"):
        """A trip record written by some other system (a metro gate, another city's bus)."""
        rec = bytearray(48)
        rec[r.E_TYPE] = txtype
        rec[r.E_TERMINAL:r.E_TERMINAL + 8] = terminal
        rec[r.E_INDUSTRY] = industry
        r.put16(rec, r.E_LINE, line)
        r.put16(rec, r.E_STATION, station)
        rec[r.E_FLAGS] = flags
        r.put32(rec, r.E_AMOUNT, amount)
        self.balance -= amount
        r.put32(rec, r.E_BALANCE, self.balance)
        bcdtime.pack_datetime(now, rec, r.E_TIME)
        r.put16(rec, r.E_CITY, city)
        self.trips.insert(0, rec)
        del self.trips[N_1E:]
