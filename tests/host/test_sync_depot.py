# test_sync_depot: the depot database: dedupe on (device_id, seq), resume point, clearing CSV.
import csv

from depot.db import DepotDB
from depot.devsim import make_record


def _batch(first, n):
    return b"".join(bytes(make_record(s)) for s in range(first, first + n))


def test_depot_when_batch_ingested_twice_no_duplicates(tmp_path):
    db = DepotDB(str(tmp_path / "d.sqlite"))
    assert db.ingest(7, 1, 128, _batch(1, 10)) == (10, 0)
    assert db.ingest(7, 5, 128, _batch(5, 10)) == (4, 6)
    assert db.seqs(7) == list(range(1, 15))
    assert db.ingest(8, 1, 128, _batch(1, 2)) == (2, 0)  # another device, same seqs
    assert db.count() == 16 and db.count(7) == 14


def test_depot_when_gap_in_seqs_contiguous_upto_stops_before_gap(tmp_path):
    db = DepotDB(str(tmp_path / "d.sqlite"))
    db.ingest(7, 1, 128, _batch(1, 5))
    db.ingest(7, 8, 128, _batch(8, 2))
    assert db.contiguous_upto(7, 0) == 5
    assert db.contiguous_upto(7, 5) == 5
    assert db.contiguous_upto(7, 7) == 9
    assert db.contiguous_upto(9, 3) == 3


def test_depot_when_exported_clearing_csv_has_decoded_columns(tmp_path):
    db = DepotDB(str(tmp_path / "d.sqlite"))
    db.ingest(0x1234ABCD, 1, 128, _batch(1, 3))
    bad = bytearray(make_record(4))
    bad[50] ^= 1  # CRC no longer matches: exported raw, flagged
    db.ingest(0x1234ABCD, 4, 128, bytes(bad))
    out = tmp_path / "records.csv"
    assert db.export_csv(str(out)) == 4
    rows = list(csv.DictReader(open(out)))
    assert rows[0]["depot_device_id"] == "1234ABCD" and rows[0]["record_ok"] == "1"
    assert rows[0]["seq"] == "1" and rows[0]["tac"] and rows[0]["datetime"].startswith("2026")
    assert rows[3]["record_ok"] == "0" and rows[3]["record"] == bytes(bad).hex()


def test_sync_keys_when_made_device_blob_parses_and_matches_depot_key(tmp_path):
    import argparse

    from depot.devsim import TEST_CONTENT_PUB, TEST_MASTER
    from validator.sync import auth, auth_host
    from ykt import cmd_sync

    p = argparse.ArgumentParser()
    cmd_sync.register(p.add_subparsers())
    out = tmp_path / "k.bin"
    args = p.parse_args(["sync-keys", "--device-id", "1234ABCD", "--test-keys", "-o", str(out)])
    assert args.func(args) == 0
    dev, kd, kc = auth.parse_keys(out.read_bytes())
    assert dev == 0x1234ABCD and kc == TEST_CONTENT_PUB
    assert kd == auth_host.derive_device_key(TEST_MASTER, dev)
