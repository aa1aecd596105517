"""Tier 2: configuration "m1" (app/CONFIG.md) on the real firmware (unix port, ROMFS,
128 KiB heap): a validator whose configuration does not say its city has M1 cards never
builds the M1 engine (~5 KB of heap kept free, tests/host/test_heap_budget.py) -- a MIFARE
Classic card is refused as not supported with nothing sent to it, a T-Union card pays --
and the same city configured "m1": 1 pays the M1 card."""

import pytest

from emu import issuer, mifare
from validator import errors as E
from ykt import sim

TERMINAL = "000000120001"
NOW = 827800000  # 2026-03-27 in device seconds, inside every card's validity
CFG = {"city": "2900", "line": 0, "repeat_window_s": 60, "tear_keep_s": 600}


def _validator(tmp_path, cfg):
    s = sim.Sim(str(tmp_path))
    s.device_config = cfg
    s.prepare(sim.load_scenario(sim.DEFAULT_SCENARIO))
    w = s.validator(TERMINAL)
    w.send("P 12 1 0 0")
    w.wait("POS")
    w.set_time(NOW)
    return s, w


def _m1card(s, n):
    return mifare.issue_purse(issuer.local_master_keys(s.keys), bytes((0x10, 0x21, n, 0x5A)),
                              balance=1000)


@pytest.mark.parametrize("m1", [None, 0])
def test_m1_config_when_not_set_m1_card_is_not_supported_and_t_union_pays(tmp_path, m1):
    cfg = dict(CFG) if m1 is None else dict(CFG, m1=m1)
    s, w = _validator(tmp_path, cfg)
    try:
        c = _m1card(s, 1)
        assert w.tap(c)[0] == E.R_UNSUPPORTED_CARD and c.frames == 0
        assert mifare.purse_state(c)[0] == 1000
        t = s.card("tunion-m1-off", {"balance": 5000})
        assert w.tap(t)[0] == E.R_OK and t.balance < 5000
    finally:
        s.stop()


def test_m1_config_when_set_the_m1_card_pays(tmp_path):
    s, w = _validator(tmp_path, dict(CFG, m1=1))
    try:
        c = _m1card(s, 2)
        r = w.tap(c)
        assert r[0] == E.R_OK and mifare.purse_state(c)[0] == 1000 - r[1]
    finally:
        s.stop()
