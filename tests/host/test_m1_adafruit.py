"""Tier 2: an independent MIFARE Classic reader -- Adafruit's CircuitPython PN532 driver
(pinned PyPI package, unchanged, written against real chips) -- authenticates, reads and
decrements an emulated M1 purse card through the emulated PN532's own Crypto1, with the
UID-diversified keys the firmware derives through the PSAM. It cross-checks the emulator's
MIFARE command set (InDataExchange 60/61, 30, A0, C0 + B0) against a driver that is not
ours; the firmware's own reader side is in tests/fw/test_m1_mifare.py."""

import os
import sys

import pytest

from emu import issuer, mifare
from emu import pn532 as emu
from validator.m1 import layout_host as L

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORACLES = os.path.join(ROOT, ".venv", "oracles")
if os.path.isdir(ORACLES) and ORACLES not in sys.path:
    sys.path.append(ORACLES)

UID = b"\x9c\x59\x9b\x32"


class CoreUart:
    """busio.UART stand-in wired straight to the emulated chip's HSU bytes."""

    def __init__(self, core):
        self.core = core
        self.buf = bytearray()

    def _pull(self):
        self.buf += self.core.take()

    def write(self, data):
        self.core.feed(bytes(data))
        return len(data)

    @property
    def in_waiting(self):
        self._pull()
        return len(self.buf)

    def read(self, n):
        self._pull()
        out = bytes(self.buf[:n])
        self.buf = self.buf[n:]
        return out

    def reset_input_buffer(self):
        self._pull()
        self.buf = bytearray()


def _reader(card):
    pytest.importorskip("adafruit_pn532")
    from adafruit_pn532.uart import PN532_UART

    field = emu.Field()
    core = emu.Pn532Core(field)
    pn = PN532_UART(CoreUart(core))
    pn.SAM_configuration()
    field.place(card)
    return pn


def test_m1_adafruit_when_it_reads_and_decrements_the_purse_with_the_derived_key():
    keys = issuer.local_master_keys(issuer.load_master_keys())
    card = mifare.issue_purse(keys, UID, balance=1234)
    pn = _reader(card)
    uid = pn.read_passive_target(timeout=0.5)
    assert bytes(uid) == UID
    kb = mifare.sector_key(keys, UID, 0x2900, L.SEC_PURSE)
    assert pn.mifare_classic_authenticate_block(uid, L.BLK_VALUE, 0x61, kb)
    blk = pn.mifare_classic_read_block(L.BLK_VALUE)
    assert bytes(blk) == L.value_block(1234, L.BLK_VALUE)
    assert pn.mifare_classic_sub_value_block(L.BLK_VALUE, 150)
    assert card.value(L.BLK_VALUE) == 1084
    # the trip sector with its own key (the chip's nested authentication)
    kt = mifare.sector_key(keys, UID, 0x2900, L.SEC_TRIP)
    assert pn.mifare_classic_authenticate_block(uid, L.BLK_INFO, 0x61, kt)
    info = pn.mifare_classic_read_block(L.BLK_INFO)
    assert bytes(info[0:2]) == b"\x29\x00" and info[L.MI_VERSION] == L.LAYOUT_VER
    # the issuer block is read-only in the field: the card NAKs the write
    assert not pn.mifare_classic_write_block(L.BLK_INFO, bytes(16))
    assert card.block(L.BLK_INFO) == bytes(info)


def test_m1_adafruit_when_the_key_is_wrong_authentication_fails():
    keys = issuer.local_master_keys(issuer.load_master_keys())
    card = mifare.issue_purse(keys, UID)
    pn = _reader(card)
    uid = pn.read_passive_target(timeout=0.5)
    assert not pn.mifare_classic_authenticate_block(uid, L.BLK_VALUE, 0x61, b"\xff" * 6)
