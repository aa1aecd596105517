# Tier 2: every `ykt` command fed bad input: one clear "ykt..." line naming what is wrong,
# the exit code README documents for that fault, and never a traceback (issue 19).
import json
import os
import subprocess
import sys

import pytest

import validator
from validator.storage import record_host
from validator.sync import wire_host
from ykt import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# `python -m ykt` in a child process imports this tree's ykt, not whatever checkout the
# venv's editable install points at
THIS_TREE = dict(os.environ, PYTHONPATH=os.pathsep.join(
    os.path.join(ROOT, p) for p in ("host_tools", "firmware", "host_tools/shims")))


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def test_version_when_asked_then_firmware_protocol_and_record_versions(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == cli.EXIT_OK
    assert validator.VERSION in out
    assert "sync protocol %d" % wire_host.PROTO_VERSION in out
    assert "record format %d" % record_host.REC_VERSION in out


def test_bare_ykt_when_run_then_help_and_exit_ok(capsys):
    code, out, _ = run(capsys)
    assert code == cli.EXIT_OK
    assert "Examples" in out and "cmd_" not in out


@pytest.mark.parametrize("group", ["card", "fares", "flash", "emu"])
def test_command_group_when_no_subcommand_then_its_own_help(capsys, group):
    code, out, _ = run(capsys, group)
    assert code == cli.EXIT_OK and out.startswith("usage: ykt " + group)


def test_sync_help_when_read_then_baud_progress_and_listen_explained(capsys):
    code, out, _ = run(capsys, "sync", "--help")
    assert code == cli.EXIT_OK
    flat = " ".join(out.split())
    assert "listen://" in flat.split("--port PORT", 2)[-1].split("--baud")[0]
    assert "bits per second" in flat and "progress bar" in flat


BAD_ISSUE = [
    (["--city", "12"], "--city", "'12'", "4 decimal digits"),
    (["--city", "abcd"], "--city", "'abcd'", "4 decimal digits"),
    (["--balance", "-5"], "--balance", "'-5'", "from 0 to 2147483647"),
    (["--balance", "99999999999"], "--balance", "'99999999999'", "from 0 to 2147483647"),
    (["--balance", "1.5"], "--balance", "'1.5'", "whole number"),
    (["--start", "20241301"], "--start", "'20241301'", "real date YYYYMMDD"),
    (["--expiry", "20250230"], "--expiry", "'20250230'", "real date YYYYMMDD"),
    (["--start", "2024-01-01"], "--start", "'2024-01-01'", "YYYYMMDD"),
    (["--issuer-code", "zz"], "--issuer-code", "'zz'", "4 hex digits"),
    (["--issuer-code", "12345"], "--issuer-code", "'12345'", "4 hex digits"),
    (["--serial", "12ab"], "--serial", "'12ab'", "20 decimal digits"),
]


@pytest.mark.parametrize("extra,opt,val,want", BAD_ISSUE)
def test_card_issue_when_bad_option_then_one_line_naming_it(capsys, tmp_path, extra, opt,
                                                            val, want):
    out_file = tmp_path / "c.json"
    code, _, err = run(capsys, "card", "issue", "-o", str(out_file), *extra)
    assert code == cli.EXIT_USAGE
    assert len(err.strip().splitlines()) == 1
    assert opt in err and val in err and want in err
    assert not out_file.exists()


def _keys_cases(tmp_path):
    card = tmp_path / "card1.json"
    assert cli.main(["card", "issue", "-o", str(card)]) == 0
    nojson = tmp_path / "k.txt"
    nojson.write_text("purchase=0011\n")
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"3des": {"purchase": "00"}, "sm4": {}}))
    return [
        (str(tmp_path / "nope.json"), cli.EXIT_IO, "cannot read %s" % (tmp_path / "nope.json")),
        (str(tmp_path), cli.EXIT_IO, "cannot read %s" % tmp_path),
        (str(card), cli.EXIT_USAGE, "not a master key file"),
        (str(nojson), cli.EXIT_USAGE, "not a JSON key file"),
        (str(short), cli.EXIT_USAGE, "\"purchase\" must be 32 hex digits"),
    ]


@pytest.mark.parametrize("argv", [["card", "issue", "-o", "{out}"],
                                  ["card", "population", "-o", "{out}"],
                                  ["emu", "selftest"]])
def test_master_keys_when_bad_file_then_same_message_and_code_everywhere(capsys, tmp_path,
                                                                          argv):
    for path, want_code, want in _keys_cases(tmp_path):
        capsys.readouterr()
        a = [x.replace("{out}", str(tmp_path / "out")) for x in argv] + ["--keys", path]
        code, _, err = run(capsys, *a)
        assert code == want_code, (path, err)
        assert err.startswith("ykt: ") and want in err, err
        assert "[Errno" not in err and len(err.strip().splitlines()) == 1


def test_unexpected_error_when_no_debug_then_one_line_else_traceback(capsys, monkeypatch):
    from ykt import cmd_card

    def boom(args):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(cmd_card, "do_issue", boom)
    code, _, err = run(capsys, "card", "issue", "-o", "x")
    assert code == cli.EXIT_INTERNAL and "internal error" in err and "--debug" in err
    assert cli.main(["--debug", "card", "issue", "-o", "x"]) == cli.EXIT_INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_subprocess_when_bad_inputs_then_no_traceback_on_stderr(tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    for argv, want in ((["card", "issue", "--keys", str(tmp_path / "empty.json"), "-o",
                         str(tmp_path / "c.json")], cli.EXIT_USAGE),
                       (["emu", "selftest", "--keys", str(tmp_path / "nope")], cli.EXIT_IO)):
        r = subprocess.run([sys.executable, "-m", "ykt", *argv], capture_output=True,
                           text=True, cwd=ROOT, timeout=60, env=THIS_TREE)
        assert r.returncode == want, r.stderr
        assert r.stderr.startswith("ykt: ") and "Traceback" not in r.stderr


GOOD_TABLE = {"version": 1, "city": "2900", "lines": [{"id": 1, "fare": 200}]}

BAD_TABLES = [
    ([], "table: expected an object {...}, got list"),
    ({}, "missing required key 'version'"),
    ("hello", "table: expected an object"),
    (dict(GOOD_TABLE, lines=[{"id": 1, "fare": "2 yuan"}]),
     'lines[0].fare: expected a whole number 0..65535, got "2 yuan"'),
    (dict(GOOD_TABLE, version=99999999999),
     "version: expected a whole number 0..4294967295, got 99999999999"),
    (dict(GOOD_TABLE, caps={"daily": 500}), "table: unknown key 'caps'"),
    (dict(GOOD_TABLE, cap={"dayly": 500}), "cap: unknown key 'dayly'"),
    (dict(GOOD_TABLE, lines=[{"id": 1, "fare": 200, "fair": 1}]), "lines[0]: unknown key"),
    (dict(GOOD_TABLE, city=2900), "city: expected a string of 4 hex digits, got 2900"),
    (dict(GOOD_TABLE, lines=[{"id": 1}]), 'lines[0]: needs "fare"'),
    (dict(GOOD_TABLE, lines=[{"id": 1, "stops": 2, "matrix": [["a", 2], [2, 3]]}]),
     "lines[0].matrix: expected a list of rows"),
    (dict(GOOD_TABLE, lines=[{"id": 1, "stops": 2, "matrix": [[1]]}]), "matrix needs 2 rows"),
    (dict(GOOD_TABLE, cap={"day_start": "25"}), 'cap.day_start: expected "HH:MM"'),
    (dict(GOOD_TABLE, activation="tomorrow"), "bad time 'tomorrow'"),
    (dict(GOOD_TABLE, lines=[{"id": 1, "fare": 200, "mode": "boat"}]), "mode: unknown 'boat'"),
    (dict(GOOD_TABLE, transfer={"kind": "free", "window_s": True}),
     "transfer.window_s: expected a whole number"),
]


@pytest.mark.parametrize("desc,want", BAD_TABLES)
def test_fares_compile_when_bad_table_then_one_line_and_usage_code(capsys, tmp_path, desc,
                                                                     want):
    src = tmp_path / "t.json"
    src.write_text(json.dumps(desc))
    code, _, err = run(capsys, "fares", "compile", str(src), "-o", str(tmp_path / "t.bin"))
    assert code == cli.EXIT_USAGE, err
    assert err.startswith("ykt: %s: not a fare table: " % src) and want in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.bin").exists()


def test_fares_compile_when_good_table_then_compiles(capsys, tmp_path):
    src = tmp_path / "t.json"
    src.write_text(json.dumps(GOOD_TABLE))
    assert cli.main(["fares", "compile", str(src), "-o", str(tmp_path / "t.bin")]) == 0
    assert cli.main(["fares", "compile", os.path.join(ROOT, "host_tools", "emu", "fares",
                                                      "default.json"),
                     "-o", str(tmp_path / "d.bin")]) == 0


@pytest.mark.parametrize("content,want", [(b"{\"version\": 1,", "not a JSON fare table"),
                                          (b"\xff\xfe\x00", "not a JSON fare table")])
def test_fares_compile_when_not_json_then_usage(capsys, tmp_path, content, want):
    src = tmp_path / "t.json"
    src.write_bytes(content)
    code, _, err = run(capsys, "fares", "compile", str(src))
    assert code == cli.EXIT_USAGE and want in err and str(src) in err


@pytest.mark.parametrize("verb", ["compile", "show"])
def test_fares_when_file_missing_then_io_naming_it(capsys, tmp_path, verb):
    path = tmp_path / "none.json"
    code, _, err = run(capsys, "fares", verb, str(path))
    assert code == cli.EXIT_IO
    assert err.strip() == "ykt: cannot read %s: No such file or directory" % path


def _files(tmp_path):
    f = {"nope": str(tmp_path / "nope.bin"), "list": str(tmp_path / "list.json"),
         "trunc": str(tmp_path / "trunc.json"), "tiny": str(tmp_path / "tiny.bin"),
         "blob": str(tmp_path / "k.bin"), "out": str(tmp_path / "out.bin")}
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "trunc.json").write_text('{"taps": [')
    (tmp_path / "tiny.bin").write_bytes(bytes(1000))
    (tmp_path / "cfg.json").write_text('{"city": "2900", "line": 12}')
    f.update(cfg=str(tmp_path / "cfg.json"), shared=str(tmp_path / "shared.key"),
             ring=str(tmp_path / "ring.json"), outdir=str(tmp_path / "devices"))
    assert cli.main(["depot", "keygen", "-o", f["shared"]]) == 0
    os.chmod(f["shared"], 0o644)  # a private key others may read
    assert cli.main(["sync-keys", "--device-id", "00120001", "--test-keys", "-o",
                     f["blob"]]) == 0
    return f


NOPE = "cannot read {nope}: No such file or directory"
# (argv, exit code, what stderr says): every command, missing files, wrong types, bad content
CORPUS = [
    (["sim", "--scenario", "{nope}", "--out", "{out}"], cli.EXIT_IO, NOPE),
    (["sim", "--scenario", "{list}", "--out", "{out}"], cli.EXIT_USAGE, "not a scenario"),
    (["sim", "--scenario", "{trunc}", "--out", "{out}"], cli.EXIT_USAGE, "not a JSON scenario"),
    (["flash", "image", "--keys-blob", "{nope}", "--config", "{list}", "-o", "{out}"],
     cli.EXIT_IO, NOPE),
    (["flash", "image", "--keys-blob", "{blob}", "--config", "{nope}", "-o", "{out}"],
     cli.EXIT_IO, NOPE),
    (["flash", "image", "--keys-blob", "{list}", "--config", "{list}", "-o", "{out}"],
     cli.EXIT_USAGE, "--keys-blob {list}: not a sync key blob"),
    (["flash", "image", "--keys-blob", "{blob}", "--config", "{list}", "--test-keys", "-o",
      "{out}"], cli.EXIT_USAGE, "--config {list}: config: not a JSON object"),
    # a private key is never an option value (shell history, ps): --key-file
    (["flash", "image", "--keys-blob", "{blob}", "--config", "{cfg}", "--content-key", "00" * 32,
      "-o", "{out}"], cli.EXIT_USAGE, "--content-key: a private key is not taken on the "
     "command line (shell history, ps); give --key-file FILE (ykt depot keygen)"),
    (["flash", "image", "--keys-blob", "{blob}", "--config", "{cfg}", "-o", "{out}"],
     cli.EXIT_USAGE, "a JSON --config is signed here: --key-file FILE (or --test-keys)"),
    (["flash", "image", "--keys-blob", "{blob}", "--config", "{cfg}", "--key-file", "{nope}",
      "-o", "{out}"], cli.EXIT_IO, "{nope}: cannot read the private key"),
    (["flash", "image", "--keys-blob", "{blob}", "--config", "{cfg}", "--key-file", "{shared}",
      "-o", "{out}"], cli.EXIT_USAGE, "{shared}: the private key is readable by others"),
    (["flash", "image", "--keys-blob", "{blob}", "--config", "{cfg}", "--key-file", "{list}",
      "-o", "{out}"], cli.EXIT_USAGE, "{list}"),
    (["flash", "provision", "--device-id", "00120001", "--keyring", "{ring}", "--content-key",
      "00" * 32, "-o", "{outdir}"], cli.EXIT_USAGE, "a private key is not taken on the command"),
    (["flash", "provision", "--device-id", "00120001", "--keyring", "{ring}", "-o",
      "{outdir}"], cli.EXIT_USAGE, "the configuration is signed here: --key-file FILE"),
    (["flash", "provision", "--device-id", "00120001", "--keyring", "{ring}", "--key-file",
      "{shared}", "-o", "{outdir}"], cli.EXIT_USAGE, "the private key is readable by others"),
    (["flash", "image", "--board", "esp32", "--keys-blob", "{blob}", "--config", "{list}",
      "-o", "{out}"], cli.EXIT_USAGE, "argument --board: invalid choice: 'esp32'"),
    (["inspect", "{nope}"], cli.EXIT_IO, NOPE),
    (["inspect", "{tiny}"], cli.EXIT_USAGE, "{tiny} is 1000 bytes"),
    (["inspect", "{tiny}", "--records", "many"], cli.EXIT_USAGE, "argument --records"),
    (["sync-keys", "--device-id", "12", "--test-keys", "-o", "{out}"], cli.EXIT_USAGE,
     "argument --device-id: expected 8 hex digits, got '12'"),
    (["sync-keys", "--device-id", "0012000G", "--test-keys", "-o", "{out}"], cli.EXIT_USAGE,
     "expected 8 hex digits, got '0012000G'"),
    (["sync-keys", "--device-id", "00120001", "--keys", "{nope}", "-o", "{out}"], cli.EXIT_IO,
     "cannot read key file {nope}: No such file or directory"),
    (["sync-keys", "--device-id", "00120001", "--keys", "{list}", "-o", "{out}"],
     cli.EXIT_USAGE, "key file {list}: not a depot key file"),
    (["sync-keys", "--device-id", "00120001", "--test-keys", "--content-key", "abc", "-o",
      "{out}"], cli.EXIT_USAGE, "argument --content-key: expected 64 hex digits"),
    (["sync", "--port", "socket://127.0.0.1:1", "--keys", "{nope}"], cli.EXIT_IO,
     "cannot read key file {nope}"),
    (["sync", "--port", "socket://127.0.0.1:1", "--test-keys", "--fares", "{nope}"],
     cli.EXIT_IO, NOPE),
    (["sync", "--port", "socket://127.0.0.1:1", "--test-keys", "--baud", "fast"],
     cli.EXIT_USAGE, "argument --baud: expected a whole number from 300 to 12000000"),
    (["sync", "--port", "socket://127.0.0.1:1", "--test-keys", "--progress", "yes"],
     cli.EXIT_USAGE, "argument --progress: invalid choice: 'yes'"),
    (["sync"], cli.EXIT_USAGE, "the following arguments are required: --port"),
    (["emu", "pn532", "--card", "{nope}"], cli.EXIT_IO,
     "cannot read card {nope}: No such file or directory"),
    (["emu", "pn532", "--card", "{list}"], cli.EXIT_USAGE, "card {list}: not a card file"),
    (["emu", "selftest", "--alg", "des"], cli.EXIT_USAGE, "argument --alg: invalid choice"),
    (["card", "population", "--count", "0", "-o", "{out}"], cli.EXIT_USAGE,
     "argument --count: expected a whole number from 1 to 100000, got '0'"),
    (["card", "population", "--today", "20250631", "-o", "{out}"], cli.EXIT_USAGE,
     "argument --today: expected a real date YYYYMMDD, got '20250631'"),
    (["fares", "show", "{list}"], cli.EXIT_USAGE, "{list}: not a fare-table content container"),
    (["frobnicate"], cli.EXIT_USAGE, "invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize("argv,want_code,want", CORPUS, ids=lambda x: " ".join(x)
                         if isinstance(x, list) else None)
def test_every_command_when_bad_input_then_documented_code_and_one_line(capsys, tmp_path,
                                                                        argv, want_code,
                                                                        want):
    f = _files(tmp_path)
    capsys.readouterr()
    code, out, err = run(capsys, *[a.format(**f) for a in argv])
    assert code == want_code, err
    assert want.format(**f) in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "[Errno" not in err and not os.path.exists(f["out"])
