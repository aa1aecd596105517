# Tier 1: the emulated NOR flash behaves like NOR (erase->FF, program clears bits only).
from emu.nor import NorError, NorFlash, PowerCut
from fwtest import raises


def _dev():
    return NorFlash(4 * 4096, block_size=4096, prog_size=256)


def test_nor_when_programmed_reads_back_and_counts():
    d = _dev()
    d.program(10, b"\x12\x34")
    b = bytearray(3)
    d.read(9, b)
    assert bytes(b) == b"\xff\x12\x34"
    assert d.programs == 1 and d.bytes_programmed == 2


def test_nor_when_program_sets_a_bit_raises():
    d = _dev()
    d.program(0, b"\x0f")
    raises(NorError, d.program, 0, b"\xf0")
    d.program(0, b"\x00")  # clearing more bits is fine


def test_nor_when_program_crosses_page_raises():
    d = _dev()
    raises(NorError, d.program, 255, b"\x00\x00")


def test_nor_when_erased_returns_ff():
    d = _dev()
    d.program(4096, b"\x00" * 16)
    d.erase(1)
    b = bytearray(16)
    d.read(4096, b)
    assert bytes(b) == b"\xff" * 16 and d.erases == 1


def test_nor_when_cut_drop_nothing_persists_after():
    d = _dev()
    d.cut_after(1)
    d.program(0, b"\x00")
    raises(PowerCut, d.program, 1, b"\x00")
    raises(PowerCut, d.program, 2, b"\x00")
    d.revive()
    b = bytearray(3)
    d.read(0, b)
    assert bytes(b) == b"\x00\xff\xff"


def test_nor_when_cut_torn_half_persists():
    d = _dev()
    d.cut_after(0, "torn")
    raises(PowerCut, d.program, 0, b"\x00" * 8)
    b = bytearray(8)
    d.read(0, b)
    assert bytes(b) == b"\x00" * 4 + b"\xff" * 4


def test_nor_when_file_backed_survives_reopen():
    import os

    path = "/tmp/ykt_test_nor_%d.bin" % (id(path_holder) % 100000)
    try:
        os.remove(path)
    except OSError:
        pass
    d = NorFlash(2 * 4096, path=path)
    d.program(5000, b"\xa5")
    d.close()
    d = NorFlash(2 * 4096, path=path)
    b = bytearray(2)
    d.read(5000, b)
    d.close()
    os.remove(path)
    assert bytes(b) == b"\xa5\xff"


path_holder = object()


def test_nor_when_inverted_file_is_sparse_and_reads_erased():
    import os

    path = "/tmp/ykt_test_nor_inv.bin"
    try:
        os.remove(path)
    except OSError:
        pass
    d = NorFlash(64 * 4096, path=path, invert=True)
    b = bytearray(4)
    d.read(100000, b)
    assert bytes(b) == b"\xff" * 4
    d.program(300, b"\x12\x34")
    d.erase(1)
    d.close()
    d = NorFlash(64 * 4096, path=path, invert=True)
    d.read(299, b)
    d.close()
    os.remove(path)
    assert bytes(b) == b"\xff\x12\x34\xff"
