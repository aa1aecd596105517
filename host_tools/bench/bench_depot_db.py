"""bench_depot_db: records committed per second into the depot database, as a sync does it.

A station commits a window of RECORDS frames (default 4) in one transaction and then ACKs
them at once (depot.client's group commit; depot.db.ingest_batches: decode every field per
the format registry, insert with ON CONFLICT DO NOTHING, add the day totals, commit). So the
unit measured here is one committed window of WINDOW frames of FRAME records from a
device's day; real record images (depot.clearing.encode), 20 devices interleaved.

  depot_ingest_records_per_s_sqlite    SQLite file, synchronous=FULL (fsync per commit)
                                       (goal >= 50 000)
  depot_ingest_records_per_s_postgres  PostgreSQL 15 from Debian in a temp folder
                                       (depot.pgtemp: Unix socket, fsync off -- a test
                                       server; say so when comparing) (goal >= 20 000)
  depot_ingest_frame_records           records per frame (WINDOW frames per commit)
  depot_ingest_window_frames           frames per commit
  depot_ingest_decode_per_s            records decoded into rows alone (no database)
"""

import os
import shutil
import tempfile
import time

from depot import clearing, pgtemp, schema
from depot import db as dbmod
from validator.storage import record_host as RH

FRAME = 64  # records per RECORDS_Z frame: a sync pull's frames are this order
WINDOW = 4  # frames committed together (the station's default pull window)
DEVICES = 20


def _day(n_per_dev):
    out = []
    for d in range(DEVICES):
        dev = 0x00120001 + d
        imgs = [clearing.encode({"status": "normal", "device_id": "%08x" % dev,
                                 "card_serial": "031000000000%08d" % (s % 5000),
                                 "issuer_id": "02002900ffffffff", "txn_type": "09",
                                 "amount": 200, "balance_before": 5000, "balance_after": 4800,
                                 "atc": s % 65536, "datetime": "20260302080000", "line": 12,
                                 "tac": "01020304"}, s) for s in range(1, n_per_dev + 1)]
        out.append((dev, b"".join(imgs)))
    return out


def _frames(day):
    step = FRAME * RH.REC_SIZE
    for i in range(0, len(day[0][1]), step):
        for dev, blob in day:
            yield dev, 1 + i // RH.REC_SIZE, blob[i:i + step]


def _ingest_rate(db, day, window=WINDOW):
    """Records committed per second, one transaction per `window` frames of a device, as
    the station's pull commits them (depot.client.SyncClient.pull's group commit)."""
    n = 0
    groups = {}
    t = time.perf_counter()
    for dev, first, data in _frames(day):
        g = groups.setdefault(dev, [])
        g.append((first, RH.REC_SIZE, data))
        if len(g) == window:
            for new, dup in db.ingest_batches(dev, g):
                if dup:
                    raise RuntimeError("bench day ingested twice")
                n += new
            g.clear()
    for dev, g in groups.items():
        if g:
            n += sum(a for a, _ in db.ingest_batches(dev, g))
    return n / (time.perf_counter() - t)


def run(ctx):
    per_dev = 1000 if ctx.quick else 5000
    day = _day(per_dev)
    r = {"depot_ingest_frame_records": FRAME, "depot_ingest_window_frames": WINDOW}
    imgs = [day[0][1][i:i + RH.REC_SIZE] for i in range(0, len(day[0][1]), RH.REC_SIZE)]
    t = time.perf_counter()
    for s, im in enumerate(imgs, 1):
        schema.record_row(1, s, None, 0.0, im)
    r["depot_ingest_decode_per_s"] = round(len(imgs) / (time.perf_counter() - t))

    tmp = tempfile.mkdtemp(prefix="bench_depot_db_")
    try:
        db = dbmod.open_db(os.path.join(tmp, "depot.sqlite"))
        try:
            r["depot_ingest_records_per_s_sqlite"] = round(_ingest_rate(db, day))
        finally:
            db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    srv = None
    try:
        srv = pgtemp.PgServer.start()
    except Exception as e:  # noqa: BLE001 -- report why, do not fail the other figures
        r["depot_ingest_postgres_note"] = "PostgreSQL not started: %s" % e
    if srv is None:
        r["depot_ingest_records_per_s_postgres"] = None
        r.setdefault("depot_ingest_postgres_note", "no PostgreSQL binaries installed")
        return r
    try:
        db = dbmod.open_db(srv.new_database())
        try:
            r["depot_ingest_records_per_s_postgres"] = round(_ingest_rate(db, day))
        finally:
            db.close()
    finally:
        srv.stop()
    return r
