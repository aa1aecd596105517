# Tier 1: hostile bytes on the PN532 line. Random and mutated frames, bad checksums, wrong
# lengths, truncation, garbage between frames, missing ACK: the driver never crashes or
# hangs, always raises NfcError/NfcTimeout, and the next good frame still works.
import random

from emu import pn532 as emu
from emu.wires import RecordingWire, ReplayWire, SimClock
from fwtest import MICROPYTHON, heap_locked
from validator.drivers.pn532 import Pn532
from validator.drivers.pn532_link import Hsu
from validator.errors import NfcError
from validator.link.iso14443 import Iso14443Reader

MP_HEAP = "256k"  # fixtures: the emulated PN532 with its ISO 14443 card layer (emu.picc)

GOOD = emu.frame(b"\xd5\x03\x32\x01\x06\x07")


class ScriptWire:
    """The chip side is a script: each write answers with the next canned byte string."""

    def __init__(self, clock):
        self.clock = clock
        self.answers = []
        self.rx = b""

    def write(self, buf, n=None):
        if self.answers:
            self.rx += self.answers.pop(0)
        return n

    def readinto(self, buf, n=None):
        k = min(len(buf), len(self.rx))
        for i in range(k):
            buf[i] = self.rx[i]
        self.rx = self.rx[k:]
        return k

    def wait(self, ms):
        if self.rx:
            return True
        self.clock.advance(ms)
        return False


def _mutate(rnd, f):
    f = bytearray(f)
    op = rnd.randrange(7)
    if op == 0 and f:  # flip a byte
        f[rnd.randrange(len(f))] ^= 1 << rnd.randrange(8)
    elif op == 1:  # truncate
        f = f[: rnd.randrange(len(f) + 1)]
    elif op == 2:  # garbage in front
        f = bytearray(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 40))) + f
    elif op == 3:  # wrong LEN (LCS kept consistent)
        ln = rnd.randrange(256)
        f[3] = ln
        f[4] = (-ln) & 0xFF
    elif op == 4:  # pure noise
        f = bytearray(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 300)))
    elif op == 5:  # extended-frame header with random lengths
        f = bytearray(b"\x00\x00\xff\xff\xff") + bytearray(
            rnd.getrandbits(8) for _ in range(rnd.randrange(3, 80))
        )
    elif len(f) > 6:  # wrong TFI / wrong answer code
        f[5] = rnd.getrandbits(8)
        f[6] = rnd.getrandbits(8)
    return bytes(f)


def test_pn532_fuzz_when_10000_hostile_answers_errors_are_clean():
    n = 10000
    rnd = random.Random(1234) if not MICROPYTHON else None
    if rnd is None:

        class R:  # MicroPython's random lacks Random(); a tiny LCG with the same API subset
            def __init__(self, s):
                self.s = s

            def getrandbits(self, k):
                self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
                return (self.s >> 8) & ((1 << k) - 1)

            def randrange(self, a, b=None):
                if b is None:
                    a, b = 0, a
                return a + self.getrandbits(16) % (b - a) if b > a else a

        rnd = R(1234)
    clock = SimClock()
    wire = ScriptWire(clock)
    chip = Pn532(Hsu(wire), clock)
    errors = ok = 0
    for i in range(n):
        bad = _mutate(rnd, GOOD)
        ack = emu.ACK if rnd.randrange(4) else _mutate(rnd, emu.ACK)
        wire.answers = [ack + bad]
        wire.rx = b""
        try:
            chip.command(0x02, 0, 20)  # GetFirmwareVersion (UM0701 §7.2.2)
            ok += 1  # a mutation can leave a valid frame (e.g. garbage before it)
        except NfcError:
            errors += 1
        # the next good exchange must still work
        wire.answers = [emu.ACK + GOOD]
        wire.rx = b""
        assert chip.firmware_version() == (0x32, 0x01, 0x06, 0x07)
    assert errors > n // 2 and errors + ok == n


def test_pn532_when_transmit_replayed_under_heap_lock_allocates_nothing():
    if not MICROPYTHON:
        return  # allocation is a MicroPython property; the replay itself is tested below
    _replay_alloc()


def _replay_alloc():
    clock = SimClock()
    field = emu.Field()
    core = emu.Pn532Core(field, hsu=True)
    rec = RecordingWire(core, clock)
    reader = Iso14443Reader(Pn532(Hsu(rec), clock))
    reader.begin()
    from fw.test_pn532 import EchoCard

    field.place(EchoCard())
    cmd = bytearray(b"\x80\x5c\x00\x02\x04")
    resp = bytearray(300)
    rec.start()
    reader.poll()
    reader.transmit(cmd, 5, resp)
    reader.release()
    replay = ReplayWire(rec, clock)
    reader.chip.t = Hsu(replay)

    def tap():
        replay.rewind()
        reader.poll()
        reader.transmit(cmd, 5, resp)
        reader.release()

    tap()
    assert heap_locked(tap) == 0
