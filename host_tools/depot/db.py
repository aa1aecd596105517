# depot.db: the depot station's database -- SQLite by default, PostgreSQL by URL.
# SPDX-License-Identifier: MIT
#
#   db = open_db("depot.sqlite")                        # embedded, nothing to start
#   db = open_db("postgresql://user@host/depot")        # psycopg 3 (pip extra "postgres")
#
# One API over both (DATABASE.md describes the tables):
#   query(sql, args) -> [tuple]      SQL is written once with ? placeholders and the types
#   execute(sql, args) -> rowcount   BIGINT / INTEGER / TEXT / DOUBLE PRECISION / BLOB;
#   executemany(sql, rows)           on PostgreSQL ? becomes %s and BLOB becomes BYTEA
#   transaction()                    a context: everything inside commits or none of it
#   ensure_schema(component, steps)  versioned migrations per component (schema_versions)
#   has_table(name), columns(name), kind ("sqlite" | "postgresql"), close()
# and the station's own operations:
#   ingest(device_id, first_seq, rec_size, data, sync_id=None) -> (new, duplicates)
#   contiguous_upto, count, seqs, records, export_csv       (the records, exactly once)
#   register_device, device, devices, keyring, note_device, begin_sync, note_sync
#   publish(kind, version, blob, note), latest(kind), published(kind)
#
# Exactly once: a record's key is (device_id, seq) (PROTOCOL.md §4.2). ingest() inserts a
# batch in one transaction with ON CONFLICT DO NOTHING and commits before it returns; only
# then may the station ACK the batch. A batch received twice (an ACK lost to a cut, two
# sessions of one device racing) is ignored row by row; a server killed mid-batch rolls the
# batch back and the device, never ACKed, sends it again.
#
# One Database object per thread (sqlite3 and psycopg connections are not shared across
# threads here); the station opens one per worker thread.
import contextlib
import csv
import os
import re
import sqlite3
import threading
import time

from depot import schema as S

PG_PREFIXES = ("postgresql://", "postgres://", "postgresql:")


class DatabaseError(Exception):
    """The database failed or went away (the station logs it; nothing is ACKed)."""


def is_pg_url(url):
    return str(url).startswith(PG_PREFIXES)


def open_db(url):
    """The depot database at url: a SQLite file path (created with its folder) or a
    postgresql:// URL."""
    url = os.fspath(url) if not isinstance(url, str) else url
    if is_pg_url(url):
        return Database(_PgBackend(url))
    return Database(_SqliteBackend(url))


# -- the two backends: connection, dialect ---------------------------------------------------
class _SqliteBackend:
    kind = "sqlite"

    def __init__(self, path):
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        self.url = path
        # autocommit mode: transactions are begun explicitly (BEGIN IMMEDIATE takes the
        # write lock up front, so two sessions never deadlock upgrading a read lock)
        self.con = sqlite3.connect(path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
        self.con.execute("PRAGMA journal_mode=WAL")
        # durability before ACK: a full fsync on commit (the device forgets what we ACK)
        self.con.execute("PRAGMA synchronous=FULL")
        self.errors = (sqlite3.Error,)

    def sql(self, s):
        return s

    def cursor(self):
        return self.con.cursor()

    def begin(self):
        self.con.execute("BEGIN IMMEDIATE")

    def commit(self):
        self.con.execute("COMMIT")

    def rollback(self):
        if self.con.in_transaction:
            self.con.execute("ROLLBACK")

    def lost(self):
        return False  # a file: nothing to lose

    def reconnect(self):
        pass

    def has_table(self, name):
        return bool(self.con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchall())

    def columns(self, name):
        return [r[1] for r in self.con.execute("PRAGMA table_info(%s)" % _ident(name))]

    def close(self):
        self.con.close()


_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|%|\?")
_BLOB = re.compile(r"\bBLOB\b")  # the type (column names are lower case)


class _PgBackend:
    kind = "postgresql"

    def __init__(self, url):
        try:
            import psycopg
        except ImportError as e:
            raise DatabaseError("PostgreSQL needs psycopg 3: pip install 'yikatong[postgres]'"
                                ) from e
        self.psycopg = psycopg
        self.url = url
        self.errors = (psycopg.Error,)
        self._cache = {}
        self._connect()

    def _connect(self):
        try:
            self.con = self.psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except self.psycopg.Error as e:
            raise DatabaseError("cannot connect to %s: %s" % (_redact(self.url),
                                                              str(e).strip())) from e

    def sql(self, s):
        t = self._cache.get(s)
        if t is None:
            def sub(m):
                g = m.group(0)
                if g == "?":
                    return "%s"
                return g.replace("%", "%%")  # psycopg wants %% even inside a literal
            t = _PLACEHOLDER.sub(sub, s)
            if t.lstrip()[:6].upper() in ("CREATE", "ALTER "):
                t = _BLOB.sub("BYTEA", t)
            self._cache[s] = t
        return t

    def cursor(self):
        if self.con.closed or self.con.broken:
            self._connect()  # the server came back: a fresh connection
        return self.con.cursor()

    def lost(self):
        return self.con.closed or self.con.broken

    def reconnect(self):
        with contextlib.suppress(Exception):
            self.con.close()
        self._connect()
        self.staging = None

    def begin(self):
        self.cursor().execute("BEGIN")

    def commit(self):
        self.con.execute("COMMIT")

    def rollback(self):
        self.staging = None  # a temp table made in the rolled-back transaction is gone
        if not self.con.closed and not self.con.broken:
            with contextlib.suppress(self.psycopg.Error):
                self.con.execute("ROLLBACK")

    def has_table(self, name):
        cur = self.cursor()
        cur.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = "
                    "current_schema() AND table_name = %s", (name,))
        return bool(cur.fetchall())

    def columns(self, name):
        cur = self.cursor()
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                    "current_schema() AND table_name = %s ORDER BY ordinal_position", (name,))
        return [r[0] for r in cur.fetchall()]

    def close(self):
        self.con.close()


def _ident(name):
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError("not a table name: %r" % name)
    return name


def _redact(url):
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


# -- the database -------------------------------------------------------------------------------
_COLS = ", ".join(S.ROW_COLUMNS)
_RET = " RETURNING %s" % ", ".join(("seq",) + S.TOTALS_KEY + ("amount",))
_ROWS_HEAD = "INSERT INTO records (%s) VALUES " % _COLS
_ROWS_ONE = "(%s)" % ", ".join("?" * len(S.ROW_COLUMNS))
_ROWS_TAIL = " ON CONFLICT (device_id, seq) DO NOTHING"
_ROWS_PER = max(1, 30000 // len(S.ROW_COLUMNS))  # under SQLite's 32 766 bound variables


def _pg_type(sql_type):
    t = sql_type.upper()
    for k, v in (("BIGINT", "int8"), ("INTEGER", "int4"), ("DOUBLE", "float8"),
                 ("BLOB", "bytea"), ("TEXT", "text")):
        if t.startswith(k):
            return v
    raise ValueError(sql_type)


_COPY_TYPES = ([_pg_type(t) for _c, t in S.DEPOT_COLUMNS] + ["bytea"]
               + [_pg_type(t) for _c, t, *_ in S.RECORD_COLUMNS])


def _insert_rows(db, rows):
    """-> how many rows were new (see _insert_new)."""
    return len(_insert_new(db, rows))


def _insert_new(db, rows):
    """Insert records rows (schema.record_row shape) in one transaction, and add the rows
    that were new -- the INSERT's RETURNING says which: a row already stored is neither
    inserted nor counted -- to record_totals in the same transaction (once that table
    exists; the migrations fill it from records); -> how many were new. On PostgreSQL a
    batch goes by binary COPY into a per-connection temporary table and one
    INSERT .. SELECT .. ON CONFLICT DO NOTHING."""
    if not rows:
        return []
    totals = db._totals

    def go():
        new = []
        with db.transaction():
            cur = db.b.cursor()
            if db.kind == "postgresql":
                if getattr(db.b, "staging", None) is not db.b.con:  # once per connection
                    # emptied at each commit: a DELETE per batch would leave dead rows that
                    # every later batch scans (no autovacuum on temporary tables)
                    cur.execute("CREATE TEMP TABLE IF NOT EXISTS records_in ON COMMIT DELETE "
                                "ROWS AS SELECT %s FROM records WITH NO DATA" % _COLS)
                    db.b.staging = db.b.con
                with cur.copy("COPY records_in (%s) FROM STDIN (FORMAT BINARY)" % _COLS) as cp:
                    cp.set_types(_COPY_TYPES)
                    for r in rows:
                        cp.write_row(r)
                cur.execute("INSERT INTO records (%s) SELECT %s FROM records_in ON CONFLICT "
                            "(device_id, seq) DO NOTHING%s" % (_COLS, _COLS, _RET))
                new = cur.fetchall()
            else:
                for i in range(0, len(rows), _ROWS_PER):
                    chunk = rows[i:i + _ROWS_PER]
                    cur.execute(_ROWS_HEAD + ",".join([_ROWS_ONE] * len(chunk)) + _ROWS_TAIL
                                + _RET, [v for r in chunk for v in r])
                    new.extend(cur.fetchall())
            if totals:
                add_totals(db, [r[1:] for r in new])
        return new
    return db._run(go)


_TOTALS_UPSERT = (
    "INSERT INTO record_totals (%s, records, amount) VALUES (%s, ?, ?) ON CONFLICT (%s) DO "
    "UPDATE SET records = record_totals.records + excluded.records, "
    "amount = record_totals.amount + excluded.amount"
    % (", ".join(S.TOTALS_KEY), ", ".join("?" * len(S.TOTALS_KEY)), ", ".join(S.TOTALS_KEY)))


def add_totals(db, new):
    """Fold new records ((day, line, issuer_id, status, amount) each) into record_totals.
    Undecodable records (day NULL) are not in it; pending() counts them apart."""
    acc = {}
    for *key, amount in new:
        if key[0] is None:
            continue
        k = tuple(key)
        e = acc.get(k)
        if e is None:
            acc[k] = [1, amount or 0]
        else:
            e[0] += 1
            e[1] += amount or 0
    if acc:
        db.executemany(_TOTALS_UPSERT, [k + (n, a) for k, (n, a) in sorted(acc.items())])


class Database:
    def __init__(self, backend):
        self.b = backend
        self.kind = backend.kind
        self.url = backend.url
        self.path = backend.url  # the older DepotDB's name for it (a file path on SQLite)
        self._depth = 0
        self._lock = threading.RLock()
        self._totals = False  # record_totals kept by ingest once the migrations made it
        try:
            self.ensure_schema("core", S.CORE_STEPS)
            with self.transaction():
                S.add_record_columns(self)
            self._totals = True
        except BaseException:
            backend.close()
            raise

    # -- generic SQL --------------------------------------------------------------------------
    def _run(self, fn):
        try:
            return fn()
        except self.b.errors as first:
            err = first
            if self._depth == 0 and self.b.lost():
                # the server went away since this connection was last used (restarted,
                # failed over): outside a transaction nothing of ours was half done, so
                # connect again and try once more (statements here are idempotent upserts
                # or reads; a transaction that was cut is never retried, its caller sees
                # the error and ACKs nothing)
                try:
                    self.b.reconnect()
                    return fn()
                except DatabaseError:
                    raise  # cannot connect: says which server
                except self.b.errors as again:
                    err = again
            if self._depth == 0:
                self.b.rollback()
            raise DatabaseError("%s database: %s" % (self.kind, str(err).strip()
                                                     or type(err).__name__)) from err

    def query(self, sql, args=()):
        def go():
            cur = self.b.cursor()
            cur.execute(self.b.sql(sql), tuple(args))
            return cur.fetchall() if cur.description is not None else []
        return self._run(go)

    def execute(self, sql, args=()):
        def go():
            cur = self.b.cursor()
            cur.execute(self.b.sql(sql), tuple(args))
            return cur.rowcount
        return self._run(go)

    def executemany(self, sql, rows):
        """-> the rows changed (inserts ignored by ON CONFLICT are not counted)."""
        rows = list(rows)
        if not rows:
            return 0

        def go():
            with self.transaction():
                cur = self.b.cursor()
                if self.kind == "sqlite":
                    before = self.b.con.total_changes
                    cur.executemany(sql, rows)
                    return self.b.con.total_changes - before
                cur.executemany(self.b.sql(sql), rows)
                return max(cur.rowcount, 0)
        return self._run(go)

    @contextlib.contextmanager
    def transaction(self):
        """Everything inside commits together or not at all (nests: the outermost commits)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._run(self.b.begin)
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self.b.rollback()
                raise
            self._depth = 0
            self._run(self.b.commit)

    def has_table(self, name):
        return self._run(lambda: self.b.has_table(name))

    def columns(self, name):
        return self._run(lambda: self.b.columns(name))

    def ensure_schema(self, component, steps):
        """Run the migrations of `component` that this database lacks, each step in its own
        transaction with its version. A step is SQL or a callable(db). Steps are appended,
        never edited once shipped; a database newer than the code is refused."""
        self.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY,"
                     " version INTEGER NOT NULL, updated DOUBLE PRECISION)")
        r = self.query("SELECT version FROM schema_versions WHERE component=?", (component,))
        have = r[0][0] if r else 0
        if have > len(steps):
            raise DatabaseError("the %s schema of this database is version %d; this program "
                                "knows %d (upgrade the program)" % (component, have, len(steps)))
        for i in range(have, len(steps)):
            step = steps[i]
            with self.transaction():
                if callable(step):
                    step(self)
                else:
                    self.execute(step)
                self.execute("INSERT INTO schema_versions (component, version, updated) "
                             "VALUES (?, ?, ?) ON CONFLICT (component) DO UPDATE SET "
                             "version = excluded.version, updated = excluded.updated",
                             (component, i + 1, time.time()))
        return len(steps)

    def schema_version(self, component="core"):
        r = self.query("SELECT version FROM schema_versions WHERE component=?", (component,))
        return r[0][0] if r else 0

    def close(self):
        self.b.close()

    # -- records ------------------------------------------------------------------------------
    def ingest(self, device_id, first_seq, rec_size, data, sync_id=None):
        """Store len(data) // rec_size records of device_id from first_seq, decoded per the
        format registry plus the raw bytes; -> (new, duplicates). Commits before it returns
        (the caller ACKs only then). A record that does not decode (wrong size, bad CRC) is
        kept raw with record_ok = 0 -- stored and flagged, never dropped."""
        if rec_size <= 0:
            raise ValueError("record size must be positive")
        n = len(data) // rec_size
        now = time.time()
        mv = memoryview(data)
        rows = [S.record_row(device_id, first_seq + i, sync_id, now,
                             bytes(mv[i * rec_size:(i + 1) * rec_size])) for i in range(n)]
        new = _insert_rows(self, rows)
        return new, n - new

    def ingest_batches(self, device_id, batches, sync_id=None):
        """Several batches [(first_seq, rec_size, data)] of one device in one transaction
        and one INSERT (the station's group commit: one fsync for a window of RECORDS
        frames); -> [(new, duplicates)] per batch. All or none are stored."""
        now = time.time()
        rows, spans = [], []
        for first, size, data in batches:
            if size <= 0:
                raise ValueError("record size must be positive")
            n = len(data) // size
            mv = memoryview(data)
            rows.extend(S.record_row(device_id, first + i, sync_id, now,
                                     bytes(mv[i * size:(i + 1) * size])) for i in range(n))
            spans.append((first, n))
        seqs = {r[0] for r in _insert_new(self, rows)}
        out = []
        for first, n in spans:
            k = 0
            for q in range(first, first + n):
                if q in seqs:
                    seqs.discard(q)  # a seq twice in one window counts new once
                    k += 1
            out.append((k, n - k))
        return out

    def contiguous_upto(self, device_id, after_seq, limit=1000000):
        """Highest s such that every seq in after_seq+1 .. s is stored (after_seq if none)."""
        s = after_seq
        for (q,) in self.query("SELECT seq FROM records WHERE device_id=? AND seq>? "
                               "ORDER BY seq LIMIT ?", (device_id, after_seq, limit)):
            if q != s + 1:
                break
            s = q
        return s

    def count(self, device_id=None):
        if device_id is None:
            return self.query("SELECT COUNT(*) FROM records")[0][0]
        return self.query("SELECT COUNT(*) FROM records WHERE device_id=?", (device_id,))[0][0]

    def seqs(self, device_id):
        return [r[0] for r in self.query("SELECT seq FROM records WHERE device_id=? "
                                         "ORDER BY seq", (device_id,))]

    def records(self, device_id=None):
        """[(device_id, seq, raw bytes)] in key order."""
        q, args = "SELECT device_id, seq, data FROM records", ()
        if device_id is not None:
            q, args = q + " WHERE device_id=?", (device_id,)
        return [(d, s, bytes(b)) for d, s, b in self.query(q + " ORDER BY device_id, seq", args)]

    def decoded(self, device_id=None, where="", args=()):
        """Decoded records as dicts (one key per records column, raw bytes under 'data')."""
        cols = self.columns("records")
        q = "SELECT %s FROM records" % ", ".join(cols)
        conds, a = [], []
        if device_id is not None:
            conds.append("device_id=?")
            a.append(device_id)
        if where:
            conds.append("(%s)" % where)
            a.extend(args)
        if conds:
            q += " WHERE " + " AND ".join(conds)
        out = []
        for r in self.query(q + " ORDER BY device_id, seq", a):
            d = dict(zip(cols, r, strict=True))
            d["data"] = bytes(d["data"])
            out.append(d)
        return out

    def reindex_records(self):
        """Decode every record again from its raw bytes (after a registry field was added);
        -> rows rewritten."""
        rows = self.query("SELECT device_id, seq, sync_id, received, data FROM records")
        with self.transaction():
            self.execute("DELETE FROM records")
            self.execute("DELETE FROM record_totals")
            _insert_rows(self, [S.record_row(d, s, y, r, bytes(b)) for d, s, y, r, b in rows])
        return len(rows)

    def export_csv(self, path, decode="auto"):
        """The all-records CSV (a debugging view; clearing exports are depot.clearing's):
        the depot's device_id/seq lead, then every decoded field, then the raw record in
        hex; -> rows written."""
        from validator.storage import record_host as RH

        cols = ["depot_device_id", "depot_seq", "record_ok"] + list(RH.CSV_COLUMNS) + ["record"]
        n = 0
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for dev, seq, data in self.records():
                row = {"depot_device_id": "%08X" % dev, "depot_seq": seq, "record_ok": 0}
                if len(data) == RH.REC_SIZE and RH.crc_ok(data):
                    row.update(RH.decode(data))
                    row["record_ok"] = 1
                row["record"] = data.hex()
                w.writerow(row)
                n += 1
        return n

    # -- the device registry --------------------------------------------------------------
    def register_device(self, device_id, sync_key, line=None, vehicle=None, depot=None,
                        expected_firmware=None):
        """Register (or re-key) a validator when it is provisioned: its per-device sync key
        and assignment. The previous key stops working at once."""
        key = bytes(sync_key)
        if not 16 <= len(key) <= 64:
            raise ValueError("a device sync key is 16..64 bytes, not %d" % len(key))
        now = time.time()
        self.execute(
            "INSERT INTO devices (device_id, sync_key, key_set, line, vehicle, depot, "
            "expected_firmware, registered) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (device_id) "
            "DO UPDATE SET sync_key=excluded.sync_key, key_set=excluded.key_set, "
            "line=excluded.line, vehicle=excluded.vehicle, depot=excluded.depot, "
            "expected_firmware=excluded.expected_firmware",
            (int(device_id), key, now, None if line is None else str(line),
             None if vehicle is None else str(vehicle), None if depot is None else str(depot),
             expected_firmware, now))

    def retire_device(self, device_id):
        """Take a validator's key away (stolen, scrapped): it gets nothing at the next sync;
        its records stay."""
        self.execute("UPDATE devices SET sync_key=NULL, key_set=? WHERE device_id=?",
                     (time.time(), int(device_id)))

    _PUBLIC = ("device_id", "line", "vehicle", "depot", "firmware", "expected_firmware",
               "registered", "last_sync", "last_seen", "last_outcome", "acked_seq",
               "next_seq", "rec_size", "blacklist_version", "fares_version",
               "whitelist_version", "config_version")

    def devices(self):
        """Every known validator as a dict (never its key)."""
        rows = self.query("SELECT %s, sync_key IS NOT NULL FROM devices ORDER BY device_id"
                          % ", ".join(self._PUBLIC))
        out = []
        for r in rows:
            d = dict(zip(self._PUBLIC, r[:-1], strict=True))
            d["keyed"] = bool(r[-1])
            out.append(d)
        return out

    def device(self, device_id):
        for d in self.query("SELECT device_id FROM devices WHERE device_id=?", (int(device_id),)):
            return next(x for x in self.devices() if x["device_id"] == d[0])
        return None

    def keyring(self):
        """The registry as a keyring: key_for(device_id) -> the key bytes, or None for a device
        that is unknown or retired (it gets nothing)."""
        return _RegistryKeys(self)

    def note_device(self, info):
        """What the device reported in a session (PROTOCOL.md INFO) and when it was seen."""
        now = time.time()
        cols = ("rec_size", "firmware", "acked_seq", "next_seq", "blacklist_version",
                "fares_version", "whitelist_version", "config_version")
        vals = [info.get(c) for c in cols]
        self.execute(
            "INSERT INTO devices (device_id, last_sync, last_seen, %s) VALUES (?,?,?,%s) "
            "ON CONFLICT (device_id) DO UPDATE SET last_sync=excluded.last_sync, "
            "last_seen=excluded.last_seen, %s"
            % (", ".join(cols), ",".join("?" * len(cols)),
               ", ".join("%s=excluded.%s" % (c, c) for c in cols)),
            [int(info["device_id"]), now, now] + vals)

    def begin_sync(self, device_id, started=None):
        """A sync session starts; -> its id (records it delivers carry it)."""
        started = time.time() if started is None else started
        with self.transaction():
            self.execute("INSERT INTO syncs (device_id, started, outcome) VALUES (?,?,?)",
                         (int(device_id), started, "running"))
            return self.query("SELECT MAX(id) FROM syncs WHERE device_id=?",
                              (int(device_id),))[0][0]

    def note_sync(self, device_id, started, new, dup, outcome, sync_id=None, detail=None):
        now = time.time()
        with self.transaction():
            if sync_id is not None:
                self.execute("UPDATE syncs SET finished=?, records_new=?, records_dup=?, "
                             "outcome=?, detail=? WHERE id=?",
                             (now, new, dup, outcome, detail, sync_id))
            else:
                self.execute("INSERT INTO syncs (device_id, started, finished, records_new, "
                             "records_dup, outcome, detail) VALUES (?,?,?,?,?,?,?)",
                             (int(device_id), started, now, new, dup, outcome, detail))
                sync_id = self.query("SELECT MAX(id) FROM syncs WHERE device_id=?",
                                     (int(device_id),))[0][0]
            self.execute("UPDATE devices SET last_outcome=?, last_sync_id=? WHERE device_id=?",
                         (outcome, sync_id, int(device_id)))
        return sync_id

    def syncs(self, device_id=None, limit=100):
        cols = ("id", "device_id", "started", "finished", "records_new", "records_dup",
                "outcome", "detail")
        q, a = "SELECT %s FROM syncs" % ", ".join(cols), []
        if device_id is not None:
            q, a = q + " WHERE device_id=?", [int(device_id)]
        rows = self.query(q + " ORDER BY id DESC LIMIT ?", a + [int(limit)])
        return [dict(zip(cols, r, strict=True)) for r in rows]

    # -- content published for the fleet --------------------------------------------------
    def publish(self, kind, version, blob, note=None):
        """Publish a signed container (blacklist, fares, whitelist, config) at version; a
        version is published once (republishing the same bytes is a no-op, other bytes are
        refused) and never lower than the latest."""
        version, blob = int(version), bytes(blob)
        with self.transaction():
            have = self.query("SELECT blob FROM published WHERE kind=? AND version=?",
                              (kind, version))
            if have:
                if bytes(have[0][0]) != blob:
                    raise DatabaseError("%s version %d is already published with other "
                                        "content" % (kind, version))
                return False
            top = self.query("SELECT MAX(version) FROM published WHERE kind=?", (kind,))[0][0]
            if top is not None and version < top:
                raise DatabaseError("%s version %d is older than the published %d"
                                    % (kind, version, top))
            self.execute("INSERT INTO published (kind, version, blob, note, published) "
                         "VALUES (?,?,?,?,?)", (kind, version, blob, note, time.time()))
        return True

    def latest(self, kind):
        """-> (version, blob) of the newest published container of kind, or None."""
        r = self.query("SELECT version, blob FROM published WHERE kind=? ORDER BY version DESC "
                       "LIMIT 1", (kind,))
        return (int(r[0][0]), bytes(r[0][1])) if r else None

    def published(self, kind=None):
        """[(kind, version, note, published, size)] newest first."""
        q, a = "SELECT kind, version, note, published, blob FROM published", ()
        if kind is not None:
            q, a = q + " WHERE kind=?", (kind,)
        return [(k, v, n, p, len(bytes(b))) for k, v, n, p, b in
                self.query(q + " ORDER BY kind, version DESC", a)]


class _RegistryKeys:
    def __init__(self, db):
        self.db = db

    def key_for(self, device_id):
        r = self.db.query("SELECT sync_key FROM devices WHERE device_id=?", (int(device_id),))
        if not r or r[0][0] is None:
            return None
        return bytes(r[0][0])


def DepotDB(path):  # noqa: N802 -- the name older callers use
    """The depot database at path (SQLite) or URL; open_db under its older name."""
    return open_db(path)
