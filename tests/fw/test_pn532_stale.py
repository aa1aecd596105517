# test_pn532_stale: an answer that comes too late (the driver gave up on it: a slow card,
# a loaded emulator, a UART glitch) reaches the driver while it waits for the next
# command's ACK or answer. It must be dropped, not taken for the next answer: taking it
# left the driver one answer behind for good (each command got its predecessor's answer,
# every tap failed), and the NfcError it raised from the card loop's InRelease killed the
# app's card task. Found by the SIGKILL soak (emu.soak_kill).
# SPDX-License-Identifier: MIT
from emu import pn532 as emu
from emu.echo_card import EchoCard
from emu.wires import HsuWire, SimClock
from validator.drivers.pn532 import Pn532
from validator.drivers.pn532_link import Hsu
from validator.link.iso14443 import Iso14443Reader

MP_HEAP = "256k"  # fixtures: the emulated PN532 with its ISO 14443 card layer (emu.picc)

_LATE = emu.ACK + emu.frame(b"\xd5\x03\x32\x01\x06\x07")  # a GetFirmwareVersion answer


def _rig():
    field = emu.Field()
    clock = SimClock()
    core = emu.Pn532Core(field, hsu=True)
    wire = HsuWire(core, clock)
    reader = Iso14443Reader(Pn532(Hsu(wire), clock))
    reader.begin()
    return field, wire, reader


def test_pn532_stale_when_a_late_answer_precedes_the_ack_it_is_dropped():
    field, wire, reader = _rig()
    field.place(EchoCard())
    wire.noise = emu.frame(b"\xd5\x03\x32\x01\x06\x07")  # data where the ACK is due
    info = reader.poll()
    assert info is not None and info.count == 1
    reader.release()
    assert reader.chip.firmware_version()[0] == 0x32  # not one answer behind


def test_pn532_stale_when_a_late_ack_and_answer_precede_the_answer_they_are_dropped():
    field, wire, reader = _rig()
    field.place(EchoCard())
    wire.noise = _LATE
    info = reader.poll()
    assert info is not None and info.count == 1
    reader.release()
    for _ in range(3):  # and every later command gets its own answer
        assert reader.chip.firmware_version()[0] == 0x32
        assert reader.poll() is None  # released: the card stays halted


def test_pn532_stale_when_release_meets_a_late_answer_it_does_not_raise():
    field, wire, reader = _rig()
    field.place(EchoCard())
    assert reader.poll() is not None
    wire.noise = _LATE
    reader.release()
    assert reader.chip.firmware_version()[0] == 0x32


def test_pn532_stale_when_release_meets_a_garbled_ack_the_card_loop_goes_on():
    # InRelease is the end of every tap; any NfcError it raised escaped the app's card loop
    field, wire, reader = _rig()
    field.place(EchoCard())
    assert reader.poll() is not None
    wire.mangle(lambda b: b"\x00\x00\xff\x00\x13" + b[5:])  # the ACK's checksum broken
    reader.release()
    assert reader.chip.firmware_version()[0] == 0x32


def test_pn532_stale_when_the_chip_misses_the_first_frame_after_a_reset_begin_retries():
    # the MCU restarted mid-frame (watchdog, SIGKILL of the unix port): the chip's parser
    # still holds the old frame's bytes and lets the first command after the wakeup go
    field = emu.Field()
    clock = SimClock()
    core = emu.Pn532Core(field, hsu=True)
    wire = HsuWire(core, clock)
    reader = Iso14443Reader(Pn532(Hsu(wire), clock))
    core.fault_mute = True
    assert reader.begin()[0] == 0x32
    field.place(EchoCard())
    assert reader.poll() is not None


class _MissesOne(HsuWire):
    """The chip misses the first frame of one command after the wakeup (its parser was
    mid-frame, or it is slow after power-up): that frame gets no ACK."""

    def __init__(self, core, clock, cmd):
        HsuWire.__init__(self, core, clock)
        self.cmd = cmd

    def write(self, buf, n=None):
        b = bytes(buf[: len(buf) if n is None else n])
        if self.cmd is not None and b"\xd4" + bytes((self.cmd,)) in b:
            self.cmd = None
            self.core.fault_mute = True
        return HsuWire.write(self, buf, n)


def test_pn532_stale_when_any_boot_command_is_missed_begin_and_field_on_still_work():
    for cmd in (0x14, 0x02, 0x32):  # SAMConfiguration, GetFirmwareVersion, RFConfiguration
        field = emu.Field()
        clock = SimClock()
        core = emu.Pn532Core(field, hsu=True)
        reader = Iso14443Reader(Pn532(Hsu(_MissesOne(core, clock, cmd)), clock))
        assert reader.begin()[0] == 0x32, hex(cmd)
        reader.field_on()
        field.place(EchoCard())
        assert reader.poll() is not None, hex(cmd)
    field = emu.Field()
    core = emu.Pn532Core(field, hsu=True)
    clock = SimClock()
    reader = Iso14443Reader(Pn532(Hsu(HsuWire(core, clock)), clock))
    reader.begin()
    core.fault_mute = True  # the field-on command of the boot missed
    reader.field_on()
    field.place(EchoCard())
    assert reader.poll() is not None
