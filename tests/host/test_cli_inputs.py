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


def test_emu_selftest_when_wrong_psam_then_status_word_decoded_and_exit_1(capsys):
    code, out, _ = run(capsys, "emu", "selftest", "--wrong-psam")
    assert code == cli.EXIT_FAIL
    last = out.splitlines()[-1]
    assert last.startswith("verdict: FAIL DEBIT FOR CAPP PURCHASE refused with SW 9302: ")
    assert "MAC invalid" in last and "did not debit" in last


@pytest.mark.parametrize("alg", ["3des", "sm4"])
def test_emu_selftest_when_json_then_one_object_with_the_exchange(capsys, alg):
    code, out, _ = run(capsys, "emu", "selftest", "--alg", alg, "--json")
    assert code == cli.EXIT_OK
    d = json.loads(out)
    assert d["ok"] is True and d["tac_ok"] and d["mac2_ok"] and d["alg"] == alg
    assert d["verdict"].startswith("PASS") and len(d["tac"]) == 8
    assert any(c.startswith("805401000F") and r.endswith("9000") for c, r in d["apdus"])


def test_emu_selftest_when_json_and_refused_then_step_sw_meaning(capsys):
    code, out, _ = run(capsys, "emu", "selftest", "--wrong-psam", "--json")
    d = json.loads(out)
    assert code == cli.EXIT_FAIL and d["ok"] is False
    assert (d["step"], d["sw"]) == ("DEBIT FOR CAPP PURCHASE", "9302")
    assert "MAC invalid" in d["meaning"] and d["apdus"][-1][1] == "9302"


def test_emu_selftest_when_keys_missing_then_same_code_as_card_issue(capsys, tmp_path):
    nope = str(tmp_path / "nope.json")
    a = run(capsys, "emu", "selftest", "--json", "--keys", nope)
    b = run(capsys, "card", "issue", "--keys", nope, "-o", str(tmp_path / "c.json"))
    assert a[0] == b[0] == cli.EXIT_IO and a[1] == ""
    assert a[2] == b[2] == "ykt: cannot read %s: No such file or directory\n" % nope


def test_hw_tests_when_venv_not_activated_then_mpremote_still_found(monkeypatch):
    """`make test-hw` runs .venv/bin/pytest with the user's PATH: the device test must not
    rely on PATH to find the venv's mpremote (it was FileNotFoundError: 'mpremote')."""
    import importlib.util
    import os

    monkeypatch.setenv("PATH", "/nonexistent")
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "hw_smoke", os.path.join(os.path.dirname(here), "hw", "test_board_smoke.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert os.path.isabs(mod.MPREMOTE) and os.access(mod.MPREMOTE, os.X_OK), mod.MPREMOTE


def test_card_when_json_then_one_object_on_stdout(capsys, tmp_path):
    out = tmp_path / "c.json"
    code, text, _ = run(capsys, "card", "issue", "--json", "--seed", "3", "--alg", "sm4",
                        "-o", str(out))
    d = json.loads(text)
    assert code == 0 and d["serial"] == _serial(out) and d["alg"] == "sm4" and d["seed"] == 3
    code, text, _ = run(capsys, "card", "population", "--json", "--count", "20", "-o",
                        str(tmp_path / "p"))
    d = json.loads(text)
    assert code == 0 and d["cards"] == 20 and d["blacklisted"] == d["by_tag"]["blacklisted"]
