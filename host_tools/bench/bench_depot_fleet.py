"""bench_depot_fleet: a fleet of validators syncing into one `ykt depot serve` at once.

The fleet is LIGHTWEIGHT PROTOCOL-LEVEL validator clients, not 200 MicroPython processes:
each is the firmware's own device side -- validator.sync.session.Session (codec, mutual
authentication, MAC'd frames, windowed RECORDS_Z pull) over validator.sync.target.LogTarget
and a 500-record day (depot.devsim.GenLog, the same record bytes devsim serves) -- run in
CPython, all in one process beside the station's process, connecting out over loopback
TCP, each with its own device key from the registry. The station is depot.serve.Station
(the code behind `ykt depot serve`) with a SQLite database.

Metrics:
  depot_concurrent_validators   validators that completed their session, all started at
                                once (goal 200 with 0 lost / 0 duplicated)
  depot_fleet_records_lost      records of the fleet's days not in the database
  depot_fleet_records_duplicated  rows beyond one per (device, seq), and records the
                                station counted as duplicates
  depot_fleet_sync_s            wall time from the first connect to the last session done
  depot_dashboard_ms            /api/overview (everything the page shows) with 1 M records
                                in the database (median of 3, after one warm-up)
  depot_dashboard_page_ms       GET / (the page itself) on the same database
"""

import json
import os
import select
import subprocess
import sys
import tempfile
import time

FLEET = 200
DAY = 500
BIG = 1000000
BASE_ID = 0x20000000


# -- the protocol-level validator ----------------------------------------------------------
class _Clock:
    """hal Clock subset for a CPython device: ms ticks and device seconds."""

    def __init__(self):
        self.offset = 0

    def ticks_ms(self):
        return int(time.monotonic() * 1000) & 0x3FFFFFFF

    def ticks_diff(self, a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

    def now(self):
        return int(time.time()) - 946684800 + self.offset

    def set_time(self, secs):
        self.offset += secs - self.now()


class _Shadow:
    """Streaming content handler (where a validator fills a flash shadow area)."""

    def __init__(self):
        self.applied = {}
        self.n = 0

    def begin(self, kind, version, body_len):
        self.n = 0
        return 0

    def write(self, off, data):
        self.n += len(data)
        return 0

    def commit(self, version):
        self.applied[version] = self.n
        return 0

    def abort(self):
        self.n = 0


class ProtoDevice:
    """One validator's sync endpoint in CPython (the firmware's Session and LogTarget over a
    GenLog day), dialling a depot. kd None: the key derived from the TEST master.
    cut_after: close the TCP connection after sending this many bytes (a validator driving
    away mid-batch); stall_after: after sending that many, read and answer nothing more."""

    def __init__(self, dev_id, records=DAY, kd=None, cut_after=None, stall_after=None):
        from depot.devsim import TEST_CONTENT_PUB, TEST_MASTER, GenLog
        from validator.sync import auth_host
        from validator.sync.session import Session
        from validator.sync.target import LogTarget

        self.dev_id = dev_id
        self.kd = kd if kd is not None else auth_host.derive_device_key(TEST_MASTER, dev_id)
        self.log = GenLog(records)
        self.clock = _Clock()
        self.shadow = _Shadow()
        h = self.shadow
        self.target = LogTarget(self.log, dev_id, 0x000100, TEST_CONTENT_PUB, self.clock,
                                {1: h, 2: h, 3: h, 4: h, 5: h})
        self.sess = Session(None, self.target, (dev_id, self.kd, TEST_CONTENT_PUB), os.urandom,
                            self.clock)
        self.cut_after = cut_after
        self.stall_after = stall_after
        self.tx = 0
        self.was_auth = False
        self.done = False

    def connect(self, host, port):
        from validator.sync import transport

        self.sess.attach(transport.tcp_connect(host, port))
        _count_tx(self)
        self.done = False
        self.was_auth = False
        self.tx = 0

    def sock(self):
        return self.sess.link.s if self.sess.link is not None else None

    def step(self):
        """-> True if it did something. Sets .done when the depot ended the connection."""
        link = self.sess.link
        if self.done or link is None:
            return False
        if link.closed:
            self.done = True
            return False
        if self.stall_after is not None and self.tx >= self.stall_after:
            self._peek_eof()
            return False  # stalled: reads nothing, answers nothing
        if self.cut_after is not None and self.tx >= self.cut_after:
            link.close()
            self.done = True
            return False
        did = self.sess.step()
        if self.sess.authenticated():
            self.was_auth = True
        return did

    def _peek_eof(self):
        """A stalled device still notices when the depot hangs up (then it is done); what
        arrives meanwhile is never looked at (its TCP stack takes it, the firmware is hung)."""
        import socket

        try:
            while True:
                b = self.sock().recv(4096, socket.MSG_DONTWAIT)
                if not b:
                    break
        except BlockingIOError:
            return
        except OSError:
            b = b""
        if not b:
            self.sess.link.close()
            self.done = True


def _count_tx(dev):
    """Wrap the device's link so sent bytes are counted (for the cut and stall points)."""
    link = dev.sess.link
    inner = link.write

    def write(buf, n):
        w = inner(buf, n)
        dev.tx += w
        return w

    link.write = write


def drive(devices, until, idle_ms=5):
    """Step devices round-robin until every one is done or until (monotonic) passes."""
    live = [d for d in devices if not d.done]
    while live and time.monotonic() < until:
        did = False
        for d in live:
            for _ in range(4):
                if not d.step():
                    break
                did = True
        live = [d for d in live if not d.done]
        if not did and live:
            socks = [d.sock() for d in live if d.sock() is not None]
            try:
                select.select(socks, [], [], idle_ms / 1000)
            except (OSError, ValueError):
                time.sleep(idle_ms / 1000)
    return live


def run_fleet(host, port, n, records, first_id=BASE_ID, timeout=300.0):
    """n ProtoDevices connect at once and sync; -> result dict (for the fleet process)."""
    devs = [ProtoDevice(first_id + i, records) for i in range(n)]
    t0 = time.monotonic()
    for d in devs:
        d.connect(host, port)
    left = drive(devs, t0 + timeout)
    t1 = time.monotonic()
    return {"devices": n, "done": n - len(left), "seconds": round(t1 - t0, 3),
            "acked": {"%08X" % d.dev_id: d.log.acked_seq for d in devs}}


# -- the benchmark ----------------------------------------------------------------------------
def _register(db, n, first_id):
    from depot.devsim import TEST_MASTER
    from validator.sync import auth_host

    reg = getattr(db, "register_device", None)
    if reg is None:
        return False
    for i in range(n):
        dev = first_id + i
        reg(dev, auth_host.derive_device_key(TEST_MASTER, dev), "L%d" % (i % 12),
            "V%04d" % i, "north", 0x000100)
    return True


def _station(db_path, fallback, **kw):
    from depot.serve import JsonLog, Station

    log = JsonLog(os.path.join(os.path.dirname(db_path), "station.log"))
    return Station(db_path, listen="127.0.0.1:0", http="127.0.0.1:0", log=log,
                   fallback_keys=fallback, **kw).start()


def _fleet_metrics(ctx, tmp):
    from depot.client import Keyring
    from depot.devsim import TEST_MASTER, make_record
    from depot.serve import open_db

    n = 20 if ctx.quick else FLEET
    db_path = os.path.join(tmp, "fleet.sqlite")
    db = open_db(db_path)
    fallback = None if _register(db, n, BASE_ID) else Keyring(master=TEST_MASTER)
    db.close()
    st = _station(db_path, fallback, max_sessions=256)
    try:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            os.path.join(ctx.root, p) for p in ("firmware", "host_tools", "host_tools/shims"))
        p = subprocess.run(
            [sys.executable, "-m", "bench.bench_depot_fleet", "--fleet", str(n), "--records",
             str(DAY), "--connect", "%s:%d" % st.address],
            env=env, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("fleet process failed:\n" + p.stderr[-3000:])
        res = json.loads(p.stdout.strip().splitlines()[-1])
        # let the station finish its last commits/notes
        end = time.monotonic() + 10
        while st.stats["active"] and time.monotonic() < end:
            time.sleep(0.05)
        stats = dict(st.stats)
    finally:
        st.stop()
    db = open_db(db_path)
    lost = dup = 0
    ok = 0
    want = {s: bytes(make_record(s)) for s in range(1, DAY + 1)}
    for i in range(n):
        dev = BASE_ID + i
        rows = list(db.records(dev))
        seqs = [r[1] for r in rows]
        got = {r[1]: bytes(r[2]) for r in rows}
        lost += sum(1 for s in want if got.get(s) != want[s])
        dup += len(seqs) - len(set(seqs))
        if not any(got.get(s) != want[s] for s in want) and res["acked"]["%08X" % dev] == DAY:
            ok += 1
    db.close()
    dup += stats["records_dup"]
    return {
        "depot_concurrent_validators": ok if (lost == 0 and dup == 0) else 0,
        "depot_fleet_validators_started": n,
        "depot_fleet_records_lost": lost,
        "depot_fleet_records_duplicated": dup,
        "depot_fleet_sync_s": res["seconds"],
        "depot_fleet_sessions_failed": stats["sessions_failed"],
    }


def _populate(db, n):
    """1 M records: depot.fixtures.populate when it exists, else a direct bulk insert of
    devsim records for 200 devices x 5000 (the current raw-bytes schema)."""
    try:
        from depot import fixtures
    except ImportError:
        fixtures = None
    if fixtures is not None and hasattr(fixtures, "populate"):
        fixtures.populate(db, n)
        return "depot.fixtures.populate"
    from depot.devsim import make_record

    per = 5000
    devs = max(1, n // per)
    for d in range(devs):
        dev = BASE_ID + d
        blob = b"".join(bytes(make_record(s)) for s in range(1, per + 1))
        db.ingest(dev, 1, 128, blob)
        db.note_device({"device_id": dev, "rec_size": 128, "firmware": 0x100,
                        "acked_seq": per, "next_seq": per + 1, "blacklist_version": 1,
                        "fares_version": 1, "whitelist_version": 0, "config_version": 1})
    return "bench bulk insert"


def _dashboard_metrics(ctx, tmp):
    import urllib.request

    from depot.serve import open_db

    n = 50000 if ctx.quick else BIG
    db_path = os.path.join(tmp, "big.sqlite")
    db = open_db(db_path)
    how = _populate(db, n)
    db.close()
    st = _station(db_path, None)
    try:
        def get(path):
            t = time.perf_counter()
            with urllib.request.urlopen(st.url().rstrip("/") + path, timeout=600) as r:
                body = r.read()
            return (time.perf_counter() - t) * 1000, body

        get("/api/overview")
        api = sorted(get("/api/overview")[0] for _ in range(3))[1]
        page = sorted(get("/")[0] for _ in range(3))[1]
    finally:
        st.stop()
    return {"depot_dashboard_ms": round(api, 1), "depot_dashboard_page_ms": round(page, 1),
            "depot_dashboard_records": n, "depot_dashboard_populated_by": how}


def run(ctx):
    with tempfile.TemporaryDirectory(prefix="bench_fleet") as tmp:
        out = _fleet_metrics(ctx, tmp)
        out.update(_dashboard_metrics(ctx, tmp))
    return out


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(prog="bench_depot_fleet")
    ap.add_argument("--fleet", type=int, default=FLEET)
    ap.add_argument("--records", type=int, default=DAY)
    ap.add_argument("--connect", required=True)
    ap.add_argument("--first-id", type=lambda s: int(s, 16), default=BASE_ID)
    a = ap.parse_args(argv)
    host, port = a.connect.rsplit(":", 1)
    print(json.dumps(run_fleet(host, int(port), a.fleet, a.records, a.first_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
