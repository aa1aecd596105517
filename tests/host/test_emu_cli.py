# Tier 2: `ykt emu selftest` and `ykt card issue|population` as a user runs them.
import json
import os
import subprocess
import sys

from emu import crypto, issuer
from emu.tunion_card import TUnionCard

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ykt(*args):
    return subprocess.run([sys.executable, "-m", "ykt", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def _check_transcript(out, alg_byte):
    lines = out.splitlines()
    assert lines[0].startswith("keys: ") and lines[0].endswith("test_master_keys.json")
    assert os.path.exists(lines[0][6:])
    body = lines[1:-1]
    assert body and len(body) % 2 == 0
    for i in range(0, len(body), 2):
        assert body[i].startswith(">> ") and body[i + 1].startswith("<< ")
        bytes.fromhex(body[i][3:])
        assert len(bytes.fromhex(body[i + 1][3:])) >= 2
    cmds = [ln[3:] for ln in body[0::2]]
    assert any(c.startswith("8070000024") for c in cmds)  # PSAM MAC1
    assert any(c.startswith("00C0000008") for c in cmds)  # via T=0 GET RESPONSE
    assert any(c.startswith("805003020B") for c in cmds)
    assert any(c.startswith("805401000F") for c in cmds)
    assert any(c.startswith("8072000004") for c in cmds)
    init = body[cmds.index(next(c for c in cmds if c.startswith("805003"))) * 2 + 1][3:]
    assert bytes.fromhex(init)[10] == alg_byte
    return lines[-1]


def test_selftest_when_3des_then_exchanges_and_tac_verified():
    r = ykt("emu", "selftest")
    assert r.returncode == 0, r.stderr
    assert _check_transcript(r.stdout, 0x00).startswith("verdict: PASS")


def test_selftest_when_sm4_then_exchanges_and_tac_verified():
    r = ykt("emu", "selftest", "--alg", "sm4")
    assert r.returncode == 0, r.stderr
    assert _check_transcript(r.stdout, crypto.ALG_SM4).startswith("verdict: PASS")


def test_selftest_when_wrong_psam_then_exit_1_and_9302():
    r = ykt("emu", "selftest", "--wrong-psam")
    assert r.returncode == 1
    assert "9302" in r.stdout.splitlines()[-1]


def test_selftest_when_other_key_file_then_it_is_used_throughout(tmp_path):
    keys = issuer.load_master_keys()
    keys["3des"]["tac"] = "11" * 16
    p = tmp_path / "k.json"
    p.write_text(json.dumps(keys))
    r = ykt("emu", "selftest", "--keys", str(p))
    assert r.returncode == 0 and r.stdout.startswith("keys: " + str(p))


def test_card_issue_when_options_then_json_card_behaves(tmp_path):
    out = tmp_path / "c.json"
    r = ykt("card", "issue", "--alg", "sm4", "--city", "1000", "--type", "senior",
            "--balance", "1234", "--no-interconnect", "--blocked", "temporary", "--phone",
            "--expiry", "20301231", "-o", str(out))
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    c = TUnionCard.from_dict(d)
    assert c.alg == crypto.ALG_SM4 and c.balance == 1234 and c.uid[0] == 0x08
    assert c.ef15[2:4] == bytes.fromhex("1000") and c.ef15[28] == 0x01
    assert c.ef15[24:28] == bytes.fromhex("20301231") and c.ef17[8:10] == b"\x00\x00"
    assert c.apdu(bytes.fromhex("00A4040008A00000063201010500"))[-2:] == b"\x62\x83"


def test_card_issue_when_bad_date_then_usage_error(tmp_path):
    r = ykt("card", "issue", "--start", "2024-01-01", "-o", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "date" in r.stderr


def test_card_population_when_seeded_then_reproducible_mix(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert ykt("card", "population", "--seed", "5", "--count", "120", "-o", str(a)).returncode == 0
    assert ykt("card", "population", "--seed", "5", "--count", "120", "-o", str(b)).returncode == 0
    ia = json.loads((a / "population.json").read_text())
    assert ia == json.loads((b / "population.json").read_text())
    assert len(ia["cards"]) == 120
    tags = set(t for c in ia["cards"] for t in c["tags"])
    for t in ("expired", "not_yet_valid", "blacklisted", "low_balance", "phone", "sm4"):
        assert t in tags, t
    assert len(set(c["city"] for c in ia["cards"])) >= 3
    bl = (a / "blacklist.txt").read_text().split()
    assert bl == [c["serial"] for c in ia["cards"] if "blacklisted" in c["tags"]]
    for c in ia["cards"][:10]:
        card = TUnionCard.from_dict(json.loads((a / c["file"]).read_text()))
        assert card.ef15[10:20].hex() == c["serial"]
