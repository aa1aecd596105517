# depot.dashboard.data: what the fleet dashboard shows, as plain JSON-ready dicts.
# SPDX-License-Identifier: MIT
#
# Reads the station's database (depot.db: the device registry, record_totals kept by
# ingest, the clearing tables once clearing ran); nothing here scans the records.
import json
import time

SYNC_NEVER, SYNC_STALE, SYNC_OK = "never", "stale", "ok"
_DEVICE_COLUMNS = ("device_id", "line", "vehicle", "depot", "firmware", "expected_firmware",
                   "last_sync", "acked_seq", "next_seq", "blacklist_version", "fares_version",
                   "whitelist_version", "config_version")


def _rows(db, sql, args=()):
    return [tuple(r) for r in db.query(sql, args)]


def _columns(db, table):
    """The table's columns, or None when it does not exist (yet)."""
    return set(db.columns(table)) if db.has_table(table) else None


def sync_state(last_sync, stale_hours, now=None):
    if not last_sync:
        return SYNC_NEVER
    now = time.time() if now is None else now
    return SYNC_STALE if now - float(last_sync) > stale_hours * 3600 else SYNC_OK


def fleet(db, stale_hours, now=None):
    """-> list of one dict per validator (registry + last sync + versions + state)."""
    now = time.time() if now is None else now
    out = []
    for r in _rows(db, "SELECT %s FROM devices ORDER BY device_id" % ", ".join(_DEVICE_COLUMNS)):
        d = dict(zip(_DEVICE_COLUMNS, r, strict=True))
        d["device_id"] = "%08X" % d["device_id"]
        if d["last_sync"]:
            d["last_sync"] = float(d["last_sync"])
            d["age_h"] = round((time.time() - d["last_sync"]) / 3600, 2)
        else:
            d["last_sync"] = d["age_h"] = None
        d["state"] = sync_state(d["last_sync"], stale_hours, now)
        out.append(d)
    return out


def daily(db):
    """-> {"days": [{day, records, amount_fen}], "by_line": [...], "by_issuer": [...]},
    from the per-day totals ingest keeps (depot.schema record_totals): tens of rows."""
    days, lines, issuers = {}, {}, {}
    src = _rows(db, "SELECT day, line, substr(issuer_id,1,8), SUM(records), SUM(CASE "
                "WHEN status IN ('normal','recovered') THEN amount ELSE 0 END) FROM "
                "record_totals GROUP BY 1, 2, 3")
    for day, line, iss, count, paid in src:
        paid = int(paid or 0)
        for m, k in ((days, day), (lines, (day, line)), (issuers, (day, iss))):
            e = m.setdefault(k, [0, 0])
            e[0] += count
            e[1] += paid
    return {
        "days": [{"day": _day(k), "records": v[0], "amount_fen": v[1]}
                 for k, v in sorted(days.items())],
        "by_line": [{"day": _day(k[0]), "line": k[1], "records": v[0], "amount_fen": v[1]}
                    for k, v in sorted(lines.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))],
        "by_issuer": [{"day": _day(k[0]), "issuer": k[1], "records": v[0], "amount_fen": v[1]}
                      for k, v in sorted(issuers.items())],
    }


def _day(s):
    s = str(s)
    return "%s-%s-%s" % (s[:4], s[4:6], s[6:8]) if len(s) == 8 and s.isdigit() else s


def pending(db):
    """Paid records (normal, recovered) not yet cleared: -> {"records", "amount_fen",
    "cleared_records", "cleared_fen", "undecodable"}: the paid totals of record_totals minus
    what each cleared business day cleared (its clearing_days summary: verdicts.cleared,
    cleared_fen); before any clearing ran, every paid record is pending."""
    n, fen = _rows(db, "SELECT SUM(records), SUM(amount) FROM record_totals WHERE status IN "
                   "('normal','recovered')")[0]
    n, fen = int(n or 0), int(fen or 0)
    done_n = done_fen = 0
    if _columns(db, "clearing_days"):
        for (summary,) in _rows(db, "SELECT summary FROM clearing_days"):
            try:
                x = json.loads(summary or "{}")
            except ValueError:
                continue
            done_n += int((x.get("verdicts") or {}).get("cleared", 0))
            done_fen += int(x.get("cleared_fen", 0))
    bad = _rows(db, "SELECT COUNT(*) FROM records WHERE record_ok = 0")[0][0]
    return {"records": max(0, n - done_n), "amount_fen": max(0, fen - done_fen),
            "cleared_records": done_n, "cleared_fen": done_fen, "undecodable": int(bad or 0)}


def grays(db):
    """Gray records by state as clearing left them (depot.clearing: open until matched to
    their final record, proved void or resolved from the card's later transactions)."""
    if not _columns(db, "gray_records"):
        return {}
    return {st: int(n) for st, n in _rows(db, "SELECT state, COUNT(*) FROM gray_records "
                                          "GROUP BY state")}


def proposals(db):
    """Blacklist proposals of the risk loop (depot.risk), newest first; [] before any."""
    if not _columns(db, "blacklist_proposals"):
        return []
    from depot import risk

    out = []
    for p in reversed(risk.proposals(db)):
        out.append({k: p.get(k) for k in ("id", "card", "reason", "state", "created",
                                           "approved_by", "decided", "version")})
    return out


def decide(db, pid, by, approve):
    """An operator's decision on one proposal from the dashboard; -> the proposal."""
    from depot import risk

    by = str(by or "").strip()
    if not by or len(by) > 64:
        raise ValueError("name the operator who decides (1..64 characters)")
    done = risk.decide(db, [int(pid)], by, approve)
    if not done:
        raise LookupError("no proposal %s waiting for a decision" % pid)
    return done[0]


def anomalies(db, limit=200):
    """Rows of table `anomalies` (the clearing step writes it); [] when there is none."""
    cols = _columns(db, "anomalies")
    if not cols:
        return []
    order = [c for c in ("kind", "device_id", "card", "reason", "records") if c in cols]
    rest = sorted(c for c in cols if c not in order)
    names = order + rest
    rows = _rows(db, "SELECT %s FROM anomalies LIMIT %d" % (", ".join(names), int(limit)))
    out = []
    for r in rows:
        d = {}
        for k, v in zip(names, r, strict=True):
            if isinstance(v, (bytes, bytearray, memoryview)):
                v = bytes(v).hex()
            if k == "device_id" and isinstance(v, int):
                v = "%08X" % v
            d[k] = v
        out.append(d)
    return out


def versions(db, fleet_rows=None):
    """Content versions held across the fleet: {"blacklist": {"3": 12, ...}, ...} and the
    latest published version of each kind."""
    rows = fleet_rows if fleet_rows is not None else fleet(db, 24)
    held = {}
    for k in ("blacklist", "fares", "whitelist", "config"):
        c = {}
        for r in rows:
            v = r.get(k + "_version")
            if v is not None:
                c[str(v)] = c.get(str(v), 0) + 1
        held[k] = c
    published = {}
    for k in ("blacklist", "fares", "whitelist", "config"):
        c = db.latest(k)
        if c:
            published[k] = c[0]
    return {"held": held, "published": published}


def overview(db, stale_hours, station=None):
    f = fleet(db, stale_hours)
    states = {SYNC_NEVER: 0, SYNC_STALE: 0, SYNC_OK: 0}
    for r in f:
        states[r["state"]] = states.get(r["state"], 0) + 1
    return {"fleet": f, "states": states, "daily": daily(db), "pending": pending(db),
            "anomalies": anomalies(db), "proposals": proposals(db), "grays": grays(db),
            "versions": versions(db, f),
            "station": station, "stale_hours": stale_hours, "generated": time.time()}
