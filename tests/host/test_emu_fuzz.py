# Tier 2: hypothesis-driven APDUs and T=0 byte streams against the emulators: no
# exception escapes, every answer carries a status word, no money moves.
from hypothesis import given, settings
from hypothesis import strategies as st

from emu import issuer, t0
from emu.psam import Psam

KEYS = issuer.load_master_keys()
SELECT = bytes.fromhex("00A4040008A00000063201010500")

apdus = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.sampled_from([0x00, 0x80, 0x84]), st.integers(0, 255), st.binary(min_size=2,
              max_size=2), st.binary(max_size=140)).map(
        lambda t: bytes((t[0], t[1])) + t[2] + bytes((len(t[3]) & 0xFF,)) + t[3]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(apdus, max_size=6), st.sampled_from(["3des", "sm4"]))
def test_card_when_hypothesis_apdus_then_sw_and_balance_kept(cmds, alg):
    c = issuer.issue_card(KEYS, alg=alg, balance=777)
    c.apdu(SELECT)
    for cmd in cmds:
        r = c.apdu(cmd)
        assert len(r) >= 2 and r[-2:] != b"\x6f\x00"
    assert c.balance == 777 and c.offline_atc == 0


@settings(max_examples=400, deadline=None)
@given(st.lists(apdus, max_size=6))
def test_psam_when_hypothesis_apdus_then_sw(cmds):
    p = Psam(KEYS)
    p.apdu(bytes.fromhex("00A40000028011"))
    for cmd in cmds:
        r = p.apdu(cmd)
        assert len(r) >= 2 and r[-2:] != b"\x6f\x00"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8), st.integers(0, 2), st.booleans())
def test_t0_when_hypothesis_bytes_then_no_crash_and_recovers(chunks, nulls, one):
    e = t0.T0Card(Psam(KEYS), nulls=nulls, one_by_one=one)
    e.reset()
    for ch in chunks:
        assert isinstance(e.feed(ch), bytes)
    e.reset()
    assert t0.transceive(e, bytes.fromhex("00B0960006"))[-2:] == b"\x90\x00"
