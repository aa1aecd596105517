# depot.dashboard.data: what the fleet dashboard shows, as plain JSON-ready dicts.
# SPDX-License-Identifier: MIT
#
# Uses depot.reports (fleet_status, daily_totals, pending_totals, versions_deployed) when
# the database has it; otherwise reads the tables directly (records decoded with the
# storage record codec when the table holds only raw bytes).
import time

SYNC_NEVER, SYNC_STALE, SYNC_OK = "never", "stale", "ok"


def _reports():
    try:
        from depot import reports
    except ImportError:
        return None
    return reports


def _rows(db, sql, args=()):
    q = getattr(db, "query", None)
    if q is not None:
        return [tuple(r) for r in q(sql, args)]
    return [tuple(r) for r in db.con.execute(sql, args)]


def _columns(db, table):
    if hasattr(db, "has_table") and hasattr(db, "columns"):
        try:
            return set(db.columns(table)) if db.has_table(table) else None
        except Exception:
            return None
    try:
        q = getattr(db, "query", None)
        if q is not None:
            cur = db.query("SELECT * FROM %s LIMIT 0" % table)
            desc = getattr(cur, "description", None)
            if desc is None and hasattr(db, "columns"):
                return set(db.columns(table))
            return {d[0] for d in desc or ()}
        cur = db.con.execute("SELECT * FROM %s LIMIT 0" % table)
        return {d[0] for d in cur.description}
    except Exception:
        return None


def sync_state(last_sync, stale_hours, now=None):
    if not last_sync:
        return SYNC_NEVER
    now = time.time() if now is None else now
    return SYNC_STALE if now - float(last_sync) > stale_hours * 3600 else SYNC_OK


def _as_dicts(x):
    out = []
    for r in x or ():
        out.append(dict(r) if not isinstance(r, dict) else r)
    return out


def fleet(db, stale_hours, now=None):
    """-> list of one dict per validator (registry + last sync + versions + state)."""
    now = time.time() if now is None else now
    rep = _reports()
    if rep is not None and hasattr(rep, "fleet_status"):
        try:
            rows = _as_dicts(rep.fleet_status(db, stale_hours=stale_hours, now=now))
        except TypeError:
            rows = _as_dicts(rep.fleet_status(db))
        for r in rows:
            _normalise_device(r)
            r["state"] = r.get("state") or sync_state(r.get("last_sync"), stale_hours, now)
            if r["state"] not in (SYNC_NEVER, SYNC_STALE, SYNC_OK):
                r["state"] = sync_state(r.get("last_sync"), stale_hours, now)
        return sorted(rows, key=lambda r: r["device_id"])
    cols = _columns(db, "devices") or set()
    want = [c for c in ("device_id", "line", "vehicle", "depot", "firmware",
                        "expected_firmware", "last_sync", "acked_seq", "next_seq",
                        "blacklist_version", "fares_version", "whitelist_version",
                        "config_version") if c in cols]
    out = []
    for r in _rows(db, "SELECT %s FROM devices ORDER BY device_id" % ", ".join(want)):
        d = dict(zip(want, r, strict=True))
        _normalise_device(d)
        d["state"] = sync_state(d.get("last_sync"), stale_hours, now)
        out.append(d)
    return out


def _normalise_device(d):
    dev = d.get("device_id")
    if isinstance(dev, int):
        d["device_id"] = "%08X" % dev
    for k in ("line", "vehicle", "depot"):
        d.setdefault(k, None)
    if d.get("last_sync"):
        d["last_sync"] = float(d["last_sync"])
        d["age_h"] = round((time.time() - d["last_sync"]) / 3600, 2)
    else:
        d["last_sync"] = None
        d["age_h"] = None


def _decoded(db):
    """(day, line, issuer, status, amount, pending) per record, from the raw bytes."""
    from validator.storage import record_host as rh

    for (data,) in _rows(db, "SELECT data FROM records"):
        if len(data) != rh.REC_SIZE or not rh.crc_ok(data):
            continue
        r = rh.decode(data)
        yield (r["datetime"][:8], r["line"], r["issuer_id"][:8], r["status"], r["amount"])


_PAID = ("normal", "recovered")


def _grouped(rows):
    g = {}
    for day, line, iss, status, amount in rows:
        e = g.setdefault((day, line, iss), [0, 0])
        e[0] += 1
        e[1] += amount if status in _PAID else 0
    return [(k[0], k[1], k[2], v[0], v[1]) for k, v in g.items()]


def daily(db):
    """-> {"days": [{day, records, amount_fen}], "by_line": [...], "by_issuer": [...]}"""
    rep = _reports()
    if rep is not None and hasattr(rep, "daily_totals"):
        x = rep.daily_totals(db)
        if isinstance(x, dict):
            return {k: _as_dicts(v) if isinstance(v, list) else v for k, v in x.items()}
        return {"days": _as_dicts(x), "by_line": [], "by_issuer": []}
    days, lines, issuers = {}, {}, {}
    cols = _columns(db, "records") or set()
    if _columns(db, "record_totals"):
        # the per-day totals ingest keeps (depot.schema): tens of rows, not a million
        src = _rows(db, "SELECT day, line, substr(issuer_id,1,8), SUM(records), SUM(CASE "
                    "WHEN status IN ('normal','recovered') THEN amount ELSE 0 END) FROM "
                    "record_totals GROUP BY 1, 2, 3")
    elif {"amount", "line", "issuer_id", "status"} <= cols and ("day" in cols
                                                               or "datetime" in cols):
        # decoded columns (depot.schema): the database adds it up
        day = "day" if "day" in cols else "substr(datetime,1,8)"
        src = _rows(db, "SELECT %s, line, substr(issuer_id,1,8), COUNT(*), SUM(CASE WHEN "
                    "status IN ('normal','recovered') THEN amount ELSE 0 END) FROM records "
                    "GROUP BY 1, 2, 3" % day)
    else:
        src = _grouped(_decoded(db))
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
    "cleared_records", "cleared_fen", "undecodable"}. A record counts as cleared once the
    clearing step gave it the verdict 'cleared' (table clearing_results, depot.clearing);
    before any clearing ran, every paid record is pending."""
    rep = _reports()
    if rep is not None and hasattr(rep, "pending_totals"):
        x = rep.pending_totals(db)
        return dict(x) if not isinstance(x, dict) else x
    cols = _columns(db, "records") or set()
    if _columns(db, "record_totals"):
        return _pending_from_totals(db)
    if {"status", "amount", "record_ok"} <= cols:
        paid = "r.record_ok = 1 AND r.status IN ('normal','recovered')"
        bad = _rows(db, "SELECT COUNT(*) FROM records r WHERE r.record_ok = 0")[0][0]
        if _columns(db, "clearing_results"):
            rows = _rows(db, "SELECT CASE WHEN c.verdict = 'cleared' THEN 1 ELSE 0 END, "
                         "COUNT(*), SUM(r.amount) FROM records r LEFT JOIN clearing_results c "
                         "ON c.device_id = r.device_id AND c.seq = r.seq WHERE %s GROUP BY 1"
                         % paid)
        else:
            rows = [(0,) + tuple(r) for r in _rows(
                db, "SELECT COUNT(*), SUM(r.amount) FROM records r WHERE %s" % paid)]
        got = {int(k): (int(n or 0), int(a or 0)) for k, n, a in rows}
        return {"records": got.get(0, (0, 0))[0], "amount_fen": got.get(0, (0, 0))[1],
                "cleared_records": got.get(1, (0, 0))[0],
                "cleared_fen": got.get(1, (0, 0))[1], "undecodable": int(bad or 0)}
    d = daily(db)
    return {"records": sum(x["records"] for x in d["days"]),
            "amount_fen": sum(x["amount_fen"] for x in d["days"]),
            "note": "no clearing state in this database: every record counts as pending"}


def _pending_from_totals(db):
    """Paid totals from record_totals minus what each cleared business day cleared (its
    clearing_days summary: verdicts.cleared, cleared_fen) -- no scan of the records."""
    import json

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
    latest published version of each kind when the database publishes content."""
    rep = _reports()
    if rep is not None and hasattr(rep, "versions_deployed"):
        x = rep.versions_deployed(db)
        if isinstance(x, dict) and all(isinstance(v, dict) for v in x.values()):
            return {"held": {k: {str(a): b for a, b in v.items()} for k, v in x.items()},
                    "published": _published(db)}
    rows = fleet_rows if fleet_rows is not None else fleet(db, 24)
    held = {}
    for k in ("blacklist", "fares", "whitelist", "config"):
        c = {}
        for r in rows:
            v = r.get(k + "_version")
            if v is not None:
                c[str(v)] = c.get(str(v), 0) + 1
        held[k] = c
    return {"held": held, "published": _published(db)}


def _published(db):
    latest = getattr(db, "latest", None)
    out = {}
    if latest is None:
        return out
    for k in ("blacklist", "fares", "whitelist", "config"):
        try:
            c = latest(k)
        except Exception:
            c = None
        if c:
            out[k] = c[0]
    return out


def overview(db, stale_hours, station=None):
    f = fleet(db, stale_hours)
    states = {SYNC_NEVER: 0, SYNC_STALE: 0, SYNC_OK: 0}
    for r in f:
        states[r["state"]] = states.get(r["state"], 0) + 1
    return {"fleet": f, "states": states, "daily": daily(db), "pending": pending(db),
            "anomalies": anomalies(db), "proposals": proposals(db), "grays": grays(db),
            "versions": versions(db, f),
            "station": station, "stale_hours": stale_hours, "generated": time.time()}
