# Tier 2: images and dumps round-trip (issue 19): whatever `ykt flash image` writes, `ykt
# inspect` reads -- the esp32s3 data partition image or a full-chip dump, told apart by size
# -- and inspect says so when a dump is blank, foreign, read with the wrong --layout, or its
# parameter region is damaged.
import json
import os

import pytest

from validator.storage import plan_boards
from ykt import cli

PART = plan_boards.ESP32S3_FLASH_SIZE - plan_boards.ESP32S3_PARTITION_BASE


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    blob, cfg = str(d / "k.bin"), str(d / "cfg.json")
    assert cli.main(["sync-keys", "--device-id", "00120001", "--test-keys", "-o", blob]) == 0
    with open(cfg, "w") as f:
        json.dump({"city": "2900", "line": 12}, f)
    out = {}
    for board in ("sim", "esp32s3"):
        out[board] = str(d / ("%s.bin" % board))
        assert cli.main(["flash", "image", "--board", board, "--keys-blob", blob, "--config",
                         cfg, "--test-keys", "-o", out[board]]) == 0
    return d, out


def test_inspect_when_esp32s3_partition_image_from_flash_image_then_read(capsys, images):
    _, img = images
    assert os.path.getsize(img["esp32s3"]) == PART
    code, out, _ = run(capsys, "inspect", "--board", "esp32s3", img["esp32s3"])
    assert code == 0
    assert out.startswith("dump: esp32s3 data partition image, %d bytes" % PART)
    assert "params: config(" in out and "sync.keys(76)" in out and "damage: none found" in out


def test_inspect_when_esp32s3_full_chip_dump_then_read_at_chip_addresses(capsys, images,
                                                                       tmp_path):
    _, img = images
    full = tmp_path / "chip.bin"
    with open(full, "wb") as f, open(img["esp32s3"], "rb") as src:
        f.write(b"\xff" * plan_boards.ESP32S3_PARTITION_BASE)  # bootloader..vfs: erased
        f.write(src.read())
    code, out, _ = run(capsys, "inspect", "--board", "esp32s3", str(full))
    assert code == 0 and out.startswith("dump: esp32s3 full-chip dump")
    assert "sync.keys(76)" in out


def test_inspect_when_esp32s3_size_is_neither_then_usage_naming_both(capsys, tmp_path):
    p = tmp_path / "odd.bin"
    p.write_bytes(b"\xff" * 4096)
    code, _, err = run(capsys, "inspect", "--board", "esp32s3", str(p))
    assert code == cli.EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert str(plan_boards.ESP32S3_FLASH_SIZE) in err and str(PART) in err


def test_inspect_when_dump_blank_then_no_full_claim_and_warnings(capsys, tmp_path):
    p = tmp_path / "blank.bin"
    with open(p, "wb") as f:
        f.truncate(plan_boards.SIM_FLASH_SIZE)  # an inverted sim image: 00 on disk = erased
    code, out, _ = run(capsys, "inspect", str(p))
    assert code == 0
    assert "full -" in out and "full True" not in out
    assert "warning: the log region is blank (all erased)" in out
    assert "warning: the parameter region is blank: never provisioned" in out


def test_inspect_when_wrong_layout_then_warns_foreign(capsys, images):
    _, img = images
    code, out, _ = run(capsys, "inspect", "--layout", "plain", img["sim"])
    assert code == 0
    assert "log block headers are unreadable: not a validator dump, or the wrong --board " \
        "or --layout (this run: plain)" in out
    assert "warning: the parameter region is damaged or foreign" in out


def _flip(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x5A]))


def test_inspect_when_parameter_region_damaged_then_warns(capsys, images, tmp_path):
    from validator.storage import plan

    _, img = images
    off = plan.PLAN_SIM["params"][0]
    entry = tmp_path / "entry.bin"
    entry.write_bytes(open(img["sim"], "rb").read())
    _flip(str(entry), off + 16 + 20)  # inside the first entry: its CRC fails
    code, out, _ = run(capsys, "inspect", str(entry))
    assert code == 0 and "warning: the parameter region has bytes after its last valid " \
        "entry" in out
    head = tmp_path / "head.bin"
    head.write_bytes(open(img["sim"], "rb").read())
    _flip(str(head), off + 1)  # the active half's header
    code, out, _ = run(capsys, "inspect", str(head))
    assert code == 0 and "warning: the parameter region is damaged or foreign" in out


def test_inspect_when_good_image_then_no_warning(capsys, images):
    _, img = images
    code, out, _ = run(capsys, "inspect", img["sim"])
    assert code == 0 and out.startswith("dump: sim board image")
    assert [ln for ln in out.splitlines() if ln.startswith("warning")] == [
        "warning: the log holds no record yet (formatted, never tapped)"]


def test_broken_pipe_when_reader_leaves_then_quiet_exit_1(capsys, monkeypatch):
    from ykt import cmd_inspect

    def gone(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cmd_inspect, "do_inspect", gone)
    monkeypatch.setattr(cli, "_quiet_stdout", lambda: None)  # keep pytest's stdout
    code, out, err = run(capsys, "inspect", "x.bin")
    assert code == cli.EXIT_FAIL and err == ""


def test_inspect_when_json_then_one_object_with_records_and_warnings(capsys, tmp_path):
    import struct

    from emu.nor import NorFlash
    from validator.storage import plan, record, record_host
    from validator.storage.recordlog import RecordLog

    path = str(tmp_path / "flash.bin")
    fl = NorFlash(plan_boards.SIM_FLASH_SIZE, path=path)  # plain layout (not inverted)
    lg = RecordLog(fl, plan.PLAN_SIM["log"], plan.PLAN_SIM["watermark"]).mount()
    lg.maintain()
    img = record_host.new_image()
    for q in range(1, 8):
        record.reset(img)
        img[record_host.O_STATUS] = record_host.ST_NORMAL
        struct.pack_into(">I", img, record_host.O_AMOUNT, 100 + q)
        lg.append(img)
    fl.close()
    code, out, _ = run(capsys, "inspect", "--json", "--records", "3", path)
    assert code == 0
    d = json.loads(out)  # nothing but the object on stdout
    assert d["kind"] == "sim board image" and d["layout"] == "plain"
    assert d["log"]["next_seq"] == 8 and d["log"]["blank"] is False
    assert [r["amount"] for r in d["records"]] == [105, 106, 107]
    assert d["damage"] == [] and d["tear_pending"] == [] and d["params"] == {}
    assert "the parameter region is blank: never provisioned (no sync keys, no " \
        "configuration)" in d["warnings"]
