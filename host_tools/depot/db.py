# depot.db: the depot station's SQLite record database (ingest with dedupe, clearing export).
# SPDX-License-Identifier: MIT
#
# One row per (device_id, seq): the primary key is the dedupe rule of PROTOCOL.md §4.2, so a
# batch received twice (an ACK lost to a cut) is ignored row by row. ingest() commits before
# returning; only then may the caller ACK the batch to the device.
import csv
import os
import sqlite3
import time

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    device_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    received  REAL    NOT NULL,
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
    device_id INTEGER PRIMARY KEY,
    rec_size  INTEGER,
    firmware  INTEGER,
    last_sync REAL,
    acked_seq INTEGER,
    next_seq  INTEGER,
    blacklist_version INTEGER,
    fares_version     INTEGER,
    whitelist_version INTEGER,
    config_version    INTEGER
);
CREATE TABLE IF NOT EXISTS syncs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id INTEGER,
    started   REAL,
    finished  REAL,
    records_new INTEGER,
    records_dup INTEGER,
    outcome   TEXT
);
"""


class DepotDB:
    def __init__(self, path):
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        self.path = path
        self.con = sqlite3.connect(path, timeout=10)
        # durability before ACK: full fsync on commit (the device forgets what we ACK)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.executescript(_SCHEMA)
        self.con.commit()

    def close(self):
        self.con.close()

    def ingest(self, device_id, first_seq, rec_size, data):
        """Store count = len(data) // rec_size records; -> (new, duplicates). Commits."""
        n = len(data) // rec_size
        now = time.time()
        rows = [
            (device_id, first_seq + i, bytes(data[i * rec_size : (i + 1) * rec_size]), now)
            for i in range(n)
        ]
        with self.con:
            before = self.con.total_changes
            self.con.executemany(
                "INSERT OR IGNORE INTO records (device_id, seq, data, received) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            new = self.con.total_changes - before
        return new, n - new

    def note_device(self, info):
        with self.con:
            self.con.execute(
                "INSERT OR REPLACE INTO devices VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    info["device_id"], info["rec_size"], info["firmware"], time.time(),
                    info["acked_seq"], info["next_seq"], info["blacklist_version"],
                    info["fares_version"], info["whitelist_version"], info["config_version"],
                ),
            )

    def note_sync(self, device_id, started, new, dup, outcome):
        with self.con:
            self.con.execute(
                "INSERT INTO syncs (device_id, started, finished, records_new, records_dup, "
                "outcome) VALUES (?,?,?,?,?,?)",
                (device_id, started, time.time(), new, dup, outcome),
            )

    def contiguous_upto(self, device_id, after_seq, limit=1000000):
        """Highest s such that every seq in after_seq+1 .. s is stored (after_seq if none)."""
        s = after_seq
        cur = self.con.execute(
            "SELECT seq FROM records WHERE device_id=? AND seq>? ORDER BY seq LIMIT ?",
            (device_id, after_seq, limit),
        )
        for (q,) in cur:
            if q != s + 1:
                break
            s = q
        return s

    def count(self, device_id=None):
        if device_id is None:
            return self.con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        return self.con.execute(
            "SELECT COUNT(*) FROM records WHERE device_id=?", (device_id,)
        ).fetchone()[0]

    def seqs(self, device_id):
        return [
            r[0]
            for r in self.con.execute(
                "SELECT seq FROM records WHERE device_id=? ORDER BY seq", (device_id,)
            )
        ]

    def records(self, device_id=None):
        q = "SELECT device_id, seq, data FROM records"
        args = ()
        if device_id is not None:
            q += " WHERE device_id=?"
            args = (device_id,)
        return self.con.execute(q + " ORDER BY device_id, seq", args)

    def export_csv(self, path, decode="auto"):
        """Write the clearing file; -> rows written.

        decode(data) -> dict of clearing columns. "auto" uses the storage record codec
        (validator.storage.record_host: every record field, from the format registry) for
        128-byte records whose CRC checks, else the raw record goes out as hex in column
        `record`; the depot's own device_id/seq (from the sync session) always lead the row."""
        cols = ["depot_device_id", "depot_seq", "record_ok"]
        rec_host = None
        if decode == "auto":
            decode = None
            try:
                from validator.storage import record_host as rec_host
            except ImportError:
                rec_host = None
        if decode is None and rec_host is not None:
            cols += list(rec_host.CSV_COLUMNS)

            def decode(data):
                if len(data) != rec_host.REC_SIZE or not rec_host.crc_ok(data):
                    return None
                return rec_host.decode(data)

        cols.append("record")
        n = 0
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for dev, seq, data in self.records():
                row = {"depot_device_id": "%08X" % dev, "depot_seq": seq}
                d = decode(data) if decode is not None else None
                row["record_ok"] = 1 if d is not None else 0
                if d is not None:
                    row.update(d)
                row["record"] = bytes(data).hex()
                w.writerow(row)
                n += 1
        return n
