# Tier 1: 10 000 mutated commands against the PSAM emulator: 5 000 APDUs straight to
# Psam.apdu and 5 000 as raw byte streams into the T=0 engine. Never an exception, always
# an error SW (or silence while the engine waits for bytes), and a genuine 8070 works after.
from emu import issuer, t0
from emu.psam import Psam
from fw.test_tunion_card_fuzz import _Rand, mutate

h = bytes.fromhex
N = 10000
KEYS = issuer.load_master_keys()
D8070 = h("1A2B3C4D00050000006409202401020830000100477004006744280202002900FFFFFFFF")
SEEDS = (
    "00A40000028011",
    "00A40000023F00",
    "00B0950000",
    "00B0960006",
    "00B0970001",
    "8070000024" + D8070.hex(),
    "80720000043EF56C68",
    "801A450210" + "00" * 16,
    "80FA050010" + "00" * 16,
    "00C0000008",
)


def _genuine(p):
    p.apdu(h("00A40000028011"))
    r = p.apdu(h("8070000024") + D8070)
    return r[-2:] == h("9000") and len(r) == 10


def test_psam_fuzz_when_mutated_apdus_then_error_sw_and_still_works():
    seeds = [h(s) for s in SEEDS]
    p = Psam(KEYS, terminal_no=h("000000123456"))
    r = _Rand(0xBADC0DE)
    ok = 0
    for i in range(N // 2):
        if r.next(5) == 0:
            p.apdu(seeds[0])
        resp = p.apdu(mutate(r, seeds[r.next(len(seeds))]))
        assert isinstance(resp, bytes) and len(resp) >= 2
        assert resp[-2:] != b"\x6f\x00", i
        if resp[-2:] == b"\x90\x00":
            ok += 1
    assert ok < N // 4
    p.reset()
    assert _genuine(p)


def test_t0_fuzz_when_mutated_byte_streams_then_no_crash_and_still_works():
    seeds = [h(s) for s in SEEDS]
    p = Psam(KEYS, terminal_no=h("000000123456"))
    e = t0.T0Card(p, nulls=0)
    e.reset()
    r = _Rand(0x7E57)
    for _ in range(N // 2):
        if r.next(20) == 0:
            e.reset()
        out = e.feed(mutate(r, seeds[r.next(len(seeds))]))
        assert isinstance(out, bytes)
        assert out[-2:] != b"\x6f\x00"  # output ends in an SW or a procedure byte
    assert e.reset() == t0.ATR
    assert t0.transceive(e, h("00A40000028011")) == h("9000")
    r2 = t0.transceive(e, h("8070000024") + D8070)
    assert r2[-2:] == h("9000") and len(r2) == 10
