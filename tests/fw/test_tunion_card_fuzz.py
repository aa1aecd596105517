# Tier 1: 10 000 mutated APDUs against the T-Union card emulator. Every answer is a status
# word (never an exception, never the internal-error 6F00), no mutation moves money or the
# counters, and a genuine purchase still works afterwards.
from emu import issuer
from emu.psam import Psam

h = bytes.fromhex
N = 10000
KEYS = issuer.load_master_keys()
SEEDS = (
    "00A4040008A00000063201010500",
    "00A404000E325041592E5359532E444446303100",
    "00B0950000",
    "00B201C400",
    "00B201F430",
    "00B201D480",
    "805C030204",
    "805003020B0100000064000000123456" + "0F",
    "805001020B0100000064000000123456" + "0F",
    "805000020B010000006400000012345610",
    "80DC00F030" + "00" * 48,
    "80DC01D080" + "2701" + "00" * 126,
    "805401000F000000102025060108300011223344" + "08",
    "805200000B2025060108300011223344" + "04",
    "805A000902000108",
    "0084000004",
    "841E00000411223344",
    "841800000411223344",
)


class _Rand:
    def __init__(self, s):
        self.s = s

    def next(self, n):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x % n


def mutate(r, base):
    b = bytearray(base)
    k = r.next(6)
    if k == 0:  # flip bytes
        for _ in range(1 + r.next(3)):
            b[r.next(len(b))] = r.next(256)
    elif k == 1:  # truncate
        b = b[: r.next(len(b))]
    elif k == 2:  # extend
        for _ in range(1 + r.next(8)):
            b.append(r.next(256))
    elif k == 3:  # wrong Lc
        if len(b) > 4:
            b[4] = r.next(256)
    elif k == 4:  # random header over a valid body
        b[r.next(4)] = r.next(256)
    else:  # pure noise
        b = bytearray()
        for _ in range(r.next(40)):
            b.append(r.next(256))
    return bytes(b)


def test_card_fuzz_when_mutated_apdus_then_error_sw_and_no_money_moves():
    seeds = [h(s) for s in SEEDS]
    for alg in ("3des", "sm4"):
        c = issuer.issue_card(KEYS, alg=alg, balance=5000, seed=11)
        r = _Rand(0xC0FFEE + len(alg))
        n_err = 0
        for i in range(N // 2):
            if r.next(4) == 0:
                c.apdu(seeds[0])  # keep the application selected most of the time
            if r.next(50) == 0:
                c.deselect()
            resp = c.apdu(mutate(r, seeds[r.next(len(seeds))]))
            assert isinstance(resp, bytes) and len(resp) >= 2
            assert resp[-2:] != b"\x6f\x00", i
            if resp[-2:] != b"\x90\x00":
                n_err += 1
            assert c.balance == 5000 and c.offline_atc == 0 and c.online_atc == 0
        assert n_err > N // 4  # most mutations must be refused
        # the card still works: one genuine CAPP purchase
        p = Psam(KEYS, terminal_no=h("000000123456"))
        p.apdu(h("00A40000028011"))
        c.deselect()
        assert c.apdu(seeds[0])[-2:] == h("9000")
        init = c.apdu(h("805003020B0100000064000000123456"))
        assert init[-2:] == h("9000")
        d = init[11:15] + init[4:6] + h("0000006409") + h("20250601083000") + init[9:11]
        m = p.apdu(h("8070000024") + d + c.ef15[12:20] + c.ef15[0:8])
        deb = c.apdu(h("805401000F") + m[0:4] + h("20250601083000") + m[4:8] + h("08"))
        assert deb[-2:] == h("9000") and c.balance == 4900
