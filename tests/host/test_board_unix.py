"""Tier 2: the real firmware on the MicroPython unix port (bytecode in ROMFS, the MCU's
heap: -X heapsize=128k) against the emulated PN532 over ptys, HSU and SPI, with
a provisioned flash, a booted PSAM and a depot sync -- the validator as `make sim` runs it.
The app's detection state machine: one tap per presentation, two cards refused,
wait-for-removal, a card leaving mid-exchange, a missing PSAM as a fault state, and a whole
tap allocating nothing with the heap locked."""

import time

import pytest

from emu.echo_card import EchoCard
from emu.world import World
from validator import errors as E
from ykt import sim

TERMINAL = "000000120001"
NOW = 827800000  # 2026-03-27 in device seconds, inside every card's validity


@pytest.fixture(scope="module", params=["hsu", "spi"])
def rig(request, tmp_path_factory):
    s = sim.Sim(str(tmp_path_factory.mktemp("board")),
                spi_terminals=[TERMINAL] if request.param == "spi" else ())
    s.prepare(sim.load_scenario(sim.DEFAULT_SCENARIO))
    w = s.validator(TERMINAL)
    w.send("P 12 1 0 0")
    w.wait("POS")
    w.set_time(NOW)
    yield s, w
    s.stop()


def card(s, name, **spec):
    spec.setdefault("balance", 5000)
    return s.card(name, spec)


def test_board_unix_when_t_union_card_taps_it_pays(rig):
    s, w = rig
    c = card(s, "pay-%d" % id(w))
    reason, amount, balance, seq = w.tap(c)
    assert reason == E.R_OK and amount > 0 and c.balance == 5000 - amount == balance
    assert seq >= 0


def test_board_unix_when_booted_both_psams_negotiated_38400_by_pps(rig):
    s, w = rig
    w.send("S")
    st = dict(kv.split("=") for kv in w.wait("STATE").split()[1:])
    assert st["psam_di"] == "4,4"  # TA1 = 13 offered in the ATR, PPS agreed Di = 4


def test_board_unix_when_card_lacks_t_union_app_result_is_unsupported(rig):
    s, w = rig
    assert w.tap(EchoCard(aids=()))[0] == E.R_UNSUPPORTED_CARD


def test_board_unix_when_two_cards_in_field_refused_and_neither_processed(rig):
    s, w = rig
    a, b = EchoCard(b"\x01\x01\x01\x01"), EchoCard(b"\x02\x02\x02\x02")
    w.field.place(a)
    w.field.place(b)
    assert int(w.wait("TAP").split()[1]) == E.R_MULTIPLE_CARDS
    assert a.apdus == [] and b.apdus == []
    w.field.clear()
    w.wait("IDLE")


def test_board_unix_when_card_stays_in_field_it_is_charged_once(rig):
    s, w = rig
    c = card(s, "stay-%d" % id(w))
    reason, amount, _, _ = w.tap(c, remove=False)
    assert reason == E.R_OK
    time.sleep(0.4)  # several poll cycles with the card still there
    w.field.remove(c)
    w.wait("IDLE")
    assert c.balance == 5000 - amount


def test_board_unix_when_card_leaves_mid_exchange_nothing_is_charged(rig):
    s, w = rig
    c = card(s, "gone-%d" % id(w))
    w.field.remove_after(c, 1)  # answers SELECT, gone before INITIALIZE
    w.field.place(c)
    assert int(w.wait("TAP").split()[1]) == E.R_COMM_ERROR
    w.wait("IDLE")
    assert c.balance == 5000


def test_board_unix_when_tap_runs_with_heap_locked_it_allocates_nothing(rig):
    s, w = rig
    w.tap(card(s, "warm-%d" % id(w)))  # first-use allocations happen here
    w.set_time(NOW + 100)
    w.send("A")
    w.wait("ALLOC ARMED")
    assert w.tap(card(s, "locked-%d" % id(w)))[0] == E.R_OK
    w.send("a")
    assert w.wait("ALLOC ").split() == ["ALLOC", "0"]


def test_board_unix_when_psam_missing_every_tap_is_a_sam_fault(tmp_path):
    w = World(str(tmp_path)).start()  # no PSAM in any slot
    try:
        assert w.tap(EchoCard())[0] == E.R_SAM_FAULT
        w.send("Q")
        assert w.wait("BYE").startswith("BYE")
        assert w.proc.wait(10) == 0
    finally:
        w.stop()


def _state(w):
    w.send("S")
    return dict(kv.split("=") for kv in w.wait("STATE").split()[1:])


def test_board_unix_when_booted_on_hsu_both_ends_agree_on_the_line_speed(rig):
    s, w = rig
    st = _state(w)
    if w.spi is not None:
        assert st["hsu"] == "0"  # SPI: no line speed
        return
    # the emulated chip drops bytes sent at a speed the other end is not set to (the pty's
    # termios speed); the unix board stays at the power-up 115 200 (pn532_link: a board
    # opts in to SetSerialBaudRate with Hsu(link, fast); tests/fw/test_pn532.py)
    assert st["hsu"] == "115200" and w.core.baud == 115200 and w._host_baud() == 115200


def test_board_unix_when_the_pn532_browns_out_mid_service_the_validator_brings_it_back(rig):
    s, w = rig
    before = int(_state(w)["reinits"])
    w.pn532_power_cycle()  # asleep, 115 200 baud, RF off, no SAM configuration
    c = card(s, "after-brownout-%d" % id(w))
    reason, amount, balance, _ = w.tap(c, timeout=20)
    assert reason == E.R_OK and c.balance == 5000 - amount == balance
    st = _state(w)
    assert int(st["reinits"]) == before + 1
    if w.spi is None:
        assert w.core.baud == 115200 and st["hsu"] == "115200"
