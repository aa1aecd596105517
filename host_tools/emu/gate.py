# emu.gate: a foreign terminal (a metro gate, another city's bus) charging a card.
# SPDX-License-Identifier: MIT
#
# Used by the simulator for scenario "foreign" rides: the trip happens elsewhere, with
# another PSAM, through the same card APDUs a validator would send (card-protocol.md §9:
# SELECT, INITIALIZE FOR CAPP PURCHASE, PSAM 8070, UPDATE CAPP DATA CACHE 1E, DEBIT,
# PSAM 8072), so the card's balance, offline ATC, EF18 log and EF1E trip record all move
# exactly as after a real foreign ride. Common subset.
from emu import t0
from emu.psam import Psam
from validator.rules import records as r
from validator.util import bcdtime

GATE_TERMINAL = b"\x00\x00\x00\x00\x00\x99"
_AID = bytes.fromhex("00A4040008A00000063201010500")


class GateError(Exception):
    pass


class Gate:
    def __init__(self, master_keys, terminal=GATE_TERMINAL):
        self.terminal = bytes(terminal)
        self.psam = t0.T0Card(Psam(master_keys, terminal_no=self.terminal))
        if not self.psam.reset():
            raise GateError("gate PSAM gives no ATR")
        self._x(self.psam, bytes.fromhex("00A40000028011"), "PSAM select DF 8011")
        self.key_index = self._x(self.psam, bytes.fromhex("00B0970001"), "PSAM EF17")[0]

    @staticmethod
    def _x(dev, cmd, what):
        resp = t0.transceive(dev, cmd) if hasattr(dev, "feed") else dev.apdu(cmd)
        if resp[-2:] != b"\x90\x00":
            raise GateError("%s: SW %s" % (what, resp[-2:].hex().upper()))
        return resp[:-2]

    def ride(self, card, now, industry, txtype, line, station, amount, city=0x2900, flags=0):
        """Charge `amount` fen at device time `now`, writing an EF1E trip record."""
        x = self._x
        fci = x(card, _AID, "SELECT")
        i = fci.find(b"\x9f\x0c\x1e")
        if i < 0:
            raise GateError("FCI without EF15")
        ef15 = fci[i + 3: i + 33]
        dt = bytearray(7)
        bcdtime.pack_datetime(now, dt, 0)
        amount4 = amount.to_bytes(4, "big")
        init = x(card, b"\x80\x50\x03\x02\x0b" + bytes((self.key_index,)) + amount4
                 + self.terminal + b"\x0f", "INITIALIZE FOR CAPP PURCHASE")
        balance = int.from_bytes(init[0:4], "big")
        atc, keyver, alg, rnd = init[4:6], init[9], init[10], init[11:15]
        d = rnd + atc + amount4 + b"\x09" + bytes(dt) + bytes((keyver, alg))
        ttsn_mac1 = x(self.psam, b"\x80\x70\x00\x00\x24" + d + ef15[12:20] + ef15[0:8],
                      "PSAM 8070")
        rec = bytearray(48)  # card-protocol.md §2.6, offsets from validator.rules.records
        rec[r.E_TYPE] = txtype
        rec[r.E_TERMINAL + 2: r.E_TERMINAL + 8] = self.terminal
        rec[r.E_INDUSTRY] = industry
        r.put16(rec, r.E_LINE, line)
        r.put16(rec, r.E_STATION, station)
        rec[r.E_FLAGS] = flags
        r.put32(rec, r.E_AMOUNT, amount)
        r.put32(rec, r.E_BALANCE, balance - amount)
        rec[r.E_TIME: r.E_TIME + 7] = dt
        r.put16(rec, r.E_CITY, city)
        x(card, b"\x80\xdc\x00\xf0\x30" + bytes(rec), "UPDATE CAPP DATA CACHE")
        tac_mac2 = x(card, b"\x80\x54\x01\x00\x0f" + ttsn_mac1[0:4] + bytes(dt)
                     + ttsn_mac1[4:8] + b"\x08", "DEBIT")
        x(self.psam, b"\x80\x72\x00\x00\x04" + tac_mac2[4:8], "PSAM 8072")
        card.deselect()
        return balance - amount
