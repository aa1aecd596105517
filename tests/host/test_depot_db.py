# The depot database (depot.db): the same suite on SQLite and on a real PostgreSQL server
# (depot.pgtemp starts Debian's postgresql in a temp folder; never a mock).
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from depot import clearing, schema
from depot import db as dbmod
from validator.storage import record_host as RH

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEV = 0x00120001


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "depot.sqlite")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db(url):
    d = dbmod.open_db(url)
    yield d
    d.close()


def image(seq, dev=DEV, amount=200, status="normal", card="03100000000000000001"):
    return clearing.encode({"status": status, "device_id": "%08x" % dev, "card_serial": card,
                            "issuer_id": "02002900ffffffff", "txn_type": "09", "alg_id": "00",
                            "amount": amount, "balance_before": 5000,
                            "balance_after": 5000 - amount, "atc": seq % 65536,
                            "datetime": "20260302%02d%02d00" % (6 + seq // 60 % 12, seq % 60),
                            "line": 12, "station": 3, "fare_list": amount, "tac": "01020304"},
                           seq)


def batch(first, n, dev=DEV):
    return b"".join(image(first + i, dev) for i in range(n))


def totals_match(d):
    """record_totals (kept by ingest) equals a GROUP BY over the records themselves."""
    want = sorted(tuple(r) for r in d.query(
        "SELECT day, line, issuer_id, status, COUNT(*), SUM(amount) FROM records WHERE "
        "record_ok = 1 GROUP BY day, line, issuer_id, status"))
    got = sorted(tuple(r) for r in d.query(
        "SELECT day, line, issuer_id, status, records, amount FROM record_totals"))
    assert got == want
    return sum(r[4] for r in got)


# -- schema: generated from the format registry, versioned ----------------------------------
def test_records_table_when_opened_has_one_column_per_registry_field(db):
    cols = set(db.columns("records"))
    for col, _t, field, _k in schema.RECORD_COLUMNS:
        assert col in cols, field
    assert {"device_id", "seq", "data", "record_ok", "sync_id", "day"} <= cols
    assert db.schema_version("core") == len(schema.CORE_STEPS)


def test_schema_when_reopened_runs_no_step_twice_and_newer_database_is_refused(url):
    d = dbmod.open_db(url)
    d.ingest(DEV, 1, RH.REC_SIZE, batch(1, 3))
    d.close()
    d = dbmod.open_db(url)
    assert d.count() == 3
    d.execute("UPDATE schema_versions SET version=? WHERE component='core'",
              (len(schema.CORE_STEPS) + 1,))
    d.close()
    with pytest.raises(dbmod.DatabaseError, match="upgrade the program"):
        dbmod.open_db(url)


def test_ensure_schema_when_a_step_fails_keeps_the_version_before_it(db):
    steps = ["CREATE TABLE extra_a (x INTEGER)", "CREATE TABLE extra_b (nonsense"]
    with pytest.raises(dbmod.DatabaseError):
        db.ensure_schema("extra", steps)
    assert db.schema_version("extra") == 1
    assert db.has_table("extra_a") and not db.has_table("extra_b")
    db.ensure_schema("extra", steps[:1] + ["CREATE TABLE extra_b (y INTEGER)"])
    assert db.schema_version("extra") == 2


def test_registry_field_when_added_later_becomes_a_column_and_reindex_fills_it(url):
    d = dbmod.open_db(url)
    d.ingest(DEV, 1, RH.REC_SIZE, batch(1, 4))
    col = "fare_list"  # stands in for a field the registry gained after the table was made
    d.execute("ALTER TABLE records DROP COLUMN %s" % col)
    d.close()
    d = dbmod.open_db(url)
    assert col in d.columns("records")
    assert [r[0] for r in d.query("SELECT %s FROM records" % col)] == [None] * 4
    assert d.reindex_records() == 4
    assert [r[0] for r in d.query("SELECT %s FROM records ORDER BY seq" % col)] == [200] * 4
    d.close()


def test_legacy_blob_database_when_opened_is_migrated_with_every_record_decoded(tmp_path):
    p = str(tmp_path / "old.sqlite")
    con = sqlite3.connect(p)
    con.executescript("CREATE TABLE records (device_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
                      " data BLOB NOT NULL, received REAL NOT NULL, PRIMARY KEY (device_id,"
                      " seq)) WITHOUT ROWID; CREATE TABLE devices (device_id INTEGER PRIMARY"
                      " KEY, rec_size INTEGER, firmware INTEGER, last_sync REAL, acked_seq"
                      " INTEGER, next_seq INTEGER, blacklist_version INTEGER, fares_version"
                      " INTEGER, whitelist_version INTEGER, config_version INTEGER);")
    con.executemany("INSERT INTO records VALUES (?,?,?,?)",
                    [(DEV, s, image(s), 1.0) for s in (1, 2, 3)] + [(DEV, 4, b"junk", 1.0)])
    con.execute("INSERT INTO devices (device_id, firmware) VALUES (?, 7)", (DEV,))
    con.commit()
    con.close()
    d = dbmod.open_db(p)
    rows = d.decoded(DEV)
    assert [(r["seq"], r["record_ok"]) for r in rows] == [(1, 1), (2, 1), (3, 1), (4, 0)]
    assert rows[0]["amount"] == 200 and rows[0]["status"] == "normal"
    assert rows[3]["data"] == b"junk" and rows[3]["amount"] is None
    assert d.device(DEV)["firmware"] == 7
    assert totals_match(d) == 3  # the migration filled the totals from what it decoded
    d.close()


# -- ingest: decoded, exactly once ---------------------------------------------------------
def test_ingest_when_records_decode_stores_every_field_as_record_host_decodes_it(db):
    imgs = [image(s, amount=100 + s) for s in range(5, 9)]
    assert db.ingest(DEV, 5, RH.REC_SIZE, b"".join(imgs)) == (4, 0)
    for row, img in zip(db.decoded(DEV), imgs, strict=True):
        want = RH.decode(img)
        for col, _t, field, kind in schema.RECORD_COLUMNS:
            if kind == "bit":
                continue
            assert row[col] == want[field], field
        assert row["data"] == img and row["record_ok"] == 1
        assert row["day"] == want["datetime"][:8]


def test_ingest_when_a_record_is_corrupt_keeps_it_raw_and_flagged_never_drops_it(db):
    good = image(1)
    bad = bytearray(image(2))
    bad[50] ^= 0xFF  # CRC no longer checks
    assert db.ingest(DEV, 1, RH.REC_SIZE, good + bytes(bad)) == (2, 0)
    rows = db.decoded(DEV)
    assert [r["record_ok"] for r in rows] == [1, 0]
    assert rows[1]["data"] == bytes(bad) and rows[1]["status"] is None
    assert db.contiguous_upto(DEV, 0) == 2  # stored: the device may forget it


def test_ingest_when_a_batch_arrives_twice_counts_each_record_once(db):
    assert db.ingest(DEV, 1, RH.REC_SIZE, batch(1, 10)) == (10, 0)
    assert db.ingest(DEV, 6, RH.REC_SIZE, batch(6, 10)) == (5, 5)
    assert db.count(DEV) == 15 and db.seqs(DEV) == list(range(1, 16))
    assert totals_match(db) == 15  # the 5 duplicates were not added twice
    assert db.contiguous_upto(DEV, 0) == 15
    db.ingest(DEV, 20, RH.REC_SIZE, batch(20, 2))
    assert db.contiguous_upto(DEV, 0) == 15 and db.contiguous_upto(DEV, 19) == 21


def test_ingest_batches_when_a_window_overlaps_stored_and_itself_counts_each_record_once(db):
    db.ingest(DEV, 1, RH.REC_SIZE, batch(1, 5))
    got = db.ingest_batches(DEV, [(4, RH.REC_SIZE, batch(4, 4)),  # 4, 5 stored; 6, 7 new
                                  (6, RH.REC_SIZE, batch(6, 3)),  # 6, 7 again; 8 new
                                  (20, RH.REC_SIZE, batch(20, 2))])
    assert got == [(2, 2), (1, 2), (2, 0)]
    assert db.seqs(DEV) == [1, 2, 3, 4, 5, 6, 7, 8, 20, 21]
    assert totals_match(db) == 10


def test_ingest_when_eight_sessions_race_on_overlapping_batches_holds_each_record_once(url):
    dbmod.open_db(url).close()  # schema made once, not raced
    errors, news = [], []
    data = {s: image(s) for s in range(1, 401)}

    def worker(k):
        d = dbmod.open_db(url)
        try:
            for first in range(1 + k * 7 % 50, 401, 50):  # overlapping windows of 60
                n = min(60, 401 - first)
                blob = b"".join(data[first + i] for i in range(n))
                news.append(d.ingest(DEV, first, RH.REC_SIZE, blob)[0])
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)
        finally:
            d.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    d = dbmod.open_db(url)
    stored = d.seqs(DEV)
    assert sum(news) == len(stored)  # every insert counted once, across all sessions
    assert stored == sorted(set(stored))
    assert [bytes(b) for _d, _s, b in d.records(DEV)] == [data[s] for s in stored]
    assert totals_match(d) == len(stored)
    d.close()


_WRITER = r"""
import sys
sys.path[:0] = [%r, %r]
from depot import clearing, db as dbmod
from validator.storage import record_host as RH
d = dbmod.open_db(sys.argv[1])
img = lambda s: clearing.encode({"status": "normal", "device_id": "00120001", "amount": 1,
                                 "datetime": "20260302080000", "tac": "01020304"}, s)
k = 0
while True:
    d.ingest(0x00120001, 1 + k * 500, RH.REC_SIZE, b"".join(img(1 + k * 500 + i)
                                                           for i in range(500)))
    print(k, flush=True)  # committed: what the station would ACK now
    k += 1
"""


def test_ingest_when_the_station_process_is_killed_mid_batch_keeps_whole_batches(url):
    dbmod.open_db(url).close()
    src = _WRITER % (os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "firmware"))
    p = subprocess.Popen([sys.executable, "-c", src, url], stdout=subprocess.PIPE, text=True)
    acked = -1
    for _ in range(3):
        acked = int(p.stdout.readline())
    time.sleep(0.05)  # into the middle of a later batch
    p.send_signal(signal.SIGKILL)
    p.wait()
    d = dbmod.open_db(url)
    n = d.count(DEV)
    assert n % 500 == 0 and n >= (acked + 1) * 500  # no part batch; nothing ACKed lost
    assert d.contiguous_upto(DEV, 0) == n
    # the validator, never ACKed past `acked`, sends the next batches again
    again = d.ingest(DEV, 1 + (acked + 1) * 500, RH.REC_SIZE, b"".join(
        image(1 + (acked + 1) * 500 + i) for i in range(500)))
    assert again in ((500, 0), (0, 500))
    assert totals_match(d) == d.count(DEV)
    d.close()


def test_ingest_when_postgresql_is_killed_mid_batch_rolls_back_and_reconnects(pg_server):
    url = pg_server.new_database()
    d = dbmod.open_db(url)
    d.ingest(DEV, 1, RH.REC_SIZE, batch(1, 100))
    big = batch(101, 4000)
    out = {}

    def go():
        try:
            out["r"] = d.ingest(DEV, 101, RH.REC_SIZE, big)
        except dbmod.DatabaseError as e:
            out["e"] = e

    t = threading.Thread(target=go)
    t.start()
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:  # wait until the batch is being written
        for _ in range(400):
            if c.execute("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in %%' "
                         "OR (state='active' AND query LIKE 'INSERT INTO records%%')"
                         ).fetchone()[0]:
                break
            time.sleep(0.005)
    pg_server.kill()
    t.join(60)
    assert "e" in out or out.get("r") == (4000, 0)
    n = d.count(DEV)  # the same object reconnects to the restarted server
    assert n in (100, 4100)
    if n == 100:
        # cut inside the transaction ("postgresql database: ...") or before it began,
        # while the server was down ("cannot connect to ...")
        assert "e" in out and ("postgresql database" in str(out["e"])
                               or "cannot connect" in str(out["e"]))
        assert d.ingest(DEV, 101, RH.REC_SIZE, big) == (4000, 0)
    assert d.contiguous_upto(DEV, 0) == 4100
    assert totals_match(d) == 4100
    d.close()


# -- the device registry, sessions, published content ---------------------------------------
def test_registry_when_device_unknown_or_retired_gives_no_key_and_never_lists_keys(db):
    db.register_device(DEV, b"k" * 32, line="12", vehicle="B1234", depot="north",
                       expected_firmware=3)
    ring = db.keyring()
    assert ring.key_for(DEV) == b"k" * 32
    assert ring.key_for(DEV + 1) is None
    d = db.device(DEV)
    assert (d["line"], d["vehicle"], d["depot"], d["expected_firmware"]) == ("12", "B1234",
                                                                            "north", 3)
    assert "sync_key" not in d and d["keyed"]
    db.register_device(DEV, b"n" * 32, line="15")  # re-provisioned: the old key is dead
    assert ring.key_for(DEV) == b"n" * 32 and db.device(DEV)["line"] == "15"
    db.retire_device(DEV)
    assert ring.key_for(DEV) is None and not db.device(DEV)["keyed"]
    with pytest.raises(ValueError):
        db.register_device(DEV, b"short")


def test_sync_sessions_when_noted_update_the_device_and_keep_history(db):
    db.register_device(DEV, b"k" * 32)
    info = {"device_id": DEV, "rec_size": 128, "firmware": 5, "acked_seq": 9, "next_seq": 12,
            "blacklist_version": 2, "fares_version": 3, "whitelist_version": 0,
            "config_version": 1}
    sid = db.begin_sync(DEV)
    db.ingest(DEV, 10, RH.REC_SIZE, batch(10, 2), sync_id=sid)
    db.note_device(info)
    db.note_sync(DEV, time.time(), 2, 0, "ok", sync_id=sid)
    db.note_sync(DEV, time.time(), 0, 0, "pull: disconnected")
    d = db.device(DEV)
    assert (d["next_seq"], d["fares_version"], d["last_outcome"]) == (12, 3,
                                                                      "pull: disconnected")
    assert d["last_sync"] is not None
    h = db.syncs(DEV)
    assert [s["outcome"] for s in h] == ["pull: disconnected", "ok"]
    assert h[1]["records_new"] == 2
    assert {r[0] for r in db.query("SELECT sync_id FROM records")} == {sid}


def test_publish_when_version_is_older_or_reused_with_other_bytes_is_refused(db):
    assert db.latest("blacklist") is None
    assert db.publish("blacklist", 2, b"v2") is True
    assert db.publish("blacklist", 2, b"v2") is False  # the same again: nothing to do
    with pytest.raises(dbmod.DatabaseError, match="already published"):
        db.publish("blacklist", 2, b"other")
    with pytest.raises(dbmod.DatabaseError, match="older"):
        db.publish("blacklist", 1, b"v1")
    db.publish("blacklist", 5, b"v5", note="risk loop")
    db.publish("fares", 1, b"f1")
    assert db.latest("blacklist") == (5, b"v5") and db.latest("fares") == (1, b"f1")
    assert [(k, v) for k, v, *_ in db.published("blacklist")] == [("blacklist", 5),
                                                                  ("blacklist", 2)]


def test_open_db_when_postgresql_unreachable_says_which_server_without_the_password():
    with pytest.raises(dbmod.DatabaseError) as e:
        dbmod.open_db("postgresql://ykt:secret@127.0.0.1:1/depot?connect_timeout=2")
    assert "127.0.0.1" in str(e.value) and "secret" not in str(e.value)


def test_sql_placeholders_when_translated_for_postgresql_leave_literals_alone(db):
    db.execute("CREATE TABLE t_lit (a TEXT, b BLOB)")
    db.execute("INSERT INTO t_lit VALUES ('what? 100%', ?)", (b"\x00\x01",))
    assert db.query("SELECT a, b FROM t_lit WHERE a LIKE '%?%'") == [("what? 100%",
                                                                     b"\x00\x01")]
