# Tier 1: the MIFARE Classic card emulator (emu.mifare) behind the emulated PN532's own
# Crypto1 (emu.pn532, InDataExchange 60/61, 30, A0, C0/C2, B0), driven by the firmware's
# PN532 driver over HSU and validator.m1.link: detection, access bits, value blocks.
# Runs on MicroPython and CPython.
from emu import mifare
from emu import pn532 as emu
from emu.wires import HsuWire, SimClock
from fwtest import raises
from validator.drivers.pn532 import Pn532
from validator.drivers.pn532_link import Hsu
from validator.errors import NfcTimeout
from validator.link.iso14443 import Iso14443Reader
from validator.m1.link import M1Link
from validator.m1.purse import classify

MP_HEAP = "512k"  # fixtures: the emulated PN532, its card layer and a Crypto1 card

KEY = b"\xff\xff\xff\xff\xff\xff"
UID4 = b"\x9c\x59\x9b\x32"
UID7 = b"\x04\x0c\x60\x63\x0c\x08\x8a"
ST_AUTH = 0x14


def _rig(card):
    field = emu.Field()
    core = emu.Pn532Core(field)
    clock = SimClock()
    reader = Iso14443Reader(Pn532(Hsu(HsuWire(core, clock)), clock))
    reader.begin()
    card.deselect()  # powered up afresh by this field
    field.place(card)
    info = reader.poll()
    return field, core, reader, info, M1Link(reader.chip)


def test_m1_mifare_when_1k_4k_4_and_7_byte_uids_polled_atqa_sak_classify_as_m1():
    for uid, size, atqa, sak in ((UID4, 1024, 0x0004, 0x08), (UID7, 1024, 0x0044, 0x08),
                                 (UID4, 4096, 0x0002, 0x18), (UID7, 4096, 0x0042, 0x18)):
        _, _, _, info, _ = _rig(mifare.MifareClassic(uid, size=size))
        assert info is not None and not info.iso_dep
        assert info.atqa == atqa and info.sak == sak
        assert bytes(info.uid[:info.uid_len]) == uid
        assert classify(info) == 1


def test_m1_mifare_when_sak_is_not_classic_classify_refuses_it():
    c = mifare.MifareClassic(UID7)
    c.sak = 0x00  # an Ultralight answers SAK 00, ATQA 0044
    _, _, _, info, _ = _rig(c)
    assert classify(info) == 2


def test_m1_mifare_when_transport_key_auth_read_write_through_the_chip_crypto1():
    c = mifare.MifareClassic(UID4)
    _, core, _, info, lk = _rig(c)
    buf = bytearray(16)
    assert lk.auth(0x60, 4, KEY, 0, info.uid, 4) == 0
    assert core.m1_auths == 1 and c.auths == 1
    data = bytes(range(16))
    assert lk.write(5, data, 0) == 0 and c.block(5) == data
    assert lk.read(5, buf, 0) == 0 and bytes(buf) == data
    assert lk.read(0, buf, 0) != 0  # block 0 is in sector 0: not the open sector (NAK)


def test_m1_mifare_when_the_key_is_wrong_auth_fails_with_status_14():
    c = mifare.MifareClassic(UID4)
    _, _, _, info, lk = _rig(c)
    assert lk.auth(0x60, 4, b"\x00\x00\x00\x00\x00\x01", 0, info.uid, 4) == ST_AUTH


def test_m1_mifare_when_7_byte_uid_auth_uses_the_last_four_bytes():
    c = mifare.MifareClassic(UID7)
    _, _, _, info, lk = _rig(c)
    assert lk.auth(0x61, 8, KEY, 0, info.uid, 7) == 0


def test_m1_mifare_when_nested_auth_opens_another_sector():
    c = mifare.MifareClassic(UID4)
    _, _, _, info, lk = _rig(c)
    buf = bytearray(16)
    assert lk.auth(0x60, 4, KEY, 0, info.uid, 4) == 0
    assert lk.auth(0x60, 8, KEY, 0, info.uid, 4) == 0  # nested: nT arrives encrypted
    assert lk.read(8, buf, 0) == 0


def test_m1_mifare_when_value_block_decrement_transfer_restore_as_the_chip_does():
    c = mifare.MifareClassic(UID4)
    c.set_block(8, mifare.value_block(1000, 8))
    _, _, _, info, lk = _rig(c)
    assert lk.auth(0x60, 8, KEY, 0, info.uid, 4) == 0
    assert lk.value(0xC0, 8, 150) == 0 and lk.transfer(8) == 0
    assert c.value(8) == 850
    assert lk.value(0xC2, 8, 0) == 0 and lk.transfer(9) == 0  # backup := value
    assert c.value(9) == 850 and c.block(9)[12] == 8


def test_m1_mifare_when_decrement_on_a_data_block_nak_and_sector_closed():
    c = mifare.MifareClassic(UID4)
    _, _, _, info, lk = _rig(c)
    assert lk.auth(0x60, 8, KEY, 0, info.uid, 4) == 0
    assert lk.value(0xC0, 9, 1) == ST_AUTH  # not in value format: NAK


def test_m1_mifare_when_access_bits_say_read_only_write_refused():
    c = mifare.MifareClassic(UID4)
    # sector 1: block 4 "010" (read A|B, never written), key B for the rest (FORMAT.md)
    from validator.m1 import layout_host as L

    kb = b"\x11\x22\x33\x44\x55\x66"
    c.set_trailer(1, KEY, L.ACC_TRIP, kb)
    _, _, _, info, lk = _rig(c)
    assert lk.auth(0x61, 4, kb, 0, info.uid, 4) == 0
    assert lk.write(4, bytes(16), 0) == ST_AUTH
    # the NAK dropped the card out of ACTIVE: silence until it is polled again
    raises(NfcTimeout, lk.auth, 0x61, 4, kb, 0, info.uid, 4)
    _, _, _, info, lk = _rig(c)
    assert lk.auth(0x61, 4, kb, 0, info.uid, 4) == 0
    assert lk.write(5, b"\x01" * 16, 0) == 0  # trip block: write with B
    # key A may read but not write the trip block
    _, _, _, info, lk = _rig(c)
    assert lk.auth(0x60, 5, KEY, 0, info.uid, 4) == 0
    assert lk.write(5, bytes(16), 0) == ST_AUTH and c.block(5) == b"\x01" * 16


def test_m1_mifare_when_trailer_read_key_a_hidden_key_b_hidden_unless_readable():
    c = mifare.MifareClassic(UID4)
    _, _, _, info, lk = _rig(c)
    buf = bytearray(16)
    assert lk.auth(0x60, 7, KEY, 0, info.uid, 4) == 0
    assert lk.read(7, buf, 0) == 0
    # transport configuration: key A hidden, access bits and key B readable with key A
    assert bytes(buf[0:6]) == bytes(6) and bytes(buf[6:10]) == mifare.TRANSPORT_ACCESS
    assert bytes(buf[10:16]) == KEY


def test_m1_mifare_when_torn_at_a_write_the_chip_reports_no_answer_and_the_card_is_gone():
    c = mifare.MifareClassic(UID4)
    field, _, _, info, lk = _rig(c)
    assert lk.auth(0x60, 4, KEY, 0, info.uid, 4) == 0
    c.tear(1, "half")
    raises(NfcTimeout, lk.write, 5, b"\xaa" * 16, 0)
    assert c.block(5) == b"\xaa" * 8 + bytes(8) and c not in field.cards
