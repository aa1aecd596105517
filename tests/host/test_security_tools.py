"""The back office's signing tools (`ykt depot keygen / ... sign`, `ykt fares compile`) and
the one test key set (issue 19): keys in 0600 files and never printed, every container
they make taken by a validator holding the matching public key and refused by any other
(docs/SECURITY.md)."""

import os
import stat

from depot import content as C
from depot.testkeys import TEST_CONTENT_KEY, TEST_CONTENT_PUB, TEST_MASTER
from validator.app import content
from validator.sync import auth, auth_host, wire_host
from ykt import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FARES = os.path.join(ROOT, "host_tools", "emu", "fares", "default.json")


def _ykt(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_test_keys_when_compared_one_set_public_matches_private():
    assert auth_host.content_public(TEST_CONTENT_KEY) == TEST_CONTENT_PUB
    from depot import devsim

    assert (devsim.TEST_CONTENT_KEY, devsim.TEST_MASTER) == (TEST_CONTENT_KEY, TEST_MASTER)


def test_fares_compile_when_default_key_then_a_test_keys_validator_takes_it(tmp_path, capsys):
    # issue 19: `ykt fares compile` and `--test-keys` everywhere else share one key
    out = str(tmp_path / "t.bin")
    code, o, _ = _ykt(capsys, "fares", "compile", FARES, "-o", out)
    assert code == 0 and "TEST content key" in o
    blob = open(out, "rb").read()
    keys = tmp_path / "k.bin"
    assert _ykt(capsys, "sync-keys", "--device-id", "00120001", "--test-keys", "-o",
                str(keys))[0] == 0
    kp = auth.parse_keys(keys.read_bytes())[2]
    c = auth.verify_content(kp, blob)
    assert c is not None and c[0] == wire_host.K_FARES


def test_keygen_when_made_private_is_0600_never_printed_and_refused_when_readable(tmp_path,
                                                                                 capsys):
    key = str(tmp_path / "bo.key")
    code, out, err = _ykt(capsys, "depot", "keygen", "-o", key)
    assert code == 0
    seed = C.load_private(key)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert seed.hex() not in out + err and seed.hex()[:8] not in out + err
    pub = C.load_public(str(tmp_path / "bo.pub"))
    assert pub == auth_host.content_public(seed) and pub[:4].hex() in out
    assert _ykt(capsys, "depot", "keygen", "-o", key)[0] == cli.EXIT_USAGE  # never overwritten
    os.chmod(key, 0o644)
    code, out, err = _ykt(capsys, "fares", "compile", FARES, "--key-file", key, "-o",
                          str(tmp_path / "x.bin"))
    assert code == cli.EXIT_USAGE and "readable by others" in err and seed.hex() not in err


def test_depot_sign_tools_when_signed_then_only_the_matching_public_key_verifies(tmp_path,
                                                                                capsys):
    key = str(tmp_path / "bo.key")
    C.keygen(key)
    pub = C.load_public(str(tmp_path / "bo.pub"))
    cards = tmp_path / "cards.txt"
    cards.write_text("# stolen\n03100000000000000077\n03100000000000000078\n")
    t = str(tmp_path)
    steps = [
        (["depot", "blacklist", "build", str(cards), "-o", t + "/bl.body"], None),
        (["depot", "blacklist", "sign", t + "/bl.body", "--version", "4", "--key-file", key,
          "-o", t + "/bl.ykc"], (wire_host.K_BLACKLIST_FULL, 4)),
        (["depot", "blacklist", "build", str(cards), "--delta-base", "4", "-o",
          t + "/d.body"], None),
        (["depot", "blacklist", "sign", t + "/d.body", "--delta", "--version", "5",
          "--key-file", key, "-o", t + "/d.ykc"], (wire_host.K_BLACKLIST_DELTA, 5)),
        (["depot", "fares", "sign", FARES, "--key-file", key, "-o", t + "/f.ykc"],
         (wire_host.K_FARES, 1)),
        (["fares", "compile", FARES, "--key-file", key, "-o", t + "/f2.ykc"],
         (wire_host.K_FARES, 1)),
    ]
    (tmp_path / "wl.json").write_text('[{"org": "FFFF", "city": "2900"}]')
    (tmp_path / "cfg.json").write_text('{"city": "2900", "line": 12}')
    steps += [
        (["depot", "whitelist", "sign", t + "/wl.json", "--version", "2", "--key-file", key,
          "-o", t + "/w.ykc"], (wire_host.K_WHITELIST, 2)),
        (["depot", "config", "sign", t + "/cfg.json", "--version", "3", "--key-file", key,
          "-o", t + "/c.ykc"], (wire_host.K_CONFIG, 3)),
        (["depot", "clock", "sign", "--device-id", "00120001", "--secs", "830000000",
          "--version", "1", "--key-file", key, "-o", t + "/k.ykc"], (wire_host.K_CLOCK, 1)),
    ]
    for argv, want in steps:
        code, out, err = _ykt(capsys, *argv)
        assert code == 0, err
        if want is None:
            continue
        blob = open(argv[argv.index("-o") + 1], "rb").read()
        c = auth.verify_content(pub, blob)
        assert c is not None and (c[0], c[1]) == want, argv
        assert auth.verify_content(TEST_CONTENT_PUB, blob) is None  # another key: refused
    assert bytes(auth.verify_content(pub, open(t + "/c.ykc", "rb").read())[2]) == \
        b'{"city": "2900", "line": 12}'
    content.parse_config(open(t + "/cfg.json", "rb").read())
    # rotation to a second key, signed by the first
    key2 = str(tmp_path / "next.key")
    C.keygen(key2)
    code, _, err = _ykt(capsys, "depot", "key", "rotate", "--new-pub", t + "/next.pub",
                        "--version", "1", "--key-file", key, "-o", t + "/r.ykc")
    assert code == 0, err
    c = auth.verify_content(pub, open(t + "/r.ykc", "rb").read())
    assert c[0] == wire_host.K_KEY and bytes(c[2]) == C.load_public(t + "/next.pub")


def test_risk_publish_when_signed_through_depot_content_with_a_key_file(tmp_path):
    from depot import risk

    key = C.test_key()
    blob = risk.sign_content(wire_host.K_BLACKLIST_FULL, 3, b"\x00\x00\x00\x00", key)
    assert auth.verify_content(TEST_CONTENT_PUB, blob)[1] == 3
