# Tier 1: the firmware PN532 driver + reader against the byte-level PN532 emulator,
# over HSU and SPI. Runs on MicroPython and CPython.
from emu import pn532 as emu
from emu.echo_card import EchoCard as _Echo
from emu.echo_card import TypeBEchoCard as TypeBCard
from emu.wires import HsuWire, SimClock, SpiWire
from fwtest import raises
from validator.drivers.pn532 import Pn532
from validator.drivers.pn532_link import Hsu
from validator.drivers.pn532_spi import Spi
from validator.errors import NfcError, NfcTimeout
from validator.link.iso14443 import Iso14443Reader

MP_HEAP = "256k"  # fixtures: the emulated PN532 with its ISO 14443 card layer (emu.picc)

KIND_A = 1  # CardInfo kinds (validator.link.iso14443 _KIND_A, _KIND_B)
KIND_B = 2


class EchoCard(_Echo):
    def apdu(self, cmd):  # echo everything, SELECT included
        if self.answer_len is None and cmd[1] == 0xA4:
            self.apdus.append(bytes(cmd))
            return b"\x6f\x00\x90\x00"
        return _Echo.apdu(self, cmd)


def rig(spi=False):
    field = emu.Field()
    clock = SimClock()
    core = emu.Pn532Core(field, hsu=not spi)
    if spi:
        wire = SpiWire(emu.Pn532SpiSlave(core))
        transport = Spi(wire, wire.cs, clock, msb_only=True)
    else:
        wire = HsuWire(core, clock)
        transport = Hsu(wire)
    reader = Iso14443Reader(Pn532(transport, clock))
    reader.begin()
    return field, core, wire, reader


def _tap_roundtrip(spi):
    field, core, wire, reader = rig(spi)
    assert reader.version == (0x32, 0x01, 0x06, 0x07)
    assert reader.poll() is None
    card = EchoCard()
    field.place(card)
    info = reader.poll()
    assert info is not None and info.kind == KIND_A and info.count == 1 and info.iso_dep
    assert bytes(info.uid[: info.uid_len]) == b"\x01\x02\x03\x04"
    cmd = bytearray(b"\x00\xb0\x95\x00\x1e")
    resp = bytearray(300)
    n = reader.transmit(cmd, len(cmd), resp)
    assert bytes(resp[:n]) == bytes(cmd) + b"\x90\x00"
    reader.release()
    assert card.deselects >= 1


def test_pn532_when_hsu_tap_roundtrip_works():
    _tap_roundtrip(False)


def test_pn532_when_spi_tap_roundtrip_works():
    _tap_roundtrip(True)


def test_pn532_when_hsu_chip_not_woken_times_out():
    field = emu.Field()
    clock = SimClock()
    core = emu.Pn532Core(field, hsu=True)
    wire = HsuWire(core, clock)
    chip = Pn532(Hsu(wire), clock)
    raises(NfcTimeout, chip.firmware_version)  # no 0x55 preamble: the chip sleeps
    chip.t.wakeup()
    assert chip.firmware_version()[0] == 0x32


def test_pn532_when_two_cards_in_field_count_is_two():
    field, core, wire, reader = rig()
    field.place(EchoCard(b"\x01\x02\x03\x04"))
    field.place(EchoCard(b"\x05\x06\x07\x08"))
    info = reader.poll()
    assert info.count == 2


def test_pn532_when_type_b_card_polls_as_kind_b():
    field, core, wire, reader = rig()
    field.place(TypeBCard())
    info = reader.poll()
    assert info.kind == KIND_B and bytes(info.uid[:4]) == b"\xaa\xbb\xcc\xdd" and info.iso_dep


def _chaining(spi):
    field, core, wire, reader = rig(spi)
    card = EchoCard(answer_len=600)
    field.place(card)
    reader.poll()
    cmd = bytearray(bytes((0x80, 0xDC, 0x02, 0xD0, 0xFF)) + bytes(range(255)) + bytes(300))
    resp = bytearray(700)
    n = reader.transmit(cmd, len(cmd), resp)
    assert card.apdus[-1] == bytes(cmd)  # reassembled from MI-chained frames
    assert n == 602 and resp[599] == 599 & 0xFF and bytes(resp[600:602]) == b"\x90\x00"


def test_pn532_when_long_apdu_and_answer_chain_with_mi_hsu():
    _chaining(False)


def test_pn532_when_long_apdu_and_answer_chain_with_mi_spi():
    _chaining(True)


def test_pn532_when_card_removed_after_n_exchanges_times_out():
    field, core, wire, reader = rig()
    card = EchoCard()
    field.place(card)
    reader.poll()
    field.remove_after(card, 1)
    resp = bytearray(300)
    cmd = bytearray(b"\x00\x84\x00\x00\x04")
    reader.transmit(cmd, 5, resp)
    raises(NfcTimeout, reader.transmit, cmd, 5, resp)
    assert reader.poll() is None


def test_pn532_when_answer_corrupted_driver_nacks_and_recovers():
    field, core, wire, reader = rig()
    field.place(EchoCard())
    reader.poll()
    core.fault_corrupt = True
    resp = bytearray(300)
    cmd = bytearray(b"\x00\x84\x00\x00\x04")
    n = reader.transmit(cmd, 5, resp)
    assert bytes(resp[:n]) == bytes(cmd) + b"\x90\x00"
    assert reader.chip.nacks_sent == 1 and core.nacks == 1


def test_pn532_when_garbage_precedes_frames_driver_resyncs():
    field, core, wire, reader = rig()
    field.place(EchoCard())
    wire.noise = b"\x13\x37\xff\x00\x42" * 5
    assert reader.poll() is not None
    assert reader.chip.resyncs >= 1


def test_pn532_when_ack_lost_raises_then_next_command_works():
    field, core, wire, reader = rig()
    core.fault_no_ack = True
    e = raises(NfcError, reader.chip.firmware_version)
    assert "ACK" in e.args[0] or "data instead" in e.args[0]
    assert reader.chip.firmware_version()[0] == 0x32


def test_pn532_when_chip_mute_times_out_and_aborts():
    field, core, wire, reader = rig()
    core.fault_mute = True
    raises(NfcTimeout, reader.chip.firmware_version)
    assert core.aborts == 1
    assert reader.chip.firmware_version()[0] == 0x32


def test_pn532_when_unknown_command_gets_syntax_error_frame():
    field, core, wire, reader = rig()
    e = raises(NfcError, reader.chip.command, 0x99, 0, 50)
    assert "syntax" in e.args[0]


def test_pn532_when_exchange_with_no_target_reports_context_error():
    field, core, wire, reader = rig()
    resp = bytearray(300)
    e = raises(NfcError, reader.transmit, bytearray(b"\x00\x84\x00\x00\x04"), 5, resp)
    assert "0x27" in e.args[0]


def test_pn532_when_field_off_poll_switches_it_back_on_and_card_restarts():
    # UM0701 §7.3.1/§7.3.5: RFConfiguration switches the field off, the cards lose power;
    # InListPassiveTarget switches it on again and finds the card afresh
    field, core, wire, reader = rig()
    card = EchoCard()
    field.place(card)
    assert reader.poll() is not None
    reader.field_off()
    assert not core.rf_on and card.deselects >= 1
    assert reader.poll() is not None and core.rf_on


def test_pn532_when_tunion_card_has_7_byte_uid_reader_takes_sak_and_uid_not_sens_res():
    # the chip reports SENS_RES 00 44 (MSB first, UM0701 §7.3.5); the reader skips it and
    # reads SEL_RES and NFCID1 at their offsets, whatever the SENS_RES byte order
    from emu import issuer

    field, core, wire, reader = rig()
    card = issuer.issue_card(issuer.load_master_keys(), seed=3)
    field.place(card)
    info = reader.poll()
    assert info.kind == KIND_A and info.iso_dep and info.sak == 0x20
    assert info.uid_len == 7 and bytes(info.uid[:7]) == card.uid


def test_pn532_when_card_released_it_stays_halted_until_it_reenters():
    # InRelease sends S(DESELECT): the card halts and ignores REQA (ISO 14443-3 §6.2)
    field, core, wire, reader = rig()
    card = EchoCard()
    field.place(card)
    assert reader.poll() is not None
    reader.release()
    assert reader.poll() is None
    field.remove(card)
    field.place(card)
    assert reader.poll() is not None


def test_pn532_spi_when_bus_is_msb_first_table_reverses_every_bit_order():
    from validator.drivers import pn532_spi

    for i in range(256):
        r = 0
        for b in range(8):
            if i & (1 << b):
                r |= 0x80 >> b
        assert pn532_spi._REV[i] == r


# -- HSU line speed (SetSerialBaudRate, UM0701 §7.2.8) ------------------------------------
# The wire loses bytes sent at a speed the other end is not set to (emu.wires.HsuWire, as
# a UART's framing errors), so these pass only when both ends switch in the right order.
def _fast_rig(fast=460800):
    field = emu.Field()
    clock = SimClock()
    core = emu.Pn532Core(field, hsu=True)
    wire = HsuWire(core, clock)
    chip = Pn532(Hsu(wire, fast), clock)
    return field, core, wire, Iso14443Reader(chip)


def test_pn532_when_hsu_has_a_fast_speed_begin_switches_both_ends_and_taps_work():
    field, core, wire, reader = _fast_rig()
    reader.begin()
    assert core.baud == wire.baud == reader.chip.t.baud == 460800
    lost = core.lost_bytes  # the wake-up preamble's first bytes (WAKE_LOST_BYTES)
    card = EchoCard()
    field.place(card)
    info = reader.poll()
    assert info is not None and info.iso_dep
    cmd = bytearray(b"\x00\xb0\x95\x00\x1e")
    resp = bytearray(300)
    n = reader.transmit(cmd, len(cmd), resp)
    assert bytes(resp[:n]) == bytes(cmd) + b"\x90\x00"
    assert core.lost_bytes == lost  # nothing lost at the new speed


def test_pn532_when_hsu_fast_is_zero_the_line_stays_at_115200():
    field, core, wire, reader = _fast_rig(0)
    reader.begin()
    assert core.baud == wire.baud == 115200 and core.commands == 4  # no SetSerialBaudRate


def test_pn532_when_the_reader_resets_alone_begin_finds_it_at_115200_and_switches_again():
    field, core, wire, reader = _fast_rig()
    reader.begin()
    core2 = emu.Pn532Core(field, hsu=True)  # a brown-out of the reader board: power-up state
    wire.core = core2
    raises(NfcError, reader.poll)  # at 460 800 the fresh chip hears garbage
    reader.begin()
    assert core2.baud == wire.baud == 460800
    field.place(EchoCard())
    assert reader.poll() is not None


def test_pn532_when_the_mcu_resets_alone_begin_finds_the_chip_still_fast():
    field, core, wire, reader = _fast_rig()
    reader.begin()
    # the MCU restarts: a new driver on a UART set up at 115 200; the chip is still fast
    wire.set_baud(115200)
    reader2 = Iso14443Reader(Pn532(Hsu(wire, 460800), reader.chip.clock))
    reader2.begin()
    assert core.baud == wire.baud == 460800
    field.place(EchoCard())
    assert reader2.poll() is not None


def test_pn532_when_asked_for_a_speed_the_chip_lacks_it_refuses_and_the_line_stays():
    field, core, wire, reader = _fast_rig(500000)
    raises(NfcError, reader.begin)  # SetSerialBaudRate 0xFF: a syntax error (§6.2.1.5)
    assert core.baud == 115200 and core._baud_next is None
