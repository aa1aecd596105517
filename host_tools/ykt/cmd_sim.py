"""ykt sim: a virtual bus day on emulated validators, synced to a local depot."""

import argparse
import collections
import json
import os
import sys
import time

from ykt import argtypes as T
from ykt.cli import EXIT_FAIL, EXIT_USAGE, CommandError, read_json


def register(sub):
    p = sub.add_parser("sim", help="run a bus day on emulated validators (make sim)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="""\
Run a bus day on emulated validators (the real firmware on the MicroPython unix port, with
emulated cards, PSAMs and PN532s), synced to a local depot station morning and evening.
Writes summary.json, taps.csv (one row per tap), records.csv (the clearing export; sum its
charged_fen column for the money) and depot.sqlite into the output folder.

examples:
  ykt sim                                    the default fare day + acceptance taps
  ykt sim --scenario my-day.json -o build/my-day
  ykt sim --keep-serving                     then open the dashboard URL it prints""")
    p.add_argument("--scenario", default=None, metavar="FILE", type=T.file_name,
                   help="scenario JSON (firmware/validator/rules/README.md \"Scenario file\", "
                   "schema host_tools/emu/scenario.py; default: the fare day + the acceptance "
                   "taps)")
    p.add_argument("--no-acceptance", action="store_true",
                   help="with the default scenario: skip the validator acceptance taps")
    p.add_argument("-o", "--output", "--out", dest="out", default="build/sim", metavar="DIR",
                   help="output folder (default %(default)s)")
    p.add_argument("--heap", default=None, type=T.heap_size,
                   help="MicroPython heap of each validator, e.g. 128k or 2m (default 128k)")
    p.add_argument("--spi", action="store_true",
                   help="wire the first validator's PN532 over SPI instead of HSU")
    p.add_argument("-v", "--verbose", action="store_true", help="print every tap")
    p.add_argument("--http", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="where the depot station serves its dashboard (default: a free "
                   "loopback port, printed)")
    p.add_argument("--keep-serving", action="store_true",
                   help="after the day, keep the depot station and its dashboard running "
                   "until Ctrl-C")
    p.set_defaults(func=do_sim)


def do_sim(args):
    from emu import romfs
    from ykt import sim

    romfs.require()  # the `sim` extra, before anything starts

    extras = []
    path = args.scenario or sim.DEFAULT_SCENARIO
    if args.scenario is None and not args.no_acceptance:
        extras.append(sim.ACCEPTANCE)
    check_scenario(path, extras)  # every fault in the files: one line, nothing run
    scn = sim.load_scenario(path, extras)
    t0 = time.time()
    first_terminal = scn["taps"][0].get("terminal", "000000000001") if scn["taps"] else ""
    s = sim.Sim(args.out, heap=args.heap, spi_terminals=[first_terminal] if args.spi else (),
                log=print if args.verbose else None, http=getattr(args, "http", "127.0.0.1:0"),
                via_station=True)
    keep = getattr(args, "keep_serving", False)
    try:
        _run_day(s, args, scn, keep, t0)
    except (RuntimeError, TimeoutError) as e:  # a validator process died or went silent
        log = os.path.join(args.out, "sim-error.log")
        with open(log, "w") as f:
            f.write(str(e) + "\n")
        raise CommandError("the bus day stopped: %s (the validator's last lines: %s)"
                           % (str(e).splitlines()[0].split("; last lines")[0], log), EXIT_FAIL)
    return 0


def _run_day(s, args, scn, keep, t0):
    try:
        st = s.start_station()
        print("depot station: validators dial 127.0.0.1:%d; dashboard %s (log %s)" % (
            st.address[1], st.url(), os.path.join(args.out, "station.log")), flush=True)
        s.run(scn)
        heap = {}
        for term, w in s.fleet.items():
            w.send("S")
            st = dict(kv.split("=") for kv in w.wait("STATE").split()[1:])
            heap[term[-8:]] = {"heap_used": int(st["heap_used"]),
                               "heap_free": int(st["heap_free"])}
        s.evening()
        records_csv, records, tac_ok, tac_bad = s.export()
    finally:
        s.stop(keep_station=keep)
    taps_csv = s.write_taps()
    summary = summarize(s, scn, records, tac_ok, tac_bad, heap, time.time() - t0)
    summary["clearing"] = clear_day_of(s.db, os.path.join(args.out, "clearing"))
    summary["files"] = {"taps": taps_csv, "records": records_csv, "depot_db": s.db_path,
                        "clearing": os.path.join(args.out, "clearing")}
    out = os.path.join(args.out, "summary.json")
    with open(out, "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    print_summary(summary)
    print("wrote %s, %s, %s, the clearing files in %s and the depot database %s" % (
        out, taps_csv, records_csv, summary["files"]["clearing"], s.db_path))
    if keep:
        _keep_serving(s)
    clr = summary["clearing"]
    if tac_bad or summary["records_lost"] or summary["crashes"] or clr["tac_failed"] \
            or clr["gray_open"] or clr["corrupt"]:
        raise CommandError("sim found problems (see %s)" % out, EXIT_FAIL)
    return 0


def clear_day_of(db, out_dir):
    """The depot's clearing of every business day in the database (depot.clearing, the TAC
    checks through the test key service -- the depot holds no issuer key), then the risk
    loop's proposals (depot.risk.propose; an operator approves them, the sim does not);
    -> the part of summary.json print_summary reports."""
    from depot import clearing, keyservice, risk

    days = clearing.clear_all(db, keyservice.TestKeyService(), out_dir)
    tot = collections.Counter()
    anomalies = collections.Counter()
    grays = collections.Counter()
    for d in days.values():
        for k in ("paid_records", "tac_verified", "tac_failed", "tac_unverified", "corrupt",
                  "cleared_fen"):
            tot[k] += d.get(k, 0)
        anomalies.update(d.get("anomalies", {}))
        grays.update(d.get("gray_states", {}))
    proposed = risk.propose(db)
    return {"days": sorted(days), "paid_records": tot["paid_records"],
            "tac_verified": tot["tac_verified"], "tac_failed": tot["tac_failed"],
            "tac_unverified": tot["tac_unverified"], "corrupt": tot["corrupt"],
            "cleared_fen": tot["cleared_fen"], "gray_states": dict(grays),
            "gray_open": grays.get("open", 0), "anomalies": dict(anomalies),
            "proposed_cards": [p["card"] for p in proposed],
            "settlement": {d: days[d].get("settlement") for d in days}}


def check_scenario(path, extras=()):
    """A scenario file, the fare table it names and the files it is extended with, checked
    against their declared schemas (emu.scenario, ykt.cmd_fares.SCHEMA) before anything
    runs: missing/unreadable -> EXIT_IO, anything malformed -> EXIT_USAGE, one line naming
    the file and the place."""
    from emu import scenario
    from ykt.cmd_fares import check_table

    doc = "(firmware/validator/rules/README.md \"Scenario file\")"
    scn = read_json(path, "a JSON scenario")
    e = scenario.check(scn)
    if not e and not any("foreign" not in t for t in scn["taps"]):
        e = "taps: the sim needs at least one validator tap (with \"line\")"
    if e:
        raise CommandError("%s: not a scenario %s: %s" % (path, doc, e), EXIT_USAGE)
    table = os.path.join(os.path.dirname(os.path.abspath(path)), scn.get("table",
                                                                        "default.json"))
    e = check_table(read_json(table, "a JSON fare table"))
    if e:
        raise CommandError("%s: not a fare table (named by %s): %s" % (table, path, e),
                           EXIT_USAGE)
    for x in extras:
        e = scenario.check(read_json(x, "a JSON scenario"), scn["cards"], scn.get("day"))
        if e:
            raise CommandError("%s: not a scenario %s: %s" % (x, doc, e), EXIT_USAGE)
    return scn


def _keep_serving(s):
    """--keep-serving: the dashboard stays up until Ctrl-C or SIGTERM."""
    import signal

    print("dashboard %s -- serving until Ctrl-C" % s.station.url(), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: s.station.stopping.set())
    try:
        while not s.station.stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    s.station.stop()


def summarize(s, scn, records, tac_ok, tac_bad, heap, seconds):
    reasons = collections.Counter(r["reason"] for r in s.rows)
    charged = sum(r["amount"] for r in s.rows if r["reason"] in ("ok", "recovered"))
    paid = sum(1 for r in s.rows if r["reason"] in ("ok", "recovered"))
    statuses = collections.Counter(r.get("status", "") for r in records)
    algs = collections.Counter(r.get("alg_id", "") for r in records
                               if r.get("status") in ("normal", "recovered"))
    cities = collections.Counter(r.get("issuer_id", "")[4:8] for r in records
                                 if r.get("status") in ("normal", "recovered"))
    taps_recorded = sum(1 for r in s.rows if r["reason"] not in ("already_paid",))
    crashes = sum(1 for w in s.fleet.values() for ln in w.lines if "Traceback" in ln)
    return {
        "validators": len(s.fleet),
        "taps": len(s.rows),
        "fare_taps": scn["n_fare_taps"],
        "reasons": dict(reasons),
        "charged_fen": charged,
        "paid_taps": paid,
        "records_charged_fen": sum(int(r.get("charged_fen") or 0) for r in records),
        "records": len(records),
        "record_status": dict(statuses),
        "records_lost": max(0, sum(1 for r in s.rows if r["reason"] == "ok") -
                            statuses.get("normal", 0) - statuses.get("recovered", 0)),
        "taps_recorded_or_refused": taps_recorded,
        "tac_verified": tac_ok,
        "tac_failed": tac_bad,
        "paid_by_alg": {("sm4" if a == "04" else "3des"): n for a, n in algs.items()},
        "paid_by_city": dict(cities),
        "syncs": [_one_device_id({k: v for k, v in x.items() if k != "info"})
                  for x in s.syncs],
        "heap": heap,
        "heap_size": s.heap,
        "crashes": crashes,
        "seconds": round(seconds, 1),
    }


def _one_device_id(x):
    """A device id is spelled one way everywhere the sim reports it: 8 hex digits, as the
    depot, its dashboard and the sync lines print it (the device's own info answers carry
    it as a number)."""
    for k in ("info_before", "info_after", "info"):
        d = x.get(k)
        if isinstance(d, dict) and isinstance(d.get("device_id"), int):
            x[k] = dict(d, device_id="%08X" % d["device_id"])
    return x


def _counts(d, order=()):
    """{"sm4": 5, "3des": 37} -> "3des 37, sm4 5" (largest first), "-" when empty."""
    keys = sorted(d, key=lambda k: (k not in order, order.index(k) if k in order else 0,
                                    -d[k], k))
    return ", ".join("%s %d" % (k, d[k]) for k in keys) or "-"


_STATUS_ORDER = ("normal", "recovered", "gray", "refused", "blocked")


def print_summary(m):
    w = sys.stdout.write
    w("\nbus day: %d validators, %d taps (%d fare-rule taps), %.1f s\n"
      % (m["validators"], m["taps"], m["fare_taps"], m["seconds"]))
    for k, v in sorted(m["reasons"].items(), key=lambda kv: -kv[1]):
        w("  %-22s %4d\n" % (k, v))
    w("charged %.2f CNY (%d fen) on %d paid taps\n"
      % (m["charged_fen"] / 100, m["charged_fen"], m.get("paid_taps", 0)))
    w("  paid by algorithm    %s\n" % _counts(m["paid_by_alg"]))
    w("  paid by issuer city  %s\n" % _counts(m["paid_by_city"]))
    w("records synced to the depot: %d (%s)\n"
      % (m["records"], _counts(m["record_status"], _STATUS_ORDER)))
    w("  records.csv: sum charged_fen = %d fen (gray rows are provisional, 0: their final "
      "record carries the charge)\n" % m.get("records_charged_fen", 0))
    w("  issuer-side TAC check: %d ok, %d failed\n" % (m["tac_verified"], m["tac_failed"]))
    c = m.get("clearing")
    if c:
        w("clearing (%s): %d paid records, %d TACs verified, %d failed, %d unverified; "
          "%d cleared, %.2f CNY\n" % (", ".join(c["days"]) or "no day", c["paid_records"],
                                     c["tac_verified"], c["tac_failed"], c["tac_unverified"],
                                     c["paid_records"] - c["tac_failed"],
                                     c["cleared_fen"] / 100))
        w("  gray records         %s\n" % _counts(c["gray_states"], ("resolved", "open")))
        w("  anomalies            %s\n" % _counts(c["anomalies"]))
        w("  proposed for the blacklist: %s\n" % (", ".join(c["proposed_cards"]) or "none"))
    if m["syncs"]:
        w("  %-7s  %-8s  %-6s  %4s  %4s  %-17s  %s\n"
          % ("sync", "device", "link", "new", "dup", "pushed", "seconds"))
    for x in m["syncs"]:
        w("  %-7s  %-8s  %-6s  %4s  %4s  %-17s  %.2f\n" % (
            x.get("when"), x.get("device_id"), x.get("link"), x.get("records_new", "-"),
            x.get("records_dup", "-"),
            ", ".join(p["kind"] for p in x.get("pushed", [])) or "-", x.get("seconds", 0)))
    hu = [h["heap_used"] for h in m["heap"].values()]
    if hu:
        w("validator heap after the day: %d..%d bytes used (-X heapsize=%s)\n"
          % (min(hu), max(hu), m["heap_size"]))
