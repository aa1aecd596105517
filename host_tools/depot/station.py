# depot.station: one complete depot sync of one validator (library behind `ykt sync`).
# SPDX-License-Identifier: MIT
#
#   summary = sync_once(port, keyring, db, pushes=[(kind, name, blob)], clock_secs=...)
# Authenticate, pull every record past the watermark into db (ACK after each commit),
# push the signed containers, set the clock, read INFO, BYE. Raises StationError with
# .stage and .failure (a client.SyncFailure) when something is refused or breaks.
import time

from depot.client import SyncClient, SyncFailure
from validator.sync import wire_host


class StationError(Exception):
    def __init__(self, stage, failure):
        super().__init__("sync %s failed: %s" % (stage, failure))
        self.stage = stage
        self.failure = failure
        self.code = failure.code


def local_secs_since_2000(t=None):
    """Device time: local seconds since 2000-01-01 00:00 (validator.util.bcdtime)."""
    lt = time.localtime(t)
    return int(time.mktime(lt) - time.mktime((2000, 1, 1, 0, 0, 0, 0, 0, lt.tm_isdst)))


def sync_once(port, keyring, db, pushes=(), clock_secs=None, pull=True, faults=False,
              window=4, timeout=3.0, progress=None):
    """-> summary dict. progress(label) -> callable(done, total) or None."""
    started = time.time()
    client = SyncClient(port, keyring, timeout=timeout)
    summary = {}
    stage = "connect"
    try:
        info = client.connect()
        summary["device_id"] = "%08X" % info["device_id"]
        summary["info"] = info
        db.note_device(info)
        if pull:
            stage = "pull"
            new, dup = client.pull(db, window=max(1, min(8, window)),
                                   progress=progress("records") if progress else None)
            summary["records_new"] = new
            summary["records_dup"] = dup
        pushed = []
        for kind, name, blob in pushes:
            what = wire_host.KIND_NAMES[kind]
            stage = "push " + what
            v = client.push(kind, blob, progress=progress(what) if progress else None)
            pushed.append({"kind": what, "file": name, "version": v})
        summary["pushed"] = pushed
        if clock_secs is not None:
            stage = "clock"
            client.set_clock(clock_secs)
            summary["clock_set"] = clock_secs
        if faults:
            stage = "faults"
            summary["faults"] = client.faults().decode("utf-8", "replace").splitlines()
        summary["info_after"] = client.refresh_info()
        db.note_device(summary["info_after"])
        client.bye()
        db.note_sync(client.device_id, started, summary.get("records_new", 0),
                     summary.get("records_dup", 0), "ok")
    except SyncFailure as e:
        if client.tx_mac is not None and e.code is not None and e.code > wire_host.E_PROTO:
            client.bye()  # a refused push leaves a sound session: end it cleanly
        if client.device_id is not None:
            db.note_sync(client.device_id, started, 0, 0, "%s: %s" % (stage, e))
        raise StationError(stage, e)
    summary["bytes_in"] = client.bytes_in
    summary["bytes_out"] = client.bytes_out
    summary["seconds"] = round(time.time() - started, 3)
    return summary


# -- the unattended station (`ykt depot serve`, depot/serve.py) ------------------------------
# One station session per connection or serial poll: the same steps as sync_once, but what
# is pushed is decided here (the latest published content newer than what INFO says the
# device holds), every stage has its own deadline, the database may fail (the session then
# fails without ACK), and an admission hook may turn a device away before AUTH.

# (name as published, wire kind, INFO field)
CONTENT_KINDS = (
    ("blacklist", wire_host.K_BLACKLIST_FULL, "blacklist_version"),
    ("fares", wire_host.K_FARES, "fares_version"),
    ("whitelist", wire_host.K_WHITELIST, "whitelist_version"),
    ("config", wire_host.K_CONFIG, "config_version"),
)
# Seconds each stage may take in all (a validator that trickles bytes is cut too); the
# per-frame silence limit is the client timeout.
STAGE_TIMEOUTS = {"auth": 10.0, "pull": 600.0, "push": 120.0, "clock": 10.0,
                  "faults": 10.0, "bye": 5.0}


class Disconnected(SyncFailure):
    """The validator closed the connection."""


class Stopping(SyncFailure):
    """The station is shutting down: the session stops at its next read (after the batch
    in hand was committed and ACKed, never between)."""


class NotDue(Exception):
    """The admission hook turned the device away (before AUTH: nothing read or written)."""

    def __init__(self, device_id):
        super().__init__("device %08X not due" % device_id)
        self.device_id = device_id


class StagedPort:
    """A serial-like port for SyncClient with a deadline per stage and a stop flag.

    inner: an object with read(n)/write(b)/close() (pyserial) or a blocking socket
    (sock=True: EOF means the validator left -> Disconnected at once, not a timeout)."""

    def __init__(self, inner, sock=False, stop=None):
        self.inner = inner
        self.sock = sock
        self.stop = stop  # threading.Event or None
        self.stage_name = "auth"
        self.deadline = None

    def stage(self, name, seconds):
        self.stage_name = name
        self.deadline = time.monotonic() + seconds if seconds else None

    def _check(self):
        if self.stop is not None and self.stop.is_set():
            raise Stopping("station shutting down")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise SyncFailure("stage %s took too long (validator stalled?)" % self.stage_name)

    @property
    def in_waiting(self):
        if self.sock:
            import select

            r, _, _ = select.select([self.inner], [], [], 0)
            return 65536 if r else 0
        return getattr(self.inner, "in_waiting", 0)

    def read(self, n):
        self._check()
        if not self.sock:
            try:
                return self.inner.read(n)
            except OSError as e:  # pyserial's SerialException too: the port went away
                raise Disconnected("serial port failed: %s" % e)
        import socket

        try:
            b = self.inner.recv(n)
        except socket.timeout:
            return b""
        except OSError as e:
            raise Disconnected("connection lost: %s" % e)
        if not b:
            raise Disconnected("validator disconnected")
        return b

    def write(self, b):
        self._check()
        try:
            if self.sock:
                self.inner.sendall(b)
            else:
                self.inner.write(b)
        except OSError as e:
            raise Disconnected("connection lost: %s" % e)
        return len(b)

    def close(self):
        try:
            self.inner.close()
        except Exception:
            pass


class _AdmitKeyring:
    """The registry's keyring behind the admission hook: key_for() is asked right after
    the device named itself in CHALLENGE, before anything is authenticated."""

    def __init__(self, inner, admit):
        self.inner = inner
        self.admit = admit
        self.asked = None  # the device id the CHALLENGE named (logs, even when refused)

    def key_for(self, device_id):
        self.asked = device_id
        if self.admit is not None and not self.admit(device_id):
            raise NotDue(device_id)
        return _db("auth", self.inner.key_for, device_id)  # the registry is the database


class DatabaseFailure(SyncFailure):
    """The depot database refused (gone, locked, disk full): nothing was ACKed."""


def _db(stage, fn, *a):
    try:
        return fn(*a)
    except SyncFailure:
        raise
    except Exception as e:  # sqlite3 / psycopg / OSError: the DB, not the validator
        raise DatabaseFailure("database error during %s: %s: %s" % (stage, type(e).__name__, e))


class _GuardedDB:
    """What SyncClient.pull sees of the database: a failure there is a DatabaseFailure
    (raised before the ACK of the batch it was storing)."""

    def __init__(self, db):
        self.db = db

    def contiguous_upto(self, dev, after):
        return _db("pull", self.db.contiguous_upto, dev, after)

    def ingest(self, dev, first, size, data):
        return _db("pull", self.db.ingest, dev, first, size, data)

    def __getattr__(self, name):
        if name == "ingest_batches" and hasattr(self.db, name):
            return lambda dev, batches: _db("pull", self.db.ingest_batches, dev, batches)
        raise AttributeError(name)


def published(db, name):
    """The latest published container of a kind as (version, blob), or None."""
    return db.latest(name)


def station_session(port, keyring, db, content=None, clock_secs=None, admit=None,
                    window=4, timeout=3.0, stages=None, faults=True):
    """One session of the unattended station on a StagedPort; -> summary dict.

    content(name) -> (version, blob) or None: the latest published container of that kind
    (default: db.latest(name) when the database has it). Raises StationError (stage,
    failure) or NotDue."""
    st = dict(STAGE_TIMEOUTS)
    st.update(stages or {})
    started = time.time()
    ring = _AdmitKeyring(keyring, admit)
    client = SyncClient(port, ring, timeout=timeout)
    summary = {"pushed": [], "records_new": 0, "records_dup": 0}
    stage = "auth"
    if content is None:
        content = lambda name: published(db, name)  # noqa: E731

    def go(name):
        port.stage(name, st.get(name.split()[0]))
        return name

    try:
        go("auth")
        info = client.connect()
        summary["device_id"] = "%08X" % info["device_id"]
        summary["info"] = info
        _db("auth", db.note_device, info)
        stage = go("pull")
        new, dup = client.pull(_GuardedDB(db), window=max(1, min(8, window)))
        summary["records_new"] = new
        summary["records_dup"] = dup
        for name, kind, field in CONTENT_KINDS:
            stage = "push " + name
            c = _db(stage, content, name)
            if not c:
                continue
            version, blob = c
            if version <= info[field]:
                continue
            go(stage)
            v = client.push(kind, blob)
            summary["pushed"].append({"kind": name, "version": v})
        if clock_secs is not None:
            stage = go("clock")
            secs = clock_secs() if callable(clock_secs) else clock_secs
            client.set_clock(secs)
            summary["clock_set"] = secs
        if faults:
            stage = go("faults")
            summary["faults"] = client.faults().decode("utf-8", "replace").splitlines()
        stage = go("bye")
        summary["info_after"] = client.refresh_info()
        _db("bye", db.note_device, summary["info_after"])
        client.bye()
        _db("bye", db.note_sync, client.device_id, started, new, dup, "ok")
    except SyncFailure as e:
        if (client.tx_mac is not None and e.code is not None and e.code > wire_host.E_PROTO
                and not isinstance(e, (Disconnected, Stopping))):
            client.bye()  # a refused push leaves a sound session: end it cleanly
        if client.device_id is not None and not isinstance(e, DatabaseFailure):
            try:
                db.note_sync(client.device_id, started, summary["records_new"],
                             summary["records_dup"], "%s: %s" % (stage, e))
            except Exception:
                pass
        err = StationError(stage, e)
        err.summary = summary
        err.device_id = client.device_id if client.device_id is not None else ring.asked
        raise err
    summary["bytes_in"] = client.bytes_in
    summary["bytes_out"] = client.bytes_out
    summary["seconds"] = round(time.time() - started, 3)
    return summary
