# Tier 2: what issue 19 found in `ykt` options, fixed: every card issued gets its own serial,
# every option error has the one 'ykt: ...' form, ports and timeouts are checked before any
# work, and long work shows progress.
import json

import pytest

from ykt import cli


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def _serial(path):
    return json.loads(path.read_text())["ef15"][20:40]


def test_card_issue_when_no_serial_then_each_card_gets_its_own(capsys, tmp_path):
    serials = []
    for i, extra in enumerate([[], [], ["--city", "1000"], ["--alg", "sm4"],
                               ["--type", "student"]]):
        out = tmp_path / ("c%d.json" % i)
        code, text, _ = run(capsys, "card", "issue", "-o", str(out), *extra)
        assert code == 0
        serials.append(_serial(out))
        assert ("serial " + serials[-1]) in text and "seed " in text
    assert len(set(serials)) == len(serials), serials
    assert serials[2][1:5] == "1000"  # the city is part of the printed number


def test_card_issue_when_same_seed_then_same_card(capsys, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run(capsys, "card", "issue", "--seed", "7", "-o", str(a))[0] == 0
    assert run(capsys, "card", "issue", "--seed", "7", "--out", str(b))[0] == 0
    assert a.read_text() == b.read_text()


def test_option_error_when_any_command_then_same_ykt_prefix(capsys):
    code, _, err = run(capsys, "card", "issue", "--city", "12", "-o", "x.json")
    assert code == cli.EXIT_USAGE
    assert err.startswith("ykt: card issue: argument --city: expected 4 decimal digits")
    code, _, err = run(capsys, "frobnicate")
    assert code == cli.EXIT_USAGE and err.startswith("ykt: argument COMMAND: invalid choice")


@pytest.mark.parametrize("argv,want", [
    (["--port", "listen://0.0.0.0:seven"], "argument --port: expected listen://HOST:PORT"),
    (["--port", "tcp://127.0.0.1:70000"], "argument --port: expected tcp://HOST:PORT"),
    (["--port", "socket://nohostport"], "argument --port: expected socket://HOST:PORT"),
    (["--port", "socket://127.0.0.1:1", "--window", "99"], "argument --window: expected a "
     "whole number from 1 to 8, got '99'"),
    (["--port", "socket://127.0.0.1:1", "--timeout", "-1"], "argument --timeout: expected "
     "seconds"),
    (["--port", "socket://127.0.0.1:1", "--timeout", "nan"], "argument --timeout"),
    (["--port", "listen://:7000", "--accept-timeout", "soon"], "argument --accept-timeout"),
])
def test_sync_when_bad_port_or_timing_then_usage_before_any_work(capsys, tmp_path, argv,
                                                                 want):
    db = tmp_path / "d.sqlite"
    code, _, err = run(capsys, "sync", "--test-keys", "--db", str(db), *argv)
    assert code == cli.EXIT_USAGE and want in err, err
    assert len(err.strip().splitlines()) == 1 and not db.exists()


def test_card_population_when_progress_always_then_bar_on_stderr(capsys, tmp_path):
    code, out, err = run(capsys, "card", "population", "--count", "30", "--progress",
                         "always", "-o", str(tmp_path / "p"))
    assert code == 0 and "30 cards in" in out
    assert "cards" in err and "30/30" in err and err.endswith("\n")
    code, out, err = run(capsys, "card", "population", "--count", "3", "-o",
                         str(tmp_path / "q"))
    assert code == 0 and err == ""  # auto: not a terminal, no bar
