# Tier 2: third-party PN532 drivers, written against real chips, drive the emulated PN532
# standalone (`ykt emu pn532` on its own pty): nfcpy's pn532 driver (its own ISO-DEP stack
# over InCommunicateThru) and Adafruit's CircuitPython PN532 (UART; SPI over the
# emulator's SPI bridge). Driver side: the pinned PyPI packages, unchanged; the only
# project code there is what opens the pty (and, for SPI, the bus object standing in for
# busio.SPI on the bridge, since a pty is no spidev).
import json
import os
import subprocess
import sys
import time

import pytest

from emu import issuer

# Adafruit's driver and Blinka live outside site-packages (Makefile ORACLES: Blinka's own
# top-level `micropython` and `board` would shadow the project's); appended, so the
# project's modules of the same names still come first.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORACLES = os.path.join(ROOT, ".venv", "oracles")
if os.path.isdir(ORACLES) and ORACLES not in sys.path:
    sys.path.append(ORACLES)

T_UNION_AID = bytes.fromhex("A000000632010105")
SELECT = bytes.fromhex("00A4040008") + T_UNION_AID + b"\x00"
READ_EF15 = bytes.fromhex("00B095001E")  # READ BINARY, SFI 0x15, 30 bytes
GET_BALANCE = bytes.fromhex("805C000204")
BALANCE_A = 5000
BALANCE_B = 321


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    d = tmp_path_factory.mktemp("cards")
    keys = issuer.load_master_keys()
    paths = []
    for kind, bal, seed in (("A", BALANCE_A, 11), ("B", BALANCE_B, 12)):
        c = issuer.issue_card(keys, balance=bal, kind=kind, seed=seed)
        p = str(d / ("card-%s.json" % kind))
        with open(p, "w") as f:
            json.dump(c.to_dict(), f)
        paths.append((p, c))
    return paths


def start_emu(cards, *extra):
    args = [sys.executable, "-m", "ykt", "emu", "pn532"]
    for p, _ in cards:
        args += ["--card", p]
    proc = subprocess.Popen(args + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    first = proc.stdout.readline().strip()
    assert first.startswith("pty: /dev/pts/"), (first, proc.stderr.read())
    return proc, first[len("pty: "):]


def stop_emu(proc):
    proc.terminate()
    proc.wait(5)


def check_card(exchange, card):
    """SELECT the T-Union application, READ BINARY EF15, GET BALANCE, through `exchange`."""
    r = exchange(SELECT)
    assert r[-2:] == b"\x90\x00" and r[0] == 0x6F and T_UNION_AID in r
    r = exchange(READ_EF15)
    assert r[-2:] == b"\x90\x00" and r[:-2] == card.ef15
    r = exchange(GET_BALANCE)
    assert r == card.balance.to_bytes(4, "big") + b"\x90\x00"


def test_ykt_emu_pn532_when_started_prints_pty_first_and_lists_cards(cards):
    proc, path = start_emu(cards)
    try:
        assert os.path.exists(path)
        lines = [proc.stdout.readline().strip() for _ in cards]
        assert lines[0].startswith("card: type A uid ") and lines[1].startswith("card: type B")
    finally:
        stop_emu(proc)


def test_ykt_emu_pn532_when_card_file_bad_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    p = subprocess.run([sys.executable, "-m", "ykt", "emu", "pn532", "--card", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "not a card file" in p.stderr and "pty:" not in p.stdout


# -- nfcpy ------------------------------------------------------------------------------


def _nfcpy_open(path):
    import nfc
    import nfc.clf.pn532
    import nfc.clf.transport

    # nfcpy's path syntax ("tty:USB0:pn532") only finds /dev/tty* names, so its driver is
    # opened on the pty directly: transport + pn532.init, as ContactlessFrontend.open does
    clf = nfc.ContactlessFrontend()
    clf.device = nfc.clf.pn532.init(nfc.clf.transport.TTY(path))
    return clf


def test_nfcpy_pn532_when_driving_the_emulator_senses_a_and_b_and_exchanges_apdus(cards):
    import nfc
    import nfc.tag.tt4
    from nfc.clf import RemoteTarget

    (_, card_a), (_, card_b) = cards
    proc, path = start_emu(cards)
    try:
        clf = _nfcpy_open(path)
        assert clf.device.chipset_name == "PN532v1.6"
        target = clf.sense(RemoteTarget("106A"))
        assert target is not None
        assert bytes(target.sens_res) == b"\x44\x00"  # nfcpy's order (reversed from 00 44)
        assert bytes(target.sdd_res) == card_a.uid and target.sel_res[0] == 0x20
        tag = nfc.tag.activate(clf, target)
        assert isinstance(tag, nfc.tag.tt4.Type4ATag)
        check_card(tag.transceive, card_a)
        assert tag.is_present  # presence check: R(NAK) answered by R(ACK)
        target = clf.sense(RemoteTarget("106B"))
        assert target is not None and bytes(target.sensb_res) == card_b.atqb
        tag = nfc.tag.activate(clf, target)
        assert isinstance(tag, nfc.tag.tt4.Type4BTag)
        check_card(tag.transceive, card_b)
        clf.close()  # ACK, SetSerialBaudRate back to 115200, PowerDown
        clf = _nfcpy_open(path)  # wakes the chip from power-down with nfcpy's preamble
        assert clf.sense(RemoteTarget("106A")) is not None
        clf.close()
    finally:
        stop_emu(proc)


# -- Adafruit CircuitPython PN532 -------------------------------------------------------


def _adafruit_checks(pn, cards):
    (_, card_a), (_, card_b) = cards
    assert pn.firmware_version == (0x32, 0x01, 0x06, 0x07)
    assert bytes(pn.read_passive_target(timeout=0.5)) == card_a.uid

    def exchange(apdu):
        r = pn.call_function(0x40, params=b"\x01" + apdu, response_length=255)
        assert r[0] == 0x00, "InDataExchange status %02x" % r[0]
        return bytes(r[1:])

    check_card(exchange, card_a)
    assert pn.call_function(0x52, params=[0x00], response_length=1) == b"\x00"  # InRelease
    r = pn.call_function(0x4A, params=[0x01, 0x03, 0x00], response_length=64)  # type B, AFI 0
    assert r[0] == 1 and bytes(r[2:14]) == card_b.atqb
    check_card(exchange, card_b)
    assert pn.call_function(0x52, params=[0x00], response_length=1) == b"\x00"
    assert pn.power_down() is True
    assert pn.firmware_version[0] == 0x32  # woken by the driver's preamble


def test_adafruit_pn532_uart_when_driving_the_emulator_senses_a_and_b_and_exchanges_apdus(
        cards):
    import serial
    from adafruit_pn532.uart import PN532_UART

    proc, path = start_emu(cards)
    try:
        uart = serial.Serial(path, 115200, timeout=0.1)
        try:
            _adafruit_checks(PN532_UART(uart), cards)
        finally:
            uart.close()
    finally:
        stop_emu(proc)


class BridgeSpi:
    """busio.SPI stand-in on the emulator's SPI bridge pty (b"S"/b"D" NSS, b"X" len data)."""

    def __init__(self, fd):
        self.fd = fd

    def try_lock(self):
        return True

    def unlock(self):
        pass

    def configure(self, **kw):
        pass

    def _xfer(self, out):
        got = bytearray()
        for i in range(0, len(out), 255):
            part = bytes(out[i:i + 255])
            os.write(self.fd, b"X" + bytes((len(part),)) + part)
            want = len(got) + len(part)
            deadline = time.monotonic() + 2
            while len(got) < want:
                assert time.monotonic() < deadline, "SPI bridge: no MISO bytes"
                got += os.read(self.fd, want - len(got))
        return got

    def write(self, buf, start=0, end=None):
        self._xfer(buf[start:end])

    def readinto(self, buf, start=0, end=None, write_value=0):
        end = len(buf) if end is None else end
        buf[start:end] = self._xfer(bytes((write_value,)) * (end - start))

    def write_readinto(self, out, into, **kw):
        into[:len(out)] = self._xfer(out)


class BridgeCs:
    def __init__(self, fd):
        self.fd = fd

    def switch_to_output(self, value=True, **kw):
        self.value = value

    @property
    def value(self):
        return self._v

    @value.setter
    def value(self, v):
        self._v = v
        os.write(self.fd, b"D" if v else b"S")


def test_adafruit_pn532_spi_when_driving_the_emulator_senses_a_and_b_and_exchanges_apdus(cards):
    import tty

    from adafruit_pn532.spi import PN532_SPI

    proc, path = start_emu(cards, "--spi")
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        _adafruit_checks(PN532_SPI(BridgeSpi(fd), BridgeCs(fd)), cards)
    finally:
        os.close(fd)
        stop_emu(proc)


# -- the line itself ----------------------------------------------------------------------


def test_nfcpy_pn532_when_it_raises_the_line_speed_the_chip_follows_and_returns(cards):
    from nfc.clf import RemoteTarget

    from emu.local_card import from_dict
    from emu.pn532_pty import Pn532Pty

    chip = Pn532Pty([from_dict(c.to_dict()) for _, c in cards]).start()
    try:
        clf = _nfcpy_open(chip.name)  # stty accepts 921600 on a pty: nfcpy switches up
        assert clf.device.chipset.transport.baudrate == 921600 and chip.core.baud == 921600
        assert clf.sense(RemoteTarget("106A")) is not None
        clf.close()  # SetSerialBaudRate 115200, then PowerDown
        assert chip.core.baud == 115200 and chip.core.asleep
    finally:
        chip.close()


def test_pn532_pty_when_host_sends_at_another_speed_bytes_are_lost():
    import serial

    from emu.pn532_pty import Pn532Pty

    chip = Pn532Pty().start()
    try:
        get_version = bytes.fromhex("0000ff02fed4022a00")
        with serial.Serial(chip.name, 9600, timeout=0.3) as s:
            s.write(b"\x55\x55" + bytes(14) + get_version)
            assert s.read(64) == b""
        assert chip.core.lost_bytes >= 25
        with serial.Serial(chip.name, 115200, timeout=0.3) as s:
            s.write(b"\x55\x55" + bytes(14) + get_version)
            assert s.read(6) == bytes.fromhex("0000ff00ff00")
    finally:
        chip.close()


def _phone():
    phone = issuer.issue_card(issuer.load_master_keys(), balance=777, phone=True, seed=21)
    assert phone.uid[0] == 0x08 and phone.wtx  # HCE: random UID 08.., S(WTX) per answer
    return phone


def test_nfcpy_pn532_when_card_is_a_phone_wallet_its_wtx_requests_are_granted():
    import nfc
    from nfc.clf import RemoteTarget

    from emu.pn532_pty import Pn532Pty

    phone = _phone()
    chip = Pn532Pty([phone]).start()
    try:
        clf = _nfcpy_open(chip.name)
        tag = nfc.tag.activate(clf, clf.sense(RemoteTarget("106A")))
        check_card(tag.transceive, phone)
        clf.close()
        assert chip.field.picc(phone).wtx_requests >= 3  # one per APDU, nfcpy granted each
    finally:
        chip.close()


def test_adafruit_pn532_when_card_is_a_phone_wallet_the_chip_grants_wtx():
    import serial
    from adafruit_pn532.uart import PN532_UART

    from emu.pn532_pty import Pn532Pty

    phone = _phone()
    chip = Pn532Pty([phone]).start()
    try:
        with serial.Serial(chip.name, 115200, timeout=0.1) as uart:
            pn = PN532_UART(uart)
            assert bytes(pn.read_passive_target(timeout=0.5)) == phone.uid

            def exchange(apdu):
                r = pn.call_function(0x40, params=b"\x01" + apdu, response_length=255)
                assert r[0] == 0x00
                return bytes(r[1:])

            check_card(exchange, phone)
        assert chip.field.picc(phone).wtx_requests >= 3  # granted by the chip itself
    finally:
        chip.close()
