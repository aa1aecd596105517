# Tier 2: the default sim day (host_tools/emu/fares/day.json) through the rules and the
# oracle, and `ykt fares compile/show` with the real back-office content check.
# SPDX-License-Identifier: MIT
import argparse
import os
import sys

from depot.testkeys import TEST_CONTENT_PUB
from emu import farescen
from validator.rules import table as ft
from validator.rules import table_host
from validator.sync import auth
from validator.util import bcdtime
from ykt import cli, cmd_fares

sys.path.insert(0, os.path.dirname(__file__))
import fare_oracle  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FARES = os.path.join(ROOT, "host_tools", "emu", "fares")
DAY = os.path.join(FARES, "day.json")
KEYS = ("reason", "kind", "fare", "penalty", "amount", "balance")


def test_rules_scenario_when_default_day_runs_matches_oracle():
    table, sc = farescen.load(DAY)
    got = farescen.run(table, sc)
    want = fare_oracle.run(table, sc)
    assert len(got) == len(want) == sum(1 for t in sc["taps"] if "foreign" not in t)
    for a, b in zip(got, want, strict=True):
        assert [a[k] for k in KEYS] == [b[k] for k in KEYS], (a, b)


def test_rules_scenario_when_default_day_runs_every_rule_shows():
    table, sc = farescen.load(DAY)
    rows = farescen.run(table, sc)
    kinds = {r["kind"] for r in rows}
    reasons = {r["reason"] for r in rows}
    assert {"flat", "transfer", "board", "section", "capped", "free", "no_entry"} <= kinds
    assert {"ok", "issuer_not_accepted", "not_interconnect", "insufficient_balance",
            "already_paid"} <= reasons
    assert any(r["penalty"] > 0 for r in rows)  # missing tap-off charged at next boarding
    # hand-checked against default.json (not against either implementation)
    at = {(r["card"], r["at"]): (r["kind"], r["fare"], r["penalty"]) for r in rows}
    assert at[("alice", "07:20:00")] == ("transfer", 100, 0)  # 200 - 100 off, other line
    assert at[("alice", "07:50:00")] == ("flat", 200, 0)  # journey already used its transfer
    assert at[("bob", "08:00:00")] == ("flat", 100, 0)  # student 50%
    assert at[("bob", "09:00:00")] == ("transfer", 100, 0)  # (2,7)=400, 50% = 200, -100
    assert at[("bob", "13:10:00")] == ("transfer", 0, 0)  # rail exit -> bus: 100 - 100
    assert at[("dave", "10:20:00")] == ("no_entry", 100, 0)  # staff fixed 100 <= max 500
    assert at[("alice", "12:40:00")] == ("transfer", 300, 0)  # (1,6)=400 - 100 from rail
    assert at[("alice", "18:45:00")] == ("flat", 200, 500)  # 17:00 boarding never closed
    assert at[("jack", "15:00:00")] == ("section", 400, 0)  # (0,5) = 400, no transfer
    assert at[("ivan", "16:00:00")] == ("capped", 0, 0)  # 5 x 200 = cap 1000
    assert at[("ivan", "2026-03-03T03:30:00")] == ("capped", 0, 0)  # day starts 04:00
    assert at[("ivan", "2026-03-03T05:00:00")] == ("flat", 200, 0)
    assert at[("erin", "10:45:00")] == ("transfer", 100, 0)  # Beijing visitor


def _ykt(*argv):
    # only this verb's parser: the full CLI imports every cmd_* module (other engineers')
    p = argparse.ArgumentParser(prog="ykt")
    cmd_fares.register(p.add_subparsers(dest="verb"))
    args = p.parse_args(list(argv))
    try:
        return args.func(args) or 0
    except cli.CommandError as e:
        return e.code


def test_ykt_fares_when_compiled_validator_accepts_and_tamper_refused(tmp_path, capsys):
    out = str(tmp_path / "t.bin")
    assert _ykt("fares", "compile", os.path.join(FARES, "default.json"), "-o", out) == 0
    assert _ykt("fares", "show", out) == 0
    shown = capsys.readouterr().out
    assert "signature ok" in shown and "line 801 (bus): 8 stops, max 500 fen" in shown
    blob = open(out, "rb").read()
    ts = ft.FareTables()
    kind, version, body = auth.verify_content(TEST_CONTENT_PUB, blob)
    now = bcdtime.secs(2026, 3, 2)  # default.json activates 2026-01-01
    assert ts.offer(body, now - 86400 * 70, version) == table_host.T_PENDING  # not yet due
    assert ts.current(now).version == 1
    bad = bytearray(blob)
    bad[60] ^= 1
    assert auth.verify_content(TEST_CONTENT_PUB, bytes(bad)) is None
    open(out, "wb").write(bytes(bad))
    assert _ykt("fares", "show", out) == cli.EXIT_FAIL
    from depot import content

    other = str(tmp_path / "other.key")
    content.keygen(other)
    assert _ykt("fares", "compile", os.path.join(FARES, "default.json"), "-o", out,
                "--key-file", other) == 0
    assert auth.verify_content(TEST_CONTENT_PUB, open(out, "rb").read()) is None  # wrong key
    assert ts.current(now).version == 1


def test_ykt_fares_when_table_invalid_exit_codes(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"version": 1, "city": "2900", "lines": [{"id": 1, "stops": 2, '
                 '"matrix": [[1, 2], [3, 1]]}]}')
    # bad content, like bad JSON, is bad input (README exit codes): 2
    assert _ykt("fares", "compile", str(p)) == cli.EXIT_USAGE
    p.write_text("{not json")
    assert _ykt("fares", "compile", str(p)) == cli.EXIT_USAGE
    assert _ykt("fares", "compile", str(tmp_path / "missing.json")) == cli.EXIT_IO
    assert _ykt("fares", "compile", os.path.join(FARES, "default.json"), "--key-file",
                str(p)) == cli.EXIT_USAGE  # not a key file
