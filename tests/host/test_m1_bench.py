# test_m1_bench: the M1 tap replay behind m1_instr_per_tap still runs and reports sane
# numbers, and the I/O model counts the tap it should (host_tools/bench/bench_m1.py).
# SPDX-License-Identifier: MIT
import argparse
import os
import shutil
import sys

import pytest

from bench import bench_m1
from bench.__main__ import ROOT, mp_env


def _ctx():
    mp = shutil.which("micropython") or os.path.join(sys.prefix, "bin", "micropython")
    if not os.path.exists(mp):
        pytest.skip("no micropython")
    return argparse.Namespace(root=ROOT, micropython=mp, mpenv=mp_env(ROOT), quick=True)


def test_m1_bench_when_two_taps_replayed_on_the_unix_port_each_pays():
    _, k = bench_m1._replay(_ctx(), "tap", 2, False)
    assert k["TAPS"] == 2 and k["EXCHANGES"] == 19


def test_m1_bench_when_calibrating_it_replays_the_harness_calls_only():
    _, k = bench_m1._replay(_ctx(), "cal", 2, False)
    assert k["TAPS"] == 2 and 50 <= k["CALLS"] <= 2000


def test_m1_bench_when_modelled_the_tap_is_14_card_commands_and_5_psam_apdus():
    parts = {}
    ex, io_ms = bench_m1._io(parts)
    assert ex == 19 and parts["ops"] == 14 and parts["psam_apdus"] == 5
    assert parts["etu"] == (372, 4)  # the PSAM at 38 400 bit/s through a real PPS
    assert io_ms > 0
