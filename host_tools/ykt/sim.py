"""The virtual bus day: validators on the MicroPython unix port, emulated cards and PSAMs,
a depot at the end of the day. Library behind `ykt sim` (CPython only).

Scenario files follow firmware/validator/rules/README.md "Scenario file" (cards, taps with
line/stop/direction/door/terminal, foreign rides). `make sim` runs the default fare day
(host_tools/emu/fares/day.json) followed by host_tools/emu/sim/acceptance.json. Extra keys
understood here:
  card: "app" ("tunion"|"local": the city's own card, served by the PSAM in slot 1;
        "m1": the city's legacy MIFARE Classic purse card, emu.mifare.sim_card),
        "alg" ("3des"|"sm4"), "start"/"expiry" (YYYYMMDD), "blacklisted" (bool: on the
        depot's blacklist), "blocked" (bool), "phone" (bool), "kind" ("A"|"B"),
        "capp" (bool: the card has the compound application), "clone_of" (name: this card
        is a copy of that one's data when the day starts -- same serial, keys, balance
        and ATC, its own chip from then on; the depot's clearing sees the repeated ATC)
  tap:  "tear": "before_commit"|"after_commit" -- the card leaves during DEBIT
One validator process runs per PSAM terminal number found in the taps.

With via_station=True (`ykt sim`, `make sim`) the depot is `ykt depot serve`
(depot.serve.Station) running in a thread of the sim: odd validators dial in over TCP
(sync cfg "connect", redialling every second), even ones sit on a serial line the station
polls. The station turns every validator away before AUTH unless the sim asked for its
sync (the morning sync when it boots, the evening sync after the day), so each gets
exactly those two sessions; the dashboard is served meanwhile. Without it (library use by
tests that drive syncs themselves) odd validators listen on TCP, even ones are on a serial
line, and Sim.sync() runs depot.station.sync_once against each directly.
"""

import csv
import hashlib
import json
import os
import socket
import struct
import threading
import time

from depot import station
from depot.client import Keyring
from depot.devsim import TEST_CONTENT_KEY, TEST_CONTENT_PUB, TEST_MASTER
from depot.linesim import LineEmulator
from emu import crypto, farec, gate, issuer, mifare, t0
from emu.nor import NorFlash
from emu.psam import Psam
from emu.world import World
from validator import errors as E
from validator.app import content
from validator.storage import PLAN_SIM, blacklist_host
from validator.storage import blacklist as bl
from validator.storage.params import ParamStore
from validator.sync import auth_host, wire_host

HERE = os.path.dirname(os.path.abspath(__file__))
EMU = os.path.join(os.path.dirname(HERE), "emu")
DEFAULT_SCENARIO = os.path.join(EMU, "fares", "day.json")
ACCEPTANCE = os.path.join(EMU, "sim", "acceptance.json")
DOORS = {"any": 0, "entry": 1, "exit": 2}
TAP_COLUMNS = ("seq", "at", "card", "line", "stop", "direction", "door", "reason", "kind",
               "fare", "penalty", "amount", "balance", "terminal", "card_balance")


def load_scenario(path, extras=()):
    with open(path) as f:
        scn = json.load(f)
    base = os.path.dirname(os.path.abspath(path))
    scn["table_path"] = os.path.join(base, scn.get("table", "default.json"))
    scn["n_fare_taps"] = len(scn["taps"])
    for e in extras:
        with open(e) as f:
            x = json.load(f)
        scn["cards"].update(x.get("cards", {}))
        scn["taps"].extend(x.get("taps", []))
    return scn


def dev_seconds(at, day):
    from emu import farec

    if isinstance(at, int):
        return at
    return farec.parse_time(at if "T" in at else day + "T" + at)


def _serial(name):
    """A stable 19-digit application serial per card name (printed number style)."""
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return "0" + str(3100000000000000000 + h % 10 ** 17)


def make_card(keys, name, spec):
    if spec.get("app") == "m1":
        return mifare.sim_card(keys, name, spec)
    iss = spec.get("issuer", "02002900FFFFFFFF")
    return issuer.issue_card(
        keys, alg=spec.get("alg", "3des"), city=iss[4:8], issuer_code=iss[0:4],
        serial=_serial(name), card_type=spec.get("type", "normal"),
        balance=spec.get("balance", 5000), start=spec.get("start", "20240101"),
        expiry=spec.get("expiry", "20341231"), interconnect=spec.get("interconnect", True),
        blocked=spec.get("blocked", False), capp=spec.get("capp", True),
        kind=spec.get("kind", "A"), phone=spec.get("phone", False),
        app=spec.get("app", "tunion"),
        seed=int.from_bytes(hashlib.sha256(name.encode()).digest()[:2], "big") or 1,
    )


class Sim:
    def __init__(self, out_dir, keys=None, heap=None, spi_terminals=(), log=None,
                 http="127.0.0.1:0", via_station=False):
        self.out = out_dir
        os.makedirs(out_dir, exist_ok=True)
        self.keys = keys or issuer.load_master_keys()
        from emu.world import HEAP

        self.heap = heap or HEAP
        self.spi = set(spi_terminals)
        self.log = log or (lambda s: None)
        self.fleet = {}
        self.cards = {}
        self.card_specs = {}
        self.gate = gate.Gate(self.keys)
        self.rows = []
        self.started = time.time()
        self.lines = []
        self.syncs = []
        self.db_path = os.path.join(out_dir, "depot.sqlite")
        if os.path.exists(self.db_path):
            os.remove(self.db_path)
        from depot.serve import open_db

        self.db = open_db(self.db_path)
        self.keyring = Keyring(master=TEST_MASTER)
        self.station = None
        self.via_station = via_station
        self.http = http
        self.want = {}  # device id -> threading.Event: the sim asked for this sync
        self.got = {}  # device id -> the station's session summary
        self.clock_secs = 0  # what the station sets validator clocks to
        self.last_tap = 0
        self.content = {}  # name -> (version, blob): the back office's signed content
        self.blacklist_serials = set()
        self.day_start = 0
        self.city = "2900"
        self.fares_blob = None
        self.device_config = None  # JSON value flashed as the configuration (None: default)

    # -- validators ----------------------------------------------------------------------
    def validator(self, terminal):
        """The validator whose PSAM has this terminal number: flashed, provisioned, booted
        and given the morning sync (fare table, blacklist, clock) on first use."""
        w = self.fleet.get(terminal)
        if w is None:
            n = len(self.fleet)
            term = bytes.fromhex(terminal)
            psam = t0.T0Card(Psam(self.keys, terminal_no=term, serial=bytes(4) + term))
            # slot 1: the local issuer's PSAM (the city's own cards), its own terminal number
            lterm = b"\x99" + term[1:]
            local = t0.T0Card(Psam(issuer.local_master_keys(self.keys), terminal_no=lterm,
                                   serial=bytes(4) + lterm, app="local"))
            sync_cfg, port = self._sync_link(n)
            w = World(os.path.join(self.out, "dev-" + terminal[-8:]), device_id=terminal[-8:],
                      psams=[psam, local], spi=terminal in self.spi, heap=self.heap,
                      extra_cfg={"sync": sync_cfg}, time_secs=self.day_start)
            w.sync_port = port
            w.terminal = terminal
            if os.path.exists(w.flash_path):
                os.remove(w.flash_path)
            self.provision(w, terminal)
            self.fleet[terminal] = w
            w.start()
            if self.via_station and w.sync_port.startswith("/dev/"):
                self.station.add_serial(w.sync_port)
            self.sync(w, morning=True)
        return w

    def _sync_link(self, n):
        """Even validators sync over a serial line (pty pair through a line emulator) --
        the station polls it; odd ones over TCP on loopback: they dial the station (a depot
        Wi-Fi session), redialling every second while it turns them away -- or, without
        the station, they listen for sync_once."""
        if self.via_station:
            self.start_station()
        if n % 2 == 0:
            le = LineEmulator(baud=None)
            self.lines.append(le)
            return {"tty": le.device_path}, le.host_path
        if not self.via_station:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            return ({"listen": port, "listen_host": "127.0.0.1"},
                    "socket://127.0.0.1:%d" % port)
        return ({"connect": "127.0.0.1:%d" % self.station.address[1], "retry_s": 1},
                "tcp://127.0.0.1:%d" % self.station.address[1])

    # -- the depot station ------------------------------------------------------------------
    def start_station(self):
        """`ykt depot serve` in a thread: TCP on a free loopback port, the dashboard on
        self.http, the log in OUT/station.log."""
        if self.station is not None:
            return self.station
        from depot.serve import JsonLog, Station

        self.station = Station(
            self.db_path, listen="127.0.0.1:0", http=self.http,
            json_status=os.path.join(self.out, "station.json"),
            log=JsonLog(os.path.join(self.out, "station.log")),
            admit=self._admit, clock=lambda: self.clock_secs, on_session=self._on_session,
            serial_poll_s=0.3, timeout=3.0, stale_hours=24 * 365).start()
        return self.station

    def _admit(self, dev):
        return dev in self.want

    def _on_session(self, outcome):
        dev = outcome.get("device_id")
        if not outcome.get("ok") or dev is None:
            if outcome.get("ok") is False and dev is not None:
                self.log("station: session of %s failed at %s: %s (it will be retried)"
                         % (dev, outcome.get("stage"), outcome.get("error")))
            return
        ev = self.want.pop(int(dev, 16), None)
        if ev is not None:
            self.got[int(dev, 16)] = outcome["summary"]
            ev.set()

    def publish(self, name, blob):
        """The back office publishes a signed container; the station pushes it to every
        validator that holds an older version."""
        version = struct.unpack_from(">I", blob, 6)[0]  # PROTOCOL.md §5 VERSION
        self.content[name] = (version, blob)
        if self.via_station:
            self.db.publish(name, version, blob)

    def provision(self, w, terminal):
        """What a field engineer's `ykt flash` does: device keys and the signed device
        configuration into the parameter store of a blank flash image."""
        dev_id = int(terminal[-8:], 16)
        kd = auth_host.derive_device_key(TEST_MASTER, dev_id)
        f = NorFlash(64 << 20, path=w.flash_path, invert=True)
        ps = ParamStore(f, PLAN_SIM["params"]).mount()
        ps.put(content.P_KEYS, auth_host.make_keys(dev_id, kd, TEST_CONTENT_PUB))
        # "m1": the sim's city has M1 purse cards (card spec "app": "m1"), so its validators
        # build the M1 engine (app/CONFIG.md)
        cfg = {"city": self.city, "line": 0, "repeat_window_s": 60, "tear_keep_s": 600, "m1": 1}
        if self.device_config is not None:
            cfg = self.device_config
        ps.put(content.P_CONFIG, auth_host.make_content(TEST_CONTENT_KEY, wire_host.K_CONFIG, 1,
                                                   json.dumps(cfg).encode()))
        f.close()
        if self.via_station:  # the registry learns it at provisioning
            self.db.register_device(dev_id, kd, "sim", terminal[-6:], "sim-depot", None)

    def publish_morning(self):
        """The back office's signed content for the day: the fare table and, when cards
        are on it, the blacklist."""
        self.publish("fares", self.fares_blob)
        if self.blacklist_serials:
            keys = []
            for ser in sorted(self.blacklist_serials):
                k = bytearray(8)
                bl.key_of(bytes.fromhex(ser), k)
                keys.append(bytes(k))
            keys.sort()
            body = blacklist_host.make_body(blacklist_host.KIND_FULL, keys)
            self.publish("blacklist", auth_host.make_content(
                TEST_CONTENT_KEY, wire_host.K_BLACKLIST_FULL, 1, body))

    def pushes(self):
        """The back office's signed content for the morning sync: [(kind, name, blob)]."""
        kinds = {"fares": wire_host.K_FARES, "blacklist": wire_host.K_BLACKLIST_FULL}
        return [(kinds[k], k, self.content[k][1]) for k in ("fares", "blacklist")
                if k in self.content]

    def sync(self, w, morning=False, timeout=90):
        """Sync this validator: through the station (it dials in, or the station polls its
        serial line; wait for the session: pull, push what it lacks, clock, faults), or
        without one by sync_once (morning: push and clock; evening: pull and faults)."""
        if not self.via_station:
            return self._sync_direct(w, morning)
        dev = int(w.terminal[-8:], 16)
        ev = threading.Event()
        self.want[dev] = ev
        if not ev.wait(timeout):
            self.want.pop(dev, None)
            raise RuntimeError("validator %s did not sync with the station within %d s (see "
                               "%s)" % (w.terminal, timeout, os.path.join(self.out,
                                                                         "station.log")))
        return self._noted(w, dict(self.got.pop(dev)), morning)

    def _sync_direct(self, w, morning):
        from ykt.cmd_sync import open_port

        t0_ = time.time()
        port = open_port(w.sync_port, 115200, timeout=0.2)
        try:
            summary = station.sync_once(
                port, self.keyring, self.db, pushes=self.pushes() if morning else (),
                clock_secs=self.day_start if morning else None, pull=not morning,
                faults=not morning)
        finally:
            port.close()
        summary["seconds"] = round(time.time() - t0_, 3)
        return self._noted(w, summary, morning)

    def _noted(self, w, summary, morning):
        summary["link"] = "serial" if w.sync_port.startswith("/dev/") else "tcp"
        summary["when"] = "morning" if morning else "evening"
        self.syncs.append(summary)
        self.log("sync %s %s over %s: new %s dup %s pushed %s" % (
            summary["when"], w.terminal[-8:], summary["link"], summary.get("records_new", "-"),
            summary.get("records_dup", "-"),
            ", ".join(p["kind"] for p in summary.get("pushed", [])) or "-"))
        return summary

    # -- the day -----------------------------------------------------------------------------
    def card(self, name, spec):
        c = self.cards.get(name)
        if c is None:
            orig = spec.get("clone_of")
            if orig is not None:  # the original's data, issued the same way
                name_, spec_ = orig, self.card_specs[orig]
            else:
                name_, spec_ = name, spec
            c = self.cards[name] = make_card(self.keys, name_, spec_)
        return c

    def prepare(self, scn):
        self.card_specs = scn["cards"]
        with open(scn["table_path"]) as f:
            tdesc = json.load(f)
        self.city = tdesc.get("city", "2900")
        sign = auth_host.content_signer(TEST_CONTENT_KEY)
        self.fares_blob = farec.container(farec.compile_table(tdesc), sign=sign)
        day = scn.get("day")
        first = min(dev_seconds(t["at"], day) for t in scn["taps"])
        self.day_start = first - first % 86400 + 5 * 3600  # 05:00, depot sync before service
        self.clock_secs = self.day_start
        for name, spec in scn["cards"].items():
            if spec.get("blacklisted"):
                c = self.card(name, spec)
                ser = c.serial if getattr(c, "mifare", False) else c.ef15[10:20]  # M1: UID
                self.blacklist_serials.add(bytes(ser).hex())
        self.publish_morning()

    def run(self, scn):
        self.prepare(scn)
        day = scn.get("day")
        for i, tp in enumerate(scn["taps"]):
            now = dev_seconds(tp["at"], day)
            card = self.card(tp["card"], scn["cards"][tp["card"]])
            if "foreign" in tp:
                f = tp["foreign"]
                mode = f.get("mode", "rail")
                self.gate.ride(card, now, 1 if mode in ("rail", 1) else 2, f.get("type", 4),
                               f.get("line", 0), f.get("station", 0), f.get("amount", 0),
                               int(f.get("city", "2900"), 16), f.get("flags", 0))
                continue
            self.rows.append(self.tap(i, tp, card, now))
        return self.rows

    def tap(self, i, tp, card, now):
        terminal = tp.get("terminal", "000000000001")
        w = self.validator(terminal)
        door = tp.get("door", "any")
        w.send("P %d %d %d %d" % (tp["line"], tp.get("stop", 0), tp.get("direction", 0),
                                  DOORS[door]))
        w.wait("POS")
        w.set_time(now)
        self.last_tap = max(self.last_tap, now)
        if tp.get("tear"):
            card.arm_tear(tp["tear"])
        if hasattr(card, "reroll_uid"):
            card.reroll_uid()
        reason, amount, balance, seq = w.tap(card)
        ev = w.detail
        row = {
            "seq": i, "at": tp["at"], "card": tp["card"], "line": tp["line"],
            "stop": tp.get("stop", 0), "direction": tp.get("direction", 0), "door": door,
            "reason": E.reason_name(reason), "kind": ev.get("kind", "none"),
            "fare": ev.get("fare", 0), "penalty": ev.get("penalty", 0), "amount": amount,
            "balance": balance, "terminal": terminal, "card_balance": card.balance,
        }
        self.log("%s %-9s %-9s line %-4s stop %-2s %-20s amount %5d balance %6d" % (
            tp["at"], tp["card"], terminal[-6:], tp["line"], tp.get("stop", 0),
            row["reason"], amount, card.balance))
        return row

    def write_taps(self, path=None):
        path = path or os.path.join(self.out, "taps.csv")
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, TAP_COLUMNS)
            w.writeheader()
            for r in self.rows:
                w.writerow(r)
        return path

    def evening(self):
        """End of the day: every validator syncs its records into the depot database."""
        self.clock_secs = max(self.day_start, self.last_tap)  # the bus is back at the depot
        for w in self.fleet.values():
            self.sync(w)

    def export(self):
        """records.csv (the clearing export) and the issuer-side TAC check of every
        normal/recovered record. A column charged_fen (after status) is what a finance
        person sums: the amount of normal and recovered records, 0 on a gray record (the
        provisional copy written before the debit; its final record carries the charge) and
        on refused/blocked ones, so the gray and final rows of one tap are not counted twice."""
        path = os.path.join(self.out, "records.csv")
        self.db.export_csv(path)
        ok = bad = 0
        rows = []
        with open(path, newline="") as f:
            rd = csv.DictReader(f)
            cols = list(rd.fieldnames or ())
            for r in rd:
                r["charged_fen"] = r["amount"] if r.get("status") in ("normal",
                                                                      "recovered") else "0"
                rows.append(r)
                if r.get("status") in ("normal", "recovered"):
                    if verify_tac(self.keys, r):
                        ok += 1
                    else:
                        bad += 1
        if "charged_fen" not in cols:
            cols.insert(cols.index("status") + 1 if "status" in cols else len(cols),
                        "charged_fen")
        with open(path, "w", newline="") as f:
            wr = csv.DictWriter(f, cols)
            wr.writeheader()
            wr.writerows(rows)
        return path, rows, ok, bad

    def stop(self, keep_station=False):
        for w in self.fleet.values():
            w.stop()
        if self.station is not None and not keep_station:
            self.station.stop()
        for le in self.lines:
            le.close()


def verify_tac(keys, r):
    """The clearing centre's check of one records.csv row (emu.crypto): T-Union records
    (PSAM slot 0) against the MOT keys and the issuer ID, local-issuer records (slot 1)
    against the local keys and the local factor 2; M1 purse records (card_kind 1) by their
    PSAM MAC (m1/FORMAT.md §5)."""
    if r.get("card_kind") == "1":
        return mifare.verify_record(keys, bytes.fromhex(r["record"]))
    factor2 = bytes.fromhex(r["issuer_id"])
    if r.get("psam_slot") == "1":
        keys = issuer.local_master_keys(keys)
        factor2 = issuer.local_factor2(factor2)
    return crypto.verify_purchase_tac(
        keys, int(r["alg_id"], 16), factor2,
        bytes.fromhex(r["card_serial"])[2:10], int(r["amount"]), int(r["txn_type"], 16),
        bytes.fromhex(r["terminal_no"]), bytes.fromhex(r["ttsn"]),
        bytes.fromhex(r["datetime"]), bytes.fromhex(r["tac"]))
