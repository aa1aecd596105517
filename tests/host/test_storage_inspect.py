# Tier 2: `ykt inspect` decodes a sim-board flash dump and never modifies it.
import hashlib
import struct

from emu.nor import NorFlash
from validator.storage import plan, plan_boards, record, record_host
from validator.storage.recordlog import RecordLog
from ykt.cli import main


def _dump(tmp_path, n, gray_at=None, ack=0):
    """A sim-board flash dump holding records 1..n (amount 100 + seq)."""
    path = str(tmp_path / "flash.bin")
    p = plan.PLAN_SIM
    fl = NorFlash(plan_boards.SIM_FLASH_SIZE, path=path)
    lg = RecordLog(fl, p["log"], p["watermark"]).mount()
    lg.maintain()
    img = record_host.new_image()
    for q in range(1, n + 1):
        record.reset(img)
        img[record_host.O_STATUS] = record_host.ST_GRAY if q == gray_at else record_host.ST_NORMAL
        struct.pack_into(">I", img, record_host.O_AMOUNT, 100 + q)
        lg.append(img)
    if ack:
        lg.ack(ack)
    fl.close()
    return path


def test_inspect_when_dump_has_records_prints_them_and_leaves_the_file(tmp_path, capsys):
    path = _dump(tmp_path, 12, gray_at=12, ack=5)
    before = hashlib.sha256(open(path, "rb").read()).hexdigest()
    csv_path = str(tmp_path / "r.csv")
    assert main(["inspect", path, "--records", "2", "--csv", csv_path]) == 0
    out = capsys.readouterr().out
    assert "acked_seq 5  next_seq 13" in out and "gray" in out and "amount 112" in out
    assert open(csv_path).read().count("\n") == 13
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == before


def test_inspect_when_a_tear_context_is_pending_it_prints_the_torn_ride(tmp_path, capsys):
    # the tear store holds contexts (record bytes SERIAL..DIRECTION + gray seq + save time),
    # not a record image: decoded as a record it printed zeros
    from validator.storage.recordlog import TearStore
    from validator.txn import record as tear

    path = str(tmp_path / "flash.bin")
    p = plan.PLAN_SIM
    fl = NorFlash(plan_boards.SIM_FLASH_SIZE, path=path)
    RecordLog(fl, p["log"], p["watermark"]).mount().maintain()
    img = record_host.new_image()
    img[record_host.O_SERIAL : record_host.O_SERIAL + 10] = bytes.fromhex("03104770040067442802")
    struct.pack_into(">I", img, record_host.O_AMOUNT, 200)
    struct.pack_into(">H", img, record_host.O_ATC, 7)
    img[record_host.O_DATETIME : record_host.O_DATETIME + 7] = bytes.fromhex("20260327081500")
    blob = bytearray(tear.CTX_TABLE_LEN)
    c = tear.CTX_LEN  # the second slot: the first one is free
    blob[c : c + tear.CTX_IMG] = img[tear.CTX_BASE : tear.CTX_BASE + tear.CTX_IMG]
    struct.pack_into(">II", blob, c + tear.C_GRAY, 41, 827828100)
    blob[c + tear.C_VALID] = 1
    ts = TearStore(fl, p["tear"]).mount()
    ts.save(blob)
    fl.close()
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "PENDING card 03104770040067442802 amount 200 atc 7" in out
    assert "at 20260327081500 (gray seq 41)" in out and out.count("PENDING") == 1


def test_inspect_when_a_record_is_bit_flipped_it_names_the_place_and_keeps_the_rest(
        tmp_path, capsys):
    path = _dump(tmp_path, 10)
    p = plan.PLAN_SIM
    # flip one bit in the body of record 4 (block 0: slot 0 is the header, records follow)
    off = p["log"][0] + 4 * record_host.REC_SIZE + record_host.O_AMOUNT + 3
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)[0]
        f.seek(off)
        f.write(bytes([b ^ 0x01]))
    assert main(["inspect", path, "--records", "20"]) == 0
    out = capsys.readouterr().out
    assert "damage: corrupt slot: block 0 slot 4" in out and "claims seq 4" in out
    assert out.count("CORRUPT (CRC)") == 1
    for q in (1, 2, 3, 5, 10):
        assert "amount %d " % (100 + q) in out, q  # every intact record still listed


def test_inspect_when_the_dump_is_blank_it_says_so(tmp_path, capsys):
    path = str(tmp_path / "blank.bin")
    NorFlash(plan_boards.SIM_FLASH_SIZE, path=path).close()
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "warning: the log region is blank" in out
