"""Tier 2: the real firmware on the MicroPython unix port (128 KiB heap) against the
emulated PN532 over ptys, HSU and SPI. The foundation's app: detection state machine,
two-card refusal, wait-for-removal, reason codes reported through the board."""

import os

import pytest

from emu.echo_card import EchoCard
from emu.world import World
from validator import errors as E

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(params=["hsu", "spi"])
def world(request, tmp_path):
    w = World(str(tmp_path), spi=request.param == "spi")
    w.start()
    yield w
    w.stop()


def test_board_unix_when_t_union_card_taps_result_is_ok(world):
    assert world.tap(EchoCard())[0] == E.R_OK


def test_board_unix_when_card_lacks_t_union_app_result_is_unsupported(world):
    assert world.tap(EchoCard(aids=()))[0] == E.R_UNSUPPORTED_CARD


def test_board_unix_when_two_cards_in_field_refused_and_neither_processed(world):
    a, b = EchoCard(b"\x01\x01\x01\x01"), EchoCard(b"\x02\x02\x02\x02")
    world.field.place(a)
    world.field.place(b)
    ev = world.wait("TAP").split()
    assert int(ev[1]) == E.R_MULTIPLE_CARDS
    assert a.apdus == [] and b.apdus == []
    world.field.clear()
    world.wait("IDLE")


def test_board_unix_when_card_stays_in_field_it_is_processed_once(world):
    card = EchoCard()
    assert world.tap(card, remove=False)[0] == E.R_OK
    import time

    time.sleep(0.4)  # several poll cycles with the card still there
    assert len([a for a in card.apdus if a[1] == 0xA4]) == 1
    world.field.remove(card)
    world.wait("IDLE")
    assert world.tap(card)[0] == E.R_OK  # presented again after removal: a new tap


def test_board_unix_when_card_leaves_mid_exchange_reports_comm_error(world):
    card = EchoCard()
    world.field.remove_after(card, 0)
    world.field.place(card)
    assert int(world.wait("TAP").split()[1]) == E.R_COMM_ERROR
    world.wait("IDLE")


def test_board_unix_when_control_line_quits_firmware_exits_cleanly(tmp_path):
    w = World(str(tmp_path)).start()
    w.send("Q")
    assert w.wait("BYE").startswith("BYE")
    assert w.proc.wait(10) == 0
    w.stop()


def test_board_unix_when_tap_runs_with_heap_locked_it_allocates_nothing(world):
    world.tap(EchoCard())  # warm-up: first-use allocations happen here
    world.send("A")
    world.wait("ALLOC ARMED")
    assert world.tap(EchoCard())[0] == E.R_OK
    world.send("a")
    assert world.wait("ALLOC ").split() == ["ALLOC", "0"]
