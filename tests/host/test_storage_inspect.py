# Tier 2: `ykt inspect` decodes a sim-board flash dump and never modifies it.
import hashlib
import struct

from emu.nor import NorFlash
from validator.storage import plan, plan_boards, record, record_host
from validator.storage.recordlog import RecordLog
from ykt.cli import main


def test_inspect_when_dump_has_records_prints_them_and_leaves_the_file(tmp_path, capsys):
    path = str(tmp_path / "flash.bin")
    p = plan.PLAN_SIM
    fl = NorFlash(plan_boards.SIM_FLASH_SIZE, path=path)
    lg = RecordLog(fl, p["log"], p["watermark"]).mount()
    lg.maintain()
    img = record_host.new_image()
    for q in range(1, 13):
        record.reset(img)
        img[record_host.O_STATUS] = record_host.ST_GRAY if q == 12 else record_host.ST_NORMAL
        struct.pack_into(">I", img, record_host.O_AMOUNT, 100 + q)
        lg.append(img)
    lg.ack(5)
    fl.close()
    before = hashlib.sha256(open(path, "rb").read()).hexdigest()
    csv_path = str(tmp_path / "r.csv")
    assert main(["inspect", path, "--records", "2", "--csv", csv_path]) == 0
    out = capsys.readouterr().out
    assert "acked_seq 5  next_seq 13" in out and "gray" in out and "amount 112" in out
    assert open(csv_path).read().count("\n") == 13
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == before
