# depot.serve: the unattended depot station behind `ykt depot serve` (README "The station").
# SPDX-License-Identifier: MIT
#
#   st = Station(db="build/depot/depot.sqlite", listen="0.0.0.0:7700", http="127.0.0.1:8080")
#   st.run()                      # blocks; SIGTERM/SIGINT: drain and return 0
#   st.start(); ...; st.stop()    # the same in a background thread (tests, ykt sim)
#
# Threading model: one asyncio loop accepts TCP connections (validators connect out; the
# validator is the protocol responder, so the station drives each session with the
# synchronous SyncClient), serves the dashboard (aiohttp) and writes the status file. Each
# session runs in a worker thread of a bounded pool with its own database connection
# (one DepotDB per thread); --max-sessions bounds the pool, --max-queue the connections
# waiting for a worker (beyond it a connection is closed at once and counted as refused).
# Each --serial port has its own thread that polls it forever (HELLO every --serial-poll-s
# until a validator answers). Nothing here imports asyncio into the session code.
import json
import os
import socket
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from depot import station as stn

DEFAULT_LISTEN = "0.0.0.0:7700"


# -- logs ---------------------------------------------------------------------------------
class JsonLog:
    """One JSON object per line: {"ts", "level", "event", ...fields}."""

    def __init__(self, path=None, stream=None, quiet_events=()):
        self.lock = threading.Lock()
        self.f = open(path, "a", buffering=1) if path else (stream or sys.stderr)
        self.own = bool(path)
        self.quiet = set(quiet_events)

    def __call__(self, event, level="info", **fields):
        if event in self.quiet:
            return
        rec = {"ts": round(time.time(), 3), "level": level, "event": event}
        rec.update(fields)
        line = json.dumps(rec, sort_keys=False, default=str)
        with self.lock:
            try:
                self.f.write(line + "\n")
                self.f.flush()
            except (OSError, ValueError):
                pass  # a full disk must not stop the station (the DB reports its own)

    def close(self):
        if self.own:
            self.f.close()


def open_db(url):
    """The depot database by path or postgresql:// URL (depot.db.open_db)."""
    from depot import db as dbmod

    return dbmod.open_db(url)


def registry_keyring(db, fallback=None):
    """The device registry's keyring (an unknown device gets no key), or fallback."""
    f = getattr(db, "keyring", None)
    if f is not None:
        ring = f()
        if fallback is None:
            return ring
        return _Either(ring, fallback)
    if fallback is None:
        raise ValueError("the database has no device registry: give --keys or --test-keys")
    return fallback


class _Either:
    def __init__(self, a, b):
        self.a, self.b = a, b

    def key_for(self, dev):
        k = self.a.key_for(dev)
        return k if k is not None else self.b.key_for(dev)


def hostport(s, default_host="127.0.0.1"):
    host, _, port = s.rpartition(":")
    return host or default_host, int(port)


class MinInterval:
    """Default admission: a device that synced successfully less than `seconds` ago is
    turned away before AUTH (a validator on a cable, or one redialling in a loop)."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.last_ok = {}

    def __call__(self, dev):
        t = self.last_ok.get(dev)
        return t is None or time.time() - t >= self.seconds

    def done(self, dev):
        self.last_ok[dev] = time.time()


# -- the station ------------------------------------------------------------------------
class Station:
    def __init__(self, db, listen=DEFAULT_LISTEN, tls=None, serial=(), http=None,
                 json_status=None, stale_hours=24.0, log=None, max_sessions=256,
                 max_queue=1024, timeout=3.0, stages=None, fallback_keys=None,
                 clock=None, admit=None, resync_s=300.0, serial_poll_s=2.0, drain_s=10.0,
                 on_session=None, window=4, content=None):
        self.db_url = db
        self.listen = listen
        self.tls = tls  # (certfile, keyfile) or None
        self.serial = list(serial)
        self.http = http
        self.json_status = json_status
        self.stale_hours = stale_hours
        self.log = log or JsonLog()
        self.max_sessions = max_sessions
        self.max_queue = max_queue
        self.timeout = timeout
        self.stages = stages
        self.fallback_keys = fallback_keys
        self.clock = clock or stn.local_secs_since_2000  # callable -> device seconds
        self.min_interval = MinInterval(resync_s)
        self.admit = admit or self.min_interval
        self.serial_poll_s = serial_poll_s
        self.drain_s = drain_s
        self.on_session = on_session
        self.window = window
        self.content = content  # name -> (version, blob) or None; default: db.latest
        self.stopping = threading.Event()  # no new sessions
        self.cut = threading.Event()  # running sessions stop at their next read
        self._local = threading.local()
        self._dbs = []
        self._dbs_lock = threading.Lock()
        self._lock = threading.Lock()
        self.stats = {"accepted": 0, "refused_busy": 0, "sessions_ok": 0, "sessions_failed": 0,
                      "not_due": 0, "records_new": 0, "records_dup": 0, "active": 0,
                      "queued": 0, "db_errors": 0}
        self.devices = {}  # device id hex -> last session outcome
        self.serial_state = {}
        self.started = time.time()
        self.address = None  # (host, port) actually bound
        self.http_address = None
        self._thread = None
        self._ready = threading.Event()
        self._serial_threads = []
        self._preauth = {}  # peer host -> [count, first ts]: pre-auth failures, summarised
        self.loop = None
        self.exit_code = 0

    # -- per-thread database ------------------------------------------------------------
    def db(self):
        d = getattr(self._local, "db", None)
        if d is None:
            d = self._local.db = open_db(self.db_url)
            with self._dbs_lock:
                self._dbs.append(d)
        return d

    def drop_db(self):
        """After a database failure: reconnect on the next session of this thread."""
        d = getattr(self._local, "db", None)
        self._local.db = None
        if d is not None:
            with self._dbs_lock:
                if d in self._dbs:
                    self._dbs.remove(d)
            try:
                d.close()
            except Exception:
                pass

    def keyring(self):
        return registry_keyring(self.db(), self.fallback_keys)

    # -- one session (worker thread) ------------------------------------------------------
    def session(self, port, link, peer):
        """Run one station session on a StagedPort; never raises."""
        t0 = time.time()
        with self._lock:
            self.stats["active"] += 1
        outcome = {"link": link, "peer": peer}
        try:
            try:
                db = self.db()
                ring = self.keyring()
            except Exception as e:
                with self._lock:
                    self.stats["db_errors"] += 1
                self.drop_db()
                self.log("db_unavailable", "error", peer=peer, link=link,
                         error="%s: %s" % (type(e).__name__, e))
                outcome.update(ok=False, stage="db", error=str(e))
                return outcome
            try:
                s = stn.station_session(port, ring, db, content=self.content,
                                        clock_secs=self.clock,
                                        admit=self.admit, window=self.window,
                                        timeout=self.timeout, stages=self.stages)
            except stn.NotDue as e:
                with self._lock:
                    self.stats["not_due"] += 1
                outcome.update(ok=None, device_id="%08X" % e.device_id)
                return outcome
            except stn.StationError as e:
                return self._failed(e, outcome, peer, link, t0)
            except Exception as e:  # a bug met by one session: log it, keep the station up
                import traceback

                with self._lock:
                    self.stats["sessions_failed"] += 1
                    self.stats["internal_errors"] = self.stats.get("internal_errors", 0) + 1
                self.log("session_internal_error", "error", peer=peer, link=link,
                         error="%s: %s" % (type(e).__name__, e),
                         where=traceback.format_exc(limit=-3).strip().splitlines()[-3:])
                outcome.update(ok=False, stage="internal", kind="internal",
                               error="%s: %s" % (type(e).__name__, e))
                return outcome
            dev = int(s["device_id"], 16)
            self.min_interval.done(dev)
            with self._lock:
                self.stats["sessions_ok"] += 1
                self.stats["records_new"] += s["records_new"]
                self.stats["records_dup"] += s["records_dup"]
            s["link"] = link
            outcome.update(ok=True, device_id=s["device_id"], summary=s)
            self.devices[s["device_id"]] = {
                "at": time.time(), "ok": True, "link": link, "records_new": s["records_new"],
                "records_dup": s["records_dup"], "pushed": s["pushed"],
                "faults": len(s.get("faults", [])), "seconds": s["seconds"]}
            self.log("session_ok", device=s["device_id"], link=link, peer=peer,
                     records_new=s["records_new"], records_dup=s["records_dup"],
                     pushed=["%s v%d" % (p["kind"], p["version"]) for p in s["pushed"]],
                     faults=len(s.get("faults", [])), seconds=s["seconds"])
            return outcome
        finally:
            port.close()
            with self._lock:
                self.stats["active"] -= 1
            if self.on_session is not None:
                try:
                    self.on_session(outcome)
                except Exception as e:
                    self.log("on_session_failed", "error", error=repr(e))

    def _failed(self, e, outcome, peer, link, t0):
        f = e.failure
        dev = getattr(e, "device_id", None)
        is_db = isinstance(f, stn.DatabaseFailure)
        if dev is None and link == "serial" and not is_db:
            outcome.update(ok=False, stage=e.stage, error=str(f),
                           kind="disconnected" if isinstance(f, stn.Disconnected) else "idle")
            return outcome  # nobody answering on the cable: the poller just tries again
        with self._lock:
            self.stats["sessions_failed"] += 1
            if is_db:
                self.stats["db_errors"] += 1
        if is_db:
            self.drop_db()
        kind = ("database" if is_db else "disconnected" if isinstance(f, stn.Disconnected)
                else "shutdown" if isinstance(f, stn.Stopping)
                else "timeout" if f.code is None else "refused")
        outcome.update(ok=False, stage=e.stage, error=str(f), kind=kind,
                       device_id="%08X" % dev if dev is not None else None,
                       summary=getattr(e, "summary", None))
        if dev is None and link == "tcp" and kind in ("disconnected", "timeout", "refused"):
            # garbage, port scanners, a flood: one summary line per peer per second
            self._preauth_failed(peer, kind, str(f))
            return outcome
        if dev is not None:
            self.devices["%08X" % dev] = {"at": time.time(), "ok": False, "link": link,
                                          "stage": e.stage, "error": str(f)}
        self.log("session_failed", "error" if is_db else "warning",
                 device="%08X" % dev if dev is not None else None, link=link, peer=peer,
                 stage=e.stage, kind=kind, error=str(f),
                 seconds=round(time.time() - t0, 3))
        return outcome

    def _preauth_failed(self, peer, kind, err):
        host = peer.rsplit(":", 1)[0] if peer else "?"
        now = time.time()
        with self._lock:
            c = self._preauth.get(host)
            if c is None or now - c[1] >= 1.0:
                n = c[0] if c else 0
                self._preauth[host] = [0, now]
                first = True
            else:
                c[0] += 1
                first = False
        if first:
            self.log("connection_failed", "warning", peer=peer, kind=kind, error=err,
                     suppressed_since_last=n)

    # -- TCP -------------------------------------------------------------------------------
    def _tls_context(self):
        if not self.tls:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.tls[0], self.tls[1] or self.tls[0])
        return ctx

    def _tcp_session(self, sock, peer, ctx):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(True)
            sock.settimeout(min(self.timeout, 0.2))
            if ctx is not None:
                sock.settimeout(self.stages_get("auth"))
                sock = ctx.wrap_socket(sock, server_side=True)
                sock.settimeout(min(self.timeout, 0.2))
        except (OSError, ValueError) as e:
            with self._lock:
                self.stats["sessions_failed"] += 1
            self._preauth_failed(peer, "tls", "TLS handshake failed: %s" % e)
            try:
                sock.close()
            except OSError:
                pass
            with self._lock:
                self.stats["queued"] -= 1
            return None
        with self._lock:
            self.stats["queued"] -= 1
        return self.session(stn.StagedPort(sock, sock=True, stop=self.cut), "tcp", peer)

    def stages_get(self, name):
        return (self.stages or {}).get(name, stn.STAGE_TIMEOUTS[name])

    async def _accept_loop(self, lsock, pool, ctx):
        import asyncio

        loop = asyncio.get_running_loop()
        futs = set()
        while not self.stopping.is_set():
            try:
                c, addr = await loop.sock_accept(lsock)
            except (OSError, asyncio.CancelledError):
                break
            peer = "%s:%d" % addr[:2]
            with self._lock:
                self.stats["accepted"] += 1
                busy = self.stats["queued"] >= self.max_queue
                if not busy:
                    self.stats["queued"] += 1
            if busy:
                with self._lock:
                    self.stats["refused_busy"] += 1
                self._preauth_failed(peer, "busy", "all %d sessions busy and %d waiting: "
                                     "connection closed" % (self.max_sessions, self.max_queue))
                c.close()
                continue
            f = loop.run_in_executor(pool, self._tcp_session, c, peer, ctx)
            futs.add(f)
            f.add_done_callback(futs.discard)
        return futs

    # -- serial ----------------------------------------------------------------------------
    def add_serial(self, path):
        t = threading.Thread(target=self._serial_loop, args=(path,), daemon=True,
                             name="serial " + path)
        self._serial_threads.append(t)
        self.serial_state[path] = {"state": "starting"}
        if self._ready.is_set() or self.loop is not None:
            t.start()
        return t

    def _serial_loop(self, path):
        import serial

        port = None
        quiet = False
        while not self.stopping.is_set():
            if port is None:
                try:
                    port = serial.serial_for_url(path, baudrate=115200, timeout=0.05)
                except (serial.SerialException, ValueError, OSError) as e:
                    if not quiet:
                        self.log("serial_unavailable", "warning", port=path, error=str(e))
                        quiet = True
                    self.serial_state[path] = {"state": "unavailable", "error": str(e)}
                    self.stopping.wait(self.serial_poll_s)
                    continue
                self.log("serial_open", port=path)
                quiet = False
            sp = stn.StagedPort(_KeepOpen(port), stop=self.cut)
            self.serial_state[path] = {"state": "polling", "at": time.time()}
            o = self.session(sp, "serial", path)
            if o.get("ok"):
                self.serial_state[path] = {"state": "synced", "device": o["device_id"],
                                           "at": time.time()}
            elif o.get("ok") is None:
                self.serial_state[path] = {"state": "idle", "device": o["device_id"],
                                           "at": time.time()}
            elif o.get("kind") == "disconnected":  # the port itself went away
                try:
                    port.close()
                except Exception:
                    pass
                port = None
            self.stopping.wait(self.serial_poll_s)
        if port is not None:
            try:
                port.close()
            except Exception:
                pass

    # -- status ------------------------------------------------------------------------------
    def status(self):
        with self._lock:
            stats = dict(self.stats)
        return {
            "started": self.started, "now": time.time(),
            "listen": "%s:%d" % self.address if self.address else None,
            "http": self.url(), "tls": bool(self.tls), "stopping": self.stopping.is_set(),
            "stats": stats, "devices": dict(self.devices), "serial": dict(self.serial_state),
            "max_sessions": self.max_sessions, "stale_hours": self.stale_hours,
        }

    def url(self):
        if not self.http_address:
            return None
        h, p = self.http_address
        return "http://%s:%d/" % ("127.0.0.1" if h in ("0.0.0.0", "") else h, p)

    def write_status(self):
        if not self.json_status:
            return
        tmp = self.json_status + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(self.status(), f, indent=1, sort_keys=True, default=str)
            os.replace(tmp, self.json_status)
        except OSError as e:
            self.log("status_write_failed", "warning", path=self.json_status, error=str(e))

    # -- main ----------------------------------------------------------------------------------
    async def main(self):
        import asyncio

        self.loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(max_workers=self.max_sessions, thread_name_prefix="session")
        self._pool = pool
        lsock = None
        tasks = []
        runner = None
        try:
            if self.listen:
                host, port = hostport(self.listen, "0.0.0.0")
                lsock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
                lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                lsock.bind((host, port))
                lsock.listen(min(4096, max(128, self.max_queue)))
                lsock.setblocking(False)
                self.address = lsock.getsockname()[:2]
                tasks.append(asyncio.ensure_future(
                    self._accept_loop(lsock, pool, self._tls_context())))
            if self.http:
                from depot.dashboard import app as dash

                runner, self.http_address = await dash.start(self, self.http)
            for p in self.serial:
                self.add_serial(p)
            for t in self._serial_threads:
                if not t.is_alive() and t.ident is None:
                    t.start()
            self.log("station_started", listen="%s:%d" % self.address if self.address else None,
                     http=self.url(), serial=self.serial, tls=bool(self.tls),
                     db=_redact(self.db_url), max_sessions=self.max_sessions)
            self._ready.set()
            while not self.stopping.is_set():
                self.write_status()
                await asyncio.sleep(0.5)
        finally:
            self._ready.set()
            self.stopping.set()
            if lsock is not None:
                lsock.close()  # stop accepting
            futs = set()
            for t in tasks:
                t.cancel()
                try:
                    r = await t
                    futs |= r or set()
                except (asyncio.CancelledError, Exception):
                    pass
            self.log("station_draining", active=self.stats["active"],
                     queued=self.stats["queued"])
            # running sessions may finish within drain_s; then each stops at its next read
            # (after its current batch is committed and ACKed); queued ones never start
            end = time.monotonic() + self.drain_s
            while self.stats["active"] > 0 and time.monotonic() < end:
                await asyncio.sleep(0.05)
            self.cut.set()
            pool.shutdown(wait=False, cancel_futures=True)
            await self.loop.run_in_executor(None, pool.shutdown, True)
            for t in self._serial_threads:
                if t.is_alive():
                    await self.loop.run_in_executor(None, t.join, 10)
            if runner is not None:
                await runner.cleanup()
            self.write_status()
            with self._dbs_lock:
                for d in self._dbs:
                    try:
                        d.close()
                    except Exception:
                        pass
                self._dbs = []
            self.log("station_stopped", **{k: self.stats[k] for k in (
                "sessions_ok", "sessions_failed", "records_new", "refused_busy")})

    def run(self, signals=True):
        """Serve until SIGTERM/SIGINT (or stop()); -> exit code 0."""
        import asyncio
        import signal

        async def wrapped():
            if signals:
                loop = asyncio.get_running_loop()
                for s in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(s, self._on_signal, s)
            await self.main()

        asyncio.run(wrapped())
        return self.exit_code

    def _on_signal(self, s):
        self.log("signal", signal=int(s))
        self.stopping.set()

    def start(self, timeout=20):
        """Run in a background thread; returns when listening."""
        self._thread = threading.Thread(target=self.run, args=(False,), daemon=True,
                                        name="station")
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("station did not start")
        return self

    def stop(self, timeout=30):
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)


class _KeepOpen:
    """A serial port shared by successive sessions: a session's close() leaves it open."""

    def __init__(self, port):
        self.port = port

    @property
    def in_waiting(self):
        return self.port.in_waiting

    def read(self, n):
        return self.port.read(n)

    def write(self, b):
        return self.port.write(b)

    def close(self):
        pass


def _redact(url):
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        return scheme + "://***@" + rest.rsplit("@", 1)[1]
    return url
