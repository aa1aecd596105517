# Tier 2: `ykt sim --scenario` on malformed scenario files (issue 19): each is one line naming
# the file, the place and what is expected, exit 2 (3 for a file that is not there), and
# nothing runs -- no traceback, no validator started, no impossible time charged, no taps out
# of time order, no misspelled key ignored. The schema is emu.scenario's.
import copy
import json
import os

import pytest

from emu import farescen, scenario
from ykt import cli, sim

DAY = json.load(open(sim.DEFAULT_SCENARIO))
DAY["table"] = os.path.join(sim.EMU, "fares", "default.json")  # absolute: files in tmp_path


def _with(**edit):
    d = copy.deepcopy(DAY)
    for path, v in edit.items():
        obj = d
        keys = path.split("__")
        for k in keys[:-1]:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        last = keys[-1]
        if isinstance(obj, list):
            obj[int(last)] = v
        elif v is _DROP:
            del obj[last]
        else:
            obj[last] = v
    return d


_DROP = object()
T0 = {"at": "08:00:00", "card": "alice", "line": 12}
# (file content, what the one line says) -- the 11 malformed cases the issue tried, then more
BAD = [
    ('{"day": "2026-03-02", "cards": {', "not a JSON scenario"),
    ([], "scenario: expected an object {...}, got []"),
    ({}, 'missing required key "cards"'),
    (_with(taps__0__card="zoe"), 'taps[0].card: no card "zoe" in cards'),
    (_with(taps__0__terminal="12"), "taps[0].terminal: expected a string of 12 hex digits"),
    (_with(taps__0__terminal="00000012000G"), "taps[0].terminal: expected a string of 12 hex"),
    (_with(taps__0__door="front"), 'taps[0].door: expected one of "any", "entry", "exit"'),
    (_with(day="2026-02-30"), 'day: expected a real date "YYYY-MM-DD", got "2026-02-30"'),
    (_with(day="March 2"), 'day: expected a real date "YYYY-MM-DD"'),
    (_with(cards__alice__alg="des"), 'cards.alice.alg: expected one of "3des", "sm4"'),
    (_with(cards__alice__type="vip"), "cards.alice.type: expected one of normal, senior"),
    # impossible clock times are refused, not charged
    (_with(taps__0__at="25:99:00"), 'taps[0].at: expected "hh:mm:ss" (00:00:00..23:59:59)'),
    (_with(taps__0__at="2026-03-02T23:60:00"), "taps[0].at: expected"),
    (_with(taps__0__at=-5), "taps[0].at: expected"),
    # out of time order
    (_with(taps__1__at="05:00:00"), 'taps[1].at: "05:00:00" is before taps[0] ("06:00:00"): '
     "taps must be in time order"),
    # misspelled keys are refused, with the known ones
    (_with(cards__alice__balanse=5000), 'cards.alice: unknown key "balanse" (known: alg, app, '
     "balance,"),
    (_with(taps__0__stopp=2), 'taps[0]: unknown key "stopp"'),
    (_with(tapz=[]), 'scenario: unknown key "tapz"'),
    (_with(taps__0__line="12"), "taps[0].line: expected a whole number 0..65535, got \"12\""),
    (_with(cards__alice__balance=True), "cards.alice.balance: expected a whole number"),
    (_with(cards__alice__issuer="0200"), "cards.alice.issuer: expected a string of 16 hex"),
    (_with(taps__0__line=_DROP), 'taps[0]: missing required key "line"'),
    (_with(taps=[]), "taps: the sim needs at least one validator tap"),
    (dict(_with(day=_DROP), taps=[T0]), 'taps[0].at: "08:00:00" needs the scenario\'s "day"'),
    (_with(taps__21__foreign__mode="boat"), "taps[21].foreign.mode: expected one of"),
    (_with(taps__0__tear="sometimes"), "taps[0].tear: expected one of"),
    # a clone copies another card and takes nothing of its own
    (_with(cards__bob={"clone_of": "zoe"}), 'cards.bob.clone_of: no other card "zoe"'),
    (_with(cards__bob={"clone_of": "bob"}), 'cards.bob.clone_of: no other card "bob"'),
    (_with(cards__bob={"clone_of": "alice", "balance": 9}),
     'cards.bob: a clone copies "alice", it takes no "balance" of its own'),
    (_with(cards__bob={"clone_of": "alice"}, cards__eve={"clone_of": "bob"}),
     'cards.eve.clone_of: "bob" is itself a clone; name the original'),
    (_with(cards__m={"app": "m1"}, cards__bob={"clone_of": "m"}),
     'cards.bob.clone_of: "m" is an M1 card'),
    (_with(cards__bob={"clone_of": 7}), "cards.bob.clone_of: expected"),
]


@pytest.mark.parametrize("content,want", BAD, ids=[w[:40] for _, w in BAD])
def test_sim_when_scenario_malformed_then_one_line_exit_2_nothing_run(capsys, tmp_path,
                                                                       content, want):
    src = tmp_path / "scn.json"
    src.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "out"
    code = cli.main(["sim", "--scenario", str(src), "--out", str(out)])
    o, err = capsys.readouterr()
    assert code == cli.EXIT_USAGE, err
    assert err.startswith("ykt: %s: not a " % src) and want in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + o
    assert not out.exists()  # checked before the sim made its folder or started anything


def test_sim_when_fare_table_has_misspelled_key_then_refused_naming_both(capsys, tmp_path):
    table = json.load(open(DAY["table"]))
    table["caps"] = table.pop("cap", {"daily": 500})
    (tmp_path / "t.json").write_text(json.dumps(table))
    src = tmp_path / "scn.json"
    src.write_text(json.dumps(dict(DAY, table="t.json")))
    code = cli.main(["sim", "--scenario", str(src), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert err.startswith("ykt: %s: not a fare table (named by %s): table: unknown key 'caps'"
                          % (tmp_path / "t.json", src)), err


def test_sim_when_table_file_missing_then_io_naming_it(capsys, tmp_path):
    src = tmp_path / "scn.json"
    src.write_text(json.dumps(dict(DAY, table="none.json")))
    code = cli.main(["sim", "--scenario", str(src), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_IO
    assert err == "ykt: cannot read %s: No such file or directory\n" % (tmp_path / "none.json")


def test_scenario_check_when_shipped_files_then_they_pass():
    acc = json.load(open(sim.ACCEPTANCE))
    assert scenario.check(DAY) is None
    assert scenario.check(acc) is not None  # its taps use the fare day's "day"
    assert scenario.check(acc, DAY["cards"], DAY["day"]) is None


def test_farescen_load_when_scenario_malformed_then_value_error_naming_it(tmp_path):
    src = tmp_path / "scn.json"
    src.write_text(json.dumps(_with(taps__0__at="25:99:00")))
    with pytest.raises(ValueError, match=r"scn.json: not a scenario: taps\[0\].at"):
        farescen.load(str(src))


def test_sim_when_scenario_option_empty_then_usage_not_the_default_day(capsys, tmp_path):
    code = cli.main(["sim", "--scenario", "", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and "argument --scenario: expected a file name" in err
    assert not (tmp_path / "o").exists()


def test_sim_when_a_validator_dies_then_one_line_and_its_lines_in_a_file(capsys, tmp_path,
                                                                          monkeypatch):
    def dies(self):  # what emu.world raises when the firmware process exits
        raise RuntimeError("firmware exited (EXIT 1); last lines:\nTraceback (most recent "
                           "call last):\n  File \"rom\", line 5\nMemoryError")

    monkeypatch.setattr(sim.Sim, "start_station", dies)
    out = tmp_path / "o"
    code = cli.main(["sim", "--no-acceptance", "-o", str(out)])
    o, err = capsys.readouterr()
    assert code == cli.EXIT_FAIL and "Traceback" not in err and len(err.splitlines()) == 1
    assert err.startswith("ykt: the bus day stopped: firmware exited (EXIT 1) (the "
                          "validator's last lines: ")
    assert str(out / "sim-error.log") in err
    assert "MemoryError" in (out / "sim-error.log").read_text()
