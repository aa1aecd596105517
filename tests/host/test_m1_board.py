"""Tier 2: the city's M1 purse cards on the real firmware (unix port, ROMFS, 128 KiB heap)
against the emulated PN532 over ptys (HSU and SPI) -- its own Crypto1 talking to an
emulated MIFARE Classic card -- with the local PSAM in slot 1 deriving the keys, as
`make sim` runs the validator. The app dispatches by SAK/ATQA: a T-Union card still pays
through the CPU engine, an M1 card through the M1 engine, anything else is refused as not
supported; a torn M1 debit is settled by the next tap; the M1 tap allocates nothing."""

import pytest

from emu import issuer, mifare
from validator import errors as E
from ykt import sim

TERMINAL = "000000120001"
NOW = 827800000  # 2026-03-27 in device seconds, inside every card's validity
FARE = 200  # line 12 of the default fare table: flat 2.00


@pytest.fixture(scope="module", params=["hsu", "spi"])
def rig(request, tmp_path_factory):
    s = sim.Sim(str(tmp_path_factory.mktemp("m1board")),
                spi_terminals=[TERMINAL] if request.param == "spi" else ())
    s.prepare(sim.load_scenario(sim.DEFAULT_SCENARIO))
    w = s.validator(TERMINAL)
    w.send("P 12 1 0 0")
    w.wait("POS")
    w.set_time(NOW)
    yield s, w
    s.stop()


_N = [0]


def m1card(s, balance=1000, **kw):
    _N[0] += 1
    uid = bytes((0x10, 0x20, _N[0] & 0xFF, 0x5A)) if not kw.pop("long", False) else \
        bytes((0x04, 0x11, 0x22, 0x33, 0x44, _N[0] & 0xFF, 0x80))
    return mifare.issue_purse(issuer.local_master_keys(s.keys), uid, balance=balance, **kw)


def _fare(w, c):
    r = w.tap(c)
    return r[0], r[1], r[2]


def test_m1_board_when_m1_card_taps_it_pays_through_the_m1_engine(rig):
    s, w = rig
    c = m1card(s)
    reason, amount, balance = _fare(w, c)
    assert reason == E.R_OK and amount > 0 and balance == 1000 - amount
    assert mifare.purse_state(c)[:3] == (balance, balance, 1)
    c7 = m1card(s, long=True, size=4096)
    assert _fare(w, c7)[0] == E.R_OK


def test_m1_board_when_t_union_card_taps_next_it_still_pays(rig):
    s, w = rig
    c = s.card("tunion-after-m1-%d" % id(w), {"balance": 5000})
    assert w.tap(c)[0] == E.R_OK and c.balance < 5000


def test_m1_board_when_card_is_neither_iso_dep_nor_classic_it_is_not_supported(rig):
    s, w = rig
    c = m1card(s)
    c.sak = 0x00  # an Ultralight-like answer
    assert w.tap(c)[0] == E.R_UNSUPPORTED_CARD and c.frames == 0


def test_m1_board_when_torn_at_the_debit_the_next_tap_recovers_it_charged_once(rig):
    s, w = rig
    c = m1card(s)
    c.tear(2, "after")  # the value block paid, the answer lost
    assert w.tap(c)[0] == E.R_TAP_AGAIN
    reason, amount, balance = _fare(w, c)
    assert reason == E.R_RECOVERED and balance == 1000 - amount
    assert mifare.purse_state(c)[:3] == (balance, balance, 1)


def test_m1_board_when_m1_tap_runs_with_heap_locked_it_allocates_nothing(rig):
    s, w = rig
    w.tap(m1card(s))  # first-use allocations happen here
    w.send("A")
    w.wait("ALLOC ARMED")
    assert w.tap(m1card(s))[0] == E.R_OK
    w.send("a")
    assert w.wait("ALLOC ").split() == ["ALLOC", "0"]
