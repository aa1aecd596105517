"""ykt flash image: a provisioned image boots into a validator that knows its keys."""

import json

from ykt import cli


def test_flash_image_when_built_holds_keys_and_signed_config(tmp_path):
    from emu.nor import NorFlash
    from validator.app import content
    from validator.storage import PLAN_SIM
    from validator.storage.params import ParamStore
    from validator.sync import auth

    blob = tmp_path / "k.bin"
    assert cli.main(["sync-keys", "--device-id", "00120001", "--test-keys", "-o",
                     str(blob)]) == 0
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"city": "2900", "line": 12}))
    img = tmp_path / "flash.bin"
    assert cli.main(["flash", "image", "--keys-blob", str(blob), "--config", str(cfg),
                     "--test-keys", "-o", str(img)]) == 0
    f = NorFlash(64 << 20, path=str(img), invert=True, create=False)
    ps = ParamStore(f, PLAN_SIM["params"]).mount()
    dev, kd, kc = auth.parse_keys(ps.get(content.P_KEYS))
    assert dev == 0x00120001
    kind, version, body = auth.verify_content(kc, ps.get(content.P_CONFIG))
    assert (kind, version) == (5, 1)  # K_CONFIG
    assert content.parse_config(body) == {"city": "2900", "line": 12}


def test_flash_image_when_config_unsigned_and_no_key_refuses(tmp_path):
    blob = tmp_path / "k.bin"
    cli.main(["sync-keys", "--device-id", "00000001", "--test-keys", "-o", str(blob)])
    cfg = tmp_path / "cfg.json"
    cfg.write_text("{}")
    assert cli.main(["flash", "image", "--keys-blob", str(blob), "--config", str(cfg),
                     "-o", str(tmp_path / "x.bin")]) != 0


def test_inspect_when_image_is_an_emulated_boards_inverted_file_reads_it(tmp_path, capsys):
    blob = tmp_path / "k.bin"
    cli.main(["sync-keys", "--device-id", "00000002", "--test-keys", "-o", str(blob)])
    cfg = tmp_path / "cfg.json"
    cfg.write_text("{}")
    img = tmp_path / "flash.bin"
    assert cli.main(["flash", "image", "--keys-blob", str(blob), "--config", str(cfg),
                     "--test-keys", "-o", str(img)]) == 0
    capsys.readouterr()
    assert cli.main(["inspect", str(img)]) == 0
    out = capsys.readouterr().out
    assert "config(" in out and "sync.keys(76)" in out
