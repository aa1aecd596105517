# Tier 2: the ykt command reference (issue 19). Every command and sub-command answers
# --help; host_tools/ykt/REFERENCE.md (python -m ykt.reference --write) names exactly the
# commands and options the parsers have; every command writes its output with -o/--output;
# and a table of bad inputs -- at least one for every command -- ends each in ONE line
# "ykt: ..." on stderr with an exit code README documents, never a traceback.
import os
import re
import subprocess
import sys

import pytest

from ykt import cli, reference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCUMENTED = (cli.EXIT_FAIL, cli.EXIT_USAGE, cli.EXIT_IO, cli.EXIT_PROTOCOL)
COMMANDS = [path for path, _ in reference.commands()]
LEAVES = [path for path, p in reference.commands() if p.get_default("func") is not None
          and not any(a.__class__.__name__ == "_SubParsersAction" for a in p._actions)]


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "ykt")
def test_help_when_asked_for_any_command_then_usage_and_exit_0(capsys, path):
    code, out, err = run(capsys, *path, "--help")
    assert code == cli.EXIT_OK and err == ""
    assert out.startswith("usage: " + " ".join(("ykt",) + path))


@pytest.mark.parametrize("path", [("sim",), ("emu", "selftest"), ("card", "issue"),
                                  ("card", "population"), ("sync",)], ids=" ".join)
def test_help_when_technician_reads_it_then_an_example_command_line(capsys, path):
    _, out, _ = run(capsys, *path, "--help")
    text = out.split("\noptions:")[0]
    assert re.search(r"[Ee]xamples?:\s+ykt %s\s" % " ".join(path), text), out


def _sections():
    with open(reference.PATH) as f:
        doc = f.read()
    parts = re.split(r"^## (ykt.*)$", doc, flags=re.M)
    return {tuple(h.split()[1:]): body for h, body in zip(parts[1::2], parts[2::2],
                                                          strict=True)}


def test_reference_when_read_then_names_every_command_and_nothing_else():
    assert sorted(_sections()) == sorted(COMMANDS), \
        "host_tools/ykt/REFERENCE.md is stale: run python -m ykt.reference --write"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "ykt")
def test_reference_when_read_then_each_command_lists_exactly_its_options(path):
    body = _sections().get(path, "")
    have = set(reference.options(dict(reference.commands())[path]))
    for o in have:
        assert o in body, (path, o, "stale: run python -m ykt.reference --write")
    usage = body.split("\n\n", 1)[0].split("```", 1)[-1]  # the usage lines name each option
    named = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", usage)) - {"-h", "--help"}
    assert named <= have, (path, named - have, "stale: run python -m ykt.reference --write")


def test_reference_when_generated_now_then_every_usage_line_is_the_file_s():
    """The usage lines (options, metavars, what is required) must be the parsers' own;
    wording changes in the help text only make the file older, not wrong."""
    now = dict(reference.commands())
    for path, body in _sections().items():
        usage = body.split("```", 2)[1].strip().split("\n\n", 1)[0]
        want = reference.help_text(now[path]).split("\n\n", 1)[0]
        assert " ".join(usage.split()) == " ".join(want.split()), \
            (path, "stale: run python -m ykt.reference --write")


def test_readme_when_read_then_points_at_the_reference_and_the_exit_codes():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert "host_tools/ykt/REFERENCE.md" in readme
    for code in (0, 1, 2, 3, 4, 70, 130):
        assert re.search(r"^\| %d \|" % code, readme, re.M), code


OWN = [("card", "issue"), ("card", "population"), ("flash", "image"), ("flash", "build"),
       ("flash", "provision"), ("sim",), ("sync-keys",)]


@pytest.mark.parametrize("path", OWN, ids=" ".join)
def test_output_option_when_any_command_writes_then_o_and_output(path):
    p = dict(reference.commands())[path]
    outs = [a for a in p._actions if "-o" in a.option_strings]
    assert outs and "--output" in outs[0].option_strings, path


# (argv, exit code, text the line must contain). {t} is a temporary folder with: nope (absent),
# list.json "[]", trunc.json (truncated JSON), tiny.bin (1000 zero bytes), dir/ (a folder).
BAD = [
    (["card", "issue", "--city", "29", "-o", "{t}/c.json"], 2, "argument --city"),
    (["card", "issue", "--keys", "{t}/dir", "-o", "{t}/c.json"], 3, "cannot read {t}/dir"),
    (["card", "population", "--count", "many", "-o", "{t}/p"], 2, "argument --count"),
    (["card", "population", "--keys", "{t}/list.json", "-o", "{t}/p"], 2,
     "not a master key file"),
    (["emu", "selftest", "--keys", "{t}/trunc.json"], 2, "not a JSON key file"),
    (["emu", "pn532", "--card", "{t}/nope"], 3, "cannot read card {t}/nope"),
    (["emu", "pn532", "--card", "{t}/trunc.json"], 2, "not a card file"),
    (["fares", "compile", "{t}/list.json"], 2, "not a fare table"),
    (["fares", "show", "{t}/tiny.bin"], 2, "not a fare-table content container"),
    (["fares", "show", "{t}/nope"], 3, "cannot read {t}/nope"),
    (["depot", "keygen", "-o", "{t}/dir"], 2, "{t}/dir exists"),
    (["depot", "fares", "sign", "{t}/list.json", "--test-keys", "-o", "{t}/f.bin"], 2,
     "not a fare table"),
    (["depot", "whitelist", "sign", "{t}/list.json", "--version", "1", "-o", "{t}/w.bin"], 2,
     "a signing key is needed"),
    (["depot", "config", "sign", "{t}/list.json", "--version", "1", "--test-keys", "-o",
      "{t}/c.bin"], 2, "not a JSON object"),
    (["depot", "clock", "sign", "--all", "--secs", "5", "--version", "1", "--test-keys", "-o",
      "{t}/k.bin"], 2, "argument --secs"),
    (["depot", "key", "rotate", "--new-pub", "{t}/list.json", "--version", "1",
      "--test-keys", "-o", "{t}/r.bin"], 2, "not a public key file"),
    (["depot", "blacklist", "build", "{t}/nope", "-o", "{t}/b.bin"], 3, "{t}/nope"),
    (["depot", "blacklist", "sign", "{t}/tiny.bin", "--version", "1", "--test-keys", "-o",
      "{t}/s.bin"], 2, "not a blacklist full-list body"),
    (["flash", "image", "--keys-blob", "{t}/tiny.bin", "--config", "{t}/list.json", "-o",
      "{t}/x.bin"], 2, "--keys-blob {t}/tiny.bin: not a sync key blob"),
    (["flash", "build", "--target", "esp8266"], 2, "argument --target: invalid choice"),
    (["flash", "provision", "--keyring", "{t}/k.json", "--device-id", "00120001",
      "--test-keys", "--line", "-5", "-o", "{t}/prov"], 2, "argument --line: expected"),
    (["flash", "provision", "--keyring", "{t}/k.json", "--device-id", "00120001",
      "--test-keys", "--city", "29", "-o", "{t}/prov"], 2, "argument --city: expected"),
    (["flash", "provision", "--keyring", "{t}/k.json", "--device-id", "0012", "--test-keys",
      "-o", "{t}/prov"], 2, "argument --device-id: expected 8 hex digits"),
    (["flash", "deploy", "--port", "{t}/nope", "--build", "{t}/nope", "--device",
      "{t}/nope"], 3, "{t}/nope"),
    (["flash", "verify"], 2, "required: --port"),
    (["inspect", "{t}/tiny.bin"], 2, "{t}/tiny.bin is 1000 bytes"),
    (["inspect", "--board", "esp32s3", "{t}/tiny.bin"], 2, "an esp32s3 dump is the full chip"),
    (["inspect", "{t}/dir"], 3, "cannot read {t}/dir: Is a directory"),
    (["inspect", "{t}/nope", "--records", "-1"], 2, "argument --records"),
    (["sim", "--scenario", "{t}/list.json", "-o", "{t}/sim"], 2, "not a scenario"),
    (["sim", "--scenario", "{t}/nope", "-o", "{t}/sim"], 3, "cannot read {t}/nope"),
    (["sim", "--heap", "lots"], 2, "argument --heap: expected a heap size such as 128k"),
    (["sync", "--port", "listen://:x", "--test-keys"], 2, "argument --port"),
    (["sync", "--port", "socket://127.0.0.1:1", "--keys", "{t}/list.json"], 2,
     "not a depot key file"),
    (["sync-keys", "--device-id", "xyz", "--test-keys", "-o", "{t}/k.bin"], 2,
     "argument --device-id"),
    (["depot", "blacklist", "propose", "--db", "{t}/nope/d.sqlite"], 3, "{t}/nope/d.sqlite"),
    (["depot", "blacklist", "approve"], 2, "required"),
    (["depot", "blacklist", "list", "--db", "{t}/nope/d.sqlite"], 3, "{t}/nope/d.sqlite"),
    (["depot", "blacklist", "publish"], 2, "required"),
    (["depot", "clear", "--db", "{t}/nope/d.sqlite"], 3, "{t}/nope/d.sqlite"),
    (["depot", "anomalies", "--db", "{t}/nope/d.sqlite"], 3, "{t}/nope/d.sqlite"),
    (["depot", "serve", "--timeout", "soon"], 2, "argument --timeout"),
    (["depot", "status", "--stale-hours", "x"], 2, "argument --stale-hours"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    (["--frobnicate"], 2, "unrecognized arguments: --frobnicate"),
]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "trunc.json").write_text('{"taps": [')
    (tmp_path / "tiny.bin").write_bytes(bytes(1000))
    (tmp_path / "dir").mkdir()
    return str(tmp_path)


def test_bad_input_table_when_built_then_every_command_has_a_case():
    covered = {tuple(a for a in argv if not a.startswith("-") and "{" not in a)[:len(p)]
               for argv, _, _ in BAD for p in LEAVES}
    missing = [p for p in LEAVES if p not in covered]
    assert not missing, missing


@pytest.mark.parametrize("argv,want_code,want", BAD, ids=lambda x: " ".join(x)[:60]
                         if isinstance(x, list) else None)
def test_bad_input_when_any_command_then_one_ykt_line_and_documented_code(capsys, files,
                                                                          argv, want_code,
                                                                          want):
    code, out, err = run(capsys, *[a.format(t=files) for a in argv])
    assert code in DOCUMENTED, (code, err)
    if want_code is not None:
        assert code == want_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ykt: "), err
    assert want.format(t=files) in err, err


def test_bad_input_when_run_as_a_program_then_no_traceback(files):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        os.path.join(ROOT, p) for p in ("host_tools", "firmware", "host_tools/shims")))
    for argv, want_code, _ in BAD[:6] + BAD[-8:-6]:
        r = subprocess.run([sys.executable, "-m", "ykt", *[a.format(t=files) for a in argv]],
                           capture_output=True, text=True, cwd=files, env=env, timeout=60)
        assert r.returncode in DOCUMENTED and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith("ykt: ") and len(r.stderr.strip().splitlines()) == 1
