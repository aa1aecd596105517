# test_bench_txn: the tap replay behind instr_per_tap still runs and reports sane numbers.
# SPDX-License-Identifier: MIT
#
# Runs host_tools/bench/mp_tap_replay.py on the unix port without valgrind (2 taps), so
# the benchmark cannot rot silently when the engine, the rig or the stores change.
import argparse
import os
import shutil
import sys

import pytest

from bench import bench_txn
from bench.__main__ import ROOT, mp_env


def _ctx():
    mp = shutil.which("micropython") or os.path.join(sys.prefix, "bin", "micropython")
    if not os.path.exists(mp):
        pytest.skip("no micropython")
    return argparse.Namespace(root=ROOT, micropython=mp, mpenv=mp_env(ROOT), quick=True)


def _check(stack):
    _, k = bench_txn.replay(_ctx(), "check", 2, timeout=60, stack=stack)
    assert k["TAPS"] == 2  # both replayed taps answered R_OK
    assert k["EXCHANGES"] == 6  # a CAPP tap on the one-line flat-fare table (emu.rig.flat_policy)
    assert k["PROGRAMS"] == 7  # tear context, gray and normal record (body + commit word)
    assert k["RECORDS"] == 1 + 2 * 3  # next seq: recorded tap + 2 replays, gray + normal
    assert k["SAME"] == 1  # the slice-copy NOR model ended equal to emu.nor
    return k


def test_tap_replay_when_two_taps_replayed_through_pn532_each_pays_flash_matches_emu_nor():
    _check("pn532")


def test_tap_replay_when_two_taps_replayed_at_apdu_level_each_pays_flash_matches_emu_nor():
    _check("apdu")


def test_tap_replay_when_calibrating_replays_the_harness_calls_only():
    _, k = bench_txn.replay(_ctx(), "cal", 2, timeout=60)
    assert 20 <= k["CALLS"] <= 400
    # the loop ran no tap: only the recorded and the traced tap wrote records
    assert k["TAPS"] == 2 and k["RECORDS"] == 1 + 2 * 2


# The I/O model: a PSAM whose ATR offers TA1=13 is driven at 38 400 bit/s through a real
# PPS; one whose ATR says TA1=11 stays at the default rate (the *_psam9600 figures).
def _model(ta1):
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    parts = {}
    ex = bench_txn._tap(parts=parts, ta1=ta1)[0]
    return ex, parts


def test_tap_model_when_the_psam_offers_ta1_13_pps_reaches_38400():
    ex, parts = _model(0x13)
    assert parts["etu"] == (372, 4)
    assert ex == 6


def test_tap_model_when_the_psam_says_ta1_11_the_rate_stays_default_and_io_is_slower():
    _, fast = _model(0x13)
    _, slow = _model(0x11)
    assert slow["etu"] in (None, (372, 1))
    assert slow["psam_line"] > 3 * fast["psam_line"]


def test_tap_alloc_snippet_when_run_a_second_purchase_under_heap_lock_allocates_nothing():
    import subprocess

    ctx = _ctx()
    p = subprocess.run([ctx.micropython, "-X", "heapsize=1m", "-c", bench_txn._SNIPPET],
                       env=ctx.mpenv, capture_output=True, text=True, timeout=120)
    assert "ALLOC 0" in p.stdout.splitlines(), p.stdout + p.stderr
