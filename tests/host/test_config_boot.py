"""Tier 2: a configuration the validator cannot use never stops it. The real firmware
(unix port, 128 KiB heap) boots on a flash whose signed configuration is malformed, serves
taps with the defaults, and the provisioning tool refuses the same file up front."""

import json

import pytest

from validator import errors as E
from validator.app import content
from ykt import cli, sim

TERMINAL = "000000120001"
NOW = 827800000  # 2026-03-27 in device seconds, inside every card's validity
BAD = [
    {"city": 2900, "line": 12},  # numbers, not strings: was a TypeError at every boot
    "hello",
    {"city": "2900", "line": "12"},
    {"city": "2900", "linne": 12},
    {"repeat_window_s": -1},
    {"tear_keep_s": True},
]


@pytest.mark.parametrize("cfg", BAD)
def test_config_when_malformed_parse_config_names_the_key(cfg):
    with pytest.raises(ValueError, match="config"):
        content.parse_config(json.dumps(cfg).encode())


def test_config_when_valid_parse_config_keeps_it():
    good = {"city": "2900", "line": 12, "repeat_window_s": 30, "tear_keep_s": 600}
    assert content.parse_config(json.dumps(good).encode()) == good
    assert content.parse_config(b"{}") == {}


@pytest.mark.parametrize("cfg", BAD)  # the validator boots on every one
def test_config_when_flashed_config_is_malformed_validator_boots_and_taps(tmp_path, cfg):
    s = sim.Sim(str(tmp_path))
    s.device_config = cfg
    try:
        s.prepare(sim.load_scenario(sim.DEFAULT_SCENARIO))
        w = s.validator(TERMINAL)
        w.send("P 12 1 0 0")
        w.wait("POS")
        w.set_time(NOW)
        c = s.card("cfg-rider", {"balance": 5000})
        reason, amount, balance, _ = w.tap(c)
        assert reason == E.R_OK and c.balance == 5000 - amount == balance
        # the evening sync reads the fault log: this boot, and why the config was refused
        faults = s.sync(w)["faults"]
        assert "boot 1" in faults and any(f.startswith("config: ") for f in faults), faults
    finally:
        s.stop()


def test_config_when_flash_image_gets_a_malformed_config_it_refuses(tmp_path, capsys):
    blob = tmp_path / "k.bin"
    assert cli.main(["sync-keys", "--device-id", "00120001", "--test-keys", "-o",
                     str(blob)]) == 0
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"city": 2900, "line": 12}))
    rc = cli.main(["flash", "image", "--keys-blob", str(blob), "--config", str(cfg),
                   "--test-keys", "-o", str(tmp_path / "x.bin")])
    err = capsys.readouterr().err
    assert rc != 0 and "city must be 4 decimal digits" in err and str(cfg) in err
    assert not (tmp_path / "x.bin").exists()
